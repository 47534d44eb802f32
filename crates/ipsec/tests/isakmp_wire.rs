//! ISAKMP messages written down from the layouts of RFC 2408 s3 (header,
//! generic payload header, SA, Proposal, Transform, data attributes),
//! RFC 2409 Appendix A, RFC 2407 s4, RFC 3947 and RFC 3706, parsed and
//! emitted; and every refusal the parser makes, each naming its field.

use std::net::{IpAddr, Ipv4Addr};

use tsunagi_ipsec::isakmp::attr::{
    AttrValue, AuthMethod, EncapsulationMode, EspAuth, Group, IkeEncryption, IkeHash, LifeType,
};
use tsunagi_ipsec::isakmp::payload::{
    Delete, Doi, IdType, IdValue, NatTNumbering, Notification, NotifyType, ProtocolId,
};
use tsunagi_ipsec::isakmp::vendor::{KnownVendor, VendorIdText};
use tsunagi_ipsec::isakmp::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn plain(datagram: &[u8]) -> Message {
    match parse(datagram).expect("parses") {
        Parsed::Message(m) => m,
        Parsed::Encrypted(_) => panic!("encrypted"),
    }
}

const ICOOKIE: &str = "0102030405060708";

/// Main Mode message 1 as seed 002's strongSwan would send it with a
/// second transform: RFC 2408 s3.1 header, s3.4 SA (IPsec DOI,
/// SIT_IDENTITY_ONLY), s3.5 one Proposal (PROTO_ISAKMP, no SPI, two
/// transforms), s3.6 Transforms (KEY_IKE) with RFC 2409 Appendix A
/// attributes, TV (AF=1) and one TLV (AF=0: Life Duration in 4 octets),
/// then four Vendor IDs (s3.16).
fn main_mode_1() -> Vec<u8> {
    hex(&format!(
        "{ICOOKIE} 0000000000000000 01 10 02 00 00000000 000000c0
         0d 00 005c 00000001 00000001
           00 00 0050 01 01 00 02
             03 00 0024 01 01 0000
               8001 0005  8002 0002  8003 0001  8004 0002  800b 0001
               000c 0004 00007080
             00 00 0024 02 01 0000
               8001 0007  800e 0080  8002 0004  8003 0001  8004 000e
               800b 0001  800c 7080
         0d 00 0014 4a131c81070358455c5728f20e95452f
         0d 00 0014 90cb80913ebb696e086381b5ec427b1f
         0d 00 0014 afcad71368a1f1c96b8696fc77570100
         00 00 000c 09002689dfd6b712"
    ))
}

fn header(exchange: ExchangeType, message_id: u32) -> Header {
    Header {
        initiator_spi: [1, 2, 3, 4, 5, 6, 7, 8],
        responder_spi: [0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8],
        exchange,
        flags: Flags::default(),
        message_id,
    }
}

#[test]
fn main_mode_first_message_parses_field_by_field() {
    let bytes = main_mode_1();
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(packet.length(), 192);
    assert_eq!(packet.exchange_type(), ExchangeType::IdentityProtection);
    assert_eq!(packet.next_payload(), PayloadType::SecurityAssociation);
    assert_eq!(packet.trailing_len(), 0);

    let m = plain(&bytes);
    assert_eq!(m.header.initiator_spi, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(m.header.responder_spi, [0; 8]);
    assert_eq!(m.header.message_id, 0);
    assert_eq!(m.payloads.len(), 5);
    let Payload::Sa(sa) = &m.payloads[0] else {
        panic!("SA first")
    };
    assert_eq!(sa.doi, Doi::Ipsec);
    assert_eq!(sa.situation, payload::SIT_IDENTITY_ONLY);
    assert_eq!(sa.proposals.len(), 1);
    let p = &sa.proposals[0];
    assert_eq!(
        (p.number, p.protocol, p.spi.len()),
        (1, ProtocolId::Isakmp, 0)
    );
    assert_eq!(p.transforms.len(), 2);

    let t1 = p.transforms[0].ike();
    assert_eq!(t1.encryption, Some(IkeEncryption::TripleDesCbc));
    assert_eq!(t1.hash, Some(IkeHash::Sha1));
    assert_eq!(t1.auth, Some(AuthMethod::PreSharedKey));
    assert_eq!(t1.group, Some(Group::Modp1024));
    assert_eq!(t1.key_length, None);
    assert_eq!(t1.lifetimes, vec![(LifeType::Seconds, 28800)]);
    // The TLV form is kept as it came, so that it emits back the same.
    assert_eq!(
        p.transforms[0].attributes[5].value,
        AttrValue::Variable(vec![0, 0, 0x70, 0x80])
    );

    let t2 = p.transforms[1].ike();
    assert_eq!(t2.encryption, Some(IkeEncryption::AesCbc));
    assert_eq!(t2.key_length, Some(128));
    assert_eq!(t2.hash, Some(IkeHash::Sha256));
    assert_eq!(t2.group, Some(Group::Modp2048));
    assert_eq!(t2.lifetimes, vec![(LifeType::Seconds, 28800)]);

    let vendors: Vec<_> = m.payloads.iter().map(Payload::known_vendor).collect();
    assert_eq!(
        vendors,
        [
            None,
            Some(KnownVendor::NatTRfc3947),
            Some(KnownVendor::NatTDraft02N),
            Some(KnownVendor::Dpd),
            Some(KnownVendor::Xauth)
        ]
    );
    assert_eq!(m.disposition(), Disposition::Process);
    assert_eq!(
        m.log(Verb::Parsed, Role::Request).to_string(),
        "parsed ID_PROT request 0 [ SA V V V V ]"
    );
    assert_eq!(m.to_string(), "ID_PROT 0 [ SA V V V V ]");
}

#[test]
fn main_mode_first_message_emits_the_same_octets() {
    let bytes = main_mode_1();
    let m = plain(&bytes);
    let mut out = vec![0xee; 3]; // the builder appends after what is there
    m.emit(&mut out).unwrap();
    assert_eq!(&out[3..], &bytes[..]);
}

#[test]
fn the_builder_writes_a_response_that_parses_back() {
    let request = plain(&main_mode_1());
    let Payload::Sa(sa) = &request.payloads[0] else {
        panic!()
    };
    let mut sa = sa.clone();
    sa.proposals[0].transforms.truncate(1);
    let mut buf = Vec::new();
    let mut b = Builder::new(&mut buf, header(ExchangeType::IdentityProtection, 0));
    b.payload(&Payload::Sa(sa.clone())).unwrap();
    for v in [
        KnownVendor::NatTRfc3947,
        KnownVendor::Dpd,
        KnownVendor::StrongSwan,
    ] {
        b.payload(&Payload::VendorId(v.id().to_vec())).unwrap();
    }
    let len = b.finish().unwrap();
    assert_eq!(len, buf.len());
    let m = plain(&buf);
    assert_eq!(m.payloads[0], Payload::Sa(sa));
    assert_eq!(
        m.log(Verb::Generating, Role::Response).to_string(),
        "generating ID_PROT response 0 [ SA V V V ]"
    );
    assert_eq!(
        m.payloads[3].known_vendor(),
        Some(KnownVendor::StrongSwan),
        "strongSwan's vendor ID"
    );
}

/// The MD5-derived Vendor IDs are the MD5 of their text (RFC 3947 s3.1
/// for "RFC 3947"); DPD's is RFC 3706 s4's 16 octets.
#[test]
fn vendor_ids_are_the_md5_of_their_text() {
    use tsunagi_crypto::md5;
    let md5_of = |s: &str| md5(&[s.as_bytes()]).to_vec();
    assert_eq!(KnownVendor::NatTRfc3947.id(), md5_of("RFC 3947"));
    assert_eq!(
        KnownVendor::NatTRfc3947.id(),
        hex("4a131c81070358455c5728f20e95452f")
    );
    assert_eq!(
        KnownVendor::NatTDraft02.id(),
        md5_of("draft-ietf-ipsec-nat-t-ike-02")
    );
    assert_eq!(
        KnownVendor::NatTDraft02N.id(),
        md5_of("draft-ietf-ipsec-nat-t-ike-02\n")
    );
    assert_eq!(
        KnownVendor::NatTDraft03.id(),
        md5_of("draft-ietf-ipsec-nat-t-ike-03")
    );
    assert_eq!(KnownVendor::StrongSwan.id(), md5_of("strongSwan"));
    assert_eq!(KnownVendor::Fragmentation.id(), md5_of("FRAGMENTATION"));
    assert_eq!(
        KnownVendor::Xauth.id(),
        &md5_of("draft-ietf-ipsra-isakmp-xauth-06.txt")[..8]
    );
    let unity = md5_of("CISCO-UNITY");
    assert_eq!(&KnownVendor::CiscoUnity.id()[..14], &unity[..14]);
    assert_eq!(&KnownVendor::CiscoUnity.id()[14..], [1, 0]);
    assert_eq!(
        KnownVendor::Dpd.id(),
        hex("afcad71368a1f1c96b8696fc77570100")
    );
    for v in KnownVendor::ALL {
        assert_eq!(KnownVendor::identify(v.id()), Some(v), "{v}");
    }
    // FRAGMENTATION with its four octets of flags, as strongSwan sends it.
    let mut frag = KnownVendor::Fragmentation.id().to_vec();
    frag.extend([0x80, 0, 0, 0]);
    assert_eq!(
        KnownVendor::identify(&frag),
        Some(KnownVendor::Fragmentation)
    );
    assert_eq!(KnownVendor::identify(&frag[..15]), None);
    assert_eq!(VendorIdText(&frag).to_string(), "FRAGMENTATION");
    assert_eq!(VendorIdText(&[0xab, 0x01]).to_string(), "unknown ab01");
    assert_eq!(KnownVendor::NatTRfc3947.to_string(), "NAT-T (RFC 3947)");
}

/// Main Mode messages 3/4 with NAT-T (RFC 3947 s3.2): KE, Nonce and two
/// NAT-D payloads; then the same with the drafts' numbering (130).
#[test]
fn key_exchange_nonce_and_nat_d() {
    let ke = vec![0x5a; 128];
    let nonce = vec![0x4e; 32];
    let natd = |b: u8| Payload::NatD {
        numbering: NatTNumbering::Rfc3947,
        hash: vec![b; 20],
    };
    let m = Message::new(header(ExchangeType::IdentityProtection, 0))
        .with(Payload::KeyExchange(ke.clone()))
        .with(Payload::Nonce(nonce.clone()))
        .with(natd(1))
        .with(natd(2));
    let bytes = m.to_vec().unwrap();
    assert_eq!(bytes.len(), 28 + 4 + 128 + 4 + 32 + 2 * 24);
    // Header Next Payload = KE (4); KE's = Nonce (10); Nonce's = NAT-D
    // (20); the first NAT-D's = NAT-D; the last = 0.
    assert_eq!(bytes[16], 4);
    assert_eq!(bytes[28], 10);
    assert_eq!(&bytes[30..32], &132u16.to_be_bytes());
    assert_eq!(bytes[28 + 132], 20);
    assert_eq!(bytes[28 + 132 + 36], 20);
    assert_eq!(bytes[28 + 132 + 36 + 24], 0);
    assert_eq!(plain(&bytes), m);
    assert_eq!(
        m.log(Verb::Generating, Role::Request).to_string(),
        "generating ID_PROT request 0 [ KE No NAT-D NAT-D ]"
    );

    let draft = Message::new(header(ExchangeType::IdentityProtection, 0)).with(Payload::NatD {
        numbering: NatTNumbering::Draft,
        hash: vec![3; 20],
    });
    let bytes = draft.to_vec().unwrap();
    assert_eq!(bytes[16], 130);
    assert_eq!(plain(&bytes), draft);
    assert_eq!(draft.to_string(), "ID_PROT 0 [ NAT-D ]");
}

/// Quick Mode message 1 of an L2TP/IPsec client behind NAT (seed 002):
/// HASH, SA with an ESP proposal (SPI, 3DES, HMAC-SHA1, UDP-encapsulated
/// transport in both numberings), Nonce, ID_IPV4_ADDR with protocol 17
/// port 1701 twice, NAT-OA twice (RFC 3947 s5.2).
#[test]
fn quick_mode_with_esp_proposal_ids_and_nat_oa() {
    let transform = |n: u8, mode: u16| Transform {
        number: n,
        transform_id: 3,
        attributes: vec![
            Attribute::basic(1, 1),
            Attribute::variable(2, &3600u32.to_be_bytes()),
            Attribute::basic(4, mode),
            Attribute::basic(5, 2),
        ],
    };
    let sa = SaPayload {
        doi: Doi::Ipsec,
        situation: 1,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Esp,
            spi: vec![0xc1, 0xc2, 0xc3, 0xc4],
            transforms: vec![transform(1, 4), transform(2, 61444)],
        }],
    };
    let m = Message::new(header(ExchangeType::QuickMode, 0x9a3f_0001))
        .with(Payload::Hash(vec![0x11; 20]))
        .with(Payload::Sa(sa))
        .with(Payload::Nonce(vec![0x22; 16]))
        .with(Payload::Identification(payload::Identification::ipv4(
            Ipv4Addr::new(192, 168, 1, 10),
            17,
            1701,
        )))
        .with(Payload::Identification(payload::Identification::ipv4(
            Ipv4Addr::new(203, 0, 113, 5),
            17,
            1701,
        )))
        .with(Payload::NatOa {
            numbering: NatTNumbering::Rfc3947,
            address: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)),
        })
        .with(Payload::NatOa {
            numbering: NatTNumbering::Rfc3947,
            address: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)),
        });
    let bytes = m.to_vec().unwrap();
    let back = plain(&bytes);
    assert_eq!(back, m);
    assert_eq!(
        back.log(Verb::Parsed, Role::Request).to_string(),
        "parsed QUICK_MODE request 2587820033 [ HASH SA No ID ID NAT-OA NAT-OA ]"
    );
    let Payload::Sa(sa) = &back.payloads[1] else {
        panic!()
    };
    let a = sa.proposals[0].transforms[0].ipsec();
    assert_eq!(a.mode, Some(EncapsulationMode::UdpTransport));
    assert_eq!(a.auth, Some(EspAuth::HmacSha1));
    assert_eq!(a.lifetimes, vec![(LifeType::Seconds, 3600)]);
    let draft = sa.proposals[0].transforms[1].ipsec().mode.unwrap();
    assert_eq!(draft, EncapsulationMode::UdpTransportDraft);
    assert!(draft.udp() && !draft.tunnel());
    let Payload::Identification(id) = &back.payloads[3] else {
        panic!()
    };
    assert_eq!(
        (id.id_type, id.protocol, id.port),
        (IdType::Ipv4Addr, 17, 1701)
    );
    assert_eq!(
        id.value().unwrap(),
        IdValue::Addr(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)))
    );
    // The NAT-OA body of RFC 3947 s5.2: ID Type, three RESERVED, address.
    let at = bytes.len() - 12;
    assert_eq!(&bytes[at..], &hex("00 00 000c 01 000000 cb007105")[..]);
}

#[test]
fn identification_types() {
    let id = |t: u8, data: &[u8]| payload::Identification {
        id_type: IdType::from(t),
        protocol: 0,
        port: 0,
        data: data.to_vec(),
    };
    assert_eq!(
        id(4, &[10, 0, 0, 0, 255, 255, 255, 0]).value().unwrap(),
        IdValue::Subnet(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(255, 255, 255, 0))
        )
    );
    assert_eq!(
        id(2, b"vpn.example.net").value().unwrap(),
        IdValue::Name(b"vpn.example.net")
    );
    assert_eq!(
        id(3, b"user@example.net").value().unwrap(),
        IdValue::Name(b"user@example.net")
    );
    let err = id(1, &[1, 2, 3]).value().unwrap_err();
    assert!(
        err.to_string().contains("Identification Data length 3"),
        "{err}"
    );
    let m = Message::new(header(ExchangeType::Aggressive, 0))
        .with(Payload::Identification(payload::Identification::fqdn(
            "vpn.example.net",
        )))
        .with(Payload::Certificate {
            encoding: 4,
            data: vec![0x30, 0x82, 0x01],
        })
        .with(Payload::CertificateRequest {
            cert_type: 4,
            authority: vec![],
        })
        .with(Payload::Signature(vec![9; 64]));
    assert_eq!(plain(&m.to_vec().unwrap()), m);
    assert_eq!(m.to_string(), "AGGRESSIVE 0 [ ID CERT CERTREQ SIG ]");
}

/// An Informational exchange with INITIAL-CONTACT (RFC 2407 s4.6.3.3), a
/// DPD R-U-THERE and its ACK (RFC 3706 s5), and a Delete (RFC 2408
/// s3.15) of two ESP SPIs.
#[test]
fn notifications_and_delete() {
    let mut spi = [0u8; 16];
    spi[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let initial = Notification {
        doi: Doi::Ipsec,
        protocol: ProtocolId::Isakmp,
        notify_type: NotifyType::InitialContact,
        spi: spi.to_vec(),
        data: vec![],
    };
    let m = Message::new(header(ExchangeType::Informational, 0x1234_5678))
        .with(Payload::Hash(vec![0; 20]))
        .with(Payload::Notification(initial.clone()));
    let bytes = m.to_vec().unwrap();
    // The Notification body: DOI 1, PROTO_ISAKMP, SPI Size 16, type 24578.
    assert_eq!(
        &bytes[28 + 24 + 4..28 + 24 + 12],
        &hex("00000001 01 10 6002")
    );
    assert_eq!(plain(&bytes), m);
    assert_eq!(
        m.log(Verb::Generating, Role::Request).to_string(),
        "generating INFORMATIONAL_V1 request 305419896 [ HASH N(INITIAL_CONTACT) ]"
    );

    let dpd = Message::new(header(ExchangeType::Informational, 7))
        .with(Payload::Hash(vec![0; 20]))
        .with(Payload::Notification(Notification::dpd(false, spi, 42)));
    let back = plain(&dpd.to_vec().unwrap());
    let Payload::Notification(n) = &back.payloads[1] else {
        panic!()
    };
    assert_eq!(u16::from(n.notify_type), 36136);
    assert_eq!(n.data, 42u32.to_be_bytes());
    assert_eq!(back.to_string(), "INFORMATIONAL_V1 7 [ HASH N(DPD) ]");
    let ack = Message::new(header(ExchangeType::Informational, 8))
        .with(Payload::Notification(Notification::dpd(true, spi, 42)));
    assert_eq!(ack.to_string(), "INFORMATIONAL_V1 8 [ N(DPD_ACK) ]");
    assert_eq!(NotifyType::from(14).log_name(), "NO_PROPOSAL_CHOSEN");
    assert!(NotifyType::NoProposalChosen.is_error());
    assert!(!NotifyType::InitialContact.is_error());
    assert_eq!(NotifyType::from(999).log_name(), "999");

    let delete = Delete {
        doi: Doi::Ipsec,
        protocol: ProtocolId::Esp,
        spi_size: 4,
        spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
    };
    let d = Message::new(header(ExchangeType::Informational, 9)).with(Payload::Delete(delete));
    let bytes = d.to_vec().unwrap();
    assert_eq!(
        &bytes[32..],
        &hex("00000001 03 04 0002 01020304 05060708")[..]
    );
    assert_eq!(plain(&bytes), d);
    assert_eq!(d.to_string(), "INFORMATIONAL_V1 9 [ D ]");
    // # of SPIs that does not match what follows.
    let mut bad = bytes.clone();
    bad[39] = 3;
    assert!(matches!(
        parse(&bad),
        Err(Error::Field {
            field: "# of SPIs",
            ..
        })
    ));
}

/// RFC 2408 s3.1: with the Encryption bit set, what follows the header is
/// ciphertext; the split goes to the engine, and the decrypted body is
/// parsed with its padding after the last payload.
#[test]
fn encrypted_body_is_split_not_parsed() {
    let mut h = header(ExchangeType::IdentityProtection, 0);
    h.flags = Flags(Flags::ENCRYPTION);
    let ciphertext = [0xc7u8; 48];
    let mut bytes = Vec::new();
    emit_encrypted(h, PayloadType::Identification, &ciphertext, &mut bytes).unwrap();
    let Parsed::Encrypted(e) = parse(&bytes).unwrap() else {
        panic!("not split")
    };
    assert_eq!(e.header, h);
    assert_eq!(e.first_payload, PayloadType::Identification);
    assert_eq!(e.ciphertext, &ciphertext[..]);
    assert_eq!(e.header_octets, &bytes[..28]);

    // A decrypted body: ID, HASH, then 5 octets of padding.
    let clear = Message::new(h)
        .with(Payload::Identification(payload::Identification::ipv4(
            Ipv4Addr::new(10, 1, 1, 1),
            0,
            0,
        )))
        .with(Payload::Hash(vec![7; 20]));
    let mut plaintext = clear.to_vec().unwrap()[28..].to_vec();
    plaintext.extend([0, 0, 0, 0, 4]);
    let (m, padding) = parse_decrypted(h, PayloadType::Identification, &plaintext).unwrap();
    assert_eq!(padding, 5);
    assert_eq!(m.payloads, clear.payloads);
    assert_eq!(m.to_string(), "ID_PROT 0 [ ID HASH ]");
}

// ---- refusals ------------------------------------------------------------

#[test]
fn truncated_header_is_refused() {
    let bytes = main_mode_1();
    for n in [0, 1, 16, 27] {
        assert_eq!(
            parse(&bytes[..n]).unwrap_err(),
            Error::HeaderTruncated { have: n }
        );
    }
    assert!(Error::HeaderTruncated { have: 27 }
        .to_string()
        .contains("27 octets, 28 needed"));
}

#[test]
fn version_2_0_is_refused_naming_the_field() {
    let mut bytes = main_mode_1();
    bytes[17] = 0x20;
    let err = parse(&bytes).unwrap_err();
    assert_eq!(err, Error::Version { major: 2, minor: 0 });
    assert!(err.to_string().contains("Version 2.0"), "{err}");
    bytes[17] = 0x11;
    assert_eq!(
        parse(&bytes).unwrap_err(),
        Error::Version { major: 1, minor: 1 }
    );
}

#[test]
fn length_shorter_than_the_header_is_refused() {
    let mut bytes = main_mode_1();
    for length in [0u32, 1, 27] {
        bytes[24..28].copy_from_slice(&length.to_be_bytes());
        let err = parse(&bytes).unwrap_err();
        assert_eq!(err, Error::LengthTooShort { length });
        assert!(err.to_string().contains("Length"), "{err}");
    }
}

#[test]
fn length_longer_than_the_datagram_is_refused() {
    let bytes = main_mode_1();
    assert_eq!(
        parse(&bytes[..191]).unwrap_err(),
        Error::LengthPastDatagram {
            length: 192,
            datagram: 191
        }
    );
}

/// RFC 2408 s3.1: the message is Length octets; what follows it in the
/// datagram is not part of it, is not parsed, and is counted.
#[test]
fn octets_after_the_length_are_not_part_of_the_message() {
    let mut bytes = main_mode_1();
    let m = plain(&bytes);
    bytes.extend([0xde, 0xad, 0xbe, 0xef, 0x01]);
    assert_eq!(plain(&bytes), m);
    assert_eq!(Packet::new_checked(&bytes[..]).unwrap().trailing_len(), 5);
    // Inside the Length, octets after the last payload are refused.
    let len = bytes.len() as u32;
    bytes[24..28].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        parse(&bytes).unwrap_err(),
        Error::Leftover {
            what: "payload",
            parent: "message",
            left: 5
        }
    );
}

/// A VID message whose only payload has Payload Length `n`.
fn one_vid_with_length(n: u16, body: usize) -> Vec<u8> {
    let mut v = hex(&format!("{ICOOKIE} 0000000000000000 0d 10 02 00 00000000"));
    v.extend(((32 + body) as u32).to_be_bytes());
    v.extend([0, 0]);
    v.extend(n.to_be_bytes());
    v.extend(vec![0x42; body]);
    v
}

#[test]
fn payload_length_0_to_3_is_refused() {
    for n in 0..4u16 {
        let err = parse(&one_vid_with_length(n, 4)).unwrap_err();
        assert_eq!(
            err,
            Error::PayloadLengthTooShort {
                what: "V",
                length: n,
                min: 4
            }
        );
    }
    assert!(parse(&one_vid_with_length(4, 0)).is_ok());
}

#[test]
fn payload_past_its_parent_is_refused() {
    let err = parse(&one_vid_with_length(21, 16)).unwrap_err();
    assert_eq!(
        err,
        Error::PayloadPastParent {
            what: "V",
            length: 21,
            parent: "message",
            room: 20
        }
    );
    assert!(err.to_string().contains("runs past its message"), "{err}");
    // A generic header cut in two by the end of the message.
    let mut bytes = main_mode_1();
    let keep = bytes.len() - 10; // the XAUTH VID's header loses 2 octets
    bytes.truncate(keep);
    bytes[24..28].copy_from_slice(&(keep as u32).to_be_bytes());
    assert_eq!(
        parse(&bytes).unwrap_err(),
        Error::Truncated {
            what: "V",
            need: 4,
            have: 2
        }
    );
}

#[test]
fn a_proposal_whose_transforms_overflow_it_is_refused() {
    let mut bytes = main_mode_1();
    // The second transform's Payload Length 0x24 -> 0x25: one octet past
    // the Proposal.
    let at = 28 + 12 + 8 + 36 + 3;
    assert_eq!(bytes[at], 0x24);
    bytes[at] = 0x25;
    assert_eq!(
        parse(&bytes).unwrap_err(),
        Error::PayloadPastParent {
            what: "Transform",
            length: 0x25,
            parent: "Proposal",
            room: 0x24
        }
    );
    // The Proposal's own length past the SA.
    let mut bytes = main_mode_1();
    bytes[28 + 12 + 3] = 0x51;
    assert!(matches!(
        parse(&bytes).unwrap_err(),
        Error::PayloadPastParent {
            what: "Proposal",
            parent: "SA",
            ..
        }
    ));
    // # of Transforms 3 for two transforms, and 1 for two.
    let mut bytes = main_mode_1();
    bytes[28 + 12 + 7] = 3;
    let err = parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Field {
                field: "# of Transforms",
                value: 3,
                ..
            }
        ),
        "{err}"
    );
    bytes[28 + 12 + 7] = 1;
    assert!(matches!(
        parse(&bytes).unwrap_err(),
        Error::Field {
            field: "# of Transforms",
            value: 1,
            ..
        }
    ));
    // A Transform naming a Next Payload other than Transform inside a
    // Proposal.
    let mut bytes = main_mode_1();
    bytes[28 + 12 + 8] = 13;
    assert_eq!(
        parse(&bytes).unwrap_err(),
        Error::NestedNextPayload {
            what: "Transform",
            value: 13,
            allowed: 3,
            parent: "Proposal"
        }
    );
}

#[test]
fn an_attribute_tlv_past_its_transform_is_refused() {
    let mut bytes = main_mode_1();
    // Life Duration's Attribute Length 4 -> 5 in the first transform.
    let at = 28 + 12 + 8 + 8 + 20 + 2;
    assert_eq!(&bytes[at - 2..at + 2], &[0x00, 0x0c, 0x00, 0x04]);
    bytes[at + 1] = 5;
    let err = parse(&bytes).unwrap_err();
    assert_eq!(
        err,
        Error::AttributePastParent {
            attribute_type: 12,
            length: 5,
            parent: "Transform",
            room: 4
        }
    );
    assert!(err.to_string().contains("attribute type 12"), "{err}");
}

/// A 10,000-payload message (40,028 octets of Vendor IDs of length 4, a
/// legal UDP datagram) is refused once the bound is passed, without
/// parsing the rest.
#[test]
fn ten_thousand_payloads_are_refused() {
    let n = 10_000;
    let mut v = hex(&format!("{ICOOKIE} 0000000000000000 0d 10 02 00 00000000"));
    v.extend(((28 + 4 * n) as u32).to_be_bytes());
    for i in 0..n {
        v.extend([if i + 1 < n { 13 } else { 0 }, 0, 0, 4]);
    }
    let err = parse(&v).unwrap_err();
    assert_eq!(
        err,
        Error::TooMany {
            what: "payloads",
            parent: "message",
            limit: MAX_PAYLOADS
        }
    );
    assert!(err.to_string().contains("too many payloads"), "{err}");
    // At the bound it parses.
    let mut v = hex(&format!("{ICOOKIE} 0000000000000000 0d 10 02 00 00000000"));
    v.extend(((28 + 4 * MAX_PAYLOADS) as u32).to_be_bytes());
    for i in 0..MAX_PAYLOADS {
        v.extend([if i + 1 < MAX_PAYLOADS { 13 } else { 0 }, 0, 0, 4]);
    }
    assert_eq!(plain(&v).payloads.len(), MAX_PAYLOADS);
}

/// Every step of the chain moves forward by its Payload Length, which is
/// at least 4: a payload that names itself as next, or a Length of 0 that
/// would keep a naive parser in place, cannot make it loop.
#[test]
fn the_chain_cannot_loop() {
    // Payload Length 0: refused, not re-read forever.
    assert!(matches!(
        parse(&one_vid_with_length(0, 8)).unwrap_err(),
        Error::PayloadLengthTooShort { length: 0, .. }
    ));
    // Each VID names a VID next, the last one too: the chain walks off the
    // end of the message and stops there.
    let mut v = hex(&format!("{ICOOKIE} 0000000000000000 0d 10 02 00 00000000"));
    v.extend((28u32 + 12).to_be_bytes());
    for _ in 0..3 {
        v.extend([13, 0, 0, 4]);
    }
    assert_eq!(
        parse(&v).unwrap_err(),
        Error::Truncated {
            what: "V",
            need: 4,
            have: 0
        }
    );
    // Proposals that name a Proposal next forever inside their SA, each 8
    // octets: the SA runs out.
    let mut v = hex(&format!("{ICOOKIE} 0000000000000000 01 10 02 00 00000000"));
    v.extend((28u32 + 12 + 16).to_be_bytes());
    v.extend(hex("00 00 001c 00000001 00000001"));
    v.extend(hex("02 00 0008 01 01 00 00  02 00 0008 01 01 00 00"));
    let err = parse(&v).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Field {
                what: "Proposal",
                ..
            } | Error::Truncated {
                what: "Proposal",
                ..
            }
        ),
        "{err}"
    );
}

/// RFC 2408 s5.2: an unknown Next Payload is a message to discard (and
/// maybe answer with INVALID-PAYLOAD-TYPE), not a parse failure: the chain
/// still has its length. Proposal and Transform at top level count as
/// unknown there.
#[test]
fn unknown_payload_type_is_an_outcome() {
    let mut bytes = main_mode_1();
    bytes[28] = 14; // the SA names 14 (Mode Config attributes) next
    let m = plain(&bytes);
    assert_eq!(
        m.payloads[1],
        Payload::Unknown {
            payload_type: 14,
            body: hex("4a131c81070358455c5728f20e95452f")
        }
    );
    assert_eq!(
        m.disposition(),
        Disposition::Discard {
            payload_type: 14,
            notify: NotifyType::InvalidPayloadType
        }
    );
    assert_eq!(m.to_string(), "ID_PROT 0 [ SA U(14) V V V ]");
    assert_eq!(m.to_vec().unwrap(), bytes);
    bytes[28] = 2;
    assert!(matches!(
        plain(&bytes).disposition(),
        Disposition::Discard {
            payload_type: 2,
            ..
        }
    ));
}

#[test]
fn other_refusals_name_their_field() {
    // SIT_SECRECY (2) asks for labels.
    let mut bytes = main_mode_1();
    bytes[28 + 11] = 3;
    let err = parse(&bytes).unwrap_err();
    assert!(err.to_string().contains("Situation 3"), "{err}");
    // A Proposal whose SPI Size runs past it.
    let mut bytes = main_mode_1();
    bytes[28 + 12 + 6] = 200;
    assert!(matches!(
        parse(&bytes).unwrap_err(),
        Error::Field {
            field: "SPI Size",
            ..
        }
    ));
    // NAT-OA with an ID Type and address length that disagree.
    let mut v = hex(&format!("{ICOOKIE} 0000000000000000 15 10 20 00 00000001"));
    v.extend((28u32 + 4 + 4 + 16).to_be_bytes());
    v.extend(hex("00 00 0018 01 000000"));
    v.extend([0; 16]);
    let err = parse(&v).unwrap_err();
    assert!(err.to_string().contains("NAT-OA: ID Type 1"), "{err}");
    // A Notification shorter than its fixed part.
    let err = parse(&one_notify(&hex("00000001 01"))).unwrap_err();
    assert_eq!(
        err,
        Error::PayloadLengthTooShort {
            what: "N",
            length: 9,
            min: 12
        }
    );
}

fn one_notify(body: &[u8]) -> Vec<u8> {
    let mut v = hex(&format!("{ICOOKIE} 0000000000000000 0b 10 05 00 00000001"));
    v.extend(((28 + 4 + body.len()) as u32).to_be_bytes());
    v.extend([0, 0]);
    v.extend(((4 + body.len()) as u16).to_be_bytes());
    v.extend(body);
    v
}

#[test]
fn exchange_types_and_flags() {
    for (n, name) in [
        (2, "ID_PROT"),
        (4, "AGGRESSIVE"),
        (5, "INFORMATIONAL_V1"),
        (6, "TRANSACTION"),
        (32, "QUICK_MODE"),
        (77, "ExchangeType(77)"),
    ] {
        assert_eq!(ExchangeType::from(n).to_string(), name);
        assert_eq!(u8::from(ExchangeType::from(n)), n);
    }
    let f = Flags(Flags::COMMIT | Flags::AUTHENTICATION_ONLY);
    assert!(!f.encryption() && f.commit() && f.authentication_only());
    let mut bytes = main_mode_1();
    bytes[19] = 0x02;
    assert!(plain(&bytes).header.flags.commit());
    assert_eq!(plain(&bytes).to_vec().unwrap(), bytes);
}
