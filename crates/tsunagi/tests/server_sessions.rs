//! A server profile with many sessions on one transport (the session core
//! PPTP and L2TP build on), driven from this process:
//! - 50 PPP clients (the engine, as a peer would run it) open sessions
//!   through an in-memory port; each authenticates with CHAP and gets its
//!   own address from the pool;
//! - `status` through the real control socket lists all 50, with user,
//!   inner address, phase and counters;
//! - packets from the shared device reach exactly the session whose inner
//!   address they are for; a session's packets must come from its own
//!   address;
//! - the pool refuses the 51st while it holds 50, saying so;
//! - one session torn down leaves the others untouched (their counters go
//!   on, they still carry traffic), and its address goes to the next.
//!
//! The port and the device are this test's (in memory); the server, its
//! engines, pool, registry, netconf and control socket are the daemon's.

mod server_support;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use server_support::{
    ipv4, memory_device, port_and_clients, start_server, status, vpn_settings, Clients, Running,
    ToPort, LOCAL,
};
use tsunagi::control::{self, Request, Response, SessionStatus};
use tsunagi::daemon::{serve_control, ControlContext};
use tsunagi::session::EndReason;
use tsunagi::transport::datagram::ServerCounters;
use tsunagi_ppp::link::{DownReason, IpVersion};

const POOL_SIZE: u32 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_on_one_transport() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let users: Vec<String> = (1..=60).map(|i| format!("user{i}")).collect();
    let users: Vec<&str> = users.iter().map(String::as_str).collect();
    let settings = vpn_settings(&users, "10.77.0.1", "10.77.0.10-59");
    assert_eq!(settings.pool.size(), POOL_SIZE as usize);
    let (port, mut clients, mut closed_rx) = port_and_clients();
    let (device, mut kernel, inject) = memory_device();
    let Running {
        registry,
        task: server,
        shutdown: shutdown_tx,
    } = start_server(settings, port, device);

    let dir = std::env::temp_dir().join(format!("tsunagi-server-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("control.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let control_task = tokio::spawn(serve_control(
        listener,
        ControlContext::new(registry.clone(), Arc::new(Default::default())),
    ));

    for key in 1..=POOL_SIZE {
        clients.start(key, &format!("user{key}"));
    }
    let all_up = |c: &Clients| (1..=POOL_SIZE).all(|k| c.address(k).is_some());
    assert!(
        clients.pump(Duration::from_secs(30), all_up).await,
        "not all 50 up"
    );

    // Each has its own address from the pool.
    let mut addresses: Vec<Ipv4Addr> = (1..=POOL_SIZE)
        .map(|k| clients.address(k).unwrap())
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), POOL_SIZE as usize, "addresses shared");
    let pool_range =
        |a: &Ipv4Addr| (10..=59).contains(&a.octets()[3]) && a.octets()[..3] == [10, 77, 0];
    assert!(addresses.iter().all(pool_range), "{addresses:?}");

    // status lists all 50, as the engines have them now.
    let sessions = status(&socket).await;
    assert_eq!(sessions.len(), POOL_SIZE as usize);
    for s in &sessions {
        assert_eq!(s.profile, "vpn");
        assert_eq!(s.phase, "network", "{s:?}");
        assert_eq!(s.local.as_deref(), Some("10.77.0.1"));
        let user = s.user.as_deref().expect("a user");
        let key: u32 = user.trim_start_matches("user").parse().unwrap();
        assert_eq!(
            s.peer_addr.as_deref(),
            Some(clients.address(key).unwrap().to_string().as_str()),
            "{s:?}"
        );
        assert_eq!(s.outer_peer, format!("192.0.2.{key}:1723"));
        assert!(s.auth.as_deref().unwrap().contains("by CHAP"), "{s:?}");
    }

    // The device's packets go to the session whose address they are for,
    // and only there.
    let target = 23;
    let target_addr = clients.address(target).unwrap();
    inject.send(ipv4(LOCAL, target_addr, 0xab)).unwrap();
    assert!(
        clients
            .pump(Duration::from_secs(5), |c| c
                .received
                .get(&target)
                .is_some_and(|r| !r.is_empty()))
            .await
    );
    assert_eq!(
        clients.received[&target],
        vec![ipv4(LOCAL, target_addr, 0xab)]
    );
    let others: usize = clients
        .received
        .iter()
        .filter(|(k, _)| **k != target)
        .map(|(_, r)| r.len())
        .sum();
    assert_eq!(others, 0, "a packet reached another session");

    // A session's packets reach the device from its own address only.
    let seven = clients.address(7).unwrap();
    let link = clients.links.get_mut(&7).unwrap();
    let mut frame = Vec::new();
    assert!(link.encapsulate(IpVersion::V4, &ipv4(seven, LOCAL, 7), &mut frame));
    clients.to_port.send(ToPort::Frame(7, frame)).unwrap();
    let spoof = ipv4(Ipv4Addr::new(10, 77, 0, 99), LOCAL, 8);
    let mut frame = Vec::new();
    assert!(link.encapsulate(IpVersion::V4, &spoof, &mut frame));
    clients.to_port.send(ToPort::Frame(7, frame)).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), kernel.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, ipv4(seven, LOCAL, 7));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), kernel.recv())
            .await
            .is_err(),
        "the spoofed packet reached the device"
    );

    // The 51st: authenticated, then refused an address.
    clients.start(51, "user51");
    assert!(
        clients
            .pump(Duration::from_secs(15), |c| c.down(51).is_some())
            .await,
        "the 51st was not refused"
    );
    assert_eq!(
        clients.down(51),
        Some(DownReason::PeerTerminated(
            "pool \"vpn\" exhausted: all 50 addresses in use".into()
        ))
    );
    let (key, reason) = tokio::time::timeout(Duration::from_secs(5), closed_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(key, 51);
    assert_eq!(
        reason,
        EndReason::NoAddress("pool \"vpn\" exhausted: all 50 addresses in use".into())
    );
    assert_eq!(status(&socket).await.len(), POOL_SIZE as usize);

    // One torn down (its peer terminates): the others are untouched.
    let before: HashMap<u64, SessionStatus> = status(&socket)
        .await
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let gone = 3;
    let gone_addr = clients.address(gone).unwrap();
    clients
        .links
        .get_mut(&gone)
        .unwrap()
        .close(Instant::now(), "User request");
    clients.flush(gone);
    assert!(
        clients
            .pump(Duration::from_secs(10), |c| c.down(gone).is_some())
            .await
    );
    let (key, reason) = tokio::time::timeout(Duration::from_secs(5), closed_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (key, reason),
        (gone, EndReason::PeerTerminated("User request".into()))
    );
    let after = status(&socket).await;
    assert_eq!(after.len(), POOL_SIZE as usize - 1);
    assert!(!after
        .iter()
        .any(|s| s.peer_addr.as_deref() == Some(gone_addr.to_string().as_str())));
    for s in &after {
        let was = &before[&s.id];
        assert_eq!(s.peer_addr, was.peer_addr, "an address moved");
        assert_eq!(s.phase, "network");
        assert!(s.counters.rx_packets >= was.counters.rx_packets);
    }
    // They still carry traffic.
    let far = 44;
    let far_addr = clients.address(far).unwrap();
    inject.send(ipv4(LOCAL, far_addr, 0x44)).unwrap();
    assert!(
        clients
            .pump(Duration::from_secs(5), |c| c
                .received
                .get(&far)
                .is_some_and(|r| !r.is_empty()))
            .await
    );
    // The freed address goes to the next session.
    clients.start(52, "user52");
    assert!(
        clients
            .pump(Duration::from_secs(15), |c| c.address(52).is_some())
            .await
    );
    assert_eq!(clients.address(52), Some(gone_addr));
    assert_eq!(status(&socket).await.len(), POOL_SIZE as usize);

    // `kick` through the control socket ends one session (root only).
    let id = status(&socket)
        .await
        .iter()
        .find(|s| s.user.as_deref() == Some("user52"))
        .map(|s| s.id)
        .unwrap();
    let kick_socket = socket.clone();
    let answer = tokio::task::spawn_blocking(move || {
        control::call(&kick_socket, &Request::Kick { session: id }, &[])
    })
    .await
    .unwrap()
    .unwrap();
    if rustix::process::getuid().is_root() {
        assert!(matches!(answer, Response::Done { .. }), "{answer:?}");
        assert!(
            clients
                .pump(Duration::from_secs(10), |c| c.down(52).is_some())
                .await
        );
        assert_eq!(
            clients.down(52),
            Some(DownReason::PeerTerminated("Administrative hangup".into()))
        );
        let (key, reason) = tokio::time::timeout(Duration::from_secs(5), closed_rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((key, reason), (52, EndReason::Hangup));
        assert_eq!(status(&socket).await.len(), POOL_SIZE as usize - 1);
    } else {
        match answer {
            Response::Refused { message } => assert!(message.contains("root only"), "{message}"),
            other => panic!(
                "kick by uid {} not refused: {other:?}",
                rustix::process::getuid().as_raw()
            ),
        }
    }

    // Wrong passwords from one address (each call from another port):
    // after the free failures its next call is refused at once.
    let mallory = Ipv4Addr::new(198, 51, 100, 66);
    let mut held = false;
    for key in 300..310 {
        clients.start_from(key, "mallory", Some(mallory));
        // The server clears the call: after the failed authentication, or
        // at once when the address is held off.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (closed_key, reason) = loop {
            clients.pump(Duration::from_millis(50), |_| false).await;
            if let Ok(closed) = closed_rx.try_recv() {
                break closed;
            }
            assert!(Instant::now() < deadline, "call {key} never cleared");
        };
        assert_eq!(closed_key, key);
        if let EndReason::HeldOff { key: who, .. } = &reason {
            assert_eq!(who, "198.51.100.66");
            held = true;
            break;
        }
        assert!(matches!(reason, EndReason::AuthFailed { .. }), "{reason:?}");
    }
    assert!(held, "wrong passwords from one address were never held off");

    // The daemon stops: every session is closed, the server returns.
    shutdown_tx.send(true).unwrap();
    let counters: ServerCounters = loop {
        clients.pump(Duration::from_millis(100), |_| false).await;
        if server.is_finished() {
            break server.await.unwrap();
        }
    };
    assert_eq!(counters.spoofed, 1);
    assert_eq!(counters.refused, 1);
    assert!(counters.held_off >= 1);
    assert_eq!(registry.session_count(), 0);
    control_task.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
