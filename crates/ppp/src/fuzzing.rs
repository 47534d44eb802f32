//! Entry points shared by the fuzz targets in `fuzz/` and the corpus replay
//! test (`tests/fuzz_corpus.rs`), so that every corpus file is also a plain
//! regression test.
//!
//! They panic when an invariant breaks; that is how a fuzzer notices.
//! Nothing here is meant for production use.

use crate::hdlc::{Decoder, Encoder, FrameError};

/// How one fuzz input is read: the first octet picks a configuration, the
/// rest is the byte stream from the peer.
///
/// Configuration octet:
/// - bit 0: receive ACCM 0 (set) or the default `0xffffffff` (clear);
/// - bits 1..=2: the decoder's `max_info`: 1500, 64, 4 or 0;
/// - bits 3..=7: where the stream is cut into two reads, in 32nds of its
///   length (the decoder must not care).
#[derive(Debug, Clone, Copy)]
struct InputConfig {
    rx_accm: u32,
    max_info: usize,
    cut: usize,
}

impl InputConfig {
    fn parse(config: u8, stream_len: usize) -> InputConfig {
        InputConfig {
            rx_accm: if config & 1 != 0 { 0 } else { 0xffff_ffff },
            max_info: [1500, 64, 4, 0][usize::from((config >> 1) & 3)],
            cut: stream_len * usize::from(config >> 3) / 32,
        }
    }
}

/// Feeds a peer's byte stream to the HDLC decoder (in two reads) and checks
/// every frame it accepts:
/// - its information field respects `max_info` and its protocol field obeys
///   RFC 1661 section 2;
/// - re-encoded with the same ACFC/PFC under the full ACCM, it decodes to
///   the same protocol and information;
/// - the decoder's counters agree with what it reported.
///
/// Input layout: see the configuration octet above.
pub fn ppp_input(data: &[u8]) {
    let Some((&config, stream)) = data.split_first() else {
        return;
    };
    let config = InputConfig::parse(config, stream.len());
    let mut decoder = Decoder::new(config.max_info);
    decoder.set_rx_accm(config.rx_accm);
    let mut reported = 0u64;
    let mut good = 0u64;
    let (first, second) = stream.split_at(config.cut);
    for read in [first, second] {
        decoder.push(read, &mut |result| {
            reported += 1;
            match result {
                Ok(frame) => {
                    good += 1;
                    assert!(frame.info.len() <= config.max_info, "info over max_info");
                    assert!(
                        frame.protocol & 0x0100 == 0 && frame.protocol & 1 == 1,
                        "invalid protocol {:#06x} accepted",
                        frame.protocol
                    );
                    check_reencoding(
                        frame.protocol,
                        frame.info,
                        frame.address_control_omitted(),
                        frame.protocol_compressed(),
                        config.max_info,
                    );
                }
                Err(error) => check_error(&error),
            }
        });
    }
    assert_eq!(decoder.stats().frames, good);
    assert_eq!(decoder.stats().errors, reported - good);
}

/// What we decoded, we can send back unchanged.
fn check_reencoding(protocol: u16, info: &[u8], acfc: bool, pfc: bool, max_info: usize) {
    let mut encoder = Encoder::new();
    encoder.set_acfc(acfc);
    encoder.set_pfc(pfc);
    let mut out = Vec::with_capacity(2 * info.len() + 16);
    encoder.encode(protocol, info, false, &mut out);
    let mut decoder = Decoder::new(max_info);
    let mut frames = 0;
    decoder.push(&out, &mut |result| {
        frames += 1;
        let frame = result.expect("a re-encoded frame decodes");
        assert_eq!(frame.protocol, protocol);
        assert_eq!(frame.info, info);
    });
    assert_eq!(frames, 1, "a re-encoded frame decodes to one frame");
}

/// Every error has a message that names what was wrong.
fn check_error(error: &FrameError) {
    let text = error.to_string();
    assert!(
        text.contains("frame") || text.contains("field"),
        "vague error: {text}"
    );
}
