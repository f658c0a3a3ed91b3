//! A bit reader over NAL unit payloads (H.264 and H.265 share the RBSP rules: emulation
//! prevention bytes `00 00 03` and Exp-Golomb codes).

/// A bit reader over a NAL unit's payload that removes emulation prevention bytes as it goes; for
/// the few fields read without a full parse.
pub(crate) struct RbspBits<'a> {
    data: &'a [u8],
    pos: usize,
    zeros: u8,
    cur: u8,
    bits_left: u8,
    /// RBSP bits read so far.
    read: usize,
}

impl<'a> RbspBits<'a> {
    /// `data` starts after the NAL unit header (1 byte in H.264, 2 in H.265).
    pub(crate) fn new(data: &'a [u8]) -> Self {
        RbspBits {
            data,
            pos: 0,
            zeros: 0,
            cur: 0,
            bits_left: 0,
            read: 0,
        }
    }

    /// How many bits of the RBSP (emulation prevention bytes removed) were read so far.
    pub(crate) fn bit_position(&self) -> usize {
        self.read
    }

    fn next_byte(&mut self) -> Option<u8> {
        loop {
            let b = *self.data.get(self.pos)?;
            self.pos += 1;
            if self.zeros >= 2 && b == 3 {
                self.zeros = 0;
                continue;
            }
            if b == 0 {
                self.zeros = self.zeros.saturating_add(1);
            } else {
                self.zeros = 0;
            }
            return Some(b);
        }
    }

    pub(crate) fn bit(&mut self) -> Option<bool> {
        if self.bits_left == 0 {
            self.cur = self.next_byte()?;
            self.bits_left = 8;
        }
        self.bits_left -= 1;
        self.read += 1;
        Some((self.cur >> self.bits_left) & 1 == 1)
    }

    /// Unsigned Exp-Golomb (ue(v)); `None` past the end or for values over 32 bits.
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut v: u64 = 0;
        for _ in 0..zeros {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from((1u64 << zeros) - 1 + v).ok()
    }

    /// `n` bits (at most 32) as an unsigned number, most significant first.
    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n.min(32) {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from(v).ok()
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: u32) -> Option<()> {
        for _ in 0..n {
            self.bit()?;
        }
        Some(())
    }

    /// A flag: one bit.
    pub(crate) fn flag(&mut self) -> Option<bool> {
        self.bit()
    }

    /// Signed Exp-Golomb (se(v)).
    pub(crate) fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).ok()
    }
}

/// A NAL unit's payload without its emulation prevention bytes: the RBSP.
pub(crate) fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Writes an RBSP bit by bit; [`Self::finish`] adds the trailing bits and the emulation
/// prevention bytes.
#[derive(Default)]
pub(crate) struct RbspWriter {
    bytes: Vec<u8>,
    cur: u8,
    used: u8,
}

impl RbspWriter {
    pub(crate) fn bit(&mut self, b: bool) {
        self.cur = (self.cur << 1) | u8::from(b);
        self.used += 1;
        if self.used == 8 {
            self.bytes.push(self.cur);
            (self.cur, self.used) = (0, 0);
        }
    }

    /// Unsigned Exp-Golomb (ue(v)).
    pub(crate) fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let n = 63 - x.leading_zeros();
        for _ in 0..n {
            self.bit(false);
        }
        for i in (0..=n).rev() {
            self.bit((x >> i) & 1 == 1);
        }
    }

    /// Bits `from..to` of `rbsp`, most significant bit of each byte first.
    pub(crate) fn copy_bits(&mut self, rbsp: &[u8], from: usize, to: usize) {
        for i in from..to {
            self.bit((rbsp[i / 8] >> (7 - i % 8)) & 1 == 1);
        }
    }

    /// rbsp_trailing_bits (a one, then zeros to the byte boundary), then emulation prevention:
    /// the NAL unit payload.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.bit(true);
        while self.used != 0 {
            self.bit(false);
        }
        let mut out = Vec::with_capacity(self.bytes.len() + 4);
        let mut zeros = 0;
        for b in self.bytes {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            out.push(b);
        }
        out
    }
}

/// The position of an RBSP's rbsp_stop_one_bit (its last one bit), in bits.
pub(crate) fn stop_bit(rbsp: &[u8]) -> Option<usize> {
    let i = rbsp.iter().rposition(|&b| b != 0)?;
    Some(i * 8 + 7 - rbsp[i].trailing_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_and_signed_exp_golomb() {
        // 101 | 1 | 010 | 011 | 00100 | 00101 -> bits(3)=5, se: 0, 1, -1, 2, -2
        let data = [0b1011_0100, 0b1100_1000_u8, 0b0101_0000];
        let mut r = RbspBits::new(&data);
        assert_eq!(r.bits(3), Some(5));
        assert_eq!(r.se(), Some(0));
        assert_eq!(r.se(), Some(1));
        assert_eq!(r.se(), Some(-1));
        assert_eq!(r.se(), Some(2));
        assert_eq!(r.se(), Some(-2));
        assert_eq!(r.bits(8), None);
        let mut r = RbspBits::new(&[0xff, 0xff, 0xff, 0xff, 0x80]);
        assert_eq!(r.bits(32), Some(u32::MAX));
        assert_eq!(r.flag(), Some(true));
        assert_eq!(r.skip(7), Some(()));
        assert_eq!(r.flag(), None);
    }

    #[test]
    fn writer_round_trips_through_the_reader() {
        let mut w = RbspWriter::default();
        for v in [0, 1, 2, 7, 255, 65_535, u32::MAX - 1] {
            w.ue(v);
        }
        w.bit(true);
        // Zeros that need emulation prevention once written.
        for _ in 0..24 {
            w.bit(false);
        }
        w.ue(2);
        let nal = w.finish();
        // Escaped: no 00 00 00, 00 00 01 or 00 00 02 left (00 00 03 is the escape itself).
        assert!(nal.windows(3).all(|x| x[..2] != [0, 0] || x[2] >= 3));
        assert!(nal.windows(3).any(|x| x == [0, 0, 3]));
        let mut r = RbspBits::new(&nal);
        for v in [0, 1, 2, 7, 255, 65_535, u32::MAX - 1] {
            assert_eq!(r.ue(), Some(v));
        }
        assert_eq!(r.flag(), Some(true));
        assert_eq!(r.bits(24), Some(0));
        assert_eq!(r.ue(), Some(2));
        let pos = r.bit_position();
        let rbsp = unescape(&nal);
        assert_eq!(stop_bit(&rbsp), Some(pos));
        assert_eq!(stop_bit(&[0, 0]), None);
    }
}
