//! Per-tool glue: each tool's `run(args)`.
