//! What hostile local users cannot do to the daemon (the hardening issue:
//! "hostile peers and local users can't exhaust, flood or mislead the
//! daemon"):
//!
//! - hold every file descriptor: with `prlimit --nofile=1024:1024` (so
//!   raising the soft limit cannot help), `nobody` opens 1,100 control
//!   connections and holds them; root's `status` still answers within a few
//!   seconds and a dial link's device is still spawned at every redial,
//!   with no "Too many open files" in the log; nobody's own `status` is
//!   refused, saying that its uid has its connections open;
//! - fill the disk through the log: a connect-and-close loop and a
//!   malformed-request loop from one uid for 5 s add at most [`BUDGET`]
//!   lines per cause (closed without a request, not understood, over the
//!   connection cap), then one summary each that counts the rest: at most
//!   18 lines where the daemon used to write one per connection;
//! - make the daemon append to a file of their choice: a log file that is a
//!   symbolic link, or in a directory others may write to (sticky or not),
//!   refuses start-up naming the path and why; a 0755 directory works.
//!
//! Needs root (network namespaces, another uid): the tests are
//! `#[ignore]`d, `scripts/test.sh` runs them; run where they cannot work,
//! they fail naming what is missing. A guard removes the namespaces,
//! daemons, helpers and files, also when an assertion fails.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{require_netns, wait_for, Guard, Side, BIN};

/// Lines written per cause and source in a 10 s window before the rest are
/// only counted (`tsunagi::logging::LOG_BUDGET`).
const BUDGET: usize = tsunagi::logging::LOG_BUDGET as usize;

/// The helper below reads the socket to flood from this variable; without
/// it the helper does nothing.
const HOLD_SOCKET: &str = "TSUNAGI_TEST_HOLD_SOCKET";
/// Connections the helper opens: more than the 1024 fds the daemon has.
const HOLD_COUNT: usize = 1100;

/// The unprivileged side of
/// [`a_local_user_holding_connections_leaves_root_and_redials_working`],
/// which runs this test binary again as `nobody` with [`HOLD_SOCKET`] set:
/// opens [`HOLD_COUNT`] connections to the daemon, says `holding N`, and
/// holds them until its stdin closes.
#[test]
#[ignore = "helper run as nobody by a root test (scripts/test.sh runs it); alone it does nothing"]
fn hold_connections_helper() {
    let Some(path) = std::env::var_os(HOLD_SOCKET) else {
        return;
    };
    let mut held = Vec::with_capacity(HOLD_COUNT);
    for _ in 0..HOLD_COUNT {
        match UnixStream::connect(&path) {
            Ok(s) => held.push(s),
            Err(e) => {
                println!("connect failed after {}: {e}", held.len());
                break;
            }
        }
    }
    println!("holding {}", held.len());
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(held);
}

/// [`hold_connections_helper`] running as `nobody`; killed when dropped.
struct Holder {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Holder {
    /// Runs this test binary's helper as uid/gid 65534 under a file limit
    /// of its own (raised as root by prlimit, then dropped by setpriv).
    fn start(socket: &std::path::Path) -> Holder {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new("prlimit")
            .args(["--nofile=4096:4096", "--", "setpriv"])
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(exe)
            .args(["--exact", "hold_connections_helper", "--include-ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env(HOLD_SOCKET, socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Holder { child, lines }
    }

    /// Waits for the helper's `holding N`; N.
    fn holding(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .expect("the helper did not say how many connections it holds");
            // After libtest's "test hold_connections_helper ... ".
            if let Some((_, n)) = line.split_once("holding ") {
                return n.parse().unwrap();
            }
            eprintln!("helper: {line}");
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tsunagi status --json` through `side`'s socket, killed after `limit`:
/// how long the answer took, or why there was none.
fn status_within(side: &Side, limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("-S")
        .arg(side.socket())
        .args(["status", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer within {}s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs root, network namespaces, another uid and prlimit (scripts/test.sh runs it)"]
fn a_local_user_holding_connections_leaves_root_and_redials_working() {
    require_netns(&["prlimit", "setpriv"]);
    let pid = std::process::id();
    let mut guard = Guard::single(&format!("tsunagi-dfd-{pid}"), &format!("tsfd{pid}"));
    // A device that fails at once: a redial every second, each needing a
    // socketpair, a pipe and a process, i.e. new fds.
    let links = format!(
        r#"[link.flap]
mode = "dial"
device = "echo spawned >&2; exit 1"
tun = "tsfd{pid}"
ipv6cp = false
persist = true
redial_min = 1
redial_max = 1
"#
    );
    guard.sides[0].start_with(&["prlimit", "--nofile=1024:1024"], &links);
    let side = &guard.sides[0];
    let spawned = |log: &str| log.matches("flap: device: spawned").count();
    wait_for(Duration::from_secs(10), "the first dial", || {
        spawned(&side.log()) >= 1
    });

    let holder = Holder::start(&side.socket());
    assert_eq!(holder.holding(Duration::from_secs(30)), HOLD_COUNT);
    let mark = side.log().len();

    // Root is answered although nobody holds more connections than the
    // daemon has fds.
    let took = status_within(side, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("root's status while nobody holds connections: {e}"));
    eprintln!("status answered in {took:?}");
    // And new fds are there for the redials.
    wait_for(
        Duration::from_secs(6),
        "two redials during the hold",
        || spawned(&side.log()[mark..]) >= 2,
    );
    // nobody itself is over its cap, and told so.
    let out = Command::new(BIN)
        .arg("-S")
        .arg(side.socket())
        .arg("status")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refused: 16 control connections of this uid are open"),
        "{err}"
    );
    let log = side.log();
    assert!(!log.contains("Too many open files"), "{log}");
    // The limit was logged at start.
    assert!(log.contains("open files: "), "{log}");
    assert!(
        log.contains("control socket: uid 65534: over the connection cap: "),
        "{log}"
    );
    drop(holder);
    assert_eq!(guard.sides[0].stop(), Some(0));
}

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
    // (connections, answered): the daemon may close some at once, over
    // root's cap while it still holds the closing loop's connections.
    let malformed = std::thread::spawn(move || {
        let (mut n, mut answered) = (0u64, 0u64);
        while Instant::now() < until {
            let mut s = UnixStream::connect(&socket).unwrap();
            n += 1;
            let mut answer = String::new();
            if s.write_all(b"garbage\n").is_ok() && s.read_to_string(&mut answer).is_ok() {
                if answer.contains("not JSON") {
                    answered += 1;
                } else {
                    assert!(answer.is_empty(), "{answer}");
                }
            }
        }
        (n, answered)
    });
    let closed = closing.join().unwrap();
    let (bad, answered) = malformed.join().unwrap();
    eprintln!(
        "{closed} connections closed without a request, {bad} malformed requests \
         ({answered} answered)"
    );
    assert!(
        closed > BUDGET as u64 && answered > BUDGET as u64,
        "{closed} {answered}: too few to go over the budget"
    );
    let closed_key = "control socket: uid 0: closed without a request";
    let bad_key = "control socket: uid 0: request not understood";
    let cap_key = "control socket: uid 0: over the connection cap";
    let keys = [closed_key, bad_key, cap_key];
    // Within the window: at most BUDGET lines per cause.
    let log = side.log();
    let added: Vec<&str> = log.lines().skip(before).collect();
    assert!(
        added.len() <= keys.len() * BUDGET,
        "{} lines in 5 s, the first:\n{}",
        added.len(),
        added[..added.len().min(20)].join("\n")
    );

    // Every connection is accounted for, written or counted in a summary,
    // once each cause's 10 s window has ended.
    let counted = |log: &str, key| {
        let (written, summaries) = warnings(log, key);
        written as u64 + summaries.iter().sum::<u64>()
    };
    wait_for(
        Duration::from_secs(20),
        "every connection in the log",
        || {
            let log = side.log();
            keys.iter().map(|key| counted(&log, key)).sum::<u64>() == closed + bad
        },
    );
    let log = side.log();
    let added: Vec<&str> = log.lines().skip(before).collect();
    // The bound: BUDGET lines and one summary per cause.
    assert!(
        added.len() <= keys.len() * (BUDGET + 1),
        "{} lines added:\n{}",
        added.len(),
        added.join("\n")
    );
    for key in keys {
        let (written, summaries) = warnings(&log, key);
        assert!(written <= BUDGET && summaries.len() <= 1, "{key}\n{log}");
    }
    assert_eq!(counted(&log, bad_key), answered, "{log}");
    assert_eq!(warnings(&log, closed_key).0, BUDGET, "{log}");
    assert_eq!(warnings(&log, closed_key).1.len(), 1, "{log}");
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
