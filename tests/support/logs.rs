//! The library's log lines, collected for a whole test binary at DEBUG
//! (tests filter them by their own port or AOR).

use std::ffi::{c_char, c_void, CStr};
use std::sync::{Mutex, Once};
use std::time::Duration;

use sipreg::ffi::global::{sipreg_log_level, sipreg_set_log_callback};
use sipreg::ffi::sipreg_result::SIPREG_OK;

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The lines logged at warning level or above (also in `LOG`).
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

unsafe extern "C" fn capture(_ud: *mut c_void, level: sipreg_log_level, msg: *const c_char) {
    let line = CStr::from_ptr(msg).to_string_lossy().into_owned();
    if matches!(
        level,
        sipreg_log_level::SIPREG_LOG_ERROR | sipreg_log_level::SIPREG_LOG_WARN
    ) {
        WARNINGS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.clone());
    }
    LOG.lock().unwrap_or_else(|e| e.into_inner()).push(line);
}

/// Every warning or error line so far that contains `containing`.
pub fn warning_lines(containing: &str) -> Vec<String> {
    WARNINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| l.contains(containing))
        .cloned()
        .collect()
}

/// Installs the collecting log callback once per binary.
pub fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let rc = sipreg_set_log_callback(
            Some(capture),
            std::ptr::null_mut(),
            sipreg_log_level::SIPREG_LOG_DEBUG as i32,
        );
        assert_eq!(rc, SIPREG_OK);
    });
}

/// Every line so far that contains `containing`.
pub fn log_lines(containing: &str) -> Vec<String> {
    LOG.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|l| l.contains(containing))
        .cloned()
        .collect()
}

/// Waits up to `within` for lines containing both strings.
pub fn wait_log(containing: &str, also: &str, within: Duration) -> Vec<String> {
    let found = || -> Vec<String> {
        log_lines(containing)
            .into_iter()
            .filter(|l| l.contains(also))
            .collect()
    };
    super::wait::until_some(within, || Some(found()).filter(|l| !l.is_empty())).unwrap_or_default()
}
