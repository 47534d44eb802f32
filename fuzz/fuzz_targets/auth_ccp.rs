//! PAP/CHAP/MS-CHAPv2 packets, CCP packets and Deflate/MPPE datagrams from
//! a peer, straight into the authentication and CCP engines, then the same
//! bytes as a stream into a Link with authentication and CCP on. The checks
//! live in `tsunagi_ppp::fuzzing::auth_ccp_input`, shared with the corpus
//! replay test in crates/ppp/tests/fuzz_auth_ccp.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_ppp::fuzzing::auth_ccp_input(data);
});
