//! Layer-3 tun devices (IFF_TUN | IFF_NO_PI), non-blocking, driven by tokio.

use std::io;

/// An open tun device. Dropping it closes the fd, which removes the device.
pub struct Tun {
    _private: (),
}

impl Tun {
    /// Create (or attach to) tun device `name` (at most 15 bytes).
    pub fn create(name: &str) -> io::Result<Tun> {
        let _ = name;
        todo!("H3")
    }

    /// The kernel's name for the device.
    pub fn name(&self) -> &str {
        todo!("H3")
    }

    /// Read one IP packet into `buf`; returns its length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let _ = buf;
        todo!("H3")
    }

    /// Write one IP packet.
    pub async fn send(&self, packet: &[u8]) -> io::Result<usize> {
        let _ = packet;
        todo!("H3")
    }
}
