//! RTSP players: the channel's RTP views and the watchers that play them.

use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::{ChanKey, Channels, Sub, SubId, SubKind};
use crate::media::StreamFormat;
use crate::relay::queue::WatcherQueue;
use crate::relay::rtsp::RtpChannel;

impl Channels {
    /// The channel's RTP view for TCP or UDP players, made on first use and primed with the
    /// broadcast's headers and cached GOP. Errors are RTSP statuses: 404 not live, 503 format not
    /// known yet, 415 not carried over RTP.
    pub fn rtp_view(
        &mut self,
        key: &ChanKey,
        udp: bool,
        now: Instant,
        wall: SystemTime,
    ) -> Result<&mut RtpChannel, u16> {
        let limits = self.cfg.cache;
        let ch = self.map.get_mut(key).filter(|c| c.live()).ok_or(404u16)?;
        let format = ch.format.ok_or(503u16)?;
        let slot = &mut ch.rtp[usize::from(udp)];
        if slot.is_none() {
            let mut rv = RtpChannel::new(format, limits, udp).ok_or(415u16)?;
            for c in ch.cache.join().chunks {
                rv.feed(&c.data, false, now, wall);
            }
            rv.view.reanchor(wall);
            *slot = Some(rv);
        }
        slot.as_mut().ok_or(500u16)
    }

    /// `id` plays `key` over RTSP from the RTP view made by [`Self::rtp_view`]. Returns the RTCP
    /// sender reports to send before the first packet (interleaved frames), or None when the view
    /// is gone.
    pub fn play_rtp(
        &mut self,
        id: SubId,
        key: &ChanKey,
        udp: bool,
        now: Instant,
        wall: SystemTime,
    ) -> Option<Vec<Bytes>> {
        let rv = self.map.get_mut(key)?.rtp[usize::from(udp)].as_mut()?;
        let join = rv.cache.join();
        // Sender reports first, for the packets it starts with (see `join_sender_reports`), so
        // the player syncs audio and video from the start.
        let srs = rv
            .view
            .join_sender_reports(join.chunks.iter().map(|c| &c.data[..]), wall);
        let q = WatcherQueue::new(self.cfg.queue, StreamFormat::Flv, join, now);
        rv.watchers.push(id);
        self.mixed.push(key.clone());
        let mut sub = Sub::new(key, SubKind::Rtsp { udp }, None);
        sub.queue = Some(q);
        sub.out_format = Some(StreamFormat::Flv);
        sub.converted = true;
        self.subs.insert(id, sub);
        Some(srs)
    }
}
