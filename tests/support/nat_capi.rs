//! C ABI calls of issue 10 (keep-alive, contact rewrite, routing facts) on
//! the test wrappers of `capi.rs`.

use std::ffi::{c_char, CStr};

use sipreg::ffi::registerer::sipreg_registerer;
use sipreg::ffi::routing::*;
use sipreg::ffi::sipreg_result;
use sipreg::ffi::user_agent::*;

use super::capi::{last_error, Reg, Ua};

fn ok(rc: sipreg_result, what: &str) {
    assert_eq!(rc, sipreg_result::SIPREG_OK, "{what}: {}", last_error());
}

type Getter =
    unsafe extern "C" fn(*mut sipreg_registerer, *mut c_char, usize, *mut usize) -> sipreg_result;
type Nth = unsafe extern "C" fn(
    *mut sipreg_registerer,
    usize,
    *mut c_char,
    usize,
    *mut usize,
) -> sipreg_result;
type Count = unsafe extern "C" fn(*mut sipreg_registerer, *mut usize) -> sipreg_result;

/// Asks for the size first (NULL buffer), then reads into exactly that many bytes.
fn string(r: &Reg, f: Getter, what: &str) -> Option<String> {
    let mut need = 0usize;
    let rc = unsafe { f(r.ptr, std::ptr::null_mut(), 0, &mut need) };
    assert_eq!(
        rc,
        sipreg_result::SIPREG_ERR_BUFFER_TOO_SMALL,
        "{what} size"
    );
    assert!(need >= 1, "{what}: the NUL counts");
    let mut buf = vec![0 as c_char; need];
    ok(
        unsafe { f(r.ptr, buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()) },
        what,
    );
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    assert_eq!(s.len() + 1, need, "{what}: needed is exact");
    (!s.is_empty()).then_some(s)
}

fn list(r: &Reg, count: Count, nth: Nth, what: &str) -> Vec<String> {
    let mut n = 0;
    ok(unsafe { count(r.ptr, &mut n) }, what);
    (0..n)
        .map(|i| {
            let mut need = 0usize;
            let rc = unsafe { nth(r.ptr, i, std::ptr::null_mut(), 0, &mut need) };
            assert_eq!(
                rc,
                sipreg_result::SIPREG_ERR_BUFFER_TOO_SMALL,
                "{what} size"
            );
            let mut buf = vec![0 as c_char; need];
            ok(
                unsafe { nth(r.ptr, i, buf.as_mut_ptr(), buf.len(), std::ptr::null_mut()) },
                what,
            );
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

pub fn public_address(r: &Reg) -> Option<String> {
    string(r, sipreg_registerer_public_address, "public_address")
}
pub fn pub_gruu(r: &Reg) -> Option<String> {
    string(r, sipreg_registerer_pub_gruu, "pub_gruu")
}
pub fn temp_gruu(r: &Reg) -> Option<String> {
    string(r, sipreg_registerer_temp_gruu, "temp_gruu")
}
pub fn service_route(r: &Reg) -> Vec<String> {
    list(
        r,
        sipreg_registerer_service_route_count,
        sipreg_registerer_service_route,
        "service_route",
    )
}
pub fn path(r: &Reg) -> Vec<String> {
    list(
        r,
        sipreg_registerer_path_count,
        sipreg_registerer_path,
        "path",
    )
}

pub fn keepalive(ua: &Ua, secs: u32) {
    ok(sipreg_user_agent_set_keepalive(ua.0, secs), "keepalive");
}
pub fn contact_rewrite(ua: &Ua, on: bool) {
    ok(
        sipreg_user_agent_set_contact_rewrite(ua.0, on),
        "contact_rewrite",
    );
}

/// Calls `sipreg_registerer_pub_gruu` with a buffer of `len` bytes: the
/// result, the error text and the size reported as needed.
pub fn pub_gruu_into(r: &Reg, len: usize) -> (sipreg_result, String, usize) {
    let mut buf = vec![b'x' as c_char; len.max(1)];
    let mut need = 0usize;
    let rc = unsafe { sipreg_registerer_pub_gruu(r.ptr, buf.as_mut_ptr(), len, &mut need) };
    (rc, last_error(), need)
}
