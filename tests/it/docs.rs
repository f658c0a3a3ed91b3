//! Man pages and shell completions are rendered from the clap definitions and committed. This test
//! fails when the committed files differ from what the code renders.
//! Regenerate with: RIVER_UPDATE_DOCS=1 cargo test --test it docs::

use std::path::Path;

use clap_complete::Shell;

fn ensure(path: &Path, want: &[u8], stale: &mut Vec<String>) {
    let have = std::fs::read(path).unwrap_or_default();
    if have == want {
        return;
    }
    if std::env::var_os("RIVER_UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, want).unwrap();
    } else {
        stale.push(path.display().to_string());
    }
}

/// clap_mangen's sections, with EXIT STATUS and ENVIRONMENT as proper sections instead of the
/// long help's trailing text.
fn render_man(cmd: &clap::Command, out: &mut Vec<u8>) {
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out).unwrap();
    man.render_name_section(out).unwrap();
    man.render_synopsis_section(out).unwrap();
    man.render_description_section(out).unwrap();
    man.render_options_section(out).unwrap();
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(out).unwrap();
    }
    let esc = |s: &str| s.replace('\\', "\\\\").replace('-', "\\-");
    out.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for (code, what) in river::stdio::EXIT_CODES {
        out.extend_from_slice(format!(".TP\n\\fB{code}\\fR\n{}\n", esc(what)).as_bytes());
    }
    out.extend_from_slice(b".SH ENVIRONMENT\n");
    for (var, what) in river::stdio::ENVIRONMENT {
        out.extend_from_slice(format!(".TP\n\\fB{var}\\fR\n{}\n", esc(what)).as_bytes());
    }
    man.render_version_section(out).unwrap();
}

#[test]
fn man_pages_and_completions_are_in_sync() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for cmd in river::cli::commands() {
        let name = cmd.get_name().to_string();
        let mut man = Vec::new();
        render_man(&cmd, &mut man);
        ensure(
            &root.join("man").join(format!("{name}.1")),
            &man,
            &mut stale,
        );
        // A tool with subcommands (river-relay) also gets one page per subcommand, git-style:
        // river-relay-serve.1 and so on.
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            // clap takes &'static str names here (no "string" feature); a test may leak a few.
            let full: &'static str =
                Box::leak(format!("{name}-{}", sub.get_name()).into_boxed_str());
            let version: &'static str = Box::leak(
                cmd.get_version()
                    .unwrap_or_default()
                    .to_string()
                    .into_boxed_str(),
            );
            let sub = sub.clone().name(full).version(version);
            let mut page = Vec::new();
            render_man(&sub, &mut page);
            ensure(
                &root.join("man").join(format!("{full}.1")),
                &page,
                &mut stale,
            );
        }
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &name, &mut out);
            ensure(&root.join("completions").join(file), &out, &mut stale);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated docs: {stale:?}; run `RIVER_UPDATE_DOCS=1 cargo test --test it docs::` and commit"
    );
}

#[test]
fn every_man_page_documents_exit_status() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for cmd in river::cli::commands() {
        let page = std::fs::read_to_string(root.join("man").join(format!("{}.1", cmd.get_name())))
            .unwrap_or_default();
        assert!(
            page.contains("EXIT STATUS"),
            "{} man page lacks exit status",
            cmd.get_name()
        );
        assert!(
            page.contains("130"),
            "{} man page lacks exit code 130",
            cmd.get_name()
        );
    }
}
