//! RTMP message types: protocol control, user control, and AMF0 commands.

use amf::amf0::Value;
use amf::Pair;

use crate::error::Diag;
use crate::format::flv::{parse_script, FlvError, FourCc, VideoPacket, VideoTag};

/// Message type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// 1
    SetChunkSize,
    /// 2
    Abort,
    /// 3
    Acknowledgement,
    /// 4
    UserControl,
    /// 5
    WindowAckSize,
    /// 6
    SetPeerBandwidth,
    /// 8
    Audio,
    /// 9
    Video,
    /// 15: data message in AMF3
    DataAmf3,
    /// 16: shared object in AMF3
    SharedObjectAmf3,
    /// 17: command in AMF3
    CommandAmf3,
    /// 18: data message in AMF0 (@setDataFrame, onMetaData, |RtmpSampleAccess)
    DataAmf0,
    /// 19: shared object in AMF0
    SharedObjectAmf0,
    /// 20: command in AMF0
    CommandAmf0,
    /// 22: aggregate (a run of FLV-style tags)
    Aggregate,
    Other(u8),
}

impl MessageType {
    pub fn from_u8(v: u8) -> MessageType {
        use MessageType::*;
        match v {
            1 => SetChunkSize,
            2 => Abort,
            3 => Acknowledgement,
            4 => UserControl,
            5 => WindowAckSize,
            6 => SetPeerBandwidth,
            8 => Audio,
            9 => Video,
            15 => DataAmf3,
            16 => SharedObjectAmf3,
            17 => CommandAmf3,
            18 => DataAmf0,
            19 => SharedObjectAmf0,
            20 => CommandAmf0,
            22 => Aggregate,
            n => Other(n),
        }
    }

    pub fn as_u8(self) -> u8 {
        use MessageType::*;
        match self {
            SetChunkSize => 1,
            Abort => 2,
            Acknowledgement => 3,
            UserControl => 4,
            WindowAckSize => 5,
            SetPeerBandwidth => 6,
            Audio => 8,
            Video => 9,
            DataAmf3 => 15,
            SharedObjectAmf3 => 16,
            CommandAmf3 => 17,
            DataAmf0 => 18,
            SharedObjectAmf0 => 19,
            CommandAmf0 => 20,
            Aggregate => 22,
            Other(n) => n,
        }
    }
}

/// User control events (message type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControl {
    StreamBegin(u32),
    StreamEof(u32),
    StreamDry(u32),
    SetBufferLength { stream_id: u32, ms: u32 },
    StreamIsRecorded(u32),
    PingRequest(u32),
    PingResponse(u32),
    Other(u16),
}

impl UserControl {
    pub fn parse(b: &[u8]) -> Option<UserControl> {
        let ev = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
        let arg = |i: usize| {
            b.get(i..i + 4)
                .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        };
        Some(match ev {
            0 => UserControl::StreamBegin(arg(2)?),
            1 => UserControl::StreamEof(arg(2)?),
            2 => UserControl::StreamDry(arg(2)?),
            3 => UserControl::SetBufferLength {
                stream_id: arg(2)?,
                ms: arg(6)?,
            },
            4 => UserControl::StreamIsRecorded(arg(2)?),
            6 => UserControl::PingRequest(arg(2)?),
            7 => UserControl::PingResponse(arg(2)?),
            n => UserControl::Other(n),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let (ev, a, b): (u16, u32, Option<u32>) = match *self {
            UserControl::StreamBegin(s) => (0, s, None),
            UserControl::StreamEof(s) => (1, s, None),
            UserControl::StreamDry(s) => (2, s, None),
            UserControl::SetBufferLength { stream_id, ms } => (3, stream_id, Some(ms)),
            UserControl::StreamIsRecorded(s) => (4, s, None),
            UserControl::PingRequest(t) => (6, t, None),
            UserControl::PingResponse(t) => (7, t, None),
            UserControl::Other(n) => (n, 0, None),
        };
        let mut v = ev.to_be_bytes().to_vec();
        v.extend_from_slice(&a.to_be_bytes());
        if let Some(b) = b {
            v.extend_from_slice(&b.to_be_bytes());
        }
        v
    }
}

/// The Enhanced RTMP codec of a video tag body that a player whose connect announced `list` (its
/// `fourCcList`) did not name, as `(fourcc, codec name)`; `None` when the player can take it.
/// Legacy AVC (codec id 7) is every RTMP player's and never refused; HEVC under the legacy codec
/// id 12 some encoders send counts as `hvc1`. `*` in the list (v2) takes anything.
pub fn unannounced_codec(list: &[String], body: &bytes::Bytes) -> Option<(FourCc, &'static str)> {
    if list.iter().any(|f| f == "*") {
        return None;
    }
    let fourcc = match VideoTag::parse(body).ok()?.packet {
        VideoPacket::Ex { fourcc, .. } => fourcc,
        VideoPacket::Other { codec_id: 12, .. } => FourCc::HVC1,
        _ => return None,
    };
    if list.iter().any(|f| f.as_bytes() == fourcc.0) {
        return None;
    }
    let name = match &fourcc.0 {
        b"hvc1" => "H.265/HEVC",
        b"avc1" => "H.264/AVC",
        b"av01" => "AV1",
        b"vp09" => "VP9",
        _ => "an Enhanced RTMP codec",
    };
    Some((fourcc, name))
}

/// Most `fourCcList` entries kept from a connect (the spec defines fewer than a dozen codecs).
pub const MAX_FOURCC_LIST: usize = 32;

/// A decoded AMF0 command: name, transaction id, command object, and the arguments after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub name: String,
    pub transaction_id: f64,
    /// The command object (often Null).
    pub object: Value,
    pub args: Vec<Value>,
}

impl Command {
    /// Decodes a command message body (type 20; for type 17 skip its first byte first). The body
    /// goes through the bounded AMF0 pre-scan of [`parse_script`] before the `amf` crate sees it.
    /// An error is [`FlvError::Script`], located in `body`.
    pub fn parse(body: &[u8]) -> Result<Command, FlvError> {
        let s = parse_script(body)?;
        if s.set_data_frame {
            return Err(FlvError::Script(Diag::new(
                0,
                "@setDataFrame is data, not a command",
            )));
        }
        let mut vals = s.values.into_iter();
        let transaction_id = match vals.next() {
            Some(Value::Number(n)) => n,
            Some(_) | None => 0.0,
        };
        let object = vals.next().unwrap_or(Value::Null);
        Ok(Command {
            name: s.name,
            transaction_id,
            object,
            args: vals.collect(),
        })
    }

    /// The name and transaction id of a command message body, read without decoding the rest
    /// (AMF0: a string, then a number): what a server needs to answer a command whose arguments
    /// do not decode. The transaction id is 0 when it is not a number.
    pub fn head(body: &[u8]) -> Option<(&str, f64)> {
        let (&marker, rest) = body.split_first()?;
        if marker != 0x02 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let name = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
        let txn = match rest.get(2 + len..2 + len + 9) {
            Some([0x00, n @ ..]) => f64::from_be_bytes(n.try_into().ok()?),
            _ => 0.0,
        };
        Some((name, txn))
    }

    /// Encodes a command.
    pub fn encode(name: &str, transaction_id: f64, values: &[Value]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let _ = Value::String(name.to_string()).write_to(&mut out);
        let _ = Value::Number(transaction_id).write_to(&mut out);
        for v in values {
            let _ = v.write_to(&mut out);
        }
        out
    }

    /// The string property `key` of the command object.
    pub fn object_str(&self, key: &str) -> Option<&str> {
        obj_get(&self.object, key).and_then(|v| match v {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// The Enhanced RTMP `fourCcList` of a connect's command object (v1: a strict array of
    /// four-character strings, the video codecs the client can take; `*` in v2 means any).
    /// `None` when the object has no such property or it is not an array: the client announced
    /// nothing. Entries that are not strings are skipped; at most [`MAX_FOURCC_LIST`] are kept
    /// (the AMF0 pre-scan of [`Command::parse`] bounds the array's size before this).
    pub fn fourcc_list(&self) -> Option<Vec<String>> {
        let entries = match obj_get(&self.object, "fourCcList")? {
            Value::Array { entries } => entries,
            _ => return None,
        };
        Some(
            entries
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    _ => None,
                })
                .take(MAX_FOURCC_LIST)
                .collect(),
        )
    }

    /// The `i`-th argument as a string.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        match self.args.get(i)? {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The `i`-th argument as a number.
    pub fn arg_num(&self, i: usize) -> Option<f64> {
        match self.args.get(i)? {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

fn obj_get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let entries: &[Pair<String, Value>] = match v {
        Value::Object { entries, .. } | Value::EcmaArray { entries } => entries,
        _ => return None,
    };
    entries.iter().find(|p| p.key == key).map(|p| &p.value)
}

/// An AMF0 object from `(key, value)` pairs.
pub fn object(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object {
        class_name: None,
        entries: pairs
            .into_iter()
            .map(|(k, v)| Pair {
                key: k.to_string(),
                value: v,
            })
            .collect(),
    }
}

/// The info object of an onStatus / _result / _error.
pub fn status(level: &str, code: &str, description: &str) -> Value {
    object(vec![
        ("level", Value::String(level.into())),
        ("code", Value::String(code.into())),
        ("description", Value::String(description.into())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn connect(list: Option<Value>) -> Command {
        let mut pairs = vec![("app", Value::String("live".into()))];
        if let Some(l) = list {
            pairs.push(("fourCcList", l));
        }
        let body = Command::encode("connect", 1.0, &[object(pairs)]);
        Command::parse(&body).unwrap()
    }

    fn strings(v: &[&str]) -> Value {
        Value::Array {
            entries: v.iter().map(|s| Value::String((*s).into())).collect(),
        }
    }

    #[test]
    fn fourcc_list_of_a_connect() {
        assert_eq!(connect(None).fourcc_list(), None);
        assert_eq!(
            connect(Some(strings(&["av01", "vp09", "hvc1"]))).fourcc_list(),
            Some(vec!["av01".into(), "vp09".into(), "hvc1".into()])
        );
        assert_eq!(connect(Some(strings(&[]))).fourcc_list(), Some(vec![]));
        // Not an array: nothing announced. Entries that are not strings are skipped.
        assert_eq!(
            connect(Some(Value::String("hvc1".into()))).fourcc_list(),
            None
        );
        let mixed = Value::Array {
            entries: vec![
                Value::Number(1.0),
                Value::String("hvc1".into()),
                Value::Null,
            ],
        };
        assert_eq!(
            connect(Some(mixed)).fourcc_list(),
            Some(vec!["hvc1".into()])
        );
        let many: Vec<String> = (0..100).map(|i| format!("c{i:03}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let got = connect(Some(strings(&many))).fourcc_list().unwrap();
        assert_eq!(got.len(), MAX_FOURCC_LIST);
        assert_eq!(got[0], "c000");
    }

    #[test]
    fn unannounced_codecs_are_named() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // Enhanced hvc1 SequenceStart (key frame, packet type 0) and CodedFramesX (3).
        let hvc1_start = Bytes::from_static(b"\x90hvc1\x01\x02");
        let hvc1_x = Bytes::from_static(b"\xa3hvc1\x00\x00\x00\x02\x26\x01");
        let avc_legacy = Bytes::from_static(b"\x17\x00\x00\x00\x00\x01");
        let hevc_id12 = Bytes::from_static(b"\x1c\x01\x00\x00\x00\x00\x00\x00\x02\x26\x01");
        for b in [&hvc1_start, &hvc1_x, &hevc_id12] {
            assert_eq!(
                unannounced_codec(&list(&["avc1", "av01"]), b),
                Some((FourCc::HVC1, "H.265/HEVC")),
                "{b:?}"
            );
            assert_eq!(unannounced_codec(&list(&["hvc1"]), b), None);
            assert_eq!(unannounced_codec(&list(&["*"]), b), None);
        }
        assert_eq!(
            unannounced_codec(&list(&[]), &hvc1_start),
            Some((FourCc::HVC1, "H.265/HEVC"))
        );
        // Legacy AVC is every player's; bodies that do not parse are not judged here.
        assert_eq!(unannounced_codec(&list(&[]), &avc_legacy), None);
        assert_eq!(unannounced_codec(&list(&[]), &Bytes::new()), None);
        assert_eq!(
            unannounced_codec(&list(&["hvc1"]), &Bytes::from_static(b"\x90av01\x81")),
            Some((FourCc(*b"av01"), "AV1"))
        );
    }
}
