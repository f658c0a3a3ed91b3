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
        }
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
}
