//! Properties: parsing never panics (any octets, octets behind a valid
//! header, mutations of a real message), and emit then parse is the
//! identity on messages built from any payloads.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use tsunagi_ipsec::isakmp::fuzzing::isakmp_parse;
use tsunagi_ipsec::isakmp::payload::{
    Delete, Doi, IdType, Identification, NatTNumbering, Notification, NotifyType, ProtocolId,
};
use tsunagi_ipsec::isakmp::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        (0u16..0x8000, any::<u16>()).prop_map(|(t, v)| Attribute::basic(t, v)),
        (0u16..0x8000, bytes(12)).prop_map(|(t, v)| Attribute::variable(t, &v)),
    ]
}

fn transform() -> impl Strategy<Value = Transform> {
    (
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(attribute(), 0..8),
    )
        .prop_map(|(number, transform_id, attributes)| Transform {
            number,
            transform_id,
            attributes,
        })
}

fn proposal() -> impl Strategy<Value = Proposal> {
    (
        any::<u8>(),
        any::<u8>(),
        bytes(9),
        prop::collection::vec(transform(), 1..5),
    )
        .prop_map(|(number, protocol, spi, transforms)| Proposal {
            number,
            protocol: ProtocolId::from(protocol),
            spi,
            transforms,
        })
}

fn payload() -> impl Strategy<Value = Payload> {
    let nat = prop_oneof![Just(NatTNumbering::Rfc3947), Just(NatTNumbering::Draft)];
    let addr = prop_oneof![
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ];
    prop_oneof![
        (any::<u32>(), prop::collection::vec(proposal(), 1..4)).prop_map(|(doi, proposals)| {
            // Situation: SIT_IDENTITY_ONLY for the IPsec DOI, anything
            // for another.
            let doi = Doi::from(doi % 3);
            Payload::Sa(SaPayload {
                doi,
                situation: if doi == Doi::Ipsec { 1 } else { 7 },
                proposals,
            })
        }),
        bytes(300).prop_map(Payload::KeyExchange),
        bytes(64).prop_map(Payload::Nonce),
        bytes(64).prop_map(Payload::Hash),
        bytes(64).prop_map(Payload::Signature),
        bytes(32).prop_map(Payload::VendorId),
        (any::<u8>(), bytes(40))
            .prop_map(|(encoding, data)| Payload::Certificate { encoding, data }),
        (any::<u8>(), bytes(40)).prop_map(|(cert_type, authority)| Payload::CertificateRequest {
            cert_type,
            authority
        }),
        (any::<u8>(), any::<u8>(), any::<u16>(), bytes(40)).prop_map(
            |(t, protocol, port, data)| {
                Payload::Identification(Identification {
                    id_type: IdType::from(t),
                    protocol,
                    port,
                    data,
                })
            }
        ),
        (
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
            bytes(17),
            bytes(17)
        )
            .prop_map(|(doi, protocol, t, spi, data)| Payload::Notification(
                Notification {
                    doi: Doi::from(doi),
                    protocol: ProtocolId::from(protocol),
                    notify_type: NotifyType::from(t),
                    spi,
                    data,
                }
            )),
        (any::<u8>(), prop::collection::vec(any::<[u8; 4]>(), 0..4)).prop_map(
            |(protocol, spis)| {
                Payload::Delete(Delete {
                    doi: Doi::Ipsec,
                    protocol: ProtocolId::from(protocol),
                    spi_size: 4,
                    spis: spis.into_iter().map(|s| s.to_vec()).collect(),
                })
            }
        ),
        (nat.clone(), bytes(32)).prop_map(|(numbering, hash)| Payload::NatD { numbering, hash }),
        (nat, addr).prop_map(|(numbering, address)| Payload::NatOa { numbering, address }),
        (prop_oneof![14u8..20, 200u8..=255], bytes(20))
            .prop_map(|(payload_type, body)| Payload::Unknown { payload_type, body }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
        prop::collection::vec(payload(), 0..8),
    )
        .prop_map(|(i, r, exchange, flags, message_id, payloads)| Message {
            header: Header {
                initiator_spi: i,
                responder_spi: r,
                exchange: ExchangeType::from(exchange),
                flags: Flags(flags & !Flags::ENCRYPTION),
                message_id,
            },
            payloads,
        })
}

/// A valid Main Mode first message (SA, two transforms, a VID).
fn main_mode_1() -> Vec<u8> {
    let t = |n, enc| Transform {
        number: n,
        transform_id: 1,
        attributes: vec![
            Attribute::basic(1, enc),
            Attribute::basic(2, 2),
            Attribute::basic(3, 1),
            Attribute::basic(4, 2),
            Attribute::basic(11, 1),
            Attribute::variable(12, &[0, 0, 0x70, 0x80]),
        ],
    };
    Message::new(Header {
        initiator_spi: [1; 8],
        responder_spi: [0; 8],
        exchange: ExchangeType::IdentityProtection,
        flags: Flags(0),
        message_id: 0,
    })
    .with(Payload::Sa(SaPayload {
        doi: Doi::Ipsec,
        situation: 1,
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::Isakmp,
            spi: vec![],
            transforms: vec![t(1, 5), t(2, 7)],
        }],
    }))
    .with(Payload::VendorId(
        vendor::KnownVendor::NatTRfc3947.id().to_vec(),
    ))
    .to_vec()
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics_on_any_octets(data in bytes(200)) {
        isakmp_parse(&data);
    }

    #[test]
    fn parse_never_panics_behind_a_valid_header(next in any::<u8>(), flags in any::<u8>(), body in bytes(300), extra in 0usize..4) {
        let mut v = vec![1u8; 16];
        v.extend([next, 0x10, 2, flags, 0, 0, 0, 0]);
        v.extend(((28 + body.len()) as u32).to_be_bytes());
        v.extend(&body);
        v.extend(vec![0u8; extra]);
        isakmp_parse(&v);
    }

    #[test]
    fn parse_never_panics_on_mutated_messages(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
        let mut v = main_mode_1();
        for (at, b) in edits {
            let at = at % v.len();
            v[at] = b;
        }
        let keep = 28 + cut % (v.len() - 27);
        v.truncate(keep);
        isakmp_parse(&v);
    }

    /// emit then parse gives the message back, and emitting that again
    /// gives the same octets.
    #[test]
    fn emit_then_parse_is_identity(m in message()) {
        let bytes = m.to_vec().unwrap();
        match parse(&bytes) {
            Ok(Parsed::Message(back)) => {
                prop_assert_eq!(&back, &m);
                prop_assert_eq!(back.to_vec().unwrap(), bytes);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
