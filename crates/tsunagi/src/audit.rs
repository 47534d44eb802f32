//! The audit trail (seed 000 appendix B, "5W1H"): one record when a
//! session starts and one when it ends, and one when a serial console
//! connects and disconnects, written to a file and to syslog.
//!
//! A record is one line of `key=value` pairs after a timestamp and an
//! event name, in the manner of logfmt:
//!
//! ```text
//! 2026-12-06T04:40:00Z session-start id=7 profile=vpn protocol=pptp user="alice" from=192.0.2.5:1723 ...
//! ```
//!
//! Values that are not plain tokens are quoted, with `"` and `\` escaped
//! and every control character written as an escape, so that a name the
//! peer chose (a PPP user name, an LCP Terminate text) can neither end the
//! line nor fake another field or record: one record is always one line,
//! and a field's value always ends where its quote does.
//!
//! Sinks: `[daemon] audit_file` (appended; opened with the checks of
//! [`crate::logging::open_log_file`]) and syslog through `/dev/log`
//! (RFC 3164 framing, facility authpriv, which journald reads too). A
//! failed write is logged and counted ([`Audit::errors`]); it never ends a
//! session.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

use crate::config::DaemonSettings;
use crate::logging::{open_log_file, syslog_time, LogFileError};

/// Where syslog listens (journald's socket is linked there).
pub const DEV_LOG: &str = "/dev/log";
/// The syslog tag (journald's `SYSLOG_IDENTIFIER`).
pub const SYSLOG_TAG: &str = "tsunagi-audit";
/// RFC 3164/5424 priority: facility authpriv (10) times 8 plus severity
/// info (6). authpriv is where sshd's logins go, and cu's records in
/// seed 000 appendix B.2.
const PRIORITY: u8 = 10 * 8 + 6;

/// `YYYY-MM-DDThh:mm:ssZ` (RFC 3339, UTC) for a time.
pub fn rfc3339(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = tsunagi_host::civil::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A session's IPCP came up for the first time.
    SessionStart,
    /// A session ended (whether or not IPCP ever came up).
    SessionEnd,
    /// A serial console connected to its device.
    ConsoleConnect,
    /// A serial console left its device.
    ConsoleDisconnect,
}

impl Event {
    /// The record's event word.
    pub fn name(self) -> &'static str {
        match self {
            Event::SessionStart => "session-start",
            Event::SessionEnd => "session-end",
            Event::ConsoleConnect => "console-connect",
            Event::ConsoleDisconnect => "console-disconnect",
        }
    }
}

/// One audit record: an event, its time, and its fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    event: Event,
    time: SystemTime,
    body: String,
}

/// True for a value written without quotes: non-empty, and only letters,
/// digits and `.:/@_+-[]` (addresses, ports, numbers, names of profiles
/// and devices).
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".:/@_+-[]".contains(c))
}

/// Appends `value` quoted: `"` and `\` escaped, control characters (C0,
/// DEL, C1, and the Unicode line and paragraph separators) as `\n`, `\r`,
/// `\t` or `\u{..}`, so the record stays one line.
fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Record {
    /// A record of `event` at `time`, with no fields yet.
    pub fn new(event: Event, time: SystemTime) -> Record {
        Record {
            event,
            time,
            body: String::new(),
        }
    }

    /// Adds `key=value`, the value quoted unless it is a plain token.
    pub fn field(mut self, key: &'static str, value: impl fmt::Display) -> Record {
        let value = value.to_string();
        let _ = write!(self.body, " {key}=");
        if is_token(&value) {
            self.body.push_str(&value);
        } else {
            push_quoted(&mut self.body, &value);
        }
        self
    }

    /// Adds `key="value"`, always quoted: for text someone else chose (a
    /// user name, a reason), so that its reader never has to guess.
    pub fn text(mut self, key: &'static str, value: &str) -> Record {
        let _ = write!(self.body, " {key}=");
        push_quoted(&mut self.body, value);
        self
    }

    /// Adds the field when there is a value.
    pub fn maybe(self, key: &'static str, value: Option<impl fmt::Display>) -> Record {
        match value {
            Some(v) => self.field(key, v),
            None => self,
        }
    }

    /// The event.
    pub fn event(&self) -> Event {
        self.event
    }

    /// The record without its time: `session-start id=7 ...` (what syslog
    /// gets, which stamps its own time).
    pub fn message(&self) -> String {
        format!("{}{}", self.event.name(), self.body)
    }

    /// The record as the file has it: `TIME EVENT FIELDS`, no newline.
    pub fn line(&self) -> String {
        format!("{} {}", rfc3339(self.time), self.message())
    }
}

/// The audit trail's sinks. Shared (the registry holds it in an `Arc`);
/// writes take a short lock on the file only.
#[derive(Debug, Default)]
pub struct Audit {
    file: Option<(PathBuf, Mutex<File>)>,
    syslog: Option<UnixDatagram>,
    syslog_path: PathBuf,
    errors: AtomicU64,
    written: AtomicU64,
}

impl Audit {
    /// No sinks: records go nowhere (tests, and configs with
    /// `audit_syslog = false` and no `audit_file`).
    pub fn disabled() -> Audit {
        Audit::default()
    }

    /// The sinks `[daemon]` asks for. The file is opened now (an error
    /// stops the start, as a bad `log_file` does); a missing `/dev/log` is
    /// one warning and no syslog records.
    pub fn open(settings: &DaemonSettings) -> Result<Audit, LogFileError> {
        Audit::open_with(
            settings.audit_file.as_deref(),
            settings.audit_syslog.then(|| Path::new(DEV_LOG)),
        )
    }

    /// [`Audit::open`] with the syslog socket's path given.
    pub fn open_with(file: Option<&Path>, syslog: Option<&Path>) -> Result<Audit, LogFileError> {
        let file = match file {
            Some(path) => Some((path.to_path_buf(), Mutex::new(open_log_file(path)?))),
            None => None,
        };
        let mut audit = Audit {
            file,
            ..Audit::default()
        };
        if let Some(path) = syslog {
            if path.exists() {
                match UnixDatagram::unbound() {
                    Ok(socket) => {
                        // A syslog daemon that does not read must not stop a
                        // session: the record is counted as not written.
                        let _ = socket.set_nonblocking(true);
                        audit.syslog = Some(socket);
                        audit.syslog_path = path.to_path_buf();
                    }
                    Err(e) => warn!("audit: no syslog socket: {e}; records go to the file only"),
                }
            } else {
                warn!(
                    "audit: {} does not exist (no syslog or journald here): records go to audit_file only",
                    path.display()
                );
            }
        }
        Ok(audit)
    }

    /// True when records go somewhere.
    pub fn enabled(&self) -> bool {
        self.file.is_some() || self.syslog.is_some()
    }

    /// Writes `record` to every sink. A sink that fails is logged and
    /// counted; the others still get the record.
    pub fn write(&self, record: &Record) {
        if !self.enabled() {
            return;
        }
        if let Some((path, file)) = &self.file {
            let mut line = record.line();
            line.push('\n');
            let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
            // One write(2) of the whole line on an O_APPEND file: records
            // of the daemon and of a console process never interleave.
            if let Err(e) = file.write_all(line.as_bytes()) {
                self.failed(format_args!("{}: {e}", path.display()));
            }
        }
        if let Some(socket) = &self.syslog {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            // RFC 3164 section 4.1: <PRI>TIMESTAMP HOSTNAME TAG: MSG; the
            // local socket takes it without HOSTNAME (as syslog(3) sends).
            let datagram = format!(
                "<{PRIORITY}>{} {SYSLOG_TAG}[{}]: {}",
                syslog_time(secs),
                std::process::id(),
                record.message()
            );
            if let Err(e) = socket.send_to(datagram.as_bytes(), &self.syslog_path) {
                self.failed(format_args!("{}: {e}", self.syslog_path.display()));
            }
        }
        self.written.fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&self, what: fmt::Arguments<'_>) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        // The first failure and then one in a hundred: a full disk must
        // not flood the log the failure is reported in.
        if n == 1 || n.is_multiple_of(100) {
            warn!("audit: cannot write a record ({n} failed so far): {what}");
        }
    }

    /// Records that a sink failed to take.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Records written (to at least one sink, or tried).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        // 2026-12-06 04:40:00 UTC.
        assert_eq!(rfc3339(at(1_796_532_000)), "2026-12-06T04:40:00Z");
    }

    #[test]
    fn records_are_one_line_of_fields() {
        let r = Record::new(Event::SessionStart, at(1_796_532_000))
            .field("id", 7)
            .field("profile", "vpn")
            .text("user", "alice")
            .field("from", "192.0.2.5:1723")
            .maybe("inner", Some("10.0.0.2"))
            .maybe("local", None::<&str>)
            .field("reason", "peer terminated");
        assert_eq!(
            r.line(),
            "2026-12-06T04:40:00Z session-start id=7 profile=vpn user=\"alice\" from=192.0.2.5:1723 inner=10.0.0.2 reason=\"peer terminated\""
        );
        assert_eq!(r.event(), Event::SessionStart);
        assert!(r.message().starts_with("session-start id=7 "));
    }

    #[test]
    fn hostile_values_cannot_forge_fields_or_records() {
        let hostile = "bob\" bytes_in=0\n2026-12-06T04:40:00Z session-end id=1 user=\"root\\";
        let r = Record::new(Event::SessionEnd, at(0))
            .text("user", hostile)
            .field("profile", "a b=c")
            .field("empty", "");
        let line = r.line();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(
            line,
            "1970-01-01T00:00:00Z session-end user=\"bob\\\" bytes_in=0\\n2026-12-06T04:40:00Z session-end id=1 user=\\\"root\\\\\" profile=\"a b=c\" empty=\"\""
        );
        // Other control characters, DEL, C1 and the Unicode line breaks.
        let r = Record::new(Event::SessionEnd, at(0))
            .text("user", "a\r\t\u{7f}\u{85}\u{2028}\u{1b}[2Jé");
        assert!(r
            .line()
            .ends_with("user=\"a\\r\\t\\u{7f}\\u{85}\\u{2028}\\u{1b}[2Jé\""));
        // Parsing the quoted value back (a reader's view) gives one field.
        let body = r.message();
        assert_eq!(body.matches(" user=").count(), 1);
    }

    #[test]
    fn file_sink_appends_and_syslog_gets_rfc3164_datagrams() {
        let dir = std::env::temp_dir().join(format!("tsunagi-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("audit.log");
        let sock = dir.join("log");
        let listener = UnixDatagram::bind(&sock).unwrap();
        let audit = Audit::open_with(Some(&file), Some(&sock)).unwrap();
        assert!(audit.enabled());
        let r = Record::new(Event::ConsoleConnect, at(0)).field("device", "/dev/ttyUSB0");
        audit.write(&r);
        audit.write(&r);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            "1970-01-01T00:00:00Z console-connect device=/dev/ttyUSB0\n".repeat(2)
        );
        let mut buf = [0u8; 512];
        let n = listener.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(got.starts_with("<86>"), "{got}");
        assert!(
            got.ends_with(&format!(
                " tsunagi-audit[{}]: console-connect device=/dev/ttyUSB0",
                std::process::id()
            )),
            "{got}"
        );
        // The listener goes away: counted, not fatal.
        drop(listener);
        std::fs::remove_file(&sock).unwrap();
        audit.write(&r);
        assert_eq!(audit.errors(), 1);
        assert_eq!(audit.written(), 3);
        // A missing /dev/log is no error.
        let quiet = Audit::open_with(None, Some(&dir.join("absent"))).unwrap();
        assert!(!quiet.enabled());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
