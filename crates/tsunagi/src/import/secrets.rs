//! pppd's chap-secrets (pppd(8) "AUTHENTICATION": `client server secret
//! [addresses...]`, seeds 001 and 004) and strongSwan's ipsec.secrets
//! (ipsec.secrets(5): `[IDS] : PSK "secret"`, seed 002).
//!
//! tsunagi reads both files itself, in the same formats (`[daemon]
//! secrets`, `[daemon] ipsec_secrets`), so the import references them by
//! path and copies no secret into the config; it only checks each line,
//! reporting what tsunagi's reader would not take.

use super::words;

/// One chap-secrets entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapEntry {
    /// 1-based line.
    pub line: usize,
    /// The client column.
    pub client: String,
    /// The server column (`*`: any).
    pub server: String,
    /// The addresses column (`*`, `-` or addresses), possibly empty.
    pub addresses: Vec<String>,
}

/// What a secrets file's line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsLine<T> {
    /// An entry tsunagi takes.
    Entry(T),
    /// A line it does not: line, text, why.
    Bad(usize, String, &'static str),
}

/// Parses chap-secrets (sans-IO); the secret itself is not kept.
pub fn parse_chap(text: &str) -> Vec<SecretsLine<ChapEntry>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let w = words(raw, true);
        if w.is_empty() {
            continue;
        }
        if w.len() < 3 {
            out.push(SecretsLine::Bad(
                i + 1,
                raw.trim().to_string(),
                "needs client, server and secret",
            ));
            continue;
        }
        out.push(SecretsLine::Entry(ChapEntry {
            line: i + 1,
            client: w[0].clone(),
            server: w[1].clone(),
            addresses: w[3..].to_vec(),
        }));
    }
    out
}

/// One ipsec.secrets entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PskEntry {
    /// 1-based line.
    pub line: usize,
    /// The identities before the colon (none: any).
    pub ids: Vec<String>,
}

/// Parses ipsec.secrets (sans-IO); only PSK entries are tsunagi's.
pub fn parse_ipsec(text: &str) -> Vec<SecretsLine<PskEntry>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some((ids, rest)) = t.split_once(':') else {
            out.push(SecretsLine::Bad(
                i + 1,
                t.to_string(),
                "no `:` between the ids and the secret",
            ));
            continue;
        };
        let rest = words(rest, false);
        match rest.first().map(String::as_str) {
            Some("PSK") if rest.len() == 2 => out.push(SecretsLine::Entry(PskEntry {
                line: i + 1,
                ids: words(ids, false),
            })),
            Some("PSK") => out.push(SecretsLine::Bad(
                i + 1,
                t.to_string(),
                "PSK needs one quoted secret",
            )),
            _ => out.push(SecretsLine::Bad(
                i + 1,
                t.to_string(),
                "only PSK secrets (tsunagi's IKEv1 authenticates with pre-shared keys)",
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_chap_secrets() {
        let s = parse_chap(include_str!("testdata/seed001/chap-secrets"));
        assert_eq!(
            s,
            [SecretsLine::Entry(ChapEntry {
                line: 3,
                client: "taro".into(),
                server: "pptpd".into(),
                addresses: vec!["*".into()],
            })]
        );
        let s = parse_chap(include_str!("testdata/seed004/chap-secrets"));
        assert!(matches!(&s[..], [SecretsLine::Entry(e)] if e.client == "user1" && e.line == 4));
    }

    #[test]
    fn seed002_psk() {
        let s = parse_ipsec(include_str!("testdata/seed002/ipsec.secret"));
        assert_eq!(
            s,
            [SecretsLine::Entry(PskEntry {
                line: 2,
                ids: vec!["e.f.g.h".into()]
            })]
        );
        assert!(matches!(
            &parse_ipsec(": RSA key.pem")[..],
            [SecretsLine::Bad(1, _, _)]
        ));
    }
}
