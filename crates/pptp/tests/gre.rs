//! The enhanced GRE header (RFC 2637 section 4.1): octets written from the
//! figure, parsed, emitted back; every field that must be checked is; and
//! the IPv4 view of what a raw IPPROTO_GRE socket returns.

use std::net::Ipv4Addr;

use tsunagi_pptp::gre::*;

#[test]
fn data_packet_with_ack() {
    // |C|R|K|S|s|Recur|A| Flags | Ver |  Protocol Type  |
    //  0 0 1 1 0  000  1  0000   001      0x880B
    let packet = [
        0x30, 0x81, 0x88, 0x0b, // K S | A Ver 1 | Protocol Type
        0x00, 0x04, 0xbe, 0xef, // Payload Length 4 | Call ID
        0x00, 0x00, 0x00, 0x2a, // Sequence Number 42
        0x00, 0x00, 0x00, 0x29, // Acknowledgment Number 41
        0xff, 0x03, 0xc0, 0x21, // payload
    ];
    let (h, len) = GreHeader::parse(&packet).unwrap();
    assert_eq!(
        h,
        GreHeader {
            call_id: 0xbeef,
            payload_len: 4,
            seq: Some(42),
            ack: Some(41)
        }
    );
    assert_eq!(len, 16);
    assert_eq!(h.len(), 16);
    let mut out = [0u8; MAX_HEADER_LEN];
    h.emit(&mut out);
    assert_eq!(out, packet[..16]);
    let (_, payload) = GreHeader::parse_with_payload(&packet).unwrap();
    assert_eq!(payload, [0xff, 0x03, 0xc0, 0x21]);
}

#[test]
fn data_packet_without_ack() {
    let packet = [
        0x30, 0x01, 0x88, 0x0b, // K S | Ver 1 | Protocol Type
        0x00, 0x02, 0x00, 0x01, // Payload Length 2 | Call ID 1
        0xff, 0xff, 0xff, 0xff, // Sequence Number 2^32 - 1
        0x80, 0x21, // payload
        0x00, 0x00, // padding after the payload: ignored
    ];
    let (h, len) = GreHeader::parse(&packet).unwrap();
    assert_eq!(
        h,
        GreHeader {
            call_id: 1,
            payload_len: 2,
            seq: Some(u32::MAX),
            ack: None
        }
    );
    assert_eq!(len, 12);
    let mut out = [0xaa; 14];
    h.emit(&mut out);
    assert_eq!(out[..12], packet[..12]);
    // emit writes only len() octets.
    assert_eq!(out[12..], [0xaa, 0xaa]);
}

#[test]
fn ack_only() {
    // S clear: the Acknowledgment Number follows the Key directly (where a
    // Sequence Number would be); Payload Length 0.
    let packet = [
        0x20, 0x81, 0x88, 0x0b, // K | A Ver 1 | Protocol Type
        0x00, 0x00, 0x12, 0x34, // Payload Length 0 | Call ID
        0x00, 0x00, 0x01, 0x00, // Acknowledgment Number 256
    ];
    let (h, len) = GreHeader::parse(&packet).unwrap();
    assert_eq!(
        h,
        GreHeader {
            call_id: 0x1234,
            payload_len: 0,
            seq: None,
            ack: Some(256)
        }
    );
    assert!(h.is_ack_only());
    assert_eq!(len, 12);
    let mut out = [0u8; 12];
    h.emit(&mut out);
    assert_eq!(out, packet);
}

fn base() -> Vec<u8> {
    vec![0x30, 0x01, 0x88, 0x0b, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0]
}

#[test]
fn refused_headers() {
    let cases: Vec<(Vec<u8>, GreError)> = vec![
        (
            base()[..7].to_vec(),
            GreError::Truncated { need: 8, got: 7 },
        ),
        (
            base()[..11].to_vec(),
            GreError::Truncated { need: 12, got: 11 },
        ),
        (
            {
                let mut v = base();
                v[0] |= 0x80;
                v
            },
            GreError::FlagSet {
                flag: "C (Checksum Present)",
            },
        ),
        (
            {
                let mut v = base();
                v[0] |= 0x40;
                v
            },
            GreError::FlagSet {
                flag: "R (Routing Present)",
            },
        ),
        (
            {
                let mut v = base();
                v[0] |= 0x08;
                v
            },
            GreError::FlagSet {
                flag: "s (Strict source route)",
            },
        ),
        (
            {
                let mut v = base();
                v[0] |= 0x05;
                v
            },
            GreError::Recursion { value: 5 },
        ),
        (
            {
                let mut v = base();
                v[0] &= !0x20;
                v
            },
            GreError::NoKey,
        ),
        (
            {
                let mut v = base();
                v[1] |= 0x40;
                v
            },
            GreError::Flags { value: 8 },
        ),
        (
            {
                let mut v = base();
                v[1] = 0x00; // Ver 0: plain GRE (RFC 1701)
                v
            },
            GreError::Version { value: 0 },
        ),
        (
            {
                let mut v = base();
                v[2..4].copy_from_slice(&[0x08, 0x00]);
                v
            },
            GreError::Protocol { value: 0x0800 },
        ),
        (
            {
                let mut v = base();
                v[5] = 1;
                v
            },
            GreError::PayloadOverrun {
                payload_len: 1,
                available: 0,
            },
        ),
        (
            {
                let mut v = base();
                v[0] &= !0x10; // S clear, A clear
                v
            },
            GreError::Empty,
        ),
        (
            {
                let mut v = base();
                v[0] &= !0x10; // S clear, A set, a Payload Length
                v[1] |= 0x80;
                v[5] = 4;
                v
            },
            GreError::PayloadWithoutSequence { payload_len: 4 },
        ),
    ];
    for (packet, want) in cases {
        assert_eq!(
            GreHeader::parse(&packet),
            Err(want.clone()),
            "{packet:02x?}"
        );
        assert!(!want.to_string().is_empty());
    }
    assert_eq!(
        GreError::Version { value: 0 }.to_string(),
        "GRE Ver 0 (must be 1, enhanced GRE)"
    );
}

#[test]
fn emit_parse_round_trip() {
    for seq in [None, Some(0), Some(1), Some(u32::MAX)] {
        for ack in [None, Some(0), Some(0x8000_0000), Some(u32::MAX)] {
            if seq.is_none() && ack.is_none() {
                continue;
            }
            let h = GreHeader {
                call_id: 0xa5a5,
                payload_len: if seq.is_some() { 3 } else { 0 },
                seq,
                ack,
            };
            let mut packet = vec![0u8; h.len() + usize::from(h.payload_len)];
            h.emit(&mut packet);
            assert_eq!(GreHeader::parse(&packet), Ok((h, h.len())));
        }
    }
}

#[test]
#[should_panic(expected = "GRE header of 16 octets into 12 octets")]
fn emit_into_too_little_headroom_panics() {
    let h = GreHeader {
        call_id: 1,
        payload_len: 0,
        seq: Some(1),
        ack: Some(1),
    };
    h.emit(&mut [0u8; 12]);
}

fn ipv4(payload: &[u8], protocol: u8) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut v = vec![
        0x45,
        0x00,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        0x40,
        0x00, // DF
        64,
        protocol,
        0,
        0,
        192,
        0,
        2,
        7,
        192,
        0,
        2,
        1,
    ];
    v.extend_from_slice(payload);
    v
}

#[test]
fn ipv4_view() {
    let gre = [0x20, 0x81, 0x88, 0x0b, 0, 0, 0, 5, 0, 0, 0, 9];
    let packet = ipv4(&gre, 47);
    let (src, inner) = ipv4_payload(&packet).unwrap();
    assert_eq!(src, Ipv4Addr::new(192, 0, 2, 7));
    assert_eq!(inner, gre);
    // Octets after Total Length (Ethernet padding) are not GRE.
    let mut padded = packet.clone();
    padded.extend([0; 6]);
    assert_eq!(ipv4_payload(&padded).unwrap().1, gre);
    // Options: IHL 6.
    let mut opts = packet.clone();
    opts[0] = 0x46;
    opts.splice(20..20, [1, 1, 1, 0]);
    let total = opts.len() as u16;
    opts[2..4].copy_from_slice(&total.to_be_bytes());
    assert_eq!(ipv4_payload(&opts).unwrap().1, gre);

    let bad = |f: &dyn Fn(&mut Vec<u8>), want: GreError| {
        let mut p = packet.clone();
        f(&mut p);
        assert_eq!(ipv4_payload(&p), Err(want));
    };
    bad(
        &|p| p.truncate(19),
        GreError::Ipv4Truncated { need: 20, got: 19 },
    );
    bad(&|p| p[0] = 0x65, GreError::Ipv4Version { value: 6 });
    bad(&|p| p[0] = 0x44, GreError::Ipv4HeaderLength { value: 4 });
    bad(
        &|p| p[0] = 0x4f,
        GreError::Ipv4Truncated { need: 60, got: 32 },
    );
    bad(
        &|p| p[2..4].copy_from_slice(&1000u16.to_be_bytes()),
        GreError::Ipv4TotalLength {
            total_length: 1000,
            header_len: 20,
            got: 32,
        },
    );
    bad(
        &|p| p[2..4].copy_from_slice(&19u16.to_be_bytes()),
        GreError::Ipv4TotalLength {
            total_length: 19,
            header_len: 20,
            got: 32,
        },
    );
    bad(&|p| p[9] = 17, GreError::NotGre { value: 17 });
    bad(
        &|p| p[6] = 0x20, // MF
        GreError::Ipv4Fragment {
            offset: 0,
            more: true,
        },
    );
    bad(
        &|p| p[7] = 0x10,
        GreError::Ipv4Fragment {
            offset: 16,
            more: false,
        },
    );
}
