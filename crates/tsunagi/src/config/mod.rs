//! The configuration file, `/etc/tsunagi/tsunagi.toml` by default.
//!
//! TOML, read with serde and `deny_unknown_fields`: a misspelt key is an
//! error, not a silently ignored setting. Every error names the file, the
//! line and column (1-based, from toml's byte span) and the problem, e.g.
//! `tsunagi.toml:7:10: link.labs: invalid IPv4 address syntax`.
//!
//! ```toml
//! [daemon]
//! control_socket = "/run/tsunagi/tsunagi.sock"
//! log_file = "/var/log/tsunagi.log"
//!
//! [link.labs]
//! mode = "dial"
//! device = "!ssh -i /k pppossh@203.0.113.2 tsunagi direct home"
//! local = "10.224.1.1"
//! remote = "10.224.1.2"
//! routes = ["192.168.253.0/24"]
//! ```
//!
//! The keys follow user-ppp (`set device "!cmd"`, `set ifaddr`, `add NET
//! HISADDR`, `set escape`, `disable ipv6cp`, `allow user`) and pppd
//! (`lcp-echo-interval`, `usepeerdns`, `persist`, ip-up/ip-down).
//!
//! PPP authentication and CCP use pppd's meanings: `require = ["pap" |
//! "chap" | "mschap-v2"]` (empty = `noauth`: we do not demand auth),
//! `name`, `user` + `password`/`password_file`, `accept` (methods we prove
//! ourselves with; MS-CHAPv2 only when named), `secrets` (chap-secrets, per
//! link or under `[daemon]`), `mppe = "require-128" | "require-40" |
//! "require" | "allow-128" | "allow-40" | "allow"` with `mppe_stateful`,
//! and `deflate = 9..=15`. The files are read by [`crate::auth`] at
//! start-up, not here.
//!
//! Routing per link (issue 5): `routes` alone is a split tunnel;
//! `default_route = true` makes it a full tunnel and needs `outer_peer` in
//! dial mode (the SSH server, kept on its old next hop); `source_routes`
//! (seed 001's borrowed addresses) get `ip rule from ADDR lookup
//! route_table`. Netconf installs them on IPCP up and removes them on
//! down.
//!
//! IPsec connections are `[ipsec.NAME]` sections with strongSwan's
//! ipsec.conf keys (`left`, `right`, `leftid`, `ike`, `esp`, `leftsubnet`,
//! `auto`, ...): see [`IpsecConn`]; their PSKs are in an ipsec.secrets
//! file (`secrets`, or `[daemon] ipsec_secrets`).

mod auth;
mod common;
mod ipsec;
mod link;
mod mistakes;
mod policy;
mod server;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use auth::{AuthSettings, PasswordSource};
pub use common::{default_tun_name, Cidr, MAX_IFNAME_LEN};
pub use common::{DEFAULT_L2TP_MRU, DEFAULT_PPTP_MRU};
pub use ipsec::{
    default_ipsec_tun, parse_identity, Auto, ConnType, IpsecConn, L2tpUser, DEFAULT_IPSEC_SECRETS,
    NAT_KEEPALIVE,
};
pub use link::{ssh_target, LinkSettings, Mode, DEFAULT_ROUTE_TABLE_BASE};
pub use mistakes::{mistakes, Mistake};
pub use policy::{PolicySettings, RawPolicy};
pub use server::{L2tpSettings, ServerProfile, ServerProtocol};

pub use common::stable_table;
use common::{check_section_name, Invalid};
use ipsec::RawIpsec;
use link::{validate_link, RawLink};
use server::RawServer;

/// Where the daemon and the CLI look for the config when `-c` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tsunagi/tsunagi.toml";
/// The control socket when neither the config, `-S` nor `TSUNAGI_SOCKET` names one.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/tsunagi/tsunagi.sock";

/// A config that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The config file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Syntax, type, unknown key or a value that fails validation.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The config file.
        path: String,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column (in characters) of the offending value.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    link: BTreeMap<String, Spanned<RawLink>>,
    #[serde(default)]
    server: BTreeMap<String, Spanned<RawServer>>,
    #[serde(default)]
    ipsec: BTreeMap<String, Spanned<RawIpsec>>,
    policy: Option<Spanned<RawPolicy>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    control_socket: Option<PathBuf>,
    log_file: Option<PathBuf>,
    secrets: Option<PathBuf>,
    ipsec_secrets: Option<PathBuf>,
    audit_file: Option<PathBuf>,
    audit_syslog: Option<bool>,
    metrics_listen: Option<std::net::SocketAddr>,
}

/// The `[daemon]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSettings {
    /// Unix socket for `status`, `direct`, `dial`, `hangup`.
    pub control_socket: PathBuf,
    /// Log file (appended); `None` logs to stderr.
    pub log_file: Option<PathBuf>,
    /// chap-secrets for links without their own `secrets`.
    pub secrets: Option<PathBuf>,
    /// ipsec.secrets for `[ipsec.NAME]` without their own `secrets`.
    pub ipsec_secrets: Option<PathBuf>,
    /// Where the audit trail's records are appended ([`crate::audit`]);
    /// `None`: no file.
    pub audit_file: Option<PathBuf>,
    /// The audit trail's records also go to syslog (`/dev/log`, which
    /// journald reads); default true.
    pub audit_syslog: bool,
    /// The Prometheus endpoint's address ([`crate::metrics`]); `None`: off.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// The whole config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    /// `[daemon]`.
    pub daemon: DaemonSettings,
    /// The links, sorted by name.
    pub links: Vec<LinkSettings>,
    /// The server profiles, sorted by name.
    pub servers: Vec<ServerProfile>,
    /// `[policy]`: filter and NAT rules (see [`crate::policy`]).
    pub policy: Option<PolicySettings>,
    /// `[ipsec.NAME]`: IPsec connections, sorted by name.
    pub ipsec: Vec<IpsecConn>,
}

/// L2TP/IPsec (seed 002): each `ipsec = "NAME"` of an L2TP link or server
/// names a transport conn that protects UDP 1701 on our side (and UDP on
/// the peer's), used by no one else; a link's conn goes to its `lns`, a
/// server's conn answers anyone on the address it listens on.
fn bind_l2tp_ipsec(
    links: &[LinkSettings],
    servers: &[ServerProfile],
    ipsec: &mut [IpsecConn],
) -> Result<(), String> {
    let users = links
        .iter()
        .filter_map(|l| {
            let user = L2tpUser::Link(l.name.clone());
            let lns = l.lns.map(std::net::IpAddr::V4);
            l.l2tp.ipsec.as_ref().map(|c| (c, user, lns, None))
        })
        .chain(servers.iter().filter_map(|s| {
            let user = L2tpUser::Server(s.name.clone());
            s.l2tp
                .ipsec
                .as_ref()
                .map(|c| (c, user, None, Some(s.listen)))
        }));
    for (conn_name, user, lns, listen) in users {
        let what = user.to_string();
        let Some(conn) = ipsec.iter_mut().find(|c| &c.name == conn_name) else {
            return Err(format!(
                "{what}: ipsec = {conn_name:?}: there is no [ipsec.{conn_name}]"
            ));
        };
        let bad = |why: String| Err(format!("{what}: ipsec = {conn_name:?}: {why}"));
        if conn.conn_type != ConnType::Transport {
            return bad("L2TP/IPsec needs type = \"transport\"".into());
        }
        if (conn.leftsubnet.protocol, conn.leftsubnet.port) != (17, tsunagi_l2tp::UDP_PORT) {
            return bad("L2TP/IPsec needs leftprotoport = \"17/1701\"".into());
        }
        if !matches!(conn.rightprotoport, (17, 0) | (17, tsunagi_l2tp::UDP_PORT)) {
            return bad(
                "L2TP/IPsec needs rightprotoport = \"17/1701\" (or \"17/%any\" for a server)"
                    .into(),
            );
        }
        if let Some(other) = &conn.l2tp {
            return bad(format!("{other} already carries its L2TP over it"));
        }
        if let Some(lns) = lns {
            if conn.right != Some(lns) {
                return bad(format!(
                    "its right ({}) is not the link's lns {lns}",
                    conn.right.map_or("%any".to_string(), |r| r.to_string())
                ));
            }
        }
        if let Some(listen) = listen {
            if conn.right.is_some() {
                return bad("a server's conn answers anyone: right = \"%any\"".into());
            }
            if let Some(listen) = listen {
                if conn.left != std::net::IpAddr::V4(listen) {
                    return bad(format!(
                        "its left ({}) is not the server's listen address {listen}",
                        conn.left
                    ));
                }
            }
        }
        conn.l2tp = Some(user);
    }
    Ok(())
}

impl Config {
    /// Read and validate `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Validate `text`, naming `path` in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |span: Option<Range<usize>>, message: String| {
            let (line, column) = line_column(text, span.map_or(0, |s| s.start));
            ConfigError::Invalid {
                path: path.display().to_string(),
                line,
                column,
                message,
            }
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            // toml's message is multi-line with a source excerpt; its first
            // line ("TOML parse error at line 3, column 1") repeats what we say.
            invalid(e.span(), e.message().trim().to_string())
        })?;
        let daemon = DaemonSettings {
            control_socket: raw
                .daemon
                .control_socket
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET)),
            log_file: raw.daemon.log_file,
            secrets: raw.daemon.secrets,
            ipsec_secrets: raw.daemon.ipsec_secrets,
            audit_file: raw.daemon.audit_file,
            audit_syslog: raw.daemon.audit_syslog.unwrap_or(true),
            metrics_listen: raw.daemon.metrics_listen,
        };
        let mut links = Vec::with_capacity(raw.link.len());
        let mut tuns: BTreeMap<String, String> = BTreeMap::new();
        for (name, spanned) in raw.link {
            let span = spanned.span();
            let mut link = validate_link(
                &name,
                span.clone(),
                spanned.into_inner(),
                daemon.secrets.as_deref(),
            )
            .map_err(|(span, msg)| invalid(Some(span), format!("link.{name}: {msg}")))?;
            // Two names on one table: the later in name order takes the
            // next free one (the earlier keeps its own).
            while !link.route_table_set
                && links
                    .iter()
                    .any(|l: &LinkSettings| l.route_table == link.route_table)
            {
                link.route_table =
                    common::next_stable_table(DEFAULT_ROUTE_TABLE_BASE, link.route_table);
            }
            if let Some(other) = tuns.insert(link.tun.clone(), format!("link.{name}")) {
                return Err(invalid(
                    Some(span),
                    format!("link.{name}: tun {:?} is already used by {other}", link.tun),
                ));
            }
            if let Some(other) = links.iter().find(|l: &&LinkSettings| {
                !l.source_routes.is_empty()
                    && !link.source_routes.is_empty()
                    && l.route_table == link.route_table
            }) {
                return Err(invalid(
                    Some(span),
                    format!(
                        "link.{name}: route_table {} is already used by link.{} for its source_routes",
                        link.route_table, other.name
                    ),
                ));
            }
            links.push(link);
        }
        let mut servers = Vec::with_capacity(raw.server.len());
        for (name, spanned) in raw.server {
            let span = spanned.span();
            let at = |(span, msg): Invalid| invalid(Some(span), format!("server.{name}: {msg}"));
            check_section_name(&name, span.clone()).map_err(at)?;
            if links.iter().any(|l| l.name == name) {
                return Err(at((
                    span,
                    format!("link.{name} has the same name: profiles need names of their own"),
                )));
            }
            let server = spanned
                .into_inner()
                .validate(&name, span.clone(), daemon.secrets.as_deref())
                .map_err(at)?;
            if let Some(other) = tuns.insert(server.tun.clone(), format!("server.{name}")) {
                return Err(at((
                    span,
                    format!("tun {:?} is already used by {other}", server.tun),
                )));
            }
            if let Some(other) = servers
                .iter()
                .find(|s: &&ServerProfile| s.protocol == server.protocol)
            {
                // One listener on TCP 1723 and one GRE socket per host; one
                // socket on UDP 1701 carries every L2TP tunnel.
                return Err(at((
                    span,
                    format!(
                        "server.{} already serves {}",
                        other.name,
                        server.protocol.name().to_uppercase()
                    ),
                )));
            }
            servers.push(server);
        }
        let mut ipsec: Vec<IpsecConn> = Vec::with_capacity(raw.ipsec.len());
        for (name, spanned) in raw.ipsec {
            let span = spanned.span();
            let at = |(span, msg): Invalid| invalid(Some(span), format!("ipsec.{name}: {msg}"));
            check_section_name(&name, span.clone()).map_err(at)?;
            let conn = spanned
                .into_inner()
                .validate(&name, span.clone(), daemon.ipsec_secrets.as_deref())
                .map_err(at)?;
            // Both modes have a tun (transport mode: the policy rule's).
            if let Some(other) = tuns.insert(conn.tun.clone(), format!("ipsec.{name}")) {
                return Err(at((
                    span,
                    format!("tun {:?} is already used by {other}", conn.tun),
                )));
            }
            if conn.conn_type == ConnType::Transport {
                let table = crate::ipsec::transport_path::table_of(&name);
                if let Some(other) = links
                    .iter()
                    .find(|l| !l.source_routes.is_empty() && l.route_table == table)
                {
                    return Err(at((
                        span,
                        format!(
                            "transport mode uses routing table {table} (from the conn's name), which link.{}'s route_table uses for its source_routes: give the link another",
                            other.name
                        ),
                    )));
                }
                if let Some(other) = ipsec.iter().find(|c: &&IpsecConn| {
                    c.conn_type == ConnType::Transport
                        && crate::ipsec::transport_path::table_of(&c.name) == table
                }) {
                    return Err(at((
                        span,
                        format!(
                            "transport mode's routing table {table} comes from the conn's name, and ipsec.{}'s name gives the same one: rename one of them",
                            other.name
                        ),
                    )));
                }
            }
            if let Some(other) = ipsec
                .iter()
                .find(|c| c.left == conn.left && c.right == conn.right && c.right.is_some())
            {
                // The driver finds a conn for an IKE datagram by its source.
                return Err(at((
                    span,
                    format!(
                        "ipsec.{} already connects {} with {}",
                        other.name,
                        conn.left,
                        conn.right.map_or("%any".into(), |r| r.to_string())
                    ),
                )));
            }
            if let Some(other) = ipsec
                .iter()
                .find(|c| c.left == conn.left && c.right.is_none() && conn.right.is_none())
            {
                return Err(at((
                    span,
                    format!(
                        "ipsec.{} already answers right = \"%any\" on {}",
                        other.name, conn.left
                    ),
                )));
            }
            ipsec.push(conn);
        }
        bind_l2tp_ipsec(&links, &servers, &mut ipsec).map_err(|m| invalid(None, m))?;
        let policy = match raw.policy {
            None => None,
            Some(p) => {
                let span = p.span();
                Some(
                    p.into_inner()
                        .validate()
                        .map_err(|m| invalid(Some(span), m))?,
                )
            }
        };
        Ok(Config {
            path: path.to_path_buf(),
            daemon,
            links,
            servers,
            policy,
            ipsec,
        })
    }

    /// The link called `name`.
    pub fn link(&self, name: &str) -> Option<&LinkSettings> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The IPsec connection called `name`.
    pub fn ipsec_conn(&self, name: &str) -> Option<&IpsecConn> {
        self.ipsec.iter().find(|c| c.name == name)
    }

    /// The server profile called `name`.
    pub fn server(&self, name: &str) -> Option<&ServerProfile> {
        self.servers.iter().find(|s| s.name == name)
    }
}

/// 1-based line and column (in chars) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;
    use tsunagi_host::netlink::Ipv4Net;
    use tsunagi_ppp::auth::AuthMethod;
    use tsunagi_ppp::ccp::DeflateConfig;
    use tsunagi_ppp::hdlc::FcsMode;

    /// The example of the design brief, verbatim.
    pub const EXAMPLE: &str = r#"
[daemon]
control_socket = "/run/tsunagi/tsunagi.sock"   # default; also global CLI flag -S / env TSUNAGI_SOCKET
log_file = "/var/log/tsunagi.log"              # optional; default stderr. pppd-style lines with timestamps

[link.labs]                     # the link's name
mode = "dial"                   # "dial": run `device`; "direct": answer `tsunagi direct labs`
device = "!ssh -i /k pppossh@203.0.113.2 tsunagi direct home"  # user-ppp `set device "!cmd"` ('!' optional)
tun = "tun0"                    # optional, default "ts-" + name (truncated to 15)
local = "10.224.1.1"            # our address (set ifaddr); omit to ask the peer
remote = "10.224.1.2"           # address for the peer; omit to accept the peer's own
routes = ["192.168.253.0/24", "172.16.1.0/24"]   # user-ppp `add NET HISADDR`: added on IPCP up, removed on down
ident = "HOME Network"          # RFC 1570 Identification text
escape = [0xff]                 # user-ppp `set escape`
accm = 0                        # default 0
mru = 1500                      # default 1500
mtu = 1500                      # tun MTU, default = min(mru, peer's MRU)
pfc = true                      # default true
acfc = true                     # default true
fcs = "16"                      # "16" (default) or "null": RFC 1570 Null FCS, for SSH links only
ipv6cp = false                  # default true; false = user-ppp `disable ipv6cp`
dns = ["10.224.1.1"]            # handed to peers that ask
usepeerdns = false
echo_interval = 10              # seconds, 0 disables; default 10
echo_failure = 3                # default 3
restart = 3                     # seconds; max_configure = 10, max_terminate = 2, max_failure = 5
persist = true                  # dial mode: redial when the link ends (default true)
redial_min = 1                  # seconds, backoff doubles up to redial_max
redial_max = 30
ip_up = "/etc/tsunagi/ip-up"    # optional hook scripts, pppd's six arguments:
ip_down = "/etc/tsunagi/ip-down" #   interface tty speed local-ip remote-ip ipparam
allow_users = ["pppossh"]       # direct mode: user names whose uid may hand us a stream
tun_offload = true              # default true: TCP super-packets (TSO/GSO on the tun) when the
                                #   peer's MRU is 65535 (set mru = 65535 on both tsunagi ends)
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("t.toml"), text)
    }

    fn err(text: &str) -> String {
        parse(text)
            .expect_err("config should be rejected")
            .to_string()
    }

    #[test]
    fn example_parses() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(
            c.daemon.control_socket,
            Path::new("/run/tsunagi/tsunagi.sock")
        );
        assert_eq!(
            c.daemon.log_file.as_deref(),
            Some(Path::new("/var/log/tsunagi.log"))
        );
        let l = c.link("labs").unwrap();
        assert_eq!(l.mode, Mode::Dial);
        assert_eq!(
            l.device.as_deref(),
            Some("ssh -i /k pppossh@203.0.113.2 tsunagi direct home")
        );
        assert_eq!(l.tun, "tun0");
        assert_eq!(l.local, Some(Ipv4Addr::new(10, 224, 1, 1)));
        assert_eq!(l.remote, Some(Ipv4Addr::new(10, 224, 1, 2)));
        assert_eq!(
            l.routes,
            vec![
                Ipv4Net {
                    addr: Ipv4Addr::new(192, 168, 253, 0),
                    prefix: 24
                },
                Ipv4Net {
                    addr: Ipv4Addr::new(172, 16, 1, 0),
                    prefix: 24
                },
            ]
        );
        assert_eq!(l.escape, vec![0xff]);
        assert!(!l.ipv6cp);
        assert_eq!(l.echo_interval, Duration::from_secs(10));
        assert_eq!(l.redial_max, Duration::from_secs(30));
        assert_eq!(l.allow_users, vec!["pppossh".to_string()]);
        assert_eq!(l.dial_peer(), "pppossh@203.0.113.2");
        let pc = l.link_config();
        assert_eq!(pc.lcp.escape, vec![0xff]);
        assert!(pc.ipv6cp.is_none());
        assert_eq!(pc.ipcp.dns, [Some(Ipv4Addr::new(10, 224, 1, 1)), None]);
        assert_eq!(pc.lcp.echo.as_ref().map(|e| e.failures), Some(3));
    }

    #[test]
    fn defaults() {
        let c = parse("[link.a-very-long-link-name]\nmode = \"direct\"\nallow_users = [\"u\"]\n")
            .unwrap();
        let l = &c.links[0];
        assert_eq!(l.tun, "ts-a-very-long-");
        assert_eq!(l.mru, 1500);
        assert!(l.pfc && l.acfc && l.ipv6cp && l.persist);
        assert_eq!(l.restart, Duration::from_secs(3));
        assert_eq!(c.daemon.control_socket, Path::new(DEFAULT_CONTROL_SOCKET));
        assert_eq!(parse("").unwrap().links.len(), 0);
    }

    #[test]
    fn audit_and_metrics_settings() {
        let d = parse("").unwrap().daemon;
        assert_eq!(
            (d.audit_file, d.audit_syslog, d.metrics_listen),
            (None, true, None)
        );
        let d = parse("[daemon]\naudit_file = \"/var/log/tsunagi/audit.log\"\naudit_syslog = false\nmetrics_listen = \"127.0.0.1:9469\"\n")
            .unwrap()
            .daemon;
        assert_eq!(
            d.audit_file.as_deref(),
            Some(Path::new("/var/log/tsunagi/audit.log"))
        );
        assert!(!d.audit_syslog);
        assert_eq!(d.metrics_listen, Some("127.0.0.1:9469".parse().unwrap()));
        let e = err("[daemon]\nmetrics_listen = \"localhost\"\n");
        assert!(e.starts_with("t.toml:2:"), "{e}");
    }

    #[test]
    fn fcs_key() {
        let base = "[link.x]\nmode = \"direct\"\nallow_users = [\"u\"]\n";
        let c = parse(base).unwrap();
        assert_eq!(c.links[0].link_config().lcp.fcs, FcsMode::Fcs16);
        let c = parse(&format!("{base}fcs = \"null\"\n")).unwrap();
        assert_eq!(c.links[0].link_config().lcp.fcs, FcsMode::Null);
        let c = parse(&format!("{base}fcs = \"16\"\n")).unwrap();
        assert_eq!(c.links[0].link_config().lcp.fcs, FcsMode::Fcs16);
        let e = err(&format!("{base}fcs = \"32\"\n"));
        // The line of the key and the values that are allowed.
        assert!(e.contains(":4:") && e.contains("`16` or `null`"), "{e}");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nmur = 1500\n");
        assert!(e.starts_with("t.toml:4:1: "), "{e}");
        assert!(e.contains("unknown field `mur`"), "{e}");
        let e = err("[daemon]\nsocket = \"/x\"\n");
        assert!(
            e.starts_with("t.toml:2:1: ") && e.contains("unknown field `socket`"),
            "{e}"
        );
    }

    #[test]
    fn routing_keys_default_to_split_tunnel() {
        let c = parse("[link.a]\nmode = \"dial\"\ndevice = \"cat\"\n[link.b]\nmode = \"dial\"\ndevice = \"cat\"\n").unwrap();
        assert!(!c.links[0].default_route);
        assert_eq!(c.links[0].outer_peer, None);
        assert!(c.links[0].source_routes.is_empty());
        assert_eq!(
            c.links[0].route_table,
            stable_table(DEFAULT_ROUTE_TABLE_BASE, "a")
        );
        assert_eq!(
            c.links[1].route_table,
            stable_table(DEFAULT_ROUTE_TABLE_BASE, "b")
        );
    }

    #[test]
    fn adding_a_link_renumbers_no_routing_table() {
        let link = |name: &str| format!("[link.{name}]\nmode = \"dial\"\ndevice = \"cat\"\n");
        let tables = |c: &Config| -> BTreeMap<String, u32> {
            c.links
                .iter()
                .map(|l| (l.name.clone(), l.route_table))
                .collect()
        };
        let before = parse(&(link("labs") + &link("osaka"))).unwrap();
        // A name before both in name order, one between, one after.
        let after =
            parse(&(link("aaa") + &link("labs") + &link("m") + &link("osaka") + &link("zz")))
                .unwrap();
        let (before, after) = (tables(&before), tables(&after));
        for (name, table) in &before {
            assert_eq!(after[name], *table, "{name} was renumbered");
        }
        let distinct: std::collections::BTreeSet<u32> = after.values().copied().collect();
        assert_eq!(distinct.len(), after.len(), "{after:?}");
    }

    #[test]
    fn two_names_on_one_table_take_the_next_one() {
        // Two names whose FNV-1a hashes agree modulo 10000, found by search.
        let mut seen = BTreeMap::new();
        let (a, b) = (0..)
            .map(|i| format!("l{i}"))
            .find_map(|n| {
                let t = stable_table(DEFAULT_ROUTE_TABLE_BASE, &n);
                seen.insert(t, n.clone()).map(|other| (other, n))
            })
            .unwrap();
        let text = format!(
            "[link.{a}]\nmode = \"dial\"\ndevice = \"cat\"\n[link.{b}]\nmode = \"dial\"\ndevice = \"cat\"\n"
        );
        let c = parse(&text).unwrap();
        let table = |n: &str| c.links.iter().find(|l| l.name == n).unwrap().route_table;
        let (first, second) = if a < b { (&a, &b) } else { (&b, &a) };
        assert_eq!(table(first), stable_table(DEFAULT_ROUTE_TABLE_BASE, first));
        assert_eq!(
            table(second),
            common::next_stable_table(DEFAULT_ROUTE_TABLE_BASE, table(first))
        );
    }

    #[test]
    fn routing_keys_parse() {
        let c = parse("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\ndefault_route = true\nouter_peer = \"198.51.100.1\"\nsource_routes = [\"203.0.113.77\"]\nroute_table = 42\n").unwrap();
        let l = &c.links[0];
        assert!(l.default_route);
        assert_eq!(l.outer_peer, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(l.source_routes, vec![Ipv4Addr::new(203, 0, 113, 77)]);
        assert_eq!(l.route_table, 42);
        // A direct link may leave outer_peer to the SSH client address.
        let c = parse("[link.d]\nmode = \"direct\"\nallow_users = [\"u\"]\ndefault_route = true\n")
            .unwrap();
        assert!(c.links[0].default_route && c.links[0].outer_peer.is_none());
    }

    /// Seed 002's L2TP/IPsec as one link: the LAC names its transport
    /// conn; an LNS names one answering anyone; what cannot carry L2TP is
    /// refused naming the key.
    #[test]
    fn l2tp_ipsec_links_and_servers_name_their_transport_conn() {
        let conn = "[ipsec.idcf]\nleft = \"127.0.0.1\"\nright = \"127.0.0.2\"\nauthby = \"secret\"\ntype = \"transport\"\nleftprotoport = \"17/1701\"\nrightprotoport = \"17/1701\"\nauto = \"start\"\n";
        let link = "[link.idcf]\nmode = \"l2tp\"\nlns = \"127.0.0.2\"\nipsec = \"idcf\"\nuser = \"u\"\npassword = \"p\"\n";
        let c = parse(&format!("{conn}{link}")).unwrap();
        assert_eq!(c.links[0].l2tp.ipsec.as_deref(), Some("idcf"));
        assert_eq!(c.ipsec[0].l2tp, Some(L2tpUser::Link("idcf".into())));
        assert!(c.ipsec[0].driven_by_link());
        // left = "%defaultroute": the source toward right (loopback here).
        let c = parse(&format!(
            "{}{link}",
            conn.replace("left = \"127.0.0.1\"", "left = \"%defaultroute\"")
        ))
        .unwrap();
        assert!(c.ipsec[0].left.is_loopback(), "{}", c.ipsec[0].left);
        for (bad, why) in [
            (
                conn.replace("type = \"transport\"\n", "rightsubnet = \"10.0.0.0/8\"\n"),
                "needs type = \"transport\"",
            ),
            (
                conn.replace("leftprotoport = \"17/1701\"\n", ""),
                "needs leftprotoport = \"17/1701\"",
            ),
            (
                conn.replace("right = \"127.0.0.2\"", "right = \"127.0.0.3\""),
                "is not the link's lns 127.0.0.2",
            ),
            (
                conn.replace("authby = \"secret\"", "authby = \"rsasig\""),
                "only pre-shared keys",
            ),
        ] {
            let e = err(&format!("{bad}{link}"));
            assert!(e.contains(why), "{why}: {e}");
        }
        let e = err(&format!(
            "{conn}{}",
            link.replace("ipsec = \"idcf\"", "ipsec = \"nope\"")
        ));
        assert!(e.contains("there is no [ipsec.nope]"), "{e}");
        let e = err("[link.p]\nmode = \"pptp\"\nserver = \"10.0.0.1\"\nipsec = \"x\"\nuser = \"u\"\npassword = \"p\"\n");
        assert!(e.contains("`ipsec` is only for mode = \"l2tp\""), "{e}");
        let e = err("[ipsec.x]\nleft = \"%defaultroute\"\nright = \"%any\"\n");
        assert!(e.contains("needs a `right` address"), "{e}");
        // A server's conn answers %any on the address it listens on.
        let server_conn = "[ipsec.l2tp]\nleft = \"10.0.0.1\"\nright = \"%any\"\ntype = \"transport\"\nleftprotoport = \"17/1701\"\nrightprotoport = \"17/%any\"\n";
        let lns = "[server.lns]\nprotocol = \"l2tp\"\nlisten = \"10.0.0.1\"\nipsec = \"l2tp\"\nsecrets = \"/etc/ppp/chap-secrets\"\nlocalip = \"10.99.0.1\"\nremoteip = \"10.99.0.10-20\"\n";
        let c = parse(&format!("{server_conn}{lns}")).unwrap();
        assert_eq!(c.ipsec[0].l2tp, Some(L2tpUser::Server("lns".into())));
        assert!(!c.ipsec[0].driven_by_link());
        let e = err(&format!(
            "{server_conn}{}",
            lns.replace("listen = \"10.0.0.1\"", "listen = \"10.0.0.2\"")
        ));
        assert!(
            e.contains("is not the server's listen address 10.0.0.2"),
            "{e}"
        );
    }

    #[test]
    fn a_transport_conns_table_is_not_a_links() {
        let conn =
            "[ipsec.l2tp]\nleft = \"10.0.0.1\"\nright = \"10.0.0.2\"\ntype = \"transport\"\n";
        let table = crate::ipsec::transport_path::table_of("l2tp");
        let link = format!("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nsource_routes = [\"203.0.113.7\"]\nroute_table = {table}\n");
        let e = err(&format!("{link}{conn}"));
        assert!(
            e.contains(&format!(
                "ipsec.l2tp: transport mode uses routing table {table}"
            )) && e.contains("link.x's route_table"),
            "{e}"
        );
        assert!(parse(&format!(
            "{}{conn}",
            link.replace(&format!("= {table}"), "= 201")
        ))
        .is_ok());
        // Its tun is checked like a tunnel conn's.
        let e = err(&format!("{conn}tun = \"t0\"\n[ipsec.b]\nleft = \"10.0.0.1\"\nright = \"10.0.0.3\"\ntype = \"transport\"\ntun = \"t0\"\n"));
        assert!(
            e.contains("tun \"t0\" is already used by ipsec.b")
                || e.contains("tun \"t0\" is already used by ipsec.l2tp"),
            "{e}"
        );
    }

    #[test]
    fn routing_key_errors_name_position() {
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\ndefault_route = true\n");
        assert!(e.starts_with("t.toml:4:17: "), "{e}");
        assert!(e.contains("needs `outer_peer`"), "{e}");
        // false needs nothing.
        parse("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\ndefault_route = false\n").unwrap();
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\ndefault_route = true\nouter_peer = \"198.51.100\"\n");
        assert!(e.starts_with("t.toml:5:14: "), "{e}");
        let e = err(
            "[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nsource_routes = [\"203.0.113.77/32\"]\n",
        );
        assert!(e.starts_with("t.toml:4:"), "{e}");
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nroute_table = 254\n");
        assert!(
            e.starts_with("t.toml:4:15: ") && e.contains("reserved"),
            "{e}"
        );
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nroute_table = 0\n");
        assert!(e.contains("reserved"), "{e}");
        let e = err("[link.a]\nmode = \"dial\"\ndevice = \"cat\"\nsource_routes = [\"203.0.113.7\"]\nroute_table = 7\n[link.b]\nmode = \"dial\"\ndevice = \"cat\"\nsource_routes = [\"203.0.113.8\"]\nroute_table = 7\n");
        assert!(
            e.contains("link.b: route_table 7 is already used by link.a"),
            "{e}"
        );
    }

    #[test]
    fn bad_address_names_position() {
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nlocal = \"10.0.0.300\"\n");
        assert!(e.starts_with("t.toml:4:9: "), "{e}");
        assert!(e.contains("IP"), "{e}");
    }

    #[test]
    fn bad_cidr_names_position_and_problem() {
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nroutes = [\"10.0.0.0/8\", \"10.1.0.0/33\"]\n");
        assert!(e.starts_with("t.toml:4:25: "), "{e}");
        assert!(
            e.contains("bad CIDR") && e.contains("prefix length 33"),
            "{e}"
        );
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nroutes = [\"10.1.2.3/16\"]\n");
        assert!(
            e.contains("host bits set") && e.contains("10.1.0.0/16"),
            "{e}"
        );
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nroutes = [\"10.1.2/24\"]\n");
        assert!(e.contains("not an IPv4 address"), "{e}");
        let c = parse("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nroutes = [\"10.1.2.3\"]\n")
            .unwrap();
        assert_eq!(
            c.links[0].routes,
            vec![Ipv4Net::host(Ipv4Addr::new(10, 1, 2, 3))]
        );
    }

    #[test]
    fn dial_needs_device() {
        let e = err("\n[link.labs]\nmode = \"dial\"\nlocal = \"10.0.0.1\"\n");
        assert!(e.starts_with("t.toml:3:8: link.labs: "), "{e}");
        assert!(e.contains("needs `device`"), "{e}");
    }

    #[test]
    fn other_validation() {
        assert!(err("[link.x]\nmode = \"direct\"\n").contains("needs `allow_users`"));
        assert!(
            err("[link.x]\nmode = \"direct\"\nallow_users=[\"a\"]\ndevice = \"cat\"\n")
                .starts_with("t.toml:4:10: link.x: `device` is only for")
        );
        assert!(
            err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\ntun = \"0123456789abcdef\"\n")
                .contains("not a valid interface name")
        );
        assert!(err("[link.x]\nmode = \"dialup\"\n").contains("unknown variant `dialup`"));
        assert!(err(
            "[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nredial_min = 5\nredial_max = 2\n"
        )
        .starts_with("t.toml:5:14: "));
        assert!(err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\ndns = [\"1.1.1.1\", \"1.0.0.1\", \"8.8.8.8\"]\n")
            .contains("at most 2 dns"));
        let e = err("[link.a]\nmode = \"dial\"\ndevice = \"cat\"\ntun = \"t\"\n[link.b]\nmode = \"dial\"\ndevice = \"cat\"\ntun = \"t\"\n");
        assert!(e.contains("already used by link.a"), "{e}");
        assert!(
            err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nmru = 70000\n")
                .starts_with("t.toml:4:7: ")
        );
    }

    const DIRECT: &str = "[link.x]\nmode = \"direct\"\nallow_users = [\"u\"]\n";

    #[test]
    fn auth_keys() {
        let c = parse(&format!(
            "[daemon]\nsecrets = \"/etc/tsunagi/chap-secrets\"\n{DIRECT}require = [\"mschap-v2\", \"chap\"]\nname = \"vpn\"\nmppe = \"require-128\"\ndeflate = 15\n"
        ))
        .unwrap();
        let a = &c.links[0].auth;
        assert_eq!(a.require, vec![AuthMethod::MsChapV2, AuthMethod::ChapMd5]);
        assert_eq!(
            a.secrets.as_deref(),
            Some(Path::new("/etc/tsunagi/chap-secrets"))
        );
        assert_eq!(a.name.as_deref(), Some("vpn"));
        let m = a.mppe.as_ref().unwrap();
        assert!(m.bits128 && !m.bits40 && m.required && !m.stateful);
        let lc = c.links[0].link_config();
        assert_eq!(lc.auth.require, a.require);
        assert_eq!(lc.auth.name, "vpn");
        assert_eq!(lc.ccp.deflate, Some(DeflateConfig { window: 15 }));
        assert!(lc.ccp.mppe.is_some());
        let weak = c.links[0].weak_settings();
        assert!(weak.iter().any(|w| w.contains("MS-CHAPv2")), "{weak:?}");
        assert!(weak.iter().any(|w| w.contains("MPPE")), "{weak:?}");
        assert!(
            !weak.iter().any(|w| w.contains("no PPP authentication")),
            "{weak:?}"
        );

        // The peer side: user + password, MPPE brings MS-CHAPv2 into accept.
        let c = parse("[link.y]\nmode = \"dial\"\ndevice = \"cat\"\nuser = \"alice\"\npassword = \"pw\"\nmppe = \"require-40\"\nmppe_stateful = true\n").unwrap();
        let a = &c.links[0].auth;
        assert_eq!(a.user.as_deref(), Some("alice"));
        assert_eq!(a.accept[0], AuthMethod::MsChapV2);
        assert!(a.mppe.as_ref().unwrap().stateful);
        assert!(format!("{a:?}").contains("redacted") && !format!("{a:?}").contains("\"pw\""));
        assert!(c.links[0]
            .weak_settings()
            .iter()
            .any(|w| w.contains("40-bit")));

        // Without auth keys: noauth, no CCP, no weak algorithm but the old warning.
        let c = parse(DIRECT).unwrap();
        let lc = c.links[0].link_config();
        assert!(lc.auth.require.is_empty() && !lc.ccp.enabled());
        assert!(!lc.auth.accept.contains(&AuthMethod::MsChapV2));
        assert!(c.links[0]
            .weak_settings()
            .iter()
            .any(|w| w.contains("no PPP authentication")));
    }

    #[test]
    fn auth_key_errors_name_the_value() {
        let e = err(&format!("{DIRECT}secrets = \"/s\"\nrequire = [\"eap\"]\n"));
        assert!(
            e.starts_with("t.toml:5:12: link.x: unknown authentication \"eap\""),
            "{e}"
        );
        let e = err(&format!("{DIRECT}require = [\"chap\"]\n"));
        assert!(e.contains("`require` needs a `secrets` file"), "{e}");
        let e = err(&format!(
            "{DIRECT}secrets = \"/s\"\nrequire = [\"chap\", \"chap\"]\n"
        ));
        assert!(e.contains("listed twice"), "{e}");
        let e = err(&format!("{DIRECT}user = \"a\"\n"));
        assert!(e.contains("`user` needs `password`"), "{e}");
        let e = err(&format!("{DIRECT}password = \"p\"\n"));
        assert!(e.contains("`password` needs `user`"), "{e}");
        let e = err(&format!(
            "{DIRECT}user = \"a\"\npassword = \"p\"\npassword_file = \"/f\"\n"
        ));
        assert!(
            e.starts_with("t.toml:6:17: ") && e.contains("not both"),
            "{e}"
        );
        let e = err(&format!(
            "{DIRECT}secrets = \"/s\"\nrequire = [\"chap\"]\nmppe = \"require-128\"\n"
        ));
        assert!(
            e.starts_with("t.toml:6:8: ") && e.contains("mppe needs MS-CHAPv2"),
            "{e}"
        );
        let e = err(&format!(
            "{DIRECT}secrets = \"/s\"\nrequire = [\"mschap-v2\"]\nmppe = \"strong\"\n"
        ));
        assert!(e.contains("unknown mppe \"strong\""), "{e}");
        let e = err(&format!(
            "{DIRECT}user = \"a\"\npassword = \"p\"\naccept = [\"chap\"]\nmppe = \"require\"\n"
        ));
        assert!(
            e.contains("add \"mschap-v2\" to `require` or `accept`"),
            "{e}"
        );
        let e = err(&format!("{DIRECT}deflate = 16\n"));
        assert!(
            e.starts_with("t.toml:4:11: ") && e.contains("outside 9..=15"),
            "{e}"
        );
        let e = err(&format!("{DIRECT}mppe_stateful = true\n"));
        assert!(e.contains("`mppe_stateful` needs `mppe`"), "{e}");
    }

    #[test]
    fn ssh_targets() {
        assert_eq!(
            ssh_target("ssh -p 2222 -o BatchMode=yes u@h tsunagi direct x"),
            "u@h"
        );
        assert_eq!(ssh_target("/usr/bin/ssh -4 -p22 -i /k host cmd"), "host");
        assert_eq!(ssh_target("exec ssh -T u@h"), "u@h");
        assert_eq!(
            ssh_target("tsunagi -S /s direct p"),
            "tsunagi -S /s direct p"
        );
    }

    #[test]
    fn line_columns() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 1), (1, 1));
        assert_eq!(line_column("x", 99), (1, 2));
    }

    #[test]
    fn validation_names_the_key() {
        let raw: RawPolicy = toml::from_str(
            "ipf = \"/etc/ipf.rules\"\ninterfaces = { em0 = \"eth0\", tun0 = \"ts-labs\" }\nforwarding = true\n",
        )
        .unwrap();
        let s = raw.validate().unwrap();
        assert_eq!(s.nflog_group, 1);
        assert_eq!(s.out_log, tsunagi_host::policy_apply::OutLog::AfterNat);
        let raw: RawPolicy =
            toml::from_str("ipf = \"/etc/ipf.rules\"\nipmon_out = \"before-nat\"\n").unwrap();
        assert_eq!(
            raw.validate().unwrap().out_log,
            tsunagi_host::policy_apply::OutLog::BeforeNat
        );
        let raw: RawPolicy =
            toml::from_str("ipf = \"/etc/ipf.rules\"\nipmon_out = \"later\"\n").unwrap();
        assert!(raw
            .validate()
            .unwrap_err()
            .starts_with("policy.ipmon_out: "));
        assert_eq!(s.interfaces["tun0"], "ts-labs");
        assert!(!s.keep_on_exit);
        let raw: RawPolicy = toml::from_str("interfaces = { em0 = \"eth0\" }\n").unwrap();
        assert!(raw
            .validate()
            .unwrap_err()
            .contains("needs `ipf` or `ipnat`"));
        let raw: RawPolicy =
            toml::from_str("ipf = \"/x\"\ninterfaces = { em0 = \"a-very-long-interface-name\" }\n")
                .unwrap();
        assert!(raw
            .validate()
            .unwrap_err()
            .contains("policy.interfaces.em0"));
        assert!(toml::from_str::<RawPolicy>("ipf = \"/x\"\nipff = 1\n").is_err());
    }

    /// Seed 004's pptpd.conf and seed 001's options.pptpd, as a server.
    const PPTP_SERVER: &str = "[daemon]\nsecrets = \"/etc/ppp/chap-secrets\"\n[server.vpn]\nprotocol = \"pptp\"\nlocalip = \"192.168.0.100\"\nremoteip = \"192.168.0.101-119\"\nname = \"pptpd\"\nproxyarp = true\ndns = [\"192.168.0.1\"]\n";

    #[test]
    fn pptp_server_defaults_are_options_pptpd() {
        let c = parse(PPTP_SERVER).unwrap();
        let s = c.server("vpn").unwrap();
        assert_eq!(s.protocol, ServerProtocol::Pptp);
        assert_eq!(s.auth.require, [AuthMethod::MsChapV2]);
        let mppe = s.auth.mppe.as_ref().unwrap();
        assert!(mppe.required && mppe.bits128 && !mppe.bits40 && !mppe.stateful);
        assert_eq!(s.connections, 100);
        assert_eq!(s.mru, DEFAULT_PPTP_MRU);
        assert_eq!(s.tun, "ts-vpn");
        assert!(s.proxyarp && s.firewall);
        assert_eq!(s.listen, None);
        let pool = s.pool().unwrap();
        assert_eq!(pool.size(), 19);
        let lc = s.link_config();
        assert_eq!(lc.lcp.framing, tsunagi_ppp::link::Framing::Packet);
        assert!(lc.ipcp.remote_from_driver);
        assert!(lc.ipv6cp.is_none());
        assert_eq!(lc.ipcp.dns[0], Some(Ipv4Addr::new(192, 168, 0, 1)));
        assert_eq!(lc.auth.name, "pptpd");
        assert!(s.weak_settings().iter().any(|w| w.starts_with("PPTP:")));
        // MPPE off on request.
        let c = parse(&format!("{PPTP_SERVER}mppe = \"none\"\n")).unwrap();
        assert!(c.servers[0].auth.mppe.is_none());
    }

    #[test]
    fn pptp_server_errors_name_the_key() {
        let e = err(&PPTP_SERVER.replace("101-119", "101-99"));
        assert!(e.starts_with("t.toml:6:12: server.vpn: remoteip"), "{e}");
        let e = err(&format!("{PPTP_SERVER}require = []\n"));
        assert!(e.contains("server.vpn: a server must authenticate"), "{e}");
        let e = err(&PPTP_SERVER.replace("[daemon]\nsecrets = \"/etc/ppp/chap-secrets\"\n", ""));
        assert!(e.contains("`require` needs a `secrets` file"), "{e}");
        let e = err(&format!("{PPTP_SERVER}connections = 0\n"));
        assert!(e.contains("connections must be at least 1"), "{e}");
        let e = err(&format!("{PPTP_SERVER}user = \"x\"\n"));
        assert!(e.contains("unknown field `user`"), "{e}");
        let e = err(&PPTP_SERVER.replace("\"pptp\"", "\"l2tpv9\""));
        assert!(e.contains("unknown variant"), "{e}");
        let two = format!("{PPTP_SERVER}[server.vpn2]\nprotocol = \"pptp\"\nlocalip = \"10.0.0.1\"\nremoteip = \"10.0.0.2\"\n");
        assert!(err(&two).contains("server.vpn2: server.vpn already serves PPTP"));
        let clash = format!("{PPTP_SERVER}[link.vpn]\nmode = \"direct\"\nallow_users = [\"u\"]\n");
        assert!(err(&clash).contains("link.vpn has the same name"));
        let tun = format!(
            "{PPTP_SERVER}tun = \"ts-x\"\n[link.x]\nmode = \"direct\"\nallow_users = [\"u\"]\n"
        );
        assert!(err(&tun).contains("tun \"ts-x\" is already used by link.x"));
    }

    /// pptp-linux with seed 001's client: user, password, the server.
    const PPTP_LINK: &str = "[link.office]\nmode = \"pptp\"\nserver = \"203.0.113.2\"\nuser = \"taro\"\npassword = \"michadameyo\"\nroutes = [\"192.168.0.0/24\"]\n";

    #[test]
    fn pptp_link_defaults_are_a_windows_client() {
        let c = parse(PPTP_LINK).unwrap();
        let l = c.link("office").unwrap();
        assert_eq!(l.mode, Mode::Pptp);
        assert_eq!(l.server, Some(Ipv4Addr::new(203, 0, 113, 2)));
        assert_eq!(l.dial_peer(), "203.0.113.2");
        assert_eq!(l.mru, DEFAULT_PPTP_MRU);
        assert_eq!(l.auth.accept, [AuthMethod::MsChapV2]);
        assert!(l.auth.require.is_empty());
        assert!(l.auth.mppe.as_ref().unwrap().required);
        // The tunnel must not carry its own control connection and GRE.
        assert_eq!(l.outer_peer, l.server);
        assert_eq!(
            l.link_config().lcp.framing,
            tsunagi_ppp::link::Framing::Packet
        );
        let c = parse(&format!(
            "{PPTP_LINK}default_route = true\nmppe = \"none\"\naccept = [\"chap\"]\n"
        ))
        .unwrap();
        assert!(c.links[0].default_route && c.links[0].auth.mppe.is_none());
    }

    #[test]
    fn pptp_link_errors_name_the_key() {
        let e = err(&PPTP_LINK.replace("server = \"203.0.113.2\"\n", ""));
        assert!(e.contains("mode = \"pptp\" needs `server`"), "{e}");
        let e = err(&format!("{PPTP_LINK}device = \"!ssh x\"\n"));
        assert!(e.contains("`device` is only for mode = \"dial\""), "{e}");
        let e = err(&PPTP_LINK.replace("203.0.113.2", "224.0.0.1"));
        assert!(
            e.starts_with("t.toml:3:10: link.office: server 224.0.0.1 is not a unicast"),
            "{e}"
        );
        let e = err("[link.x]\nmode = \"dial\"\ndevice = \"cat\"\nserver = \"192.0.2.1\"\n");
        assert!(e.contains("`server` is only for mode = \"pptp\""), "{e}");
        // MPPE needs MS-CHAPv2 keys: refusing it to a client that must use MPPE.
        let e = err(&format!("{PPTP_LINK}accept = [\"chap\"]\n"));
        assert!(e.contains("mppe needs MS-CHAPv2 keys"), "{e}");
    }
    /// An xl2tpd LNS (`[lns default]`, options.xl2tpd) as a server.
    const L2TP_SERVER: &str = "[daemon]\nsecrets = \"/etc/ppp/chap-secrets\"\n[server.lns]\nprotocol = \"l2tp\"\nlocalip = \"192.168.1.1\"\nremoteip = \"192.168.1.10-99\"\nname = \"lns\"\nsecret = \"tunnel secret\"\n";

    #[test]
    fn l2tp_server_defaults_are_options_xl2tpd() {
        let c = parse(L2TP_SERVER).unwrap();
        let s = c.server("lns").unwrap();
        assert_eq!(s.protocol, ServerProtocol::L2tp);
        assert_eq!(s.protocol.port(), 1701);
        assert_eq!(s.auth.require, [AuthMethod::MsChapV2]);
        assert!(s.auth.mppe.is_none());
        assert_eq!(s.mru, DEFAULT_L2TP_MRU);
        assert_eq!(
            s.l2tp.secret.as_ref().map(|x| x.expose().to_vec()),
            Some(b"tunnel secret".to_vec())
        );
        assert_eq!(s.l2tp.hello_interval, Duration::from_secs(60));
        assert!(s.l2tp.length_bit);
        assert!(!s.weak_settings().iter().any(|w| w.starts_with("PPTP:")));
        let c = parse(&L2TP_SERVER.replace(
            "secret = \"tunnel secret\"\n",
            "hello_interval = 0\nlength_bit = false\n",
        ))
        .unwrap();
        let s = &c.servers[0];
        assert!(s.l2tp.secret.is_none() && !s.l2tp.length_bit);
        assert!(s.l2tp.hello_interval.is_zero());
        assert!(s
            .weak_settings()
            .iter()
            .any(|w| w.contains("without `secret`")));
    }

    #[test]
    fn l2tp_server_errors_name_the_key() {
        let e = err(&L2TP_SERVER.replace("\"tunnel secret\"", "\"\""));
        assert!(e.contains("secret is empty"), "{e}");
        let e = err(&format!("{PPTP_SERVER}secret = \"x\"\n"));
        assert!(
            e.contains("`secret` is only for protocol = \"l2tp\""),
            "{e}"
        );
        let e = err(&format!("{PPTP_SERVER}hello_interval = 5\n"));
        assert!(e.contains("only for protocol = \"l2tp\""), "{e}");
        let two = format!("{L2TP_SERVER}[server.lns2]\nprotocol = \"l2tp\"\nlocalip = \"10.0.0.1\"\nremoteip = \"10.0.0.2\"\n");
        assert!(err(&two).contains("server.lns2: server.lns already serves L2TP"));
        // A PPTP server and an LNS side by side are fine.
        let both = format!("{L2TP_SERVER}[server.vpn]\nprotocol = \"pptp\"\nlocalip = \"10.0.0.1\"\nremoteip = \"10.0.0.2\"\n");
        assert_eq!(parse(&both).unwrap().servers.len(), 2);
    }

    /// Seed 002's xl2tpd.conf `[lac idcf]` and options.l2tpd.client.
    const L2TP_LINK: &str = "[link.idcf]\nmode = \"l2tp\"\nlns = \"203.0.113.5\"\nlength_bit = true\nredial_timeout = 10\nmax_redials = 6\nuser = \"xxxx\"\npassword = \"yyyy\"\nmtu = 1410\nmru = 1410\ndefault_route = true\npersist = true\n";

    #[test]
    fn l2tp_link_is_seed_002s_lac() {
        let c = parse(L2TP_LINK).unwrap();
        let l = c.link("idcf").unwrap();
        assert_eq!(l.mode, Mode::L2tp);
        assert_eq!(l.lns, Some(Ipv4Addr::new(203, 0, 113, 5)));
        assert_eq!(l.dial_peer(), "203.0.113.5");
        assert_eq!((l.mru, l.mtu), (1410, Some(1410)));
        // `noauth`: we ask nothing of the LNS, and prove ourselves.
        assert!(l.auth.require.is_empty());
        assert_eq!(l.auth.accept, [AuthMethod::MsChapV2, AuthMethod::ChapMd5]);
        assert!(l.auth.mppe.is_none());
        assert!(l.persist && l.default_route);
        assert_eq!(l.redial_min, Duration::from_secs(10));
        assert_eq!(l.redial_max, Duration::from_secs(10));
        assert_eq!(l.max_redials, 6);
        assert!(l.l2tp.length_bit && l.l2tp.secret.is_none());
        // The tunnel must not carry its own UDP.
        assert_eq!(l.outer_peer, l.lns);
        assert_eq!(
            l.link_config().lcp.framing,
            tsunagi_ppp::link::Framing::Packet
        );
        // Without redial_timeout: the backoff, for ever.
        let c = parse(&L2TP_LINK.replace("redial_timeout = 10\nmax_redials = 6\n", "")).unwrap();
        assert_eq!(c.links[0].max_redials, 0);
        assert_eq!(c.links[0].redial_min, Duration::from_secs(1));
    }

    #[test]
    fn l2tp_link_errors_name_the_key() {
        let e = err(&L2TP_LINK.replace("lns = \"203.0.113.5\"\n", ""));
        assert!(e.contains("mode = \"l2tp\" needs `lns`"), "{e}");
        let e = err(&format!("{PPTP_LINK}lns = \"192.0.2.1\"\n"));
        assert!(e.contains("`lns` is only for mode = \"l2tp\""), "{e}");
        let e = err(&format!("{PPTP_LINK}secret = \"x\"\n"));
        assert!(e.contains("`secret` is only for mode = \"l2tp\""), "{e}");
        let e = err(&format!("{L2TP_LINK}redial_min = 3\n"));
        assert!(e.contains("give `redial_timeout`"), "{e}");
        let e = err(&L2TP_LINK.replace("redial_timeout = 10", "redial_timeout = 0"));
        assert!(
            e.contains("redial_timeout must be at least 1 second"),
            "{e}"
        );
        let e = err(&format!("{L2TP_LINK}device = \"!ssh x\"\n"));
        assert!(e.contains("an l2tp link names its `lns`"), "{e}");
    }

    /// The plan's example conn, verbatim.
    const IPSEC: &str = "[ipsec.site]\nleft = \"10.201.1.1\"\nright = \"10.201.1.2\"\nleftid = \"left\"\nrightid = \"right\"\nsecrets = \"/etc/tsunagi/ipsec.secrets\"\nike = \"aes128-sha256-modp2048!\"\nesp = \"aes128gcm16!\"\ntype = \"tunnel\"\nleftsubnet = \"10.201.10.0/24\"\nrightsubnet = \"10.201.20.0/24\"\nauto = \"start\"\nkeyingtries = 0\nikelifetime = \"3h\"\nlifetime = \"1h\"\nmargintime = \"9m\"\ndpddelay = \"30s\"\ndpdtimeout = \"150s\"\ndpdaction = \"restart\"\nforceencaps = false\nleftfirewall = true\ntun = \"ipsec-site\"\n";

    #[test]
    fn ipsec_conn_parses_into_an_engine_config() {
        use tsunagi_ipsec::ike::{DpdAction, Identity};
        let c = parse(IPSEC).unwrap();
        let conn = c.ipsec_conn("site").unwrap();
        assert_eq!(conn.left, "10.201.1.1".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(conn.right, Some("10.201.1.2".parse().unwrap()));
        assert_eq!(conn.leftid, Identity::Fqdn("left".into()));
        assert_eq!(conn.rightid, Some(Identity::Fqdn("right".into())));
        assert_eq!(conn.auto, Auto::Start);
        assert_eq!(conn.keyingtries, 0);
        assert_eq!(conn.tun, "ipsec-site");
        assert!(conn.ike.strict && conn.esp.strict);
        assert_eq!(conn.rightsubnet.unwrap().prefix, 24);
        assert!(conn.weak_settings().is_empty());
        let e = conn.engine_config(tsunagi_crypto::Secret::from("k"));
        assert_eq!(e.ike_lifetime, Duration::from_secs(3 * 3600));
        assert_eq!(e.rekey_margin, Duration::from_secs(9 * 60));
        assert_eq!(e.dpd.unwrap().action, DpdAction::Restart);
        assert_eq!(e.dpd.unwrap().timeout, Duration::from_secs(150));
        assert_eq!(e.mode, tsunagi_ipsec::esp::Mode::Tunnel);
        assert!(!format!("{e:?}").contains("\"k\""));
    }

    #[test]
    fn ipsec_defaults_are_strongswans() {
        let c = parse("[daemon]\nipsec_secrets = \"/s\"\n[ipsec.x]\nleft = \"192.0.2.1\"\nright = \"192.0.2.2\"\n").unwrap();
        let conn = &c.ipsec[0];
        assert_eq!(conn.auto, Auto::Add);
        assert_eq!(conn.keyingtries, 3);
        assert_eq!(conn.lifetime, Duration::from_secs(3600));
        assert_eq!(conn.secrets, Path::new("/s"));
        assert!(conn.dpd.is_none() && conn.leftfirewall && !conn.forceencaps);
        assert_eq!(conn.tun, "ipsec-x");
        assert_eq!(conn.rightsubnet.unwrap().prefix, 32);
        assert_eq!(
            conn.rightid,
            Some(tsunagi_ipsec::ike::Identity::Address(
                "192.0.2.2".parse().unwrap()
            ))
        );
        let c = parse("[ipsec.x]\nleft = \"192.0.2.1\"\nright = \"192.0.2.2\"\n").unwrap();
        assert_eq!(c.ipsec[0].secrets, Path::new(DEFAULT_IPSEC_SECRETS));
    }

    #[test]
    fn weak_ipsec_algorithms_are_named_in_the_warning() {
        let c = parse(&IPSEC.replace("aes128-sha256-modp2048!", "3des-sha1-modp1024!")).unwrap();
        let weak = c.ipsec[0].weak_settings();
        assert_eq!(weak.len(), 1, "{weak:?}");
        assert!(
            weak[0].contains("3des") && weak[0].contains("modp1024") && weak[0].contains("sha1")
        );
        assert!(weak[0].starts_with("ike = \"3des-sha1-modp1024!\""));
        let c = parse(&IPSEC.replace("aes128gcm16!", "3des-md5!")).unwrap();
        let weak = c.ipsec[0].weak_settings();
        assert!(
            weak[0].starts_with("esp = ") && weak[0].contains("md5"),
            "{weak:?}"
        );
    }

    #[test]
    fn ipsec_errors_name_file_line_column_and_key() {
        let e = err(&IPSEC.replace("\"10.201.1.2\"", "\"peer\""));
        assert!(
            e.starts_with("t.toml:3:9: ipsec.site: right \"peer\" is not an IP address"),
            "{e}"
        );
        let e = err(&IPSEC.replace("aes128gcm16!", "aes128gcm16-sha1"));
        assert!(e.starts_with("t.toml:8:7: ipsec.site: esp: "), "{e}");
        let e = err(&IPSEC.replace("aes128-sha256-modp2048!", "blowfish-sha1-modp1024"));
        assert!(
            e.starts_with("t.toml:7:7: ipsec.site: ike: ") && e.contains("\"blowfish\""),
            "{e}"
        );
        let e = err(&IPSEC.replace("\"3h\"", "\"3x\""));
        assert!(
            e.starts_with("t.toml:14:15: ipsec.site: ikelifetime: unknown unit"),
            "{e}"
        );
        let e = err(&IPSEC.replace("right = \"10.201.1.2\"", "right = \"%any\""));
        assert!(e.contains("auto = \"start\" needs a `right`"), "{e}");
        let e = err(&IPSEC.replace("10.201.10.0/24", "10.201.10.1/24"));
        assert!(
            e.starts_with("t.toml:10:14: ipsec.site: leftsubnet: ") && e.contains("host bits"),
            "{e}"
        );
        let e = err(&IPSEC.replace("\"9m\"", "\"2h\""));
        assert!(
            e.contains("lifetime 3600s must be longer than margintime 7200s"),
            "{e}"
        );
        let e = err(&IPSEC.replace("\"150s\"", "\"10s\""));
        assert!(
            e.contains("dpdtimeout 10s must be longer than dpddelay 30s"),
            "{e}"
        );
        let e = err(&format!("{IPSEC}leftsourceip = \"1.2.3.4\"\n"));
        assert!(e.contains("unknown field `leftsourceip`"), "{e}");
        let e = err(&IPSEC.replace("\"tunnel\"", "\"transport\""));
        assert!(
            e.contains("`leftsubnet` is only for type = \"tunnel\""),
            "{e}"
        );
        let e = err(&IPSEC.replace("leftid = \"left\"", "leftid = \"a b\""));
        assert!(e.starts_with("t.toml:4:10: ipsec.site: leftid: "), "{e}");
        let twice = format!("{IPSEC}[ipsec.site2]\nleft = \"10.201.1.1\"\nright = \"10.201.1.2\"\ntun = \"ipsec-2\"\n");
        assert!(err(&twice).contains("ipsec.site already connects 10.201.1.1 with 10.201.1.2"));
        let tun = format!(
            "{IPSEC}[link.x]\nmode = \"direct\"\nallow_users = [\"u\"]\ntun = \"ipsec-site\"\n"
        );
        assert!(
            err(&tun).contains("tun \"ipsec-site\" is already used by"),
            "{}",
            err(&tun)
        );
        let e = err(&format!("{IPSEC}leftprotoport = \"1/7\"\n"));
        assert!(
            e.contains("leftprotoport: \"1/7\": a port needs protocol"),
            "{e}"
        );
    }
}
