//! FLV (being written).
