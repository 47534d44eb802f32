//! Properties: headers and messages round-trip through emit and parse
//! (hidden or not); nothing panics on arbitrary input.

mod common;

use std::time::{Duration, Instant};

use proptest::prelude::*;
use tsunagi_l2tp::avp::{hide, unhide, Avp, CallErrors, Q931Cause, ResultCode};
use tsunagi_l2tp::header::{Header, Kind, Sequence};
use tsunagi_l2tp::message::{Hiding, Message, MessageType};
use tsunagi_l2tp::{Dispatch, DispatchConfig, Role, Tunnel, TunnelConfig};

fn bytes(min: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), min..40)
}

fn avp() -> impl Strategy<Value = Avp> {
    prop_oneof![
        (any::<u16>(), proptest::option::of(any::<u16>()), bytes(0)).prop_map(|(r, e, m)| {
            Avp::ResultCode(ResultCode {
                result: r,
                error: e,
                message: if e.is_some() { m } else { vec![] },
            })
        }),
        (any::<u8>(), any::<u8>()).prop_map(|(v, r)| Avp::ProtocolVersion {
            version: v,
            revision: r
        }),
        any::<u32>().prop_map(Avp::FramingCapabilities),
        any::<u32>().prop_map(Avp::BearerCapabilities),
        any::<[u8; 8]>().prop_map(Avp::TieBreaker),
        any::<u16>().prop_map(Avp::FirmwareRevision),
        bytes(1).prop_map(Avp::HostName),
        bytes(0).prop_map(Avp::VendorName),
        any::<u16>().prop_map(Avp::AssignedTunnelId),
        any::<u16>().prop_map(Avp::ReceiveWindowSize),
        bytes(1).prop_map(Avp::Challenge),
        (any::<u16>(), any::<u8>(), bytes(0)).prop_map(|(c, m, a)| Avp::Q931CauseCode(Q931Cause {
            cause: c,
            message: m,
            advisory: a
        })),
        any::<[u8; 16]>().prop_map(Avp::ChallengeResponse),
        any::<u16>().prop_map(Avp::AssignedSessionId),
        any::<u32>().prop_map(Avp::CallSerialNumber),
        any::<u32>().prop_map(Avp::MinimumBps),
        any::<u32>().prop_map(Avp::MaximumBps),
        any::<u32>().prop_map(Avp::BearerType),
        any::<u32>().prop_map(Avp::FramingType),
        bytes(0).prop_map(Avp::CalledNumber),
        bytes(0).prop_map(Avp::CallingNumber),
        bytes(0).prop_map(Avp::SubAddress),
        any::<u32>().prop_map(Avp::TxConnectSpeed),
        any::<u32>().prop_map(Avp::PhysicalChannelId),
        bytes(0).prop_map(Avp::InitialReceivedLcpConfreq),
        bytes(0).prop_map(Avp::LastSentLcpConfreq),
        bytes(0).prop_map(Avp::LastReceivedLcpConfreq),
        any::<u16>().prop_map(Avp::ProxyAuthenType),
        bytes(0).prop_map(Avp::ProxyAuthenName),
        bytes(0).prop_map(Avp::ProxyAuthenChallenge),
        any::<u8>().prop_map(Avp::ProxyAuthenId),
        bytes(0).prop_map(Avp::ProxyAuthenResponse),
        any::<[u32; 6]>().prop_map(|c| Avp::CallErrors(CallErrors {
            crc_errors: c[0],
            framing_errors: c[1],
            hardware_overruns: c[2],
            buffer_overruns: c[3],
            timeout_errors: c[4],
            alignment_errors: c[5],
        })),
        (any::<u32>(), any::<u32>()).prop_map(|(s, r)| Avp::Accm {
            send: s,
            receive: r
        }),
        bytes(0).prop_map(Avp::PrivateGroupId),
        any::<u32>().prop_map(Avp::RxConnectSpeed),
        Just(Avp::SequencingRequired),
    ]
}

proptest! {
    #[test]
    fn header_emit_parse_round_trip(
        control in any::<bool>(),
        length in any::<bool>(),
        seq in proptest::option::of((any::<u16>(), any::<u16>())),
        offset in proptest::option::of(0u16..8),
        priority in any::<bool>(),
        tunnel in any::<u16>(),
        session in any::<u16>(),
        payload in bytes(0),
    ) {
        let mut h = Header {
            kind: if control { Kind::Control } else { Kind::Data },
            length: None,
            tunnel_id: tunnel,
            session_id: session,
            sequence: seq.map(|(ns, nr)| Sequence { ns, nr }),
            offset,
            priority,
        };
        if control {
            h.sequence = Some(h.sequence.unwrap_or_default());
            h.offset = None;
        }
        if control || length {
            h.length = Some(0);
            h.length = Some((h.len() + payload.len()) as u16);
        }
        let mut d = vec![0u8; h.len()];
        h.emit(&mut d);
        d.extend_from_slice(&payload);
        let (back, range) = Header::parse(&d).unwrap();
        prop_assert_eq!(back, h);
        prop_assert_eq!(&d[range], &payload[..]);
    }

    #[test]
    fn message_emit_parse_round_trip(
        t in prop::sample::select(vec![
            MessageType::Hello, MessageType::Scccn, MessageType::Sccrp, MessageType::Icrq,
        ]),
        avps in proptest::collection::vec(avp(), 0..12),
        hidden in any::<bool>(),
        secret in bytes(1),
        rv in bytes(1),
    ) {
        let mut m = Message::new(t);
        m.avps = avps;
        let mut body = Vec::new();
        let hiding = hidden.then_some(Hiding { secret: &secret, random_vector: &rv });
        m.emit(&mut body, hiding);
        let back = match Message::parse(&body, Some(&secret)) {
            Ok(b) => b,
            // The sample need not have the AVPs the type requires.
            Err(tsunagi_l2tp::MessageError::MissingAvp { .. }) => return Ok(()),
            Err(e) => panic!("{e}"),
        };
        prop_assert_eq!(back.avps, m.avps);
    }

    #[test]
    fn hide_unhide_round_trip(t in any::<u16>(), v in bytes(0), s in bytes(0), rv in bytes(0), pad in bytes(0)) {
        let h = hide(t, &v, &s, &rv, &pad);
        prop_assert_eq!(h.len(), 2 + v.len() + pad.len());
        prop_assert_eq!(unhide(t, &h, &s, &rv).unwrap(), v);
    }

    #[test]
    fn parsers_never_panic(d in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Header::parse(&d);
        let _ = Message::parse(&d, Some(b"k"));
        let _ = Message::parse(&d, None);
        let _ = tsunagi_l2tp::text::DatagramText { datagram: &d, secret: None }.to_string();
    }

    #[test]
    fn engines_never_panic(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..20),
        lns in any::<bool>(),
        initiator in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let role = if lns { Role::Lns } else { Role::Lac };
        let random = common::seeded(1);
        let mut t = if initiator {
            Tunnel::connect(TunnelConfig::new(role), 7, t0, random.clone())
        } else {
            Tunnel::accept(TunnelConfig::new(role), 7, t0, random.clone())
        };
        let mut d = Dispatch::new(DispatchConfig::default(), random);
        let mut now = t0;
        let mut out = Vec::new();
        for mut x in datagrams {
            // Point some at our tunnel id.
            if x.len() > 5 && x[0] & 1 == 1 {
                x[4] = 0;
                x[5] = 7;
            }
            now += Duration::from_millis(300);
            let _ = d.route("192.0.2.1:1701".parse().unwrap(), &x);
            let _ = t.handle_input(now, &x);
            if t.poll_timeout().is_some_and(|w| w <= now) {
                t.handle_timeout(now);
            }
            while t.poll_transmit(&mut out) {}
            while t.poll_event().is_some() {}
        }
    }
}
