//! ip-up / ip-down hook scripts with pppd's six arguments (pppd(8),
//! "SCRIPTS"): `interface tty speed local-ip remote-ip ipparam`.
//!
//! Our tty is "ssh" (dial) or "direct", the speed 0, the ipparam the link
//! name. As pppd does, the same values are also in the environment:
//! `IFNAME`, `DEVICE` (the tty), `IPLOCAL`, `IPREMOTE`, `IPPARAM`,
//! `LINKNAME`, and `DNS1`/`DNS2` when the peer gave DNS servers.
//! A hook runs in its own task: a slow script never stalls the link.

use std::net::Ipv4Addr;
use std::path::Path;

use tracing::{info, warn};

/// Start `script` and log how it ended, without waiting for it.
pub fn spawn(
    script: &Path,
    ifname: &str,
    tty: &str,
    local: Ipv4Addr,
    peer: Ipv4Addr,
    link: &str,
    dns: [Option<Ipv4Addr>; 2],
) {
    let mut cmd = tokio::process::Command::new(script);
    cmd.env("IFNAME", ifname)
        .env("DEVICE", tty)
        .env("IPLOCAL", local.to_string())
        .env("IPREMOTE", peer.to_string())
        .env("IPPARAM", link)
        .env("LINKNAME", link);
    for (i, d) in dns.iter().enumerate() {
        if let Some(d) = d {
            cmd.env(format!("DNS{}", i + 1), d.to_string());
        }
    }
    cmd.args([
        ifname,
        tty,
        "0",
        &local.to_string(),
        &peer.to_string(),
        link,
    ])
    .stdin(std::process::Stdio::null())
    .kill_on_drop(false);
    let shown = script.display().to_string();
    let link = link.to_string();
    match cmd.spawn() {
        Ok(mut child) => {
            tokio::spawn(async move {
                match child.wait().await {
                    Ok(s) if s.success() => info!("{link}: {shown} finished"),
                    Ok(s) => warn!("{link}: {shown} failed: {s}"),
                    Err(e) => warn!("{link}: {shown}: wait: {e}"),
                }
            });
        }
        Err(e) => warn!("{link}: cannot run {shown}: {e}"),
    }
}
