//! Parsers for `ipf.rules` (`ipf.conf(5)`) and `ipnat.rules`
//! (`ipnat.conf(5)`), one rule per line, `#` to the end of a line is a
//! comment.
//!
//! Grammar accepted for a filter rule (`ipf.conf(5)`; what seed 000 §4.3
//! uses and what rule files found in the wild use besides):
//!
//! ```text
//! ACTION (in|out) { log [body] [first] [level [FAC.]PRI] | quick
//!     | on IFACE [in-via IFACE | out-via IFACE]
//!     | to IFACE[:ADDR] | dup-to IFACE[:ADDR] | fastroute } [proto P]
//!     (all | from [!]ADDR [PORT] to [!]ADDR [PORT])
//!     { with OPT {OPT} | flags F[/M] | icmp-type T [code C]
//!       | keep state [(limit N)] | keep frags | head N | group N }
//! ACTION := pass | count | skip N
//!     | block [return-rst | return-icmp[(CODE)] | return-icmp-as-dest[(CODE)]]
//! OPT  := ipopts | frag | short | opt NAME
//! ADDR := any | a.b.c.d[/len | /a.b.c.d]
//! PORT := port (=|!=|<|>|<=|>=|eq|ne|lt|gt|le|ge) N | port N >< M | port N <> M
//! N    := a number or a service name (`ssh`, `domain`, ...: [`SERVICES`], and
//!         a services(5) file's with [`parse_ipf_with`])
//! T    := a number or echorep, unreach, squench, redir, echo, routerad,
//!         routersol, timex, paramprob, timest, timestrep, inforeq, inforep,
//!         maskreq, maskrep
//! CODE := a number or net-unr, host-unr, proto-unr, port-unr, needfrag,
//!         srcfail, net-unk, host-unk, isolate, net-prohib, host-prohib,
//!         net-tos, host-tos, filter-prohib, host-preced, cutoff-preced
//! ```
//!
//! Parsing is not compiling: some of these parse (and print back) but are
//! refused by [`crate::compile()`] with an error naming the construct and the
//! line, because nftables cannot do what IPFilter does with them.
//!
//! and for NAT rules (`ipnat.conf(5)`, seed 000 §4.4):
//!
//! ```text
//! map IFACE ADDR -> ADDR [portmap (tcp|udp|tcp/udp) (auto|A:B)]
//! rdr IFACE ADDR port P -> a.b.c.d port Q [tcp|udp|tcp/udp]
//! ```
//!
//! Every error names the line and column of the offending token and shows it.

use std::net::Ipv4Addr;

use crate::ast::{
    tcp_flag, Action, AddrMatch, BlockReturn, Direction, FilterRule, IcmpMatch, IpOpt, IpfRules,
    IpnatRules, LogOpts, NatRule, PortMap, PortMatch, PortOp, Proto, RdrProto, RouteOpt, TcpFlags,
    Via, WithOpt, ICMP_CODE_NAMES, ICMP_TYPE_NAMES,
};

/// Service names a port may be written as (`port = ssh`), with their
/// numbers as both FreeBSD's and Debian's `/etc/services` list them
/// (IANA's registry): the names known without a services(5) file (the
/// parser does no I/O; [`Services::from_services_file`] adds a file's). A
/// name known to neither is an error naming it. Ports print back as numbers.
pub const SERVICES: [(&str, u16); 62] = [
    ("echo", 7),
    ("discard", 9),
    ("daytime", 13),
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("time", 37),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("gopher", 70),
    ("finger", 79),
    ("http", 80),
    ("www", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("sunrpc", 111),
    ("auth", 113),
    ("ident", 113),
    ("nntp", 119),
    ("ntp", 123),
    ("epmap", 135),
    ("netbios-ns", 137),
    ("netbios-dgm", 138),
    ("netbios-ssn", 139),
    ("imap", 143),
    ("snmp", 161),
    ("snmp-trap", 162),
    ("bgp", 179),
    ("irc", 194),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("isakmp", 500),
    ("syslog", 514),
    ("printer", 515),
    ("submission", 587),
    ("ldaps", 636),
    ("imaps", 993),
    ("pop3s", 995),
    ("socks", 1080),
    ("openvpn", 1194),
    ("ms-sql-s", 1433),
    ("ms-sql-m", 1434),
    ("l2f", 1701),
    ("l2tp", 1701),
    ("pptp", 1723),
    ("radius", 1812),
    ("radius-acct", 1813),
    ("nfs", 2049),
    ("mysql", 3306),
    ("ms-wbt-server", 3389),
    ("ipsec-nat-t", 4500),
    ("sip", 5060),
    ("postgresql", 5432),
    ("x11", 6000),
    ("http-alt", 8080),
    ("webcache", 8080),
    ("tproxy", 8081),
];

/// Syslog facilities and priorities `log level` accepts (syslog(3)).
const LOG_FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    "security", "audit", "logalert", "console",
];
const LOG_PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

/// A rule that does not parse: where, what was found, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: expected {expected}, found {found}")]
pub struct ParseError {
    /// Line, 1-based.
    pub line: usize,
    /// Column of the token's first character, 1-based, in characters.
    pub column: usize,
    /// The offending token in backquotes, or "end of line".
    pub found: String,
    /// What the parser wanted there.
    pub expected: String,
}

impl ParseError {
    /// The error as `tsunagi policy check` prints it: `FILE:LINE:COLUMN:
    /// message`, then the source line and a caret under the offending token.
    pub fn render(&self, file: &str, text: &str) -> String {
        let source = text.lines().nth(self.line.saturating_sub(1)).unwrap_or("");
        let width = match self
            .found
            .strip_prefix('`')
            .and_then(|f| f.strip_suffix('`'))
        {
            Some(token) => token.chars().count().max(1),
            None => 1,
        };
        // Tabs keep their width under the caret line.
        let pad: String = source
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!(
            "{file}:{}:{}: expected {}, found {}\n  {source}\n  {pad}{}",
            self.line,
            self.column,
            self.expected,
            self.found,
            "^".repeat(width)
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    column: usize,
}

/// Characters that make up words: names, numbers, addresses, `tcp/udp`,
/// `S/SA`, `1024:65535`, `icmp-type`.
fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | ':' | '_' | '-')
}

/// Split one line (comment already removed) into words and operators.
fn tokenize(line: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        if c == '-' && chars.get(i + 1).map(|&(_, c)| c) == Some('>') {
            j = i + 2;
        } else if is_word_char(c) {
            while j < chars.len() && is_word_char(chars[j].1) {
                // `a->b` written without spaces: stop the word before `->`.
                if chars[j].1 == '-' && chars.get(j + 1).map(|&(_, c)| c) == Some('>') {
                    break;
                }
                j += 1;
            }
        } else if matches!(c, '=' | '!' | '<' | '>') {
            while j < chars.len() && matches!(chars[j].1, '=' | '!' | '<' | '>') {
                j += 1;
            }
        }
        let end = chars.get(j).map_or(line.len(), |&(e, _)| e);
        tokens.push(Token {
            text: &line[start..end],
            column,
        });
        i = j;
    }
    tokens
}

/// The tokens of one line with a cursor.
struct Cursor<'a> {
    line: usize,
    tokens: Vec<Token<'a>>,
    pos: usize,
    /// Column just past the end of the line, for "end of line" errors.
    end_column: usize,
    /// Service names for ports.
    services: &'a Services,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.pos).map(|t| t.text)
    }

    fn next(&mut self) -> Option<&'a str> {
        let t = self.peek();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.peek() == Some(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// An error about the token at the cursor.
    fn error(&self, expected: impl Into<String>) -> ParseError {
        self.error_at(self.pos, expected)
    }

    /// An error about the token just consumed.
    fn error_prev(&self, expected: impl Into<String>) -> ParseError {
        self.error_at(self.pos.saturating_sub(1), expected)
    }

    fn error_at(&self, index: usize, expected: impl Into<String>) -> ParseError {
        let (column, found) = match self.tokens.get(index) {
            Some(t) => (t.column, format!("`{}`", t.text)),
            None => (self.end_column, "end of line".to_string()),
        };
        ParseError {
            line: self.line,
            column,
            found,
            expected: expected.into(),
        }
    }

    fn expect(&mut self, word: &str) -> Result<(), ParseError> {
        if self.eat(word) {
            Ok(())
        } else {
            Err(self.error(format!("`{word}`")))
        }
    }

    fn expect_end(&mut self) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("end of rule")),
        }
    }

    fn word(&mut self, what: &str) -> Result<&'a str, ParseError> {
        match self.next() {
            Some(w) if w.chars().all(is_word_char) => Ok(w),
            Some(_) => Err(self.error_prev(what)),
            None => Err(self.error(what)),
        }
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, ParseError> {
        match self.next() {
            Some(w) if w.bytes().all(|b| b.is_ascii_digit()) => {
                w.parse().map_err(|_| self.error_prev(what))
            }
            Some(_) => Err(self.error_prev(what)),
            None => Err(self.error(what)),
        }
    }

    fn interface(&mut self) -> Result<String, ParseError> {
        let name = self.word("an interface name")?;
        // Linux allows 15 bytes; IPFilter names are shorter still.
        if name.is_empty()
            || name.len() > 15
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        {
            return Err(
                self.error_prev("an interface name (letters, digits, `.`, `_`, `-`; at most 15)")
            );
        }
        Ok(name.to_string())
    }

    /// `any` or `a.b.c.d[/len|/mask]`.
    fn addr(&mut self) -> Result<AddrMatch, ParseError> {
        const WHAT: &str = "`any` or an IPv4 address[/prefix]";
        let Some(text) = self.next() else {
            return Err(self.error(WHAT));
        };
        if text == "any" {
            return Ok(AddrMatch::Any);
        }
        let (addr, prefix) = match text.split_once('/') {
            None => (text, None),
            Some((a, p)) => (a, Some(p)),
        };
        // ipnat.conf(5) writes the interface's own address as `0/32`.
        let addr: Ipv4Addr = if addr == "0" {
            Ipv4Addr::UNSPECIFIED
        } else {
            addr.parse().map_err(|_| self.error_prev(WHAT))?
        };
        let prefix = match prefix {
            None => 32,
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
                match p.parse::<u8>() {
                    Ok(n) if n <= 32 => n,
                    _ => return Err(self.error_prev("a prefix length 0..=32")),
                }
            }
            Some(p) => {
                let mask: Ipv4Addr = p.parse().map_err(|_| self.error_prev(WHAT))?;
                let m = u32::from(mask);
                // A netmask is ones followed by zeros.
                if m.leading_ones() + m.trailing_zeros() != 32 {
                    return Err(self.error_prev("a contiguous netmask"));
                }
                m.leading_ones() as u8
            }
        };
        Ok(AddrMatch::Net { addr, prefix })
    }

    /// After `port`: an operator and a number, or `N >< M` / `N <> M`.
    fn port_match(&mut self) -> Result<PortMatch, ParseError> {
        const WHAT: &str = "a port comparison (`= N`, `N >< M`, ...)";
        let Some(first) = self.peek() else {
            return Err(self.error(WHAT));
        };
        let op = match first {
            "=" | "eq" => Some(PortOp::Eq),
            "!=" | "ne" => Some(PortOp::Ne),
            "<" | "lt" => Some(PortOp::Lt),
            ">" | "gt" => Some(PortOp::Gt),
            "<=" | "le" => Some(PortOp::Le),
            ">=" | "ge" => Some(PortOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.pos += 1;
            let n = self.port_number()?;
            return Ok(PortMatch::Cmp(op, n));
        }
        if !first.bytes().all(|b| b.is_ascii_digit()) && self.services.port(first).is_none() {
            return Err(self.error(WHAT));
        }
        let a = self.port_number()?;
        let range = match self.next() {
            Some("><") => PortMatch::Inside,
            Some("<>") => PortMatch::Outside,
            Some(_) => return Err(self.error_prev("`><` or `<>`")),
            None => return Err(self.error("`><` or `<>`")),
        };
        let b = self.port_number()?;
        Ok(range(a, b))
    }

    /// A port number or a service name of [`SERVICES`].
    fn port_number(&mut self) -> Result<u16, ParseError> {
        const WHAT: &str = "a port number 0..=65535 or a service name";
        match self.peek() {
            Some(w) if !w.bytes().all(|b| b.is_ascii_digit()) => match self.services.port(w) {
                Some(n) => {
                    self.pos += 1;
                    Ok(n)
                }
                None => Err(self.error(WHAT)),
            },
            _ => self.number(WHAT),
        }
    }

    /// `(CODE)` after `return-icmp`: a name of [`ICMP_CODE_NAMES`] or a
    /// number 0..=255.
    fn icmp_return_code(&mut self) -> Result<Option<u8>, ParseError> {
        if !self.eat("(") {
            return Ok(None);
        }
        const WHAT: &str = "an ICMP code (`port-unr`, `host-unr`, ... or a number)";
        let code = match self.next() {
            Some(w) => match ICMP_CODE_NAMES.iter().position(|n| *n == w) {
                Some(i) => i as u8,
                None => w.parse::<u8>().map_err(|_| self.error_prev(WHAT))?,
            },
            None => return Err(self.error(WHAT)),
        };
        self.expect(")")?;
        Ok(Some(code))
    }

    /// `IF[:ADDR]` after `to` / `dup-to`.
    fn route_target(&mut self) -> Result<(String, Option<Ipv4Addr>), ParseError> {
        let word = self.word("an interface name[:address]")?;
        let (name, addr) = match word.split_once(':') {
            None => (word, None),
            Some((n, a)) => (
                n,
                Some(
                    a.parse::<Ipv4Addr>()
                        .map_err(|_| self.error_prev("an interface name[:IPv4 address]"))?,
                ),
            ),
        };
        if name.is_empty() || name.len() > 15 {
            return Err(self.error_prev("an interface name[:address]"));
        }
        Ok((name.to_string(), addr))
    }

    fn flags_word(&self, letters: &str) -> Result<u8, ParseError> {
        let mut bits = 0u8;
        for c in letters.chars() {
            match tcp_flag::LETTERS.iter().find(|(l, _)| *l == c) {
                Some((_, bit)) => bits |= bit,
                None => return Err(self.error_prev("TCP flag letters from FSRPAUEC")),
            }
        }
        if letters.is_empty() {
            return Err(self.error_prev("TCP flag letters from FSRPAUEC"));
        }
        Ok(bits)
    }

    fn rdr_proto(&mut self) -> Result<RdrProto, ParseError> {
        match self.next() {
            Some("tcp") => Ok(RdrProto::Tcp),
            Some("udp") => Ok(RdrProto::Udp),
            Some("tcp/udp") => Ok(RdrProto::TcpUdp),
            Some(_) => Err(self.error_prev("`tcp`, `udp` or `tcp/udp`")),
            None => Err(self.error("`tcp`, `udp` or `tcp/udp`")),
        }
    }
}

/// The port number of service `name`, from [`SERVICES`].
pub fn service(name: &str) -> Option<u16> {
    SERVICES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// Service names a rule file's ports may use: [`SERVICES`], and those of a
/// `services(5)` file (as `/etc/services`, which IPFilter's `ipf` consults
/// through getservbyname(3)) when one is given; the file wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Services {
    names: std::collections::HashMap<String, u16>,
}

impl Services {
    /// Only the built-in [`SERVICES`].
    pub fn builtin() -> Services {
        Services::default()
    }

    /// [`SERVICES`] and the TCP and UDP names (and aliases) of a
    /// `services(5)` text: `name port/protocol [alias ...] [# comment]`.
    /// Lines that do not read so are skipped, as getservent(3) skips them.
    pub fn from_services_file(text: &str) -> Services {
        let mut names = std::collections::HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(port)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = port.split_once('/') else {
                continue;
            };
            let (Ok(port), "tcp" | "udp") = (port.parse::<u16>(), proto) else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                names.entry(n.to_string()).or_insert(port);
            }
        }
        Services { names }
    }

    /// The port of `name`.
    pub fn port(&self, name: &str) -> Option<u16> {
        self.names.get(name).copied().or_else(|| service(name))
    }
}

/// Lines of a rule file: (1-based number, cursor) for each non-empty line.
fn lines<'a>(text: &'a str, services: &'a Services) -> impl Iterator<Item = Cursor<'a>> {
    text.lines().enumerate().filter_map(move |(i, line)| {
        let code = line.split('#').next().unwrap_or("");
        let tokens = tokenize(code);
        if tokens.is_empty() {
            return None;
        }
        Some(Cursor {
            line: i + 1,
            end_column: code.chars().count() + 1,
            tokens,
            pos: 0,
            services,
        })
    })
}

/// Parse `ipf.rules`, ports named by the built-in [`SERVICES`].
pub fn parse_ipf(text: &str) -> Result<IpfRules, ParseError> {
    parse_ipf_with(text, &Services::builtin())
}

/// Parse `ipf.rules`, ports named by `services`.
pub fn parse_ipf_with(text: &str, services: &Services) -> Result<IpfRules, ParseError> {
    let mut rules = Vec::new();
    for mut cur in lines(text, services) {
        rules.push(parse_filter_rule(&mut cur)?);
    }
    Ok(IpfRules { rules })
}

fn parse_filter_rule(cur: &mut Cursor<'_>) -> Result<FilterRule, ParseError> {
    const ACTIONS: &str = "`pass`, `block`, `count` or `skip`";
    let action = match cur.next() {
        Some("pass") => Action::Pass,
        Some("block") => Action::Block,
        Some("count") => Action::Count,
        Some("skip") => {
            let n: u32 = cur.number("the number of rules to skip")?;
            Action::Skip(n)
        }
        Some(_) => return Err(cur.error_prev(ACTIONS)),
        None => return Err(cur.error(ACTIONS)),
    };
    let ret = if action == Action::Block {
        match cur.peek() {
            Some("return-rst") => {
                cur.pos += 1;
                Some(BlockReturn::Rst)
            }
            Some("return-icmp") => {
                cur.pos += 1;
                Some(BlockReturn::Icmp(cur.icmp_return_code()?))
            }
            Some("return-icmp-as-dest") => {
                cur.pos += 1;
                Some(BlockReturn::IcmpAsDest(cur.icmp_return_code()?))
            }
            _ => None,
        }
    } else {
        None
    };
    let direction = match cur.next() {
        Some("in") => Direction::In,
        Some("out") => Direction::Out,
        Some(_) => return Err(cur.error_prev("`in` or `out`")),
        None => return Err(cur.error("`in` or `out`")),
    };
    // ipf.conf(5) takes these in any order, each once.
    let (mut log, mut log_opts, mut quick) = (false, LogOpts::default(), false);
    let (mut interface, mut via, mut route) = (None, None, None);
    loop {
        match cur.peek() {
            Some("log") if !log => {
                cur.pos += 1;
                log = true;
                loop {
                    match cur.peek() {
                        Some("body") if !log_opts.body => log_opts.body = true,
                        Some("first") if !log_opts.first => log_opts.first = true,
                        Some("level") if log_opts.level.is_none() => {
                            cur.pos += 1;
                            let level = cur.word("a syslog `facility.priority` or `priority`")?;
                            let (fac, pri) = match level.split_once('.') {
                                Some((f, p)) => (Some(f), p),
                                None => (None, level),
                            };
                            if fac.is_some_and(|f| !LOG_FACILITIES.contains(&f))
                                || !LOG_PRIORITIES.contains(&pri)
                            {
                                return Err(cur.error_prev(
                                    "a syslog `facility.priority` or `priority` (as `local0.info`)",
                                ));
                            }
                            log_opts.level = Some(level.to_string());
                            continue;
                        }
                        _ => break,
                    }
                    cur.pos += 1;
                }
            }
            Some("quick") if !quick => {
                cur.pos += 1;
                quick = true;
            }
            Some("on") if interface.is_none() => {
                cur.pos += 1;
                interface = Some(cur.interface()?);
                if cur.eat("in-via") {
                    via = Some(Via::In(cur.interface()?));
                } else if cur.eat("out-via") {
                    via = Some(Via::Out(cur.interface()?));
                }
            }
            Some("fastroute") if route.is_none() => {
                cur.pos += 1;
                route = Some(RouteOpt::FastRoute);
            }
            Some("dup-to") if route.is_none() => {
                cur.pos += 1;
                let (i, a) = cur.route_target()?;
                route = Some(RouteOpt::DupTo(i, a));
            }
            // `to IF` here routes; `to ADDR` after `from` is the destination.
            Some("to") if route.is_none() => {
                cur.pos += 1;
                let (i, a) = cur.route_target()?;
                route = Some(RouteOpt::To(i, a));
            }
            _ => break,
        }
    }
    let proto = if cur.eat("proto") {
        Some(match cur.next() {
            Some("tcp") => Proto::Tcp,
            Some("udp") => Proto::Udp,
            Some("tcp/udp") => Proto::TcpUdp,
            Some("icmp") => Proto::Icmp,
            Some(n) if n.bytes().all(|b| b.is_ascii_digit()) => match n.parse::<u8>() {
                Ok(6) => Proto::Tcp,
                Ok(17) => Proto::Udp,
                Ok(1) => Proto::Icmp,
                Ok(n) => Proto::Number(n),
                Err(_) => return Err(cur.error_prev("a protocol number 0..=255")),
            },
            Some(_) => return Err(cur.error_prev("`tcp`, `udp`, `tcp/udp`, `icmp` or a number")),
            None => return Err(cur.error("a protocol")),
        })
    } else {
        None
    };
    let mut rule = FilterRule {
        line: cur.line,
        action,
        direction,
        ret,
        log,
        log_opts,
        quick,
        interface,
        via,
        route,
        proto,
        src: AddrMatch::Any,
        src_not: false,
        src_port: None,
        dst: AddrMatch::Any,
        dst_not: false,
        dst_port: None,
        all: false,
        with: Vec::new(),
        flags: None,
        icmp: None,
        keep_state: false,
        state_limit: None,
        keep_frags: false,
        head: None,
        group: 0,
    };
    let ports_ok = proto.is_some_and(Proto::has_ports);
    if cur.eat("all") {
        rule.all = true;
    } else if cur.eat("from") {
        rule.src_not = cur.eat("!");
        rule.src = cur.addr()?;
        if cur.eat("port") {
            if !ports_ok {
                return Err(cur.error_prev("`to` (ports need `proto tcp`, `udp` or `tcp/udp`)"));
            }
            rule.src_port = Some(cur.port_match()?);
        }
        cur.expect("to")?;
        rule.dst_not = cur.eat("!");
        rule.dst = cur.addr()?;
        if cur.eat("port") {
            if !ports_ok {
                return Err(
                    cur.error_prev("end of addresses (ports need `proto tcp`, `udp` or `tcp/udp`)")
                );
            }
            rule.dst_port = Some(cur.port_match()?);
        }
    } else {
        return Err(cur.error("`all` or `from`"));
    }
    let mut group_written = false;
    while let Some(word) = cur.next() {
        match word {
            "with" => {
                let before = rule.with.len();
                while let Some(opt) = cur.peek() {
                    let opt = match opt {
                        "ipopts" => WithOpt::IpOpts,
                        "frag" => WithOpt::Frag,
                        "short" => WithOpt::Short,
                        "opt" => {
                            cur.pos += 1;
                            const WHAT: &str = "an IP option name (`lsrr`, `ssrr`, `rr`, ...)";
                            let name = cur.word(WHAT)?;
                            match IpOpt::ALL.iter().find(|(_, n)| *n == name) {
                                Some((o, _)) => WithOpt::Opt(*o),
                                None => return Err(cur.error_prev(WHAT)),
                            }
                        }
                        _ => break,
                    };
                    if !matches!(opt, WithOpt::Opt(_)) {
                        cur.pos += 1;
                    }
                    if rule.with.contains(&opt) {
                        return Err(cur.error_prev("a `with` option not already given"));
                    }
                    rule.with.push(opt);
                }
                if rule.with.len() == before {
                    return Err(cur.error("`ipopts`, `frag`, `short` or `opt NAME`"));
                }
            }
            "flags" => {
                if rule.flags.is_some() {
                    return Err(cur.error_prev("one `flags` per rule"));
                }
                if !matches!(rule.proto, Some(Proto::Tcp)) {
                    return Err(cur.error_prev("`flags` only after `proto tcp`"));
                }
                let text = cur.word("TCP flags like `S` or `S/SA`")?;
                let (set, mask) = match text.split_once('/') {
                    None => (text, None),
                    Some((s, m)) => (s, Some(m)),
                };
                let set = cur.flags_word(set)?;
                let mask = match mask {
                    None => None,
                    Some(m) => Some(cur.flags_word(m)?),
                };
                rule.flags = Some(TcpFlags { set, mask });
            }
            "icmp-type" => {
                if rule.icmp.is_some() {
                    return Err(cur.error_prev("one `icmp-type` per rule"));
                }
                if rule.proto != Some(Proto::Icmp) {
                    return Err(cur.error_prev("`icmp-type` only after `proto icmp`"));
                }
                const WHAT: &str = "an ICMP type (`echo`, `unreach`, ... or a number)";
                let w = cur.word(WHAT)?;
                let ty = match ICMP_TYPE_NAMES.iter().find(|(n, _)| *n == w) {
                    Some((_, t)) => *t,
                    None => w.parse::<u8>().map_err(|_| cur.error_prev(WHAT))?,
                };
                let code = if cur.eat("code") {
                    Some(cur.number("an ICMP code 0..=255")?)
                } else {
                    None
                };
                rule.icmp = Some(IcmpMatch { ty, code });
            }
            "keep" => match cur.next() {
                Some("state") if !rule.keep_state => {
                    rule.keep_state = true;
                    if cur.eat("(") {
                        cur.expect("limit")?;
                        let n: u32 = cur.number("a number of sessions")?;
                        if n == 0 {
                            return Err(cur.error_prev("a limit of at least 1"));
                        }
                        rule.state_limit = Some(n);
                        cur.expect(")")?;
                    }
                }
                Some("frags") if !rule.keep_frags => rule.keep_frags = true,
                Some(_) => return Err(cur.error_prev("`state` or `frags` (once each)")),
                None => return Err(cur.error("`state` or `frags`")),
            },
            "head" => {
                if rule.head.is_some() {
                    return Err(cur.error_prev("one `head` per rule"));
                }
                let n: u32 = cur.number("a group number")?;
                if n == 0 {
                    return Err(cur.error_prev("a group number other than 0 (the default group)"));
                }
                rule.head = Some(n);
            }
            "group" => {
                if group_written {
                    return Err(cur.error_prev("one `group` per rule"));
                }
                group_written = true;
                rule.group = cur.number("a group number")?;
            }
            _ => {
                return Err(cur.error_prev(
                    "`with`, `flags`, `icmp-type`, `keep state`, `keep frags`, `head`, `group` or end of rule",
                ))
            }
        }
    }
    if rule.head.is_some() && rule.head == Some(rule.group) {
        return Err(cur.error_at(
            cur.tokens.len() - 1,
            "a `head` different from the rule's own `group`",
        ));
    }
    Ok(rule)
}

/// Parse `ipnat.rules`.
pub fn parse_ipnat(text: &str) -> Result<IpnatRules, ParseError> {
    let mut rules = Vec::new();
    let services = Services::builtin();
    for mut cur in lines(text, &services) {
        let rule = match cur.next() {
            Some("map") => parse_map(&mut cur)?,
            Some("rdr") => parse_rdr(&mut cur)?,
            Some(_) => return Err(cur.error_prev("`map` or `rdr`")),
            None => return Err(cur.error("`map` or `rdr`")),
        };
        cur.expect_end()?;
        rules.push(rule);
    }
    Ok(IpnatRules { rules })
}

fn parse_map(cur: &mut Cursor<'_>) -> Result<NatRule, ParseError> {
    let interface = cur.interface()?;
    let src = cur.addr()?;
    cur.expect("->")?;
    let to = cur.addr()?;
    let portmap = if cur.eat("portmap") {
        let proto = cur.rdr_proto()?;
        let range = match cur.next() {
            Some("auto") => None,
            Some(r) => {
                let parsed = r
                    .split_once(':')
                    .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)));
                match parsed {
                    Some((a, b)) if a >= 1 && a <= b => Some((a, b)),
                    _ => {
                        return Err(cur.error_prev("`auto` or a port range `A:B` with 1 <= A <= B"))
                    }
                }
            }
            None => return Err(cur.error("`auto` or a port range `A:B`")),
        };
        Some(PortMap { proto, range })
    } else {
        None
    };
    Ok(NatRule::Map {
        line: cur.line,
        interface,
        src,
        to,
        portmap,
    })
}

fn parse_rdr(cur: &mut Cursor<'_>) -> Result<NatRule, ParseError> {
    let interface = cur.interface()?;
    let dst = cur.addr()?;
    cur.expect("port")?;
    let port = cur.number("a port number 0..=65535")?;
    cur.expect("->")?;
    let to = match cur.addr()? {
        AddrMatch::Net { addr, prefix: 32 } => addr,
        _ => return Err(cur.error_prev("one IPv4 address to redirect to")),
    };
    cur.expect("port")?;
    let to_port = cur.number("a port number 0..=65535")?;
    let (proto, proto_written) = if cur.peek().is_some() {
        (cur.rdr_proto()?, true)
    } else {
        (RdrProto::Tcp, false)
    };
    Ok(NatRule::Rdr {
        line: cur.line,
        interface,
        dst,
        port,
        to,
        to_port,
        proto,
        proto_written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_rule_parses_and_prints_back() {
        let text = "pass in log quick proto tcp from any to any port 9900 >< 9990 flags S keep state keep frags group 300\n";
        let rules = parse_ipf(text).unwrap();
        let r = &rules.rules[0];
        assert_eq!(r.dst_port, Some(PortMatch::Inside(9900, 9990)));
        assert_eq!(
            r.flags,
            Some(TcpFlags {
                set: tcp_flag::SYN,
                mask: None
            })
        );
        assert_eq!(r.group, 300);
        assert_eq!(rules.to_string(), text);
    }

    #[test]
    fn error_names_line_column_and_token() {
        let err = parse_ipf("# c\npass in quick on lo0 all\npass inn all\n").unwrap_err();
        assert_eq!((err.line, err.column), (3, 6));
        assert_eq!(err.found, "`inn`");
        assert_eq!(
            err.to_string(),
            "line 3, column 6: expected `in` or `out`, found `inn`"
        );
        let err = parse_ipf("pass in proto tcp from any to any port = 99999").unwrap_err();
        assert_eq!(
            (err.line, err.column, err.found.as_str()),
            (1, 42, "`99999`")
        );
        let err = parse_ipf("pass in from any").unwrap_err();
        assert_eq!(err.found, "end of line");
        let err = parse_ipf("pass in proto icmp from any to any port = 5").unwrap_err();
        assert_eq!(err.found, "`port`");
    }

    #[test]
    fn render_points_at_the_token() {
        let text = "pass in all\nblock in quick proto tcp from any to any port = httq\n";
        let err = parse_ipf(text).unwrap_err();
        let expected = format!(
            "ipf.rules:2:49: expected a port number 0..=65535 or a service name, found `httq`\n  \
             block in quick proto tcp from any to any port = httq\n  {}^^^^",
            " ".repeat(48)
        );
        assert_eq!(err.render("ipf.rules", text), expected);
    }

    #[test]
    fn ipnat_seed_rules() {
        let text = "map em0 192.168.1.0/24 -> 192.168.253.4/32 portmap tcp/udp auto\n\
                    map em1 192.168.1.0/24 -> 172.16.1.4/32\n\
                    rdr em0 192.168.253.3/32 port 53 -> 192.168.1.6 port 53\n";
        let rules = parse_ipnat(text).unwrap();
        assert_eq!(rules.rules.len(), 3);
        assert_eq!(parse_ipnat(&rules.to_string()).unwrap(), rules);
        let err = parse_ipnat("map em0 192.168.1.0/24 => 1.2.3.4").unwrap_err();
        assert_eq!((err.column, err.found.as_str()), (24, "`=>`"));
    }

    #[test]
    fn services_file_names_and_aliases() {
        let etc = "# services(5)\nimap3\t\t220/tcp\nnntps 563/tcp snntp # NNTP over TLS\n\
                   ssh 2222/tcp\nbroken\nx 12/ddp\n";
        let s = Services::from_services_file(etc);
        assert_eq!(s.port("imap3"), Some(220));
        assert_eq!(s.port("snntp"), Some(563));
        assert_eq!(s.port("ssh"), Some(2222), "the file wins");
        assert_eq!(s.port("domain"), Some(53), "built-in names stay");
        assert_eq!(s.port("x"), None);
        let rules = parse_ipf_with("pass in proto tcp from any to any port = imap3\n", &s).unwrap();
        assert_eq!(
            rules.rules[0].dst_port,
            Some(PortMatch::Cmp(PortOp::Eq, 220))
        );
        assert!(parse_ipf("pass in proto tcp from any to any port = imap3\n").is_err());
    }

    #[test]
    fn words_stop_before_arrow() {
        let rules = parse_ipnat("map em0 10.0.0.0/8->1.2.3.4/32").unwrap();
        assert_eq!(rules.rules.len(), 1);
    }
}
