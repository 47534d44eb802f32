//! ipf.rules and ipnat.rules (IPFilter's ipf.conf(5), ipnat.conf(5);
//! seed 000 §4.3, §4.4; seed 001's borrowed-address rule): tsunagi's
//! `[policy]` reads these files itself, so the import references them by
//! path after checking them with the policy crate's parser, the one the
//! daemon uses, then compiled as the daemon compiles them, with
//! `[policy] interfaces` from `--interface` (the rules keep FreeBSD's
//! names, `em0`, `tun0`; `lo0` is `lo` by itself). A file with lines it
//! refuses is not referenced (the daemon would not start with it); each
//! refused line is reported.

use std::collections::BTreeMap;

use tsunagi_policy::compile::{compile, CompileError, Options};
use tsunagi_policy::{parse_ipf, parse_ipnat, IfaceMap, IpfRules, IpnatRules, ParseError};

/// Which rules language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesKind {
    /// ipf.rules: filter rules.
    Ipf,
    /// ipnat.rules: `map` and `rdr`.
    Ipnat,
}

/// Every line of `text` that the policy parser refuses, in order, with
/// its error (sans-IO). The parser stops at its first error, so each
/// refused line is blanked and the text parsed again until it passes:
/// every error is reported, not only the first.
pub fn check(kind: RulesKind, text: &str) -> Vec<ParseError> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut errors: Vec<ParseError> = Vec::new();
    loop {
        let joined = lines.join("\n");
        let result = match kind {
            RulesKind::Ipf => parse_ipf(&joined).map(|_| ()),
            RulesKind::Ipnat => parse_ipnat(&joined).map(|_| ()),
        };
        match result {
            Ok(()) => return errors,
            Err(e) => {
                let i = e.line.saturating_sub(1);
                // A blanked line that still fails means the error is not
                // the line's own (a group named before its head): stop.
                if i >= lines.len()
                    || lines[i].is_empty()
                    || errors.iter().any(|p| p.line == e.line)
                {
                    errors.push(e);
                    return errors;
                }
                lines[i].clear();
                errors.push(e);
            }
        }
    }
}

/// The parsed rules of one file.
#[derive(Debug, Clone)]
pub enum Rules {
    /// ipf.rules.
    Ipf(IpfRules),
    /// ipnat.rules.
    Ipnat(IpnatRules),
}

/// Parses a file the policy parser took (after [`check`]).
pub fn parse(kind: RulesKind, text: &str) -> Result<Rules, ParseError> {
    Ok(match kind {
        RulesKind::Ipf => Rules::Ipf(parse_ipf(text)?),
        RulesKind::Ipnat => Rules::Ipnat(parse_ipnat(text)?),
    })
}

/// The interfaces the rules name without a Linux name in `map` (`lo0`
/// has one): (line, name), in file order.
pub fn unmapped(rules: &Rules, map: &BTreeMap<String, String>) -> Vec<(usize, String)> {
    let named: Vec<(usize, &str)> = match rules {
        Rules::Ipf(r) => r
            .rules
            .iter()
            .filter_map(|r| r.interface.as_deref().map(|i| (r.line, i)))
            .collect(),
        Rules::Ipnat(r) => r.rules.iter().map(|r| (r.line(), r.interface())).collect(),
    };
    named
        .into_iter()
        .filter(|(_, i)| *i != "lo0" && !map.contains_key(*i))
        .map(|(l, i)| (l, i.to_string()))
        .collect()
}

/// Compiles the rules as the daemon does (`crate::policy`); the first
/// refusal with its line (None for a refusal this import does not know).
pub fn compile_check(
    rules: &Rules,
    map: &BTreeMap<String, String>,
) -> Option<(Option<usize>, CompileError)> {
    let mut iface = IfaceMap::new();
    iface.insert("lo0", "lo");
    for (from, to) in map {
        iface.insert(from, to);
    }
    let (empty_ipf, empty_ipnat) = (IpfRules::default(), IpnatRules::default());
    let result = match rules {
        Rules::Ipf(r) => compile(r, &empty_ipnat, &iface, &Options::default()),
        Rules::Ipnat(r) => compile(&empty_ipf, r, &iface, &Options::default()),
    };
    let e = result.err()?;
    let line = match &e {
        CompileError::UnmappedInterface { line, .. }
        | CompileError::GroupUnreachable { line, .. }
        | CompileError::HeadTwice { line, .. }
        | CompileError::EmptyPortRange { line, .. }
        | CompileError::Unsupported { line, .. } => Some(*line),
        _ => None,
    };
    Some((line, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed000_rules_pass() {
        assert!(check(RulesKind::Ipf, include_str!("testdata/seed000/ipf.rules")).is_empty());
        assert!(check(
            RulesKind::Ipnat,
            include_str!("testdata/seed000/ipnat.rules")
        )
        .is_empty());
    }

    #[test]
    fn seed001_route_to_rule_is_refused_with_its_line() {
        let e = check(RulesKind::Ipf, include_str!("testdata/seed001/ipf.rules"));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 3);
    }

    #[test]
    fn every_bad_line_is_reported() {
        let e = check(
            RulesKind::Ipf,
            "pass in all\nfrobnicate\npass out all\nbogus rule\n",
        );
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 4]);
    }
}
