//! `tsunagi capture` of a running link, read back with tshark.
//!
//! Two daemons in two fresh network namespaces, PPP over the control
//! socket as in daemon_netns.rs (B dials A with `tsunagi direct`). A
//! capture of A's link runs while B pings A a known number of times with a
//! known payload pattern; Ctrl-C (SIGINT) ends it with a summary. tshark
//! must find every echo request (in, from B) and every reply (out, to B),
//! with the pattern. A second capture, of B's link, stops by itself after
//! `--count` packets; another to stdout (`-w -`). A capture of a profile
//! that does not exist, and one by a uid other than root, are refused.
//!
//! The datagram paths too: an L2TP LAC (the clients' tun path) and the LNS
//! (a server profile, every session's packets) captured at once while the
//! LAC pings the LNS.
//!
//! Needs root, network namespaces, tun devices and tshark: it is
//! `#[ignore]`d, `scripts/test.sh` runs it (as root, with
//! `--include-ignored`); run where it cannot work, it fails naming what
//! is missing. Namespaces and daemons are removed by a guard, also when an
//! assertion fails.

mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::netns::veth;
use support::{require_netns, wait_for, Guard, Side, BIN};

/// The echo payload's pattern (`ping -p`): "tsunagi!" in hex.
const PATTERN: &str = "7473756e61676921";
/// Echo requests sent.
const PINGS: usize = 5;

/// `tsunagi capture NAME -w FILE ARGS...` through `side`'s socket, running.
fn capture(side: &Side, name: &str, file: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .arg("-S")
        .arg(side.socket())
        .args(["capture", name, "-w"])
        .arg(file)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for `child` to exit on its own within `limit`: (code, stderr).
fn finish(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// tshark's reading of `file`: source, destination, ICMP type, direction
/// (`sll.pkttype`: 0 to us, 4 sent by us) and the echo data, per packet.
fn tshark(file: &Path) -> Vec<Vec<String>> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args([
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "icmp.type",
            "-e",
            "sll.pkttype",
            "-e",
            "data.data",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// How many of tshark's `rows` are ICMP packets with the ping pattern and
/// these fields: source, destination, ICMP type, `sll.pkttype`.
fn echoes(rows: &[Vec<String>], fields: [&str; 4]) -> usize {
    rows.iter()
        .filter(|r| r.len() >= 5 && r[..4] == fields && r[4].contains(PATTERN))
        .count()
}

#[test]
#[ignore = "needs root, network namespaces, tun devices and tshark (scripts/test.sh runs it)"]
fn a_capture_of_a_running_link_reads_back_with_tshark() {
    require_netns(&["tshark"]);
    let pid = std::process::id();
    let mut guard = Guard::pair(&format!("tsunagi-capture-{pid}"), &format!("tsc{pid}"));
    let dir = guard.dir.clone();
    let net = format!("10.249.{}", pid % 250);
    let (a_addr, b_addr) = (format!("{net}.1"), format!("{net}.2"));
    let a_links = format!(
        r#"[link.p2]
mode = "direct"
tun = "tca{pid}"
local = "{a_addr}"
remote = "{b_addr}"
ipv6cp = false
allow_users = ["root"]
"#
    );
    let b_links = format!(
        r#"[link.p1]
mode = "dial"
device = "{BIN} -S {sock} direct p2"
tun = "tcb{pid}"
ipv6cp = false
"#,
        sock = guard.sides[0].socket().display(),
    );
    guard.sides[0].start(&a_links);
    guard.sides[1].start(&b_links);
    let (a, b) = (&guard.sides[0], &guard.sides[1]);
    wait_for(Duration::from_secs(15), "IPCP up on B", || {
        b.status()[0]["local"].as_str() == Some(b_addr.as_str())
    });

    // A capture of A's link while B pings A.
    let file = dir.join("p2.pcap");
    let running = capture(a, "p2", &file, &[]);
    wait_for(Duration::from_secs(5), "capture started", || {
        a.log().contains("p2: capture started")
    });
    let count = PINGS.to_string();
    let ping = b.exec(&[
        "ping", "-c", &count, "-i", "0.2", "-W", "2", "-p", PATTERN, &a_addr,
    ]);
    assert!(
        ping.status.success(),
        "ping B -> A: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    // Ctrl-C: the client shuts its side, the daemon stops and answers.
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_child(&running),
        rustix::process::Signal::INT,
    );
    let (code, err) = finish(running, Duration::from_secs(5));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("p2: capture stopped: "), "{err}");
    assert!(err.contains(" 0 dropped"), "{err}");
    let mode = std::fs::metadata(&file).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let rows = tshark(&file);
    let echo = |src: &str, dst: &str, kind: &str, direction: &str| {
        echoes(&rows, [src, dst, kind, direction])
    };
    assert_eq!(
        echo(&b_addr, &a_addr, "8", "0"),
        PINGS,
        "requests: {rows:?}"
    );
    assert_eq!(echo(&a_addr, &b_addr, "0", "4"), PINGS, "replies: {rows:?}");
    assert!(
        err.contains(&format!("{} packets written", rows.len())),
        "{err} / {rows:?}"
    );

    // B's link, stopped by the count: B's requests go out, A's replies in.
    let file = dir.join("p1.pcap");
    let counted = capture(b, "p1", &file, &["--count", "2"]);
    wait_for(Duration::from_secs(5), "capture started", || {
        b.log().contains("p1: capture started")
    });
    let _ = b.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", &a_addr]);
    let (code, err) = finish(counted, Duration::from_secs(5));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("p1: capture count reached: 2 packets written"),
        "{err}"
    );
    let rows = tshark(&file);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let head = |r: &[String]| r.iter().take(4).cloned().collect::<Vec<_>>().join(" ");
    assert_eq!(head(&rows[0]), format!("{b_addr} {a_addr} 8 4"), "{rows:?}");
    assert_eq!(head(&rows[1]), format!("{a_addr} {b_addr} 0 0"), "{rows:?}");

    // To stdout (`-w -`), as for `| tshark -r -`.
    let piped = Command::new(BIN)
        .arg("-S")
        .arg(a.socket())
        .args(["capture", "p2", "-w", "-", "--count", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(5), "capture to stdout started", || {
        a.log().matches("p2: capture started").count() == 2
    });
    let _ = b.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", &a_addr]);
    let out = piped.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("count reached: 2 packets written"), "{err}");
    let file = dir.join("stdout.pcap");
    std::fs::write(&file, &out.stdout).unwrap();
    let rows = tshark(&file);
    let head = |r: &[String]| r.iter().take(4).cloned().collect::<Vec<_>>().join(" ");
    assert_eq!(head(&rows[0]), format!("{b_addr} {a_addr} 8 0"), "{rows:?}");
    assert_eq!(head(&rows[1]), format!("{a_addr} {b_addr} 0 4"), "{rows:?}");

    // Refused: no such profile; a capture by another uid.
    let (code, err) = finish(
        capture(a, "nosuch", &dir.join("x.pcap"), &[]),
        Duration::from_secs(5),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no link or server named \"nosuch\""), "{err}");
    let nobody = Command::new(BIN)
        .arg("-S")
        .arg(a.socket())
        .args(["capture", "p2", "-w", "/dev/null"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&nobody.stderr);
    assert_eq!(nobody.status.code(), Some(1), "{err}");
    assert!(
        err.contains("uid 65534 may not capture \"p2\": root only"),
        "{err}"
    );
    // The refused captures started nothing: a new one may start.
    assert!(!a.log().contains("capture is already running"));

    assert_eq!(guard.sides[1].stop(), Some(0));
    assert_eq!(guard.sides[0].stop(), Some(0));
}

#[test]
#[ignore = "needs root, network namespaces, tun devices and tshark (scripts/test.sh runs it)"]
fn l2tp_client_and_server_captures_read_back_with_tshark() {
    require_netns(&["tshark"]);
    let pid = std::process::id();
    let mut guard = Guard::with_sides(
        &format!("tsunagi-capture-l2tp-{pid}"),
        &format!("tcl{}", pid % 100_000),
        &["lns", "lac"],
    );
    let dir = guard.dir.clone();
    veth(
        &guard.sides[0].ns,
        "eth0",
        "10.79.1.1/24",
        &guard.sides[1].ns,
        "eth0",
        "10.79.1.2/24",
    );
    let secrets = dir.join("chap-secrets");
    std::fs::write(&secrets, "u0 lns \"pw0\" *\n").unwrap();
    std::fs::set_permissions(
        &secrets,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    guard.sides[0].start(&format!(
        "secrets = \"{}\"\n\n[server.lns]\nprotocol = \"l2tp\"\nlisten = \"10.79.1.1\"\n\
         localip = \"192.168.70.1\"\nremoteip = \"192.168.70.10-99\"\nname = \"lns\"\n\
         secret = \"s3cret\"\nfirewall = false\n",
        secrets.display()
    ));
    guard.sides[1].start(
        "[link.office]\nmode = \"l2tp\"\nlns = \"10.79.1.1\"\nsecret = \"s3cret\"\n\
         user = \"u0\"\npassword = \"pw0\"\nipv6cp = false\npersist = false\n",
    );
    let (lns, lac) = (&guard.sides[0], &guard.sides[1]);
    wait_for(Duration::from_secs(30), "the LAC up", || {
        lac.link_address().is_some()
    });
    let addr = lac.link_address().unwrap();
    let server_file = dir.join("lns.pcap");
    let client_file = dir.join("office.pcap");
    let count = (2 * PINGS).to_string();
    let server = capture(lns, "lns", &server_file, &["--count", &count]);
    let client = capture(lac, "office", &client_file, &["--count", &count]);
    wait_for(Duration::from_secs(5), "both captures started", || {
        lns.log().contains("lns: capture started") && lac.log().contains("office: capture started")
    });
    let pings = PINGS.to_string();
    let ping = lac.exec(&[
        "ping",
        "-c",
        &pings,
        "-i",
        "0.2",
        "-W",
        "2",
        "-p",
        PATTERN,
        "192.168.70.1",
    ]);
    assert!(ping.status.success(), "{ping:?}");
    for (child, file, request_direction) in
        [(server, &server_file, "0"), (client, &client_file, "4")]
    {
        let (code, err) = finish(child, Duration::from_secs(5));
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains(&format!(
                "capture count reached: {count} packets written, 0 dropped"
            )),
            "{err}"
        );
        let rows = tshark(file);
        let reply_direction = if request_direction == "0" { "4" } else { "0" };
        let echo = |src: &str, dst: &str, kind: &str, direction: &str| {
            echoes(&rows, [src, dst, kind, direction])
        };
        assert_eq!(
            echo(&addr, "192.168.70.1", "8", request_direction),
            PINGS,
            "{}: {rows:?}",
            file.display()
        );
        assert_eq!(
            echo("192.168.70.1", &addr, "0", reply_direction),
            PINGS,
            "{}: {rows:?}",
            file.display()
        );
    }
    for side in guard.sides.iter_mut() {
        assert_eq!(side.stop(), Some(0));
    }
}
