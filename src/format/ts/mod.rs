//! MPEG-TS (being written).
