//! `tsunagi reload` and SIGHUP: what a new config changes, decided without
//! touching anything ([`ReloadPlan::between`]); the daemon carries it out.
//!
//! A section whose settings are equal in both configs keeps running: its
//! sessions are not dropped (dropping every session on each config commit
//! is the top complaint about accel-ppp under VyOS). A changed link or
//! server is stopped (its peers get LCP Terminate-Request, L2TP CDN and
//! StopCCN as at shutdown) and started with the new settings; a removed one
//! is stopped; an added one is started. Secrets files are read again for
//! everyone (sessions look peers up in them at each authentication, as
//! pppd does), and `[policy]` is compiled and swapped in one nftables
//! transaction (as `ipf -Fa -f` with `ipnat -CF -f`; the kernel's
//! connection tracking, hence NAT mappings and kept state, stays).
//!
//! An `[ipsec]` conn whose plumbing is the same (addresses, mode,
//! selectors, tun) takes what it negotiates (keys, proposals, lifetimes,
//! DPD, ...) from its next negotiation; its SAs up stay.
//!
//! What a running daemon cannot take over is reported, and left as it was:
//! `[daemon]`'s control socket, log file, audit sinks and metrics address,
//! `[ipsec]` conns added, removed or re-plumbed, and
//! the L2TP/IPsec profiles bound to them (their conn's handles are made
//! once, at start). Those need a restart, and the answer says so.

use std::collections::BTreeSet;
use std::fmt;

use crate::config::{Config, LinkSettings, ServerProfile};

/// What happens to one link or server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only in the new config: started.
    Added,
    /// Only in the old config: stopped.
    Removed,
    /// In both, with other settings: stopped, then started anew.
    Changed,
    /// Equal in both: left running.
    Unchanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
        })
    }
}

/// A difference the running daemon does not take over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotApplied {
    /// A `[daemon]` key read only at start.
    DaemonKey(&'static str),
    /// An `[ipsec]` conn was added or removed, or its plumbing changed
    /// (addresses, mode, selectors, tun:
    /// [`crate::config::IpsecConn::same_plumbing`]).
    Ipsec,
    /// An L2TP/IPsec link or server (`ipsec = "..."` in either config)
    /// differs: `link.NAME` or `server.NAME`.
    IpsecProfile(String),
}

impl fmt::Display for NotApplied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotApplied::DaemonKey(key) => write!(f, "[daemon] {key} changed"),
            NotApplied::Ipsec => f.write_str(
                "an [ipsec] conn was added or removed, or its addresses, selectors or tun changed",
            ),
            NotApplied::IpsecProfile(name) => {
                write!(f, "{name} is bound to an [ipsec] conn and changed")
            }
        }
    }
}

/// What a new config changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Every link of either config, by name, and what happens to it.
    pub links: Vec<(String, Change)>,
    /// Every server of either config, by name.
    pub servers: Vec<(String, Change)>,
    /// `[ipsec]` conns whose negotiated settings changed (keys aside),
    /// with the same plumbing: taken from their next negotiation.
    pub ipsec: Vec<String>,
    /// What is left as it was, and why.
    pub not_applied: Vec<NotApplied>,
}

/// The name-ordered union of `old` and `new`'s sections, each with its
/// change. A section bound to IPsec (by `bound`) whose change is not
/// `Unchanged` is left alone, as `NotApplied::IpsecProfile(kind.NAME)`.
fn diff<T: PartialEq>(
    kind: &str,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &str,
    bound: impl Fn(&T) -> bool,
    not_applied: &mut Vec<NotApplied>,
) -> Vec<(String, Change)> {
    let find = |list: &'_ [T], n: &str| list.iter().position(|t| name(t) == n);
    let names: BTreeSet<&str> = old.iter().chain(new).map(&name).collect();
    let mut out = Vec::new();
    for n in names {
        let (o, w) = (find(old, n).map(|i| &old[i]), find(new, n).map(|i| &new[i]));
        let change = match (o, w) {
            (Some(o), Some(w)) if o == w => Change::Unchanged,
            (Some(_), Some(_)) => Change::Changed,
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (None, None) => continue,
        };
        if change != Change::Unchanged && o.into_iter().chain(w).any(&bound) {
            not_applied.push(NotApplied::IpsecProfile(format!("{kind}.{n}")));
            out.push((n.to_string(), Change::Unchanged));
            continue;
        }
        out.push((n.to_string(), change));
    }
    out
}

impl ReloadPlan {
    /// What going from `old` to `new` does.
    pub fn between(old: &Config, new: &Config) -> ReloadPlan {
        let mut not_applied = Vec::new();
        if old.daemon.control_socket != new.daemon.control_socket {
            not_applied.push(NotApplied::DaemonKey("control_socket"));
        }
        if old.daemon.log_file != new.daemon.log_file {
            not_applied.push(NotApplied::DaemonKey("log_file"));
        }
        if old.daemon.audit_file != new.daemon.audit_file {
            not_applied.push(NotApplied::DaemonKey("audit_file"));
        }
        if old.daemon.audit_syslog != new.daemon.audit_syslog {
            not_applied.push(NotApplied::DaemonKey("audit_syslog"));
        }
        if old.daemon.metrics_listen != new.daemon.metrics_listen {
            not_applied.push(NotApplied::DaemonKey("metrics_listen"));
        }
        let mut ipsec = Vec::new();
        if old.ipsec != new.ipsec {
            let same_plumbing = old.ipsec.len() == new.ipsec.len()
                && old
                    .ipsec
                    .iter()
                    .zip(&new.ipsec)
                    .all(|(a, b)| a.same_plumbing(b));
            if same_plumbing {
                ipsec = old
                    .ipsec
                    .iter()
                    .zip(&new.ipsec)
                    .filter(|(a, b)| a != b)
                    .map(|(_, b)| b.name.clone())
                    .collect();
            } else {
                not_applied.push(NotApplied::Ipsec);
            }
        }
        let links = diff(
            "link",
            &old.links,
            &new.links,
            |l: &LinkSettings| l.name.as_str(),
            |l| l.l2tp.ipsec.is_some(),
            &mut not_applied,
        );
        let servers = diff(
            "server",
            &old.servers,
            &new.servers,
            |s: &ServerProfile| s.name.as_str(),
            |s| s.l2tp.ipsec.is_some(),
            &mut not_applied,
        );
        ReloadPlan {
            links,
            servers,
            ipsec,
            not_applied,
        }
    }

    /// Whether nothing at all changes for links and servers.
    pub fn nothing_to_do(&self) -> bool {
        self.links
            .iter()
            .chain(&self.servers)
            .all(|(_, c)| *c == Change::Unchanged)
    }
}

/// What a reload did, for the answer and the log: one line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// `link.NAME changed`, `server.NAME added`, ... for each section that
    /// was not left unchanged.
    pub done: Vec<String>,
    /// Sections left running as they were.
    pub unchanged: usize,
    /// Secrets files read again, with their entry counts.
    pub secrets: Vec<String>,
    /// What went wrong (a profile that could not start, a secrets file
    /// that could not be read again): each names its section or file.
    pub errors: Vec<String>,
    /// What needs a restart.
    pub not_applied: Vec<NotApplied>,
    /// `[policy]`: what happened to it, if anything.
    pub policy: Option<String>,
}

impl fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.done.is_empty() {
            f.write_str("reload: no link or server changed")?;
        } else {
            write!(f, "reload: {}", self.done.join(", "))?;
        }
        write!(f, "; {} unchanged", self.unchanged)?;
        if !self.secrets.is_empty() {
            write!(f, "; secrets re-read: {}", self.secrets.join(", "))?;
        }
        if let Some(p) = &self.policy {
            write!(f, "; policy {p}")?;
        }
        for e in &self.errors {
            write!(f, "; error: {e}")?;
        }
        if !self.not_applied.is_empty() {
            let list: Vec<String> = self.not_applied.iter().map(|n| n.to_string()).collect();
            write!(f, "; not applied (needs a restart): {}", list.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        Config::parse(Path::new("t.toml"), text).unwrap()
    }

    const LABS: &str = "[link.labs]\nmode = \"dial\"\ndevice = \"ssh labs\"\n";
    const OSAKA: &str = "[link.osaka]\nmode = \"dial\"\ndevice = \"ssh osaka\"\n";
    const VPN: &str = "[server.vpn]\nprotocol = \"pptp\"\nlocalip = \"10.0.0.1\"\nremoteip = \"10.0.0.100-110\"\nsecrets = \"/etc/ppp/chap-secrets\"\n";

    #[test]
    fn equal_sections_stay_changed_ones_restart() {
        let old = config(&format!("{LABS}{OSAKA}{VPN}"));
        let new = config(&format!(
            "{}{OSAKA}{}",
            LABS.replace("ssh labs", "ssh -p 2222 labs"),
            VPN.replace("110", "120")
        ));
        let plan = ReloadPlan::between(&old, &new);
        assert_eq!(
            plan.links,
            vec![
                ("labs".to_string(), Change::Changed),
                ("osaka".to_string(), Change::Unchanged)
            ]
        );
        assert_eq!(plan.servers, vec![("vpn".to_string(), Change::Changed)]);
        assert!(plan.not_applied.is_empty());
        assert!(ReloadPlan::between(&old, &old).nothing_to_do());
    }

    #[test]
    fn added_and_removed_sections() {
        let old = config(&format!("{LABS}{VPN}"));
        let new = config(OSAKA);
        let plan = ReloadPlan::between(&old, &new);
        assert_eq!(
            plan.links,
            vec![
                ("labs".to_string(), Change::Removed),
                ("osaka".to_string(), Change::Added)
            ]
        );
        assert_eq!(plan.servers, vec![("vpn".to_string(), Change::Removed)]);
    }

    #[test]
    fn ipsec_and_start_only_keys_are_reported_not_applied() {
        let conn = "[ipsec.l2tp]\nleft = \"10.0.0.1\"\nright = \"10.0.0.2\"\ntype = \"transport\"\nleftprotoport = \"17/1701\"\nrightprotoport = \"17/1701\"\n";
        let link = "[link.office]\nmode = \"l2tp\"\nlns = \"10.0.0.2\"\nipsec = \"l2tp\"\n";
        let old = config(&format!("{link}{conn}"));
        let new = config(&format!(
            "[daemon]\ncontrol_socket = \"/run/other.sock\"\n{}{}{LABS}",
            link.replace("[link.office]\n", "[link.office]\nmru = 1400\n"),
            conn.replace("[ipsec.l2tp]\n", "[ipsec.l2tp]\nlifetime = \"2h\"\n")
        ));
        let plan = ReloadPlan::between(&old, &new);
        assert_eq!(
            plan.links,
            vec![
                ("labs".to_string(), Change::Added),
                ("office".to_string(), Change::Unchanged)
            ]
        );
        // A new lifetime is negotiated, not plumbing: taken by the conn.
        assert_eq!(plan.ipsec, vec!["l2tp".to_string()]);
        assert_eq!(
            plan.not_applied,
            vec![
                NotApplied::DaemonKey("control_socket"),
                NotApplied::IpsecProfile("link.office".into())
            ]
        );
        // Another peer is plumbing (the policy rule, the holes): a restart.
        let moved = config(&format!("{link}{conn}").replace("10.0.0.2", "10.0.0.3"));
        let moved = ReloadPlan::between(&old, &moved);
        assert!(moved.ipsec.is_empty());
        assert!(moved.not_applied.contains(&NotApplied::Ipsec), "{moved:?}");
        let report = ReloadReport {
            done: vec!["link.labs added".into()],
            unchanged: 1,
            not_applied: vec![NotApplied::DaemonKey("control_socket"), NotApplied::Ipsec],
            ..ReloadReport::default()
        };
        assert_eq!(
            report.to_string(),
            "reload: link.labs added; 1 unchanged; not applied (needs a restart): [daemon] control_socket changed, an [ipsec] conn was added or removed, or its addresses, selectors or tun changed"
        );
    }
}
