use super::*;
use crate::pipeline::Demux;

const H264: &[u8] = include_bytes!("../../tests/fixtures/codec/testsrc-160x120-bf0.h264");
const IDR0: &[u8] = include_bytes!("../../tests/fixtures/thumb/testsrc-160x120-bf0.idr0.yuv");
const IDR25: &[u8] = include_bytes!("../../tests/fixtures/thumb/testsrc-160x120-bf0.idr25.yuv");

/// Every keyframe the store reports for `input` pushed in `chunks`.
fn keyframes(chunks: &[&[u8]]) -> Vec<Arc<Keyframe>> {
    let mut demux = Demux::new(None, None, 10.0);
    let mut store = KeyframeStore::new();
    let (mut evs, mut diags) = (Vec::new(), Vec::new());
    let mut keys = Vec::new();
    let mut at = 0u64;
    for c in chunks {
        at += c.len() as u64;
        demux.push(c, &mut evs, &mut diags).unwrap();
        keys.extend(evs.drain(..).filter_map(|e| store.event(&e, at)));
    }
    demux.finish(&mut evs, &mut diags).unwrap();
    keys.extend(evs.drain(..).filter_map(|e| store.event(&e, at)));
    assert!(diags.is_empty(), "{diags:?}");
    if let Some(k) = keys.last() {
        assert_eq!(store.latest().unwrap().seq, k.seq);
    }
    keys
}

fn yuv_of(p: &Picture) -> Vec<u8> {
    [&p.y[..], &p.u[..], &p.v[..]].concat()
}

#[test]
fn store_keeps_each_keyframe_for_any_chunking() {
    let whole = keyframes(&[H264]);
    assert_eq!(whole.len(), 2);
    assert_eq!(whole.iter().map(|k| k.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!((whole[0].config.width, whole[0].config.height), (160, 120));
    let same = |ks: &[Arc<Keyframe>]| {
        ks.len() == whole.len()
            && ks
                .iter()
                .zip(&whole)
                .all(|(a, b)| a.data == b.data && a.pts == b.pts)
    };
    for cut in (1..H264.len()).step_by(7) {
        assert!(
            same(&keyframes(&[&H264[..cut], &H264[cut..]])),
            "cut at {cut}"
        );
    }
    let ones: Vec<&[u8]> = H264.chunks(1).collect();
    assert!(same(&keyframes(&ones)));
}

#[test]
fn decodes_keyframes_exactly_like_ffmpeg() {
    let keys = keyframes(&[H264]);
    let mut dec = KeyframeDecoder::new();
    // The same decoder, kept alive, for both keyframes; then the first again.
    let p0 = dec.decode(&keys[0]).unwrap();
    assert_eq!((p0.width, p0.height), (160, 120)); // 120 is cropped from 128 coded lines
    assert_eq!(p0.colour, Colour::default());
    assert!(
        yuv_of(&p0) == IDR0,
        "keyframe 0 differs from ffmpeg's decode"
    );
    let p1 = dec.decode(&keys[1]).unwrap();
    assert!(
        yuv_of(&p1) == IDR25,
        "keyframe 25 differs from ffmpeg's decode"
    );
    let again = dec.decode(&keys[0]).unwrap();
    assert!(yuv_of(&again) == IDR0);
}

#[test]
fn a_corrupt_keyframe_fails_alone() {
    let keys = keyframes(&[H264]);
    let mut dec = KeyframeDecoder::new();
    let mut bad = (*keys[0]).clone();
    // Keep the first 12 bytes of the slice data only, with the length fixed up.
    let mut data = Vec::new();
    for nal in crate::codec::h264::avcc_nals(&keys[0].data, 4).map_while(Result::ok) {
        let nal = if crate::codec::h264::nal_type(nal) == 5 {
            &nal[..12]
        } else {
            nal
        };
        data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        data.extend_from_slice(nal);
    }
    bad.data = data.into();
    let r = dec.decode(&bad);
    if let Ok(p) = &r {
        // openh264 may conceal instead of failing; then it must at least not be the real picture.
        assert!(yuv_of(p) != IDR0);
    }
    // Garbage instead of a slice: no picture.
    bad.data = Bytes::from_static(&[0, 0, 0, 4, 0x65, 0xff, 0xff, 0xff]);
    assert!(dec.decode(&bad).is_err());
    // The next good keyframe decodes exactly.
    assert!(yuv_of(&dec.decode(&keys[1]).unwrap()) == IDR25);
}

#[test]
fn renderer_scales_encodes_and_caches() {
    let keys = keyframes(&[H264]);
    let mut r = Renderer::new(RenderOptions {
        width: Some(80),
        height: None,
        quality: 75,
    });
    let a = r.picture(&keys[0]).unwrap();
    assert_eq!((a.width, a.height), (80, 60));
    let b = r.picture(&keys[0]).unwrap();
    assert!(
        Arc::ptr_eq(&a, &b),
        "second request for the same keyframe is cached"
    );
    let jpg = r.render(&keys[0], ImageFormat::Jpeg).unwrap();
    assert_eq!(&jpg[..3], &[0xff, 0xd8, 0xff]);
    let png = r.render(&keys[1], ImageFormat::Png).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let c = r.picture(&keys[1]).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
}

#[test]
fn png_matches_ffmpeg_yuv_within_rounding() {
    // Our RGB of ffmpeg's own YUV against our RGB of our decode: identical, since the decode is.
    // And against a float BT.601 reference: within 1 per channel.
    let keys = keyframes(&[H264]);
    let p = KeyframeDecoder::new().decode(&keys[0]).unwrap();
    let mut rgb = Vec::new();
    p.to_rgb(&mut rgb);
    let (w, h) = (160usize, 120usize);
    let (ys, us, vs) = (
        &IDR0[..w * h],
        &IDR0[w * h..w * h * 5 / 4],
        &IDR0[w * h * 5 / 4..],
    );
    let mut worst = 0f64;
    for y in 0..h {
        for x in 0..w {
            let yy = (ys[y * w + x] as f64 - 16.0) * 255.0 / 219.0;
            let u = (us[(y / 2) * (w / 2) + x / 2] as f64 - 128.0) * 255.0 / 224.0;
            let v = (vs[(y / 2) * (w / 2) + x / 2] as f64 - 128.0) * 255.0 / 224.0;
            let want = [
                yy + 1.402 * v,
                yy - 0.344136 * u - 0.714136 * v,
                yy + 1.772 * u,
            ];
            for (c, wv) in want.iter().enumerate() {
                let got = rgb[(y * w + x) * 3 + c] as f64;
                worst = worst.max((got - wv.clamp(0.0, 255.0)).abs());
            }
        }
    }
    assert!(worst <= 1.0, "worst channel error {worst}");
}

#[test]
fn image_format_from_path() {
    use std::path::Path;
    assert_eq!(
        ImageFormat::from_path(Path::new("a/b.PNG")),
        Some(ImageFormat::Png)
    );
    assert_eq!(
        ImageFormat::from_path(Path::new("x.jpeg")),
        Some(ImageFormat::Jpeg)
    );
    assert_eq!(
        ImageFormat::from_path(Path::new("x.jpg")),
        Some(ImageFormat::Jpeg)
    );
    assert_eq!(ImageFormat::from_path(Path::new("x")), None);
}

#[test]
fn store_ignores_frames_before_a_configuration() {
    let mut s = KeyframeStore::new();
    let f = crate::media::Frame {
        track: crate::media::Track::Video,
        codec: crate::media::Codec::H264,
        dts: 0,
        pts: 0,
        keyframe: true,
        data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
    };
    assert!(s.event(&MediaEvent::Frame(f.clone()), 5).is_none());
    assert!(s.latest().is_none());
    s.event(
        &MediaEvent::Tracks {
            video: false,
            audio: true,
        },
        0,
    );
    assert!(s.no_video());
}

const H265: &[u8] = include_bytes!("../../tests/fixtures/codec/testsrc-160x120-bf2.h265");
const IRAP0: &[u8] =
    include_bytes!("../../tests/fixtures/thumb/testsrc-160x120-bf2.h265.irap0.yuv");
const CRA24: &[u8] =
    include_bytes!("../../tests/fixtures/thumb/testsrc-160x120-bf2.h265.cra24.yuv");

#[test]
fn decodes_h265_irap_pictures_exactly_like_ffmpeg() {
    let keys = keyframes(&[H265]);
    // x265's open GOP: the IDR, then CRA pictures (every 24 frames).
    assert_eq!(keys.len(), 3);
    let types: Vec<u8> = keys
        .iter()
        .map(|k| crate::codec::h265::au_picture_type(&k.data).unwrap())
        .collect();
    assert_eq!(types, [20, 21, 21], "IDR_N_LP, CRA, CRA");
    let mut dec = KeyframeDecoder::new();
    // One libde265 decoder, reset between keyframes: the IDR, the CRA alone, the IDR again.
    let p0 = dec.decode(&keys[0]).unwrap();
    assert_eq!((p0.width, p0.height), (160, 120)); // 120 is cropped from 128 coded lines
    assert_eq!(p0.colour, Colour::default());
    assert!(yuv_of(&p0) == IRAP0, "the IDR differs from ffmpeg's decode");
    let p1 = dec.decode(&keys[1]).unwrap();
    assert!(yuv_of(&p1) == CRA24, "the CRA differs from ffmpeg's decode");
    assert!(yuv_of(&dec.decode(&keys[0]).unwrap()) == IRAP0);
    // A keyframe of garbage fails alone; the next one decodes exactly. H.264 after H.265 too.
    let mut bad = (*keys[1]).clone();
    bad.data = Bytes::from_static(&[0, 0, 0, 5, 0x2a, 0x01, 0xff, 0xff, 0xff]);
    assert!(dec.decode(&bad).is_err());
    assert!(yuv_of(&dec.decode(&keys[1]).unwrap()) == CRA24);
    let h264 = keyframes(&[H264]);
    assert!(yuv_of(&dec.decode(&h264[0]).unwrap()) == IDR0);
}

#[test]
fn renderer_moves_between_threads() {
    // river-thumb --serve renders on its own thread behind a lock: the decoders must be Send.
    fn send<T: Send>(_: &T) {}
    let r = Renderer::new(RenderOptions::default());
    send(&r);
    let keys = keyframes(&[H265]);
    let png = std::thread::spawn(move || {
        let mut r = r;
        r.render(&keys[0], ImageFormat::Png).unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(&png[1..4], b"PNG");
}

/// The SPS handed to openh264 asks for one reference frame: the pictures are the same as with
/// the stream's own SPS (here 3 or more references, from x264 with B-frames).
#[test]
fn one_reference_frame_decodes_the_same_pictures() {
    let h264 = include_bytes!("../../tests/fixtures/codec/testsrc-160x120-bf3.h264");
    let keys = keyframes(&[h264]);
    assert!(!keys.is_empty());
    for k in &keys {
        let refs = crate::codec::h264::parse_sps(&k.config.sps[0])
            .unwrap()
            .max_num_ref_frames;
        assert!(refs > 1, "fixture SPS has {refs} reference frames");
        let ours = KeyframeDecoder::new().decode(k).unwrap();
        let theirs = decode::decode_unmodified(k).unwrap();
        assert_eq!((ours.width, ours.height), (theirs.width, theirs.height));
        assert!(yuv_of(&ours) == yuv_of(&theirs), "{}", k.describe());
    }
}
