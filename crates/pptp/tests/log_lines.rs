//! The log lines an operator reads: every control message sent and
//! received at debug level, in pptpd's detail (message name, call ids,
//! result codes), and the connection's milestones at info level.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tsunagi_pptp::control::StopReason;
use tsunagi_pptp::{ClearReason, Connection, ConnectionConfig, ConnectionEvent, Role};

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

fn exchange(a: &mut Connection, b: &mut Connection, now: Instant) {
    for _ in 0..10 {
        let mut out = Vec::new();
        a.poll_transmit(&mut out);
        b.handle_bytes(now, &out);
        let mut back = Vec::new();
        b.poll_transmit(&mut back);
        a.handle_bytes(now, &back);
        if out.is_empty() && back.is_empty() {
            return;
        }
    }
}

#[test]
fn a_session_in_the_log() {
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
        let now = Instant::now();
        let mut pac = Connection::new(
            ConnectionConfig {
                host_name: "vpn".into(),
                ..ConnectionConfig::new(Role::Pac)
            },
            now,
        );
        let mut pns = Connection::new(
            ConnectionConfig {
                host_name: "home".into(),
                ..ConnectionConfig::new(Role::Pns)
            },
            now,
        );
        exchange(&mut pns, &mut pac, now);
        pns.place_call(now, 0x1234, 1).unwrap();
        exchange(&mut pns, &mut pac, now);
        while let Some(e) = pac.poll_event() {
            if let ConnectionEvent::CallRequested { peer_call_id, .. } = e {
                pac.accept_call(now, peer_call_id, 0x5678);
            }
        }
        exchange(&mut pns, &mut pac, now);
        pac.clear_call(now, 0x5678, ClearReason::admin_shutdown());
        exchange(&mut pns, &mut pac, now);
        pns.stop(now, StopReason::StopLocalShutdown);
        exchange(&mut pns, &mut pac, now);
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for expected in [
        "pptp PNS: sent [Start-Control-Connection-Request version=1.0 framing=0x3 bearer=0x3 \
         max_channels=0 firmware=0x0001 host=\"home\" vendor=\"tsunagi\"]",
        "pptp PAC: rcvd [Start-Control-Connection-Request version=1.0",
        "pptp PAC: sent [Start-Control-Connection-Reply version=1.0 result=Successful channel \
         establishment (1) error=None (0)",
        "pptp PNS: control connection established with \"vpn\" (vendor \"tsunagi\", version 1.0)",
        "pptp PNS: sent [Outgoing-Call-Request call_id=4660 serial=1",
        "pptp PAC: sent [Outgoing-Call-Reply call_id=22136 peer_call_id=4660 result=Connected (1)",
        "pptp PAC: call 22136 connected (peer call id 4660)",
        "pptp PAC: sent [Call-Disconnect-Notify call_id=22136 result=Admin Shutdown (3)",
        "pptp PNS: call 4660 ended: the peer disconnected the call: result Admin Shutdown (3)",
        "pptp PNS: sent [Stop-Control-Connection-Request reason=Stop-Local-Shutdown (3)]",
        "pptp PAC: control connection closed: the peer stopped the control connection \
         (Stop-Control-Connection-Request, reason Stop-Local-Shutdown (3))",
        "pptp PNS: control connection closed: we stopped the control connection (reason \
         Stop-Local-Shutdown (3)); the peer replied",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(expected)),
            "no line starting with `{expected}` in:\n{text}"
        );
    }
}
