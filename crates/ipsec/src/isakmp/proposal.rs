//! strongSwan's proposal strings for IKEv1 (`ike=3des-sha1-modp1024!`,
//! `esp=aes128gcm16`) as typed proposals, and the responder's choice of a
//! transform from a peer's SA payload (RFC 2408 s4.2: the responder picks
//! one transform of one proposal and returns it unchanged).
//!
//! A proposal string is a comma-separated list; each proposal lists
//! algorithms separated by `-`, and every combination of them is
//! acceptable. A trailing `!` makes the list strict: only these. Without
//! it, [`Proposals::effective`] appends tsunagi's defaults, as strongSwan
//! appends its own.
//!
//! The choice follows the peer's order (its first acceptable transform),
//! which is what RFC 2408 s4.2 describes: proposals "in order of
//! preference".

use std::fmt;

use super::attr::{
    AuthMethod, EncapsulationMode, EspAuth, EspTransformId, Group, IkeEncryption, IkeHash,
};
use super::payload::{ProtocolId, SaPayload, Transform, KEY_IKE};

/// An encryption algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// 3DES-CBC.
    TripleDes,
    /// AES-CBC with a key of this many bits.
    AesCbc(u16),
    /// AES-GCM (ESP only): key bits and ICV octets (8, 12, 16).
    AesGcm(u16, u8),
}

/// An integrity (hash / HMAC) algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Integrity {
    /// MD5 / HMAC-MD5-96.
    Md5,
    /// SHA-1 / HMAC-SHA1-96.
    Sha1,
    /// SHA2-256 / HMAC-SHA2-256-128.
    Sha256,
    /// SHA2-384 / HMAC-SHA2-384-192.
    Sha384,
    /// SHA2-512 / HMAC-SHA2-512-256.
    Sha512,
}

/// Which SA a proposal string is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ike=`: Phase 1 (encryption, hash, group all needed).
    Ike,
    /// `esp=`: Phase 2 (AEAD or encryption + integrity; a group is PFS).
    Esp,
}

/// One configured proposal: every combination of its algorithms is
/// acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProposal {
    /// Encryption algorithms.
    pub encryption: Vec<Encryption>,
    /// Integrity algorithms (empty for AEAD).
    pub integrity: Vec<Integrity>,
    /// DH groups (for ESP: PFS; empty means none).
    pub groups: Vec<Group>,
}

/// A proposal list (`ike=` or `esp=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposals {
    /// IKE or ESP.
    pub kind: Kind,
    /// The proposals, in our order.
    pub proposals: Vec<ConfigProposal>,
    /// `!`: only these, no defaults.
    pub strict: bool,
}

/// What is wrong with a proposal string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposalError {
    /// A token that names no algorithm.
    #[error("proposal {proposal:?}: unknown algorithm {token:?}")]
    UnknownAlgorithm {
        /// The proposal.
        proposal: String,
        /// The token.
        token: String,
    },
    /// A proposal that lacks a kind of algorithm, or mixes AEAD and an
    /// integrity algorithm, or has AEAD in IKEv1 Phase 1.
    #[error("proposal {proposal:?}: {reason}")]
    Incomplete {
        /// The proposal.
        proposal: String,
        /// What is missing or wrong.
        reason: &'static str,
    },
    /// Nothing at all.
    #[error("empty proposal list")]
    Empty,
}

enum Token {
    Enc(Encryption),
    Integ(Integrity),
    Group(Group),
}

fn token(t: &str) -> Option<Token> {
    Some(match t {
        "3des" => Token::Enc(Encryption::TripleDes),
        "aes128" | "aes" => Token::Enc(Encryption::AesCbc(128)),
        "aes192" => Token::Enc(Encryption::AesCbc(192)),
        "aes256" => Token::Enc(Encryption::AesCbc(256)),
        "aes128gcm16" | "aes128gcm128" => Token::Enc(Encryption::AesGcm(128, 16)),
        "aes192gcm16" | "aes192gcm128" => Token::Enc(Encryption::AesGcm(192, 16)),
        "aes256gcm16" | "aes256gcm128" => Token::Enc(Encryption::AesGcm(256, 16)),
        "aes128gcm12" | "aes128gcm96" => Token::Enc(Encryption::AesGcm(128, 12)),
        "aes256gcm12" | "aes256gcm96" => Token::Enc(Encryption::AesGcm(256, 12)),
        "aes128gcm8" | "aes128gcm64" => Token::Enc(Encryption::AesGcm(128, 8)),
        "aes256gcm8" | "aes256gcm64" => Token::Enc(Encryption::AesGcm(256, 8)),
        "md5" => Token::Integ(Integrity::Md5),
        "sha1" | "sha" => Token::Integ(Integrity::Sha1),
        "sha256" | "sha2_256" => Token::Integ(Integrity::Sha256),
        "sha384" | "sha2_384" => Token::Integ(Integrity::Sha384),
        "sha512" | "sha2_512" => Token::Integ(Integrity::Sha512),
        "modp768" => Token::Group(Group::Modp768),
        "modp1024" => Token::Group(Group::Modp1024),
        "modp1536" => Token::Group(Group::Modp1536),
        "modp2048" => Token::Group(Group::Modp2048),
        "modp3072" => Token::Group(Group::Modp3072),
        "modp4096" => Token::Group(Group::Modp4096),
        "ecp256" => Token::Group(Group::Ecp256),
        "ecp384" => Token::Group(Group::Ecp384),
        "ecp521" => Token::Group(Group::Ecp521),
        "curve25519" | "x25519" => Token::Group(Group::Curve25519),
        _ => return None,
    })
}

impl Proposals {
    /// Parses a strongSwan proposal list such as `3des-sha1-modp1024!` or
    /// `aes128gcm16,aes128-sha1`.
    pub fn parse(text: &str, kind: Kind) -> Result<Proposals, ProposalError> {
        let text = text.trim();
        let (text, strict) = match text.strip_suffix('!') {
            Some(t) => (t, true),
            None => (text, false),
        };
        let mut proposals = Vec::new();
        for p in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            proposals.push(ConfigProposal::parse(p, kind)?);
        }
        if proposals.is_empty() {
            return Err(ProposalError::Empty);
        }
        Ok(Proposals {
            kind,
            proposals,
            strict,
        })
    }

    /// The proposals to match with: ours, then (unless strict) tsunagi's
    /// defaults.
    pub fn effective(&self) -> Vec<ConfigProposal> {
        let mut out = self.proposals.clone();
        if !self.strict {
            let defaults = match self.kind {
                Kind::Ike => "aes256-sha256-modp2048,aes128-sha256-modp2048,aes128-sha1-modp2048",
                Kind::Esp => "aes128gcm16,aes256gcm16,aes128-sha256,aes128-sha1",
            };
            for p in defaults.split(',') {
                if let Ok(p) = ConfigProposal::parse(p, self.kind) {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
            }
        }
        out
    }
}

impl ConfigProposal {
    /// Parses one proposal (`aes128-sha256-modp2048`).
    pub fn parse(text: &str, kind: Kind) -> Result<ConfigProposal, ProposalError> {
        let mut p = ConfigProposal {
            encryption: Vec::new(),
            integrity: Vec::new(),
            groups: Vec::new(),
        };
        for t in text.split('-') {
            match token(&t.to_ascii_lowercase()) {
                Some(Token::Enc(e)) => p.encryption.push(e),
                Some(Token::Integ(i)) => p.integrity.push(i),
                Some(Token::Group(g)) => p.groups.push(g),
                None => {
                    return Err(ProposalError::UnknownAlgorithm {
                        proposal: text.into(),
                        token: t.into(),
                    })
                }
            }
        }
        let incomplete = |reason| ProposalError::Incomplete {
            proposal: text.into(),
            reason,
        };
        let aead = p
            .encryption
            .iter()
            .any(|e| matches!(e, Encryption::AesGcm(..)));
        if p.encryption.is_empty() {
            return Err(incomplete("no encryption algorithm"));
        }
        match kind {
            Kind::Ike => {
                if aead {
                    return Err(incomplete("AES-GCM is not an IKEv1 Phase 1 algorithm"));
                }
                if p.integrity.is_empty() {
                    return Err(incomplete("no hash algorithm"));
                }
                if p.groups.is_empty() {
                    return Err(incomplete("no DH group"));
                }
            }
            Kind::Esp => {
                if aead && !p.integrity.is_empty() {
                    return Err(incomplete("AES-GCM takes no integrity algorithm"));
                }
                if !aead && p.integrity.is_empty() {
                    return Err(incomplete("no integrity algorithm"));
                }
            }
        }
        Ok(p)
    }
}

impl fmt::Display for ConfigProposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        for e in &self.encryption {
            parts.push(match e {
                Encryption::TripleDes => "3des".into(),
                Encryption::AesCbc(b) => format!("aes{b}"),
                Encryption::AesGcm(b, icv) => format!("aes{b}gcm{icv}"),
            });
        }
        for i in &self.integrity {
            parts.push(
                match i {
                    Integrity::Md5 => "md5",
                    Integrity::Sha1 => "sha1",
                    Integrity::Sha256 => "sha256",
                    Integrity::Sha384 => "sha384",
                    Integrity::Sha512 => "sha512",
                }
                .into(),
            );
        }
        for g in &self.groups {
            parts.push(
                g.name()
                    .unwrap_or("?")
                    .replace('_', "")
                    .to_ascii_lowercase(),
            );
        }
        f.write_str(&parts.join("-"))
    }
}

/// Algorithms agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Algorithms {
    /// Encryption.
    pub encryption: Encryption,
    /// Integrity (none for AEAD).
    pub integrity: Option<Integrity>,
    /// DH group (for ESP: PFS, if any).
    pub group: Option<Group>,
}

/// The responder's choice (RFC 2408 s4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A transform to accept.
    Chosen {
        /// The proposal (its number, protocol and SPI) with only the chosen
        /// transform, to send back unchanged.
        reply: SaPayload,
        /// What it means.
        algorithms: Algorithms,
        /// For ESP: the Encapsulation Mode asked for.
        mode: Option<EncapsulationMode>,
    },
    /// Nothing acceptable: notify NO-PROPOSAL-CHOSEN (RFC 2408 s3.14.1).
    NoProposalChosen,
}

/// Chooses the peer's first Phase 1 transform that one of `ours` accepts,
/// with authentication method `auth` (pre-shared key for L2TP/IPsec).
pub fn choose_ike(ours: &Proposals, auth: AuthMethod, peer: &SaPayload) -> Choice {
    let ours = ours.effective();
    choose(peer, ProtocolId::Isakmp, |t| {
        if t.transform_id != KEY_IKE {
            return None;
        }
        let a = t.ike();
        if a.auth != Some(auth) {
            return None;
        }
        let encryption = match (a.encryption?, a.key_length) {
            (IkeEncryption::TripleDesCbc, None) => Encryption::TripleDes,
            (IkeEncryption::AesCbc, Some(bits @ (128 | 192 | 256))) => Encryption::AesCbc(bits),
            _ => return None,
        };
        let integrity = match a.hash? {
            IkeHash::Md5 => Integrity::Md5,
            IkeHash::Sha1 => Integrity::Sha1,
            IkeHash::Sha256 => Integrity::Sha256,
            IkeHash::Sha384 => Integrity::Sha384,
            IkeHash::Sha512 => Integrity::Sha512,
            IkeHash::Unknown(_) => return None,
        };
        let group = a.group?;
        ours.iter()
            .any(|p| {
                p.encryption.contains(&encryption)
                    && p.integrity.contains(&integrity)
                    && p.groups.contains(&group)
            })
            .then_some((
                Algorithms {
                    encryption,
                    integrity: Some(integrity),
                    group: Some(group),
                },
                None,
            ))
    })
}

/// Chooses the peer's first ESP transform that one of `ours` accepts
/// (RFC 2407 s4.4.4, s4.5).
pub fn choose_esp(ours: &Proposals, peer: &SaPayload) -> Choice {
    let ours = ours.effective();
    choose(peer, ProtocolId::Esp, |t| {
        let a = t.ipsec();
        let encryption = match (EspTransformId::from(t.transform_id), a.key_length) {
            (EspTransformId::TripleDes, None) => Encryption::TripleDes,
            (EspTransformId::AesCbc, Some(bits @ (128 | 192 | 256))) => Encryption::AesCbc(bits),
            (EspTransformId::AesGcm8, Some(bits @ (128 | 192 | 256))) => {
                Encryption::AesGcm(bits, 8)
            }
            (EspTransformId::AesGcm12, Some(bits @ (128 | 192 | 256))) => {
                Encryption::AesGcm(bits, 12)
            }
            (EspTransformId::AesGcm16, Some(bits @ (128 | 192 | 256))) => {
                Encryption::AesGcm(bits, 16)
            }
            _ => return None,
        };
        let integrity = match a.auth {
            None => None,
            Some(EspAuth::HmacMd5) => Some(Integrity::Md5),
            Some(EspAuth::HmacSha1) => Some(Integrity::Sha1),
            Some(EspAuth::HmacSha256) => Some(Integrity::Sha256),
            Some(EspAuth::HmacSha384) => Some(Integrity::Sha384),
            Some(EspAuth::HmacSha512) => Some(Integrity::Sha512),
            Some(EspAuth::Unknown(_)) => return None,
        };
        ours.iter()
            .any(|p| {
                p.encryption.contains(&encryption)
                    && match integrity {
                        Some(i) => p.integrity.contains(&i),
                        None => p.integrity.is_empty(),
                    }
                    && match a.group {
                        Some(g) => p.groups.contains(&g),
                        None => p.groups.is_empty(),
                    }
            })
            .then_some((
                Algorithms {
                    encryption,
                    integrity,
                    group: a.group,
                },
                a.mode,
            ))
    })
}

fn choose(
    peer: &SaPayload,
    protocol: ProtocolId,
    accept: impl Fn(&Transform) -> Option<(Algorithms, Option<EncapsulationMode>)>,
) -> Choice {
    for p in &peer.proposals {
        if p.protocol != protocol {
            continue;
        }
        for t in &p.transforms {
            if let Some((algorithms, mode)) = accept(t) {
                let mut proposal = p.clone();
                proposal.transforms = vec![t.clone()];
                return Choice::Chosen {
                    reply: SaPayload {
                        doi: peer.doi,
                        situation: peer.situation,
                        proposals: vec![proposal],
                    },
                    algorithms,
                    mode,
                };
            }
        }
    }
    Choice::NoProposalChosen
}
