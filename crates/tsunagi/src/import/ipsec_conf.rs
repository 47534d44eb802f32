//! strongSwan's ipsec.conf (ipsec.conf(5); seed 002's `conn idcf`): each
//! `conn NAME` becomes `[ipsec.NAME]` with the same keys, `conn %default`
//! applied to every conn first. A conn is a line `conn NAME` at the start
//! of a line, its settings the indented `key=value` lines after it.

use super::emit::{Origin, Section, Value};
use super::{Ctx, Reason};

/// A `key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Index of the input.
    pub file: usize,
    /// 1-based line.
    pub line: usize,
    /// As written.
    pub text: String,
    /// The key.
    pub key: String,
    /// The value (quotes removed).
    pub value: String,
}

/// A section: `conn NAME`, `config setup`, `ca NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// `conn`, `config` or `ca`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its header's line.
    pub line: usize,
    /// Its settings.
    pub settings: Vec<Setting>,
}

/// Parses ipsec.conf (sans-IO); returns the blocks and the lines that fit
/// none (line, text).
pub fn parse(file: usize, text: &str) -> (Vec<Block>, Vec<(usize, String)>) {
    let mut blocks: Vec<Block> = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let t = raw.split('#').next().unwrap_or("").trim();
        if t.is_empty() {
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if !indented {
            let w: Vec<&str> = t.split_whitespace().collect();
            if let [kind @ ("conn" | "config" | "ca"), name] = w[..] {
                blocks.push(Block {
                    kind: kind.into(),
                    name: name.into(),
                    line: i + 1,
                    settings: Vec::new(),
                });
                continue;
            }
        }
        match (t.split_once('='), blocks.last_mut()) {
            (Some((k, v)), Some(b)) if indented => b.settings.push(Setting {
                file,
                line: i + 1,
                text: t.to_string(),
                key: k.trim().to_string(),
                value: v.trim().trim_matches('"').to_string(),
            }),
            _ => bad.push((i + 1, t.to_string())),
        }
    }
    (blocks, bad)
}

/// Keys whose value is copied as a string.
const STRINGS: &[&str] = &[
    "leftid",
    "rightid",
    "ike",
    "esp",
    "leftsubnet",
    "rightsubnet",
    "leftprotoport",
    "rightprotoport",
    "ikelifetime",
    "lifetime",
    "margintime",
    "dpddelay",
    "dpdtimeout",
];

fn address(v: &str, any_ok: bool) -> Option<String> {
    let ok =
        v.parse::<std::net::IpAddr>().is_ok() || v == "%defaultroute" || (any_ok && v == "%any");
    ok.then(|| v.to_string())
}

/// Converts `conn %default`'s settings then the conn's into `section`.
pub fn apply(ctx: &mut Ctx, settings: &[&Setting], section: &mut Section) {
    for s in settings {
        let at = Origin {
            file: s.file,
            line: s.line,
        };
        let left = |ctx: &mut Ctx, r: Reason| ctx.left(s.file, Some(s.line), &s.text, r);
        let yes = match s.value.as_str() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        };
        match s.key.as_str() {
            "left" | "right" => match address(&s.value, s.key == "right") {
                Some(v) => section.set(&s.key, Value::Str(v), at),
                None if super::is_placeholder(&s.value) => left(ctx, Reason::Placeholder),
                None => left(
                    ctx,
                    Reason::BadValue(
                        "not an IP address, %defaultroute or %any (tsunagi resolves no names)",
                    ),
                ),
            },
            "authby" if matches!(s.value.as_str(), "secret" | "psk") => {
                section.set("authby", Value::Str("secret".into()), at)
            }
            "authby" => left(
                ctx,
                Reason::NoEquivalent("tsunagi authenticates IKE with pre-shared keys only"),
            ),
            "keyexchange" if matches!(s.value.as_str(), "ikev1") => {}
            "keyexchange" => left(ctx, Reason::NoEquivalent("tsunagi speaks IKEv1 only")),
            "type" if matches!(s.value.as_str(), "tunnel" | "transport") => {
                section.set("type", Value::Str(s.value.clone()), at)
            }
            "auto" if matches!(s.value.as_str(), "start" | "add") => {
                section.set("auto", Value::Str(s.value.clone()), at)
            }
            "keyingtries" => match (s.value.as_str(), s.value.parse::<u64>()) {
                ("%forever", _) => section.set("keyingtries", Value::Int(0), at),
                (_, Ok(n)) => section.set("keyingtries", Value::Int(n), at),
                _ => left(ctx, Reason::BadValue("not a count or %forever")),
            },
            "dpdaction" if matches!(s.value.as_str(), "none" | "clear" | "restart") => {
                section.set("dpdaction", Value::Str(s.value.clone()), at)
            }
            "forceencaps" | "leftfirewall" => match yes {
                Some(b) => section.set(&s.key, Value::Bool(b), at),
                None => left(ctx, Reason::BadValue("not yes or no")),
            },
            k if STRINGS.contains(&k) => section.set(k, Value::Str(s.value.clone()), at),
            _ => left(ctx, Reason::Unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed002_conns() {
        let (blocks, bad) = parse(0, include_str!("testdata/seed002/ipsec.conf"));
        assert!(bad.is_empty());
        assert_eq!(blocks.len(), 2);
        assert_eq!((blocks[0].name.as_str(), blocks[0].line), ("%default", 3));
        assert_eq!(blocks[0].settings[0].key, "keyingtries");
        assert_eq!(blocks[1].name, "idcf");
        assert_eq!(blocks[1].settings.len(), 11);
        assert_eq!(blocks[1].settings[2].value, "e.f.g.h");
        assert_eq!(blocks[1].settings[2].line, 9);
    }
}
