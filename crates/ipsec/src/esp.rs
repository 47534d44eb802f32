//! ESP (RFC 4303): Security Associations that seal and open packets in
//! place, with anti-replay, and the UDP encapsulation helpers of RFC 3948.
//!
//! Implemented:
//! - The packet format (RFC 4303 s2): SPI, sequence number, IV, payload,
//!   padding, pad length, next header, ICV; 32-bit sequence numbers, or
//!   64-bit extended ones (ESN, s2.2.1 and Appendix A).
//! - Transforms: AES-GCM with a 16-octet ICV and 128- or 256-bit keys
//!   (RFC 4106); AES-CBC (RFC 3602) and 3DES-CBC (RFC 2451), each with
//!   HMAC-SHA1-96 (RFC 2404) or HMAC-SHA-256-128 (RFC 4868).
//! - Anti-replay (s3.4.3) with an RFC 6479 bitmap of 1024 packets or more.
//! - Tunnel mode (s3.1.2: the payload is an IPv4 or IPv6 packet, next
//!   header 4 or 41) and transport mode (s3.1.1: the payload is the
//!   upper-layer protocol, e.g. UDP 17 for L2TP/IPsec; the caller rebuilds
//!   the IP header around it, with protocol = next header and the lengths,
//!   and after NAT-T fixes the checksums as RFC 3948 s3.1.2 says).
//! - Dummy packets (next header 59, s2.6) are recognised and counted.
//! - UDP encapsulation (RFC 3948): the driver owns the UDP socket and
//!   header; [`classify_udp_4500`] sorts what arrives on port 4500.
//!
//! Left out: encryption-only and integrity-only (NULL) SAs, traffic flow
//! confidentiality padding, AH, combined-mode algorithms other than GCM,
//! and the SAD/SPD (the driver looks the SPI up, see [`parse_spi`]).
//!
//! Buffers: the caller leaves [`HEADROOM`] octets before the payload and
//! [`TAILROOM`] after it; [`OutboundSa::seal`] writes header, IV, trailer
//! and ICV around the payload without allocating, and
//! [`InboundSa::open`] decrypts in place and says where the payload is.
//!
//! IVs: AES-GCM's 8-octet explicit IV is the 64-bit sequence number (RFC
//! 4106 s3.1 allows a counter), so it never repeats under a key: the SA
//! refuses to seal once the sequence number space is spent. CBC IVs are
//! drawn from the [`RandomSource`](tsunagi_crypto::random::RandomSource)
//! the driver hands in, the OS CSPRNG in a running gateway (RFC 3602 s2.4
//! requires unpredictable IVs).

mod replay;
mod transform;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

use std::fmt;
use std::ops::Range;

use ring::aead;
use tsunagi_crypto::random::Random;

pub use replay::{ReplayVerdict, ReplayWindow};
use transform::Keyed;

/// SPI and sequence number (RFC 4303 s2).
pub const HEADER_LEN: usize = 8;
/// The largest IV of any transform here (AES-CBC: 16 octets).
pub const MAX_IV_LEN: usize = 16;
/// What the caller leaves before the payload for [`OutboundSa::seal`].
pub const HEADROOM: usize = HEADER_LEN + MAX_IV_LEN;
/// What the caller leaves after the payload for [`OutboundSa::seal`]: at
/// most 15 octets of padding, pad length, next header, a 16-octet ICV.
pub const TAILROOM: usize = 15 + 2 + 16;
/// The default anti-replay window (RFC 4303 s3.4.3 asks for at least 32;
/// RFC 6479 argues for 1024 or more at high rates).
pub const DEFAULT_REPLAY_WINDOW: usize = 1024;

/// IPv4 in tunnel mode (IANA protocol 4).
pub const NEXT_HEADER_IPV4: u8 = 4;
/// IPv6 in tunnel mode (IANA protocol 41).
pub const NEXT_HEADER_IPV6: u8 = 41;
/// UDP (17), the transport-mode payload of L2TP/IPsec.
pub const NEXT_HEADER_UDP: u8 = 17;
/// "No next header": a dummy packet (RFC 4303 s2.6).
pub const NEXT_HEADER_DUMMY: u8 = 59;

/// The integrity algorithm of a CBC transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrity {
    /// HMAC-SHA1-96 (RFC 2404): 20-octet key, 12-octet ICV.
    HmacSha1_96,
    /// HMAC-SHA-256-128 (RFC 4868): 32-octet key, 16-octet ICV.
    HmacSha256_128,
}

/// The transform (encryption and integrity) of an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// AES-GCM with a 16-octet ICV (RFC 4106, IKE transform ENCR_AES_GCM_16):
    /// key material of 20 or 36 octets, the AES key then the salt.
    AesGcm16,
    /// AES-CBC (RFC 3602) with a 16-, 24- or 32-octet key.
    AesCbc(Integrity),
    /// 3DES-CBC (RFC 2451) with a 24-octet key.
    TripleDesCbc(Integrity),
}

/// How the payload relates to the IP packet (RFC 4303 s3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The payload is the upper-layer protocol; the caller rebuilds the IP
    /// header.
    Transport,
    /// The payload is a whole IPv4 or IPv6 packet.
    Tunnel,
}

/// What an SA is, besides its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaConfig {
    /// The SPI, chosen by the receiving side (RFC 4303 s2.1).
    pub spi: u32,
    /// The transform.
    pub transform: Transform,
    /// Tunnel or transport.
    pub mode: Mode,
    /// Extended (64-bit) sequence numbers (RFC 4303 s2.2.1).
    pub esn: bool,
    /// Inbound only: the anti-replay window in packets (a multiple of 64;
    /// [`DEFAULT_REPLAY_WINDOW`] is a good value).
    pub replay_window: usize,
    /// Informational: the packets travel in UDP port 4500 (RFC 3948); the
    /// driver adds and strips the UDP header.
    pub udp_encap: bool,
    /// Outbound only: [`OutboundSa::needs_rekey`] turns true once this many
    /// packets were sealed. `None`: 2^32 - 2^24 without ESN, 2^63 with.
    pub rekey_after: Option<u64>,
}

impl SaConfig {
    /// A config with the defaults: no ESN, a 1024-packet window, no UDP
    /// encapsulation, the default rekey threshold.
    pub fn new(spi: u32, transform: Transform, mode: Mode) -> SaConfig {
        SaConfig {
            spi,
            transform,
            mode,
            esn: false,
            replay_window: DEFAULT_REPLAY_WINDOW,
            udp_encap: false,
            rekey_after: None,
        }
    }

    fn iv_len(&self) -> usize {
        match self.transform {
            Transform::AesGcm16 => 8,
            Transform::AesCbc(_) => 16,
            Transform::TripleDesCbc(_) => 8,
        }
    }

    fn icv_len(&self) -> usize {
        match self.transform {
            Transform::AesGcm16 => 16,
            Transform::AesCbc(i) | Transform::TripleDesCbc(i) => match i {
                Integrity::HmacSha1_96 => 12,
                Integrity::HmacSha256_128 => 16,
            },
        }
    }

    /// The alignment of payload + trailer: the cipher block, or 4 for GCM
    /// (RFC 4303 s2.4).
    fn align(&self) -> usize {
        match self.transform {
            Transform::AesGcm16 => 4,
            Transform::AesCbc(_) => 16,
            Transform::TripleDesCbc(_) => 8,
        }
    }

    fn max_seq(&self) -> u64 {
        if self.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        }
    }
}

/// Per-SA counters (what `swanctl --list-sas` shows, and the drops).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets sealed.
    pub packets_out: u64,
    /// Payload octets sealed.
    pub bytes_out: u64,
    /// Packets opened and delivered (dummies not included).
    pub packets_in: u64,
    /// Payload octets delivered.
    pub bytes_in: u64,
    /// Refused: sequence number already received.
    pub replayed: u64,
    /// Refused: sequence number left of the window.
    pub too_old: u64,
    /// Refused: ICV did not verify.
    pub bad_icv: u64,
    /// Refused after the ICV verified: padding or pad length wrong.
    pub bad_padding: u64,
    /// Dummy packets (next header 59) dropped.
    pub dummy: u64,
    /// Refused before the ICV: too short, misaligned, wrong SPI.
    pub malformed: u64,
}

/// What went wrong, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EspError {
    /// A key of the wrong length.
    #[error("{what} of {got} octets: expected {expected}")]
    KeyLength {
        /// Which key.
        what: &'static str,
        /// Its length.
        got: usize,
        /// What is allowed.
        expected: &'static str,
    },
    /// Shorter than the fixed parts.
    #[error("ESP packet of {len} octets is shorter than header + IV + ICV ({min})")]
    TooShort {
        /// The packet length.
        len: usize,
        /// The least this SA accepts.
        min: usize,
    },
    /// The ciphertext is not a whole number of cipher blocks.
    #[error("ESP ciphertext of {len} octets is not a multiple of the {block}-octet block")]
    NotAligned {
        /// The ciphertext length.
        len: usize,
        /// The block size.
        block: usize,
    },
    /// The SPI is not this SA's (the driver's lookup went wrong).
    #[error("SPI 0x{got:08x} is not this SA's (0x{expected:08x})")]
    WrongSpi {
        /// In the packet.
        got: u32,
        /// This SA's.
        expected: u32,
    },
    /// Replayed (RFC 4303 s3.4.3).
    #[error("replayed: seq {seq} already received")]
    Replayed {
        /// The sequence number.
        seq: u64,
    },
    /// Left of the window (RFC 4303 s3.4.3).
    #[error("too old: seq {seq} is left of the window (last {last})")]
    TooOld {
        /// The sequence number.
        seq: u64,
        /// The highest received.
        last: u64,
    },
    /// The ICV did not verify (RFC 4303 s3.4.4).
    #[error("ICV mismatch on SPI 0x{spi:08x} seq {seq}")]
    IcvMismatch {
        /// The SPI.
        spi: u32,
        /// The sequence number.
        seq: u64,
    },
    /// The pad length is more than the decrypted data holds.
    #[error("pad length {pad_len} exceeds the {room} octets of padding room")]
    PadLength {
        /// The Pad Length field.
        pad_len: u8,
        /// Octets before the trailer.
        room: usize,
    },
    /// The padding is not 1, 2, 3, ... (RFC 4303 s2.4).
    #[error("padding octet {index} is {value}, not {expected} (RFC 4303 s2.4)")]
    Padding {
        /// 0-based index into the padding.
        index: usize,
        /// What was there.
        value: u8,
        /// What s2.4's default scheme puts there.
        expected: u8,
    },
    /// A next header that the mode does not carry.
    #[error("{mode:?}-mode SA got next header {next_header}, not IPv4 (4) or IPv6 (41)")]
    NextHeader {
        /// The SA's mode.
        mode: Mode,
        /// The Next Header field.
        next_header: u8,
    },
    /// The inner packet's IP version disagrees with the next header.
    #[error("next header {next_header} but the inner packet's version nibble is {version}")]
    InnerVersion {
        /// The Next Header field.
        next_header: u8,
        /// The first nibble of the payload (16: empty payload).
        version: u8,
    },
    /// No room before the payload for header and IV.
    #[error("seal needs {needed} octets of headroom before the payload, found {have}")]
    Headroom {
        /// Header + IV.
        needed: usize,
        /// Before the payload.
        have: usize,
    },
    /// No room after the payload for trailer and ICV.
    #[error("seal needs {needed} octets of tailroom after the payload, found {have}")]
    Tailroom {
        /// Padding + 2 + ICV.
        needed: usize,
        /// After the payload.
        have: usize,
    },
    /// The payload range lies outside the buffer.
    #[error("payload {start}..{end} lies outside the {len}-octet buffer")]
    PayloadRange {
        /// Start.
        start: usize,
        /// End.
        end: usize,
        /// The buffer length.
        len: usize,
    },
    /// Every sequence number was used: the SA must be replaced (RFC 4303
    /// s3.3.3).
    #[error("sequence number space of SPI 0x{spi:08x} exhausted at {seq}: rekey")]
    SequenceExhausted {
        /// The SPI.
        spi: u32,
        /// The last sequence number sent.
        seq: u64,
    },
    /// A UDP port 4500 datagram that is neither IKE, keepalive nor ESP.
    #[error("UDP-encapsulated datagram of {len} octets is neither a NAT-keepalive nor IKE nor ESP (RFC 3948 s2)")]
    UdpEncap {
        /// Its length.
        len: usize,
    },
}

/// The SPI of an ESP packet, for the driver's SA lookup (RFC 4303 s2.1).
pub fn parse_spi(packet: &[u8]) -> Result<u32, EspError> {
    if packet.len() < HEADER_LEN {
        return Err(EspError::TooShort {
            len: packet.len(),
            min: HEADER_LEN,
        });
    }
    Ok(u32::from_be_bytes([
        packet[0], packet[1], packet[2], packet[3],
    ]))
}

/// What a datagram on UDP port 4500 is (RFC 3948 s2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpEncapPayload {
    /// IKE after the 4-octet non-ESP marker (s2.2): the IKE message starts
    /// at this offset.
    Ike {
        /// Where the IKE header starts (4).
        offset: usize,
    },
    /// A NAT-keepalive (s2.3): drop it.
    NatKeepalive,
    /// An ESP packet (the SPI is never 0).
    Esp,
}

/// The non-ESP marker (RFC 3948 s2.2): IKE on port 4500 starts with it.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// A NAT-keepalive packet (RFC 3948 s2.3).
pub const NAT_KEEPALIVE: [u8; 1] = [0xff];

/// Sorts a UDP payload received on port 4500 (RFC 3948 s2).
pub fn classify_udp_4500(datagram: &[u8]) -> Result<UdpEncapPayload, EspError> {
    if datagram == NAT_KEEPALIVE {
        return Ok(UdpEncapPayload::NatKeepalive);
    }
    if datagram.len() >= 4 && datagram[..4] == NON_ESP_MARKER {
        return Ok(UdpEncapPayload::Ike { offset: 4 });
    }
    if datagram.len() >= HEADER_LEN {
        return Ok(UdpEncapPayload::Esp);
    }
    Err(EspError::UdpEncap {
        len: datagram.len(),
    })
}

/// Writes the non-ESP marker into the 4 octets before an IKE message that
/// goes to port 4500; returns the range to send.
pub fn prepend_non_esp_marker(buf: &mut [u8], ike: Range<usize>) -> Option<Range<usize>> {
    let start = ike.start.checked_sub(4)?;
    buf.get_mut(start..ike.start)?
        .copy_from_slice(&NON_ESP_MARKER);
    Some(start..ike.end)
}

/// The outbound half of an SA: seals packets.
pub struct OutboundSa {
    config: SaConfig,
    keyed: Keyed,
    random: Random,
    /// The last sequence number sent (0: none; RFC 4303 s3.3.3 starts at 1).
    seq: u64,
    counters: Counters,
}

impl fmt::Debug for OutboundSa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundSa")
            .field("config", &self.config)
            .field("keys", &"<redacted>")
            .field("seq", &self.seq)
            .field("counters", &self.counters)
            .finish()
    }
}

impl OutboundSa {
    /// Keys an outbound SA. `encryption`: the cipher key (AES-GCM: key then
    /// 4-octet salt); `integrity`: the HMAC key (empty for AES-GCM);
    /// `random`: where CBC IVs come from (the OS CSPRNG). The caller should
    /// zeroize its copies of the keys.
    pub fn new(
        config: SaConfig,
        encryption: &[u8],
        integrity: &[u8],
        random: Random,
    ) -> Result<OutboundSa, EspError> {
        Ok(OutboundSa {
            keyed: Keyed::new(config.transform, encryption, integrity)?,
            config,
            random,
            seq: 0,
            counters: Counters::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SaConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The last sequence number sent.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Sets the last sequence number sent: for tests of the 2^32 boundary
    /// and for the fuzz target.
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Whether the SA should be replaced now (the IKE engine starts a
    /// rekey): the sequence number passed [`SaConfig::rekey_after`].
    pub fn needs_rekey(&self) -> bool {
        let threshold = self.config.rekey_after.unwrap_or(if self.config.esn {
            1 << 63
        } else {
            (1 << 32) - (1 << 24)
        });
        self.seq >= threshold.min(self.config.max_seq())
    }

    /// Octets needed before the payload: header and IV.
    pub fn headroom(&self) -> usize {
        HEADER_LEN + self.config.iv_len()
    }

    /// Octets needed after a payload of `len` octets: padding, pad length,
    /// next header, ICV.
    pub fn tailroom(&self, len: usize) -> usize {
        let align = self.config.align();
        let pad = (align - (len + 2) % align) % align;
        pad + 2 + self.config.icv_len()
    }

    /// Seals `buf[payload]` in place (RFC 4303 s3.3): writes SPI, sequence
    /// number and IV before it (the caller leaves [`HEADROOM`]), padding
    /// 1, 2, 3, ..., pad length, `next_header` and the ICV after it (the
    /// caller leaves [`TAILROOM`]), and returns where the ESP packet lies.
    pub fn seal(
        &mut self,
        buf: &mut [u8],
        payload: Range<usize>,
        next_header: u8,
    ) -> Result<Range<usize>, EspError> {
        if payload.start > payload.end || payload.end > buf.len() {
            return Err(EspError::PayloadRange {
                start: payload.start,
                end: payload.end,
                len: buf.len(),
            });
        }
        if self.config.mode == Mode::Tunnel
            && !matches!(
                next_header,
                NEXT_HEADER_IPV4 | NEXT_HEADER_IPV6 | NEXT_HEADER_DUMMY
            )
        {
            return Err(EspError::NextHeader {
                mode: Mode::Tunnel,
                next_header,
            });
        }
        let headroom = self.headroom();
        if payload.start < headroom {
            return Err(EspError::Headroom {
                needed: headroom,
                have: payload.start,
            });
        }
        let len = payload.len();
        let tailroom = self.tailroom(len);
        if buf.len() - payload.end < tailroom {
            return Err(EspError::Tailroom {
                needed: tailroom,
                have: buf.len() - payload.end,
            });
        }
        if self.seq >= self.config.max_seq() {
            return Err(EspError::SequenceExhausted {
                spi: self.config.spi,
                seq: self.seq,
            });
        }
        let seq = self.seq + 1;
        let start = payload.start - headroom;
        let iv_start = start + HEADER_LEN;
        let icv_len = self.config.icv_len();
        let trailer_end = payload.end + tailroom - icv_len;
        let end = trailer_end + icv_len;

        buf[start..start + 4].copy_from_slice(&self.config.spi.to_be_bytes());
        buf[start + 4..iv_start].copy_from_slice(&(seq as u32).to_be_bytes());
        let pad = trailer_end - 2 - payload.end;
        for (i, b) in buf[payload.end..trailer_end - 2].iter_mut().enumerate() {
            *b = (i + 1) as u8;
        }
        buf[trailer_end - 2] = pad as u8;
        buf[trailer_end - 1] = next_header;
        let seq_hi = ((seq >> 32) as u32).to_be_bytes();

        match &self.keyed {
            Keyed::Gcm { key, salt } => {
                let iv = seq.to_be_bytes();
                buf[iv_start..payload.start].copy_from_slice(&iv);
                let aad = gcm_aad(self.config.spi, seq, self.config.esn);
                let aad_len = if self.config.esn { 12 } else { 8 };
                let tag = key
                    .seal_in_place_separate_tag(
                        transform::gcm_nonce(salt, &iv),
                        aead::Aad::from(&aad[..aad_len]),
                        &mut buf[payload.start..trailer_end],
                    )
                    .expect("sealing fails only past the GCM length limit");
                buf[trailer_end..end].copy_from_slice(tag.as_ref());
            }
            Keyed::Cbc { cipher, mac } => {
                let (head, rest) = buf.split_at_mut(payload.start);
                let iv = &mut head[iv_start..];
                self.random.fill(iv);
                cipher.encrypt(iv, &mut rest[..trailer_end - payload.start]);
                let (authed, icv) = buf[start..end].split_at_mut(trailer_end - start);
                if self.config.esn {
                    mac.compute(&[authed, &seq_hi], icv);
                } else {
                    mac.compute(&[authed], icv);
                }
            }
        }
        self.seq = seq;
        self.counters.packets_out += 1;
        self.counters.bytes_out += len as u64;
        Ok(start..end)
    }
}

/// The RFC 4106 s5 AAD: SPI and sequence number, 32-bit (8 octets) or
/// extended (12 octets, high half first).
fn gcm_aad(spi: u32, seq: u64, esn: bool) -> [u8; 12] {
    let mut aad = [0u8; 12];
    aad[..4].copy_from_slice(&spi.to_be_bytes());
    if esn {
        aad[4..].copy_from_slice(&seq.to_be_bytes());
    } else {
        aad[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
    }
    aad
}

/// What [`InboundSa::open`] found in a packet that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Opened {
    /// A payload to deliver: an IP packet (tunnel mode) or an upper-layer
    /// segment (transport mode), decrypted in place at `payload`.
    Payload {
        /// The Next Header field.
        next_header: u8,
        /// Where the payload lies in the buffer.
        payload: Range<usize>,
        /// The full (ESN-inferred) sequence number.
        seq: u64,
    },
    /// A dummy packet (next header 59, RFC 4303 s2.6): dropped and counted.
    Dummy {
        /// The sequence number.
        seq: u64,
    },
}

/// The inbound half of an SA: opens packets, guards against replay.
pub struct InboundSa {
    config: SaConfig,
    keyed: Keyed,
    window: ReplayWindow,
    counters: Counters,
}

impl fmt::Debug for InboundSa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSa")
            .field("config", &self.config)
            .field("keys", &"<redacted>")
            .field("last_seq", &self.window.top())
            .field("counters", &self.counters)
            .finish()
    }
}

impl InboundSa {
    /// Keys an inbound SA (see [`OutboundSa::new`] for the keys).
    pub fn new(
        config: SaConfig,
        encryption: &[u8],
        integrity: &[u8],
    ) -> Result<InboundSa, EspError> {
        Ok(InboundSa {
            keyed: Keyed::new(config.transform, encryption, integrity)?,
            window: ReplayWindow::new(config.replay_window),
            config,
            counters: Counters::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SaConfig {
        &self.config
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The anti-replay window.
    pub fn window(&self) -> &ReplayWindow {
        &self.window
    }

    /// The least packet length this SA accepts: header, IV, the smallest
    /// ciphertext (one block, or the 2-octet trailer for GCM rounded to 4)
    /// and the ICV.
    pub fn min_len(&self) -> usize {
        let c = &self.config;
        HEADER_LEN + c.iv_len() + c.align() + c.icv_len()
    }

    /// Opens the ESP packet `buf` in place (RFC 4303 s3.4): length, SPI,
    /// the replay check, the ICV, then the window update, decryption and
    /// the trailer. On error nothing of the window changes.
    pub fn open(&mut self, buf: &mut [u8]) -> Result<Opened, EspError> {
        let r = self.open_inner(buf);
        if let Err(e) = &r {
            let c = &mut self.counters;
            match e {
                EspError::Replayed { .. } => c.replayed += 1,
                EspError::TooOld { .. } => c.too_old += 1,
                EspError::IcvMismatch { .. } => c.bad_icv += 1,
                EspError::PadLength { .. } | EspError::Padding { .. } => c.bad_padding += 1,
                _ => c.malformed += 1,
            }
        }
        r
    }

    fn open_inner(&mut self, buf: &mut [u8]) -> Result<Opened, EspError> {
        let c = self.config;
        let min = self.min_len();
        if buf.len() < min {
            return Err(EspError::TooShort {
                len: buf.len(),
                min,
            });
        }
        let spi = parse_spi(buf)?;
        if spi != c.spi {
            return Err(EspError::WrongSpi {
                got: spi,
                expected: c.spi,
            });
        }
        let low = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let seq = if c.esn {
            self.window.esn_infer(low)
        } else {
            u64::from(low)
        };
        let iv_end = HEADER_LEN + c.iv_len();
        let icv_start = buf.len() - c.icv_len();
        let ct_len = icv_start - iv_end;
        if !ct_len.is_multiple_of(c.align()) {
            return Err(EspError::NotAligned {
                len: ct_len,
                block: c.align(),
            });
        }
        match self.window.check(seq) {
            Ok(()) => {}
            Err(ReplayVerdict::Replayed) => return Err(EspError::Replayed { seq }),
            Err(ReplayVerdict::TooOld) => {
                return Err(EspError::TooOld {
                    seq,
                    last: self.window.top(),
                })
            }
        }
        let mismatch = EspError::IcvMismatch { spi, seq };
        match &self.keyed {
            Keyed::Gcm { key, salt } => {
                let iv: [u8; 8] = buf[HEADER_LEN..iv_end].try_into().expect("8 octets");
                let tag = aead::Tag::try_from(&buf[icv_start..]).map_err(|_| mismatch.clone())?;
                let aad = gcm_aad(spi, seq, c.esn);
                let aad_len = if c.esn { 12 } else { 8 };
                key.open_in_place_separate_tag(
                    transform::gcm_nonce(salt, &iv),
                    aead::Aad::from(&aad[..aad_len]),
                    tag,
                    &mut buf[iv_end..icv_start],
                    0..,
                )
                .map_err(|_| mismatch)?;
            }
            Keyed::Cbc { cipher, mac } => {
                let (authed, icv) = buf.split_at(icv_start);
                let seq_hi = ((seq >> 32) as u32).to_be_bytes();
                let ok = if c.esn {
                    mac.verify(&[authed, &seq_hi], icv)
                } else {
                    mac.verify(&[authed], icv)
                };
                if !ok {
                    return Err(mismatch);
                }
                let (head, rest) = buf.split_at_mut(iv_end);
                cipher.decrypt(&head[HEADER_LEN..], &mut rest[..ct_len]);
            }
        }
        // RFC 4303 s3.4.3: the window moves only for packets that verified.
        self.window.update(seq);

        let pad_len = buf[icv_start - 2];
        let next_header = buf[icv_start - 1];
        let room = ct_len - 2;
        if usize::from(pad_len) > room {
            return Err(EspError::PadLength { pad_len, room });
        }
        let payload_end = icv_start - 2 - usize::from(pad_len);
        for (index, &value) in buf[payload_end..icv_start - 2].iter().enumerate() {
            let expected = (index + 1) as u8;
            if value != expected {
                return Err(EspError::Padding {
                    index,
                    value,
                    expected,
                });
            }
        }
        if next_header == NEXT_HEADER_DUMMY {
            self.counters.dummy += 1;
            return Ok(Opened::Dummy { seq });
        }
        let payload = iv_end..payload_end;
        if c.mode == Mode::Tunnel {
            let version = buf.get(iv_end).map_or(16, |b| b >> 4);
            match next_header {
                NEXT_HEADER_IPV4 | NEXT_HEADER_IPV6 => {
                    let want = if next_header == NEXT_HEADER_IPV4 {
                        4
                    } else {
                        6
                    };
                    if payload.is_empty() || version != want {
                        return Err(EspError::InnerVersion {
                            next_header,
                            version: if payload.is_empty() { 16 } else { version },
                        });
                    }
                }
                _ => {
                    return Err(EspError::NextHeader {
                        mode: Mode::Tunnel,
                        next_header,
                    })
                }
            }
        }
        self.counters.packets_in += 1;
        self.counters.bytes_in += payload.len() as u64;
        Ok(Opened::Payload {
            next_header,
            payload,
            seq,
        })
    }
}
