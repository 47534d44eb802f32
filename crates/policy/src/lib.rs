//! Gateway policy in the language of IPFilter, enforced by Linux nftables.
//!
//! Seed 000 (§4.3, §4.4, appendix B.3) guards its gateway with IPFilter:
//! `ipf.rules` (filter), `ipnat.rules` (NAPT and redirection) and `ipmon`
//! log lines. This crate keeps that language and hands the filtering to the
//! kernel:
//!
//! - [`ast`]: typed rules of `ipf.conf(5)` and `ipnat.conf(5)` as seed 000
//!   uses them, with a printer (`Display`) whose output parses back to the
//!   same rules;
//! - [`parse`]: the parsers; errors name line, column and the offending token;
//! - [`mod@compile`]: one nftables JSON ruleset (tables `inet tsunagi` and
//!   `ip tsunagi_nat`) that replaces itself atomically under `nft -j -f -`;
//!   the module docs explain how IPFilter's last-match-wins, `quick`, groups
//!   and `keep state` are preserved;
//! - [`holes`]: the holes the daemon opens for its own servers (PPTP's TCP
//!   1723 and GRE) in a chain of the filter table, and the documents that
//!   change them at run time;
//! - [`ipmon`]: the log line of `ipmon(8)` from a logged packet and the
//!   prefix the compiled rule put on it.
//!
//! Readings of the seed worth knowing:
//!
//! - Rule numbers in log lines count the rules of a group and direction in
//!   file order (`ipfstat -n`): in seed 000's ipf.rules the telnet rule is
//!   `@300:5`. Appendix B.3 shows `@300:2` for telnet, so its log was taken
//!   with a different file; the format is the same.
//! - `with ipopts frag` is read as seed 000 §4.3 describes it ("options *or*
//!   fragmented"), one nftables rule per option.
//! - `port A >< B` excludes both ends as in `ipf.conf(5)`: seed 000's
//!   passive FTP range `9900 >< 9990` is 9901-9989.
//! - `out` rules match addresses before `map` (the out filter runs before
//!   NAT, HP-UX IPFilter Administrator Guide §6.1.2.1) but IPFilter writes
//!   the log record after it: appendix B.3 shows the translated source on
//!   `em0 ... OUT`. So do the log lines here by default
//!   ([`compile::OutLog`]).
//!
//! Supported besides what seed 000 uses (issue 16, each parsed, printed
//! back and compiled; [`mod@parse`] has the grammar): `block return-rst`,
//! `block return-icmp[(code)]` on `in` rules, `icmp-type T [code C]` by
//! number or name, `log first`, `log body`, `log level`, `!` before an
//! address, service names for ports (`port = ssh`: [`parse::SERVICES`] and a
//! services(5) file's, [`parse::Services`]), `count` (accounting), `head` with `quick`, `keep
//! state (limit N)`, `with short`, `with opt lsrr|ssrr|rr|rtralrt`, `on IF
//! in-via IF` on `out` rules. `log body` and `log level` are accepted and
//! change nothing here: NFLOG copies the whole packet anyway, ipmon lines
//! print no hex dump (ipmon `-x`), and every line goes to the one ipmon file
//! or the daemon's log whatever its syslog level.
//!
//! Parsed but refused by the compiler, with the line and the construct
//! named ([`CompileError::Refused`]): `skip N`, `to IF`, `dup-to IF`,
//! `fastroute`, `out-via` (on an `in` rule the outgoing interface is not
//! known yet), returns on `out` rules, `return-icmp-as-dest`, `with opt`
//! of options nftables cannot match, `keep frags` without `keep state`,
//! `!any`. Left out of the language (parse errors naming the token): IPv6
//! rules, `mask` address syntax, `tos`/`ttl`, pools, `bimap`/`map-block`,
//! `rdr` round-robin and proxies.
//!
//! No I/O here: applying the ruleset (`nft`) and reading NFLOG live in
//! `tsunagi-host`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
pub mod compile;
pub mod holes;
pub mod ipmon;
pub mod parse;

pub use ast::{
    Action, AddrMatch, BlockReturn, Direction, FilterRule, IcmpMatch, IpOpt, IpfRules, IpnatRules,
    LogOpts, NatRule, PortMap, PortMatch, PortOp, Proto, RdrProto, RouteOpt, TcpFlags, Via,
    WithOpt,
};
pub use compile::{
    compile, parse_counters, CompileError, CompiledPolicy, Counter, IfaceMap, Options, OutLog,
    RuleInfo,
};
pub use holes::{Hole, HoleProtocol, OpenHoles};
pub use ipmon::{fold_identical, format_ipmon_line, icmp_name, with_count, LogPrefix};
pub use parse::{parse_ipf, parse_ipf_with, parse_ipnat, ParseError, Services};

/// Checks shared by the fuzz target (fuzz/fuzz_targets/policy_parse.rs) and
/// its corpus replay test (tests/fuzz_corpus.rs). They panic when an
/// invariant breaks, which is what a fuzzer looks for; nothing else in the
/// crate calls them.
pub mod fuzzing {
    use crate::{compile, parse_ipf, parse_ipnat, IfaceMap, IpfRules, IpnatRules, Options};

    /// Arbitrary bytes as `ipf.rules` and as `ipnat.rules`: the parsers
    /// return a value or an error; whatever parses prints to text that
    /// parses back to the same rules, and compiles or is refused with an
    /// error.
    pub fn policy_parse(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(rules) = parse_ipf(text) {
            let printed = rules.to_string();
            let again = parse_ipf(&printed)
                .unwrap_or_else(|e| panic!("printed ipf rules do not parse: {e}\n{printed}"));
            assert_eq!(again, rules, "ipf print/parse round trip of\n{printed}");
            let map = IfaceMap::identity(&rules, &IpnatRules::default());
            let _ = compile(&rules, &IpnatRules::default(), &map, &Options::default());
        }
        if let Ok(rules) = parse_ipnat(text) {
            let printed = rules.to_string();
            let again = parse_ipnat(&printed)
                .unwrap_or_else(|e| panic!("printed ipnat rules do not parse: {e}\n{printed}"));
            assert_eq!(again, rules, "ipnat print/parse round trip of\n{printed}");
            let map = IfaceMap::identity(&IpfRules::default(), &rules);
            let _ = compile(&IpfRules::default(), &rules, &map, &Options::default());
        }
    }
}
