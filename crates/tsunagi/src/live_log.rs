//! `tsunagi log [-f] [-n N]`: the daemon's log over the control socket.
//!
//! Every line the daemon logs (after the `RUST_LOG` filter, in the format
//! of [`crate::logging`]) is also kept in a ring of the last [`RING_LINES`]
//! lines, and offered to the readers following the log. The log's writer
//! is wrapped in a [`Tee`], so the ring holds exactly the lines the log
//! file (or stderr) got.
//!
//! A reader never slows the daemon: a line goes to the followers through a
//! broadcast queue of [`FOLLOW_QUEUE`] lines that never waits; a reader
//! that falls further behind loses the oldest lines, and is told how many
//! (`{"result":"dropped","lines":N}`) before the next one it gets.

use std::collections::VecDeque;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::broadcast::{self, error::RecvError};
use tracing_subscriber::fmt::MakeWriter;

use crate::control::{self, Request, Response, EXIT_REFUSED};

/// Lines kept for `log -n`.
pub const RING_LINES: usize = 1000;
/// Lines a follower may be behind before it loses some.
pub const FOLLOW_QUEUE: usize = 1024;
/// Longest line kept (the log file gets it whole): the ring costs at most
/// [`RING_LINES`] times this.
pub const MAX_LINE: usize = 4096;
/// Lines sent first when the request names no number.
pub const DEFAULT_LINES: usize = 10;
/// Lines a follower's connection gets per write.
const WRITE_BATCH: usize = 64;

/// The last lines and the followers' queue.
pub struct LogRing {
    inner: Mutex<Inner>,
}

struct Inner {
    lines: VecDeque<Arc<str>>,
    live: broadcast::Sender<Arc<str>>,
}

impl Default for LogRing {
    fn default() -> Self {
        LogRing {
            inner: Mutex::new(Inner {
                lines: VecDeque::with_capacity(RING_LINES),
                live: broadcast::channel(FOLLOW_QUEUE).0,
            }),
        }
    }
}

impl LogRing {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `text`, one or more lines as the log's writer got them.
    pub fn push(&self, text: &[u8]) {
        let mut inner = self.lock();
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let mut line = String::from_utf8_lossy(line).into_owned();
            if line.len() > MAX_LINE {
                let mut end = MAX_LINE;
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                line.truncate(end);
            }
            let line: Arc<str> = line.into();
            if inner.lines.len() == RING_LINES {
                inner.lines.pop_front();
            }
            inner.lines.push_back(line.clone());
            // No follower: nothing to do.
            let _ = inner.live.send(line);
        }
    }

    /// The last `n` lines, and a queue of the lines after them (taken
    /// together: none is missed or seen twice).
    pub fn subscribe(&self, n: usize) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let inner = self.lock();
        let skip = inner.lines.len().saturating_sub(n);
        let last = inner.lines.iter().skip(skip).cloned().collect();
        (last, inner.live.subscribe())
    }
}

/// The daemon's ring.
pub fn ring() -> &'static LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(LogRing::default)
}

/// A log writer that also gives each event's line to [`ring`].
pub struct Tee<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Tee<M> {
    type Writer = TeeWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        TeeWriter {
            inner: self.0.make_writer(),
            line: Vec::new(),
        }
    }
}

/// One event's writer (the formatter makes one per event and writes the
/// whole line to it): the bytes go through, and to the ring when it is
/// dropped.
pub struct TeeWriter<W: Write> {
    inner: W,
    line: Vec<u8>,
}

impl<W: Write> Write for TeeWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.line.extend_from_slice(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                // The line was logged, even if the file would not take it.
                self.line.extend_from_slice(buf);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Drop for TeeWriter<W> {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            ring().push(&self.line);
        }
    }
}

/// The daemon's side of `{"op":"log"}` from root (checked by the caller):
/// the last `lines`, then with `follow` every new line, until the client
/// closes its side (or the daemon stops).
pub async fn serve(conn: UnixStream, follow: bool, lines: Option<usize>) {
    serve_ring(ring(), conn, follow, lines).await;
}

async fn serve_ring(ring: &LogRing, mut conn: UnixStream, follow: bool, lines: Option<usize>) {
    let (last, mut live) = ring.subscribe(lines.unwrap_or(DEFAULT_LINES));
    let mut out = String::new();
    for line in last {
        out.push_str(
            &Response::Log {
                line: line.to_string(),
            }
            .to_line(),
        );
    }
    let (mut rd, mut wr) = conn.split();
    if wr.write_all(out.as_bytes()).await.is_err() || !follow {
        let _ = wr.shutdown().await;
        return;
    }
    let mut buf = [0u8; 64];
    loop {
        out.clear();
        tokio::select! {
            got = live.recv() => {
                let mut got = got;
                for _ in 0..WRITE_BATCH {
                    match got {
                        Ok(line) => out.push_str(&Response::Log { line: line.to_string() }.to_line()),
                        Err(RecvError::Lagged(n)) => out.push_str(&Response::Dropped { lines: n }.to_line()),
                        Err(RecvError::Closed) => return,
                    }
                    got = match live.try_recv() {
                        Ok(line) => Ok(line),
                        Err(broadcast::error::TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                        Err(_) => break,
                    };
                }
                if wr.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
            }
            // The client closed (or sent something, which it must not).
            _ = rd.read(&mut buf) => return,
        }
    }
}

/// `tsunagi log [-f] [-n N]`: prints the daemon's lines as its log has
/// them; with `-f` until interrupted. Lost lines are said on stderr.
pub fn client(socket: &Path, follow: bool, lines: Option<usize>) -> i32 {
    let stream = match control::send(socket, &Request::Log { follow, lines }, &[]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tsunagi log: {e}");
            return EXIT_REFUSED;
        }
    };
    let stdout = io::stdout();
    let mut stdout = stdout.lock();
    for line in io::BufReader::new(stream).split(b'\n') {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tsunagi log: {e}");
                return EXIT_REFUSED;
            }
        };
        let shown = match Response::parse(&line) {
            Ok(Response::Log { line }) => writeln!(stdout, "{line}").and_then(|()| stdout.flush()),
            Ok(Response::Dropped { lines }) => {
                eprintln!("tsunagi log: {lines} lines dropped (this reader was too slow)");
                Ok(())
            }
            Ok(Response::Refused { message }) => {
                eprintln!("refused: {message}");
                return EXIT_REFUSED;
            }
            Ok(Response::Error { message }) => {
                eprintln!("error: {message}");
                return EXIT_REFUSED;
            }
            Ok(other) => {
                eprintln!("unexpected answer from the daemon: {other:?}");
                return EXIT_REFUSED;
            }
            Err(e) => {
                eprintln!("tsunagi log: {e}");
                return EXIT_REFUSED;
            }
        };
        // Stdout closed (`| head`): done.
        if shown.is_err() {
            return 0;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_lines_cut_to_size() {
        let ring = LogRing::default();
        for i in 0..RING_LINES + 5 {
            ring.push(format!("line {i}\n").as_bytes());
        }
        let (last, _) = ring.subscribe(3);
        let last: Vec<&str> = last.iter().map(|l| &**l).collect();
        assert_eq!(last, ["line 1002", "line 1003", "line 1004"]);
        let (all, _) = ring.subscribe(usize::MAX);
        assert_eq!(all.len(), RING_LINES);
        assert_eq!(&*all[0], "line 5");
        ring.push("é".repeat(MAX_LINE).as_bytes());
        let (long, _) = ring.subscribe(1);
        assert!(long[0].len() <= MAX_LINE && long[0].len() > MAX_LINE - 2);
    }

    #[test]
    fn the_tee_passes_lines_through_and_keeps_them() {
        let tee = Tee(Mutex::new(Vec::<u8>::new()));
        let (_, mut live) = ring().subscribe(0);
        {
            let mut w = tee.make_writer();
            w.write_all(b"Dec  6 05:00:00 tsunagi[1]: tee test\n")
                .unwrap();
        }
        assert_eq!(
            tee.0.lock().unwrap().as_slice(),
            b"Dec  6 05:00:00 tsunagi[1]: tee test\n"
        );
        assert_eq!(
            &*live.try_recv().unwrap(),
            "Dec  6 05:00:00 tsunagi[1]: tee test"
        );
    }

    /// A follower gets the last lines, then new ones; one too slow is
    /// told how many it lost; the writer never waits for it.
    #[tokio::test]
    async fn followers_get_new_lines_and_hear_of_lost_ones() {
        let ring: &'static LogRing = Box::leak(Box::default());
        ring.push(b"old 1\nold 2\n");
        let (ours, theirs) = UnixStream::pair().unwrap();
        let server = tokio::spawn(serve_ring(ring, theirs, true, Some(1)));
        let mut reader = tokio::io::BufReader::new(ours);
        let mut line = String::new();
        let mut next = async |line: &mut String| {
            line.clear();
            tokio::io::AsyncBufReadExt::read_line(&mut reader, line)
                .await
                .unwrap();
            Response::parse(line.trim_end().as_bytes()).unwrap()
        };
        assert_eq!(
            next(&mut line).await,
            Response::Log {
                line: "old 2".into()
            }
        );
        // Let the server subscribe and wait.
        tokio::task::yield_now().await;
        ring.push(b"new 1\n");
        assert_eq!(
            next(&mut line).await,
            Response::Log {
                line: "new 1".into()
            }
        );
        // Far more than the queue, at once: the oldest are lost.
        for i in 0..FOLLOW_QUEUE * 3 {
            ring.push(format!("burst {i}\n").as_bytes());
        }
        let mut dropped = 0;
        let mut last = String::new();
        while last != format!("burst {}", FOLLOW_QUEUE * 3 - 1) {
            match next(&mut line).await {
                Response::Dropped { lines } => dropped += lines,
                Response::Log { line } => last = line,
                other => panic!("{other:?}"),
            }
        }
        assert!(dropped >= (FOLLOW_QUEUE * 2) as u64, "{dropped}");
        drop(reader);
        ring.push(b"after close\n");
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
