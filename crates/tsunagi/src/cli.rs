//! The `tsunagi` command line.
//!
//! `tsunagi [-c CONFIG] [-S SOCKET] run | check | direct PROFILE | status [--json] | dial NAME | hangup NAME | kick SESSION | reload | capture LINK -w FILE [--count N] | log [-f] [-n N]`
//!
//! `tsunagi console DEVICE [-s SPEED]`: a serial console (see [`crate::console`]).
//!
//! `tsunagi probe ike HOST [--port 500] [--proposals LIST] [--timeout S]`
//! needs neither config nor daemon (see [`crate::probe`]), nor does
//! `tsunagi import [--from FORMAT] [--label L] [--name N] FILE...` (see
//! [`crate::import`]).
//!
//! The control socket is, in order: `-S`, `$TSUNAGI_SOCKET`, the config's
//! `[daemon] control_socket`, `/run/tsunagi/tsunagi.sock`.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG_PATH, DEFAULT_CONTROL_SOCKET};
use crate::control::{
    self, LinkStatus, Request, Response, ServerStatus, SessionStatus, EXIT_REFUSED,
};

/// tsunagi: a VPN gateway (PPP over SSH).
#[derive(Debug, Parser)]
#[command(name = "tsunagi", version, about)]
pub struct Cli {
    /// Config file.
    #[arg(short = 'c', long = "config", global = true, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Control socket (also $TSUNAGI_SOCKET).
    #[arg(short = 'S', long = "socket", global = true, value_name = "SOCKET")]
    pub socket: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground.
    Run,
    /// Parse and validate the config.
    Check,
    /// Hand this process's stdin/stdout to the daemon as PPP link PROFILE
    /// (for ssh `command=` / ForceCommand; user-ppp `-direct`).
    Direct {
        /// The `[link.NAME]` with `mode = "direct"`.
        profile: String,
    },
    /// Show every link.
    Status {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Dial a link now (root).
    #[command(visible_alias = "up")]
    Dial {
        /// Link name.
        name: String,
    },
    /// Close a link and stop redialling it (root).
    #[command(visible_alias = "down")]
    Hangup {
        /// Link name.
        name: String,
    },
    /// Close one session, by the id `status` lists (root).
    Kick {
        /// Session id.
        session: u64,
    },
    /// Read the config again and apply what changed, dropping only the
    /// sessions of links and servers whose settings changed (root; SIGHUP
    /// does the same).
    Reload,
    /// Write a link's (or server's) inner packets to a pcap file until
    /// Ctrl-C (root).
    Capture {
        /// The `[link.NAME]` or server profile.
        link: String,
        /// The pcap file (`-`: stdout), created with mode 0600.
        #[arg(short = 'w', value_name = "FILE")]
        file: PathBuf,
        /// Stop after this many packets (`-c` is the config, as for
        /// every subcommand).
        #[arg(long = "count", value_name = "COUNT")]
        count: Option<u64>,
    },
    /// Print the daemon's last log lines; with -f, follow them (root).
    Log {
        /// Follow: print new lines as they come, until Ctrl-C.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many of the last lines first (at most 1000).
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
        lines: usize,
    },
    /// The `[policy]` rules (ipf.rules / ipnat.rules).
    Policy {
        /// What to do with them.
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// A serial console on DEVICE, like `cu -l` (leave with `~.` or `~^D`
    /// at the start of a line); connect and disconnect are audit records.
    Console {
        /// The serial line (`/dev/ttyUSB0`).
        device: PathBuf,
        /// Its speed in bits per second (8N1).
        #[arg(short = 's', long = "speed", default_value_t = crate::console::DEFAULT_SPEED)]
        speed: u32,
    },
    /// Convert user-ppp, pppd, pptpd, xl2tpd, strongSwan and IPFilter
    /// files into tsunagi's config, printed on stdout; lines left out go to
    /// stderr with FILE:LINE and why. Exit status 0: all converted, 3: some
    /// lines left out, 1: an error (README: "Importing seed configs").
    Import(crate::import::ImportArgs),
    /// Ask a remote peer what it accepts (no config, no daemon).
    Probe {
        /// Which protocol.
        #[command(subcommand)]
        target: ProbeTarget,
    },
}

/// `tsunagi probe ...`
#[derive(Debug, Subcommand)]
pub enum ProbeTarget {
    /// Send IKEv1 Main Mode proposals, one at a time, and report which
    /// the responder accepts and its vendor IDs (like ike-scan). Exit
    /// status 0 if any was accepted, 1 if none, 2 on a usage or network
    /// error.
    Ike(crate::probe::IkeArgs),
}

/// `tsunagi policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Parse and compile an ipf.rules or ipnat.rules file (by its first rule).
    Check {
        /// The rules file.
        file: PathBuf,
    },
    /// Print the nftables ruleset the config's [policy] compiles to.
    Show,
}

/// Parse the command line and run it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(run(cli).clamp(0, 255) as u8)
}

/// Run a parsed command line; returns the exit status.
pub fn run(cli: Cli) -> i32 {
    let config_path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    match cli.command {
        Command::Check => match Config::load(&config_path) {
            Ok(c) => {
                // What `run` would refuse at start-up: secrets and password
                // files, and a config holding a password, that are
                // unreadable, malformed, open to others or owned by another
                // user. (Owners are checked against the uid running
                // `check`: run it as the daemon's user.)
                let mut bad = 0;
                let files = crate::auth::SecretsFiles::new();
                for l in &c.links {
                    if let Err(e) = crate::auth::Credentials::load(l, &c.path, &files) {
                        eprintln!("link {}: {e}", l.name);
                        bad += 1;
                    }
                }
                for s in &c.servers {
                    if let Err(e) = crate::auth::Credentials::load_auth(&s.auth, &c.path, &files) {
                        eprintln!("server {}: {e}", s.name);
                        bad += 1;
                    }
                }
                if let Err(e) = crate::ipsec::driver::load_psks(&c.ipsec) {
                    eprintln!("{e:#}");
                    bad += 1;
                }
                if bad > 0 {
                    return 1;
                }
                for conn in &c.ipsec {
                    for w in conn.weak_settings() {
                        eprintln!("ipsec {}: weak setting: {w}", conn.name);
                    }
                }
                // They load and run, and break the link: said, not refused.
                for m in crate::config::mistakes(&c) {
                    eprintln!("mistake: {m}");
                }
                println!("config OK: {} links", c.links.len());
                0
            }
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
        Command::Run => {
            let config = match Config::load(&config_path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return 1;
                }
            };
            let socket = cli
                .socket
                .or_else(socket_from_env)
                .unwrap_or_else(|| config.daemon.control_socket.clone());
            match crate::daemon::run(config, socket) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("tsunagi run: {e:#}");
                    1
                }
            }
        }
        Command::Direct { profile } => {
            let socket = control_socket(cli.socket, &config_path);
            direct(&socket, profile)
        }
        Command::Status { json } => {
            let socket = control_socket(cli.socket, &config_path);
            match control::call(&socket, &Request::Status {}, &[]) {
                Ok(Response::Status {
                    links,
                    sessions,
                    servers,
                    ipsec,
                }) => {
                    let l2tp_ipsec = crate::ipsec::status::l2tp_clients(&sessions, &ipsec);
                    let out = if json {
                        let all = serde_json::json!({
                            "links": links,
                            "sessions": sessions,
                            "servers": servers,
                            "ipsec": ipsec,
                            "l2tp_ipsec_clients": l2tp_ipsec,
                        });
                        serde_json::to_string_pretty(&all).unwrap_or_default() + "\n"
                    } else {
                        let mut text = status_table(&links);
                        if !servers.is_empty() {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(&servers_table(&servers));
                        }
                        if !sessions.is_empty() {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(&sessions_table(&sessions));
                        }
                        if !ipsec.is_empty() {
                            if !text.is_empty() {
                                text.push('\n');
                            }
                            text.push_str(&crate::ipsec::status::statusall(&ipsec));
                        }
                        if ipsec.iter().any(|c| c.l2tp_profile.is_some()) {
                            text.push('\n');
                            text.push_str(&crate::ipsec::status::l2tp_clients_text(&l2tp_ipsec));
                        }
                        text
                    };
                    let _ = std::io::stdout().write_all(out.as_bytes());
                    if !json {
                        policy_status(&config_path);
                    }
                    0
                }
                Ok(other) => report_other(other),
                Err(e) => {
                    eprintln!("tsunagi status: {e}");
                    1
                }
            }
        }
        Command::Dial { name } => simple(
            &control_socket(cli.socket, &config_path),
            Request::Dial { link: name },
        ),
        Command::Hangup { name } => simple(
            &control_socket(cli.socket, &config_path),
            Request::Hangup { link: name },
        ),
        Command::Kick { session } => simple(
            &control_socket(cli.socket, &config_path),
            Request::Kick { session },
        ),
        Command::Reload => simple(
            &control_socket(cli.socket, &config_path),
            Request::Reload {},
        ),
        Command::Capture { link, file, count } => crate::capture::client(
            &control_socket(cli.socket, &config_path),
            link,
            &file,
            count,
        ),
        Command::Log { follow, lines } => crate::live_log::client(
            &control_socket(cli.socket, &config_path),
            follow,
            Some(lines),
        ),
        Command::Policy {
            action: PolicyAction::Check { file },
        } => crate::policy::check(&file),
        Command::Policy {
            action: PolicyAction::Show,
        } => match Config::load(&config_path) {
            Ok(c) => crate::policy::show(c.policy.as_ref()),
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
        Command::Import(args) => crate::import::run(&args),
        Command::Probe {
            target: ProbeTarget::Ike(args),
        } => crate::probe::ike(&args),
        Command::Console { device, speed } => crate::console::main(&device, speed, &config_path),
    }
}

/// Per-rule hit counters after the link table, when the config has a
/// `[policy]` (reading them needs root: otherwise a note on stderr).
fn policy_status(config_path: &Path) {
    let Ok(config) = Config::load(config_path) else {
        return;
    };
    match crate::policy::status_text(config.policy.as_ref()) {
        None => {}
        Some(Ok(table)) => {
            let _ = std::io::stdout().write_all(format!("\n{table}").as_bytes());
        }
        Some(Err(e)) => eprintln!("policy counters: {e}"),
    }
}

fn socket_from_env() -> Option<PathBuf> {
    std::env::var_os("TSUNAGI_SOCKET")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// `-S`, `$TSUNAGI_SOCKET`, the config's, the default. The config may be
/// unreadable for the ssh account that runs `direct`: then the default.
fn control_socket(flag: Option<PathBuf>, config_path: &Path) -> PathBuf {
    flag.or_else(socket_from_env).unwrap_or_else(|| {
        Config::load(config_path)
            .map(|c| c.daemon.control_socket)
            .unwrap_or_else(|_| PathBuf::from(DEFAULT_CONTROL_SOCKET))
    })
}

/// `tsunagi direct`: stdout is the PPP stream, so every word goes to stderr.
fn direct(socket: &Path, profile: String) -> i32 {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    // sshd sets SSH_CONNECTION for the login that runs us: the address
    // an authentication failure is blamed on.
    let ssh_connection = std::env::var("SSH_CONNECTION").ok();
    let ssh_client = ssh_connection
        .as_deref()
        .and_then(crate::auth::ssh_client_address);
    let ssh_client_port = ssh_connection
        .as_deref()
        .and_then(crate::auth::ssh_client_port);
    let request = Request::Direct {
        profile: profile.clone(),
        ssh_client,
        ssh_client_port,
    };
    match control::call(socket, &request, &[stdin.as_fd(), stdout.as_fd()]) {
        Ok(Response::Ended { reason, exit_code }) => {
            eprintln!("tsunagi direct {profile}: link ended: {reason}");
            exit_code
        }
        Ok(other) => report_other(other),
        Err(e) => {
            eprintln!("tsunagi direct {profile}: {e}");
            EXIT_REFUSED
        }
    }
}

fn simple(socket: &Path, request: Request) -> i32 {
    match control::call(socket, &request, &[]) {
        Ok(Response::Done { message }) => {
            println!("{message}");
            0
        }
        Ok(other) => report_other(other),
        Err(e) => {
            eprintln!("tsunagi: {e}");
            1
        }
    }
}

fn report_other(response: Response) -> i32 {
    match response {
        Response::Refused { message } => eprintln!("refused: {message}"),
        Response::Error { message } => eprintln!("error: {message}"),
        other => eprintln!("unexpected answer from the daemon: {other:?}"),
    }
    EXIT_REFUSED
}

/// Human-readable `status`: one row per link, counters in both directions;
/// under the table a line per link with its IPv6 link-local pair (too long
/// for a column) and one with why it last went down.
pub fn status_table(links: &[LinkStatus]) -> String {
    let header = [
        "NAME",
        "MODE",
        "PHASE",
        "TUN",
        "LOCAL",
        "REMOTE",
        "PEER",
        "UPTIME",
        "RX pkts/bytes",
        "TX pkts/bytes",
        "ERRORS",
        "REDIALS",
        "AUTH",
        "CCP",
        "FCS tx/rx",
    ];
    if links.is_empty() {
        return String::new();
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for l in links {
        let c = &l.counters;
        let errors = c.rx_bad_fcs
            + c.rx_malformed
            + c.rx_unknown_protocol
            + c.rx_bad_control
            + c.rx_control_dropped;
        let mut redials = l.redials.to_string();
        if let Some(n) = l.next_redial_secs {
            redials.push_str(&format!(" (next in {n}s)"));
        }
        rows.push(vec![
            l.name.clone(),
            l.mode.clone(),
            l.phase.clone(),
            l.tun.clone(),
            l.local.clone().unwrap_or_else(|| "-".into()),
            l.peer_addr.clone().unwrap_or_else(|| "-".into()),
            if l.peer.is_empty() {
                "-".into()
            } else {
                l.peer.clone()
            },
            l.uptime_secs.map_or_else(|| "-".into(), human_duration),
            format!("{}/{}", c.rx_packets, c.rx_bytes),
            format!("{}/{}", c.tx_packets, c.tx_bytes),
            if errors == 0 {
                "0".into()
            } else {
                format!(
                    "{errors} (fcs {} malformed {} proto {} ctl {} flood {})",
                    c.rx_bad_fcs,
                    c.rx_malformed,
                    c.rx_unknown_protocol,
                    c.rx_bad_control,
                    c.rx_control_dropped
                )
            },
            redials,
            l.auth.clone().unwrap_or_else(|| "-".into()),
            l.ccp.clone().unwrap_or_else(|| "-".into()),
            match (&l.fcs_tx, &l.fcs_rx) {
                (Some(tx), Some(rx)) => format!("{tx}/{rx}"),
                _ => "-".into(),
            },
        ]);
    }
    let mut out = table(&header, rows);
    for l in links {
        if let (Some(local), Some(peer)) = (&l.local6, &l.peer_addr6) {
            out.push_str(&format!("{}: IPv6 {local} peer {peer}\n", l.name));
        }
        if let Some(tunnel) = &l.tunnel {
            out.push_str(&format!("{}: {tunnel}\n", l.name));
        }
        if let Some(why) = &l.last_down {
            out.push_str(&format!("{}: last down: {why}\n", l.name));
        }
    }
    out
}

/// The server profiles as a table, and what each counted that belongs to
/// no session on a line of its own.
pub fn servers_table(servers: &[ServerStatus]) -> String {
    let header = [
        "SERVER",
        "PROTOCOL",
        "LISTEN",
        "TUN",
        "SESSIONS",
        "POOL free/size",
    ];
    let rows = servers
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.protocol.clone(),
                s.listen.clone(),
                s.tun.clone(),
                s.sessions.to_string(),
                format!("{}/{}", s.pool_free, s.pool_size),
            ]
        })
        .collect();
    let mut out = table(&header, rows);
    for s in servers {
        if !s.counters.is_empty() {
            let counted: Vec<String> = s.counters.iter().map(|(k, v)| format!("{k} {v}")).collect();
            out.push_str(&format!("{}: {}\n", s.name, counted.join(", ")));
        }
    }
    let tunnels: Vec<Vec<String>> = servers
        .iter()
        .flat_map(|s| {
            s.tunnels.iter().map(move |t| {
                vec![
                    s.name.clone(),
                    t.peer.clone(),
                    if t.host_name.is_empty() {
                        "-".into()
                    } else {
                        t.host_name.clone()
                    },
                    format!("{}/{}", t.local_id, t.peer_id),
                    t.state.clone(),
                    t.sessions.to_string(),
                    human_duration(t.age_secs),
                    format!("{}/{}", t.control_rx, t.control_tx),
                    t.retransmitted.to_string(),
                    format!("{}/{}/{}", t.data_rx, t.data_tx, t.data_dropped),
                ]
            })
        })
        .collect();
    if !tunnels.is_empty() {
        out.push('\n');
        let header = [
            "SERVER",
            "TUNNEL PEER",
            "HOST",
            "IDS local/peer",
            "STATE",
            "SESSIONS",
            "AGE",
            "CONTROL rx/tx",
            "RETRANSMITTED",
            "DATA rx/tx/dropped",
        ];
        out.push_str(&table(&header, tunnels));
    }
    out
}

/// The sessions as a table: one row per live session of every profile.
pub fn sessions_table(sessions: &[SessionStatus]) -> String {
    let header = [
        "ID",
        "PROFILE",
        "USER",
        "OUTER PEER",
        "INNER",
        "PHASE",
        "UPTIME",
        "RX pkts/bytes",
        "TX pkts/bytes",
        "ERRORS",
    ];
    let rows = sessions.iter().map(|s| {
        let c = &s.counters;
        let errors = c.rx_bad_fcs
            + c.rx_malformed
            + c.rx_unknown_protocol
            + c.rx_bad_control
            + c.rx_control_dropped;
        vec![
            s.id.to_string(),
            s.profile.clone(),
            s.user.clone().unwrap_or_else(|| "-".into()),
            if s.outer_peer.is_empty() {
                "-".into()
            } else {
                s.outer_peer.clone()
            },
            s.peer_addr.clone().unwrap_or_else(|| "-".into()),
            s.phase.clone(),
            s.uptime_secs.map_or_else(|| "-".into(), human_duration),
            format!("{}/{}", c.rx_packets, c.rx_bytes),
            format!("{}/{}", c.tx_packets, c.tx_bytes),
            errors.to_string(),
        ]
    });
    let mut out = table(&header, rows.collect());
    for s in sessions {
        if let Some(tunnel) = &s.tunnel {
            out.push_str(&format!("{}: {tunnel}\n", s.id));
        }
    }
    out
}

/// Left-aligned columns, two spaces apart, the header first.
fn table(header: &[&str], body: Vec<Vec<String>>) -> String {
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    rows.extend(body);
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `1h02m03s`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        s if s >= 3600 => format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses() {
        let c = Cli::try_parse_from(["tsunagi", "-S", "/s", "direct", "home"]).unwrap();
        assert_eq!(c.socket.as_deref(), Some(Path::new("/s")));
        assert!(matches!(c.command, Command::Direct { ref profile } if profile == "home"));
        let c = Cli::try_parse_from(["tsunagi", "status", "--json", "-c", "/x.toml"]).unwrap();
        assert!(matches!(c.command, Command::Status { json: true }));
        assert_eq!(c.config.as_deref(), Some(Path::new("/x.toml")));
        assert!(Cli::try_parse_from(["tsunagi", "direct"]).is_err());
        // up/down are dial/hangup; reload takes no argument.
        let c = Cli::try_parse_from(["tsunagi", "up", "labs"]).unwrap();
        assert!(matches!(c.command, Command::Dial { ref name } if name == "labs"));
        let c = Cli::try_parse_from(["tsunagi", "down", "labs"]).unwrap();
        assert!(matches!(c.command, Command::Hangup { ref name } if name == "labs"));
        let c = Cli::try_parse_from(["tsunagi", "reload"]).unwrap();
        assert!(matches!(c.command, Command::Reload));
        assert!(Cli::try_parse_from(["tsunagi", "reload", "x"]).is_err());
    }

    #[test]
    fn capture_and_log_parse() {
        // Every subcommand's options agree with the global ones.
        <Cli as clap::CommandFactory>::command().debug_assert();
        let c = Cli::try_parse_from(["tsunagi", "capture", "labs", "-w", "x.pcap", "--count", "5"])
            .unwrap();
        assert!(
            matches!(c.command, Command::Capture { ref link, ref file, count: Some(5) }
            if link == "labs" && file == Path::new("x.pcap"))
        );
        let c = Cli::try_parse_from(["tsunagi", "log", "-f"]).unwrap();
        assert!(matches!(
            c.command,
            Command::Log {
                follow: true,
                lines: 10
            }
        ));
        assert!(Cli::try_parse_from(["tsunagi", "capture", "labs"]).is_err());
    }

    #[test]
    fn probe_ike_parses_with_its_defaults() {
        let c = Cli::try_parse_from(["tsunagi", "probe", "ike", "gw.example"]).unwrap();
        let Command::Probe {
            target: ProbeTarget::Ike(a),
        } = c.command
        else {
            panic!("not probe ike");
        };
        assert_eq!(
            (a.host.as_str(), a.port, a.proposals, a.timeout, a.retries),
            ("gw.example", 500, None, 1.0, 2)
        );
        let c = Cli::try_parse_from([
            "tsunagi",
            "probe",
            "ike",
            "10.0.0.1",
            "--port",
            "4500",
            "--proposals",
            "3des-sha1-modp1024,aes128-sha256-ecp256",
            "--timeout",
            "0.5",
        ])
        .unwrap();
        let Command::Probe {
            target: ProbeTarget::Ike(a),
        } = c.command
        else {
            panic!("not probe ike");
        };
        assert_eq!(a.port, 4500);
        assert_eq!(a.timeout, 0.5);
        assert_eq!(
            a.proposals.as_deref(),
            Some("3des-sha1-modp1024,aes128-sha256-ecp256")
        );
        assert!(Cli::try_parse_from(["tsunagi", "probe", "ike"]).is_err());
        assert!(Cli::try_parse_from(["tsunagi", "probe", "ike", "h", "--port", "x"]).is_err());
    }

    #[test]
    fn table_lists_every_link() {
        let t = status_table(&[
            LinkStatus {
                name: "labs".into(),
                mode: "dial".into(),
                phase: "network".into(),
                tun: "tun0".into(),
                local: Some("10.0.0.1".into()),
                peer_addr: Some("10.0.0.2".into()),
                peer: "u@h".into(),
                uptime_secs: Some(3723),
                auth: Some("peer alice by CHAP".into()),
                ccp: Some("send Deflate 15, receive Deflate 15".into()),
                local6: Some("fe80::1".into()),
                peer_addr6: Some("fe80::6441:6fd5:c640:6ccf".into()),
                fcs_tx: Some("null".into()),
                fcs_rx: Some("16".into()),
                ..LinkStatus::default()
            },
            LinkStatus {
                name: "home".into(),
                mode: "direct".into(),
                phase: "idle".into(),
                next_redial_secs: Some(4),
                redials: 2,
                last_down: Some("echo timeout".into()),
                ..LinkStatus::default()
            },
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME"));
        assert!(
            lines[1].contains("1h02m03s")
                && lines[1].contains("10.0.0.2")
                && lines[1].contains("u@h")
                && lines[1].contains("peer alice by CHAP")
                && lines[1].contains("send Deflate 15, receive Deflate 15")
                && lines[1].ends_with("null/16")
        );
        assert!(lines[0].ends_with("FCS tx/rx"), "{}", lines[0]);
        assert!(lines[2].contains("2 (next in 4s)"));
        // No LCP, no FCS.
        assert!(lines[2].ends_with(" -"), "{}", lines[2]);
        assert_eq!(
            lines[3],
            "labs: IPv6 fe80::1 peer fe80::6441:6fd5:c640:6ccf"
        );
        assert_eq!(lines[4], "home: last down: echo timeout");
    }
}
