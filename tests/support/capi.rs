//! A small safe wrapper over the C ABI for integration tests: exactly the
//! functions a C application calls, with events collected into a channel.

use std::ffi::{c_char, c_void, CStr, CString};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use sipreg::ffi::failure::*;
use sipreg::ffi::options::*;
use sipreg::ffi::registerer::*;
use sipreg::ffi::user_agent::*;
use sipreg::ffi::{sipreg_result, sipreg_state};

pub use sipreg::ffi::failure::sipreg_failure;
pub use sipreg::ffi::failure::sipreg_failure::*;
pub use sipreg::ffi::sipreg_state::*;

fn check(rc: sipreg_result, what: &str) {
    assert_eq!(rc, sipreg_result::SIPREG_OK, "{what}: {}", last_error());
}

pub fn last_error() -> String {
    unsafe { CStr::from_ptr(sipreg::ffi::global::sipreg_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// One event as the C callback saw it.
#[derive(Clone, Debug, PartialEq)]
pub enum Ev {
    State(sipreg_state),
    Response(u16, String),
    RetryScheduled(f64, u32),
    RetryStarted(u32),
    /// SIPREG_EVENT_FAILED: kind, status (0: none), detail.
    Failed(sipreg_failure, u16, String),
}

pub struct Ua(pub *mut sipreg_user_agent);
unsafe impl Send for Ua {}
unsafe impl Sync for Ua {}

impl Ua {
    pub fn new(aor: &str) -> Ua {
        let mut p = std::ptr::null_mut();
        check(
            unsafe { sipreg_user_agent_new(c(aor).as_ptr(), &mut p) },
            "ua_new",
        );
        Ua(p)
    }
    pub fn password(self, pw: &str) -> Ua {
        check(
            unsafe { sipreg_user_agent_set_password(self.0, c(pw).as_ptr()) },
            "password",
        );
        self
    }
    /// `sipreg_user_agent_add_credential`; the result code, for tests of refusals.
    pub fn try_credential(
        &self,
        realm: Option<&str>,
        user: Option<&str>,
        secret: Option<&str>,
        kind: sipreg::ffi::credentials::sipreg_secret,
    ) -> sipreg_result {
        let (realm, user, secret) = (realm.map(c), user.map(c), secret.map(c));
        let p = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        unsafe {
            sipreg::ffi::credentials::sipreg_user_agent_add_credential(
                self.0,
                p(&realm),
                p(&user),
                p(&secret),
                kind as i32,
            )
        }
    }
    pub fn credential(
        self,
        realm: Option<&str>,
        user: Option<&str>,
        secret: &str,
        kind: sipreg::ffi::credentials::sipreg_secret,
    ) -> Ua {
        check(
            self.try_credential(realm, user, Some(secret), kind),
            "credential",
        );
        self
    }
    pub fn digest_downgrade(self, allow: bool) -> Ua {
        check(
            sipreg::ffi::credentials::sipreg_user_agent_set_digest_downgrade(self.0, allow),
            "digest downgrade",
        );
        self
    }
    pub fn transport(self, t: &str) -> Ua {
        check(
            unsafe { sipreg_user_agent_set_transport(self.0, c(t).as_ptr()) },
            "transport",
        );
        self
    }
    pub fn timers(self, t1: f64, t2: f64, t4: f64) -> Ua {
        check(sipreg_user_agent_set_timers(self.0, t1, t2, t4), "timers");
        self
    }
    pub fn shutdown_timeout(self, s: f64) -> Ua {
        check(
            sipreg_user_agent_set_shutdown_timeout(self.0, s),
            "shutdown",
        );
        self
    }
    pub fn local_address(self, a: &str) -> Ua {
        check(
            unsafe { sipreg_user_agent_set_local_address(self.0, c(a).as_ptr()) },
            "local",
        );
        self
    }
    pub fn tls_ca_file(self, path: &str) -> Ua {
        check(
            unsafe { sipreg_user_agent_set_tls_ca_file(self.0, c(path).as_ptr()) },
            "ca file",
        );
        self
    }
    pub fn tls_server_name(self, name: &str) -> Ua {
        check(
            unsafe { sipreg_user_agent_set_tls_server_name(self.0, c(name).as_ptr()) },
            "server name",
        );
        self
    }
    pub fn tls_verify(self, on: bool) -> Ua {
        check(sipreg_user_agent_set_tls_verify(self.0, on), "verify");
        self
    }
    pub fn private_socket(self, on: bool) -> Ua {
        check(
            sipreg_user_agent_set_private_socket(self.0, on),
            "private socket",
        );
        self
    }
    pub fn ws_path(self, path: &str) -> Ua {
        check(
            unsafe { sipreg_user_agent_set_ws_path(self.0, c(path).as_ptr()) },
            "ws path",
        );
        self
    }
    pub fn network_changed(&self) {
        check(sipreg_user_agent_network_changed(self.0), "network_changed");
    }
    pub fn stats(&self) -> sipreg_stats {
        let mut s = sipreg_stats::default();
        check(unsafe { sipreg_user_agent_stats(self.0, &mut s) }, "stats");
        s
    }
}

impl Drop for Ua {
    fn drop(&mut self) {
        sipreg_user_agent_free(self.0);
    }
}

/// Registerer options as a plain struct.
#[derive(Clone, Debug)]
pub struct Opts {
    pub expires: u32,
    pub registrar: Option<String>,
    pub refresh_frequency: u32,
    pub retry: bool,
    pub retry_base: f64,
    pub retry_max: f64,
    pub instance_id: Option<String>,
    pub reg_id: u32,
    pub extra_headers: Vec<String>,
    pub path_gruu: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            expires: 600,
            registrar: None,
            refresh_frequency: 99,
            retry: true,
            retry_base: 30.0,
            retry_max: 1800.0,
            instance_id: None,
            reg_id: 0,
            extra_headers: Vec::new(),
            path_gruu: false,
        }
    }
}

pub struct Reg {
    pub ptr: *mut sipreg_registerer,
    rx: Receiver<Ev>,
    tx: *mut Sender<Ev>,
    pub seen: Vec<Ev>,
    cursor: usize,
}
unsafe impl Send for Reg {}

unsafe extern "C" fn on_event(
    ud: *mut c_void,
    _r: *mut sipreg_registerer,
    ev: *const sipreg_event,
) {
    let tx = &*(ud as *const Sender<Ev>);
    let ev = &*ev;
    let e = match ev.kind {
        sipreg_event_kind::SIPREG_EVENT_STATE_CHANGED => Ev::State(ev.state),
        sipreg_event_kind::SIPREG_EVENT_RESPONSE => Ev::Response(
            ev.status_code,
            CStr::from_ptr(ev.reason).to_string_lossy().into_owned(),
        ),
        sipreg_event_kind::SIPREG_EVENT_RETRY_SCHEDULED => {
            Ev::RetryScheduled(ev.retry_delay, ev.failure_count)
        }
        sipreg_event_kind::SIPREG_EVENT_RETRY_STARTED => Ev::RetryStarted(ev.failure_count),
        sipreg_event_kind::SIPREG_EVENT_FAILED => Ev::Failed(
            ev.failure,
            ev.status_code,
            CStr::from_ptr(ev.failure_detail)
                .to_string_lossy()
                .into_owned(),
        ),
    };
    let _ = tx.send(e);
}

impl Reg {
    pub fn new(ua: &Ua, o: &Opts) -> Reg {
        Reg::try_new(ua, o).unwrap_or_else(|e| panic!("registerer_new: {e}"))
    }

    pub fn try_new(ua: &Ua, o: &Opts) -> Result<Reg, String> {
        unsafe {
            let mut opts = std::ptr::null_mut();
            check(sipreg_registerer_options_new(&mut opts), "options_new");
            check(
                sipreg_registerer_options_set_expires(opts, o.expires),
                "expires",
            );
            check(
                sipreg_registerer_options_set_refresh_frequency(opts, o.refresh_frequency),
                "freq",
            );
            if let Some(r) = &o.registrar {
                check(
                    sipreg_registerer_options_set_registrar(opts, c(r).as_ptr()),
                    "registrar",
                );
            }
            if let Some(i) = &o.instance_id {
                check(
                    sipreg_registerer_options_set_instance_id(opts, c(i).as_ptr()),
                    "instance",
                );
            }
            check(
                sipreg_registerer_options_set_reg_id(opts, o.reg_id),
                "reg_id",
            );
            for h in &o.extra_headers {
                check(
                    sipreg_registerer_options_add_extra_header(opts, c(h).as_ptr()),
                    "header",
                );
            }
            check(sipreg_registerer_options_set_retry(opts, o.retry), "retry");
            check(
                sipreg_registerer_options_set_path_gruu(opts, o.path_gruu),
                "path_gruu",
            );
            check(
                sipreg_registerer_options_set_retry_base(opts, o.retry_base),
                "retry_base",
            );
            check(
                sipreg_registerer_options_set_retry_max(opts, o.retry_max),
                "retry_max",
            );
            let (tx, rx) = crossbeam_channel::unbounded();
            let tx = Box::into_raw(Box::new(tx));
            let mut p = std::ptr::null_mut();
            let rc = sipreg_registerer_new(ua.0, opts, None, std::ptr::null_mut(), &mut p);
            sipreg_registerer_options_free(opts);
            if rc != sipreg_result::SIPREG_OK {
                drop(Box::from_raw(tx));
                return Err(last_error());
            }
            check(
                sipreg_registerer_set_event_callback(p, Some(on_event), tx.cast()),
                "event cb",
            );
            Ok(Reg {
                ptr: p,
                rx,
                tx,
                seen: Vec::new(),
                cursor: 0,
            })
        }
    }

    pub fn register(&self) -> sipreg_result {
        sipreg_register(self.ptr)
    }
    pub fn unregister(&self, all: bool) -> sipreg_result {
        sipreg_unregister(self.ptr, all)
    }
    /// `sipreg_register_with_headers`.
    pub fn register_with_headers(&self, headers: &[&str]) -> sipreg_result {
        let owned: Vec<CString> = headers.iter().map(|h| c(h)).collect();
        let ptrs: Vec<*const c_char> = owned.iter().map(|h| h.as_ptr()).collect();
        unsafe {
            sipreg::ffi::request_headers::sipreg_register_with_headers(
                self.ptr,
                ptrs.as_ptr(),
                ptrs.len(),
            )
        }
    }
    /// `sipreg_unregister_with_headers`.
    pub fn unregister_with_headers(&self, all: bool, headers: &[&str]) -> sipreg_result {
        let owned: Vec<CString> = headers.iter().map(|h| c(h)).collect();
        let ptrs: Vec<*const c_char> = owned.iter().map(|h| h.as_ptr()).collect();
        unsafe {
            sipreg::ffi::request_headers::sipreg_unregister_with_headers(
                self.ptr,
                all,
                ptrs.as_ptr(),
                ptrs.len(),
            )
        }
    }
    pub fn dispose(&self) -> sipreg_result {
        sipreg_dispose(self.ptr)
    }
    pub fn state(&self) -> sipreg_state {
        let mut s = SIPREG_STATE_INITIAL;
        check(
            unsafe { sipreg_registerer_state(self.ptr, &mut s) },
            "state",
        );
        s
    }
    pub fn contacts(&self) -> Vec<String> {
        let mut n = 0;
        check(
            unsafe { sipreg_registerer_contact_count(self.ptr, &mut n) },
            "count",
        );
        (0..n)
            .map(|i| {
                let mut buf = [0 as c_char; 512];
                let mut need = 0;
                check(
                    unsafe {
                        sipreg_registerer_contact(
                            self.ptr,
                            i,
                            buf.as_mut_ptr(),
                            buf.len(),
                            &mut need,
                        )
                    },
                    "contact",
                );
                unsafe { CStr::from_ptr(buf.as_ptr()) }
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }
    pub fn last_response(&self) -> Option<(u16, String)> {
        let mut code = 0u16;
        let mut buf = [0 as c_char; 256];
        let mut need = 0;
        check(
            unsafe {
                sipreg_registerer_last_response(
                    self.ptr,
                    &mut code,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut need,
                )
            },
            "last_response",
        );
        (code != 0).then(|| {
            (
                code,
                unsafe { CStr::from_ptr(buf.as_ptr()) }
                    .to_string_lossy()
                    .into_owned(),
            )
        })
    }
    /// The flow in use, "proto:local -> remote" (empty before the first request).
    pub fn flow(&self) -> String {
        let mut buf = [0 as std::ffi::c_char; 256];
        check(
            unsafe {
                sipreg_registerer_flow(self.ptr, buf.as_mut_ptr(), buf.len(), std::ptr::null_mut())
            },
            "flow",
        );
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
    pub fn retry_after(&self) -> Option<u32> {
        let (mut s, mut p) = (0u32, false);
        check(
            unsafe { sipreg_registerer_retry_after(self.ptr, &mut s, &mut p) },
            "retry_after",
        );
        p.then_some(s)
    }
    pub fn next_retry(&self) -> Option<f64> {
        let mut v = 0.0;
        check(
            unsafe { sipreg_registerer_next_retry(self.ptr, &mut v) },
            "next_retry",
        );
        (v >= 0.0).then_some(v)
    }
    pub fn failure_count(&self) -> u32 {
        let mut v = 0;
        check(
            unsafe { sipreg_registerer_failure_count(self.ptr, &mut v) },
            "failures",
        );
        v
    }
    /// `sipreg_registerer_failure`: the kind and detail of the last attempt's failure.
    pub fn failure(&self) -> (sipreg_failure, String) {
        let mut kind = SIPREG_FAILURE_NONE;
        let mut need = 0usize;
        check(
            unsafe {
                sipreg_registerer_failure(self.ptr, &mut kind, std::ptr::null_mut(), 0, &mut need)
            },
            "failure size",
        );
        let mut buf = vec![0 as c_char; need];
        check(
            unsafe {
                sipreg_registerer_failure(
                    self.ptr,
                    &mut kind,
                    buf.as_mut_ptr(),
                    buf.len(),
                    std::ptr::null_mut(),
                )
            },
            "failure",
        );
        let detail = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        (kind, detail)
    }
    /// `sipreg_registerer_failure_response`: status (0: none) and reason of the failure.
    pub fn failure_response(&self) -> (u16, String) {
        let mut status = 0u16;
        let mut buf = [0 as c_char; 128];
        check(
            unsafe {
                sipreg_registerer_failure_response(
                    self.ptr,
                    &mut status,
                    buf.as_mut_ptr(),
                    buf.len(),
                    std::ptr::null_mut(),
                )
            },
            "failure_response",
        );
        let reason = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        (status, reason)
    }
    /// Waits for the next SIPREG_EVENT_FAILED.
    pub fn wait_failed(&mut self, timeout: Duration) -> Option<(sipreg_failure, u16, String)> {
        match self.wait_for(timeout, |e| matches!(e, Ev::Failed(..))) {
            Some(Ev::Failed(k, s, d)) => Some((k, s, d)),
            _ => None,
        }
    }
    pub fn retransmissions(&self) -> u64 {
        let mut v = 0;
        check(
            unsafe { sipreg_registerer_retransmissions(self.ptr, &mut v) },
            "retrans",
        );
        v
    }

    /// Waits for the next event (after those already matched) satisfying `pred`.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Ev) -> bool) -> Option<Ev> {
        let end = Instant::now() + timeout;
        loop {
            while self.cursor < self.seen.len() {
                self.cursor += 1;
                let e = &self.seen[self.cursor - 1];
                if pred(e) {
                    return Some(e.clone());
                }
            }
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(e) => self.seen.push(e),
                Err(_) => return None,
            }
        }
    }

    /// Waits for a state-change event to `s`.
    pub fn wait_state(&mut self, s: sipreg_state, timeout: Duration) -> bool {
        self.wait_for(timeout, |e| *e == Ev::State(s)).is_some()
    }

    /// How many 200s (initial, refreshes, un-REGISTERs) arrived so far.
    pub fn count_200(&mut self) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, Ev::Response(200, _)))
            .count()
    }

    /// Waits until `n` 200s arrived in all.
    pub fn wait_200s(&mut self, n: usize, within: Duration) -> bool {
        super::wait::until(within, || self.count_200() >= n)
    }

    /// Everything received so far (drains the channel).
    pub fn events(&mut self) -> Vec<Ev> {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e);
        }
        self.seen.clone()
    }
}

impl Drop for Reg {
    fn drop(&mut self) {
        sipreg_registerer_free(self.ptr);
        // No callback runs after free returns, so the sender can go.
        unsafe { drop(Box::from_raw(self.tx)) };
    }
}
