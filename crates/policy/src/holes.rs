//! Holes for the daemon's own servers (TCP 1723 and GRE for PPTP, RFC 2637
//! section 2 and 4; UDP 1701 for an L2TP LNS, RFC 2661 section 8.1; later
//! UDP 500/4500) in table `inet tsunagi`.
//!
//! An `accept` in another nftables table does not undo a `drop` in this
//! one (every base chain on a hook sees the packet; a drop anywhere is
//! final, `nft(8)` "VERDICT STATEMENT"), so the holes live in tsunagi's own
//! table: a regular chain [`SERVICES_CHAIN`] that the `in` base chain jumps
//! to before any filter rule (right after IPv6 is let through, before the
//! state table), holding nothing but the holes. Each hole is one rule:
//!
//! ```text
//! fib daddr type local [ip daddr LOCAL] tcp dport 1723 counter name "hole_vpn_pptp_tcp1723" accept
//! fib daddr type local [ip daddr LOCAL] meta l4proto gre counter name "hole_vpn_pptp_ip47" accept
//! ```
//!
//! - Only traffic to this host (`fib daddr type local`): a hole never lets
//!   anything be forwarded.
//! - Stateless and inbound only: while a hole is open every packet to it
//!   passes, and none after it is closed (no `ct mark` is set, so nothing of
//!   it lives on in the state table). What the server sends is left to the
//!   `out` rules; a policy that blocks outbound traffic needs its own `pass
//!   out` for the server's replies. On the host's own loopback the replies
//!   cross the `in` chain as well, so a client on the server's own host is
//!   the policy's business (seed 000's `pass in quick on lo0 all`).
//! - A `with frag` rule (and the `quick` rules before it) runs earlier, in
//!   `in_defrag` (see [`mod@crate::compile`]): a hole does not let through the
//!   fragments or IP options such a rule blocks.
//!
//! The documents here replace the chain's contents in one `nft -j -f -`
//! transaction ([`update`]), create a table of its own when no policy is
//! applied ([`standalone`]) and remove it again ([`standalone_removal`]);
//! [`CompiledPolicy::ruleset_with_holes`] applies a policy together with
//! the holes open at that moment. Deciding which one to use is the host
//! crate's job (`tsunagi_host::policy_apply::HoleSet`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use crate::compile::{CompiledPolicy, FILTER_TABLE};

/// The regular chain of table `inet tsunagi` that holds the holes.
pub const SERVICES_CHAIN: &str = "services";

/// Prefix of every hole's counter name.
pub const COUNTER_PREFIX: &str = "hole_";

/// What a hole lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HoleProtocol {
    /// TCP to one port (PPTP's control connection: 1723).
    Tcp {
        /// Destination port.
        port: u16,
    },
    /// UDP to one port (IKE 500, NAT-T 4500, L2TP 1701).
    Udp {
        /// Destination port.
        port: u16,
    },
    /// A whole IP protocol (GRE: 47, ESP: 50).
    Ip {
        /// IP protocol number (IANA "Assigned Internet Protocol Numbers").
        number: u8,
    },
}

impl HoleProtocol {
    /// GRE, IP protocol 47 (PPTP's data channel, RFC 2637 section 4).
    pub const GRE: HoleProtocol = HoleProtocol::Ip { number: 47 };
    /// ESP, IP protocol 50 (RFC 4303 s2).
    pub const ESP: HoleProtocol = HoleProtocol::Ip { number: 50 };
}

impl fmt::Display for HoleProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoleProtocol::Tcp { port } => write!(f, "tcp port {port}"),
            HoleProtocol::Udp { port } => write!(f, "udp port {port}"),
            HoleProtocol::Ip { number: 47 } => write!(f, "gre (ip protocol 47)"),
            HoleProtocol::Ip { number: 50 } => write!(f, "esp (ip protocol 50)"),
            HoleProtocol::Ip { number } => write!(f, "ip protocol {number}"),
        }
    }
}

/// One hole: a protocol (and port) to this host, or to one of its
/// addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hole {
    /// What it is for, e.g. `pptp`: part of the counter's name and the
    /// log lines.
    pub name: String,
    /// What it lets in.
    pub protocol: HoleProtocol,
    /// Only to this address (the server's listen address); `None`: to any
    /// address of this host.
    pub local: Option<Ipv4Addr>,
    /// Only from this address (an IPsec connection's `right`); `None`:
    /// from anywhere.
    pub remote: Option<Ipv4Addr>,
}

impl Hole {
    /// The two holes of a PPTP server listening on `local` (or on every
    /// address): TCP 1723 for the control connection (RFC 2637 section 2.1)
    /// and GRE for the data (section 4).
    pub fn pptp(local: Option<Ipv4Addr>) -> [Hole; 2] {
        [
            Hole {
                name: "pptp".into(),
                protocol: HoleProtocol::Tcp { port: 1723 },
                local,
                remote: None,
            },
            Hole {
                name: "pptp".into(),
                protocol: HoleProtocol::GRE,
                local,
                remote: None,
            },
        ]
    }

    /// The holes of IPsec connection to `local` from `remote` (`None`:
    /// `right = "%any"`): IKE on UDP 500 (RFC 2409 s1), NAT-T on UDP 4500
    /// (RFC 3947 s4, RFC 3948 s2) and ESP (RFC 4303), as strongSwan's
    /// `leftfirewall=yes` opens them.
    pub fn ipsec(local: Option<Ipv4Addr>, remote: Option<Ipv4Addr>) -> [Hole; 3] {
        [
            HoleProtocol::Udp { port: 500 },
            HoleProtocol::Udp { port: 4500 },
            HoleProtocol::ESP,
        ]
        .map(|protocol| Hole {
            name: "ipsec".into(),
            protocol,
            local,
            remote,
        })
    }

    /// An L2TP LNS's hole: UDP 1701 (RFC 2661 section 8.1), to `local`
    /// or to any address of this host.
    pub fn l2tp(local: Option<Ipv4Addr>) -> Hole {
        Hole {
            name: "l2tp".into(),
            protocol: HoleProtocol::Udp { port: 1701 },
            local,
            remote: None,
        }
    }
}

impl fmt::Display for Hole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ", self.name, self.protocol)?;
        if let Some(r) = self.remote {
            write!(f, "from {r} ")?;
        }
        match self.local {
            Some(a) => write!(f, "to {a}"),
            None => write!(f, "to this host"),
        }
    }
}

/// The holes of every server, by server name.
pub type OpenHoles = BTreeMap<String, Vec<Hole>>;

/// `[A-Za-z0-9_]` kept, anything else `_`: counter names stay plain
/// identifiers in `nft list` output.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The name of the counter of `server`'s `hole`, e.g.
/// `hole_vpn_pptp_tcp1723`, `hole_vpn_pptp_ip47_192_0_2_1`. Names are
/// sanitized (see `sanitize`), so two servers whose names differ only in
/// punctuation share counters.
pub fn counter_name(server: &str, hole: &Hole) -> String {
    let protocol = match hole.protocol {
        HoleProtocol::Tcp { port } => format!("tcp{port}"),
        HoleProtocol::Udp { port } => format!("udp{port}"),
        HoleProtocol::Ip { number } => format!("ip{number}"),
    };
    let mut name = format!(
        "{COUNTER_PREFIX}{}_{}_{protocol}",
        sanitize(server),
        sanitize(&hole.name)
    );
    if let Some(local) = hole.local {
        name.push('_');
        name.push_str(&sanitize(&local.to_string()));
    }
    if let Some(remote) = hole.remote {
        name.push_str("_from_");
        name.push_str(&sanitize(&remote.to_string()));
    }
    // NFT_OBJ_MAXNAMELEN is 256 with the NUL.
    name.truncate(255);
    name
}

fn matcher(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

/// The expressions of `hole`'s rule, counting into `counter`.
fn hole_expr(hole: &Hole, counter: &str) -> Vec<Value> {
    let mut expr = vec![matcher(
        json!({"fib": {"result": "type", "flags": ["daddr"]}}),
        json!("local"),
    )];
    if let Some(local) = hole.local {
        expr.push(matcher(
            json!({"payload": {"protocol": "ip", "field": "daddr"}}),
            json!(local.to_string()),
        ));
    }
    if let Some(remote) = hole.remote {
        expr.push(matcher(
            json!({"payload": {"protocol": "ip", "field": "saddr"}}),
            json!(remote.to_string()),
        ));
    }
    let l4proto = json!({"meta": {"key": "l4proto"}});
    match hole.protocol {
        HoleProtocol::Tcp { port } | HoleProtocol::Udp { port } => {
            let proto = if matches!(hole.protocol, HoleProtocol::Tcp { .. }) {
                "tcp"
            } else {
                "udp"
            };
            expr.push(matcher(l4proto, json!(proto)));
            expr.push(matcher(
                json!({"payload": {"protocol": proto, "field": "dport"}}),
                json!(port),
            ));
        }
        HoleProtocol::Ip { number } => expr.push(matcher(l4proto, json!(number))),
    }
    expr.push(json!({"counter": counter}));
    expr.push(json!({"accept": null}));
    expr
}

/// Every (counter, rule) of `holes`, each counter once.
fn hole_rules(holes: &OpenHoles) -> Vec<(String, Value)> {
    let mut seen = BTreeSet::new();
    let mut rules = Vec::new();
    for (server, list) in holes {
        for hole in list {
            let counter = counter_name(server, hole);
            if !seen.insert(counter.clone()) {
                continue;
            }
            let rule = json!({"add": {"rule": {
                "family": "inet", "table": FILTER_TABLE, "chain": SERVICES_CHAIN,
                "expr": hole_expr(hole, &counter),
                "comment": format!("hole of server {server}: {hole}"),
            }}});
            rules.push((counter, rule));
        }
    }
    rules
}

/// The counters of `holes`.
pub fn counter_names(holes: &OpenHoles) -> BTreeSet<String> {
    hole_rules(holes).into_iter().map(|(c, _)| c).collect()
}

/// `add counter` for each counter, then the rules (the services chain
/// must exist and be empty).
fn fill(cmds: &mut Vec<Value>, holes: &OpenHoles) {
    let rules = hole_rules(holes);
    for (counter, _) in &rules {
        // `add` leaves an existing counter (and its numbers) as it is.
        cmds.push(json!({"add": {"counter": {
            "family": "inet", "table": FILTER_TABLE, "name": counter}}}));
    }
    cmds.extend(rules.into_iter().map(|(_, rule)| rule));
}

fn chain(name: &str) -> Value {
    json!({"chain": {"family": "inet", "table": FILTER_TABLE, "name": name}})
}

fn document(cmds: Vec<Value>) -> Value {
    let mut all = vec![json!({"metainfo": {"json_schema_version": 1}})];
    all.extend(cmds);
    json!({ "nftables": all })
}

/// The commands that add the (empty) services chain: [`mod@crate::compile`]
/// puts them in every ruleset before the `in` chain jumps to it.
pub(crate) fn services_chain() -> Value {
    json!({ "add": chain(SERVICES_CHAIN) })
}

/// The rule of the `in` base chain that jumps to the services chain.
pub(crate) fn jump_to_services() -> Value {
    json!({"jump": {"target": SERVICES_CHAIN}})
}

/// Replace the services chain's contents of an existing table `inet
/// tsunagi` with `after`, in one transaction: the chain is flushed and
/// refilled, so no packet ever meets a half-made set of holes; counters of
/// holes in `before` but not in `after` are deleted, the others keep their
/// numbers. Fails (changing nothing) if the table does not exist.
pub fn update(before: &OpenHoles, after: &OpenHoles) -> Value {
    let mut cmds = vec![
        json!({ "add": chain(SERVICES_CHAIN) }),
        json!({ "flush": chain(SERVICES_CHAIN) }),
    ];
    let keep = counter_names(after);
    for gone in counter_names(before).difference(&keep) {
        cmds.push(json!({"delete": {"counter": {
            "family": "inet", "table": FILTER_TABLE, "name": gone}}}));
    }
    fill(&mut cmds, after);
    document(cmds)
}

/// Table `inet tsunagi` for holes alone, when no policy is applied: an `in`
/// base chain (prerouting, priority 0, policy accept, as a compiled
/// policy's) that only jumps to the services chain, which holds `holes`.
/// For a table that does not exist yet: on an existing one it would add a
/// second jump.
pub fn standalone(holes: &OpenHoles) -> Value {
    let mut cmds = vec![
        json!({"add": {"table": {"family": "inet", "name": FILTER_TABLE}}}),
        json!({"add": {"chain": {
            "family": "inet", "table": FILTER_TABLE, "name": "in",
            "type": "filter", "hook": "prerouting", "prio": 0, "policy": "accept"}}}),
        json!({ "add": chain(SERVICES_CHAIN) }),
        json!({"add": {"rule": {
            "family": "inet", "table": FILTER_TABLE, "chain": "in",
            "expr": [jump_to_services()]}}}),
    ];
    fill(&mut cmds, holes);
    document(cmds)
}

/// Remove table `inet tsunagi` (absent is not an error): the end of a
/// [`standalone`] table. Table `ip tsunagi_nat` is not touched.
pub fn standalone_removal() -> Value {
    let table = json!({"table": {"family": "inet", "name": FILTER_TABLE}});
    document(vec![
        json!({ "add": table.clone() }),
        json!({ "delete": table }),
    ])
}

impl CompiledPolicy {
    /// The ruleset with `holes` in its services chain, so that applying a
    /// policy (which replaces table `inet tsunagi`) keeps the holes open in
    /// the same transaction.
    pub fn ruleset_with_holes(&self, holes: &OpenHoles) -> Value {
        let mut ruleset = self.ruleset.clone();
        if let Some(cmds) = ruleset["nftables"].as_array_mut() {
            fill(cmds, holes);
        }
        ruleset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile, parse_ipf, IfaceMap, IpnatRules, Options};

    fn vpn(local: Option<Ipv4Addr>) -> OpenHoles {
        OpenHoles::from([("vpn".to_string(), Hole::pptp(local).to_vec())])
    }

    /// The rules `doc` adds to `chain`.
    fn rules_of<'a>(doc: &'a Value, chain: &str) -> Vec<&'a Value> {
        doc["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.get("add")?.get("rule"))
            .filter(|r| r["chain"] == chain)
            .collect()
    }

    /// The commands of `doc` as `OP KIND [NAME]` lines.
    fn ops(doc: &Value) -> Vec<String> {
        doc["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|cmd| cmd.get("metainfo").is_none())
            .filter_map(|cmd| {
                let (op, body) = cmd.as_object()?.iter().next()?;
                let (kind, obj) = body.as_object()?.iter().next()?;
                let name = obj
                    .get("name")
                    .or_else(|| obj.get("chain"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                Some(format!("{op} {kind} {name}").trim_end().to_string())
            })
            .collect()
    }

    #[test]
    fn pptp_holes_compile_to_two_local_rules() {
        let holes = vpn(None);
        let doc = update(&OpenHoles::new(), &holes);
        let rules = rules_of(&doc, SERVICES_CHAIN);
        assert_eq!(rules.len(), 2);
        let fib = json!({"match": {"op": "==",
            "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}});
        assert_eq!(
            rules[0]["expr"],
            json!([
                fib,
                {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
                {"match": {"op": "==",
                    "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 1723}},
                {"counter": "hole_vpn_pptp_tcp1723"},
                {"accept": null}
            ])
        );
        assert_eq!(
            rules[1]["expr"],
            json!([
                fib,
                {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": 47}},
                {"counter": "hole_vpn_pptp_ip47"},
                {"accept": null}
            ])
        );
        assert_eq!(
            rules[0]["comment"],
            "hole of server vpn: pptp: tcp port 1723 to this host"
        );
        assert_eq!(
            ops(&doc),
            [
                "add chain services",
                "flush chain services",
                "add counter hole_vpn_pptp_tcp1723",
                "add counter hole_vpn_pptp_ip47",
                "add rule services",
                "add rule services",
            ]
        );
    }

    #[test]
    fn a_listen_address_narrows_the_hole() {
        let local = Ipv4Addr::new(192, 0, 2, 1);
        let doc = update(&OpenHoles::new(), &vpn(Some(local)));
        let rules = rules_of(&doc, SERVICES_CHAIN);
        assert_eq!(
            rules[1]["expr"][1],
            json!({"match": {"op": "==",
                "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "192.0.2.1"}})
        );
        assert_eq!(
            rules[1]["expr"][3],
            json!({"counter": "hole_vpn_pptp_ip47_192_0_2_1"})
        );
        assert_eq!(
            Hole::pptp(Some(local))[1].to_string(),
            "pptp: gre (ip protocol 47) to 192.0.2.1"
        );
        let udp = Hole {
            name: "l2tp".into(),
            protocol: HoleProtocol::Udp { port: 1701 },
            local: None,
            remote: None,
        };
        let expr = hole_expr(&udp, "c");
        assert_eq!(expr[1]["match"]["right"], "udp");
        assert_eq!(expr[2]["match"]["left"]["payload"]["protocol"], "udp");
        assert_eq!(expr[2]["match"]["right"], 1701);
    }

    #[test]
    fn closing_deletes_only_the_closed_counters() {
        let mut before = vpn(None);
        before.insert(
            "l2tp".into(),
            vec![Hole {
                name: "l2tp".into(),
                protocol: HoleProtocol::Udp { port: 1701 },
                local: None,
                remote: None,
            }],
        );
        let after = vpn(None);
        let doc = update(&before, &after);
        let lines = ops(&doc);
        assert_eq!(
            lines[..4],
            [
                "add chain services",
                "flush chain services",
                "delete counter hole_l2tp_l2tp_udp1701",
                "add counter hole_vpn_pptp_tcp1723",
            ]
        );
        assert_eq!(rules_of(&doc, SERVICES_CHAIN).len(), 2);
        // The last hole closed: an empty chain, both counters gone.
        let doc = update(&after, &OpenHoles::new());
        assert_eq!(
            ops(&doc),
            [
                "add chain services",
                "flush chain services",
                "delete counter hole_vpn_pptp_ip47",
                "delete counter hole_vpn_pptp_tcp1723",
            ]
        );
    }

    #[test]
    fn ipsec_holes_match_the_peer_as_source() {
        let local = Ipv4Addr::new(10, 201, 1, 1);
        let peer = Ipv4Addr::new(10, 201, 1, 2);
        let holes = Hole::ipsec(Some(local), Some(peer));
        assert_eq!(
            holes[2].to_string(),
            "ipsec: esp (ip protocol 50) from 10.201.1.2 to 10.201.1.1"
        );
        assert_eq!(
            counter_name("site", &holes[1]),
            "hole_site_ipsec_udp4500_10_201_1_1_from_10_201_1_2"
        );
        let open = OpenHoles::from([("site".to_string(), holes.to_vec())]);
        let doc = update(&OpenHoles::new(), &open);
        let rules = rules_of(&doc, SERVICES_CHAIN);
        assert_eq!(rules.len(), 3);
        let text = serde_json::to_string(&rules[2]).unwrap();
        assert!(
            text.contains("\"saddr\"") && text.contains("10.201.1.2") && text.contains("50"),
            "{text}"
        );
        // `right = "%any"`: from anywhere.
        let any = Hole::ipsec(None, None);
        assert!(!serde_json::to_string(&hole_expr(&any[0], "c"))
            .unwrap()
            .contains("saddr"));
    }

    #[test]
    fn names_are_sanitized_and_duplicates_merged() {
        let hole = Hole {
            name: "pptp gre!".into(),
            protocol: HoleProtocol::GRE,
            local: None,
            remote: None,
        };
        assert_eq!(
            counter_name("my-vpn.1", &hole),
            "hole_my_vpn_1_pptp_gre__ip47"
        );
        let twice = OpenHoles::from([("v".to_string(), vec![hole.clone(), hole])]);
        assert_eq!(
            rules_of(&update(&OpenHoles::new(), &twice), SERVICES_CHAIN).len(),
            1
        );
        let long = Hole {
            name: "x".repeat(400),
            protocol: HoleProtocol::GRE,
            local: None,
            remote: None,
        };
        assert_eq!(counter_name("v", &long).len(), 255);
    }

    #[test]
    fn standalone_table_is_in_chain_and_services_only() {
        let doc = standalone(&vpn(None));
        assert_eq!(
            ops(&doc),
            [
                "add table tsunagi",
                "add chain in",
                "add chain services",
                "add rule in",
                "add counter hole_vpn_pptp_tcp1723",
                "add counter hole_vpn_pptp_ip47",
                "add rule services",
                "add rule services",
            ]
        );
        let chain = &doc["nftables"][2]["add"]["chain"];
        assert_eq!(
            (
                &chain["type"],
                &chain["hook"],
                &chain["prio"],
                &chain["policy"]
            ),
            (
                &json!("filter"),
                &json!("prerouting"),
                &json!(0),
                &json!("accept")
            )
        );
        assert_eq!(
            rules_of(&doc, "in")[0]["expr"],
            json!([{"jump": {"target": "services"}}])
        );
        assert_eq!(
            ops(&standalone_removal()),
            ["add table tsunagi", "delete table tsunagi"]
        );
    }

    #[test]
    fn a_policy_jumps_to_the_holes_before_its_rules_and_keeps_them() {
        let ipf = parse_ipf("block in all\n").unwrap();
        let nat = IpnatRules::default();
        let c = compile(
            &ipf,
            &nat,
            &IfaceMap::identity(&ipf, &nat),
            &Options::default(),
        )
        .unwrap();
        let lines = ops(&c.ruleset);
        let services = lines
            .iter()
            .position(|l| l == "add chain services")
            .unwrap();
        let in_chain = lines.iter().position(|l| l == "add chain in").unwrap();
        assert!(services < in_chain, "{lines:?}");
        let in_rules = rules_of(&c.ruleset, "in");
        assert_eq!(
            in_rules[0]["expr"][1],
            json!({"accept": null}),
            "IPv6 passes first"
        );
        assert_eq!(
            in_rules[1]["expr"],
            json!([{"jump": {"target": "services"}}]),
            "then the holes, before the state table and the rules"
        );
        assert!(rules_of(&c.ruleset, SERVICES_CHAIN).is_empty());
        // With holes: the same ruleset, the holes added at the end.
        let with = c.ruleset_with_holes(&vpn(None));
        let n = c.ruleset["nftables"].as_array().unwrap().len();
        assert_eq!(
            with["nftables"].as_array().unwrap()[..n],
            c.ruleset["nftables"].as_array().unwrap()[..]
        );
        assert_eq!(rules_of(&with, SERVICES_CHAIN).len(), 2);
        assert_eq!(c.ruleset_with_holes(&OpenHoles::new()), c.ruleset);
    }
}
