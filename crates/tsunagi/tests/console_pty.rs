//! `tsunagi console DEVICE` over a pty pair (issue 15): the pty's slave
//! is the serial line, the test is the router at its other end (the
//! master). What the router sends reaches the console's stdout, what is
//! typed reaches the router, `\r~.` leaves with status 0, and the audit
//! file has the connect and disconnect records with the bytes each way.
//!
//! A second test gives the console a terminal (another pty) as stdin: raw
//! while connected, and put back as it was when a SIGTERM ends it.
//!
//! Needs no root: a pty is anyone's. (Without write access to /var/lock
//! the console only warns that it made no lock file.)

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tsunagi");

/// Reads `from` on a thread of its own into the returned buffer.
fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let into = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 1024];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn wait_for(what: &str, buf: &Arc<Mutex<Vec<u8>>>, want: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if buf.lock().unwrap().windows(want.len()).any(|w| w == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: have {:?}",
            String::from_utf8_lossy(&buf.lock().unwrap())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pty pair: the master, and the slave's path.
fn openpty() -> (OwnedFd, String) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    (master, name.to_string_lossy().into_owned())
}

#[test]
fn console_copies_both_ways_leaves_on_tilde_dot_and_is_audited() {
    let dir = std::env::temp_dir().join(format!("tsunagi-console-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let audit = dir.join("audit.log");
    let config = dir.join("tsunagi.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\naudit_file = \"{}\"\naudit_syslog = false\n",
            audit.display()
        ),
    )
    .unwrap();
    let (master, slave) = openpty();
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .args(["console", &slave, "-s", "115200"])
        .env("SSH_CONNECTION", "192.0.2.7 40022 192.0.2.1 22")
        .env_remove("SUDO_USER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    wait_for("Connected.", &stderr, b"Connected.");
    let mut router = std::fs::File::from(master);
    let from_router = collect(router.try_clone().unwrap());

    // The router's prompt reaches our stdout, unchanged (the line is raw).
    router.write_all(b"\r\nlabs-router login: ").unwrap();
    wait_for("the prompt", &stdout, b"\r\nlabs-router login: ");
    // What we type reaches the router; a `~` inside a line is sent.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"admin ~x\r").unwrap();
    wait_for("the typed line", &from_router, b"admin ~x\r");
    // `~~` at a line start sends one `~`.
    stdin.write_all(b"~~\r").unwrap();
    wait_for("the tilde", &from_router, b"admin ~x\r~\r");
    // `~.` at a line start leaves: not sent.
    stdin.write_all(b"~.").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "console did not leave on ~.");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    wait_for("Disconnected.", &stderr, b"Disconnected.");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(&from_router.lock().unwrap()[..], b"admin ~x\r~\r");

    let text = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let uid = rustix::process::getuid().as_raw();
    let common = format!("uid={uid}");
    assert!(lines[0].contains(" console-connect uid="), "{text}");
    assert!(lines[0].contains(&common), "{text}");
    assert!(
        lines[0].contains(&format!(
            " from=192.0.2.7:40022 device={slave} speed=115200"
        )),
        "{text}"
    );
    assert!(lines[1].contains(" console-disconnect uid="), "{text}");
    // 21 bytes from the router, 11 typed and sent ("admin ~x\r", "~\r").
    assert!(
        lines[1].contains(" bytes_in=21 bytes_out=11 kind=escape"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_terminal_is_raw_while_connected_and_restored_after_sigterm() {
    use rustix::termios::{tcgetattr, LocalModes};
    let dir = std::env::temp_dir().join(format!("tsunagi-console-tty-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let audit = dir.join("audit.log");
    let config = dir.join("tsunagi.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\naudit_file = \"{}\"\naudit_syslog = false\n",
            audit.display()
        ),
    )
    .unwrap();
    let (_line_master, line) = openpty();
    let (_term_master, term) = openpty();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&term)
        .unwrap();
    let cooked = tcgetattr(&terminal).unwrap();
    assert!(cooked
        .local_modes
        .contains(LocalModes::ICANON | LocalModes::ECHO));
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .args(["console", &line])
        .env_remove("SSH_CONNECTION")
        .stdin(Stdio::from(terminal.try_clone().unwrap()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = collect(child.stderr.take().unwrap());
    wait_for("Connected.", &stderr, b"Connected.");
    let raw = tcgetattr(&terminal).unwrap();
    assert!(!raw
        .local_modes
        .intersects(LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG));
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "console did not leave on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let after = tcgetattr(&terminal).unwrap();
    assert_eq!(after.local_modes, cooked.local_modes);
    assert_eq!(after.input_modes, cooked.input_modes);
    assert_eq!(after.output_modes, cooked.output_modes);
    let text = std::fs::read_to_string(&audit).unwrap();
    // From where: the terminal, there being no ssh.
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains(&format!(" from={term} device={line} speed=9600")),
        "{text}"
    );
    assert!(
        text.lines().nth(1).unwrap().contains(" kind=signal"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
