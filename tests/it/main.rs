//! The integration suite: one test binary, a module per area, one shared harness in `common`.
//! Every test drives the real river binaries and real peers on 127.0.0.1, with a deadline on every
//! wait. Run one area with `cargo test --test it rtmp::`; `tests/loop.sh` repeats an area under load.

mod common;

mod docs;
mod dvr_retention;
mod hevc;
mod hevc_relay;
mod hevc_rtmp;
mod hevc_rtsp;
mod hevc_thumb;
mod hls;
mod hls_cache;
mod http;
mod http_layer;
mod llhls;
mod mux;
mod players;
mod progress;
mod relay;
mod relay_cascade;
mod relay_core;
mod relay_delivery;
mod relay_faults;
mod relay_faults_media;
mod relay_hls;
mod relay_hooks;
mod relay_metrics;
mod relay_names;
mod relay_rtmp;
mod relay_soak;
mod roundtrip;
mod rtmp;
mod rtsp_hub;
mod rtsp_proto;
mod rtsp_proxy;
mod rtsp_pull;
mod testsrc;
mod thumb;
