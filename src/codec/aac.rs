//! AAC (being written).
