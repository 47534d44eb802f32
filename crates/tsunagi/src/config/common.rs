//! What the sections of the config share: interface names, prefixes, the
//! shape of a validation error.

use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::str::FromStr;

use serde::Deserialize;
use toml::Spanned;
use tsunagi_host::netlink::Ipv4Net;

/// How many routing tables each kind of [`stable_table`] spreads over.
pub const STABLE_TABLE_SPAN: u32 = 10_000;

/// A routing table for `name` that depends on nothing but the name:
/// `base` plus the name's 32-bit FNV-1a hash modulo `STABLE_TABLE_SPAN` (10000).
/// Adding, removing or renaming another section (or a `tsunagi reload`)
/// leaves it alone, as a table from the section's place in name order
/// would not. Two names that land on one table are told apart by the
/// caller (the later in name order takes the next free one).
pub fn stable_table(base: u32, name: &str) -> u32 {
    // FNV-1a (draft-eastlake-fnv): small, fixed across Rust versions and
    // platforms, unlike std's hasher.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    base + hash % STABLE_TABLE_SPAN
}

/// The table after `table` among [`stable_table`]`(base, ..)`'s, wrapping.
pub fn next_stable_table(base: u32, table: u32) -> u32 {
    base + (table - base + 1) % STABLE_TABLE_SPAN
}

/// Linux interface names are at most IFNAMSIZ - 1 = 15 bytes.
pub const MAX_IFNAME_LEN: usize = 15;

/// An IPv4 prefix written `A.B.C.D/N` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub Ipv4Net);

impl FromStr for Cidr {
    type Err = String;

    /// `A.B.C.D/N`, or a bare address for `/32`; host bits after the prefix
    /// are an error (the kernel would refuse the route at IPCP up).
    fn from_str(s: &str) -> Result<Cidr, String> {
        s.parse::<Ipv4Net>()
            .map(Cidr)
            .map_err(|e| format!("bad CIDR: {e}"))
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.addr, self.0.prefix)
    }
}

/// A validation error: where (a byte span of the file) and what.
pub type Invalid = (Range<usize>, String);

/// "ts-" + the link name, cut to 15 bytes (on a char boundary).
pub fn default_tun_name(link: &str) -> String {
    let mut name = format!("ts-{link}");
    while name.len() > MAX_IFNAME_LEN {
        name.pop();
    }
    name
}

/// The MRU of a PPTP link or server when the config gives none: what
/// Windows uses for PPTP, clear of the outer IPv4 (20), GRE (16) and PPP
/// and MPPE (up to 8) headers inside a 1500-octet path.
pub const DEFAULT_PPTP_MRU: u16 = 1400;

/// The MRU of an L2TP link or server when the config gives none: xl2tpd's
/// options files (seed 002's options.l2tpd.client: `mtu 1410`, `mru
/// 1410`), clear of the outer IPv4 (20), UDP (8), L2TP (up to 16) and PPP
/// (4) headers, and of IPsec's when L2TP runs inside it.
pub const DEFAULT_L2TP_MRU: u16 = 1410;

/// `tun`: a Linux interface name, default "ts-" + the section's name.
pub fn check_tun(tun: Option<&Spanned<String>>, section: &str) -> Result<String, Invalid> {
    let Some(t) = tun else {
        return Ok(default_tun_name(section));
    };
    let n = t.get_ref();
    if n.is_empty()
        || n.len() > MAX_IFNAME_LEN
        || n.contains(['/', ' ', '\0'])
        || n == "."
        || n == ".."
    {
        return Err((
            t.span(),
            format!("tun {n:?} is not a valid interface name (1..=15 bytes, no '/' or spaces)"),
        ));
    }
    Ok(n.clone())
}

/// `mru`: at least 128 (pppd's minimum), `default` when absent.
pub fn check_mru(mru: Option<&Spanned<u16>>, default: u16) -> Result<u16, Invalid> {
    match mru {
        Some(m) if *m.get_ref() < 128 => Err((
            m.span(),
            format!("mru {} is below 128 (pppd's minimum)", m.get_ref()),
        )),
        Some(m) => Ok(*m.get_ref()),
        None => Ok(default),
    }
}

/// `dns`: at most two servers (RFC 1877 primary and secondary).
pub fn check_dns(dns: Option<Spanned<Vec<Ipv4Addr>>>) -> Result<Vec<Ipv4Addr>, Invalid> {
    match dns {
        Some(d) if d.get_ref().len() > 2 => Err((
            d.span(),
            "at most 2 dns servers (RFC 1877 primary and secondary)".into(),
        )),
        Some(d) => Ok(d.into_inner()),
        None => Ok(Vec::new()),
    }
}

/// `echo_failure`: at least 1, default 3.
pub fn check_echo_failure(failures: Option<&Spanned<u32>>) -> Result<u32, Invalid> {
    match failures {
        Some(f) if *f.get_ref() == 0 => Err((
            f.span(),
            "echo_failure must be at least 1 (use echo_interval = 0 to disable echoes)".into(),
        )),
        Some(f) => Ok(*f.get_ref()),
        None => Ok(3),
    }
}

/// `restart` in seconds: at least 1, default 3 (RFC 1661 section 4.6).
pub fn check_restart(restart: Option<&Spanned<u64>>) -> Result<u64, Invalid> {
    match restart {
        Some(r) if *r.get_ref() == 0 => Err((r.span(), "restart must be at least 1 second".into())),
        Some(r) => Ok(*r.get_ref()),
        None => Ok(3),
    }
}

/// A section's name (`[link.NAME]`, `[server.NAME]`): letters, digits,
/// '-', '_' and '.' (it names files, hooks' ipparam and log lines).
pub fn check_section_name(name: &str, section: Range<usize>) -> Result<(), Invalid> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err((
            section,
            "names may use only letters, digits, '-', '_' and '.'".into(),
        ));
    }
    Ok(())
}
