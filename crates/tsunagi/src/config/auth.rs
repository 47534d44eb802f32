//! PPP authentication and compression keys, shared by `[link.NAME]` and
//! `[server.NAME]`, in pppd's words: `require = ["pap" | "chap" |
//! "mschap-v2"]` (empty = `noauth`), `name`, `user` + `password` /
//! `password_file`, `accept`, `secrets`, `mppe`, `mppe_stateful`,
//! `deflate`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use tsunagi_crypto::Secret;
use tsunagi_ppp::auth::{AuthConfig, AuthMethod};
use tsunagi_ppp::ccp::{CcpConfig, DeflateConfig, MppeConfig};

use super::common::Invalid;

/// Where our own password comes from (pppd `password`, or a file).
#[derive(Clone, PartialEq)]
pub enum PasswordSource {
    /// Written in the config, which is then held to a secrets file's
    /// checks at start-up ([`crate::auth`]: mode and owner).
    Inline(Secret),
    /// Read at start-up from this file (its first line), refused when
    /// group or others can read it or another user owns it.
    File(PathBuf),
}

impl fmt::Debug for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            PasswordSource::File(p) => write!(f, "File({p:?})"),
        }
    }
}

/// PPP authentication and compression of one link, in pppd's words
/// (`require-pap`/`-chap`/`-mschap-v2`, `name`, `user`, `password`,
/// `require-mppe-128`, `mppe-stateful`, `deflate`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuthSettings {
    /// Methods the peer must authenticate with; empty is pppd's `noauth`.
    pub require: Vec<AuthMethod>,
    /// Methods we agree to prove ourselves with when the peer asks.
    pub accept: Vec<AuthMethod>,
    /// Our name in CHAP Challenges and secrets lookups (pppd `name`).
    pub name: Option<String>,
    /// The name we authenticate with (pppd `user`).
    pub user: Option<String>,
    /// Our password; without it, looked up in `secrets`.
    pub password: Option<PasswordSource>,
    /// chap-secrets (the link's own, else `[daemon] secrets`).
    pub secrets: Option<PathBuf>,
    /// MPPE (RFC 3078); only when named.
    pub mppe: Option<MppeConfig>,
    /// Deflate (RFC 1979) with this window.
    pub deflate: Option<u8>,
}

impl AuthSettings {
    /// The engine's authentication settings (the secrets and password
    /// read at start-up go in with `crate::auth::Credentials`).
    pub fn engine_auth(&self) -> AuthConfig {
        let defaults = AuthConfig::default();
        AuthConfig {
            require: self.require.clone(),
            accept: self.accept.clone(),
            name: self.name.clone().unwrap_or(defaults.name.clone()),
            user: self.user.clone(),
            ..defaults
        }
    }

    /// The engine's CCP settings: Deflate and MPPE as configured.
    pub fn engine_ccp(&self) -> CcpConfig {
        CcpConfig {
            deflate: self.deflate.map(|window| DeflateConfig { window }),
            mppe: self.mppe.clone(),
        }
    }
}

/// `require`/`accept` words: pppd's `require-pap`, `require-chap`,
/// `require-mschap-v2` without the prefix.
fn auth_method(word: &Spanned<String>) -> Result<AuthMethod, Invalid> {
    match word.get_ref().as_str() {
        "pap" => Ok(AuthMethod::Pap),
        "chap" | "chap-md5" => Ok(AuthMethod::ChapMd5),
        "mschap-v2" | "ms-chap-v2" => Ok(AuthMethod::MsChapV2),
        other => Err((
            word.span(),
            format!("unknown authentication {other:?} (want \"pap\", \"chap\" or \"mschap-v2\")"),
        )),
    }
}

pub fn auth_methods(words: &[Spanned<String>]) -> Result<Vec<AuthMethod>, Invalid> {
    let mut out = Vec::with_capacity(words.len());
    for w in words {
        let m = auth_method(w)?;
        if out.contains(&m) {
            return Err((w.span(), format!("{:?} is listed twice", w.get_ref())));
        }
        out.push(m);
    }
    Ok(out)
}

/// The authentication keys of one section, as written.
pub struct AuthFields<'a> {
    /// `require`; `None` when the key is absent.
    pub require: Option<&'a [Spanned<String>]>,
    /// `accept`.
    pub accept: Option<&'a [Spanned<String>]>,
    /// `name`.
    pub name: Option<&'a Spanned<String>>,
    /// `user`.
    pub user: Option<&'a Spanned<String>>,
    /// `password`.
    pub password: Option<&'a Spanned<String>>,
    /// `password_file`.
    pub password_file: Option<&'a Spanned<PathBuf>>,
    /// `secrets`.
    pub secrets: Option<&'a PathBuf>,
    /// `mppe`.
    pub mppe: Option<&'a Spanned<String>>,
    /// `mppe_stateful`.
    pub mppe_stateful: Option<bool>,
    /// `deflate`.
    pub deflate: Option<&'a Spanned<u8>>,
}

/// What a section gets for the keys it does not write.
#[derive(Debug, Clone, Copy)]
pub struct AuthDefaults {
    /// `require` when absent.
    pub require: &'static [AuthMethod],
    /// `accept` when absent.
    pub accept: &'static [AuthMethod],
    /// `mppe` when absent (a word of the key).
    pub mppe: Option<&'static str>,
}

impl AuthDefaults {
    /// A site link: pppd's defaults (`noauth` here, CHAP and PAP when
    /// asked, no MPPE).
    pub const SITE: AuthDefaults = AuthDefaults {
        require: &[],
        accept: &[AuthMethod::ChapMd5, AuthMethod::Pap],
        mppe: None,
    };
    /// A PPTP client: what Windows and pptp-linux with seed 001's options
    /// do, MS-CHAPv2 and MPPE-128 (`require-mppe-128`).
    pub const PPTP_CLIENT: AuthDefaults = AuthDefaults {
        require: &[],
        accept: &[AuthMethod::MsChapV2],
        mppe: Some("require-128"),
    };
    /// A PPTP server: seed 001's options.pptpd (`refuse-pap`,
    /// `refuse-chap`, `refuse-mschap`, `require-mschap-v2`,
    /// `require-mppe-128`).
    pub const PPTP_SERVER: AuthDefaults = AuthDefaults {
        require: &[AuthMethod::MsChapV2],
        accept: &[AuthMethod::MsChapV2],
        mppe: Some("require-128"),
    };
    /// An L2TP LNS: xl2tpd's usual options.xl2tpd (`require-mschap-v2`,
    /// no MPPE: the clients that speak L2TP run it inside IPsec).
    pub const L2TP_SERVER: AuthDefaults = AuthDefaults {
        require: &[AuthMethod::MsChapV2],
        accept: &[AuthMethod::MsChapV2],
        mppe: None,
    };
    /// An L2TP LAC: seed 002's options.l2tpd.client (`name`, `password`,
    /// `noauth`): we prove ourselves with MS-CHAPv2 or CHAP, and ask
    /// nothing of the LNS; no MPPE.
    pub const L2TP_CLIENT: AuthDefaults = AuthDefaults {
        require: &[],
        accept: &[AuthMethod::MsChapV2, AuthMethod::ChapMd5],
        mppe: None,
    };
}

/// Validates a section's authentication keys against its defaults;
/// `daemon_secrets` is `[daemon] secrets`.
pub fn validate_auth(
    raw: &AuthFields<'_>,
    defaults: AuthDefaults,
    section: Range<usize>,
    daemon_secrets: Option<&Path>,
) -> Result<AuthSettings, Invalid> {
    let require = match raw.require {
        Some(words) => auth_methods(words)?,
        None => defaults.require.to_vec(),
    };
    let mut accept = match raw.accept {
        Some(words) => auth_methods(words)?,
        None => defaults.accept.to_vec(),
    };
    let password = match (raw.password, raw.password_file) {
        (Some(_), Some(f)) => {
            return Err((
                f.span(),
                "give `password` or `password_file`, not both".into(),
            ))
        }
        (Some(p), None) if p.get_ref().is_empty() => {
            return Err((p.span(), "password is empty".into()))
        }
        (Some(p), None) => Some(PasswordSource::Inline(Secret::new(p.get_ref().as_bytes()))),
        (None, Some(f)) => Some(PasswordSource::File(f.get_ref().clone())),
        (None, None) => None,
    };
    let user = match raw.user {
        Some(u) if u.get_ref().is_empty() || u.get_ref().len() > 255 => {
            return Err((u.span(), "user must be 1..=255 bytes".into()))
        }
        Some(u) => Some(u.get_ref().clone()),
        None => None,
    };
    let secrets = raw
        .secrets
        .cloned()
        .or_else(|| daemon_secrets.map(Path::to_path_buf));
    if let (None, Some(p)) = (&user, raw.password) {
        return Err((
            p.span(),
            "`password` needs `user` (the name it belongs to)".into(),
        ));
    }
    if let (None, Some(p)) = (&user, raw.password_file) {
        return Err((
            p.span(),
            "`password_file` needs `user` (the name it belongs to)".into(),
        ));
    }
    if let Some(u) = raw.user {
        if password.is_none() && secrets.is_none() {
            return Err((
                u.span(),
                "`user` needs `password`, `password_file` or a `secrets` file holding its secret"
                    .into(),
            ));
        }
    }
    if !require.is_empty() && secrets.is_none() {
        let span = raw
            .require
            .and_then(|words| words.first())
            .map_or(section.clone(), |w| w.span());
        return Err((
            span,
            "`require` needs a `secrets` file (here or under [daemon]) to check the peer against"
                .into(),
        ));
    }
    let name = match raw.name {
        Some(n) if n.get_ref().is_empty() || n.get_ref().len() > 255 => {
            return Err((n.span(), "name must be 1..=255 bytes".into()))
        }
        Some(n) => Some(n.get_ref().clone()),
        None => None,
    };
    // `mppe = "none"` turns off a section's default.
    let word = raw
        .mppe
        .map(|w| (w.get_ref().as_str(), w.span()))
        .or(defaults.mppe.map(|w| (w, section.clone())))
        .filter(|(w, _)| *w != "none");
    let mppe = match word {
        None => {
            if raw.mppe_stateful.is_some() {
                return Err((section, "`mppe_stateful` needs `mppe`".into()));
            }
            None
        }
        Some((word, span)) => {
            let (required, bits) = match word {
                "require-128" => (true, (false, true)),
                "require-40" => (true, (true, false)),
                "require" => (true, (true, true)),
                "allow-128" => (false, (false, true)),
                "allow-40" => (false, (true, false)),
                "allow" => (false, (true, true)),
                other => {
                    return Err((
                        span,
                        format!(
                            "unknown mppe {other:?} (want \"require-128\", \"require-40\", \"require\", \"allow-128\", \"allow-40\", \"allow\" or \"none\")"
                        ),
                    ))
                }
            };
            // MPPE keys come from MS-CHAPv2 (RFC 3079 s3): one side of
            // the link must run it.
            if !require.contains(&AuthMethod::MsChapV2) {
                if raw.accept.is_some() && !accept.contains(&AuthMethod::MsChapV2) {
                    return Err((
                        span.clone(),
                        "mppe needs MS-CHAPv2 keys: add \"mschap-v2\" to `require` or `accept`"
                            .into(),
                    ));
                }
                if !accept.contains(&AuthMethod::MsChapV2) {
                    // Naming MPPE names the MS-CHAPv2 it needs.
                    accept.insert(0, AuthMethod::MsChapV2);
                }
                if user.is_none() {
                    return Err((
                        span,
                        "mppe needs MS-CHAPv2: `require = [\"mschap-v2\"]`, or a `user` to authenticate to the peer with it"
                            .into(),
                    ));
                }
            }
            Some(MppeConfig {
                bits40: bits.0,
                bits128: bits.1,
                stateful: raw.mppe_stateful.unwrap_or(false),
                required,
            })
        }
    };
    let deflate = match raw.deflate {
        Some(w) if !(9..=15).contains(w.get_ref()) => {
            return Err((
                w.span(),
                format!(
                    "deflate window {} is outside 9..=15 (RFC 1979; pppd `deflate 15`)",
                    w.get_ref()
                ),
            ))
        }
        Some(w) => Some(*w.get_ref()),
        None => None,
    };
    Ok(AuthSettings {
        require,
        accept,
        name,
        user,
        password,
        secrets,
        mppe,
        deflate,
    })
}
