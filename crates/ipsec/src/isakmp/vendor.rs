//! Vendor IDs this gateway knows by name (RFC 2408 s3.16: a Vendor ID is
//! an opaque hash; these are the ones that announce a capability).
//!
//! Each value is written down with where it comes from; the tests check
//! the MD5-derived ones against the MD5 of their text.

use std::fmt;

/// A Vendor ID with a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnownVendor {
    /// RFC 3947 NAT-T: MD5("RFC 3947") (RFC 3947 s3.1).
    NatTRfc3947,
    /// draft-ietf-ipsec-nat-t-ike-02: MD5("draft-ietf-ipsec-nat-t-ike-02").
    NatTDraft02,
    /// The same draft as some peers hash it, with a newline:
    /// MD5("draft-ietf-ipsec-nat-t-ike-02\n") (Windows sends this one).
    NatTDraft02N,
    /// draft-ietf-ipsec-nat-t-ike-03: MD5("draft-ietf-ipsec-nat-t-ike-03").
    NatTDraft03,
    /// Dead Peer Detection 1.0 (RFC 3706 s4: 14 octets, then major 1 and
    /// minor 0).
    Dpd,
    /// strongSwan: MD5("strongSwan").
    StrongSwan,
    /// XAUTH: the first 8 octets of
    /// MD5("draft-ipsra-isakmp-xauth-06.txt").
    Xauth,
    /// Cisco Unity 1.0: MD5("CISCO-UNITY") with its last two octets
    /// replaced by major 1, minor 0.
    CiscoUnity,
    /// IKE fragmentation: MD5("FRAGMENTATION"), sometimes followed by four
    /// octets of flags (matched on the first 16).
    Fragmentation,
}

const TABLE: &[(KnownVendor, &[u8], bool, &str)] = &[
    (
        KnownVendor::NatTRfc3947,
        &hex16(*b"4a131c81070358455c5728f20e95452f"),
        false,
        "NAT-T (RFC 3947)",
    ),
    (
        KnownVendor::NatTDraft02,
        &hex16(*b"cd60464335df21f87cfdb2fc68b6a448"),
        false,
        "draft-ietf-ipsec-nat-t-ike-02",
    ),
    (
        KnownVendor::NatTDraft02N,
        &hex16(*b"90cb80913ebb696e086381b5ec427b1f"),
        false,
        "draft-ietf-ipsec-nat-t-ike-02\\n",
    ),
    (
        KnownVendor::NatTDraft03,
        &hex16(*b"7d9419a65310ca6f2c179d9215529d56"),
        false,
        "draft-ietf-ipsec-nat-t-ike-03",
    ),
    (
        KnownVendor::Dpd,
        &hex16(*b"afcad71368a1f1c96b8696fc77570100"),
        false,
        "DPD",
    ),
    (
        KnownVendor::StrongSwan,
        &hex16(*b"882fe56d6fd20dbc2251613b2ebe5beb"),
        false,
        "strongSwan",
    ),
    (KnownVendor::Xauth, &XAUTH, false, "XAuth"),
    (
        KnownVendor::CiscoUnity,
        &hex16(*b"12f5f28c457168a9702d9fe274cc0100"),
        false,
        "Cisco Unity",
    ),
    (
        KnownVendor::Fragmentation,
        &hex16(*b"4048b7d56ebce88525e7de7f00d6c2d3"),
        true,
        "FRAGMENTATION",
    ),
];

const XAUTH: [u8; 8] = [0x09, 0x00, 0x26, 0x89, 0xdf, 0xd6, 0xb7, 0x12];

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a hex digit"),
    }
}

/// 32 hex digits to 16 octets, at compile time.
const fn hex16(s: [u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = nibble(s[2 * i]) << 4 | nibble(s[2 * i + 1]);
        i += 1;
    }
    out
}

impl KnownVendor {
    /// Every known Vendor ID.
    pub const ALL: [KnownVendor; 9] = [
        KnownVendor::NatTRfc3947,
        KnownVendor::NatTDraft02,
        KnownVendor::NatTDraft02N,
        KnownVendor::NatTDraft03,
        KnownVendor::Dpd,
        KnownVendor::StrongSwan,
        KnownVendor::Xauth,
        KnownVendor::CiscoUnity,
        KnownVendor::Fragmentation,
    ];

    fn entry(self) -> &'static (KnownVendor, &'static [u8], bool, &'static str) {
        TABLE.iter().find(|e| e.0 == self).unwrap_or(&TABLE[0])
    }

    /// The octets to send in a Vendor ID payload.
    pub fn id(self) -> &'static [u8] {
        self.entry().1
    }

    /// The name for log lines (`received NAT-T (RFC 3947) vendor ID`).
    pub fn name(self) -> &'static str {
        self.entry().3
    }

    /// Which known Vendor ID `data` is, if any.
    pub fn identify(data: &[u8]) -> Option<KnownVendor> {
        TABLE
            .iter()
            .find(|(_, id, prefix, _)| {
                if *prefix {
                    data.starts_with(id) && (data.len() == id.len() || data.len() == id.len() + 4)
                } else {
                    data == *id
                }
            })
            .map(|e| e.0)
    }

    /// Whether it announces NAT traversal (RFC 3947 or a draft).
    pub fn nat_t(self) -> bool {
        matches!(
            self,
            KnownVendor::NatTRfc3947
                | KnownVendor::NatTDraft02
                | KnownVendor::NatTDraft02N
                | KnownVendor::NatTDraft03
        )
    }
}

impl fmt::Display for KnownVendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Vendor ID for a log line: its name, or its octets in hex.
#[derive(Debug, Clone, Copy)]
pub struct VendorIdText<'a>(pub &'a [u8]);

impl fmt::Display for VendorIdText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match KnownVendor::identify(self.0) {
            Some(v) => write!(f, "{v}"),
            None => {
                f.write_str("unknown ")?;
                for b in self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}
