//! Per-tool glue: each tool's `run(args)`. The binaries in `src/bin/` hand these to
//! [`crate::stdio::main_with`].

mod mux;
mod thumb;

pub use mux::{mux_flv, mux_ts};
pub use thumb::thumb;
