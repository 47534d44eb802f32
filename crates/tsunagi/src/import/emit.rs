//! The TOML tsunagi reads, written from what the format parsers found.
//!
//! A [`Draft`] holds sections in the order the config documents them
//! (`[daemon]`, `[link.*]`, `[server.*]`, `[ipsec.*]`, `[policy]`), each
//! key once (a later line of the sources replaces an earlier one, as pppd
//! and user-ppp read their files) and with the `file:line` it came from,
//! written as a comment after the key so that an operator can check each
//! value against the file it came from.

use std::fmt::Write;

/// Where a key came from: the input's index and its 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Index into the inputs.
    pub file: usize,
    /// 1-based line.
    pub line: usize,
}

/// A value of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(u64),
    /// A boolean.
    Bool(bool),
    /// A list of strings (routes, users, methods).
    Strs(Vec<String>),
    /// A list of octets, written in hex (`escape = [0xff]`).
    Bytes(Vec<u8>),
    /// An inline table of strings (`interfaces = { em0 = "eth0" }`).
    Map(Vec<(String, String)>),
}

/// Which kind of section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `[daemon]`.
    Daemon,
    /// `[link.NAME]`.
    Link,
    /// `[server.NAME]`.
    Server,
    /// `[ipsec.NAME]`.
    Ipsec,
    /// `[policy]`.
    Policy,
}

/// One section being written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Which kind.
    pub kind: Kind,
    /// The name after the dot (empty for `[daemon]` and `[policy]`).
    pub name: String,
    /// Where the section starts in its source (for messages).
    pub origin: Origin,
    /// The keys, in the order first set.
    pub keys: Vec<(String, Value, Origin)>,
}

impl Section {
    /// A new, empty section.
    pub fn new(kind: Kind, name: &str, origin: Origin) -> Section {
        Section {
            kind,
            name: name.to_string(),
            origin,
            keys: Vec::new(),
        }
    }

    /// Sets `key`, replacing an earlier value (pppd: the last option wins).
    pub fn set(&mut self, key: &str, value: Value, origin: Origin) {
        if let Some(k) = self.keys.iter_mut().find(|k| k.0 == key) {
            k.1 = value;
            k.2 = origin;
        } else {
            self.keys.push((key.to_string(), value, origin));
        }
    }

    /// Appends to the list `key` (routes, dns, require, allow_users).
    pub fn push(&mut self, key: &str, item: &str, origin: Origin) {
        match self.keys.iter_mut().find(|k| k.0 == key) {
            Some((_, Value::Strs(list), o)) => {
                if !list.iter().any(|i| i == item) {
                    list.push(item.to_string());
                }
                *o = origin;
            }
            _ => self.set(key, Value::Strs(vec![item.to_string()]), origin),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.keys.iter().find(|k| k.0 == key).map(|k| &k.1)
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.keys.retain(|k| k.0 != key);
    }

    fn header(&self) -> String {
        match self.kind {
            Kind::Daemon => "[daemon]".into(),
            Kind::Policy => "[policy]".into(),
            Kind::Link => format!("[link.{}]", self.name),
            Kind::Server => format!("[server.{}]", self.name),
            Kind::Ipsec => format!("[ipsec.{}]", self.name),
        }
    }
}

/// A TOML basic string: `"` and `\` escaped, control characters as
/// `\uXXXX` (TOML 1.0 section "String").
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Value {
    fn toml(&self) -> String {
        match self {
            Value::Str(s) => quote(s),
            Value::Int(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Strs(l) => format!(
                "[{}]",
                l.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
            ),
            Value::Bytes(b) => format!(
                "[{}]",
                b.iter()
                    .map(|o| format!("0x{o:02x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Value::Map(m) => format!(
                "{{ {} }}",
                m.iter()
                    .map(|(k, v)| format!("{} = {}", quote(k), quote(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Every section, to be written in the config's order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The sections, in the order they were made.
    pub sections: Vec<Section>,
}

impl Draft {
    /// The section of `kind` called `name`, made (at `origin`) if new.
    pub fn section(&mut self, kind: Kind, name: &str, origin: Origin) -> &mut Section {
        let i = match self
            .sections
            .iter()
            .position(|s| s.kind == kind && s.name == name)
        {
            Some(i) => i,
            None => {
                self.sections.push(Section::new(kind, name, origin));
                self.sections.len() - 1
            }
        };
        &mut self.sections[i]
    }

    /// The section of `kind` called `name`, if there is one.
    pub fn find(&self, kind: Kind, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.kind == kind && s.name == name)
    }

    /// The TOML text: a header naming the inputs, then the sections
    /// (daemon, links, servers, ipsec, policy; by name within a kind),
    /// each key followed by `# FILE:LINE`.
    pub fn render(&self, files: &[String]) -> String {
        let mut out = String::from("# Written by `tsunagi import` from:\n");
        for f in files {
            let _ = writeln!(out, "#   {f}");
        }
        let mut order: Vec<&Section> = self.sections.iter().collect();
        order.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
        for s in order {
            if s.keys.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{}", s.header());
            // What the section is comes first, as the README writes it.
            let mut keys: Vec<&(String, Value, Origin)> = s.keys.iter().collect();
            keys.sort_by_key(|k| !matches!(k.0.as_str(), "mode" | "protocol"));
            for (key, value, origin) in keys {
                let file = files.get(origin.file).map_or("?", String::as_str);
                let _ = writeln!(out, "{key} = {}  # {file}:{}", value.toml(), origin.line);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_and_sections_ordered() {
        let o = Origin { file: 0, line: 3 };
        let mut d = Draft::default();
        d.section(Kind::Link, "b", o)
            .set("ident", Value::Str("say \"hi\"\\\t".into()), o);
        d.section(Kind::Daemon, "", o).set(
            "secrets",
            Value::Str("/etc/ppp/chap-secrets".into()),
            o,
        );
        let link = d.section(Kind::Link, "a", o);
        link.push("routes", "10.0.0.0/8", o);
        link.push("routes", "10.0.0.0/8", o);
        link.set("escape", Value::Bytes(vec![0xff]), o);
        let text = d.render(&["ppp.conf".into()]);
        let daemon = text.find("[daemon]").unwrap();
        let a = text.find("[link.a]").unwrap();
        let b = text.find("[link.b]").unwrap();
        assert!(daemon < a && a < b, "{text}");
        assert!(
            text.contains("routes = [\"10.0.0.0/8\"]  # ppp.conf:3"),
            "{text}"
        );
        assert!(text.contains("escape = [0xff]"), "{text}");
        assert!(text.contains(r#"ident = "say \"hi\"\\\u0009""#), "{text}");
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["link"]["b"]["ident"].as_str(),
            Some("say \"hi\"\\\t")
        );
    }
}
