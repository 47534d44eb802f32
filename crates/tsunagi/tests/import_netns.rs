//! The imported config brings up the same link (issue 15, "Import"):
//! `tsunagi import` converts seed 000's user-ppp files of both gateways
//! (the HOME gateway's `pppossh_request` label, which dials, and the Labs
//! gateway's `pppossh_approve_4_HOMENetwork`, which answers in direct
//! mode), two daemons run the two configs in two network namespaces, and
//! the link comes up with the seed's addresses and routes and carries
//! pings both ways.
//!
//! The test's own rewrite of the imported configs, and nothing else:
//! - the HOME side's `device` (seed 000's `!ssh pppossh@VPN server exec
//!   /usr/sbin/ppp -direct -unit0 pppossh_approve_4_`) becomes
//!   `tsunagi -S <Labs socket> direct home`: what the ssh command would
//!   run on the Labs gateway, without an sshd in the test;
//! - the Labs side's `allow_users = ["pppossh"]` becomes `["root"]`: the
//!   `tsunagi direct` caller is this test (root), not the pppossh account.
//!
//! Addresses, routes, escape, ident and ipv6cp are the seed's, as imported.
//!
//! The same for seed 001's pppd pair: venus's vpn-saturn (`pty <スクリプト>`,
//! `192.168.1.1:192.168.2.1`) and saturn's vpn-option (`noauth`,
//! `notty`), where the test's rewrite is the import's own: `--replace`
//! puts for the seed's placeholder script the command it stands for (ssh
//! to saturn running the answering side; here `tsunagi -S <saturn's
//! socket> direct vpn-option`, quoted as pppd wants a command with
//! spaces), and `--allow-user root` names the caller the seed's sshd
//! would have started as `vpn`.
//!
//! Needs root, network namespaces and tun devices: `#[ignore]`d,
//! `scripts/test.sh` runs it; namespaces and daemons are removed by the
//! guard, also when an assertion fails.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{ping, require_netns, wait_for, Guard, BIN};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/import/testdata/seed000");
const SEED001: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/import/testdata/seed001");

/// `tsunagi import ARGS`: the config, after checking that exactly the
/// expected lines were left out (exit status 3 if any, else 0).
fn import(args: &[&str], left_out: &[&str]) -> String {
    let out = Command::new(BIN).arg("import").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = if left_out.is_empty() { 0 } else { 3 };
    assert_eq!(
        out.status.code(),
        Some(code),
        "tsunagi import {args:?}: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), left_out.len(), "{stderr}");
    for (line, want) in lines.iter().zip(left_out) {
        assert!(line.contains(want), "{line:?} should contain {want:?}");
    }
    String::from_utf8(out.stdout).unwrap()
}

/// Replaces the one line starting with `key = ` by `key = value`.
fn rewrite(toml: &str, key: &str, value: &str) -> String {
    let prefix = format!("{key} = ");
    assert_eq!(
        toml.lines().filter(|l| l.starts_with(&prefix)).count(),
        1,
        "{toml}"
    );
    toml.lines()
        .map(|l| {
            if l.starts_with(&prefix) {
                format!("{prefix}{value}  # rewritten by the test")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn seed000_imported_on_both_gateways_links_them() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-import-{pid}"), &format!("tsi{pid}"));
    let etc = format!("{TESTDATA}/etc_ppp.conf");
    let labs = import(
        &[
            "--name",
            "home",
            &etc,
            &format!("{TESTDATA}/server_home.ppp.conf"),
        ],
        &["server_home.ppp.conf:7: left out"],
    );
    let home = import(
        &[
            "--name",
            "labs",
            &etc,
            &format!("{TESTDATA}/client_home.ppp.conf"),
        ],
        &[
            "client_home.ppp.conf:7: left out",
            "client_home.ppp.conf:12: left out",
        ],
    );
    assert!(
        home.contains("device = \"!ssh pppossh@VPN server exec"),
        "{home}"
    );
    let labs = rewrite(&labs, "allow_users", "[\"root\"]");
    let device = format!(
        "\"!{BIN} -S {} direct home\"",
        guard.sides[0].socket().display()
    );
    let home = rewrite(&home, "device", &device);

    guard.sides[0].start(&labs);
    guard.sides[1].start(&home);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    // Seed 000 §3.3: set ifaddr 10.233.1.2 10.233.1.1 on the HOME side;
    // the Labs side names no address and takes what IPCP agrees.
    wait_for(Duration::from_secs(20), "IPCP up on the HOME side", || {
        b.link_address().as_deref() == Some("10.233.1.2")
    });
    wait_for(Duration::from_secs(5), "IPCP up on the Labs side", || {
        a.link_address().as_deref() == Some("10.233.1.1")
    });
    assert!(ping(b, "10.233.1.1"), "HOME -> Labs ping");
    assert!(ping(a, "10.233.1.2"), "Labs -> HOME ping");
    // The routes of `add NET HISADDR`, through the tun, on each side.
    let routes = |side: &support::Side| {
        String::from_utf8_lossy(&side.exec(&["ip", "-4", "route", "show"]).stdout).into_owned()
    };
    let b_routes = routes(b);
    assert!(b_routes.contains("192.168.253.0/24"), "{b_routes}");
    assert!(b_routes.contains("172.16.1.0/24"), "{b_routes}");
    let a_routes = routes(a);
    assert!(a_routes.contains("192.168.1.0/24"), "{a_routes}");
    // ident "HOME Network" reached the Labs side (RFC 1570).
    wait_for(Duration::from_secs(5), "the ident in the Labs log", || {
        a.log().contains("HOME Network")
    });
    assert_eq!(guard.sides[1].stop(), Some(0));
    assert_eq!(guard.sides[0].stop(), Some(0));
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn seed001_pppd_pair_imported_links_venus_and_saturn() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-import1-{pid}"), &format!("tsj{pid}"));
    let saturn = import(
        &["--allow-user", "root", &format!("{SEED001}/vpn-option")],
        &[],
    );
    let script = format!(
        "<スクリプト>=\"{BIN} -S {} direct vpn-option\"",
        guard.sides[0].socket().display()
    );
    let venus = import(
        &["--replace", &script, &format!("{SEED001}/vpn-saturn")],
        &[],
    );
    guard.sides[0].start(&saturn);
    guard.sides[1].start(&venus);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    // vpn-saturn: 192.168.1.1:192.168.2.1 (venus's side, saturn's side).
    wait_for(Duration::from_secs(20), "IPCP up on venus", || {
        b.link_address().as_deref() == Some("192.168.1.1")
    });
    wait_for(Duration::from_secs(5), "IPCP up on saturn", || {
        a.link_address().as_deref() == Some("192.168.2.1")
    });
    // The seed's own check: ping -c 1 192.168.2.1 from venus, and back.
    assert!(ping(b, "192.168.2.1"), "venus -> saturn ping");
    assert!(ping(a, "192.168.1.1"), "saturn -> venus ping");
    assert_eq!(guard.sides[1].stop(), Some(0));
    assert_eq!(guard.sides[0].stop(), Some(0));
}
