//! Seed 000's complete ipf.rules and ipnat.rules (§4.3, §4.4), compiled by
//! tsunagi-policy and applied with `nft -j -f -` in a gateway namespace,
//! against real traffic from namespaces on each side:
//!
//! ```text
//!  R (behind the tunnel)          G (gateway, rules here)          L (em0 side)
//!  192.168.1.215/.8/.6 on lo      gtun 10.224.1.1  [ipf tun0]      192.168.253.1, .2
//!  r0 10.224.1.2 ---------------- gem0 192.168.253.4 [em0] ------- l0
//!                                 gem1 172.16.1.4  [em1] --------- I (em1 side)
//!                                                                  172.16.1.100, .101
//! ```
//!
//! L and I have no route back to 192.168.1.0/24: a connection only
//! completes if `map` rewrote its source to the gateway. Also: rule order
//! (last match versus `quick`), re-applying replaces, removal.
//!
//! Needs root and `nft`: these tests are `#[ignore]`d, `scripts/test.sh`
//! runs them (as root, with `--include-ignored`); run without them they
//! fail saying what is missing.
//! Every namespace is deleted on drop, so a failing test leaves nothing.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tsunagi_host::nflog::{interface_name, NflogSocket};
use tsunagi_host::{nft, policy_route};
use tsunagi_policy::{
    compile, format_ipmon_line, parse_counters, parse_ipf, parse_ipnat, IfaceMap, Options,
};

const SEED_IPF: &str = include_str!("../../policy/tests/data/seed000_ipf.rules");
const SEED_IPNAT: &str = include_str!("../../policy/tests/data/seed000_ipnat.rules");
const BLOCKED_WAIT: Duration = Duration::from_millis(400);

mod support;
use support::ipv4_packet;
use support::Netns;

/// A namespace `tsunagi-pol-<pid>-<tag>` with `lo` up, deleted on drop.
fn netns(tag: &str) -> Netns {
    Netns::create("tsunagi-pol", tag).with_loopback()
}

fn v4(a: &str) -> Ipv4Addr {
    a.parse().expect("test address")
}

/// TCP connect from `src` to `dst:port` inside `ns`; `true` if the
/// handshake completes within the wait (a dropped SYN times out).
fn tcp_connects(ns: &Netns, src: &str, dst: &str, port: u16) -> bool {
    let (src, dst) = (v4(src), v4(dst));
    ns.run(|| {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        s.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))
            .expect("bind source");
        s.connect_timeout(&SockAddr::from(SocketAddrV4::new(dst, port)), BLOCKED_WAIT)
            .is_ok()
    })
}

fn listen(ns: &Netns, addr: &str, port: u16) -> TcpListener {
    let a = SocketAddrV4::new(v4(addr), port);
    let l = ns.run(|| TcpListener::bind(a).expect("listen"));
    l.set_nonblocking(true).expect("nonblocking");
    l
}

/// Peer address of the next connection waiting on `l`.
fn accepted_peer(l: &TcpListener) -> Ipv4Addr {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match l.accept() {
            Ok((_, SocketAddr::V4(peer))) => return *peer.ip(),
            Ok((_, other)) => panic!("IPv6 peer {other}"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn udp_socket(ns: &Netns, addr: &str, port: u16) -> UdpSocket {
    let a = SocketAddrV4::new(v4(addr), port);
    let s = ns.run(|| UdpSocket::bind(a).expect("udp bind"));
    s.set_read_timeout(Some(BLOCKED_WAIT)).expect("timeout");
    s
}

/// Send one datagram from `from` to `to:port`; the source `server` saw, if
/// it arrived.
fn udp_arrives(from: &UdpSocket, server: &UdpSocket, to: &str, port: u16) -> Option<SocketAddrV4> {
    from.send_to(b"update", SocketAddrV4::new(v4(to), port))
        .expect("send");
    let mut buf = [0u8; 64];
    match server.recv_from(&mut buf) {
        Ok((_, SocketAddr::V4(peer))) => Some(peer),
        _ => None,
    }
}

/// RFC 791 header checksum.
/// Send hand-made IPv4 packets (IPPROTO_RAW: header included) from `ns`.
fn send_raw(ns: &Netns, packets: &[Vec<u8>]) {
    ns.run(|| {
        let s = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .expect("raw socket");
        for p in packets {
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            s.send_to(p, &SockAddr::from(SocketAddrV4::new(dst, 0)))
                .expect("raw send");
        }
    });
}

fn counters(g: &Netns, family: &str, table: &str) -> std::collections::BTreeMap<String, u64> {
    let json = g
        .run(|| nft::list_counters_json(family, table))
        .expect("list counters");
    parse_counters(&json)
        .expect("counter JSON")
        .into_iter()
        .map(|(k, v)| (k, v.packets))
        .collect()
}

struct Topology {
    r: Netns,
    g: Netns,
    l: Netns,
    i: Netns,
    map: IfaceMap,
}

fn topology() -> Topology {
    let (r, g, l, i) = (netns("r"), netns("g"), netns("l"), netns("i"));
    g.ip(&[
        "link", "add", "gtun", "type", "veth", "peer", "name", "r0", "netns", &r.name,
    ]);
    g.ip(&[
        "link", "add", "gem0", "type", "veth", "peer", "name", "l0", "netns", &l.name,
    ]);
    g.ip(&[
        "link", "add", "gem1", "type", "veth", "peer", "name", "i0", "netns", &i.name,
    ]);
    for (ns, dev, addrs) in [
        (&g, "gtun", &["10.224.1.1/30"][..]),
        (&g, "gem0", &["192.168.253.4/24"][..]),
        (&g, "gem1", &["172.16.1.4/24"][..]),
        (&r, "r0", &["10.224.1.2/30"][..]),
        (&l, "l0", &["192.168.253.1/24", "192.168.253.2/24"][..]),
        (&i, "i0", &["172.16.1.100/24", "172.16.1.101/24"][..]),
    ] {
        for a in addrs {
            ns.ip(&["addr", "add", a, "dev", dev]);
        }
        ns.ip(&["link", "set", dev, "up"]);
    }
    for a in ["192.168.1.215/32", "192.168.1.8/32", "192.168.1.6/32"] {
        r.ip(&["addr", "add", a, "dev", "lo"]);
    }
    r.ip(&["route", "add", "default", "via", "10.224.1.1"]);
    g.ip(&["route", "add", "192.168.1.0/24", "via", "10.224.1.2"]);
    l.ip(&["route", "add", "192.168.253.3/32", "via", "192.168.253.4"]);
    i.ip(&["route", "add", "default", "via", "172.16.1.4"]);
    let before = g
        .run(|| policy_route::set_ip_forwarding(true))
        .expect("ip_forward");
    assert!(!before, "a new namespace starts without forwarding");
    assert!(g.run(policy_route::ip_forwarding).expect("read ip_forward"));
    let mut map = IfaceMap::new();
    map.insert("tun0", "gtun")
        .insert("em0", "gem0")
        .insert("em1", "gem1")
        .insert("lo0", "lo");
    Topology { r, g, l, i, map }
}

#[test]
#[ignore = "needs root, network namespaces and nft (scripts/test.sh runs it)"]
fn seed_000_rules_load_and_behave() {
    support::require_netns(&["nft", "ping"]);
    let t = topology();
    let ipf = parse_ipf(SEED_IPF).expect("seed ipf.rules");
    let ipnat = parse_ipnat(SEED_IPNAT).expect("seed ipnat.rules");
    let compiled = compile(
        &ipf,
        &ipnat,
        &t.map,
        &Options {
            nflog_group: 7,
            ..Options::default()
        },
    )
    .expect("compile");
    let log = t.g.run(|| NflogSocket::bind(7)).expect("NFLOG bind");
    t.g.run(|| nft::apply(&compiled.to_json()))
        .expect("nft apply");

    // Servers on the em0 side, the em1 side, and the rdr target behind the tunnel.
    let l_ports = [21, 9900, 9901, 9989, 9990, 22, 23, 80, 3389, 1433, 53, 8080];
    let l_listeners: Vec<TcpListener> = l_ports
        .iter()
        .map(|&p| listen(&t.l, "0.0.0.0", p))
        .collect();
    let l21 = &l_listeners[0];
    let i1433 = listen(&t.i, "0.0.0.0", 1433);
    let r_dns = listen(&t.r, "192.168.1.6", 53);
    let dns_udp = udp_socket(&t.l, "192.168.253.2", 53);
    let other_udp = udp_socket(&t.l, "192.168.253.1", 5000);
    let from_8 = udp_socket(&t.r, "192.168.1.8", 0);
    let from_215 = udp_socket(&t.r, "192.168.1.215", 0);

    let home = "192.168.1.215";
    // FTP control, with NAPT to the gateway's em0 address.
    assert!(
        tcp_connects(&t.r, home, "192.168.253.1", 21),
        "FTP 21 passes"
    );
    assert_eq!(
        accepted_peer(l21),
        v4("192.168.253.4"),
        "map em0 rewrote the source"
    );
    // Passive FTP: IPFilter's `9900 >< 9990` excludes both ends.
    assert!(tcp_connects(&t.r, home, "192.168.253.1", 9901));
    assert!(tcp_connects(&t.r, home, "192.168.253.1", 9989));
    assert!(!tcp_connects(&t.r, home, "192.168.253.1", 9900));
    assert!(!tcp_connects(&t.r, home, "192.168.253.1", 9990));
    // SQL Server only to 172.16.1.100, NAPT to em1's address.
    assert!(tcp_connects(&t.r, home, "172.16.1.100", 1433));
    assert_eq!(
        accepted_peer(&i1433),
        v4("172.16.1.4"),
        "map em1 rewrote the source"
    );
    assert!(!tcp_connects(&t.r, home, "172.16.1.101", 1433));
    assert!(!tcp_connects(&t.r, home, "192.168.253.1", 1433));
    for port in [22, 23, 80, 3389] {
        assert!(
            tcp_connects(&t.r, home, "192.168.253.1", port),
            "port {port} passes"
        );
    }
    // DNS notify (TCP 53) only to 192.168.253.2 from 192.168.1.0/24.
    assert!(tcp_connects(&t.r, home, "192.168.253.2", 53));
    assert!(!tcp_connects(&t.r, home, "192.168.253.1", 53));
    // DNS update (UDP 53) only from 192.168.1.8.
    let seen = udp_arrives(&from_8, &dns_udp, "192.168.253.2", 53).expect("DNS update passes");
    assert_eq!(
        *seen.ip(),
        v4("192.168.253.4"),
        "map em0 rewrote the source"
    );
    // keep state: the answer goes back out through tun0, where group 350
    // would block it without the state of the rule that let the update in.
    let mut buf = [0u8; 64];
    dns_udp.send_to(b"answer", seen).expect("answer");
    from_8
        .set_read_timeout(Some(BLOCKED_WAIT))
        .expect("timeout");
    assert!(
        from_8.recv_from(&mut buf).is_ok(),
        "the answer passes by keep state"
    );
    assert_eq!(udp_arrives(&from_215, &dns_udp, "192.168.253.2", 53), None);
    // Everything else in group 300 is blocked.
    assert!(!tcp_connects(&t.r, home, "192.168.253.1", 8080));
    assert_eq!(
        udp_arrives(&from_215, &other_udp, "192.168.253.1", 5000),
        None
    );
    // ICMP both ways through the tunnel.
    assert!(
        t.r.exec_ok(&["ping", "-c1", "-W1", "-I", home, "192.168.253.1"]),
        "ping passes"
    );
    // rdr: 192.168.253.2 -> 192.168.253.3:53 reaches 192.168.1.6:53, and
    // group 350 lets only that zone transfer out through the tunnel.
    assert!(
        tcp_connects(&t.l, "192.168.253.2", "192.168.253.3", 53),
        "rdr zone transfer"
    );
    assert_eq!(accepted_peer(&r_dns), v4("192.168.253.2"));
    assert!(
        !tcp_connects(&t.l, "192.168.253.1", "192.168.253.3", 53),
        "group 350 blocks others"
    );

    // Short TCP (10 octets of header) and fragments of an allowed datagram.
    let (src8, src215) = (v4("192.168.1.8"), v4(home));
    let before = counters(&t.g, "inet", "tsunagi");
    let short_tcp = [0x0f, 0x60, 0, 23, 0, 0, 0, 1, 0, 0];
    let mut udp = Vec::new();
    udp.extend_from_slice(&4000u16.to_be_bytes());
    udp.extend_from_slice(&53u16.to_be_bytes());
    udp.extend_from_slice(&(8u16 + 24).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&[b'f'; 24]);
    let dst2 = v4("192.168.253.2");
    send_raw(
        &t.r,
        &[
            ipv4_packet(src215, v4("192.168.253.1"), 6, 0x5151, 0, &short_tcp),
            ipv4_packet(src8, dst2, 17, 0x5252, 0x2000, &udp[..16]),
            ipv4_packet(src8, dst2, 17, 0x5252, 2, &udp[16..]),
        ],
    );
    let mut buf = [0u8; 64];
    assert!(
        dns_udp.recv_from(&mut buf).is_err(),
        "the fragmented datagram is blocked"
    );
    let after = counters(&t.g, "inet", "tsunagi");
    assert_eq!(
        after["ipf_g0_in_2"] - before["ipf_g0_in_2"],
        1,
        "short TCP blocked by @0:2"
    );
    assert_eq!(
        after["ipf_g0_in_1"] - before["ipf_g0_in_1"],
        2,
        "both fragments blocked by @0:1"
    );
    // The catch-all block of group 300 counted the blocked probes.
    assert!(after["ipf_g300_in_11"] >= 6, "{after:?}");
    let nat = counters(&t.g, "ip", "tsunagi_nat");
    assert!(
        nat["ipnat_line_2"] >= 1 && nat["ipnat_line_4"] >= 1 && nat["ipnat_line_6"] >= 1,
        "{nat:?}"
    );

    // The log, through NFLOG, in ipmon's format with the rules' interface names.
    log.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut lines = Vec::new();
    loop {
        let packets = match log.recv() {
            Ok(p) => p,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => panic!("NFLOG overflowed"),
            Err(_timeout) => break,
        };
        for p in packets {
            let index = if p.prefix.contains(" IN") {
                p.indev
            } else {
                p.outdev
            };
            let index = index.expect("NFLOG packet has its interface");
            let linux = t.g.run(|| interface_name(index)).expect("ifname");
            let name = t.map.rules_name(&linux).unwrap_or(&linux).to_string();
            lines.push(format_ipmon_line(&name, &p.prefix, &p.payload).expect("ipmon line"));
        }
    }
    println!("ipmon lines:\n{}", lines.join("\n"));
    let has = |pred: &dyn Fn(&str) -> bool, what: &str| {
        assert!(
            lines.iter().any(|l| pred(l)),
            "no {what} in log:\n{}",
            lines.join("\n")
        );
    };
    // Seed 000 appendix B.3's telnet session, rule @300:5 in this file.
    has(
        &|l| {
            l.starts_with("tun0 @300:5 p 192.168.1.215,")
                && l.contains(" -> 192.168.253.1,23 PR tcp len 20 ")
                && l.ends_with(" -S K-S K-F IN")
        },
        "telnet SYN in on tun0",
    );
    has(
        // After `map`, as appendix B.3 shows it: the gateway's address.
        &|l| l.starts_with("em0 @300:5 p 192.168.253.4,") && l.ends_with(" -S K-S K-F OUT"),
        "telnet SYN out on em0 after NAT",
    );
    has(
        &|l| {
            l.starts_with("em0 @300:5 p 192.168.253.1,23 -> 192.168.1.215,")
                && l.ends_with(" -AS K-S K-F IN")
        },
        "telnet SYN-ACK in on em0",
    );
    has(
        &|l| l.starts_with("tun0 @300:5 p 192.168.253.1,23 -> ") && l.ends_with(" -AS K-S K-F OUT"),
        "telnet SYN-ACK out on tun0",
    );
    has(
        &|l| {
            l.starts_with("tun0 @300:11 b 192.168.1.215,")
                && l.contains(",8080 PR tcp")
                && l.ends_with(" -S IN")
        },
        "blocked 8080",
    );
    has(
        &|l| l == "tun0 @0:2 Sb 192.168.1.215 -> 192.168.253.1 PR tcp len 20 30 IN",
        "short TCP",
    );
    has(
        &|l| {
            l == "tun0 @0:1 b 192.168.1.8 -> 192.168.253.2 PR udp len 20 (36) (frag 21074:16@16) IN"
        },
        "second fragment",
    );
    has(
        &|l| l.starts_with("tun0 @350:2 p 192.168.253.2,") && l.ends_with(" -S K-S K-F OUT"),
        "zone transfer out on tun0",
    );
    has(
        &|l| l.starts_with("tun0 @350:3 b 192.168.253.1,"),
        "blocked transfer from .1",
    );
    has(
        &|l| {
            l.starts_with(
                "tun0 @300:10 p 192.168.1.215 -> 192.168.253.1 PR icmp len 20 84 icmp echo/0 IN",
            )
        },
        "ping",
    );

    // Removal leaves no table behind.
    t.g.run(|| nft::apply(&tsunagi_policy::CompiledPolicy::removal().to_string()))
        .expect("remove");
    assert!(!t
        .g
        .run(|| nft::table_exists("inet", "tsunagi"))
        .expect("nft list"));
    assert!(!t
        .g
        .run(|| nft::table_exists("ip", "tsunagi_nat"))
        .expect("nft list"));
    drop(t.i);
}

/// Under IPFilter the last matching rule decides unless an earlier one is
/// `quick`; the same two rules give opposite results. Applying again
/// replaces the earlier ruleset.
#[test]
#[ignore = "needs root, network namespaces and nft (scripts/test.sh runs it)"]
fn last_match_wins_unless_quick() {
    support::require_netns(&["nft"]);
    let (a, b) = (netns("a"), netns("b"));
    b.ip(&[
        "link", "add", "bx", "type", "veth", "peer", "name", "ax", "netns", &a.name,
    ]);
    a.ip(&["addr", "add", "10.9.0.1/24", "dev", "ax"]);
    b.ip(&["addr", "add", "10.9.0.2/24", "dev", "bx"]);
    a.ip(&["link", "set", "ax", "up"]);
    b.ip(&["link", "set", "bx", "up"]);
    let _l = listen(&b, "10.9.0.2", 5001);
    let mut map = IfaceMap::new();
    map.insert("em0", "bx");
    let load = |text: &str| {
        let ipf = parse_ipf(text).expect("rules");
        let c = compile(&ipf, &Default::default(), &map, &Options::default()).expect("compile");
        b.run(|| nft::apply(&c.to_json())).expect("apply");
    };
    let last = "block in on em0 proto tcp from any to any port = 5001\n\
                pass in on em0 proto tcp from any to any port = 5001\n";
    let quick = "block in quick on em0 proto tcp from any to any port = 5001\n\
                 pass in on em0 proto tcp from any to any port = 5001\n";
    let reversed = "pass in on em0 proto tcp from any to any port = 5001\n\
                    block in on em0 proto tcp from any to any port = 5001\n";
    // Groups: the head passes, the group's last match (block) decides, and a
    // later group-0 rule (pass) overrides it again.
    let grouped = "pass in on em0 all head 10\n\
                   block in proto tcp from any to any port = 5001 group 10\n\
                   pass in proto tcp from any to 10.9.0.2 port = 5001\n";
    let grouped_quick = "pass in on em0 all head 10\n\
                         block in quick proto tcp from any to any port = 5001 group 10\n\
                         pass in proto tcp from any to 10.9.0.2 port = 5001\n";
    load(last);
    assert!(
        tcp_connects(&a, "10.9.0.1", "10.9.0.2", 5001),
        "last match: pass"
    );
    load(quick);
    assert!(
        !tcp_connects(&a, "10.9.0.1", "10.9.0.2", 5001),
        "quick: block"
    );
    load(reversed);
    assert!(
        !tcp_connects(&a, "10.9.0.1", "10.9.0.2", 5001),
        "last match: block"
    );
    load(grouped);
    assert!(
        tcp_connects(&a, "10.9.0.1", "10.9.0.2", 5001),
        "group 0's later pass wins"
    );
    load(grouped_quick);
    assert!(
        !tcp_connects(&a, "10.9.0.1", "10.9.0.2", 5001),
        "quick inside the group ends it"
    );
    b.run(|| nft::apply(&tsunagi_policy::CompiledPolicy::removal().to_string()))
        .expect("remove");
    assert!(
        tcp_connects(&a, "10.9.0.1", "10.9.0.2", 5001),
        "no rules after removal"
    );
}

/// A connected TCP socket from `src` to `dst:port` inside `ns`, if the
/// handshake completes.
fn tcp_stream(ns: &Netns, src: &str, dst: &str, port: u16) -> Option<std::net::TcpStream> {
    let (src, dst) = (v4(src), v4(dst));
    ns.run(|| {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        s.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))
            .expect("bind source");
        s.connect_timeout(&SockAddr::from(SocketAddrV4::new(dst, port)), BLOCKED_WAIT)
            .ok()?;
        Some(std::net::TcpStream::from(s))
    })
}

/// `keep state` is what carries a connection past a rule that only lets
/// its SYN in; state made under one ruleset survives re-applying another,
/// as IPFilter's state table survives `ipf -f`.
#[test]
#[ignore = "needs root, network namespaces and nft (scripts/test.sh runs it)"]
fn keep_state_carries_the_flow_and_survives_reapply() {
    use std::io::{Read, Write};
    support::require_netns(&["nft"]);
    let (c, d) = (netns("c"), netns("d"));
    d.ip(&[
        "link", "add", "dx", "type", "veth", "peer", "name", "cx", "netns", &c.name,
    ]);
    c.ip(&["addr", "add", "10.9.1.1/24", "dev", "cx"]);
    d.ip(&["addr", "add", "10.9.1.2/24", "dev", "dx"]);
    c.ip(&["link", "set", "cx", "up"]);
    d.ip(&["link", "set", "dx", "up"]);
    let listener = listen(&d, "10.9.1.2", 5002);
    let mut map = IfaceMap::new();
    map.insert("em0", "dx");
    let load = |text: &str| {
        let ipf = parse_ipf(text).expect("rules");
        let c = compile(&ipf, &Default::default(), &map, &Options::default()).expect("compile");
        d.run(|| nft::apply(&c.to_json())).expect("apply");
    };
    let arrives = |client: &mut std::net::TcpStream, server: &mut std::net::TcpStream, byte: u8| {
        client.write_all(&[byte]).expect("write");
        server
            .set_read_timeout(Some(BLOCKED_WAIT))
            .expect("timeout");
        let mut got = [0u8; 1];
        matches!(server.read(&mut got), Ok(1) if got[0] == byte)
    };
    let accept = || {
        let deadline = Instant::now() + BLOCKED_WAIT;
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).expect("blocking");
                    return Some(s);
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(_) => return None,
            }
        }
    };

    // Only the SYN may pass, without state: the handshake's last ACK and
    // the data are blocked.
    load(
        "pass in quick on em0 proto tcp from any to any port = 5002 flags S\nblock in on em0 all\n",
    );
    let _half = tcp_stream(&c, "10.9.1.1", "10.9.1.2", 5002).expect("SYN and SYN-ACK pass");
    assert!(accept().is_none(), "the ACK is blocked without keep state");

    // With keep state the whole flow passes.
    load("pass in quick on em0 proto tcp from any to any port = 5002 flags S keep state\nblock in on em0 all\n");
    let mut client = tcp_stream(&c, "10.9.1.1", "10.9.1.2", 5002).expect("connect");
    let mut server = accept().expect("accepted with keep state");
    assert!(arrives(&mut client, &mut server, b'x'));

    // A ruleset without the pass rule: the established flow goes on, a new
    // one is blocked.
    load("block in on em0 all\n");
    assert!(
        arrives(&mut client, &mut server, b'y'),
        "state survives re-apply"
    );
    assert!(tcp_stream(&c, "10.9.1.1", "10.9.1.2", 5002).is_none());
}
