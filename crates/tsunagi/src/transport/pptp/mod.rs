//! PPTP (RFC 2637) for the daemon, over the sans-IO engines of
//! `tsunagi-pptp`: the client of a `mode = "pptp"` link ([`client`]) and
//! the port of a `protocol = "pptp"` server ([`server`]), which share the
//! GRE data path ([`gre_path`]).
//!
//! PPTP's protection is weak (MS-CHAPv2, MPPE's RC4 without integrity):
//! it runs because the clients deployed and the seeds use it, only when
//! configured, and the daemon says so at start-up.

pub mod client;
pub mod gre_path;
pub mod server;

/// PPTP's control port (RFC 2637 section 1.3; IANA "pptp", 1723/tcp).
pub const PPTP_PORT: u16 = 1723;

/// This host's name for Start-Control-Connection-Request/-Reply (pptpd and
/// pptp-linux send theirs; the peer only logs it).
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}
