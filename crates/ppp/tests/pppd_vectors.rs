//! Real pppd 2.4.9 byte streams (../../../shared/vectors/pppd-2.4.9):
//! our parser must print every LCP/IPCP/IPV6CP packet as pppd logged it,
//! and a Link configured like side B, fed side A's frames, must answer as
//! pppd B did and come up with the addresses pppd logged.

mod util;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tsunagi_ppp::hdlc::Encoder;
use tsunagi_ppp::ipcp;
use tsunagi_ppp::ipv6cp::{self, Ipv6cpOption};
use tsunagi_ppp::lcp::{self, LcpOption};
use tsunagi_ppp::wire::{Code, ControlRepr, OptionIter};
use tsunagi_ppp::{describe, Event, IpVersion, Ipv6cpConfig, Link, LinkConfig, Phase};
use util::{frames, pppd_log_packets, read_stream, vectors_dir};

const CONTROL: [u16; 3] = [0xc021, 0x8021, 0x8057];

fn scenarios() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(vectors_dir())
        .expect("vectors dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| vectors_dir().join(n).join("stream-a-to-b.hex").exists())
        .collect();
    names.sort();
    assert!(
        names.len() >= 9,
        "expected the 9 pppd scenarios, found {names:?}"
    );
    names
}

#[test]
fn every_control_packet_prints_as_pppd_logged_it() {
    let mut checked = 0;
    for scenario in scenarios() {
        for (stream, log) in [
            ("stream-a-to-b.hex", "pppd-a.log"),
            ("stream-b-to-a.hex", "pppd-b.log"),
        ] {
            let ours: Vec<String> = frames(&read_stream(&scenario, stream))
                .iter()
                .filter(|(p, _)| CONTROL.contains(p))
                .map(|(p, info)| describe(*p, info).to_string())
                .collect();
            let logged: Vec<String> = pppd_log_packets(&scenario, log, "sent ")
                .into_iter()
                .filter(|l| {
                    l.starts_with("LCP ") || l.starts_with("IPCP ") || l.starts_with("IPV6CP ")
                })
                .collect();
            // pppd logs only the first Echo-Request/Reply; every other
            // packet appears in its log, in order.
            let mut rest = ours.iter();
            for line in &logged {
                assert!(
                    rest.any(|o| o == line),
                    "{scenario}/{stream}: pppd logged `{line}`, not found (in order) in ours: {ours:#?}"
                );
            }
            for line in &ours {
                assert!(
                    logged.contains(line)
                        || line.starts_with("LCP EchoReq")
                        || line.starts_with("LCP EchoRep"),
                    "{scenario}/{stream}: `{line}` not in {log}"
                );
            }
            // And every Configure-* option list parses with the typed parsers.
            for (p, info) in frames(&read_stream(&scenario, stream)) {
                if !CONTROL.contains(&p) {
                    continue;
                }
                let packet = ControlRepr::parse_bytes(&info).expect("pppd packet parses");
                if matches!(u8::from(packet.code), 1..=4) {
                    match p {
                        0xc021 => drop(lcp::parse_options(packet.data).expect("LCP options")),
                        0x8021 => drop(ipcp::parse_options(packet.data).expect("IPCP options")),
                        _ => drop(ipv6cp::parse_options(packet.data).expect("IPV6CP options")),
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} control packets checked");
}

/// The first Configure-Request of `protocol` in a stream, as options.
fn first_request(frames: &[(u16, Vec<u8>)], protocol: u16) -> Option<Vec<u8>> {
    frames.iter().find_map(|(p, info)| {
        let packet = ControlRepr::parse_bytes(info).ok()?;
        (*p == protocol && packet.code == Code::ConfigureRequest).then(|| packet.data.to_vec())
    })
}

/// Removes IPCP option 2 (VJ): pppd A acked and asked for VJ because pppd B
/// asked for it; we never ask for it and reject it, so the pppd A that
/// talks to us sends the same packets without it. Returns None if there
/// was no VJ option.
fn without_vj(info: &[u8], new_id: Option<u8>) -> Option<Vec<u8>> {
    let packet = ControlRepr::parse_bytes(info).ok()?;
    let mut options = Vec::new();
    let mut had_vj = false;
    for option in OptionIter::new("IPCP", packet.data) {
        let option = option.ok()?;
        if option.kind == 2 {
            had_vj = true;
        } else {
            option.emit(&mut options);
        }
    }
    had_vj.then(|| {
        let mut out = Vec::new();
        ControlRepr {
            code: packet.code,
            identifier: new_id.unwrap_or(packet.identifier),
            data: &options,
        }
        .emit(&mut out);
        out
    })
}

struct Replay {
    link: tsunagi_ppp::stream::StreamLink,
    now: Instant,
    sent: Vec<(u16, Vec<u8>)>,
    events: Vec<Event>,
    delivered: Vec<(IpVersion, Vec<u8>)>,
}

impl Replay {
    fn feed(&mut self, bytes: &[u8]) {
        let mut delivered = Vec::new();
        self.link
            .handle_input(self.now, bytes, &mut |v, p| delivered.push((v, p.to_vec())));
        self.delivered.extend(delivered);
        self.collect();
    }

    fn collect(&mut self) {
        let mut out = Vec::new();
        self.link.poll_transmit(&mut out);
        self.sent.extend(frames(&out));
        while let Some(e) = self.link.poll_event() {
            self.events.push(e);
        }
    }

    fn sent_text(&self) -> Vec<String> {
        self.sent
            .iter()
            .map(|(p, i)| describe(*p, i).to_string())
            .collect()
    }
}

/// Splits a raw stream into frames with their original bytes (flags
/// added back), so unmodified frames are fed exactly as pppd wrote them.
fn raw_frames(stream: &[u8]) -> Vec<Vec<u8>> {
    stream
        .split(|&b| b == 0x7e)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut f = vec![0x7e];
            f.extend_from_slice(s);
            f.push(0x7e);
            f
        })
        .collect()
}

/// Runs side A's frames of `scenario` into a Link configured like B.
fn replay_as_b(scenario: &str, config: LinkConfig) -> (Replay, Vec<(u16, Vec<u8>)>) {
    let a_stream = read_stream(scenario, "stream-a-to-b.hex");
    let b_frames = frames(&read_stream(scenario, "stream-b-to-a.hex"));
    let b_lcp = first_request(&b_frames, 0xc021).expect("B's LCP ConfReq");
    let magic = lcp::parse_options(&b_lcp)
        .unwrap()
        .into_iter()
        .find_map(|o| {
            if let LcpOption::MagicNumber(m) = o {
                Some(m)
            } else {
                None
            }
        })
        .expect("B's magic");
    let mut link = tsunagi_ppp::stream::StreamLink::new(Link::new(
        config,
        1,
        tsunagi_crypto::OsRandom::handle(),
    ));
    link.pin_magic(magic);
    let now = Instant::now();
    link.start(now);
    let mut r = Replay {
        link,
        now,
        sent: Vec::new(),
        events: Vec::new(),
        delivered: Vec::new(),
    };
    r.collect();
    let plain = Encoder::new();
    for raw in raw_frames(&a_stream) {
        let (protocol, info) = frames(&raw).pop().expect("one frame");
        let is_ipcp_conf = protocol == 0x8021
            && ControlRepr::parse_bytes(&info)
                .is_ok_and(|p| matches!(p.code, Code::ConfigureRequest | Code::ConfigureAck));
        match is_ipcp_conf.then(|| without_vj(&info, None)).flatten() {
            Some(stripped)
                if ControlRepr::parse_bytes(&info).unwrap().code == Code::ConfigureRequest =>
            {
                // The original first (we must reject VJ politely), then what
                // pppd sends after that reject.
                r.feed(&raw);
                let id = ControlRepr::parse_bytes(&info)
                    .unwrap()
                    .identifier
                    .wrapping_add(0x10);
                let again = without_vj(&info, Some(id)).unwrap();
                let mut bytes = Vec::new();
                plain.encode(protocol, &again, false, &mut bytes);
                r.feed(&bytes);
                let _ = stripped;
            }
            Some(stripped) => {
                let mut bytes = Vec::new();
                plain.encode(protocol, &stripped, false, &mut bytes);
                r.feed(&bytes);
            }
            None => r.feed(&raw),
        }
    }
    (r, b_frames)
}

fn b_config(local: Option<[u8; 4]>, remote: Option<[u8; 4]>) -> LinkConfig {
    let mut c = LinkConfig {
        name: "b".into(),
        ..LinkConfig::default()
    };
    c.lcp.echo = None;
    c.ipcp.local = local.map(Ipv4Addr::from);
    c.ipcp.remote = remote.map(Ipv4Addr::from);
    c
}

/// LCP answers (ConfAck, EchoRep, TermAck) are byte for byte pppd B's.
fn assert_lcp_answers_match(r: &Replay, b_frames: &[(u16, Vec<u8>)]) {
    let answers = |frames: &[(u16, Vec<u8>)]| -> Vec<Vec<u8>> {
        frames
            .iter()
            .filter(|(p, i)| *p == 0xc021 && matches!(i[0], 2 | 6 | 10))
            .map(|(_, i)| i.clone())
            .collect()
    };
    let ours = answers(&r.sent);
    let theirs = answers(b_frames);
    assert!(!ours.is_empty());
    assert_eq!(
        ours.iter()
            .map(|i| describe(0xc021, i).to_string())
            .collect::<Vec<_>>(),
        theirs
            .iter()
            .map(|i| describe(0xc021, i).to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(ours, theirs);
    // Our first LCP ConfReq is pppd B's, byte for byte (same option order).
    assert_eq!(
        first_request(&r.sent, 0xc021),
        first_request(b_frames, 0xc021)
    );
}

#[test]
fn replay_02_asyncmap0_mtu1410() {
    let scenario = "02-asyncmap0-mtu1410-noccp-noipv6";
    let mut config = b_config(Some([10, 98, 0, 2]), Some([10, 98, 0, 1]));
    config.lcp.mru = 1410;
    let (mut r, b_frames) = replay_as_b(scenario, config);
    assert_lcp_answers_match(&r, &b_frames);
    let text = r.sent_text();
    assert!(
        text.contains(&"IPCP ConfRej id=0x1 <compress VJ 0f 01>".to_string()),
        "{text:#?}"
    );
    assert!(
        text.contains(&"IPCP ConfAck id=0x11 <addr 10.98.0.1>".to_string()),
        "{text:#?}"
    );
    assert!(r.events.contains(&Event::Ipv4Up {
        local: [10, 98, 0, 2].into(),
        peer: [10, 98, 0, 1].into(),
        dns: [None, None],
    }));
    // The ping from A (84 bytes ICMP) came through.
    assert_eq!(r.delivered.len(), 1);
    assert_eq!(r.delivered[0].0, IpVersion::V4);
    assert_eq!(r.delivered[0].1.len(), 84);
    let status = r.link.status();
    assert_eq!((status.mru, status.peer_mru), (1410, 1410));
    // A's TermReq: TermAck sent (checked above), then down after the
    // restart period.
    assert_eq!(r.link.phase(), Phase::Terminate);
    r.now += Duration::from_secs(3);
    let now = r.now;
    r.link.handle_timeout(now);
    r.collect();
    assert!(r
        .events
        .contains(&Event::Down(tsunagi_ppp::DownReason::PeerTerminated(
            "User request".into()
        ))));
    assert_eq!(r.link.stats().rx_bad_fcs, 0);
    assert_eq!(r.link.stats().rx_malformed, 0);
}

#[test]
fn replay_03_ipcp_nak_with_address_and_dns() {
    let scenario = "03-ipcp-noipdefault-dns";
    let b_frames = frames(&read_stream(scenario, "stream-b-to-a.hex"));
    let b_id = first_request(&b_frames, 0x8057)
        .and_then(|o| match ipv6cp::parse_options(&o).ok()?.first()? {
            Ipv6cpOption::InterfaceId(id) => Some(*id),
            _ => None,
        })
        .expect("B's interface id");
    let mut config = b_config(None, None);
    config.ipcp.request_dns = true;
    config.ipv6cp = Some(Ipv6cpConfig {
        local_id: Some(b_id),
    });
    let (r, b_frames) = replay_as_b(scenario, config);
    assert_lcp_answers_match(&r, &b_frames);
    let text = r.sent_text();
    assert!(
        text.contains(
            &"IPCP ConfReq id=0x1 <addr 0.0.0.0> <ms-dns1 0.0.0.0> <ms-dns2 0.0.0.0>".to_string()
        ),
        "{text:#?}"
    );
    assert!(
        text.contains(
            &"IPCP ConfReq id=0x2 <addr 10.98.0.2> <ms-dns1 10.98.0.53> <ms-dns2 10.98.0.53>"
                .to_string()
        ),
        "{text:#?}"
    );
    // pppd B logged: local 10.98.0.2, remote 10.98.0.1, DNS 10.98.0.53 twice.
    assert!(r.events.contains(&Event::Ipv4Up {
        local: [10, 98, 0, 2].into(),
        peer: [10, 98, 0, 1].into(),
        dns: [Some([10, 98, 0, 53].into()), Some([10, 98, 0, 53].into())],
    }));
    // IPV6CP: our request is B's, A's Ack matches it.
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::Ipv6Up { local_id, .. } if *local_id == b_id)));
    assert_eq!(
        first_request(&r.sent, 0x8057),
        first_request(&b_frames, 0x8057)
    );
    // CCP (ConfReq, ConfAck) and the Deflate-compressed data (0xfd) are
    // answered with Protocol-Reject.
    let prot_rejs: Vec<u16> = r
        .sent
        .iter()
        .filter(|(p, i)| *p == 0xc021 && i[0] == 8)
        .map(|(_, i)| u16::from_be_bytes([i[4], i[5]]))
        .collect();
    assert!(
        prot_rejs.contains(&0x80fd) && prot_rejs.contains(&0x00fd),
        "{prot_rejs:x?}"
    );
    assert_eq!(r.link.stats().tx_protocol_rejects, prot_rejs.len() as u64);
}

#[test]
fn replay_01_defaults_with_echoes_ccp_and_ipv6cp() {
    let scenario = "01-defaults";
    let b_frames = frames(&read_stream(scenario, "stream-b-to-a.hex"));
    let b_id = first_request(&b_frames, 0x8057)
        .and_then(|o| match ipv6cp::parse_options(&o).ok()?.first()? {
            Ipv6cpOption::InterfaceId(id) => Some(*id),
            _ => None,
        })
        .expect("B's interface id");
    let mut config = b_config(Some([10, 98, 0, 2]), Some([10, 98, 0, 1]));
    config.ipv6cp = Some(Ipv6cpConfig {
        local_id: Some(b_id),
    });
    let (r, b_frames) = replay_as_b(scenario, config);
    // ConfAck, five EchoReps and the TermAck, each as pppd B sent them.
    assert_lcp_answers_match(&r, &b_frames);
    let echo_replies = r
        .sent
        .iter()
        .filter(|(p, i)| *p == 0xc021 && i[0] == 10)
        .count();
    assert_eq!(echo_replies, 5);
    assert!(r.events.iter().any(|e| matches!(e, Event::Ipv4Up { .. })));
    assert!(r
        .events
        .iter()
        .any(|e| matches!(e, Event::Ipv6Up { peer_id, .. } if peer_id[0] == 0x64)));
    assert!(r.link.stats().tx_protocol_rejects >= 3);
    assert_eq!(r.link.stats().rx_bad_control, 0);
}

/// Our link as pppd B (`noauth user alice password ...`): it acks A's
/// Authentication-Protocol, authenticates with frames identical to B's,
/// and then either comes up or leaves with B's Terminate text.
#[test]
fn replay_04_05_authenticating_to_pppd() {
    use tsunagi_crypto::Secret;
    use tsunagi_ppp::auth::{AuthConfig, AuthMethod};
    for (scenario, method, password, ok, auth_protocol) in [
        ("04-pap", AuthMethod::Pap, "wonderland", true, 0xc023),
        (
            "04-pap-wrong-password",
            AuthMethod::Pap,
            "wrongpass",
            false,
            0xc023,
        ),
        (
            "05-chap-md5",
            AuthMethod::ChapMd5,
            "wonderland",
            true,
            0xc223,
        ),
        (
            "05-chap-md5-wrong-password",
            AuthMethod::ChapMd5,
            "wrongpass",
            false,
            0xc223,
        ),
    ] {
        let mut config = b_config(Some([10, 98, 0, 2]), Some([10, 98, 0, 1]));
        config.auth = AuthConfig {
            user: Some("alice".into()),
            password: Some(Secret::from(password)),
            accept: vec![method],
            ..AuthConfig::default()
        };
        let (r, b_frames) = replay_as_b(scenario, config);
        // The ConfAck of A's request with <auth ...> is B's.
        let ack = |frames: &[(u16, Vec<u8>)]| {
            frames
                .iter()
                .find(|(p, i)| *p == 0xc021 && i[0] == 2)
                .map(|f| f.1.clone())
        };
        assert_eq!(ack(&r.sent), ack(&b_frames), "{scenario}: LCP ConfAck");
        let auth = |frames: &[(u16, Vec<u8>)]| -> Vec<Vec<u8>> {
            frames
                .iter()
                .filter(|(p, _)| *p == auth_protocol)
                .map(|f| f.1.clone())
                .collect()
        };
        assert_eq!(auth(&r.sent), auth(&b_frames), "{scenario}: auth frames");
        let up = r.events.iter().any(|e| matches!(e, Event::Ipv4Up { .. }));
        assert_eq!(up, ok, "{scenario}: {:?}", r.sent_text());
        if !ok {
            let term = |frames: &[(u16, Vec<u8>)]| {
                frames
                    .iter()
                    .find(|(p, i)| *p == 0xc021 && i[0] == 5)
                    .map(|f| f.1[4..].to_vec())
            };
            assert_eq!(
                term(&r.sent),
                Some(b"Failed to authenticate ourselves to peer".to_vec()),
                "{scenario}"
            );
            assert_eq!(term(&r.sent), term(&b_frames), "{scenario}: TermReq text");
        }
    }
}
