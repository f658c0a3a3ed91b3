//! Box writing and the initialization segment.

use crate::codec::h264::write_avcc;
use crate::codec::h265::write_hvcc;
use crate::media::{AudioConfig, VideoCodec, VideoConfig, CLOCK_HZ};

use super::{audio_timescale, VIDEO_TRACK};

/// Appends a box: size, `kind`, then what `body` writes; the size is filled in after.
pub(super) fn boxed(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: a box whose payload starts with a version byte and 24 bits of flags.
pub(super) fn full(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    boxed(out, kind, |o| {
        o.extend_from_slice(&((u32::from(version) << 24) | (flags & 0xff_ffff)).to_be_bytes());
        body(o);
    });
}

pub(super) fn u16be(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(super) fn u32be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// The unity transformation matrix of `mvhd` and `tkhd`.
fn matrix(out: &mut Vec<u8>) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        u32be(out, v);
    }
}

/// What a track of the init segment is.
enum Kind<'a> {
    Video(&'a VideoConfig),
    Audio(&'a AudioConfig),
}

/// `ftyp` + `moov` for the tracks given (video first, as track 1; audio next): each track with
/// its sample entry and empty sample tables, and `mvex` with a `trex` per track, so the samples
/// come in fragments. An init segment without tracks is still well-formed (and useless).
pub fn init_segment(video: Option<&VideoConfig>, audio: Option<&AudioConfig>) -> Vec<u8> {
    let mut tracks = Vec::new();
    if let Some(v) = video {
        tracks.push((VIDEO_TRACK, Kind::Video(v)));
    }
    if let Some(a) = audio {
        tracks.push((VIDEO_TRACK + u32::from(video.is_some()), Kind::Audio(a)));
    }
    let mut out = Vec::with_capacity(1024);
    boxed(&mut out, b"ftyp", |o| {
        // iso6: tfdt and default-base-is-moof; mp41 for the old readers.
        o.extend_from_slice(b"iso6");
        u32be(o, 0);
        o.extend_from_slice(b"iso6iso5mp41");
    });
    boxed(&mut out, b"moov", |o| {
        full(o, b"mvhd", 0, 0, |o| {
            u32be(o, 0); // creation time
            u32be(o, 0); // modification time
            u32be(o, 1000); // timescale
            u32be(o, 0); // duration: unknown, fragments follow
            u32be(o, 0x0001_0000); // rate 1.0
            u16be(o, 0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            matrix(o);
            o.extend_from_slice(&[0; 24]); // pre_defined
            u32be(o, tracks.len() as u32 + 1); // next_track_ID
        });
        for (id, kind) in &tracks {
            trak(o, *id, kind);
        }
        boxed(o, b"mvex", |o| {
            for (id, _) in &tracks {
                full(o, b"trex", 0, 0, |o| {
                    u32be(o, *id);
                    u32be(o, 1); // default_sample_description_index
                    u32be(o, 0); // default_sample_duration
                    u32be(o, 0); // default_sample_size
                    u32be(o, 0); // default_sample_flags
                });
            }
        });
    });
    out
}

fn trak(out: &mut Vec<u8>, id: u32, kind: &Kind) {
    let (width, height, volume) = match kind {
        Kind::Video(v) => (v.width.min(0xffff), v.height.min(0xffff), 0),
        Kind::Audio(_) => (0, 0, 0x0100),
    };
    let (timescale, handler, name): (u32, &[u8; 4], &[u8]) = match kind {
        Kind::Video(_) => (CLOCK_HZ as u32, b"vide", b"VideoHandler\0"),
        Kind::Audio(a) => (audio_timescale(a.sample_rate), b"soun", b"SoundHandler\0"),
    };
    boxed(out, b"trak", |o| {
        // Flags: enabled, in movie, in preview.
        full(o, b"tkhd", 0, 7, |o| {
            u32be(o, 0); // creation time
            u32be(o, 0); // modification time
            u32be(o, id);
            u32be(o, 0); // reserved
            u32be(o, 0); // duration
            o.extend_from_slice(&[0; 8]);
            u16be(o, 0); // layer
            u16be(o, 0); // alternate_group
            u16be(o, volume);
            u16be(o, 0);
            matrix(o);
            u32be(o, width << 16);
            u32be(o, height << 16);
        });
        boxed(o, b"mdia", |o| {
            full(o, b"mdhd", 0, 0, |o| {
                u32be(o, 0);
                u32be(o, 0);
                u32be(o, timescale);
                u32be(o, 0);
                u16be(o, 0x55c4); // language "und"
                u16be(o, 0);
            });
            full(o, b"hdlr", 0, 0, |o| {
                u32be(o, 0); // pre_defined
                o.extend_from_slice(handler);
                o.extend_from_slice(&[0; 12]);
                o.extend_from_slice(name);
            });
            boxed(o, b"minf", |o| {
                match kind {
                    Kind::Video(_) => full(o, b"vmhd", 0, 1, |o| o.extend_from_slice(&[0; 8])),
                    Kind::Audio(_) => full(o, b"smhd", 0, 0, |o| o.extend_from_slice(&[0; 4])),
                }
                boxed(o, b"dinf", |o| {
                    full(o, b"dref", 0, 0, |o| {
                        u32be(o, 1);
                        // Flag 1: the media is in this file.
                        full(o, b"url ", 0, 1, |_| {});
                    });
                });
                boxed(o, b"stbl", |o| {
                    full(o, b"stsd", 0, 0, |o| {
                        u32be(o, 1);
                        match kind {
                            Kind::Video(v) => video_sample_entry(o, v),
                            Kind::Audio(a) => audio_sample_entry(o, a),
                        }
                    });
                    // The samples are in the fragments: empty tables.
                    for t in [b"stts", b"stsc", b"stco"] {
                        full(o, t, 0, 0, |o| u32be(o, 0));
                    }
                    full(o, b"stsz", 0, 0, |o| {
                        u32be(o, 0);
                        u32be(o, 0);
                    });
                });
            });
        });
    });
}

/// The video sample entry, chosen by codec: H.264 as `avc1` with its `avcC`, H.265 as `hvc1` with
/// its `hvcC` (ISO/IEC 14496-15; `hvc1`, not `hev1`, as HLS wants it: the parameter sets are in
/// the sample entry, and may also come in band).
fn video_sample_entry(out: &mut Vec<u8>, cfg: &VideoConfig) {
    match cfg.codec {
        VideoCodec::H264 => visual_sample_entry(out, b"avc1", cfg, |o| {
            boxed(o, b"avcC", |o| o.extend_from_slice(&write_avcc(cfg)))
        }),
        VideoCodec::H265 => visual_sample_entry(out, b"hvc1", cfg, |o| {
            boxed(o, b"hvcC", |o| o.extend_from_slice(&write_hvcc(cfg)))
        }),
    }
}

/// A VisualSampleEntry (ISO/IEC 14496-12 12.1.3) of `format`, with the codec's configuration box
/// written by `config`.
fn visual_sample_entry(
    out: &mut Vec<u8>,
    format: &[u8; 4],
    cfg: &VideoConfig,
    config: impl FnOnce(&mut Vec<u8>),
) {
    boxed(out, format, |o| {
        o.extend_from_slice(&[0; 6]);
        u16be(o, 1); // data_reference_index
        o.extend_from_slice(&[0; 16]); // pre_defined, reserved, pre_defined[3]
        u16be(o, cfg.width.min(0xffff) as u16);
        u16be(o, cfg.height.min(0xffff) as u16);
        u32be(o, 0x0048_0000); // 72 dpi
        u32be(o, 0x0048_0000);
        u32be(o, 0);
        u16be(o, 1); // frame_count
        o.extend_from_slice(&[0; 32]); // compressorname
        u16be(o, 0x0018); // depth
        u16be(o, 0xffff); // pre_defined = -1
        config(o);
    });
}

/// `mp4a` with its `esds` (ISO/IEC 14496-14 5.6, 14496-1 7.2.6.5): the AudioSpecificConfig as the
/// DecoderSpecificInfo.
fn audio_sample_entry(out: &mut Vec<u8>, cfg: &AudioConfig) {
    boxed(out, b"mp4a", |o| {
        o.extend_from_slice(&[0; 6]);
        u16be(o, 1); // data_reference_index
        o.extend_from_slice(&[0; 8]);
        u16be(o, u16::from(cfg.channels.max(1)));
        u16be(o, 16); // samplesize
        u32be(o, 0); // pre_defined, reserved
                     // 16.16 fixed point; rates over 65535 Hz do not fit and the esds has the real one.
        u32be(o, cfg.sample_rate.min(0xffff) << 16);
        full(o, b"esds", 0, 0, |o| {
            let asc = &cfg.asc[..cfg.asc.len().min(0xff)];
            let mut dsi = Vec::new();
            descriptor(&mut dsi, 0x05, asc);
            let mut dcd = vec![
                0x40, // objectTypeIndication: Audio ISO/IEC 14496-3
                0x15, // streamType audio (5) << 2 | upStream 0 | reserved 1
                0, 0, 0, // bufferSizeDB
            ];
            dcd.extend_from_slice(&[0; 8]); // maxBitrate, avgBitrate: unknown
            dcd.extend_from_slice(&dsi);
            let mut es = vec![0, 0, 0]; // ES_ID 0, no flags
            descriptor(&mut es, 0x04, &dcd);
            descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor: predefined MP4
            descriptor(o, 0x03, &es);
        });
    });
}

/// An MPEG-4 descriptor: tag, size in the expandable 7-bit form, body.
fn descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let n = body.len();
    let mut groups = Vec::with_capacity(4);
    let mut v = n;
    loop {
        groups.push((v & 0x7f) as u8);
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    for (i, g) in groups.iter().rev().enumerate() {
        out.push(if i + 1 < groups.len() { g | 0x80 } else { *g });
    }
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::super::read::{boxes, find, u32_at};
    use super::*;
    use bytes::Bytes;

    pub(crate) fn video() -> VideoConfig {
        VideoConfig {
            codec: VideoCodec::H264,
            vps: Vec::new(),
            sps: vec![Bytes::from_static(&[0x67, 0x42, 0xc0, 0x0d, 0xd9])],
            pps: vec![Bytes::from_static(&[0x68, 0xcb, 0x83, 0xcb, 0x20])],
            width: 320,
            height: 240,
            frame_rate: None,
        }
    }

    pub(crate) fn audio() -> AudioConfig {
        crate::codec::aac::parse_asc(&[0x12, 0x10]).unwrap()
    }

    #[test]
    fn init_segment_has_both_tracks_in_fragments() {
        let v = video();
        let a = audio();
        let init = init_segment(Some(&v), Some(&a));
        let top: Vec<[u8; 4]> = boxes(&init).iter().map(|b| b.0).collect();
        assert_eq!(top, [*b"ftyp", *b"moov"]);
        let moov = find(&init, &[b"moov"]);
        let kinds: Vec<[u8; 4]> = boxes(moov).iter().map(|b| b.0).collect();
        assert_eq!(kinds, [*b"mvhd", *b"trak", *b"trak", *b"mvex"]);
        // mvhd: next track ID 3.
        let mvhd = find(moov, &[b"mvhd"]);
        assert_eq!(u32_at(mvhd, mvhd.len() - 4), 3);
        let traks: Vec<&[u8]> = boxes(moov)
            .into_iter()
            .filter(|b| &b.0 == b"trak")
            .map(|b| b.1)
            .collect();
        // Track 1: video at 90 kHz, 320x240, avc1 with the avcC of the config.
        let tkhd = find(traks[0], &[b"tkhd"]);
        assert_eq!(u32_at(tkhd, 12), 1);
        assert_eq!(u32_at(tkhd, tkhd.len() - 8), 320 << 16);
        assert_eq!(u32_at(tkhd, tkhd.len() - 4), 240 << 16);
        let mdhd = find(traks[0], &[b"mdia", b"mdhd"]);
        assert_eq!(u32_at(mdhd, 12), 90_000);
        let stsd = find(traks[0], &[b"mdia", b"minf", b"stbl", b"stsd"]);
        let entry = &boxes(&stsd[8..])[0];
        assert_eq!(&entry.0, b"avc1");
        let avcc = find(&entry.1[78..], &[b"avcC"]);
        assert_eq!(avcc, &write_avcc(&v)[..]);
        // Track 2: audio at its sample rate, mp4a whose esds carries the ASC.
        let tkhd = find(traks[1], &[b"tkhd"]);
        assert_eq!(u32_at(tkhd, 12), 2);
        let mdhd = find(traks[1], &[b"mdia", b"mdhd"]);
        assert_eq!(u32_at(mdhd, 12), 44_100);
        let stsd = find(traks[1], &[b"mdia", b"minf", b"stbl", b"stsd"]);
        let entry = &boxes(&stsd[8..])[0];
        assert_eq!(&entry.0, b"mp4a");
        let esds = find(&entry.1[28..], &[b"esds"]);
        assert!(esds.windows(4).any(|w| w == [0x05, 0x02, 0x12, 0x10]));
        // mvex: a trex per track.
        let mvex = find(moov, &[b"mvex"]);
        let ids: Vec<u32> = boxes(mvex).iter().map(|b| u32_at(b.1, 4)).collect();
        assert_eq!(ids, [1, 2]);
    }

    #[test]
    fn h265_is_hvc1_with_its_hvcc() {
        let mut v = video();
        v.codec = VideoCodec::H265;
        v.vps = vec![Bytes::from_static(&[0x40, 0x01, 0x0c, 0x01])];
        let init = init_segment(Some(&v), None);
        let stsd = find(
            &init,
            &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"],
        );
        let entry = &boxes(&stsd[8..])[0];
        assert_eq!(&entry.0, b"hvc1");
        assert_eq!(find(&entry.1[78..], &[b"hvcC"]), &write_hvcc(&v)[..]);
    }

    #[test]
    fn audio_only_is_track_one() {
        let init = init_segment(None, Some(&audio()));
        let moov = find(&init, &[b"moov"]);
        let tkhd = find(moov, &[b"trak", b"tkhd"]);
        assert_eq!(u32_at(tkhd, 12), 1);
    }

    #[test]
    fn descriptor_sizes_use_the_expandable_form() {
        let mut o = Vec::new();
        descriptor(&mut o, 5, &[7; 3]);
        assert_eq!(o, [5, 3, 7, 7, 7]);
        let mut o = Vec::new();
        descriptor(&mut o, 4, &[0; 200]);
        assert_eq!(&o[..3], &[4, 0x81, 0x48]);
        assert_eq!(o.len(), 203);
    }
}
