//! pptpd.conf (pptpd.conf(5); seed 001's `option /etc/ppp/options.pptpd`,
//! seed 004's `localip`, `remoteip`, `debug`): one `[server.NAME]` with
//! `protocol = "pptp"`, the pppd options file named by `option` applied to
//! it.

use super::emit::{Origin, Section, Value};
use super::{words, Ctx, Reason};

/// One directive, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `option FILE`: pppd's options file.
    Option(String),
    /// `localip LIST`.
    Localip(String),
    /// `remoteip LIST`.
    Remoteip(String),
    /// `listen ADDR`.
    Listen(String),
    /// `connections N`.
    Connections(String),
    /// `debug`.
    Debug,
    /// Anything else (its word).
    Other(String),
}

/// A directive with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line.
    pub line: usize,
    /// As written.
    pub text: String,
    /// The directive.
    pub directive: Directive,
}

/// Parses pptpd.conf (sans-IO).
pub fn parse(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let w = words(raw, true);
        let Some(first) = w.first() else { continue };
        let arg = w.get(1).cloned();
        let directive = match (first.as_str(), arg, w.len()) {
            ("option", Some(a), 2) => Directive::Option(a),
            ("localip", Some(a), 2) => Directive::Localip(a),
            ("remoteip", Some(a), 2) => Directive::Remoteip(a),
            ("listen", Some(a), 2) => Directive::Listen(a),
            ("connections", Some(a), 2) => Directive::Connections(a),
            ("debug", None, 1) => Directive::Debug,
            (w, _, _) => Directive::Other(w.to_string()),
        };
        out.push(Line {
            line: i + 1,
            text: raw.trim().to_string(),
            directive,
        });
    }
    out
}

/// Converts into `section`; returns the `option` file named, with its line.
pub fn apply(
    ctx: &mut Ctx,
    file: usize,
    lines: &[Line],
    section: &mut Section,
) -> Option<(usize, String)> {
    let mut option = None;
    section.set("protocol", Value::Str("pptp".into()), section.origin);
    for l in lines {
        let at = Origin { file, line: l.line };
        let left = |ctx: &mut Ctx, r: Reason| ctx.left(file, Some(l.line), &l.text, r);
        match &l.directive {
            Directive::Option(f) => option = Some((l.line, f.clone())),
            Directive::Localip(v) => section.set("localip", Value::Str(v.clone()), at),
            Directive::Remoteip(v) => section.set("remoteip", Value::Str(v.clone()), at),
            Directive::Listen(a) => match a.parse::<std::net::Ipv4Addr>() {
                Ok(_) => section.set("listen", Value::Str(a.clone()), at),
                Err(_) => left(ctx, Reason::BadValue("not an IPv4 address")),
            },
            Directive::Connections(n) => match n.parse::<u64>() {
                Ok(v) if v > 0 => section.set("connections", Value::Int(v), at),
                _ => left(ctx, Reason::BadValue("not a count from 1")),
            },
            Directive::Debug => left(
                ctx,
                Reason::NoEquivalent("debug logs come with RUST_LOG=debug"),
            ),
            Directive::Other(_) => left(ctx, Reason::Unknown),
        }
    }
    option
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds() {
        let l = parse(include_str!("testdata/seed001/pptpd.conf"));
        assert_eq!(
            l[0].directive,
            Directive::Option("/etc/ppp/options.pptpd".into())
        );
        let l = parse(include_str!("testdata/seed004/pptpd.conf"));
        let d: Vec<_> = l.iter().map(|l| l.directive.clone()).collect();
        assert_eq!(
            d,
            [
                Directive::Localip("192.168.0.100".into()),
                Directive::Remoteip("192.168.0.101-119".into()),
                Directive::Debug
            ]
        );
    }
}
