//! Real-time soak (not run in CI): N registerers (default 1000, distinct AORs,
//! digest auth) with a short expiry (default 30 s) against a local Kamailio for
//! a while (default 10 minutes). Prints RSS, refresh count and failures every
//! minute; exits non-zero if any registerer left Registered.
//!
//! cargo run --release --example soak -- --registrar sip:127.0.0.1:5060 [--n 1000] [--expires 30] [--minutes 10] [--refresh 99] [--stagger on]
//!
//! With --stagger on (default) the initial REGISTERs are spread over the first
//! expiry, as real devices come up at different times; off sends them in one
//! burst, which then repeats at every refresh.

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
static LOST: AtomicUsize = AtomicUsize::new(0);
static OK_RESPONSES: AtomicUsize = AtomicUsize::new(0);
static CHALLENGES: AtomicUsize = AtomicUsize::new(0);
static FAILURES: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn on_event(
    _ud: *mut c_void,
    _r: *mut sipreg_registerer,
    e: *const sipreg_event,
) {
    let e = &*e;
    match e.kind {
        sipreg_event_kind::SIPREG_EVENT_STATE_CHANGED => match e.state {
            sipreg_state::SIPREG_STATE_REGISTERED => {
                REGISTERED.fetch_add(1, Ordering::Relaxed);
            }
            sipreg_state::SIPREG_STATE_UNREGISTERED => {
                LOST.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        },
        sipreg_event_kind::SIPREG_EVENT_RESPONSE => {
            let counter = match e.status_code {
                200..=299 => &OK_RESPONSES,
                401 | 407 => &CHALLENGES,
                _ => &FAILURES,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

fn main() {
    let (mut n, mut expires, mut minutes, mut refresh) = (1000usize, 30u32, 10u64, 99u32);
    let mut stagger = true;
    let mut registrar = "sip:127.0.0.1:5060".to_string();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        match (pair[0].as_str(), pair.get(1)) {
            ("--n", Some(v)) => n = v.parse().expect("--n"),
            ("--expires", Some(v)) => expires = v.parse().expect("--expires"),
            ("--minutes", Some(v)) => minutes = v.parse().expect("--minutes"),
            ("--refresh", Some(v)) => refresh = v.parse().expect("--refresh"),
            ("--stagger", Some(v)) => stagger = v != "0" && v != "off",
            ("--registrar", Some(v)) => registrar = v.clone(),
            _ => panic!("usage: soak --registrar URI [--n N] [--expires S] [--minutes M] [--refresh PERCENT] [--stagger on|off]"),
        }
    }
    let host = registrar_host(&registrar);
    assert!(host.starts_with("127."), "soak only targets loopback");

    let mut handles = Vec::new();
    unsafe {
        let mut opts = std::ptr::null_mut();
        ok(sipreg_registerer_options_new(&mut opts), "options");
        let reg_c = CString::new(registrar.clone()).unwrap();
        ok(
            sipreg_registerer_options_set_registrar(opts, reg_c.as_ptr()),
            "registrar",
        );
        ok(
            sipreg_registerer_options_set_expires(opts, expires),
            "expires",
        );
        for k in 0..n {
            let user = format!("user{}", 400_000 + k);
            let aor = CString::new(format!("sip:{user}@{host}")).unwrap();
            let pw = CString::new(format!("pw-{user}")).unwrap();
            let mut ua = std::ptr::null_mut();
            ok(sipreg_user_agent_new(aor.as_ptr(), &mut ua), "ua");
            ok(sipreg_user_agent_set_password(ua, pw.as_ptr()), "pw");
            let mut r = std::ptr::null_mut();
            ok(
                sipreg_registerer_new(ua, opts, None, std::ptr::null_mut(), &mut r),
                "reg",
            );
            ok(
                sipreg_registerer_set_event_callback(r, Some(on_event), std::ptr::null_mut()),
                "cb",
            );
            handles.push((ua, r));
        }
        sipreg_registerer_options_free(opts);
    }
    let start = Instant::now();
    let spread = Duration::from_secs(u64::from(expires)).mul_f64(if stagger { 1.0 } else { 0.0 });
    let handles_ref: Vec<usize> = handles.iter().map(|(_, r)| *r as usize).collect();
    let starter = std::thread::spawn(move || {
        for (i, r) in handles_ref.iter().enumerate() {
            let at = start + spread.mul_f64(i as f64 / n.max(1) as f64);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            ok(sipreg_register(*r as *mut sipreg_registerer), "register");
        }
    });
    println!(
        "soak: n={n} expires={expires}s refresh={refresh}% stagger={stagger} minutes={minutes} registrar={registrar}"
    );
    println!("minute  rss_kib  registered  ok_responses  challenges  failures  lost");
    for minute in 0..=minutes {
        let target = start + Duration::from_secs(60 * minute);
        std::thread::sleep(target.saturating_duration_since(Instant::now()));
        println!(
            "{minute:>6}  {:>7}  {:>10}  {:>12}  {:>10}  {:>8}  {:>4}",
            rss_kb(),
            REGISTERED.load(Ordering::Relaxed),
            OK_RESPONSES.load(Ordering::Relaxed),
            CHALLENGES.load(Ordering::Relaxed),
            FAILURES.load(Ordering::Relaxed),
            LOST.load(Ordering::Relaxed)
        );
    }
    let _ = starter.join();
    let refreshes = OK_RESPONSES.load(Ordering::Relaxed).saturating_sub(n);
    println!(
        "refreshes={refreshes} failures={} lost={}",
        FAILURES.load(Ordering::Relaxed),
        LOST.load(Ordering::Relaxed)
    );
    for (ua, r) in handles {
        sipreg_registerer_free(r);
        sipreg_user_agent_free(ua);
    }
    if LOST.load(Ordering::Relaxed) > 0 || FAILURES.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}
