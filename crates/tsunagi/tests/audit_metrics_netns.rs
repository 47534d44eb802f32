//! The audit trail and the metrics endpoint of a running daemon (issue
//! 15): two daemons in two namespaces, PPP between them over the control
//! socket (daemon B dials `tsunagi -S A.sock direct p2`, as in
//! daemon_netns.rs), both with `audit_file`, A with `metrics_listen` on
//! its namespace's loopback. Then:
//! - each side's audit file has a session-start record once IPCP is up,
//!   with who, from where, the inner addresses;
//! - A's `/metrics`, scraped over plain TCP, shows the session, and its
//!   byte counters grow with a ping;
//! - after a hangup, each side has a session-end record whose byte and
//!   packet counts are exactly what `status --json` showed just before.
//!   Exact because the counters are the engine's IP packet counters
//!   (LinkStats rx/tx_bytes): the LCP Terminate exchange of the hangup is
//!   not counted in them, and the test hangs up only once two `status`
//!   readings in a row agree (nothing else in flight: IPV6CP is off);
//! - the metrics keep the ended session's bytes (counters do not go
//!   down), count the end by kind, and show no live session.
//!
//! Needs root, network namespaces and tun devices: `#[ignore]`d,
//! `scripts/test.sh` runs it.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{netns, ping, require_netns, wait_for, Guard, BIN};

/// `GET /metrics` on `port` of namespace `ns`'s loopback: the body.
fn scrape(ns: &str, port: u16) -> String {
    netns::in_ns(ns, || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        text.split_once("\r\n\r\n").unwrap().1.to_string()
    })
}

/// The value of the sample that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The audit records of `file` whose event is `event`.
fn records(file: &std::path::Path, event: &str) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split(' ').nth(1) == Some(event))
        .map(str::to_string)
        .collect()
}

/// The value of `key=` in a record (unquoted values only).
fn field<'a>(record: &'a str, key: &str) -> Option<&'a str> {
    record
        .split(' ')
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn audit_records_and_metrics_follow_a_session() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-audit-{pid}"), &format!("tsau{pid}"));
    let dir = guard.dir.clone();
    let net = format!("10.249.{}", pid % 250);
    let (a_addr, b_addr) = (format!("{net}.1"), format!("{net}.2"));
    let (a_audit, b_audit) = (dir.join("a-audit.log"), dir.join("b-audit.log"));
    let port = 9469;
    netns::run(&guard.sides[0].ns, &["ip", "link", "set", "lo", "up"]);
    // Keys before the first table are [daemon]'s (Side::config starts it).
    let a_conf = format!(
        r#"audit_file = "{audit}"
audit_syslog = false
metrics_listen = "127.0.0.1:{port}"

[link.p2]
mode = "direct"
tun = "tsa{pid}"
local = "{a_addr}"
remote = "{b_addr}"
ipv6cp = false
allow_users = ["root"]
"#,
        audit = a_audit.display()
    );
    // The caller claims an ssh client (as sshd's SSH_CONNECTION would).
    let b_conf = format!(
        r#"audit_file = "{audit}"
audit_syslog = false

[link.p1]
mode = "dial"
device = "env SSH_CONNECTION='192.0.2.9 50022 192.0.2.1 22' {BIN} -S {sock} direct p2"
tun = "tsb{pid}"
ipv6cp = false
redial_min = 1
"#,
        audit = b_audit.display(),
        sock = guard.sides[0].socket().display(),
    );
    guard.sides[0].start(&a_conf);
    guard.sides[1].start(&b_conf);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    wait_for(Duration::from_secs(15), "IPCP up on B", || {
        b.status()[0]["local"].as_str() == Some(b_addr.as_str())
    });

    // Start records, once IPCP is up.
    wait_for(Duration::from_secs(5), "start records", || {
        records(&a_audit, "session-start").len() == 1
            && records(&b_audit, "session-start").len() == 1
    });
    let start_a = records(&a_audit, "session-start").remove(0);
    assert_eq!(field(&start_a, "profile"), Some("p2"), "{start_a}");
    assert_eq!(field(&start_a, "protocol"), Some("direct"), "{start_a}");
    assert_eq!(field(&start_a, "uid"), Some("0"), "{start_a}");
    assert_eq!(field(&start_a, "from"), Some("192.0.2.9"), "{start_a}");
    assert_eq!(field(&start_a, "inner"), Some(b_addr.as_str()), "{start_a}");
    assert_eq!(field(&start_a, "local"), Some(a_addr.as_str()), "{start_a}");
    let start_b = records(&b_audit, "session-start").remove(0);
    assert_eq!(field(&start_b, "protocol"), Some("ssh"), "{start_b}");
    assert_eq!(field(&start_b, "inner"), Some(a_addr.as_str()), "{start_b}");
    let id_a = field(&start_a, "id").unwrap().to_string();

    // Metrics: the session, and counters that move with a ping.
    let before = scrape(&a.ns, port);
    assert_eq!(
        sample(&before, "tsunagi_sessions{protocol=\"direct\"}"),
        Some(1),
        "{before}"
    );
    assert_eq!(
        sample(&before, "tsunagi_profile_sessions{profile=\"p2\"}"),
        Some(1),
        "{before}"
    );
    let in_series =
        "tsunagi_profile_bytes_total{profile=\"p2\",protocol=\"direct\",direction=\"in\"}";
    let session_in = format!(
        "tsunagi_session_bytes_total{{profile=\"p2\",id=\"{id_a}\",user=\"\",direction=\"in\"}}"
    );
    let bytes_before = sample(&before, in_series).expect("profile bytes");
    assert!(sample(&before, &session_in).is_some(), "{before}");
    assert!(ping(b, &a_addr), "ping B -> A failed");
    let after = scrape(&a.ns, port);
    let bytes_after = sample(&after, in_series).unwrap();
    // Two echo requests of 84 bytes at least.
    assert!(
        bytes_after >= bytes_before + 168,
        "{bytes_before} -> {bytes_after}"
    );

    // Quiet: two status readings in a row agree; then the hangup.
    let counters = |side: &support::Side| side.status_all()["sessions"][0]["counters"].clone();
    let mut last = (counters(a), counters(b));
    wait_for(Duration::from_secs(10), "counters at rest", || {
        std::thread::sleep(Duration::from_millis(300));
        let now = (counters(a), counters(b));
        let same = now == last;
        last = now;
        same
    });
    let out = b.cli(&["hangup", "p1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(5), "end records", || {
        records(&a_audit, "session-end").len() == 1 && records(&b_audit, "session-end").len() == 1
    });
    for (file, seen, kind) in [
        (&a_audit, &last.0, "peer-terminated"),
        (&b_audit, &last.1, "hangup"),
    ] {
        let end = records(file, "session-end").remove(0);
        assert_eq!(field(&end, "kind"), Some(kind), "{end}");
        for (key, counter) in [
            ("bytes_in", "rx_bytes"),
            ("bytes_out", "tx_bytes"),
            ("packets_in", "rx_packets"),
            ("packets_out", "tx_packets"),
        ] {
            assert_eq!(
                field(&end, key).and_then(|v| v.parse::<u64>().ok()),
                seen[counter].as_u64(),
                "{key} of {end} against status {seen}"
            );
        }
        assert!(field(&end, "duration").is_some(), "{end}");
        assert!(end.contains(" reason=\""), "{end}");
    }
    let end_a = records(&a_audit, "session-end").remove(0);
    assert_eq!(field(&end_a, "id"), Some(id_a.as_str()), "{end_a}");
    assert_eq!(field(&end_a, "from"), Some("192.0.2.9"), "{end_a}");

    // The ended session's bytes stay in the profile's counters.
    let ended = scrape(&a.ns, port);
    assert!(sample(&ended, in_series).unwrap() >= bytes_after, "{ended}");
    assert_eq!(
        sample(&ended, "tsunagi_profile_sessions{profile=\"p2\"}"),
        Some(0),
        "{ended}"
    );
    assert_eq!(
        sample(
            &ended,
            "tsunagi_profile_session_ends_total{profile=\"p2\",kind=\"peer-terminated\"}"
        ),
        Some(1),
        "{ended}"
    );
    assert!(sample(&ended, &session_in).is_none(), "{ended}");

    assert_eq!(guard.sides[1].stop(), Some(0), "B's exit status");
    assert_eq!(guard.sides[0].stop(), Some(0), "A's exit status");
}
