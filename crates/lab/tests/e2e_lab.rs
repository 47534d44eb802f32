//! End to end, seed 000's two sites: HOME host <-> Labs host through
//! tsunagi's PPP over a real OpenSSH session between the two gateways.
//! Needs root and sshd: `#[ignore]`d, `scripts/test.sh` runs them as root.

mod e2e_support;

use e2e_support::{LabGuard, Node, BIN};
use std::process::Command;
use tsunagi_lab::{HOME_HOST, HOME_TUN_ADDR, LABS_HOST, LABS_TUN_ADDR};

/// 100 MB HOME host -> Labs host, checked with a 256-bit stream digest on both ends.
const TRANSFER_BYTES: u64 = 100_000_000;

#[test]
#[ignore = "needs root, network namespaces and sshd (scripts/test.sh runs it)"]
fn lans_reach_each_other_through_the_tunnel() {
    let g = LabGuard::up();
    let lab = &g.lab;

    // Both gateways: the agreed addresses on tun0, the other LAN routed into it.
    for gw in [Node::HomeGw, Node::LabsGw] {
        let state = lab.link_state(gw);
        assert!(state.is_up(), "{gw:?}: {state:?}");
    }

    println!(
        "{}",
        lab.ping(Node::HomeHost, LABS_HOST)
            .expect("ping HOME host -> Labs host")
    );
    println!(
        "{}",
        lab.ping(Node::LabsHost, HOME_HOST)
            .expect("ping Labs host -> HOME host")
    );

    let t = lab.transfer(TRANSFER_BYTES).expect("100 MB transfer");
    println!("transfer: {t}");
    assert_eq!(t.bytes, TRANSFER_BYTES);

    // status --json on both sides: phase, addresses, counters. The
    // counters are read from the engines when status asks: right after the
    // transfer they already count all of it (no waiting for a refresh).
    let counter = |v: &serde_json::Value, k: &str| v["counters"][k].as_u64().unwrap_or(0);
    let home = lab.daemon_link(Node::HomeGw).expect("HOME status");
    let labs = lab.daemon_link(Node::LabsGw).expect("Labs status");
    println!("HOME: {home}\nLabs: {labs}");
    assert_eq!(home["phase"], "network");
    assert_eq!(labs["phase"], "network");
    assert_eq!(home["mode"], "dial");
    assert_eq!(labs["mode"], "direct");
    assert_eq!(home["local"], HOME_TUN_ADDR);
    assert_eq!(home["peer_addr"], LABS_TUN_ADDR);
    assert_eq!(labs["local"], LABS_TUN_ADDR);
    assert_eq!(labs["peer_addr"], HOME_TUN_ADDR);
    // The 100 MB went out of HOME and into Labs.
    assert!(
        counter(&home, "tx_bytes") >= TRANSFER_BYTES,
        "HOME tx {home}"
    );
    assert!(
        counter(&labs, "rx_bytes") >= TRANSFER_BYTES,
        "Labs rx {labs}"
    );
    assert!(counter(&home, "rx_bytes") > 0 && counter(&labs, "tx_bytes") > 0);
    assert!(counter(&home, "rx_packets") > 0 && counter(&labs, "rx_packets") > 0);
    assert!(home["uptime_secs"].is_u64(), "uptime {home}");

    // The human table names the link and its phase.
    let table = lab
        .daemon_status(&lab.home_sock(), false)
        .expect("status table");
    println!("{table}");
    assert!(
        table.contains("labs") && table.contains("network"),
        "{table}"
    );

    // Seed 000 appendix B: the Labs log shows who called (LCP Identification).
    let labs_log = g.log(Node::LabsGw);
    assert!(
        labs_log.contains("HOME Network"),
        "the Labs gateway's log does not show the ident \"HOME Network\""
    );

    // `tsunagi-lab check` passes and says so.
    let out = Command::new(BIN)
        .args(["check", "--prefix", &g.prefix, "--bytes", "2000000"])
        .output()
        .expect("tsunagi-lab check");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "lab check failed");
    assert!(text.contains("all checks passed"));
    assert!(!text.contains("FAIL"));
}

#[test]
#[ignore = "needs root (scripts/test.sh runs it)"]
fn lab_down_removes_everything_and_is_idempotent() {
    e2e_support::require_root();
    // A lab that was never brought up: down says so and succeeds.
    let prefix = format!("n{}", std::process::id());
    for _ in 0..2 {
        let out = Command::new(BIN)
            .args(["down", "--prefix", &prefix])
            .output()
            .expect("tsunagi-lab down");
        assert!(out.status.success());
    }
    let out = Command::new(BIN)
        .args(["check", "--prefix", &prefix])
        .output()
        .expect("tsunagi-lab check");
    assert!(!out.status.success(), "check of a missing lab must fail");
}
