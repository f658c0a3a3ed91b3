//! Shared harnesses for the RTSP integration tests: a `river-relay serve` hub with every front on
//! 127.0.0.1:0, the gst-rtsp-server stand-in camera (tests/fixtures/rtsp/server.py), and the
//! players (ffmpeg, GStreamer through tests/fixtures/rtsp/gst_play.py). Every wait has a
//! deadline; a missing peer fails with an install hint.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{river, tmpdir, wait_deadline};

/// How long a peer may take to answer on a loaded 2-core machine.
pub const WAIT: Duration = Duration::from_secs(30);

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

/// A unique directory under the test temp dir.
pub fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = tmpdir().join(format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Collects a child's stderr lines in the background.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn follow(child: &mut Child) -> Log {
        let log = Log::default();
        let l = log.clone();
        let err = child.stderr.take().expect("stderr piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l.0.lock().unwrap().push(line);
            }
        });
        log
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits for a line containing `needle` and returns it.
    pub fn wait_for(&self, needle: &str, what: &str) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(
                start.elapsed() < WAIT,
                "{what} never logged {needle:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }
}

/// A running `river-relay serve` with fstream, HTTP and RTSP fronts on 127.0.0.1:0 and the users
/// given as (name, password); killed on drop.
pub struct Hub {
    child: Child,
    pub fstream: String,
    pub http: String,
    pub rtsp: String,
    pub log: Log,
}

impl Hub {
    pub fn start(users: &[(&str, &str)]) -> Hub {
        Hub::start_with(users, &[])
    }

    /// [`Hub::start`] with more `serve` options.
    pub fn start_with(users: &[(&str, &str)], extra: &[&str]) -> Hub {
        let dir = scratch("rtsp-hub").join("users");
        std::fs::create_dir_all(&dir).unwrap();
        for (u, p) in users {
            std::fs::write(
                dir.join(format!("{u}.ini")),
                format!("[DEFAULT]\npassword={p}\n"),
            )
            .unwrap();
        }
        let mut child = Command::new(river("river-relay"))
            .args(["-v", "serve", "--listen", "127.0.0.1:0"])
            .args(["--http", "127.0.0.1:0", "--rtsp", "127.0.0.1:0", "--users"])
            .arg(&dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn river-relay serve");
        let log = Log::follow(&mut child);
        let addr = |what: &str| {
            let prefix = format!("river-relay: {what} listening on ");
            log.wait_for(&prefix, "river-relay serve")
                .split_once(&prefix)
                .unwrap()
                .1
                .to_string()
        };
        let (fstream, http, rtsp) = (addr("fstream"), addr("http"), addr("rtsp"));
        Hub {
            child,
            fstream,
            http,
            rtsp,
            log,
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// Waits (with a deadline) for a child from [`spawn_quiet`]; panics with its stderr if it failed.
/// Returns its stderr.
pub fn finish(mut c: Child, what: &str) -> String {
    let st = wait_deadline(&mut c, WAIT * 2, what);
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    assert!(st.success(), "{what} failed ({st}): {err}");
    err
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

/// [`finish`], with `log` (the hub's) in the panic message when the child failed.
pub fn finish_or_show(mut c: Child, what: &str, log: &Log) -> String {
    let st = wait_deadline(&mut c, WAIT * 2, what);
    let mut err = String::new();
    if let Some(mut e) = c.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    assert!(
        st.success(),
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
