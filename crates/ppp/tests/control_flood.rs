//! A peer that floods control packets: the link handles no more than its
//! budget ([`ControlBudget`]), drops the rest unread and counts them, keeps
//! what it queues for the wire bounded, and past the threshold ends the
//! link as a flood. A peer within the budget is untouched.

use std::time::{Duration, Instant};

use tsunagi_crypto::OsRandom;
use tsunagi_ppp::link::{ControlBudget, DownReason, Event, Link, LinkConfig, MAX_TX_QUEUE};
use tsunagi_ppp::stream::StreamLink;
use tsunagi_testkit::hostile::{configure_request_flood, hdlc, lcp_configure_request};

fn link() -> Link {
    let mut c = LinkConfig {
        name: "flooded".into(),
        ..LinkConfig::default()
    };
    c.ipcp.local = Some([10, 0, 0, 1].into());
    c.ipcp.remote = Some([10, 0, 0, 2].into());
    Link::new(c, 1, OsRandom::handle())
}

fn down(link: &mut Link) -> Option<DownReason> {
    std::iter::from_fn(|| link.poll_event()).find_map(|e| match e {
        Event::Down(reason) => Some(reason),
        _ => None,
    })
}

#[test]
fn a_flood_is_dropped_counted_and_cut_off() {
    let budget = ControlBudget::default();
    let mut link = link();
    let start = Instant::now();
    link.start(start);
    // 20 000 Configure-Requests within one second.
    let mut sent = 0;
    for (i, frame) in configure_request_flood(20_000).iter().enumerate() {
        let now = start + Duration::from_micros(i as u64 * 50);
        link.handle_frame(now, frame, &mut |_, _| panic!("no data"));
        let mut out = Vec::new();
        while link.poll_transmit(&mut out).is_some() {
            sent += 1;
            out.clear();
        }
    }
    let stats = link.stats().clone();
    let handled = 20_000 - stats.rx_control_dropped;
    // The burst, and one second's refill at most.
    assert!(
        handled <= u64::from(budget.burst + budget.per_second),
        "{handled} handled"
    );
    // A reply or two per handled request, the Terminate-Request: bounded.
    assert!(sent <= 3 * handled + 2, "{sent} frames sent for {handled}");
    assert_eq!(
        down(&mut link),
        Some(DownReason::ControlFlood {
            dropped: budget.flood_drops
        })
    );
}

#[test]
fn a_queue_nobody_drains_stays_bounded() {
    // The transport never takes what the link queues (its peer does not
    // read): the queue stops at MAX_TX_QUEUE and counts the rest.
    let mut c = LinkConfig::default();
    c.control_budget.per_second = 0; // no budget: only the queue's bound
    let mut link = Link::new(c, 2, OsRandom::handle());
    let start = Instant::now();
    link.start(start);
    for (i, frame) in configure_request_flood(2_000).iter().enumerate() {
        link.handle_frame(
            start + Duration::from_millis(i as u64),
            frame,
            &mut |_, _| {},
        );
    }
    assert!(link.stats().tx_control_dropped > 0);
    let mut queued = 0;
    let mut out = Vec::new();
    while link.poll_transmit(&mut out).is_some() {
        queued += 1;
    }
    assert_eq!(queued, MAX_TX_QUEUE);
}

#[test]
fn a_stream_flood_never_read_stays_bounded() {
    // The same flood as one byte stream, the output never polled.
    let mut link = StreamLink::new(link());
    let start = Instant::now();
    link.start(start);
    let stream = hdlc(&configure_request_flood(50_000));
    for (i, chunk) in stream.chunks(64 * 1024).enumerate() {
        link.handle_input(
            start + Duration::from_millis(i as u64),
            chunk,
            &mut |_, _| {},
        );
    }
    let mut out = Vec::new();
    link.poll_transmit(&mut out);
    // Replies to at most the budget's packets, a few dozen octets each.
    assert!(out.len() < 64 * 1024, "{} octets queued", out.len());
    assert!(link.stats().rx_control_dropped > 40_000);
}

#[test]
fn a_peer_within_the_budget_is_untouched() {
    // 30 Configure-Requests a second for 20 s: each answered, none
    // dropped, the link never cut off.
    let mut link = link();
    let start = Instant::now();
    link.start(start);
    for i in 0..600u32 {
        let now = start + Duration::from_millis(u64::from(i) * 1000 / 30);
        link.handle_frame(
            now,
            &lcp_configure_request(i as u8, 0x2000_0000 | i),
            &mut |_, _| {},
        );
        let mut out = Vec::new();
        while link.poll_transmit(&mut out).is_some() {}
        if link.poll_timeout().is_some_and(|t| t <= now) {
            link.handle_timeout(now);
        }
    }
    assert_eq!(link.stats().rx_control_dropped, 0);
    assert!(!std::iter::from_fn(|| link.poll_event()).any(|e| matches!(e, Event::Down(_))));
}
