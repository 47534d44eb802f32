//! What a local user may cost the daemon through the control socket
//! (mode 0666: anyone may connect).
//!
//! - A client has [`REQUEST_TIMEOUT`] to send its request line.
//! - Warnings about control connections go through one
//!   [`LogLimiter`](crate::logging::LogLimiter) keyed by [`WarningKey`]:
//!   cause and uid, so that a user looping on the socket cannot fill the
//!   disk, and the summary still says who did it.

use std::fmt;
use std::time::Duration;

use crate::logging::LogLimiter;

/// How long a control client may take to send its request line: a client
/// that connects and never finishes its line must not hold a task, and
/// the fds it passed, for ever.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a control connection earned a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlWarning {
    /// accept(2) failed (EMFILE, ENFILE, ...).
    Accept,
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
