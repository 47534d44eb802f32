//! `tsunagi-lab down`: removes what `up` recorded in the state directory.

use anyhow::{bail, Result};
use std::fs;
use std::time::{Duration, Instant};

use crate::os::{cmd_stdout, netns_pids, run_cmd, user_exists, RecordedPid};
use crate::{Lab, LAB_USER, STATE_ROOT};

impl Lab {
    /// `tsunagi-lab down`: stop the recorded processes, delete the recorded
    /// namespaces, remove the account if this lab created it, remove the
    /// state directory. Doing it twice is harmless.
    pub fn down(&self) -> Result<()> {
        if !self.dir.exists() {
            println!("lab {}: nothing to take down", self.prefix);
            return Ok(());
        }
        let mut problems = Vec::new();
        let pids: Vec<RecordedPid> = self
            .recorded("pids")
            .iter()
            .filter_map(|l| RecordedPid::parse(l))
            .collect();
        // Daemons first (newest first), so they close their links with
        // LCP Terminate-Request and remove their routes while sshd still runs.
        for p in pids.iter().rev() {
            if p.is_alive() {
                let _ =
                    rustix::process::kill_process(p.rustix_pid(), rustix::process::Signal::TERM);
                // A stopped process (a test froze it) acts on TERM only
                // once continued.
                let _ =
                    rustix::process::kill_process(p.rustix_pid(), rustix::process::Signal::CONT);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(RecordedPid::is_alive) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        for p in pids.iter().filter(|p| p.is_alive()) {
            eprintln!(
                "lab {}: {} (pid {}) ignored SIGTERM; killing",
                self.prefix, p.label, p.pid
            );
            let _ = rustix::process::kill_process(p.rustix_pid(), rustix::process::Signal::KILL);
        }
        // Whatever still runs inside our namespaces was started by us
        // (ssh, sshd's session processes, `direct`, helpers).
        let namespaces = self.recorded("netns");
        let existing = cmd_stdout("ip", &["netns", "list"]).unwrap_or_default();
        let present: Vec<&String> = namespaces
            .iter()
            .filter(|ns| {
                existing
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(ns.as_str()))
            })
            .collect();
        for sig in [rustix::process::Signal::TERM, rustix::process::Signal::KILL] {
            let mut any = false;
            for ns in &present {
                for pid in netns_pids(ns) {
                    if let Some(p) = rustix::process::Pid::from_raw(pid) {
                        any = true;
                        let _ = rustix::process::kill_process(p, sig);
                    }
                }
            }
            if any {
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        for ns in &present {
            if let Err(e) = run_cmd("ip", &["netns", "del", ns]) {
                problems.push(format!("{e:#}"));
            }
        }
        if !self.recorded("user-created").is_empty() && user_exists(LAB_USER) {
            match self.other_lab_using_user() {
                Some(other) => {
                    // Another lab still logs in as this account: it inherits
                    // the duty to remove it.
                    if let Err(e) = other.record("user-created", LAB_USER) {
                        problems.push(format!("{e:#}"));
                    }
                    println!(
                        "lab {}: account {LAB_USER} still used by lab {}; left for its down",
                        self.prefix, other.prefix
                    );
                }
                None => {
                    if let Err(e) = run_cmd("userdel", &[LAB_USER]) {
                        problems.push(format!("{e:#}"));
                    }
                }
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            problems.push(format!("removing {}: {e}", self.dir.display()));
        }
        let _ = fs::remove_dir(STATE_ROOT); // only if no other lab is left
        if problems.is_empty() {
            println!("lab {}: down", self.prefix);
            Ok(())
        } else {
            bail!("lab {} down: {}", self.prefix, problems.join("; "))
        }
    }

    fn other_lab_using_user(&self) -> Option<Lab> {
        let entries = fs::read_dir(STATE_ROOT).ok()?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name == self.prefix {
                continue;
            }
            if let Ok(other) = Lab::new(&name) {
                if other.dir.join("netns").exists() {
                    return Some(other);
                }
            }
        }
        None
    }
}
