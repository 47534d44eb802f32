//! Holes for a PPTP server (TCP 1723 and GRE) in table `inet tsunagi`,
//! against the real kernel: a client namespace and a server namespace
//! joined by a veth pair; the server's policy blocks all input (`block in
//! all`), and the holes let the client's TCP connection and raw GRE (sent
//! and received with `tsunagi_host::gre`) through until they are closed.
//! Without a policy, the first hole makes the table and the last removes
//! it; a policy applied while holes are open keeps them; a kept policy
//! keeps no hole.
//!
//! Needs root and `nft`: `#[ignore]`d, run by `scripts/test.sh`
//! (`--include-ignored`).

mod support;

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use support::{block_on, require_netns, run, Netns};
use tsunagi_host::gre::{GreSocket, RecvBatch};
use tsunagi_host::holes::{hole_counts, Hole, HoleMode, HoleProtocol, HoleSet};
use tsunagi_host::nft;
use tsunagi_host::policy_apply::{remove, LoadedPolicy};
use tsunagi_policy::{compile, parse_ipf, IfaceMap, IpnatRules, Options};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 48, 0, 1);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 48, 0, 2);
/// A second address of the server, for a hole narrowed to it.
const SERVER2: Ipv4Addr = Ipv4Addr::new(10, 48, 0, 3);
/// How long a blocked probe waits before it says "blocked".
const BLOCKED_WAIT: Duration = Duration::from_millis(500);

struct Lab {
    client: Netns,
    server: Netns,
    /// TCP 1723 on the server, never accepted from: the kernel completes
    /// the handshake into the backlog, which is all a probe needs.
    _listener: TcpListener,
}

fn lab(test: &str) -> Lab {
    require_netns(&["nft"]);
    let client = Netns::create("tshole-c", test).with_loopback();
    let server = Netns::create("tshole-s", test).with_loopback();
    client.ip(&[
        "link", "add", "hole-c", "type", "veth", "peer", "name", "hole-s",
    ]);
    client.ip(&["link", "set", "hole-s", "netns", &server.name]);
    client.ip(&["addr", "add", "10.48.0.1/24", "dev", "hole-c"]);
    server.ip(&["addr", "add", "10.48.0.2/24", "dev", "hole-s"]);
    server.ip(&["addr", "add", "10.48.0.3/24", "dev", "hole-s"]);
    client.ip(&["link", "set", "hole-c", "up"]);
    server.ip(&["link", "set", "hole-s", "up"]);
    client.wait_link_up("hole-c");
    server.wait_link_up("hole-s");
    let listener = server.run(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, 1723)).expect("listen"));
    Lab {
        client,
        server,
        _listener: listener,
    }
}

impl Lab {
    /// Whether a TCP handshake from the client to `to`:1723 completes.
    fn tcp_connects(&self, to: Ipv4Addr) -> bool {
        self.client.run(|| {
            let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
            s.connect_timeout(&SockAddr::from(SocketAddrV4::new(to, 1723)), BLOCKED_WAIT)
                .is_ok()
        })
    }

    /// Whether a GRE datagram from the client reaches a GRE socket on the
    /// server.
    fn gre_arrives(&self) -> bool {
        let marker = [0x30, 0x01, 0x88, 0x0b, 0, 4, 0, 9, b'h', b'o', b'l', b'e'];
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::scope(|scope| {
            let receiving = scope.spawn(|| {
                self.server.run(|| {
                    block_on(async {
                        let socket = GreSocket::open().expect("GRE socket");
                        ready_tx.send(()).unwrap();
                        let mut batch = RecvBatch::default();
                        loop {
                            match tokio::time::timeout(BLOCKED_WAIT, socket.recv_batch(&mut batch))
                                .await
                            {
                                Err(_) => return false,
                                Ok(r) => {
                                    r.expect("recv_batch");
                                    if batch
                                        .iter()
                                        .any(|d| d.source == CLIENT && d.payload() == Some(&marker))
                                    {
                                        return true;
                                    }
                                }
                            }
                        }
                    })
                })
            });
            ready_rx.recv().unwrap();
            self.client.run(|| {
                block_on(async {
                    let socket = GreSocket::open().expect("GRE socket");
                    socket.send_to(&marker, SERVER).expect("send GRE");
                })
            });
            receiving.join().unwrap()
        })
    }

    fn table_exists(&self) -> bool {
        self.server
            .run(|| nft::table_exists("inet", "tsunagi"))
            .expect("nft list table")
    }

    fn services_chain(&self) -> String {
        nft_list(&self.server, &["chain", "inet", "tsunagi", "services"])
    }
}

/// `nft list WHAT...` in `ns`.
fn nft_list(ns: &Netns, what: &[&str]) -> String {
    let mut args = vec!["netns", "exec", &ns.name, "nft", "list"];
    args.extend_from_slice(what);
    run("ip", &args)
}

/// `block in all` compiled as the daemon loads a policy.
fn block_in_all() -> LoadedPolicy {
    let ipf = parse_ipf("block in all\n").unwrap();
    let ipnat = IpnatRules::default();
    let map = IfaceMap::identity(&ipf, &ipnat);
    let compiled = compile(&ipf, &ipnat, &map, &Options::default()).unwrap();
    LoadedPolicy {
        ipf,
        ipnat,
        map,
        compiled,
    }
}

fn pptp() -> Vec<Hole> {
    Hole::pptp(None).to_vec()
}

/// Removes tsunagi's tables in the server namespace on drop (the
/// namespace itself goes with its `Netns`).
struct RemoveTables<'a>(&'a Netns);

impl Drop for RemoveTables<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(remove);
    }
}

#[test]
#[ignore = "needs root, network namespaces and nft (scripts/test.sh runs it)"]
fn holes_let_pptp_through_a_blocking_policy() {
    let lab = lab("policy");
    let _cleanup = RemoveTables(&lab.server);
    let s = &lab.server;
    let mut holes = HoleSet::new();
    let policy = block_in_all();

    // Before any policy: open.
    assert!(lab.tcp_connects(SERVER));
    s.run(|| holes.apply_policy(&policy)).expect("apply policy");
    assert_eq!(holes.mode(), HoleMode::Policy);
    assert!(!lab.tcp_connects(SERVER), "block in all blocks TCP 1723");
    assert!(!lab.gre_arrives(), "block in all blocks GRE");

    s.run(|| holes.open("vpn", &pptp())).expect("open holes");
    assert!(lab.tcp_connects(SERVER), "hole: TCP 1723 passes");
    assert!(lab.gre_arrives(), "hole: GRE passes");
    let chain = lab.services_chain();
    assert!(chain.contains("tcp dport 1723"), "{chain}");
    assert!(chain.contains("meta l4proto gre"), "{chain}");
    let counts = s.run(hole_counts).expect("counters");
    let names: Vec<&str> = counts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["hole_vpn_pptp_ip47", "hole_vpn_pptp_tcp1723"]);
    assert!(counts.iter().all(|(_, c)| c.packets >= 1), "{counts:?}");
    // Opening them again changes nothing (not even the counters).
    s.run(|| holes.open("vpn", &pptp())).expect("open again");
    assert_eq!(s.run(hole_counts).unwrap(), counts);

    // The policy applied again (a restart or reload) keeps the holes.
    s.run(|| holes.apply_policy(&policy)).expect("apply again");
    assert!(lab.tcp_connects(SERVER), "holes survive a policy start");
    assert!(lab.gre_arrives());

    // Closed: blocked again, counters gone.
    s.run(|| holes.close("vpn")).expect("close");
    assert!(!lab.tcp_connects(SERVER), "closed: TCP blocked again");
    assert!(!lab.gre_arrives(), "closed: GRE blocked again");
    assert_eq!(s.run(hole_counts).unwrap(), vec![]);
    s.run(|| holes.close("vpn")).expect("closing twice is fine");

    // A hole narrowed to the other address does not open this one.
    let narrowed = Hole::pptp(Some(SERVER2)).to_vec();
    s.run(|| holes.open("vpn", &narrowed))
        .expect("open narrowed");
    assert!(!lab.tcp_connects(SERVER), "a hole for {SERVER2} only");
    assert!(lab.tcp_connects(SERVER2));

    // The policy stops with keep_on_exit while the hole is open: the
    // filter stays, the hole does not.
    s.run(|| holes.policy_stopped(true))
        .expect("policy stopped");
    assert_eq!(holes.mode(), HoleMode::Stopped);
    assert!(lab.table_exists(), "kept");
    assert!(!lab.tcp_connects(SERVER2), "no hole left in a kept filter");
    assert_eq!(s.run(hole_counts).unwrap(), vec![]);
    // A server closing after that changes nothing in the kernel.
    s.run(|| holes.close("vpn")).expect("close after stop");
    assert!(lab.table_exists());

    // Without keep_on_exit the tables go.
    let mut holes = HoleSet::new();
    s.run(|| holes.apply_policy(&policy)).unwrap();
    s.run(|| holes.open("vpn", &pptp())).unwrap();
    s.run(|| holes.policy_stopped(false))
        .expect("policy stopped");
    assert!(!lab.table_exists());
}

#[test]
#[ignore = "needs root, network namespaces and nft (scripts/test.sh runs it)"]
fn holes_without_a_policy_have_a_table_of_their_own() {
    let lab = lab("alone");
    let _cleanup = RemoveTables(&lab.server);
    let s = &lab.server;
    let mut holes = HoleSet::new();
    let l2tp = [Hole {
        name: "l2tp".into(),
        protocol: HoleProtocol::Udp { port: 1701 },
        local: None,
        remote: None,
    }];

    assert!(!lab.table_exists());
    s.run(|| holes.open("vpn", &pptp())).expect("open");
    assert!(lab.table_exists(), "the first hole makes the table");
    let table = nft_list(s, &["table", "inet", "tsunagi"]);
    assert!(
        table.contains("chain in {") && table.contains("jump services"),
        "{table}"
    );
    assert!(table.contains("policy accept"), "{table}");
    assert!(lab.tcp_connects(SERVER));
    assert!(lab.gre_arrives());
    assert!(s
        .run(hole_counts)
        .unwrap()
        .iter()
        .all(|(_, c)| c.packets >= 1));

    s.run(|| holes.open("l2tp", &l2tp))
        .expect("a second server");
    s.run(|| holes.close("vpn")).expect("close one");
    assert!(lab.table_exists(), "l2tp's hole is still open");
    s.run(|| holes.close("l2tp")).expect("close the last");
    assert!(!lab.table_exists(), "the last hole removes the table");

    // A policy applied while holes are open takes them over; its stop
    // removes everything.
    s.run(|| holes.open("vpn", &pptp())).unwrap();
    s.run(|| holes.apply_policy(&block_in_all())).unwrap();
    assert!(lab.tcp_connects(SERVER), "holes kept by the policy");
    s.run(|| holes.policy_stopped(false)).unwrap();
    assert!(!lab.table_exists());

    // A table kept by an earlier run is used, not replaced or deleted.
    s.run(|| nft::apply(&block_in_all().compiled.to_json()))
        .unwrap();
    let mut holes = HoleSet::new();
    assert!(!lab.tcp_connects(SERVER), "the kept filter blocks");
    s.run(|| holes.open("vpn", &pptp())).unwrap();
    assert!(lab.tcp_connects(SERVER), "a hole in the kept filter");
    s.run(|| holes.close("vpn")).unwrap();
    assert!(lab.table_exists(), "the kept filter stays");
    assert!(!lab.tcp_connects(SERVER), "and blocks again");
    s.run(remove).unwrap();

    // Shutdown removes a table made for holes.
    let mut holes = HoleSet::new();
    s.run(|| holes.open("vpn", &pptp())).unwrap();
    s.run(|| holes.shutdown()).unwrap();
    assert!(!lab.table_exists());
    s.run(|| holes.close("vpn")).unwrap();
    assert!(!lab.table_exists(), "nothing applied after shutdown");
}
