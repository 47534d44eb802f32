//! user-ppp's ppp.conf and ppp.linkup (ppp(8) "CONFIGURATION FILES";
//! seed 000 §2.3 and §3.3, seed 001's `vpn`, `vpn-in`, `pptp`,
//! `pptpclient` entries).
//!
//! A label is a line `NAME:` (ppp(8) wants it in column 0; the seeds print
//! their entries indented inside the article, so any line that is one word
//! ending in `:` is taken as a label); the lines after it, up to the next
//! label, are its commands. `!include FILE` at any point reads another
//! file. `#` starts a comment at the beginning of a word; `"..."` quotes.
//! The `default` label's commands apply to every other label, before the
//! label's own (ppp(8) loads `default` first).

use super::emit::{Origin, Section, Value};
use super::{words, Ctx, Reason};

/// One command, typed by what tsunagi can do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `allow user[s] NAME...`.
    AllowUsers(Vec<String>),
    /// `allow mode[s] MODE...`.
    AllowModes(Vec<String>),
    /// `set device DEV` (`!cmd` runs a command).
    Device(String),
    /// `set ifaddr MYADDR [HISADDR ...]`.
    Ifaddr(Vec<String>),
    /// `add DEST GATEWAY` (`HISADDR` as the gateway: through the link).
    Add(String, String),
    /// `set escape 0xNN...`.
    Escape(Vec<String>),
    /// `enable OPT...`.
    Enable(Vec<String>),
    /// `disable OPT...`.
    Disable(Vec<String>),
    /// `ident TEXT`.
    Ident(String),
    /// `set timeout SECS`.
    Timeout(String),
    /// `set log ...`.
    Log,
    /// `set server SOCKET PASSWORD MASK`.
    Server,
    /// `set dial`/`set login` with a chat script (empty: none).
    Chat(Vec<String>),
    /// `set speed ...`.
    Speed(String),
    /// `set authname NAME`.
    Authname(String),
    /// `set authkey KEY`.
    Authkey(String),
    /// `set mru N` / `set mtu N`: key and value.
    Size(&'static str, String),
    /// `set dns A [B]`.
    Dns(Vec<String>),
    /// Anything else: its first words.
    Other(String),
}

/// A command with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Index of the input.
    pub file: usize,
    /// 1-based line.
    pub line: usize,
    /// As written (trimmed).
    pub text: String,
    /// The command.
    pub command: Command,
}

/// One label and its commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The label.
    pub name: String,
    /// Where it is.
    pub origin: Origin,
    /// Its commands.
    pub commands: Vec<Line>,
}

/// A parsed ppp.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PppConf {
    /// `!include` lines: line, text, file.
    pub includes: Vec<(usize, String, String)>,
    /// Commands before any label (ppp(8) ignores them): line, text.
    pub stray: Vec<(usize, String)>,
    /// The labels in file order.
    pub labels: Vec<Label>,
}

fn command(w: &[String]) -> Command {
    let rest = |n: usize| w.get(n..).unwrap_or_default().to_vec();
    let arg = |n: usize| w.get(n).cloned().unwrap_or_default();
    match (
        w.first().map(String::as_str).unwrap_or(""),
        w.get(1).map(String::as_str).unwrap_or(""),
    ) {
        ("allow", "user" | "users") => Command::AllowUsers(rest(2)),
        ("allow", "mode" | "modes") => Command::AllowModes(rest(2)),
        ("set", "device" | "line" | "modem") if w.len() == 3 => Command::Device(arg(2)),
        ("set", "ifaddr") if w.len() >= 3 => Command::Ifaddr(rest(2)),
        ("add" | "add!", _) if w.len() == 3 => Command::Add(arg(1), arg(2)),
        ("set", "escape") => Command::Escape(rest(2)),
        ("enable", _) => Command::Enable(rest(1)),
        ("disable", _) => Command::Disable(rest(1)),
        ("ident", _) => Command::Ident(rest(1).join(" ")),
        ("set", "timeout") if w.len() >= 3 => Command::Timeout(arg(2)),
        ("set", "log") => Command::Log,
        ("set", "server" | "socket") => Command::Server,
        ("set", "dial" | "login") => Command::Chat(rest(2)),
        ("set", "speed") if w.len() == 3 => Command::Speed(arg(2)),
        ("set", "authname") if w.len() == 3 => Command::Authname(arg(2)),
        ("set", "authkey" | "key") if w.len() == 3 => Command::Authkey(arg(2)),
        ("set", "mru") if w.len() == 3 => Command::Size("mru", arg(2)),
        ("set", "mtu") if w.len() == 3 => Command::Size("mtu", arg(2)),
        ("set", "dns") if w.len() >= 3 => Command::Dns(rest(2)),
        _ => Command::Other(w.iter().take(2).cloned().collect::<Vec<_>>().join(" ")),
    }
}

/// Parses input `file` (sans-IO).
pub fn parse(file: usize, text: &str) -> PppConf {
    let mut conf = PppConf::default();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let w = words(raw, true);
        if w.is_empty() {
            continue;
        }
        let trimmed = raw.trim().to_string();
        if w[0] == "!include" {
            conf.includes
                .push((line, trimmed, w.get(1).cloned().unwrap_or_default()));
            continue;
        }
        if w.len() == 1 && w[0].ends_with(':') && w[0].len() > 1 {
            conf.labels.push(Label {
                name: w[0].trim_end_matches(':').to_string(),
                origin: Origin { file, line },
                commands: Vec::new(),
            });
            continue;
        }
        let cmd = Line {
            file,
            line,
            text: trimmed.clone(),
            command: command(&w),
        };
        match conf.labels.last_mut() {
            Some(l) => l.commands.push(cmd),
            None => conf.stray.push((line, trimmed)),
        }
    }
    conf
}

/// Whether the text looks like a ppp.conf (a label line).
pub fn looks_like(text: &str) -> bool {
    text.lines().any(|l| {
        let w = words(l, true);
        w.len() == 1 && w[0].ends_with(':') && w[0].len() > 1
    })
}

/// A label with `default`'s commands first, converted into `section`
/// (a `[link]`); returns nothing, reporting what does not convert.
pub fn apply(ctx: &mut Ctx, label: &Label, default: Option<&Label>, section: &mut Section) {
    let mut dial = false;
    let all = default
        .into_iter()
        .flat_map(|d| d.commands.iter())
        .chain(label.commands.iter());
    for l in all {
        let at = Origin {
            file: l.file,
            line: l.line,
        };
        let left = |ctx: &mut Ctx, reason: Reason| ctx.left(l.file, Some(l.line), &l.text, reason);
        match &l.command {
            Command::AllowUsers(users) => {
                for u in users {
                    section.push("allow_users", u, at);
                }
            }
            Command::AllowModes(modes) => {
                // `direct` is what a label without a device is run in.
                if modes.iter().any(|m| m != "direct") {
                    left(
                        ctx,
                        Reason::NoEquivalent("tsunagi links dial or answer (direct)"),
                    );
                }
            }
            Command::Device(dev) => {
                if super::is_placeholder(dev) {
                    // Still a dialling label: left out whole below, for
                    // want of its device.
                    dial = dev.starts_with('!');
                    left(ctx, Reason::Placeholder);
                } else if dev.starts_with('!') {
                    dial = true;
                    section.set("device", Value::Str(dev.clone()), at);
                } else {
                    left(
                        ctx,
                        Reason::NoEquivalent(
                            "a serial or TCP device: tsunagi dials commands (!cmd)",
                        ),
                    );
                }
            }
            Command::Ifaddr(addrs) => {
                // ppp(8): `set ifaddr myaddr[/nn] [hisaddr[/nn] [netmask [triggeraddr]]]`;
                // a plain address (or /32) is a fixed one.
                let fixed = |s: &str| {
                    let a = s.strip_suffix("/32").unwrap_or(s);
                    a.parse::<std::net::Ipv4Addr>().ok().map(|_| a.to_string())
                };
                match (
                    addrs.first().and_then(|a| fixed(a)),
                    addrs.get(1).map(|a| fixed(a)),
                ) {
                    (Some(local), Some(Some(remote))) if addrs.len() == 2 => {
                        section.set("local", Value::Str(local), at);
                        section.set("remote", Value::Str(remote), at);
                    }
                    (Some(local), None) => section.set("local", Value::Str(local), at),
                    _ => left(
                        ctx,
                        Reason::BadValue(
                            "only fixed addresses (no ranges, masks or trigger address)",
                        ),
                    ),
                }
            }
            Command::Add(dest, gw) => {
                if gw != "HISADDR" {
                    left(
                        ctx,
                        Reason::NoEquivalent("routes go through the link (HISADDR)"),
                    );
                } else if dest == "default" {
                    left(
                        ctx,
                        Reason::NoEquivalent(
                            "a full tunnel needs outer_peer: set default_route and outer_peer by hand",
                        ),
                    );
                } else if dest.parse::<super::super::config::Cidr>().is_ok() {
                    section.push("routes", dest, at);
                } else if super::is_placeholder(dest) || !dest.is_ascii() {
                    left(ctx, Reason::Placeholder);
                } else {
                    left(ctx, Reason::BadValue("not an IPv4 network A.B.C.D/N"));
                }
            }
            Command::Escape(octets) => {
                let parsed: Option<Vec<u8>> = octets
                    .iter()
                    .map(|o| u8::from_str_radix(o.trim_start_matches("0x"), 16).ok())
                    .collect();
                match parsed {
                    Some(v) if !v.is_empty() => section.set("escape", Value::Bytes(v), at),
                    _ => left(ctx, Reason::BadValue("not hex octets")),
                }
            }
            Command::Enable(opts) | Command::Disable(opts) => {
                let on = matches!(l.command, Command::Enable(_));
                for o in opts {
                    match (o.as_str(), on) {
                        ("ipv6cp", _) => section.set("ipv6cp", Value::Bool(on), at),
                        ("chap" | "chap05", true) => section.push("require", "chap", at),
                        ("pap", true) => section.push("require", "pap", at),
                        ("mschapv2" | "chap81", true) => section.push("require", "mschap-v2", at),
                        ("dns", true) => section.set("usepeerdns", Value::Bool(true), at),
                        _ => left(ctx, Reason::Unknown),
                    }
                }
            }
            Command::Ident(text) => section.set("ident", Value::Str(text.clone()), at),
            // tsunagi has no idle timeout: 0 is what it does anyway.
            Command::Timeout(t) if t == "0" => {}
            Command::Timeout(_) => left(ctx, Reason::NoEquivalent("links have no idle timeout")),
            Command::Log => left(
                ctx,
                Reason::NoEquivalent("the daemon logs to log_file at the RUST_LOG level"),
            ),
            Command::Server => left(
                ctx,
                Reason::NoEquivalent("one control_socket serves every link (tsunagi status)"),
            ),
            // No chat or login script: tsunagi never runs one.
            Command::Chat(script) if script.is_empty() => {}
            Command::Chat(_) => left(ctx, Reason::NoEquivalent("tsunagi runs no chat scripts")),
            // pptpd's backend speaks synchronous PPP, which is what
            // tsunagi's PPTP server does by itself.
            Command::Speed(s) if s == "sync" => {}
            Command::Speed(_) => left(ctx, Reason::NoEquivalent("no serial line")),
            Command::Authname(n) => {
                if super::is_placeholder(n) {
                    left(ctx, Reason::Placeholder);
                } else {
                    section.set("user", Value::Str(n.clone()), at);
                }
            }
            Command::Authkey(k) => {
                if super::is_placeholder(k) {
                    left(ctx, Reason::Placeholder);
                } else {
                    section.set("password", Value::Str(k.clone()), at);
                }
            }
            Command::Size(key, n) => match n.parse::<u16>() {
                Ok(v) if v >= 128 => section.set(key, Value::Int(v.into()), at),
                _ => left(ctx, Reason::BadValue("not a number from 128 to 65535")),
            },
            Command::Dns(addrs) => {
                for a in addrs {
                    if a.parse::<std::net::Ipv4Addr>().is_ok() {
                        section.push("dns", a, at);
                    } else {
                        left(ctx, Reason::BadValue("not an IPv4 address"));
                    }
                }
            }
            Command::Other(_) => left(ctx, Reason::Unknown),
        }
    }
    section.set(
        "mode",
        Value::Str(if dial { "dial" } else { "direct" }.into()),
        label.origin,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed000_client_label() {
        let c = parse(0, include_str!("testdata/seed000/client_home.ppp.conf"));
        assert_eq!(c.labels.len(), 2);
        assert_eq!(c.labels[0].name, "default");
        let l = &c.labels[1];
        assert_eq!(l.name, "pppossh_request");
        assert_eq!(l.origin.line, 5);
        let cmds: Vec<_> = l.commands.iter().map(|c| c.command.clone()).collect();
        assert_eq!(cmds[0], Command::Timeout("0".into()));
        assert_eq!(cmds[1], Command::Log);
        assert_eq!(
            cmds[2],
            Command::Ifaddr(vec!["10.233.1.2".into(), "10.233.1.1".into()])
        );
        assert_eq!(
            cmds[3],
            Command::Device(
                "!ssh pppossh@VPN server exec /usr/sbin/ppp -direct -unit0 pppossh_approve_4_"
                    .into()
            )
        );
        assert_eq!(
            cmds[4],
            Command::Add("192.168.253.0/24".into(), "HISADDR".into())
        );
        assert_eq!(cmds[6], Command::Server);
        assert_eq!(cmds[8], Command::Ident("HOME Network".into()));
    }

    #[test]
    fn seed000_include_and_default() {
        let c = parse(0, include_str!("testdata/seed000/etc_ppp.conf"));
        assert_eq!(
            c.includes,
            [(3, "!include ~/.ppp.conf".into(), "~/.ppp.conf".into())]
        );
        assert_eq!(
            c.labels[0].commands[0].command,
            Command::AllowUsers(vec!["pppossh".into()])
        );
    }

    #[test]
    fn seed001_indented_entries_and_trailing_comments() {
        let c = parse(0, include_str!("testdata/seed001/vpn.ppp.conf"));
        assert_eq!(c.labels.len(), 1);
        let cmds: Vec<_> = c.labels[0]
            .commands
            .iter()
            .map(|c| c.command.clone())
            .collect();
        assert_eq!(cmds[0], Command::AllowUsers(vec!["vpn".into()]));
        assert_eq!(cmds[1], Command::Device("!<スクリプト>".into()));
        assert_eq!(cmds[4], Command::Chat(vec![]));
        assert_eq!(cmds[5], Command::Chat(vec![]));
        let c = parse(0, include_str!("testdata/seed001/pptp.ppp.conf"));
        let cmds: Vec<_> = c.labels[0]
            .commands
            .iter()
            .map(|c| c.command.clone())
            .collect();
        assert_eq!(
            cmds,
            [
                Command::Speed("sync".into()),
                Command::Enable(vec!["chap".into()])
            ]
        );
    }
}
