//! End to end: the Labs gateway's daemon stops answering while the SSH
//! session stays open. The HOME gateway's LCP echo keepalive (the lab sets
//! `echo_interval = 2`, `echo_failure = 3`, like pppd's lcp-echo-interval /
//! lcp-echo-failure) must notice, take the routes down and redial; once the
//! Labs daemon runs again the link comes back. Needs root and sshd:
//! `#[ignore]`d, `scripts/test.sh` runs it as root.

mod e2e_support;

use e2e_support::{LabGuard, Node};
use std::time::{Duration, Instant};
use tsunagi_lab::LABS_HOST;

/// Three unanswered Echo-Requests 2 s apart, plus the interval in which the
/// first was sent, plus slack for a loaded machine.
const DETECT_LIMIT: Duration = Duration::from_secs(14);

struct Frozen(i32);

impl Frozen {
    fn stop(pid: i32) -> Frozen {
        let p = rustix::process::Pid::from_raw(pid).expect("pid");
        rustix::process::kill_process(p, rustix::process::Signal::STOP).expect("SIGSTOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(p) = rustix::process::Pid::from_raw(self.0) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::CONT);
        }
    }
}

#[test]
#[ignore = "needs root, network namespaces and sshd (scripts/test.sh runs it)"]
fn silent_peer_is_detected_by_lcp_echo_and_redialled() {
    let g = LabGuard::up();
    let lab = &g.lab;
    let labs_daemon = lab.daemon_pid(Node::LabsGw).expect("Labs daemon pid");

    let frozen_at = Instant::now();
    let frozen = Frozen::stop(labs_daemon);
    println!("stopped the Labs daemon (pid {labs_daemon})");
    let gone = LabGuard::wait_until(DETECT_LIMIT, Duration::from_millis(50), || {
        !lab.link_state(Node::HomeGw).route
    });
    assert!(
        gone.is_some(),
        "the HOME gateway still routes into tun0 {} s after its peer went silent",
        DETECT_LIMIT.as_secs()
    );
    let detected = frozen_at.elapsed();
    println!(
        "HOME took the link down {:.1} s after the peer went silent",
        detected.as_secs_f64()
    );
    // Not before the keepalive could have fired twice: it was the echo
    // timeout, not something else, that ended the link.
    assert!(
        detected >= Duration::from_secs(4),
        "down after only {detected:?}"
    );
    let home_log = g.log(Node::HomeGw);
    assert!(
        home_log.contains("No response to"),
        "the HOME log does not name the echo timeout"
    );

    drop(frozen);
    println!("continued the Labs daemon");
    let back = LabGuard::wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        g.link_is_up()
    });
    let back = back.expect("link not back within 20 s after the peer resumed");
    println!(
        "link back {:.1} s after the peer resumed",
        back.as_secs_f64()
    );
    let status = lab.daemon_link(Node::HomeGw).expect("status");
    println!("HOME status: {status}");
    assert!(status["redials"].as_u64().unwrap_or(0) >= 1, "{status}");
    let why = status["last_down"].as_str().unwrap_or("");
    assert!(
        why.contains("echo"),
        "last_down does not say echo timeout: {why:?}"
    );
    println!(
        "{}",
        lab.ping(Node::HomeHost, LABS_HOST)
            .expect("ping after the redial")
    );
}
