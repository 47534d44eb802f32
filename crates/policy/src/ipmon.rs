//! ipmon(8) log lines from logged packets.
//!
//! The fields (ipmon(8) "DESCRIPTION", and IPFilter's ipmon as it prints
//! them): interface, `@group:rule`, `S` if the packet was too short for
//! its transport header, the action (`p` pass, `b` block), then
//!
//! - TCP and UDP (not a later fragment, not short):
//!   `src,sport -> dst,dport PR tcp len HLEN TOTAL`, for TCP `-FLAGS`
//!   (letters in ipmon's order `ARSFUPEC`);
//! - ICMP (not a later fragment): `src -> dst PR icmp len HLEN TOTAL icmp
//!   TYPE/CODE` with ipmon's names (`icmp echo/0`, `icmp unreach/port`),
//!   and for an ICMP error the packet it is about (` for src,sport -
//!   dst,dport PR tcp len HLEN TOTAL`);
//! - short packets: `src -> dst PR tcp len HLEN TOTAL`, no ports;
//! - anything else, later fragments included: `src -> dst PR PROTO len
//!   HLEN (TOTAL)`, a fragment followed by `(frag ID:LEN@OFFSET[+][-])`
//!   (`+` more fragments, `-` don't fragment);
//!
//! then `K-S` (keep state) and `K-F` (keep frags) of the rule, and
//! `IN`/`OUT`. Seed 000 appendix B.3:
//!
//! ```text
//! tun0 @300:2 p 192.168.1.215,3936 -> 192.168.253.1,23 PR tcp len 20 48 -S K-S K-F IN
//! ```
//!
//! Date and time (`DD/MM/YYYY HH:MM:SS.UUUUUU`, local time) and the `Nx`
//! count of identical consecutive records ([`fold_identical`]) are put in
//! front by the writer of the log file. The rule part comes from the NFLOG
//! prefix the compiled rule carries ([`mod@crate::compile`]).

use std::net::Ipv4Addr;

use crate::ast::tcp_flag;

/// Why a log line cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpmonError {
    /// The prefix is not one tsunagi's compiler writes.
    #[error("log prefix {0:?} is not `@GROUP:RULE p|b IN|OUT [K-S] [K-F]`")]
    Prefix(String),
    /// The logged packet is not IPv4.
    #[error("packet IP version is {0}, not 4")]
    NotIpv4(u8),
    /// The packet ends inside a header field.
    #[error("packet of {have} octets too short for the IPv4 {field}")]
    Truncated {
        /// The field.
        field: &'static str,
        /// Octets available.
        have: usize,
    },
}

/// The rule part of a log line, as carried in the NFLOG prefix
/// `@GROUP:RULE A DIR[ K-S][ K-F]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPrefix {
    /// Group number.
    pub group: u32,
    /// Rule number within group and direction.
    pub rule: u32,
    /// `true` for pass, `false` for block.
    pub pass: bool,
    /// `true` for IN.
    pub inbound: bool,
    /// The rule keeps state.
    pub keep_state: bool,
    /// The rule keeps fragments.
    pub keep_frags: bool,
}

impl LogPrefix {
    /// Parse a prefix written by the compiler; anything else is an error.
    pub fn parse(prefix: &str) -> Result<LogPrefix, IpmonError> {
        let bad = || IpmonError::Prefix(prefix.to_string());
        let mut words = prefix.split_ascii_whitespace();
        let at = words.next().ok_or_else(bad)?;
        let (group, rule) = at
            .strip_prefix('@')
            .and_then(|s| s.split_once(':'))
            .ok_or_else(bad)?;
        let group = group.parse().map_err(|_| bad())?;
        let rule = rule.parse().map_err(|_| bad())?;
        let pass = match words.next() {
            Some("p") => true,
            Some("b") => false,
            _ => return Err(bad()),
        };
        let inbound = match words.next() {
            Some("IN") => true,
            Some("OUT") => false,
            _ => return Err(bad()),
        };
        let (mut keep_state, mut keep_frags) = (false, false);
        for w in words {
            match w {
                "K-S" if !keep_state => keep_state = true,
                "K-F" if !keep_frags => keep_frags = true,
                _ => return Err(bad()),
            }
        }
        Ok(LogPrefix {
            group,
            rule,
            pass,
            inbound,
            keep_state,
            keep_frags,
        })
    }
}

/// ipmon's TCP flag letters in its print order.
const IPMON_FLAGS: [(char, u8); 8] = [
    ('A', tcp_flag::ACK),
    ('R', tcp_flag::RST),
    ('S', tcp_flag::SYN),
    ('F', tcp_flag::FIN),
    ('U', tcp_flag::URG),
    ('P', tcp_flag::PSH),
    ('E', tcp_flag::ECE),
    ('C', tcp_flag::CWR),
];

/// ipmon's names of ICMP types (index = type; RFC 792, RFC 950, RFC 1256).
const ICMP_TYPES: [Option<&str>; 19] = [
    Some("echoreply"),
    None,
    None,
    Some("unreach"),
    Some("sourcequench"),
    Some("redirect"),
    None,
    None,
    Some("echo"),
    Some("routeradvert"),
    Some("routersolicit"),
    Some("timxceed"),
    Some("paramprob"),
    Some("timestamp"),
    Some("timestampreply"),
    Some("inforeq"),
    Some("inforeply"),
    Some("maskreq"),
    Some("maskreply"),
];

/// ipmon's names of unreachable codes (RFC 792, RFC 1122, RFC 1812). Codes
/// 8 and 10 print as numbers, as IPFilter's ipmon prints them (its table
/// has those two entries under other values).
const UNREACH_CODES: [Option<&str>; 14] = [
    Some("net"),
    Some("host"),
    Some("protocol"),
    Some("port"),
    Some("needfrag"),
    Some("srcfail"),
    Some("net_unknown"),
    Some("host_unknown"),
    None,
    Some("net_prohib"),
    None,
    Some("tosnet"),
    Some("toshost"),
    Some("admin_prohibit"),
];

/// `TYPE/CODE` as ipmon prints an ICMP type and code.
pub fn icmp_name(ty: u8, code: u8) -> String {
    let ty_name = match ICMP_TYPES.get(usize::from(ty)).copied().flatten() {
        Some(n) => n.to_string(),
        None => format!("icmptype({ty})"),
    };
    let sub: &[&str] = match ty {
        5 => &["net", "host", "tosnet", "toshost"],
        11 => &["transit", "reassem"],
        12 => &["errata_pointer", "optmissing", "length"],
        _ => &[],
    };
    let code_name = if ty == 3 {
        UNREACH_CODES.get(usize::from(code)).copied().flatten()
    } else {
        sub.get(usize::from(code)).copied()
    };
    match code_name {
        Some(c) => format!("{ty_name}/{c}"),
        None => format!("{ty_name}/{code}"),
    }
}

/// Protocol names as `/etc/protocols` gives them to ipmon.
fn proto_name(p: u8) -> String {
    match p {
        0 => "ip".into(),
        1 => "icmp".into(),
        2 => "igmp".into(),
        4 => "ipencap".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        41 => "ipv6".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        89 => "ospf".into(),
        103 => "pim".into(),
        112 => "vrrp".into(),
        115 => "l2tp".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

/// The smallest transport header a first fragment must hold not to be
/// `short` (what `with short` matches in [`mod@crate::compile`]).
fn min_transport(p: u8) -> Option<u16> {
    match p {
        6 => Some(20),
        17 => Some(8),
        1 => Some(4),
        _ => None,
    }
}

/// Identical consecutive lines folded into one with their count, as the
/// IPFilter kernel folds identical consecutive records ipmon has not read
/// yet and ipmon prints `Nx` before the interface.
pub fn fold_identical(lines: Vec<String>) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    for line in lines {
        match out.last_mut() {
            Some((n, last)) if *last == line => *n += 1,
            _ => out.push((1, line)),
        }
    }
    out
}

/// A folded record as written: `Nx ` before the line when N > 1.
pub fn with_count(count: u32, line: &str) -> String {
    if count > 1 {
        format!("{count}x {line}")
    } else {
        line.to_string()
    }
}

/// The ipmon line for `packet` (starting at the IPv4 header) logged by the
/// rule of `prefix` on interface `iface` (the name the rules use).
///
/// A packet cut short by the NFLOG copy range still gives a line as long as
/// the IPv4 header is there; transport fields that are missing are left out.
pub fn format_ipmon_line(iface: &str, prefix: &str, packet: &[u8]) -> Result<String, IpmonError> {
    let p = LogPrefix::parse(prefix)?;
    let first = *packet.first().ok_or(IpmonError::Truncated {
        field: "version",
        have: 0,
    })?;
    if first >> 4 != 4 {
        return Err(IpmonError::NotIpv4(first >> 4));
    }
    let hlen = usize::from(first & 0x0f) * 4;
    if hlen < 20 || packet.len() < 20 {
        return Err(IpmonError::Truncated {
            field: "header",
            have: packet.len(),
        });
    }
    let total = u16::from_be_bytes([packet[2], packet[3]]);
    let id = u16::from_be_bytes([packet[4], packet[5]]);
    let frag = u16::from_be_bytes([packet[6], packet[7]]);
    let frag_offset = frag & 0x1fff;
    let proto = packet[9];
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    // Transport header only in the first fragment, and only what was copied.
    let l4 = if frag_offset == 0 {
        packet.get(hlen..).unwrap_or(&[])
    } else {
        &[]
    };
    let short = frag_offset == 0
        && min_transport(proto).is_some_and(|min| usize::from(total) < hlen + usize::from(min));
    let mut line = format!(
        "{iface} @{}:{} {}{} ",
        p.group,
        p.rule,
        if short { "S" } else { "" },
        if p.pass { 'p' } else { 'b' }
    );
    let name = proto_name(proto);
    match proto {
        6 | 17 if frag_offset == 0 && !short && l4.len() >= 4 => {
            let sp = u16::from_be_bytes([l4[0], l4[1]]);
            let dp = u16::from_be_bytes([l4[2], l4[3]]);
            line.push_str(&format!(
                "{src},{sp} -> {dst},{dp} PR {name} len {hlen} {total}"
            ));
            if proto == 6 {
                if let Some(&flags) = l4.get(13) {
                    line.push_str(" -");
                    for (c, bit) in IPMON_FLAGS {
                        if flags & bit != 0 {
                            line.push(c);
                        }
                    }
                }
            }
        }
        6 | 17 if frag_offset == 0 => {
            // Short, or cut before the ports by the copy range.
            line.push_str(&format!("{src} -> {dst} PR {name} len {hlen} {total}"));
        }
        1 if frag_offset == 0 => {
            line.push_str(&format!("{src} -> {dst} PR icmp len {hlen} {total}"));
            if l4.len() >= 2 {
                line.push_str(&format!(" icmp {}", icmp_name(l4[0], l4[1])));
                if matches!(l4[0], 3 | 4 | 5 | 11 | 12) {
                    line.push_str(&icmp_error_subject(l4.get(8..).unwrap_or(&[])));
                }
            }
        }
        _ => {
            line.push_str(&format!("{src} -> {dst} PR {name} len {hlen} ({total})"));
            if frag_offset != 0 {
                line.push_str(&format!(
                    " (frag {id}:{}@{}{}{})",
                    usize::from(total).saturating_sub(hlen),
                    u32::from(frag_offset) * 8,
                    if frag & 0x2000 != 0 { "+" } else { "" },
                    if frag & 0x4000 != 0 { "-" } else { "" },
                ));
            }
        }
    }
    if p.keep_state {
        line.push_str(" K-S");
    }
    if p.keep_frags {
        line.push_str(" K-F");
    }
    line.push_str(if p.inbound { " IN" } else { " OUT" });
    Ok(line)
}

/// ` for src[,sport] - dst[,dport] PR proto len HLEN TOTAL` of the packet an
/// ICMP error quotes (RFC 792: its IP header and first 8 octets), as ipmon
/// prints it; empty when too little of it was quoted.
fn icmp_error_subject(inner: &[u8]) -> String {
    if inner.len() < 20 || inner[0] >> 4 != 4 {
        return String::new();
    }
    let hlen = usize::from(inner[0] & 0x0f) * 4;
    let total = u16::from_be_bytes([inner[2], inner[3]]);
    let frag = u16::from_be_bytes([inner[6], inner[7]]);
    let proto = inner[9];
    let src = Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]);
    let dst = Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]);
    let l4 = inner.get(hlen..).unwrap_or(&[]);
    let name = proto_name(proto);
    match proto {
        6 | 17 if frag & 0x1fff == 0 && l4.len() >= 4 => format!(
            " for {src},{} - {dst},{} PR {name} len {hlen} {total}",
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]])
        ),
        1 if frag & 0x1fff == 0 && l4.len() >= 2 => format!(
            " for {src} - {dst} PR icmp len {hlen} {total} icmp {}/{}",
            l4[0], l4[1]
        ),
        _ => format!(" for {src} - {dst} PR {name} len {hlen} ({total})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4 + TCP header of seed 000 appendix B.3's first line: a 48-octet
    /// SYN (20 + 28 with options) 192.168.1.215:3936 -> 192.168.253.1:23.
    fn syn() -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 48, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 192, 168, 1, 215, 192, 168, 253, 1,
        ];
        p.extend_from_slice(&3936u16.to_be_bytes());
        p.extend_from_slice(&23u16.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x70, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        p.extend_from_slice(&[2, 4, 5, 0xb4, 1, 1, 4, 2]);
        p
    }

    #[test]
    fn seed_000_appendix_b_first_line() {
        let line = format_ipmon_line("tun0", "@300:2 p IN K-S K-F", &syn()).unwrap();
        assert_eq!(
            line,
            "tun0 @300:2 p 192.168.1.215,3936 -> 192.168.253.1,23 PR tcp len 20 48 -S K-S K-F IN"
        );
    }

    #[test]
    fn flags_in_ipmon_order() {
        let mut p = syn();
        p[33] = tcp_flag::SYN | tcp_flag::ACK;
        let line = format_ipmon_line("em0", "@300:2 p OUT K-S K-F", &p).unwrap();
        assert!(line.ends_with("-AS K-S K-F OUT"), "{line}");
        p[33] = tcp_flag::PSH | tcp_flag::ACK;
        let line = format_ipmon_line("em0", "@300:2 p OUT K-S K-F", &p).unwrap();
        assert!(line.ends_with("-AP K-S K-F OUT"), "{line}");
    }

    #[test]
    fn icmp_block_and_bad_inputs() {
        let p = [
            0x45, 0, 0, 84, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0,
        ];
        assert_eq!(
            format_ipmon_line("tun0", "@350:3 b OUT", &p).unwrap(),
            "tun0 @350:3 b 10.0.0.1 -> 10.0.0.2 PR icmp len 20 84 icmp echo/0 OUT"
        );
        assert!(matches!(
            format_ipmon_line("tun0", "@x:1 b IN", &p),
            Err(IpmonError::Prefix(_))
        ));
        assert!(matches!(
            format_ipmon_line("tun0", "@1:1 b IN", &p[..10]),
            Err(IpmonError::Truncated { .. })
        ));
        assert_eq!(
            format_ipmon_line("tun0", "@1:1 b IN", &[0x60; 40]),
            Err(IpmonError::NotIpv4(6))
        );
        // A TCP header cut after the ports: no flags, no panic.
        let line = format_ipmon_line("tun0", "@1:1 b IN", &syn()[..24]).unwrap();
        assert!(line.ends_with("PR tcp len 20 48 IN"), "{line}");
    }

    /// An IPv4 header (no options) for hand-made packets.
    fn ip(total: u16, id: u16, frag: u16, proto: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0, 192, 168, 1, 8, 192, 168, 253, 2]);
        p
    }

    #[test]
    fn short_packets_are_sb_without_ports() {
        // Ten octets of TCP header in a 30-octet packet.
        let mut p = ip(30, 0x5151, 0, 6);
        p.extend_from_slice(&[0x0f, 0x60, 0, 23, 0, 0, 0, 1, 0, 0]);
        assert_eq!(
            format_ipmon_line("tun0", "@0:2 b IN", &p).unwrap(),
            "tun0 @0:2 Sb 192.168.1.8 -> 192.168.253.2 PR tcp len 20 30 IN"
        );
        // Four octets of UDP header.
        let mut p = ip(24, 1, 0, 17);
        p.extend_from_slice(&[0x0f, 0xa0, 0, 53]);
        assert_eq!(
            format_ipmon_line("em0", "@0:2 p OUT", &p).unwrap(),
            "em0 @0:2 Sp 192.168.1.8 -> 192.168.253.2 PR udp len 20 24 OUT"
        );
    }

    #[test]
    fn fragments_show_id_length_offset_and_flags() {
        // A middle fragment: 1000 octets at offset 1480, more to come.
        let mut p = ip(1020, 21074, 0x2000 | (1480 / 8), 17);
        p.resize(1020, 0);
        assert_eq!(
            format_ipmon_line("tun0", "@0:1 b IN", &p).unwrap(),
            "tun0 @0:1 b 192.168.1.8 -> 192.168.253.2 PR udp len 20 (1020) (frag 21074:1000@1480+) IN"
        );
        // The last one, with DF set: no `+`, a `-`.
        let p = ip(36, 7, 0x4000 | 2, 6);
        assert_eq!(
            format_ipmon_line("tun0", "@0:1 b IN", &p).unwrap(),
            "tun0 @0:1 b 192.168.1.8 -> 192.168.253.2 PR tcp len 20 (36) (frag 7:16@16-) IN"
        );
        // The first fragment is a TCP/UDP line with its ports.
        let mut p = ip(36, 7, 0x2000, 17);
        p.extend_from_slice(&[0x0f, 0xa0, 0, 53, 0, 32, 0, 0]);
        assert_eq!(
            format_ipmon_line("tun0", "@0:1 b IN", &p).unwrap(),
            "tun0 @0:1 b 192.168.1.8,4000 -> 192.168.253.2,53 PR udp len 20 36 IN"
        );
        // Other protocols: total in parentheses, the name from /etc/protocols.
        let p = ip(60, 9, 0, 47);
        assert_eq!(
            format_ipmon_line("em0", "@300:11 b IN", &p).unwrap(),
            "em0 @300:11 b 192.168.1.8 -> 192.168.253.2 PR gre len 20 (60) IN"
        );
    }

    #[test]
    fn icmp_names_as_ipmon_prints_them() {
        assert_eq!(icmp_name(8, 0), "echo/0");
        assert_eq!(icmp_name(0, 0), "echoreply/0");
        assert_eq!(icmp_name(3, 3), "unreach/port");
        assert_eq!(icmp_name(3, 13), "unreach/admin_prohibit");
        assert_eq!(icmp_name(3, 10), "unreach/10");
        assert_eq!(icmp_name(11, 0), "timxceed/transit");
        assert_eq!(icmp_name(5, 1), "redirect/host");
        assert_eq!(icmp_name(42, 1), "icmptype(42)/1");
        // An unreachable about a UDP datagram names it.
        let mut p = ip(56, 3, 0, 1);
        p.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
        let mut inner = ip(40, 8, 0, 17);
        inner[12..16].copy_from_slice(&[192, 168, 253, 2]);
        inner[16..20].copy_from_slice(&[192, 168, 1, 8]);
        p.extend_from_slice(&inner);
        p.extend_from_slice(&[0, 53, 0x0f, 0xa0, 0, 20, 0, 0]);
        assert_eq!(
            format_ipmon_line("tun0", "@350:1 p OUT", &p).unwrap(),
            "tun0 @350:1 p 192.168.1.8 -> 192.168.253.2 PR icmp len 20 56 icmp unreach/port \
             for 192.168.253.2,53 - 192.168.1.8,4000 PR udp len 20 40 OUT"
        );
    }

    #[test]
    fn identical_consecutive_records_fold() {
        let a = "tun0 @0:1 b 192.168.1.8 -> 192.168.253.2 PR udp len 20 (36) (frag 7:16@16) IN";
        let b = "tun0 @300:11 b 192.168.1.215,3936 -> 192.168.253.1,8080 PR tcp len 20 60 -S IN";
        let folded = fold_identical(vec![a.into(), a.into(), a.into(), b.into(), a.into()]);
        assert_eq!(
            folded,
            vec![(3, a.to_string()), (1, b.to_string()), (1, a.to_string())]
        );
        assert_eq!(with_count(3, a), format!("3x {a}"));
        assert_eq!(with_count(1, b), b);
    }
}
