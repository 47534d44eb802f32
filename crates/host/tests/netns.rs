//! Tun devices, addresses and routes against the real kernel, each test in
//! a network namespace of its own (named with the pid and the test), so the
//! host's interfaces and routes are never touched.
//!
//! Needs root: those tests are `#[ignore]`d, `scripts/test.sh` runs them
//! (as root, with `--include-ignored`); run without root they fail saying so.

mod support;

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use tsunagi_host::{Ipv4Net, Netlink, Tun, ROUTE_PROTOCOL};

use support::{block_on, require_netns, Netns};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn addresses_and_routes() {
    require_netns(&[]);
    let ns = Netns::create("tsunagi-host", "routes");
    ns.run(|| {
        block_on(async {
            let nl = Netlink::new().unwrap();
            let tun = Tun::create("tsh0").unwrap();
            assert_eq!(tun.name(), "tsh0");
            assert!(nl.link_exists("tsh0").await.unwrap());
            assert!(!nl.link_exists("nosuch0").await.unwrap());

            nl.link_up("tsh0", 1400).await.unwrap();
            nl.add_address_ptp("tsh0", LOCAL, PEER).await.unwrap();
            // Again, as on a redial: not an error.
            nl.add_address_ptp("tsh0", LOCAL, PEER).await.unwrap();
            let addrs = nl.addresses("tsh0").await.unwrap();
            assert_eq!(addrs.len(), 1, "{addrs:?}");
            assert_eq!(
                (addrs[0].local, addrs[0].address, addrs[0].prefix),
                (LOCAL, PEER, 32)
            );

            let lan = net("10.98.0.0/24");
            nl.add_route(lan, "tsh0").await.unwrap();
            nl.add_route(lan, "tsh0").await.unwrap();
            // The kernel's route to the peer is through tsh0 too, so adding it is "already there".
            nl.add_route(Ipv4Net::host(PEER), "tsh0").await.unwrap();
            let mut routes = nl.routes_via("tsh0").await.unwrap();
            routes.sort_by_key(|n| (n.addr, n.prefix));
            assert_eq!(routes, vec![lan, Ipv4Net::host(PEER)]);

            // What the kernel says, through iproute2 rather than our own parser.
            let link = ns.ip(&["link", "show", "dev", "tsh0"]);
            assert!(link.contains("mtu 1400") && link.contains(",UP"), "{link}");
            let addr = ns.ip(&["-4", "addr", "show", "dev", "tsh0"]);
            assert!(addr.contains("inet 10.99.0.1 peer 10.99.0.2/32"), "{addr}");
            let route = ns.ip(&["route"]);
            let ours = format!("10.98.0.0/24 dev tsh0 proto {ROUTE_PROTOCOL} scope link");
            assert!(route.contains(&ours), "{route}");
            assert!(
                route.contains("10.99.0.2 dev tsh0 proto kernel scope link src 10.99.0.1"),
                "{route}"
            );
            // An operator's own route through the same interface.
            ns.ip(&["route", "add", "10.97.0.0/24", "dev", "tsh0"]);

            // A second tun: the same destination through it is a conflict.
            let _other = Tun::create("tsh1").unwrap();
            nl.link_up("tsh1", 1500).await.unwrap();
            let err = nl.add_route(lan, "tsh1").await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
            assert_eq!(
                err.to_string(),
                "tsh1: add route 10.98.0.0/24: a route to 10.98.0.0/24 already exists dev tsh0"
            );

            // A route through a gateway (the ptp peer here).
            let behind = net("10.94.0.0/24");
            nl.add_route_via_gateway(behind, PEER, "tsh0")
                .await
                .unwrap();
            nl.add_route_via_gateway(behind, PEER, "tsh0")
                .await
                .unwrap();
            let route = ns.ip(&["route"]);
            let ours = format!("10.94.0.0/24 via 10.99.0.2 dev tsh0 proto {ROUTE_PROTOCOL}");
            assert!(route.contains(&ours), "{route}");
            // The device route to `lan` is not the same as one through the peer.
            let err = nl
                .add_route_via_gateway(lan, PEER, "tsh0")
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
            assert!(
                err.to_string().ends_with("already exists dev tsh0"),
                "{err}"
            );
            nl.del_route(behind, "tsh0").await.unwrap();
            assert!(!nl.routes_via("tsh0").await.unwrap().contains(&behind));

            nl.del_route(lan, "tsh0").await.unwrap();
            nl.del_route(lan, "tsh0").await.unwrap(); // already absent: fine
            nl.del_route(lan, "nosuch0").await.unwrap(); // interface gone: fine
                                                         // Not ours (proto boot): left alone.
            nl.del_route(net("10.97.0.0/24"), "tsh0").await.unwrap();
            let routes = nl.routes_via("tsh0").await.unwrap();
            assert!(!routes.contains(&lan), "{routes:?}");
            assert!(routes.contains(&net("10.97.0.0/24")), "{routes:?}");

            let route = ns.ip(&["route"]);
            assert!(!route.contains("10.98.0.0/24"), "{route}");
            assert!(route.contains("10.97.0.0/24 dev tsh0"), "{route}");

            // Errors name the interface and the operation.
            let err = nl.link_up("nosuch0", 1400).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::NotFound);
            assert!(err.to_string().contains("nosuch0"), "{err}");
            let err = nl
                .add_route(
                    Ipv4Net {
                        addr: Ipv4Addr::new(10, 96, 0, 1),
                        prefix: 24,
                    },
                    "tsh0",
                )
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(
                err.to_string().contains("tsh0: add route 10.96.0.1/24"),
                "{err}"
            );
            nl.link_down("tsh1").await.unwrap();
            let err = nl.add_route(net("10.95.0.0/24"), "tsh1").await.unwrap_err();
            assert_eq!(
                err.to_string(),
                "tsh1: add route 10.95.0.0/24: Network is down (os error 100)"
            );

            // Deleting the last address makes the kernel flush the
            // interface's routes; ours are gone with them.
            nl.del_address_ptp("tsh0", LOCAL, PEER).await.unwrap();
            nl.del_address_ptp("tsh0", LOCAL, PEER).await.unwrap();
            assert!(nl.addresses("tsh0").await.unwrap().is_empty());
            drop(tun);
        });
    });
}

#[test]
fn tun_name_too_long_is_refused() {
    let err = Tun::create("a-name-of-16-byt").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("a-name-of-16-byt"), "{err}");
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn tun_names_and_errors() {
    require_netns(&[]);
    let ns = Netns::create("tsunagi-host", "names");
    ns.run(|| {
        block_on(async {
            let nl = Netlink::new().unwrap();
            let first = Tun::create("tsh0").unwrap();
            let err = Tun::create("tsh0").unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("tun tsh0: TUNSETIFF: Device or resource busy"),
                "{err}"
            );
            let numbered = Tun::create("tsx%d").unwrap();
            assert_eq!(numbered.name(), "tsx0");
            assert!(nl.link_exists("tsx0").await.unwrap());

            // Nothing queued: try_recv says WouldBlock instead of waiting.
            let mut buf = [0u8; 2048];
            let err = first.try_recv(&mut buf).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);

            drop(first);
            assert!(
                !nl.link_exists("tsh0").await.unwrap(),
                "closing the fd removes the device"
            );
        });
    });
}

/// IPv4 header checksum (RFC 791 section 3.1, RFC 1071).
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4/UDP packet with UDP checksum 0 (allowed for IPv4, RFC 768).
fn udp_packet(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64; // TTL
    p[9] = 17; // UDP
    p[12..16].copy_from_slice(&src.ip().octets());
    p[16..20].copy_from_slice(&dst.ip().octets());
    let sum = ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p[20..22].copy_from_slice(&src.port().to_be_bytes());
    p[22..24].copy_from_slice(&dst.port().to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[28..].copy_from_slice(payload);
    p
}

/// Receive from the tun until an IPv4 UDP packet to `dst` arrives (the
/// kernel may also send IPv6 router solicitations and the like).
async fn recv_udp_to(tun: &Tun, dst: SocketAddrV4) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let wait = async {
        loop {
            let n = tun.recv(&mut buf).await.unwrap();
            let p = &buf[..n];
            if n >= 28
                && p[0] >> 4 == 4
                && p[9] == 17
                && p[16..20] == dst.ip().octets()
                && p[22..24] == dst.port().to_be_bytes()
            {
                return p.to_vec();
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .unwrap_or_else(|_| panic!("no packet to {dst} on the tun within 5 s"))
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn packets_through_the_tun() {
    require_netns(&[]);
    let ns = Netns::create("tsunagi-host", "packets");
    ns.run(|| {
        block_on(async {
            let nl = Netlink::new().unwrap();
            let tun = Tun::create("tsh0").unwrap();
            nl.link_up("tsh0", 1400).await.unwrap();
            nl.add_address_ptp("tsh0", LOCAL, PEER).await.unwrap();
            nl.add_route(net("10.98.0.0/24"), "tsh0").await.unwrap();

            let socket = UdpSocket::bind(SocketAddrV4::new(LOCAL, 0)).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let std::net::SocketAddr::V4(local) = socket.local_addr().unwrap() else {
                unreachable!("bound to an IPv4 address")
            };

            // Out of the stack, through the route we added, onto the tun.
            let far = SocketAddrV4::new(Ipv4Addr::new(10, 98, 0, 5), 9999);
            socket.send_to(b"through the route", far).unwrap();
            let p = recv_udp_to(&tun, far).await;
            assert_eq!(&p[12..16], &LOCAL.octets());
            assert_eq!(&p[28..], b"through the route");

            // To the ptp peer, through the kernel's own route.
            let peer = SocketAddrV4::new(PEER, 7);
            socket.send_to(b"to the peer", peer).unwrap();
            let p = recv_udp_to(&tun, peer).await;
            assert_eq!(&p[28..], b"to the peer");

            // Into the tun, delivered to the socket.
            let packet = udp_packet(far, local, b"from the far side");
            assert_eq!(tun.send(&packet).await.unwrap(), packet.len());
            let mut buf = [0u8; 100];
            let (n, from) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(from, std::net::SocketAddr::V4(far));
            assert_eq!(&buf[..n], b"from the far side");

            // A packet longer than the buffer: the kernel cuts it to fit and
            // drops the rest; recv sees that from the IP length field and
            // says so instead of passing a cut packet on. The next packet is
            // read normally.
            socket.send_to(&[7u8; 200], far).unwrap();
            let mut small = [0u8; 64];
            let waited = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match tun.recv(&mut small).await {
                        // Not ours (e.g. an IPv6 router solicitation).
                        Ok(n) if n < 28 || small[9] != 17 => continue,
                        other => return other,
                    }
                }
            })
            .await
            .expect("the long packet did not arrive");
            match waited {
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}"),
                Ok(n) => panic!("a 228-byte packet came back as {n} bytes"),
            }
            socket.send_to(b"after", far).unwrap();
            let p = recv_udp_to(&tun, far).await;
            assert_eq!(&p[28..], b"after");

            // try_send works the same way.
            let packet = udp_packet(far, local, b"second");
            assert_eq!(tun.try_send(&packet).unwrap(), packet.len());
            let (n, _) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"second");

            // Reader and writer at the same time on one Tun (both take &self).
            let reader = recv_udp_to(&tun, far);
            let writer = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                socket.send_to(b"concurrent", far).unwrap();
                tun.send(&udp_packet(far, local, b"and back"))
                    .await
                    .unwrap();
            };
            let (p, ()) = tokio::join!(reader, writer);
            assert_eq!(&p[28..], b"concurrent");
            let (n, _) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"and back");
        });
    });
}
