//! Registerer accessors for the routing facts of the last 2xx (Service-Route,
//! Path, GRUUs) and the public address the registrar saw. Each copies a
//! NUL-terminated string into a caller buffer (like `sipreg_registerer_flow`)
//! and reports the size needed, counting the NUL, through `needed`: a
//! buffer that is too small gives SIPREG_ERR_BUFFER_TOO_SMALL with the
//! buffer untouched.

use std::ffi::c_char;

use super::registerer::{read_snapshot, sipreg_registerer};
use super::{copy_out, guard, put, sipreg_result};
use crate::error::Error;
use crate::runtime::Snapshot;

/// Copies `pick(snapshot)` (or "" when absent) into `buf`.
unsafe fn copy_opt(
    r: *mut sipreg_registerer,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
    pick: impl FnOnce(&Snapshot) -> Option<String>,
) -> sipreg_result {
    guard(|| {
        let v = read_snapshot(r, pick)?.unwrap_or_default();
        copy_out(&v, buf, len, needed)
    })
}

/// Copies entry `index` of `pick(snapshot)`; out of range is INVALID_ARGUMENT.
unsafe fn copy_nth(
    r: *mut sipreg_registerer,
    index: usize,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
    what: &str,
    pick: impl FnOnce(&Snapshot) -> Vec<String>,
) -> sipreg_result {
    guard(|| {
        let list = read_snapshot(r, pick)?;
        let v = list
            .get(index)
            .ok_or_else(|| Error::invalid(format!("{what} index {index} out of range")))?;
        copy_out(v, buf, len, needed)
    })
}

/// Number of Service-Route URIs (RFC 3608) of the last 2xx (0 when not registered).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `out` NULL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_service_route_count(
    r: *mut sipreg_registerer,
    out: *mut usize,
) -> sipreg_result {
    guard(|| {
        let n = read_snapshot(r, |s| s.routing_facts().service_route.len())?;
        put(out, n, "out")
    })
}

/// Copies Service-Route URI number `index` (NUL-terminated) into `buf` of
/// `len` bytes; `needed` (may be NULL) receives the size required.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` NULL, or `buf` NULL with
/// `len` > 0); SIPREG_ERR_BUFFER_TOO_SMALL (it does not fit, `buf` NULL with
/// `len` 0 included: `*needed` says the size, counting the NUL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle, or an index out of range); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `buf` must be NULL or writable for `len` bytes; `needed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_service_route(
    r: *mut sipreg_registerer,
    index: usize,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    copy_nth(r, index, buf, len, needed, "service route", |s| {
        s.routing_facts().service_route.clone()
    })
}

/// Number of Path URIs (RFC 3327) of the last 2xx (0 when not registered).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `out` NULL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_path_count(
    r: *mut sipreg_registerer,
    out: *mut usize,
) -> sipreg_result {
    guard(|| {
        let n = read_snapshot(r, |s| s.routing_facts().path.len())?;
        put(out, n, "out")
    })
}

/// Copies Path URI number `index`; same rules and result codes as
/// `sipreg_registerer_service_route`.
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
pub unsafe extern "C" fn sipreg_registerer_path(
    r: *mut sipreg_registerer,
    index: usize,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    copy_nth(r, index, buf, len, needed, "path", |s| {
        s.routing_facts().path.clone()
    })
}

/// Copies the public GRUU (RFC 5627 `pub-gruu` of our contact in the last
/// 2xx) into `buf` of `len` bytes; "" when the registrar gave none. `needed`
/// (may be NULL) receives the size required.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` NULL, or `buf` NULL with
/// `len` > 0); SIPREG_ERR_BUFFER_TOO_SMALL (it does not fit, `buf` NULL with
/// `len` 0 included: `*needed` says the size, counting the NUL);
/// SIPREG_ERR_TERMINATED (the handle was freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a registerer handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `buf` must be NULL or writable for `len` bytes; `needed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_pub_gruu(
    r: *mut sipreg_registerer,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    copy_opt(r, buf, len, needed, |s| s.routing_facts().pub_gruu.clone())
}

/// Copies the temporary GRUU (`temp-gruu`) of the last 2xx; "" when none.
/// Same rules and result codes as `sipreg_registerer_pub_gruu`.
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
pub unsafe extern "C" fn sipreg_registerer_temp_gruu(
    r: *mut sipreg_registerer,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    copy_opt(r, buf, len, needed, |s| s.routing_facts().temp_gruu.clone())
}

/// Copies the address the registrar saw our last successful REGISTER come
/// from ("IP:port", IPv6 in brackets; from Via received/rport); "" when it
/// did not say. Same rules and result codes as `sipreg_registerer_pub_gruu`.
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
pub unsafe extern "C" fn sipreg_registerer_public_address(
    r: *mut sipreg_registerer,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    copy_opt(r, buf, len, needed, |s| {
        s.public_address.get().map(|a| a.to_string())
    })
}
