//! What hostile local users cannot do to the daemon (the hardening issue:
//! "hostile peers and local users can't exhaust, flood or mislead the
//! daemon"):
//!
//! - make the daemon append to a file of their choice: a log file that is a
//!   symbolic link, or in a directory others may write to (sticky or not),
//!   refuses start-up naming the path and why; a 0755 directory works.
//!
//! Needs root (network namespaces, another uid): the tests are
//! `#[ignore]`d, `scripts/test.sh` runs them; run where they cannot work,
//! they fail naming what is missing. A guard removes the namespaces,
//! daemons, helpers and files, also when an assertion fails.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{require_netns, wait_for, Guard, BIN};

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
