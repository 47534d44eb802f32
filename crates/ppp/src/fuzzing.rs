//! Entry points shared by the fuzz targets in `fuzz/` and the corpus replay
//! test (`tests/fuzz_corpus.rs`), so that every corpus file is also a plain
//! regression test.
//!
//! They panic when an invariant breaks; that is how a fuzzer notices.
//! Nothing here is meant for production use.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::hdlc::{Decoder, Encoder, FrameError};
use crate::link::{
    EchoConfig, FsmTimers, IpVersion, IpcpConfig, Ipv6cpConfig, LcpConfig, Link, LinkConfig,
};
use crate::stream::StreamLink;
use crate::wire::{ControlRepr, Protocol};

/// How one fuzz input is read: the first octet picks a configuration, the
/// rest is the byte stream from the peer.
///
/// Configuration octet:
/// - bit 0: receive ACCM 0 (set) or the default `0xffffffff` (clear);
/// - bits 1..=2: the decoder's `max_info`: 1500, 64, 4 or 0; for the
///   [`Link`], bit 1 enables IPV6CP and bit 2 selects MRU 296 with
///   `set escape 0xff` instead of MRU 1500;
/// - bits 3..=7: where the stream is cut into two reads, in 32nds of its
///   length (the decoder must not care).
#[derive(Debug, Clone, Copy)]
struct InputConfig {
    rx_accm: u32,
    max_info: usize,
    cut: usize,
}

impl InputConfig {
    fn parse(config: u8, stream_len: usize) -> InputConfig {
        InputConfig {
            rx_accm: if config & 1 != 0 { 0 } else { 0xffff_ffff },
            max_info: [1500, 64, 4, 0][usize::from((config >> 1) & 3)],
            cut: stream_len * usize::from(config >> 3) / 32,
        }
    }
}

/// Feeds a peer's byte stream to the HDLC decoder (in two reads) and checks
/// every frame it accepts:
/// - its information field respects `max_info` and its protocol field obeys
///   RFC 1661 section 2;
/// - re-encoded with the same ACFC/PFC under the full ACCM, it decodes to
///   the same protocol and information;
/// - the decoder's counters agree with what it reported;
/// - the packet parsers (control header, LCP/IPCP/IPV6CP options, the pppd
///   style log text) take any information field without panicking, and a
///   parsed control packet emits back to the same packet;
///
/// and then drives a whole [`Link`] with the same stream (see
/// [`link_input`]).
///
/// Input layout: see the configuration octet above.
pub fn ppp_input(data: &[u8]) {
    decoder_input(data);
    link_input(data);
}

/// The decoder and parser half of [`ppp_input`].
pub fn decoder_input(data: &[u8]) {
    let Some((&config, stream)) = data.split_first() else {
        return;
    };
    let config = InputConfig::parse(config, stream.len());
    let mut decoder = Decoder::new(config.max_info);
    decoder.set_rx_accm(config.rx_accm);
    let mut reported = 0u64;
    let mut good = 0u64;
    let (first, second) = stream.split_at(config.cut);
    for read in [first, second] {
        decoder.push(read, &mut |result| {
            reported += 1;
            match result {
                Ok(frame) => {
                    good += 1;
                    assert!(frame.info.len() <= config.max_info, "info over max_info");
                    assert!(
                        frame.protocol & 0x0100 == 0 && frame.protocol & 1 == 1,
                        "invalid protocol {:#06x} accepted",
                        frame.protocol
                    );
                    check_reencoding(
                        frame.protocol,
                        frame.info,
                        frame.address_control_omitted(),
                        frame.protocol_compressed(),
                        config.max_info,
                    );
                    check_parsers(frame.protocol, frame.info);
                }
                Err(error) => check_error(&error),
            }
        });
    }
    assert_eq!(decoder.stats().frames, good);
    assert_eq!(decoder.stats().errors, reported - good);
}

/// What we decoded, we can send back unchanged.
fn check_reencoding(protocol: u16, info: &[u8], acfc: bool, pfc: bool, max_info: usize) {
    let mut encoder = Encoder::new();
    encoder.set_acfc(acfc);
    encoder.set_pfc(pfc);
    let mut out = Vec::with_capacity(2 * info.len() + 16);
    encoder.encode(protocol, info, false, &mut out);
    let mut decoder = Decoder::new(max_info);
    let mut frames = 0;
    decoder.push(&out, &mut |result| {
        frames += 1;
        let frame = result.expect("a re-encoded frame decodes");
        assert_eq!(frame.protocol, protocol);
        assert_eq!(frame.info, info);
    });
    assert_eq!(frames, 1, "a re-encoded frame decodes to one frame");
}

/// Every error has a message that names what was wrong.
fn check_error(error: &FrameError) {
    let text = error.to_string();
    assert!(
        text.contains("frame") || text.contains("field"),
        "vague error: {text}"
    );
}

/// Runs H1's packet parsers over one information field.
fn check_parsers(protocol: u16, info: &[u8]) {
    // The log text parses everything it shows.
    let text = crate::display::describe(protocol, info).to_string();
    assert!(!text.is_empty());
    let Ok(repr) = ControlRepr::parse_bytes(info) else {
        return;
    };
    let mut emitted = Vec::with_capacity(repr.buffer_len());
    repr.emit(&mut emitted);
    assert_eq!(emitted.len(), repr.buffer_len());
    assert_eq!(ControlRepr::parse_bytes(&emitted).ok(), Some(repr));
    match Protocol::from(protocol) {
        Protocol::Lcp => drop(crate::lcp::parse_options(repr.data)),
        Protocol::Ipcp => drop(crate::ipcp::parse_options(repr.data)),
        Protocol::Ipv6cp => drop(crate::ipv6cp::parse_options(repr.data)),
        _ => {}
    }
}

/// The seed of the [`Link`] under test in [`link_input`]: its magic number
/// and identifiers are fixed, so a recorded peer stream can answer it.
pub const LINK_SEED: u64 = 0x7473_756e_6167_6921;

/// The fuzz targets' stand-in for the kernel's CSPRNG: a fixed sequence,
/// so that a crashing input replays exactly (challenges included). Never
/// for a live link: anything the peer may predict must come from
/// [`tsunagi_crypto::OsRandom`].
struct ReplayRandom(std::sync::Mutex<crate::rng::Rng>);

impl tsunagi_crypto::RandomSource for ReplayRandom {
    fn fill(&self, dest: &mut [u8]) {
        let mut rng = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for chunk in dest.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
        }
    }
}

/// A [`ReplayRandom`] handle starting from `seed` (fuzz targets, corpus
/// replay and the tests that regenerate the corpus seeds).
pub fn replay_random(seed: u64) -> tsunagi_crypto::Random {
    std::sync::Arc::new(ReplayRandom(std::sync::Mutex::new(crate::rng::Rng::new(
        seed,
    ))))
}

/// The fixed link configuration of the fuzz target for a configuration
/// octet (see [`ppp_input`]): our side offers addresses and DNS, keepalive
/// every second.
pub fn fuzz_link_config(config: u8) -> LinkConfig {
    let small = config & 4 != 0;
    LinkConfig {
        name: "fuzz".to_string(),
        lcp: LcpConfig {
            mru: if small { 296 } else { 1500 },
            escape: if small { vec![0xff] } else { Vec::new() },
            ident: Some("tsunagi fuzz".to_string()),
            echo: Some(EchoConfig {
                interval: Duration::from_secs(1),
                failures: 3,
            }),
            ..LcpConfig::default()
        },
        ipcp: IpcpConfig {
            local: Some(Ipv4Addr::new(10, 98, 0, 1)),
            remote: Some(Ipv4Addr::new(10, 98, 0, 2)),
            dns: [Some(Ipv4Addr::new(10, 98, 0, 53)), None],
            request_dns: false,
            remote_from_driver: false,
            refused_remote: Vec::new(),
        },
        ipv6cp: (config & 2 != 0).then_some(Ipv6cpConfig {
            local_id: Some([0x02, 0, 0, 0, 0, 0, 0, 0x01]),
        }),
        timers: FsmTimers::default(),
        ..LinkConfig::default()
    }
}

/// Checks what a [`Link`] sends: every frame decodes with a good FCS, and
/// every LCP/IPCP/IPV6CP frame is a well-formed control packet.
struct TransmitChecker {
    decoder: Decoder,
    out: Vec<u8>,
    frames: u64,
}

impl TransmitChecker {
    fn new() -> TransmitChecker {
        let mut decoder = Decoder::new(usize::from(u16::MAX));
        // ACCM 0 keeps raw control characters as data: it reads any ACCM
        // the link may be sending with.
        decoder.set_rx_accm(0);
        TransmitChecker {
            decoder,
            out: Vec::new(),
            frames: 0,
        }
    }

    fn drain(&mut self, link: &mut StreamLink) {
        self.out.clear();
        link.poll_transmit(&mut self.out);
        while link.poll_event().is_some() {}
        self.check_out();
    }

    fn check_out(&mut self) {
        let frames = &mut self.frames;
        self.decoder.push(&self.out, &mut |result| {
            let frame = result.expect("the link sends only good frames");
            *frames += 1;
            if matches!(
                Protocol::from(frame.protocol),
                Protocol::Lcp | Protocol::Ipcp | Protocol::Ipv6cp
            ) {
                ControlRepr::parse_bytes(frame.info)
                    .expect("the link sends well-formed control packets");
            }
        });
    }
}

/// Fires the timers due at `now` (bounded: a buggy deadline in the past
/// must not hang the fuzzer, so it fails instead).
fn fire_timers(link: &mut StreamLink, now: Instant, checker: &mut TransmitChecker) {
    for _ in 0..64 {
        match link.poll_timeout() {
            Some(deadline) if deadline <= now => {
                link.handle_timeout(now);
                checker.drain(link);
            }
            _ => return,
        }
    }
    panic!("timers still due after 64 rounds at the same instant");
}

/// Drives one [`Link`] (fixed configuration, see [`fuzz_link_config`]) with
/// the peer's stream: start, the stream in reads of at most 256 octets 100 ms
/// apart (cut first where the configuration octet says), timers, sending an
/// IPv4 and an IPv6 packet, an administrative close and the timers after
/// it, then lower-down. Whatever the peer sends, the link must not panic and
/// must send only good frames.
pub fn link_input(data: &[u8]) {
    let Some((&config, stream)) = data.split_first() else {
        return;
    };
    let input = InputConfig::parse(config, stream.len());
    let mut link = StreamLink::new(Link::new(
        fuzz_link_config(config),
        LINK_SEED,
        replay_random(LINK_SEED),
    ));
    let mut checker = TransmitChecker::new();
    let mut now = Instant::now();
    link.start(now);
    checker.drain(&mut link);

    let (first, second) = stream.split_at(input.cut);
    let mut delivered = 0usize;
    for read in first.chunks(256).chain(second.chunks(256)) {
        now += Duration::from_millis(100);
        fire_timers(&mut link, now, &mut checker);
        link.handle_input(now, read, &mut |_version, packet| {
            delivered += packet.len();
        });
        checker.drain(&mut link);
    }

    let ipv4 = [
        0x45u8, 0, 0, 20, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 98, 0, 1, 10, 98, 0, 2,
    ];
    for version in [IpVersion::V4, IpVersion::V6] {
        checker.out.clear();
        if link.encapsulate(version, &ipv4, &mut checker.out) {
            checker.check_out();
        }
    }

    // Run the clock: keepalives, retransmissions, the close handshake.
    for step in 0..40 {
        if step == 10 {
            link.close(now, "fuzz done");
            checker.drain(&mut link);
        }
        now = link.poll_timeout().map_or(now, |d| d.max(now)) + Duration::from_millis(1);
        fire_timers(&mut link, now, &mut checker);
    }
    link.lower_down(now);
    checker.drain(&mut link);
    let _ = (delivered, link.stats(), link.status(), link.phase());
}

/// The secrets and credentials of [`auth_ccp_input`]: the fuzz peer is
/// "alice" with "wonderland", our name is "vpn".
pub fn fuzz_auth_config(method: crate::auth::AuthMethod) -> crate::auth::AuthConfig {
    use std::sync::Arc;
    let secrets = crate::secrets::ChapSecrets::parse("alice * wonderland 10.98.0.2\n")
        .expect("fixed secrets parse");
    crate::auth::AuthConfig {
        require: vec![method],
        accept: vec![method],
        name: "vpn".into(),
        user: Some("alice".into()),
        password: Some(tsunagi_crypto::Secret::from("wonderland")),
        secrets: Some(crate::auth::SecretsHandle(Arc::new(secrets))),
        rechallenge: Some(Duration::from_secs(5)),
        ..crate::auth::AuthConfig::default()
    }
}

/// Every packet an auth engine sends parses, prints, and a failure
/// reason never carries the secret.
fn check_auth_output(out: &mut crate::auth::AuthOutput) {
    for (protocol, packet) in out.packets.drain(..) {
        let p = crate::auth::AuthPacket::parse(&packet).expect("we send well-formed auth packets");
        assert!(p.data.len() + 4 == packet.len());
        let text = crate::display::describe(protocol.into(), &packet).to_string();
        assert!(!text.contains("wonderland"), "secret in log text: {text}");
    }
}

fn check_outcome(outcome: &crate::auth::AuthOutcome) {
    if let crate::auth::AuthOutcome::Failure { reason, .. } = outcome {
        assert!(!reason.contains("wonderland"), "secret in failure reason");
    }
}

/// Drives the authentication and CCP engines directly with peer input, so
/// the fuzzer reaches them without first completing an LCP negotiation,
/// then a whole [`Link`] configured with authentication and CCP (see
/// [`auth_link_config`]) with the same bytes as a stream.
///
/// Input layout: a configuration octet, then records `[selector, length,
/// bytes...]`. Configuration: bits 0..=1 the method (PAP, CHAP-MD5,
/// MS-CHAPv2, MS-CHAPv2), bit 2 our MPPE keys are the server's, bit 3
/// 40-bit instead of 128-bit MPPE, bit 4 stateful MPPE. Selector modulo 6:
/// 0 to our authenticator, 1 to our peer side, 2 an MPPE datagram, 3 a
/// Deflate datagram (an incompressible packet instead when the selector's
/// top bit is set), 4 a CCP control packet, 5 the clock jumps 4 s and
/// timers fire.
pub fn auth_ccp_input(data: &[u8]) {
    use crate::auth::{AuthMethod, AuthOutput, AuthPeer, Authenticator};
    use crate::ccp::{CcpConfig, CcpNegotiator, DeflateConfig, DeflateRx, MppeConfig, MppeRx};
    use crate::fsm::{Fsm, Output};
    use tsunagi_crypto::mppe::{KeyStrength, StartKeys};

    let Some((&config, mut rest)) = data.split_first() else {
        return;
    };
    let method = [
        AuthMethod::Pap,
        AuthMethod::ChapMd5,
        AuthMethod::MsChapV2,
        AuthMethod::MsChapV2,
    ][usize::from(config & 3)];
    let protocol = if method == AuthMethod::Pap {
        Protocol::Pap
    } else {
        Protocol::Chap
    };
    let mut now = Instant::now();
    let mut out = AuthOutput::default();
    let mut authenticator = Authenticator::start(
        method,
        fuzz_auth_config(method),
        replay_random(1),
        now,
        &mut out,
    );
    let mut peer = AuthPeer::start(
        method,
        fuzz_auth_config(method),
        replay_random(2),
        now,
        &mut out,
    );
    check_auth_output(&mut out);
    let keys = StartKeys::from_mschapv2(&[1; 16], &[2; 24], config & 4 != 0);
    let strength = if config & 8 != 0 {
        KeyStrength::Bits40
    } else {
        KeyStrength::Bits128
    };
    let stateful = config & 16 != 0;
    let mut mppe = MppeRx::new(&keys, strength, !stateful);
    let mut deflate = DeflateRx::new();
    let mut ccp = Fsm::new(
        CcpNegotiator::new(CcpConfig {
            deflate: Some(DeflateConfig::default()),
            mppe: Some(MppeConfig {
                bits40: true,
                bits128: true,
                stateful,
                required: true,
            }),
        }),
        FsmTimers::default(),
    );
    ccp.negotiator.set_mppe_available(config & 4 != 0);
    let mut fsm_out = Output::default();
    ccp.open(now, &mut fsm_out);
    ccp.up(now, &mut fsm_out);
    while let [selector, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        now += Duration::from_millis(100);
        match selector % 6 {
            0 => authenticator.handle_packet(now, protocol, bytes, &mut out),
            1 => peer.handle_packet(now, protocol, bytes, &mut out),
            2 => {
                if let Ok((_, packet)) = mppe.decrypt(bytes) {
                    assert!(packet.len() + 4 <= bytes.len());
                }
            }
            3 if selector & 0x80 != 0 => deflate.incompressible(0x21, bytes),
            3 => {
                if let Ok((_, packet)) = deflate.decompress(bytes) {
                    assert!(packet.len() <= 65_537);
                }
            }
            4 => {
                let _ = crate::display::describe(Protocol::Ccp.into(), bytes).to_string();
                if let Ok(repr) = ControlRepr::parse_bytes(bytes) {
                    let _ = ccp.receive(now, repr, bytes, &mut fsm_out);
                }
            }
            _ => {
                now += Duration::from_secs(4);
                authenticator.handle_timeout(now, &mut out);
                peer.handle_timeout(now, &mut out);
                ccp.handle_timeout(now, &mut fsm_out);
                // Fired timers are re-armed in the future or not at all.
                assert!(authenticator.deadline().is_none_or(|d| d > now));
                assert!(peer.deadline().is_none_or(|d| d > now));
            }
        }
        check_auth_output(&mut out);
        check_outcome(authenticator.outcome());
        check_outcome(peer.outcome());
        for packet in fsm_out.packets.drain(..) {
            ControlRepr::parse_bytes(&packet).expect("CCP sends well-formed packets");
        }
    }
    let _ = format!("{authenticator:?} {peer:?} {mppe:?} {deflate:?}");

    // The same bytes as a stream into a Link with auth and CCP on.
    let mut link = StreamLink::new(Link::new(
        auth_link_config(config),
        LINK_SEED,
        replay_random(LINK_SEED),
    ));
    let mut checker = TransmitChecker::new();
    let mut now = Instant::now();
    link.start(now);
    checker.drain(&mut link);
    for read in data[1..].chunks(256) {
        now += Duration::from_millis(100);
        fire_timers(&mut link, now, &mut checker);
        link.handle_input(now, read, &mut |_, _| {});
        checker.drain(&mut link);
        while link.poll_auth_event().is_some() {}
    }
    for _ in 0..20 {
        now = link.poll_timeout().map_or(now, |d| d.max(now)) + Duration::from_millis(1);
        fire_timers(&mut link, now, &mut checker);
    }
    link.lower_down(now);
    checker.drain(&mut link);
}

/// The link of [`auth_ccp_input`]: requires the configured method from
/// the peer and can authenticate itself with it, CCP with Deflate and
/// MPPE.
pub fn auth_link_config(config: u8) -> LinkConfig {
    use crate::auth::AuthMethod;
    let method = [
        AuthMethod::Pap,
        AuthMethod::ChapMd5,
        AuthMethod::MsChapV2,
        AuthMethod::MsChapV2,
    ][usize::from(config & 3)];
    LinkConfig {
        auth: fuzz_auth_config(method),
        ccp: crate::ccp::CcpConfig {
            deflate: Some(crate::ccp::DeflateConfig::default()),
            mppe: (config & 4 != 0).then_some(crate::ccp::MppeConfig {
                required: false,
                stateful: config & 16 != 0,
                bits40: config & 8 != 0,
                bits128: true,
            }),
        },
        ..fuzz_link_config(config & 0b110)
    }
}

/// The address the driver of [`frames_input`] hands out.
pub const FRAMES_PEER_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 2);

/// The server-side link of [`frames_input`], on packet framing (PPTP,
/// L2TP): configuration octet bit 0 requires CHAP-MD5 from the peer (else
/// no authentication), bit 1 enables IPV6CP, bit 3 Deflate; the peer's
/// address always comes from the driver.
pub fn frames_link_config(config: u8) -> LinkConfig {
    let mut c = fuzz_link_config(config & 0b10);
    c.lcp.framing = crate::lcp::Framing::Packet;
    c.ipcp.remote = None;
    c.ipcp.remote_from_driver = true;
    if config & 1 != 0 {
        c.auth = crate::auth::AuthConfig {
            rechallenge: None,
            ..fuzz_auth_config(crate::auth::AuthMethod::ChapMd5)
        };
    }
    if config & 8 != 0 {
        c.ccp = crate::ccp::CcpConfig {
            deflate: Some(crate::ccp::DeflateConfig::default()),
            mppe: None,
        };
    }
    c
}

/// Splits the rest of a [`frames_input`] input into frames: each a
/// big-endian 16-bit length, then that many octets (a short last one is
/// cut).
pub fn split_frames(mut rest: &[u8]) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        frames.push(&tail[..len]);
        rest = &tail[len..];
    }
    frames
}

/// Drains what a packet-framing [`Link`] sends and reports, acting as its
/// driver: every frame must parse; the peer's address is asked for only
/// once authentication (when required) passed, and IPCP opens only with
/// the address the driver gave (or never, when it refused).
struct FramesDriver {
    require_auth: bool,
    refuse: bool,
    supplied: bool,
    authenticated: bool,
    /// IPCP opened at least once.
    ipv4_up: bool,
    /// The peer authenticated at least once.
    ever_authenticated: bool,
}

/// How far a [`frames_input`] input took the link (for the seed tests:
/// a seed must reach deep states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FramesReached {
    /// The peer authenticated.
    pub authenticated: bool,
    /// IPCP opened with the driver's address.
    pub ipv4_up: bool,
}

impl FramesDriver {
    fn drain(&mut self, link: &mut Link, now: Instant) {
        let mut frame = Vec::new();
        while link.poll_transmit(&mut frame).is_some() {
            crate::frame::parse(&frame, usize::from(u16::MAX))
                .expect("the link sends only frames that parse");
            frame.clear();
        }
        while let Some(e) = link.poll_auth_event() {
            if matches!(e, crate::link::AuthEvent::Authenticated { .. }) {
                self.authenticated = true;
                self.ever_authenticated = true;
            }
        }
        while let Some(event) = link.poll_event() {
            match event {
                crate::link::Event::PeerAddressNeeded { user, .. } => {
                    if self.require_auth {
                        assert!(self.authenticated, "address asked before authentication");
                        assert!(user.is_some(), "no user after authentication");
                    }
                    if self.refuse {
                        link.refuse_peer_address(now, "pool exhausted");
                    } else {
                        self.supplied = true;
                        link.set_peer_address(now, FRAMES_PEER_ADDRESS);
                    }
                }
                crate::link::Event::Ipv4Up { peer, .. } => {
                    assert!(self.supplied && !self.refuse, "IPCP up without an address");
                    assert_eq!(peer, FRAMES_PEER_ADDRESS, "IPCP up with another address");
                    self.ipv4_up = true;
                }
                crate::link::Event::Down(_) => {
                    // A new LCP session asks again.
                    self.supplied = false;
                    self.authenticated = false;
                }
                _ => {}
            }
        }
        let mut frame = Vec::new();
        while link.poll_transmit(&mut frame).is_some() {
            crate::frame::parse(&frame, usize::from(u16::MAX))
                .expect("the link sends only frames that parse");
            frame.clear();
        }
    }
}

/// Frames from a packet transport's peer (PPTP's GRE, L2TP data): the
/// first octet picks a configuration ([`frames_link_config`]; bit 2: the
/// driver refuses the address), the rest is frames ([`split_frames`]). They
/// drive a server-side [`Link`] on packet framing 50 ms apart, with its
/// timers, an IPv4 packet offered after each frame, then an administrative
/// close, the timers after it, and lower-down. Whatever arrives, the link
/// must not panic, must send only frames that parse, and the address rules
/// of [`FramesDriver`] must hold. Returns how far the input got.
pub fn frames_input(data: &[u8]) -> FramesReached {
    let Some((&config, rest)) = data.split_first() else {
        return FramesReached::default();
    };
    let mut link = Link::new(
        frames_link_config(config),
        LINK_SEED,
        replay_random(LINK_SEED),
    );
    let mut driver = FramesDriver {
        require_auth: config & 1 != 0,
        refuse: config & 4 != 0,
        supplied: false,
        authenticated: false,
        ipv4_up: false,
        ever_authenticated: false,
    };
    let ipv4 = [
        0x45u8, 0, 0, 20, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 98, 0, 1, 10, 98, 0, 2,
    ];
    let mut now = Instant::now();
    link.start(now);
    driver.drain(&mut link, now);
    let fire = |link: &mut Link, driver: &mut FramesDriver, now: Instant| {
        for _ in 0..64 {
            match link.poll_timeout() {
                Some(deadline) if deadline <= now => {
                    link.handle_timeout(now);
                    driver.drain(link, now);
                }
                _ => return,
            }
        }
        panic!("timers still due after 64 rounds at the same instant");
    };
    for frame in split_frames(rest) {
        now += Duration::from_millis(50);
        fire(&mut link, &mut driver, now);
        link.handle_frame(now, frame, &mut |_, packet| {
            assert!(packet.len() <= usize::from(u16::MAX));
        });
        driver.drain(&mut link, now);
        let mut out = vec![0u8; 16];
        if link.encapsulate(IpVersion::V4, &ipv4, &mut out) {
            crate::frame::parse(&out[16..], usize::from(u16::MAX))
                .expect("an encapsulated packet is a frame");
        }
    }
    link.close(now, "fuzz done");
    driver.drain(&mut link, now);
    for _ in 0..20 {
        now = link.poll_timeout().map_or(now, |d| d.max(now)) + Duration::from_millis(1);
        fire(&mut link, &mut driver, now);
    }
    link.lower_down(now);
    driver.drain(&mut link, now);
    let _ = (link.stats(), link.status(), link.phase());
    FramesReached {
        authenticated: driver.ever_authenticated,
        ipv4_up: driver.ipv4_up,
    }
}
