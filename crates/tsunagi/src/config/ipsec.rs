//! `[ipsec.NAME]`: one IPsec connection, strongSwan ipsec.conf's `conn`
//! with its key names (seed 002's `conn` used them).
//!
//! ```toml
//! [ipsec.site]
//! left = "10.201.1.1"               # our outer address: the sockets bind to it;
//!                                   # "%defaultroute": the source toward `right`
//! right = "10.201.1.2"              # the peer, or "%any" (auto = "add" only)
//! leftid = "left"                   # IP address, FQDN or user@fqdn; default: left
//! rightid = "right"                 # default: right's address; "%any": anyone
//! secrets = "/etc/tsunagi/ipsec.secrets"
//! authby = "secret"                 # the only one (pre-shared keys); may be left out
//! ike = "aes128-sha256-modp2048!"
//! esp = "aes128gcm16!"              # a group in it: PFS
//! type = "tunnel"                   # or "transport"
//! leftsubnet = "10.201.10.0/24"
//! rightsubnet = "10.201.20.0/24"    # routed into the conn's tun
//!                                   # (transport: no subnets; a policy rule
//!                                   # sends the protoports' traffic to the tun)
//! leftprotoport = "17/1701"
//! rightprotoport = "17/1701"
//! auto = "start"                    # or "add"
//! keyingtries = 0                   # 0: for ever (default 3)
//! ikelifetime = "3h"                # 30s, 10m, 3h, 1d or plain seconds
//! lifetime = "1h"
//! margintime = "9m"
//! dpddelay = "30s"
//! dpdtimeout = "150s"
//! dpdaction = "restart"             # "none" (default), "clear", "restart"
//! forceencaps = false
//! leftfirewall = true               # open UDP 500/4500 and ESP from `right`
//! tun = "ipsec-site"
//! ```
//!
//! Defaults are strongSwan's (ipsec.conf(5)): ikelifetime 3h, lifetime 1h,
//! margintime 9m, keyingtries 3, dpddelay 30s, dpdtimeout 150s.

use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use tsunagi_ipsec::esp::Mode as EspMode;
use tsunagi_ipsec::ike::{DpdAction, DpdConfig, Identity, TrafficSelector};
use tsunagi_ipsec::isakmp::attr::Group;
use tsunagi_ipsec::isakmp::proposal::{Encryption, Integrity, Kind, Proposals};

use super::common::{Invalid, MAX_IFNAME_LEN};

/// Where the IPsec secrets are read when neither the conn nor `[daemon]`
/// names a file.
pub const DEFAULT_IPSEC_SECRETS: &str = "/etc/tsunagi/ipsec.secrets";

/// strongSwan's NAT-T keepalive interval (`keep_alive`, 20 s; RFC 3948
/// s2.3 leaves it to the implementation).
pub const NAT_KEEPALIVE: Duration = Duration::from_secs(20);

/// `auto=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Auto {
    /// Initiate at start and keep the connection up.
    Start,
    /// Wait for the peer.
    Add,
}

/// `type=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnType {
    /// Whole IP packets between the subnets, through a tun.
    Tunnel,
    /// The host's own traffic for the selectors (L2TP/IPsec), steered into
    /// the conn's tun by a policy-routing rule.
    Transport,
}

/// `dpdaction=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawDpdAction {
    None,
    Clear,
    Restart,
}

/// A time as strongSwan writes it: `30s`, `10m`, `3h`, `1d`, or an
/// integer (seconds).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawTime {
    Seconds(u64),
    Text(String),
}

/// `[ipsec.NAME]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIpsec {
    left: Spanned<String>,
    authby: Option<Spanned<String>>,
    right: Spanned<String>,
    leftid: Option<Spanned<String>>,
    rightid: Option<Spanned<String>>,
    secrets: Option<PathBuf>,
    ike: Option<Spanned<String>>,
    esp: Option<Spanned<String>>,
    #[serde(rename = "type")]
    conn_type: Option<ConnType>,
    leftsubnet: Option<Spanned<String>>,
    rightsubnet: Option<Spanned<String>>,
    leftprotoport: Option<Spanned<String>>,
    rightprotoport: Option<Spanned<String>>,
    auto: Option<Spanned<Auto>>,
    keyingtries: Option<u32>,
    ikelifetime: Option<Spanned<RawTime>>,
    lifetime: Option<Spanned<RawTime>>,
    margintime: Option<Spanned<RawTime>>,
    dpddelay: Option<Spanned<RawTime>>,
    dpdtimeout: Option<Spanned<RawTime>>,
    dpdaction: Option<RawDpdAction>,
    forceencaps: Option<bool>,
    leftfirewall: Option<bool>,
    tun: Option<Spanned<String>>,
}

/// One validated `[ipsec.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct IpsecConn {
    /// The section's name (`conn NAME`).
    pub name: String,
    /// Our outer address.
    pub left: IpAddr,
    /// The peer's, `None` for `%any`.
    pub right: Option<IpAddr>,
    /// Our identity.
    pub leftid: Identity,
    /// The identity the peer must show; `None`: any.
    pub rightid: Option<Identity>,
    /// The ipsec.secrets file.
    pub secrets: PathBuf,
    /// `ike=` as written (for status and logs).
    pub ike_text: String,
    /// `esp=` as written.
    pub esp_text: String,
    /// `ike=`.
    pub ike: Proposals,
    /// `esp=`.
    pub esp: Proposals,
    /// `type=`.
    pub conn_type: ConnType,
    /// Our side's selector.
    pub leftsubnet: TrafficSelector,
    /// The peer's side's selector.
    pub rightsubnet: Option<TrafficSelector>,
    /// `rightprotoport=` (protocol, port; 0 for any), also when `right`
    /// is `%any` and there is no `rightsubnet`: a transport conn's policy
    /// rule matches it.
    pub rightprotoport: (u8, u16),
    /// `auto=`.
    pub auto: Auto,
    /// `keyingtries=` (0: for ever).
    pub keyingtries: u32,
    /// `ikelifetime=`.
    pub ikelifetime: Duration,
    /// `lifetime=`.
    pub lifetime: Duration,
    /// `margintime=`.
    pub margintime: Duration,
    /// DPD, unless `dpdaction = "none"`.
    pub dpd: Option<DpdConfig>,
    /// `forceencaps=`.
    pub forceencaps: bool,
    /// `leftfirewall=`: holes for the peer in tsunagi's table.
    pub leftfirewall: bool,
    /// The conn's tun: tunnel mode routes `rightsubnet` into it, transport
    /// mode a policy rule for its selectors.
    pub tun: String,
    /// L2TP/IPsec: the profile whose L2TP goes through this conn (filled
    /// in from its `ipsec` key when the whole config is read).
    pub l2tp: Option<L2tpUser>,
}

/// Who carries L2TP over a transport conn (seed 002's L2TP/IPsec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L2tpUser {
    /// A `[link.NAME]` LAC: it brings the conn up before it dials and
    /// down when its session ends (the conn's `auto` is not used).
    Link(String),
    /// A `[server.NAME]` LNS: it takes datagrams only from the conn's tun.
    Server(String),
}

impl L2tpUser {
    /// The `[link]` or `[server]` section's name.
    pub fn profile(&self) -> &str {
        match self {
            L2tpUser::Link(n) | L2tpUser::Server(n) => n,
        }
    }
}

impl std::fmt::Display for L2tpUser {
    /// As the config names it: `link.NAME`, `server.NAME`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            L2tpUser::Link(n) => write!(f, "link.{n}"),
            L2tpUser::Server(n) => write!(f, "server.{n}"),
        }
    }
}

impl IpsecConn {
    /// A LAC link drives it (`ipsec = "NAME"` in a `[link]`): up when it
    /// dials, down when its session ends; `auto` is not used.
    pub fn driven_by_link(&self) -> bool {
        matches!(self.l2tp, Some(L2tpUser::Link(_)))
    }
}

fn parse_time(t: &Spanned<RawTime>, key: &str) -> Result<Duration, Invalid> {
    let bad = |why: String| (t.span(), format!("{key}: {why}"));
    let secs = match t.get_ref() {
        RawTime::Seconds(s) => *s,
        RawTime::Text(text) => {
            let text = text.trim();
            let (num, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
                Some((i, _)) => text.split_at(i),
                None => (text, ""),
            };
            let n: u64 = num.parse().map_err(|_| {
                bad(format!(
                    "{text:?} is not a time (30s, 10m, 3h, 1d or plain seconds)"
                ))
            })?;
            let scale = match unit {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86400,
                _ => {
                    return Err(bad(format!(
                        "unknown unit {unit:?} in {text:?} (s, m, h or d)"
                    )))
                }
            };
            n.checked_mul(scale)
                .ok_or_else(|| bad(format!("{text:?} is too long")))?
        }
    };
    Ok(Duration::from_secs(secs))
}

/// `leftid=` / `rightid=`: an IP address, `user@fqdn`, or an FQDN (a
/// leading `@` as strongSwan writes it is dropped).
pub fn parse_identity(text: &str) -> Result<Identity, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("identity is empty".into());
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(Identity::Address(addr));
    }
    let name = text.strip_prefix('@').unwrap_or(text);
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{text:?} is not an address, FQDN or user@fqdn"));
    }
    if name.contains('@') {
        Ok(Identity::UserFqdn(name.to_string()))
    } else {
        Ok(Identity::Fqdn(name.to_string()))
    }
}

/// `A.B.C.D/N` or an IPv6 prefix, host bits refused.
fn parse_subnet(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a subnet (A.B.C.D/N)"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{text:?}: prefix length is not 0..={max}"))?,
    };
    let host_bits = match addr {
        IpAddr::V4(a) => {
            let v = u32::from(a);
            prefix < 32 && v & (u32::MAX >> prefix) != 0
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            prefix < 128 && v & (u128::MAX >> prefix) != 0
        }
    };
    if host_bits {
        return Err(format!("{text:?} has host bits set after /{prefix}"));
    }
    Ok((addr, prefix))
}

/// `leftprotoport=`: `PROTO/PORT`, each a number, `tcp`/`udp`/`icmp`,
/// `%any` or empty for any.
fn parse_protoport(text: &str) -> Result<(u8, u16), String> {
    let (proto, port) = text.split_once('/').unwrap_or((text, ""));
    let proto = match proto.trim() {
        "" | "%any" => 0,
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        p => p
            .parse::<u8>()
            .map_err(|_| format!("{text:?}: protocol {p:?} is not a number, tcp, udp or icmp"))?,
    };
    let port = match port.trim() {
        "" | "%any" => 0,
        "l2tp" => 1701,
        p => p
            .parse::<u16>()
            .map_err(|_| format!("{text:?}: port {p:?} is not a number"))?,
    };
    if port != 0 && !matches!(proto, 6 | 17) {
        return Err(format!(
            "{text:?}: a port needs protocol tcp (6) or udp (17)"
        ));
    }
    Ok((proto, port))
}

/// The address this host sends from toward `right` (what strongSwan's
/// `%defaultroute` means): the kernel's route lookup for a UDP socket,
/// no datagram sent.
fn source_toward(right: IpAddr) -> std::io::Result<IpAddr> {
    let any: IpAddr = if right.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let socket = std::net::UdpSocket::bind((any, 0))?;
    socket.connect((right, 500))?;
    Ok(socket.local_addr()?.ip())
}

/// The default tun of conn `name`: "ipsec-" + name, cut to 15 bytes.
pub fn default_ipsec_tun(name: &str) -> String {
    let mut tun = format!("ipsec-{name}");
    while tun.len() > MAX_IFNAME_LEN {
        tun.pop();
    }
    tun
}

fn selector(
    subnet: Option<&Spanned<String>>,
    protoport: Option<&Spanned<String>>,
    key: &str,
    default: Option<IpAddr>,
) -> Result<Option<TrafficSelector>, Invalid> {
    let (addr, prefix) = match subnet {
        Some(s) => {
            if s.get_ref().contains(',') {
                return Err((
                    s.span(),
                    format!("{key}subnet: one subnet per connection (make a conn per subnet)"),
                ));
            }
            parse_subnet(s.get_ref()).map_err(|m| (s.span(), format!("{key}subnet: {m}")))?
        }
        None => match default {
            Some(a) => (a, if a.is_ipv4() { 32 } else { 128 }),
            None => return Ok(None),
        },
    };
    let (protocol, port) = match protoport {
        Some(p) => {
            parse_protoport(p.get_ref()).map_err(|m| (p.span(), format!("{key}protoport: {m}")))?
        }
        None => (0, 0),
    };
    Ok(Some(TrafficSelector {
        addr,
        prefix,
        protocol,
        port,
    }))
}

impl RawIpsec {
    /// Validated, or the span and message of the first problem.
    pub(super) fn validate(
        self,
        name: &str,
        section: Range<usize>,
        daemon_secrets: Option<&Path>,
    ) -> Result<IpsecConn, Invalid> {
        if let Some(a) = &self.authby {
            if !matches!(a.get_ref().trim(), "secret" | "psk") {
                return Err((
                    a.span(),
                    format!(
                        "authby {:?}: only pre-shared keys (\"secret\" or \"psk\") are supported",
                        a.get_ref()
                    ),
                ));
            }
        }
        let right = match self.right.get_ref().trim() {
            "%any" => None,
            r => {
                let addr: IpAddr = r.parse().map_err(|_| {
                    (
                        self.right.span(),
                        format!("right {r:?} is not an IP address or \"%any\""),
                    )
                })?;
                if addr.is_unspecified() || addr.is_multicast() {
                    return Err((
                        self.right.span(),
                        format!("right {addr} is not a unicast address"),
                    ));
                }
                Some(addr)
            }
        };
        let left: IpAddr = match (self.left.get_ref().trim(), right) {
            ("%defaultroute", Some(right)) => source_toward(right).map_err(|e| {
                (
                    self.left.span(),
                    format!("left \"%defaultroute\": no source address toward {right}: {e}"),
                )
            })?,
            ("%defaultroute", None) => {
                return Err((
                    self.left.span(),
                    "left \"%defaultroute\" needs a `right` address (the route toward it gives the source); name the address for right = \"%any\"".into(),
                ))
            }
            (text, _) => text.parse().map_err(|_| {
                (
                    self.left.span(),
                    format!(
                        "left {:?} is not an IP address or \"%defaultroute\" (our outer address, for the sockets)",
                        self.left.get_ref()
                    ),
                )
            })?,
        };
        if left.is_unspecified() || left.is_multicast() {
            return Err((
                self.left.span(),
                format!("left {left} is not a unicast address of this host"),
            ));
        }
        if let Some(addr) = right {
            if addr.is_ipv4() != left.is_ipv4() {
                return Err((
                    self.right.span(),
                    format!("right {addr} and left {left} are not the same IP version"),
                ));
            }
        }
        let auto = self.auto.as_ref().map_or(Auto::Add, |a| *a.get_ref());
        if right.is_none() && auto == Auto::Start {
            let span = self.auto.as_ref().map_or(section.clone(), |a| a.span());
            return Err((
                span,
                "auto = \"start\" needs a `right` address to initiate to, not \"%any\"".into(),
            ));
        }
        let leftid = match &self.leftid {
            Some(id) => {
                parse_identity(id.get_ref()).map_err(|m| (id.span(), format!("leftid: {m}")))?
            }
            None => Identity::Address(left),
        };
        let rightid = match &self.rightid {
            Some(id) if id.get_ref().trim() == "%any" => None,
            Some(id) => Some(
                parse_identity(id.get_ref()).map_err(|m| (id.span(), format!("rightid: {m}")))?,
            ),
            None => right.map(Identity::Address),
        };
        let proposals = |p: &Option<Spanned<String>>, key: &str, kind, default: &str| {
            let text = p
                .as_ref()
                .map_or(default, |s| s.get_ref().as_str())
                .to_string();
            let span = p.as_ref().map_or(section.clone(), |s| s.span());
            Proposals::parse(&text, kind)
                .map(|parsed| (text, parsed))
                .map_err(|e| (span, format!("{key}: {e}")))
        };
        let (ike_text, ike) = proposals(
            &self.ike,
            "ike",
            Kind::Ike,
            "aes128-sha256-modp2048,aes256-sha256-modp2048",
        )?;
        let (esp_text, esp) = proposals(&self.esp, "esp", Kind::Esp, "aes128gcm16,aes128-sha256")?;
        let conn_type = self.conn_type.unwrap_or(ConnType::Tunnel);
        if conn_type == ConnType::Transport {
            for (key, v) in [
                ("leftsubnet", &self.leftsubnet),
                ("rightsubnet", &self.rightsubnet),
            ] {
                if let Some(v) = v {
                    return Err((
                        v.span(),
                        format!("`{key}` is only for type = \"tunnel\" (transport mode protects the two addresses)"),
                    ));
                }
            }
        }
        let leftsubnet = selector(
            self.leftsubnet.as_ref(),
            self.leftprotoport.as_ref(),
            "left",
            Some(left),
        )?
        .expect("a default address is given");
        let rightsubnet = selector(
            self.rightsubnet.as_ref(),
            self.rightprotoport.as_ref(),
            "right",
            right,
        )?;
        let rightprotoport = match &self.rightprotoport {
            Some(p) => parse_protoport(p.get_ref())
                .map_err(|m| (p.span(), format!("rightprotoport: {m}")))?,
            None => (0, 0),
        };
        if conn_type == ConnType::Tunnel && rightsubnet.is_none() {
            return Err((
                section,
                "type = \"tunnel\" with right = \"%any\" needs `rightsubnet` (what to route into the tun)".into(),
            ));
        }
        let time = |t: &Option<Spanned<RawTime>>, key: &str, default: u64| match t {
            Some(t) => parse_time(t, key),
            None => Ok(Duration::from_secs(default)),
        };
        let ikelifetime = time(&self.ikelifetime, "ikelifetime", 3 * 3600)?;
        let lifetime = time(&self.lifetime, "lifetime", 3600)?;
        let margintime = time(&self.margintime, "margintime", 9 * 60)?;
        for (key, t, v) in [
            ("ikelifetime", &self.ikelifetime, ikelifetime),
            ("lifetime", &self.lifetime, lifetime),
        ] {
            if v <= margintime {
                let span = t.as_ref().map_or(section.clone(), |t| t.span());
                return Err((
                    span,
                    format!(
                        "{key} {}s must be longer than margintime {}s (rekeying starts margintime before expiry)",
                        v.as_secs(),
                        margintime.as_secs()
                    ),
                ));
            }
        }
        let dpddelay = time(&self.dpddelay, "dpddelay", 30)?;
        let dpdtimeout = time(&self.dpdtimeout, "dpdtimeout", 150)?;
        let dpd = match self.dpdaction.unwrap_or(RawDpdAction::None) {
            RawDpdAction::None => None,
            action => {
                if dpddelay.is_zero() || dpdtimeout <= dpddelay {
                    let span = self
                        .dpdtimeout
                        .as_ref()
                        .or(self.dpddelay.as_ref())
                        .map_or(section.clone(), |t| t.span());
                    return Err((
                        span,
                        format!(
                            "dpdtimeout {}s must be longer than dpddelay {}s, which must not be 0",
                            dpdtimeout.as_secs(),
                            dpddelay.as_secs()
                        ),
                    ));
                }
                Some(DpdConfig {
                    delay: dpddelay,
                    timeout: dpdtimeout,
                    action: if action == RawDpdAction::Clear {
                        DpdAction::Clear
                    } else {
                        DpdAction::Restart
                    },
                })
            }
        };
        let tun = match &self.tun {
            Some(t) => {
                let n = t.get_ref();
                if n.is_empty() || n.len() > MAX_IFNAME_LEN || n.contains(['/', ' ', '\0']) {
                    return Err((
                        t.span(),
                        format!("tun {n:?} is not a valid interface name (1..=15 bytes, no '/' or spaces)"),
                    ));
                }
                n.clone()
            }
            None => default_ipsec_tun(name),
        };
        Ok(IpsecConn {
            name: name.to_string(),
            left,
            right,
            leftid,
            rightid,
            secrets: self
                .secrets
                .or_else(|| daemon_secrets.map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_IPSEC_SECRETS)),
            ike_text,
            esp_text,
            ike,
            esp,
            conn_type,
            leftsubnet,
            rightsubnet,
            rightprotoport,
            auto,
            keyingtries: self.keyingtries.unwrap_or(3),
            ikelifetime,
            lifetime,
            margintime,
            dpd,
            forceencaps: self.forceencaps.unwrap_or(false),
            leftfirewall: self.leftfirewall.unwrap_or(true),
            tun,
            l2tp: None,
        })
    }
}

impl IpsecConn {
    /// The weak algorithms this conn names (they are used only because it
    /// names them), one line each, for the start-up warning.
    pub fn weak_settings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (key, list) in [("ike", &self.ike), ("esp", &self.esp)] {
            let mut weak: Vec<&'static str> = Vec::new();
            for p in &list.proposals {
                for e in &p.encryption {
                    if *e == Encryption::TripleDes {
                        weak.push("3des (64-bit blocks: Sweet32)");
                    }
                }
                for i in &p.integrity {
                    match i {
                        Integrity::Md5 => weak.push("md5"),
                        Integrity::Sha1 if key == "ike" => {
                            weak.push("sha1 (as the IKE hash and PRF)")
                        }
                        _ => {}
                    }
                }
                for g in &p.groups {
                    if *g == Group::Modp768 {
                        weak.push("modp768 (breakable DH group)");
                    } else if *g == Group::Modp1024 {
                        weak.push("modp1024 (Logjam-class DH group)");
                    }
                }
            }
            weak.sort_unstable();
            weak.dedup();
            if !weak.is_empty() {
                out.push(format!(
                    "{key} = {:?} names weak algorithms: {}",
                    if key == "ike" {
                        &self.ike_text
                    } else {
                        &self.esp_text
                    },
                    weak.join(", ")
                ));
            }
        }
        out
    }

    /// The engine's configuration, with the PSK found in the secrets.
    /// Whether `other` has the same plumbing: the same addresses, mode,
    /// selectors, tun, holes, sockets and L2TP profile, so that only what
    /// is negotiated differs (identities, proposals, lifetimes, keying
    /// tries, DPD, `auto`, the secrets file). Such a change can be taken by
    /// a running conn from its next negotiation.
    pub fn same_plumbing(&self, other: &IpsecConn) -> bool {
        self.name == other.name
            && self.left == other.left
            && self.right == other.right
            && self.conn_type == other.conn_type
            && self.leftsubnet == other.leftsubnet
            && self.rightsubnet == other.rightsubnet
            && self.rightprotoport == other.rightprotoport
            && self.forceencaps == other.forceencaps
            && self.leftfirewall == other.leftfirewall
            && self.tun == other.tun
            && self.l2tp == other.l2tp
    }

    /// The IKE engine's configuration, with `psk`.
    pub fn engine_config(&self, psk: tsunagi_crypto::Secret) -> tsunagi_ipsec::ike::Config {
        tsunagi_ipsec::ike::Config {
            name: self.name.clone(),
            local_id: Some(self.leftid.clone()),
            remote_id: self.rightid.clone(),
            psk,
            ike: self.ike.clone(),
            esp: self.esp.clone(),
            mode: match self.conn_type {
                ConnType::Tunnel => EspMode::Tunnel,
                ConnType::Transport => EspMode::Transport,
            },
            local_ts: Some(self.leftsubnet),
            remote_ts: self.rightsubnet,
            ike_lifetime: self.ikelifetime,
            lifetime: self.lifetime,
            rekey_margin: self.margintime,
            keying_tries: self.keyingtries,
            dpd: self.dpd,
            nat_keepalive: NAT_KEEPALIVE,
            force_encap: self.forceencaps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn time(text: &str) -> Result<Duration, String> {
        #[derive(Deserialize)]
        struct T {
            t: Spanned<RawTime>,
        }
        let t: T = toml::from_str(&format!("t = {text}")).expect("valid TOML");
        parse_time(&t.t, "lifetime").map_err(|(_, m)| m)
    }

    #[test]
    fn strongswan_times() {
        assert_eq!(time("\"30s\""), Ok(Duration::from_secs(30)));
        assert_eq!(time("\"10m\""), Ok(Duration::from_secs(600)));
        assert_eq!(time("\"3h\""), Ok(Duration::from_secs(10800)));
        assert_eq!(time("\"1d\""), Ok(Duration::from_secs(86400)));
        assert_eq!(time("\"45\""), Ok(Duration::from_secs(45)));
        assert_eq!(time("90"), Ok(Duration::from_secs(90)));
        assert!(time("\"3w\"").unwrap_err().contains("unknown unit \"w\""));
        assert!(time("\"h\"").unwrap_err().contains("is not a time"));
    }

    #[test]
    fn identities() {
        assert_eq!(
            parse_identity("10.0.0.1"),
            Ok(Identity::Address(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))))
        );
        assert_eq!(
            parse_identity("@gw.example"),
            Ok(Identity::Fqdn("gw.example".into()))
        );
        assert_eq!(parse_identity("left"), Ok(Identity::Fqdn("left".into())));
        assert_eq!(
            parse_identity("vpn@example.org"),
            Ok(Identity::UserFqdn("vpn@example.org".into()))
        );
        assert!(parse_identity(" ").is_err());
        assert!(parse_identity("a b").is_err());
    }

    #[test]
    fn subnets_and_protoports() {
        assert_eq!(
            parse_subnet("10.1.0.0/16"),
            Ok((IpAddr::V4(Ipv4Addr::new(10, 1, 0, 0)), 16))
        );
        assert!(parse_subnet("10.1.0.1/16")
            .unwrap_err()
            .contains("host bits"));
        assert!(parse_subnet("10.1.0.0/33").unwrap_err().contains("0..=32"));
        assert_eq!(parse_subnet("2001:db8::/32").map(|s| s.1), Ok(32));
        assert_eq!(parse_protoport("17/1701"), Ok((17, 1701)));
        assert_eq!(parse_protoport("udp/l2tp"), Ok((17, 1701)));
        assert_eq!(parse_protoport("%any"), Ok((0, 0)));
        assert!(parse_protoport("1/7")
            .unwrap_err()
            .contains("needs protocol"));
        assert!(parse_protoport("x/1")
            .unwrap_err()
            .contains("protocol \"x\""));
    }

    #[test]
    fn default_tun_is_cut() {
        assert_eq!(default_ipsec_tun("site"), "ipsec-site");
        assert_eq!(default_ipsec_tun("averyverylongname"), "ipsec-averyvery");
    }
}
