//! `tsunagi import`: the seeds' configs into tsunagi's TOML (issue 15).
//!
//! ```text
//! tsunagi import [--from FORMAT] [--label LABEL]... [--name NAME]
//!                [--allow-user USER]... [--replace OLD=NEW]...
//!                [--interface NAME=LINUX]... FILE...
//! ```
//!
//! Reads every FILE, converts what it can into one config and prints it on
//! stdout, each key followed by the `FILE:LINE` it came from. Each line
//! that does not convert is reported on stderr as `FILE:LINE: left out
//! (REASON): TEXT`, the reason one of [`Reason`]. The result is checked
//! with tsunagi's own parser ([`crate::config::Config::parse`]) before it is
//! printed. Exit status: 0 everything converted, 3 converted with lines
//! left out, 1 an error (a file that cannot be read or told apart, or a
//! result tsunagi's parser refuses), 2 a usage error.
//!
//! Sources, one module each, each a sans-IO parser returning typed values
//! plus the conversion of those values:
//!
//! - [`userppp`]: user-ppp ppp.conf / ppp.linkup labels (seeds 000, 001) ->
//!   `[link.LABEL]`, dial when the label sets a `!command` device, direct
//!   otherwise; `default` applies to every label; files given together
//!   are one ppp.conf (a label in two files gets both files' commands,
//!   `!include` is satisfied by giving the included file);
//! - [`pppd`]: options files (pppd(8)); a file with `pty` is a dial link,
//!   with `notty` a direct link, one named by pptpd.conf's `option` or
//!   xl2tpd.conf's `pppoptfile` (matched by file name among the inputs)
//!   configures that server or link;
//! - [`pptpd`]: pptpd.conf -> `[server.pptpd]` (`protocol = "pptp"`);
//! - [`xl2tpd`]: xl2tpd.conf `[lac NAME]` -> `[link.NAME]` (`mode =
//!   "l2tp"`), `[lns NAME]` -> `[server.NAME]`; a LAC whose `lns` is the
//!   `right` of a transport conn of ipsec.conf gets `ipsec = "CONN"`
//!   (L2TP/IPsec, seed 002);
//! - [`ipsec_conf`]: ipsec.conf `conn NAME` -> `[ipsec.NAME]`, `conn
//!   %default` applied to each;
//! - [`secrets`]: chap-secrets and ipsec.secrets are checked and
//!   referenced by path (`[daemon] secrets`, `[daemon] ipsec_secrets`):
//!   tsunagi reads them itself, no secret is copied into the config. Only
//!   a password written inline in the source (pppd's `password`, user-ppp's
//!   `set authkey`) is written inline, and tsunagi then wants the config
//!   to be mode 0600;
//! - [`rules`]: ipf.rules / ipnat.rules are checked with the policy
//!   crate's parser and compiler, as the daemon loads them, and
//!   referenced by path in `[policy]`, with `interfaces` from
//!   `--interface NAME=LINUX` (every interface the rules name but `lo0`
//!   needs one).
//!
//! The kind of a file comes from its name (`ppp.conf`, `ppp.linkup`,
//! `options*`, `*-options`, `chap-secrets`, `pptpd.conf`, `xl2tpd.conf`,
//! `ipsec.conf`, `ipsec.secret(s)`, `ipf.rules`, `ipnat.rules`), else from
//! its content, or from `--from`. Files are referenced by their absolute
//! path on this host: run the import where the files are.
//!
//! `--label` picks ppp.conf labels (default: every label but `default`);
//! `--name` renames the one link or server imported; `--allow-user` fills
//! `allow_users` of a direct link whose source names no user (pppd's
//! `notty` side is started by sshd, whose user the options file does not
//! name); `--replace OLD=NEW` replaces text in every input before it is
//! read, for the seeds' placeholders (`e.f.g.h`, `<スクリプト>`) and for
//! what must differ on this host.
//!
//! A placeholder left in a value (`<...>`, letters in place of an
//! address's numbers, non-ASCII text) is reported, never written; a section
//! that lacks what tsunagi requires (a dial link's `device`, a direct
//! link's `allow_users`, an LNS address, a server's pool, a conn's
//! `left`/`right`) is left out whole, with the reason, at its first line.

pub mod emit;
pub mod ipsec_conf;
pub mod pppd;
pub mod pptpd;
pub mod rules;
pub mod secrets;
pub mod userppp;
pub mod xl2tpd;

use std::fmt;
use std::path::{Path, PathBuf};

use emit::{Draft, Kind, Origin, Section, Value};

/// Exit status: some lines were left out.
pub const EXIT_LEFT_OUT: i32 = 3;

/// What a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// user-ppp's ppp.conf (also ppp.linkup).
    #[value(name = "ppp.conf")]
    PppConf,
    /// A pppd options file.
    #[value(name = "pppd")]
    Pppd,
    /// pppd's chap-secrets.
    #[value(name = "chap-secrets")]
    ChapSecrets,
    /// pptpd.conf.
    #[value(name = "pptpd.conf")]
    PptpdConf,
    /// xl2tpd.conf.
    #[value(name = "xl2tpd.conf")]
    Xl2tpdConf,
    /// strongSwan's ipsec.conf.
    #[value(name = "ipsec.conf")]
    IpsecConf,
    /// strongSwan's ipsec.secrets.
    #[value(name = "ipsec.secrets")]
    IpsecSecrets,
    /// IPFilter's ipf.rules.
    #[value(name = "ipf.rules")]
    IpfRules,
    /// IPFilter's ipnat.rules.
    #[value(name = "ipnat.rules")]
    IpnatRules,
}

impl Format {
    /// The format a file name says, if it says one.
    pub fn from_name(path: &str) -> Option<Format> {
        let base = Path::new(path)
            .file_name()
            .map_or(path.to_string(), |b| b.to_string_lossy().into_owned());
        let ends = |s: &str| base.ends_with(s);
        Some(if ends("ppp.conf") || ends("ppp.linkup") {
            Format::PppConf
        } else if ends("chap-secrets") || ends("pap-secrets") {
            Format::ChapSecrets
        } else if ends("xl2tpd.conf") {
            Format::Xl2tpdConf
        } else if ends("pptpd.conf") {
            Format::PptpdConf
        } else if ends("ipsec.conf") {
            Format::IpsecConf
        } else if base.contains("ipsec.secret") {
            Format::IpsecSecrets
        } else if ends("ipf.rules") || ends("ipf.conf") {
            Format::IpfRules
        } else if ends("ipnat.rules") || ends("ipnat.conf") {
            Format::IpnatRules
        } else if base == "options"
            || base.starts_with("options.")
            || ends("-options")
            || ends("-option")
            || path.contains("/peers/")
        {
            Format::Pppd
        } else {
            return None;
        })
    }

    /// The format the content says (the first line that is not a comment).
    pub fn sniff(text: &str) -> Option<Format> {
        let first = text
            .lines()
            .map(|l| l.split(['#', ';']).next().unwrap_or("").trim())
            .find(|l| !l.is_empty())?;
        let word = first.split_whitespace().next().unwrap_or("");
        Some(if first.starts_with('[') {
            Format::Xl2tpdConf
        } else if matches!(word, "conn" | "config") {
            Format::IpsecConf
        } else if first.contains(": PSK") {
            Format::IpsecSecrets
        } else if matches!(word, "pass" | "block" | "log" | "count") {
            Format::IpfRules
        } else if matches!(word, "map" | "rdr" | "bimap") {
            Format::IpnatRules
        } else if userppp::looks_like(text) {
            Format::PppConf
        } else if pppd::is_option(first) {
            Format::Pppd
        } else {
            return None;
        })
    }
}

/// One file to import.
#[derive(Debug, Clone)]
pub struct Input {
    /// The name as given (in reports and in the config's comments).
    pub name: String,
    /// The path written into the config where it references the file.
    pub reference: String,
    /// Its text.
    pub text: String,
    /// Its format.
    pub format: Format,
}

/// Why a line was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// tsunagi has no such setting; what it does instead.
    NoEquivalent(&'static str),
    /// Not a directive of that format this import knows.
    Unknown,
    /// A placeholder of the seed (`<スクリプト>`, `e.f.g.h`), not a value:
    /// give `--replace PLACEHOLDER=VALUE`.
    Placeholder,
    /// The value is not what tsunagi takes there.
    BadValue(&'static str),
    /// The whole section, for want of what tsunagi requires.
    Incomplete(&'static str),
    /// No link or server takes it.
    Unused(&'static str),
    /// A file it names is not among the inputs.
    NotGiven(String),
    /// tsunagi's policy parser or compiler refuses the rule (its
    /// message); the file is not referenced.
    Rules(String),
    /// The rule names an interface with no Linux name: give `--interface
    /// NAME=LINUX`; the file is not referenced.
    UnmappedInterface(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NoEquivalent(why) => write!(f, "no equivalent: {why}"),
            Reason::Unknown => f.write_str("unknown: not a directive this import knows"),
            Reason::Placeholder => f.write_str("placeholder: give --replace PLACEHOLDER=VALUE"),
            Reason::BadValue(why) => write!(f, "bad value: {why}"),
            Reason::Incomplete(why) => write!(f, "section left out: {why}"),
            Reason::Unused(why) => write!(f, "unused: {why}"),
            Reason::NotGiven(file) => write!(f, "not given: {file} is not among the inputs"),
            Reason::Rules(msg) => write!(
                f,
                "refused by the policy parser: {msg}; the file is not referenced"
            ),
            Reason::UnmappedInterface(name) => write!(
                f,
                "interface {name} has no Linux name: give --interface {name}=LINUX; the file is not referenced"
            ),
        }
    }
}

/// A line (or a whole file, `line` None) that was not converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The input's name.
    pub file: String,
    /// 1-based line.
    pub line: Option<usize>,
    /// The line as written.
    pub text: String,
    /// Why.
    pub reason: Reason,
}

impl fmt::Display for Leftover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: left out ({})", self.file, self.reason)?,
            None => write!(f, "{}: left out ({})", self.file, self.reason)?,
        }
        if self.text.is_empty() {
            Ok(())
        } else {
            write!(f, ": {}", self.text)
        }
    }
}

/// What the import was asked to do beyond the files.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// ppp.conf labels to convert (empty: all but `default`).
    pub labels: Vec<String>,
    /// The name of the one link or server imported.
    pub name: Option<String>,
    /// `allow_users` for direct links whose source names none.
    pub allow_users: Vec<String>,
    /// Text replacements applied to every input before it is read.
    pub replace: Vec<(String, String)>,
    /// `[policy] interfaces`: the rules' interface names -> Linux names.
    pub interfaces: std::collections::BTreeMap<String, String>,
}

/// The result: the config text and what was left out.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The TOML config, checked with tsunagi's parser.
    pub toml: String,
    /// What did not convert, in input order.
    pub leftovers: Vec<Leftover>,
    /// A source wrote a password inline and the config does too: tsunagi
    /// then refuses the config unless only its owner may read it.
    pub holds_password: bool,
}

/// An import that produced no usable config.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// What was converted does not make a config tsunagi takes.
    #[error("the imported config is refused by tsunagi's parser: {error}\n{toml}")]
    Invalid {
        /// The parser's error.
        error: crate::config::ConfigError,
        /// The text it refused.
        toml: String,
    },
    /// `--name` with more than one link or server.
    #[error("--name {0}: the import has {1} links and servers; --name renames only one")]
    NameAmbiguous(String, usize),
    /// `--label` names a label no ppp.conf input has.
    #[error("--label {0}: no ppp.conf among the inputs has this label")]
    NoSuchLabel(String),
    /// A name that tsunagi does not take as a section name.
    #[error("--name {0:?}: names may use only letters, digits, '-', '_' and '.'")]
    BadName(String),
}

/// A server or link made from pptpd.conf or xl2tpd.conf, the options
/// file it names (line, path), and how those options apply.
type Profile = (Section, Option<(usize, String)>, pppd::Target);

/// The state the converters share.
pub struct Ctx<'a> {
    inputs: &'a [Input],
    leftovers: Vec<(usize, Leftover)>,
}

impl Ctx<'_> {
    /// Reports `text` of input `file` at `line` as left out.
    pub fn left(&mut self, file: usize, line: Option<usize>, text: &str, reason: Reason) {
        self.leftovers.push((
            file,
            Leftover {
                file: self.inputs[file].name.clone(),
                line,
                text: text.to_string(),
                reason,
            },
        ));
    }
}

/// Splits a line into words as pppd and user-ppp do: white space
/// separates, `"..."` quotes (an empty `""` is a word), `\` escapes the
/// next character, and with `comments` a `#` at the start of a word ends
/// the line.
pub fn words(line: &str, comments: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        if comments && c == '#' {
            break;
        }
        let mut word = String::new();
        let mut quoted = false;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() && !quoted {
                break;
            }
            chars.next();
            match c {
                '"' => quoted = !quoted,
                '\\' => {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
                c => word.push(c),
            }
        }
        out.push(word);
    }
    out
}

/// Whether a value is one of the seeds' placeholders rather than a value:
/// `<...>` (seed 001's `<スクリプト>`), letters where an address's numbers
/// go (seed 002's `e.f.g.h`, seed 001's `x.y.z.w`), or non-ASCII text.
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim_start_matches('!');
    let angle = v.contains('<') && v.contains('>');
    let parts: Vec<&str> = v.trim_end_matches('.').split('.').collect();
    let letters = parts.len() == 4
        && parts
            .iter()
            .all(|p| p.len() == 1 && p.chars().all(|c| c.is_ascii_lowercase()));
    angle || letters || !v.is_ascii()
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn section_name(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The input (other than `except`) whose file name ends with the base name
/// of `path` and is of `format`.
fn find_input(inputs: &[Input], path: &str, format: Format, except: usize) -> Option<usize> {
    let base = base_name(path);
    inputs
        .iter()
        .enumerate()
        .find(|(i, inp)| {
            *i != except && inp.format == format && base_name(&inp.name).ends_with(base)
        })
        .map(|(i, _)| i)
}

/// Converts `inputs` (sans-IO: the caller has read them).
pub fn import(inputs: &[Input], opts: &Options) -> Result<Outcome, ImportError> {
    let inputs: Vec<Input> = inputs
        .iter()
        .map(|i| {
            let mut i = i.clone();
            for (old, new) in &opts.replace {
                i.text = i.text.replace(old.as_str(), new);
            }
            i
        })
        .collect();
    let inputs = &inputs[..];
    let mut ctx = Ctx {
        inputs,
        leftovers: Vec::new(),
    };
    let mut draft = Draft::default();
    let at = |file: usize, line: usize| Origin { file, line };
    // Options files taken by a server or link, by input index.
    let mut used_options: Vec<usize> = Vec::new();

    // user-ppp: every ppp.conf input is one file.
    let mut labels: Vec<userppp::Label> = Vec::new();
    for (i, inp) in inputs.iter().enumerate() {
        if inp.format != Format::PppConf {
            continue;
        }
        let conf = userppp::parse(i, &inp.text);
        for (line, text, file) in &conf.includes {
            if find_input(inputs, file, Format::PppConf, i).is_none() {
                ctx.left(i, Some(*line), text, Reason::NotGiven(file.clone()));
            }
        }
        for (line, text) in &conf.stray {
            ctx.left(
                i,
                Some(*line),
                text,
                Reason::Unused("outside any label (ppp(8) ignores it)"),
            );
        }
        for label in conf.labels {
            match labels.iter_mut().find(|l| l.name == label.name) {
                Some(l) => l.commands.extend(label.commands),
                None => labels.push(label),
            }
        }
    }
    if let Some(missing) = opts
        .labels
        .iter()
        .find(|w| !labels.iter().any(|l| &l.name == *w))
    {
        return Err(ImportError::NoSuchLabel(missing.clone()));
    }
    let default = labels.iter().find(|l| l.name == "default").cloned();
    for label in &labels {
        let wanted = if opts.labels.is_empty() {
            label.name != "default"
        } else {
            opts.labels.contains(&label.name)
        };
        if !wanted {
            continue;
        }
        let mut s = Section::new(Kind::Link, &section_name(&label.name), label.origin);
        userppp::apply(&mut ctx, label, default.as_ref(), &mut s);
        draft.sections.push(s);
    }

    // pptpd.conf and xl2tpd.conf, with the options files they name.
    for (i, inp) in inputs.iter().enumerate() {
        let named: Vec<Profile> = match inp.format {
            Format::PptpdConf => {
                let lines = pptpd::parse(&inp.text);
                // Line 0: a file of comments only; reported for the file.
                let mut s = Section::new(
                    Kind::Server,
                    "pptpd",
                    at(i, lines.first().map_or(0, |l| l.line)),
                );
                let opt = pptpd::apply(&mut ctx, i, &lines, &mut s);
                vec![(s, opt, pppd::Target::Server)]
            }
            Format::Xl2tpdConf => {
                let conf = xl2tpd::parse(&inp.text);
                for (line, text) in &conf.bad {
                    ctx.left(i, Some(*line), text, Reason::Unknown);
                }
                let mut out = Vec::new();
                for b in &conf.blocks {
                    let (kind, name, lac) = match &b.part {
                        xl2tpd::Part::Lac(n) => (Kind::Link, n, true),
                        xl2tpd::Part::Lns(n) => (Kind::Server, n, false),
                        xl2tpd::Part::Global | xl2tpd::Part::Other(_) => {
                            for s in &b.settings {
                                ctx.left(i, Some(s.line), &s.text, Reason::Unknown);
                            }
                            continue;
                        }
                    };
                    let mut s = Section::new(kind, &section_name(name), at(i, b.line));
                    let opt = xl2tpd::apply(&mut ctx, i, b, lac, &mut s);
                    let target = if lac {
                        pppd::Target::L2tp
                    } else {
                        pppd::Target::Server
                    };
                    out.push((s, opt, target));
                }
                out
            }
            _ => continue,
        };
        for (mut s, opt, target) in named {
            if let Some((line, path)) = opt {
                match find_input(inputs, &path, Format::Pppd, usize::MAX) {
                    Some(o) => {
                        used_options.push(o);
                        let parsed = pppd::parse(&inputs[o].text);
                        pppd::apply(&mut ctx, o, &parsed, target, &mut s);
                    }
                    None => {
                        let text = inp
                            .text
                            .lines()
                            .nth(line - 1)
                            .unwrap_or("")
                            .trim()
                            .to_string();
                        ctx.left(i, Some(line), &text, Reason::NotGiven(path));
                    }
                }
            }
            draft.sections.push(s);
        }
    }

    // pppd options files of their own: peers files (pty) and the answering
    // side (notty); the rest configure nothing here.
    for (i, inp) in inputs.iter().enumerate() {
        if inp.format != Format::Pppd || used_options.contains(&i) {
            continue;
        }
        let opts_file = pppd::parse(&inp.text);
        let target = if opts_file.pty().is_some() {
            Some(pppd::Target::Dial)
        } else if opts_file.notty() {
            Some(pppd::Target::Direct)
        } else {
            None
        };
        match target {
            Some(t) => {
                let first = opts_file.lines.first().map_or(1, |l| l.line);
                let mut s = Section::new(
                    Kind::Link,
                    &section_name(base_name(&inp.name)),
                    at(i, first),
                );
                let mode = if t == pppd::Target::Dial {
                    "dial"
                } else {
                    "direct"
                };
                s.set("mode", Value::Str(mode.into()), at(i, first));
                pppd::apply(&mut ctx, i, &opts_file, t, &mut s);
                draft.sections.push(s);
            }
            None => {
                for l in &opts_file.lines {
                    let reason = match l.option {
                        pppd::PppdOption::Privgroup(_) => Reason::NoEquivalent(
                            "`tsunagi direct` checks the caller's uid against allow_users",
                        ),
                        _ => Reason::Unused(
                            "no pty, no notty, and no pptpd.conf or xl2tpd.conf among the inputs names this file",
                        ),
                    };
                    ctx.left(i, Some(l.line), &l.text, reason);
                }
            }
        }
    }

    // ipsec.conf.
    for (i, inp) in inputs.iter().enumerate() {
        if inp.format != Format::IpsecConf {
            continue;
        }
        let (blocks, bad) = ipsec_conf::parse(i, &inp.text);
        for (line, text) in &bad {
            ctx.left(i, Some(*line), text, Reason::Unknown);
        }
        let defaults: Vec<&ipsec_conf::Setting> = blocks
            .iter()
            .filter(|b| b.kind == "conn" && b.name == "%default")
            .flat_map(|b| b.settings.iter())
            .collect();
        for b in &blocks {
            if b.kind != "conn" {
                for s in &b.settings {
                    ctx.left(
                        i,
                        Some(s.line),
                        &s.text,
                        Reason::NoEquivalent("strongSwan's own settings"),
                    );
                }
                continue;
            }
            if b.name == "%default" {
                continue;
            }
            let mut s = Section::new(Kind::Ipsec, &section_name(&b.name), at(i, b.line));
            let all: Vec<&ipsec_conf::Setting> =
                defaults.iter().copied().chain(b.settings.iter()).collect();
            ipsec_conf::apply(&mut ctx, &all, &mut s);
            draft.sections.push(s);
        }
    }

    // Secrets files and rules files, referenced by path.
    for (i, inp) in inputs.iter().enumerate() {
        let first = inp
            .text
            .lines()
            .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map_or(1, |p| p + 1);
        match inp.format {
            Format::ChapSecrets => {
                for l in secrets::parse_chap(&inp.text) {
                    if let secrets::SecretsLine::Bad(line, text, why) = l {
                        ctx.left(i, Some(line), &text, Reason::BadValue(why));
                    }
                }
                draft.section(Kind::Daemon, "", at(i, first)).set(
                    "secrets",
                    Value::Str(inp.reference.clone()),
                    at(i, first),
                );
            }
            Format::IpsecSecrets => {
                for l in secrets::parse_ipsec(&inp.text) {
                    if let secrets::SecretsLine::Bad(line, text, why) = l {
                        ctx.left(i, Some(line), &text, Reason::BadValue(why));
                    }
                }
                draft.section(Kind::Daemon, "", at(i, first)).set(
                    "ipsec_secrets",
                    Value::Str(inp.reference.clone()),
                    at(i, first),
                );
            }
            Format::IpfRules | Format::IpnatRules => {
                let kind = if inp.format == Format::IpfRules {
                    rules::RulesKind::Ipf
                } else {
                    rules::RulesKind::Ipnat
                };
                import_rules(&mut ctx, &mut draft, i, kind, opts);
            }
            _ => {}
        }
    }

    bind_l2tp_ipsec(&mut draft);
    drop_incomplete(&mut ctx, &mut draft, opts);
    rename(&mut draft, opts)?;

    let holds_password = draft.sections.iter().any(|s| s.get("password").is_some());
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let toml = draft.render(&names);
    if let Err(error) = crate::config::Config::parse(Path::new("imported.toml"), &toml) {
        return Err(ImportError::Invalid { error, toml });
    }
    let mut leftovers = ctx.leftovers;
    leftovers.sort_by_key(|(f, l)| (*f, l.line));
    Ok(Outcome {
        toml,
        leftovers: leftovers.into_iter().map(|(_, l)| l).collect(),
        holds_password,
    })
}

/// Checks a rules file as the daemon would load it (parse, interface
/// names, compile) and references it in `[policy]` when it passes.
fn import_rules(
    ctx: &mut Ctx,
    draft: &mut Draft,
    i: usize,
    kind: rules::RulesKind,
    opts: &Options,
) {
    let text = ctx.inputs[i].text.clone();
    let line_text = |n: usize| {
        text.lines()
            .nth(n.saturating_sub(1))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let errors = rules::check(kind, &text);
    if !errors.is_empty() {
        for e in errors {
            let msg = format!(
                "column {}: expected {}, found {}",
                e.column, e.expected, e.found
            );
            ctx.left(i, Some(e.line), &line_text(e.line), Reason::Rules(msg));
        }
        return;
    }
    let Ok(parsed) = rules::parse(kind, &text) else {
        return;
    };
    let unmapped = rules::unmapped(&parsed, &opts.interfaces);
    if !unmapped.is_empty() {
        for (line, name) in unmapped {
            ctx.left(
                i,
                Some(line),
                &line_text(line),
                Reason::UnmappedInterface(name),
            );
        }
        return;
    }
    if let Some((line, e)) = rules::compile_check(&parsed, &opts.interfaces) {
        let text = line.map_or_else(String::new, line_text);
        ctx.left(i, line, &text, Reason::Rules(e.to_string()));
        return;
    }
    let first = text
        .lines()
        .position(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map_or(1, |p| p + 1);
    let at = Origin {
        file: i,
        line: first,
    };
    let key = match kind {
        rules::RulesKind::Ipf => "ipf",
        rules::RulesKind::Ipnat => "ipnat",
    };
    let policy = draft.section(Kind::Policy, "", at);
    policy.set(key, Value::Str(ctx.inputs[i].reference.clone()), at);
    if !opts.interfaces.is_empty() {
        let map = opts
            .interfaces
            .iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect();
        policy.set("interfaces", Value::Map(map), at);
    }
}

/// Seed 002: a LAC whose `lns` is the `right` of a transport conn goes
/// through that conn (`ipsec = "CONN"`), as strongSwan's policy for
/// 17/1701 put xl2tpd's datagrams into ESP.
fn bind_l2tp_ipsec(draft: &mut Draft) {
    let conns: Vec<(String, String, Origin)> = draft
        .sections
        .iter()
        .filter(|s| s.kind == Kind::Ipsec && s.get("type") == Some(&Value::Str("transport".into())))
        .filter_map(|s| match s.get("right") {
            Some(Value::Str(r)) => Some((s.name.clone(), r.clone(), s.origin)),
            _ => None,
        })
        .collect();
    for s in draft.sections.iter_mut() {
        if s.kind != Kind::Link || s.get("mode") != Some(&Value::Str("l2tp".into())) {
            continue;
        }
        if let Some(Value::Str(lns)) = s.get("lns").cloned() {
            if let Some((name, _, origin)) = conns.iter().find(|c| c.1 == lns) {
                s.set("ipsec", Value::Str(name.clone()), *origin);
            }
        }
    }
}

/// Leaves out, with the reason, each section lacking what tsunagi
/// requires of it; fills `allow_users` of direct links from `--allow-user`.
fn drop_incomplete(ctx: &mut Ctx, draft: &mut Draft, opts: &Options) {
    let mut keep = Vec::new();
    for mut s in std::mem::take(&mut draft.sections) {
        let mode = match s.get("mode") {
            Some(Value::Str(m)) => m.clone(),
            _ => String::new(),
        };
        if s.kind == Kind::Link && mode == "direct" && s.get("allow_users").is_none() {
            for u in &opts.allow_users {
                s.push("allow_users", u, s.origin);
            }
        }
        let missing = match s.kind {
            Kind::Link => match mode.as_str() {
                "dial" if s.get("device").is_none() => Some("a dialling link needs its device (the command that carries PPP)"),
                "direct" if s.get("allow_users").is_none() => Some("a direct link needs allow_users (who may run `tsunagi direct`): give --allow-user"),
                "l2tp" if s.get("lns").is_none() => Some("an L2TP link needs the LNS's IPv4 address"),
                _ => None,
            },
            Kind::Server if s.get("localip").is_none() || s.get("remoteip").is_none() => {
                Some("a server needs its pool (localip and remoteip)")
            }
            Kind::Ipsec if s.get("left").is_none() || s.get("right").is_none() => {
                Some("a conn needs left and right")
            }
            _ => None,
        };
        match missing {
            Some(why) => {
                let line = (s.origin.line > 0).then_some(s.origin.line);
                let text = line.map_or_else(String::new, |l| {
                    let text = &ctx.inputs[s.origin.file].text;
                    text.lines().nth(l - 1).unwrap_or("").trim().to_string()
                });
                ctx.left(s.origin.file, line, &text, Reason::Incomplete(why));
                // What had been converted into it is lost with it.
                let mut lines: Vec<Origin> = s.keys.iter().map(|k| k.2).collect();
                lines.sort_by_key(|o| (o.file, o.line));
                lines.dedup();
                for o in lines.into_iter().filter(|o| *o != s.origin) {
                    let text = ctx.inputs[o.file]
                        .text
                        .lines()
                        .nth(o.line - 1)
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    ctx.left(
                        o.file,
                        Some(o.line),
                        &text,
                        Reason::Unused("its section is left out"),
                    );
                }
            }
            None => keep.push(s),
        }
    }
    // An L2TP link whose conn was left out cannot name it.
    let conns: Vec<String> = keep
        .iter()
        .filter(|s| s.kind == Kind::Ipsec)
        .map(|s| s.name.clone())
        .collect();
    for s in keep.iter_mut() {
        if let Some(Value::Str(c)) = s.get("ipsec").cloned() {
            if !conns.contains(&c) {
                s.remove("ipsec");
            }
        }
    }
    draft.sections = keep;
}

fn rename(draft: &mut Draft, opts: &Options) -> Result<(), ImportError> {
    let Some(name) = &opts.name else {
        return Ok(());
    };
    if section_name(name) != *name || name.is_empty() {
        return Err(ImportError::BadName(name.clone()));
    }
    let profiles: Vec<&mut Section> = draft
        .sections
        .iter_mut()
        .filter(|s| matches!(s.kind, Kind::Link | Kind::Server))
        .collect();
    match profiles.len() {
        1 => {
            for s in profiles {
                s.name = name.clone();
            }
            Ok(())
        }
        n => Err(ImportError::NameAmbiguous(name.clone(), n)),
    }
}

/// `tsunagi import`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The files to convert (their kind from their names or content).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Read every FILE as this format.
    #[arg(long, value_enum)]
    pub from: Option<Format>,
    /// Convert only this ppp.conf label (repeatable; default: all but `default`).
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// Name of the one link or server imported.
    #[arg(long)]
    pub name: Option<String>,
    /// allow_users of a direct link whose source names no user (repeatable).
    #[arg(long = "allow-user", value_name = "USER")]
    pub allow_users: Vec<String>,
    /// Replace OLD with NEW in every input before reading it (repeatable).
    #[arg(long = "replace", value_name = "OLD=NEW")]
    pub replace: Vec<String>,
    /// The Linux name of an interface the rules name (`[policy]
    /// interfaces`, repeatable).
    #[arg(long = "interface", value_name = "NAME=LINUX")]
    pub interfaces: Vec<String>,
}

/// `tsunagi import`: reads the files, prints the config, reports what was
/// left out; the exit status (0, [`EXIT_LEFT_OUT`], 1, 2) says which.
pub fn run(args: &ImportArgs) -> i32 {
    let mut replace = Vec::new();
    for r in &args.replace {
        match r.split_once('=') {
            Some((old, new)) if !old.is_empty() && !new.contains('\n') => {
                replace.push((old.to_string(), new.to_string()))
            }
            _ => {
                eprintln!("--replace {r:?}: expected OLD=NEW (OLD not empty, one line)");
                return 2;
            }
        }
    }
    let mut interfaces = std::collections::BTreeMap::new();
    for r in &args.interfaces {
        match r.split_once('=') {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                interfaces.insert(from.to_string(), to.to_string());
            }
            _ => {
                eprintln!("--interface {r:?}: expected NAME=LINUX (e.g. em0=eth0)");
                return 2;
            }
        }
    }
    let mut inputs = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{name}: cannot read: {e}");
                return 1;
            }
        };
        let format = match args
            .from
            .or_else(|| Format::from_name(&name))
            .or_else(|| Format::sniff(&text))
        {
            Some(f) => f,
            None => {
                eprintln!("{name}: cannot tell which kind of file this is: give --from");
                return 1;
            }
        };
        let reference = std::path::absolute(path).map_or(name.clone(), |p| p.display().to_string());
        inputs.push(Input {
            name,
            reference,
            text,
            format,
        });
    }
    let opts = Options {
        labels: args.labels.clone(),
        name: args.name.clone(),
        allow_users: args.allow_users.clone(),
        replace,
        interfaces,
    };
    match import(&inputs, &opts) {
        Ok(out) => {
            print!("{}", out.toml);
            for l in &out.leftovers {
                eprintln!("{l}");
            }
            if out.holds_password {
                eprintln!(
                    "note: the config holds a password, as its source did: save it with mode 0600 (tsunagi refuses it otherwise)"
                );
            }
            if out.leftovers.is_empty() {
                0
            } else {
                EXIT_LEFT_OUT
            }
        }
        Err(e) => {
            eprintln!("tsunagi import: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests;
