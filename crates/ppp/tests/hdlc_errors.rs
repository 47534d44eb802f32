//! Bad input to the HDLC decoder (RFC 1662 section 4.3): each kind of broken
//! frame is reported as its own error, and the next good frame still comes
//! through.

use tsunagi_ppp::hdlc::{fcs16, Decoder, Encoder, FrameError, FCS_INIT};

/// `body` (everything between the flags except the FCS) with its FCS,
/// escaped under the full ACCM, between flags.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut unescaped = body.to_vec();
    unescaped.extend_from_slice(&(!fcs16(FCS_INIT, body)).to_le_bytes());
    let mut out = vec![0x7e];
    for &b in &unescaped {
        if b < 0x20 || b == 0x7d || b == 0x7e {
            out.extend_from_slice(&[0x7d, b ^ 0x20]);
        } else {
            out.push(b);
        }
    }
    out.push(0x7e);
    out
}

/// An LCP Echo-Request, the good frame that must follow every bad one.
fn good_frame() -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new().encode(
        0xc021,
        &[0x09, 0x01, 0x00, 0x08, 1, 2, 3, 4],
        false,
        &mut out,
    );
    out
}

type Outcome = Result<(u16, Vec<u8>), FrameError>;

fn decode(decoder: &mut Decoder, bytes: &[u8]) -> Vec<Outcome> {
    let mut out = Vec::new();
    decoder.push(bytes, &mut |r| {
        out.push(r.map(|f| (f.protocol, f.info.to_vec())))
    });
    out
}

/// Feeds `bad` and then a good frame; returns the error for `bad`.
fn error_then_resync(bad: &[u8]) -> FrameError {
    let mut d = Decoder::new(1500);
    let mut stream = bad.to_vec();
    stream.extend_from_slice(&good_frame());
    let got = decode(&mut d, &stream);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[1].as_ref().expect("good frame after the bad one"),
        &(0xc021, vec![0x09, 0x01, 0x00, 0x08, 1, 2, 3, 4])
    );
    assert_eq!(d.stats().frames, 1);
    assert_eq!(d.stats().errors, 1);
    got[0].clone().expect_err("bad frame reported as an error")
}

#[test]
fn truncated_frame_is_too_short() {
    let e = error_then_resync(&[0x7e, 0xff, 0x7d, 0x23, 0xc0, 0x7e]);
    assert_eq!(e, FrameError::TooShort { len: 3 });
    assert_eq!(
        e.to_string(),
        "frame of 3 bytes is shorter than protocol + FCS (4 bytes)"
    );
}

#[test]
fn frame_cut_short_has_a_bad_fcs() {
    // A real frame missing its last two octets before the flag.
    let full = good_frame();
    let mut cut = full[..full.len() - 3].to_vec();
    cut.push(0x7e);
    assert!(matches!(error_then_resync(&cut), FrameError::BadFcs { .. }));
}

#[test]
fn flipped_bit_is_a_bad_fcs() {
    let mut bad = good_frame();
    bad[7] ^= 0x04; // the escaped code octet 0x09 becomes 0x0d
    let e = error_then_resync(&bad);
    let FrameError::BadFcs {
        len,
        received,
        computed,
    } = e
    else {
        panic!("expected BadFcs, got {e:?}");
    };
    assert_eq!(len, 2 + 2 + 8 + 2);
    assert_ne!(received, computed);
    assert!(e.to_string().contains("bad FCS"), "{e}");
}

#[test]
fn escape_before_flag_aborts_the_frame() {
    let e = error_then_resync(&[0x7e, 0xff, 0x7d, 0x23, 0xc0, 0x21, 0x7d, 0x29, 0x7d, 0x7e]);
    assert_eq!(e, FrameError::Aborted { len: 5 });
    let mut d = Decoder::new(1500);
    decode(&mut d, &[0x7e, 0x7d, 0x7e]);
    assert_eq!(d.stats().aborted, 1);
}

#[test]
fn oversized_frame_is_too_long_and_not_buffered() {
    // 100 octets of information against a limit of 10: the decoder stops
    // buffering and counts.
    let mut body = vec![0xff, 0x03, 0x00, 0x21];
    body.extend(std::iter::repeat_n(0x45, 100));
    let mut d = Decoder::new(10);
    let mut stream = framed(&body);
    stream.extend_from_slice(&good_frame());
    let got = decode(&mut d, &stream);
    assert_eq!(
        got[0],
        Err(FrameError::TooLong {
            len: 4 + 100 + 2,
            max_info: 10
        })
    );
    assert!(got[1].is_ok());

    // A long run without any flag is only counted.
    let mut d = Decoder::new(10);
    let mut stream = vec![0x7e];
    stream.extend(std::iter::repeat_n(0x41, 1 << 20));
    stream.push(0x7e);
    let got = decode(&mut d, &stream);
    assert_eq!(
        got,
        vec![Err(FrameError::TooLong {
            len: 1 << 20,
            max_info: 10
        })]
    );
}

#[test]
fn information_field_limit_is_exact() {
    // With ACFC and PFC a frame can fit the buffer while its information
    // field is over the limit.
    let mut ok = vec![0x21];
    ok.extend([0x45; 10]);
    let mut over = vec![0x21];
    over.extend([0x45; 11]);
    let mut d = Decoder::new(10);
    let mut stream = framed(&ok);
    stream.extend(framed(&over));
    let got = decode(&mut d, &stream);
    assert_eq!(got[0], Ok((0x21, vec![0x45; 10])));
    assert_eq!(
        got[1],
        Err(FrameError::TooLong {
            len: 1 + 11 + 2,
            max_info: 10
        })
    );
}

#[test]
fn address_without_ui_control_is_rejected() {
    let e = error_then_resync(&framed(&[0xff, 0x13, 0xc0, 0x21, 0x09, 0x00, 0x00, 0x04]));
    assert_eq!(
        e,
        FrameError::BadAddressControl {
            address: 0xff,
            control: 0x13
        }
    );
}

#[test]
fn even_protocol_low_octet_is_rejected() {
    let e = error_then_resync(&framed(&[0xff, 0x03, 0x00, 0x20, 0x45]));
    assert_eq!(e, FrameError::BadProtocol { protocol: 0x0020 });
    assert!(e.to_string().contains("0x0020"), "{e}");
}

#[test]
fn no_room_for_protocol_is_reported() {
    assert_eq!(
        error_then_resync(&framed(&[0xff, 0x03])),
        FrameError::NoProtocol { len: 4 }
    );
    assert_eq!(
        error_then_resync(&framed(&[0xff, 0x03, 0xc0])),
        FrameError::NoProtocol { len: 5 }
    );
}

#[test]
fn compressed_fields_are_undone() {
    let mut d = Decoder::new(1500);
    let mut seen = Vec::new();
    let mut stream = framed(&[0x21, 0x45, 0x00]);
    stream.extend(framed(&[0xc0, 0x21, 0x09, 0x00, 0x00, 0x04]));
    d.push(&stream, &mut |r| {
        let f = r.expect("good frame");
        seen.push((
            f.protocol,
            f.info.to_vec(),
            f.address_control_omitted(),
            f.protocol_compressed(),
        ));
    });
    assert_eq!(
        seen,
        vec![
            (0x0021, vec![0x45, 0x00], true, true),
            (0xc021, vec![0x09, 0x00, 0x00, 0x04], true, false),
        ]
    );
}

#[test]
fn noise_before_the_first_flag_is_skipped() {
    let mut d = Decoder::new(1500);
    let mut stream = b"Welcome to vpn-server\r\n".to_vec();
    stream.extend(good_frame());
    let got = decode(&mut d, &stream);
    assert_eq!(got.len(), 1);
    assert!(got[0].is_ok());
    assert_eq!(d.stats().skipped_before_first_flag, 23);
}

#[test]
fn back_to_back_flags_are_not_frames() {
    let mut d = Decoder::new(1500);
    let got = decode(&mut d, &[0x7e; 10]);
    assert!(got.is_empty());
    assert_eq!(d.stats().errors, 0);
}

#[test]
fn control_characters_in_the_receive_accm_are_dropped() {
    // XON/XOFF inserted by a modem into a frame: dropped under the default
    // receive ACCM, so the frame is intact.
    let mut noisy = good_frame();
    noisy.insert(5, 0x11);
    noisy.insert(8, 0x13);
    let mut d = Decoder::new(1500);
    let got = decode(&mut d, &noisy);
    assert!(got[0].is_ok(), "{got:?}");
    assert_eq!(d.stats().dropped_control_chars, 2);

    // With receive ACCM 0 they are data, and the FCS catches them.
    let mut d = Decoder::new(1500);
    d.set_rx_accm(0);
    let got = decode(&mut d, &noisy);
    assert!(matches!(got[0], Err(FrameError::BadFcs { .. })), "{got:?}");

    // A dropped character between escape and escaped octet leaves the
    // escape pending (RFC 1662 section 4.2: removal comes first).
    let mut split = good_frame();
    let esc = split.iter().position(|&b| b == 0x7d).expect("an escape");
    split.insert(esc + 1, 0x00);
    let mut d = Decoder::new(1500);
    assert!(decode(&mut d, &split)[0].is_ok());
}

#[test]
fn escaped_escape_is_data() {
    // RFC 1662 section 4.2: the octet after a control escape is XORed with
    // 0x20, even when it is 0x7d itself (giving 0x5d).
    let mut body = vec![0x21, 0x5d];
    body.extend((!fcs16(FCS_INIT, &body)).to_le_bytes());
    let mut stream = vec![0x7e, 0x21, 0x7d, 0x7d];
    for b in &body[2..] {
        if *b < 0x20 || *b == 0x7d || *b == 0x7e {
            stream.extend([0x7d, b ^ 0x20]);
        } else {
            stream.push(*b);
        }
    }
    stream.push(0x7e);
    let mut d = Decoder::new(1500);
    assert_eq!(decode(&mut d, &stream), vec![Ok((0x21, vec![0x5d]))]);
}

#[test]
fn a_frame_split_over_many_pushes_comes_out_once() {
    let frame = good_frame();
    let mut d = Decoder::new(1500);
    let mut got = Vec::new();
    for b in &frame {
        got.extend(decode(&mut d, std::slice::from_ref(b)));
    }
    assert_eq!(got.len(), 1);
    assert!(got[0].is_ok());
}
