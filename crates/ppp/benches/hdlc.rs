//! Throughput of the RFC 1662 framing data path: FCS-16, encoding and
//! decoding of 1400-octet IP packets. A plain `main` that prints numbers
//! (`cargo bench -p tsunagi-ppp --bench hdlc`); no statistics, no baseline.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tsunagi_ppp::hdlc::{fcs16, Decoder, Encoder, FCS_INIT};

/// A pseudo-random 1400-octet packet (xorshift): about 1 octet in 128 is a
/// flag or an escape, and 1 in 8 a control character.
fn packet(len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs `f` (which handles `bytes` octets) for about `budget` and prints
/// the rate.
fn measure(name: &str, bytes: usize, budget: Duration, mut f: impl FnMut()) {
    // Warm up and size the batch.
    let mut rounds = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..rounds {
            f();
        }
        if start.elapsed() > budget / 10 {
            break;
        }
        rounds *= 2;
    }
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < budget {
        for _ in 0..rounds {
            f();
        }
        done += rounds;
    }
    let secs = start.elapsed().as_secs_f64();
    let mb_s = (done as f64 * bytes as f64) / secs / 1e6;
    let ns = secs * 1e9 / done as f64;
    println!("{name:<44} {mb_s:>9.0} MB/s  {ns:>8.0} ns/op");
}

fn main() {
    let budget = Duration::from_millis(400);
    let pkt = packet(1400);

    measure("fcs16 1400 B (slicing-by-8)", pkt.len(), budget, || {
        black_box(fcs16(FCS_INIT, black_box(&pkt)));
    });

    let mut negotiated = Encoder::new();
    negotiated.set_accm(0);
    negotiated.set_acfc(true);
    negotiated.set_pfc(true);
    let mut out = Vec::with_capacity(4096);
    measure("encode 1400 B, ACCM 0, ACFC+PFC", pkt.len(), budget, || {
        out.clear();
        negotiated.encode(0x0021, black_box(&pkt), false, &mut out);
        black_box(&out);
    });
    let defaults = Encoder::new();
    measure("encode 1400 B, ACCM 0xffffffff", pkt.len(), budget, || {
        out.clear();
        defaults.encode(0x0021, black_box(&pkt), false, &mut out);
        black_box(&out);
    });

    // 64 frames back to back, decoded in 4 KiB reads like a socket would
    // hand them over.
    let mut stream = Vec::new();
    for _ in 0..64 {
        negotiated.encode(0x0021, &pkt, false, &mut stream);
    }
    let mut decoder = Decoder::new(1500);
    decoder.set_rx_accm(0);
    let mut frames = 0u64;
    measure(
        "decode 64 x 1400 B in 4 KiB reads, ACCM 0",
        64 * pkt.len(),
        budget,
        || {
            for read in stream.chunks(4096) {
                decoder.push(black_box(read), &mut |r| {
                    if let Ok(f) = r {
                        frames += 1;
                        black_box(f.info);
                    }
                });
            }
        },
    );
    assert_eq!(
        decoder.stats().errors,
        0,
        "benchmark stream must decode cleanly"
    );
    assert!(frames > 0);
}
