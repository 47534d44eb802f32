//! A PPTP peer's TCP byte stream: the first octet picks our role (PAC or
//! PNS), the driver's answers, the timers and how the stream is cut into
//! reads; the rest goes into a `Connection`. The checks live in
//! `tsunagi_pptp::fuzzing::pptp_control`, shared with the corpus replay
//! test in crates/pptp/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_pptp::fuzzing::pptp_control(data);
});
