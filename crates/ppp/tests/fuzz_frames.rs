//! Replays every file of the `ppp_frames` fuzz corpus
//! (fuzz/corpus/ppp_frames) through the function the fuzz target calls, and
//! checks that the `seed-client-*` seeds are what a client engine sends
//! today (`TSUNAGI_WRITE_SEEDS=1` writes them).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tsunagi_ppp::fuzzing::{
    frames_input, frames_link_config, replay_random, FRAMES_PEER_ADDRESS, LINK_SEED,
};
use tsunagi_ppp::link::{Event, Framing, IpVersion, Link, LinkConfig};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ppp_frames")
}

#[test]
fn replay_ppp_frames_corpus() {
    let mut files: Vec<_> = std::fs::read_dir(corpus())
        .unwrap_or_else(|e| panic!("fuzz corpus {} unreadable: {e}", corpus().display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "fuzz corpus {} is empty",
        corpus().display()
    );
    for file in &files {
        eprintln!("replaying {}", file.display());
        let _ = frames_input(&std::fs::read(file).expect("read corpus file"));
    }
}

/// A client for the fuzz target's server link: packet framing, "alice"
/// with CHAP when the server requires it, Deflate when it offers it.
fn client(config: u8) -> LinkConfig {
    let mut c = LinkConfig {
        name: "client".into(),
        ..LinkConfig::default()
    };
    c.lcp.framing = Framing::Packet;
    c.auth.user = Some("alice".into());
    c.auth.password = Some(tsunagi_crypto::Secret::from("wonderland"));
    c.ipv6cp = (config & 2 != 0).then(Default::default);
    c.ccp = frames_link_config(config).ccp;
    c
}

/// What a client sends to the fuzz target's link in a whole session, as
/// a `frames_input` input: the server gets one client frame every 50 ms
/// exactly as `frames_input` feeds them (an empty frame when the client
/// has nothing to send), so the replay takes the server through LCP,
/// authentication, the driver's address, IPCP (IPV6CP, CCP), data and
/// the client's Terminate-Request.
fn seed(config: u8) -> Vec<u8> {
    let mut server = Link::new(
        frames_link_config(config),
        LINK_SEED,
        replay_random(LINK_SEED),
    );
    let mut client = Link::new(client(config), 42, replay_random(42));
    let mut now = Instant::now();
    let mut queue: Vec<Vec<u8>> = Vec::new();
    let mut out = vec![config];
    let mut up = false;
    let mut sent_data = false;
    let mut closed = false;
    let take = |link: &mut Link| {
        let mut frames = Vec::new();
        loop {
            let mut f = Vec::new();
            if link.poll_transmit(&mut f).is_none() {
                return frames;
            }
            frames.push(f);
        }
    };
    server.start(now);
    client.start(now);
    for step in 0..400 {
        // The server as frames_input drives it: its own deadlines first,
        // then the next client frame; its driver hands out the address.
        now += Duration::from_millis(50);
        while server.poll_timeout().is_some_and(|d| d <= now) {
            server.handle_timeout(now);
        }
        while client.poll_timeout().is_some_and(|d| d <= now) {
            client.handle_timeout(now);
        }
        queue.extend(take(&mut client));
        let frame = if queue.is_empty() {
            Vec::new()
        } else {
            queue.remove(0)
        };
        out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
        out.extend_from_slice(&frame);
        server.handle_frame(now, &frame, &mut |_, _| {});
        while let Some(e) = server.poll_event() {
            if let Event::PeerAddressNeeded { .. } = e {
                server.set_peer_address(now, FRAMES_PEER_ADDRESS);
            }
        }
        while server.poll_auth_event().is_some() {}
        for f in take(&mut server) {
            client.handle_frame(now, &f, &mut |_, _| {});
        }
        while let Some(e) = client.poll_event() {
            up |= matches!(e, Event::Ipv4Up { .. });
        }
        while client.poll_auth_event().is_some() {}
        if up && !sent_data {
            let packet = [
                0x45u8, 0, 0, 20, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 98, 0, 2, 10, 98, 0, 1,
            ];
            let mut f = Vec::new();
            assert!(client.encapsulate(IpVersion::V4, &packet, &mut f));
            queue.push(f);
            sent_data = true;
        }
        if sent_data && !closed && step > 100 {
            client.close(now, "seed done");
            closed = true;
        }
        if closed && queue.is_empty() && step > 120 {
            break;
        }
    }
    assert!(up, "config {config:#04x}: IPCP never opened");
    out
}

/// The seeds of fuzz/corpus/ppp_frames (name, bytes).
fn seeds() -> Vec<(String, Vec<u8>)> {
    [0x00u8, 0x01, 0x03, 0x09]
        .into_iter()
        .map(|config| (format!("seed-client-cfg{config:02x}"), seed(config)))
        .collect()
}

/// The committed seeds are what [`seeds`] records: a change to the Link
/// that alters them shows here. With `TSUNAGI_WRITE_SEEDS=1` it writes
/// them instead: `TSUNAGI_WRITE_SEEDS=1 cargo test -p tsunagi-ppp --test
/// fuzz_frames`.
#[test]
fn client_seeds_are_current() {
    let write = std::env::var("TSUNAGI_WRITE_SEEDS").as_deref() == Ok("1");
    if write {
        std::fs::create_dir_all(corpus()).expect("corpus directory");
    }
    for (name, data) in seeds() {
        let path = corpus().join(&name);
        if write {
            std::fs::write(&path, &data).expect("write seed");
        } else {
            let on_disk =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                on_disk == data,
                "{name} is stale: run `TSUNAGI_WRITE_SEEDS=1 cargo test -p tsunagi-ppp --test fuzz_frames`"
            );
        }
        // Replayed, the seed takes the server through authentication (when
        // required) to IPCP with the driver's address.
        let reached = frames_input(&data);
        assert!(reached.ipv4_up, "{name}: IPCP did not open: {reached:?}");
        let config = data[0];
        assert_eq!(reached.authenticated, config & 1 != 0, "{name}");
    }
}
