//! `tsunagi-lab tcp-serve` / `tcp-send`: a deterministic byte stream over
//! TCP, with its byte count and a 256-bit digest printed on both ends.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// `tsunagi-lab tcp-serve`
#[derive(Debug, Args, Clone)]
pub struct TcpServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:5001")]
    pub listen: SocketAddr,
    /// Give up when no connection or no data comes for this many seconds.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout: u64,
    /// Only count the bytes (for benchmarks: hashing would compete with
    /// the tunnel for the CPU).
    #[arg(long)]
    pub no_hash: bool,
}

/// `tsunagi-lab tcp-send`
#[derive(Debug, Args, Clone)]
pub struct TcpSendArgs {
    /// Where to send.
    pub to: SocketAddr,
    /// How many bytes.
    pub bytes: u64,
    /// Seed of the byte stream.
    #[arg(long, default_value_t = 0x7473_756e_6167_6921)]
    pub seed: u64,
    /// Give up when a write blocks for this many seconds.
    #[arg(long, default_value_t = 60)]
    pub idle_timeout: u64,
    /// Send one pseudo-random block over and over and do not hash (for
    /// benchmarks: the generator then costs almost no CPU).
    #[arg(long)]
    pub no_hash: bool,
}

/// What `tcp-serve` and `tcp-send` report when done, one line
/// `bytes=N digest=HEX secs=S MB/s=R`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferReport {
    /// Bytes moved.
    pub bytes: u64,
    /// [`StreamDigest`] of them in hex, or "skipped" (`--no-hash`).
    pub digest: String,
    /// Seconds from connect (or accept) to the end.
    pub secs: f64,
}

impl std::fmt::Display for TransferReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes, digest {} on both ends, {:.2} s, {:.1} MB/s",
            self.bytes,
            self.digest,
            self.secs,
            self.bytes as f64 / 1e6 / self.secs.max(1e-9)
        )
    }
}

impl TransferReport {
    /// Finds the report line in a helper's output.
    pub fn parse(text: &str) -> Result<TransferReport> {
        let line = text
            .lines()
            .find(|l| l.starts_with("bytes="))
            .ok_or_else(|| anyhow!("no `bytes=` report line in {text:?}"))?;
        let field = |k: &str| -> Result<&str> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .ok_or_else(|| anyhow!("report line {line:?} lacks {k}"))
        };
        Ok(TransferReport {
            bytes: field("bytes")?.parse().context("bytes")?,
            digest: field("digest")?.to_string(),
            secs: field("secs")?.parse().context("secs")?,
        })
    }

    fn line(&self) -> String {
        format!(
            "bytes={} digest={} secs={:.3} MB/s={:.1}",
            self.bytes,
            self.digest,
            self.secs,
            self.bytes as f64 / 1e6 / self.secs.max(1e-9)
        )
    }
}

const CHUNK: usize = 256 * 1024;

/// `tsunagi-lab tcp-serve`: one connection, read to EOF.
pub fn tcp_serve(args: &TcpServeArgs) -> Result<TransferReport> {
    let listener =
        TcpListener::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let idle = Duration::from_secs(args.idle_timeout.max(1));
    let deadline = Instant::now() + idle;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("no connection within {} s", idle.as_secs());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).context("accept"),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(idle))?;
    let started = Instant::now();
    let mut hash = StreamDigest::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("reading after {total} bytes"));
            }
        };
        if !args.no_hash {
            hash.update(&buf[..n]);
        }
        total += n as u64;
    }
    let report = TransferReport {
        bytes: total,
        digest: digest_or_skipped(hash, args.no_hash),
        secs: started.elapsed().as_secs_f64(),
    };
    println!("{}", report.line());
    Ok(report)
}

/// `tsunagi-lab tcp-send`: a seeded xorshift byte stream.
pub fn tcp_send(args: &TcpSendArgs) -> Result<TransferReport> {
    let idle = Duration::from_secs(args.idle_timeout.max(1));
    let mut stream = TcpStream::connect_timeout(&args.to, idle)
        .with_context(|| format!("connecting to {}", args.to))?;
    stream.set_write_timeout(Some(idle))?;
    let started = Instant::now();
    let mut hash = StreamDigest::new();
    let mut stream_bytes = ByteStream::new(args.seed);
    let mut buf = vec![0u8; CHUNK];
    let mut left = args.bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        if args.no_hash {
            if left == args.bytes {
                stream_bytes.fill(&mut buf);
            }
        } else {
            stream_bytes.fill(&mut buf[..n]);
            hash.update(&buf[..n]);
        }
        stream
            .write_all(&buf[..n])
            .with_context(|| format!("writing after {} bytes", args.bytes - left))?;
        left -= n as u64;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    // Wait for the receiver to close: the bytes are then known delivered.
    stream.set_read_timeout(Some(idle))?;
    let mut sink = [0u8; 64];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("waiting for the receiver to close"),
        }
    }
    let report = TransferReport {
        bytes: args.bytes,
        digest: digest_or_skipped(hash, args.no_hash),
        secs: started.elapsed().as_secs_f64(),
    };
    println!("{}", report.line());
    Ok(report)
}

fn digest_or_skipped(hash: StreamDigest, skipped: bool) -> String {
    if skipped {
        "skipped".into()
    } else {
        hex(&hash.finish())
    }
}

/// xorshift64*: cheap, not compressible, reproducible from the seed.
struct ByteStream {
    state: u64,
}

impl ByteStream {
    fn new(seed: u64) -> Self {
        ByteStream { state: seed | 1 }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let mut x = self.state;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.state = x;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A 256-bit digest of a byte stream: four 64-bit lanes, each absorbing
/// every fourth 8-byte word with xxHash64's round (`acc = rotl(acc + w *
/// P2, 31) * P1`) and finished with its avalanche. Not cryptographic, but
/// each round is a bijection of the lane, so any single corrupted word
/// always changes the digest, and unrelated streams collide with
/// probability about 2^-64. Chosen over SHA-256 because it stays fast in an
/// unoptimised test build (about 150 MB/s against SHA-256's 5).
pub struct StreamDigest {
    lanes: [u64; 4],
    block: [u8; 32],
    used: usize,
    length: u64,
}

const PRIME1: u64 = 0x9E37_79B1_85EB_CA87;
const PRIME2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const PRIME3: u64 = 0x1656_67B1_9E37_79F9;

impl Default for StreamDigest {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDigest {
    /// Lanes seeded as xxHash64 seeds them (seed 0).
    pub fn new() -> Self {
        StreamDigest {
            lanes: [
                PRIME1.wrapping_add(PRIME2),
                PRIME2,
                0,
                0u64.wrapping_sub(PRIME1),
            ],
            block: [0; 32],
            used: 0,
            length: 0,
        }
    }

    /// Absorbs `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.used > 0 {
            let take = (32 - self.used).min(data.len());
            self.block[self.used..self.used + take].copy_from_slice(&data[..take]);
            self.used += take;
            data = &data[take..];
            if self.used < 32 {
                return;
            }
            let block = self.block;
            self.absorb(&block);
            self.used = 0;
        }
        let mut blocks = data.chunks_exact(32);
        for b in &mut blocks {
            self.absorb(b);
        }
        let rest = blocks.remainder();
        self.block[..rest.len()].copy_from_slice(rest);
        self.used = rest.len();
    }

    fn absorb(&mut self, block: &[u8]) {
        for (lane, word) in self.lanes.iter_mut().zip(block.chunks_exact(8)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            *lane = round(*lane, u64::from_le_bytes(w));
        }
    }

    /// Pads the last partial block with its length and returns the digest.
    pub fn finish(mut self) -> [u8; 32] {
        let used = self.used;
        let length = self.length;
        if used > 0 {
            let mut block = [0u8; 32];
            block[..used].copy_from_slice(&self.block[..used]);
            self.absorb(&block);
        }
        let mut out = [0u8; 32];
        for (i, o) in out.chunks_exact_mut(8).enumerate() {
            // Every output word depends on all lanes and on the length, so
            // streams that differ only in trailing zero bytes differ.
            let mut h = self.lanes[i]
                ^ self.lanes[(i + 1) % 4].rotate_left(17)
                ^ length.wrapping_mul(PRIME3)
                ^ (i as u64);
            h ^= h >> 33;
            h = h.wrapping_mul(PRIME2);
            h ^= h >> 29;
            h = h.wrapping_mul(PRIME3);
            h ^= h >> 32;
            o.copy_from_slice(&h.to_be_bytes());
        }
        out
    }
}

/// xxHash64's round.
fn round(acc: u64, word: u64) -> u64 {
    acc.wrapping_add(word.wrapping_mul(PRIME2))
        .rotate_left(31)
        .wrapping_mul(PRIME1)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(pieces: &[&[u8]]) -> String {
        let mut d = StreamDigest::new();
        for p in pieces {
            d.update(p);
        }
        hex(&d.finish())
    }

    #[test]
    fn digest_does_not_depend_on_how_the_stream_is_cut() {
        let mut data = vec![0u8; 1000];
        ByteStream::new(3).fill(&mut data);
        let whole = digest_of(&[&data]);
        assert_eq!(whole.len(), 64);
        for cut in [0, 1, 7, 31, 32, 33, 500, 999, 1000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(digest_of(&[a, b]), whole, "cut at {cut}");
        }
        let bytewise: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(digest_of(&bytewise), whole);
    }

    #[test]
    fn digest_sees_every_change() {
        let mut data = vec![0u8; 4096];
        ByteStream::new(5).fill(&mut data);
        let original = digest_of(&[&data]);
        // One flipped bit anywhere, a swap of two words, a lost or an extra
        // trailing zero byte: all change the digest.
        for pos in [0, 1, 8, 31, 32, 2000, 4095] {
            let mut d = data.clone();
            d[pos] ^= 0x01;
            assert_ne!(digest_of(&[&d]), original, "bit flip at {pos}");
        }
        let mut swapped = data.clone();
        swapped.swap(0, 8);
        if swapped != data {
            assert_ne!(digest_of(&[&swapped]), original);
        }
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(digest_of(&[&longer]), original);
        assert_ne!(digest_of(&[&data[..4095]]), original);
        assert_ne!(digest_of(&[]), digest_of(&[&[0u8]]));
    }

    #[test]
    fn byte_stream_is_reproducible_and_chunking_independent() {
        let mut a = vec![0u8; 80];
        ByteStream::new(7).fill(&mut a);
        let mut b = vec![0u8; 80];
        let mut s = ByteStream::new(7);
        s.fill(&mut b[..40]);
        s.fill(&mut b[40..]);
        assert_eq!(a, b);
        let mut c = vec![0u8; 80];
        ByteStream::new(8).fill(&mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn report_line_round_trips() {
        let r = TransferReport {
            bytes: 1234,
            digest: "ab".repeat(32),
            secs: 1.5,
        };
        assert_eq!(TransferReport::parse(&r.line()).unwrap(), r);
        assert!(TransferReport::parse("listening on x\n").is_err());
    }
}
