//! The `ipf.conf(5)` constructs real rule files use beyond seed 000
//! (issue 16): each parses, prints back to the same rule, and compiles to
//! the nftables expression that does what ipf.conf(5) says, or is refused
//! with an error naming the construct and the line.

use serde_json::Value;
use tsunagi_policy::ast::{Action, BlockReturn, IcmpMatch, IpOpt, Via, WithOpt};
use tsunagi_policy::compile::{RETURN_MARK, RETURN_RST};
use tsunagi_policy::{compile, parse_ipf, CompileError, IfaceMap, IpnatRules, Options};

/// Parse one rule, check it prints back to `printed` and that the printed
/// text parses to the same rule.
fn rule(text: &str, printed: &str) -> tsunagi_policy::FilterRule {
    let rules = parse_ipf(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(rules.to_string(), format!("{printed}\n"), "printed form");
    assert_eq!(parse_ipf(&rules.to_string()).unwrap(), rules, "round trip");
    rules.rules[0].clone()
}

fn compiled(text: &str) -> Result<String, CompileError> {
    let ipf = parse_ipf(text).unwrap();
    let nat = IpnatRules::default();
    compile(
        &ipf,
        &nat,
        &IfaceMap::identity(&ipf, &nat),
        &Options::default(),
    )
    .map(|c| c.to_json())
}

/// The `expr` arrays of the rules of `chain` in a compiled ruleset.
fn chain_rules(json: &str, chain: &str) -> Vec<Value> {
    let doc: Value = serde_json::from_str(json).unwrap();
    doc["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["add"]["rule"]["chain"] == chain)
        .map(|c| c["add"]["rule"]["expr"].clone())
        .collect()
}

fn refused(text: &str, construct: &str, line: usize) {
    match compiled(text) {
        Err(CompileError::Refused {
            line: l,
            construct: c,
            ..
        }) => {
            assert_eq!((l, c.as_str()), (line, construct), "{text}");
        }
        other => panic!("{text}: expected a refusal of `{construct}`, got {other:?}"),
    }
    let e = compiled(text).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("line {line}: `{construct}` is refused: ")),
        "{e}"
    );
}

#[test]
fn return_rst_marks_and_rejects_with_tcp_reset() {
    let r = rule(
        "block return-rst in quick proto tcp from any to any port = 113",
        "block return-rst in quick proto tcp from any to any port = 113",
    );
    assert_eq!(r.ret, Some(BlockReturn::Rst));
    let json = compiled("block return-rst in quick proto tcp from any to any port = 113").unwrap();
    let quick = chain_rules(&json, "g0_in_quick");
    assert!(
        quick[0].to_string().contains(&format!(
            r#"{{"mangle":{{"key":{{"meta":{{"key":"mark"}}}},"value":{}}}}}"#,
            RETURN_MARK | RETURN_RST
        )),
        "{quick:?}"
    );
    for chain in ["return_input", "return_forward"] {
        let rules = chain_rules(&json, chain);
        assert!(
            rules[0]
                .to_string()
                .contains(r#"{"reject":{"type":"tcp reset"}}"#),
            "{chain}: {rules:?}"
        );
    }
    refused("block return-rst out all", "return-rst", 1);
}

#[test]
fn return_icmp_with_and_without_a_code() {
    let r = rule(
        "block return-icmp(host-unr) in proto udp all",
        "block return-icmp(host-unr) in proto udp all",
    );
    assert_eq!(r.ret, Some(BlockReturn::Icmp(Some(1))));
    let r = rule(
        "block return-icmp( 13 ) in all",
        "block return-icmp(filter-prohib) in all",
    );
    assert_eq!(r.ret, Some(BlockReturn::Icmp(Some(13))));
    let r = rule("block return-icmp in all", "block return-icmp in all");
    assert_eq!(r.ret, Some(BlockReturn::Icmp(None)));
    let json = compiled("block return-icmp(host-unr) in all\nblock return-icmp in all\n").unwrap();
    let rules = chain_rules(&json, "return_forward");
    let text = Value::Array(rules).to_string();
    assert!(
        text.contains(r#"{"reject":{"expr":1,"type":"icmp"}}"#),
        "{text}"
    );
    // Without a code: port unreachable.
    assert!(
        text.contains(r#"{"reject":{"expr":3,"type":"icmp"}}"#),
        "{text}"
    );
    rule(
        "block return-icmp-as-dest(port-unr) in all",
        "block return-icmp-as-dest(port-unr) in all",
    );
    refused(
        "block return-icmp-as-dest(port-unr) in all",
        "return-icmp-as-dest",
        1,
    );
    assert!(parse_ipf("block return-icmp(bogus) in all").is_err());
    assert!(parse_ipf("pass return-rst in all").is_err());
}

#[test]
fn icmp_type_by_number_and_name_with_code() {
    let r = rule(
        "pass in proto icmp all icmp-type 8",
        "pass in proto icmp all icmp-type echo",
    );
    assert_eq!(r.icmp, Some(IcmpMatch { ty: 8, code: None }));
    let r = rule(
        "block in proto icmp from any to any icmp-type unreach code 4",
        "block in proto icmp from any to any icmp-type unreach code 4",
    );
    assert_eq!(
        r.icmp,
        Some(IcmpMatch {
            ty: 3,
            code: Some(4)
        })
    );
    rule(
        "pass in proto icmp all icmp-type 42",
        "pass in proto icmp all icmp-type 42",
    );
    let json = compiled("block in quick proto icmp all icmp-type unreach code 4").unwrap();
    let text = chain_rules(&json, "g0_in_quick")[0].to_string();
    assert!(
        text.contains(
            r#""left":{"payload":{"field":"type","protocol":"icmp"}},"op":"==","right":3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#""left":{"payload":{"field":"code","protocol":"icmp"}},"op":"==","right":4"#
        ),
        "{text}"
    );
    let e = parse_ipf("pass in proto tcp all icmp-type echo").unwrap_err();
    assert_eq!(e.found, "`icmp-type`");
}

#[test]
fn log_options() {
    let r = rule(
        "block in log first body level local0.info quick all",
        "block in log body first level local0.info quick all",
    );
    assert!(r.log && r.log_opts.first && r.log_opts.body);
    assert_eq!(r.log_opts.level.as_deref(), Some("local0.info"));
    assert!(parse_ipf("block in log level nowhere.info all").is_err());
    // `log first` of a kept state: the state rule does not log.
    let json = compiled(
        "pass in log first quick proto tcp all flags S keep state\npass in log quick proto udp all keep state\n",
    )
    .unwrap();
    let base = Value::Array(chain_rules(&json, "in")).to_string();
    assert!(!base.contains("@0:1 p IN"), "{base}");
    assert!(base.contains("@0:2 p IN"), "{base}");
    // `log` order with `quick` and `on` is free in ipf.conf(5).
    rule(
        "pass in quick log on em0 all",
        "pass in log quick on em0 all",
    );
}

#[test]
fn negation_and_service_names() {
    let r = rule(
        "pass in proto tcp from !10.0.0.0/8 to ! 192.168.1.1 port = ssh",
        "pass in proto tcp from !10.0.0.0/8 to !192.168.1.1/32 port = 22",
    );
    assert!(r.src_not && r.dst_not);
    let json = compiled("pass in quick proto tcp from !10.0.0.0/8 to any port != domain").unwrap();
    let text = chain_rules(&json, "g0_in_quick")[0].to_string();
    assert!(text.contains(r#""left":{"payload":{"field":"saddr","protocol":"ip"}},"op":"!=""#));
    assert!(text.contains(r#""op":"!=","right":53"#), "{text}");
    rule(
        "pass in proto tcp/udp from any port > www to any port domain >< https",
        "pass in proto tcp/udp from any port > 80 to any port 53 >< 443",
    );
    refused("pass in from !any to any", "!any", 1);
    let e = parse_ipf("pass in proto tcp from any to any port = nosuch").unwrap_err();
    assert_eq!(e.found, "`nosuch`");
}

#[test]
fn count_rules_are_an_accounting_list() {
    let r = rule(
        "count in on em0 proto tcp all",
        "count in on em0 proto tcp all",
    );
    assert_eq!(r.action, Action::Count);
    let ipf = parse_ipf("pass in quick all\ncount in proto tcp all\nblock in all\n").unwrap();
    let c = compile(
        &ipf,
        &IpnatRules::default(),
        &IfaceMap::new(),
        &Options::default(),
    )
    .unwrap();
    let labels: Vec<&str> = c.rules.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["@0:1 in", "count:1 in", "@0:2 in"]);
    let json = c.to_json();
    let count = chain_rules(&json, "count_in");
    assert_eq!(count.len(), 1);
    assert!(count[0].to_string().contains("ipf_count_in_1"));
    assert!(!count[0].to_string().contains("accept"));
    // The filter list numbers without it: `block` is @0:2.
    assert!(json.contains("ipf_g0_in_2"), "{json}");
    assert!(!json.contains("ipf_g0_in_3"), "{json}");
    refused("count in log all", "count", 1);
}

#[test]
fn skip_routes_and_vias() {
    rule("skip 2 in proto tcp all", "skip 2 in proto tcp all");
    refused("pass in all\nskip 2 in proto tcp all\n", "skip 2", 2);
    rule(
        "pass in on em0 to em1:10.0.0.1 all",
        "pass in on em0 to em1:10.0.0.1 all",
    );
    refused("pass in on em0 to em1:10.0.0.1 all", "to em1", 1);
    rule("pass in dup-to em2 all", "pass in dup-to em2 all");
    refused("pass in dup-to em2 all", "dup-to em2", 1);
    rule("pass in fastroute all", "pass in fastroute all");
    refused("pass in fastroute all", "fastroute", 1);
    let r = rule(
        "pass out on em0 in-via tun0 all",
        "pass out on em0 in-via tun0 all",
    );
    assert_eq!(r.via, Some(Via::In("tun0".into())));
    let json = compiled("pass out quick on em0 in-via tun0 all").unwrap();
    let text = chain_rules(&json, "g0_out_quick")[0].to_string();
    assert!(text.contains(r#""left":{"meta":{"key":"iifname"}},"op":"==","right":"tun0""#));
    assert!(text.contains(r#""left":{"meta":{"key":"oifname"}},"op":"==","right":"em0""#));
    rule(
        "pass in on em0 out-via em1 all",
        "pass in on em0 out-via em1 all",
    );
    refused("pass in on em0 out-via em1 all", "out-via em1", 1);
}

/// IPFilter's `fr_scanlist`: a `quick` head ends the walk with its own
/// verdict only when nothing in its group matched; a non-`quick` match in
/// the group replaces the head's flags (its `quick` too), and the rules
/// after the head still get their say.
#[test]
fn quick_head_ends_the_walk_only_when_its_group_matched_nothing() {
    rule(
        "block in quick on em0 all head 10",
        "block in quick on em0 all head 10",
    );
    let json = compiled(
        "block in quick on em0 all head 10\npass in proto tcp all group 10\npass in all\n",
    )
    .unwrap();
    let quick = Value::Array(chain_rules(&json, "g0_in_quick")).to_string();
    let (q, n) = (
        quick.find("g10_in_quick").unwrap(),
        quick.find("g10_in_nomatch").unwrap(),
    );
    assert!(q < n && !quick.contains("g10_in_last"), "{quick}");
    // The group's rule returns; the head's block follows it.
    let nomatch = Value::Array(chain_rules(&json, "g10_in_nomatch")).to_string();
    let (ret, drop) = (
        nomatch.find(r#"{"return":null}"#).unwrap(),
        nomatch.find(r#"{"drop":null}"#).unwrap(),
    );
    assert!(ret < drop, "{nomatch}");
    // The group's last match, in the last-match pass after `pass in all`.
    let last = Value::Array(chain_rules(&json, "g0_in_last")).to_string();
    assert!(last.contains("g10_in_last"), "{last}");
    assert!(!last.contains(r#"{"drop":null}"#), "{last}");
}

#[test]
fn keep_state_limit_counts_sessions() {
    let r = rule(
        "pass in quick proto tcp all flags S keep state (limit 5)",
        "pass in quick proto tcp all flags S keep state (limit 5)",
    );
    assert_eq!(r.state_limit, Some(5));
    let json = compiled("pass in quick proto tcp all flags S keep state (limit 5)").unwrap();
    let quick = chain_rules(&json, "g0_in_quick");
    assert!(
        quick[0]
            .to_string()
            .contains(r#"{"ct count":{"inv":true,"val":5}}"#),
        "{quick:?}"
    );
    assert!(quick[0].to_string().contains(r#"{"drop":null}"#));
    assert!(quick[1].to_string().contains(r#"{"accept":null}"#));
    assert!(parse_ipf("pass in all keep state (limit 0)").is_err());
}

#[test]
fn with_short_and_ip_options() {
    rule(
        "block in quick proto tcp all with short",
        "block in quick proto tcp all with short",
    );
    let r = rule(
        "block in quick all with opt lsrr opt ssrr",
        "block in quick all with opt lsrr opt ssrr",
    );
    assert_eq!(
        r.with,
        [WithOpt::Opt(IpOpt::Lsrr), WithOpt::Opt(IpOpt::Ssrr)]
    );
    let json = compiled("block in quick all with opt lsrr\n").unwrap();
    let text = chain_rules(&json, "g0_in_quick")[0].to_string();
    assert!(
        text.contains(r#""left":{"ip option":{"name":"lsrr"}},"op":"==","right":true"#),
        "{text}"
    );
    rule(
        "block in quick all with opt rtralrt",
        "block in quick all with opt rtralrt",
    );
    refused("block in quick all with opt ts", "with opt ts", 1);
}

#[test]
fn keep_frags_needs_keep_state() {
    refused("pass in proto udp all keep frags", "keep frags", 1);
    let json = compiled(
        "block in log quick all with frag\npass in quick proto tcp all flags S keep state keep frags\n",
    )
    .unwrap();
    // State first: the fragments of a kept session pass before the
    // `with frag` rule, and only fragments are decided before reassembly.
    let defrag = Value::Array(chain_rules(&json, "in_defrag")).to_string();
    let set = defrag.find("@keep_frags").unwrap();
    let block = defrag.find("@0:1 b IN").unwrap();
    assert!(set < block, "{defrag}");
    let base = Value::Array(chain_rules(&json, "in")).to_string();
    assert!(base.contains(r#""op":"update""#), "{base}");
}

#[test]
fn out_passes_are_logged_after_nat_unless_told_otherwise() {
    use tsunagi_policy::compile::{OutLog, OUT_LOG_MASK};
    let text =
        "pass out log quick on em0 proto tcp all flags S keep state\nblock out log on em0 all\n";
    let ipf = parse_ipf(text).unwrap();
    let nat = IpnatRules::default();
    let map = IfaceMap::identity(&ipf, &nat);
    let after = compile(&ipf, &nat, &map, &Options::default())
        .unwrap()
        .to_json();
    // The pass marks, `out_log` (after srcnat) logs and clears the mark.
    let out_log = Value::Array(chain_rules(&after, "out_log")).to_string();
    assert!(out_log.contains("@0:1 p OUT K-S"), "{out_log}");
    assert!(out_log.contains(&format!("{}", !OUT_LOG_MASK)), "{out_log}");
    assert!(after.contains(r#""hook":"postrouting","name":"out_log","policy":"accept","prio":150"#));
    let quick = Value::Array(chain_rules(&after, "g0_out_quick")).to_string();
    assert!(!quick.contains(r#""log""#), "{quick}");
    // A block is logged where it is dropped, before NAT, as in IPFilter.
    let last = Value::Array(chain_rules(&after, "g0_out_last")).to_string();
    assert!(last.contains("@0:2 b OUT"), "{last}");

    let before = compile(
        &ipf,
        &nat,
        &map,
        &Options {
            out_log: OutLog::BeforeNat,
            ..Options::default()
        },
    )
    .unwrap()
    .to_json();
    assert!(chain_rules(&before, "out_log").is_empty());
    let quick = Value::Array(chain_rules(&before, "g0_out_quick")).to_string();
    assert!(quick.contains("@0:1 p OUT K-S"), "{quick}");
    assert!(!before.contains(r#""meta":{"key":"mark"}"#), "{before}");
}
