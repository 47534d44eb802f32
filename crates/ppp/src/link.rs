//! One PPP link: LCP, the NCPs and the data path over async HDLC framing.
//!
//! Calling order (as in quinn-proto): after every `handle_*` or `encapsulate`
//! call, drain `poll_transmit` (bytes for the byte stream, e.g. ssh's stdin),
//! `poll_event` until `None`, and re-arm the timer from `poll_timeout`.
//! When the timer fires call `handle_timeout(now)`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Which network protocol a datagram carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// PPP protocol 0x0021.
    V4,
    /// PPP protocol 0x0057.
    V6,
}

/// RFC 1661 section 3.2 link phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Link Dead.
    Dead,
    /// Link Establishment (LCP negotiating).
    Establish,
    /// Authentication (not yet implemented; passed through).
    Authenticate,
    /// Network-Layer Protocol (NCPs negotiating or open).
    Network,
    /// Link Termination.
    Terminate,
}

/// RFC 1661 restart timer and counters (section 4.6).
#[derive(Debug, Clone)]
pub struct FsmTimers {
    /// Restart timer, default 3 s.
    pub restart: Duration,
    /// Max-Configure, default 10.
    pub max_configure: u32,
    /// Max-Terminate, default 2.
    pub max_terminate: u32,
    /// Max-Failure, default 5.
    pub max_failure: u32,
}

/// LCP settings for our side.
#[derive(Debug, Clone)]
pub struct LcpConfig {
    /// MRU we announce (default 1500; not sent when 1500).
    pub mru: u16,
    /// ACCM we ask the peer to use towards us (default 0).
    pub accm: u32,
    /// Extra bytes we always escape when sending (user-ppp `set escape 0xff`).
    pub escape: Vec<u8>,
    /// Ask for / accept Protocol-Field-Compression.
    pub pfc: bool,
    /// Ask for / accept Address-and-Control-Field-Compression.
    pub acfc: bool,
    /// Identification text (RFC 1570) sent once LCP is opened.
    pub ident: Option<String>,
    /// Keepalive: send Echo-Request every `interval`, link down after
    /// `failures` unanswered ones. `None` disables.
    pub echo: Option<EchoConfig>,
}

/// LCP Echo keepalive (pppd lcp-echo-interval / lcp-echo-failure).
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Interval between Echo-Requests.
    pub interval: Duration,
    /// Unanswered Echo-Requests before the link is declared dead.
    pub failures: u32,
}

/// IPCP settings (RFC 1332, RFC 1877).
#[derive(Debug, Clone, Default)]
pub struct IpcpConfig {
    /// Our address; `None` asks the peer (0.0.0.0 in our Configure-Request).
    pub local: Option<Ipv4Addr>,
    /// The address we give the peer when it asks (Nak with this address);
    /// if set, a different address requested by the peer is Nak'd to this one.
    pub remote: Option<Ipv4Addr>,
    /// DNS servers we hand out when the peer asks (primary, secondary).
    pub dns: [Option<Ipv4Addr>; 2],
    /// Ask the peer for DNS servers (pppd `usepeerdns`).
    pub request_dns: bool,
}

/// IPV6CP settings (RFC 5072).
#[derive(Debug, Clone, Default)]
pub struct Ipv6cpConfig {
    /// Our interface identifier; `None` picks a random one.
    pub local_id: Option<[u8; 8]>,
}

/// Everything a link needs to know.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Name used in every log line of this link (e.g. "labs").
    pub name: String,
    /// LCP settings.
    pub lcp: LcpConfig,
    /// IPCP settings.
    pub ipcp: IpcpConfig,
    /// IPV6CP settings; `None` disables IPV6CP (user-ppp `disable ipv6cp`):
    /// a peer's IPV6CP is then answered with Protocol-Reject.
    pub ipv6cp: Option<Ipv6cpConfig>,
    /// RFC 1661 timers and counters.
    pub timers: FsmTimers,
}

/// What the link tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The phase changed.
    Phase(Phase),
    /// IPCP reached Opened: addresses agreed (`myaddr`/`hisaddr`).
    Ipv4Up {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address.
        peer: Ipv4Addr,
        /// DNS servers the peer gave us.
        dns: [Option<Ipv4Addr>; 2],
    },
    /// IPCP left Opened.
    Ipv4Down,
    /// IPV6CP reached Opened.
    Ipv6Up {
        /// Our interface identifier.
        local_id: [u8; 8],
        /// The peer's interface identifier.
        peer_id: [u8; 8],
    },
    /// IPV6CP left Opened.
    Ipv6Down,
    /// The peer identified itself (RFC 1570).
    PeerIdent(String),
    /// The link is finished (LCP reached Initial/Closed/Stopped for good);
    /// the driver should close the byte stream and may redial.
    Down(DownReason),
}

/// Why a link went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// The peer sent Terminate-Request (with its text).
    PeerTerminated(String),
    /// `failures` Echo-Requests went unanswered.
    EchoTimeout,
    /// The peer's Magic-Number kept equal to ours (RFC 1661 section 6.4).
    LoopbackDetected,
    /// Max-Configure or Max-Failure reached for the named protocol.
    NegotiationFailed(&'static str),
    /// `close()` was called and Terminate completed or timed out.
    AdminClose,
    /// The byte stream ended (`lower_down()`).
    LowerDown,
}

/// Counters for `tsunagi status` and for bad input.
#[derive(Debug, Clone, Default)]
pub struct LinkStats {
    /// IP packets delivered to the driver.
    pub rx_packets: u64,
    /// Bytes of those IP packets.
    pub rx_bytes: u64,
    /// IP packets encapsulated.
    pub tx_packets: u64,
    /// Bytes of those IP packets.
    pub tx_bytes: u64,
    /// Frames dropped for a bad FCS.
    pub rx_bad_fcs: u64,
    /// Frames dropped as too short, too long, or otherwise malformed.
    pub rx_malformed: u64,
    /// Frames for protocols we do not speak (answered with Protocol-Reject).
    pub rx_unknown_protocol: u64,
    /// Control packets that failed to parse (bad length, bad option).
    pub rx_bad_control: u64,
}

/// One PPP link engine.
pub struct Link {
    _private: (),
}

impl Link {
    /// A new link in the Dead phase. `seed` seeds magic numbers and
    /// interface identifiers (pass real randomness in production).
    pub fn new(config: LinkConfig, seed: u64) -> Link {
        let _ = (config, seed);
        todo!("H1")
    }

    /// The byte stream is connected: LCP Up + Open (RFC 1661 events Up, Open).
    pub fn start(&mut self, now: Instant) {
        let _ = now;
        todo!("H1")
    }

    /// Administrative Close: send Terminate-Request with `reason`.
    pub fn close(&mut self, now: Instant, reason: &str) {
        let _ = (now, reason);
        todo!("H1")
    }

    /// The byte stream ended (RFC 1661 event Down).
    pub fn lower_down(&mut self, now: Instant) {
        let _ = now;
        todo!("H1")
    }

    /// Bytes read from the stream. IP datagrams found are passed to `deliver`
    /// (no allocation per packet); control frames are processed.
    pub fn handle_input(
        &mut self,
        now: Instant,
        stream: &[u8],
        deliver: &mut dyn FnMut(IpVersion, &[u8]),
    ) {
        let _ = (now, stream, deliver);
        todo!("H1")
    }

    /// Frame one IP datagram for the stream, appended to `out`. Returns
    /// false (and counts nothing) when that NCP is not open.
    pub fn encapsulate(&mut self, version: IpVersion, packet: &[u8], out: &mut Vec<u8>) -> bool {
        let _ = (version, packet, out);
        todo!("H1")
    }

    /// Append pending control frames (already HDLC-framed) to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        let _ = out;
        todo!("H1")
    }

    /// Timers expired.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!("H1")
    }

    /// The next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        todo!("H1")
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!("H1")
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        todo!("H1")
    }

    /// Counters.
    pub fn stats(&self) -> &LinkStats {
        todo!("H1")
    }
}
