//! Shared pieces of the namespace tests (netns.rs, offload_netns.rs,
//! gre_netns.rs, proxy_arp_netns.rs, holes_netns.rs, policy_apply.rs,
//! policy_route.rs, policy_seed000.rs): a named network namespace deleted on drop, a thread
//! that has joined it, `ip` helpers and [`require_netns`].
//!
//! Those tests are `#[ignore]`d: a plain `cargo test` lists them as ignored,
//! `scripts/test.sh` runs them as root (`-- --include-ignored`). Run where
//! they cannot work, they fail naming what is missing.
//!
//! Each test file uses only part of this module.

#![allow(dead_code)]

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;

/// A named network namespace (`ip netns add`), deleted on drop, so even a
/// failing test leaves nothing behind.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `<prefix>-<pid>-<test>`: the pid keeps parallel runs apart, the test
    /// name the tests of one run.
    pub fn create(prefix: &str, test: &str) -> Netns {
        let name = format!("{prefix}-{}-{test}", std::process::id());
        // A leftover from a crashed run with the same pid would make `add` fail.
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        run("ip", &["netns", "add", &name]);
        Netns { name }
    }

    /// Join this namespace on the calling thread (tuns and sockets belong
    /// to the namespace of the thread that makes them, and keep it). Only
    /// for threads made for it, such as the one `run` makes.
    pub fn enter(&self) {
        let path = format!("/run/netns/{}", self.name);
        let ns = std::fs::File::open(&path).expect("open netns file");
        // SAFETY: setns(2) on an fd we own; it changes only this thread's
        // network namespace, and the thread was made for it.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", io::Error::last_os_error());
    }

    /// Run `f` on a new thread that has joined this namespace; a panic in
    /// `f` is re-raised here.
    pub fn run<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        std::thread::scope(|scope| {
            let handle = scope.spawn(move || {
                self.enter();
                f()
            });
            match handle.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Brings `lo` up (the policy tests bind to loopback-routed addresses).
    pub fn with_loopback(self) -> Netns {
        self.ip(&["link", "set", "lo", "up"]);
        self
    }

    /// Runs an async block on a current-thread runtime inside this namespace.
    pub fn block_on<F, R>(&self, f: F) -> R
    where
        F: std::future::Future<Output = R> + Send,
        R: Send,
    {
        self.run(|| block_on(f))
    }

    /// Whether `ip netns exec NS ARGS...` succeeds (its output discarded).
    pub fn exec_ok(&self, args: &[&str]) -> bool {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        Command::new("ip")
            .args(&all)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Output of `ip -n NS ARGS...`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Waits (up to 5 s) until `dev` is operationally up (`state UP`).
    ///
    /// `ip link set DEV up` returns before the kernel's link watch has
    /// attached the device's queueing discipline (`dev_activate`, run from
    /// a work item that may wait up to a second when many links change at
    /// once): until then packets sent on it are dropped (noop qdisc, counted
    /// as TX dropped). The same work sets the operational state, so
    /// `state UP` means packets go through.
    pub fn wait_link_up(&self, dev: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let link = self.ip(&["-o", "link", "show", "dev", dev]);
            if link.contains(" state UP ") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{dev} in {} not up within 5 s: {link}",
                self.name
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// `sysctl -w SETTING` inside this namespace.
    pub fn sysctl(&self, setting: &str) {
        run(
            "ip",
            &["netns", "exec", &self.name, "sysctl", "-q", "-w", setting],
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs `program args...`; its stdout. Panics with its stderr if it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Panics, naming what is missing, unless this test can run here: as root
/// (network namespaces, tun devices, nftables), with `ip` and each of
/// `tools` on PATH.
pub fn require_netns(tools: &[&str]) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        panic!("needs root (network namespaces): run as root, or through scripts/test.sh");
    }
    for tool in ["ip"].iter().chain(tools) {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            let package = match *tool {
                "ip" => "iproute2",
                "nft" => "nftables",
                "ping" => "iputils-ping",
                "sysctl" => "procps",
                other => other,
            };
            panic!("needs `{tool}`, which is not on PATH: apt-get install {package}");
        }
    }
}

/// Runs `f` to completion on a current-thread tokio runtime (on the
/// calling thread, so in its namespace).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// The Internet checksum (RFC 1071) of `h`, an even number of octets.
pub fn ip_checksum(h: &[u8]) -> u16 {
    let mut sum: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet without options (RFC 791): `proto`, `id`, the flags and
/// fragment offset word `frag`, TTL 64, its header checksum, then `body`;
/// for packets the kernel would not send (fragments, short headers).
pub fn ipv4_packet(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    id: u16,
    frag: u16,
    body: &[u8],
) -> Vec<u8> {
    let total = (20 + body.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = ip_checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(body);
    p
}
