//! A LAC for benchmarks: opens many L2TP sessions against one LNS and
//! times them, then reads the LNS's resident memory with every session up
//! and idle (benches/l2tp-sessions.sh runs it).
//!
//! ```text
//! l2tp_sessions --lns ADDR:PORT [--tunnels 10] [--per-tunnel 100]
//!               [--pid LNS_PID] [--idle SECS] [--secret S]
//! ```
//!
//! One UDP socket from port 1701 carries `--tunnels` tunnels of the
//! `tsunagi-l2tp` engine (LAC role, Host Name `lac0`..); once a tunnel is
//! up it places `--per-tunnel` incoming calls (ICRQ), at most 64 waiting
//! at a time (the control channel's queue is bounded), and each
//! established session runs a `tsunagi-ppp` link on packet framing as user
//! `uN` with password `pwN` (N counts from 0 in the order the sessions come
//! up), MS-CHAPv2, IPCP asking for an address. PPP starts when the LNS's
//! first frame of the session arrives (see [`START_AFTER`]). A session is
//! set up when its IPCP is Opened: the LNS authenticated it and gave it an
//! address.
//!
//! Printed, on one line of `key=value` pairs, after all sessions are up:
//! `from_icrq_secs` (the first ICRQ to the last session's IPCP up),
//! `setups_per_sec` (sessions over that), `from_sccrq_secs` (the same from
//! the first SCCRQ, tunnel set-up included), the LNS's CPU time over the
//! ICRQ interval (`lns_cpu_secs`, utime+stime of all its threads) and this
//! process's (`lac_cpu_secs`), control messages we retransmitted and ZLBs
//! (acknowledgements alone) we received from the LNS; then, once
//! the sessions were idle for `--idle` seconds (LCP echoes answered), the
//! LNS's VmRSS and Pss (smaps_rollup) before the first SCCRQ and now, in
//! KiB, and their growth per session. On stderr, how long the set-up of
//! the sessions took in the tunnels (the last ICCN) and in PPP (ICCN to
//! IPCP up: least, median, 90th percentile, most). The process exits
//! without stopping its tunnels: the LNS still holds every session when
//! it returns. Not every session up within 120 s: exit status 1.
//!
//! The loop: datagrams are read until the socket is empty (non-blocking)
//! and each is handed to its tunnel and session at once; then only the
//! tunnels and sessions touched are drained of datagrams and events; every
//! 10 ms every timer is looked at; then `poll(2)` for at most 10 ms. The
//! socket's receive buffer is 4 MiB (SO_RCVBUFFORCE), so bursts of
//! answers are not lost to it.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use tsunagi_l2tp::header::Header;
use tsunagi_l2tp::{CallParams, Input, Role, Tunnel, TunnelConfig, TunnelEvent, DATA_HEADROOM};
use tsunagi_ppp::link::{Event, Framing, Link, LinkConfig};

/// Options from the command line.
struct Options {
    lns: SocketAddrV4,
    tunnels: usize,
    per_tunnel: usize,
    pid: Option<u32>,
    idle: Duration,
    secret: Option<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: l2tp_sessions --lns ADDR:PORT [--tunnels N] [--per-tunnel N] [--pid LNS_PID] [--idle SECS] [--secret S]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        lns: SocketAddrV4::new([0, 0, 0, 0].into(), 1701),
        tunnels: 10,
        per_tunnel: 100,
        pid: None,
        idle: Duration::from_secs(5),
        secret: None,
    };
    let mut lns = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--lns" => {
                o.lns = v.parse().unwrap_or_else(|_| usage());
                lns = true;
            }
            "--tunnels" => o.tunnels = v.parse().unwrap_or_else(|_| usage()),
            "--per-tunnel" => o.per_tunnel = v.parse().unwrap_or_else(|_| usage()),
            "--pid" => o.pid = Some(v.parse().unwrap_or_else(|_| usage())),
            "--idle" => o.idle = Duration::from_secs_f64(v.parse().unwrap_or_else(|_| usage())),
            "--secret" => o.secret = Some(v),
            _ => usage(),
        }
    }
    if !lns || o.tunnels == 0 || o.tunnels > 1000 || o.per_tunnel == 0 {
        usage();
    }
    o
}

/// One PPP session.
struct Session {
    tunnel: usize,
    session_id: u16,
    link: Link,
    /// PPP started.
    started: bool,
    up: bool,
    /// When the session was established (ICCN sent) and when its IPCP
    /// came up.
    established: Instant,
    ipcp_up: Option<Instant>,
}

/// Calls placed and not yet established, per tunnel, at most.
const MAX_PENDING: usize = 64;
/// PPP starts when the LNS's first frame of the session comes: our first
/// frame could otherwise overtake our ICCN, which waits in the control
/// channel's window behind other calls' messages, and the LNS would drop
/// it (the session is not established there yet) and make the session
/// wait for LCP's restart timer. Without a frame from the LNS, PPP starts
/// this long after the ICCN was queued.
const START_AFTER: Duration = Duration::from_secs(1);

struct Lac {
    socket: UdpSocket,
    lns: SocketAddr,
    /// Our Tunnel IDs: this one and the next ones.
    first_tunnel_id: u16,
    tunnels: Vec<Tunnel>,
    sessions: Vec<Session>,
    /// (tunnel index, our Session ID) -> index in `sessions`.
    by_id: HashMap<(usize, u16), usize>,
    /// Per tunnel: calls still to place, and calls placed but not yet
    /// established.
    to_open: Vec<usize>,
    pending: Vec<usize>,
    /// Tunnels and sessions fed since they were last drained.
    dirty_tunnels: Vec<bool>,
    dirty_sessions: Vec<usize>,
    first_icrq: Option<Instant>,
    up: usize,
    last_up: Option<Instant>,
    down: usize,
    out: Vec<u8>,
}

impl Lac {
    fn link_config(user: usize) -> LinkConfig {
        let mut config = LinkConfig {
            name: format!("u{user}"),
            ipv6cp: None,
            ..Default::default()
        };
        config.lcp.framing = Framing::Packet;
        config.lcp.mru = 1410;
        config.auth.accept = vec![tsunagi_ppp::auth::AuthMethod::MsChapV2];
        config.auth.user = Some(format!("u{user}"));
        config.auth.password = Some(tsunagi_crypto::Secret::new(format!("pw{user}")));
        config
    }

    /// One datagram from the LNS.
    fn input(&mut self, now: Instant, datagram: &[u8]) {
        let Ok((header, _)) = Header::parse(datagram) else {
            return;
        };
        let Some(t) = header.tunnel_id.checked_sub(self.first_tunnel_id) else {
            return;
        };
        let t = usize::from(t);
        let Some(tunnel) = self.tunnels.get_mut(t) else {
            return;
        };
        self.dirty_tunnels[t] = true;
        if let Input::Data {
            session_id,
            payload,
        } = tunnel.handle_input(now, datagram)
        {
            if let Some(&i) = self.by_id.get(&(t, session_id)) {
                let s = &mut self.sessions[i];
                if !s.started {
                    s.started = true;
                    s.link.start(now);
                }
                s.link.handle_frame(now, &datagram[payload], &mut |_, _| {});
                self.dirty_sessions.push(i);
            }
        }
    }

    /// Places incoming calls on tunnel `t` while it has calls left to
    /// place and fewer than MAX_PENDING waiting (the control channel's
    /// queue is bounded).
    fn open_more(&mut self, now: Instant, t: usize) {
        while self.to_open[t] > 0 && self.pending[t] < MAX_PENDING {
            match self.tunnels[t].open_session(now, &CallParams::default()) {
                Ok(_) => {
                    self.to_open[t] -= 1;
                    self.pending[t] += 1;
                }
                Err(e) => {
                    eprintln!("tunnel {t}: cannot open a session: {e}");
                    break;
                }
            }
        }
    }

    /// Drains a tunnel's events (sessions opened, PPP started) and
    /// datagrams.
    fn service_tunnel(&mut self, now: Instant, t: usize) {
        while let Some(event) = self.tunnels[t].poll_event() {
            match event {
                TunnelEvent::Up { .. } => {
                    self.first_icrq.get_or_insert(now);
                    self.open_more(now, t);
                }
                TunnelEvent::SessionUp { session_id, .. } => {
                    self.pending[t] -= 1;
                    self.open_more(now, t);
                    let user = self.sessions.len();
                    // Started when the LNS's first frame comes (see
                    // `input`), or after START_AFTER.
                    let link = Link::new(
                        Lac::link_config(user),
                        user as u64 + 1,
                        tsunagi_crypto::OsRandom::handle(),
                    );
                    self.by_id.insert((t, session_id), user);
                    self.sessions.push(Session {
                        tunnel: t,
                        session_id,
                        link,
                        started: false,
                        up: false,
                        established: now,
                        ipcp_up: None,
                    });
                    self.dirty_sessions.push(user);
                }
                TunnelEvent::Down { why } => {
                    eprintln!("tunnel {t} down: {why}");
                }
                TunnelEvent::SessionDown {
                    session_id, why, ..
                } => {
                    self.down += 1;
                    if !self.by_id.contains_key(&(t, session_id)) {
                        self.pending[t] -= 1;
                        self.open_more(now, t);
                    }
                    eprintln!("tunnel {t} session {session_id} down: {why}");
                }
                _ => {}
            }
        }
        while self.tunnels[t].poll_transmit(&mut self.out) {
            send(&self.socket, &self.out, self.lns);
        }
    }

    /// Drains a session's events and frames (into its tunnel's data
    /// messages).
    fn service_session(&mut self, now: Instant, i: usize) {
        let s = &mut self.sessions[i];
        while let Some(event) = s.link.poll_event() {
            match event {
                Event::Ipv4Up { .. } if !s.up => {
                    s.up = true;
                    s.ipcp_up = Some(now);
                    self.up += 1;
                    self.last_up = Some(now);
                }
                Event::Down(why) => eprintln!("session {i}: PPP down: {why:?}"),
                _ => {}
            }
        }
        let tunnel = &mut self.tunnels[s.tunnel];
        loop {
            self.out.clear();
            self.out.resize(DATA_HEADROOM, 0);
            if s.link.poll_transmit(&mut self.out).is_none() {
                break;
            }
            let end = self.out.len();
            if let Ok(r) = tunnel.encapsulate(s.session_id, &mut self.out, DATA_HEADROOM..end) {
                send(&self.socket, &self.out[r], self.lns);
            }
        }
        // A frame may have queued a control message (none today), and the
        // session's data may carry the tunnel's acknowledgement.
        self.dirty_tunnels[s.tunnel] = true;
    }

    /// Drains what was touched.
    fn service(&mut self, now: Instant) {
        // Sessions first: a tunnel event may add sessions, which are
        // drained in the next pass.
        loop {
            for t in 0..self.tunnels.len() {
                if std::mem::take(&mut self.dirty_tunnels[t]) {
                    self.service_tunnel(now, t);
                }
            }
            if self.dirty_sessions.is_empty() {
                break;
            }
            let mut dirty = std::mem::take(&mut self.dirty_sessions);
            dirty.sort_unstable();
            dirty.dedup();
            for &i in &dirty {
                self.service_session(now, i);
            }
            dirty.clear();
            self.dirty_sessions = dirty;
        }
    }

    /// Fires every timer that is due.
    fn timers(&mut self, now: Instant) {
        for (t, tunnel) in self.tunnels.iter_mut().enumerate() {
            if tunnel.poll_timeout().is_some_and(|d| d <= now) {
                tunnel.handle_timeout(now);
                self.dirty_tunnels[t] = true;
            }
        }
        for (i, s) in self.sessions.iter_mut().enumerate() {
            if !s.started && now >= s.established + START_AFTER {
                s.started = true;
                s.link.start(now);
                self.dirty_sessions.push(i);
            }
            if s.link.poll_timeout().is_some_and(|d| d <= now) {
                s.link.handle_timeout(now);
                self.dirty_sessions.push(i);
            }
        }
    }

    /// Reads until the socket is empty, then services, and waits up to
    /// `wait` for more when nothing came.
    fn step(&mut self, buf: &mut [u8], next_timers: &mut Instant, wait: Duration) {
        let mut got = 0;
        loop {
            match self.socket.recv_from(buf) {
                Ok((n, from)) => {
                    if from == self.lns {
                        self.input(Instant::now(), &buf[..n]);
                    }
                    got += 1;
                    // Answer as we go under a long burst.
                    if got % 64 == 0 {
                        self.service(Instant::now());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ICMP port unreachable and the like: the tunnels' timers
                // deal with the LNS gone.
                Err(_) => break,
            }
        }
        let now = Instant::now();
        if now >= *next_timers {
            self.timers(now);
            *next_timers = now + Duration::from_millis(10);
        }
        self.service(now);
        if got == 0 {
            let mut fds = libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = wait.as_millis().min(10) as libc::c_int;
            // SAFETY: one valid pollfd for the call's duration.
            unsafe { libc::poll(&mut fds, 1, ms) };
        }
    }
}

fn send(socket: &UdpSocket, datagram: &[u8], to: SocketAddr) {
    // A full send buffer: the control channel retransmits, PPP restarts.
    let _ = socket.send_to(datagram, to);
}

/// Busy time of a process so far (utime+stime of all its threads), in
/// seconds.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / hz as f64
}

/// A "Key:   N kB" line of a /proc file, in KiB.
fn kib(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The LNS's (VmRSS, Pss) in KiB.
fn memory(pid: Option<u32>) -> (u64, u64) {
    match pid {
        Some(pid) => (
            kib(&format!("/proc/{pid}/status"), "VmRSS:"),
            kib(&format!("/proc/{pid}/smaps_rollup"), "Pss:"),
        ),
        None => (0, 0),
    }
}

fn set_rcvbuf(socket: &UdpSocket, bytes: libc::c_int) {
    // SAFETY: a valid socket and an int option of the right size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        eprintln!("SO_RCVBUFFORCE: {}", io::Error::last_os_error());
    }
}

fn main() {
    let o = options();
    let total = o.tunnels * o.per_tunnel;
    let socket = UdpSocket::bind("0.0.0.0:1701")
        .or_else(|_| UdpSocket::bind("0.0.0.0:0"))
        .expect("bind UDP");
    socket.set_nonblocking(true).unwrap();
    set_rcvbuf(&socket, 4 << 20);
    let (rss_before, pss_before) = memory(o.pid);
    let lac_cpu0 = cpu_secs(std::process::id());
    let start = Instant::now();
    // Our Tunnel IDs differ from one run to the next: an LNS that still
    // holds the tunnels of a run before takes a new SCCRQ with an old
    // Assigned Tunnel ID, from the same address and port, for a copy of
    // the old one.
    let first_tunnel_id = 1 + (std::process::id() % 60_000) as u16;
    let tunnels = (0..o.tunnels)
        .map(|i| {
            let config = TunnelConfig {
                secret: o
                    .secret
                    .as_ref()
                    .map(|s| tsunagi_crypto::Secret::new(s.as_bytes().to_vec())),
                host_name: format!("lac{i}"),
                ..TunnelConfig::new(Role::Lac)
            };
            Tunnel::connect(
                config,
                first_tunnel_id + i as u16,
                start,
                tsunagi_crypto::OsRandom::handle(),
            )
        })
        .collect();
    let mut lac = Lac {
        socket,
        lns: SocketAddr::V4(o.lns),
        first_tunnel_id,
        tunnels,
        sessions: Vec::with_capacity(total),
        by_id: HashMap::with_capacity(total),
        to_open: vec![o.per_tunnel; o.tunnels],
        pending: vec![0; o.tunnels],
        dirty_tunnels: vec![true; o.tunnels],
        dirty_sessions: Vec::new(),
        first_icrq: None,
        up: 0,
        last_up: None,
        down: 0,
        out: Vec::with_capacity(2048),
    };
    let mut buf = vec![0u8; 65536];
    let mut next_timers = start;
    let mut lns_cpu0: Option<f64> = None;
    while lac.up < total {
        if start.elapsed() > Duration::from_secs(120) {
            eprintln!(
                "l2tp_sessions: {} of {total} sessions up after 120 s ({} established, {} down)",
                lac.up,
                lac.sessions.len(),
                lac.down
            );
            std::process::exit(1);
        }
        lac.step(&mut buf, &mut next_timers, Duration::from_millis(10));
        if lns_cpu0.is_none() && lac.first_icrq.is_some() {
            lns_cpu0 = Some(o.pid.map_or(f64::NAN, cpu_secs));
        }
    }
    let lns_cpu = o.pid.map_or(f64::NAN, cpu_secs) - lns_cpu0.unwrap_or(f64::NAN);
    let lac_cpu = cpu_secs(std::process::id()) - lac_cpu0;
    let first_icrq = lac.first_icrq.unwrap();
    let last_up = lac.last_up.unwrap();
    let from_icrq = last_up.duration_since(first_icrq).as_secs_f64();
    let from_sccrq = last_up.duration_since(start).as_secs_f64();
    let zlb_received: u64 = lac
        .tunnels
        .iter()
        .map(|t| t.reliable_counters().zlb_received)
        .sum();
    let retransmitted: u64 = lac
        .tunnels
        .iter()
        .map(|t| t.reliable_counters().retransmitted)
        .sum();
    println!(
        "sessions={total} tunnels={} from_icrq_secs={from_icrq:.3} setups_per_sec={:.0} from_sccrq_secs={from_sccrq:.3} lns_cpu_secs={lns_cpu:.2} lac_cpu_secs={lac_cpu:.2} lac_retransmitted={retransmitted} lac_zlb_received={zlb_received} sessions_down={}",
        o.tunnels,
        total as f64 / from_icrq,
        lac.down
    );
    let mut ppp: Vec<f64> = lac
        .sessions
        .iter()
        .filter_map(|s| {
            s.ipcp_up
                .map(|u| u.duration_since(s.established).as_secs_f64())
        })
        .collect();
    ppp.sort_by(f64::total_cmp);
    let last_established = lac.sessions.iter().map(|s| s.established).max().unwrap();
    eprintln!(
        "last session established {:.3} s after the first ICRQ; PPP (established to IPCP up) min {:.3} median {:.3} p90 {:.3} max {:.3} s",
        last_established.duration_since(first_icrq).as_secs_f64(),
        ppp[0],
        ppp[ppp.len() / 2],
        ppp[ppp.len() * 9 / 10],
        ppp[ppp.len() - 1]
    );
    let idle_until = Instant::now() + o.idle;
    while Instant::now() < idle_until {
        lac.step(&mut buf, &mut next_timers, Duration::from_millis(10));
    }
    let (rss_after, pss_after) = memory(o.pid);
    let per = |after: u64, before: u64| (after as f64 - before as f64) / total as f64;
    println!(
        "rss_before_kib={rss_before} rss_after_kib={rss_after} rss_per_session_kib={:.2} pss_before_kib={pss_before} pss_after_kib={pss_after} pss_per_session_kib={:.2} still_up={}",
        per(rss_after, rss_before),
        per(pss_after, pss_before),
        lac.sessions.iter().filter(|s| s.link.phase() == tsunagi_ppp::link::Phase::Network).count()
    );
}
