//! Content types and caching policy by file extension.
//!
//! Caching: a playlist changes with every segment, so it is `no-cache` (the browser revalidates,
//! a CDN does not hold it). Media segments (`.ts`, `.m4s`, `.mp4`, `.m4a`, `.aac`) never change
//! once renamed into place, but their names can come back: a live window restarted by cron starts
//! again at `movie0.ts`. So segments get `max-age` from [`super::ServeOptions::segment_max_age`],
//! 60 s by default: long enough for every viewer of a live window and a CDN in front to share one
//! copy, short enough that a restarted stream is right within a minute. A DVR archive with unique
//! names (`%Y/%m/%d/%H%M%S.ts`) can raise it to a year. Everything else (thumbnails rewritten in
//! place, pages) is `no-cache`.

use std::path::Path;

fn ext(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// The Content-Type for a file, by extension (case-insensitive).
pub fn content_type(path: &Path) -> &'static str {
    match ext(path).as_str() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "mp4" => "video/mp4",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "vtt" => "text/vtt; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether the file is a media segment (cached for `segment_max_age`).
pub fn is_segment(path: &Path) -> bool {
    matches!(ext(path).as_str(), "ts" | "m4s" | "mp4" | "m4a" | "aac")
}

/// The Cache-Control value for a file.
pub fn cache_control(path: &Path, segment_max_age: u32) -> String {
    if is_segment(path) && segment_max_age > 0 {
        format!("public, max-age={segment_max_age}")
    } else {
        "no-cache".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let t = |p: &str| content_type(Path::new(p));
        assert_eq!(t("movie.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(t("MOVIE.M3U8"), "application/vnd.apple.mpegurl");
        assert_eq!(t("2026/11/22/101500.ts"), "video/mp2t");
        assert_eq!(t("seg1.m4s"), "video/iso.segment");
        assert_eq!(t("init.mp4"), "video/mp4");
        assert_eq!(t("thumb.jpg"), "image/jpeg");
        assert_eq!(t("thumb.JPEG"), "image/jpeg");
        assert_eq!(t("thumb.png"), "image/png");
        assert_eq!(t("index.html"), "text/html; charset=utf-8");
        assert_eq!(t("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(t("app.css"), "text/css; charset=utf-8");
        assert_eq!(t("noext"), "application/octet-stream");
        assert_eq!(t("x.bin"), "application/octet-stream");
        assert_eq!(t("m3u8"), "application/octet-stream");
    }

    #[test]
    fn caching() {
        let c = |p: &str, age| cache_control(Path::new(p), age);
        assert_eq!(c("movie.m3u8", 60), "no-cache");
        assert_eq!(c("movie12.ts", 60), "public, max-age=60");
        assert_eq!(
            c("2026/11/22/101500.ts", 31536000),
            "public, max-age=31536000"
        );
        assert_eq!(c("seg.m4s", 60), "public, max-age=60");
        assert_eq!(c("movie12.ts", 0), "no-cache");
        assert_eq!(c("thumb.jpg", 60), "no-cache");
    }
}
