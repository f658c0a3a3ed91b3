//! river-hls-seg: H.264 (+AAC) on stdin to HLS segments and a playlist.
fn main() {
    river::stdio::main_with("river-hls-seg", river::app::hls_seg)
}
