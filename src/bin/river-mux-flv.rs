//! river-mux-flv: H.264 (+AAC) from Annex B, MPEG-TS or FLV on stdin to FLV on stdout.
fn main() {
    river::stdio::main_with("river-mux-flv", river::app::mux_flv)
}
