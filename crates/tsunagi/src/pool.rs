//! Address pools of server profiles (PPTP now, L2TP later): pptpd's
//! `localip` / `remoteip` and `connections`, with per-user fixed addresses.
//!
//! # ip-specification (pptpd.conf(5), "NOTES" and `localip`/`remoteip`)
//!
//! A comma-separated list of items, each one of:
//!
//! - a single address, `192.168.0.245`;
//! - a range in one octet, `192.168.0.234-238` (the usual form, the last
//!   octet) or `192.168.0-255.2` (another octet: pptpd.conf(5) gives this
//!   example too, and pptpd's parser accepts a dash in any one octet). The
//!   end is a whole octet: pptpd.conf's "no shortcuts in ranges! ie. 234-8
//!   does not mean 234 to 238";
//! - **ours, not pptpd's**: a CIDR block, `10.0.0.0/28`, meaning its hosts:
//!   the network and broadcast addresses are left out (`10.0.0.1` to
//!   `10.0.0.14`). A `/31` gives both its addresses (RFC 3021), a `/32` its
//!   one address.
//!
//! The list keeps the written order, which is the order addresses are
//! handed out in. Whitespace as pptpd: pptpd's config reader drops the
//! spaces and tabs around the value, and pptpd.conf says "No spaces are
//! permitted between commas or within addresses", so spaces and tabs at
//! either end are ignored and any whitespace inside is an error naming the
//! item.
//!
//! We are stricter than pptpd where pptpd guesses or is silent, and each
//! refusal names the item and says why ([`SpecError`]): an empty item (a
//! doubled comma), a bad address (inet_addr's `10.1` or octal `010.0.0.1`
//! forms, and host names, which pptpd looks up with gethostbyname for a
//! single item: we do no DNS here), a range whose end is below its start
//! (pptpd silently adds nothing for `234-8`), an end above 255, an address
//! listed twice, an address no peer can have (0/8; loopback and multicast,
//! which pppd's `bad_ip_adrs` refuses too; 240/4 and broadcast, which older
//! pppd refuses and inet_addr cannot even return), and more than
//! [`MAX_ADDRESSES`] addresses in one list.
//!
//! # localip, remoteip, connections
//!
//! - One `localip` address is shared by all sessions (pptpd.conf(5): "If
//!   one address only is given, this address is used for all clients").
//! - Otherwise `localip` and `remoteip` pair up by position: the n-th
//!   session slot is (n-th localip, n-th remoteip). With lists of unequal
//!   length pptpd uses as many pairs as the shorter list has and ignores
//!   the rest (pptpd.c `processIPStr`: the remote list is read first, then
//!   the local one; a shorter local list logs "Maximum of N connections
//!   reduced to M, not enough IP addresses given", a longer one "extra IP
//!   addresses ignored"). That is well defined, so we do the same; the
//!   ignored tail is reported by [`Pool::warnings`] for the daemon to log.
//! - A `remoteip` address that is also a `localip` address is refused when
//!   the pool is built ([`PoolConfigError::Overlap`]): the client would be
//!   given the server's own address.
//! - `connections` (pptpd's default [`DEFAULT_CONNECTIONS`], 100) caps the
//!   live sessions on top of the size of the range: pptpd.conf(5): "the
//!   number of connections is also limited by the remoteip option". pptpd
//!   drops the addresses beyond `connections` when it reads the list; we
//!   keep them and refuse the session over the limit instead
//!   ([`PoolError::LimitReached`]). Lowest-first allocation means sessions
//!   without a fixed address get the same addresses either way, and a fixed
//!   address in that tail still counts as inside the range. `connections
//!   0` is refused (pptpd silently replaces a value ≤ 0 by 100).
//!
//! # Leases
//!
//! [`Pool::lease`] hands out (local, remote) pairs. Sessions without a fixed
//! address get the lowest free slot, in list order, as pptpd does (its
//! `slot_find_empty` takes the first free slot): for a list written in
//! ascending order that is the lowest free address, so a released address
//! is the next one reused.
//!
//! A per-user fixed address (the first single address of the user's
//! chap-secrets line, [`tsunagi_ppp::secrets::SecretEntry::fixed_address`];
//! RADIUS later) always wins over the range. (pptpd never sees the
//! secrets: pppd's `set_allowed_addrs` puts that address in place of the
//! one pptpd passed when the passed one is not among the user's allowed
//! addresses.)
//!
//! - inside the range, it takes that address's own slot (and its paired
//!   local address) out of the free set while the session lives;
//! - outside the range, it takes nothing from the range; its local address
//!   is the shared `localip`, or with a `localip` list the first of them
//!   (sharing a local address between point-to-point links is what the
//!   single-`localip` form does anyway);
//! - already held by another live session, or one of our `localip`
//!   addresses, it is refused with an error naming it.
//!
//! Every session counts against `connections`, fixed or not. [`Pool::release`]
//! ends a lease; releasing an unknown session or releasing twice does
//! nothing and returns `false`.
//!
//! The pool is a plain value with `&mut self` methods: its owner (the
//! transport task that owns the sessions) serialises access, so there are
//! no locks. Memory is allocated when the pool is built; a lease costs one
//! map entry (the user name is stored inline, up to [`MAX_USER_LEN`] bytes).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// pptpd's default `connections` (pptpd.conf(5): "The default is 100").
pub const DEFAULT_CONNECTIONS: usize = 100;

/// Most addresses one ip-specification may give (a /16's worth), so that a
/// slip like `10.0.0.0/8` is an error rather than 16 million slots.
pub const MAX_ADDRESSES: usize = 65_536;

/// Longest user name a lease records, in bytes: PAP's one-octet
/// Peer-ID Length (RFC 1334 s2.2.1), stored inline in the lease.
pub const MAX_USER_LEN: usize = 255;

/// Why an ip-specification is not valid. Items are numbered from 1 and
/// quoted as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Nothing but spaces.
    #[error("no addresses given")]
    Empty,
    /// An item with nothing in it: `a,,b`, `a,` or `,a`.
    #[error("item {position} is empty (a doubled comma, or a comma at either end)")]
    EmptyItem {
        /// 1-based position of the item.
        position: usize,
    },
    /// Whitespace inside the list.
    #[error(
        "item {position} {item:?}: whitespace inside the list (pptpd.conf(5): \
         no spaces between commas or within addresses)"
    )]
    Whitespace {
        /// 1-based position of the item.
        position: usize,
        /// The item as written.
        item: String,
    },
    /// Not an address, a range or a CIDR block.
    #[error("item {position} {item:?}: not an IPv4 address or range ({why})")]
    BadAddress {
        /// 1-based position of the item.
        position: usize,
        /// The item as written.
        item: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// `234-8`: the end of a range below its start.
    #[error(
        "item {position} {item:?}: range end {end} is below its start {start} \
         (no shortcuts in ranges: write the whole octet, e.g. 234-238)"
    )]
    EndBelowStart {
        /// 1-based position of the item.
        position: usize,
        /// The item as written.
        item: String,
        /// First octet value of the range.
        start: u8,
        /// Last octet value of the range.
        end: u8,
    },
    /// `250-256`: the end of a range is not an octet.
    #[error("item {position} {item:?}: range end {end} is above 255")]
    EndAbove255 {
        /// 1-based position of the item.
        position: usize,
        /// The item as written.
        item: String,
        /// The end as written, as a number.
        end: u64,
    },
    /// The prefix length of a CIDR block is not 0..=32.
    #[error("item {position} {item:?}: prefix length must be a number from 0 to 32")]
    BadPrefix {
        /// 1-based position of the item.
        position: usize,
        /// The item as written.
        item: String,
    },
    /// `10.0.0.5/28`: bits set after the prefix.
    #[error(
        "item {position} {item:?}: host bits set after /{prefix}; \
         the network is {network}/{prefix}"
    )]
    HostBits {
        /// 1-based position of the item.
        position: usize,
        /// The item as written.
        item: String,
        /// The address with the host bits cleared.
        network: Ipv4Addr,
        /// The prefix length.
        prefix: u8,
    },
    /// An address that no PPP peer can be given.
    #[error("item {position} {item:?}: {addr} cannot be a peer's address ({why})")]
    Unusable {
        /// 1-based position of the item.
        position: usize,
        /// The item as written.
        item: String,
        /// The first such address in the item.
        addr: Ipv4Addr,
        /// Which kind of address it is.
        why: &'static str,
    },
    /// An address given twice.
    #[error(
        "item {position} {item:?}: {addr} is already given by item {first_position} {first:?}"
    )]
    Duplicate {
        /// 1-based position of the item.
        position: usize,
        /// The item as written.
        item: String,
        /// The address given twice.
        addr: Ipv4Addr,
        /// 1-based position of the item that gave it first.
        first_position: usize,
        /// That item as written.
        first: String,
    },
    /// The list would hold more than [`MAX_ADDRESSES`] addresses.
    #[error("item {position} {item:?}: the list would hold more than {max} addresses")]
    TooMany {
        /// 1-based position of the item.
        position: usize,
        /// The item as written.
        item: String,
        /// [`MAX_ADDRESSES`].
        max: usize,
    },
}

/// Why a pool cannot be built from its settings. The caller adds where the
/// settings came from (file, line, section).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolConfigError {
    /// `localip` or `remoteip` is not a valid ip-specification.
    #[error("{key}: {error}")]
    Spec {
        /// `"localip"` or `"remoteip"`.
        key: &'static str,
        /// What is wrong with it.
        error: SpecError,
    },
    /// A `remoteip` address is also a `localip` address.
    #[error(
        "remoteip {addr} is also in localip: a client given it would have \
         the server's own address"
    )]
    Overlap {
        /// The address in both lists.
        addr: Ipv4Addr,
    },
    /// `connections 0`.
    #[error("connections must be at least 1")]
    ZeroConnections,
}

/// Why a lease was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// Every address of the range is leased.
    #[error("pool {pool:?} exhausted: all {size} addresses in use")]
    Exhausted {
        /// The pool's name.
        pool: String,
        /// Addresses in the range, [`Pool::size`].
        size: usize,
    },
    /// As many sessions as `connections` allows are live.
    #[error("pool {pool:?}: connection limit {limit} reached")]
    LimitReached {
        /// The pool's name.
        pool: String,
        /// `connections`.
        limit: usize,
    },
    /// The fixed address is leased to another live session.
    #[error(
        "pool {pool:?}: fixed address {addr}{} is in use by session {holder}{}",
        of_user(.user), of_user(.holder_user)
    )]
    AddressInUse {
        /// The pool's name.
        pool: String,
        /// The address asked for.
        addr: Ipv4Addr,
        /// The user asking, if known.
        user: Option<String>,
        /// The session that holds it.
        holder: u64,
        /// That session's user, if known.
        holder_user: Option<String>,
    },
    /// The fixed address is one of the pool's `localip` addresses.
    #[error(
        "pool {pool:?}: fixed address {addr}{} is the server's own localip address",
        of_user(.user)
    )]
    FixedIsLocal {
        /// The pool's name.
        pool: String,
        /// The address asked for.
        addr: Ipv4Addr,
        /// The user asking, if known.
        user: Option<String>,
    },
    /// The fixed address cannot be a peer's address.
    #[error(
        "pool {pool:?}: fixed address {addr}{} cannot be a peer's address ({why})",
        of_user(.user)
    )]
    FixedUnusable {
        /// The pool's name.
        pool: String,
        /// The address asked for.
        addr: Ipv4Addr,
        /// The user asking, if known.
        user: Option<String>,
        /// Which kind of address it is.
        why: &'static str,
    },
    /// The session already holds a lease (the owner asks once per session).
    #[error("pool {pool:?}: session {session} already holds {remote}")]
    AlreadyLeased {
        /// The pool's name.
        pool: String,
        /// The session.
        session: u64,
        /// The address it holds.
        remote: Ipv4Addr,
    },
    /// The user name does not fit a lease record.
    #[error("pool {pool:?}: user name of {len} bytes is longer than {max}")]
    UserTooLong {
        /// The pool's name.
        pool: String,
        /// Its length in bytes.
        len: usize,
        /// [`MAX_USER_LEN`].
        max: usize,
    },
}

/// ` (user "NAME")` or nothing.
fn of_user(user: &Option<String>) -> String {
    match user {
        Some(u) => format!(" (user {u:?})"),
        None => String::new(),
    }
}

/// Why `addr` cannot be a PPP peer's (or a server's) address, if it cannot:
/// 0/8 (RFC 1122 "this network"; 0.0.0.0 is IPCP's "no address"), and what
/// pppd's `bad_ip_adrs` refuses: loopback, multicast, and in older pppd
/// 240/4 with the broadcast address.
fn unusable(addr: Ipv4Addr) -> Option<&'static str> {
    let first = addr.octets()[0];
    match first {
        0 => Some("0.0.0.0/8 is \"this network\""),
        127 => Some("loopback"),
        224..=239 => Some("multicast"),
        240..=255 => Some("reserved 240.0.0.0/4 or broadcast"),
        _ => None,
    }
}

/// One decimal octet as written in a dotted quad: 1 to 3 digits, no
/// leading zero (inet_addr would read `010` as octal 8), at most 255.
fn octet(text: &str) -> Option<u8> {
    let ok = !text.is_empty()
        && text.len() <= 3
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if ok {
        text.parse().ok()
    } else {
        None
    }
}

/// One item of an ip-specification, before expansion.
#[derive(Debug, Clone, Copy)]
enum Item {
    /// `a.b.c.d`.
    Single(Ipv4Addr),
    /// `a.b.c.lo-hi` (or the dash in another octet): `octets` with octet
    /// number `at` running from `lo` to `hi`.
    Octet {
        octets: [u8; 4],
        at: usize,
        lo: u8,
        hi: u8,
    },
    /// A CIDR block's hosts, `first..=last` as numbers.
    Block { first: u32, last: u32 },
}

impl Item {
    fn count(&self) -> usize {
        match *self {
            Item::Single(_) => 1,
            Item::Octet { lo, hi, .. } => usize::from(hi - lo) + 1,
            Item::Block { first, last } => (last - first) as usize + 1,
        }
    }

    /// The `i`-th address, `i < count()`.
    fn nth(&self, i: usize) -> Ipv4Addr {
        match *self {
            Item::Single(a) => a,
            Item::Octet {
                mut octets, at, lo, ..
            } => {
                // i <= hi - lo, so this stays within u8.
                octets[at] = lo + i as u8;
                Ipv4Addr::from(octets)
            }
            Item::Block { first, .. } => Ipv4Addr::from(first + i as u32),
        }
    }

    fn parse(item: &str, position: usize) -> Result<Item, SpecError> {
        let bad = |why| SpecError::BadAddress {
            position,
            item: item.to_string(),
            why,
        };
        if let Some((addr, prefix)) = item.split_once('/') {
            let addr: Ipv4Addr = addr
                .parse()
                .map_err(|_| bad("the part before / is not a dotted-quad address"))?;
            let prefix = Some(prefix)
                .filter(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= 32)
                .ok_or_else(|| SpecError::BadPrefix {
                    position,
                    item: item.to_string(),
                })?;
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            let network = u32::from(addr) & mask;
            if network != u32::from(addr) {
                return Err(SpecError::HostBits {
                    position,
                    item: item.to_string(),
                    network: Ipv4Addr::from(network),
                    prefix,
                });
            }
            let broadcast = network | !mask;
            return Ok(match prefix {
                32 | 31 => Item::Block {
                    first: network,
                    last: broadcast,
                },
                _ => Item::Block {
                    first: network + 1,
                    last: broadcast - 1,
                },
            });
        }
        if !item.contains('-') {
            return item
                .parse()
                .map(Item::Single)
                .map_err(|_| bad("want a.b.c.d; host names are not looked up"));
        }
        if item.matches('-').count() > 1 {
            return Err(bad("more than one dash"));
        }
        let parts: Vec<&str> = item.split('.').collect();
        if parts.len() != 4 {
            return Err(bad("want four dot-separated octets, one of them a range"));
        }
        let mut octets = [0u8; 4];
        let mut range = None;
        for (at, part) in parts.iter().enumerate() {
            match part.split_once('-') {
                None => octets[at] = octet(part).ok_or_else(|| bad("an octet is not 0 to 255"))?,
                Some((lo, hi)) => {
                    let lo = octet(lo).ok_or_else(|| bad("the range start is not 0 to 255"))?;
                    if hi.is_empty() || !hi.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad("the range end is not a number"));
                    }
                    if hi.len() > 1 && hi.starts_with('0') {
                        return Err(bad("the range end has a leading zero"));
                    }
                    let end: u64 = hi.parse().unwrap_or(u64::MAX);
                    let hi = u8::try_from(end).map_err(|_| SpecError::EndAbove255 {
                        position,
                        item: item.to_string(),
                        end,
                    })?;
                    if hi < lo {
                        return Err(SpecError::EndBelowStart {
                            position,
                            item: item.to_string(),
                            start: lo,
                            end: hi,
                        });
                    }
                    range = Some((at, lo, hi));
                }
            }
        }
        // Exactly one dash, so exactly one part held it.
        let (at, lo, hi) = range.ok_or_else(|| bad("more than one dash"))?;
        Ok(Item::Octet { octets, at, lo, hi })
    }
}

/// A parsed ip-specification: the addresses in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpSpec {
    addrs: Vec<Ipv4Addr>,
}

impl IpSpec {
    /// Parses pptpd's ip-specification syntax (and our CIDR items); see the
    /// module documentation.
    pub fn parse(text: &str) -> Result<IpSpec, SpecError> {
        let text = text.trim_matches([' ', '\t']);
        if text.is_empty() {
            return Err(SpecError::Empty);
        }
        let items: Vec<&str> = text.split(',').collect();
        let mut addrs = Vec::new();
        // Address -> index of the item that gave it, to name duplicates.
        let mut seen: HashMap<Ipv4Addr, usize> = HashMap::new();
        for (index, &item) in items.iter().enumerate() {
            let position = index + 1;
            if item.is_empty() {
                return Err(SpecError::EmptyItem { position });
            }
            if item.chars().any(char::is_whitespace) {
                return Err(SpecError::Whitespace {
                    position,
                    item: item.to_string(),
                });
            }
            let parsed = Item::parse(item, position)?;
            let count = parsed.count();
            if addrs.len().saturating_add(count) > MAX_ADDRESSES {
                return Err(SpecError::TooMany {
                    position,
                    item: item.to_string(),
                    max: MAX_ADDRESSES,
                });
            }
            for i in 0..count {
                let addr = parsed.nth(i);
                if let Some(why) = unusable(addr) {
                    return Err(SpecError::Unusable {
                        position,
                        item: item.to_string(),
                        addr,
                        why,
                    });
                }
                if let Some(&first) = seen.get(&addr) {
                    return Err(SpecError::Duplicate {
                        position,
                        item: item.to_string(),
                        addr,
                        first_position: first + 1,
                        first: items[first].to_string(),
                    });
                }
                seen.insert(addr, index);
                addrs.push(addr);
            }
        }
        Ok(IpSpec { addrs })
    }

    /// The addresses, in the order written.
    pub fn addresses(&self) -> &[Ipv4Addr] {
        &self.addrs
    }

    /// How many addresses.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Never true for a parsed spec; here for clippy's sake and symmetry.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

impl FromStr for IpSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<IpSpec, SpecError> {
        IpSpec::parse(s)
    }
}

/// The local end of each slot.
#[derive(Debug)]
enum Local {
    /// One `localip` for every session.
    Shared(Ipv4Addr),
    /// `localip` paired with `remoteip` by position (same length as the
    /// slots).
    Paired(Vec<Ipv4Addr>),
}

/// A user name stored inside the lease, so a lease allocates nothing but
/// its map entry.
#[derive(Clone, Copy)]
struct UserName {
    len: u8,
    bytes: [u8; MAX_USER_LEN],
}

impl UserName {
    fn new(name: &str) -> Option<UserName> {
        let len = u8::try_from(name.len()).ok()?;
        let mut bytes = [0u8; MAX_USER_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(UserName { len, bytes })
    }

    fn as_str(&self) -> &str {
        // Copied whole from a &str, so always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One live lease, as stored.
#[derive(Debug, Clone, Copy)]
struct Entry {
    local: Ipv4Addr,
    remote: Ipv4Addr,
    /// The slot it holds; `None` for a fixed address outside the range.
    slot: Option<u32>,
    fixed: bool,
    user: Option<UserName>,
}

/// What [`Pool::lease`] gives a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The session it belongs to.
    pub session: u64,
    /// Our end of the link (IPCP's local IP-Address).
    pub local: Ipv4Addr,
    /// The peer's address (the IP-Address we make the peer take).
    pub remote: Ipv4Addr,
    /// Whether `remote` is the user's fixed address rather than one picked
    /// from the range.
    pub fixed: bool,
}

/// A live lease, for status and metrics ([`Pool::leases`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseInfo<'a> {
    /// The session.
    pub session: u64,
    /// The user, when the owner gave one.
    pub user: Option<&'a str>,
    /// Our end of the link.
    pub local: Ipv4Addr,
    /// The peer's address.
    pub remote: Ipv4Addr,
    /// Whether `remote` is the user's fixed address.
    pub fixed: bool,
    /// Whether `remote` is one of the range's addresses (a fixed address
    /// may lie outside it).
    pub in_range: bool,
}

/// An address pool: pptpd's `localip`, `remoteip` and `connections`, and
/// the live leases. See the module documentation for the rules.
#[derive(Debug)]
pub struct Pool {
    name: String,
    limit: usize,
    local: Local,
    /// The peer address of each slot, in list order.
    remotes: Vec<Ipv4Addr>,
    /// (remote address, slot), sorted, to find a fixed address's slot.
    by_addr: Vec<(Ipv4Addr, u32)>,
    /// Every `localip` address given, sorted.
    local_set: Vec<Ipv4Addr>,
    /// The local address of a session whose fixed address lies outside
    /// the range: the first `localip`.
    outside_local: Ipv4Addr,
    /// The session holding each slot.
    holders: Vec<Option<u64>>,
    /// Slots held.
    in_use: usize,
    /// The lowest free slot (`remotes.len()` when none is free).
    next_free: usize,
    leases: BTreeMap<u64, Entry>,
    /// Addresses left unpaired: (localip, remoteip) counts.
    unpaired: (usize, usize),
}

impl Pool {
    /// A pool named `name` (used in error messages and status) from the
    /// `localip` and `remoteip` values and `connections`.
    pub fn parse(
        name: &str,
        localip: &str,
        remoteip: &str,
        connections: usize,
    ) -> Result<Pool, PoolConfigError> {
        // pptpd reads remoteip first; so do we, for the same first error.
        let remote = IpSpec::parse(remoteip).map_err(|error| PoolConfigError::Spec {
            key: "remoteip",
            error,
        })?;
        let local = IpSpec::parse(localip).map_err(|error| PoolConfigError::Spec {
            key: "localip",
            error,
        })?;
        Pool::new(name, local, remote, connections)
    }

    /// A pool from parsed specifications.
    pub fn new(
        name: &str,
        localip: IpSpec,
        remoteip: IpSpec,
        connections: usize,
    ) -> Result<Pool, PoolConfigError> {
        if connections == 0 {
            return Err(PoolConfigError::ZeroConnections);
        }
        let empty = |key| PoolConfigError::Spec {
            key,
            error: SpecError::Empty,
        };
        let outside_local = *localip.addrs.first().ok_or_else(|| empty("localip"))?;
        if remoteip.addrs.is_empty() {
            return Err(empty("remoteip"));
        }
        let mut local_set = localip.addrs.clone();
        local_set.sort_unstable();
        if let Some(&addr) = remoteip
            .addrs
            .iter()
            .find(|a| local_set.binary_search(a).is_ok())
        {
            return Err(PoolConfigError::Overlap { addr });
        }
        let mut remotes = remoteip.addrs;
        let (local, unpaired) = match localip.addrs.as_slice() {
            [one] => (Local::Shared(*one), (0, 0)),
            _ => {
                let mut locals = localip.addrs;
                let n = locals.len().min(remotes.len());
                let unpaired = (locals.len() - n, remotes.len() - n);
                locals.truncate(n);
                remotes.truncate(n);
                (Local::Paired(locals), unpaired)
            }
        };
        let mut by_addr: Vec<(Ipv4Addr, u32)> = remotes
            .iter()
            .enumerate()
            .map(|(slot, &a)| (a, slot as u32))
            .collect();
        by_addr.sort_unstable();
        let slots = remotes.len();
        Ok(Pool {
            name: name.to_string(),
            limit: connections,
            local,
            remotes,
            by_addr,
            local_set,
            outside_local,
            holders: vec![None; slots],
            in_use: 0,
            next_free: 0,
            leases: BTreeMap::new(),
            unpaired,
        })
    }

    /// Our ends of the links, each once (the shared `localip`, or the
    /// paired ones): what the server's shared interface carries.
    pub fn local_addresses(&self) -> Vec<Ipv4Addr> {
        let mut out = match &self.local {
            Local::Shared(one) => vec![*one],
            Local::Paired(all) => all.clone(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The range's peer addresses, in list order: what the server routes
    /// to its shared interface.
    pub fn remote_addresses(&self) -> &[Ipv4Addr] {
        &self.remotes
    }

    /// Leases addresses to `session`. `user` is recorded for status;
    /// `fixed` is the user's own address (chap-secrets' 4th column), which
    /// wins over the range. Checks, in order: the session has no lease yet,
    /// the user name fits, the connection limit, then the address.
    pub fn lease(
        &mut self,
        session: u64,
        user: Option<&str>,
        fixed: Option<Ipv4Addr>,
    ) -> Result<Lease, PoolError> {
        if let Some(e) = self.leases.get(&session) {
            return Err(PoolError::AlreadyLeased {
                pool: self.name.clone(),
                session,
                remote: e.remote,
            });
        }
        let stored_user = match user {
            None => None,
            Some(u) => Some(UserName::new(u).ok_or_else(|| PoolError::UserTooLong {
                pool: self.name.clone(),
                len: u.len(),
                max: MAX_USER_LEN,
            })?),
        };
        if self.leases.len() >= self.limit {
            return Err(PoolError::LimitReached {
                pool: self.name.clone(),
                limit: self.limit,
            });
        }
        let (slot, remote) = match fixed {
            None => {
                if self.next_free >= self.remotes.len() {
                    return Err(PoolError::Exhausted {
                        pool: self.name.clone(),
                        size: self.size(),
                    });
                }
                (Some(self.next_free), self.remotes[self.next_free])
            }
            Some(addr) => {
                let owned_user = || user.map(str::to_string);
                if let Some(why) = unusable(addr) {
                    return Err(PoolError::FixedUnusable {
                        pool: self.name.clone(),
                        addr,
                        user: owned_user(),
                        why,
                    });
                }
                if self.local_set.binary_search(&addr).is_ok() {
                    return Err(PoolError::FixedIsLocal {
                        pool: self.name.clone(),
                        addr,
                        user: owned_user(),
                    });
                }
                let slot = self.slot_of(addr);
                let holder = match slot {
                    Some(s) => self.holders[s],
                    None => self
                        .leases
                        .iter()
                        .find(|(_, e)| e.slot.is_none() && e.remote == addr)
                        .map(|(&s, _)| s),
                };
                if let Some(holder) = holder {
                    let holder_user = self
                        .leases
                        .get(&holder)
                        .and_then(|e| e.user.as_ref())
                        .map(|u| u.as_str().to_string());
                    return Err(PoolError::AddressInUse {
                        pool: self.name.clone(),
                        addr,
                        user: owned_user(),
                        holder,
                        holder_user,
                    });
                }
                (slot, addr)
            }
        };
        let local = match (&self.local, slot) {
            (Local::Shared(a), _) => *a,
            (Local::Paired(locals), Some(s)) => locals[s],
            (Local::Paired(_), None) => self.outside_local,
        };
        if let Some(s) = slot {
            self.take_slot(s, session);
        }
        self.leases.insert(
            session,
            Entry {
                local,
                remote,
                slot: slot.map(|s| s as u32),
                fixed: fixed.is_some(),
                user: stored_user,
            },
        );
        Ok(Lease {
            session,
            local,
            remote,
            fixed: fixed.is_some(),
        })
    }

    /// Ends `session`'s lease; its range address (if any) is free again.
    /// `false` when the session holds no lease (never leased, or already
    /// released): harmless.
    pub fn release(&mut self, session: u64) -> bool {
        let Some(entry) = self.leases.remove(&session) else {
            return false;
        };
        if let Some(s) = entry.slot {
            let s = s as usize;
            self.holders[s] = None;
            self.in_use -= 1;
            self.next_free = self.next_free.min(s);
        }
        true
    }

    fn slot_of(&self, addr: Ipv4Addr) -> Option<usize> {
        self.by_addr
            .binary_search_by_key(&addr, |&(a, _)| a)
            .ok()
            .map(|i| self.by_addr[i].1 as usize)
    }

    fn take_slot(&mut self, slot: usize, session: u64) {
        self.holders[slot] = Some(session);
        self.in_use += 1;
        if slot == self.next_free {
            self.next_free = self.holders[slot..]
                .iter()
                .position(Option::is_none)
                .map_or(self.holders.len(), |i| slot + i);
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Addresses in the range (slots): the `remoteip` count, or the number
    /// of (localip, remoteip) pairs.
    pub fn size(&self) -> usize {
        self.remotes.len()
    }

    /// Range addresses leased now (sessions with a fixed address outside
    /// the range are not counted here, but are in [`Pool::sessions`]).
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Range addresses free now: `size() - in_use()`.
    pub fn free(&self) -> usize {
        self.size() - self.in_use
    }

    /// Live leases, counted against [`Pool::limit`].
    pub fn sessions(&self) -> usize {
        self.leases.len()
    }

    /// `connections`: most live sessions.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether `addr` is one of the range's peer addresses.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.slot_of(addr).is_some()
    }

    /// `session`'s lease, if it holds one.
    pub fn get(&self, session: u64) -> Option<LeaseInfo<'_>> {
        self.leases.get(&session).map(|e| info(session, e))
    }

    /// The live leases, by session id.
    pub fn leases(&self) -> impl Iterator<Item = LeaseInfo<'_>> + '_ {
        self.leases.iter().map(|(&s, e)| info(s, e))
    }

    /// Settings pptpd would accept with a log line, for the daemon to log
    /// at start-up: addresses left unpaired, and a `connections` below the
    /// size of the range.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let (locals, remotes) = self.unpaired;
        if remotes > 0 {
            out.push(format!(
                "pool {:?}: localip gives only {} addresses for {} remoteip addresses; \
                 the last {remotes} remoteip addresses are not used (pairs go by position)",
                self.name,
                self.size(),
                self.size() + remotes,
            ));
        }
        if locals > 0 {
            out.push(format!(
                "pool {:?}: remoteip gives only {} addresses for {} localip addresses; \
                 the last {locals} localip addresses are not used (pairs go by position)",
                self.name,
                self.size(),
                self.size() + locals,
            ));
        }
        if self.limit < self.size() {
            out.push(format!(
                "pool {:?}: connections {} is below the {} addresses of the range: \
                 at most {} sessions at a time",
                self.name,
                self.limit,
                self.size(),
                self.limit,
            ));
        }
        out
    }
}

fn info(session: u64, e: &Entry) -> LeaseInfo<'_> {
    LeaseInfo {
        session,
        user: e.user.as_ref().map(UserName::as_str),
        local: e.local,
        remote: e.remote,
        fixed: e.fixed,
        in_range: e.slot.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tsunagi_ppp::secrets::ChapSecrets;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn spec(s: &str) -> Vec<Ipv4Addr> {
        IpSpec::parse(s).unwrap().addresses().to_vec()
    }

    fn spec_err(s: &str) -> String {
        IpSpec::parse(s).unwrap_err().to_string()
    }

    fn pool(local: &str, remote: &str) -> Pool {
        Pool::parse("vpn", local, remote, DEFAULT_CONNECTIONS).unwrap()
    }

    /// (local, remote) of a dynamic lease.
    fn take(p: &mut Pool, session: u64) -> (Ipv4Addr, Ipv4Addr) {
        let l = p.lease(session, None, None).unwrap();
        assert_eq!(l.session, session);
        assert!(!l.fixed);
        (l.local, l.remote)
    }

    /// pptpd.conf's own list example (seed 004's grep of the sample file).
    #[test]
    fn sample_list_keeps_written_order() {
        let a = spec("192.168.0.234,192.168.0.245-249,192.168.0.254");
        let want: Vec<Ipv4Addr> = ["234", "245", "246", "247", "248", "249", "254"]
            .iter()
            .map(|d| ip(&format!("192.168.0.{d}")))
            .collect();
        assert_eq!(a, want);
    }

    /// pptpd.conf(5) NOTES: `192.168.0.1-254`, `192.168.0-255.2` (a range
    /// in the third octet) and `192.168.0.2,192.168.0.5-8`.
    #[test]
    fn man_page_notes_examples() {
        let a = spec("192.168.0.1-254");
        assert_eq!(a.len(), 254);
        assert_eq!(a[0], ip("192.168.0.1"));
        assert_eq!(a[253], ip("192.168.0.254"));
        let a = spec("192.168.0-255.2");
        assert_eq!(a.len(), 256);
        assert_eq!(a[0], ip("192.168.0.2"));
        assert_eq!(a[1], ip("192.168.1.2"));
        assert_eq!(a[255], ip("192.168.255.2"));
        assert_eq!(
            spec("192.168.0.2,192.168.0.5-8"),
            [
                "192.168.0.2",
                "192.168.0.5",
                "192.168.0.6",
                "192.168.0.7",
                "192.168.0.8"
            ]
            .map(ip)
            .to_vec()
        );
        // The man page's second pair: a localip range with a remoteip range.
        let mut p = pool("192.168.1.2-254", "192.168.0.2-254");
        assert_eq!(p.size(), 253);
        assert_eq!(take(&mut p, 1), (ip("192.168.1.2"), ip("192.168.0.2")));
        assert_eq!(take(&mut p, 2), (ip("192.168.1.3"), ip("192.168.0.3")));
    }

    /// Seed 004's "(Recommended)" example: one localip shared by all.
    #[test]
    fn seed004_single_localip() {
        let mut p = Pool::parse(
            "pptpd",
            "192.168.0.1",
            "192.168.0.234-238,192.168.0.245",
            DEFAULT_CONNECTIONS,
        )
        .unwrap();
        assert_eq!(p.size(), 6);
        assert!(p.warnings().is_empty());
        let remotes: Vec<Ipv4Addr> = (1..=6)
            .map(|s| {
                let (local, remote) = take(&mut p, s);
                assert_eq!(local, ip("192.168.0.1"));
                remote
            })
            .collect();
        assert_eq!(
            remotes,
            ["234", "235", "236", "237", "238", "245"]
                .map(|d| ip(&format!("192.168.0.{d}")))
                .to_vec()
        );
        let e = p.lease(7, None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pool \"pptpd\" exhausted: all 6 addresses in use"
        );
    }

    /// Seed 004's "or" example: localip and remoteip lists paired by position.
    #[test]
    fn seed004_paired_lists() {
        let mut p = pool(
            "192.168.0.234-238,192.168.0.245",
            "192.168.1.234-238,192.168.1.245",
        );
        assert_eq!(p.size(), 6);
        for (s, d) in [
            (1, "234"),
            (2, "235"),
            (3, "236"),
            (4, "237"),
            (5, "238"),
            (6, "245"),
        ] {
            assert_eq!(
                take(&mut p, s),
                (ip(&format!("192.168.0.{d}")), ip(&format!("192.168.1.{d}")))
            );
        }
        assert!(matches!(
            p.lease(7, None, None),
            Err(PoolError::Exhausted { size: 6, .. })
        ));
        // A released pair comes back whole.
        assert!(p.release(3));
        assert_eq!(take(&mut p, 8), (ip("192.168.0.236"), ip("192.168.1.236")));
    }

    /// The seed's own configuration, with its chap-secrets line
    /// (`user1 pptpd "password" *`: no fixed address). Its pppd log shows
    /// "local IP address 192.168.0.100".
    #[test]
    fn seed004_own_configuration() {
        let mut p = Pool::parse("pptpd", "192.168.0.100", "192.168.0.101-119", 100).unwrap();
        assert_eq!((p.size(), p.free(), p.in_use()), (19, 19, 0));
        let secrets = ChapSecrets::parse(
            "# Secrets for authentication using CHAP\n\
             # client server secret IP addresses\n\
             user1 pptpd \"password\" *\n",
        )
        .unwrap();
        let entry = &secrets.entries[0];
        assert_eq!(entry.fixed_address(), None);
        let l = p
            .lease(1, Some(&entry.client), entry.fixed_address())
            .unwrap();
        assert_eq!(
            l,
            Lease {
                session: 1,
                local: ip("192.168.0.100"),
                remote: ip("192.168.0.101"),
                fixed: false
            }
        );
        assert_eq!((p.free(), p.in_use(), p.sessions()), (18, 1, 1));
        let info = p.get(1).unwrap();
        assert_eq!(info.user, Some("user1"));
        assert!(info.in_range && !info.fixed);
    }

    #[test]
    fn whitespace_as_pptpd() {
        // Around the value: dropped, as pptpd's config reader does.
        assert_eq!(
            spec(" \t10.0.0.1,10.0.0.2\t "),
            [ip("10.0.0.1"), ip("10.0.0.2")]
        );
        // Inside: an error naming the item.
        assert_eq!(
            spec_err("192.168.0.234, 192.168.0.245"),
            "item 2 \" 192.168.0.245\": whitespace inside the list \
             (pptpd.conf(5): no spaces between commas or within addresses)"
        );
        assert!(spec_err("192.168.0.234 ,192.168.0.245").starts_with("item 1 \"192.168.0.234 \""));
        assert!(spec_err("192.168.0.234 -238").starts_with("item 1 \"192.168.0.234 -238\""));
        assert_eq!(spec_err(" \t "), "no addresses given");
        assert_eq!(spec_err(""), "no addresses given");
    }

    #[test]
    fn bad_input_names_the_item() {
        // Empty items.
        let empty = "is empty (a doubled comma, or a comma at either end)";
        assert_eq!(spec_err("10.0.0.1,,10.0.0.2"), format!("item 2 {empty}"));
        assert_eq!(spec_err("10.0.0.1,"), format!("item 2 {empty}"));
        assert_eq!(spec_err(",10.0.0.1"), format!("item 1 {empty}"));
        // Bad addresses.
        assert_eq!(
            spec_err("10.0.0.1,192.168.0.300"),
            "item 2 \"192.168.0.300\": not an IPv4 address or range \
             (want a.b.c.d; host names are not looked up)"
        );
        assert!(spec_err("vpn.example.com").starts_with("item 1 \"vpn.example.com\": not an IPv4"));
        assert!(spec_err("10.1").starts_with("item 1 \"10.1\": not an IPv4"));
        assert!(spec_err("010.0.0.1").starts_with("item 1 \"010.0.0.1\": not an IPv4"));
        assert!(spec_err("192.168.0.1-2-3").contains("more than one dash"));
        assert!(spec_err("192.168.0-1.1-2").contains("more than one dash"));
        assert!(spec_err("192.168.1-5").contains("want four dot-separated octets"));
        assert!(spec_err("192.168.0.x-5").contains("the range start is not 0 to 255"));
        assert!(spec_err("192.168.0.300-301").contains("the range start is not 0 to 255"));
        assert!(spec_err("192.168.0.1-").contains("the range end is not a number"));
        assert!(spec_err("192.168.0.1-+5").contains("the range end is not a number"));
        assert!(spec_err("192.168.0.1-05").contains("leading zero"));
        assert!(spec_err("192.168.256.1-5").contains("an octet is not 0 to 255"));
        // pptpd.conf's restriction 3: no shortcuts in ranges.
        assert_eq!(
            spec_err("192.168.0.234-8"),
            "item 1 \"192.168.0.234-8\": range end 8 is below its start 234 \
             (no shortcuts in ranges: write the whole octet, e.g. 234-238)"
        );
        assert_eq!(
            spec_err("192.168.0.250-256"),
            "item 1 \"192.168.0.250-256\": range end 256 is above 255"
        );
        assert!(spec_err("192.168.0.250-99999999999999999999999").contains("above 255"));
        // Duplicates, within a range and across items.
        assert_eq!(
            spec_err("192.168.0.234-238,192.168.0.236"),
            "item 2 \"192.168.0.236\": 192.168.0.236 is already given by item 1 \
             \"192.168.0.234-238\""
        );
        assert_eq!(
            spec_err("10.0.0.1,10.0.0.2,10.0.0.1"),
            "item 3 \"10.0.0.1\": 10.0.0.1 is already given by item 1 \"10.0.0.1\""
        );
        assert!(spec_err("10.0.0.0/30,10.0.0.2").contains("10.0.0.2 is already given by item 1"));
        // Addresses no peer can have.
        assert_eq!(
            spec_err("127.0.0.1"),
            "item 1 \"127.0.0.1\": 127.0.0.1 cannot be a peer's address (loopback)"
        );
        assert!(spec_err("10.0.0.1,224.0.0.1-5")
            .contains("224.0.0.1 cannot be a peer's address (multicast)"));
        assert!(spec_err("255.255.255.255").contains("broadcast"));
        assert!(spec_err("0.0.0.0").contains("this network"));
        assert!(spec_err("200-250.0.0.1").contains("224.0.0.1 cannot be"));
        // CIDR mistakes.
        assert_eq!(
            spec_err("10.0.0.5/28"),
            "item 1 \"10.0.0.5/28\": host bits set after /28; the network is 10.0.0.0/28"
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "10.0.0.0/024",
        ] {
            assert!(
                spec_err(bad).contains("prefix length must be a number from 0 to 32"),
                "{bad}"
            );
        }
        assert!(spec_err("10.0.0.0-5/28").contains("the part before / is not"));
        // Too big.
        assert_eq!(
            spec_err("10.0.0.0/8"),
            "item 1 \"10.0.0.0/8\": the list would hold more than 65536 addresses"
        );
        assert_eq!(spec("10.0.0.0/16").len(), 65_534);
    }

    #[test]
    fn config_errors_name_the_key() {
        let e = Pool::parse("vpn", "192.168.0.1", "192.168.0.234-8", 100).unwrap_err();
        assert_eq!(
            e.to_string(),
            "remoteip: item 1 \"192.168.0.234-8\": range end 8 is below its start 234 \
             (no shortcuts in ranges: write the whole octet, e.g. 234-238)"
        );
        let e = Pool::parse("vpn", "192.168.0.1,", "192.168.0.2", 100).unwrap_err();
        assert_eq!(
            e.to_string(),
            "localip: item 2 is empty (a doubled comma, or a comma at either end)"
        );
        let e = Pool::parse("vpn", "192.168.0.1", "192.168.0.2", 0).unwrap_err();
        assert_eq!(e, PoolConfigError::ZeroConnections);
        assert_eq!(e.to_string(), "connections must be at least 1");
    }

    /// The classic mistake: the server's own address inside remoteip.
    #[test]
    fn remote_overlapping_local_is_refused() {
        let e = Pool::parse("vpn", "192.168.0.1", "192.168.0.1-10", 100).unwrap_err();
        assert_eq!(
            e,
            PoolConfigError::Overlap {
                addr: ip("192.168.0.1")
            }
        );
        assert_eq!(
            e.to_string(),
            "remoteip 192.168.0.1 is also in localip: a client given it would have \
             the server's own address"
        );
        // Also with lists, and for a localip address beyond the paired part.
        let e = Pool::parse("vpn", "10.0.1.1-9", "10.0.2.1-3,10.0.1.9", 100).unwrap_err();
        assert_eq!(
            e,
            PoolConfigError::Overlap {
                addr: ip("10.0.1.9")
            }
        );
    }

    /// Our extension: CIDR blocks mean their hosts.
    #[test]
    fn cidr_blocks_are_hosts() {
        let a = spec("10.0.0.0/28");
        assert_eq!(a.len(), 14);
        assert_eq!(a[0], ip("10.0.0.1"));
        assert_eq!(a[13], ip("10.0.0.14"));
        assert_eq!(spec("10.0.0.4/31"), [ip("10.0.0.4"), ip("10.0.0.5")]);
        assert_eq!(spec("10.0.0.9/32"), [ip("10.0.0.9")]);
        assert_eq!(
            spec("10.0.0.0/30,10.0.0.9,10.0.0.16/30"),
            ["10.0.0.1", "10.0.0.2", "10.0.0.9", "10.0.0.17", "10.0.0.18"].map(ip)
        );
        let mut p = pool("10.0.0.1", "10.0.0.16/28");
        assert_eq!(p.size(), 14);
        assert_eq!(take(&mut p, 1), (ip("10.0.0.1"), ip("10.0.0.17")));
    }

    /// 50 addresses: the 51st session is refused, a release lets one more in.
    #[test]
    fn exhaustion_at_exactly_the_size() {
        let mut p = pool("10.0.0.254", "10.0.0.1-50");
        assert_eq!(p.size(), 50);
        for s in 1..=50 {
            assert_eq!(take(&mut p, s).1, ip(&format!("10.0.0.{s}")));
        }
        assert_eq!((p.in_use(), p.free(), p.sessions()), (50, 0, 50));
        let e = p.lease(51, Some("late"), None).unwrap_err();
        assert_eq!(
            e,
            PoolError::Exhausted {
                pool: "vpn".into(),
                size: 50
            }
        );
        assert_eq!(
            e.to_string(),
            "pool \"vpn\" exhausted: all 50 addresses in use"
        );
        assert_eq!(p.sessions(), 50, "a refused lease leaves no trace");
        assert!(p.release(17));
        assert_eq!((p.in_use(), p.free()), (49, 1));
        assert_eq!(take(&mut p, 51), (ip("10.0.0.254"), ip("10.0.0.17")));
        assert!(matches!(
            p.lease(52, None, None),
            Err(PoolError::Exhausted { size: 50, .. })
        ));
    }

    /// Released addresses are reused lowest first (pptpd's first free slot).
    #[test]
    fn lowest_free_is_reused_first() {
        let mut p = pool("10.0.0.254", "10.0.0.1-10");
        for s in 1..=5 {
            take(&mut p, s);
        }
        assert!(p.release(4));
        assert!(p.release(2));
        assert_eq!(take(&mut p, 6).1, ip("10.0.0.2"));
        assert_eq!(take(&mut p, 7).1, ip("10.0.0.4"));
        assert_eq!(take(&mut p, 8).1, ip("10.0.0.6"));
        // "Lowest" is the list's order, as pptpd's slots are.
        let mut p = pool("10.0.0.254", "10.0.0.9,10.0.0.1-2");
        assert_eq!(take(&mut p, 1).1, ip("10.0.0.9"));
        assert_eq!(take(&mut p, 2).1, ip("10.0.0.1"));
        assert!(p.release(1));
        assert_eq!(take(&mut p, 3).1, ip("10.0.0.9"));
    }

    #[test]
    fn release_is_idempotent() {
        let mut p = pool("10.0.0.254", "10.0.0.1-3");
        take(&mut p, 1);
        take(&mut p, 2);
        assert!(p.release(1));
        assert!(!p.release(1));
        assert!(!p.release(99));
        assert_eq!((p.in_use(), p.free(), p.sessions()), (1, 2, 1));
        assert!(p.get(1).is_none());
        assert_eq!(take(&mut p, 3).1, ip("10.0.0.1"));
        assert_eq!(take(&mut p, 4).1, ip("10.0.0.3"));
        assert!(p.lease(5, None, None).is_err());
    }

    #[test]
    fn fixed_address_wins_over_the_range() {
        let secrets = ChapSecrets::parse(
            "alice pptpd a 10.0.0.3\n\
             bob pptpd b 172.16.5.5\n\
             carol pptpd c *\n",
        )
        .unwrap();
        let fixed = |i: usize| secrets.entries[i].fixed_address();
        let mut p = pool("10.0.0.254", "10.0.0.1-5");

        // Inside the range: that address, taken out of the free set.
        let a = p.lease(1, Some("alice"), fixed(0)).unwrap();
        assert_eq!(
            (a.local, a.remote, a.fixed),
            (ip("10.0.0.254"), ip("10.0.0.3"), true)
        );
        assert_eq!((p.in_use(), p.free()), (1, 4));
        // Outside: the address, nothing taken from the range.
        let b = p.lease(2, Some("bob"), fixed(1)).unwrap();
        assert_eq!(
            (b.local, b.remote, b.fixed),
            (ip("10.0.0.254"), ip("172.16.5.5"), true)
        );
        assert_eq!((p.in_use(), p.free(), p.sessions()), (1, 4, 2));
        let info = p.get(2).unwrap();
        assert!(info.fixed && !info.in_range);
        // Dynamic sessions go around alice's address.
        let got: Vec<Ipv4Addr> = (3..=6).map(|s| take(&mut p, s).1).collect();
        assert_eq!(
            got,
            ["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5"].map(ip)
        );
        assert!(matches!(
            p.lease(7, Some("carol"), fixed(2)),
            Err(PoolError::Exhausted { size: 5, .. })
        ));
        // Bob's address does not need a range address, even now.
        assert!(p.release(2));
        assert_eq!(
            p.lease(8, Some("bob"), fixed(1)).unwrap().remote,
            ip("172.16.5.5")
        );
        // Alice's address goes back to the free set when she leaves.
        assert!(p.release(1));
        assert_eq!(take(&mut p, 9).1, ip("10.0.0.3"));

        // The leases as status shows them.
        let rows: Vec<(u64, Option<&str>, Ipv4Addr, bool)> = p
            .leases()
            .map(|l| (l.session, l.user, l.remote, l.fixed))
            .collect();
        assert_eq!(
            rows,
            vec![
                (3, None, ip("10.0.0.1"), false),
                (4, None, ip("10.0.0.2"), false),
                (5, None, ip("10.0.0.4"), false),
                (6, None, ip("10.0.0.5"), false),
                (8, Some("bob"), ip("172.16.5.5"), true),
                (9, None, ip("10.0.0.3"), false),
            ]
        );
    }

    #[test]
    fn fixed_address_conflicts_are_refused() {
        let mut p = pool("10.0.0.254", "10.0.0.1-5");
        take(&mut p, 1); // 10.0.0.1, from the range
        p.lease(2, Some("bob"), Some(ip("172.16.5.5"))).unwrap();

        // Held by a dynamic session.
        let e = p.lease(3, Some("alice"), Some(ip("10.0.0.1"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pool \"vpn\": fixed address 10.0.0.1 (user \"alice\") is in use by session 1"
        );
        // Held by another fixed session, outside the range (bob twice).
        let e = p.lease(4, Some("bob"), Some(ip("172.16.5.5"))).unwrap_err();
        assert_eq!(
            e,
            PoolError::AddressInUse {
                pool: "vpn".into(),
                addr: ip("172.16.5.5"),
                user: Some("bob".into()),
                holder: 2,
                holder_user: Some("bob".into()),
            }
        );
        assert_eq!(
            e.to_string(),
            "pool \"vpn\": fixed address 172.16.5.5 (user \"bob\") is in use by \
             session 2 (user \"bob\")"
        );
        // The server's own address.
        let e = p.lease(5, None, Some(ip("10.0.0.254"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pool \"vpn\": fixed address 10.0.0.254 is the server's own localip address"
        );
        // An address no peer can have.
        let e = p.lease(6, Some("eve"), Some(ip("127.0.0.1"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pool \"vpn\": fixed address 127.0.0.1 (user \"eve\") cannot be a peer's \
             address (loopback)"
        );
        // Refusals change nothing.
        assert_eq!((p.in_use(), p.sessions()), (1, 2));
        // Once freed, the address can be had.
        assert!(p.release(1));
        assert_eq!(
            p.lease(7, Some("alice"), Some(ip("10.0.0.1")))
                .unwrap()
                .remote,
            ip("10.0.0.1")
        );
    }

    #[test]
    fn fixed_addresses_with_paired_lists() {
        let mut p = pool("10.0.1.1-4", "10.0.2.1-4");
        // Inside: its own pair's local address.
        let l = p.lease(1, None, Some(ip("10.0.2.3"))).unwrap();
        assert_eq!((l.local, l.remote), (ip("10.0.1.3"), ip("10.0.2.3")));
        // Outside: the first localip.
        let l = p.lease(2, None, Some(ip("192.0.2.7"))).unwrap();
        assert_eq!((l.local, l.remote), (ip("10.0.1.1"), ip("192.0.2.7")));
        assert_eq!(take(&mut p, 3), (ip("10.0.1.1"), ip("10.0.2.1")));
        assert_eq!(take(&mut p, 4), (ip("10.0.1.2"), ip("10.0.2.2")));
        assert_eq!(take(&mut p, 5), (ip("10.0.1.4"), ip("10.0.2.4")));
        assert!(matches!(
            p.lease(6, None, None),
            Err(PoolError::Exhausted { size: 4, .. })
        ));
        // A fixed address equal to any localip is refused.
        assert!(matches!(
            p.lease(7, None, Some(ip("10.0.1.4"))),
            Err(PoolError::FixedIsLocal { .. })
        ));
    }

    /// pptpd's rule for lists of unequal length: as many pairs as the
    /// shorter list, the rest ignored (and reported).
    #[test]
    fn unequal_lists_pair_up_to_the_shorter() {
        let mut p = pool("10.0.1.1-4", "10.0.2.1-6");
        assert_eq!(p.size(), 4);
        assert!(!p.contains(ip("10.0.2.5")));
        assert_eq!(
            p.warnings(),
            vec![
                "pool \"vpn\": localip gives only 4 addresses for 6 remoteip addresses; \
                 the last 2 remoteip addresses are not used (pairs go by position)"
                    .to_string()
            ]
        );
        for s in 1..=4 {
            take(&mut p, s);
        }
        assert!(p.lease(5, None, None).is_err());
        // An ignored remoteip address is outside the range.
        let l = p.lease(6, None, Some(ip("10.0.2.5"))).unwrap();
        assert_eq!(l.local, ip("10.0.1.1"));
        assert!(!p.get(6).unwrap().in_range);

        let p = pool("10.0.1.1-6", "10.0.2.1-4");
        assert_eq!(p.size(), 4);
        assert_eq!(
            p.warnings(),
            vec![
                "pool \"vpn\": remoteip gives only 4 addresses for 6 localip addresses; \
                 the last 2 localip addresses are not used (pairs go by position)"
                    .to_string()
            ]
        );
        // One remote and several locals: one pair.
        let mut p = pool("10.0.1.1-3", "10.0.2.1");
        assert_eq!(p.size(), 1);
        assert_eq!(take(&mut p, 1), (ip("10.0.1.1"), ip("10.0.2.1")));
    }

    #[test]
    fn connection_limit() {
        let mut p = Pool::parse("vpn", "10.0.0.254", "10.0.0.1-10", 3).unwrap();
        assert_eq!(p.limit(), 3);
        assert_eq!(
            p.warnings(),
            vec![
                "pool \"vpn\": connections 3 is below the 10 addresses of the range: \
                 at most 3 sessions at a time"
                    .to_string()
            ]
        );
        take(&mut p, 1);
        take(&mut p, 2);
        // A fixed address outside the range counts too.
        p.lease(3, Some("bob"), Some(ip("172.16.5.5"))).unwrap();
        let e = p.lease(4, None, None).unwrap_err();
        assert_eq!(
            e,
            PoolError::LimitReached {
                pool: "vpn".into(),
                limit: 3
            }
        );
        assert_eq!(e.to_string(), "pool \"vpn\": connection limit 3 reached");
        assert!(matches!(
            p.lease(5, None, Some(ip("10.0.0.7"))),
            Err(PoolError::LimitReached { .. })
        ));
        assert_eq!((p.in_use(), p.free(), p.sessions()), (2, 8, 3));
        assert!(p.release(3));
        assert_eq!(take(&mut p, 6).1, ip("10.0.0.3"));

        // pptpd's default, 100, below a /24's 254 addresses.
        let mut p = pool("10.1.0.1", "10.1.1.0/24");
        assert_eq!((p.size(), p.limit()), (254, 100));
        for s in 1..=100 {
            take(&mut p, s);
        }
        let e = p.lease(101, None, None).unwrap_err();
        assert_eq!(e.to_string(), "pool \"vpn\": connection limit 100 reached");
    }

    #[test]
    fn a_session_leases_once() {
        let mut p = pool("10.0.0.254", "10.0.0.1-3");
        take(&mut p, 7);
        let e = p.lease(7, None, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pool \"vpn\": session 7 already holds 10.0.0.1"
        );
        assert_eq!((p.in_use(), p.sessions()), (1, 1));
    }

    #[test]
    fn user_names_are_stored_inline_up_to_255_bytes() {
        let mut p = pool("10.0.0.254", "10.0.0.1-3");
        let long = "é".repeat(127) + "x"; // 255 bytes
        p.lease(1, Some(&long), None).unwrap();
        assert_eq!(p.get(1).unwrap().user, Some(long.as_str()));
        p.lease(2, Some(""), None).unwrap();
        assert_eq!(p.get(2).unwrap().user, Some(""));
        let e = p.lease(3, Some(&"u".repeat(256)), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pool \"vpn\": user name of 256 bytes is longer than 255"
        );
        assert_eq!(p.sessions(), 2);
        // Debug shows the name, not 255 bytes of buffer.
        let dbg = format!("{p:?}");
        assert!(dbg.contains("user: Some(\"\")"), "{dbg}");
    }
}
