//! The player page at `/` and the embedded hls.js it loads from `/hls.min.js`.

/// hls.js 1.7.4 from npm, unmodified; see `assets/hls.js/README.md` and its `LICENSE`.
pub const HLS_JS: &[u8] = include_bytes!("../../assets/hls.js/hls.min.js");

/// The hls.js licence, kept beside it (Apache-2.0).
pub const HLS_JS_LICENSE: &str = include_str!("../../assets/hls.js/LICENSE");

/// Percent-encodes everything but unreserved characters and `/`, so the URL can go into HTML and
/// a JavaScript string without further escaping.
pub fn url_path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page that plays `{prefix}{name}.m3u8`. The first line of `<pre id="status">` is always
/// `frames: N`, the decoded video frame count, so a test can read it from the DOM.
pub fn page(prefix: &str, name: &str) -> String {
    let src = url_path_escape(&format!("{prefix}{name}.m3u8"));
    page_for(&src, name, false)
}

/// The page that plays `src`, a URL already escaped for HTML and a JavaScript string (a path,
/// and a query of unreserved characters and escapes). `again`: when the stream ends (EXT-X-ENDLIST
/// played out) or its playlist cannot be loaded, load it again 2 s later (a hub's channel that
/// goes live again).
pub fn page_for(src: &str, title: &str, again: bool) -> String {
    TEMPLATE
        .replace("{SRC}", src)
        .replace("{TITLE}", &url_path_escape(title))
        .replace("{AGAIN}", if again { "true" } else { "false" })
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
<pre>stream: <a href="{SRC}">{SRC}</a> (open it in VLC, ffplay or Safari)</pre>
<script src="/hls.min.js"></script>
<script>
(function () {
  var src = "{SRC}", again = {AGAIN};
  var video = document.getElementById("video");
  var status = document.getElementById("status");
  var state = "starting";
  function frames() {
    if (video.getVideoPlaybackQuality) return video.getVideoPlaybackQuality().totalVideoFrames;
    return video.webkitDecodedFrameCount || 0;
  }
  // Every hls.js error, fatal or not, as "type details": players and tests read it.
  var errors = window.riverErrors = [];
  function show() {
    status.textContent = "frames: " + frames() + "\nstate: " + state +
      "\ntime: " + video.currentTime.toFixed(2) +
      "\nerrors: " + errors.length + (errors.length ? " (" + errors.join(", ") + ")" : "");
  }
  function play() {
    var p = video.play();
    if (p && p.catch) p.catch(function (e) { state = "play() refused: " + e; });
  }
  if (window.Hls && Hls.isSupported()) {
    // lowLatencyMode is hls.js's default: LL-HLS playlists are played from their parts. A start
    // behind the target latency (playback starts at an independent part) is caught up by
    // playing up to 1.25x, as hls.js does not by default.
    var hls = window.riverHls = new Hls({ maxLiveSyncPlaybackRate: 1.25 });
    hls.on(Hls.Events.ERROR, function (ev, d) {
      errors.push(d.type + " " + d.details + (d.fatal ? " (fatal)" : "") +
        (d.reason ? ": " + d.reason : ""));
      if (!d.fatal) return;
      state = "error: " + d.type + " " + d.details;
      if (again && d.type === Hls.ErrorTypes.NETWORK_ERROR) {
        setTimeout(function () { hls.loadSource(src); }, 2000);
      } else if (d.type === Hls.ErrorTypes.NETWORK_ERROR) {
        setTimeout(function () { hls.startLoad(); }, 1000);
      } else if (d.type === Hls.ErrorTypes.MEDIA_ERROR) {
        hls.recoverMediaError();
      }
    });
    hls.on(Hls.Events.MANIFEST_PARSED, play);
    hls.loadSource(src);
    hls.attachMedia(video);
    state = "hls.js " + Hls.version;
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = src;
    video.addEventListener("loadedmetadata", play);
    state = "native HLS";
  } else {
    state = "this browser plays neither hls.js (MSE) nor native HLS";
  }
  video.addEventListener("playing", function () { state = "playing"; });
  video.addEventListener("waiting", function () { state = "buffering"; });
  video.addEventListener("ended", function () {
    state = "ended";
    if (again && window.riverHls) setTimeout(function () { riverHls.loadSource(src); }, 2000);
  });
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
        let p = page("/live/", "movie");
        assert!(p.contains(r#"var src = "/live/movie.m3u8", again = false;"#));
        assert!(p.contains(r#"<pre id="status">frames: 0</pre>"#));
        assert!(p.contains(r#"<script src="/hls.min.js"></script>"#));
        assert!(!p.contains("{SRC}") && !p.contains("{TITLE}"));
        // Every hls.js error is recorded for players and tests, fatal or not.
        assert!(p.contains("var errors = window.riverErrors = [];"));
        assert!(p.contains("errors.push(d.type + \" \" + d.details"));
        // Tests read hls.js's own numbers (latency) from it.
        assert!(
            p.contains("var hls = window.riverHls = new Hls({ maxLiveSyncPlaybackRate: 1.25 });")
        );
    }

    #[test]
    fn names_cannot_break_out_of_the_page() {
        let p = page("/live/", "a\"</script><b>'&");
        assert!(
            p.contains(r#"var src = "/live/a%22%3C/script%3E%3Cb%3E%27%26.m3u8", again = false;"#)
        );
        assert!(!p.contains("<b>"));
        assert_eq!(url_path_escape("a b/é"), "a%20b/%C3%A9");
    }

    #[test]
    fn hls_js_is_embedded_with_its_licence() {
        assert!(HLS_JS.len() > 100_000);
        assert!(HLS_JS.starts_with(b"!function"));
        assert!(HLS_JS_LICENSE.contains("Apache License"));
    }
}
