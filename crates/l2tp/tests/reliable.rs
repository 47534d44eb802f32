//! Reliable delivery (RFC 2661 section 5.8): the examples of Appendix B
//! message by message, the retransmission timer's backoff, the peer's
//! window, duplicates and out-of-order messages.

mod common;

use std::time::{Duration, Instant};

use common::seeded;
use tsunagi_l2tp::header::Header;
use tsunagi_l2tp::message::{Message, MessageType};
use tsunagi_l2tp::reliable::{write_control, Received, Reliable, ReliableConfig};
use tsunagi_l2tp::{CallParams, DownReason, Role, Tunnel, TunnelConfig, TunnelEvent};

fn seq(d: &[u8]) -> (u16, u16, bool) {
    let (h, r) = Header::parse(d).unwrap();
    let s = h.sequence.unwrap();
    (s.ns, s.nr, r.is_empty())
}

fn kind(d: &[u8]) -> Option<MessageType> {
    let (_, r) = Header::parse(d).unwrap();
    if r.is_empty() {
        return None;
    }
    Some(Message::parse(&d[r], None).unwrap().kind())
}

fn all(t: &mut Tunnel) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    let mut out = Vec::new();
    while t.poll_transmit(&mut out) {
        v.push(out.clone());
    }
    v
}

fn events(t: &mut Tunnel) -> Vec<TunnelEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

/// Appendix B.1, lock-step tunnel establishment:
///
/// ```text
/// SCCRQ ->  Nr: 0, Ns: 0
///                  <- SCCRP  Nr: 1, Ns: 0
/// SCCCN ->  Nr: 1, Ns: 1
///                  <- ZLB    Nr: 2, Ns: 1
/// ```
#[test]
fn appendix_b1_lock_step_tunnel_establishment() {
    let t0 = Instant::now();
    let mut lac = Tunnel::connect(TunnelConfig::new(Role::Lac), 11, t0, seeded(1));
    let mut lns = Tunnel::accept(TunnelConfig::new(Role::Lns), 22, t0, seeded(2));
    let sccrq = all(&mut lac);
    assert_eq!(sccrq.len(), 1);
    assert_eq!(
        (kind(&sccrq[0]), seq(&sccrq[0])),
        (Some(MessageType::Sccrq), (0, 0, false))
    );
    lns.handle_input(t0, &sccrq[0]);
    let sccrp = all(&mut lns);
    assert_eq!(
        (kind(&sccrp[0]), seq(&sccrp[0])),
        (Some(MessageType::Sccrp), (0, 1, false))
    );
    lac.handle_input(t0, &sccrp[0]);
    let scccn = all(&mut lac);
    assert_eq!(
        (kind(&scccn[0]), seq(&scccn[0])),
        (Some(MessageType::Scccn), (1, 1, false))
    );
    lns.handle_input(t0, &scccn[0]);
    // The ZLB waits for the acknowledgement delay, in case a message could
    // carry the Nr instead.
    assert!(all(&mut lns).is_empty());
    let t1 = lns.poll_timeout().unwrap();
    assert_eq!(t1, t0 + ReliableConfig::default().ack_delay);
    lns.handle_timeout(t1);
    let zlb = all(&mut lns);
    assert_eq!((kind(&zlb[0]), seq(&zlb[0])), (None, (1, 2, true)));
    assert!(matches!(events(&mut lac)[..], [TunnelEvent::Up { .. }]));
    assert!(matches!(events(&mut lns)[..], [TunnelEvent::Up { .. }]));
}

/// Appendix B.2, lost packet with retransmission: the LNS's ICRP is lost;
/// the LAC's timer fires first and its ICRQ goes again; the LNS sees a
/// duplicate and answers with a ZLB; then the LNS's timer fires and the
/// ICRP goes again; the LAC answers ICCN; the LNS acknowledges with a ZLB.
///
/// ```text
/// ICRQ ->   (Nr: 1, Ns: 2)
///           (packet lost) <- ICRP (Nr: 3, Ns: 1)
/// ICRQ ->   (Nr: 1, Ns: 2)
///                         <- ZLB  (Nr: 3, Ns: 2)
///                         <- ICRP (Nr: 3, Ns: 1)
/// ICCN ->   (Nr: 2, Ns: 3)
///                         <- ZLB  (Nr: 4, Ns: 2)
/// ```
#[test]
fn appendix_b2_lost_packet_with_retransmission() {
    let t0 = Instant::now();
    let mut lac = Tunnel::connect(TunnelConfig::new(Role::Lac), 11, t0, seeded(1));
    let mut lns = Tunnel::accept(TunnelConfig::new(Role::Lns), 22, t0, seeded(2));
    // Establishment as in B.1, with the final ZLB.
    let d = all(&mut lac);
    lns.handle_input(t0, &d[0]);
    let d = all(&mut lns);
    lac.handle_input(t0, &d[0]);
    let d = all(&mut lac);
    lns.handle_input(t0, &d[0]);
    let t = t0 + Duration::from_millis(100);
    lns.handle_timeout(t);
    let d = all(&mut lns);
    lac.handle_input(t, &d[0]);
    events(&mut lac);
    events(&mut lns);

    // The LAC places a call: ICRQ (Nr: 1, Ns: 2).
    let t = t0 + Duration::from_secs(10);
    let sid = lac.open_session(t, &CallParams::default()).unwrap();
    let icrq = all(&mut lac);
    assert_eq!(
        (kind(&icrq[0]), seq(&icrq[0])),
        (Some(MessageType::Icrq), (2, 1, false))
    );
    // The LNS accepts a little later: ICRP (Nr: 3, Ns: 1), lost.
    let t_lns = t + Duration::from_millis(50);
    lns.handle_input(t_lns, &icrq[0]);
    let lns_sid = match events(&mut lns)[..] {
        [TunnelEvent::SessionRequested { session_id, .. }] => session_id,
        ref e => panic!("{e:?}"),
    };
    lns.accept_session(t_lns, lns_sid).unwrap();
    let icrp = all(&mut lns);
    assert_eq!(
        (kind(&icrp[0]), seq(&icrp[0])),
        (Some(MessageType::Icrp), (1, 3, false))
    );
    // (lost)

    // The LAC's timer fires first: ICRQ again, unchanged.
    let fire = lac.poll_timeout().unwrap();
    assert_eq!(fire, t + Duration::from_secs(1));
    lac.handle_timeout(fire);
    let again = all(&mut lac);
    assert_eq!(again, icrq);
    // The LNS has seen it: a ZLB (Nr: 3, Ns: 2) at once.
    lns.handle_input(fire, &again[0]);
    let zlb = all(&mut lns);
    assert_eq!((kind(&zlb[0]), seq(&zlb[0])), (None, (2, 3, true)));
    assert_eq!(lns.reliable_counters().duplicates, 1);
    lac.handle_input(fire, &zlb[0]);
    assert!(all(&mut lac).is_empty(), "the ICRQ is acknowledged");
    // The LNS's timer fires: ICRP (Nr: 3, Ns: 1) again.
    let fire = lns.poll_timeout().unwrap();
    assert_eq!(fire, t_lns + Duration::from_secs(1));
    lns.handle_timeout(fire);
    let icrp2 = all(&mut lns);
    assert_eq!(
        (kind(&icrp2[0]), seq(&icrp2[0])),
        (Some(MessageType::Icrp), (1, 3, false))
    );
    // ICCN (Nr: 2, Ns: 3).
    lac.handle_input(fire, &icrp2[0]);
    let iccn = all(&mut lac);
    assert_eq!(
        (kind(&iccn[0]), seq(&iccn[0])),
        (Some(MessageType::Iccn), (3, 2, false))
    );
    assert!(events(&mut lac)
        .iter()
        .any(|e| matches!(e, TunnelEvent::SessionUp { session_id, .. } if *session_id == sid)));
    // ZLB (Nr: 4, Ns: 2).
    lns.handle_input(fire, &iccn[0]);
    let later = lns.poll_timeout().unwrap();
    lns.handle_timeout(later);
    let zlb = all(&mut lns);
    assert_eq!((kind(&zlb[0]), seq(&zlb[0])), (None, (2, 4, true)));
}

/// Section 5.8: 1 s, doubling, capped at 8 s; after 5 retransmissions the
/// tunnel is given up.
#[test]
fn retransmission_backs_off_and_gives_up() {
    let t0 = Instant::now();
    let mut lac = Tunnel::connect(TunnelConfig::new(Role::Lac), 11, t0, seeded(1));
    let first = all(&mut lac);
    let mut sent_at = vec![Duration::ZERO];
    while let Some(t) = lac.poll_timeout() {
        lac.handle_timeout(t);
        let d = all(&mut lac);
        if !d.is_empty() {
            assert_eq!(d, first, "the same SCCRQ");
            sent_at.push(t - t0);
        }
        if lac.is_closed() {
            assert_eq!(
                t - t0,
                Duration::from_secs(31),
                "given up after the last wait"
            );
            break;
        }
    }
    let secs: Vec<u64> = sent_at.iter().map(|d| d.as_secs()).collect();
    assert_eq!(secs, vec![0, 1, 3, 7, 15, 23]);
    assert_eq!(
        events(&mut lac),
        vec![TunnelEvent::Down {
            why: DownReason::Unreachable {
                message: MessageType::Sccrq
            }
        }]
    );
}

fn body(t: MessageType) -> Vec<u8> {
    let mut b = Vec::new();
    Message::new(t).emit(&mut b, None);
    b
}

#[test]
fn the_peer_window_bounds_messages_in_flight() {
    let t0 = Instant::now();
    let config = ReliableConfig {
        max_queue: 8,
        ..ReliableConfig::default()
    };
    let mut r = Reliable::new(config, t0);
    r.set_peer_window(2);
    for _ in 0..8 {
        r.queue(5, 0, body(MessageType::Hello)).unwrap();
    }
    assert!(
        r.queue(5, 0, body(MessageType::Hello)).is_err(),
        "the queue is bounded"
    );
    let mut out = Vec::new();
    // Appendix A: the congestion window starts at 1.
    assert!(r.poll_transmit(5, &mut out));
    assert!(!r.poll_transmit(5, &mut out));
    // Each acknowledgement opens it by one, up to the peer's window of 2.
    r.receive(t0, 0, 1, 0, &[]);
    assert_eq!(r.congestion_window(), 2);
    let mut n = 0;
    while r.poll_transmit(5, &mut out) {
        n += 1;
    }
    assert_eq!(n, 2);
    r.receive(t0, 0, 3, 0, &[]);
    assert_eq!(r.congestion_window(), 2, "never beyond the peer's window");
    // A timeout drops it back to 1.
    let mut n = 0;
    while r.poll_transmit(5, &mut out) {
        n += 1;
    }
    assert_eq!(n, 2);
    let t = r.poll_timeout().unwrap();
    r.handle_timeout(t).unwrap();
    assert_eq!(r.congestion_window(), 1);
    assert_eq!(r.retransmit_timeout(), Duration::from_secs(2));
}

#[test]
fn duplicates_acked_and_out_of_order_buffered_then_delivered_in_order() {
    let t0 = Instant::now();
    let mut r = Reliable::new(ReliableConfig::default(), t0);
    let hello = body(MessageType::Hello);
    assert_eq!(r.receive(t0, 1, 0, 0, &hello), Received::Buffered);
    assert_eq!(r.receive(t0, 2, 0, 0, &hello), Received::Buffered);
    assert_eq!(r.receive(t0, 2, 0, 0, &hello), Received::Buffered);
    assert!(r.poll_delivered().is_none());
    assert_eq!(
        r.receive(t0, 0, 0, 0, &hello),
        Received::InOrder { released: 2 }
    );
    let ns: Vec<u16> = std::iter::from_fn(|| r.poll_delivered())
        .map(|d| d.ns)
        .collect();
    assert_eq!(ns, vec![0, 1, 2]);
    assert_eq!(r.expected(), 3);
    // A duplicate: a ZLB at once.
    assert_eq!(r.receive(t0, 1, 0, 0, &hello), Received::Duplicate);
    let mut out = Vec::new();
    assert!(r.poll_transmit(9, &mut out));
    assert_eq!(seq(&out), (0, 3, true));
    // Beyond our window (16): dropped.
    assert_eq!(r.receive(t0, 3 + 16, 0, 0, &hello), Received::OutOfWindow);
    // An Nr acknowledging what we never sent is ignored.
    r.receive(t0, 0, 40, 0, &[]);
    assert_eq!(r.counters().bogus_acks, 1);
}

#[test]
fn sequence_numbers_wrap() {
    let t0 = Instant::now();
    let mut r = Reliable::new(ReliableConfig::default(), t0);
    let hello = body(MessageType::Hello);
    let mut out = Vec::new();
    for i in 0..70_000u32 {
        let ns = i as u16;
        assert_eq!(
            r.receive(t0, ns, 0, 0, &hello),
            Received::InOrder { released: 0 }
        );
        r.poll_delivered().unwrap();
        if i % 1000 == 0 {
            write_control(&mut out, 1, 0, 0, ns.wrapping_add(1), &[]);
        }
    }
    assert_eq!(r.expected(), (70_000u32 % 65_536) as u16);
    assert_eq!(r.receive(t0, 65_535, 0, 0, &hello), Received::Duplicate);
}
