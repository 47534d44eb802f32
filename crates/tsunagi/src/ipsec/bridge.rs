//! L2TP/IPsec (seed 002): what an L2TP profile sees of the transport conn
//! under it, and what it asks of it.
//!
//! A LAC link with `ipsec = "NAME"` drives its conn: it asks for the conn
//! ([`Lower::up`]) before each dial, dials L2TP only once an IPsec SA is
//! installed ([`Lower::wait_sa`]), ends its session when the last SA goes
//! ([`Lower::lost`]) and takes the conn down ([`Lower::down`]) whenever its
//! session ends, so that IKE, the IPsec SA, the L2TP tunnel, the session
//! and PPP redial as one: there is never an IKE SA with nothing above it
//! (seed 002's xl2tpd + strongSwan could rest in that state). An LNS with
//! `ipsec = "NAME"` binds its socket to the conn's tun, and hears of each
//! client whose last IPsec SA went ([`Lower::take_gone`]), by the address
//! and port L2TP knows it by, so that its tunnels and sessions go with it.
//!
//! The driver owns the other end ([`DriverBridge`]): it publishes how many
//! IPsec SAs each such conn has, says which clients went, and carries out
//! the requests.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::{IpsecConn, L2tpUser};

/// What a conn under an L2TP profile has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LowerState {
    /// IPsec SAs installed and not retired.
    pub sas: usize,
}

/// What an L2TP profile asks of its conn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowerRequest {
    /// Negotiate with `right` and keep an IPsec SA up (what `auto=start`
    /// does for a conn no link drives).
    Up,
    /// Delete every SA (Delete notifications to the peer) and stop.
    Down,
}

/// An L2TP profile's handle on its conn.
#[derive(Debug)]
pub struct Lower {
    /// The conn's name.
    pub conn: String,
    /// The conn's tun: L2TP's socket is bound to it.
    pub tun: String,
    /// The conn's `left`: L2TP's socket is bound to it.
    pub left: Ipv4Addr,
    index: usize,
    state: watch::Receiver<LowerState>,
    requests: mpsc::UnboundedSender<(usize, LowerRequest)>,
    gone: Option<mpsc::UnboundedReceiver<SocketAddr>>,
}

impl Lower {
    /// An LNS's: the clients whose last IPsec SA went, as L2TP knows them
    /// (address and port); once.
    pub fn take_gone(&mut self) -> Option<mpsc::UnboundedReceiver<SocketAddr>> {
        self.gone.take()
    }

    /// Asks the driver to bring the conn up.
    pub fn up(&self) {
        let _ = self.requests.send((self.index, LowerRequest::Up));
    }

    /// Asks the driver to take the conn down.
    pub fn down(&self) {
        let _ = self.requests.send((self.index, LowerRequest::Down));
    }

    /// IPsec SAs installed now.
    pub fn sas(&self) -> usize {
        self.state.borrow().sas
    }

    /// Waits up to `limit` for an IPsec SA; whether there is one.
    pub async fn wait_sa(&mut self, limit: Duration) -> bool {
        let wait = self.state.wait_for(|s| s.sas > 0);
        matches!(tokio::time::timeout(limit, wait).await, Ok(Ok(_)))
    }

    /// Resolves once the conn has no IPsec SA (at once if it has none), or
    /// never if the driver is gone (the daemon is stopping).
    pub async fn lost(&mut self) {
        if self.state.wait_for(|s| s.sas == 0).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The driver's end.
#[derive(Debug)]
pub struct DriverBridge {
    /// Per conn index: where its state is published, for conns under an
    /// L2TP profile.
    pub states: Vec<Option<watch::Sender<LowerState>>>,
    /// Requests, by conn index.
    pub requests: mpsc::UnboundedReceiver<(usize, LowerRequest)>,
    /// Per conn index: where an LNS hears of clients gone.
    pub gone: Vec<Option<mpsc::UnboundedSender<SocketAddr>>>,
}

impl DriverBridge {
    /// Tells conn `index`'s LNS that the client it knows as `seen` went.
    pub fn client_gone(&self, index: usize, seen: SocketAddr) {
        if let Some(Some(tx)) = self.gone.get(index) {
            let _ = tx.send(seen);
        }
    }

    /// Publishes conn `index`'s state if it changed.
    pub fn publish(&self, index: usize, state: LowerState) {
        if let Some(Some(tx)) = self.states.get(index) {
            tx.send_if_modified(|s| {
                let changed = *s != state;
                *s = state;
                changed
            });
        }
    }
}

/// Both ends for `conns` (the driver's conn index is the position in
/// `conns`): a [`Lower`] per L2TP profile that names a conn, by the
/// profile's name.
pub fn bridges(conns: &[IpsecConn]) -> (HashMap<String, Lower>, DriverBridge) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut lowers = HashMap::new();
    let mut states = Vec::with_capacity(conns.len());
    let mut gone = Vec::with_capacity(conns.len());
    for (index, c) in conns.iter().enumerate() {
        let (Some(user), IpAddr::V4(left)) = (&c.l2tp, c.left) else {
            states.push(None);
            gone.push(None);
            continue;
        };
        let (state_tx, state_rx) = watch::channel(LowerState::default());
        states.push(Some(state_tx));
        // Only an LNS hears of clients gone.
        let gone_rx = match user {
            L2tpUser::Link(_) => {
                gone.push(None);
                None
            }
            L2tpUser::Server(_) => {
                let (tx, rx) = mpsc::unbounded_channel();
                gone.push(Some(tx));
                Some(rx)
            }
        };
        lowers.insert(
            user.profile().to_string(),
            Lower {
                conn: c.name.clone(),
                tun: c.tun.clone(),
                left,
                index,
                state: state_rx,
                requests: tx.clone(),
                gone: gone_rx,
            },
        );
    }
    (
        lowers,
        DriverBridge {
            states,
            requests: rx,
            gone,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[ipsec.idcf]
left = "10.0.0.1"
right = "10.0.0.2"
type = "transport"
leftprotoport = "17/1701"
rightprotoport = "17/1701"
[ipsec.site]
left = "10.0.0.1"
right = "10.0.0.3"
rightsubnet = "10.9.0.0/24"
[link.idcf]
mode = "l2tp"
lns = "10.0.0.2"
ipsec = "idcf"
user = "u"
password = "p"
"#;

    #[tokio::test]
    async fn a_link_sees_its_conns_sas_and_its_requests_reach_the_driver() {
        let config = crate::config::Config::parse(std::path::Path::new("t.toml"), CONFIG).unwrap();
        let (mut lowers, mut driver) = bridges(&config.ipsec);
        assert_eq!(lowers.len(), 1, "only the conn a link names");
        let mut lower = lowers.remove("idcf").unwrap();
        assert_eq!(
            (lower.conn.as_str(), lower.tun.as_str()),
            ("idcf", "ipsec-idcf")
        );
        assert!(driver.states[1].is_none());
        lower.up();
        assert_eq!(driver.requests.recv().await, Some((0, LowerRequest::Up)));
        assert!(!lower.wait_sa(Duration::from_millis(10)).await);
        driver.publish(0, LowerState { sas: 1 });
        assert!(lower.wait_sa(Duration::from_millis(10)).await);
        driver.publish(0, LowerState { sas: 0 });
        tokio::time::timeout(Duration::from_secs(5), lower.lost())
            .await
            .unwrap();
        assert!(lower.take_gone().is_none(), "a link hears of no clients");
        lower.down();
        assert_eq!(driver.requests.recv().await, Some((0, LowerRequest::Down)));
    }

    /// An LNS's conn: the LNS hears of each client gone, by the address and
    /// port L2TP knows it by.
    #[tokio::test]
    async fn an_lns_hears_of_clients_gone() {
        let text = "[ipsec.l2tp]\nleft = \"10.0.0.1\"\nright = \"%any\"\ntype = \"transport\"\nleftprotoport = \"17/1701\"\nrightprotoport = \"17/%any\"\n[server.lns]\nprotocol = \"l2tp\"\nipsec = \"l2tp\"\nsecrets = \"/etc/ppp/chap-secrets\"\nlocalip = \"10.99.0.1\"\nremoteip = \"10.99.0.10-20\"\n";
        let config = crate::config::Config::parse(std::path::Path::new("t.toml"), text).unwrap();
        let (mut lowers, driver) = bridges(&config.ipsec);
        let mut lower = lowers.remove("lns").unwrap();
        let mut gone = lower.take_gone().expect("an LNS hears of clients");
        assert!(lower.take_gone().is_none(), "once");
        let seen: SocketAddr = "198.51.100.7:49152".parse().unwrap();
        driver.client_gone(0, seen);
        driver.client_gone(1, seen);
        assert_eq!(gone.recv().await, Some(seen));
        assert!(gone.try_recv().is_err(), "conn 1 has no LNS");
    }
}
