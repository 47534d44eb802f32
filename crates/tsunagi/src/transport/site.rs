//! What a site link's session does with its engine's NCP events, whatever
//! carries PPP under it (the SSH stream, a PPTP call): addresses, routes
//! and hooks go to its netconf worker, `status` learns what is up; the
//! tun it creates for that; and the commands a running PPTP or L2TP
//! client answers alike.

use std::io;

use tokio::sync::oneshot;
use tracing::{info, warn};
use tsunagi_host::Tun;
use tsunagi_ppp::link::Event;

use crate::config::LinkSettings;
use crate::control::{Response, SessionStatus};
use crate::netconf::{Change, SessionNetconf, IPV6_MIN_MTU};
use crate::registry::Command;
use crate::session::{Ipv4Pair, SessionId, SessionInfo};

/// The link's tun: in offload mode when configured (TCP super-packets from
/// the kernel, one read for up to 64 KiB, and GSO writes), falling back to
/// a plain tun with a warning when the kernel refuses offload.
pub fn create_tun(settings: &LinkSettings) -> io::Result<Tun> {
    if !settings.tun_offload {
        return Tun::create(&settings.tun);
    }
    Tun::create_offload(&settings.tun).or_else(|e| {
        warn!(
            "{}: tun {} in offload mode: {e}; without offload",
            settings.name, settings.tun
        );
        Tun::create(&settings.tun)
    })
}

/// A site link's session, as its NCP events need it.
pub struct SiteSession<'a> {
    /// How log lines name it.
    pub name: &'a str,
    /// `usepeerdns`: log the DNS servers the peer gave.
    pub usepeerdns: bool,
    /// What `status` shows.
    pub info: &'a mut SessionInfo,
    /// Its netconf worker.
    pub netconf: &'a SessionNetconf,
}

/// Acts on an IPCP or IPV6CP event (others are ignored). `mtu` is the
/// tun's MTU, which the caller set up when an NCP opened.
pub fn ncp_event(event: Event, s: SiteSession<'_>, mtu: u32) {
    let name = s.name;
    match event {
        Event::Ipv4Up { local, peer, dns } => {
            if s.usepeerdns {
                for d in dns.iter().flatten() {
                    info!("{name}: IPCP: peer DNS {d}");
                }
            }
            s.info.ipv4_up(local, peer);
            s.netconf
                .send(Change::Ipv4Up(Ipv4Pair { local, peer, dns }));
        }
        Event::Ipv4Down => {
            s.info.ipv4(false);
            s.netconf.send(Change::Ipv4Down);
            if s.info.tun_errors > 0 {
                info!(
                    "{name}: {} packets could not be written to {}",
                    s.info.tun_errors, s.info.tun
                );
            }
        }
        Event::Ipv6Up { local_id, peer_id } => {
            s.info.ipv6_on_tun = mtu >= IPV6_MIN_MTU;
            s.netconf.send(Change::Ipv6Up {
                local_id,
                peer_id,
                mtu,
            });
        }
        // The engine has logged "IPV6CP: down".
        Event::Ipv6Down => {
            s.info.ipv6_on_tun = false;
            s.netconf.send(Change::Ipv6Down);
        }
        Event::PeerIdent(text) => info!("{name}: LCP: peer identifies as {text:?}"),
        Event::Phase(_) | Event::PeerAddressNeeded { .. } | Event::Down(_) => {}
    }
}

/// What a command asks of a running PPTP or L2TP client session, once
/// [`client_command`] has answered what needs nothing of it.
pub enum Asked {
    Nothing,
    /// `status`: the session's snapshot, into this reply.
    Snapshot(oneshot::Sender<Vec<SessionStatus>>),
    /// A hangup or a kick of this session: close it (PPP's
    /// Terminate-Request first), then send `message` as done.
    Hangup(oneshot::Sender<Response>, String),
}

/// A command (`None`: the channel closed) to session `id` of site link
/// `name`: dial and attach are refused or answered here, as is a kick of
/// another session; the rest is [`Asked`] of the session.
pub fn client_command(name: &str, id: SessionId, cmd: Option<Command>) -> Asked {
    match cmd {
        Some(Command::Snapshot(reply)) => Asked::Snapshot(reply),
        Some(Command::ServerStatus(_) | Command::IpsecStatus(_)) | None => Asked::Nothing,
        Some(Command::Hangup(reply)) => {
            info!("{name}: hangup requested");
            Asked::Hangup(reply, format!("{name}: closing"))
        }
        Some(Command::Kick(kicked, reply)) if kicked == id => {
            info!("{name}: session {id} kicked");
            Asked::Hangup(reply, format!("{name}: closing session {id}"))
        }
        Some(Command::Kick(other, reply)) => {
            let _ = reply.send(Response::Refused {
                message: format!("no session {other} on {name}"),
            });
            Asked::Nothing
        }
        Some(Command::Dial(reply)) => {
            let _ = reply.send(Response::Done {
                message: format!("{name}: already connected"),
            });
            Asked::Nothing
        }
        Some(Command::Attach(attach)) => {
            let _ = attach.reply.send(Response::Refused {
                message: format!("profile {name} is not mode = \"direct\""),
            });
            Asked::Nothing
        }
    }
}
