//! river-thumb: thumbnails (JPEG/PNG) from the latest H.264 keyframe.
fn main() {
    river::stdio::main_with("river-thumb", river::app::thumb)
}
