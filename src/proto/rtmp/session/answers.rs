//! The application's side of a [`ServerSession`]: its answers to the connects, publishes and
//! plays the session reported, and what it sends a player (metadata, media, status, the end).

use amf::amf0::Value;

use super::super::message::{object, status, MessageType, UserControl};
use super::super::RtmpError;
use super::{
    MediaKind, Phase, ServerEvent, ServerSession, StreamState, ACCEPTED_FOURCCS, CS_AUDIO, CS_DATA,
    CS_VIDEO, MEDIA_CSIDS,
};

impl ServerSession {
    /// Accepts the pending connect: Window Acknowledgement Size, Set Peer Bandwidth, Set Chunk
    /// Size, then `_result` with NetConnection.Connect.Success.
    pub fn accept_connect(&mut self) -> Result<(), RtmpError> {
        let Phase::ConnectPending(txn) = self.phase else {
            return Err(self.state_err("accept_connect without a pending connect".into()));
        };
        let w = self.cfg.window_ack_size.to_be_bytes();
        self.control(MessageType::WindowAckSize, &w);
        let mut bw = w.to_vec();
        bw.push(2); // dynamic
        self.control(MessageType::SetPeerBandwidth, &bw);
        self.writer
            .set_chunk_size(self.cfg.chunk_size, &mut self.out);
        // Enhanced RTMP: the video codecs the server takes and serves (`fourCcList` in the
        // `_result`'s properties, as v2 has the server answer the client's list).
        let fourccs = ACCEPTED_FOURCCS
            .iter()
            .map(|f| Value::String((*f).into()))
            .collect();
        let props = object(vec![
            ("fmsVer", Value::String("FMS/3,0,1,123".into())),
            ("capabilities", Value::Number(31.0)),
            ("fourCcList", Value::Array { entries: fourccs }),
        ]);
        let info = object(vec![
            ("level", Value::String("status".into())),
            (
                "code",
                Value::String("NetConnection.Connect.Success".into()),
            ),
            ("description", Value::String("Connection succeeded.".into())),
            ("objectEncoding", Value::Number(0.0)),
        ]);
        self.command(0, "_result", txn, &[props, info]);
        self.phase = Phase::Connected;
        self.resume()
    }

    /// Refuses the pending connect (`_error` with NetConnection.Connect.Rejected) and asks for the
    /// connection to be closed.
    pub fn reject_connect(&mut self, description: &str) -> Result<(), RtmpError> {
        let Phase::ConnectPending(txn) = self.phase else {
            return Err(self.state_err("reject_connect without a pending connect".into()));
        };
        let info = status("error", "NetConnection.Connect.Rejected", description);
        self.command(0, "_error", txn, &[Value::Null, info]);
        self.close = true;
        self.resume()
    }

    /// Accepts a pending publish: StreamBegin and onStatus NetStream.Publish.Start. Media then
    /// arrives as events.
    pub fn accept_publish(&mut self, stream_id: u32) -> Result<(), RtmpError> {
        let key = match self.streams.get(&stream_id) {
            Some(StreamState::PublishPending(k)) => k.clone(),
            _ => {
                return Err(self.state_err(format!(
                    "accept_publish: no pending publish on stream {stream_id}"
                )))
            }
        };
        self.user_control(UserControl::StreamBegin(stream_id));
        self.on_status(
            stream_id,
            "status",
            "NetStream.Publish.Start",
            &format!("{key} is now published."),
        );
        self.streams.insert(stream_id, StreamState::Publishing(key));
        self.resume()
    }

    /// Refuses a pending publish with an onStatus error (`code` such as
    /// `NetStream.Publish.BadName`) and asks for the connection to be closed.
    pub fn reject_publish(
        &mut self,
        stream_id: u32,
        code: &str,
        description: &str,
    ) -> Result<(), RtmpError> {
        if !matches!(
            self.streams.get(&stream_id),
            Some(StreamState::PublishPending(_))
        ) {
            return Err(self.state_err(format!(
                "reject_publish: no pending publish on stream {stream_id}"
            )));
        }
        self.on_status(stream_id, "error", code, description);
        self.streams.insert(stream_id, StreamState::Idle);
        self.close = true;
        self.resume()
    }

    /// Accepts a pending play: StreamBegin, onStatus NetStream.Play.Reset and
    /// NetStream.Play.Start, and `|RtmpSampleAccess`. Then send metadata, sequence headers and
    /// tags with [`send_metadata`](Self::send_metadata) and [`send_media`](Self::send_media).
    pub fn accept_play(&mut self, stream_id: u32) -> Result<(), RtmpError> {
        if self.streams.get(&stream_id) != Some(&StreamState::PlayPending) {
            return Err(self.state_err(format!(
                "accept_play: no pending play on stream {stream_id}"
            )));
        }
        self.user_control(UserControl::StreamBegin(stream_id));
        self.on_status(
            stream_id,
            "status",
            "NetStream.Play.Reset",
            "Playing and resetting.",
        );
        self.on_status(
            stream_id,
            "status",
            "NetStream.Play.Start",
            "Started playing.",
        );
        let mut access = Vec::new();
        for v in [
            Value::String("|RtmpSampleAccess".into()),
            Value::Boolean(true),
            Value::Boolean(true),
        ] {
            let _ = v.write_to(&mut access);
        }
        self.write(
            CS_DATA,
            MessageType::DataAmf0.as_u8(),
            stream_id,
            0,
            &access,
        );
        self.streams.insert(stream_id, StreamState::Playing);
        self.resume()
    }

    /// Refuses a pending play (onStatus NetStream.Play.StreamNotFound) and asks for the
    /// connection to be closed.
    pub fn reject_play(&mut self, stream_id: u32, description: &str) -> Result<(), RtmpError> {
        self.reject_play_as(stream_id, "NetStream.Play.StreamNotFound", description)
    }

    /// [`Self::reject_play`] with another status `code` (e.g. `NetStream.Play.Failed`).
    pub fn reject_play_as(
        &mut self,
        stream_id: u32,
        code: &str,
        description: &str,
    ) -> Result<(), RtmpError> {
        if self.streams.get(&stream_id) != Some(&StreamState::PlayPending) {
            return Err(self.state_err(format!(
                "reject_play: no pending play on stream {stream_id}"
            )));
        }
        self.on_status(stream_id, "error", code, description);
        self.streams.insert(stream_id, StreamState::Idle);
        self.close = true;
        self.resume()
    }

    /// Ends an accepted play with onStatus `NetStream.Play.Failed` (`description` says why, e.g.
    /// a codec the player did not announce) and asks for the connection to be closed.
    pub fn fail_play(&mut self, stream_id: u32, description: &str) -> Result<(), RtmpError> {
        self.playing(stream_id)?;
        self.on_status(stream_id, "error", "NetStream.Play.Failed", description);
        self.streams.insert(stream_id, StreamState::Idle);
        self.close = true;
        Ok(())
    }

    fn playing(&self, stream_id: u32) -> Result<(), RtmpError> {
        if self.streams.get(&stream_id) == Some(&StreamState::Playing) {
            Ok(())
        } else {
            Err(self.state_err(format!("stream {stream_id} is not playing")))
        }
    }

    /// Sends a script-tag body (e.g. `onMetaData` + ECMA array, as
    /// [`ServerEvent::Metadata`] gives it) to a playing stream.
    pub fn send_metadata(
        &mut self,
        stream_id: u32,
        timestamp: u32,
        body: &[u8],
    ) -> Result<(), RtmpError> {
        self.playing(stream_id)?;
        self.write(
            CS_DATA,
            MessageType::DataAmf0.as_u8(),
            stream_id,
            timestamp,
            body,
        );
        Ok(())
    }

    /// Queues one FLV audio or video tag body (sequence headers included) for a playing stream.
    pub fn send_media(
        &mut self,
        stream_id: u32,
        kind: MediaKind,
        timestamp: u32,
        body: &[u8],
    ) -> Result<(), RtmpError> {
        self.playing(stream_id)?;
        let cs = match kind {
            MediaKind::Audio => CS_AUDIO,
            MediaKind::Video => CS_VIDEO,
        };
        self.write(cs, kind.type_id(), stream_id, timestamp, body);
        Ok(())
    }

    /// Whether `stream_id` is playing (accepted, not ended): media may be sent on it.
    pub fn is_playing(&self, stream_id: u32) -> bool {
        self.playing(stream_id).is_ok()
    }

    /// The chunk size this side sends with.
    pub fn out_chunk_size(&self) -> u32 {
        self.writer.chunk_size()
    }

    /// The caller sent media or metadata messages of a playing stream itself, on
    /// [`MEDIA_CSIDS`], chunked at [`out_chunk_size`](Self::out_chunk_size) with
    /// [`super::chunk::encode`] (once for many players, e.g.), in order with what
    /// [`take_output`](Self::take_output) gave: the session's next message on those chunk streams
    /// starts with a full header, as it no longer knows the last one sent there.
    pub fn media_sent_elsewhere(&mut self) {
        if self.media_headers_known {
            self.media_headers_known = false;
            for cs in MEDIA_CSIDS {
                self.writer.forget(cs);
            }
        }
    }

    /// Tells a player the stream ended (StreamEOF and NetStream.Play.UnpublishNotify); the
    /// stream goes back to idle.
    pub fn end_play(&mut self, stream_id: u32) -> Result<(), RtmpError> {
        self.playing(stream_id)?;
        self.user_control(UserControl::StreamEof(stream_id));
        self.on_status(
            stream_id,
            "status",
            "NetStream.Play.UnpublishNotify",
            "The stream was unpublished.",
        );
        self.streams.insert(stream_id, StreamState::Idle);
        Ok(())
    }

    /// Sends a PingRequest (the peer answers with a PingResponse).
    pub fn send_ping(&mut self, timestamp: u32) {
        self.user_control(UserControl::PingRequest(timestamp));
    }

    /// The peer closed the connection (or the caller is closing it): every publish and play ends
    /// (`Unpublish`/`PlayStop` events), then `Closed`.
    pub fn finish(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            self.end_stream(id);
        }
        self.phase = Phase::Closed;
        self.events.push_back(ServerEvent::Closed);
    }
}
