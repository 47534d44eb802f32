//! `[link.NAME]`: a site link (PPP over SSH, dialled or answered), a
//! PPTP client (`mode = "pptp"`) or an L2TP LAC (`mode = "l2tp"`, xl2tpd's
//! `[lac NAME]`).
//!
//! An L2TP link takes xl2tpd's keys: `lns` (the server), `secret` (the
//! tunnel secret of l2tp-secrets), `hello_interval`, `length_bit`,
//! `redial_timeout` (`redial timeout`: a fixed wait before each redial)
//! and `max_redials` (`max redials`; 0 or absent: for ever), the last two
//! for any dialling link. `ipsec = "NAME"` makes it L2TP/IPsec (seed
//! 002): the tunnel's datagrams go only through the transport conn
//! `[ipsec.NAME]`, which the link brings up before it dials and takes
//! down with its session, so that the whole stack redials as one.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use tsunagi_host::netlink::Ipv4Net;
use tsunagi_ppp::auth::AuthMethod;
use tsunagi_ppp::hdlc::FcsMode;
use tsunagi_ppp::link::{
    EchoConfig, Framing, FsmTimers, IpcpConfig, Ipv6cpConfig, LcpConfig, LinkConfig,
};

use super::auth::{validate_auth, AuthDefaults, AuthFields, AuthSettings};
use super::common::{
    check_dns, check_echo_failure, check_mru, check_restart, check_section_name, check_tun,
    stable_table, Cidr, Invalid, DEFAULT_L2TP_MRU, DEFAULT_PPTP_MRU,
};
use super::server::{L2tpSettings, RawL2tp};

/// `route_table` of a link without one: this plus a number from the link's
/// name ([`stable_table`]), 10000..=19999, clear of the kernel's 253..=255
/// and of IPsec transport mode's tables.
pub const DEFAULT_ROUTE_TABLE_BASE: u32 = 10_000;

/// `mode` of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// We run `device` and speak PPP over its stdin/stdout (the ssh client side).
    Dial,
    /// `tsunagi direct NAME` hands us a stream (the sshd side, user-ppp `-direct`).
    Direct,
    /// A PPTP client (pptp-linux): TCP 1723 and GRE to `server` (RFC 2637).
    Pptp,
    /// An L2TP LAC (xl2tpd's `[lac]`): a tunnel and a session on UDP 1701
    /// to `lns` (RFC 2661).
    L2tp,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Dial => "dial",
            Mode::Direct => "direct",
            Mode::Pptp => "pptp",
            Mode::L2tp => "l2tp",
        })
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLink {
    mode: Spanned<Mode>,
    device: Option<Spanned<String>>,
    server: Option<Spanned<Ipv4Addr>>,
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
    require: Option<Vec<Spanned<String>>>,
    accept: Option<Vec<Spanned<String>>>,
    name: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    password_file: Option<Spanned<PathBuf>>,
    secrets: Option<PathBuf>,
    mppe: Option<Spanned<String>>,
    mppe_stateful: Option<bool>,
    deflate: Option<Spanned<u8>>,
    lns: Option<Spanned<Ipv4Addr>>,
    secret: Option<Spanned<String>>,
    hello_interval: Option<u64>,
    length_bit: Option<bool>,
    redial_timeout: Option<Spanned<u64>>,
    max_redials: Option<u32>,
    ipsec: Option<Spanned<String>>,
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
    /// PPTP mode: the server's address (TCP 1723 and GRE go there).
    pub server: Option<Ipv4Addr>,
    /// L2TP mode: the LNS's address (UDP 1701).
    pub lns: Option<Ipv4Addr>,
    /// L2TP mode: the tunnel secret, HELLO, the Length bit.
    pub l2tp: L2tpSettings,
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
    /// `source_routes`: by default [`DEFAULT_ROUTE_TABLE_BASE`] + a number
    /// from the link's name, so that adding a link renumbers none.
    pub route_table: u32,
    /// `route_table` was written in the config (not derived from the name).
    pub route_table_set: bool,
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
    /// Redials after a loss before giving up, counted since the last
    /// session that brought IPCP up (xl2tpd `max redials`); 0: for ever.
    pub max_redials: u32,
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

pub(super) fn validate_link(
    name: &str,
    section: Range<usize>,
    raw: RawLink,
    daemon_secrets: Option<&Path>,
) -> Result<LinkSettings, Invalid> {
    check_section_name(name, section.clone())?;
    let mode = *raw.mode.get_ref();
    let fields = AuthFields {
        require: raw.require.as_deref(),
        accept: raw.accept.as_deref(),
        name: raw.name.as_ref(),
        user: raw.user.as_ref(),
        password: raw.password.as_ref(),
        password_file: raw.password_file.as_ref(),
        secrets: raw.secrets.as_ref(),
        mppe: raw.mppe.as_ref(),
        mppe_stateful: raw.mppe_stateful,
        deflate: raw.deflate.as_ref(),
    };
    let defaults = match mode {
        Mode::Pptp => AuthDefaults::PPTP_CLIENT,
        Mode::L2tp => AuthDefaults::L2TP_CLIENT,
        Mode::Dial | Mode::Direct => AuthDefaults::SITE,
    };
    let auth = validate_auth(&fields, defaults, section.clone(), daemon_secrets)?;
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
        (Mode::Direct, None) | (Mode::Pptp, None) | (Mode::L2tp, None) => None,
        (Mode::Pptp, Some(dev)) => {
            return Err((
                dev.span(),
                "`device` is only for mode = \"dial\"; a pptp link names its `server`".into(),
            ))
        }
        (Mode::L2tp, Some(dev)) => {
            return Err((
                dev.span(),
                "`device` is only for mode = \"dial\"; an l2tp link names its `lns`".into(),
            ))
        }
    };
    let lns = match (mode, &raw.lns) {
        (Mode::L2tp, Some(s)) => {
            let addr = *s.get_ref();
            if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
                return Err((s.span(), format!("lns {addr} is not a unicast address")));
            }
            Some(addr)
        }
        (Mode::L2tp, None) => {
            return Err((
                raw.mode.span(),
                "mode = \"l2tp\" needs `lns` (the L2TP server's IPv4 address)".into(),
            ))
        }
        (_, Some(s)) => return Err((s.span(), "`lns` is only for mode = \"l2tp\"".into())),
        (_, None) => None,
    };
    let l2tp = RawL2tp {
        secret: raw.secret.as_ref(),
        hello_interval: raw.hello_interval,
        length_bit: raw.length_bit,
        ipsec: raw.ipsec.as_ref(),
    }
    .validate(mode == Mode::L2tp, "mode")
    .map_err(|(span, m)| {
        (
            if span.is_empty() {
                section.clone()
            } else {
                span
            },
            m,
        )
    })?;
    let server = match (mode, &raw.server) {
        (Mode::Pptp, Some(s)) => {
            let addr = *s.get_ref();
            if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() {
                return Err((s.span(), format!("server {addr} is not a unicast address")));
            }
            Some(addr)
        }
        (Mode::Pptp, None) => {
            return Err((
                raw.mode.span(),
                "mode = \"pptp\" needs `server` (the PPTP server's IPv4 address)".into(),
            ))
        }
        (_, Some(s)) => return Err((s.span(), "`server` is only for mode = \"pptp\"".into())),
        (_, None) => None,
    };
    if matches!(mode, Mode::Pptp | Mode::L2tp) && !raw.allow_users.is_empty() {
        return Err((
            raw.mode.span(),
            "`allow_users` is only for mode = \"direct\"".into(),
        ));
    }
    if mode == Mode::Direct && raw.allow_users.is_empty() {
        return Err((
            raw.mode.span(),
            "mode = \"direct\" needs `allow_users` (who may run `tsunagi direct` for it)".into(),
        ));
    }
    let tun = check_tun(raw.tun.as_ref(), name)?;
    let default_mru = match mode {
        Mode::Pptp => DEFAULT_PPTP_MRU,
        Mode::L2tp => DEFAULT_L2TP_MRU,
        Mode::Dial | Mode::Direct => 1500,
    };
    let mru = check_mru(raw.mru.as_ref(), default_mru)?;
    let mtu = match raw.mtu {
        Some(m) if *m.get_ref() < 128 => {
            return Err((m.span(), format!("mtu {} is below 128", m.get_ref())))
        }
        Some(m) => Some(*m.get_ref()),
        None => None,
    };
    let dns = check_dns(raw.dns)?;
    let echo_failure = check_echo_failure(raw.echo_failure.as_ref())?;
    let restart = check_restart(raw.restart.as_ref())?;
    if let (Some(t), true) = (
        &raw.redial_timeout,
        raw.redial_min.is_some() || raw.redial_max.is_some(),
    ) {
        return Err((
            t.span(),
            "give `redial_timeout` (a fixed wait) or `redial_min`/`redial_max` (a backoff), not both"
                .into(),
        ));
    }
    let (redial_min, redial_max) = match &raw.redial_timeout {
        Some(t) if *t.get_ref() == 0 => {
            return Err((t.span(), "redial_timeout must be at least 1 second".into()))
        }
        Some(t) => (
            Some(Spanned::new(t.span(), *t.get_ref())),
            Some(Spanned::new(t.span(), *t.get_ref())),
        ),
        None => (raw.redial_min, raw.redial_max),
    };
    let redial_min = match redial_min {
        Some(r) if *r.get_ref() == 0 => {
            return Err((r.span(), "redial_min must be at least 1 second".into()))
        }
        Some(r) => *r.get_ref(),
        None => 1,
    };
    let redial_max = match redial_max {
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
    let route_table_set = raw.route_table.is_some();
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
        None => stable_table(DEFAULT_ROUTE_TABLE_BASE, name),
    };
    Ok(LinkSettings {
        name: name.to_string(),
        mode,
        device,
        server,
        lns,
        l2tp,
        tun,
        local: raw.local,
        remote: raw.remote,
        routes,
        default_route,
        // A PPTP client's tunnel must not carry its own control and GRE.
        // An L2TP LAC's tunnel must not carry its own UDP either.
        outer_peer: raw.outer_peer.or(server).or(lns),
        source_routes: raw.source_routes,
        route_table,
        route_table_set,
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
        dns,
        usepeerdns: raw.usepeerdns,
        echo_interval: Duration::from_secs(raw.echo_interval.unwrap_or(10)),
        echo_failure,
        restart: Duration::from_secs(restart),
        persist: raw.persist.unwrap_or(true),
        redial_min: Duration::from_secs(redial_min),
        redial_max: Duration::from_secs(redial_max),
        max_redials: raw.max_redials.unwrap_or(0),
        ip_up: raw.ip_up,
        ip_down: raw.ip_down,
        allow_users: raw.allow_users,
        tun_offload: raw.tun_offload.unwrap_or(true),
        auth,
    })
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
        LinkConfig {
            name: self.name.clone(),
            lcp: LcpConfig {
                framing: match self.mode {
                    Mode::Pptp | Mode::L2tp => Framing::Packet,
                    Mode::Dial | Mode::Direct => Framing::AsyncHdlc,
                },
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
            auth: self.auth.engine_auth(),
            ccp: self.auth.engine_ccp(),
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

    /// Who the peer is, for `status`: the ssh target of the device
    /// command, the PPTP server or the LNS.
    pub fn dial_peer(&self) -> String {
        match (self.mode, self.server) {
            (Mode::Pptp, Some(server)) => server.to_string(),
            (Mode::L2tp, _) => self.lns.map(|a| a.to_string()).unwrap_or_default(),
            _ => self.device.as_deref().map(ssh_target).unwrap_or_default(),
        }
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
