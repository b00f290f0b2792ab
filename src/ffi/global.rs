//! Library-wide functions: version, error text, logging.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::{guard, sipreg_result, UserData};
use crate::error::Error;
use crate::runtime::log::{self, Level};

/// Severity of a log message.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sipreg_log_level {
    /// Logging off (only meaningful as the `max_level` of `sipreg_set_log_callback`).
    SIPREG_LOG_OFF = 0,
    /// Failures.
    SIPREG_LOG_ERROR = 1,
    /// Handled surprises.
    SIPREG_LOG_WARN = 2,
    /// Requests, responses and state changes.
    SIPREG_LOG_INFO = 3,
    /// Retransmissions, dropped packets, connection details.
    SIPREG_LOG_DEBUG = 4,
}

/// Receives one log line (UTF-8, NUL-terminated, valid only during the call).
/// Called on the library's worker thread or on a thread that called into the
/// library. Log text never contains passwords or credentials headers.
pub type sipreg_log_callback = Option<
    unsafe extern "C" fn(user_data: *mut c_void, level: sipreg_log_level, message: *const c_char),
>;

static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library version, e.g. "0.1.0". Static string; never NULL; do not free.
#[no_mangle]
pub extern "C" fn sipreg_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// Text describing the last failed call on the calling thread ("" if none).
/// Valid until the next failing call on this thread; never NULL; do not free.
#[no_mangle]
pub extern "C" fn sipreg_last_error() -> *const c_char {
    super::last_error_ptr()
}

/// A static name for a result code (a `sipreg_result` value), e.g.
/// "SIPREG_ERR_TERMINATED"; "SIPREG_UNKNOWN" for any other number. Never NULL; do not free.
#[no_mangle]
pub extern "C" fn sipreg_result_str(result: i32) -> *const c_char {
    // Taken as an integer: a C caller may pass any value, and an out-of-range
    // Rust enum would be undefined behaviour.
    let s: &'static str = match result {
        0 => "SIPREG_OK\0",
        1 => "SIPREG_ERR_NULL_ARGUMENT\0",
        2 => "SIPREG_ERR_INVALID_ARGUMENT\0",
        3 => "SIPREG_ERR_REQUEST_PENDING\0",
        4 => "SIPREG_ERR_TERMINATED\0",
        5 => "SIPREG_ERR_TRANSPORT\0",
        6 => "SIPREG_ERR_BUFFER_TOO_SMALL\0",
        7 => "SIPREG_ERR_INTERNAL\0",
        _ => "SIPREG_UNKNOWN\0",
    };
    s.as_ptr().cast()
}

/// A static name for a registerer state (a `sipreg_state` value), as SIP.js
/// and the examples print it: "Initial", "Registered", "Unregistered",
/// "Terminated"; "Unknown" for any other number. Never NULL; do not free.
#[no_mangle]
pub extern "C" fn sipreg_state_str(state: i32) -> *const c_char {
    // Taken as an integer, like sipreg_result_str.
    let s: &'static std::ffi::CStr = match state {
        0 => c"Initial",
        1 => c"Registered",
        2 => c"Unregistered",
        3 => c"Terminated",
        _ => c"Unknown",
    };
    s.as_ptr()
}

/// Installs a process-wide log callback receiving messages up to `max_level`
/// (a `sipreg_log_level` value; NULL callback or `SIPREG_LOG_OFF` turns logging
/// off; any other number is SIPREG_ERR_INVALID_ARGUMENT). When this returns, no
/// call of the previous callback is still running on another thread, so its
/// `user_data` may be released. The callback must not block for long.
///
/// Returns SIPREG_OK; SIPREG_ERR_INVALID_ARGUMENT (`max_level` is not a
/// `sipreg_log_level`); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_set_log_callback(
    callback: sipreg_log_callback,
    user_data: *mut c_void,
    max_level: i32,
) -> sipreg_result {
    guard(|| {
        let level = match max_level {
            0 => None,
            1 => Some(Level::Error),
            2 => Some(Level::Warn),
            3 => Some(Level::Info),
            4 => Some(Level::Debug),
            other => {
                return Err(Error::invalid(format!(
                    "log level {other} is not a sipreg_log_level"
                )))
            }
        };
        match (callback, level) {
            (Some(cb), Some(level)) => {
                let ud = UserData(user_data);
                let sink: log::Sink = Arc::new(move |lvl: Level, msg: &str| {
                    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
                    let l = match lvl {
                        Level::Error => sipreg_log_level::SIPREG_LOG_ERROR,
                        Level::Warn => sipreg_log_level::SIPREG_LOG_WARN,
                        Level::Info => sipreg_log_level::SIPREG_LOG_INFO,
                        Level::Debug => sipreg_log_level::SIPREG_LOG_DEBUG,
                    };
                    // SAFETY: a C function pointer supplied by the application.
                    unsafe { cb(ud.ptr(), l, c.as_ptr()) };
                });
                log::set_sink(Some(sink), level);
            }
            _ => log::set_sink(None, Level::Error),
        }
        Ok(())
    })
}
