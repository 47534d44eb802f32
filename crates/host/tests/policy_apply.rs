//! The daemon's side of the policy: rule files loaded for this host's
//! interfaces, applied, counted, logged through NFLOG as ipmon lines by the
//! async reader, removed. In a network namespace of its own.
//!
//! The namespace test needs root and `nft`: it is `#[ignore]`d,
//! `scripts/test.sh` runs it (as root, with `--include-ignored`); run
//! without them it fails saying what is missing.

mod support;

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tsunagi_host::policy_apply::{
    check_rules_file, hit_table, remove, IpmonLog, LoadedPolicy, Options,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policy/tests/data")
        .join(name)
}

#[test]
fn check_names_file_line_and_token() {
    let ok = check_rules_file(&data("seed000_ipf.rules")).expect("seed ipf");
    assert!(ok.ends_with("24 ipf rules OK"), "{ok}");
    let ok = check_rules_file(&data("seed000_ipnat.rules")).expect("seed ipnat");
    assert!(ok.ends_with("5 ipnat rules OK"), "{ok}");
    let dir = std::env::temp_dir().join(format!("tsunagi-policy-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let bad = dir.join("bad.rules");
    std::fs::write(
        &bad,
        "pass in all\npass in quick proto tcp from any to any port = sshd\n",
    )
    .expect("write");
    let err = check_rules_file(&bad).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:2:", bad.display())), "{err}");
    assert!(
        err.contains("found `sshd`") && err.ends_with("^^^^"),
        "{err}"
    );
    let refused = dir.join("refused.rules");
    std::fs::write(&refused, "pass in all\npass in all group 9\n").expect("write");
    let err = check_rules_file(&refused).unwrap_err().to_string();
    assert!(err.contains("line 2: group 9 has no `head 9`"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unmapped_interface_is_named_with_its_file() {
    let err = LoadedPolicy::load(
        Some(&data("seed000_ipf.rules")),
        Some(&data("seed000_ipnat.rules")),
        &BTreeMap::from([("tun0".to_string(), "tun-labs".to_string())]),
        &Options::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("seed000_ipf.rules: line 7: interface `em0`"),
        "{err}"
    );
}

#[test]
#[ignore = "needs root, network namespaces and nft (scripts/test.sh runs it)"]
fn apply_count_log_remove_in_a_namespace() {
    support::require_netns(&["nft", "ping"]);
    let name = format!("tsunagi-papply-{}", std::process::id());
    let _ = Command::new("ip")
        .args(["netns", "del", &name])
        .stderr(Stdio::null())
        .status();
    let ok = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .expect("ip");
    assert!(ok.success());
    struct Del(String);
    impl Drop for Del {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _del = Del(name.clone());
    let path = format!("/run/netns/{name}");
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let ns = std::fs::File::open(&path).expect("netns file");
                // SAFETY: setns(2) on an fd we own; only this thread moves.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(in_namespace(&name));
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
    });
}

async fn in_namespace(ns: &str) {
    // Seed 000's rules with every interface on a dummy link, lo0 on lo.
    for dev in ["em0", "em1", "tun0"] {
        let ok = Command::new("ip")
            .args(["-n", ns, "link", "add", &format!("x{dev}"), "type", "veth"])
            .args(["peer", "name", &format!("y{dev}")])
            .status()
            .expect("ip");
        assert!(ok.success());
    }
    let ok = Command::new("ip")
        .args(["-n", ns, "link", "set", "lo", "up"])
        .status()
        .expect("ip");
    assert!(ok.success());
    let interfaces: BTreeMap<String, String> = ["em0", "em1", "tun0"]
        .iter()
        .map(|d| (d.to_string(), format!("x{d}")))
        .collect();
    let policy = LoadedPolicy::load(
        Some(&data("seed000_ipf.rules")),
        Some(&data("seed000_ipnat.rules")),
        &interfaces,
        &Options {
            nflog_group: 9,
            ..Options::default()
        },
    )
    .expect("load");
    assert!(policy.show().contains("\"xtun0\""));
    let log = IpmonLog::bind(9, policy.map.clone()).expect("NFLOG");
    policy.apply().expect("apply");
    policy.apply().expect("apply again replaces");

    // A packet with IP options on lo: blocked and logged by @0:1, before
    // `pass in quick on lo0 all` (ping -R records the route in an option).
    let pinged = Command::new("ping")
        .args(["-c1", "-W1", "-R", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("ping");
    assert!(!pinged.success(), "a packet with IP options is blocked");
    let lines = tokio::time::timeout(Duration::from_secs(2), log.next_lines())
        .await
        .expect("a log line within 2 s")
        .expect("NFLOG read");
    assert!(
        lines.iter().any(
            |l| l.starts_with("lo0 @0:1 b 127.0.0.1 -> 127.0.0.1 PR icmp len ")
                && l.ends_with(" icmp echo/0 IN")
        ),
        "{lines:?}"
    );
    // Without options lo passes (@0:3 quick), counted.
    let pinged = Command::new("ping")
        .args(["-c1", "-W1", "127.0.0.1"])
        .stdout(Stdio::null())
        .status()
        .expect("ping");
    assert!(pinged.success());
    let hits = policy.hit_counts().expect("counters");
    let get = |label: &str| {
        hits.iter()
            .find(|(r, _)| r.label == label)
            .map(|(_, c)| c.packets)
    };
    assert_eq!(get("@0:1 in"), Some(1), "{}", hit_table(&hits));
    assert!(get("@0:3 in").unwrap_or(0) >= 2, "{}", hit_table(&hits));
    assert_eq!(hits.len(), 29);
    let table = hit_table(&hits);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("@0:1 in") && l.contains("ipf:3")),
        "{table}"
    );

    remove().expect("remove");
    remove().expect("remove twice");
    assert!(policy.hit_counts().is_err(), "no table after removal");
}
