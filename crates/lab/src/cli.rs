//! The `tsunagi-lab` command line: the subcommands and their flags.

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::tcp::{tcp_send, tcp_serve, TcpSendArgs, TcpServeArgs};
use crate::{Binaries, Lab, DEFAULT_PREFIX, TSUNAGI_BIN_ENV};

/// `tsunagi-lab ...`: seed 000's HOME and Labs sites in network namespaces,
/// linked by the tsunagi gateway's PPP over SSH.
#[derive(Debug, Parser)]
#[command(name = "tsunagi-lab", version, about)]
pub struct LabArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// The lab's subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build seed 000's HOME and Labs sites in network namespaces and bring
    /// the PPP over SSH link up between their gateways.
    Up(UpArgs),
    /// Ping and move TCP data between the two LANs through the tunnel.
    Check(CheckArgs),
    /// Remove everything `up` created (idempotent).
    Down(LabTarget),
    /// Show what the lab consists of and both daemons' status.
    Status(LabTarget),
    /// Accept one TCP connection, read it to the end, print bytes and digest.
    TcpServe(TcpServeArgs),
    /// Send a deterministic byte stream over TCP, print bytes and digest.
    TcpSend(TcpSendArgs),
}

/// Which lab.
#[derive(Debug, Args, Clone)]
pub struct LabTarget {
    /// Prefix of the namespace names (letters, digits, '-'; at most 12).
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub prefix: String,
}

/// `tsunagi-lab up`
#[derive(Debug, Args, Clone)]
pub struct UpArgs {
    /// Which lab.
    #[command(flatten)]
    pub target: LabTarget,
    /// The gateway binary the daemons run [default: `tsunagi` beside this
    /// executable].
    #[arg(long, env = TSUNAGI_BIN_ENV, value_name = "PATH")]
    pub tsunagi: Option<PathBuf>,
}

/// `tsunagi-lab check`
#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// Which lab.
    #[command(flatten)]
    pub target: LabTarget,
    /// Bytes to move HOME host -> Labs host.
    #[arg(long, default_value_t = 10_000_000)]
    pub bytes: u64,
}

/// Entry point of `tsunagi-lab`.
pub fn run(args: LabArgs) -> Result<()> {
    match args.command {
        LabCommand::Up(u) => {
            let lab = Lab::new(&u.target.prefix)?;
            require_root()?;
            lab.up(&Binaries::locate(u.tsunagi)?)
        }
        LabCommand::Check(c) => {
            let lab = Lab::new(&c.target.prefix)?;
            require_root()?;
            lab.check(c.bytes)
        }
        LabCommand::Down(t) => {
            let lab = Lab::new(&t.prefix)?;
            require_root()?;
            lab.down()
        }
        LabCommand::Status(t) => {
            let lab = Lab::new(&t.prefix)?;
            lab.status()
        }
        LabCommand::TcpServe(a) => tcp_serve(&a).map(|_| ()),
        LabCommand::TcpSend(a) => tcp_send(&a).map(|_| ()),
    }
}

fn require_root() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("tsunagi-lab must run as root (it creates network namespaces and an account)");
    }
    Ok(())
}
