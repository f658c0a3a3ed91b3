use std::time::Instant;

use super::*;
use crate::codec::h264::avcc_nals;
use crate::codec::h265::nal_type;
use crate::codec::h265::AnnexBReader;
use crate::error::Diag;
use crate::media::{Frame, MediaEvent, Track};
use crate::proto::rtp::nal::test_util::{config_and_frames, frames_of};
use crate::proto::rtp::reorder::Reorder;
use crate::proto::rtp::{Packet, Sender};

/// The frames and configuration of a real x265 stream (B-frames, 2 s GOP with IDR pictures).
fn clip() -> (VideoConfig, Vec<Frame>) {
    let data = crate::codec::h265::tests::BF2;
    let mut r = AnnexBReader::new(None);
    let (mut ev, mut w) = (Vec::new(), Vec::new());
    r.push(data, &mut ev, &mut w);
    r.finish(&mut ev, &mut w);
    config_and_frames(ev)
}

/// NAL units of an access unit other than parameter sets and AUDs.
fn slices(data: &[u8]) -> Vec<Vec<u8>> {
    avcc_nals(data, 4)
        .map(|n| n.unwrap().to_vec())
        .filter(|n| !matches!(nal_type(n), 32..=35))
        .collect()
}

/// The RTP packets of `frames`.
fn packets(frames: &[Frame], cfg: &VideoConfig, mtu: usize) -> Vec<Vec<u8>> {
    let p = Packetizer::new(mtu);
    let mut s = Sender::new(0x1234, 65000, 0xfff0_0000, 90_000, 96);
    let mut pkts = Vec::new();
    for f in frames {
        let mut pl = Vec::new();
        p.packetize(f, Some(cfg), &mut pl);
        for payload in pl {
            let mut pkt = Vec::new();
            s.write(&payload, &mut pkt);
            assert!(pkt.len() <= mtu + 12);
            pkts.push(pkt);
        }
    }
    pkts
}

fn receive(
    pkts: &[Vec<u8>],
    cfg: Option<&VideoConfig>,
    drop: &dyn Fn(usize) -> bool,
) -> (Vec<MediaEvent>, Vec<Diag>) {
    let mut d = Depacketizer::new(cfg.cloned());
    let (mut ev, mut diags) = (Vec::new(), Vec::new());
    for (n, pkt) in pkts.iter().enumerate() {
        if !drop(n) {
            d.push(&Packet::parse(pkt).unwrap(), n as u64, &mut ev, &mut diags);
        }
    }
    (ev, diags)
}

fn payload_types(pkts: &[Vec<u8>]) -> Vec<u8> {
    pkts.iter()
        .map(|p| nal_type(Packet::parse(p).unwrap().payload))
        .collect()
}

#[test]
fn round_trip_single_nal_fu_and_ap() {
    let (cfg, frames) = clip();
    assert!(frames.len() >= 50, "{}", frames.len());
    assert!(!cfg.vps.is_empty());
    for mtu in [1400, 8192, 100, 64] {
        let pkts = packets(&frames, &cfg, mtu);
        let types = payload_types(&pkts);
        // At 64 bytes the parameter sets do not fit one packet: they go alone.
        let first = if mtu > 64 { AP } else { nal_types::VPS };
        assert_eq!(types[0], first, "mtu {mtu}: parameter sets first");
        if mtu <= 100 {
            assert!(types.contains(&FU), "mtu {mtu}: large slices fragmented");
        }
        let (ev, diags) = receive(&pkts, Some(&cfg), &|_| false);
        assert!(diags.is_empty(), "mtu {mtu}: {diags:?}");
        assert_eq!(ev[0], MediaEvent::Video(cfg.clone()), "configuration first");
        let got = frames_of(&ev);
        assert_eq!(got.len(), frames.len(), "mtu {mtu}");
        let mut last_dts = i64::MIN;
        for (g, w) in got.iter().zip(&frames) {
            assert_eq!(g.codec, Codec::H265);
            assert_eq!(slices(&g.data), slices(&w.data));
            assert_eq!(g.keyframe, w.keyframe);
            assert_eq!(g.pts, w.pts - frames[0].pts, "pts relative to the first");
            assert!(g.dts > last_dts && g.dts <= g.pts);
            last_dts = g.dts;
            if g.keyframe {
                let types: Vec<u8> = avcc_nals(&g.data, 4)
                    .map(|n| nal_type(n.unwrap()))
                    .collect();
                assert_eq!(&types[..3], &[32, 33, 34], "VPS, SPS, PPS before the IRAP");
            }
        }
    }
}

#[test]
fn dts_follows_the_reorder_depth() {
    // The x265 clip has B-frames: DTS of the IDR lies sps_max_num_reorder_pics frames before its
    // PTS, and the decoding order of every frame matches the source's.
    let (cfg, frames) = clip();
    let reorder = h265::parse_sps(&cfg.sps[0]).unwrap().max_num_reorder;
    assert!(reorder > 0);
    let pkts = packets(&frames, &cfg, 1400);
    let (ev, _) = receive(&pkts, Some(&cfg), &|_| false);
    let got = frames_of(&ev);
    let dur = frames[1].dts - frames[0].dts;
    assert_eq!(got[0].pts - got[0].dts, i64::from(reorder) * dur);
}

#[test]
fn loss_drops_to_the_next_irap() {
    let (cfg, frames) = clip();
    let pkts = packets(&frames, &cfg, 100);
    // Lose the first packet of the 11th frame, in the middle of the first GOP.
    let lost = packets(&frames[..10], &cfg, 100).len();
    let (ev, diags) = receive(&pkts, Some(&cfg), &|n| n == lost);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].to_string().contains("1 lost"), "{}", diags[0]);
    let got = frames_of(&ev);
    let key2 = frames.iter().skip(1).position(|f| f.keyframe).unwrap() + 1;
    let first_after = got
        .iter()
        .position(|f| f.pts >= frames[key2].pts - frames[0].pts)
        .unwrap();
    assert!(got[first_after].keyframe);
    let rasl = frames[key2..]
        .iter()
        .skip(1)
        .take_while(|f| !f.keyframe)
        .take_while(|f| h265::is_leading(h265::au_picture_type(&f.data).unwrap()))
        .count();
    assert_eq!(rasl, 2, "x265's open GOP: a CRA with 2 RASL pictures");
    assert_eq!(
        got.len() - first_after,
        frames.len() - key2 - rasl,
        "everything from the next IRAP but its RASL pictures"
    );
    // Losing the very first packets: nothing until an IRAP.
    let (ev, _) = receive(&pkts, Some(&cfg), &|n| n < 3);
    assert!(frames_of(&ev)[0].keyframe);
    // Losing the last fragment of a NAL unit: the unit is dropped, never emitted incomplete.
    let types = payload_types(&pkts);
    let fu_end = (0..pkts.len())
        .find(|&i| types[i] == FU && Packet::parse(&pkts[i]).unwrap().payload[2] & 0x40 != 0)
        .unwrap();
    let (ev, _) = receive(&pkts, Some(&cfg), &|n| n == fu_end);
    for f in frames_of(&ev) {
        assert!(frames.iter().any(|w| slices(&w.data) == slices(&f.data)));
    }
}

#[test]
fn reordered_packets_are_restored_by_the_reorder_stage() {
    let (cfg, frames) = clip();
    let mut pkts = packets(&frames, &cfg, 100);
    // Swap neighbours every 7 packets, as a UDP path may.
    for i in (5..pkts.len() - 1).step_by(7) {
        pkts.swap(i, i + 1);
    }
    // Straight into the depacketizer: each swap is a gap.
    let (_, diags) = receive(&pkts, Some(&cfg), &|_| false);
    assert!(!diags.is_empty());
    // Through the reorder stage: every frame back.
    let mut r = Reorder::new();
    let mut ordered = Vec::new();
    let now = Instant::now();
    for p in &pkts {
        r.push(p, now, &mut |b| ordered.push(b.to_vec()));
    }
    r.flush(&mut |b| ordered.push(b.to_vec()));
    let (ev, diags) = receive(&ordered, Some(&cfg), &|_| false);
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(frames_of(&ev).len(), frames.len());
}

#[test]
fn in_band_parameter_sets_without_sdp() {
    let (cfg, frames) = clip();
    // Starts mid-GOP: dropped until the IRAP, whose AP brings the configuration.
    let pkts = packets(&frames[1..], &cfg, 1400);
    let (ev, diags) = receive(&pkts, None, &|_| false);
    let first_video = ev
        .iter()
        .position(|e| matches!(e, MediaEvent::Video(_)))
        .unwrap();
    let first_frame = ev
        .iter()
        .position(|e| matches!(e, MediaEvent::Frame(_)))
        .unwrap();
    assert!(first_video < first_frame);
    assert_eq!(ev[first_video], MediaEvent::Video(cfg.clone()));
    assert!(frames_of(&ev)[0].keyframe);
    assert!(diags.len() <= 1, "{diags:?}");
}

#[test]
fn rasl_pictures_of_a_joined_cra_are_dropped() {
    // An access unit with a CRA picture, then a RASL and a trailing one, joined at the CRA.
    let (cfg, _) = clip();
    let au = |t: u8| {
        let nal = [t << 1, 1, 0xaf, 0x11];
        let mut b = (nal.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(&nal);
        Bytes::from(b)
    };
    let frame = |t: u8, pts: i64| Frame {
        track: Track::Video,
        codec: Codec::H265,
        dts: pts,
        pts,
        keyframe: is_irap(t),
        data: au(t),
    };
    let fs = [
        frame(nal_types::CRA, 0),
        frame(nal_types::RASL_N, 3000),
        frame(nal_types::TRAIL_N, 6000),
    ];
    let pkts = packets(&fs, &cfg, 1400);
    let (ev, _) = receive(&pkts, Some(&cfg), &|_| false);
    let got: Vec<u8> = frames_of(&ev)
        .iter()
        .map(|f| h265::au_picture_type(&f.data).unwrap())
        .collect();
    assert_eq!(got, [nal_types::CRA, nal_types::TRAIL_N]);
}

#[test]
fn hostile_packets_do_not_panic() {
    let mut d = Depacketizer::new(None);
    let (mut ev, mut diags) = (Vec::new(), Vec::new());
    let payloads: [&[u8]; 11] = [
        &[],
        &[0x80],
        &[0x80, 1],
        &[AP << 1, 1],
        &[AP << 1, 1, 0, 5, 1],
        &[AP << 1, 1, 0, 0],
        &[AP << 1, 1, 0],
        &[FU << 1, 1],
        &[FU << 1, 1, 0x40],
        &[FU << 1, 1, 0x93, 1, 2],
        &[50 << 1, 1, 2], // PACI
    ];
    for (i, p) in payloads.iter().enumerate() {
        let mut pkt = crate::proto::rtp::header(i % 2 == 0, 96, i as u16, 0, 1).to_vec();
        pkt.extend_from_slice(p);
        d.push(&Packet::parse(&pkt).unwrap(), 0, &mut ev, &mut diags);
    }
    assert!(frames_of(&ev).is_empty());
}
