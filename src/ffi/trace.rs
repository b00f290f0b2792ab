//! Message trace through the C ABI: a per-user-agent callback that sees every
//! SIP message sent and received, credentials redacted.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::user_agent::{sipreg_user_agent, UAS};
use super::{guard, sipreg_result, UserData};
use crate::runtime::trace::{self, Direction, Record};

/// Direction of a traced message.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sipreg_trace_direction {
    /// Sent by the library (retransmissions included).
    SIPREG_TRACE_SENT = 0,
    /// Received from the network (also messages the library then drops).
    SIPREG_TRACE_RECEIVED = 1,
}

/// One SIP message as it went over the wire. Every pointer is valid only
/// during the callback; copy what you keep.
#[repr(C)]
pub struct sipreg_trace_record {
    /// Sent or received.
    pub direction: sipreg_trace_direction,
    /// "udp", "tcp", "tls", … (static string).
    pub transport: *const c_char,
    /// The library's end, "IP:port" ("[v6]:port"); "" if unknown.
    pub local: *const c_char,
    /// The peer's end, "IP:port" ("[v6]:port").
    pub remote: *const c_char,
    /// Wall-clock time, microseconds since the Unix epoch.
    pub timestamp_us: i64,
    /// The message text (NUL-terminated; invalid UTF-8 replaced by U+FFFD).
    /// Authorization and Proxy-Authorization values read "Digest <redacted>":
    /// the digest response never appears.
    pub message: *const c_char,
    /// Length of `message` in bytes, without the NUL.
    pub message_len: usize,
}

/// Receives one traced message. Called on the library's worker thread (or,
/// for a user agent with a dispatcher, inside `sipreg_dispatcher_run`; then
/// dropped when 4096 callbacks already wait), in wire order; it may call any sipreg function (including
/// `sipreg_user_agent_set_trace_callback` and `sipreg_user_agent_free` of its
/// own user agent). It must not block for long: it delays all traffic.
pub type sipreg_trace_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        ua: *mut sipreg_user_agent,
        record: *const sipreg_trace_record,
    ),
>;

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

/// Installs the message-trace callback of `ua` (NULL callback removes it).
/// Every message the user agent sends or receives then reaches `callback` with
/// direction, transport, both addresses, a timestamp and the text, credentials
/// redacted. When this returns (and when `sipreg_user_agent_free` returns), no
/// call of the previous callback is running or will start, so its `user_data`
/// may be released (the callback must therefore not wait for a lock held by a
/// thread that replaces it). Example:
/// `sipreg_user_agent_set_trace_callback(ua, on_trace, stderr_ctx);`
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle); SIPREG_ERR_TERMINATED
/// (the user agent was freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_trace_callback(
    ua: *mut sipreg_user_agent,
    callback: sipreg_trace_callback,
    user_data: *mut c_void,
) -> sipreg_result {
    guard(|| {
        let h = UAS.get(ua as *const c_void, "ua")?;
        let Some(cb) = callback else {
            trace::set_sink(h.id, None);
            return Ok(());
        };
        let ud = UserData(user_data);
        let handle = ua as usize;
        let sink: trace::Sink = Arc::new(move |r: &Record<'_>| {
            let local = nul_terminated(&r.local.map(|a| a.to_string()).unwrap_or_default());
            let remote = nul_terminated(&r.remote.to_string());
            let transport = nul_terminated(r.transport.as_str());
            let message = nul_terminated(r.message);
            let timestamp_us =
                r.at.duration_since(UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
                    .unwrap_or(0);
            let rec = sipreg_trace_record {
                direction: match r.direction {
                    Direction::Sent => sipreg_trace_direction::SIPREG_TRACE_SENT,
                    Direction::Received => sipreg_trace_direction::SIPREG_TRACE_RECEIVED,
                },
                transport: transport.as_ptr().cast(),
                local: local.as_ptr().cast(),
                remote: remote.as_ptr().cast(),
                timestamp_us,
                message: message.as_ptr().cast(),
                message_len: r.message.len(),
            };
            // SAFETY: a C function pointer supplied by the application; every
            // pointer in `rec` lives until the call returns.
            unsafe { cb(ud.ptr(), handle as *mut sipreg_user_agent, &rec) };
        });
        trace::set_sink(h.id, Some(sink));
        Ok(())
    })
}
