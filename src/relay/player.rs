//! The hub's player pages, pure: `GET /<user>/<channel>` answers a page that plays the channel's
//! http-flv (or http-ts with `?format=ts`) with mpegts.js, which the hub serves itself at
//! `/mpegts.js`; the front (`relay/front/http.rs`) routes and answers.

use crate::http::index::url_path_escape;

/// mpegts.js 1.8.2 from npm, unmodified; see `assets/mpegts.js/README.md` and its `LICENSE`.
pub const MPEGTS_JS: &[u8] = include_bytes!("../../assets/mpegts.js/mpegts.js");

/// What `/mpegts.js.LICENSE.txt` answers (the name the script's first line points to): the
/// mpegts.js licence (Apache-2.0), then webpack's notice for the code bundled into it.
pub const MPEGTS_JS_LICENSE: &str = concat!(
    include_str!("../../assets/mpegts.js/LICENSE"),
    "\n",
    include_str!("../../assets/mpegts.js/mpegts.js.LICENSE.txt")
);

/// The container a page plays, as mpegts.js names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Flv,
    Ts,
}

impl Kind {
    /// The `type` of mpegts.js's media data source.
    fn mpegts_type(self) -> &'static str {
        match self {
            Kind::Flv => "flv",
            Kind::Ts => "mpegts",
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Kind::Flv => "flv",
            Kind::Ts => "ts",
        }
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query value.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes every byte outside `[A-Za-z0-9-._~/:?=&%]`, so a URL can go into an HTML
/// attribute and a JavaScript string with no further escaping (no quote, `<`, `>`, `\` or space
/// survives). A URL made of those characters is unchanged.
fn page_url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:?=&%".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of a channel's stream as the hub serves it: `/<user>/<channel>.flv|.ts`, with the
/// channel password as `?password=` when there is one.
pub fn stream_path(user: &str, channel: &str, kind: Kind, password: Option<&str>) -> String {
    let mut p = url_path_escape(&format!("/{user}/{channel}.{}", kind.ext()));
    if let Some(pw) = password {
        p.push_str("?password=");
        p.push_str(&query_escape(pw));
    }
    p
}

/// The page that plays a channel's HLS (`serve --hls`) with hls.js (served at `/hls.min.js`):
/// `/<user>/<channel>/index.m3u8`, with the channel password as `?password=` when there is one.
/// It loads the playlist again 2 s after the broadcast ends or cannot be loaded.
pub fn hls_page(user: &str, channel: &str, password: Option<&str>) -> String {
    let mut src = url_path_escape(&format!("/{user}/{channel}/index.m3u8"));
    if let Some(pw) = password {
        src.push_str("?password=");
        src.push_str(&query_escape(pw));
    }
    crate::http::index::page_for(&page_url(&src), &format!("{user}/{channel}"), true)
}

/// The page that plays `src` (an http-flv or http-ts URL, absolute or relative) with the
/// mpegts.js at `script`. Both go through [`page_url`], so any string is safe here. The first line
/// of `<pre id="status">` is always `frames: N`, the decoded video frame count, and every
/// mpegts.js error is recorded in `window.riverErrors` ("type detail: info"), for players and
/// tests to read.
pub fn page(script: &str, src: &str, kind: Kind, title: &str) -> String {
    TEMPLATE
        .replace("{SCRIPT}", &page_url(script))
        .replace("{SRC}", &page_url(src))
        .replace("{TYPE}", kind.mpegts_type())
        .replace("{TITLE}", &url_path_escape(title))
}

const TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>river: {TITLE}</title>
<style>
body { margin: 0; background: #111; color: #ddd; font: 14px monospace; }
video { display: block; width: 100%; max-height: 85vh; background: #000; }
pre { margin: 8px; }
a { color: #8cf; }
</style>
</head>
<body>
<video id="video" muted autoplay playsinline controls></video>
<pre id="status">frames: 0</pre>
<pre>stream: <a href="{SRC}">{SRC}</a> (open it in VLC, ffplay or mpv); player: mpegts.js (<a href="{SCRIPT}.LICENSE.txt">licence</a>)</pre>
<script src="{SCRIPT}"></script>
<script>
(function () {
  var src = "{SRC}", type = "{TYPE}";
  var video = document.getElementById("video");
  var status = document.getElementById("status");
  var state = "starting", player = null, retry = null;
  function frames() {
    if (video.getVideoPlaybackQuality) return video.getVideoPlaybackQuality().totalVideoFrames;
    return video.webkitDecodedFrameCount || 0;
  }
  // Every mpegts.js error as "type detail: info": players and tests read it.
  var errors = window.riverErrors = [];
  function show() {
    status.textContent = "frames: " + frames() + "\nstate: " + state +
      "\ntime: " + video.currentTime.toFixed(2) +
      "\nerrors: " + errors.length + (errors.length ? " (" + errors.join(", ") + ")" : "");
  }
  // The stream ended or failed (the broadcast is not live yet, or it ended): start again in 2 s.
  function again(why) {
    state = why;
    if (retry) return;
    retry = setTimeout(function () { retry = null; start(); }, 2000);
  }
  function start() {
    if (player) { player.destroy(); player = null; }
    player = mpegts.createPlayer({ type: type, isLive: true, url: src });
    player.on(mpegts.Events.ERROR, function (t, d, info) {
      var msg = info && (info.msg || info.code);
      errors.push(t + " " + d + (msg ? ": " + msg : ""));
      again("error: " + t + " " + d);
    });
    player.on(mpegts.Events.LOADING_COMPLETE, function () { again("ended"); });
    player.attachMediaElement(video);
    player.load();
    var p = player.play();
    if (p && p.catch) p.catch(function (e) { state = "play() refused: " + e; });
    state = "mpegts.js " + mpegts.version;
  }
  if (window.mpegts && mpegts.isSupported() && mpegts.getFeatureList().mseLivePlayback) {
    start();
  } else {
    state = "this browser has no Media Source Extensions for live playback";
  }
  video.addEventListener("playing", function () { state = "playing"; });
  video.addEventListener("waiting", function () { state = "buffering"; });
  setInterval(show, 250);
  show();
})();
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_plays_the_named_stream() {
        let src = stream_path("fier", "cam", Kind::Flv, None);
        assert_eq!(src, "/fier/cam.flv");
        let p = page("/mpegts.js", &src, Kind::Flv, "fier/cam");
        assert!(p.contains(r#"var src = "/fier/cam.flv", type = "flv";"#));
        assert!(p.contains(r#"<script src="/mpegts.js"></script>"#));
        assert!(p.contains(r#"<a href="/mpegts.js.LICENSE.txt">licence</a>"#));
        assert!(p.contains(r#"<pre id="status">frames: 0</pre>"#));
        assert!(p.contains("var errors = window.riverErrors = [];"));
        for hole in ["{SCRIPT}", "{SRC}", "{TYPE}", "{TITLE}"] {
            assert!(!p.contains(hole), "{hole}");
        }
        let ts = stream_path("fier", "cam", Kind::Ts, Some("s3 cr&t"));
        assert_eq!(ts, "/fier/cam.ts?password=s3%20cr%26t");
        let p = page("http://127.0.0.1:9/mpegts.js", &ts, Kind::Ts, "x");
        assert!(p.contains(r#"var src = "/fier/cam.ts?password=s3%20cr%26t", type = "mpegts";"#));
        assert!(p.contains(r#"<script src="http://127.0.0.1:9/mpegts.js"></script>"#));
    }

    #[test]
    fn urls_cannot_break_out_of_the_page() {
        let p = page(
            "/m.js\"><script>",
            "/a\"</script><b>'\\.flv",
            Kind::Flv,
            "<i>",
        );
        assert!(p.contains(r#"var src = "/a%22%3C/script%3E%3Cb%3E%27%5C.flv""#));
        assert!(p.contains(r#"<script src="/m.js%22%3E%3Cscript%3E"></script>"#));
        assert!(!p.contains("<b>") && !p.contains("<i>"));
        // A password cannot add a query key or leave the string either.
        let s = stream_path("u", "c", Kind::Flv, Some("\"&x=1</script>"));
        assert_eq!(s, "/u/c.flv?password=%22%26x%3D1%3C%2Fscript%3E");
    }

    #[test]
    fn the_hls_page_plays_the_channel_playlist() {
        let p = hls_page("fier", "cam", Some("s3 cr&t\"</script>"));
        assert!(
            p.contains(r#"var src = "/fier/cam/index.m3u8?password=s3%20cr%26t%22%3C%2Fscript%3E", again = true;"#),
            "{p}"
        );
        assert!(p.contains(r#"<script src="/hls.min.js"></script>"#));
        assert!(!p.contains("</script>\"") && !p.contains("{AGAIN}"));
        let p = hls_page("fier", "cam", None);
        assert!(p.contains(r#"var src = "/fier/cam/index.m3u8", again = true;"#));
    }

    #[test]
    fn mpegts_js_is_embedded_with_its_licences() {
        assert!(MPEGTS_JS.len() > 200_000);
        assert!(MPEGTS_JS
            .starts_with(b"/*! For license information please see mpegts.js.LICENSE.txt */"));
        assert!(MPEGTS_JS_LICENSE.starts_with("\n                                 Apache License"));
        assert!(MPEGTS_JS_LICENSE.contains("es6-promise"));
    }
}
