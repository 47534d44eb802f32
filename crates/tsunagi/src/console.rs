//! `tsunagi console DEVICE [-s SPEED]`: a serial console, as seed 000 §5
//! uses `cu -l /dev/ucom0` to reach a router when the network is down.
//!
//! Like cu(1) (Taylor UUCP's and the BSDs'):
//! - the device is opened with `O_NOCTTY` (it must not become our
//!   controlling terminal) and `O_NONBLOCK` (no wait for carrier), then
//!   set raw at SPEED, 8N1, `CLOCAL` (modem lines ignored), no flow control;
//! - a UUCP lock file `/var/lock/LCK..NAME` (HDB format: the pid in ten
//!   columns) keeps two users (and cu) off one line; a stale one (its pid
//!   gone) is replaced; no `/var/lock` is a warning;
//! - the local terminal, when stdin is one, is raw while connected and
//!   restored on every way out (escape, device gone, a signal);
//! - `~.` or `~^D` typed at the start of a line (after CR or LF, or as the
//!   first thing) leaves; `~~` sends one `~`; `~` followed by anything
//!   else sends both;
//! - `Connected.` and `Disconnected.` go to stderr.
//!
//! Connect and disconnect are audit records ([`crate::audit`], seed 000
//! appendix B.2, cu's aculog): who (uid and name, and `SUDO_USER`), from
//! where (`SSH_CONNECTION`'s client, else the terminal), the device and
//! speed, and at the end the duration and the bytes each way.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};
use rustix::termios::{tcgetattr, tcsetattr, ControlModes, InputModes, OptionalActions, Termios};

use crate::audit::{Audit, Event, Record};

/// cu's default speed.
pub const DEFAULT_SPEED: u32 = 9600;
/// Where UUCP lock files go (FHS).
pub const LOCK_DIR: &str = "/var/lock";

/// Why the console left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leave {
    /// `~.` or `~^D` at the start of a line.
    Escape,
    /// Our stdin ended.
    InputClosed,
    /// The device hung up or failed (in words).
    DeviceGone(String),
    /// SIGTERM, SIGHUP or SIGINT.
    Signal,
}

impl Leave {
    /// A stable keyword for the audit record.
    pub fn kind(&self) -> &'static str {
        match self {
            Leave::Escape => "escape",
            Leave::InputClosed => "input-closed",
            Leave::DeviceGone(_) => "device-gone",
            Leave::Signal => "signal",
        }
    }
}

/// cu's escape at the start of a line, on what the user types.
#[derive(Debug, Clone)]
pub struct Escape {
    line_start: bool,
    tilde: bool,
}

impl Default for Escape {
    fn default() -> Escape {
        Escape {
            line_start: true,
            tilde: false,
        }
    }
}

impl Escape {
    /// Feeds typed bytes: what goes to the device is appended to `out`;
    /// `Some(Leave::Escape)` when the user asked to leave (the bytes after
    /// it are not sent).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<Leave> {
        for &b in input {
            if self.tilde {
                self.tilde = false;
                match b {
                    b'.' | 0x04 => return Some(Leave::Escape),
                    b'~' => out.push(b'~'),
                    _ => out.extend_from_slice(&[b'~', b]),
                }
            } else if self.line_start && b == b'~' {
                self.tilde = true;
                self.line_start = false;
                continue;
            } else {
                out.push(b);
            }
            self.line_start = matches!(b, b'\r' | b'\n');
        }
        None
    }
}

/// The lock file of `device`: `/var/lock/LCK..ttyUSB0`.
pub fn lock_path(dir: &Path, device: &Path) -> PathBuf {
    let name = device.file_name().unwrap_or(OsStr::new("tty"));
    let mut file = b"LCK..".to_vec();
    file.extend_from_slice(name.as_bytes());
    dir.join(OsStr::from_bytes(&file))
}

/// A UUCP lock held until dropped.
#[derive(Debug)]
pub struct Lock(PathBuf);

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Takes the UUCP lock of `device` in `dir`. `Ok(None)`: no lock could be
/// made (no such directory, no permission): said, not fatal, as cu does.
/// `Err`: another live process holds it.
pub fn lock(dir: &Path, device: &Path) -> Result<Option<Lock>, String> {
    let path = lock_path(dir, device);
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                // HDB UUCP: the pid as ten columns of ASCII and a newline.
                let _ = writeln!(f, "{:>10}", std::process::id());
                return Ok(Some(Lock(path)));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = text.trim().parse::<i32>().ok();
                let alive = holder
                    .and_then(rustix::process::Pid::from_raw)
                    .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok());
                if alive {
                    return Err(format!(
                        "{} is in use: {} holds it (pid {})",
                        device.display(),
                        path.display(),
                        holder.unwrap_or(0)
                    ));
                }
                // Stale: its process is gone.
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => {
                eprintln!(
                    "tsunagi console: warning: no lock file {}: {e}",
                    path.display()
                );
                return Ok(None);
            }
        }
    }
    Ok(None)
}

/// The terminal settings of a raw 8N1 serial line at `speed`.
pub fn line_settings(mut t: Termios, speed: u32) -> io::Result<Termios> {
    t.make_raw();
    t.control_modes &= !(ControlModes::CSIZE
        | ControlModes::PARENB
        | ControlModes::CSTOPB
        | ControlModes::CRTSCTS);
    t.control_modes |= ControlModes::CS8 | ControlModes::CLOCAL | ControlModes::CREAD;
    t.input_modes &= !(InputModes::IXON | InputModes::IXOFF | InputModes::IXANY);
    t.set_speed(speed)?;
    Ok(t)
}

/// The local terminal put back as it was when dropped.
struct RawTerminal<'a> {
    fd: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawTerminal<'a> {
    fn enter(fd: BorrowedFd<'a>) -> io::Result<RawTerminal<'a>> {
        let saved = tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(fd, OptionalActions::Flush, &raw)?;
        Ok(RawTerminal { fd, saved })
    }
}

impl Drop for RawTerminal<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd, OptionalActions::Drain, &self.saved);
    }
}

/// Who runs the console, as the audit trail says it: the uid and its
/// name, and `SUDO_USER` when sudo ran us.
fn who(record: Record) -> Record {
    let uid = rustix::process::getuid().as_raw();
    let name = user_name(uid);
    let record = record.field("uid", uid);
    let record = match name {
        Some(n) => record.text("user", &n),
        None => record,
    };
    match std::env::var("SUDO_USER") {
        Ok(s) if !s.is_empty() => record.text("sudo_user", &s),
        _ => record,
    }
}

/// The name of `uid` in /etc/passwd.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id = f.nth(1)?.parse::<u32>().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// From where: the ssh client (`SSH_CONNECTION`: address and port), else
/// the terminal on stdin, else "local".
fn from() -> String {
    if let Ok(conn) = std::env::var("SSH_CONNECTION") {
        let mut w = conn.split_whitespace();
        if let (Some(addr), Some(port)) = (w.next(), w.next()) {
            return match addr.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(a)) => format!("[{a}]:{port}"),
                _ => format!("{addr}:{port}"),
            };
        }
    }
    rustix::termios::ttyname(io::stdin(), Vec::new())
        .ok()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "local".into())
}

/// A pipe written when a signal asks us to leave. Returns once the
/// handlers are in place: a SIGTERM from then on leaves through the loop
/// (which restores the terminal) instead of killing us.
fn signal_pipe() -> io::Result<OwnedFd> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<()>>();
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let handlers = (
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
                signal(SignalKind::interrupt()),
            );
            let (mut term, mut hup, mut int) = match handlers {
                (Ok(t), Ok(h), Ok(i)) => (t, h, i),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            tokio::select! {
                _ = term.recv() => {}
                _ = hup.recv() => {}
                _ = int.recv() => {}
            }
            let _ = rustix::io::write(&write, b"x");
        });
    });
    ready_rx
        .recv()
        .map_err(|_| io::Error::other("signal thread gone"))??;
    Ok(read)
}

/// Opens `device` as cu does and sets it raw at `speed`.
pub fn open_device(device: &Path, speed: u32) -> io::Result<File> {
    let fd = rustix::fs::open(
        device,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // Blocking from now on: O_NONBLOCK was only not to wait for carrier.
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK)?;
    let settings = line_settings(tcgetattr(&fd)?, speed)?;
    tcsetattr(&fd, OptionalActions::Flush, &settings)?;
    Ok(File::from(fd))
}

/// `tsunagi console`: the audit sinks of the config's `[daemon]` (a
/// config that cannot be read, or a sink that cannot be opened, is a
/// warning: the console is for when things are broken), then [`run`].
pub fn main(device: &Path, speed: u32, config: &Path) -> i32 {
    let audit = match crate::config::Config::load(config) {
        Ok(c) => Audit::open(&c.daemon).unwrap_or_else(|e| {
            eprintln!("tsunagi console: warning: audit_file: {e}; no audit records to it");
            Audit::open(&crate::config::DaemonSettings {
                audit_file: None,
                ..c.daemon
            })
            .unwrap_or_default()
        }),
        Err(e) => {
            eprintln!("tsunagi console: warning: {e}; no audit records");
            Audit::disabled()
        }
    };
    run(device, speed, &audit)
}

/// Runs the console; the exit status: 0 after the escape or the end of
/// our input, 1 when the device cannot be used or went away.
pub fn run(device: &Path, speed: u32, audit: &Audit) -> i32 {
    let _lock = match lock(Path::new(LOCK_DIR), device) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tsunagi console: {e}");
            return 1;
        }
    };
    let mut line = match open_device(device, speed) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tsunagi console: {}: {e}", device.display());
            return 1;
        }
    };
    let signals = match signal_pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tsunagi console: {e}");
            return 1;
        }
    };
    let from = from();
    let shown = device.display().to_string();
    let started = Instant::now();
    audit.write(
        &who(Record::new(Event::ConsoleConnect, SystemTime::now()))
            .field("from", &from)
            .field("device", &shown)
            .field("speed", speed),
    );
    let stdin = io::stdin();
    let raw = if rustix::termios::isatty(stdin.as_fd()) {
        RawTerminal::enter(stdin.as_fd()).ok()
    } else {
        None
    };
    // cu's words; \r\n because the terminal is raw.
    eprint!("Connected.\r\n");
    let (leave, to_device, from_device) = copy(&mut line, stdin.as_fd(), signals.as_fd());
    drop(raw);
    eprintln!("\nDisconnected.");
    let duration = started.elapsed().as_secs_f64();
    let mut record = who(Record::new(Event::ConsoleDisconnect, SystemTime::now()))
        .field("from", &from)
        .field("device", &shown)
        .field("speed", speed)
        .field("duration", format_args!("{duration:.1}"))
        .field("bytes_in", from_device)
        .field("bytes_out", to_device)
        .field("kind", leave.kind());
    if let Leave::DeviceGone(why) = &leave {
        record = record.text("reason", why);
    }
    audit.write(&record);
    match leave {
        Leave::DeviceGone(why) => {
            eprintln!("tsunagi console: {shown}: {why}");
            1
        }
        Leave::Escape | Leave::InputClosed | Leave::Signal => 0,
    }
}

/// Copies both ways until the user leaves: (why, bytes to the device,
/// bytes from it).
fn copy(line: &mut File, stdin: BorrowedFd<'_>, signals: BorrowedFd<'_>) -> (Leave, u64, u64) {
    let mut escape = Escape::default();
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(4096);
    let (mut to_device, mut from_device) = (0u64, 0u64);
    let mut stdout = io::stdout().lock();
    loop {
        let mut fds = [
            PollFd::new(&stdin, PollFlags::IN),
            PollFd::new(line, PollFlags::IN),
            PollFd::new(&signals, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return (
                    Leave::DeviceGone(format!("poll: {e}")),
                    to_device,
                    from_device,
                )
            }
        }
        let ready = |i: usize| !fds[i].revents().is_empty();
        let (input, device, signal) = (ready(0), ready(1), ready(2));
        if signal {
            return (Leave::Signal, to_device, from_device);
        }
        if device {
            match line.read(&mut buf) {
                Ok(0) => {
                    return (
                        Leave::DeviceGone("the device hung up".into()),
                        to_device,
                        from_device,
                    )
                }
                Ok(n) => {
                    from_device += n as u64;
                    if stdout
                        .write_all(&buf[..n])
                        .and_then(|_| stdout.flush())
                        .is_err()
                    {
                        return (Leave::InputClosed, to_device, from_device);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A pty whose other side closed reads EIO: a hangup.
                Err(e) => {
                    return (
                        Leave::DeviceGone(format!("the device hung up ({e})")),
                        to_device,
                        from_device,
                    )
                }
            }
        }
        if input {
            let n = match rustix::io::read(stdin, &mut buf) {
                Ok(0) => return (Leave::InputClosed, to_device, from_device),
                Ok(n) => n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(_) => return (Leave::InputClosed, to_device, from_device),
            };
            out.clear();
            let left = escape.feed(&buf[..n], &mut out);
            if !out.is_empty() {
                if let Err(e) = line.write_all(&out) {
                    return (
                        Leave::DeviceGone(format!("write: {e}")),
                        to_device,
                        from_device,
                    );
                }
                to_device += out.len() as u64;
            }
            if let Some(leave) = left {
                return (leave, to_device, from_device);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(e: &mut Escape, input: &[u8]) -> (Vec<u8>, Option<Leave>) {
        let mut out = Vec::new();
        let leave = e.feed(input, &mut out);
        (out, leave)
    }

    #[test]
    fn escape_at_line_start_only() {
        let mut e = Escape::default();
        // First thing typed is a line start.
        assert_eq!(feed(&mut e, b"~."), (Vec::new(), Some(Leave::Escape)));
        let mut e = Escape::default();
        assert_eq!(feed(&mut e, b"ls ~.\r"), (b"ls ~.\r".to_vec(), None));
        assert_eq!(feed(&mut e, b"~"), (Vec::new(), None));
        assert_eq!(feed(&mut e, b"\x04rest"), (Vec::new(), Some(Leave::Escape)));
        let mut e = Escape::default();
        assert_eq!(feed(&mut e, b"a\n~~b\r~x"), (b"a\n~b\r~x".to_vec(), None));
        // After "~x" the line is not at its start.
        assert_eq!(feed(&mut e, b"~."), (b"~.".to_vec(), None));
        assert_eq!(
            feed(&mut e, b"\r\n~."),
            (b"\r\n".to_vec(), Some(Leave::Escape))
        );
    }

    #[test]
    fn lock_files_are_hdb_and_stale_ones_replaced() {
        let dir = std::env::temp_dir().join(format!("tsunagi-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let dev = Path::new("/dev/ttyUSB7");
        assert_eq!(lock_path(&dir, dev), dir.join("LCK..ttyUSB7"));
        let held = lock(&dir, dev).unwrap().unwrap();
        let text = std::fs::read_to_string(dir.join("LCK..ttyUSB7")).unwrap();
        assert_eq!(text, format!("{:>10}\n", std::process::id()));
        // We are alive: a second console is refused.
        assert!(lock(&dir, dev).unwrap_err().contains("is in use"));
        drop(held);
        assert!(!dir.join("LCK..ttyUSB7").exists());
        // A dead holder's lock is replaced.
        std::fs::write(dir.join("LCK..ttyUSB7"), "2147483646\n").unwrap();
        assert!(lock(&dir, dev).unwrap().is_some());
        // No lock directory: no lock, no error.
        assert!(lock(&dir.join("absent"), dev).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
