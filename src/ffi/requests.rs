//! Requests reaching the user agent's contact, through the C ABI: the
//! request callback, the application's answers (`sipreg_user_agent_respond`)
//! and messages (`sipreg_user_agent_send`) on a flow, the settings that
//! shape what the contact accepts (Allow, OPTIONS, its user part) and the
//! WebSocket Origin, and small readers of a request's headers and body.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::registerer::{read_snapshot, sipreg_registerer};
use super::user_agent::{sipreg_user_agent, update, UAS};
use super::{copy_out, guard, opt_str, put, req_str, sipreg_result, UserData};
use crate::core::message::{body_range, classify, Kind, Reply, Request, Response};
use crate::error::Error;
use crate::runtime::{self, requests};

/// One request that reached the user agent's contact. Every pointer is valid
/// only during the callback: copy what you keep (`message` and `flow_id` are
/// what `sipreg_user_agent_respond` needs later).
#[repr(C)]
pub struct sipreg_incoming {
    /// The whole request as received (NUL-terminated for convenience; a
    /// body may hold NUL bytes, so `length` is what counts). Its top Via
    /// carries `received` (and `rport`) when the request came from another
    /// address than that Via names, as RFC 3261 18.2.1 has the receiving
    /// transport note it: that is where an answer over UDP goes.
    pub message: *const c_char,
    /// Length of `message` in bytes, without the NUL.
    pub length: usize,
    /// The method, e.g. "MESSAGE" (NUL-terminated).
    pub method: *const c_char,
    /// The flow it came over (never 0): for `sipreg_user_agent_respond` and
    /// `sipreg_user_agent_send`.
    pub flow_id: u64,
    /// That flow as "proto:local -> remote", as `sipreg_registerer_flow`
    /// writes it (remote: where this request came from).
    pub flow: *const c_char,
}

/// Receives each request for the user agent's contact that the library does
/// not answer itself (every one but OPTIONS, unless
/// `sipreg_user_agent_set_answer_options(ua, false)`), ACKs and CANCELs
/// included, and the responses to requests sent with `sipreg_user_agent_send`
/// (`message` starts with "SIP/2.0"; `method` is its CSeq method). Called on
/// the library's worker thread, in arrival order (for a user agent with a
/// dispatcher: inside `sipreg_dispatcher_run`; a request its full queue
/// cannot take is refused with 503); it may call any sipreg function,
/// `sipreg_user_agent_respond` first of all (now or later, from any thread).
/// A retransmission of a request is not handed up again: the library absorbs
/// it until the answer, then repeats the answer (an INVITE gets 100 Trying
/// from the library at once, and its retransmissions that 100 until then,
/// RFC 3261 17.2.1). It must not block for long:
/// on the worker it delays all traffic.
pub type sipreg_request_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        ua: *mut sipreg_user_agent,
        request: *const sipreg_incoming,
    ),
>;

fn nul_terminated(bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(0);
    v
}

/// Installs the request listener of `ua` (a NULL callback removes it).
/// Without a listener every request but OPTIONS gets 405 Method Not Allowed
/// with the user agent's Allow (an ACK gets nothing, a CANCEL 481 Call/Transaction
/// Does Not Exist); with one, they reach
/// `callback`. When this returns (and when `sipreg_user_agent_free`
/// returns), no call of the previous callback is running or will start, so
/// its `user_data` may be released (the callback must therefore not wait
/// for a lock held by a thread that replaces it).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle);
/// SIPREG_ERR_TERMINATED (the user agent was freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_request_callback(
    ua: *mut sipreg_user_agent,
    callback: sipreg_request_callback,
    user_data: *mut c_void,
) -> sipreg_result {
    let rc = guard(|| {
        let h = UAS.get(ua as *const c_void, "ua")?;
        let Some(cb) = callback else {
            return Ok(());
        };
        let ud = UserData(user_data);
        let handle = ua as usize;
        let sink: requests::Sink = Arc::new(move |r: &requests::Incoming| {
            let message = nul_terminated(&r.bytes);
            let method = CString::new(r.method.as_str()).unwrap_or_default();
            let flow = CString::new(r.flow_text.as_str()).unwrap_or_default();
            let rec = sipreg_incoming {
                message: message.as_ptr().cast(),
                length: r.bytes.len(),
                method: method.as_ptr(),
                flow_id: r.flow.0,
                flow: flow.as_ptr(),
            };
            // SAFETY: a C function pointer supplied by the application; every
            // pointer in `rec` lives until the call returns.
            unsafe { cb(ud.ptr(), handle as *mut sipreg_user_agent, &rec) };
        });
        requests::set_sink(h.id, Some(sink));
        Ok(())
    });
    if rc != sipreg_result::SIPREG_OK {
        return rc;
    }
    let on = callback.is_some();
    // The endpoint hands requests up only while it knows of a listener;
    // removed: first the endpoint stops, then the sink goes (waiting for a
    // running call), and a request caught between gets 405.
    let rc = update(ua, |c| {
        c.listener = on;
        Ok(())
    });
    if !on {
        if let Ok(h) = UAS.get(ua as *const c_void, "ua") {
            requests::set_sink(h.id, None);
        }
    }
    rc
}

/// Sets the methods the contact accepts, as a comma-separated list (e.g.
/// "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE"): the REGISTER's Allow
/// header, and the Allow of the library's OPTIONS answers and 405s. Default
/// "OPTIONS" (what the library answers itself). Applies to registerers
/// created afterwards and to answers at once.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` or `methods` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a comma-separated list of method names,
/// bad UTF-8, or not a user agent handle); SIPREG_ERR_TERMINATED (the user
/// agent was freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `methods` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_allow(
    ua: *mut sipreg_user_agent,
    methods: *const c_char,
) -> sipreg_result {
    update(ua, |c| c.set_allow(req_str(methods, "methods")?))
}

/// Whether the library answers OPTIONS itself (true, the default: 200 with
/// Allow and Supported, at once, which keeps registrar pings answered) or
/// hands them to the request callback (false; without a callback they are
/// still answered). Applies at once.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle);
/// SIPREG_ERR_TERMINATED (the user agent was freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_answer_options(
    ua: *mut sipreg_user_agent,
    answer: bool,
) -> sipreg_result {
    update(ua, |c| {
        c.answer_options = answer;
        Ok(())
    })
}

/// Sets the user part of the Contact (SIP.js `contactName`; NULL: the AOR's
/// user). User agents sharing a socket have distinct contact users: one
/// that would clash gets a suffix ("-2"). Applies to registerers created
/// afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a URI user part, bad UTF-8, or not a
/// user agent handle); SIPREG_ERR_TERMINATED (the user agent was freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `user` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_contact_user(
    ua: *mut sipreg_user_agent,
    user: *const c_char,
) -> sipreg_result {
    update(ua, |c| c.set_contact_user(opt_str(user, "user")?))
}

/// Sets the `Origin` header of WebSocket upgrades ("ws", "wss"): an origin
/// such as "https://app.example.com", or NULL for the default, "http://"
/// (ws) or "https://" (wss) and the registrar's (or proxy's) host. Servers
/// like OpenSIPS refuse an upgrade without one. Applies to connections
/// opened afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not "scheme://host[:port]" or "null", bad
/// UTF-8, or not a user agent handle); SIPREG_ERR_TERMINATED (the user agent
/// was freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `origin` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_ws_origin(
    ua: *mut sipreg_user_agent,
    origin: *const c_char,
) -> sipreg_result {
    update(ua, |c| c.set_ws_origin(opt_str(origin, "origin")?))
}

/// Answers `request` (the `message` and `length` of a `sipreg_incoming`,
/// during the callback or any time after it, from any thread) that came
/// over flow `flow_id`: the response copies Via, From, To (with a tag of
/// ours unless the request's To has one or `extra_headers` brings a To),
/// Call-ID and CSeq (RFC 3261 8.2.6), adds `extra_headers` ("Name:
/// value\r\n..." lines, or NULL) and `body` (`body_len` bytes, NULL when
/// 0; say its Content-Type in `extra_headers`), and is sent per RFC 3261
/// 18.2.2: on a stream back on the connection, on UDP to the top Via's
/// received/rport. `reason` NULL or "" is the standard phrase. A
/// retransmission of the request gets this answer again. After a final
/// answer (200..=699) one with another status is not sent (RFC 3261 17.2:
/// the transaction discards it; the same status again is, as a 2xx
/// retransmission). Sending happens on the worker thread; a failure there
/// (a flow closed meanwhile, an answer discarded) is logged.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` or `request` NULL, or
/// `body` NULL with a length); SIPREG_ERR_INVALID_ARGUMENT (not an
/// answerable SIP request, a status outside 100..=699, a reason or header
/// with control characters, an extra header the response copies, a body over
/// 60 000 bytes, a `flow_id` that was never a flow, bad UTF-8, or not a user
/// agent handle); SIPREG_ERR_TRANSPORT (the flow is closed);
/// SIPREG_ERR_TERMINATED (the user agent was freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `request` must be readable for `request_len` bytes, `reason` and
/// `extra_headers` NULL or NUL-terminated, `body` NULL or readable for
/// `body_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_respond(
    ua: *mut sipreg_user_agent,
    flow_id: u64,
    request: *const c_char,
    request_len: usize,
    status: u16,
    reason: *const c_char,
    extra_headers: *const c_char,
    body: *const c_char,
    body_len: usize,
) -> sipreg_result {
    guard(|| {
        let h = UAS.get(ua as *const c_void, "ua")?;
        if request.is_null() {
            return Err(Error::NullArgument("request"));
        }
        let request = bytes(request, request_len, "request")?;
        let body = bytes(body, body_len, "body")?;
        let reason = opt_str(reason, "reason")?.unwrap_or_default();
        let headers = opt_str(extra_headers, "extra_headers")?.unwrap_or_default();
        let reply = Reply::new(status, reason, headers, body)?;
        runtime::respond(h.id, flow_id, request, reply)
    })
}

/// Sends the application's own SIP message (a request such as an INVITE or
/// MESSAGE, or a response it wrote) over flow `flow_id`, as RFC 5626 needs
/// for a registered flow (`sipreg_registerer_flow_id` gives it): a request
/// goes to the registrar or proxy the user agent's registerer on that flow
/// sends to, a response to its top Via (on a stream, both go to the
/// connection's peer). The bytes go out as they are (at most 65 000). A
/// flow that is not the user agent's is refused on the worker thread, with
/// a log line.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` or `message` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a SIP request or response, empty, too
/// large, a `flow_id` that was never a flow, or not a user agent handle);
/// SIPREG_ERR_TRANSPORT (the flow is closed); SIPREG_ERR_TERMINATED (the
/// user agent was freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `message` must be readable for `length` bytes.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_send(
    ua: *mut sipreg_user_agent,
    flow_id: u64,
    message: *const c_char,
    length: usize,
) -> sipreg_result {
    guard(|| {
        let h = UAS.get(ua as *const c_void, "ua")?;
        if message.is_null() {
            return Err(Error::NullArgument("message"));
        }
        let message = bytes(message, length, "message")?;
        if message.is_empty() {
            return Err(Error::invalid("message is empty"));
        }
        runtime::send_message(h.id, flow_id, message)
    })
}

/// Writes the id of the flow the registerer's requests use (the registered
/// flow, for `sipreg_user_agent_send`) to `*flow_id`; 0 before it has one
/// (and after it lost it, until the next).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`r` or `flow_id` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a registerer handle);
/// SIPREG_ERR_TERMINATED (the registerer was freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `flow_id` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_registerer_flow_id(
    r: *const sipreg_registerer,
    flow_id: *mut u64,
) -> sipreg_result {
    guard(|| {
        let id = read_snapshot(r.cast_mut(), |s| s.flow_id)?;
        put(flow_id, id, "flow_id")
    })
}

/// Counts the header lines named `name` (any case, long or compact form)
/// in `message` (a request, or a response, as `sipreg_incoming` gives it),
/// into `*count`.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`message`, `name` or
/// `count` NULL); SIPREG_ERR_INVALID_ARGUMENT (not a SIP message, or bad
/// UTF-8 in `name`); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `message` must be readable for `length` bytes; `name` NUL-terminated;
/// `count` writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_message_header_count(
    message: *const c_char,
    length: usize,
    name: *const c_char,
    count: *mut usize,
) -> sipreg_result {
    guard(|| {
        let msg = parse(message, length)?;
        let name = req_str(name, "name")?;
        put(count, msg.values(name).len(), "count")
    })
}

/// Copies the value of header line number `index` named `name` (any case,
/// long or compact form; a comma-separated list on one line is one value)
/// in `message` into `buf` of `len` bytes, NUL-terminated; `*needed` (NULL
/// allowed) gets the size it needs, NUL included.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`message` or `name` NULL,
/// or `buf` NULL with a length); SIPREG_ERR_INVALID_ARGUMENT (an index out of
/// range, not a SIP message, or bad UTF-8 in `name`);
/// SIPREG_ERR_BUFFER_TOO_SMALL (it does not fit); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `message` must be readable for `length` bytes; `name` NUL-terminated;
/// `buf` NULL or writable for `len` bytes; `needed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_message_header(
    message: *const c_char,
    length: usize,
    name: *const c_char,
    index: usize,
    buf: *mut c_char,
    len: usize,
    needed: *mut usize,
) -> sipreg_result {
    guard(|| {
        let msg = parse(message, length)?;
        let name = req_str(name, "name")?;
        let values = msg.values(name);
        let value = values
            .get(index)
            .ok_or_else(|| Error::invalid(format!("no {name} header number {index}")))?;
        copy_out(value, buf, len, needed)
    })
}

/// Finds the body of `message` (a request, or a response, as
/// `sipreg_incoming` gives it): `*offset` gets where it starts in
/// `message`, `*body_length` its length (0 without a body).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`message`, `offset` or
/// `body_length` NULL); SIPREG_ERR_INVALID_ARGUMENT (not a SIP message);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `message` must be readable for `length` bytes; `offset` and
/// `body_length` writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_message_body(
    message: *const c_char,
    length: usize,
    offset: *mut usize,
    body_length: *mut usize,
) -> sipreg_result {
    guard(|| {
        if offset.is_null() {
            return Err(Error::NullArgument("offset"));
        }
        parse(message, length)?;
        let r = body_range(bytes(message, length, "message")?)
            .ok_or_else(|| Error::invalid("message has no complete header section"))?;
        put(body_length, r.len(), "body_length")?;
        put(offset, r.start, "offset")
    })
}

/// The `len` bytes at `p` (NULL with 0 is empty).
///
/// # Safety
/// `p` must be NULL or readable for `len` bytes.
unsafe fn bytes<'a>(p: *const c_char, len: usize, what: &'static str) -> Result<&'a [u8], Error> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Error::NullArgument(what))
        };
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what} length is absurd")));
    }
    Ok(std::slice::from_raw_parts(p.cast::<u8>(), len))
}

/// A request or a response read from C.
enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    /// The values of every header line named `name`.
    fn values(&self, name: &str) -> Vec<String> {
        match self {
            Message::Request(r) => r.headers(name).map(str::to_owned).collect(),
            Message::Response(r) => r.headers(name).map(str::to_owned).collect(),
        }
    }
}

/// Reads a request (or a response to the application's own request) from C.
///
/// # Safety
/// As [`bytes`].
unsafe fn parse(message: *const c_char, length: usize) -> Result<Message, Error> {
    if message.is_null() {
        return Err(Error::NullArgument("message"));
    }
    let b = bytes(message, length, "message")?;
    match classify(b) {
        Kind::Response => Response::parse(b)
            .map(Message::Response)
            .map_err(|e| Error::invalid(format!("message is not a SIP response: {e}"))),
        _ => Request::parse(b)
            .map(Message::Request)
            .map_err(|e| Error::invalid(format!("message is not a SIP request: {e}"))),
    }
}
