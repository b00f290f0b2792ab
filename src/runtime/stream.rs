//! Stream connections, written once for every stream transport: a byte
//! stream (TCP, or TLS over TCP, see [`Link`]) carrying SIP framed by
//! Content-Length (`tcp`, `tls`) or WebSocket frames (`ws`, `wss`).
//!
//! A connection is "up" once TCP, TLS and the WebSocket upgrade all finished;
//! messages sent before that wait in order and go out as soon as it is up.
//! How long the handshakes may take is the endpoint's decision; this only
//! says which step a late connection is waiting for.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::pki_types::ServerName;

use super::link::Link;
use super::tls::TlsLink;
use super::ws::Ws;
use crate::core::endpoint::HandshakeStep;
use crate::core::message::{frame_with_head, Frame, FramedHead};
use crate::core::options::Transport;

/// Largest message accepted on a stream; a peer sending more is cut off.
pub const MAX_MESSAGE: usize = 65_536;

/// Bytes (or frames) read per wake-up, so a busy peer cannot starve the other work.
const READ_BUDGET: usize = 256 * 1024;
const FRAME_BUDGET: usize = 256;

/// TLS parameters of a secure connection.
pub struct TlsParams {
    /// Shared client configuration (trust anchors, verification).
    pub config: Arc<rustls::ClientConfig>,
    /// SNI and the name the certificate must carry.
    pub name: ServerName<'static>,
}

/// What a WebSocket connection asks for in its upgrade.
pub struct WsParams {
    /// `Host` header value (`host:port`).
    pub host: String,
    /// Request path.
    pub path: String,
    /// `Origin` header value.
    pub origin: String,
}

/// What to connect to and how.
pub struct StreamSpec {
    /// Transport to carry.
    pub transport: Transport,
    /// Peer address.
    pub remote: SocketAddr,
    /// Local address to bind, if configured.
    pub local: Option<SocketAddr>,
    /// TLS parameters for `tls` and `wss`.
    pub tls: Option<TlsParams>,
    /// Upgrade parameters for `ws` and `wss`.
    pub ws: Option<WsParams>,
}

enum Framing {
    /// Content-Length framing straight on the link.
    Sip {
        link: Link,
        rbuf: Vec<u8>,
        wbuf: Vec<u8>,
    },
    /// TCP is still connecting; the WebSocket upgrade starts once it is up.
    WsPending(Option<Link>, WsParams),
    /// WebSocket framing (upgrading or open).
    Ws(Ws),
}

/// One connection of any stream transport.
pub struct StreamConn {
    /// Transport it carries.
    pub transport: Transport,
    /// Peer address.
    pub remote: SocketAddr,
    /// Our address (known as soon as connect() was called).
    pub local: SocketAddr,
    tcp_connected: bool,
    framing: Framing,
    /// Messages waiting for the connection to come up.
    pending: Vec<Vec<u8>>,
    up_logged: bool,
}

/// What a read produced.
#[derive(Default)]
pub struct ReadOutcome {
    /// Complete messages, in order, each with its header section as
    /// framing by Content-Length parsed it (for the endpoint not to parse
    /// it again; `None` for WebSocket messages).
    pub messages: Vec<(Vec<u8>, Option<FramedHead>)>,
    /// Keep-alive answers seen (CRLF pongs, WebSocket PONGs).
    pub pongs: u32,
    /// The peer closed the connection or it failed.
    pub closed: Option<String>,
    /// Bytes that could not be framed (the connection is then closed).
    pub invalid: bool,
    /// The per-call read budget ran out before the socket was drained.
    pub more: bool,
}

impl StreamConn {
    /// Starts a non-blocking connect; `registry` gets the socket under `token`
    /// before anything can happen on it.
    pub fn connect(
        spec: StreamSpec,
        registry: &mio::Registry,
        token: mio::Token,
    ) -> io::Result<StreamConn> {
        let StreamSpec {
            transport,
            remote,
            local,
            tls,
            ws,
        } = spec;
        let mut tcp: TcpStream = super::link::connect_tcp(remote, local)?;
        let local = tcp.local_addr()?;
        registry.register(
            &mut tcp,
            token,
            mio::Interest::READABLE | mio::Interest::WRITABLE,
        )?;
        let link = match tls {
            Some(t) => Link::Tls(Box::new(TlsLink::new(tcp, t.config, t.name)?)),
            None => Link::Tcp(tcp),
        };
        let framing = match ws {
            Some(w) => Framing::WsPending(Some(link), w),
            None => Framing::Sip {
                link,
                rbuf: Vec::new(),
                wbuf: Vec::new(),
            },
        };
        Ok(StreamConn {
            transport,
            remote,
            local,
            tcp_connected: false,
            framing,
            pending: Vec::new(),
            up_logged: false,
        })
    }

    /// Whether TCP, TLS and the WebSocket upgrade all finished.
    pub fn is_up(&self) -> bool {
        self.tcp_connected
            && match &self.framing {
                Framing::Sip { link, .. } => !link.handshaking(),
                Framing::WsPending(..) => false,
                Framing::Ws(ws) => ws.is_open(),
            }
    }

    /// How far the handshakes got (for the message when they time out).
    pub fn step(&self) -> HandshakeStep {
        if !self.tcp_connected {
            return HandshakeStep::Connecting;
        }
        let link = match &self.framing {
            Framing::Sip { link, .. } => Some(link),
            Framing::WsPending(link, _) => link.as_ref(),
            Framing::Ws(ws) => ws.link(),
        };
        match link {
            Some(Link::Tls(t)) if t.handshaking() => HandshakeStep::Tls {
                answered: t.answered(),
            },
            _ => HandshakeStep::WebSocket,
        }
    }

    /// Whether the TLS handshake is what the connection is doing now (TCP
    /// is up, TLS is not): a failure now is a TLS failure.
    pub fn tls_handshaking(&self) -> bool {
        self.tcp_connected
            && match &self.framing {
                Framing::Sip { link, .. } => link.handshaking(),
                Framing::Ws(ws) => !ws.is_open() && ws.link().is_some_and(Link::handshaking),
                Framing::WsPending(..) => false,
            }
    }

    /// The TLS version once negotiated, for the log line that says the flow is up.
    pub fn tls_version(&self) -> Option<&'static str> {
        let link = match &self.framing {
            Framing::Sip { link, .. } => Some(link),
            Framing::WsPending(link, _) => link.as_ref(),
            Framing::Ws(ws) => ws.link(),
        };
        match link {
            Some(Link::Tls(t)) => t.version(),
            _ => None,
        }
    }

    /// Whether the "up" log line is due (true once, when the connection first comes up).
    pub fn take_up_event(&mut self) -> bool {
        if self.is_up() && !self.up_logged {
            self.up_logged = true;
            return true;
        }
        false
    }

    /// Queues one SIP message for the next [`flush`](Self::flush): messages
    /// of one wake-up go out in as few writes as the framing allows.
    pub fn send_later(&mut self, msg: &[u8]) -> io::Result<()> {
        let up = self.is_up();
        match &mut self.framing {
            Framing::Sip { wbuf, .. } if up => {
                wbuf.extend_from_slice(msg);
                Ok(())
            }
            _ if !up => {
                self.pending.push(msg.to_vec());
                Ok(())
            }
            _ => self.write_message(msg),
        }
    }

    /// Writes what [`send_later`](Self::send_later) queued, as far as the socket takes it.
    pub fn flush(&mut self) -> io::Result<()> {
        self.progress()
    }

    /// Sends a keep-alive: CRLFCRLF (RFC 5626 §4.4.1) on SIP framing, a PING on WebSocket.
    pub fn ping(&mut self) -> io::Result<()> {
        if !self.is_up() {
            return Ok(());
        }
        match &mut self.framing {
            Framing::Ws(ws) => ws.ping(),
            _ => self.write_message(b"\r\n\r\n"),
        }
    }

    fn write_message(&mut self, msg: &[u8]) -> io::Result<()> {
        match &mut self.framing {
            Framing::Sip { link, wbuf, .. } => {
                wbuf.extend_from_slice(msg);
                flush_sip(link, wbuf)
            }
            Framing::Ws(ws) => ws.send(msg),
            Framing::WsPending(..) => Err(io::Error::other("connection is not up")),
        }
    }

    /// On a writable event: finishes the TCP connect, moves handshakes on, and
    /// writes what waits. An error means the connection is unusable.
    pub fn on_writable(&mut self) -> io::Result<()> {
        if !self.tcp_connected {
            let tcp = self.tcp().ok_or_else(|| io::Error::other("no socket"))?;
            if let Some(e) = tcp.take_error()? {
                return Err(e);
            }
            if let Err(e) = tcp.peer_addr() {
                // Not connected yet (a spurious wake-up) is not a failure.
                if e.kind() == io::ErrorKind::NotConnected {
                    return Ok(());
                }
                return Err(e);
            }
            self.tcp_connected = true;
            if let Framing::WsPending(link, params) = &mut self.framing {
                let link = link.take().ok_or_else(|| io::Error::other("no socket"))?;
                let secure = self.transport.secure();
                self.framing = Framing::Ws(Ws::start(link, secure, params)?);
            }
        }
        self.progress()
    }

    /// Drives handshakes and writes: data queued by the framing, then, once
    /// up, the messages that waited.
    fn progress(&mut self) -> io::Result<()> {
        match &mut self.framing {
            Framing::Sip { link, wbuf, .. } => flush_sip(link, wbuf)?,
            Framing::Ws(ws) => ws.flush()?,
            Framing::WsPending(..) => return Ok(()),
        }
        if self.is_up() && !self.pending.is_empty() {
            for msg in std::mem::take(&mut self.pending) {
                self.write_message(&msg)?;
            }
        }
        Ok(())
    }

    /// Reads everything available and splits it into messages.
    pub fn read(&mut self) -> ReadOutcome {
        let mut out = ReadOutcome::default();
        if !self.tcp_connected {
            return out;
        }
        match &mut self.framing {
            Framing::Sip { link, rbuf, .. } => read_sip(link, rbuf, &mut out),
            Framing::Ws(ws) => {
                let r = ws.read(FRAME_BUDGET);
                out.more = r.closed.is_none() && r.messages.len() >= FRAME_BUDGET;
                out.messages = r.messages.into_iter().map(|m| (m, None)).collect();
                out.pongs = r.pongs;
                out.closed = r.closed;
            }
            Framing::WsPending(..) => {}
        }
        if out.closed.is_none() {
            // Reading may have finished a handshake: send what waited.
            if let Err(e) = self.progress() {
                out.closed = Some(format!("connection error: {e}"));
            }
        }
        out
    }

    /// Closes politely: a WebSocket close frame and a TLS close_notify where
    /// they apply, then the socket is shut down.
    pub fn close(&mut self) {
        match &mut self.framing {
            Framing::Sip { link, wbuf, .. } => {
                let _ = flush_sip(link, wbuf);
                link.close();
            }
            Framing::WsPending(link, _) => {
                if let Some(l) = link {
                    l.close();
                }
            }
            Framing::Ws(ws) => ws.close(),
        }
    }

    fn tcp(&self) -> Option<&TcpStream> {
        match &self.framing {
            Framing::Sip { link, .. } => Some(link.tcp()),
            Framing::WsPending(link, _) => link.as_ref().map(Link::tcp),
            Framing::Ws(ws) => ws.link().map(Link::tcp),
        }
    }
}

/// Writes buffered bytes until the link would block.
fn flush_sip(link: &mut Link, wbuf: &mut Vec<u8>) -> io::Result<()> {
    while !wbuf.is_empty() {
        match link.write(wbuf) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "connection closed",
                ))
            }
            Ok(n) => {
                wbuf.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    match link.flush() {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(()),
    }
}

fn read_sip(link: &mut Link, rbuf: &mut Vec<u8>, out: &mut ReadOutcome) {
    let mut chunk = [0u8; 16 * 1024];
    let mut budget = READ_BUDGET;
    loop {
        if budget == 0 {
            out.more = true;
            break;
        }
        match link.read(&mut chunk) {
            Ok(0) => {
                out.closed = Some("connection closed by peer".into());
                break;
            }
            Ok(n) => {
                budget = budget.saturating_sub(n);
                rbuf.extend_from_slice(&chunk[..n]);
                if !split(rbuf, out) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                out.closed = Some(e.to_string());
                break;
            }
        }
    }
}

/// Moves complete messages out of the read buffer; false on a framing error.
fn split(rbuf: &mut Vec<u8>, out: &mut ReadOutcome) -> bool {
    // Messages are framed from `start` on, and what is left moves down
    // once at the end: a read of many messages would otherwise move the
    // rest of the buffer once per message.
    let mut start = 0;
    let framed = loop {
        let rest = rbuf.get(start..).unwrap_or_default();
        let (framed, head) = frame_with_head(rest, MAX_MESSAGE);
        match framed {
            Frame::Incomplete => break true,
            Frame::KeepAlive(n) => {
                // A CRLF pong answers a CRLFCRLF ping (RFC 5626 §4.4.1).
                out.pongs += (n / 2).max(1) as u32;
                start += n.min(rest.len());
            }
            Frame::Message(n) if n <= rest.len() && n > 0 => {
                out.messages.push((rest[..n].to_vec(), head));
                start += n;
            }
            Frame::TooLarge(size) => {
                out.invalid = true;
                out.closed = Some(match size {
                    Some(n) => too_large(n, MAX_MESSAGE),
                    None => format!(
                        "message header does not end within the {}-byte limit",
                        grouped(MAX_MESSAGE)
                    ),
                });
                break false;
            }
            Frame::Message(_) | Frame::Invalid => {
                out.invalid = true;
                out.closed = Some("unframeable data on the connection".into());
                break false;
            }
        }
    };
    if framed {
        rbuf.drain(..start);
    } else {
        rbuf.clear();
    }
    framed
}

/// The words for a message over the size limit.
pub fn too_large(size: usize, limit: usize) -> String {
    format!(
        "message of {} bytes exceeds the {}-byte limit",
        grouped(size),
        grouped(limit)
    )
}

/// `n` with its digits in groups of three ("65 536"), as people write sizes.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_written_in_groups() {
        assert_eq!(grouped(7), "7");
        assert_eq!(grouped(65_536), "65 536");
        assert_eq!(grouped(104_857_600), "104 857 600");
        assert_eq!(
            too_large(70_000, MAX_MESSAGE),
            "message of 70 000 bytes exceeds the 65 536-byte limit"
        );
    }

    /// The messages' bytes, without their heads.
    fn bytes_of(out: &ReadOutcome) -> Vec<Vec<u8>> {
        out.messages.iter().map(|(m, _)| m.clone()).collect()
    }

    fn response(cseq: u32, body: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 200 OK\r\nCSeq: {cseq} REGISTER\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// Many messages, keep-alives and a partial one in one read: each
    /// message whole and in order, the pongs counted, the partial one kept
    /// and completed by the next read.
    #[test]
    fn a_read_of_many_messages_is_split_in_order_and_the_rest_kept() {
        let mut rbuf = Vec::new();
        for i in 1..=50 {
            rbuf.extend(response(i, if i.is_multiple_of(3) { "x=1" } else { "" }));
            if i.is_multiple_of(10) {
                rbuf.extend(b"\r\n");
            }
        }
        let last = response(51, "body");
        rbuf.extend(&last[..last.len() - 3]);
        let mut out = ReadOutcome::default();
        assert!(split(&mut rbuf, &mut out));
        assert_eq!(out.messages.len(), 50);
        for (i, (m, _)) in out.messages.iter().enumerate() {
            let n = i as u32 + 1;
            assert_eq!(
                m,
                &response(n, if n.is_multiple_of(3) { "x=1" } else { "" })
            );
        }
        // Each message's head as framing parsed it, for the endpoint.
        assert!(out.messages.iter().all(|(_, head)| head.is_some()));
        assert_eq!(out.pongs, 5);
        assert_eq!(rbuf, &last[..last.len() - 3]);
        rbuf.extend(&last[last.len() - 3..]);
        let mut out = ReadOutcome::default();
        assert!(split(&mut rbuf, &mut out));
        assert_eq!(bytes_of(&out), vec![last]);
        assert!(rbuf.is_empty());
    }

    /// Messages before unframeable bytes are delivered; then the
    /// connection is given up and the buffer emptied.
    #[test]
    fn unframeable_bytes_after_messages_end_the_connection() {
        let mut rbuf = response(1, "");
        rbuf.extend(response(2, ""));
        rbuf.extend(b"\x16\x03\x01 not SIP");
        let mut out = ReadOutcome::default();
        assert!(!split(&mut rbuf, &mut out));
        assert_eq!(bytes_of(&out), vec![response(1, ""), response(2, "")]);
        assert!(out.invalid && out.closed.is_some());
        assert!(rbuf.is_empty());
    }
}
