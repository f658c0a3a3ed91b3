//! river-rtmp-in: RTMP publishers in, FLV on stdout (or one --exec command per stream key).
fn main() {
    river::stdio::main_with("river-rtmp-in", river::app::rtmp_in)
}
