//! Quick Mode (RFC 2409 s5.5): an IPsec SA pair under an IKE SA, with PFS
//! when `esp=` names a group, client IDs as traffic selectors (RFC 2407
//! s4.6.2), UDP-encapsulated modes and NAT-OA (RFC 3947 s5).
//!
//! ```text
//!  Initiator                          Responder
//!  HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] [, NAT-OAi, NAT-OAr] -->
//!           <-- HDR*, HASH(2), SA, Nr [, KE] [, IDci, IDcr] [, NAT-OA...]
//!  HDR*, HASH(3)                      -->
//! ```
//!
//! The responder installs the pair when it sends message 2, the initiator
//! when it sends message 3: each side can open the other's first ESP
//! packet, which follows that message on the same path.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tsunagi_crypto::dh::DhPrivate;

use super::engine::{header, Child, Engine, Outgoing, QState, Quick, KEEP_FINISHED};
use super::keys;
use super::phase1::NONCE_LEN;
use super::wire;
use super::{ChildId, ChildSa, Datagram, Event, IkeSaId, Reason, Stage, TrafficSelector};
use crate::esp::{InboundSa, Mode, OutboundSa, SaConfig};
use crate::isakmp::attr::{EncapsulationMode, LifeType};
use crate::isakmp::payload::{NatTNumbering, NotifyType, SaPayload};
use crate::isakmp::proposal::{choose_esp, Algorithms, Choice};
use crate::isakmp::{self, ExchangeType, Header, Message, Parsed, Payload};

/// ESP's protocol number in KEYMAT (RFC 2409 s5.5: the Protocol-ID).
const PROTO_ESP: u8 = 3;

fn encap_mode(mode: Mode, udp: bool, natt: Option<NatTNumbering>) -> EncapsulationMode {
    match (mode, udp, natt) {
        (Mode::Tunnel, false, _) => EncapsulationMode::Tunnel,
        (Mode::Transport, false, _) => EncapsulationMode::Transport,
        (Mode::Tunnel, true, Some(NatTNumbering::Rfc3947)) => EncapsulationMode::UdpTunnel,
        (Mode::Transport, true, Some(NatTNumbering::Rfc3947)) => EncapsulationMode::UdpTransport,
        (Mode::Tunnel, true, _) => EncapsulationMode::UdpTunnelDraft,
        (Mode::Transport, true, _) => EncapsulationMode::UdpTransportDraft,
    }
}

/// The lifetime in seconds an SA payload's chosen transform carries.
fn offered_lifetime(sa: &SaPayload) -> Option<Duration> {
    let t = sa.proposals.first()?.transforms.first()?;
    t.ipsec()
        .lifetimes
        .iter()
        .find(|(ty, _)| *ty == LifeType::Seconds)
        .map(|(_, s)| Duration::from_secs(*s))
}

/// What a decrypted Phase 2 message holds.
struct Opened {
    plain: Vec<u8>,
    message: Message,
    padding: usize,
    iv: Vec<u8>,
}

impl Engine {
    /// Our selectors for a new Quick Mode.
    fn selectors(&self, ike: IkeSaId) -> (TrafficSelector, TrafficSelector, bool) {
        let sa = &self.sas[&ike];
        let (l, r) = (sa.local.ip(), sa.remote.ip());
        match self.config.mode {
            Mode::Tunnel => (
                self.config.local_ts.unwrap_or(TrafficSelector::host(l)),
                self.config.remote_ts.unwrap_or(TrafficSelector::host(r)),
                self.config.local_ts.is_some() || self.config.remote_ts.is_some(),
            ),
            Mode::Transport => {
                let mut lt = TrafficSelector::host(l);
                let mut rt = TrafficSelector::host(r);
                if let Some(c) = self.config.local_ts {
                    (lt.protocol, lt.port) = (c.protocol, c.port);
                }
                if let Some(c) = self.config.remote_ts {
                    (rt.protocol, rt.port) = (c.protocol, c.port);
                }
                let ids = lt.protocol != 0 || rt.protocol != 0 || lt.port != 0 || rt.port != 0;
                (lt, rt, ids)
            }
        }
    }

    /// Sends Quick Mode message 1 on `ike`.
    pub(crate) fn start_quick_mode(
        &mut self,
        now: Instant,
        ike: IkeSaId,
        replaces: Option<ChildId>,
        ts: Option<(TrafficSelector, TrafficSelector)>,
    ) {
        let (mut local_ts, mut remote_ts, send_ids) = self.selectors(ike);
        if let Some((l, r)) = ts {
            (local_ts, remote_ts) = (l, r);
        }
        let mid = loop {
            let m = self.random_u32(1);
            if !self.sas[&ike].quick.iter().any(|q| q.mid == m) {
                break m;
            }
        };
        let spi_in = self.random_u32(256);
        let ni = self.random_bytes(NONCE_LEN);
        let group = self
            .config
            .esp
            .effective()
            .first()
            .and_then(|p| p.groups.iter().copied().find_map(wire::dh_group));
        let dh = group.map(|g| DhPrivate::generate(g, &*self.random));
        let sa = &self.sas[&ike];
        let udp = sa.natt.is_some() && (sa.nat_local || sa.nat_remote);
        let mode = encap_mode(self.config.mode, udp, sa.natt);
        let offer = wire::esp_sa_payload(
            &self.config.esp,
            spi_in,
            mode,
            self.config.lifetime.as_secs(),
        );
        let mut rest = vec![Payload::Sa(offer), Payload::Nonce(ni.clone())];
        if let Some(dh) = &dh {
            rest.push(Payload::KeyExchange(dh.public_value().to_vec()));
        }
        if send_ids {
            rest.push(Payload::Identification(wire::selector_payload(&local_ts)));
            rest.push(Payload::Identification(wire::selector_payload(&remote_ts)));
        }
        if udp && self.config.mode == Mode::Transport {
            let n = sa.natt.unwrap_or(NatTNumbering::Rfc3947);
            rest.push(Payload::NatOa {
                numbering: n,
                address: sa.local.ip(),
            });
            rest.push(Payload::NatOa {
                numbering: n,
                address: sa.remote.ip(),
            });
        }
        let built = (|| {
            let keys = sa.keys.as_ref().ok_or("no keys")?;
            let chain = wire::chain_bytes(&rest).map_err(|e| e.to_string())?;
            let hash = keys::qm_hash(keys, mid, None, &chain).map_err(|e| e.to_string())?;
            let mut iv =
                keys::phase2_iv(keys, &sa.p1_last_block, mid).map_err(|e| e.to_string())?;
            let mut payloads = vec![Payload::Hash(hash)];
            payloads.extend(rest);
            let msg = wire::encrypted_message(
                header(sa, ExchangeType::QuickMode, mid),
                &payloads,
                keys,
                &mut iv,
            )?;
            Ok::<_, String>((msg, iv))
        })();
        let (msg, iv) = match built {
            Ok(x) => x,
            Err(e) => {
                let remote = sa.remote;
                self.events.push_back(Event::Failed {
                    remote,
                    reason: Reason::Refused(format!("Quick Mode: {e}")),
                });
                return;
            }
        };
        let (l, r) = (sa.local, sa.remote);
        let sa = self.sas.get_mut(&ike).expect("present");
        sa.quick.push(Quick {
            mid,
            initiator: true,
            state: QState::Sent1,
            iv,
            spi_in,
            ni,
            nr: Vec::new(),
            dh,
            local_ts,
            remote_ts,
            mode,
            replaces,
            last_in: Vec::new(),
            out: Some(Outgoing::expecting_answer(
                msg.clone(),
                now,
                Stage::QuickMode(1),
            )),
            forget_at: None,
            child: None,
        });
        self.send(l, r, msg);
    }

    /// A Quick Mode message.
    pub(crate) fn quick_mode(
        &mut self,
        now: Instant,
        d: Datagram<'_>,
        h: Header,
    ) -> Result<(), String> {
        let id = self
            .sa_by_cookies(h.initiator_spi, h.responder_spi)
            .filter(|id| self.sas[id].state == super::engine::P1State::Established)
            .ok_or("Quick Mode message for no established IKE SA")?;
        if h.message_id == 0 {
            return Err("Quick Mode message with Message ID 0 (RFC 2409 s5.5)".into());
        }
        let sa = &self.sas[&id];
        match sa.quick.iter().find(|q| q.mid == h.message_id) {
            Some(q) if d.data == &q.last_in[..] => {
                if let Some(o) = &q.out {
                    let (l, r, data) = (sa.local, sa.remote, o.data.clone());
                    self.send(l, r, data);
                }
                Ok(())
            }
            Some(q) => match (q.initiator, q.state) {
                (true, QState::Sent1) => self.qm2(now, id, d, h),
                (false, QState::Sent2) => self.qm3(now, id, d, h),
                _ => Err("Quick Mode message not expected in this state".into()),
            },
            None => self.qm1(now, id, d, h),
        }
    }

    fn open_p2(
        &self,
        id: IkeSaId,
        iv: &[u8],
        d: &Datagram<'_>,
        h: Header,
        what: &str,
    ) -> Result<Opened, String> {
        let sa = &self.sas[&id];
        let keys = sa.keys.as_ref().ok_or("no keys")?;
        let Parsed::Encrypted(e) = isakmp::parse(d.data).map_err(|e| format!("{what}: {e}"))?
        else {
            return Err(format!("{what}: not encrypted"));
        };
        let mut iv = iv.to_vec();
        let plain =
            keys::decrypt(keys, &mut iv, e.ciphertext).map_err(|e| format!("{what}: {e}"))?;
        let (message, padding) = isakmp::parse_decrypted(h, e.first_payload, &plain)
            .map_err(|e| format!("{what}: does not parse after decryption: {e}"))?;
        Ok(Opened {
            plain: plain.to_vec(),
            message,
            padding,
            iv,
        })
    }

    /// Opens Quick Mode message `n` and checks that it starts with the
    /// HASH(n) `expect` computes from the keys and the octets after the HASH
    /// payload (RFC 2409 s5.5).
    fn open_verified(
        &self,
        id: IkeSaId,
        iv: &[u8],
        d: &Datagram<'_>,
        h: Header,
        n: u8,
        expect: impl FnOnce(&keys::Phase1Keys, &[u8]) -> Result<Vec<u8>, keys::KeyError>,
    ) -> Result<Opened, String> {
        let what = format!("Quick Mode message {n}");
        let o = self.open_p2(id, iv, d, h, &what)?;
        let keys = self.sas[&id].keys.as_ref().ok_or("no keys")?;
        let Some(Payload::Hash(got)) = o.message.payloads.first() else {
            return Err(format!(
                "{what} does not start with HASH({n}) (RFC 2409 s5.5)"
            ));
        };
        let rest = wire::after_first(&o.plain, o.padding).ok_or(format!("{what}: bad padding"))?;
        let want = expect(keys, rest).map_err(|e| e.to_string())?;
        if !tsunagi_crypto::ct_eq(&want, got) {
            return Err(format!("{what}: HASH({n}) does not verify"));
        }
        Ok(o)
    }

    /// Responder: message 1; message 2; the SA pair installed.
    fn qm1(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>, h: Header) -> Result<(), String> {
        let mid = h.message_id;
        let iv = {
            let sa = &self.sas[&id];
            keys::phase2_iv(sa.keys.as_ref().ok_or("no keys")?, &sa.p1_last_block, mid)
                .map_err(|e| e.to_string())?
        };
        let o = self.open_verified(id, &iv, &d, h, 1, |keys, rest| {
            keys::qm_hash(keys, mid, None, rest)
        })?;
        let sa = &self.sas[&id];
        let m = &o.message;
        let offer = wire::sa_of(m)
            .cloned()
            .ok_or("Quick Mode message 1 has no SA payload")?;
        let ni = wire::nonce_of(m)
            .map(<[u8]>::to_vec)
            .ok_or("Quick Mode message 1 has no Nonce payload")?;
        let ke = wire::ke_of(m).map(<[u8]>::to_vec);
        let ids: Vec<_> = m
            .payloads
            .iter()
            .filter_map(|p| match p {
                Payload::Identification(i) => Some(i.clone()),
                _ => None,
            })
            .collect();
        // NAT-OAi: the initiator's original address.
        let peer_oa = wire::nat_oas(m).first().copied();
        let (l_ip, r_ip) = (sa.local.ip(), sa.remote.ip());
        let r_endpoint = sa.remote;
        let udp_expected = sa.natt.is_some() && (sa.nat_local || sa.nat_remote);

        let refuse = |this: &mut Engine, iv: Vec<u8>, notify: NotifyType, reason: Reason| {
            let _ = iv;
            this.send_info_notify(now, id, notify);
            let remote = this.sas[&id].remote;
            this.events.push_back(Event::Failed { remote, reason });
            Ok(())
        };
        let (reply, algorithms, mode) = match choose_esp(&self.config.esp, &offer) {
            Choice::Chosen {
                reply,
                algorithms,
                mode: Some(mode),
            } if mode.tunnel() == (self.config.mode == Mode::Tunnel)
                && mode.udp() == udp_expected
                && wire::esp_transform(algorithms.encryption, algorithms.integrity).is_some() =>
            {
                (reply, algorithms, mode)
            }
            _ => {
                let what = format!("peer offered {}", wire::describe_esp(&offer));
                return refuse(
                    self,
                    o.iv,
                    NotifyType::NoProposalChosen,
                    Reason::NoProposalChosen(what),
                );
            }
        };
        // Selectors: the initiator's (the peer's) then ours.
        let (remote_ts, local_ts) = match &ids[..] {
            [] => (TrafficSelector::host(r_ip), TrafficSelector::host(l_ip)),
            [ci, cr] => match (wire::selector_of(ci), wire::selector_of(cr)) {
                (Some(a), Some(b)) => (a, b),
                _ => {
                    return refuse(
                        self,
                        o.iv,
                        NotifyType::InvalidIdInformation,
                        Reason::Refused("client IDs of a type not supported (ranges?)".into()),
                    )
                }
            },
            _ => {
                return Err(format!(
                    "Quick Mode message 1 has {} ID payloads (RFC 2409 s5.5: none or two)",
                    ids.len()
                ))
            }
        };
        if let Err(e) = self.check_selectors(local_ts, remote_ts, r_ip, l_ip) {
            return refuse(
                self,
                o.iv,
                NotifyType::InvalidIdInformation,
                Reason::Refused(e),
            );
        }
        let (dh, g_qm) = match (algorithms.group, ke) {
            (Some(g), Some(ke)) => {
                let group = wire::dh_group(g).ok_or("PFS group not implemented")?;
                let dh = DhPrivate::generate(group, &*self.random);
                let g_qm = dh
                    .shared_secret(&ke)
                    .map_err(|e| format!("Quick Mode message 1: KE: {e}"))?;
                (Some(dh), Some(g_qm))
            }
            (Some(_), None) => {
                return Err("Quick Mode message 1: PFS group chosen but no KE payload".into())
            }
            (None, Some(_)) => {
                return Err("Quick Mode message 1: KE payload without a PFS group".into())
            }
            (None, None) => (None, None),
        };
        let spi_out = spi_of(&offer).ok_or("Quick Mode message 1: ESP SPI is not 4 octets")?;
        let spi_in = self.random_u32(256);
        let nr = self.random_bytes(NONCE_LEN);
        let mut reply = reply;
        reply.proposals[0].spi = spi_in.to_be_bytes().to_vec();
        let lifetime =
            offered_lifetime(&reply).map_or(self.config.lifetime, |l| l.min(self.config.lifetime));
        let sa = &self.sas[&id];
        let mut rest = vec![Payload::Sa(reply), Payload::Nonce(nr.clone())];
        if let Some(dh) = &dh {
            rest.push(Payload::KeyExchange(dh.public_value().to_vec()));
        }
        for i in &ids {
            rest.push(Payload::Identification(i.clone()));
        }
        if peer_oa.is_some() {
            let n = sa.natt.unwrap_or(NatTNumbering::Rfc3947);
            rest.push(Payload::NatOa {
                numbering: n,
                address: sa.remote.ip(),
            });
            rest.push(Payload::NatOa {
                numbering: n,
                address: sa.local.ip(),
            });
        }
        let keys = sa.keys.as_ref().expect("established");
        let chain = wire::chain_bytes(&rest).map_err(|e| e.to_string())?;
        let hash = keys::qm_hash(keys, mid, Some(&ni), &chain).map_err(|e| e.to_string())?;
        let mut payloads = vec![Payload::Hash(hash)];
        payloads.extend(rest);
        let mut iv = o.iv;
        let msg = wire::encrypted_message(
            header(sa, ExchangeType::QuickMode, mid),
            &payloads,
            keys,
            &mut iv,
        )?;
        // A new SA replaces one of the same peer: its address and port,
        // since behind one NAT two clients may have the same private
        // address (the selectors) and differ only in the NAT's port.
        let replaces = self
            .children
            .values()
            .find(|c| {
                c.replaced_by.is_none()
                    && c.local_ts == local_ts
                    && c.remote_ts == remote_ts
                    && self.sas.get(&c.ike).is_some_and(|s| s.remote == r_endpoint)
            })
            .map(|c| c.id);
        let child = self.install(
            now,
            id,
            Install {
                algorithms,
                mode,
                spi_in,
                spi_out,
                ni: &ni,
                nr: &nr,
                g_qm: g_qm.as_deref().map(|g| &g[..]),
                local_ts,
                remote_ts,
                replaces,
                peer_oa,
                lifetime,
                initiator: false,
            },
        )?;
        let sa = self.sas.get_mut(&id).expect("present");
        sa.quick.push(Quick {
            mid,
            initiator: false,
            state: QState::Sent2,
            iv,
            spi_in,
            ni,
            nr,
            dh: None,
            local_ts,
            remote_ts,
            mode,
            replaces,
            last_in: d.data.to_vec(),
            out: Some(Outgoing::expecting_answer(
                msg.clone(),
                now,
                Stage::QuickMode(2),
            )),
            forget_at: None,
            child: Some(child),
        });
        let (l, r) = (sa.local, sa.remote);
        self.send(l, r, msg);
        Ok(())
    }

    /// Whether a peer's selectors are within what we are configured for
    /// (no narrowing: RFC 2409 leaves it out, and so do we).
    fn check_selectors(
        &self,
        local_ts: TrafficSelector,
        remote_ts: TrafficSelector,
        remote_ip: IpAddr,
        local_ip: IpAddr,
    ) -> Result<(), String> {
        let host = |t: &TrafficSelector| t.prefix == if t.addr.is_ipv4() { 32 } else { 128 };
        let ok = match self.config.mode {
            Mode::Tunnel => {
                let l = self
                    .config
                    .local_ts
                    .unwrap_or(TrafficSelector::host(local_ip));
                let r = self
                    .config
                    .remote_ts
                    .unwrap_or(TrafficSelector::host(remote_ip));
                l.covers(&local_ts) && r.covers(&remote_ts)
            }
            Mode::Transport => {
                // Behind a NAT the peer names its private address: any
                // host, with the configured protocol and port.
                let pp = |c: Option<TrafficSelector>, t: &TrafficSelector| {
                    c.is_none_or(|c| {
                        (c.protocol == 0 || c.protocol == t.protocol)
                            && (c.port == 0 || c.port == t.port)
                    })
                };
                host(&local_ts)
                    && host(&remote_ts)
                    && pp(self.config.local_ts, &local_ts)
                    && pp(self.config.remote_ts, &remote_ts)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "peer's selectors {remote_ts} === {local_ts} are not within ours"
            ))
        }
    }

    /// Initiator: message 2; message 3; the SA pair installed.
    fn qm2(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>, h: Header) -> Result<(), String> {
        let mid = h.message_id;
        let q = self.sas[&id]
            .quick
            .iter()
            .find(|q| q.mid == mid)
            .expect("looked up");
        let (iv, ni) = (q.iv.clone(), q.ni.clone());
        let o = self.open_verified(id, &iv, &d, h, 2, |keys, rest| {
            keys::qm_hash(keys, mid, Some(&ni), rest)
        })?;
        let sa = &self.sas[&id];
        let q = sa.quick.iter().find(|q| q.mid == mid).expect("looked up");
        let keys = sa.keys.as_ref().expect("established");
        let m = &o.message;
        let chosen = wire::sa_of(m)
            .cloned()
            .ok_or("Quick Mode message 2 has no SA payload")?;
        let nr = wire::nonce_of(m)
            .map(<[u8]>::to_vec)
            .ok_or("Quick Mode message 2 has no Nonce payload")?;
        let ke = wire::ke_of(m).map(<[u8]>::to_vec);
        // NAT-OAi then NAT-OAr: the responder's original address is the
        // second.
        let peer_oa = wire::nat_oas(m).last().copied();
        let one = chosen.proposals.len() == 1 && chosen.proposals[0].transforms.len() == 1;
        let (algorithms, mode) = match choose_esp(&self.config.esp, &chosen) {
            Choice::Chosen {
                algorithms,
                mode: Some(mode),
                ..
            } if one && mode == q.mode => (algorithms, mode),
            _ => {
                let what = wire::describe_esp(&chosen);
                self.quick_failed(
                    now,
                    id,
                    mid,
                    Reason::Refused(format!(
                        "the responder chose an ESP transform we did not offer: {what}"
                    )),
                );
                return Ok(());
            }
        };
        let g_qm = match (algorithms.group, ke, &q.dh) {
            (Some(_), Some(ke), Some(dh)) => Some(
                dh.shared_secret(&ke)
                    .map_err(|e| format!("Quick Mode message 2: KE: {e}"))?,
            ),
            (None, None, _) => None,
            _ => return Err("Quick Mode message 2: KE payload and PFS group do not agree".into()),
        };
        let spi_out = spi_of(&chosen).ok_or("Quick Mode message 2: ESP SPI is not 4 octets")?;
        let lifetime =
            offered_lifetime(&chosen).map_or(self.config.lifetime, |l| l.min(self.config.lifetime));
        let hash3 = keys::qm_hash3(keys, mid, &q.ni, &nr).map_err(|e| e.to_string())?;
        let mut iv = o.iv;
        let msg = wire::encrypted_message(
            header(sa, ExchangeType::QuickMode, mid),
            &[Payload::Hash(hash3)],
            keys,
            &mut iv,
        )?;
        let (ni, spi_in, local_ts, remote_ts, replaces) =
            (q.ni.clone(), q.spi_in, q.local_ts, q.remote_ts, q.replaces);
        let (l, r) = (sa.local, sa.remote);
        self.send(l, r, msg.clone());
        let installed = self.install(
            now,
            id,
            Install {
                algorithms,
                mode,
                spi_in,
                spi_out,
                ni: &ni,
                nr: &nr,
                g_qm: g_qm.as_deref().map(|g| &g[..]),
                local_ts,
                remote_ts,
                replaces,
                peer_oa,
                lifetime,
                initiator: true,
            },
        );
        let sa = self.sas.get_mut(&id).expect("present");
        let q = sa
            .quick
            .iter_mut()
            .find(|q| q.mid == mid)
            .expect("looked up");
        q.state = QState::Done;
        q.iv = iv;
        q.nr = nr;
        q.dh = None;
        q.last_in = d.data.to_vec();
        q.out = Some(Outgoing::final_answer(msg, Stage::QuickMode(3)));
        q.forget_at = Some(now + KEEP_FINISHED);
        sa.quick_failures = 0;
        installed.map(|_| ())
    }

    /// Responder: message 3 confirms the pair installed at message 2.
    fn qm3(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>, h: Header) -> Result<(), String> {
        let mid = h.message_id;
        let q = self.sas[&id]
            .quick
            .iter()
            .find(|q| q.mid == mid)
            .expect("looked up");
        let (iv, ni, nr) = (q.iv.clone(), q.ni.clone(), q.nr.clone());
        self.open_verified(id, &iv, &d, h, 3, |keys, _| {
            keys::qm_hash3(keys, mid, &ni, &nr)
        })?;
        let sa = self.sas.get_mut(&id).expect("present");
        sa.quick_failures = 0;
        let q = sa
            .quick
            .iter_mut()
            .find(|q| q.mid == mid)
            .expect("looked up");
        q.state = QState::Done;
        q.out = None;
        q.last_in = d.data.to_vec();
        q.forget_at = Some(now + KEEP_FINISHED);
        Ok(())
    }

    /// Keys the SA pair (KEYMAT, RFC 2409 s5.5) and hands it to the driver.
    fn install(&mut self, now: Instant, ike: IkeSaId, i: Install<'_>) -> Result<ChildId, String> {
        let (transform, enc_len, int_len) =
            wire::esp_transform(i.algorithms.encryption, i.algorithms.integrity)
                .ok_or("ESP transform not implemented")?;
        let sa = &self.sas[&ike];
        let keys = sa.keys.as_ref().expect("established");
        let len = enc_len + int_len;
        let km_in = keys::keymat(keys, i.g_qm, PROTO_ESP, i.spi_in, i.ni, i.nr, len)
            .map_err(|e| e.to_string())?;
        let km_out = keys::keymat(keys, i.g_qm, PROTO_ESP, i.spi_out, i.ni, i.nr, len)
            .map_err(|e| e.to_string())?;
        let esp_mode = if i.mode.tunnel() {
            Mode::Tunnel
        } else {
            Mode::Transport
        };
        let mut cfg_in = SaConfig::new(i.spi_in, transform, esp_mode);
        cfg_in.udp_encap = i.mode.udp();
        let mut cfg_out = SaConfig::new(i.spi_out, transform, esp_mode);
        cfg_out.udp_encap = i.mode.udp();
        let inbound = InboundSa::new(cfg_in, &km_in[..enc_len], &km_in[enc_len..])
            .map_err(|e| e.to_string())?;
        let outbound = OutboundSa::new(
            cfg_out,
            &km_out[..enc_len],
            &km_out[enc_len..],
            self.random.clone(),
        )
        .map_err(|e| e.to_string())?;
        let (local, remote) = (sa.local, sa.remote);
        let id = ChildId(self.next_id());
        let margin = self.config.rekey_margin.min(i.lifetime / 2);
        // The initiator rekeys first; the responder's later rekey time is
        // a fallback for an initiator that does not.
        let rekey_at = if i.initiator {
            now + i.lifetime - margin
        } else {
            now + i.lifetime - margin / 2
        };
        self.children.insert(
            id,
            Child {
                id,
                ike,
                spi_in: i.spi_in,
                spi_out: i.spi_out,
                local_ts: i.local_ts,
                remote_ts: i.remote_ts,
                established: now,
                rekey_at: Some(rekey_at),
                expire_at: now + i.lifetime,
                replaced_by: None,
                delete_at: None,
                rekeying: false,
            },
        );
        if let Some(old) = i.replaces.and_then(|o| self.children.get_mut(&o)) {
            old.replaced_by = Some(id);
            old.rekey_at = None;
            old.delete_at = Some(now + super::engine::REPLACED_GRACE_MAX);
        }
        self.events.push_back(Event::ChildUp(Box::new(ChildSa {
            id,
            ike,
            replaces: i.replaces,
            inbound,
            outbound,
            local,
            remote,
            udp_encap: i.mode.udp(),
            local_ts: i.local_ts,
            remote_ts: i.remote_ts,
            peer_original_addr: i.peer_oa,
            algorithms: i.algorithms,
        })));
        Ok(id)
    }
}

/// What [`Engine::install`] needs.
struct Install<'a> {
    algorithms: Algorithms,
    mode: EncapsulationMode,
    spi_in: u32,
    spi_out: u32,
    ni: &'a [u8],
    nr: &'a [u8],
    g_qm: Option<&'a [u8]>,
    local_ts: TrafficSelector,
    remote_ts: TrafficSelector,
    replaces: Option<ChildId>,
    peer_oa: Option<IpAddr>,
    lifetime: Duration,
    initiator: bool,
}

/// The 4-octet SPI of an SA payload's (first) proposal.
fn spi_of(sa: &SaPayload) -> Option<u32> {
    let spi = &sa.proposals.first()?.spi;
    Some(u32::from_be_bytes(spi.as_slice().try_into().ok()?))
}
