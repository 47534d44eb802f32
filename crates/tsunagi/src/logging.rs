//! Log lines in the shape operators know from pppd and user-ppp's syslog:
//!
//! ```text
//! Nov 25 16:02:11 tsunagi[4711]: labs: IPCP: myaddr 10.224.1.1 hisaddr = 10.224.1.2
//! ```
//!
//! Time in UTC, `tsunagi[pid]`, then the level when it is not INFO, then the
//! message and its fields. To `[daemon] log_file` (appended) or stderr.
//!
//! The daemon runs as root and appends to its log file, so the file must
//! not be one a local user could choose: it is opened without following a
//! symbolic link, in a directory only root (or the daemon's own user) can
//! change ([`open_log_file`]).
//!
//! Lines that anyone can cause as often as they like (a local user looping
//! on the control socket wrote 3.5 MB of warnings a second, one per
//! connection) go through a [`LogLimiter`]: per cause and source,
//! [`LOG_BUDGET`] lines per [`LOG_WINDOW`], then only counted, and the
//! count written as `... N more in the last 10 s` when the window ends.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::hash::Hash;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::fs::{FileType, Mode, OFlags};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::live_log::Tee;

/// The pppd-like line format.
pub struct PppdFormat {
    pid: u32,
}

impl<S, N> FormatEvent<S, N> for PppdFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        write!(writer, "{} tsunagi[{}]: ", syslog_time(secs), self.pid)?;
        let level = *event.metadata().level();
        if level != Level::INFO {
            write!(writer, "{level}: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// `Mmm dd hh:mm:ss` (syslog's RFC 3164 timestamp) for a Unix time, UTC.
pub fn syslog_time(unix_secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    let (_, month, day) = tsunagi_host::civil::civil_from_days(days);
    format!(
        "{} {:2} {:02}:{:02}:{:02}",
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Why a log file is not used.
#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    /// The path names a symbolic link (`O_NOFOLLOW` refused it).
    #[error(
        "log file {path}: it is a symbolic link, which the daemon does not follow: \
         name the file itself"
    )]
    Symlink {
        /// The log file.
        path: String,
    },
    /// The path names something other than a regular file.
    #[error("log file {path}: it is a {kind}, not a regular file")]
    NotAFile {
        /// The log file.
        path: String,
        /// What it is ("directory", "fifo", ...).
        kind: &'static str,
    },
    /// Its directory may be changed by someone other than root or us.
    #[error(
        "log file {path}: its directory {dir} (mode {mode:04o}, owner uid {owner}) is \
         {problem}: whoever may change that directory can swap the log for a link to any \
         file, which the daemon would append to; use a directory only root can change, \
         e.g. /var/log/tsunagi with mode 0755"
    )]
    OpenDirectory {
        /// The log file.
        path: String,
        /// Its directory.
        dir: String,
        /// The directory's mode (with the sticky bit).
        mode: u32,
        /// The directory's owner.
        owner: u32,
        /// What is wrong with it.
        problem: DirectoryProblem,
    },
    /// Opening or inspecting failed.
    #[error("log file {path}: {source}")]
    Io {
        /// The log file.
        path: String,
        /// Why.
        source: io::Error,
    },
}

/// What makes a directory unfit to hold the log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryProblem {
    /// Others may create and remove entries. With the sticky bit they
    /// cannot remove ours, but they can make the name first (a file of
    /// theirs, which they then read and truncate, or a link), so a sticky
    /// `/tmp` is refused too.
    WritableByOthers,
    /// A group other than root's may create and remove entries
    /// (logrotate's rule: "writable by group which is not root").
    WritableByGroup(u32),
    /// Its owner, neither root nor the daemon's user, may chmod it.
    OwnedByAnother,
}

impl fmt::Display for DirectoryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectoryProblem::WritableByOthers => f.write_str("writable by others (sticky or not)"),
            DirectoryProblem::WritableByGroup(gid) => {
                write!(f, "writable by group {gid}, which is not root's")
            }
            DirectoryProblem::OwnedByAnother => {
                f.write_str("owned by a user that is neither root nor the daemon's")
            }
        }
    }
}

/// Whether a directory with this `mode`, `owner` and `group` lets someone
/// other than root or `euid` (the daemon's user) change its entries.
pub fn directory_problem(mode: u32, owner: u32, group: u32, euid: u32) -> Option<DirectoryProblem> {
    if mode & 0o002 != 0 {
        Some(DirectoryProblem::WritableByOthers)
    } else if mode & 0o020 != 0 && group != 0 {
        Some(DirectoryProblem::WritableByGroup(group))
    } else if owner != 0 && owner != euid {
        Some(DirectoryProblem::OwnedByAnother)
    } else {
        None
    }
}

/// Opens `path` to append log lines (`O_APPEND`, created if missing,
/// `O_CLOEXEC`). Its directory is opened first and checked with
/// [`directory_problem`]; the file is then opened relative to that very
/// directory with `O_NOFOLLOW`, so neither a link swapped in for the file
/// nor for the directory (nor any directory above it) can redirect the
/// daemon's writes. A FIFO is refused rather than waited on.
pub fn open_log_file(path: &Path) -> Result<File, LogFileError> {
    let shown = path.display().to_string();
    let io_error = |source: io::Error| LogFileError::Io {
        path: shown.clone(),
        source,
    };
    let Some(name) = path.file_name() else {
        return Err(io_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            "names no file",
        )));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        io_error(io::Error::new(
            io::Error::from(e).kind(),
            format!("cannot open its directory {}: {e}", dir.display()),
        ))
    })?;
    let dir_file = File::from(dir_fd);
    let meta = dir_file.metadata().map_err(io_error)?;
    let euid = rustix::process::geteuid().as_raw();
    if let Some(problem) = directory_problem(meta.mode(), meta.uid(), meta.gid(), euid) {
        return Err(LogFileError::OpenDirectory {
            path: shown,
            dir: dir.display().to_string(),
            mode: meta.mode() & 0o7777,
            owner: meta.uid(),
            problem,
        });
    }
    // O_NONBLOCK only so that a FIFO fails instead of blocking the start;
    // it means nothing to a regular file.
    let flags = OFlags::WRONLY
        | OFlags::APPEND
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC
        | OFlags::NONBLOCK;
    let fd = match rustix::fs::openat(&dir_file, name, flags, Mode::from_raw_mode(0o666)) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::LOOP) => return Err(LogFileError::Symlink { path: shown }),
        Err(e) => return Err(io_error(e.into())),
    };
    let file = File::from(fd);
    let kind = file.metadata().map_err(io_error)?.mode();
    match FileType::from_raw_mode(kind) {
        FileType::RegularFile => Ok(file),
        other => Err(LogFileError::NotAFile {
            path: shown,
            kind: file_type_name(other),
        }),
    }
}

/// A file type in words.
fn file_type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "fifo",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

/// Install the global subscriber: `RUST_LOG` filter (default `info`, the
/// netlink crates only at `error`), to
/// `log_file` when given (opened by [`open_log_file`]), else stderr; and
/// to the ring of [`crate::live_log`].
pub fn init(log_file: Option<&Path>) -> Result<(), LogFileError> {
    // netlink-packet-route warns about every attribute newer than itself
    // (e.g. IFLA_INET6_CONF of a newer kernel): noise to an operator.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,netlink_packet_route=error,netlink_packet_core=error")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Field values in colour codes are noise in a log file or journal.
        .with_ansi(false)
        .event_format(PppdFormat {
            pid: std::process::id(),
        });
    // Each line also goes to the ring `tsunagi log` reads.
    let result = match log_file {
        Some(path) => builder
            .with_writer(Tee(Mutex::new(open_log_file(path)?)))
            .try_init(),
        None => builder.with_writer(Tee(std::io::stderr)).try_init(),
    };
    // Already installed (tests): keep the first one.
    let _ = result;
    Ok(())
}

/// Lines written per cause and source in one [`LOG_WINDOW`] before the
/// rest are only counted: enough to show what is happening and who does
/// it, few enough that a loop on the control socket adds a few hundred
/// bytes per window instead of megabytes per second.
pub const LOG_BUDGET: u32 = 5;
/// The window [`LOG_BUDGET`] is counted in, and the period of the
/// summaries.
pub const LOG_WINDOW: Duration = Duration::from_secs(10);
/// Most (cause, source) keys counted at once: a few dozen bytes each, so
/// the limiter stays small however many sources there are. Lines of keys
/// beyond it share one budget ([`Source::Others`]).
pub const LOG_KEYS: usize = 1024;

/// Whose lines a [`Summary`] counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source<K> {
    /// One cause and source.
    Key(K),
    /// The keys that came when [`LOG_KEYS`] were already counted.
    Others,
}

/// Lines of one window that were counted and not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary<K> {
    /// Whose.
    pub source: Source<K>,
    /// How many.
    pub suppressed: u64,
    /// The window they fell in.
    pub window: Duration,
}

impl<K: fmt::Display> fmt::Display for Summary<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, secs) = (self.suppressed, self.window.as_secs());
        match &self.source {
            Source::Key(key) => write!(f, "{key}: {n} more in the last {secs} s"),
            Source::Others => write!(
                f,
                "rate-limited warnings of other sources: {n} more in the last {secs} s"
            ),
        }
    }
}

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Admit {
    /// Write it.
    Write,
    /// Only count it: the `n`th counted in this window.
    Count(u64),
}

/// One key's window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    written: u32,
    suppressed: u64,
}

impl Window {
    fn new(start: Instant) -> Window {
        Window {
            start,
            written: 0,
            suppressed: 0,
        }
    }

    fn admit(&mut self, budget: u32) -> Admit {
        if self.written < budget {
            self.written += 1;
            Admit::Write
        } else {
            self.suppressed += 1;
            Admit::Count(self.suppressed)
        }
    }
}

/// Counts lines by key in fixed windows that start with a key's first line;
/// no I/O and no clock of its own (time is an argument). Call
/// [`RateLimit::expire`] before [`RateLimit::admit`] with the same `now`,
/// and again at [`RateLimit::poll_at`].
#[derive(Debug)]
pub struct RateLimit<K> {
    budget: u32,
    window: Duration,
    max_keys: usize,
    windows: HashMap<K, Window>,
    others: Option<Window>,
    /// When the first window ends; `expire` before then has nothing to do.
    first_end: Option<Instant>,
}

impl<K: Hash + Eq + Clone> RateLimit<K> {
    /// `budget` lines per `window` and key, at most `max_keys` keys.
    pub fn new(budget: u32, window: Duration, max_keys: usize) -> RateLimit<K> {
        RateLimit {
            budget,
            window,
            max_keys,
            windows: HashMap::new(),
            others: None,
            first_end: None,
        }
    }

    /// One more line of `key` at `now`.
    pub fn admit(&mut self, now: Instant, key: K) -> Admit {
        let full = self.windows.len() >= self.max_keys;
        let window = match self.windows.get_mut(&key) {
            Some(w) => w,
            None if full => self.others.get_or_insert_with(|| Window::new(now)),
            None => self.windows.entry(key).or_insert_with(|| Window::new(now)),
        };
        let end = window.start + self.window;
        self.first_end = Some(self.first_end.map_or(end, |e| e.min(end)));
        window.admit(self.budget)
    }

    /// Ends the windows that are over at `now` (their keys are forgotten)
    /// and returns the summaries of those that counted lines.
    pub fn expire(&mut self, now: Instant) -> Vec<Summary<K>> {
        match self.first_end {
            Some(end) if now >= end => {
                let window = self.window;
                self.end_windows(|w| now >= w.start + window)
            }
            _ => Vec::new(),
        }
    }

    /// Ends every window, over or not, and returns the summaries of those
    /// that counted lines (at shutdown).
    pub fn drain(&mut self) -> Vec<Summary<K>> {
        self.end_windows(|_| true)
    }

    /// Ends the windows for which `over` holds: the summaries of those
    /// that counted lines.
    fn end_windows(&mut self, over: impl Fn(&Window) -> bool) -> Vec<Summary<K>> {
        let window = self.window;
        let summary = |source, w: &Window| {
            (w.suppressed > 0).then_some(Summary {
                source,
                suppressed: w.suppressed,
                window,
            })
        };
        let mut summaries = Vec::new();
        self.windows.retain(|key, w| {
            let ended = over(w);
            if ended {
                summaries.extend(summary(Source::Key(key.clone()), w));
            }
            !ended
        });
        if let Some(w) = self.others.filter(|w| over(w)) {
            summaries.extend(summary(Source::Others, &w));
            self.others = None;
        }
        self.first_end = self
            .windows
            .values()
            .chain(&self.others)
            .map(|w| w.start + window)
            .min();
        summaries
    }

    /// When the next window that counted lines ends: when to call
    /// [`RateLimit::expire`] for its summary. `None`: no summary is due.
    pub fn poll_at(&self) -> Option<Instant> {
        self.windows
            .values()
            .chain(&self.others)
            .filter(|w| w.suppressed > 0)
            .map(|w| w.start + self.window)
            .min()
    }

    /// Keys counted now (for tests: memory stays bounded).
    pub fn keys(&self) -> usize {
        self.windows.len()
    }
}

/// A [`RateLimit`] that writes: warnings through [`LogLimiter::warn`],
/// summaries from [`LogLimiter::write_summaries`] (run it as a task).
#[derive(Debug)]
pub struct LogLimiter<K> {
    limit: Mutex<RateLimit<K>>,
    /// Woken when a window first counts a line, so that its summary is
    /// written when it ends even if no other line comes.
    counting: tokio::sync::Notify,
}

impl<K: Hash + Eq + Clone + fmt::Display> Default for LogLimiter<K> {
    fn default() -> Self {
        LogLimiter {
            limit: Mutex::new(RateLimit::new(LOG_BUDGET, LOG_WINDOW, LOG_KEYS)),
            counting: tokio::sync::Notify::new(),
        }
    }
}

impl<K: Hash + Eq + Clone + fmt::Display> LogLimiter<K> {
    /// Writes the warning `{key}: {detail}` unless `key` has used its
    /// budget; writes the summaries of windows that have ended first.
    pub fn warn(&self, key: K, detail: impl fmt::Display) {
        let now = Instant::now();
        let (summaries, admit) = {
            let mut limit = self.limit.lock().unwrap_or_else(|e| e.into_inner());
            let summaries = limit.expire(now);
            (summaries, limit.admit(now, key.clone()))
        };
        for s in summaries {
            tracing::warn!("{s}");
        }
        match admit {
            Admit::Write => tracing::warn!("{key}: {detail}"),
            Admit::Count(1) => self.counting.notify_one(),
            Admit::Count(_) => {}
        }
    }

    /// Writes the summaries of every window now, ended or not (at
    /// shutdown).
    pub fn write_all_summaries(&self) {
        let summaries = self.limit.lock().unwrap_or_else(|e| e.into_inner()).drain();
        for s in summaries {
            tracing::warn!("{s}");
        }
    }

    /// Writes each summary when its window ends; never returns.
    pub async fn write_summaries(&self) {
        loop {
            let due = self
                .limit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .poll_at();
            match due {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = self.counting.notified() => continue,
                    }
                }
                None => {
                    self.counting.notified().await;
                    continue;
                }
            }
            let summaries = self
                .limit
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .expire(Instant::now());
            for s in summaries {
                tracing::warn!("{s}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn directories_only_root_or_we_can_change() {
        use DirectoryProblem::*;
        let us = 0;
        for (mode, owner, group, euid, want) in [
            (0o755, 0, 0, us, None),
            (0o700, 0, 0, us, None),
            // Root's group may write (as root's umask 002 makes).
            (0o775, 0, 0, us, None),
            (0o775, 0, 104, us, Some(WritableByGroup(104))),
            (0o757, 0, 0, us, Some(WritableByOthers)),
            (0o777, 0, 0, us, Some(WritableByOthers)),
            (0o1777, 0, 0, us, Some(WritableByOthers)),
            (0o755, 1000, 1000, us, Some(OwnedByAnother)),
            // A daemon run by uid 1000 in its own directory.
            (0o755, 1000, 1000, 1000, None),
            (0o40755, 0, 0, us, None),
        ] {
            assert_eq!(
                directory_problem(mode, owner, group, euid),
                want,
                "{mode:o} {owner} {group} {euid}"
            );
        }
    }

    /// A scratch directory with `mode`, removed on drop.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(tag: &str, mode: u32) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("tsunagi-log-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn log_file_is_appended_not_followed() {
        let dir = Scratch::new("open", 0o755);
        let log = dir.0.join("t.log");
        std::fs::write(&log, "old\n").unwrap();
        io::Write::write_all(&mut open_log_file(&log).unwrap(), b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "old\nnew\n");
        std::fs::remove_file(&log).unwrap();

        // A link to a file, or to where a file would be made: refused,
        // the target untouched and not created.
        let victim = dir.0.join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        for target in [&victim, &dir.0.join("nowhere")] {
            std::os::unix::fs::symlink(target, &log).unwrap();
            let e = open_log_file(&log).unwrap_err();
            assert!(matches!(e, LogFileError::Symlink { .. }), "{e}");
            assert!(
                e.to_string().starts_with(&format!(
                    "log file {}: it is a symbolic link",
                    log.display()
                )),
                "{e}"
            );
            std::fs::remove_file(&log).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!dir.0.join("nowhere").exists());

        // Not a regular file.
        let e = open_log_file(&dir.0).unwrap_err();
        assert!(e.to_string().contains("log file"), "{e}");
        let e = open_log_file(Path::new("/dev/null")).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        // No directory.
        let e = open_log_file(&dir.0.join("none/t.log")).unwrap_err();
        assert!(e.to_string().contains("cannot open its directory"), "{e}");
    }

    #[test]
    fn log_file_in_a_directory_others_may_write_is_refused() {
        for mode in [0o777, 0o1777, 0o703] {
            let dir = Scratch::new(&format!("{mode:o}"), mode);
            let log = dir.0.join("t.log");
            let e = open_log_file(&log).unwrap_err().to_string();
            assert!(
                e.contains(&format!(
                    "its directory {} (mode {mode:04o}, owner uid",
                    dir.0.display()
                )) && e.contains("writable by others (sticky or not)"),
                "{e}"
            );
            assert!(!log.exists());
        }
    }

    /// Budget, summary when the window ends, a fresh window after it.
    #[test]
    fn rate_limit_writes_a_budget_then_counts_then_summarises() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut limit = RateLimit::new(3, Duration::from_secs(10), 8);
        let mut got = Vec::new();
        for i in 0..10u64 {
            assert!(limit.expire(at(i * 100)).is_empty());
            got.push(limit.admit(at(i * 100), ("closed", 1000)));
        }
        use Admit::*;
        assert_eq!(
            got,
            [
                Write,
                Write,
                Write,
                Count(1),
                Count(2),
                Count(3),
                Count(4),
                Count(5),
                Count(6),
                Count(7)
            ]
        );
        // Another source and another cause have budgets of their own.
        assert_eq!(limit.admit(at(1000), ("closed", 0)), Write);
        assert_eq!(limit.admit(at(1000), ("malformed", 1000)), Write);
        // The summary is due when the first window ends, not before.
        assert_eq!(limit.poll_at(), Some(at(10_000)));
        assert!(limit.expire(at(9_999)).is_empty());
        let summaries = limit.expire(at(10_000));
        assert_eq!(
            summaries,
            [Summary {
                source: Source::Key(("closed", 1000)),
                suppressed: 7,
                window: Duration::from_secs(10),
            }]
        );
        assert_eq!(limit.keys(), 2);
        // Nothing counted in the others: no summary, and then forgotten.
        assert_eq!(limit.poll_at(), None);
        assert!(limit.expire(at(11_000)).is_empty());
        assert_eq!(limit.keys(), 0);
        // A new window writes again.
        assert_eq!(limit.admit(at(12_000), ("closed", 1000)), Write);
        // At shutdown, what was counted is summarised, over or not.
        for _ in 0..5 {
            let _ = limit.admit(at(12_000), ("closed", 1000));
        }
        assert_eq!(limit.poll_at(), Some(at(22_000)));
        let summaries = limit.drain();
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].suppressed, 3);
        assert_eq!((limit.keys(), limit.poll_at()), (0, None));
    }

    /// Keys beyond the cap share one budget, summarised as "other sources".
    #[test]
    fn rate_limit_keys_are_capped() {
        let t0 = Instant::now();
        let mut limit = RateLimit::new(2, Duration::from_secs(10), 2);
        for uid in 0..100u32 {
            let _ = limit.admit(t0, uid);
        }
        assert_eq!(limit.keys(), 2);
        let summaries = limit.expire(t0 + Duration::from_secs(10));
        assert_eq!(
            summaries,
            [Summary {
                source: Source::Others,
                suppressed: 96,
                window: Duration::from_secs(10),
            }]
        );
        assert_eq!(
            summaries[0].to_string(),
            "rate-limited warnings of other sources: 96 more in the last 10 s"
        );
        assert_eq!(limit.keys(), 0);
        assert_eq!(
            Summary {
                source: Source::Key("control socket: uid 0: malformed request"),
                suppressed: 12,
                window: LOG_WINDOW,
            }
            .to_string(),
            "control socket: uid 0: malformed request: 12 more in the last 10 s"
        );
    }

    #[test]
    fn syslog_times() {
        assert_eq!(syslog_time(0), "Jan  1 00:00:00");
        // 2026-11-25 16:02:11 UTC
        assert_eq!(syslog_time(1_795_622_531), "Nov 25 16:02:11");
        // 2024-02-29 23:59:59 UTC
        assert_eq!(syslog_time(1_709_251_199), "Feb 29 23:59:59");
    }
}
