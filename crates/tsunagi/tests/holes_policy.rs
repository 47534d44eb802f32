//! The daemon's API for its servers' firewall holes (`policy::Holes`)
//! together with `[policy]`, in a server namespace with a client namespace
//! beside it (joined by a veth pair): a hole
//! opened before the policy starts survives the policy's start, lets TCP
//! 1723 through `block in all` while another port stays blocked, shows in
//! `status`, and does not outlive the policy's stop with `keep_on_exit`.
//! (The nftables side, GRE included, is tested in
//! crates/host/tests/holes_netns.rs.)
//!
//! Needs root and `nft`: `#[ignore]`d, run by `scripts/test.sh`.

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::netns::in_ns;
use tsunagi::config::PolicySettings;
use tsunagi::policy::{start, status_text, Hole, Holes};

const ADDR: Ipv4Addr = Ipv4Addr::new(10, 49, 0, 1);

/// The server's and the client's namespaces and a scratch directory,
/// removed on drop.
struct Scratch {
    server: String,
    client: String,
    dir: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ip(ns: &str, args: &[&str]) {
    let ok = Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .status()
        .expect("ip");
    assert!(ok.success(), "ip {args:?}");
}

/// Waits (up to 5 s) until `dev` in `ns` is operationally up: until the
/// kernel's link watch has attached its queueing discipline (a work item
/// that may wait up to a second when many links change at once), packets
/// sent on it are dropped.
fn wait_link_up(ns: &str, dev: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("ip")
            .args(["-n", ns, "-o", "link", "show", "dev", dev])
            .output()
            .expect("ip");
        if String::from_utf8_lossy(&out.stdout).contains(" state UP ") {
            return;
        }
        assert!(Instant::now() < deadline, "{dev} in {ns} not up within 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn add_netns(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(std::process::Stdio::null())
        .status();
    assert!(Command::new("ip")
        .args(["netns", "add", name])
        .status()
        .unwrap()
        .success());
    ip(name, &["link", "set", "lo", "up"]);
}

/// Whether a TCP handshake from the client namespace to the server's
/// `port` completes. (From the client: on the server's own loopback the
/// answers would cross the `in` chain too.)
fn connects(client: &str, port: u16) -> bool {
    in_ns(client, || {
        TcpStream::connect_timeout(&SocketAddr::from((ADDR, port)), Duration::from_millis(500))
            .is_ok()
    })
}

fn table_exists() -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", "tsunagi"])
        .output()
        .expect("nft")
        .status
        .success()
}

#[test]
#[ignore = "needs root, network namespaces and nft (scripts/test.sh runs it)"]
fn holes_survive_policy_start_and_not_a_kept_policy() {
    support::require_netns(&["nft"]);
    let pid = std::process::id();
    let scratch = Scratch {
        server: format!("tsholes-s-{pid}"),
        client: format!("tsholes-c-{pid}"),
        dir: std::env::temp_dir().join(format!("tsunagi-holes-{pid}")),
    };
    add_netns(&scratch.server);
    add_netns(&scratch.client);
    ip(
        &scratch.server,
        &[
            "link", "add", "holes-s", "type", "veth", "peer", "name", "holes-c",
        ],
    );
    ip(
        &scratch.server,
        &["link", "set", "holes-c", "netns", &scratch.client],
    );
    ip(
        &scratch.server,
        &["addr", "add", "10.49.0.1/24", "dev", "holes-s"],
    );
    ip(
        &scratch.client,
        &["addr", "add", "10.49.0.2/24", "dev", "holes-c"],
    );
    ip(&scratch.server, &["link", "set", "holes-s", "up"]);
    ip(&scratch.client, &["link", "set", "holes-c", "up"]);
    wait_link_up(&scratch.server, "holes-s");
    wait_link_up(&scratch.client, "holes-c");
    std::fs::create_dir_all(&scratch.dir).unwrap();
    let ipf = scratch.dir.join("ipf.rules");
    std::fs::write(&ipf, "block in all\n").unwrap();
    let settings = PolicySettings {
        ipf: Some(ipf),
        ipnat: None,
        interfaces: BTreeMap::new(),
        forwarding: None,
        keep_on_exit: true,
        nflog_group: 7,
        log_file: None,
        out_log: Default::default(),
    };
    let client = scratch.client.clone();
    in_ns(&scratch.server, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let _pptp = TcpListener::bind((ADDR, 1723)).unwrap();
                let _other = TcpListener::bind((ADDR, 1724)).unwrap();
                let holes = Holes::new();
                // A server first, then the policy (the order of a reload).
                holes.open_holes("vpn", &Hole::pptp(None)).unwrap();
                assert!(table_exists(), "a table for the holes");
                let policy = start(&settings, &holes).expect("policy start");
                assert!(
                    connects(&client, 1723),
                    "the hole survives the policy's start"
                );
                assert!(
                    !connects(&client, 1724),
                    "the policy blocks everything else"
                );
                let status = status_text(Some(&settings)).unwrap().unwrap();
                assert!(status.contains("vpn_pptp_tcp1723"), "{status}");
                assert!(status.contains("vpn_pptp_ip47"), "{status}");
                assert!(status.contains("@0:1 in"), "{status}");
                assert_eq!(holes.open().len(), 1);

                // keep_on_exit: the filter stays, the hole does not.
                policy.stop();
                assert!(table_exists(), "kept");
                assert!(!connects(&client, 1723), "no hole in the kept filter");
                assert!(holes.open().is_empty());
                holes.close_holes("vpn").unwrap();
                holes.shutdown();
                assert!(table_exists(), "the kept filter is not ours to remove");
                tsunagi_host::policy_apply::remove().unwrap();
            });
    });
    drop(scratch);
}
