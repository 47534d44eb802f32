//! What the daemon reads for PPP authentication at start-up, and how it
//! slows down sources that keep failing.
//!
//! - The chap-secrets file (seeds 001, 004) is refused, as ssh refuses a
//!   private key, when group or others may read or write it
//!   ([`tsunagi_ppp::secrets::check_permissions`]); parse errors name the
//!   file and line. A `password_file` gets the same check.
//! - A secret never reaches a log line: [`Credentials`]'s `Debug` redacts.
//! - [`AuthGuard`] wraps the engine's [`FailureLimiter`], keyed by the
//!   peer's source (the ssh client address of a `direct` caller, else the
//!   dial target): after a few failures a source's next sessions wait.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tsunagi_crypto::Secret;
use tsunagi_ppp::auth::SecretsHandle;
use tsunagi_ppp::link::LinkConfig;
use tsunagi_ppp::secrets::{check_permissions, ChapSecrets, FailureLimiter};

use crate::config::{LinkSettings, PasswordSource};

/// Why the daemon cannot use a link's secrets (a start-up error).
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The secrets or password file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Group or others may read or write it (the text says which mode
    /// and how to fix it).
    #[error("{0}")]
    Permissions(String),
    /// A line of the secrets file does not parse.
    #[error("{path}: {source}")]
    Parse {
        /// The secrets file.
        path: String,
        /// The line and what is wrong.
        source: tsunagi_ppp::secrets::SecretsError,
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

/// Reads `path` after checking that only its owner may read it.
fn read_private(path: &Path) -> Result<String, CredentialError> {
    let shown = path.display().to_string();
    let read_err = |source| CredentialError::Read {
        path: shown.clone(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if let Some(why) = check_permissions(&shown, &meta) {
        return Err(CredentialError::Permissions(why));
    }
    std::fs::read_to_string(path).map_err(read_err)
}

/// Reads and parses a chap-secrets file.
pub fn load_secrets(path: &Path) -> Result<ChapSecrets, CredentialError> {
    let text = read_private(path)?;
    ChapSecrets::parse(&text).map_err(|source| CredentialError::Parse {
        path: path.display().to_string(),
        source,
    })
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

    /// What `settings` names: its secrets file and password.
    pub fn load(settings: &LinkSettings) -> Result<Credentials, CredentialError> {
        let a = &settings.auth;
        // Only read the secrets when something uses them: a link that
        // neither requires auth nor has a user has no business with them.
        let wanted = !a.require.is_empty() || (a.user.is_some() && a.password.is_none());
        let secrets = match (&a.secrets, wanted) {
            (Some(path), true) => Some(SecretsHandle(Arc::new(load_secrets(path)?))),
            _ => None,
        };
        let password = match &a.password {
            None => None,
            Some(PasswordSource::Inline(p)) => Some(p.clone()),
            Some(PasswordSource::File(path)) => {
                let text = read_private(path)?;
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

/// The daemon-wide failure limiter, shared by every link.
#[derive(Debug, Clone, Default)]
pub struct AuthGuard(Arc<Mutex<FailureLimiter<String>>>);

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

    fn lock(&self) -> std::sync::MutexGuard<'_, FailureLimiter<String>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a new session from `source` must wait, if at all.
    pub fn hold_for(&self, now: Instant, source: &str) -> Option<Duration> {
        self.lock()
            .hold_until(now, &source.to_string())
            .map(|t| t.saturating_duration_since(now))
    }

    /// Records a failure of `source`; the hold-off it now has.
    pub fn failed(&self, now: Instant, source: &str) -> Duration {
        self.lock().record_failure(now, &source.to_string())
    }

    /// A success forgets `source`.
    pub fn succeeded(&self, source: &str) {
        self.lock().record_success(&source.to_string());
    }
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

    fn temp(name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tsunagi-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
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

    #[test]
    fn guard_holds_off_after_free_failures_and_forgets_on_success() {
        let g = AuthGuard::with(1, Duration::from_secs(2), Duration::from_secs(8));
        let t = Instant::now();
        assert_eq!(g.failed(t, "192.0.2.7"), Duration::ZERO);
        assert_eq!(g.hold_for(t, "192.0.2.7"), None);
        assert_eq!(g.failed(t, "192.0.2.7"), Duration::from_secs(2));
        assert_eq!(g.hold_for(t, "192.0.2.7"), Some(Duration::from_secs(2)));
        assert_eq!(g.hold_for(t, "192.0.2.8"), None);
        assert_eq!(g.failed(t, "192.0.2.7"), Duration::from_secs(4));
        g.succeeded("192.0.2.7");
        assert_eq!(g.hold_for(t, "192.0.2.7"), None);
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
