//! PPP authentication and CCP between two daemons, each in a fresh network
//! namespace, as in daemon_netns.rs: daemon B dials with
//! `device = "... tsunagi -S A.sock direct p2"`, daemon A answers in direct
//! mode and requires authentication from a chap-secrets file.
//!
//! - CHAP-MD5 + Deflate 15: the right password brings IPCP up with the
//!   fixed address of the secrets' 4th column; ping crosses; `status`
//!   names user, method and CCP on both sides.
//! - MS-CHAPv2 + MPPE-128 (stateless): the same, with MPPE both ways.
//! - A wrong password: refused on both sides with the log lines (user,
//!   the ssh client address from SSH_CONNECTION, reason), and after a few
//!   failures A refuses that address's next attempts for a while.
//! - Wrong passwords with a new SSH_CONNECTION at every dial: A holds off
//!   the caller's uid all the same.
//! - A secrets file readable by others, a config with a password readable
//!   by others, a secrets or password file owned by another user: the
//!   daemon refuses to start, and `check` refuses the config, naming the
//!   file and its mode or owner.
//!
//! Needs root: the tests are `#[ignore]`d, `scripts/test.sh` runs them (as
//! root, with `--include-ignored`); run where they cannot work, they fail
//! naming what is missing. Namespaces and daemons are removed by a guard,
//! also when an assertion fails.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use support::{ping, require_netns, wait_for, Guard, Side, BIN};

/// The ssh client address the dialling side pretends to come from (a
/// documentation address: it is only a string in a request).
const SSH_CLIENT: &str = "192.0.2.77";

/// Two namespaces and a scratch directory for the test called `tag`.
fn pair(tag: &str) -> Guard {
    let pid = std::process::id();
    Guard::pair(
        &format!("tsunagi-dauth-{pid}-{tag}"),
        &format!("tsauth{pid}{tag}"),
    )
}

/// A chap-secrets file with this mode.
fn secrets_file(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let p = dir.join("chap-secrets");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

/// What the dialling side's `tsunagi direct` claims in `SSH_CONNECTION`.
#[derive(Clone, Copy)]
enum Claim {
    /// Always [`SSH_CLIENT`].
    Fixed,
    /// 192.0.2.1 at the first dial, 192.0.2.2 at the second, ... (a
    /// counter file in the scratch directory): what a caller trying to
    /// slip past the hold-off would do.
    NewEachDial,
}

/// What differs between the cases.
struct Case {
    /// Short, unique per test (namespace and tun names).
    tag: &'static str,
    /// The third octet of the addresses.
    octet: u32,
    /// Lines added to A's (authenticator's) link.
    a_extra: &'static str,
    /// Lines added to B's (peer's) link.
    b_extra: &'static str,
    /// B's password.
    password: &'static str,
    /// The ssh client B's device claims.
    claim: Claim,
}

/// Starts A (direct, requires auth; its secrets give bob a fixed address
/// and A names no `remote`) and B (dials, authenticates as bob).
fn start_pair(case: &Case) -> (Guard, String, String) {
    let mut guard = pair(case.tag);
    let pid = std::process::id() % 10000;
    let net = format!("10.253.{}", case.octet);
    let (a_addr, b_addr) = (format!("{net}.1"), format!("{net}.2"));
    let secrets = secrets_file(
        &guard.dir,
        &format!(
            "# client server secret addresses\nbob * \"right pw\" {b_addr}\n\"carol x\" * other *\n"
        ),
        0o600,
    );
    let a_links = format!(
        r#"[link.p2]
mode = "direct"
tun = "ta{pid}{tag}"
local = "{a_addr}"
ipv6cp = false
echo_interval = 1
echo_failure = 3
allow_users = ["root"]
secrets = "{secrets}"
name = "gw-a"
{extra}
"#,
        tag = case.tag,
        secrets = secrets.display(),
        extra = case.a_extra,
    );
    // No double quote or backslash: the device is a TOML basic string.
    let ssh_connection = match case.claim {
        Claim::Fixed => format!("SSH_CONNECTION='{SSH_CLIENT} 50022 192.0.2.1 22'"),
        Claim::NewEachDial => format!(
            "n=$(( $(cat {c} 2>/dev/null || echo 0) + 1 )); echo $n > {c}; \
             SSH_CONNECTION=192.0.2.$n' 50022 192.0.2.1 22'",
            c = guard.dir.join("dials").display()
        ),
    };
    let b_links = format!(
        r#"[link.p1]
mode = "dial"
device = "{ssh_connection} {BIN} -S {sock} direct p2"
tun = "tb{pid}{tag}"
ipv6cp = false
echo_interval = 1
echo_failure = 3
redial_min = 1
redial_max = 1
user = "bob"
password = "{password}"
{extra}
"#,
        sock = guard.sides[0].socket().display(),
        tag = case.tag,
        password = case.password,
        extra = case.b_extra,
    );
    guard.sides[0].start(&a_links);
    guard.sides[1].start(&b_links);
    (guard, a_addr, b_addr)
}

/// The right password: IPCP up with the secrets' fixed address, ping
/// both ways, `status` shows auth and CCP on both sides, and no log line
/// carries the password.
fn succeeds(case: &Case, a_auth: &str, b_auth: &str, ccp: &str) {
    let (guard, a_addr, b_addr) = start_pair(case);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    wait_for(Duration::from_secs(15), "IPCP up on B", || {
        b.status()[0]["local"].as_str() == Some(b_addr.as_str())
    });
    assert!(ping(b, &a_addr), "ping B -> A failed");
    assert!(ping(a, &b_addr), "ping A -> B failed");
    wait_for(Duration::from_secs(2), "status refreshed", || {
        a.status()[0]["peer_addr"].as_str() == Some(b_addr.as_str())
    });
    let (sa, sb) = (a.status(), b.status());
    assert_eq!(sa[0]["auth"], a_auth, "{sa}");
    assert_eq!(sb[0]["auth"], b_auth, "{sb}");
    assert_eq!(sa[0]["ccp"], ccp, "{sa}");
    assert_eq!(sb[0]["ccp"], ccp, "{sb}");
    // The human table shows them too.
    let table = a.cli(&["status"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains(a_auth) && table.contains(ccp), "{table}");
    let (log_a, log_b) = (a.log(), b.log());
    assert!(
        log_a.contains(&format!(
            "p2: peer \"bob\" from {SSH_CLIENT} authenticated with"
        )),
        "{log_a}"
    );
    assert!(
        log_a.contains(&format!("fixed address {b_addr}")),
        "{log_a}"
    );
    // DESIGN.md "Weak algorithms": a warning per weak algorithm named.
    for log in [&log_a, &log_b] {
        let warned = log.contains("weak algorithm enabled: MS-CHAPv2")
            && log.contains("weak algorithm enabled: MPPE");
        assert_eq!(warned, a_auth.contains("MS-CHAP"), "{log}");
    }
    for log in [&log_a, &log_b] {
        assert!(!log.contains(case.password), "a log carries the password");
        assert!(!log.contains("right pw"), "a log carries the secret");
    }
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn chap_md5_with_deflate_brings_the_link_up() {
    require_netns(&[]);
    succeeds(
        &Case {
            tag: "c",
            octet: 11,
            a_extra: "require = [\"chap\"]\ndeflate = 15",
            b_extra: "deflate = 15",
            password: "right pw",
            claim: Claim::Fixed,
        },
        "peer bob by CHAP",
        "us as bob by CHAP",
        "send DEFLATE[4] win 15, receive DEFLATE[4] win 15",
    );
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn mschap_v2_with_mppe_128_brings_the_link_up() {
    require_netns(&[]);
    succeeds(
        &Case {
            tag: "m",
            octet: 12,
            a_extra: "require = [\"mschap-v2\"]\nmppe = \"require-128\"",
            b_extra: "mppe = \"require-128\"",
            password: "right pw",
            claim: Claim::Fixed,
        },
        "peer bob by MS-CHAP-v2",
        "us as bob by MS-CHAP-v2",
        "send MPPE 128-bit stateless, receive MPPE 128-bit stateless",
    );
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn wrong_password_is_refused_on_both_sides_and_slowed_down() {
    require_netns(&[]);
    let case = Case {
        tag: "w",
        octet: 13,
        a_extra: "require = [\"chap\"]",
        b_extra: "",
        password: "wrong pw",
        claim: Claim::Fixed,
    };
    let (guard, _a_addr, b_addr) = start_pair(&case);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    wait_for(Duration::from_secs(10), "failure logged on A", || {
        a.log().contains(&format!(
            "p2: authentication failed: user \"bob\" from {SSH_CLIENT} by CHAP: "
        ))
    });
    wait_for(Duration::from_secs(10), "failure logged on B", || {
        b.log()
            .contains("refused our authentication as \"bob\" by CHAP")
    });
    // B never got an address.
    assert_ne!(b.status()[0]["local"].as_str(), Some(b_addr.as_str()));
    let sb = b.status();
    let last = sb[0]["last_down"].as_str().unwrap_or("").to_string();
    assert!(last.contains("peer refused our authentication"), "{sb}");
    // B redials every second; after three free failures A holds off the
    // address and refuses the next attempts, and says so.
    wait_for(Duration::from_secs(20), "hold-off on A", || {
        a.log().contains(&format!(
            "p2: too many authentication failures from {SSH_CLIENT}: refused for"
        ))
    });
    let log_a = a.log();
    assert!(
        log_a.contains(&format!("next attempt from {SSH_CLIENT} held off")),
        "{log_a}"
    );
    for log in [a.log(), b.log()] {
        assert!(!log.contains("wrong pw") && !log.contains("right pw"));
    }
}

/// `tsunagi direct` sends whatever SSH_CONNECTION says, so a caller can
/// claim a new address at every attempt: its uid is held off all the same
/// once the free failures are spent, and A's refusal names the uid.
#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn wrong_passwords_from_one_uid_are_held_off_whatever_address_it_claims() {
    require_netns(&[]);
    let case = Case {
        tag: "v",
        octet: 14,
        a_extra: "require = [\"chap\"]",
        b_extra: "",
        password: "wrong pw",
        claim: Claim::NewEachDial,
    };
    let (guard, _a_addr, _b_addr) = start_pair(&case);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    // B's device runs as root: uid 0 is the caller A sees.
    wait_for(Duration::from_secs(30), "hold-off of uid 0 on A", || {
        a.log()
            .contains("p2: too many authentication failures from uid 0: refused for")
    });
    let log_a = a.log();
    // The first four failures each came from an address of its own.
    for n in 1..=4 {
        assert!(
            log_a.contains(&format!(
                "p2: authentication failed: user \"bob\" from 192.0.2.{n} by CHAP: "
            )),
            "{log_a}"
        );
    }
    assert!(
        log_a.contains("next attempt from uid 0 held off"),
        "{log_a}"
    );
    // The refusal reaches the caller: B logs its device's stderr.
    wait_for(Duration::from_secs(5), "the refusal in B's log", || {
        b.log()
            .contains("too many authentication failures from uid 0")
    });
}

/// A scratch directory and a daemon's files in it, without a namespace:
/// for daemons that must refuse to start.
fn lone_side(tag: &'static str) -> (Guard, Side) {
    let dir = std::env::temp_dir().join(format!("tsunagi-dauth-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let guard = Guard {
        sides: Vec::new(),
        dir: dir.clone(),
    };
    let side = Side {
        ns: String::new(),
        dir,
        tag,
        daemon: None,
    };
    (guard, side)
}

/// `tsunagi -c CFG check`.
fn check(cfg: &Path) -> Output {
    Command::new(BIN)
        .arg("-c")
        .arg(cfg)
        .arg("check")
        .output()
        .unwrap()
}

/// Asserts that `check` accepts `cfg`.
fn check_accepts(cfg: &Path) {
    let checked = check(cfg);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// Asserts that `check` and `run` both refuse `cfg` (exit status 1),
/// saying `why` and never `secret`: `run` before it binds its socket, and
/// in its log too. `check` goes first, so that a daemon which would start
/// is not started; one that starts all the same is killed after 10 s.
fn refused(side: &Side, cfg: &Path, why: &str, secret: &str) {
    let checked = check(cfg);
    let err = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(1), "check: {err}");
    assert!(err.contains(why), "check: {err}");
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(cfg)
        .arg("run")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the daemon started with {}", cfg.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "run: {err}");
    assert!(err.contains(why), "run: {err}");
    assert!(!err.contains(secret), "{err}");
    assert!(!side.socket().exists(), "the daemon bound its socket");
    let log = side.log();
    assert!(
        log.contains("refusing to start") && log.contains(why),
        "{log}"
    );
    assert!(!log.contains(secret), "{log}");
}

#[test]
#[ignore = "needs root to start the daemon (scripts/test.sh runs it)"]
fn world_readable_secrets_refuse_start_up() {
    // No namespace is needed, but a daemon is only started as root.
    support::require_root();
    let (guard, side) = lone_side("perm");
    let secrets = secrets_file(&guard.dir, "bob * \"right pw\" *\n", 0o644);
    let cfg = side.config(&format!(
        "[link.p2]\nmode = \"direct\"\nallow_users = [\"root\"]\nrequire = [\"chap\"]\nsecrets = \"{}\"\n",
        secrets.display()
    ));
    let path = secrets.display();
    refused(
        &side,
        &cfg,
        &format!(
            "secrets file {path} is accessible by group or others (mode 0644); \
             it holds passwords: run `chmod 600 {path}`"
        ),
        "right pw",
    );
    // Once the file is private, `check` accepts it.
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    check_accepts(&cfg);
}

/// A `password` written in the config makes the config a file of secrets:
/// readable by others, it is refused as a secrets file would be. Without
/// a password, the same mode is fine.
#[test]
#[ignore = "needs root to start the daemon (scripts/test.sh runs it)"]
fn readable_config_with_a_password_refuses_start_up() {
    support::require_root();
    let (_guard, side) = lone_side("cfgperm");
    let link = "[link.p2]\nmode = \"direct\"\nallow_users = [\"root\"]\n";
    let cfg = side.config(&format!("{link}user = \"bob\"\npassword = \"right pw\"\n"));
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = cfg.display();
    refused(
        &side,
        &cfg,
        &format!(
            "config file {path} is accessible by group or others (mode 0644); \
             it holds passwords: run `chmod 600 {path}`"
        ),
        "right pw",
    );
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    check_accepts(&cfg);
    let cfg = side.config(link);
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    check_accepts(&cfg);
}

/// A secrets or password file that another user owns is refused, mode
/// 0600 or not: that user could read it, or put secrets of its choosing in
/// it. Owned by root (the daemon's uid here), it is accepted.
#[test]
#[ignore = "needs root to start the daemon and to give files away (scripts/test.sh runs it)"]
fn secrets_owned_by_another_user_refuse_start_up() {
    support::require_root();
    const NOBODY: u32 = 65534;
    let (guard, side) = lone_side("owner");
    let secrets = secrets_file(&guard.dir, "bob * \"right pw\" *\n", 0o600);
    let password = guard.dir.join("password");
    std::fs::write(&password, "right pw\n").unwrap();
    std::fs::set_permissions(&password, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = "[link.p2]\nmode = \"direct\"\nallow_users = [\"root\"]\n";
    let configs = [
        (
            &secrets,
            "secrets file",
            format!(
                "{link}require = [\"chap\"]\nsecrets = \"{}\"\n",
                secrets.display()
            ),
        ),
        (
            &password,
            "password file",
            format!(
                "{link}user = \"bob\"\npassword_file = \"{}\"\n",
                password.display()
            ),
        ),
    ];
    for (file, what, links) in &configs {
        std::os::unix::fs::chown(file, Some(NOBODY), Some(NOBODY)).unwrap();
        let cfg = side.config(links);
        let path = file.display();
        refused(
            &side,
            &cfg,
            &format!(
                "{what} {path} is owned by uid {NOBODY}; it holds passwords, \
                 so it must be owned by root: run `chown root {path}`"
            ),
            "right pw",
        );
        std::os::unix::fs::chown(file, Some(0), Some(0)).unwrap();
        check_accepts(&cfg);
    }
}
