//! IPsec in the daemon.

pub mod datapath;
pub mod secrets;
