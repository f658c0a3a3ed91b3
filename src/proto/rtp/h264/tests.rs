use super::*;
use crate::codec::h264::AnnexBReader;
use crate::codec::h264::{avcc_nals, nal_type};
use crate::error::Diag;
use crate::media::{Frame, MediaEvent};
use crate::proto::rtp::nal::test_util::{config_and_frames, frames_of};
use crate::proto::rtp::{Packet, Sender};

/// The frames and configuration of a real x264 stream (B-frames, High profile).
fn clip() -> (VideoConfig, Vec<Frame>) {
    let data = include_bytes!("../../../../tests/fixtures/codec/testsrc-160x120-bf3.h264");
    let mut r = AnnexBReader::new(None);
    let (mut ev, mut w) = (Vec::new(), Vec::new());
    r.push(data, &mut ev, &mut w);
    r.finish(&mut ev, &mut w);
    config_and_frames(ev)
}

/// NAL units of an AVCC unit other than parameter sets and AUDs.
fn slices(data: &[u8]) -> Vec<Vec<u8>> {
    avcc_nals(data, 4)
        .map(|n| n.unwrap().to_vec())
        .filter(|n| !matches!(nal_type(n), 7..=9))
        .collect()
}

fn send(
    frames: &[Frame],
    cfg: &VideoConfig,
    mtu: usize,
    drop: &dyn Fn(usize) -> bool,
) -> (Vec<MediaEvent>, Vec<Diag>) {
    let p = Packetizer::new(mtu);
    let mut s = Sender::new(0x1234, 65000, 0xfff0_0000, 90_000, 96);
    let mut d = Depacketizer::new(Some(cfg.clone()));
    let (mut ev, mut diags) = (Vec::new(), Vec::new());
    let mut n = 0;
    for f in frames {
        let mut pl = Vec::new();
        p.packetize(f, Some(cfg), &mut pl);
        for payload in pl {
            let mut pkt = Vec::new();
            s.write(&payload, &mut pkt);
            assert!(pkt.len() <= mtu + 12);
            if !drop(n) {
                d.push(&Packet::parse(&pkt).unwrap(), n as u64, &mut ev, &mut diags);
            }
            n += 1;
        }
    }
    (ev, diags)
}

#[test]
fn round_trip_single_nal_fu_a_and_stap_a() {
    let (cfg, frames) = clip();
    assert_eq!(frames.len(), 50);
    for mtu in [1400, 8192, 100, 64] {
        let (ev, diags) = send(&frames, &cfg, mtu, &|_| false);
        assert!(diags.is_empty(), "mtu {mtu}: {diags:?}");
        assert_eq!(ev[0], MediaEvent::Video(cfg.clone()), "configuration first");
        let got = frames_of(&ev);
        assert_eq!(got.len(), frames.len(), "mtu {mtu}");
        let mut last_dts = i64::MIN;
        for (g, w) in got.iter().zip(&frames) {
            assert_eq!(slices(&g.data), slices(&w.data));
            assert_eq!(g.keyframe, w.keyframe);
            assert_eq!(
                g.pts,
                w.pts - frames[0].pts,
                "pts relative to the first frame"
            );
            assert!(g.dts > last_dts && g.dts <= g.pts);
            last_dts = g.dts;
            if g.keyframe {
                // SPS and PPS came in a STAP-A ahead of the IDR.
                let types: Vec<u8> = avcc_nals(&g.data, 4)
                    .map(|n| nal_type(n.unwrap()))
                    .collect();
                assert_eq!(&types[..2], &[7, 8]);
            }
        }
    }
}

#[test]
fn loss_drops_to_the_next_keyframe() {
    let (cfg, frames) = clip();
    // Lose one packet in the middle of the first GOP.
    let (ev, diags) = send(&frames, &cfg, 100, &|n| n == 40);
    assert_eq!(diags.len(), 1, "{diags:?}");
    let got = frames_of(&ev);
    let key2 = frames.iter().skip(1).position(|f| f.keyframe).unwrap() + 1;
    let first_after = got
        .iter()
        .position(|f| f.pts >= frames[key2].pts - frames[0].pts)
        .unwrap();
    assert!(got[first_after].keyframe);
    assert!(got.len() < frames.len());
    assert_eq!(
        got.len() - first_after,
        frames.len() - key2,
        "everything from the next keyframe"
    );
    // Losing the very first packets: nothing until a keyframe.
    let (ev, _) = send(&frames, &cfg, 100, &|n| n < 3);
    assert!(frames_of(&ev)[0].keyframe);
}

/// `frames` with each keyframe's slice cut into three slice NAL units (the later two with
/// `first_mb_in_slice` 1, as the depacketizer sees a picture's later slices).
fn three_slice_keyframes(frames: &[Frame]) -> Vec<Frame> {
    frames
        .iter()
        .map(|f| {
            if !f.keyframe {
                return f.clone();
            }
            let mut data = BytesMut::new();
            for nal in avcc_nals(&f.data, 4).map(Result::unwrap) {
                let mut parts = vec![nal.to_vec()];
                if nal_type(nal) == nal_types::IDR {
                    for _ in 0..2 {
                        let mut later = nal.to_vec();
                        later[1] = 0x40; // ue(v) "010": first_mb_in_slice 1
                        parts.push(later);
                    }
                }
                for p in parts {
                    data.extend_from_slice(&(p.len() as u32).to_be_bytes());
                    data.extend_from_slice(&p);
                }
            }
            Frame {
                data: data.freeze(),
                ..f.clone()
            }
        })
        .collect()
}

#[test]
fn loss_of_an_idrs_first_slices_drops_the_idr() {
    let (cfg, frames) = clip();
    let frames = three_slice_keyframes(&frames);
    let key2 = frames.iter().skip(1).position(|f| f.keyframe).unwrap() + 1;
    // One packet per NAL unit: [STAP-A(SPS, PPS), slice 1, slice 2, slice 3] per keyframe.
    let per_frame: Vec<usize> = frames
        .iter()
        .map(|f| {
            let mut pl = Vec::new();
            Packetizer::new(8192).packetize(f, Some(&cfg), &mut pl);
            pl.len()
        })
        .collect();
    assert_eq!(per_frame[key2], 4);
    let k2 = per_frame[..key2].iter().sum::<usize>();
    // Lost: slice 1 (the gap is inside the unit); STAP-A and slice 1 (the gap is before it).
    for lost in [k2 + 1..k2 + 2, k2..k2 + 2] {
        let (ev, _) = send(&frames, &cfg, 8192, &|n| lost.contains(&n));
        for f in frames_of(&ev).iter().filter(|f| f.keyframe) {
            let idr_slices = slices(&f.data)
                .iter()
                .filter(|n| nal_type(n) == nal_types::IDR)
                .count();
            assert_eq!(
                idr_slices, 3,
                "lost packets {lost:?}: a keyframe without its first slice came out"
            );
        }
        let got = frames_of(&ev);
        let key3 = frames.iter().skip(key2 + 1).position(|f| f.keyframe);
        let want = key3.map_or(0, |k| frames.len() - (k + key2 + 1));
        assert_eq!(got.len(), key2 + want, "lost packets {lost:?}");
    }
}

#[test]
fn in_band_parameter_sets_without_sdp() {
    let (cfg, frames) = clip();
    let p = Packetizer::new(1400);
    let mut s = Sender::new(1, 0, 0, 90_000, 96);
    let mut d = Depacketizer::new(None);
    let (mut ev, mut diags) = (Vec::new(), Vec::new());
    for f in &frames[1..] {
        // Starts mid-GOP: dropped until the keyframe, whose STAP-A brings the configuration.
        let mut pl = Vec::new();
        p.packetize(f, Some(&cfg), &mut pl);
        for payload in pl {
            let mut pkt = Vec::new();
            s.write(&payload, &mut pkt);
            d.push(&Packet::parse(&pkt).unwrap(), 0, &mut ev, &mut diags);
        }
    }
    let first_video = ev
        .iter()
        .position(|e| matches!(e, MediaEvent::Video(_)))
        .unwrap();
    let first_frame = ev
        .iter()
        .position(|e| matches!(e, MediaEvent::Frame(_)))
        .unwrap();
    assert!(first_video < first_frame);
    assert!(frames_of(&ev)[0].keyframe);
}

#[test]
fn hostile_packets_do_not_panic() {
    let mut d = Depacketizer::new(None);
    let (mut ev, mut diags) = (Vec::new(), Vec::new());
    let payloads: [&[u8]; 9] = [
        &[],
        &[0x80],
        &[24],
        &[24, 0, 5, 1],
        &[24, 0, 0],
        &[28],
        &[28, 0x40],
        &[28, 0x85, 1, 2],
        &[29, 1, 2],
    ];
    for (i, p) in payloads.iter().enumerate() {
        let mut pkt = crate::proto::rtp::header(i % 2 == 0, 96, i as u16, 0, 1).to_vec();
        pkt.extend_from_slice(p);
        d.push(&Packet::parse(&pkt).unwrap(), 0, &mut ev, &mut diags);
    }
    assert!(frames_of(&ev).is_empty());
}
