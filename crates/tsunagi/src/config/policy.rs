//! `[policy]`: the gateway's filter and NAT rules files.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use tsunagi_host::policy_apply::OutLog;

use super::common::MAX_IFNAME_LEN;

/// `[policy]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    ipf: Option<PathBuf>,
    ipnat: Option<PathBuf>,
    #[serde(default)]
    interfaces: BTreeMap<String, String>,
    forwarding: Option<bool>,
    #[serde(default)]
    keep_on_exit: bool,
    nflog_group: Option<u16>,
    log_file: Option<PathBuf>,
    ipmon_out: Option<String>,
}

/// `[policy]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    /// ipf.rules file.
    pub ipf: Option<PathBuf>,
    /// ipnat.rules file.
    pub ipnat: Option<PathBuf>,
    /// Interface names in the rules -> Linux names.
    pub interfaces: BTreeMap<String, String>,
    /// Set `net.ipv4.ip_forward` at start (`None`: leave it).
    pub forwarding: Option<bool>,
    /// Leave the tables in place when the daemon stops.
    pub keep_on_exit: bool,
    /// NFLOG group for `log` rules.
    pub nflog_group: u16,
    /// Where ipmon lines go; `None`: the daemon's log.
    pub log_file: Option<PathBuf>,
    /// `ipmon_out`: log lines of packets `out` rules pass taken after
    /// `map` (`after-nat`, IPFilter's, the default) or where the rule
    /// matched (`before-nat`, leaves the packet mark alone).
    pub out_log: OutLog,
}

impl RawPolicy {
    /// Validate; the error names the key.
    pub fn validate(self) -> Result<PolicySettings, String> {
        if self.ipf.is_none() && self.ipnat.is_none() {
            return Err("policy: needs `ipf` or `ipnat` (a rules file)".into());
        }
        for (from, to) in &self.interfaces {
            if to.is_empty() || to.len() > MAX_IFNAME_LEN || to.contains('/') {
                return Err(format!(
                    "policy.interfaces.{from}: {to:?} is not a Linux interface name (1-15 bytes, no '/')"
                ));
            }
        }
        let out_log = match self.ipmon_out.as_deref() {
            None | Some("after-nat") => OutLog::AfterNat,
            Some("before-nat") => OutLog::BeforeNat,
            Some(other) => {
                return Err(format!(
                    "policy.ipmon_out: {other:?} is neither \"after-nat\" nor \"before-nat\""
                ))
            }
        };
        Ok(PolicySettings {
            ipf: self.ipf,
            ipnat: self.ipnat,
            interfaces: self.interfaces,
            forwarding: self.forwarding,
            keep_on_exit: self.keep_on_exit,
            nflog_group: self.nflog_group.unwrap_or(1),
            log_file: self.log_file,
            out_log,
        })
    }
}
