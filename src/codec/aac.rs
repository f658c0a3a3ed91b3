//! AAC (owned by the codec work; being written).
