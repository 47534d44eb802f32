//! `tsunagi log` against a running daemon: `log -f` prints the last lines
//! and then a line caused after it started (a malformed request's
//! warning); `log -n N` prints at most N lines and exits; a caller other
//! than root is refused, and the refusal is logged.
//!
//! Runs without root: then only the refusal (of the test's own uid) is
//! checked. As root (scripts/test.sh) it checks everything, running the
//! refused client as `nobody`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tsunagi");

/// The daemon and its scratch directory, both gone when dropped.
struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = std::env::temp_dir().join(format!("tsunagi-dlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The daemon refuses a log directory others may write to.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut d = Daemon { child: None, dir };
        let cfg = d.dir.join("tsunagi.toml");
        std::fs::write(
            &cfg,
            format!(
                "[daemon]\ncontrol_socket = \"{}\"\nlog_file = \"{}\"\n",
                d.socket().display(),
                d.dir.join("tsunagi.log").display()
            ),
        )
        .unwrap();
        d.child = Some(
            Command::new(BIN)
                .arg("-c")
                .arg(&cfg)
                .arg("run")
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !d.socket().exists() {
            assert!(Instant::now() < deadline, "no socket; log:\n{}", d.log());
            if let Some(status) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited with {status}; log:\n{}", d.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tsunagi.log")).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `tsunagi -S SOCKET log ARGS...` (as uid `as_uid` when given), run to
/// its end: (code, stdout, stderr).
fn log_once(socket: &Path, as_uid: Option<u32>, args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("-S").arg(socket).arg("log").args(args);
    if let Some(uid) = as_uid {
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A request the daemon cannot parse: it warns, naming the uid.
fn send_malformed(socket: &Path) {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.write_all(b"{\"v\":1,\"op\":\"no-such-op\"}\n").unwrap();
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    assert!(answer.contains("\"error\""), "{answer}");
}

/// Waits up to `limit` for a line from `lines` that contains `what`.
fn expect_line(lines: &mpsc::Receiver<String>, what: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(what) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {what:?} within {limit:?}; saw {seen:#?}"),
        }
    }
}

#[test]
fn log_follows_the_daemon_for_root_only() {
    let d = Daemon::start();
    let sock = d.socket();
    let root = rustix::process::geteuid().is_root();
    if !root {
        let (code, out, err) = log_once(&sock, None, &["-f"]);
        assert_eq!(code, Some(1), "{out} {err}");
        assert!(err.contains("may not read the log: root only"), "{err}");
        return;
    }

    // Following: the last lines (the start-up line among them), then a
    // line caused after the follower started.
    let mut follower = Command::new(BIN)
        .arg("-S")
        .arg(&sock)
        .args(["log", "-f", "-n", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = expect_line(&lines, "started: config", Duration::from_secs(5));
    assert!(started.contains(" tsunagi["), "{started}");
    send_malformed(&sock);
    let live = expect_line(&lines, "no-such-op", Duration::from_secs(5));
    assert!(live.contains("uid 0"), "{live}");
    // The same line as the log file's.
    assert!(d.log().contains(&live), "{live}\n{}", d.log());

    // Another uid is refused, and the follower sees the refusal logged.
    let (code, out, err) = log_once(&sock, Some(65534), &["-f"]);
    assert_eq!(code, Some(1), "{out} {err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("refused: uid 65534 may not read the log: root only"),
        "{err}"
    );
    expect_line(
        &lines,
        "uid 65534 may not read the log",
        Duration::from_secs(5),
    );
    let _ = follower.kill();
    let _ = follower.wait();

    // Without -f: the last N lines, then the end.
    let (code, out, err) = log_once(&sock, None, &["-n", "2"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(d.log().contains(out.lines().last().unwrap()), "{out}");
}
