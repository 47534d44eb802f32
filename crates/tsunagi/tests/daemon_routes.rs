//! Per-link routing policy of the daemon (issue 5), with two daemons in
//! fresh network namespaces joined through the control socket as in
//! daemon_netns.rs (B dials `tsunagi -S A.sock direct p2`):
//!
//! - `default_route = true`: `0.0.0.0/1` and `128.0.0.0/1` through B's tun
//!   while the link is up, and a host route keeping `outer_peer` on the
//!   next hop it had before (a veth in B's namespace with a default route
//!   over it stands in for the Internet side); all gone after `hangup`.
//! - `source_routes`: `ip rule from ADDR lookup TABLE` and the table's
//!   default route through the tun while up; the kernel's route for
//!   replies from the borrowed address is the tun (`ip route get ... from`,
//!   which only asks the kernel), and a ping from A to the borrowed address
//!   from a source B would otherwise send out of its default route is
//!   answered; all gone after `hangup`.
//!
//! Every address lives only inside the namespaces made here. Needs root:
//! the tests are `#[ignore]`d, `scripts/test.sh` runs them (as root, with
//! `--include-ignored`); run where they cannot work, they fail naming what
//! is missing.

mod support;

use std::time::Duration;
use support::{ping, require_netns, wait_for, Guard, Side};

fn ip(side: &Side, args: &[&str]) -> String {
    let mut all = vec!["ip"];
    all.extend_from_slice(args);
    let out = side.exec(&all);
    assert!(
        out.status.success(),
        "ip {args:?} in {}: {}",
        side.ns,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A veth pair inside `side`'s namespace, `vo` with `addr/24`, and the
/// namespace's default route via `gateway` on it: the pre-tunnel path.
fn outside_path(side: &Side, addr: &str, gateway: &str) {
    ip(side, &["link", "set", "lo", "up"]);
    ip(
        side,
        &["link", "add", "vo", "type", "veth", "peer", "name", "vp"],
    );
    ip(side, &["addr", "add", &format!("{addr}/24"), "dev", "vo"]);
    ip(side, &["link", "set", "vp", "up"]);
    ip(side, &["link", "set", "vo", "up"]);
    ip(
        side,
        &["route", "add", "default", "via", gateway, "dev", "vo"],
    );
}

fn hangup(b: &Side) {
    let out = b.cli(&["hangup", "p1"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("p1: closing"),
        "hangup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(10), "link down on B", || {
        b.status()[0]["local"].is_null()
    });
}

/// `dial p1`, wait for IPCP, then SIGTERM B's daemon.
fn redial_and_stop(b: &mut Side, b_addr: &str) {
    let out = b.cli(&["dial", "p1"]);
    assert!(
        out.status.success(),
        "dial: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(Duration::from_secs(15), "IPCP up again on B", || {
        b.status()[0]["local"].as_str() == Some(b_addr)
    });
    assert_eq!(b.stop(), Some(0), "daemon B exit status");
}

fn answering_link(pid: u32, a_addr: &str, b_addr: &str, extra: &str) -> String {
    format!(
        r#"[link.p2]
mode = "direct"
tun = "tsa{pid}"
local = "{a_addr}"
remote = "{b_addr}"
ipv6cp = false
allow_users = ["root"]
{extra}
"#
    )
}

fn dialling_link(pid: u32, a: &Side, extra: &str) -> String {
    format!(
        r#"[link.p1]
mode = "dial"
device = "{bin} -S {sock} direct p2"
tun = "tsb{pid}"
ipv6cp = false
persist = false
{extra}
"#,
        bin = support::BIN,
        sock = a.socket().display(),
    )
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn default_route_is_a_full_tunnel_keeping_the_outer_peer() {
    require_netns(&[]);
    let pid = std::process::id();
    let o = pid % 250;
    let mut guard = Guard::pair(&format!("tsunagi-droutes-{pid}"), &format!("tsdr{pid}"));
    let (a_addr, b_addr) = (format!("10.241.{o}.1"), format!("10.241.{o}.2"));
    let gateway = format!("10.242.{o}.254");
    let outer = format!("10.243.{o}.1");
    outside_path(&guard.sides[1], &format!("10.242.{o}.1"), &gateway);
    guard.sides[0].start(&answering_link(pid, &a_addr, &b_addr, ""));
    let b_links = dialling_link(
        pid,
        &guard.sides[0],
        &format!("default_route = true\nouter_peer = \"{outer}\"\n"),
    );
    guard.sides[1].start(&b_links);
    let (a, b) = guard.sides.split_at_mut(1);
    let (a, b) = (&a[0], &mut b[0]);
    wait_for(Duration::from_secs(15), "IPCP up on B", || {
        b.status()[0]["local"].as_str() == Some(b_addr.as_str())
    });
    let tun = format!("tsb{pid}");
    let want_host = format!("{outer} via {gateway} dev vo");
    wait_for(Duration::from_secs(5), "full tunnel routes on B", || {
        let r = ip(b, &["route"]);
        r.contains(&format!("0.0.0.0/1 dev {tun}"))
            && r.contains(&format!("128.0.0.0/1 dev {tun}"))
            && r.contains(&want_host)
    });
    // The original default stays, less specific than the halves.
    let routes = ip(b, &["route"]);
    assert!(
        routes.contains(&format!("default via {gateway} dev vo")),
        "{routes}"
    );
    // Anything else now goes through the tunnel, the outer peer does not.
    let get = ip(b, &["route", "get", &format!("10.249.{o}.9")]);
    assert!(get.contains(&format!("dev {tun}")), "{get}");
    let get = ip(b, &["route", "get", &outer]);
    assert!(get.contains(&want_host), "{get}");
    assert!(ping(b, &a_addr), "ping B -> A over the full tunnel failed");

    hangup(b);
    wait_for(Duration::from_secs(5), "full tunnel routes gone", || {
        let r = ip(b, &["route"]);
        !r.contains("0.0.0.0/1") && !r.contains("128.0.0.0/1") && !r.contains(&outer)
    });
    let routes = ip(b, &["route"]);
    assert!(
        routes.contains(&format!("default via {gateway} dev vo")),
        "{routes}"
    );
    let log = b.log();
    assert!(log.contains("p1: default route via"), "{log}");
    assert!(!ping(a, &b_addr), "ping A -> B works after hangup");

    // Daemon shutdown takes them away too (the host route would outlive
    // the tun otherwise).
    redial_and_stop(b, &b_addr);
    let routes = ip(b, &["route"]);
    assert!(
        !routes.contains("0.0.0.0/1") && !routes.contains(&outer),
        "after shutdown: {routes}"
    );
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn source_routes_send_replies_from_the_borrowed_address_through_the_tunnel() {
    require_netns(&[]);
    let pid = std::process::id();
    let o = pid % 250;
    let mut guard = Guard::pair(&format!("tsunagi-sroutes-{pid}"), &format!("tssr{pid}"));
    let (a_addr, b_addr) = (format!("10.244.{o}.1"), format!("10.244.{o}.2"));
    let gateway = format!("10.245.{o}.254");
    let borrowed = format!("10.246.{o}.77");
    let a_source = format!("10.247.{o}.5");
    let elsewhere = format!("10.248.{o}.9");
    let table = 200 + o % 50;
    {
        let b = &guard.sides[1];
        outside_path(b, &format!("10.245.{o}.1"), &gateway);
        // The borrowed global address, on the outside veth as on seed 001's
        // gateway.
        ip(b, &["addr", "add", &format!("{borrowed}/32"), "dev", "vo"]);
        let get = ip(b, &["route", "get", &elsewhere, "from", &borrowed]);
        assert!(get.contains("dev vo"), "before the link: {get}");
        let a = &guard.sides[0];
        ip(a, &["link", "set", "lo", "up"]);
        ip(a, &["addr", "add", &format!("{a_source}/32"), "dev", "lo"]);
    }
    let a_links = answering_link(
        pid,
        &a_addr,
        &b_addr,
        &format!("routes = [\"{borrowed}/32\"]\n"),
    );
    guard.sides[0].start(&a_links);
    let b_links = dialling_link(
        pid,
        &guard.sides[0],
        &format!("source_routes = [\"{borrowed}\"]\nroute_table = {table}\n"),
    );
    guard.sides[1].start(&b_links);
    let (a, b) = guard.sides.split_at_mut(1);
    let (a, b) = (&a[0], &mut b[0]);
    wait_for(Duration::from_secs(15), "IPCP up on B", || {
        b.status()[0]["local"].as_str() == Some(b_addr.as_str())
    });
    let tun = format!("tsb{pid}");
    let want_rule = format!("from {borrowed} lookup {table}");
    wait_for(Duration::from_secs(5), "source rule on B", || {
        ip(b, &["rule"]).contains(&want_rule)
    });
    let t = ip(b, &["route", "show", "table", &table.to_string()]);
    assert!(t.contains(&format!("default dev {tun}")), "{t}");
    let get = ip(b, &["route", "get", &elsewhere, "from", &borrowed]);
    assert!(get.contains(&format!("dev {tun}")), "{get}");
    // Other sources keep the default route.
    let get = ip(b, &["route", "get", &elsewhere]);
    assert!(get.contains("dev vo"), "{get}");
    // A pings the borrowed address from a source B's main table sends out
    // of vo: only the source route brings the replies back.
    wait_for(
        Duration::from_secs(5),
        "route to the borrowed address on A",
        || ip(a, &["route"]).contains(&format!("{borrowed} dev tsa{pid}")),
    );
    let out = a.exec(&[
        "ping", "-c", "2", "-i", "0.2", "-W", "2", "-I", &a_source, &borrowed,
    ]);
    assert!(
        out.status.success(),
        "ping from {a_source} to the borrowed {borrowed}: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    hangup(b);
    wait_for(Duration::from_secs(5), "source rule gone", || {
        !ip(b, &["rule"]).contains(&want_rule)
    });
    let t = ip(b, &["route", "show", "table", &table.to_string()]);
    assert!(t.trim().is_empty(), "table {table} after hangup: {t}");
    let get = ip(b, &["route", "get", &elsewhere, "from", &borrowed]);
    assert!(get.contains("dev vo"), "after hangup: {get}");

    // Daemon shutdown removes the rule too (it would outlive the tun).
    redial_and_stop(b, &b_addr);
    let rules = ip(b, &["rule"]);
    assert!(!rules.contains(&want_rule), "after shutdown: {rules}");
}
