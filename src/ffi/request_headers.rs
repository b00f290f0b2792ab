//! Headers for one request (SIP.js `requestOptions.extraHeaders`):
//! `sipreg_register_with_headers` and `sipreg_unregister_with_headers`.

use std::ffi::c_char;

use super::registerer::{get, sipreg_registerer};
use super::{opt_str, sipreg_result};
use crate::core::options::check_request_headers;
use crate::error::Error;
use crate::runtime;

/// More headers than any request needs: a count past this is a caller's bug.
const MAX_REQUEST_HEADERS: usize = 256;

/// Copies and checks `n` header strings (`headers` may be NULL when `n` is 0).
///
/// # Safety
/// `headers` must be NULL or point to `n` pointers, each NULL or a
/// NUL-terminated string.
unsafe fn read_headers(headers: *const *const c_char, n: usize) -> Result<Vec<String>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if headers.is_null() {
        return Err(Error::NullArgument("headers"));
    }
    if n > MAX_REQUEST_HEADERS {
        return Err(Error::invalid(format!(
            "{n} headers for one request; at most {MAX_REQUEST_HEADERS}"
        )));
    }
    let mut texts = Vec::with_capacity(n);
    for i in 0..n {
        let text = opt_str(*headers.add(i), "header")?.ok_or(Error::NullArgument("header"))?;
        texts.push(text);
    }
    check_request_headers(&texts)
}

/// `sipreg_register` with `n` headers ("Name: value", no CR/LF) for this
/// REGISTER and its resend after a 401/407 (or 423) only: not on refreshes,
/// nor on a later `sipreg_register`. They are checked as the registerer's
/// extra headers are (a header the library writes itself, such as Contact or
/// Authorization, is refused). `headers` may be NULL when `n` is 0. Returns at
/// once; SIPREG_ERR_INVALID_ARGUMENT for a bad header (nothing is sent),
/// SIPREG_ERR_NULL_ARGUMENT for a NULL handle, array or element, else as
/// `sipreg_register`. The strings are copied.
///
/// Returns SIPREG_OK; SIPREG_ERR_INVALID_ARGUMENT (a bad or managed header, a
/// count past the limit: nothing is sent; or not a registerer handle);
/// SIPREG_ERR_NULL_ARGUMENT (`r` NULL, `headers` NULL with `n` > 0, or a NULL
/// element); SIPREG_ERR_REQUEST_PENDING (a REGISTER or un-REGISTER is in
/// flight); SIPREG_ERR_TERMINATED (disposed, or the handle was freed);
/// SIPREG_ERR_INTERNAL (the worker thread is unreachable).
///
/// # Safety
/// `headers` must be NULL or point to `n` pointers, each NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_register_with_headers(
    r: *mut sipreg_registerer,
    headers: *const *const c_char,
    n: usize,
) -> sipreg_result {
    super::guard(|| {
        let h = get(r)?;
        let headers = read_headers(headers, n)?;
        runtime::register(h.id, &h.shared, headers)
    })
}

/// `sipreg_unregister` with `n` headers for this un-REGISTER and its resend
/// after a challenge only, checked and copied as in `sipreg_register_with_headers`.
///
/// Returns SIPREG_OK; SIPREG_ERR_INVALID_ARGUMENT (a bad or managed header, a
/// count past the limit: nothing is sent; or not a registerer handle);
/// SIPREG_ERR_NULL_ARGUMENT (`r` NULL, `headers` NULL with `n` > 0, or a NULL
/// element); SIPREG_ERR_REQUEST_PENDING (a REGISTER or un-REGISTER is in
/// flight); SIPREG_ERR_TERMINATED (disposed, or the handle was freed);
/// SIPREG_ERR_INTERNAL (the worker thread is unreachable).
///
/// # Safety
/// `headers` must be NULL or point to `n` pointers, each NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_unregister_with_headers(
    r: *mut sipreg_registerer,
    all: bool,
    headers: *const *const c_char,
    n: usize,
) -> sipreg_result {
    super::guard(|| {
        let h = get(r)?;
        let headers = read_headers(headers, n)?;
        runtime::unregister(h.id, &h.shared, all, headers)
    })
}
