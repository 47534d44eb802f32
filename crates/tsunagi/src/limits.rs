//! What a local user may cost the daemon through the control socket
//! (mode 0666: anyone may connect).
//!
//! Found: with the usual limit of 1,024 open files, an unprivileged user
//! holding 1,100 idle control connections made every redial fail ("cannot
//! create the device socketpair: Too many open files") and root's `status`
//! time out until the user let go. So:
//!
//! - The daemon raises its soft limit on open files to the hard limit at
//!   start ([`raise_open_files_limit`]).
//! - Control connections are counted ([`ConnectionLimits`]): per uid, all
//!   users but root together, and root apart, so that root is never refused
//!   for another user's load. A connection over its cap is answered
//!   `refused` at once, saying which cap, and closed.
//! - A client has [`REQUEST_TIMEOUT`] to send its request line, and as long
//!   again to take the answer.
//! - accept(2) failures (EMFILE, ENFILE, ...) back off ([`AcceptBackoff`])
//!   instead of spinning.
//! - Warnings about control connections go through one
//!   [`LogLimiter`](crate::logging::LogLimiter) keyed by [`WarningKey`]:
//!   cause and uid, so that a user looping on the socket cannot fill the
//!   disk, and the summary still says who did it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Resource, Rlimit};

use crate::logging::LogLimiter;

/// How long a control client may take to send its request line (and to
/// take the answer): a client that connects and never finishes its line
/// must not hold a task, and the fds it passed, for ever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Control connections one uid other than root may have open at once
/// (while its requests are read and answered; a `direct` stream handed to
/// its profile no longer counts, see [`ConnectionPermit::release`]). A
/// user's commands take one each, for a moment; 16 leaves room for scripts
/// that ask in parallel. Each holds up to 3 fds (the connection and the 2
/// a `direct` request may pass, [`crate::control::MAX_FDS`]).
pub const MAX_CONNECTIONS_PER_UID: usize = 16;
/// Control connections all uids other than root may have open together:
/// at most 192 fds (3 each), under a fifth of the common limit of 1,024,
/// so that links, tuns, device commands, netlink and root keep the rest
/// whatever local users do.
pub const MAX_UNPRIVILEGED_CONNECTIONS: usize = 64;
/// Root's control connections, counted apart from everyone else's, so that
/// root is never refused for another user's load (and a runaway root
/// script cannot take every fd either).
pub const MAX_ROOT_CONNECTIONS: usize = 64;

/// First wait after accept(2) fails.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest wait after accept(2) fails: once fds are free again, the next
/// connection waits at most this long.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The soft limit on open files at start, after [`raise_open_files_limit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenFiles {
    /// Raised from `from` to the hard limit `to`.
    Raised {
        /// The soft limit the daemon was started with.
        from: u64,
        /// The hard limit, now the soft one.
        to: u64,
    },
    /// Left as it was: at the hard limit already (`None`: unlimited).
    Unchanged {
        /// The soft limit.
        soft: Option<u64>,
        /// The hard limit.
        hard: Option<u64>,
    },
    /// The raise failed; the soft limit stays.
    NotRaised {
        /// The soft limit.
        soft: u64,
        /// The hard limit.
        hard: u64,
        /// Why.
        error: String,
    },
}

impl fmt::Display for OpenFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenFiles::Raised { from, to } => {
                write!(
                    f,
                    "open files: limit raised from {from} to {to} (the hard limit)"
                )
            }
            OpenFiles::Unchanged { soft, hard } if soft == hard => {
                write!(f, "open files: limit {} (the hard limit)", Limit(*soft))
            }
            OpenFiles::Unchanged { soft, hard } => write!(
                f,
                "open files: limit {} (the hard limit: {})",
                Limit(*soft),
                Limit(*hard)
            ),
            OpenFiles::NotRaised { soft, hard, error } => write!(
                f,
                "open files: limit {soft}; cannot raise it to the hard limit {hard}: {error}"
            ),
        }
    }
}

/// Raises this process's soft limit on open files (RLIMIT_NOFILE) to its
/// hard limit: the soft limit is often 1,024 while the hard one is far
/// higher, and every link, tun, device command and control connection
/// takes fds. (Programs the daemon runs inherit the raised limit; ssh and
/// the hook scripts do not mind.)
pub fn raise_open_files_limit() -> OpenFiles {
    let limit = rustix::process::getrlimit(Resource::Nofile);
    match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) if soft < hard => {
            let raised = Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            match rustix::process::setrlimit(Resource::Nofile, raised) {
                Ok(()) => OpenFiles::Raised {
                    from: soft,
                    to: hard,
                },
                Err(e) => OpenFiles::NotRaised {
                    soft,
                    hard,
                    error: e.to_string(),
                },
            }
        }
        (soft, hard) => OpenFiles::Unchanged { soft, hard },
    }
}

/// An rlimit value in words (`None`: unlimited).
struct Limit(Option<u64>);

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("unlimited"),
        }
    }
}

/// Caps of [`ConnectionLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Per uid other than root.
    pub per_uid: usize,
    /// All uids other than root together.
    pub unprivileged: usize,
    /// Root.
    pub root: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            per_uid: MAX_CONNECTIONS_PER_UID,
            unprivileged: MAX_UNPRIVILEGED_CONNECTIONS,
            root: MAX_ROOT_CONNECTIONS,
        }
    }
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverCap {
    /// Its uid has its cap of connections open.
    Uid(usize),
    /// Users other than root have theirs open together.
    Unprivileged(usize),
    /// Root has its own cap open.
    Root(usize),
}

impl fmt::Display for OverCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverCap::Uid(n) => write!(
                f,
                "{n} control connections of this uid are open, the most one uid may have"
            ),
            OverCap::Unprivileged(n) => write!(
                f,
                "{n} control connections of users other than root are open, \
                 the most they may have together"
            ),
            OverCap::Root(n) => write!(
                f,
                "{n} control connections of root are open, the most root may have"
            ),
        }
    }
}

/// The control connections open now, by uid.
#[derive(Debug, Default)]
struct Counts {
    root: usize,
    unprivileged: usize,
    /// Only uids with connections open: at most `unprivileged` entries.
    per_uid: HashMap<u32, usize>,
}

/// Counts control connections against [`Caps`]; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct ConnectionLimits {
    caps: Caps,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionLimits {
    /// Limits with `caps` instead of the constants (tests).
    pub fn with_caps(caps: Caps) -> ConnectionLimits {
        ConnectionLimits {
            caps,
            counts: Arc::default(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more connection of `uid`, or why not. The permit counts it
    /// until it is released or dropped.
    pub fn admit(&self, uid: u32) -> Result<ConnectionPermit, OverCap> {
        let mut counts = self.counts();
        if uid == 0 {
            if counts.root >= self.caps.root {
                return Err(OverCap::Root(self.caps.root));
            }
            counts.root += 1;
        } else {
            let mine = counts.per_uid.get(&uid).copied().unwrap_or(0);
            if mine >= self.caps.per_uid {
                return Err(OverCap::Uid(self.caps.per_uid));
            }
            if counts.unprivileged >= self.caps.unprivileged {
                return Err(OverCap::Unprivileged(self.caps.unprivileged));
            }
            counts.unprivileged += 1;
            *counts.per_uid.entry(uid).or_default() += 1;
        }
        Ok(ConnectionPermit {
            held: Some((self.clone(), uid)),
        })
    }

    fn release(&self, uid: u32) {
        let mut counts = self.counts();
        if uid == 0 {
            counts.root -= 1;
            return;
        }
        counts.unprivileged -= 1;
        if let Some(n) = counts.per_uid.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                counts.per_uid.remove(&uid);
            }
        }
    }

    /// Connections counted now: (root's, the others').
    pub fn open(&self) -> (usize, usize) {
        let counts = self.counts();
        (counts.root, counts.unprivileged)
    }
}

/// One connection counted by [`ConnectionLimits`].
#[derive(Debug)]
pub struct ConnectionPermit {
    held: Option<(ConnectionLimits, u32)>,
}

impl ConnectionPermit {
    /// Stops counting the connection before it ends: for a `direct`
    /// stream once it is queued to its profile, which runs one stream at a
    /// time (and queues a few requests), so such streams are bounded by the
    /// config, not by this cap. Releasing twice does nothing.
    pub fn release(&mut self) {
        if let Some((limits, uid)) = self.held.take() {
            limits.release(uid);
        }
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.release();
    }
}

/// The wait after each failed accept(2): from [`ACCEPT_BACKOFF_MIN`],
/// doubled at each failure in a row up to [`ACCEPT_BACKOFF_MAX`], and back
/// to the start once a connection is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptBackoff {
    next: Duration,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            next: ACCEPT_BACKOFF_MIN,
        }
    }
}

impl AcceptBackoff {
    /// accept(2) failed: how long to wait before the next one.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(ACCEPT_BACKOFF_MAX);
        wait
    }

    /// A connection was accepted.
    pub fn succeeded(&mut self) {
        self.next = ACCEPT_BACKOFF_MIN;
    }
}

/// Why a control connection earned a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlWarning {
    /// accept(2) failed (EMFILE, ENFILE, ...).
    Accept,
    /// Over its cap of connections ([`ConnectionLimits`]): closed at once.
    OverCap,
    /// The client closed the connection without sending a request.
    NoRequest,
    /// No request line within [`REQUEST_TIMEOUT`].
    Timeout,
    /// A line that is no request of ours (or too long, or too many fds).
    Malformed,
    /// A request this uid may not make.
    Refused,
    /// Asking for the caller's credentials, reading or answering failed.
    Io,
}

impl fmt::Display for ControlWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlWarning::Accept => f.write_str("accept failed"),
            ControlWarning::OverCap => f.write_str("over the connection cap"),
            ControlWarning::NoRequest => f.write_str("closed without a request"),
            ControlWarning::Timeout => {
                write!(f, "no request line within {} s", REQUEST_TIMEOUT.as_secs())
            }
            ControlWarning::Malformed => f.write_str("request not understood"),
            ControlWarning::Refused => f.write_str("request refused"),
            ControlWarning::Io => f.write_str("connection failed"),
        }
    }
}

/// The rate limit key of a control-socket warning: its cause and the
/// caller's uid (`None` before the uid is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WarningKey {
    /// Why.
    pub warning: ControlWarning,
    /// Whose connection.
    pub uid: Option<u32>,
}

impl fmt::Display for WarningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.uid {
            Some(uid) => write!(f, "control socket: uid {uid}: {}", self.warning),
            None => write!(f, "control socket: {}", self.warning),
        }
    }
}

/// The limiter of the control socket's warnings.
pub type ControlWarnings = LogLimiter<WarningKey>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_uid_for_all_users_and_root_apart() {
        let limits = ConnectionLimits::with_caps(Caps {
            per_uid: 2,
            unprivileged: 3,
            root: 2,
        });
        let a1 = limits.admit(1000).unwrap();
        let _a2 = limits.admit(1000).unwrap();
        assert_eq!(limits.admit(1000).unwrap_err(), OverCap::Uid(2));
        let b1 = limits.admit(1001).unwrap();
        // Three users' connections open: a fourth user is refused, root not.
        assert_eq!(limits.admit(1002).unwrap_err(), OverCap::Unprivileged(3));
        let r1 = limits.admit(0).unwrap();
        let _r2 = limits.admit(0).unwrap();
        assert_eq!(limits.admit(0).unwrap_err(), OverCap::Root(2));
        assert_eq!(limits.open(), (2, 3));
        // Dropped or released, a permit frees its place, once.
        drop(a1);
        let mut b2 = limits.admit(1001).unwrap();
        b2.release();
        b2.release();
        drop(b2);
        assert_eq!(limits.open(), (2, 2));
        drop((b1, r1));
        assert_eq!(limits.open(), (1, 1));
        let _c = limits.admit(1002).unwrap();
        assert!(limits.admit(0).is_ok());
        // Uids without connections are forgotten.
        assert_eq!(limits.counts().per_uid.len(), 2);
    }

    #[test]
    fn accept_backoff_grows_to_its_cap_and_resets() {
        let mut backoff = AcceptBackoff::default();
        let waits: Vec<u128> = (0..9).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), ACCEPT_BACKOFF_MIN);
    }

    #[test]
    fn open_files_limit_is_raised_to_the_hard_limit() {
        let before = rustix::process::getrlimit(Resource::Nofile);
        let outcome = raise_open_files_limit();
        let after = rustix::process::getrlimit(Resource::Nofile);
        assert_eq!(after.current, before.maximum, "{outcome}");
        assert!(outcome.to_string().starts_with("open files: "), "{outcome}");
    }

    #[test]
    fn warning_keys_name_the_uid_and_the_cause() {
        let key = |warning, uid| WarningKey { warning, uid }.to_string();
        assert_eq!(
            key(ControlWarning::Malformed, Some(65534)),
            "control socket: uid 65534: request not understood"
        );
        assert_eq!(
            key(ControlWarning::Accept, None),
            "control socket: accept failed"
        );
        assert_eq!(
            key(ControlWarning::Timeout, Some(0)),
            "control socket: uid 0: no request line within 10 s"
        );
    }
}
