//! The simple RTMP handshake, server side: C0 (version) + C1 (1536 bytes) in, S0 + S1 + S2 out,
//! then C2 (1536 bytes) in.
//!
//! S1 carries our time and zero "version" bytes, which tells digest-aware clients (ffmpeg, OBS,
//! librtmp) that this is a simple-handshake server, so they do not validate a digest. A digest
//! ("complex") C1 is echoed back in S2 like any other bytes. C2's contents are not checked: clients
//! that use the digest scheme fill it differently, and nothing depends on it.

use super::{RtmpError, RtmpErrorKind};

/// Length of C1, C2, S1 and S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// The only RTMP version spoken (plain RTMP; 6 and 8 would be RTMPE).
pub const RTMP_VERSION: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    C0,
    C1,
    C2,
    Done,
}

/// The server side of the handshake.
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    state: State,
    buf: Vec<u8>,
    /// Bytes consumed so far (for error offsets).
    consumed: u64,
    seed: u64,
    epoch_ms: u32,
}

impl ServerHandshake {
    /// `seed` fills S1's random part; `epoch_ms` is our time field in S1 and S2.
    pub fn new(seed: u64, epoch_ms: u32) -> Self {
        ServerHandshake {
            state: State::C0,
            buf: Vec::new(),
            consumed: 0,
            seed,
            epoch_ms,
        }
    }

    /// Whether C2 has arrived: every further byte belongs to the chunk stream.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes handshake bytes from the front of `data` and appends S0+S1+S2 to `out` once C1
    /// is complete. Returns how many bytes of `data` were handshake bytes (the rest, once
    /// [`is_done`](Self::is_done), is the chunk stream).
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<usize, RtmpError> {
        let mut used = 0;
        while used < data.len() && self.state != State::Done {
            match self.state {
                State::C0 => {
                    let v = data[used];
                    if v != RTMP_VERSION {
                        let what = match v {
                            6 | 8 => " (RTMPE, encrypted RTMP, is not supported)".to_string(),
                            b'G' | b'P' | b'H' | b'O' => {
                                " (this looks like HTTP, not RTMP)".to_string()
                            }
                            0x16 => " (this looks like TLS: RTMPS is not supported)".to_string(),
                            _ => String::new(),
                        };
                        return Err(RtmpError::new(
                            RtmpErrorKind::Handshake,
                            self.consumed,
                            format!("handshake: expected RTMP version 3 in C0, got {v}{what}"),
                        ));
                    }
                    used += 1;
                    self.consumed += 1;
                    self.state = State::C1;
                }
                State::C1 | State::C2 => {
                    let want = HANDSHAKE_SIZE - self.buf.len();
                    let n = want.min(data.len() - used);
                    self.buf.extend_from_slice(&data[used..used + n]);
                    used += n;
                    self.consumed += n as u64;
                    if self.buf.len() == HANDSHAKE_SIZE {
                        if self.state == State::C1 {
                            self.answer(out);
                            self.state = State::C2;
                        } else {
                            self.state = State::Done;
                        }
                        self.buf = Vec::new();
                    }
                }
                State::Done => {}
            }
        }
        Ok(used)
    }

    fn answer(&self, out: &mut Vec<u8>) {
        let c1 = &self.buf;
        out.reserve(1 + 2 * HANDSHAKE_SIZE);
        out.push(RTMP_VERSION);
        // S1: time, four zero bytes (simple handshake), random.
        out.extend_from_slice(&self.epoch_ms.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        let mut x = self.seed | 1;
        let mut left = HANDSHAKE_SIZE - 8;
        while left > 0 {
            // xorshift64*: enough for a field nobody checks.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_be_bytes();
            let n = left.min(8);
            out.extend_from_slice(&r[..n]);
            left -= n;
        }
        // S2: C1's time, our time, C1's random echoed.
        out.extend_from_slice(&c1[0..4]);
        out.extend_from_slice(&self.epoch_ms.to_be_bytes());
        out.extend_from_slice(&c1[8..]);
    }
}

/// A client handshake (C0+C1, and C2 built from S1), for tests, fuzzing and benchmarks.
pub fn client_c0c1(epoch_ms: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + HANDSHAKE_SIZE);
    v.push(RTMP_VERSION);
    v.extend_from_slice(&epoch_ms.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend((0..HANDSHAKE_SIZE - 8).map(|i| (i * 7 + 3) as u8));
    v
}

/// C2 for a given S0+S1 (echoes S1).
pub fn client_c2(s0s1: &[u8]) -> Vec<u8> {
    s0s1.get(1..1 + HANDSHAKE_SIZE)
        .map(|s| s.to_vec())
        .unwrap_or_else(|| vec![0; HANDSHAKE_SIZE])
}
