//! `tsunagi probe ike HOST`: which IKEv1 Phase 1 proposals a responder
//! accepts, and its Vendor IDs, as seed 002 asks ike-scan before writing
//! `ike=3des-sha1-modp1024!`.
//!
//! The messages and their reading are tsunagi-ipsec's
//! ([`tsunagi_ipsec::probe`]); this is the socket: one UDP socket
//! connected to HOST:PORT, one proposal at a time, each sent again after
//! every `--timeout` without an answer, `--retries` times, then "no
//! answer". Answers are matched by Initiator Cookie, so a late answer to
//! an earlier proposal is not taken for the current one.
//!
//! The source port is an ephemeral one unless `--source-port` says
//! otherwise, so a local IKE daemon holding port 500 need not be stopped
//! (seed 002 stops strongSwan before running ike-scan).

use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use tsunagi_crypto::OsRandom;
use tsunagi_ipsec::isakmp::proposal::{Kind, Proposals};
use tsunagi_ipsec::probe::{Offer, Outcome, Probe, Reading, VendorIds, DEFAULT_PROPOSALS};

/// Exit status when a proposal was accepted.
pub const EXIT_ACCEPTED: i32 = 0;
/// Exit status when none was.
pub const EXIT_NONE_ACCEPTED: i32 = 1;
/// Exit status for a bad command line or a network error.
pub const EXIT_ERROR: i32 = 2;

/// The largest datagram read (an MM2 with a dozen Vendor IDs is a few
/// hundred octets; a 64 KiB buffer takes whatever comes).
const MAX_DATAGRAM: usize = 65_535;

/// `tsunagi probe ike` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct IkeArgs {
    /// The responder: a name or an address.
    pub host: String,
    /// Its IKE port.
    #[arg(long, default_value_t = 500)]
    pub port: u16,
    /// strongSwan proposal syntax, one probe per combination
    /// (default: 3des/aes128/aes256 x sha1/sha256/sha384 x
    /// modp1024/modp2048/ecp256).
    #[arg(long, value_name = "LIST")]
    pub proposals: Option<String>,
    /// Seconds to wait for an answer after each send.
    #[arg(long, value_name = "S", default_value_t = 1.0)]
    pub timeout: f64,
    /// Sends after the first before a proposal counts as "no answer".
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Local UDP port to send from (default: an ephemeral one).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub source_port: u16,
}

/// Runs `tsunagi probe ike`; returns the exit status.
pub fn ike(args: &IkeArgs) -> i32 {
    match run(args, &mut std::io::stdout()) {
        Ok(true) => EXIT_ACCEPTED,
        Ok(false) => EXIT_NONE_ACCEPTED,
        Err(e) => {
            eprintln!("tsunagi probe ike: {e}");
            EXIT_ERROR
        }
    }
}

/// Probes, writing a line per proposal and then the Vendor IDs to `out`;
/// whether any proposal was accepted.
pub fn run(args: &IkeArgs, out: &mut dyn Write) -> Result<bool, String> {
    let text = args.proposals.as_deref().unwrap_or(DEFAULT_PROPOSALS);
    let proposals = Proposals::parse(text, Kind::Ike).map_err(|e| format!("--proposals: {e}"))?;
    let offers = Offer::all(&proposals);
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        return Err(format!(
            "--timeout {}: seconds, more than 0 and at most 3600",
            args.timeout
        ));
    }
    let wait = Duration::from_secs_f64(args.timeout);
    let remote = resolve(&args.host, args.port)?;
    let local = SocketAddr::new(
        match remote.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        },
        args.source_port,
    );
    let socket = UdpSocket::bind(local).map_err(|e| format!("bind {local}: {e}"))?;
    // Connected: the kernel drops datagrams from anyone else, and an ICMP
    // port unreachable comes back as an error on the next receive.
    socket
        .connect(remote)
        .map_err(|e| format!("connect {remote}: {e}"))?;
    let random = OsRandom::handle();
    let mut vendor_ids = VendorIds::default();
    let mut any_accepted = false;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    for offer in offers {
        let probe = Probe::new(offer, random.as_ref());
        let outcome = exchange(&socket, remote, &probe, wait, args.retries, &mut buf)?;
        if let Some(answer) = &outcome {
            vendor_ids.add(&answer.vendor_ids);
        }
        let outcome = outcome.map_or(Outcome::NoAnswer, |a| a.outcome);
        any_accepted |= matches!(outcome, Outcome::Accepted { .. });
        writeln!(out, "{offer}: {outcome}").map_err(|e| format!("stdout: {e}"))?;
        out.flush().map_err(|e| format!("stdout: {e}"))?;
    }
    writeln!(out, "vendor IDs: {vendor_ids}").map_err(|e| format!("stdout: {e}"))?;
    Ok(any_accepted)
}

/// The first address HOST:PORT resolves to.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    // An IPv6 literal without brackets is an address, not host:port.
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}: no address"))
}

/// Sends `probe` and waits for its answer, `1 + retries` times at most.
fn exchange(
    socket: &UdpSocket,
    remote: SocketAddr,
    probe: &Probe,
    wait: Duration,
    retries: u32,
    buf: &mut [u8],
) -> Result<Option<tsunagi_ipsec::probe::Answer>, String> {
    let datagram = probe.datagram();
    for _ in 0..=retries {
        socket
            .send(&datagram)
            .map_err(|e| network_error(remote, "send", &e))?;
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|e| format!("socket: {e}"))?;
            let n = match socket.recv(buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(network_error(remote, "receive", &e)),
            };
            match probe.interpret(&buf[..n]) {
                Reading::Answer(answer) => return Ok(Some(answer)),
                Reading::NotOurs => {}
                Reading::Malformed(e) => {
                    eprintln!("{remote}: ignoring a datagram of {n} octets: {e}");
                }
            }
        }
    }
    Ok(None)
}

fn network_error(remote: SocketAddr, what: &str, e: &std::io::Error) -> String {
    if e.kind() == ErrorKind::ConnectionRefused {
        format!("{remote}: port unreachable (ICMP): no IKE responder there")
    } else {
        format!("{what} {remote}: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(host: &str) -> IkeArgs {
        IkeArgs {
            host: host.into(),
            port: 500,
            proposals: None,
            timeout: 1.0,
            retries: 0,
            source_port: 0,
        }
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_is_sent() {
        let mut a = args("127.0.0.1");
        a.proposals = Some("3des-sha1".into());
        let e = run(&a, &mut Vec::new()).unwrap_err();
        assert!(
            e.contains("--proposals") && e.contains("no DH group"),
            "{e}"
        );
        let mut a = args("127.0.0.1");
        a.timeout = 0.0;
        let e = run(&a, &mut Vec::new()).unwrap_err();
        assert!(e.contains("--timeout"), "{e}");
    }

    #[test]
    fn addresses_resolve_without_a_lookup() {
        assert_eq!(
            resolve("::1", 500).unwrap(),
            "[::1]:500".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            resolve("192.0.2.1", 4500).unwrap(),
            "192.0.2.1:4500".parse::<SocketAddr>().unwrap()
        );
    }
}
