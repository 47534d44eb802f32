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

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{FileType, Mode, OFlags};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

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
/// `log_file` when given (opened by [`open_log_file`]), else stderr.
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
    let result = match log_file {
        Some(path) => builder
            .with_writer(Mutex::new(open_log_file(path)?))
            .try_init(),
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    // Already installed (tests): keep the first one.
    let _ = result;
    Ok(())
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

    #[test]
    fn syslog_times() {
        assert_eq!(syslog_time(0), "Jan  1 00:00:00");
        // 2026-11-25 16:02:11 UTC
        assert_eq!(syslog_time(1_795_622_531), "Nov 25 16:02:11");
        // 2024-02-29 23:59:59 UTC
        assert_eq!(syslog_time(1_709_251_199), "Feb 29 23:59:59");
    }
}
