//! tsunagi: the daemon and the command line around the PPP engine.
//!
//! Modules, each importing only those listed before it:
//! - [`config`]: the TOML config and its validation (settings only);
//! - [`pool`]: address pools (pptpd's `localip`/`remoteip`);
//! - [`control`]: the control socket protocol (versioned JSON lines,
//!   `SCM_RIGHTS`);
//! - [`live_log`]: the last log lines and their followers (`tsunagi log`);
//! - [`capture`]: a profile's packets to pcap (`tsunagi capture`);
//! - [`users`], [`hooks`], [`logging`]: user names, ip-up/ip-down, log lines;
//! - [`auth`]: secrets and passwords read at start-up, the failure limiter;
//! - [`limits`]: what a local user may cost the daemon through the control
//!   socket (timeouts, rate-limited warnings);
//! - [`policy`]: `[policy]`, ipf/ipnat rules applied as nftables, ipmon lines;
//! - [`audit`]: the audit trail's records and sinks (file, syslog);
//! - [`session`]: one PPP instance's bookkeeping, status and end reason;
//! - [`registry`]: every profile and every live session;
//! - [`metrics`]: the Prometheus endpoint, from the registry's `status`;
//! - [`netconf`]: addresses, routes and hooks, in a task per session;
//! - [`transport`]: the tasks that carry sessions (the SSH byte stream of a
//!   site link; many sessions on one packet socket for a server);
//! - [`daemon`]: `tsunagi run`: supervisors, the control socket;
//! - [`probe`]: `tsunagi probe ike`, a one-shot IKEv1 proposal scan;
//! - [`console`]: `tsunagi console DEVICE`, a serial console like `cu -l`;
//! - [`import`]: `tsunagi import`, the seeds' configs into this config;
//! - [`cli`]: the subcommands.
//!
//! The network-namespace lab that shows and tests the gateway end to end
//! (seed 000's two sites) is not here: it is its own crate, `crates/lab`,
//! with its own binary `tsunagi-lab`, which runs this crate's binary.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod capture;
pub mod cli;
pub mod config;
pub mod console;
pub mod control;
pub mod daemon;
pub mod hooks;
pub mod import;
pub mod ipsec;
pub mod limits;
pub mod live_log;
pub mod logging;
pub mod metrics;
pub mod netconf;
pub mod policy;
pub mod pool;
pub mod probe;
pub mod registry;
pub mod reload;
pub mod servers;
pub mod session;
pub mod transport;
pub mod users;
