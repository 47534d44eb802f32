//! What the exchanges share: building SA payloads from configured
//! proposals, payload chains as hashed (RFC 2409 s5.5 hashes payloads "with
//! their generic headers"), encryption of a whole message, ID payloads and
//! traffic selectors, NAT-D hashes (RFC 3947 s3.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::isakmp::attr::{
    AuthMethod, EncapsulationMode, EspAuth, EspTransformId, Group, IkeAttr, IkeEncryption, IkeHash,
    IpsecAttr, LifeType,
};
use crate::isakmp::payload::{
    Doi, IdType, IdValue, Identification, ProtocolId, SaPayload, KEY_IKE, SIT_IDENTITY_ONLY,
};
use crate::isakmp::proposal::{Encryption, Integrity, Proposals};
use crate::isakmp::{self, Attribute, Header, Message, Payload, PayloadType, Proposal, Transform};
use tsunagi_crypto::dh::DhGroup;

use super::keys::{self, Phase1Keys};
use super::{Identity, TrafficSelector};

/// The payloads of `payloads` as a chain, each with its generic header,
/// the last with Next Payload NONE: what HASH(1) and HASH(2) cover.
pub(crate) fn chain_bytes(payloads: &[Payload]) -> Result<Vec<u8>, isakmp::Error> {
    let header = Header {
        initiator_spi: [0; 8],
        responder_spi: [0; 8],
        exchange: isakmp::ExchangeType::QuickMode,
        flags: isakmp::Flags(0),
        message_id: 0,
    };
    let mut m = Message::new(header);
    m.payloads = payloads.to_vec();
    let mut buf = Vec::new();
    m.emit(&mut buf)?;
    Ok(buf.split_off(isakmp::HEADER_LEN))
}

/// The body of one payload (what SAi_b, IDii_b, Ni_b denote).
pub(crate) fn body(payload: &Payload) -> Result<Vec<u8>, isakmp::Error> {
    let mut buf = Vec::new();
    payload.emit_body(&mut buf)?;
    Ok(buf)
}

/// A message whose payloads are encrypted (RFC 2408 s3.1, RFC 2409 s5.3):
/// the header with the E flag, then the chain in CBC with `iv` (updated to
/// the last ciphertext block).
pub(crate) fn encrypted_message(
    header: Header,
    payloads: &[Payload],
    keys: &Phase1Keys,
    iv: &mut Vec<u8>,
) -> Result<Vec<u8>, String> {
    let first = payloads
        .first()
        .map(Payload::payload_type)
        .unwrap_or(PayloadType::None);
    let plain = chain_bytes(payloads).map_err(|e| e.to_string())?;
    let ciphertext = keys::encrypt(keys, iv, &plain).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(isakmp::HEADER_LEN + ciphertext.len());
    isakmp::emit_encrypted(header, first, &ciphertext, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A message in the clear.
pub(crate) fn clear_message(header: Header, payloads: Vec<Payload>) -> Result<Vec<u8>, String> {
    let mut m = Message::new(header);
    m.payloads = payloads;
    m.to_vec().map_err(|e| e.to_string())
}

/// Whether IKEv1 here can use `i` as its hash and PRF.
pub(crate) fn prf_supported(i: Integrity) -> bool {
    !matches!(i, Integrity::Md5)
}

/// The DH group of an ISAKMP group number, if implemented.
pub(crate) fn dh_group(group: Group) -> Option<DhGroup> {
    Some(match group {
        Group::Modp1024 => DhGroup::Modp1024,
        Group::Modp1536 => DhGroup::Modp1536,
        Group::Modp2048 => DhGroup::Modp2048,
        Group::Ecp256 => DhGroup::Ecp256,
        _ => return None,
    })
}

fn ike_encryption(e: Encryption) -> Option<(IkeEncryption, Option<u16>)> {
    match e {
        Encryption::TripleDes => Some((IkeEncryption::TripleDesCbc, None)),
        Encryption::AesCbc(bits) => Some((IkeEncryption::AesCbc, Some(bits))),
        Encryption::AesGcm(..) => None,
    }
}

fn ike_hash(i: Integrity) -> IkeHash {
    match i {
        Integrity::Md5 => IkeHash::Md5,
        Integrity::Sha1 => IkeHash::Sha1,
        Integrity::Sha256 => IkeHash::Sha256,
        Integrity::Sha384 => IkeHash::Sha384,
        Integrity::Sha512 => IkeHash::Sha512,
    }
}

fn esp_auth(i: Integrity) -> EspAuth {
    match i {
        Integrity::Md5 => EspAuth::HmacMd5,
        Integrity::Sha1 => EspAuth::HmacSha1,
        Integrity::Sha256 => EspAuth::HmacSha256,
        Integrity::Sha384 => EspAuth::HmacSha384,
        Integrity::Sha512 => EspAuth::HmacSha512,
    }
}

/// A lifetime in seconds as an attribute value (basic when it fits 16
/// bits, variable otherwise: RFC 2408 s3.3).
fn life_attr(attr: u16, seconds: u64) -> Attribute {
    match u16::try_from(seconds) {
        Ok(s) => Attribute::basic(attr, s),
        Err(_) => {
            let v = u32::try_from(seconds).unwrap_or(u32::MAX);
            Attribute::variable(attr, &v.to_be_bytes())
        }
    }
}

/// Main Mode's SA payload: one ISAKMP proposal with a transform per
/// combination of our algorithms the engine implements (RFC 2409 s5:
/// "multiple transforms in a single proposal").
pub(crate) fn ike_sa_payload(proposals: &Proposals, lifetime_secs: u64) -> SaPayload {
    let mut transforms = Vec::new();
    for p in proposals.effective() {
        for &e in &p.encryption {
            let Some((enc, key_len)) = ike_encryption(e) else {
                continue;
            };
            for &i in &p.integrity {
                for &g in &p.groups {
                    if dh_group(g).is_none() || !prf_supported(i) {
                        continue;
                    }
                    let mut attributes = vec![Attribute::basic(
                        IkeAttr::EncryptionAlgorithm.into(),
                        enc.into(),
                    )];
                    if let Some(bits) = key_len {
                        attributes.push(Attribute::basic(IkeAttr::KeyLength.into(), bits));
                    }
                    attributes.extend([
                        Attribute::basic(IkeAttr::HashAlgorithm.into(), ike_hash(i).into()),
                        Attribute::basic(
                            IkeAttr::AuthenticationMethod.into(),
                            AuthMethod::PreSharedKey.into(),
                        ),
                        Attribute::basic(IkeAttr::GroupDescription.into(), g.into()),
                        Attribute::basic(IkeAttr::LifeType.into(), LifeType::Seconds.into()),
                        life_attr(IkeAttr::LifeDuration.into(), lifetime_secs),
                    ]);
                    transforms.push(Transform {
                        number: (transforms.len() + 1).min(255) as u8,
                        transform_id: KEY_IKE,
                        attributes,
                    });
                }
            }
        }
    }
    SaPayload {
        doi: Doi::Ipsec,
        situation: SIT_IDENTITY_ONLY,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Isakmp,
            spi: Vec::new(),
            transforms,
        }],
    }
}

/// Quick Mode's SA payload: one ESP proposal with our inbound SPI and a
/// transform per combination (RFC 2407 s4.4.4, s4.5).
pub(crate) fn esp_sa_payload(
    proposals: &Proposals,
    spi: u32,
    mode: EncapsulationMode,
    lifetime_secs: u64,
) -> SaPayload {
    let mut transforms = Vec::new();
    for p in proposals.effective() {
        let groups: Vec<Option<Group>> = if p.groups.is_empty() {
            vec![None]
        } else {
            p.groups
                .iter()
                .copied()
                .filter(|g| dh_group(*g).is_some())
                .map(Some)
                .collect()
        };
        let integrity: Vec<Option<Integrity>> = if p.integrity.is_empty() {
            vec![None]
        } else {
            p.integrity.iter().copied().map(Some).collect()
        };
        for &e in &p.encryption {
            let (id, key_len) = match e {
                Encryption::TripleDes => (EspTransformId::TripleDes, None),
                Encryption::AesCbc(b) => (EspTransformId::AesCbc, Some(b)),
                Encryption::AesGcm(b, 16) => (EspTransformId::AesGcm16, Some(b)),
                // ESP here implements the 16-octet ICV only.
                Encryption::AesGcm(..) => continue,
            };
            for &i in &integrity {
                if !esp_supported(e, i) {
                    continue;
                }
                for &g in &groups {
                    let mut attributes = vec![
                        Attribute::basic(IpsecAttr::SaLifeType.into(), LifeType::Seconds.into()),
                        life_attr(IpsecAttr::SaLifeDuration.into(), lifetime_secs),
                        Attribute::basic(IpsecAttr::EncapsulationMode.into(), mode.into()),
                    ];
                    if let Some(i) = i {
                        attributes.push(Attribute::basic(
                            IpsecAttr::AuthenticationAlgorithm.into(),
                            esp_auth(i).into(),
                        ));
                    }
                    if let Some(bits) = key_len {
                        attributes.push(Attribute::basic(IpsecAttr::KeyLength.into(), bits));
                    }
                    if let Some(g) = g {
                        attributes.push(Attribute::basic(
                            IpsecAttr::GroupDescription.into(),
                            g.into(),
                        ));
                    }
                    transforms.push(Transform {
                        number: (transforms.len() + 1).min(255) as u8,
                        transform_id: id.into(),
                        attributes,
                    });
                }
            }
        }
    }
    SaPayload {
        doi: Doi::Ipsec,
        situation: SIT_IDENTITY_ONLY,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Esp,
            spi: spi.to_be_bytes().to_vec(),
            transforms,
        }],
    }
}

/// Whether the ESP engine implements this combination.
pub(crate) fn esp_supported(e: Encryption, i: Option<Integrity>) -> bool {
    match (e, i) {
        (Encryption::AesGcm(b, 16), None) => b == 128 || b == 256,
        (
            Encryption::AesCbc(_) | Encryption::TripleDes,
            Some(Integrity::Sha1 | Integrity::Sha256),
        ) => true,
        _ => false,
    }
}

/// The ESP transform for agreed algorithms, and the key material lengths
/// (encryption, integrity) that KEYMAT is cut into (RFC 2409 s5.5: the
/// encryption key first).
pub(crate) fn esp_transform(
    e: Encryption,
    i: Option<Integrity>,
) -> Option<(crate::esp::Transform, usize, usize)> {
    use crate::esp::{Integrity as EI, Transform as T};
    let integ = |i| match i {
        Some(Integrity::Sha1) => Some((EI::HmacSha1_96, 20)),
        Some(Integrity::Sha256) => Some((EI::HmacSha256_128, 32)),
        _ => None,
    };
    Some(match e {
        Encryption::AesGcm(bits, 16) if i.is_none() => (T::AesGcm16, usize::from(bits / 8) + 4, 0),
        Encryption::AesCbc(bits) => {
            let (m, len) = integ(i)?;
            (T::AesCbc(m), usize::from(bits / 8), len)
        }
        Encryption::TripleDes => {
            let (m, len) = integ(i)?;
            (T::TripleDesCbc(m), 24, len)
        }
        _ => return None,
    })
}

/// Our identity as an ID payload (Main Mode: protocol and port 0, or as
/// strongSwan sends: 17/500; RFC 2407 s4.6.2 allows either).
pub(crate) fn identity_payload(id: &Identity) -> Identification {
    match id {
        Identity::Address(IpAddr::V4(a)) => Identification::ipv4(*a, 0, 0),
        Identity::Address(IpAddr::V6(a)) => Identification {
            id_type: IdType::Ipv6Addr,
            protocol: 0,
            port: 0,
            data: a.octets().to_vec(),
        },
        Identity::Fqdn(n) => Identification::fqdn(n),
        Identity::UserFqdn(n) => Identification {
            id_type: IdType::UserFqdn,
            protocol: 0,
            port: 0,
            data: n.as_bytes().to_vec(),
        },
    }
}

/// The identity an ID payload names, if it is one of the kinds we match.
pub(crate) fn identity_of(id: &Identification) -> Option<Identity> {
    match id.value().ok()? {
        IdValue::Addr(a) => Some(Identity::Address(a)),
        IdValue::Name(n) => {
            let s = String::from_utf8_lossy(n).into_owned();
            Some(if id.id_type == IdType::UserFqdn {
                Identity::UserFqdn(s)
            } else {
                Identity::Fqdn(s)
            })
        }
        _ => None,
    }
}

fn mask_v4(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    })
}

fn mask_v6(prefix: u8) -> Ipv6Addr {
    Ipv6Addr::from(if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix.min(128)))
    })
}

/// A selector as a Quick Mode ID payload (RFC 2407 s4.6.2): a host as
/// ID_IPVx_ADDR, a subnet as ID_IPVx_ADDR_SUBNET.
pub(crate) fn selector_payload(ts: &TrafficSelector) -> Identification {
    match ts.addr {
        IpAddr::V4(a) if ts.prefix >= 32 => Identification::ipv4(a, ts.protocol, ts.port),
        IpAddr::V4(a) => {
            let mut data = a.octets().to_vec();
            data.extend_from_slice(&mask_v4(ts.prefix).octets());
            Identification {
                id_type: IdType::Ipv4AddrSubnet,
                protocol: ts.protocol,
                port: ts.port,
                data,
            }
        }
        IpAddr::V6(a) if ts.prefix >= 128 => Identification {
            id_type: IdType::Ipv6Addr,
            protocol: ts.protocol,
            port: ts.port,
            data: a.octets().to_vec(),
        },
        IpAddr::V6(a) => {
            let mut data = a.octets().to_vec();
            data.extend_from_slice(&mask_v6(ts.prefix).octets());
            Identification {
                id_type: IdType::Ipv6AddrSubnet,
                protocol: ts.protocol,
                port: ts.port,
                data,
            }
        }
    }
}

/// The selector a Quick Mode ID payload names (host or subnet; ranges and
/// non-contiguous masks are refused).
pub(crate) fn selector_of(id: &Identification) -> Option<TrafficSelector> {
    let (addr, prefix) = match id.value().ok()? {
        IdValue::Addr(a) => (a, if a.is_ipv4() { 32 } else { 128 }),
        IdValue::Subnet(a, IpAddr::V4(m)) => {
            let m = u32::from(m);
            if m.leading_ones() + m.trailing_zeros() != 32 {
                return None;
            }
            (a, m.leading_ones() as u8)
        }
        IdValue::Subnet(a, IpAddr::V6(m)) => {
            let m = u128::from(m);
            if m.leading_ones() + m.trailing_zeros() != 128 {
                return None;
            }
            (a, m.leading_ones() as u8)
        }
        _ => return None,
    };
    Some(TrafficSelector {
        addr,
        prefix,
        protocol: id.protocol,
        port: id.port,
    })
}

impl TrafficSelector {
    /// A single host, any protocol and port.
    pub fn host(addr: IpAddr) -> TrafficSelector {
        TrafficSelector {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
            protocol: 0,
            port: 0,
        }
    }

    /// Whether `addr` lies in the selector's network.
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let m = u32::from(mask_v4(self.prefix));
                u32::from(n) & m == u32::from(a) & m
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let m = u128::from(mask_v6(self.prefix));
                u128::from(n) & m == u128::from(a) & m
            }
            _ => false,
        }
    }

    /// Whether `other` is within this selector (network, and protocol and
    /// port where this one names them).
    pub fn covers(&self, other: &TrafficSelector) -> bool {
        other.prefix >= self.prefix
            && self.contains_addr(other.addr)
            && (self.protocol == 0 || self.protocol == other.protocol)
            && (self.port == 0 || self.port == other.port)
    }
}

impl std::fmt::Display for TrafficSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)?;
        if self.protocol != 0 || self.port != 0 {
            write!(f, "[{}/{}]", self.protocol, self.port)?;
        }
        Ok(())
    }
}

/// HASH(CKY-I | CKY-R | IP | Port) (RFC 3947 s3.2).
pub(crate) fn nat_d(hash: Integrity, cky_i: [u8; 8], cky_r: [u8; 8], addr: SocketAddr) -> Vec<u8> {
    let ip = match addr.ip() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    keys::hash(hash, &[&cky_i, &cky_r, &ip, &addr.port().to_be_bytes()]).unwrap_or_default()
}

/// The body of the first payload of type `want` in a chain that starts
/// with `first` (as it arrived: SAi_b and IDii_b are hashed as sent).
pub(crate) fn raw_body(first: PayloadType, chain: &[u8], want: PayloadType) -> Option<&[u8]> {
    let mut ty = u8::from(first);
    let mut rest = chain;
    for _ in 0..isakmp::MAX_PAYLOADS {
        if ty == 0 || rest.len() < isakmp::GENERIC_HEADER_LEN {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        if len < isakmp::GENERIC_HEADER_LEN || len > rest.len() {
            return None;
        }
        if ty == u8::from(want) {
            return Some(&rest[isakmp::GENERIC_HEADER_LEN..len]);
        }
        ty = rest[0];
        rest = &rest[len..];
    }
    None
}

/// The octets after the first payload of a chain (what Quick Mode and
/// Informational HASHes cover), without the padding.
pub(crate) fn after_first(chain: &[u8], padding: usize) -> Option<&[u8]> {
    if chain.len() < isakmp::GENERIC_HEADER_LEN {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([chain[2], chain[3]]));
    let end = chain.len().checked_sub(padding)?;
    chain.get(len..end)
}

/// A peer's Phase 1 transforms, for a log line (`3DES_CBC/SHA1/MODP_1024`).
pub(crate) fn describe_ike(sa: &SaPayload) -> String {
    let mut out = Vec::new();
    for p in &sa.proposals {
        for t in &p.transforms {
            let a = t.ike();
            let mut s = a.encryption.map_or("?".into(), |e| e.to_string());
            if let Some(k) = a.key_length {
                s.push_str(&format!("_{k}"));
            }
            s.push('/');
            s.push_str(&a.hash.map_or("?".into(), |h| h.to_string()));
            s.push('/');
            s.push_str(&a.group.map_or("?".into(), |g| g.to_string()));
            if a.auth != Some(AuthMethod::PreSharedKey) {
                s.push('/');
                s.push_str(&a.auth.map_or("?".into(), |x| x.to_string()));
            }
            out.push(s);
        }
    }
    out.join(", ")
}

/// A peer's ESP transforms, for a log line.
pub(crate) fn describe_esp(sa: &SaPayload) -> String {
    let mut out = Vec::new();
    for p in &sa.proposals {
        for t in &p.transforms {
            let a = t.ipsec();
            let mut s = EspTransformId::from(t.transform_id).to_string();
            if let Some(k) = a.key_length {
                s.push_str(&format!("_{k}"));
            }
            if let Some(x) = a.auth {
                s.push_str(&format!("/{x}"));
            }
            if let Some(g) = a.group {
                s.push_str(&format!("/{g}"));
            }
            if let Some(m) = a.mode {
                s.push_str(&format!("/{m}"));
            }
            out.push(s);
        }
    }
    out.join(", ")
}

/// The type of a message's first payload (the header's Next Payload).
pub(crate) fn first_type(m: &Message) -> PayloadType {
    m.payloads
        .first()
        .map(Payload::payload_type)
        .unwrap_or(PayloadType::None)
}

/// The first SA payload of a message.
pub(crate) fn sa_of(m: &Message) -> Option<&SaPayload> {
    m.payloads.iter().find_map(|p| match p {
        Payload::Sa(s) => Some(s),
        _ => None,
    })
}

/// The first KE payload's data.
pub(crate) fn ke_of(m: &Message) -> Option<&[u8]> {
    m.payloads.iter().find_map(|p| match p {
        Payload::KeyExchange(k) => Some(&k[..]),
        _ => None,
    })
}

/// The first Nonce payload's data.
pub(crate) fn nonce_of(m: &Message) -> Option<&[u8]> {
    m.payloads.iter().find_map(|p| match p {
        Payload::Nonce(n) => Some(&n[..]),
        _ => None,
    })
}

/// The first ID payload.
pub(crate) fn id_of(m: &Message) -> Option<&Identification> {
    m.payloads.iter().find_map(|p| match p {
        Payload::Identification(i) => Some(i),
        _ => None,
    })
}

/// The first HASH payload's data.
pub(crate) fn hash_of(m: &Message) -> Option<&[u8]> {
    m.payloads.iter().find_map(|p| match p {
        Payload::Hash(h) => Some(&h[..]),
        _ => None,
    })
}

/// The NAT-OA payloads' addresses, in order (NAT-OAi, NAT-OAr).
pub(crate) fn nat_oas(m: &Message) -> Vec<IpAddr> {
    m.payloads
        .iter()
        .filter_map(|p| match p {
            Payload::NatOa { address, .. } => Some(*address),
            _ => None,
        })
        .collect()
}
