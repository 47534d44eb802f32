//! Arbitrary bytes from a PPP peer: the first octet picks a configuration,
//! the rest goes through the HDLC decoder and the PPP engine. The checks
//! live in `tsunagi_ppp::fuzzing::ppp_input`, shared with the corpus replay
//! test in crates/ppp/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_ppp::fuzzing::ppp_input(data);
});
