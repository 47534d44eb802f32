//! `tsunagi-lab up`: the five namespaces and the veth pairs between them,
//! the `pppossh` account, the keys, the configs of both gateways and of
//! sshd, then sshd and the two daemons; each thing written down in the
//! state directory before it is made, so `down` can remove it.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::os::{
    any_world_writable_ancestor, cmd_stdout, keygen, proc_start_time, run_cmd, tail, user_exists,
};
use crate::{
    Binaries, Lab, Node, HOME_GW_WAN, HOME_HOST, HOME_LINK, HOME_TUN_ADDR, LABS_GW_WAN, LABS_HOST,
    LABS_LINK, LABS_TUN_ADDR, LAB_USER, OFFLOAD_ENV, STATE_ROOT,
};

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

impl Lab {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
