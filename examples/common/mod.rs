//! Helpers shared by the benchmark and soak examples.
#![allow(dead_code)]

use sipreg::ffi::sipreg_result;

/// Resident set size of this process in KiB (Linux /proc).
pub fn rss_kb() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// Panics with the library's message unless `rc` is SIPREG_OK.
pub fn ok(rc: sipreg_result, what: &str) {
    if rc != sipreg_result::SIPREG_OK {
        let msg = unsafe { std::ffi::CStr::from_ptr(sipreg::ffi::global::sipreg_last_error()) };
        panic!("{what}: {rc:?} {}", msg.to_string_lossy());
    }
}

/// The host part of a `sip:host[:port][;params]` registrar URI.
pub fn registrar_host(registrar: &str) -> String {
    registrar
        .trim_start_matches("sips:")
        .trim_start_matches("sip:")
        .split([':', ';'])
        .next()
        .unwrap_or("")
        .to_string()
}

/// Precise process CPU seconds (getrusage).
pub fn rusage_cpu() -> f64 {
    let (user, system) = rusage_split();
    user + system
}

/// Process CPU seconds in user space and in the kernel (getrusage).
pub fn rusage_split() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}
