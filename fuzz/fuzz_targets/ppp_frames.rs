//! Arbitrary frames from a packet transport's peer (PPTP's GRE, L2TP
//! data): a configuration octet, then length-prefixed frames into a
//! server-side PPP engine on packet framing that asks its driver for the
//! peer's address. The checks live in `tsunagi_ppp::fuzzing::frames_input`,
//! shared with the corpus replay test in crates/ppp/tests/fuzz_frames.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tsunagi_ppp::fuzzing::frames_input(data);
});
