//! FLV writing helpers: pure functions that append to a `Vec<u8>`.
//!
//! A file is [`write_header`] followed by tags ([`write_tag`], or the one-pass
//! [`write_avc_video_tag`] / [`write_aac_audio_tag`] for the hot path, which write the tag header,
//! the codec header and the payload without building the body first).

use amf::amf0::Value;

use super::body::{AacPacketType, AvcPacketType, ExVideoPacketType, FourCc};
use super::error::FlvError;
use super::script::{write_pairs, write_value};
use super::{TagKind, HEADER_LEN, MAX_DATA_SIZE, TAG_HEADER_LEN};

/// The first byte of every AAC audio body as ffmpeg writes it (and the spec demands): AAC, 44 kHz,
/// 16-bit, stereo, whatever the real rate and channel count (those are in the AudioSpecificConfig).
pub const AAC_SOUND_BYTE: u8 = 0xAF;

/// Length of the AVC video body header (frame type/codec, AVCPacketType, CompositionTime).
pub const AVC_BODY_HEADER_LEN: usize = 5;

/// Appends the 9-byte FLV header and PreviousTagSize0 (= 0).
pub fn write_header(audio: bool, video: bool, out: &mut Vec<u8>) {
    let flags = (u8::from(audio) << 2) | u8::from(video);
    out.extend_from_slice(b"FLV\x01");
    out.push(flags);
    out.extend_from_slice(&(HEADER_LEN as u32).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
}

/// Appends an 11-byte tag header (stream id 0) for a body of `data_size` bytes. After it the caller
/// appends exactly `data_size` body bytes and then the PreviousTagSize,
/// `(11 + data_size) as u32` big-endian. Fails (appending nothing) when `data_size` does not fit
/// in 24 bits.
pub fn write_tag_header(
    kind: TagKind,
    timestamp_ms: u32,
    data_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), FlvError> {
    if data_size > MAX_DATA_SIZE {
        return Err(FlvError::TooLarge(data_size));
    }
    let size = (data_size as u32).to_be_bytes();
    let ts = timestamp_ms.to_be_bytes();
    out.extend_from_slice(&[
        kind.as_u8(),
        size[1],
        size[2],
        size[3],
        ts[1],
        ts[2],
        ts[3],
        ts[0],
        0,
        0,
        0,
    ]);
    Ok(())
}

/// Appends the PreviousTagSize that ends a tag with a body of `data_size` bytes.
pub fn write_prev_tag_size(data_size: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&((TAG_HEADER_LEN + data_size) as u32).to_be_bytes());
}

/// Appends a whole tag: header (timestamp in ms, extended byte included, stream id 0), body and
/// PreviousTagSize. Fails (appending nothing) when the body exceeds 16 MiB - 1.
pub fn write_tag(
    kind: TagKind,
    timestamp_ms: u32,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FlvError> {
    write_tag_header(kind, timestamp_ms, body.len(), out)?;
    out.extend_from_slice(body);
    write_prev_tag_size(body.len(), out);
    Ok(())
}

fn avc_header(keyframe: bool, packet_type: AvcPacketType, cts_ms: i32) -> [u8; 5] {
    let frame_type: u8 = if keyframe { 1 } else { 2 };
    let cts = cts_ms.clamp(-(1 << 23), (1 << 23) - 1).to_be_bytes();
    [
        (frame_type << 4) | 7,
        packet_type.as_u8(),
        cts[1],
        cts[2],
        cts[3],
    ]
}

/// Appends an AVC video body: frame type (1 key / 2 inter) with codec id 7, the AVCPacketType, the
/// composition time offset (ms, clamped to signed 24 bits) and the payload (an
/// AVCDecoderConfigurationRecord, AVCC NAL units, or nothing for end of sequence).
pub fn avc_video_body(
    keyframe: bool,
    packet_type: AvcPacketType,
    cts_ms: i32,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(&avc_header(keyframe, packet_type, cts_ms));
    out.extend_from_slice(payload);
}

/// Appends an AAC audio body: [`AAC_SOUND_BYTE`] (0xAF, as ffmpeg writes it for every rate and
/// channel count), the AACPacketType and the payload (AudioSpecificConfig or one raw frame).
pub fn aac_audio_body(packet_type: AacPacketType, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[AAC_SOUND_BYTE, packet_type.as_u8()]);
    out.extend_from_slice(payload);
}

/// Appends a complete AVC video tag in one pass (no intermediate body).
pub fn write_avc_video_tag(
    timestamp_ms: u32,
    keyframe: bool,
    packet_type: AvcPacketType,
    cts_ms: i32,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FlvError> {
    let size = avc_video_tag_head(
        timestamp_ms,
        keyframe,
        packet_type,
        cts_ms,
        payload.len(),
        out,
    )?;
    out.extend_from_slice(payload);
    write_prev_tag_size(size, out);
    Ok(())
}

/// The head of [`write_avc_video_tag`]: the tag header and the body's header, for a payload of
/// `payload_len` bytes that the caller writes after it (from where it lies), followed by
/// [`write_prev_tag_size`] of the returned body size. Fails (appending nothing) when the body
/// exceeds 16 MiB - 1.
pub fn avc_video_tag_head(
    timestamp_ms: u32,
    keyframe: bool,
    packet_type: AvcPacketType,
    cts_ms: i32,
    payload_len: usize,
    out: &mut Vec<u8>,
) -> Result<usize, FlvError> {
    let size = AVC_BODY_HEADER_LEN.saturating_add(payload_len);
    write_tag_header(TagKind::Video, timestamp_ms, size, out)?;
    out.extend_from_slice(&avc_header(keyframe, packet_type, cts_ms));
    Ok(size)
}

/// Appends a complete Enhanced-FLV video tag in one pass: the ex-header byte (IsExHeader, frame
/// type 1 key / 2 inter, the packet type), the FourCC, for `CodedFrames` of `avc1` and `hvc1` the
/// composition time offset (ms, clamped to signed 24 bits), then the payload (a decoder
/// configuration record, length-prefixed NAL units, or nothing for `SequenceEnd`).
pub fn write_ex_video_tag(
    timestamp_ms: u32,
    keyframe: bool,
    packet_type: ExVideoPacketType,
    fourcc: FourCc,
    cts_ms: i32,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FlvError> {
    let size = ex_video_tag_head(
        timestamp_ms,
        keyframe,
        packet_type,
        fourcc,
        cts_ms,
        payload.len(),
        out,
    )?;
    out.extend_from_slice(payload);
    write_prev_tag_size(size, out);
    Ok(())
}

/// The head of [`write_ex_video_tag`], as [`avc_video_tag_head`] is of [`write_avc_video_tag`].
pub fn ex_video_tag_head(
    timestamp_ms: u32,
    keyframe: bool,
    packet_type: ExVideoPacketType,
    fourcc: FourCc,
    cts_ms: i32,
    payload_len: usize,
    out: &mut Vec<u8>,
) -> Result<usize, FlvError> {
    let with_cts = packet_type == ExVideoPacketType::CodedFrames
        && (fourcc == FourCc::AVC1 || fourcc == FourCc::HVC1);
    let header = if with_cts { 8 } else { 5 };
    let size = header + payload_len;
    write_tag_header(TagKind::Video, timestamp_ms, size, out)?;
    let frame_type: u8 = if keyframe { 1 } else { 2 };
    out.push(0x80 | (frame_type << 4) | packet_type.as_u8());
    out.extend_from_slice(&fourcc.0);
    if with_cts {
        let cts = cts_ms.clamp(-(1 << 23), (1 << 23) - 1).to_be_bytes();
        out.extend_from_slice(&cts[1..]);
    }
    Ok(size)
}

/// Appends a complete AAC audio tag in one pass (no intermediate body).
pub fn write_aac_audio_tag(
    timestamp_ms: u32,
    packet_type: AacPacketType,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FlvError> {
    let size = aac_audio_tag_head(timestamp_ms, packet_type, payload.len(), out)?;
    out.extend_from_slice(payload);
    write_prev_tag_size(size, out);
    Ok(())
}

/// The head of [`write_aac_audio_tag`], as [`avc_video_tag_head`] is of [`write_avc_video_tag`].
pub fn aac_audio_tag_head(
    timestamp_ms: u32,
    packet_type: AacPacketType,
    payload_len: usize,
    out: &mut Vec<u8>,
) -> Result<usize, FlvError> {
    let size = 2usize.saturating_add(payload_len);
    write_tag_header(TagKind::Audio, timestamp_ms, size, out)?;
    out.extend_from_slice(&[AAC_SOUND_BYTE, packet_type.as_u8()]);
    Ok(size)
}

/// A script body: the string `onMetaData` and an ECMA array of `props`, in the given order, the way
/// ffmpeg writes it (its order: duration, width, height, videodatarate, framerate, videocodecid,
/// audiodatarate, audiosamplerate, audiosamplesize, stereo, audiocodecid, encoder, filesize).
pub fn metadata_body(props: &[(&str, Value)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + props.len() * 24);
    write_value(&Value::String("onMetaData".into()), &mut out);
    out.push(0x08);
    out.extend_from_slice(&u32::try_from(props.len()).unwrap_or(u32::MAX).to_be_bytes());
    write_pairs(props.iter().map(|(k, v)| (*k, v)), &mut out);
    out
}
