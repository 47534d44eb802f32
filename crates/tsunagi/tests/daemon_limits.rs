//! What hostile local users cannot do to the daemon (the hardening issue:
//! "hostile peers and local users can't exhaust, flood or mislead the
//! daemon"):
//!
//! - fill the disk through the log: a connect-and-close loop and a
//!   malformed-request loop for 5 s each add at most [`BUDGET`] lines per
//!   cause, then one summary each that counts the rest;
//! - make the daemon append to a file of their choice: a log file that is a
//!   symbolic link, or in a directory others may write to (sticky or not),
//!   refuses start-up naming the path and why; a 0755 directory works.
//!
//! Needs root (network namespaces, another uid): the tests are
//! `#[ignore]`d, `scripts/test.sh` runs them; run where they cannot work,
//! they fail naming what is missing. A guard removes the namespaces,
//! daemons, helpers and files, also when an assertion fails.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{require_netns, wait_for, Guard, BIN};

/// Lines written per cause and source in a 10 s window before the rest are
/// only counted (`tsunagi::logging::LOG_BUDGET`).
const BUDGET: usize = tsunagi::logging::LOG_BUDGET as usize;

/// The lines of `log` that start with a control-socket warning `key`
/// ("control socket: uid 0: malformed request"): (the lines themselves,
/// the N of each `N more in the last 10 s` summary).
fn warnings(log: &str, key: &str) -> (usize, Vec<u64>) {
    let prefix = format!("{key}: ");
    let mut written = 0;
    let mut summaries = Vec::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once(&prefix) else {
            continue;
        };
        match rest.strip_suffix(" more in the last 10 s") {
            Some(n) => summaries.push(n.parse().unwrap()),
            None => written += 1,
        }
    }
    (written, summaries)
}

#[test]
#[ignore = "needs root, network namespaces (scripts/test.sh runs it)"]
fn control_connection_floods_are_rate_limited_and_summarised() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::single(&format!("tsunagi-dflood-{pid}"), &format!("tsfl{pid}"));
    guard.sides[0].start("");
    let side = &guard.sides[0];
    let socket = side.socket();
    let before = side.log().lines().count();

    // Both loops from this process (uid 0) for 5 s, side by side.
    let until = Instant::now() + Duration::from_secs(5);
    let closing = {
        let socket = socket.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while Instant::now() < until {
                drop(UnixStream::connect(&socket).unwrap());
                n += 1;
            }
            n
        })
    };
    let malformed = std::thread::spawn(move || {
        let mut n = 0u64;
        while Instant::now() < until {
            let mut s = UnixStream::connect(&socket).unwrap();
            s.write_all(b"garbage\n").unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            assert!(answer.contains("not JSON"), "{answer}");
            n += 1;
        }
        n
    });
    let (closed, bad) = (closing.join().unwrap(), malformed.join().unwrap());
    eprintln!("{closed} connections closed without a request, {bad} malformed requests");
    // Within the window: at most BUDGET lines per cause.
    std::thread::sleep(Duration::from_millis(500));
    let log = side.log();
    let added: Vec<&str> = log.lines().skip(before).collect();
    assert!(
        added.len() <= 2 * BUDGET,
        "{} lines in 5 s, the first:\n{}",
        added.len(),
        added[..added.len().min(20)].join("\n")
    );
    assert!(
        closed > BUDGET as u64 && bad > BUDGET as u64,
        "{closed} {bad}: too few to go over the budget"
    );

    // The summaries come when each cause's 10 s window ends.
    let closed_key = "control socket: uid 0: closed without a request";
    let bad_key = "control socket: uid 0: request not understood";
    wait_for(Duration::from_secs(15), "both summaries", || {
        let log = side.log();
        !warnings(&log, closed_key).1.is_empty() && !warnings(&log, bad_key).1.is_empty()
    });
    let log = side.log();
    let added: Vec<&str> = log.lines().skip(before).collect();
    // The bound: BUDGET lines and one summary per cause.
    assert!(
        added.len() <= 2 * (BUDGET + 1),
        "{} lines added:\n{}",
        added.len(),
        added.join("\n")
    );
    // Every connection is accounted for: written, or counted in the summary.
    for (key, made) in [(closed_key, closed), (bad_key, bad)] {
        let (written, summaries) = warnings(&log, key);
        assert_eq!(written, BUDGET, "{key}\n{log}");
        assert_eq!(
            written as u64 + summaries.iter().sum::<u64>(),
            made,
            "{key}\n{log}"
        );
    }
    assert_eq!(guard.sides[0].stop(), Some(0));
}

/// `tsunagi -c CONFIG run` is expected to refuse start-up: its stderr (it
/// is killed, and the test fails, if it is still running after 10 s).
fn refused_start(config: &std::path::Path) -> String {
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(config)
        .arg("run")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon started with {}", config.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
#[ignore = "needs root, network namespaces (scripts/test.sh runs it)"]
fn log_file_symlink_or_open_directory_refuses_start_up() {
    require_netns(&[]);
    let pid = std::process::id();
    let mut guard = Guard::single(&format!("tsunagi-dlog-{pid}"), &format!("tslg{pid}"));
    let dir = guard.dir.clone();
    let side = &guard.sides[0];
    let config = side.config("");
    let log = dir.join("a.log");
    let chmod = |mode: u32| {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    };

    // A symbolic link, to a file root owns or to nowhere: not followed.
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    for target in [victim.clone(), dir.join("nowhere")] {
        std::os::unix::fs::symlink(&target, &log).unwrap();
        let err = refused_start(&config);
        assert!(
            err.contains(&format!("log file {}: ", log.display())) && err.contains("symbolic link"),
            "{err}"
        );
        std::fs::remove_file(&log).unwrap();
        assert!(!target.exists() || std::fs::read_to_string(&target).unwrap() == "precious\n");
        assert!(!dir.join("nowhere").exists());
    }
    assert!(!side.socket().exists(), "the daemon bound its socket");

    // A directory anyone may write to, with the sticky bit or without.
    for mode in [0o777, 0o1777, 0o703] {
        chmod(mode);
        let err = refused_start(&config);
        assert!(
            err.contains(&format!("its directory {}", dir.display()))
                && err.contains(&format!("(mode {mode:04o}"))
                && err.contains("writable by others"),
            "{err}"
        );
        assert!(!log.exists(), "the daemon created {}", log.display());
    }

    // Only root may write there: the daemon starts and logs.
    chmod(0o755);
    guard.sides[0].start("");
    let side = &guard.sides[0];
    wait_for(Duration::from_secs(5), "the start line", || {
        side.log().contains("started")
    });
    assert_eq!(guard.sides[0].stop(), Some(0));
}
