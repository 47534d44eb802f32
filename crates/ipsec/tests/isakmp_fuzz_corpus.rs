//! Replays every file of fuzz/corpus/isakmp_parse through the function
//! the fuzz target calls, so each corpus file is a regression test that
//! runs without a fuzzer; and checks that the committed `seed-*` files are
//! what [`seeds`] builds (`TSUNAGI_WRITE_SEEDS=1` writes them:
//! `TSUNAGI_WRITE_SEEDS=1 cargo test -p tsunagi-ipsec --test isakmp_fuzz_corpus`).

use std::net::{IpAddr, Ipv4Addr};

use tsunagi_ipsec::isakmp::fuzzing::isakmp_parse;
use tsunagi_ipsec::isakmp::payload::{
    Delete, Doi, Identification, NatTNumbering, Notification, NotifyType, ProtocolId, KEY_IKE,
};
use tsunagi_ipsec::isakmp::vendor::KnownVendor;
use tsunagi_ipsec::isakmp::*;
use tsunagi_testkit::corpus::{check_or_write, replay};

#[test]
fn replay_isakmp_parse_corpus() {
    replay("isakmp_parse", isakmp_parse);
}

#[test]
fn isakmp_seeds_are_current() {
    check_or_write(
        "isakmp_parse",
        seeds(),
        "tsunagi-ipsec --test isakmp_fuzz_corpus",
    );
}

fn header(exchange: ExchangeType, message_id: u32, responder: bool) -> Header {
    Header {
        initiator_spi: [0x5e, 0xed, 0, 0, 0, 0, 0, 2],
        responder_spi: if responder { [0xa5; 8] } else { [0; 8] },
        exchange,
        flags: Flags(0),
        message_id,
    }
}

fn ike_transform(n: u8, enc: u16, key: Option<u16>, hash: u16, group: u16) -> Transform {
    let mut attributes = vec![Attribute::basic(1, enc)];
    if let Some(k) = key {
        attributes.push(Attribute::basic(14, k));
    }
    attributes.extend([
        Attribute::basic(2, hash),
        Attribute::basic(3, 1),
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

fn sa(protocol: ProtocolId, spi: Vec<u8>, transforms: Vec<Transform>) -> Payload {
    Payload::Sa(SaPayload {
        doi: Doi::Ipsec,
        situation: 1,
        proposals: vec![Proposal {
            number: 1,
            protocol,
            spi,
            transforms,
        }],
    })
}

fn vid(v: KnownVendor) -> Payload {
    Payload::VendorId(v.id().to_vec())
}

fn bytes(m: &Message) -> Vec<u8> {
    m.to_vec().expect("seed emits")
}

/// The seeds of fuzz/corpus/isakmp_parse: a whole seed-002 L2TP/IPsec
/// exchange in the clear (Main Mode 1-4, Quick Mode 1 as if decrypted),
/// informational messages, an encrypted one, and the refused shapes.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut add = |name: &str, v: Vec<u8>| seeds.push((format!("seed-{name}"), v));

    let mm1 = Message::new(header(ExchangeType::IdentityProtection, 0, false))
        .with(sa(
            ProtocolId::Isakmp,
            vec![],
            vec![
                ike_transform(1, 7, Some(256), 2, 20),
                ike_transform(2, 7, Some(128), 2, 14),
                ike_transform(3, 5, None, 2, 2),
            ],
        ))
        .with(vid(KnownVendor::NatTRfc3947))
        .with(vid(KnownVendor::NatTDraft02N))
        .with(vid(KnownVendor::Fragmentation))
        .with(vid(KnownVendor::Dpd))
        .with(vid(KnownVendor::Xauth));
    add("mm1-windows-like", bytes(&mm1));
    let mm2 = Message::new(header(ExchangeType::IdentityProtection, 0, true))
        .with(sa(
            ProtocolId::Isakmp,
            vec![],
            vec![ike_transform(3, 5, None, 2, 2)],
        ))
        .with(vid(KnownVendor::StrongSwan))
        .with(vid(KnownVendor::NatTRfc3947))
        .with(vid(KnownVendor::Dpd));
    add("mm2-strongswan", bytes(&mm2));
    let natd = |b: u8, numbering| Payload::NatD {
        numbering,
        hash: vec![b; 20],
    };
    let mm3 = Message::new(header(ExchangeType::IdentityProtection, 0, true))
        .with(Payload::KeyExchange(vec![0x5a; 128]))
        .with(Payload::Nonce(vec![0x4e; 32]))
        .with(natd(1, NatTNumbering::Rfc3947))
        .with(natd(2, NatTNumbering::Rfc3947));
    add("mm3-ke-nonce-natd", bytes(&mm3));
    let mm3d = Message::new(header(ExchangeType::IdentityProtection, 0, true))
        .with(Payload::KeyExchange(vec![0x5a; 128]))
        .with(Payload::Nonce(vec![0x4e; 16]))
        .with(natd(3, NatTNumbering::Draft))
        .with(natd(4, NatTNumbering::Draft));
    add("mm3-draft-natd", bytes(&mm3d));
    let mm5 = Message::new(header(ExchangeType::IdentityProtection, 0, true))
        .with(Payload::Identification(Identification::ipv4(
            Ipv4Addr::new(192, 168, 1, 10),
            17,
            500,
        )))
        .with(Payload::Hash(vec![0x11; 20]))
        .with(Payload::Notification(Notification {
            doi: Doi::Ipsec,
            protocol: ProtocolId::Isakmp,
            notify_type: NotifyType::InitialContact,
            spi: vec![0xa5; 16],
            data: vec![],
        }));
    add("mm5-cleartext-id-hash-initial-contact", bytes(&mm5));
    let esp = |n: u8, mode: u16| Transform {
        number: n,
        transform_id: 3,
        attributes: vec![
            Attribute::basic(1, 1),
            Attribute::basic(2, 3600),
            Attribute::basic(4, mode),
            Attribute::basic(5, 2),
            Attribute::basic(3, 2),
        ],
    };
    let qm1 = Message::new(header(ExchangeType::QuickMode, 0x9a3f_0001, true))
        .with(Payload::Hash(vec![0x11; 20]))
        .with(sa(
            ProtocolId::Esp,
            vec![0xc1, 0xc2, 0xc3, 0xc4],
            vec![esp(1, 4), esp(2, 61444)],
        ))
        .with(Payload::Nonce(vec![0x22; 16]))
        .with(Payload::KeyExchange(vec![0x33; 128]))
        .with(Payload::Identification(Identification::ipv4(
            Ipv4Addr::new(192, 168, 1, 10),
            17,
            1701,
        )))
        .with(Payload::Identification(Identification::ipv4(
            Ipv4Addr::new(203, 0, 113, 5),
            17,
            1701,
        )))
        .with(Payload::NatOa {
            numbering: NatTNumbering::Rfc3947,
            address: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
        })
        .with(Payload::NatOa {
            numbering: NatTNumbering::Draft,
            address: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
        });
    add("qm1-esp-transport-natoa", bytes(&qm1));
    let dpd = Message::new(header(ExchangeType::Informational, 7, true))
        .with(Payload::Hash(vec![0; 20]))
        .with(Payload::Notification(Notification::dpd(
            false, [0xa5; 16], 42,
        )));
    add("info-dpd", bytes(&dpd));
    let del = Message::new(header(ExchangeType::Informational, 8, true))
        .with(Payload::Hash(vec![0; 20]))
        .with(Payload::Delete(Delete {
            doi: Doi::Ipsec,
            protocol: ProtocolId::Esp,
            spi_size: 4,
            spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
        }));
    add("info-delete", bytes(&del));
    let am = Message::new(header(ExchangeType::Aggressive, 0, false))
        .with(Payload::Identification(Identification::fqdn(
            "vpn.example.net",
        )))
        .with(Payload::Certificate {
            encoding: 4,
            data: vec![0x30, 0x82, 0, 1, 0],
        })
        .with(Payload::CertificateRequest {
            cert_type: 4,
            authority: vec![],
        })
        .with(Payload::Signature(vec![9; 32]))
        .with(Payload::Unknown {
            payload_type: 14,
            body: vec![1, 0, 0, 0],
        });
    add("aggressive-cert-sig-unknown", bytes(&am));

    // Encrypted: the QM1 payloads as "ciphertext" with padding, so that
    // the harness's parse_decrypted path gets a real chain.
    let mut enc = Vec::new();
    let mut body = bytes(&qm1)[28..].to_vec();
    body.extend([0, 0, 0, 3]);
    let mut h = header(ExchangeType::QuickMode, 0x9a3f_0001, true);
    h.flags = Flags(Flags::ENCRYPTION);
    emit_encrypted(h, PayloadType::Hash, &body, &mut enc).expect("emits");
    add("qm1-encrypted", enc);

    // Refused shapes.
    let good = bytes(&mm1);
    add("truncated-header", good[..27].to_vec());
    let mut v = good.clone();
    v[17] = 0x20;
    add("version-2-0", v);
    let mut v = good.clone();
    v[24..28].copy_from_slice(&27u32.to_be_bytes());
    add("length-27", v);
    let mut v = good.clone();
    v.extend([0xde, 0xad]);
    add("trailing-octets", v);
    for n in 0..4u8 {
        let mut v = good.clone();
        v[28 + 2..28 + 4].copy_from_slice(&[0, n]);
        add(&format!("payload-length-{n}"), v);
    }
    let mut v = good.clone();
    v[28 + 2..28 + 4].copy_from_slice(&0xffffu16.to_be_bytes());
    add("payload-past-message", v);
    let mut v = good.clone();
    v[28 + 12 + 2..28 + 12 + 4].copy_from_slice(&0x0fffu16.to_be_bytes());
    add("proposal-past-sa", v);
    let mut v = good.clone();
    v[28 + 12 + 7] = 9;
    add("transform-count-9", v);
    let mut v = good.clone();
    let tlv = 28 + 12 + 8 + 8 + 6 * 4; // first transform: AES, Key Length, 4 more TV, then TLV
    v[tlv + 2..tlv + 4].copy_from_slice(&0x00ffu16.to_be_bytes());
    add("attribute-tlv-past-transform", v);
    let n = 10_000;
    let mut v = bytes(&Message::new(header(
        ExchangeType::IdentityProtection,
        0,
        false,
    )));
    v[16] = 13;
    v[24..28].copy_from_slice(&((28 + 4 * n) as u32).to_be_bytes());
    for i in 0..n {
        v.extend([if i + 1 < n { 13 } else { 0 }, 0, 0, 4]);
    }
    add("ten-thousand-payloads", v);
    seeds
}

/// The refused seeds are refused for the reason their name gives, so that
/// the fuzzer starts from each refusal path.
#[test]
fn refused_seeds_are_refused_as_named() {
    let seeds = seeds();
    let get = |name: &str| {
        let n = format!("seed-{name}");
        seeds.iter().find(|(s, _)| *s == n).expect("seed").1.clone()
    };
    let err = |name: &str| parse(&get(name)).expect_err(name);
    assert!(matches!(
        err("truncated-header"),
        Error::HeaderTruncated { .. }
    ));
    assert!(matches!(
        err("version-2-0"),
        Error::Version { major: 2, .. }
    ));
    assert!(matches!(err("length-27"), Error::LengthTooShort { .. }));
    assert!(parse(&get("trailing-octets")).is_ok());
    for n in 0..4 {
        assert!(matches!(
            err(&format!("payload-length-{n}")),
            Error::PayloadLengthTooShort { .. }
        ));
    }
    assert!(matches!(
        err("payload-past-message"),
        Error::PayloadPastParent {
            parent: "message",
            ..
        }
    ));
    assert!(matches!(
        err("proposal-past-sa"),
        Error::PayloadPastParent { parent: "SA", .. }
    ));
    assert!(matches!(
        err("transform-count-9"),
        Error::Field {
            field: "# of Transforms",
            ..
        }
    ));
    assert!(matches!(
        err("attribute-tlv-past-transform"),
        Error::AttributePastParent {
            attribute_type: 12,
            ..
        }
    ));
    assert!(matches!(
        err("ten-thousand-payloads"),
        Error::TooMany { .. }
    ));
    let Ok(Parsed::Message(m)) = parse(&get("aggressive-cert-sig-unknown")) else {
        panic!()
    };
    assert!(matches!(
        m.disposition(),
        Disposition::Discard {
            payload_type: 14,
            ..
        }
    ));
    let encrypted = get("qm1-encrypted");
    let Ok(Parsed::Encrypted(e)) = parse(&encrypted) else {
        panic!()
    };
    let (m, padding) = parse_decrypted(e.header, e.first_payload, e.ciphertext).unwrap();
    assert_eq!(padding, 4);
    assert_eq!(
        m.to_string(),
        "QUICK_MODE 2587820033 [ HASH SA No KE ID ID NAT-OA NAT-OA ]"
    );
}
