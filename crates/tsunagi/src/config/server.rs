//! `[server.NAME]`: a server profile, many sessions with addresses from a
//! pool: PPTP (pptpd) or an L2TP LNS (xl2tpd's `[lns default]`).
//!
//! ```toml
//! [server.vpn]
//! protocol = "pptp"                 # TCP 1723 + GRE (RFC 2637)
//! listen = "203.0.113.1"            # pptpd `listen`; default every address
//! localip = "192.168.0.100"         # pptpd.conf syntax (crate::pool)
//! remoteip = "192.168.0.101-119"
//! connections = 100                 # pptpd `connections`
//! name = "pptpd"                    # pppd `name`: the server column of chap-secrets
//! secrets = "/etc/ppp/chap-secrets" # or [daemon] secrets
//! require = ["mschap-v2"]           # the default for PPTP
//! mppe = "require-128"              # the default for PPTP; "none" turns it off
//! dns = ["192.168.0.1"]             # pppd `ms-dns` (RFC 1877)
//! proxyarp = true                   # pppd `proxyarp`
//! firewall = true                   # open TCP 1723 and GRE in tsunagi's table
//! ```
//!
//! The keys are pptpd.conf's (`listen`, `localip`, `remoteip`,
//! `connections`) and the pppd options of options.pptpd (seed 001:
//! `name`, `proxyarp`, `require-mschap-v2`, `require-mppe-128`, `ms-dns`).
//!
//! An LNS takes the same keys (xl2tpd's `ip range` is `remoteip`, `local
//! ip` is `localip`) and three of its own:
//!
//! ```toml
//! [server.lns]
//! protocol = "l2tp"                 # UDP 1701 (RFC 2661)
//! localip = "192.168.1.1"
//! remoteip = "192.168.1.10-99"
//! secret = "tunnel secret"          # xl2tpd l2tp-secrets; none: no tunnel auth
//! hello_interval = 60               # xl2tpd `hello`; 0: no HELLO
//! length_bit = true                 # xl2tpd `length bit = yes`
//! ipsec = "l2tp"                    # L2TP/IPsec: only datagrams through [ipsec.l2tp]
//! ```
//!
//! Its defaults are an options.xl2tpd's: MS-CHAPv2 required, no MPPE (an
//! L2TP/IPsec client has IPsec under it), MRU 1410.

use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use tsunagi_crypto::Secret;
use tsunagi_ppp::auth::AuthMethod;
use tsunagi_ppp::link::{EchoConfig, Framing, FsmTimers, IpcpConfig, LcpConfig, LinkConfig};

use super::auth::{validate_auth, AuthDefaults, AuthFields, AuthSettings};
use super::common::{
    check_dns, check_echo_failure, check_mru, check_restart, check_tun, Invalid, DEFAULT_L2TP_MRU,
    DEFAULT_PPTP_MRU,
};
use crate::pool::{Pool, PoolConfigError, DEFAULT_CONNECTIONS};

/// `protocol` of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerProtocol {
    /// PPTP (RFC 2637): control on TCP 1723, PPP in enhanced GRE.
    Pptp,
    /// An L2TP LNS (RFC 2661): tunnels and sessions on UDP 1701.
    L2tp,
}

impl ServerProtocol {
    /// pppd's tty argument of the hooks, and the word in logs.
    pub fn name(self) -> &'static str {
        match self {
            ServerProtocol::Pptp => "pptp",
            ServerProtocol::L2tp => "l2tp",
        }
    }

    /// The port it listens on.
    pub fn port(self) -> u16 {
        match self {
            ServerProtocol::Pptp => 1723,
            ServerProtocol::L2tp => tsunagi_l2tp::UDP_PORT,
        }
    }
}

/// What an L2TP tunnel of a `[server]` or `[link]` needs beyond PPP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2tpSettings {
    /// The tunnel secret (RFC 2661 section 5.1.1; xl2tpd's l2tp-secrets):
    /// with one, each side challenges the other; `None`: no tunnel
    /// authentication (xl2tpd's `challenge = no`).
    pub secret: Option<Secret>,
    /// HELLO after this much silence (xl2tpd `hello`); zero: never.
    pub hello_interval: Duration,
    /// Data messages carry a Length field (xl2tpd `length bit = yes`).
    pub length_bit: bool,
    /// L2TP/IPsec: the `[ipsec.NAME]` transport conn (17/1701) the
    /// tunnel's datagrams go through; `None`: L2TP in the clear.
    pub ipsec: Option<String>,
}

impl Default for L2tpSettings {
    fn default() -> Self {
        L2tpSettings {
            secret: None,
            hello_interval: Duration::from_secs(60),
            length_bit: true,
            ipsec: None,
        }
    }
}

/// The L2TP keys as written, shared by servers and links.
pub(super) struct RawL2tp<'a> {
    pub secret: Option<&'a Spanned<String>>,
    pub hello_interval: Option<u64>,
    pub length_bit: Option<bool>,
    pub ipsec: Option<&'a Spanned<String>>,
}

impl RawL2tp<'_> {
    /// Validated for an L2TP section (`l2tp`), or refused, naming the key,
    /// for any other.
    pub(super) fn validate(&self, l2tp: bool, what: &str) -> Result<L2tpSettings, Invalid> {
        if !l2tp {
            if let Some(s) = self.secret {
                return Err((s.span(), format!("`secret` is only for {what} = \"l2tp\"")));
            }
            if let Some(s) = self.ipsec {
                return Err((s.span(), format!("`ipsec` is only for {what} = \"l2tp\"")));
            }
            if self.hello_interval.is_some() || self.length_bit.is_some() {
                return Err((
                    0..0,
                    format!("`hello_interval` and `length_bit` are only for {what} = \"l2tp\""),
                ));
            }
            return Ok(L2tpSettings::default());
        }
        let secret = match self.secret {
            Some(s) if s.get_ref().is_empty() => {
                return Err((s.span(), "secret is empty (leave it out for none)".into()))
            }
            Some(s) => Some(Secret::new(s.get_ref().as_bytes())),
            None => None,
        };
        Ok(L2tpSettings {
            secret,
            hello_interval: Duration::from_secs(self.hello_interval.unwrap_or(60)),
            length_bit: self.length_bit.unwrap_or(true),
            ipsec: self.ipsec.map(|s| s.get_ref().trim().to_string()),
        })
    }
}

/// `[server.NAME]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    protocol: Spanned<ServerProtocol>,
    listen: Option<Spanned<Ipv4Addr>>,
    localip: Spanned<String>,
    remoteip: Spanned<String>,
    connections: Option<Spanned<usize>>,
    tun: Option<Spanned<String>>,
    name: Option<Spanned<String>>,
    secrets: Option<PathBuf>,
    require: Option<Vec<Spanned<String>>>,
    mppe: Option<Spanned<String>>,
    mppe_stateful: Option<bool>,
    deflate: Option<Spanned<u8>>,
    dns: Option<Spanned<Vec<Ipv4Addr>>>,
    proxyarp: Option<bool>,
    firewall: Option<bool>,
    mru: Option<Spanned<u16>>,
    echo_interval: Option<u64>,
    echo_failure: Option<Spanned<u32>>,
    restart: Option<Spanned<u64>>,
    ip_up: Option<PathBuf>,
    ip_down: Option<PathBuf>,
    secret: Option<Spanned<String>>,
    hello_interval: Option<u64>,
    length_bit: Option<bool>,
    ipsec: Option<Spanned<String>>,
}

/// One `[server.NAME]` section, validated, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerProfile {
    /// The section's name; also the hooks' `ipparam`.
    pub name: String,
    /// What it speaks.
    pub protocol: ServerProtocol,
    /// The address to listen on (pptpd `listen`); `None`: all of them.
    pub listen: Option<Ipv4Addr>,
    /// pptpd `localip`, as written (checked).
    pub localip: String,
    /// pptpd `remoteip`, as written (checked).
    pub remoteip: String,
    /// pptpd `connections`: live sessions at most.
    pub connections: usize,
    /// The tun shared by all sessions.
    pub tun: String,
    /// PPP authentication (MS-CHAPv2 by default) and MPPE (128-bit by
    /// default).
    pub auth: AuthSettings,
    /// DNS servers handed to clients (pppd `ms-dns`).
    pub dns: Vec<Ipv4Addr>,
    /// Answer ARP for clients' addresses on the LAN interface whose
    /// network holds them (pppd `proxyarp`).
    pub proxyarp: bool,
    /// Open the server's ports in tsunagi's nftables table while it runs.
    pub firewall: bool,
    /// Our MRU (also the shared tun's MTU).
    pub mru: u16,
    /// LCP Echo-Request interval; zero disables.
    pub echo_interval: Duration,
    /// Unanswered echoes before a session is declared dead.
    pub echo_failure: u32,
    /// RFC 1661 restart timer.
    pub restart: Duration,
    /// Hook run when a session's IPCP comes up.
    pub ip_up: Option<PathBuf>,
    /// Hook run when it goes down.
    pub ip_down: Option<PathBuf>,
    /// L2TP: the tunnel secret, HELLO, the Length bit.
    pub l2tp: L2tpSettings,
}

impl RawServer {
    /// Validates; errors name the key.
    pub(super) fn validate(
        self,
        name: &str,
        section: Range<usize>,
        daemon_secrets: Option<&Path>,
    ) -> Result<ServerProfile, Invalid> {
        let protocol = *self.protocol.get_ref();
        if self.require.as_ref().is_some_and(Vec::is_empty) {
            // pppd's `noauth` on a server facing the Internet hands pool
            // addresses to anyone; pptpd's options never do that.
            return Err((
                section,
                "a server must authenticate its peers: `require` is empty".into(),
            ));
        }
        let fields = AuthFields {
            require: self.require.as_deref(),
            accept: None,
            name: self.name.as_ref(),
            user: None,
            password: None,
            password_file: None,
            secrets: self.secrets.as_ref(),
            mppe: self.mppe.as_ref(),
            mppe_stateful: self.mppe_stateful,
            deflate: self.deflate.as_ref(),
        };
        let defaults = match protocol {
            ServerProtocol::Pptp => AuthDefaults::PPTP_SERVER,
            ServerProtocol::L2tp => AuthDefaults::L2TP_SERVER,
        };
        let auth = validate_auth(&fields, defaults, section.clone(), daemon_secrets)?;
        if let Some(listen) = &self.listen {
            let a = *listen.get_ref();
            if a.is_broadcast() || a.is_multicast() {
                return Err((
                    listen.span(),
                    format!("listen {a} is not a unicast address"),
                ));
            }
        }
        let connections = match &self.connections {
            Some(c) if *c.get_ref() == 0 => {
                return Err((c.span(), "connections must be at least 1".into()))
            }
            Some(c) => *c.get_ref(),
            None => DEFAULT_CONNECTIONS,
        };
        let localip = self.localip.get_ref().clone();
        let remoteip = self.remoteip.get_ref().clone();
        if let Err(e) = Pool::parse(name, &localip, &remoteip, connections) {
            let span = match &e {
                PoolConfigError::Spec { key: "localip", .. } => self.localip.span(),
                _ => self.remoteip.span(),
            };
            return Err((span, e.to_string()));
        }
        let default_mru = match protocol {
            ServerProtocol::Pptp => DEFAULT_PPTP_MRU,
            ServerProtocol::L2tp => DEFAULT_L2TP_MRU,
        };
        let mru = check_mru(self.mru.as_ref(), default_mru)?;
        let l2tp = RawL2tp {
            secret: self.secret.as_ref(),
            hello_interval: self.hello_interval,
            length_bit: self.length_bit,
            ipsec: self.ipsec.as_ref(),
        }
        .validate(protocol == ServerProtocol::L2tp, "protocol")
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
        Ok(ServerProfile {
            name: name.to_string(),
            protocol,
            listen: self.listen.map(Spanned::into_inner),
            localip,
            remoteip,
            connections,
            tun: check_tun(self.tun.as_ref(), name)?,
            auth,
            dns: check_dns(self.dns)?,
            proxyarp: self.proxyarp.unwrap_or(false),
            firewall: self.firewall.unwrap_or(true),
            mru,
            echo_interval: Duration::from_secs(self.echo_interval.unwrap_or(10)),
            echo_failure: check_echo_failure(self.echo_failure.as_ref())?,
            restart: Duration::from_secs(check_restart(self.restart.as_ref())?),
            ip_up: self.ip_up,
            ip_down: self.ip_down,
            l2tp,
        })
    }
}

impl ServerProfile {
    /// A fresh address pool (checked when the config was read).
    pub fn pool(&self) -> Result<Pool, PoolConfigError> {
        Pool::parse(&self.name, &self.localip, &self.remoteip, self.connections)
    }

    /// Each session's engine configuration, before the server sets its
    /// addresses: packet framing, no IPV6CP (the shared tun carries IPv4),
    /// the peer's address from the pool.
    pub fn link_config(&self) -> LinkConfig {
        let defaults = LinkConfig::default();
        LinkConfig {
            name: self.name.clone(),
            lcp: LcpConfig {
                framing: Framing::Packet,
                mru: self.mru,
                echo: (!self.echo_interval.is_zero()).then_some(EchoConfig {
                    interval: self.echo_interval,
                    failures: self.echo_failure,
                }),
                ..defaults.lcp
            },
            ipcp: IpcpConfig {
                dns: [self.dns.first().copied(), self.dns.get(1).copied()],
                remote_from_driver: true,
                ..defaults.ipcp
            },
            ipv6cp: None,
            timers: FsmTimers {
                restart: self.restart,
                max_configure: 10,
                max_terminate: 2,
                max_failure: 5,
            },
            auth: self.auth.engine_auth(),
            ccp: self.auth.engine_ccp(),
            ..defaults
        }
    }

    /// Settings an operator should know are weak, for the start-up log.
    pub fn weak_settings(&self) -> Vec<String> {
        let mut weak = Vec::new();
        if self.protocol == ServerProtocol::Pptp {
            weak.push(
                "PPTP: MS-CHAPv2 falls to an offline search of one DES key, and MPPE (RC4) has no integrity check; offered for the clients that need it"
                    .to_string(),
            );
        }
        // L2TP/IPsec: IPsec authenticates each client (the PSK) and
        // encrypts everything L2TP carries.
        let under_ipsec = self.l2tp.ipsec.is_some();
        if self.protocol == ServerProtocol::L2tp && self.l2tp.secret.is_none() && !under_ipsec {
            weak.push(
                "L2TP without `secret`: tunnels are not authenticated (any host may open one)"
                    .to_string(),
            );
        }
        if self.auth.mppe.is_none() && !under_ipsec {
            weak.push("mppe = \"none\": sessions are not encrypted".to_string());
        }
        if self.auth.require.contains(&AuthMethod::Pap) {
            weak.push("require pap: passwords cross the network in clear".to_string());
        }
        if self.echo_interval.is_zero() {
            weak.push("echo_interval = 0: a dead client is never detected".to_string());
        }
        for alg in self.link_config().weak_algorithms() {
            weak.push(format!("weak algorithm enabled: {alg}"));
        }
        weak
    }
}
