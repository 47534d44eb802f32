//! Proxy ARP (pppd's `proxyarp`) against the real kernel: a LAN host in
//! one namespace, the gateway in another, joined by a veth pair; the
//! gateway has a tun with the VPN peer's address (inside the LAN's /24) as
//! its point-to-point peer. The test finds the LAN interface, adds the
//! proxy entry, and watches the LAN host resolve the peer's address to
//! the gateway's MAC and its ICMP echo come out of the tun; then checks
//! what the kernel needs (forwarding on; the `proxy_arp` sysctl not), and
//! that after removal nobody answers.
//!
//! Needs root: `#[ignore]`d, run by `scripts/test.sh` (`--include-ignored`).

mod support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use support::{require_netns, run, Netns};
use tsunagi_host::{Netlink, Tun};

/// The VPN peer's address, inside the LAN's 192.168.77.0/24.
const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 50);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 1);
const LAN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 10);

/// The MAC address of `dev` in `ns`.
fn mac(ns: &Netns, dev: &str) -> String {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    let at = out.find("link/ether ").expect("an Ethernet address") + "link/ether ".len();
    out[at..at + 17].to_string()
}

/// What the LAN host's neighbour table says about the peer after one ping
/// from a fresh table: `Some(MAC)` if someone answered its ARP request.
fn lan_resolves_peer(lan: &Netns) -> Option<String> {
    lan.ip(&["neigh", "flush", "dev", "parp-l"]);
    // The answer to a broadcast request may wait up to proxy_delay (0.8 s).
    lan.exec_ok(&["ping", "-c1", "-W2", &PEER.to_string()]);
    let entry = lan.ip(&["neigh", "show", &PEER.to_string(), "dev", "parp-l"]);
    entry
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_string)
}

fn sysctl_value(ns: &Netns, key: &str) -> String {
    run("ip", &["netns", "exec", &ns.name, "sysctl", "-n", key])
        .trim()
        .to_string()
}

/// Whether `packet` is an ICMP echo request (RFC 792) from the LAN host to
/// the peer.
fn is_echo_to_peer(packet: &[u8]) -> bool {
    packet.len() >= 28
        && packet[0] >> 4 == 4
        && packet[9] == 1
        && packet[12..16] == LAN_HOST.octets()
        && packet[16..20] == PEER.octets()
        && packet[usize::from(packet[0] & 0x0f) * 4] == 8
}

#[test]
#[ignore = "needs root, network namespaces and /dev/net/tun (scripts/test.sh runs it)"]
fn proxy_arp_answers_for_the_peer_until_removed() {
    require_netns(&["ping", "sysctl"]);
    let lan = Netns::create("tsparp-lan", "answer").with_loopback();
    let gw = Netns::create("tsparp-gw", "answer").with_loopback();
    lan.ip(&[
        "link", "add", "parp-l", "type", "veth", "peer", "name", "parp-g",
    ]);
    lan.ip(&["link", "set", "parp-g", "netns", &gw.name]);
    lan.ip(&["addr", "add", "192.168.77.10/24", "dev", "parp-l"]);
    lan.ip(&["link", "set", "parp-l", "up"]);
    gw.ip(&["addr", "add", "192.168.77.1/24", "dev", "parp-g"]);
    gw.ip(&["link", "set", "parp-g", "up"]);
    // A wider LAN on another interface of the gateway: the /24 is longer.
    gw.ip(&[
        "link", "add", "parp-x", "type", "veth", "peer", "name", "parp-y",
    ]);
    gw.ip(&["addr", "add", "192.168.0.1/16", "dev", "parp-x"]);
    gw.ip(&["link", "set", "parp-x", "up"]);
    gw.ip(&["link", "set", "parp-y", "up"]);
    gw.sysctl("net.ipv4.ip_forward=1");
    lan.wait_link_up("parp-l");
    gw.wait_link_up("parp-g");
    let gw_mac = mac(&gw, "parp-g");

    gw.block_on(async {
        let nl = Netlink::new().unwrap();
        let tun = Tun::create("parp-tun").unwrap();
        nl.link_up("parp-tun", 1400).await.unwrap();
        // As a PPTP server with `localip` = the gateway's LAN address: the
        // kernel adds the host route to the peer through the tun.
        nl.add_address_ptp("parp-tun", GATEWAY, PEER).await.unwrap();

        // pppd's choice of interface.
        assert_eq!(
            nl.proxy_arp_interface(PEER, "parp-tun").await.unwrap(),
            Some("parp-g".to_string())
        );
        assert_eq!(
            nl.proxy_arp_interface(PEER, "parp-g").await.unwrap(),
            Some("parp-x".to_string()),
            "with the /24's interface excluded, the /16"
        );
        assert_eq!(
            nl.proxy_arp_interface(Ipv4Addr::new(172, 16, 0, 9), "parp-tun")
                .await
                .unwrap(),
            None
        );

        // No entry: nobody answers for the peer.
        assert_eq!(lan_resolves_peer(&lan), None);

        nl.add_proxy_arp(PEER, "parp-g").await.unwrap();
        nl.add_proxy_arp(PEER, "parp-g").await.unwrap(); // again: fine
        let index = nl.ifindex("parp-g").await.unwrap();
        assert_eq!(nl.proxy_arp_entries().await.unwrap(), vec![(PEER, index)]);
        let shown = gw.ip(&["neigh", "show", "proxy"]);
        assert!(shown.contains("192.168.77.50 dev parp-g proxy"), "{shown}");
        // Not needed, and not set: the per-interface proxy_arp sysctl.
        assert_eq!(sysctl_value(&gw, "net.ipv4.conf.parp-g.proxy_arp"), "0");
        assert_eq!(sysctl_value(&gw, "net.ipv4.conf.all.proxy_arp"), "0");

        // The LAN host's echo request goes to the gateway's MAC and comes
        // out of the tun.
        let lan_name = lan.name.clone();
        let ping = tokio::task::spawn_blocking(move || {
            let _ = std::process::Command::new("ip")
                .args(["netns", "exec", &lan_name, "ping", "-c1", "-W2"])
                .arg(PEER.to_string())
                .output();
        });
        let mut buf = vec![0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut seen = false;
        while !seen {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, tun.recv(&mut buf)).await {
                Err(_) => break,
                Ok(n) => seen = is_echo_to_peer(&buf[..n.unwrap()]),
            }
        }
        ping.await.unwrap();
        assert!(seen, "the LAN host's echo request came out of the tun");
        let entry = lan.ip(&["neigh", "show", &PEER.to_string(), "dev", "parp-l"]);
        assert!(entry.contains(&format!("lladdr {gw_mac}")), "{entry}");
        assert_eq!(lan_resolves_peer(&lan), Some(gw_mac.clone()));

        // What the kernel needs: forwarding on the LAN interface.
        gw.sysctl("net.ipv4.ip_forward=0");
        assert_eq!(lan_resolves_peer(&lan), None, "forwarding off");
        gw.sysctl("net.ipv4.conf.parp-g.forwarding=1");
        assert_eq!(
            lan_resolves_peer(&lan),
            Some(gw_mac.clone()),
            "forwarding on for the LAN interface alone"
        );
        gw.sysctl("net.ipv4.ip_forward=1");
        // ... and a route to the peer out of another interface: with the
        // tun down its routes are gone.
        nl.link_down("parp-tun").await.unwrap();
        assert_eq!(lan_resolves_peer(&lan), None, "no route to the peer");
        nl.link_up("parp-tun", 1400).await.unwrap();
        nl.add_address_ptp("parp-tun", GATEWAY, PEER).await.unwrap();
        assert_eq!(lan_resolves_peer(&lan), Some(gw_mac.clone()));

        nl.del_proxy_arp(PEER, "parp-g").await.unwrap();
        nl.del_proxy_arp(PEER, "parp-g").await.unwrap(); // absent: fine
        nl.del_proxy_arp(PEER, "nosuch0").await.unwrap(); // no interface: fine
        assert_eq!(nl.proxy_arp_entries().await.unwrap(), vec![]);
        assert_eq!(lan_resolves_peer(&lan), None, "removed: nobody answers");
        drop(tun);
    });
}
