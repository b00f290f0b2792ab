//! Why a registration failed, through the C ABI: `sipreg_failure`, its
//! names, and the registerer's accessors for the last attempt's failure.

use std::ffi::{c_char, CStr};

use super::registerer::{read_snapshot_const, sipreg_registerer};
use super::{copy_out, guard, put, sipreg_result};
use crate::core::failure::{Failure, FailureKind};

/// The class of a failed registration attempt (C `sipreg_failure`): what an
/// application tells its user ("wrong password" is not "server unreachable").
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sipreg_failure {
    /// No failure: no attempt ended yet, or the last one succeeded.
    SIPREG_FAILURE_NONE = 0,
    /// Our credentials were refused (401/407, or 403, after we answered a challenge).
    SIPREG_FAILURE_AUTH_REJECTED = 1,
    /// Challenged for a realm (or algorithm) we have no credentials for.
    SIPREG_FAILURE_NO_CREDENTIALS = 2,
    /// Refused: the challenge offered only a weaker digest than this realm offered before.
    SIPREG_FAILURE_AUTH_DOWNGRADE = 3,
    /// Any other final 3xx-6xx from the registrar (and a 2xx without our contact).
    SIPREG_FAILURE_REJECTED = 4,
    /// A 423 loop, or a 423 without a usable Min-Expires.
    SIPREG_FAILURE_INTERVAL_TOO_BRIEF = 5,
    /// Timer F: no final response (the status is a synthesised 408).
    SIPREG_FAILURE_TIMEOUT = 6,
    /// Connection refused or reset, ICMP unreachable, connection lost (synthesised 503).
    SIPREG_FAILURE_TRANSPORT = 7,
    /// TLS handshake failed, or the certificate is untrusted, expired or for
    /// another name (synthesised 503).
    SIPREG_FAILURE_TLS = 8,
    /// Name resolution failed: NXDOMAIN, SERVFAIL, no usable records, resolver
    /// timeout (synthesised 503).
    SIPREG_FAILURE_DNS = 9,
    /// The RFC 5626 keep-alive found the flow dead (the registerer then
    /// re-registers on a new flow; no status).
    SIPREG_FAILURE_FLOW = 10,
}

impl From<FailureKind> for sipreg_failure {
    fn from(k: FailureKind) -> Self {
        match k {
            FailureKind::AuthRejected => sipreg_failure::SIPREG_FAILURE_AUTH_REJECTED,
            FailureKind::NoCredentials => sipreg_failure::SIPREG_FAILURE_NO_CREDENTIALS,
            FailureKind::AuthDowngrade => sipreg_failure::SIPREG_FAILURE_AUTH_DOWNGRADE,
            FailureKind::Rejected => sipreg_failure::SIPREG_FAILURE_REJECTED,
            FailureKind::IntervalTooBrief => sipreg_failure::SIPREG_FAILURE_INTERVAL_TOO_BRIEF,
            FailureKind::Timeout => sipreg_failure::SIPREG_FAILURE_TIMEOUT,
            FailureKind::Transport => sipreg_failure::SIPREG_FAILURE_TRANSPORT,
            FailureKind::Tls => sipreg_failure::SIPREG_FAILURE_TLS,
            FailureKind::Dns => sipreg_failure::SIPREG_FAILURE_DNS,
            FailureKind::Flow => sipreg_failure::SIPREG_FAILURE_FLOW,
        }
    }
}

/// The C value of an optional failure.
pub(crate) fn kind_of(f: Option<&Failure>) -> sipreg_failure {
    f.map_or(sipreg_failure::SIPREG_FAILURE_NONE, |f| f.kind.into())
}

/// A static lower-case name for a `sipreg_failure` value: "none",
/// "auth_rejected", "no_credentials", "auth_downgrade", "rejected",
/// "interval_too_brief", "timeout", "transport", "tls", "dns", "flow";
/// "unknown" for any other number. Never NULL; do not free.
#[no_mangle]
pub extern "C" fn sipreg_failure_str(failure: i32) -> *const c_char {
    // Taken as an integer: an out-of-range Rust enum would be undefined behaviour.
    let s: &'static CStr = match failure {
        0 => c"none",
        1 => c"auth_rejected",
        2 => c"no_credentials",
        3 => c"auth_downgrade",
        4 => c"rejected",
        5 => c"interval_too_brief",
        6 => c"timeout",
        7 => c"transport",
        8 => c"tls",
        9 => c"dns",
        10 => c"flow",
        _ => c"unknown",
    };
    s.as_ptr()
}

/// Why the last attempt failed: `*kind` (SIPREG_FAILURE_NONE before any
/// attempt ended and after a success) and one line of detail for a person
/// (e.g. `credentials for realm "example.com" were rejected`; "" for NONE)
/// copied into `detail` of `len` bytes. `needed` (may be NULL) receives the
/// size the detail needs, counting the NUL. `detail` may be NULL with `len`
/// 0 to ask only for the kind and the size. The failure is also on every
/// `sipreg_event` (`failure`) and announced by a SIPREG_EVENT_FAILED event.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `kind` NULL, or
/// `detail` NULL with `len` > 0); SIPREG_ERR_BUFFER_TOO_SMALL (the detail
/// does not fit; `*kind` and `*needed` are set, `detail` is untouched);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `kind` and `needed` must be NULL or writable; `detail` NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_failure(
    r: *const sipreg_registerer,
    kind: *mut sipreg_failure,
    detail: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    guard(|| {
        let f = read_snapshot_const(r, |s| s.failure.clone())?;
        put(kind, kind_of(f.as_deref()), "kind")?;
        let text = f.as_deref().map_or("", |f| f.detail.as_str());
        if detail.is_null() && len == 0 {
            if !needed.is_null() {
                needed.write(text.len() + 1);
            }
            return Ok(());
        }
        copy_out(text, detail, len, needed)
    })
}

/// The response that said the last failure, if one did: `*status` (0 when
/// none: FLOW failures, and before any failure) and its reason phrase copied
/// into `reason` of `len` bytes ("Unauthorized"; "Request Timeout" and
/// "Service Unavailable" for the synthesised 408 and 503). `needed` (may be
/// NULL) receives the size required, counting the NUL; `reason` may be NULL
/// with `len` 0 to ask only for the status and the size.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `status` NULL, or
/// `reason` NULL with `len` > 0); SIPREG_ERR_BUFFER_TOO_SMALL (the reason
/// does not fit; `*status` and `*needed` are set); SIPREG_ERR_TERMINATED
/// (freed handle); SIPREG_ERR_INVALID_ARGUMENT (not a registerer handle);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `status` and `needed` must be NULL or writable; `reason` NULL or writable for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_failure_response(
    r: *const sipreg_registerer,
    status: *mut u16,
    reason: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    guard(|| {
        let f = read_snapshot_const(r, |s| s.failure.clone())?;
        let (code, text) = match f.as_deref() {
            Some(Failure {
                status: Some(s),
                reason,
                ..
            }) => (*s, reason.as_str()),
            _ => (0, ""),
        };
        put(status, code, "status")?;
        if reason.is_null() && len == 0 {
            if !needed.is_null() {
                needed.write(text.len() + 1);
            }
            return Ok(());
        }
        copy_out(text, reason, len, needed)
    })
}
