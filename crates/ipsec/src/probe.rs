//! Probing an IKEv1 responder, sans-IO: which Phase 1 proposals it
//! accepts, and which Vendor IDs it sends (what seed 002 asks ike-scan
//! for before writing `ike=3des-sha1-modp1024!`).
//!
//! Each [`Probe`] is the first message of a Main Mode exchange (RFC 2409
//! s5, message 1: HDR, SA) with one proposal of one transform, a fresh
//! Initiator Cookie, and the NAT-T Vendor IDs a real client sends
//! (RFC 3947 s3.1 and the drafts), so that a responder answers as it
//! would answer a client. [`Probe::interpret`] reads a datagram that came
//! back:
//!
//! - message 2 (HDR, SA with the chosen transform, RFC 2409 s5): the
//!   responder would go on with this transform: [`Outcome::Accepted`];
//! - an error Notification (RFC 2408 s3.14.1), NO-PROPOSAL-CHOSEN in the
//!   usual case: [`Outcome::Refused`];
//! - anything else for our cookie: [`Outcome::Unexpected`], saying what.
//!
//! Silence is the driver's to decide (after its retransmissions):
//! [`Outcome::NoAnswer`]. Nothing here goes past message 2: no key
//! exchange is started, so a probe costs the responder a half-open SA that
//! its own timeout removes.

use std::fmt;

use tsunagi_crypto::RandomSource;

use crate::isakmp::attr::{
    Attribute, AuthMethod, Group, IkeAttr, IkeAttributes, IkeEncryption, IkeHash, LifeType,
};
use crate::isakmp::payload::{Doi, NotifyType, ProtocolId, KEY_IKE, SIT_IDENTITY_ONLY};
use crate::isakmp::proposal::{Encryption, Integrity, Proposals};
use crate::isakmp::vendor::KnownVendor;
use crate::isakmp::{
    self, ExchangeType, Flags, Header, Message, Parsed, Payload, Proposal, SaPayload, Transform,
};

/// What `tsunagi probe ike` offers when not told: today's algorithms and
/// seed 002's, every combination of 3des/aes128/aes256, sha1/sha256/sha384
/// and modp1024/modp2048/ecp256, each with a pre-shared key.
pub const DEFAULT_PROPOSALS: &str =
    "3des-aes128-aes256-sha1-sha256-sha384-modp1024-modp2048-ecp256";

/// The Life Duration offered, in seconds: 8 hours, what ike-scan and
/// strongSwan's IKEv1 initiator offer (seed 002's answer quotes
/// `LifeDuration(4)=0x00007080`).
pub const OFFERED_LIFETIME: u16 = 28_800;

/// One Phase 1 transform to offer: one of each kind of algorithm, with a
/// pre-shared key (RFC 2409 Appendix A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Offer {
    /// 3DES-CBC or AES-CBC (IKEv1 Phase 1 has no AEAD).
    pub encryption: Encryption,
    /// The hash (and its HMAC as the PRF, RFC 2409 s5).
    pub integrity: Integrity,
    /// The Diffie-Hellman group.
    pub group: Group,
}

impl Offer {
    /// Every combination of each proposal's algorithms, in the order of
    /// the proposal string (encryption, then hash, then group varying
    /// fastest), without repeats. AES-GCM, which a `Kind::Ike` parse
    /// already refuses, is skipped.
    pub fn all(proposals: &Proposals) -> Vec<Offer> {
        let mut out = Vec::new();
        for p in &proposals.proposals {
            for &encryption in &p.encryption {
                if matches!(encryption, Encryption::AesGcm(..)) {
                    continue;
                }
                for &integrity in &p.integrity {
                    for &group in &p.groups {
                        let offer = Offer {
                            encryption,
                            integrity,
                            group,
                        };
                        if !out.contains(&offer) {
                            out.push(offer);
                        }
                    }
                }
            }
        }
        out
    }

    /// The Transform payload (RFC 2408 s3.6, KEY_IKE) with its RFC 2409
    /// Appendix A attributes: encryption (and Key Length for AES), hash,
    /// authentication method, group, and a lifetime in seconds.
    pub fn transform(&self, number: u8) -> Transform {
        let attr = |class: IkeAttr, value: u16| Attribute::basic(class.into(), value);
        let mut attributes = Vec::new();
        match self.encryption {
            Encryption::TripleDes => {
                attributes.push(attr(
                    IkeAttr::EncryptionAlgorithm,
                    IkeEncryption::TripleDesCbc.into(),
                ));
            }
            Encryption::AesCbc(bits) | Encryption::AesGcm(bits, _) => {
                attributes.push(attr(
                    IkeAttr::EncryptionAlgorithm,
                    IkeEncryption::AesCbc.into(),
                ));
                attributes.push(attr(IkeAttr::KeyLength, bits));
            }
        }
        attributes.push(attr(IkeAttr::HashAlgorithm, self.hash().into()));
        attributes.push(attr(
            IkeAttr::AuthenticationMethod,
            AuthMethod::PreSharedKey.into(),
        ));
        attributes.push(attr(IkeAttr::GroupDescription, self.group.into()));
        attributes.push(attr(IkeAttr::LifeType, LifeType::Seconds.into()));
        attributes.push(attr(IkeAttr::LifeDuration, OFFERED_LIFETIME));
        Transform {
            number,
            transform_id: KEY_IKE,
            attributes,
        }
    }

    fn hash(&self) -> IkeHash {
        match self.integrity {
            Integrity::Md5 => IkeHash::Md5,
            Integrity::Sha1 => IkeHash::Sha1,
            Integrity::Sha256 => IkeHash::Sha256,
            Integrity::Sha384 => IkeHash::Sha384,
            Integrity::Sha512 => IkeHash::Sha512,
        }
    }

    /// Whether a returned transform's attributes are this offer's
    /// (RFC 2408 s4.2: the responder returns the transform it chose
    /// unchanged; the lifetime alone may differ, RFC 2409 s4 lets a
    /// responder say its own).
    fn matches(&self, a: &IkeAttributes) -> bool {
        let encryption = match (self.encryption, a.encryption, a.key_length) {
            (Encryption::TripleDes, Some(IkeEncryption::TripleDesCbc), _) => true,
            (Encryption::AesCbc(bits), Some(IkeEncryption::AesCbc), Some(len)) => bits == len,
            _ => false,
        };
        encryption
            && a.hash == Some(self.hash())
            && a.auth == Some(AuthMethod::PreSharedKey)
            && a.group == Some(self.group)
    }
}

/// The offer in strongSwan's proposal syntax: `3des-sha1-modp1024`.
impl fmt::Display for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = isakmp::proposal::ConfigProposal {
            encryption: vec![self.encryption],
            integrity: vec![self.integrity],
            groups: vec![self.group],
        };
        write!(f, "{p}")
    }
}

/// What the responder did with one offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Main Mode message 2 with our transform: it would go on with it.
    Accepted {
        /// Its Responder Cookie.
        responder_spi: [u8; 8],
        /// The Life Duration in seconds it returned, if any.
        lifetime: Option<u64>,
    },
    /// An error Notification (NO-PROPOSAL-CHOSEN, or another RFC 2408
    /// s3.14.1 error such as ATTRIBUTES-NOT-SUPPORTED).
    Refused {
        /// The Notify Message Type.
        notify: NotifyType,
    },
    /// An answer for our cookie that is neither of the above.
    Unexpected(Unexpected),
    /// Nothing for our cookie after every retransmission.
    NoAnswer,
}

/// What was odd about an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unexpected {
    /// Message 2 with a transform we did not offer (RFC 2408 s4.2 says
    /// the chosen one comes back unchanged).
    OtherTransform,
    /// An SA payload without exactly one proposal of one ISAKMP transform.
    MalformedChoice,
    /// The Encryption flag is set: nothing is encrypted before message 5.
    Encrypted,
    /// A message of this exchange type with no SA and no error notify.
    Exchange(ExchangeType),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Accepted {
                responder_spi,
                lifetime,
            } => {
                f.write_str("accepted (responder cookie ")?;
                for b in responder_spi {
                    write!(f, "{b:02x}")?;
                }
                if let Some(s) = lifetime {
                    write!(f, ", lifetime {s}s")?;
                }
                f.write_str(")")
            }
            Outcome::Refused { notify } => write!(f, "refused ({notify})"),
            Outcome::Unexpected(u) => {
                f.write_str("unexpected answer: ")?;
                match u {
                    Unexpected::OtherTransform => {
                        f.write_str("message 2 chose a transform that was not offered")
                    }
                    Unexpected::MalformedChoice => {
                        f.write_str("message 2 without exactly one proposal of one transform")
                    }
                    Unexpected::Encrypted => f.write_str("an encrypted message"),
                    Unexpected::Exchange(e) => {
                        write!(f, "{e} message with neither SA nor error notify")
                    }
                }
            }
            Outcome::NoAnswer => f.write_str("no answer"),
        }
    }
}

/// An answer to a probe: what it says, and the Vendor IDs it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Accepted, refused or odd.
    pub outcome: Outcome,
    /// The Vendor ID payloads, in order (see [`KnownVendor::identify`]).
    pub vendor_ids: Vec<Vec<u8>>,
}

/// What [`Probe::interpret`] made of a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    /// Not an answer to this probe (another Initiator Cookie: a late
    /// answer to an earlier probe, or someone else's): keep waiting.
    NotOurs,
    /// Not an ISAKMP message, or a malformed one: keep waiting (anyone can
    /// send a datagram to our port).
    Malformed(isakmp::Error),
    /// The responder's answer.
    Answer(Answer),
}

/// One Main Mode message 1 and the cookie that identifies its answer.
#[derive(Debug, Clone)]
pub struct Probe {
    offer: Offer,
    initiator_spi: [u8; 8],
}

impl Probe {
    /// A probe for `offer` with an Initiator Cookie from `random` (RFC 2408
    /// s2.5.3: unpredictable, so that an answer cannot be forged blind).
    pub fn new(offer: Offer, random: &dyn RandomSource) -> Probe {
        let mut initiator_spi = [0u8; 8];
        while initiator_spi == [0; 8] {
            random.fill(&mut initiator_spi);
        }
        Probe {
            offer,
            initiator_spi,
        }
    }

    /// What it offers.
    pub fn offer(&self) -> Offer {
        self.offer
    }

    /// Its Initiator Cookie.
    pub fn initiator_spi(&self) -> [u8; 8] {
        self.initiator_spi
    }

    /// Main Mode message 1 (RFC 2409 s5): HDR, SA (IPsec DOI,
    /// SIT_IDENTITY_ONLY, proposal 1 for PROTO_ISAKMP with one transform),
    /// then the NAT-T Vendor IDs strongSwan's initiator sends (RFC 3947
    /// s3.1 and draft-02, draft-02 with a newline, draft-03).
    pub fn message(&self) -> Message {
        let header = Header {
            initiator_spi: self.initiator_spi,
            responder_spi: [0; 8],
            exchange: ExchangeType::IdentityProtection,
            flags: Flags::default(),
            message_id: 0,
        };
        let sa = SaPayload {
            doi: Doi::Ipsec,
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::Isakmp,
                spi: Vec::new(),
                transforms: vec![self.offer.transform(1)],
            }],
        };
        let mut m = Message::new(header).with(Payload::Sa(sa));
        for v in [
            KnownVendor::NatTRfc3947,
            KnownVendor::NatTDraft02,
            KnownVendor::NatTDraft02N,
            KnownVendor::NatTDraft03,
        ] {
            m = m.with(Payload::VendorId(v.id().to_vec()));
        }
        m
    }

    /// The datagram to send.
    pub fn datagram(&self) -> Vec<u8> {
        // Every length in it is a few dozen octets: emit cannot fail.
        self.message().to_vec().unwrap_or_default()
    }

    /// Reads a datagram from the responder's port.
    pub fn interpret(&self, datagram: &[u8]) -> Reading {
        let message = match isakmp::parse(datagram) {
            Ok(Parsed::Message(m)) => m,
            Ok(Parsed::Encrypted(e)) => {
                if e.header.initiator_spi != self.initiator_spi {
                    return Reading::NotOurs;
                }
                return Reading::Answer(Answer {
                    outcome: Outcome::Unexpected(Unexpected::Encrypted),
                    vendor_ids: Vec::new(),
                });
            }
            Err(e) => return Reading::Malformed(e),
        };
        if message.header.initiator_spi != self.initiator_spi {
            return Reading::NotOurs;
        }
        let vendor_ids = message
            .payloads
            .iter()
            .filter_map(|p| match p {
                Payload::VendorId(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        Reading::Answer(Answer {
            outcome: self.outcome(&message),
            vendor_ids,
        })
    }

    fn outcome(&self, message: &Message) -> Outcome {
        let sa = message.payloads.iter().find_map(|p| match p {
            Payload::Sa(sa) => Some(sa),
            _ => None,
        });
        let notify = message.payloads.iter().find_map(|p| match p {
            Payload::Notification(n) if n.notify_type.is_error() => Some(n.notify_type),
            _ => None,
        });
        if let Some(notify) = notify {
            return Outcome::Refused { notify };
        }
        match (message.header.exchange, sa) {
            (ExchangeType::IdentityProtection, Some(sa)) => {
                let [proposal] = sa.proposals.as_slice() else {
                    return Outcome::Unexpected(Unexpected::MalformedChoice);
                };
                let [transform] = proposal.transforms.as_slice() else {
                    return Outcome::Unexpected(Unexpected::MalformedChoice);
                };
                if proposal.protocol != ProtocolId::Isakmp || transform.transform_id != KEY_IKE {
                    return Outcome::Unexpected(Unexpected::MalformedChoice);
                }
                let attributes = transform.ike();
                if !self.offer.matches(&attributes) {
                    return Outcome::Unexpected(Unexpected::OtherTransform);
                }
                Outcome::Accepted {
                    responder_spi: message.header.responder_spi,
                    lifetime: attributes
                        .lifetimes
                        .iter()
                        .find(|(t, _)| *t == LifeType::Seconds)
                        .map(|&(_, s)| s),
                }
            }
            (exchange, _) => Outcome::Unexpected(Unexpected::Exchange(exchange)),
        }
    }
}

/// Vendor IDs gathered from every answer, each once, in the order first
/// seen; named when known, in hex otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorIds(Vec<Vec<u8>>);

impl VendorIds {
    /// Adds those not seen yet.
    pub fn add(&mut self, ids: &[Vec<u8>]) {
        for id in ids {
            if !self.0.contains(id) {
                self.0.push(id.clone());
            }
        }
    }

    /// The Vendor IDs, in the order first seen.
    pub fn ids(&self) -> &[Vec<u8>] {
        &self.0
    }
}

/// `strongSwan, NAT-T (RFC 3947), DPD, unknown 0123...`, or `none`.
impl fmt::Display for VendorIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", isakmp::vendor::VendorIdText(id))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::payload::Notification;
    use crate::isakmp::proposal::Kind;

    struct Counter;
    impl RandomSource for Counter {
        fn fill(&self, dest: &mut [u8]) {
            for (i, b) in dest.iter_mut().enumerate() {
                *b = 0xc0 + i as u8;
            }
        }
    }

    fn offer(text: &str) -> Offer {
        let p = Proposals::parse(text, Kind::Ike).unwrap();
        let all = Offer::all(&p);
        assert_eq!(all.len(), 1, "{text}");
        all[0]
    }

    fn seed_002_probe() -> Probe {
        Probe::new(offer("3des-sha1-modp1024"), &Counter)
    }

    const RCOOKIE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

    fn answer_header(probe: &Probe, exchange: ExchangeType, responder_spi: [u8; 8]) -> Header {
        Header {
            initiator_spi: probe.initiator_spi(),
            responder_spi,
            exchange,
            flags: Flags::default(),
            message_id: 0,
        }
    }

    /// Message 2 as an Openswan or strongSwan responder sends it: the
    /// offered proposal with the one transform, returned, and its Vendor
    /// IDs.
    fn message_2(probe: &Probe, transform: Transform, vids: &[KnownVendor]) -> Vec<u8> {
        let mut m = Message::new(answer_header(
            probe,
            ExchangeType::IdentityProtection,
            RCOOKIE,
        ))
        .with(Payload::Sa(SaPayload {
            doi: Doi::Ipsec,
            situation: SIT_IDENTITY_ONLY,
            proposals: vec![Proposal {
                number: 1,
                protocol: ProtocolId::Isakmp,
                spi: Vec::new(),
                transforms: vec![transform],
            }],
        }));
        for v in vids {
            m = m.with(Payload::VendorId(v.id().to_vec()));
        }
        m.to_vec().unwrap()
    }

    fn answer(reading: Reading) -> Answer {
        match reading {
            Reading::Answer(a) => a,
            other => panic!("not an answer: {other:?}"),
        }
    }

    #[test]
    fn default_list_is_every_combination_of_27() {
        let p = Proposals::parse(DEFAULT_PROPOSALS, Kind::Ike).unwrap();
        let all = Offer::all(&p);
        assert_eq!(all.len(), 27);
        assert_eq!(all[0].to_string(), "3des-sha1-modp1024");
        assert_eq!(all[1].to_string(), "3des-sha1-modp2048");
        assert_eq!(all[2].to_string(), "3des-sha1-ecp256");
        assert_eq!(all[26].to_string(), "aes256-sha384-ecp256");
        // A list repeats nothing.
        let p = Proposals::parse("3des-sha1-modp1024,3des-sha1-modp1024", Kind::Ike).unwrap();
        assert_eq!(Offer::all(&p).len(), 1);
    }

    /// Message 1 offering seed 002's `3des-sha1-modp1024`, written down
    /// from the layouts: RFC 2408 s3.1 header (ID_PROT, no flags, Message ID 0),
    /// s3.4 SA (IPsec DOI, SIT_IDENTITY_ONLY), s3.5 Proposal 1
    /// (PROTO_ISAKMP, no SPI, one transform), s3.6 Transform 1 (KEY_IKE)
    /// with RFC 2409 Appendix A attributes 3DES, SHA, PSK, group 2,
    /// seconds, 28800; then the four NAT-T Vendor IDs.
    #[test]
    fn message_1_is_rfc_2409_main_mode_with_one_transform() {
        let probe = seed_002_probe();
        let d = probe.datagram();
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        let expected = concat!(
            "c0c1c2c3c4c5c6c7",
            "0000000000000000",
            "01",
            "10",
            "02",
            "00",
            "00000000",
            "000000a0",
            // SA: DOI 1, situation 1
            "0d000034",
            "00000001",
            "00000001",
            // Proposal 1, ISAKMP, no SPI, one transform
            "00000028",
            "01010001",
            // Transform 1, KEY_IKE
            "00000020",
            "01010000",
            "80010005",
            "80020002",
            "80030001",
            "80040002",
            "800b0001",
            "800c7080",
            // Vendor IDs
            "0d000014",
            "4a131c81070358455c5728f20e95452f",
            "0d000014",
            "cd60464335df21f87cfdb2fc68b6a448",
            "0d000014",
            "90cb80913ebb696e086381b5ec427b1f",
            "00000014",
            "7d9419a65310ca6f2c179d9215529d56",
        );
        assert_eq!(hex, expected);
        assert_eq!(d.len(), 0xa0);
        // And it reads back as what a responder would parse.
        let Ok(Parsed::Message(m)) = isakmp::parse(&d) else {
            panic!("does not parse");
        };
        assert_eq!(m.to_string(), "ID_PROT 0 [ SA V V V V ]");
    }

    #[test]
    fn aes_offers_carry_a_key_length() {
        let t = offer("aes256-sha384-ecp256").transform(1);
        let a = t.ike();
        assert_eq!(a.encryption, Some(IkeEncryption::AesCbc));
        assert_eq!(a.key_length, Some(256));
        assert_eq!(a.hash, Some(IkeHash::Sha384));
        assert_eq!(a.group, Some(Group::Ecp256));
        assert_eq!(a.auth, Some(AuthMethod::PreSharedKey));
        assert_eq!(a.lifetimes, [(LifeType::Seconds, 28_800)]);
        // 3DES has a fixed key: no Key Length (RFC 2409 Appendix A).
        assert_eq!(
            offer("3des-sha1-modp1024").transform(1).ike().key_length,
            None
        );
    }

    #[test]
    fn message_2_with_our_transform_is_accepted_and_its_vids_are_kept() {
        let probe = seed_002_probe();
        let ours = probe.offer().transform(1);
        let d = message_2(
            &probe,
            ours,
            &[
                KnownVendor::StrongSwan,
                KnownVendor::Xauth,
                KnownVendor::Dpd,
            ],
        );
        let a = answer(probe.interpret(&d));
        assert_eq!(
            a.outcome,
            Outcome::Accepted {
                responder_spi: RCOOKIE,
                lifetime: Some(28_800),
            }
        );
        assert_eq!(
            a.outcome.to_string(),
            "accepted (responder cookie 0123456789abcdef, lifetime 28800s)"
        );
        let mut all = VendorIds::default();
        all.add(&a.vendor_ids);
        all.add(&[b"something else".to_vec(), KnownVendor::Dpd.id().to_vec()]);
        assert_eq!(
            all.to_string(),
            "strongSwan, XAuth, DPD, unknown 736f6d657468696e6720656c7365"
        );
    }

    #[test]
    fn a_lifetime_the_responder_shortened_is_still_accepted() {
        let probe = seed_002_probe();
        let mut t = probe.offer().transform(1);
        let last = t.attributes.len() - 1;
        t.attributes[last] = Attribute::variable(IkeAttr::LifeDuration.into(), &[0, 0, 0x0e, 0x10]);
        let a = answer(probe.interpret(&message_2(&probe, t, &[])));
        assert!(matches!(
            a.outcome,
            Outcome::Accepted {
                lifetime: Some(3600),
                ..
            }
        ));
    }

    #[test]
    fn message_2_with_another_transform_is_unexpected() {
        let probe = seed_002_probe();
        let other = offer("3des-sha1-modp2048").transform(1);
        let a = answer(probe.interpret(&message_2(&probe, other, &[])));
        assert_eq!(a.outcome, Outcome::Unexpected(Unexpected::OtherTransform));
        assert!(a.outcome.to_string().contains("not offered"));
    }

    /// strongSwan's refusal: an unencrypted Informational exchange (RFC
    /// 2408 s4.8) with our cookie and N(NO_PROP) for PROTO_ISAKMP.
    #[test]
    fn no_proposal_chosen_is_a_refusal() {
        let probe = seed_002_probe();
        let d = Message::new(answer_header(&probe, ExchangeType::Informational, [0; 8]))
            .with(Payload::Notification(Notification {
                doi: Doi::Ipsec,
                protocol: ProtocolId::Isakmp,
                notify_type: NotifyType::NoProposalChosen,
                spi: Vec::new(),
                data: Vec::new(),
            }))
            .to_vec()
            .unwrap();
        let a = answer(probe.interpret(&d));
        assert_eq!(
            a.outcome,
            Outcome::Refused {
                notify: NotifyType::NoProposalChosen
            }
        );
        assert_eq!(a.outcome.to_string(), "refused (NO-PROPOSAL-CHOSEN)");
    }

    #[test]
    fn answers_to_other_cookies_and_noise_are_not_ours() {
        let probe = seed_002_probe();
        let other = Probe {
            offer: probe.offer(),
            initiator_spi: [9; 8],
        };
        let d = message_2(&other, other.offer().transform(1), &[]);
        assert_eq!(probe.interpret(&d), Reading::NotOurs);
        assert!(matches!(
            probe.interpret(b"not isakmp"),
            Reading::Malformed(isakmp::Error::HeaderTruncated { have: 10 })
        ));
        // An encrypted message for our cookie makes no sense yet.
        let mut enc = Vec::new();
        isakmp::emit_encrypted(
            answer_header(&probe, ExchangeType::Informational, RCOOKIE),
            isakmp::PayloadType::Hash,
            &[0; 16],
            &mut enc,
        )
        .unwrap();
        assert_eq!(
            answer(probe.interpret(&enc)).outcome,
            Outcome::Unexpected(Unexpected::Encrypted)
        );
    }

    #[test]
    fn an_answer_with_neither_sa_nor_error_is_unexpected() {
        let probe = seed_002_probe();
        let d = Message::new(answer_header(&probe, ExchangeType::Aggressive, RCOOKIE))
            .with(Payload::VendorId(KnownVendor::Dpd.id().to_vec()))
            .to_vec()
            .unwrap();
        let a = answer(probe.interpret(&d));
        assert_eq!(
            a.outcome,
            Outcome::Unexpected(Unexpected::Exchange(ExchangeType::Aggressive))
        );
        assert_eq!(a.vendor_ids, [KnownVendor::Dpd.id().to_vec()]);
        assert_eq!(Outcome::NoAnswer.to_string(), "no answer");
    }

    #[test]
    fn cookies_are_drawn_never_zero() {
        struct ZeroOnce(std::sync::atomic::AtomicBool);
        impl RandomSource for ZeroOnce {
            fn fill(&self, dest: &mut [u8]) {
                let first = !self.0.swap(true, std::sync::atomic::Ordering::Relaxed);
                dest.fill(if first { 0 } else { 7 });
            }
        }
        let p = Probe::new(
            offer("aes128-sha256-modp2048"),
            &ZeroOnce(Default::default()),
        );
        assert_eq!(p.initiator_spi(), [7; 8]);
        let a = Probe::new(offer("aes128-sha256-modp2048"), &tsunagi_crypto::OsRandom);
        let b = Probe::new(offer("aes128-sha256-modp2048"), &tsunagi_crypto::OsRandom);
        assert_ne!(a.initiator_spi(), b.initiator_spi());
    }
}
