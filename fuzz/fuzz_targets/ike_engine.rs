//! Two IKEv1 engines after a real exchange, then the input's datagrams and
//! mutated replays of that exchange. The checks live in
//! `tsunagi_ipsec::ike::fuzzing::ike_engine`, shared with the corpus
//! replay test in crates/ipsec/tests/ike_fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_ipsec::ike::fuzzing::ike_engine(data);
});
