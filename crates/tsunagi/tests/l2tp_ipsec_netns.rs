//! L2TP/IPsec (seed 002): tsunagi's LAC with `ipsec = "CONN"` (its L2TP
//! through an IKEv1 transport-mode conn, `left = "%defaultroute"`) against
//! tsunagi's LNS with `ipsec = "CONN"` (`right = "%any"`, only L2TP that
//! came through the conn), every host a network namespace of its own,
//! every daemon a real `tsunagi run`. The server is 203.0.113.1 (seed
//! 002's `e.f.g.h`), its pool 10.99.0.10-99 behind 10.99.0.1:
//!
//! ```text
//! one client:     c0 192.168.1.10 ── 192.168.1.1 nat 203.0.113.2 ── 203.0.113.1 srv
//!
//! three clients:  c0 192.168.1.10 ── 192.168.1.1 h0 100.64.0.10 ─┐
//!                 c1 192.168.1.10 ── 192.168.1.1 h1 100.64.0.11 ─┼─ br0 100.64.0.1 nat 203.0.113.2 ── 203.0.113.1 srv
//!                 c2 192.168.1.11 ── 192.168.1.1 h2 100.64.0.12 ─┘
//! ```
//!
//! Every NAT masquerades (`nat` is a carrier-grade NAT in the second
//! picture, the `h*` home routers): two clients have the same private
//! address and the same ports, and all three reach the server from one
//! address. `nat` counts what crosses it (nftables): no plain UDP 1701
//! ever, ESP in UDP 4500 always; and it drops packets to or from the pool,
//! as the Internet would, so that only a tunnel reaches the server's
//! `localip` (pings are bound to the client's PPP tun besides).
//!
//! - one client with seed 002's proposals (ike and esp
//!   `3des-sha1-modp1024!`, its link keys: mtu/mru 1410, default_route,
//!   persist): pings the server's `localip` through its PPP session and
//!   sends a TCP stream whose digest arrives intact; the server's `status`
//!   has it under `L2TP/IPsec clients`;
//! - three clients behind one NAT, two of them 192.168.1.10 behind their
//!   own home NATs, each with other proposals: each its own IKE SA, IPsec
//!   SA, L2TP tunnel and pool address, three checked transfers at once;
//! - faults: the server killed (SIGKILL) and then stopped (SIGTERM) and
//!   started again while all three clients send: every client is back by
//!   itself within a bound and passes a checked transfer again; 10 % of
//!   what crosses the NAT dropped each way from the start: IKE, L2TP and
//!   PPP still come up and carry a checked transfer.
//!
//! Needs root (namespaces, tuns, nftables): `#[ignore]`d, run by
//! scripts/test.sh.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::netns::{enter, run, veth};
use support::transfer::{digest_server, send_checked};
use support::{require_netns, wait_for, Guard, Side};

/// The server's outer address (seed 002's `right`).
const SERVER: &str = "203.0.113.1";
/// The server's end of every PPP session (`localip`).
const LOCALIP: &str = "10.99.0.1";
/// Where the server's digest sink listens, inside the tunnels.
const SINK: &str = "10.99.0.1:7000";
/// The pre-shared key of the conns.
const PSK: &str = "l2tp/ipsec k3y";

/// The server's side in the guard, and the NAT next to it.
const SRV: usize = 0;
const NAT: usize = 1;

/// Seed 002's proposals (IDCF's Openswan: 3DES, SHA-1, MODP-1024).
const SEED_002: (&str, &str) = ("3des-sha1-modp1024!", "3des-sha1-modp1024!");

/// The server's `esp`: the plan's (what built-in clients propose, no PFS)
/// and seed 002's with its PFS group. A responder takes an offered
/// proposal only with the same PFS group as one of its own (as strongSwan
/// does): without `3des-sha1-modp1024` here, the seed's Quick Mode
/// (`esp = "3des-sha1-modp1024!"`) is refused with NO_PROPOSAL_CHOSEN.
const SERVER_ESP: &str = "aes256-sha1,aes128-sha1,3des-sha1,3des-sha1-modp1024";

/// What the NAT next to the server counts on the traffic it forwards:
/// plain L2TP (UDP 1701 either way), ESP in UDP 4500 and raw ESP. And
/// what it drops: packets for the pool, which the Internet would not
/// route either (otherwise a client whose tunnel is down would still
/// reach the server's `localip` by its outer address, and a ping or
/// transfer would pass without the tunnel).
const WATCH_NFT: &str = "table inet watch {
 counter plain_l2tp {}
 counter esp_in_udp {}
 counter raw_esp {}
 counter not_routed {}
 chain through {
  type filter hook forward priority 0; policy accept;
  ip daddr 10.99.0.0/24 counter name not_routed drop
  ip saddr 10.99.0.0/24 counter name not_routed drop
  udp dport 1701 counter name plain_l2tp
  udp sport 1701 counter name plain_l2tp
  udp dport 4500 counter name esp_in_udp
  udp sport 4500 counter name esp_in_udp
  meta l4proto esp counter name raw_esp
 }
}
";

/// 10 % of what the NAT forwards dropped, each way (`lan0`: from the
/// clients, `wan0`: from the server), before anything else sees it.
const LOSS_NFT: &str = "table inet faults {
 counter lost_up {}
 counter lost_down {}
 chain through {
  type filter hook forward priority -10; policy accept;
  iifname \"lan0\" numgen random mod 10 == 0 counter name lost_up drop
  iifname \"wan0\" numgen random mod 10 == 0 counter name lost_down drop
 }
}
";

/// A masquerade of what leaves through `wan0`.
const MASQ_NFT: &str = "table ip masq {
 chain post {
  type nat hook postrouting priority 100;
  oifname \"wan0\" masquerade
 }
}
";

/// The namespaces of a test and which of them are the clients.
struct Net {
    guard: Guard,
    clients: Vec<usize>,
}

impl Net {
    fn client(&self, i: usize) -> &Side {
        &self.guard.sides[self.clients[i]]
    }

    fn server(&self) -> &Side {
        &self.guard.sides[SRV]
    }
}

/// Loads `rules` into namespace `ns` (through a file in the scratch
/// directory named `file`).
fn nft(guard: &Guard, ns: &str, file: &str, rules: &str) {
    let path = guard.dir.join(file);
    std::fs::write(&path, rules).unwrap();
    run(ns, &["nft", "-f", path.to_str().unwrap()]);
}

/// The namespaces drawn in the module docs: with one private address the
/// client sits directly behind `nat`; with more, each client behind a home
/// NAT of its own on `nat`'s bridge. `privates`: the clients' addresses
/// in 192.168.1.0/24.
fn topology(name: &str, privates: &[&str]) -> Net {
    const TAGS: [(&str, &str); 3] = [("c0", "h0"), ("c1", "h1"), ("c2", "h2")];
    assert!(privates.len() <= TAGS.len());
    let mut tags = vec!["srv", "nat"];
    for &(c, h) in &TAGS[..privates.len()] {
        tags.push(c);
        if privates.len() > 1 {
            tags.push(h);
        }
    }
    let prefix = format!("tq{}{name}", std::process::id() % 100_000);
    let guard = Guard::with_sides(
        &format!("tsunagi-l2tp-ipsec-{name}-{}", std::process::id()),
        &prefix,
        &tags,
    );
    let ns = |i: usize| guard.sides[i].ns.clone();
    let (srv, nat) = (ns(SRV), ns(NAT));
    veth(
        &srv,
        "eth0",
        &format!("{SERVER}/24"),
        &nat,
        "wan0",
        "203.0.113.2/24",
    );
    run(&nat, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    let mut clients = Vec::new();
    if let [private] = privates {
        let c = ns(2);
        veth(
            &c,
            "eth0",
            &format!("{private}/24"),
            &nat,
            "lan0",
            "192.168.1.1/24",
        );
        run(&c, &["ip", "route", "add", "default", "via", "192.168.1.1"]);
        clients.push(2);
    } else {
        // The carrier's access network: a bridge with one port per home.
        run(&nat, &["ip", "link", "add", "lan0", "type", "bridge"]);
        run(&nat, &["ip", "addr", "add", "100.64.0.1/24", "dev", "lan0"]);
        run(&nat, &["ip", "link", "set", "lan0", "up"]);
        for (i, private) in privates.iter().enumerate() {
            let (c, h) = (ns(2 + 2 * i), ns(3 + 2 * i));
            let port = format!("p{i}");
            veth(
                &nat,
                &port,
                "",
                &h,
                "wan0",
                &format!("100.64.0.{}/24", 10 + i),
            );
            run(&nat, &["ip", "link", "set", &port, "master", "lan0"]);
            run(&h, &["ip", "route", "add", "default", "via", "100.64.0.1"]);
            run(&h, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
            veth(
                &c,
                "eth0",
                &format!("{private}/24"),
                &h,
                "lan0",
                "192.168.1.1/24",
            );
            run(&c, &["ip", "route", "add", "default", "via", "192.168.1.1"]);
            nft(&guard, &h, &format!("home{i}.nft"), MASQ_NFT);
            clients.push(2 + 2 * i);
        }
    }
    nft(&guard, &nat, "nat.nft", &format!("{WATCH_NFT}{MASQ_NFT}"));
    Net { guard, clients }
}

/// The packets of counter `name` of table `table` in namespace `side`.
fn counter(side: &Side, table: &str, name: &str) -> u64 {
    let out = side.exec(&["nft", "-j", "list", "counter", "inet", table, name]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("nft -j: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    v["nftables"]
        .as_array()
        .and_then(|a| a.iter().find_map(|o| o["counter"]["packets"].as_u64()))
        .unwrap_or_else(|| panic!("no counter {table} {name} in {v}"))
}

/// Writes `text` to `name` in the scratch directory, mode 0600; its path.
fn secret_file(guard: &Guard, name: &str, text: &str) -> String {
    let path = guard.dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// The server's config (the plan's, for built-in clients): chap-secrets
/// for users `u0`..`u2`, the PSK for `%any`.
fn server_config(guard: &Guard) -> String {
    let mut users = String::from("# client server secret addresses\n");
    for i in 0..3 {
        users.push_str(&format!("u{i} * \"pw{i}\" *\n"));
    }
    let chap = secret_file(guard, "chap-secrets", &users);
    let psk = secret_file(
        guard,
        "srv.ipsec.secrets",
        &format!("%any : PSK \"{PSK}\"\n"),
    );
    format!(
        "secrets = \"{chap}\"
ipsec_secrets = \"{psk}\"

[ipsec.l2tp]
left = \"{SERVER}\"
right = \"%any\"
type = \"transport\"
leftprotoport = \"17/1701\"
rightprotoport = \"17/%any\"
ike = \"aes256-sha1-modp2048,aes128-sha1-modp2048,3des-sha1-modp2048,3des-sha1-modp1024\"
esp = \"{SERVER_ESP}\"
auto = \"add\"

[server.lns]
protocol = \"l2tp\"
listen = \"{SERVER}\"
ipsec = \"l2tp\"
localip = \"{LOCALIP}\"
remoteip = \"10.99.0.10-99\"
dns = [\"{LOCALIP}\"]
"
    )
}

/// A client's config: seed 002's conn `idcf` and link `idcf` with
/// `proposals` (ike, esp), user `u{i}`, its redial wait, and `extra` link
/// keys.
fn client_config(
    guard: &Guard,
    i: usize,
    proposals: (&str, &str),
    redial_timeout: u32,
    extra: &str,
) -> String {
    let psk = secret_file(
        guard,
        &format!("c{i}.ipsec.secrets"),
        &format!("{SERVER} : PSK \"{PSK}\"\n"),
    );
    format!(
        "ipsec_secrets = \"{psk}\"

[ipsec.idcf]
left = \"%defaultroute\"
right = \"{SERVER}\"
type = \"transport\"
leftprotoport = \"17/1701\"
rightprotoport = \"17/1701\"
authby = \"secret\"
ike = \"{}\"
esp = \"{}\"
keyingtries = 0
leftfirewall = true
auto = \"start\"

[link.idcf]
mode = \"l2tp\"
lns = \"{SERVER}\"
ipsec = \"idcf\"
user = \"u{i}\"
password = \"pw{i}\"
mtu = 1410
mru = 1410
persist = true
redial_timeout = {redial_timeout}
max_redials = 6
{extra}",
        proposals.0, proposals.1
    )
}

/// The server's `l2tp_ipsec_clients`.
fn server_clients(net: &Net) -> Vec<serde_json::Value> {
    net.server().status_all()["l2tp_ipsec_clients"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Client `i`'s link (`status --json`).
fn link(net: &Net, i: usize) -> serde_json::Value {
    net.client(i).status()[0].clone()
}

/// The tun of the clients' link `idcf`.
const CLIENT_TUN: &str = "ts-idcf";

/// One ping from client `i` to the server's `localip` through the PPP
/// session (bound to its tun); whether it was answered.
fn ping_once(net: &Net, i: usize) -> bool {
    net.client(i)
        .exec(&["ping", "-c", "1", "-W", "1", "-I", CLIENT_TUN, LOCALIP])
        .status
        .success()
}

/// Every client up (IPCP) and answered through its tunnel, within `limit`.
fn wait_all_up(net: &Net, limit: Duration, what: &str) {
    let n = net.clients.len();
    let mut up = vec![false; n];
    wait_for(limit, what, || {
        for (i, up) in up.iter_mut().enumerate() {
            if !*up {
                *up = net.client(i).link_address().is_some() && ping_once(net, i);
            }
        }
        up.iter().all(|&u| u)
    });
}

/// Checked transfers of `len` bytes from every client at once.
fn transfers(net: &Net, len: usize, seed: u64) {
    let to: SocketAddr = SINK.parse().unwrap();
    let results: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..net.clients.len())
            .map(|i| {
                let ns = net.client(i).ns.clone();
                scope.spawn(move || send_checked(&ns, to, seed + i as u64, len))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(d) => eprintln!("client {i}: {len} bytes through its tunnel, digest {d:016x}"),
            Err(e) => panic!("client {i}: {e}"),
        }
    }
}

/// No plain UDP 1701 crossed the NAT next to the server, and ESP in UDP
/// 4500 did.
fn only_esp_in_udp_crossed(net: &Net) {
    let nat = &net.guard.sides[NAT];
    let (plain, natt, raw) = (
        counter(nat, "watch", "plain_l2tp"),
        counter(nat, "watch", "esp_in_udp"),
        counter(nat, "watch", "raw_esp"),
    );
    let stray = counter(nat, "watch", "not_routed");
    eprintln!(
        "through the NAT: {plain} plain L2TP, {natt} ESP in UDP 4500, {raw} raw ESP; \
         {stray} packets from or to the pool outside the tunnels dropped"
    );
    assert_eq!(plain, 0, "plain UDP 1701 crossed the NAT");
    assert_eq!(raw, 0, "raw ESP: every client is behind a NAT");
    assert!(natt >= 20, "ESP in UDP 4500: {natt} packets");
}

/// The pool addresses of the server's L2TP/IPsec clients (each with its
/// IKE SA, IPsec SA and PPP session) and of the clients' links; checks
/// that they agree and are pairwise distinct.
fn distinct_pool_addresses(net: &Net) -> Vec<String> {
    let served = server_clients(net);
    for c in &served {
        assert_eq!(c["ike"]["state"], "ESTABLISHED", "{c:#}");
        assert_eq!(c["child"]["state"], "INSTALLED", "{c:#}");
        assert_eq!(c["session"]["phase"], "network", "{c:#}");
    }
    let mut server: Vec<String> = served
        .iter()
        .filter_map(|c| c["session"]["peer_addr"].as_str().map(str::to_string))
        .collect();
    let mut clients: Vec<String> = (0..net.clients.len())
        .map(|i| net.client(i).link_address().expect("client up"))
        .collect();
    server.sort();
    clients.sort();
    assert_eq!(server, clients, "the server's clients: {served:#?}");
    let mut distinct = clients.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), net.clients.len(), "{clients:?}");
    for a in &clients {
        assert!(a.starts_with("10.99.0."), "{a}");
    }
    clients
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn a_client_through_a_nat_with_seed_002s_conn_and_link() {
    require_netns(&["nft"]);
    let mut net = topology("a", &["192.168.1.10"]);
    let srv = server_config(&net.guard);
    net.guard.sides[SRV].start(&srv);
    digest_server(&net.server().ns, SINK.parse().unwrap());
    let cl = net.clients[0];
    let cfg = client_config(&net.guard, 0, SEED_002, 10, "default_route = true\n");
    net.guard.sides[cl].start(&cfg);
    wait_all_up(&net, Duration::from_secs(60), "the client up");
    // default_route: the tunnel is the default route, the server's own
    // address stays on the way through the NAT.
    let routes = net.client(0).exec(&["ip", "route"]);
    let routes = String::from_utf8_lossy(&routes.stdout).to_string();
    eprintln!("client's routes:\n{routes}");
    let via = net.client(0).exec(&["ip", "route", "get", SERVER]);
    let via = String::from_utf8_lossy(&via.stdout).to_string();
    assert!(via.contains("via 192.168.1.1"), "{via}");
    let tun = net.client(0).exec(&["ip", "link", "show", CLIENT_TUN]);
    let tun = String::from_utf8_lossy(&tun.stdout).to_string();
    assert!(tun.contains("mtu 1410"), "seed 002's mtu 1410: {tun}");
    transfers(&net, 4 << 20, 1);
    assert!(ping_once(&net, 0));
    only_esp_in_udp_crossed(&net);
    let addresses = distinct_pool_addresses(&net);
    let clients = server_clients(&net);
    eprintln!("server's L2TP/IPsec clients: {clients:#?}");
    assert_eq!(clients.len(), 1, "{clients:?}");
    let text = net.server().cli(&["status"]);
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    eprintln!("server's status:\n{text}");
    assert!(text.contains("L2TP/IPsec clients"), "{text}");
    assert!(text.contains(&addresses[0]), "{text}");
    // The client saw the NAT: its SA is ESP in UDP.
    let status = net.client(0).status_all();
    let child = &status["ipsec"][0]["child_sas"][0];
    assert_eq!(child["udp_encap"], true, "{status}");
    // Seed 002's esp names a group: PFS in Quick Mode.
    assert_eq!(
        child["proposal"], "3DES_CBC/HMAC_SHA1_96/MODP_1024",
        "{status}"
    );
    for side in net.guard.sides.iter_mut() {
        side.stop();
    }
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn three_clients_behind_one_nat_two_with_the_same_private_address() {
    require_netns(&["nft"]);
    let mut net = topology("b", &["192.168.1.10", "192.168.1.10", "192.168.1.11"]);
    let srv = server_config(&net.guard);
    net.guard.sides[SRV].start(&srv);
    digest_server(&net.server().ns, SINK.parse().unwrap());
    // Seed 002's proposals, then what Windows and macOS propose first.
    let proposals = [
        SEED_002,
        ("aes128-sha1-modp2048!", "aes128-sha1!"),
        ("aes256-sha1-modp2048!", "aes256-sha1!"),
    ];
    for (i, p) in proposals.into_iter().enumerate() {
        let cfg = client_config(&net.guard, i, p, 10, "");
        let side = net.clients[i];
        net.guard.sides[side].start(&cfg);
    }
    wait_all_up(&net, Duration::from_secs(90), "three clients up");
    transfers(&net, 4 << 20, 10);
    only_esp_in_udp_crossed(&net);
    let addresses = distinct_pool_addresses(&net);
    eprintln!("pool addresses: {addresses:?}");
    let clients = server_clients(&net);
    eprintln!("server's L2TP/IPsec clients: {clients:#?}");
    assert_eq!(clients.len(), 3, "{clients:?}");
    // L2TP knows each by its own address and port: the two clients of
    // 192.168.1.10 both send from port 1701, one of them is given another.
    let mut seen: Vec<&str> = clients
        .iter()
        .filter_map(|c| c["seen_as"].as_str())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "{clients:#?}");
    // Each its own IKE SA and IPsec SA, all from the one NAT address.
    let status = net.server().status_all();
    let conn = &status["ipsec"][0];
    let mut remotes: Vec<&str> = conn["ike_sas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|sa| sa["state"] == "ESTABLISHED")
        .map(|sa| sa["remote"].as_str().unwrap())
        .collect();
    eprintln!("server's IKE SAs from: {remotes:?}");
    assert_eq!(remotes.len(), 3, "{conn}");
    assert!(
        remotes.iter().all(|r| r.starts_with("203.0.113.2:")),
        "{remotes:?}"
    );
    remotes.sort();
    remotes.dedup();
    assert_eq!(remotes.len(), 3, "three NAT mappings: {conn}");
    assert_eq!(conn["child_sas"].as_array().unwrap().len(), 3, "{conn}");
    let tunnels = status["servers"][0]["tunnels"].as_array().unwrap();
    assert_eq!(
        tunnels
            .iter()
            .filter(|t| t["state"] == "established")
            .count(),
        3,
        "{status}"
    );
    for side in net.guard.sides.iter_mut() {
        side.stop();
    }
}

/// A TCP stream from namespace `ns` to `to` that writes until a write
/// fails (3 s without progress) or `stop` is set, adding what it wrote to
/// `sent`; how it ended.
fn stream(
    ns: String,
    to: SocketAddr,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        enter(&ns);
        let mut conn = match TcpStream::connect_timeout(&to, Duration::from_secs(10)) {
            Ok(c) => c,
            Err(e) => return format!("connect {to}: {e}"),
        };
        conn.set_write_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let buf = vec![0x5a_u8; 16 * 1024];
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = conn.write_all(&buf) {
                return format!("broke after {} bytes: {e}", sent.load(Ordering::Relaxed));
            }
            sent.fetch_add(buf.len() as u64, Ordering::Relaxed);
        }
        format!("stopped after {} bytes", sent.load(Ordering::Relaxed))
    })
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn every_client_comes_back_after_the_server_is_killed_mid_transfer() {
    require_netns(&["nft"]);
    let mut net = topology("c", &["192.168.1.10", "192.168.1.10", "192.168.1.11"]);
    let srv = server_config(&net.guard);
    net.guard.sides[SRV].start(&srv);
    // The sink outlives the server's restarts: its socket stays bound to
    // 10.99.0.1, which comes back with each server's tun.
    digest_server(&net.server().ns, SINK.parse().unwrap());
    // A dead server noticed in about 4 s (LCP echoes), 2 s before each
    // redial.
    for i in 0..3 {
        let cfg = client_config(
            &net.guard,
            i,
            SEED_002,
            2,
            "echo_interval = 1\necho_failure = 3\n",
        );
        let side = net.clients[i];
        net.guard.sides[side].start(&cfg);
    }
    wait_all_up(&net, Duration::from_secs(90), "three clients up");
    // Noticing (echoes: 4 s; a clean stop: at once) + redial_timeout
    // (2 s) + IKE, L2TP and PPP (1-2 s, much more on a loaded machine).
    let bound = Duration::from_secs(60);
    let to: SocketAddr = SINK.parse().unwrap();
    for (round, how) in ["killed", "stopped"].into_iter().enumerate() {
        let redials: Vec<u64> = (0..3)
            .map(|i| link(&net, i)["redials"].as_u64().unwrap_or(0))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let sent: Vec<Arc<AtomicU64>> = (0..3).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let streams: Vec<_> = (0..3)
            .map(|i| stream(net.client(i).ns.clone(), to, sent[i].clone(), stop.clone()))
            .collect();
        wait_for(Duration::from_secs(30), "every stream under way", || {
            sent.iter().all(|s| s.load(Ordering::Relaxed) >= 1 << 20)
        });
        let socket = net.server().socket();
        if how == "killed" {
            let mut child = net.guard.sides[SRV].daemon.take().unwrap();
            child.kill().unwrap();
            child.wait().unwrap();
        } else {
            assert_eq!(net.guard.sides[SRV].stop(), Some(0), "a clean stop");
        }
        let _ = std::fs::remove_file(&socket);
        let gone = Instant::now();
        net.guard.sides[SRV].start(&srv);
        wait_all_up(&net, bound, "every client back");
        let back = gone.elapsed();
        stop.store(true, Ordering::Relaxed);
        for (i, s) in streams.into_iter().enumerate() {
            eprintln!("round {round}: client {i}'s stream {}", s.join().unwrap());
        }
        for (i, &before) in redials.iter().enumerate() {
            let l = link(&net, i);
            assert!(
                l["redials"].as_u64().unwrap_or(0) > before,
                "client {i} redialled: {l}"
            );
        }
        eprintln!("round {round}: server {how}, every client back in {back:?}");
        transfers(&net, 1 << 20, 20 + 3 * round as u64);
        distinct_pool_addresses(&net);
        assert_eq!(server_clients(&net).len(), 3);
    }
    only_esp_in_udp_crossed(&net);
    // The last server stops cleanly and leaves no steering rule behind
    // (nor did the one killed before it).
    assert_eq!(net.guard.sides[SRV].stop(), Some(0));
    let rules = net.server().exec(&["ip", "rule"]);
    let rules = String::from_utf8_lossy(&rules.stdout).to_string();
    assert!(!rules.contains("sport 1701"), "{rules}");
    for side in net.guard.sides.iter_mut() {
        side.stop();
    }
}

#[test]
#[ignore = "needs root: run through scripts/test.sh"]
fn ten_percent_loss_each_way_still_brings_the_stack_up() {
    require_netns(&["nft"]);
    let mut net = topology("d", &["192.168.1.10"]);
    // From the start: Main Mode, Quick Mode, the L2TP tunnel and PPP all
    // go through the loss.
    let nat = net.guard.sides[NAT].ns.clone();
    nft(&net.guard, &nat, "loss.nft", LOSS_NFT);
    // The daemons send ESP in UDP in GSO trains: segmented before the NAT,
    // so that a drop there is one packet of the wire, not a train.
    for side in [SRV, net.clients[0]] {
        run(
            &net.guard.sides[side].ns,
            &["ip", "link", "set", "dev", "eth0", "gso_max_segs", "1"],
        );
    }
    let srv = server_config(&net.guard);
    net.guard.sides[SRV].start(&srv);
    digest_server(&net.server().ns, SINK.parse().unwrap());
    let cfg = client_config(&net.guard, 0, SEED_002, 2, "");
    let cl = net.clients[0];
    let started = Instant::now();
    net.guard.sides[cl].start(&cfg);
    wait_all_up(
        &net,
        Duration::from_secs(120),
        "the client up through the loss",
    );
    eprintln!(
        "up through 10 % loss each way in {:?} ({} redials)",
        started.elapsed(),
        link(&net, 0)["redials"]
    );
    let started = Instant::now();
    transfers(&net, 1 << 20, 30);
    eprintln!("1 MiB through the loss in {:?}", started.elapsed());
    let nat = &net.guard.sides[NAT];
    let (up, down) = (
        counter(nat, "faults", "lost_up"),
        counter(nat, "faults", "lost_down"),
    );
    eprintln!("lost: {up} from the client, {down} from the server");
    assert!(up > 0 && down > 0, "both directions lost packets");
    only_esp_in_udp_crossed(&net);
    for side in net.guard.sides.iter_mut() {
        side.stop();
    }
}
