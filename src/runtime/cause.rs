//! Causes of transport failures as the core's [`Failure`]s: the runtime only
//! reports what it saw (refused, reset, unreachable, a TLS handshake error,
//! a resolver error), in plain words; what it means for the registration is
//! the core's decision.

use std::io;
use std::net::SocketAddr;

use crate::core::failure::{Failure, FailureKind};

/// An I/O error in words, without Rust's "(os error N)" suffix.
pub fn plain(e: &io::Error) -> String {
    let words = match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset by the peer",
        io::ErrorKind::ConnectionAborted => "connection aborted",
        io::ErrorKind::NotConnected => "not connected",
        io::ErrorKind::BrokenPipe => "connection closed by the peer",
        io::ErrorKind::TimedOut => "timed out",
        io::ErrorKind::HostUnreachable => "host unreachable",
        io::ErrorKind::NetworkUnreachable => "network unreachable",
        io::ErrorKind::NetworkDown => "network down",
        io::ErrorKind::AddrNotAvailable => "local address not available",
        io::ErrorKind::AddrInUse => "local address in use",
        io::ErrorKind::PermissionDenied => "permission denied",
        _ => {
            let text = e.to_string();
            return match text.find(" (os error") {
                Some(i) => text[..i].to_owned(),
                None => text,
            };
        }
    };
    words.to_owned()
}

/// A socket error while sending (or opening the socket) to `dest`.
pub fn send_failed(dest: SocketAddr, e: &io::Error) -> Failure {
    Failure::new(
        FailureKind::Transport,
        format!("cannot send to {dest}: {}", plain(e)),
    )
}

/// An ICMP error reported for datagrams to `dest` (unknown on some systems).
pub fn icmp(dest: Option<SocketAddr>, e: &io::Error) -> Failure {
    let to = dest.map_or_else(|| "the registrar".to_owned(), |d| d.to_string());
    let detail = match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            format!("nothing listens on {to} (ICMP port unreachable)")
        }
        _ => format!("{to} is unreachable: {} (ICMP)", plain(e)),
    };
    Failure::new(FailureKind::Transport, detail)
}

/// A stream connection failed; `tls` when its TLS handshake was running
/// (certificate, protocol or handshake timeout), so the failure is a TLS one.
pub fn stream(why: &str, tls: bool) -> Failure {
    let kind = if tls {
        FailureKind::Tls
    } else {
        FailureKind::Transport
    };
    Failure::new(kind, why)
}

/// The resolver could not give targets for a host name.
pub fn dns(why: &str) -> Failure {
    Failure::new(FailureKind::Dns, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_read_as_words() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let dest: SocketAddr = "127.0.0.1:5999".parse().unwrap();
        let f = icmp(Some(dest), &refused);
        assert_eq!(f.kind, FailureKind::Transport);
        assert_eq!(
            f.detail,
            "nothing listens on 127.0.0.1:5999 (ICMP port unreachable)"
        );
        assert_eq!(
            plain(&io::Error::from_raw_os_error(libc::EHOSTUNREACH)),
            "host unreachable"
        );
        let odd = io::Error::from_raw_os_error(libc::EMSGSIZE);
        assert!(!plain(&odd).contains("os error"), "{}", plain(&odd));
        assert_eq!(stream("handshake", true).kind, FailureKind::Tls);
        assert_eq!(dns("x: NXDOMAIN").kind, FailureKind::Dns);
    }
}
