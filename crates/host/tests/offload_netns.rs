//! Tun offload mode against the real kernel, in a network namespace of its
//! own (named with the pid), deleted on drop even when a test fails.
//!
//! One namespace forwards between three tuns:
//! - `tso-a` (offload mode, TSO on): the test writes a 20 000-byte TCP
//!   packet into it, which goes in as one GSO packet;
//! - `tso-b` (ordinary tun, no offloads): the kernel must cut that packet
//!   into MTU-sized segments and compute their checksums in software from
//!   the pseudo-header sum we left in the TCP checksum field; the test
//!   reads every segment and checks checksums, sequence numbers and bytes;
//! - `tso-c` (offload mode, TSO on): the kernel keeps the GSO packet whole,
//!   so reading it gives a super-packet, whose checksums the tun completes.
//!
//! A second test hands the segments of such a GSO write to a real TCP
//! receiver in another namespace, whose kernel checks every checksum (the
//! test plays the sender's side of the handshake through tuns).
//!
//! Needs root: these tests are `#[ignore]`d, `scripts/test.sh` runs them
//! (as root, with `--include-ignored`); run without root they fail saying so.

mod support;

use std::io::{self, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use tsunagi_host::offload::{sum_words, tcp_checksums_valid, tcp_layout, MAX_OFFLOAD_PACKET};
use tsunagi_host::Tun;

use support::{block_on, require_netns, Netns};

const MTU: usize = 1500;
const PAYLOAD: usize = 20_000;
const SEQ: u32 = 0xfff0_0000; // wraps inside the packet
const SENDER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);

/// An IPv4 + TCP packet `src:40000 -> dst:5001`, ACK|PSH, `PAYLOAD`
/// pattern bytes, valid checksums (computed here, independently of the
/// crate's own functions).
fn big_tcp_packet(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let total = 20 + 20 + PAYLOAD;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&0x4242u16.to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let t = 20;
    p[t..t + 2].copy_from_slice(&40000u16.to_be_bytes());
    p[t + 2..t + 4].copy_from_slice(&5001u16.to_be_bytes());
    p[t + 4..t + 8].copy_from_slice(&SEQ.to_be_bytes());
    p[t + 8..t + 12].copy_from_slice(&1u32.to_be_bytes());
    p[t + 12] = 5 << 4;
    p[t + 13] = 0x18;
    p[t + 14..t + 16].copy_from_slice(&0xffffu16.to_be_bytes());
    for (i, b) in p[40..].iter_mut().enumerate() {
        *b = (i * 7 + i / 251) as u8;
    }
    fill_checksums(&mut p);
    p
}

/// Fills in the IPv4 header checksum and the TCP checksum (RFC 793 section
/// 3.1: over the pseudo-header, the TCP length being `p.len() - 20`) of an
/// IPv4 packet with a 20-byte header, the slow obvious way, independently
/// of the crate's own functions.
fn fill_checksums(p: &mut [u8]) {
    p[10..12].copy_from_slice(&[0, 0]);
    let ip_sum = checksum16(&p[..20], 0);
    p[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    p[36..38].copy_from_slice(&[0, 0]);
    let pseudo = [
        &p[12..20],
        &[0, 6],
        &((p.len() - 20) as u16).to_be_bytes()[..],
    ]
    .concat();
    let pseudo_sum = pseudo
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let tcp_sum = checksum16(&p[20..], pseudo_sum);
    p[36..38].copy_from_slice(&tcp_sum.to_be_bytes());
}

/// RFC 1071, 16 bits at a time, the slow obvious way.
fn checksum16(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    for w in data.chunks(2) {
        let hi = u32::from(w[0]) << 8;
        let lo = w.get(1).copied().map_or(0, u32::from);
        sum += hi | lo;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Bring up `dev` with `local` peer `peer` and `MTU`.
fn configure(ns: &Netns, dev: &str, local: &str, peer: &str) {
    ns.ip(&["addr", "add", local, "peer", peer, "dev", dev]);
    ns.ip(&["link", "set", dev, "mtu", &MTU.to_string(), "up"]);
}

/// Read packets from `tun` until a TCP one from `SENDER` comes (the kernel
/// may send IPv6 router solicitations and the like on its own).
async fn next_tcp(tun: &Tun, buf: &mut [u8]) -> tsunagi_host::tun::Received {
    loop {
        let got = tokio::time::timeout(Duration::from_secs(5), tun.recv_gso(buf))
            .await
            .expect("no packet within 5 s")
            .expect("tun read");
        let p = &buf[..got.len];
        if p.len() >= 20 && p[0] >> 4 == 4 && p[9] == 6 && p[12..16] == SENDER.octets() {
            return got;
        }
    }
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn gso_write_is_segmented_and_tso_read_is_whole() {
    require_netns(&["sysctl"]);
    let ns = Netns::create("tsunagi-off", "gso");
    ns.sysctl("net.ipv4.ip_forward=1");
    ns.run(|| {
        block_on(async {
            let a = Tun::create_offload("tso-a").unwrap();
            let b = Tun::create("tso-b").unwrap();
            let c = Tun::create_offload("tso-c").unwrap();
            assert!(a.is_offload() && !b.is_offload() && c.is_offload());
            a.set_tso(true).unwrap();
            c.set_tso(true).unwrap();
            a.set_gso_mtu(MTU);
            assert!(b.set_tso(true).is_err(), "TSO needs offload mode");
            configure(&ns, "tso-a", "10.77.0.1", "10.77.0.2");
            configure(&ns, "tso-b", "10.78.0.1", "10.78.0.2");
            configure(&ns, "tso-c", "10.79.0.1", "10.79.0.2");

            // (1) Through tso-b: cut by the kernel, checksums done by it.
            let packet = big_tcp_packet(SENDER, Ipv4Addr::new(10, 78, 0, 2));
            assert!(tcp_checksums_valid(&packet));
            assert_eq!(a.send(&packet).await.unwrap(), packet.len());
            let mut buf = vec![0u8; MAX_OFFLOAD_PACKET];
            let mut payload = Vec::new();
            let mut segments = 0;
            while payload.len() < PAYLOAD {
                let got = next_tcp(&b, &mut buf).await;
                let seg = &buf[..got.len];
                assert_eq!(got.gso, None);
                assert!(seg.len() <= MTU, "segment of {} bytes", seg.len());
                assert!(
                    tcp_checksums_valid(seg),
                    "segment {segments}: bad checksum (the pseudo-header sum we left is wrong)"
                );
                let layout = tcp_layout(seg).unwrap();
                let seq = u32::from_be_bytes(seg[24..28].try_into().unwrap());
                assert_eq!(seq, SEQ.wrapping_add(payload.len() as u32));
                assert_eq!(seg[8], 63, "forwarded: TTL decremented");
                payload.extend_from_slice(&seg[layout.headers()..]);
                segments += 1;
            }
            assert_eq!(segments, PAYLOAD.div_ceil(MTU - 40));
            assert_eq!(payload, packet[40..]);

            // (2) Through tso-c: kept whole, handed over as a super-packet
            // with its checksums completed.
            let packet = big_tcp_packet(SENDER, Ipv4Addr::new(10, 79, 0, 2));
            a.send(&packet).await.unwrap();
            let got = next_tcp(&c, &mut buf).await;
            let whole = &buf[..got.len];
            assert_eq!(got.len, packet.len(), "one super-packet");
            assert_eq!(got.gso, Some((MTU - 40) as u16));
            assert!(tcp_checksums_valid(whole), "completed checksums");
            assert_eq!(whole[40..], packet[40..]);
            // The same packet as sent, but for the TTL and so the header
            // checksum.
            assert_eq!(whole[8], 63);
            assert_eq!(whole[20..], packet[20..]);
            assert_eq!(sum_words(&whole[..20], 0) % 0xffff, 0);

            // (3) A small packet in offload mode: no GSO either way.
            let mut small = big_tcp_packet(SENDER, Ipv4Addr::new(10, 79, 0, 2));
            small.truncate(40 + 100);
            small[2..4].copy_from_slice(&140u16.to_be_bytes());
            fill_checksums(&mut small);
            let layout = tcp_layout(&small).unwrap();
            assert_eq!(layout.headers(), 40);
            a.send(&small).await.unwrap();
            let got = next_tcp(&c, &mut buf).await;
            assert_eq!(got.len, 140);
            assert_eq!(got.gso, None);
            assert!(tcp_checksums_valid(&buf[..140]));
        })
    });
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn without_vnet_hdr_offload_is_refused() {
    require_netns(&[]);
    let ns = Netns::create("tsunagi-off", "plain");
    ns.run(|| {
        block_on(async {
            let t = Tun::create("tso-p").unwrap();
            let e = t.set_tso(true).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
            assert!(e.to_string().contains("tso-p"), "{e}");
        })
    });
}

/// An IPv4 + TCP packet with valid checksums (no options, window 65535).
fn tcp_packet(
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let total = 40 + payload.len();
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.0.octets());
    p[16..20].copy_from_slice(&dst.0.octets());
    p[20..22].copy_from_slice(&src.1.to_be_bytes());
    p[22..24].copy_from_slice(&dst.1.to_be_bytes());
    p[24..28].copy_from_slice(&seq.to_be_bytes());
    p[28..32].copy_from_slice(&ack.to_be_bytes());
    p[32] = 5 << 4;
    p[33] = flags;
    p[34..36].copy_from_slice(&0xffffu16.to_be_bytes());
    p.extend_from_slice(payload);
    fill_checksums(&mut p);
    p
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn gso_write_reaches_a_tcp_receiver_segmented() {
    require_netns(&["sysctl"]);
    // tx: the GSO write and the kernel's segmentation (gso-a -> seg-b);
    // rx: the TCP receiver behind tun rcv-d, fed by the test.
    let tx = Netns::create("tsunagi-off", "tx");
    let rx = Netns::create("tsunagi-off", "rx");
    tx.sysctl("net.ipv4.ip_forward=1");
    let client = (SENDER, 40000);
    let server = (Ipv4Addr::new(10, 81, 0, 1), 5001);
    tx.run(|| {
        block_on(async {
            let a = Tun::create_offload("gso-a").unwrap();
            a.set_tso(true).unwrap();
            a.set_gso_mtu(MTU);
            let b = Tun::create("seg-b").unwrap();
            configure(&tx, "gso-a", "10.77.0.1", "10.77.0.2");
            configure(&tx, "seg-b", "10.78.0.1", "10.78.0.2");
            tx.ip(&["route", "add", "10.81.0.0/24", "dev", "seg-b"]);

            rx.enter();
            let d = Tun::create("rcv-d").unwrap();
            configure(&rx, "rcv-d", "10.81.0.1", "10.81.0.2");
            rx.ip(&["route", "add", "10.77.0.0/24", "dev", "rcv-d"]);
            let listener = TcpListener::bind(("10.81.0.1", 5001)).unwrap();
            let receiver = std::thread::spawn(move || {
                let (mut conn, _) = listener.accept().expect("accept");
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut got = vec![0u8; PAYLOAD];
                conn.read_exact(&mut got).map(|()| got)
            });

            // Handshake, straight through rcv-d.
            let isn = SEQ.wrapping_sub(1);
            d.send(&tcp_packet(client, server, isn, 0, 0x02, &[]))
                .await
                .unwrap();
            let mut buf = vec![0u8; MAX_OFFLOAD_PACKET];
            let server_isn = loop {
                let n = tokio::time::timeout(Duration::from_secs(5), d.recv(&mut buf))
                    .await
                    .expect("no SYN-ACK within 5 s")
                    .unwrap();
                let p = &buf[..n];
                if n >= 40 && p[0] >> 4 == 4 && p[9] == 6 && p[33] & 0x12 == 0x12 {
                    break u32::from_be_bytes(p[24..28].try_into().unwrap());
                }
            };
            let ack = server_isn.wrapping_add(1);
            d.send(&tcp_packet(client, server, SEQ, ack, 0x10, &[]))
                .await
                .unwrap();

            // The data as one GSO write into gso-a; the kernel cuts it on
            // the way to seg-b, and each segment is handed to rcv-d as it is.
            let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i % 251) as u8).collect();
            let data = tcp_packet(client, server, SEQ, ack, 0x18, &payload);
            a.send(&data).await.unwrap();
            let mut moved = 0;
            let mut segments = 0;
            while moved < PAYLOAD {
                let n = tokio::time::timeout(Duration::from_secs(5), b.recv(&mut buf))
                    .await
                    .expect("segments stopped coming out of seg-b")
                    .unwrap();
                let p = &buf[..n];
                if n < 40 || p[0] >> 4 != 4 || p[9] != 6 {
                    continue;
                }
                assert!(n <= MTU);
                moved += n - 40;
                segments += 1;
                d.send(p).await.unwrap();
            }
            assert_eq!(segments, PAYLOAD.div_ceil(MTU - 40));
            let got = tokio::task::spawn_blocking(move || receiver.join())
                .await
                .unwrap()
                .expect("receiver thread")
                .expect("the TCP receiver did not get all the data (a bad checksum is dropped)");
            assert_eq!(got, payload);
        })
    });
}
