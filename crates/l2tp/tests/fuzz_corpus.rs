//! Replays every file of the fuzz corpora (fuzz/corpus/l2tp_control and
//! fuzz/corpus/l2tp_avp) through the same functions the fuzz targets call,
//! so each corpus file is a regression test that runs without a fuzzer; and
//! checks that the committed `seed-*` files are what [`control_seeds`] and
//! [`avp_seeds`] build (`TSUNAGI_WRITE_SEEDS=1` writes them:
//! `TSUNAGI_WRITE_SEEDS=1 cargo test -p tsunagi-l2tp --test fuzz_corpus`).

use tsunagi_l2tp::avp::{write_avp, Avp, ResultCode};
use tsunagi_l2tp::fuzzing::{control_seed, SECRET};
use tsunagi_l2tp::message::{Hiding, Message, MessageType};
use tsunagi_l2tp::reliable::write_control;
use tsunagi_testkit::corpus::{check_or_write, replay};

#[test]
fn replay_l2tp_control_corpus() {
    replay("l2tp_control", tsunagi_l2tp::fuzzing::l2tp_control);
}

#[test]
fn replay_l2tp_avp_corpus() {
    replay("l2tp_avp", tsunagi_l2tp::fuzzing::l2tp_avp);
}

#[test]
fn control_seeds_are_current() {
    check_or_write("l2tp_control", control_seeds(), "tsunagi-l2tp");
}

#[test]
fn avp_seeds_are_current() {
    check_or_write("l2tp_avp", avp_seeds(), "tsunagi-l2tp");
}

/// Conversations with a real peer engine, one per configuration: an LNS
/// answering a LAC (plain, short timers, with a secret and hidden AVPs,
/// refusing sessions, with data sequencing), an LNS opening the tunnel, a
/// LAC answering and opening.
fn control_seeds() -> Vec<(String, Vec<u8>)> {
    let configs: [(u8, &str); 9] = [
        (0x11, "lns-accepts"),
        (0x19, "lns-short-timers"),
        (0x15, "lns-secret-hidden"),
        (0x01, "lns-refuses"),
        (0x51, "lns-sequencing"),
        (0x13, "lns-initiates"),
        (0x30, "lac-answers-opens"),
        (0x32, "lac-initiates-opens"),
        (0xb2, "lac-tie-breaker"),
    ];
    let mut seeds = Vec::new();
    for (c, name) in configs {
        seeds.push((format!("seed-{name}"), control_seed(c, 24)));
    }
    // Hand-made: junk and edge cases after a config octet.
    let mut zlb = Vec::new();
    write_control(&mut zlb, 0x4242, 0, 0, 0, &[]);
    let rec = |config: u8, datagrams: &[&[u8]]| {
        let mut s = vec![config];
        for d in datagrams {
            s.push(2);
            s.extend_from_slice(&(d.len() as u16).to_be_bytes());
            s.extend_from_slice(d);
        }
        s
    };
    seeds.push(("seed-edge-zlb-first".into(), rec(0x11, &[&zlb])));
    seeds.push((
        "seed-edge-bad-headers".into(),
        rec(
            0x11,
            &[
                &[0xc8, 0x02, 0x00, 0x09],
                &[0xc8, 0x03],
                &[0x00, 0x02, 0x42, 0x42, 0, 1],
            ],
        ),
    ));
    seeds
}

fn body(m: &Message, hiding: Option<Hiding<'_>>) -> Vec<u8> {
    let mut b = Vec::new();
    m.emit(&mut b, hiding);
    b
}

/// Datagrams: every message type, hidden AVPs, data headers with every
/// optional field, and the refused forms.
fn avp_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let sccrq = Message::new(MessageType::Sccrq)
        .with(Avp::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .with(Avp::HostName(b"lac".to_vec()))
        .with(Avp::FramingCapabilities(3))
        .with(Avp::BearerCapabilities(3))
        .with(Avp::TieBreaker([1, 2, 3, 4, 5, 6, 7, 8]))
        .with(Avp::AssignedTunnelId(7))
        .with(Avp::ReceiveWindowSize(4))
        .with(Avp::Challenge(vec![9; 16]));
    let icrq = Message::new(MessageType::Icrq)
        .with(Avp::AssignedSessionId(5))
        .with(Avp::CallSerialNumber(1))
        .with(Avp::CallingNumber(b"555".to_vec()));
    let stop = Message::new(MessageType::StopCcn)
        .with(Avp::AssignedTunnelId(7))
        .with(Avp::ResultCode(ResultCode {
            result: 2,
            error: Some(8),
            message: b"bye".to_vec(),
        }));
    let iccn = Message::new(MessageType::Iccn)
        .with(Avp::TxConnectSpeed(1))
        .with(Avp::FramingType(1))
        .with(Avp::InitialReceivedLcpConfreq(vec![1, 4, 5, 0xdc]))
        .with(Avp::ProxyAuthenType(2))
        .with(Avp::ProxyAuthenName(b"alice".to_vec()))
        .with(Avp::ProxyAuthenId(3))
        .with(Avp::ProxyAuthenResponse(vec![0; 16]))
        .with(Avp::SequencingRequired);
    let sli = Message::new(MessageType::Sli).with(Avp::Accm {
        send: 0,
        receive: u32::MAX,
    });
    let wen = Message::new(MessageType::Wen).with(Avp::CallErrors(Default::default()));
    let rv = [3u8; 16];
    let hiding = Hiding {
        secret: SECRET,
        random_vector: &rv,
    };
    let mut add = |name: &str, b: Vec<u8>| {
        let mut d = Vec::new();
        write_control(&mut d, 1, 2, 3, 4, &b);
        seeds.push((format!("seed-{name}"), d));
    };
    add("sccrq", body(&sccrq, None));
    add("icrq-hidden", body(&icrq, Some(hiding)));
    add("stopccn", body(&stop, None));
    add("iccn-proxy", body(&iccn, None));
    add("sli", body(&sli, None));
    add("wen", body(&wen, None));
    add("zlb", Vec::new());
    let mut unknown = body(&Message::new(MessageType::Hello), None);
    write_avp(&mut unknown, true, false, 311, 1, b"vendor");
    write_avp(&mut unknown, false, false, 0, 99, b"");
    add("hello-unknown-avps", unknown);
    let mut bad = body(&Message::new(MessageType::Hello), None);
    bad.extend_from_slice(&[0x80, 0x03, 0, 0, 0, 7]);
    add("avp-length-3", bad);
    seeds.push((
        "seed-data-plain".into(),
        vec![0x00, 0x02, 0, 1, 0, 2, 0xff, 0x03, 0xc0, 0x21],
    ));
    seeds.push((
        "seed-data-all-fields".into(),
        vec![
            0x4b, 0x02, 0, 18, 0, 1, 0, 2, 0, 1, 0, 0, 0, 2, 0xaa, 0xbb, 0xff, 0x03,
        ],
    ));
    seeds.push((
        "seed-bad-length".into(),
        vec![0xc8, 0x02, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 0],
    ));
    seeds.push((
        "seed-bad-version".into(),
        vec![0xc8, 0x03, 0x00, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0],
    ));
    seeds
}

/// The conversation seeds get somewhere: the tunnel up and, where the
/// driver accepts or opens one, a session up.
#[test]
fn conversation_seeds_bring_sessions_up() {
    use std::time::{Duration, Instant};
    use tsunagi_l2tp::fuzzing::{ControlHarness, DELAY_UNIT_MS};
    for (config, sessions) in [
        (0x11u8, true),
        (0x15, true),
        (0x13, true),
        (0x30, true),
        (0x32, true),
        (0x01, false),
    ] {
        let seed = control_seed(config, 24);
        let mut h = ControlHarness::new(config, Instant::now());
        let _ = h.initial();
        let mut rest = &seed[1..];
        let mut up = 0;
        while rest.len() >= 3 {
            let delay = Duration::from_millis(u64::from(rest[0]) * DELAY_UNIT_MS);
            let n = usize::from(u16::from_be_bytes([rest[1], rest[2]]));
            let d = &rest[3..3 + n];
            rest = &rest[3 + n..];
            let _ = h.step(delay, d);
            up = up.max(h.tunnel().counters().sessions_up);
        }
        assert!(
            h.tunnel().counters().control_received > 3,
            "config {config:#x}"
        );
        assert_eq!(up > 0, sessions, "config {config:#x}: sessions up {up}");
    }
}
