//! Every call into the IKEv1 engine ([`tsunagi_ipsec::ike::Engine`]) is
//! here, so that a change of its API touches one module.
//!
//! An engine is sans-IO and must never panic on input; should it all the
//! same (a bug), the panic is caught here, logged, and that connection's
//! engine is made anew: its SAs are gone (the driver removes them), every
//! other connection keeps working, and the daemon does not die of one
//! peer's packet.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use tracing::error;
use tsunagi_crypto::Random;
use tsunagi_ipsec::ike::{
    self, ChildId, ChildStatus, Datagram, Engine, Event, IkeSaStatus, Transmit,
};

/// One connection's engine.
pub struct ConnEngine {
    engine: Engine,
    config: ike::Config,
    random: Random,
    /// How often the engine panicked (and was made anew).
    pub resets: u64,
}

/// What a call produced: datagrams to send and events to act on.
#[derive(Default)]
pub struct Output {
    /// To send (a Transmit from port 4500 needs the non-ESP marker).
    pub transmits: Vec<Transmit>,
    /// To act on.
    pub events: Vec<Event>,
    /// The engine panicked and was made anew: drop every SA of the conn.
    pub reset: bool,
}

impl ConnEngine {
    /// An engine for `config`.
    pub fn new(config: ike::Config, random: Random) -> ConnEngine {
        ConnEngine {
            engine: Engine::new(config.clone(), random.clone()),
            config,
            random,
            resets: 0,
        }
    }

    /// A new configuration from the next negotiation on (also for an
    /// engine made anew after a failure).
    pub fn set_config(&mut self, config: ike::Config) {
        self.config = config.clone();
        self.engine.set_config(config);
    }

    /// A new pre-shared key from the next Phase 1 on (also for an engine
    /// made anew after a failure).
    pub fn set_psk(&mut self, psk: tsunagi_crypto::Secret) {
        self.config.psk = psk.clone();
        self.engine.set_psk(psk);
    }

    /// Runs `f` on the engine, then drains what it wants sent and said.
    fn run(&mut self, what: &str, out: &mut Output, f: impl FnOnce(&mut Engine)) {
        let engine = &mut self.engine;
        let result = catch_unwind(AssertUnwindSafe(|| {
            f(engine);
            while let Some(t) = engine.poll_transmit() {
                out.transmits.push(t);
            }
            while let Some(e) = engine.poll_event() {
                out.events.push(e);
            }
        }));
        if let Err(panic) = result {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            error!(
                "ipsec {}: the IKE engine failed in {what} ({why}); its SAs are dropped and it starts over",
                self.config.name
            );
            self.engine = Engine::new(self.config.clone(), self.random.clone());
            self.resets += 1;
            out.reset = true;
        }
    }

    /// `auto=start`: negotiate with `remote` from `local`.
    pub fn initiate(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) -> Output {
        let mut out = Output::default();
        self.run("initiate", &mut out, |e| e.initiate(now, local, remote));
        out
    }

    /// An IKE datagram (on 4500: after the non-ESP marker).
    pub fn handle(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        data: &[u8],
    ) -> Output {
        let mut out = Output::default();
        self.run("handle", &mut out, |e| {
            e.handle(
                now,
                Datagram {
                    local,
                    remote,
                    data,
                },
            )
        });
        out
    }

    /// ESP arrived on `child` from `remote` (DPD liveness, NAT port float).
    pub fn esp_received(&mut self, now: Instant, child: ChildId, remote: SocketAddr) -> Output {
        let mut out = Output::default();
        self.run("esp_received", &mut out, |e| {
            e.esp_received(now, child, remote)
        });
        out
    }

    /// `child`'s outbound sequence numbers run out.
    pub fn rekey_child(&mut self, now: Instant, child: ChildId) -> Output {
        let mut out = Output::default();
        self.run("rekey_child", &mut out, |e| e.rekey_child(now, child));
        out
    }

    /// Shutdown: Delete for every SA.
    pub fn delete_all(&mut self, now: Instant) -> Output {
        let mut out = Output::default();
        self.run("delete_all", &mut out, |e| e.delete_all(now));
        out
    }

    /// When [`ConnEngine::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        catch_unwind(AssertUnwindSafe(|| self.engine.poll_timeout())).unwrap_or(None)
    }

    /// Timers.
    pub fn handle_timeout(&mut self, now: Instant) -> Output {
        let mut out = Output::default();
        self.run("handle_timeout", &mut out, |e| e.handle_timeout(now));
        out
    }

    /// The IKE SAs for `status`.
    pub fn status(&self) -> Vec<IkeSaStatus> {
        catch_unwind(AssertUnwindSafe(|| self.engine.status())).unwrap_or_default()
    }

    /// The child SAs as the engine sees them (rekey and expiry times).
    pub fn children(&self) -> Vec<ChildStatus> {
        catch_unwind(AssertUnwindSafe(|| self.engine.children())).unwrap_or_default()
    }
}
