//! pppd's chap-secrets / pap-secrets file, without I/O.
//!
//! Format (pppd(8) "AUTHENTICATION"): one entry per line,
//! `client server secret [address ...]`; `#` at the start of a word starts
//! a comment; words may be quoted with `"` or `'` (a secret with spaces),
//! `\` escapes the next character; `*` as client or server matches any
//! name. The addresses are those the client may use: `*` any, `-` none,
//! `a.b.c.d` or `a.b.c.d/n`, `!` before one excludes it. The first plain
//! address is the client's fixed address (pppd uses it as the peer's
//! address when IPCP does not name another allowed one).
//!
//! The engine looks secrets up through the [`Secrets`] trait, so it never
//! reads a file; [`ChapSecrets`] is the parsed file. [`check_permissions`]
//! says why a file of secrets that others could read or change is refused.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tsunagi_crypto::Secret;

/// One address item of the 4th and later columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowedAddress {
    /// `*`: any address.
    Any,
    /// `-`: no address at all (the client may not use IP).
    None,
    /// `a.b.c.d/len` (len 32 for a single address); `exclude` for `!`.
    Net {
        /// Network address.
        addr: Ipv4Addr,
        /// Prefix length 0..=32.
        prefix: u8,
        /// `!`: this range is excluded.
        exclude: bool,
    },
}

impl AllowedAddress {
    fn contains(addr: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        u32::from(addr) & mask == u32::from(net) & mask
    }
}

/// One line of the secrets file. The secret prints as `<redacted>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEntry {
    /// The client's name (`*` = any).
    pub client: String,
    /// The server's name (`*` = any).
    pub server: String,
    /// The secret (password).
    pub secret: Secret,
    /// Addresses the client may use; empty means any (pppd: no address
    /// column = any address).
    pub addresses: Vec<AllowedAddress>,
}

impl SecretEntry {
    /// The per-user fixed address: the first plain single address.
    pub fn fixed_address(&self) -> Option<Ipv4Addr> {
        self.addresses.iter().find_map(|a| match *a {
            AllowedAddress::Net {
                addr,
                prefix: 32,
                exclude: false,
            } => Some(addr),
            _ => None,
        })
    }

    /// Whether the client may use `addr` (pppd's auth_ip_addr: excludes
    /// first, then the first matching include).
    pub fn permits(&self, addr: Ipv4Addr) -> bool {
        if self.addresses.is_empty() {
            return true;
        }
        for a in &self.addresses {
            if let AllowedAddress::Net {
                addr: net,
                prefix,
                exclude: true,
            } = *a
            {
                if AllowedAddress::contains(addr, net, prefix) {
                    return false;
                }
            }
        }
        self.addresses.iter().any(|a| match *a {
            AllowedAddress::Any => true,
            AllowedAddress::None => false,
            AllowedAddress::Net {
                addr: net,
                prefix,
                exclude,
            } => !exclude && AllowedAddress::contains(addr, net, prefix),
        })
    }
}

/// Where the engine finds secrets (sans-IO: the daemon reads the file).
pub trait Secrets {
    /// The best entry for `client` authenticating to `server` (both as
    /// they appear on the wire), or `None`.
    fn lookup(&self, client: &str, server: &str) -> Option<SecretEntry>;
}

/// A parse error, naming the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// A quote was opened and not closed on the line.
    #[error("line {line}: unterminated {quote} quote")]
    UnterminatedQuote {
        /// 1-based line number.
        line: usize,
        /// The quote character.
        quote: char,
    },
    /// Fewer than three words (client, server, secret).
    #[error("line {line}: expected `client server secret [addresses]`, found {words} word(s)")]
    MissingField {
        /// 1-based line number.
        line: usize,
        /// Words found.
        words: usize,
    },
    /// An address item that is not `*`, `-`, an IPv4 address or a prefix.
    #[error(
        "line {line}: bad address `{text}` (want *, -, a.b.c.d or a.b.c.d/n, optionally with !)"
    )]
    BadAddress {
        /// 1-based line number.
        line: usize,
        /// The item as written.
        text: String,
    },
    /// A line ends with a lone backslash.
    #[error("line {line}: backslash at end of line")]
    TrailingBackslash {
        /// 1-based line number.
        line: usize,
    },
}

/// A parsed chap-secrets (or pap-secrets) file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChapSecrets {
    /// Entries in file order.
    pub entries: Vec<SecretEntry>,
}

/// Splits one line into words: quotes, backslash escapes, `#` comments.
fn words(line: &str, number: usize) -> Result<Vec<String>, SecretsError> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => return Ok(out),
            _ => {}
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\\' => match chars.next() {
                    Some(e) => word.push(e),
                    None => return Err(SecretsError::TrailingBackslash { line: number }),
                },
                '"' | '\'' => loop {
                    match chars.next() {
                        None => {
                            return Err(SecretsError::UnterminatedQuote {
                                line: number,
                                quote: c,
                            })
                        }
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e) => word.push(e),
                            None => {
                                return Err(SecretsError::UnterminatedQuote {
                                    line: number,
                                    quote: c,
                                })
                            }
                        },
                        Some(other) => word.push(other),
                    }
                },
                other => word.push(other),
            }
        }
        out.push(word);
    }
}

fn parse_address(text: &str, line: usize) -> Result<AllowedAddress, SecretsError> {
    let bad = || SecretsError::BadAddress {
        line,
        text: text.to_string(),
    };
    match text {
        "*" => return Ok(AllowedAddress::Any),
        "-" => return Ok(AllowedAddress::None),
        _ => {}
    }
    let (exclude, rest) = match text.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (addr, prefix) = match rest.split_once('/') {
        Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
        None => (rest, 32),
    };
    if prefix > 32 {
        return Err(bad());
    }
    let addr = addr.parse::<Ipv4Addr>().map_err(|_| bad())?;
    Ok(AllowedAddress::Net {
        addr,
        prefix,
        exclude,
    })
}

impl ChapSecrets {
    /// Parses the whole file text. Errors name the 1-based line.
    pub fn parse(text: &str) -> Result<ChapSecrets, SecretsError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let number = i + 1;
            let mut w = words(line, number)?;
            if w.is_empty() {
                continue;
            }
            if w.len() < 3 {
                return Err(SecretsError::MissingField {
                    line: number,
                    words: w.len(),
                });
            }
            let addresses = w[3..]
                .iter()
                .map(|a| parse_address(a, number))
                .collect::<Result<Vec<_>, _>>()?;
            let secret = Secret::new(std::mem::take(&mut w[2]).into_bytes());
            entries.push(SecretEntry {
                client: std::mem::take(&mut w[0]),
                server: std::mem::take(&mut w[1]),
                secret,
                addresses,
            });
        }
        Ok(ChapSecrets { entries })
    }
}

impl Secrets for ChapSecrets {
    /// pppd's scan_authfile: a line matches when each of client and server
    /// is equal or `*`; an exact client beats an exact server, which beats
    /// wildcards; the first line wins among equals.
    fn lookup(&self, client: &str, server: &str) -> Option<SecretEntry> {
        let mut best: Option<(u8, &SecretEntry)> = None;
        for e in &self.entries {
            let client_exact = e.client == client;
            let server_exact = e.server == server;
            if !(client_exact || e.client == "*") || !(server_exact || e.server == "*") {
                continue;
            }
            let score = (u8::from(client_exact) << 1) | u8::from(server_exact);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, e));
            }
        }
        best.map(|(_, e)| e.clone())
    }
}

/// Why a file holding passwords (a secrets file, a password file, a
/// config with `password =`) may not be used: someone besides the daemon
/// could read or change it. As ssh refuses such a private key, the daemon
/// refuses to start rather than run with secrets others may know, or
/// others may have written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeFile {
    /// Group or others may read or write it.
    #[error(
        "{what} {path} is accessible by group or others (mode {mode:04o}); \
         it holds passwords: run `chmod 600 {path}`"
    )]
    Accessible {
        /// What the file is ("secrets file", "password file", "config file").
        what: &'static str,
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Owned by someone other than root and the daemon's uid: that user
    /// could read it, or replace the secrets, whatever the mode says.
    #[error(
        "{what} {path} is owned by uid {owner}; it holds passwords, \
         so it must be owned by {}: run `chown root {path}`",
        allowed_owners(*.daemon_uid)
    )]
    Owner {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: String,
        /// Its owner.
        owner: u32,
        /// The effective uid of the process that would use it.
        daemon_uid: u32,
    },
}

/// Who may own a file of secrets, in words.
fn allowed_owners(daemon_uid: u32) -> String {
    if daemon_uid == 0 {
        "root".to_string()
    } else {
        format!("root or uid {daemon_uid} (the daemon's)")
    }
}

/// Whether a file holding passwords is private: no permission bits for
/// group or others in `mode` (as from `st_mode`), and owned by root or
/// `daemon_uid` (the effective uid of the process that will use it). The
/// error names the file as `what path`.
pub fn check_mode_and_owner(
    what: &'static str,
    path: &str,
    mode: u32,
    owner: u32,
    daemon_uid: u32,
) -> Result<(), UnsafeFile> {
    if mode & 0o077 != 0 {
        return Err(UnsafeFile::Accessible {
            what,
            path: path.to_string(),
            mode: mode & 0o7777,
        });
    }
    if owner != 0 && owner != daemon_uid {
        return Err(UnsafeFile::Owner {
            what,
            path: path.to_string(),
            owner,
            daemon_uid,
        });
    }
    Ok(())
}

/// [`check_mode_and_owner`] on a file's metadata.
pub fn check_permissions(
    what: &'static str,
    path: &str,
    metadata: &std::fs::Metadata,
    daemon_uid: u32,
) -> Result<(), UnsafeFile> {
    use std::os::unix::fs::MetadataExt;
    check_mode_and_owner(what, path, metadata.mode(), metadata.uid(), daemon_uid)
}

/// Slows down repeated authentication failures from one source (e.g. a
/// peer's public address), sans-IO: the daemon asks [`FailureLimiter::hold_until`]
/// before starting a link and reports each failure.
///
/// The first `free` failures within `window` cost nothing; each one after
/// doubles the hold-off from `base` up to `max`. A success or a quiet
/// `window` forgets the source. At most `capacity` sources are tracked
/// (the oldest is dropped), so a flood of sources cannot grow memory.
#[derive(Debug, Clone)]
pub struct FailureLimiter<K> {
    /// Failures without delay.
    pub free: u32,
    /// First delay.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Forget a source after this long without failures.
    pub window: Duration,
    /// Sources tracked at most.
    pub capacity: usize,
    sources: Vec<(K, u32, Instant)>,
}

impl<K: PartialEq + Clone> FailureLimiter<K> {
    /// 3 free failures, then 2 s doubling to 60 s; window 10 min; 1024 sources.
    pub fn new() -> Self {
        FailureLimiter {
            free: 3,
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
            window: Duration::from_secs(600),
            capacity: 1024,
            sources: Vec::new(),
        }
    }

    fn expire(&mut self, now: Instant) {
        let window = self.window;
        self.sources
            .retain(|(_, _, last)| now.saturating_duration_since(*last) < window);
    }

    fn delay(&self, failures: u32) -> Duration {
        if failures <= self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free - 1).min(20);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }

    /// Records a failure; returns how long to hold off this source.
    pub fn record_failure(&mut self, now: Instant, source: &K) -> Duration {
        self.expire(now);
        let failures = match self.sources.iter_mut().find(|(k, _, _)| k == source) {
            Some(entry) => {
                entry.1 = entry.1.saturating_add(1);
                entry.2 = now;
                entry.1
            }
            None => {
                if self.sources.len() >= self.capacity.max(1) {
                    // The oldest entry goes: sources are appended in order
                    // of first failure, and touched ones keep their slot.
                    let oldest = self
                        .sources
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, _, last))| *last)
                        .map(|(i, _)| i)
                        .unwrap_or(0);
                    self.sources.swap_remove(oldest);
                }
                self.sources.push((source.clone(), 1, now));
                1
            }
        };
        self.delay(failures)
    }

    /// Until when a new attempt from `source` should wait (`None`: now).
    pub fn hold_until(&self, now: Instant, source: &K) -> Option<Instant> {
        let (_, failures, last) = self.sources.iter().find(|(k, _, _)| k == source)?;
        if now.saturating_duration_since(*last) >= self.window {
            return None;
        }
        let delay = self.delay(*failures);
        let until = *last + delay;
        (!delay.is_zero() && until > now).then_some(until)
    }

    /// A success forgets the source.
    pub fn record_success(&mut self, source: &K) {
        self.sources.retain(|(k, _, _)| k != source);
    }

    /// Sources currently tracked.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

impl<K: PartialEq + Clone> Default for FailureLimiter<K> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
# Secrets for authentication using CHAP
# client	server	secret			IP addresses
alice	*	wonderland	*
bob	vpn	"two words"	10.0.0.5 10.0.1.0/24
bob	*	bobwild
*	vpn	guestpass	-
carol	*	'it''s'	!10.0.0.1 10.0.0.0/24 # trailing comment
dave	*	back\ slash
"#;

    #[test]
    fn parses_quotes_comments_and_addresses() {
        let s = ChapSecrets::parse(FILE).unwrap();
        assert_eq!(s.entries.len(), 6);
        assert_eq!(s.entries[1].secret.expose(), b"two words");
        assert_eq!(
            s.entries[1].fixed_address(),
            Some(Ipv4Addr::new(10, 0, 0, 5))
        );
        assert!(s.entries[1].permits(Ipv4Addr::new(10, 0, 1, 77)));
        assert!(!s.entries[1].permits(Ipv4Addr::new(10, 0, 2, 1)));
        assert_eq!(s.entries[4].secret.expose(), b"its");
        assert!(!s.entries[4].permits(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(s.entries[4].permits(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(s.entries[4].fixed_address(), None);
        assert_eq!(s.entries[5].secret.expose(), b"back slash");
        assert!(!s.entries[3].permits(Ipv4Addr::new(1, 2, 3, 4)));
        assert!(s.entries[2].permits(Ipv4Addr::new(1, 2, 3, 4)));
    }

    #[test]
    fn best_match_prefers_exact_client_then_exact_server() {
        let s = ChapSecrets::parse(FILE).unwrap();
        let e = s.lookup("bob", "vpn").unwrap();
        assert_eq!(e.secret.expose(), b"two words");
        let e = s.lookup("bob", "other").unwrap();
        assert_eq!(e.secret.expose(), b"bobwild");
        let e = s.lookup("mallory", "vpn").unwrap();
        assert_eq!(e.secret.expose(), b"guestpass");
        assert!(s.lookup("mallory", "other").is_none());
        assert_eq!(
            s.lookup("alice", "x").unwrap().secret.expose(),
            b"wonderland"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = ChapSecrets::parse("a b c\nbob \"open").unwrap_err();
        assert_eq!(e.to_string(), "line 2: unterminated \" quote");
        let e = ChapSecrets::parse("\n\nbob server").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3: expected `client server secret [addresses]`, found 2 word(s)"
        );
        let e = ChapSecrets::parse("a b c 10.0.0.300").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("line 1: bad address `10.0.0.300`"));
        let e = ChapSecrets::parse("a b c 10.0.0.0/33").unwrap_err();
        assert!(e.to_string().starts_with("line 1: bad address"));
    }

    #[test]
    fn secret_never_in_debug() {
        let s = ChapSecrets::parse(FILE).unwrap();
        let text = format!("{s:?}");
        assert!(!text.contains("wonderland"));
        assert!(!text.contains("two words"));
        assert!(text.contains("alice"));
    }

    #[test]
    fn permissions() {
        let check = |mode, owner, daemon| {
            check_mode_and_owner("secrets file", "/etc/ppp/chap-secrets", mode, owner, daemon)
        };
        assert_eq!(check(0o100600, 0, 0), Ok(()));
        assert_eq!(check(0o400, 0, 0), Ok(()));
        let e = check(0o100644, 0, 0).unwrap_err().to_string();
        assert_eq!(
            e,
            "secrets file /etc/ppp/chap-secrets is accessible by group or others (mode 0644); \
             it holds passwords: run `chmod 600 /etc/ppp/chap-secrets`"
        );
        assert!(check(0o602, 0, 0).is_err());
        assert!(check(0o640, 0, 0).is_err());
    }

    #[test]
    fn owner_must_be_root_or_the_daemon() {
        let check =
            |owner, daemon| check_mode_and_owner("password file", "/pw", 0o600, owner, daemon);
        assert_eq!(check(0, 0), Ok(()));
        assert_eq!(check(0, 1000), Ok(()));
        assert_eq!(check(1000, 1000), Ok(()));
        assert_eq!(
            check(65534, 0).unwrap_err().to_string(),
            "password file /pw is owned by uid 65534; it holds passwords, \
             so it must be owned by root: run `chown root /pw`"
        );
        assert_eq!(
            check(65534, 1000).unwrap_err().to_string(),
            "password file /pw is owned by uid 65534; it holds passwords, \
             so it must be owned by root or uid 1000 (the daemon's): run `chown root /pw`"
        );
        // The mode is the first complaint.
        let e = check_mode_and_owner("config file", "/c", 0o644, 65534, 0).unwrap_err();
        assert!(
            matches!(e, UnsafeFile::Accessible { mode: 0o644, .. }),
            "{e}"
        );
    }

    #[test]
    fn limiter_slows_repeated_failures_and_forgets() {
        let t0 = Instant::now();
        let mut l = FailureLimiter::<&str>::new();
        for _ in 0..3 {
            assert_eq!(l.record_failure(t0, &"1.2.3.4"), Duration::ZERO);
        }
        assert_eq!(l.hold_until(t0, &"1.2.3.4"), None);
        assert_eq!(l.record_failure(t0, &"1.2.3.4"), Duration::from_secs(2));
        assert_eq!(
            l.hold_until(t0, &"1.2.3.4"),
            Some(t0 + Duration::from_secs(2))
        );
        assert_eq!(l.record_failure(t0, &"1.2.3.4"), Duration::from_secs(4));
        for _ in 0..30 {
            l.record_failure(t0, &"1.2.3.4");
        }
        assert_eq!(l.record_failure(t0, &"1.2.3.4"), Duration::from_secs(60));
        assert_eq!(l.hold_until(t0, &"5.6.7.8"), None);
        // A quiet window forgets.
        let later = t0 + Duration::from_secs(601);
        assert_eq!(l.hold_until(later, &"1.2.3.4"), None);
        assert_eq!(l.record_failure(later, &"1.2.3.4"), Duration::ZERO);
        l.record_success(&"1.2.3.4");
        assert_eq!(l.tracked(), 0);
        // Bounded memory.
        let mut l = FailureLimiter::<u32>::new();
        l.capacity = 4;
        for i in 0..100u32 {
            l.record_failure(t0 + Duration::from_millis(u64::from(i)), &i);
        }
        assert_eq!(l.tracked(), 4);
        assert!(l.hold_until(t0, &99).is_none());
    }
}
