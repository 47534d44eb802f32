//! Every control message type, written octet by octet from its figure in
//! RFC 2637 section 2 (one line per 32-bit row of the figure), decoded to
//! the typed value and re-encoded to the same octets. The vectors do not
//! come from our emitter.

use tsunagi_pptp::control::*;
use tsunagi_pptp::text::Text;

/// A NUL-padded text field of `N` octets, as the RFC describes them.
fn field<const N: usize>(text: &[u8]) -> Vec<u8> {
    let mut v = text.to_vec();
    v.resize(N, 0);
    v
}

fn check(bytes: &[u8], expected: Message) {
    assert_eq!(bytes.len(), expected.wire_len(), "{}", expected.name());
    let parsed = Message::parse(bytes).unwrap_or_else(|e| panic!("{}: {e}", expected.name()));
    assert_eq!(parsed, expected);
    assert_eq!(parsed.to_vec(), bytes, "{} re-encoded", expected.name());
    // The same through the stream reader, one octet at a time.
    let mut reader = ControlReader::new();
    let mut got = Vec::new();
    for b in bytes {
        reader.push(&[*b]);
        while let Some(m) = reader.pop() {
            got.push(m.expect("valid"));
        }
    }
    assert_eq!(got, vec![expected]);
    assert_eq!(reader.buffered(), 0);
    assert_eq!(reader.finish(), Ok(()));
}

#[test]
fn start_control_connection_request() {
    // Section 2.1: what a Windows PNS sends (empty host name, vendor
    // "Microsoft", both framings and bearers).
    let mut v = vec![
        0x00, 0x9c, 0x00, 0x01, // Length 156 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x01, 0x00, 0x00, // Control Message Type 1 | Reserved0
        0x01, 0x00, 0x00, 0x00, // Protocol Version 1.0 | Reserved1
        0x00, 0x00, 0x00, 0x03, // Framing Capabilities
        0x00, 0x00, 0x00, 0x03, // Bearer Capabilities
        0x00, 0x00, 0x0a, 0x28, // Maximum Channels 0 | Firmware Revision
    ];
    v.extend(field::<64>(b""));
    v.extend(field::<64>(b"Microsoft"));
    check(
        &v,
        Message::StartControlConnectionRequest(StartControlConnectionRequest {
            protocol_version: 0x0100,
            framing_capabilities: FRAMING_ASYNC | FRAMING_SYNC,
            bearer_capabilities: BEARER_ANALOG | BEARER_DIGITAL,
            maximum_channels: 0,
            firmware_revision: 0x0a28,
            host_name: Text::EMPTY,
            vendor_string: Text::new("Microsoft"),
        }),
    );
}

#[test]
fn start_control_connection_reply() {
    // Section 2.2: a PAC's success, host name filling all 64 octets (no
    // NUL: allowed, "If less than 64 octets ...").
    let host = [b'h'; 64];
    let mut v = vec![
        0x00, 0x9c, 0x00, 0x01, // Length 156 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x02, 0x00, 0x00, // Control Message Type 2 | Reserved0
        0x01, 0x00, 0x01, 0x00, // Protocol Version | Result Code 1 | Error Code 0
        0x00, 0x00, 0x00, 0x01, // Framing Capability: async
        0x00, 0x00, 0x00, 0x01, // Bearer Capability: analog
        0x00, 0x01, 0x00, 0x01, // Maximum Channels 1 | Firmware Revision 1
    ];
    v.extend(host);
    v.extend(field::<64>(b"linux"));
    check(
        &v,
        Message::StartControlConnectionReply(StartControlConnectionReply {
            protocol_version: 0x0100,
            result_code: StartResult::Success,
            error_code: GeneralError::None,
            framing_capabilities: FRAMING_ASYNC,
            bearer_capabilities: BEARER_ANALOG,
            maximum_channels: 1,
            firmware_revision: 1,
            host_name: Text::from_bytes(&host),
            vendor_string: Text::new("linux"),
        }),
    );
    // Result 5: version not supported, and an unknown Error Code kept.
    let mut v = vec![
        0x00, 0x9c, 0x00, 0x01, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x02, 0x00, 0x00, //
        0x01, 0x00, 0x05, 0x63, // Version | Result 5 | Error 99
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    v.extend([0; 128]);
    check(
        &v,
        Message::StartControlConnectionReply(StartControlConnectionReply {
            protocol_version: 0x0100,
            result_code: StartResult::UnsupportedVersion,
            error_code: GeneralError::Unknown(99),
            framing_capabilities: 0,
            bearer_capabilities: 0,
            maximum_channels: 0,
            firmware_revision: 0,
            host_name: Text::EMPTY,
            vendor_string: Text::EMPTY,
        }),
    );
}

#[test]
fn stop_control_connection_request_and_reply() {
    // Section 2.3.
    let v = [
        0x00, 0x10, 0x00, 0x01, // Length 16 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x03, 0x00, 0x00, // Control Message Type 3 | Reserved0
        0x03, 0x00, 0x00, 0x00, // Reason 3 | Reserved1 | Reserved2
    ];
    check(
        &v,
        Message::StopControlConnectionRequest(StopControlConnectionRequest {
            reason: StopReason::StopLocalShutdown,
        }),
    );
    // Section 2.4.
    let v = [
        0x00, 0x10, 0x00, 0x01, // Length 16 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x04, 0x00, 0x00, // Control Message Type 4 | Reserved0
        0x02, 0x04, 0x00, 0x00, // Result 2 | Error 4 (No-Resource) | Reserved1
    ];
    check(
        &v,
        Message::StopControlConnectionReply(StopControlConnectionReply {
            result_code: StopResult::GeneralError,
            error_code: GeneralError::NoResource,
        }),
    );
}

#[test]
fn echo_request_and_reply() {
    // Section 2.5.
    let v = [
        0x00, 0x10, 0x00, 0x01, // Length 16 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x05, 0x00, 0x00, // Control Message Type 5 | Reserved0
        0xde, 0xad, 0xbe, 0xef, // Identifier
    ];
    check(
        &v,
        Message::EchoRequest(EchoRequest {
            identifier: 0xdead_beef,
        }),
    );
    // Section 2.6.
    let v = [
        0x00, 0x14, 0x00, 0x01, // Length 20 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x06, 0x00, 0x00, // Control Message Type 6 | Reserved0
        0xde, 0xad, 0xbe, 0xef, // Identifier
        0x01, 0x00, 0x00, 0x00, // Result 1 | Error 0 | Reserved1
    ];
    check(
        &v,
        Message::EchoReply(EchoReply {
            identifier: 0xdead_beef,
            result_code: EchoResult::Ok,
            error_code: GeneralError::None,
        }),
    );
}

#[test]
fn outgoing_call_request() {
    // Section 2.7: what pptp-linux sends (call id 0x1234, serial 7,
    // 2400..10000000 bps, window 64, delay 0, no phone number).
    let mut v = vec![
        0x00, 0xa8, 0x00, 0x01, // Length 168 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x07, 0x00, 0x00, // Control Message Type 7 | Reserved0
        0x12, 0x34, 0x00, 0x07, // Call ID | Call Serial Number
        0x00, 0x00, 0x09, 0x60, // Minimum BPS 2400
        0x00, 0x98, 0x96, 0x80, // Maximum BPS 10000000
        0x00, 0x00, 0x00, 0x01, // Bearer Type: analog
        0x00, 0x00, 0x00, 0x02, // Framing Type: sync
        0x00, 0x40, 0x00, 0x00, // Packet Recv. Window Size 64 | Processing Delay 0
        0x00, 0x04, 0x00, 0x00, // Phone Number Length 4 | Reserved1
    ];
    v.extend(field::<64>(b"1234"));
    v.extend(field::<64>(b"sub"));
    check(
        &v,
        Message::OutgoingCallRequest(OutgoingCallRequest {
            call_id: 0x1234,
            call_serial_number: 7,
            minimum_bps: 2400,
            maximum_bps: 10_000_000,
            bearer_type: BEARER_ANALOG,
            framing_type: FRAMING_SYNC,
            packet_recv_window_size: 64,
            packet_processing_delay: 0,
            phone_number_length: 4,
            phone_number: Text::new("1234"),
            subaddress: Text::new("sub"),
        }),
    );
}

#[test]
fn outgoing_call_reply() {
    // Section 2.8.
    let v = [
        0x00, 0x20, 0x00, 0x01, // Length 32 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x08, 0x00, 0x00, // Control Message Type 8 | Reserved0
        0xab, 0xcd, 0x12, 0x34, // Call ID | Peer's Call ID
        0x01, 0x00, 0x00, 0x00, // Result 1 | Error 0 | Cause Code 0
        0x00, 0x98, 0x96, 0x80, // Connect Speed
        0x00, 0x10, 0x00, 0x01, // Packet Recv. Window Size 16 | Processing Delay 1
        0x00, 0x00, 0x00, 0x2a, // Physical Channel ID 42
    ];
    check(
        &v,
        Message::OutgoingCallReply(OutgoingCallReply {
            call_id: 0xabcd,
            peer_call_id: 0x1234,
            result_code: OutgoingCallResult::Connected,
            error_code: GeneralError::None,
            cause_code: 0,
            connect_speed: 10_000_000,
            packet_recv_window_size: 16,
            packet_processing_delay: 1,
            physical_channel_id: 42,
        }),
    );
    // Refused: General Error, Bad-Call ID, a Q.931 cause.
    let v = [
        0x00, 0x20, 0x00, 0x01, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x08, 0x00, 0x00, //
        0x00, 0x00, 0x12, 0x34, // Call ID 0 | Peer's Call ID
        0x02, 0x05, 0x00, 0x11, // Result 2 | Error 5 | Cause 17
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    check(
        &v,
        Message::OutgoingCallReply(OutgoingCallReply {
            call_id: 0,
            peer_call_id: 0x1234,
            result_code: OutgoingCallResult::GeneralError,
            error_code: GeneralError::BadCallId,
            cause_code: 17,
            connect_speed: 0,
            packet_recv_window_size: 0,
            packet_processing_delay: 0,
            physical_channel_id: 0,
        }),
    );
}

#[test]
fn incoming_call_request_reply_connected() {
    // Section 2.9.
    let mut v = vec![
        0x00, 0xdc, 0x00, 0x01, // Length 220 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x09, 0x00, 0x00, // Control Message Type 9 | Reserved0
        0x00, 0x05, 0x00, 0x06, // Call ID | Call Serial Number
        0x00, 0x00, 0x00, 0x02, // Call Bearer Type: digital
        0x00, 0x00, 0x00, 0x03, // Physical Channel ID
        0x00, 0x03, 0x00, 0x02, // Dialed Number Length | Dialing Number Length
    ];
    v.extend(field::<64>(b"555"));
    v.extend(field::<64>(b"12"));
    v.extend(field::<64>(b""));
    check(
        &v,
        Message::IncomingCallRequest(IncomingCallRequest {
            call_id: 5,
            call_serial_number: 6,
            call_bearer_type: BEARER_DIGITAL,
            physical_channel_id: 3,
            dialed_number_length: 3,
            dialing_number_length: 2,
            dialed_number: Text::new("555"),
            dialing_number: Text::new("12"),
            subaddress: Text::EMPTY,
        }),
    );
    // Section 2.10.
    let v = [
        0x00, 0x18, 0x00, 0x01, // Length 24 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x0a, 0x00, 0x00, // Control Message Type 10 | Reserved0
        0x00, 0x07, 0x00, 0x05, // Call ID | Peer's Call ID
        0x03, 0x00, 0x00, 0x40, // Result 3 | Error 0 | Window Size 64
        0x00, 0x02, 0x00, 0x00, // Packet Transmit Delay 2 | Reserved1
    ];
    check(
        &v,
        Message::IncomingCallReply(IncomingCallReply {
            call_id: 7,
            peer_call_id: 5,
            result_code: IncomingCallResult::DoNotAccept,
            error_code: GeneralError::None,
            packet_recv_window_size: 64,
            packet_transmit_delay: 2,
        }),
    );
    // Section 2.11.
    let v = [
        0x00, 0x1c, 0x00, 0x01, // Length 28 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x0b, 0x00, 0x00, // Control Message Type 11 | Reserved0
        0x00, 0x07, 0x00, 0x00, // Peer's Call ID | Reserved1
        0x00, 0x00, 0xe1, 0x00, // Connect Speed 57600
        0x00, 0x08, 0x00, 0x03, // Window Size 8 | Packet Transmit Delay 3
        0x00, 0x00, 0x00, 0x01, // Framing Type: async
    ];
    check(
        &v,
        Message::IncomingCallConnected(IncomingCallConnected {
            peer_call_id: 7,
            connect_speed: 57600,
            packet_recv_window_size: 8,
            packet_transmit_delay: 3,
            framing_type: FRAMING_ASYNC,
        }),
    );
}

#[test]
fn call_clear_request_and_disconnect_notify() {
    // Section 2.12.
    let v = [
        0x00, 0x10, 0x00, 0x01, // Length 16 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x0c, 0x00, 0x00, // Control Message Type 12 | Reserved0
        0x12, 0x34, 0x00, 0x00, // Call ID | Reserved1
    ];
    check(
        &v,
        Message::CallClearRequest(CallClearRequest { call_id: 0x1234 }),
    );
    // Section 2.13.
    let mut v = vec![
        0x00, 0x94, 0x00, 0x01, // Length 148 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x0d, 0x00, 0x00, // Control Message Type 13 | Reserved0
        0xab, 0xcd, 0x04, 0x00, // Call ID | Result 4 (Request) | Error 0
        0x00, 0x10, 0x00, 0x00, // Cause Code 16 | Reserved1
    ];
    v.extend(field::<128>(b"rx 10 tx 20"));
    check(
        &v,
        Message::CallDisconnectNotify(CallDisconnectNotify {
            call_id: 0xabcd,
            result_code: DisconnectResult::Request,
            error_code: GeneralError::None,
            cause_code: 16,
            call_statistics: Text::new("rx 10 tx 20"),
        }),
    );
}

#[test]
fn wan_error_notify() {
    // Section 2.14.
    let v = [
        0x00, 0x28, 0x00, 0x01, // Length 40 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x0e, 0x00, 0x00, // Control Message type 14 | Reserved0
        0x12, 0x34, 0x00, 0x00, // Peer's Call ID | Reserved1
        0x00, 0x00, 0x00, 0x01, // CRC Errors
        0x00, 0x00, 0x00, 0x02, // Framing Errors
        0x00, 0x00, 0x00, 0x03, // Hardware Overruns
        0x00, 0x00, 0x00, 0x04, // Buffer Overruns
        0x00, 0x00, 0x00, 0x05, // Time-out Errors
        0xff, 0xff, 0xff, 0xff, // Alignment Errors
    ];
    check(
        &v,
        Message::WanErrorNotify(WanErrorNotify {
            peer_call_id: 0x1234,
            errors: WanErrors {
                crc_errors: 1,
                framing_errors: 2,
                hardware_overruns: 3,
                buffer_overruns: 4,
                timeout_errors: 5,
                alignment_errors: u32::MAX,
            },
        }),
    );
}

#[test]
fn set_link_info() {
    // Section 2.15: what Windows sends after LCP (send ACCM 0xffffffff,
    // receive ACCM 0).
    let v = [
        0x00, 0x18, 0x00, 0x01, // Length 24 | PPTP Message Type 1
        0x1a, 0x2b, 0x3c, 0x4d, // Magic Cookie
        0x00, 0x0f, 0x00, 0x00, // Control Message type 15 | Reserved0
        0xab, 0xcd, 0x00, 0x00, // Peer's Call ID | Reserved1
        0xff, 0xff, 0xff, 0xff, // Send ACCM
        0x00, 0x00, 0x00, 0x00, // Receive ACCM
    ];
    check(
        &v,
        Message::SetLinkInfo(SetLinkInfo {
            peer_call_id: 0xabcd,
            send_accm: 0xffff_ffff,
            receive_accm: 0,
        }),
    );
}

#[test]
fn reserved_fields_are_ignored_and_sent_as_zero() {
    // Section 2: "Any reserved fields MUST be sent as 0"; pptp-linux logs a
    // non-zero Reserved0 as a "Cisco feature?" and carries on. So do we.
    let v = [
        0x00, 0x10, 0x00, 0x01, 0x1a, 0x2b, 0x3c, 0x4d, //
        0x00, 0x0c, 0xff, 0xff, // Control Message Type 12 | Reserved0 0xffff
        0x12, 0x34, 0xee, 0xee, // Call ID | Reserved1 0xeeee
    ];
    let m = Message::parse(&v).unwrap();
    assert_eq!(
        m,
        Message::CallClearRequest(CallClearRequest { call_id: 0x1234 })
    );
    assert_eq!(
        m.to_vec(),
        [0, 16, 0, 1, 0x1a, 0x2b, 0x3c, 0x4d, 0, 12, 0, 0, 0x12, 0x34, 0, 0]
    );
}

#[test]
fn every_type_has_its_one_length() {
    // One octet more or less than the figure: refused, naming the type.
    for t in 1u16..=15 {
        let ty = ControlMessageType::from(t);
        let len = ty.length().unwrap();
        for wrong in [len - 1, len + 1] {
            let mut v = vec![0u8; usize::from(wrong)];
            v[..2].copy_from_slice(&wrong.to_be_bytes());
            v[2..4].copy_from_slice(&1u16.to_be_bytes());
            v[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            v[8..10].copy_from_slice(&t.to_be_bytes());
            let e = Message::parse(&v).unwrap_err();
            if usize::from(wrong) > MAX_MESSAGE_LEN {
                assert_eq!(e, ControlError::LengthTooLong { length: wrong });
            } else {
                assert_eq!(
                    e,
                    ControlError::WrongLength {
                        length: wrong,
                        message_type: ty,
                        expected: len
                    }
                );
                assert!(e.to_string().contains(ty.name().unwrap()), "{e}");
            }
        }
    }
}

#[test]
fn parse_wants_exactly_one_message() {
    let m = Message::EchoRequest(EchoRequest { identifier: 1 });
    let v = m.to_vec();
    assert_eq!(
        Message::parse(&v[..15]),
        Err(ControlError::Truncated {
            length: 16,
            got: 15
        })
    );
    assert_eq!(
        Message::parse(&v[..1]),
        Err(ControlError::Truncated { length: 0, got: 1 })
    );
    let mut longer = v.clone();
    longer.push(0);
    assert_eq!(
        Message::parse(&longer),
        Err(ControlError::TrailingOctets {
            length: 16,
            extra: 1
        })
    );
}

#[test]
fn display_lines() {
    let m = Message::OutgoingCallReply(OutgoingCallReply {
        call_id: 1,
        peer_call_id: 2,
        result_code: OutgoingCallResult::Busy,
        error_code: GeneralError::None,
        cause_code: 0,
        connect_speed: 0,
        packet_recv_window_size: 64,
        packet_processing_delay: 0,
        physical_channel_id: 0,
    });
    assert_eq!(
        m.to_string(),
        "Outgoing-Call-Reply call_id=1 peer_call_id=2 result=Busy (4) error=None (0) cause=0 \
         speed=0 window=64 delay=0 channel=0"
    );
    let m = Message::StartControlConnectionRequest(StartControlConnectionRequest {
        protocol_version: 0x0100,
        framing_capabilities: 3,
        bearer_capabilities: 3,
        maximum_channels: 0,
        firmware_revision: 1,
        host_name: Text::from_bytes(b"evil\nline"),
        vendor_string: Text::new("v"),
    });
    assert_eq!(
        m.to_string(),
        "Start-Control-Connection-Request version=1.0 framing=0x3 bearer=0x3 max_channels=0 \
         firmware=0x0001 host=\"evil\\x0aline\" vendor=\"v\""
    );
}
