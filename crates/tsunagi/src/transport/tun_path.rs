//! The tun side of a site link's datagram client (the PPTP and L2TP
//! clients): what PPP delivers is coalesced into GSO writes, what the tun
//! gives is cut to the peer's MRU, and the tun's MTU follows LCP. What
//! carries the frames (GRE, L2TP over UDP) stays with each client.
//!
//! In offload mode the kernel hands over TCP super-packets of up to 64 KiB
//! in one read; they are cut here with [`segment_tcp`] so that every frame
//! fits the peer's MRU, and segments from the peer are merged by a
//! [`Coalescer`] so that a run of them costs one write.

use std::io;

use tracing::{debug, warn};
use tsunagi_host::gro::Coalescer;
use tsunagi_host::offload::{segment_tcp, tcp_layout, Received};
use tsunagi_host::Tun;
use tsunagi_ppp::link::{Event, IpVersion, Link, Phase};

use crate::capture::{Direction, Tap};
use crate::config::LinkSettings;
use crate::netconf::{Change, SessionNetconf};
use crate::session::{phase_name, EndReason, SessionInfo};
use crate::transport::site::{ncp_event, SiteSession};

/// Tun packets framed per wake-up.
pub const TUN_BATCH: usize = 64;

/// A datagram client's tun, with what its data path keeps between
/// packets.
pub struct TunPath {
    tun: Tun,
    /// Segments from the peer, coalesced while they come in a run.
    coalescer: Coalescer,
    /// Where super-packets from the tun are cut.
    segments: Vec<u8>,
    /// The peer's MRU while LCP is open.
    max_send: usize,
    /// The MTU set on the tun while LCP is open.
    mtu: Option<u32>,
    /// The profile's capture point.
    tap: Tap,
}

impl TunPath {
    /// The path over `tun`; its packets pass `tap` both ways.
    pub fn new(tun: Tun, tap: Tap) -> TunPath {
        TunPath {
            tun,
            tap,
            coalescer: Coalescer::new(),
            segments: Vec::new(),
            max_send: usize::from(tsunagi_ppp::lcp::DEFAULT_MRU),
            mtu: None,
        }
    }

    pub fn tun(&self) -> &Tun {
        &self.tun
    }

    /// One packet PPP delivered, to the tun (perhaps later, merged with
    /// the segments that follow it: see [`TunPath::flush`]).
    pub fn deliver(&mut self, packet: &[u8], tun_errors: &mut u64) {
        self.tap.packet(Direction::In, packet);
        let tun = &self.tun;
        self.coalescer.push(packet, &mut |p| {
            if tun.try_send(p).is_err() {
                *tun_errors += 1;
            }
        });
    }

    /// Writes the segments coalesced so far to the tun; called once a
    /// batch of datagrams from the peer is done.
    pub fn flush(&mut self, tun_errors: &mut u64) {
        let tun = &self.tun;
        self.coalescer.flush(&mut |p| {
            if tun.try_send(p).is_err() {
                *tun_errors += 1;
            }
        });
    }

    /// One packet read from the tun (at the start of `tbuf`), to `frame`
    /// with its IP version: whole, or a TCP super-packet larger than the
    /// peer's MRU cut into segments that fit it. What cannot be framed is
    /// counted in `tun_errors`.
    pub fn cut(
        &mut self,
        got: Received,
        tbuf: &[u8],
        tun_errors: &mut u64,
        mut frame: impl FnMut(IpVersion, &[u8]),
    ) {
        let packet = &tbuf[..got.len.min(tbuf.len())];
        let version = match packet.first().map(|b| b >> 4) {
            Some(4) => IpVersion::V4,
            Some(6) => IpVersion::V6,
            _ => {
                *tun_errors += 1;
                return;
            }
        };
        let tap = &self.tap;
        let mut frame = |segment: &[u8]| {
            tap.packet(Direction::Out, segment);
            frame(version, segment)
        };
        match got.gso {
            Some(gso) if packet.len() > self.max_send => {
                let room = tcp_layout(packet)
                    .map(|l| self.max_send.saturating_sub(l.headers()))
                    .unwrap_or(0);
                let payload = usize::from(gso).min(room);
                if payload == 0
                    || segment_tcp(packet, payload, &mut self.segments, &mut frame).is_err()
                {
                    *tun_errors += 1;
                }
            }
            _ => frame(packet),
        }
    }

    /// PPP events other than the link going down: the tun's MTU, and
    /// addresses, routes and hooks through netconf.
    pub fn link_event(
        &mut self,
        event: Event,
        link: Option<&Link>,
        settings: &LinkSettings,
        info: &mut SessionInfo,
        netconf: &SessionNetconf,
    ) {
        let name = &settings.name;
        let mtu = match &event {
            Event::Phase(p) => {
                debug!("{name}: phase {}", phase_name(*p));
                if !matches!(p, Phase::Authenticate | Phase::Network) {
                    self.mtu = None;
                }
                return;
            }
            Event::Ipv4Up { .. } | Event::Ipv6Up { .. } => {
                let peer_mru = link.map_or(1500, |l| l.status().peer_mru);
                self.up(settings, peer_mru, netconf)
            }
            _ => self.mtu.unwrap_or(0),
        };
        let session = SiteSession {
            name,
            usepeerdns: settings.usepeerdns,
            info,
            netconf,
        };
        ncp_event(event, session, mtu);
    }

    /// The tun's MTU once an NCP opens: the configured one, else the
    /// smaller of the two MRUs.
    fn up(&mut self, settings: &LinkSettings, peer_mru: u16, netconf: &SessionNetconf) -> u32 {
        if let Some(mtu) = self.mtu {
            return mtu;
        }
        let mtu = settings.mtu.unwrap_or(settings.mru.min(peer_mru));
        self.max_send = usize::from(peer_mru);
        if self.tun.is_offload() {
            // Super-packets are cut to segments of the tun's MTU.
            self.tun.set_gso_mtu(usize::from(mtu));
            if let Err(e) = self.tun.set_tso(true) {
                warn!("{}: {}: {e}", settings.name, self.tun.name());
            }
        }
        let mtu = u32::from(mtu);
        netconf.send(Change::LinkUp { mtu });
        self.mtu = Some(mtu);
        mtu
    }
}

/// What a failed tun read means: a packet cut, or with an offload header
/// we cannot complete, is lost like a drop (counted in `tun_errors`);
/// anything else is the tun failing, and why the link ends.
pub fn read_failed(name: &str, e: &io::Error, tun_errors: &mut u64) -> Option<EndReason> {
    if e.kind() == io::ErrorKind::InvalidData {
        debug!("{name}: tun read: {e}");
        *tun_errors += 1;
        return None;
    }
    warn!("{name}: tun read: {e}");
    Some(EndReason::TunFailed(format!("read: {e}")))
}
