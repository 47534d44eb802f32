//! Any datagram as an ISAKMP message: parse, emit, parse again, the log
//! line, the typed views and the proposal choice. The checks live in
//! `tsunagi_ipsec::isakmp::fuzzing::isakmp_parse`, shared with the corpus
//! replay test in crates/ipsec/tests/isakmp_fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_ipsec::isakmp::fuzzing::isakmp_parse(data);
});
