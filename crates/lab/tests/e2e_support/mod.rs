//! Shared pieces of the end-to-end tests: what they need ([`require_lab`]),
//! a lab that is taken down when the test ends (also when it fails), and
//! process lookups.
//!
//! The tests need root (network namespaces, an account, sshd) and OpenSSH.
//! They are `#[ignore]`d: a plain `cargo test` lists them as ignored,
//! `scripts/test.sh` runs them as root (`-- --include-ignored`). Run where
//! they cannot work, they fail naming what is missing, never a silent pass.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use tsunagi_lab::{Lab, Node};

/// The lab's executable. Its daemons run the gateway binary `tsunagi`
/// beside it in the same target directory: `cargo test --workspace` builds
/// that too (the `tsunagi` package has integration tests of its own, so
/// cargo builds its binary), but `cargo test -p tsunagi-lab` alone does not,
/// so run `cargo build -p tsunagi` first then (`tsunagi-lab up` names the
/// path if it is missing).
pub const BIN: &str = env!("CARGO_BIN_EXE_tsunagi-lab");

/// Panics unless we are root (`tsunagi-lab` refuses to run otherwise).
pub fn require_root() {
    if !rustix::process::geteuid().is_root() {
        panic!(
            "needs root (network namespaces, useradd, sshd): \
             run as root, or through scripts/test.sh"
        );
    }
}

/// Panics, naming what is missing, unless a lab can come up here: root,
/// OpenSSH's sshd, ssh and ssh-keygen, and the tools `tsunagi-lab` runs.
/// [`LabGuard::up`] calls it first.
pub fn require_lab() {
    require_root();
    for (tool, package) in [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh", "openssh-client"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
    ] {
        if !Path::new(tool).exists() {
            panic!("needs {tool}: apt-get install {package}");
        }
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("ping", "iputils-ping"),
        ("ss", "iproute2"),
        ("setsid", "util-linux"),
        ("useradd", "passwd"),
    ] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            panic!("needs `{tool}`, which is not on PATH: apt-get install {package}");
        }
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A lab brought up with `tsunagi-lab up`, taken down on drop.
pub struct LabGuard {
    pub lab: Lab,
    pub prefix: String,
}

impl LabGuard {
    /// `tsunagi-lab up --prefix t<pid><n>`; panics with its output if it
    /// fails, and first, naming what is missing, if a lab cannot come up
    /// here ([`require_lab`]).
    pub fn up() -> LabGuard {
        require_lab();
        let prefix = format!(
            "t{}{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Lab::new(&prefix).expect("valid prefix");
        let guard = LabGuard {
            lab,
            prefix: prefix.clone(),
        };
        let started = Instant::now();
        let out = Command::new(BIN)
            .args(["up", "--prefix", &prefix])
            .output()
            .expect("running tsunagi-lab up");
        println!(
            "tsunagi-lab up --prefix {prefix}: {} in {:.1} s\n{}{}",
            out.status,
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "tsunagi-lab up failed");
        guard
    }

    /// Whether the link is up end to end: both gateways' tun0 has its
    /// addresses and route, and the HOME daemon's link is in the network
    /// phase.
    pub fn link_is_up(&self) -> bool {
        self.lab.link_state(Node::HomeGw).is_up()
            && self.lab.link_state(Node::LabsGw).is_up()
            && self
                .lab
                .daemon_link(Node::HomeGw)
                .map(|l| l["phase"] == "network")
                .unwrap_or(false)
    }

    /// Pids of processes in `node`'s namespace whose command name is `comm`.
    pub fn pids_named(&self, node: Node, comm: &str) -> Vec<i32> {
        tsunagi_lab::netns_pids(&self.lab.ns(node))
            .into_iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim() == comm)
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Kills the HOME gateway's ssh client (the PPP link's byte stream).
    pub fn kill_ssh(&self) -> i32 {
        let pids = self.pids_named(Node::HomeGw, "ssh");
        assert_eq!(
            pids.len(),
            1,
            "expected one ssh in the HOME gateway, found {pids:?}"
        );
        let pid = rustix::process::Pid::from_raw(pids[0]).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("kill ssh");
        pids[0]
    }

    /// Polls `cond` every `every` until it holds or `limit` passes; returns
    /// the time it took.
    pub fn wait_until(
        limit: Duration,
        every: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> Option<Duration> {
        let started = Instant::now();
        loop {
            if cond() {
                return Some(started.elapsed());
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(every);
        }
    }

    /// The lab's daemon log of one gateway.
    pub fn log(&self, node: Node) -> String {
        let path = match node {
            Node::HomeGw => self.lab.home_log(),
            _ => self.lab.labs_log(),
        };
        std::fs::read_to_string(path).unwrap_or_default()
    }

    /// Prints the end of both daemons' logs (for failing tests).
    pub fn dump_logs(&self) {
        for node in [Node::HomeGw, Node::LabsGw] {
            let log = self.log(node);
            let lines: Vec<&str> = log.lines().collect();
            println!("---- {:?} log (last 40 lines) ----", node);
            for l in &lines[lines.len().saturating_sub(40)..] {
                println!("{l}");
            }
        }
    }
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        let out = Command::new(BIN)
            .args(["down", "--prefix", &self.prefix])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "tsunagi-lab down --prefix {} failed: {}{}",
                self.prefix,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("running tsunagi-lab down: {e}"),
        }
    }
}
