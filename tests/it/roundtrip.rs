//! Annex B → FLV → TS → FLV keeps every access unit's NAL payloads byte for byte (through the real
//! binaries; the FLVs are read back with river's FLV reader and checked by ffmpeg too).

use crate::common::*;
use bytes::Bytes;
use river::codec::h264;
use river::format::flv;

const CLIP: Clip = Clip {
    width: 160,
    height: 120,
    fps: 30,
    bframes: 3,
    audio: true,
    gop_secs: 1,
    secs: 4,
};

/// The video access units of an FLV, each as its list of NAL units.
fn flv_access_units(data: &[u8]) -> Vec<Vec<Bytes>> {
    let mut r = flv::FlvReader::new();
    let mut evs = Vec::new();
    r.push(data, &mut evs);
    r.finish(&mut evs);
    let mut aus = Vec::new();
    for e in evs {
        match e {
            flv::FlvEvent::Tag(t) if t.kind == flv::TagKind::Video => {
                let v = flv::VideoTag::parse(&t.body).unwrap();
                if let flv::VideoPacket::Avc {
                    packet_type: flv::AvcPacketType::Nalu,
                    payload,
                    ..
                } = v.packet
                {
                    let nals = h264::avcc_nals(&payload, 4)
                        .map(|n| payload.slice_ref(n.unwrap()))
                        .collect();
                    aus.push(nals);
                }
            }
            flv::FlvEvent::Warning(d) => panic!("warning reading river's FLV: {d}"),
            _ => {}
        }
    }
    aus
}

fn through(tool: &str, input: &[u8], name: &str) -> Vec<u8> {
    let out = run(&river(tool), &[], input);
    assert!(out.status.success(), "{tool}: {}", out.stderr);
    assert!(!out.stderr.contains("warning"), "{tool}: {}", out.stderr);
    assert_decodes_cleanly(&write_tmp(name, &out.stdout));
    out.stdout
}

#[test]
fn annexb_flv_ts_flv_keeps_nal_payloads() {
    let annexb = std::fs::read(CLIP.remux("h264")).unwrap();
    let flv1 = through("river-mux-flv", &annexb, "rt.1.flv");
    let ts = through("river-mux-ts", &flv1, "rt.2.ts");
    let flv2 = through("river-mux-flv", &ts, "rt.3.flv");

    // Every NAL unit of the Annex B input but the access unit delimiters, in order.
    let mut splitter = h264::NalSplitter::new();
    let (mut nals, mut warns) = (Vec::new(), Vec::new());
    splitter.push(&annexb, &mut nals, &mut warns);
    splitter.finish(&mut nals, &mut warns);
    assert!(warns.is_empty(), "{warns:?}");
    let want: Vec<Bytes> = nals
        .into_iter()
        .map(|n| n.data)
        .filter(|n| h264::nal_type(n) != 9)
        .collect();

    let aus1 = flv_access_units(&flv1);
    let aus2 = flv_access_units(&flv2);
    let frames = probe_packets(&CLIP.flv())
        .iter()
        .filter(|p| p.kind == "video")
        .count();
    assert_eq!(aus1.len(), frames, "one FLV tag per access unit");
    let got1: Vec<Bytes> = aus1.iter().flatten().cloned().collect();
    assert!(
        got1 == want,
        "Annex B → FLV changed NAL payloads ({} vs {} NAL units)",
        got1.len(),
        want.len()
    );
    assert!(aus1 == aus2, "FLV → TS → FLV changed access units");
}

#[test]
fn flv_ts_flv_keeps_slices_and_adds_parameter_sets_only_at_keyframes() {
    let src = std::fs::read(CLIP.flv()).unwrap();
    let ts = through("river-mux-ts", &src, "rt2.1.ts");
    let back = through("river-mux-flv", &ts, "rt2.2.flv");
    let a = flv_access_units(&src);
    let b = flv_access_units(&back);
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let strip = |v: &Vec<Bytes>| -> Vec<Bytes> {
            v.iter()
                .filter(|n| !matches!(h264::nal_type(n), 7 | 8))
                .cloned()
                .collect()
        };
        assert!(
            strip(x) == strip(y),
            "access unit {i}: slices and SEI unchanged"
        );
        let has_ps = y.iter().any(|n| h264::nal_type(n) == 7);
        let idr = y.iter().any(|n| h264::nal_type(n) == 5);
        assert_eq!(
            has_ps, idr,
            "access unit {i}: SPS/PPS re-inserted exactly before IDRs"
        );
    }
}
