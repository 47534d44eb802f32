//! Log lines in the shape operators know from pppd and user-ppp's syslog:
//!
//! ```text
//! Nov 25 16:02:11 tsunagi[4711]: labs: IPCP: myaddr 10.224.1.1 hisaddr = 10.224.1.2
//! ```
//!
//! Time in UTC, `tsunagi[pid]`, then the level when it is not INFO, then the
//! message and its fields. To `[daemon] log_file` (appended) or stderr.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// Install the global subscriber: `RUST_LOG` filter (default `info`, the
/// netlink crates only at `error`), to
/// `log_file` when given, else stderr.
pub fn init(log_file: Option<&Path>) -> std::io::Result<()> {
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
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            builder.with_writer(Mutex::new(file)).try_init()
        }
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    // Already installed (tests): keep the first one.
    let _ = result;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn syslog_times() {
        assert_eq!(super::syslog_time(0), "Jan  1 00:00:00");
        // 2026-11-25 16:02:11 UTC
        assert_eq!(super::syslog_time(1_795_622_531), "Nov 25 16:02:11");
        // 2024-02-29 23:59:59 UTC
        assert_eq!(super::syslog_time(1_709_251_199), "Feb 29 23:59:59");
    }
}
