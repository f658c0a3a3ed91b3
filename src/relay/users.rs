//! The users folder, as fstream keeps it: `users/<name>.ini` with
//!
//! ```ini
//! [DEFAULT]
//! password=foobar
//! ```
//!
//! The file is read again on every check, so edits take effect without a restart. Parsing follows
//! Python's configparser where it matters: `password=…` or `password = …` or `password: …`, key case
//! ignored, values trimmed, whole-line comments starting with `#` or `;`, CRLF, a UTF-8 BOM. Only the
//! `[DEFAULT]` section counts. A missing file, a file without a password, or an empty password
//! refuses the user; a stored password that breaks the password rule
//! ([`crate::proto::names::PASSWORD_RULE`]) is an error naming the file. Passwords are compared in
//! constant time. Only names that follow the name rule ([`crate::proto::names`]) become paths.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::proto::names::{check_password, valid_name};

/// Largest users file read (a password file is tiny; this bounds a hostile or mistaken one).
pub const MAX_FILE: u64 = 64 * 1024;

/// The users folder.
#[derive(Clone, Debug)]
pub struct Users {
    dir: PathBuf,
}

/// A users file that exists but could not be read.
#[derive(Debug)]
pub struct UsersError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reading users file {}: {}",
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for UsersError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl Users {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Users { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `user`'s password, if the name is allowed.
    pub fn path_of(&self, user: &str) -> Option<PathBuf> {
        valid_name(user).then(|| self.dir.join(format!("{user}.ini")))
    }

    /// Does `password` match `user`'s file? Re-reads the file on every call. A bad name, a missing
    /// file or a file without a (non-empty) `[DEFAULT]` password is `Ok(false)`; other I/O errors
    /// (permissions, a directory in the way, a file over [`MAX_FILE`]) and a stored password that
    /// breaks the rule are `Err` naming the path.
    pub fn check(&self, user: &str, password: &str) -> Result<bool, UsersError> {
        Ok(match self.password(user)? {
            Some(stored) => constant_time_eq(stored.as_bytes(), password.as_bytes()),
            None => false,
        })
    }

    /// `user`'s stored password (re-read on every call), for checks that need the password
    /// itself (RTSP Digest). `Ok(None)` for a bad name, a missing file or no (non-empty) password.
    pub fn password(&self, user: &str) -> Result<Option<String>, UsersError> {
        let Some(path) = self.path_of(user) else {
            return Ok(None);
        };
        let text = match read_capped(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(UsersError { path, source }),
        };
        let Some(stored) = default_password(&text).filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        if let Err(e) = check_password(&stored) {
            let source = io::Error::new(io::ErrorKind::InvalidData, format!("password: {e}"));
            return Err(UsersError { path, source });
        }
        Ok(Some(stored))
    }
}

fn read_capped(path: &Path) -> io::Result<String> {
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(MAX_FILE + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE} bytes"),
        ));
    }
    String::from_utf8(buf).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// The `password` of the `[DEFAULT]` section, as configparser would read it.
pub fn default_password(text: &str) -> Option<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut in_default = false;
    let mut found = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') {
            in_default = t == "[DEFAULT]";
            continue;
        }
        if !in_default {
            continue;
        }
        let Some(i) = t.find(['=', ':']) else {
            continue;
        };
        if t[..i].trim().eq_ignore_ascii_case("password") {
            // configparser: a later duplicate is an error in strict mode; take the first.
            if found.is_none() {
                found = Some(t[i + 1..].trim().to_string());
            }
        }
    }
    found
}

/// Compares without an early exit, so the time does not tell how much of a guess was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().max(b.len());
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= (x ^ y) as u64;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "river-users-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn checks_and_rereads_after_an_edit() {
        let d = TempDir::new("edit");
        let users = Users::new(&d.0);
        std::fs::write(d.0.join("fier.ini"), "[DEFAULT]\npassword=123\n").unwrap();
        assert!(users.check("fier", "123").unwrap());
        assert!(!users.check("fier", "1234").unwrap());
        assert!(!users.check("fier", "12").unwrap());
        assert!(!users.check("fier", "").unwrap());
        std::fs::write(d.0.join("fier.ini"), "[DEFAULT]\r\npassword = abc \r\n").unwrap();
        assert!(!users.check("fier", "123").unwrap());
        assert!(users.check("fier", "abc").unwrap());
        std::fs::remove_file(d.0.join("fier.ini")).unwrap();
        assert!(!users.check("fier", "abc").unwrap());
    }

    #[test]
    fn unknown_and_bad_names_are_refused_without_touching_files() {
        let d = TempDir::new("names");
        std::fs::write(d.0.join("x.ini"), "[DEFAULT]\npassword=p\n").unwrap();
        let users = Users::new(d.0.join("sub"));
        assert!(!users.check("x", "p").unwrap());
        let users = Users::new(&d.0);
        assert!(!users.check("nobody", "p").unwrap());
        for bad in ["../x", "x/..", ".x", "", "x\0", "-x"] {
            assert!(!users.check(bad, "p").unwrap(), "{bad:?}");
        }
        // Even when a file of that name exists.
        std::fs::write(d.0.join(".x.ini"), "[DEFAULT]\npassword=p\n").unwrap();
        assert!(!users.check(".x", "p").unwrap());
        assert_eq!(users.path_of("a/b"), None);
    }

    #[test]
    fn a_stored_password_that_breaks_the_rule_is_an_error_naming_the_file() {
        let d = TempDir::new("rule");
        std::fs::write(d.0.join("t.ini"), "[DEFAULT]\npassword=a\tb\n").unwrap();
        let e = Users::new(&d.0).check("t", "a\tb").unwrap_err().to_string();
        assert!(
            e.contains("t.ini") && e.contains("control character"),
            "{e}"
        );
        assert!(!e.contains("a\tb"), "the password is not shown: {e}");
    }

    #[test]
    fn io_errors_name_the_path() {
        let d = TempDir::new("io");
        std::fs::create_dir(d.0.join("dir.ini")).unwrap();
        let e = Users::new(&d.0).check("dir", "p").unwrap_err();
        assert!(e.to_string().contains("dir.ini"), "{e}");
        std::fs::write(d.0.join("big.ini"), vec![b'#'; MAX_FILE as usize + 1]).unwrap();
        let e = Users::new(&d.0).check("big", "p").unwrap_err();
        assert!(e.to_string().contains("larger"), "{e}");
    }

    #[test]
    fn ini_forms() {
        let cases: &[(&str, Option<&str>)] = &[
            ("[DEFAULT]\npassword=foobar\n", Some("foobar")),
            ("\u{feff}[DEFAULT]\nPassword: foobar", Some("foobar")),
            ("; c\n# c\n[DEFAULT]\n  password =  a b  \n", Some("a b")),
            ("[DEFAULT]\nother=1\n", None),
            ("[other]\npassword=x\n", None),
            ("password=x\n", None),
            ("[DEFAULT]\npassword=\n", Some("")),
            ("[DEFAULT]\npassword=a=b\n", Some("a=b")),
            ("[DEFAULT]\npassword=1\npassword=2\n", Some("1")),
            ("[x]\n[DEFAULT]\npassword=y\n[z]\npassword=q\n", Some("y")),
        ];
        for (text, want) in cases {
            assert_eq!(default_password(text).as_deref(), *want, "{text:?}");
        }
        let d = TempDir::new("empty");
        std::fs::write(d.0.join("e.ini"), "[DEFAULT]\npassword=\n").unwrap();
        assert!(!Users::new(&d.0).check("e", "").unwrap());
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a\0", b"a"));
    }
}
