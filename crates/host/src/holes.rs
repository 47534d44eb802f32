//! The holes of this host's servers (seed 004 had to open TCP 1723 and GRE
//! by hand with iptables), applied with `nft` in the calling thread's
//! network namespace: the chain and documents are
//! [`tsunagi_policy::holes`]'s, this module decides which document a change
//! needs and keeps the holes across policy start and stop.
//!
//! | state | holes live in | a change is |
//! |---|---|---|
//! | no policy applied ([`HoleMode::Standalone`]) | table `inet tsunagi` made for them when the first opens, deleted when the last closes | the services chain replaced in one transaction |
//! | a policy applied ([`HoleMode::Policy`]) | the policy's services chain | the same |
//! | stopped ([`HoleMode::Stopped`]) | nowhere: nothing is applied any more | bookkeeping only |
//!
//! - [`HoleSet::apply_policy`] applies a policy *with* the holes open at
//!   that moment, in one transaction: replacing the table does not close
//!   them, not even for one packet.
//! - [`HoleSet::policy_stopped`]: without `keep_on_exit` the tables go and
//!   the holes with them; with it the tables stay but the services chain is
//!   emptied first, so a kept filter never keeps a stopped server's holes
//!   open.
//! - [`HoleSet::shutdown`] removes a table made for holes alone.
//! - If table `inet tsunagi` already exists when the first hole opens
//!   without a policy (kept by an earlier run with `keep_on_exit`), it is
//!   left as it is and the holes go into its services chain (its `in` chain
//!   jumps there if this version compiled it), which is emptied, not
//!   deleted, when the last one closes: a filter kept on purpose is not
//!   thrown away for a hole.

use std::io;

use tsunagi_policy::compile::{Counter, FILTER_TABLE};
use tsunagi_policy::holes::{standalone, standalone_removal, update, COUNTER_PREFIX};
pub use tsunagi_policy::holes::{Hole, HoleProtocol, OpenHoles};
use tsunagi_policy::parse_counters;

use crate::nft;
use crate::policy_apply::{remove, LoadedPolicy};

/// Where the holes are applied; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoleMode {
    /// No policy applied: holes in a table of their own while any is open.
    Standalone,
    /// A policy is applied: holes in its services chain.
    Policy,
    /// The policy (or the daemon) has stopped: nothing is applied.
    Stopped,
}

/// The open holes by server, and where they are applied.
#[derive(Debug)]
pub struct HoleSet {
    open: OpenHoles,
    mode: HoleMode,
    /// Standalone: table `inet tsunagi` was made by us for the holes.
    own_table: bool,
}

impl Default for HoleSet {
    fn default() -> HoleSet {
        HoleSet::new()
    }
}

impl HoleSet {
    /// No holes, no policy.
    pub fn new() -> HoleSet {
        HoleSet {
            open: OpenHoles::new(),
            mode: HoleMode::Standalone,
            own_table: false,
        }
    }

    /// The holes open now, by server.
    pub fn open_holes(&self) -> &OpenHoles {
        &self.open
    }

    /// Where they are applied.
    pub fn mode(&self) -> HoleMode {
        self.mode
    }

    /// Give `server` exactly `holes` (what it had before is replaced; an
    /// empty list closes them all), in one `nft` transaction. On error
    /// nothing changed, in the kernel or here.
    pub fn open(&mut self, server: &str, holes: &[Hole]) -> io::Result<()> {
        let mut after = self.open.clone();
        if holes.is_empty() {
            after.remove(server);
        } else {
            after.insert(server.to_owned(), holes.to_vec());
        }
        self.set(after)
    }

    /// Close every hole of `server` (none open is not an error).
    pub fn close(&mut self, server: &str) -> io::Result<()> {
        self.open(server, &[])
    }

    fn set(&mut self, after: OpenHoles) -> io::Result<()> {
        if after == self.open {
            return Ok(());
        }
        match self.mode {
            HoleMode::Stopped => {}
            HoleMode::Policy => apply(&update(&self.open, &after))?,
            HoleMode::Standalone if after.is_empty() && self.own_table => {
                apply(&standalone_removal())?;
                self.own_table = false;
            }
            HoleMode::Standalone if self.open.is_empty() && !self.own_table => {
                if nft::table_exists("inet", FILTER_TABLE)? {
                    tracing::warn!(
                        "holes: table inet {FILTER_TABLE} exists without a policy of this daemon \
                         (kept by an earlier run?): holes go into its services chain"
                    );
                    apply(&update(&self.open, &after))?;
                } else {
                    apply(&standalone(&after))?;
                    self.own_table = true;
                }
            }
            HoleMode::Standalone => apply(&update(&self.open, &after))?,
        }
        self.open = after;
        Ok(())
    }

    /// Apply `policy` (replacing tsunagi's tables) with the open holes in
    /// its services chain, in one transaction; from now on holes change in
    /// the policy's table.
    pub fn apply_policy(&mut self, policy: &LoadedPolicy) -> io::Result<()> {
        nft::apply(&policy.compiled.ruleset_with_holes(&self.open).to_string())?;
        self.mode = HoleMode::Policy;
        self.own_table = false;
        Ok(())
    }

    /// The policy stops: with `keep_tables` (`keep_on_exit`) the tables
    /// stay, emptied of holes; without, they are removed. Either way no
    /// hole is open any more ([`HoleSet::open_holes`] is empty), and later
    /// changes are bookkeeping only.
    pub fn policy_stopped(&mut self, keep_tables: bool) -> io::Result<()> {
        self.mode = HoleMode::Stopped;
        if keep_tables {
            apply(&update(&self.open, &OpenHoles::new()))?;
        } else {
            remove()?;
        }
        self.open.clear();
        Ok(())
    }

    /// The daemon stops: a table made for holes alone is removed, and no
    /// hole is open any more; later changes are bookkeeping only. After
    /// [`HoleSet::policy_stopped`] there is nothing left to do.
    pub fn shutdown(&mut self) -> io::Result<()> {
        let own = self.mode == HoleMode::Standalone && self.own_table;
        self.mode = HoleMode::Stopped;
        self.own_table = false;
        if own {
            apply(&standalone_removal())?;
        }
        self.open.clear();
        Ok(())
    }
}

fn apply(document: &impl std::fmt::Display) -> io::Result<()> {
    nft::apply(&document.to_string()).map_err(|e| io::Error::new(e.kind(), format!("holes: {e}")))
}

/// The holes' counters in table `inet tsunagi` (`hole_SERVER_NAME_PROTO`,
/// packets and bytes let in), by name; empty when the table has none.
/// `NotFound` when the table is absent (or `nft` cannot list it).
pub fn hole_counts() -> io::Result<Vec<(String, Counter)>> {
    let json = nft::list_counters_json("inet", FILTER_TABLE)?;
    let counters =
        parse_counters(&json).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(counters
        .into_iter()
        .filter(|(name, _)| name.starts_with(COUNTER_PREFIX))
        .collect())
}

/// The hole counters as a table for `tsunagi status`.
pub fn hole_table(counts: &[(String, Counter)]) -> String {
    let mut out = String::from("HOLE                            PACKETS  BYTES\n");
    for (name, c) in counts {
        let name = name.strip_prefix(COUNTER_PREFIX).unwrap_or(name);
        out.push_str(&format!("{name:<31} {:>7}  {:>5}\n", c.packets, c.bytes));
    }
    out
}
