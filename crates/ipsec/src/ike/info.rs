//! Informational exchanges (RFC 2409 s5.7): notifications and deletes
//! protected by HASH(1) under an IKE SA, R-U-THERE / R-U-THERE-ACK (RFC
//! 3706 s5), and the unprotected error notifications a peer sends before
//! Phase 1 is done (NO-PROPOSAL-CHOSEN to message 1).

use std::time::Instant;

use super::engine::{header, Engine, P1State};
use super::keys;
use super::wire;
use super::{Datagram, DpdAction, Event, IkeSaId, Reason, Stage};
use crate::isakmp::payload::{Delete, Doi, Notification, NotifyType, ProtocolId};
use crate::isakmp::{self, ExchangeType, Header, Parsed, Payload};

impl Engine {
    /// An Informational message.
    pub(crate) fn informational(
        &mut self,
        now: Instant,
        d: Datagram<'_>,
        h: Header,
    ) -> Result<(), String> {
        let id = self
            .sa_by_cookies(h.initiator_spi, h.responder_spi)
            .ok_or("Informational message for no IKE SA we know")?;
        match isakmp::parse(d.data).map_err(|e| format!("Informational: {e}"))? {
            Parsed::Message(m) => {
                let state = self.sas[&id].state;
                if state == P1State::Established {
                    return Err(
                        "unprotected Informational on an established IKE SA ignored (only HASH-protected ones are believed)"
                            .into(),
                    );
                }
                for p in &m.payloads {
                    if let Payload::Notification(n) = p {
                        if n.notify_type.is_error() {
                            let reason = match n.notify_type {
                                NotifyType::NoProposalChosen => Reason::NoProposalChosen(
                                    "the responder accepted none of our proposals".into(),
                                ),
                                NotifyType::AuthenticationFailed
                                | NotifyType::InvalidHashInformation
                                | NotifyType::PayloadMalformed
                                    if state == P1State::Sent5 =>
                                {
                                    Reason::AuthenticationFailed
                                }
                                t => Reason::Notified(t.log_name()),
                            };
                            self.phase1_failed(now, id, d.remote, reason);
                            return Ok(());
                        }
                    }
                }
                Ok(())
            }
            Parsed::Encrypted(e) => {
                let sa = &self.sas[&id];
                if sa.state != P1State::Established {
                    return Err("protected Informational before Phase 1 completed: ignored".into());
                }
                let keys = sa.keys.as_ref().expect("established");
                let mut iv = keys::phase2_iv(keys, &sa.p1_last_block, h.message_id)
                    .map_err(|e| e.to_string())?;
                let plain = keys::decrypt(keys, &mut iv, e.ciphertext)
                    .map_err(|e| format!("Informational: {e}"))?;
                let (m, padding) = isakmp::parse_decrypted(h, e.first_payload, &plain)
                    .map_err(|e| format!("Informational: does not parse after decryption: {e}"))?;
                let Some(Payload::Hash(got)) = m.payloads.first() else {
                    return Err("Informational does not start with HASH(1) (RFC 2409 s5.7)".into());
                };
                let rest =
                    wire::after_first(&plain, padding).ok_or("Informational: bad padding")?;
                let want =
                    keys::qm_hash(keys, h.message_id, None, rest).map_err(|e| e.to_string())?;
                if !tsunagi_crypto::ct_eq(&want, got) {
                    return Err("Informational: HASH(1) does not verify".into());
                }
                self.sas.get_mut(&id).expect("present").last_heard = now;
                for p in &m.payloads[1..] {
                    match p {
                        Payload::Notification(n) => self.notified(now, id, d, n),
                        Payload::Delete(del) => self.deleted(now, id, del),
                        _ => {}
                    }
                }
                Ok(())
            }
        }
    }

    fn notified(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>, n: &Notification) {
        match n.notify_type {
            NotifyType::RUThere => {
                let seq = n.data.clone();
                self.send_notification(now, id, ProtocolId::Isakmp, NotifyType::RUThereAck, &seq);
            }
            NotifyType::RUThereAck => {
                let sa = self.sas.get_mut(&id).expect("present");
                if let (Some((seq, ..)), Ok(got)) =
                    (sa.dpd_pending, <[u8; 4]>::try_from(&n.data[..]))
                {
                    if seq == u32::from_be_bytes(got) {
                        sa.dpd_pending = None;
                    }
                }
            }
            NotifyType::InitialContact => {}
            t if t.is_error() => {
                self.events.push_back(Event::Failed {
                    remote: d.remote,
                    reason: Reason::Notified(t.log_name()),
                });
            }
            _ => {}
        }
    }

    fn deleted(&mut self, now: Instant, id: IkeSaId, del: &Delete) {
        match del.protocol {
            ProtocolId::Isakmp => self.delete_ike(now, id, Reason::DeletedByPeer, false),
            ProtocolId::Esp => {
                for spi in &del.spis {
                    let Ok(spi) = <[u8; 4]>::try_from(&spi[..]) else {
                        continue;
                    };
                    let spi = u32::from_be_bytes(spi);
                    let remote = self.sas[&id].remote.ip();
                    let found = self
                        .children
                        .values()
                        .find(|c| {
                            c.spi_out == spi
                                && self
                                    .sas
                                    .get(&c.ike)
                                    .is_some_and(|s| s.remote.ip() == remote)
                        })
                        .map(|c| c.id);
                    if let Some(c) = found {
                        self.delete_child(now, c, Reason::DeletedByPeer, false);
                    }
                }
            }
            _ => {}
        }
    }

    /// A protected Informational with one payload (RFC 2409 s5.7).
    fn send_protected(&mut self, now: Instant, id: IkeSaId, payload: Payload) {
        let _ = now;
        let mid = self.random_u32(1);
        let Some(sa) = self.sas.get(&id) else {
            return;
        };
        let Some(keys) = sa.keys.as_ref() else {
            return;
        };
        let built = (|| {
            let rest = [payload];
            let chain = wire::chain_bytes(&rest).map_err(|e| e.to_string())?;
            let hash = keys::qm_hash(keys, mid, None, &chain).map_err(|e| e.to_string())?;
            let mut iv =
                keys::phase2_iv(keys, &sa.p1_last_block, mid).map_err(|e| e.to_string())?;
            let [payload] = rest;
            wire::encrypted_message(
                header(sa, ExchangeType::Informational, mid),
                &[Payload::Hash(hash), payload],
                keys,
                &mut iv,
            )
        })();
        if let Ok(msg) = built {
            let (l, r) = (sa.local, sa.remote);
            self.send(l, r, msg);
        }
    }

    fn send_notification(
        &mut self,
        now: Instant,
        id: IkeSaId,
        protocol: ProtocolId,
        what: NotifyType,
        data: &[u8],
    ) {
        let Some(sa) = self.sas.get(&id) else {
            return;
        };
        let spi = if protocol == ProtocolId::Isakmp {
            [sa.cky_i, sa.cky_r].concat()
        } else {
            Vec::new()
        };
        let n = Payload::Notification(Notification {
            doi: Doi::Ipsec,
            protocol,
            notify_type: what,
            spi,
            data: data.to_vec(),
        });
        self.send_protected(now, id, n);
    }

    /// A protected error notification (a Quick Mode we refuse).
    pub(crate) fn send_info_notify(&mut self, now: Instant, id: IkeSaId, what: NotifyType) {
        self.send_notification(now, id, ProtocolId::Esp, what, &[]);
    }

    /// Delete for an ESP SA: our inbound SPI (RFC 2408 s3.15).
    pub(crate) fn send_delete_esp(&mut self, now: Instant, id: IkeSaId, spi_in: u32) {
        self.send_protected(
            now,
            id,
            Payload::Delete(Delete {
                doi: Doi::Ipsec,
                protocol: ProtocolId::Esp,
                spi_size: 4,
                spis: vec![spi_in.to_be_bytes().to_vec()],
            }),
        );
    }

    /// Delete for the IKE SA itself: its two cookies.
    pub(crate) fn send_delete_isakmp(&mut self, now: Instant, id: IkeSaId) {
        let Some(sa) = self.sas.get(&id) else {
            return;
        };
        let spi = [sa.cky_i, sa.cky_r].concat();
        self.send_protected(
            now,
            id,
            Payload::Delete(Delete {
                doi: Doi::Ipsec,
                protocol: ProtocolId::Isakmp,
                spi_size: 16,
                spis: vec![spi],
            }),
        );
    }

    /// DPD (RFC 3706 s5.5): R-U-THERE when the peer has been quiet for
    /// `dpddelay`, again every `dpddelay`; no answer within `dpdtimeout`:
    /// dead.
    pub(crate) fn dpd_timer(&mut self, now: Instant, id: IkeSaId) {
        let Some(dpd) = self.config.dpd else {
            return;
        };
        let sa = &self.sas[&id];
        if !sa.peer_dpd || sa.state != P1State::Established {
            return;
        }
        match sa.dpd_pending {
            None if now >= sa.last_heard + dpd.delay => {
                let sa = self.sas.get_mut(&id).expect("present");
                sa.dpd_seq = sa.dpd_seq.wrapping_add(1).max(1);
                let seq = sa.dpd_seq;
                sa.dpd_pending = Some((seq, now, now + dpd.delay));
                self.send_notification(
                    now,
                    id,
                    ProtocolId::Isakmp,
                    NotifyType::RUThere,
                    &seq.to_be_bytes(),
                );
            }
            Some((_, first, _)) if now >= first + dpd.timeout => {
                self.events.push_back(Event::Failed {
                    remote: sa.remote,
                    reason: Reason::Timeout(Stage::Dpd),
                });
                self.delete_ike(now, id, Reason::DeadPeer, false);
                // Children of a dead peer go even when another IKE SA
                // exists: it is as dead.
                let remote = self.sas[&id].remote.ip();
                let gone: Vec<_> = self
                    .children
                    .values()
                    .filter(|c| {
                        self.sas
                            .get(&c.ike)
                            .is_some_and(|s| s.remote.ip() == remote)
                    })
                    .map(|c| c.id)
                    .collect();
                for c in gone {
                    self.delete_child(now, c, Reason::DeadPeer, false);
                }
                for s in self.sas.values_mut() {
                    if s.remote.ip() == remote {
                        s.dead = true;
                    }
                }
                if dpd.action == DpdAction::Clear {
                    self.want = None;
                } else if let Some(w) = self.want.as_mut() {
                    w.next_attempt = None;
                }
            }
            Some((seq, first, next)) if now >= next => {
                let _ = seq;
                let sa = self.sas.get_mut(&id).expect("present");
                sa.dpd_seq = sa.dpd_seq.wrapping_add(1).max(1);
                let seq = sa.dpd_seq;
                sa.dpd_pending = Some((seq, first, now + dpd.delay));
                self.send_notification(
                    now,
                    id,
                    ProtocolId::Isakmp,
                    NotifyType::RUThere,
                    &seq.to_be_bytes(),
                );
            }
            _ => {}
        }
    }
}
