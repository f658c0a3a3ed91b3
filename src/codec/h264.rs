//! H.264 (owned by the codec work; being written).
