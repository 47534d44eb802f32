//! Data attributes (RFC 2408 s3.3) and what they mean in an IKEv1 Phase 1
//! transform (RFC 2409 Appendix A) and in an IPsec DOI transform
//! (RFC 2407 s4.5, RFC 3947 s4 for the UDP encapsulation modes).

use super::{be16, open_enum, Error};

/// The most attributes one transform may carry (a Phase 1 transform has
/// about 7, an ESP one about 5).
pub const MAX_ATTRIBUTES: usize = 32;

/// The value of a data attribute (RFC 2408 s3.3): Attribute Format bit 1
/// is Type/Value (TV, two octets), bit 0 Type/Length/Value (TLV).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttrValue {
    /// AF = 1: the value in the Attribute Length field's place.
    Basic(u16),
    /// AF = 0: a length and that many octets.
    Variable(Vec<u8>),
}

/// One data attribute (RFC 2408 s3.3), in the form it arrived in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// Attribute Type (15 bits; the meaning depends on the DOI and
    /// protocol).
    pub attribute_type: u16,
    /// Its value.
    pub value: AttrValue,
}

impl Attribute {
    /// A TV attribute.
    pub fn basic(attribute_type: u16, value: u16) -> Attribute {
        Attribute {
            attribute_type: attribute_type & 0x7fff,
            value: AttrValue::Basic(value),
        }
    }

    /// A TLV attribute.
    pub fn variable(attribute_type: u16, value: &[u8]) -> Attribute {
        Attribute {
            attribute_type: attribute_type & 0x7fff,
            value: AttrValue::Variable(value.to_vec()),
        }
    }

    /// The value as a number: a TV value, or a TLV value of at most eight
    /// octets (Life Duration may come either way, RFC 2409 Appendix A).
    pub fn number(&self) -> Option<u64> {
        match &self.value {
            AttrValue::Basic(v) => Some(u64::from(*v)),
            AttrValue::Variable(b) if b.len() <= 8 => {
                Some(b.iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x)))
            }
            AttrValue::Variable(_) => None,
        }
    }

    /// Parses the attributes filling `bytes` (a transform's tail); `parent`
    /// names it in errors.
    pub fn parse_all(bytes: &[u8], parent: &'static str) -> Result<Vec<Attribute>, Error> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            if out.len() == MAX_ATTRIBUTES {
                return Err(Error::TooMany {
                    what: "attributes",
                    parent,
                    limit: MAX_ATTRIBUTES,
                });
            }
            if rest.len() < 4 {
                return Err(Error::Truncated {
                    what: "attribute",
                    need: 4,
                    have: rest.len(),
                });
            }
            let af_type = be16(&rest[0..2]);
            let second = be16(&rest[2..4]);
            let attribute_type = af_type & 0x7fff;
            if af_type & 0x8000 != 0 {
                out.push(Attribute::basic(attribute_type, second));
                rest = &rest[4..];
            } else {
                let len = usize::from(second);
                if 4 + len > rest.len() {
                    return Err(Error::AttributePastParent {
                        attribute_type,
                        length: second,
                        parent,
                        room: rest.len() - 4,
                    });
                }
                out.push(Attribute::variable(attribute_type, &rest[4..4 + len]));
                rest = &rest[4 + len..];
            }
        }
        Ok(out)
    }

    /// Appends the attribute.
    pub fn emit(&self, buf: &mut Vec<u8>) -> Result<(), Error> {
        match &self.value {
            AttrValue::Basic(v) => {
                buf.extend_from_slice(&(0x8000 | self.attribute_type).to_be_bytes());
                buf.extend_from_slice(&v.to_be_bytes());
            }
            AttrValue::Variable(b) => {
                let len = u16::try_from(b.len()).map_err(|_| Error::TooLong {
                    what: "attribute",
                    len: b.len(),
                    bits: 16,
                })?;
                buf.extend_from_slice(&(self.attribute_type & 0x7fff).to_be_bytes());
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend_from_slice(b);
            }
        }
        Ok(())
    }
}

open_enum! {
    /// Phase 1 attribute classes (RFC 2409 Appendix A).
    pub enum IkeAttr(u16) {
        /// Encryption Algorithm (B).
        EncryptionAlgorithm = 1 => "ENCRYPTION_ALGORITHM",
        /// Hash Algorithm (B).
        HashAlgorithm = 2 => "HASH_ALGORITHM",
        /// Authentication Method (B).
        AuthenticationMethod = 3 => "AUTH_METHOD",
        /// Group Description (B).
        GroupDescription = 4 => "GROUP",
        /// Group Type (B).
        GroupType = 5 => "GROUP_TYPE",
        /// Life Type (B).
        LifeType = 11 => "LIFE_TYPE",
        /// Life Duration (V).
        LifeDuration = 12 => "LIFE_DURATION",
        /// PRF (B).
        Prf = 13 => "PRF",
        /// Key Length (B).
        KeyLength = 14 => "KEY_LENGTH",
    }
}

open_enum! {
    /// IPsec DOI SA attributes (RFC 2407 s4.5).
    pub enum IpsecAttr(u16) {
        /// SA Life Type (B).
        SaLifeType = 1 => "SA_LIFE_TYPE",
        /// SA Life Duration (V).
        SaLifeDuration = 2 => "SA_LIFE_DURATION",
        /// Group Description (B): PFS.
        GroupDescription = 3 => "GROUP",
        /// Encapsulation Mode (B).
        EncapsulationMode = 4 => "ENCAP",
        /// Authentication Algorithm (B).
        AuthenticationAlgorithm = 5 => "AUTH_ALGORITHM",
        /// Key Length (B).
        KeyLength = 6 => "KEY_LENGTH",
        /// Key Rounds (B).
        KeyRounds = 7 => "KEY_ROUNDS",
    }
}

open_enum! {
    /// Phase 1 Encryption Algorithm (RFC 2409 Appendix A, RFC 3602 s5 for
    /// AES).
    pub enum IkeEncryption(u16) {
        /// DES-CBC.
        DesCbc = 1 => "DES_CBC",
        /// 3DES-CBC.
        TripleDesCbc = 5 => "3DES_CBC",
        /// CAST-CBC.
        CastCbc = 6 => "CAST_CBC",
        /// AES-CBC (with Key Length).
        AesCbc = 7 => "AES_CBC",
    }
}

open_enum! {
    /// Phase 1 Hash Algorithm (RFC 2409 Appendix A, RFC 4868 s4 for SHA-2).
    pub enum IkeHash(u16) {
        /// MD5.
        Md5 = 1 => "MD5",
        /// SHA-1.
        Sha1 = 2 => "SHA1",
        /// SHA2-256.
        Sha256 = 4 => "SHA2_256",
        /// SHA2-384.
        Sha384 = 5 => "SHA2_384",
        /// SHA2-512.
        Sha512 = 6 => "SHA2_512",
    }
}

open_enum! {
    /// Authentication Method (RFC 2409 Appendix A; XAUTH variants from
    /// draft-beaulieu-ike-xauth).
    pub enum AuthMethod(u16) {
        /// Pre-shared key.
        PreSharedKey = 1 => "PSK",
        /// DSS signatures.
        DssSignatures = 2 => "DSS_SIG",
        /// RSA signatures.
        RsaSignatures = 3 => "RSA_SIG",
        /// Encryption with RSA.
        RsaEncryption = 4 => "RSA_ENC",
        /// Revised encryption with RSA.
        RsaRevisedEncryption = 5 => "RSA_ENC_REV",
        /// XAUTH initiator, pre-shared key.
        XauthInitPsk = 65001 => "XAUTH_INIT_PSK",
        /// XAUTH responder, pre-shared key.
        XauthRespPsk = 65002 => "XAUTH_RESP_PSK",
    }
}

open_enum! {
    /// Group Description (RFC 2409 s6, RFC 3526, RFC 5903): the IANA
    /// Diffie-Hellman group numbers.
    pub enum Group(u16) {
        /// 768-bit MODP (RFC 2409 s6.1).
        Modp768 = 1 => "MODP_768",
        /// 1024-bit MODP (RFC 2409 s6.2).
        Modp1024 = 2 => "MODP_1024",
        /// 1536-bit MODP (RFC 3526 s2).
        Modp1536 = 5 => "MODP_1536",
        /// 2048-bit MODP (RFC 3526 s3).
        Modp2048 = 14 => "MODP_2048",
        /// 3072-bit MODP (RFC 3526 s4).
        Modp3072 = 15 => "MODP_3072",
        /// 4096-bit MODP (RFC 3526 s5).
        Modp4096 = 16 => "MODP_4096",
        /// 256-bit random ECP (RFC 5903).
        Ecp256 = 19 => "ECP_256",
        /// 384-bit random ECP (RFC 5903).
        Ecp384 = 20 => "ECP_384",
        /// 521-bit random ECP (RFC 5903).
        Ecp521 = 21 => "ECP_521",
        /// Curve25519 (RFC 8031).
        Curve25519 = 31 => "CURVE_25519",
    }
}

open_enum! {
    /// Life Type (RFC 2409 Appendix A; the same numbers in RFC 2407 s4.5).
    pub enum LifeType(u16) {
        /// Seconds.
        Seconds = 1 => "SECONDS",
        /// Kilobytes.
        Kilobytes = 2 => "KILOBYTES",
    }
}

open_enum! {
    /// Encapsulation Mode (RFC 2407 s4.5, RFC 3947 s4; the draft values
    /// 61443/61444 of draft-ietf-ipsec-nat-t-ike-0x that Windows and older
    /// peers send).
    pub enum EncapsulationMode(u16) {
        /// Tunnel.
        Tunnel = 1 => "TUNNEL",
        /// Transport.
        Transport = 2 => "TRANSPORT",
        /// UDP-Encapsulated-Tunnel (RFC 3947).
        UdpTunnel = 3 => "UDP_TUNNEL",
        /// UDP-Encapsulated-Transport (RFC 3947).
        UdpTransport = 4 => "UDP_TRANSPORT",
        /// UDP-Encapsulated-Tunnel of the drafts.
        UdpTunnelDraft = 61443 => "UDP_TUNNEL_DRAFT",
        /// UDP-Encapsulated-Transport of the drafts.
        UdpTransportDraft = 61444 => "UDP_TRANSPORT_DRAFT",
    }
}

impl EncapsulationMode {
    /// Whether ESP goes inside UDP (RFC 3948).
    pub fn udp(self) -> bool {
        matches!(
            self,
            EncapsulationMode::UdpTunnel
                | EncapsulationMode::UdpTransport
                | EncapsulationMode::UdpTunnelDraft
                | EncapsulationMode::UdpTransportDraft
        )
    }

    /// Whether it is a tunnel mode.
    pub fn tunnel(self) -> bool {
        matches!(
            self,
            EncapsulationMode::Tunnel
                | EncapsulationMode::UdpTunnel
                | EncapsulationMode::UdpTunnelDraft
        )
    }
}

open_enum! {
    /// IPsec DOI Authentication Algorithm (RFC 2407 s4.5, RFC 4868 s4).
    pub enum EspAuth(u16) {
        /// HMAC-MD5-96.
        HmacMd5 = 1 => "HMAC_MD5_96",
        /// HMAC-SHA1-96.
        HmacSha1 = 2 => "HMAC_SHA1_96",
        /// HMAC-SHA2-256-128.
        HmacSha256 = 5 => "HMAC_SHA2_256_128",
        /// HMAC-SHA2-384-192.
        HmacSha384 = 6 => "HMAC_SHA2_384_192",
        /// HMAC-SHA2-512-256.
        HmacSha512 = 7 => "HMAC_SHA2_512_256",
    }
}

open_enum! {
    /// IPsec DOI ESP Transform Identifiers (RFC 2407 s4.4.4, RFC 3602,
    /// RFC 4106 s8.1).
    pub enum EspTransformId(u8) {
        /// ESP_DES.
        Des = 2 => "DES_CBC",
        /// ESP_3DES.
        TripleDes = 3 => "3DES_CBC",
        /// ESP_NULL.
        Null = 11 => "NULL",
        /// ESP_AES (CBC, with Key Length).
        AesCbc = 12 => "AES_CBC",
        /// AES-GCM with an 8-octet ICV.
        AesGcm8 = 18 => "AES_GCM_8",
        /// AES-GCM with a 12-octet ICV.
        AesGcm12 = 19 => "AES_GCM_12",
        /// AES-GCM with a 16-octet ICV.
        AesGcm16 = 20 => "AES_GCM_16",
    }
}

/// A Phase 1 transform's attributes, typed (RFC 2409 Appendix A). A class
/// that appears twice keeps its first value; the lifetimes keep every
/// (type, duration) pair in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IkeAttributes {
    /// Encryption Algorithm.
    pub encryption: Option<IkeEncryption>,
    /// Key Length in bits.
    pub key_length: Option<u16>,
    /// Hash Algorithm.
    pub hash: Option<IkeHash>,
    /// Authentication Method.
    pub auth: Option<AuthMethod>,
    /// Group Description.
    pub group: Option<Group>,
    /// (Life Type, Life Duration) pairs.
    pub lifetimes: Vec<(LifeType, u64)>,
    /// Attribute types not listed above.
    pub other: Vec<u16>,
}

impl IkeAttributes {
    /// Reads the attributes of a Phase 1 transform.
    pub fn from_attributes(attributes: &[Attribute]) -> IkeAttributes {
        let mut out = IkeAttributes::default();
        let mut life = None;
        for a in attributes {
            let basic = match a.value {
                AttrValue::Basic(v) => Some(v),
                AttrValue::Variable(_) => None,
            };
            match (IkeAttr::from(a.attribute_type), basic) {
                (IkeAttr::EncryptionAlgorithm, Some(v)) => {
                    out.encryption.get_or_insert(v.into());
                }
                (IkeAttr::HashAlgorithm, Some(v)) => {
                    out.hash.get_or_insert(v.into());
                }
                (IkeAttr::AuthenticationMethod, Some(v)) => {
                    out.auth.get_or_insert(v.into());
                }
                (IkeAttr::GroupDescription, Some(v)) => {
                    out.group.get_or_insert(v.into());
                }
                (IkeAttr::KeyLength, Some(v)) => {
                    out.key_length.get_or_insert(v);
                }
                (IkeAttr::LifeType, Some(v)) => life = Some(LifeType::from(v)),
                (IkeAttr::LifeDuration, _) => {
                    if let (Some(t), Some(d)) = (life.take(), a.number()) {
                        out.lifetimes.push((t, d));
                    }
                }
                _ => out.other.push(a.attribute_type),
            }
        }
        out
    }
}

/// An IPsec DOI transform's attributes, typed (RFC 2407 s4.5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpsecAttributes {
    /// Encapsulation Mode.
    pub mode: Option<EncapsulationMode>,
    /// Authentication Algorithm (none for AES-GCM).
    pub auth: Option<EspAuth>,
    /// Key Length in bits.
    pub key_length: Option<u16>,
    /// Group Description: the PFS group.
    pub group: Option<Group>,
    /// (SA Life Type, SA Life Duration) pairs.
    pub lifetimes: Vec<(LifeType, u64)>,
    /// Attribute types not listed above.
    pub other: Vec<u16>,
}

impl IpsecAttributes {
    /// Reads the attributes of an IPsec DOI (ESP, AH) transform.
    pub fn from_attributes(attributes: &[Attribute]) -> IpsecAttributes {
        let mut out = IpsecAttributes::default();
        let mut life = None;
        for a in attributes {
            let basic = match a.value {
                AttrValue::Basic(v) => Some(v),
                AttrValue::Variable(_) => None,
            };
            match (IpsecAttr::from(a.attribute_type), basic) {
                (IpsecAttr::EncapsulationMode, Some(v)) => {
                    out.mode.get_or_insert(v.into());
                }
                (IpsecAttr::AuthenticationAlgorithm, Some(v)) => {
                    out.auth.get_or_insert(v.into());
                }
                (IpsecAttr::KeyLength, Some(v)) => {
                    out.key_length.get_or_insert(v);
                }
                (IpsecAttr::GroupDescription, Some(v)) => {
                    out.group.get_or_insert(v.into());
                }
                (IpsecAttr::SaLifeType, Some(v)) => life = Some(LifeType::from(v)),
                (IpsecAttr::SaLifeDuration, _) => {
                    if let (Some(t), Some(d)) = (life.take(), a.number()) {
                        out.lifetimes.push((t, d));
                    }
                }
                _ => out.other.push(a.attribute_type),
            }
        }
        out
    }
}
