//! Header, AVP and message vectors written from RFC 2661's text: the header
//! of section 3.1, the AVP format of section 4.1, the hiding algorithm of
//! section 4.3, the Challenge Response of sections 4.4.3 and 5.1.1, the
//! required AVPs of section 6.

use tsunagi_crypto::md5;
use tsunagi_l2tp::avp::{
    hide, unhide, write_avp, AttributeType, Avp, AvpError, AvpReader, ResultCode,
};
use tsunagi_l2tp::header::{encapsulate, Header, HeaderError, Kind, Sequence};
use tsunagi_l2tp::message::{Hiding, Message, MessageError, MessageType};
use tsunagi_l2tp::tunnel::challenge_response;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// ----- section 3.1 -----

#[test]
fn a_zlb_control_header() {
    // T, L, S set, Ver 2; Length 12; Tunnel ID 0x1234; Session ID 0;
    // Ns 3; Nr 7.
    let d = hex("c802 000c 1234 0000 0003 0007");
    let (h, payload) = Header::parse(&d).unwrap();
    assert_eq!(h, Header::control(0x1234, 0, 3, 7, 12));
    assert_eq!(h.kind, Kind::Control);
    assert_eq!(payload, 12..12);
    let mut out = [0u8; 12];
    h.emit(&mut out);
    assert_eq!(out[..], d[..]);
}

#[test]
fn control_header_refusals_name_the_field() {
    let cases = [
        ("c802 0009 1234 0000 0003 0007", "Length 9 is shorter than the 12-octet control header"),
        ("c803 000c 1234 0000 0003 0007", "Ver 3 is not 2"),
        ("c801 000c 1234 0000 0003 0007", "Ver 1 is not 2 (L2F)"),
        (
            "8802 1234 0000 0003 0007",
            "control message without the L bit (Length present): RFC 2661 section 3.1 requires it",
        ),
        (
            "c002 000c 1234 0000 0003 0007",
            "control message without the S bit (Ns and Nr present): RFC 2661 section 3.1 requires it",
        ),
        (
            "ca02 000e 1234 0000 0003 0007 0000",
            "control message with the O bit (Offset Size) set: RFC 2661 section 3.1 requires it clear",
        ),
        ("c802 0020 1234 0000 0003 0007", "Length 32 is past the end of the 12-octet datagram"),
        ("c802 000c 1234 0000 0003", "the 10-octet datagram ends inside the header's Nr (needs 12 octets)"),
        ("c8", "the 1-octet datagram ends inside the header's flags and Ver (needs 2 octets)"),
    ];
    for (d, text) in cases {
        let e = Header::parse(&hex(d)).unwrap_err();
        assert_eq!(e.to_string(), text, "{d}");
    }
}

#[test]
fn data_headers_with_and_without_the_optional_fields() {
    // Only Tunnel ID and Session ID: the PPP frame follows at once.
    let d = hex("0002 1234 5678 ff03 c021");
    let (h, p) = Header::parse(&d).unwrap();
    assert_eq!(h.kind, Kind::Data);
    assert_eq!(
        (h.tunnel_id, h.session_id, h.length, h.sequence, h.offset),
        (0x1234, 0x5678, None, None, None)
    );
    assert_eq!(&d[p], &hex("ff03 c021")[..]);

    // L, S, O and P: Length 18, Ns 1, Nr 0, Offset Size 2 and two pad
    // octets, then ff 03.
    let d = hex("4b02 0012 0001 0002 0001 0000 0002 aabb ff03");
    let (h, p) = Header::parse(&d).unwrap();
    assert_eq!(h.length, Some(18));
    assert_eq!(h.sequence, Some(Sequence { ns: 1, nr: 0 }));
    assert_eq!(h.offset, Some(2));
    assert!(h.priority);
    assert_eq!(p, 16..18);
    assert_eq!(h.len(), 16);

    let e = Header::parse(&hex("0202 0001 0002 0009 ff03")).unwrap_err();
    assert_eq!(
        e,
        HeaderError::OffsetPastEnd {
            offset: 9,
            length: 10
        }
    );
    assert_eq!(
        e.to_string(),
        "Offset Size 9 runs past the end of the 10-octet message"
    );
    // Trailing octets after Length are not part of the message.
    let (_, p) = Header::parse(&hex("4002 000a 0001 0002 ff03 0000")).unwrap();
    assert_eq!(p, 8..10);
}

#[test]
fn encapsulate_writes_the_header_before_the_frame() {
    let mut buf = vec![0u8; 20];
    buf[12..16].copy_from_slice(&[0xff, 0x03, 0xc0, 0x21]);
    let mut h = Header::data(0x0102, 0x0304, true);
    h.sequence = Some(Sequence { ns: 5, nr: 0 });
    let r = encapsulate(&mut buf, 12..16, &h).unwrap();
    assert_eq!(r, 0..16);
    assert_eq!(buf[r], hex("4802 0010 0102 0304 0005 0000 ff03 c021")[..]);
    // Without Length or sequence numbers: 6 octets of header.
    let mut buf = vec![0u8; 10];
    buf[6..].copy_from_slice(&[0xff, 0x03, 0x00, 0x21]);
    let r = encapsulate(&mut buf, 6..10, &Header::data(7, 8, false)).unwrap();
    assert_eq!(buf[r], hex("0002 0007 0008 ff03 0021")[..]);
    let e = encapsulate(&mut buf, 4..10, &Header::data(7, 8, true)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "4 octets of headroom before the payload; the header needs 8"
    );
}

// ----- section 4.1 -----

#[test]
fn avp_header_and_lengths() {
    // Message Type SCCRQ: M set, Length 8, Vendor 0, Attribute 0, value 1.
    let body = hex("8008 0000 0000 0001");
    let avps: Vec<_> = AvpReader::new(&body).collect();
    assert_eq!(avps.len(), 1);
    let a = avps[0].as_ref().unwrap();
    assert!(a.mandatory && !a.hidden && a.is_ietf());
    assert_eq!((a.attribute_type, a.value), (0, &[0u8, 1][..]));
    for len in 0..6u16 {
        let mut body = hex("8008 0000 0000 0001");
        body.extend_from_slice(&(0x8000 | len).to_be_bytes());
        body.extend_from_slice(&hex("0000 0007"));
        let e = AvpReader::new(&body).nth(1).unwrap().unwrap_err();
        assert_eq!(
            e,
            AvpError::LengthTooShort {
                offset: 8,
                length: len
            }
        );
        assert_eq!(
            e.to_string(),
            format!("AVP at offset 8: Length {len} is shorter than the 6-octet AVP header")
        );
    }
    let e = AvpReader::new(&hex("800a 0000 0007 6c61"))
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "AVP at offset 0: Length 10 runs past the end of the message (8 octets left)"
    );
    let e = AvpReader::new(&hex("8008 00")).next().unwrap().unwrap_err();
    assert_eq!(
        e.to_string(),
        "AVP at offset 0: 3 octets left, the AVP header needs 6"
    );
    // The reserved bits make an AVP unrecognized (section 4.1).
    let body = hex("8408 0000 0009 0001");
    let a = AvpReader::new(&body).next().unwrap().unwrap();
    assert!(!a.is_ietf());
}

#[test]
fn avp_values_of_the_wrong_size_are_refused_by_name() {
    let cases: [(AttributeType, &str, &str); 5] = [
        (
            AttributeType::AssignedTunnelId,
            "000102",
            "Assigned Tunnel ID (9) AVP: a 3-octet value, expected 2 octets",
        ),
        (
            AttributeType::ChallengeResponse,
            "00",
            "Challenge Response (13) AVP: a 1-octet value, expected 16 octets",
        ),
        (
            AttributeType::HostName,
            "",
            "Host Name (7) AVP: a 0-octet value, expected at least 1 octet",
        ),
        (
            AttributeType::ResultCode,
            "000100",
            "Result Code (1) AVP: a 3-octet value, expected 2 octets, or 4 and an optional message",
        ),
        (
            AttributeType::Accm,
            "0000",
            "ACCM (35) AVP: a 2-octet value, expected 10 octets",
        ),
    ];
    for (t, v, text) in cases {
        let e = Avp::parse(t, &hex(v)).unwrap().unwrap_err();
        assert_eq!(e.to_string(), text);
    }
    assert!(Avp::parse(AttributeType::Unknown(20), &[]).is_none());
}

#[test]
fn typed_values_from_section_4_4() {
    // Result Code: result 2, error 8, message "x".
    let v = Avp::parse(AttributeType::ResultCode, &hex("0002 0008 78"))
        .unwrap()
        .unwrap();
    assert_eq!(
        v,
        Avp::ResultCode(ResultCode {
            result: 2,
            error: Some(8),
            message: b"x".to_vec()
        })
    );
    // ACCM: reserved, send, receive.
    let v = Avp::parse(AttributeType::Accm, &hex("0000 ffffffff 00000000"))
        .unwrap()
        .unwrap();
    assert_eq!(
        v,
        Avp::Accm {
            send: 0xffff_ffff,
            receive: 0
        }
    );
    // Protocol Version 1.0.
    let v = Avp::parse(AttributeType::ProtocolVersion, &hex("0100"))
        .unwrap()
        .unwrap();
    assert_eq!(
        v,
        Avp::ProtocolVersion {
            version: 1,
            revision: 0
        }
    );
    // Proxy Authen ID: reserved octet, then the ID.
    let v = Avp::parse(AttributeType::ProxyAuthenId, &hex("0007"))
        .unwrap()
        .unwrap();
    assert_eq!(v, Avp::ProxyAuthenId(7));
    let mut out = Vec::new();
    v.write_value(&mut out);
    assert_eq!(out, hex("0007"));
}

// ----- section 4.3 -----

/// The hiding of section 4.3 spelled out step by step from the RFC's text,
/// for a 20-octet subformat (one full chunk and a short one).
#[test]
fn hiding_follows_the_rfc_step_by_step() {
    let secret = b"secret";
    let rv = hex("0102030405060708090a0b0c0d0e0f10");
    let attribute: u16 = 30; // Proxy Authen Name
    let value = b"alice-remote-office"; // 19 octets
    let padding = [0xaa];
    // Subformat: Original Attribute Value Length (2 octets), value, padding.
    let mut p = vec![0, 19];
    p.extend_from_slice(value);
    p.extend_from_slice(&padding);
    assert_eq!(p.len(), 22);
    // b1 = MD5(AT + S + RV), c(1) = p1 xor b1.
    let b1 = md5(&[&attribute.to_be_bytes(), secret, &rv]);
    let c1: Vec<u8> = p[..16].iter().zip(b1).map(|(a, b)| a ^ b).collect();
    // b2 = MD5(S + c(1)), c(2) = p2 xor b2 (6 octets here).
    let b2 = md5(&[secret, &c1]);
    let c2: Vec<u8> = p[16..].iter().zip(b2).map(|(a, b)| a ^ b).collect();
    let expected = [c1, c2].concat();
    let hidden = hide(attribute, value, secret, &rv, &padding);
    assert_eq!(hidden, expected);
    assert_eq!(unhide(attribute, &hidden, secret, &rv).unwrap(), value);
    // Another secret does not reveal it.
    assert!(unhide(attribute, &hidden, b"other", &rv).map_or(true, |v| v != value));
}

#[test]
fn hidden_avps_in_a_message_both_ways() {
    let m = Message::new(MessageType::Icrq)
        .with(Avp::AssignedSessionId(0x4242))
        .with(Avp::CallSerialNumber(9))
        .with(Avp::CallingNumber(b"5551234".to_vec()));
    let mut body = Vec::new();
    let rv = [7u8; 16];
    m.emit(
        &mut body,
        Some(Hiding {
            secret: b"s",
            random_vector: &rv,
        }),
    );
    // Message Type, then Random Vector (section 4.3: before any hidden
    // AVP), then three hidden AVPs.
    let raws: Vec<_> = AvpReader::new(&body).map(|r| r.unwrap()).collect();
    assert_eq!(raws[1].attribute_type, 36);
    assert!(raws[2..].iter().all(|a| a.hidden));
    let back = Message::parse(&body, Some(b"s")).unwrap();
    assert_eq!(back.avps, m.avps);
    assert_eq!(back.hidden_count, 3);
    let e = Message::parse(&body, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Assigned Session ID (14) AVP is hidden (H bit) and no shared secret is configured to reveal it"
    );
    // A hidden AVP with no Random Vector before it.
    let mut body = Vec::new();
    write_avp(&mut body, true, false, 0, 0, &10u16.to_be_bytes());
    write_avp(
        &mut body,
        true,
        true,
        0,
        14,
        &hide(14, &[0, 1], b"s", b"rv", &[]),
    );
    let e = Message::parse(&body, Some(b"s")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Assigned Session ID (14) AVP is hidden (H bit) but no Random Vector AVP precedes it (RFC 2661 section 4.3)"
    );
}

// ----- sections 4.4.3 and 5.1.1 -----

#[test]
fn challenge_response_is_md5_of_type_secret_challenge() {
    let challenge: Vec<u8> = (0..16).collect();
    // MD5(0x02 "secret" 00..0f), computed independently.
    assert_eq!(
        challenge_response(MessageType::Sccrp, b"secret", &challenge).to_vec(),
        hex("dd4186e2196f00124a9d588f02701259")
    );
    let challenge: Vec<u8> = (16..32).collect();
    assert_eq!(
        challenge_response(MessageType::Scccn, b"secret", &challenge).to_vec(),
        hex("9b613fbb2d625c525dc1858730432128")
    );
}

// ----- section 6 -----

fn full(t: MessageType) -> Message {
    let mut m = Message::new(t);
    for &a in t.required_avps() {
        let v = match a {
            AttributeType::ProtocolVersion => Avp::ProtocolVersion {
                version: 1,
                revision: 0,
            },
            AttributeType::HostName => Avp::HostName(b"h".to_vec()),
            AttributeType::FramingCapabilities => Avp::FramingCapabilities(3),
            AttributeType::AssignedTunnelId => Avp::AssignedTunnelId(1),
            AttributeType::ResultCode => Avp::ResultCode(ResultCode {
                result: 1,
                error: None,
                message: vec![],
            }),
            AttributeType::AssignedSessionId => Avp::AssignedSessionId(1),
            AttributeType::CallSerialNumber => Avp::CallSerialNumber(1),
            AttributeType::MinimumBps => Avp::MinimumBps(1),
            AttributeType::MaximumBps => Avp::MaximumBps(1),
            AttributeType::BearerType => Avp::BearerType(1),
            AttributeType::FramingType => Avp::FramingType(1),
            AttributeType::CalledNumber => Avp::CalledNumber(b"1".to_vec()),
            AttributeType::TxConnectSpeed => Avp::TxConnectSpeed(1),
            AttributeType::CallErrors => Avp::CallErrors(Default::default()),
            AttributeType::Accm => Avp::Accm {
                send: 0,
                receive: 0,
            },
            other => panic!("no sample for {other}"),
        };
        m = m.with(v);
    }
    m
}

const ALL: [MessageType; 14] = [
    MessageType::Sccrq,
    MessageType::Sccrp,
    MessageType::Scccn,
    MessageType::StopCcn,
    MessageType::Hello,
    MessageType::Ocrq,
    MessageType::Ocrp,
    MessageType::Occn,
    MessageType::Icrq,
    MessageType::Icrp,
    MessageType::Iccn,
    MessageType::Cdn,
    MessageType::Wen,
    MessageType::Sli,
];

#[test]
fn every_message_with_its_required_avps_and_without_each() {
    for t in ALL {
        let m = full(t);
        let mut body = Vec::new();
        m.emit(&mut body, None);
        assert_eq!(Message::parse(&body, None).unwrap(), m, "{t}");
        for (i, &a) in t.required_avps().iter().enumerate() {
            let mut short = m.clone();
            short.avps.remove(i);
            let mut body = Vec::new();
            short.emit(&mut body, None);
            let e = Message::parse(&body, None).unwrap_err();
            assert_eq!(e, MessageError::MissingAvp { message: t, avp: a });
            assert_eq!(
                e.to_string(),
                format!(
                    "{} without the required {} AVP (RFC 2661 section 6)",
                    t.name().unwrap(),
                    a.name().unwrap()
                )
            );
        }
    }
}

#[test]
fn the_first_avp_must_be_message_type() {
    let mut body = Vec::new();
    write_avp(&mut body, true, false, 0, 7, b"host");
    let e = Message::parse(&body, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the first AVP is Host Name (7), not Message Type (RFC 2661 section 4.4.1)"
    );
    let mut body = Vec::new();
    write_avp(&mut body, true, false, 0, 0, &5u16.to_be_bytes());
    let e = Message::parse(&body, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown Message Type 5 with the M bit: the tunnel must be cleared"
    );
    let mut body = Vec::new();
    write_avp(&mut body, false, false, 0, 0, &99u16.to_be_bytes());
    assert_eq!(
        Message::parse(&body, None).unwrap_err(),
        MessageError::UnknownMessageType {
            value: 99,
            mandatory: false
        }
    );
}

#[test]
fn unknown_avps_are_kept_with_their_m_bit() {
    let mut body = Vec::new();
    full(MessageType::Hello).emit(&mut body, None);
    write_avp(&mut body, false, false, 9, 1, b"x");
    write_avp(&mut body, true, false, 0, 20, b"");
    let m = Message::parse(&body, None).unwrap();
    assert_eq!(m.unknown_count, 2);
    let u = m.unknown_mandatory().unwrap();
    assert_eq!((u.vendor_id, u.attribute_type), (0, 20));
    assert_eq!(
        m.to_string(),
        "HELLO <vendor 9 AVP type 1 (1 octets)> <AVP type 20 (0 octets, M)>"
    );
}

#[test]
fn log_text_of_a_sccrq() {
    let m = Message::new(MessageType::Sccrq)
        .with(Avp::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .with(Avp::HostName(b"lac\n".to_vec()))
        .with(Avp::FramingCapabilities(3))
        .with(Avp::AssignedTunnelId(4711))
        .with(Avp::ProxyAuthenResponse(b"password".to_vec()));
    assert_eq!(
        m.to_string(),
        "SCCRQ <Protocol Version 1.0> <Host Name \"lac\\x0a\"> <Framing Capabilities sync async> \
         <Assigned Tunnel ID 4711> <Proxy Authen Response 8 octets>"
    );
    let m = Message::new(MessageType::StopCcn).with(Avp::ResultCode(ResultCode {
        result: 2,
        error: Some(8),
        message: b"bye".to_vec(),
    }));
    assert_eq!(
        m.to_string(),
        "StopCCN <Result Code General error (2), error Session or tunnel was shutdown due to receipt of an unknown AVP with the M-bit set (8), \"bye\">"
    );
}
