//! IPsec in the daemon.

pub mod secrets;
