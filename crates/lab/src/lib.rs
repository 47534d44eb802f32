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
#![forbid(unsafe_code)]

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// The gateways' offload settings: `mru = 65535` on both tsunagi ends so
/// that the tuns exchange TCP super-packets, unless [`OFFLOAD_ENV`] is
/// `off`.
fn offload_settings() -> &'static str {
    offload_lines(!std::env::var(OFFLOAD_ENV).is_ok_and(|v| v == "off"))
}

fn offload_lines(enabled: bool) -> &'static str {
    if enabled {
        "mru = 65535                     # tsunagi both ends: TCP super-packets over the link (tun_offload)\n"
    } else {
        "tun_offload = false             # TSUNAGI_LAB_OFFLOAD=off\n"
    }
}

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

/// `tsunagi-lab ...`: seed 000's HOME and Labs sites in network namespaces,
/// linked by the tsunagi gateway's PPP over SSH.
#[derive(Debug, Parser)]
#[command(name = "tsunagi-lab", version, about)]
pub struct LabArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// The lab's subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build seed 000's HOME and Labs sites in network namespaces and bring
    /// the PPP over SSH link up between their gateways.
    Up(UpArgs),
    /// Ping and move TCP data between the two LANs through the tunnel.
    Check(CheckArgs),
    /// Remove everything `up` created (idempotent).
    Down(LabTarget),
    /// Show what the lab consists of and both daemons' status.
    Status(LabTarget),
    /// Accept one TCP connection, read it to the end, print bytes and digest.
    TcpServe(TcpServeArgs),
    /// Send a deterministic byte stream over TCP, print bytes and digest.
    TcpSend(TcpSendArgs),
}

/// Which lab.
#[derive(Debug, Args, Clone)]
pub struct LabTarget {
    /// Prefix of the namespace names (letters, digits, '-'; at most 12).
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
}

/// `tsunagi-lab up`
#[derive(Debug, Args, Clone)]
pub struct UpArgs {
    /// Which lab.
    #[command(flatten)]
    pub target: LabTarget,
    /// The gateway binary the daemons run [default: `tsunagi` beside this
    /// executable].
    #[arg(long, env = TSUNAGI_BIN_ENV, value_name = "PATH")]
    pub tsunagi: Option<PathBuf>,
}

/// `tsunagi-lab check`
#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// Which lab.
    #[command(flatten)]
    pub target: LabTarget,
    /// Bytes to move HOME host -> Labs host.
    #[arg(long, default_value_t = 10_000_000)]
    pub bytes: u64,
}

/// `tsunagi-lab tcp-serve`
#[derive(Debug, Args, Clone)]
pub struct TcpServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:5001")]
    pub listen: SocketAddr,
    /// Give up when no connection or no data comes for this many seconds.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout: u64,
    /// Only count the bytes (for benchmarks: hashing would compete with
    /// the tunnel for the CPU).
    #[arg(long)]
    pub no_hash: bool,
}

/// `tsunagi-lab tcp-send`
#[derive(Debug, Args, Clone)]
pub struct TcpSendArgs {
    /// Where to send.
    pub to: SocketAddr,
    /// How many bytes.
    pub bytes: u64,
    /// Seed of the byte stream.
    #[arg(long, default_value_t = 0x7473_756e_6167_6921)]
    pub seed: u64,
    /// Give up when a write blocks for this many seconds.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout: u64,
    /// Send one pseudo-random block over and over and do not hash (for
    /// benchmarks: the generator then costs almost no CPU).
    #[arg(long)]
    pub no_hash: bool,
}

/// Entry point of `tsunagi-lab`.
pub fn run(args: LabArgs) -> Result<()> {
    match args.command {
        LabCommand::Up(u) => {
            let lab = Lab::new(&u.target.prefix)?;
            require_root()?;
            lab.up(&Binaries::locate(u.tsunagi)?)
        }
        LabCommand::Check(c) => {
            let lab = Lab::new(&c.target.prefix)?;
            require_root()?;
            lab.check(c.bytes)
        }
        LabCommand::Down(t) => {
            let lab = Lab::new(&t.prefix)?;
            require_root()?;
            lab.down()
        }
        LabCommand::Status(t) => {
            let lab = Lab::new(&t.prefix)?;
            lab.status()
        }
        LabCommand::TcpServe(a) => tcp_serve(&a).map(|_| ()),
        LabCommand::TcpSend(a) => tcp_send(&a).map(|_| ()),
    }
}

fn require_root() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("tsunagi-lab must run as root (it creates network namespaces and an account)");
    }
    Ok(())
}

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

    // ------------------------------------------------------------------ up

    /// `tsunagi-lab up`: copy `binaries` in, build, start, wait for the
    /// link, print a guide.
    pub fn up(&self, binaries: &Binaries) -> Result<()> {
        if self.dir.exists() {
            bail!(
                "lab {:?} exists already ({}); take it down first: tsunagi-lab down --prefix {}",
                self.prefix,
                self.dir.display(),
                self.prefix
            );
        }
        let started = Instant::now();
        match self.build_and_start(binaries) {
            Ok(()) => {
                println!(
                    "lab {}: link up after {:.1} s",
                    self.prefix,
                    started.elapsed().as_secs_f64()
                );
                self.print_guide(&binaries.lab);
                Ok(())
            }
            Err(e) => {
                eprintln!("lab {}: up failed: {e:#}", self.prefix);
                self.print_log_tails(40);
                eprintln!("lab {}: tearing down what was built", self.prefix);
                if let Err(d) = self.down() {
                    eprintln!("lab {}: down after failed up: {d:#}", self.prefix);
                }
                Err(e)
            }
        }
    }

    fn build_and_start(&self, binaries: &Binaries) -> Result<()> {
        for sub in ["", "bin", "home", "labs", "ssh"] {
            let d = self.dir.join(sub);
            fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755))?;
        }
        fs::set_permissions(STATE_ROOT, fs::Permissions::from_mode(0o755))?;
        // The state files exist from the start so `down` knows this is a lab.
        for f in ["netns", "pids"] {
            self.record(f, "")?;
        }

        for (from, to) in [
            (&binaries.tsunagi, self.tsunagi_bin()),
            (&binaries.lab, self.lab_bin()),
        ] {
            fs::copy(from, &to)
                .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755))?;
        }

        self.build_network()?;
        self.ensure_user()?;
        self.make_keys()?;
        self.write_configs()?;
        self.start_sshd()?;
        self.start_daemons()?;
        self.wait_link_up(Duration::from_secs(20))
    }

    fn build_network(&self) -> Result<()> {
        // A namespace of that name that we did not make must not end up in
        // our record, or `down` would delete it.
        let existing = cmd_stdout("ip", &["netns", "list"])?;
        for node in Node::ALL {
            let ns = self.ns(node);
            if existing
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str()))
            {
                bail!("network namespace {ns} exists already and is not this lab's; choose another --prefix");
            }
        }
        for node in Node::ALL {
            let ns = self.ns(node);
            self.record("netns", &ns)?;
            run_cmd("ip", &["netns", "add", &ns])?;
            run_cmd("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        use Node::*;
        self.veth(
            HomeHost,
            "lan0",
            "192.168.1.10/24",
            HomeGw,
            "lan0",
            "192.168.1.1/24",
        )?;
        self.veth(
            HomeGw,
            "wan0",
            "203.0.113.1/30",
            Inet,
            "home0",
            "203.0.113.2/30",
        )?;
        self.veth(
            Inet,
            "labs0",
            "198.51.100.2/30",
            LabsGw,
            "wan0",
            "198.51.100.1/30",
        )?;
        self.veth(
            LabsGw,
            "lan0",
            "192.168.253.1/24",
            LabsHost,
            "lan0",
            "192.168.253.10/24",
        )?;
        for (node, via) in [
            (HomeHost, "192.168.1.1"),
            (HomeGw, "203.0.113.2"),
            (LabsGw, "198.51.100.2"),
            (LabsHost, "192.168.253.1"),
        ] {
            run_cmd(
                "ip",
                &["-n", &self.ns(node), "route", "add", "default", "via", via],
            )?;
        }
        for node in [HomeGw, Inet, LabsGw] {
            run_cmd(
                "ip",
                &[
                    "netns",
                    "exec",
                    &self.ns(node),
                    "sysctl",
                    "-qw",
                    "net.ipv4.ip_forward=1",
                ],
            )?;
        }
        Ok(())
    }

    fn veth(
        &self,
        a: Node,
        a_if: &str,
        a_addr: &str,
        b: Node,
        b_if: &str,
        b_addr: &str,
    ) -> Result<()> {
        let (na, nb) = (self.ns(a), self.ns(b));
        // Created straight inside the two namespaces, so the fixed short
        // names never meet in the root namespace.
        run_cmd(
            "ip",
            &[
                "link", "add", a_if, "netns", &na, "type", "veth", "peer", "name", b_if, "netns",
                &nb,
            ],
        )?;
        for (ns, ifname, addr) in [(&na, a_if, a_addr), (&nb, b_if, b_addr)] {
            run_cmd("ip", &["-n", ns, "addr", "add", addr, "dev", ifname])?;
            run_cmd("ip", &["-n", ns, "link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    /// Creates the `pppossh` account if it is missing (seed 000 section 2.2)
    /// with password field `*`: no password, but not locked, so that sshd
    /// with `UsePAM no` accepts its key.
    fn ensure_user(&self) -> Result<()> {
        if user_exists(LAB_USER) {
            // sshd without PAM refuses every login, keys included, to an
            // account whose password field is locked ("!...").
            let locked = fs::read_to_string("/etc/shadow")
                .ok()
                .and_then(|shadow| {
                    shadow
                        .lines()
                        .find(|l| l.split(':').next() == Some(LAB_USER))
                        .map(|l| l.split(':').nth(1).unwrap_or("").starts_with('!'))
                })
                .unwrap_or(false);
            if locked {
                eprintln!(
                    "lab {}: warning: the existing account {LAB_USER} is locked; sshd (UsePAM no) \
                     will refuse its key. `usermod -p '*' {LAB_USER}` unlocks it without a password.",
                    self.prefix
                );
            }
            return Ok(());
        }
        self.record("user-created", LAB_USER)?;
        run_cmd(
            "useradd",
            &[
                "--system",
                "--no-create-home",
                "--home-dir",
                STATE_ROOT,
                "--shell",
                "/bin/sh",
                "--password",
                "*",
                "--comment",
                "tsunagi lab PPP over SSH account",
                LAB_USER,
            ],
        )
    }

    fn make_keys(&self) -> Result<()> {
        let ssh = self.dir.join("ssh");
        let home = self.dir.join("home");
        keygen(&ssh.join("ssh_host_ed25519_key"), "tsunagi-lab-host")?;
        keygen(&home.join("id_ed25519"), "root@home-gw")?;
        keygen(&self.bench_key(), "bench@home-gw")?;
        let host_pub = fs::read_to_string(ssh.join("ssh_host_ed25519_key.pub"))?;
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        // Pinned: the HOME gateway trusts exactly this host key.
        fs::write(
            self.known_hosts(),
            format!("{LABS_GW_WAN} {}\n", host_pub.join(" ")),
        )?;
        let client_pub = fs::read_to_string(home.join("id_ed25519.pub"))?;
        let bench_pub = fs::read_to_string(self.bench_key().with_extension("pub"))?;
        // Seed 001: key only, from the HOME gateway only, and the key can do
        // nothing but hand its stream to the Labs daemon's `home` profile.
        let authorized = format!(
            "restrict,from=\"{HOME_GW_WAN}\",command=\"{bin} -S {sock} direct {LABS_LINK}\" {client}\n\
             restrict,from=\"{HOME_GW_WAN}\",command=\"cat >/dev/null\" {bench}\n",
            bin = self.tsunagi_bin().display(),
            sock = self.labs_sock().display(),
            client = client_pub.trim(),
            bench = bench_pub.trim(),
        );
        let ak = ssh.join("authorized_keys");
        fs::write(&ak, authorized)?;
        fs::set_permissions(&ak, fs::Permissions::from_mode(0o644))?;
        Ok(())
    }

    fn write_configs(&self) -> Result<()> {
        fs::write(self.dir.join("labs/tsunagi.toml"), self.labs_config())?;
        fs::write(self.dir.join("home/tsunagi.toml"), self.home_config())?;
        let ssh = self.dir.join("ssh");
        let config = format!(
            "# sshd of the Labs gateway (seed 000 section 2, seed 001)\n\
             Port 22\n\
             ListenAddress {LABS_GW_WAN}\n\
             HostKey {ssh}/ssh_host_ed25519_key\n\
             PidFile {ssh}/sshd.pid\n\
             AuthorizedKeysFile {ssh}/authorized_keys\n\
             AllowUsers {LAB_USER}\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin no\n\
             UsePAM no\n\
             StrictModes {strict}\n\
             PrintMotd no\n\
             X11Forwarding no\n\
             AllowTcpForwarding no\n\
             PermitTunnel no\n\
             LogLevel VERBOSE\n",
            ssh = ssh.display(),
            strict = if any_world_writable_ancestor(&ssh) {
                "no"
            } else {
                "yes"
            },
        );
        fs::write(ssh.join("sshd_config"), config)?;
        Ok(())
    }

    /// The Labs gateway's config: seed 000 section 2.3's
    /// `pppossh_approve_4_HOMENetwork` entry.
    pub fn labs_config(&self) -> String {
        format!(
            r#"# Labs gateway (seed 000 section 2.3, user-ppp entry pppossh_approve_4_HOMENetwork)
[daemon]
control_socket = "{sock}"

[link.{LABS_LINK}]
mode = "direct"                 # allow mode direct
allow_users = ["{LAB_USER}"]        # allow user pppossh
tun = "tun0"
local = "{LABS_TUN_ADDR}"
remote = "{HOME_TUN_ADDR}"
routes = ["192.168.1.0/24"]     # add 192.168.1.0/24 HISADDR
escape = [0xff]                 # set escape 0xff
ipv6cp = false                  # disable ipv6cp
# RFC 1570 Null FCS: SSH's MAC already guards every byte of the stream,
# so the 16-bit FCS only costs CPU here
fcs = "null"
{offload}"#,
            sock = self.labs_sock().display(),
            offload = offload_settings(),
        )
    }

    /// The HOME gateway's config: seed 000 section 3.3's `pppossh_request`.
    pub fn home_config(&self) -> String {
        let key = self.dir.join("home/id_ed25519");
        let device = format!(
            "!ssh {} {LAB_USER}@{LABS_GW_WAN} {LABS_LINK}",
            self.ssh_options(&key).join(" ")
        );
        format!(
            r#"# HOME gateway (seed 000 section 3.3, user-ppp entry pppossh_request)
[daemon]
control_socket = "{sock}"

[link.{HOME_LINK}]
mode = "dial"
# set device "!ssh pppossh@VPN server ..."; sshd's command= picks the profile
device = "{device}"
tun = "tun0"
local = "{HOME_TUN_ADDR}"            # set ifaddr
remote = "{LABS_TUN_ADDR}"
routes = ["192.168.253.0/24"]   # add 192.168.253.0/24 HISADDR
ident = "HOME Network"          # ident "HOME Network"
ipv6cp = false                  # disable ipv6cp
# RFC 1570 Null FCS: SSH's MAC already guards every byte of the stream,
# so the 16-bit FCS only costs CPU here
fcs = "null"
{offload}echo_interval = 2
echo_failure = 3
persist = true
redial_min = 1
redial_max = 5
"#,
            sock = self.home_sock().display(),
            offload = offload_settings(),
        )
    }

    fn start_sshd(&self) -> Result<()> {
        fs::create_dir_all("/run/sshd")?;
        fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755))?;
        let ns = self.ns(Node::LabsGw);
        let config = self.dir.join("ssh/sshd_config");
        let config = config.to_string_lossy();
        run_cmd(
            "ip",
            &["netns", "exec", &ns, "/usr/sbin/sshd", "-t", "-f", &config],
        )
        .context("sshd -t rejected the lab's sshd_config")?;
        self.spawn_background(
            Node::LabsGw,
            &self.sshd_log(),
            "sshd",
            &[
                "/usr/sbin/sshd".into(),
                "-D".into(),
                "-e".into(),
                "-f".into(),
                config.to_string().into(),
            ],
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = Command::new("ip")
                .args(["netns", "exec", &ns, "ss", "-Hlnt", "sport = :22"])
                .output()
                .context("running ss")?;
            if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("sshd in {ns} is not listening on port 22 after 10 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_daemons(&self) -> Result<()> {
        let bin: OsString = self.tsunagi_bin().into();
        let labs_conf = self.dir.join("labs/tsunagi.toml");
        self.spawn_background(
            Node::LabsGw,
            &self.labs_log(),
            "tsunagi[labs]",
            &[
                bin.clone(),
                "-c".into(),
                labs_conf.into(),
                "-S".into(),
                self.labs_sock().into(),
                "run".into(),
            ],
        )?;
        // The HOME side dials at once; the Labs daemon must be answering by then.
        self.wait_for_socket(&self.labs_sock(), "tsunagi[labs]")?;
        let home_conf = self.dir.join("home/tsunagi.toml");
        self.spawn_background(
            Node::HomeGw,
            &self.home_log(),
            "tsunagi[home]",
            &[
                bin,
                "-c".into(),
                home_conf.into(),
                "-S".into(),
                self.home_sock().into(),
                "run".into(),
            ],
        )?;
        self.wait_for_socket(&self.home_sock(), "tsunagi[home]")
    }

    /// Waits up to 10 s for a daemon's control socket; fails at once if the
    /// daemon exits.
    fn wait_for_socket(&self, path: &Path, label: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            if !self.recorded_pid_alive(label) {
                bail!("{label} exited before creating {}", path.display());
            }
            if Instant::now() > deadline {
                bail!("no control socket {} after 10 s", path.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Runs `args` inside `node`'s namespace in a session of its own
    /// (setsid, so a terminal's ^C or hangup does not reach it), output to
    /// `log`, and records its pid and start time.
    fn spawn_background(
        &self,
        node: Node,
        log: &Path,
        label: &str,
        args: &[OsString],
    ) -> Result<u32> {
        let out = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        // setsid execs in place (the child is not a group leader), and so
        // does `ip netns exec`: the pid we get is the daemon's.
        let child = Command::new("setsid")
            .args(["ip", "netns", "exec", &self.ns(node)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {label}"))?;
        let pid = child.id();
        // Give exec a moment so the start time we record is the final one.
        std::thread::sleep(Duration::from_millis(50));
        let start = proc_start_time(pid).unwrap_or(0);
        self.record("pids", &format!("{pid} {start} {label}"))?;
        Ok(pid)
    }

    fn wait_link_up(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let home = self.link_state(Node::HomeGw);
            let labs = self.link_state(Node::LabsGw);
            if home.is_up()
                && labs.is_up()
                && self.daemon_link_is_up(Node::HomeGw)
                && self.daemon_link_is_up(Node::LabsGw)
            {
                return Ok(());
            }
            for (label, pidlabel) in [("HOME", "tsunagi[home]"), ("Labs", "tsunagi[labs]")] {
                if !self.recorded_pid_alive(pidlabel) {
                    bail!("the {label} gateway's daemon exited");
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "link not up after {} s: HOME gateway {home}; Labs gateway {labs}",
                    limit.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The gateway's daemon reports its link in phase "network" with both
    /// IPCP addresses.
    fn daemon_link_is_up(&self, gw: Node) -> bool {
        self.daemon_link(gw)
            .map(|l| {
                l["phase"] == "network" && l["local"].is_string() && l["peer_addr"].is_string()
            })
            .unwrap_or(false)
    }

    /// The gateway's link as `tsunagi status --json` shows it.
    pub fn daemon_link(&self, gw: Node) -> Result<serde_json::Value> {
        let (sock, name) = match gw {
            Node::HomeGw => (self.home_sock(), HOME_LINK),
            _ => (self.labs_sock(), LABS_LINK),
        };
        let text = self.daemon_status(&sock, true)?;
        let links: serde_json::Value =
            serde_json::from_str(&text).context("parsing tsunagi status --json")?;
        links
            .as_array()
            .and_then(|a| a.iter().find(|l| l["name"] == name))
            .cloned()
            .ok_or_else(|| anyhow!("status --json of {} lists no link {name:?}", sock.display()))
    }

    /// Pid of the gateway's daemon, if it runs.
    pub fn daemon_pid(&self, gw: Node) -> Option<i32> {
        let label = match gw {
            Node::HomeGw => "tsunagi[home]",
            _ => "tsunagi[labs]",
        };
        self.recorded("pids")
            .iter()
            .filter_map(|l| RecordedPid::parse(l))
            .find(|p| p.label == label && p.is_alive())
            .map(|p| p.pid)
    }

    fn recorded_pid_alive(&self, label: &str) -> bool {
        self.recorded("pids")
            .iter()
            .filter_map(|l| RecordedPid::parse(l))
            .filter(|p| p.label == label)
            .any(|p| p.is_alive())
    }

    /// What one gateway's kernel shows of the tunnel: the tun's addresses
    /// and the routes to the other LAN.
    pub fn link_state(&self, gw: Node) -> LinkState {
        let (route, local, peer) = match gw {
            Node::HomeGw => ("192.168.253.0/24", HOME_TUN_ADDR, LABS_TUN_ADDR),
            _ => ("192.168.1.0/24", LABS_TUN_ADDR, HOME_TUN_ADDR),
        };
        let ns = self.ns(gw);
        let addr = cmd_stdout(
            "ip",
            &["-n", &ns, "-o", "-4", "addr", "show", "dev", "tun0"],
        )
        .unwrap_or_default();
        let routes =
            cmd_stdout("ip", &["-n", &ns, "-4", "route", "show", route]).unwrap_or_default();
        LinkState {
            tun_address: addr.contains(&format!("inet {local} peer {peer}")),
            route: routes.contains("dev tun0"),
        }
    }

    /// What to look at and how to take the lab down; `lab_exe` is the
    /// tsunagi-lab executable that ran `up`.
    fn print_guide(&self, lab_exe: &Path) {
        let bin = self.tsunagi_bin();
        let l = lab_exe.display();
        let b = bin.display();
        let p = &self.prefix;
        println!();
        println!("  state, configs, keys:  {}", self.dir.display());
        println!(
            "  HOME gateway config:   {}/home/tsunagi.toml",
            self.dir.display()
        );
        println!(
            "  Labs gateway config:   {}/labs/tsunagi.toml",
            self.dir.display()
        );
        println!("  logs:                  {}", self.home_log().display());
        println!("                         {}", self.labs_log().display());
        println!("                         {}", self.sshd_log().display());
        println!();
        println!("  look around:");
        println!("    ip netns exec {p}-home-host ping {LABS_HOST}");
        println!("    ip netns exec {p}-labs-host ping {HOME_HOST}");
        println!("    {b} -S {} status", self.home_sock().display());
        println!("    {b} -S {} status", self.labs_sock().display());
        println!("    ip -n {p}-home-gw route; ip -n {p}-labs-gw addr show tun0");
        println!("    {l} check --prefix {p}");
        println!("  take it down:");
        println!("    {l} down --prefix {p}");
    }

    fn print_log_tails(&self, lines: usize) {
        for log in [self.home_log(), self.labs_log(), self.sshd_log()] {
            if let Ok(text) = fs::read_to_string(&log) {
                eprintln!("---- last {lines} lines of {} ----", log.display());
                for l in tail(&text, lines) {
                    eprintln!("{l}");
                }
            }
        }
    }

    // --------------------------------------------------------------- check

    /// `tsunagi-lab check`: each step printed with its result; `Err` unless
    /// all passed.
    pub fn check(&self, bytes: u64) -> Result<()> {
        if !self.dir.join("netns").exists() {
            bail!(
                "no lab {:?} (tsunagi-lab up --prefix {})",
                self.prefix,
                self.prefix
            );
        }
        let mut failed = Vec::new();
        let mut step = |name: &str, r: Result<String>| match r {
            Ok(detail) => println!("PASS  {name}: {detail}"),
            Err(e) => {
                println!("FAIL  {name}: {e:#}");
                failed.push(name.to_string());
            }
        };
        step(
            "tunnel on the HOME gateway",
            self.link_state(Node::HomeGw).describe(),
        );
        step(
            "tunnel on the Labs gateway",
            self.link_state(Node::LabsGw).describe(),
        );
        step(
            "ping HOME host -> Labs host",
            self.ping(Node::HomeHost, LABS_HOST),
        );
        step(
            "ping Labs host -> HOME host",
            self.ping(Node::LabsHost, HOME_HOST),
        );
        step(
            &format!("TCP {bytes} bytes HOME host -> Labs host"),
            self.transfer(bytes).map(|t| t.to_string()),
        );
        for (label, sock) in [("HOME", self.home_sock()), ("Labs", self.labs_sock())] {
            println!("---- {label} gateway: tsunagi status ----");
            match self.daemon_status(&sock, false) {
                Ok(s) => print!("{s}"),
                Err(e) => println!("(status failed: {e:#})"),
            }
        }
        if failed.is_empty() {
            println!("lab {}: all checks passed", self.prefix);
            Ok(())
        } else {
            bail!("lab {}: failed: {}", self.prefix, failed.join(", "))
        }
    }

    /// `ping -c 3` from `from` to `to`.
    pub fn ping(&self, from: Node, to: &str) -> Result<String> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns(from),
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                to,
            ])
            .output()
            .context("running ping")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let summary = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or("no summary")
            .to_string();
        if out.status.success() {
            Ok(summary)
        } else {
            Err(anyhow!("{summary}"))
        }
    }

    /// Moves `bytes` from the HOME host to the Labs host over TCP and
    /// compares the digests both ends computed.
    pub fn transfer(&self, bytes: u64) -> Result<TransferReport> {
        let mut server = self.start_tcp_serve(CHECK_PORT)?;
        let send = Command::new("ip")
            .args(["netns", "exec", &self.ns(Node::HomeHost)])
            .arg(self.lab_bin())
            .args([
                "tcp-send",
                &format!("{LABS_HOST}:{CHECK_PORT}"),
                &bytes.to_string(),
            ])
            .output()
            .context("running tcp-send")?;
        let sent_text = String::from_utf8_lossy(&send.stdout).to_string();
        if !send.status.success() {
            let _ = server.child.kill();
            let _ = server.child.wait();
            bail!(
                "tcp-send failed: {}{}",
                sent_text.trim(),
                String::from_utf8_lossy(&send.stderr).trim()
            );
        }
        let received_text = server.finish()?;
        let sent = TransferReport::parse(&sent_text)?;
        let received = TransferReport::parse(&received_text)?;
        if sent.bytes != bytes || received.bytes != bytes || sent.digest != received.digest {
            bail!("mismatch: sent {sent:?}, received {received:?}");
        }
        Ok(sent)
    }

    /// Starts `tsunagi-lab tcp-serve` on the Labs host and waits until it
    /// listens.
    pub fn start_tcp_serve(&self, port: u16) -> Result<TcpServer> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(Node::LabsHost)])
            .arg(self.lab_bin())
            .args(["tcp-serve", "--listen", &format!("0.0.0.0:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting tcp-serve")?;
        let stdout = child.stdout.take().context("tcp-serve stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first)?;
        if !first.starts_with("listening") {
            let _ = child.kill();
            let _ = child.wait();
            bail!("tcp-serve did not start: {first:?}");
        }
        Ok(TcpServer { child, reader })
    }

    /// `tsunagi -S SOCK status [--json]` with the lab's binary.
    pub fn daemon_status(&self, sock: &Path, json: bool) -> Result<String> {
        let mut c = Command::new(self.tsunagi_bin());
        c.arg("-S").arg(sock).arg("status");
        if json {
            c.arg("--json");
        }
        let out = c.output().context("running tsunagi status")?;
        if !out.status.success() {
            bail!(
                "tsunagi status exited with {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    // -------------------------------------------------------------- status

    /// `tsunagi-lab status`
    pub fn status(&self) -> Result<()> {
        if !self.dir.exists() {
            println!("lab {}: not up (no {})", self.prefix, self.dir.display());
            return Ok(());
        }
        println!("lab {} ({})", self.prefix, self.dir.display());
        let existing = cmd_stdout("ip", &["netns", "list"]).unwrap_or_default();
        for ns in self.recorded("netns") {
            let here = existing
                .lines()
                .any(|l| l.split_whitespace().next() == Some(&ns));
            println!("  netns {ns}: {}", if here { "present" } else { "missing" });
        }
        for p in self
            .recorded("pids")
            .iter()
            .filter_map(|l| RecordedPid::parse(l))
        {
            println!(
                "  pid {} {}: {}",
                p.pid,
                p.label,
                if p.is_alive() { "running" } else { "gone" }
            );
        }
        for (label, gw) in [("HOME", Node::HomeGw), ("Labs", Node::LabsGw)] {
            println!("  {label} gateway: {}", self.link_state(gw));
        }
        for (label, sock) in [("HOME", self.home_sock()), ("Labs", self.labs_sock())] {
            println!("---- {label} gateway: tsunagi status ----");
            match self.daemon_status(&sock, false) {
                Ok(s) => print!("{s}"),
                Err(e) => println!("(status failed: {e:#})"),
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- down

    /// `tsunagi-lab down`: stop the recorded processes, delete the recorded
    /// namespaces, remove the account if this lab created it, remove the
    /// state directory. Doing it twice is harmless.
    pub fn down(&self) -> Result<()> {
        if !self.dir.exists() {
            println!("lab {}: nothing to take down", self.prefix);
            return Ok(());
        }
        let mut problems = Vec::new();
        let pids: Vec<RecordedPid> = self
            .recorded("pids")
            .iter()
            .filter_map(|l| RecordedPid::parse(l))
            .collect();
        // Daemons first (newest first), so they close their links with
        // LCP Terminate-Request and remove their routes while sshd still runs.
        for p in pids.iter().rev() {
            if p.is_alive() {
                let _ =
                    rustix::process::kill_process(p.rustix_pid(), rustix::process::Signal::TERM);
                // A stopped process (a test froze it) acts on TERM only
                // once continued.
                let _ =
                    rustix::process::kill_process(p.rustix_pid(), rustix::process::Signal::CONT);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(RecordedPid::is_alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        for p in pids.iter().filter(|p| p.is_alive()) {
            eprintln!(
                "lab {}: {} (pid {}) ignored SIGTERM; killing",
                self.prefix, p.label, p.pid
            );
            let _ = rustix::process::kill_process(p.rustix_pid(), rustix::process::Signal::KILL);
        }
        // Whatever still runs inside our namespaces was started by us
        // (ssh, sshd's session processes, `direct`, helpers).
        let namespaces = self.recorded("netns");
        let existing = cmd_stdout("ip", &["netns", "list"]).unwrap_or_default();
        let present: Vec<&String> = namespaces
            .iter()
            .filter(|ns| {
                existing
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(ns.as_str()))
            })
            .collect();
        for sig in [rustix::process::Signal::TERM, rustix::process::Signal::KILL] {
            let mut any = false;
            for ns in &present {
                for pid in netns_pids(ns) {
                    if let Some(p) = rustix::process::Pid::from_raw(pid) {
                        any = true;
                        let _ = rustix::process::kill_process(p, sig);
                    }
                }
            }
            if any {
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        for ns in &present {
            if let Err(e) = run_cmd("ip", &["netns", "del", ns]) {
                problems.push(format!("{e:#}"));
            }
        }
        if !self.recorded("user-created").is_empty() && user_exists(LAB_USER) {
            match self.other_lab_using_user() {
                Some(other) => {
                    // Another lab still logs in as this account: it inherits
                    // the duty to remove it.
                    if let Err(e) = other.record("user-created", LAB_USER) {
                        problems.push(format!("{e:#}"));
                    }
                    println!(
                        "lab {}: account {LAB_USER} still used by lab {}; left for its down",
                        self.prefix, other.prefix
                    );
                }
                None => {
                    if let Err(e) = run_cmd("userdel", &[LAB_USER]) {
                        problems.push(format!("{e:#}"));
                    }
                }
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            problems.push(format!("removing {}: {e}", self.dir.display()));
        }
        let _ = fs::remove_dir(STATE_ROOT); // only if no other lab is left
        if problems.is_empty() {
            println!("lab {}: down", self.prefix);
            Ok(())
        } else {
            bail!("lab {} down: {}", self.prefix, problems.join("; "))
        }
    }

    fn other_lab_using_user(&self) -> Option<Lab> {
        let entries = fs::read_dir(STATE_ROOT).ok()?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name == self.prefix {
                continue;
            }
            if let Ok(other) = Lab::new(&name) {
                if other.dir.join("netns").exists() {
                    return Some(other);
                }
            }
        }
        None
    }
}

/// What `Lab::link_state` found in one gateway's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// tun0 carries the agreed point-to-point addresses.
    pub tun_address: bool,
    /// The route to the other LAN points into tun0.
    pub route: bool,
}

impl std::fmt::Display for LinkState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        write!(
            f,
            "tun0 addresses: {}, route to the other LAN: {}",
            yes_no(self.tun_address),
            yes_no(self.route)
        )
    }
}

impl LinkState {
    /// Both the addresses and the route are in place.
    pub fn is_up(&self) -> bool {
        self.tun_address && self.route
    }

    fn describe(self) -> Result<String> {
        if self.is_up() {
            Ok("tun0 has its addresses and the route to the other LAN".into())
        } else {
            Err(anyhow!("{self}"))
        }
    }
}

/// A running `tcp-serve` helper.
pub struct TcpServer {
    child: Child,
    reader: BufReader<std::process::ChildStdout>,
}

impl TcpServer {
    /// Waits for the helper to finish and returns its report line.
    pub fn finish(mut self) -> Result<String> {
        let mut rest = String::new();
        self.reader.read_to_string(&mut rest)?;
        let status = self.child.wait()?;
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        if !status.success() {
            bail!(
                "tcp-serve exited with {status}: {} {}",
                rest.trim(),
                err.trim()
            );
        }
        Ok(rest)
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What `tcp-serve` and `tcp-send` report when done, one line
/// `bytes=N digest=HEX secs=S MB/s=R`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferReport {
    /// Bytes moved.
    pub bytes: u64,
    /// [`StreamDigest`] of them in hex, or "skipped" (`--no-hash`).
    pub digest: String,
    /// Seconds from connect (or accept) to the end.
    pub secs: f64,
}

impl std::fmt::Display for TransferReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes, digest {} on both ends, {:.2} s, {:.1} MB/s",
            self.bytes,
            self.digest,
            self.secs,
            self.bytes as f64 / 1e6 / self.secs.max(1e-9)
        )
    }
}

impl TransferReport {
    /// Finds the report line in a helper's output.
    pub fn parse(text: &str) -> Result<TransferReport> {
        let line = text
            .lines()
            .find(|l| l.starts_with("bytes="))
            .ok_or_else(|| anyhow!("no `bytes=` report line in {text:?}"))?;
        let field = |k: &str| -> Result<&str> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .ok_or_else(|| anyhow!("report line {line:?} lacks {k}"))
        };
        Ok(TransferReport {
            bytes: field("bytes")?.parse().context("bytes")?,
            digest: field("digest")?.to_string(),
            secs: field("secs")?.parse().context("secs")?,
        })
    }

    fn line(&self) -> String {
        format!(
            "bytes={} digest={} secs={:.3} MB/s={:.1}",
            self.bytes,
            self.digest,
            self.secs,
            self.bytes as f64 / 1e6 / self.secs.max(1e-9)
        )
    }
}

// ------------------------------------------------------------ TCP helpers

const CHUNK: usize = 256 * 1024;

/// `tsunagi-lab tcp-serve`: one connection, read to EOF.
pub fn tcp_serve(args: &TcpServeArgs) -> Result<TransferReport> {
    let listener =
        TcpListener::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let idle = Duration::from_secs(args.idle_timeout.max(1));
    let deadline = Instant::now() + idle;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("no connection within {} s", idle.as_secs());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).context("accept"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(idle))?;
    let started = Instant::now();
    let mut hash = StreamDigest::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("reading after {total} bytes"));
            }
        };
        if !args.no_hash {
            hash.update(&buf[..n]);
        }
        total += n as u64;
    }
    let report = TransferReport {
        bytes: total,
        digest: digest_or_skipped(hash, args.no_hash),
        secs: started.elapsed().as_secs_f64(),
    };
    println!("{}", report.line());
    Ok(report)
}

/// `tsunagi-lab tcp-send`: a seeded xorshift byte stream.
pub fn tcp_send(args: &TcpSendArgs) -> Result<TransferReport> {
    let idle = Duration::from_secs(args.idle_timeout.max(1));
    let mut stream = TcpStream::connect_timeout(&args.to, idle)
        .with_context(|| format!("connecting to {}", args.to))?;
    stream.set_write_timeout(Some(idle))?;
    let started = Instant::now();
    let mut hash = StreamDigest::new();
    let mut stream_bytes = ByteStream::new(args.seed);
    let mut buf = vec![0u8; CHUNK];
    let mut left = args.bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        if args.no_hash {
            if left == args.bytes {
                stream_bytes.fill(&mut buf);
            }
        } else {
            stream_bytes.fill(&mut buf[..n]);
            hash.update(&buf[..n]);
        }
        stream
            .write_all(&buf[..n])
            .with_context(|| format!("writing after {} bytes", args.bytes - left))?;
        left -= n as u64;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    // Wait for the receiver to close: the bytes are then known delivered.
    stream.set_read_timeout(Some(idle))?;
    let mut sink = [0u8; 64];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("waiting for the receiver to close"),
        }
    }
    let report = TransferReport {
        bytes: args.bytes,
        digest: digest_or_skipped(hash, args.no_hash),
        secs: started.elapsed().as_secs_f64(),
    };
    println!("{}", report.line());
    Ok(report)
}

fn digest_or_skipped(hash: StreamDigest, skipped: bool) -> String {
    if skipped {
        "skipped".into()
    } else {
        hex(&hash.finish())
    }
}

/// xorshift64*: cheap, not compressible, reproducible from the seed.
struct ByteStream {
    state: u64,
}

impl ByteStream {
    fn new(seed: u64) -> Self {
        ByteStream { state: seed | 1 }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let mut x = self.state;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.state = x;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A 256-bit digest of a byte stream: four 64-bit lanes, each absorbing
/// every fourth 8-byte word with xxHash64's round (`acc = rotl(acc + w *
/// P2, 31) * P1`) and finished with its avalanche. Not cryptographic, but
/// each round is a bijection of the lane, so any single corrupted word
/// always changes the digest, and unrelated streams collide with
/// probability about 2^-64. Chosen over SHA-256 because it stays fast in an
/// unoptimised test build (about 150 MB/s against SHA-256's 5).
pub struct StreamDigest {
    lanes: [u64; 4],
    block: [u8; 32],
    used: usize,
    length: u64,
}

const PRIME1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME3: u64 = 0x1656_67B1_9E37_79F9;

impl Default for StreamDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDigest {
    /// Lanes seeded as xxHash64 seeds them (seed 0).
    pub fn new() -> Self {
        StreamDigest {
            lanes: [
                PRIME1.wrapping_add(PRIME2),
                PRIME2,
                0,
                0u64.wrapping_sub(PRIME1),
            ],
            block: [0; 32],
            used: 0,
            length: 0,
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.used > 0 {
            let take = (32 - self.used).min(data.len());
            self.block[self.used..self.used + take].copy_from_slice(&data[..take]);
            self.used += take;
            data = &data[take..];
            if self.used < 32 {
                return;
            }
            let block = self.block;
            self.absorb(&block);
            self.used = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            self.absorb(b);
        }
        let rest = blocks.remainder();
        self.block[..rest.len()].copy_from_slice(rest);
        self.used = rest.len();
    }

    fn absorb(&mut self, block: &[u8]) {
        for (lane, word) in self.lanes.iter_mut().zip(block.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            *lane = round(*lane, u64::from_le_bytes(w));
        }
    }

    /// Pads the last partial block with its length and returns the digest.
    pub fn finish(mut self) -> [u8; 32] {
        let used = self.used;
        let length = self.length;
        if used > 0 {
            let mut block = [0u8; 32];
            block[..used].copy_from_slice(&self.block[..used]);
            self.absorb(&block);
        }
        let mut out = [0u8; 32];
        for (i, o) in out.chunks_exact_mut(8).enumerate() {
            // Every output word depends on all lanes and on the length, so
            // streams that differ only in trailing zero bytes differ.
            let mut h = self.lanes[i]
                ^ self.lanes[(i + 1) % 4].rotate_left(17)
                ^ length.wrapping_mul(PRIME3)
                ^ (i as u64);
            h ^= h >> 33;
            h = h.wrapping_mul(PRIME2);
            h ^= h >> 29;
            h = h.wrapping_mul(PRIME3);
            h ^= h >> 32;
            o.copy_from_slice(&h.to_be_bytes());
        }
        out
    }
}

/// xxHash64's round.
fn round(acc: u64, word: u64) -> u64 {
    acc.wrapping_add(word.wrapping_mul(PRIME2))
        .rotate_left(31)
        .wrapping_mul(PRIME1)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

// ------------------------------------------------------------ OS helpers

/// A process `up` started, as recorded in the state directory:
/// `PID STARTTIME LABEL`. The start time (field 22 of /proc/PID/stat) keeps
/// `down` from signalling an unrelated process that reused the pid.
#[derive(Debug, Clone)]
struct RecordedPid {
    pid: i32,
    start: u64,
    label: String,
}

impl RecordedPid {
    fn parse(line: &str) -> Option<RecordedPid> {
        let mut it = line.splitn(3, ' ');
        let pid = it.next()?.parse().ok()?;
        let start = it.next()?.parse().ok()?;
        let label = it.next().unwrap_or("").to_string();
        Some(RecordedPid { pid, start, label })
    }

    fn is_alive(&self) -> bool {
        match proc_start_time(self.pid as u32) {
            // start 0: could not be read at spawn time; trust the pid.
            Some(s) => (self.start == 0 || s == self.start) && !is_zombie(self.pid),
            None => false,
        }
    }

    fn rustix_pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(self.pid).unwrap_or(rustix::process::Pid::INIT)
    }
}

/// Field 22 (starttime) of /proc/PID/stat.
fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    // after_comm starts at field 3 (state); starttime is field 22.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rfind(')')?;
            s[after + 2..].chars().next()
        })
        .is_some_and(|state| state == 'Z' || state == 'X')
}

/// Pids of the processes in network namespace `ns` (`ip netns pids`).
pub fn netns_pids(ns: &str) -> Vec<i32> {
    cmd_stdout("ip", &["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn user_exists(name: &str) -> bool {
    fs::read_to_string("/etc/passwd")
        .map(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

fn keygen(path: &Path, comment: &str) -> Result<()> {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(path.with_extension("pub"));
    run_cmd(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            comment,
            "-f",
            &path.to_string_lossy(),
        ],
    )
}

fn any_world_writable_ancestor(path: &Path) -> bool {
    path.ancestors().any(|p| {
        fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o002 != 0)
            .unwrap_or(false)
    })
}

fn run_cmd(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn cmd_stdout(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn tail(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
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

    fn digest_of(pieces: &[&[u8]]) -> String {
        let mut d = StreamDigest::new();
        for p in pieces {
            d.update(p);
        }
        hex(&d.finish())
    }

    #[test]
    fn digest_does_not_depend_on_how_the_stream_is_cut() {
        let mut data = vec![0u8; 1000];
        ByteStream::new(3).fill(&mut data);
        let whole = digest_of(&[&data]);
        assert_eq!(whole.len(), 64);
        for cut in [0, 1, 7, 31, 32, 33, 500, 999, 1000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(digest_of(&[a, b]), whole, "cut at {cut}");
        }
        let bytewise: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(digest_of(&bytewise), whole);
    }

    #[test]
    fn digest_sees_every_change() {
        let mut data = vec![0u8; 4096];
        ByteStream::new(5).fill(&mut data);
        let original = digest_of(&[&data]);
        // One flipped bit anywhere, a swap of two words, a lost or an extra
        // trailing zero byte: all change the digest.
        for pos in [0, 1, 8, 31, 32, 2000, 4095] {
            let mut d = data.clone();
            d[pos] ^= 0x01;
            assert_ne!(digest_of(&[&d]), original, "bit flip at {pos}");
        }
        let mut swapped = data.clone();
        swapped.swap(0, 8);
        if swapped != data {
            assert_ne!(digest_of(&[&swapped]), original);
        }
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(digest_of(&[&longer]), original);
        assert_ne!(digest_of(&[&data[..4095]]), original);
        assert_ne!(digest_of(&[]), digest_of(&[&[0u8]]));
    }

    #[test]
    fn byte_stream_is_reproducible_and_chunking_independent() {
        let mut a = vec![0u8; 80];
        ByteStream::new(7).fill(&mut a);
        let mut b = vec![0u8; 80];
        let mut s = ByteStream::new(7);
        s.fill(&mut b[..40]);
        s.fill(&mut b[40..]);
        assert_eq!(a, b);
        let mut c = vec![0u8; 80];
        ByteStream::new(8).fill(&mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn report_line_round_trips() {
        let r = TransferReport {
            bytes: 1234,
            digest: "ab".repeat(32),
            secs: 1.5,
        };
        assert_eq!(TransferReport::parse(&r.line()).unwrap(), r);
        assert!(TransferReport::parse("listening on x\n").is_err());
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

    #[test]
    fn configs_carry_seed_000_values() {
        let lab = Lab::new("x").unwrap();
        let home = lab.home_config();
        assert!(home.contains(r#"ident = "HOME Network""#));
        assert!(home.contains(r#"local = "10.224.1.2""#));
        assert!(home.contains("pppossh@198.51.100.1 home"));
        assert!(home.contains("StrictHostKeyChecking=yes"));
        let labs = lab.labs_config();
        assert!(labs.contains(r#"mode = "direct""#));
        assert!(labs.contains(r#"routes = ["192.168.1.0/24"]"#));
        assert!(labs.contains("escape = [0xff]"));
        for text in [home, labs] {
            let parsed: toml::Value = toml::from_str(&text).unwrap();
            assert!(parsed.get("daemon").is_some());
        }
    }

    #[test]
    fn offload_settings_parse_both_ways() {
        let lab = Lab::new("x").unwrap();
        let plain = offload_lines(false);
        for (text, offload) in [
            (lab.home_config(), offload_lines(true)),
            (lab.labs_config(), offload_lines(true)),
        ] {
            for (lines, mru, tun_offload) in [(offload, 65535, true), (plain, 1500, false)] {
                let text = text.replace(offload_settings(), lines);
                let config = tsunagi::config::Config::parse(Path::new("lab.toml"), &text)
                    .unwrap_or_else(|e| panic!("{e}\n{text}"));
                let link = &config.links[0];
                assert_eq!((link.mru, link.tun_offload), (mru, tun_offload), "{text}");
            }
        }
    }

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), vec!["b", "c"]);
        assert_eq!(tail("a", 5), vec!["a"]);
    }
}
