//! CCP (RFC 1962) with Deflate (RFC 1979) and MPPE (RFC 3078, keys from
//! RFC 3079), and their data paths.
//!
//! Each side's Configure-Request names what it wants to *receive*
//! (decompress/decrypt); what we Ack of the peer's request is what we
//! send with. One algorithm per direction.
//!
//! Deflate: option 26 (and the old 24), window 9..15 (pppd refuses 8 for
//! a zlib bug; we do too). We compress with a 32 KiB window only
//! (miniz_oxide has no smaller one), so a peer asking for a smaller
//! window has its Deflate option rejected. Per packet: 2-octet sequence
//! number, raw deflate sync-flushed with the trailing `00 00 ff ff`
//! removed; a packet that does not get smaller goes out uncompressed and
//! both histories still take it (pppd's behaviour, vector 07).
//!
//! MPPE: option 18, 40- or 128-bit (56-bit is neither offered nor
//! accepted), stateless (H bit) or stateful (only when configured).
//! Stateless: a new key per packet, late packets (coherency count behind
//! ours) are dropped, never rekeyed backwards. Stateful: the key changes on every "flag"
//! packet (count low octet 0xff); after loss we send a CCP Reset-Request
//! and drop until a packet with the flushed bit (A).
//!
//! Leaves out: BSD-Compress, Predictor, MPPC (the C bit is Nak'd away).

use std::fmt;

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};
use tsunagi_crypto::mppe::{KeyStrength, SessionKey, StartKeys, StatelessKey};

use crate::fsm::{Negotiator, OptionVerdict};
use crate::wire::{emit_option, Protocol, RawOption, WireError};

/// CCP option types (IANA "PPP Compression Control Protocol").
pub mod kind {
    /// Microsoft PPC/MPPE (RFC 2118, RFC 3078).
    pub const MPPE: u8 = 18;
    /// BSD-Compress (RFC 1977).
    pub const BSD: u8 = 21;
    /// Deflate before RFC 1979 got its number (pppd "deflate(old#)").
    pub const DEFLATE_OLD: u8 = 24;
    /// Deflate (RFC 1979).
    pub const DEFLATE: u8 = 26;
}

/// CCP codes beyond RFC 1661's (RFC 1962 s2).
pub mod code {
    /// Reset-Request.
    pub const RESET_REQUEST: u8 = 14;
    /// Reset-Ack.
    pub const RESET_ACK: u8 = 15;
}

/// MPPE option bits (RFC 3078 s2.1).
pub mod mppe_bits {
    /// H: stateless mode.
    pub const H: u32 = 0x0100_0000;
    /// M: 56-bit.
    pub const M: u32 = 0x80;
    /// S: 128-bit.
    pub const S: u32 = 0x40;
    /// L: 40-bit.
    pub const L: u32 = 0x20;
    /// D: obsolete.
    pub const D: u32 = 0x10;
    /// C: MPPC compression (RFC 2118).
    pub const C: u32 = 0x01;
}

/// Deflate settings (pppd `deflate N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// The window (log2) we ask the peer to compress with, 9..=15.
    pub window: u8,
}

impl Default for DeflateConfig {
    /// Window 15, as pppd.
    fn default() -> Self {
        DeflateConfig { window: 15 }
    }
}

/// MPPE settings (pppd `require-mppe`, `require-mppe-40/128`,
/// `nomppe-stateful`). Weak: only when the config names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MppeConfig {
    /// Accept 40-bit keys.
    pub bits40: bool,
    /// Accept 128-bit keys (preferred).
    pub bits128: bool,
    /// Allow stateful mode and ask for it (pppd `mppe-stateful`);
    /// otherwise stateless only (H bit).
    pub stateful: bool,
    /// The link goes down when MPPE cannot be negotiated, and no IP flows
    /// before it is up (pppd `require-mppe`).
    pub required: bool,
}

impl Default for MppeConfig {
    /// 128-bit, stateless only, required.
    fn default() -> Self {
        MppeConfig {
            bits40: false,
            bits128: true,
            stateful: false,
            required: true,
        }
    }
}

/// CCP settings. Default: no CCP (a peer's CCP gets Protocol-Reject, as
/// before).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CcpConfig {
    /// Deflate.
    pub deflate: Option<DeflateConfig>,
    /// MPPE (only after MS-CHAPv2).
    pub mppe: Option<MppeConfig>,
}

impl CcpConfig {
    /// Whether CCP runs at all.
    pub fn enabled(&self) -> bool {
        self.deflate.is_some() || self.mppe.is_some()
    }

    /// Weak algorithms this config enables, for the start-up warning.
    pub fn weak_algorithms(&self) -> Vec<&'static str> {
        match &self.mppe {
            Some(m) if m.bits40 => vec!["MPPE", "MPPE 40-bit"],
            Some(_) => vec!["MPPE"],
            None => Vec::new(),
        }
    }
}

/// What one direction uses after CCP opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CcpMethod {
    /// Deflate with this window.
    Deflate {
        /// log2 window.
        window: u8,
    },
    /// MPPE.
    Mppe {
        /// Key strength.
        strength: KeyStrength,
        /// Stateless (H).
        stateless: bool,
    },
}

impl fmt::Display for CcpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CcpMethod::Deflate { window } => write!(f, "DEFLATE[4] win {window}"),
            CcpMethod::Mppe {
                strength,
                stateless,
            } => write!(
                f,
                "MPPE {}-bit {}",
                strength.bits(),
                if *stateless { "stateless" } else { "stateful" }
            ),
        }
    }
}

/// RFC 1979 s2.1 option data: window-8 in the high nibble, method 8.
fn deflate_option(window: u8) -> [u8; 2] {
    [((window - 8) << 4) | 8, 0]
}

/// Decodes a Deflate option's window (RFC 1979 s2.1): method 8, check 0.
fn parse_deflate(option: &RawOption<'_>) -> Option<u8> {
    match option.data {
        [w, 0] if w & 0x0f == 8 => Some((w >> 4) + 8),
        _ => None,
    }
}

fn parse_mppe(option: &RawOption<'_>) -> Option<u32> {
    <[u8; 4]>::try_from(option.data)
        .ok()
        .map(u32::from_be_bytes)
}

/// pppd's text of an MPPE option ("mppe +H -M +S -L -D -C").
pub fn describe_mppe(bits: u32) -> String {
    let flag = |b: u32, c: char| format!("{}{c}", if bits & b != 0 { '+' } else { '-' });
    format!(
        "mppe {} {} {} {} {} {}",
        flag(mppe_bits::H, 'H'),
        flag(mppe_bits::M, 'M'),
        flag(mppe_bits::S, 'S'),
        flag(mppe_bits::L, 'L'),
        flag(mppe_bits::D, 'D'),
        flag(mppe_bits::C, 'C')
    )
}

/// The CCP half of the automaton.
#[derive(Debug)]
pub struct CcpNegotiator {
    config: CcpConfig,
    /// MPPE is possible: MS-CHAPv2 gave keys.
    mppe_keys: bool,
    want_deflate: Option<u8>,
    want_mppe: Option<u32>,
    /// What the peer acked of ours: how it sends to us.
    pub rx: Option<CcpMethod>,
    /// What we acked of the peer's: how we send.
    pub tx: Option<CcpMethod>,
}

impl CcpNegotiator {
    /// From our configuration.
    pub fn new(config: CcpConfig) -> Self {
        let mut n = CcpNegotiator {
            config,
            mppe_keys: false,
            want_deflate: None,
            want_mppe: None,
            rx: None,
            tx: None,
        };
        n.reset();
        n
    }

    /// MS-CHAPv2 succeeded: MPPE may be negotiated (call before CCP opens).
    pub fn set_mppe_available(&mut self, available: bool) {
        self.mppe_keys = available;
        self.reset();
    }

    fn mppe_active(&self) -> Option<&MppeConfig> {
        self.config.mppe.as_ref().filter(|_| self.mppe_keys)
    }

    /// The MPPE bits we would accept from `offered`: one strength, H when
    /// we can; `None` when nothing fits.
    fn mppe_choice(&self, offered: u32) -> Option<u32> {
        let m = self.mppe_active()?;
        let strength = if m.bits128 && offered & mppe_bits::S != 0 {
            mppe_bits::S
        } else if m.bits40 && offered & mppe_bits::L != 0 {
            mppe_bits::L
        } else {
            return None;
        };
        // The peer's wish for the H bit stands if we allow it.
        let h = if offered & mppe_bits::H != 0 || !m.stateful {
            mppe_bits::H
        } else {
            0
        };
        Some(strength | h)
    }

    fn our_mppe_bits(&self) -> Option<u32> {
        let m = self.mppe_active()?;
        // pppd `mppe-stateful`: ask for stateful mode when allowed.
        let mut bits = if m.stateful { 0 } else { mppe_bits::H };
        if m.bits128 {
            bits |= mppe_bits::S;
        }
        if m.bits40 {
            bits |= mppe_bits::L;
        }
        (bits & (mppe_bits::S | mppe_bits::L) != 0).then_some(bits)
    }
}

fn mppe_method(bits: u32) -> Option<CcpMethod> {
    let strength = if bits & mppe_bits::S != 0 {
        KeyStrength::Bits128
    } else if bits & mppe_bits::M != 0 {
        KeyStrength::Bits56
    } else if bits & mppe_bits::L != 0 {
        KeyStrength::Bits40
    } else {
        return None;
    };
    Some(CcpMethod::Mppe {
        strength,
        stateless: bits & mppe_bits::H != 0,
    })
}

impl Negotiator for CcpNegotiator {
    const PROTOCOL: Protocol = Protocol::Ccp;
    const NAME: &'static str = "CCP";

    fn reset(&mut self) {
        self.want_mppe = self.our_mppe_bits();
        // With MPPE, no compression offers (pppd does the same).
        self.want_deflate = if self.want_mppe.is_some() {
            None
        } else {
            self.config.deflate.as_ref().map(|d| d.window.clamp(9, 15))
        };
        self.rx = None;
        // `tx` follows the peer's request, reset by `begin_request` only
        // (see the LCP negotiator's `reset`).
    }

    fn build_request(&mut self, out: &mut Vec<u8>) {
        if let Some(bits) = self.want_mppe {
            emit_option(out, kind::MPPE, &bits.to_be_bytes());
        }
        if let Some(w) = self.want_deflate {
            emit_option(out, kind::DEFLATE, &deflate_option(w));
        }
    }

    fn begin_request(&mut self) {
        self.tx = None;
    }

    fn check_option(
        &mut self,
        option: &RawOption<'_>,
        nak: &mut Vec<u8>,
    ) -> Result<OptionVerdict, WireError> {
        Ok(match option.kind {
            kind::MPPE => {
                let Some(offered) = parse_mppe(option) else {
                    return Ok(OptionVerdict::Reject);
                };
                match self.mppe_choice(offered) {
                    None => OptionVerdict::Reject,
                    Some(choice) if choice == offered && self.tx.is_none() => {
                        self.tx = mppe_method(choice);
                        OptionVerdict::Ack
                    }
                    Some(choice) => {
                        emit_option(nak, kind::MPPE, &choice.to_be_bytes());
                        OptionVerdict::Nak
                    }
                }
            }
            kind::DEFLATE | kind::DEFLATE_OLD => {
                let window = parse_deflate(option);
                // We compress with a 32 KiB window only; with MPPE no
                // compression.
                if self.config.deflate.is_none() || self.mppe_active().is_some() {
                    OptionVerdict::Reject
                } else {
                    match window {
                        Some(15) => {
                            if self.tx.is_none() {
                                self.tx = Some(CcpMethod::Deflate { window: 15 });
                            }
                            OptionVerdict::Ack
                        }
                        _ => OptionVerdict::Reject,
                    }
                }
            }
            _ => OptionVerdict::Reject,
        })
    }

    fn handle_ack(&mut self) {
        self.rx = match (self.want_mppe, self.want_deflate) {
            (Some(bits), _) => mppe_method(bits),
            (None, Some(w)) => Some(CcpMethod::Deflate { window: w }),
            _ => None,
        };
    }

    fn handle_nak(&mut self, option: &RawOption<'_>) -> Result<(), WireError> {
        match option.kind {
            kind::MPPE if self.want_mppe.is_some() => {
                let offered = parse_mppe(option).unwrap_or(0);
                self.want_mppe = self.mppe_choice(offered).or(self.want_mppe);
                // A Nak that takes away all we can do: keep asking with a
                // single strength so the peer can decide.
                if let Some(bits) = self.want_mppe {
                    if bits & mppe_bits::S != 0 && bits & mppe_bits::L != 0 {
                        self.want_mppe = Some(bits & !mppe_bits::L);
                    }
                }
            }
            kind::DEFLATE | kind::DEFLATE_OLD if self.want_deflate.is_some() => {
                // RFC 1979 s2.1: a smaller window may be suggested.
                if let Some(w) = parse_deflate(option) {
                    if (9..=15).contains(&w) {
                        self.want_deflate = Some(w.min(self.want_deflate.unwrap_or(15)));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_reject(&mut self, option: &RawOption<'_>) -> Result<(), WireError> {
        match option.kind {
            kind::MPPE => self.want_mppe = None,
            kind::DEFLATE => self.want_deflate = None,
            _ => {}
        }
        Ok(())
    }

    fn validate_option(option: &RawOption<'_>) -> Result<(), WireError> {
        let bad = |name, expected| WireError::OptionBadLength {
            protocol: "CCP",
            kind: option.kind,
            name,
            length: option.data.len() as u8 + 2,
            expected,
        };
        match option.kind {
            kind::MPPE if option.data.len() != 4 => Err(bad("mppe", "6")),
            kind::DEFLATE | kind::DEFLATE_OLD if option.data.len() != 2 => Err(bad("deflate", "4")),
            _ => Ok(()),
        }
    }

    fn describe_option(f: &mut fmt::Formatter<'_>, option: &RawOption<'_>) -> fmt::Result {
        describe_option(f, option)
    }
}

/// pppd's text for one CCP option.
pub fn describe_option(f: &mut fmt::Formatter<'_>, option: &RawOption<'_>) -> fmt::Result {
    match (option.kind, option.data) {
        (kind::DEFLATE, [w, ..]) => write!(f, "deflate {}", (w >> 4) + 8),
        (kind::DEFLATE_OLD, [w, ..]) => write!(f, "deflate(old#) {}", (w >> 4) + 8),
        (kind::BSD, [v, ..]) => write!(f, "bsd v{} {}", v >> 5, v & 0x1f),
        (kind::MPPE, _) => match parse_mppe(option) {
            Some(bits) => f.write_str(&describe_mppe(bits)),
            None => f.write_str("mppe"),
        },
        _ => crate::wire::write_unknown_option(f, option),
    }
}

/// Why a compressed datagram was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CcpError {
    /// Shorter than its header.
    #[error("{what} header needs {need} octets, received {got}")]
    Truncated {
        /// "Deflate" or "MPPE".
        what: &'static str,
        /// Needed.
        need: usize,
        /// Present.
        got: usize,
    },
    /// Deflate sequence number not the next one: history lost.
    #[error("Deflate sequence {got}, expected {expected}")]
    BadSequence {
        /// Received.
        got: u16,
        /// Expected.
        expected: u16,
    },
    /// The deflate stream is corrupt.
    #[error("Deflate stream error")]
    Inflate,
    /// Decompressed packet larger than the limit.
    #[error("decompressed packet larger than {limit} octets")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Waiting for the peer's Reset-Ack / flushed packet after an error.
    #[error("waiting for a reset after an earlier error")]
    AwaitingReset,
    /// MPPE packet without the D (encrypted) bit.
    #[error("MPPE packet not encrypted (D bit clear), header {header:#06x}")]
    NotEncrypted {
        /// The header.
        header: u16,
    },
    /// MPPE packet older than the last one (reordered or replayed).
    #[error("MPPE coherency count {got} is behind {last}: late packet dropped")]
    Late {
        /// Received count.
        got: u16,
        /// Our last count.
        last: u16,
    },
    /// MPPE stateful: packets were lost; a Reset-Request is needed.
    #[error("MPPE coherency count {got}, expected {expected}: packets lost")]
    Lost {
        /// Received count.
        got: u16,
        /// Expected count.
        expected: u16,
    },
    /// The inner protocol field is missing.
    #[error("no protocol field in the decompressed packet")]
    NoProtocol,
}

impl CcpError {
    /// Whether the peer must be sent a Reset-Request (RFC 1962 s2.1).
    pub fn needs_reset(&self) -> bool {
        matches!(
            self,
            CcpError::BadSequence { .. } | CcpError::Inflate | CcpError::Lost { .. }
        )
    }
}

/// Largest packet we inflate (an MRU of 65535 plus the protocol).
const MAX_INFLATED: usize = 65_537;

/// Splits a protocol field that may be PFC-compressed (1 octet, odd).
fn split_protocol(data: &[u8]) -> Result<(u16, &[u8]), CcpError> {
    match data {
        [p, rest @ ..] if p & 1 == 1 => Ok((u16::from(*p), rest)),
        [hi, lo, rest @ ..] => Ok((u16::from_be_bytes([*hi, *lo]), rest)),
        _ => Err(CcpError::NoProtocol),
    }
}

/// Protocols that go through the compressor (Linux ppp_deflate: below
/// 0x4000, not 0xfd/0xfb).
pub fn compressible(protocol: u16) -> bool {
    protocol <= 0x3fff && protocol != 0xfd && protocol != 0xfb
}

/// Deflate compressor (our sending direction).
pub struct DeflateTx {
    compressor: Box<CompressorOxide>,
    seq: u16,
    /// Protocol + packet, reused (no allocation per packet).
    input: Vec<u8>,
    /// Compressor output chunk, reused.
    chunk: Vec<u8>,
}

impl fmt::Debug for DeflateTx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeflateTx(seq {})", self.seq)
    }
}

impl Default for DeflateTx {
    fn default() -> Self {
        Self::new()
    }
}

impl DeflateTx {
    /// A fresh stream, sequence 0.
    pub fn new() -> DeflateTx {
        // Raw deflate (negative window bits), level 6.
        let flags = create_comp_flags_from_zip_params(6, -15, 0);
        DeflateTx {
            compressor: Box::new(CompressorOxide::new(flags)),
            seq: 0,
            input: Vec::new(),
            chunk: Vec::new(),
        }
    }

    /// Reset-Request received: start a new stream.
    pub fn reset(&mut self) {
        self.compressor.reset();
        self.seq = 0;
    }

    /// Compresses one packet. Returns the Compressed Datagram information
    /// field (sequence + deflate data) when it is smaller than sending the
    /// packet as is; `None` means send it uncompressed (the history took
    /// it all the same, as the peer's will).
    pub fn compress(&mut self, protocol: u16, packet: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.compress_into(protocol, packet, &mut out)
            .then_some(out)
    }

    /// [`DeflateTx::compress`] into `out` (cleared first), without
    /// allocating once the buffers have grown: true when `out` holds the
    /// datagram, false when the packet goes uncompressed.
    pub fn compress_into(&mut self, protocol: u16, packet: &[u8], out: &mut Vec<u8>) -> bool {
        self.input.clear();
        if protocol < 0x100 {
            self.input.push(protocol as u8);
        } else {
            self.input.extend_from_slice(&protocol.to_be_bytes());
        }
        self.input.extend_from_slice(packet);
        out.clear();
        out.extend_from_slice(&self.seq.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        let mut consumed = 0;
        self.chunk.resize(self.input.len() + 64, 0);
        loop {
            let (status, used, written) = compress(
                &mut self.compressor,
                &self.input[consumed..],
                &mut self.chunk,
                TDEFLFlush::Sync,
            );
            consumed += used;
            out.extend_from_slice(&self.chunk[..written]);
            if status != TDEFLStatus::Okay
                || (consumed == self.input.len() && written < self.chunk.len())
            {
                break;
            }
        }
        // RFC 1979 s2: the sync flush's empty stored block ends in
        // 00 00 ff ff; those four octets are not sent.
        if out.ends_with(&[0, 0, 0xff, 0xff]) {
            out.truncate(out.len() - 4);
        }
        // Smaller than the packet with its 2-octet protocol field?
        out.len() < packet.len() + 2
    }
}

/// Deflate decompressor (the peer's sending direction).
pub struct DeflateRx {
    inflater: Box<InflateState>,
    seq: u16,
    broken: bool,
    /// Deflate data + flush marker, reused.
    input: Vec<u8>,
    /// Output of incompressible packets (discarded), reused.
    sink: Vec<u8>,
}

impl fmt::Debug for DeflateRx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeflateRx(seq {}, broken {})", self.seq, self.broken)
    }
}

impl Default for DeflateRx {
    fn default() -> Self {
        Self::new()
    }
}

impl DeflateRx {
    /// A fresh stream, expecting sequence 0.
    pub fn new() -> DeflateRx {
        DeflateRx {
            inflater: InflateState::new_boxed(DataFormat::Raw),
            seq: 0,
            broken: false,
            input: Vec::new(),
            sink: Vec::new(),
        }
    }

    /// Our Reset-Request was acked: start over.
    pub fn reset(&mut self) {
        self.inflater.reset(DataFormat::Raw);
        self.seq = 0;
        self.broken = false;
    }

    fn feed(inflater: &mut InflateState, input: &[u8], out: &mut Vec<u8>) -> Result<(), CcpError> {
        let mut buf = [0u8; 4096];
        let mut rest = input;
        loop {
            let r = inflate(inflater, rest, &mut buf, MZFlush::Sync);
            rest = &rest[r.bytes_consumed..];
            out.extend_from_slice(&buf[..r.bytes_written]);
            if out.len() > MAX_INFLATED {
                return Err(CcpError::TooLarge {
                    limit: MAX_INFLATED,
                });
            }
            match r.status {
                // No more progress possible: fine once all input is in.
                Err(MZError::Buf) if rest.is_empty() => return Ok(()),
                Err(_) => return Err(CcpError::Inflate),
                // A final block: the peer's stream must go on forever.
                Ok(MZStatus::StreamEnd) => return Err(CcpError::Inflate),
                Ok(_) => {}
            }
            // The output buffer was not filled: everything is out.
            if rest.is_empty() && r.bytes_written < buf.len() {
                return Ok(());
            }
            if r.bytes_consumed == 0 && r.bytes_written == 0 {
                return Err(CcpError::Inflate);
            }
        }
    }

    /// Decompresses the information field of a Compressed Datagram into
    /// (protocol, packet).
    pub fn decompress(&mut self, data: &[u8]) -> Result<(u16, Vec<u8>), CcpError> {
        let mut out = Vec::new();
        let protocol = self.decompress_into(data, &mut out)?;
        Ok((protocol, out))
    }

    /// [`DeflateRx::decompress`] into `out` (cleared first; the packet
    /// without its protocol field), returning the protocol.
    pub fn decompress_into(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<u16, CcpError> {
        out.clear();
        if self.broken {
            return Err(CcpError::AwaitingReset);
        }
        let [hi, lo, deflated @ ..] = data else {
            return Err(CcpError::Truncated {
                what: "Deflate",
                need: 2,
                got: data.len(),
            });
        };
        let seq = u16::from_be_bytes([*hi, *lo]);
        if seq != self.seq {
            self.broken = true;
            return Err(CcpError::BadSequence {
                got: seq,
                expected: self.seq,
            });
        }
        self.seq = self.seq.wrapping_add(1);
        self.input.clear();
        self.input.extend_from_slice(deflated);
        // Put back the flush marker the sender left out.
        self.input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        if let Err(e) = Self::feed(&mut self.inflater, &self.input, out) {
            self.broken = true;
            out.clear();
            return Err(e);
        }
        let (protocol, header) = match split_protocol(out) {
            Ok((p, rest)) => (p, out.len() - rest.len()),
            Err(e) => {
                out.clear();
                return Err(e);
            }
        };
        out.drain(..header);
        Ok(protocol)
    }

    /// A packet the peer sent uncompressed: add it to the history as
    /// a stored block (pppd's inflateIncomp) and count it.
    pub fn incompressible(&mut self, protocol: u16, packet: &[u8]) {
        if self.broken || !compressible(protocol) {
            return;
        }
        self.seq = self.seq.wrapping_add(1);
        // Stored blocks (RFC 1951 s3.2.4) of protocol + packet: the history
        // takes them as they are; the output they make is thrown away.
        let mut proto = [0u8; 2];
        let proto: &[u8] = if protocol < 0x100 {
            proto[0] = protocol as u8;
            &proto[..1]
        } else {
            proto = protocol.to_be_bytes();
            &proto[..]
        };
        let total = proto.len() + packet.len();
        self.input.clear();
        let mut rest = (proto, packet);
        let mut left = total;
        while left > 0 {
            let len = left.min(0xffff);
            self.input.push(0); // BFINAL 0, BTYPE 00 (stored), aligned
            self.input.extend_from_slice(&(len as u16).to_le_bytes());
            self.input.extend_from_slice(&(!(len as u16)).to_le_bytes());
            let from_proto = rest.0.len().min(len);
            self.input.extend_from_slice(&rest.0[..from_proto]);
            self.input.extend_from_slice(&rest.1[..len - from_proto]);
            rest = (&rest.0[from_proto..], &rest.1[len - from_proto..]);
            left -= len;
        }
        self.sink.clear();
        if Self::feed(&mut self.inflater, &self.input, &mut self.sink).is_err() {
            self.broken = true;
        }
    }
}

/// MPPE header bits (RFC 3078 s3).
mod header {
    pub const FLUSHED: u16 = 0x8000;
    pub const ENCRYPTED: u16 = 0x1000;
    pub const COUNT: u16 = 0x0fff;
}

const CCOUNT_SPACE: u16 = 4096;

/// One direction's MPPE keys: a fresh key and RC4 per packet (stateless,
/// RFC 3078 s7.1), or one RC4 continued across packets and re-keyed on
/// flag packets (stateful, s7.2).
#[derive(Debug)]
// The stateful variant holds its RC4 state inline (about 300 octets); the
// owner boxes MppeTx/MppeRx whole, so a box per variant would only add
// an indirection per packet.
#[allow(clippy::large_enum_variant)]
enum MppeKeys {
    Stateless(StatelessKey),
    Stateful(SessionKey),
}

impl MppeKeys {
    fn new(start: &[u8; 16], strength: KeyStrength, stateless: bool) -> MppeKeys {
        if stateless {
            MppeKeys::Stateless(StatelessKey::new(start, strength))
        } else {
            MppeKeys::Stateful(SessionKey::new(start, strength))
        }
    }
}

/// MPPE encryption of our sending direction.
#[derive(Debug)]
pub struct MppeTx {
    keys: MppeKeys,
    count: u16,
    flush_next: bool,
}

impl MppeTx {
    /// From our send start key.
    pub fn new(keys: &StartKeys, strength: KeyStrength, stateless: bool) -> MppeTx {
        MppeTx {
            keys: MppeKeys::new(&keys.send, strength, stateless),
            count: CCOUNT_SPACE - 1,
            flush_next: false,
        }
    }

    /// Reset-Request received (stateful mode): the next packet is sent
    /// with the flushed bit after re-initialising RC4 (RFC 3078 s8).
    pub fn reset(&mut self) {
        self.flush_next = true;
    }

    /// Encrypts (protocol, packet) into a Compressed Datagram's
    /// information field: header, then the encrypted 2-octet protocol and
    /// packet.
    pub fn encrypt(&mut self, protocol: u16, packet: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(packet.len() + 4);
        self.encrypt_into(protocol, packet, &mut out);
        out
    }

    /// [`MppeTx::encrypt`] appended to `out` (no allocation when it has room).
    pub fn encrypt_into(&mut self, protocol: u16, packet: &[u8], out: &mut Vec<u8>) {
        self.count = (self.count + 1) % CCOUNT_SPACE;
        let flush_next = std::mem::take(&mut self.flush_next);
        out.reserve(4 + packet.len());
        match &mut self.keys {
            MppeKeys::Stateless(key) => {
                // RFC 3078 s7.1: a new key per packet, so every packet
                // is flushed.
                let h = header::ENCRYPTED | header::FLUSHED | self.count;
                out.extend_from_slice(&h.to_be_bytes());
                let mut keystream = key.next_packet(1);
                keystream.extend(&protocol.to_be_bytes(), out);
                keystream.extend(packet, out);
            }
            MppeKeys::Stateful(key) => {
                let mut flushed = false;
                if self.count & 0xff == 0xff {
                    // RFC 3078 s7.2: a new key on every flag packet.
                    key.rekey();
                    flushed = true;
                } else if flush_next {
                    key.reset();
                    flushed = true;
                }
                let mut h = header::ENCRYPTED | self.count;
                if flushed {
                    h |= header::FLUSHED;
                }
                let start = out.len();
                out.extend_from_slice(&h.to_be_bytes());
                out.extend_from_slice(&protocol.to_be_bytes());
                out.extend_from_slice(packet);
                key.apply(&mut out[start + 2..]);
            }
        }
    }
}

/// MPPE decryption of the peer's sending direction.
#[derive(Debug)]
pub struct MppeRx {
    keys: MppeKeys,
    count: u16,
    discard: bool,
}

impl MppeRx {
    /// From our receive start key.
    pub fn new(keys: &StartKeys, strength: KeyStrength, stateless: bool) -> MppeRx {
        MppeRx {
            keys: MppeKeys::new(&keys.recv, strength, stateless),
            count: CCOUNT_SPACE - 1,
            discard: false,
        }
    }

    /// Decrypts a Compressed Datagram's information field into
    /// (protocol, packet).
    pub fn decrypt(&mut self, data: &[u8]) -> Result<(u16, Vec<u8>), CcpError> {
        let mut out = Vec::new();
        let protocol = self.decrypt_into(data, &mut out)?;
        Ok((protocol, out))
    }

    /// [`MppeRx::decrypt`] into `out` (cleared first; the packet without
    /// its protocol field), returning the protocol.
    pub fn decrypt_into(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<u16, CcpError> {
        out.clear();
        let [hi, lo, body @ ..] = data else {
            return Err(CcpError::Truncated {
                what: "MPPE",
                need: 2,
                got: data.len(),
            });
        };
        let h = u16::from_be_bytes([*hi, *lo]);
        if h & header::ENCRYPTED == 0 {
            return Err(CcpError::NotEncrypted { header: h });
        }
        let count = h & header::COUNT;
        let flushed = h & header::FLUSHED != 0;
        let ahead = count.wrapping_sub(self.count) % CCOUNT_SPACE;
        if ahead == 0 || ahead >= CCOUNT_SPACE / 2 {
            // Behind or equal: reordered or replayed. Rekeying "back" is
            // impossible and rekeying all the way round would desync us.
            return Err(CcpError::Late {
                got: count,
                last: self.count,
            });
        }
        let mut protocol = [0u8; 2];
        match &mut self.keys {
            MppeKeys::Stateless(key) => {
                // One key change per count, lost packets' included.
                self.count = count;
                let mut keystream = key.next_packet(usize::from(ahead));
                let Some((head, payload)) = body.split_first_chunk::<2>() else {
                    return Err(CcpError::NoProtocol);
                };
                protocol = *head;
                keystream.apply(&mut protocol);
                keystream.extend(payload, out);
            }
            MppeKeys::Stateful(key) => {
                if self.discard && !flushed {
                    return Err(CcpError::AwaitingReset);
                }
                if ahead != 1 && !flushed {
                    self.discard = true;
                    return Err(CcpError::Lost {
                        got: count,
                        expected: (self.count + 1) % CCOUNT_SPACE,
                    });
                }
                // Rekey once for every flag packet between (ours, count].
                let mut rekeyed = false;
                for step in 1..=ahead {
                    if ((self.count + step) % CCOUNT_SPACE) & 0xff == 0xff {
                        key.rekey();
                        rekeyed = true;
                    }
                }
                if flushed && !rekeyed {
                    key.reset();
                }
                self.discard = false;
                self.count = count;
                // The keystream runs over whatever the peer encrypted,
                // even a body too short for a protocol field.
                let head = body.len().min(2);
                protocol[..head].copy_from_slice(&body[..head]);
                key.apply(&mut protocol[..head]);
                if head < 2 {
                    return Err(CcpError::NoProtocol);
                }
                out.extend_from_slice(&body[2..]);
                key.apply(out);
            }
        }
        Ok(u16::from_be_bytes(protocol))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflate_output_of_exactly_the_buffer_size() {
        for len in [4095usize, 4096, 8191, 100] {
            let mut tx = DeflateTx::new();
            let mut rx = DeflateRx::new();
            let p = vec![0x61u8; len];
            let c = tx.compress(0x21, &p).expect("compressible");
            assert_eq!(rx.decompress(&c).unwrap(), (0x21, p), "len {len}");
        }
    }

    #[test]
    fn large_incompressible_packets_keep_the_histories_in_step() {
        let mut tx = DeflateTx::new();
        let mut rx = DeflateRx::new();
        let mut x = 12345u32;
        let big: Vec<u8> = (0..70_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        // 65535 + the protocol octet needs two stored blocks.
        for len in [65_535usize, 40_000, 10] {
            assert!(tx.compress(0x21, &big[..len]).is_none());
            rx.incompressible(0x21, &big[..len]);
        }
        // Now a packet that repeats recent history compresses and decodes.
        let again = big[39_700..40_000].to_vec();
        let c = tx.compress(0x21, &again).expect("history makes it small");
        assert!(c.len() < 50, "{} octets", c.len());
        assert_eq!(rx.decompress(&c).unwrap(), (0x21, again));
    }

    #[test]
    fn deflate_bomb_is_refused() {
        let mut tx = DeflateTx::new();
        let mut rx = DeflateRx::new();
        let c = tx.compress(0x21, &vec![0u8; 200_000]).unwrap();
        assert!(c.len() < 1000);
        assert_eq!(
            rx.decompress(&c).unwrap_err(),
            CcpError::TooLarge { limit: 65_537 }
        );
        // A final block (BFINAL) is an error too: the stream never ends.
        let mut rx = DeflateRx::new();
        assert_eq!(
            rx.decompress(&[0, 0, 0x03, 0x00]).unwrap_err(),
            CcpError::Inflate
        );
    }

    #[test]
    fn mppe_text_matches_pppd() {
        assert_eq!(describe_mppe(0x0100_0040), "mppe +H -M +S -L -D -C");
    }

    #[test]
    fn deflate_round_trip_with_incompressible_packets() {
        let mut tx = DeflateTx::new();
        let mut rx = DeflateRx::new();
        let packets: Vec<Vec<u8>> = vec![
            vec![0x61; 300],
            (0..40u8).map(|i| i.wrapping_mul(97)).collect(),
            vec![0x61; 300],
            b"hello hello hello hello hello hello".to_vec(),
        ];
        for p in &packets {
            match tx.compress(0x21, p) {
                Some(c) => {
                    assert!(c.len() < p.len());
                    assert_eq!(rx.decompress(&c).unwrap(), (0x21, p.clone()));
                }
                None => rx.incompressible(0x21, p),
            }
        }
        // A lost compressed packet breaks the stream until reset.
        let lost = tx.compress(0x21, &[0x62; 200]).unwrap();
        drop(lost);
        let next = tx.compress(0x21, &[0x62; 200]).unwrap();
        let e = rx.decompress(&next).unwrap_err();
        assert!(e.needs_reset(), "{e}");
        assert_eq!(rx.decompress(&next).unwrap_err(), CcpError::AwaitingReset);
        tx.reset();
        rx.reset();
        let c = tx.compress(0x57, &[0x62; 200]).unwrap();
        assert_eq!(rx.decompress(&c).unwrap(), (0x57, vec![0x62; 200]));
    }

    fn keys() -> (StartKeys, StartKeys) {
        let hash = [3u8; 16];
        let nt = [9u8; 24];
        (
            StartKeys::from_mschapv2(&hash, &nt, true),
            StartKeys::from_mschapv2(&hash, &nt, false),
        )
    }

    #[test]
    fn mppe_stateless_drops_late_and_survives_loss() {
        let (server, client) = keys();
        let mut tx = MppeTx::new(&server, KeyStrength::Bits128, true);
        let mut rx = MppeRx::new(&client, KeyStrength::Bits128, true);
        let sent: Vec<Vec<u8>> = (0..10u8).map(|i| tx.encrypt(0x21, &[i; 40])).collect();
        // In order 0, 1; lose 2; 4 before 3 (3 is then late).
        assert_eq!(rx.decrypt(&sent[0]).unwrap(), (0x21, vec![0; 40]));
        assert_eq!(rx.decrypt(&sent[1]).unwrap(), (0x21, vec![1; 40]));
        assert_eq!(rx.decrypt(&sent[4]).unwrap(), (0x21, vec![4; 40]));
        assert!(matches!(rx.decrypt(&sent[3]), Err(CcpError::Late { .. })));
        assert!(matches!(rx.decrypt(&sent[4]), Err(CcpError::Late { .. })));
        assert_eq!(rx.decrypt(&sent[5]).unwrap(), (0x21, vec![5; 40]));
        // Past the 4096 wrap.
        for i in 0..5000u32 {
            let p = tx.encrypt(0x57, &i.to_be_bytes());
            if i % 7 == 3 {
                continue;
            }
            assert_eq!(rx.decrypt(&p).unwrap(), (0x57, i.to_be_bytes().to_vec()));
        }
    }

    #[test]
    fn mppe_stateful_rekeys_on_flag_packets_and_recovers_with_flush() {
        let (server, client) = keys();
        let mut tx = MppeTx::new(&server, KeyStrength::Bits40, false);
        let mut rx = MppeRx::new(&client, KeyStrength::Bits40, false);
        for i in 0..600u32 {
            let p = tx.encrypt(0x21, &i.to_be_bytes());
            assert_eq!(rx.decrypt(&p).unwrap().1, i.to_be_bytes(), "packet {i}");
        }
        // Lose one: Lost (reset needed), then drop until flushed.
        let _lost = tx.encrypt(0x21, b"lost");
        let p = tx.encrypt(0x21, b"next");
        let e = rx.decrypt(&p).unwrap_err();
        assert!(e.needs_reset());
        let p = tx.encrypt(0x21, b"still");
        assert_eq!(rx.decrypt(&p).unwrap_err(), CcpError::AwaitingReset);
        tx.reset();
        let p = tx.encrypt(0x21, b"flushed");
        assert_eq!(rx.decrypt(&p).unwrap().1, b"flushed");
        // Lose across a flag packet, then recover.
        for _ in 0..300 {
            let _ = tx.encrypt(0x21, b"gone");
        }
        let p = tx.encrypt(0x21, b"x");
        assert!(rx.decrypt(&p).unwrap_err().needs_reset());
        tx.reset();
        let p = tx.encrypt(0x21, b"back");
        assert_eq!(rx.decrypt(&p).unwrap().1, b"back");
    }
}
