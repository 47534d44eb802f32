//! Replays every file of the fuzz corpora (fuzz/corpus/pptp_control and
//! fuzz/corpus/pptp_gre) through the same functions the fuzz targets call,
//! so each corpus file is a regression test that runs without a fuzzer; and
//! checks that the committed `seed-*` files are what [`control_seeds`] and
//! [`gre_seeds`] build (`TSUNAGI_WRITE_SEEDS=1` writes them:
//! `TSUNAGI_WRITE_SEEDS=1 cargo test -p tsunagi-pptp --test fuzz_corpus`).

use tsunagi_pptp::control::*;
use tsunagi_pptp::fuzzing::FIRST_CALL_ID;
use tsunagi_pptp::gre::GreHeader;
use tsunagi_pptp::text::Text;
use tsunagi_testkit::corpus::{check_or_write, replay};

#[test]
fn replay_pptp_control_corpus() {
    replay("pptp_control", tsunagi_pptp::fuzzing::pptp_control);
}

#[test]
fn replay_pptp_gre_corpus() {
    replay("pptp_gre", tsunagi_pptp::fuzzing::pptp_gre);
}

#[test]
fn control_seeds_are_current() {
    check_or_write("pptp_control", control_seeds(), "tsunagi-pptp");
}

#[test]
fn gre_seeds_are_current() {
    check_or_write("pptp_gre", gre_seeds(), "tsunagi-pptp");
}

fn stream(config: u8, messages: &[Message]) -> Vec<u8> {
    let mut v = vec![config];
    for m in messages {
        m.emit(&mut v);
    }
    v
}

fn sccrq(version: u16) -> Message {
    Message::StartControlConnectionRequest(StartControlConnectionRequest {
        protocol_version: version,
        framing_capabilities: FRAMING_ASYNC | FRAMING_SYNC,
        bearer_capabilities: BEARER_ANALOG | BEARER_DIGITAL,
        maximum_channels: 0,
        firmware_revision: 0x0a28,
        host_name: Text::EMPTY,
        vendor_string: Text::new("Microsoft"),
    })
}

fn sccrp(version: u16, result: StartResult) -> Message {
    Message::StartControlConnectionReply(StartControlConnectionReply {
        protocol_version: version,
        result_code: result,
        error_code: GeneralError::None,
        framing_capabilities: FRAMING_SYNC,
        bearer_capabilities: BEARER_ANALOG,
        maximum_channels: 1,
        firmware_revision: 1,
        host_name: Text::new("local"),
        vendor_string: Text::new("linux"),
    })
}

fn ocrq(call_id: u16) -> Message {
    Message::OutgoingCallRequest(OutgoingCallRequest {
        call_id,
        call_serial_number: 1,
        minimum_bps: 300,
        maximum_bps: 100_000_000,
        bearer_type: 3,
        framing_type: 3,
        packet_recv_window_size: 64,
        packet_processing_delay: 0,
        phone_number_length: 0,
        phone_number: Text::EMPTY,
        subaddress: Text::EMPTY,
    })
}

fn ocrp(call_id: u16, peer_call_id: u16, result: OutgoingCallResult) -> Message {
    Message::OutgoingCallReply(OutgoingCallReply {
        call_id,
        peer_call_id,
        result_code: result,
        error_code: GeneralError::None,
        cause_code: 0,
        connect_speed: 100_000_000,
        packet_recv_window_size: 64,
        packet_processing_delay: 0,
        physical_channel_id: 0,
    })
}

fn cdn(call_id: u16, result: DisconnectResult) -> Message {
    Message::CallDisconnectNotify(CallDisconnectNotify {
        call_id,
        result_code: result,
        error_code: GeneralError::None,
        cause_code: 0,
        call_statistics: Text::new("stats"),
    })
}

fn stop() -> Message {
    Message::StopControlConnectionRequest(StopControlConnectionRequest {
        reason: StopReason::None,
    })
}

fn echo(identifier: u32) -> Message {
    Message::EchoRequest(EchoRequest { identifier })
}

fn echo_reply(identifier: u32) -> Message {
    Message::EchoReply(EchoReply {
        identifier,
        result_code: EchoResult::Ok,
        error_code: GeneralError::None,
    })
}

/// One message of each of the 15 types.
fn one_of_each() -> Vec<Message> {
    vec![
        sccrq(0x0100),
        sccrp(0x0100, StartResult::Success),
        stop(),
        Message::StopControlConnectionReply(StopControlConnectionReply {
            result_code: StopResult::Ok,
            error_code: GeneralError::None,
        }),
        echo(9),
        echo_reply(9),
        ocrq(0x77),
        ocrp(0x88, 0x77, OutgoingCallResult::Connected),
        Message::IncomingCallRequest(IncomingCallRequest {
            call_id: 5,
            call_serial_number: 6,
            call_bearer_type: 1,
            physical_channel_id: 0,
            dialed_number_length: 3,
            dialing_number_length: 0,
            dialed_number: Text::new("555"),
            dialing_number: Text::EMPTY,
            subaddress: Text::EMPTY,
        }),
        Message::IncomingCallReply(IncomingCallReply {
            call_id: 7,
            peer_call_id: 5,
            result_code: IncomingCallResult::Connect,
            error_code: GeneralError::None,
            packet_recv_window_size: 64,
            packet_transmit_delay: 0,
        }),
        Message::IncomingCallConnected(IncomingCallConnected {
            peer_call_id: 7,
            connect_speed: 64000,
            packet_recv_window_size: 64,
            packet_transmit_delay: 0,
            framing_type: 2,
        }),
        Message::CallClearRequest(CallClearRequest { call_id: 0x77 }),
        cdn(0x88, DisconnectResult::Request),
        Message::WanErrorNotify(WanErrorNotify {
            peer_call_id: FIRST_CALL_ID,
            errors: WanErrors {
                crc_errors: 1,
                ..Default::default()
            },
        }),
        Message::SetLinkInfo(SetLinkInfo {
            peer_call_id: FIRST_CALL_ID,
            send_accm: 0xffff_ffff,
            receive_accm: 0,
        }),
    ]
}

/// A header of `length` for an Echo-Request, and what follows.
fn bad_header(length: u16, ptype: u16, cookie: u32, ctype: u16, body: usize) -> Vec<u8> {
    let mut v = length.to_be_bytes().to_vec();
    v.extend(ptype.to_be_bytes());
    v.extend(cookie.to_be_bytes());
    v.extend(ctype.to_be_bytes());
    v.extend([0, 0]);
    v.extend(vec![0x41; body]);
    v
}

/// The seeds of fuzz/corpus/pptp_control (name, bytes). Configuration octet:
/// see `tsunagi_pptp::fuzzing::pptp_control`.
fn control_seeds() -> Vec<(String, Vec<u8>)> {
    const PNS: u8 = 1;
    const EAGER: u8 = 2;
    const SHORT: u8 = 4;
    let read = |n: u8| n << 3;
    let mut seeds = Vec::new();
    let mut add = |name: &str, v: Vec<u8>| seeds.push((format!("seed-{name}"), v));

    // A PAC serving a Windows-like PNS: start, a call accepted (our call id
    // is FIRST_CALL_ID), echoes both ways, Set-Link-Info, the PNS clears,
    // a second call, Stop.
    let session = [
        sccrq(0x0100),
        ocrq(0x77),
        echo(1),
        echo_reply(1),
        Message::SetLinkInfo(SetLinkInfo {
            peer_call_id: FIRST_CALL_ID,
            send_accm: 0xffff_ffff,
            receive_accm: 0,
        }),
        Message::CallClearRequest(CallClearRequest { call_id: 0x77 }),
        ocrq(0x78),
        stop(),
    ];
    add("pac-session", stream(EAGER, &session));
    add("pac-session-reads-of-1", stream(EAGER | read(1), &session));
    add("pac-session-reads-of-7", stream(EAGER | read(7), &session));
    add(
        "pac-refuses-and-duplicates",
        stream(
            0,
            &[
                sccrq(0x0100),
                ocrq(1),
                ocrq(2),
                ocrq(2),
                ocrq(3),
                ocrq(4),
                ocrq(5),
            ],
        ),
    );
    add(
        "pac-short-timers-echo",
        stream(
            EAGER | SHORT | read(31),
            &[sccrq(0x0100), ocrq(9), echo_reply(1)],
        ),
    );
    add("pac-old-version", stream(0, &[sccrq(0x00ff)]));
    add("pac-newer-version", stream(0, &[sccrq(0x0200), ocrq(1)]));
    add("pac-one-of-each", stream(EAGER, &one_of_each()));
    add(
        "pac-before-start",
        stream(0, &[ocrq(1), echo(2), sccrq(0x0100)]),
    );
    // The PoPToP lengths (CVE-2003-0213) and the other header faults.
    for length in [0u16, 1, 10, 11, 0xffff] {
        let mut v = vec![0];
        v.extend(bad_header(length, 1, MAGIC_COOKIE, 5, 4));
        add(&format!("pac-length-{length}"), v);
    }
    let mut v = vec![0];
    v.extend(bad_header(16, 1, 0xdead_beef, 5, 4));
    add("pac-bad-cookie", v);
    let mut v = vec![0];
    v.extend(bad_header(16, 1, MAGIC_COOKIE, 99, 4));
    add("pac-unknown-type", v);
    let mut v = vec![0];
    v.extend(bad_header(16, 2, MAGIC_COOKIE, 5, 4));
    add("pac-management-message", v);
    let mut v = stream(0, &[sccrq(0x0100)]);
    v.extend(bad_header(156, 1, MAGIC_COOKIE, 5, 10));
    add("pac-wrong-length-after-start", v);
    let mut v = stream(read(3), &[sccrq(0x0100)]);
    v.truncate(100);
    add("pac-eof-inside", v);

    // A PNS talking to a pptpd-like PAC: start, two calls connected (the
    // harness clears the first), WAN-Error-Notify, Set-Link-Info from the
    // PAC, the disconnects (RFC and accel-ppp Call IDs), Stop.
    let second = FIRST_CALL_ID + 1;
    let session = [
        sccrp(0x0100, StartResult::Success),
        ocrp(0x2000, FIRST_CALL_ID, OutgoingCallResult::Connected),
        ocrp(0x2001, second, OutgoingCallResult::Connected),
        echo(5),
        Message::WanErrorNotify(WanErrorNotify {
            peer_call_id: second,
            errors: WanErrors::default(),
        }),
        Message::SetLinkInfo(SetLinkInfo {
            peer_call_id: 0x2001,
            send_accm: 0,
            receive_accm: 0,
        }),
        cdn(0x2000, DisconnectResult::Request),
        cdn(second, DisconnectResult::LostCarrier),
        stop(),
    ];
    add("pns-session", stream(PNS | EAGER, &session));
    add(
        "pns-session-reads-of-2",
        stream(PNS | EAGER | read(2), &session),
    );
    add(
        "pns-call-refused",
        stream(
            PNS,
            &[
                sccrp(0x0100, StartResult::Success),
                ocrp(0, FIRST_CALL_ID, OutgoingCallResult::Busy),
            ],
        ),
    );
    add(
        "pns-start-refused",
        stream(PNS, &[sccrp(0x0100, StartResult::NotAuthorized)]),
    );
    add(
        "pns-start-result-0",
        stream(PNS, &[sccrp(0x0100, StartResult::Unknown(0))]),
    );
    add(
        "pns-other-version",
        stream(
            PNS,
            &[
                sccrp(0x0200, StartResult::Success),
                Message::StopControlConnectionReply(StopControlConnectionReply {
                    result_code: StopResult::Ok,
                    error_code: GeneralError::None,
                }),
            ],
        ),
    );
    add(
        "pns-short-timers-no-reply",
        stream(PNS | SHORT, &[sccrp(0x0100, StartResult::Success)]),
    );
    let mut each = vec![sccrp(0x0100, StartResult::Success)];
    each.extend(one_of_each());
    add("pns-one-of-each", stream(PNS | EAGER | read(13), &each));
    let mut v = vec![PNS];
    v.extend(bad_header(0, 1, MAGIC_COOKIE, 5, 0));
    add("pns-length-0", v);
    seeds
}

fn record(v: &mut Vec<u8>, packet: &[u8]) {
    v.extend((packet.len() as u16).to_be_bytes());
    v.extend(packet);
}

fn gre(h: GreHeader) -> Vec<u8> {
    let mut v = vec![0u8; h.len() + usize::from(h.payload_len)];
    h.emit(&mut v);
    for (i, b) in v[h.len()..].iter_mut().enumerate() {
        *b = i as u8 | 1;
    }
    v
}

fn data(seq: u32, ack: Option<u32>) -> Vec<u8> {
    gre(GreHeader {
        call_id: 0x4242,
        payload_len: 8,
        seq: Some(seq),
        ack,
    })
}

fn ack_only(ack: u32) -> Vec<u8> {
    gre(GreHeader {
        call_id: 0x4242,
        payload_len: 0,
        seq: None,
        ack: Some(ack),
    })
}

fn ipv4(payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend(total.to_be_bytes());
    v.extend([0, 1, 0x40, 0, 64, 47, 0, 0, 192, 0, 2, 7, 192, 0, 2, 1]);
    v.extend(payload);
    v
}

/// The seeds of fuzz/corpus/pptp_gre. Configuration octet: see
/// `tsunagi_pptp::fuzzing::pptp_gre`.
fn gre_seeds() -> Vec<(String, Vec<u8>)> {
    let window = |i: u8| i << 1;
    let step = |i: u8| i << 4;
    let mut seeds = Vec::new();
    let mut add = |name: &str, v: Vec<u8>| seeds.push((format!("seed-{name}"), v));

    let mut v = vec![window(5) | step(2)];
    for seq in 0..40 {
        record(&mut v, &data(seq, (seq % 3 == 0).then_some(seq / 2)));
        if seq % 10 == 9 {
            record(&mut v, &ack_only(seq));
        }
    }
    add("in-order-with-acks", v);

    let mut v = vec![window(4) | step(1)];
    for seq in [0, 2, 1, 1, 5, 3, 4, 9, 9, 6, 100, 7, 101] {
        record(&mut v, &data(seq, None));
    }
    add("reordered-duplicated", v);

    let mut v = vec![window(6) | step(7)];
    for seq in [u32::MAX - 2, u32::MAX, u32::MAX - 1, 0, 2, 1, 0x8000_0002] {
        record(&mut v, &data(seq, Some(seq)));
    }
    add("across-the-wrap", v);

    let mut v = vec![window(1) | step(15)];
    for a in [0, 5, 1, u32::MAX] {
        record(&mut v, &ack_only(a));
    }
    add("ack-only", v);

    let mut v = vec![1 | window(3) | step(3)];
    for seq in 0..8 {
        record(&mut v, &ipv4(&data(seq, Some(seq))));
    }
    record(&mut v, &ipv4(&ack_only(3)));
    let mut frag = ipv4(&data(9, None));
    frag[6] = 0x20;
    record(&mut v, &frag);
    let mut udp = ipv4(&data(10, None));
    udp[9] = 17;
    record(&mut v, &udp);
    add("ipv4", v);

    let mut v = vec![window(2)];
    let good = data(1, Some(1));
    for (at, xor) in [
        (0, 0x80),
        (0, 0x40),
        (0, 0x08),
        (0, 0x01),
        (0, 0x20),
        (1, 0x40),
        (1, 0x02),
        (2, 0xff),
    ] {
        let mut bad = good.clone();
        bad[at] ^= xor;
        record(&mut v, &bad);
    }
    record(&mut v, &good[..11]);
    let mut overrun = good.clone();
    overrun[5] = 200;
    record(&mut v, &overrun);
    add("refused-headers", v);
    seeds
}
