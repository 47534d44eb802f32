//! L2TP (RFC 2661) for the daemon, over the sans-IO engine of
//! `tsunagi-l2tp`: the LAC of a `mode = "l2tp"` link ([`client`], what
//! xl2tpd's `[lac]` does) and the port of a `protocol = "l2tp"` server
//! ([`server`], xl2tpd's `[lns]`).
//!
//! Both carry PPP frames in L2TP data messages on UDP 1701, without HDLC
//! (there is no serial line to frame for): the PPP engine runs on packet
//! framing, and the L2TP header is written in the headroom before each
//! frame ([`tsunagi_l2tp::DATA_HEADROOM`]). L2TP itself encrypts nothing;
//! without IPsec under it the sessions cross the network in clear (the
//! daemon says so at start-up).

use tsunagi_l2tp::{Role, TunnelConfig};

use crate::config::L2tpSettings;

pub mod client;
pub mod server;

/// The UDP receive buffer asked for: room for the bursts between two
/// wake-ups of a busy server.
pub const UDP_RCVBUF: usize = 4 << 20;

/// The tunnel engine's configuration for `role` with a profile's L2TP
/// keys (secret, HELLO, Length bit); the rest is the engine's defaults
/// (xl2tpd's timers, RFC 2661's retransmission).
pub fn tunnel_config(role: Role, settings: &L2tpSettings) -> TunnelConfig {
    TunnelConfig {
        host_name: crate::transport::pptp::host_name(),
        vendor_name: "tsunagi".to_string(),
        secret: settings.secret.clone(),
        hello_interval: settings.hello_interval,
        data_length_bit: settings.length_bit,
        ..TunnelConfig::new(role)
    }
}
