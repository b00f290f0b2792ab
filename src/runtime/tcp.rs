//! TCP connections: one per user agent and remote target, shared by its
//! registerers; messages are framed by Content-Length.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;

use crate::core::message::{frame, Frame};

/// Largest message accepted on a stream; a peer sending more is cut off.
pub const MAX_MESSAGE: usize = 65_536;

/// One connection and its buffers.
pub struct TcpConn {
    /// The socket.
    pub stream: TcpStream,
    /// Peer address.
    pub remote: SocketAddr,
    /// Our address (known as soon as connect() was called).
    pub local: SocketAddr,
    /// Whether the handshake completed.
    pub connected: bool,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
}

/// What a read produced.
#[derive(Default)]
pub struct ReadOutcome {
    /// Complete messages, in order.
    pub messages: Vec<Vec<u8>>,
    /// The peer closed the connection or it failed.
    pub closed: Option<String>,
    /// Bytes that could not be framed (the connection is then closed).
    pub invalid: bool,
    /// The per-call read budget ran out before the socket was drained.
    pub more: bool,
}

/// Bytes read per wake-up, so a busy peer cannot starve the other work.
const READ_BUDGET: usize = 256 * 1024;

impl TcpConn {
    /// Starts a non-blocking connect to `remote`, bound to `local` if given.
    pub fn connect(remote: SocketAddr, local: Option<SocketAddr>) -> io::Result<TcpConn> {
        let stream = match local {
            None => TcpStream::connect(remote)?,
            Some(l) => {
                let domain = socket2::Domain::for_address(remote);
                let s = socket2::Socket::new(
                    domain,
                    socket2::Type::STREAM,
                    Some(socket2::Protocol::TCP),
                )?;
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
        let local = stream.local_addr()?;
        Ok(TcpConn {
            stream,
            remote,
            local,
            connected: false,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
        })
    }

    /// Queues bytes and writes what the socket takes now.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wbuf.extend_from_slice(bytes);
        if self.connected {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Writes buffered bytes until the socket would block.
    pub fn flush(&mut self) -> io::Result<()> {
        while !self.wbuf.is_empty() {
            match self.stream.write(&self.wbuf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "connection closed",
                    ))
                }
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Called on the first writable event: did the handshake succeed?
    pub fn finish_connect(&mut self) -> io::Result<()> {
        if let Some(e) = self.stream.take_error()? {
            return Err(e);
        }
        self.stream.peer_addr()?;
        self.connected = true;
        self.flush()
    }

    /// Reads everything available and splits it into messages.
    pub fn read(&mut self) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        let mut chunk = [0u8; 16 * 1024];
        let mut budget = READ_BUDGET;
        loop {
            if budget == 0 {
                out.more = true;
                break;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    out.closed = Some("connection closed by peer".into());
                    break;
                }
                Ok(n) => {
                    budget = budget.saturating_sub(n);
                    self.rbuf.extend_from_slice(&chunk[..n]);
                    if !self.split(&mut out) {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.closed = Some(format!("connection error: {e}"));
                    break;
                }
            }
        }
        out
    }

    /// Moves complete messages out of the read buffer; false on a framing error.
    fn split(&mut self, out: &mut ReadOutcome) -> bool {
        loop {
            match frame(&self.rbuf, MAX_MESSAGE) {
                Frame::Incomplete => return true,
                Frame::KeepAlive(n) => {
                    self.rbuf.drain(..n.min(self.rbuf.len()));
                }
                Frame::Message(n) if n <= self.rbuf.len() && n > 0 => {
                    out.messages.push(self.rbuf.drain(..n).collect());
                }
                Frame::Message(_) | Frame::Invalid => {
                    out.invalid = true;
                    out.closed = Some("unframeable data on the connection".into());
                    self.rbuf.clear();
                    return false;
                }
            }
        }
    }
}
