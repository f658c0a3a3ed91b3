//! A broadcast (FLV, MPEG-TS or Annex B bytes) seen as RTP: the play side of an RTSP server.
//!
//! One [`RtpView`] per channel packetizes every frame once, for every player: it runs the bytes
//! through [`Demux`], packetizes H.264 (RFC 6184) and AAC (RFC 3640), and writes each packet as an
//! interleaved frame (`$`, channel, length, RTP packet) with one SSRC, sequence and timestamp
//! offset per track shared by all players. So the same bytes go to every TCP player (the server
//! answers SETUP with `interleaved=2i-(2i+1)` for track i), and UDP players get the same packets
//! without the 4-byte prefix. Each [`ViewPacket`] says whether it starts a video keyframe, so a
//! GOP cache can start late joiners on one and a slow player can skip to the next.
//!
//! Sender reports map the stream's media time to the wall clock at which frames reached the view,
//! one mapping for every track (the same NTP time is the same media time on all of them): one per
//! track every [`SR_INTERVAL`], and [`RtpView::join_sender_reports`] for a new player, sent before
//! its first packet so it can sync audio and video from the start.

use std::time::{Duration, Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};

use super::{aac, h264, h265, rtcp, Payload, Sender, MTU_TCP};
use crate::error::Diag;
use crate::media::{
    AudioConfig, Codec, MediaEvent, StreamFormat, Track, VideoCodec, VideoConfig, CLOCK_HZ,
};
use crate::pipeline::Demux;
use crate::proto::sdp::{self, PT_AAC, PT_H264, PT_H265};
use crate::proto::util::splitmix64;

/// How often sender reports go out.
pub const SR_INTERVAL: Duration = Duration::from_secs(2);
/// Drift between media time and the wall clock after which sender reports are re-anchored.
pub const REANCHOR: Duration = Duration::from_secs(3);

/// One interleaved frame of the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewPacket {
    /// `$`, channel, 16-bit length, then the RTP or RTCP packet.
    pub data: Bytes,
    /// The first packet of a video keyframe (the STAP-A with SPS and PPS).
    pub keyframe: bool,
    pub rtcp: bool,
}

struct Out {
    index: usize,
    sender: Sender,
}

pub struct RtpView {
    demux: Demux,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// Track layout fixed at the first frame: (video, audio) senders by track index.
    v: Option<Out>,
    a: Option<Out>,
    started: bool,
    h264: h264::Packetizer,
    h265: h265::Packetizer,
    /// Draws each track's SSRC, first sequence number and RTP time offset.
    rng: u64,
    /// Media time of the newest frame and when it arrived.
    clock: Option<(i64, SystemTime)>,
    /// The media time ↔ wall clock mapping sender reports use: fixed, so that bursts of frames
    /// (aggregated audio, a flushed end, a primed cache) do not move it; re-anchored only when the
    /// stream drifts from it by more than [`REANCHOR`].
    anchor: Option<(i64, SystemTime)>,
    last_sr: Option<Instant>,
    events: Vec<MediaEvent>,
    diags: Vec<Diag>,
    payloads: Vec<Payload>,
    /// Why the view cannot go on (not H.264/AAC, or a demux error).
    pub failed: Option<String>,
    pub frames: u64,
    last_dts: [Option<i64>; 2],
    /// Frames skipped because their DTS did not advance.
    pub skipped: u64,
}

impl RtpView {
    /// `input`: the broadcast's format, when known (else detected). `seed`: where the tracks'
    /// SSRCs, first sequence numbers and RTP time offsets come from; unpredictable in a server
    /// ([`crate::proto::util::random_u64`]), fixed in a test.
    pub fn new(input: Option<StreamFormat>, seed: u64) -> Self {
        RtpView {
            // Players get what RTP can carry of the broadcast; other tracks are logged and dropped.
            demux: Demux::new(input, None, 10.0).dropping_unsupported(),
            video: None,
            audio: None,
            v: None,
            a: None,
            started: false,
            h264: h264::Packetizer::new(MTU_TCP),
            h265: h265::Packetizer::new(MTU_TCP),
            rng: seed,
            clock: None,
            anchor: None,
            last_sr: None,
            events: Vec::new(),
            diags: Vec::new(),
            payloads: Vec::new(),
            failed: None,
            frames: 0,
            last_dts: [None; 2],
            skipped: 0,
        }
    }

    /// Packetizes H.264 and H.265 into RTP payloads of at most `mtu` bytes (default [`MTU_TCP`]; use
    /// [`super::MTU_UDP`] for datagrams that must not be fragmented).
    pub fn with_mtu(mut self, mtu: usize) -> Self {
        self.h264 = h264::Packetizer::new(mtu);
        self.h265 = h265::Packetizer::new(mtu);
        self
    }

    /// Whether the tracks are known (an SDP can be written).
    pub fn ready(&self) -> bool {
        self.started
    }

    /// Diagnostics from the demuxer since the last call.
    pub fn take_diags(&mut self) -> Vec<Diag> {
        std::mem::take(&mut self.diags)
    }

    /// The SDP for players, once [`RtpView::ready`].
    pub fn sdp(&self, origin: &str, name: &str) -> Option<String> {
        if !self.started {
            return None;
        }
        Some(sdp::write(
            self.v.as_ref().and(self.video.as_ref()),
            self.a.as_ref().and(self.audio.as_ref()),
            origin,
            name,
        ))
    }

    /// Number of tracks in the SDP.
    pub fn tracks(&self) -> usize {
        usize::from(self.v.is_some()) + usize::from(self.a.is_some())
    }

    /// Pushes broadcast bytes; appends the packets they complete.
    pub fn push(&mut self, data: &[u8], now: Instant, wall: SystemTime, out: &mut Vec<ViewPacket>) {
        if self.failed.is_some() {
            return;
        }
        let mut evs = std::mem::take(&mut self.events);
        if let Err(e) = self.demux.push(data, &mut evs, &mut self.diags) {
            self.failed = Some(e.to_string());
        }
        self.events_out(&mut evs, now, wall, out);
        self.events = evs;
    }

    /// The broadcast ended: flushes what the demuxer holds.
    pub fn finish(&mut self, now: Instant, wall: SystemTime, out: &mut Vec<ViewPacket>) {
        if self.failed.is_some() {
            return;
        }
        let mut evs = std::mem::take(&mut self.events);
        if let Err(e) = self.demux.finish(&mut evs, &mut self.diags) {
            self.failed = Some(e.to_string());
        }
        self.events_out(&mut evs, now, wall, out);
        self.events = evs;
    }

    fn start(&mut self) {
        self.started = true;
        let mut idx = 0;
        if let Some(v) = &self.video {
            let pt = match v.codec {
                VideoCodec::H264 => PT_H264,
                VideoCodec::H265 => PT_H265,
            };
            let r = splitmix64(&mut self.rng);
            self.v = Some(Out {
                index: idx,
                sender: Sender::new(r as u32, (r >> 32) as u16, (r >> 40) as u32, 90_000, pt),
            });
            idx += 1;
        }
        if let Some(a) = &self.audio {
            let r = splitmix64(&mut self.rng);
            self.a = Some(Out {
                index: idx,
                sender: Sender::new(
                    r as u32,
                    (r >> 32) as u16,
                    (r >> 40) as u32,
                    a.sample_rate.max(1),
                    PT_AAC,
                ),
            });
        }
    }

    fn events_out(
        &mut self,
        evs: &mut Vec<MediaEvent>,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<ViewPacket>,
    ) {
        for ev in evs.drain(..) {
            match ev {
                // Players have the SDP: a new video codec cannot be signalled to them.
                MediaEvent::Video(c)
                    if self.v.is_some()
                        && self.video.as_ref().is_some_and(|v| v.codec != c.codec) =>
                {
                    self.failed = Some(format!(
                        "the video codec changed to {} after the SDP went out",
                        c.codec.name()
                    ));
                }
                MediaEvent::Video(c) => self.video = Some(c),
                MediaEvent::Audio(c) => {
                    // A new sample rate cannot be signalled to players that have the SDP.
                    if self
                        .a
                        .as_ref()
                        .is_some_and(|a| a.sender.clock_rate != c.sample_rate)
                    {
                        self.failed =
                            Some(format!("the AAC sample rate changed to {}", c.sample_rate));
                    }
                    self.audio = Some(c)
                }
                MediaEvent::Tracks { .. } | MediaEvent::Discontinuity => {}
                MediaEvent::Frame(f) => {
                    if !self.started {
                        if self.video.is_none() && self.audio.is_none() {
                            continue;
                        }
                        self.start();
                    }
                    let (slot, track) = match f.track {
                        Track::Video => (self.v.as_mut(), Track::Video),
                        Track::Audio => (self.a.as_mut(), Track::Audio),
                    };
                    let Some(o) = slot else { continue };
                    // A frame that does not advance its track's DTS cannot be timed for a player
                    // (RTP carries one timestamp); it is skipped.
                    let last = &mut self.last_dts[(track == Track::Audio) as usize];
                    if last.is_some_and(|l| f.dts <= l) {
                        self.skipped += 1;
                        continue;
                    }
                    *last = Some(f.dts);
                    self.payloads.clear();
                    match track {
                        Track::Video => match f.codec {
                            Codec::H265 => {
                                self.h265
                                    .packetize(&f, self.video.as_ref(), &mut self.payloads)
                            }
                            _ => self
                                .h264
                                .packetize(&f, self.video.as_ref(), &mut self.payloads),
                        },
                        Track::Audio => aac::Packetizer.packetize(&f, &mut self.payloads),
                    }
                    let ch = (o.index * 2) as u8;
                    for (i, p) in self.payloads.iter().enumerate() {
                        let mut b = BytesMut::with_capacity(p.data.len() + 16);
                        b.put_u8(b'$');
                        b.put_u8(ch);
                        b.put_u16((p.data.len() + 12) as u16);
                        b.put_slice(&o.sender.next_header(p));
                        b.put_slice(&p.data);
                        out.push(ViewPacket {
                            data: b.freeze(),
                            keyframe: i == 0 && track == Track::Video && f.keyframe,
                            rtcp: false,
                        });
                    }
                    self.frames += 1;
                    if self.clock.is_none_or(|(p, _)| f.pts > p) {
                        self.clock = Some((f.pts, wall));
                    }
                    match self.anchor {
                        None => self.anchor = Some((f.pts, wall)),
                        Some((p0, w0)) => {
                            let media = (f.pts - p0) as f64 / CLOCK_HZ as f64;
                            let real = match wall.duration_since(w0) {
                                Ok(d) => d.as_secs_f64(),
                                Err(e) => -e.duration().as_secs_f64(),
                            };
                            if (media - real).abs() > REANCHOR.as_secs_f64() {
                                self.anchor = Some((f.pts, wall));
                            }
                        }
                    }
                }
            }
        }
        if self.started
            && self
                .last_sr
                .is_none_or(|t| now.duration_since(t) >= SR_INTERVAL)
        {
            self.last_sr = Some(now);
            for b in self.sender_reports(wall) {
                out.push(ViewPacket {
                    data: b,
                    keyframe: false,
                    rtcp: true,
                });
            }
        }
    }

    /// Anchors the sender reports' clock at the newest frame, now: after a burst that is not
    /// real time (the GOP cache replayed into a new view).
    pub fn reanchor(&mut self, wall: SystemTime) {
        if let Some((pts, _)) = self.clock {
            self.anchor = Some((pts, wall));
        }
    }

    /// One interleaved RTCP sender report (with SDES) per track, for the current wall time.
    pub fn sender_reports(&self, wall: SystemTime) -> Vec<Bytes> {
        let at = self.media_at(wall).map(|m| (wall, m));
        self.rtcp_frames(at, false)
    }

    /// The sender reports for a player whose first packets are `packets` (the GOP cache it joins
    /// at): the mapping at the media time of the latest track's first packet, with the wall time
    /// the view's mapping gives that instant (`wall` when no packet is known).
    ///
    /// A receiver checks an SR against the RTP times it has seen of that track: GStreamer's
    /// rtpjitterbuffer holds an SR that arrives before any packet until the first one, then drops
    /// it when its RTP time is before that packet's ("older than base time") or more than
    /// `max-rtcp-rtp-time-diff` (1 s) after it ("too far ahead"); its rtpbin then syncs the
    /// tracks only at the next SR, moving one of them in mid-stream by the difference between
    /// the tracks' first packets. An SR at the live edge is a cached GOP's age after its first
    /// packets, so one at the latest first packet's time is taken instead: at or after every
    /// track's first packet, and as close to it as the tracks' first packets are to each other.
    pub fn join_sender_reports<'a>(
        &self,
        packets: impl IntoIterator<Item = &'a [u8]>,
        wall: SystemTime,
    ) -> Vec<Bytes> {
        let latest = self.first_media(packets).into_iter().flatten().max();
        let at = match latest {
            Some(m) => self.wall_at(m).map(|w| (w, m)),
            None => self.media_at(wall).map(|m| (wall, m)),
        };
        self.rtcp_frames(at, false)
    }

    /// One interleaved RTCP packet per track saying the broadcast is over: a compound sender
    /// report and BYE (RFC 3550 6.1: compound packets start with a report; ffmpeg ignores RTCP
    /// packets shorter than 12 bytes, so a lone BYE would not end its reading).
    pub fn byes(&self, wall: SystemTime) -> Vec<Bytes> {
        let at = self.media_at(wall).map(|m| (wall, m));
        self.rtcp_frames(at, true)
    }

    /// The media time (90 kHz) the sender reports' mapping gives a wall time.
    fn media_at(&self, wall: SystemTime) -> Option<i64> {
        self.anchor.map(|(pts, at)| {
            let since = match wall.duration_since(at) {
                Ok(d) => d.as_micros() as i64,
                Err(e) => -(e.duration().as_micros() as i64),
            };
            pts + since * CLOCK_HZ / 1_000_000
        })
    }

    /// The wall time the sender reports' mapping gives a media time (90 kHz).
    fn wall_at(&self, media: i64) -> Option<SystemTime> {
        let (pts, at) = self.anchor?;
        let us = (media - pts) * 1_000_000 / CLOCK_HZ;
        let d = Duration::from_micros(us.unsigned_abs());
        if us >= 0 {
            at.checked_add(d)
        } else {
            at.checked_sub(d)
        }
    }

    /// Interleaved RTCP per track: a sender report for the (wall time, media time) pair when
    /// there is one, then a BYE when `bye`; nothing without a report unless `bye`.
    fn rtcp_frames(&self, at: Option<(SystemTime, i64)>, bye: bool) -> Vec<Bytes> {
        if at.is_none() && !bye {
            return Vec::new();
        }
        let mut v = Vec::new();
        for o in [&self.v, &self.a].into_iter().flatten() {
            let mut pkt = Vec::with_capacity(64);
            if let Some((wall, media)) = at {
                let ntp = rtcp::ntp_time(wall);
                rtcp::write_sr(
                    o.sender.ssrc,
                    ntp,
                    o.sender.rtp_time(media),
                    o.sender.packets,
                    o.sender.octets,
                    "river",
                    &mut pkt,
                );
            }
            if bye {
                rtcp::write_bye(o.sender.ssrc, &mut pkt);
            }
            let mut b = BytesMut::with_capacity(pkt.len() + 4);
            b.put_u8(b'$');
            b.put_u8((o.index * 2 + 1) as u8);
            b.put_u16(pkt.len() as u16);
            b.put_slice(&pkt);
            v.push(b.freeze());
        }
        v
    }

    /// `RTP-Info` for a player whose first packets are `packets` (the GOP cache it joins at), by
    /// track index: the sequence number of each track's first RTP packet, and the RTP timestamp
    /// of one common media time on every track, the earliest first packet's. RFC 2326 §12.33:
    /// rtptime is the RTP time of the Range start (`npt=0.000-`), the same instant for every
    /// stream of the aggregate, which need not be a packet of that stream. So a client that maps
    /// each stream's RTP time to NPT from it keeps audio and video in sync, and no packet it gets
    /// is before NPT 0. Without RTP packets, no rtptime.
    pub fn rtp_info<'a>(
        &self,
        packets: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<(Option<u16>, Option<u32>)> {
        let outs: Vec<&Out> = [&self.v, &self.a].into_iter().flatten().collect();
        let first = self.first_packets(packets);
        let start = self.media_of(&first).into_iter().flatten().min();
        first
            .iter()
            .zip(&outs)
            .map(|(f, o)| (f.map(|f| f.0), start.map(|t| o.sender.rtp_time(t))))
            .collect()
    }

    /// By track index: the sequence number and RTP time of the first RTP packet in `packets`.
    fn first_packets<'a>(
        &self,
        packets: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Option<(u16, u32)>> {
        let n = self.tracks();
        let mut first: Vec<Option<(u16, u32)>> = vec![None; n];
        for p in packets {
            let Some((ch, pkt)) = unframe(p) else {
                continue;
            };
            let i = usize::from(ch / 2);
            if ch % 2 == 1 || i >= n || first[i].is_some() {
                continue;
            }
            if let Ok(r) = super::Packet::parse(pkt) {
                first[i] = Some((r.seq, r.timestamp));
            }
        }
        first
    }

    /// By track index: the media time (90 kHz) of each first packet, from its RTP time relative
    /// to the newest packet the track sent (the cache holds seconds, so the difference fits an
    /// i32).
    fn media_of(&self, first: &[Option<(u16, u32)>]) -> Vec<Option<i64>> {
        let outs = [&self.v, &self.a].into_iter().flatten();
        first
            .iter()
            .zip(outs)
            .map(|(f, o)| {
                let (_, ts) = (*f)?;
                let newest = o.sender.last_pts?;
                let back = i64::from(ts.wrapping_sub(o.sender.rtp_time(newest)) as i32);
                Some(newest + back * CLOCK_HZ / i64::from(o.sender.clock_rate.max(1)))
            })
            .collect()
    }

    /// By track index: the media time (90 kHz) of the first RTP packet in `packets`.
    fn first_media<'a>(&self, packets: impl IntoIterator<Item = &'a [u8]>) -> Vec<Option<i64>> {
        let first = self.first_packets(packets);
        self.media_of(&first)
    }
}

/// Splits an interleaved view packet into (channel, RTP/RTCP bytes).
pub fn unframe(data: &[u8]) -> Option<(u8, &[u8])> {
    if data.len() < 4 || data[0] != b'$' {
        return None;
    }
    let n = usize::from(u16::from_be_bytes([data[2], data[3]]));
    Some((data[1], data.get(4..4 + n)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::rtp::ingest::Ingest;
    use crate::proto::rtsp::{Lower, StreamSetup, Transport};
    use crate::proto::sdp::Sdp;

    const FLV: &[u8] = include_bytes!("../../../tests/fixtures/flv/ffmpeg-x264-aac-160x120-1s.flv");
    const TS: &[u8] = include_bytes!("../../../tests/fixtures/ts/ffmpeg-lavfi-h264-aac-1s.ts");
    const TS_H265: &[u8] = include_bytes!("../../../tests/fixtures/ts/ffmpeg-lavfi-h265-aac-1s.ts");

    /// The wall clock the tests' frames arrive at (2026-11-22T04:10:05Z).
    fn wall() -> SystemTime {
        std::time::UNIX_EPOCH + Duration::from_secs(1_795_320_605)
    }

    fn view_of(input: &[u8], chunk: usize) -> (RtpView, Vec<ViewPacket>) {
        let mut v = RtpView::new(None, 7);
        let mut out = Vec::new();
        let now = Instant::now();
        let wall = wall();
        for c in input.chunks(chunk) {
            v.push(c, now, wall, &mut out);
        }
        v.finish(now, wall, &mut out);
        (v, out)
    }

    /// The view's packets back through an RTSP publisher's ingest: every frame comes back.
    #[test]
    fn view_round_trips_through_ingest() {
        for input in [FLV, TS, TS_H265] {
            let (v, packets) = view_of(input, 4096);
            assert!(v.failed.is_none());
            let sdp = Sdp::parse(&v.sdp("127.0.0.1", "live/cam").unwrap()).unwrap();
            assert_eq!(sdp.media.len(), 2);
            let streams: Vec<StreamSetup> = (0..2)
                .map(|i| StreamSetup {
                    index: i,
                    control: sdp::track_control(i),
                    transport: Transport {
                        lower: Lower::Tcp {
                            interleaved: (2 * i as u8, 2 * i as u8 + 1),
                        },
                        record: true,
                        ssrc: None,
                    },
                    ssrc: 0,
                    seq: 0,
                    rtptime: 0,
                })
                .collect();
            let mut ingest = Ingest::new(&sdp, &streams).unwrap();
            let (mut ev, mut diags) = (Vec::new(), Vec::new());
            assert!(packets[0].keyframe, "the view starts on a keyframe");
            for p in &packets {
                let (ch, pkt) = unframe(&p.data).unwrap();
                if ch % 2 == 1 {
                    assert!(p.rtcp);
                    ingest.push_rtcp(usize::from(ch / 2), pkt);
                } else {
                    ingest.push_rtp(usize::from(ch / 2), pkt, 0, &mut ev, &mut diags);
                }
            }
            assert!(diags.is_empty(), "{diags:?}");
            let count = |t: Track| {
                ev.iter()
                    .filter(|e| matches!(e, MediaEvent::Frame(f) if f.track == t))
                    .count()
            };
            // The source's frame counts, as the demuxer sees them.
            let mut d = Demux::new(None, None, 10.0);
            let (mut src, mut sd) = (Vec::new(), Vec::new());
            d.push(input, &mut src, &mut sd).unwrap();
            d.finish(&mut src, &mut sd).unwrap();
            let want = |t: Track| {
                src.iter()
                    .filter(|e| matches!(e, MediaEvent::Frame(f) if f.track == t))
                    .count()
            };
            assert_eq!(count(Track::Video), want(Track::Video));
            assert_eq!(count(Track::Audio), want(Track::Audio));
            assert!(packets.iter().filter(|p| p.keyframe).count() >= 1);
        }
    }

    /// With the same seed, the same RTP packets (ids included) whatever the chunking.
    #[test]
    fn same_packets_under_any_chunking() {
        let (_, a) = view_of(FLV, 100_000);
        let (_, b) = view_of(FLV, 7);
        let rtp = |p: &[ViewPacket]| -> Vec<ViewPacket> {
            p.iter().filter(|p| !p.rtcp).cloned().collect()
        };
        assert!(!rtp(&a).is_empty());
        assert!(rtp(&a) == rtp(&b));
    }

    /// RTP-Info: each track's first sequence number, and one media instant (the earliest first
    /// packet's) as every track's rtptime.
    #[test]
    fn rtp_info_gives_first_seq_and_a_common_start() {
        let (v, packets) = view_of(FLV, 4096);
        let rtp: Vec<&[u8]> = packets
            .iter()
            .filter(|p| !p.rtcp)
            .map(|p| &p.data[..])
            .collect();
        let senders = [&v.v.as_ref().unwrap().sender, &v.a.as_ref().unwrap().sender];
        // Media time (90 kHz) of an RTP time on a track; the fixture starts near 0.
        let media = |i: usize, ts: u32| {
            let s = senders[i];
            i64::from(ts.wrapping_sub(s.offset)) * CLOCK_HZ / i64::from(s.clock_rate)
        };
        // Join at every packet of the first half: the info must follow.
        for skip in 0..rtp.len() / 2 {
            let join = &rtp[skip..];
            let mut first: [Option<(u16, u32)>; 2] = [None; 2];
            for p in join {
                let (ch, pkt) = unframe(p).unwrap();
                let r = crate::proto::rtp::Packet::parse(pkt).unwrap();
                let f = &mut first[usize::from(ch / 2)];
                if f.is_none() {
                    *f = Some((r.seq, r.timestamp));
                }
            }
            let info = v.rtp_info(join.iter().copied());
            assert_eq!(info.len(), 2);
            let start = (0..2)
                .filter_map(|i| first[i].map(|f| media(i, f.1)))
                .min()
                .unwrap();
            for i in 0..2 {
                assert_eq!(info[i].0, first[i].map(|f| f.0), "skip {skip}: seq of {i}");
                let t = media(i, info[i].1.expect("rtptime"));
                // Within one audio sample of rounding.
                assert!(
                    (t - start).abs() <= 3,
                    "skip {skip}: track {i} rtptime at {t}, start {start}"
                );
            }
        }
        // Nothing cached: no rtptime.
        assert_eq!(v.rtp_info(std::iter::empty()), vec![(None, None); 2]);
    }

    /// (SSRC, NTP seconds, RTP time) of each track's sender report, by track index.
    fn srs(frames: &[Bytes]) -> Vec<(u32, f64, u32)> {
        frames
            .iter()
            .map(|b| {
                let (ch, pkt) = unframe(b).unwrap();
                assert_eq!(ch % 2, 1);
                match rtcp::parse(pkt)[0] {
                    rtcp::Rtcp::SenderReport {
                        ssrc,
                        ntp,
                        rtp_time,
                    } => (ssrc, ntp as f64 / (1u64 << 32) as f64, rtp_time),
                    ref other => panic!("{other:?}"),
                }
            })
            .collect()
    }

    /// A joiner's sender reports are at the latest track's first packet: each track's RTP time
    /// is at or after its first packet and within the tracks' spread of first packets of it
    /// (GStreamer drops an SR before a track's first packet or more than 1 s after it); and they
    /// are on the same NTP ↔ media mapping as the periodic reports.
    #[test]
    fn join_sender_reports_are_at_the_first_packets_on_the_common_mapping() {
        let (v, packets) = view_of(FLV, 4096);
        let rtp: Vec<&[u8]> = packets
            .iter()
            .filter(|p| !p.rtcp)
            .map(|p| &p.data[..])
            .collect();
        let senders = [&v.v.as_ref().unwrap().sender, &v.a.as_ref().unwrap().sender];
        let rate = |i: usize| f64::from(senders[i].clock_rate);
        // Seconds from RTP time `a` to `b` on track i.
        let secs = |i: usize, a: u32, b: u32| f64::from(b.wrapping_sub(a) as i32) / rate(i);
        let later = wall() + Duration::from_secs(5);
        let now = srs(&v.sender_reports(later));
        for skip in 0..rtp.len() / 2 {
            let join = &rtp[skip..];
            let mut first: [Option<u32>; 2] = [None; 2];
            for p in join {
                let (ch, pkt) = unframe(p).unwrap();
                let f = &mut first[usize::from(ch / 2)];
                if f.is_none() {
                    *f = Some(crate::proto::rtp::Packet::parse(pkt).unwrap().timestamp);
                }
            }
            let got = srs(&v.join_sender_reports(join.iter().copied(), later));
            assert_eq!(got.len(), 2);
            // Media time of each first packet relative to track 0's, and their spread.
            let rel: Vec<f64> = (0..2)
                .map(|i| {
                    secs(i, now[i].2, first[i].unwrap()) - secs(0, now[0].2, first[0].unwrap())
                })
                .collect();
            let spread = (rel[0] - rel[1]).abs();
            for i in 0..2 {
                assert_eq!(got[i].0, senders[i].ssrc);
                assert_eq!(
                    got[i].1, got[0].1,
                    "skip {skip}: one NTP time for all tracks"
                );
                let ahead = secs(i, first[i].unwrap(), got[i].2);
                assert!(
                    (-0.0001..=spread + 0.0001).contains(&ahead),
                    "skip {skip}: track {i}'s SR is {ahead} s after its first packet (spread {spread})"
                );
                // Same mapping: the media time between the two reports equals their NTP time.
                let media = secs(i, got[i].2, now[i].2);
                let wall = now[i].1 - got[i].1;
                assert!(
                    (media - wall).abs() < 0.0001,
                    "skip {skip}: track {i}: {media} s of media over {wall} s of NTP time"
                );
            }
        }
        // Nothing cached: the reports are for the given wall time.
        let got = srs(&v.join_sender_reports(std::iter::empty(), later));
        assert_eq!(got, now);
    }

    #[test]
    fn byes_are_compound_with_a_sender_report_first() {
        let (v, _) = view_of(FLV, 100_000);
        let byes = v.byes(wall() + Duration::from_secs(1));
        assert_eq!(byes.len(), 2);
        for b in &byes {
            let (ch, pkt) = unframe(b).unwrap();
            assert_eq!(ch % 2, 1);
            // ffmpeg drops RTCP packets under 12 bytes.
            assert!(pkt.len() >= 12);
            let parts = rtcp::parse(pkt);
            assert!(
                matches!(parts[0], rtcp::Rtcp::SenderReport { .. }),
                "{parts:?}"
            );
            assert!(
                matches!(parts.last(), Some(rtcp::Rtcp::Bye { .. })),
                "{parts:?}"
            );
        }
    }

    #[test]
    fn opaque_input_fails_cleanly() {
        let mut v = RtpView::new(Some(StreamFormat::Flv), 7);
        let mut out = Vec::new();
        v.push(b"this is not flv at all", Instant::now(), wall(), &mut out);
        assert!(v.failed.is_some() || !v.ready());
        assert!(out.is_empty());
    }
}
