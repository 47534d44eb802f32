//! IPsec in the daemon (issue 13): `[ipsec.NAME]` connections driven by
//! the sans-IO IKEv1 engine and ESP of crates/ipsec.
//!
//! - [`secrets`]: ipsec.secrets(5) pre-shared keys;
//! - [`datapath`]: the SAs installed, sealing and opening with the
//!   selector checks, drops by kind;
//! - [`engine`]: every call into the IKE engine;
//! - [`status`]: `tsunagi status`, the way `ipsec statusall` shows SAs;
//! - [`transport_path`]: transport mode for the host's own traffic
//!   (policy routing into a tun, split and rebuilt segments);
//! - [`driver`]: the task with the sockets, tuns, routes and holes;
//! - [`bridge`]: L2TP/IPsec, the conn under an L2TP link or server.

pub mod bridge;
pub mod datapath;
pub mod driver;
pub mod engine;
pub mod secrets;
pub mod status;
pub mod transport_path;
