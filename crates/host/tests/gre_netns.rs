//! The raw GRE socket between two network namespaces joined by a veth
//! pair: batches sent with sendmmsg arrive whole and in batches through
//! recvmmsg, with their source address; a datagram longer than a slot is
//! counted and skipped; a connected socket hears only its peer.
//!
//! Needs root (namespaces, raw sockets): `#[ignore]`d, run by
//! `scripts/test.sh` (`--include-ignored`).

mod support;

use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{block_on, require_netns, Netns};
use tsunagi_host::gre::{GreSocket, RecvBatch, SendBatch, MMSG_CHUNK};

const A: Ipv4Addr = Ipv4Addr::new(10, 47, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 47, 0, 2);
/// A second address of namespace A, a sender the connected socket must ignore.
const A2: Ipv4Addr = Ipv4Addr::new(10, 47, 0, 3);

/// Two namespaces, `a` (10.47.0.1 and .3) and `b` (10.47.0.2), joined by a
/// veth pair. Both are deleted on drop.
struct Pair {
    a: Netns,
    b: Netns,
}

fn pair(test: &str) -> Pair {
    require_netns(&[]);
    let a = Netns::create("tsgre-a", test).with_loopback();
    let b = Netns::create("tsgre-b", test).with_loopback();
    a.ip(&[
        "link", "add", "gre-va", "type", "veth", "peer", "name", "gre-vb",
    ]);
    a.ip(&["link", "set", "gre-vb", "netns", &b.name]);
    a.ip(&["addr", "add", "10.47.0.1/24", "dev", "gre-va"]);
    a.ip(&["addr", "add", "10.47.0.3/24", "dev", "gre-va"]);
    b.ip(&["addr", "add", "10.47.0.2/24", "dev", "gre-vb"]);
    a.ip(&["link", "set", "gre-va", "up"]);
    b.ip(&["link", "set", "gre-vb", "up"]);
    a.wait_link_up("gre-va");
    b.wait_link_up("gre-vb");
    // b's MAC known in advance: a burst sent while ARP is unresolved
    // would queue behind it, and the neighbour queue holds only
    // `unres_qlen_bytes` of it.
    let link = b.ip(&["-o", "link", "show", "dev", "gre-vb"]);
    let at = link.find("link/ether ").expect("a MAC") + "link/ether ".len();
    let mac = &link[at..at + 17];
    a.ip(&[
        "neigh",
        "replace",
        "10.47.0.2",
        "lladdr",
        mac,
        "dev",
        "gre-va",
        "nud",
        "permanent",
    ]);
    Pair { a, b }
}

/// An enhanced GRE header (RFC 2637 section 4.1: key present, version 1,
/// payload length, call id) with a sequence number, then `len` octets of
/// payload that say which datagram this is.
fn datagram(n: u32, len: usize) -> Vec<u8> {
    let mut d = vec![0x30, 0x01, 0x88, 0x0b];
    d.extend_from_slice(&(len as u16).to_be_bytes());
    d.extend_from_slice(&7u16.to_be_bytes());
    d.extend_from_slice(&n.to_be_bytes());
    d.extend((0..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(n) as u8));
    d
}

/// What [`receiver`] got: the datagrams (source, GRE part), the size of
/// each batch, and the count of truncated datagrams.
type Received = (Vec<(Ipv4Addr, Vec<u8>)>, Vec<usize>, u64);

/// Receive in `b` until `want` datagrams arrived or 3 s passed. `ready` is signalled once the socket is open; the first
/// receive waits for `go`.
fn receiver(
    b: &Netns,
    connect: Option<Ipv4Addr>,
    batch: RecvBatch,
    want: usize,
    ready: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
) -> Received {
    b.run(move || {
        block_on(async move {
            let socket = GreSocket::open().expect("open GRE socket in b");
            socket.set_recv_buffer_size(1 << 20).expect("SO_RCVBUF");
            if let Some(peer) = connect {
                socket.connect(peer).expect("connect");
            }
            ready.send(()).unwrap();
            go.recv().unwrap();
            let mut batch = batch;
            let mut got = Vec::new();
            let mut sizes = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(3);
            while got.len() < want {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, socket.recv_batch(&mut batch)).await {
                    Err(_) => break,
                    Ok(r) => {
                        let n = r.expect("recv_batch");
                        assert_eq!(n, batch.len());
                        sizes.push(n);
                        for d in batch.iter() {
                            got.push((d.source, d.payload().expect("IPv4 header").to_vec()));
                        }
                    }
                }
            }
            // Nothing else is queued.
            match socket.try_recv_batch(&mut batch) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("more arrived than was sent: {other:?}"),
            }
            (got, sizes, batch.truncated())
        })
    })
}

/// Send `datagrams` from `a` (bound to `from`) in one batch; returns what
/// flush said.
fn send_from(a: &Netns, from: Ipv4Addr, datagrams: &[Vec<u8>]) -> usize {
    a.run(|| {
        block_on(async {
            let socket = GreSocket::open().expect("open GRE socket in a");
            socket.bind(from).expect("bind");
            let mut batch = SendBatch::new(16, 2048);
            for d in datagrams {
                batch.slot(B).extend_from_slice(d);
            }
            let sent = socket.flush(&mut batch).expect("flush");
            assert!(batch.is_empty());
            assert_eq!(batch.dropped(), 0);
            sent
        })
    })
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn gre_batches_arrive_whole_with_their_source() {
    let pair = pair("batch");
    // More than two sendmmsg chunks, of sizes from empty to 1400 octets.
    let count = 2 * MMSG_CHUNK + 22;
    let datagrams: Vec<Vec<u8>> = (0..count)
        .map(|n| datagram(n as u32, (n * 97) % 1401))
        .collect();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let (got, sizes, truncated) = std::thread::scope(|scope| {
        let receiving = scope.spawn(|| {
            receiver(
                &pair.b,
                None,
                RecvBatch::new(64, 2048),
                count,
                ready_tx,
                go_rx,
            )
        });
        ready_rx.recv().expect("receiver ready");
        assert_eq!(send_from(&pair.a, A, &datagrams), count);
        // Let the veth deliver everything before the first receive, so it
        // finds a full queue.
        std::thread::sleep(Duration::from_millis(100));
        go_tx.send(()).unwrap();
        receiving.join().unwrap()
    });
    assert_eq!(truncated, 0);
    assert_eq!(got.len(), count, "batches of {sizes:?}");
    for (n, (source, bytes)) in got.iter().enumerate() {
        assert_eq!(*source, A, "datagram {n}");
        assert_eq!(
            bytes, &datagrams[n],
            "datagram {n} arrives whole and in order"
        );
    }
    assert_eq!(sizes[0], 64, "one receive takes a full batch: {sizes:?}");
    assert!(
        sizes.len() <= 4,
        "{count} datagrams in batches of {sizes:?}"
    );
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn gre_datagram_longer_than_a_slot_is_counted_not_cut() {
    let pair = pair("trunc");
    // Slots of 256 octets: 20 of IPv4 header + 12 of GRE + 200 fits,
    // + 600 does not.
    let datagrams = vec![datagram(1, 200), datagram(2, 600), datagram(3, 100)];
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let (got, _, truncated) = std::thread::scope(|scope| {
        let receiving =
            scope.spawn(|| receiver(&pair.b, None, RecvBatch::new(8, 256), 2, ready_tx, go_rx));
        ready_rx.recv().unwrap();
        assert_eq!(send_from(&pair.a, A, &datagrams), 3);
        std::thread::sleep(Duration::from_millis(100));
        go_tx.send(()).unwrap();
        receiving.join().unwrap()
    });
    assert_eq!(truncated, 1);
    let bytes: Vec<&Vec<u8>> = got.iter().map(|(_, b)| b).collect();
    assert_eq!(bytes, vec![&datagrams[0], &datagrams[2]]);
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn connected_gre_socket_hears_only_its_peer() {
    let pair = pair("conn");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let (got, _, _) = std::thread::scope(|scope| {
        let receiving =
            scope.spawn(|| receiver(&pair.b, Some(A), RecvBatch::default(), 2, ready_tx, go_rx));
        ready_rx.recv().unwrap();
        // From another address first, then from the peer.
        assert_eq!(send_from(&pair.a, A2, &[datagram(1, 10)]), 1);
        assert_eq!(send_from(&pair.a, A, &[datagram(2, 20)]), 1);
        assert_eq!(send_from(&pair.a, A2, &[datagram(3, 30)]), 1);
        assert_eq!(send_from(&pair.a, A, &[datagram(4, 40)]), 1);
        std::thread::sleep(Duration::from_millis(100));
        go_tx.send(()).unwrap();
        receiving.join().unwrap()
    });
    assert_eq!(
        got,
        vec![(A, datagram(2, 20)), (A, datagram(4, 40))],
        "only the peer's datagrams"
    );
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn send_to_sends_one_datagram() {
    let pair = pair("sendto");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let (got, _, _) = std::thread::scope(|scope| {
        let receiving =
            scope.spawn(|| receiver(&pair.b, None, RecvBatch::default(), 1, ready_tx, go_rx));
        ready_rx.recv().unwrap();
        pair.a.run(|| {
            block_on(async {
                let socket = GreSocket::open().unwrap();
                let d = datagram(9, 3);
                assert_eq!(socket.send_to(&d, B).unwrap(), d.len());
            })
        });
        go_tx.send(()).unwrap();
        receiving.join().unwrap()
    });
    assert_eq!(got, vec![(A, datagram(9, 3))]);
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn flush_fails_one_datagram_and_sends_the_rest() {
    let pair = pair("fail");
    // 192.0.2.1 (TEST-NET-1) has no route in namespace a: the kernel
    // refuses that datagram (ENETUNREACH) and nothing leaves for it.
    let nowhere = Ipv4Addr::new(192, 0, 2, 1);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let (got, _, _) = std::thread::scope(|scope| {
        let receiving =
            scope.spawn(|| receiver(&pair.b, None, RecvBatch::default(), 2, ready_tx, go_rx));
        ready_rx.recv().unwrap();
        pair.a.run(|| {
            block_on(async {
                let socket = GreSocket::open().unwrap();
                let mut batch = SendBatch::default();
                batch.push(B, &datagram(1, 1));
                batch.push(nowhere, &datagram(2, 2));
                batch.push(B, &datagram(3, 3));
                let e = socket.flush(&mut batch).unwrap_err();
                assert!(e.to_string().contains("192.0.2.1"), "{e}");
                assert_eq!(e.raw_os_error(), None, "wrapped with the destination");
                assert!(e.to_string().contains("unreachable"), "ENETUNREACH: {e}");
                assert!(batch.is_empty());
                assert_eq!((batch.sent(), batch.failed(), batch.dropped()), (2, 1, 0));
            })
        });
        go_tx.send(()).unwrap();
        receiving.join().unwrap()
    });
    assert_eq!(got, vec![(A, datagram(1, 1)), (A, datagram(3, 3))]);
}

#[test]
#[ignore = "needs root and network namespaces (scripts/test.sh runs it)"]
fn connected_socket_hears_protocol_unreachable_once() {
    let pair = pair("unreach");
    // Nothing takes GRE in b: its kernel answers ICMP protocol unreachable
    // (RFC 1122 section 3.2.2.1), which a connected raw socket hears.
    pair.a.run(|| {
        block_on(async {
            let socket = GreSocket::open().unwrap();
            socket.connect(B).unwrap();
            socket.send_to(&datagram(1, 1), B).unwrap();
            let mut batch = RecvBatch::default();
            // The error alone wakes the receive.
            let e = tokio::time::timeout(Duration::from_secs(2), socket.recv_batch(&mut batch))
                .await
                .expect("an error within 2 s")
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT), "{e}");
            // Once: the socket goes on.
            match socket.try_recv_batch(&mut batch) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("{other:?}"),
            }
            assert_eq!(socket.send_to(&datagram(2, 2), B).unwrap(), 14);
        })
    });
}
