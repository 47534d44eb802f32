//! `tsunagi reload` and SIGHUP between two daemons in two fresh network
//! namespaces (issue 15), PPP between them over the control socket as in
//! daemon_netns.rs: A answers direct profiles, B dials them.
//!
//! - B has links `l1` and `l2`. A checked transfer runs over `l2` while
//!   `l1`'s settings change and B reloads: `l1` reconnects (a new session
//!   on both sides), `l2` keeps its session on both sides and the transfer
//!   completes with its digest, having run across the reload.
//! - A link `a3` is added on both sides (`tsunagi reload` on B, SIGHUP on
//!   A). Its name sorts before the others: `l2`'s source-route rule keeps
//!   its table, and `l1` and `l2` keep their sessions.
//! - A's `p3` demands CHAP, and `a3`'s user is not in A's secrets file
//!   yet: refused. The user is added to the file and A gets SIGHUP: `a3`
//!   comes up, with nothing else touched.
//! - A config that does not parse is refused by `reload`, naming the
//!   problem, and changes nothing; a non-root caller is refused.
//!
//! Needs root, network namespaces and tun devices: `#[ignore]`d;
//! `scripts/test.sh` runs it (as root, with `--include-ignored`).

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::netns::in_ns;
use support::transfer::{digest_server, fill, finish_checked, Digest};
use support::{ping, require_netns, wait_for, Guard, Side, BIN};

/// The session id of `link` (a profile name) in `side`'s status, if it
/// has one in phase network.
fn session_of(side: &Side, link: &str) -> Option<u64> {
    let all = side.status_all();
    all["sessions"]
        .as_array()?
        .iter()
        .find(|s| s["profile"] == link && s["phase"] == "network")
        .and_then(|s| s["id"].as_u64())
}

/// Sends the deterministic stream to `to` from namespace `ns` until `stop`
/// is set and at least `min` bytes went; the sink's answer must match.
/// Returns the bytes sent and when the last one was written.
fn send_until(
    ns: &str,
    to: SocketAddr,
    stop: Arc<AtomicBool>,
    min: usize,
) -> Result<(usize, Instant), String> {
    in_ns(ns, move || {
        let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(20))
            .map_err(|e| format!("connect {to}: {e}"))?;
        conn.set_write_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut state = 0x5eed_u64;
        let mut digest = Digest::new();
        let mut buf = vec![0u8; 16384];
        let mut sent = 0usize;
        while sent < min || !stop.load(Ordering::Relaxed) {
            fill(&mut state, &mut buf);
            digest.update(&buf);
            conn.write_all(&buf)
                .map_err(|e| format!("write after {sent} bytes: {e}"))?;
            sent += buf.len();
        }
        let last = Instant::now();
        finish_checked(&mut conn, sent, digest)?;
        Ok((sent, last))
    })
}

/// The `ip rule` lines of `side` that look up a table for `addr`.
fn rules_for(side: &Side, addr: &str) -> Vec<String> {
    let out = side.exec(&["ip", "rule"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("from {addr} ")))
        .map(str::to_string)
        .collect()
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn reload_restarts_only_what_changed_and_rereads_secrets() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-reload-{pid}"), &format!("tsrl{pid}"));
    let dir = guard.dir.clone();
    let o = pid % 250;
    let sock_a = guard.sides[0].socket();
    let secrets = dir.join("chap-secrets");
    std::fs::write(&secrets, "# nobody yet\n").unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let borrowed = format!("10.249.{o}.77");

    // A: one direct profile per B link; p3 only from the second config on.
    let a_profile = |name: &str, n: u32, extra: &str| {
        format!(
            "[link.{name}]\nmode = \"direct\"\ntun = \"tra{n}{pid}\"\nlocal = \"10.24{n}.{o}.1\"\nremote = \"10.24{n}.{o}.2\"\nipv6cp = false\nallow_users = [\"root\"]\n{extra}\n"
        )
    };
    let a_daemon = format!(
        "audit_file = \"{}\"\naudit_syslog = false\n",
        dir.join("a-audit.log").display()
    );
    let a_two = a_daemon + &a_profile("p1", 1, "") + &a_profile("p2", 2, "");
    let a_three = a_two.clone()
        + &a_profile(
            "p3",
            3,
            &format!(
                "require = [\"chap\"]\nname = \"gw-a\"\nsecrets = \"{}\"\n",
                secrets.display()
            ),
        );
    let b_link = |name: &str, n: u32, to: &str, extra: &str| {
        format!(
            "[link.{name}]\nmode = \"dial\"\ndevice = \"SSH_CONNECTION='192.0.2.{n} 5002{n} 192.0.2.200 22' {BIN} -S {sock} direct {to}\"\ntun = \"trb{n}{pid}\"\nipv6cp = false\nredial_min = 1\nredial_max = 2\n{extra}\n",
            sock = sock_a.display()
        )
    };
    let l2_extra = format!("source_routes = [\"{borrowed}\"]\n");
    // [daemon] keys first (Side::config writes the section's header).
    let b_daemon = format!(
        "audit_file = \"{}\"\naudit_syslog = false\n",
        dir.join("b-audit.log").display()
    );
    let b_two = |l1_extra: &str| {
        b_daemon.clone() + &b_link("l1", 1, "p1", l1_extra) + &b_link("l2", 2, "p2", &l2_extra)
    };
    guard.sides[0].start(&a_two);
    guard.sides[1].start(&b_two("echo_interval = 10\n"));
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    b.exec(&["ip", "addr", "add", &format!("{borrowed}/32"), "dev", "lo"]);
    wait_for(Duration::from_secs(20), "l1 and l2 up", || {
        session_of(b, "l1").is_some() && session_of(b, "l2").is_some()
    });
    let (b1, b2) = (session_of(b, "l1").unwrap(), session_of(b, "l2").unwrap());
    let (a1, a2) = (session_of(a, "p1").unwrap(), session_of(a, "p2").unwrap());
    assert!(ping(b, &format!("10.242.{o}.1")));
    let l2_rules = rules_for(b, &borrowed);
    assert_eq!(l2_rules.len(), 1, "{l2_rules:?}");

    // A transfer over l2 that runs until the reload is done.
    let sink: SocketAddr = format!("10.242.{o}.1:5001").parse().unwrap();
    digest_server(&a.ns, sink);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (ns, stop) = (b.ns.clone(), stop.clone());
        std::thread::spawn(move || send_until(&ns, sink, stop, 1 << 20))
    };
    std::thread::sleep(Duration::from_millis(500));
    // l1 changes: B's config now says echo_interval = 5.
    b.config(&b_two("echo_interval = 5\n"));
    let out = b.cli(&["reload"]);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("link.l1 changed") && said.contains("1 unchanged"),
        "{said}"
    );
    let reloaded = Instant::now();
    wait_for(
        Duration::from_secs(20),
        "l1 back with a new session",
        || session_of(b, "l1").is_some_and(|id| id != b1),
    );
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (sent, last) = sender.join().unwrap().expect("the transfer over l2");
    assert!(last > reloaded, "the transfer ended before the reload");
    assert!(sent >= 1 << 20);
    assert_eq!(session_of(b, "l2"), Some(b2), "l2 was reconnected on B");
    assert_eq!(session_of(a, "p2"), Some(a2), "p2 was reconnected on A");
    assert!(session_of(a, "p1").is_some_and(|id| id != a1));
    assert!(ping(b, &format!("10.241.{o}.1")));
    // Its end is put down to the reload, in the log and the audit trail.
    let log_b = b.log();
    assert!(
        log_b.contains("l1: session ended: reconfigured by a reload"),
        "{log_b}"
    );
    let audit = std::fs::read_to_string(dir.join("b-audit.log")).unwrap();
    let end = audit
        .lines()
        .find(|l| l.contains("session-end") && l.contains("profile=l1"))
        .unwrap_or_else(|| panic!("no end record for l1:\n{audit}"));
    assert!(end.contains("kind=reconfigured"), "{end}");
    // A's side of it names where the direct caller's ssh came from, with
    // the port (SSH_CONNECTION).
    let audit_a = std::fs::read_to_string(dir.join("a-audit.log")).unwrap();
    let end_a = audit_a
        .lines()
        .find(|l| l.contains("session-end") && l.contains("profile=p1"))
        .unwrap_or_else(|| panic!("no end record for p1:\n{audit_a}"));
    assert!(end_a.contains("from=192.0.2.1:50021"), "{end_a}");

    // A non-root caller may not reload.
    let nobody = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "-S",
        ])
        .arg(b.socket())
        .arg("reload")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&nobody.stderr);
    assert!(
        !nobody.status.success() && err.contains("root only"),
        "{err}"
    );

    // A config that does not load changes nothing.
    let good = std::fs::read_to_string(dir.join("b.toml")).unwrap();
    std::fs::write(
        dir.join("b.toml"),
        format!("{good}\n[link.broken]\nmode = \"warp\"\n"),
    )
    .unwrap();
    let out = b.cli(&["reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("nothing changed") && err.contains("warp"),
        "{err}"
    );
    std::fs::write(dir.join("b.toml"), &good).unwrap();

    // a3 on both sides: B by `reload`, A by SIGHUP. carol is not in A's
    // secrets yet.
    let b1 = session_of(b, "l1").unwrap();
    let a1 = session_of(a, "p1").unwrap();
    let a3 = b_link(
        "a3",
        3,
        "p3",
        "user = \"carol\"\npassword = \"c4r0l pw\"\nmax_redials = 0\n",
    );
    a.config(&a_three);
    let a_pid = a.daemon.as_ref().unwrap().id();
    let hup = |pid: u32| {
        let st = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    };
    hup(a_pid);
    wait_for(Duration::from_secs(10), "A reloaded with p3", || {
        a.log().contains("link.p3 added")
    });
    b.config(&b_two("echo_interval = 5\n").replacen("[link.l1]", &(a3 + "[link.l1]"), 1));
    let out = b.cli(&["reload"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("link.a3 added"),
        "{said}"
    );
    wait_for(Duration::from_secs(20), "carol refused by A", || {
        a.log().contains("carol")
    });
    assert_eq!(session_of(b, "a3"), None);
    // Adding a3 (first in name order) renumbered nothing.
    assert_eq!(rules_for(b, &borrowed), l2_rules);

    // carol goes into A's secrets; SIGHUP re-reads them.
    std::fs::write(&secrets, "carol gw-a \"c4r0l pw\" *\n").unwrap();
    hup(a_pid);
    wait_for(Duration::from_secs(10), "A re-read its secrets", || {
        a.log().contains("secrets re-read")
    });
    wait_for(
        Duration::from_secs(40),
        "a3 up after the secrets changed",
        || session_of(b, "a3").is_some(),
    );
    assert!(ping(b, &format!("10.243.{o}.1")));
    for (side, name, id) in [(b, "l1", b1), (b, "l2", b2), (a, "p1", a1), (a, "p2", a2)] {
        assert_eq!(session_of(side, name), Some(id), "{name} was reconnected");
    }
    let log_a = a.log();
    assert!(log_a.contains("SIGHUP: reloading"), "{log_a}");

    assert_eq!(guard.sides[1].stop(), Some(0));
    assert_eq!(guard.sides[0].stop(), Some(0));
}
