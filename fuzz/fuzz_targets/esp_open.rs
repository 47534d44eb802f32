//! Arbitrary bytes opened by ESP SAs of every transform and mode, then
//! sealed, opened back, replayed and tampered with. The checks live in
//! `tsunagi_ipsec::esp::fuzzing::esp_open`, shared with the corpus replay
//! test in crates/ipsec/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_ipsec::esp::fuzzing::esp_open(data);
});
