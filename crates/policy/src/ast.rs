//! Typed rules of `ipf.conf(5)` and `ipnat.conf(5)`, the subset seed 000
//! uses (§4.3, §4.4), and their printer.
//!
//! `Display` prints one rule per line in a canonical keyword order; the
//! parser accepts that order (and the looser orders IPFilter accepts for the
//! options after the addresses), so `parse(print(rules)) == rules`.

use std::fmt;
use std::net::Ipv4Addr;

/// What a filter rule does with a packet it decides (`ipf.conf(5)` "ACTIONS").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `pass`
    Pass,
    /// `block` (with [`FilterRule::ret`] saying what is sent back, if anything)
    Block,
    /// `count`: an accounting rule; it counts and decides nothing
    /// (IPFilter keeps these in their own list, walked before the filter).
    Count,
    /// `skip N`: when the rule matches, the next N rules are not looked at.
    Skip(u32),
}

/// What a `block` rule sends back to the packet's source (`ipf.conf(5)`
/// "ACTIONS": `return-rst`, `return-icmp`, `return-icmp-as-dest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockReturn {
    /// `return-rst`: a TCP RST (RFC 9293 §3.10.7.1) for a TCP packet.
    Rst,
    /// `return-icmp[(code)]`: an ICMP destination unreachable (RFC 792)
    /// with `code` (`None`: not written, port unreachable as IPFilter sends).
    Icmp(Option<u8>),
    /// `return-icmp-as-dest[(code)]`: the same, sent as if from the
    /// packet's destination.
    IcmpAsDest(Option<u8>),
}

/// ICMP destination-unreachable codes by the names `ipf.conf(5)` uses
/// (RFC 792, RFC 1122, RFC 1812), index = code.
pub const ICMP_CODE_NAMES: [&str; 16] = [
    "net-unr",
    "host-unr",
    "proto-unr",
    "port-unr",
    "needfrag",
    "srcfail",
    "net-unk",
    "host-unk",
    "isolate",
    "net-prohib",
    "host-prohib",
    "net-tos",
    "host-tos",
    "filter-prohib",
    "host-preced",
    "cutoff-preced",
];

/// ICMP types by the names `ipf.conf(5)` uses for `icmp-type` (RFC 792,
/// RFC 950, RFC 1256).
pub const ICMP_TYPE_NAMES: [(&str, u8); 15] = [
    ("echorep", 0),
    ("unreach", 3),
    ("squench", 4),
    ("redir", 5),
    ("echo", 8),
    ("routerad", 9),
    ("routersol", 10),
    ("timex", 11),
    ("paramprob", 12),
    ("timest", 13),
    ("timestrep", 14),
    ("inforeq", 15),
    ("inforep", 16),
    ("maskreq", 17),
    ("maskrep", 18),
];

/// The `ipf.conf(5)` name of ICMP type `t`, if it has one.
pub fn icmp_type_name(t: u8) -> Option<&'static str> {
    ICMP_TYPE_NAMES
        .iter()
        .find(|(_, n)| *n == t)
        .map(|(name, _)| *name)
}

/// `icmp-type T [code C]` (`ipf.conf(5)`, needs `proto icmp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpMatch {
    /// ICMP type.
    pub ty: u8,
    /// ICMP code, if written.
    pub code: Option<u8>,
}

/// The IP options of `with opt NAME` (`ipf.conf(5)` "IP options"; numbers
/// from the IANA IP option registry, RFC 791).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpOpt {
    /// `nop`
    Nop,
    /// `rr`: record route.
    Rr,
    /// `zsu`
    Zsu,
    /// `mtup`
    Mtup,
    /// `mtur`
    Mtur,
    /// `encode`
    Encode,
    /// `ts`: timestamp.
    Ts,
    /// `tr`: traceroute.
    Tr,
    /// `sec`: security.
    Sec,
    /// `lsrr`: loose source route.
    Lsrr,
    /// `e-sec`
    ESec,
    /// `cipso`
    Cipso,
    /// `satid`: stream id.
    Satid,
    /// `ssrr`: strict source route.
    Ssrr,
    /// `addext`
    Addext,
    /// `visa`
    Visa,
    /// `imitd`
    Imitd,
    /// `eip`
    Eip,
    /// `finn`
    Finn,
    /// `dps`
    Dps,
    /// `sdb`
    Sdb,
    /// `nsapa`
    Nsapa,
    /// `rtralrt`: router alert (RFC 2113).
    Rtralrt,
    /// `ump`
    Ump,
}

impl IpOpt {
    /// Every option with its `ipf.conf(5)` name.
    pub const ALL: [(IpOpt, &'static str); 24] = [
        (IpOpt::Nop, "nop"),
        (IpOpt::Rr, "rr"),
        (IpOpt::Zsu, "zsu"),
        (IpOpt::Mtup, "mtup"),
        (IpOpt::Mtur, "mtur"),
        (IpOpt::Encode, "encode"),
        (IpOpt::Ts, "ts"),
        (IpOpt::Tr, "tr"),
        (IpOpt::Sec, "sec"),
        (IpOpt::Lsrr, "lsrr"),
        (IpOpt::ESec, "e-sec"),
        (IpOpt::Cipso, "cipso"),
        (IpOpt::Satid, "satid"),
        (IpOpt::Ssrr, "ssrr"),
        (IpOpt::Addext, "addext"),
        (IpOpt::Visa, "visa"),
        (IpOpt::Imitd, "imitd"),
        (IpOpt::Eip, "eip"),
        (IpOpt::Finn, "finn"),
        (IpOpt::Dps, "dps"),
        (IpOpt::Sdb, "sdb"),
        (IpOpt::Nsapa, "nsapa"),
        (IpOpt::Rtralrt, "rtralrt"),
        (IpOpt::Ump, "ump"),
    ];

    /// The `ipf.conf(5)` name.
    pub fn name(self) -> &'static str {
        IpOpt::ALL
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("?", |(_, n)| n)
    }
}

/// `log` and its options (`ipf.conf(5)` "LOGGING").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOpts {
    /// `body`: log the packet's first octets of data too.
    pub body: bool,
    /// `first`: of a kept-state session, log only the packet that made it.
    pub first: bool,
    /// `level [facility.]priority`: syslog(3) routing of the line.
    pub level: Option<String>,
}

/// `in-via` / `out-via` after `on IF` (`ipf.conf(5)`): the interface the
/// packet came in on (for an `out` rule) or will leave by (for an `in` rule).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Via {
    /// `in-via IF`
    In(String),
    /// `out-via IF`
    Out(String),
}

/// Where a rule sends the packet besides deciding (`ipf.conf(5)`
/// "OPTIONS": `to`, `dup-to`, `fastroute`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RouteOpt {
    /// `to IF[:ADDR]`: route out of IF (to ADDR).
    To(String, Option<Ipv4Addr>),
    /// `dup-to IF[:ADDR]`: send a copy out of IF (to ADDR).
    DupTo(String, Option<Ipv4Addr>),
    /// `fastroute`
    FastRoute,
}

/// Which of IPFilter's two rule lists the rule is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// `in`: packets arriving on an interface (forwarded or for us).
    In,
    /// `out`: packets leaving through an interface (forwarded or ours).
    Out,
}

/// The `proto` of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// `proto tcp`
    Tcp,
    /// `proto udp`
    Udp,
    /// `proto tcp/udp`: either.
    TcpUdp,
    /// `proto icmp`
    Icmp,
    /// `proto N`: any other IP protocol number.
    Number(u8),
}

impl Proto {
    /// Whether port matches make sense for this protocol.
    pub fn has_ports(self) -> bool {
        matches!(self, Proto::Tcp | Proto::Udp | Proto::TcpUdp)
    }
}

/// `any` or an IPv4 network (`addr` alone means `/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrMatch {
    /// `any`
    Any,
    /// `a.b.c.d/len`; the address is kept as written, host bits included.
    Net {
        /// Address as written.
        addr: Ipv4Addr,
        /// Prefix length, 0..=32.
        prefix: u8,
    },
}

impl AddrMatch {
    /// The network address (host bits cleared), or `None` for `any`.
    pub fn network(&self) -> Option<(Ipv4Addr, u8)> {
        match *self {
            AddrMatch::Any => None,
            AddrMatch::Net { addr, prefix } => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(prefix))
                };
                Some((Ipv4Addr::from(u32::from(addr) & mask), prefix))
            }
        }
    }

    /// Whether `ip` is inside this match.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        match self.network() {
            None => true,
            Some((net, prefix)) => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(prefix))
                };
                u32::from(ip) & mask == u32::from(net)
            }
        }
    }
}

/// Comparison of a port (`ipf.conf(5)` "port" operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortOp {
    /// `=` / `eq`
    Eq,
    /// `!=` / `ne`
    Ne,
    /// `<` / `lt`
    Lt,
    /// `>` / `gt`
    Gt,
    /// `<=` / `le`
    Le,
    /// `>=` / `ge`
    Ge,
}

/// A port condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortMatch {
    /// `port OP N`
    Cmp(PortOp, u16),
    /// `port A >< B`: strictly between A and B (IPFilter's range is
    /// exclusive: `9900 >< 9990` is 9901..=9989).
    Inside(u16, u16),
    /// `port A <> B`: strictly below A or strictly above B.
    Outside(u16, u16),
}

impl PortMatch {
    /// Whether `port` satisfies this condition, with IPFilter's meaning.
    pub fn matches(&self, port: u16) -> bool {
        match *self {
            PortMatch::Cmp(PortOp::Eq, n) => port == n,
            PortMatch::Cmp(PortOp::Ne, n) => port != n,
            PortMatch::Cmp(PortOp::Lt, n) => port < n,
            PortMatch::Cmp(PortOp::Gt, n) => port > n,
            PortMatch::Cmp(PortOp::Le, n) => port <= n,
            PortMatch::Cmp(PortOp::Ge, n) => port >= n,
            PortMatch::Inside(a, b) => port > a && port < b,
            PortMatch::Outside(a, b) => port < a || port > b,
        }
    }
}

/// One `with` condition (`ipf.conf(5)` "IP options").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WithOpt {
    /// `ipopts`: the IP header carries options (IHL > 5).
    IpOpts,
    /// `frag`: the packet is a fragment (MF set or offset non-zero).
    Frag,
    /// `short`: too short to hold the transport header.
    Short,
    /// `opt NAME`: the IP header carries this option.
    Opt(IpOpt),
}

/// TCP flag bits in header order (RFC 9293 §3.1).
pub mod tcp_flag {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
    /// URG
    pub const URG: u8 = 0x20;
    /// ECE
    pub const ECE: u8 = 0x40;
    /// CWR
    pub const CWR: u8 = 0x80;
    /// IPFilter's letters, in the order `ipf` prints them.
    pub const LETTERS: [(char, u8); 8] = [
        ('F', FIN),
        ('S', SYN),
        ('R', RST),
        ('P', PSH),
        ('A', ACK),
        ('U', URG),
        ('E', ECE),
        ('C', CWR),
    ];
    /// The mask when a rule gives none (`flags S` means `flags S/FSRPAU`).
    pub const DEFAULT_MASK: u8 = FIN | SYN | RST | PSH | ACK | URG;
}

/// `flags SET[/MASK]`: the flags under MASK must equal SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    /// Flags that must be set.
    pub set: u8,
    /// Flags that are looked at; `None` is IPFilter's default, FSRPAU.
    pub mask: Option<u8>,
}

impl TcpFlags {
    /// The effective mask.
    pub fn mask(&self) -> u8 {
        self.mask.unwrap_or(tcp_flag::DEFAULT_MASK)
    }
}

/// One line of `ipf.rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterRule {
    /// Line in the source (1-based); not printed, not compared by the
    /// round trip (see [`IpfRules`] `PartialEq`).
    pub line: usize,
    /// `pass` or `block`.
    pub action: Action,
    /// `in` or `out`.
    pub direction: Direction,
    /// `return-*` of a `block` rule.
    pub ret: Option<BlockReturn>,
    /// `log`
    pub log: bool,
    /// `log`'s options (all off without `log`).
    pub log_opts: LogOpts,
    /// `quick`: decide at once instead of letting later rules override.
    pub quick: bool,
    /// `on IFACE` (the name in the rules, e.g. FreeBSD's `em0`).
    pub interface: Option<String>,
    /// `in-via` / `out-via` (only with `on`).
    pub via: Option<Via>,
    /// `to`, `dup-to`, `fastroute`.
    pub route: Option<RouteOpt>,
    /// `proto P`
    pub proto: Option<Proto>,
    /// Source (`from`); `all` is `Any` both ways.
    pub src: AddrMatch,
    /// `from !ADDR`: the source is not in `src`.
    pub src_not: bool,
    /// Source port condition.
    pub src_port: Option<PortMatch>,
    /// Destination (`to`).
    pub dst: AddrMatch,
    /// `to !ADDR`: the destination is not in `dst`.
    pub dst_not: bool,
    /// Destination port condition.
    pub dst_port: Option<PortMatch>,
    /// Whether the addresses were written `all` rather than `from .. to ..`.
    pub all: bool,
    /// `with ...` conditions; any one of them makes the rule match (seed 000
    /// §4.3 reads `with ipopts frag` as "options or fragmented").
    pub with: Vec<WithOpt>,
    /// `flags ...`
    pub flags: Option<TcpFlags>,
    /// `icmp-type T [code C]`
    pub icmp: Option<IcmpMatch>,
    /// `keep state`
    pub keep_state: bool,
    /// `keep state (limit N)`: at most N sessions from this rule at once.
    pub state_limit: Option<u32>,
    /// `keep frags`
    pub keep_frags: bool,
    /// `head N`: this rule heads group N.
    pub head: Option<u32>,
    /// `group N`: the group this rule belongs to (0 when absent).
    pub group: u32,
}

/// All of `ipf.rules`, in file order.
#[derive(Debug, Clone, Default, Eq)]
pub struct IpfRules {
    /// Rules in file order.
    pub rules: Vec<FilterRule>,
}

impl PartialEq for IpfRules {
    /// Rules compare without their line numbers, which printing changes.
    fn eq(&self, other: &Self) -> bool {
        self.rules.len() == other.rules.len()
            && self.rules.iter().zip(&other.rules).all(|(a, b)| {
                let mut a = a.clone();
                a.line = b.line;
                a == *b
            })
    }
}

/// `portmap` of a `map` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortMap {
    /// Protocols whose ports are rewritten (`tcp`, `udp` or `tcp/udp`).
    pub proto: RdrProto,
    /// `auto` (`None`) or `A:B`.
    pub range: Option<(u16, u16)>,
}

/// Protocol of an `rdr` or `portmap` (`tcp` is `rdr`'s default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RdrProto {
    /// `tcp`
    Tcp,
    /// `udp`
    Udp,
    /// `tcp/udp`
    TcpUdp,
}

/// One line of `ipnat.rules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatRule {
    /// `map IF SRC -> TO [portmap ...]`: rewrite the source of packets
    /// from SRC leaving through IF to TO (`0/32` is the interface's address).
    Map {
        /// Line in the source (1-based).
        line: usize,
        /// Outgoing interface.
        interface: String,
        /// Sources to translate.
        src: AddrMatch,
        /// Address(es) to translate to.
        to: AddrMatch,
        /// Port rewriting.
        portmap: Option<PortMap>,
    },
    /// `rdr IF DST port P -> TO port Q [proto]`: redirect packets arriving
    /// on IF for DST:P to TO:Q.
    Rdr {
        /// Line in the source (1-based).
        line: usize,
        /// Incoming interface.
        interface: String,
        /// Destination to match.
        dst: AddrMatch,
        /// Destination port to match.
        port: u16,
        /// New destination address.
        to: Ipv4Addr,
        /// New destination port.
        to_port: u16,
        /// Protocol (`tcp` when not written).
        proto: RdrProto,
        /// Whether the protocol was written (for printing).
        proto_written: bool,
    },
}

impl NatRule {
    /// The source line.
    pub fn line(&self) -> usize {
        match self {
            NatRule::Map { line, .. } | NatRule::Rdr { line, .. } => *line,
        }
    }

    /// The interface named by the rule.
    pub fn interface(&self) -> &str {
        match self {
            NatRule::Map { interface, .. } | NatRule::Rdr { interface, .. } => interface,
        }
    }
}

/// All of `ipnat.rules`, in file order.
#[derive(Debug, Clone, Default, Eq)]
pub struct IpnatRules {
    /// Rules in file order.
    pub rules: Vec<NatRule>,
}

impl PartialEq for IpnatRules {
    /// Rules compare without their line numbers.
    fn eq(&self, other: &Self) -> bool {
        fn strip(r: &NatRule) -> NatRule {
            let mut r = r.clone();
            match &mut r {
                NatRule::Map { line, .. } | NatRule::Rdr { line, .. } => *line = 0,
            }
            r
        }
        self.rules.len() == other.rules.len()
            && self
                .rules
                .iter()
                .zip(&other.rules)
                .all(|(a, b)| strip(a) == strip(b))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Pass => f.write_str("pass"),
            Action::Block => f.write_str("block"),
            Action::Count => f.write_str("count"),
            Action::Skip(n) => write!(f, "skip {n}"),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::In => "in",
            Direction::Out => "out",
        })
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Proto::Tcp => f.write_str("tcp"),
            Proto::Udp => f.write_str("udp"),
            Proto::TcpUdp => f.write_str("tcp/udp"),
            Proto::Icmp => f.write_str("icmp"),
            Proto::Number(n) => write!(f, "{n}"),
        }
    }
}

impl fmt::Display for RdrProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RdrProto::Tcp => "tcp",
            RdrProto::Udp => "udp",
            RdrProto::TcpUdp => "tcp/udp",
        })
    }
}

impl fmt::Display for AddrMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrMatch::Any => f.write_str("any"),
            AddrMatch::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
        }
    }
}

impl fmt::Display for PortMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortMatch::Cmp(op, n) => {
                let op = match op {
                    PortOp::Eq => "=",
                    PortOp::Ne => "!=",
                    PortOp::Lt => "<",
                    PortOp::Gt => ">",
                    PortOp::Le => "<=",
                    PortOp::Ge => ">=",
                };
                write!(f, "port {op} {n}")
            }
            PortMatch::Inside(a, b) => write!(f, "port {a} >< {b}"),
            PortMatch::Outside(a, b) => write!(f, "port {a} <> {b}"),
        }
    }
}

/// Flag letters of `bits` in IPFilter's order (`FSRPAUEC`).
pub fn flag_letters(bits: u8) -> String {
    tcp_flag::LETTERS
        .iter()
        .filter(|(_, bit)| bits & bit != 0)
        .map(|(c, _)| *c)
        .collect()
}

impl fmt::Display for FilterRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.action)?;
        let code = |f: &mut fmt::Formatter<'_>, c: &Option<u8>| match c {
            None => Ok(()),
            Some(c) => match ICMP_CODE_NAMES.get(usize::from(*c)) {
                Some(name) => write!(f, "({name})"),
                None => write!(f, "({c})"),
            },
        };
        match &self.ret {
            None => {}
            Some(BlockReturn::Rst) => f.write_str(" return-rst")?,
            Some(BlockReturn::Icmp(c)) => {
                f.write_str(" return-icmp")?;
                code(f, c)?;
            }
            Some(BlockReturn::IcmpAsDest(c)) => {
                f.write_str(" return-icmp-as-dest")?;
                code(f, c)?;
            }
        }
        write!(f, " {}", self.direction)?;
        if self.log {
            f.write_str(" log")?;
            if self.log_opts.body {
                f.write_str(" body")?;
            }
            if self.log_opts.first {
                f.write_str(" first")?;
            }
            if let Some(level) = &self.log_opts.level {
                write!(f, " level {level}")?;
            }
        }
        if self.quick {
            f.write_str(" quick")?;
        }
        if let Some(iface) = &self.interface {
            write!(f, " on {iface}")?;
            match &self.via {
                None => {}
                Some(Via::In(v)) => write!(f, " in-via {v}")?,
                Some(Via::Out(v)) => write!(f, " out-via {v}")?,
            }
        }
        let target = |f: &mut fmt::Formatter<'_>, i: &str, a: &Option<Ipv4Addr>| match a {
            None => write!(f, " {i}"),
            Some(a) => write!(f, " {i}:{a}"),
        };
        match &self.route {
            None => {}
            Some(RouteOpt::To(i, a)) => {
                f.write_str(" to")?;
                target(f, i, a)?;
            }
            Some(RouteOpt::DupTo(i, a)) => {
                f.write_str(" dup-to")?;
                target(f, i, a)?;
            }
            Some(RouteOpt::FastRoute) => f.write_str(" fastroute")?,
        }
        if let Some(proto) = &self.proto {
            write!(f, " proto {proto}")?;
        }
        if self.all {
            f.write_str(" all")?;
        } else {
            let not = |n: bool| if n { "!" } else { "" };
            write!(f, " from {}{}", not(self.src_not), self.src)?;
            if let Some(p) = &self.src_port {
                write!(f, " {p}")?;
            }
            write!(f, " to {}{}", not(self.dst_not), self.dst)?;
            if let Some(p) = &self.dst_port {
                write!(f, " {p}")?;
            }
        }
        if !self.with.is_empty() {
            f.write_str(" with")?;
            for w in &self.with {
                match w {
                    WithOpt::IpOpts => f.write_str(" ipopts")?,
                    WithOpt::Frag => f.write_str(" frag")?,
                    WithOpt::Short => f.write_str(" short")?,
                    WithOpt::Opt(o) => write!(f, " opt {}", o.name())?,
                }
            }
        }
        if let Some(flags) = &self.flags {
            write!(f, " flags {}", flag_letters(flags.set))?;
            if let Some(mask) = flags.mask {
                write!(f, "/{}", flag_letters(mask))?;
            }
        }
        if let Some(icmp) = &self.icmp {
            match icmp_type_name(icmp.ty) {
                Some(name) => write!(f, " icmp-type {name}")?,
                None => write!(f, " icmp-type {}", icmp.ty)?,
            }
            if let Some(c) = icmp.code {
                write!(f, " code {c}")?;
            }
        }
        if self.keep_state {
            f.write_str(" keep state")?;
            if let Some(n) = self.state_limit {
                write!(f, " (limit {n})")?;
            }
        }
        if self.keep_frags {
            f.write_str(" keep frags")?;
        }
        if let Some(head) = self.head {
            write!(f, " head {head}")?;
        }
        if self.group != 0 {
            write!(f, " group {}", self.group)?;
        }
        Ok(())
    }
}

impl fmt::Display for IpfRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for rule in &self.rules {
            writeln!(f, "{rule}")?;
        }
        Ok(())
    }
}

impl fmt::Display for NatRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatRule::Map {
                interface,
                src,
                to,
                portmap,
                ..
            } => {
                write!(f, "map {interface} {src} -> {to}")?;
                if let Some(pm) = portmap {
                    write!(f, " portmap {}", pm.proto)?;
                    match pm.range {
                        None => f.write_str(" auto")?,
                        Some((a, b)) => write!(f, " {a}:{b}")?,
                    }
                }
                Ok(())
            }
            NatRule::Rdr {
                interface,
                dst,
                port,
                to,
                to_port,
                proto,
                proto_written,
                ..
            } => {
                write!(
                    f,
                    "rdr {interface} {dst} port {port} -> {to} port {to_port}"
                )?;
                if *proto_written {
                    write!(f, " {proto}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for IpnatRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for rule in &self.rules {
            writeln!(f, "{rule}")?;
        }
        Ok(())
    }
}
