//! The log lines operators read (pppd / user-ppp style) stay as they are.

mod util;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tsunagi_ppp::Event;
use util::{config, Pair};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn negotiation_is_logged_like_pppd() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .without_time()
        .with_target(false)
        .with_level(false)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut home = config("home", [10, 224, 1, 1], [10, 224, 1, 2]);
        home.lcp.ident = Some("HOME Network".into());
        let labs = config("labs", [10, 224, 1, 2], [10, 224, 1, 1]);
        let mut pair = Pair::new(home, labs, 1, 2);
        pair.start_both();
        let up = |s: &util::Side| s.has_event(|e| matches!(e, Event::Ipv4Up { .. }));
        assert!(pair.drive_until(Duration::from_secs(10), |p| up(&p.a) && up(&p.b)));
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    for expected in [
        "home: Phase: Establish",
        "home: sent [LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x",
        "labs: rcvd [LCP ConfReq id=0x1 <asyncmap 0x0> <magic 0x",
        "labs: sent [LCP ConfAck id=0x1 <asyncmap 0x0> <magic 0x",
        "home: rcvd [LCP ConfAck id=0x1",
        "home: Phase: Network",
        "labs: LCP: MAGICNUM ",
        "home: sent [LCP Ident id=0x",
        "labs: rcvd [LCP Ident id=0x",
        "labs: LCP: TEXT HOME Network",
        "home: sent [IPCP ConfReq id=0x1 <addr 10.224.1.1>]",
        "home: IPCP: myaddr 10.224.1.1 hisaddr = 10.224.1.2",
        "home: local  IP address 10.224.1.1",
        "home: remote IP address 10.224.1.2",
        "labs: IPCP: myaddr 10.224.1.2 hisaddr = 10.224.1.1",
    ] {
        assert!(
            has(expected),
            "no line starting with `{expected}` in:\n{text}"
        );
    }
    assert!(lines
        .iter()
        .any(|l| l.starts_with("labs: rcvd [LCP Ident") && l.ends_with("\"HOME Network\"]")));
    // The ConfReq line ends with the compression options.
    assert!(lines.iter().any(
        |l| l.starts_with("home: sent [LCP ConfReq id=0x1") && l.ends_with("<pcomp> <accomp>]")
    ));
}
