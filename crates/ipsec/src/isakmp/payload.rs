//! The payloads (RFC 2408 s3.4-s3.16, RFC 2407 s4.6, RFC 3947 s3-s5).
//!
//! Each payload is parsed from its body (the octets after its generic
//! header) and emits that body back; the generic header is the chain's
//! ([`super::Builder`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::attr::{Attribute, IkeAttributes, IpsecAttributes};
use super::vendor::KnownVendor;
use super::{be16, be32, open_enum, Chain, Error, Level};

/// The most Proposal payloads in one SA payload.
pub const MAX_PROPOSALS: usize = 32;

/// The most Transform payloads in one Proposal payload (Windows offers
/// about 10 in Main Mode, iOS about 20).
pub const MAX_TRANSFORMS: usize = 64;

open_enum! {
    /// Next Payload Types (RFC 2408 s3.1, RFC 3947 s3.2 and s5; 130/131 are
    /// the NAT-D/NAT-OA numbers of draft-ietf-ipsec-nat-t-ike-02/03).
    pub enum PayloadType(u8) {
        /// NONE: the end of the chain.
        None = 0 => "NONE",
        /// Security Association.
        SecurityAssociation = 1 => "SA",
        /// Proposal (only inside an SA).
        Proposal = 2 => "PROPOSAL",
        /// Transform (only inside a Proposal).
        Transform = 3 => "TRANSFORM",
        /// Key Exchange.
        KeyExchange = 4 => "KE",
        /// Identification.
        Identification = 5 => "ID",
        /// Certificate.
        Certificate = 6 => "CERT",
        /// Certificate Request.
        CertificateRequest = 7 => "CERTREQ",
        /// Hash.
        Hash = 8 => "HASH",
        /// Signature.
        Signature = 9 => "SIG",
        /// Nonce.
        Nonce = 10 => "No",
        /// Notification.
        Notification = 11 => "N",
        /// Delete.
        Delete = 12 => "D",
        /// Vendor ID.
        VendorId = 13 => "V",
        /// NAT-D (RFC 3947 s3.2).
        NatD = 20 => "NAT-D",
        /// NAT-OA (RFC 3947 s5.2).
        NatOa = 21 => "NAT-OA",
        /// NAT-D of the drafts.
        NatDDraft = 130 => "NAT-D",
        /// NAT-OA of the drafts.
        NatOaDraft = 131 => "NAT-OA",
    }
}

/// Which numbering a NAT-T payload came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatTNumbering {
    /// RFC 3947: NAT-D 20, NAT-OA 21.
    Rfc3947,
    /// draft-ietf-ipsec-nat-t-ike-02/03: NAT-D 130, NAT-OA 131.
    Draft,
}

/// One payload of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Security Association (RFC 2408 s3.4).
    Sa(SaPayload),
    /// Key Exchange Data (RFC 2408 s3.7).
    KeyExchange(Vec<u8>),
    /// Identification (RFC 2408 s3.8, RFC 2407 s4.6.2).
    Identification(Identification),
    /// Certificate (RFC 2408 s3.9), opaque.
    Certificate {
        /// Certificate Encoding.
        encoding: u8,
        /// Certificate Data.
        data: Vec<u8>,
    },
    /// Certificate Request (RFC 2408 s3.10), opaque.
    CertificateRequest {
        /// Certificate Type.
        cert_type: u8,
        /// Certificate Authority.
        authority: Vec<u8>,
    },
    /// Hash Data (RFC 2408 s3.11).
    Hash(Vec<u8>),
    /// Signature Data (RFC 2408 s3.12).
    Signature(Vec<u8>),
    /// Nonce Data (RFC 2408 s3.13).
    Nonce(Vec<u8>),
    /// Notification (RFC 2408 s3.14).
    Notification(Notification),
    /// Delete (RFC 2408 s3.15).
    Delete(Delete),
    /// Vendor ID (RFC 2408 s3.16).
    VendorId(Vec<u8>),
    /// NAT-D: a hash of an address and port (RFC 3947 s3.2).
    NatD {
        /// 20 or 130.
        numbering: NatTNumbering,
        /// HASH of the address and port.
        hash: Vec<u8>,
    },
    /// NAT-OA: an original address (RFC 3947 s5.2).
    NatOa {
        /// 21 or 131.
        numbering: NatTNumbering,
        /// The address.
        address: IpAddr,
    },
    /// A payload type this implementation does not know; see
    /// [`super::Message::disposition`] for what RFC 2408 s5.2 says to do.
    Unknown {
        /// Its type.
        payload_type: u8,
        /// Its body.
        body: Vec<u8>,
    },
}

impl Payload {
    /// Parses a payload of type `ty` from its body (the octets after its
    /// generic header).
    pub fn parse(ty: PayloadType, body: &[u8]) -> Result<Payload, Error> {
        let need = |min: usize, what: &'static str| {
            if body.len() < min {
                Err(Error::PayloadLengthTooShort {
                    what,
                    length: (body.len() + 4) as u16,
                    min: min + 4,
                })
            } else {
                Ok(())
            }
        };
        Ok(match ty {
            PayloadType::SecurityAssociation => Payload::Sa(SaPayload::parse(body)?),
            PayloadType::KeyExchange => Payload::KeyExchange(body.to_vec()),
            PayloadType::Identification => {
                need(4, "ID")?;
                Payload::Identification(Identification {
                    id_type: body[0].into(),
                    protocol: body[1],
                    port: be16(&body[2..4]),
                    data: body[4..].to_vec(),
                })
            }
            PayloadType::Certificate => {
                need(1, "CERT")?;
                Payload::Certificate {
                    encoding: body[0],
                    data: body[1..].to_vec(),
                }
            }
            PayloadType::CertificateRequest => {
                need(1, "CERTREQ")?;
                Payload::CertificateRequest {
                    cert_type: body[0],
                    authority: body[1..].to_vec(),
                }
            }
            PayloadType::Hash => Payload::Hash(body.to_vec()),
            PayloadType::Signature => Payload::Signature(body.to_vec()),
            PayloadType::Nonce => Payload::Nonce(body.to_vec()),
            PayloadType::Notification => Payload::Notification(Notification::parse(body)?),
            PayloadType::Delete => Payload::Delete(Delete::parse(body)?),
            PayloadType::VendorId => Payload::VendorId(body.to_vec()),
            PayloadType::NatD | PayloadType::NatDDraft => Payload::NatD {
                numbering: numbering(ty),
                hash: body.to_vec(),
            },
            PayloadType::NatOa | PayloadType::NatOaDraft => {
                need(4, "NAT-OA")?;
                let address = match (IdType::from(body[0]), &body[4..]) {
                    (IdType::Ipv4Addr, a) if a.len() == 4 => {
                        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
                    }
                    (IdType::Ipv6Addr, a) if a.len() == 16 => {
                        let mut o = [0u8; 16];
                        o.copy_from_slice(a);
                        IpAddr::V6(Ipv6Addr::from(o))
                    }
                    _ => {
                        return Err(Error::Field {
                            what: "NAT-OA",
                            field: "ID Type",
                            value: u64::from(body[0]),
                            reason: "with an address of another length (RFC 3947 s5.2)",
                        })
                    }
                };
                if body[1..4] != [0, 0, 0] {
                    return Err(Error::Field {
                        what: "NAT-OA",
                        field: "RESERVED",
                        value: u64::from(be32(&[0, body[1], body[2], body[3]])),
                        reason: "is not zero (RFC 3947 s5.2)",
                    });
                }
                Payload::NatOa {
                    numbering: numbering(ty),
                    address,
                }
            }
            PayloadType::None | PayloadType::Proposal | PayloadType::Transform => {
                Payload::Unknown {
                    payload_type: ty.into(),
                    body: body.to_vec(),
                }
            }
            PayloadType::Unknown(t) => Payload::Unknown {
                payload_type: t,
                body: body.to_vec(),
            },
        })
    }

    /// Its Next Payload number.
    pub fn payload_type(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::SecurityAssociation,
            Payload::KeyExchange(_) => PayloadType::KeyExchange,
            Payload::Identification(_) => PayloadType::Identification,
            Payload::Certificate { .. } => PayloadType::Certificate,
            Payload::CertificateRequest { .. } => PayloadType::CertificateRequest,
            Payload::Hash(_) => PayloadType::Hash,
            Payload::Signature(_) => PayloadType::Signature,
            Payload::Nonce(_) => PayloadType::Nonce,
            Payload::Notification(_) => PayloadType::Notification,
            Payload::Delete(_) => PayloadType::Delete,
            Payload::VendorId(_) => PayloadType::VendorId,
            Payload::NatD { numbering, .. } => match numbering {
                NatTNumbering::Rfc3947 => PayloadType::NatD,
                NatTNumbering::Draft => PayloadType::NatDDraft,
            },
            Payload::NatOa { numbering, .. } => match numbering {
                NatTNumbering::Rfc3947 => PayloadType::NatOa,
                NatTNumbering::Draft => PayloadType::NatOaDraft,
            },
            Payload::Unknown { payload_type, .. } => PayloadType::from(*payload_type),
        }
    }

    /// Appends the body (everything after the generic header).
    pub fn emit_body(&self, buf: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            Payload::Sa(sa) => sa.emit_body(buf)?,
            Payload::KeyExchange(d)
            | Payload::Hash(d)
            | Payload::Signature(d)
            | Payload::Nonce(d)
            | Payload::VendorId(d)
            | Payload::NatD { hash: d, .. }
            | Payload::Unknown { body: d, .. } => buf.extend_from_slice(d),
            Payload::Identification(id) => {
                buf.push(id.id_type.into());
                buf.push(id.protocol);
                buf.extend_from_slice(&id.port.to_be_bytes());
                buf.extend_from_slice(&id.data);
            }
            Payload::Certificate { encoding, data } => {
                buf.push(*encoding);
                buf.extend_from_slice(data);
            }
            Payload::CertificateRequest {
                cert_type,
                authority,
            } => {
                buf.push(*cert_type);
                buf.extend_from_slice(authority);
            }
            Payload::Notification(n) => n.emit_body(buf)?,
            Payload::Delete(d) => d.emit_body(buf)?,
            Payload::NatOa { address, .. } => match address {
                IpAddr::V4(a) => {
                    buf.extend_from_slice(&[IdType::Ipv4Addr.into(), 0, 0, 0]);
                    buf.extend_from_slice(&a.octets());
                }
                IpAddr::V6(a) => {
                    buf.extend_from_slice(&[IdType::Ipv6Addr.into(), 0, 0, 0]);
                    buf.extend_from_slice(&a.octets());
                }
            },
        }
        Ok(())
    }

    /// The strongSwan log mnemonic: `SA`, `KE`, `No`, `ID`, `HASH`,
    /// `N(INITIAL_CONTACT)`, `D`, `V`, `NAT-D`, `NAT-OA`, ...
    pub fn mnemonic(&self) -> Mnemonic<'_> {
        Mnemonic(self)
    }

    /// The Vendor ID's name, if it is a Vendor ID this gateway knows.
    pub fn known_vendor(&self) -> Option<KnownVendor> {
        match self {
            Payload::VendorId(v) => KnownVendor::identify(v),
            _ => None,
        }
    }
}

fn numbering(ty: PayloadType) -> NatTNumbering {
    match ty {
        PayloadType::NatDDraft | PayloadType::NatOaDraft => NatTNumbering::Draft,
        _ => NatTNumbering::Rfc3947,
    }
}

/// See [`Payload::mnemonic`].
#[derive(Debug, Clone, Copy)]
pub struct Mnemonic<'a>(&'a Payload);

impl fmt::Display for Mnemonic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Payload::Notification(n) => write!(f, "N({})", n.notify_type.log_name()),
            Payload::Unknown { payload_type, .. } => write!(f, "U({payload_type})"),
            p => f.write_str(p.payload_type().name().unwrap_or("?")),
        }
    }
}

open_enum! {
    /// Domain of Interpretation (RFC 2408 s3.4, RFC 2407 s4.2).
    pub enum Doi(u32) {
        /// ISAKMP's own (Phase 1 in some peers' Notifications).
        Isakmp = 0 => "ISAKMP",
        /// The IPsec DOI.
        Ipsec = 1 => "IPSEC",
    }
}

/// Situation SIT_IDENTITY_ONLY (RFC 2407 s4.2.1).
pub const SIT_IDENTITY_ONLY: u32 = 1;

/// The Security Association payload (RFC 2408 s3.4) with its proposals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaPayload {
    /// Domain of Interpretation.
    pub doi: Doi,
    /// Situation (IPsec DOI: SIT_IDENTITY_ONLY).
    pub situation: u32,
    /// The proposals, in the peer's order of preference.
    pub proposals: Vec<Proposal>,
}

impl SaPayload {
    /// Parses an SA body: DOI, Situation, then Proposal payloads (RFC 2408
    /// s3.4; the first is a Proposal by definition, each names the next).
    pub fn parse(body: &[u8]) -> Result<SaPayload, Error> {
        if body.len() < 8 {
            return Err(Error::PayloadLengthTooShort {
                what: "SA",
                length: (body.len() + 4) as u16,
                min: 12,
            });
        }
        let doi = Doi::from(be32(&body[0..4]));
        let situation = be32(&body[4..8]);
        if doi == Doi::Ipsec && situation & !SIT_IDENTITY_ONLY != 0 {
            // RFC 2407 s4.2: SIT_SECRECY and SIT_INTEGRITY add a Labeled
            // Domain Identifier and labels, which this gateway does not do.
            return Err(Error::Field {
                what: "SA",
                field: "Situation",
                value: u64::from(situation),
                reason: "asks for SIT_SECRECY/SIT_INTEGRITY labels, not supported (RFC 2407 s4.2)",
            });
        }
        let mut proposals = Vec::new();
        let mut chain = Chain::new(Level::Sa, 2, &body[8..], MAX_PROPOSALS);
        while let Some((_, next, pbody)) = chain.step()? {
            if next != 0 && next != 2 {
                return Err(Error::NestedNextPayload {
                    what: "Proposal",
                    value: next,
                    allowed: 2,
                    parent: "SA",
                });
            }
            proposals.push(Proposal::parse(pbody)?);
        }
        if !chain.rest().is_empty() {
            return Err(Error::Leftover {
                what: "Proposal",
                parent: "SA",
                left: chain.rest().len(),
            });
        }
        Ok(SaPayload {
            doi,
            situation,
            proposals,
        })
    }

    fn emit_body(&self, buf: &mut Vec<u8>) -> Result<(), Error> {
        buf.extend_from_slice(&u32::from(self.doi).to_be_bytes());
        buf.extend_from_slice(&self.situation.to_be_bytes());
        let n = self.proposals.len();
        for (i, p) in self.proposals.iter().enumerate() {
            let at = buf.len();
            buf.extend_from_slice(&[if i + 1 < n { 2 } else { 0 }, 0, 0, 0]);
            p.emit_body(buf)?;
            patch_len(buf, at, "Proposal")?;
        }
        Ok(())
    }
}

fn patch_len(buf: &mut [u8], at: usize, what: &'static str) -> Result<(), Error> {
    let len = buf.len() - at;
    let len16 = u16::try_from(len).map_err(|_| Error::TooLong {
        what,
        len,
        bits: 16,
    })?;
    buf[at + 2..at + 4].copy_from_slice(&len16.to_be_bytes());
    Ok(())
}

open_enum! {
    /// Protocol-Id (RFC 2407 s4.4.1).
    pub enum ProtocolId(u8) {
        /// PROTO_ISAKMP: Phase 1.
        Isakmp = 1 => "ISAKMP",
        /// PROTO_IPSEC_AH.
        Ah = 2 => "AH",
        /// PROTO_IPSEC_ESP.
        Esp = 3 => "ESP",
        /// PROTO_IPCOMP.
        IpComp = 4 => "IPCOMP",
    }
}

/// A Proposal payload (RFC 2408 s3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// Proposal # (proposals with the same number are a conjunction).
    pub number: u8,
    /// Protocol-Id.
    pub protocol: ProtocolId,
    /// SPI (empty for ISAKMP in IKEv1; four octets for ESP).
    pub spi: Vec<u8>,
    /// The transforms, in the peer's order of preference.
    pub transforms: Vec<Transform>,
}

impl Proposal {
    /// Parses a Proposal body: fixed part, SPI, Transform payloads whose
    /// count is `# of Transforms`.
    pub fn parse(body: &[u8]) -> Result<Proposal, Error> {
        if body.len() < 4 {
            return Err(Error::PayloadLengthTooShort {
                what: "Proposal",
                length: (body.len() + 4) as u16,
                min: 8,
            });
        }
        let (number, protocol, spi_size, count) = (body[0], body[1], body[2], body[3]);
        let spi_end = 4 + usize::from(spi_size);
        if spi_end > body.len() {
            return Err(Error::Field {
                what: "Proposal",
                field: "SPI Size",
                value: u64::from(spi_size),
                reason: "runs past the Proposal",
            });
        }
        let mut transforms = Vec::new();
        let mut chain = Chain::new(
            Level::Proposal,
            3,
            &body[spi_end..],
            MAX_TRANSFORMS.min(usize::from(count)),
        );
        if count == 0 {
            return Err(Error::Field {
                what: "Proposal",
                field: "# of Transforms",
                value: 0,
                reason: "but a proposal needs one (RFC 2408 s3.5)",
            });
        }
        while let Some((_, next, tbody)) = chain.step().map_err(|e| match e {
            Error::TooMany { .. } if usize::from(count) <= MAX_TRANSFORMS => Error::Field {
                what: "Proposal",
                field: "# of Transforms",
                value: u64::from(count),
                reason: "is less than the Transform payloads that follow",
            },
            e => e,
        })? {
            if next != 0 && next != 3 {
                return Err(Error::NestedNextPayload {
                    what: "Transform",
                    value: next,
                    allowed: 3,
                    parent: "Proposal",
                });
            }
            transforms.push(Transform::parse(tbody)?);
        }
        if transforms.len() != usize::from(count) {
            return Err(Error::Field {
                what: "Proposal",
                field: "# of Transforms",
                value: u64::from(count),
                reason: "is more than the Transform payloads that follow",
            });
        }
        if !chain.rest().is_empty() {
            return Err(Error::Leftover {
                what: "Transform",
                parent: "Proposal",
                left: chain.rest().len(),
            });
        }
        Ok(Proposal {
            number,
            protocol: protocol.into(),
            spi: body[4..spi_end].to_vec(),
            transforms,
        })
    }

    fn emit_body(&self, buf: &mut Vec<u8>) -> Result<(), Error> {
        let spi_size = u8::try_from(self.spi.len()).map_err(|_| Error::TooLong {
            what: "SPI",
            len: self.spi.len(),
            bits: 8,
        })?;
        let count = u8::try_from(self.transforms.len()).map_err(|_| Error::TooLong {
            what: "Transforms",
            len: self.transforms.len(),
            bits: 8,
        })?;
        buf.extend_from_slice(&[self.number, self.protocol.into(), spi_size, count]);
        buf.extend_from_slice(&self.spi);
        let n = self.transforms.len();
        for (i, t) in self.transforms.iter().enumerate() {
            let at = buf.len();
            buf.extend_from_slice(&[if i + 1 < n { 3 } else { 0 }, 0, 0, 0]);
            buf.push(t.number);
            buf.push(t.transform_id);
            buf.extend_from_slice(&[0, 0]);
            for a in &t.attributes {
                a.emit(buf)?;
            }
            patch_len(buf, at, "Transform")?;
        }
        Ok(())
    }
}

/// KEY_IKE, the only Phase 1 Transform ID (RFC 2407 s4.4.2).
pub const KEY_IKE: u8 = 1;

/// A Transform payload (RFC 2408 s3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    /// Transform #.
    pub number: u8,
    /// Transform-Id (KEY_IKE for ISAKMP; an [`super::attr::EspTransformId`]
    /// for ESP).
    pub transform_id: u8,
    /// SA Attributes, in order.
    pub attributes: Vec<Attribute>,
}

impl Transform {
    /// Parses a Transform body.
    pub fn parse(body: &[u8]) -> Result<Transform, Error> {
        if body.len() < 4 {
            return Err(Error::PayloadLengthTooShort {
                what: "Transform",
                length: (body.len() + 4) as u16,
                min: 8,
            });
        }
        Ok(Transform {
            number: body[0],
            transform_id: body[1],
            attributes: Attribute::parse_all(&body[4..], "Transform")?,
        })
    }

    /// The attributes read as a Phase 1 transform's.
    pub fn ike(&self) -> IkeAttributes {
        IkeAttributes::from_attributes(&self.attributes)
    }

    /// The attributes read as an IPsec DOI transform's.
    pub fn ipsec(&self) -> IpsecAttributes {
        IpsecAttributes::from_attributes(&self.attributes)
    }
}

open_enum! {
    /// Identification Type (RFC 2407 s4.6.2.1).
    pub enum IdType(u8) {
        /// ID_IPV4_ADDR.
        Ipv4Addr = 1 => "ID_IPV4_ADDR",
        /// ID_FQDN.
        Fqdn = 2 => "ID_FQDN",
        /// ID_USER_FQDN.
        UserFqdn = 3 => "ID_USER_FQDN",
        /// ID_IPV4_ADDR_SUBNET.
        Ipv4AddrSubnet = 4 => "ID_IPV4_ADDR_SUBNET",
        /// ID_IPV6_ADDR.
        Ipv6Addr = 5 => "ID_IPV6_ADDR",
        /// ID_IPV6_ADDR_SUBNET.
        Ipv6AddrSubnet = 6 => "ID_IPV6_ADDR_SUBNET",
        /// ID_IPV4_ADDR_RANGE.
        Ipv4AddrRange = 7 => "ID_IPV4_ADDR_RANGE",
        /// ID_IPV6_ADDR_RANGE.
        Ipv6AddrRange = 8 => "ID_IPV6_ADDR_RANGE",
        /// ID_DER_ASN1_DN.
        DerAsn1Dn = 9 => "ID_DER_ASN1_DN",
        /// ID_DER_ASN1_GN.
        DerAsn1Gn = 10 => "ID_DER_ASN1_GN",
        /// ID_KEY_ID.
        KeyId = 11 => "ID_KEY_ID",
    }
}

/// The Identification payload (RFC 2408 s3.8 with the IPsec DOI's fields,
/// RFC 2407 s4.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    /// ID Type.
    pub id_type: IdType,
    /// Protocol ID (IP protocol, 0 = any; 17 for L2TP's UDP).
    pub protocol: u8,
    /// Port (0 = any; 1701 for L2TP).
    pub port: u16,
    /// Identification Data.
    pub data: Vec<u8>,
}

/// Identification Data, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdValue<'a> {
    /// ID_IPV4_ADDR, ID_IPV6_ADDR.
    Addr(IpAddr),
    /// ID_IPV4_ADDR_SUBNET, ID_IPV6_ADDR_SUBNET: address and mask.
    Subnet(IpAddr, IpAddr),
    /// ID_IPV4_ADDR_RANGE, ID_IPV6_ADDR_RANGE: first and last.
    Range(IpAddr, IpAddr),
    /// ID_FQDN, ID_USER_FQDN (octets as sent; RFC 2407 says ASCII).
    Name(&'a [u8]),
    /// ID_DER_ASN1_DN, ID_DER_ASN1_GN, ID_KEY_ID and unknown types.
    Opaque(&'a [u8]),
}

impl Identification {
    /// An ID_IPV4_ADDR identification.
    pub fn ipv4(addr: Ipv4Addr, protocol: u8, port: u16) -> Identification {
        Identification {
            id_type: IdType::Ipv4Addr,
            protocol,
            port,
            data: addr.octets().to_vec(),
        }
    }

    /// An ID_FQDN identification.
    pub fn fqdn(name: &str) -> Identification {
        Identification {
            id_type: IdType::Fqdn,
            protocol: 0,
            port: 0,
            data: name.as_bytes().to_vec(),
        }
    }

    /// The data as its type says, or an error naming the length that does
    /// not fit the type (RFC 2407 s4.6.2.2-s4.6.2.12).
    pub fn value(&self) -> Result<IdValue<'_>, Error> {
        let d = &self.data[..];
        let v4 = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        let v6 = |b: &[u8]| {
            let mut o = [0u8; 16];
            o.copy_from_slice(b);
            IpAddr::V6(Ipv6Addr::from(o))
        };
        let bad = || Error::Field {
            what: "ID",
            field: "Identification Data length",
            value: d.len() as u64,
            reason: "does not fit its ID Type",
        };
        Ok(match self.id_type {
            IdType::Ipv4Addr if d.len() == 4 => IdValue::Addr(v4(d)),
            IdType::Ipv6Addr if d.len() == 16 => IdValue::Addr(v6(d)),
            IdType::Ipv4AddrSubnet if d.len() == 8 => IdValue::Subnet(v4(d), v4(&d[4..])),
            IdType::Ipv4AddrRange if d.len() == 8 => IdValue::Range(v4(d), v4(&d[4..])),
            IdType::Ipv6AddrSubnet if d.len() == 32 => IdValue::Subnet(v6(d), v6(&d[16..])),
            IdType::Ipv6AddrRange if d.len() == 32 => IdValue::Range(v6(d), v6(&d[16..])),
            IdType::Ipv4Addr
            | IdType::Ipv6Addr
            | IdType::Ipv4AddrSubnet
            | IdType::Ipv4AddrRange
            | IdType::Ipv6AddrSubnet
            | IdType::Ipv6AddrRange => return Err(bad()),
            IdType::Fqdn | IdType::UserFqdn => IdValue::Name(d),
            _ => IdValue::Opaque(d),
        })
    }
}

open_enum! {
    /// Notify Message Types: RFC 2408 s3.14.1 errors and status, RFC 2407
    /// s4.6.3 IPsec DOI status, RFC 3706 s5 DPD.
    pub enum NotifyType(u16) {
        /// INVALID-PAYLOAD-TYPE.
        InvalidPayloadType = 1 => "INVALID-PAYLOAD-TYPE",
        /// DOI-NOT-SUPPORTED.
        DoiNotSupported = 2 => "DOI-NOT-SUPPORTED",
        /// SITUATION-NOT-SUPPORTED.
        SituationNotSupported = 3 => "SITUATION-NOT-SUPPORTED",
        /// INVALID-COOKIE.
        InvalidCookie = 4 => "INVALID-COOKIE",
        /// INVALID-MAJOR-VERSION.
        InvalidMajorVersion = 5 => "INVALID-MAJOR-VERSION",
        /// INVALID-MINOR-VERSION.
        InvalidMinorVersion = 6 => "INVALID-MINOR-VERSION",
        /// INVALID-EXCHANGE-TYPE.
        InvalidExchangeType = 7 => "INVALID-EXCHANGE-TYPE",
        /// INVALID-FLAGS.
        InvalidFlags = 8 => "INVALID-FLAGS",
        /// INVALID-MESSAGE-ID.
        InvalidMessageId = 9 => "INVALID-MESSAGE-ID",
        /// INVALID-PROTOCOL-ID.
        InvalidProtocolId = 10 => "INVALID-PROTOCOL-ID",
        /// INVALID-SPI.
        InvalidSpi = 11 => "INVALID-SPI",
        /// INVALID-TRANSFORM-ID.
        InvalidTransformId = 12 => "INVALID-TRANSFORM-ID",
        /// ATTRIBUTES-NOT-SUPPORTED.
        AttributesNotSupported = 13 => "ATTRIBUTES-NOT-SUPPORTED",
        /// NO-PROPOSAL-CHOSEN.
        NoProposalChosen = 14 => "NO-PROPOSAL-CHOSEN",
        /// BAD-PROPOSAL-SYNTAX.
        BadProposalSyntax = 15 => "BAD-PROPOSAL-SYNTAX",
        /// PAYLOAD-MALFORMED.
        PayloadMalformed = 16 => "PAYLOAD-MALFORMED",
        /// INVALID-KEY-INFORMATION.
        InvalidKeyInformation = 17 => "INVALID-KEY-INFORMATION",
        /// INVALID-ID-INFORMATION.
        InvalidIdInformation = 18 => "INVALID-ID-INFORMATION",
        /// INVALID-CERT-ENCODING.
        InvalidCertEncoding = 19 => "INVALID-CERT-ENCODING",
        /// INVALID-CERTIFICATE.
        InvalidCertificate = 20 => "INVALID-CERTIFICATE",
        /// CERT-TYPE-UNSUPPORTED.
        CertTypeUnsupported = 21 => "CERT-TYPE-UNSUPPORTED",
        /// INVALID-CERT-AUTHORITY.
        InvalidCertAuthority = 22 => "INVALID-CERT-AUTHORITY",
        /// INVALID-HASH-INFORMATION.
        InvalidHashInformation = 23 => "INVALID-HASH-INFORMATION",
        /// AUTHENTICATION-FAILED.
        AuthenticationFailed = 24 => "AUTHENTICATION-FAILED",
        /// INVALID-SIGNATURE.
        InvalidSignature = 25 => "INVALID-SIGNATURE",
        /// ADDRESS-NOTIFICATION.
        AddressNotification = 26 => "ADDRESS-NOTIFICATION",
        /// NOTIFY-SA-LIFETIME.
        NotifySaLifetime = 27 => "NOTIFY-SA-LIFETIME",
        /// CERTIFICATE-UNAVAILABLE.
        CertificateUnavailable = 28 => "CERTIFICATE-UNAVAILABLE",
        /// UNSUPPORTED-EXCHANGE-TYPE.
        UnsupportedExchangeType = 29 => "UNSUPPORTED-EXCHANGE-TYPE",
        /// UNEQUAL-PAYLOAD-LENGTHS.
        UnequalPayloadLengths = 30 => "UNEQUAL-PAYLOAD-LENGTHS",
        /// CONNECTED (RFC 2408 s3.14.1 status).
        Connected = 16384 => "CONNECTED",
        /// RESPONDER-LIFETIME (RFC 2407 s4.6.3.1).
        ResponderLifetime = 24576 => "RESPONDER-LIFETIME",
        /// REPLAY-STATUS (RFC 2407 s4.6.3.2).
        ReplayStatus = 24577 => "REPLAY-STATUS",
        /// INITIAL-CONTACT (RFC 2407 s4.6.3.3).
        InitialContact = 24578 => "INITIAL-CONTACT",
        /// R-U-THERE (RFC 3706 s5).
        RUThere = 36136 => "R-U-THERE",
        /// R-U-THERE-ACK (RFC 3706 s5).
        RUThereAck = 36137 => "R-U-THERE-ACK",
    }
}

impl NotifyType {
    /// The name strongSwan logs in `N(...)`: `INITIAL_CONTACT`, `DPD`,
    /// `DPD_ACK`, the RFC names with underscores otherwise, the number for
    /// an unknown type.
    pub fn log_name(self) -> String {
        match self {
            NotifyType::RUThere => "DPD".into(),
            NotifyType::RUThereAck => "DPD_ACK".into(),
            NotifyType::Unknown(n) => n.to_string(),
            t => t.name().unwrap_or_default().replace('-', "_"),
        }
    }

    /// Whether it is an error type (1-8191, RFC 2408 s3.14.1).
    pub fn is_error(self) -> bool {
        (1..8192).contains(&u16::from(self))
    }
}

/// The Notification payload (RFC 2408 s3.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Domain of Interpretation.
    pub doi: Doi,
    /// Protocol-ID.
    pub protocol: ProtocolId,
    /// Notify Message Type.
    pub notify_type: NotifyType,
    /// SPI (the two cookies for ISAKMP in RFC 3706 DPD).
    pub spi: Vec<u8>,
    /// Notification Data (a sequence number for DPD).
    pub data: Vec<u8>,
}

impl Notification {
    fn parse(body: &[u8]) -> Result<Notification, Error> {
        if body.len() < 8 {
            return Err(Error::PayloadLengthTooShort {
                what: "N",
                length: (body.len() + 4) as u16,
                min: 12,
            });
        }
        let spi_end = 8 + usize::from(body[5]);
        if spi_end > body.len() {
            return Err(Error::Field {
                what: "N",
                field: "SPI Size",
                value: u64::from(body[5]),
                reason: "runs past the Notification",
            });
        }
        Ok(Notification {
            doi: be32(&body[0..4]).into(),
            protocol: body[4].into(),
            notify_type: be16(&body[6..8]).into(),
            spi: body[8..spi_end].to_vec(),
            data: body[spi_end..].to_vec(),
        })
    }

    fn emit_body(&self, buf: &mut Vec<u8>) -> Result<(), Error> {
        let spi_size = u8::try_from(self.spi.len()).map_err(|_| Error::TooLong {
            what: "SPI",
            len: self.spi.len(),
            bits: 8,
        })?;
        buf.extend_from_slice(&u32::from(self.doi).to_be_bytes());
        buf.push(self.protocol.into());
        buf.push(spi_size);
        buf.extend_from_slice(&u16::from(self.notify_type).to_be_bytes());
        buf.extend_from_slice(&self.spi);
        buf.extend_from_slice(&self.data);
        Ok(())
    }

    /// RFC 3706 s5: an R-U-THERE or R-U-THERE-ACK for the ISAKMP SA with
    /// cookies `spi` and sequence number `seq`.
    pub fn dpd(ack: bool, spi: [u8; 16], seq: u32) -> Notification {
        Notification {
            doi: Doi::Ipsec,
            protocol: ProtocolId::Isakmp,
            notify_type: if ack {
                NotifyType::RUThereAck
            } else {
                NotifyType::RUThere
            },
            spi: spi.to_vec(),
            data: seq.to_be_bytes().to_vec(),
        }
    }
}

/// The Delete payload (RFC 2408 s3.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// Domain of Interpretation.
    pub doi: Doi,
    /// Protocol-Id.
    pub protocol: ProtocolId,
    /// SPI Size.
    pub spi_size: u8,
    /// The SPIs, each `spi_size` octets.
    pub spis: Vec<Vec<u8>>,
}

impl Delete {
    fn parse(body: &[u8]) -> Result<Delete, Error> {
        if body.len() < 8 {
            return Err(Error::PayloadLengthTooShort {
                what: "D",
                length: (body.len() + 4) as u16,
                min: 12,
            });
        }
        let spi_size = body[5];
        let count = be16(&body[6..8]);
        let spis = &body[8..];
        if spi_size == 0 && (count != 0 || !spis.is_empty())
            || spi_size != 0 && usize::from(spi_size) * usize::from(count) != spis.len()
        {
            return Err(Error::Field {
                what: "D",
                field: "# of SPIs",
                value: u64::from(count),
                reason: "times SPI Size is not the octets that follow",
            });
        }
        Ok(Delete {
            doi: be32(&body[0..4]).into(),
            protocol: body[4].into(),
            spi_size,
            spis: if spi_size == 0 {
                Vec::new()
            } else {
                spis.chunks(usize::from(spi_size))
                    .map(<[u8]>::to_vec)
                    .collect()
            },
        })
    }

    fn emit_body(&self, buf: &mut Vec<u8>) -> Result<(), Error> {
        let count = u16::try_from(self.spis.len()).map_err(|_| Error::TooLong {
            what: "D",
            len: self.spis.len(),
            bits: 16,
        })?;
        buf.extend_from_slice(&u32::from(self.doi).to_be_bytes());
        buf.push(self.protocol.into());
        buf.push(self.spi_size);
        buf.extend_from_slice(&count.to_be_bytes());
        for s in &self.spis {
            if s.len() != usize::from(self.spi_size) {
                return Err(Error::Field {
                    what: "D",
                    field: "SPI",
                    value: s.len() as u64,
                    reason: "octets long, not SPI Size",
                });
            }
            buf.extend_from_slice(s);
        }
        Ok(())
    }
}
