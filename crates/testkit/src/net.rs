use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};

use crate::{Error, Result};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding port 0 and releasing it, so another process may take it
/// before the caller binds it; spawners retry on another port when that happens.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("binding 127.0.0.1:0 to find a free port", e))?;
    let port =
        listener.local_addr().map_err(|e| Error::io("reading the address of a bound socket", e))?.port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the port should still be free");
    }
}
