//! A PAC and a PNS engine driven against each other on a virtual clock
//! (like crates/ppp/tests/link_pair.rs): establish, place a call, accept,
//! clear from either side, stop; echo keepalive and echo timeout; refused
//! calls; duplicate peer call id; version handling.

use std::time::{Duration, Instant};

use tsunagi_pptp::control::*;
use tsunagi_pptp::{
    CallEnd, CallError, CallState, ClearReason, CloseReason, Connection, ConnectionConfig,
    ConnectionEvent, ControlState, Role,
};

struct Side {
    conn: Connection,
    events: Vec<ConnectionEvent>,
    /// Every message it sent, parsed back.
    sent: Vec<Message>,
    reader: ControlReader,
}

impl Side {
    fn new(config: ConnectionConfig, now: Instant) -> Side {
        Side {
            conn: Connection::new(config, now),
            events: Vec::new(),
            sent: Vec::new(),
            reader: ControlReader::new(),
        }
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            self.events.push(e);
        }
    }

    fn take_events(&mut self) -> Vec<ConnectionEvent> {
        self.drain_events();
        std::mem::take(&mut self.events)
    }

    fn closed(&self) -> Option<&CloseReason> {
        self.events.iter().find_map(|e| match e {
            ConnectionEvent::Closed { why } => Some(why),
            _ => None,
        })
    }
}

struct Pair {
    now: Instant,
    pac: Side,
    pns: Side,
    /// Octets in flight, delivered on the next step.
    to_pac: Vec<u8>,
    to_pns: Vec<u8>,
    /// Drop what the PAC sends (a dead peer).
    pac_mute: bool,
    /// Chunk size of TCP reads (0: whole).
    chunk: usize,
}

impl Pair {
    fn new(pac: ConnectionConfig, pns: ConnectionConfig) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            pac: Side::new(pac, now),
            pns: Side::new(pns, now),
            to_pac: Vec::new(),
            to_pns: Vec::new(),
            pac_mute: false,
            chunk: 0,
        }
    }

    fn default_pair() -> Pair {
        Pair::new(
            ConnectionConfig {
                host_name: "vpn-server".into(),
                vendor: "tsunagi pac".into(),
                max_calls: 2,
                ..ConnectionConfig::new(Role::Pac)
            },
            ConnectionConfig {
                host_name: "home".into(),
                vendor: "tsunagi pns".into(),
                max_calls: 2,
                ..ConnectionConfig::new(Role::Pns)
            },
        )
    }

    fn collect(side: &mut Side, wire: &mut Vec<u8>, mute: bool) {
        let mut out = Vec::new();
        while side.conn.poll_transmit(&mut out) {}
        side.reader.push(&out);
        while let Some(m) = side.reader.pop() {
            side.sent.push(m.expect("every message sent parses"));
        }
        if !mute {
            wire.extend(out);
        }
        side.drain_events();
    }

    fn deliver(side: &mut Side, wire: &mut Vec<u8>, now: Instant, chunk: usize) {
        let bytes = std::mem::take(wire);
        if bytes.is_empty() {
            return;
        }
        if chunk == 0 {
            side.conn.handle_bytes(now, &bytes);
        } else {
            for c in bytes.chunks(chunk) {
                side.conn.handle_bytes(now, c);
            }
        }
    }

    /// Exchanges octets until both are quiet (no time passes).
    fn settle(&mut self) {
        for _ in 0..100 {
            Pair::collect(&mut self.pac, &mut self.to_pns, self.pac_mute);
            Pair::collect(&mut self.pns, &mut self.to_pac, false);
            if self.to_pac.is_empty() && self.to_pns.is_empty() {
                return;
            }
            Pair::deliver(&mut self.pac, &mut self.to_pac, self.now, self.chunk);
            Pair::deliver(&mut self.pns, &mut self.to_pns, self.now, self.chunk);
        }
        panic!("no quiet after 100 rounds");
    }

    /// Advances the virtual clock to the next deadline of either side (at
    /// most `limit` from now) and fires it.
    fn step(&mut self, limit: Duration) -> bool {
        self.settle();
        let end = self.now + limit;
        let next = [self.pac.conn.poll_timeout(), self.pns.conn.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) if t <= end => {
                assert!(
                    t >= self.now,
                    "a deadline in the past: {t:?} < {:?}",
                    self.now
                );
                self.now = t;
                self.pac.conn.handle_timeout(t);
                self.pns.conn.handle_timeout(t);
                self.settle();
                true
            }
            _ => {
                self.now = end;
                false
            }
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            if !self.step(end - self.now) {
                break;
            }
        }
        self.settle();
    }

    fn established(&mut self) {
        self.settle();
        assert_eq!(self.pac.conn.state(), ControlState::Established);
        assert_eq!(self.pns.conn.state(), ControlState::Established);
        self.pac.take_events();
        self.pns.take_events();
    }

    /// Establishes, places call `pns_id`, and the PAC accepts it as
    /// `pac_id`.
    fn call_up(&mut self, pns_id: u16, pac_id: u16) {
        self.established();
        self.pns.conn.place_call(self.now, pns_id, 1).unwrap();
        self.settle();
        let requested = self.pac.take_events();
        assert!(
            matches!(
                requested.as_slice(),
                [ConnectionEvent::CallRequested { peer_call_id, peer_recv_window: 64, .. }]
                    if *peer_call_id == pns_id
            ),
            "{requested:?}"
        );
        self.pac.conn.accept_call(self.now, pns_id, pac_id);
        self.settle();
        assert_eq!(
            self.pns.take_events(),
            vec![ConnectionEvent::CallConnected {
                call_id: pns_id,
                peer_call_id: pac_id,
                peer_recv_window: 64
            }]
        );
        assert_eq!(
            self.pac.conn.call_state(pac_id),
            Some(CallState::Established)
        );
        assert_eq!(
            self.pns.conn.call_state(pns_id),
            Some(CallState::Established)
        );
        assert_eq!(self.pac.conn.peer_call_id(pac_id), Some(pns_id));
        assert_eq!(self.pns.conn.peer_call_id(pns_id), Some(pac_id));
    }
}

#[test]
fn establish() {
    let mut p = Pair::default_pair();
    p.settle();
    let pac = p.pac.take_events();
    let pns = p.pns.take_events();
    assert_eq!(
        pac,
        vec![ConnectionEvent::Established {
            peer_host_name: "home".into(),
            peer_vendor: "tsunagi pns".into(),
            peer_protocol_version: 0x0100,
            peer_firmware: 1
        }]
    );
    assert_eq!(
        pns,
        vec![ConnectionEvent::Established {
            peer_host_name: "vpn-server".into(),
            peer_vendor: "tsunagi pac".into(),
            peer_protocol_version: 0x0100,
            peer_firmware: 1
        }]
    );
    // What went over the wire: SCCRQ one way, SCCRP (success, Maximum
    // Channels = max_calls) the other.
    assert!(matches!(
        &p.pns.sent[..],
        [Message::StartControlConnectionRequest(r)] if r.maximum_channels == 0
    ));
    assert!(matches!(
        &p.pac.sent[..],
        [Message::StartControlConnectionReply(r)]
            if r.result_code == StartResult::Success && r.maximum_channels == 2
    ));
}

#[test]
fn call_and_clear_by_the_pns() {
    let mut p = Pair::default_pair();
    p.call_up(0x1111, 0x2222);
    // The OCRQ and OCRP fields.
    let Some(Message::OutgoingCallRequest(rq)) = p.pns.sent.get(1) else {
        panic!("{:?}", p.pns.sent)
    };
    assert_eq!(rq.call_id, 0x1111);
    assert_eq!(rq.packet_recv_window_size, 64);
    let Some(Message::OutgoingCallReply(rp)) = p.pac.sent.get(1) else {
        panic!("{:?}", p.pac.sent)
    };
    assert_eq!((rp.call_id, rp.peer_call_id), (0x2222, 0x1111));
    assert_eq!(rp.result_code, OutgoingCallResult::Connected);
    assert_eq!(rp.connect_speed, rq.maximum_bps);

    p.pns.conn.clear_call(p.now, 0x1111, ClearReason::default());
    assert_eq!(
        p.pns.conn.call_state(0x1111),
        Some(CallState::WaitDisconnect)
    );
    p.settle();
    assert_eq!(
        p.pac.take_events(),
        vec![ConnectionEvent::CallCleared {
            call_id: 0x2222,
            peer_call_id: 0x1111,
            why: CallEnd::PeerCleared
        }]
    );
    let pns = p.pns.take_events();
    assert!(
        matches!(
            &pns[..],
            [ConnectionEvent::CallCleared {
                call_id: 0x1111,
                peer_call_id: 0x2222,
                why: CallEnd::Disconnected {
                    result: DisconnectResult::Request,
                    requested: true,
                    ..
                }
            }]
        ),
        "{pns:?}"
    );
    // The CDN carries the PAC's Call ID (RFC 2637 section 2.13).
    assert!(matches!(
        p.pac.sent.last(),
        Some(Message::CallDisconnectNotify(n)) if n.call_id == 0x2222
    ));
    assert_eq!(p.pac.conn.calls().count(), 0);
    assert_eq!(p.pns.conn.calls().count(), 0);
    assert_eq!(p.pac.conn.counters().calls_cleared, 1);
    assert_eq!(p.pns.conn.counters().calls_cleared, 1);
}

#[test]
fn call_cleared_by_the_pac() {
    let mut p = Pair::default_pair();
    p.call_up(7, 8);
    p.pac.conn.clear_call(
        p.now,
        8,
        ClearReason {
            call_statistics: "bytes 1234".into(),
            ..ClearReason::lost_carrier()
        },
    );
    assert_eq!(p.pac.conn.call_state(8), None);
    p.settle();
    assert!(p.pac.take_events().is_empty());
    let pns = p.pns.take_events();
    let [ConnectionEvent::CallCleared {
        call_id: 7,
        peer_call_id: 8,
        why,
    }] = &pns[..]
    else {
        panic!("{pns:?}")
    };
    assert_eq!(
        why,
        &CallEnd::Disconnected {
            result: DisconnectResult::LostCarrier,
            error: GeneralError::None,
            cause_code: 0,
            call_statistics: "bytes 1234".into(),
            requested: false
        }
    );
    assert_eq!(
        why.to_string(),
        "the peer disconnected the call: result Lost Carrier (1), statistics \"bytes 1234\""
    );
    // The connection stays; another call can come.
    p.call_up(9, 10);
}

#[test]
fn stop_from_either_side() {
    for pns_stops in [false, true] {
        let mut p = Pair::default_pair();
        p.call_up(1, 2);
        if pns_stops {
            p.pns.conn.stop(p.now, StopReason::StopLocalShutdown);
        } else {
            p.pac.conn.stop(p.now, StopReason::StopLocalShutdown);
        }
        p.settle();
        let (us, peer) = if pns_stops {
            (&p.pns, &p.pac)
        } else {
            (&p.pac, &p.pns)
        };
        assert_eq!(
            us.closed(),
            Some(&CloseReason::WeStopped {
                reason: StopReason::StopLocalShutdown,
                peer_replied: true
            }),
            "pns_stops {pns_stops}"
        );
        assert_eq!(
            peer.closed(),
            Some(&CloseReason::PeerStopped {
                reason: StopReason::StopLocalShutdown
            })
        );
        // The call was cleared on the wire before Stop (pptpd: CDN "Admin
        // Shutdown"; pptp-linux: Call-Clear-Request).
        let n = us.sent.len();
        assert!(matches!(
            us.sent[n - 1],
            Message::StopControlConnectionRequest(_)
        ));
        if pns_stops {
            assert!(matches!(
                us.sent[n - 2],
                Message::CallClearRequest(CallClearRequest { call_id: 1 })
            ));
        } else {
            assert!(matches!(
                &us.sent[n - 2],
                Message::CallDisconnectNotify(d)
                    if d.call_id == 2 && d.result_code == DisconnectResult::AdminShutdown
            ));
        }
        assert!(matches!(
            peer.sent.last(),
            Some(Message::StopControlConnectionReply(r)) if r.result_code == StopResult::Ok
        ));
        assert_eq!(p.pac.conn.state(), ControlState::Closed);
        assert_eq!(p.pns.conn.state(), ControlState::Closed);
        assert_eq!(p.pac.conn.poll_timeout(), None);
        assert_eq!(p.pns.conn.poll_timeout(), None);
    }
}

#[test]
fn stop_without_reply_times_out() {
    let mut p = Pair::default_pair();
    p.established();
    p.pac_mute = true;
    let start = p.now;
    p.pns.conn.stop(p.now, StopReason::None);
    p.settle();
    assert_eq!(p.pns.conn.state(), ControlState::WaitStopReply);
    assert_eq!(
        p.pns.conn.poll_timeout(),
        Some(start + Duration::from_secs(60))
    );
    p.run_for(Duration::from_secs(120));
    assert_eq!(
        p.pns.closed(),
        Some(&CloseReason::WeStopped {
            reason: StopReason::None,
            peer_replied: false
        })
    );
    // The PAC got the Stop (its reply was lost).
    assert_eq!(p.pac.conn.state(), ControlState::Closed);
}

#[test]
fn echo_keepalive() {
    let mut p = Pair::default_pair();
    p.call_up(1, 2);
    let t0 = p.now;
    // Ten minutes of silence: echoes every 60 s from both sides, answered,
    // and nothing closes.
    p.run_for(Duration::from_secs(600));
    assert_eq!(p.pac.conn.state(), ControlState::Established);
    assert_eq!(p.pns.conn.state(), ControlState::Established);
    let pac_echoes = p.pac.conn.counters().echo_requests_sent;
    let pns_echoes = p.pns.conn.counters().echo_requests_sent;
    assert!(pac_echoes + pns_echoes >= 9, "{pac_echoes} {pns_echoes}");
    assert_eq!(
        p.pac.conn.counters().echo_replies_received,
        pac_echoes,
        "every echo answered"
    );
    assert_eq!(p.pns.conn.counters().echo_replies_received, pns_echoes);
    // The identifier is copied (section 2.6).
    for (rq, rp) in p
        .pac
        .sent
        .iter()
        .filter_map(|m| match m {
            Message::EchoRequest(r) => Some(r.identifier),
            _ => None,
        })
        .zip(p.pns.sent.iter().filter_map(|m| match m {
            Message::EchoReply(r) => Some(r.identifier),
            _ => None,
        }))
    {
        assert_eq!(rq, rp);
    }
    assert!(p.now >= t0 + Duration::from_secs(600));
}

#[test]
fn echo_timeout() {
    let mut p = Pair::default_pair();
    p.call_up(1, 2);
    p.pac_mute = true;
    let t0 = p.now;
    p.run_for(Duration::from_secs(300));
    assert_eq!(p.pns.closed(), Some(&CloseReason::EchoTimeout));
    // 60 s of silence, then 60 s without a reply.
    let closed_at = p.now;
    assert!(closed_at >= t0 + Duration::from_secs(120));
    assert_eq!(
        CloseReason::EchoTimeout.to_string(),
        "the peer did not answer our Echo-Request: the control connection is dead"
    );
}

#[test]
fn echo_interval_counts_from_the_last_message() {
    let mut p = Pair::default_pair();
    p.established();
    // A message every 50 s: no echo ever needed from the receiver.
    for i in 0..10u32 {
        p.run_for(Duration::from_secs(50));
        p.pns
            .conn
            .place_call(p.now, 100 + i as u16, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        p.settle();
        let ev = p.pac.take_events();
        let Some(ConnectionEvent::CallRequested { peer_call_id, .. }) = ev.first() else {
            panic!("{ev:?}")
        };
        p.pac.conn.refuse_call(
            p.now,
            *peer_call_id,
            OutgoingCallResult::Busy,
            GeneralError::None,
        );
        p.settle();
    }
    assert_eq!(p.pac.conn.counters().echo_requests_sent, 0);
}

#[test]
fn refused_calls() {
    let mut p = Pair::default_pair();
    p.established();
    p.pns.take_events();
    p.pns.conn.place_call(p.now, 5, 1).unwrap();
    p.settle();
    p.pac.take_events();
    p.pac
        .conn
        .refuse_call(p.now, 5, OutgoingCallResult::Busy, GeneralError::None);
    p.settle();
    assert_eq!(
        p.pns.take_events(),
        vec![ConnectionEvent::CallRefused {
            call_id: 5,
            result: OutgoingCallResult::Busy,
            error: GeneralError::None,
            cause_code: 0
        }]
    );
    assert_eq!(p.pns.conn.calls().count(), 0);
    assert_eq!(p.pac.conn.calls().count(), 0);
    // The id is free again.
    p.pns.conn.place_call(p.now, 5, 2).unwrap();
}

#[test]
fn max_calls() {
    let mut p = Pair::new(
        ConnectionConfig::new(Role::Pac), // max_calls 1
        ConnectionConfig {
            max_calls: 5,
            ..ConnectionConfig::new(Role::Pns)
        },
    );
    p.call_up(1, 11);
    p.pns.conn.place_call(p.now, 2, 2).unwrap();
    p.settle();
    assert!(p.pac.take_events().is_empty());
    assert_eq!(
        p.pns.take_events(),
        vec![ConnectionEvent::CallRefused {
            call_id: 2,
            result: OutgoingCallResult::GeneralError,
            error: GeneralError::NoResource,
            cause_code: 0
        }]
    );
    // The PNS's own limit.
    let mut p = Pair::default_pair();
    p.established();
    p.pns.conn.place_call(p.now, 1, 1).unwrap();
    p.pns.conn.place_call(p.now, 2, 1).unwrap();
    assert_eq!(
        p.pns.conn.place_call(p.now, 3, 1),
        Err(CallError::TooManyCalls { max_calls: 2 })
    );
    assert_eq!(
        p.pns.conn.place_call(p.now, 1, 1),
        Err(CallError::CallIdInUse { call_id: 1 })
    );
}

#[test]
fn commands_in_the_wrong_role_or_state() {
    let mut p = Pair::default_pair();
    assert_eq!(
        p.pns.conn.place_call(p.now, 1, 1),
        Err(CallError::NotEstablished {
            state: ControlState::WaitCtlReply
        })
    );
    p.established();
    assert_eq!(
        p.pac.conn.place_call(p.now, 1, 1),
        Err(CallError::WrongRole {
            role: Role::Pac,
            operation: "place calls"
        })
    );
    assert_eq!(
        p.pns.conn.set_link_info(p.now, 9, 0, 0),
        Err(CallError::UnknownCall { call_id: 9 })
    );
    // Ignored, no panic, nothing sent.
    p.pac.conn.accept_call(p.now, 42, 1);
    p.pac
        .conn
        .refuse_call(p.now, 42, OutgoingCallResult::Busy, GeneralError::None);
    p.pac.conn.clear_call(p.now, 42, ClearReason::default());
    p.pns.conn.accept_call(p.now, 42, 1);
    let mut out = Vec::new();
    assert!(!p.pac.conn.poll_transmit(&mut out));
    assert!(!p.pns.conn.poll_transmit(&mut out));
}

/// Injects a message into the PAC as if the PNS sent it.
fn inject_pac(p: &mut Pair, m: Message) {
    p.pac.conn.handle_bytes(p.now, &m.to_vec());
    p.settle();
}

fn inject_pns(p: &mut Pair, m: Message) {
    p.pns.conn.handle_bytes(p.now, &m.to_vec());
    p.settle();
}

fn ocrq(call_id: u16) -> Message {
    Message::OutgoingCallRequest(OutgoingCallRequest {
        call_id,
        call_serial_number: 3,
        minimum_bps: 1,
        maximum_bps: 2,
        bearer_type: 3,
        framing_type: 3,
        packet_recv_window_size: 10,
        packet_processing_delay: 0,
        phone_number_length: 0,
        phone_number: Default::default(),
        subaddress: Default::default(),
    })
}

#[test]
fn duplicate_peer_call_id() {
    let mut p = Pair::default_pair();
    p.call_up(0x77, 0x88);
    let before = p.pac.sent.len();
    inject_pac(&mut p, ocrq(0x77));
    assert!(p.pac.take_events().is_empty());
    assert!(matches!(
        &p.pac.sent[before..],
        [Message::OutgoingCallReply(r)]
            if r.peer_call_id == 0x77
                && r.result_code == OutgoingCallResult::GeneralError
                && r.error_code == GeneralError::BadCallId
    ));
    // The first call is untouched.
    assert_eq!(p.pac.conn.call_state(0x88), Some(CallState::Established));
    // A duplicate of a request still waiting for the daemon, likewise.
    inject_pac(&mut p, ocrq(0x99));
    assert_eq!(p.pac.take_events().len(), 1);
    inject_pac(&mut p, ocrq(0x99));
    assert!(p.pac.take_events().is_empty());
    assert_eq!(p.pac.conn.calls().count(), 2);
}

#[test]
fn accept_with_a_call_id_in_use_refuses() {
    let mut p = Pair::default_pair();
    p.call_up(1, 50);
    p.pns.conn.place_call(p.now, 2, 1).unwrap();
    p.settle();
    p.pac.take_events();
    p.pac.conn.accept_call(p.now, 2, 50);
    p.settle();
    assert_eq!(
        p.pns.take_events(),
        vec![ConnectionEvent::CallRefused {
            call_id: 2,
            result: OutgoingCallResult::GeneralError,
            error: GeneralError::NoResource,
            cause_code: 0
        }]
    );
}

#[test]
fn call_request_not_answered_in_time() {
    // The PNS waits longer than the PAC's daemon may take.
    let mut p = Pair::new(
        ConnectionConfig::new(Role::Pac),
        ConnectionConfig {
            reply_timeout: Duration::from_secs(120),
            ..ConnectionConfig::new(Role::Pns)
        },
    );
    p.established();
    p.pns.conn.place_call(p.now, 3, 1).unwrap();
    p.settle();
    p.pac.take_events();
    p.pns.take_events();
    // The daemon never answers: after the reply timeout the PAC says
    // Time-out; the PNS's call is refused, nothing else closes.
    p.run_for(Duration::from_secs(61));
    assert_eq!(
        p.pac.take_events(),
        vec![ConnectionEvent::CallWithdrawn {
            peer_call_id: 3,
            why: CallEnd::NotAnswered
        }]
    );
    assert_eq!(
        p.pns.take_events(),
        vec![ConnectionEvent::CallRefused {
            call_id: 3,
            result: OutgoingCallResult::TimeOut,
            error: GeneralError::None,
            cause_code: 0
        }]
    );
    assert_eq!(p.pac.conn.state(), ControlState::Established);
    assert_eq!(p.pns.conn.state(), ControlState::Established);
}

#[test]
fn call_cleared_while_the_pac_decides() {
    let mut p = Pair::default_pair();
    p.established();
    p.pns.conn.place_call(p.now, 3, 1).unwrap();
    p.settle();
    p.pac.take_events();
    p.pns.conn.clear_call(p.now, 3, ClearReason::default());
    p.settle();
    assert_eq!(
        p.pac.take_events(),
        vec![ConnectionEvent::CallWithdrawn {
            peer_call_id: 3,
            why: CallEnd::PeerCleared
        }]
    );
    let pns = p.pns.take_events();
    assert!(
        matches!(
            &pns[..],
            [ConnectionEvent::CallCleared {
                call_id: 3,
                why: CallEnd::Disconnected {
                    requested: true,
                    ..
                },
                ..
            }]
        ),
        "{pns:?}"
    );
    // A late accept is ignored.
    p.pac.conn.accept_call(p.now, 3, 30);
    let mut out = Vec::new();
    assert!(!p.pac.conn.poll_transmit(&mut out));
}

#[test]
fn pns_call_without_reply_stops_the_connection() {
    let mut p = Pair::default_pair();
    p.established();
    p.pns.conn.place_call(p.now, 3, 1).unwrap();
    p.pac_mute = true;
    p.run_for(Duration::from_secs(200));
    assert_eq!(
        p.pns.closed(),
        Some(&CloseReason::ReplyTimeout {
            waiting_for: "Outgoing-Call-Reply"
        })
    );
    assert!(p
        .pns
        .sent
        .iter()
        .any(|m| matches!(m, Message::StopControlConnectionRequest(_))));
}

#[test]
fn nothing_established_in_time() {
    // A PAC whose client never sends SCCRQ; a PNS whose server never
    // answers.
    let now = Instant::now();
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    assert_eq!(pac.poll_timeout(), Some(now + Duration::from_secs(60)));
    pac.handle_timeout(now + Duration::from_secs(59));
    assert_eq!(pac.state(), ControlState::Idle);
    pac.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(
        pac.poll_event(),
        Some(ConnectionEvent::Closed {
            why: CloseReason::ReplyTimeout {
                waiting_for: "Start-Control-Connection-Request"
            }
        })
    );
    let mut pns = Connection::new(ConnectionConfig::new(Role::Pns), now);
    pns.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(
        pns.poll_event().map(|e| format!("{e:?}")),
        Some(
            "Closed { why: ReplyTimeout { waiting_for: \"Start-Control-Connection-Reply\" } }"
                .into()
        )
    );
}

#[test]
fn version_handling() {
    // An earlier version (0.255): SCCRP "version not supported", closed.
    let now = Instant::now();
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    let rq = |v| {
        Message::StartControlConnectionRequest(StartControlConnectionRequest {
            protocol_version: v,
            framing_capabilities: 1,
            bearer_capabilities: 1,
            maximum_channels: 0,
            firmware_revision: 0,
            host_name: Default::default(),
            vendor_string: Default::default(),
        })
    };
    pac.handle_bytes(now, &rq(0x00ff).to_vec());
    let mut out = Vec::new();
    assert!(pac.poll_transmit(&mut out));
    let Ok(Message::StartControlConnectionReply(r)) = Message::parse(&out) else {
        panic!()
    };
    assert_eq!(r.result_code, StartResult::UnsupportedVersion);
    assert_eq!(r.protocol_version, PROTOCOL_VERSION);
    assert_eq!(
        pac.poll_event().map(|e| match e {
            ConnectionEvent::Closed { why } => why.to_string(),
            e => format!("{e:?}"),
        }),
        Some("the peer speaks PPTP version 0.255; we speak 1.0".into())
    );
    // A later version (2.0): we answer with ours, 1.0 (section 3.1.2).
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    pac.handle_bytes(now, &rq(0x0200).to_vec());
    out.clear();
    pac.poll_transmit(&mut out);
    let Ok(Message::StartControlConnectionReply(r)) = Message::parse(&out) else {
        panic!()
    };
    assert_eq!(
        (r.result_code, r.protocol_version),
        (StartResult::Success, 0x0100)
    );
    assert_eq!(pac.state(), ControlState::Established);

    // A PNS whose PAC answers with another version: Stop (Stop-Protocol).
    let mut pns = Connection::new(ConnectionConfig::new(Role::Pns), now);
    out.clear();
    pns.poll_transmit(&mut out);
    let rp = Message::StartControlConnectionReply(StartControlConnectionReply {
        protocol_version: 0x0200,
        result_code: StartResult::Success,
        error_code: GeneralError::None,
        framing_capabilities: 0,
        bearer_capabilities: 0,
        maximum_channels: 0,
        firmware_revision: 0,
        host_name: Default::default(),
        vendor_string: Default::default(),
    });
    pns.handle_bytes(now, &rp.to_vec());
    out.clear();
    pns.poll_transmit(&mut out);
    assert_eq!(
        Message::parse(&out),
        Ok(Message::StopControlConnectionRequest(
            StopControlConnectionRequest {
                reason: StopReason::StopProtocol
            }
        ))
    );
    assert_eq!(pns.state(), ControlState::WaitStopReply);
    pns.handle_eof(now);
    assert_eq!(
        pns.poll_event(),
        Some(ConnectionEvent::Closed {
            why: CloseReason::UnsupportedVersion { version: 0x0200 }
        })
    );
}

#[test]
fn pns_refused_or_quirky_start_reply() {
    let now = Instant::now();
    let reply = |result: u8, error: u8| {
        Message::StartControlConnectionReply(StartControlConnectionReply {
            protocol_version: 0x0100,
            result_code: result.into(),
            error_code: error.into(),
            framing_capabilities: 0,
            bearer_capabilities: 0,
            maximum_channels: 0,
            firmware_revision: 0,
            host_name: Default::default(),
            vendor_string: Default::default(),
        })
    };
    let mut pns = Connection::new(ConnectionConfig::new(Role::Pns), now);
    pns.handle_bytes(now, &reply(4, 0).to_vec());
    assert_eq!(
        pns.poll_event().map(|e| match e {
            ConnectionEvent::Closed { why } => why.to_string(),
            e => format!("{e:?}"),
        }),
        Some(
            "the peer refused the control connection: result Requester is not authorized (4)"
                .into()
        )
    );
    // Result Code 0: pptp-linux takes it as success ("certain ADSL modems").
    let mut pns = Connection::new(ConnectionConfig::new(Role::Pns), now);
    pns.handle_bytes(now, &reply(0, 0).to_vec());
    assert_eq!(pns.state(), ControlState::Established);
}

#[test]
fn messages_out_of_place() {
    let mut p = Pair::default_pair();
    p.call_up(1, 2);
    let unexpected = p.pac.conn.counters().unexpected_messages;
    // To a PAC, messages only a PAC sends, replies to nothing.
    for m in [
        Message::OutgoingCallReply(OutgoingCallReply {
            call_id: 1,
            peer_call_id: 2,
            result_code: OutgoingCallResult::Connected,
            error_code: GeneralError::None,
            cause_code: 0,
            connect_speed: 0,
            packet_recv_window_size: 0,
            packet_processing_delay: 0,
            physical_channel_id: 0,
        }),
        Message::IncomingCallRequest(IncomingCallRequest {
            call_id: 1,
            call_serial_number: 0,
            call_bearer_type: 1,
            physical_channel_id: 0,
            dialed_number_length: 0,
            dialing_number_length: 0,
            dialed_number: Default::default(),
            dialing_number: Default::default(),
            subaddress: Default::default(),
        }),
        Message::CallDisconnectNotify(CallDisconnectNotify {
            call_id: 2,
            result_code: DisconnectResult::Request,
            error_code: GeneralError::None,
            cause_code: 0,
            call_statistics: Default::default(),
        }),
        Message::StopControlConnectionReply(StopControlConnectionReply {
            result_code: StopResult::Ok,
            error_code: GeneralError::None,
        }),
        Message::EchoReply(EchoReply {
            identifier: 12345,
            result_code: EchoResult::Ok,
            error_code: GeneralError::None,
        }),
        Message::CallClearRequest(CallClearRequest { call_id: 999 }),
    ] {
        inject_pac(&mut p, m);
    }
    assert_eq!(p.pac.conn.counters().unexpected_messages, unexpected + 6);
    assert!(p.pac.take_events().is_empty());
    assert_eq!(p.pac.conn.state(), ControlState::Established);
    assert_eq!(p.pac.conn.call_state(2), Some(CallState::Established));
    // A second SCCRQ: "Command channel already exists".
    let before = p.pac.sent.len();
    inject_pac(
        &mut p,
        Message::StartControlConnectionRequest(StartControlConnectionRequest {
            protocol_version: 0x0100,
            framing_capabilities: 0,
            bearer_capabilities: 0,
            maximum_channels: 0,
            firmware_revision: 0,
            host_name: Default::default(),
            vendor_string: Default::default(),
        }),
    );
    assert!(matches!(
        &p.pac.sent[before..],
        [Message::StartControlConnectionReply(r)] if r.result_code == StartResult::ChannelExists
    ));
    assert_eq!(p.pac.conn.state(), ControlState::Established);

    // To a PNS: an Incoming-Call-Request is answered "Do Not Accept"; an
    // Outgoing-Call-Request likewise (pptp-linux does the same).
    let before = p.pns.sent.len();
    inject_pns(
        &mut p,
        Message::IncomingCallRequest(IncomingCallRequest {
            call_id: 77,
            call_serial_number: 0,
            call_bearer_type: 1,
            physical_channel_id: 0,
            dialed_number_length: 0,
            dialing_number_length: 0,
            dialed_number: Default::default(),
            dialing_number: Default::default(),
            subaddress: Default::default(),
        }),
    );
    inject_pns(&mut p, ocrq(78));
    assert!(matches!(
        &p.pns.sent[before..],
        [
            Message::IncomingCallReply(IncomingCallReply {
                peer_call_id: 77,
                result_code: IncomingCallResult::DoNotAccept,
                ..
            }),
            Message::OutgoingCallReply(OutgoingCallReply {
                peer_call_id: 78,
                result_code: OutgoingCallResult::DoNotAccept,
                ..
            })
        ]
    ));
    // A Start-Control-Connection-Request to a PNS: the roles are backwards.
    inject_pns(
        &mut p,
        Message::StartControlConnectionRequest(StartControlConnectionRequest {
            protocol_version: 0x0100,
            framing_capabilities: 0,
            bearer_capabilities: 0,
            maximum_channels: 0,
            firmware_revision: 0,
            host_name: Default::default(),
            vendor_string: Default::default(),
        }),
    );
    assert_eq!(
        p.pns.closed().map(|w| w.to_string()),
        Some(
            "the peer sent Start-Control-Connection-Request while the control connection was \
             established"
                .into()
        )
    );
}

#[test]
fn before_establishment() {
    // An Outgoing-Call-Request or an Echo-Request before SCCRQ gets the
    // General Error Not-Connected (RFC 2637 section 2.16).
    let now = Instant::now();
    let mut pac = Connection::new(ConnectionConfig::new(Role::Pac), now);
    pac.handle_bytes(now, &ocrq(5).to_vec());
    pac.handle_bytes(
        now,
        &Message::EchoRequest(EchoRequest { identifier: 3 }).to_vec(),
    );
    let mut out = Vec::new();
    pac.poll_transmit(&mut out);
    let mut reader = ControlReader::new();
    reader.push(&out);
    let sent: Vec<_> = std::iter::from_fn(|| reader.pop())
        .map(|m| m.unwrap())
        .collect();
    assert!(matches!(
        &sent[..],
        [
            Message::OutgoingCallReply(OutgoingCallReply {
                peer_call_id: 5,
                result_code: OutgoingCallResult::GeneralError,
                error_code: GeneralError::NotConnected,
                ..
            }),
            Message::EchoReply(EchoReply {
                identifier: 3,
                result_code: EchoResult::GeneralError,
                error_code: GeneralError::NotConnected,
            })
        ]
    ));
    assert_eq!(pac.state(), ControlState::Idle);
    assert_eq!(pac.poll_event(), None);
}

#[test]
fn cdn_with_the_pns_call_id_and_link_info() {
    // accel-ppp sends Call-Disconnect-Notify with the PNS's Call ID.
    let mut p = Pair::default_pair();
    p.call_up(0x10, 0x20);
    // Set-Link-Info PNS -> PAC.
    p.pns
        .conn
        .set_link_info(p.now, 0x10, 0xffff_ffff, 0)
        .unwrap();
    p.settle();
    assert_eq!(
        p.pac.take_events(),
        vec![ConnectionEvent::LinkInfo {
            call_id: 0x20,
            send_accm: 0xffff_ffff,
            recv_accm: 0
        }]
    );
    inject_pns(
        &mut p,
        Message::CallDisconnectNotify(CallDisconnectNotify {
            call_id: 0x10,
            result_code: DisconnectResult::AdminShutdown,
            error_code: GeneralError::None,
            cause_code: 0,
            call_statistics: Default::default(),
        }),
    );
    let ev = p.pns.take_events();
    assert!(
        matches!(
            &ev[..],
            [ConnectionEvent::CallCleared {
                call_id: 0x10,
                peer_call_id: 0x20,
                ..
            }]
        ),
        "{ev:?}"
    );
}

#[test]
fn wan_error_notify_to_the_pns() {
    let mut p = Pair::default_pair();
    p.call_up(3, 4);
    let errors = WanErrors {
        crc_errors: 1,
        ..Default::default()
    };
    inject_pns(
        &mut p,
        Message::WanErrorNotify(WanErrorNotify {
            peer_call_id: 3,
            errors,
        }),
    );
    assert_eq!(
        p.pns.take_events(),
        vec![ConnectionEvent::WanError { call_id: 3, errors }]
    );
}

#[test]
fn one_octet_reads_and_many_calls() {
    let mut p = Pair::new(
        ConnectionConfig {
            max_calls: 100,
            ..ConnectionConfig::new(Role::Pac)
        },
        ConnectionConfig {
            max_calls: 100,
            ..ConnectionConfig::new(Role::Pns)
        },
    );
    p.chunk = 1;
    p.established();
    for i in 0..50u16 {
        p.pns.conn.place_call(p.now, 1000 + i, i).unwrap();
    }
    p.settle();
    let requests = p.pac.take_events();
    assert_eq!(requests.len(), 50);
    for (i, e) in requests.iter().enumerate() {
        let ConnectionEvent::CallRequested { peer_call_id, .. } = e else {
            panic!("{e:?}")
        };
        p.pac
            .conn
            .accept_call(p.now, *peer_call_id, 5000 + i as u16);
    }
    p.settle();
    assert_eq!(p.pns.take_events().len(), 50);
    for i in (0..50u16).step_by(2) {
        p.pns
            .conn
            .clear_call(p.now, 1000 + i, ClearReason::default());
    }
    for i in (1..50u16).step_by(2) {
        p.pac
            .conn
            .clear_call(p.now, 5000 + i, ClearReason::default());
    }
    p.settle();
    assert_eq!(p.pac.conn.calls().count(), 0);
    assert_eq!(p.pns.conn.calls().count(), 0);
    assert_eq!(p.pac.take_events().len(), 25);
    assert_eq!(p.pns.take_events().len(), 50);
}

#[test]
fn peer_closes_tcp() {
    let mut p = Pair::default_pair();
    p.call_up(1, 2);
    p.pac.conn.handle_eof(p.now);
    p.settle();
    assert_eq!(p.pac.closed(), Some(&CloseReason::PeerClosedTcp));
    assert_eq!(p.pac.conn.calls().count(), 0);
}
