//! The HDLC decoder and encoder against real pppd 2.4.9 byte streams
//! (shared/vectors/pppd-2.4.9, format in shared/vectors/README.md).
//!
//! Every stream is decoded; the frame count per stream, the protocol, the
//! ACFC/PFC usage, the code/id/length and the socat chunk that closes each
//! frame must match the frame list in the scenario's README.md, and every
//! frame is re-encoded to exactly the bytes pppd sent.

use std::path::{Path, PathBuf};

use tsunagi_ppp::hdlc::{fcs16, Decoder, Encoder, FrameError, FCS_GOOD, FCS_INIT};

fn vectors_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/pppd-2.4.9");
    assert!(
        dir.is_dir(),
        "test vectors missing: {} does not exist (they live in the project's shared/vectors)",
        dir.display()
    );
    dir
}

fn scenarios() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors_dir())
        .expect("read vectors dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 9, "expected 9 pppd-2.4.9 scenarios");
    dirs
}

/// One socat read: its SEQ and its bytes.
struct Chunk {
    seq: u32,
    bytes: Vec<u8>,
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn read_stream(path: &Path) -> Vec<Chunk> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut chunks = Vec::new();
    let mut offset = 0usize;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 4, "bad line in {}: {line}", path.display());
        let bytes = hex(fields[3]);
        let chunk_offset: usize = fields[2].parse().expect("offset");
        assert_eq!(chunk_offset, offset, "chunks must be contiguous");
        offset += bytes.len();
        chunks.push(Chunk {
            seq: fields[0].parse().expect("seq"),
            bytes,
        });
    }
    chunks
}

/// One line of the README's "Frames in order" list.
#[derive(Debug)]
struct Expected {
    chunk: u32,
    protocol: u16,
    /// (code, id, length field) for control protocols.
    control: Option<(u8, u8, u16)>,
    /// Information length for data frames.
    data_len: Option<usize>,
    acfc: bool,
    pfc: bool,
}

fn code_of(protocol: u16, name: &str) -> u8 {
    match (protocol, name) {
        (_, "ConfReq") => 1,
        (_, "ConfAck") => 2,
        (_, "ConfNak") => 3,
        (_, "ConfRej") => 4,
        (_, "TermReq") => 5,
        (_, "TermAck") => 6,
        (0xc021, "EchoReq") => 9,
        (0xc021, "EchoRep") => 10,
        (0xc023, "AuthReq") => 1,
        (0xc023, "AuthAck") => 2,
        (0xc023, "AuthNak") => 3,
        (0xc223, "Challenge") => 1,
        (0xc223, "Response") => 2,
        (0xc223, "Success") => 3,
        (0xc223, "Failure") => 4,
        _ => panic!("unknown packet name {name} for protocol {protocol:#06x}"),
    }
}

/// Parses "  chunk 8 A->B ok   IPCP ConfReq id=0x01 len=16 [ACFC]" lines.
fn expected_frames(readme: &str, direction: &str) -> Vec<Expected> {
    let mut out = Vec::new();
    for line in readme.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"chunk") || words.get(2) != Some(&direction) {
            continue;
        }
        assert_eq!(words[3], "ok", "README lists a bad frame: {line}");
        let chunk = words[1].parse().expect("chunk index");
        let acfc = words.contains(&"[ACFC]");
        let pfc = words.contains(&"[PFC]");
        let protocol = match words[4] {
            "LCP" => 0xc021,
            "PAP" => 0xc023,
            "CHAP" => 0xc223,
            "IPCP" => 0x8021,
            "IPV6CP" => 0x8057,
            "CCP" => 0x80fd,
            "CompData" => 0x00fd,
            "IP" => 0x0021,
            other => panic!("unknown protocol name {other} in {line}"),
        };
        let (control, data_len) = if words[6].starts_with("id=") {
            let id = u8::from_str_radix(words[6].trim_start_matches("id=0x"), 16).expect("id");
            let len = words[7].trim_start_matches("len=").parse().expect("len");
            (Some((code_of(protocol, words[5]), id, len)), None)
        } else {
            assert_eq!(words[6], "bytes", "{line}");
            (None, Some(words[5].parse().expect("data length")))
        };
        out.push(Expected {
            chunk,
            protocol,
            control,
            data_len,
            acfc,
            pfc,
        });
    }
    out
}

/// Frame count "* a-to-b: 18 socat chunks, 510 bytes, 22 frames, 22 with good FCS".
fn readme_frame_count(readme: &str, direction: &str) -> usize {
    let prefix = format!("* {direction}: ");
    let line = readme
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("README has no '{prefix}' line"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == "frames,").expect("frames,");
    words[i - 1].parse().expect("frame count")
}

#[derive(Debug)]
struct Decoded {
    chunk: u32,
    protocol: u16,
    info: Vec<u8>,
    acfc: bool,
    pfc: bool,
}

/// Decodes a stream octet by octet, as the receiving pppd would: the receive
/// ACCM is the default 0xffffffff until the sender has acked our LCP
/// Configure-Request (asking for asyncmap 0), then 0.
fn decode_like_receiver(chunks: &[Chunk]) -> (Vec<Decoded>, Vec<FrameError>) {
    let mut decoder = Decoder::new(1500);
    let mut frames = Vec::new();
    let mut errors = Vec::new();
    for chunk in chunks {
        for octet in chunk.bytes.chunks(1) {
            let mut saw_lcp_ack = false;
            decoder.push(octet, &mut |r| match r {
                Ok(f) => {
                    saw_lcp_ack |= f.protocol == 0xc021 && f.info.first() == Some(&2);
                    frames.push(Decoded {
                        chunk: chunk.seq,
                        protocol: f.protocol,
                        info: f.info.to_vec(),
                        acfc: f.address_control_omitted(),
                        pfc: f.protocol_compressed(),
                    });
                }
                Err(e) => errors.push(e),
            });
            if saw_lcp_ack {
                decoder.set_rx_accm(0);
            }
        }
    }
    (frames, errors)
}

#[test]
fn every_stream_decodes_to_the_frames_the_readme_lists() {
    let mut streams = 0;
    let mut total = 0;
    for dir in scenarios() {
        let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md");
        for (file, direction, arrow) in [
            ("stream-a-to-b.hex", "a-to-b", "A->B"),
            ("stream-b-to-a.hex", "b-to-a", "B->A"),
        ] {
            let name = format!("{}/{file}", dir.file_name().unwrap().to_string_lossy());
            let chunks = read_stream(&dir.join(file));
            let (frames, errors) = decode_like_receiver(&chunks);
            assert!(errors.is_empty(), "{name}: framing errors {errors:?}");
            assert_eq!(
                frames.len(),
                readme_frame_count(&readme, direction),
                "{name}: frame count"
            );
            let expected = expected_frames(&readme, arrow);
            assert_eq!(frames.len(), expected.len(), "{name}: frame list length");
            for (i, (got, want)) in frames.iter().zip(&expected).enumerate() {
                let ctx = format!("{name} frame {i}: got {got:?}, README says {want:?}");
                assert_eq!(got.chunk, want.chunk, "{ctx}");
                assert_eq!(got.protocol, want.protocol, "{ctx}");
                assert_eq!(got.acfc, want.acfc, "{ctx}");
                assert_eq!(got.pfc, want.pfc, "{ctx}");
                if let Some((code, id, len)) = want.control {
                    assert_eq!(got.info[0], code, "{ctx}");
                    assert_eq!(got.info[1], id, "{ctx}");
                    assert_eq!(u16::from_be_bytes([got.info[2], got.info[3]]), len, "{ctx}");
                    assert_eq!(got.info.len(), usize::from(len), "{ctx}");
                }
                if let Some(len) = want.data_len {
                    assert_eq!(got.info.len(), len, "{ctx}");
                }
            }
            streams += 1;
            total += frames.len();
        }
    }
    assert_eq!(streams, 18);
    assert_eq!(total, 208);
}

#[test]
fn decoding_does_not_depend_on_how_the_stream_is_split() {
    for dir in scenarios() {
        for file in ["stream-a-to-b.hex", "stream-b-to-a.hex"] {
            let chunks = read_stream(&dir.join(file));
            let (by_octet, _) = decode_like_receiver(&chunks);
            // Whole stream in one push, receive ACCM 0 from the start: the
            // frames sent before LCP opened have every control character
            // escaped, so ACCM 0 reads them the same.
            let whole: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
            let mut decoder = Decoder::new(1500);
            decoder.set_rx_accm(0);
            let mut frames = Vec::new();
            decoder.push(&whole, &mut |r| {
                let f = r.expect("good frame");
                frames.push((f.protocol, f.info.to_vec()));
            });
            let by_octet: Vec<(u16, Vec<u8>)> =
                by_octet.into_iter().map(|d| (d.protocol, d.info)).collect();
            assert_eq!(frames, by_octet, "{}/{file}", dir.display());
            assert_eq!(decoder.stats().frames as usize, frames.len());
            assert_eq!(decoder.stats().errors, 0);
        }
    }
}

/// The raw octets between flags, as pppd wrote them.
fn raw_frames(chunks: &[Chunk]) -> Vec<Vec<u8>> {
    let whole: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
    whole
        .split(|&b| b == 0x7e)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b == 0x7d {
            out.push(it.next().expect("escape at end") ^ 0x20);
        } else {
            out.push(b);
        }
    }
    out
}

#[test]
fn every_frame_has_a_good_fcs_by_the_rfc_check() {
    let mut total = 0;
    for dir in scenarios() {
        for file in ["stream-a-to-b.hex", "stream-b-to-a.hex"] {
            for raw in raw_frames(&read_stream(&dir.join(file))) {
                assert_eq!(fcs16(FCS_INIT, &unescape(&raw)), FCS_GOOD);
                total += 1;
            }
        }
    }
    assert_eq!(total, 208);
}

#[test]
fn reencoding_gives_the_bytes_pppd_sent() {
    // pppd after LCP is up: ACCM 0, ACFC, PFC (every scenario negotiates
    // them); LCP codes 1..7 go with the defaults (Linux ppp_async).
    let mut negotiated = Encoder::new();
    negotiated.set_accm(0);
    negotiated.set_acfc(true);
    negotiated.set_pfc(true);
    let defaults = Encoder::new();
    let mut confreqs = 0;
    let mut total = 0;
    for dir in scenarios() {
        for file in ["stream-a-to-b.hex", "stream-b-to-a.hex"] {
            for raw in raw_frames(&read_stream(&dir.join(file))) {
                let mut framed = vec![0x7e];
                framed.extend_from_slice(&raw);
                framed.push(0x7e);
                let mut decoder = Decoder::new(1500);
                decoder.set_rx_accm(0);
                let mut out = Vec::new();
                let mut n = 0;
                decoder.push(&framed, &mut |r| {
                    let f = r.expect("good frame");
                    n += 1;
                    let lcp_config = f.protocol == 0xc021 && (1..=7).contains(&f.info[0]);
                    let encoder = if lcp_config { &defaults } else { &negotiated };
                    encoder.encode(f.protocol, f.info, lcp_config, &mut out);
                    if lcp_config && f.info[0] == 1 {
                        confreqs += 1;
                    }
                });
                assert_eq!(n, 1);
                assert_eq!(
                    out,
                    framed,
                    "{}/{file}: re-encoded frame differs",
                    dir.display()
                );
                total += 1;
            }
        }
    }
    assert_eq!(total, 208);
    assert_eq!(confreqs, 27);
}
