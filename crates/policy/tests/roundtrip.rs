//! parse(print(rules)) == rules for generated rule sets, and the compiler
//! never panics on what the parser accepts.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use tsunagi_policy::ast::{
    Action, AddrMatch, BlockReturn, Direction, FilterRule, IcmpMatch, IpOpt, IpfRules, IpnatRules,
    LogOpts, NatRule, PortMap, PortMatch, PortOp, Proto, RdrProto, RouteOpt, TcpFlags, Via,
    WithOpt,
};
use tsunagi_policy::{compile, parse_ipf, parse_ipnat, IfaceMap, Options};

fn addr() -> impl Strategy<Value = AddrMatch> {
    prop_oneof![
        Just(AddrMatch::Any),
        (any::<u32>(), 0u8..=32).prop_map(|(a, prefix)| AddrMatch::Net {
            addr: Ipv4Addr::from(a),
            prefix
        }),
    ]
}

fn port() -> impl Strategy<Value = PortMatch> {
    let op = prop_oneof![
        Just(PortOp::Eq),
        Just(PortOp::Ne),
        Just(PortOp::Lt),
        Just(PortOp::Gt),
        Just(PortOp::Le),
        Just(PortOp::Ge)
    ];
    prop_oneof![
        (op, any::<u16>()).prop_map(|(o, n)| PortMatch::Cmp(o, n)),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortMatch::Inside(a, b)),
        (any::<u16>(), any::<u16>()).prop_map(|(a, b)| PortMatch::Outside(a, b)),
    ]
}

fn iface() -> impl Strategy<Value = String> {
    "[a-z]{1,5}[0-9]{0,2}"
}

fn proto() -> impl Strategy<Value = Option<Proto>> {
    prop_oneof![
        Just(None),
        Just(Some(Proto::Tcp)),
        Just(Some(Proto::Udp)),
        Just(Some(Proto::TcpUdp)),
        Just(Some(Proto::Icmp)),
        any::<u8>()
            .prop_filter("named protocols print by name", |n| !matches!(
                n,
                1 | 6 | 17
            ))
            .prop_map(|n| Some(Proto::Number(n))),
    ]
}

/// [`extras_inner`] behind a box: the value tree of one flat strategy this
/// wide overflows a test thread's stack in debug builds.
fn extras() -> BoxedStrategy<Extras> {
    extras_inner().boxed()
}

/// The constructs beyond seed 000 (issue 16's list).
#[derive(Debug, Clone)]
struct Extras {
    ret: Option<BlockReturn>,
    log_opts: LogOpts,
    via: Option<Via>,
    route: Option<RouteOpt>,
    src_not: bool,
    dst_not: bool,
    icmp: Option<IcmpMatch>,
    state_limit: Option<u32>,
    opt: Option<IpOpt>,
}

fn icmp_code() -> impl Strategy<Value = Option<u8>> {
    proptest::option::of(any::<u8>())
}

prop_compose! {
    fn extras_inner()(
        ret in proptest::option::of(prop_oneof![
            Just(BlockReturn::Rst),
            icmp_code().prop_map(BlockReturn::Icmp),
            icmp_code().prop_map(BlockReturn::IcmpAsDest),
        ]),
        body in any::<bool>(),
        first in any::<bool>(),
        level in proptest::option::of(prop_oneof![
            Just("info".to_string()),
            Just("local0.notice".to_string()),
            Just("security.debug".to_string()),
        ]),
        via in proptest::option::of(prop_oneof![
            iface().prop_map(Via::In),
            iface().prop_map(Via::Out),
        ]),
        route in proptest::option::of(prop_oneof![
            Just(RouteOpt::FastRoute),
            (iface(), proptest::option::of(any::<u32>()))
                .prop_map(|(i, a)| RouteOpt::To(i, a.map(Ipv4Addr::from))),
            (iface(), proptest::option::of(any::<u32>()))
                .prop_map(|(i, a)| RouteOpt::DupTo(i, a.map(Ipv4Addr::from))),
        ]),
        src_not in any::<bool>(),
        dst_not in any::<bool>(),
        icmp in proptest::option::of((any::<u8>(), proptest::option::of(any::<u8>()))
            .prop_map(|(ty, code)| IcmpMatch { ty, code })),
        state_limit in proptest::option::of(1u32..100_000),
        opt in proptest::option::of(proptest::sample::select(
            IpOpt::ALL.iter().map(|(o, _)| *o).collect::<Vec<_>>())),
    ) -> Extras {
        Extras {
            ret,
            log_opts: LogOpts { body, first, level },
            via,
            route,
            src_not,
            dst_not,
            icmp,
            state_limit,
            opt,
        }
    }
}

prop_compose! {
    fn filter_rule()(
        action in prop_oneof![
            Just(Action::Pass),
            Just(Action::Block),
            Just(Action::Count),
            (0u32..20).prop_map(Action::Skip),
        ],
        direction in prop_oneof![Just(Direction::In), Just(Direction::Out)],
        log in any::<bool>(),
        quick in any::<bool>(),
        interface in proptest::option::of(iface()),
        proto in proto(),
        all in any::<bool>(),
        src in addr(),
        dst in addr(),
        src_port in proptest::option::of(port()),
        dst_port in proptest::option::of(port()),
        with in proptest::sample::subsequence(vec![WithOpt::IpOpts, WithOpt::Frag, WithOpt::Short], 0..=3)
            .prop_shuffle(),
        flags in proptest::option::of((1u8..=255, proptest::option::of(1u8..=255))),
        keep_state in any::<bool>(),
        keep_frags in any::<bool>(),
        head in proptest::option::of(1u32..500),
        group in prop_oneof![Just(0u32), 1u32..500],
        x in extras().boxed(),
    ) -> FilterRule {
        let ports = proto.is_some_and(Proto::has_ports) && !all;
        let head = head.filter(|&h| h != group);
        let mut with = with;
        with.extend(x.opt.map(WithOpt::Opt));
        FilterRule {
            line: 0,
            action,
            direction,
            ret: if action == Action::Block { x.ret } else { None },
            log,
            log_opts: if log { x.log_opts } else { LogOpts::default() },
            quick,
            via: if interface.is_some() { x.via } else { None },
            interface,
            route: x.route,
            proto,
            src: if all { AddrMatch::Any } else { src },
            src_not: !all && x.src_not,
            src_port: if ports { src_port } else { None },
            dst: if all { AddrMatch::Any } else { dst },
            dst_not: !all && x.dst_not,
            dst_port: if ports { dst_port } else { None },
            all,
            with,
            icmp: if proto == Some(Proto::Icmp) { x.icmp } else { None },
            state_limit: if keep_state { x.state_limit } else { None },
            flags: if proto == Some(Proto::Tcp) {
                flags.map(|(set, mask)| TcpFlags { set, mask })
            } else {
                None
            },
            keep_state,
            keep_frags,
            head,
            group,
        }
    }
}

fn rdr_proto() -> impl Strategy<Value = RdrProto> {
    prop_oneof![
        Just(RdrProto::Tcp),
        Just(RdrProto::Udp),
        Just(RdrProto::TcpUdp)
    ]
}

fn nat_rule() -> impl Strategy<Value = NatRule> {
    prop_oneof![
        (
            iface(),
            addr(),
            addr(),
            proptest::option::of((rdr_proto(), proptest::option::of((1u16.., any::<u16>()))))
        )
            .prop_map(|(interface, src, to, pm)| NatRule::Map {
                line: 0,
                interface,
                src,
                to,
                portmap: pm.map(|(proto, range)| PortMap {
                    proto,
                    range: range.map(|(a, b)| (a.min(b.max(1)), b.max(a))),
                }),
            }),
        (
            iface(),
            addr(),
            any::<u16>(),
            any::<u32>(),
            any::<u16>(),
            proptest::option::of(rdr_proto())
        )
            .prop_map(|(interface, dst, port, to, to_port, proto)| NatRule::Rdr {
                line: 0,
                interface,
                dst,
                port,
                to: Ipv4Addr::from(to),
                to_port,
                proto: proto.unwrap_or(RdrProto::Tcp),
                proto_written: proto.is_some(),
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn ipf_print_parse_round_trip(rules in proptest::collection::vec(filter_rule(), 0..12)) {
        let rules = IpfRules { rules };
        let text = rules.to_string();
        let parsed = parse_ipf(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&parsed, &rules);
        // The line numbers are the printed lines.
        for (i, r) in parsed.rules.iter().enumerate() {
            prop_assert_eq!(r.line, i + 1);
        }
        let map = IfaceMap::identity(&parsed, &IpnatRules::default());
        let _ = compile(&parsed, &IpnatRules::default(), &map, &Options::default());
    }

    #[test]
    fn ipnat_print_parse_round_trip(rules in proptest::collection::vec(nat_rule(), 0..8)) {
        let rules = IpnatRules { rules };
        let text = rules.to_string();
        let parsed = parse_ipnat(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&parsed, &rules);
        let map = IfaceMap::identity(&IpfRules::default(), &parsed);
        let _ = compile(&IpfRules::default(), &parsed, &map, &Options::default());
    }

    #[test]
    fn parsers_take_any_text(text in "\\PC{0,200}") {
        let _ = parse_ipf(&text);
        let _ = parse_ipnat(&text);
        tsunagi_policy::fuzzing::policy_parse(text.as_bytes());
    }
}
