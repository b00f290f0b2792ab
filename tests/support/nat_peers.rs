//! Peers for the NAT / outbound tests: a Kamailio with RFC 5626 outbound and
//! STUN (tests/kamailio/outbound.cfg) on a free port, and loopback relays that
//! play the NAT (UDP: the source port can be switched mid-test) or watch a
//! TCP flow (what the client sent, in order; pongs that can be swallowed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::kamailio::free_port;
use super::wait;

/// A private Kamailio running tests/kamailio/outbound.cfg.
pub struct OutboundKamailio {
    pub port: u16,
    /// Plain WebSocket listener (path /).
    pub ws_port: u16,
    /// TLS and secure WebSocket listeners, with [`OutboundKamailio::start_tls`].
    pub tls: Option<TlsPorts>,
    pub rundir: PathBuf,
    child: Child,
}

/// The secure listeners of an outbound Kamailio and the CA that signed them.
pub struct TlsPorts {
    pub tls_port: u16,
    pub wss_port: u16,
    /// The throwaway CA (tests/kamailio/mkcerts.sh) the client must trust.
    pub ca_file: String,
}

/// A free port not in `taken`.
fn another_port(taken: &[u16]) -> u16 {
    loop {
        let p = free_port();
        if !taken.contains(&p) {
            return p;
        }
    }
}

impl OutboundKamailio {
    /// Starts one with the given Flow-Timer and waits until it answers kamcmd.
    pub fn start(flow_timer: u32) -> OutboundKamailio {
        Self::launch(flow_timer, false)
    }

    /// Like [`OutboundKamailio::start`], with TLS and secure WebSocket
    /// listeners too (certificate for 127.0.0.1, signed by a throwaway CA).
    pub fn start_tls(flow_timer: u32) -> OutboundKamailio {
        Self::launch(flow_timer, true)
    }

    fn launch(flow_timer: u32, tls: bool) -> OutboundKamailio {
        Self::launch_cfg("outbound.cfg", flow_timer, tls, &[])
    }

    /// Starts `tests/kamailio/<cfg>` (which takes the same defines as
    /// outbound.cfg) with `defines` added (`NAME` or `NAME=value`).
    pub fn launch_cfg(cfg: &str, flow_timer: u32, tls: bool, defines: &[&str]) -> OutboundKamailio {
        let port = free_port();
        let ws_port = another_port(&[port]);
        let rundir =
            std::env::temp_dir().join(format!("sipreg-kamob-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&rundir);
        let mut secure_args = Vec::new();
        std::fs::create_dir_all(&rundir).unwrap();
        let cfg = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/kamailio")
            .join(cfg);
        for d in defines {
            secure_args.extend(["-A".to_owned(), (*d).to_owned()]);
        }
        let log = std::fs::File::create(rundir.join("kamailio.log")).unwrap();
        let ctl = format!("CTL_SOCK=\"unix:{}/ctl\"", rundir.display());
        let tls = tls.then(|| {
            let tls_port = another_port(&[port, ws_port]);
            let wss_port = another_port(&[port, ws_port, tls_port]);
            let certs = rundir.join("certs");
            let mkcerts =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/mkcerts.sh");
            let st = Command::new("bash")
                .arg(mkcerts)
                .arg(&certs)
                .status()
                .unwrap();
            assert!(st.success(), "mkcerts.sh failed");
            let profile = rundir.join("tls.cfg");
            std::fs::write(
                &profile,
                format!(
                    "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                     require_certificate = no\ncertificate = {0}/server.pem\n\
                     private_key = {0}/server.key\n",
                    certs.display()
                ),
            )
            .unwrap();
            for a in [
                "WITH_TLS".to_owned(),
                format!("TLS_PORT={tls_port}"),
                format!("WSS_PORT={wss_port}"),
                format!("TLS_CFG=\"{}\"", profile.display()),
            ] {
                secure_args.extend(["-A".to_owned(), a]);
            }
            TlsPorts {
                tls_port,
                wss_port,
                ca_file: certs.join("ca.pem").display().to_string(),
            }
        });
        let child = Command::new("kamailio")
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "32", "-M", "8", "-Y"])
            .arg(&rundir)
            .arg("-P")
            .arg(rundir.join("kamailio.pid"))
            .args(["-A", &format!("SIP_PORT={port}"), "-A", &ctl])
            .args(["-A", &format!("FLOW_TIMER={flow_timer}")])
            .args(["-A", &format!("WS_PORT={ws_port}")])
            .args(&secure_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("kamailio (apt-get install kamailio; tests/setup-machine.sh does)");
        let mut k = OutboundKamailio {
            port,
            ws_port,
            tls,
            rundir,
            child,
        };
        let up = wait::until(wait::PATIENCE, || {
            if let Ok(Some(st)) = k.child.try_wait() {
                panic!("kamailio exited ({st}): {}", k.log());
            }
            k.kamcmd(&["core.uptime"]).is_some()
        });
        assert!(up, "kamailio never answered: {}", k.log());
        k
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.rundir.join("kamailio.log")).unwrap_or_default()
    }

    /// Runs `kamcmd` on this instance's control socket: its output, if it succeeded.
    pub fn kamcmd(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(format!("unix:{}/ctl", self.rundir.display()))
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !text.trim().is_empty() && !text.starts_with("error"))
            .then_some(text)
    }

    /// Contact addresses Kamailio holds for `user` (empty if none).
    pub fn bindings(&self, user: &str) -> Vec<String> {
        let at = format!("{user}@127.0.0.1");
        let Some(text) = self.kamcmd(&["ul.lookup", "location", &at]) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("Address: ").map(str::to_owned))
            .collect()
    }

    /// Waits until the bindings of `user` satisfy `pred`; returns the last seen.
    pub fn wait_bindings(
        &self,
        user: &str,
        within: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<String>, Vec<String>> {
        let mut last = Vec::new();
        wait::until_some(within, || {
            last = self.bindings(user);
            pred(&last).then(|| last.clone())
        })
        .ok_or(last)
    }

    pub fn registrar(&self, transport: &str) -> String {
        match transport {
            "udp" => format!("sip:127.0.0.1:{}", self.port),
            t => format!("sip:127.0.0.1:{};transport={t}", self.port),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for OutboundKamailio {
    fn drop(&mut self) {
        // SIGTERM: Kamailio's main process then stops its workers too (a
        // SIGKILL would leave them running, orphaned).
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        if wait::until(Duration::from_secs(5), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        }) {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One datagram or chunk a relay passed from the client towards the server
/// (a relay keeps them in the order they came).
#[derive(Clone, Debug)]
pub struct Seen {
    /// Index of the upstream socket (UDP) or connection (TCP) it went through.
    pub via: usize,
    pub bytes: Vec<u8>,
}

impl Seen {
    pub fn is_register(&self) -> bool {
        self.bytes.starts_with(b"REGISTER ")
    }
    pub fn is_stun(&self) -> bool {
        sipreg::core::stun::is_stun(&self.bytes)
    }
    pub fn is_crlf_ping(&self) -> bool {
        self.bytes == b"\r\n\r\n"
    }
    /// A client WebSocket PING frame (FIN + opcode 9; client frames are masked).
    pub fn is_ws_ping(&self) -> bool {
        self.bytes.first() == Some(&0x89)
    }
    /// A client WebSocket PONG frame (FIN + opcode 10).
    pub fn is_ws_pong(&self) -> bool {
        self.bytes.first() == Some(&0x8A)
    }
    pub fn is_crlf(&self) -> bool {
        self.bytes == b"\r\n"
    }
}

/// A UDP NAT on loopback: the client talks to `addr`; the relay talks to the
/// server from one of several upstream sockets, switchable at any time.
pub struct UdpNat {
    pub addr: SocketAddr,
    pub upstream_ports: Vec<u16>,
    current: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpNat {
    pub fn new(server: SocketAddr, upstreams: usize) -> UdpNat {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ups: Vec<UdpSocket> = (0..upstreams)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        front.set_nonblocking(true).unwrap();
        for u in &ups {
            u.set_nonblocking(true).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let upstream_ports = ups.iter().map(|u| u.local_addr().unwrap().port()).collect();
        let current = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (c, s, log) = (current.clone(), stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                let mut idle = true;
                while let Ok((n, from)) = front.recv_from(&mut buf) {
                    idle = false;
                    client = Some(from);
                    let via = c.load(Ordering::Relaxed);
                    log.lock().unwrap().push(Seen {
                        via,
                        bytes: buf[..n].to_vec(),
                    });
                    let _ = ups[via].send_to(&buf[..n], server);
                }
                for u in &ups {
                    while let Ok((n, _)) = u.recv_from(&mut buf) {
                        idle = false;
                        if let Some(cl) = client {
                            let _ = front.send_to(&buf[..n], cl);
                        }
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        UdpNat {
            addr,
            upstream_ports,
            current,
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// From now on, packets leave from upstream socket `i` (a new NAT mapping).
    pub fn switch(&self, i: usize) {
        self.current.store(i, Ordering::Relaxed);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for UdpNat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP relay on loopback that logs what the client sends (per connection),
/// counts the server's keep-alives (WebSocket PING frames) and answers (CRLF
/// pongs, WebSocket PONG frames), and can swallow the answers on one
/// connection.
pub struct TcpWatch {
    pub addr: SocketAddr,
    /// Connection index (1-based) whose pongs are dropped; 0 = none.
    drop_pongs_on: Arc<AtomicUsize>,
    pub accepted: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Keep-alive answers the server sent (bare CRLF chunks, or WebSocket
    /// PONG frames): the connection index of each.
    pongs: Arc<Mutex<Vec<usize>>>,
    /// WebSocket PING frames the server sent: the connection index of each.
    server_pings: Arc<Mutex<Vec<usize>>>,
}

impl TcpWatch {
    pub fn new(server: SocketAddr) -> TcpWatch {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let drop_pongs_on = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let pongs = Arc::new(Mutex::new(Vec::new()));
        let server_pings = Arc::new(Mutex::new(Vec::new()));
        let (d, a, log, pl, sp) = (
            drop_pongs_on.clone(),
            accepted.clone(),
            seen.clone(),
            pongs.clone(),
            server_pings.clone(),
        );
        // Threads end with the test process (the listener is never closed).
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { continue };
                let idx = a.fetch_add(1, Ordering::SeqCst) + 1;
                let Ok(mut upstream) = TcpStream::connect(server) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = client.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        log.lock().unwrap().push(Seen {
                            via: idx,
                            bytes: buf[..n].to_vec(),
                        });
                        if upstream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = upstream.shutdown(std::net::Shutdown::Both);
                });
                let (d, pl, sp) = (d.clone(), pl.clone(), sp.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = u2.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let chunk = &buf[..n];
                        let crlf = chunk.iter().all(|b| *b == b'\r' || *b == b'\n');
                        let ws_pong = chunk.first() == Some(&0x8A);
                        if chunk.first() == Some(&0x89) {
                            sp.lock().unwrap().push(idx);
                        }
                        if crlf || ws_pong {
                            pl.lock().unwrap().push(idx);
                            if d.load(Ordering::SeqCst) == idx {
                                continue;
                            }
                        }
                        if c2.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = c2.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        TcpWatch {
            addr,
            drop_pongs_on,
            accepted,
            seen,
            pongs,
            server_pings,
        }
    }

    /// Swallow the server's pongs on connection `idx` (1-based).
    pub fn drop_pongs_on(&self, idx: usize) {
        self.drop_pongs_on.store(idx, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Keep-alive answers the server sent on connection `idx` (1-based).
    pub fn pongs_on(&self, idx: usize) -> usize {
        self.pongs
            .lock()
            .unwrap()
            .iter()
            .filter(|i| **i == idx)
            .count()
    }

    /// WebSocket PING frames the server sent on connection `idx` (1-based).
    pub fn server_pings_on(&self, idx: usize) -> usize {
        self.server_pings
            .lock()
            .unwrap()
            .iter()
            .filter(|i| **i == idx)
            .count()
    }

    /// Connections the client opened so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}
