//! `tsunagi probe ike` (seed 002's ike-scan step), the binary run as an
//! operator runs it:
//!
//! - against a responder written here on loopback (no root): an accepted
//!   proposal, a refused one, a silent one sent `1 + --retries` times with
//!   one cookie, noise and an answer to another cookie ignored, the
//!   vendor IDs named or in hex, and the exit statuses;
//! - against strongSwan's charon (IKEv1, `proposals =
//!   aes128-sha256-modp2048`) in a network namespace of its own, probed
//!   from another: aes128-sha256-modp2048 accepted, 3des-sha1-modp1024
//!   refused with NO-PROPOSAL-CHOSEN, strongSwan's vendor ID reported, and
//!   charon's log showing the NAT-T vendor IDs we sent. Needs root,
//!   namespaces and strongSwan (Debian: strongswan-charon,
//!   strongswan-swanctl, libcharon-extra-plugins for kernel-libipsec):
//!   `#[ignore]`d, and it fails naming what is missing rather than pass
//!   without a responder.

mod support;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::netns::veth;
use support::{require_root, BIN};
use tsunagi_ipsec::isakmp::attr::Group;
use tsunagi_ipsec::isakmp::payload::{Doi, Notification, NotifyType, ProtocolId};
use tsunagi_ipsec::isakmp::vendor::KnownVendor;
use tsunagi_ipsec::isakmp::{self, ExchangeType, Header, Message, Parsed, Payload};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The group and Initiator Cookie of each message 1 received.
type Seen = Arc<Mutex<Vec<(Group, [u8; 8])>>>;

/// A responder on loopback that answers by the offered group: MODP-2048
/// accepted (after a datagram of noise and an answer to another cookie),
/// MODP-1024 refused, anything else ignored. It records the Initiator
/// Cookie of every message 1 it gets.
struct FakeResponder {
    port: u16,
    stop: Arc<AtomicBool>,
    seen: Seen,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeResponder {
    fn start() -> FakeResponder {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Seen = Arc::default();
        let (stop2, seen2) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(Parsed::Message(m1)) = isakmp::parse(&buf[..n]) else {
                    panic!("the probe sent something that is not a clear message");
                };
                let Some(Payload::Sa(sa)) = m1.payloads.first() else {
                    panic!("message 1 does not start with an SA: {m1}");
                };
                let transform = &sa.proposals[0].transforms[0];
                let group = transform.ike().group.unwrap();
                seen2.lock().unwrap().push((group, m1.header.initiator_spi));
                let header = |exchange, responder_spi| Header {
                    initiator_spi: m1.header.initiator_spi,
                    responder_spi,
                    exchange,
                    flags: isakmp::Flags::default(),
                    message_id: 0,
                };
                match group {
                    Group::Modp2048 => {
                        socket.send_to(b"noise", from).unwrap();
                        let mut other = header(ExchangeType::IdentityProtection, [5; 8]);
                        other.initiator_spi = [0xee; 8];
                        let stray = Message::new(other)
                            .with(Payload::Sa(sa.clone()))
                            .to_vec()
                            .unwrap();
                        socket.send_to(&stray, from).unwrap();
                        let m2 = Message::new(header(ExchangeType::IdentityProtection, [0xab; 8]))
                            .with(Payload::Sa(sa.clone()))
                            .with(Payload::VendorId(KnownVendor::StrongSwan.id().to_vec()))
                            .with(Payload::VendorId(b"fake".to_vec()))
                            .with(Payload::VendorId(KnownVendor::Dpd.id().to_vec()))
                            .to_vec()
                            .unwrap();
                        socket.send_to(&m2, from).unwrap();
                    }
                    Group::Modp1024 => {
                        let n = Message::new(header(ExchangeType::Informational, [0; 8]))
                            .with(Payload::Notification(Notification {
                                doi: Doi::Ipsec,
                                protocol: ProtocolId::Isakmp,
                                notify_type: NotifyType::NoProposalChosen,
                                spi: Vec::new(),
                                data: Vec::new(),
                            }))
                            .to_vec()
                            .unwrap();
                        socket.send_to(&n, from).unwrap();
                    }
                    _ => {}
                }
            }
        });
        FakeResponder {
            port,
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn probe(&self, proposals: &str) -> Output {
        Command::new(BIN)
            .args(["probe", "ike", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args([
                "--proposals",
                proposals,
                "--timeout",
                "0.5",
                "--retries",
                "2",
            ])
            .output()
            .unwrap()
    }
}

impl Drop for FakeResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let joined = t.join();
            if !std::thread::panicking() {
                joined.unwrap();
            }
        }
    }
}

#[test]
fn probe_reports_accepted_refused_and_silent_proposals() {
    let responder = FakeResponder::start();
    let out = responder.probe("aes128-sha256-modp2048,3des-sha1-modp1024,aes256-sha1-ecp256");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "aes128-sha256-modp2048: accepted (responder cookie abababababababab, lifetime 28800s)",
            "3des-sha1-modp1024: refused (NO-PROPOSAL-CHOSEN)",
            "aes256-sha1-ecp256: no answer",
            "vendor IDs: strongSwan, unknown 66616b65, DPD",
        ],
        "{}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ignoring a datagram of 5 octets"),
        "{}",
        describe(&out)
    );
    let seen = responder.seen.lock().unwrap().clone();
    let silent: Vec<[u8; 8]> = seen
        .iter()
        .filter(|(g, _)| *g == Group::Ecp256)
        .map(|&(_, c)| c)
        .collect();
    assert_eq!(silent.len(), 3, "1 + --retries sends: {seen:?}");
    assert!(silent.iter().all(|c| *c == silent[0]), "{seen:?}");
    // One cookie per proposal (a slow answer may have cost a resend),
    // and a fresh one for each.
    let mut cookies: Vec<(Group, [u8; 8])> = seen.clone();
    cookies.dedup();
    assert_eq!(cookies.len(), 3, "a fresh cookie per proposal: {seen:?}");
    assert!(
        cookies[0].1 != cookies[1].1 && cookies[1].1 != cookies[2].1,
        "a fresh cookie per proposal: {seen:?}"
    );

    // Nothing accepted: 1. A bad list: 2, before anything is sent.
    let out = responder.probe("3des-sha1-modp1024");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        "3des-sha1-modp1024: refused (NO-PROPOSAL-CHOSEN)\nvendor IDs: none\n"
    );
    let before = responder.seen.lock().unwrap().len();
    let out = responder.probe("3des-sha1");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no DH group"));
    assert_eq!(responder.seen.lock().unwrap().len(), before);
}

#[test]
fn probe_of_a_closed_port_is_a_network_error() {
    // A port just freed: nothing listens there, and loopback answers
    // with ICMP port unreachable.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(BIN)
        .args(["probe", "ike", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .args(["--proposals", "aes128-sha256-modp2048", "--timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("port unreachable"),
        "{}",
        describe(&out)
    );
}

const CHARON: &str = "/usr/lib/ipsec/charon";

/// Two namespaces (the responder's, the prober's), a charon and its
/// directory; all removed on drop, whatever happened, charon's log shown
/// when the test failed.
struct Lab {
    responder_ns: String,
    prober_ns: String,
    dir: PathBuf,
    charon: Option<Child>,
}

impl Lab {
    fn new() -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            responder_ns: format!("tsprb{pid}r"),
            prober_ns: format!("tsprb{pid}p"),
            dir: std::env::temp_dir().join(format!("tsunagi-probe-ike-{pid}")),
            charon: None,
        };
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(lab.dir.join("run")).unwrap();
        for ns in [&lab.responder_ns, &lab.prober_ns] {
            let st = Command::new("ip")
                .args(["netns", "add", ns])
                .status()
                .unwrap();
            assert!(st.success(), "ip netns add {ns}");
        }
        lab
    }

    fn vici(&self) -> String {
        format!("unix://{}", self.dir.join("charon.vici").display())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }

    /// charon in the responder's namespace, as ../shared/lab/peers/lib.sh
    /// runs it: its own strongswan.conf, and a directory of ours mounted
    /// over /run (charon writes /run/charon.pid) in the private mount
    /// namespace `ip netns exec` gives it; kernel-libipsec as the IPsec
    /// backend, vici on a socket in our directory.
    fn start_charon(&mut self) {
        let dir = &self.dir;
        std::fs::write(
            dir.join("strongswan.conf"),
            format!(
                "charon {{
	load_modular = no
	load = random nonce aes sha1 sha2 md5 hmac gmp kernel-libipsec kernel-netlink socket-default vici
	# strongSwan names itself in a Vendor ID only when told to.
	send_vendor_id = yes
	filelog {{
		log {{
			path = {log}
			default = 1
			ike = 2
			net = 2
			flush_line = yes
		}}
	}}
	plugins {{
		vici {{
			socket = unix://{vici}
		}}
	}}
}}
",
                log = dir.join("charon.log").display(),
                vici = dir.join("charon.vici").display(),
            ),
        )
        .unwrap();
        let script = format!(
            "mount --bind '{run}' /run && STRONGSWAN_CONF='{conf}' exec {CHARON}",
            run = dir.join("run").display(),
            conf = dir.join("strongswan.conf").display(),
        );
        let out = std::fs::File::create(dir.join("charon.stdout")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.responder_ns, "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        self.charon = Some(child);
        let vici = dir.join("charon.vici");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !vici.exists() {
            if let Some(status) = self.charon.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "charon exited ({status}) before its vici socket appeared:\n{}",
                    std::fs::read_to_string(dir.join("charon.stdout")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "charon's vici socket did not appear in 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `swanctl --load-all` with `swanctl.conf`, against our charon.
    fn load(&self, swanctl_conf: &str) {
        let file = self.dir.join("swanctl.conf");
        std::fs::write(&file, swanctl_conf).unwrap();
        let out = Command::new("swanctl")
            .args(["--load-all", "--uri", &self.vici(), "--file"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success() && stdout(&out).contains("successfully loaded 1 connections"),
            "swanctl --load-all: {}",
            describe(&out)
        );
    }

    /// `tsunagi probe ike HOST` from the prober's namespace, with
    /// `--proposals` unless `proposals` is empty (the default list).
    fn probe(&self, host: &str, proposals: &str) -> Output {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.prober_ns, BIN, "probe", "ike", host])
            .args(["--timeout", "1", "--retries", "2"]);
        if !proposals.is_empty() {
            c.args(["--proposals", proposals]);
        }
        c.output().unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut child) = self.charon.take() {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in [&self.responder_ns, &self.prober_ns] {
            // Whatever is left in a namespace of ours is ours.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::thread::panicking() || std::env::var_os("TSUNAGI_TEST_DUMP").is_some() {
            eprintln!("---- charon.log ----\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fails, naming the package, where strongSwan is not installed.
fn require_strongswan() {
    require_root();
    let missing: Vec<&str> = [
        (CHARON, "strongswan-charon"),
        ("/usr/sbin/swanctl", "strongswan-swanctl"),
        (
            "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so",
            "libcharon-extra-plugins",
        ),
    ]
    .iter()
    .filter(|(path, _)| !Path::new(path).exists())
    .map(|&(_, package)| package)
    .collect();
    assert!(
        missing.is_empty(),
        "needs strongSwan: apt-get install {}",
        missing.join(" ")
    );
    assert!(
        Path::new("/dev/net/tun").exists(),
        "needs /dev/net/tun (kernel-libipsec): modprobe tun"
    );
}

#[test]
#[ignore = "needs root, network namespaces and strongSwan"]
fn strongswan_accepts_its_proposal_only_and_names_itself() {
    require_strongswan();
    let mut lab = Lab::new();
    veth(
        &lab.prober_ns,
        "p0",
        "10.204.1.1/24",
        &lab.responder_ns,
        "r0",
        "10.204.1.2/24",
    );
    lab.start_charon();
    lab.load(
        "connections {
	probe {
		version = 1
		local_addrs = 10.204.1.2
		remote_addrs = %any
		proposals = aes128-sha256-modp2048
		local {
			auth = psk
			id = responder
		}
		remote {
			auth = psk
		}
		children {
			probe {
				esp_proposals = aes128-sha1
			}
		}
	}
}
secrets {
	ike-probe {
		secret = \"probe-test-psk-0123456789\"
	}
}
",
    );
    let out = lab.probe("10.204.1.2", "aes128-sha256-modp2048,3des-sha1-modp1024");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", describe(&out));
    assert!(
        lines[0].starts_with("aes128-sha256-modp2048: accepted (responder cookie "),
        "{}",
        describe(&out)
    );
    assert_eq!(lines[1], "3des-sha1-modp1024: refused (NO-PROPOSAL-CHOSEN)");
    let vids = lines[2]
        .strip_prefix("vendor IDs: ")
        .unwrap_or_else(|| panic!("{}", describe(&out)));
    let vids: Vec<&str> = vids.split(", ").collect();
    for expected in ["strongSwan", "NAT-T (RFC 3947)", "DPD", "XAuth"] {
        assert!(vids.contains(&expected), "{expected}: {}", describe(&out));
    }
    // What charon made of the probes: our NAT-T vendor IDs, the proposal
    // it chose, the one it refused.
    let log = lab.log();
    for line in [
        "received NAT-T (RFC 3947) vendor ID",
        "received draft-ietf-ipsec-nat-t-ike-03 vendor ID",
        "selected proposal: IKE:AES_CBC_128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048",
        "no proposal found",
    ] {
        assert!(log.contains(line), "charon did not log {line:?}");
    }

    // The default list: 27 probes, each answered, its one proposal the
    // only one accepted.
    let out = lab.probe("10.204.1.2", "");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 28, "{}", describe(&out));
    for line in &lines[..27] {
        let (proposal, outcome) = line.split_once(": ").unwrap();
        if proposal == "aes128-sha256-modp2048" {
            assert!(outcome.starts_with("accepted"), "{line}");
        } else {
            assert_eq!(outcome, "refused (NO-PROPOSAL-CHOSEN)", "{line}");
        }
    }
    assert!(lines[13].starts_with("aes128-sha256-modp2048: "), "{text}");

    // Only what it refuses: exit status 1.
    let out = lab.probe("10.204.1.2", "3des-sha1-modp1024");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(stdout(&out).starts_with("3des-sha1-modp1024: refused (NO-PROPOSAL-CHOSEN)\n"));
}
