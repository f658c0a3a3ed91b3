//! What river-rtmp-in's `--stats` and `--metrics` show: connections, publishes, refusals,
//! timeouts, publishers paused by a slow output, bytes in and out, and the frames written (from
//! the [`FlvSplice`]s: stdout's, and each --exec child's).

use crate::pipeline::progress::Meter;
use crate::proto::rtmp::FlvSplice;

/// Counted by the reactor as things happen.
#[derive(Default)]
pub struct Counts {
    pub accepted: u64,
    pub publishes: u64,
    /// Connections, publishes and plays refused (names, keys, limits).
    pub refused: u64,
    /// Connections closed for a handshake, idle or write deadline.
    pub timeouts: u64,
    /// Times a publisher stopped being read because its output was backed up.
    pub output_stalls: u64,
    /// RTMP bytes read from the sockets.
    pub bytes_in: u64,
    /// Frames and bytes of the --exec children that are gone.
    pub done_frames: [u64; 2],
    pub done_bytes: u64,
}

impl Counts {
    /// An --exec child's output is complete: its figures are kept.
    pub fn child_done(&mut self, flv: &FlvSplice) {
        self.done_frames[0] += flv.frames[0];
        self.done_frames[1] += flv.frames[1];
        self.done_bytes += flv.bytes_out;
    }

    /// Sets the meter: `open` connections, `publishing` publishes live, and the splices that
    /// are writing (stdout's, or the live children's). The media time is stdout's (one stream);
    /// with --exec it is not shown (many streams).
    pub fn publish<'a>(
        &self,
        m: &mut Meter,
        open: usize,
        publishing: usize,
        stdout: Option<&'a FlvSplice>,
        children: impl Iterator<Item = &'a FlvSplice>,
    ) {
        let (mut frames, mut bytes) = (self.done_frames, self.done_bytes);
        for f in stdout.into_iter().chain(children) {
            frames[0] += f.frames[0];
            frames[1] += f.frames[1];
            bytes += f.bytes_out;
        }
        let span = stdout
            .and_then(FlvSplice::span_ms)
            .map(|(a, b)| (a * 90, b * 90));
        m.set_frames(frames[0], frames[1], span);
        m.bytes_in = self.bytes_in;
        m.bytes_out = bytes;
        let mut one = |name, help, counter, v: u64| m.set(name, help, counter, v as f64);
        one("connections", "RTMP connections open.", false, open as u64);
        one(
            "connections_total",
            "RTMP connections accepted.",
            true,
            self.accepted,
        );
        one(
            "publishing",
            "Publishes in progress.",
            false,
            publishing as u64,
        );
        one(
            "publishes_total",
            "Publishes accepted.",
            true,
            self.publishes,
        );
        one(
            "refused_total",
            "Connects, publishes and plays refused.",
            true,
            self.refused,
        );
        one(
            "timeouts_total",
            "Connections closed by a handshake, idle or write deadline.",
            true,
            self.timeouts,
        );
        one(
            "output_stalls_total",
            "Times a publisher was paused because its output (stdout or --exec) was backed up.",
            true,
            self.output_stalls,
        );
    }
}
