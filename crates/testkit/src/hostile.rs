//! What a hostile PPP peer sends, as whole PPP frames (`ff 03`, protocol,
//! information field: RFC 1661 section 2), ready for any transport, and
//! async-HDLC framed for byte streams ([`hdlc`]).

use tsunagi_ppp::frame::Header;
use tsunagi_ppp::hdlc::Encoder;
use tsunagi_ppp::wire::{Code, ControlRepr};

/// LCP's protocol number.
pub const LCP: u16 = 0xc021;
/// IPCP's protocol number.
pub const IPCP: u16 = 0x8021;

/// A log line's start as tsunagi writes it, for forging one.
pub const FORGED_LINE: &str = "Nov 25 16:02:11 tsunagi[1]: labs: forged by the peer";

/// A control packet (code, identifier, data) of `protocol` as a whole PPP
/// frame with the full header.
pub fn control_frame(protocol: u16, code: Code, identifier: u8, data: &[u8]) -> Vec<u8> {
    let mut frame = Header::uncompressed(protocol).as_bytes().to_vec();
    ControlRepr {
        code,
        identifier,
        data,
    }
    .emit(&mut frame);
    frame
}

/// An LCP Configure-Request with a magic number (option 5) and nothing
/// else: each one a new negotiation the receiver must answer.
pub fn lcp_configure_request(identifier: u8, magic: u32) -> Vec<u8> {
    let mut options = vec![5, 6];
    options.extend_from_slice(&magic.to_be_bytes());
    control_frame(LCP, Code::ConfigureRequest, identifier, &options)
}

/// An LCP Terminate-Request whose text is `text` (RFC 1661 section 5.5:
/// the data is uninterpreted, so any octets).
pub fn terminate_request(identifier: u8, text: &[u8]) -> Vec<u8> {
    control_frame(LCP, Code::TerminateRequest, identifier, text)
}

/// A Terminate-Request text that forges a log line after a newline, with
/// a carriage return and an escape sequence for good measure.
pub fn forged_text() -> Vec<u8> {
    format!("bye\n{FORGED_LINE}\r\x1b[2J").into_bytes()
}

/// `count` LCP Configure-Requests (identifiers and magic numbers
/// counting up) one after another.
pub fn configure_request_flood(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| lcp_configure_request(i as u8, 0x1000_0000 | i as u32))
        .collect()
}

/// Async HDLC (RFC 1662) framing for a byte stream: every frame with the
/// default ACCM and the 16-bit FCS, what any receiver takes before and
/// after LCP opens.
pub fn hdlc(frames: &[Vec<u8>]) -> Vec<u8> {
    let encoder = Encoder::new();
    let mut out = Vec::new();
    for frame in frames {
        encoder.encode_frame(frame, &[], true, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_as_ppp() {
        let request = lcp_configure_request(7, 1);
        let f = tsunagi_ppp::frame::parse(&request, 1500).unwrap();
        assert_eq!(f.protocol, LCP);
        assert_eq!(f.info, [1, 7, 0, 10, 5, 6, 0, 0, 0, 1]);
        let t = terminate_request(2, &forged_text());
        let f = tsunagi_ppp::frame::parse(&t, 1500).unwrap();
        assert_eq!(f.info[0], 5);
        assert!(f.info[4..].contains(&b'\n'));
        let stream = hdlc(&configure_request_flood(3));
        assert_eq!(stream.iter().filter(|&&b| b == 0x7e).count(), 4);
    }
}
