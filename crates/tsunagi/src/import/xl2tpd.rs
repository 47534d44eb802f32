//! xl2tpd.conf (xl2tpd.conf(5); seed 002's `[lac idcf]`): `[lac NAME]`
//! becomes `[link.NAME]` with `mode = "l2tp"`, `[lns NAME]` a
//! `[server.NAME]` with `protocol = "l2tp"`; the `pppoptfile` named is
//! applied to it. `;` starts a comment; `key = value`, keys may hold
//! spaces (`length bit`).

use super::emit::{Origin, Section, Value};
use super::{Ctx, Reason};

/// Which section of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// `[global]`.
    Global,
    /// `[lac NAME]`.
    Lac(String),
    /// `[lns NAME]`.
    Lns(String),
    /// Another header.
    Other(String),
}

/// A `key = value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// 1-based line.
    pub line: usize,
    /// As written.
    pub text: String,
    /// The key, lower case, single spaces.
    pub key: String,
    /// The value, trimmed.
    pub value: String,
}

/// A section and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Which.
    pub part: Part,
    /// Its header's line.
    pub line: usize,
    /// Its settings.
    pub settings: Vec<Setting>,
}

/// A parsed xl2tpd.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Xl2tpdConf {
    /// The sections.
    pub blocks: Vec<Block>,
    /// Lines that are neither a header nor a setting: line, text.
    pub bad: Vec<(usize, String)>,
}

/// Parses xl2tpd.conf (sans-IO).
pub fn parse(text: &str) -> Xl2tpdConf {
    let mut conf = Xl2tpdConf::default();
    for (i, raw) in text.lines().enumerate() {
        let t = raw.split(';').next().unwrap_or("").trim();
        if t.is_empty() {
            continue;
        }
        if let Some(h) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let mut w = h.split_whitespace();
            let part = match (w.next(), w.next()) {
                (Some("global"), None) => Part::Global,
                (Some("lac"), Some(n)) => Part::Lac(n.to_string()),
                (Some("lns"), Some(n)) => Part::Lns(n.to_string()),
                _ => Part::Other(h.to_string()),
            };
            conf.blocks.push(Block {
                part,
                line: i + 1,
                settings: Vec::new(),
            });
            continue;
        }
        match (t.split_once('='), conf.blocks.last_mut()) {
            (Some((k, v)), Some(b)) => b.settings.push(Setting {
                line: i + 1,
                text: t.to_string(),
                key: k
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_lowercase(),
                value: v.trim().to_string(),
            }),
            _ => conf.bad.push((i + 1, t.to_string())),
        }
    }
    conf
}

fn yes(v: &str) -> Option<bool> {
    match v.to_lowercase().as_str() {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// Converts a `[lac]` (`lac` true) or `[lns]` block into `section`;
/// returns the `pppoptfile` named, with its line.
pub fn apply(
    ctx: &mut Ctx,
    file: usize,
    block: &Block,
    lac: bool,
    section: &mut Section,
) -> Option<(usize, String)> {
    let mut optfile = None;
    if lac {
        section.set("mode", Value::Str("l2tp".into()), section.origin);
    } else {
        section.set("protocol", Value::Str("l2tp".into()), section.origin);
    }
    for s in &block.settings {
        let at = Origin { file, line: s.line };
        let left = |ctx: &mut Ctx, r: Reason| ctx.left(file, Some(s.line), &s.text, r);
        let addr = |ctx: &mut Ctx, section: &mut Section, key: &str| {
            if s.value.parse::<std::net::Ipv4Addr>().is_ok() {
                section.set(key, Value::Str(s.value.clone()), at);
            } else if super::is_placeholder(&s.value) {
                ctx.left(file, Some(s.line), &s.text, Reason::Placeholder);
            } else {
                ctx.left(
                    file,
                    Some(s.line),
                    &s.text,
                    Reason::BadValue("not an IPv4 address (tsunagi resolves no names)"),
                );
            }
        };
        match (s.key.as_str(), lac) {
            ("lns", true) => addr(ctx, section, "lns"),
            ("local ip", true) => addr(ctx, section, "local"),
            ("local ip", false) => addr(ctx, section, "localip"),
            ("ip range", false) => section.set("remoteip", Value::Str(s.value.clone()), at),
            ("listen-addr", false) => addr(ctx, section, "listen"),
            ("pppoptfile", _) => optfile = Some((s.line, s.value.clone())),
            ("length bit", _) => match yes(&s.value) {
                Some(b) => section.set("length_bit", Value::Bool(b), at),
                None => left(ctx, Reason::BadValue("not yes or no")),
            },
            ("redial", true) => match yes(&s.value) {
                Some(b) => section.set("persist", Value::Bool(b), at),
                None => left(ctx, Reason::BadValue("not yes or no")),
            },
            // Links dial when the daemon starts.
            ("autodial", true) if yes(&s.value) == Some(true) => {}
            ("redial timeout", true) => match s.value.parse::<u64>() {
                Ok(v) if v >= 1 => section.set("redial_timeout", Value::Int(v), at),
                _ => left(ctx, Reason::BadValue("not a number of seconds from 1")),
            },
            ("max redials", true) => match s.value.parse::<u64>() {
                Ok(v) => section.set("max_redials", Value::Int(v), at),
                Err(_) => left(ctx, Reason::BadValue("not a count")),
            },
            ("hello", _) => match s.value.parse::<u64>() {
                Ok(v) => section.set("hello_interval", Value::Int(v), at),
                Err(_) => left(ctx, Reason::BadValue("not a number of seconds")),
            },
            ("name", false) => section.set("name", Value::Str(s.value.clone()), at),
            ("require authentication", false) if yes(&s.value) == Some(true) => {}
            _ => left(ctx, Reason::Unknown),
        }
    }
    optfile
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed002_lac() {
        let c = parse(include_str!("testdata/seed002/xl2tpd.conf"));
        assert!(c.bad.is_empty());
        assert_eq!(c.blocks.len(), 1);
        let b = &c.blocks[0];
        assert_eq!(b.part, Part::Lac("idcf".into()));
        assert_eq!(b.line, 3);
        let kv: Vec<_> = b
            .settings
            .iter()
            .map(|s| (s.key.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(kv[0], ("lns", "e.f.g.h"));
        assert_eq!(kv[2], ("length bit", "yes"));
        assert_eq!(kv[6], ("redial timeout", "10"));
        assert_eq!(kv[7], ("max redials", "6"));
    }
}
