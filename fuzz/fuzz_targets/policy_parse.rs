//! Arbitrary bytes as ipf.rules and ipnat.rules: parse, print, parse again
//! (same rules), compile. The checks live in
//! `tsunagi_policy::fuzzing::policy_parse`, shared with the corpus replay
//! test in crates/policy/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_policy::fuzzing::policy_parse(data);
});
