//! The channels' settings, and what they tell the fronts: how a watcher watches, why one is
//! refused, and what to do after a call.

use std::time::Duration;

use super::super::cache::CacheLimits;
use super::super::http::Ext;
use super::super::pace::Unclocked;
use super::super::queue::QueueLimits;
use super::SubId;

/// The channels' settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub gop_cache: bool,
    pub queue: QueueLimits,
    pub cache: CacheLimits,
    pub max_waiting: usize,
    pub wait_timeout: Duration,
    /// The delivery of content without a clock.
    pub unclocked: Unclocked,
}

/// How a watcher watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubKind {
    /// The broadcast's bytes as they are.
    Fstream,
    /// FLV or TS, converted when the broadcast is the other.
    Http(Ext),
    /// FLV (the RTMP front turns it into messages).
    Rtmp,
    /// RTP packets in interleaved frames, from the channel's RTP view for TCP or UDP players.
    Rtsp { udp: bool },
    /// The broadcast's bytes as they are, into the hub's HLS segmenter (`relay::hls`).
    Hls,
}

impl SubKind {
    pub fn name(self) -> &'static str {
        match self {
            SubKind::Fstream => "fstream",
            SubKind::Http(Ext::Flv) => "http-flv",
            SubKind::Http(Ext::Ts) => "http-ts",
            SubKind::Rtmp => "rtmp",
            SubKind::Rtsp { udp: false } => "rtsp",
            SubKind::Rtsp { udp: true } => "rtsp/udp",
            SubKind::Hls => "hls",
        }
    }
}

/// Why a watcher is refused: logged with `why`; an HTTP watcher that has had no response yet
/// gets `status` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub why: String,
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub(super) fn new(why: String, status: u16, message: impl Into<String>) -> Self {
        Refusal {
            why,
            status,
            message: message.into(),
        }
    }
}

/// What the fronts must do after a call.
#[derive(Debug, Default)]
pub struct Effects {
    /// Watchers with something new to write (or to end): flush them. Each once until
    /// [`Channels::flushed`].
    pub flush: Vec<SubId>,
    /// Watchers the slow-watcher policy gave up on: close them with the reason.
    pub drop: Vec<(SubId, String)>,
    /// Watchers refused after all (a takeover with another password, a format they cannot get):
    /// they have left their channel; close them.
    pub refuse: Vec<(SubId, Refusal)>,
}
