//! `ipf.rules` + `ipnat.rules` -> one nftables JSON ruleset
//! (`libnftables-json(5)`), applied atomically with `nft -j -f -`.
//!
//! # Tables and hooks
//!
//! - `inet tsunagi`, the filter. IPFilter keeps two lists, `in` (packets
//!   arriving on an interface) and `out` (packets leaving one). `in` rules
//!   run in a base chain `in` on the prerouting hook at priority 0 (after
//!   conntrack at -200 and `rdr` at -100), `out` rules in a base chain `out`
//!   on postrouting at priority 0 (before `map` at 100): as in IPFilter,
//!   inbound packets are filtered after `rdr`, outbound before `map`. Only
//!   IPv4 is filtered (`ipf` without `-6`); IPv6 passes these chains.
//! - `ip tsunagi_nat`: `map` in `postrouting` (srcnat, 100), `rdr` in
//!   `prerouting` (dstnat, -100), first matching rule wins as in `ipnat`.
//!
//! The `in` chain jumps first (after letting IPv6 through) to a regular
//! chain `services`, empty in the compiled ruleset, where the daemon opens
//! holes for its own servers at run time ([`crate::holes`]).
//!
//! A ruleset starts with `add table; delete table; add table` for both
//! tables, so one `nft -j -f -` transaction replaces an earlier ruleset or
//! creates the first, and a failure leaves the old one in place.
//!
//! # Last match wins, `quick`, groups (ipf.conf(5) "FILTER RULES", "GROUPS")
//!
//! IPFilter walks a list in order; every matching rule replaces the verdict,
//! a `quick` rule ends the walk, and a matching `head N` rule walks group N
//! at once (its verdict replacing the head's if any rule of N matched, and a
//! `quick` match in N ending everything). Nftables stops at the first
//! terminal verdict, so each group and direction compiles to two chains:
//!
//! 1. `gN_DIR_quick`, rules in order: each `quick` rule with its verdict;
//!    each `head M` rule as `jump gM_DIR_quick`. The first `quick` match
//!    IPFilter would stop at is the first terminal verdict here.
//! 2. `gN_DIR_last`, rules in *reverse* order: each non-`quick` rule with
//!    its verdict; each `head M` rule as `jump gM_DIR_last` followed by the
//!    head rule's own verdict (used when nothing in M matched). With no
//!    `quick` match anywhere (chain 1 returned), the last match in file order
//!    is the first match in reverse order.
//!
//! The base chain jumps to `g0_DIR_quick` then `g0_DIR_last`; its policy
//! `accept` is IPFilter's default when no rule matches. A `quick` head rule
//! ends the walk with its own verdict only when nothing in M matched: as
//! IPFilter's `fr_scanlist` does, a non-`quick` match in M replaces the
//! head's flags, `quick` included, and the walk goes on with the rules
//! after the head. In chain 1 it is `jump gM_DIR_quick` then `jump
//! gM_DIR_nomatch`, a chain where any rule of M that matches returns and
//! the head's verdict follows; in chain 2, `jump gM_DIR_last` at its
//! place, reached only when M matched.
//!
//! `count` rules are IPFilter's accounting list: numbered apart from the
//! filter rules (`ipf_count_DIR_N` counters), each matching one counts, in a
//! chain `count_DIR` the base chain jumps to before the state table; they
//! take no `group`, `head`, `keep state` or `log` here (refused).
//!
//! # return-rst, return-icmp
//!
//! nftables can `reject` only at the input, forward and output hooks, and
//! `in` rules run at prerouting. A deciding `block return-rst` /
//! `return-icmp(CODE)` `in` rule therefore counts and logs the packet as
//! blocked, sets the packet mark to [`RETURN_MARK`] (with [`RETURN_RST`] or
//! the code) and lets it go on to routing, where the base chains
//! `return_input` and `return_forward` answer it (`reject with tcp reset`,
//! `reject with icmp CODE`) and drop it. `return-rst` on anything but TCP
//! blocks without an answer, as IPFilter does. `return-icmp` without a code
//! sends port unreachable. On `out` rules (postrouting) a return is refused,
//! and `return-icmp-as-dest` is refused: the kernel answers from its own
//! address, not as the packet's destination.
//!
//! # keep state
//!
//! A deciding `pass ... keep state` rule sets the connection's mark to
//! `0x8000_0000 | id` (nftables `ct mark`). Both base chains first accept
//! any packet of such a connection in either direction, on any interface,
//! like IPFilter's state table (checked before the rules); if the rule had
//! `log`, these packets are logged with that rule's prefix, which is why
//! seed 000 appendix B.3 shows every packet of the telnet session. The mark
//! is on the conntrack entry from the first packet on, so the first packet's
//! `out` pass through the gateway also matches the state. Connections marked
//! under an earlier ruleset keep passing after a re-apply (IPFilter keeps its
//! state table across `ipf -f` unless told `-FS`); ids are rule positions,
//! so an unchanged file keeps its per-rule logging and counting too.
//!
//! As IPFilter's state entries, a state is bound to the interfaces its
//! packets use, learnt from the first packet of each direction in and out:
//! a packet of the session on another interface is not let through by the
//! state and meets the rules instead. The binding lives in the
//! connection's `ct label` (see [`STATE_LABEL_SLOTS`]), so it survives a
//! re-apply too; a connection made before any ruleset used labels is not
//! bound.
//!
//! # Fragments, options, short packets
//!
//! Linux reassembles fragments (nf_defrag, priority -400) before conntrack,
//! so `with frag` can only be seen earlier: the `in` rules with `with frag`
//! go into a base chain `in_defrag` (prerouting, priority -450) together
//! with the `quick` group-0 `in` rules before them, in order (those must not
//! be `head` rules). That chain decides fragments only (whole packets leave
//! it at once, for the `in` chain after conntrack), and it looks at the
//! state first, as IPFilter consults its fragment cache and state table
//! before any rule: a fragment whose (source, destination, protocol) is
//! that of a session a `keep state keep frags` rule let through, in either
//! direction and as the addresses are on the wire before NAT, passes. The
//! `in` chain's state rules keep that set ([`KEEP_FRAGS_SET`]) up to date on
//! every inbound packet of such a session; an entry lives
//! [`KEEP_FRAGS_TIMEOUT`] seconds after the session's last inbound packet. The key is coarser than IPFilter's fragment
//! cache (which follows one datagram's IP id): any fragment between the two
//! ends of a kept session passes. `keep frags` without `keep state` is
//! refused (nothing here could remember the fragments of a stateless pass).
//!
//! Fragments that pass are reassembled and the whole packet then meets the
//! state table and the rules like any other; an unsolicited fragment meets
//! the `with frag` rule and is logged as the fragment it is (`@0:N`).
//! `with frag` on an `out` rule is refused: the kernel fragments after the
//! last hook.
//!
//! `with ipopts` is `ip hdrlength > 5`, `with opt NAME` is `ip option NAME
//! exists` (nftables knows lsrr, ssrr, rr and rtralrt; other names are
//! refused); both are matched after the state table, so the option-carrying
//! packets of a kept session pass and an unsolicited one meets the rule.
//! `with short` is an IP total length too small for the transport header
//! (TCP 20, UDP 8, ICMP 4 octets) on a first fragment. Several `with`
//! options match when any one does (seed 000 §4.3).
//!
//! # Logs and counters
//!
//! `log` adds `log group G prefix "@GROUP:RULE A DIR[ K-S][ K-F]"` (NFLOG);
//! a packet an `out` rule or its state passes is logged after source NAT,
//! as IPFilter logs it, unless [`Options::out_log`] says otherwise
//! ([`OutLog`]);
//! [`crate::ipmon`] turns prefix + packet into the ipmon line. `RULE` is the
//! rule's 1-based number among the rules of its group and direction, as
//! `ipfstat -n` counts. Every rule has a named counter (`RuleInfo::counter`)
//! that counts the packets it decided, including those let through by its
//! state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::ast::{
    Action, AddrMatch, BlockReturn, Direction, FilterRule, IpOpt, IpfRules, IpnatRules, NatRule,
    PortMatch, PortOp, Proto, RdrProto, RouteOpt, Via, WithOpt,
};
use crate::holes;

/// Name of the filter table (family `inet`).
pub const FILTER_TABLE: &str = "tsunagi";
/// Name of the NAT table (family `ip`).
pub const NAT_TABLE: &str = "tsunagi_nat";
/// `ct mark` bit saying "state created by a tsunagi `keep state` rule".
pub const STATE_MARK: u32 = 0x8000_0000;
/// Packet mark (`meta mark`) of a packet an `in` rule blocked with a
/// `return-*`: the low byte is the ICMP code, [`RETURN_RST`] asks for a
/// TCP RST. The `return_input`/`return_forward` chains answer and drop it.
pub const RETURN_MARK: u32 = 0x7473_0000;
/// Bit of [`RETURN_MARK`] asking for a TCP RST.
pub const RETURN_RST: u32 = 0x100;
const RETURN_MASK: u32 = 0xffff_fe00;
/// The set of (source, destination, protocol) of sessions kept by a
/// `keep state keep frags` rule, whose fragments pass before reassembly.
pub const KEEP_FRAGS_SET: &str = "keep_frags";
/// How long a [`KEEP_FRAGS_SET`] entry outlives the session's last packet
/// (seconds).
pub const KEEP_FRAGS_TIMEOUT: u32 = 300;
/// ICMP unreachable code `return-icmp` sends when none is written: port
/// unreachable (IPFilter HOWTO, "return-icmp").
pub const DEFAULT_RETURN_ICMP_CODE: u8 = 3;

/// Why rules cannot be compiled; each names the rule's line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The rules name an interface the map does not translate.
    #[error("line {line}: interface `{name}` has no Linux name in the interface map")]
    UnmappedInterface {
        /// Rule line.
        line: usize,
        /// Interface as written in the rules.
        name: String,
    },
    /// Rules in a group that no `head` rule of their direction leads to.
    #[error("line {line}: group {group} has no `head {group}` rule reachable from group 0 in direction `{direction}`")]
    GroupUnreachable {
        /// Rule line.
        line: usize,
        /// The group.
        group: u32,
        /// The rule's direction.
        direction: Direction,
    },
    /// Two rules head the same group.
    #[error("line {line}: group {group} already has a head rule (line {first})")]
    HeadTwice {
        /// Second head's line.
        line: usize,
        /// First head's line.
        first: usize,
        /// The group.
        group: u32,
    },
    /// A port range with nothing inside (`port 5 >< 6`).
    #[error("line {line}: port range {range} matches no port")]
    EmptyPortRange {
        /// Rule line.
        line: usize,
        /// The range as written.
        range: String,
    },
    /// A construct this compiler does not translate.
    #[error("line {line}: {what} is not supported")]
    Unsupported {
        /// Rule line.
        line: usize,
        /// What.
        what: &'static str,
    },
    /// A construct of `ipf.conf(5)` nftables cannot do as IPFilter does:
    /// refused rather than ignored or done differently.
    #[error("line {line}: `{construct}` is refused: {reason}")]
    Refused {
        /// Rule line.
        line: usize,
        /// The construct as written in the rule.
        construct: String,
        /// Why.
        reason: &'static str,
    },
}

/// The constructs of `rule` this compiler refuses (see
/// [`CompileError::Refused`]); the first one found.
fn refuse(rule: &FilterRule) -> Result<(), CompileError> {
    let refused = |construct: String, reason: &'static str| {
        Err(CompileError::Refused {
            line: rule.line,
            construct,
            reason,
        })
    };
    if let Action::Skip(n) = rule.action {
        return refused(
            format!("skip {n}"),
            "rules compile to two nftables passes (quick, then last match) that cannot jump over the next N rules of the file",
        );
    }
    match &rule.route {
        None => {}
        Some(RouteOpt::FastRoute) => {
            return refused(
                "fastroute".into(),
                "nftables cannot route a packet around the kernel's routing from a filter rule",
            )
        }
        Some(RouteOpt::To(i, _)) => {
            return refused(
                format!("to {i}"),
                "nftables sends a packet to an interface (`fwd`) only from a netdev ingress chain, before the routing and conntrack the rules need; route it instead",
            )
        }
        Some(RouteOpt::DupTo(i, _)) => {
            return refused(
                format!("dup-to {i}"),
                "nftables' `dup` works in ip, ip6 and netdev tables, not in the inet table the filter is (`tsunagi capture` copies a link's packets)",
            )
        }
    }
    match (&rule.via, rule.direction) {
        (Some(Via::Out(v)), Direction::In) => {
            return refused(
                format!("out-via {v}"),
                "`in` rules run at prerouting, before the kernel has chosen the outgoing interface",
            )
        }
        (Some(Via::In(v)), Direction::In) => {
            return refused(format!("in-via {v}"), "`in-via` belongs on an `out` rule")
        }
        (Some(Via::Out(v)), Direction::Out) => {
            return refused(format!("out-via {v}"), "`out-via` belongs on an `in` rule")
        }
        _ => {}
    }
    match rule.ret {
        Some(BlockReturn::IcmpAsDest(_)) => return refused(
            "return-icmp-as-dest".into(),
            "the kernel's reject answers from its own address, not from the packet's destination",
        ),
        Some(r) if rule.direction == Direction::Out => {
            return refused(
                match r {
                    BlockReturn::Rst => "return-rst",
                    _ => "return-icmp",
                }
                .into(),
                "nftables rejects only at the input, forward and output hooks; `out` rules run at postrouting",
            );
        }
        _ => {}
    }
    for w in &rule.with {
        if let WithOpt::Opt(o) = w {
            if nft_ip_option(*o).is_none() {
                return refused(
                    format!("with opt {}", o.name()),
                    "nftables matches only the lsrr, ssrr, rr and rtralrt (router alert) options",
                );
            }
        }
    }
    if rule.action == Action::Count
        && (rule.group != 0 || rule.head.is_some() || rule.keep_state || rule.log)
    {
        return refused(
            "count".into(),
            "accounting rules are counted in their own list here: no group, head, keep state or log",
        );
    }
    if rule.keep_frags && !rule.keep_state {
        return refused(
            "keep frags".into(),
            "Linux reassembles before the rules: only a kept state can let fragments past `with frag` (write `keep state keep frags`)",
        );
    }
    for (not, addr) in [(rule.src_not, &rule.src), (rule.dst_not, &rule.dst)] {
        if not && addr.network().is_none_or(|(_, p)| p == 0) {
            return refused(format!("!{addr}"), "it matches no packet");
        }
    }
    Ok(())
}

/// nftables' name (`ip option NAME exists`) of an IP option, if it has one.
fn nft_ip_option(o: IpOpt) -> Option<&'static str> {
    match o {
        IpOpt::Lsrr => Some("lsrr"),
        IpOpt::Ssrr => Some("ssrr"),
        IpOpt::Rr => Some("rr"),
        IpOpt::Rtralrt => Some("ra"),
        _ => None,
    }
}

/// FreeBSD interface names in the rules -> Linux interface names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfaceMap {
    map: BTreeMap<String, String>,
}

impl IfaceMap {
    /// An empty map.
    pub fn new() -> IfaceMap {
        IfaceMap::default()
    }

    /// Add `rules_name -> linux_name`.
    pub fn insert(&mut self, rules_name: &str, linux_name: &str) -> &mut IfaceMap {
        self.map
            .insert(rules_name.to_string(), linux_name.to_string());
        self
    }

    /// Every interface the rules name, mapped to itself (rules that already
    /// use Linux names).
    pub fn identity(ipf: &IpfRules, ipnat: &IpnatRules) -> IfaceMap {
        let mut map = IfaceMap::new();
        for name in ipf
            .rules
            .iter()
            .flat_map(|r| {
                let via = match &r.via {
                    Some(Via::In(v) | Via::Out(v)) => Some(v.as_str()),
                    None => None,
                };
                r.interface.as_deref().into_iter().chain(via)
            })
            .chain(ipnat.rules.iter().map(NatRule::interface))
        {
            map.insert(name, name);
        }
        map
    }

    /// The Linux name of `rules_name`.
    pub fn linux_name(&self, rules_name: &str) -> Option<&str> {
        self.map.get(rules_name).map(String::as_str)
    }

    /// The name the rules use for Linux interface `linux_name` (for logs).
    pub fn rules_name(&self, linux_name: &str) -> Option<&str> {
        self.map
            .iter()
            .find(|(_, l)| l.as_str() == linux_name)
            .map(|(r, _)| r.as_str())
    }

    fn get(&self, line: usize, name: &str) -> Result<&str, CompileError> {
        self.linux_name(name)
            .ok_or_else(|| CompileError::UnmappedInterface {
                line,
                name: name.to_string(),
            })
    }
}

/// Compiler settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// NFLOG group that `log` rules send to.
    pub nflog_group: u16,
    /// Where packets an `out` rule passes are logged.
    pub out_log: OutLog,
}

/// Where the log line of a packet an `out` rule (or its state) passes is
/// taken: IPFilter matches `out` rules before `map` and logs after it
/// (seed 000 appendix B.3: `em0 ... 192.168.253.4,55360 ... OUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutLog {
    /// After `map` (source NAT), as IPFilter: the rule marks the packet
    /// (the top 12 bits of `meta mark`, [`OUT_LOG_MASK`]) and a chain
    /// `out_log` after NAT logs it and clears those bits. A host whose own
    /// packet marks use those bits wants [`OutLog::BeforeNat`].
    #[default]
    AfterNat,
    /// Where the rule matches, before `map`; the packet mark is not used.
    BeforeNat,
}

/// The bits of `meta mark` that carry an `out` log to the `out_log` chain.
pub const OUT_LOG_MASK: u32 = 0xfff0_0000;

impl Default for Options {
    fn default() -> Options {
        Options {
            nflog_group: 1,
            out_log: OutLog::default(),
        }
    }
}

/// What the ruleset knows about one source rule (for `status` hit counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// Source line.
    pub line: usize,
    /// `ipf` or `ipnat`.
    pub file: &'static str,
    /// `@GROUP:RULE` (filter rules) or `nat:LINE`.
    pub label: String,
    /// Name of the nftables counter object.
    pub counter: String,
    /// Table holding the counter (`inet tsunagi` or `ip tsunagi_nat`).
    pub family: &'static str,
    /// Table name.
    pub table: &'static str,
    /// The rule as printed.
    pub text: String,
}

/// A compiled ruleset.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledPolicy {
    /// The `{"nftables": [...]}` document that replaces both tables.
    pub ruleset: Value,
    /// One entry per source rule.
    pub rules: Vec<RuleInfo>,
}

impl CompiledPolicy {
    /// The ruleset as JSON text for `nft -j -f -`.
    pub fn to_json(&self) -> String {
        self.ruleset.to_string()
    }

    /// The ruleset as indented JSON, for people (`tsunagi policy show`).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.ruleset).unwrap_or_default()
    }

    /// A document that removes both tables, whether or not they exist.
    pub fn removal() -> Value {
        let mut cmds = vec![json!({"metainfo": {"json_schema_version": 1}})];
        for (family, name) in [("inet", FILTER_TABLE), ("ip", NAT_TABLE)] {
            let t = json!({"table": {"family": family, "name": name}});
            cmds.push(json!({"add": t.clone()}));
            cmds.push(json!({"delete": t}));
        }
        json!({ "nftables": cmds })
    }
}

/// Position of a filter rule: its group/direction list and number in it.
#[derive(Debug, Clone, Copy)]
struct Numbered<'a> {
    rule: &'a FilterRule,
    /// 1-based within (group, direction), as `ipfstat -n` shows.
    number: usize,
    /// Unique id in the ruleset, for `ct mark`.
    id: u32,
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

fn counter_name(r: &Numbered<'_>) -> String {
    if r.rule.action == Action::Count {
        return format!("ipf_count_{}_{}", dir_name(r.rule.direction), r.number);
    }
    format!(
        "ipf_g{}_{}_{}",
        r.rule.group,
        dir_name(r.rule.direction),
        r.number
    )
}

/// The NFLOG prefix of a rule; see [`crate::ipmon::LogPrefix`].
fn log_prefix(r: &Numbered<'_>, direction: Direction) -> String {
    let mut p = format!(
        "@{}:{} {} {}",
        r.rule.group,
        r.number,
        match r.rule.action {
            Action::Block => "b",
            _ => "p",
        },
        match direction {
            Direction::In => "IN",
            Direction::Out => "OUT",
        }
    );
    if r.rule.keep_state {
        p.push_str(" K-S");
    }
    if r.rule.keep_frags {
        p.push_str(" K-F");
    }
    p
}

fn matcher(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn addr_match(field: &str, addr: &AddrMatch) -> Option<Value> {
    addr_match_op(field, addr, false)
}

/// `ip saddr|daddr (==|!=) NET`; `None` when it matches every address.
fn addr_match_op(field: &str, addr: &AddrMatch, not: bool) -> Option<Value> {
    let (net, prefix) = addr.network()?;
    if prefix == 0 {
        return None;
    }
    let right = if prefix == 32 {
        json!(net.to_string())
    } else {
        json!({"prefix": {"addr": net.to_string(), "len": prefix}})
    };
    Some(matcher(
        if not { "!=" } else { "==" },
        payload("ip", field),
        right,
    ))
}

fn port_match(line: usize, proto: &str, field: &str, m: &PortMatch) -> Result<Value, CompileError> {
    let left = payload(proto, field);
    Ok(match *m {
        PortMatch::Cmp(op, n) => {
            let op = match op {
                PortOp::Eq => "==",
                PortOp::Ne => "!=",
                PortOp::Lt => "<",
                PortOp::Gt => ">",
                PortOp::Le => "<=",
                PortOp::Ge => ">=",
            };
            matcher(op, left, json!(n))
        }
        PortMatch::Inside(a, b) => {
            // Exclusive at both ends (ipf.conf(5)).
            if u32::from(a) + 1 > u32::from(b).saturating_sub(1) || b == 0 {
                return Err(CompileError::EmptyPortRange {
                    line,
                    range: m.to_string(),
                });
            }
            matcher("==", left, json!({"range": [a + 1, b - 1]}))
        }
        PortMatch::Outside(a, b) => {
            if a > b {
                // Every port is below a or above b.
                matcher(">=", left, json!(0))
            } else {
                matcher("!=", left, json!({"range": [a, b]}))
            }
        }
    })
}

fn l4proto_match(protos: &[&str]) -> Value {
    if protos.len() == 1 {
        matcher("==", meta("l4proto"), json!(protos[0]))
    } else {
        matcher("==", meta("l4proto"), json!({"set": protos}))
    }
}

/// The alternatives (any one matching is a match) of a rule's conditions,
/// without interface; `frag` is only in the result of [`frag_alternatives`].
fn rule_alternatives(rule: &FilterRule) -> Result<Vec<Vec<Value>>, CompileError> {
    let line = rule.line;
    let mut base = Vec::new();
    let port_proto = match rule.proto {
        None => None,
        Some(Proto::Tcp) => {
            base.push(l4proto_match(&["tcp"]));
            Some("tcp")
        }
        Some(Proto::Udp) => {
            base.push(l4proto_match(&["udp"]));
            Some("udp")
        }
        Some(Proto::TcpUdp) => {
            base.push(l4proto_match(&["tcp", "udp"]));
            Some("th")
        }
        Some(Proto::Icmp) => {
            base.push(l4proto_match(&["icmp"]));
            None
        }
        Some(Proto::Number(n)) => {
            base.push(matcher("==", meta("l4proto"), json!(n)));
            None
        }
    };
    base.extend(addr_match_op("saddr", &rule.src, rule.src_not));
    base.extend(addr_match_op("daddr", &rule.dst, rule.dst_not));
    for (field, port) in [("sport", &rule.src_port), ("dport", &rule.dst_port)] {
        if let Some(p) = port {
            let proto = port_proto.ok_or(CompileError::Unsupported {
                line,
                what: "a port match without proto tcp/udp",
            })?;
            base.push(port_match(line, proto, field, p)?);
        }
    }
    if let Some(flags) = &rule.flags {
        base.push(matcher(
            "==",
            json!({"&": [payload("tcp", "flags"), flags.mask()]}),
            json!(flags.set & flags.mask()),
        ));
    }
    if let Some(icmp) = &rule.icmp {
        base.push(matcher("==", payload("icmp", "type"), json!(icmp.ty)));
        if let Some(code) = icmp.code {
            base.push(matcher("==", payload("icmp", "code"), json!(code)));
        }
    }
    if rule.with.is_empty() {
        return Ok(vec![base]);
    }
    let mut alternatives = Vec::new();
    for w in &rule.with {
        match w {
            WithOpt::Frag => {}
            WithOpt::Opt(o) => {
                if let Some(name) = nft_ip_option(*o) {
                    let mut alt = base.clone();
                    alt.push(matcher(
                        "==",
                        json!({"ip option": {"name": name}}),
                        json!(true),
                    ));
                    alternatives.push(alt);
                }
            }
            WithOpt::IpOpts => {
                let mut alt = base.clone();
                alt.push(matcher(">", payload("ip", "hdrlength"), json!(5)));
                alternatives.push(alt);
            }
            WithOpt::Short => {
                let protos: &[(&str, u16)] = match rule.proto {
                    Some(Proto::Tcp) => &[("tcp", 20)],
                    Some(Proto::Udp) => &[("udp", 8)],
                    Some(Proto::TcpUdp) => &[("tcp", 20), ("udp", 8)],
                    Some(Proto::Icmp) => &[("icmp", 4)],
                    Some(Proto::Number(_)) => &[],
                    None => &[("tcp", 20), ("udp", 8), ("icmp", 4)],
                };
                for &(proto, min) in protos {
                    // nftables cannot add two fields, so one rule per header
                    // length: total length < IHL*4 + transport minimum.
                    for ihl in 5u16..=15 {
                        let mut alt = base.clone();
                        if protos.len() > 1 || rule.proto.is_none() {
                            alt.push(l4proto_match(&[proto]));
                        }
                        alt.push(matcher(
                            "==",
                            json!({"&": [payload("ip", "frag-off"), 0x1fff]}),
                            json!(0),
                        ));
                        alt.push(matcher("==", payload("ip", "hdrlength"), json!(ihl)));
                        alt.push(matcher("<", payload("ip", "length"), json!(ihl * 4 + min)));
                        alternatives.push(alt);
                    }
                }
            }
        }
    }
    Ok(alternatives)
}

/// The `with frag` alternative of a rule, if it has one.
fn frag_alternatives(rule: &FilterRule) -> Result<Vec<Vec<Value>>, CompileError> {
    if !rule.with.contains(&WithOpt::Frag) {
        return Ok(Vec::new());
    }
    let mut plain = rule.clone();
    plain.with.clear();
    let mut alts = rule_alternatives(&plain)?;
    for alt in &mut alts {
        alt.push(matcher(
            "!=",
            json!({"&": [payload("ip", "frag-off"), 0x3fff]}),
            json!(0),
        ));
    }
    Ok(alts)
}

struct Builder<'m> {
    cmds: Vec<Value>,
    iface: &'m IfaceMap,
    opts: &'m Options,
    /// Prefixes logged after NAT by `out_log`, in mark order.
    out_logs: Vec<String>,
}

impl Builder<'_> {
    fn chain(&mut self, name: &str) {
        self.cmds.push(json!({"add": {"chain": {
            "family": "inet", "table": FILTER_TABLE, "name": name}}}));
    }

    fn base_chain(&mut self, name: &str, hook: &str, prio: i32) {
        self.cmds.push(json!({"add": {"chain": {
            "family": "inet", "table": FILTER_TABLE, "name": name,
            "type": "filter", "hook": hook, "prio": prio, "policy": "accept"}}}));
    }

    fn rule(&mut self, chain: &str, expr: Vec<Value>, comment: Option<String>) {
        let mut rule =
            json!({"family": "inet", "table": FILTER_TABLE, "chain": chain, "expr": expr});
        if let Some(c) = comment {
            rule["comment"] = json!(c);
        }
        self.cmds.push(json!({"add": {"rule": rule}}));
    }

    fn iface_match(&self, r: &FilterRule) -> Result<Option<Value>, CompileError> {
        let Some(name) = &r.interface else {
            return Ok(None);
        };
        let linux = self.iface.get(r.line, name)?;
        let key = match r.direction {
            Direction::In => "iifname",
            Direction::Out => "oifname",
        };
        Ok(Some(matcher("==", meta(key), json!(linux))))
    }

    /// `in-via IF` of an `out` rule: the interface a forwarded packet came
    /// in on (`meta iifname`, known at postrouting).
    fn via_match(&self, r: &FilterRule) -> Result<Option<Value>, CompileError> {
        match (&r.via, r.direction) {
            (Some(Via::In(name)), Direction::Out) => {
                let linux = self.iface.get(r.line, name)?;
                Ok(Some(matcher("==", meta("iifname"), json!(linux))))
            }
            _ => Ok(None),
        }
    }

    /// Rules for `alternatives` of `r`, each ending in `tail`.
    fn emit(
        &mut self,
        chain: &str,
        r: &Numbered<'_>,
        alternatives: &[Vec<Value>],
        tail: &[Value],
    ) -> Result<(), CompileError> {
        let iface = self.iface_match(r.rule)?;
        let via = self.via_match(r.rule)?;
        for alt in alternatives {
            let mut expr: Vec<Value> = iface.iter().chain(via.iter()).cloned().collect();
            expr.extend(alt.iter().cloned());
            expr.extend(tail.iter().cloned());
            self.rule(chain, expr, Some(format!("ipf line {}", r.rule.line)));
        }
        Ok(())
    }

    /// counter, log, state mark and verdict of a deciding rule.
    fn verdict(&mut self, r: &Numbered<'_>) -> Vec<Value> {
        let mut tail = vec![json!({"counter": counter_name(r)})];
        if r.rule.log {
            tail.push(self.log(r, r.rule.direction));
        }
        match r.rule.action {
            Action::Pass => {
                if r.rule.keep_state {
                    tail.push(json!({"mangle": {"key": {"ct": {"key": "mark"}},
                        "value": STATE_MARK | r.id}}));
                    // Fragments are looked up inbound only (in_defrag).
                    if r.rule.keep_frags && r.rule.direction == Direction::In {
                        tail.extend(keep_frags_updates());
                    }
                }
                tail.push(json!({"accept": null}));
            }
            Action::Block => match r.rule.ret {
                // Answered by the return_* chains (input, forward hooks).
                Some(BlockReturn::Rst) => {
                    tail.push(json!({"mangle": {"key": {"meta": {"key": "mark"}},
                        "value": RETURN_MARK | RETURN_RST}}));
                    tail.push(json!({"accept": null}));
                }
                Some(BlockReturn::Icmp(code)) | Some(BlockReturn::IcmpAsDest(code)) => {
                    let code = code.unwrap_or(DEFAULT_RETURN_ICMP_CODE);
                    tail.push(json!({"mangle": {"key": {"meta": {"key": "mark"}},
                        "value": RETURN_MARK | u32::from(code)}}));
                    tail.push(json!({"accept": null}));
                }
                None => tail.push(json!({"drop": null})),
            },
            // Refused before (refuse()); an accounting rule decides nothing.
            Action::Count | Action::Skip(_) => {}
        }
        tail
    }

    /// The statement that logs a packet `r` decides in direction `d`: `log`
    /// here, or for a pass out with [`OutLog::AfterNat`] the mark that the
    /// `out_log` chain logs after NAT.
    fn log(&mut self, r: &Numbered<'_>, d: Direction) -> Value {
        let prefix = log_prefix(r, d);
        if d == Direction::Out
            && r.rule.action == Action::Pass
            && self.opts.out_log == OutLog::AfterNat
        {
            let index = match self.out_logs.iter().position(|p| *p == prefix) {
                Some(i) => i,
                None => {
                    self.out_logs.push(prefix);
                    self.out_logs.len() - 1
                }
            };
            // 4095 prefixes at most: checked in compile().
            let mark = ((index as u32 + 1) << 20) & OUT_LOG_MASK;
            return json!({"mangle": {"key": {"meta": {"key": "mark"}}, "value":
                {"|": [{"&": [meta("mark"), !OUT_LOG_MASK]}, mark]}}});
        }
        json!({"log": {"prefix": prefix, "group": self.opts.nflog_group}})
    }

    /// Rules of a `pass ... keep state (limit N)` rule's alternatives that
    /// block a new session once N are kept (`ct count over N`): IPFilter
    /// blocks a packet whose state it cannot add.
    fn state_limit(
        &mut self,
        chain: &str,
        r: &Numbered<'_>,
        alternatives: &[Vec<Value>],
    ) -> Result<(), CompileError> {
        if let (Action::Pass, true, Some(n)) =
            (r.rule.action, r.rule.keep_state, r.rule.state_limit)
        {
            let tail = vec![
                json!({"ct count": {"val": n, "inv": true}}),
                json!({"counter": counter_name(r)}),
                json!({"drop": null}),
            ];
            self.emit(chain, r, alternatives, &tail)?;
        }
        Ok(())
    }
}

/// The `ct label` bit of interface `linux` in a state binding slot:
/// 1..=30 from FNV-1a of the name, so a re-apply with other interfaces
/// keeps the bits of the sessions already bound (two names on one bit are
/// not told apart: the binding is looser, never wrong).
fn interface_bit(linux: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in linux.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    1 + h % 30
}

/// IPFilter binds a state entry to the interfaces its packets use: in and
/// out, for each direction of the session, each learnt from the first
/// packet that uses it. A packet of the session on another interface is
/// not let through by the state; the rules decide it.
///
/// Here each (hook, direction) slot is 32 bits of the connection's `ct
/// label` ([`STATE_LABEL_SLOTS`]): bit 0 says the slot is learnt, bit k the
/// interface ([`interface_bit`]; bit 31 for interfaces the rules do not
/// name). The base chain learns, then sends a packet whose interface is not
/// its slot's straight to the rules (`goto DIR_rules`).
fn bind_state_to_interfaces(b: &mut Builder<'_>, d: Direction, iface: &IfaceMap) {
    let chain = dir_name(d);
    let key = match d {
        Direction::In => "iifname",
        Direction::Out => "oifname",
    };
    let mut names: Vec<&str> = iface.map.values().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    for (ct_dir, base) in STATE_LABEL_SLOTS
        .iter()
        .filter(|(dd, _, _)| *dd == d)
        .map(|(_, cd, base)| (*cd, *base))
    {
        let state = [
            matcher(
                "==",
                json!({"&": [{"ct": {"key": "mark"}}, STATE_MARK]}),
                json!(STATE_MARK),
            ),
            matcher("==", json!({"ct": {"key": "direction"}}), json!(ct_dir)),
        ];
        let label = |bit: u32| json!({"mangle": {"key": {"ct": {"key": "label"}}, "value": bit}});
        let mut cases: Vec<(Option<Value>, u32)> = names
            .iter()
            .map(|n| (Some(matcher("==", meta(key), json!(n))), interface_bit(n)))
            .collect();
        let other = if names.is_empty() {
            None
        } else {
            Some(matcher("!=", meta(key), json!({"set": names})))
        };
        cases.push((other, 31));
        for (if_match, bit) in &cases {
            // Every tracked packet learns (a session's first packet comes
            // before its state exists); only a state's packets are held
            // to what was learnt.
            let mut learn = vec![state[1].clone()];
            // `!`: the bit is clear (`!=` would compare all 128 bits).
            learn.push(matcher("!", json!({"ct": {"key": "label"}}), json!(base)));
            learn.extend(if_match.clone());
            learn.push(label(base));
            learn.push(label(base + bit));
            b.rule(
                chain,
                learn,
                Some(format!("bind state ({ct_dir}) to {key}")),
            );
        }
        for (if_match, bit) in &cases {
            let mut other = state.to_vec();
            // Learnt: a connection without labels (made before any ruleset
            // used them) is not bound.
            other.push(matcher("in", json!({"ct": {"key": "label"}}), json!(base)));
            other.extend(if_match.clone());
            other.push(matcher(
                "!",
                json!({"ct": {"key": "label"}}),
                json!(base + bit),
            ));
            other.push(json!({"goto": {"target": format!("{chain}_rules")}}));
            b.rule(chain, other, Some(format!("state on another {key}")));
        }
    }
}

/// The `ct label` slots of [`bind_state_to_interfaces`]: (hook, conntrack
/// direction, first bit).
pub const STATE_LABEL_SLOTS: [(Direction, &str, u32); 4] = [
    (Direction::In, "original", 0),
    (Direction::In, "reply", 32),
    (Direction::Out, "original", 64),
    (Direction::Out, "reply", 96),
];

/// `update @keep_frags { ct DIR ip saddr . ct DIR ip daddr . meta l4proto }`
/// for both directions of the connection: the addresses its packets carry
/// on the wire before any NAT, which is what a fragment shows before
/// reassembly.
fn keep_frags_updates() -> [Value; 2] {
    ["original", "reply"].map(|dir| {
        json!({"set": {"op": "update", "elem": {"concat": [
            {"ct": {"key": "ip saddr", "dir": dir}},
            {"ct": {"key": "ip daddr", "dir": dir}},
            meta("l4proto")]},
            "set": format!("@{KEEP_FRAGS_SET}")}})
    })
}

/// Compile filter and NAT rules into one nftables JSON ruleset.
pub fn compile(
    ipf: &IpfRules,
    ipnat: &IpnatRules,
    iface: &IfaceMap,
    opts: &Options,
) -> Result<CompiledPolicy, CompileError> {
    // Number the rules per (group, direction) and give each an id.
    let mut counts: HashMap<(u32, Direction), usize> = HashMap::new();
    let mut numbered = Vec::new();
    let mut accounting: HashMap<Direction, usize> = HashMap::new();
    for (i, rule) in ipf.rules.iter().enumerate() {
        refuse(rule)?;
        // Accounting rules are a list of their own (ipf(5) `count`).
        let n = if rule.action == Action::Count {
            accounting.entry(rule.direction).or_insert(0)
        } else {
            counts.entry((rule.group, rule.direction)).or_insert(0)
        };
        *n += 1;
        let id = u32::try_from(i + 1).map_err(|_| CompileError::Unsupported {
            line: rule.line,
            what: "more than 2^31 rules",
        })?;
        if id >= STATE_MARK {
            return Err(CompileError::Unsupported {
                line: rule.line,
                what: "more than 2^31 rules",
            });
        }
        numbered.push(Numbered {
            rule,
            number: *n,
            id,
        });
    }

    // Heads: group -> (direction, line); groups must be reachable from 0.
    let mut heads: HashMap<u32, (Direction, usize)> = HashMap::new();
    for r in &numbered {
        if let Some(h) = r.rule.head {
            if let Some(&(_, first)) = heads.get(&h) {
                return Err(CompileError::HeadTwice {
                    line: r.rule.line,
                    first,
                    group: h,
                });
            }
            heads.insert(h, (r.rule.direction, r.rule.line));
        }
    }
    let mut reachable: BTreeSet<(u32, Direction)> = [(0, Direction::In), (0, Direction::Out)]
        .into_iter()
        .collect();
    loop {
        let before = reachable.len();
        for r in &numbered {
            if let Some(h) = r.rule.head {
                if reachable.contains(&(r.rule.group, r.rule.direction)) {
                    reachable.insert((h, r.rule.direction));
                }
            }
        }
        if reachable.len() == before {
            break;
        }
    }
    for r in &numbered {
        if !reachable.contains(&(r.rule.group, r.rule.direction)) {
            return Err(CompileError::GroupUnreachable {
                line: r.rule.line,
                group: r.rule.group,
                direction: r.rule.direction,
            });
        }
        if let Some(p) = r.rule.dst_port.iter().chain(r.rule.src_port.iter()).next() {
            // Validate ranges early so the error names the rule.
            port_match(r.rule.line, "th", "dport", p)?;
        }
        if r.rule.with.contains(&WithOpt::Frag) {
            if r.rule.direction == Direction::Out {
                return Err(CompileError::Unsupported {
                    line: r.rule.line,
                    what: "`with frag` on an `out` rule (Linux fragments after the last hook)",
                });
            }
            if !r.rule.quick || r.rule.group != 0 || r.rule.keep_state {
                return Err(CompileError::Unsupported {
                    line: r.rule.line,
                    what: "`with frag` other than in a `quick` group-0 rule without `keep state`",
                });
            }
        }
    }

    let mut b = Builder {
        cmds: vec![json!({"metainfo": {"json_schema_version": 1}})],
        iface,
        opts,
        out_logs: Vec::new(),
    };
    let filter = json!({"table": {"family": "inet", "name": FILTER_TABLE}});
    b.cmds.push(json!({"add": filter.clone()}));
    b.cmds.push(json!({"delete": filter.clone()}));
    b.cmds.push(json!({"add": filter}));
    let mut infos = Vec::new();
    for r in &numbered {
        let name = counter_name(r);
        b.cmds.push(json!({"add": {"counter": {
            "family": "inet", "table": FILTER_TABLE, "name": name}}}));
        infos.push(RuleInfo {
            line: r.rule.line,
            file: "ipf",
            // Accounting rules are a list of their own (`ipfstat -a`).
            label: if r.rule.action == Action::Count {
                format!("count:{} {}", r.number, dir_name(r.rule.direction))
            } else {
                format!(
                    "@{}:{} {}",
                    r.rule.group,
                    r.number,
                    dir_name(r.rule.direction)
                )
            },
            counter: name,
            family: "inet",
            table: FILTER_TABLE,
            text: r.rule.to_string(),
        });
    }

    // The servers' holes (crate::holes), empty here; group chains. Both
    // created before the jumps to them.
    b.cmds.push(holes::services_chain());
    b.cmds.push(json!({"add": {"set": {
        "family": "inet", "table": FILTER_TABLE, "name": KEEP_FRAGS_SET,
        "type": ["ipv4_addr", "ipv4_addr", "inet_proto"],
        "flags": ["timeout"], "timeout": KEEP_FRAGS_TIMEOUT, "size": 65535}}}));
    // Accounting rules (`count`): every one that matches counts.
    for d in [Direction::In, Direction::Out] {
        let chain = format!("count_{}", dir_name(d));
        let mut made = false;
        for r in numbered
            .iter()
            .filter(|r| r.rule.action == Action::Count && r.rule.direction == d)
        {
            if !made {
                b.chain(&chain);
                made = true;
            }
            let alts = rule_alternatives(r.rule)?;
            b.emit(&chain, r, &alts, &[json!({"counter": counter_name(r)})])?;
        }
    }
    // Answers of `return-rst` / `return-icmp` `in` rules: nftables rejects
    // only at input and forward (and output), after the `in` rules decided.
    let codes: BTreeSet<u8> = numbered
        .iter()
        .filter_map(|r| match r.rule.ret {
            Some(BlockReturn::Icmp(c)) | Some(BlockReturn::IcmpAsDest(c)) => {
                Some(c.unwrap_or(DEFAULT_RETURN_ICMP_CODE))
            }
            _ => None,
        })
        .collect();
    let rst = numbered
        .iter()
        .any(|r| r.rule.ret == Some(BlockReturn::Rst));
    if rst || !codes.is_empty() {
        for (chain, hook) in [("return_input", "input"), ("return_forward", "forward")] {
            b.base_chain(chain, hook, 0);
            if rst {
                b.rule(
                    chain,
                    vec![
                        matcher("==", meta("mark"), json!(RETURN_MARK | RETURN_RST)),
                        matcher("==", meta("l4proto"), json!("tcp")),
                        json!({"reject": {"type": "tcp reset"}}),
                    ],
                    Some("return-rst".to_string()),
                );
                // return-rst on anything but TCP: blocked, no answer.
                b.rule(
                    chain,
                    vec![
                        matcher("==", meta("mark"), json!(RETURN_MARK | RETURN_RST)),
                        json!({"drop": null}),
                    ],
                    None,
                );
            }
            for &code in &codes {
                b.rule(
                    chain,
                    vec![
                        matcher("==", meta("mark"), json!(RETURN_MARK | u32::from(code))),
                        json!({"reject": {"type": "icmp", "expr": code}}),
                    ],
                    Some(format!("return-icmp({code})")),
                );
            }
        }
    }
    let groups: BTreeSet<(u32, Direction)> = reachable;
    for &(g, d) in &groups {
        b.chain(&format!("g{g}_{}_quick", dir_name(d)));
        b.chain(&format!("g{g}_{}_last", dir_name(d)));
    }
    // A `quick` head's verdict holds only when nothing in its group matched
    // (see the module docs): `gN_DIR_nomatch` returns when a rule of group
    // N matches, else gives the head's verdict.
    for r in &numbered {
        if let (Some(h), true) = (r.rule.head, r.rule.quick) {
            let d = r.rule.direction;
            let chain = format!("g{h}_{}_nomatch", dir_name(d));
            b.chain(&chain);
            for m in numbered.iter().filter(|m| {
                m.rule.group == h && m.rule.direction == d && m.rule.action != Action::Count
            }) {
                // A `quick` match of the group ended the walk in
                // gN_DIR_quick already: any rule matching here is a
                // non-quick one (or a head whose group went on).
                let alts = rule_alternatives(m.rule)?;
                b.emit(&chain, m, &alts, &[json!({"return": null})])?;
            }
            let alts = rule_alternatives(r.rule)?;
            b.state_limit(&chain, r, &alts)?;
            let tail = b.verdict(r);
            b.emit(&chain, r, &alts, &tail)?;
        }
    }
    for &(g, d) in &groups {
        let list: Vec<&Numbered<'_>> = numbered
            .iter()
            .filter(|r| {
                r.rule.group == g && r.rule.direction == d && r.rule.action != Action::Count
            })
            .collect();
        let quick_chain = format!("g{g}_{}_quick", dir_name(d));
        let last_chain = format!("g{g}_{}_last", dir_name(d));
        for r in &list {
            let alts = rule_alternatives(r.rule)?;
            if let Some(h) = r.rule.head {
                let target = format!("g{h}_{}_quick", dir_name(d));
                b.emit(
                    &quick_chain,
                    r,
                    &alts,
                    &[json!({"jump": {"target": target}})],
                )?;
                if r.rule.quick {
                    // A `quick` head whose group matched nothing: its own
                    // verdict ends the walk (gN_DIR_nomatch). When the
                    // group did match, the walk goes on and the group's
                    // last match stands in for the head in the last pass.
                    let target = format!("g{h}_{}_nomatch", dir_name(d));
                    b.emit(
                        &quick_chain,
                        r,
                        &alts,
                        &[json!({"jump": {"target": target}})],
                    )?;
                }
            } else if r.rule.quick {
                b.state_limit(&quick_chain, r, &alts)?;
                let tail = b.verdict(r);
                b.emit(&quick_chain, r, &alts, &tail)?;
            }
        }
        for r in list.iter().rev() {
            if r.rule.quick && r.rule.head.is_none() {
                continue;
            }
            let alts = rule_alternatives(r.rule)?;
            if let Some(h) = r.rule.head {
                let target = format!("g{h}_{}_last", dir_name(d));
                b.emit(
                    &last_chain,
                    r,
                    &alts,
                    &[json!({"jump": {"target": target}})],
                )?;
                if r.rule.quick {
                    // Reached only when the group matched (else
                    // gN_DIR_nomatch decided): its last match decides.
                    continue;
                }
            }
            b.state_limit(&last_chain, r, &alts)?;
            let tail = b.verdict(r);
            b.emit(&last_chain, r, &alts, &tail)?;
        }
    }

    // Fragments, before reassembly.
    let last_frag = numbered
        .iter()
        .rposition(|r| r.rule.with.contains(&WithOpt::Frag));
    if let Some(last) = last_frag {
        b.base_chain("in_defrag", "prerouting", -450);
        b.rule(
            "in_defrag",
            vec![
                matcher("!=", meta("nfproto"), json!("ipv4")),
                json!({"accept": null}),
            ],
            None,
        );
        // Only fragments are decided here; whole packets after conntrack.
        b.rule(
            "in_defrag",
            vec![
                matcher(
                    "==",
                    json!({"&": [payload("ip", "frag-off"), 0x3fff]}),
                    json!(0),
                ),
                json!({"accept": null}),
            ],
            None,
        );
        // State first (ipf.conf(5) `keep frags`): fragments between the
        // ends of a session a `keep state keep frags` rule let in.
        b.rule(
            "in_defrag",
            vec![
                matcher(
                    "==",
                    json!({"concat": [payload("ip", "saddr"), payload("ip", "daddr"),
                        meta("l4proto")]}),
                    json!(format!("@{KEEP_FRAGS_SET}")),
                ),
                json!({"accept": null}),
            ],
            Some("fragments of kept state (keep frags)".to_string()),
        );
        for r in &numbered[..=last] {
            if r.rule.group != 0
                || r.rule.direction != Direction::In
                || r.rule.action == Action::Count
            {
                continue;
            }
            if r.rule.head.is_some() {
                return Err(CompileError::Unsupported {
                    line: r.rule.line,
                    what: "a `head` rule before a `with frag` rule",
                });
            }
            if !r.rule.quick {
                continue;
            }
            let mut alts = frag_alternatives(r.rule)?;
            if alts.is_empty() {
                alts = rule_alternatives(r.rule)?;
            }
            let mut tail = b.verdict(r);
            // No conntrack yet: a state mark cannot be set here.
            tail.retain(|v| {
                v.get("set").is_none()
                    && v.get("mangle").is_none_or(|m| m["key"].get("ct").is_none())
            });
            b.emit("in_defrag", r, &alts, &tail)?;
        }
    }

    // The rules proper, after the state table (or instead of it, for a
    // packet of a state on another interface than the state's).
    for d in [Direction::In, Direction::Out] {
        let chain = format!("{}_rules", dir_name(d));
        b.chain(&chain);
        for pass in ["quick", "last"] {
            b.rule(
                &chain,
                vec![json!({"jump": {"target": format!("g0_{}_{pass}", dir_name(d))}})],
                None,
            );
        }
    }
    for d in [Direction::In, Direction::Out] {
        let chain = dir_name(d);
        let hook = match d {
            Direction::In => "prerouting",
            Direction::Out => "postrouting",
        };
        b.base_chain(chain, hook, 0);
        b.rule(
            chain,
            vec![
                matcher("!=", meta("nfproto"), json!("ipv4")),
                json!({"accept": null}),
            ],
            None,
        );
        if d == Direction::In {
            b.rule(
                chain,
                vec![holes::jump_to_services()],
                Some("holes for this host's servers".to_string()),
            );
            if last_frag.is_some() && (rst || !codes.is_empty()) {
                // Blocked with a return before reassembly (in_defrag).
                b.rule(
                    chain,
                    vec![
                        matcher(
                            "==",
                            json!({"&": [meta("mark"), RETURN_MASK]}),
                            json!(RETURN_MARK),
                        ),
                        json!({"accept": null}),
                    ],
                    None,
                );
            }
        }
        if numbered
            .iter()
            .any(|r| r.rule.action == Action::Count && r.rule.direction == d)
        {
            b.rule(
                chain,
                vec![json!({"jump": {"target": format!("count_{chain}")}})],
                None,
            );
        }
        // State bound to interfaces, as IPFilter's entries are.
        bind_state_to_interfaces(&mut b, d, iface);
        // State table first, like IPFilter.
        for r in numbered
            .iter()
            .filter(|r| r.rule.keep_state && r.rule.action == Action::Pass)
        {
            let mut expr = vec![
                matcher(
                    "==",
                    json!({"ct": {"key": "mark"}}),
                    json!(STATE_MARK | r.id),
                ),
                matcher("!=", json!({"ct": {"key": "state"}}), json!("invalid")),
                json!({"counter": counter_name(r)}),
            ];
            // `log first`: only the packet that made the state.
            if r.rule.log && !r.rule.log_opts.first {
                expr.push(b.log(r, d));
            }
            if r.rule.keep_frags && d == Direction::In {
                expr.extend(keep_frags_updates());
            }
            expr.push(json!({"accept": null}));
            b.rule(
                chain,
                expr,
                Some(format!("state of ipf line {}", r.rule.line)),
            );
        }
        // State made under an earlier ruleset (ids moved or rule gone)
        // lives on, as IPFilter's state table does across `ipf -f` unless
        // flushed (`ipf -FS`).
        b.rule(
            chain,
            vec![
                matcher(
                    "==",
                    json!({"&": [{"ct": {"key": "mark"}}, STATE_MARK]}),
                    json!(STATE_MARK),
                ),
                matcher("!=", json!({"ct": {"key": "state"}}), json!("invalid")),
                json!({"accept": null}),
            ],
            Some("state of an earlier ruleset".to_string()),
        );
        b.rule(
            chain,
            vec![json!({"goto": {"target": format!("{chain}_rules")}})],
            None,
        );
    }

    // Out log lines after source NAT (OutLog::AfterNat): srcnat is at 100.
    if !b.out_logs.is_empty() {
        if b.out_logs.len() >= (OUT_LOG_MASK >> 20) as usize {
            return Err(CompileError::Unsupported {
                line: 0,
                what: "more than 4094 distinct logging `out` pass rules",
            });
        }
        b.base_chain("out_log", "postrouting", 150);
        for (i, prefix) in b.out_logs.clone().iter().enumerate() {
            b.rule(
                "out_log",
                vec![
                    matcher(
                        "==",
                        json!({"&": [meta("mark"), OUT_LOG_MASK]}),
                        json!((i as u32 + 1) << 20),
                    ),
                    json!({"log": {"prefix": prefix, "group": opts.nflog_group}}),
                    json!({"mangle": {"key": {"meta": {"key": "mark"}}, "value":
                        {"&": [meta("mark"), !OUT_LOG_MASK]}}}),
                ],
                Some("logged by an out rule, after NAT".to_string()),
            );
        }
    }

    compile_nat(&mut b, ipnat, &mut infos)?;
    Ok(CompiledPolicy {
        ruleset: json!({ "nftables": b.cmds }),
        rules: infos,
    })
}

fn nat_protos(p: RdrProto) -> (&'static [&'static str], &'static str) {
    match p {
        RdrProto::Tcp => (&["tcp"], "tcp"),
        RdrProto::Udp => (&["udp"], "udp"),
        RdrProto::TcpUdp => (&["tcp", "udp"], "th"),
    }
}

fn compile_nat(
    b: &mut Builder<'_>,
    ipnat: &IpnatRules,
    infos: &mut Vec<RuleInfo>,
) -> Result<(), CompileError> {
    let table = json!({"table": {"family": "ip", "name": NAT_TABLE}});
    b.cmds.push(json!({"add": table.clone()}));
    b.cmds.push(json!({"delete": table.clone()}));
    if ipnat.rules.is_empty() {
        return Ok(());
    }
    b.cmds.push(json!({"add": table}));
    for (name, hook, prio) in [
        ("prerouting", "prerouting", -100),
        ("postrouting", "postrouting", 100),
    ] {
        b.cmds.push(
            json!({"add": {"chain": {"family": "ip", "table": NAT_TABLE, "name": name,
            "type": "nat", "hook": hook, "prio": prio, "policy": "accept"}}}),
        );
    }
    for rule in &ipnat.rules {
        let line = rule.line();
        let counter = format!("ipnat_line_{line}");
        b.cmds.push(
            json!({"add": {"counter": {"family": "ip", "table": NAT_TABLE, "name": counter}}}),
        );
        infos.push(RuleInfo {
            line,
            file: "ipnat",
            label: format!("nat:{line}"),
            counter: counter.clone(),
            family: "ip",
            table: NAT_TABLE,
            text: rule.to_string(),
        });
        let linux = b.iface.get(line, rule.interface())?;
        let (chain, expr) = match rule {
            NatRule::Map {
                src, to, portmap, ..
            } => {
                let mut expr = vec![matcher("==", meta("oifname"), json!(linux))];
                expr.extend(addr_match("saddr", src));
                let port = match portmap {
                    None => None,
                    Some(pm) => {
                        let (protos, _) = nat_protos(pm.proto);
                        expr.push(l4proto_match(protos));
                        // `auto`: IPFilter picks ports above the reserved ones.
                        let (lo, hi) = pm.range.unwrap_or((1024, 65535));
                        Some(json!({"range": [lo, hi]}))
                    }
                };
                expr.push(json!({"counter": counter}));
                let nat = match to.network() {
                    // `0/32`: the outgoing interface's own address.
                    Some((a, 32)) if a == Ipv4Addr::UNSPECIFIED => {
                        let mut m = json!({});
                        if let Some(p) = port {
                            m["port"] = p;
                        }
                        json!({ "masquerade": m })
                    }
                    None => {
                        return Err(CompileError::Unsupported {
                            line,
                            what: "`map ... -> any`",
                        })
                    }
                    Some((net, prefix)) => {
                        let addr = if prefix == 32 {
                            json!(net.to_string())
                        } else {
                            let last = u32::from(net) | (u32::MAX >> prefix);
                            json!({"range": [net.to_string(), Ipv4Addr::from(last).to_string()]})
                        };
                        let mut m = json!({ "addr": addr });
                        if let Some(p) = port {
                            m["port"] = p;
                        }
                        json!({ "snat": m })
                    }
                };
                expr.push(nat);
                ("postrouting", expr)
            }
            NatRule::Rdr {
                dst,
                port,
                to,
                to_port,
                proto,
                ..
            } => {
                let (protos, field) = nat_protos(*proto);
                let mut expr = vec![matcher("==", meta("iifname"), json!(linux))];
                expr.extend(addr_match("daddr", dst));
                expr.push(l4proto_match(protos));
                expr.push(matcher("==", payload(field, "dport"), json!(port)));
                expr.push(json!({"counter": counter}));
                expr.push(json!({"dnat": {"addr": to.to_string(), "port": to_port}}));
                ("prerouting", expr)
            }
        };
        b.cmds.push(
            json!({"add": {"rule": {"family": "ip", "table": NAT_TABLE, "chain": chain,
            "expr": expr, "comment": format!("ipnat line {line}")}}}),
        );
    }
    Ok(())
}

/// Packets and bytes of one named counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counter {
    /// Packets counted.
    pub packets: u64,
    /// Octets counted.
    pub bytes: u64,
}

/// The named counters in `nft -j list counters` output, by name.
pub fn parse_counters(json: &[u8]) -> Result<BTreeMap<String, Counter>, serde_json::Error> {
    let doc: Value = serde_json::from_slice(json)?;
    let mut map = BTreeMap::new();
    for item in doc["nftables"].as_array().into_iter().flatten() {
        let c = &item["counter"];
        if let Some(name) = c["name"].as_str() {
            map.insert(
                name.to_string(),
                Counter {
                    packets: c["packets"].as_u64().unwrap_or(0),
                    bytes: c["bytes"].as_u64().unwrap_or(0),
                },
            );
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_ipf, parse_ipnat};

    #[test]
    fn counters_from_nft_output() {
        let json = br#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"counter": {"family": "inet", "name": "ipf_g0_in_1", "table": "tsunagi",
             "handle": 3, "packets": 2, "bytes": 120}}]}"#;
        let c = parse_counters(json).unwrap();
        assert_eq!(
            c["ipf_g0_in_1"],
            Counter {
                packets: 2,
                bytes: 120
            }
        );
        assert!(parse_counters(b"not json").is_err());
    }

    fn compile_text(ipf: &str) -> Result<CompiledPolicy, CompileError> {
        let ipf = parse_ipf(ipf).unwrap();
        let nat = parse_ipnat("").unwrap();
        compile(
            &ipf,
            &nat,
            &IfaceMap::identity(&ipf, &nat),
            &Options::default(),
        )
    }

    #[test]
    fn refusals_name_the_line() {
        let e = compile_text("pass in all\npass in proto tcp all group 7\n").unwrap_err();
        assert_eq!(
            e,
            CompileError::GroupUnreachable {
                line: 2,
                group: 7,
                direction: Direction::In
            }
        );
        let e = compile_text("block out all head 5\npass in proto tcp all group 5\n").unwrap_err();
        assert!(
            matches!(e, CompileError::GroupUnreachable { line: 2, .. }),
            "{e}"
        );
        let e = compile_text("pass in all\nskip 1 in all\n").unwrap_err();
        assert!(
            matches!(e, CompileError::Refused { line: 2, ref construct, .. } if construct == "skip 1"),
            "{e}"
        );
        let e = compile_text("block out quick all with frag\n").unwrap_err();
        assert!(
            matches!(e, CompileError::Unsupported { line: 1, .. }),
            "{e}"
        );
        let e = compile_text("pass in proto tcp from any to any port 5 >< 6\n").unwrap_err();
        assert!(
            matches!(e, CompileError::EmptyPortRange { line: 1, .. }),
            "{e}"
        );
        let e = compile_text("pass in all head 1\npass in all head 1\n").unwrap_err();
        assert_eq!(
            e,
            CompileError::HeadTwice {
                line: 2,
                first: 1,
                group: 1
            }
        );
        let ipf = parse_ipf("pass in on em0 all").unwrap();
        let e = compile(
            &ipf,
            &IpnatRules::default(),
            &IfaceMap::new(),
            &Options::default(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            CompileError::UnmappedInterface {
                line: 1,
                name: "em0".into()
            }
        );
    }

    #[test]
    fn interface_names_are_mapped() {
        let ipf = parse_ipf("block in quick on tun0 all").unwrap();
        let nat = parse_ipnat("map em0 10.0.0.0/8 -> 0/32").unwrap();
        let mut map = IfaceMap::new();
        map.insert("tun0", "tsunagi-labs").insert("em0", "eth0");
        let c = compile(&ipf, &nat, &map, &Options::default()).unwrap();
        let text = c.to_json();
        assert!(text.contains("\"tsunagi-labs\""), "{text}");
        assert!(text.contains("\"eth0\""), "{text}");
        assert!(text.contains("masquerade"), "{text}");
        assert!(!text.contains("\"tun0\""), "{text}");
        assert_eq!(map.rules_name("eth0"), Some("em0"));
    }
}
