//! tsunagi: the daemon and the command line around the PPP engine.
//!
//! - [`auth`]: secrets and passwords read at start-up, the failure limiter;
//! - [`config`]: the TOML config and its validation;
//! - [`control`]: the control socket protocol (JSON lines, `SCM_RIGHTS`);
//! - [`daemon`]: `tsunagi run`, one supervisor task per link;
//! - [`driver`]: the I/O loop of one PPP session (stream <-> engine <-> tun);
//! - [`hooks`]: ip-up / ip-down;
//! - [`cli`]: the subcommands;
//! - [`policy`]: `[policy]`, ipf/ipnat rules applied as nftables, ipmon lines.
//!
//! The network-namespace lab that shows and tests the gateway end to end
//! (seed 000's two sites) is not here: it is its own crate, `crates/lab`,
//! with its own binary `tsunagi-lab`, which runs this crate's binary.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod driver;
pub mod hooks;
pub mod logging;
pub mod policy;
pub mod pool;
pub mod users;
