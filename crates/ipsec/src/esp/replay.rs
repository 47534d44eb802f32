//! The anti-replay window (RFC 4303 s3.4.3), as the bitmap of RFC 6479:
//! `size / 64 + 1` words, so that the window slides by clearing whole
//! words and never shifts bits.
//!
//! [`ReplayWindow::check`] is the cheap test made before the ICV;
//! [`ReplayWindow::update`] is made only after the ICV verified (s3.4.3:
//! "the receive window is updated only if the integrity verification
//! succeeds").

/// Why a sequence number is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayVerdict {
    /// Within the window and already received.
    Replayed,
    /// Left of the window.
    TooOld,
}

/// A sliding window over 64-bit sequence numbers (ESN or not; without ESN
/// the high half is always 0).
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// The highest sequence number received (0: none yet).
    top: u64,
    /// The window size in packets, a multiple of 64.
    size: u64,
    bits: Box<[u64]>,
}

impl ReplayWindow {
    /// A window of `size` packets, rounded up to a multiple of 64 (at
    /// least 64).
    pub fn new(size: usize) -> ReplayWindow {
        let size = (size.max(64) as u64).div_ceil(64) * 64;
        ReplayWindow {
            top: 0,
            size,
            bits: vec![0; (size / 64) as usize + 1].into_boxed_slice(),
        }
    }

    /// The window size in packets.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The highest sequence number received so far (0: none).
    pub fn top(&self) -> u64 {
        self.top
    }

    fn slot(&self, seq: u64) -> (usize, u64) {
        let n = self.bits.len() as u64;
        (((seq >> 6) % n) as usize, 1u64 << (seq & 63))
    }

    /// Whether `seq` may be accepted, without changing the window.
    pub fn check(&self, seq: u64) -> Result<(), ReplayVerdict> {
        if seq > self.top {
            return Ok(());
        }
        if seq == 0 || seq + self.size <= self.top {
            return Err(ReplayVerdict::TooOld);
        }
        let (word, bit) = self.slot(seq);
        if self.bits[word] & bit != 0 {
            Err(ReplayVerdict::Replayed)
        } else {
            Ok(())
        }
    }

    /// Marks `seq` received (after its ICV verified), sliding the window
    /// when it is new. `seq` must have passed [`check`](Self::check).
    pub fn update(&mut self, seq: u64) {
        if seq > self.top {
            let n = self.bits.len() as u64;
            let current = self.top >> 6;
            let new = seq >> 6;
            let clear = (new - current).min(n);
            for i in 1..=clear {
                let w = ((current + i) % n) as usize;
                self.bits[w] = 0;
            }
            self.top = seq;
        }
        let (word, bit) = self.slot(seq);
        self.bits[word] |= bit;
    }

    /// The full sequence number of a received low half, RFC 4303 Appendix
    /// A2.2: the high half is guessed from where the window lies.
    pub fn esn_infer(&self, low: u32) -> u64 {
        let w = self.size;
        let tl = self.top & 0xffff_ffff;
        let th = self.top >> 32;
        let low = u64::from(low);
        if tl >= w - 1 {
            // Case A: the window lies within one 2^32 block.
            if low >= tl - (w - 1) {
                (th << 32) | low
            } else {
                ((th + 1) << 32) | low
            }
        } else {
            // Case B: the window spans two blocks.
            let bottom = tl.wrapping_sub(w - 1) & 0xffff_ffff;
            if low >= bottom && th > 0 {
                ((th - 1) << 32) | low
            } else {
                (th << 32) | low
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_and_refuses() {
        let mut w = ReplayWindow::new(1024);
        for s in 1..=2000u64 {
            assert_eq!(w.check(s), Ok(()));
            w.update(s);
        }
        assert_eq!(w.check(2000), Err(ReplayVerdict::Replayed));
        assert_eq!(w.check(977), Err(ReplayVerdict::Replayed));
        assert_eq!(w.check(976), Err(ReplayVerdict::TooOld));
        assert_eq!(w.check(0), Err(ReplayVerdict::TooOld));
        w.update(1_000_000);
        assert_eq!(w.check(1_000_000 - 1023), Ok(()));
        assert_eq!(w.check(1_000_000 - 1024), Err(ReplayVerdict::TooOld));
    }

    #[test]
    fn esn_inference_across_the_boundary() {
        let mut w = ReplayWindow::new(1024);
        w.update(0xffff_fff0);
        assert_eq!(w.esn_infer(0xffff_ff00), 0xffff_ff00);
        assert_eq!(w.esn_infer(5), 0x1_0000_0005);
        w.update(0x1_0000_0005);
        assert_eq!(w.esn_infer(0xffff_fff8), 0xffff_fff8);
        assert_eq!(w.esn_infer(6), 0x1_0000_0006);
    }
}
