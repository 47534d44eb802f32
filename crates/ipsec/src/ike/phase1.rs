//! Main Mode with pre-shared keys (RFC 2409 s5, s5.4), with NAT-T
//! detection and port floating (RFC 3947 s3, s4) and the DPD vendor ID
//! (RFC 3706 s4).
//!
//! ```text
//!  Initiator                         Responder
//!  HDR, SA, VID                 -->
//!                               <--  HDR, SA, VID
//!  HDR, KE, Ni, NAT-D, NAT-D    -->
//!                               <--  HDR, KE, Nr, NAT-D, NAT-D
//!  HDR*, IDii, HASH_I [, N(IC)] -->  (on 4500 when a NAT was found)
//!                               <--  HDR*, IDir, HASH_R
//! ```

use std::net::SocketAddr;
use std::time::Instant;

use tsunagi_crypto::dh::DhPrivate;

use super::engine::{header, Engine, IkeSa, Outgoing, P1State};
use super::keys::{self, Phase1Input};
use super::wire;
use super::{Datagram, Event, Identity, IkeSaId, Reason, Stage, NAT_T_PORT};
use crate::isakmp::attr::AuthMethod;
use crate::isakmp::payload::{Doi, NatTNumbering, Notification, NotifyType, ProtocolId};
use crate::isakmp::proposal::{choose_ike, Choice};
use crate::isakmp::vendor::KnownVendor;
use crate::isakmp::{self, ExchangeType, Header, Message, Parsed, Payload, PayloadType};

/// Nonce length (RFC 2409 s5: 8 to 256 octets; strongSwan sends 32).
pub(crate) const NONCE_LEN: usize = 32;

/// Which NAT-T numbering a peer's vendor IDs ask for, and whether it does
/// DPD.
fn peer_vendors(payloads: &[Payload]) -> (Option<NatTNumbering>, bool) {
    let mut rfc = false;
    let mut draft = false;
    let mut dpd = false;
    for p in payloads {
        if let Payload::VendorId(v) = p {
            match KnownVendor::identify(v) {
                Some(KnownVendor::NatTRfc3947) => rfc = true,
                Some(
                    KnownVendor::NatTDraft02 | KnownVendor::NatTDraft02N | KnownVendor::NatTDraft03,
                ) => draft = true,
                Some(KnownVendor::Dpd) => dpd = true,
                _ => {}
            }
        }
    }
    let natt = if rfc {
        Some(NatTNumbering::Rfc3947)
    } else if draft {
        Some(NatTNumbering::Draft)
    } else {
        None
    };
    (natt, dpd)
}

fn natt_vendor(n: NatTNumbering) -> Payload {
    Payload::VendorId(
        match n {
            NatTNumbering::Rfc3947 => KnownVendor::NatTRfc3947,
            NatTNumbering::Draft => KnownVendor::NatTDraft02N,
        }
        .id()
        .to_vec(),
    )
}

fn clear(d: &Datagram<'_>, what: &str) -> Result<Message, String> {
    match isakmp::parse(d.data).map_err(|e| format!("{what}: {e}"))? {
        Parsed::Message(m) => {
            if let isakmp::Disposition::Discard { payload_type, .. } = m.disposition() {
                return Err(format!(
                    "{what}: unknown payload type {payload_type} (RFC 2408 s5.2)"
                ));
            }
            Ok(m)
        }
        Parsed::Encrypted(_) => Err(format!("{what}: encrypted, expected in the clear")),
    }
}

fn nat_ds(m: &Message) -> Vec<&[u8]> {
    m.payloads
        .iter()
        .filter_map(|p| match p {
            Payload::NatD { hash, .. } => Some(&hash[..]),
            _ => None,
        })
        .collect()
}

impl Engine {
    /// Sends Main Mode message 1 to `remote`.
    pub(crate) fn start_main_mode(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        replaces: Option<IkeSaId>,
    ) {
        let mut cky_i = [0u8; 8];
        while cky_i == [0; 8] {
            self.random.fill(&mut cky_i);
        }
        let lifetime = self.config.ike_lifetime.as_secs();
        let sa_payload = wire::ike_sa_payload(&self.config.ike, lifetime);
        let id = self.new_sa(now, true, cky_i, [0; 8], local, remote, P1State::Sent1);
        let sa_body = match wire::body(&Payload::Sa(sa_payload.clone())) {
            Ok(b) => b,
            Err(e) => {
                self.phase1_failed(
                    now,
                    id,
                    remote,
                    Reason::Refused(format!("our SA payload: {e}")),
                );
                return;
            }
        };
        let mut payloads = vec![Payload::Sa(sa_payload)];
        for v in [
            KnownVendor::NatTRfc3947,
            KnownVendor::NatTDraft03,
            KnownVendor::NatTDraft02N,
            KnownVendor::NatTDraft02,
            KnownVendor::Dpd,
        ] {
            payloads.push(Payload::VendorId(v.id().to_vec()));
        }
        let sa = self.sas.get_mut(&id).expect("new");
        sa.sa_i_b = sa_body;
        sa.replaces = replaces;
        let h = header(sa, ExchangeType::IdentityProtection, 0);
        match wire::clear_message(h, payloads) {
            Ok(msg) => {
                sa.out = Some(Outgoing::expecting_answer(
                    msg.clone(),
                    now,
                    Stage::MainMode(1),
                ));
                self.send(local, remote, msg);
            }
            Err(e) => self.phase1_failed(now, id, remote, Reason::Refused(e)),
        }
    }

    /// A Main Mode message.
    pub(crate) fn main_mode(
        &mut self,
        now: Instant,
        d: Datagram<'_>,
        h: Header,
    ) -> Result<(), String> {
        let Some(id) = self.sa_by_cookies(h.initiator_spi, h.responder_spi) else {
            if h.responder_spi != [0; 8] {
                return Err("Main Mode message for no IKE SA we know (cookies unknown)".into());
            }
            return self.mm1(now, d, h);
        };
        let sa = &self.sas[&id];
        if d.data == &sa.last_in[..] {
            // The peer did not get our answer: send it again.
            if let Some(o) = &sa.out {
                let (l, r, data) = (sa.local, sa.remote, o.data.clone());
                self.send(l, r, data);
            }
            return Ok(());
        }
        let result = match (sa.state, sa.initiator) {
            (P1State::Sent1, true) => self.mm2(now, id, d, h),
            (P1State::Sent3, true) => self.mm4(now, id, d),
            (P1State::Sent5, true) => self.mm6(now, id, d, h),
            (P1State::Sent2, false) => self.mm3(now, id, d),
            (P1State::Sent4, false) => self.mm5(now, id, d, h),
            _ => Err("Main Mode message not expected in this state (dropped)".into()),
        };
        if result.is_ok() {
            if let Some(sa) = self.sas.get_mut(&id) {
                sa.last_in = d.data.to_vec();
            }
        }
        result
    }

    /// Responder: message 1.
    fn mm1(&mut self, now: Instant, d: Datagram<'_>, h: Header) -> Result<(), String> {
        let m = clear(&d, "Main Mode message 1")?;
        let Some(offer) = wire::sa_of(&m) else {
            return Err("Main Mode message 1 has no SA payload".into());
        };
        if self.half_open() >= super::engine::MAX_HALF_OPEN {
            return Err(format!(
                "{} half-open IKE SAs already: Main Mode message 1 dropped",
                super::engine::MAX_HALF_OPEN
            ));
        }
        let mut cky_r = [0u8; 8];
        while cky_r == [0; 8] {
            self.random.fill(&mut cky_r);
        }
        let (reply, algorithms) =
            match choose_ike(&self.config.ike, AuthMethod::PreSharedKey, offer) {
                Choice::Chosen {
                    reply, algorithms, ..
                } if algorithms.group.and_then(wire::dh_group).is_some()
                    && algorithms.integrity.is_some_and(wire::prf_supported) =>
                {
                    (reply, algorithms)
                }
                _ => {
                    let offered = wire::describe_ike(offer);
                    self.send_clear_notify(
                        d.local,
                        d.remote,
                        h.initiator_spi,
                        cky_r,
                        NotifyType::NoProposalChosen,
                    );
                    self.events.push_back(Event::Failed {
                        remote: d.remote,
                        reason: Reason::NoProposalChosen(format!("peer offered {offered}")),
                    });
                    return Ok(());
                }
            };
        let sa_i_b = wire::raw_body(
            wire::first_type(&m),
            &d.data[isakmp::HEADER_LEN..],
            PayloadType::SecurityAssociation,
        )
        .ok_or("Main Mode message 1: SA payload not found in the chain")?
        .to_vec();
        let (natt, dpd) = peer_vendors(&m.payloads);
        let id = self.new_sa(
            now,
            false,
            h.initiator_spi,
            cky_r,
            d.local,
            d.remote,
            P1State::Sent2,
        );
        let sa = self.sas.get_mut(&id).expect("new");
        sa.algorithms = Some(algorithms);
        sa.sa_i_b = sa_i_b;
        sa.natt = natt;
        sa.peer_dpd = dpd;
        sa.last_in = d.data.to_vec();
        let mut payloads = vec![Payload::Sa(reply)];
        if let Some(n) = natt {
            payloads.push(natt_vendor(n));
        }
        payloads.push(Payload::VendorId(KnownVendor::Dpd.id().to_vec()));
        let msg = wire::clear_message(header(sa, ExchangeType::IdentityProtection, 0), payloads)?;
        sa.out = Some(Outgoing::final_answer(msg.clone(), Stage::MainMode(2)));
        self.send(d.local, d.remote, msg);
        Ok(())
    }

    /// Initiator: message 2 (the responder's choice).
    fn mm2(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>, h: Header) -> Result<(), String> {
        let m = clear(&d, "Main Mode message 2")?;
        let Some(chosen) = wire::sa_of(&m) else {
            return Err("Main Mode message 2 has no SA payload".into());
        };
        let one = chosen.proposals.len() == 1 && chosen.proposals[0].transforms.len() == 1;
        let algorithms = match choose_ike(&self.config.ike, AuthMethod::PreSharedKey, chosen) {
            Choice::Chosen { algorithms, .. } if one => algorithms,
            _ => {
                let what = wire::describe_ike(chosen);
                let remote = d.remote;
                self.phase1_failed(
                    now,
                    id,
                    remote,
                    Reason::Refused(format!(
                        "the responder chose a transform we did not offer: {what}"
                    )),
                );
                return Ok(());
            }
        };
        let group = algorithms
            .group
            .and_then(wire::dh_group)
            .ok_or("chosen DH group not implemented")?;
        let dh = DhPrivate::generate(group, &*self.random);
        let ni = self.random_bytes(NONCE_LEN);
        let (natt, dpd) = peer_vendors(&m.payloads);
        let force = self.config.force_encap;
        let fake = self.random_bytes(64);
        let sa = self.sas.get_mut(&id).expect("present");
        sa.cky_r = h.responder_spi;
        sa.algorithms = Some(algorithms);
        sa.natt = natt;
        sa.peer_dpd = dpd;
        sa.g_xi = dh.public_value().to_vec();
        sa.dh = Some(dh);
        sa.ni = ni.clone();
        let mut payloads = vec![Payload::KeyExchange(sa.g_xi.clone()), Payload::Nonce(ni)];
        if let Some(n) = natt {
            push_nat_ds(sa, n, force, &fake, &mut payloads);
        }
        let msg = wire::clear_message(header(sa, ExchangeType::IdentityProtection, 0), payloads)?;
        sa.state = P1State::Sent3;
        sa.out = Some(Outgoing::expecting_answer(
            msg.clone(),
            now,
            Stage::MainMode(3),
        ));
        let (l, r) = (sa.local, sa.remote);
        self.send(l, r, msg);
        Ok(())
    }

    /// Responder: message 3 (KE, Ni, NAT-D).
    fn mm3(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>) -> Result<(), String> {
        let _ = now;
        let m = clear(&d, "Main Mode message 3")?;
        let ke = wire::ke_of(&m)
            .map(<[u8]>::to_vec)
            .ok_or("Main Mode message 3 has no KE payload")?;
        let ni = wire::nonce_of(&m)
            .map(<[u8]>::to_vec)
            .ok_or("Main Mode message 3 has no Nonce payload")?;
        check_nonce(&ni, "Main Mode message 3")?;
        let force = self.config.force_encap;
        let fake = self.random_bytes(64);
        let nr = self.random_bytes(NONCE_LEN);
        let psk = self.config.psk.clone();
        let sa = self.sas.get_mut(&id).expect("present");
        let algorithms = sa.algorithms.expect("chosen at MM1");
        let group = algorithms
            .group
            .and_then(wire::dh_group)
            .expect("checked at MM1");
        let dh = DhPrivate::generate(group, &*self.random);
        let g_xy = dh
            .shared_secret(&ke)
            .map_err(|e| format!("Main Mode message 3: KE: {e}"))?;
        sa.g_xi = ke;
        sa.ni = ni;
        sa.g_xr = dh.public_value().to_vec();
        sa.nr = nr.clone();
        let keys = keys::phase1_psk(&input(sa, psk.expose(), &g_xy)).map_err(|e| e.to_string())?;
        sa.iv = keys.iv.clone();
        sa.keys = Some(keys);
        // RFC 3947 s3.2: the first NAT-D is the hash of our address as the
        // initiator sent to it; the others of its own addresses.
        let hash = algorithms.integrity.expect("IKE has a hash");
        let ds = nat_ds(&m);
        if let (Some(n), false) = (sa.natt, ds.is_empty()) {
            let ours = wire::nat_d(hash, sa.cky_i, sa.cky_r, d.local);
            let theirs = wire::nat_d(hash, sa.cky_i, sa.cky_r, d.remote);
            sa.nat_local = ds[0] != &ours[..] || force;
            sa.nat_remote = !ds[1..].contains(&&theirs[..]);
            let _ = n;
        } else if !ds.is_empty() {
            // NAT-D without a NAT-T vendor ID: ignore, as strongSwan does.
        }
        let mut payloads = vec![Payload::KeyExchange(sa.g_xr.clone()), Payload::Nonce(nr)];
        if let Some(n) = sa.natt {
            push_nat_ds(sa, n, force, &fake, &mut payloads);
        }
        let msg = wire::clear_message(header(sa, ExchangeType::IdentityProtection, 0), payloads)?;
        sa.state = P1State::Sent4;
        sa.out = Some(Outgoing::final_answer(msg.clone(), Stage::MainMode(4)));
        let (l, r) = (sa.local, sa.remote);
        self.send(l, r, msg);
        Ok(())
    }

    /// Initiator: message 4; keys; message 5.
    fn mm4(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>) -> Result<(), String> {
        let m = clear(&d, "Main Mode message 4")?;
        let ke = wire::ke_of(&m)
            .map(<[u8]>::to_vec)
            .ok_or("Main Mode message 4 has no KE payload")?;
        let nr = wire::nonce_of(&m)
            .map(<[u8]>::to_vec)
            .ok_or("Main Mode message 4 has no Nonce payload")?;
        check_nonce(&nr, "Main Mode message 4")?;
        let psk = self.config.psk.clone();
        let force = self.config.force_encap;
        let local_id = self.local_identity(self.sas[&id].local);
        let initial_contact = !self.sas.values().any(|o| {
            o.id != id
                && !o.dead
                && o.state == P1State::Established
                && o.remote.ip() == d.remote.ip()
        });
        let sa = self.sas.get_mut(&id).expect("present");
        let algorithms = sa.algorithms.expect("chosen at MM2");
        let g_xy = sa
            .dh
            .as_ref()
            .expect("made at MM2")
            .shared_secret(&ke)
            .map_err(|e| format!("Main Mode message 4: KE: {e}"))?;
        sa.g_xr = ke;
        sa.nr = nr;
        let keys = keys::phase1_psk(&input(sa, psk.expose(), &g_xy)).map_err(|e| e.to_string())?;
        sa.iv = keys.iv.clone();
        let hash = algorithms.integrity.expect("IKE has a hash");
        let ds = nat_ds(&m);
        if sa.natt.is_some() && !ds.is_empty() {
            let ours = wire::nat_d(hash, sa.cky_i, sa.cky_r, sa.local);
            let theirs = wire::nat_d(hash, sa.cky_i, sa.cky_r, sa.remote);
            sa.nat_local = ds[0] != &ours[..] || force;
            sa.nat_remote = !ds[1..].contains(&&theirs[..]);
            if sa.nat_local || sa.nat_remote {
                // RFC 3947 s4: float to 4500 from message 5 on.
                sa.local.set_port(NAT_T_PORT);
                sa.remote.set_port(NAT_T_PORT);
            }
        }
        let id_payload = Payload::Identification(wire::identity_payload(&local_id));
        let id_b = wire::body(&id_payload).map_err(|e| e.to_string())?;
        let hash_i = keys::phase1_hash(
            &keys,
            &input(sa, psk.expose(), &[]),
            true,
            &sa.sa_i_b,
            &id_b,
        )
        .map_err(|e| e.to_string())?;
        let mut payloads = vec![id_payload, Payload::Hash(hash_i)];
        if initial_contact {
            payloads.push(Payload::Notification(Notification {
                doi: Doi::Ipsec,
                protocol: ProtocolId::Isakmp,
                notify_type: NotifyType::InitialContact,
                spi: [sa.cky_i, sa.cky_r].concat(),
                data: Vec::new(),
            }));
        }
        let h = header(sa, ExchangeType::IdentityProtection, 0);
        let msg = wire::encrypted_message(h, &payloads, &keys, &mut sa.iv)?;
        sa.keys = Some(keys);
        sa.state = P1State::Sent5;
        sa.out = Some(Outgoing::expecting_answer(
            msg.clone(),
            now,
            Stage::MainMode(5),
        ));
        let (l, r) = (sa.local, sa.remote);
        self.send(l, r, msg);
        Ok(())
    }

    /// Responder: message 5 (IDii, HASH_I); message 6.
    fn mm5(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>, h: Header) -> Result<(), String> {
        let psk = self.config.psk.clone();
        let (plain, m, padding) = match self.decrypt_p1(id, &d, h) {
            Ok(x) => x,
            Err(e) => {
                self.auth_failed(now, id, d, &format!("Main Mode message 5 {e}"));
                return Ok(());
            }
        };
        let _ = padding;
        let id_b = wire::raw_body(wire::first_type(&m), &plain, PayloadType::Identification)
            .ok_or("Main Mode message 5 has no ID payload")?
            .to_vec();
        let peer_id = wire::id_of(&m)
            .cloned()
            .ok_or("Main Mode message 5 has no ID payload")?;
        let got = wire::hash_of(&m)
            .map(<[u8]>::to_vec)
            .ok_or("Main Mode message 5 has no HASH payload")?;
        let sa = &self.sas[&id];
        let keys = sa.keys.as_ref().expect("keyed at MM3");
        let want = keys::phase1_hash(keys, &input(sa, psk.expose(), &[]), true, &sa.sa_i_b, &id_b)
            .map_err(|e| e.to_string())?;
        if !tsunagi_crypto::ct_eq(&want, &got) {
            self.auth_failed(now, id, d, "Main Mode message 5: HASH_I does not verify");
            return Ok(());
        }
        let identity = wire::identity_of(&peer_id);
        if let Err(e) = self.check_remote_id(identity.as_ref()) {
            self.send_clear_notify(
                d.local,
                d.remote,
                sa.cky_i,
                sa.cky_r,
                NotifyType::InvalidIdInformation,
            );
            self.phase1_failed(now, id, d.remote, Reason::IdentityMismatch(e));
            return Ok(());
        }
        let initial_contact = m.payloads.iter().any(|p| {
            matches!(p, Payload::Notification(n) if n.notify_type == NotifyType::InitialContact)
        });
        let local_id = self.local_identity(d.local);
        let sa = self.sas.get_mut(&id).expect("present");
        // RFC 3947 s4: the peer floated (or its NAT mapped another port):
        // answer where message 5 came from.
        sa.local = d.local;
        sa.remote = d.remote;
        sa.remote_id = identity.clone();
        let id_payload = Payload::Identification(wire::identity_payload(&local_id));
        let idr_b = wire::body(&id_payload).map_err(|e| e.to_string())?;
        let keys = sa.keys.take().expect("keyed");
        let hash_r = keys::phase1_hash(
            &keys,
            &input(sa, psk.expose(), &[]),
            false,
            &sa.sa_i_b,
            &idr_b,
        );
        let msg = hash_r.map_err(|e| e.to_string()).and_then(|hash_r| {
            wire::encrypted_message(
                header(sa, ExchangeType::IdentityProtection, 0),
                &[id_payload, Payload::Hash(hash_r)],
                &keys,
                &mut sa.iv,
            )
        });
        sa.keys = Some(keys);
        let msg = msg?;
        sa.out = Some(Outgoing::final_answer(msg.clone(), Stage::MainMode(6)));
        self.send(d.local, d.remote, msg);
        if initial_contact {
            self.initial_contact(now, id, identity.as_ref(), d.remote);
        }
        self.established(now, id);
        Ok(())
    }

    /// Initiator: message 6 (IDir, HASH_R).
    fn mm6(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>, h: Header) -> Result<(), String> {
        let psk = self.config.psk.clone();
        let (plain, m, _) = match self.decrypt_p1(id, &d, h) {
            Ok(x) => x,
            Err(e) => {
                self.auth_failed(now, id, d, &format!("Main Mode message 6 {e}"));
                return Ok(());
            }
        };
        let id_b = wire::raw_body(wire::first_type(&m), &plain, PayloadType::Identification)
            .ok_or("Main Mode message 6 has no ID payload")?
            .to_vec();
        let peer_id = wire::id_of(&m)
            .cloned()
            .ok_or("Main Mode message 6 has no ID payload")?;
        let got = wire::hash_of(&m)
            .map(<[u8]>::to_vec)
            .ok_or("Main Mode message 6 has no HASH payload")?;
        let sa = &self.sas[&id];
        let keys = sa.keys.as_ref().expect("keyed at MM4");
        let want = keys::phase1_hash(
            keys,
            &input(sa, psk.expose(), &[]),
            false,
            &sa.sa_i_b,
            &id_b,
        )
        .map_err(|e| e.to_string())?;
        if !tsunagi_crypto::ct_eq(&want, &got) {
            self.auth_failed(now, id, d, "Main Mode message 6: HASH_R does not verify");
            return Ok(());
        }
        let identity = wire::identity_of(&peer_id);
        if let Err(e) = self.check_remote_id(identity.as_ref()) {
            self.phase1_failed(now, id, d.remote, Reason::IdentityMismatch(e));
            return Ok(());
        }
        let sa = self.sas.get_mut(&id).expect("present");
        sa.remote_id = identity;
        sa.out = None;
        self.established(now, id);
        Ok(())
    }

    /// Decrypts a Phase 1 message with the SA's CBC chain; the chain moves
    /// on only if the result parses.
    fn decrypt_p1(
        &mut self,
        id: IkeSaId,
        d: &Datagram<'_>,
        h: Header,
    ) -> Result<(Vec<u8>, Message, usize), String> {
        let parsed = isakmp::parse(d.data).map_err(|e| e.to_string())?;
        let Parsed::Encrypted(e) = parsed else {
            return Err("is not encrypted".into());
        };
        let sa = self.sas.get_mut(&id).expect("present");
        let keys = sa.keys.as_ref().ok_or("arrived before the keys")?;
        let mut iv = sa.iv.clone();
        let plain = keys::decrypt(keys, &mut iv, e.ciphertext).map_err(|e| e.to_string())?;
        let (m, padding) = isakmp::parse_decrypted(h, e.first_payload, &plain).map_err(|e| {
            format!("does not parse after decryption ({e}): a different pre-shared key?")
        })?;
        sa.iv = iv;
        Ok((plain.to_vec(), m, padding))
    }

    /// The peer's HASH (or our decryption) failed: a PSK mismatch, logged
    /// as such; the SA goes.
    fn auth_failed(&mut self, now: Instant, id: IkeSaId, d: Datagram<'_>, what: &str) {
        let sa = &self.sas[&id];
        let (cky_i, cky_r) = (sa.cky_i, sa.cky_r);
        if !sa.initiator {
            // Unencrypted: the peer's keys differ from ours, so it could
            // not read anything else.
            self.send_clear_notify(
                d.local,
                d.remote,
                cky_i,
                cky_r,
                NotifyType::AuthenticationFailed,
            );
        }
        self.events.push_back(Event::Dropped {
            remote: d.remote,
            what: what.to_string(),
        });
        self.phase1_failed(now, id, d.remote, Reason::AuthenticationFailed);
    }

    fn check_remote_id(&self, got: Option<&Identity>) -> Result<(), String> {
        match (&self.config.remote_id, got) {
            (None, _) => Ok(()),
            (Some(want), Some(got)) if want == got => Ok(()),
            (Some(want), got) => Err(format!(
                "peer identified as {}, rightid is {want:?}",
                got.map_or("an unsupported ID type".into(), |g| format!("{g:?}"))
            )),
        }
    }

    pub(crate) fn local_identity(&self, local: SocketAddr) -> Identity {
        self.config
            .local_id
            .clone()
            .unwrap_or(Identity::Address(local.ip()))
    }

    /// Phase 1 is up.
    fn established(&mut self, now: Instant, id: IkeSaId) {
        let lifetime = self.config.ike_lifetime;
        let margin = self.config.rekey_margin.min(lifetime / 2);
        let keepalive = self.config.nat_keepalive;
        let wanted = self.want.is_some();
        let sa = self.sas.get_mut(&id).expect("present");
        sa.state = P1State::Established;
        sa.established = Some(now);
        sa.expire_at = Some(now + lifetime);
        sa.rekey_at = (sa.initiator && wanted).then(|| now + lifetime - margin);
        sa.last_heard = now;
        sa.p1_last_block = sa.iv.clone();
        sa.dh = None;
        if sa.nat_local && sa.natt.is_some() {
            sa.keepalive_at = Some(now + keepalive);
        }
        let event = Event::IkeUp {
            ike: id,
            remote: sa.remote,
            remote_id: sa
                .remote_id
                .clone()
                .unwrap_or(Identity::Address(sa.remote.ip())),
            algorithms: sa.algorithms.expect("chosen"),
            nat_local: sa.nat_local,
            nat_remote: sa.nat_remote,
        };
        let replaces = sa.replaces;
        let initiator = sa.initiator;
        self.events.push_back(event);
        if initiator {
            if let Some(w) = self.want.as_mut() {
                w.failures = 0;
            }
        }
        if let Some(old) = replaces {
            // Phase 1 rekeyed: the children move here, the old SA goes.
            self.delete_ike(now, old, Reason::Deleted, true);
        }
    }

    /// INITIAL-CONTACT (RFC 2407 s4.6.3.3): the peer rebooted; its other
    /// SAs are gone on its side, so they go here too.
    fn initial_contact(
        &mut self,
        now: Instant,
        id: IkeSaId,
        who: Option<&Identity>,
        from: SocketAddr,
    ) {
        let stale: Vec<IkeSaId> = self
            .sas
            .values()
            .filter(|o| {
                o.id != id
                    && !o.dead
                    && o.state == P1State::Established
                    && o.remote == from
                    && o.remote_id.as_ref() == who
            })
            .map(|o| o.id)
            .collect();
        for s in stale {
            self.delete_ike(now, s, Reason::InitialContact, false);
        }
    }

    /// An unencrypted Informational with one notification (RFC 2408 s4.8).
    pub(crate) fn send_clear_notify(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        cky_i: [u8; 8],
        cky_r: [u8; 8],
        what: NotifyType,
    ) {
        let h = isakmp::Header {
            initiator_spi: cky_i,
            responder_spi: cky_r,
            exchange: ExchangeType::Informational,
            flags: isakmp::Flags(0),
            message_id: 0,
        };
        let n = Payload::Notification(Notification {
            doi: Doi::Ipsec,
            protocol: ProtocolId::Isakmp,
            notify_type: what,
            spi: [cky_i, cky_r].concat(),
            data: Vec::new(),
        });
        if let Ok(msg) = wire::clear_message(h, vec![n]) {
            self.send(local, remote, msg);
        }
    }
}

fn check_nonce(n: &[u8], what: &str) -> Result<(), String> {
    // RFC 2409 s5: between 8 and 256 octets.
    if (8..=256).contains(&n.len()) {
        Ok(())
    } else {
        Err(format!(
            "{what}: Nonce of {} octets (RFC 2409 s5: 8 to 256)",
            n.len()
        ))
    }
}

fn input<'a>(sa: &'a IkeSa, psk: &'a [u8], g_xy: &'a [u8]) -> Phase1Input<'a> {
    let a = sa.algorithms.expect("chosen");
    Phase1Input {
        hash: a.integrity.expect("IKE has a hash"),
        cipher: a.encryption,
        psk,
        ni: &sa.ni,
        nr: &sa.nr,
        g_xy,
        g_xi: &sa.g_xi,
        g_xr: &sa.g_xr,
        cky_i: sa.cky_i,
        cky_r: sa.cky_r,
    }
}

/// NAT-D payloads: the peer's address as we send to it, then ours
/// (random with `forceencaps`, so the peer sees a NAT; strongSwan does the
/// same).
fn push_nat_ds(
    sa: &IkeSa,
    n: NatTNumbering,
    force: bool,
    fake: &[u8],
    payloads: &mut Vec<Payload>,
) {
    let hash = sa
        .algorithms
        .and_then(|a| a.integrity)
        .expect("IKE has a hash");
    let remote = wire::nat_d(hash, sa.cky_i, sa.cky_r, sa.remote);
    let mut local = wire::nat_d(hash, sa.cky_i, sa.cky_r, sa.local);
    if force {
        let len = local.len();
        local = fake[..len.min(fake.len())].to_vec();
    }
    payloads.push(Payload::NatD {
        numbering: n,
        hash: remote,
    });
    payloads.push(Payload::NatD {
        numbering: n,
        hash: local,
    });
}
