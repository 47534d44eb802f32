//! Every config file shown in the seeds imports (issue 15): each group of
//! files that configures one gateway converts, exactly the expected lines
//! are left out (file, line, reason), and the result is a config tsunagi's
//! parser takes, with the values the seed wrote.
//!
//! The fixtures in `testdata/` are the seeds' text, each file's first
//! lines naming the seed and the section it comes from.

use super::*;
use crate::config::{Config, Mode};

/// (name in reports, path the seed gives it, text).
type Fixture = (&'static str, &'static str, &'static str);

macro_rules! fixture {
    ($name:literal, $path:literal) => {
        ($name, $path, include_str!(concat!("testdata/", $name)))
    };
}

fn inputs(files: &[Fixture]) -> Vec<Input> {
    files
        .iter()
        .map(|(name, path, text)| Input {
            name: (*name).to_string(),
            reference: (*path).to_string(),
            text: (*text).to_string(),
            format: Format::from_name(path)
                .or_else(|| Format::sniff(text))
                .unwrap_or_else(|| panic!("{name}: kind not recognised")),
        })
        .collect()
}

/// Imports, checks the leftovers, and returns the parsed config.
fn check(files: &[Fixture], opts: Options, expected: &[(&str, usize, Reason)]) -> Config {
    let out = import(&inputs(files), &opts).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(&str, usize, Reason)> = out
        .leftovers
        .iter()
        .map(|l| (l.file.as_str(), l.line.unwrap_or(0), l.reason.clone()))
        .collect();
    assert_eq!(got, expected, "\n{}", out.toml);
    Config::parse(Path::new("imported.toml"), &out.toml).unwrap()
}

const LOG: Reason = Reason::NoEquivalent("the daemon logs to log_file at the RUST_LOG level");
const SERVER: Reason =
    Reason::NoEquivalent("one control_socket serves every link (tsunagi status)");

fn replace(pairs: &[(&str, &str)]) -> Options {
    Options {
        replace: pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        ..Options::default()
    }
}

#[test]
fn seed000_home_gateway_dials() {
    let c = check(
        &[
            fixture!("seed000/etc_ppp.conf", "/etc/ppp/ppp.conf"),
            fixture!("seed000/client_home.ppp.conf", "/home/pppossh/.ppp.conf"),
        ],
        Options::default(),
        &[
            ("seed000/client_home.ppp.conf", 7, LOG),
            ("seed000/client_home.ppp.conf", 12, SERVER),
        ],
    );
    let l = c.link("pppossh_request").unwrap();
    assert_eq!(l.mode, Mode::Dial);
    assert_eq!(
        l.device.as_deref(),
        Some("ssh pppossh@VPN server exec /usr/sbin/ppp -direct -unit0 pppossh_approve_4_")
    );
    assert_eq!(l.local, Some("10.233.1.2".parse().unwrap()));
    assert_eq!(l.remote, Some("10.233.1.1".parse().unwrap()));
    let routes: Vec<String> = l.routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(routes, ["192.168.253.0/24", "172.16.1.0/24"]);
    assert_eq!(l.ident.as_deref(), Some("HOME Network"));
    assert!(!l.ipv6cp);
}

#[test]
fn seed000_labs_gateway_answers() {
    let c = check(
        &[
            fixture!("seed000/etc_ppp.conf", "/etc/ppp/ppp.conf"),
            fixture!("seed000/server_home.ppp.conf", "/home/pppossh/.ppp.conf"),
            fixture!("seed000/ipf.rules", "/etc/ipf.rules"),
            fixture!("seed000/ipnat.rules", "/etc/ipnat.rules"),
        ],
        Options {
            name: Some("home".into()),
            interfaces: [("em0", "eth0"), ("em1", "eth1"), ("tun0", "ts-home")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Options::default()
        },
        &[("seed000/server_home.ppp.conf", 7, LOG)],
    );
    let l = c.link("home").unwrap();
    assert_eq!(l.mode, Mode::Direct);
    assert_eq!(l.allow_users, ["pppossh"]);
    assert_eq!(l.escape, [0xff]);
    assert!(!l.ipv6cp);
    let routes: Vec<String> = l.routes.iter().map(|r| r.to_string()).collect();
    assert_eq!(routes, ["192.168.1.0/24"]);
    let p = c.policy.unwrap();
    assert_eq!(p.interfaces["tun0"], "ts-home");
    assert_eq!(p.ipf.unwrap(), Path::new("/etc/ipf.rules"));
    assert_eq!(p.ipnat.unwrap(), Path::new("/etc/ipnat.rules"));
}

#[test]
fn seed000_rules_need_linux_interface_names() {
    let unmapped = |f: &'static str, line: usize, name: &str| {
        (f, line, Reason::UnmappedInterface(name.to_string()))
    };
    let c = check(
        &[
            fixture!("seed000/ipf.rules", "/etc/ipf.rules"),
            fixture!("seed000/ipnat.rules", "/etc/ipnat.rules"),
        ],
        Options::default(),
        &[
            unmapped("seed000/ipf.rules", 7, "em0"),
            unmapped("seed000/ipf.rules", 8, "em0"),
            unmapped("seed000/ipf.rules", 9, "em1"),
            unmapped("seed000/ipf.rules", 10, "em1"),
            unmapped("seed000/ipf.rules", 11, "tun0"),
            unmapped("seed000/ipf.rules", 12, "tun0"),
            unmapped("seed000/ipnat.rules", 2, "em0"),
            unmapped("seed000/ipnat.rules", 3, "em0"),
            unmapped("seed000/ipnat.rules", 4, "em1"),
            unmapped("seed000/ipnat.rules", 5, "em1"),
            unmapped("seed000/ipnat.rules", 6, "em0"),
        ],
    );
    assert!(c.policy.is_none());
}

#[test]
fn seed000_include_not_given_is_reported() {
    check(
        &[fixture!("seed000/etc_ppp.conf", "/etc/ppp/ppp.conf")],
        Options::default(),
        &[(
            "seed000/etc_ppp.conf",
            3,
            Reason::NotGiven("~/.ppp.conf".into()),
        )],
    );
}

#[test]
fn seed001_user_ppp_entries() {
    // As printed: the device is the seed's placeholder, so `vpn` is left
    // out whole; ppp.linkup's network is a placeholder too.
    let vpn_files = [
        fixture!("seed001/vpn.ppp.conf", "/etc/ppp/ppp.conf"),
        fixture!("seed001/ppp.linkup", "/etc/ppp/ppp.linkup"),
    ];
    let c = check(
        &vpn_files,
        Options::default(),
        &[
            (
                "seed001/vpn.ppp.conf",
                4,
                Reason::Incomplete(
                    "a dialling link needs its device (the command that carries PPP)",
                ),
            ),
            (
                "seed001/vpn.ppp.conf",
                5,
                Reason::Unused("its section is left out"),
            ),
            ("seed001/vpn.ppp.conf", 6, Reason::Placeholder),
            (
                "seed001/vpn.ppp.conf",
                8,
                Reason::NoEquivalent("the daemon logs to log_file at the RUST_LOG level"),
            ),
            (
                "seed001/vpn.ppp.conf",
                11,
                Reason::Unused("its section is left out"),
            ),
            ("seed001/vpn.ppp.conf", 12, SERVER),
            ("seed001/ppp.linkup", 4, Reason::Placeholder),
        ],
    );
    assert!(c.links.is_empty());
    // With the script the seed writes next (line 519) and LAN-2's network.
    let c = check(
        &vpn_files,
        replace(&[
            ("<スクリプト>", "/etc/ppp/vpn/connect"),
            ("相手ネットワーク", "192.168.2.0/24"),
        ]),
        &[
            ("seed001/vpn.ppp.conf", 8, LOG),
            ("seed001/vpn.ppp.conf", 12, SERVER),
        ],
    );
    let l = c.link("vpn").unwrap();
    assert_eq!(l.mode, Mode::Dial);
    assert_eq!(l.device.as_deref(), Some("/etc/ppp/vpn/connect"));
    assert_eq!(l.local, Some("192.168.1.1".parse().unwrap()));
    assert_eq!(l.remote, Some("192.168.2.1".parse().unwrap()));
    assert_eq!(l.routes[0].to_string(), "192.168.2.0/24");

    let c = check(
        &[
            fixture!("seed001/vpn-in.ppp.conf", "/etc/ppp/ppp.conf"),
            fixture!("seed001/pptp.ppp.conf", "/etc/ppp/ppp.conf"),
            fixture!("seed001/pptpclient.ppp.conf", "/etc/ppp/ppp.conf"),
        ],
        Options::default(),
        &[
            ("seed001/vpn-in.ppp.conf", 6, LOG),
            ("seed001/pptp.ppp.conf", 3, Reason::Incomplete("a direct link needs allow_users (who may run `tsunagi direct`): give --allow-user")),
            ("seed001/pptp.ppp.conf", 5, Reason::Unused("its section is left out")),
            ("seed001/pptpclient.ppp.conf", 3, Reason::Incomplete("a direct link needs allow_users (who may run `tsunagi direct`): give --allow-user")),
            ("seed001/pptpclient.ppp.conf", 4, Reason::Placeholder),
            ("seed001/pptpclient.ppp.conf", 5, Reason::Placeholder),
        ],
    );
    let l = c.link("vpn-in").unwrap();
    assert_eq!(
        (l.mode, &l.allow_users[..], &l.escape[..]),
        (Mode::Direct, &["vpn".to_string()][..], &[0xff][..])
    );
}

#[test]
fn seed001_pppd_sides() {
    let c = check(
        &[fixture!("seed001/vpn-saturn", "/etc/ppp/vpn/vpn-saturn")],
        replace(&[("<スクリプト>", "/etc/ppp/vpn/connect")]),
        &[],
    );
    let l = c.link("vpn-saturn").unwrap();
    assert_eq!(l.mode, Mode::Dial);
    assert_eq!(l.device.as_deref(), Some("/etc/ppp/vpn/connect"));
    assert_eq!(l.local, Some("192.168.1.1".parse().unwrap()));
    assert_eq!(l.remote, Some("192.168.2.1".parse().unwrap()));
    // As printed, the pty is a placeholder: the link is left out.
    check(
        &[fixture!("seed001/vpn-saturn", "/etc/ppp/vpn/vpn-saturn")],
        Options::default(),
        &[
            ("seed001/vpn-saturn", 3, Reason::Placeholder),
            (
                "seed001/vpn-saturn",
                3,
                Reason::Incomplete(
                    "a dialling link needs its device (the command that carries PPP)",
                ),
            ),
            (
                "seed001/vpn-saturn",
                4,
                Reason::Unused("its section is left out"),
            ),
        ],
    );
    // The answering pppd: sshd starts it as the user `vpn` (seed 001).
    let c = check(
        &[
            fixture!("seed001/vpn-option", "/etc/ppp/vpn/vpn-option"),
            fixture!("seed001/options", "/etc/ppp/options"),
        ],
        Options {
            allow_users: vec!["vpn".into()],
            ..Options::default()
        },
        &[(
            "seed001/options",
            2,
            Reason::NoEquivalent("`tsunagi direct` checks the caller's uid against allow_users"),
        )],
    );
    let l = c.link("vpn-option").unwrap();
    assert_eq!(
        (l.mode, &l.allow_users[..]),
        (Mode::Direct, &["vpn".to_string()][..])
    );
    assert!(l.auth.require.is_empty(), "noauth");
}

#[test]
fn seed001_pptpd_without_a_pool() {
    // pptpd.conf names no localip/remoteip: pptpd leaves addresses to
    // pppd, tsunagi's server needs a pool.
    let c = check(
        &[
            fixture!("seed001/pptpd.conf", "/etc/ppp/pptpd.conf"),
            fixture!("seed001/options.pptpd", "/etc/ppp/options.pptpd"),
            fixture!("seed001/chap-secrets", "/etc/ppp/chap-secrets"),
        ],
        Options::default(),
        &[
            (
                "seed001/pptpd.conf",
                2,
                Reason::Incomplete("a server needs its pool (localip and remoteip)"),
            ),
            (
                "seed001/options.pptpd",
                2,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed001/options.pptpd",
                3,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed001/options.pptpd",
                4,
                Reason::Unused("its section is left out"),
            ),
        ],
    );
    assert!(c.servers.is_empty());
    assert_eq!(
        c.daemon.secrets.as_deref(),
        Some(Path::new("/etc/ppp/chap-secrets"))
    );
    assert!(c.servers.is_empty());
}

#[test]
fn seed001_client_secrets_and_borrowed_address_rule() {
    let c = check(
        &[
            fixture!("seed001/client.chap-secrets", "/etc/ppp/chap-secrets"),
            fixture!("seed001/ipf.rules", "/etc/ipf.rules"),
        ],
        Options::default(),
        &[(
            "seed001/ipf.rules",
            3,
            Reason::Rules(
                "column 28: expected an interface name[:IPv4 address], found `tun0:h.j.k.l.`"
                    .into(),
            ),
        )],
    );
    assert!(c.policy.is_none());
    assert_eq!(
        c.daemon.secrets.as_deref(),
        Some(Path::new("/etc/ppp/chap-secrets"))
    );
}

#[test]
fn seed002_l2tp_ipsec_client() {
    let files = [
        fixture!("seed002/ipsec.conf", "/etc/ipsec.conf"),
        fixture!("seed002/ipsec.secret", "/etc/ipsec.secret"),
        fixture!("seed002/xl2tpd.conf", "/etc/xl2tpd.conf"),
        fixture!(
            "seed002/options.l2tpd.client",
            "/etc/ppp/options.l2tpd.client"
        ),
    ];
    // As printed: every address is a placeholder.
    let c = check(
        &files,
        Options::default(),
        &[
            (
                "seed002/ipsec.conf",
                4,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/ipsec.conf",
                6,
                Reason::Incomplete("a conn needs left and right"),
            ),
            (
                "seed002/ipsec.conf",
                8,
                Reason::Unused("its section is left out"),
            ),
            ("seed002/ipsec.conf", 9, Reason::Placeholder),
            (
                "seed002/ipsec.conf",
                10,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/ipsec.conf",
                11,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/ipsec.conf",
                12,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/ipsec.conf",
                13,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/ipsec.conf",
                14,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/ipsec.conf",
                15,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/ipsec.conf",
                16,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/ipsec.conf",
                17,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/xl2tpd.conf",
                3,
                Reason::Incomplete("an L2TP link needs the LNS's IPv4 address"),
            ),
            ("seed002/xl2tpd.conf", 4, Reason::Placeholder),
            (
                "seed002/xl2tpd.conf",
                6,
                Reason::Unused("its section is left out"),
            ),
            ("seed002/xl2tpd.conf", 7, Reason::Placeholder),
            (
                "seed002/xl2tpd.conf",
                10,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/xl2tpd.conf",
                11,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/options.l2tpd.client",
                2,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/options.l2tpd.client",
                3,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/options.l2tpd.client",
                6,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/options.l2tpd.client",
                7,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/options.l2tpd.client",
                8,
                Reason::Unused("its section is left out"),
            ),
            (
                "seed002/options.l2tpd.client",
                10,
                Reason::Unused("its section is left out"),
            ),
        ],
    );
    assert!(c.links.is_empty() && c.ipsec.is_empty());
    // The README's addresses for the placeholders: the whole stack.
    let c = check(
        &files,
        replace(&[("e.f.g.h", "203.0.113.1"), ("m.n.o.p", "198.51.100.7")]),
        &[],
    );
    let l = c.link("idcf").unwrap();
    assert_eq!(l.mode, Mode::L2tp);
    assert_eq!(l.lns, Some("203.0.113.1".parse().unwrap()));
    assert_eq!(l.l2tp.ipsec.as_deref(), Some("idcf"));
    assert_eq!((l.mtu, l.mru), (Some(1410), 1410));
    assert!(l.default_route && l.persist);
    assert_eq!(l.max_redials, 6);
    let conn = c.ipsec_conn("idcf").unwrap();
    assert_eq!(conn.ike_text, "3des-sha1-modp1024!");
    assert_eq!(
        c.daemon.ipsec_secrets.as_deref(),
        Some(Path::new("/etc/ipsec.secret"))
    );
}

#[test]
fn seed004_pptpd() {
    let c = check(
        &[
            fixture!("seed004/pptpd.conf", "/etc/pptpd.conf"),
            fixture!("seed004/pptpd-options", "/etc/ppp/pptpd-options"),
            fixture!("seed004/chap-secrets", "/etc/ppp/chap-secrets"),
        ],
        Options::default(),
        &[
            ("seed004/pptpd.conf", 6, Reason::NoEquivalent("debug logs come with RUST_LOG=debug")),
            // The seed's pptpd.conf shows no `option` line naming it.
            ("seed004/pptpd-options", 2, Reason::Unused("no pty, no notty, and no pptpd.conf or xl2tpd.conf among the inputs names this file")),
        ],
    );
    let s = c.server("pptpd").unwrap();
    assert_eq!(
        (s.localip.as_str(), s.remoteip.as_str()),
        ("192.168.0.100", "192.168.0.101-119")
    );
}

#[test]
fn seed004_example_pptpd_conf_is_comments_only() {
    // What the seed shows of Debian's example: every line a comment, so
    // no pool and no server; reported for the file, not a line.
    let c = check(
        &[fixture!(
            "seed004/examples-pptpd.conf",
            "/usr/share/doc/pptpd/examples/pptpd.conf"
        )],
        Options::default(),
        &[(
            "seed004/examples-pptpd.conf",
            0,
            Reason::Incomplete("a server needs its pool (localip and remoteip)"),
        )],
    );
    assert!(c.servers.is_empty());
}

#[test]
fn kinds_from_names_and_content() {
    assert_eq!(
        Format::from_name("/home/pppossh/.ppp.conf"),
        Some(Format::PppConf)
    );
    assert_eq!(
        Format::from_name("/etc/ppp/options.pptpd"),
        Some(Format::Pppd)
    );
    assert_eq!(
        Format::from_name("/etc/ppp/pptpd-options"),
        Some(Format::Pppd)
    );
    assert_eq!(
        Format::from_name("/etc/ipsec.secret"),
        Some(Format::IpsecSecrets)
    );
    assert_eq!(Format::from_name("/etc/ppp/vpn/vpn-saturn"), None);
    assert_eq!(
        Format::sniff(include_str!("testdata/seed001/vpn-saturn")),
        Some(Format::Pppd)
    );
    assert_eq!(
        Format::sniff("[lac x]\nlns = 1.2.3.4\n"),
        Some(Format::Xl2tpdConf)
    );
    assert_eq!(Format::sniff("hello world\n"), None);
}

#[test]
fn words_and_placeholders() {
    assert_eq!(
        words(r#"set server ~/tmp/tun.0 "" 0177 # c"#, true),
        ["set", "server", "~/tmp/tun.0", "", "0177"]
    );
    assert_eq!(
        words(r#"ident "HOME Network""#, true),
        ["ident", "HOME Network"]
    );
    assert!(is_placeholder("<スクリプト>"));
    assert!(is_placeholder("e.f.g.h"));
    assert!(is_placeholder("h.j.k.l."));
    assert!(!is_placeholder("203.0.113.1"));
    assert!(!is_placeholder("!ssh -i /k vpn@saturn"));
}

#[test]
fn name_renames_the_one_profile_only() {
    let files = [
        fixture!("seed000/etc_ppp.conf", "/etc/ppp/ppp.conf"),
        fixture!("seed000/server_home.ppp.conf", "/home/pppossh/.ppp.conf"),
        fixture!("seed000/client_home.ppp.conf", "/home/pppossh/.ppp.conf"),
    ];
    let opts = Options {
        name: Some("labs".into()),
        ..Options::default()
    };
    assert!(matches!(
        import(&inputs(&files), &opts),
        Err(ImportError::NameAmbiguous(_, 2))
    ));
    let opts = Options {
        name: Some("labs".into()),
        labels: vec!["pppossh_request".into()],
        ..Options::default()
    };
    let out = import(&inputs(&files), &opts).unwrap();
    assert!(out.toml.contains("[link.labs]"), "{}", out.toml);
    let opts = Options {
        labels: vec!["pppossh_approve_4_".into()],
        ..Options::default()
    };
    assert!(matches!(
        import(&inputs(&files), &opts),
        Err(ImportError::NoSuchLabel(l)) if l == "pppossh_approve_4_"
    ));
}

#[test]
fn seed001_options_pptpd_on_a_server_with_a_pool() {
    // Seed 001's pptpd.conf line with seed 004's pool lines: the options
    // file it names converts into the server (name, proxyarp, CHAP), and
    // since it names no MPPE option pppd would run without MPPE.
    const CONF: &str =
        "localip 192.168.0.100\nremoteip 192.168.0.101-119\noption /etc/ppp/options.pptpd\n";
    let c = check(
        &[
            ("test/pptpd.conf", "/etc/ppp/pptpd.conf", CONF),
            fixture!("seed001/options.pptpd", "/etc/ppp/options.pptpd"),
            fixture!("seed001/chap-secrets", "/etc/ppp/chap-secrets"),
        ],
        Options::default(),
        &[],
    );
    let s = c.server("pptpd").unwrap();
    assert!(s.proxyarp);
    assert_eq!(s.auth.require, [tsunagi_ppp::auth::AuthMethod::ChapMd5]);
    let toml = import(
        &inputs(&[
            ("test/pptpd.conf", "/etc/ppp/pptpd.conf", CONF),
            fixture!("seed001/options.pptpd", "/etc/ppp/options.pptpd"),
            fixture!("seed001/chap-secrets", "/etc/ppp/chap-secrets"),
        ]),
        &Options::default(),
    )
    .unwrap()
    .toml;
    assert!(toml.contains("mppe = \"none\""), "{toml}");
    assert!(
        toml.contains("name = \"pptpd\"  # seed001/options.pptpd:2"),
        "{toml}"
    );
}

#[test]
fn any_prefix_of_any_fixture_read_as_any_format_does_not_panic() {
    // The parsers take operators' files as they are: a cut-off file, or
    // one read as the wrong kind (--from), is reported, never a panic.
    let fixtures: [Fixture; 8] = [
        fixture!("seed000/client_home.ppp.conf", "/home/pppossh/.ppp.conf"),
        fixture!("seed000/ipf.rules", "/etc/ipf.rules"),
        fixture!("seed001/vpn.ppp.conf", "/etc/ppp/ppp.conf"),
        fixture!("seed001/options.pptpd", "/etc/ppp/options.pptpd"),
        fixture!("seed001/chap-secrets", "/etc/ppp/chap-secrets"),
        fixture!("seed002/ipsec.conf", "/etc/ipsec.conf"),
        fixture!("seed002/xl2tpd.conf", "/etc/xl2tpd.conf"),
        fixture!("seed004/pptpd.conf", "/etc/pptpd.conf"),
    ];
    let formats = [
        Format::PppConf,
        Format::Pppd,
        Format::ChapSecrets,
        Format::PptpdConf,
        Format::Xl2tpdConf,
        Format::IpsecConf,
        Format::IpsecSecrets,
        Format::IpfRules,
        Format::IpnatRules,
    ];
    for (name, path, text) in fixtures {
        let cuts = text
            .char_indices()
            .map(|(i, _)| i)
            .filter(|i| i % 5 == 0 || text[..*i].ends_with('\n'));
        for cut in cuts.chain([text.len()]) {
            for format in formats {
                let input = Input {
                    name: name.to_string(),
                    reference: path.to_string(),
                    text: text[..cut].to_string(),
                    format,
                };
                // Either result is fine; a panic is not.
                let _ = import(&[input], &Options::default());
            }
        }
    }
}
