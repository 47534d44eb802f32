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
//! log_file = "/var/log/ipf.log"         # ipmon lines; omit: the daemon's log
//! ```
//!
//! A link's tun device is named by its link (`tun` in `[link.NAME]`), so the
//! rules keep their FreeBSD names and `interfaces` says which tun is `tun0`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tracing::{info, warn};
use tsunagi_host::policy_apply::{
    check_rules_file, hit_table, ipmon_timestamp, remove, IpmonLog, LoadedPolicy, PolicyError,
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
            self.nflog_group,
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
/// so root); `None` without `[policy]`.
pub fn status_text(settings: Option<&PolicySettings>) -> Option<Result<String, String>> {
    let settings = settings?;
    Some(
        settings
            .load()
            .map_err(|e| e.to_string())
            .and_then(|p| p.hit_counts().map_err(|e| e.to_string()))
            .map(|hits| hit_table(&hits)),
    )
}

/// The applied policy of a running daemon.
#[derive(Debug)]
pub struct RunningPolicy {
    keep_on_exit: bool,
    log_task: Option<tokio::task::JoinHandle<()>>,
}

/// Apply at daemon start: compile, `nft -j -f -`, forwarding, ipmon task.
/// An error stops the daemon: a gateway should not run without its filter.
pub fn start(settings: &PolicySettings) -> anyhow::Result<RunningPolicy> {
    let policy = settings.load()?;
    let log = IpmonLog::bind(settings.nflog_group, policy.map.clone())
        .map_err(|e| anyhow::anyhow!("policy: NFLOG group {}: {e}", settings.nflog_group))?;
    policy
        .apply()
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
        keep_on_exit: settings.keep_on_exit,
        log_task: Some(log_task),
    })
}

impl RunningPolicy {
    /// At shutdown: stop logging, remove the tables unless kept.
    pub fn stop(mut self) {
        if let Some(t) = self.log_task.take() {
            t.abort();
        }
        if self.keep_on_exit {
            info!("policy: keep_on_exit: nftables tables left in place");
        } else if let Err(e) = remove() {
            warn!("policy: cannot remove the ruleset: {e}");
        } else {
            info!("policy removed");
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
                for line in lines {
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
