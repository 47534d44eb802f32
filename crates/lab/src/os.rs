//! Processes, accounts, keys and commands: what `up`, `check`, `status` and
//! `down` share.

use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A process `up` started, as recorded in the state directory:
/// `PID STARTTIME LABEL`. The start time (field 22 of /proc/PID/stat) keeps
/// `down` from signalling an unrelated process that reused the pid.
#[derive(Debug, Clone)]
pub(crate) struct RecordedPid {
    /// The process id.
    pub(crate) pid: i32,
    start: u64,
    /// What it is: `sshd`, `tsunagi[home]`, `tsunagi[labs]`.
    pub(crate) label: String,
}

impl RecordedPid {
    pub(crate) fn parse(line: &str) -> Option<RecordedPid> {
        let mut it = line.splitn(3, ' ');
        let pid = it.next()?.parse().ok()?;
        let start = it.next()?.parse().ok()?;
        let label = it.next().unwrap_or("").to_string();
        Some(RecordedPid { pid, start, label })
    }

    pub(crate) fn is_alive(&self) -> bool {
        match proc_start_time(self.pid as u32) {
            // start 0: could not be read at spawn time; trust the pid.
            Some(s) => (self.start == 0 || s == self.start) && !is_zombie(self.pid),
            None => false,
        }
    }

    pub(crate) fn rustix_pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(self.pid).unwrap_or(rustix::process::Pid::INIT)
    }
}

/// Field 22 (starttime) of /proc/PID/stat.
pub(crate) fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    // after_comm starts at field 3 (state); starttime is field 22.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rfind(')')?;
            s[after + 2..].chars().next()
        })
        .is_some_and(|state| state == 'Z' || state == 'X')
}

/// Pids of the processes in network namespace `ns` (`ip netns pids`).
pub fn netns_pids(ns: &str) -> Vec<i32> {
    cmd_stdout("ip", &["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

pub(crate) fn user_exists(name: &str) -> bool {
    fs::read_to_string("/etc/passwd")
        .map(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

pub(crate) fn keygen(path: &Path, comment: &str) -> Result<()> {
    let _ = fs::remove_file(path);
    let _ = fs::remove_file(path.with_extension("pub"));
    run_cmd(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            comment,
            "-f",
            &path.to_string_lossy(),
        ],
    )
}

pub(crate) fn any_world_writable_ancestor(path: &Path) -> bool {
    path.ancestors().any(|p| {
        fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o002 != 0)
            .unwrap_or(false)
    })
}

/// Runs `program args...` and checks it succeeded; an error names the
/// command, its exit status and its stderr.
pub(crate) fn run_cmd(program: &str, args: &[&str]) -> Result<()> {
    cmd_stdout(program, args).map(drop)
}

/// [`run_cmd`], returning what the command printed.
pub(crate) fn cmd_stdout(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn tail(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_takes_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), vec!["b", "c"]);
        assert_eq!(tail("a", 5), vec!["a"]);
    }
}
