//! Media fragments: `moof` (`mfhd`, and per track `traf` with `tfhd`, `tfdt` and `trun`) and the
//! `mdat` with the samples, each track's samples together.

use super::boxes::{boxed, full, u32be};
use super::{rescale, Sample};

/// One track's samples in a fragment, in decode order.
#[derive(Debug, Clone, Copy)]
pub struct TrackRun<'a> {
    pub track_id: u32,
    /// The track's timescale (as in its `mdhd`).
    pub timescale: u32,
    /// Video: each sample carries its flags (sync or not) and its composition offset.
    pub video: bool,
    pub samples: &'a [Sample],
}

/// `tfhd` flag: data offsets are relative to the `moof`.
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags.
const DATA_OFFSET: u32 = 0x1;
const SAMPLE_DURATION: u32 = 0x100;
const SAMPLE_SIZE: u32 = 0x200;
const SAMPLE_FLAGS: u32 = 0x400;
const SAMPLE_CTO: u32 = 0x800;
/// Sample flags: depends on no other sample (a sync sample) / depends on others, not sync.
const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// `moof` + `mdat` for fragment number `sequence` (from 1, increasing) with these tracks; tracks
/// without samples are left out. Every time is the sample's own, rescaled to the track's
/// timescale: `tfdt` is the first DTS, each duration runs to the sample's end, each composition
/// offset is PTS − DTS (signed: `trun` version 1).
pub fn fragment(sequence: u32, tracks: &[TrackRun]) -> Vec<u8> {
    let tracks: Vec<&TrackRun> = tracks.iter().filter(|t| !t.samples.is_empty()).collect();
    let data_len: usize = tracks
        .iter()
        .flat_map(|t| t.samples.iter())
        .map(|s| s.data.len())
        .sum();
    let mut out = Vec::with_capacity(256 + tracks.len() * 16 + data_len);
    // Where each trun's data_offset goes, and where its samples start in the mdat payload.
    let mut patches = Vec::with_capacity(tracks.len());
    let mut in_mdat = 0usize;
    boxed(&mut out, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| u32be(o, sequence));
        for t in &tracks {
            boxed(o, b"traf", |o| {
                full(o, b"tfhd", 0, DEFAULT_BASE_IS_MOOF, |o| {
                    u32be(o, t.track_id)
                });
                let base = rescale(t.samples[0].dts, t.timescale).max(0) as u64;
                full(o, b"tfdt", 1, 0, |o| {
                    o.extend_from_slice(&base.to_be_bytes())
                });
                let mut flags = DATA_OFFSET | SAMPLE_DURATION | SAMPLE_SIZE;
                if t.video {
                    flags |= SAMPLE_FLAGS | SAMPLE_CTO;
                }
                full(o, b"trun", 1, flags, |o| {
                    u32be(o, t.samples.len() as u32);
                    patches.push((o.len(), in_mdat));
                    u32be(o, 0); // data_offset, patched below
                    for s in t.samples {
                        let dts = rescale(s.dts, t.timescale);
                        let end = rescale(s.dts + s.duration, t.timescale);
                        u32be(o, (end - dts).clamp(0, i64::from(u32::MAX)) as u32);
                        u32be(o, s.data.len() as u32);
                        if t.video {
                            u32be(o, if s.keyframe { SYNC } else { NON_SYNC });
                            let cto = rescale(s.pts, t.timescale) - dts;
                            let cto = cto.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
                            o.extend_from_slice(&cto.to_be_bytes());
                        }
                    }
                });
            });
            in_mdat += t.samples.iter().map(|s| s.data.len()).sum::<usize>();
        }
    });
    let moof_len = out.len();
    for (at, offset) in patches {
        let v = (moof_len + 8 + offset) as u32;
        out[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
    boxed(&mut out, b"mdat", |o| {
        for t in &tracks {
            for s in t.samples {
                o.extend_from_slice(&s.data);
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::read::{boxes, find, u32_at, u64_at};
    use super::*;
    use bytes::Bytes;

    fn s(dts: i64, pts: i64, duration: i64, keyframe: bool, fill: u8, len: usize) -> Sample {
        Sample {
            dts,
            pts,
            duration,
            keyframe,
            data: Bytes::from(vec![fill; len]),
        }
    }

    #[test]
    fn fragment_carries_the_samples_and_their_times() {
        // Video with B-frames (PTS before DTS's successor), audio at 48 kHz.
        let video = [
            s(90_000, 96_000, 3000, true, 1, 100),
            s(93_000, 105_000, 3000, false, 2, 50),
            s(96_000, 99_000, 3000, false, 3, 40),
        ];
        let audio = [
            s(90_000, 90_000, 1920, true, 9, 10),
            s(91_920, 91_920, 1920, true, 8, 12),
        ];
        let f = fragment(
            7,
            &[
                TrackRun {
                    track_id: 1,
                    timescale: 90_000,
                    video: true,
                    samples: &video,
                },
                TrackRun {
                    track_id: 2,
                    timescale: 48_000,
                    video: false,
                    samples: &audio,
                },
                TrackRun {
                    track_id: 3,
                    timescale: 48_000,
                    video: false,
                    samples: &[],
                },
            ],
        );
        let top = boxes(&f);
        assert_eq!((top[0].0, top[1].0), (*b"moof", *b"mdat"));
        let moof_len = top[0].1.len() + 8;
        let mfhd = find(&f, &[b"moof", b"mfhd"]);
        assert_eq!(u32_at(mfhd, 4), 7);
        let trafs: Vec<&[u8]> = boxes(top[0].1)
            .into_iter()
            .filter(|b| &b.0 == b"traf")
            .map(|b| b.1)
            .collect();
        assert_eq!(trafs.len(), 2, "the empty track is left out");
        // Video: tfdt is the first DTS at 90 kHz, durations, sizes, flags, signed offsets.
        assert_eq!(u64_at(find(trafs[0], &[b"tfdt"]), 4), 90_000);
        let trun = find(trafs[0], &[b"trun"]);
        assert_eq!(trun[0], 1, "version 1: signed composition offsets");
        assert_eq!(u32_at(trun, 4), 3);
        let off = u32_at(trun, 8) as usize;
        assert_eq!(off, moof_len + 8);
        let rows: Vec<[u32; 4]> = (0..3)
            .map(|i| {
                let b = 12 + i * 16;
                [
                    u32_at(trun, b),
                    u32_at(trun, b + 4),
                    u32_at(trun, b + 8),
                    u32_at(trun, b + 12),
                ]
            })
            .collect();
        assert_eq!(
            rows,
            [
                [3000, 100, SYNC, 6000],
                [3000, 50, NON_SYNC, 12_000],
                [3000, 40, NON_SYNC, 3000],
            ]
        );
        assert_eq!(&f[off..off + 100], &[1; 100][..]);
        // Audio at 48 kHz: 90 kHz times rescaled; its samples follow the video's.
        assert_eq!(u64_at(find(trafs[1], &[b"tfdt"]), 4), 48_000);
        let trun = find(trafs[1], &[b"trun"]);
        assert_eq!(trun[0], 1);
        let off = u32_at(trun, 8) as usize;
        assert_eq!(off, moof_len + 8 + 190);
        assert_eq!(
            (u32_at(trun, 12), u32_at(trun, 16), u32_at(trun, 20)),
            (1024, 10, 1024)
        );
        assert_eq!(
            &f[off..off + 22],
            &[[9; 10].as_slice(), &[8; 12]].concat()[..]
        );
    }

    #[test]
    fn audio_durations_do_not_drift() {
        // 44.1 kHz AAC: 2089.795... ticks a frame, as a 90 kHz source rounds it.
        let n = 1000;
        let t = |i: i64| (i * 1024 * 90_000 + 22_050) / 44_100;
        let samples: Vec<Sample> = (0..n)
            .map(|i| s(t(i), t(i), t(i + 1) - t(i), true, 0, 1))
            .collect();
        let f = fragment(
            1,
            &[TrackRun {
                track_id: 1,
                timescale: 44_100,
                video: false,
                samples: &samples,
            }],
        );
        let trun = find(&f, &[b"moof", b"traf", b"trun"]);
        let total: u64 = (0..n as usize)
            .map(|i| u64::from(u32_at(trun, 12 + i * 8)))
            .sum();
        assert_eq!(total, 1024 * n as u64);
        assert!((0..n as usize).all(|i| u32_at(trun, 12 + i * 8) == 1024));
    }
}
