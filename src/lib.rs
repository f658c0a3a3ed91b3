//! River: a Unix-pipe live-streaming toolkit.
//!
//! The library holds every parser, muxer and protocol state machine; the binaries in `src/bin/`
//! wire it to stdin/stdout. Nothing in the library prints: problems travel as values
//! ([`error::Diag`]) and the binaries log them.
//!
//! Errors: library functions return typed errors: [`error::Diag`] (a message and a byte offset)
//! from stream parsers, and a small enum per layer elsewhere, with a `Diag` inside where the
//! problem has an offset ([`codec::h264::H264Error`], [`codec::aac::AacError`],
//! [`format::flv::FlvError`], [`proto::sdp::SdpError`], [`proto::rtp::ingest::IngestError`],
//! [`proto::rtsp::auth::AuthError`], [`relay::convert::ConvertError`],
//! [`relay::client::ClientError`], [`thumb::ThumbError`], [`camera::CameraUrlError`]). `anyhow`
//! is only for [`app`], where each tool adds context and gives up, and [`stdio::main_with`] takes
//! any error that lends itself as a `dyn Error` (an `anyhow::Error` does).
//!
//! Map:
//! - [`media`]: the shared unit, [`media::Frame`] with 90 kHz timestamps, track configuration, and
//!   [`media::StreamFormat`], the one name for a byte stream's container in every layer.
//! - [`timeline`]: the one timestamp stage every tool uses (unwrap, re-stamp jumps, stay monotonic).
//! - [`codec`]: H.264 (Annex B / AVCC, access units, parameter sets, avcC, timestamps for raw
//!   streams) and AAC (ADTS, AudioSpecificConfig).
//! - [`format`](mod@format): containers without I/O: FLV (tags, AMF0 metadata), MPEG-TS (mux and
//!   demux), HLS (segmenter, playlist), and [`format::detect()`], the one container detection.
//! - [`net`]: sockets on mio: the reactor and timers, listeners whose accept survives running out
//!   of descriptors, the one bounded write path, outbound connects with deadlines, the UDP pair.
//!   Every socket goes through it (retina's tokio stays inside river-rtsp-pull).
//! - [`http`]: the one HTTP/1.x layer on [`net`]: pure request heads (with limits), responses,
//!   ranges and entity tags; a server with keep-alive, a connection cap, streams and parked
//!   requests; a POST client with a deadline. river-hls-seg `--serve` ([`http::serve`]),
//!   river-thumb `--serve` and the relay hub's `--http` run on it.
//! - [`proto`]: network protocols as sans-IO sessions: [`proto::rtmp`] (handshake, chunk stream,
//!   AMF0 commands, a server session for publish and play), [`proto::fstream`] (the fstream
//!   handshake) and [`proto::names`] (the one rule for names and passwords on every front).
//! - [`pipeline`]: the stages between containers and frames: [`pipeline::Demux`] (bridges,
//!   timeline, start gate), [`pipeline::TsOut`] and [`pipeline::FlvOut`].
//! - [`cli`]: one clap definition per tool, shared by the binaries, the man pages and completions.
//! - [`app`]: per-tool glue, `run(args) -> anyhow::Result<()>` (the only module on `anyhow`).
//! - [`testsrc`]: the embedded test clip and its endless, re-stamped replay (`river-testsrc`).
//! - [`thumb`]: thumbnails from the latest keyframe (openh264 or libde265 decode, scale, JPEG/PNG), no
//!   I/O.
//! - [`relay`]: river-relay: users, keyframe-aware chunking, GOP cache, watcher queues, the
//!   channels ([`relay::channel`]: attach, deliver, takeover, end, removal; pure), and the hub
//!   (one reactor) with its fstream, HTTP (with mpegts.js player pages), RTMP and RTSP fronts,
//!   and HLS from memory ([`relay::hls`]: per-channel sessions of river-hls-seg's pipeline).
//! - [`stdio`]: stdin/stdout policy (no binary to a terminal, broken pipe is a quiet exit), the
//!   shared `main` wrapper and exit codes.
//!
//! Layers, lowest first; a module uses only its own layer and those below it (a unit test in
//! lib.rs, `layers`, checks every `crate::` path outside comments):
//! 1. `error`, `media`, `timeline`: the shared types and the timestamp stage.
//! 2. `codec`: H.264 and AAC.
//! 3. `format`: containers, and detection.
//! 4. `pipeline`: stages between containers and media events (Demux, TsOut, FlvOut).
//! 5. `proto`: protocol sessions; RTP views and ingest build on the stages.
//! 6. `camera`, `testsrc`, `thumb`: the pure parts of single tools.
//! 7. `net`, `http`, `stdio`: sockets, the HTTP layer, stdin/stdout.
//! 8. `relay`: the relay's pure parts and its hub.
//! 9. `cli`, `app`: clap definitions and per-tool glue, for the binaries only.
//!
//! So nothing below `cli` and `app` sees clap types, and the stages sit below the protocols that
//! packetize their output.
//!
//! Time and chance are inputs: parsers, stages and protocol sessions take the monotonic time, the
//! wall clock, the time zone offset and random seeds from their callers (`net`, `relay`'s hub and
//! `app` read the clocks and draw seeds with [`proto::util::random_u64`]).

pub mod app;
pub mod camera;
pub mod cli;
pub mod codec;
pub mod error;
pub mod format;
pub mod http;
pub mod media;
pub mod net;
pub mod pipeline;
pub mod proto;
pub mod relay;
pub mod stdio;
pub mod testsrc;
pub mod thumb;
pub mod timeline;

#[cfg(test)]
mod layers {
    /// Each top-level module's layer (see the crate docs).
    const LAYERS: &[(&str, u8)] = &[
        ("error", 1),
        ("media", 1),
        ("timeline", 1),
        ("codec", 2),
        ("format", 3),
        ("pipeline", 4),
        ("proto", 5),
        ("camera", 6),
        ("testsrc", 6),
        ("thumb", 6),
        ("net", 7),
        ("http", 7),
        ("stdio", 7),
        ("relay", 8),
        ("cli", 9),
        ("app", 9),
    ];

    fn layer(module: &str) -> u8 {
        match LAYERS.iter().find(|(m, _)| *m == module) {
            Some((_, l)) => *l,
            None => panic!("module {module} has no layer in lib.rs's LAYERS"),
        }
    }

    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn modules_use_only_their_layer_and_below() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut all = Vec::new();
        files(&src, &mut all);
        let mut wrong = Vec::new();
        for path in all {
            let rel = path.strip_prefix(&src).unwrap();
            let top = rel.iter().next().unwrap().to_str().unwrap();
            let module = top.trim_end_matches(".rs");
            if matches!(module, "lib" | "bin") {
                continue;
            }
            let own = layer(module);
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap();
                for (i, _) in code.match_indices("crate::") {
                    let name: String = code[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if name != module && layer(&name) > own {
                        wrong.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "imports from a higher layer:\n{}",
            wrong.join("\n")
        );
    }
}
