//! pppd options files (pppd(8) "OPTIONS FILES"): /etc/ppp/options,
//! /etc/ppp/peers/NAME, `file` arguments, pptpd's `option` and xl2tpd's
//! `pppoptfile` (seed 001's vpn-saturn, vpn-option, options, options.pptpd;
//! seed 002's options.l2tpd.client; seed 004's pptpd-options).
//!
//! pppd reads words separated by white space, `#` to the end of the line
//! being a comment, `"..."` and `\` quoting. An option and its arguments
//! are taken from one line here (all the seeds write them so); an option
//! whose argument is missing is [`PppdOption::Other`] and reported.

use super::emit::{Kind, Origin, Section, Value};
use super::{words, Ctx, Reason};

/// pppd's authentication options, by the method they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// PAP (`+pap`, `require-pap`).
    Pap,
    /// CHAP with MD5 (`+chap`, `require-chap`).
    Chap,
    /// MS-CHAPv2 (`require-mschap-v2`, the chapms patch's `+chapms-v2`).
    MsChapV2,
}

impl AuthKind {
    fn key(self) -> &'static str {
        match self {
            AuthKind::Pap => "pap",
            AuthKind::Chap => "chap",
            AuthKind::MsChapV2 => "mschap-v2",
        }
    }
}

/// One option of an options file, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PppdOption {
    /// `pty SCRIPT`: run SCRIPT and speak PPP over its stdio.
    Pty(String),
    /// `notty`: PPP over pppd's own stdin/stdout.
    Notty,
    /// `LOCAL:REMOTE` (either may be empty).
    Addresses {
        /// Our address.
        local: Option<String>,
        /// The peer's.
        remote: Option<String>,
    },
    /// `noauth`.
    Noauth,
    /// `+pap`, `require-chap`, ...
    Require(AuthKind),
    /// `name NAME`.
    Name(String),
    /// `user NAME`.
    User(String),
    /// `password SECRET`.
    Password(String),
    /// `proxyarp`.
    Proxyarp,
    /// `mtu N`.
    Mtu(String),
    /// `mru N`.
    Mru(String),
    /// `defaultroute`.
    Defaultroute,
    /// `persist`.
    Persist,
    /// `holdoff N`.
    Holdoff(String),
    /// `lcp-echo-interval N`.
    EchoInterval(String),
    /// `lcp-echo-failure N`.
    EchoFailure(String),
    /// `usepeerdns`.
    Usepeerdns,
    /// `ms-dns ADDR`.
    MsDns(String),
    /// `asyncmap MAP`.
    Asyncmap(String),
    /// `deflate N`.
    Deflate(String),
    /// `require-mppe-128`, `mppe-128` (patched pppd), `require-mppe-40`,
    /// `require-mppe`: the value of tsunagi's `mppe`.
    Mppe(&'static str),
    /// `mppe-stateful` (true) / `mppe-stateless` (false).
    MppeStateful(bool),
    /// `+ipv6` (true) / `noipv6`, `-ipv6` (false).
    Ipv6(bool),
    /// Serial-line options with no meaning on a tunnel: `crtscts`, `lock`,
    /// `modem`, `local`, `nocrtscts`.
    Serial,
    /// `privgroup GROUP`.
    Privgroup(String),
    /// `file FILE`.
    File(String),
    /// `debug`.
    Debug,
    /// A known option with the wrong number of arguments (the option
    /// word): pppd takes one word, a command with spaces must be quoted.
    BadArgs(String),
    /// Anything else (the option word).
    Other(String),
}

/// One option with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line.
    pub line: usize,
    /// The line as written (trimmed), for reports.
    pub text: String,
    /// The option.
    pub option: PppdOption,
}

/// A parsed options file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Its options, in file order.
    pub lines: Vec<Line>,
}

impl Options {
    /// The `pty` line, if any (also one whose script is not one word:
    /// the file is still meant to dial).
    pub fn pty(&self) -> Option<&Line> {
        self.lines.iter().find(|l| match &l.option {
            PppdOption::Pty(_) => true,
            PppdOption::BadArgs(w) => w == "pty",
            _ => false,
        })
    }

    /// Whether it has `notty`.
    pub fn notty(&self) -> bool {
        self.lines.iter().any(|l| l.option == PppdOption::Notty)
    }
}

fn one(args: &[String], make: fn(String) -> PppdOption, word: &str) -> PppdOption {
    match args {
        [a] => make(a.clone()),
        _ => PppdOption::BadArgs(word.to_string()),
    }
}

/// Parses an options file (sans-IO).
pub fn parse(text: &str) -> Options {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let w = words(raw, true);
        let Some((word, args)) = w.split_first() else {
            continue;
        };
        let option = match (word.as_str(), args.len()) {
            ("pty", _) => one(args, PppdOption::Pty, word),
            ("notty", 0) => PppdOption::Notty,
            ("noauth", 0) => PppdOption::Noauth,
            ("+pap" | "require-pap", 0) => PppdOption::Require(AuthKind::Pap),
            ("+chap" | "require-chap", 0) => PppdOption::Require(AuthKind::Chap),
            ("+chapms-v2" | "require-mschap-v2", 0) => PppdOption::Require(AuthKind::MsChapV2),
            ("name", _) => one(args, PppdOption::Name, word),
            ("user", _) => one(args, PppdOption::User, word),
            ("password", _) => one(args, PppdOption::Password, word),
            ("proxyarp", 0) => PppdOption::Proxyarp,
            ("mtu", _) => one(args, PppdOption::Mtu, word),
            ("mru", _) => one(args, PppdOption::Mru, word),
            ("defaultroute", 0) => PppdOption::Defaultroute,
            ("persist", 0) => PppdOption::Persist,
            ("holdoff", _) => one(args, PppdOption::Holdoff, word),
            ("lcp-echo-interval", _) => one(args, PppdOption::EchoInterval, word),
            ("lcp-echo-failure", _) => one(args, PppdOption::EchoFailure, word),
            ("usepeerdns", 0) => PppdOption::Usepeerdns,
            ("ms-dns", _) => one(args, PppdOption::MsDns, word),
            ("asyncmap", _) => one(args, PppdOption::Asyncmap, word),
            ("deflate", _) => one(args, PppdOption::Deflate, word),
            ("require-mppe-128" | "mppe-128", 0) => PppdOption::Mppe("require-128"),
            ("require-mppe-40" | "mppe-40", 0) => PppdOption::Mppe("require-40"),
            ("require-mppe" | "mppe", 0) => PppdOption::Mppe("require"),
            ("mppe-stateful", 0) => PppdOption::MppeStateful(true),
            ("mppe-stateless", 0) => PppdOption::MppeStateful(false),
            ("+ipv6", 0) => PppdOption::Ipv6(true),
            ("noipv6" | "-ipv6", 0) => PppdOption::Ipv6(false),
            ("crtscts" | "nocrtscts" | "lock" | "modem" | "local", 0) => PppdOption::Serial,
            ("privgroup", _) => one(args, PppdOption::Privgroup, word),
            ("file", _) => one(args, PppdOption::File, word),
            ("debug", 0) => PppdOption::Debug,
            (w, 0) if w.contains(':') => {
                let (l, r) = w.split_once(':').unwrap_or((w, ""));
                let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
                PppdOption::Addresses {
                    local: some(l),
                    remote: some(r),
                }
            }
            (w, _) => PppdOption::Other(w.to_string()),
        };
        lines.push(Line {
            line: i + 1,
            text: raw.trim().to_string(),
            option,
        });
    }
    Options { lines }
}

/// Whether `word` is an option this module knows (for telling an options
/// file by its content).
pub fn is_option(text: &str) -> bool {
    !matches!(
        parse(text).lines.first().map(|l| &l.option),
        None | Some(PppdOption::Other(_))
    )
}

/// What the options are applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A site link in dial mode (`pty`).
    Dial,
    /// A site link in direct mode (`notty`).
    Direct,
    /// An L2TP LAC (xl2tpd `pppoptfile`).
    L2tp,
    /// A server's sessions (pptpd `option`, xl2tpd `[lns]` `pppoptfile`).
    Server,
}

/// Applies `opts` (input `file`) to `section`, reporting what does not
/// convert.
pub fn apply(ctx: &mut Ctx, file: usize, opts: &Options, target: Target, section: &mut Section) {
    let mut mppe_named = false;
    for l in &opts.lines {
        let at = Origin { file, line: l.line };
        let left = |ctx: &mut Ctx, reason: Reason| ctx.left(file, Some(l.line), &l.text, reason);
        match &l.option {
            PppdOption::Pty(cmd) => {
                if target == Target::Dial {
                    if super::is_placeholder(cmd) {
                        left(ctx, Reason::Placeholder);
                    } else {
                        section.set("device", Value::Str(format!("!{cmd}")), at);
                    }
                } else {
                    left(
                        ctx,
                        Reason::NoEquivalent("pty is a dialling site link's device"),
                    );
                }
            }
            PppdOption::Notty => {
                if target != Target::Direct {
                    left(ctx, Reason::NoEquivalent("notty is a direct site link"));
                }
            }
            PppdOption::Addresses { local, remote } => {
                if target == Target::Server {
                    left(
                        ctx,
                        Reason::NoEquivalent("a server's addresses are localip/remoteip"),
                    );
                    continue;
                }
                for (key, addr) in [("local", local), ("remote", remote)] {
                    if let Some(a) = addr {
                        match a.parse::<std::net::Ipv4Addr>() {
                            Ok(_) => section.set(key, Value::Str(a.clone()), at),
                            Err(_) => left(ctx, Reason::BadValue("not an IPv4 address")),
                        }
                    }
                }
            }
            // pppd's `noauth`: we demand nothing of the peer, which is
            // tsunagi's default for links; a server must authenticate.
            PppdOption::Noauth => {
                if target == Target::Server {
                    left(
                        ctx,
                        Reason::NoEquivalent("a tsunagi server always authenticates its peers"),
                    );
                }
            }
            PppdOption::Require(kind) => section.push("require", kind.key(), at),
            PppdOption::Name(n) => {
                if target == Target::L2tp {
                    // xl2tpd's client: `name` is who we are (seed 002,
                    // README L2TP table: `name xxxx` -> `user`).
                    section.set("user", Value::Str(n.clone()), at);
                } else {
                    section.set("name", Value::Str(n.clone()), at);
                }
            }
            PppdOption::User(u) => {
                if target == Target::Server {
                    left(
                        ctx,
                        Reason::NoEquivalent("a server does not authenticate itself"),
                    );
                } else {
                    section.set("user", Value::Str(u.clone()), at);
                }
            }
            PppdOption::Password(p) => {
                if target == Target::Server {
                    left(
                        ctx,
                        Reason::NoEquivalent("a server does not authenticate itself"),
                    );
                } else {
                    // The options file holds it inline, so the config does
                    // too; tsunagi then needs the config to be 0600.
                    section.set("password", Value::Str(p.clone()), at);
                }
            }
            PppdOption::Proxyarp => {
                if target == Target::Server {
                    section.set("proxyarp", Value::Bool(true), at);
                } else {
                    left(ctx, Reason::NoEquivalent("proxyarp is a server's key"));
                }
            }
            PppdOption::Mtu(n) | PppdOption::Mru(n) => {
                let key = if matches!(l.option, PppdOption::Mtu(_)) {
                    "mtu"
                } else {
                    "mru"
                };
                if key == "mtu" && target == Target::Server {
                    left(ctx, Reason::NoEquivalent("a server's tun MTU is its mru"));
                    continue;
                }
                match n.parse::<u16>() {
                    Ok(v) if v >= 128 => section.set(key, Value::Int(v.into()), at),
                    _ => left(ctx, Reason::BadValue("not a number from 128 to 65535")),
                }
            }
            PppdOption::Defaultroute => match target {
                Target::L2tp => section.set("default_route", Value::Bool(true), at),
                _ => left(
                    ctx,
                    Reason::NoEquivalent(
                        "a full tunnel needs outer_peer: set default_route and outer_peer by hand",
                    ),
                ),
            },
            PppdOption::Persist => {
                if matches!(target, Target::Dial | Target::L2tp) {
                    section.set("persist", Value::Bool(true), at);
                } else {
                    left(ctx, Reason::NoEquivalent("only a dialling link redials"));
                }
            }
            PppdOption::Holdoff(n) => match n.parse::<u64>() {
                Ok(v) if v >= 1 && target != Target::Server => {
                    section.set("redial_min", Value::Int(v), at)
                }
                _ => left(ctx, Reason::BadValue("not a number of seconds from 1")),
            },
            PppdOption::EchoInterval(n) => match n.parse::<u64>() {
                Ok(v) => section.set("echo_interval", Value::Int(v), at),
                Err(_) => left(ctx, Reason::BadValue("not a number of seconds")),
            },
            PppdOption::EchoFailure(n) => match n.parse::<u32>() {
                Ok(v) if v >= 1 => section.set("echo_failure", Value::Int(v.into()), at),
                _ => left(ctx, Reason::BadValue("not a count from 1")),
            },
            PppdOption::Usepeerdns => {
                if target == Target::Server {
                    left(ctx, Reason::NoEquivalent("a server hands DNS out (dns)"));
                } else {
                    section.set("usepeerdns", Value::Bool(true), at);
                }
            }
            PppdOption::MsDns(a) => match a.parse::<std::net::Ipv4Addr>() {
                Ok(_) => section.push("dns", a, at),
                Err(_) => left(ctx, Reason::BadValue("not an IPv4 address")),
            },
            PppdOption::Asyncmap(m) => {
                let hex = m.trim_start_matches("0x");
                match u32::from_str_radix(hex, 16) {
                    Ok(v) if target != Target::Server => {
                        section.set("accm", Value::Int(v.into()), at)
                    }
                    _ => left(ctx, Reason::BadValue("not a 32-bit hex map")),
                }
            }
            PppdOption::Deflate(n) => {
                match n.split(',').next().and_then(|w| w.parse::<u8>().ok()) {
                    Some(v @ 9..=15) => section.set("deflate", Value::Int(v.into()), at),
                    _ => left(ctx, Reason::BadValue("not a window from 9 to 15")),
                }
            }
            PppdOption::Mppe(v) => {
                mppe_named = true;
                section.set("mppe", Value::Str((*v).to_string()), at);
            }
            PppdOption::MppeStateful(b) => section.set("mppe_stateful", Value::Bool(*b), at),
            PppdOption::Ipv6(b) => {
                if target == Target::Server {
                    left(ctx, Reason::NoEquivalent("servers speak IPv4 only"));
                } else {
                    section.set("ipv6cp", Value::Bool(*b), at);
                }
            }
            // README's L2TP table: "nothing: no serial line".
            PppdOption::Serial => {}
            PppdOption::Privgroup(_) => left(
                ctx,
                Reason::NoEquivalent(
                    "`tsunagi direct` checks the caller's uid against allow_users",
                ),
            ),
            PppdOption::File(f) => left(ctx, Reason::NotGiven(f.clone())),
            PppdOption::Debug => left(
                ctx,
                Reason::NoEquivalent("debug logs come with RUST_LOG=debug"),
            ),
            PppdOption::BadArgs(_) => left(
                ctx,
                Reason::BadValue("pppd takes one word here: quote a command with spaces"),
            ),
            PppdOption::Other(_) => left(ctx, Reason::Unknown),
        }
    }
    // pppd does no MPPE unless an option asks for it; tsunagi's PPTP
    // server and client require it by default.
    if !mppe_named
        && section.kind != Kind::Ipsec
        && matches!(
            section.get("protocol").or(section.get("mode")),
            Some(Value::Str(p)) if p == "pptp"
        )
    {
        section.set(
            "mppe",
            Value::Str("none".into()),
            Origin {
                file,
                line: opts.lines.last().map_or(1, |l| l.line),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed001_vpn_saturn_and_vpn_option() {
        let o = parse(include_str!("testdata/seed001/vpn-saturn"));
        assert_eq!(o.lines[0].option, PppdOption::Pty("<スクリプト>".into()));
        assert_eq!(
            o.lines[1].option,
            PppdOption::Addresses {
                local: Some("192.168.1.1".into()),
                remote: Some("192.168.2.1".into())
            }
        );
        assert_eq!(o.lines[1].line, 4);
        let o = parse(include_str!("testdata/seed001/vpn-option"));
        let opts: Vec<_> = o.lines.iter().map(|l| &l.option).collect();
        assert_eq!(opts, [&PppdOption::Noauth, &PppdOption::Notty]);
    }

    #[test]
    fn pty_takes_one_quoted_word() {
        let o = parse("pty \"ssh -x saturn pppd file vpn-option\"\npty ssh saturn\n");
        assert_eq!(
            o.lines[0].option,
            PppdOption::Pty("ssh -x saturn pppd file vpn-option".into())
        );
        assert_eq!(o.lines[1].option, PppdOption::BadArgs("pty".into()));
    }

    #[test]
    fn seed001_options_pptpd_comments_are_not_options() {
        let o = parse(include_str!("testdata/seed001/options.pptpd"));
        let opts: Vec<_> = o.lines.iter().map(|l| l.option.clone()).collect();
        assert_eq!(
            opts,
            [
                PppdOption::Name("pptpd".into()),
                PppdOption::Proxyarp,
                PppdOption::Require(AuthKind::Chap)
            ]
        );
    }

    #[test]
    fn seed002_options_l2tpd_client() {
        let o = parse(include_str!("testdata/seed002/options.l2tpd.client"));
        let opts: Vec<_> = o.lines.iter().map(|l| l.option.clone()).collect();
        assert_eq!(
            opts,
            [
                PppdOption::Name("xxxx".into()),
                PppdOption::Password("yyyy".into()),
                PppdOption::Noauth,
                PppdOption::Serial,
                PppdOption::Mtu("1410".into()),
                PppdOption::Mru("1410".into()),
                PppdOption::Defaultroute,
                PppdOption::Serial,
                PppdOption::Persist,
            ]
        );
    }
}
