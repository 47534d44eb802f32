//! RC4 ("ARCFOUR"), the stream cipher of MPPE (RFC 3078 s2), in safe Rust
//! tuned for MPPE's stateless mode: a key schedule per packet, so both
//! the key-scheduling algorithm and the keystream generator matter.
//!
//! The S-box is a `[u8; 256]` indexed by `u8` values, so no index needs
//! a bounds check. [`Rc4::keystream_many`] and [`Rc4::new_many`] step
//! several independent RC4 states in one loop: RC4 is a serial chain (`j`
//! depends on `S[i]`, which the previous step may have swapped), and
//! interleaving states lets the processor overlap their chains.
//!
//! Test vectors: RFC 6229 (`tests/rfc6229.rs`).

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// The identity permutation the key schedule starts from.
const IDENTITY: [u8; 256] = {
    let mut s = [0u8; 256];
    let mut n = 0;
    while n < 256 {
        s[n] = n as u8;
        n += 1;
    }
    s
};

/// An RC4 state: the permutation `S` and the indices `i`, `j`.
///
/// Zeroized on drop; `Debug` prints `Rc4(<redacted>)`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

impl fmt::Debug for Rc4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rc4(<redacted>)")
    }
}

impl Rc4 {
    /// A cipher at keystream position 0; `None` unless `key` has 1 to 256
    /// octets (RC4's key lengths). MPPE uses 8 (40/56-bit) or 16 (128-bit).
    pub fn new(key: &[u8]) -> Option<Rc4> {
        let s = match key.len() {
            8 => ksa::<8>(key.try_into().ok()?),
            16 => ksa::<16>(key.try_into().ok()?),
            1..=256 => ksa_any(key),
            _ => return None,
        };
        Some(Rc4 { s, i: 0, j: 0 })
    }

    /// A cipher at keystream position 0 for a key of `K` octets (1 to
    /// 256, checked at compile time).
    pub(crate) fn with_key<const K: usize>(key: &[u8; K]) -> Rc4 {
        const { assert!(K >= 1 && K <= 256, "RC4 keys have 1 to 256 octets") };
        Rc4 {
            s: ksa(key),
            i: 0,
            j: 0,
        }
    }

    /// Runs the keystream generator for `len` octets, handing each to
    /// `emit`.
    ///
    /// The next `S[i]` is loaded before this step's two stores and
    /// patched if the swap moved it (`j == i + 1`): a load after the
    /// stores would wait for `j`'s store address on every step, which
    /// makes the chain about twice as long (measured,
    /// examples/mppe_speed.rs).
    #[inline(always)]
    fn run(&mut self, len: usize, mut emit: impl FnMut(u8)) {
        let s = &mut self.s;
        let (mut i, mut j) = (self.i, self.j);
        let mut si = s[usize::from(i.wrapping_add(1))];
        for _ in 0..len {
            i = i.wrapping_add(1);
            j = j.wrapping_add(si);
            let sj = s[usize::from(j)];
            let i1 = i.wrapping_add(1);
            let next = s[usize::from(i1)];
            s[usize::from(i)] = sj;
            s[usize::from(j)] = si;
            emit(s[usize::from(si.wrapping_add(sj))]);
            si = if j == i1 { si } else { next };
        }
        self.i = i;
        self.j = j;
    }

    /// Encrypts or decrypts `data` in place, advancing the keystream.
    pub fn apply(&mut self, data: &mut [u8]) {
        let mut it = data.iter_mut();
        self.run(it.len(), |k| {
            if let Some(b) = it.next() {
                *b ^= k;
            }
        });
    }

    /// Writes `src` encrypted (or decrypted) to `dst`, advancing the
    /// keystream by `src.len()`: [`Rc4::apply`] without a separate copy.
    /// Panics unless `dst` is exactly as long as `src`.
    pub fn apply_to(&mut self, src: &[u8], dst: &mut [u8]) {
        assert_eq!(src.len(), dst.len(), "Rc4::apply_to: src and dst lengths");
        let mut it = dst.iter_mut().zip(src);
        self.run(src.len(), |k| {
            if let Some((d, s)) = it.next() {
                *d = s ^ k;
            }
        });
    }

    /// Writes the next `out.len()` keystream octets to `out`.
    pub fn keystream(&mut self, out: &mut [u8]) {
        let mut it = out.iter_mut();
        self.run(it.len(), |k| {
            if let Some(o) = it.next() {
                *o = k;
            }
        });
    }

    /// Writes the next `len` keystream octets of each of `N` states into
    /// `out[n][from..from + len]` (stopping at the end of `out[n]`),
    /// stepping the states in lockstep (see the module docs). Same output
    /// as [`Rc4::keystream`] per state.
    ///
    /// A plain loop: the next-`S[i]` preload of [`Rc4::keystream`] and
    /// writing 8 octets per store were both slower here (measured), the
    /// interleaving already hides the store-to-load wait.
    // The octet position indexes all lanes' outputs, side by side.
    #[allow(clippy::needless_range_loop)]
    pub fn keystream_many<const N: usize, const CAP: usize>(
        states: &mut [Rc4; N],
        out: &mut [[u8; CAP]; N],
        from: usize,
        len: usize,
    ) {
        let to = from.saturating_add(len).min(CAP);
        let mut i = [0u8; N];
        let mut j = [0u8; N];
        for n in 0..N {
            i[n] = states[n].i;
            j[n] = states[n].j;
        }
        for pos in from..to {
            for n in 0..N {
                let s = &mut states[n].s;
                i[n] = i[n].wrapping_add(1);
                let si = s[usize::from(i[n])];
                j[n] = j[n].wrapping_add(si);
                let sj = s[usize::from(j[n])];
                s[usize::from(i[n])] = sj;
                s[usize::from(j[n])] = si;
                out[n][pos] = s[usize::from(si.wrapping_add(sj))];
            }
        }
        for n in 0..N {
            states[n].i = i[n];
            states[n].j = j[n];
        }
    }

    /// `N` ciphers keyed with `keys` (each of `K` octets), their key
    /// schedules run in lockstep (with the preload of [`Rc4::new`]'s).
    pub fn new_many<const N: usize, const K: usize>(keys: &[[u8; K]; N]) -> [Rc4; N] {
        const { assert!(K >= 1 && K <= 256, "RC4 keys have 1 to 256 octets") };
        let mut s = [IDENTITY; N];
        let mut j = [0u8; N];
        let mut si = [IDENTITY[0]; N];
        for i in 0..255 {
            for n in 0..N {
                j[n] = j[n].wrapping_add(si[n]).wrapping_add(keys[n][i % K]);
                let jn = usize::from(j[n]);
                let next = s[n][i + 1];
                s[n][i] = s[n][jn];
                s[n][jn] = si[n];
                si[n] = if jn == i + 1 { si[n] } else { next };
            }
        }
        for n in 0..N {
            j[n] = j[n].wrapping_add(si[n]).wrapping_add(keys[n][255 % K]);
            let jn = usize::from(j[n]);
            s[n][255] = s[n][jn];
            s[n][jn] = si[n];
        }
        s.map(|s| Rc4 { s, i: 0, j: 0 })
    }
}

/// The key-scheduling algorithm for a `K`-octet key, with the next
/// `S[i]` loaded before the swap's stores (as in [`Rc4::run`]; about
/// twice as fast as the plain loop, measured).
fn ksa<const K: usize>(key: &[u8; K]) -> [u8; 256] {
    let mut s = IDENTITY;
    let mut j = 0u8;
    let mut si = s[0];
    for i in 0..255 {
        j = j.wrapping_add(si).wrapping_add(key[i % K]);
        let jn = usize::from(j);
        let next = s[i + 1];
        s[i] = s[jn];
        s[jn] = si;
        si = if jn == i + 1 { si } else { next };
    }
    j = j.wrapping_add(si).wrapping_add(key[255 % K]);
    s[255] = s[usize::from(j)];
    s[usize::from(j)] = si;
    s
}

/// The key-scheduling algorithm for any key length.
fn ksa_any(key: &[u8]) -> [u8; 256] {
    let mut s = IDENTITY;
    let mut j = 0u8;
    for (i, k) in (0..256).zip(key.iter().cycle()) {
        let si = s[i];
        j = j.wrapping_add(si).wrapping_add(*k);
        s[i] = s[usize::from(j)];
        s[usize::from(j)] = si;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RC4 as the textbook states it, one swap per step.
    fn textbook(key: &[u8], len: usize) -> Vec<u8> {
        let mut s: Vec<u8> = (0..=255).collect();
        let mut j = 0usize;
        for i in 0..256 {
            j = (j + usize::from(s[i]) + usize::from(key[i % key.len()])) % 256;
            s.swap(i, j);
        }
        let (mut i, mut j) = (0usize, 0usize);
        (0..len)
            .map(|_| {
                i = (i + 1) % 256;
                j = (j + usize::from(s[i])) % 256;
                s.swap(i, j);
                s[(usize::from(s[i]) + usize::from(s[j])) % 256]
            })
            .collect()
    }

    fn pseudo_random(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                (*seed >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn every_path_matches_the_textbook() {
        let mut seed = 1;
        for key_len in [1usize, 5, 7, 8, 13, 16, 32, 256] {
            for round in 0..20 {
                let key = pseudo_random(&mut seed, key_len);
                let want = textbook(&key, 700);
                // Split in two calls at a varying point.
                let cut = round * 31 % 700;
                let mut a = Rc4::new(&key).unwrap();
                let mut ks = vec![0u8; 700];
                a.keystream(&mut ks[..cut]);
                a.keystream(&mut ks[cut..]);
                assert_eq!(ks, want, "keystream, key {key:02x?}");
                let data = pseudo_random(&mut seed, 700);
                let mut b = Rc4::new(&key).unwrap();
                let mut in_place = data.clone();
                b.apply(&mut in_place[..cut]);
                b.apply(&mut in_place[cut..]);
                let mut c = Rc4::new(&key).unwrap();
                let mut copied = vec![0u8; 700];
                c.apply_to(&data[..cut], &mut copied[..cut]);
                c.apply_to(&data[cut..], &mut copied[cut..]);
                for n in 0..700 {
                    assert_eq!(in_place[n], data[n] ^ want[n], "apply, octet {n}");
                    assert_eq!(copied[n], data[n] ^ want[n], "apply_to, octet {n}");
                }
            }
        }
    }

    #[test]
    fn lockstep_matches_one_at_a_time() {
        let mut seed = 7;
        for _ in 0..10 {
            let keys: [[u8; 16]; 4] =
                std::array::from_fn(|_| pseudo_random(&mut seed, 16).try_into().unwrap());
            let mut states = Rc4::new_many(&keys);
            let mut out = [[0u8; 600]; 4];
            Rc4::keystream_many(&mut states, &mut out, 0, 100);
            Rc4::keystream_many(&mut states, &mut out, 100, 1);
            // Past the buffer: stops at its end.
            Rc4::keystream_many(&mut states, &mut out, 101, 1000);
            for (n, key) in keys.iter().enumerate() {
                assert_eq!(out[n][..], textbook(key, 600)[..], "lane {n}");
                // The state continues where the buffer ended.
                let mut next = [0u8; 50];
                states[n].keystream(&mut next);
                assert_eq!(next[..], textbook(key, 650)[600..], "lane {n} after");
            }
        }
    }

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", Rc4::new(b"Key").unwrap()),
            "Rc4(<redacted>)"
        );
    }
}
