//! river-relay: fstream-compatible broadcast hub and its clients.
fn main() {
    river::stdio::main_with("river-relay", river::app::relay)
}
