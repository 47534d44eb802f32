//! Source routing for a borrowed address (seed 001: replies from it take
//! the tunnel, not the default route) and full tunnel (default through the
//! tunnel, the peer's outer address kept on its old route), in network
//! namespaces with a veth standing in for the tunnel:
//!
//! ```text
//!  W (the Internet side)             S (gateway)                    T (tunnel peer)
//!  192.0.2.1 on lo (peer outer)      203.0.113.5 on lo (borrowed)   198.51.100.7 on lo
//!  wan0 10.0.0.1 ------------------- swan 10.0.0.2, default via W
//!                                    stun 10.224.1.2 -------------- ttun 10.224.1.1
//! ```
//!
//! Needs root: these tests are `#[ignore]`d, `scripts/test.sh` runs them
//! (as root, with `--include-ignored`); run without root they fail saying so.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::process::Command;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tsunagi_host::policy_route::PolicyRoutes;
use tsunagi_host::Netlink;

mod support;
use support::Netns;

/// A namespace `tsunagi-prt-<pid>-<tag>` with `lo` up, deleted on drop.
fn netns(tag: &str) -> Netns {
    Netns::create("tsunagi-prt", tag).with_loopback()
}

fn tcp_connects(ns: &Netns, src: Ipv4Addr, dst: Ipv4Addr, port: u16) -> bool {
    ns.run(|| {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        s.bind(&SockAddr::from(SocketAddrV4::new(src, 0)))
            .expect("bind");
        s.connect_timeout(
            &SockAddr::from(SocketAddrV4::new(dst, port)),
            Duration::from_millis(500),
        )
        .is_ok()
    })
}

struct Sites {
    w: Netns,
    s: Netns,
    t: Netns,
    stun: u32,
}

fn sites(test: &str) -> Sites {
    let (w, s, t) = (
        netns(&format!("{test}-w")),
        netns(&format!("{test}-s")),
        netns(&format!("{test}-t")),
    );
    s.ip(&[
        "link", "add", "swan", "type", "veth", "peer", "name", "wan0", "netns", &w.name,
    ]);
    s.ip(&[
        "link", "add", "stun", "type", "veth", "peer", "name", "ttun", "netns", &t.name,
    ]);
    for (ns, dev, addr) in [
        (&s, "swan", "10.0.0.2/24"),
        (&w, "wan0", "10.0.0.1/24"),
        (&s, "stun", "10.224.1.2/30"),
        (&t, "ttun", "10.224.1.1/30"),
        (&s, "lo", "203.0.113.5/32"),
        (&t, "lo", "198.51.100.7/32"),
        (&w, "lo", "192.0.2.1/32"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
    }
    s.ip(&["route", "add", "default", "via", "10.0.0.1"]);
    w.ip(&["route", "add", "default", "via", "10.0.0.2"]);
    t.ip(&["route", "add", "203.0.113.5/32", "via", "10.224.1.2"]);
    // Loose checks, so the "before" case fails by routing, not by rp_filter.
    for key in ["all", "default", "stun", "swan"] {
        let _ = Command::new("ip")
            .args(["netns", "exec", &s.name, "sysctl", "-qw"])
            .arg(format!("net.ipv4.conf.{key}.rp_filter=0"))
            .status();
    }
    let stun = s.block_on(async {
        Netlink::new()
            .expect("netlink")
            .ifindex("stun")
            .await
            .expect("stun")
    });
    Sites { w, s, t, stun }
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn replies_from_borrowed_address_take_the_tunnel() {
    support::require_netns(&["sysctl"]);
    let x = sites("src");
    let borrowed = Ipv4Addr::new(203, 0, 113, 5);
    let client = Ipv4Addr::new(198, 51, 100, 7);
    let _listener =
        x.s.run(|| TcpListener::bind((borrowed, 7000)).expect("listen"));
    let route_get = || {
        x.s.ip(&["route", "get", "198.51.100.7", "from", "203.0.113.5"])
    };

    assert!(route_get().contains("dev swan"), "{}", route_get());
    assert!(
        !tcp_connects(&x.t, client, borrowed, 7000),
        "replies leave by the default route"
    );

    let stun = x.stun;
    x.s.block_on(async {
        let p = PolicyRoutes::new().expect("rtnetlink");
        p.start_source_route(borrowed, 100, 1000, stun)
            .await
            .expect("source route");
        // Twice is not an error.
        p.start_source_route(borrowed, 100, 1000, stun)
            .await
            .expect("again");
        assert!(p.has_source_rule(borrowed, 100).await.expect("rules"));
    });
    assert!(route_get().contains("dev stun"), "{}", route_get());
    assert!(x.s.ip(&["rule"]).contains("from 203.0.113.5 lookup 100"));
    assert!(
        tcp_connects(&x.t, client, borrowed, 7000),
        "replies take the tunnel"
    );
    // Other sources still use the default route.
    assert!(x
        .s
        .ip(&["route", "get", "198.51.100.7"])
        .contains("dev swan"));

    x.s.block_on(async {
        let p = PolicyRoutes::new().expect("rtnetlink");
        p.end_source_route(borrowed, 100, 1000, stun)
            .await
            .expect("remove");
        p.end_source_route(borrowed, 100, 1000, stun)
            .await
            .expect("remove twice");
        assert!(!p.has_source_rule(borrowed, 100).await.expect("rules"));
    });
    assert!(route_get().contains("dev swan"), "{}", route_get());
    assert!(!tcp_connects(&x.t, client, borrowed, 7000));
    drop(x.w);
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn full_tunnel_keeps_the_peer_on_its_outer_route() {
    support::require_netns(&["sysctl"]);
    let x = sites("full");
    let peer_outer = Ipv4Addr::new(192, 0, 2, 1);
    let _ssh =
        x.w.run(|| TcpListener::bind((peer_outer, 22)).expect("listen"));
    let stun = x.stun;
    let hop = x.s.block_on(async {
        let p = PolicyRoutes::new().expect("rtnetlink");
        p.start_full_tunnel(peer_outer, stun)
            .await
            .expect("full tunnel")
    });
    assert_eq!(hop.gateway, Some(Ipv4Addr::new(10, 0, 0, 1)));
    let everything = x.s.ip(&["route", "get", "8.8.8.8"]);
    assert!(everything.contains("dev stun"), "{everything}");
    let peer = x.s.ip(&["route", "get", "192.0.2.1"]);
    assert!(peer.contains("via 10.0.0.1 dev swan"), "{peer}");
    assert!(
        x.s.ip(&["route", "show", "default"])
            .contains("via 10.0.0.1"),
        "original default kept"
    );
    assert!(
        tcp_connects(&x.s, Ipv4Addr::new(10, 0, 0, 2), peer_outer, 22),
        "the tunnel's own transport still reaches the peer"
    );
    x.s.block_on(async {
        let p = PolicyRoutes::new().expect("rtnetlink");
        p.end_full_tunnel(peer_outer, hop, stun).await.expect("end");
    });
    let everything = x.s.ip(&["route", "get", "8.8.8.8"]);
    assert!(everything.contains("via 10.0.0.1 dev swan"), "{everything}");
    let table = x.s.ip(&["route"]);
    assert!(
        !table.contains("0.0.0.0/1") && !table.contains("192.0.2.1"),
        "{table}"
    );
    drop(x.t);
}
