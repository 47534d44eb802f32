//! The Prometheus endpoint: `GET /metrics` on `[daemon] metrics_listen`,
//! in the text exposition format 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
//!
//! Everything comes from the registry's `status` answer (the one source
//! of truth `tsunagi status` shows too) and from what ended sessions left
//! in the registry ([`crate::registry::Ended`]): a profile's byte and
//! error counters are its live sessions' plus its ended sessions', so they
//! never go down when a session ends.
//!
//! The HTTP side is a small responder of our own (RFC 9112 request line
//! and headers only, no body, `Connection: close`): a request head larger
//! than [`MAX_REQUEST`] or slower than [`REQUEST_TIMEOUT`] is answered
//! with an error and closed, and at most [`MAX_CONNECTIONS`] are served at
//! once, so that the endpoint cannot be used to hold the daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, error, info, warn};

use crate::control::{Counters, Response};
use crate::registry::{add_counters, Ended, Registry};

/// The largest request head read (request line and headers).
pub const MAX_REQUEST: usize = 8192;
/// How long a client gets to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long writing the answer may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 8;
/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Starts the endpoint on `listen` (nothing when `None`) in a task of its
/// own. A bind failure is logged as an error; the daemon runs on without
/// metrics.
pub fn spawn(listen: Option<SocketAddr>, registry: Registry) {
    let Some(addr) = listen else {
        return;
    };
    if !addr.ip().is_loopback() {
        warn!(
            "metrics: listening on {addr}, not a loopback address: anyone who reaches it sees every session's user and counters"
        );
    }
    tokio::spawn(async move {
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                error!("metrics: cannot listen on {addr}: {e}; no metrics");
                return;
            }
        };
        info!("metrics: serving http://{addr}/metrics");
        serve(listener, registry).await;
    });
}

/// Accepts connections on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, registry: Registry) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: wait rather than spin.
                warn!("metrics: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            debug!("metrics: {peer}: too many connections; closed");
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            handle(stream, &registry).await;
            drop(permit);
        });
    }
}

/// What a request head asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (or `HEAD`): the exposition.
    Metrics {
        /// Only the headers (HEAD).
        head: bool,
    },
    /// Another path: 404.
    NotFound,
    /// Another method: 405.
    MethodNotAllowed,
    /// Not an HTTP/1.x request line: 400.
    BadRequest,
    /// The head is longer than [`MAX_REQUEST`]: 431.
    TooLarge,
}

/// The route of a request head (the bytes up to and including the blank
/// line, or what came of it).
pub fn route(head: &[u8]) -> Route {
    let Some(end) = head.windows(2).position(|w| w == b"\r\n") else {
        return if head.len() >= MAX_REQUEST {
            Route::TooLarge
        } else {
            Route::BadRequest
        };
    };
    let Ok(line) = std::str::from_utf8(&head[..end]) else {
        return Route::BadRequest;
    };
    let mut words = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || target.is_empty() {
        return Route::BadRequest;
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::MethodNotAllowed,
    };
    let path = target.split('?').next().unwrap_or_default();
    if path == "/metrics" {
        Route::Metrics { head: head_only }
    } else {
        Route::NotFound
    }
}

/// The whole response for `status` and `body`.
pub fn response(status: &str, content_type: &str, body: &str, head: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Reads the request head: up to the blank line, [`MAX_REQUEST`] bytes at
/// most.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    head.truncate(MAX_REQUEST);
    Ok(head)
}

/// Answers one request and closes the connection.
async fn handle(mut stream: TcpStream, registry: &Registry) {
    let head = match tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(head)) => head,
        Ok(Err(_)) => return,
        Err(_) => {
            let answer = response("408 Request Timeout", "text/plain", "timeout\n", false);
            let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&answer)).await;
            return;
        }
    };
    let answer = match route(&head) {
        Route::Metrics { head } => {
            let body = scrape(registry).await;
            response("200 OK", CONTENT_TYPE, &body, head)
        }
        Route::NotFound => response("404 Not Found", "text/plain", "try /metrics\n", false),
        Route::MethodNotAllowed => {
            response("405 Method Not Allowed", "text/plain", "GET only\n", false)
        }
        Route::BadRequest => response("400 Bad Request", "text/plain", "bad request\n", false),
        Route::TooLarge => response(
            "431 Request Header Fields Too Large",
            "text/plain",
            "request too large\n",
            false,
        ),
    };
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
}

/// The exposition, read now.
pub async fn scrape(registry: &Registry) -> String {
    let status = registry.status().await;
    // After the status: a session in both is counted once, from `ended`.
    let (ended, recent) = registry.ended();
    let audit_errors = registry.audit().map_or(0, |a| a.errors());
    exposition(&status, &ended, &recent, audit_errors)
}

/// A label value escaped as the format asks (`\\`, `\"`, `\n`).
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Builds the exposition: families in a fixed order, each with its HELP
/// and TYPE lines once, then its samples.
struct Families {
    families: Vec<(String, &'static str, &'static str, Vec<String>)>,
}

impl Families {
    fn new() -> Families {
        Families {
            families: Vec::new(),
        }
    }

    fn add(
        &mut self,
        name: &str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: u64,
    ) {
        let mut sample = name.to_string();
        if !labels.is_empty() {
            sample.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    sample.push(',');
                }
                let _ = write!(sample, "{k}=\"{}\"", label(v));
            }
            sample.push('}');
        }
        let _ = write!(sample, " {value}");
        match self.families.iter_mut().find(|f| f.0 == name) {
            Some(f) => f.3.push(sample),
            None => self
                .families
                .push((name.to_string(), kind, help, vec![sample])),
        }
    }

    fn finish(self) -> String {
        let mut out = String::new();
        for (name, kind, help, samples) in self.families {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in samples {
                out.push_str(&s);
                out.push('\n');
            }
        }
        out
    }
}

/// The counters of [`Counters`] that count errors, by kind.
fn error_kinds(c: &Counters) -> [(&'static str, u64); 6] {
    [
        ("bad_fcs", c.rx_bad_fcs),
        ("malformed", c.rx_malformed),
        ("unknown_protocol", c.rx_unknown_protocol),
        ("bad_control", c.rx_bad_control),
        ("control_dropped_in", c.rx_control_dropped),
        ("control_dropped_out", c.tx_control_dropped),
    ]
}

/// The protocol a site link's mode means.
fn link_protocol(mode: &str) -> &str {
    match mode {
        "dial" => "ssh",
        other => other,
    }
}

/// The exposition of a `status` answer and of what ended sessions left
/// (`recent`: ids of sessions whose counters `ended` already has).
pub fn exposition(
    status: &Response,
    ended: &BTreeMap<String, Ended>,
    recent: &[u64],
    audit_errors: u64,
) -> String {
    let mut f = Families::new();
    let Response::Status {
        links,
        sessions,
        servers,
        ipsec,
    } = status
    else {
        return String::new();
    };
    // Every profile, with its protocol.
    let mut protocols: BTreeMap<&str, &str> = BTreeMap::new();
    for l in links {
        protocols.insert(&l.name, link_protocol(&l.mode));
    }
    for s in servers {
        protocols.insert(&s.name, &s.protocol);
    }
    for name in ended.keys() {
        protocols.entry(name).or_insert("ppp");
    }
    for s in sessions {
        protocols.entry(&s.profile).or_insert("ppp");
    }
    let recent: BTreeSet<u64> = recent.iter().copied().collect();
    let mut totals: BTreeMap<&str, Counters> = protocols
        .keys()
        .map(|p| {
            (
                *p,
                ended
                    .get(*p)
                    .map(|e| e.counters.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let mut live: BTreeMap<&str, u64> = protocols.keys().map(|p| (*p, 0)).collect();
    let mut by_protocol: BTreeMap<&str, u64> = protocols.values().map(|p| (*p, 0)).collect();
    for s in sessions {
        *live.entry(&s.profile).or_default() += 1;
        *by_protocol
            .entry(protocols.get(s.profile.as_str()).copied().unwrap_or("ppp"))
            .or_default() += 1;
        if !recent.contains(&s.id) {
            add_counters(totals.entry(&s.profile).or_default(), &s.counters);
        }
    }
    for (profile, c) in &totals {
        let protocol = protocols.get(profile).copied().unwrap_or("ppp");
        let l = |dir| {
            [
                ("profile", *profile),
                ("protocol", protocol),
                ("direction", dir),
            ]
        };
        f.add(
            "tsunagi_profile_bytes_total",
            "counter",
            "IP bytes carried by a link or server's sessions, live and ended (in: from the peers).",
            &l("in"),
            c.rx_bytes,
        );
        f.add(
            "tsunagi_profile_bytes_total",
            "counter",
            "",
            &l("out"),
            c.tx_bytes,
        );
        f.add(
            "tsunagi_profile_packets_total",
            "counter",
            "IP packets carried by a link or server's sessions, live and ended.",
            &l("in"),
            c.rx_packets,
        );
        f.add(
            "tsunagi_profile_packets_total",
            "counter",
            "",
            &l("out"),
            c.tx_packets,
        );
        for (kind, n) in error_kinds(c) {
            f.add(
                "tsunagi_profile_errors_total",
                "counter",
                "Frames a link or server's sessions dropped, by kind.",
                &[("profile", profile), ("kind", kind)],
                n,
            );
        }
    }
    for profile in protocols.keys() {
        let e = ended.get(*profile).cloned().unwrap_or_default();
        f.add(
            "tsunagi_profile_auth_failures_total",
            "counter",
            "Sessions ended by an authentication failure (either way, or held off).",
            &[("profile", profile)],
            e.auth_failures,
        );
        f.add(
            "tsunagi_profile_negotiation_failures_total",
            "counter",
            "Sessions ended by a negotiation that did not converge (LCP, IPCP, CCP/MPPE, loopback, no address).",
            &[("profile", profile)],
            e.negotiation_failures,
        );
        for (kind, n) in &e.by_kind {
            f.add(
                "tsunagi_profile_session_ends_total",
                "counter",
                "Sessions ended, by why (the audit trail's kind).",
                &[("profile", profile), ("kind", kind)],
                *n,
            );
        }
        f.add(
            "tsunagi_profile_sessions",
            "gauge",
            "Live sessions of a link or server.",
            &[("profile", profile)],
            live.get(profile).copied().unwrap_or(0),
        );
    }
    for (protocol, n) in &by_protocol {
        f.add(
            "tsunagi_sessions",
            "gauge",
            "Live sessions by protocol.",
            &[("protocol", protocol)],
            *n,
        );
    }
    for l in links {
        f.add(
            "tsunagi_link_up",
            "gauge",
            "1 while a site link's PPP is in the network phase.",
            &[("link", &l.name)],
            u64::from(l.phase == "network"),
        );
        f.add(
            "tsunagi_link_redials_total",
            "counter",
            "Sessions of a site link after its first.",
            &[("link", &l.name)],
            l.redials,
        );
    }
    for s in sessions {
        let id = s.id.to_string();
        let user = s.user.as_deref().unwrap_or("");
        let base = [
            ("profile", s.profile.as_str()),
            ("id", id.as_str()),
            ("user", user),
        ];
        let with = |k: &'static str, v: &'static str| {
            let mut l = base.to_vec();
            l.push((k, v));
            l
        };
        let c = &s.counters;
        f.add(
            "tsunagi_session_bytes_total",
            "counter",
            "IP bytes of a live session (in: from the peer).",
            &with("direction", "in"),
            c.rx_bytes,
        );
        f.add(
            "tsunagi_session_bytes_total",
            "counter",
            "",
            &with("direction", "out"),
            c.tx_bytes,
        );
        f.add(
            "tsunagi_session_packets_total",
            "counter",
            "IP packets of a live session.",
            &with("direction", "in"),
            c.rx_packets,
        );
        f.add(
            "tsunagi_session_packets_total",
            "counter",
            "",
            &with("direction", "out"),
            c.tx_packets,
        );
        for (kind, n) in error_kinds(c) {
            f.add(
                "tsunagi_session_errors_total",
                "counter",
                "Frames a live session dropped, by kind.",
                &with("kind", kind),
                n,
            );
        }
        f.add(
            "tsunagi_session_connected_seconds",
            "gauge",
            "Seconds since a live session started.",
            &base,
            s.connected_secs,
        );
    }
    for s in servers {
        let l = [
            ("server", s.name.as_str()),
            ("protocol", s.protocol.as_str()),
        ];
        f.add(
            "tsunagi_pool_addresses",
            "gauge",
            "Addresses in a server's pool.",
            &l,
            s.pool_size as u64,
        );
        f.add(
            "tsunagi_pool_addresses_used",
            "gauge",
            "Addresses of a server's pool in use.",
            &l,
            s.pool_size.saturating_sub(s.pool_free) as u64,
        );
        for (name, n) in &s.counters {
            f.add(
                "tsunagi_server_events_total",
                "counter",
                "What a server counted that belongs to no session, by name.",
                &[("server", &s.name), ("counter", name)],
                *n,
            );
        }
    }
    for c in ipsec {
        f.add(
            "tsunagi_ipsec_ike_sas",
            "gauge",
            "IKE SAs of an IPsec connection.",
            &[("conn", &c.name)],
            c.ike_sas.len() as u64,
        );
        f.add(
            "tsunagi_ipsec_child_sas",
            "gauge",
            "IPsec SA pairs of an IPsec connection.",
            &[("conn", &c.name)],
            c.child_sas.len() as u64,
        );
    }
    f.add(
        "tsunagi_audit_write_errors_total",
        "counter",
        "Audit records a sink (file, syslog) failed to take.",
        &[],
        audit_errors,
    );
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{LinkStatus, ServerStatus, SessionStatus};

    #[test]
    fn routes() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Route::Metrics { head: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"GET  /metrics HTTP/1.1\r\n\r\n"), Route::BadRequest);
        assert_eq!(route(b"\x16\x03\x01\x02\x00\x01\x00"), Route::BadRequest);
        assert_eq!(route(b""), Route::BadRequest);
        assert_eq!(route(&[b'A'; MAX_REQUEST]), Route::TooLarge);
        let answer = response("404 Not Found", "text/plain", "no\n", false);
        assert_eq!(
            answer,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno\n"
        );
        assert!(response("200 OK", CONTENT_TYPE, "abc", true).ends_with(b"\r\n\r\n"));
    }

    #[tokio::test]
    async fn responder_answers_and_refuses_over_tcp() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, Registry::new()));
        let ask = |req: Vec<u8>| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&req).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = ask(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()).await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains(CONTENT_TYPE));
        assert!(
            ok.contains("\ntsunagi_audit_write_errors_total 0\n"),
            "{ok}"
        );
        let bad = ask(b"hello\r\n\r\n".to_vec()).await;
        assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
        let big = ask(vec![b'G'; MAX_REQUEST + 100]).await;
        assert!(big.starts_with("HTTP/1.1 431 "), "{big}");
        let post = ask(b"POST /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        task.abort();
    }

    #[test]
    fn exposition_of_a_status() {
        let status = Response::Status {
            links: vec![LinkStatus {
                name: "labs".into(),
                mode: "dial".into(),
                phase: "network".into(),
                ..LinkStatus::default()
            }],
            sessions: vec![
                SessionStatus {
                    id: 3,
                    profile: "labs".into(),
                    counters: Counters {
                        rx_bytes: 100,
                        tx_bytes: 200,
                        rx_packets: 1,
                        tx_packets: 2,
                        rx_bad_fcs: 4,
                        ..Counters::default()
                    },
                    ..SessionStatus::default()
                },
                SessionStatus {
                    id: 9,
                    profile: "vpn".into(),
                    user: Some("ev\"il\\\nname".into()),
                    counters: Counters {
                        rx_bytes: 5,
                        ..Counters::default()
                    },
                    ..SessionStatus::default()
                },
                // Ended since status was read: counted from `ended`.
                SessionStatus {
                    id: 8,
                    profile: "vpn".into(),
                    counters: Counters {
                        rx_bytes: 1000,
                        ..Counters::default()
                    },
                    ..SessionStatus::default()
                },
            ],
            servers: vec![ServerStatus {
                name: "vpn".into(),
                protocol: "pptp".into(),
                pool_size: 10,
                pool_free: 8,
                ..ServerStatus::default()
            }],
            ipsec: Vec::new(),
        };
        let mut ended = BTreeMap::new();
        ended.insert(
            "vpn".to_string(),
            Ended {
                by_kind: [("auth-failed", 2), ("peer-terminated", 1)].into(),
                auth_failures: 2,
                negotiation_failures: 0,
                counters: Counters {
                    rx_bytes: 1010,
                    ..Counters::default()
                },
            },
        );
        let text = exposition(&status, &ended, &[8], 1);
        let has = |line: &str| {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            )
        };
        has("# TYPE tsunagi_profile_bytes_total counter");
        has("tsunagi_profile_bytes_total{profile=\"labs\",protocol=\"ssh\",direction=\"in\"} 100");
        has("tsunagi_profile_bytes_total{profile=\"labs\",protocol=\"ssh\",direction=\"out\"} 200");
        // 1010 ended (session 8 among them) + 5 live.
        has("tsunagi_profile_bytes_total{profile=\"vpn\",protocol=\"pptp\",direction=\"in\"} 1015");
        has("tsunagi_profile_errors_total{profile=\"labs\",kind=\"bad_fcs\"} 4");
        has("tsunagi_profile_auth_failures_total{profile=\"vpn\"} 2");
        has("tsunagi_profile_auth_failures_total{profile=\"labs\"} 0");
        has("tsunagi_profile_session_ends_total{profile=\"vpn\",kind=\"auth-failed\"} 2");
        has("tsunagi_sessions{protocol=\"pptp\"} 2");
        has("tsunagi_sessions{protocol=\"ssh\"} 1");
        has("tsunagi_link_up{link=\"labs\"} 1");
        has("tsunagi_session_bytes_total{profile=\"vpn\",id=\"9\",user=\"ev\\\"il\\\\\\nname\",direction=\"in\"} 5");
        has("tsunagi_pool_addresses{server=\"vpn\",protocol=\"pptp\"} 10");
        has("tsunagi_pool_addresses_used{server=\"vpn\",protocol=\"pptp\"} 2");
        has("tsunagi_audit_write_errors_total 1");
        // Each family's HELP and TYPE once, before its samples.
        assert_eq!(
            text.matches("# TYPE tsunagi_session_bytes_total ").count(),
            1
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<u64>().is_ok(), "{line}");
        }
    }
}
