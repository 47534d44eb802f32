//! Shared pieces of the tests that need root (daemon_netns.rs,
//! daemon_auth.rs, daemon_routes.rs, daemon_limits.rs, e2e_ipv6.rs, and the requirement
//! checks of daemon_control.rs and policy_daemon.rs): a daemon in its own
//! network namespace, a guard that removes namespaces, daemons and the
//! scratch directory whatever happened (dumping the daemons' logs when the
//! test failed), and [`require_root`] / [`require_netns`], which make such a
//! test fail, naming what is missing, where it cannot run; [`netns`], the
//! namespace helpers of pptp_netns.rs, l2tp_netns.rs and holes_policy.rs;
//! [`icmp`], echo requests built by hand.
//!
//! Each test file uses only part of this module.

#![allow(dead_code)]

pub mod icmp;
pub mod netns;
pub mod transfer;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tsunagi");

/// One daemon: its namespace, and its files in the shared scratch directory
/// (`<tag>.toml`, `<tag>.sock`, `<tag>.log`).
pub struct Side {
    pub ns: String,
    pub dir: PathBuf,
    pub tag: &'static str,
    pub daemon: Option<Child>,
}

impl Side {
    pub fn socket(&self) -> PathBuf {
        self.dir.join(format!("{}.sock", self.tag))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.tag))).unwrap_or_default()
    }

    /// Writes `<tag>.toml`: a `[daemon]` section naming this side's socket
    /// and log, then `links`.
    pub fn config(&self, links: &str) -> PathBuf {
        let cfg = self.dir.join(format!("{}.toml", self.tag));
        let text = format!(
            "[daemon]\ncontrol_socket = \"{}\"\nlog_file = \"{}\"\n\n{links}",
            self.socket().display(),
            self.dir.join(format!("{}.log", self.tag)).display()
        );
        std::fs::write(&cfg, text).unwrap();
        // The config may hold a password.
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
        cfg
    }

    /// Starts `tsunagi run` in this side's namespace and waits for its
    /// control socket.
    pub fn start(&mut self, links: &str) {
        self.start_with(&[], links);
    }

    /// [`Side::start`] under `wrapper`, a command that runs the rest of
    /// its arguments (e.g. `prlimit --nofile=1024:1024`); empty: none.
    pub fn start_with(&mut self, wrapper: &[&str], links: &str) {
        let cfg = self.config(links);
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("ip");
                c
            }
            None => Command::new("ip"),
        };
        let child = command
            .args(["netns", "exec", &self.ns, BIN, "-c"])
            .arg(&cfg)
            .arg("run")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        wait_for(Duration::from_secs(10), "daemon socket", || {
            self.socket().exists()
        });
    }

    /// `tsunagi -S <this side's socket> ARGS...`, run to completion.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .arg("-S")
            .arg(self.socket())
            .args(args)
            .output()
            .unwrap()
    }

    /// The site links of `tsunagi status --json` through this side's
    /// control socket.
    pub fn status(&self) -> serde_json::Value {
        self.status_all()["links"].clone()
    }

    /// The inner address of this side's (first) link once IPCP is up.
    pub fn link_address(&self) -> Option<String> {
        let links = self.status();
        let link = &links[0];
        (link["phase"] == "network")
            .then(|| link["local"].as_str().map(str::to_string))
            .flatten()
    }

    /// `tsunagi status --json` through this side's control socket: the
    /// links and the sessions.
    pub fn status_all(&self) -> serde_json::Value {
        let out = self.cli(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs `args` inside this side's namespace.
    pub fn exec(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .output()
            .unwrap()
    }

    /// SIGTERM the daemon; its exit status.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.daemon.take()?;
        let pid = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(8);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Removes what the test made, whatever happened.
pub struct Guard {
    pub sides: Vec<Side>,
    pub dir: PathBuf,
}

impl Guard {
    /// A fresh scratch directory `$TMPDIR/<dir_name>` and two namespaces,
    /// `<ns_prefix>a` (side "a") and `<ns_prefix>b` (side "b").
    pub fn pair(dir_name: &str, ns_prefix: &str) -> Guard {
        Guard::with_sides(dir_name, ns_prefix, &["a", "b"])
    }

    /// A fresh scratch directory `$TMPDIR/<dir_name>` (mode 0755) and one
    /// namespace, `<ns_prefix>a` (side "a").
    pub fn single(dir_name: &str, ns_prefix: &str) -> Guard {
        Guard::with_sides(dir_name, ns_prefix, &["a"])
    }

    /// A fresh scratch directory and one namespace per tag, `<ns_prefix><tag>`.
    pub fn with_sides(dir_name: &str, ns_prefix: &str, tags: &[&'static str]) -> Guard {
        let dir = std::env::temp_dir().join(dir_name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Whatever the umask: the daemon refuses a log directory others
        // may write to.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut guard = Guard {
            sides: Vec::new(),
            dir: dir.clone(),
        };
        for &tag in tags {
            let ns = format!("{ns_prefix}{tag}");
            let st = Command::new("ip")
                .args(["netns", "add", &ns])
                .status()
                .unwrap();
            assert!(st.success(), "ip netns add {ns}");
            guard.sides.push(Side {
                ns,
                dir: dir.clone(),
                tag,
                daemon: None,
            });
        }
        guard
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        for side in &mut self.sides {
            if let Some(mut c) = side.daemon.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = Command::new("ip").args(["netns", "del", &side.ns]).status();
        }
        // TSUNAGI_TEST_DUMP=1 shows the logs of passing runs too.
        if std::thread::panicking() || std::env::var_os("TSUNAGI_TEST_DUMP").is_some() {
            for side in &self.sides {
                eprintln!("---- log of daemon {} ----\n{}", side.tag, side.log());
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `cond` every 50 ms; panics naming `what` after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Panics unless we are root. The tests that need it are `#[ignore]`d, so
/// a plain `cargo test` lists them without running them; `scripts/test.sh`
/// runs them as root (`-- --include-ignored`).
pub fn require_root() {
    if !rustix::process::geteuid().is_root() {
        panic!(
            "needs root (network namespaces, tun devices, other uids): \
             run as root, or through scripts/test.sh"
        );
    }
}

/// Panics, naming what is missing, unless a daemon can run in a network
/// namespace here: root, `/dev/net/tun`, and `ip`, `ping` and each of
/// `tools` on PATH.
pub fn require_netns(tools: &[&str]) {
    require_root();
    for tool in ["ip", "ping"].iter().chain(tools) {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            let package = match *tool {
                "ip" => "iproute2",
                "ping" => "iputils-ping",
                "nft" => "nftables",
                "prlimit" | "setpriv" => "util-linux",
                other => other,
            };
            panic!("needs `{tool}`, which is not on PATH: apt-get install {package}");
        }
    }
    if !Path::new("/dev/net/tun").exists() {
        panic!("needs /dev/net/tun: modprobe tun");
    }
}

/// Two pings from `side`'s namespace to `addr`; whether they were answered.
pub fn ping(side: &Side, addr: &str) -> bool {
    let out = side.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", addr]);
    out.status.success()
}
