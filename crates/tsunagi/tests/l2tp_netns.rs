//! L2TP (RFC 2661), tsunagi's LAC (`mode = "l2tp"`) against tsunagi's LNS
//! (`protocol = "l2tp"`), every host a network namespace of its own, every
//! daemon a real `tsunagi run`:
//!
//! - a LAC comes up, pings through, and its tunnel and session show in the
//!   LNS's `status`;
//! - 10 % of the UDP datagrams lost each way (nftables `numgen` in a
//!   middle namespace): the tunnel and PPP still come up and carry a 50 MB
//!   TCP transfer whose digest matches;
//! - redial: the LNS is killed (SIGKILL: the LAC notices by its LCP
//!   echoes) or stopped (SIGTERM: StopCCN) and started again, five times;
//!   the LAC is back each time within its echo timeout, `redial_timeout`
//!   and the set-up; with the LNS gone for good the LAC gives up after
//!   `max_redials`;
//! - three LACs behind one masquerading router, all from source port
//!   1701, each with its own tunnel, session and traffic;
//! - bad input from another host: truncated headers, AVPs of length 0 and
//!   past the message, a hidden AVP without a secret, a thousand SCCRQs
//!   from one source: the LNS keeps serving its LAC, its tunnels stay
//!   within the per-address limit and its memory bounded;
//! - scale: a LAC driven by hand from the test (the `tsunagi-l2tp` engine
//!   and `tsunagi-ppp` links on one socket) opens 100 sessions over 10
//!   tunnels, each pinging through the LNS; one tunnel stopped leaves the
//!   other nine with their sessions.
//!
//! Needs root (namespaces, tuns): `#[ignore]`d, run by scripts/test.sh.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use support::icmp::echo_request;
use support::netns::{in_ns, line, run, veth};
use support::transfer::{digest_server, send_checked};
use support::{require_netns, wait_for, Guard, Side};
use tsunagi_l2tp::avp::Avp;
use tsunagi_l2tp::header::Header;
use tsunagi_l2tp::{Message, MessageType};

/// chap-secrets for users `u0`..`u{n-1}`, password `pw{i}`.
fn write_secrets(dir: &std::path::Path, n: usize) {
    use std::os::unix::fs::PermissionsExt;
    let mut text = String::from("# client server secret addresses\n");
    for i in 0..n {
        text.push_str(&format!("u{i} lns \"pw{i}\" *\n"));
    }
    let path = dir.join("chap-secrets");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The LNS's config: pool 192.168.70.10-99 behind 192.168.70.1, tunnel
/// secret "s3cret", plus `extra`.
fn lns_config(dir: &std::path::Path, listen: &str, extra: &str) -> String {
    format!(
        "secrets = \"{}\"\n\n[server.lns]\nprotocol = \"l2tp\"\nlisten = \"{listen}\"\nlocalip = \"192.168.70.1\"\nremoteip = \"192.168.70.10-99\"\nname = \"lns\"\nsecret = \"s3cret\"\nfirewall = false\nhello_interval = 5\n{extra}",
        dir.join("chap-secrets").display()
    )
}

/// A LAC's config: user `u{i}` to `lns`, plus `extra`.
fn lac_config(i: usize, lns: &str, extra: &str) -> String {
    format!(
        "[link.office]\nmode = \"l2tp\"\nlns = \"{lns}\"\nsecret = \"s3cret\"\nuser = \"u{i}\"\npassword = \"pw{i}\"\nroutes = [\"192.168.70.0/24\"]\n{extra}"
    )
}

/// A LNS and a LAC on one link (10.79.x.0/24), no faults.
fn pair(name: &str) -> Guard {
    let prefix = format!("tl{}{name}", std::process::id() % 100_000);
    let guard = Guard::with_sides(
        &format!("tsunagi-l2tp-{name}-{}", std::process::id()),
        &prefix,
        &["lns", "lac"],
    );
    let (lns, lac) = (&guard.sides[0].ns, &guard.sides[1].ns);
    veth(lns, "eth0", "10.79.1.1/24", lac, "eth0", "10.79.1.2/24");
    guard
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn a_lac_comes_up_and_carries_traffic() {
    require_netns(&[]);
    let mut guard = pair("a");
    let dir = guard.dir.clone();
    write_secrets(&dir, 1);
    guard.sides[0].start(&lns_config(&dir, "10.79.1.1", ""));
    digest_server(&guard.sides[0].ns, "192.168.70.1:7000".parse().unwrap());
    guard.sides[1].start(&lac_config(0, "10.79.1.1", "persist = false\n"));
    wait_for(Duration::from_secs(30), "the LAC up", || {
        guard.sides[1].link_address().is_some()
    });
    let addr = guard.sides[1].link_address().unwrap();
    assert!(addr.starts_with("192.168.70."), "{addr}");
    assert!(support::ping(&guard.sides[1], "192.168.70.1"));
    let to: SocketAddr = "192.168.70.1:7000".parse().unwrap();
    let d = send_checked(&guard.sides[1].ns, to, 1, 4 << 20).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("4 MiB through the tunnel, digest {d:016x}");
    // The LNS shows the tunnel (authenticated with the secret) and the
    // session with its ids.
    let status = guard.sides[0].status_all();
    let server = &status["servers"][0];
    assert_eq!(server["protocol"], "l2tp", "{status}");
    let tunnels = server["tunnels"].as_array().unwrap();
    assert_eq!(tunnels.len(), 1, "{status}");
    let t = &tunnels[0];
    assert_eq!(t["state"], "established", "{t}");
    assert_eq!(t["sessions"], 1, "{t}");
    assert!(
        t["peer"].as_str().unwrap().starts_with("10.79.1.2:1701"),
        "{t}"
    );
    assert!(t["data_rx"].as_u64().unwrap() > 1000, "{t}");
    let sessions = status["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{status}");
    assert_eq!(sessions[0]["user"], "u0");
    assert_eq!(sessions[0]["peer_addr"], addr.as_str());
    let tunnel = sessions[0]["tunnel"].as_str().unwrap();
    assert!(
        tunnel.starts_with("l2tp 10.79.1.2:1701 tunnel "),
        "{tunnel}"
    );
    // The LAC's status names its tunnel too.
    let link = &guard.sides[1].status()[0];
    assert!(
        link["tunnel"]
            .as_str()
            .unwrap()
            .starts_with("l2tp to 10.79.1.1:1701: tunnel "),
        "{link}"
    );
    // The text view has the tunnels table.
    let text = guard.sides[0].cli(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("TUNNEL PEER") && text.contains("established"),
        "{text}"
    );
    // A hangup ends the session with CDN and StopCCN: the LNS forgets it.
    let out = guard.sides[1].cli(&["hangup", "office"]);
    assert!(out.status.success(), "{out:?}");
    wait_for(Duration::from_secs(10), "the LNS without sessions", || {
        guard.sides[0].status_all()["sessions"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    wait_for(Duration::from_secs(10), "the tunnel stopped", || {
        let s = guard.sides[0].status_all();
        s["servers"][0]["tunnels"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["state"] != "established")
    });
    for side in guard.sides.iter_mut() {
        side.stop();
    }
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn ten_percent_loss_each_way_still_carries_50_mb() {
    require_netns(&["nft"]);
    let prefix = format!("tl{}b", std::process::id() % 100_000);
    let mut guard = Guard::with_sides(
        &format!("tsunagi-l2tp-b-{}", std::process::id()),
        &prefix,
        &["lns", "mid", "lac"],
    );
    let dir = guard.dir.clone();
    write_secrets(&dir, 1);
    let (lns, mid, lac) = (
        guard.sides[0].ns.clone(),
        guard.sides[1].ns.clone(),
        guard.sides[2].ns.clone(),
    );
    line(&lns, &mid, &lac, "10.79.11", "10.79.12");
    // 10 % of L2TP's datagrams dropped each way, from the start: the
    // tunnel's set-up goes through the loss too.
    let rules = "table netdev faults {
        chain from_lns {
            type filter hook ingress device \"m0\" priority 0;
            udp sport 1701 numgen random mod 100 < 10 counter drop
        }
        chain from_lac {
            type filter hook ingress device \"m1\" priority 0;
            udp dport 1701 numgen random mod 100 < 10 counter drop
        }
    }";
    let rules_file = dir.join("faults.nft");
    std::fs::write(&rules_file, rules).unwrap();
    run(&mid, &["nft", "-f", rules_file.to_str().unwrap()]);
    guard.sides[0].start(&lns_config(&dir, "10.79.11.1", ""));
    digest_server(&lns, "192.168.70.1:7000".parse().unwrap());
    guard.sides[2].start(&lac_config(0, "10.79.11.1", ""));
    wait_for(
        Duration::from_secs(90),
        "the LAC up through the loss",
        || guard.sides[2].link_address().is_some(),
    );
    let started = Instant::now();
    let to: SocketAddr = "192.168.70.1:7000".parse().unwrap();
    let d = send_checked(&lac, to, 2, 50 * 1000 * 1000).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "50 MB through 10 % loss each way in {:?}, digest {d:016x}",
        started.elapsed()
    );
    let drops = Command::new("ip")
        .args([
            "netns", "exec", &mid, "nft", "list", "table", "netdev", "faults",
        ])
        .output()
        .unwrap();
    let drops = String::from_utf8_lossy(&drops.stdout).to_string();
    eprintln!("{drops}");
    assert!(
        drops.matches("packets 0 ").count() == 0,
        "both directions lost datagrams: {drops}"
    );
    // Control messages were lost and sent again, and the session is the
    // first one (no redial hid a failure).
    let status = guard.sides[0].status_all();
    let t = &status["servers"][0]["tunnels"][0];
    eprintln!("LNS tunnel: {t}");
    let link = &guard.sides[2].status()[0];
    eprintln!("LAC: {}", link["tunnel"]);
    assert_eq!(link["redials"], 0, "{link}");
    assert!(support::ping(&guard.sides[2], "192.168.70.1"));
    for side in guard.sides.iter_mut() {
        side.stop();
    }
}

/// The LAC's redial count.
fn redials(side: &Side) -> u64 {
    side.status()[0]["redials"].as_u64().unwrap_or(0)
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn the_lac_redials_after_the_lns_goes_and_comes_back() {
    require_netns(&[]);
    let mut guard = pair("c");
    let dir = guard.dir.clone();
    write_secrets(&dir, 1);
    let lns = lns_config(&dir, "10.79.1.1", "");
    guard.sides[0].start(&lns);
    // Echoes every second, three missed: a dead LNS is noticed in about
    // 4 s; then 2 s before the redial.
    let lac = lac_config(
        0,
        "10.79.1.1",
        "echo_interval = 1\necho_failure = 3\nredial_timeout = 2\nmax_redials = 2\n",
    );
    guard.sides[1].start(&lac);
    wait_for(Duration::from_secs(30), "the LAC up", || {
        guard.sides[1].link_address().is_some()
    });
    // Noticing (echoes: 4 s; StopCCN: at once) + the CDN/StopCCN wait
    // (2 s) + redial_timeout (2 s) + set-up (1-2 s, more on a loaded
    // machine).
    let bound = Duration::from_secs(20);
    for round in 0..5 {
        let before = redials(&guard.sides[1]);
        let how = if round % 2 == 0 { "killed" } else { "stopped" };
        let socket = guard.sides[0].socket();
        if round % 2 == 0 {
            let mut child = guard.sides[0].daemon.take().unwrap();
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            guard.sides[0].stop();
        }
        let _ = std::fs::remove_file(&socket);
        let gone = Instant::now();
        guard.sides[0].start(&lns);
        wait_for(bound, "the LAC back", || {
            redials(&guard.sides[1]) > before && guard.sides[1].link_address().is_some()
        });
        let back = gone.elapsed();
        assert!(support::ping(&guard.sides[1], "192.168.70.1"));
        eprintln!("round {round}: LNS {how}, the LAC back in {back:?}");
        assert!(back < bound);
    }
    // The LNS gone for good: two redials, each refused (port
    // unreachable), then the LAC stops.
    guard.sides[0].stop();
    let before = redials(&guard.sides[1]);
    wait_for(Duration::from_secs(60), "the LAC stopped", || {
        guard.sides[1].status()[0]["phase"] == "stopped"
    });
    let after = redials(&guard.sides[1]);
    assert_eq!(after, before + 2, "{}", guard.sides[1].log());
    assert!(guard.sides[1]
        .log()
        .contains("max_redials 2 reached, not redialling"));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(redials(&guard.sides[1]), after, "no dial after the limit");
    guard.sides[1].stop();
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn three_lacs_behind_one_nat_each_get_their_own_tunnel() {
    require_netns(&["nft"]);
    let prefix = format!("tl{}d", std::process::id() % 100_000);
    let mut guard = Guard::with_sides(
        &format!("tsunagi-l2tp-d-{}", std::process::id()),
        &prefix,
        &["lns", "nat", "c0", "c1", "c2"],
    );
    let dir = guard.dir.clone();
    write_secrets(&dir, 3);
    let lns = guard.sides[0].ns.clone();
    let nat = guard.sides[1].ns.clone();
    veth(&lns, "eth0", "10.79.21.1/24", &nat, "o0", "10.79.21.2/24");
    run(&nat, &["ip", "link", "add", "br0", "type", "bridge"]);
    run(&nat, &["ip", "addr", "add", "10.79.22.1/24", "dev", "br0"]);
    run(&nat, &["ip", "link", "set", "br0", "up"]);
    run(&nat, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    for i in 0..3 {
        let c = guard.sides[2 + i].ns.clone();
        let port = format!("p{i}");
        veth(
            &nat,
            &port,
            "",
            &c,
            "eth0",
            &format!("10.79.22.{}/24", 10 + i),
        );
        run(&nat, &["ip", "link", "set", &port, "master", "br0"]);
        run(&c, &["ip", "route", "add", "default", "via", "10.79.22.1"]);
    }
    let rules = "table ip nat {
        chain post {
            type nat hook postrouting priority 100;
            oifname \"o0\" masquerade
        }
    }";
    let rules_file = dir.join("nat.nft");
    std::fs::write(&rules_file, rules).unwrap();
    run(&nat, &["nft", "-f", rules_file.to_str().unwrap()]);
    guard.sides[0].start(&lns_config(&dir, "10.79.21.1", ""));
    digest_server(&lns, "192.168.70.1:7000".parse().unwrap());
    for i in 0..3 {
        guard.sides[2 + i].start(&lac_config(i, "10.79.21.1", "persist = false\n"));
    }
    wait_for(Duration::from_secs(60), "three LACs up", || {
        (0..3).all(|i| guard.sides[2 + i].link_address().is_some())
    });
    let mut addresses: Vec<String> = (0..3)
        .map(|i| guard.sides[2 + i].link_address().unwrap())
        .collect();
    for i in 0..3 {
        assert!(
            support::ping(&guard.sides[2 + i], "192.168.70.1"),
            "LAC {i}"
        );
        let to: SocketAddr = "192.168.70.1:7000".parse().unwrap();
        send_checked(&guard.sides[2 + i].ns, to, 10 + i as u64, 1 << 20)
            .unwrap_or_else(|e| panic!("LAC {i}: {e}"));
    }
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 3);
    // Every LAC sends from port 1701; all arrive from the NAT's address.
    for i in 0..3 {
        let out = guard.sides[2 + i].exec(&["ss", "-unap"]);
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(out.contains(":1701"), "LAC {i}: {out}");
    }
    let status = guard.sides[0].status_all();
    let tunnels = status["servers"][0]["tunnels"].as_array().unwrap();
    assert_eq!(tunnels.len(), 3, "{status}");
    let mut peers: Vec<&str> = tunnels
        .iter()
        .map(|t| {
            assert_eq!(t["state"], "established", "{t}");
            assert_eq!(t["sessions"], 1, "{t}");
            assert!(t["data_rx"].as_u64().unwrap() > 100, "{t}");
            t["peer"].as_str().unwrap()
        })
        .collect();
    assert!(
        peers.iter().all(|p| p.starts_with("10.79.21.2:")),
        "{peers:?}"
    );
    peers.sort();
    peers.dedup();
    assert_eq!(peers.len(), 3, "three peers: {peers:?}");
    let sessions = status["sessions"].as_array().unwrap();
    let mut users: Vec<&str> = sessions
        .iter()
        .map(|s| s["user"].as_str().unwrap())
        .collect();
    users.sort();
    assert_eq!(users, ["u0", "u1", "u2"]);
    for side in guard.sides.iter_mut() {
        side.stop();
    }
}

/// A control message from a hostile peer: the header (Tunnel ID 0,
/// Ns `ns`) and `body` as given.
fn control(ns: u16, body: &[u8]) -> Vec<u8> {
    let len = 12 + body.len();
    let mut out = vec![0u8; 12];
    Header::control(0, 0, ns, 0, len as u16).emit(&mut out);
    out.extend_from_slice(body);
    out
}

/// An SCCRQ body with Assigned Tunnel ID `tid`.
fn sccrq(tid: u16) -> Vec<u8> {
    let mut body = Vec::new();
    Message::new(MessageType::Sccrq)
        .with(Avp::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .with(Avp::HostName(b"attacker".to_vec()))
        .with(Avp::FramingCapabilities(3))
        .with(Avp::AssignedTunnelId(tid))
        .emit(&mut body, None);
    body
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn bad_input_leaves_the_lns_serving() {
    require_netns(&[]);
    let prefix = format!("tl{}e", std::process::id() % 100_000);
    let mut guard = Guard::with_sides(
        &format!("tsunagi-l2tp-e-{}", std::process::id()),
        &prefix,
        &["lns", "lac", "atk"],
    );
    let dir = guard.dir.clone();
    write_secrets(&dir, 1);
    let (lns, lac, atk) = (
        guard.sides[0].ns.clone(),
        guard.sides[1].ns.clone(),
        guard.sides[2].ns.clone(),
    );
    veth(&lns, "eth0", "10.79.31.1/24", &lac, "eth0", "10.79.31.2/24");
    veth(&lns, "eth1", "10.79.32.1/24", &atk, "eth0", "10.79.32.2/24");
    // Without a secret, so that SCCRQs make tunnels (a hidden AVP is
    // then one the LNS cannot read).
    let config = lns_config(&dir, "0.0.0.0", "").replace("secret = \"s3cret\"\n", "");
    guard.sides[0].start(&config);
    guard.sides[1].start(
        &lac_config(0, "10.79.31.1", "persist = false\n").replace("secret = \"s3cret\"\n", ""),
    );
    wait_for(Duration::from_secs(30), "the LAC up", || {
        guard.sides[1].link_address().is_some()
    });
    let pid = guard.sides[0].daemon.as_ref().unwrap().id();
    let rss_before = rss_kib(pid);
    let sent = in_ns(&atk, || {
        let s = UdpSocket::bind("0.0.0.0:1701").unwrap();
        let to: SocketAddr = "10.79.32.1:1701".parse().unwrap();
        let mut sent = 0;
        let mut send = |d: &[u8]| {
            s.send_to(d, to).unwrap();
            sent += 1;
        };
        // Truncated headers.
        for d in [
            &[][..],
            &[0xc8],
            &[0xc8, 0x02],
            &[0xc8, 0x02, 0x00, 0x0c],
            &[0xc8, 0x02, 0x00, 0x0c, 0x00, 0x00, 0x00],
            &[0xc8, 0x02, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x40, 0x02, 0x00],
        ] {
            send(d);
        }
        // A Message Type AVP, then one of length 0, and one whose length
        // runs past the message.
        let message_type = [0x80, 0x08, 0, 0, 0, 0, 0, 1];
        let mut zero = message_type.to_vec();
        zero.extend_from_slice(&[0x80, 0x00, 0, 0, 0, 7]);
        send(&control(0, &zero));
        let mut past = message_type.to_vec();
        past.extend_from_slice(&[0x83, 0xff, 0, 0, 0, 7, b'x']);
        send(&control(0, &past));
        // A hidden Assigned Tunnel ID (H bit) with no secret to read it.
        let mut hidden = sccrq(77);
        let at = hidden.len() - 8;
        hidden[at] |= 0x40;
        send(&control(0, &hidden));
        // Data for a tunnel that does not exist, and garbage after a good
        // header.
        send(&[0x40, 0x02, 0x00, 0x0a, 0x12, 0x34, 0x56, 0x78, 0xff, 0x03]);
        // A thousand SCCRQs from one address and port.
        for i in 0..1000u16 {
            send(&control(0, &sccrq(1 + i)));
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        sent
    });
    eprintln!("{sent} hostile datagrams sent");
    std::thread::sleep(Duration::from_secs(2));
    // Still serving: status answers, the LAC's session passes traffic.
    let status = guard.sides[0].status_all();
    let server = &status["servers"][0];
    let tunnels = server["tunnels"].as_array().unwrap();
    eprintln!("counters: {}", server["counters"]);
    assert!(
        tunnels.len() <= 65,
        "{} tunnels: the per-address limit is 64",
        tunnels.len()
    );
    assert!(tunnels.len() >= 2, "the SCCRQs made some tunnels");
    let counters = &server["counters"];
    assert!(
        counters["l2tp_malformed"].as_u64().unwrap() >= 5,
        "{counters}"
    );
    assert!(
        counters["l2tp_not_sccrq"].as_u64().unwrap() >= 3,
        "{counters}"
    );
    assert!(
        counters["l2tp_refused_per_address"].as_u64().unwrap() >= 900,
        "{counters}"
    );
    assert!(support::ping(&guard.sides[1], "192.168.70.1"));
    assert_eq!(status["sessions"].as_array().unwrap().len(), 1);
    let rss_after = rss_kib(pid);
    eprintln!("LNS resident memory: {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "memory grew from {rss_before} to {rss_after} KiB"
    );
    for side in guard.sides.iter_mut() {
        side.stop();
    }
}

/// One PPP session of the test LAC.
struct TestSession {
    tunnel: usize,
    session_id: u16,
    link: tsunagi_ppp::link::Link,
    address: Option<std::net::Ipv4Addr>,
    answered: bool,
}

/// A LAC driven by hand from the test: tunnels of the `tsunagi-l2tp`
/// engine and PPP sessions of `tsunagi-ppp` on one UDP socket from port
/// 1701, the clock read as it goes.
struct TestLac {
    socket: UdpSocket,
    lns: SocketAddr,
    tunnels: Vec<tsunagi_l2tp::Tunnel>,
    sessions: Vec<TestSession>,
    /// Sessions to open on each tunnel once it is up.
    per_tunnel: usize,
    next_user: usize,
    next_ping: Instant,
}

impl TestLac {
    fn new(lns: SocketAddr, tunnels: usize, per_tunnel: usize) -> TestLac {
        let socket = UdpSocket::bind("0.0.0.0:1701").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let now = Instant::now();
        let tunnels = (0..tunnels)
            .map(|i| {
                let config = tsunagi_l2tp::TunnelConfig {
                    secret: Some(tsunagi_crypto::Secret::new(b"s3cret".to_vec())),
                    host_name: format!("lac{i}"),
                    ..tsunagi_l2tp::TunnelConfig::new(tsunagi_l2tp::Role::Lac)
                };
                tsunagi_l2tp::Tunnel::connect(
                    config,
                    100 + i as u16,
                    now,
                    tsunagi_crypto::OsRandom::handle(),
                )
            })
            .collect();
        TestLac {
            socket,
            lns,
            tunnels,
            sessions: Vec::new(),
            per_tunnel,
            next_user: 0,
            next_ping: now,
        }
    }

    fn link_config(user: usize) -> tsunagi_ppp::link::LinkConfig {
        let mut config = tsunagi_ppp::link::LinkConfig {
            name: format!("u{user}"),
            ipv6cp: None,
            ..Default::default()
        };
        config.lcp.framing = tsunagi_ppp::link::Framing::Packet;
        config.lcp.mru = 1410;
        config.auth.accept = vec![tsunagi_ppp::auth::AuthMethod::MsChapV2];
        config.auth.user = Some(format!("u{user}"));
        config.auth.password = Some(tsunagi_crypto::Secret::new(format!("pw{user}")));
        config
    }

    /// One turn of the engines: datagrams in, timers, events,
    /// datagrams out, Echo Requests from every session without an answer.
    fn step(&mut self) {
        let mut buf = vec![0u8; 65536];
        let now = Instant::now();
        while let Ok((n, from)) = self.socket.recv_from(&mut buf) {
            if from != self.lns {
                continue;
            }
            let datagram = &buf[..n];
            let Ok((header, _)) = Header::parse(datagram) else {
                continue;
            };
            let Some(t) = header.tunnel_id.checked_sub(100).map(usize::from) else {
                continue;
            };
            let Some(tunnel) = self.tunnels.get_mut(t) else {
                continue;
            };
            if let tsunagi_l2tp::Input::Data {
                session_id,
                payload,
            } = tunnel.handle_input(now, datagram)
            {
                if let Some(s) = self
                    .sessions
                    .iter_mut()
                    .find(|s| s.tunnel == t && s.session_id == session_id)
                {
                    let answered = &mut s.answered;
                    s.link
                        .handle_frame(now, &datagram[payload], &mut |_, packet| {
                            if packet.len() >= 28 && packet[9] == 1 && packet[20] == 0 {
                                *answered = true;
                            }
                        });
                }
            }
            // Do not starve the timers under a burst.
            if Instant::now() > now + Duration::from_millis(50) {
                break;
            }
        }
        let now = Instant::now();
        for (t, tunnel) in self.tunnels.iter_mut().enumerate() {
            if tunnel.poll_timeout().is_some_and(|d| d <= now) {
                tunnel.handle_timeout(now);
            }
            while let Some(event) = tunnel.poll_event() {
                match event {
                    tsunagi_l2tp::TunnelEvent::Up { .. } => {
                        for _ in 0..self.per_tunnel {
                            tunnel
                                .open_session(now, &tsunagi_l2tp::CallParams::default())
                                .unwrap();
                        }
                    }
                    tsunagi_l2tp::TunnelEvent::SessionUp { session_id, .. } => {
                        let user = self.next_user;
                        self.next_user += 1;
                        let mut link = tsunagi_ppp::link::Link::new(
                            TestLac::link_config(user),
                            user as u64 + 1,
                            tsunagi_crypto::OsRandom::handle(),
                        );
                        link.start(now);
                        self.sessions.push(TestSession {
                            tunnel: t,
                            session_id,
                            link,
                            address: None,
                            answered: false,
                        });
                    }
                    tsunagi_l2tp::TunnelEvent::Down { why } => {
                        eprintln!("test LAC: tunnel {t} down: {why}");
                    }
                    tsunagi_l2tp::TunnelEvent::SessionDown {
                        session_id, why, ..
                    } => {
                        eprintln!("test LAC: tunnel {t} session {session_id} down: {why}");
                    }
                    _ => {}
                }
            }
        }
        let ping = now >= self.next_ping;
        if ping {
            self.next_ping = now + Duration::from_millis(500);
        }
        let mut out = Vec::with_capacity(2048);
        for (i, s) in self.sessions.iter_mut().enumerate() {
            if s.link.poll_timeout().is_some_and(|d| d <= now) {
                s.link.handle_timeout(now);
            }
            while let Some(event) = s.link.poll_event() {
                if let tsunagi_ppp::link::Event::Ipv4Up { local, .. } = event {
                    s.address = Some(local);
                }
            }
            let tunnel = &mut self.tunnels[s.tunnel];
            if let (true, false, Some(src)) = (ping, s.answered, s.address) {
                let packet = echo_request(src, "192.168.70.1".parse().unwrap(), i as u16, 1);
                out.clear();
                out.resize(tsunagi_l2tp::DATA_HEADROOM, 0);
                s.link
                    .encapsulate(tsunagi_ppp::link::IpVersion::V4, &packet, &mut out);
                let end = out.len();
                if let Ok(r) =
                    tunnel.encapsulate(s.session_id, &mut out, tsunagi_l2tp::DATA_HEADROOM..end)
                {
                    let _ = self.socket.send_to(&out[r], self.lns);
                }
            }
            loop {
                out.clear();
                out.resize(tsunagi_l2tp::DATA_HEADROOM, 0);
                if s.link.poll_transmit(&mut out).is_none() {
                    break;
                }
                let end = out.len();
                if let Ok(r) =
                    tunnel.encapsulate(s.session_id, &mut out, tsunagi_l2tp::DATA_HEADROOM..end)
                {
                    let _ = self.socket.send_to(&out[r], self.lns);
                }
            }
        }
        for tunnel in &mut self.tunnels {
            while tunnel.poll_transmit(&mut out) {
                let _ = self.socket.send_to(&out, self.lns);
            }
        }
    }

    fn answered(&self) -> usize {
        self.sessions.iter().filter(|s| s.answered).count()
    }
}

/// `tsunagi status --json` through `socket`.
fn status_at(socket: &std::path::Path) -> serde_json::Value {
    let out = Command::new(support::BIN)
        .arg("-S")
        .arg(socket)
        .args(["status", "--json"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn a_hundred_sessions_over_ten_tunnels_and_one_tunnel_torn_down() {
    require_netns(&[]);
    let mut guard = pair("f");
    let dir = guard.dir.clone();
    write_secrets(&dir, 100);
    let config = lns_config(&dir, "10.79.1.1", "connections = 150\n")
        .replace("192.168.70.10-99", "192.168.70.10-200");
    guard.sides[0].start(&config);
    let socket = guard.sides[0].socket();
    let lac = guard.sides[1].ns.clone();
    in_ns(&lac, move || {
        let mut lac = TestLac::new("10.79.1.1:1701".parse().unwrap(), 10, 10);
        let started = Instant::now();
        while lac.answered() < 100 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{} sessions up, {} answered",
                lac.sessions.len(),
                lac.answered()
            );
            lac.step();
        }
        eprintln!(
            "100 sessions over 10 tunnels each answered a ping in {:?}",
            started.elapsed()
        );
        let status = status_at(&socket);
        assert_eq!(status["sessions"].as_array().unwrap().len(), 100);
        let tunnels = status["servers"][0]["tunnels"].as_array().unwrap();
        assert_eq!(tunnels.len(), 10, "{status}");
        assert!(tunnels.iter().all(|t| t["sessions"] == 10), "{tunnels:?}");
        // Tunnel 3 goes (StopCCN); the other nine keep their sessions.
        lac.tunnels[3].stop(
            Instant::now(),
            tsunagi_l2tp::StopCcnResult::GeneralRequest,
            None,
        );
        for s in lac.sessions.iter_mut() {
            s.answered = s.tunnel == 3;
        }
        let again = Instant::now();
        while lac.answered() < 100 {
            assert!(
                again.elapsed() < Duration::from_secs(30),
                "{} answered",
                lac.answered()
            );
            lac.step();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            lac.step();
            let status = status_at(&socket);
            let sessions = status["sessions"].as_array().unwrap().len();
            let tunnels: Vec<&serde_json::Value> = status["servers"][0]["tunnels"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["state"] == "established")
                .collect();
            if sessions == 90 && tunnels.len() == 9 {
                assert!(tunnels.iter().all(|t| t["sessions"] == 10));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{sessions} sessions, {} tunnels established",
                tunnels.len()
            );
        }
    });
    guard.sides[0].stop();
}
