//! The gateway policy on this host: rule files read and compiled
//! (`tsunagi-policy`), the ruleset applied and removed with `nft`, per-rule
//! hit counters, and the NFLOG reader that turns logged packets into
//! ipmon(8) lines (seed 000 §4.3, §4.4, appendix B.3).
//!
//! The daemon calls [`LoadedPolicy::load`] and [`LoadedPolicy::apply`] at
//! start, runs an [`IpmonLog`], and calls [`remove`] at shutdown unless the
//! config keeps the rules.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::unix::AsyncFd;
use tsunagi_policy::compile::{Counter, FILTER_TABLE, NAT_TABLE};
use tsunagi_policy::{
    compile, format_ipmon_line, parse_counters, parse_ipf_with, parse_ipnat, CompiledPolicy,
    IfaceMap, IpfRules, IpnatRules, LogPrefix, RuleInfo, Services,
};

pub use tsunagi_policy::compile::{Options, OutLog};
pub use tsunagi_policy::ipmon::{fold_identical, with_count};

use crate::nflog::{interface_name, NflogSocket};
use crate::nft;

/// Why a policy could not be loaded; the message is ready for an operator
/// (file, line, column, the source line with a caret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// Which language a rule file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesKind {
    /// `ipf.rules`
    Ipf,
    /// `ipnat.rules`
    Ipnat,
}

/// `ipnat` if the first rule starts with `map` or `rdr`, else `ipf`.
pub fn rules_kind(text: &str) -> RulesKind {
    let first = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find(|l| !l.is_empty())
        .and_then(|l| l.split_whitespace().next());
    match first {
        Some("map" | "rdr") => RulesKind::Ipnat,
        _ => RulesKind::Ipf,
    }
}

/// The service names ports in rules may use: the built-in ones and this
/// host's `/etc/services` (services(5)), as `ipf` resolves them with
/// getservbyname(3); the built-in ones alone if it cannot be read.
pub fn system_services() -> Services {
    match std::fs::read_to_string("/etc/services") {
        Ok(text) => Services::from_services_file(&text),
        Err(_) => Services::builtin(),
    }
}

fn read(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path)
        .map_err(|e| PolicyError(format!("{}: cannot read: {e}", path.display())))
}

/// `tsunagi policy check FILE`: parse FILE (ipf or ipnat, by its first
/// rule) and compile it with every interface name standing for itself.
/// Returns a one-line summary.
pub fn check_rules_file(path: &Path) -> Result<String, PolicyError> {
    let text = read(path)?;
    let name = path.display().to_string();
    let (ipf, ipnat) = match rules_kind(&text) {
        RulesKind::Ipf => (
            parse_ipf_with(&text, &system_services())
                .map_err(|e| PolicyError(e.render(&name, &text)))?,
            IpnatRules::default(),
        ),
        RulesKind::Ipnat => (
            IpfRules::default(),
            parse_ipnat(&text).map_err(|e| PolicyError(e.render(&name, &text)))?,
        ),
    };
    let map = IfaceMap::identity(&ipf, &ipnat);
    compile(&ipf, &ipnat, &map, &Options::default())
        .map_err(|e| PolicyError(format!("{name}: {e}")))?;
    Ok(match rules_kind(&text) {
        RulesKind::Ipf => format!("{name}: {} ipf rules OK", ipf.rules.len()),
        RulesKind::Ipnat => format!("{name}: {} ipnat rules OK", ipnat.rules.len()),
    })
}

/// Rule files, parsed and compiled for this host's interfaces.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    /// Filter rules (empty without an ipf file).
    pub ipf: IpfRules,
    /// NAT rules (empty without an ipnat file).
    pub ipnat: IpnatRules,
    /// Rule interface names -> Linux names.
    pub map: IfaceMap,
    /// The nftables ruleset.
    pub compiled: CompiledPolicy,
}

impl LoadedPolicy {
    /// Read, parse and compile. `interfaces` maps the names in the rules
    /// (em0, tun0, lo0) to Linux names; every name the rules use must be
    /// mapped, except `lo0`, which is `lo` unless mapped otherwise. `opts`:
    /// the NFLOG group of `log` rules and where `out` passes are logged.
    pub fn load(
        ipf: Option<&Path>,
        ipnat: Option<&Path>,
        interfaces: &BTreeMap<String, String>,
        opts: &Options,
    ) -> Result<LoadedPolicy, PolicyError> {
        let parse_file =
            |path: &Path, kind: RulesKind| -> Result<(IpfRules, IpnatRules), PolicyError> {
                let text = read(path)?;
                let name = path.display().to_string();
                match kind {
                    RulesKind::Ipf => Ok((
                        parse_ipf_with(&text, &system_services())
                            .map_err(|e| PolicyError(e.render(&name, &text)))?,
                        IpnatRules::default(),
                    )),
                    RulesKind::Ipnat => Ok((
                        IpfRules::default(),
                        parse_ipnat(&text).map_err(|e| PolicyError(e.render(&name, &text)))?,
                    )),
                }
            };
        let ipf_rules = match ipf {
            Some(p) => parse_file(p, RulesKind::Ipf)?.0,
            None => IpfRules::default(),
        };
        let ipnat_rules = match ipnat {
            Some(p) => parse_file(p, RulesKind::Ipnat)?.1,
            None => IpnatRules::default(),
        };
        let mut map = IfaceMap::new();
        map.insert("lo0", "lo");
        for (from, to) in interfaces {
            map.insert(from, to);
        }
        let name = |p: Option<&Path>| p.map_or_else(String::new, |p| p.display().to_string());
        // Filter rules alone first, so an error names the file it is in.
        compile(&ipf_rules, &IpnatRules::default(), &map, opts)
            .map_err(|e| PolicyError(format!("{}: {e}", name(ipf))))?;
        let compiled = compile(&ipf_rules, &ipnat_rules, &map, opts)
            .map_err(|e| PolicyError(format!("{}: {e}", name(ipnat))))?;
        Ok(LoadedPolicy {
            ipf: ipf_rules,
            ipnat: ipnat_rules,
            map,
            compiled,
        })
    }

    /// Replace tsunagi's tables with this ruleset, atomically.
    pub fn apply(&self) -> io::Result<()> {
        nft::apply(&self.compiled.to_json())
    }

    /// The ruleset as indented JSON (`tsunagi policy show`).
    pub fn show(&self) -> String {
        self.compiled.to_json_pretty()
    }

    /// Packets and bytes each rule decided so far, in rule order.
    pub fn hit_counts(&self) -> io::Result<Vec<(RuleInfo, Counter)>> {
        let mut all = BTreeMap::new();
        for (family, table) in [("inet", FILTER_TABLE), ("ip", NAT_TABLE)] {
            if !self.compiled.rules.iter().any(|r| r.table == table) {
                continue;
            }
            let json = nft::list_counters_json(family, table)?;
            let counters =
                parse_counters(&json).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            for (name, c) in counters {
                all.insert((table, name), c);
            }
        }
        Ok(self
            .compiled
            .rules
            .iter()
            .map(|r| {
                let c = all
                    .get(&(r.table, r.counter.clone()))
                    .copied()
                    .unwrap_or_default();
                (r.clone(), c)
            })
            .collect())
    }
}

/// The hit counters as a table for `tsunagi status`.
pub fn hit_table(hits: &[(RuleInfo, Counter)]) -> String {
    let mut out = String::from("POLICY RULE       PACKETS  BYTES  LINE  RULE\n");
    for (r, c) in hits {
        out.push_str(&format!(
            "{:<17} {:>7}  {:>5}  {}:{}  {}\n",
            r.label, c.packets, c.bytes, r.file, r.line, r.text
        ));
    }
    out
}

/// Remove tsunagi's tables (absent is not an error).
pub fn remove() -> io::Result<()> {
    nft::apply(&CompiledPolicy::removal().to_string())
}

/// `DD/MM/YYYY HH:MM:SS.UUUUUU` in local time, ipmon's date and time
/// fields (ipmon(8) writes a log file's lines in the host's local time; the
/// time zone is the process's, `TZ` or /etc/localtime).
pub fn ipmon_timestamp(t: SystemTime) -> String {
    ipmon_timestamp_at(t, local_utc_offset(t))
}

/// [`ipmon_timestamp`] at a given offset from UTC in seconds (east positive).
pub fn ipmon_timestamp_at(t: SystemTime, utc_offset: i64) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let local = d.as_secs() as i64 + utc_offset;
    let days = local.div_euclid(86_400);
    let rem = local.rem_euclid(86_400);
    let (year, month, day) = crate::civil::civil_from_days(days);
    format!(
        "{day:02}/{month:02}/{year} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// The local time zone's offset from UTC at `t`, in seconds (0 if the C
/// library cannot say).
pub fn local_utc_offset(t: SystemTime) -> i64 {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as libc::time_t);
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to fill.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live values of the right types;
    // localtime_r is the reentrant form and keeps no pointer to them.
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if ok {
        // c_long: i64 here, i32 on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        i64::from(tm.tm_gmtoff)
    } else {
        0
    }
}

/// NFLOG group -> ipmon lines, on the tokio runtime of the caller.
#[derive(Debug)]
pub struct IpmonLog {
    socket: AsyncFd<NflogSocket>,
    map: IfaceMap,
}

impl IpmonLog {
    /// Bind NFLOG `group` in this thread's network namespace; interface
    /// names in lines are the rules' names per `map`.
    pub fn bind(group: u16, map: IfaceMap) -> io::Result<IpmonLog> {
        let socket = NflogSocket::bind(group)?;
        socket.set_nonblocking(true)?;
        // SAFETY: the NflogSocket owns its descriptor (an OwnedFd) for as
        // long as it lives and as_raw_fd always returns that descriptor;
        // AsyncFd owns the NflogSocket, so the fd stays open while registered.
        let socket = unsafe { AsyncFd::register(socket) }?;
        Ok(IpmonLog { socket, map })
    }

    /// Wait for logged packets; their ipmon lines (without the timestamp).
    /// A packet that cannot be formatted gives a line saying why.
    pub async fn next_lines(&self) -> io::Result<Vec<String>> {
        loop {
            let mut guard = self.socket.readable().await?;
            match guard.try_io(|s| s.get_ref().recv()) {
                Ok(Ok(mut packets)) => {
                    // Whatever else is queued already comes along, so
                    // identical consecutive records can be folded (`Nx`),
                    // as IPFilter folds the records ipmon has not read yet.
                    let mut lost = false;
                    loop {
                        match self.socket.get_ref().recv() {
                            Ok(more) => packets.extend(more),
                            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => lost = true,
                            Err(_) => break,
                        }
                    }
                    let notice =
                        lost.then(|| "ipmon: NFLOG messages lost (socket buffer full)".to_string());
                    return Ok(packets
                        .into_iter()
                        .map(|p| {
                            // The rule's direction says which interface
                            // ipmon names; a foreign prefix fails below.
                            let inbound = LogPrefix::parse(&p.prefix).is_ok_and(|l| l.inbound);
                            let index = if inbound { p.indev } else { p.outdev };
                            let name = index
                                .and_then(|i| interface_name(i).ok())
                                .map(|linux| {
                                    self.map
                                        .rules_name(&linux)
                                        .unwrap_or(linux.as_str())
                                        .to_string()
                                })
                                .unwrap_or_else(|| "-".to_string());
                            format_ipmon_line(&name, &p.prefix, &p.payload).unwrap_or_else(|e| {
                                format!("{name} unformattable NFLOG packet: {e}")
                            })
                        })
                        .chain(notice)
                        .collect());
                }
                // ENOBUFS: the kernel dropped log messages; say so, go on.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Ok(vec![
                        "ipmon: NFLOG messages lost (socket buffer full)".to_string()
                    ])
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_kinds() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_113_834_170_000_123);
        assert_eq!(ipmon_timestamp_at(t, 0), "18/04/2005 14:22:50.000123");
        assert_eq!(
            ipmon_timestamp_at(UNIX_EPOCH, 0),
            "01/01/1970 00:00:00.000000"
        );
        // JST (+9 h) crosses midnight; a zone west of UTC goes back a year.
        assert_eq!(
            ipmon_timestamp_at(t + std::time::Duration::from_secs(10 * 3600), 9 * 3600),
            "19/04/2005 09:22:50.000123"
        );
        assert_eq!(
            ipmon_timestamp_at(UNIX_EPOCH, -5 * 3600),
            "31/12/1969 19:00:00.000000"
        );
        // The local form is the local offset's (UTC where TZ says so).
        assert_eq!(
            ipmon_timestamp(t),
            ipmon_timestamp_at(t, local_utc_offset(t))
        );
        assert_eq!(rules_kind("# x\n\nmap em0 a -> b\n"), RulesKind::Ipnat);
        assert_eq!(rules_kind("  rdr em0\n"), RulesKind::Ipnat);
        assert_eq!(rules_kind("pass in all\n"), RulesKind::Ipf);
        assert_eq!(rules_kind(""), RulesKind::Ipf);
    }
}
