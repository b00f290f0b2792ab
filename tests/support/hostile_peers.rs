//! Hostile registrars for tests/hostile_it.rs: a stream server on 127.0.0.1
//! (TCP, TLS, WS or WSS) that runs a script per connection (answer, then
//! close; answer, then junk; dribble; never read; ...) and counts what it
//! saw, plus the throwaway certificates its TLS needs (made with openssl at
//! test time: tests/kamailio/mkcerts.sh, and a 100-certificate chain).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tungstenite::handshake::server::{
    ErrorResponse as WsErrorResponse, Request as WsRequest, Response as WsResponse,
};
use tungstenite::{Message, WebSocket};

use super::wire::Request;

/// How often blocked server threads look at the stop flag.
const TICK: Duration = Duration::from_millis(50);

/// The wire a [`StreamServer`] speaks.
#[derive(Clone)]
pub enum Wire {
    Tcp,
    Tls(Arc<ServerConfig>),
    Ws,
    Wss(Arc<ServerConfig>),
}

impl Wire {
    /// The transport name (`sipreg_user_agent_set_transport`).
    pub fn name(&self) -> &'static str {
        match self {
            Wire::Tcp => "tcp",
            Wire::Tls(_) => "tls",
            Wire::Ws => "ws",
            Wire::Wss(_) => "wss",
        }
    }
}

/// A TCP socket, or TLS over one.
pub enum Io {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Io {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => &s.sock,
        }
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(buf),
            Io::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Io {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Io::Plain(s) => s.write(buf),
            Io::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Plain(s) => s.flush(),
            Io::Tls(s) => s.flush(),
        }
    }
}

enum Framing {
    /// SIP framed by Content-Length.
    Sip { io: Io, buf: Vec<u8> },
    /// One SIP message per WebSocket text frame.
    Ws(Box<WebSocket<Io>>),
}

/// One accepted connection, as the script sees it.
pub struct Conn {
    /// 1-based, in the order the server accepted them.
    pub index: usize,
    framing: Framing,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<(usize, Request)>>>,
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// The length of the first SIP message in `buf`, once it is all there.
fn sip_message_len(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..head]);
    let body: usize = text
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            let n = n.trim();
            (n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l"))
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    (buf.len() >= head + body).then_some(head + body)
}

impl Conn {
    /// Whether the test is over.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The next request from the client (keep-alives skipped); `None` once
    /// the client closed, the connection failed or the server stopped.
    pub fn recv(&mut self) -> Option<Request> {
        let req = loop {
            if self.stopped() {
                return None;
            }
            match &mut self.framing {
                Framing::Sip { io, buf } => {
                    let skip = buf.iter().take_while(|b| **b == b'\r' || **b == b'\n');
                    let skip = skip.count();
                    buf.drain(..skip);
                    if let Some(n) = sip_message_len(buf) {
                        let msg: Vec<u8> = buf.drain(..n).collect();
                        break Request::parse(&msg);
                    }
                    let mut chunk = [0u8; 16 * 1024];
                    match io.read(&mut chunk) {
                        Ok(0) => return None,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        Err(e) if timed_out(&e) => {}
                        Err(_) => return None,
                    }
                }
                Framing::Ws(ws) => match ws.read() {
                    Ok(Message::Text(t)) => break Request::parse(t.as_bytes()),
                    Ok(Message::Binary(b)) => break Request::parse(&b),
                    Ok(Message::Close(_)) => return None,
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(e)) if timed_out(&e) => {}
                    Err(_) => return None,
                },
            }
        };
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.index, req.clone()));
        Some(req)
    }

    /// Sends one SIP message (a text frame on WebSocket); false if the client is gone.
    pub fn send(&mut self, msg: &[u8]) -> bool {
        match &mut self.framing {
            Framing::Sip { io, .. } => io.write_all(msg).and_then(|_| io.flush()).is_ok(),
            Framing::Ws(ws) => ws
                .send(Message::text(String::from_utf8_lossy(msg).into_owned()))
                .is_ok(),
        }
    }

    /// Writes all of `bytes` raw (under any framing), waiting while the
    /// client's buffers are full; false once the client is gone or the
    /// server stopped.
    pub fn push(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            if self.stopped() {
                return false;
            }
            match self.io().write(bytes) {
                Ok(0) => return false,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if timed_out(&e) => {}
                Err(_) => return false,
            }
        }
        self.io().flush().is_ok()
    }

    /// The byte stream under the framing (TLS included), for raw bytes.
    pub fn io(&mut self) -> &mut Io {
        match &mut self.framing {
            Framing::Sip { io, .. } => io,
            Framing::Ws(ws) => ws.get_mut(),
        }
    }

    /// Closes politely (WebSocket close frame, TLS close_notify), then TCP.
    pub fn close(mut self) {
        match &mut self.framing {
            Framing::Ws(ws) => {
                let _ = ws.close(None);
                let _ = ws.flush();
            }
            Framing::Sip { io: Io::Tls(s), .. } => {
                s.conn.send_close_notify();
                let _ = s.flush();
            }
            Framing::Sip { .. } => {}
        }
        let _ = self.io().tcp().shutdown(Shutdown::Both);
    }

    /// Holds the connection open, doing nothing, until the server stops.
    pub fn hold(self) {
        while !self.stopped() {
            std::thread::sleep(TICK);
        }
    }
}

/// The script run on every accepted connection (in a thread of its own).
pub type Script = Arc<dyn Fn(Conn) + Send + Sync>;

/// A stream registrar on 127.0.0.1 that runs `script` per connection.
pub struct StreamServer {
    pub addr: SocketAddr,
    pub wire: Wire,
    /// Connections accepted (TCP accepts, whatever happened next).
    pub accepted: Arc<AtomicUsize>,
    /// Every request received, with its connection's index.
    log: Arc<Mutex<Vec<(usize, Request)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StreamServer {
    pub fn start(wire: Wire, script: impl Fn(Conn) + Send + Sync + 'static) -> StreamServer {
        let script: Script = Arc::new(script);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, l, s, w) = (accepted.clone(), log.clone(), stop.clone(), wire.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let tcp = match listener.accept() {
                    Ok((tcp, _)) => tcp,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                    Err(_) => continue,
                };
                let index = a.fetch_add(1, Ordering::SeqCst) + 1;
                let (l, s, w, script) = (l.clone(), s.clone(), w.clone(), script.clone());
                std::thread::spawn(move || {
                    if let Some(framing) = open(tcp, &w, &s) {
                        script(Conn {
                            index,
                            framing,
                            stop: s,
                            log: l,
                        });
                    }
                });
            }
        });
        StreamServer {
            addr,
            wire,
            accepted,
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// The registrar URI for this server's transport.
    pub fn registrar(&self) -> String {
        format!("sip:{};transport={}", self.addr, self.wire.name())
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter().map(|(_, r)| r.clone()).collect()
    }

    /// How many REGISTERs were received so far.
    pub fn registers(&self) -> usize {
        let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.iter()
            .filter(|(_, r)| r.request_line.starts_with("REGISTER "))
            .count()
    }
}

impl Drop for StreamServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the TLS handshake and the WebSocket upgrade a wire needs.
fn open(tcp: TcpStream, wire: &Wire, stop: &AtomicBool) -> Option<Framing> {
    tcp.set_nonblocking(false).ok()?;
    tcp.set_nodelay(true).ok()?;
    tcp.set_read_timeout(Some(TICK)).ok()?;
    // So a server pushing into a client that stopped reading still sees `stop`.
    tcp.set_write_timeout(Some(TICK)).ok()?;
    let tls = |tcp: TcpStream, config: &Arc<ServerConfig>| -> Option<Io> {
        let conn = ServerConnection::new(config.clone()).ok()?;
        let mut s = StreamOwned::new(conn, tcp);
        while s.conn.is_handshaking() {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            match s.conn.complete_io(&mut s.sock) {
                Ok(_) => {}
                Err(e) if timed_out(&e) => {}
                Err(_) => return None,
            }
        }
        Some(Io::Tls(Box::new(s)))
    };
    let upgrade = |io: Io| -> Option<Framing> {
        let mut hs = tungstenite::accept_hdr(io, grant_sip);
        loop {
            match hs {
                Ok(ws) => return Some(Framing::Ws(Box::new(ws))),
                Err(tungstenite::HandshakeError::Interrupted(mid)) => {
                    if stop.load(Ordering::Relaxed) {
                        return None;
                    }
                    hs = mid.handshake();
                }
                Err(_) => return None,
            }
        }
    };
    match wire {
        Wire::Tcp => Some(Framing::Sip {
            io: Io::Plain(tcp),
            buf: Vec::new(),
        }),
        Wire::Tls(config) => Some(Framing::Sip {
            io: tls(tcp, config)?,
            buf: Vec::new(),
        }),
        Wire::Ws => upgrade(Io::Plain(tcp)),
        Wire::Wss(config) => upgrade(tls(tcp, config)?),
    }
}

/// The client asks for the `sip` subprotocol and insists on getting it.
#[allow(clippy::result_large_err)] // the shape of tungstenite's callback
fn grant_sip(_: &WsRequest, mut resp: WsResponse) -> Result<WsResponse, WsErrorResponse> {
    resp.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().unwrap());
    Ok(resp)
}

/// A 200 OK to a REGISTER granting `expires` to the contact it asked for.
pub fn ok(req: &Request, expires: u32) -> Vec<u8> {
    req.response(
        200,
        "OK",
        &[format!(
            "Contact: <{}>;expires={expires}",
            req.contact_uri()
        )],
    )
}

// ----- certificates ------------------------------------------------------------

/// The throwaway PKI of tests/kamailio/mkcerts.sh, made once per test binary.
pub fn pki() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("sipreg-hostile-{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/mkcerts.sh");
        let st = Command::new("bash").arg(script).arg(&dir).status().unwrap();
        assert!(st.success(), "mkcerts.sh failed");
        dir
    })
}

/// The CA file a client must trust for [`server_config`].
pub fn ca_file() -> String {
    pki().join("ca.pem").display().to_string()
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|c| c.unwrap())
        .collect()
}

/// A rustls server presenting `chain` (leaf first) with `key`.
pub fn config_with(chain: Vec<CertificateDer<'static>>, key: &Path) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// The TLS server side for 127.0.0.1, signed by [`ca_file`]'s CA.
pub fn server_config() -> Arc<ServerConfig> {
    let dir = pki();
    config_with(certs(&dir.join("server.pem")), &dir.join("server.key"))
}

/// Certificates in the chain of [`deep_chain`].
pub const CHAIN_LEN: usize = 100;

/// A chain of [`CHAIN_LEN`] certificates: a leaf for 127.0.0.1 and the CAs
/// above it, each signed by the next, the last by a root that is not sent.
/// Returns the server side and the root's file (the client's trust anchor).
pub fn deep_chain() -> (Arc<ServerConfig>, String) {
    let n = CHAIN_LEN;
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = pki().join("chain");
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .current_dir(&dir)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // EC keys: a hundred of them take a second or two, not a minute.
        let new_key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let ca_ext = [
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ];
        let root: &[&str] = &[
            "-subj",
            "/CN=deep chain 0",
            "-keyout",
            "c0.key",
            "-out",
            "c0.pem",
        ];
        openssl(
            &[
                &["req", "-x509", "-days", "3650"],
                &new_key[..],
                &ca_ext[..],
                root,
            ]
            .concat(),
        );
        for i in 1..=n {
            let (subj, key, pem) = (
                format!("/CN=deep chain {i}"),
                format!("c{i}.key"),
                format!("c{i}.pem"),
            );
            let (ca, ca_key) = (format!("c{}.pem", i - 1), format!("c{}.key", i - 1));
            let signed: &[&str] = &[
                "-subj", &subj, "-keyout", &key, "-out", &pem, "-CA", &ca, "-CAkey", &ca_key,
            ];
            let ext: &[&str] = if i == n {
                &[
                    "-addext",
                    "basicConstraints=critical,CA:FALSE",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ]
            } else {
                &ca_ext[..]
            };
            openssl(
                &[
                    &["req", "-x509", "-days", "3650"],
                    &new_key[..],
                    ext,
                    signed,
                ]
                .concat(),
            );
        }
        dir.clone()
    });
    // The leaf first, then each issuer up to (not including) the root.
    let chain: Vec<CertificateDer<'static>> = (1..=n)
        .rev()
        .flat_map(|i| certs(&dir.join(format!("c{i}.pem"))))
        .collect();
    assert_eq!(chain.len(), n);
    let config = config_with(chain, &dir.join(format!("c{n}.key")));
    (config, dir.join("c0.pem").display().to_string())
}
