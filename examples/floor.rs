//! The wire floor: what the benchmark's exchange costs a client on this
//! machine when the client does nothing but the I/O.
//!
//! For each of N accounts it sends two REGISTERs and reads two responses,
//! as the benchmark's registration does (the request, the 401, the request
//! again, the final answer), with the same batching (`sendmmsg` and
//! `recvmmsg` over UDP, one write of all queued requests per wake-up over
//! TCP) and at most 64 accounts in flight (the library's largest pacing
//! window). The only SIP logic is what the registrar needs to accept the
//! second request, so that it does the same work as for the library: the
//! nonce is read from the 401 and the digest response computed (MD5, with
//! H(A1) and H(A2) made before the clock starts). Everything else is
//! written before the clock starts, and a response is matched to its
//! account by the number in its Call-ID.
//!
//! The process CPU (user + system, getrusage) from the first send to the
//! last answer is the least any client of this registrar pays here for
//! the same messages: on loopback, the kernel charges the sender for the
//! registrar's receive path too. `examples/run-bench.sh` prints it as the
//! `floor` row beside the library's and SIPp's.
//!
//! With `--spacing-us S` it pauses S µs after each send before reading, as
//! the library's worker spaces its turns (500 µs): what arrives meanwhile
//! is read, answered and sent together.
//!
//! cargo run --release --example floor -- --registrar sip:127.0.0.1:5060 --n 10000 [--transport tcp] [--spacing-us 500]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

mod common;
use common::{registrar_host, rusage_cpu};

/// Accounts in flight at once (the library's largest pacing window).
const WINDOW: usize = 64;
/// Datagrams per `sendmmsg` / `recvmmsg` call.
const BATCH: usize = 64;
/// The receive buffer of one datagram.
const DATAGRAM: usize = 2048;

/// Where an account is.
#[derive(Clone, Copy, PartialEq)]
enum Stage {
    First,
    Second,
    Done,
}

/// Every account's messages, written before the clock starts: the first
/// request whole, the second up to its Authorization header, which is
/// added when the challenge arrives.
struct Requests {
    first: Vec<Vec<u8>>,
    second: Vec<Vec<u8>>,
    /// Where the Authorization header goes in `second`.
    split: Vec<usize>,
    /// H(A1) of every account, and H(A2) (the same for all).
    ha1: Vec<[u8; 32]>,
    ha2: [u8; 32],
    registrar: String,
    host: String,
    first_user: usize,
}

fn hex(d: &[u8]) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, b) in d.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    out
}

fn build(
    n: usize,
    first_user: usize,
    host: &str,
    registrar: &str,
    via: &str,
    local: SocketAddr,
) -> Requests {
    let mut r = Requests {
        first: Vec::with_capacity(n),
        second: Vec::with_capacity(n),
        split: Vec::with_capacity(n),
        ha1: Vec::with_capacity(n),
        ha2: hex(&Md5::digest(format!("REGISTER:{registrar}").as_bytes())),
        registrar: registrar.to_string(),
        host: host.to_string(),
        first_user,
    };
    let contact_param = if via == "TCP" { ";transport=tcp" } else { "" };
    for k in 0..n {
        let user = format!("user{}", first_user + k);
        let head = |cseq: u32| {
            format!(
                "REGISTER {registrar} SIP/2.0\r\n\
                 Via: SIP/2.0/{via} {local};branch=z9hG4bKfloor{k}x{cseq};rport\r\n\
                 Max-Forwards: 70\r\n\
                 To: <sip:{user}@{host}>\r\n\
                 From: <sip:{user}@{host}>;tag=fl{k}\r\n\
                 Call-ID: fl{k}-{first_user}\r\n\
                 CSeq: {cseq} REGISTER\r\n\
                 Contact: <sip:{user}@{local}{contact_param}>;expires=600\r\n\
                 Expires: 600\r\n"
            )
        };
        const TAIL: &str =
            "Allow: OPTIONS\r\nUser-Agent: sipreg-floor\r\nContent-Length: 0\r\n\r\n";
        r.first.push(format!("{}{TAIL}", head(1)).into_bytes());
        let mut second = head(2).into_bytes();
        r.split.push(second.len());
        second.reserve(400);
        r.second.push(second);
        r.ha1.push(hex(&Md5::digest(
            format!("{user}:{host}:pw-{user}").as_bytes(),
        )));
    }
    r
}

/// Completes account `k`'s second request for the challenge in `msg`.
fn answer(req: &mut Requests, k: usize, msg: &[u8]) -> Option<()> {
    const KEY: &[u8] = b"nonce=\"";
    let at = find(msg, KEY)? + KEY.len();
    let len = msg[at..].iter().position(|b| *b == b'"')?;
    let nonce = &msg[at..at + len];
    const CNONCE: &[u8] = b"pldgedrxyhk6yqle";
    let mut h = Md5::new();
    h.update(req.ha1[k]);
    h.update(b":");
    h.update(nonce);
    h.update(b":00000001:");
    h.update(CNONCE);
    h.update(b":auth:");
    h.update(req.ha2);
    let response = hex(&h.finalize());
    let out = &mut req.second[k];
    out.truncate(req.split[k]);
    let user = req.first_user + k;
    let _ = write!(
        out,
        "Authorization: Digest username=\"user{user}\", realm=\"{}\", nonce=\"",
        req.host
    );
    out.extend_from_slice(nonce);
    let _ = write!(out, "\", uri=\"{}\", response=\"", req.registrar);
    out.extend_from_slice(&response);
    out.extend_from_slice(b"\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"");
    out.extend_from_slice(CNONCE);
    out.extend_from_slice(
        b"\"\r\nAllow: OPTIONS\r\nUser-Agent: sipreg-floor\r\nContent-Length: 0\r\n\r\n",
    );
    Some(())
}

/// Where `needle` first occurs in `hay` (glibc's memmem: the least a
/// client can spend finding it).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    // SAFETY: both ranges are valid for their lengths; the result points
    // into `hay` or is null.
    let p = unsafe {
        libc::memmem(
            hay.as_ptr().cast(),
            hay.len(),
            needle.as_ptr().cast(),
            needle.len(),
        )
    };
    (!p.is_null()).then(|| p as usize - hay.as_ptr() as usize)
}

/// The account a response is for: the number after `Call-ID: fl`.
fn account_of(msg: &[u8]) -> Option<usize> {
    const KEY: &[u8] = b"\r\nCall-ID: fl";
    let at = find(msg, KEY)? + KEY.len();
    let digits = msg[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&msg[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// Waits until `fd` is readable, at most `ms` milliseconds; false on timeout.
fn wait_readable(fd: i32, ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd, owned here.
    unsafe { libc::poll(&mut p, 1, ms) > 0 }
}

/// The accounts' progress: what to send next and who is in flight.
struct Run {
    stage: Vec<Stage>,
    next: usize,
    in_flight: usize,
    done: usize,
    /// Accounts whose second request was not answered 200.
    refused: usize,
    /// Requests to send: (account, which).
    queue: Vec<(usize, Stage)>,
}

impl Run {
    fn new(n: usize) -> Run {
        Run {
            stage: vec![Stage::First; n],
            next: 0,
            in_flight: 0,
            done: 0,
            refused: 0,
            queue: Vec::with_capacity(WINDOW * 2),
        }
    }

    /// Starts accounts while the window has room.
    fn fill(&mut self) {
        while self.in_flight < WINDOW && self.next < self.stage.len() {
            self.queue.push((self.next, Stage::First));
            self.next += 1;
            self.in_flight += 1;
        }
    }

    /// A response for account `k`: its second request, or it is done.
    fn answered(&mut self, k: usize, msg: &[u8], req: &mut Requests) {
        match self.stage.get(k) {
            Some(Stage::First) => {
                if answer(req, k, msg).is_none() {
                    eprintln!("floor: account {k}: no challenge in the answer");
                    return;
                }
                self.stage[k] = Stage::Second;
                self.queue.push((k, Stage::Second));
            }
            Some(Stage::Second) => {
                if !msg.starts_with(b"SIP/2.0 200 ") {
                    self.refused += 1;
                }
                self.stage[k] = Stage::Done;
                self.done += 1;
                self.in_flight -= 1;
            }
            _ => {}
        }
    }
}

fn bytes(req: &Requests, (k, which): (usize, Stage)) -> &[u8] {
    if which == Stage::First {
        &req.first[k]
    } else {
        &req.second[k]
    }
}

/// Runs the exchange over UDP; the number of accounts answered twice.
fn run_udp(
    n: usize,
    target: SocketAddr,
    sock: &UdpSocket,
    req: &mut Requests,
    pause: u64,
) -> usize {
    let fd = sock.as_raw_fd();
    let mut run = Run::new(n);
    let mut bufs = vec![[0u8; DATAGRAM]; BATCH];
    // SAFETY (all of the unsafe below): the sockaddr, iovecs and headers
    // point into buffers that outlive each call.
    let (dest, dest_len) = sockaddr(target);
    while run.done < n {
        run.fill();
        for chunk in run.queue.chunks(BATCH) {
            let mut iov: Vec<libc::iovec> = chunk
                .iter()
                .map(|&m| {
                    let b = bytes(req, m);
                    libc::iovec {
                        iov_base: b.as_ptr() as *mut _,
                        iov_len: b.len(),
                    }
                })
                .collect();
            let mut hdrs: Vec<libc::mmsghdr> = iov
                .iter_mut()
                .map(|v| {
                    let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    h.msg_hdr.msg_name = &dest as *const _ as *mut _;
                    h.msg_hdr.msg_namelen = dest_len;
                    h.msg_hdr.msg_iov = v;
                    h.msg_hdr.msg_iovlen = 1;
                    h
                })
                .collect();
            let mut sent = 0;
            while sent < hdrs.len() {
                let rc = unsafe {
                    libc::sendmmsg(fd, hdrs[sent..].as_mut_ptr(), (hdrs.len() - sent) as u32, 0)
                };
                if rc <= 0 {
                    eprintln!("floor: sendmmsg: {}", std::io::Error::last_os_error());
                    return run.done;
                }
                sent += rc as usize;
            }
        }
        run.queue.clear();
        if pause > 0 {
            std::thread::sleep(Duration::from_micros(pause));
        }
        let mut iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr() as *mut _,
                iov_len: DATAGRAM,
            })
            .collect();
        let mut hdrs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
                h
            })
            .collect();
        let got = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if got <= 0 {
            // Nothing there: wait for it.
            if !wait_readable(fd, 3000) {
                eprintln!(
                    "floor: no answer for 3 s ({} of {n} done): a datagram was lost",
                    run.done
                );
                return run.done;
            }
            continue;
        }
        for (h, b) in hdrs.iter().zip(&bufs).take(got as usize) {
            let msg = &b[..h.msg_len as usize];
            if let Some(k) = account_of(msg) {
                run.answered(k, msg, req);
            }
        }
    }
    run.done - run.refused
}

/// Runs the exchange over one TCP connection; the number of accounts
/// answered twice.
fn run_tcp(n: usize, mut conn: TcpStream, req: &mut Requests, pause: u64) -> usize {
    let fd = conn.as_raw_fd();
    let mut run = Run::new(n);
    let mut out = Vec::with_capacity(WINDOW * 1024);
    let mut inbuf = vec![0u8; 256 * 1024];
    let mut have = 0;
    while run.done < n {
        run.fill();
        for &m in &run.queue {
            out.extend_from_slice(bytes(req, m));
        }
        run.queue.clear();
        let mut written = 0;
        while written < out.len() {
            match conn.write(&out[written..]) {
                Ok(w) => written += w,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    // The registrar is not reading: wait for it to answer.
                    wait_readable(fd, 10);
                    break;
                }
                Err(e) => {
                    eprintln!("floor: write: {e}");
                    return run.done;
                }
            }
        }
        out.drain(..written);
        if pause > 0 {
            std::thread::sleep(Duration::from_micros(pause));
        }
        // Read what is there; wait only when nothing is.
        match conn.read(&mut inbuf[have..]) {
            Ok(0) => {
                eprintln!("floor: the registrar closed the connection");
                return run.done;
            }
            Ok(r) => have += r,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if !wait_readable(fd, 3000) {
                    eprintln!("floor: no answer for 3 s ({} of {n} done)", run.done);
                    return run.done;
                }
                continue;
            }
            Err(e) => {
                eprintln!("floor: read: {e}");
                return run.done;
            }
        }
        // Every answer is a header section ending in a blank line (Content-Length: 0).
        let mut from = 0;
        while let Some(end) = find(&inbuf[from..have], b"\r\n\r\n") {
            let msg = &inbuf[from..from + end];
            if let Some(k) = account_of(msg) {
                run.answered(k, msg, req);
            }
            from += end + 4;
        }
        inbuf.copy_within(from..have, 0);
        have -= from;
    }
    run.done - run.refused
}

fn sockaddr(a: SocketAddr) -> (libc::sockaddr_in, libc::socklen_t) {
    let SocketAddr::V4(v4) = a else {
        panic!("floor: IPv4 loopback only");
    };
    let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    s.sin_family = libc::AF_INET as libc::sa_family_t;
    s.sin_port = v4.port().to_be();
    s.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
    (
        s,
        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut n = 10_000usize;
    let mut registrar = String::from("sip:127.0.0.1:5060");
    let mut first_user = 1usize;
    let mut transport = String::from("udp");
    let mut pause = 0u64;
    let mut i = 1;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--n" => n = args[i + 1].parse().expect("--n"),
            "--registrar" => registrar = args[i + 1].clone(),
            "--first-user" => first_user = args[i + 1].parse().expect("--first-user"),
            "--transport" => transport = args[i + 1].clone(),
            "--spacing-us" => pause = args[i + 1].parse().expect("--spacing-us"),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    let host = registrar_host(&registrar);
    let port: u16 = registrar
        .rsplit(':')
        .next()
        .and_then(|p| p.split(';').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(5060);
    let target: SocketAddr = format!("{host}:{port}").parse().expect("registrar address");
    assert!(target.ip().is_loopback(), "benchmarks only target loopback");

    // The messages are written before the clock starts.
    let begin = |via: &str, local: SocketAddr| {
        let req = build(n, first_user, &host, &registrar, via, local);
        (req, rusage_cpu(), Instant::now())
    };
    let (done, c0, t0) = match transport.as_str() {
        "udp" => {
            let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
            sock.set_nonblocking(true).expect("nonblocking");
            let (mut req, c0, t0) = begin("UDP", sock.local_addr().unwrap());
            (run_udp(n, target, &sock, &mut req, pause), c0, t0)
        }
        "tcp" => {
            let conn =
                TcpStream::connect_timeout(&target, Duration::from_secs(3)).expect("connect");
            conn.set_nonblocking(true).expect("nonblocking");
            conn.set_nodelay(true).expect("nodelay");
            let (mut req, c0, t0) = begin("TCP", conn.local_addr().unwrap());
            (run_tcp(n, conn, &mut req, pause), c0, t0)
        }
        other => panic!("floor: udp or tcp, not {other}"),
    };
    let wall = t0.elapsed().as_secs_f64();
    let used = rusage_cpu() - c0;
    println!(
        "RESULT impl=floor transport={transport} n={n} spacing_us={pause} wall={wall:.4} cpu={used:.4} us_per_reg={:.2} \
         peak_kib=0 kib_per_reg=0 retrans=0 failures={}",
        used / n as f64 * 1e6,
        n - done
    );
    std::process::exit(if done == n { 0 } else { 1 });
}
