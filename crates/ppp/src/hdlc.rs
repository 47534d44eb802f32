//! Async HDLC-like framing for PPP (RFC 1662).
//!
//! Implements:
//! - RFC 1662 section 4.1/4.2: flag sequence `0x7e`, control escape `0x7d`
//!   (the escaped octet is XORed with `0x20`), the Async-Control-Character-Map
//!   in both directions, and an extra set of escaped octets for any value
//!   (user-ppp `set escape 0xff`);
//! - RFC 1662 section 3.1 and appendix C.2: the 16-bit FCS, table driven
//!   (slicing-by-8); a frame is good when the FCS over it, FCS field
//!   included, is `0xf0b8`;
//! - RFC 1662 section 3.2 and RFC 1661 section 6.6: Address-and-Control-Field
//!   Compression (the `ff 03` header is optional on receive);
//! - RFC 1661 sections 2 and 6.5: Protocol-Field-Compression (a one-octet
//!   protocol field when its value is below `0x100`) and the rule that a
//!   protocol field's high octet is even and its low octet odd;
//! - RFC 1662 section 4.3: frames shorter than 4 octets, frames with a bad FCS
//!   and aborted frames (`0x7d 0x7e`) are reported and dropped, and the
//!   decoder resynchronises at the next flag. Octets before the first flag
//!   of a stream (an SSH banner, half a frame) are skipped.
//!
//! The encoder never sends what a receiver would misread: it leaves the
//! opening flag out only right after a closing flag, keeps 2-octet protocol
//! fields where one octet would be ambiguous, and sends as they are the
//! extra-escape octets whose escaped form a receiver would drop (see
//! [`Encoder::set_escape`]).
//!
//! - RFC 1570 section 2.1 (FCS-Alternatives): besides the 16-bit FCS, the
//!   Null FCS (no FCS field at all), chosen per direction once LCP agreed on
//!   it ([`FcsMode`]). LCP Configure, Terminate and Code-Reject packets
//!   (codes 1..7) always carry the 16-bit FCS, with the other LCP defaults,
//!   so that renegotiation works whatever was agreed before; the decoder
//!   in Null mode recognises them by their protocol and code.
//!
//! Leaves out: the 32-bit FCS, synchronous and octet-synchronous framing,
//! and the transparency of section 7.2 for 7-bit links.
//!
//! The encoder and the decoder do no I/O and allocate nothing per frame: the
//! encoder appends to the caller's buffer, the decoder reuses one buffer of
//! `max_info` + header + FCS bytes and hands out borrowed [`Frame`]s.

pub use crate::frame::{Frame, FrameError, ADDRESS, CONTROL};
pub use crate::wire::{FcsMode, DEFAULT_ACCM};

use crate::frame::{parse_with_len, Header};

/// RFC 1662 section 4.1: the flag sequence that delimits frames.
pub const FLAG: u8 = 0x7e;
/// RFC 1662 section 4.2: the control escape octet.
pub const ESCAPE: u8 = 0x7d;
/// RFC 1662 section 4.2: an escaped octet is transmitted XORed with this.
const ESCAPE_XOR: u8 = 0x20;
/// RFC 1662 appendix C.2: the FCS register starts at all ones.
pub const FCS_INIT: u16 = 0xffff;
/// RFC 1662 appendix C.2: the FCS over a frame including its own FCS field
/// leaves this value in the register when the frame is intact.
pub const FCS_GOOD: u16 = 0xf0b8;

/// Octets around the information field in the largest frame we accept:
/// address + control + 2-octet protocol + 2-octet FCS.
const FRAME_OVERHEAD: usize = 6;
/// RFC 1662 section 4.3: frames of fewer than 4 octets (with the 16-bit
/// FCS) are invalid.
const MIN_FRAME_LEN: usize = 4;

/// Slicing-by-8 tables for the reflected CRC-16 with polynomial
/// x^16 + x^12 + x^5 + 1 (`0x1021`, `0x8408` bit-reversed), RFC 1662
/// appendix C.2.
/// `FCS_TABLES[0]` is the RFC's `fcstab`; `FCS_TABLES[k][b]` is the effect
/// of octet `b` followed by `k` zero octets, which lets [`fcs16`] fold eight
/// octets per step.
static FCS_TABLES: [[u16; 256]; 8] = build_fcs_tables();

const fn build_fcs_tables() -> [[u16; 256]; 8] {
    let mut tables = [[0u16; 256]; 8];
    let mut b = 0;
    while b < 256 {
        let mut v = b as u16;
        let mut bit = 0;
        while bit < 8 {
            v = if v & 1 != 0 {
                (v >> 1) ^ 0x8408
            } else {
                v >> 1
            };
            bit += 1;
        }
        tables[0][b] = v;
        b += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut b = 0;
        while b < 256 {
            let prev = tables[k - 1][b];
            tables[k][b] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            b += 1;
        }
        k += 1;
    }
    tables
}

/// RFC 1662 appendix C.2 `pppfcs16`: continues the FCS register `fcs` over
/// `data`. Start with [`FCS_INIT`]; to transmit, send `!fcs` low octet
/// first; on receive, the register over the whole frame including its FCS is
/// [`FCS_GOOD`] when the frame is intact.
///
/// Folds eight octets per step (slicing-by-8): this runs over every data
/// packet of the link.
pub fn fcs16(fcs: u16, data: &[u8]) -> u16 {
    let t = &FCS_TABLES;
    let mut fcs = fcs;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let x = fcs ^ u16::from_le_bytes([c[0], c[1]]);
        fcs = t[7][(x & 0xff) as usize]
            ^ t[6][(x >> 8) as usize]
            ^ t[5][c[2] as usize]
            ^ t[4][c[3] as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        fcs = (fcs >> 8) ^ t[0][((fcs ^ b as u16) & 0xff) as usize];
    }
    fcs
}

/// A set of octet values, one bit each.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn insert(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1u64 << (b & 63);
    }

    fn contains(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1u64 << (b & 63)) != 0
    }

    /// The control characters 0x00..=0x1f whose bit is set in `accm`
    /// (RFC 1662 section 7.1: bit 0 is 0x00, bit 31 is 0x1f).
    fn insert_accm(&mut self, accm: u32) {
        self.0[0] |= accm as u64;
    }

    fn special(&self) -> Special {
        Special::new(self)
    }

    fn table(&self) -> [bool; 256] {
        let mut t = [false; 256];
        for (b, slot) in t.iter_mut().enumerate() {
            *slot = self.contains(b as u8);
        }
        t
    }
}

impl std::fmt::Debug for ByteSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries((0..=255u8).filter(|b| self.contains(*b)).map(HexByte))
            .finish()
    }
}

/// Prints an octet as `0x7e` in `Debug` output.
struct HexByte(u8);

impl std::fmt::Debug for HexByte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#04x}", self.0)
    }
}

/// The octets that interrupt a plain run: escaped ones when sending, flag,
/// escape and receive-ACCM control characters when receiving.
///
/// Finding them is the inner loop of the data path (RFC 1662 section 4.2
/// transparency over every octet of every frame); [`Special::scan`] hands
/// out their positions in order and the caller copies the plain runs
/// between them whole. How it searches depends on the set, each way chosen
/// by measurement (benches/hdlc.rs, fastest batch of five alternating runs
/// against the previous code, on a 2-core AMD EPYC guest):
///
/// - two or three members (flag and escape with ACCM 0, what pppd, Linux
///   and two tsunagi gateways negotiate, perhaps one extra escape such as
///   user-ppp's `set escape 0xff`): `memchr2`/`memchr3`, which pick AVX2
///   at run time. The portable block scan below, tried here, was no faster
///   on 65000-octet frames (8.6-9.0 GB/s encoding, both) and slower on
///   1400-octet ones (9.1 against 10.3 GB/s with the Null FCS): with one
///   special octet per 128, the cost is the copy and the bookkeeping per
///   special octet, not the restarted search. The decoder restarts
///   `memchr2` itself ([`Decoder::push`]): a callback per special octet
///   cost it 5-8%;
/// - all control characters plus two or three others (the default ACCM
///   `0xffffffff`, before LCP agrees on another one, and for LCP Configure
///   frames): the block scan, about 2.7 times faster than the table it
///   replaced (1.3 against 0.47 GB/s encoding 65000 octets);
/// - any other set (an ACCM with only some control characters, several
///   extra escapes): a lookup in a 256-entry table per octet.
#[derive(Clone)]
struct Special {
    table: [bool; 256],
    /// How [`Special::scan`] searches the set.
    few: Few,
}

/// The shape of a [`Special`] set, which picks how [`Special::scan`]
/// searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Few {
    /// Searched with `memchr2`.
    Two(u8, u8),
    /// Searched with `memchr3`.
    Three(u8, u8, u8),
    /// All of `0x00..=0x1f` and these two octets (ACCM `0xffffffff`):
    /// [`scan_blocks`].
    ControlsAndTwo(u8, u8),
    /// All of `0x00..=0x1f` and these three octets: [`scan_blocks`].
    ControlsAndThree(u8, u8, u8),
    /// Any other set (or fewer than two members: never, flag and escape are
    /// always in): a table lookup per octet.
    Many,
}

/// Octets per block of [`scan_blocks`]: one bit each in a `u64` mask.
const SCAN_BLOCK: usize = 64;

/// From this length on, the tail after the last whole block is scanned as a
/// padded block rather than octet by octet.
const SCAN_PADDED_TAIL: usize = 16;

/// Multiplying a word whose eight octets are each 0 or 1 by this gathers
/// them into its top octet, octet `i` landing on bit `56 + i`: the partial
/// products `b_i << (8i + 7k + 7)` with `i + k = 7` are the only ones in
/// bits 56..=63, and no two partial products share a bit, so nothing
/// carries. This is the portable form of a SIMD "move mask".
const GATHER_LOW_BITS: u64 = 0x0102_0408_1020_4080;

/// The positions of the octets of `block` for which `is_special` holds, one
/// bit each (bit `i` for `block[i]`).
///
/// Written for LLVM's vectorisers, without `unsafe` or intrinsics (a
/// `std::arch` intrinsic needs an `unsafe` call here even though SSE2 is
/// always on): the first pass is an OR over the 64 comparison results,
/// compiled to `pcmpeqb` (`pminub` + `pcmpeqb` for the control range),
/// `por` and one `pmovmskb`; blocks without any special octet stop there.
/// LLVM does not turn a mask built bit by bit (`m |= (hit as u64) << i`)
/// into `pmovmskb` (checked in the assembly), so the mask is the
/// comparisons again as 0/1 octets, gathered eight at a time with a
/// multiplication.
#[inline(always)]
fn block_mask(block: &[u8; SCAN_BLOCK], is_special: impl Fn(u8) -> bool) -> u64 {
    let mut any = 0u8;
    for &b in block {
        any |= u8::from(is_special(b));
    }
    if any == 0 {
        return 0;
    }
    let hits: [u8; SCAN_BLOCK] = std::array::from_fn(|i| u8::from(is_special(block[i])));
    let mut mask = 0u64;
    for (k, word) in hits.chunks_exact(8).enumerate() {
        let mut octets = [0u8; 8];
        octets.copy_from_slice(word);
        let gathered = u64::from_le_bytes(octets).wrapping_mul(GATHER_LOW_BITS) >> 56;
        mask |= gathered << (8 * k);
    }
    mask
}

/// Calls `visit(i)` for the index `i` of every octet of `data` for which
/// `is_special` holds, in increasing order: whole blocks through
/// [`block_mask`], a tail of [`SCAN_PADDED_TAIL`] octets or more as one
/// zero-padded block, a shorter one (a header, an FCS) octet by octet.
#[inline(always)]
fn scan_blocks(data: &[u8], is_special: impl Fn(u8) -> bool + Copy, mut visit: impl FnMut(usize)) {
    let mut rest = data;
    let mut base = 0;
    while let Some((block, tail)) = rest.split_first_chunk::<SCAN_BLOCK>() {
        let mut mask = block_mask(block, is_special);
        while mask != 0 {
            visit(base + mask.trailing_zeros() as usize);
            // Clear the lowest set bit.
            mask &= mask - 1;
        }
        base += SCAN_BLOCK;
        rest = tail;
    }
    if rest.len() >= SCAN_PADDED_TAIL {
        // One more block, padded; the padding's bits are masked off.
        let mut block = [0u8; SCAN_BLOCK];
        block[..rest.len()].copy_from_slice(rest);
        let mut mask = block_mask(&block, is_special) & ((1u64 << rest.len()) - 1);
        while mask != 0 {
            visit(base + mask.trailing_zeros() as usize);
            mask &= mask - 1;
        }
    } else {
        for (i, &b) in rest.iter().enumerate() {
            if is_special(b) {
                visit(base + i);
            }
        }
    }
}

/// A control character, `0x00..=0x1f` (RFC 1662 section 7.1).
#[inline(always)]
fn is_control(b: u8) -> bool {
    b < 0x20
}

impl std::fmt::Debug for Special {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries((0..=255u8).filter(|b| self.contains(*b)).map(HexByte))
            .finish()
    }
}

impl Special {
    fn new(set: &ByteSet) -> Special {
        let table = set.table();
        let members: Vec<u8> = (0..=255u8).filter(|b| table[usize::from(*b)]).collect();
        let all_controls = (0..0x20).all(|b| table[b]);
        let others: Vec<u8> = members
            .iter()
            .copied()
            .filter(|b| !is_control(*b))
            .collect();
        let few = match (&members[..], all_controls, &others[..]) {
            (&[a, b], _, _) => Few::Two(a, b),
            (&[a, b, c], _, _) => Few::Three(a, b, c),
            (_, true, &[a, b]) => Few::ControlsAndTwo(a, b),
            (_, true, &[a, b, c]) => Few::ControlsAndThree(a, b, c),
            _ => Few::Many,
        };
        Special { table, few }
    }

    fn contains(&self, b: u8) -> bool {
        self.table[usize::from(b)]
    }

    /// Calls `visit(i)` for the index `i` of every special octet in `data`,
    /// in increasing order.
    #[inline]
    fn scan(&self, data: &[u8], visit: impl FnMut(usize)) {
        match self.few {
            Few::Two(a, b) => memchr::memchr2_iter(a, b, data).for_each(visit),
            Few::Three(a, b, c) => memchr::memchr3_iter(a, b, c, data).for_each(visit),
            Few::ControlsAndTwo(a, b) => {
                scan_blocks(data, |x| is_control(x) | (x == a) | (x == b), visit)
            }
            Few::ControlsAndThree(a, b, c) => scan_blocks(
                data,
                |x| is_control(x) | (x == a) | (x == b) | (x == c),
                visit,
            ),
            Few::Many => {
                let mut visit = visit;
                for (i, &b) in data.iter().enumerate() {
                    if self.contains(b) {
                        visit(i);
                    }
                }
            }
        }
    }
}

/// Frames packets for the byte stream (RFC 1662 section 4).
///
/// Holds what the peer asked of us: its ACCM, whether it accepts ACFC and
/// PFC, and the extra octets the configuration says to escape.
#[derive(Clone)]
pub struct Encoder {
    accm: u32,
    extra: ByteSet,
    acfc: bool,
    pfc: bool,
    /// The FCS of ordinary frames (frames with the LCP defaults always
    /// carry the 16-bit FCS).
    fcs: FcsMode,
    /// Octets escaped in ordinary frames.
    escape: Special,
    /// Octets escaped in frames sent with the LCP defaults (full ACCM).
    escape_lcp: Special,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("accm", &format_args!("{:#010x}", self.accm))
            .field("extra", &self.extra)
            .field("acfc", &self.acfc)
            .field("pfc", &self.pfc)
            .field("fcs", &self.fcs)
            .finish()
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder with the RFC 1662 section 7.1 defaults: ACCM `0xffffffff`,
    /// `ff 03` on every frame, 2-octet protocol fields, no extra escapes.
    pub fn new() -> Encoder {
        let mut e = Encoder {
            accm: DEFAULT_ACCM,
            extra: ByteSet::default(),
            acfc: false,
            pfc: false,
            fcs: FcsMode::Fcs16,
            escape: ByteSet::default().special(),
            escape_lcp: ByteSet::default().special(),
        };
        e.rebuild();
        e
    }

    fn rebuild(&mut self) {
        self.escape = escape_table(self.accm, self.extra);
        self.escape_lcp = escape_table(DEFAULT_ACCM, self.extra);
    }

    /// The ACCM the peer asked for in its LCP Configure-Request (the control
    /// characters it wants us to escape), RFC 1662 section 7.1.
    pub fn set_accm(&mut self, accm: u32) {
        self.accm = accm;
        self.rebuild();
    }

    /// The ACCM in use.
    pub fn accm(&self) -> u32 {
        self.accm
    }

    /// Replaces the set of extra octets always escaped (user-ppp
    /// `set escape 0xff ...`), any value 0..=255, in every frame.
    ///
    /// Some octets cannot be escaped and are sent as they are:
    /// - `0x5d` and `0x5e`: escaped they would be sent as `7d 7d` and
    ///   `7d 7e`; the second aborts the frame (RFC 1662 section 4.2) and
    ///   Linux ppp_async cannot receive the first;
    /// - `0x20..=0x3f` while the ACCM in force (the negotiated one, or
    ///   `0xffffffff` for frames sent with the LCP defaults) flags the
    ///   control character they would become: the receiver removes that
    ///   character before undoing the escape.
    pub fn set_escape(&mut self, extra: &[u8]) {
        let mut set = ByteSet::default();
        for &b in extra {
            if b != ESCAPE ^ ESCAPE_XOR && b != FLAG ^ ESCAPE_XOR {
                set.insert(b);
            }
        }
        self.extra = set;
        self.rebuild();
    }

    /// Omit `ff 03` (the peer accepted Address-and-Control-Field-Compression,
    /// RFC 1661 section 6.6).
    pub fn set_acfc(&mut self, on: bool) {
        self.acfc = on;
    }

    /// Send protocols below `0x100` as one octet (the peer accepted
    /// Protocol-Field-Compression, RFC 1661 section 6.5).
    pub fn set_pfc(&mut self, on: bool) {
        self.pfc = on;
    }

    /// The FCS the peer agreed to receive (its FCS-Alternatives option,
    /// RFC 1570 section 2.1); frames with the LCP defaults keep the 16-bit FCS.
    pub fn set_fcs(&mut self, mode: FcsMode) {
        self.fcs = mode;
    }

    /// The FCS of ordinary frames.
    pub fn fcs(&self) -> FcsMode {
        self.fcs
    }

    /// Appends one complete frame (flag, `ff 03` unless ACFC, protocol,
    /// info, FCS, flag) to `out`, escaped, compressing the header as
    /// [`Encoder::set_acfc`] and [`Encoder::set_pfc`] say.
    ///
    /// `lcp_defaults` = true forces ACCM `0xffffffff`, `ff 03` and a 2-octet
    /// protocol: LCP Configure/Terminate/Code-Reject packets (codes 1..7)
    /// always go with the defaults (RFC 1662 section 7.1, RFC 1661 sections
    /// 6.5 and 6.6). The extra escape set still applies. Those LCP packets
    /// always carry the 16-bit FCS, whatever [`Encoder::set_fcs`] says
    /// (RFC 1570 section 2.1); every other frame uses the FCS set there.
    pub fn encode(&self, protocol: u16, info: &[u8], lcp_defaults: bool, out: &mut Vec<u8>) {
        let header = if lcp_defaults {
            Header::uncompressed(protocol)
        } else {
            Header::new(protocol, info.is_empty(), self.acfc, self.pfc)
        };
        // RFC 1570 s2.1: LCP codes 1..7 keep the 16-bit FCS whatever was
        // agreed, and a receiver in Null FCS mode knows them by protocol and
        // code (see `parse_frame_null_fcs`); the choice depends on nothing
        // else, so that the receiver can always tell.
        let fcs = if is_lcp_configure(protocol, info) {
            FcsMode::Fcs16
        } else {
            self.fcs
        };
        self.write(header.as_bytes(), info, lcp_defaults, fcs, out);
    }

    /// Appends one PPP frame whose header the engine built
    /// ([`crate::frame::Header`]: `ff 03` unless ACFC, the protocol field)
    /// and whose information field is `info`, escaped, with the FCS.
    /// `lcp_defaults` as for [`Encoder::encode`]: the engine says so for
    /// LCP codes 1..7, which then go with ACCM `0xffffffff` and the 16-bit
    /// FCS; the header is taken as given.
    pub fn encode_frame(&self, header: &[u8], info: &[u8], lcp_defaults: bool, out: &mut Vec<u8>) {
        let fcs = if lcp_defaults {
            FcsMode::Fcs16
        } else {
            self.fcs
        };
        self.write(header, info, lcp_defaults, fcs, out);
    }

    /// Flag (unless `out` ends with one), escaped header and information
    /// field, FCS, flag.
    #[inline]
    fn write(
        &self,
        header: &[u8],
        info: &[u8],
        lcp_defaults: bool,
        fcs_mode: FcsMode,
        out: &mut Vec<u8>,
    ) {
        let escape = if lcp_defaults {
            &self.escape_lcp
        } else {
            &self.escape
        };
        // Most octets go out as they are; reserve for the plain case and let
        // the vector grow if escapes are many.
        out.reserve(header.len() + info.len() + info.len() / 16 + 8);
        if out.last() != Some(&FLAG) {
            out.push(FLAG);
        }
        escape_into(escape, header, out);
        escape_into(escape, info, out);
        if fcs_mode == FcsMode::Fcs16 {
            let fcs = !fcs16(fcs16(FCS_INIT, header), info);
            escape_into(escape, &fcs.to_le_bytes(), out);
        }
        out.push(FLAG);
    }
}

/// The octets escaped under `accm` with the extra set `extra`.
fn escape_table(accm: u32, extra: ByteSet) -> Special {
    let mut set = ByteSet::default();
    // RFC 1662 section 4.2: flag and control escape are always escaped.
    set.insert(FLAG);
    set.insert(ESCAPE);
    set.insert_accm(accm);
    for b in 0..=255u8 {
        // An escaped 0x20..=0x3f goes out as a control character; if that
        // character is in the ACCM the receiver removes it before undoing
        // the escape (RFC 1662 section 4.2, and Linux ppp_async does so),
        // so such an octet can only be sent as it is.
        let escaped = b ^ ESCAPE_XOR;
        let receiver_drops = escaped < 0x20 && accm & (1 << escaped) != 0;
        if extra.contains(b) && !receiver_drops {
            set.insert(b);
        }
    }
    set.special()
}

/// Index of the first flag in `data` (a vector search: it runs over every
/// octet the peer sends).
pub fn find_flag(data: &[u8]) -> Option<usize> {
    memchr::memchr(FLAG, data)
}

/// Appends `data` to `out`, escaping the octets marked in `escape` (RFC 1662
/// section 4.2: control escape, then the octet XORed with `0x20`); each run
/// of plain octets between them is copied in one go.
fn escape_into(escape: &Special, data: &[u8], out: &mut Vec<u8>) {
    let mut run_start = 0;
    escape.scan(data, |i| {
        // `scan` hands out increasing indexes below `data.len()`, so
        // `run_start <= i < data.len()`.
        out.extend_from_slice(&data[run_start..i]);
        out.extend_from_slice(&[ESCAPE, data[i] ^ ESCAPE_XOR]);
        run_start = i + 1;
    });
    out.extend_from_slice(&data[run_start..]);
}

/// Counters of what the decoder saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Frames delivered with a good FCS.
    pub frames: u64,
    /// Frames reported as a [`FrameError`].
    pub errors: u64,
    /// Of those, frames with a bad FCS.
    pub bad_fcs: u64,
    /// Of those, aborted frames.
    pub aborted: u64,
    /// Control characters dropped because their bit is set in the receive
    /// ACCM (inserted by equipment on the way, RFC 1662 section 4.2).
    pub dropped_control_chars: u64,
    /// Octets discarded before the first flag of the stream.
    pub skipped_before_first_flag: u64,
}

/// Splits a byte stream into frames (RFC 1662 section 4).
///
/// Octets before the first flag of the stream are skipped (an SSH banner or a
/// partial frame); back-to-back flags are ignored. One buffer of
/// `max_info` + 6 octets is reused for every frame; a longer frame is
/// counted, not buffered, and reported at its closing flag.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_info: usize,
    rx_accm: u32,
    /// The FCS we agreed to receive on ordinary frames.
    rx_fcs: FcsMode,
    /// Octets that need attention: flag, escape and the control characters
    /// of the receive ACCM.
    special: Special,
    buf: Vec<u8>,
    /// The previous octet was a control escape.
    escaped: bool,
    /// No flag seen yet on this stream.
    hunting: bool,
    /// The current frame outgrew the buffer; its octets are only counted.
    overflow: Option<usize>,
    stats: DecoderStats,
}

impl Decoder {
    /// A decoder that accepts information fields of up to `max_info` octets
    /// (our MRU), with the default receive ACCM `0xffffffff`.
    pub fn new(max_info: usize) -> Decoder {
        // An MRU is 16 bits (RFC 1661 section 6.1); a larger limit still
        // works, the buffer then grows on demand instead of up front.
        let capacity = max_info.min(usize::from(u16::MAX)) + FRAME_OVERHEAD;
        let mut d = Decoder {
            max_info,
            rx_accm: DEFAULT_ACCM,
            rx_fcs: FcsMode::Fcs16,
            special: ByteSet::default().special(),
            buf: Vec::with_capacity(capacity),
            escaped: false,
            hunting: true,
            overflow: None,
            stats: DecoderStats::default(),
        };
        d.rebuild();
        d
    }

    fn rebuild(&mut self) {
        let mut set = ByteSet::default();
        set.insert(FLAG);
        set.insert(ESCAPE);
        set.insert_accm(self.rx_accm);
        self.special = set.special();
    }

    /// The ACCM we asked the peer for: control characters with their bit set
    /// arrive escaped, so raw ones are noise and are dropped (RFC 1662
    /// section 4.2). Set it to our agreed ACCM once LCP is opened.
    pub fn set_rx_accm(&mut self, accm: u32) {
        self.rx_accm = accm;
        self.rebuild();
    }

    /// The receive ACCM in use.
    pub fn rx_accm(&self) -> u32 {
        self.rx_accm
    }

    /// The FCS the peer agreed to send us (our FCS-Alternatives option, RFC
    /// 1570 section 2.1). In [`FcsMode::Null`], frames holding LCP codes
    /// 1..7 are still checked against the 16-bit FCS, which their sender
    /// always adds. Set it once LCP is opened, between frames.
    pub fn set_rx_fcs(&mut self, mode: FcsMode) {
        self.rx_fcs = mode;
    }

    /// The receive FCS in use.
    pub fn rx_fcs(&self) -> FcsMode {
        self.rx_fcs
    }

    /// The limit on the information field.
    pub fn max_info(&self) -> usize {
        self.max_info
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecoderStats {
        &self.stats
    }

    fn buffer_limit(&self) -> usize {
        self.max_info.saturating_add(FRAME_OVERHEAD)
    }

    /// Appends a run of plain octets to the current frame, undoing a pending
    /// escape on its first octet. `run` is not empty.
    #[inline]
    fn append(&mut self, run: &[u8]) {
        // The data path: the frame fits. The rest is out of line.
        if self.overflow.is_none() && self.buf.len() + run.len() <= self.buffer_limit() {
            let start = self.buf.len();
            self.buf.extend_from_slice(run);
            if self.escaped {
                if let Some(first) = self.buf.get_mut(start) {
                    *first ^= ESCAPE_XOR;
                }
                self.escaped = false;
            }
        } else {
            self.count_overflow(run);
        }
    }

    /// [`Decoder::append`] for a frame that outgrew the buffer: its octets
    /// are only counted, up to its closing flag.
    #[cold]
    #[inline(never)]
    fn count_overflow(&mut self, run: &[u8]) {
        self.escaped = false;
        match self.overflow.as_mut() {
            Some(len) => *len = len.saturating_add(run.len()),
            None => {
                self.overflow = Some(self.buf.len() + run.len());
                self.buf.clear();
            }
        }
    }

    /// Feeds stream octets; calls `on_frame` for every complete frame or
    /// framing error, in stream order. A frame may span any number of calls.
    pub fn push(&mut self, bytes: &[u8], on_frame: &mut dyn FnMut(Result<Frame<'_>, FrameError>)) {
        let mut rest = bytes;
        if self.hunting {
            match find_flag(rest) {
                Some(i) => {
                    self.stats.skipped_before_first_flag += i as u64;
                    self.hunting = false;
                    rest = &rest[i + 1..];
                }
                None => {
                    self.stats.skipped_before_first_flag += rest.len() as u64;
                    return;
                }
            }
        }
        match self.special.few {
            Few::Two(a, b) => self.push_searching(rest, |d| memchr::memchr2(a, b, d), on_frame),
            Few::Three(a, b, c) => {
                self.push_searching(rest, |d| memchr::memchr3(a, b, c, d), on_frame)
            }
            _ => self.push_scanning(rest, on_frame),
        }
    }

    /// The rest of [`Decoder::push`] for a set that `find` searches: each
    /// search starts after the previous special octet.
    #[inline(always)]
    fn push_searching(
        &mut self,
        bytes: &[u8],
        find: impl Fn(&[u8]) -> Option<usize>,
        on_frame: &mut dyn FnMut(Result<Frame<'_>, FrameError>),
    ) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let plain = find(rest).unwrap_or(rest.len());
            if plain > 0 {
                self.append(&rest[..plain]);
            }
            let Some(&b) = rest.get(plain) else {
                break;
            };
            rest = &rest[plain + 1..];
            self.special_octet_inline(b, on_frame);
        }
    }

    /// The rest of [`Decoder::push`] through [`Special::scan`].
    fn push_scanning(
        &mut self,
        rest: &[u8],
        on_frame: &mut dyn FnMut(Result<Frame<'_>, FrameError>),
    ) {
        // The set cannot change during `push` (the setters need `&mut
        // self`); a copy lets the scan's callback borrow `self` mutably.
        let special = self.special.clone();
        let mut run_start = 0;
        special.scan(rest, |i| {
            // `scan` hands out increasing indexes below `rest.len()`, so
            // `run_start <= i < rest.len()`.
            if i > run_start {
                self.append(&rest[run_start..i]);
            }
            run_start = i + 1;
            self.special_octet_inline(rest[i], on_frame);
        });
        if run_start < rest.len() {
            self.append(&rest[run_start..]);
        }
    }

    /// [`Decoder::special_octet`] with the data path's case, an escape
    /// with the next octet to come, inline.
    #[inline(always)]
    fn special_octet_inline(
        &mut self,
        b: u8,
        on_frame: &mut dyn FnMut(Result<Frame<'_>, FrameError>),
    ) {
        match b {
            ESCAPE if !self.escaped => self.escaped = true,
            b => self.special_octet(b, on_frame),
        }
    }

    /// Acts on one octet of the receive special set (RFC 1662 section 4.2).
    #[inline(never)]
    fn special_octet(&mut self, b: u8, on_frame: &mut dyn FnMut(Result<Frame<'_>, FrameError>)) {
        match b {
            FLAG => self.end_frame(on_frame),
            ESCAPE if self.escaped => {
                // RFC 1662 section 4.2: the octet after a control escape
                // is XORed with 0x20, whatever it is (except a flag).
                self.append(&[ESCAPE]);
            }
            ESCAPE => self.escaped = true,
            _ => {
                // A control character flagged in the receive ACCM: the
                // peer would have escaped it, so equipment inserted it.
                self.stats.dropped_control_chars += 1;
            }
        }
    }

    fn end_frame(&mut self, on_frame: &mut dyn FnMut(Result<Frame<'_>, FrameError>)) {
        let escaped = std::mem::replace(&mut self.escaped, false);
        let overflow = self.overflow.take();
        let result = if escaped {
            self.stats.aborted += 1;
            Err(FrameError::Aborted {
                len: overflow.unwrap_or(self.buf.len()),
            })
        } else if let Some(len) = overflow {
            Err(FrameError::TooLong {
                len,
                max_info: self.max_info,
            })
        } else if self.buf.is_empty() {
            // RFC 1662 section 4.1: back-to-back flags, an empty frame.
            return;
        } else {
            match self.rx_fcs {
                FcsMode::Fcs16 => parse_frame(&self.buf, self.max_info),
                FcsMode::Null => parse_frame_null_fcs(&self.buf, self.max_info),
            }
        };
        match &result {
            Ok(_) => self.stats.frames += 1,
            Err(e) => {
                self.stats.errors += 1;
                if matches!(e, FrameError::BadFcs { .. }) {
                    self.stats.bad_fcs += 1;
                }
            }
        }
        on_frame(result);
        self.buf.clear();
    }
}

/// Checks and takes apart one unescaped frame (everything between flags).
fn parse_frame(frame: &[u8], max_info: usize) -> Result<Frame<'_>, FrameError> {
    let len = frame.len();
    if len < MIN_FRAME_LEN {
        return Err(FrameError::TooShort { len });
    }
    if fcs16(FCS_INIT, frame) != FCS_GOOD {
        let (body, fcs_field) = frame.split_at(len - 2);
        return Err(FrameError::BadFcs {
            len,
            received: u16::from_le_bytes([fcs_field[0], fcs_field[1]]),
            computed: !fcs16(FCS_INIT, body),
        });
    }
    parse_with_len(&frame[..len - 2], len, max_info)
}

/// RFC 1662 section 3.1 and RFC 1661 section 13.1: the LCP protocol number.
const PROTOCOL_LCP: u16 = 0xc021;

/// An LCP Configure, Terminate or Code-Reject packet (codes 1..7), which
/// always travels with the 16-bit FCS (RFC 1570 s2.1).
fn is_lcp_configure(protocol: u16, info: &[u8]) -> bool {
    protocol == PROTOCOL_LCP && info.first().is_some_and(|code| (1..=7).contains(code))
}

/// Takes apart a frame received under the Null FCS (RFC 1570 section
/// 2.1.2). A frame that holds an LCP Configure, Terminate or Code-Reject
/// packet (codes 1..7) was sent with the LCP defaults, 16-bit FCS included,
/// and is checked as such: a renegotiation starts in the default framing.
fn parse_frame_null_fcs(frame: &[u8], max_info: usize) -> Result<Frame<'_>, FrameError> {
    // Room for an FCS read as information until the code is known.
    let parsed = parse_with_len(frame, frame.len(), max_info.saturating_add(2))?;
    if is_lcp_configure(parsed.protocol, parsed.info) {
        // The last two octets are the FCS, not information.
        return parse_frame(frame, max_info);
    }
    if parsed.info.len() > max_info {
        return Err(FrameError::TooLong {
            len: frame.len(),
            max_info,
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time CRC straight from the polynomial, to check the tables.
    fn fcs16_bitwise(mut fcs: u16, data: &[u8]) -> u16 {
        for &b in data {
            fcs ^= u16::from(b);
            for _ in 0..8 {
                fcs = if fcs & 1 != 0 {
                    (fcs >> 1) ^ 0x8408
                } else {
                    fcs >> 1
                };
            }
        }
        fcs
    }

    #[test]
    fn fcs_table_matches_rfc1662_fcstab_start_and_end() {
        // RFC 1662 appendix C.2 fcstab, first and last entries.
        assert_eq!(&FCS_TABLES[0][..4], &[0x0000, 0x1189, 0x2312, 0x329b]);
        assert_eq!(&FCS_TABLES[0][252..], &[0x3de3, 0x2c6a, 0x1ef1, 0x0f78]);
    }

    #[test]
    fn fcs_check_value_123456789() {
        // CRC-16/X.25 (the PPP FCS) check value.
        assert_eq!(!fcs16(FCS_INIT, b"123456789"), 0x906e);
        assert_eq!(!fcs16_bitwise(FCS_INIT, b"123456789"), 0x906e);
    }

    #[test]
    fn fcs_slicing_matches_bitwise_for_all_lengths() {
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                fcs16(FCS_INIT, &data[..len]),
                fcs16_bitwise(FCS_INIT, &data[..len]),
                "len {len}"
            );
        }
    }

    #[test]
    fn good_fcs_over_frame_with_its_fcs() {
        let body = [0xff, 0x03, 0xc0, 0x21, 0x01, 0x01, 0x00, 0x04];
        let fcs = !fcs16(FCS_INIT, &body);
        let mut frame = body.to_vec();
        frame.extend_from_slice(&fcs.to_le_bytes());
        assert_eq!(fcs16(FCS_INIT, &frame), FCS_GOOD);
    }

    #[test]
    fn decodes_pppd_first_lcp_confreq() {
        // 01-defaults, A->B chunk 1: LCP ConfReq with every control
        // character escaped.
        let stream = [
            0x7e, 0xff, 0x7d, 0x23, 0xc0, 0x21, 0x7d, 0x21, 0x7d, 0x21, 0x7d, 0x20, 0x7d, 0x34,
            0x7d, 0x22, 0x7d, 0x26, 0x7d, 0x20, 0x7d, 0x20, 0x7d, 0x20, 0x7d, 0x20, 0x7d, 0x25,
            0x7d, 0x26, 0xe5, 0xf3, 0xce, 0xdb, 0x7d, 0x27, 0x7d, 0x22, 0x7d, 0x28, 0x7d, 0x22,
            0x98, 0x27, 0x7e,
        ];
        let mut d = Decoder::new(1500);
        let mut seen = Vec::new();
        d.push(&stream, &mut |f| {
            let f = f.expect("good frame");
            seen.push((f.protocol, f.info.to_vec()));
        });
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, 0xc021);
        assert_eq!(&seen[0].1[..4], &[0x01, 0x01, 0x00, 0x14]);
        let mut out = Vec::new();
        Encoder::new().encode(0xc021, &seen[0].1, true, &mut out);
        assert_eq!(out, stream);
    }

    proptest::proptest! {
        #[test]
        fn special_scan_matches_a_plain_search(
            data in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<u8>(),
                    proptest::prelude::Just(FLAG),
                    proptest::prelude::Just(ESCAPE),
                    0u8..0x20,
                ],
                0..300,
            ),
            accm: u32,
            accm_kind in 0u8..3,
            extra in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3),
        ) {
            // ACCM 0 with 0..2 extras takes the two- and three-member
            // paths, all ones the controls-and-others paths, any other
            // ACCM the table.
            let accm = match accm_kind {
                0 => 0,
                1 => u32::MAX,
                _ => accm,
            };
            let mut set = ByteSet::default();
            set.insert(FLAG);
            set.insert(ESCAPE);
            set.insert_accm(accm);
            let plain_only = set.special();
            for &b in &extra {
                set.insert(b);
            }
            for special in [plain_only, set.special()] {
                let expected: Vec<usize> = (0..data.len())
                    .filter(|&i| special.contains(data[i]))
                    .collect();
                let mut found = Vec::new();
                special.scan(&data, |i| found.push(i));
                proptest::prop_assert_eq!(found, expected, "{:?}", special.few);
            }
        }
    }

    #[test]
    fn special_sets_take_the_block_paths() {
        let shape = |accm: u32, extra: &[u8]| {
            let mut set = ByteSet::default();
            set.insert(FLAG);
            set.insert(ESCAPE);
            set.insert_accm(accm);
            for &b in extra {
                set.insert(b);
            }
            set.special().few
        };
        assert_eq!(shape(0, &[]), Few::Two(ESCAPE, FLAG));
        assert_eq!(shape(0, &[0xff]), Few::Three(ESCAPE, FLAG, 0xff));
        assert_eq!(shape(0, &[0x01]), Few::Three(0x01, ESCAPE, FLAG));
        assert_eq!(shape(u32::MAX, &[]), Few::ControlsAndTwo(ESCAPE, FLAG));
        assert_eq!(
            shape(u32::MAX, &[0xff, 0x05]),
            Few::ControlsAndThree(ESCAPE, FLAG, 0xff)
        );
        assert_eq!(shape(0x000a_0000, &[]), Few::Many);
        assert_eq!(shape(u32::MAX, &[0x80, 0xff]), Few::Many);
    }

    #[test]
    fn gather_low_bits_packs_every_pattern() {
        // Every 8-octet 0/1 pattern packs to the byte with the same bits.
        for bits in 0..=255u8 {
            let octets: [u8; 8] = std::array::from_fn(|i| (bits >> i) & 1);
            let gathered = u64::from_le_bytes(octets).wrapping_mul(GATHER_LOW_BITS) >> 56;
            assert_eq!(gathered, u64::from(bits));
        }
    }

    #[test]
    fn huge_limit_does_not_allocate_up_front() {
        let mut d = Decoder::new(usize::MAX);
        let mut frame = Vec::new();
        Encoder::new().encode(0x0021, &[0x45; 100], false, &mut frame);
        let mut n = 0;
        d.push(&frame, &mut |r| {
            assert_eq!(r.expect("good frame").info.len(), 100);
            n += 1;
        });
        assert_eq!(n, 1);
    }
}
