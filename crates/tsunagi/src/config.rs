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

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use tsunagi_crypto::Secret;
use tsunagi_host::netlink::Ipv4Net;
use tsunagi_ppp::auth::{AuthConfig, AuthMethod};
use tsunagi_ppp::ccp::{CcpConfig, DeflateConfig, MppeConfig};
use tsunagi_ppp::hdlc::FcsMode;
use tsunagi_ppp::link::{
    EchoConfig, Framing, FsmTimers, IpcpConfig, Ipv6cpConfig, LcpConfig, LinkConfig,
};

/// Where the daemon and the CLI look for the config when `-c` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/tsunagi/tsunagi.toml";
/// The control socket when neither the config, `-S` nor `TSUNAGI_SOCKET` names one.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/tsunagi/tsunagi.sock";
/// Linux interface names are at most IFNAMSIZ - 1 = 15 bytes.
pub const MAX_IFNAME_LEN: usize = 15;
/// `route_table` of a link without one: this plus the link's index in name
/// order (100, 101, ...), clear of the kernel's 253..=255.
pub const DEFAULT_ROUTE_TABLE_BASE: u32 = 100;

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

/// `mode` of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// We run `device` and speak PPP over its stdin/stdout (the ssh client side).
    Dial,
    /// `tsunagi direct NAME` hands us a stream (the sshd side, user-ppp `-direct`).
    Direct,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Dial => "dial",
            Mode::Direct => "direct",
        })
    }
}

/// An IPv4 prefix written `A.B.C.D/N` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub Ipv4Net);

impl FromStr for Cidr {
    type Err = String;

    /// `A.B.C.D/N`, or a bare address for `/32`; host bits after the prefix
    /// are an error (the kernel would refuse the route at IPCP up).
    fn from_str(s: &str) -> Result<Cidr, String> {
        s.parse::<Ipv4Net>()
            .map(Cidr)
            .map_err(|e| format!("bad CIDR: {e}"))
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.addr, self.0.prefix)
    }
}

/// The `fcs` key's values (RFC 1570 s2.1 FCS-Alternatives).
#[derive(Debug, Clone, Copy, Deserialize)]
enum FcsSetting {
    /// The 16-bit FCS of RFC 1662, asked for by nobody: the default.
    #[serde(rename = "16")]
    Fcs16,
    /// Ask for the Null FCS and accept sending without FCS.
    #[serde(rename = "null")]
    Null,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    link: BTreeMap<String, Spanned<RawLink>>,
    policy: Option<Spanned<RawPolicy>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    control_socket: Option<PathBuf>,
    log_file: Option<PathBuf>,
    secrets: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    mode: Spanned<Mode>,
    device: Option<Spanned<String>>,
    tun: Option<Spanned<String>>,
    local: Option<Ipv4Addr>,
    remote: Option<Ipv4Addr>,
    #[serde(default)]
    routes: Vec<Spanned<String>>,
    default_route: Option<Spanned<bool>>,
    outer_peer: Option<Ipv4Addr>,
    #[serde(default)]
    source_routes: Vec<Ipv4Addr>,
    route_table: Option<Spanned<u32>>,
    ident: Option<String>,
    #[serde(default)]
    escape: Vec<u8>,
    #[serde(default)]
    accm: u32,
    mru: Option<Spanned<u16>>,
    mtu: Option<Spanned<u16>>,
    pfc: Option<bool>,
    acfc: Option<bool>,
    fcs: Option<FcsSetting>,
    ipv6cp: Option<bool>,
    dns: Option<Spanned<Vec<Ipv4Addr>>>,
    #[serde(default)]
    usepeerdns: bool,
    echo_interval: Option<u64>,
    echo_failure: Option<Spanned<u32>>,
    restart: Option<Spanned<u64>>,
    persist: Option<bool>,
    redial_min: Option<Spanned<u64>>,
    redial_max: Option<Spanned<u64>>,
    ip_up: Option<PathBuf>,
    ip_down: Option<PathBuf>,
    #[serde(default)]
    allow_users: Vec<String>,
    tun_offload: Option<bool>,
    #[serde(default)]
    require: Vec<Spanned<String>>,
    accept: Option<Vec<Spanned<String>>>,
    name: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    secrets: Option<PathBuf>,
    mppe: Option<Spanned<String>>,
    mppe_stateful: Option<bool>,
    deflate: Option<Spanned<u8>>,
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
}

/// Where our own password comes from (pppd `password`, or a file).
#[derive(Clone, PartialEq)]
pub enum PasswordSource {
    /// Written in the config, which is then held to a secrets file's
    /// checks at start-up ([`crate::auth`]: mode and owner).
    Inline(Secret),
    /// Read at start-up from this file (its first line), refused when
    /// group or others can read it or another user owns it.
    File(PathBuf),
}

impl fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            PasswordSource::File(p) => write!(f, "File({p:?})"),
        }
    }
}

/// PPP authentication and compression of one link, in pppd's words
/// (`require-pap`/`-chap`/`-mschap-v2`, `name`, `user`, `password`,
/// `require-mppe-128`, `mppe-stateful`, `deflate`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthSettings {
    /// Methods the peer must authenticate with; empty is pppd's `noauth`.
    pub require: Vec<AuthMethod>,
    /// Methods we agree to prove ourselves with when the peer asks.
    pub accept: Vec<AuthMethod>,
    /// Our name in CHAP Challenges and secrets lookups (pppd `name`).
    pub name: Option<String>,
    /// The name we authenticate with (pppd `user`).
    pub user: Option<String>,
    /// Our password; without it, looked up in `secrets`.
    pub password: Option<PasswordSource>,
    /// chap-secrets (the link's own, else `[daemon] secrets`).
    pub secrets: Option<PathBuf>,
    /// MPPE (RFC 3078); only when named.
    pub mppe: Option<MppeConfig>,
    /// Deflate (RFC 1979) with this window.
    pub deflate: Option<u8>,
}

/// One `[link.NAME]` section, validated, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSettings {
    /// The section's name; also the ip-up `ipparam`.
    pub name: String,
    /// Dial or direct.
    pub mode: Mode,
    /// Dial mode: the shell command whose stdin/stdout carry PPP ('!' removed).
    pub device: Option<String>,
    /// The tun interface's name.
    pub tun: String,
    /// Our address; `None` asks the peer.
    pub local: Option<Ipv4Addr>,
    /// The address we give the peer; `None` accepts its own.
    pub remote: Option<Ipv4Addr>,
    /// Routes through the link while IPCP is open.
    pub routes: Vec<Ipv4Net>,
    /// Full tunnel: `0.0.0.0/1` and `128.0.0.0/1` through the tun while
    /// IPCP is open, with a host route keeping [`LinkSettings::outer_peer`]
    /// on its old next hop; `false` is split tunnel (only `routes`).
    pub default_route: bool,
    /// The peer's outer (SSH) address; required with `default_route` in
    /// dial mode, a direct link falls back to the SSH client address.
    pub outer_peer: Option<Ipv4Addr>,
    /// Addresses whose replies must leave through the tun (seed 001's
    /// borrowed address): `ip rule from ADDR lookup route_table`.
    pub source_routes: Vec<Ipv4Addr>,
    /// The routing table holding the tun's default route for
    /// `source_routes`: default [`DEFAULT_ROUTE_TABLE_BASE`] + the link's
    /// index in name order.
    pub route_table: u32,
    /// RFC 1570 Identification text.
    pub ident: Option<String>,
    /// Bytes always escaped when sending (user-ppp `set escape`).
    pub escape: Vec<u8>,
    /// ACCM we ask of the peer (RFC 1662 section 7.1).
    pub accm: u32,
    /// Our MRU.
    pub mru: u16,
    /// The tun's MTU; `None` = min(our MRU, peer's MRU).
    pub mtu: Option<u16>,
    /// Protocol-Field-Compression.
    pub pfc: bool,
    /// Address-and-Control-Field-Compression.
    pub acfc: bool,
    /// FCS-Alternatives (RFC 1570 s2.1): `fcs = "null"` asks the peer to
    /// send without FCS and agrees to do the same; `"16"` (default) keeps
    /// the 16-bit FCS.
    pub fcs: FcsMode,
    /// Negotiate IPV6CP.
    pub ipv6cp: bool,
    /// DNS servers handed to peers that ask (at most 2, RFC 1877).
    pub dns: Vec<Ipv4Addr>,
    /// Ask the peer for DNS servers.
    pub usepeerdns: bool,
    /// LCP Echo-Request interval; zero disables.
    pub echo_interval: Duration,
    /// Unanswered echoes before the link is declared dead.
    pub echo_failure: u32,
    /// RFC 1661 restart timer.
    pub restart: Duration,
    /// Dial mode: redial when the link ends.
    pub persist: bool,
    /// First redial delay.
    pub redial_min: Duration,
    /// Largest redial delay (the backoff doubles up to it).
    pub redial_max: Duration,
    /// Hook run when IPCP comes up.
    pub ip_up: Option<PathBuf>,
    /// Hook run when IPCP goes down.
    pub ip_down: Option<PathBuf>,
    /// Direct mode: user names whose uid may hand us a stream.
    pub allow_users: Vec<String>,
    /// Open the tun in offload mode and enable TSO when the peer's MRU
    /// takes 64 KiB super-packets (transport::stream::OFFLOAD_MIN_PEER_MRU).
    pub tun_offload: bool,
    /// PPP authentication, Deflate and MPPE.
    pub auth: AuthSettings,
}

/// `[policy]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    ipf: Option<PathBuf>,
    ipnat: Option<PathBuf>,
    #[serde(default)]
    interfaces: BTreeMap<String, String>,
    forwarding: Option<bool>,
    #[serde(default)]
    keep_on_exit: bool,
    nflog_group: Option<u16>,
    log_file: Option<PathBuf>,
}

/// `[policy]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// ipf.rules file.
    pub ipf: Option<PathBuf>,
    /// ipnat.rules file.
    pub ipnat: Option<PathBuf>,
    /// Interface names in the rules -> Linux names.
    pub interfaces: BTreeMap<String, String>,
    /// Set `net.ipv4.ip_forward` at start (`None`: leave it).
    pub forwarding: Option<bool>,
    /// Leave the tables in place when the daemon stops.
    pub keep_on_exit: bool,
    /// NFLOG group for `log` rules.
    pub nflog_group: u16,
    /// Where ipmon lines go; `None`: the daemon's log.
    pub log_file: Option<PathBuf>,
}

impl RawPolicy {
    /// Validate; the error names the key.
    pub fn validate(self) -> Result<PolicySettings, String> {
        if self.ipf.is_none() && self.ipnat.is_none() {
            return Err("policy: needs `ipf` or `ipnat` (a rules file)".into());
        }
        for (from, to) in &self.interfaces {
            if to.is_empty() || to.len() > MAX_IFNAME_LEN || to.contains('/') {
                return Err(format!(
                    "policy.interfaces.{from}: {to:?} is not a Linux interface name (1-15 bytes, no '/')"
                ));
            }
        }
        Ok(PolicySettings {
            ipf: self.ipf,
            ipnat: self.ipnat,
            interfaces: self.interfaces,
            forwarding: self.forwarding,
            keep_on_exit: self.keep_on_exit,
            nflog_group: self.nflog_group.unwrap_or(1),
            log_file: self.log_file,
        })
    }
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
    /// `[policy]`: filter and NAT rules (see [`crate::policy`]).
    pub policy: Option<PolicySettings>,
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
        };
        let mut links = Vec::with_capacity(raw.link.len());
        let mut tuns: BTreeMap<String, String> = BTreeMap::new();
        for (name, spanned) in raw.link {
            let span = spanned.span();
            let link = validate_link(
                &name,
                span.clone(),
                spanned.into_inner(),
                daemon.secrets.as_deref(),
                links.len(),
            )
            .map_err(|(span, msg)| invalid(Some(span), format!("link.{name}: {msg}")))?;
            if let Some(other) = tuns.insert(link.tun.clone(), name.clone()) {
                return Err(invalid(
                    Some(span),
                    format!(
                        "link.{name}: tun {:?} is already used by link.{other}",
                        link.tun
                    ),
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
            policy,
        })
    }

    /// The link called `name`.
    pub fn link(&self, name: &str) -> Option<&LinkSettings> {
        self.links.iter().find(|l| l.name == name)
    }
}

type Invalid = (Range<usize>, String);

fn validate_link(
    name: &str,
    section: Range<usize>,
    raw: RawLink,
    daemon_secrets: Option<&Path>,
    index: usize,
) -> Result<LinkSettings, Invalid> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err((
            section,
            "link names may use only letters, digits, '-', '_' and '.'".into(),
        ));
    }
    let auth = validate_auth(&raw, section.clone(), daemon_secrets)?;
    let mode = *raw.mode.get_ref();
    let device = match (mode, raw.device) {
        (Mode::Dial, None) => {
            return Err((
                raw.mode.span(),
                "mode = \"dial\" needs `device` (the command that carries PPP, e.g. \"!ssh user@host tsunagi direct NAME\")".into(),
            ))
        }
        (Mode::Dial, Some(dev)) => {
            let cmd = dev.get_ref().strip_prefix('!').unwrap_or(dev.get_ref()).trim();
            if cmd.is_empty() {
                return Err((dev.span(), "device is an empty command".into()));
            }
            Some(cmd.to_string())
        }
        (Mode::Direct, Some(dev)) => {
            return Err((
                dev.span(),
                "`device` is only for mode = \"dial\"; a direct link gets its stream from `tsunagi direct`".into(),
            ))
        }
        (Mode::Direct, None) => None,
    };
    if mode == Mode::Direct && raw.allow_users.is_empty() {
        return Err((
            raw.mode.span(),
            "mode = \"direct\" needs `allow_users` (who may run `tsunagi direct` for it)".into(),
        ));
    }
    let tun = match raw.tun {
        Some(t) => {
            let n = t.get_ref();
            if n.is_empty()
                || n.len() > MAX_IFNAME_LEN
                || n.contains(['/', ' ', '\0'])
                || n == "."
                || n == ".."
            {
                return Err((
                    t.span(),
                    format!(
                        "tun {n:?} is not a valid interface name (1..=15 bytes, no '/' or spaces)"
                    ),
                ));
            }
            n.clone()
        }
        None => default_tun_name(name),
    };
    let mru = match raw.mru {
        Some(m) if *m.get_ref() < 128 => {
            return Err((
                m.span(),
                format!("mru {} is below 128 (pppd's minimum)", m.get_ref()),
            ))
        }
        Some(m) => *m.get_ref(),
        None => 1500,
    };
    let mtu = match raw.mtu {
        Some(m) if *m.get_ref() < 128 => {
            return Err((m.span(), format!("mtu {} is below 128", m.get_ref())))
        }
        Some(m) => Some(*m.get_ref()),
        None => None,
    };
    if let Some(dns) = raw.dns.as_ref().filter(|d| d.get_ref().len() > 2) {
        return Err((
            dns.span(),
            "at most 2 dns servers (RFC 1877 primary and secondary)".into(),
        ));
    }
    let echo_failure = match raw.echo_failure {
        Some(f) if *f.get_ref() == 0 => {
            return Err((
                f.span(),
                "echo_failure must be at least 1 (use echo_interval = 0 to disable echoes)".into(),
            ))
        }
        Some(f) => *f.get_ref(),
        None => 3,
    };
    let restart = match raw.restart {
        Some(r) if *r.get_ref() == 0 => {
            return Err((r.span(), "restart must be at least 1 second".into()))
        }
        Some(r) => *r.get_ref(),
        None => 3,
    };
    let redial_min = match raw.redial_min {
        Some(r) if *r.get_ref() == 0 => {
            return Err((r.span(), "redial_min must be at least 1 second".into()))
        }
        Some(r) => *r.get_ref(),
        None => 1,
    };
    let redial_max = match raw.redial_max {
        Some(r) if *r.get_ref() < redial_min => {
            return Err((
                r.span(),
                format!(
                    "redial_max {} is below redial_min {redial_min}",
                    r.get_ref()
                ),
            ))
        }
        Some(r) => *r.get_ref(),
        None => 30.max(redial_min),
    };
    let mut routes = Vec::with_capacity(raw.routes.len());
    for r in &raw.routes {
        // Parsed here rather than by serde so that the error points at the
        // element, not at the whole array.
        routes.push(r.get_ref().parse::<Cidr>().map_err(|e| (r.span(), e))?.0);
    }
    let default_route = raw.default_route.as_ref().is_some_and(|d| *d.get_ref());
    if let Some(d) = raw.default_route.as_ref() {
        if default_route && mode == Mode::Dial && raw.outer_peer.is_none() {
            return Err((
                d.span(),
                "default_route = true in dial mode needs `outer_peer` (the SSH server's address, kept on its old route so the tunnel's own packets do not enter the tunnel)".into(),
            ));
        }
    }
    let route_table = match raw.route_table {
        // 0 is unspec, 253..=255 are the kernel's default/main/local tables.
        Some(t) if *t.get_ref() == 0 || (253..=255).contains(t.get_ref()) => {
            return Err((
                t.span(),
                format!(
                    "route_table {} is reserved (0 unspec, 253 default, 254 main, 255 local)",
                    t.get_ref()
                ),
            ))
        }
        Some(t) => *t.get_ref(),
        None => DEFAULT_ROUTE_TABLE_BASE.saturating_add(u32::try_from(index).unwrap_or(u32::MAX)),
    };
    Ok(LinkSettings {
        name: name.to_string(),
        mode,
        device,
        tun,
        local: raw.local,
        remote: raw.remote,
        routes,
        default_route,
        outer_peer: raw.outer_peer,
        source_routes: raw.source_routes,
        route_table,
        ident: raw.ident,
        escape: raw.escape,
        accm: raw.accm,
        mru,
        mtu,
        pfc: raw.pfc.unwrap_or(true),
        acfc: raw.acfc.unwrap_or(true),
        fcs: match raw.fcs.unwrap_or(FcsSetting::Fcs16) {
            FcsSetting::Fcs16 => FcsMode::Fcs16,
            FcsSetting::Null => FcsMode::Null,
        },
        ipv6cp: raw.ipv6cp.unwrap_or(true),
        dns: raw.dns.map(Spanned::into_inner).unwrap_or_default(),
        usepeerdns: raw.usepeerdns,
        echo_interval: Duration::from_secs(raw.echo_interval.unwrap_or(10)),
        echo_failure,
        restart: Duration::from_secs(restart),
        persist: raw.persist.unwrap_or(true),
        redial_min: Duration::from_secs(redial_min),
        redial_max: Duration::from_secs(redial_max),
        ip_up: raw.ip_up,
        ip_down: raw.ip_down,
        allow_users: raw.allow_users,
        tun_offload: raw.tun_offload.unwrap_or(true),
        auth,
    })
}

/// `require`/`accept` words: pppd's `require-pap`, `require-chap`,
/// `require-mschap-v2` without the prefix.
fn auth_method(word: &Spanned<String>) -> Result<AuthMethod, Invalid> {
    match word.get_ref().as_str() {
        "pap" => Ok(AuthMethod::Pap),
        "chap" | "chap-md5" => Ok(AuthMethod::ChapMd5),
        "mschap-v2" | "ms-chap-v2" => Ok(AuthMethod::MsChapV2),
        other => Err((
            word.span(),
            format!("unknown authentication {other:?} (want \"pap\", \"chap\" or \"mschap-v2\")"),
        )),
    }
}

fn auth_methods(words: &[Spanned<String>]) -> Result<Vec<AuthMethod>, Invalid> {
    let mut out = Vec::with_capacity(words.len());
    for w in words {
        let m = auth_method(w)?;
        if out.contains(&m) {
            return Err((w.span(), format!("{:?} is listed twice", w.get_ref())));
        }
        out.push(m);
    }
    Ok(out)
}

fn validate_auth(
    raw: &RawLink,
    section: Range<usize>,
    daemon_secrets: Option<&Path>,
) -> Result<AuthSettings, Invalid> {
    let require = auth_methods(&raw.require)?;
    let mut accept = match &raw.accept {
        Some(words) => auth_methods(words)?,
        None => vec![AuthMethod::ChapMd5, AuthMethod::Pap],
    };
    let password = match (&raw.password, &raw.password_file) {
        (Some(_), Some(f)) => {
            return Err((
                f.span(),
                "give `password` or `password_file`, not both".into(),
            ))
        }
        (Some(p), None) if p.get_ref().is_empty() => {
            return Err((p.span(), "password is empty".into()))
        }
        (Some(p), None) => Some(PasswordSource::Inline(Secret::new(p.get_ref().as_bytes()))),
        (None, Some(f)) => Some(PasswordSource::File(f.get_ref().clone())),
        (None, None) => None,
    };
    let user = match &raw.user {
        Some(u) if u.get_ref().is_empty() || u.get_ref().len() > 255 => {
            return Err((u.span(), "user must be 1..=255 bytes".into()))
        }
        Some(u) => Some(u.get_ref().clone()),
        None => None,
    };
    let secrets = raw
        .secrets
        .clone()
        .or_else(|| daemon_secrets.map(Path::to_path_buf));
    if let (None, Some(p)) = (&user, &raw.password) {
        return Err((
            p.span(),
            "`password` needs `user` (the name it belongs to)".into(),
        ));
    }
    if let (None, Some(p)) = (&user, &raw.password_file) {
        return Err((
            p.span(),
            "`password_file` needs `user` (the name it belongs to)".into(),
        ));
    }
    if let Some(u) = &raw.user {
        if password.is_none() && secrets.is_none() {
            return Err((
                u.span(),
                "`user` needs `password`, `password_file` or a `secrets` file holding its secret"
                    .into(),
            ));
        }
    }
    if let Some(first) = raw.require.first() {
        if secrets.is_none() {
            return Err((
                first.span(),
                "`require` needs a `secrets` file (here or under [daemon]) to check the peer against"
                    .into(),
            ));
        }
    }
    let name = match &raw.name {
        Some(n) if n.get_ref().is_empty() || n.get_ref().len() > 255 => {
            return Err((n.span(), "name must be 1..=255 bytes".into()))
        }
        Some(n) => Some(n.get_ref().clone()),
        None => None,
    };
    let mppe = match &raw.mppe {
        None => {
            if raw.mppe_stateful.is_some() {
                return Err((section, "`mppe_stateful` needs `mppe`".into()));
            }
            None
        }
        Some(word) => {
            let (required, bits) = match word.get_ref().as_str() {
                "require-128" => (true, (false, true)),
                "require-40" => (true, (true, false)),
                "require" => (true, (true, true)),
                "allow-128" => (false, (false, true)),
                "allow-40" => (false, (true, false)),
                "allow" => (false, (true, true)),
                other => {
                    return Err((
                        word.span(),
                        format!(
                            "unknown mppe {other:?} (want \"require-128\", \"require-40\", \"require\", \"allow-128\", \"allow-40\" or \"allow\")"
                        ),
                    ))
                }
            };
            // MPPE keys come from MS-CHAPv2 (RFC 3079 s3): one side of
            // the link must run it.
            if !require.contains(&AuthMethod::MsChapV2) {
                if raw.accept.is_some() && !accept.contains(&AuthMethod::MsChapV2) {
                    return Err((
                        word.span(),
                        "mppe needs MS-CHAPv2 keys: add \"mschap-v2\" to `require` or `accept`"
                            .into(),
                    ));
                }
                if !accept.contains(&AuthMethod::MsChapV2) {
                    // Naming MPPE names the MS-CHAPv2 it needs.
                    accept.insert(0, AuthMethod::MsChapV2);
                }
                if user.is_none() {
                    return Err((
                        word.span(),
                        "mppe needs MS-CHAPv2: `require = [\"mschap-v2\"]`, or a `user` to authenticate to the peer with it"
                            .into(),
                    ));
                }
            }
            Some(MppeConfig {
                bits40: bits.0,
                bits128: bits.1,
                stateful: raw.mppe_stateful.unwrap_or(false),
                required,
            })
        }
    };
    let deflate = match &raw.deflate {
        Some(w) if !(9..=15).contains(w.get_ref()) => {
            return Err((
                w.span(),
                format!(
                    "deflate window {} is outside 9..=15 (RFC 1979; pppd `deflate 15`)",
                    w.get_ref()
                ),
            ))
        }
        Some(w) => Some(*w.get_ref()),
        None => None,
    };
    Ok(AuthSettings {
        require,
        accept,
        name,
        user,
        password,
        secrets,
        mppe,
        deflate,
    })
}

/// "ts-" + the link name, cut to 15 bytes (on a char boundary).
pub fn default_tun_name(link: &str) -> String {
    let mut name = format!("ts-{link}");
    while name.len() > MAX_IFNAME_LEN {
        name.pop();
    }
    name
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

impl LinkSettings {
    /// The PPP engine's configuration (RFC 1661 timers: Max-Configure 10,
    /// Max-Terminate 2, Max-Failure 5, as the RFC's section 4.6 suggests).
    /// Anything the config does not name keeps the engine's default, which
    /// is off. Without credentials (secrets, password) a link that
    /// requires authentication refuses every peer.
    ///
    /// The secrets and password the daemon reads at start-up go in with
    /// `crate::auth::Credentials::link_config`.
    // The update is needless only while every field is named here.
    #[allow(clippy::needless_update)]
    pub fn link_config(&self) -> LinkConfig {
        let a = &self.auth;
        let defaults = AuthConfig::default();
        LinkConfig {
            name: self.name.clone(),
            lcp: LcpConfig {
                framing: Framing::AsyncHdlc,
                mru: self.mru,
                accm: self.accm,
                escape: self.escape.clone(),
                pfc: self.pfc,
                acfc: self.acfc,
                fcs: self.fcs,
                ident: self.ident.clone(),
                echo: (!self.echo_interval.is_zero()).then_some(EchoConfig {
                    interval: self.echo_interval,
                    failures: self.echo_failure,
                }),
            },
            ipcp: IpcpConfig {
                local: self.local,
                remote: self.remote,
                dns: [self.dns.first().copied(), self.dns.get(1).copied()],
                request_dns: self.usepeerdns,
                remote_from_driver: false,
                refused_remote: Vec::new(),
            },
            ipv6cp: self.ipv6cp.then(Ipv6cpConfig::default),
            timers: FsmTimers {
                restart: self.restart,
                max_configure: 10,
                max_terminate: 2,
                max_failure: 5,
            },
            auth: AuthConfig {
                require: a.require.clone(),
                accept: a.accept.clone(),
                name: a.name.clone().unwrap_or(defaults.name.clone()),
                user: a.user.clone(),
                ..defaults
            },
            ccp: CcpConfig {
                deflate: a.deflate.map(|window| DeflateConfig { window }),
                mppe: a.mppe.clone(),
            },
            ..LinkConfig::default()
        }
    }

    /// Settings an operator should know are weak, for the start-up log.
    pub fn weak_settings(&self) -> Vec<String> {
        let mut weak = Vec::new();
        if self.echo_interval.is_zero() {
            weak.push("echo_interval = 0: a dead peer is never detected".to_string());
        }
        if self.allow_users.iter().any(|u| u == "root") {
            weak.push("allow_users includes root: root logins may hand us streams".to_string());
        }
        if self.mode == Mode::Direct && self.remote.is_none() {
            weak.push("no `remote`: the peer chooses its own address".to_string());
        }
        if self.auth.require.is_empty() {
            weak.push(
                "no PPP authentication: the link trusts the SSH login that carries it".to_string(),
            );
        }
        if self.auth.require.contains(&AuthMethod::Pap) {
            weak.push("require pap: the peer's password crosses the link in clear".to_string());
        }
        for alg in self.link_config().weak_algorithms() {
            weak.push(format!("weak algorithm enabled: {alg}"));
        }
        weak
    }

    /// Who the peer is, for `status`: the ssh target of the device command.
    pub fn dial_peer(&self) -> String {
        self.device.as_deref().map(ssh_target).unwrap_or_default()
    }
}

/// The `user@host` of an ssh command line, or the command itself when it
/// does not run ssh.
pub fn ssh_target(command: &str) -> String {
    // ssh(1) options that take an argument.
    const WITH_ARG: &str = "BbcDEeFIiJLlmOoPpQRSWw";
    let mut words = command.split_whitespace();
    while let Some(w) = words.next() {
        if w.rsplit('/').next() != Some("ssh") {
            continue;
        }
        while let Some(opt) = words.next() {
            if let Some(flags) = opt.strip_prefix('-') {
                // "-p 22" takes the next word, "-p22" and "-4v" do not.
                if let Some(pos) = flags.find(|c| WITH_ARG.contains(c)) {
                    if pos + 1 == flags.len() {
                        words.next();
                    }
                }
                continue;
            }
            return opt.to_string();
        }
    }
    command.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.links[0].route_table, DEFAULT_ROUTE_TABLE_BASE);
        assert_eq!(c.links[1].route_table, DEFAULT_ROUTE_TABLE_BASE + 1);
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
}
