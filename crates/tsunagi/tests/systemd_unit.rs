//! The systemd unit, dist/systemd/tsunagi.service (issue 15).
//!
//! - `systemd-analyze verify` reads it without a single complaint (it
//!   exits 0 even for a key it ignores, so its output must be empty).
//! - The daemon works with nothing but the capabilities the unit leaves it:
//!   two daemons run under `setpriv` with the unit's
//!   `CapabilityBoundingSet`, in two namespaces as in daemon_netns.rs,
//!   bring a link up, ping across, answer `status` and `reload`, and stop
//!   cleanly; their effective capabilities are checked in /proc.
//!
//! - scripts/install.sh into a DESTDIR puts the binary, the unit and the
//!   example config in place with their modes.
//!
//! The first two are `#[ignore]`d (systemd-analyze; root, namespaces, tun):
//! `scripts/test.sh` runs them.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{ping, require_netns, wait_for, Guard, BIN};

fn unit_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dist/systemd/tsunagi.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The unit's `CapabilityBoundingSet`, as setpriv writes it
/// (`+net_admin,+net_raw,...`).
fn bounding_set(unit: &str) -> String {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("the unit limits the capabilities");
    line.split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
#[ignore = "needs systemd-analyze (Debian package systemd; scripts/test.sh installs it)"]
fn unit_verifies_without_complaint() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!("needs systemd-analyze: apt-get install systemd");
    };
    assert!(out.status.success());
    let dir = std::env::temp_dir().join(format!("tsunagi-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // verify checks that ExecStart's program exists: the one under test.
    let unit = dir.join("tsunagi.service");
    std::fs::write(&unit, unit_text().replace("/usr/local/sbin/tsunagi", BIN)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{said}");
    assert!(
        said.trim().is_empty(),
        "systemd-analyze complained:\n{said}"
    );
    // And a broken key would have been noticed.
    assert!(bounding_set(&unit_text()).contains("+net_admin"));
}

/// scripts/install.sh into a DESTDIR with another PREFIX: the binary, the
/// unit naming it there, /etc/tsunagi 0750 with the example config (0600,
/// which `check` accepts), and a second run that keeps a config it finds.
#[test]
fn install_script_puts_everything_in_place() {
    use std::os::unix::fs::PermissionsExt;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dest = std::env::temp_dir().join(format!("tsunagi-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let run = || {
        let out = Command::new("bash")
            .arg(root.join("scripts/install.sh"))
            .env("DESTDIR", &dest)
            .env("PREFIX", "/opt/tsunagi")
            .env("TSUNAGI_BIN", BIN)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run();
    let mode = |p: &str| {
        std::fs::metadata(dest.join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("opt/tsunagi/sbin/tsunagi"), 0o755);
    assert_eq!(mode("etc/systemd/system/tsunagi.service"), 0o644);
    assert_eq!(mode("etc/tsunagi"), 0o750);
    assert_eq!(mode("etc/tsunagi/tsunagi.toml"), 0o600);
    let unit = std::fs::read_to_string(dest.join("etc/systemd/system/tsunagi.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/opt/tsunagi/sbin/tsunagi -c /etc/tsunagi/tsunagi.toml run"),
        "{unit}"
    );
    assert!(!unit.contains("/usr/local/sbin"), "{unit}");
    let config = dest.join("etc/tsunagi/tsunagi.toml");
    let check = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .arg("check")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // An operator's config is never overwritten.
    std::fs::write(&config, "# mine\n").unwrap();
    run();
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# mine\n");
    let _ = std::fs::remove_dir_all(&dest);
}

/// The hex `CapEff` of process `pid`.
fn effective_caps(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
#[ignore = "needs root, network namespaces and tun devices (scripts/test.sh runs it)"]
fn daemon_runs_with_only_the_units_capabilities() {
    require_netns(&[]);
    let caps = bounding_set(&unit_text());
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-caps-{pid}"), &format!("tscap{pid}"));
    let o = pid % 250;
    let (a_addr, b_addr) = (format!("10.248.{o}.1"), format!("10.248.{o}.2"));
    let a_links = format!(
        "[link.p2]\nmode = \"direct\"\ntun = \"tca{pid}\"\nlocal = \"{a_addr}\"\nremote = \"{b_addr}\"\nipv6cp = false\nallow_users = [\"root\"]\n"
    );
    let b_links = format!(
        "[link.p1]\nmode = \"dial\"\ndevice = \"{BIN} -S {sock} direct p2\"\ntun = \"tcb{pid}\"\nipv6cp = false\nroutes = [\"10.247.{o}.0/24\"]\nredial_min = 1\n",
        sock = guard.sides[0].socket().display()
    );
    for (side, links) in [(0, &a_links), (1, &b_links)] {
        let s = &mut guard.sides[side];
        let cfg = s.config(links);
        // The capability limit after `ip netns exec`, which needs more.
        let child = Command::new("ip")
            .args(["netns", "exec", &s.ns, "setpriv"])
            .arg(format!("--bounding-set=-all,{caps}"))
            .arg(BIN)
            .arg("-c")
            .arg(&cfg)
            .arg("run")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        s.daemon = Some(child);
        wait_for(Duration::from_secs(10), "daemon socket", || {
            s.socket().exists()
        });
    }
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    wait_for(
        Duration::from_secs(20),
        "IPCP up under the unit's capabilities",
        || b.link_address().as_deref() == Some(b_addr.as_str()),
    );
    assert!(ping(b, &a_addr), "ping B -> A");
    assert!(ping(a, &b_addr), "ping A -> B");
    let routes = String::from_utf8_lossy(&b.exec(&["ip", "route"]).stdout).into_owned();
    assert!(
        routes.contains(&format!("10.247.{o}.0/24 dev tcb{pid}")),
        "{routes}"
    );
    let out = b.cli(&["reload"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the daemons run with: the unit's set and nothing else.
    // (CAP_NET_ADMIN 12, CAP_NET_RAW 13, CAP_NET_BIND_SERVICE 10.)
    let want: u64 = caps
        .split(',')
        .map(|c| match c {
            "+net_admin" => 1 << 12,
            "+net_raw" => 1 << 13,
            "+net_bind_service" => 1 << 10,
            other => panic!("a capability this test does not know: {other}"),
        })
        .sum();
    for side in [a, b] {
        // `ip netns exec` and setpriv each exec the next program: the
        // child spawned is the daemon itself.
        let daemon_pid = side.daemon.as_ref().unwrap().id();
        let comm = std::fs::read_to_string(format!("/proc/{daemon_pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "tsunagi");
        let eff = effective_caps(daemon_pid);
        assert_eq!(
            eff & !want,
            0,
            "pid {daemon_pid} has more: {eff:x} (want {want:x})"
        );
    }
    assert_eq!(guard.sides[1].stop(), Some(0));
    assert_eq!(guard.sides[0].stop(), Some(0));
}
