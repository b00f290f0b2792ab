//! The byte stream under every stream transport: a TCP socket, or TLS over one.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;

use super::tls::TlsLink;

/// A non-blocking byte stream: reads and writes give `WouldBlock` instead of waiting.
pub enum Link {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsLink>),
}

impl Link {
    /// Whether a TLS handshake is still running (never for plain TCP).
    pub fn handshaking(&self) -> bool {
        match self {
            Link::Tcp(_) => false,
            Link::Tls(t) => t.handshaking(),
        }
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Link::Tcp(s) => s,
            Link::Tls(t) => &t.tcp,
        }
    }

    /// Ends the stream politely (TLS close_notify), then shuts the socket down.
    pub fn close(&mut self) {
        if let Link::Tls(t) = self {
            t.close();
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Both);
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.read(buf),
            Link::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Tcp(s) => s.write(buf),
            Link::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Link::Tcp(s) => s.flush(),
            Link::Tls(t) => t.flush(),
        }
    }
}

/// Starts a non-blocking TCP connect to `remote`, bound to `local` if given.
pub fn connect_tcp(remote: SocketAddr, local: Option<SocketAddr>) -> io::Result<TcpStream> {
    let stream = match local {
        None => TcpStream::connect(remote)?,
        Some(l) => {
            let domain = socket2::Domain::for_address(remote);
            let s =
                socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
            s.set_nonblocking(true)?;
            s.bind(&l.into())?;
            match s.connect(&remote.into()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                Err(e) => return Err(e),
            }
            TcpStream::from_std(std::net::TcpStream::from(s))
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
