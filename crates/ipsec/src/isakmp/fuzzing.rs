//! The entry point of the `isakmp_parse` fuzz target (fuzz/), shared with
//! the corpus replay test (tests/isakmp_fuzz_corpus.rs), so that every
//! corpus file is also a plain regression test. Built only for tests and
//! with the `fuzzing` feature. It panics when an invariant breaks; that
//! is how a fuzzer notices.

use super::attr::AuthMethod;
use super::proposal::{choose_esp, choose_ike, Choice, Kind, Proposals};
use super::{parse, parse_decrypted, Message, Parsed, Payload, Role, Verb};

/// Any datagram: [`parse`] never panics; a parsed message emits to octets
/// that parse to the same message and emit to the same octets; the log
/// line, the typed attribute and identification views and the proposal
/// choice (seed 002's `3des-sha1-modp1024!`) take whatever parsed; an
/// encrypted body goes through [`parse_decrypted`] as if it were the
/// plaintext.
pub fn isakmp_parse(data: &[u8]) {
    match parse(data) {
        Ok(Parsed::Message(m)) => check(&m),
        Ok(Parsed::Encrypted(e)) => {
            assert_eq!(e.header_octets.len(), super::HEADER_LEN);
            assert!(e.header.flags.encryption());
            if let Ok((mut m, padding)) = parse_decrypted(e.header, e.first_payload, e.ciphertext) {
                assert!(padding <= e.ciphertext.len());
                // In the clear, the same payloads make a plain message.
                m.header.flags.0 &= !super::Flags::ENCRYPTION;
                check(&m);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn check(m: &Message) {
    let bytes = m.to_vec().expect("a parsed message emits");
    let again = match parse(&bytes) {
        Ok(Parsed::Message(again)) => again,
        Ok(Parsed::Encrypted(_)) => panic!("the Encryption flag appeared"),
        Err(e) => panic!("emitted message does not parse: {e}"),
    };
    assert_eq!(&again, m, "parse(emit(m)) != m");
    assert_eq!(again.to_vec().expect("emits"), bytes, "emit is not stable");
    let line = m.log(Verb::Parsed, Role::Request).to_string();
    assert!(line.starts_with("parsed "));
    let _ = m.disposition();
    let ike = Proposals::parse("3des-sha1-modp1024!", Kind::Ike).expect("seed 002 ike");
    let esp = Proposals::parse("3des-sha1-modp1024!", Kind::Esp).expect("seed 002 esp");
    for p in &m.payloads {
        match p {
            Payload::Sa(sa) => {
                for prop in &sa.proposals {
                    for t in &prop.transforms {
                        let _ = (t.ike(), t.ipsec());
                    }
                }
                for choice in [
                    choose_ike(&ike, AuthMethod::PreSharedKey, sa),
                    choose_esp(&esp, sa),
                ] {
                    if let Choice::Chosen { reply, .. } = choice {
                        assert_eq!(reply.proposals.len(), 1);
                        assert_eq!(reply.proposals[0].transforms.len(), 1);
                    }
                }
            }
            Payload::Identification(id) => {
                let _ = id.value();
            }
            _ => {}
        }
        let _ = p.known_vendor();
    }
}
