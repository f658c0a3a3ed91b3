//! river-mux-ts: H.264 (+AAC) from FLV, MPEG-TS or Annex B on stdin to MPEG-TS on stdout.
fn main() {
    river::stdio::main_with("river-mux-ts", river::app::mux_ts)
}
