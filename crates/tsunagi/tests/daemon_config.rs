//! `tsunagi check` on good and bad configs: the messages name the file,
//! the line and column and the problem; the exit status is 1 on error.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tsunagi");

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("tsunagi-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run `tsunagi -c FILE check` on `text`: (exit code, stdout, stderr, file path).
fn check(dir: &TempDir, name: &str, text: &str) -> (i32, String, String, String) {
    let path = dir.0.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&path)
        .arg("check")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

const EXAMPLE: &str = r#"[daemon]
control_socket = "/run/tsunagi/tsunagi.sock"
log_file = "/var/log/tsunagi.log"

[link.labs]
mode = "dial"
device = "!ssh -i /k pppossh@203.0.113.2 tsunagi direct home"
tun = "tun0"
local = "10.224.1.1"
remote = "10.224.1.2"
routes = ["192.168.253.0/24", "172.16.1.0/24"]
ident = "HOME Network"
escape = [0xff]
accm = 0
mru = 1500
mtu = 1500
pfc = true
acfc = true
ipv6cp = false
dns = ["10.224.1.1"]
usepeerdns = false
echo_interval = 10
echo_failure = 3
restart = 3
persist = true
redial_min = 1
redial_max = 30
ip_up = "/etc/tsunagi/ip-up"
ip_down = "/etc/tsunagi/ip-down"
allow_users = ["pppossh"]

[link.home]
mode = "direct"
allow_users = ["pppossh"]
"#;

#[test]
fn example_config_is_ok() {
    let dir = TempDir::new("cfg-ok");
    let (code, out, err, _) = check(&dir, "ok.toml", EXAMPLE);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "config OK: 2 links\n");
}

#[test]
fn errors_name_file_line_column_and_problem() {
    let dir = TempDir::new("cfg-bad");
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown.toml",
            "[link.labs]\nmode = \"dial\"\ndevice = \"cat\"\nmur = 1400\n",
            ":4:1: unknown field `mur`",
        ),
        (
            "addr.toml",
            "[link.labs]\nmode = \"dial\"\ndevice = \"cat\"\nremote = \"10.224.1.256\"\n",
            ":4:10: invalid IPv4 address syntax",
        ),
        (
            "cidr.toml",
            "[link.labs]\nmode = \"dial\"\ndevice = \"cat\"\nroutes = [\"192.168.253.0/24\", \"172.16.1.0/40\"]\n",
            ":4:31: link.labs: bad CIDR",
        ),
        (
            "device.toml",
            "[daemon]\n\n[link.labs]\nmode = \"dial\"\nlocal = \"10.224.1.1\"\n",
            ":4:8: link.labs: mode = \"dial\" needs `device`",
        ),
    ];
    for (name, text, want) in cases {
        let (code, out, err, path) = check(&dir, name, text);
        assert_eq!(
            code, 1,
            "{name}: exit status; stdout {out:?} stderr {err:?}"
        );
        assert!(out.is_empty(), "{name}: stdout {out:?}");
        let want = format!("{path}{want}");
        assert!(
            err.starts_with(&want),
            "{name}: expected {want:?}, got {err:?}"
        );
    }
}

#[test]
fn missing_file_is_an_error() {
    let out = Command::new(BIN)
        .args(["-c", "/nonexistent/tsunagi.toml", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("/nonexistent/tsunagi.toml: cannot read: "),
        "{err}"
    );
}

/// `[ipsec.NAME]`: its secrets file is checked as `run` would (refused
/// when others may read it, a missing PSK named), weak algorithms warned
/// about, errors named by line and column.
#[test]
fn ipsec_conns_are_checked_with_their_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("cfg-ipsec");
    let secrets = dir.0.join("ipsec.secrets");
    std::fs::write(
        &secrets,
        "10.201.1.1 10.201.1.2 : PSK \"not in any output\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let conf = format!(
        "[ipsec.site]\nleft = \"10.201.1.1\"\nright = \"10.201.1.2\"\nike = \"3des-sha1-modp1024!\"\nesp = \"3des-sha1!\"\nleftsubnet = \"10.201.10.0/24\"\nrightsubnet = \"10.201.20.0/24\"\nsecrets = \"{}\"\n",
        secrets.display()
    );
    let (code, out, err, _) = check(&dir, "ipsec.toml", &conf);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(out, "config OK: 0 links\n");
    assert!(
        err.contains(
            "ipsec site: weak setting: ike = \"3des-sha1-modp1024!\" names weak algorithms"
        ),
        "{err}"
    );
    // Readable by others: refused, naming the file.
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err, _) = check(&dir, "ipsec.toml", &conf);
    assert_eq!(code, 1);
    assert!(
        err.contains("ipsec site") && err.contains("ipsec.secrets"),
        "{err}"
    );
    // No line for this pair.
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let other = conf.replace("10.201.1.2", "10.201.1.3");
    let (code, _, err, _) = check(&dir, "ipsec2.toml", &other);
    assert_eq!(code, 1);
    assert!(
        err.contains("no PSK line for 10.201.1.1 ... 10.201.1.3"),
        "{err}"
    );
    assert!(!err.contains("not in any output"));
    // A bad value: file, line, column, key.
    let (code, _, err, path) = check(
        &dir,
        "ipsec3.toml",
        &conf.replace("\"10.201.1.2\"", "\"gw\""),
    );
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!(
            "{path}:3:9: ipsec.site: right \"gw\" is not an IP address"
        )),
        "{err}"
    );
}

/// Seed 001's classic mistake (the peer's global address as the PPP
/// remote address) and a pool inside a routed LAN load, and `check` says
/// what each breaks.
#[test]
fn check_names_the_classic_mistakes() {
    let dir = TempDir::new("mistakes");
    let (code, out, err, _) = check(
        &dir,
        "mistake.toml",
        "[link.vpn]\nmode = \"dial\"\ndevice = \"!ssh ppp@203.0.113.5\"\nouter_peer = \"203.0.113.5\"\nremote = \"203.0.113.5\"\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(
            "mistake: link.vpn: remote = \"203.0.113.5\" is the address the link itself goes to"
        ),
        "{err}"
    );
    use std::os::unix::fs::PermissionsExt;
    // check reads the server's secrets as the daemon would: a real file.
    let secrets = dir.0.join("chap-secrets");
    std::fs::write(&secrets, "alice * pw *\n").unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, err, _) = check(
        &dir,
        "pool.toml",
        &format!("[daemon]\nsecrets = \"{}\"\n[link.labs]\nmode = \"dial\"\ndevice = \"cat\"\nroutes = [\"192.168.253.0/24\"]\n[server.pptp]\nprotocol = \"pptp\"\nlocalip = \"192.168.253.1\"\nremoteip = \"192.168.253.200-210\"\n", secrets.display()),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains("mistake: server.pptp: the pool overlaps 192.168.253.0/24 (link.labs routes), from 192.168.253.200"),
        "{err}"
    );
    assert!(out.contains("config OK"), "{out}");
}

/// A server's secrets are checked as a link's are: missing, or open to
/// others, is an error naming the server and the file.
#[test]
fn check_refuses_a_servers_unusable_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("server-secrets");
    let secrets = dir.0.join("chap-secrets");
    let server = |path: &std::path::Path| {
        format!("[daemon]\nsecrets = \"{}\"\n[server.vpn]\nprotocol = \"pptp\"\nlocalip = \"10.0.0.1\"\nremoteip = \"10.0.0.100-110\"\n", path.display())
    };
    let (code, _, err, _) = check(&dir, "missing.toml", &server(&secrets));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("server vpn:") && err.contains("cannot read"),
        "{err}"
    );
    std::fs::write(&secrets, "alice * pw *\n").unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, err, _) = check(&dir, "open.toml", &server(&secrets));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("server vpn:") && err.contains("mode 0644"),
        "{err}"
    );
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, out, err, _) = check(&dir, "ok.toml", &server(&secrets));
    assert_eq!(code, 0, "{out}{err}");
}
