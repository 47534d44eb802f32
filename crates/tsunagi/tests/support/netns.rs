//! Network namespaces from a test: a thread that joins one, commands run
//! in one, veth pairs between two.

use std::os::fd::AsFd;
use std::process::Command;

/// Moves the calling thread into namespace `ns`: sockets it makes from
/// now on belong there. Meant for a thread of its own (see [`in_ns`]).
pub fn enter(ns: &str) {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .expect("setns");
}

/// Runs `f` on a thread of its own that joined namespace `ns`; a panic in
/// `f` is the caller's.
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(ns);
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// `ip netns exec NS ARGS...`, which must succeed.
pub fn run(ns: &str, args: &[&str]) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{ns}: {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A veth pair: `a` in namespace `ns_a` with `addr_a` (CIDR, or "" for
/// none), `b` in `ns_b` with `addr_b`; both up, and both namespaces'
/// loopback.
pub fn veth(ns_a: &str, a: &str, addr_a: &str, ns_b: &str, b: &str, addr_b: &str) {
    let st = Command::new("ip")
        .args([
            "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b,
        ])
        .args(["netns", ns_b])
        .status()
        .unwrap();
    assert!(st.success(), "veth {a}/{b}");
    for (ns, dev, addr) in [(ns_a, a, addr_a), (ns_b, b, addr_b)] {
        if !addr.is_empty() {
            run(ns, &["ip", "addr", "add", addr, "dev", dev]);
        }
        run(ns, &["ip", "link", "set", dev, "up"]);
    }
    run(ns_a, &["ip", "link", "set", "lo", "up"]);
    run(ns_b, &["ip", "link", "set", "lo", "up"]);
}

/// Three namespaces in a line, `a` — `mid` — `b`, `mid` routing between
/// them: `a`'s eth0 is `net_a`.1 and `mid`'s m0 `net_a`.2, `mid`'s m1 is
/// `net_b`.1 and `b`'s eth0 `net_b`.2 (`net_a`, `net_b`: the first three
/// octets of a /24, as "10.78.1").
pub fn line(a: &str, mid: &str, b: &str, net_a: &str, net_b: &str) {
    veth(
        a,
        "eth0",
        &format!("{net_a}.1/24"),
        mid,
        "m0",
        &format!("{net_a}.2/24"),
    );
    veth(
        mid,
        "m1",
        &format!("{net_b}.1/24"),
        b,
        "eth0",
        &format!("{net_b}.2/24"),
    );
    run(
        a,
        &[
            "ip",
            "route",
            "add",
            &format!("{net_b}.0/24"),
            "via",
            &format!("{net_a}.2"),
        ],
    );
    run(
        b,
        &[
            "ip",
            "route",
            "add",
            &format!("{net_a}.0/24"),
            "via",
            &format!("{net_b}.1"),
        ],
    );
    run(mid, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
}
