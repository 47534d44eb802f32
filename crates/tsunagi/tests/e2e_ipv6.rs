//! End to end: IPv6 on the link when IPV6CP opens (RFC 5072 section 5).
//!
//! The lab's gateways run with `ipv6cp = false` (seed 000's `disable
//! ipv6cp`), so this test brings up its own pair of daemons in two fresh
//! network namespaces, as daemon_netns.rs does: B dials with `device =
//! "tsunagi -S A.sock direct p2"`, A answers in direct mode, IPV6CP enabled
//! on both ends (the default) and Null FCS agreed both ways. Then:
//!
//! - each tun carries exactly one IPv6 address, `fe80::<our id>/128 peer
//!   fe80::<peer id>/128`, and no random link-local of the kernel's;
//! - A's namespace starts with `net.ipv6.conf.default.disable_ipv6 = 1`,
//!   so A's tun is created without IPv6 and the daemon must turn it on;
//! - `ping -6 fe80::<peer>%tun` works both ways;
//! - `status --json` shows the pair (mirrored on the two sides) and the FCS
//!   of each direction, and the table shows them too;
//! - after `hangup` the addresses are gone from status, from the
//!   namespaces and the logs say they were removed.
//!
//! Two more: a tun MTU below 1280 leaves the link up without IPv6, and
//! IPV6CP going down alone (the peer's Terminate-Request, with IPCP still
//! open and the tun still there) takes the pair off the tun until IPV6CP
//! opens again; there the peer is this test itself, the `tsunagi_ppp`
//! engine speaking through a `tsunagi direct` process.
//!
//! Needs root: the tests are `#[ignore]`d, `scripts/test.sh` runs them (as
//! root, with `--include-ignored`); run where they cannot work, they fail
//! naming what is missing. Namespaces and daemons are removed by a guard,
//! also when an assertion fails.

mod support;

use std::net::Ipv6Addr;
use std::time::Duration;
use support::{require_netns, wait_for, Guard, Side, BIN};
use tsunagi_ppp::link::{Event, Ipv6cpConfig, LinkConfig};
use tsunagi_ppp::wire::Code;
use tsunagi_testkit::direct::DirectPeer;
use tsunagi_testkit::hostile::control_frame;

/// `ip -6 addr show dev IFNAME` in `side`'s namespace: its `inet6` lines.
fn inet6_lines(side: &Side, ifname: &str) -> Vec<String> {
    let out = side.exec(&["ip", "-6", "addr", "show", "dev", ifname]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("inet6 "))
        .map(str::to_string)
        .collect()
}

/// Three pings to `addr%ifname` from `side`'s namespace; whether answered.
fn ping6(side: &Side, addr: &str, ifname: &str) -> bool {
    let target = format!("{addr}%{ifname}");
    let out = side.exec(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", &target]);
    if !out.status.success() {
        eprintln!(
            "ping {target}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

/// The IPv6 pair a side's `status --json` shows, once it shows one.
fn pair(status: &serde_json::Value) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let local = status[0]["local6"].as_str()?.parse().ok()?;
    let peer = status[0]["peer_addr6"].as_str()?.parse().ok()?;
    Some((local, peer))
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn ipv6cp_puts_the_link_local_pair_on_both_tuns() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-e2e6-{pid}"), &format!("ts6{pid}"));
    let (tun_a, tun_b) = (format!("t6a{pid}"), format!("t6b{pid}"));
    // IPv4 as well, only inside these namespaces; an octet from the pid
    // keeps parallel runs apart.
    let net = format!("10.249.{}", pid % 250);
    let (a_addr, b_addr) = (format!("{net}.1"), format!("{net}.2"));

    // A new device copies the namespace's default: A's tun starts with
    // IPv6 off, which the daemon has to undo when IPV6CP opens.
    let off = guard.sides[0].exec(&[
        "sh",
        "-c",
        "echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6",
    ]);
    assert!(off.status.success(), "{off:?}");

    let a_links = format!(
        r#"[link.p2]
mode = "direct"
tun = "{tun_a}"
local = "{a_addr}"
remote = "{b_addr}"
ipv6cp = true
fcs = "null"
allow_users = ["root"]
"#
    );
    let b_links = format!(
        r#"[link.p1]
mode = "dial"
device = "{BIN} -S {sock} direct p2"
tun = "{tun_b}"
ipv6cp = true
fcs = "null"
redial_min = 1
redial_max = 2
"#,
        sock = guard.sides[0].socket().display(),
    );
    guard.sides[0].start(&a_links);
    guard.sides[1].start(&b_links);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);

    wait_for(Duration::from_secs(15), "IPv6 pair on both sides", || {
        pair(&a.status()).is_some() && pair(&b.status()).is_some()
    });
    let (sa, sb) = (a.status(), b.status());
    let (a_local, a_peer) = pair(&sa).unwrap();
    let (b_local, b_peer) = pair(&sb).unwrap();
    // Each side's peer is the other's own address; all are link-local
    // and different (IPV6CP made the identifiers differ, RFC 5072 s4.1).
    assert_eq!((a_local, a_peer), (b_peer, b_local), "{sa}\n{sb}");
    for addr in [a_local, b_local] {
        assert!(addr.is_unicast_link_local(), "{addr}");
    }
    assert_ne!(a_local, b_local);

    // On each tun exactly the agreed pair: no kernel-made link-local.
    for (side, tun, local, peer) in [(a, &tun_a, a_local, a_peer), (b, &tun_b, b_local, b_peer)] {
        let lines = inet6_lines(side, tun);
        assert_eq!(lines.len(), 1, "{tun}: {lines:?}");
        assert!(
            lines[0].starts_with(&format!("inet6 {local} peer {peer}/128 scope link")),
            "{tun}: {lines:?}"
        );
    }

    assert!(
        ping6(b, &b_peer.to_string(), &tun_b),
        "ping -6 B -> A failed"
    );
    assert!(
        ping6(a, &a_peer.to_string(), &tun_a),
        "ping -6 A -> B failed"
    );

    // Null FCS both ways, as both asked (RFC 1570 s2.1).
    for s in [&sa, &sb] {
        assert_eq!(s[0]["phase"], "network", "{s}");
        assert_eq!(s[0]["fcs_tx"], "null", "{s}");
        assert_eq!(s[0]["fcs_rx"], "null", "{s}");
    }
    let table = b.cli(&["status"]);
    assert!(table.status.success(), "{table:?}");
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table.lines().next().unwrap_or("").contains("FCS tx/rx"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap_or("")
            .trim_end()
            .ends_with("null/null"),
        "{table}"
    );
    assert!(
        table.contains(&format!("p1: IPv6 {b_local} peer {b_peer}")),
        "{table}"
    );

    let (log_a, log_b) = (a.log(), b.log());
    assert!(
        log_a.contains(&format!(
            "p2: {tun_a}: IPv6 turned on (disable_ipv6 was set)"
        )),
        "{log_a}"
    );
    assert!(
        !log_b.contains("IPv6 turned on"),
        "B's namespace had IPv6 on: {log_b}"
    );
    assert!(
        log_a.contains(&format!("p2: {tun_a} IPv6 up: {a_local} peer {a_peer}")),
        "{log_a}"
    );
    assert!(
        log_b.contains(&format!("p1: {tun_b} IPv6 up: {b_local} peer {b_peer}")),
        "{log_b}"
    );

    // Link down: the pair leaves status and the namespaces, and both
    // daemons say they removed it.
    let out = b.cli(&["hangup", "p1"]);
    assert!(out.status.success(), "{out:?}");
    wait_for(Duration::from_secs(10), "both sides down", || {
        b.status()[0]["phase"] == "stopped" && a.status()[0]["phase"] == "idle"
    });
    let (sa, sb) = (a.status(), b.status());
    for s in [&sa, &sb] {
        assert!(
            s[0]["local6"].is_null() && s[0]["peer_addr6"].is_null(),
            "{s}"
        );
        assert!(s[0]["fcs_tx"].is_null() && s[0]["fcs_rx"].is_null(), "{s}");
    }
    for (side, local) in [(a, a_local), (b, b_local)] {
        let all = side.exec(&["ip", "-6", "addr", "show"]);
        let all = String::from_utf8_lossy(&all.stdout).into_owned();
        assert!(!all.contains(&local.to_string()), "{all}");
    }
    assert!(
        a.log().contains(&format!(
            "p2: {tun_a} IPv6 down: {a_local} peer {a_peer} removed"
        )),
        "{}",
        a.log()
    );
    assert!(
        b.log().contains(&format!(
            "p1: {tun_b} IPv6 down: {b_local} peer {b_peer} removed"
        )),
        "{}",
        b.log()
    );
    assert!(!a.log().contains("cannot remove address"), "{}", a.log());
    assert!(!b.log().contains("cannot remove address"), "{}", b.log());

    assert_eq!(guard.sides[1].stop(), Some(0), "B's exit status");
    assert_eq!(guard.sides[0].stop(), Some(0), "A's exit status");
}

/// A tun MTU below IPv6's minimum (1280, RFC 8200 section 5): the kernel
/// keeps no IPv6 state for such a device, so B logs a warning, shows no
/// pair and adds nothing, and the link stays up for IPv4. A (MTU 1500)
/// gets its pair as usual.
#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn mtu_below_1280_leaves_the_link_up_without_ipv6() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-e2e6m-{pid}"), &format!("ts6m{pid}"));
    let (tun_a, tun_b) = (format!("t6c{pid}"), format!("t6d{pid}"));
    let net = format!("10.248.{}", pid % 250);
    let (a_addr, b_addr) = (format!("{net}.1"), format!("{net}.2"));
    let a_links = format!(
        r#"[link.p2]
mode = "direct"
tun = "{tun_a}"
local = "{a_addr}"
remote = "{b_addr}"
allow_users = ["root"]
"#
    );
    let b_links = format!(
        r#"[link.p1]
mode = "dial"
device = "{BIN} -S {sock} direct p2"
tun = "{tun_b}"
mtu = 1200
"#,
        sock = guard.sides[0].socket().display(),
    );
    guard.sides[0].start(&a_links);
    guard.sides[1].start(&b_links);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);

    wait_for(Duration::from_secs(15), "IPCP on B and IPv6 on A", || {
        b.status()[0]["local"].as_str() == Some(b_addr.as_str()) && pair(&a.status()).is_some()
    });
    wait_for(Duration::from_secs(5), "B's warning", || {
        b.log().contains("mtu 1200 is below IPv6's minimum 1280")
    });
    let sb = b.status();
    assert!(sb[0]["local6"].is_null(), "{sb}");
    assert_eq!(sb[0]["phase"], "network", "{sb}");
    assert!(
        inet6_lines(b, &tun_b).is_empty(),
        "{:?}",
        inet6_lines(b, &tun_b)
    );
    assert!(!b.log().contains("IPv6 up"), "{}", b.log());
    // IPv4 is unaffected.
    let out = b.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", &a_addr]);
    assert!(out.status.success(), "{out:?}");

    assert_eq!(guard.sides[1].stop(), Some(0), "B's exit status");
    assert_eq!(guard.sides[0].stop(), Some(0), "A's exit status");
}

/// IPV6CP's protocol number (RFC 5072 section 2).
const PROTO_IPV6CP: u16 = 0x8057;

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn ipv6cp_down_alone_takes_the_pair_off_the_tun() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-e2e6t-{pid}"), &format!("ts6t{pid}"));
    let tun = format!("t6e{pid}");
    let net = format!("10.247.{}", pid % 250);
    // restart = 3: after the Terminate-Ack the daemon's IPV6CP waits one
    // restart interval in Stopping (RFC 1661 s4.2) before it takes a new
    // Configure-Request: the time in which the pair must be gone.
    guard.sides[0].start(&format!(
        r#"[link.p2]
mode = "direct"
tun = "{tun}"
local = "{net}.1"
remote = "{net}.2"
restart = 3
allow_users = ["root"]
"#
    ));
    let a = &guard.sides[0];
    let config = LinkConfig {
        name: "testpeer".into(),
        ipv6cp: Some(Ipv6cpConfig::default()),
        ..LinkConfig::default()
    };
    let mut peer = DirectPeer::attach(std::path::Path::new(BIN), &a.socket(), "p2", config);
    peer.run_until(Duration::from_secs(15), "IPCP and IPV6CP open", |p| {
        p.events.iter().any(|e| matches!(e, Event::Ipv6Up { .. }))
            && p.events.iter().any(|e| matches!(e, Event::Ipv4Up { .. }))
            && pair(&a.status()).is_some()
    });
    let (local, remote) = pair(&a.status()).unwrap();
    let want = format!("inet6 {local} peer {remote}/128 scope link");
    let lines = inet6_lines(a, &tun);
    assert!(lines.len() == 1 && lines[0].starts_with(&want), "{lines:?}");

    // IPV6CP Terminate-Request (code 5, id 0x77, length 4): the daemon's
    // IPV6CP leaves Opened; IPCP stays, and so do the link and its tun.
    peer.inject(&control_frame(
        PROTO_IPV6CP,
        Code::TerminateRequest,
        0x77,
        &[],
    ));
    peer.run_until(
        Duration::from_secs(2),
        "the pair gone from status and tun",
        |_| a.status()[0]["local6"].is_null() && inet6_lines(a, &tun).is_empty(),
    );
    let s = a.status();
    assert_eq!(s[0]["phase"], "network", "{s}");
    assert_eq!(s[0]["local"], format!("{net}.1").as_str(), "{s}");
    let links = String::from_utf8_lossy(&a.exec(&["ip", "link", "show", &tun]).stdout).into_owned();
    assert!(links.contains(&tun), "the tun went away: {links}");
    assert!(
        a.log().contains(&format!(
            "p2: {tun} IPv6 down: {local} peer {remote} removed"
        )),
        "{}",
        a.log()
    );

    // The engine answers the daemon's Terminate-Ack by negotiating again
    // (RFC 1661: RTA in Opened); once the daemon's IPV6CP is Stopped it
    // takes that Configure-Request, and the same pair comes back.
    peer.run_until(Duration::from_secs(15), "IPV6CP open again", |_| {
        pair(&a.status()) == Some((local, remote))
    });
    let lines = inet6_lines(a, &tun);
    assert!(lines.len() == 1 && lines[0].starts_with(&want), "{lines:?}");
    assert_eq!(
        a.log()
            .matches(&format!("p2: {tun} IPv6 up: {local} peer {remote}"))
            .count(),
        2,
        "{}",
        a.log()
    );
    drop(peer);
    assert_eq!(guard.sides[0].stop(), Some(0), "A's exit status");
}
