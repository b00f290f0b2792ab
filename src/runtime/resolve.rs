//! Turns the registrar (or proxy) host into a socket address.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::core::uri::Host;
use crate::error::Error;

/// Resolves `host:port` with the system resolver (IP literals need no lookup).
/// IPv4 results are preferred when a name has both families.
pub fn resolve(host: &Host, port: u16) -> Result<SocketAddr, Error> {
    match host {
        Host::V4(a) => Ok(SocketAddr::new((*a).into(), port)),
        Host::V6(a) => Ok(SocketAddr::new((*a).into(), port)),
        Host::Domain(name) => {
            let addrs: Vec<SocketAddr> = (name.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| Error::Transport(format!("cannot resolve {name}: {e}")))?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| addrs.first())
                .copied()
                .ok_or_else(|| Error::Transport(format!("{name} has no addresses")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost() {
        assert_eq!(
            resolve(&Host::V4([127, 0, 0, 1].into()), 5060)
                .unwrap()
                .to_string(),
            "127.0.0.1:5060"
        );
        assert_eq!(
            resolve(&Host::V6("::1".parse().unwrap()), 5070)
                .unwrap()
                .to_string(),
            "[::1]:5070"
        );
        let l = resolve(&Host::Domain("localhost".into()), 5080).unwrap();
        assert!(l.ip().is_loopback());
        assert!(resolve(&Host::Domain("no-such-host.invalid".into()), 1).is_err());
    }
}
