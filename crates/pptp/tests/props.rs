//! Properties: arbitrary octets into the parsers and the stream reader never
//! panic; every message emits to octets that parse back to it, alone and in
//! any chunking of a stream; a parsed GRE header emits back to its octets;
//! an engine of either role takes any stream in any chunking.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use tsunagi_pptp::control::*;
use tsunagi_pptp::gre::{ipv4_payload, GreHeader, MAX_HEADER_LEN};
use tsunagi_pptp::text::Text;
use tsunagi_pptp::{Connection, ConnectionConfig, ConnectionEvent, ControlState, Role};

fn text64() -> impl Strategy<Value = Text<64>> {
    prop::collection::vec(any::<u8>(), 0..=64).prop_map(|v| Text::from_bytes(&v))
}

fn text128() -> impl Strategy<Value = Text<128>> {
    prop::collection::vec(any::<u8>(), 0..=128).prop_map(|v| Text::from_bytes(&v))
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<(u16, u32, u32, u16, u16)>(), text64(), text64()).prop_map(
            |((v, f, b, m, fw), h, vs)| {
                Message::StartControlConnectionRequest(StartControlConnectionRequest {
                    protocol_version: v,
                    framing_capabilities: f,
                    bearer_capabilities: b,
                    maximum_channels: m,
                    firmware_revision: fw,
                    host_name: h,
                    vendor_string: vs,
                })
            }
        ),
        (
            any::<(u16, u8, u8, u32, u32, u16, u16)>(),
            text64(),
            text64()
        )
            .prop_map(|((v, r, e, f, b, m, fw), h, vs)| {
                Message::StartControlConnectionReply(StartControlConnectionReply {
                    protocol_version: v,
                    result_code: r.into(),
                    error_code: e.into(),
                    framing_capabilities: f,
                    bearer_capabilities: b,
                    maximum_channels: m,
                    firmware_revision: fw,
                    host_name: h,
                    vendor_string: vs,
                })
            }),
        any::<u8>().prop_map(|r| Message::StopControlConnectionRequest(
            StopControlConnectionRequest { reason: r.into() }
        )),
        any::<(u8, u8)>().prop_map(|(r, e)| Message::StopControlConnectionReply(
            StopControlConnectionReply {
                result_code: r.into(),
                error_code: e.into()
            }
        )),
        any::<u32>().prop_map(|i| Message::EchoRequest(EchoRequest { identifier: i })),
        any::<(u32, u8, u8)>().prop_map(|(i, r, e)| Message::EchoReply(EchoReply {
            identifier: i,
            result_code: r.into(),
            error_code: e.into()
        })),
        (
            any::<(u16, u16, u32, u32, u32, u32)>(),
            any::<(u16, u16, u16)>(),
            text64(),
            text64()
        )
            .prop_map(|((c, s, mn, mx, b, f), (w, d, pl), pn, sa)| {
                Message::OutgoingCallRequest(OutgoingCallRequest {
                    call_id: c,
                    call_serial_number: s,
                    minimum_bps: mn,
                    maximum_bps: mx,
                    bearer_type: b,
                    framing_type: f,
                    packet_recv_window_size: w,
                    packet_processing_delay: d,
                    phone_number_length: pl,
                    phone_number: pn,
                    subaddress: sa,
                })
            }),
        any::<(u16, u16, u8, u8, u16, u32, u16, u16, u32)>().prop_map(
            |(c, p, r, e, cc, sp, w, d, ch)| Message::OutgoingCallReply(OutgoingCallReply {
                call_id: c,
                peer_call_id: p,
                result_code: r.into(),
                error_code: e.into(),
                cause_code: cc,
                connect_speed: sp,
                packet_recv_window_size: w,
                packet_processing_delay: d,
                physical_channel_id: ch,
            })
        ),
        (
            any::<(u16, u16, u32, u32, u16, u16)>(),
            text64(),
            text64(),
            text64()
        )
            .prop_map(|((c, s, b, ch, l1, l2), d1, d2, sa)| {
                Message::IncomingCallRequest(IncomingCallRequest {
                    call_id: c,
                    call_serial_number: s,
                    call_bearer_type: b,
                    physical_channel_id: ch,
                    dialed_number_length: l1,
                    dialing_number_length: l2,
                    dialed_number: d1,
                    dialing_number: d2,
                    subaddress: sa,
                })
            }),
        any::<(u16, u16, u8, u8, u16, u16)>().prop_map(|(c, p, r, e, w, d)| {
            Message::IncomingCallReply(IncomingCallReply {
                call_id: c,
                peer_call_id: p,
                result_code: r.into(),
                error_code: e.into(),
                packet_recv_window_size: w,
                packet_transmit_delay: d,
            })
        }),
        any::<(u16, u32, u16, u16, u32)>().prop_map(|(p, s, w, d, f)| {
            Message::IncomingCallConnected(IncomingCallConnected {
                peer_call_id: p,
                connect_speed: s,
                packet_recv_window_size: w,
                packet_transmit_delay: d,
                framing_type: f,
            })
        }),
        any::<u16>().prop_map(|c| Message::CallClearRequest(CallClearRequest { call_id: c })),
        (any::<(u16, u8, u8, u16)>(), text128()).prop_map(|((c, r, e, cc), st)| {
            Message::CallDisconnectNotify(CallDisconnectNotify {
                call_id: c,
                result_code: r.into(),
                error_code: e.into(),
                cause_code: cc,
                call_statistics: st,
            })
        }),
        (any::<u16>(), any::<[u32; 6]>()).prop_map(|(p, e)| {
            Message::WanErrorNotify(WanErrorNotify {
                peer_call_id: p,
                errors: WanErrors {
                    crc_errors: e[0],
                    framing_errors: e[1],
                    hardware_overruns: e[2],
                    buffer_overruns: e[3],
                    timeout_errors: e[4],
                    alignment_errors: e[5],
                },
            })
        }),
        any::<(u16, u32, u32)>().prop_map(|(p, s, r)| Message::SetLinkInfo(SetLinkInfo {
            peer_call_id: p,
            send_accm: s,
            receive_accm: r
        })),
    ]
}

/// Cuts `stream` at the given fractions.
fn chunks<'a>(stream: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) * stream.len() / 65536)
        .collect();
    points.sort_unstable();
    points.push(stream.len());
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(&stream[start..p]);
        start = p;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = Message::parse(&bytes) {
            // Accepted: the length was the type's, and emitting gives the
            // same octets but for the reserved fields.
            prop_assert_eq!(m.wire_len(), bytes.len());
            let again = Message::parse(&m.to_vec()).unwrap();
            prop_assert_eq!(again, m);
        }
    }

    #[test]
    fn parse_with_a_valid_header_never_panics(
        ty in 0u16..20,
        length in 0u16..300,
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut v = length.to_be_bytes().to_vec();
        v.extend(1u16.to_be_bytes());
        v.extend(MAGIC_COOKIE.to_be_bytes());
        v.extend(ty.to_be_bytes());
        v.extend(body);
        let _ = Message::parse(&v);
        let mut r = ControlReader::new();
        r.push(&v);
        while r.pop().is_some() {}
        prop_assert!(r.buffered() <= MAX_MESSAGE_LEN);
        let _ = r.finish();
    }

    #[test]
    fn emit_then_parse_is_identity(m in message()) {
        let v = m.to_vec();
        prop_assert_eq!(v.len(), m.wire_len());
        prop_assert_eq!(Message::parse(&v), Ok(m.clone()));
        // Display never panics on any field.
        let _ = m.to_string();
    }

    #[test]
    fn reader_reassembles_any_chunking(
        ms in prop::collection::vec(message(), 1..8),
        cuts in prop::collection::vec(any::<u16>(), 0..12),
    ) {
        let mut stream = Vec::new();
        for m in &ms {
            m.emit(&mut stream);
        }
        let mut r = ControlReader::new();
        let mut got = Vec::new();
        for c in chunks(&stream, &cuts) {
            r.push(c);
            while let Some(m) = r.pop() {
                got.push(m.unwrap());
            }
            prop_assert!(r.buffered() < MAX_MESSAGE_LEN);
        }
        prop_assert_eq!(got, ms);
        prop_assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn reader_never_panics(
        stream in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(any::<u16>(), 0..12),
    ) {
        let mut r = ControlReader::new();
        for c in chunks(&stream, &cuts) {
            r.push(c);
            while let Some(m) = r.pop() {
                if m.is_err() {
                    prop_assert!(r.has_failed());
                }
            }
            // Never more than one message plus one read.
            prop_assert!(r.buffered() <= MAX_MESSAGE_LEN + c.len());
        }
        let _ = r.finish();
    }

    #[test]
    fn gre_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok((h, len)) = GreHeader::parse(&bytes) {
            prop_assert_eq!(len, h.len());
            prop_assert!(len + usize::from(h.payload_len) <= bytes.len());
            let mut out = [0u8; MAX_HEADER_LEN];
            h.emit(&mut out);
            prop_assert_eq!(&out[..len], &bytes[..len]);
        }
        let _ = ipv4_payload(&bytes);
    }

    #[test]
    fn gre_flags_fuzzed_around_a_valid_header(
        b0 in any::<u8>(),
        b1 in any::<u8>(),
        payload_len in 0u16..40,
        rest in prop::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut v = vec![b0, b1, 0x88, 0x0b];
        v.extend(payload_len.to_be_bytes());
        v.extend([0x12, 0x34]);
        v.extend(rest);
        if let Ok((h, len)) = GreHeader::parse(&v) {
            prop_assert_eq!(b0 & 0xcf, 0x20, "only K and S may be set");
            prop_assert_eq!(b1 & 0x7f, 0x01, "only A and Ver 1");
            let mut out = [0u8; MAX_HEADER_LEN];
            h.emit(&mut out);
            prop_assert_eq!(&out[..len], &v[..len]);
        }
    }

    #[test]
    fn engines_take_any_stream(
        pac in any::<bool>(),
        prefix_valid in any::<bool>(),
        stream in prop::collection::vec(any::<u8>(), 0..600),
        cuts in prop::collection::vec(any::<u16>(), 0..8),
    ) {
        let role = if pac { Role::Pac } else { Role::Pns };
        let t0 = Instant::now();
        let mut c = Connection::new(ConnectionConfig::new(role), t0);
        let mut input = Vec::new();
        if prefix_valid && pac {
            Message::StartControlConnectionRequest(StartControlConnectionRequest {
                protocol_version: 0x0100,
                framing_capabilities: 3,
                bearer_capabilities: 3,
                maximum_channels: 0,
                firmware_revision: 0,
                host_name: Text::EMPTY,
                vendor_string: Text::EMPTY,
            })
            .emit(&mut input);
        }
        input.extend(&stream);
        let mut now = t0;
        let mut out = Vec::new();
        let mut closed = 0;
        for chunk in chunks(&input, &cuts) {
            now += Duration::from_secs(7);
            c.handle_bytes(now, chunk);
            c.handle_timeout(now);
            while c.poll_transmit(&mut out) {}
            while let Some(e) = c.poll_event() {
                if matches!(e, ConnectionEvent::Closed { .. }) {
                    closed += 1;
                }
            }
            if let Some(t) = c.poll_timeout() {
                prop_assert!(t > now, "a fired timer re-arms in the future");
            }
        }
        c.handle_eof(now);
        while let Some(e) = c.poll_event() {
            if matches!(e, ConnectionEvent::Closed { .. }) {
                closed += 1;
            }
        }
        prop_assert_eq!(closed, 1, "exactly one Closed");
        prop_assert_eq!(c.state(), ControlState::Closed);
        // What it sent parses.
        while c.poll_transmit(&mut out) {}
        let mut r = ControlReader::new();
        r.push(&out);
        while let Some(m) = r.pop() {
            prop_assert!(m.is_ok());
        }
        prop_assert_eq!(r.finish(), Ok(()));
    }
}
