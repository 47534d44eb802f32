//! The PPP peer of a `tsunagi direct` process: what sshd's forced command
//! would connect to a real peer, connected to the test instead.
//!
//! [`DirectPeer::attach`] drives an engine (async HDLC over the pipes) by
//! hand, step by step, and can inject raw frames past it; [`RawPeer`]
//! writes whatever bytes it is given and may never read what comes back,
//! as a flooding peer does.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tsunagi_ppp::hdlc::Encoder;
use tsunagi_ppp::link::{Event, Link, LinkConfig};
use tsunagi_ppp::stream::StreamLink;

/// `tsunagi -S SOCKET direct PROFILE` with piped stdin/stdout and the
/// environment `env` (e.g. `SSH_CONNECTION`).
fn spawn_direct(bin: &Path, socket: &Path, profile: &str, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(bin);
    cmd.arg("-S")
        .arg(socket)
        .args(["direct", profile])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawning tsunagi direct")
}

/// A `tsunagi direct` process with an engine behind it.
pub struct DirectPeer {
    /// The engine the test drives.
    pub link: StreamLink,
    /// What the engine reported.
    pub events: Vec<Event>,
    direct: Child,
    to_daemon: ChildStdin,
    from_daemon: mpsc::Receiver<Vec<u8>>,
    out: Vec<u8>,
}

impl DirectPeer {
    /// Starts `tsunagi -S SOCKET direct PROFILE` and an engine with
    /// `config` behind its stdin/stdout.
    pub fn attach(bin: &Path, socket: &Path, profile: &str, config: LinkConfig) -> DirectPeer {
        let mut direct = spawn_direct(bin, socket, profile, &[]);
        let to_daemon = direct.stdin.take().expect("stdin");
        let mut stdout = direct.stdout.take().expect("stdout");
        let (tx, from_daemon) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut link = StreamLink::new(Link::new(
            config,
            u64::from(std::process::id()),
            tsunagi_crypto::OsRandom::handle(),
        ));
        link.start(Instant::now());
        DirectPeer {
            link,
            events: Vec::new(),
            direct,
            to_daemon,
            from_daemon,
            out: Vec::new(),
        }
    }

    /// One round: send what the engine has, take what the daemon sent
    /// (waiting up to 20 ms), run the engine's timer. False once the
    /// direct process has closed its output.
    pub fn step(&mut self) -> bool {
        self.link.poll_transmit(&mut self.out);
        if !self.out.is_empty() {
            // The process may be gone; the next read says so.
            let _ = self.to_daemon.write_all(&self.out);
            self.out.clear();
        }
        while let Some(e) = self.link.poll_event() {
            self.events.push(e);
        }
        let open = match self.from_daemon.recv_timeout(Duration::from_millis(20)) {
            Ok(bytes) => {
                self.link
                    .handle_input(Instant::now(), &bytes, &mut |_, _| {});
                true
            }
            Err(mpsc::RecvTimeoutError::Timeout) => true,
            Err(mpsc::RecvTimeoutError::Disconnected) => false,
        };
        let now = Instant::now();
        if self.link.poll_timeout().is_some_and(|t| t <= now) {
            self.link.handle_timeout(now);
        }
        open
    }

    /// Steps until `cond` holds (checked every 100 ms); panics naming
    /// `what` after `limit`.
    pub fn run_until(
        &mut self,
        limit: Duration,
        what: &str,
        mut cond: impl FnMut(&DirectPeer) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        let mut next_check = Instant::now();
        loop {
            let open = self.step();
            if Instant::now() >= next_check || !open {
                if cond(self) {
                    return;
                }
                assert!(
                    open && Instant::now() < deadline,
                    "timed out waiting for {what}"
                );
                next_check = Instant::now() + Duration::from_millis(100);
            }
        }
    }

    /// Writes one whole PPP frame to the daemon as it is, past the engine
    /// (default ACCM, 16-bit FCS: what any receiver takes).
    pub fn inject(&mut self, frame: &[u8]) {
        let mut bytes = Vec::new();
        Encoder::new().encode_frame(frame, &[], true, &mut bytes);
        self.to_daemon.write_all(&bytes).expect("write to direct");
    }

    /// Waits for the direct process to exit; its exit status and what it
    /// wrote to stderr.
    pub fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.direct.try_wait().expect("wait") {
                let mut err = String::new();
                if let Some(mut stderr) = self.direct.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                return (status.code(), err);
            }
            assert!(Instant::now() < deadline, "tsunagi direct did not exit");
            self.step();
        }
    }
}

impl Drop for DirectPeer {
    fn drop(&mut self) {
        let _ = self.direct.kill();
        let _ = self.direct.wait();
    }
}

/// A `tsunagi direct` process fed raw bytes, whose output nobody reads:
/// the daemon's writes back fill the pipe and then wait, as they do for a
/// peer that floods and never reads.
pub struct RawPeer {
    direct: Child,
    to_daemon: ChildStdin,
}

impl RawPeer {
    /// Starts `tsunagi -S SOCKET direct PROFILE` with the environment `env`.
    pub fn attach(bin: &Path, socket: &Path, profile: &str, env: &[(&str, &str)]) -> RawPeer {
        let mut direct = spawn_direct(bin, socket, profile, env);
        let to_daemon = direct.stdin.take().expect("stdin");
        RawPeer { direct, to_daemon }
    }

    /// Writes `bytes`; false once the daemon's side is gone.
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        self.to_daemon.write_all(bytes).is_ok()
    }

    /// The direct process's pid.
    pub fn pid(&self) -> u32 {
        self.direct.id()
    }

    /// Whether the direct process has exited (the daemon ended the link).
    pub fn exited(&mut self) -> Option<i32> {
        self.direct
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.code().unwrap_or(-1))
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        let _ = self.direct.kill();
        let _ = self.direct.wait();
    }
}
