//! `sipreg_user_agent`: identity, credentials and transport shared by registerers.

use std::ffi::{c_char, c_void};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::options::seconds;
use super::{guard, opt_str, put, req_str, sipreg_result, Registry};
use crate::core::options::{Transport, UserAgentConfig};
use crate::error::Error;
use crate::runtime::{self, Command, SharedStats};

/// Opaque user agent: AOR, credentials, transport, outbound proxy, local
/// address, User-Agent string and transaction timers. Safe to use from any
/// thread. Free with `sipreg_user_agent_free`, which disposes its registerers.
pub struct sipreg_user_agent {
    _private: [u8; 0],
}

/// Counters of one user agent. `received`, `dropped`, `sent` and
/// `transport_errors` count since the user agent was created; `window`,
/// `in_flight` and `queued` describe the registrar it sent to last, now.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sipreg_stats {
    /// Messages received on the user agent's sockets.
    pub received: u64,
    /// Messages dropped: not SIP, unparsable, unknown branch, wrong
    /// Call-ID/CSeq, wrong source address, oversized, a request that cannot
    /// be answered or whose source is over its answer budget.
    pub dropped: u64,
    /// Requests sent, retransmissions included.
    pub sent: u64,
    /// Transport errors (send failures, ICMP errors, lost connections).
    pub transport_errors: u64,
    /// Pacing window of the registrar target this user agent used last: how many
    /// REGISTER transactions (of all user agents) may be in flight to it at once.
    /// It grows while answers come and halves on a retransmission or a 503;
    /// 0 before the user agent sent anything. Like `in_flight` and `queued`,
    /// the value at the moment of the read (not of this user agent's last step).
    pub window: u64,
    /// REGISTER transactions in flight to that target (all user agents): sent
    /// (or owed) and not yet ended by a final response, a timeout or a
    /// transport error. 0 once every registration told its outcome.
    pub in_flight: u64,
    /// Registerers waiting for a slot in that target's window (all user agents).
    pub queued: u64,
    /// Requests that reached the user agent's contact (registrar pings,
    /// calls, messages), answered or handed to the request callback.
    pub requests: u64,
    /// Responses sent to them: the library's answers and the application's.
    pub answered: u64,
}

/// The user agent's settings and whether the worker has them yet.
pub(crate) struct UaConfig {
    /// One copy, shared with the worker and the registerers; a change after
    /// the worker got it makes a new one.
    pub(crate) config: Arc<UserAgentConfig>,
    /// The worker knows this user agent. Until its first registerer it does
    /// not: the settings calls after `sipreg_user_agent_new` then change the
    /// one copy in place instead of copying it for the worker each time (the
    /// worker would free those copies on its thread, away from where they
    /// were made, where the memory would stay unused).
    published: bool,
}

pub(crate) struct UaHandle {
    pub(crate) id: u64,
    config: Mutex<UaConfig>,
    stats: SharedStats,
    /// False once `sipreg_user_agent_free` began. Held while a new
    /// registerer is handed to the worker, so every registerer the worker
    /// accepts is queued before the free and none slips in after it.
    open: Mutex<bool>,
}

impl UaHandle {
    pub(crate) fn config(&self) -> MutexGuard<'_, UaConfig> {
        self.config.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `add` (which queues a new registerer made from the settings it
    /// is given) unless the user agent is being freed, in which case the
    /// registerer is refused as Terminated. The settings stay locked
    /// meanwhile, so no change slips between the registerer's copy and the
    /// worker's. If the worker does not know the user agent yet, `add` is
    /// given its counters: the registerer's command introduces it.
    pub(crate) fn while_open<T>(
        &self,
        add: impl FnOnce(&Arc<UserAgentConfig>, Option<SharedStats>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if !*open {
            return Err(Error::Terminated);
        }
        let mut c = self.config();
        let introduce = (!c.published).then(|| self.stats.clone());
        let added = add(&c.config, introduce)?;
        c.published = true;
        Ok(added)
    }

    /// Marks the user agent as being freed and queues `free` while no
    /// registerer is being added.
    fn close(&self, free: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        *open = false;
        free()
    }
}

pub(crate) static UAS: Registry<UaHandle> = Registry::new(crate::runtime::IdKind::UserAgent);

/// How long `sipreg_user_agent_free` waits for the worker to reach the free
/// behind the commands queued before it.
const WORKER_BACKLOG_LIMIT: Duration = Duration::from_secs(10);

/// Applies a change to the settings and hands the new settings to the worker.
pub(crate) fn update(
    ua: *mut sipreg_user_agent,
    f: impl FnOnce(&mut UserAgentConfig) -> Result<(), Error>,
) -> sipreg_result {
    apply(ua, f, false)
}

/// [`update`] for a change that checks its value before it changes
/// anything (so a refused value leaves the settings as they were): before
/// the first registerer it is made in place, without copying the settings.
pub(crate) fn update_checked_first(
    ua: *mut sipreg_user_agent,
    f: impl FnOnce(&mut UserAgentConfig) -> Result<(), Error>,
) -> sipreg_result {
    apply(ua, f, true)
}

fn apply(
    ua: *mut sipreg_user_agent,
    f: impl FnOnce(&mut UserAgentConfig) -> Result<(), Error>,
    checked_first: bool,
) -> sipreg_result {
    guard(|| {
        let h = UAS.get(ua as *const c_void, "ua")?;
        let mut c = h.config();
        if !c.published {
            if let Some(only) = Arc::get_mut(&mut c.config) {
                if checked_first {
                    return f(only);
                }
                // Nobody else has it: checked on a copy on the stack (a
                // refused value changes nothing), then stored in place.
                let mut changed = only.clone();
                f(&mut changed)?;
                *only = changed;
                return Ok(());
            }
        }
        let mut changed = UserAgentConfig::clone(&c.config);
        f(&mut changed)?;
        c.config = Arc::new(changed);
        if !c.published {
            return Ok(());
        }
        // Queued under the settings' lock: two changes from two threads
        // reach the worker in the order they were made, so it never ends
        // with the older settings. (Queuing never waits for the worker.)
        let config = c.config.clone();
        let queued = runtime::send(Command::UaConfig { id: h.id, config });
        drop(c);
        queued
    })
}

/// Creates a user agent for the address of record `aor` (e.g.
/// "sip:alice@example.com"). Starts the library's worker thread on first use.
/// The caller owns `*out` and frees it with `sipreg_user_agent_free`.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`aor` or `out` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a SIP or SIPS URI with a user, or bad
/// UTF-8); SIPREG_ERR_INTERNAL (the worker thread could not start).
///
/// # Safety
/// `aor` must be NULL or a NUL-terminated string; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_new(
    aor: *const c_char,
    out: *mut *mut sipreg_user_agent,
) -> sipreg_result {
    guard(|| {
        if out.is_null() {
            return Err(Error::NullArgument("out"));
        }
        let config = Arc::new(UserAgentConfig::new(req_str(aor, "aor")?)?);
        let id = runtime::next_id(runtime::IdKind::UserAgent);
        let stats = SharedStats::new();
        // The worker learns of the user agent with its first registerer.
        runtime::start()?;
        let h = UAS.insert(
            id,
            Arc::new(UaHandle {
                id,
                config: Mutex::new(UaConfig {
                    config,
                    published: false,
                }),
                stats,
                open: Mutex::new(true),
            }),
        );
        out.write(h.cast());
        Ok(())
    })
}

/// Sets the digest password (NULL removes it). Applies to every registerer at
/// once. The password is never logged and is wiped from memory when replaced or freed.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (control characters or bad UTF-8, or not a user
/// agent handle); SIPREG_ERR_TERMINATED (the user agent was freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `password` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_password(
    ua: *mut sipreg_user_agent,
    password: *const c_char,
) -> sipreg_result {
    // (`set_password` checks the text before it stores it.)
    update_checked_first(ua, |c| c.set_password(opt_str(password, "password")?))
}

/// Sets the digest username (NULL: the AOR's user). Applies at once.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (control characters or bad UTF-8, or not a user
/// agent handle); SIPREG_ERR_TERMINATED (the user agent was freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `username` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_auth_username(
    ua: *mut sipreg_user_agent,
    username: *const c_char,
) -> sipreg_result {
    update(ua, |c| c.set_auth_username(opt_str(username, "username")?))
}

/// Sets the transport: "udp" (default), "tcp", "tls", "ws" or "wss". A
/// `transport=` parameter on the registrar or proxy URI overrides it, and a
/// `sips:` registrar or proxy implies "tls". Default ports: 5060 (udp, tcp),
/// 5061 (tls), 80 (ws), 443 (wss). Applies to registerers created afterwards.
/// Without this call (and without `transport=`), a registrar host name with
/// no port lets its NAPTR records choose among udp, tcp and tls (RFC 3263),
/// udp when there are none.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL, or `transport`
/// NULL); SIPREG_ERR_INVALID_ARGUMENT (not udp, tcp, tls, ws or wss, or not a
/// user agent handle); SIPREG_ERR_TERMINATED (the user agent was freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `transport` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_transport(
    ua: *mut sipreg_user_agent,
    transport: *const c_char,
) -> sipreg_result {
    update_checked_first(ua, |c| {
        // Read and checked before anything is stored.
        c.transport = Transport::parse(req_str(transport, "transport")?)?;
        c.transport_chosen = true;
        Ok(())
    })
}

/// Sets the PEM file of CA certificates that TLS and WSS servers must chain
/// to; NULL (the default) uses the system's trust store. The file is read and
/// checked now: a missing or unreadable file, or one without a valid PEM
/// certificate, fails with SIPREG_ERR_INVALID_ARGUMENT and says why in
/// `sipreg_last_error()`. Applies to connections opened afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (a missing or unreadable file, or one without a
/// valid PEM certificate, or not a user agent handle); SIPREG_ERR_TERMINATED
/// (the user agent was freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_tls_ca_file(
    ua: *mut sipreg_user_agent,
    path: *const c_char,
) -> sipreg_result {
    update(ua, |c| {
        let path = opt_str(path, "path")?;
        if let Some(p) = path {
            crate::runtime::tls::check_ca_file(p)?;
        }
        c.set_tls_ca_file(path);
        Ok(())
    })
}

/// Sets the TLS server name: sent as SNI and required in the server's
/// certificate. NULL (the default) uses the registrar's or proxy's host (an IP
/// address is matched against the certificate's IP addresses). Applies to
/// connections opened afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a DNS name or IP address, or not a user
/// agent handle); SIPREG_ERR_TERMINATED (the user agent was freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `name` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_tls_server_name(
    ua: *mut sipreg_user_agent,
    name: *const c_char,
) -> sipreg_result {
    update(ua, |c| c.set_tls_server_name(opt_str(name, "name")?))
}

/// Turns TLS certificate and host-name checks on (true, the default) or off.
/// Off is for labs only: any server is accepted, and a warning is logged once
/// per user agent when its first such connection opens. Applies to
/// connections opened afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle); SIPREG_ERR_TERMINATED
/// (the user agent was freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_tls_verify(
    ua: *mut sipreg_user_agent,
    verify: bool,
) -> sipreg_result {
    update(ua, |c| {
        c.set_tls_verify(verify);
        Ok(())
    })
}

/// Sets the HTTP request path of the WebSocket upgrade for "ws" and "wss"
/// (default "/"); it must start with '/'. Applies to connections opened afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL, or `path` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not starting with '/', or with spaces, or not a
/// user agent handle); SIPREG_ERR_TERMINATED (the user agent was freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_ws_path(
    ua: *mut sipreg_user_agent,
    path: *const c_char,
) -> sipreg_result {
    update(ua, |c| c.set_ws_path(req_str(path, "path")?))
}

/// Gives the user agent sockets of its own (true) instead of the process-wide
/// shared ones (false, the default). By default user agents with the same
/// transport, address family and local address share one UDP socket and one
/// stream connection per target; a private socket gives an account its own
/// source port (and contact address). Applies to sockets opened afterwards
/// (see `sipreg_user_agent_network_changed`).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle); SIPREG_ERR_TERMINATED
/// (the user agent was freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_private_socket(
    ua: *mut sipreg_user_agent,
    private_socket: bool,
) -> sipreg_result {
    update(ua, |c| {
        c.private_socket = private_socket;
        Ok(())
    })
}

/// Sets an outbound proxy URI: requests go there with a Route header (NULL
/// removes it). Applies to registerers created afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a SIP URI, control characters or bad UTF-8,
/// or not a user agent handle); SIPREG_ERR_TERMINATED (the user agent was
/// freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `uri` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_outbound_proxy(
    ua: *mut sipreg_user_agent,
    uri: *const c_char,
) -> sipreg_result {
    update(ua, |c| c.set_outbound_proxy(opt_str(uri, "uri")?))
}

/// Sets the local address sockets bind to: "IP" or "IP:port" ("[v6]:port");
/// NULL lets the system choose. Applies to sockets opened afterwards (see
/// `sipreg_user_agent_network_changed`).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not IP or IP:port, or not a user agent handle);
/// SIPREG_ERR_TERMINATED (the user agent was freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `address` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_local_address(
    ua: *mut sipreg_user_agent,
    address: *const c_char,
) -> sipreg_result {
    update(ua, |c| c.set_local_address(opt_str(address, "address")?))
}

/// Sets the User-Agent header value. Applies to registerers created afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL, or `value` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (control characters or bad UTF-8, or not a user
/// agent handle); SIPREG_ERR_TERMINATED (the user agent was freed);
/// SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `value` must be NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_set_user_agent(
    ua: *mut sipreg_user_agent,
    value: *const c_char,
) -> sipreg_result {
    update(ua, |c| c.set_user_agent(req_str(value, "value")?))
}

/// Sets the RFC 3261 timers T1, T2 and T4 in seconds (defaults 0.5, 4, 5).
/// Timer F (transaction timeout) is 64*T1. Applies to registerers created afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (a value negative, NaN, infinite, outside 1
/// ms..600 s, or T2 below T1, or not a user agent handle);
/// SIPREG_ERR_TERMINATED (the user agent was freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_timers(
    ua: *mut sipreg_user_agent,
    t1: f64,
    t2: f64,
    t4: f64,
) -> sipreg_result {
    update(ua, |c| {
        c.set_timers(seconds("t1", t1)?, seconds("t2", t2)?, seconds("t4", t4)?)
    })
}

/// Sets the bound (seconds, default 4) on how long dispose waits for the
/// un-REGISTER and how long `sipreg_user_agent_free` blocks. Applies to
/// registerers created afterwards.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (negative, NaN, infinite or over 3600 s, or not
/// a user agent handle); SIPREG_ERR_TERMINATED (the user agent was freed);
/// SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_shutdown_timeout(
    ua: *mut sipreg_user_agent,
    seconds: f64,
) -> sipreg_result {
    update(ua, |c| {
        c.set_shutdown_timeout(self::seconds("shutdown timeout", seconds)?)
    })
}

/// Keep-alive interval in seconds (0 = off, the default; at most 3600) used
/// when the registrar sends no Flow-Timer. With RFC 5626 outbound (instance
/// id + reg-id and a registrar answering `Require: outbound`) the flow gets
/// STUN (UDP) or CRLF ping/pong (TCP) at Flow-Timer minus 0–20 %, else at
/// this interval; without outbound this is a plain CRLF NAT keep-alive.
/// A missing answer within 10 s or a changed STUN mapping re-registers on a
/// new flow. Applies to existing registerers from their next 2xx.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (over 3600, or not a user agent handle);
/// SIPREG_ERR_TERMINATED (the user agent was freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_keepalive(
    ua: *mut sipreg_user_agent,
    seconds: u32,
) -> sipreg_result {
    update(ua, |c| c.set_keepalive(seconds))
}

/// Contact rewrite (default on): when a 2xx's top Via shows (received/rport)
/// that the registrar saw another address than our Contact, re-REGISTER at
/// once with that public address and remove the old binding in the same
/// request. Never done while RFC 5626 outbound is in use for the flow.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle); SIPREG_ERR_TERMINATED
/// (the user agent was freed); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_contact_rewrite(
    ua: *mut sipreg_user_agent,
    enabled: bool,
) -> sipreg_result {
    update(ua, |c| {
        c.contact_rewrite = enabled;
        Ok(())
    })
}

/// The network changed (new address, interface, VPN …): re-binds the user
/// agent's sockets and re-registers every registered registerer at once with
/// its new Contact, removing the old binding in the same REGISTER. Host
/// names are looked up afresh too: `/etc/resolv.conf` is read again (for the
/// whole process) and cached DNS answers are dropped.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle); SIPREG_ERR_TERMINATED
/// (the user agent was freed); SIPREG_ERR_INTERNAL (the worker thread is
/// unreachable).
#[no_mangle]
pub extern "C" fn sipreg_user_agent_network_changed(ua: *mut sipreg_user_agent) -> sipreg_result {
    guard(|| {
        let h = UAS.get(ua as *const c_void, "ua")?;
        runtime::dns::reload();
        runtime::send(Command::NetworkChanged { id: h.id })
    })
}

/// Reads the user agent's message counters.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL or `out`);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle); SIPREG_ERR_TERMINATED
/// (the user agent was freed); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_user_agent_stats(
    ua: *mut sipreg_user_agent,
    out: *mut sipreg_stats,
) -> sipreg_result {
    guard(|| {
        let h = UAS.get(ua as *const c_void, "ua")?;
        let s = &h.stats;
        // All 0 before the user agent sent anything.
        let w = s.window();
        let stats = sipreg_stats {
            received: s.received.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            sent: s.sent.load(Ordering::Relaxed),
            transport_errors: s.transport_errors.load(Ordering::Relaxed),
            window: u64::from(w.window),
            in_flight: u64::from(w.in_flight),
            queued: u64::from(w.queued),
            requests: s.requests.load(Ordering::Relaxed),
            answered: s.answered.load(Ordering::Relaxed),
        };
        put(out, stats, "out")
    })
}

/// Disposes every registerer of the user agent (un-REGISTERing those that are
/// registered) and releases the user agent. Blocks until all are Terminated or
/// the shutdown timeout passed (plus a small margin), counted from when the
/// worker thread reaches the free behind the calls queued before it (local
/// work, about 20 µs per registerer created just before); called from inside
/// a callback, or on the thread that runs the user agent's dispatcher (see
/// `sipreg_dispatcher_run`), it does not wait: the registerers terminate in
/// the background and Terminated arrives through the callbacks. A `sipreg_registerer_new` on this user agent
/// that races with the free either fails with SIPREG_ERR_TERMINATED or its
/// registerer is Terminated when this returns. Registerer handles stay valid (calls
/// return SIPREG_ERR_TERMINATED) until each is freed with
/// `sipreg_registerer_free`. NULL is ignored; the password is wiped. The
/// trace and request callbacks are removed first: none runs or starts after
/// this returns (a request arriving meanwhile gets 405, or 404 once the
/// registerers are gone).
///
/// Returns SIPREG_OK (also for NULL); SIPREG_ERR_TERMINATED (freed twice);
/// SIPREG_ERR_INVALID_ARGUMENT (not a user agent handle); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_free(ua: *mut sipreg_user_agent) -> sipreg_result {
    guard(|| {
        if ua.is_null() {
            return Ok(());
        }
        let h = UAS.remove(ua as *const c_void, "ua")?;
        // No trace or request callback runs or starts once this returns.
        crate::runtime::trace::set_sink(h.id, None);
        crate::runtime::requests::set_sink(h.id, None);
        // On the thread that runs the user agent's dispatcher, waiting would
        // stall the loop that delivers the outcome: Terminated arrives there.
        let on_loop = crate::runtime::dispatch::route(h.id).is_some_and(|d| d.is_home());
        // Its registerers keep their own way to the dispatcher, if any.
        crate::runtime::dispatch::attach(h.id, None);
        let bound = h.config().config.extras().shutdown_timeout;
        let (started_tx, started) = crossbeam_channel::bounded(1);
        let (done_tx, done) = crossbeam_channel::bounded(1);
        h.close(|| {
            runtime::send(Command::FreeUa {
                id: h.id,
                started: started_tx,
                done: done_tx,
            })
        })?;
        if !runtime::in_callback() && !on_loop {
            // First the worker works through what was queued before the free
            // (local work only, however slow the machine: bounded just
            // against a worker stuck in a callback), then the registerers'
            // network deadlines end at `bound`; the margin covers scheduling.
            if started.recv_timeout(WORKER_BACKLOG_LIMIT).is_ok() {
                let _ = done.recv_timeout(bound + Duration::from_millis(500));
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::options::Transport;

    /// Before its first registerer a user agent's password and transport
    /// are changed in place: a refused value still leaves the earlier one.
    /// Only a registerer that is made introduces the user agent to the worker.
    #[test]
    fn a_refused_value_changes_nothing_before_the_first_registerer() {
        let mut ua = std::ptr::null_mut();
        // SAFETY: NUL-terminated literals and a writable out pointer.
        unsafe {
            assert_eq!(
                sipreg_user_agent_new(c"sip:carol@127.0.0.1".as_ptr(), &mut ua),
                sipreg_result::SIPREG_OK
            );
            // Refused first, on untouched settings: the transport stays unchosen.
            assert_eq!(
                sipreg_user_agent_set_transport(ua, c"carrier-pigeon".as_ptr()),
                sipreg_result::SIPREG_ERR_INVALID_ARGUMENT
            );
        }
        let h = UAS.get(ua as *const c_void, "ua").unwrap();
        {
            let c = h.config();
            assert!(!c.config.transport_chosen);
            assert!(c.config.password.is_none());
        }
        // SAFETY: as above.
        unsafe {
            assert_eq!(
                sipreg_user_agent_set_password(ua, c"first".as_ptr()),
                sipreg_result::SIPREG_OK
            );
            assert_eq!(
                sipreg_user_agent_set_transport(ua, c"tcp".as_ptr()),
                sipreg_result::SIPREG_OK
            );
            assert_eq!(
                sipreg_user_agent_set_password(ua, c"second\r\nInjected: yes".as_ptr()),
                sipreg_result::SIPREG_ERR_INVALID_ARGUMENT
            );
            assert_eq!(
                sipreg_user_agent_set_transport(ua, c"carrier-pigeon".as_ptr()),
                sipreg_result::SIPREG_ERR_INVALID_ARGUMENT
            );
        }
        {
            let c = h.config();
            // Not yet handed to the worker: the path that changes in place.
            assert!(!c.published);
            let pw = c.config.password.as_ref().map(|p| p.expose().to_owned());
            assert_eq!(pw.as_deref(), Some("first"));
            assert_eq!(c.config.transport, Transport::Tcp);
            assert!(c.config.transport_chosen);
        }
        // A registerer refused on its options (reg_id without instance_id)
        // does not introduce the user agent to the worker; the next one does.
        let published = || h.config().published;
        let mut opts = std::ptr::null_mut();
        let mut r = std::ptr::null_mut();
        // SAFETY: writable out pointers; handles made here, freed once.
        unsafe {
            use crate::ffi::options::*;
            use crate::ffi::registerer::*;
            assert_eq!(
                sipreg_registerer_options_new(&mut opts),
                sipreg_result::SIPREG_OK
            );
            assert_eq!(
                sipreg_registerer_options_set_reg_id(opts, 1),
                sipreg_result::SIPREG_OK
            );
            assert_eq!(
                sipreg_registerer_new(ua, opts, None, std::ptr::null_mut(), &mut r),
                sipreg_result::SIPREG_ERR_INVALID_ARGUMENT
            );
            assert!(!published());
            assert_eq!(
                sipreg_registerer_new(ua, std::ptr::null(), None, std::ptr::null_mut(), &mut r),
                sipreg_result::SIPREG_OK
            );
            assert!(published());
            sipreg_registerer_free(r);
            sipreg_registerer_options_free(opts);
        }
        drop(h);
        assert_eq!(sipreg_user_agent_free(ua), sipreg_result::SIPREG_OK);
    }
}
