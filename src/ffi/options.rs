//! `sipreg_registerer_options`: a builder for SIP.js `RegistererOptions`.
//!
//! Each setter checks its own value at once with the core's setter or
//! validator (every rule lives in `core::options`; this layer only turns C
//! arguments into Rust values); `sipreg_registerer_new` checks the
//! combination. Options are copied into the registerer, so one builder can
//! create many registerers and be freed at any time after.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{guard, opt_str, put, req_str, sipreg_result, Registry};
use crate::core::options::{check_no_ctl, RegistererOptions};
use crate::error::Error;

/// Opaque options builder. Create with `sipreg_registerer_options_new`, release
/// with `sipreg_registerer_options_free`. Safe to use from any thread.
pub struct sipreg_registerer_options {
    _private: [u8; 0],
}

pub(crate) struct OptionsHandle(Mutex<RegistererOptions>);

impl OptionsHandle {
    pub(crate) fn lock(&self) -> MutexGuard<'_, RegistererOptions> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) static OPTIONS: Registry<OptionsHandle> = Registry::new(crate::runtime::IdKind::Options);

fn with_opts(
    o: *mut sipreg_registerer_options,
    f: impl FnOnce(&mut RegistererOptions) -> Result<(), Error>,
) -> sipreg_result {
    guard(|| {
        let h = OPTIONS.get(o as *const c_void, "options")?;
        let mut g = h.lock();
        f(&mut g)
    })
}

/// A C `double` count of seconds as a `Duration`. NaN and negative values
/// are refused here (no `Duration` holds them); values too large for one
/// saturate, so the core's range check is the one that names the range.
pub(super) fn seconds(what: &str, s: f64) -> Result<Duration, Error> {
    if s.is_nan() || s < 0.0 {
        return Err(Error::invalid(format!(
            "{what} must be a number of seconds, at least 0 (not {s})"
        )));
    }
    Ok(Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
}

/// Creates an options builder holding the SIP.js defaults (expires 600,
/// refresh_frequency 99, automatic retry on). Free it with `sipreg_registerer_options_free`.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`out` NULL);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_new(
    out: *mut *mut sipreg_registerer_options,
) -> sipreg_result {
    guard(|| {
        if out.is_null() {
            return Err(Error::NullArgument("out"));
        }
        let id = crate::runtime::next_id(crate::runtime::IdKind::Options);
        let h = OPTIONS.insert(
            id,
            Arc::new(OptionsHandle(Mutex::new(RegistererOptions::default()))),
        );
        out.write(h.cast());
        Ok(())
    })
}

/// Releases an options builder. NULL is ignored; a second free is reported, not a crash.
///
/// Returns SIPREG_OK (also for NULL); SIPREG_ERR_TERMINATED (freed twice);
/// SIPREG_ERR_INVALID_ARGUMENT (not an options handle); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_free(
    o: *mut sipreg_registerer_options,
) -> sipreg_result {
    guard(|| {
        if o.is_null() {
            return Ok(());
        }
        OPTIONS.remove(o as *const c_void, "options").map(drop)
    })
}

/// Requested expiry in seconds (SIP.js `expires`); 0 is invalid.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (0, or not an options handle);
/// SIPREG_ERR_TERMINATED (the options were freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_set_expires(
    o: *mut sipreg_registerer_options,
    seconds: u32,
) -> sipreg_result {
    with_opts(o, |opts| opts.set_expires(seconds))
}

/// Refresh point in percent of the granted expiry, 50..=99 (SIP.js `refreshFrequency`,
/// default 99).
///
/// The refresh is sent at `percent` % of the expiry the registrar granted, but
/// always at least min(grant / 2, 5 s) before that expiry, and then earlier by a
/// stable per-registerer fraction of up to 10 % (derived from the Call-ID), so
/// many registerers granted at once do not refresh in lockstep. A 600 s grant at
/// 99 % refreshes between 534.6 s and 594 s; a 30 s grant between 22.5 s and 25 s.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (outside 50..=99, or not an options handle);
/// SIPREG_ERR_TERMINATED (the options were freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_set_refresh_frequency(
    o: *mut sipreg_registerer_options,
    percent: u32,
) -> sipreg_result {
    with_opts(o, |opts| opts.set_refresh_frequency(percent))
}

/// Sets or clears (NULL) one optional string option after checking it.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string.
unsafe fn set_string(
    o: *mut sipreg_registerer_options,
    value: *const c_char,
    what: &'static str,
    field: fn(&mut RegistererOptions) -> &mut Option<String>,
) -> sipreg_result {
    with_opts(o, |opts| {
        let v = opt_str(value, what)?;
        if let Some(v) = v {
            check_no_ctl(what, v)?;
        }
        *field(opts) = v.map(str::to_owned);
        Ok(())
    })
}

/// Request-URI of the REGISTERs, e.g. "sip:127.0.0.1:5060;transport=tcp" (NULL: the AOR's domain).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a SIP URI, control characters or bad UTF-8,
/// or not an options handle); SIPREG_ERR_TERMINATED (the options were freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_set_registrar(
    o: *mut sipreg_registerer_options,
    value: *const c_char,
) -> sipreg_result {
    set_string(o, value, "registrar", |opts| &mut opts.registrar)
}

/// `+sip.instance` UUID (with or without "urn:uuid:"; NULL removes it).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a UUID, control characters or bad UTF-8, or
/// not an options handle); SIPREG_ERR_TERMINATED (the options were freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_set_instance_id(
    o: *mut sipreg_registerer_options,
    value: *const c_char,
) -> sipreg_result {
    set_string(o, value, "instance_id", |opts| &mut opts.instance_id)
}

/// Fixed Call-ID (NULL: random).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a valid Call-ID, control characters or bad
/// UTF-8, or not an options handle); SIPREG_ERR_TERMINATED (the options were
/// freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_set_call_id(
    o: *mut sipreg_registerer_options,
    value: *const c_char,
) -> sipreg_result {
    set_string(o, value, "call_id", |opts| &mut opts.call_id)
}

/// From display name (NULL: none).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (control characters or bad UTF-8, or not an
/// options handle); SIPREG_ERR_TERMINATED (the options were freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_set_from_display_name(
    o: *mut sipreg_registerer_options,
    value: *const c_char,
) -> sipreg_result {
    set_string(o, value, "from display name", |opts| {
        &mut opts.from_display_name
    })
}

/// To display name (NULL: none).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (control characters or bad UTF-8, or not an
/// options handle); SIPREG_ERR_TERMINATED (the options were freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_set_to_display_name(
    o: *mut sipreg_registerer_options,
    value: *const c_char,
) -> sipreg_result {
    set_string(o, value, "to display name", |opts| {
        &mut opts.to_display_name
    })
}

/// To URI (NULL: the AOR).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a SIP URI, control characters or bad UTF-8,
/// or not an options handle); SIPREG_ERR_TERMINATED (the options were freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_set_to_uri(
    o: *mut sipreg_registerer_options,
    value: *const c_char,
) -> sipreg_result {
    set_string(o, value, "to_uri", |opts| &mut opts.to_uri)
}

/// Fixed From tag (NULL: random).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a token, control characters or bad UTF-8,
/// or not an options handle); SIPREG_ERR_TERMINATED (the options were freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_set_from_tag(
    o: *mut sipreg_registerer_options,
    value: *const c_char,
) -> sipreg_result {
    set_string(o, value, "from_tag", |opts| &mut opts.from_tag)
}

/// Adds a "Name: value" header to every REGISTER (including un-REGISTERs).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL, or `header` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not "Name: value", a header the library writes
/// itself, control characters or bad UTF-8, or not an options handle);
/// SIPREG_ERR_TERMINATED (the options were freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `header` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_add_extra_header(
    o: *mut sipreg_registerer_options,
    header: *const c_char,
) -> sipreg_result {
    with_opts(o, |opts| opts.add_extra_header(req_str(header, "header")?))
}

/// Adds a parameter ("name" or "name=value") to our Contact.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL, or `param` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not "name" or "name=value", control characters
/// or bad UTF-8, or not an options handle); SIPREG_ERR_TERMINATED (the options
/// were freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `param` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_add_extra_contact_param(
    o: *mut sipreg_registerer_options,
    param: *const c_char,
) -> sipreg_result {
    with_opts(o, |opts| {
        opts.add_extra_contact_param(req_str(param, "param")?)
    })
}

/// RFC 5626 reg-id (1 or more; 0 removes it). Needs an instance id.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (out of range, or not an options handle);
/// SIPREG_ERR_TERMINATED (the options were freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_set_reg_id(
    o: *mut sipreg_registerer_options,
    reg_id: u32,
) -> sipreg_result {
    with_opts(o, |opts| {
        opts.reg_id = (reg_id != 0).then_some(reg_id);
        Ok(())
    })
}

/// Sends `Supported: path, gruu` (RFC 3327, RFC 5627) so the registrar
/// returns Path and GRUUs (default off).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not an options handle); SIPREG_ERR_TERMINATED
/// (the options were freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_set_path_gruu(
    o: *mut sipreg_registerer_options,
    enabled: bool,
) -> sipreg_result {
    with_opts(o, |opts| {
        opts.path_gruu = enabled;
        Ok(())
    })
}

/// Initial CSeq (like SIP.js, the first REGISTER carries this plus one).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (2^31 or more, or not an options handle);
/// SIPREG_ERR_TERMINATED (the options were freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_set_cseq(
    o: *mut sipreg_registerer_options,
    cseq: u32,
) -> sipreg_result {
    with_opts(o, |opts| opts.set_cseq(cseq))
}

/// Turns automatic recovery after transient failures on (default) or off
/// (pure SIP.js behaviour: a failed REGISTER stays failed). Either way a
/// registration whose connection or flow is lost is re-REGISTERed on a new
/// one: at once the first time, after the backoff (`retry_base * 2^n`,
/// capped by `retry_max`) when flows keep dying within `retry_base` of
/// their 2xx; new connections per target are limited to 16 at once, then 4
/// per second (docs/recovery.md).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not an options handle); SIPREG_ERR_TERMINATED
/// (the options were freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_set_retry(
    o: *mut sipreg_registerer_options,
    enabled: bool,
) -> sipreg_result {
    with_opts(o, |opts| {
        opts.retry.enabled = enabled;
        Ok(())
    })
}

/// Backoff base time in seconds (default 30); also how long a flow must
/// live after its 2xx for its loss not to count as a failure.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (negative, NaN, infinite or over 86400 s, or not
/// an options handle); SIPREG_ERR_TERMINATED (the options were freed);
/// SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_set_retry_base(
    o: *mut sipreg_registerer_options,
    seconds: f64,
) -> sipreg_result {
    with_opts(o, |opts| {
        opts.set_retry_base(self::seconds("retry_base", seconds)?)
    })
}

/// Backoff cap in seconds (default 1800).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (negative, NaN, infinite or over 86400 s, or not
/// an options handle); SIPREG_ERR_TERMINATED (the options were freed);
/// SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_set_retry_max(
    o: *mut sipreg_registerer_options,
    seconds: f64,
) -> sipreg_result {
    with_opts(o, |opts| {
        opts.set_retry_max(self::seconds("retry_max", seconds)?)
    })
}

/// Cap on a server's Retry-After in seconds (default 3600).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (negative, NaN, infinite or over 86400 s, or not
/// an options handle); SIPREG_ERR_TERMINATED (the options were freed);
/// SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_registerer_options_set_retry_after_max(
    o: *mut sipreg_registerer_options,
    seconds: f64,
) -> sipreg_result {
    with_opts(o, |opts| {
        opts.set_retry_after_max(self::seconds("retry_after_max", seconds)?)
    })
}

/// Reads back the expiry (tests, bindings).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`o` or `out` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not an options handle); SIPREG_ERR_TERMINATED
/// (the options were freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_options_get_expires(
    o: *mut sipreg_registerer_options,
    out: *mut u32,
) -> sipreg_result {
    with_opts(o, |opts| put(out, opts.expires, "out"))
}
