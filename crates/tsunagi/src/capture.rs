//! `tsunagi capture LINK -w FILE`: one profile's inner, decrypted packets
//! written to a pcap file that tshark, tcpdump and Wireshark read.
//!
//! The file is the classic libpcap savefile (pcap-savefile(5) of libpcap;
//! draft-ietf-opsawg-pcap, "PCAP Capture File Format"): a 24-byte file
//! header with the magic `0xa1b2c3d4` (microsecond timestamps) in little
//! endian, then one 16-byte record header and the packet's bytes per packet.
//! The link type is `LINKTYPE_LINUX_SLL` (113, tcpdump.org's
//! linktypes/LINKTYPE_LINUX_SLL.html), what `tcpdump -i any` writes for a
//! tun: its 16-byte pseudo-header carries the packet's direction ("sent by
//! us" for what goes into the tunnel, "to us" for what comes out of it),
//! which a `LINKTYPE_RAW` file has no room for, then the IP packet.
//!
//! Who does what:
//! - the client opens FILE itself (with its own permissions, mode 0600:
//!   the packets are the tunnel's plaintext) and passes the fd with the
//!   request (`SCM_RIGHTS`, as `direct` passes its stdio);
//! - every profile has a [`Tap`] (the registry holds it, a transport
//!   fetches it when it starts a session). The data path calls
//!   [`Tap::packet`] for each packet PPP delivers to the tun and each
//!   packet from the tun given to PPP: one relaxed atomic load when no
//!   capture runs. While one runs the packet is copied with its time into
//!   a bounded queue with `try_send`: a full queue is a counted drop, never
//!   a wait on the data path;
//! - a writer thread takes the queue and writes each record with one
//!   `write`, until the client's connection reaches EOF (Ctrl-C), the
//!   count is reached, the file fails, or the profile goes away; the
//!   client is then told how many packets were written and dropped.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tracing::{info, warn};

use crate::control::{self, ClientError, Request, Response, EXIT_REFUSED};

/// The savefile magic for microsecond timestamps (pcap-savefile(5)).
pub const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// The savefile format version, 2.4 (pcap-savefile(5)).
pub const PCAP_VERSION: (u16, u16) = (2, 4);
/// `LINKTYPE_LINUX_SLL`: the Linux "cooked" pseudo-header, then the packet.
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// Length of the `LINKTYPE_LINUX_SLL` pseudo-header.
pub const SLL_HEADER_LEN: usize = 16;
/// `ARPHRD_NONE`, the hardware type Linux gives a tun (linux/if_arp.h).
pub const ARPHRD_NONE: u16 = 0xfffe;
/// Most bytes of one record (pseudo-header included), tcpdump's default
/// snapshot length: a 64 KiB super-packet of an offload tun fits whole.
pub const SNAPLEN: u32 = 262_144;
/// Packets queued for the writer at most.
pub const QUEUE_PACKETS: usize = 4096;
/// Bytes queued for the writer at most: a capture costs the daemon this
/// much memory at worst, whatever the packets' sizes.
pub const QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// Which way a packet went through the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the peer: PPP delivered it to the tun.
    In,
    /// To the peer: taken from the tun and given to PPP.
    Out,
}

impl Direction {
    /// The pseudo-header's packet type: `LINUX_SLL_HOST` (0, "to us") or
    /// `LINUX_SLL_OUTGOING` (4, "sent by us").
    pub fn sll_packet_type(self) -> u16 {
        match self {
            Direction::In => 0,
            Direction::Out => 4,
        }
    }
}

/// The 24-byte savefile header (pcap-savefile(5), draft-ietf-opsawg-pcap
/// s4): magic, version 2.4, two zero fields (`thiszone`, `sigfigs`),
/// snapshot length, link type; little endian, which the magic tells
/// readers.
pub fn file_header() -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&PCAP_MAGIC_MICROS.to_le_bytes());
    h[4..6].copy_from_slice(&PCAP_VERSION.0.to_le_bytes());
    h[6..8].copy_from_slice(&PCAP_VERSION.1.to_le_bytes());
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_LINUX_SLL.to_le_bytes());
    h
}

/// Appends one record to `out`: the 16-byte record header (seconds and
/// microseconds since the epoch, captured length, original length;
/// draft-ietf-opsawg-pcap s5), the `LINKTYPE_LINUX_SLL` pseudo-header
/// (big endian: packet type, `ARPHRD_NONE`, no link-layer address, the
/// EtherType of the IP version) and `packet`, which is `orig_len` bytes
/// long on the wire and may have been cut to [`SNAPLEN`].
pub fn record(
    out: &mut Vec<u8>,
    time: SystemTime,
    direction: Direction,
    packet: &[u8],
    orig_len: usize,
) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let room = SNAPLEN as usize - SLL_HEADER_LEN;
    let packet = &packet[..packet.len().min(room)];
    let incl = (SLL_HEADER_LEN + packet.len()) as u32;
    let orig = u32::try_from(SLL_HEADER_LEN + orig_len).unwrap_or(u32::MAX);
    // Classic pcap counts seconds in 32 bits (until 2106).
    out.extend_from_slice(&(since.as_secs() as u32).to_le_bytes());
    out.extend_from_slice(&since.subsec_micros().to_le_bytes());
    out.extend_from_slice(&incl.to_le_bytes());
    out.extend_from_slice(&orig.to_le_bytes());
    let ethertype: u16 = match packet.first().map(|b| b >> 4) {
        Some(4) => 0x0800,
        Some(6) => 0x86dd,
        _ => 0,
    };
    out.extend_from_slice(&direction.sll_packet_type().to_be_bytes());
    out.extend_from_slice(&ARPHRD_NONE.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(packet);
}

/// One packet on its way to the writer.
struct Copied {
    time: SystemTime,
    direction: Direction,
    /// At most what a record holds.
    bytes: Vec<u8>,
    orig_len: usize,
}

/// The queue's sending end, while a capture runs.
struct Sink {
    queue: SyncSender<Copied>,
    /// Bytes queued and not yet written.
    queued: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Shared {
    /// The one load the data path makes per packet.
    on: AtomicBool,
    sink: Mutex<Option<Sink>>,
    /// Packets the current capture lost to a full queue.
    dropped: AtomicU64,
}

/// A profile's capture point; cheap to clone. See the module docs.
#[derive(Clone, Default)]
pub struct Tap(Arc<Shared>);

/// Why a capture cannot start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// Another capture of the profile runs.
    Busy,
}

impl Tap {
    /// A packet that passed through the tunnel in `direction`. Costs one
    /// relaxed atomic load when no capture runs.
    #[inline]
    pub fn packet(&self, direction: Direction, packet: &[u8]) {
        if self.0.on.load(Ordering::Relaxed) {
            self.copy(direction, packet);
        }
    }

    #[cold]
    fn copy(&self, direction: Direction, packet: &[u8]) {
        let guard = self.0.sink.lock().unwrap_or_else(|e| e.into_inner());
        let Some(sink) = guard.as_ref() else {
            return;
        };
        let len = packet.len().min(SNAPLEN as usize - SLL_HEADER_LEN);
        if sink.queued.load(Ordering::Relaxed) + len > QUEUE_BYTES {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copied = Copied {
            time: SystemTime::now(),
            direction,
            bytes: packet[..len].to_vec(),
            orig_len: packet.len(),
        };
        match sink.queue.try_send(copied) {
            Ok(()) => {
                sink.queued.fetch_add(len, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                self.0.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The writer has finished (count reached, file failed): the
            // capture is being stopped.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Starts a capture: the queue's receiving end and its byte count.
    fn start(&self) -> Result<(Receiver<Copied>, Arc<AtomicUsize>), StartError> {
        let mut guard = self.0.sink.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            return Err(StartError::Busy);
        }
        let (queue, rx) = std::sync::mpsc::sync_channel(QUEUE_PACKETS);
        let queued = Arc::new(AtomicUsize::new(0));
        *guard = Some(Sink {
            queue,
            queued: queued.clone(),
        });
        self.0.dropped.store(0, Ordering::Relaxed);
        self.0.on.store(true, Ordering::Relaxed);
        Ok((rx, queued))
    }

    /// Stops the capture (if one runs): no more copies, and the writer
    /// ends once it has written what is queued. Returns the drops.
    fn stop(&self) -> u64 {
        self.0.on.store(false, Ordering::Relaxed);
        self.0.sink.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Whether a capture runs.
    pub fn is_on(&self) -> bool {
        self.0.on.load(Ordering::Relaxed)
    }
}

/// The tap a registry's profile entry owns: when the profile goes away
/// (removed, or replaced by a reload), a capture of it ends.
#[derive(Default)]
pub struct ProfileTap(Tap);

impl ProfileTap {
    /// A handle for a transport or a capture.
    pub fn handle(&self) -> Tap {
        self.0.clone()
    }
}

impl Drop for ProfileTap {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// How the writer ended.
#[derive(Debug)]
enum WriterEnd {
    /// The capture was stopped and everything queued is written.
    Stopped,
    /// The count asked for is written.
    CountReached,
    /// Writing the file failed.
    Failed(io::Error),
}

/// Writes the header, then each queued packet as one record with one
/// `write`, until the queue closes, `count` records are written or a write
/// fails. Blocking: it runs on a thread of its own.
fn write_file(
    mut file: File,
    queue: Receiver<Copied>,
    queued: Arc<AtomicUsize>,
    count: Option<u64>,
    written: Arc<AtomicU64>,
) -> WriterEnd {
    if let Err(e) = file.write_all(&file_header()) {
        return WriterEnd::Failed(e);
    }
    let mut buf = Vec::with_capacity(2048);
    while let Ok(p) = queue.recv() {
        queued.fetch_sub(p.bytes.len(), Ordering::Relaxed);
        buf.clear();
        record(&mut buf, p.time, p.direction, &p.bytes, p.orig_len);
        if let Err(e) = file.write_all(&buf) {
            return WriterEnd::Failed(e);
        }
        let n = written.fetch_add(1, Ordering::Relaxed) + 1;
        if count.is_some_and(|c| n >= c) {
            return WriterEnd::CountReached;
        }
    }
    WriterEnd::Stopped
}

/// Waits until the client's side of `conn` is closed (EOF or an error);
/// bytes it sends meanwhile are ignored.
async fn closed(conn: &mut tokio::net::unix::ReadHalf<'_>) {
    let mut buf = [0u8; 64];
    while let Ok(n) = conn.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// The daemon's side of `{"op":"capture"}` from root (checked by the
/// caller): `tap` is the profile's (`None`: no such profile), `fds` must
/// be the one file to write. Answers on `conn` itself, once the capture
/// has ended.
pub async fn serve(
    mut conn: UnixStream,
    link: String,
    tap: Option<Tap>,
    count: Option<u64>,
    fds: Vec<OwnedFd>,
    pid: i32,
) {
    let answer = run_capture(&mut conn, &link, tap, count, fds, pid).await;
    // The client may be gone (killed rather than interrupted): nothing is
    // left to tell it.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        conn.write_all(answer.to_line().as_bytes()).await?;
        conn.shutdown().await
    })
    .await;
}

async fn run_capture(
    conn: &mut UnixStream,
    link: &str,
    tap: Option<Tap>,
    count: Option<u64>,
    fds: Vec<OwnedFd>,
    pid: i32,
) -> Response {
    let Some(tap) = tap else {
        return Response::Refused {
            message: format!("no link or server named {link:?}"),
        };
    };
    let Ok::<[OwnedFd; 1], _>([fd]) = fds.try_into() else {
        return Response::Error {
            message: "capture needs exactly one fd: the file to write".into(),
        };
    };
    if count == Some(0) {
        return Response::Error {
            message: "count 0: nothing to capture".into(),
        };
    }
    let (queue, queued) = match tap.start() {
        Ok(q) => q,
        Err(StartError::Busy) => {
            return Response::Refused {
                message: format!("{link}: a capture is already running"),
            }
        }
    };
    info!("{link}: capture started by pid {pid}");
    let written = Arc::new(AtomicU64::new(0));
    let file = File::from(fd);
    let mut writer = {
        let written = written.clone();
        tokio::task::spawn_blocking(move || write_file(file, queue, queued, count, written))
    };
    let (mut rd, _wr) = conn.split();
    let joined = |r: Result<WriterEnd, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| WriterEnd::Failed(io::Error::other(e)))
    };
    // The writer may end by itself (`Some`) before the client closes.
    let by_itself = tokio::select! {
        end = &mut writer => Some(joined(end)),
        () = closed(&mut rd) => None,
    };
    let client_closed = by_itself.is_none();
    let dropped = tap.stop();
    let end = match by_itself {
        Some(end) => end,
        // The writer ends once the queue is written.
        None => joined(writer.await),
    };
    let written = written.load(Ordering::Relaxed);
    let how = match &end {
        // The queue closed before the client did: the profile is gone.
        WriterEnd::Stopped if !client_closed => {
            "ended: the profile went away (removed or reloaded)".to_string()
        }
        WriterEnd::Stopped => "stopped".to_string(),
        WriterEnd::CountReached => "count reached".to_string(),
        WriterEnd::Failed(e) => format!("writing the file failed: {e}"),
    };
    let message = format!("{link}: capture {how}: {written} packets written, {dropped} dropped");
    match end {
        WriterEnd::Failed(_) => {
            warn!("{message}");
            Response::Error { message }
        }
        _ => {
            info!("{message}");
            Response::Done { message }
        }
    }
}

/// `tsunagi capture LINK -w FILE [--count COUNT]`: FILE (`-`: stdout) is
/// opened here, created with mode 0600, and handed to the daemon; the
/// capture runs until Ctrl-C (SIGINT or SIGTERM: our side of the
/// connection is shut, and the daemon's summary read) or until COUNT
/// packets are written. Every word goes to stderr (stdout may be the
/// capture).
pub fn client(socket: &Path, link: String, file: &Path, count: Option<u64>) -> i32 {
    let out: OwnedFd = if file == Path::new("-") {
        match std::io::stdout().as_fd().try_clone_to_owned() {
            Ok(fd) => fd,
            Err(e) => {
                eprintln!("tsunagi capture: stdout: {e}");
                return EXIT_REFUSED;
            }
        }
    } else {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(file)
        {
            Ok(f) => f.into(),
            Err(e) => {
                eprintln!("tsunagi capture: {}: {e}", file.display());
                return EXIT_REFUSED;
            }
        }
    };
    let request = Request::Capture {
        link: link.clone(),
        count,
    };
    let stream = match control::send(socket, &request, &[out.as_fd()]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tsunagi capture {link}: {e}");
            return EXIT_REFUSED;
        }
    };
    // The daemon writes through its copy.
    drop(out);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tsunagi capture: {e}");
            return EXIT_REFUSED;
        }
    };
    match runtime.block_on(wait_for_end(stream)) {
        Ok(Response::Done { message }) => {
            eprintln!("{message}");
            0
        }
        Ok(Response::Refused { message }) => {
            eprintln!("refused: {message}");
            EXIT_REFUSED
        }
        Ok(Response::Error { message }) => {
            eprintln!("error: {message}");
            EXIT_REFUSED
        }
        Ok(other) => {
            eprintln!("unexpected answer from the daemon: {other:?}");
            EXIT_REFUSED
        }
        Err(e) => {
            eprintln!("tsunagi capture {link}: {e}");
            EXIT_REFUSED
        }
    }
}

/// Reads the daemon's one answer; on SIGINT or SIGTERM shuts our side
/// first (the daemon then stops and answers).
async fn wait_for_end(stream: std::os::unix::net::UnixStream) -> Result<Response, ClientError> {
    use tokio::signal::unix::{signal, SignalKind};
    stream.set_nonblocking(true)?;
    let mut stream = UnixStream::from_std(stream)?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let mut shut = false;
    loop {
        tokio::select! {
            n = stream.read(&mut buf) => {
                let n = n?;
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
                if answer.contains(&b'\n') {
                    break;
                }
            }
            _ = interrupt.recv(), if !shut => {
                shut = true;
                stream.shutdown().await?;
            }
            _ = terminate.recv(), if !shut => {
                shut = true;
                stream.shutdown().await?;
            }
        }
    }
    let line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.is_empty() {
        return Err(ClientError::NoAnswer);
    }
    Response::parse(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of pcap-savefile(5), byte by byte.
    #[test]
    fn file_header_is_the_savefile_header() {
        assert_eq!(
            file_header(),
            [
                0xd4, 0xc3, 0xb2, 0xa1, // magic, microseconds, little endian
                2, 0, 4, 0, // version 2.4
                0, 0, 0, 0, // thiszone
                0, 0, 0, 0, // sigfigs
                0, 0, 4, 0, // snaplen 262144
                113, 0, 0, 0, // LINKTYPE_LINUX_SLL
            ]
        );
    }

    #[test]
    fn a_record_has_its_header_the_pseudo_header_and_the_packet() {
        let time = UNIX_EPOCH + Duration::new(0x6543_2101, 250_000_999);
        let packet = [0x45, 0, 0, 20, 1, 2, 3, 4];
        let mut out = Vec::new();
        record(&mut out, time, Direction::Out, &packet, 20);
        assert_eq!(out.len(), 16 + 16 + packet.len());
        assert_eq!(&out[0..4], &0x6543_2101u32.to_le_bytes());
        assert_eq!(&out[4..8], &250_000u32.to_le_bytes());
        assert_eq!(&out[8..12], &24u32.to_le_bytes()); // captured
        assert_eq!(&out[12..16], &36u32.to_le_bytes()); // on the wire
        assert_eq!(
            &out[16..32],
            &[0, 4, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]
        );
        assert_eq!(&out[32..], &packet);
        // From the peer, IPv6: "to us", EtherType 0x86dd.
        out.clear();
        record(&mut out, time, Direction::In, &[0x60, 0, 0, 0], 4);
        assert_eq!(&out[16..18], &[0, 0]);
        assert_eq!(&out[30..32], &[0x86, 0xdd]);
    }

    #[test]
    fn a_packet_longer_than_the_snapshot_is_cut() {
        let packet = vec![0x45u8; SNAPLEN as usize + 100];
        let mut out = Vec::new();
        record(&mut out, UNIX_EPOCH, Direction::In, &packet, packet.len());
        assert_eq!(out.len(), 16 + SNAPLEN as usize);
        assert_eq!(&out[8..12], &SNAPLEN.to_le_bytes());
        assert_eq!(&out[12..16], &(SNAPLEN + 116).to_le_bytes());
    }

    #[test]
    fn a_tap_copies_only_while_on_and_counts_what_the_queue_cannot_take() {
        let tap = Tap::default();
        tap.packet(Direction::In, &[0x45; 20]);
        let (rx, queued) = tap.start().unwrap();
        assert_eq!(tap.clone().start().err(), Some(StartError::Busy));
        tap.packet(Direction::Out, &[0x45; 20]);
        let got = rx.try_recv().unwrap();
        assert_eq!((got.direction, got.bytes.len()), (Direction::Out, 20));
        assert_eq!(queued.load(Ordering::Relaxed), 20);
        for _ in 0..QUEUE_PACKETS + 3 {
            tap.packet(Direction::In, &[0x45; 20]);
        }
        assert_eq!(tap.stop(), 3);
        assert!(!tap.is_on());
        // What was queued is still there; then the queue is closed.
        assert_eq!(rx.iter().count(), QUEUE_PACKETS);
        // A profile that goes away ends its capture.
        let owner = ProfileTap::default();
        let (rx, _) = owner.handle().start().unwrap();
        drop(owner);
        assert!(rx.recv().is_err());
    }

    /// The daemon's side: a second capture of the profile is refused
    /// while one runs; the client's shutdown stops it; the profile going
    /// away ends it; each says so with the counts.
    #[tokio::test]
    async fn a_capture_ends_with_the_client_or_the_profile() {
        let dir = std::env::temp_dir().join(format!("tsunagi-capserve-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let fd = |name: &str| vec![OwnedFd::from(File::create(dir.join(name)).unwrap())];
        let answer = |mut conn: UnixStream| async move {
            let mut text = String::new();
            conn.read_to_string(&mut text).await.unwrap();
            Response::parse(text.trim_end().as_bytes()).unwrap()
        };
        let owner = ProfileTap::default();
        let tap = owner.handle();
        let (client, daemon) = UnixStream::pair().unwrap();
        let first = tokio::spawn(serve(
            daemon,
            "p".into(),
            Some(tap.clone()),
            None,
            fd("1"),
            1,
        ));
        while !tap.is_on() {
            tokio::task::yield_now().await;
        }
        let (busy, daemon) = UnixStream::pair().unwrap();
        serve(daemon, "p".into(), Some(tap.clone()), None, fd("2"), 2).await;
        assert_eq!(
            answer(busy).await,
            Response::Refused {
                message: "p: a capture is already running".into()
            }
        );
        tap.packet(Direction::In, &[0x45; 20]);
        let (mut rd, mut wr) = client.into_split();
        wr.shutdown().await.unwrap();
        let mut text = String::new();
        rd.read_to_string(&mut text).await.unwrap();
        first.await.unwrap();
        assert_eq!(
            Response::parse(text.trim_end().as_bytes()).unwrap(),
            Response::Done {
                message: "p: capture stopped: 1 packets written, 0 dropped".into()
            }
        );
        assert_eq!(
            std::fs::metadata(dir.join("1")).unwrap().len(),
            24 + 16 + 16 + 20
        );

        let (client, daemon) = UnixStream::pair().unwrap();
        let second = tokio::spawn(serve(
            daemon,
            "p".into(),
            Some(tap.clone()),
            None,
            fd("3"),
            3,
        ));
        while !tap.is_on() {
            tokio::task::yield_now().await;
        }
        drop(owner);
        second.await.unwrap();
        assert_eq!(
            answer(client).await,
            Response::Done {
                message: "p: capture ended: the profile went away (removed or reloaded): \
                          0 packets written, 0 dropped"
                    .into()
            }
        );
        let (client, daemon) = UnixStream::pair().unwrap();
        serve(daemon, "q".into(), None, None, fd("4"), 4).await;
        assert!(matches!(answer(client).await, Response::Refused { .. }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_writer_stops_at_the_count() {
        let dir = std::env::temp_dir().join(format!("tsunagi-pcap-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("t.pcap");
        let tap = Tap::default();
        let (rx, queued) = tap.start().unwrap();
        for _ in 0..3 {
            tap.packet(Direction::In, &[0x45, 0, 0, 20]);
        }
        let written = Arc::new(AtomicU64::new(0));
        let end = write_file(
            File::create(&path).unwrap(),
            rx,
            queued,
            Some(2),
            written.clone(),
        );
        assert!(matches!(end, WriterEnd::CountReached), "{end:?}");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 24 + 2 * (16 + 16 + 4));
        assert_eq!(&bytes[..24], &file_header());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
