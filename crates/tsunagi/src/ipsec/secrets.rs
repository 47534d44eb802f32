//! ipsec.secrets(5) for pre-shared keys: one entry per line,
//!
//! ```text
//! # comment
//! 10.201.1.1 10.201.1.2 : PSK "site secret"
//! @gw.example : PSK "for this one peer, from any of our IDs"
//! %any : PSK "from anyone"
//! : PSK "the fallback"
//! ```
//!
//! The selectors before `:` are IDs (addresses, FQDNs with or without a
//! leading `@`, `user@fqdn`, `%any`); the secret is double-quoted (with
//! `\"` and `\\` escapes) or a bare token. strongSwan's rule for which
//! entry applies: every ID of it must be one of ours or the peer's, and
//! the entry that matches both sides beats one that matches one, which
//! beats one with no IDs; among equals the first in the file wins.
//!
//! Like chap-secrets, the file is refused when group or others may read
//! or change it ([`tsunagi_ppp::secrets::check_permissions`]); no secret
//! ever reaches a log line or `Debug`.

use std::fmt;
use std::path::Path;

use tsunagi_crypto::Secret;
use tsunagi_ipsec::ike::Identity;

use crate::auth::CredentialError;
use crate::config::parse_identity;

/// One selector before the `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// `%any`: matches every ID, counts for none.
    Any,
    /// One identity.
    Id(Identity),
}

/// One `... : PSK "..."` line.
#[derive(Clone)]
pub struct PskEntry {
    /// The selectors (none: the fallback).
    pub selectors: Vec<Selector>,
    /// The key.
    pub psk: Secret,
    /// Where it is (1-based), for messages.
    pub line: usize,
}

impl fmt::Debug for PskEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PskEntry")
            .field("selectors", &self.selectors)
            .field("psk", &"<redacted>")
            .field("line", &self.line)
            .finish()
    }
}

/// A parsed ipsec.secrets.
#[derive(Debug, Clone, Default)]
pub struct IpsecSecrets {
    /// The PSK entries in file order.
    pub entries: Vec<PskEntry>,
}

/// A line that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SecretsLineError {
    /// 1-based.
    pub line: usize,
    /// What is wrong (never the secret).
    pub message: String,
}

fn ids_equal(a: &Identity, b: &Identity) -> bool {
    match (a, b) {
        (Identity::Fqdn(x), Identity::Fqdn(y)) | (Identity::UserFqdn(x), Identity::UserFqdn(y)) => {
            x.eq_ignore_ascii_case(y)
        }
        _ => a == b,
    }
}

/// A double-quoted string from `s` (after the opening quote): its text and
/// what follows the closing quote.
fn unquote(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, c)) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("the quoted secret has no closing '\"'".into())
}

impl IpsecSecrets {
    /// Parses the text of a secrets file; errors name the line (never the
    /// secret).
    pub fn parse(text: &str) -> Result<IpsecSecrets, SecretsLineError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| SecretsLineError { line, message };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if trimmed.starts_with("include ") {
                return Err(err(
                    "`include` is not supported: put the entries here".into()
                ));
            }
            let Some((ids, rest)) = split_colon(trimmed) else {
                return Err(err(
                    "no ':' between the IDs and the secret (ID ID : PSK \"secret\")".into(),
                ));
            };
            let rest = rest.trim_start();
            let (kind, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            if !kind.eq_ignore_ascii_case("PSK") {
                // RSA, ECDSA, XAUTH, EAP: not ours to read, not an error.
                if [
                    "RSA", "ECDSA", "XAUTH", "EAP", "PIN", "P12", "BLISS", "PKCS8", "NTLM",
                ]
                .iter()
                .any(|k| kind.eq_ignore_ascii_case(k))
                {
                    continue;
                }
                return Err(err(format!(
                    "unknown secret type {kind:?} (tsunagi reads PSK)"
                )));
            }
            let after = after.trim();
            let (secret, tail) = if let Some(q) = after.strip_prefix('"') {
                unquote(q).map_err(err)?
            } else {
                let (tok, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
                (tok.to_string(), tail)
            };
            let tail = tail.trim();
            if !tail.is_empty() && !tail.starts_with('#') {
                return Err(err("text after the secret".into()));
            }
            if secret.is_empty() {
                return Err(err("the PSK is empty".into()));
            }
            let mut selectors = Vec::new();
            for id in ids.split_whitespace() {
                if id == "%any" || id == "%any6" {
                    selectors.push(Selector::Any);
                } else {
                    let id = parse_identity(id.trim_matches('"'))
                        .map_err(|m| err(format!("ID {id:?}: {m}")))?;
                    selectors.push(Selector::Id(id));
                }
            }
            entries.push(PskEntry {
                selectors,
                psk: Secret::new(secret.into_bytes()),
                line,
            });
        }
        Ok(IpsecSecrets { entries })
    }

    /// Reads `path` after the permission check (refused when group or
    /// others may read or change it, as chap-secrets are).
    pub fn load(path: &Path) -> Result<IpsecSecrets, CredentialError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|error| CredentialError::Read {
            path: shown.clone(),
            error,
        })?;
        let daemon_uid = rustix::process::geteuid().as_raw();
        tsunagi_ppp::secrets::check_permissions("ipsec secrets file", &shown, &meta, daemon_uid)?;
        let text = std::fs::read_to_string(path).map_err(|error| CredentialError::Read {
            path: shown.clone(),
            error,
        })?;
        IpsecSecrets::parse(&text).map_err(|e| CredentialError::IpsecParse {
            path: shown,
            line: e.line,
            message: e.message,
        })
    }

    /// The best entry for our IDs `ours` and the peer's `theirs` (each
    /// side may be known by several: its ID and its address); `None` when
    /// no entry applies.
    pub fn lookup(&self, ours: &[Identity], theirs: &[Identity]) -> Option<&PskEntry> {
        let mut best: Option<(u8, &PskEntry)> = None;
        for entry in &self.entries {
            let mut me = false;
            let mut peer = false;
            let mut applies = true;
            for s in &entry.selectors {
                let Selector::Id(id) = s else { continue };
                let m = ours.iter().any(|o| ids_equal(o, id));
                let p = theirs.iter().any(|t| ids_equal(t, id));
                me |= m;
                peer |= p;
                applies &= m || p;
            }
            if !applies {
                continue;
            }
            let score = u8::from(me) + u8::from(peer);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, entry));
            }
        }
        best.map(|(_, e)| e)
    }
}

/// Splits at the first ':' outside quotes that ends the selectors (an
/// IPv6 address has colons, so the separator is a ':' followed by
/// whitespace or the end, or one at the very start).
fn split_colon(line: &str) -> Option<(&str, &str)> {
    if let Some(rest) = line.strip_prefix(':') {
        return Some(("", rest));
    }
    let bytes = line.as_bytes();
    let mut quoted = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b':' if !quoted
                && i > 0
                && bytes[i - 1].is_ascii_whitespace()
                && bytes.get(i + 1).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                return Some((&line[..i], &line[i + 1..]));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::os::unix::fs::PermissionsExt;

    fn addr(a: &str) -> Identity {
        Identity::Address(a.parse::<IpAddr>().unwrap())
    }

    const FILE: &str = r#"
# seed 002's ipsec.secrets, and more
: PSK "fallback"
%any : PSK "any"
203.0.113.5 : PSK "for the lns"
10.201.1.1 10.201.1.2 : PSK "site \"quoted\" \\ key"
@gw.example : PSK bare-token   # comment
2001:db8::1 2001:db8::2 : PSK "v6"
: RSA /etc/key.pem
"#;

    #[test]
    fn parses_entries_with_quotes_and_escapes() {
        let s = IpsecSecrets::parse(FILE).unwrap();
        assert_eq!(s.entries.len(), 6);
        assert_eq!(s.entries[3].psk.expose(), b"site \"quoted\" \\ key");
        assert_eq!(s.entries[4].psk.expose(), b"bare-token");
        assert_eq!(
            s.entries[4].selectors,
            [Selector::Id(Identity::Fqdn("gw.example".into()))]
        );
        assert_eq!(s.entries[5].selectors.len(), 2);
        assert_eq!(s.entries[1].selectors, [Selector::Any]);
        // Debug never shows a key.
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("fallback") && !shown.contains("quoted"),
            "{shown}"
        );
    }

    #[test]
    fn most_specific_entry_wins() {
        let s = IpsecSecrets::parse(FILE).unwrap();
        let psk = |ours: &[Identity], theirs: &[Identity]| {
            s.lookup(ours, theirs).map(|e| e.psk.expose().to_vec())
        };
        // Both IDs beat one.
        assert_eq!(
            psk(&[addr("10.201.1.1")], &[addr("10.201.1.2")]).as_deref(),
            Some(&b"site \"quoted\" \\ key"[..])
        );
        // One ID beats none (and %any counts for none).
        assert_eq!(
            psk(&[addr("198.51.100.1")], &[addr("203.0.113.5")]).as_deref(),
            Some(&b"for the lns"[..])
        );
        assert_eq!(
            psk(
                &[addr("198.51.100.1")],
                &[Identity::Fqdn("GW.example".into())]
            )
            .as_deref(),
            Some(&b"bare-token"[..])
        );
        // An entry naming an ID of neither side does not apply; the first
        // of the equal fallbacks wins.
        assert_eq!(
            psk(&[addr("10.201.1.1")], &[addr("10.201.1.9")]).as_deref(),
            Some(&b"fallback"[..])
        );
        let only = IpsecSecrets::parse("10.0.0.1 10.0.0.2 : PSK x\n").unwrap();
        assert!(only
            .lookup(&[addr("10.0.0.1")], &[addr("10.0.0.3")])
            .is_none());
        assert_eq!(
            psk(&[addr("2001:db8::2")], &[addr("2001:db8::1")]).as_deref(),
            Some(&b"v6"[..])
        );
    }

    #[test]
    fn errors_name_the_line_not_the_secret() {
        let e = IpsecSecrets::parse("\n10.0.0.1 PSK \"s3cret\"\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("no ':'"), "{e}");
        let e = IpsecSecrets::parse(": PSK \"s3cret\n").unwrap_err();
        assert!(
            e.to_string().starts_with("line 1: ") && e.message.contains("closing"),
            "{e}"
        );
        assert!(!e.to_string().contains("s3cret"));
        let e = IpsecSecrets::parse("# x\n: PSK \"\"\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "the PSK is empty"));
        let e = IpsecSecrets::parse(": XPSK \"a\"\n").unwrap_err();
        assert!(e.message.contains("unknown secret type \"XPSK\""), "{e}");
        let e = IpsecSecrets::parse("a b : PSK \"s3cret\" extra\n").unwrap_err();
        assert!(e.message.contains("text after the secret") && !e.message.contains("s3cret"));
        let e = IpsecSecrets::parse("include /etc/ipsec.d/*.secrets\n").unwrap_err();
        assert!(e.message.contains("include"));
    }

    #[test]
    fn group_or_world_readable_file_is_refused() {
        let dir =
            std::env::temp_dir().join(format!("tsunagi-ipsec-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ipsec.secrets");
        std::fs::write(&p, ": PSK \"k\"\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = IpsecSecrets::load(&p).unwrap_err().to_string();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = IpsecSecrets::load(&p);
        std::fs::write(&p, "x : PSK\n").unwrap();
        let bad = IpsecSecrets::load(&p).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("ipsec.secrets") && e.contains("640"), "{e}");
        assert_eq!(ok.unwrap().entries.len(), 1);
        assert!(bad.contains(":1: "), "{bad}");
    }
}
