//! river-rtsp-pull: pull an IP camera over RTSP into a pipe.
fn main() {
    river::stdio::main_with("river-rtsp-pull", river::app::rtsp_pull)
}
