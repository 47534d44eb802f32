//! The in-process side of the server transport tests: a port whose
//! "calls" are PPP clients in this process, a device standing for the
//! kernel, and the clients themselves (the engine, as a peer runs it).

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tsunagi::auth::AuthGuard;
use tsunagi::control::{self, Request, Response, SessionStatus};
use tsunagi::netconf::Netconf;
use tsunagi::pool::Pool;
use tsunagi::registry::{ProfileKind, ProfileState, Registry};
use tsunagi::session::EndReason;
use tsunagi::transport::datagram::{
    PacketDevice, PacketPort, PortEvent, Received, Server, ServerCounters, ServerSettings,
};
use tsunagi_crypto::{OsRandom, Secret};
use tsunagi_ppp::auth::{AuthConfig, AuthMethod, SecretsHandle};
use tsunagi_ppp::link::{DownReason, Event, Framing, Link, LinkConfig};
use tsunagi_ppp::secrets::ChapSecrets;

/// The port's own header in front of every frame (as GRE's would be).
pub const HEADER: &[u8; 8] = b"GRE-ISH!";
pub const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);

/// What a client sends the server's port.
pub enum ToPort {
    /// A call from 192.0.2.KEY (the key's low octet).
    Open(u32),
    /// A call from this address.
    OpenFrom(u32, Ipv4Addr),
    Frame(u32, Vec<u8>),
}

/// The server's side of the in-memory port: a "call" per client number.
pub struct MemoryPort {
    pub inbox: mpsc::UnboundedReceiver<ToPort>,
    pub to_clients: mpsc::UnboundedSender<(u32, Vec<u8>)>,
    pub closed: mpsc::UnboundedSender<(u32, EndReason)>,
}

impl PacketPort for MemoryPort {
    type Key = u32;

    fn headroom(&self) -> usize {
        HEADER.len()
    }

    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<PortEvent<u32>> {
        match self.inbox.recv().await {
            Some(ToPort::Open(key)) => Ok(PortEvent::Open {
                key,
                peer: std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, key as u8)),
                outer: format!("192.0.2.{key}:1723"),
            }),
            Some(ToPort::OpenFrom(key, addr)) => Ok(PortEvent::Open {
                key,
                peer: std::net::IpAddr::V4(addr),
                outer: format!("{addr}:{}", 1024 + key),
            }),
            Some(ToPort::Frame(key, frame)) => {
                buf[..frame.len()].copy_from_slice(&frame);
                Ok(PortEvent::Frame {
                    key,
                    len: frame.len(),
                })
            }
            None => std::future::pending().await,
        }
    }

    fn send(&mut self, key: &u32, datagram: &mut [u8]) -> std::io::Result<()> {
        datagram[..HEADER.len()].copy_from_slice(HEADER);
        let _ = self
            .to_clients
            .send((*key, datagram[HEADER.len()..].to_vec()));
        Ok(())
    }

    fn closed(&mut self, key: &u32, reason: &EndReason) {
        let _ = self.closed.send((*key, reason.clone()));
    }
}

/// The shared "tun": what the server writes to the kernel, and what the
/// test sends towards the sessions.
pub struct MemoryDevice {
    pub to_kernel: mpsc::UnboundedSender<Vec<u8>>,
    pub from_kernel: tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
}

impl PacketDevice for MemoryDevice {
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<Received> {
        let packet = self
            .from_kernel
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| std::io::Error::other("closed"))?;
        buf[..packet.len()].copy_from_slice(&packet);
        Ok(Received {
            len: packet.len(),
            gso: None,
        })
    }

    fn try_recv(&self, buf: &mut [u8]) -> std::io::Result<Received> {
        let mut rx = self
            .from_kernel
            .try_lock()
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::WouldBlock))?;
        let packet = rx
            .try_recv()
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::WouldBlock))?;
        buf[..packet.len()].copy_from_slice(&packet);
        Ok(Received {
            len: packet.len(),
            gso: None,
        })
    }

    fn try_send(&self, packet: &[u8]) -> std::io::Result<()> {
        let _ = self.to_kernel.send(packet.to_vec());
        Ok(())
    }

    fn interface(&self) -> Option<&str> {
        None
    }
}

/// The server profile "vpn": CHAP required of `users` (each with the
/// password `pw-USER`), addresses from `localip` / `remoteip`.
pub fn vpn_settings(users: &[&str], localip: &str, remoteip: &str) -> ServerSettings {
    let secrets: String = users
        .iter()
        .map(|u| format!("{u} vpn pw-{u} *\n"))
        .collect();
    let link = LinkConfig {
        name: "vpn".into(),
        auth: AuthConfig {
            require: vec![AuthMethod::ChapMd5],
            name: "vpn".into(),
            secrets: Some(SecretsHandle(Arc::new(
                ChapSecrets::parse(&secrets).unwrap(),
            ))),
            ..AuthConfig::default()
        },
        ..LinkConfig::default()
    };
    ServerSettings {
        name: "vpn".into(),
        link,
        pool: Pool::parse("vpn", localip, remoteip, 100).unwrap(),
        tty: "test",
        ip_up: None,
        ip_down: None,
        proxyarp: false,
        listen: "test".into(),
    }
}

/// A running server: its registry, its task, and the daemon's shutdown.
pub struct Running {
    pub registry: Registry,
    pub task: JoinHandle<ServerCounters>,
    pub shutdown: watch::Sender<bool>,
}

/// Registers the profile and spawns the daemon's server transport on
/// `port` and `device` (the server's netconf on this thread's netlink).
pub fn start_server<D: PacketDevice + 'static>(
    settings: ServerSettings,
    port: MemoryPort,
    device: D,
) -> Running {
    let registry = Registry::new();
    let (commands_tx, commands) = mpsc::channel(8);
    let tun = device.interface().unwrap_or("-").to_string();
    registry.add_profile(
        &settings.name,
        ProfileKind::Server,
        &tun,
        commands_tx,
        ProfileState::default(),
    );
    let netconf = Netconf::new(Arc::new(tsunagi_host::Netlink::new().unwrap()));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let server = Server::new(
        settings,
        port,
        device,
        registry.clone(),
        netconf,
        AuthGuard::new(),
    );
    Running {
        registry,
        task: tokio::spawn(server.run(commands, shutdown_rx)),
        shutdown,
    }
}

/// A port and the clients on its other side, and where the port reports
/// the calls the server cleared.
pub fn port_and_clients() -> (
    MemoryPort,
    Clients,
    mpsc::UnboundedReceiver<(u32, EndReason)>,
) {
    let (to_port, inbox) = mpsc::unbounded_channel();
    let (to_clients, from_port) = mpsc::unbounded_channel();
    let (closed, closed_rx) = mpsc::unbounded_channel();
    let port = MemoryPort {
        inbox,
        to_clients,
        closed,
    };
    let clients = Clients {
        links: HashMap::new(),
        events: HashMap::new(),
        received: HashMap::new(),
        to_port,
        from_port,
    };
    (port, clients, closed_rx)
}

/// A device standing for the kernel: what the server writes to it, and a
/// sender of packets towards the sessions.
pub fn memory_device() -> (
    MemoryDevice,
    mpsc::UnboundedReceiver<Vec<u8>>,
    mpsc::UnboundedSender<Vec<u8>>,
) {
    let (to_kernel, kernel) = mpsc::unbounded_channel();
    let (inject, from_kernel) = mpsc::unbounded_channel();
    let device = MemoryDevice {
        to_kernel,
        from_kernel: tokio::sync::Mutex::new(from_kernel),
    };
    (device, kernel, inject)
}

/// An IPv4 packet from `src` to `dst` carrying `tag`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, tag: u8) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&28u16.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[20..].copy_from_slice(&[tag; 8]);
    p
}

/// The clients: PPP engines as the peers of the server's sessions.
pub struct Clients {
    pub links: HashMap<u32, Link>,
    pub events: HashMap<u32, Vec<Event>>,
    pub received: HashMap<u32, Vec<Vec<u8>>>,
    pub to_port: mpsc::UnboundedSender<ToPort>,
    pub from_port: mpsc::UnboundedReceiver<(u32, Vec<u8>)>,
}

impl Clients {
    pub fn start(&mut self, key: u32, user: &str) {
        self.start_from(key, user, None);
    }

    /// [`Clients::start`] from `from` (else 192.0.2.KEY).
    pub fn start_from(&mut self, key: u32, user: &str, from: Option<Ipv4Addr>) {
        let config = LinkConfig {
            name: format!("client{key}"),
            auth: AuthConfig {
                user: Some(user.into()),
                password: Some(Secret::from(format!("pw-{user}").as_str())),
                accept: vec![AuthMethod::ChapMd5],
                ..AuthConfig::default()
            },
            ..LinkConfig::default()
        };
        let mut config = config;
        config.lcp.framing = Framing::Packet;
        let mut link = Link::new(config, u64::from(key), OsRandom::handle());
        let _ = self.to_port.send(match from {
            Some(addr) => ToPort::OpenFrom(key, addr),
            None => ToPort::Open(key),
        });
        link.start(Instant::now());
        self.links.insert(key, link);
        self.flush(key);
    }

    /// Sends what client `key` queued; keeps its events.
    pub fn flush(&mut self, key: u32) {
        let Some(link) = self.links.get_mut(&key) else {
            return;
        };
        loop {
            let mut frame = Vec::new();
            if link.poll_transmit(&mut frame).is_none() {
                break;
            }
            let _ = self.to_port.send(ToPort::Frame(key, frame));
        }
        let events = self.events.entry(key).or_default();
        while let Some(e) = link.poll_event() {
            events.push(e);
        }
        while link.poll_auth_event().is_some() {}
    }

    /// Moves frames and fires timers until `done` or `limit`.
    pub async fn pump(&mut self, limit: Duration, done: impl Fn(&Clients) -> bool) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if done(self) {
                return true;
            }
            match tokio::time::timeout(Duration::from_millis(20), self.from_port.recv()).await {
                Ok(Some((key, frame))) => {
                    let now = Instant::now();
                    if let Some(link) = self.links.get_mut(&key) {
                        let got = self.received.entry(key).or_default();
                        link.handle_frame(now, &frame, &mut |_, p| got.push(p.to_vec()));
                    }
                    self.flush(key);
                }
                Ok(None) => break,
                Err(_) => {}
            }
            let now = Instant::now();
            let keys: Vec<u32> = self.links.keys().copied().collect();
            for key in keys {
                let link = self.links.get_mut(&key).unwrap();
                if link.poll_timeout().is_some_and(|d| d <= now) {
                    link.handle_timeout(now);
                    self.flush(key);
                }
            }
        }
        done(self)
    }

    pub fn address(&self, key: u32) -> Option<Ipv4Addr> {
        self.events.get(&key)?.iter().rev().find_map(|e| match e {
            Event::Ipv4Up { local, .. } => Some(*local),
            _ => None,
        })
    }

    pub fn down(&self, key: u32) -> Option<DownReason> {
        self.events.get(&key)?.iter().find_map(|e| match e {
            Event::Down(reason) => Some(reason.clone()),
            _ => None,
        })
    }
}

/// `status` through the control socket.
pub async fn status(socket: &std::path::Path) -> Vec<SessionStatus> {
    let socket = socket.to_path_buf();
    let answer =
        tokio::task::spawn_blocking(move || control::call(&socket, &Request::Status {}, &[]))
            .await
            .unwrap()
            .expect("status answered");
    match answer {
        Response::Status {
            links, sessions, ..
        } => {
            assert!(links.is_empty(), "a server profile is no site link");
            sessions
        }
        other => panic!("not a status answer: {other:?}"),
    }
}
