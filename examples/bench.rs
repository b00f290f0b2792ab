//! Registration benchmark: N user agents (one account each, distinct AORs
//! `user<i>`, digest auth) against a local Kamailio, through the C ABI exactly as
//! a fleet application uses it: for each account `sipreg_user_agent_new`, set the
//! password and transport, `sipreg_registerer_new`, `sipreg_register`.
//!
//! Everything is counted from the first `sipreg_user_agent_new` to the last
//! Registered callback: wall time, process CPU (user + system), peak RSS above
//! the process before the first account, Timer E retransmissions and failures.
//! Then optionally an idle phase (`--idle S`: process CPU from /proc while
//! nothing is due), a ping phase (`--pings S`: the registrar pings every
//! contact with OPTIONS, as Kamailio's nathelper does with `kamctl.sh ...
//! natping`; the OPTIONS answered and the process CPU over S seconds, all
//! of it counted as the pings' cost, refreshes included) and the
//! un-REGISTER of all.
//!
//! The last line is `RESULT key=value ...` for `examples/run-bench.sh`
//! (after a `PING key=value ...` line with `--pings`).
//!
//! cargo run --release --example bench -- --registrar sip:127.0.0.1:5060 --n 1000 [--transport tcp] [--idle 60]
//!     [--ca-file ca.pem] (tls, wss) [--private] (a socket, so a handshake, per account) [--pings 30]

use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use sipreg::ffi::options::*;
use sipreg::ffi::registerer::*;
use sipreg::ffi::sipreg_state;
use sipreg::ffi::user_agent::*;

mod common;
use common::{ok, registrar_host, rss_kb, rusage_cpu, rusage_split};

static REGISTERED: AtomicUsize = AtomicUsize::new(0);
static UNREGISTERED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

/// How many of the counted state changes the main thread waits for; the
/// callback that reaches it wakes the main thread (which sleeps meanwhile:
/// polling would put the harness's own wake-ups into the measured CPU).
static TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);
static DONE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

unsafe extern "C" fn on_state(_ud: *mut c_void, _r: *mut sipreg_registerer, s: sipreg_state) {
    let now = match s {
        sipreg_state::SIPREG_STATE_REGISTERED => REGISTERED.fetch_add(1, Ordering::SeqCst) + 1,
        sipreg_state::SIPREG_STATE_UNREGISTERED => UNREGISTERED.fetch_add(1, Ordering::SeqCst) + 1,
        _ => return,
    };
    if now == TARGET.load(Ordering::SeqCst) {
        let _g = DONE.0.lock().unwrap_or_else(|e| e.into_inner());
        DONE.1.notify_all();
    }
}

unsafe extern "C" fn on_event(
    _ud: *mut c_void,
    _r: *mut sipreg_registerer,
    e: *const sipreg_event,
) {
    let e = &*e;
    if e.kind == sipreg_event_kind::SIPREG_EVENT_RESPONSE
        && e.status_code >= 300
        && e.status_code != 401
    {
        FAILED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Process CPU seconds (user + system) from /proc/self/stat.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// glibc's count of the bytes in live allocations and of freed bytes it
/// keeps, in KiB, over every arena (the worker's too).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_kib() -> Option<(i64, i64)> {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let m = unsafe { libc::mallinfo2() };
    Some((
        ((m.uordblks + m.hblkhd) / 1024) as i64,
        (m.fordblks / 1024) as i64,
    ))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_kib() -> Option<(i64, i64)> {
    None
}

fn peak_rss_kb() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Waits until `counter` reaches `n` (woken by the callback that gets it
/// there; a timed wait also checks now and then, so nothing is missed).
fn wait(counter: &AtomicUsize, n: usize, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    TARGET.store(n, Ordering::SeqCst);
    let mut g = DONE.0.lock().unwrap_or_else(|e| e.into_inner());
    while counter.load(Ordering::SeqCst) < n {
        let now = Instant::now();
        if now > end {
            return false;
        }
        let step = (end - now).min(Duration::from_millis(100));
        g = DONE
            .1
            .wait_timeout(g, step)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}

fn main() {
    let mut n = 100usize;
    let mut registrar = "sip:127.0.0.1:5060".to_string();
    let mut transport = "udp".to_string();
    let mut first_user = 100_000usize;
    let mut idle = 0u64;
    let mut pings = 0u64;
    let mut expires = 600u32;
    let mut ca_file: Option<CString> = None;
    let mut private = false;
    let mut register_only = false;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--private" {
            // One socket (so one TCP/TLS/WebSocket handshake) per account.
            private = true;
            i += 1;
            continue;
        }
        if args[i] == "--register-only" {
            // Exit once all are registered (no unregister), for profiling.
            register_only = true;
            i += 1;
            continue;
        }
        assert!(i + 1 < args.len(), "{} needs a value", args[i]);
        match args[i].as_str() {
            "--ca-file" => ca_file = Some(CString::new(args[i + 1].clone()).unwrap()),
            "--n" => n = args[i + 1].parse().expect("--n"),
            "--registrar" => registrar = args[i + 1].clone(),
            "--transport" => transport = args[i + 1].clone(),
            "--first-user" => first_user = args[i + 1].parse().expect("--first-user"),
            "--idle" => idle = args[i + 1].parse().expect("--idle"),
            "--pings" => pings = args[i + 1].parse().expect("--pings"),
            "--expires" => expires = args[i + 1].parse().expect("--expires"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let host = registrar_host(&registrar);
    assert!(
        host.starts_with("127.") || host == "[::1]",
        "benchmarks only target loopback"
    );

    // Names prepared before the clock starts: they are the application's, not ours.
    let names: Vec<(CString, CString)> = (0..n)
        .map(|k| {
            let user = format!("user{}", first_user + k);
            (
                CString::new(format!("sip:{user}@{host}")).unwrap(),
                CString::new(format!("pw-{user}")).unwrap(),
            )
        })
        .collect();
    let reg_c = CString::new(registrar.clone()).unwrap();
    let tr = CString::new(transport.clone()).unwrap();
    let mut uas = Vec::with_capacity(n);
    let mut regs = Vec::with_capacity(n);

    let base_rss = rss_kb();
    let base_heap = heap_kib();
    let (u0, k0) = rusage_split();
    let c0 = u0 + k0;
    let t0 = Instant::now();
    unsafe {
        let mut opts = std::ptr::null_mut();
        ok(sipreg_registerer_options_new(&mut opts), "options");
        ok(
            sipreg_registerer_options_set_registrar(opts, reg_c.as_ptr()),
            "registrar",
        );
        ok(
            sipreg_registerer_options_set_expires(opts, expires),
            "expires",
        );
        ok(sipreg_registerer_options_set_retry(opts, false), "retry");
        for (aor, pw) in &names {
            let mut ua = std::ptr::null_mut();
            ok(sipreg_user_agent_new(aor.as_ptr(), &mut ua), "ua");
            ok(sipreg_user_agent_set_password(ua, pw.as_ptr()), "password");
            ok(
                sipreg_user_agent_set_transport(ua, tr.as_ptr()),
                "transport",
            );
            if let Some(ca) = &ca_file {
                ok(
                    sipreg_user_agent_set_tls_ca_file(ua, ca.as_ptr()),
                    "ca file",
                );
            }
            if private {
                ok(sipreg_user_agent_set_private_socket(ua, true), "private");
            }
            let mut r = std::ptr::null_mut();
            ok(
                sipreg_registerer_new(ua, opts, Some(on_state), std::ptr::null_mut(), &mut r),
                "registerer",
            );
            ok(
                sipreg_registerer_set_event_callback(r, Some(on_event), std::ptr::null_mut()),
                "event cb",
            );
            ok(sipreg_register(r), "register");
            uas.push(ua);
            regs.push(r);
        }
        sipreg_registerer_options_free(opts);
    }
    let setup_time = t0.elapsed();
    let all_registered = wait(&REGISTERED, n, Duration::from_secs(60));
    let reg_time = t0.elapsed();
    let (u1, k1) = rusage_split();
    let c1 = u1 + k1;
    let reg_cpu = c1 - c0;
    if register_only {
        // For profilers: the registration phase alone.
        println!(
            "register: all_registered={all_registered} cpu={reg_cpu:.3}s = {:.2}us per reg \
             (user {:.2}, kernel {:.2}) wall={:.3}s",
            reg_cpu / n as f64 * 1e6,
            (u1 - u0) / n as f64 * 1e6,
            (k1 - k0) / n as f64 * 1e6,
            reg_time.as_secs_f64()
        );
        std::process::exit(if all_registered { 0 } else { 1 });
    }
    let peak = peak_rss_kb();
    let reg_rss = rss_kb();
    let reg_heap = heap_kib();

    let mut retrans = 0u64;
    for r in &regs {
        let mut v = 0u64;
        unsafe { sipreg_registerer_retransmissions(*r, &mut v) };
        retrans += v;
    }
    let mut window = sipreg_stats::default();
    if let Some(ua) = uas.last() {
        unsafe { sipreg_user_agent_stats(*ua, &mut window) };
    }

    let mut idle_cpu_pct = f64::NAN;
    if idle > 0 {
        let i0 = cpu_s();
        let ti = Instant::now();
        std::thread::sleep(Duration::from_secs(idle));
        let i1 = cpu_s();
        idle_cpu_pct = (i1 - i0) / ti.elapsed().as_secs_f64() * 100.0;
    }
    let lost = REGISTERED.load(Ordering::Relaxed) - n.min(REGISTERED.load(Ordering::Relaxed));

    let mut ping_line = None;
    if pings > 0 {
        // OPTIONS the library answered, summed over every user agent.
        let answered = || -> (u64, u64) {
            uas.iter().fold((0, 0), |(q, a), ua| {
                let mut st = sipreg_stats::default();
                unsafe { sipreg_user_agent_stats(*ua, &mut st) };
                (q + st.requests, a + st.answered)
            })
        };
        let (q0, a0) = answered();
        let (u0, s0) = rusage_split();
        let tp = Instant::now();
        // (Marks for a profiler switched on and off from outside: callgrind_control.)
        eprintln!("ping phase: start");
        std::thread::sleep(Duration::from_secs(pings));
        eprintln!("ping phase: end");
        let (u1, s1) = rusage_split();
        let (user, system) = (u1 - u0, s1 - s0);
        let cpu = user + system;
        let secs = tp.elapsed().as_secs_f64();
        let (q1, a1) = answered();
        let (requests, answers) = (q1 - q0, a1 - a0);
        let per = if answers > 0 {
            cpu / answers as f64 * 1e6
        } else {
            f64::NAN
        };
        let us = |s: f64| {
            if answers > 0 {
                s / answers as f64 * 1e6
            } else {
                f64::NAN
            }
        };
        println!(
            "pings: {answers} OPTIONS answered ({requests} received) in {secs:.1}s to {n} contacts: \
             cpu={cpu:.3}s = {per:.2}us per ping (user {:.2}, kernel {:.2}; all CPU of the \
             period, refreshes included)",
            us(user),
            us(system)
        );
        ping_line = Some(format!(
            "PING impl=sipreg transport={transport} n={n} secs={secs:.2} requests={requests} \
             answered={answers} cpu={cpu:.4} us_per_ping={per:.3} user_us={:.3} kernel_us={:.3}",
            us(user),
            us(system)
        ));
    }

    let u0 = rusage_cpu();
    let t1 = Instant::now();
    for r in &regs {
        ok(sipreg_unregister(*r, false), "unregister");
    }
    let all_unregistered = wait(&UNREGISTERED, n, Duration::from_secs(60));
    let unreg_time = t1.elapsed();
    let unreg_cpu = rusage_cpu() - u0;

    let failures = FAILED.load(Ordering::Relaxed) + (n - REGISTERED.load(Ordering::Relaxed).min(n));
    println!("sipreg bench: n={n} transport={transport} registrar={registrar}");
    println!(
        "register (from the first user_agent_new): all_registered={all_registered} ({}/{n}) \
         wall={:.3}s (creating {:.3}s) cpu={:.3}s per_reg_cpu={:.1}us",
        REGISTERED.load(Ordering::Relaxed),
        reg_time.as_secs_f64(),
        setup_time.as_secs_f64(),
        reg_cpu,
        reg_cpu / n as f64 * 1e6
    );
    println!(
        "memory: rss_base={base_rss}KiB rss_registered={reg_rss}KiB peak={peak}KiB \
         per_registration={:.2}KiB (peak above base)",
        (peak - base_rss) as f64 / n as f64
    );
    if let (Some(b), Some(r)) = (base_heap, reg_heap) {
        // What the RSS holds beside the live allocations: freed chunks the
        // allocator keeps, stacks, the code's pages.
        println!(
            "heap: in_use={}KiB free_kept={}KiB per_registration={:.2}KiB (in use above base, malloc's own count)",
            r.0,
            r.1,
            (r.0 - b.0) as f64 / n as f64
        );
    }
    println!(
        "pacing: window={} in_flight={} queued={} retransmissions={retrans} failures={failures}",
        window.window, window.in_flight, window.queued
    );
    if idle > 0 {
        println!("idle: {idle}s with {n} registered: cpu={idle_cpu_pct:.3}% of a core");
    }
    println!(
        "unregister: all_unregistered={all_unregistered} ({}/{n}) wall={:.3}s cpu={:.3}s",
        UNREGISTERED.load(Ordering::Relaxed),
        unreg_time.as_secs_f64(),
        unreg_cpu
    );
    // A row of its own for one connection per account.
    let transport = if private {
        format!("{transport}+private")
    } else {
        transport
    };
    if let Some(line) = ping_line {
        println!("{line}");
    }
    println!(
        "RESULT impl=sipreg transport={transport} n={n} wall={:.4} cpu={:.4} us_per_reg={:.2} \
         peak_kib={peak} base_kib={base_rss} kib_per_reg={:.3} retrans={retrans} failures={failures} \
         rate={:.0} idle_pct={idle_cpu_pct:.4} unreg_wall={:.4} lost={lost}",
        reg_time.as_secs_f64(),
        reg_cpu,
        reg_cpu / n as f64 * 1e6,
        (peak - base_rss) as f64 / n as f64,
        n as f64 / reg_time.as_secs_f64(),
        unreg_time.as_secs_f64(),
    );

    for r in regs {
        sipreg_registerer_free(r);
    }
    for ua in uas {
        sipreg_user_agent_free(ua);
    }
    if !(all_registered && all_unregistered) {
        std::process::exit(1);
    }
}
