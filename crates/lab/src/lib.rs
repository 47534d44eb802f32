//! tsunagi-lab: seed 000's two sites, HOME and Labs, built on one machine
//! out of network namespaces, linked by tsunagi's PPP over a real OpenSSH.
//!
//! The demo of the README and the test bed of the end-to-end tests
//! (`crates/lab/tests/e2e_*.rs`). It is not part of the gateway: the
//! `tsunagi` binary knows nothing of it, and the lab's two gateway daemons
//! run that binary unchanged (by default the `tsunagi` beside the
//! `tsunagi-lab` executable, that is from the same cargo target directory;
//! `up --tsunagi PATH` or `$TSUNAGI_BIN` names another).
//!
//! ```text
//!  P-home-host          P-home-gw               P-inet                P-labs-gw              P-labs-host
//!  lan0 192.168.1.10 -- lan0 192.168.1.1        home0 203.0.113.2     wan0 198.51.100.1      lan0 192.168.253.10
//!                       wan0 203.0.113.1 ------ labs0 198.51.100.2 -- lan0 192.168.253.1 --
//!                       tun0 10.224.1.2  ====== PPP over ssh =======  tun0 10.224.1.1 (sshd, direct mode)
//! ```
//!
//! The HOME gateway dials (seed 000 section 3: `set device "!ssh pppossh@VPN
//! server ..."`), the Labs gateway answers in direct mode through sshd's
//! forced command (seed 000 section 2, seed 001: key-only login, `from=`,
//! `command=`). Appendix B's addresses: Labs `myaddr 10.224.1.1 hisaddr =
//! 10.224.1.2`. The Internet namespace knows neither LAN, so LAN-to-LAN
//! traffic can only pass through the tunnel.
//!
//! Everything `up` creates (namespaces, processes, the `pppossh` account if
//! it was missing) is written down in the lab's state directory
//! `/run/tsunagi-lab/P/` before it is created, so `down` removes exactly that,
//! also after an `up` that failed half way. `up` copies both executables
//! there (`bin/tsunagi`, `bin/tsunagi-lab`), and the lab's processes run
//! those copies. The lab is built with `ip` and `sysctl` subprocesses; the
//! daemons themselves use netlink.
//!
//! Helper subcommands `tsunagi-lab tcp-serve` / `tcp-send` move a
//! deterministic byte stream over TCP and print a 256-bit digest of it on
//! both ends, so a transfer through the tunnel is checked end to end without
//! extra tools.
//!
//! The code: `up.rs` builds and starts a lab, `check.rs` looks at a running
//! one (`check`, `status`), `down.rs` takes it down, `tcp.rs` holds the TCP
//! helpers, `os.rs` the process, account and command helpers they share,
//! `cli.rs` the command line.
#![forbid(unsafe_code)]

mod check;
mod cli;
mod down;
mod os;
mod tcp;
mod up;

pub use check::{LinkState, TcpServer};
pub use cli::{run, CheckArgs, LabArgs, LabCommand, LabTarget, UpArgs};
pub use os::netns_pids;
pub use tcp::{hex, tcp_send, tcp_serve, StreamDigest, TcpSendArgs, TcpServeArgs, TransferReport};

use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prefix of the namespace names when `--prefix` is not given.
pub const DEFAULT_PREFIX: &str = "tsl";
/// Parent of every lab's state directory (tmpfs, root-owned 0755, so sshd's
/// StrictModes is satisfied for keys kept there).
pub const STATE_ROOT: &str = "/run/tsunagi-lab";
/// The unprivileged account sshd logs the HOME gateway in as (seed 000
/// section 2.2: `pppossh`).
pub const LAB_USER: &str = "pppossh";

/// Environment variable: `off` makes `up` write gateway configs
/// without the large MRU and with `tun_offload = false` (one packet per
/// 1500-byte frame, as before offload), for before/after benchmarks.
pub const OFFLOAD_ENV: &str = "TSUNAGI_LAB_OFFLOAD";

/// The Labs gateway's Internet address, where sshd listens.
pub const LABS_GW_WAN: &str = "198.51.100.1";
/// The HOME gateway's Internet address, the only one `from=` admits.
pub const HOME_GW_WAN: &str = "203.0.113.1";
/// A host on the HOME LAN.
pub const HOME_HOST: &str = "192.168.1.10";
/// A host on the Labs LAN.
pub const LABS_HOST: &str = "192.168.253.10";
/// Labs side of the tunnel (seed 000 appendix B: `myaddr 10.224.1.1`).
pub const LABS_TUN_ADDR: &str = "10.224.1.1";
/// HOME side of the tunnel (`hisaddr = 10.224.1.2`).
pub const HOME_TUN_ADDR: &str = "10.224.1.2";
/// Name of the link in the HOME gateway's config.
pub const HOME_LINK: &str = "labs";
/// Name of the link (the direct profile) in the Labs gateway's config.
pub const LABS_LINK: &str = "home";
/// TCP port the `check` transfer uses on the Labs host.
pub const CHECK_PORT: u16 = 5001;

/// Environment variable naming the gateway binary the lab's daemons run
/// (`up --tsunagi PATH` wins over it).
pub const TSUNAGI_BIN_ENV: &str = "TSUNAGI_BIN";

/// The five namespaces of seed 000's topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// A PC on the HOME LAN, 192.168.1.10/24.
    HomeHost,
    /// The HOME VPN gateway (seed 000's "VPN client"): dials over ssh.
    HomeGw,
    /// The Internet between the two sites: routes only the gateways' WAN /30s.
    Inet,
    /// The Labs VPN gateway (seed 000's "VPN server"): sshd, direct mode.
    LabsGw,
    /// A host on the Labs LAN, 192.168.253.10/24.
    LabsHost,
}

impl Node {
    /// All nodes, in creation order.
    pub const ALL: [Node; 5] = [
        Node::HomeHost,
        Node::HomeGw,
        Node::Inet,
        Node::LabsGw,
        Node::LabsHost,
    ];

    fn suffix(self) -> &'static str {
        match self {
            Node::HomeHost => "home-host",
            Node::HomeGw => "home-gw",
            Node::Inet => "inet",
            Node::LabsGw => "labs-gw",
            Node::LabsHost => "labs-host",
        }
    }
}

/// The executables `up` copies into a lab's state directory.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The gateway binary both daemons (and sshd's forced command) run.
    pub tsunagi: PathBuf,
    /// The `tsunagi-lab` executable, for the `tcp-serve` / `tcp-send`
    /// helpers inside the namespaces.
    pub lab: PathBuf,
}

impl Binaries {
    /// This executable, and `tsunagi` if given (`--tsunagi` or
    /// `$TSUNAGI_BIN`), else the `tsunagi` beside this executable. An error
    /// names the gateway binary's path when there is no file there.
    pub fn locate(tsunagi: Option<PathBuf>) -> Result<Binaries> {
        let lab = std::env::current_exe().context("locating the tsunagi-lab executable")?;
        let given = tsunagi.is_some();
        let tsunagi = tsunagi.unwrap_or_else(|| lab.with_file_name("tsunagi"));
        if !tsunagi.is_file() {
            if given {
                bail!(
                    "no gateway binary {} (from --tsunagi or ${TSUNAGI_BIN_ENV})",
                    tsunagi.display()
                );
            }
            bail!(
                "no gateway binary {}: build it with `cargo build -p tsunagi` (the same \
                 profile as tsunagi-lab) or name one with --tsunagi PATH or ${TSUNAGI_BIN_ENV}",
                tsunagi.display()
            );
        }
        Ok(Binaries { tsunagi, lab })
    }
}

/// One lab instance: its prefix and state directory.
#[derive(Debug, Clone)]
pub struct Lab {
    prefix: String,
    dir: PathBuf,
}

/// Where a lab keeps each file.
impl Lab {
    /// A lab handle; validates the prefix (it becomes part of file and
    /// namespace names).
    pub fn new(prefix: &str) -> Result<Lab> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 12
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !prefix.starts_with('-');
        if !ok {
            bail!("lab prefix {prefix:?}: use 1-12 letters, digits or '-', not starting with '-'");
        }
        Ok(Lab {
            prefix: prefix.to_string(),
            dir: Path::new(STATE_ROOT).join(prefix),
        })
    }

    /// Network namespace name of `node`.
    pub fn ns(&self, node: Node) -> String {
        format!("{}-{}", self.prefix, node.suffix())
    }

    /// The lab's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The copy of the tsunagi binary the lab's daemons run.
    pub fn tsunagi_bin(&self) -> PathBuf {
        self.dir.join("bin/tsunagi")
    }

    /// The copy of the tsunagi-lab executable the helpers inside the
    /// namespaces run.
    pub fn lab_bin(&self) -> PathBuf {
        self.dir.join("bin/tsunagi-lab")
    }

    /// Control socket of the HOME gateway's daemon.
    pub fn home_sock(&self) -> PathBuf {
        self.dir.join("home/tsunagi.sock")
    }

    /// Control socket of the Labs gateway's daemon.
    pub fn labs_sock(&self) -> PathBuf {
        self.dir.join("labs/tsunagi.sock")
    }

    /// Log (stdout + stderr) of the HOME gateway's daemon.
    pub fn home_log(&self) -> PathBuf {
        self.dir.join("home/tsunagi.log")
    }

    /// Log (stdout + stderr) of the Labs gateway's daemon.
    pub fn labs_log(&self) -> PathBuf {
        self.dir.join("labs/tsunagi.log")
    }

    /// sshd's log on the Labs gateway.
    pub fn sshd_log(&self) -> PathBuf {
        self.dir.join("ssh/sshd.log")
    }

    /// The second client key, whose authorized_keys line forces
    /// `cat >/dev/null` (a one-way byte sink for benchmarks).
    pub fn bench_key(&self) -> PathBuf {
        self.dir.join("home/bench_ed25519")
    }

    /// The HOME gateway's pinned known_hosts file.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("home/known_hosts")
    }

    /// ssh arguments (without the destination) the HOME gateway uses; the
    /// benchmark reuses them for its raw pipe so both paths negotiate the
    /// same cipher.
    pub fn ssh_options(&self, key: &Path) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "-F".into(),
            "/dev/null".into(),
            "-T".into(),
            "-i".into(),
            key.display().to_string(),
        ];
        for o in [
            "IdentitiesOnly=yes".to_string(),
            "BatchMode=yes".to_string(),
            format!("UserKnownHostsFile={}", self.known_hosts().display()),
            "GlobalKnownHostsFile=/dev/null".to_string(),
            "StrictHostKeyChecking=yes".to_string(),
            "ServerAliveInterval=5".to_string(),
            "ConnectTimeout=5".to_string(),
            "LogLevel=ERROR".to_string(),
        ] {
            v.push("-o".into());
            v.push(o);
        }
        v
    }

    fn state_file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn record(&self, file: &str, line: &str) -> Result<()> {
        let path = self.state_file(file);
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("recording to {}", path.display()))?;
        writeln!(f, "{line}")?;
        f.sync_all()?;
        Ok(())
    }

    fn recorded(&self, file: &str) -> Vec<String> {
        fs::read_to_string(self.state_file(file))
            .map(|s| {
                s.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_gateway_binary_is_named() {
        let e = Binaries::locate(Some("/nonexistent/tsunagi".into())).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/tsunagi"), "{e}");
        assert!(e.to_string().contains("--tsunagi"), "{e}");
    }

    #[test]
    fn prefix_is_validated() {
        assert!(Lab::new("tsl").is_ok());
        assert!(Lab::new("t1234-0").is_ok());
        assert!(Lab::new("").is_err());
        assert!(Lab::new("../etc").is_err());
        assert!(Lab::new("-x").is_err());
        assert!(Lab::new("averyveryverylongprefix").is_err());
        assert_eq!(Lab::new("x").unwrap().ns(Node::LabsGw), "x-labs-gw");
    }
}
