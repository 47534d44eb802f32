//! The PoPToP bug class (CVE-2003-0213, seed 001: a control packet Length
//! of 0 or 1 made pptpd read a huge amount onto its stack) and its
//! relatives, at the stream reader and at the engine of each role: every bad
//! header ends the connection with `Closed { BadMessage }` naming the field,
//! at once, without a panic and without buffering what the Length claims.

use std::time::{Duration, Instant};

use tsunagi_pptp::control::*;
use tsunagi_pptp::{
    CloseReason, Connection, ConnectionConfig, ConnectionEvent, ControlState, Role,
};

fn sccrq() -> Message {
    Message::StartControlConnectionRequest(StartControlConnectionRequest {
        protocol_version: PROTOCOL_VERSION,
        framing_capabilities: 3,
        bearer_capabilities: 3,
        maximum_channels: 0,
        firmware_revision: 1,
        host_name: "client".into(),
        vendor_string: "test".into(),
    })
}

fn ocrq(call_id: u16) -> Message {
    Message::OutgoingCallRequest(OutgoingCallRequest {
        call_id,
        call_serial_number: 1,
        minimum_bps: 2400,
        maximum_bps: 10_000_000,
        bearer_type: 3,
        framing_type: 3,
        packet_recv_window_size: 64,
        packet_processing_delay: 0,
        phone_number_length: 0,
        phone_number: Default::default(),
        subaddress: Default::default(),
    })
}

/// A 12-octet header with `length`, a valid type and cookie, Echo-Request.
fn header(length: u16) -> Vec<u8> {
    let mut v = length.to_be_bytes().to_vec();
    v.extend(1u16.to_be_bytes());
    v.extend(MAGIC_COOKIE.to_be_bytes());
    v.extend(5u16.to_be_bytes());
    v.extend([0, 0]);
    v
}

fn events(c: &mut Connection) -> Vec<ConnectionEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn closed_with(c: &mut Connection) -> Option<CloseReason> {
    events(c).into_iter().find_map(|e| match e {
        ConnectionEvent::Closed { why } => Some(why),
        _ => None,
    })
}

/// Both roles, one fresh connection each (a PAC idle, a PNS that sent its
/// request), fed `bytes` in one read.
fn feed_both(bytes: &[u8]) -> Vec<(Role, Option<CloseReason>)> {
    [Role::Pac, Role::Pns]
        .into_iter()
        .map(|role| {
            let now = Instant::now();
            let mut c = Connection::new(ConnectionConfig::new(role), now);
            let mut out = Vec::new();
            c.poll_transmit(&mut out);
            c.handle_bytes(now, bytes);
            let why = closed_with(&mut c);
            if why.is_some() {
                assert_eq!(c.state(), ControlState::Closed);
                // Nothing goes back to a peer that sends garbage.
                out.clear();
                assert!(!c.poll_transmit(&mut out), "{role}: sent {out:?}");
                assert_eq!(c.poll_timeout(), None);
            }
            (role, why)
        })
        .collect()
}

#[test]
fn poptop_lengths() {
    for (length, text) in [
        (0u16, "Length 0 is shorter than the 12-octet header"),
        (1, "Length 1 is shorter than the 12-octet header"),
        (10, "Length 10 is shorter than the 12-octet header"),
        (11, "Length 11 is shorter than the 12-octet header"),
        (
            0xffff,
            "Length 65535 (0xffff) is longer than any control message \
             (the longest, Incoming-Call-Request, is 220 octets)",
        ),
    ] {
        // Only the two Length octets: refused without waiting for more.
        let mut reader = ControlReader::new();
        reader.push(&length.to_be_bytes());
        let e = reader.pop().expect("an answer after 2 octets").unwrap_err();
        assert_eq!(e.to_string(), text);
        assert!(reader.pop().is_none());
        assert_eq!(reader.buffered(), 0);
        // The rest of the stream is dropped, not buffered.
        reader.push(&vec![0x41; 65536]);
        assert_eq!(reader.buffered(), 0);
        assert!(reader.pop().is_none());

        for (role, why) in feed_both(&header(length)) {
            match why {
                Some(CloseReason::BadMessage(e)) => {
                    assert_eq!(e.to_string(), text, "{role}");
                    let shown = CloseReason::BadMessage(e).to_string();
                    assert!(shown.starts_with("bad control message from the peer: Length"));
                }
                other => panic!("{role}: Length {length}: {other:?}"),
            }
        }
        for (role, why) in feed_both(&length.to_be_bytes()) {
            assert!(
                matches!(why, Some(CloseReason::BadMessage(_))),
                "{role}: two octets of Length {length}: {why:?}"
            );
        }
    }
}

#[test]
fn length_of_the_wrong_type() {
    // Length 0x9c (an SCCRQ's) on an Echo-Request: refused at the header.
    for (role, why) in feed_both(&header(156)) {
        assert_eq!(
            why.map(|w| w.to_string()),
            Some(
                "bad control message from the peer: Length 156 (0x009c): Echo-Request is 16 \
                 octets"
                    .to_string()
            ),
            "{role}"
        );
    }
}

#[test]
fn bad_magic_cookie() {
    let mut v = sccrq().to_vec();
    v[4..8].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
    for (role, why) in feed_both(&v) {
        assert_eq!(
            why,
            Some(CloseReason::BadMessage(ControlError::MagicCookie {
                value: 0xdead_beef
            })),
            "{role}"
        );
    }
    // Already the first wrong octet of the cookie ends it.
    for (role, why) in feed_both(&v[..5]) {
        assert!(
            matches!(
                why,
                Some(CloseReason::BadMessage(ControlError::MagicCookie { .. }))
            ),
            "{role}: {why:?}"
        );
    }
    let e = ControlError::MagicCookie { value: 0xdead_beef };
    assert_eq!(
        e.to_string(),
        "Magic Cookie 0xdeadbeef (must be 0x1a2b3c4d)"
    );
}

#[test]
fn unknown_types() {
    let mut v = header(16);
    v[8..10].copy_from_slice(&99u16.to_be_bytes());
    v.extend([0; 4]);
    for (role, why) in feed_both(&v) {
        assert_eq!(
            why.map(|w| w.to_string()),
            Some("bad control message from the peer: Control Message Type 99 is unknown".into()),
            "{role}"
        );
    }
    for t in [0u16, 16, 0xffff] {
        let mut v = header(16);
        v[8..10].copy_from_slice(&t.to_be_bytes());
        for (_, why) in feed_both(&v) {
            assert_eq!(
                why,
                Some(CloseReason::BadMessage(
                    ControlError::UnknownControlMessageType { value: t }
                ))
            );
        }
    }
    // PPTP Message Type 2, Management: "currently not defined".
    let mut v = header(16);
    v[2..4].copy_from_slice(&2u16.to_be_bytes());
    for (_, why) in feed_both(&v) {
        assert_eq!(
            why,
            Some(CloseReason::BadMessage(ControlError::MessageType {
                value: 2
            }))
        );
    }
}

/// A PAC that gets `stream` in reads cut at `cuts`: the events it reports.
fn pac_with_cuts(stream: &[u8], cuts: &[usize]) -> Vec<ConnectionEvent> {
    let now = Instant::now();
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&stream.len())) {
        pac.handle_bytes(now, &stream[start..cut]);
        start = cut;
    }
    events(&mut pac)
}

#[test]
fn split_at_every_point() {
    let mut stream = sccrq().to_vec();
    stream.extend(ocrq(0x4242).to_vec());
    let whole = pac_with_cuts(&stream, &[]);
    assert_eq!(whole.len(), 2, "{whole:?}");
    assert!(matches!(whole[0], ConnectionEvent::Established { .. }));
    assert!(matches!(
        whole[1],
        ConnectionEvent::CallRequested {
            peer_call_id: 0x4242,
            ..
        }
    ));
    for cut in 1..stream.len() {
        assert_eq!(pac_with_cuts(&stream, &[cut]), whole, "cut at {cut}");
    }
    // One octet at a time.
    let cuts: Vec<usize> = (1..stream.len()).collect();
    assert_eq!(pac_with_cuts(&stream, &cuts), whole);
}

#[test]
fn three_messages_in_one_read() {
    let mut stream = sccrq().to_vec();
    stream.extend(Message::EchoRequest(EchoRequest { identifier: 7 }).to_vec());
    stream.extend(ocrq(9).to_vec());
    let now = Instant::now();
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    pac.handle_bytes(now, &stream);
    let ev = events(&mut pac);
    assert_eq!(ev.len(), 2, "{ev:?}");
    let mut out = Vec::new();
    assert!(pac.poll_transmit(&mut out));
    // SCCRP then Echo-Reply, in order.
    let mut reader = ControlReader::new();
    reader.push(&out);
    let replies: Vec<_> = std::iter::from_fn(|| reader.pop()).collect();
    assert_eq!(replies.len(), 2);
    assert!(matches!(
        replies[1],
        Ok(Message::EchoReply(EchoReply { identifier: 7, .. }))
    ));

    // A good message, then garbage in the same read: the good one counts,
    // the garbage closes, nothing after it is read.
    let mut stream = sccrq().to_vec();
    stream.extend(header(0));
    stream.extend(ocrq(9).to_vec());
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    pac.handle_bytes(now, &stream);
    let ev = events(&mut pac);
    assert!(matches!(ev[0], ConnectionEvent::Established { .. }));
    assert_eq!(
        ev[1],
        ConnectionEvent::Closed {
            why: CloseReason::BadMessage(ControlError::LengthTooShort { length: 0 })
        }
    );
    assert_eq!(ev.len(), 2);
}

#[test]
fn eof_inside_a_message() {
    let v = sccrq().to_vec();
    let now = Instant::now();
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    pac.handle_bytes(now, &v[..100]);
    pac.handle_eof(now);
    assert_eq!(
        closed_with(&mut pac).map(|w| w.to_string()),
        Some(
            "bad control message from the peer: connection closed inside a message: \
             Length says 156, 100 octets arrived"
                .into()
        )
    );
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    pac.handle_bytes(now, &v[..1]);
    pac.handle_eof(now);
    assert_eq!(
        closed_with(&mut pac),
        Some(CloseReason::BadMessage(ControlError::ClosedInsideLength))
    );
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    pac.handle_bytes(now, &v);
    pac.handle_eof(now + Duration::from_secs(1));
    assert_eq!(
        events(&mut pac).last(),
        Some(&ConnectionEvent::Closed {
            why: CloseReason::PeerClosedTcp
        })
    );
}

#[test]
fn reader_buffers_at_most_one_message_plus_one_read() {
    // 1000 messages in one read: popped one by one; what is left after
    // popping all is less than one message.
    let one = Message::EchoRequest(EchoRequest { identifier: 1 }).to_vec();
    let mut stream: Vec<u8> = one.iter().copied().cycle().take(16 * 1000).collect();
    stream.extend(&sccrq().to_vec()[..155]);
    let mut reader = ControlReader::new();
    reader.push(&stream);
    let n = std::iter::from_fn(|| reader.pop())
        .inspect(|m| assert!(m.is_ok(), "{m:?}"))
        .count();
    assert_eq!(n, 1000);
    assert_eq!(reader.buffered(), 155);
    assert_eq!(
        reader.finish(),
        Err(ControlError::ClosedInsideMessage {
            length: 156,
            arrived: 155
        })
    );
    reader.push(&[0]);
    assert!(matches!(
        reader.pop(),
        Some(Ok(Message::StartControlConnectionRequest(_)))
    ));
    assert_eq!(reader.buffered(), 0);
    assert_eq!(reader.finish(), Ok(()));
}

#[test]
fn garbage_after_close_is_ignored() {
    let now = Instant::now();
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    pac.handle_bytes(now, &header(1));
    assert!(closed_with(&mut pac).is_some());
    pac.handle_bytes(now, &sccrq().to_vec());
    pac.handle_timeout(now + Duration::from_secs(3600));
    pac.handle_eof(now);
    assert_eq!(pac.poll_event(), None);
    let mut out = Vec::new();
    assert!(!pac.poll_transmit(&mut out));
}

#[test]
fn a_driver_that_does_not_drain_is_bounded() {
    // Echo-Requests answered into a transmit queue nobody drains: the
    // connection closes at MAX_TRANSMIT_BACKLOG instead of growing.
    let now = Instant::now();
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    let mut stream = sccrq().to_vec();
    for i in 0..4000u32 {
        Message::EchoRequest(EchoRequest { identifier: i }).emit(&mut stream);
    }
    pac.handle_bytes(now, &stream);
    let ev = events(&mut pac);
    assert!(matches!(ev[0], ConnectionEvent::Established { .. }));
    assert!(
        matches!(
            ev.last(),
            Some(ConnectionEvent::Closed {
                why: CloseReason::TransmitBacklog { octets }
            }) if *octets > tsunagi_pptp::connection::MAX_TRANSMIT_BACKLOG
        ),
        "{:?}",
        ev.last()
    );
    assert_eq!(ev.len(), 2);
    let mut out = Vec::new();
    assert!(!pac.poll_transmit(&mut out));
}
