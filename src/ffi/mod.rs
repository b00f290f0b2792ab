//! The C boundary: argument checks, panic catching, handle lifecycle.
//!
//! Handles given to C are opaque ids, not addresses: a freed or forged handle is
//! looked up and rejected, never dereferenced.
#![allow(non_camel_case_types)]

mod c_text;
pub mod credentials;
pub mod dispatcher;
pub mod failure;
pub mod global;
pub mod options;
pub mod registerer;
pub mod request_headers;
pub mod requests;
pub mod routing;
pub mod trace;
pub mod user_agent;

use crate::core::id_table::IdTable;
use crate::runtime::IdKind;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use crate::core::registerer::State;
use crate::error::Error;

/// Result of every fallible call. `SIPREG_OK` is 0; details of a failure are in
/// `sipreg_last_error()` on the calling thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sipreg_result {
    /// Success.
    SIPREG_OK = 0,
    /// A required pointer was NULL.
    SIPREG_ERR_NULL_ARGUMENT = 1,
    /// Bad URI, bad option value, bad UTF-8, a handle that was never issued, or
    /// a handle of another kind (a user agent passed as a registerer).
    SIPREG_ERR_INVALID_ARGUMENT = 2,
    /// A REGISTER is already in flight (SIP.js RequestPendingError).
    SIPREG_ERR_REQUEST_PENDING = 3,
    /// The registerer was disposed, or the handle was freed.
    SIPREG_ERR_TERMINATED = 4,
    /// Socket, connection, name resolution or TLS failure.
    SIPREG_ERR_TRANSPORT = 5,
    /// The output buffer is too small; the needed size was written to the size out-parameter.
    SIPREG_ERR_BUFFER_TOO_SMALL = 6,
    /// A bug inside the library (a caught panic); never a crash.
    SIPREG_ERR_INTERNAL = 7,
}

/// Registerer state (SIP.js RegistererState).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sipreg_state {
    /// Created; nothing sent yet.
    SIPREG_STATE_INITIAL = 0,
    /// The registrar holds our binding.
    SIPREG_STATE_REGISTERED = 1,
    /// Not registered (after unregister, a failure or an expiry).
    SIPREG_STATE_UNREGISTERED = 2,
    /// Disposed; final.
    SIPREG_STATE_TERMINATED = 3,
}

impl From<State> for sipreg_state {
    fn from(s: State) -> Self {
        match s {
            State::Initial => sipreg_state::SIPREG_STATE_INITIAL,
            State::Registered => sipreg_state::SIPREG_STATE_REGISTERED,
            State::Unregistered => sipreg_state::SIPREG_STATE_UNREGISTERED,
            State::Terminated => sipreg_state::SIPREG_STATE_TERMINATED,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `msg` as this thread's last error.
pub(crate) fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Pointer to this thread's last error text (valid until the next failing call on this thread).
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

fn code_of(e: &Error) -> sipreg_result {
    match e {
        Error::NullArgument(_) => sipreg_result::SIPREG_ERR_NULL_ARGUMENT,
        Error::InvalidArgument(_) => sipreg_result::SIPREG_ERR_INVALID_ARGUMENT,
        Error::RequestPending => sipreg_result::SIPREG_ERR_REQUEST_PENDING,
        Error::Terminated => sipreg_result::SIPREG_ERR_TERMINATED,
        Error::Transport(_) => sipreg_result::SIPREG_ERR_TRANSPORT,
        Error::BufferTooSmall(_) => sipreg_result::SIPREG_ERR_BUFFER_TOO_SMALL,
        Error::Internal(_) => sipreg_result::SIPREG_ERR_INTERNAL,
    }
}

/// Runs an entry point's body: maps errors to codes, catches panics.
pub(crate) fn guard(f: impl FnOnce() -> Result<(), Error>) -> sipreg_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => sipreg_result::SIPREG_OK,
        Ok(Err(e)) => {
            set_last_error(&e.to_string());
            code_of(&e)
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("internal error (caught panic): {what}"));
            sipreg_result::SIPREG_ERR_INTERNAL
        }
    }
}

/// Reads a required C string.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
pub(crate) unsafe fn req_str<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, Error> {
    opt_str(p, what)?.ok_or(Error::NullArgument(what))
}

/// Reads an optional C string (NULL = None).
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string.
pub(crate) unsafe fn opt_str<'a>(
    p: *const c_char,
    what: &'static str,
) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(p)
        .to_str()
        .map(Some)
        .map_err(|_| Error::invalid(format!("{what} is not valid UTF-8")))
}

/// Writes `value` to a non-NULL out pointer.
///
/// # Safety
/// `out` must be NULL or valid for writes.
pub(crate) unsafe fn put<T>(out: *mut T, value: T, what: &'static str) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::NullArgument(what));
    }
    out.write(value);
    Ok(())
}

/// Copies `s` with a NUL into `buf` of `len` bytes; `needed` (optional) gets `s.len() + 1`.
///
/// # Safety
/// `buf` must be NULL or valid for `len` bytes; `needed` NULL or valid for writes.
pub(crate) unsafe fn copy_out(
    s: &str,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> Result<(), Error> {
    let need = s.len() + 1;
    if !needed.is_null() {
        needed.write(need);
    }
    if buf.is_null() {
        return if len == 0 {
            Err(Error::BufferTooSmall(format!("{need} bytes needed")))
        } else {
            Err(Error::NullArgument("buf"))
        };
    }
    if len < need {
        return Err(Error::BufferTooSmall(format!(
            "{need} bytes needed, {len} given"
        )));
    }
    std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
    buf.add(s.len()).write(0);
    Ok(())
}

/// Live handles of one kind, keyed by the id C sees as a pointer.
pub(crate) struct Registry<T> {
    map: Mutex<Option<IdTable<Arc<T>>>>,
    /// The kind of the ids it holds (a handle of another kind is told apart).
    kind: IdKind,
}

impl<T> Registry<T> {
    pub(crate) const fn new(kind: IdKind) -> Self {
        Registry {
            map: Mutex::new(None),
            kind,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut IdTable<Arc<T>>) -> R) -> R {
        let mut g = self.map.lock().unwrap_or_else(|e| e.into_inner());
        f(g.get_or_insert_with(IdTable::default))
    }

    /// Stores `value` and returns its handle.
    pub(crate) fn insert(&self, id: u64, value: Arc<T>) -> *mut std::ffi::c_void {
        debug_assert_eq!(IdKind::of(id), Some(self.kind));
        self.with(|m| m.insert(id, value));
        id as usize as *mut std::ffi::c_void
    }

    /// Looks a handle up: NULL, freed and never-issued handles, and handles
    /// of another kind, are errors.
    pub(crate) fn get(
        &self,
        p: *const std::ffi::c_void,
        what: &'static str,
    ) -> Result<Arc<T>, Error> {
        if p.is_null() {
            return Err(Error::NullArgument(what));
        }
        let id = p as usize as u64;
        if let Some(v) = self.with(|m| m.get(&id).cloned()) {
            return Ok(v);
        }
        Err(self.stale(id, what))
    }

    /// Removes a handle, returning what it held.
    pub(crate) fn remove(
        &self,
        p: *const std::ffi::c_void,
        what: &'static str,
    ) -> Result<Arc<T>, Error> {
        if p.is_null() {
            return Err(Error::NullArgument(what));
        }
        let id = p as usize as u64;
        self.with(|m| m.remove(&id))
            .ok_or_else(|| self.stale(id, what))
    }

    /// Why `id` names nothing here: a handle of another kind, one freed
    /// (TERMINATED), or one this library never issued.
    fn stale(&self, id: u64, what: &'static str) -> Error {
        if !crate::runtime::was_issued(id) {
            return Error::invalid(format!("{what} is not a handle issued by this library"));
        }
        match IdKind::of(id) {
            Some(other) if other != self.kind => Error::invalid(format!(
                "{what} is a {} handle, not a {}",
                other.name(),
                self.kind.name()
            )),
            _ => Error::Terminated,
        }
    }
}

/// An application's `user_data` pointer, carried to the thread that calls its
/// callback. SAFETY of Send/Sync: every setter that takes a `user_data`
/// documents that the callback is called on another thread with it, and the
/// caller promises that is fine.
pub(crate) struct UserData(pub(crate) *mut std::ffi::c_void);
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer (a method, not field access, so closures capture the whole Send wrapper).
    pub(crate) fn ptr(&self) -> *mut std::ffi::c_void {
        self.0
    }
}
