//! Fragmented MP4 (ISO BMFF, ISO/IEC 14496-12) as HLS carries it (RFC 8216bis 3.1.2): an
//! initialization segment ([`init_segment`]: `ftyp` + `moov` with empty sample tables and `mvex`)
//! and media fragments ([`fragment`]: `moof` + `mdat`), audio and video muxed in one file. No I/O:
//! bytes out.
//!
//! Timing is the caller's: every sample comes with its 90 kHz DTS, PTS and duration, and the
//! fragment says exactly that (`tfdt` is the first sample's DTS, `trun` carries each duration and
//! composition offset). Video runs at 90 kHz, so its times are the source's to the tick; audio
//! runs at its sample rate, and each time is the 90 kHz time rounded to the nearest sample
//! (durations are differences of rounded times, so they never drift).
//!
//! Tracks: H.264 as `avc1` with its `avcC`, H.265 as `hvc1` with its `hvcC` (parameter sets in the
//! `moov`), AAC as `mp4a` with its `esds`. The video sample entry is chosen by codec in one place
//! ([`boxes`]'s `video_sample_entry`).
//!
//! Hand-written rather than taken from a crate: the crates that write MP4 either write whole
//! files with the `moov` last (`mp4`), or run their own clock from frame rates or `f64` seconds
//! (`muxide`), while HLS parts need fragments of a few frames at the source's exact timestamps;
//! the dozen boxes here are all that is needed.

mod boxes;
mod fragment;

pub use boxes::init_segment;
pub use fragment::{fragment, TrackRun};

use bytes::Bytes;

use crate::media::CLOCK_HZ;

/// Track IDs: video is track 1 when present, audio the next.
pub const VIDEO_TRACK: u32 = 1;

/// One sample of a track: a video access unit (NAL units with 4-byte lengths) or one raw AAC
/// frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Decode time, 90 kHz.
    pub dts: i64,
    /// Presentation time, 90 kHz.
    pub pts: i64,
    /// Until the next sample's DTS, 90 kHz.
    pub duration: i64,
    /// Video: a sync sample (IDR). Audio: always.
    pub keyframe: bool,
    pub data: Bytes,
}

/// A 90 kHz time in a track's timescale, rounded to the nearest unit (halves away from zero).
pub fn rescale(t90: i64, timescale: u32) -> i64 {
    if timescale as i64 == CLOCK_HZ {
        return t90;
    }
    let n = i128::from(t90) * i128::from(timescale);
    let d = i128::from(CLOCK_HZ);
    let q = if n >= 0 {
        (n + d / 2) / d
    } else {
        (n - d / 2) / d
    };
    q as i64
}

/// The timescale of the audio track: its sample rate (90 kHz when the rate is unknown).
pub fn audio_timescale(sample_rate: u32) -> u32 {
    if sample_rate == 0 {
        CLOCK_HZ as u32
    } else {
        sample_rate
    }
}

#[cfg(test)]
pub(crate) mod read {
    //! A minimal box reader for the tests: enough to walk what the writer made.

    /// (type, payload) of each box in `data`, which must hold whole boxes only.
    pub fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < data.len() {
            assert!(i + 8 <= data.len(), "box header at {i} past the end");
            let size = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as usize;
            assert!(
                size >= 8 && i + size <= data.len(),
                "box size {size} at {i}"
            );
            let kind: [u8; 4] = data[i + 4..i + 8].try_into().unwrap();
            out.push((kind, &data[i + 8..i + size]));
            i += size;
        }
        out
    }

    /// The payload of the first box of `kind` along `path` (each step a child of the last).
    pub fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
        let mut cur = data;
        for step in path {
            cur = boxes(cur)
                .into_iter()
                .find(|(k, _)| k == *step)
                .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(*step)))
                .1;
        }
        cur
    }

    pub fn u32_at(d: &[u8], i: usize) -> u32 {
        u32::from_be_bytes(d[i..i + 4].try_into().unwrap())
    }

    pub fn u64_at(d: &[u8], i: usize) -> u64 {
        u64::from_be_bytes(d[i..i + 8].try_into().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescale_rounds_to_the_nearest_unit() {
        assert_eq!(rescale(123_456, 90_000), 123_456);
        // 1 s.
        assert_eq!(rescale(90_000, 44_100), 44_100);
        // One AAC frame at 44.1 kHz is 2089.795... ticks; either neighbour maps back to 1024.
        assert_eq!(rescale(2089, 44_100), 1024);
        assert_eq!(rescale(2090, 44_100), 1024);
        assert_eq!(rescale(-90_000, 48_000), -48_000);
        // No overflow at large times (a year of 90 kHz ticks).
        let year = 365 * 86_400 * 90_000i64;
        assert_eq!(rescale(year, 48_000), 365 * 86_400 * 48_000);
    }
}
