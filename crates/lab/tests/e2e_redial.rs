//! End to end: the SSH session under the PPP link dies, the HOME gateway's
//! daemon notices, takes the routes away, redials and brings them back;
//! a TCP transfer that was running across the outage still completes intact.
//! Needs root and sshd: `#[ignore]`d, `scripts/test.sh` runs it as root.

mod e2e_support;

use e2e_support::{LabGuard, Node};
use std::time::{Duration, Instant};

const REDIAL_LIMIT: Duration = Duration::from_secs(10);

fn route_to_labs(g: &LabGuard) -> bool {
    g.lab.link_state(Node::HomeGw).route
}

#[test]
#[ignore = "needs root, network namespaces and sshd (scripts/test.sh runs it)"]
fn killed_ssh_redials_and_routes_follow_the_link() {
    let g = LabGuard::up();
    let lab = &g.lab;
    assert!(
        route_to_labs(&g),
        "192.168.253.0/24 not routed into tun0 while up"
    );
    let redials_before = lab.daemon_link(Node::HomeGw).expect("status")["redials"]
        .as_u64()
        .unwrap_or(0);

    // 1. Kill ssh while idle: routes go, then come back with the new link.
    let killed_at = Instant::now();
    let pid = g.kill_ssh();
    println!("killed ssh pid {pid}");
    let gone = LabGuard::wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        !route_to_labs(&g)
    });
    let gone = gone.expect("route to 192.168.253.0/24 still there 5 s after ssh died");
    println!("route removed {:.2} s after the kill", gone.as_secs_f64());
    let back = LabGuard::wait_until(REDIAL_LIMIT, Duration::from_millis(50), || g.link_is_up());
    assert!(
        back.is_some(),
        "link not back within {} s of the kill",
        REDIAL_LIMIT.as_secs()
    );
    println!(
        "link back {:.2} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
    let status = lab.daemon_link(Node::HomeGw).expect("status");
    assert!(
        status["redials"].as_u64().unwrap_or(0) > redials_before,
        "redial count did not grow: {status}"
    );
    let t = lab.transfer(5_000_000).expect("transfer after the redial");
    println!("after redial: {t}");

    // 2. Kill ssh in the middle of a transfer: TCP rides out the outage and
    //    the bytes arrive intact over the redialled link.
    let bytes = 40_000_000;
    let transfer = {
        let lab = lab.clone();
        std::thread::spawn(move || lab.transfer(bytes))
    };
    // Let the transfer get going first.
    let started = LabGuard::wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        lab.daemon_link(Node::LabsGw)
            .map(|l| l["counters"]["rx_bytes"].as_u64().unwrap_or(0) > 2_000_000)
            .unwrap_or(false)
    });
    assert!(started.is_some(), "the transfer did not start");
    let redials_before = lab.daemon_link(Node::HomeGw).expect("status")["redials"]
        .as_u64()
        .unwrap_or(0);
    let pid = g.kill_ssh();
    println!("killed ssh pid {pid} mid-transfer");
    assert!(
        !transfer.is_finished(),
        "the transfer ended before ssh was killed; nothing was tested"
    );
    let t = transfer
        .join()
        .expect("transfer thread")
        .expect("transfer across a redial");
    println!("across the redial: {t}");
    assert_eq!(t.bytes, bytes);
    assert!(lab.link_state(Node::HomeGw).is_up());
    let status = lab.daemon_link(Node::HomeGw).expect("status");
    assert!(
        status["redials"].as_u64().unwrap_or(0) > redials_before,
        "no redial after the mid-transfer kill: {status}"
    );
}
