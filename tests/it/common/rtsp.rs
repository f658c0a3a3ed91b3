//! Shared harnesses for the RTSP integration tests: the gst-rtsp-server stand-in camera
//! (tests/fixtures/rtsp/server.py) and the players (ffmpeg, GStreamer through
//! tests/fixtures/rtsp/gst_play.py); the hub is [`super::hub::Hub`]. Every wait has a deadline; a
//! missing peer fails with an install hint.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::wait_deadline;

pub const CAMERA_HINT: &str =
    "the RTSP tests need gst-rtsp-server with python3-gi, run by /usr/bin/python3: \
apt-get install -y python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav \
(or run .ci/run)";

pub const GST_HINT: &str =
    "the GStreamer player (tests/fixtures/rtsp/gst_play.py) needs GStreamer \
with python3-gi, run by /usr/bin/python3: apt-get install -y python3-gi gir1.2-gstreamer-1.0 \
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav \
(or run .ci/run)";

pub use super::hub::{scratch, Hub, Log, WAIT};

fn server_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rtsp/server.py")
}

/// The stand-in IP camera (gst-rtsp-server through python3-gi) started with `--log-clients`, so
/// its log counts the RTSP connections, sessions and PLAYs it served; killed on drop.
pub struct Camera {
    child: Child,
    pub url: String,
    pub log: Log,
}

impl Camera {
    pub fn start(args: &[&str]) -> Camera {
        let ok = Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import gi; gi.require_version('GstRtspServer', '1.0'); gi.require_version('GstRtsp', '1.0'); from gi.repository import GstRtspServer",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "{CAMERA_HINT}");
        let mut child = Command::new("/usr/bin/python3")
            .arg(server_script())
            .args(["--port", "0", "--log-clients"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting /usr/bin/python3: {e}; {CAMERA_HINT}"));
        let log = Log::follow(&mut child);
        let line = log.wait_for("listening rtsp://", "the RTSP test server");
        let url = line.split_once("listening ").unwrap().1.trim().to_string();
        Camera { child, url, log }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails (never skips) when the GStreamer player ([`gst_launch`]) cannot run.
pub fn require_gst() {
    let ok = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst; Gst.init(None); assert Gst.ElementFactory.find('rtspsrc')",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "{GST_HINT}");
}

/// Plays a gst-launch-1.0 pipeline description (with an rtspsrc) through
/// tests/fixtures/rtsp/gst_play.py: like `gst-launch-1.0 PIPELINE`, same stderr, but at the end
/// of the stream it pauses and tears down in turn, each request answered before the next
/// (gst-launch-1.0 1.22 cancels its own PAUSE now and then; see the script). Stdin and stdout
/// closed, stderr collected; finish with [`finish_gst`].
pub fn gst_launch(pipeline: &str) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rtsp/gst_play.py");
    Command::new("/usr/bin/python3")
        .arg(script)
        .arg(pipeline)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting /usr/bin/python3: {e}; {GST_HINT}"))
}

/// A child with stdin and stdout closed and stderr collected.
pub fn spawn_quiet(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// The end of a [`gst_launch`] player: it must exit 0 with no error on stderr (its PAUSE and
/// TEARDOWN after the end of the stream answered too); otherwise panics with its stderr and `log`
/// (the hub's). Returns its stderr.
pub fn finish_gst(mut c: Child, what: &str, log: &Log) -> String {
    let st = wait_deadline(&mut c, WAIT * 2, what);
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    assert!(
        st.success() && !err.contains("ERROR"),
        "{what} failed ({st}): {err}\nhub log:\n{}",
        log.text()
    );
    err
}

/// `ffmpeg -rtsp_transport tcp -i URL -c copy` for `secs` seconds into `out` as `format`.
pub fn ffmpeg_player(url: &str, secs: u32, format: &str, out: &Path) -> Child {
    let (t, o) = (secs.to_string(), out.to_string_lossy().to_string());
    spawn_quiet(
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
            "-t",
            &t,
            "-c",
            "copy",
            "-f",
            format,
            &o,
        ],
    )
}

/// GStreamer ([`gst_launch`]) `rtspsrc protocols=tcp` decoding H.264 to a Y4M file and AAC to a
/// WAV file (exact frame and sample counts; ffmpeg decodes both without timestamps to trip over),
/// until the server ends the stream. `rtspsrc_extra`: more rtspsrc properties.
pub fn gst_player(url: &str, y4m: &Path, wav: &Path, rtspsrc_extra: &str) -> Child {
    let pipeline = format!(
        "rtspsrc location={url} protocols=tcp {rtspsrc_extra} name=src \
         src. ! rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=Y42B ! y4menc ! filesink location={} \
         src. ! rtpmp4gdepay ! aacparse ! avdec_aac ! audioconvert ! wavenc ! filesink location={}",
        y4m.display(),
        wav.display()
    );
    gst_launch(&pipeline)
}

/// The frames of a Y4M file (counting `FRAME` headers of fixed-size 4:2:2 pictures; y4menc writes 4:2:0 decoder output with its padding, hence 4:2:2).
pub fn y4m_frames(path: &Path) -> u64 {
    let data = std::fs::read(path).unwrap();
    let Some(eol) = data.iter().position(|&b| b == b'\n') else {
        return 0;
    };
    let header = String::from_utf8_lossy(&data[..eol]).to_string();
    let dim = |tag: char| -> usize {
        header
            .split(' ')
            .find_map(|w| w.strip_prefix(tag).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    };
    let (w, h) = (dim('W'), dim('H'));
    assert!(w > 0 && h > 0, "{}: Y4M header {header:?}", path.display());
    let frame = w * h * 2;
    let mut at = eol + 1;
    let mut n = 0;
    while at < data.len() {
        let Some(nl) = data[at..].iter().position(|&b| b == b'\n') else {
            break;
        };
        assert!(
            data[at..].starts_with(b"FRAME"),
            "{}: no FRAME at {at}",
            path.display()
        );
        at += nl + 1 + frame;
        n += 1;
    }
    assert_eq!(at, data.len(), "{}: truncated frame", path.display());
    n
}
