//! Hostile input on the live socket and credential hygiene, against the real
//! Kamailio registrar on loopback, through the C ABI.
//!
//! - Junk, truncated / garbled / oversized / misrouted responses sent to a
//!   registered registerer's UDP port are dropped and counted in
//!   `stats.dropped`; requests are answered (OPTIONS 200, others 405, an ACK
//!   nothing), never dropped in silence; the registration and its refresh
//!   are unaffected.
//! - Through a transparent relay (which sees our real requests): responses
//!   with the right branch but a wrong Call-ID / CSeq, and an exact copy of the
//!   registrar's answer from another address, are dropped too.
//! - A flood of 100 000 junk datagrams: still Registered, refresh still works,
//!   resident memory stays flat.
//! - Credentials: at DEBUG level no log line (nor `sipreg_last_error()`) ever
//!   shows the password, its digest HA1, or an Authorization header.
//! - Hostile registrars written here (tests/support/hostile_peers.rs, issue
//!   20): closing or sending junk after every 200 over TCP, TLS, WS and WSS
//!   (at most 8 connections in 15 s), a server that never reads, slowloris,
//!   an endless header, 100 MB messages and WebSocket frames, a TLS handshake
//!   stalled after the ServerHello, a 100-certificate chain, a 423 asking
//!   for 2^32 s, Retry-After 0 and past u32, 100 000 wrong-branch responses,
//!   the digest downgrade, and the per-target connection rate limit. Each
//!   counts connections and requests, checks resident memory and the reason.
//!
//! The log sink is process-wide and tests in one file run in parallel, so the
//! tests that care (credentials capture, the flood) take `EXCLUSIVE`.

mod support;

use std::ffi::{c_char, c_void, CStr, CString};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sipreg::ffi::global::{sipreg_log_level, sipreg_set_log_callback};
use sipreg::ffi::sipreg_result::{self, *};
use sipreg::ffi::user_agent::*;
use support::capi::*;
use support::kamailio::{fresh_user, shared};
use support::rng::Rng;
use support::wire::Request;

const WAIT: Duration = support::wait::PATIENCE;

static EXCLUSIVE: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn registered_udp(user: &str, pw: &str, expires: u32, registrar: Option<String>) -> (Ua, Reg) {
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(pw)
        .transport("udp")
        // Counters of unmatched datagrams go to a socket's owner: a private one is ours.
        .private_socket(true);
    let opts = Opts {
        expires,
        registrar: Some(registrar.unwrap_or_else(|| shared().registrar("udp"))),
        retry: false,
        ..Default::default()
    };
    let mut r = Reg::new(&ua, &opts);
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "registered: {:?}",
        r.events()
    );
    (ua, r)
}

/// The local UDP address of our contact, from the registrar's 2xx.
fn contact_addr(r: &Reg) -> SocketAddr {
    let contacts = r.contacts();
    assert!(!contacts.is_empty(), "a contact after registering");
    let c = &contacts[0];
    let hostport = c.split('@').nth(1).expect("contact has a user part");
    let hostport = hostport.split([';', '>', '?']).next().unwrap();
    hostport
        .parse()
        .unwrap_or_else(|e| panic!("contact {c}: {e}"))
}

/// Waits for one more 200 (the automatic refresh) and checks it left us Registered.
fn expect_refresh(r: &mut Reg, what: &str) {
    let before = r.count_200();
    assert!(
        r.wait_200s(before + 1, WAIT),
        "{what}: a refresh was accepted: {:?}",
        r.events()
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED, "{what}");
}

/// Waits until `ua`'s dropped counter reached `at_least`; returns the value.
fn wait_dropped(ua: &Ua, at_least: u64) -> u64 {
    support::wait::until(WAIT, || ua.stats().dropped >= at_least);
    ua.stats().dropped
}

fn state_changes(evs: &[Ev]) -> Vec<Ev> {
    evs.iter()
        .filter(|e| matches!(e, Ev::State(_)))
        .cloned()
        .collect()
}

/// A complete, well-formed REGISTER response.
fn response(
    status: &str,
    branch: &str,
    call_id: &str,
    cseq: &str,
    user: &str,
    contact: SocketAddr,
) -> String {
    format!(
        "SIP/2.0 {status}\r\n\
         Via: SIP/2.0/UDP {contact};branch={branch};rport={};received=127.0.0.1\r\n\
         From: <sip:{user}@127.0.0.1>;tag=1928301774\r\n\
         To: <sip:{user}@127.0.0.1>;tag=a6c85cf\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq}\r\n\
         Contact: <sip:{user}@{contact}>;expires=3600\r\n\
         Server: hostile\r\n\
         Content-Length: 0\r\n\r\n",
        contact.port()
    )
}

/// The hostile datagrams of the direct test, by category.
fn hostile_set(rng: &mut Rng, user: &str, contact: SocketAddr) -> Vec<(&'static str, Vec<u8>)> {
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let good = |rng: &mut Rng| {
        let branch = format!("z9hG4bK{}{}", rng.token(10), rng.token(12));
        response(
            "200 OK",
            &branch,
            &rng.token(24),
            "2 REGISTER",
            user,
            contact,
        )
    };
    // Random bytes (never only CR/LF, which is a keep-alive and not a drop).
    for _ in 0..40 {
        let n = 1 + rng.below(1400);
        let mut b = rng.bytes(n);
        if b[0] == b'\r' || b[0] == b'\n' {
            b[0] = b'x';
        }
        out.push(("random bytes", b));
    }
    // Truncated responses at many cut points (never inside the leading CR/LF).
    let full = good(rng);
    for cut in [
        1,
        3,
        7,
        8,
        11,
        12,
        15,
        30,
        60,
        100,
        150,
        200,
        250,
        full.len() - 4,
        full.len() - 2,
    ] {
        out.push((
            "truncated response",
            full.as_bytes()[..cut.min(full.len() - 1)].to_vec(),
        ));
    }
    // Garbled responses: random byte flips, NULs, non-UTF-8, broken headers.
    for _ in 0..20 {
        let mut b = good(rng).into_bytes();
        for _ in 0..1 + rng.below(8) {
            let i = 8 + rng.below(b.len() - 8);
            b[i] = rng.next() as u8;
        }
        out.push(("garbled response", b));
    }
    let s = good(rng);
    for garbled in [
        s.replace("SIP/2.0 200 OK", "SIP/2.0 2000 OK"),
        s.replace("SIP/2.0 200 OK", "SIP/2.0 -1 Bad"),
        s.replace("SIP/2.0 200 OK", "SIP/3.0 200 OK"),
        s.replace("SIP/2.0 200 OK", "SIP/2.0 099 Too Low"),
        s.replace("SIP/2.0 200 OK", "SIP/2.0 200"),
        s.replace("CSeq: 2 REGISTER", "CSeq: 99999999999999999999 REGISTER"),
        s.replace("CSeq: 2 REGISTER", "CSeq: REGISTER"),
        s.replace("CSeq: 2 REGISTER", "CSeq: -5 REGISTER"),
        s.replace("Content-Length: 0", "Content-Length: 18446744073709551615"),
        s.replace("Content-Length: 0", "Content-Length: -1"),
        s.replace("Content-Length: 0", "Content-Length: 100"),
        s.replace("Via: SIP/2.0/UDP", "Via:"),
        s.replace("\r\n", "\n"),
        s.replace("\r\n", "\r"),
        s.replace("Call-ID", "Call-ID\0"),
        s.replace("To: ", "To: \u{7f}\u{1}"),
        s.replace("branch=z9hG4bK", "branch="),
        s.replace("branch=z9hG4bK", "branch=z9hG4bK\u{e9}\u{e9}"),
        s.replace(";rport=", ";rport=99999999999;x="),
        format!("{s}{}", "X".repeat(3000)),
        s.replace(
            "Server: hostile\r\n",
            &"Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n".repeat(500),
        ),
        s.replace(
            "Server: hostile",
            &format!("Server: {}", "h".repeat(20_000)),
        ),
    ] {
        out.push(("garbled response", garbled.into_bytes()));
    }
    let mut bad_utf8 = good(rng).into_bytes();
    bad_utf8.splice(30..30, [0xff, 0xfe, 0xc3, 0x28]);
    out.push(("garbled response", bad_utf8));
    // Oversized: the largest IPv4 UDP payload.
    let mut big = rng.bytes(65_507);
    big[0] = b'Z';
    out.push(("oversized junk", big));
    let padded = {
        let s = good(rng);
        let pad = 65_507 - s.len() - "X-Pad: \r\n".len();
        s.replace(
            "Server: hostile\r\n",
            &format!("Server: hostile\r\nX-Pad: {}\r\n", "p".repeat(pad)),
        )
    };
    assert_eq!(padded.len(), 65_507);
    out.push(("oversized response", padded.into_bytes()));
    let mut body = good(rng).replace("Content-Length: 0", "Content-Length: 60000");
    body.push_str(&"b".repeat(60_000));
    out.push(("oversized response", body.into_bytes()));
    // Unknown branches: random keys after the magic cookie, random Call-IDs and CSeqs.
    for _ in 0..20 {
        out.push(("unknown branch", good(rng).into_bytes()));
    }
    for status in [
        "100 Trying",
        "401 Unauthorized",
        "403 Forbidden",
        "423 Interval Too Brief",
        "503 Service Unavailable",
    ] {
        let branch = format!("z9hG4bK{}", rng.token(10));
        let cseq = format!("{} REGISTER", 1 + rng.below(10));
        out.push((
            "unknown branch",
            response(status, &branch, &rng.token(20), &cseq, user, contact).into_bytes(),
        ));
    }
    out.push((
        "no branch",
        response("200 OK", "abc", "x", "1 REGISTER", user, contact).into_bytes(),
    ));
    // Requests instead of responses.
    for method in [
        "OPTIONS", "INVITE", "REGISTER", "BYE", "NOTIFY", "MESSAGE", "ACK", "CANCEL",
    ] {
        let req = format!(
            "{method} sip:{user}@{contact} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:mallory@127.0.0.1>;tag=1\r\n\
             To: <sip:{user}@127.0.0.1>\r\n\
             Call-ID: {}\r\n\
             CSeq: 1 {method}\r\n\
             Contact: <sip:mallory@127.0.0.1:5999>\r\n\
             Content-Length: 0\r\n\r\n",
            rng.token(16),
            rng.token(16)
        );
        out.push(("request", req.into_bytes()));
    }
    out
}

#[test]
fn hostile_datagrams_are_dropped_and_the_registration_survives() {
    let (user, pw) = fresh_user();
    let (ua, mut r) = registered_udp(&user, &pw, 5, None);
    let target = contact_addr(&r);
    assert!(target.ip().is_loopback(), "{target}");
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_ne!(attacker.local_addr().unwrap().port(), shared().port);
    let states_before = state_changes(&r.events());
    println!("hostile: VmRSS at start {} KiB", vm_rss_kib());
    let stats0 = ua.stats();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let set = hostile_set(&mut rng, &user, target);

    // One category at a time, waiting for the counter after each datagram so a
    // full socket buffer cannot lose any (big datagrams) and a miss is attributable.
    let mut sent = 0u64;
    let mut per_kind: Vec<(&str, u64)> = Vec::new();
    let mut answered = 0u64;
    attacker
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let me = attacker.local_addr().unwrap();
    for (kind, bytes) in &set {
        if *kind == "request" {
            // Requests reach our contact: answered (never dropped in silence),
            // to the address their Via names.
            let text = String::from_utf8_lossy(bytes).replace(
                "Via: SIP/2.0/UDP 127.0.0.1:5999",
                &format!("Via: SIP/2.0/UDP {me}"),
            );
            let method = text.split(' ').next().unwrap_or_default().to_owned();
            let requests = ua.stats().requests;
            attacker.send_to(text.as_bytes(), target).unwrap();
            if method == "ACK" {
                let end = Instant::now() + WAIT;
                while ua.stats().requests == requests && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(5));
                }
                assert_eq!(ua.stats().requests, requests + 1, "the ACK arrived");
                continue;
            }
            let mut buf = [0u8; 4096];
            let (n, _) = attacker
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("{method}: no answer: {e}"));
            let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
            // Without a listener: OPTIONS 200, CANCEL 481 (it matches no
            // transaction; every UA accepts CANCEL), the others 405.
            let want = match method.as_str() {
                "OPTIONS" => "SIP/2.0 200 ",
                "CANCEL" => "SIP/2.0 481 ",
                _ => "SIP/2.0 405 ",
            };
            assert!(answer.starts_with(want), "{method} got {answer}");
            if !matches!(method.as_str(), "OPTIONS" | "CANCEL") {
                assert!(answer.contains("\r\nAllow: OPTIONS\r\n"), "{answer}");
            }
            answered += 1;
            assert_eq!(r.state(), SIPREG_STATE_REGISTERED, "after a {method}");
            continue;
        }
        let before = ua.stats().dropped;
        attacker.send_to(bytes, target).unwrap();
        sent += 1;
        let after = wait_dropped(&ua, before + 1);
        assert!(
            after > before,
            "{kind} datagram ({} bytes) was not counted as dropped: {:?}",
            bytes.len(),
            String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
        );
        match per_kind.iter_mut().find(|(k, _)| k == kind) {
            Some((_, n)) => *n += 1,
            None => per_kind.push((kind, 1)),
        }
        assert_eq!(
            r.state(),
            SIPREG_STATE_REGISTERED,
            "after a {kind} datagram"
        );
    }
    let stats1 = ua.stats();
    println!("hostile: VmRSS {} KiB", vm_rss_kib());
    println!(
        "hostile: sent {sent} datagrams {per_kind:?}; dropped {} -> {} (+{}), received {} -> {} (+{})",
        stats0.dropped,
        stats1.dropped,
        stats1.dropped - stats0.dropped,
        stats0.received,
        stats1.received,
        stats1.received - stats0.received
    );
    assert!(
        stats1.dropped - stats0.dropped >= sent,
        "every hostile datagram counted as dropped"
    );
    assert_eq!(answered, 7, "every request but the ACK answered");
    assert_eq!(stats1.requests - stats0.requests, 8);
    assert!(
        stats1.received - stats0.received >= sent,
        "every hostile datagram counted as received"
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    assert_eq!(
        state_changes(&r.events()),
        states_before,
        "no state change from hostile input"
    );
    assert!(
        !r.events()
            .iter()
            .any(|e| matches!(e, Ev::Response(c, _) if *c != 200 && *c != 401)),
        "no forged final response was reported: {:?}",
        r.events()
    );

    // The registration still refreshes (expires 5 s, refresh at 99 %).
    expect_refresh(&mut r, "after the hostile datagrams");
    assert_eq!(
        shared().lookup(&user).len(),
        1,
        "Kamailio still holds our binding"
    );
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

/// Resident set size of this process in KiB.
/// Bytes the kernel holds for the UDP socket bound to `port` (/proc/net/udp;
/// any local address: the library may bind the wildcard).
fn udp_rx_queue(port: u16) -> u64 {
    let local = format!(":{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let queues = f
                .get(4)
                .filter(|_| f.get(1).is_some_and(|a| a.ends_with(&local)))?;
            u64::from_str_radix(queues.split(':').nth(1)?, 16).ok()
        })
        .sum()
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

#[test]
fn a_flood_of_junk_leaves_registration_and_memory_intact() {
    let _x = exclusive();
    let (user, pw) = fresh_user();
    let (ua, mut r) = registered_udp(&user, &pw, 5, None);
    let target = contact_addr(&r);
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = Rng(0xf100_d5ee_d000_0001);
    // A pool of junk: random bytes, garbage responses with unknown branches, requests.
    let mut pool: Vec<Vec<u8>> = Vec::new();
    for i in 0..64 {
        pool.push(match i % 4 {
            0 => {
                let n = 20 + rng.below(1200);
                let mut b = rng.bytes(n);
                b[0] = b'J';
                b
            }
            1 => {
                let branch = format!("z9hG4bK{}", rng.token(10));
                response("200 OK", &branch, &rng.token(20), "7 REGISTER", &user, target).into_bytes()
            }
            2 => format!("OPTIONS sip:{user}@{target} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bK{}\r\n\r\n", rng.token(8))
                .into_bytes(),
            _ => b"SIP/2.0 200 OK\r\nVia: broken\r\n".to_vec(),
        });
    }
    let stats0 = ua.stats();
    let responses0 = r
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::Response(..)))
        .count();
    let rss0 = vm_rss_kib();
    let t0 = Instant::now();
    const N: u64 = 100_000;
    const BATCH: u64 = 64;
    const FLOOD_FOR: Duration = Duration::from_secs(6);
    let refreshes0 = r.count_200();
    let big = {
        let mut b = vec![b'O'; 65_507];
        b[..4].copy_from_slice(b"SIP/");
        b
    };
    let mut send_errors = 0u64;
    let mut rss_peak = rss0;
    for i in 0..N {
        // Now and then the largest datagram there is.
        let dgram: &[u8] = if i % 10_000 == 9_999 {
            &big
        } else {
            &pool[(i % pool.len() as u64) as usize]
        };
        if attacker.send_to(dgram, target).is_err() {
            send_errors += 1;
        }
        // After each batch, let the library drain its socket (until the kernel
        // holds nothing more for it): a flood it can read however loaded the
        // machine is, not a measure of kernel buffer sizes.
        if i % BATCH == BATCH - 1 {
            let end = Instant::now() + WAIT;
            while udp_rx_queue(target.port()) > 0 && Instant::now() < end {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        // Spread the flood over more than one refresh interval (expires 5 s),
        // so a refresh has to get through while it lasts.
        if i % BATCH == BATCH - 1 {
            let due = t0 + FLOOD_FOR.mul_f64((i + 1) as f64 / N as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        if i % 10_000 == 0 {
            rss_peak = rss_peak.max(vm_rss_kib());
        }
    }
    // Then a burst with no pause at all: the socket buffer overflows.
    const BURST: u64 = 20_000;
    for i in 0..BURST {
        if attacker
            .send_to(&pool[(i % pool.len() as u64) as usize], target)
            .is_err()
        {
            send_errors += 1;
        }
    }
    let sent_for = t0.elapsed();
    // Let the library drain its socket.
    let settle_end = Instant::now() + Duration::from_secs(3);
    let mut last = ua.stats().dropped;
    while Instant::now() < settle_end {
        std::thread::sleep(Duration::from_millis(100));
        let d = ua.stats().dropped;
        if d == last {
            break;
        }
        last = d;
    }
    let stats1 = ua.stats();
    let rss1 = vm_rss_kib();
    let refreshes = r.count_200() - refreshes0;
    let dropped = stats1.dropped - stats0.dropped;
    let received = stats1.received - stats0.received;
    println!(
        "flood: sent {N} paced + {BURST} burst datagrams in {:.2} s ({send_errors} send errors); library received \
         +{received}, dropped +{dropped} (the kernel discarded {} on a full socket buffer); {refreshes} refresh(es) \
         accepted during the flood; VmRSS {rss0} KiB -> {rss1} KiB ({:+} KiB, peak {rss_peak} KiB)",
        sent_for.as_secs_f64(),
        (N + BURST).saturating_sub(received),
        rss1 as i64 - rss0 as i64
    );
    assert!(
        refreshes >= 1,
        "a refresh got through during the flood: {:?}",
        r.events()
    );
    // Everything received was dropped, except the registrar's answers to our refreshes.
    let responses = r
        .events()
        .iter()
        .filter(|e| matches!(e, Ev::Response(..)))
        .count()
        - responses0;
    assert!(
        dropped + responses as u64 >= received,
        "everything the library received was dropped (+{received} received, +{dropped} dropped, {responses} responses)"
    );
    assert!(
        received >= N / 2,
        "the library saw most of the flood (+{received} of {N})"
    );
    assert_eq!(
        r.state(),
        SIPREG_STATE_REGISTERED,
        "still registered after the flood"
    );
    assert!(
        rss1 < rss0 + 20 * 1024,
        "memory grew by {} KiB during the flood (limit 20 MiB)",
        rss1 as i64 - rss0 as i64
    );
    expect_refresh(&mut r, "after the flood");
    let rss2 = vm_rss_kib();
    println!("flood: VmRSS after the refresh {rss2} KiB");
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

/// A transparent UDP relay between our registerer and Kamailio. It records the
/// REGISTERs it forwards and, around each of Kamailio's responses (see
/// [`Inject`]), injects the forgeries of [`forgeries_of`].
struct Relay {
    addr: SocketAddr,
    forged: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn replace_header(msg: &str, name: &str, f: impl Fn(&str) -> String) -> String {
    msg.split("\r\n")
        .map(|l| match l.split_once(':') {
            Some((n, v)) if n.trim().eq_ignore_ascii_case(name) => format!("{n}: {}", f(v.trim())),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// When the relay injects its forgeries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inject {
    None,
    /// Before forwarding the genuine response (the transaction is waiting).
    Before,
    /// Right after it (the transaction just completed).
    After,
}

/// Forgeries of a genuine response `text`: (sent from another address?, bytes).
/// From the relay's address: wrong Call-ID, wrong CSeq number, wrong CSeq
/// method, a branch differing in its last character (same registerer key);
/// from another socket: the genuine response itself turned into a 403.
fn forgeries_of(text: &str) -> Vec<(bool, String)> {
    let status_line = &text[..text.find("\r\n").unwrap()];
    let as_403 = |m: String| m.replacen(status_line, "SIP/2.0 403 Forbidden", 1);
    vec![
        (
            false,
            as_403(replace_header(text, "Call-ID", |v| format!("{v}x"))),
        ),
        (
            false,
            replace_header(text, "CSeq", |v| {
                let (num, method) = v.split_once(' ').unwrap();
                format!("{} {method}", num.parse::<u32>().unwrap() + 1)
            }),
        ),
        (
            false,
            as_403(replace_header(text, "CSeq", |v| {
                let (num, _) = v.split_once(' ').unwrap();
                format!("{num} INVITE")
            })),
        ),
        (
            false,
            replace_header(text, "Via", |v| {
                let i = v.find("branch=").unwrap() + "branch=".len();
                let end = v[i..].find(';').map_or(v.len(), |e| i + e);
                let mut b = v[i..end].to_owned();
                let last = b.pop().unwrap();
                b.push(if last == 'a' { 'b' } else { 'a' });
                format!("{}{b}{}", &v[..i], &v[end..])
            }),
        ),
        (true, as_403(text.to_owned())),
    ]
}

impl Relay {
    fn start(kamailio: SocketAddr, inject: Inject) -> Relay {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let forged = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, fw, rq, st) = (
            forged.clone(),
            forwarded.clone(),
            requests.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut client: Option<SocketAddr> = None;
            let mut buf = vec![0u8; 70_000];
            while !st.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let msg = &buf[..n];
                if from == kamailio {
                    let Some(c) = client else { continue };
                    let text = String::from_utf8_lossy(msg).into_owned();
                    let forgeries = if inject == Inject::None {
                        Vec::new()
                    } else {
                        forgeries_of(&text)
                    };
                    let send_forgeries = || {
                        for (from_other, forgery) in &forgeries {
                            let s = if *from_other { &other } else { &sock };
                            s.send_to(forgery.as_bytes(), c).unwrap();
                            f.fetch_add(1, Ordering::Relaxed);
                        }
                        // Loopback delivers each datagram during its send_to:
                        // these are queued before what comes next.
                    };
                    if inject == Inject::Before {
                        send_forgeries();
                    }
                    sock.send_to(msg, c).unwrap();
                    fw.fetch_add(1, Ordering::Relaxed);
                    if inject == Inject::After {
                        send_forgeries();
                    }
                } else {
                    client = Some(from);
                    rq.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Request::parse(msg));
                    sock.send_to(msg, kamailio).unwrap();
                }
            }
        });
        Relay {
            addr,
            forged,
            forwarded,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn forged_responses_with_the_real_branch_are_dropped() {
    let k = shared();
    let kamailio: SocketAddr = format!("127.0.0.1:{}", k.port).parse().unwrap();
    let relay = Relay::start(kamailio, Inject::Before);
    let (user, pw) = fresh_user();
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(&pw)
        .transport("udp")
        // Counters of unmatched datagrams go to a socket's owner: a private one is ours.
        .private_socket(true);
    // The relay is a NAT for the registrar: no contact rewrite, so the only
    // REGISTERs are the ones this test counts.
    support::nat_capi::contact_rewrite(&ua, false);
    let opts = Opts {
        expires: 5,
        registrar: Some(format!("sip:{}", relay.addr)),
        retry: false,
        ..Default::default()
    };
    let mut r = Reg::new(&ua, &opts);
    let stats0 = ua.stats();
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "registered through the relay: {:?}",
        r.events()
    );
    let forged = relay.forged.load(Ordering::Relaxed);
    let dropped = wait_dropped(&ua, stats0.dropped + forged) - stats0.dropped;
    {
        let reqs = relay.requests.lock().unwrap();
        assert!(
            reqs.len() >= 2,
            "a REGISTER and its authenticated resend: {}",
            reqs.len()
        );
        for q in reqs.iter() {
            assert!(
                q.request_line.starts_with("REGISTER "),
                "{}",
                q.request_line
            );
            assert!(q.branch().starts_with("z9hG4bK"), "{}", q.branch());
        }
    }
    println!(
        "relay: forwarded {} responses, injected {forged} forgeries, dropped +{dropped}",
        relay.forwarded.load(Ordering::Relaxed)
    );
    assert!(
        forged >= 10,
        "forgeries were injected for the 401 and the 200"
    );
    assert!(
        dropped >= forged,
        "every forgery counted as dropped ({dropped} < {forged})"
    );
    let evs = r.events();
    assert!(
        evs.iter()
            .all(|e| !matches!(e, Ev::Response(c, _) if *c == 403)),
        "a forged 403 was accepted: {evs:?}"
    );
    assert_eq!(
        state_changes(&evs),
        vec![Ev::State(SIPREG_STATE_REGISTERED)],
        "{evs:?}"
    );
    // The refresh goes through the relay too, with forgeries around it.
    let forged_before = relay.forged.load(Ordering::Relaxed);
    expect_refresh(&mut r, "through the relay");
    let forged_refresh = relay.forged.load(Ordering::Relaxed) - forged_before;
    assert!(forged_refresh >= 5, "forgeries around the refresh");
    let total_forged = relay.forged.load(Ordering::Relaxed);
    let dropped = wait_dropped(&ua, stats0.dropped + total_forged) - stats0.dropped;
    assert!(
        dropped >= total_forged,
        "every forgery counted as dropped ({dropped} < {total_forged})"
    );
    assert!(r
        .events()
        .iter()
        .all(|e| !matches!(e, Ev::Response(403, _))));
    assert_eq!(r.unregister(false), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    assert_eq!(
        r.last_response().map(|x| x.0),
        Some(200),
        "the un-REGISTER was answered by Kamailio, not a forgery"
    );
    assert!(k.lookup(&user).is_empty(), "binding removed");
}

/// Registers through a relay that sends its forgeries right after each genuine
/// final response (the client transaction just completed). Returns the number
/// of forgeries, how many were counted as dropped, and the registerer.
fn late_forgeries() -> (u64, u64, Ua, Reg, Relay) {
    let k = shared();
    let kamailio: SocketAddr = format!("127.0.0.1:{}", k.port).parse().unwrap();
    let relay = Relay::start(kamailio, Inject::After);
    let (user, pw) = fresh_user();
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1"))
        .password(&pw)
        .transport("udp")
        // Counters of unmatched datagrams go to a socket's owner: a private one is ours.
        .private_socket(true);
    support::nat_capi::contact_rewrite(&ua, false);
    let opts = Opts {
        expires: 60,
        registrar: Some(format!("sip:{}", relay.addr)),
        retry: false,
        ..Default::default()
    };
    let mut r = Reg::new(&ua, &opts);
    let stats0 = ua.stats();
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    // Both responses (401, 200) get 5 forgeries after them.
    support::wait::until(WAIT, || relay.forged.load(Ordering::Relaxed) >= 10);
    let forged = relay.forged.load(Ordering::Relaxed);
    let dropped = wait_dropped(&ua, stats0.dropped + forged) - stats0.dropped;
    println!("late forgeries: injected {forged}, counted as dropped +{dropped}");
    assert!(forged >= 10);
    (forged, dropped, ua, r, relay)
}

/// Forgeries right after the final response do not disturb the registration.
#[test]
fn late_forgeries_leave_the_registration_alone() {
    let (_forged, _dropped, _ua, mut r, _relay) = late_forgeries();
    let evs = r.events();
    assert!(
        evs.iter().all(|e| !matches!(e, Ev::Response(403, _))),
        "{evs:?}"
    );
    assert_eq!(
        state_changes(&evs),
        vec![Ev::State(SIPREG_STATE_REGISTERED)],
        "{evs:?}"
    );
    assert_eq!(r.state(), SIPREG_STATE_REGISTERED);
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

/// ... and are counted in `stats.dropped` ("wrong Call-ID/CSeq") like the
/// early ones.
#[test]
fn late_forgeries_are_counted_as_dropped() {
    let (forged, dropped, _ua, _r, _relay) = late_forgeries();
    assert!(
        dropped >= forged,
        "every late forgery counted as dropped ({dropped} < {forged})"
    );
}

// ----- credentials ----------------------------------------------------------

static LOG_LINES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn capture_log(_ud: *mut c_void, level: sipreg_log_level, msg: *const c_char) {
    let line = CStr::from_ptr(msg).to_string_lossy().into_owned();
    LOG_LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((level as u32, line));
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn last_error_text() -> String {
    unsafe { CStr::from_ptr(sipreg::ffi::global::sipreg_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Uninstalls the capture even when an assertion fails.
struct LogCapture;
impl LogCapture {
    fn install() -> LogCapture {
        LOG_LINES.lock().unwrap().clear();
        let rc = sipreg_set_log_callback(
            Some(capture_log),
            std::ptr::null_mut(),
            sipreg_log_level::SIPREG_LOG_DEBUG as i32,
        );
        assert_eq!(rc, SIPREG_OK);
        LogCapture
    }
    fn lines(&self) -> Vec<(u32, String)> {
        LOG_LINES.lock().unwrap().clone()
    }
}
impl Drop for LogCapture {
    fn drop(&mut self) {
        sipreg_set_log_callback(
            None,
            std::ptr::null_mut(),
            sipreg_log_level::SIPREG_LOG_OFF as i32,
        );
    }
}

fn assert_clean(lines: &[(u32, String)], secrets: &[&str], what: &str) {
    for (level, line) in lines {
        for s in secrets {
            assert!(
                !line.contains(s),
                "{what}: log line (level {level}) reveals a secret {s:?}: {line}"
            );
        }
        assert!(
            !line.contains("Authorization:"),
            "{what}: log line shows an Authorization header: {line}"
        );
        assert!(
            !line.contains("response=\""),
            "{what}: log line shows a digest response: {line}"
        );
        assert!(
            !line.to_ascii_lowercase().contains("cnonce="),
            "{what}: log line shows digest parameters: {line}"
        );
    }
}

fn set_password(ua: &Ua, pw: &[u8]) -> sipreg_result {
    let c = CString::new(pw).unwrap();
    unsafe { sipreg_user_agent_set_password(ua.0, c.as_ptr()) }
}

#[test]
fn passwords_never_reach_logs_or_error_texts() {
    let _x = exclusive();
    let log = LogCapture::install();
    let k = shared();
    let (user, pw) = fresh_user();
    let ha1 = md5_hex(&format!("{user}:127.0.0.1:{pw}"));

    // Authenticated registration, a refresh, an un-REGISTER, then dispose.
    let (ua, mut r) = registered_udp(&user, &pw, 5, None);
    assert!(
        r.events()
            .contains(&Ev::Response(401, "Unauthorized".into())),
        "digest challenge: {:?}",
        r.events()
    );
    expect_refresh(&mut r, "authenticated refresh");
    assert_eq!(r.unregister(false), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT));
    assert!(k.lookup(&user).is_empty());
    // Register again (cached nonce) and dispose (un-REGISTER while disposing).
    assert_eq!(r.register(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_REGISTERED, WAIT));
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
    drop(r);

    // The same over TCP (connection set-up is logged at DEBUG too).
    let (tuser, tpw) = fresh_user();
    let tha1 = md5_hex(&format!("{tuser}:127.0.0.1:{tpw}"));
    {
        let tua = Ua::new(&format!("sip:{tuser}@127.0.0.1"))
            .password(&tpw)
            .transport("tcp");
        let mut tr = Reg::new(
            &tua,
            &Opts {
                expires: 60,
                registrar: Some(k.registrar("tcp")),
                retry: false,
                ..Default::default()
            },
        );
        assert_eq!(tr.register(), SIPREG_OK);
        assert!(
            tr.wait_state(SIPREG_STATE_REGISTERED, WAIT),
            "tcp: {:?}",
            tr.events()
        );
        assert_eq!(tr.unregister(false), SIPREG_OK);
        assert!(tr.wait_state(SIPREG_STATE_UNREGISTERED, WAIT));
        assert_eq!(tr.dispose(), SIPREG_OK);
        assert!(tr.wait_state(SIPREG_STATE_TERMINATED, WAIT));
    }

    // A wrong, distinctive password: Kamailio keeps challenging, the library gives up.
    let distinctive = "Zq9!Secret-Horse-7731";
    let wrong_ha1 = md5_hex(&format!("{user}:127.0.0.1:{distinctive}"));
    assert_eq!(set_password(&ua, distinctive.as_bytes()), SIPREG_OK);
    let mut r2 = Reg::new(
        &ua,
        &Opts {
            expires: 60,
            registrar: Some(k.registrar("udp")),
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(r2.register(), SIPREG_OK);
    assert!(
        r2.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
        "wrong password fails: {:?}",
        r2.events()
    );
    // Changing it at runtime, then failing calls that carry a password.
    assert_eq!(
        set_password(&ua, b"Zq9!Secret-Horse-7731\r\nInjected: yes"),
        SIPREG_ERR_INVALID_ARGUMENT
    );
    let e1 = last_error_text();
    assert_eq!(
        set_password(&ua, b"Zq9!Secret-Horse-7731\x1b"),
        SIPREG_ERR_INVALID_ARGUMENT
    );
    let e2 = last_error_text();
    let bad_utf8 = CString::new(b"Zq9!Secret-Horse-7731\xff\xfe".to_vec()).unwrap();
    assert_eq!(
        unsafe { sipreg_user_agent_set_password(ua.0, bad_utf8.as_ptr()) },
        SIPREG_ERR_INVALID_ARGUMENT
    );
    let e3 = last_error_text();
    drop(r2);
    let freed = Ua::new(&format!("sip:{user}@127.0.0.1"));
    let freed_ptr = freed.0;
    drop(freed);
    assert_eq!(
        unsafe {
            sipreg_user_agent_set_password(freed_ptr, CString::new(distinctive).unwrap().as_ptr())
        },
        SIPREG_ERR_TERMINATED
    );
    let e4 = last_error_text();
    for (i, e) in [&e1, &e2, &e3, &e4].iter().enumerate() {
        assert!(!e.is_empty(), "error text {i} is set");
        assert!(
            !e.contains("Zq9") && !e.contains("Horse"),
            "last error {i} reveals the password: {e}"
        );
    }
    drop(ua);

    let lines = log.lines();
    drop(log);
    assert!(
        lines.len() > 5,
        "the capture saw the traffic: {} lines",
        lines.len()
    );
    assert!(
        lines.iter().any(|(_, l)| l.contains("401")),
        "the capture saw the challenge"
    );
    assert!(
        lines
            .iter()
            .any(|(lvl, _)| *lvl == sipreg_log_level::SIPREG_LOG_DEBUG as u32),
        "DEBUG lines captured"
    );
    assert_clean(
        &lines,
        &[
            &pw,
            &ha1,
            &tpw,
            &tha1,
            distinctive,
            "Secret-Horse",
            &wrong_ha1,
        ],
        "authenticated session",
    );
    println!(
        "credentials: {} log lines checked, none reveals a password, HA1 or credentials header",
        lines.len()
    );
}

/// A password inside the AOR's userinfo (`sip:user:secret@host`, deprecated by
/// RFC 3261 §19.1.1) must not be echoed by an error text.
#[test]
fn a_password_in_a_bad_aor_is_not_echoed_by_the_error_text() {
    let secret = "Zq9UriSecret5521";
    for aor in [
        format!("sip:alice:{secret}@"),
        format!("sip:alice:{secret}@127.0.0.1:notaport"),
        format!("sip:alice:{secret}@127.0.0.1?Subject=x"),
        format!("sip:alice:{secret}@[::1"),
    ] {
        let c = CString::new(aor.clone()).unwrap();
        let mut p = std::ptr::null_mut();
        let rc = unsafe { sipreg_user_agent_new(c.as_ptr(), &mut p) };
        if rc == SIPREG_OK {
            sipreg_user_agent_free(p);
            continue;
        }
        let e = last_error_text();
        assert!(
            !e.contains(secret),
            "{aor}: last error reveals the password: {e}"
        );
    }
}

/// An AOR carrying a password (`sip:user:secret@host`) is either refused by
/// `sipreg_user_agent_new` or the password is dropped: it must never go out in
/// the From / To of a REGISTER, nor into a log line.
#[test]
fn a_password_in_the_aor_never_goes_on_the_wire() {
    let _x = exclusive();
    let log = LogCapture::install();
    let k = shared();
    let kamailio: SocketAddr = format!("127.0.0.1:{}", k.port).parse().unwrap();
    let relay = Relay::start(kamailio, Inject::None);
    let (user, pw) = fresh_user();
    let secret = "Zq9AorSecret8813";
    let aor = CString::new(format!("sip:{user}:{secret}@127.0.0.1")).unwrap();
    let mut p = std::ptr::null_mut();
    let rc = unsafe { sipreg_user_agent_new(aor.as_ptr(), &mut p) };
    if rc != SIPREG_OK {
        assert_eq!(rc, SIPREG_ERR_INVALID_ARGUMENT);
        assert!(
            !last_error_text().contains(secret),
            "error text reveals it: {}",
            last_error_text()
        );
        return;
    }
    let ua = Ua(p).password(&pw);
    let mut r = Reg::new(
        &ua,
        &Opts {
            expires: 60,
            registrar: Some(format!("sip:{}", relay.addr)),
            retry: false,
            ..Default::default()
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    let registered = r.wait_state(SIPREG_STATE_REGISTERED, WAIT);
    let lines = log.lines();
    drop(log);
    for q in relay
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        assert!(
            !q.raw.contains(secret),
            "the AOR's password went out on the wire:\n{}",
            q.raw
        );
    }
    assert_clean(&lines, &[secret], "aor with password");
    assert!(registered, "{:?}", r.events());
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(r.wait_state(SIPREG_STATE_TERMINATED, WAIT));
}

// ----- hostile registrars over streams ----------------------------------------
//
// Servers written here (tests/support/hostile_peers.rs) on 127.0.0.1, each
// doing one thing a registrar should not. Every case counts what reached the
// server (connections, REGISTERs) after a bounded wait, checks the process's
// resident memory, and checks the reason the client gives. Tests that read the log take `EXCLUSIVE` (the sink is process-wide).

use sipreg::ffi::sipreg_state;
use std::io::Write;
use support::hostile_peers::{self as peers, Conn, StreamServer, Wire};

/// A user agent for a hostile stream server, on a connection of its own
/// (these servers do not challenge, so no password unless a test sets one).
fn hostile_ua(server: &StreamServer, user: &str) -> Ua {
    let ua = Ua::new(&format!("sip:{user}@127.0.0.1"))
        .transport(server.wire.name())
        .private_socket(true);
    match server.wire {
        Wire::Tls(_) | Wire::Wss(_) => ua.tls_ca_file(&peers::ca_file()),
        _ => ua,
    }
}

fn hostile_opts(registrar: String) -> Opts {
    Opts {
        expires: 600,
        registrar: Some(registrar),
        retry: false,
        ..Default::default()
    }
}

/// Polls `what` until it holds or `within` passes (a guard against a hang, not a measure).
fn wait_until(within: Duration, what: impl Fn() -> bool) -> bool {
    let end = Instant::now() + within;
    while !what() {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Resident memory over one hostile case: growth past `RSS_LIMIT_KIB` at
/// any sample fails it (the servers push up to 100 MiB; a client that kept
/// it would show).
struct Rss {
    start: u64,
    peak: u64,
}

const RSS_LIMIT_KIB: u64 = 32 * 1024;

impl Rss {
    fn start() -> Rss {
        let start = vm_rss_kib();
        Rss { start, peak: start }
    }
    fn sample(&mut self) {
        self.peak = self.peak.max(vm_rss_kib());
    }
    fn check(mut self, what: &str) {
        self.sample();
        let grew = self.peak.saturating_sub(self.start);
        println!(
            "{what}: VmRSS {} KiB, peak {} KiB (+{grew} KiB)",
            self.start, self.peak
        );
        assert!(
            grew < RSS_LIMIT_KIB,
            "{what}: memory grew by {grew} KiB (limit {RSS_LIMIT_KIB} KiB)"
        );
    }
}

/// A captured log line containing every one of `parts`, waited for.
fn wait_line(log: &LogCapture, parts: &[&str]) -> Option<String> {
    let found = || {
        log.lines()
            .into_iter()
            .map(|(_, l)| l)
            .find(|l| parts.iter().all(|p| l.contains(p)))
    };
    wait_until(WAIT, || found().is_some());
    found()
}

/// Fails with the captured lines that mention `port` when no line has all of `parts`.
fn expect_line(log: &LogCapture, port: u16, parts: &[&str]) -> String {
    wait_line(log, parts).unwrap_or_else(|| {
        let port = format!(":{port}");
        let lines: Vec<String> = log
            .lines()
            .into_iter()
            .map(|(_, l)| l)
            .filter(|l| l.contains(&port))
            .collect();
        panic!("no log line with {parts:?}; lines about {port}: {lines:#?}")
    })
}

/// Registers, then ends in state `until` (Registered or Unregistered).
fn start_register(ua: &Ua, registrar: String, until: sipreg_state, what: &str) -> Reg {
    let mut r = Reg::new(ua, &hostile_opts(registrar));
    assert_eq!(r.register(), SIPREG_OK, "{what}");
    assert!(
        r.wait_state(until, WAIT),
        "{what}: state {until:?}: {:?}",
        r.events()
    );
    r
}

fn dispose(mut r: Reg) {
    assert_eq!(r.dispose(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_TERMINATED, WAIT),
        "{:?}",
        r.events()
    );
}

fn responses(r: &mut Reg) -> Vec<u16> {
    r.events()
        .iter()
        .filter_map(|e| match e {
            Ev::Response(c, _) => Some(*c),
            _ => None,
        })
        .collect()
}

/// Answers the REGISTER with a 200, then closes (politely: TLS close_notify,
/// WebSocket close frame).
fn close_after_200(mut c: Conn) {
    if let Some(req) = c.recv() {
        c.send(&peers::ok(&req, 600));
    }
    c.close();
}

/// Answers the REGISTER with a 200 followed by bytes that are not SIP (nor a
/// WebSocket frame), then waits for the client to go.
fn junk_after_200(mut c: Conn) {
    if let Some(req) = c.recv() {
        c.send(&peers::ok(&req, 600));
        let _ = c
            .io()
            .write_all(b"\x16\x03\x01\xff\xfe not SIP at all\r\n\r\n\x00\x01");
        let _ = c.io().flush();
    }
    while c.recv().is_some() {}
}

/// Issue 20, parts 1 and 4 against real sockets: a registrar that answers
/// every REGISTER with a valid 200 and then closes (or sends junk) got 30 955
/// connections in 5 s. Now the first loss re-registers at once and the next
/// waits the backoff (retry_base 30 s · 2² with jitter): the target is at most
/// 8 connections in 15 s from one registerer. TCP, TLS, WS and WSS closing,
/// TCP and WS sending junk, all at once.
#[test]
fn a_registrar_that_closes_after_every_200_gets_a_few_connections_not_a_storm() {
    let rss = Rss::start();
    let servers = vec![
        ("close", StreamServer::start(Wire::Tcp, close_after_200)),
        (
            "close",
            StreamServer::start(Wire::Tls(peers::server_config()), close_after_200),
        ),
        ("close", StreamServer::start(Wire::Ws, close_after_200)),
        (
            "close",
            StreamServer::start(Wire::Wss(peers::server_config()), close_after_200),
        ),
        ("junk", StreamServer::start(Wire::Tcp, junk_after_200)),
        ("junk", StreamServer::start(Wire::Ws, junk_after_200)),
    ];
    let t0 = Instant::now();
    let mut regs = Vec::new();
    for (what, s) in &servers {
        let ua = hostile_ua(s, &fresh_user().0);
        let mut r = Reg::new(
            &ua,
            &Opts {
                // The defaults that matter here: retry on, retry_base 30 s.
                retry: true,
                ..hostile_opts(s.registrar())
            },
        );
        assert_eq!(r.register(), SIPREG_OK);
        assert!(
            r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
            "{what} {}: {:?}",
            s.wire.name(),
            r.events()
        );
        regs.push((ua, r));
    }
    // The issue's window, from the first REGISTER.
    let window = Duration::from_secs(15);
    std::thread::sleep(window.saturating_sub(t0.elapsed()));
    let counts: Vec<(usize, usize)> = servers
        .iter()
        .map(|(_, s)| (s.accepted(), s.registers()))
        .collect();
    for ((what, s), ((_, r), (conns, registers))) in servers
        .iter()
        .zip(regs.iter_mut().zip(counts.iter().copied()))
    {
        let t = s.wire.name();
        println!(
            "{what} after 200 over {t}: {conns} connection(s), {registers} REGISTER(s) in 15 s; events {:?}",
            r.events()
        );
        assert!(
            conns <= 8 && registers <= 8,
            "{what} after 200 over {t}: {conns} connections and {registers} REGISTERs in 15 s (target: at most 8)"
        );
        // The first loss was seen and re-registered at once, on a new connection.
        assert!(
            conns >= 2 && registers >= 2,
            "{what} after 200 over {t}: the loss re-registers ({conns} connections, {registers} REGISTERs)"
        );
        // The next loss is a failure that waits the backoff (60-120 s here).
        let evs = r.events();
        let backoff = evs.iter().find_map(|e| match e {
            Ev::RetryScheduled(delay, n) if *n >= 2 => Some(*delay),
            _ => None,
        });
        let delay = backoff.unwrap_or_else(|| {
            panic!("{what} after 200 over {t}: a backoff was scheduled: {evs:?}")
        });
        assert!(
            (30.0..=1800.0).contains(&delay),
            "{what} after 200 over {t}: retry_base 30 s doubled, with jitter: {delay}"
        );
    }
    rss.check("storm");
    for (_ua, r) in regs {
        dispose(r);
    }
}

/// T1 = 20 ms: Timer F and the handshake deadline come after about 1.3 s.
fn quick_timers(ua: Ua) -> Ua {
    ua.timers(0.02, 4.0, 5.0)
}

/// Watches a connection it never reads from: what the client sent stays in
/// the socket's receive queue, where `peek` sees it (`seen`, the latest look).
fn never_read(seen: Arc<Mutex<Vec<u8>>>) -> impl Fn(Conn) + Send + Sync {
    move |mut c: Conn| {
        let mut buf = vec![0u8; 256 * 1024];
        while !c.stopped() {
            if let Ok(n) = c.io().tcp().peek(&mut buf) {
                *seen.lock().unwrap() = buf[..n].to_vec();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// A server that accepts and never reads: over TCP the REGISTER meets Timer F
/// (408); over TLS the ClientHello is never answered; over WS the upgrade is
/// never answered. One attempt each, one request on the wire, and the log
/// says which step was waiting.
#[test]
fn a_server_that_never_reads_costs_one_request_and_a_timeout() {
    let _x = exclusive();
    let log = LogCapture::install();
    let rss = Rss::start();
    let cases = [
        ("tcp", "408", b"REGISTER ".as_slice()),
        (
            "tls",
            "TLS handshake timed out (no TLS answer: is this a TLS port?)",
            b"\x16\x03".as_slice(),
        ),
        (
            "ws",
            "WebSocket upgrade timed out (no HTTP answer)",
            b"GET / HTTP/1.1".as_slice(),
        ),
    ];
    let seen: Vec<Arc<Mutex<Vec<u8>>>> = cases.iter().map(|_| Arc::default()).collect();
    let servers: Vec<StreamServer> = seen
        .iter()
        .map(|s| StreamServer::start(Wire::Tcp, never_read(s.clone())))
        .collect();
    let user = fresh_user().0;
    let mut regs = Vec::new();
    for ((t, _, _), s) in cases.iter().zip(&servers) {
        let ua = quick_timers(
            hostile_ua(s, &user)
                .transport(t)
                .tls_ca_file(&peers::ca_file()),
        );
        let registrar = format!("sip:{};transport={t}", s.addr);
        let r = Reg::new(&ua, &hostile_opts(registrar));
        assert_eq!(r.register(), SIPREG_OK);
        regs.push((ua, r));
    }
    for (((t, why, first), s), ((_, r), seen)) in
        cases.iter().zip(&servers).zip(regs.iter_mut().zip(&seen))
    {
        assert!(
            r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
            "{t}: {:?}",
            r.events()
        );
        let codes = responses(r);
        if *t == "tcp" {
            assert_eq!(codes, [408], "{t}: Timer F");
            expect_line(
                &log,
                s.addr.port(),
                &[&format!("sip:{user}@"), "no final response before Timer F"],
            );
        } else {
            assert_eq!(codes, [503], "{t}: the handshake failed");
            expect_line(&log, s.addr.port(), &[&format!(":{}", s.addr.port()), why]);
        }
        let got = seen.lock().unwrap().clone();
        assert_eq!(
            count(&got, first),
            1,
            "{t}: one request on the wire: {:?}",
            String::from_utf8_lossy(&got)
        );
        assert_eq!(s.accepted(), 1, "{t}: one connection");
        assert_eq!(r.next_retry(), None, "{t}: retry is off");
        let want = match *t {
            "tcp" => SIPREG_FAILURE_TIMEOUT,
            "tls" => SIPREG_FAILURE_TLS,
            _ => SIPREG_FAILURE_TRANSPORT,
        };
        assert_eq!(r.failure().0, want, "{t}: {:?}", r.failure());
    }
    rss.check("never reading");
    for (_ua, r) in regs {
        dispose(r);
    }
}

/// A 200 sent one byte every 100 ms: Timer F ends the transaction (408)
/// long before it is complete; the rest, arriving later, is not taken as
/// an answer.
#[test]
fn slowloris_a_dribbled_200_ends_in_timer_f() {
    let rss = Rss::start();
    let server = StreamServer::start(Wire::Tcp, |mut c: Conn| {
        let Some(req) = c.recv() else { return };
        for b in peers::ok(&req, 600) {
            if !c.push(&[b]) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        while c.recv().is_some() {}
    });
    let ua = quick_timers(hostile_ua(&server, &fresh_user().0));
    let mut r = start_register(
        &ua,
        server.registrar(),
        SIPREG_STATE_UNREGISTERED,
        "slowloris",
    );
    assert_eq!(responses(&mut r), [408], "{:?}", r.events());
    assert_eq!(server.registers(), 1);
    assert_eq!(server.accepted(), 1);
    assert_eq!(r.state(), SIPREG_STATE_UNREGISTERED);
    assert_eq!(r.failure().0, SIPREG_FAILURE_TIMEOUT, "{:?}", r.failure());
    rss.check("slowloris");
    dispose(r);
}

/// What a server pushing a big message got out, and whether the client
/// closed the connection before it was all sent.
#[derive(Default)]
struct Pushed {
    sent: AtomicU64,
    gone: AtomicBool,
}

/// Writes `head` then `len` bytes of `b'a'`, or until the client goes.
fn push_then_body(c: &mut Conn, head: &[u8], len: u64, out: &Pushed) {
    let chunk = vec![b'a'; 64 * 1024];
    let mut open = c.push(head);
    while open && out.sent.load(Ordering::Relaxed) < len {
        open = c.push(&chunk);
        out.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    out.gone.store(!open, Ordering::Relaxed);
}

/// A response header that never ends, a 100 MB Content-Length and a 100 MB
/// WebSocket frame (WS and WSS): each closes the connection at the 64 KiB
/// limit with a line that says so, the REGISTER fails (503), and memory
/// stays flat while the server pushes.
#[test]
fn oversized_messages_close_the_connection_at_the_limit() {
    let _x = exclusive();
    let log = LogCapture::install();
    let mut rss = Rss::start();
    let pushed: Vec<Arc<Pushed>> = (0..4).map(|_| Arc::default()).collect();
    const HUNDRED_MB: u64 = 100 << 20;
    // The 200's head, with its last header left open and never ended.
    let endless_header = |out: Arc<Pushed>| {
        move |mut c: Conn| {
            let Some(req) = c.recv() else { return };
            let head = String::from_utf8(peers::ok(&req, 600))
                .unwrap()
                .replace("Content-Length: 0\r\n\r\n", "X-Endless: ");
            push_then_body(&mut c, head.as_bytes(), HUNDRED_MB, &out);
        }
    };
    let big_body = |out: Arc<Pushed>| {
        move |mut c: Conn| {
            let Some(req) = c.recv() else { return };
            let head = String::from_utf8(peers::ok(&req, 600)).unwrap().replace(
                "Content-Length: 0",
                &format!("Content-Length: {HUNDRED_MB}"),
            );
            push_then_body(&mut c, head.as_bytes(), HUNDRED_MB, &out);
        }
    };
    // A text frame header (FIN, opcode 1) with a 64-bit length of 100 MiB, unmasked.
    let big_frame = |out: Arc<Pushed>| {
        move |mut c: Conn| {
            if c.recv().is_none() {
                return;
            }
            let mut head = vec![0x81u8, 127];
            head.extend_from_slice(&HUNDRED_MB.to_be_bytes());
            push_then_body(&mut c, &head, HUNDRED_MB, &out);
        }
    };
    let too_big = "message of 104 857 600 bytes exceeds the 65 536-byte limit";
    let servers = [
        (
            StreamServer::start(Wire::Tcp, endless_header(pushed[0].clone())),
            "message header does not end within the 65 536-byte limit",
        ),
        (
            StreamServer::start(Wire::Tcp, big_body(pushed[1].clone())),
            "exceeds the 65 536-byte limit",
        ),
        (
            StreamServer::start(Wire::Ws, big_frame(pushed[2].clone())),
            too_big,
        ),
        (
            StreamServer::start(
                Wire::Wss(peers::server_config()),
                big_frame(pushed[3].clone()),
            ),
            too_big,
        ),
    ];
    let mut regs = Vec::new();
    for (s, _) in &servers {
        let ua = hostile_ua(s, &fresh_user().0);
        let r = Reg::new(&ua, &hostile_opts(s.registrar()));
        assert_eq!(r.register(), SIPREG_OK);
        regs.push((ua, r));
    }
    for (((s, why), (_, r)), out) in servers.iter().zip(regs.iter_mut()).zip(&pushed) {
        let t = s.wire.name();
        assert!(
            r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
            "{t} ({why}): {:?}",
            r.events()
        );
        rss.sample();
        assert_eq!(responses(r), [503], "{t} ({why}): {:?}", r.events());
        let line = expect_line(&log, s.addr.port(), &[&format!(":{}", s.addr.port()), why]);
        assert!(
            wait_until(WAIT, || out.gone.load(Ordering::Relaxed)),
            "{t} ({why}): the client closed the connection before 100 MiB"
        );
        println!(
            "{t}: {line} (the server got {} KiB out)",
            out.sent.load(Ordering::Relaxed) / 1024
        );
        assert_eq!(s.registers(), 1, "{t}: one REGISTER");
        let (kind, detail) = r.failure();
        assert_eq!(kind, SIPREG_FAILURE_TRANSPORT, "{t}: {detail}");
        assert!(
            detail.contains(why),
            "{t}: the failure says {why:?}: {detail}"
        );
    }
    rss.check("oversized");
    drop(log);
    for (_ua, r) in regs {
        dispose(r);
    }
}

/// Reads the ClientHello, answers with the ServerHello record of a real TLS
/// server, then says nothing more.
fn stall_after_server_hello(mut c: Conn) {
    use std::io::Read;
    let mut tls = rustls::ServerConnection::new(peers::server_config()).unwrap();
    let mut buf = [0u8; 16 * 1024];
    while !tls.wants_write() {
        if c.stopped() {
            return;
        }
        match c.io().read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                tls.read_tls(&mut &buf[..n]).unwrap();
                if tls.process_new_packets().is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
    let mut flight = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut flight).unwrap();
    }
    // The first record: type 22 (handshake), then version and length.
    assert_eq!(flight[0], 22, "a handshake record");
    let first = 5 + usize::from(u16::from_be_bytes([flight[3], flight[4]]));
    assert!(
        first < flight.len(),
        "the server's flight has more than the ServerHello"
    );
    if c.push(&flight[..first]) {
        c.hold();
    }
}

/// A TLS server that sends its ServerHello and then stalls: the handshake
/// deadline names the step ("stalled after the server answered", not "no
/// TLS answer"); a server that presents a chain of 100 certificates is
/// refused with the certificate error. One connection and no REGISTER each.
#[test]
fn a_stalled_handshake_and_a_100_certificate_chain_fail_as_tls_failures() {
    let _x = exclusive();
    let log = LogCapture::install();
    let rss = Rss::start();
    let stalled = StreamServer::start(Wire::Tcp, stall_after_server_hello);
    let (chain_config, chain_root) = peers::deep_chain();
    let chain = StreamServer::start(Wire::Tls(chain_config), close_after_200);
    // The stalled server is plain TCP to the test: the client speaks TLS to it
    // (trusting the CA of the ServerHello it gets), with T1 = 20 ms.
    let ua_stalled = quick_timers(hostile_ua(&stalled, &fresh_user().0))
        .transport("tls")
        .tls_ca_file(&peers::ca_file());
    let ua_chain = hostile_ua(&chain, &fresh_user().0).tls_ca_file(&chain_root);
    let cases = [
        (
            &stalled,
            ua_stalled,
            "TLS handshake stalled after the server answered",
        ),
        (
            &chain,
            ua_chain,
            "certificate verify failed: its chain has more intermediate CAs than a client follows",
        ),
    ];
    for (s, ua, why) in &cases {
        let registrar = format!("sip:{};transport=tls", s.addr);
        let mut r = start_register(ua, registrar, SIPREG_STATE_UNREGISTERED, why);
        assert_eq!(responses(&mut r), [503], "{why}: {:?}", r.events());
        let line = expect_line(&log, s.addr.port(), &[&format!(":{}", s.addr.port()), why]);
        println!("{line}");
        assert_eq!(s.accepted(), 1, "{why}: one connection");
        assert_eq!(s.registers(), 0, "{why}: no REGISTER");
        let (kind, detail) = r.failure();
        assert_eq!(kind, SIPREG_FAILURE_TLS, "{why}: {detail}");
        assert!(detail.contains(why), "the failure says {why:?}: {detail}");
        dispose(r);
    }
    rss.check("stalled handshake, 100-certificate chain");
}

/// Answers every REGISTER with `status` and `extra` headers.
fn always(status: u16, reason: &'static str, extra: Vec<String>) -> impl Fn(Conn) + Send + Sync {
    move |mut c: Conn| {
        while let Some(req) = c.recv() {
            c.send(&req.response(status, reason, &extra));
        }
    }
}

/// A 423 asking for Min-Expires 4294967296 (more than a u32) ends the
/// attempt as INTERVAL_TOO_BRIEF: nothing is sent again (it used to send
/// Expires: 4294967295 once).
#[test]
fn a_423_with_an_absurd_min_expires_is_not_followed() {
    let _x = exclusive();
    let log = LogCapture::install();
    let rss = Rss::start();
    let server = StreamServer::start(
        Wire::Tcp,
        always(
            423,
            "Interval Too Brief",
            vec!["Min-Expires: 4294967296".into()],
        ),
    );
    let user = fresh_user().0;
    let ua = hostile_ua(&server, &user);
    let mut r = start_register(&ua, server.registrar(), SIPREG_STATE_UNREGISTERED, "423");
    assert_eq!(responses(&mut r), [423], "{:?}", r.events());
    let line = expect_line(
        &log,
        server.addr.port(),
        &[
            &format!("sip:{user}@"),
            "423 asks for Min-Expires 4294967295 s, more than the 86400 s",
        ],
    );
    println!("{line}");
    // Not followed: no resend is scheduled, and none went out.
    assert_eq!(r.next_retry(), None, "{:?}", r.events());
    assert_eq!(server.registers(), 1, "{:?}", server.requests());
    assert_eq!(
        r.failure().0,
        SIPREG_FAILURE_INTERVAL_TOO_BRIEF,
        "{:?}",
        r.failure()
    );
    rss.check("423");
    dispose(r);
}

/// 503 with Retry-After: 0 from a server that keeps saying it: the client
/// does not retry at once in a loop but waits the backoff (retry_base 0.5 s,
/// retry_max 2 s): every 503 is followed by a scheduled retry before the
/// next REGISTER (the delays are the core's rule:
/// core_scenarios::retry_after_zero_backs_off_instead_of_storming).
#[test]
fn retry_after_zero_falls_back_to_the_backoff() {
    let rss = Rss::start();
    let server = StreamServer::start(
        Wire::Tcp,
        always(503, "Service Unavailable", vec!["Retry-After: 0".into()]),
    );
    let ua = hostile_ua(&server, &fresh_user().0);
    let mut r = Reg::new(
        &ua,
        &Opts {
            retry: true,
            retry_base: 0.5,
            retry_max: 2.0,
            ..hostile_opts(server.registrar())
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    let answered = |r: &mut Reg| {
        r.events()
            .iter()
            .filter(|e| matches!(e, Ev::Response(503, _)))
            .count()
    };
    assert!(
        support::wait::until(WAIT, || answered(&mut r) >= 3),
        "three 503s: {:?}",
        r.events()
    );
    let evs = r.events();
    let registers = server.registers();
    println!("Retry-After: 0: {registers} REGISTERs; {evs:?}");
    // Never two REGISTERs without a scheduled retry between their 503s.
    let steps: Vec<&Ev> = evs
        .iter()
        .filter(|e| matches!(e, Ev::Response(..) | Ev::RetryScheduled(..)))
        .collect();
    for pair in steps.windows(2) {
        if let [Ev::Response(503, _), next] = pair {
            assert!(
                matches!(next, Ev::RetryScheduled(..)),
                "a 503 not followed by the backoff: {evs:?}"
            );
        }
    }
    assert!(
        registers <= answered(&mut r) + 1,
        "{registers} REGISTERs for {} 503s: {evs:?}",
        answered(&mut r)
    );
    let delays: Vec<f64> = evs
        .iter()
        .filter_map(|e| match e {
            Ev::RetryScheduled(d, _) => Some(*d),
            _ => None,
        })
        .collect();
    assert!(!delays.is_empty(), "{evs:?}");
    assert!(
        delays.iter().all(|d| *d >= 0.25),
        "every retry waits the backoff (base 0.5 s, 50-100 % jitter): {delays:?}"
    );
    assert_eq!(server.accepted(), 1, "one connection carries them all");
    rss.check("Retry-After: 0");
    dispose(r);
}

/// Retry-After values past u32 (4294967296, 2^64) wait retry_after_max
/// (3600 s by default), once: no overflow into "now", no second REGISTER.
#[test]
fn a_huge_retry_after_waits_retry_after_max() {
    let rss = Rss::start();
    for huge in ["4294967296", "18446744073709551616 (forever)"] {
        let server = StreamServer::start(
            Wire::Tcp,
            always(
                503,
                "Service Unavailable",
                vec![format!("Retry-After: {huge}")],
            ),
        );
        let ua = hostile_ua(&server, &fresh_user().0);
        let mut r = Reg::new(
            &ua,
            &Opts {
                retry: true,
                ..hostile_opts(server.registrar())
            },
        );
        assert_eq!(r.register(), SIPREG_OK);
        let scheduled = r.wait_for(WAIT, |e| matches!(e, Ev::RetryScheduled(..)));
        assert_eq!(
            scheduled,
            Some(Ev::RetryScheduled(3600.0, 1)),
            "Retry-After: {huge}: {:?}",
            r.events()
        );
        assert_eq!(r.retry_after(), Some(u32::MAX), "Retry-After: {huge}");
        let next = r.next_retry().expect("a retry is scheduled");
        assert!(
            (3500.0..=3600.0).contains(&next),
            "{huge}: next retry in {next} s"
        );
        // The retry is an hour away: nothing else goes out meanwhile.
        assert_eq!(server.registers(), 1, "Retry-After: {huge}");
        assert_eq!(r.failure().0, SIPREG_FAILURE_REJECTED, "{:?}", r.failure());
        assert_eq!(r.failure_response().0, 503);
        dispose(r);
    }
    rss.check("huge Retry-After");
}

/// 100 000 responses with wrong branches before the real 200, on the
/// REGISTER's own TCP connection: every one is dropped and counted, the
/// registration succeeds, and memory stays flat.
#[test]
fn a_hundred_thousand_wrong_branch_responses_are_dropped() {
    let _x = exclusive();
    const N: usize = 100_000;
    let server = StreamServer::start(Wire::Tcp, |mut c: Conn| {
        let Some(req) = c.recv() else { return };
        let branch = req.branch();
        let genuine = String::from_utf8(peers::ok(&req, 600)).unwrap();
        let mut batch = String::new();
        for i in 0..N {
            batch.push_str(&genuine.replace(&branch, &format!("{branch}x{i}")));
            if i % 1000 == 999 && !c.push(std::mem::take(&mut batch).as_bytes()) {
                return;
            }
        }
        c.send(genuine.as_bytes());
        while let Some(req) = c.recv() {
            c.send(&peers::ok(&req, 600));
        }
    });
    let ua = hostile_ua(&server, &fresh_user().0);
    let stats0 = ua.stats();
    let rss = Rss::start();
    let mut r = Reg::new(&ua, &hostile_opts(server.registrar()));
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, Duration::from_secs(60)),
        "{:?}",
        r.events()
    );
    let dropped = wait_dropped(&ua, stats0.dropped + N as u64) - stats0.dropped;
    println!("wrong branches: {dropped} dropped");
    rss.check("wrong branches");
    assert!(dropped >= N as u64, "{dropped} of {N} counted as dropped");
    assert_eq!(responses(&mut r), [200], "only the genuine answer counts");
    assert_eq!(server.registers(), 1);
    dispose(r);
}

/// The digest downgrade over TLS, from a server written here: SHA-256 first
/// (answered, 200 for 2 s), then only MD5 on the refresh. Refused, with a
/// warning naming both; no REGISTER answers MD5 and, retry on or not, none
/// follows (the SIPp scenario digest_downgrade.xml does the same over UDP).
#[test]
fn a_digest_downgrade_over_tls_is_refused_and_not_retried() {
    let _x = exclusive();
    let log = LogCapture::install();
    let rss = Rss::start();
    let registered = Arc::new(AtomicBool::new(false));
    let md5_answers = Arc::new(AtomicU64::new(0));
    let challenge = |alg: &str| {
        vec![format!(
            "WWW-Authenticate: Digest realm=\"downgrade.hostile.test\", nonce=\"{alg}-nonce\", qop=\"auth\", algorithm={alg}"
        )]
    };
    let (reg, md5) = (registered.clone(), md5_answers.clone());
    let server = StreamServer::start(Wire::Tls(peers::server_config()), move |mut c: Conn| {
        while let Some(req) = c.recv() {
            let auth = req.header("Authorization").unwrap_or_default().to_owned();
            if auth.contains("algorithm=MD5") {
                md5.fetch_add(1, Ordering::SeqCst);
            }
            let answer = if !reg.load(Ordering::SeqCst) && auth.contains("algorithm=SHA-256") {
                reg.store(true, Ordering::SeqCst);
                peers::ok(&req, 2)
            } else if !reg.load(Ordering::SeqCst) {
                req.response(401, "Unauthorized", &challenge("SHA-256"))
            } else {
                req.response(401, "Unauthorized", &challenge("MD5"))
            };
            c.send(&answer);
        }
    });
    let (user, pw) = fresh_user();
    let ua = hostile_ua(&server, &user).password(&pw);
    let mut r = Reg::new(
        &ua,
        &Opts {
            retry: true,
            retry_base: 0.5,
            ..hostile_opts(server.registrar())
        },
    );
    assert_eq!(r.register(), SIPREG_OK);
    assert!(
        r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    // The refresh (at 99 % of 2 s) meets the MD5-only challenge.
    assert!(
        r.wait_state(SIPREG_STATE_UNREGISTERED, WAIT),
        "{:?}",
        r.events()
    );
    let line = expect_line(
        &log,
        server.addr.port(),
        &["downgrade.hostile.test", "only MD5", "SHA-256"],
    );
    println!("{line}");
    // Refused for good: nothing scheduled (a retry would show first as RetryScheduled).
    assert_eq!(r.next_retry(), None, "{:?}", r.events());
    let evs = r.events();
    assert_eq!(responses(&mut r), [401, 200, 401], "{evs:?}");
    assert!(
        !evs.iter()
            .any(|e| matches!(e, Ev::RetryScheduled(..) | Ev::RetryStarted(..))),
        "a refused downgrade is not retried: {evs:?}"
    );
    assert_eq!(
        md5_answers.load(Ordering::SeqCst),
        0,
        "no REGISTER answered MD5"
    );
    assert_eq!(server.registers(), 3, "{:#?}", server.requests());
    let (kind, detail) = r.failure();
    assert_eq!(kind, SIPREG_FAILURE_AUTH_DOWNGRADE, "{detail}");
    assert!(
        detail.contains("MD5") && detail.contains("SHA-256"),
        "{detail}"
    );
    rss.check("downgrade");
    dispose(r);
}

/// Issue 20 part 4 against real sockets: new connections to one target are
/// rate-limited (16 at once, then 4 per second), whatever the number of user
/// agents behind them. 28 user agents with private connections register at
/// once: 16 connect now, the other 12 wait their turn (a line each, waits a
/// quarter second apart), and all 28 register in the end.
#[test]
fn new_connections_to_one_target_wait_their_turn() {
    let _x = exclusive();
    let log = LogCapture::install();
    let rss = Rss::start();
    const N: usize = 28;
    const BURST: usize = 16;
    let server = StreamServer::start(Wire::Tcp, |mut c: Conn| {
        while let Some(req) = c.recv() {
            c.send(&peers::ok(&req, 600));
        }
    });
    let uas: Vec<Ua> = (0..N)
        .map(|_| hostile_ua(&server, &fresh_user().0))
        .collect();
    let mut regs: Vec<Reg> = uas
        .iter()
        .map(|ua| Reg::new(ua, &hostile_opts(server.registrar())))
        .collect();
    for r in &regs {
        assert_eq!(r.register(), SIPREG_OK);
    }
    for r in regs.iter_mut() {
        assert!(
            r.wait_state(SIPREG_STATE_REGISTERED, WAIT),
            "{:?}",
            r.events()
        );
    }
    assert_eq!(server.accepted(), N, "one connection per user agent");
    assert_eq!(server.registers(), N);
    let target = format!(
        "tcp:{}: too many new connections to this target",
        server.addr
    );
    let waits: Vec<f64> = log
        .lines()
        .into_iter()
        .filter(|(_, l)| l.contains(&target))
        .map(|(_, l)| {
            let w = l.split("this one waits ").nth(1).unwrap();
            w.trim_end_matches(" s").parse().unwrap()
        })
        .collect();
    println!(
        "connect limit: {} of {N} connections waited: {waits:?}",
        waits.len()
    );
    // All at once, 12 wait; the bucket refills at 4/s while the test thread
    // makes its calls, so allow a second's worth fewer.
    assert!(
        (N - BURST - 4..=N - BURST).contains(&waits.len()),
        "{} connections waited their turn: {waits:?}",
        waits.len()
    );
    // Each waits at most a quarter second more than the one before it.
    assert!(waits.windows(2).all(|w| w[1] - w[0] <= 0.26), "{waits:?}");
    rss.check("connect limit");
    drop(log);
    for r in regs {
        dispose(r);
    }
}
