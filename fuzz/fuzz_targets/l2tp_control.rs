//! An L2TP peer's datagrams with timers: the first octet picks our role,
//! which end opens the tunnel, the secret, the timers and the driver's
//! answers; then records (delay, length, octets) go into a `Tunnel`. The
//! checks live in `tsunagi_l2tp::fuzzing::l2tp_control`, shared with the
//! corpus replay test in crates/l2tp/tests/fuzz_corpus.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tsunagi_l2tp::fuzzing::l2tp_control(data);
});
