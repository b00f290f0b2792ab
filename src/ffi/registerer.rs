//! `sipreg_registerer`: one registration (SIP.js `Registerer`) and its callbacks.

use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::failure::{kind_of, sipreg_failure};
use super::options::{sipreg_registerer_options, OPTIONS};
use super::user_agent::{sipreg_user_agent, UAS};
use super::{copy_out, guard, put, sipreg_result, sipreg_state, Registry};
use crate::core::failure::Failure;
use crate::core::options::RegistererOptions;
use crate::core::rand::os_seed;
use crate::core::registerer::Event;
use crate::error::Error;
use crate::runtime::{self, Command, EventSink, Shared, Snapshot};

/// Opaque registerer. Create with `sipreg_registerer_new`; drive with
/// `sipreg_register` / `sipreg_unregister` / `sipreg_dispose`; release with
/// `sipreg_registerer_free`. Every function is safe to call from any thread,
/// including from inside its own callbacks.
pub struct sipreg_registerer {
    _private: [u8; 0],
}

/// Called once per state change, in order, never twice for the same state
/// in a row: on the library's worker thread, or, when the user agent has a
/// dispatcher (`sipreg_user_agent_set_dispatcher`) at the registerer's
/// creation, inside `sipreg_dispatcher_run` on the thread that calls it. It
/// may call any sipreg function, including `sipreg_unregister` /
/// `sipreg_dispose` / `sipreg_registerer_free` on the same registerer. On
/// the worker it must not block for long: every registerer shares that thread.
pub type sipreg_state_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        registerer: *mut sipreg_registerer,
        new_state: sipreg_state,
    ),
>;

/// Kind of a `sipreg_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sipreg_event_kind {
    /// `state` holds the new state.
    SIPREG_EVENT_STATE_CHANGED = 0,
    /// A final response ended a request: `status_code` and `reason` (408 and
    /// 503 are synthesised for timeouts and transport errors).
    SIPREG_EVENT_RESPONSE = 1,
    /// An automatic retry was scheduled in `retry_delay` seconds after `failure_count` failures.
    SIPREG_EVENT_RETRY_SCHEDULED = 2,
    /// The scheduled retry REGISTER is being sent.
    SIPREG_EVENT_RETRY_STARTED = 3,
    /// An attempt failed: `failure` and `failure_detail` say why, and
    /// `status_code` / `reason` give the response that said it (0 and "" for
    /// a FLOW failure). Comes after the RESPONSE event of that attempt and
    /// before the state change and RETRY_SCHEDULED it leads to.
    SIPREG_EVENT_FAILED = 4,
}

/// One event. Valid only during the callback (copy what you keep).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sipreg_event {
    /// What happened.
    pub kind: sipreg_event_kind,
    /// The registerer's state when this event happened (the new state for
    /// STATE_CHANGED; for a response, the state before the change it causes).
    pub state: sipreg_state,
    /// Status code for RESPONSE, else 0.
    pub status_code: u16,
    /// Reason phrase for RESPONSE, else "" (never NULL).
    pub reason: *const c_char,
    /// Seconds until the retry for RETRY_SCHEDULED, else 0.
    pub retry_delay: f64,
    /// Consecutive failures for RETRY_*, else 0.
    pub failure_count: u32,
    /// The failure of the last attempt as of this event (on every event:
    /// SIPREG_FAILURE_NONE after a success), as `sipreg_registerer_failure`
    /// reported it when the event happened.
    pub failure: sipreg_failure,
    /// One line saying why, for `failure` ("" for SIPREG_FAILURE_NONE; never NULL).
    pub failure_detail: *const c_char,
}

/// Called for every event (state changes, final responses, failures,
/// retries), in order, on the same thread as the state callback. Same rules
/// as `sipreg_state_callback`.
pub type sipreg_event_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        registerer: *mut sipreg_registerer,
        event: *const sipreg_event,
    ),
>;

#[derive(Clone, Copy)]
struct Callbacks {
    state: sipreg_state_callback,
    state_data: usize,
    event: sipreg_event_callback,
    event_data: usize,
}

pub(crate) struct RegHandle {
    pub(crate) id: u64,
    pub(crate) shared: Arc<Shared>,
    callbacks: Mutex<Callbacks>,
    /// The state as of the event being delivered (events arrive in order).
    delivered_state: Mutex<sipreg_state>,
    /// Set by `sipreg_registerer_free`: no callback may start after it.
    freed: AtomicBool,
}

pub(crate) static REGISTERERS: Registry<RegHandle> =
    Registry::new(crate::runtime::IdKind::Registerer);

pub(crate) fn get(r: *mut sipreg_registerer) -> Result<Arc<RegHandle>, Error> {
    REGISTERERS.get(r as *const c_void, "registerer")
}

impl EventSink for RegHandle {
    fn on_event(&self, e: &Event, failure: Option<&Failure>) {
        self.fire(e, failure);
    }
}

impl RegHandle {
    fn callbacks(&self) -> Callbacks {
        *self.callbacks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Installs a listener that turns core events into C callbacks.
    fn install_listener(self: &Arc<Self>) {
        let weak: std::sync::Weak<RegHandle> = Arc::downgrade(self);
        let weak: std::sync::Weak<dyn EventSink> = weak;
        self.shared.set_listener(Some(weak));
    }

    fn fire(&self, e: &Event, failure: Option<&Failure>) {
        let cb = self.callbacks();
        let handle = self.id as usize as *mut sipreg_registerer;
        let mut delivered = self
            .delivered_state
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Event::StateChanged(s) = e {
            *delivered = (*s).into();
        }
        let state = *delivered;
        drop(delivered);
        let empty = c"";
        let failure_kind = kind_of(failure);
        let detail = failure.map(|f| CString::new(f.detail.replace('\0', " ")).unwrap_or_default());
        let failure_detail = detail.as_deref().unwrap_or(empty).as_ptr();
        let mut reason = None;
        let ev = match e {
            // `state` already is the new state (updated above).
            Event::StateChanged(_) => {
                if let (Some(f), false) = (cb.state, self.freed.load(Ordering::Acquire)) {
                    // SAFETY: application-supplied callback with its own user_data.
                    unsafe { f(cb.state_data as *mut c_void, handle, state) };
                }
                sipreg_event {
                    kind: sipreg_event_kind::SIPREG_EVENT_STATE_CHANGED,
                    state,
                    status_code: 0,
                    reason: empty.as_ptr(),
                    retry_delay: 0.0,
                    failure_count: 0,
                    failure: failure_kind,
                    failure_detail,
                }
            }
            Event::Response { status, reason: r } => {
                // Kept in `reason` before its address is taken: an inline
                // text must not move while the callback reads it.
                let c = reason.insert(super::c_text::CText::new(r));
                sipreg_event {
                    kind: sipreg_event_kind::SIPREG_EVENT_RESPONSE,
                    state,
                    status_code: *status,
                    reason: c.as_ptr(),
                    retry_delay: 0.0,
                    failure_count: 0,
                    failure: failure_kind,
                    failure_detail,
                }
            }
            Event::RetryScheduled { delay, failures } => sipreg_event {
                kind: sipreg_event_kind::SIPREG_EVENT_RETRY_SCHEDULED,
                state,
                status_code: 0,
                reason: empty.as_ptr(),
                retry_delay: delay.as_secs_f64(),
                failure_count: *failures,
                failure: failure_kind,
                failure_detail,
            },
            Event::RetryStarted { failures } => sipreg_event {
                kind: sipreg_event_kind::SIPREG_EVENT_RETRY_STARTED,
                state,
                status_code: 0,
                reason: empty.as_ptr(),
                retry_delay: 0.0,
                failure_count: *failures,
                failure: failure_kind,
                failure_detail,
            },
            Event::Failed(f) => {
                let c = CString::new(f.reason.replace('\0', " ")).unwrap_or_default();
                let fd = CString::new(f.detail.replace('\0', " ")).unwrap_or_default();
                let ev = sipreg_event {
                    kind: sipreg_event_kind::SIPREG_EVENT_FAILED,
                    state,
                    status_code: f.status.unwrap_or(0),
                    reason: c.as_ptr(),
                    retry_delay: 0.0,
                    failure_count: 0,
                    // The failure this event announces (the step's last one
                    // may already be another).
                    failure: f.kind.into(),
                    failure_detail: fd.as_ptr(),
                };
                self.fire_event(cb, handle, &ev);
                drop((c, fd, detail));
                return;
            }
            Event::Note(_) | Event::Warning(_) => return,
        };
        self.fire_event(cb, handle, &ev);
        drop((reason, detail));
    }

    /// Calls the event callback, unless the handle was freed (a state
    /// callback that freed it ends the deliveries).
    fn fire_event(&self, cb: Callbacks, handle: *mut sipreg_registerer, ev: &sipreg_event) {
        if let (Some(f), false) = (cb.event, self.freed.load(Ordering::Acquire)) {
            // SAFETY: application-supplied callback; `ev` and its strings live across the call.
            unsafe { f(cb.event_data as *mut c_void, handle, ev) };
        }
    }
}

/// Creates a registerer for the user agent's AOR with `options` (NULL: SIP.js
/// defaults; the options are copied). Invalid options fail here with
/// SIPREG_ERR_INVALID_ARGUMENT and a message, never later on the wire.
/// Returns at once: a registrar host name is resolved (RFC 3263 NAPTR, SRV,
/// A/AAAA, from `/etc/resolv.conf`) on a resolver thread when the first
/// REGISTER goes out, and again when the answers' TTL runs out; a failed
/// lookup ends that REGISTER with state Unregistered and a 503 response event
/// (retried by the backoff). Nothing is sent until `sipreg_register`. `callback` (may be NULL) receives state changes with
/// `user_data`, which must stay valid until the registerer is freed. The
/// caller owns `*out` and frees it with `sipreg_registerer_free`.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` or `out` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (options that do not fit together or with the
/// user agent, e.g. reg_id without instance_id; or a foreign handle);
/// SIPREG_ERR_TERMINATED (the user agent is freed or being freed, or the
/// options were freed); SIPREG_ERR_INTERNAL (the worker thread is unreachable).
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_new(
    ua: *mut sipreg_user_agent,
    options: *const sipreg_registerer_options,
    callback: sipreg_state_callback,
    user_data: *mut c_void,
    out: *mut *mut sipreg_registerer,
) -> sipreg_result {
    guard(|| {
        if out.is_null() {
            return Err(Error::NullArgument("out"));
        }
        let ua_h = UAS.get(ua as *const c_void, "ua")?;
        let opts_handle = match options.is_null() {
            true => None,
            false => Some(OPTIONS.get(options as *const c_void, "options")?),
        };
        let seed = os_seed();
        let id = runtime::next_id(runtime::IdKind::Registerer);
        // Callbacks go where the user agent's go now (fixed for the registerer's life).
        let dispatcher = runtime::dispatch::route(ua_h.id);
        let handle = Arc::new(RegHandle {
            id,
            shared: Arc::new(Shared::new(dispatcher)),
            callbacks: Mutex::new(Callbacks {
                state: callback,
                state_data: user_data as usize,
                event: None,
                event_data: 0,
            }),
            delivered_state: Mutex::new(sipreg_state::SIPREG_STATE_INITIAL),
            freed: AtomicBool::new(false),
        });
        handle.install_listener();
        let add = |opts: &RegistererOptions| {
            ua_h.while_open(|config, new_ua| {
                let shared = handle.shared.clone();
                runtime::add_registerer(id, ua_h.id, config, opts, seed, shared, new_ua)
            })
        };
        // The options are read under their lock while the registerer is made
        // from them, not copied first (nothing locked inside takes them).
        match opts_handle {
            None => add(&RegistererOptions::default())?,
            Some(h) => add(&h.lock())?,
        }
        if let Some(d) = handle.shared.dispatcher() {
            d.add_user();
        }
        let p = REGISTERERS.insert(id, handle);
        out.write(p.cast());
        Ok(())
    })
}

/// Replaces the state callback (NULL removes it). Off the worker thread this
/// returns once no call of the old callback is running, so its `user_data`
/// may then be released.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` NULL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_set_state_callback(
    r: *mut sipreg_registerer,
    callback: sipreg_state_callback,
    user_data: *mut c_void,
) -> sipreg_result {
    update_callbacks(r, |c| {
        c.state = callback;
        c.state_data = user_data as usize;
    })
}

/// Sets the event callback (NULL removes it), with the same guarantees as
/// `sipreg_registerer_set_state_callback`.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` NULL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_set_event_callback(
    r: *mut sipreg_registerer,
    callback: sipreg_event_callback,
    user_data: *mut c_void,
) -> sipreg_result {
    update_callbacks(r, |c| {
        c.event = callback;
        c.event_data = user_data as usize;
    })
}

/// Changes the callbacks, then re-installs the listener (which waits for a
/// running call of the old one when off the worker thread).
fn update_callbacks(r: *mut sipreg_registerer, f: impl FnOnce(&mut Callbacks)) -> sipreg_result {
    guard(|| {
        let h = get(r)?;
        f(&mut h.callbacks.lock().unwrap_or_else(|e| e.into_inner()));
        h.install_listener();
        Ok(())
    })
}

/// Sends a REGISTER (SIP.js `register()`); returns at once, the outcome comes
/// through the callbacks. SIPREG_ERR_REQUEST_PENDING while a REGISTER is in
/// flight (nothing is queued); SIPREG_ERR_TERMINATED after dispose.
///
/// Returns SIPREG_OK; SIPREG_ERR_REQUEST_PENDING (a REGISTER or un-REGISTER is
/// in flight); SIPREG_ERR_TERMINATED (disposed, or the handle was freed);
/// SIPREG_ERR_NULL_ARGUMENT (`r` NULL); SIPREG_ERR_INVALID_ARGUMENT (not a
/// registerer handle); SIPREG_ERR_INTERNAL (the worker thread is unreachable).
#[no_mangle]
pub extern "C" fn sipreg_register(r: *mut sipreg_registerer) -> sipreg_result {
    guard(|| {
        let h = get(r)?;
        runtime::register(h.id, &h.shared, Vec::new())
    })
}

/// Sends an un-REGISTER for our contact, or with `all` for every binding of
/// the AOR (`Contact: *`). Returns at once; same errors as `sipreg_register`.
///
/// Returns SIPREG_OK; SIPREG_ERR_REQUEST_PENDING (a REGISTER or un-REGISTER is
/// in flight); SIPREG_ERR_TERMINATED (disposed, or the handle was freed);
/// SIPREG_ERR_NULL_ARGUMENT (`r` NULL); SIPREG_ERR_INVALID_ARGUMENT (not a
/// registerer handle); SIPREG_ERR_INTERNAL (the worker thread is unreachable).
#[no_mangle]
pub extern "C" fn sipreg_unregister(r: *mut sipreg_registerer, all: bool) -> sipreg_result {
    guard(|| {
        let h = get(r)?;
        runtime::unregister(h.id, &h.shared, all, Vec::new())
    })
}

/// SIP.js `dispose()`: waits for a request in flight, unregisters if
/// registered (answering challenges), then Terminated — within the user
/// agent's shutdown timeout. Returns at once; Terminated arrives through the
/// callback. Later calls on the handle return SIPREG_ERR_TERMINATED until it
/// is freed.
///
/// Returns SIPREG_OK; SIPREG_ERR_TERMINATED (already disposed, or the handle
/// was freed); SIPREG_ERR_NULL_ARGUMENT (`r` NULL); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL (the worker thread is
/// unreachable).
#[no_mangle]
pub extern "C" fn sipreg_dispose(r: *mut sipreg_registerer) -> sipreg_result {
    guard(|| {
        let h = get(r)?;
        runtime::dispose(h.id, &h.shared)
    })
}

/// Releases the handle. No callback for it runs after this returns (unless
/// called from inside one of its own callbacks, which then is the last). A
/// registerer still registered is disposed in the background (un-REGISTER
/// within the shutdown bound). NULL is ignored; freeing twice is reported
/// (SIPREG_ERR_TERMINATED), never a crash.
#[no_mangle]
pub extern "C" fn sipreg_registerer_free(r: *mut sipreg_registerer) {
    let _ = guard(|| {
        if r.is_null() {
            return Ok(());
        }
        let h = REGISTERERS.remove(r as *const c_void, "registerer")?;
        h.freed.store(true, Ordering::Release);
        h.shared.set_listener(None);
        if let Some(d) = h.shared.dispatcher() {
            d.remove_user();
        }
        runtime::send(Command::FreeReg(h.id))
    });
}

/// Reads the current state.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `out` NULL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_state(
    r: *mut sipreg_registerer,
    out: *mut sipreg_state,
) -> sipreg_result {
    read(r, out, |s| s.state.into())
}

/// Number of contact URIs the registrar listed in the last 2xx.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `out` NULL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_contact_count(
    r: *mut sipreg_registerer,
    out: *mut usize,
) -> sipreg_result {
    read(r, out, |s| s.contacts.as_ref().map_or(0, |c| c.len()))
}

/// Copies contact URI number `index` (NUL-terminated) into `buf` of `len`
/// bytes; `needed` (may be NULL) receives the size required including the NUL.
/// SIPREG_ERR_BUFFER_TOO_SMALL if it does not fit; SIPREG_ERR_INVALID_ARGUMENT
/// for an index out of range.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` NULL, or `buf` NULL with
/// `len` > 0); SIPREG_ERR_BUFFER_TOO_SMALL (it does not fit, `buf` NULL with
/// `len` 0 included: `*needed` says the size, `buf` is untouched);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle, or an index out of range); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `buf` must be NULL or writable for `len` bytes; `needed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_contact(
    r: *mut sipreg_registerer,
    index: usize,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    guard(|| {
        let h = get(r)?;
        let c = h
            .shared
            .snap()
            .contacts
            .as_ref()
            .and_then(|c| c.get(index).map(str::to_owned))
            .ok_or_else(|| Error::invalid(format!("contact index {index} out of range")))?;
        copy_out(&c, buf, len, needed)
    })
}

/// Copies the flow the last request went out on, "proto:local -> remote"
/// (e.g. "tls:127.0.0.1:40312 -> 127.0.0.1:5061"), NUL-terminated, into `buf`
/// of `len` bytes; an empty string before the first request. `needed` (may
/// be NULL) receives the size required, counting the NUL.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` NULL, or `buf` NULL with
/// `len` > 0); SIPREG_ERR_BUFFER_TOO_SMALL (it does not fit, `buf` NULL with
/// `len` 0 included: `*needed` says the size, `buf` is untouched);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `buf` must be NULL or writable for `len` bytes; `needed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_flow(
    r: *mut sipreg_registerer,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    guard(|| {
        let h = get(r)?;
        let flow = h.shared.snap().flow.clone();
        copy_out(flow.as_ref().map_or("", |f| &f.text), buf, len, needed)
    })
}

/// Retry-After of the last rejection: `*present` tells whether there was one.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r`, `seconds` or `present`
/// NULL); SIPREG_ERR_TERMINATED (the handle was freed);
/// SIPREG_ERR_INVALID_ARGUMENT (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `seconds` and `present` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_retry_after(
    r: *mut sipreg_registerer,
    seconds: *mut u32,
    present: *mut bool,
) -> sipreg_result {
    guard(|| {
        let h = get(r)?;
        let ra = h.shared.snap().retry_after;
        put(present, ra.is_some(), "present")?;
        put(seconds, ra.unwrap_or(0), "seconds")
    })
}

/// Last final response: `*status_code` (0 if none yet) and its reason phrase
/// copied into `buf` (may be NULL with `len` 0 to ask only for the code;
/// `needed`, may be NULL, gets the size required).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `status_code` NULL, or
/// `buf` NULL with `len` > 0); SIPREG_ERR_BUFFER_TOO_SMALL (the reason does not
/// fit: `*status_code` and `*needed` are set, `buf` is untouched);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// Pointers must be NULL or writable (`buf` for `len` bytes).
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_last_response(
    r: *mut sipreg_registerer,
    status_code: *mut u16,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    guard(|| {
        let h = get(r)?;
        let (code, reason) = {
            let s = h.shared.snap();
            (
                s.last_status,
                s.last_reason.clone().unwrap_or_else(|| Arc::from("")),
            )
        };
        put(status_code, code, "status_code")?;
        if buf.is_null() && len == 0 {
            if !needed.is_null() {
                needed.write(reason.len() + 1);
            }
            return Ok(());
        }
        copy_out(&reason, buf, len, needed)
    })
}

/// Seconds until the scheduled automatic retry, or -1 if none is scheduled.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `out` NULL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_next_retry(
    r: *mut sipreg_registerer,
    out: *mut f64,
) -> sipreg_result {
    read(r, out, |s| {
        s.retry_at.get().map_or(-1.0, |t| {
            t.saturating_duration_since(Instant::now()).as_secs_f64()
        })
    })
}

/// Consecutive failed registration attempts (0 after a success).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `out` NULL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_failure_count(
    r: *mut sipreg_registerer,
    out: *mut u32,
) -> sipreg_result {
    read(r, out, |s| s.failure_count)
}

/// Timer E retransmissions sent so far (UDP).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `out` NULL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_retransmissions(
    r: *mut sipreg_registerer,
    out: *mut u64,
) -> sipreg_result {
    read(r, out, |s| u64::from(s.retransmissions))
}

/// Reads one value from the registerer's snapshot into `out`.
///
/// # Safety
/// `out` must be NULL or writable.
unsafe fn read<T>(
    r: *mut sipreg_registerer,
    out: *mut T,
    f: impl FnOnce(&Snapshot) -> T,
) -> sipreg_result {
    guard(|| {
        let h = get(r)?;
        let v = f(&h.shared.snap());
        put(out, v, "out")
    })
}

/// [`read_snapshot`] for accessors that take a `const` handle.
pub(crate) fn read_snapshot_const<T>(
    r: *const sipreg_registerer,
    f: impl FnOnce(&Snapshot) -> T,
) -> Result<T, Error> {
    read_snapshot(r.cast_mut(), f)
}

/// Runs `f` on the registerer's snapshot (for accessors in sibling modules).
pub(crate) fn read_snapshot<T>(
    r: *mut sipreg_registerer,
    f: impl FnOnce(&Snapshot) -> T,
) -> Result<T, Error> {
    let h = get(r)?;
    let v = f(&h.shared.snap());
    Ok(v)
}
