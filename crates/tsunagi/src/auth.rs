//! What the daemon reads for PPP authentication at start-up, and how it
//! slows down sources that keep failing.
//!
//! - The chap-secrets file (seeds 001, 004) is refused, as ssh refuses a
//!   private key, when group or others may read or write it or it is owned
//!   by someone but root or the daemon's uid
//!   ([`tsunagi_ppp::secrets::check_permissions`]); parse errors name the
//!   file and line. A `password_file` gets the same check, and so does the
//!   config file when a link writes its `password` there.
//! - A secret never reaches a log line: [`Credentials`]'s `Debug` redacts.
//! - [`AuthGuard`] wraps the engine's [`FailureLimiter`], keyed by where
//!   the peer is (the dial target, a server's peer) and, for a `direct`
//!   caller, by both the ssh client address it claims and its uid
//!   ([`AuthSource`]): after a few failures a key's next sessions wait.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tsunagi_crypto::Secret;
use tsunagi_ppp::auth::SecretsHandle;
use tsunagi_ppp::link::LinkConfig;
use tsunagi_ppp::secrets::{
    check_permissions, ChapSecrets, FailureLimiter, SecretEntry, Secrets, UnsafeFile,
};

use crate::config::{AuthSettings, LinkSettings, PasswordSource};

/// Why the daemon cannot use a link's secrets (a start-up error).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The file could not be read.
    #[error("{path}: cannot read: {error}")]
    Read {
        /// The secrets or password file.
        path: String,
        /// Why (in the message, not a source of its own: `{:#}` would say
        /// it twice).
        error: std::io::Error,
    },
    /// Others could read or change it (the text says how: the mode or the
    /// owner, and how to fix it).
    #[error(transparent)]
    Unsafe(#[from] UnsafeFile),
    /// A line of the secrets file does not parse.
    #[error("{path}: {source}")]
    Parse {
        /// The secrets file.
        path: String,
        /// The line and what is wrong.
        source: tsunagi_ppp::secrets::SecretsError,
    },
    /// A line of an ipsec.secrets file does not parse.
    #[error("{path}:{line}: {message}")]
    IpsecParse {
        /// The secrets file.
        path: String,
        /// 1-based.
        line: usize,
        /// What is wrong (never the secret).
        message: String,
    },
    /// The password file is empty.
    #[error("{path}: password file is empty")]
    EmptyPassword {
        /// The password file.
        path: String,
    },
}

/// Secrets and our password, read once at start-up.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The parsed chap-secrets.
    pub secrets: Option<SecretsHandle>,
    /// Our own password (pppd `password`).
    pub password: Option<Secret>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("secrets", &self.secrets.as_ref().map(|_| "<redacted>"))
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Checks that nobody but root and the daemon (our effective uid) may
/// read or change `path`, which holds passwords; `what` names it in the
/// error ("secrets file", ...).
fn check_private(what: &'static str, path: &Path) -> Result<(), CredentialError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|error| CredentialError::Read {
        path: shown.clone(),
        error,
    })?;
    let daemon_uid = rustix::process::geteuid().as_raw();
    Ok(check_permissions(what, &shown, &meta, daemon_uid)?)
}

/// Reads `path` after [`check_private`].
fn read_private(what: &'static str, path: &Path) -> Result<String, CredentialError> {
    check_private(what, path)?;
    std::fs::read_to_string(path).map_err(|error| CredentialError::Read {
        path: path.display().to_string(),
        error,
    })
}

/// Reads and parses a chap-secrets file.
pub fn load_secrets(path: &Path) -> Result<ChapSecrets, CredentialError> {
    let text = read_private("secrets file", path)?;
    ChapSecrets::parse(&text).map_err(|source| CredentialError::Parse {
        path: path.display().to_string(),
        source,
    })
}

/// One chap-secrets file as the daemon last read it. Sessions look their
/// peers up in it at each authentication, as pppd reads chap-secrets each
/// time: a `tsunagi reload` (or SIGHUP) that re-reads the file changes who
/// may log in from then on, and drops no session already up.
struct SecretsFile {
    current: RwLock<Arc<ChapSecrets>>,
}

impl Secrets for SecretsFile {
    fn lookup(&self, client: &str, server: &str) -> Option<SecretEntry> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.lookup(client, server)
    }
}

/// Every chap-secrets file the daemon uses, by path: links and servers that
/// name the same file share one [`SecretsHandle`] on it, and
/// [`SecretsFiles::reread`] replaces what all of them see at once.
#[derive(Clone, Default)]
pub struct SecretsFiles(Arc<Mutex<BTreeMap<PathBuf, Arc<SecretsFile>>>>);

impl SecretsFiles {
    /// No files yet.
    pub fn new() -> SecretsFiles {
        SecretsFiles::default()
    }

    /// The handle on `path`: the one already read, else read now (with
    /// [`load_secrets`]'s checks).
    pub fn handle(&self, path: &Path) -> Result<SecretsHandle, CredentialError> {
        let mut files = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let file = match files.get(path) {
            Some(file) => file.clone(),
            None => {
                let file = Arc::new(SecretsFile {
                    current: RwLock::new(Arc::new(load_secrets(path)?)),
                });
                files.insert(path.to_path_buf(), file.clone());
                file
            }
        };
        Ok(SecretsHandle(file))
    }

    /// Reads every file again. A file that cannot be read now (gone, open
    /// to others, a parse error) keeps what it had, and its error is in the
    /// answer: a typo in chap-secrets must not lock everyone out.
    pub fn reread(&self) -> Vec<(PathBuf, Result<usize, CredentialError>)> {
        let files: Vec<(PathBuf, Arc<SecretsFile>)> = {
            let files = self.0.lock().unwrap_or_else(|e| e.into_inner());
            files.iter().map(|(p, f)| (p.clone(), f.clone())).collect()
        };
        files
            .into_iter()
            .map(|(path, file)| {
                let result = load_secrets(&path).map(|secrets| {
                    let entries = secrets.entries.len();
                    *file.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(secrets);
                    entries
                });
                (path, result)
            })
            .collect()
    }
}

impl Credentials {
    /// The engine's configuration for `settings` with these secrets and
    /// password.
    pub fn link_config(&self, settings: &LinkSettings) -> LinkConfig {
        let mut config = settings.link_config();
        config.auth.password = self.password.clone();
        config.auth.secrets = self.secrets.clone();
        config
    }

    /// What `settings` names: its secrets file and password. `config` is
    /// the file the settings were read from: a `password` written there
    /// makes it a file of secrets too, held to the same checks.
    /// A secrets file already in `files` is shared, not read again.
    pub fn load(
        settings: &LinkSettings,
        config: &Path,
        files: &SecretsFiles,
    ) -> Result<Credentials, CredentialError> {
        Credentials::load_auth(&settings.auth, config, files)
    }

    /// [`Credentials::load`] for any section's authentication settings (a
    /// server's too).
    pub fn load_auth(
        a: &AuthSettings,
        config: &Path,
        files: &SecretsFiles,
    ) -> Result<Credentials, CredentialError> {
        // Only read the secrets when something uses them: a link that
        // neither requires auth nor has a user has no business with them.
        let wanted = !a.require.is_empty() || (a.user.is_some() && a.password.is_none());
        let secrets = match (&a.secrets, wanted) {
            (Some(path), true) => Some(files.handle(path)?),
            _ => None,
        };
        let password = match &a.password {
            None => None,
            Some(PasswordSource::Inline(p)) => {
                check_private("config file", config)?;
                Some(p.clone())
            }
            Some(PasswordSource::File(path)) => {
                let text = read_private("password file", path)?;
                let line = text.lines().next().unwrap_or_default();
                if line.is_empty() {
                    return Err(CredentialError::EmptyPassword {
                        path: path.display().to_string(),
                    });
                }
                Some(Secret::new(line.as_bytes()))
            }
        };
        Ok(Credentials { secrets, password })
    }
}

/// One thing authentication failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKey {
    /// Where the peer is: a dial target, the ssh client address a direct
    /// caller claims, a server peer's address.
    Peer(String),
    /// The local user who handed us a direct stream.
    Uid(u32),
}

impl fmt::Display for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthKey::Peer(peer) => f.write_str(peer),
            AuthKey::Uid(uid) => write!(f, "uid {uid}"),
        }
    }
}

/// Whom a session's authentication failures count against.
///
/// A direct caller's ssh client address is only its claim (`tsunagi
/// direct` reports `SSH_CONNECTION`, which the caller sets as it likes), so
/// its failures count against its uid as well: a caller that claims a new
/// address for each attempt is still held off by its uid. The address is
/// kept too, so that one site among several sharing an ssh account is
/// named, and held off, by itself first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSource {
    /// A peer known by where it is: a dial target, a server's peer.
    Peer(String),
    /// A `tsunagi direct` caller.
    Direct {
        /// The ssh client address it claims, if any.
        ssh_client: Option<String>,
        /// Its uid (`SO_PEERCRED`).
        uid: u32,
    },
}

impl AuthSource {
    /// The peer's key, if it has one.
    fn peer(&self) -> Option<AuthKey> {
        match self {
            AuthSource::Peer(peer)
            | AuthSource::Direct {
                ssh_client: Some(peer),
                ..
            } => Some(AuthKey::Peer(peer.clone())),
            AuthSource::Direct {
                ssh_client: None, ..
            } => None,
        }
    }

    /// The keys counted, the peer's first.
    fn keys(&self) -> impl Iterator<Item = AuthKey> {
        let uid = match self {
            AuthSource::Direct { uid, .. } => Some(AuthKey::Uid(*uid)),
            AuthSource::Peer(_) => None,
        };
        self.peer().into_iter().chain(uid)
    }
}

impl fmt::Display for AuthSource {
    /// Where the peer is, as `status` and log lines show it: the address,
    /// else `uid N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthSource::Direct {
                ssh_client: None,
                uid,
            } => write!(f, "uid {uid}"),
            AuthSource::Peer(peer)
            | AuthSource::Direct {
                ssh_client: Some(peer),
                ..
            } => f.write_str(peer),
        }
    }
}

/// A hold-off, and the key it is for (what log lines and refusals name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The key held off.
    pub key: AuthKey,
    /// For how long from now.
    pub wait: Duration,
}

impl Hold {
    /// The wait in whole seconds, at least 1, for messages.
    pub fn secs(&self) -> u64 {
        self.wait.as_secs().max(1)
    }
}

impl fmt::Display for Hold {
    /// As failure log lines end: "next attempt from 192.0.2.7 held off 2s".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "next attempt from {} held off {}s",
            self.key,
            self.secs()
        )
    }
}

/// The daemon-wide failure limiter, shared by every link.
#[derive(Debug, Clone, Default)]
pub struct AuthGuard(Arc<Mutex<FailureLimiter<AuthKey>>>);

impl AuthGuard {
    /// A fresh limiter with the engine's defaults (3 free failures, then
    /// 2 s doubling up to 60 s, forgotten after 10 min).
    pub fn new() -> AuthGuard {
        AuthGuard::default()
    }

    /// A limiter with these parameters (tests).
    pub fn with(free: u32, base: Duration, max: Duration) -> AuthGuard {
        let mut l = FailureLimiter::new();
        l.free = free;
        l.base = base;
        l.max = max;
        AuthGuard(Arc::new(Mutex::new(l)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FailureLimiter<AuthKey>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a new session from `source` must wait: the longest hold of
    /// its keys (the peer's on a tie), or `None`.
    pub fn hold_for(&self, now: Instant, source: &AuthSource) -> Option<Hold> {
        let limiter = self.lock();
        longest(source.keys().filter_map(|key| {
            let until = limiter.hold_until(now, &key)?;
            Some(Hold {
                wait: until.saturating_duration_since(now),
                key,
            })
        }))
    }

    /// Records a failure of `source` against each of its keys; the longest
    /// hold-off any of them now has, if any.
    pub fn failed(&self, now: Instant, source: &AuthSource) -> Option<Hold> {
        let mut limiter = self.lock();
        longest(source.keys().filter_map(|key| {
            let wait = limiter.record_failure(now, &key);
            (!wait.is_zero()).then_some(Hold { key, wait })
        }))
    }

    /// A success forgets `source`'s peer, not its uid: a caller holding
    /// one valid secret could otherwise mix its own successes between
    /// guesses at others' (the free failures again after each), while
    /// claiming a new address for every guess. The uid's count fades after
    /// the limiter's quiet window instead.
    pub fn succeeded(&self, source: &AuthSource) {
        if let Some(peer) = source.peer() {
            self.lock().record_success(&peer);
        }
    }
}

/// The longest of `holds`, the first on a tie.
fn longest(holds: impl Iterator<Item = Hold>) -> Option<Hold> {
    holds.fold(None, |best, hold| match best {
        Some(best) if best.wait >= hold.wait => Some(best),
        _ => Some(hold),
    })
}

/// The address part of an `SSH_CONNECTION` value ("client port server
/// port"): the ssh client's address, or `None` if it does not look like one.
pub fn ssh_client_address(ssh_connection: &str) -> Option<String> {
    let first = ssh_connection.split_whitespace().next()?;
    first
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|a| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A file in a directory of its own, both removed when it is dropped
    /// (tests run in parallel: no directory is shared).
    struct TempFile(std::path::PathBuf);

    impl std::ops::Deref for TempFile {
        type Target = std::path::Path;
        fn deref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl AsRef<std::path::Path> for TempFile {
        fn as_ref(&self) -> &std::path::Path {
            &self.0
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn temp(name: &str, text: &str, mode: u32) -> TempFile {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tsunagi-auth-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        TempFile(p)
    }

    #[test]
    fn world_readable_secrets_are_refused_naming_file_and_mode() {
        let p = temp("open-secrets", "alice * s3cret *\n", 0o644);
        let e = load_secrets(&p).unwrap_err().to_string();
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(e.contains("mode 0644"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let p = temp("group-secrets", "alice * s3cret *\n", 0o620);
        assert!(load_secrets(&p).is_err());
        let p = temp("ok-secrets", "alice * s3cret 10.0.0.9\n", 0o600);
        let s = load_secrets(&p).unwrap();
        assert_eq!(s.entries.len(), 1);
    }

    #[test]
    fn a_password_in_the_config_makes_it_a_secrets_file() {
        let text = "[link.l]\nmode = \"direct\"\nallow_users = [\"root\"]\nuser = \"bob\"\npassword = \"s3cret\"\n";
        let p = temp("inline.toml", text, 0o644);
        let config = crate::config::Config::load(&p).unwrap();
        let e = Credentials::load(&config.links[0], &p, &SecretsFiles::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("config file {} is accessible", p.display())),
            "{e}"
        );
        assert!(e.contains("mode 0644") && !e.contains("s3cret"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = Credentials::load(&config.links[0], &p, &SecretsFiles::new()).unwrap();
        assert_eq!(c.password.unwrap().expose(), b"s3cret");
    }

    #[test]
    fn parse_errors_name_file_and_line() {
        let p = temp("bad-secrets", "# c\nalice *\n", 0o600);
        let e = load_secrets(&p).unwrap_err().to_string();
        assert!(e.contains("bad-secrets: line 2"), "{e}");
    }

    #[test]
    fn credentials_debug_redacts() {
        let c = Credentials {
            secrets: None,
            password: Some(Secret::new(b"hunter2".to_vec())),
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && d.contains("redacted"), "{d}");
    }

    fn hold(key: AuthKey, secs: u64) -> Option<Hold> {
        Some(Hold {
            key,
            wait: Duration::from_secs(secs),
        })
    }

    #[test]
    fn guard_holds_off_after_free_failures_and_forgets_on_success() {
        let g = AuthGuard::with(1, Duration::from_secs(2), Duration::from_secs(8));
        let t = Instant::now();
        let (a, b) = (
            AuthSource::Peer("192.0.2.7".into()),
            AuthSource::Peer("192.0.2.8".into()),
        );
        let key = AuthKey::Peer("192.0.2.7".into());
        assert_eq!(g.failed(t, &a), None);
        assert_eq!(g.hold_for(t, &a), None);
        assert_eq!(g.failed(t, &a), hold(key.clone(), 2));
        assert_eq!(g.hold_for(t, &a), hold(key.clone(), 2));
        assert_eq!(g.hold_for(t, &b), None);
        assert_eq!(g.failed(t, &a), hold(key, 4));
        g.succeeded(&a);
        assert_eq!(g.hold_for(t, &a), None);
    }

    /// A direct caller claiming a new address each time is held off by its
    /// uid, which a success does not forget; another uid is not.
    #[test]
    fn guard_counts_a_direct_caller_by_uid_whatever_address_it_claims() {
        let g = AuthGuard::with(1, Duration::from_secs(2), Duration::from_secs(8));
        let t = Instant::now();
        let claim = |n: u32| AuthSource::Direct {
            ssh_client: Some(format!("192.0.2.{n}")),
            uid: 1000,
        };
        assert_eq!(g.failed(t, &claim(1)), None);
        assert_eq!(g.failed(t, &claim(2)), hold(AuthKey::Uid(1000), 2));
        assert_eq!(g.hold_for(t, &claim(3)), hold(AuthKey::Uid(1000), 2));
        let other = AuthSource::Direct {
            ssh_client: Some("192.0.2.3".into()),
            uid: 1001,
        };
        assert_eq!(g.hold_for(t, &other), None);
        // No address claimed: the uid alone.
        let bare = AuthSource::Direct {
            ssh_client: None,
            uid: 1000,
        };
        assert_eq!(bare.to_string(), "uid 1000");
        assert_eq!(g.hold_for(t, &bare), hold(AuthKey::Uid(1000), 2));
        // The same address again: both keys held, the address named on a
        // tie; the longer hold wins otherwise.
        assert_eq!(g.failed(t, &claim(2)), hold(AuthKey::Uid(1000), 4));
        assert_eq!(
            g.failed(t, &claim(2)),
            hold(AuthKey::Uid(1000), 8),
            "uid at 4 failures, 192.0.2.2 at 3"
        );
        assert_eq!(
            g.failed(t, &claim(2)),
            hold(AuthKey::Peer("192.0.2.2".into()), 8),
            "both at the cap"
        );
        g.succeeded(&claim(2));
        assert_eq!(g.hold_for(t, &claim(2)), hold(AuthKey::Uid(1000), 8));
    }

    #[test]
    fn ssh_connection_addresses() {
        assert_eq!(
            ssh_client_address("192.0.2.1 51234 192.0.2.2 22").as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(
            ssh_client_address("2001:db8::1 1 2001:db8::2 22").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(ssh_client_address("garbage here"), None);
        assert_eq!(ssh_client_address(""), None);
    }
}
