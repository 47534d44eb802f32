//! Applying an nftables JSON ruleset (`libnftables-json(5)`) with
//! `nft -j -f -`, which runs the whole document as one transaction: it
//! applies completely or not at all. Also reads named counters back.
//!
//! `nft` runs as a child process in the calling thread's network namespace.

use std::io::{self, Write};
use std::process::{Command, Stdio};

/// Apply `json` (a `{"nftables": [...]}` document) atomically.
pub fn apply(json: &str) -> io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("nft -j -f -: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(json.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "nft -j -f -: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `nft -j list counters table FAMILY TABLE`: the JSON document (parse it
/// with `tsunagi_policy::compile::parse_counters`); `NotFound` if the table
/// is absent.
pub fn list_counters_json(family: &str, table: &str) -> io::Result<Vec<u8>> {
    let out = Command::new("nft")
        .args(["-j", "list", "counters", "table", family, table])
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("nft list counters: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "nft list counters table {family} {table}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(out.stdout)
}

/// Whether table `family name` exists.
pub fn table_exists(family: &str, table: &str) -> io::Result<bool> {
    let status = Command::new("nft")
        .args(["list", "table", family, table])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    Ok(status.success())
}
