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
    /// `block`
    Block,
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
    /// `log`
    pub log: bool,
    /// `quick`: decide at once instead of letting later rules override.
    pub quick: bool,
    /// `on IFACE` (the name in the rules, e.g. FreeBSD's `em0`).
    pub interface: Option<String>,
    /// `proto P`
    pub proto: Option<Proto>,
    /// Source (`from`); `all` is `Any` both ways.
    pub src: AddrMatch,
    /// Source port condition.
    pub src_port: Option<PortMatch>,
    /// Destination (`to`).
    pub dst: AddrMatch,
    /// Destination port condition.
    pub dst_port: Option<PortMatch>,
    /// Whether the addresses were written `all` rather than `from .. to ..`.
    pub all: bool,
    /// `with ...` conditions; any one of them makes the rule match (seed 000
    /// §4.3 reads `with ipopts frag` as "options or fragmented").
    pub with: Vec<WithOpt>,
    /// `flags ...`
    pub flags: Option<TcpFlags>,
    /// `keep state`
    pub keep_state: bool,
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
        f.write_str(match self {
            Action::Pass => "pass",
            Action::Block => "block",
        })
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
        write!(f, "{} {}", self.action, self.direction)?;
        if self.log {
            f.write_str(" log")?;
        }
        if self.quick {
            f.write_str(" quick")?;
        }
        if let Some(iface) = &self.interface {
            write!(f, " on {iface}")?;
        }
        if let Some(proto) = &self.proto {
            write!(f, " proto {proto}")?;
        }
        if self.all {
            f.write_str(" all")?;
        } else {
            write!(f, " from {}", self.src)?;
            if let Some(p) = &self.src_port {
                write!(f, " {p}")?;
            }
            write!(f, " to {}", self.dst)?;
            if let Some(p) = &self.dst_port {
                write!(f, " {p}")?;
            }
        }
        if !self.with.is_empty() {
            f.write_str(" with")?;
            for w in &self.with {
                f.write_str(match w {
                    WithOpt::IpOpts => " ipopts",
                    WithOpt::Frag => " frag",
                    WithOpt::Short => " short",
                })?;
            }
        }
        if let Some(flags) = &self.flags {
            write!(f, " flags {}", flag_letters(flags.set))?;
            if let Some(mask) = flags.mask {
                write!(f, "/{}", flag_letters(mask))?;
            }
        }
        if self.keep_state {
            f.write_str(" keep state")?;
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
