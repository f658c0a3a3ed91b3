//! Request targets to files under the served directory, refusing every way out of it.
//!
//! Two steps. [`route`] is pure: it percent-decodes the target and refuses NUL, backslashes, `..`
//! and hidden (`.name`) segments, so the relative path it returns has only plain names.
//! [`open_under`] then resolves that path on disk and refuses a result outside the canonical
//! root, which is what stops a symlink from leading out.
//!
//! The common case costs one `openat2(2)` with `RESOLVE_BENEATH` from a descriptor of the root
//! held in [`Root`]: the kernel fails it (`EXDEV`) whenever resolution would leave the root, so a
//! file it opens is one the canonical-path check would have accepted. Every failure of that call
//! (a missing file, an absolute symlink, a kernel without `openat2`) falls back to resolving the
//! canonical path (`realpath`, a `readlink` per component) and comparing it with the root, so
//! the answers, refusals included, are those of the canonical-path check.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where a request target leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/` or `/index.html`: the player page.
    Index,
    /// `/hls.min.js`: the embedded hls.js.
    HlsJs,
    /// A file under the root, as a relative path of plain names.
    File(PathBuf),
    /// Nothing is served there (outside the prefix, or a directory).
    NotFound,
}

/// Why a request target was refused; maps to 400 or 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// 400: not an origin-form target, or a malformed percent escape, or NUL.
    BadRequest(&'static str),
    /// 403: a `..` or hidden segment, a backslash, or a path that resolves outside the root.
    Forbidden(&'static str),
}

/// Decodes `%XX` escapes; `None` for a `%` not followed by two hex digits (the one decoder,
/// [`crate::proto::names::percent_decode`]).
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    crate::proto::names::percent_decode(s).ok()
}

/// Maps a raw request target (as the client sent it) to what it names. `prefix` is the decoded
/// URL path of the directory, starting and ending with `/`.
pub fn route(target: &str, prefix: &str) -> Result<Target, Refused> {
    if !target.starts_with('/') {
        return Err(Refused::BadRequest(
            "the request target must be an absolute path (origin-form)",
        ));
    }
    let end = target.find(['?', '#']).unwrap_or(target.len());
    let path = percent_decode(&target[..end])
        .ok_or(Refused::BadRequest("malformed percent escape in the path"))?;
    if path.contains(&0) {
        return Err(Refused::BadRequest("NUL in the path"));
    }
    if path.contains(&b'\\') {
        return Err(Refused::Forbidden("backslash in the path"));
    }
    // Every segment is checked, the prefix included, so `/live/../x` is refused rather than
    // normalised.
    let mut names = Vec::new();
    for seg in path.split(|&c| c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => return Err(Refused::Forbidden("`..` in the path")),
            s if s.first() == Some(&b'.') => {
                return Err(Refused::Forbidden("hidden files are not served"))
            }
            s => names.push(s),
        }
    }
    match path.as_slice() {
        b"/" | b"/index.html" => return Ok(Target::Index),
        b"/hls.min.js" => return Ok(Target::HlsJs),
        _ => {}
    }
    let Some(rest) = path.strip_prefix(prefix.as_bytes()) else {
        return Ok(Target::NotFound);
    };
    let mut rel = PathBuf::new();
    for seg in rest.split(|&c| c == b'/') {
        if !seg.is_empty() && seg != b"." {
            rel.push(OsStr::from_bytes(seg));
        }
    }
    if rel.as_os_str().is_empty() || path.ends_with(b"/") {
        // A directory: no listings.
        return Ok(Target::NotFound);
    }
    Ok(Target::File(rel))
}

/// Why a file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// 404: missing, or not a regular file.
    NotFound,
    /// 403: resolves outside the root, or the server may not read it.
    Forbidden(&'static str),
    /// 500: anything else.
    Io(io::Error),
}

/// The served directory: its canonical path and a descriptor of it.
#[derive(Debug)]
pub struct Root {
    path: PathBuf,
    dir: OwnedFd,
}

impl Root {
    /// `path` must be canonical (see [`Path::canonicalize`]) and a directory.
    pub fn open(path: PathBuf) -> io::Result<Root> {
        let c = CString::new(path.as_os_str().as_bytes())?;
        // SAFETY: a valid NUL-terminated path; the result is checked before use.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor with no other owner.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Root { path, dir })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `rel` for reading without leaving the root (`RESOLVE_BENEATH`); any error is the
    /// caller's cue to take the canonical-path check.
    fn open_beneath(&self, rel: &Path) -> io::Result<File> {
        let c = CString::new(rel.as_os_str().as_bytes())?;
        // SAFETY: `open_how` is plain integers; all zero is its empty value.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_BENEATH;
        // SAFETY: a valid directory descriptor, a NUL-terminated path and an `open_how` of the
        // size passed; the result is checked before use.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor with no other owner.
        Ok(unsafe { File::from_raw_fd(fd as i32) })
    }
}

/// Opens `rel` (from [`route`]) under `root`. Symlinks inside the root are followed as long as
/// the final target stays inside it.
pub fn open_under(root: &Root, rel: &Path) -> Result<(File, std::fs::Metadata), OpenError> {
    let io_err = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => OpenError::NotFound,
        io::ErrorKind::PermissionDenied => OpenError::Forbidden("permission denied"),
        _ => OpenError::Io(e),
    };
    if rel.is_absolute() {
        return Err(OpenError::Forbidden("absolute path"));
    }
    let file = match root.open_beneath(rel) {
        Ok(f) => f,
        Err(_) => {
            let full = root.path.join(rel).canonicalize().map_err(io_err)?;
            if !full.starts_with(&root.path) {
                return Err(OpenError::Forbidden(
                    "the path leads outside the served directory",
                ));
            }
            File::open(&full).map_err(io_err)?
        }
    };
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(OpenError::NotFound);
    }
    Ok((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/live/";

    fn file(p: &str) -> Result<Target, Refused> {
        Ok(Target::File(PathBuf::from(p)))
    }

    #[test]
    fn plain_files_and_routes() {
        assert_eq!(route("/", P), Ok(Target::Index));
        assert_eq!(route("/?x=1", P), Ok(Target::Index));
        assert_eq!(route("/index.html", P), Ok(Target::Index));
        assert_eq!(route("/hls.min.js", P), Ok(Target::HlsJs));
        assert_eq!(route("/live/movie.m3u8", P), file("movie.m3u8"));
        assert_eq!(route("/live/movie.m3u8?_HLS_msn=3", P), file("movie.m3u8"));
        assert_eq!(route("/live/movie.m3u8#frag", P), file("movie.m3u8"));
        assert_eq!(
            route("/live/2026/11/22/101500.ts", P),
            file("2026/11/22/101500.ts")
        );
        assert_eq!(route("/live//./a.ts", P), file("a.ts"));
        assert_eq!(route("/live/a%20b.ts", P), file("a b.ts"));
        assert_eq!(route("/%6Cive/a.ts", P), file("a.ts"));
        assert_eq!(route("/live/a..b.ts", P), file("a..b.ts"));
        assert_eq!(route("/live/", P), Ok(Target::NotFound));
        assert_eq!(route("/live", P), Ok(Target::NotFound));
        assert_eq!(route("/live/2026/", P), Ok(Target::NotFound));
        assert_eq!(route("/other/a.ts", P), Ok(Target::NotFound));
        assert_eq!(route("/livex/a.ts", P), Ok(Target::NotFound));
        // With the directory at the root, the page and the script still win.
        assert_eq!(route("/", "/"), Ok(Target::Index));
        assert_eq!(route("/movie.m3u8", "/"), file("movie.m3u8"));
    }

    #[test]
    fn traversal_is_refused() {
        for t in [
            "/live/../secret",
            "/live/../../etc/passwd",
            "/live/%2e%2e/secret",
            "/live/%2E%2E/secret",
            "/live/..%2fsecret",
            "/live/..%2Fsecret",
            "/live/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/live/a/../../secret",
            "/../live/a.ts",
            "/live/..",
            "/live/.hidden.tmp",
            "/live/..%5csecret",
            "/live/a\\..\\b",
            "/live/%5c..%5cb",
        ] {
            assert!(
                matches!(route(t, P), Err(Refused::Forbidden(_))),
                "{t}: {:?}",
                route(t, P)
            );
        }
        for t in [
            "/live/a.ts%00",
            "/live/a%00.ts",
            "/live/%zz",
            "/live/%2",
            "/live/%",
            "http://example.com/live/a.ts",
            "*",
            "",
            "live/a.ts",
        ] {
            assert!(
                matches!(route(t, P), Err(Refused::BadRequest(_))),
                "{t}: {:?}",
                route(t, P)
            );
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%41%62c").unwrap(), b"aAbc");
        assert_eq!(percent_decode("%ff%00").unwrap(), [0xff, 0]);
        assert_eq!(percent_decode("plain").unwrap(), b"plain");
        assert!(percent_decode("%g0").is_none());
        assert!(percent_decode("x%4").is_none());
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("river-http-path-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let base = tmp("symlink");
        let root = base.join("www");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(base.join("secret.txt"), b"secret").unwrap();
        std::fs::write(root.join("sub/seg.ts"), b"0123456789").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.ts")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        std::os::unix::fs::symlink("sub/seg.ts", root.join("inside.ts")).unwrap();
        // An absolute link that stays inside: openat2 refuses it (EXDEV), the canonical check
        // serves it.
        let canon = root.canonicalize().unwrap();
        std::os::unix::fs::symlink(canon.join("sub/seg.ts"), root.join("abs.ts")).unwrap();
        let root = Root::open(canon).unwrap();

        let (_, meta) = open_under(&root, Path::new("sub/seg.ts")).unwrap();
        assert_eq!(meta.len(), 10);
        let (_, meta) = open_under(&root, Path::new("inside.ts")).unwrap();
        assert_eq!(meta.len(), 10);
        let (_, meta) = open_under(&root, Path::new("abs.ts")).unwrap();
        assert_eq!(meta.len(), 10);
        assert!(matches!(
            open_under(&root, Path::new("leak.ts")),
            Err(OpenError::Forbidden(_))
        ));
        assert!(matches!(
            open_under(&root, Path::new("up/secret.txt")),
            Err(OpenError::Forbidden(_))
        ));
        assert!(matches!(
            open_under(&root, Path::new("/etc/passwd")),
            Err(OpenError::Forbidden(_))
        ));
        assert!(matches!(
            open_under(&root, Path::new("missing.ts")),
            Err(OpenError::NotFound)
        ));
        assert!(matches!(
            open_under(&root, Path::new("sub/seg.ts/x")),
            Err(OpenError::NotFound)
        ));
        assert!(matches!(
            open_under(&root, Path::new("sub")),
            Err(OpenError::NotFound)
        ));
        let _ = std::fs::remove_dir_all(&base);
    }
}
