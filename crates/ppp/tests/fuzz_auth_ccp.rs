//! Replays fuzz/corpus/auth_ccp through `tsunagi_ppp::fuzzing::auth_ccp_input`
//! (the auth_ccp fuzz target's function), and checks that its seeds are
//! what the engines make today (`TSUNAGI_WRITE_SEEDS=1` writes them).

use std::path::{Path, PathBuf};
use std::time::Instant;

use tsunagi_crypto::mppe::{KeyStrength, StartKeys};
use tsunagi_ppp::auth::{AuthMethod, AuthOutcome, AuthOutput, AuthPeer, Authenticator};
use tsunagi_ppp::ccp::{CcpConfig, CcpNegotiator, DeflateConfig, DeflateTx, MppeRx, MppeTx};
use tsunagi_ppp::fsm::{Fsm, Output};
use tsunagi_ppp::fuzzing::{auth_ccp_input, fuzz_auth_config};
use tsunagi_ppp::wire::Protocol;
use tsunagi_ppp::FsmTimers;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/auth_ccp")
}

#[test]
fn replay_auth_ccp_corpus() {
    let dir = corpus();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} unreadable: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "fuzz corpus {} has too few seeds",
        dir.display()
    );
    for file in &files {
        eprintln!("replaying {}", file.display());
        auth_ccp_input(&std::fs::read(file).expect("read corpus file"));
    }
}

fn record(out: &mut Vec<u8>, selector: u8, bytes: &[u8]) {
    assert!(bytes.len() <= 255);
    out.push(selector);
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// The seeds of fuzz/corpus/auth_ccp (name, bytes). One per method and role:
/// a complete, correct exchange, so the fuzzer mutates from success paths
/// (identifiers and challenges are deterministic from the seeds
/// `auth_ccp_input` uses); then two degenerate inputs.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let now = Instant::now();
    let mut seeds = Vec::new();
    for (config, method) in [
        (0u8, AuthMethod::Pap),
        (1, AuthMethod::ChapMd5),
        (2, AuthMethod::MsChapV2),
        (0x16, AuthMethod::MsChapV2),
    ] {
        let protocol = if method == AuthMethod::Pap {
            Protocol::Pap
        } else {
            Protocol::Chap
        };
        let mut data = vec![config];
        // Our authenticator (seed 1) and an outside peer answering it.
        let mut out = AuthOutput::default();
        let mut ours = Authenticator::start(
            method,
            fuzz_auth_config(method),
            tsunagi_ppp::fuzzing::replay_random(1),
            now,
            &mut out,
        );
        let mut theirs = AuthPeer::start(
            method,
            fuzz_auth_config(method),
            tsunagi_ppp::fuzzing::replay_random(77),
            now,
            &mut out,
        );
        for _ in 0..4 {
            let packets: Vec<_> = out.packets.drain(..).collect();
            for (_, p) in packets {
                match p[0] {
                    // Requests/Responses (PAP 1, CHAP 2) go to our authenticator.
                    c if (protocol == Protocol::Pap && c == 1)
                        || (protocol == Protocol::Chap && c == 2) =>
                    {
                        record(&mut data, 0, &p);
                        ours.handle_packet(now, protocol, &p, &mut out);
                    }
                    _ => theirs.handle_packet(now, protocol, &p, &mut out),
                }
            }
        }
        assert!(
            matches!(ours.outcome(), AuthOutcome::Success { .. }),
            "{method:?}: {:?}",
            ours.outcome()
        );
        // Our peer side (seed 2) against an outside authenticator.
        let mut out = AuthOutput::default();
        let mut auth = Authenticator::start(
            method,
            fuzz_auth_config(method),
            tsunagi_ppp::fuzzing::replay_random(99),
            now,
            &mut out,
        );
        let mut peer = AuthPeer::start(
            method,
            fuzz_auth_config(method),
            tsunagi_ppp::fuzzing::replay_random(2),
            now,
            &mut out,
        );
        for _ in 0..4 {
            let packets: Vec<_> = out.packets.drain(..).collect();
            for (_, p) in packets {
                match p[0] {
                    c if (protocol == Protocol::Pap && c == 1)
                        || (protocol == Protocol::Chap && c == 2) =>
                    {
                        auth.handle_packet(now, protocol, &p, &mut out)
                    }
                    _ => {
                        record(&mut data, 1, &p);
                        peer.handle_packet(now, protocol, &p, &mut out);
                    }
                }
            }
        }
        assert!(
            matches!(peer.outcome(), AuthOutcome::Success { .. }),
            "{method:?}: {:?}",
            peer.outcome()
        );
        // MPPE datagrams from the other end of our keys.
        let stateful = config & 16 != 0;
        let strength = if config & 8 != 0 {
            KeyStrength::Bits40
        } else {
            KeyStrength::Bits128
        };
        let keys = StartKeys::from_mschapv2(&[1; 16], &[2; 24], config & 4 == 0);
        let mut tx = MppeTx::new(&keys, strength, !stateful);
        let ours_keys = StartKeys::from_mschapv2(&[1; 16], &[2; 24], config & 4 != 0);
        let mut rx = MppeRx::new(&ours_keys, strength, !stateful);
        for i in 0..4u8 {
            let packet = tx.encrypt(0x21, &[0x45, 0, 0, 20, i, 0, 0, 0]);
            assert_eq!(rx.decrypt(&packet).unwrap().1[4], i);
            record(&mut data, 2, &packet);
        }
        // Deflate datagrams and an incompressible one.
        let mut tx = DeflateTx::new();
        for i in 0..3u8 {
            match tx.compress(0x21, &[0x61 + i; 120]) {
                Some(c) => record(&mut data, 3, &c),
                None => record(&mut data, 0x83, &[0x61 + i; 120]),
            }
        }
        let odd: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(151)).collect();
        assert!(tx.compress(0x21, &odd).is_none());
        record(&mut data, 0x83, &[&[0x21][..], &odd].concat());
        // A CCP Configure-Request as a peer would send it.
        let mut n = CcpNegotiator::new(CcpConfig {
            deflate: Some(DeflateConfig::default()),
            mppe: None,
        });
        n.set_mppe_available(false);
        let mut fsm = Fsm::new(n, FsmTimers::default());
        let mut o = Output::default();
        fsm.open(now, &mut o);
        fsm.up(now, &mut o);
        for p in o.packets {
            record(&mut data, 4, &p);
        }
        record(&mut data, 5, &[]);
        seeds.push((format!("seed-{config:02x}-{}", method.name()), data));
    }
    // Degenerate inputs too.
    seeds.push(("seed-edge-config-only".into(), vec![3]));
    seeds.push((
        "seed-edge-short-records".into(),
        vec![1, 0, 200, 1, 0, 2, 1, 3, 2, 0, 5, 4, 4, 1, 1, 0, 4],
    ));
    seeds
}

/// The committed seeds are what [`seeds`] builds: a change to the engines
/// that alters them shows here. With `TSUNAGI_WRITE_SEEDS=1` it writes them
/// instead (no other test run touches the corpus):
/// `TSUNAGI_WRITE_SEEDS=1 cargo test -p tsunagi-ppp --test fuzz_auth_ccp`.
#[test]
fn seeds_are_current() {
    let write = std::env::var("TSUNAGI_WRITE_SEEDS").as_deref() == Ok("1");
    if write {
        std::fs::create_dir_all(corpus()).unwrap();
    }
    for (name, data) in seeds() {
        let path = corpus().join(&name);
        if write {
            std::fs::write(&path, &data).unwrap();
            eprintln!("wrote {} ({} bytes)", path.display(), data.len());
        } else {
            let on_disk =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                on_disk, data,
                "{name} is stale: run `TSUNAGI_WRITE_SEEDS=1 cargo test -p tsunagi-ppp --test fuzz_auth_ccp`"
            );
        }
        auth_ccp_input(&data);
    }
}
