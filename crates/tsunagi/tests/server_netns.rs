//! A server profile's sessions on one real tun in a network namespace:
//! the transport sets the tun up once (the pool's local address on it,
//! routes for the pool's remote addresses), and the kernel's own routing
//! then carries each session's packets:
//! - a client pings the server's address on the tun: the kernel answers,
//!   and the answer is routed by inner address to that client only;
//! - with forwarding on, one client's packet to another client's address
//!   goes into the kernel and back out through the same tun to the other
//!   client (no interface and no netlink work per session);
//! - the routes into the tun are the pool's, set up once: the sessions
//!   added none.
//!
//! The clients are PPP engines in this process on the in-memory port
//! (tests/server_support); the tun, netlink, routing and ICMP are the
//! kernel's.

mod server_support;
mod support;

use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use server_support::{port_and_clients, start_server, vpn_settings, Running, ToPort, LOCAL};
use support::icmp::echo_request;
use tsunagi_ppp::link::IpVersion;

/// A network namespace deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .arg("-n")
        .arg(ns)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root, network namespaces and /dev/net/tun (scripts/test.sh runs it)"]
fn sessions_share_one_tun_routed_by_inner_address() {
    support::require_netns(&["sysctl"]);
    let ns = Netns(format!("tss{}", std::process::id()));
    let _ = Command::new("ip").args(["netns", "del", &ns.0]).status();
    assert!(Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap()
        .success());
    ip(&ns.0, &["link", "set", "lo", "up"]);
    let forward = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_forward=1",
        ])
        .status()
        .unwrap();
    assert!(forward.success());
    let tun_name = format!("tsrv{}", std::process::id() % 100_000);
    let ns_name = ns.0.clone();
    let tun_for_thread = tun_name.clone();
    // Tuns and netlink sockets belong to the namespace of the thread that
    // makes them: one thread joins it and runs everything.
    let routes = std::thread::spawn(move || {
        let file = std::fs::File::open(format!("/run/netns/{ns_name}")).unwrap();
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ns_name, tun_for_thread))
    })
    .join()
    .expect("the test thread panicked");
    // The pool's two prefixes are the only routes into the pool: the
    // sessions added none of their own.
    let into_pool: Vec<&str> = routes
        .lines()
        .filter(|l| l.starts_with("10.77.0.1") && !l.starts_with("10.77.0.1 "))
        .collect();
    assert_eq!(into_pool.len(), 2, "{routes}");
    drop(ns);
}

async fn run(ns: String, tun_name: String) -> String {
    let settings = vpn_settings(&["alice", "bob", "carol"], "10.77.0.1", "10.77.0.10-13");
    let tun = tsunagi_host::Tun::create(&tun_name).expect("tun");
    let (port, mut clients, _closed) = port_and_clients();
    let Running {
        task: server,
        shutdown: shutdown_tx,
        ..
    } = start_server(settings, port, tun);

    for (key, user) in [(1, "alice"), (2, "bob"), (3, "carol")] {
        clients.start(key, user);
    }
    assert!(
        clients
            .pump(Duration::from_secs(20), |c| (1..=3)
                .all(|k| c.address(k).is_some()))
            .await,
        "sessions not up"
    );
    // The tun, set up once: its address and the pool's routes.
    let addresses = ip(&ns, &["-4", "addr", "show", "dev", &tun_name]);
    assert!(addresses.contains("inet 10.77.0.1/32"), "{addresses}");
    let routes = ip(&ns, &["-4", "route", "show", "dev", &tun_name]);
    assert!(routes.contains("10.77.0.12/31"), "{routes}");
    assert!(routes.contains("10.77.0.10/31"), "{routes}");

    // The kernel answers a client's ping of the server's address, and the
    // answer goes to that client only.
    let bob = clients.address(2).unwrap();
    let link = clients.links.get_mut(&2).unwrap();
    let mut frame = Vec::new();
    assert!(link.encapsulate(IpVersion::V4, &echo_request(bob, LOCAL, 1, 1), &mut frame));
    clients.to_port.send(ToPort::Frame(2, frame)).unwrap();
    let replied = |c: &server_support::Clients| {
        c.received
            .get(&2)
            .is_some_and(|r| r.iter().any(|p| p.len() >= 28 && p[9] == 1 && p[20] == 0))
    };
    assert!(
        clients.pump(Duration::from_secs(5), replied).await,
        "no echo reply through the tun"
    );
    let reply = clients.received[&2]
        .iter()
        .find(|p| p[9] == 1 && p[20] == 0)
        .unwrap();
    assert_eq!(&reply[12..16], &LOCAL.octets());
    assert_eq!(&reply[16..20], &bob.octets());
    assert!(clients.received.get(&1).is_none_or(|r| r.is_empty()));
    assert!(clients.received.get(&3).is_none_or(|r| r.is_empty()));

    // Client to client through the kernel: alice's packet to carol's
    // address goes in through the tun and back out to carol.
    let alice = clients.address(1).unwrap();
    let carol = clients.address(3).unwrap();
    let packet = echo_request(alice, carol, 7, 7);
    let link = clients.links.get_mut(&1).unwrap();
    let mut frame = Vec::new();
    assert!(link.encapsulate(IpVersion::V4, &packet, &mut frame));
    clients.to_port.send(ToPort::Frame(1, frame)).unwrap();
    assert!(
        clients
            .pump(Duration::from_secs(5), |c| c
                .received
                .get(&3)
                .is_some_and(|r| !r.is_empty()))
            .await,
        "alice's packet did not reach carol"
    );
    let got = &clients.received[&3][0];
    assert_eq!(&got[12..16], &alice.octets());
    assert_eq!(&got[16..20], &carol.octets());
    assert_eq!(got[8], 63, "forwarded once by the kernel (TTL 64 -> 63)");

    let routes = ip(&ns, &["-4", "route", "show", "dev", &tun_name]);
    shutdown_tx.send(true).unwrap();
    while !server.is_finished() {
        clients.pump(Duration::from_millis(100), |_| false).await;
    }
    server.await.unwrap();
    routes
}
