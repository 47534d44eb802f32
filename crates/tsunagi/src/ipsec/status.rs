//! `tsunagi status` for IPsec: the views of IKE and IPsec SAs sent over
//! the control socket, and their text the way strongSwan's `ipsec
//! statusall` prints it (seed 002 quotes it):
//!
//! ```text
//! Security Associations (1 up, 0 connecting):
//!         site[1]: ESTABLISHED 12 seconds ago, 10.201.1.1[10.201.1.1]...10.201.1.2[10.201.1.2]
//!         site[1]: IKEv1 SPIs: 0123456789abcdef_i* fedcba9876543210_r, rekeying in 2 hours
//!         site[1]: IKE proposal: AES_CBC_128/HMAC_SHA2_256/MODP_2048
//!         site{1}:  INSTALLED, TUNNEL, ESP in UDP SPIs: c1a2b3c4_i c5d6e7f8_o
//!         site{1}:  AES_GCM_16_128, 840 bytes_i (10 pkts, 3s ago), 840 bytes_o (10 pkts), rekeying in 50 minutes
//!         site{1}:   10.201.10.0/24 === 10.201.20.0/24
//! ```

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Instant;

use tsunagi_ipsec::ike::{Identity, IkeSaStatus, TrafficSelector};
use tsunagi_ipsec::isakmp::proposal::{Algorithms, Encryption, Integrity};

use serde::Serialize;

use crate::control::{ChildSaView, IkeSaView, IpsecConnStatus, SessionStatus};

/// One L2TP/IPsec client (or a LAC link's own connection) as `tsunagi
/// status` shows it: every layer of it side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct L2tpIpsecClient {
    /// The `[server]` or `[link]` whose L2TP it is.
    pub profile: String,
    /// The conn under it.
    pub conn: String,
    /// The peer's outer address and port (IKE and ESP).
    pub peer: String,
    /// The address and port L2TP knows the peer by, when answering
    /// `%any` (another port than its own when a client of the same NAT
    /// has that one).
    pub seen_as: Option<String>,
    /// Its IKE SA.
    pub ike: Option<IkeSaView>,
    /// Its IPsec SA (the newest).
    pub child: Option<ChildSaView>,
    /// Its PPP session, with the L2TP tunnel and session under it.
    pub session: Option<SessionStatus>,
}

/// The L2TP/IPsec clients in a `status` answer: per peer of a conn under
/// an L2TP profile, its IKE SA, newest IPsec SA and the PPP session L2TP
/// knows it by.
pub fn l2tp_clients(sessions: &[SessionStatus], conns: &[IpsecConnStatus]) -> Vec<L2tpIpsecClient> {
    let mut clients = Vec::new();
    for c in conns {
        let Some(profile) = &c.l2tp_profile else {
            continue;
        };
        let mut peers: Vec<&ChildSaView> = Vec::new();
        for child in c.child_sas.iter().filter(|ch| ch.state == "INSTALLED") {
            match peers.iter_mut().find(|p| p.remote == child.remote) {
                Some(p) if p.id < child.id => *p = child,
                Some(_) => {}
                None => peers.push(child),
            }
        }
        for child in peers {
            let session = sessions.iter().find(|s| {
                &s.profile == profile
                    && child
                        .seen_as
                        .as_ref()
                        .is_none_or(|seen| &s.outer_peer == seen)
            });
            clients.push(L2tpIpsecClient {
                profile: profile.clone(),
                conn: c.name.clone(),
                peer: child.remote.clone(),
                seen_as: child.seen_as.clone(),
                ike: c.ike_sas.iter().find(|i| i.id == child.ike).cloned(),
                child: Some(child.clone()),
                session: session.cloned(),
            });
        }
    }
    clients
}

/// [`l2tp_clients`] as text, a block per client.
pub fn l2tp_clients_text(clients: &[L2tpIpsecClient]) -> String {
    let mut out = format!("L2TP/IPsec clients ({}):\n", clients.len());
    for c in clients {
        let _ = writeln!(
            out,
            "  {} via {}: {}{}",
            c.profile,
            c.conn,
            c.peer,
            c.seen_as
                .as_ref()
                .map(|s| format!(" (L2TP sees {s})"))
                .unwrap_or_default()
        );
        if let Some(i) = &c.ike {
            let _ = writeln!(
                out,
                "    IKE [{}] {} {} ago, {}",
                i.id,
                i.state,
                ago(i.age_secs),
                i.proposal.as_deref().unwrap_or("-")
            );
        }
        if let Some(ch) = &c.child {
            let _ = writeln!(
                out,
                "    IPsec {{{}}} {}{} SPIs {}_i {}_o, {} bytes_i ({} pkts), {} bytes_o ({} pkts)",
                ch.id,
                ch.proposal,
                if ch.udp_encap { ", ESP in UDP" } else { "" },
                ch.spi_in,
                ch.spi_out,
                ch.bytes_in,
                ch.packets_in,
                ch.bytes_out,
                ch.packets_out
            );
        }
        match &c.session {
            Some(s) => {
                let _ = writeln!(out, "    {}", s.tunnel.as_deref().unwrap_or("l2tp: -"));
                let _ = writeln!(
                    out,
                    "    PPP session {} user {} {} {} <-> {}, {} bytes in ({} pkts), {} bytes out ({} pkts)",
                    s.id,
                    s.user.as_deref().unwrap_or("-"),
                    s.phase,
                    s.local.as_deref().unwrap_or("-"),
                    s.peer_addr.as_deref().unwrap_or("-"),
                    s.counters.rx_bytes,
                    s.counters.rx_packets,
                    s.counters.tx_bytes,
                    s.counters.tx_packets
                );
            }
            None => {
                let _ = writeln!(out, "    no L2TP session yet");
            }
        }
    }
    out
}

/// An identity as ipsec.conf writes it.
pub fn identity(id: &Identity) -> String {
    match id {
        Identity::Address(a) => a.to_string(),
        Identity::Fqdn(f) => f.clone(),
        Identity::UserFqdn(u) => u.clone(),
    }
}

/// A selector as strongSwan prints it (`10.0.0.0/24`, `10.0.0.1/32[udp/1701]`).
pub fn selector(ts: &TrafficSelector) -> String {
    let mut s = format!("{}/{}", ts.addr, ts.prefix);
    if ts.protocol != 0 || ts.port != 0 {
        let proto = match ts.protocol {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            1 => "icmp".to_string(),
            p => p.to_string(),
        };
        if ts.port != 0 {
            let _ = write!(s, "[{proto}/{}]", ts.port);
        } else {
            let _ = write!(s, "[{proto}]");
        }
    }
    s
}

/// Algorithms with strongSwan's names: `AES_CBC_128/HMAC_SHA2_256_128/MODP_2048`
/// (`esp`: integrity as ESP truncates it; IKE: the hash).
pub fn proposal(a: &Algorithms, esp: bool) -> String {
    let mut parts = vec![match a.encryption {
        Encryption::TripleDes => "3DES_CBC".to_string(),
        Encryption::AesCbc(bits) => format!("AES_CBC_{bits}"),
        Encryption::AesGcm(bits, icv) => format!("AES_GCM_{icv}_{bits}"),
    }];
    if let Some(i) = a.integrity {
        parts.push(
            match (i, esp) {
                (Integrity::Md5, true) => "HMAC_MD5_96",
                (Integrity::Md5, false) => "HMAC_MD5",
                (Integrity::Sha1, true) => "HMAC_SHA1_96",
                (Integrity::Sha1, false) => "HMAC_SHA1",
                (Integrity::Sha256, true) => "HMAC_SHA2_256_128",
                (Integrity::Sha256, false) => "HMAC_SHA2_256",
                (Integrity::Sha384, true) => "HMAC_SHA2_384_192",
                (Integrity::Sha384, false) => "HMAC_SHA2_384",
                (Integrity::Sha512, true) => "HMAC_SHA2_512_256",
                (Integrity::Sha512, false) => "HMAC_SHA2_512",
            }
            .to_string(),
        );
    }
    if let Some(g) = a.group {
        parts.push(g.name().unwrap_or("UNKNOWN_GROUP").to_string());
    }
    parts.join("/")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What `status` shows of an IKE SA.
pub fn ike_view(s: &IkeSaStatus, now: Instant) -> IkeSaView {
    IkeSaView {
        id: s.id.0,
        state: s.state.to_string(),
        age_secs: now.saturating_duration_since(s.since).as_secs(),
        local: s.local.to_string(),
        remote: s.remote.to_string(),
        remote_id: s.remote_id.as_ref().map(identity),
        initiator: s.initiator,
        cookies: format!("{}_i {}_r", hex(&s.cookies.0), hex(&s.cookies.1)),
        proposal: s.algorithms.as_ref().map(|a| proposal(a, false)),
        rekey_in_secs: s
            .rekey_at
            .map(|t| t.saturating_duration_since(now).as_secs()),
    }
}

/// "12 seconds", "5 minutes", "2 hours", "3 days": strongSwan's way.
pub fn ago(secs: u64) -> String {
    let (n, unit) = match secs {
        0..=119 => (secs, "second"),
        120..=7199 => (secs / 60, "minute"),
        7200..=172_799 => (secs / 3600, "hour"),
        _ => (secs / 86400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The `ipsec statusall`-like text of `conns`.
pub fn statusall(conns: &[IpsecConnStatus]) -> String {
    let mut out = String::from("Connections:\n");
    for c in conns {
        let _ = writeln!(
            out,
            "{:>12}:  {}...{}  IKEv1, auto={}",
            c.name, c.left, c.right, c.auto
        );
        let _ = writeln!(
            out,
            "{:>12}:   local:  [{}] uses pre-shared key authentication",
            c.name, c.leftid
        );
        let _ = writeln!(
            out,
            "{:>12}:   remote: [{}] uses pre-shared key authentication",
            c.name, c.rightid
        );
        let _ = writeln!(
            out,
            "{:>12}:   child:  {} {}, ike={} esp={}{}",
            c.name,
            c.subnets,
            c.mode,
            c.ike,
            c.esp,
            c.tun
                .as_ref()
                .map(|t| format!(", tun {t}"))
                .unwrap_or_default()
        );
    }
    let up = conns
        .iter()
        .flat_map(|c| &c.ike_sas)
        .filter(|s| s.state == "ESTABLISHED")
        .count();
    let all = conns.iter().map(|c| c.ike_sas.len()).sum::<usize>();
    let _ = writeln!(
        out,
        "Security Associations ({up} up, {} connecting):",
        all - up
    );
    if all == 0 && conns.iter().all(|c| c.child_sas.is_empty()) {
        out.push_str("  none\n");
    }
    for c in conns {
        let n = &c.name;
        for s in &c.ike_sas {
            let tag = format!("{n}[{}]", s.id);
            let remote_id = s.remote_id.clone().unwrap_or_else(|| "%any".into());
            let _ = writeln!(
                out,
                "{tag:>16}: {} {} ago, {}[{}]...{}[{}]",
                s.state,
                ago(s.age_secs),
                s.local,
                c.leftid,
                s.remote,
                remote_id
            );
            let (i, r) = s.cookies.split_once(' ').unwrap_or((&s.cookies, ""));
            let (i, r) = if s.initiator {
                (format!("{i}*"), r.to_string())
            } else {
                (i.to_string(), format!("{r}*"))
            };
            let rekey = s
                .rekey_in_secs
                .map(|t| format!(", pre-shared key reauthentication in {}", ago(t)))
                .unwrap_or_default();
            let _ = writeln!(out, "{tag:>16}: IKEv1 SPIs: {i} {r}{rekey}");
            if let Some(p) = &s.proposal {
                let _ = writeln!(out, "{tag:>16}: IKE proposal: {p}");
            }
        }
        for ch in &c.child_sas {
            let tag = format!("{n}{{{}}}", ch.id);
            let _ = writeln!(
                out,
                "{tag:>16}:  {}, {}, {}SPIs: {}_i {}_o, {}...{}",
                ch.state,
                c.mode,
                if ch.udp_encap { "ESP in UDP " } else { "ESP " },
                ch.spi_in,
                ch.spi_out,
                ch.local,
                ch.remote
            );
            let last = ch
                .last_in_secs
                .map(|s| format!(", {s}s ago"))
                .unwrap_or_default();
            let rekey = ch
                .rekey_in_secs
                .map(|t| format!(", rekeying in {}", ago(t)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{tag:>16}:  {}, {} bytes_i ({} pkts{last}), {} bytes_o ({} pkts){rekey}",
                ch.proposal, ch.bytes_in, ch.packets_in, ch.bytes_out, ch.packets_out
            );
            let _ = writeln!(out, "{tag:>16}:   {} === {}", ch.local_ts, ch.remote_ts);
        }
        if !c.counters.is_empty() {
            let counts: Vec<String> = c.counters.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = writeln!(out, "{:>16}: dropped/counted: {}", n, counts.join(", "));
        }
    }
    out
}

/// `right` as status shows it.
pub fn peer(right: Option<IpAddr>) -> String {
    right.map_or_else(|| "%any".to_string(), |r| r.to_string())
}

/// A child SA view's SPI text.
pub fn spi(spi: u32) -> String {
    format!("{spi:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ChildSaView;
    use tsunagi_ipsec::isakmp::attr::Group;

    #[test]
    fn proposals_have_strongswans_names() {
        let a = Algorithms {
            encryption: Encryption::TripleDes,
            integrity: Some(Integrity::Sha1),
            group: Some(Group::Modp1024),
        };
        assert_eq!(proposal(&a, false), "3DES_CBC/HMAC_SHA1/MODP_1024");
        let g = Algorithms {
            encryption: Encryption::AesGcm(128, 16),
            integrity: None,
            group: None,
        };
        assert_eq!(proposal(&g, true), "AES_GCM_16_128");
        assert_eq!(ago(12), "12 seconds");
        assert_eq!(ago(60 * 50), "50 minutes");
        assert_eq!(ago(3 * 3600), "3 hours");
        assert_eq!(ago(86400 * 3), "3 days");
    }

    #[test]
    fn statusall_shows_sas_spis_bytes_and_rekey() {
        let conn = IpsecConnStatus {
            name: "site".into(),
            left: "10.201.1.1".into(),
            right: "10.201.1.2".into(),
            leftid: "left".into(),
            rightid: "right".into(),
            ike: "aes128-sha256-modp2048!".into(),
            esp: "aes128gcm16!".into(),
            mode: "TUNNEL".into(),
            auto: "start".into(),
            subnets: "10.201.10.0/24 === 10.201.20.0/24".into(),
            tun: Some("ipsec-site".into()),
            ike_sas: vec![IkeSaView {
                id: 1,
                state: "ESTABLISHED".into(),
                age_secs: 12,
                local: "10.201.1.1:500".into(),
                remote: "10.201.1.2:500".into(),
                remote_id: Some("right".into()),
                initiator: true,
                cookies: "0123456789abcdef_i fedcba9876543210_r".into(),
                proposal: Some("AES_CBC_128/HMAC_SHA2_256/MODP_2048".into()),
                rekey_in_secs: Some(7200),
            }],
            child_sas: vec![ChildSaView {
                id: 1,
                ike: 1,
                state: "INSTALLED".into(),
                age_secs: 10,
                local: "10.201.1.1:4500".into(),
                remote: "10.201.1.2:4500".into(),
                udp_encap: true,
                proposal: "AES_GCM_16_128".into(),
                spi_in: spi(0xc1a2b3c4),
                spi_out: spi(0xc5d6e7f8),
                bytes_in: 840,
                packets_in: 10,
                bytes_out: 420,
                packets_out: 5,
                last_in_secs: Some(3),
                rekey_in_secs: Some(3000),
                local_ts: "10.201.10.0/24".into(),
                remote_ts: "10.201.20.0/24".into(),
                seen_as: None,
            }],
            counters: [("replayed".to_string(), 2)].into(),
            l2tp_profile: None,
        };
        let text = statusall(&[conn]);
        assert!(
            text.contains("Security Associations (1 up, 0 connecting):"),
            "{text}"
        );
        assert!(
            text.contains(
                "site[1]: ESTABLISHED 12 seconds ago, 10.201.1.1:500[left]...10.201.1.2:500[right]"
            ),
            "{text}"
        );
        assert!(text.contains("IKEv1 SPIs: 0123456789abcdef_i* fedcba9876543210_r, pre-shared key reauthentication in 2 hours"), "{text}");
        assert!(
            text.contains("site{1}:  INSTALLED, TUNNEL, ESP in UDP SPIs: c1a2b3c4_i c5d6e7f8_o"),
            "{text}"
        );
        assert!(text.contains("AES_GCM_16_128, 840 bytes_i (10 pkts, 3s ago), 420 bytes_o (5 pkts), rekeying in 50 minutes"), "{text}");
        assert!(text.contains("10.201.10.0/24 === 10.201.20.0/24"), "{text}");
        assert!(text.contains("replayed 2"), "{text}");
    }

    /// Two clients of one NAT on an LNS's conn: each block joins its own
    /// IKE SA, newest IPsec SA and the PPP session L2TP knows it by.
    #[test]
    fn l2tp_clients_join_each_peers_sas_and_session() {
        let child = |id: u64, ike: u64, remote: &str, seen: &str, state: &str| ChildSaView {
            id,
            ike,
            state: state.into(),
            remote: remote.into(),
            seen_as: Some(seen.into()),
            ..ChildSaView::default()
        };
        let ike = |id: u64, remote: &str| IkeSaView {
            id,
            state: "ESTABLISHED".into(),
            remote: remote.into(),
            ..IkeSaView::default()
        };
        let conn = IpsecConnStatus {
            name: "l2tp".into(),
            l2tp_profile: Some("lns".into()),
            ike_sas: vec![ike(1, "198.51.100.7:4500"), ike(2, "198.51.100.7:1024")],
            child_sas: vec![
                child(1, 1, "198.51.100.7:4500", "198.51.100.7:1701", "REKEYED"),
                child(3, 1, "198.51.100.7:4500", "198.51.100.7:1701", "INSTALLED"),
                child(2, 2, "198.51.100.7:1024", "198.51.100.7:49152", "INSTALLED"),
            ],
            ..IpsecConnStatus::default()
        };
        let session = |id: u64, outer: &str, inner: &str| SessionStatus {
            id,
            profile: "lns".into(),
            outer_peer: outer.into(),
            peer_addr: Some(inner.into()),
            ..SessionStatus::default()
        };
        let sessions = [
            session(7, "198.51.100.7:49152", "10.99.0.11"),
            session(6, "198.51.100.7:1701", "10.99.0.10"),
        ];
        let clients = l2tp_clients(&sessions, &[conn, IpsecConnStatus::default()]);
        assert_eq!(clients.len(), 2, "{clients:?}");
        let first = &clients[0];
        assert_eq!(
            (
                first.child.as_ref().map(|c| c.id),
                first.ike.as_ref().map(|i| i.id)
            ),
            (Some(3), Some(1)),
            "the newest installed SA"
        );
        assert_eq!(first.session.as_ref().map(|s| s.id), Some(6));
        let second = &clients[1];
        assert_eq!(second.seen_as.as_deref(), Some("198.51.100.7:49152"));
        assert_eq!(second.session.as_ref().map(|s| s.id), Some(7));
        let text = l2tp_clients_text(&clients);
        assert!(text.starts_with("L2TP/IPsec clients (2):"), "{text}");
        assert!(
            text.contains("lns via l2tp: 198.51.100.7:1024 (L2TP sees 198.51.100.7:49152)"),
            "{text}"
        );
        assert!(text.contains("<-> 10.99.0.11"), "{text}");
    }
}
