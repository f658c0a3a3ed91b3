//! Tests across muxer and demuxer: round trips, chunk invariance, damage, and a real ffmpeg stream.

use super::*;

const FFMPEG_FIXTURE: &[u8] =
    include_bytes!("../../../tests/fixtures/ts/ffmpeg-lavfi-h264-aac-1s.ts");

fn av_streams() -> Vec<MuxStream> {
    vec![
        MuxStream {
            pid: PID_VIDEO,
            stream_type: STREAM_TYPE_H264,
            stream_id: STREAM_ID_VIDEO,
        },
        MuxStream {
            pid: PID_AUDIO,
            stream_type: STREAM_TYPE_AAC_ADTS,
            stream_id: STREAM_ID_AUDIO,
        },
    ]
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// What the muxer was given, to compare with what the demuxer returns.
#[derive(Debug, Clone, PartialEq)]
struct Input {
    pid: u16,
    pts: u64,
    dts: Option<u64>,
    keyframe: bool,
    data: Vec<u8>,
}

fn mux(inputs: &[Input]) -> Vec<u8> {
    let mut m = TsMuxer::new(av_streams(), PID_VIDEO);
    let mut out = Vec::new();
    for i in inputs {
        m.write_pes(i.pid, i.pts, i.dts, i.keyframe, &i.data, &mut out)
            .unwrap();
    }
    out
}

fn demux_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<TsEvent> {
    let mut d = TsDemuxer::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c, &mut out);
    }
    d.finish(&mut out);
    out
}

fn demux(data: &[u8]) -> Vec<TsEvent> {
    demux_chunks([data])
}

fn pes_of(events: &[TsEvent]) -> Vec<&Pes> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Pes(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn warnings_of(events: &[TsEvent]) -> Vec<&crate::error::Diag> {
    events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Warning(d) => Some(d),
            _ => None,
        })
        .collect()
}

/// Checks demuxed PES against the inputs, per PID and in order.
fn assert_round_trip(inputs: &[Input], events: &[TsEvent]) {
    assert!(warnings_of(events).is_empty(), "{:?}", warnings_of(events));
    for pid in [PID_VIDEO, PID_AUDIO] {
        let want: Vec<_> = inputs.iter().filter(|i| i.pid == pid).collect();
        let got: Vec<_> = pes_of(events)
            .into_iter()
            .filter(|p| p.pid == pid)
            .collect();
        assert_eq!(want.len(), got.len(), "pid 0x{pid:x}");
        for (w, g) in want.iter().zip(&got) {
            let pts = w.pts & TIMESTAMP_MASK;
            let dts = w.dts.map(|d| d & TIMESTAMP_MASK).filter(|&d| d != pts);
            assert_eq!((g.pts, g.dts), (Some(pts), dts));
            assert_eq!(g.random_access, w.keyframe);
            assert!(!g.corrupt && !g.discontinuity);
            assert_eq!(g.data.len(), w.data.len());
            assert!(g.data == w.data[..], "payload differs at pts {pts}");
        }
    }
}

/// A varied A/V stream: sizes around packet boundaries, big video frames, a 2^33 wrap.
fn sample_inputs() -> Vec<Input> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let video_sizes = [
        0usize,
        1,
        170,
        171,
        172,
        176,
        177,
        178,
        183,
        184,
        185,
        368,
        65536,
        65537,
        1 << 20,
        3000,
    ];
    let audio_sizes = [
        0usize, 1, 175, 176, 177, 183, 184, 185, 400, 65000, 65521, 300,
    ];
    let start = (1u64 << 33) - 5 * 3000;
    let mut v = Vec::new();
    for (k, &n) in video_sizes.iter().enumerate() {
        let dts = start + k as u64 * 3000;
        v.push(Input {
            pid: PID_VIDEO,
            pts: dts + if k % 3 == 1 { 0 } else { 6000 },
            dts: Some(dts),
            keyframe: k % 5 == 0,
            data: rng.bytes(n),
        });
        if let Some(&a) = audio_sizes.get(k) {
            v.push(Input {
                pid: PID_AUDIO,
                pts: start + k as u64 * 1920 + 100,
                dts: None,
                keyframe: true,
                data: rng.bytes(a),
            });
        }
    }
    v
}

#[test]
fn round_trip_varied_sizes_and_wrap() {
    let inputs = sample_inputs();
    let ts = mux(&inputs);
    assert_eq!(ts.len() % PACKET_SIZE, 0);
    let events = demux(&ts);
    assert_round_trip(&inputs, &events);
    // The wrap really happened: timestamps before and after 2^33.
    let pts: Vec<u64> = pes_of(&events).iter().filter_map(|p| p.dts).collect();
    assert!(pts.iter().any(|&t| t > (1 << 33) - 10_000) && pts.iter().any(|&t| t < 10_000));
    // Program announced once, first.
    assert!(matches!(
        &events[0],
        TsEvent::Program { pcr_pid: PID_VIDEO, streams, .. } if streams.len() == 2
    ));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, TsEvent::Program { .. }))
            .count(),
        1
    );
}

#[test]
fn round_trip_random() {
    let mut rng = Rng(99);
    let mut inputs = Vec::new();
    let mut t = 1_000_000u64;
    for k in 0..200 {
        let video = rng.next() % 3 != 0;
        let n = (rng.next() % 2000) as usize;
        t += rng.next() % 4000;
        inputs.push(Input {
            pid: if video { PID_VIDEO } else { PID_AUDIO },
            pts: t + if video { rng.next() % 9000 } else { 0 },
            dts: video.then_some(t),
            keyframe: k % 17 == 0 || !video,
            data: rng.bytes(n),
        });
    }
    assert_round_trip(&inputs, &demux(&mux(&inputs)));
}

/// Small stream with everything: PSI, A/V, damage, garbage, a truncated tail.
fn damaged_stream() -> Vec<u8> {
    let mut rng = Rng(7);
    let inputs: Vec<Input> = (0..6)
        .map(|k| Input {
            pid: if k % 2 == 0 { PID_VIDEO } else { PID_AUDIO },
            pts: 90_000 + k * 3000,
            dts: None,
            keyframe: k == 0,
            data: rng.bytes(150 + 90 * k as usize),
        })
        .collect();
    let ts = mux(&inputs);
    let mut v = Vec::new();
    v.extend_from_slice(&[0x47, 1, 2, 0x47, 0, 0]); // garbage before the first packet
    v.extend_from_slice(&ts[..5 * 188]);
    v.extend_from_slice(&[1, 0x47, 0x47, 2, 3, 0x47, 9]); // garbage between packets
    v.extend_from_slice(&ts[6 * 188..]); // and one packet dropped
    v.extend_from_slice(&ts[..100]); // truncated packet at the end
    v
}

#[test]
fn chunk_invariance_every_split() {
    for data in [
        damaged_stream(),
        mux(&sample_inputs()[..6]),
        FFMPEG_FIXTURE[..4000].to_vec(),
    ] {
        let whole = demux(&data);
        assert!(!pes_of(&whole).is_empty());
        for cut in 0..=data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(demux_chunks([a, b]), whole, "split at {cut}");
        }
        assert_eq!(demux_chunks(data.chunks(1)), whole, "1-byte pushes");
        assert_eq!(demux_chunks(data.chunks(187)), whole, "187-byte pushes");
    }
}

#[test]
fn chunk_invariance_fixture_small_pushes() {
    let whole = demux(FFMPEG_FIXTURE);
    assert_eq!(demux_chunks(FFMPEG_FIXTURE.chunks(1)), whole);
    for n in [2, 100, 189, 377, 600, 4096] {
        assert_eq!(demux_chunks(FFMPEG_FIXTURE.chunks(n)), whole, "{n}");
    }
}

#[test]
fn damaged_stream_warnings() {
    let events = demux(&damaged_stream());
    let w: Vec<_> = warnings_of(&events)
        .iter()
        .map(|d| (d.offset, d.message.clone()))
        .collect();
    assert_eq!(w.len(), 4, "{w:?}");
    assert_eq!(w[0].0, 0);
    assert!(w[0].1.contains("skipped 6 bytes"), "{}", w[0].1);
    assert_eq!(w[1].0, 6 + 5 * 188);
    assert!(w[1].1.contains("skipped 7 bytes"), "{}", w[1].1);
    assert_eq!(w[2].0, 6 + 5 * 188 + 7);
    assert!(w[2].1.contains("continuity counter gap"), "{}", w[2].1);
    assert!(w[3].1.contains("truncated packet"), "{}", w[3].1);
}

#[test]
fn ffmpeg_fixture_matches_ffprobe() {
    let events = demux(FFMPEG_FIXTURE);
    assert!(
        warnings_of(&events).is_empty(),
        "{:?}",
        warnings_of(&events)
    );
    match &events[0] {
        TsEvent::Program {
            program_number,
            pcr_pid,
            streams,
            offset,
        } => {
            assert_eq!((*program_number, *pcr_pid, *offset), (1, PID_VIDEO, 376));
            assert_eq!(
                streams,
                &[
                    StreamInfo {
                        pid: PID_VIDEO,
                        stream_type: STREAM_TYPE_H264
                    },
                    StreamInfo {
                        pid: PID_AUDIO,
                        stream_type: STREAM_TYPE_AAC_ADTS
                    }
                ]
            );
        }
        e => panic!("first event {e:?}"),
    }
    let pes = pes_of(&events);
    let video: Vec<_> = pes.iter().filter(|p| p.pid == PID_VIDEO).collect();
    let audio: Vec<_> = pes.iter().filter(|p| p.pid == PID_AUDIO).collect();
    // From `ffprobe -show_entries packet=codec_type,pts,dts,size,pos,flags` (see README.md).
    assert_eq!(video.len(), 30);
    let first: Vec<_> = video[..4]
        .iter()
        .map(|p| (p.pts, p.dts, p.data.len(), p.offset, p.random_access))
        .collect();
    assert_eq!(
        first,
        [
            (Some(132000), Some(126000), 2507, 564, true),
            (Some(135000), Some(129000), 162, 3196, false),
            (Some(138000), Some(132000), 138, 3384, false),
            (Some(141000), Some(135000), 98, 3948, false),
        ]
    );
    let last = video[29];
    assert_eq!(
        (last.pts, last.dts, last.data.len(), last.offset),
        (Some(219000), Some(213000), 94, 18048)
    );
    let video_bytes: usize = video.iter().map(|p| p.data.len()).sum();
    assert_eq!(video_bytes, 5938);
    // Audio: one PES holds several ADTS frames; ffprobe reports the PTS and pos of the first.
    let a: Vec<_> = audio.iter().map(|p| (p.pts, p.dts, p.offset)).collect();
    assert_eq!(
        a,
        [
            (Some(129910), None, 6204),
            (Some(157078), None, 12408),
            (Some(186335), None, 18236),
            (Some(215592), None, 21244),
        ]
    );
    let audio_bytes: usize = audio.iter().map(|p| p.data.len()).sum();
    assert_eq!(audio_bytes, 9304);
    assert!(audio
        .iter()
        .all(|p| p.data[0] == 0xFF && p.data[1] & 0xF0 == 0xF0));
}

#[test]
fn garbage_between_packets_resyncs() {
    let inputs = sample_inputs()[..8].to_vec();
    let ts = mux(&inputs);
    let at = 3 * 188;
    let mut rng = Rng(5);
    let mut garbage = rng.bytes(300);
    // A false sync byte confirmed by +188 but not by +376. (A 0x47 exactly where the next packet
    // is due would be taken for a packet: sync is only checked at packet starts.)
    garbage[0] = 0;
    garbage[1] = 0x47;
    garbage[189] = 0x47;
    let mut data = ts[..at].to_vec();
    data.extend_from_slice(&garbage);
    data.extend_from_slice(&ts[at..]);
    let events = demux(&data);
    let w = warnings_of(&events);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].offset, at as u64);
    assert!(
        w[0].message.contains("skipped 300 bytes"),
        "{}",
        w[0].message
    );
    let clean: Vec<_> = events
        .into_iter()
        .filter(|e| !matches!(e, TsEvent::Warning(_)))
        .collect();
    assert_round_trip(&inputs, &clean);
}

#[test]
fn dropped_packet_is_cc_gap_and_marks_pes() {
    let mut rng = Rng(11);
    let inputs = vec![
        Input {
            pid: PID_AUDIO,
            pts: 1000,
            dts: None,
            keyframe: true,
            data: rng.bytes(1000),
        },
        Input {
            pid: PID_AUDIO,
            pts: 3000,
            dts: None,
            keyframe: true,
            data: rng.bytes(1000),
        },
    ];
    let ts = mux(&inputs);
    // Packets: PAT, PMT, 6 of PES 1, 6 of PES 2 (video is the PCR PID, audio has no PCR).
    assert_eq!(ts.len(), 14 * 188);
    let mut data = ts[..4 * 188].to_vec();
    data.extend_from_slice(&ts[5 * 188..]);
    let events = demux(&data);
    let w = warnings_of(&events);
    assert!(!w.is_empty());
    assert_eq!(w[0].offset, 4 * 188);
    assert_eq!(
        w[0].message,
        "continuity counter gap on pid 0x101: expected 2, got 3"
    );
    let pes = pes_of(&events);
    assert_eq!(pes.len(), 2);
    assert!(pes[0].corrupt);
    assert_eq!(pes[0].data.len(), 1000 - 184);
    assert!(!pes[1].corrupt);
    assert_eq!(pes[1].data, inputs[1].data);
}

#[test]
fn duplicate_packets_dropped_silently() {
    let inputs = sample_inputs()[..6].to_vec();
    let ts = mux(&inputs);
    let mut data = Vec::new();
    for (k, p) in ts.chunks(188).enumerate() {
        data.extend_from_slice(p);
        if k % 3 == 0 {
            data.extend_from_slice(p);
        }
    }
    assert_round_trip(&inputs, &demux(&data));
}

#[test]
fn tei_and_bad_adaptation_length_drop_packet() {
    let inputs = vec![Input {
        pid: PID_AUDIO,
        pts: 1000,
        dts: None,
        keyframe: false,
        data: vec![1; 1000],
    }];
    let ts = mux(&inputs);
    let mut data = ts.clone();
    data[3 * 188 + 1] |= 0x80; // TEI on the second audio packet
    let events = demux(&data);
    let w = warnings_of(&events);
    assert!(w[0].message.contains("transport_error_indicator"), "{w:?}");
    assert_eq!(w[0].offset, 3 * 188);
    assert!(w[1].message.contains("continuity counter gap"), "{w:?}");
    assert!(pes_of(&events)[0].corrupt);

    let mut data = ts.clone();
    data[3 * 188 + 3] |= 0x20; // adaptation field present ...
    data[3 * 188 + 4] = 184; // ... longer than the packet
    let events = demux(&data);
    let w = warnings_of(&events);
    assert!(
        w[0].message.contains("adaptation_field_length 184"),
        "{w:?}"
    );
    assert_eq!(w[0].offset, 3 * 188);

    let mut data = ts;
    data[3 * 188 + 3] |= 0x80; // scrambled
    let events = demux(&data);
    assert!(warnings_of(&events)[0].message.contains("scrambled"));
}

#[test]
fn psi_crc_mismatch_warns() {
    let ts = mux(&sample_inputs()[..2]);
    let mut data = ts.clone();
    data[188 + 10] ^= 0x01; // inside the PMT section
    let events = demux(&data);
    let w = warnings_of(&events);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].offset, 188);
    assert!(w[0].message.contains("crc mismatch"));
    assert!(pes_of(&events).is_empty());
}

#[test]
fn pmt_change_emits_program_and_version() {
    let mut m = TsMuxer::new(av_streams()[..1].to_vec(), PID_VIDEO);
    let mut out = Vec::new();
    m.write_pes(PID_VIDEO, 0, None, true, b"v1", &mut out)
        .unwrap();
    m.set_streams(av_streams(), PID_VIDEO);
    assert_eq!(m.pmt_version(), 1);
    m.set_streams(av_streams(), PID_VIDEO);
    assert_eq!(m.pmt_version(), 1);
    m.write_pes(PID_AUDIO, 10, None, true, b"a1", &mut out)
        .unwrap();
    m.write_pes(PID_VIDEO, 3000, None, false, b"v2", &mut out)
        .unwrap();
    let events = demux(&out);
    let programs: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TsEvent::Program { streams, .. } => Some(streams.len()),
            _ => None,
        })
        .collect();
    assert_eq!(programs, [1, 2]);
    // Video PES have no length: v1 completes when v2 starts, after a1.
    let data: Vec<_> = pes_of(&events).iter().map(|p| p.data.to_vec()).collect();
    assert_eq!(data, [b"a1".to_vec(), b"v1".to_vec(), b"v2".to_vec()]);
}

#[test]
fn oversized_pes_dropped() {
    let big = vec![0u8; MAX_PES_SIZE + 1];
    let mut m = TsMuxer::new(av_streams(), PID_VIDEO);
    let mut out = Vec::new();
    m.write_pes(PID_VIDEO, 0, None, true, &big, &mut out)
        .unwrap();
    m.write_pes(PID_VIDEO, 3000, None, false, b"after", &mut out)
        .unwrap();
    let events = demux(&out);
    let w = warnings_of(&events);
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("exceeds"), "{}", w[0].message);
    let pes = pes_of(&events);
    assert_eq!(pes.len(), 1);
    assert_eq!(&pes[0].data[..], b"after");
}

#[test]
fn flush_pid_emits_open_video_pes() {
    let ts = mux(&sample_inputs()[..1]);
    let mut d = TsDemuxer::new();
    let mut out = Vec::new();
    d.push(&ts, &mut out);
    assert!(pes_of(&out).is_empty());
    d.flush_pid(PID_VIDEO, &mut out);
    assert_eq!(pes_of(&out).len(), 1);
    d.finish(&mut out);
    assert_eq!(pes_of(&out).len(), 1);
}

/// Reads the per-packet facts the muxer must get right.
struct PacketInfo {
    pid: u16,
    pusi: bool,
    cc: u8,
    has_payload: bool,
    rai: bool,
    pcr: Option<u64>,
    payload: Vec<u8>,
}

fn packets(ts: &[u8]) -> Vec<PacketInfo> {
    ts.chunks(188)
        .map(|p| {
            assert_eq!((p.len(), p[0]), (188, 0x47));
            let afc = (p[3] >> 4) & 3;
            let mut start = 4;
            let (mut rai, mut pcr) = (false, None);
            if afc & 2 != 0 {
                let l = p[4] as usize;
                if l > 0 {
                    rai = p[5] & 0x40 != 0;
                    if p[5] & 0x10 != 0 {
                        pcr = Some(
                            (p[6] as u64) << 25
                                | (p[7] as u64) << 17
                                | (p[8] as u64) << 9
                                | (p[9] as u64) << 1
                                | (p[10] as u64) >> 7,
                        );
                    }
                    assert!(p[6 + if pcr.is_some() { 6 } else { 0 }..5 + l]
                        .iter()
                        .all(|&b| b == 0xFF));
                }
                start = 5 + l;
            }
            PacketInfo {
                pid: u16::from_be_bytes([p[1] & 0x1F, p[2]]),
                pusi: p[1] & 0x40 != 0,
                cc: p[3] & 0xF,
                has_payload: afc & 1 != 0,
                rai,
                pcr,
                payload: p[start..].to_vec(),
            }
        })
        .collect()
}

#[test]
fn muxer_packet_structure() {
    let inputs = sample_inputs();
    let ts = mux(&inputs);
    let pk = packets(&ts);
    // Continuity counters advance by one per PID.
    let mut last = std::collections::HashMap::new();
    for p in &pk {
        assert!(p.has_payload);
        if let Some(l) = last.insert(p.pid, p.cc) {
            assert_eq!(p.cc, (l + 1) & 0xF, "pid 0x{:x}", p.pid);
        }
    }
    // PAT+PMT before the first PES and before every video keyframe.
    assert_eq!((pk[0].pid, pk[1].pid), (PID_PAT, PID_PMT));
    for (k, p) in pk.iter().enumerate() {
        if p.pid == PID_VIDEO && p.pusi {
            // PCR on every video PES start, never beyond its DTS (PES header bytes 14..19).
            let pcr = p.pcr.expect("pcr on the PCR PID");
            let h = &p.payload;
            let dts_field = if h[7] >> 6 == 3 {
                &h[14..19]
            } else {
                &h[9..14]
            };
            let dts = (((dts_field[0] >> 1) & 7) as u64) << 30
                | (dts_field[1] as u64) << 22
                | ((dts_field[2] >> 1) as u64) << 15
                | (dts_field[3] as u64) << 7
                | (dts_field[4] >> 1) as u64;
            assert!(pcr <= dts);
            assert_eq!((h[4], h[5]), (0, 0), "video PES_packet_length 0");
            if p.rai {
                assert_eq!((pk[k - 2].pid, pk[k - 1].pid), (PID_PAT, PID_PMT));
            }
        }
        if p.pid == PID_AUDIO {
            assert!(p.pcr.is_none());
        }
    }
    let keyframes = inputs
        .iter()
        .filter(|i| i.keyframe && i.pid == PID_VIDEO)
        .count();
    assert_eq!(
        pk.iter().filter(|p| p.pid == PID_VIDEO && p.rai).count(),
        keyframes
    );
}

#[test]
fn psi_repeated_for_audio_only() {
    let mut m = TsMuxer::new(av_streams()[1..].to_vec(), PID_AUDIO);
    let mut out = Vec::new();
    for k in 0..100u64 {
        m.write_pes(PID_AUDIO, k * 1920, None, true, &[0; 300], &mut out)
            .unwrap();
    }
    // 100 frames of 1920 ticks = 2.13 s: tables at 0, 0.51, 1.02, 1.54, 2.05 s.
    let pats = packets(&out).iter().filter(|p| p.pid == PID_PAT).count();
    assert_eq!(pats, 5);
}

#[test]
fn unknown_pid_and_long_audio_are_errors() {
    let mut m = TsMuxer::new(av_streams(), PID_VIDEO);
    let mut out = Vec::new();
    assert!(m.write_pes(0x222, 0, None, true, b"x", &mut out).is_err());
    assert!(m
        .write_pes(PID_AUDIO, 0, None, true, &[0; 70_000], &mut out)
        .is_err());
    assert!(out.is_empty());
}

/// Demuxes the ffmpeg fixture and muxes its PES again with [`TsMuxer`].
fn remux_fixture() -> Vec<u8> {
    let mut m = TsMuxer::new(av_streams(), PID_VIDEO);
    let mut out = Vec::new();
    for p in pes_of(&demux(FFMPEG_FIXTURE)) {
        let pts = p.pts.unwrap();
        m.write_pes(p.pid, pts, p.dts, p.random_access, &p.data, &mut out)
            .unwrap();
    }
    out
}

#[test]
fn remux_fixture_round_trip() {
    let orig = demux(FFMPEG_FIXTURE);
    let again = demux(&remux_fixture());
    let key = |e: &[TsEvent]| -> Vec<(u16, Option<u64>, Option<u64>, bytes::Bytes)> {
        let mut v: Vec<_> = pes_of(e)
            .iter()
            .map(|p| (p.pid, p.pts, p.dts, p.data.clone()))
            .collect();
        v.sort_by_key(|x| (x.0, x.2.or(x.1)));
        v
    };
    assert_eq!(key(&orig), key(&again));
}

/// ffprobe's view of a TS file: one line per packet (type, pts, dts, size, flags).
fn ffprobe_packets(ts: &[u8], name: &str) -> String {
    let ok = std::process::Command::new("ffprobe")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "ffprobe is required for this test but was not found; install it with `apt-get install -y ffmpeg` (Debian) or run .ci/run"
    );
    let path = std::env::temp_dir().join(format!("river-ts-{name}-{}.ts", std::process::id()));
    std::fs::write(&path, ts).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "packet=codec_type,pts,dts,size,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ffprobe_accepts_muxer_output() {
    let orig = ffprobe_packets(FFMPEG_FIXTURE, "orig");
    let ours = ffprobe_packets(&remux_fixture(), "remux");
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(orig.lines().filter(|l| l.starts_with("video")).count(), 30);
    assert_eq!(sorted(&orig), sorted(&ours));
}

#[test]
fn buffered_total_is_bounded() {
    let streams: Vec<MuxStream> = (0..3)
        .map(|k| MuxStream {
            pid: 0x100 + k,
            stream_type: STREAM_TYPE_H264,
            stream_id: STREAM_ID_VIDEO + k as u8,
        })
        .collect();
    let mut m = TsMuxer::new(streams, 0x100);
    let mut out = Vec::new();
    let big = vec![7u8; 12 << 20];
    for k in 0..3 {
        m.write_pes(0x100 + k, 0, None, true, &big, &mut out)
            .unwrap();
    }
    // Video PES have no length: all three stay open until finish, 36 MiB together.
    let events = demux(&out);
    let w = warnings_of(&events);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].message.contains("all streams together"),
        "{}",
        w[0].message
    );
    let pes = pes_of(&events);
    assert_eq!(
        pes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [0x100, 0x101]
    );
    assert!(pes.iter().all(|p| p.data.len() == 12 << 20));
}

/// Rough speed check: `cargo test --release --lib throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let frame = vec![0x5Au8; 20_000];
    let mut m = TsMuxer::new(av_streams(), PID_VIDEO);
    let mut out = Vec::with_capacity(300 << 20);
    for k in 0..12_000u64 {
        m.write_pes(
            PID_VIDEO,
            k * 3000,
            Some(k * 3000),
            k % 60 == 0,
            &frame,
            &mut out,
        )
        .unwrap();
    }
    // Muxing as a pipeline does it: one frame at a time into a reused buffer.
    let mut buf = Vec::new();
    let t = std::time::Instant::now();
    for k in 0..12_000u64 {
        buf.clear();
        m.write_pes(
            PID_VIDEO,
            k * 3000,
            Some(k * 3000),
            k % 60 == 0,
            &frame,
            &mut buf,
        )
        .unwrap();
        std::hint::black_box(&buf);
    }
    let mux_s = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let mut d = TsDemuxer::new();
    let mut ev = Vec::new();
    let mut n = 0;
    for c in out.chunks(64 * 1024 + 1) {
        d.push(c, &mut ev);
        n += ev.len();
        ev.clear();
    }
    d.finish(&mut ev);
    n += ev.len();
    let demux_s = t.elapsed().as_secs_f64();
    assert_eq!(n, 12_001);
    let mb = out.len() as f64 / 1e6;
    eprintln!(
        "{mb:.0} MB: mux {:.0} MB/s, demux {:.0} MB/s",
        mb / mux_s,
        mb / demux_s
    );
}

#[test]
fn discontinuity_indicator_allows_cc_jump() {
    let inputs = sample_inputs()[..6].to_vec();
    let ts = mux(&inputs);
    let mut data = ts.clone();
    // Find the second video PES start and set discontinuity_indicator in its adaptation field,
    // then shift the counters of every later video packet.
    let starts: Vec<usize> = packets(&ts)
        .iter()
        .enumerate()
        .filter(|(_, p)| p.pid == PID_VIDEO && p.pusi)
        .map(|(k, _)| k)
        .collect();
    let k = starts[1];
    data[k * 188 + 5] |= 0x80;
    for p in data.chunks_mut(188).skip(k) {
        if u16::from_be_bytes([p[1] & 0x1F, p[2]]) == PID_VIDEO {
            p[3] = (p[3] & 0xF0) | ((p[3] + 5) & 0x0F);
        }
    }
    let events = demux(&data);
    assert!(
        warnings_of(&events).is_empty(),
        "{:?}",
        warnings_of(&events)
    );
    let video: Vec<_> = pes_of(&events)
        .into_iter()
        .filter(|p| p.pid == PID_VIDEO)
        .collect();
    let flags: Vec<bool> = video.iter().map(|p| p.discontinuity).collect();
    assert_eq!(flags, [false, true, false]);
    assert!(video.iter().all(|p| !p.corrupt));
}

#[test]
fn discontinuity_marks_the_next_pes_of_each_stream_once() {
    let mut m = TsMuxer::new(av_streams(), PID_VIDEO);
    let mut out = Vec::new();
    m.write_pes(PID_VIDEO, 1000, None, true, &[1; 300], &mut out)
        .unwrap();
    m.mark_discontinuity();
    let mark = out.len();
    m.write_pes(PID_AUDIO, 2000, None, false, &[2; 10], &mut out)
        .unwrap();
    m.write_pes(PID_VIDEO, 3000, None, false, &[3; 300], &mut out)
        .unwrap();
    m.write_pes(PID_VIDEO, 4000, None, false, &[4; 10], &mut out)
        .unwrap();
    let flagged: Vec<(u16, bool)> = out
        .chunks(188)
        .skip(mark / 188)
        .filter(|p| p[1] & 0x40 != 0) // payload unit starts
        .map(|p| {
            let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
            let disc = p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x80 != 0;
            (pid, disc)
        })
        .collect();
    assert_eq!(
        flagged,
        vec![
            (PID_PAT, false),
            (PID_PMT, false),
            (PID_AUDIO, true),
            (PID_VIDEO, true),
            (PID_VIDEO, false)
        ]
    );
    // Still one valid stream.
    assert_eq!(pes_of(&demux(&out)).len(), 4);
}
