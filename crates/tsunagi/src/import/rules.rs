//! ipf.rules and ipnat.rules (IPFilter's ipf.conf(5), ipnat.conf(5);
//! seed 000 §4.3, §4.4; seed 001's borrowed-address rule): tsunagi's
//! `[policy]` reads these files itself, so the import references them by
//! path after checking them with the policy crate's parser, the one the
//! daemon uses. A file with lines it refuses is not referenced (the daemon
//! would not start with it); each refused line is reported.

use tsunagi_policy::{parse_ipf, parse_ipnat, ParseError};

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
