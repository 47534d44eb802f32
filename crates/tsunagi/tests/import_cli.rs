//! `tsunagi import`'s exit status and reports (no root): 0 when every line
//! converts, 3 when lines are left out (each on stderr as FILE:LINE), 1
//! when a file cannot be told apart or read, 2 on a usage error.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tsunagi");
const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/import/testdata");

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN).arg("import").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn all_converted_is_0_and_references_the_files() {
    let ipf = format!("{TESTDATA}/seed000/ipf.rules");
    let (code, out, err) = run(&[
        "--interface",
        "em0=eth0",
        "--interface",
        "em1=eth1",
        "--interface",
        "tun0=ts-home",
        &ipf,
        &format!("{TESTDATA}/seed000/ipnat.rules"),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(out.contains(&format!("ipf = \"{ipf}\"")), "{out}");
    assert!(
        out.contains(r#"interfaces = { "em0" = "eth0", "em1" = "eth1", "tun0" = "ts-home" }"#),
        "{out}"
    );
}

#[test]
fn left_out_is_3_with_file_and_line() {
    let f = format!("{TESTDATA}/seed001/ipf.rules");
    let (code, out, err) = run(&[&f]);
    assert_eq!(code, Some(3));
    assert!(!out.contains("[policy]"), "{out}");
    assert!(
        err.starts_with(&format!(
            "{f}:3: left out (refused by the policy parser: column 28"
        )),
        "{err}"
    );
}

#[test]
fn forced_format_and_errors() {
    let f = format!("{TESTDATA}/seed001/vpn-saturn");
    let (code, out, err) = run(&[
        "--from",
        "pppd",
        "--replace",
        "<スクリプト>=/etc/ppp/vpn/connect",
        &f,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("device = \"!/etc/ppp/vpn/connect\""), "{out}");
    let (code, _, err) = run(&["--replace", "novalue", &f]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = run(&[&format!("{TESTDATA}/seed000/missing.conf")]);
    assert_eq!(code, Some(1), "{err}");
}
