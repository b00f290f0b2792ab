//! Registration benchmark: N registerers (distinct AORs `user<i>`, digest auth)
//! against a local Kamailio, through the C ABI exactly as an application uses it.
//! Prints wall time, process CPU seconds and peak RSS for registering all and
//! for unregistering all.
//!
//! cargo run --release --example bench -- --registrar sip:127.0.0.1:5060 --n 1000 [--transport tcp]

use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sipreg::ffi::options::*;
use sipreg::ffi::registerer::*;
use sipreg::ffi::sipreg_state;
use sipreg::ffi::user_agent::*;

mod common;
use common::{ok, registrar_host, rss_kb};

static REGISTERED: AtomicUsize = AtomicUsize::new(0);
static UNREGISTERED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn on_state(_ud: *mut c_void, _r: *mut sipreg_registerer, s: sipreg_state) {
    match s {
        sipreg_state::SIPREG_STATE_REGISTERED => REGISTERED.fetch_add(1, Ordering::Relaxed),
        sipreg_state::SIPREG_STATE_UNREGISTERED => UNREGISTERED.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
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

struct Usage {
    cpu: f64,
    max_rss_kb: i64,
}

fn usage() -> Usage {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Usage {
        cpu: t(ru.ru_utime) + t(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss,
    }
}

fn wait(counter: &AtomicUsize, n: usize, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while counter.load(Ordering::Relaxed) < n {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

fn main() {
    let mut n = 100usize;
    let mut registrar = "sip:127.0.0.1:5060".to_string();
    let mut transport = "udp".to_string();
    let mut first_user = 100_000usize;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            "--n" => n = args[i + 1].parse().expect("--n"),
            "--registrar" => registrar = args[i + 1].clone(),
            "--transport" => transport = args[i + 1].clone(),
            "--first-user" => first_user = args[i + 1].parse().expect("--first-user"),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let host = registrar_host(&registrar);
    assert!(
        host.starts_with("127.") || host == "[::1]",
        "benchmarks only target loopback"
    );

    let base_rss = rss_kb();
    let mut uas = Vec::with_capacity(n);
    let mut regs = Vec::with_capacity(n);
    unsafe {
        let mut opts = std::ptr::null_mut();
        ok(sipreg_registerer_options_new(&mut opts), "options");
        let reg_c = CString::new(registrar.clone()).unwrap();
        ok(
            sipreg_registerer_options_set_registrar(opts, reg_c.as_ptr()),
            "registrar",
        );
        ok(sipreg_registerer_options_set_expires(opts, 600), "expires");
        ok(sipreg_registerer_options_set_retry(opts, false), "retry");
        let tr = CString::new(transport.clone()).unwrap();
        for k in 0..n {
            let user = format!("user{}", first_user + k);
            let aor = CString::new(format!("sip:{user}@{host}")).unwrap();
            let pw = CString::new(format!("pw-{user}")).unwrap();
            let mut ua = std::ptr::null_mut();
            ok(sipreg_user_agent_new(aor.as_ptr(), &mut ua), "ua");
            ok(sipreg_user_agent_set_password(ua, pw.as_ptr()), "password");
            ok(
                sipreg_user_agent_set_transport(ua, tr.as_ptr()),
                "transport",
            );
            let mut r = std::ptr::null_mut();
            ok(
                sipreg_registerer_new(ua, opts, Some(on_state), std::ptr::null_mut(), &mut r),
                "registerer",
            );
            ok(
                sipreg_registerer_set_event_callback(r, Some(on_event), std::ptr::null_mut()),
                "event cb",
            );
            uas.push(ua);
            regs.push(r);
        }
        sipreg_registerer_options_free(opts);
    }
    let setup_rss = rss_kb();

    let u0 = usage();
    let t0 = Instant::now();
    for r in &regs {
        ok(sipreg_register(*r), "register");
    }
    let all_registered = wait(&REGISTERED, n, Duration::from_secs(120));
    let reg_time = t0.elapsed();
    let u1 = usage();
    let reg_rss = rss_kb();

    let t1 = Instant::now();
    for r in &regs {
        ok(sipreg_unregister(*r, false), "unregister");
    }
    let all_unregistered = wait(&UNREGISTERED, n, Duration::from_secs(120));
    let unreg_time = t1.elapsed();
    let u2 = usage();

    println!("sipreg bench: n={n} transport={transport} registrar={registrar}");
    println!(
        "register:   all_registered={all_registered} ({}/{n}) wall={:.3}s cpu={:.3}s per_reg_cpu={:.1}us",
        REGISTERED.load(Ordering::Relaxed),
        reg_time.as_secs_f64(),
        u1.cpu - u0.cpu,
        (u1.cpu - u0.cpu) / n as f64 * 1e6
    );
    println!(
        "unregister: all_unregistered={all_unregistered} ({}/{n}) wall={:.3}s cpu={:.3}s",
        UNREGISTERED.load(Ordering::Relaxed),
        unreg_time.as_secs_f64(),
        u2.cpu - u1.cpu
    );
    println!(
        "memory: rss_base={}KiB rss_after_setup={}KiB rss_registered={}KiB per_registerer={:.1}KiB peak_rss={}KiB",
        base_rss,
        setup_rss,
        reg_rss,
        (reg_rss - base_rss) as f64 / n as f64,
        u2.max_rss_kb
    );
    println!(
        "failures (non-401 final responses >= 300): {}",
        FAILED.load(Ordering::Relaxed)
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
