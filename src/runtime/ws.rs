//! SIP over WebSocket (RFC 7118) as a client: the HTTP/1.1 upgrade with
//! `Sec-WebSocket-Protocol: sip`, then one SIP message per text frame.
//! Framing, masking and PING/PONG come from tungstenite, driven non-blocking.

use std::io;

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::HeaderValue;
use tungstenite::{Message, WebSocket};

use super::link::Link;
use super::stream::WsParams;

/// Largest WebSocket message accepted (a SIP message is far smaller).
const MAX_FRAME: usize = 65_536;

/// Where a WebSocket session stands.
pub enum Ws {
    /// The upgrade request is out (or queued); waiting for `101 Switching Protocols`.
    Upgrading(Box<MidHandshake<ClientHandshake<Link>>>),
    /// Upgraded: frames flow.
    Open(Box<WebSocket<Link>>),
    /// Failed or closed; holds nothing.
    Done,
}

/// What one read produced.
#[derive(Default)]
pub struct WsRead {
    /// Complete SIP messages, in order.
    pub messages: Vec<Vec<u8>>,
    /// PONG frames received (answers to our PINGs).
    pub pongs: u32,
    /// Why the session ended, if it did.
    pub closed: Option<String>,
}

fn config() -> tungstenite::protocol::WebSocketConfig {
    // Many connections, small messages: a 4 KiB read buffer instead of the
    // default eager 128 KiB (measured: 148 -> 25 KiB per WSS connection), and
    // every frame written at once (we flush after each message anyway).
    tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

impl Ws {
    /// Starts the upgrade on `link`: `GET path` with `Host` and `Origin` as
    /// `params` say, asking for the `sip` subprotocol.
    pub fn start(link: Link, secure: bool, params: &WsParams) -> io::Result<Ws> {
        let scheme = if secure { "wss" } else { "ws" };
        let mut req = format!("{scheme}://{}{}", params.host, params.path)
            .into_client_request()
            .map_err(|e| io::Error::other(format!("bad WebSocket request: {e}")))?;
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
        // Servers that check where a browser page came from (OpenSIPS's
        // default require_origin) refuse an upgrade without one.
        let origin = HeaderValue::from_str(&params.origin)
            .map_err(|e| io::Error::other(format!("bad WebSocket Origin: {e}")))?;
        req.headers_mut().insert("Origin", origin);
        let machine = ClientHandshake::start(link, req, Some(config()))
            .map_err(|e| io::Error::other(format!("WebSocket upgrade failed: {e}")))?;
        Ok(Ws::Upgrading(Box::new(machine)))
    }

    /// Whether the upgrade completed.
    pub fn is_open(&self) -> bool {
        matches!(self, Ws::Open(_))
    }

    /// Moves the upgrade on as far as the socket allows.
    pub fn progress(&mut self) -> io::Result<()> {
        let Ws::Upgrading(_) = self else {
            return Ok(());
        };
        let Ws::Upgrading(mid) = std::mem::replace(self, Ws::Done) else {
            return Ok(());
        };
        match mid.handshake() {
            Ok((ws, _response)) => {
                *self = Ws::Open(Box::new(ws));
                Ok(())
            }
            Err(HandshakeError::Interrupted(mid)) => {
                *self = Ws::Upgrading(Box::new(mid));
                Ok(())
            }
            Err(HandshakeError::Failure(e)) => Err(io::Error::other(upgrade_error(&e))),
        }
    }

    /// Sends one SIP message as a text frame (queued if the socket is full).
    pub fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let Ws::Open(ws) = self else {
            return Err(io::Error::other("WebSocket is not open"));
        };
        let text = String::from_utf8_lossy(msg).into_owned();
        ws.write(Message::text(text)).map_err(to_io)?;
        flush(ws)
    }

    /// Sends a PING (a keep-alive whose PONG proves the flow is alive).
    pub fn ping(&mut self) -> io::Result<()> {
        let Ws::Open(ws) = self else {
            return Ok(());
        };
        ws.write(Message::Ping(Default::default())).map_err(to_io)?;
        flush(ws)
    }

    /// Writes queued frames (data, PONGs to the server's PINGs, close).
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Ws::Open(ws) => flush(ws),
            Ws::Upgrading(_) => self.progress(),
            Ws::Done => Ok(()),
        }
    }

    /// Reads every complete frame; PINGs are answered (tungstenite queues the PONG).
    pub fn read(&mut self, budget: usize) -> WsRead {
        let mut out = WsRead::default();
        if let Ws::Upgrading(_) = self {
            if let Err(e) = self.progress() {
                out.closed = Some(e.to_string());
                return out;
            }
        }
        let Ws::Open(ws) = self else {
            return out;
        };
        for _ in 0..budget {
            match ws.read() {
                Ok(Message::Text(t)) => out.messages.push(t.as_bytes().to_vec()),
                Ok(Message::Binary(b)) => out.messages.push(b.to_vec()),
                Ok(Message::Pong(_)) => out.pongs += 1,
                Ok(Message::Ping(_)) | Ok(Message::Frame(_)) => {}
                Ok(Message::Close(_)) => {
                    // tungstenite has queued our answering close frame.
                    let _ = ws.flush();
                    out.closed = Some("WebSocket closed by peer".into());
                    break;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    out.closed = Some("WebSocket closed by peer".into());
                    break;
                }
                Err(tungstenite::Error::Capacity(
                    tungstenite::error::CapacityError::MessageTooLong { size, max_size },
                )) => {
                    out.closed = Some(super::stream::too_large(size, max_size));
                    break;
                }
                Err(e) => {
                    out.closed = Some(format!("WebSocket error: {e}"));
                    break;
                }
            }
        }
        if out.closed.is_none() {
            let _ = flush(ws);
        }
        out
    }

    /// Starts the close handshake (a close frame, then the link's own close).
    pub fn close(&mut self) {
        match std::mem::replace(self, Ws::Done) {
            Ws::Open(mut ws) => {
                let _ = ws.close(None);
                let _ = ws.flush();
                ws.get_mut().close();
            }
            Ws::Upgrading(mut mid) => mid.get_mut().get_mut().close(),
            Ws::Done => {}
        }
    }

    /// The link underneath, while there is one.
    pub fn link(&self) -> Option<&Link> {
        match self {
            Ws::Open(ws) => Some(ws.get_ref()),
            Ws::Upgrading(mid) => Some(mid.get_ref().get_ref()),
            Ws::Done => None,
        }
    }
}

fn flush(ws: &mut WebSocket<Link>) -> io::Result<()> {
    match ws.flush() {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(to_io(e)),
    }
}

fn to_io(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        other => io::Error::other(format!("WebSocket error: {other}")),
    }
}

/// Says why an upgrade failed; an HTTP answer other than 101 names its status.
fn upgrade_error(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(resp) => format!(
            "WebSocket upgrade refused: HTTP {} (expected 101 Switching Protocols)",
            resp.status()
        ),
        tungstenite::Error::Io(io) => format!("WebSocket upgrade failed: {io}"),
        other => format!("WebSocket upgrade failed: {other}"),
    }
}
