//! river-testsrc: a built-in live H.264 + AAC test stream on stdout (MPEG-TS, FLV or Annex B).
fn main() {
    river::stdio::main_with("river-testsrc", river::app::testsrc)
}
