//! Checked bulk transfers between namespaces: a TCP sink that answers
//! each connection with the count and FNV-1a digest of what it read, and a
//! sender of a deterministic stream that compares that answer with what it
//! sent (l2tp_netns.rs, ipsec_netns.rs).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::netns::{enter, in_ns};

/// FNV-1a over a stream, 64-bit.
#[derive(Clone, Copy)]
pub struct Digest(pub u64);

impl Digest {
    pub fn new() -> Digest {
        Digest(0xcbf2_9ce4_8422_2325)
    }

    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The next `len` bytes of a deterministic stream (xorshift64).
pub fn fill(state: &mut u64, buf: &mut [u8]) {
    for b in buf {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *b = *state as u8;
    }
}

/// A sink in namespace `ns` on `at`: each connection's bytes are read to
/// the end, and their count and digest written back (16 octets).
pub fn digest_server(ns: &str, at: SocketAddr) {
    let ns = ns.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        enter(&ns);
        // The LNS puts its tunnel address on its tun just after start.
        let deadline = Instant::now() + Duration::from_secs(15);
        let listener = loop {
            match TcpListener::bind(at) {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("bind {at}: {e}"),
            }
        };
        tx.send(()).unwrap();
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
                let mut buf = vec![0u8; 65536];
                let mut digest = Digest::new();
                let mut total = 0u64;
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            digest.update(&buf[..n]);
                            total += n as u64;
                        }
                        Err(_) => return,
                    }
                }
                let mut answer = total.to_be_bytes().to_vec();
                answer.extend_from_slice(&digest.0.to_be_bytes());
                let _ = conn.write_all(&answer);
            });
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap();
}

/// From namespace `ns`: `len` bytes to the digest server `to`; what it
/// says it got must be what went.
pub fn send_checked(ns: &str, to: SocketAddr, seed: u64, len: usize) -> Result<u64, String> {
    in_ns(ns, move || {
        let mut conn = TcpStream::connect_timeout(&to, Duration::from_secs(20))
            .map_err(|e| format!("connect {to}: {e}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(300)))
            .unwrap();
        conn.set_write_timeout(Some(Duration::from_secs(300)))
            .unwrap();
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut digest = Digest::new();
        let mut buf = vec![0u8; 65536];
        let mut left = len;
        while left > 0 {
            let n = left.min(buf.len());
            fill(&mut state, &mut buf[..n]);
            digest.update(&buf[..n]);
            conn.write_all(&buf[..n])
                .map_err(|e| format!("write after {} bytes: {e}", len - left))?;
            left -= n;
        }
        finish_checked(&mut conn, len, digest)?;
        Ok(digest.0)
    })
}

/// Ends a checked transfer on `conn`: its write side shut, the sink's
/// answer read; it must say `len` bytes with `digest` arrived.
pub fn finish_checked(conn: &mut TcpStream, len: usize, digest: Digest) -> Result<(), String> {
    conn.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = [0u8; 16];
    conn.read_exact(&mut answer)
        .map_err(|e| format!("no digest back: {e}"))?;
    let got_len = u64::from_be_bytes(answer[..8].try_into().unwrap());
    let got = u64::from_be_bytes(answer[8..].try_into().unwrap());
    if got_len != len as u64 || got != digest.0 {
        return Err(format!(
            "{got_len} bytes arrived with digest {got:016x}; {len} went with digest {:016x}",
            digest.0
        ));
    }
    Ok(())
}
