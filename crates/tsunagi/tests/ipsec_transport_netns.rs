//! IPsec transport mode for the host's own traffic: two `tsunagi run`
//! gateways with seed 002's conn (`type = "transport"`, 17/1701 both
//! sides), a router between them, each a network namespace:
//!
//! ```text
//! gwl 10.201.5.1 ── 10.201.5.254 wire 10.201.6.254 ── 10.201.6.1 gwr
//! ```
//!
//! gwl initiates (`auto = "start"`), gwr answers (`auto = "add"`) and
//! echoes UDP on 10.201.6.1:1701. Datagrams from gwl's port 1701 come
//! back; the ESP counters of both gateways moved; and the wire's nft
//! counters show that no plain UDP 1701 crossed it while ESP did (raw
//! ESP directly; ESP in UDP 4500 when `wire` masquerades gwl, NAT-OA and
//! the checksum fixed for the NAT's address, gwr's `right` then `%any`).
//!
//! Needs root (namespaces, tuns): `#[ignore]`d, run by scripts/test.sh.

mod support;

use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use support::netns::{enter, in_ns, run, veth};
use support::{require_netns, wait_for, Guard};

const GWL: usize = 0;
const GWR: usize = 1;
const WIRE: usize = 2;

/// The wire's counters: plain UDP 1701 either way, ESP, UDP 4500.
const WIRE_NFT: &str = "table inet wire {
 counter plain_l2tp {}
 counter raw_esp {}
 counter esp_in_udp {}
 chain through {
  type filter hook forward priority 0; policy accept;
  udp dport 1701 counter name plain_l2tp
  udp sport 1701 counter name plain_l2tp
  meta l4proto esp counter name raw_esp
  udp dport 4500 counter name esp_in_udp
 }
}
";

fn topology(name: &str, nat: bool) -> Guard {
    let prefix = format!("tt{}{name}", std::process::id() % 100_000);
    let guard = Guard::with_sides(
        &format!("tsunagi-ipsec-transport-{name}-{}", std::process::id()),
        &prefix,
        &["gwl", "gwr", "wire"],
    );
    let ns = |i: usize| guard.sides[i].ns.clone();
    let (gwl, gwr, wire) = (ns(GWL), ns(GWR), ns(WIRE));
    veth(
        &gwl,
        "wan0",
        "10.201.5.1/24",
        &wire,
        "w0",
        "10.201.5.254/24",
    );
    veth(
        &wire,
        "w1",
        "10.201.6.254/24",
        &gwr,
        "wan0",
        "10.201.6.1/24",
    );
    run(
        &gwl,
        &["ip", "route", "add", "default", "via", "10.201.5.254"],
    );
    run(
        &gwr,
        &["ip", "route", "add", "default", "via", "10.201.6.254"],
    );
    run(&wire, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
    let mut rules = WIRE_NFT.to_string();
    if nat {
        rules.push_str("table ip masq {\n chain post {\n  type nat hook postrouting priority 100;\n  oifname \"w1\" masquerade\n }\n}\n");
    }
    let file = guard.dir.join("wire.nft");
    std::fs::write(&file, rules).unwrap();
    run(&wire, &["nft", "-f", file.to_str().unwrap()]);
    guard
}

/// The packets of the wire's counter `name`.
fn wire_packets(guard: &Guard, name: &str) -> u64 {
    let out = guard.sides[WIRE].exec(&["nft", "-j", "list", "counter", "inet", "wire", name]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("nft -j: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    v["nftables"]
        .as_array()
        .and_then(|a| a.iter().find_map(|o| o["counter"]["packets"].as_u64()))
        .unwrap_or_else(|| panic!("no counter {name} in {v}"))
}

fn secrets(guard: &Guard, tag: &str) -> String {
    let path = guard.dir.join(format!("{tag}.secrets"));
    std::fs::write(&path, "left right : PSK \"transport k3y\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// Seed 002's conn between `left` and `right`.
fn conn(left: &str, right: &str, ids: (&str, &str), auto: &str, secrets: &str) -> String {
    format!(
        "[ipsec.l2tp]\nleft = \"{left}\"\nright = \"{right}\"\nleftid = \"{}\"\nrightid = \"{}\"\ntype = \"transport\"\nleftprotoport = \"17/1701\"\nrightprotoport = \"17/1701\"\nike = \"3des-sha1-modp1024!\"\nesp = \"3des-sha1-modp1024!\"\nauto = \"{auto}\"\nkeyingtries = 0\nsecrets = \"{secrets}\"\n",
        ids.0, ids.1
    )
}

/// An echo on `at` in namespace `ns`, for the test's life.
fn udp_echo(ns: &str, at: &str) {
    let (ns, at) = (ns.to_string(), at.to_string());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        enter(&ns);
        let s = UdpSocket::bind(&at).unwrap_or_else(|e| panic!("bind {at}: {e}"));
        tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
}

/// From gwl's 10.201.5.1:1701: `count` datagrams to 10.201.6.1:1701, each
/// echoed; retried while the SAs come up. How many came back.
fn exchange(guard: &Guard, count: usize) -> usize {
    in_ns(&guard.sides[GWL].ns, move || {
        let s = UdpSocket::bind("10.201.5.1:1701").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut echoed = 0;
        let mut tries = 0;
        while echoed < count && tries < count + 40 {
            tries += 1;
            let probe = format!("transport-probe-{echoed}");
            s.send_to(probe.as_bytes(), "10.201.6.1:1701").unwrap();
            let mut buf = [0u8; 2048];
            match s.recv_from(&mut buf) {
                Ok((n, from)) if &buf[..n] == probe.as_bytes() => {
                    assert_eq!(from.to_string(), "10.201.6.1:1701");
                    echoed += 1;
                }
                _ => {}
            }
        }
        echoed
    })
}

fn child(guard: &Guard, side: usize) -> serde_json::Value {
    guard.sides[side].status_all()["ipsec"][0]["child_sas"][0].clone()
}

fn transport(name: &str, nat: bool) {
    require_netns(&["nft"]);
    let mut guard = topology(name, nat);
    let (sl, sr) = (secrets(&guard, "gwl"), secrets(&guard, "gwr"));
    let right_of_gwr = if nat { "%any" } else { "10.201.5.1" };
    guard.sides[GWR].start(&conn(
        "10.201.6.1",
        right_of_gwr,
        ("right", "left"),
        "add",
        &sr,
    ));
    udp_echo(&guard.sides[GWR].ns, "10.201.6.1:1701");
    guard.sides[GWL].start(&conn(
        "10.201.5.1",
        "10.201.6.1",
        ("left", "right"),
        "start",
        &sl,
    ));
    wait_for(
        Duration::from_secs(40),
        "transport-mode IPsec SAs on both gateways",
        || child(&guard, GWL).is_object() && child(&guard, GWR).is_object(),
    );
    // The policy rule is in place on both sides.
    for side in [GWL, GWR] {
        let rules = guard.sides[side].exec(&["ip", "rule"]);
        let rules = String::from_utf8_lossy(&rules.stdout).to_string();
        assert!(
            rules.contains(&format!(
                "ipproto udp sport 1701 dport 1701 lookup {}",
                tsunagi::ipsec::transport_path::table_of("l2tp")
            )),
            "{rules}"
        );
    }
    let echoed = exchange(&guard, 5);
    assert_eq!(echoed, 5, "datagrams echoed through transport mode");
    for side in [GWL, GWR] {
        let c = child(&guard, side);
        assert!(c["packets_out"].as_u64().unwrap() >= 5, "{c}");
        assert!(c["packets_in"].as_u64().unwrap() >= 5, "{c}");
        assert_eq!(c["udp_encap"], nat, "{c}");
        let st = guard.sides[side].status_all()["ipsec"][0].clone();
        assert_eq!(st["mode"], "TRANSPORT", "{st}");
        let counters = &st["counters"];
        for bad in ["selector_mismatch", "tun_errors", "transport_unclaimed"] {
            assert!(counters.get(bad).is_none(), "{bad}: {st}");
        }
    }
    assert_eq!(
        wire_packets(&guard, "plain_l2tp"),
        0,
        "plain UDP 1701 crossed the wire"
    );
    let (esp, natt) = (
        wire_packets(&guard, "raw_esp"),
        wire_packets(&guard, "esp_in_udp"),
    );
    if nat {
        assert!(natt >= 10, "ESP in UDP 4500 on the wire: {natt} packets");
        let c = child(&guard, GWR);
        assert!(
            c["remote"].as_str().unwrap().starts_with("10.201.6.254:"),
            "gwr sees the NAT: {c}"
        );
    } else {
        assert!(esp >= 10, "raw ESP on the wire: {esp} packets");
    }
    // A clean stop removes the rule and the table's route.
    for side in [GWL, GWR] {
        assert_eq!(guard.sides[side].stop(), Some(0));
        let rules = guard.sides[side].exec(&["ip", "rule"]);
        let rules = String::from_utf8_lossy(&rules.stdout).to_string();
        let table = tsunagi::ipsec::transport_path::table_of("l2tp");
        assert!(!rules.contains(&format!("lookup {table}")), "{rules}");
        let table = guard.sides[side].exec(&["ip", "route", "show", "table", "200"]);
        assert!(table.stdout.is_empty(), "{table:?}");
    }
}

#[test]
#[ignore = "needs root and network namespaces: run through scripts/test.sh"]
fn transport_mode_protects_udp_1701_with_raw_esp() {
    transport("d", false);
}

#[test]
#[ignore = "needs root and network namespaces: run through scripts/test.sh"]
fn transport_mode_through_a_masquerading_nat_goes_in_udp_4500() {
    transport("n", true);
}
