//! Any datagram through the L2TP header and AVP parsers, and a parsed
//! message emitted again (plain and hidden) and parsed back. The checks
//! live in `tsunagi_l2tp::fuzzing::l2tp_avp`, shared with the corpus replay
//! test in crates/l2tp/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_l2tp::fuzzing::l2tp_avp(data);
});
