//! `[policy]`: the gateway's filter and NAT in seed 000's ipf/ipnat
//! language, compiled to nftables (crates/policy) and applied by the daemon
//! (crates/host `policy_apply`), with ipmon lines from NFLOG.
//!
//! ```toml
//! [policy]
//! ipf = "/etc/tsunagi/ipf.rules"        # optional
//! ipnat = "/etc/tsunagi/ipnat.rules"    # optional
//! interfaces = { em0 = "eth0", em1 = "eth1", tun0 = "ts-labs" }  # rules name -> Linux name (lo0 = lo built in)
//! forwarding = true                     # net.ipv4.ip_forward at start; omit to leave it
//! keep_on_exit = false                  # keep the nftables tables when the daemon stops
//! nflog_group = 1                       # NFLOG group of `log` rules
//! ipmon_out = "after-nat"                # out passes logged after map (IPFilter's); "before-nat"
//! log_file = "/var/log/ipf.log"         # ipmon lines; omit: the daemon's log
//! ```
//!
//! A link's tun device is named by its link (`tun` in `[link.NAME]`), so the
//! rules keep their FreeBSD names and `interfaces` says which tun is `tun0`.
//!
//! # Holes for the daemon's servers
//!
//! A server (PPTP: TCP 1723 and GRE) opens its holes with
//! [`Holes::open_holes`] when it starts listening and closes them with
//! [`Holes::close_holes`] when it stops; they live in table `inet tsunagi`,
//! whose `in` chain jumps to them before any rule, so `block in all` does
//! not stop the server's clients (seed 004 opened them by hand with
//! iptables, which tsunagi's own drops would override). One log line per
//! hole opened or closed; `tsunagi status` shows their counters. With
//! `[policy]` the holes are in its table, and [`start`] applies the policy
//! together with the holes open at that moment; when the policy stops with
//! `keep_on_exit` its tables stay but without holes (a stopped server's
//! port must not stay open in a kept filter). Without `[policy]` the first
//! hole creates table `inet tsunagi` (an `in` chain that accepts and the
//! holes' chain), the last one closed (or the daemon's end) removes it.
//! See `tsunagi_host::holes` for the details.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use tracing::{info, warn};
use tsunagi_host::holes::{hole_counts, hole_table, HoleSet};
pub use tsunagi_host::holes::{Hole, HoleProtocol, OpenHoles};
use tsunagi_host::policy_apply::{
    check_rules_file, fold_identical, hit_table, ipmon_timestamp, with_count, IpmonLog,
    LoadedPolicy, Options, PolicyError,
};
use tsunagi_host::policy_route;

use crate::config::PolicySettings;

impl PolicySettings {
    /// Read, parse and compile the rule files.
    pub fn load(&self) -> Result<LoadedPolicy, PolicyError> {
        LoadedPolicy::load(
            self.ipf.as_deref(),
            self.ipnat.as_deref(),
            &self.interfaces,
            &Options {
                nflog_group: self.nflog_group,
                out_log: self.out_log,
            },
        )
    }
}

/// `tsunagi policy check FILE`.
pub fn check(file: &Path) -> i32 {
    match check_rules_file(file) {
        Ok(summary) => {
            println!("{summary}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// `tsunagi policy show`: the ruleset the config's `[policy]` compiles to.
pub fn show(settings: Option<&PolicySettings>) -> i32 {
    let Some(settings) = settings else {
        eprintln!("the config has no [policy] section");
        return 1;
    };
    match settings.load() {
        Ok(p) => {
            println!("{}", p.show());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

/// Per-rule hit counters for `tsunagi status` (needs the nftables tables,
/// so root), then the counters of the servers' open holes if any. Without
/// `[policy]`: the holes' counters alone, `None` when there are none (or
/// they cannot be read).
pub fn status_text(settings: Option<&PolicySettings>) -> Option<Result<String, String>> {
    let holes = hole_counts()
        .ok()
        .filter(|c| !c.is_empty())
        .map(|c| hole_table(&c));
    let Some(settings) = settings else {
        return holes.map(Ok);
    };
    Some(
        settings
            .load()
            .map_err(|e| e.to_string())
            .and_then(|p| p.hit_counts().map_err(|e| e.to_string()))
            .map(|hits| match holes {
                Some(holes) => format!("{}\n{holes}", hit_table(&hits)),
                None => hit_table(&hits),
            }),
    )
}

/// The holes the daemon's servers have open, shared by the servers and the
/// policy (clone it freely). Each change is one `nft` run (a few
/// milliseconds) under a lock, so changes apply in the order they are made;
/// from async code that must not block, call it inside
/// `tokio::task::spawn_blocking`.
#[derive(Debug, Clone, Default)]
pub struct Holes {
    set: Arc<Mutex<HoleSet>>,
}

impl Holes {
    /// No holes open, no policy applied yet.
    pub fn new() -> Holes {
        Holes::default()
    }

    fn lock(&self) -> MutexGuard<'_, HoleSet> {
        // A panic while applying leaves the set as it was before the change.
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open `holes` for `server` (what it had open before is replaced by
    /// exactly these), logging each hole opened and closed. On error
    /// nothing changed.
    pub fn open_holes(&self, server: &str, holes: &[Hole]) -> anyhow::Result<()> {
        let mut set = self.lock();
        let before = set.open_holes().get(server).cloned().unwrap_or_default();
        set.open(server, holes).map_err(|e| {
            anyhow::anyhow!(
                "server {server}: cannot open its firewall holes ({}): {e}",
                holes
                    .iter()
                    .map(Hole::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
        log_changes(server, &before, holes);
        Ok(())
    }

    /// Close every hole of `server`, logging each; none open is not an
    /// error. On error nothing changed.
    pub fn close_holes(&self, server: &str) -> anyhow::Result<()> {
        let mut set = self.lock();
        let before = set.open_holes().get(server).cloned().unwrap_or_default();
        set.close(server).map_err(|e| {
            anyhow::anyhow!("server {server}: cannot close its firewall holes: {e}")
        })?;
        log_changes(server, &before, &[]);
        Ok(())
    }

    /// The holes open now, by server.
    pub fn open(&self) -> OpenHoles {
        self.lock().open_holes().clone()
    }

    /// At the daemon's end, after the policy's stop: a table made for the
    /// holes alone is removed; later closes change nothing.
    pub fn shutdown(&self) {
        let mut set = self.lock();
        let open = set.open_holes().clone();
        match set.shutdown() {
            Err(e) => warn!("holes: cannot remove table inet tsunagi: {e}"),
            Ok(()) => {
                for (server, holes) in &open {
                    log_changes(server, holes, &[]);
                }
            }
        }
    }
}

/// One line per hole opened or closed.
fn log_changes(server: &str, before: &[Hole], after: &[Hole]) {
    for hole in after.iter().filter(|h| !before.contains(h)) {
        info!("server {server}: firewall hole opened: {hole}");
    }
    for hole in before.iter().filter(|h| !after.contains(h)) {
        info!("server {server}: firewall hole closed: {hole}");
    }
}

/// The applied policy of a running daemon.
#[derive(Debug)]
pub struct RunningPolicy {
    /// What it was applied from.
    settings: PolicySettings,
    keep_on_exit: bool,
    log_task: Option<tokio::task::JoinHandle<()>>,
    holes: Holes,
}

/// Apply at daemon start: compile, `nft -j -f -` (with the holes open now,
/// in the same transaction), forwarding, ipmon task. An error stops the
/// daemon: a gateway should not run without its filter.
pub fn start(settings: &PolicySettings, holes: &Holes) -> anyhow::Result<RunningPolicy> {
    let policy = settings.load()?;
    let log = IpmonLog::bind(settings.nflog_group, policy.map.clone())
        .map_err(|e| anyhow::anyhow!("policy: NFLOG group {}: {e}", settings.nflog_group))?;
    holes
        .lock()
        .apply_policy(&policy)
        .map_err(|e| anyhow::anyhow!("policy: cannot apply the ruleset: {e}"))?;
    if let Some(on) = settings.forwarding {
        policy_route::set_ip_forwarding(on)
            .map_err(|e| anyhow::anyhow!("policy: ip forwarding: {e}"))?;
    }
    info!(
        "policy applied: {} ipf rules, {} ipnat rules, NFLOG group {}",
        policy.ipf.rules.len(),
        policy.ipnat.rules.len(),
        settings.nflog_group
    );
    let file = settings.log_file.clone();
    let log_task = tokio::spawn(ipmon_lines(log, file));
    Ok(RunningPolicy {
        settings: settings.clone(),
        keep_on_exit: settings.keep_on_exit,
        log_task: Some(log_task),
        holes: holes.clone(),
    })
}

impl RunningPolicy {
    /// `tsunagi reload`: the rule files read and compiled again, and
    /// swapped in with the holes open now in one nftables transaction, as
    /// `ipf -Fa -f` with `ipnat -CF -f` (connection tracking, hence kept
    /// state and NAT mappings, stays: it is the kernel's). A file that
    /// does not load or compile leaves the rules in force, and the error
    /// says which file and line. A new NFLOG group or ipmon file starts a
    /// new ipmon task.
    pub fn reload(&mut self, settings: &PolicySettings) -> anyhow::Result<()> {
        let policy = settings.load()?;
        let relog = settings.nflog_group != self.settings.nflog_group
            || settings.log_file != self.settings.log_file;
        let log = if relog {
            if let Some(t) = self.log_task.take() {
                // The old socket must go before the group can be bound again.
                t.abort();
            }
            Some(
                IpmonLog::bind(settings.nflog_group, policy.map.clone()).map_err(|e| {
                    anyhow::anyhow!("policy: NFLOG group {}: {e}", settings.nflog_group)
                })?,
            )
        } else {
            None
        };
        self.holes
            .lock()
            .apply_policy(&policy)
            .map_err(|e| anyhow::anyhow!("policy: cannot apply the ruleset: {e}"))?;
        if settings.forwarding != self.settings.forwarding {
            if let Some(on) = settings.forwarding {
                policy_route::set_ip_forwarding(on)
                    .map_err(|e| anyhow::anyhow!("policy: ip forwarding: {e}"))?;
            }
        }
        if let Some(log) = log {
            self.log_task = Some(tokio::spawn(ipmon_lines(log, settings.log_file.clone())));
        }
        info!(
            "policy re-applied: {} ipf rules, {} ipnat rules, NFLOG group {}",
            policy.ipf.rules.len(),
            policy.ipnat.rules.len(),
            settings.nflog_group
        );
        self.keep_on_exit = settings.keep_on_exit;
        self.settings = settings.clone();
        Ok(())
    }

    /// At shutdown: stop logging, remove the tables unless kept; kept
    /// tables lose any hole still open.
    pub fn stop(mut self) {
        if let Some(t) = self.log_task.take() {
            t.abort();
        }
        let open = self.holes.open();
        let result = self.holes.lock().policy_stopped(self.keep_on_exit);
        match (result, self.keep_on_exit) {
            (Err(e), true) => {
                warn!("policy: cannot close the servers' holes in the kept tables: {e}")
            }
            (Err(e), false) => warn!("policy: cannot remove the ruleset: {e}"),
            (Ok(()), keep) => {
                if keep {
                    info!("policy: keep_on_exit: nftables tables left in place");
                } else {
                    info!("policy removed");
                }
                for (server, holes) in &open {
                    log_changes(server, holes, &[]);
                }
            }
        }
    }
}

async fn ipmon_lines(log: IpmonLog, file: Option<PathBuf>) {
    let mut out = match &file {
        None => None,
        // Appended by root as the daemon's own log is, so opened the same
        // careful way.
        Some(path) => match crate::logging::open_log_file(path) {
            Ok(f) => Some(f),
            Err(e) => {
                warn!("policy: ipmon {e}; using the daemon's log");
                None
            }
        },
    };
    loop {
        match log.next_lines().await {
            Ok(lines) => {
                // ipmon's `Nx`: identical consecutive records read together.
                for (count, line) in fold_identical(lines) {
                    let line = with_count(count, &line);
                    match &mut out {
                        Some(f) => {
                            let _ = writeln!(f, "{} {line}", ipmon_timestamp(SystemTime::now()));
                        }
                        None => info!(target: "ipmon", "{line}"),
                    }
                }
            }
            Err(e) => {
                warn!("policy: NFLOG read failed, ipmon lines stop: {e}");
                return;
            }
        }
    }
}
