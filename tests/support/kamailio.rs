//! A real Kamailio registrar on loopback: the one `.ci/run` started (found via
//! SIPREG_KAMAILIO_PORT / SIPREG_KAMAILIO_RUNDIR), or one this test process starts.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

pub struct Kamailio {
    pub port: u16,
    pub rundir: PathBuf,
    owned: bool,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/kamctl.sh")
}

impl Kamailio {
    fn start(port: u16, sha256: bool) -> Kamailio {
        let rundir = std::env::temp_dir().join(format!("sipreg-kam-{}-{port}", std::process::id()));
        let mut cmd = Command::new(script());
        cmd.arg("start").arg(&rundir).arg(port.to_string());
        if sha256 {
            cmd.arg("sha256");
        }
        let out = cmd.output().expect("run kamctl.sh");
        assert!(
            out.status.success(),
            "kamailio did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Kamailio {
            port,
            rundir,
            owned: true,
        }
    }

    /// Binding lines ("Address: ...", "Expires: ...") Kamailio holds for `user`.
    pub fn lookup(&self, user: &str) -> Vec<(String, u64)> {
        let out = Command::new(script())
            .arg("lookup")
            .arg(&self.rundir)
            .arg(format!("{user}@127.0.0.1"))
            .output()
            .expect("run kamctl.sh lookup");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut result = Vec::new();
        let mut addr = None;
        for line in text.lines() {
            let l = line.trim();
            if let Some(a) = l.strip_prefix("Address: ") {
                addr = Some(a.to_owned());
            } else if let Some(e) = l.strip_prefix("Expires: ") {
                if let Some(a) = addr.take() {
                    result.push((a, e.trim().parse().unwrap_or(0)));
                }
            }
        }
        result
    }

    pub fn registrar(&self, transport: &str) -> String {
        if transport == "udp" {
            format!("sip:127.0.0.1:{}", self.port)
        } else {
            format!("sip:127.0.0.1:{};transport={transport}", self.port)
        }
    }

    /// Kills and restarts the instance on the same port (registrar restart tests).
    pub fn restart(&self) {
        self.stop();
        let out = Command::new(script())
            .arg("start")
            .arg(&self.rundir)
            .arg(self.port.to_string())
            .output()
            .expect("run kamctl.sh");
        assert!(
            out.status.success(),
            "restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn stop(&self) {
        let _ = Command::new(script())
            .arg("stop")
            .arg(&self.rundir)
            .output();
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if self.owned {
            self.stop();
        }
    }
}

/// A registrar that also speaks TLS, WS and WSS (kamctl.sh "secure").
pub struct Secure {
    pub k: Kamailio,
    pub tls_port: u16,
    pub wrong_port: u16,
    pub ws_port: u16,
    pub wss_port: u16,
    pub expired_port: u16,
}

impl Secure {
    /// Starts one on free ports (`sha256`: challenges with SHA-256).
    pub fn start(sha256: bool) -> Secure {
        let port = free_port();
        let ports: Vec<u16> = (0..5).map(|_| free_tcp_port(port)).collect();
        let rundir =
            std::env::temp_dir().join(format!("sipreg-kams-{}-{port}", std::process::id()));
        let mode = if sha256 { "secure,sha256" } else { "secure" };
        let out = Command::new(script())
            .arg("start")
            .arg(&rundir)
            .arg(port.to_string())
            .arg(mode)
            .args(ports.iter().map(|p| p.to_string()))
            .output()
            .expect("run kamctl.sh");
        assert!(
            out.status.success(),
            "secure kamailio did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        at_exit(rundir.clone());
        Secure {
            k: Kamailio {
                port,
                rundir,
                owned: true,
            },
            tls_port: ports[0],
            wrong_port: ports[1],
            ws_port: ports[2],
            wss_port: ports[3],
            expired_port: ports[4],
        }
    }

    /// A file of the throwaway PKI (`ca.pem`, `other-ca.pem`, ...).
    pub fn cert(&self, name: &str) -> String {
        self.k
            .rundir
            .join("certs")
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    /// kamcmd output for `args` (e.g. `ws.dump`).
    pub fn kamcmd(&self, args: &[&str]) -> String {
        let sock = format!("unix:{}/kamailio_ctl", self.k.rundir.display());
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(sock)
            .args(args)
            .output()
            .expect("run kamcmd");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The shared secure (TLS/WS/WSS, MD5) registrar for this test binary.
pub fn secure() -> &'static Secure {
    static S: OnceLock<Secure> = OnceLock::new();
    S.get_or_init(|| Secure::start(false))
}

/// A port free for TCP on 127.0.0.1 and [::1] (and UDP on 127.0.0.1), other than `not`.
fn free_tcp_port(not: u16) -> u16 {
    loop {
        let port = free_port();
        if port != not && std::net::TcpListener::bind(("::1", port)).is_ok() {
            return port;
        }
    }
}

/// The shared MD5 registrar for this test binary.
pub fn shared() -> &'static Kamailio {
    static K: OnceLock<Kamailio> = OnceLock::new();
    K.get_or_init(|| {
        if let (Ok(p), Ok(d)) = (
            std::env::var("SIPREG_KAMAILIO_PORT"),
            std::env::var("SIPREG_KAMAILIO_RUNDIR"),
        ) {
            return Kamailio {
                port: p.parse().expect("SIPREG_KAMAILIO_PORT"),
                rundir: d.into(),
                owned: false,
            };
        }
        let k = Kamailio::start(free_port(), false);
        // Statics are not dropped: stop it when the test binary exits.
        let rundir = k.rundir.clone();
        at_exit(rundir);
        k
    })
}

/// A private instance (for tests that stop or restart the registrar).
pub fn private(sha256: bool) -> Kamailio {
    Kamailio::start(free_port(), sha256)
}

/// A port free for both UDP and TCP on 127.0.0.1, for a peer (Kamailio,
/// SIPp) to bind. Taken below the kernel's ephemeral range (32768 and up
/// here), so no socket bound to port 0 — the library's own client sockets —
/// can take it between this check and the peer's bind; never the same one
/// twice among the test processes running at once (tests/run-rust-tests.sh
/// runs every binary together): the candidates come from one counter they
/// share.
pub fn free_port() -> u16 {
    const LOW: u16 = 20_000;
    const SPAN: u16 = 12_000;
    loop {
        let port = LOW + (shared_counter() % u64::from(SPAN)) as u16;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// The next value of a counter kept in a file under the temp dir, advanced
/// under an exclusive lock, so concurrent test processes never draw the same.
fn shared_counter() -> u64 {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let path = std::env::temp_dir().join("sipreg-test-ports.counter");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .expect("open the port counter");
    // SAFETY: flock on a descriptor this function owns; released when `f` closes.
    let locked = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0, "lock {}", path.display());
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    let n: u64 = text.trim().parse().unwrap_or(0);
    f.rewind().unwrap();
    f.set_len(0).unwrap();
    write!(f, "{}", n + 1).unwrap();
    n
}

/// A distinct Kamailio user (`user<N>` with password `pw-user<N>`) per call.
pub fn fresh_user() -> (String, String) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = std::process::id() % 10_000 * 1000 + NEXT.fetch_add(1, Ordering::Relaxed);
    let u = format!("user{n}");
    let p = format!("pw-{u}");
    (u, p)
}

fn at_exit(rundir: PathBuf) {
    static DIRS: OnceLock<std::sync::Mutex<Vec<PathBuf>>> = OnceLock::new();
    let dirs = DIRS.get_or_init(|| std::sync::Mutex::new(Vec::new()));
    dirs.lock().unwrap().push(rundir);
    extern "C" fn stop_all() {
        if let Some(d) = DIRS.get() {
            for dir in d.lock().unwrap().iter() {
                let _ = Command::new(script()).arg("stop").arg(dir).output();
            }
        }
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| unsafe {
        libc_atexit(stop_all);
    });
}

extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> i32;
}
