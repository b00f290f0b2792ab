//! Helpers for the contact tests: the request listener of a user agent
//! through the C ABI (requests collected into a channel, optionally
//! answered inside the callback) and `respond` / `send` wrappers. SIPp runs
//! through support::sipp.

use std::ffi::{c_char, c_void, CStr, CString};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use sipreg::ffi::requests::*;
use sipreg::ffi::sipreg_result;
use sipreg::ffi::user_agent::sipreg_user_agent;

use super::capi::Ua;

/// One request as the callback saw it.
#[derive(Clone, Debug)]
pub struct Got {
    pub message: Vec<u8>,
    pub method: String,
    pub flow_id: u64,
    pub flow: String,
    pub at: Instant,
}

impl Got {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.message).into_owned()
    }

    /// The body, read with `sipreg_message_body`.
    pub fn body(&self) -> Vec<u8> {
        let (mut off, mut len) = (0usize, 0usize);
        let rc = unsafe {
            sipreg_message_body(
                self.message.as_ptr().cast(),
                self.message.len(),
                &mut off,
                &mut len,
            )
        };
        assert_eq!(rc, sipreg_result::SIPREG_OK);
        self.message[off..off + len].to_vec()
    }
}

/// What the callback does besides collecting: answer inside it, or not.
#[derive(Clone, Debug)]
pub struct AutoAnswer {
    pub status: u16,
    pub headers: String,
}

struct Ctx {
    tx: Sender<Got>,
    auto: Option<AutoAnswer>,
}

unsafe extern "C" fn on_request(
    ud: *mut c_void,
    ua: *mut sipreg_user_agent,
    r: *const sipreg_incoming,
) {
    let ctx = &*(ud as *const Ctx);
    let r = &*r;
    let message = std::slice::from_raw_parts(r.message.cast::<u8>(), r.length).to_vec();
    let got = Got {
        message,
        method: CStr::from_ptr(r.method).to_string_lossy().into_owned(),
        flow_id: r.flow_id,
        flow: CStr::from_ptr(r.flow).to_string_lossy().into_owned(),
        at: Instant::now(),
    };
    if let Some(a) = &ctx.auto {
        if got.method != "ACK" {
            let headers = CString::new(a.headers.clone()).unwrap();
            let rc = sipreg_user_agent_respond(
                ua,
                r.flow_id,
                r.message,
                r.length,
                a.status,
                std::ptr::null(),
                headers.as_ptr(),
                std::ptr::null(),
                0,
            );
            assert_eq!(rc, sipreg_result::SIPREG_OK, "respond inside the callback");
        }
    }
    let _ = ctx.tx.send(got);
}

/// A user agent's request listener; removed (and its context freed) on drop.
pub struct Listener {
    ua: *mut sipreg_user_agent,
    ctx: *mut Ctx,
    rx: Receiver<Got>,
}
unsafe impl Send for Listener {}

impl Listener {
    /// Installs a listener on `ua` that collects requests, and answers them
    /// inside the callback when `auto` says how.
    pub fn install(ua: &Ua, auto: Option<AutoAnswer>) -> Listener {
        let (tx, rx) = crossbeam_channel::unbounded();
        let ctx = Box::into_raw(Box::new(Ctx { tx, auto }));
        let rc = sipreg_user_agent_set_request_callback(ua.0, Some(on_request), ctx.cast());
        assert_eq!(rc, sipreg_result::SIPREG_OK);
        Listener { ua: ua.0, ctx, rx }
    }

    /// The next request within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Got> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next request with `method` within `timeout` (others skipped).
    pub fn next_of(&self, method: &str, timeout: Duration) -> Option<Got> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let g = self.rx.recv_timeout(left).ok()?;
            if g.method == method {
                return Some(g);
            }
        }
    }

    /// Everything received so far.
    pub fn drain(&self) -> Vec<Got> {
        self.rx.try_iter().collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // No call runs after this returns, so the context can go.
        sipreg_user_agent_set_request_callback(self.ua, None, std::ptr::null_mut());
        unsafe { drop(Box::from_raw(self.ctx)) };
    }
}

/// `sipreg_user_agent_respond` on a request the listener got.
pub fn respond(
    ua: &Ua,
    got: &Got,
    status: u16,
    reason: Option<&str>,
    headers: &str,
    body: &[u8],
) -> sipreg_result {
    let reason = reason.map(|r| CString::new(r).unwrap());
    let headers = CString::new(headers).unwrap();
    unsafe {
        sipreg_user_agent_respond(
            ua.0,
            got.flow_id,
            got.message.as_ptr().cast(),
            got.message.len(),
            status,
            reason.as_ref().map_or(std::ptr::null(), |r| r.as_ptr()),
            headers.as_ptr(),
            if body.is_empty() {
                std::ptr::null()
            } else {
                body.as_ptr().cast()
            },
            body.len(),
        )
    }
}

/// `sipreg_user_agent_send`.
pub fn send(ua: &Ua, flow_id: u64, message: &[u8]) -> sipreg_result {
    unsafe { sipreg_user_agent_send(ua.0, flow_id, message.as_ptr().cast(), message.len()) }
}

/// A user agent setting that takes a string (`sipreg_user_agent_set_allow` …).
pub fn set_str(
    ua: &Ua,
    f: unsafe extern "C" fn(*mut sipreg_user_agent, *const c_char) -> sipreg_result,
    value: Option<&str>,
) -> sipreg_result {
    let v = value.map(|v| CString::new(v).unwrap());
    unsafe { f(ua.0, v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr())) }
}

/// The registered flow of a registerer (`sipreg_registerer_flow_id`), 0 for none.
pub fn flow_id(r: &super::capi::Reg) -> u64 {
    let mut id = 0;
    let rc = unsafe { sipreg_registerer_flow_id(r.ptr, &mut id) };
    assert_eq!(rc, sipreg_result::SIPREG_OK);
    id
}
