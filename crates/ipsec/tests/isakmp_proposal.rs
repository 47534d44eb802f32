//! strongSwan proposal strings and the responder's choice of a transform
//! (RFC 2408 s4.2), with seed 002's `ike=3des-sha1-modp1024!` and
//! `esp=3des-sha1-modp1024!`.

use tsunagi_ipsec::isakmp::attr::{AuthMethod, EncapsulationMode, Group};
use tsunagi_ipsec::isakmp::payload::{Doi, ProtocolId, KEY_IKE};
use tsunagi_ipsec::isakmp::proposal::*;
use tsunagi_ipsec::isakmp::{Attribute, Proposal, SaPayload, Transform};

fn ike(s: &str) -> Proposals {
    Proposals::parse(s, Kind::Ike).unwrap()
}

fn esp(s: &str) -> Proposals {
    Proposals::parse(s, Kind::Esp).unwrap()
}

#[test]
fn proposal_strings_parse_into_typed_proposals() {
    let p = ike("3des-sha1-modp1024!");
    assert!(p.strict);
    assert_eq!(
        p.proposals,
        vec![ConfigProposal {
            encryption: vec![Encryption::TripleDes],
            integrity: vec![Integrity::Sha1],
            groups: vec![Group::Modp1024],
        }]
    );
    let p = ike("aes128-sha256-modp2048");
    assert!(!p.strict);
    assert_eq!(p.proposals[0].encryption, [Encryption::AesCbc(128)]);
    assert_eq!(p.proposals[0].groups, [Group::Modp2048]);
    let p = ike("aes256-sha384-ecp256");
    assert_eq!(p.proposals[0].integrity, [Integrity::Sha384]);
    assert_eq!(p.proposals[0].groups, [Group::Ecp256]);
    assert_eq!(p.proposals[0].to_string(), "aes256-sha384-ecp256");

    let p = esp("aes128gcm16,aes128-sha1!");
    assert!(p.strict);
    assert_eq!(p.proposals.len(), 2);
    assert_eq!(p.proposals[0].encryption, [Encryption::AesGcm(128, 16)]);
    assert!(p.proposals[0].integrity.is_empty());
    assert_eq!(p.proposals[1].to_string(), "aes128-sha1");
    assert!(p.proposals[1].groups.is_empty());

    let p = ike("aes128-aes256-sha1-sha256-modp2048-ecp256");
    assert_eq!(p.proposals[0].encryption.len(), 2);
    assert_eq!(p.proposals[0].integrity.len(), 2);
    assert_eq!(p.proposals[0].groups.len(), 2);
}

#[test]
fn bad_proposal_strings_are_refused_saying_why() {
    let err = Proposals::parse("3des-sha1-modp999", Kind::Ike).unwrap_err();
    assert!(
        err.to_string().contains("unknown algorithm \"modp999\""),
        "{err}"
    );
    let err = Proposals::parse("aes128gcm16-modp2048", Kind::Ike).unwrap_err();
    assert!(err.to_string().contains("not an IKEv1 Phase 1"), "{err}");
    let err = Proposals::parse("aes128-sha1", Kind::Ike).unwrap_err();
    assert!(err.to_string().contains("no DH group"), "{err}");
    let err = Proposals::parse("aes128gcm16-sha1", Kind::Esp).unwrap_err();
    assert!(err.to_string().contains("no integrity"), "{err}");
    let err = Proposals::parse("aes128", Kind::Esp).unwrap_err();
    assert!(err.to_string().contains("no integrity algorithm"), "{err}");
    assert_eq!(
        Proposals::parse("!", Kind::Esp).unwrap_err(),
        ProposalError::Empty
    );
}

#[test]
fn strict_means_only_these() {
    assert_eq!(ike("3des-sha1-modp1024!").effective().len(), 1);
    let loose = ike("3des-sha1-modp1024").effective();
    assert!(loose.len() > 1);
    assert_eq!(loose[0].to_string(), "3des-sha1-modp1024");
}

fn ike_transform(n: u8, enc: u16, key: Option<u16>, hash: u16, auth: u16, group: u16) -> Transform {
    let mut attributes = vec![Attribute::basic(1, enc)];
    if let Some(k) = key {
        attributes.push(Attribute::basic(14, k));
    }
    attributes.extend([
        Attribute::basic(2, hash),
        Attribute::basic(3, auth),
        Attribute::basic(4, group),
        Attribute::basic(11, 1),
        Attribute::variable(12, &28800u32.to_be_bytes()),
    ]);
    Transform {
        number: n,
        transform_id: KEY_IKE,
        attributes,
    }
}

/// What a Windows-like L2TP/IPsec client offers in Main Mode: AES-256,
/// AES-128, then 3DES with MODP1024 by PSK, then 3DES by RSA signature.
fn windows_like_sa() -> SaPayload {
    SaPayload {
        doi: Doi::Ipsec,
        situation: 1,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Isakmp,
            spi: vec![],
            transforms: vec![
                ike_transform(1, 7, Some(256), 2, 1, 20),
                ike_transform(2, 7, Some(128), 2, 1, 14),
                ike_transform(3, 5, None, 2, 1, 2),
                ike_transform(4, 5, None, 2, 3, 2),
            ],
        }],
    }
}

#[test]
fn seed_002_ike_picks_3des_sha1_modp1024() {
    let sa = windows_like_sa();
    let Choice::Chosen {
        reply,
        algorithms,
        mode,
    } = choose_ike(&ike("3des-sha1-modp1024!"), AuthMethod::PreSharedKey, &sa)
    else {
        panic!("no proposal chosen")
    };
    assert_eq!(
        algorithms,
        Algorithms {
            encryption: Encryption::TripleDes,
            integrity: Some(Integrity::Sha1),
            group: Some(Group::Modp1024),
        }
    );
    assert_eq!(mode, None);
    // RFC 2408 s4.2: the one transform, unchanged, in its proposal.
    assert_eq!(reply.proposals.len(), 1);
    assert_eq!(reply.proposals[0].number, 1);
    assert_eq!(
        reply.proposals[0].transforms,
        vec![sa.proposals[0].transforms[2].clone()]
    );
}

#[test]
fn without_the_bang_the_defaults_take_the_peers_first_acceptable() {
    let Choice::Chosen { algorithms, .. } = choose_ike(
        &ike("3des-sha1-modp1024"),
        AuthMethod::PreSharedKey,
        &windows_like_sa(),
    ) else {
        panic!()
    };
    assert_eq!(algorithms.encryption, Encryption::AesCbc(128));
    assert_eq!(algorithms.group, Some(Group::Modp2048));
}

#[test]
fn no_proposal_chosen_when_nothing_fits() {
    let sa = windows_like_sa();
    assert_eq!(
        choose_ike(
            &ike("aes256-sha512-modp4096!"),
            AuthMethod::PreSharedKey,
            &sa
        ),
        Choice::NoProposalChosen
    );
    // Only PSK is configured; the peer offers only signatures.
    let mut rsa = sa.clone();
    rsa.proposals[0].transforms.retain(|t| t.number == 4);
    assert_eq!(
        choose_ike(&ike("3des-sha1-modp1024!"), AuthMethod::PreSharedKey, &rsa),
        Choice::NoProposalChosen
    );
    // An ESP proposal is not a Phase 1 one.
    let mut wrong = sa;
    wrong.proposals[0].protocol = ProtocolId::Esp;
    assert_eq!(
        choose_ike(
            &ike("3des-sha1-modp1024!"),
            AuthMethod::PreSharedKey,
            &wrong
        ),
        Choice::NoProposalChosen
    );
}

fn esp_transform(
    n: u8,
    id: u8,
    key: Option<u16>,
    auth: Option<u16>,
    group: Option<u16>,
    mode: u16,
) -> Transform {
    let mut attributes = vec![
        Attribute::basic(1, 1),
        Attribute::basic(2, 3600),
        Attribute::basic(4, mode),
    ];
    if let Some(a) = auth {
        attributes.push(Attribute::basic(5, a));
    }
    if let Some(k) = key {
        attributes.push(Attribute::basic(6, k));
    }
    if let Some(g) = group {
        attributes.push(Attribute::basic(3, g));
    }
    Transform {
        number: n,
        transform_id: id,
        attributes,
    }
}

fn esp_sa(transforms: Vec<Transform>) -> SaPayload {
    SaPayload {
        doi: Doi::Ipsec,
        situation: 1,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Esp,
            spi: vec![0xca, 0xfe, 0x00, 0x01],
            transforms,
        }],
    }
}

#[test]
fn seed_002_esp_needs_pfs_modp1024() {
    let ours = esp("3des-sha1-modp1024!");
    // Without PFS: refused, as strongSwan with a group in esp= does.
    let no_pfs = esp_sa(vec![esp_transform(1, 3, None, Some(2), None, 4)]);
    assert_eq!(choose_esp(&ours, &no_pfs), Choice::NoProposalChosen);
    // With MODP1024 and UDP-encapsulated transport (RFC 3947): chosen.
    let sa = esp_sa(vec![
        esp_transform(1, 12, Some(256), Some(2), Some(2), 61444),
        esp_transform(2, 3, None, Some(2), Some(2), 4),
    ]);
    let Choice::Chosen {
        reply,
        algorithms,
        mode,
    } = choose_esp(&ours, &sa)
    else {
        panic!()
    };
    assert_eq!(algorithms.encryption, Encryption::TripleDes);
    assert_eq!(algorithms.integrity, Some(Integrity::Sha1));
    assert_eq!(algorithms.group, Some(Group::Modp1024));
    assert_eq!(mode, Some(EncapsulationMode::UdpTransport));
    assert_eq!(reply.proposals[0].spi, [0xca, 0xfe, 0x00, 0x01]);
    assert_eq!(reply.proposals[0].transforms[0].number, 2);
}

#[test]
fn esp_aead_and_cbc() {
    let sa = esp_sa(vec![
        esp_transform(1, 20, Some(256), None, None, 2),
        esp_transform(2, 20, Some(128), None, None, 2),
        esp_transform(3, 12, Some(128), Some(2), None, 2),
    ]);
    let Choice::Chosen {
        algorithms, mode, ..
    } = choose_esp(&esp("aes128gcm16!"), &sa)
    else {
        panic!()
    };
    assert_eq!(algorithms.encryption, Encryption::AesGcm(128, 16));
    assert_eq!(algorithms.integrity, None);
    assert_eq!(mode, Some(EncapsulationMode::Transport));
    let Choice::Chosen { algorithms, .. } = choose_esp(&esp("aes128-sha1!"), &sa) else {
        panic!()
    };
    assert_eq!(algorithms.encryption, Encryption::AesCbc(128));
    assert_eq!(algorithms.integrity, Some(Integrity::Sha1));
    assert_eq!(
        choose_esp(&esp("aes256-sha256!"), &sa),
        Choice::NoProposalChosen
    );
}
