//! Seed 000's ipf.rules and ipnat.rules (§4.3, §4.4) through parser,
//! printer and compiler, without a network (the netns test that applies
//! them is crates/host/tests/policy_seed000.rs).

use tsunagi_policy::ast::{tcp_flag, Action, AddrMatch, Direction, PortMatch, PortOp, TcpFlags};
use tsunagi_policy::{compile, parse_ipf, parse_ipnat, IfaceMap, NatRule, Options, RdrProto};

const IPF: &str = include_str!("data/seed000_ipf.rules");
const IPNAT: &str = include_str!("data/seed000_ipnat.rules");

fn map() -> IfaceMap {
    let mut m = IfaceMap::new();
    m.insert("em0", "eth0")
        .insert("em1", "eth1")
        .insert("tun0", "tsunagi-labs")
        .insert("lo0", "lo");
    m
}

#[test]
fn seed_rules_parse_as_written() {
    let ipf = parse_ipf(IPF).expect("seed ipf.rules");
    assert_eq!(ipf.rules.len(), 24);
    let sql = &ipf.rules[12];
    assert_eq!(sql.line, 16);
    assert_eq!(sql.action, Action::Pass);
    assert_eq!(sql.direction, Direction::In);
    assert!(sql.log && sql.quick && sql.keep_state && sql.keep_frags);
    assert_eq!(
        sql.dst,
        AddrMatch::Net {
            addr: "172.16.1.100".parse().unwrap(),
            prefix: 32
        }
    );
    assert_eq!(sql.dst_port, Some(PortMatch::Cmp(PortOp::Eq, 1433)));
    assert_eq!(
        sql.flags,
        Some(TcpFlags {
            set: tcp_flag::SYN,
            mask: None
        })
    );
    assert_eq!(sql.group, 300);
    let head = &ipf.rules[8];
    assert_eq!(
        (head.action, head.head, head.interface.as_deref()),
        (Action::Block, Some(300), Some("tun0"))
    );
    assert_eq!(parse_ipf(&ipf.to_string()).unwrap(), ipf);

    let ipnat = parse_ipnat(IPNAT).expect("seed ipnat.rules");
    assert_eq!(ipnat.rules.len(), 5);
    match &ipnat.rules[4] {
        NatRule::Rdr {
            interface,
            port,
            to,
            to_port,
            proto,
            ..
        } => {
            assert_eq!(
                (interface.as_str(), *port, *to_port, *proto),
                ("em0", 53, 53, RdrProto::Tcp)
            );
            assert_eq!(to.to_string(), "192.168.1.6");
        }
        other => panic!("not an rdr: {other:?}"),
    }
    assert_eq!(parse_ipnat(&ipnat.to_string()).unwrap(), ipnat);
}

#[test]
fn seed_rules_compile_to_one_ruleset() {
    let ipf = parse_ipf(IPF).unwrap();
    let ipnat = parse_ipnat(IPNAT).unwrap();
    let c = compile(
        &ipf,
        &ipnat,
        &map(),
        &Options {
            nflog_group: 5,
            ..Options::default()
        },
    )
    .unwrap();
    let text = c.to_json();
    // Replaces itself: add, delete, add of both tables, in one document.
    let cmds = c.ruleset["nftables"].as_array().unwrap();
    let table_ops: Vec<String> = cmds
        .iter()
        .filter_map(|cmd| {
            let (op, body) = cmd.as_object()?.iter().next()?;
            let t = body.get("table")?;
            Some(format!(
                "{op} {} {}",
                t["family"].as_str()?,
                t["name"].as_str()?
            ))
        })
        .collect();
    assert_eq!(
        table_ops,
        [
            "add inet tsunagi",
            "delete inet tsunagi",
            "add inet tsunagi",
            "add ip tsunagi_nat",
            "delete ip tsunagi_nat",
            "add ip tsunagi_nat"
        ]
    );
    // Linux names only.
    for linux in ["\"eth0\"", "\"eth1\"", "\"tsunagi-labs\"", "\"lo\""] {
        assert!(text.contains(linux), "{linux} missing");
    }
    for bsd in ["\"em0\"", "\"em1\"", "\"tun0\"", "\"lo0\""] {
        assert!(!text.contains(bsd), "{bsd} leaked into the ruleset");
    }
    // ipmon prefixes carry group:rule per direction; telnet is @300:5 here.
    assert!(text.contains("\"@300:5 p IN K-S K-F\""));
    assert!(text.contains("\"@300:11 b IN\""));
    assert!(text.contains("\"@350:2 p OUT K-S K-F\""));
    assert!(text.contains("\"group\":5"));
    // One counter per source rule, named in RuleInfo.
    assert_eq!(c.rules.len(), 24 + 5);
    let telnet = c.rules.iter().find(|r| r.line == 18).unwrap();
    assert_eq!(telnet.label, "@300:5 in");
    assert_eq!(telnet.counter, "ipf_g300_in_5");
    assert!(telnet.text.contains("port = 23"));
    let removal = tsunagi_policy::CompiledPolicy::removal().to_string();
    assert!(removal.contains("delete") && removal.contains("tsunagi_nat"));
}
