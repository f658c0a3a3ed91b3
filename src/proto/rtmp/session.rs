//! The server side of an RTMP connection, sans-IO.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use amf::amf0::Value;
use bytes::Bytes;

use super::chunk::{read_u32, ChunkReader, ChunkWriter, Message, ReaderLimits};
use super::handshake::{ServerHandshake, HANDSHAKE_SIZE};
use super::message::{status, Command, MessageType, UserControl};
use super::{RtmpError, RtmpErrorKind};
use crate::format::flv::parse_script;

mod answers;

/// The Enhanced RTMP video FourCCs river carries, announced in the connect `_result`.
pub const ACCEPTED_FOURCCS: [&str; 2] = ["avc1", "hvc1"];

/// Chunk streams used for what the server sends.
const CS_CONTROL: u32 = 2;
const CS_COMMAND: u32 = 3;
/// Audio messages to players.
pub const CS_AUDIO: u32 = 4;
/// Data messages (metadata, `|RtmpSampleAccess`) and a stream's status commands.
pub const CS_DATA: u32 = 5;
/// Video messages to players.
pub const CS_VIDEO: u32 = 6;
/// The chunk streams a player's media and metadata go on.
pub const MEDIA_CSIDS: [u32; 3] = [CS_AUDIO, CS_DATA, CS_VIDEO];

/// Limits and settings of a [`ServerSession`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Limits of the chunk reader (chunk size, message size, buffered bytes, chunk streams).
    pub limits: ReaderLimits,
    /// Most message streams (createStream) per connection.
    pub max_streams: u32,
    /// The handshake and the connect command must be done within this time.
    pub handshake_timeout: Duration,
    /// Close when nothing arrives for this long (`None`: never). A player may send nothing for a
    /// long time (it acknowledges only every `window_ack_size` bytes): a server that plays should
    /// call [`ServerSession::send_ping`] more often than this (the PingResponse counts), or set
    /// `None`.
    pub idle_timeout: Option<Duration>,
    /// The chunk size the server sends with (announced with Set Chunk Size after connect).
    pub chunk_size: u32,
    /// Window Acknowledgement Size and Set Peer Bandwidth announced after connect.
    pub window_ack_size: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: ReaderLimits::default(),
            max_streams: 8,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(30)),
            chunk_size: 4096,
            window_ack_size: 2_500_000,
        }
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    /// The RTMP message type id (also the FLV tag type).
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Audio => 8,
            MediaKind::Video => 9,
        }
    }
}

/// What the peer did. Some events wait for an answer (see each variant).
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The client sent `connect`. Answer with [`ServerSession::accept_connect`] or
    /// [`ServerSession::reject_connect`].
    Connect {
        /// The application, as sent (may carry `?query`).
        app: String,
        tc_url: Option<String>,
        flash_ver: Option<String>,
        /// The Enhanced RTMP `fourCcList` the client announced (the video codecs it can play);
        /// `None` when it announced none (a legacy client, or ffmpeg playing without
        /// `-rtmp_enhanced_codecs`). See [`Command::fourcc_list`].
        fourcc_list: Option<Vec<String>>,
    },
    /// The client asked to publish. Answer with [`ServerSession::accept_publish`] or
    /// [`ServerSession::reject_publish`].
    Publish {
        stream_id: u32,
        /// The stream name up to the first `?`.
        stream_key: String,
        /// What followed the `?` in the stream name (empty when none).
        query: String,
        /// `live`, `record` or `append` as the client said (`live` when absent).
        publish_type: String,
    },
    /// The client asked to play. Answer with [`ServerSession::accept_play`] or
    /// [`ServerSession::reject_play`].
    Play {
        stream_id: u32,
        /// The stream name up to the first `?`.
        stream_name: String,
        query: String,
        /// The requested start (seconds; -2 live or recorded, -1 live only).
        start: f64,
    },
    /// A data message on a publishing stream. `body` is an FLV script-tag body: for
    /// `@setDataFrame` messages the `@setDataFrame` string is removed, so `onMetaData` metadata
    /// comes out exactly as an FLV file stores it. The bytes are the publisher's own.
    Metadata {
        stream_id: u32,
        timestamp: u32,
        /// The first string (`onMetaData`, `onTextData`, `onCuePoint`, ...).
        name: String,
        body: Bytes,
    },
    /// An audio or video message on a publishing stream: `body` is an FLV tag body (for video,
    /// legacy AVC or the Enhanced-RTMP FourCC header; parse it with
    /// [`crate::format::flv::VideoTag::parse`]).
    Media {
        stream_id: u32,
        kind: MediaKind,
        /// Milliseconds, absolute, wrapping at 2^32.
        timestamp: u32,
        body: Bytes,
    },
    /// A publish ended (FCUnpublish, closeStream, deleteStream, or [`ServerSession::finish`]).
    Unpublish { stream_id: u32 },
    /// A play ended (closeStream, deleteStream, or [`ServerSession::finish`]).
    PlayStop { stream_id: u32 },
    /// The session is over ([`ServerSession::finish`]).
    Closed,
}

/// Counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    /// Messages of types the session does not handle (shared objects, AMF3 data, unknown).
    pub ignored_messages: u64,
    /// Media or data on a stream that is not publishing.
    pub dropped_media: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Handshake,
    AwaitConnect,
    ConnectPending(f64),
    Connected,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StreamState {
    Idle,
    PublishPending(String),
    Publishing(String),
    PlayPending,
    Playing,
}

/// The server side of one RTMP connection. See the [module docs](super) for the driving contract.
///
/// Publish: `Connect` → `accept_connect`, `Publish` → `accept_publish`, then `Metadata` and
/// `Media` events until `Unpublish`. Play: `Connect` → `accept_connect`, `Play` → `accept_play`
/// (which sends StreamBegin, NetStream.Play.Reset, NetStream.Play.Start and |RtmpSampleAccess),
/// then [`send_metadata`](Self::send_metadata) and [`send_media`](Self::send_media) (sequence
/// headers first, then tags).
pub struct ServerSession {
    cfg: ServerConfig,
    phase: Phase,
    hs: ServerHandshake,
    reader: ChunkReader,
    writer: ChunkWriter,
    out: Vec<u8>,
    out_pos: usize,
    events: VecDeque<ServerEvent>,
    app: String,
    streams: BTreeMap<u32, StreamState>,
    next_stream_id: u32,
    peer_window: u32,
    last_ack: u64,
    started: Instant,
    last_rx: Instant,
    close: bool,
    error: Option<RtmpError>,
    stats: SessionStats,
    /// The writer may hold header state on [`MEDIA_CSIDS`] (it wrote there since
    /// [`Self::media_sent_elsewhere`] last cleared it).
    media_headers_known: bool,
}

impl ServerSession {
    /// A session for a connection accepted at `now`; `seed` fills the handshake's random part
    /// (the caller draws it, [`crate::proto::util::random_u64`]; tests fix it).
    pub fn new(cfg: ServerConfig, now: Instant, seed: u64) -> Self {
        ServerSession {
            cfg,
            phase: Phase::Handshake,
            hs: ServerHandshake::new(seed, 0),
            reader: ChunkReader::new(cfg.limits, (1 + 2 * HANDSHAKE_SIZE) as u64),
            writer: ChunkWriter::new(),
            out: Vec::new(),
            out_pos: 0,
            events: VecDeque::new(),
            app: String::new(),
            streams: BTreeMap::new(),
            next_stream_id: 1,
            peer_window: 0,
            last_ack: 0,
            started: now,
            last_rx: now,
            close: false,
            error: None,
            stats: SessionStats::default(),
            media_headers_known: false,
        }
    }

    /// The application of the accepted (or pending) connect.
    pub fn app(&self) -> &str {
        &self.app
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// True once the session wants the connection closed (after a reject, an error or
    /// [`finish`](Self::finish)): send what [`pending_output`](Self::pending_output) still holds,
    /// then close.
    pub fn should_close(&self) -> bool {
        self.close || self.error.is_some() || self.phase == Phase::Closed
    }

    /// The next event, in the order things happened.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Bytes waiting to be sent.
    pub fn pending_output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// Marks `n` bytes of [`pending_output`](Self::pending_output) as sent.
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        self.stats.bytes_out += n as u64;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos > (1 << 16) && self.out_pos * 2 > self.out.len() {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Takes all bytes waiting to be sent.
    pub fn take_output(&mut self) -> Vec<u8> {
        let mut v = std::mem::take(&mut self.out);
        if self.out_pos > 0 {
            v.drain(..self.out_pos);
            self.out_pos = 0;
        }
        self.stats.bytes_out += v.len() as u64;
        v
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_deadline(&self) -> Option<Instant> {
        if self.phase == Phase::Closed || self.error.is_some() {
            return None;
        }
        let hs = match self.phase {
            Phase::Handshake | Phase::AwaitConnect | Phase::ConnectPending(_) => {
                Some(self.started + self.cfg.handshake_timeout)
            }
            _ => None,
        };
        let idle = self.cfg.idle_timeout.map(|d| self.last_rx + d);
        match (hs, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Checks the deadlines: an error when the handshake and connect took too long, or nothing
    /// arrived for the idle timeout.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), RtmpError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let off = self.stats.bytes_in;
        let e = match self.phase {
            Phase::Handshake | Phase::AwaitConnect | Phase::ConnectPending(_)
                if now >= self.started + self.cfg.handshake_timeout =>
            {
                let what = match self.phase {
                    Phase::Handshake => "handshake",
                    _ => "connect",
                };
                RtmpError::new(
                    RtmpErrorKind::Timeout,
                    off,
                    format!(
                        "{what} not done within {:?} of the connection",
                        self.cfg.handshake_timeout
                    ),
                )
            }
            _ => match self.cfg.idle_timeout {
                Some(d) if self.phase != Phase::Closed && now >= self.last_rx + d => {
                    RtmpError::new(
                        RtmpErrorKind::Timeout,
                        off,
                        format!("nothing received for {d:?}"),
                    )
                }
                _ => return Ok(()),
            },
        };
        self.error = Some(e.clone());
        Err(e)
    }

    /// Feeds bytes received from the peer at `now`. Events queue up for
    /// [`poll_event`](Self::poll_event), answers for [`take_output`](Self::take_output). An error
    /// ends the session (every later call returns it).
    pub fn push(&mut self, data: &[u8], now: Instant) -> Result<(), RtmpError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.phase == Phase::Closed {
            return Ok(());
        }
        if !data.is_empty() {
            self.last_rx = now;
        }
        self.stats.bytes_in += data.len() as u64;
        let r = self.push_inner(data);
        if let Err(e) = &r {
            self.error = Some(e.clone());
        }
        r
    }

    fn push_inner(&mut self, mut data: &[u8]) -> Result<(), RtmpError> {
        if self.phase == Phase::Handshake {
            let used = self.hs.push(data, &mut self.out)?;
            data = &data[used..];
            if !self.hs.is_done() {
                return Ok(());
            }
            self.phase = Phase::AwaitConnect;
        }
        self.reader.feed(data);
        self.pump()?;
        if self.peer_window > 0
            && self.stats.bytes_in - self.last_ack >= u64::from(self.peer_window)
        {
            self.last_ack = self.stats.bytes_in;
            let seq = (self.stats.bytes_in as u32).to_be_bytes();
            self.control(MessageType::Acknowledgement, &seq);
        }
        Ok(())
    }

    /// Whether an event waits for the caller's answer: parsing stops there, so what the peer sent
    /// after it is handled as if the answer had come first (the result never depends on how the
    /// input was split).
    fn waiting(&self) -> bool {
        matches!(self.phase, Phase::ConnectPending(_))
            || self
                .streams
                .values()
                .any(|s| matches!(s, StreamState::PublishPending(_) | StreamState::PlayPending))
    }

    /// Handles buffered messages until one needs an answer.
    fn pump(&mut self) -> Result<(), RtmpError> {
        while !self.waiting() && !self.close && self.phase != Phase::Closed {
            match self.reader.next_message()? {
                Some(m) => self.message(m)?,
                None => return Ok(()),
            }
        }
        let held = self.reader.unparsed();
        if held > self.cfg.limits.max_buffered {
            return Err(RtmpError::new(
                RtmpErrorKind::Limit,
                self.reader.offset(),
                format!("peer sent {held} bytes while its request waited for an answer"),
            ));
        }
        Ok(())
    }

    /// Resumes parsing after an answer.
    fn resume(&mut self) -> Result<(), RtmpError> {
        let r = self.pump();
        if let Err(e) = &r {
            self.error = Some(e.clone());
        }
        r
    }

    fn perr(&self, msg: String) -> RtmpError {
        RtmpError::new(RtmpErrorKind::Protocol, self.reader.offset(), msg)
    }

    /// Every message the session sends goes through here.
    fn write(&mut self, csid: u32, type_id: u8, stream_id: u32, timestamp: u32, payload: &[u8]) {
        self.media_headers_known |= MEDIA_CSIDS.contains(&csid);
        self.writer
            .write(csid, type_id, stream_id, timestamp, payload, &mut self.out);
    }

    fn control(&mut self, t: MessageType, payload: &[u8]) {
        self.write(CS_CONTROL, t.as_u8(), 0, 0, payload);
    }

    fn user_control(&mut self, u: UserControl) {
        let p = u.encode();
        self.control(MessageType::UserControl, &p);
    }

    fn command(&mut self, stream_id: u32, name: &str, txn: f64, values: &[Value]) {
        let body = Command::encode(name, txn, values);
        let cs = if stream_id == 0 { CS_COMMAND } else { CS_DATA };
        self.write(cs, MessageType::CommandAmf0.as_u8(), stream_id, 0, &body);
    }

    fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        self.command(
            stream_id,
            "onStatus",
            0.0,
            &[Value::Null, status(level, code, description)],
        );
    }

    fn message(&mut self, m: Message) -> Result<(), RtmpError> {
        self.stats.messages_in += 1;
        match MessageType::from_u8(m.type_id) {
            MessageType::SetChunkSize | MessageType::Abort | MessageType::Acknowledgement => {}
            MessageType::WindowAckSize => {
                if let Some(v) = read_u32(&m.payload) {
                    self.peer_window = v;
                }
            }
            MessageType::SetPeerBandwidth => {}
            MessageType::UserControl => {
                if let Some(UserControl::PingRequest(t)) = UserControl::parse(&m.payload) {
                    self.user_control(UserControl::PingResponse(t));
                }
            }
            MessageType::Audio | MessageType::Video => {
                let kind = if m.type_id == 8 {
                    MediaKind::Audio
                } else {
                    MediaKind::Video
                };
                self.media(m.stream_id, kind, m.timestamp, m.payload);
            }
            MessageType::DataAmf0 => self.data(m.stream_id, m.timestamp, m.payload),
            MessageType::DataAmf3 if m.payload.first() == Some(&0) => {
                self.data(m.stream_id, m.timestamp, m.payload.slice(1..))
            }
            MessageType::CommandAmf0 => self.command_in(&m, &m.payload)?,
            MessageType::CommandAmf3 if m.payload.first() == Some(&0) => {
                self.command_in(&m, &m.payload[1..])?
            }
            MessageType::Aggregate => self.aggregate(&m),
            _ => self.stats.ignored_messages += 1,
        }
        Ok(())
    }

    fn publishing(&self, stream_id: u32) -> bool {
        matches!(
            self.streams.get(&stream_id),
            Some(StreamState::Publishing(_))
        )
    }

    fn media(&mut self, stream_id: u32, kind: MediaKind, timestamp: u32, body: Bytes) {
        if !self.publishing(stream_id) || body.is_empty() {
            self.stats.dropped_media += 1;
            return;
        }
        self.events.push_back(ServerEvent::Media {
            stream_id,
            kind,
            timestamp,
            body,
        });
    }

    fn data(&mut self, stream_id: u32, timestamp: u32, body: Bytes) {
        if !self.publishing(stream_id) {
            self.stats.dropped_media += 1;
            return;
        }
        // Bounded decode, only to validate and to learn the name; the bytes pass on unchanged.
        let Ok(s) = parse_script(&body) else {
            self.stats.ignored_messages += 1;
            return;
        };
        let body = if s.set_data_frame {
            // Strip the leading "@setDataFrame" string value: marker, u16 length, 13 bytes.
            body.slice(3 + "@setDataFrame".len()..)
        } else {
            body
        };
        self.events.push_back(ServerEvent::Metadata {
            stream_id,
            timestamp,
            name: s.name,
            body,
        });
    }

    /// An aggregate message: FLV-style tags (11-byte header, body, 4-byte back pointer), their
    /// timestamps relative to the first one's, shifted to the message's timestamp.
    fn aggregate(&mut self, m: &Message) {
        let b = &m.payload;
        let mut pos = 0usize;
        let mut first: Option<u32> = None;
        while pos + 11 <= b.len() {
            let t = b[pos];
            let size = u32::from_be_bytes([0, b[pos + 1], b[pos + 2], b[pos + 3]]) as usize;
            let ts = u32::from_be_bytes([b[pos + 7], b[pos + 4], b[pos + 5], b[pos + 6]]);
            let start = pos + 11;
            let Some(end) = start.checked_add(size).filter(|&e| e <= b.len()) else {
                self.stats.ignored_messages += 1;
                return;
            };
            let base = *first.get_or_insert(ts);
            let when = m.timestamp.wrapping_add(ts.wrapping_sub(base));
            let body = b.slice(start..end);
            match t {
                8 => self.media(m.stream_id, MediaKind::Audio, when, body),
                9 => self.media(m.stream_id, MediaKind::Video, when, body),
                18 => self.data(m.stream_id, when, body),
                _ => self.stats.ignored_messages += 1,
            }
            pos = end + 4;
        }
    }

    fn command_in(&mut self, m: &Message, body: &[u8]) -> Result<(), RtmpError> {
        let c = match Command::parse(body) {
            Ok(c) => c,
            Err(e) => return self.unreadable(m.stream_id, body, &e.to_string()),
        };
        let txn = c.transaction_id;
        match (c.name.as_str(), self.phase) {
            ("connect", Phase::AwaitConnect) => {
                self.app = c.object_str("app").unwrap_or("").to_string();
                self.phase = Phase::ConnectPending(txn);
                self.events.push_back(ServerEvent::Connect {
                    app: self.app.clone(),
                    tc_url: c.object_str("tcUrl").map(str::to_string),
                    flash_ver: c.object_str("flashVer").map(str::to_string),
                    fourcc_list: c.fourcc_list(),
                });
            }
            ("connect", _) => return Err(self.perr("a second connect command".into())),
            (name, Phase::AwaitConnect | Phase::ConnectPending(_)) => {
                return Err(self.perr(format!("command {name:?} before connect was answered")))
            }
            ("createStream", _) => {
                if self.streams.len() as u32 >= self.cfg.max_streams {
                    self.command(
                        0,
                        "_error",
                        txn,
                        &[
                            Value::Null,
                            status(
                                "error",
                                "NetConnection.Call.Failed",
                                &format!("at most {} streams per connection", self.cfg.max_streams),
                            ),
                        ],
                    );
                    return Ok(());
                }
                let id = self.next_stream_id;
                self.next_stream_id += 1;
                self.streams.insert(id, StreamState::Idle);
                self.command(0, "_result", txn, &[Value::Null, Value::Number(id as f64)]);
            }
            ("releaseStream" | "FCPublish" | "_checkbw" | "FCSubscribe", _) => {
                if txn != 0.0 {
                    self.command(0, "_result", txn, &[Value::Null, Value::Undefined]);
                }
            }
            ("getStreamLength", _) => {
                if txn != 0.0 {
                    self.command(0, "_result", txn, &[Value::Null, Value::Number(0.0)]);
                }
            }
            ("FCUnpublish", _) => {
                if txn != 0.0 {
                    self.command(0, "_result", txn, &[Value::Null, Value::Undefined]);
                }
                let key = c.arg_str(0).map(|k| split_query(k).0.to_string());
                let ids: Vec<u32> = self
                    .streams
                    .iter()
                    .filter(
                        |(_, s)| matches!(s, StreamState::Publishing(k) if Some(k) == key.as_ref()),
                    )
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    self.end_stream(id);
                }
            }
            ("publish", _) => {
                let id = m.stream_id;
                let name = c.arg_str(0).unwrap_or("").to_string();
                let publish_type = c.arg_str(1).unwrap_or("live").to_string();
                match self.streams.get(&id) {
                    Some(StreamState::Idle) => {}
                    Some(_) => {
                        self.on_status(
                            id,
                            "error",
                            "NetStream.Publish.BadConnection",
                            "stream already in use",
                        );
                        return Ok(());
                    }
                    None => {
                        return Err(
                            self.perr(format!("publish on stream {id}, which was never created"))
                        )
                    }
                }
                let (key, query) = split_query(&name);
                let (key, query) = (key.to_string(), query.to_string());
                self.streams
                    .insert(id, StreamState::PublishPending(key.clone()));
                self.events.push_back(ServerEvent::Publish {
                    stream_id: id,
                    stream_key: key,
                    query,
                    publish_type,
                });
            }
            ("play", _) => {
                let id = m.stream_id;
                match self.streams.get(&id) {
                    Some(StreamState::Idle) => {}
                    Some(_) => return Ok(()),
                    None => {
                        return Err(
                            self.perr(format!("play on stream {id}, which was never created"))
                        )
                    }
                }
                let name = c.arg_str(0).unwrap_or("");
                let (n, q) = split_query(name);
                let ev = ServerEvent::Play {
                    stream_id: id,
                    stream_name: n.to_string(),
                    query: q.to_string(),
                    start: c.arg_num(1).unwrap_or(-2.0),
                };
                self.streams.insert(id, StreamState::PlayPending);
                self.events.push_back(ev);
            }
            ("deleteStream", _) => {
                if let Some(id) = c.arg_num(0) {
                    let id = id as u32;
                    self.end_stream(id);
                    self.streams.remove(&id);
                }
            }
            ("closeStream", _) => self.end_stream(m.stream_id),
            ("pause" | "seek" | "receiveAudio" | "receiveVideo", _) => {}
            (name, _) => {
                self.stats.ignored_messages += 1;
                if txn != 0.0 {
                    let d = format!("unknown command {name}");
                    self.command(
                        0,
                        "_error",
                        txn,
                        &[
                            Value::Null,
                            status("error", "NetConnection.Call.Failed", &d),
                        ],
                    );
                }
            }
        }
        Ok(())
    }

    /// A command whose arguments do not decode (a name that is not UTF-8 is the usual one: ffmpeg
    /// sends the stream name in `releaseStream`, `FCPublish` and `getStreamLength` too). A
    /// `connect`, `publish` or `play` gets the error status the client waits for, so it can say
    /// why, and the session fails. Any other command (the chunk stream is intact) is skipped like
    /// an unknown one: `_error` when it has a transaction id.
    fn unreadable(&mut self, stream_id: u32, body: &[u8], why: &str) -> Result<(), RtmpError> {
        let Some((name, txn)) = Command::head(body) else {
            return Err(self.perr(format!("bad command message: {why}")));
        };
        let d = format!("{name}: {why}");
        let idle = self.streams.get(&stream_id) == Some(&StreamState::Idle);
        match (name, self.phase) {
            ("connect", Phase::AwaitConnect) => {
                let info = status("error", "NetConnection.Connect.Rejected", &d);
                self.command(0, "_error", txn, &[Value::Null, info]);
            }
            ("publish", _) if idle => {
                self.on_status(stream_id, "error", "NetStream.Publish.BadName", &d);
            }
            ("play", _) if idle => {
                self.on_status(stream_id, "error", "NetStream.Play.StreamNotFound", &d);
            }
            ("connect" | "publish" | "play", _) => {}
            _ => {
                self.stats.ignored_messages += 1;
                if txn != 0.0 {
                    let info = status("error", "NetConnection.Call.Failed", &d);
                    self.command(0, "_error", txn, &[Value::Null, info]);
                }
                return Ok(());
            }
        }
        Err(self.perr(format!("bad command message: {d}")))
    }

    fn end_stream(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        let was = std::mem::replace(s, StreamState::Idle);
        match was {
            StreamState::Publishing(_) => self
                .events
                .push_back(ServerEvent::Unpublish { stream_id: id }),
            StreamState::Playing => self
                .events
                .push_back(ServerEvent::PlayStop { stream_id: id }),
            _ => {}
        }
    }

    fn state_err(&self, msg: String) -> RtmpError {
        RtmpError::new(RtmpErrorKind::State, self.reader.offset(), msg)
    }
}

/// `key?a=b` → (`key`, `a=b`).
fn split_query(name: &str) -> (&str, &str) {
    match name.split_once('?') {
        Some((a, b)) => (a, b),
        None => (name, ""),
    }
}
