//! GRE packets (or whole IPv4 packets, as a raw IPPROTO_GRE socket gives
//! them) for one PPTP call: the first octet picks the configuration, then
//! length-prefixed records go through `ipv4_payload`, `GreHeader::parse` and
//! a `CallWindow`. The checks live in `tsunagi_pptp::fuzzing::pptp_gre`,
//! shared with the corpus replay test in crates/pptp/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_pptp::fuzzing::pptp_gre(data);
});
