//! PPP over a byte stream: async HDLC ([`crate::hdlc`]) around the frame
//! engine ([`Link`]), as the SSH transport uses it (RFC 1662 section 4).
//!
//! [`StreamLink`] is a [`Link`] (it dereferences to one, for `start`,
//! `close`, `handle_timeout`, `poll_event` and the rest) with three methods
//! of its own that take and give stream octets instead of frames:
//! [`StreamLink::handle_input`], [`StreamLink::encapsulate`] and
//! [`StreamLink::poll_transmit`]. It applies what LCP agreed for async
//! framing ([`Link::async_framing`]: ACCM and FCS each way) between frames,
//! exactly where the link's state changes: a frame can open LCP and change
//! the receive ACCM for the frames behind it in the same read, and the
//! control frames one input causes are framed as the link stood after it.
//!
//! Packet transports (PPTP, L2TP) do not use this layer: they carry the
//! link's frames as they are.

use std::ops::{Deref, DerefMut};
use std::time::Instant;

use crate::hdlc::{find_flag, Decoder, DecoderStats, Encoder};
use crate::link::{IpVersion, Link};

/// A [`Link`] on a byte stream.
#[derive(Debug)]
pub struct StreamLink {
    link: Link,
    encoder: Encoder,
    decoder: Decoder,
    /// Control frames already framed, waiting for `poll_transmit`.
    pending: Vec<u8>,
    /// How many frames `pending` holds.
    pending_frames: usize,
}

impl StreamLink {
    /// Async HDLC around `link`: the decoder takes information fields up to
    /// the link's [`Link::max_info`], the encoder escapes the configured
    /// extra octets (user-ppp `set escape`).
    pub fn new(link: Link) -> StreamLink {
        let mut encoder = Encoder::new();
        encoder.set_escape(&link.config().lcp.escape);
        let decoder = Decoder::new(link.max_info());
        StreamLink {
            link,
            encoder,
            decoder,
            pending: Vec::new(),
            pending_frames: 0,
        }
    }

    /// The frame engine inside.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// The frame engine inside, mutably.
    pub fn link_mut(&mut self) -> &mut Link {
        &mut self.link
    }

    /// What the async HDLC decoder counted (escapes, aborts, octets before
    /// the first flag).
    pub fn decoder_stats(&self) -> &DecoderStats {
        self.decoder.stats()
    }

    /// Octets read from the stream. IP datagrams found are passed to
    /// `deliver` (no allocation per packet); control frames are processed
    /// and their answers framed for [`StreamLink::poll_transmit`].
    pub fn handle_input(
        &mut self,
        now: Instant,
        stream: &[u8],
        deliver: &mut dyn FnMut(IpVersion, &[u8]),
    ) {
        let StreamLink {
            link,
            encoder,
            decoder,
            pending,
            pending_frames,
        } = self;
        // Feed the decoder up to one flag at a time: a frame can change the
        // framing for the frames behind it in the same read.
        let mut rest = stream;
        while !rest.is_empty() {
            let end = find_flag(rest).map_or(rest.len(), |i| i + 1);
            let (segment, tail) = rest.split_at(end);
            rest = tail;
            decoder.push(segment, &mut |frame| match frame {
                Ok(frame) => link.handle_packet(now, frame.protocol, frame.info, deliver),
                Err(e) => link.frame_error(&e),
            });
            if link.has_transmit() {
                *pending_frames += frame_control(link, encoder, pending);
            }
            let framing = link.async_framing();
            if decoder.rx_accm() != framing.rx_accm {
                decoder.set_rx_accm(framing.rx_accm);
            }
            if decoder.rx_fcs() != framing.rx_fcs {
                decoder.set_rx_fcs(framing.rx_fcs);
            }
        }
    }

    /// Frames one IP datagram for the stream, appended to `out`. Returns
    /// false (and counts nothing) when that NCP is not open.
    pub fn encapsulate(&mut self, version: IpVersion, packet: &[u8], out: &mut Vec<u8>) -> bool {
        let StreamLink { link, encoder, .. } = self;
        sync_encoder(link, encoder);
        link.encapsulate_with(version, packet, |header, info| {
            encoder.encode_frame(header, info, false, out)
        })
    }

    /// Appends the control frames waiting (already framed) to `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        let StreamLink {
            link,
            encoder,
            pending,
            pending_frames,
            ..
        } = self;
        if link.has_transmit() {
            frame_control(link, encoder, pending);
        }
        *pending_frames = 0;
        out.append(pending);
    }

    /// Drops the control frames waiting, counting them: for a stream whose
    /// peer does not read what it is sent (its queue must not grow).
    /// Returns how many.
    pub fn discard_transmit(&mut self) -> usize {
        let framed = std::mem::take(&mut self.pending_frames);
        self.pending.clear();
        self.link.count_discarded(framed);
        framed + self.link.discard_transmit()
    }

    /// The frame engine, without the stream layer.
    pub fn into_link(self) -> Link {
        self.link
    }
}

/// The encoder's ACCM and FCS as LCP agreed them (tables are rebuilt only
/// when they change).
fn sync_encoder(link: &Link, encoder: &mut Encoder) {
    let framing = link.async_framing();
    if encoder.accm() != framing.tx_accm {
        encoder.set_accm(framing.tx_accm);
    }
    if encoder.fcs() != framing.tx_fcs {
        encoder.set_fcs(framing.tx_fcs);
    }
}

/// Frames every control frame the link has queued, with the framing in
/// force now; how many.
fn frame_control(link: &mut Link, encoder: &mut Encoder, pending: &mut Vec<u8>) -> usize {
    sync_encoder(link, encoder);
    let mut n = 0;
    while link.poll_transmit_with(|header, info, lcp_defaults| {
        encoder.encode_frame(header, info, lcp_defaults, pending)
    }) {
        n += 1;
    }
    n
}

impl Deref for StreamLink {
    type Target = Link;

    fn deref(&self) -> &Link {
        &self.link
    }
}

impl DerefMut for StreamLink {
    fn deref_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}
