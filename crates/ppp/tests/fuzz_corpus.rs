//! Replays every file of the fuzz corpus (fuzz/corpus/ppp_input) through
//! the same function the fuzz target calls, so each corpus file is a
//! regression test that runs without a fuzzer, and checks that the
//! `seed-link-*` seeds are what the Link sends today
//! (`TSUNAGI_WRITE_SEEDS=1` writes them).

#[test]
fn replay_ppp_input_corpus() {
    tsunagi_testkit::corpus::replay("ppp_input", tsunagi_ppp::fuzzing::ppp_input);
}

/// The committed `seed-link-*` files are what [`link_seeds`] records: a
/// change to the Link that alters them shows here. With
/// `TSUNAGI_WRITE_SEEDS=1` it writes them instead (no other test run
/// touches the corpus):
/// `TSUNAGI_WRITE_SEEDS=1 cargo test -p tsunagi-ppp --test fuzz_corpus`.
#[test]
fn link_seeds_are_current() {
    tsunagi_testkit::corpus::check_or_write("ppp_input", link_seeds(), "tsunagi-ppp");
}

/// The seeds `seed-link-open-close-cfg*` of fuzz/corpus/ppp_input (name,
/// bytes): what a second [`Link`](tsunagi_ppp::Link) sends to the fuzz
/// target's link when the two talk. Replayed by `link_input`, such a stream
/// takes the link under test through LCP, IPCP (and IPV6CP), data, echoes
/// and termination, so the fuzzer starts from deep states instead of having
/// to guess a ConfAck.
fn link_seeds() -> Vec<(String, Vec<u8>)> {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};
    use tsunagi_ppp::fuzzing::{fuzz_link_config, LINK_SEED};
    use tsunagi_ppp::{Event, IpVersion, IpcpConfig, Ipv6cpConfig, Link, LinkConfig};

    let mut seeds = Vec::new();
    for config in [0x00u8, 0x02, 0x04, 0x06] {
        let mut ours = tsunagi_ppp::stream::StreamLink::new(Link::new(
            fuzz_link_config(config),
            LINK_SEED,
            tsunagi_ppp::fuzzing::replay_random(LINK_SEED),
        ));
        let mut peer = tsunagi_ppp::stream::StreamLink::new(Link::new(
            LinkConfig {
                name: "peer".into(),
                ipcp: IpcpConfig {
                    local: None,
                    request_dns: true,
                    ..IpcpConfig::default()
                },
                ipv6cp: (config & 2 != 0).then_some(Ipv6cpConfig {
                    local_id: Some([0x02, 0, 0, 0, 0, 0, 0, 0x02]),
                }),
                ..LinkConfig::default()
            },
            42,
            tsunagi_ppp::fuzzing::replay_random(42),
        ));
        let mut now = Instant::now();
        ours.start(now);
        peer.start(now);
        let mut stream = Vec::new();
        let mut buf = Vec::new();
        let mut peer_ipv4_up = false;
        let mut sent_data = false;
        for step in 0..200 {
            buf.clear();
            ours.poll_transmit(&mut buf);
            peer.handle_input(now, &buf, &mut |_, _| {});
            buf.clear();
            peer.poll_transmit(&mut buf);
            if peer_ipv4_up && !sent_data {
                let packet = [
                    0x45u8, 0, 0, 20, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 98, 0, 2, 10, 98, 0, 1,
                ];
                assert!(peer.encapsulate(IpVersion::V4, &packet, &mut buf));
                sent_data = true;
            }
            if step == 150 {
                peer.close(now, "seed done");
                peer.poll_transmit(&mut buf);
            }
            stream.extend_from_slice(&buf);
            ours.handle_input(now, &buf, &mut |_, _| {});
            while ours.poll_event().is_some() {}
            while let Some(e) = peer.poll_event() {
                peer_ipv4_up |= matches!(e, Event::Ipv4Up { .. });
            }
            now += Duration::from_millis(20);
            for link in [&mut ours, &mut peer] {
                if link.poll_timeout().is_some_and(|d| d <= now) {
                    link.handle_timeout(now);
                }
            }
        }
        assert!(
            peer_ipv4_up && sent_data,
            "config {config:#04x}: IPCP never opened"
        );

        // Replayed the way link_input feeds it, the stream opens IPCP on the
        // link under test.
        let mut replay = tsunagi_ppp::stream::StreamLink::new(Link::new(
            fuzz_link_config(config),
            LINK_SEED,
            tsunagi_ppp::fuzzing::replay_random(LINK_SEED),
        ));
        let mut now = Instant::now();
        replay.start(now);
        let mut opened = false;
        let mut delivered = 0;
        for read in stream.chunks(256) {
            now += Duration::from_millis(100);
            replay.handle_input(now, read, &mut |_, _| delivered += 1);
            let mut sink = Vec::new();
            replay.poll_transmit(&mut sink);
            while let Some(e) = replay.poll_event() {
                if let Event::Ipv4Up { peer, .. } = e {
                    assert_eq!(peer, Ipv4Addr::new(10, 98, 0, 2));
                    opened = true;
                }
            }
        }
        assert!(
            opened,
            "config {config:#04x}: replayed stream does not open IPCP"
        );
        assert_eq!(
            delivered, 1,
            "config {config:#04x}: the data packet was not delivered"
        );

        let mut seed = vec![config];
        seed.extend_from_slice(&stream);
        seeds.push((format!("seed-link-open-close-cfg{config:02x}"), seed));
    }
    seeds
}
