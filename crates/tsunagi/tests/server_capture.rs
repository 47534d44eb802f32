//! A capture of a server profile (the datagram transport PPTP and L2TP
//! servers run on): the daemon's capture ([`tsunagi::capture::serve`], as
//! the control socket runs it for root) of the profile's tap, while a
//! client's packet goes to the tun (in) and one from the tun goes to the
//! client (out); it stops by itself at the count and says so. The pcap
//! records are read back byte by byte (pcap-savefile(5)).
//!
//! The port and the device are in memory, as in server_sessions.rs: no
//! root needed.

mod server_support;
mod support;

use std::os::fd::OwnedFd;
use std::time::Duration;

use server_support::{
    memory_device, port_and_clients, start_server, vpn_settings, Running, ToPort,
};
use support::icmp::echo_request;
use tokio::io::AsyncBufReadExt;
use tsunagi::control::Response;
use tsunagi_ppp::link::IpVersion;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_profile_is_captured_both_ways() {
    let settings = vpn_settings(&["alice"], "10.77.0.1", "10.77.0.10-13");
    let name = settings.name.clone();
    let (port, mut clients, _closed) = port_and_clients();
    let (device, mut kernel, inject) = memory_device();
    let Running {
        registry,
        task: server,
        shutdown,
    } = start_server(settings, port, device);
    clients.start(1, "alice");
    assert!(
        clients
            .pump(Duration::from_secs(20), |c| c.address(1).is_some())
            .await,
        "session not up"
    );
    let alice = clients.address(1).unwrap();
    let local = server_support::LOCAL;

    let dir = std::env::temp_dir().join(format!("tsunagi-srvcap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vpn.pcap");
    let file = OwnedFd::from(std::fs::File::create(&path).unwrap());
    let tap = registry.tap(&name).expect("the profile's tap");
    let (client_end, daemon_end) = tokio::net::UnixStream::pair().unwrap();
    let capture = tokio::spawn(tsunagi::capture::serve(
        daemon_end,
        name.clone(),
        Some(tap.clone()),
        Some(2),
        vec![file],
        0,
    ));
    while !tap.is_on() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // In: alice's echo request, to the tun.
    let request = echo_request(alice, local, 9, 1);
    let mut frame = Vec::new();
    let link = clients.links.get_mut(&1).unwrap();
    assert!(link.encapsulate(IpVersion::V4, &request, &mut frame));
    clients.to_port.send(ToPort::Frame(1, frame)).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), kernel.recv())
        .await
        .expect("nothing reached the tun")
        .unwrap();
    assert_eq!(got, request);
    // Out: a packet from the tun for alice.
    let reply = echo_request(local, alice, 9, 2);
    inject.send(reply.clone()).unwrap();
    assert!(
        clients
            .pump(Duration::from_secs(5), |c| c
                .received
                .get(&1)
                .is_some_and(|r| !r.is_empty()))
            .await,
        "nothing reached alice"
    );

    // The count reached, the daemon answers by itself.
    let mut answer = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::BufReader::new(client_end).read_line(&mut answer),
    )
    .await
    .expect("no answer")
    .unwrap();
    let answer = Response::parse(answer.trim_end().as_bytes()).unwrap();
    assert_eq!(
        answer,
        Response::Done {
            message: "vpn: capture count reached: 2 packets written, 0 dropped".into()
        }
    );
    capture.await.unwrap();
    assert!(!tap.is_on());

    let pcap = std::fs::read(&path).unwrap();
    assert_eq!(&pcap[..24], &tsunagi::capture::file_header());
    let mut at = 24;
    for (direction, packet) in [(0u16, &request), (4, &reply)] {
        let incl = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        assert_eq!(incl, 16 + packet.len());
        let sll = &pcap[at + 16..at + 32];
        assert_eq!(u16::from_be_bytes([sll[0], sll[1]]), direction);
        assert_eq!(&sll[14..16], &[0x08, 0x00]);
        assert_eq!(&pcap[at + 32..at + 16 + incl], packet.as_slice());
        at += 16 + incl;
    }
    assert_eq!(at, pcap.len());

    shutdown.send(true).unwrap();
    while !server.is_finished() {
        clients.pump(Duration::from_millis(100), |_| false).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
