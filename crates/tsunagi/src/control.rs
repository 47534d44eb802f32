//! The control protocol between `tsunagi` commands and `tsunagi run`.
//!
//! Transport: a Unix stream socket (`[daemon] control_socket`, default
//! `/run/tsunagi/tsunagi.sock`, mode 0666). Anyone may connect; the daemon
//! decides per request from the caller's credentials (`SO_PEERCRED`).
//!
//! Exchange: the client sends **one** request, a JSON object on one line
//! ending in `\n`; the daemon answers with **one** response line and closes.
//!
//! Every request and every response carries the protocol version `"v"`
//! ([`PROTOCOL_VERSION`]). A daemon answers a request of a newer version
//! with an error that says both versions (not a parse failure), and a
//! client reading an answer of another version, or none (a daemon from
//! before versions), says so. A request without `"v"` is taken as version
//! 1 (the clients before versions sent the same requests).
//!
//! | request | who | response |
//! |---|---|---|
//! | `{"v":1,"op":"status"}` | anyone | `{"v":1,"result":"status","links":[LinkStatus...],"sessions":[SessionStatus...]}` |
//! | `{"v":1,"op":"dial","link":"labs"}` | root | `{"v":1,"result":"done","message":"..."}` (an IPsec conn's name: negotiate it, `ipsec up`) |
//! | `{"v":1,"op":"hangup","link":"labs"}` | root | `{"v":1,"result":"done","message":"..."}` (an IPsec conn's name: delete its SAs, keep it down, `ipsec down`) |
//! | `{"v":1,"op":"kick","session":7}` | root | `{"v":1,"result":"done","message":"..."}` |
//! | `{"v":1,"op":"reload"}` | root | `{"v":1,"result":"done","message":"reload: link.labs changed; ..."}` (`refused` when the config does not load: nothing changed) |
//! | `{"v":1,"op":"direct","profile":"home","ssh_client":"192.0.2.1","ssh_client_port":50022}` + 2 fds | `allow_users` | `{"v":1,"result":"ended","reason":"...","exit_code":N}` when the link ends |
//! | `{"v":1,"op":"capture","link":"labs","count":N}` + 1 fd | root | `{"v":1,"result":"done","message":"... N packets written, M dropped"}` when the capture ends |
//! | `{"v":1,"op":"log","follow":true,"lines":N}` | root | a stream of `{"v":1,"result":"log","line":"..."}` (and `{"v":1,"result":"dropped","lines":N}`) |
//!
//! `links` is the view of the site links (one row per `[link.NAME]`, PPP
//! over SSH); `sessions` lists every live session of every profile, with
//! its id, user, outer peer, inner addresses, phase, uptime and counters
//! read from its engine when the request came.
//!
//! A `direct` request carries the caller's stdin and stdout (in that order)
//! as `SCM_RIGHTS` ancillary data on the same `sendmsg` as the request
//! line. The daemon runs PPP over them and answers only when the link has
//! ended; the `exit_code` is the one `tsunagi direct` exits with:
//! 0 = terminated normally, 1 = refused or error, 2 = the link failed
//! (echo timeout, negotiation failure, looped back, stream lost).
//!
//! A `capture` request carries one fd, a file the client opened for
//! writing; the daemon writes the profile's (a site link's or a server's)
//! packets to it as pcap ([`crate::capture`]) until the client shuts its
//! side of the connection (or closes it), `count` packets (optional) are
//! written, or the profile goes away, then answers. `log` answers with the
//! last `lines` lines of the daemon's log (default 10), then, with
//! `follow`, every new line until the client closes; a reader too slow
//! for them is sent `dropped` with the number of lines it lost
//! ([`crate::live_log`]). Both are streams: the connection stays open, and
//! is not counted against the caller's connection cap.
//!
//! Any request may instead be answered `{"result":"refused","message":"..."}`
//! (not allowed, no such link, profile busy) or
//! `{"result":"error","message":"..."}` (malformed request). A connection
//! over the caller's connection cap (the daemon's, per uid) is answered
//! `refused` at once, before its request is read, and closed.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

/// The version of this protocol; it changes when a request or response
/// changes in a way an older peer would misread.
pub const PROTOCOL_VERSION: u32 = 1;

/// Most file descriptors one request may carry (`direct`: stdin, stdout).
pub const MAX_FDS: usize = 2;
/// Longest request line the daemon reads.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// Exit status of `tsunagi direct` when the link terminated normally.
pub const EXIT_NORMAL: i32 = 0;
/// Exit status when the daemon refused or something failed.
pub const EXIT_REFUSED: i32 = 1;
/// Exit status when the link failed (echo timeout, negotiation, stream lost).
pub const EXIT_LINK_FAILED: i32 = 2;

/// One request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Every link's state. (A struct variant, so that unknown fields
    /// are refused as for the others.)
    Status {},
    /// Start (or restart the redial of) a dial link.
    Dial {
        /// Link name.
        link: String,
    },
    /// Close a link with LCP Terminate-Request and stop redialling it.
    Hangup {
        /// Link name.
        link: String,
    },
    /// Close one session (of any profile) with LCP Terminate-Request; a
    /// site link's session is then not redialled, as with `hangup`.
    Kick {
        /// The session's id, as `status` lists it.
        session: u64,
    },
    /// Read the config again and apply what changed (as SIGHUP does).
    Reload {},
    /// Run PPP over the fds attached to this message for a direct profile.
    Direct {
        /// The `[link.NAME]` with `mode = "direct"`.
        profile: String,
        /// The ssh client's address from the caller's `SSH_CONNECTION`,
        /// for the auth failure log and limiter. Claimed by the caller,
        /// so it only narrows who a failure is blamed on: the limiter
        /// also counts by uid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssh_client: Option<String>,
        /// The ssh client's port from `SSH_CONNECTION`, for the audit
        /// trail's `from` (claimed as the address is).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ssh_client_port: Option<u16>,
    },
    /// Write a profile's packets as pcap to the fd attached to this message.
    Capture {
        /// A `[link.NAME]` or a server profile.
        link: String,
        /// Stop after this many packets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
    },
    /// The daemon's last log lines, then (with `follow`) its new ones.
    Log {
        /// Keep the connection and send new lines as they come.
        #[serde(default)]
        follow: bool,
        /// How many of the last lines first (default 10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lines: Option<usize>,
    },
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "lowercase")]
pub enum Response {
    /// Answer to `status`.
    Status {
        /// One entry per configured site link.
        links: Vec<LinkStatus>,
        /// Every live session.
        #[serde(default)]
        sessions: Vec<SessionStatus>,
        /// One entry per server profile.
        #[serde(default)]
        servers: Vec<ServerStatus>,
        /// One entry per `[ipsec.NAME]`.
        #[serde(default)]
        ipsec: Vec<IpsecConnStatus>,
    },
    /// A `dial`/`hangup` was carried out.
    Done {
        /// What happened.
        message: String,
    },
    /// The direct link ended.
    Ended {
        /// Why, in words (e.g. "peer terminated: User request").
        reason: String,
        /// What `tsunagi direct` should exit with.
        exit_code: i32,
    },
    /// One line of the daemon's log (`log`).
    Log {
        /// The line as the log file has it, without its newline.
        line: String,
    },
    /// Lines of the log this reader was too slow for (`log`).
    Dropped {
        /// How many.
        lines: u64,
    },
    /// Not allowed, unknown link, busy profile.
    Refused {
        /// Why.
        message: String,
    },
    /// The request could not be understood or carried out.
    Error {
        /// Why.
        message: String,
    },
}

/// Counters of one link, from the engine (`tsunagi_ppp::link::LinkStats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// IP packets from the peer.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// IP packets to the peer.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Frames with a bad FCS.
    pub rx_bad_fcs: u64,
    /// Malformed frames.
    pub rx_malformed: u64,
    /// Frames of protocols we do not speak.
    pub rx_unknown_protocol: u64,
    /// Control packets that failed to parse.
    pub rx_bad_control: u64,
    /// Control packets dropped unread beyond the peer's budget (a flood).
    #[serde(default)]
    pub rx_control_dropped: u64,
    /// Control frames dropped because the peer did not read them.
    #[serde(default)]
    pub tx_control_dropped: u64,
}

/// One server profile in a `status` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// The profile's name.
    pub name: String,
    /// What it speaks ("pptp").
    pub protocol: String,
    /// Where it listens ("203.0.113.1:1723", "*:1723").
    pub listen: String,
    /// The tun its sessions share.
    pub tun: String,
    /// Live sessions.
    pub sessions: usize,
    /// Addresses in its pool.
    pub pool_size: usize,
    /// Addresses free.
    pub pool_free: usize,
    /// What the server counted that belongs to no session, by name
    /// (`gre_unknown_call`, `control_bad_messages`, ...); zeros left out.
    pub counters: std::collections::BTreeMap<String, u64>,
    /// Its tunnels (L2TP), each carrying sessions.
    #[serde(default)]
    pub tunnels: Vec<TunnelStatus>,
}

/// One IPsec connection in a `status` answer (what `ipsec statusall`
/// shows of a `conn`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpsecConnStatus {
    /// The conn's name.
    pub name: String,
    /// `left`.
    pub left: String,
    /// `right` (or "%any").
    pub right: String,
    /// `leftid`.
    pub leftid: String,
    /// `rightid` (or "%any").
    pub rightid: String,
    /// `ike=` as configured.
    pub ike: String,
    /// `esp=` as configured.
    pub esp: String,
    /// "TUNNEL" or "TRANSPORT".
    pub mode: String,
    /// "start" or "add".
    pub auto: String,
    /// `leftsubnet` === `rightsubnet`.
    pub subnets: String,
    /// The tun (tunnel mode).
    pub tun: Option<String>,
    /// Its IKE SAs.
    pub ike_sas: Vec<IkeSaView>,
    /// Its IPsec SAs.
    pub child_sas: Vec<ChildSaView>,
    /// Drops and other counts of the conn, by name; zeros left out.
    pub counters: std::collections::BTreeMap<String, u64>,
    /// L2TP/IPsec: the `[link]` or `[server]` whose L2TP goes through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2tp_profile: Option<String>,
}

/// One IKE SA in a `status` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeSaView {
    /// The engine's number.
    pub id: u64,
    /// "ESTABLISHED", "CONNECTING", ...
    pub state: String,
    /// Seconds since it was established (or started).
    pub age_secs: u64,
    /// Our address and port.
    pub local: String,
    /// The peer's.
    pub remote: String,
    /// The peer's identity, once known.
    pub remote_id: Option<String>,
    /// We initiated it.
    pub initiator: bool,
    /// Initiator and responder cookies, hex.
    pub cookies: String,
    /// The agreed algorithms, strongSwan's way.
    pub proposal: Option<String>,
    /// Seconds until it is rekeyed.
    pub rekey_in_secs: Option<u64>,
}

/// One IPsec SA pair in a `status` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildSaView {
    /// The engine's number.
    pub id: u64,
    /// The IKE SA that made it.
    pub ike: u64,
    /// "INSTALLED", or "REKEYED" while the old one lingers.
    pub state: String,
    /// Seconds since it was installed.
    pub age_secs: u64,
    /// Our address and port.
    pub local: String,
    /// The peer's.
    pub remote: String,
    /// ESP in UDP 4500.
    pub udp_encap: bool,
    /// The agreed algorithms.
    pub proposal: String,
    /// Our SPI, hex.
    pub spi_in: String,
    /// The peer's.
    pub spi_out: String,
    /// Payload octets opened.
    pub bytes_in: u64,
    /// Packets opened.
    pub packets_in: u64,
    /// Payload octets sealed.
    pub bytes_out: u64,
    /// Packets sealed.
    pub packets_out: u64,
    /// Seconds since ESP last arrived.
    pub last_in_secs: Option<u64>,
    /// Seconds until it is rekeyed (lifetime minus margintime).
    pub rekey_in_secs: Option<u64>,
    /// Our selector.
    pub local_ts: String,
    /// The peer's.
    pub remote_ts: String,
    /// Transport mode answering `%any`: the address and port the host's
    /// sockets know the peer by (an L2TP/IPsec client's tunnel shows it
    /// as its peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_as: Option<String>,
}

/// One tunnel of a server (an L2TP control connection) in a `status`
/// answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelStatus {
    /// The peer's outer address and port.
    pub peer: String,
    /// The peer's Host Name.
    pub host_name: String,
    /// Our Tunnel ID.
    pub local_id: u16,
    /// The peer's Tunnel ID.
    pub peer_id: u16,
    /// RFC 2661's state name ("established", "wait-ctl-conn", ...).
    pub state: String,
    /// Sessions on it, any state.
    pub sessions: usize,
    /// Seconds since it was made.
    pub age_secs: u64,
    /// Control messages received (ZLBs included).
    pub control_rx: u64,
    /// Control messages sent (first transmissions).
    pub control_tx: u64,
    /// Control messages sent again.
    pub retransmitted: u64,
    /// Data messages received.
    pub data_rx: u64,
    /// Data messages sent.
    pub data_tx: u64,
    /// Data messages dropped (unknown session, late).
    pub data_dropped: u64,
}

/// One live session in a `status` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// The session's id (for `kick`).
    pub id: u64,
    /// The profile (`[link.NAME]` or server) it belongs to.
    pub profile: String,
    /// The name the peer authenticated with.
    pub user: Option<String>,
    /// Who is at the other end outside the tunnel: the ssh target, the ssh
    /// client's address (or `uid N`) of a direct caller, a server's peer.
    pub outer_peer: String,
    /// The interface its packets use.
    pub tun: String,
    /// PPP phase: "establish", "authenticate", "network", "terminate", "dead".
    pub phase: String,
    /// Our inner address once IPCP is open.
    pub local: Option<String>,
    /// The peer's inner address once IPCP is open.
    pub peer_addr: Option<String>,
    /// Seconds since IPCP came up.
    pub uptime_secs: Option<u64>,
    /// Seconds since the session started.
    pub connected_secs: u64,
    /// Engine counters, read when `status` was asked.
    pub counters: Counters,
    /// PPP authentication in words.
    pub auth: Option<String>,
    /// CCP in words.
    pub ccp: Option<String>,
    /// Our IPv6 link-local address while IPV6CP is open.
    pub local6: Option<String>,
    /// The peer's IPv6 link-local address while IPV6CP is open.
    pub peer_addr6: Option<String>,
    /// The FCS we send with while LCP is open ("16" or "null").
    pub fcs_tx: Option<String>,
    /// The FCS the peer sends with while LCP is open.
    pub fcs_rx: Option<String>,
    /// The tunnel under PPP in words (PPTP: the call ids and GRE
    /// counters); `None` for PPP over SSH.
    #[serde(default)]
    pub tunnel: Option<String>,
}

impl From<&tsunagi_ppp::link::LinkStats> for Counters {
    fn from(s: &tsunagi_ppp::link::LinkStats) -> Counters {
        Counters {
            rx_packets: s.rx_packets,
            rx_bytes: s.rx_bytes,
            tx_packets: s.tx_packets,
            tx_bytes: s.tx_bytes,
            rx_bad_fcs: s.rx_bad_fcs,
            rx_malformed: s.rx_malformed,
            rx_unknown_protocol: s.rx_unknown_protocol,
            rx_bad_control: s.rx_bad_control,
            rx_control_dropped: s.rx_control_dropped,
            tx_control_dropped: s.tx_control_dropped,
        }
    }
}

/// One link in a `status` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// Link name.
    pub name: String,
    /// "dial" or "direct".
    pub mode: String,
    /// "idle", "connecting", "dead", "establish", "authenticate", "network",
    /// "terminate", "waiting" (for a redial) or "stopped".
    pub phase: String,
    /// The tun interface.
    pub tun: String,
    /// Our address once IPCP is open.
    pub local: Option<String>,
    /// The peer's address once IPCP is open.
    pub peer_addr: Option<String>,
    /// Who is at the other end: the ssh target, or "direct via uid N pid P".
    pub peer: String,
    /// Seconds since IPCP came up (None while not up).
    pub uptime_secs: Option<u64>,
    /// Engine counters of the current (or last) session.
    pub counters: Counters,
    /// Sessions started since the daemon started, minus one (0 = first dial).
    pub redials: u64,
    /// Seconds until the next redial, while waiting for it.
    pub next_redial_secs: Option<u64>,
    /// Why the last session ended.
    pub last_down: Option<String>,
    /// PPP authentication of the current session: who authenticated to
    /// whom and how (e.g. "peer alice by CHAP").
    #[serde(default)]
    pub auth: Option<String>,
    /// CCP of the current session (e.g. "send MPPE-128 stateless, receive
    /// MPPE-128 stateless").
    #[serde(default)]
    pub ccp: Option<String>,
    /// Our IPv6 link-local address while IPV6CP is open (RFC 5072 s5).
    #[serde(default)]
    pub local6: Option<String>,
    /// The peer's IPv6 link-local address while IPV6CP is open.
    #[serde(default)]
    pub peer_addr6: Option<String>,
    /// The FCS we send with while LCP is open: "16" or "null" (RFC 1570
    /// s2.1; the values of the `fcs` config key).
    #[serde(default)]
    pub fcs_tx: Option<String>,
    /// The FCS the peer sends us with while LCP is open.
    #[serde(default)]
    pub fcs_rx: Option<String>,
    /// The tunnel under PPP of the current session (PPTP: the call ids
    /// and GRE counters).
    #[serde(default)]
    pub tunnel: Option<String>,
}

/// `value` (a JSON object) with `"v"` first, as one line.
fn versioned_line(value: serde_json::Value) -> String {
    let mut object = serde_json::Map::new();
    object.insert("v".into(), PROTOCOL_VERSION.into());
    if let serde_json::Value::Object(fields) = value {
        object.extend(fields);
    }
    let mut s = serde_json::Value::Object(object).to_string();
    s.push('\n');
    s
}

/// Splits `"v"` off a received JSON object: (version, the rest).
fn unversioned(text: &[u8]) -> Result<(Option<u64>, serde_json::Value), String> {
    let mut value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let version = match &mut value {
        serde_json::Value::Object(fields) => match fields.remove("v") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| format!("\"v\" is {v}, not a version number"))?,
            ),
        },
        _ => return Err("not a JSON object".into()),
    };
    Ok((version, value))
}

impl Request {
    /// The request as one JSON line, with the protocol version.
    pub fn to_line(&self) -> String {
        versioned_line(serde_json::to_value(self).unwrap_or_default())
    }

    /// Parses a request line (the daemon's side). A request of a newer
    /// protocol version is refused with both versions named.
    pub fn parse(line: &[u8]) -> Result<Request, String> {
        let (version, value) = unversioned(line).map_err(|e| format!("malformed request: {e}"))?;
        match version {
            Some(v) if v > u64::from(PROTOCOL_VERSION) => Err(format!(
                "this daemon speaks control protocol version {PROTOCOL_VERSION}, the client {v}: \
                 use the tsunagi command of the daemon's version, or upgrade the daemon"
            )),
            Some(0) => Err("malformed request: \"v\" 0 is no protocol version".into()),
            _ => {
                let request: Request =
                    serde_json::from_value(value).map_err(|e| format!("malformed request: {e}"))?;
                // The claimed ssh client address goes into log lines and the
                // hold-off's keys: only an address is taken.
                if let Request::Direct {
                    ssh_client: Some(client),
                    ..
                } = &request
                {
                    if client.parse::<std::net::IpAddr>().is_err() {
                        return Err(format!(
                            "malformed request: ssh_client {client:?} is not an IP address"
                        ));
                    }
                }
                Ok(request)
            }
        }
    }
}

impl Response {
    /// The response as one JSON line, with the protocol version.
    pub fn to_line(&self) -> String {
        versioned_line(serde_json::to_value(self).unwrap_or_default())
    }

    /// Parses an answer line (the client's side). An answer of another
    /// protocol version, or from a daemon older than versions, is an
    /// error that says so rather than a parse failure.
    pub fn parse(line: &[u8]) -> Result<Response, ClientError> {
        let (version, value) =
            unversioned(line).map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        let ours = u64::from(PROTOCOL_VERSION);
        match (version, serde_json::from_value::<Response>(value)) {
            (Some(v), Ok(r)) if v == ours => Ok(r),
            (Some(v), Err(e)) if v == ours => Err(ClientError::BadAnswer(e.to_string())),
            // Another version, or none: the daemon's refusal if it is one
            // this client reads (it names the versions), else that the
            // versions differ.
            (daemon, Ok(Response::Error { message })) => {
                Err(ClientError::Version { daemon, message })
            }
            (daemon, _) => Err(ClientError::Version {
                daemon,
                message: "its answer is not one this client reads".into(),
            }),
        }
    }
}

/// Errors of a control client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// connect(2) failed.
    #[error("cannot connect to control socket {path}: {source} (is `tsunagi run` running?)")]
    Connect {
        /// The socket path.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// Sending or receiving failed.
    #[error("control socket I/O: {0}")]
    Io(#[from] io::Error),
    /// The daemon closed without answering.
    #[error("the daemon closed the control connection without an answer")]
    NoAnswer,
    /// The answer was not a response line.
    #[error("malformed answer from the daemon: {0}")]
    BadAnswer(String),
    /// The daemon speaks another version of this protocol (or none: a
    /// daemon from before versions).
    #[error("{}", version_text(.daemon, .message))]
    Version {
        /// The daemon's version; `None` for a daemon without versions.
        daemon: Option<u64>,
        /// What the daemon said, or why its answer could not be read.
        message: String,
    },
}

/// The text of [`ClientError::Version`].
fn version_text(daemon: &Option<u64>, message: &str) -> String {
    match daemon {
        None => format!(
            "the daemon speaks an older control protocol (without versions; this tsunagi speaks version {PROTOCOL_VERSION}): {message}"
        ),
        Some(v) if *v == u64::from(PROTOCOL_VERSION) => message.to_string(),
        Some(v) => format!(
            "the daemon speaks control protocol version {v}, this tsunagi {PROTOCOL_VERSION}: {message}"
        ),
    }
}

/// Send `request` (with `fds` attached, may be empty) and wait for the answer.
/// Blocking; the CLI has no need for a runtime.
pub fn call(
    socket: &Path,
    request: &Request,
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> Result<Response, ClientError> {
    let (stream, sent) = connect_and_send(socket, request, fds)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_error = None;
    loop {
        match rustix::io::read(&stream, &mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => {
                read_error = Some(io::Error::from(e));
                break;
            }
        }
        if answer.contains(&b'\n') || answer.len() > 16 * 1024 * 1024 {
            break;
        }
    }
    let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.is_empty() {
        return Err(match (sent, read_error) {
            (Err(e), _) | (Ok(()), Some(e)) => ClientError::Io(e),
            (Ok(()), None) => ClientError::NoAnswer,
        });
    }
    Response::parse(line)
}

/// Connects to `socket` and sends `request` (with `fds` attached): the
/// connection, for a client that reads a stream of answers (`log`,
/// `capture`). A daemon that answers before it reads (a connection over
/// the caller's cap) may make the send fail: the connection is returned
/// all the same, with the daemon's answer to read.
pub fn send(
    socket: &Path,
    request: &Request,
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> Result<StdUnixStream, ClientError> {
    connect_and_send(socket, request, fds).map(|(stream, _)| stream)
}

/// Connects and sends the request line with its fds. A send that failed
/// because the daemon already closed (it answers a connection over the
/// caller's cap at once) is not an error here but the second value: the
/// answer is still there to read.
fn connect_and_send(
    socket: &Path,
    request: &Request,
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> Result<(StdUnixStream, io::Result<()>), ClientError> {
    let stream = StdUnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.display().to_string(),
        source,
    })?;
    let line = request.to_line();
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(ClientError::Io(io::Error::other(
            "too many fds for one request",
        )));
    }
    match send_line(&stream, line.as_bytes(), &mut control) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok((stream, Err(e)))
        }
        Err(e) => Err(ClientError::Io(e)),
        Ok(()) => Ok((stream, Ok(()))),
    }
}

/// Sends `line` with the `control` messages (fds) on its first byte; the
/// rest of a long line follows.
fn send_line(
    stream: &StdUnixStream,
    line: &[u8],
    control: &mut SendAncillaryBuffer<'_, '_, '_>,
) -> io::Result<()> {
    let mut sent =
        rustix::net::sendmsg(stream, &[IoSlice::new(line)], control, SendFlags::empty())?;
    while sent < line.len() {
        sent += rustix::io::write(stream, &line[sent..])?;
    }
    Ok(())
}

/// A request as the daemon received it.
#[derive(Debug)]
pub struct Received {
    /// The parsed request, or why it could not be parsed.
    pub request: Result<Request, String>,
    /// File descriptors that came with it (`SCM_RIGHTS`), in order.
    pub fds: Vec<OwnedFd>,
}

/// Read one request line and the fds passed with it from a connection;
/// `None` when the client closed it without sending a byte (nothing to
/// answer).
pub async fn receive(stream: &tokio::net::UnixStream) -> io::Result<Option<Received>> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    let mut extra_fds = 0usize;
    let mut buf = [0u8; 4096];
    loop {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
        let n = stream
            .async_io(tokio::io::Interest::READABLE, || {
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let msg = rustix::net::recvmsg(
                    stream.as_fd(),
                    &mut [IoSliceMut::new(&mut buf)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )
                .map_err(io::Error::from)?;
                for m in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(rights) = m {
                        // Keep at most MAX_FDS: a client sending fds with
                        // every byte must not exhaust ours (the rest are
                        // closed as they drop here).
                        for fd in rights {
                            if fds.len() < MAX_FDS {
                                fds.push(fd);
                            } else {
                                extra_fds += 1;
                            }
                        }
                    }
                }
                Ok(msg.bytes)
            })
            .await?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&buf[..n]);
        if line.contains(&b'\n') {
            break;
        }
        if line.len() > MAX_REQUEST_LEN {
            return Ok(Some(Received {
                request: Err(format!("request longer than {MAX_REQUEST_LEN} bytes")),
                fds,
            }));
        }
    }
    if line.is_empty() && fds.is_empty() && extra_fds == 0 {
        return Ok(None);
    }
    let text = line.split(|b| *b == b'\n').next().unwrap_or_default();
    let request = if extra_fds > 0 {
        Err(format!("too many file descriptors (at most {MAX_FDS})"))
    } else {
        Request::parse(text)
    };
    Ok(Some(Received { request, fds }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_round_trip() {
        for r in [
            Request::Status {},
            Request::Dial {
                link: "labs".into(),
            },
            Request::Hangup {
                link: "labs".into(),
            },
            Request::Kick { session: 7 },
            Request::Direct {
                profile: "home".into(),
                ssh_client: None,
                ssh_client_port: None,
            },
            Request::Direct {
                profile: "home".into(),
                ssh_client: Some("192.0.2.1".into()),
                ssh_client_port: None,
            },
            Request::Capture {
                link: "labs".into(),
                count: Some(10),
            },
            Request::Log {
                follow: true,
                lines: Some(50),
            },
        ] {
            let line = r.to_line();
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            assert_eq!(Request::parse(line.trim_end().as_bytes()).unwrap(), r);
        }
        assert_eq!(
            Request::Direct {
                profile: "p".into(),
                ssh_client: None,
                ssh_client_port: None,
            }
            .to_line(),
            "{\"op\":\"direct\",\"profile\":\"p\",\"v\":1}\n"
        );
        let parse = |text: &str| Request::parse(text.as_bytes());
        assert!(parse("{\"v\":1,\"op\":\"status\",\"x\":1}")
            .unwrap_err()
            .contains("unknown field `x`"));
        assert!(parse("{\"op\":\"reboot\"}").is_err());
        assert_eq!(
            parse("{\"v\":1,\"op\":\"log\"}").unwrap(),
            Request::Log {
                follow: false,
                lines: None
            }
        );
        assert!(parse("[1]").unwrap_err().contains("not a JSON object"));
        assert!(parse("{\"v\":\"one\",\"op\":\"status\"}")
            .unwrap_err()
            .contains("not a version number"));
        // A forged log line in the claimed address is refused.
        assert!(
            parse("{\"op\":\"direct\",\"profile\":\"p\",\"ssh_client\":\"1.2.3.4\\nfake\"}")
                .unwrap_err()
                .contains("is not an IP address")
        );
        assert!(
            parse("{\"op\":\"direct\",\"profile\":\"p\",\"ssh_client\":\"2001:db8::1\"}").is_ok()
        );
    }

    #[test]
    fn versions_are_checked_both_ways() {
        // A request without "v" (a client from before versions) is version 1.
        assert_eq!(
            Request::parse(b"{\"op\":\"status\"}").unwrap(),
            Request::Status {}
        );
        // A newer client: a clear refusal naming both versions.
        let e = Request::parse(b"{\"v\":2,\"op\":\"status\",\"future\":true}").unwrap_err();
        assert!(
            e.contains("this daemon speaks control protocol version 1, the client 2"),
            "{e}"
        );
        // The client reads that refusal, marked with the daemon's version.
        let refusal = Response::Error { message: e }.to_line();
        assert!(Response::parse(refusal.trim_end().as_bytes()).is_ok());
        // A daemon from before versions refused our "v": the client says
        // the daemon is older, with the daemon's words.
        let old = b"{\"result\":\"error\",\"message\":\"malformed request: unknown field `v`\"}";
        let e = Response::parse(old).unwrap_err().to_string();
        assert!(
            e.contains("older control protocol (without versions"),
            "{e}"
        );
        assert!(e.contains("unknown field `v`"), "{e}");
        // A newer daemon's answer this client cannot read.
        let newer = b"{\"v\":9,\"result\":\"hologram\"}";
        let e = Response::parse(newer).unwrap_err().to_string();
        assert!(e.contains("version 9, this tsunagi 1"), "{e}");
    }

    #[test]
    fn response_lines_round_trip() {
        let st = LinkStatus {
            name: "labs".into(),
            mode: "dial".into(),
            phase: "network".into(),
            local: Some("10.0.0.1".into()),
            uptime_secs: Some(5),
            counters: Counters {
                rx_packets: 3,
                ..Counters::default()
            },
            ..LinkStatus::default()
        };
        for r in [
            Response::Status {
                servers: Vec::new(),
                ipsec: Vec::new(),
                links: vec![st],
                sessions: vec![SessionStatus {
                    id: 3,
                    profile: "vpn".into(),
                    user: Some("alice".into()),
                    peer_addr: Some("10.77.0.10".into()),
                    ..SessionStatus::default()
                }],
            },
            Response::Done {
                message: "ok".into(),
            },
            Response::Ended {
                reason: "peer terminated".into(),
                exit_code: 0,
            },
            Response::Refused {
                message: "no".into(),
            },
            Response::Error {
                message: "bad".into(),
            },
            Response::Log {
                line: "Dec  6 05:00:00 tsunagi[1]: labs: dialling".into(),
            },
            Response::Dropped { lines: 3 },
        ] {
            let line = r.to_line();
            assert_eq!(Response::parse(line.trim_end().as_bytes()).unwrap(), r);
        }
    }

    /// A control socket `s` listening in the scratch directory
    /// `$TMPDIR/tsunagi-<name>-<pid>` (made if missing): the directory, for
    /// the test to remove, the socket's path and the listener.
    fn listen_in_scratch_dir(
        name: &str,
    ) -> (
        std::path::PathBuf,
        std::path::PathBuf,
        tokio::net::UnixListener,
    ) {
        let dir = std::env::temp_dir().join(format!("tsunagi-{name}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("s");
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        (dir, path, listener)
    }

    #[tokio::test]
    async fn too_many_fds_are_closed_and_refused() {
        let (dir, path, listener) = listen_in_scratch_dir("ctl3");
        let server = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let got = receive(&conn).await.unwrap().unwrap();
            conn.writable().await.unwrap();
            let _ = conn.try_write(
                Response::Error {
                    message: "x".into(),
                }
                .to_line()
                .as_bytes(),
            );
            (got.fds.len(), got.request)
        });
        let (_r, w) = std::io::pipe().unwrap();
        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            let fds = [w.as_fd(), w.as_fd(), w.as_fd()];
            call(&p, &Request::Status {}, &fds[..])
        })
        .await
        .unwrap()
        .ok();
        let (kept, request) = server.await.unwrap();
        assert_eq!(kept, MAX_FDS);
        assert!(request.unwrap_err().contains("too many file descriptors"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A connection over the caller's cap is answered before its request
    /// is read, and closed: the client still reads the refusal, also when
    /// its send fails because of the close (a request longer than the
    /// socket's buffers cannot have gone before it).
    #[tokio::test]
    async fn an_answer_before_the_request_is_read() {
        let (dir, path, listener) = listen_in_scratch_dir("ctl-early");
        let refusal = Response::Refused {
            message: "16 control connections of this uid are open".into(),
        };
        let line = refusal.to_line();
        let server = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            rustix::io::write(&conn, line.as_bytes()).unwrap();
        });
        let request = Request::Direct {
            profile: "p".repeat(4 << 20),
            ssh_client: None,
            ssh_client_port: None,
        };
        let answer = tokio::task::spawn_blocking(move || call(&path, &request, &[]));
        assert_eq!(answer.await.unwrap().unwrap(), refusal);
        server.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn fds_travel_with_the_request() {
        let (dir, path, listener) = listen_in_scratch_dir("ctl");
        let server = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            let got = receive(&conn).await.unwrap().unwrap();
            let reply = Response::Done {
                message: format!("{} fds", got.fds.len()),
            };
            // Prove the fd is live: write through it.
            let f = std::fs::File::from(got.fds.into_iter().next().unwrap());
            std::io::Write::write_all(&mut &f, b"hi").unwrap();
            conn.writable().await.unwrap();
            conn.try_write(reply.to_line().as_bytes()).unwrap();
            got.request.unwrap()
        });
        let (mut r, w) = std::io::pipe().unwrap();
        let p = path.clone();
        let (answer, w) = tokio::task::spawn_blocking(move || {
            let a = call(
                &p,
                &Request::Direct {
                    profile: "x".into(),
                    ssh_client: None,
                    ssh_client_port: None,
                },
                &[w.as_fd(), w.as_fd()],
            )
            .unwrap();
            (a, w)
        })
        .await
        .unwrap();
        assert_eq!(
            answer,
            Response::Done {
                message: "2 fds".into()
            }
        );
        assert_eq!(
            server.await.unwrap(),
            Request::Direct {
                profile: "x".into(),
                ssh_client: None,
                ssh_client_port: None,
            }
        );
        drop(w);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut r, &mut s).unwrap();
        assert_eq!(s, "hi");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
