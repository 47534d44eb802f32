//! A hostile PPP peer behind `tsunagi direct`, against the real daemon in
//! a network namespace, the way the review's attacks went:
//! - a Terminate-Request (and a user name) with a newline and a forged
//!   `tsunagi[1]: ...` line in it: shown escaped, on one line, in the log,
//!   in `status` and in `tsunagi direct`'s output;
//! - a flood of LCP Configure-Requests from a peer that never reads: the
//!   daemon's memory stays under a bound, the flooding session is cut off
//!   saying why, and another link of the same daemon keeps moving traffic.
//!
//! The hostile peers are crates/testkit's, for the PPTP, L2TP and IPsec
//! tests to reuse. Needs root: `#[ignore]`d, `scripts/test.sh` runs it.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{ping, require_netns, wait_for, Guard, BIN};
use tsunagi_ppp::auth::{AuthConfig, AuthMethod};
use tsunagi_ppp::link::{Event, LinkConfig};
use tsunagi_testkit::direct::{DirectPeer, RawPeer};
use tsunagi_testkit::hostile::{
    configure_request_flood, forged_text, hdlc, terminate_request, FORGED_LINE,
};
use tsunagi_testkit::process::rss_kib;

/// Whether any line of `text` starts with the forged line (it would
/// stand as a log line of its own).
fn forged(text: &str) -> bool {
    text.lines().any(|l| l.starts_with(FORGED_LINE))
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn peer_text_is_shown_escaped_on_one_line() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-hostile-t-{pid}"), &format!("tht{pid}"));
    let net = format!("10.246.{}", pid % 250);
    let dir = guard.dir.clone();
    let secrets = dir.join("chap-secrets");
    std::fs::write(&secrets, "alice * wonderland *\n").unwrap();
    std::fs::set_permissions(
        &secrets,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    guard.sides[0].start(&format!(
        r#"[link.p1]
mode = "direct"
tun = "tht{pid}"
local = "{net}.1"
remote = "{net}.2"
ipv6cp = false
allow_users = ["root"]

[link.p2]
mode = "direct"
tun = "thu{pid}"
local = "{net}.5"
remote = "{net}.6"
ipv6cp = false
require = ["pap"]
secrets = "{secrets}"
allow_users = ["root"]
"#,
        secrets = secrets.display()
    ));
    let a = &guard.sides[0];
    let bin = Path::new(BIN);

    // A Terminate-Request whose text forges a log line.
    let mut peer = DirectPeer::attach(bin, &a.socket(), "p1", LinkConfig::default());
    peer.run_until(Duration::from_secs(15), "IPCP up", |p| {
        p.events.iter().any(|e| matches!(e, Event::Ipv4Up { .. }))
    });
    peer.inject(&terminate_request(0x42, &forged_text()));
    let (code, stderr) = peer.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    // `tsunagi direct`'s output: one line, the newline escaped.
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(
        stderr.contains("peer terminated: bye\\x0aNov 25"),
        "{stderr:?}"
    );
    assert!(!forged(&stderr));
    wait_for(Duration::from_secs(5), "p1 idle", || {
        a.status()[0]["phase"] == "idle"
    });
    let last = a.status()[0]["last_down"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(last.contains("bye\\x0aNov 25"), "{last:?}");
    assert!(!last.contains('\n') && !last.contains('\r'), "{last:?}");

    // A PAP user name with a newline and the same forged line.
    let evil = LinkConfig {
        auth: AuthConfig {
            user: Some(format!("evil\n{FORGED_LINE}")),
            password: Some(tsunagi_crypto::Secret::from("guess")),
            accept: vec![AuthMethod::Pap],
            ..AuthConfig::default()
        },
        ..LinkConfig::default()
    };
    let peer = DirectPeer::attach(bin, &a.socket(), "p2", evil);
    let (_, stderr) = peer.wait(Duration::from_secs(15));
    assert!(!forged(&stderr), "{stderr:?}");
    wait_for(Duration::from_secs(5), "the failure logged", || {
        a.log().contains("authentication failed")
    });
    let log = a.log();
    assert!(!forged(&log), "a forged line in the log:\n{log}");
    assert!(log.contains("evil\\x0aNov 25"), "{log}");
    wait_for(Duration::from_secs(5), "p2's reason in status", || {
        a.status()[1]["last_down"].as_str().is_some()
    });
    let last = a.status()[1]["last_down"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(last.contains("evil\\x0aNov 25"), "{last:?}");
    assert!(!last.contains('\n'), "{last:?}");
    drop(guard);
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn a_control_flood_is_cut_off_and_other_links_go_on() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-hostile-f-{pid}"), &format!("thf{pid}"));
    let net = format!("10.245.{}", pid % 250);
    let (a_addr, b_addr) = (format!("{net}.1"), format!("{net}.2"));
    // p1: a good link from daemon B; p2: the one a peer floods.
    guard.sides[0].start(&format!(
        r#"[link.p1]
mode = "direct"
tun = "thf{pid}"
local = "{a_addr}"
remote = "{b_addr}"
ipv6cp = false
allow_users = ["root"]

[link.p2]
mode = "direct"
tun = "thg{pid}"
local = "{net}.5"
remote = "{net}.6"
ipv6cp = false
allow_users = ["root"]
"#
    ));
    let sock = guard.sides[0].socket();
    guard.sides[1].start(&format!(
        r#"[link.p1]
mode = "dial"
device = "{BIN} -S {sock} direct p1"
tun = "thb{pid}"
ipv6cp = false
"#,
        sock = sock.display(),
    ));
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    wait_for(Duration::from_secs(15), "the good link up", || {
        b.status()[0]["local"].as_str() == Some(b_addr.as_str())
    });
    let daemon = a.daemon.as_ref().unwrap().id();
    // `ip netns exec` runs the daemon as a child: its pid is the daemon's
    // once exec'd.
    let before = rss_kib(daemon).expect("daemon RSS");

    // The flood: Configure-Requests as fast as the pipe takes them, from a
    // peer that never reads a byte of the answers.
    let mut flooder = RawPeer::attach(Path::new(BIN), &a.socket(), "p2", &[]);
    let burst = hdlc(&configure_request_flood(4096));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) && flooder.send(&burst) {
                sent += burst.len() as u64;
            }
            (sent, flooder)
        })
    };
    // While it floods: memory under the bound, the good link still pings.
    let bound_kib = before + 48 * 1024;
    let start = Instant::now();
    let mut peak = before;
    while start.elapsed() < Duration::from_secs(6) {
        let rss = rss_kib(daemon).expect("the daemon died");
        peak = peak.max(rss);
        assert!(rss < bound_kib, "RSS {rss} KiB over {bound_kib} KiB");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ping(b, &a_addr), "the good link stopped during the flood");
    // The flooding session was cut off, saying why.
    wait_for(Duration::from_secs(10), "the flood cut off", || {
        a.status()[1]["last_down"]
            .as_str()
            .is_some_and(|s| s.contains("flooded control packets"))
    });
    stop.store(true, Ordering::Relaxed);
    let (sent, _flooder) = writer.join().unwrap();
    println!("flood: {sent} octets sent; daemon RSS {before} KiB before, peak {peak} KiB");
    assert!(sent > 1_000_000, "the flood was too small to mean anything");
    assert!(ping(b, &a_addr), "the good link after the flood");
    assert!(
        a.log().contains("peer flooded control packets"),
        "{}",
        a.log()
    );
    drop(guard);
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn a_peer_cannot_take_a_lan_or_reserved_address() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-hostile-a-{pid}"), &format!("tha{pid}"));
    let oct = pid % 250;
    let net = format!("10.244.{oct}");
    let lan = format!("192.168.{oct}");
    // A LAN on the gateway (a veth pair: this kernel has no dummy).
    let a_ns = guard.sides[0].ns.clone();
    for args in [
        vec![
            "link", "add", "lan0", "type", "veth", "peer", "name", "lan1",
        ],
        vec!["addr", "add", &format!("{lan}.1/24"), "dev", "lan0"],
        vec!["link", "set", "lan1", "up"],
        vec!["link", "set", "lan0", "up"],
    ] {
        let ok = std::process::Command::new("ip")
            .arg("-n")
            .arg(&a_ns)
            .args(&args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip {args:?}");
    }
    // No `remote`: the peer chooses its own address.
    guard.sides[0].start(&format!(
        r#"[link.p1]
mode = "direct"
tun = "tha{pid}"
local = "{net}.1"
ipv6cp = false
allow_users = ["root"]
"#
    ));
    let a = &guard.sides[0];
    for (asked, why) in [
        (
            format!("{lan}.7"),
            format!("{lan}.7 is in {lan}.0/24, which this gateway routes elsewhere"),
        ),
        (
            "224.0.0.5".to_string(),
            "224.0.0.5 is not a unicast host address".to_string(),
        ),
        (
            format!("{net}.1"),
            format!("{net}.1 is our own end of the link"),
        ),
    ] {
        let mut config = LinkConfig::default();
        config.ipcp.local = Some(asked.parse().unwrap());
        let peer = DirectPeer::attach(Path::new(BIN), &a.socket(), "p1", config);
        let (_, stderr) = peer.wait(Duration::from_secs(30));
        let log = a.log();
        assert!(
            log.contains(&format!("p1: IPCP: peer's address refused: {why}")),
            "{asked}: {stderr}\n{log}"
        );
        // The tun never carried the peer there.
        assert!(!log.contains(&format!("peer {asked}")), "{log}");
        let routes = a.exec(&["ip", "-4", "route", "show", &asked]);
        assert!(
            !String::from_utf8_lossy(&routes.stdout).contains(&format!("tha{pid}")),
            "{asked} routed into the tunnel"
        );
    }
    // A peer asking for an address outside all of that gets it.
    let mut config = LinkConfig::default();
    config.ipcp.local = Some(format!("{net}.9").parse().unwrap());
    let mut peer = DirectPeer::attach(Path::new(BIN), &a.socket(), "p1", config);
    peer.run_until(Duration::from_secs(15), "IPCP up", |p| {
        p.events.iter().any(|e| matches!(e, Event::Ipv4Up { .. }))
    });
    wait_for(Duration::from_secs(5), "the address on the tun", || {
        a.status()[0]["peer_addr"].as_str() == Some(format!("{net}.9").as_str())
    });
    drop(peer);
    drop(guard);
}
