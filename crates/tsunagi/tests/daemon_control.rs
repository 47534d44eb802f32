//! The daemon's control socket end to end: `status`, root-only `dial`,
//! and `direct` refused for a uid that is not in `allow_users` (the client
//! really runs as `nobody`), with the refusal logged with uid and profile;
//! SIGTERM ends the daemon with status 0 and removes the socket.
//!
//! Needs root (to run the client as another uid): the test is `#[ignore]`d,
//! `scripts/test.sh` runs it (as root, with `--include-ignored`); run without
//! root it fails saying so.

mod support;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tsunagi");

struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
}

impl Daemon {
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

fn start_daemon(config_links: &str) -> Daemon {
    let dir = std::env::temp_dir().join(format!("tsunagi-dctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut d = Daemon { child: None, dir };
    let config = format!(
        "[daemon]\ncontrol_socket = \"{}\"\nlog_file = \"{}\"\n\n{config_links}",
        d.socket().display(),
        d.dir.join("tsunagi.log").display()
    );
    let cfg = d.dir.join("tsunagi.toml");
    std::fs::write(&cfg, config).unwrap();
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
        assert!(
            Instant::now() < deadline,
            "daemon did not create its socket; log:\n{}",
            d.log()
        );
        if let Some(status) = d.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("daemon exited early with {status}; log:\n{}", d.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    d
}

/// Run the CLI (optionally as uid/gid `as_uid`), return (code, stdout, stderr).
fn cli(socket: &Path, as_uid: Option<u32>, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("-S").arg(socket).args(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(uid) = as_uid {
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LINKS: &str = r#"
[link.home]
mode = "direct"
tun = "tsdctl-home"
local = "10.253.1.1"
remote = "10.253.1.2"
allow_users = ["root"]

[link.labs]
mode = "dial"
device = "exit 3"
tun = "tsdctl-labs"
persist = false
"#;

#[test]
#[ignore = "needs root to run the client as nobody (scripts/test.sh runs it)"]
fn control_socket_end_to_end() {
    support::require_root();
    let nobody = 65534;
    let mut d = start_daemon(LINKS);
    let sock = d.socket();
    let mode = std::fs::metadata(&sock).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o666
    );

    // A uid not in allow_users: refused, exit 1, a message on stderr, nothing on stdout.
    let (code, out, err) = cli(&sock, Some(nobody), &["direct", "home"]);
    assert_eq!(code, 1, "stdout {out:?} stderr {err:?}");
    assert!(out.is_empty(), "{out:?}");
    assert!(
        err.contains("refused: uid 65534 is not in allow_users of profile home"),
        "{err}"
    );

    // Unknown profile and a dial-mode profile are refused too (as root).
    let (code, _, err) = cli(&sock, None, &["direct", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("no profile named \"nosuch\""), "{err}");
    let (code, _, err) = cli(&sock, None, &["direct", "labs"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("profile labs is not mode = \"direct\""),
        "{err}"
    );

    // dial/hangup are root only.
    let (code, _, err) = cli(&sock, Some(nobody), &["hangup", "labs"]);
    assert_eq!(code, 1);
    assert!(err.contains("root only"), "{err}");
    let (code, _, err) = cli(&sock, None, &["dial", "home"]);
    assert_eq!(code, 1);
    assert!(err.contains("direct link"), "{err}");

    // status, readable by anyone; the dial link's device exits at once
    // and persist is off, so it ends up stopped with the reason recorded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let links = loop {
        let (code, out, err) = cli(&sock, Some(nobody), &["status", "--json"]);
        assert_eq!(code, 0, "{err}");
        let status: serde_json::Value = serde_json::from_str(&out).unwrap();
        let links = status["links"].clone();
        if links[1]["phase"] == "stopped" || Instant::now() > deadline {
            break links;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(links[0]["name"], "home");
    assert_eq!(links[0]["mode"], "direct");
    assert_eq!(links[0]["phase"], "idle");
    assert_eq!(links[0]["tun"], "tsdctl-home");
    assert_eq!(links[1]["name"], "labs");
    assert_eq!(links[1]["phase"], "stopped", "{links}");
    assert!(
        links[1]["last_down"]
            .as_str()
            .unwrap_or("")
            .contains("exited with status 3"),
        "{links}"
    );
    let (code, table, _) = cli(&sock, None, &["status"]);
    assert_eq!(code, 0);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("home ") && l.contains("direct")),
        "{table}"
    );

    // The refusals are in the log with uid and profile or link.
    let log = d.log();
    let refused = |what: &str| {
        log.lines().any(|l| {
            l.contains("control socket: uid 65534: request refused: pid ") && l.contains(what)
        })
    };
    assert!(
        refused("direct \"home\": uid 65534 is not in allow_users of profile home"),
        "log:\n{log}"
    );
    assert!(
        refused("uid 65534 may not dial or hang up \"labs\": root only"),
        "log:\n{log}"
    );
    assert!(log.contains("weak setting"), "log:\n{log}");

    // SIGTERM: exit 0, socket removed.
    let mut child = d.child.take().unwrap();
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "daemon ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "log:\n{}", d.log());
    assert!(!sock.exists(), "socket left behind");
}
