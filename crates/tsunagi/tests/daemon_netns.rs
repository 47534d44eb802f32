//! Two daemons in two fresh network namespaces, PPP between them through
//! the real control socket and SCM_RIGHTS: daemon B dials with
//! `device = "tsunagi -S A.sock direct p2"` (run as root, allowed by
//! `allow_users = ["root"]`), daemon A answers in direct mode. Then:
//! ping across the tun pair, `status` on both, kill the `direct` process and
//! see B redial and the link work again within 10 s; ip-up/ip-down hooks
//! with pppd's arguments; `hangup` and `dial`; a peer that stops answering
//! (SIGSTOP) taken down by LCP echo and redialled; SIGTERM both daemons.
//!
//! Needs root, network namespaces and tun devices: it is `#[ignore]`d,
//! `scripts/test.sh` runs it (as root, with `--include-ignored`); run where
//! it cannot work, it fails naming what is missing. Namespaces and
//! daemons are removed by a guard, also when an assertion fails.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{ping, require_netns, wait_for, Guard, BIN};

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn two_daemons_direct_over_the_control_socket_with_redial() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-dnetns-{pid}"), &format!("tsd{pid}"));
    let dir = guard.dir.clone();
    // Addresses only inside these namespaces; an octet from the pid keeps
    // parallel runs apart.
    let net = format!("10.251.{}", pid % 250);
    let (a_addr, b_addr) = (format!("{net}.1"), format!("{net}.2"));
    let a_links = format!(
        r#"[link.p2]
mode = "direct"
tun = "tsa{pid}"
local = "{a_addr}"
remote = "{b_addr}"
ipv6cp = false
echo_interval = 1
echo_failure = 3
allow_users = ["root"]
"#
    );
    // pppd's six hook arguments, one line per call.
    let hook = dir.join("hook");
    let hook_log = dir.join("hook.log");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$0 $*\" >> {log}\necho \"env $IFNAME $DEVICE $IPLOCAL $IPREMOTE $IPPARAM\" >> {log}\n",
            log = hook_log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let b_links = format!(
        r#"[link.p1]
mode = "dial"
device = "{BIN} -S {sock} direct p2"
tun = "tsb{pid}"
routes = ["10.252.{oct}.0/24"]
ipv6cp = false
echo_interval = 1
echo_failure = 3
redial_min = 1
redial_max = 2
ip_up = "{hook}"
ip_down = "{hook}"
"#,
        sock = guard.sides[0].socket().display(),
        oct = pid % 250,
        hook = hook.display(),
    );
    guard.sides[0].start(&a_links);
    guard.sides[1].start(&b_links);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);

    // B asked for its address (no `local`) and got A's `remote`.
    wait_for(Duration::from_secs(15), "IPCP up on B", || {
        b.status()[0]["local"].as_str() == Some(b_addr.as_str())
    });
    assert!(ping(b, &a_addr), "ping B -> A failed");
    assert!(ping(a, &b_addr), "ping A -> B failed");
    // Counters are published a few times a second.
    wait_for(Duration::from_secs(2), "counters", || {
        let c = &b.status()[0]["counters"];
        c["rx_packets"].as_u64() >= Some(2) && c["tx_packets"].as_u64() >= Some(2)
    });
    let sb = b.status();
    assert_eq!(sb[0]["phase"], "network", "{sb}");
    assert_eq!(sb[0]["peer_addr"], a_addr.as_str(), "{sb}");
    assert!(
        sb[0]["counters"]["rx_packets"].as_u64().unwrap() >= 2,
        "{sb}"
    );
    assert!(
        sb[0]["counters"]["tx_packets"].as_u64().unwrap() >= 2,
        "{sb}"
    );
    let routes = String::from_utf8_lossy(&b.exec(&["ip", "route"]).stdout).into_owned();
    assert!(
        routes.contains(&format!("10.252.{}.0/24 dev tsb{pid}", pid % 250)),
        "{routes}"
    );
    let sa = a.status();
    assert_eq!(sa[0]["phase"], "network", "{sa}");
    let peer = sa[0]["peer"].as_str().unwrap().to_string();
    assert!(peer.starts_with("direct via uid 0 pid "), "{sa}");
    let log_a = a.log();
    assert!(
        log_a.contains(&format!("p2: IPCP: myaddr {a_addr} hisaddr = {b_addr}")),
        "{log_a}"
    );

    // A second stream for the busy profile is refused, and says so.
    let busy = Command::new(BIN)
        .arg("-S")
        .arg(a.socket())
        .args(["direct", "p2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(busy.status.code(), Some(1));
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(
        err.contains("refused: profile p2 is already in use"),
        "{err}"
    );
    assert!(busy.stdout.is_empty());

    let want_hook = format!("{} tsb{pid} ssh 0 {b_addr} {a_addr} p1", hook.display());
    let want_env = format!("env tsb{pid} ssh {b_addr} {a_addr} p1");
    wait_for(Duration::from_secs(5), "ip-up hook", || {
        let log = std::fs::read_to_string(&hook_log).unwrap_or_default();
        log.contains(&want_hook) && log.contains(&want_env)
    });

    // Kill the `tsunagi direct` process: B sees its device exit, A the
    // stream end; B redials and the link works again within 10 s.
    let direct_pid: i32 = peer.rsplit(' ').next().unwrap().parse().unwrap();
    let killed_at = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(direct_pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_for(Duration::from_secs(10), "redial on B", || {
        let s = b.status();
        s[0]["redials"].as_u64() >= Some(1) && s[0]["local"].as_str() == Some(b_addr.as_str())
    });
    assert!(ping(b, &a_addr), "ping after redial failed");
    assert!(
        killed_at.elapsed() < Duration::from_secs(10),
        "redial took {:?}",
        killed_at.elapsed()
    );
    let sa = a.status();
    assert_ne!(
        sa[0]["peer"].as_str().unwrap(),
        peer,
        "A still shows the old stream: {sa}"
    );

    // The same ip-down hook ran when the killed link went down.
    let hooks = std::fs::read_to_string(&hook_log).unwrap_or_default();
    assert!(
        hooks.lines().filter(|l| *l == want_hook).count() >= 2,
        "{hooks}"
    );

    // hangup: B closes with Terminate-Request and stops; A's direct caller
    // is told the peer terminated; dial brings it back.
    let cli = |args: &[&str]| {
        let out = b.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(cli(&["hangup", "p1"]).contains("p1: closing"));
    wait_for(Duration::from_secs(5), "hangup", || {
        b.status()[0]["phase"] == "stopped"
    });
    wait_for(Duration::from_secs(5), "A idle", || {
        a.status()[0]["phase"] == "idle"
    });
    let sa = a.status();
    assert!(
        sa[0]["last_down"]
            .as_str()
            .unwrap_or("")
            .contains("peer terminated: Administrative hangup"),
        "{sa}"
    );
    assert!(!ping(b, &a_addr), "ping works after hangup");
    assert!(cli(&["dial", "p1"]).contains("dialling"));
    wait_for(Duration::from_secs(10), "dial after hangup", || {
        b.status()[0]["local"].as_str() == Some(b_addr.as_str())
    });
    assert!(ping(b, &a_addr), "ping after dial failed");

    // A peer that stops answering (daemon A stopped): B's LCP echoes go
    // unanswered, B takes the link down and redials; once A runs again
    // the link comes back.
    let a_pid = rustix::process::Pid::from_child(a.daemon.as_ref().unwrap());
    rustix::process::kill_process(a_pid, rustix::process::Signal::STOP).unwrap();
    let stopped = Instant::now();
    let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(Duration::from_secs(10), "echo timeout on B", || {
            b.status()[0]["last_down"]
                .as_str()
                .unwrap_or("")
                .contains("echo timeout")
        })
    }));
    rustix::process::kill_process(a_pid, rustix::process::Signal::CONT).unwrap();
    if let Err(e) = waited {
        std::panic::resume_unwind(e);
    }
    // echo_interval 1 s, echo_failure 3: about 4 s.
    assert!(
        stopped.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopped.elapsed()
    );
    wait_for(
        Duration::from_secs(20),
        "link back after the peer resumed",
        || {
            let s = b.status();
            s[0]["phase"] == "network" && s[0]["local"].as_str() == Some(b_addr.as_str())
        },
    );
    assert!(ping(b, &a_addr), "ping after echo-timeout redial failed");

    // SIGTERM: both exit 0; B's tun and route are gone with it.
    assert_eq!(guard.sides[1].stop(), Some(0), "B's exit status");
    assert_eq!(guard.sides[0].stop(), Some(0), "A's exit status");
    let b = &guard.sides[1];
    let links = String::from_utf8_lossy(&b.exec(&["ip", "link"]).stdout).into_owned();
    assert!(!links.contains(&format!("tsb{pid}")), "{links}");
    let log_b = b.log();
    assert!(log_b.contains("SIGTERM"), "{log_b}");
}
