//! `tsunagi-lab check` and `status`: what a running lab looks like, and the
//! probes they use (tun addresses and routes, the daemons' status, ping, a
//! TCP transfer between the LANs), which the end-to-end tests use too.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::os::{cmd_stdout, RecordedPid};
use crate::tcp::TransferReport;
use crate::{
    Lab, Node, CHECK_PORT, HOME_HOST, HOME_LINK, HOME_TUN_ADDR, LABS_HOST, LABS_LINK, LABS_TUN_ADDR,
};

impl Lab {
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

    /// The gateway's daemon reports its link in phase "network" with both
    /// IPCP addresses.
    pub(crate) fn daemon_link_is_up(&self, gw: Node) -> bool {
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
        let status: serde_json::Value =
            serde_json::from_str(&text).context("parsing tsunagi status --json")?;
        status["links"]
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

    pub(crate) fn recorded_pid_alive(&self, label: &str) -> bool {
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
