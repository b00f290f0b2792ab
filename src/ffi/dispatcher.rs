//! `sipreg_dispatcher`: callbacks on the application's thread, driven from
//! its own event loop (poll/epoll, GLib, Qt, libuv, asyncio).

use std::ffi::{c_int, c_void};
use std::sync::Arc;

use super::user_agent::{sipreg_user_agent, UAS};
use super::{guard, put, sipreg_result, Registry};
use crate::error::Error;
use crate::runtime::{self, dispatch::Dispatcher};

/// Opaque dispatcher: a queue of callbacks that the application runs on its
/// own thread, with a file descriptor its event loop watches.
///
/// Every callback of a user agent attached with
/// `sipreg_user_agent_set_dispatcher` (state, event, trace, request) is queued here by
/// the worker thread instead of being called there, and runs only inside
/// `sipreg_dispatcher_run`, on the thread that calls it, in the order the
/// worker queued them (across all user agents attached to it). The
/// process-wide log callback is not dispatched. The fd is readable while
/// callbacks wait: watch it for input (poll/epoll `POLLIN`, GLib
/// `g_unix_fd_add`, Qt `QSocketNotifier::Read`, libuv `uv_poll_start` with
/// `UV_READABLE`, asyncio `loop.add_reader`) and call `sipreg_dispatcher_run`
/// when it is; never read it yourself.
///
/// Callbacks may call any sipreg function, including `sipreg_dispose`,
/// `sipreg_registerer_free` and `sipreg_user_agent_free` of their own
/// objects: frees called from a callback (or anywhere on the thread running
/// the dispatcher) do not wait for callbacks of handles that deliver through
/// that dispatcher, and `sipreg_user_agent_free` from a callback does not
/// block. Only `sipreg_dispatcher_run` of the same dispatcher is refused
/// there. The worker never waits for the application: a slow or stalled
/// application delays only its own callbacks, never the network work of any
/// user agent.
///
/// The queue is bounded for an application that stops running it: once
/// 4096 callbacks wait, state changes are still queued (a state change is
/// never dropped); other events of a registerer are coalesced (a new one
/// replaces that registerer's older event of the same kind still waiting,
/// whose values stay readable through the accessors: last response,
/// failure, next retry); message traces are dropped. `sipreg_dispatcher_get_stats`
/// counts both.
///
/// Ownership: the caller owns the dispatcher (`sipreg_dispatcher_new`) and
/// frees it with `sipreg_dispatcher_free` once no user agent is attached to it
/// and every registerer created while one was has been freed (the free
/// fails with SIPREG_ERR_INVALID_ARGUMENT before that, and changes nothing).
/// Callbacks still waiting for a freed registerer are discarded, not run.
pub struct sipreg_dispatcher {
    _private: [u8; 0],
}

/// Counters of a dispatcher.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct sipreg_dispatcher_stats {
    /// Callbacks waiting for `sipreg_dispatcher_run`.
    pub waiting: u64,
    /// Message-trace callbacks dropped because 4096 callbacks were waiting.
    pub dropped: u64,
    /// Registerer events replaced by a newer one of the same registerer and
    /// kind because 4096 callbacks were waiting.
    pub coalesced: u64,
}

pub(crate) static DISPATCHERS: Registry<Dispatcher> =
    Registry::new(crate::runtime::IdKind::Dispatcher);

fn get(d: *const sipreg_dispatcher) -> Result<Arc<Dispatcher>, Error> {
    DISPATCHERS.get(d as *const c_void, "dispatcher")
}

/// Creates a dispatcher with an empty queue (its fd not readable). The
/// caller owns `*out` and frees it with `sipreg_dispatcher_free`.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`out` NULL);
/// SIPREG_ERR_INTERNAL (the fd could not be created: see `sipreg_last_error()`).
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_dispatcher_new(out: *mut *mut sipreg_dispatcher) -> sipreg_result {
    guard(|| {
        if out.is_null() {
            return Err(Error::NullArgument("out"));
        }
        let d = Arc::new(Dispatcher::new()?);
        let id = runtime::next_id(runtime::IdKind::Dispatcher);
        let p = DISPATCHERS.insert(id, d);
        out.write(p.cast());
        Ok(())
    })
}

/// The file descriptor that is readable while callbacks wait (an end of a
/// socket pair owned by the dispatcher: watch it, never read, write or close
/// it). -1 for NULL, a freed or a foreign handle.
#[no_mangle]
pub extern "C" fn sipreg_dispatcher_fd(d: *const sipreg_dispatcher) -> c_int {
    let mut fd = -1;
    let _ = guard(|| {
        fd = get(d)?.fd();
        Ok(())
    });
    fd
}

/// Runs waiting callbacks on the calling thread, in order: at most `max`
/// of them, or with `max` 0 every callback that was waiting when the call
/// began (not the ones they queue in turn, so a busy worker cannot keep
/// the caller here). `*ran` (may be NULL) receives how many ran. The fd
/// stays readable while callbacks still wait afterwards. A callback that
/// panics inside the library is contained and counted.
///
/// Returns SIPREG_OK (also when nothing waited); SIPREG_ERR_NULL_ARGUMENT
/// (`d` NULL); SIPREG_ERR_REQUEST_PENDING (a run of this dispatcher is in
/// progress: on another thread, or this call comes from one of its own
/// callbacks); SIPREG_ERR_TERMINATED (the dispatcher was freed);
/// SIPREG_ERR_INVALID_ARGUMENT (not a dispatcher handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `ran` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_dispatcher_run(
    d: *mut sipreg_dispatcher,
    max: u32,
    ran: *mut u32,
) -> sipreg_result {
    let mut busy = false;
    let rc = guard(|| {
        let disp = get(d)?;
        match disp.run(max) {
            Ok(n) => {
                if !ran.is_null() {
                    ran.write(n);
                }
            }
            Err(_) => busy = true,
        }
        Ok(())
    });
    if busy {
        super::set_last_error(
            "this dispatcher is already running (on another thread, or this is one of its callbacks)",
        );
        return sipreg_result::SIPREG_ERR_REQUEST_PENDING;
    }
    rc
}

/// Reads the dispatcher's counters (waiting, dropped, coalesced).
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`d` or `out` NULL);
/// SIPREG_ERR_TERMINATED (freed); SIPREG_ERR_INVALID_ARGUMENT (not a
/// dispatcher handle); SIPREG_ERR_INTERNAL.
///
/// # Safety
/// `out` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sipreg_dispatcher_get_stats(
    d: *const sipreg_dispatcher,
    out: *mut sipreg_dispatcher_stats,
) -> sipreg_result {
    guard(|| {
        let s = get(d)?.stats();
        put(
            out,
            sipreg_dispatcher_stats {
                waiting: s.waiting,
                dropped: s.dropped,
                coalesced: s.coalesced,
            },
            "out",
        )
    })
}

/// Frees the dispatcher: callbacks still waiting are discarded and its fd is
/// closed (remove it from your event loop first). Allowed once nothing
/// delivers through it: no user agent attached (free them, or attach them
/// to NULL) and every registerer created while one was attached freed.
/// Called from one of its own callbacks, the rest of that run is discarded.
/// NULL is ignored.
///
/// Returns SIPREG_OK; SIPREG_ERR_INVALID_ARGUMENT (user agents or
/// registerers still deliver through it: nothing is freed; or not a
/// dispatcher handle); SIPREG_ERR_TERMINATED (freed twice);
/// SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_dispatcher_free(d: *mut sipreg_dispatcher) -> sipreg_result {
    guard(|| {
        if d.is_null() {
            return Ok(());
        }
        let disp = get(d)?;
        let users = disp.users();
        if users > 0 {
            return Err(Error::invalid(format!(
                "{users} user agent(s) or registerer(s) still deliver through this dispatcher: free them first"
            )));
        }
        DISPATCHERS.remove(d as *const c_void, "dispatcher")?;
        disp.close();
        Ok(())
    })
}

/// Sends the callbacks of `ua` to dispatcher `d` (NULL: back to the worker
/// thread, the default). Applies to the user agent's trace and request callbacks at once
/// and to registerers created afterwards: a registerer's callbacks stay
/// where they went when it was created, so attach the dispatcher before
/// creating registerers. The user agent keeps `d` in use until it is freed
/// or attached elsewhere.
///
/// Returns SIPREG_OK; SIPREG_ERR_NULL_ARGUMENT (`ua` NULL);
/// SIPREG_ERR_TERMINATED (`ua` or `d` freed); SIPREG_ERR_INVALID_ARGUMENT
/// (not a user agent or dispatcher handle); SIPREG_ERR_INTERNAL.
#[no_mangle]
pub extern "C" fn sipreg_user_agent_set_dispatcher(
    ua: *mut sipreg_user_agent,
    d: *mut sipreg_dispatcher,
) -> sipreg_result {
    guard(|| {
        let h = UAS.get(ua as *const c_void, "ua")?;
        let disp = if d.is_null() { None } else { Some(get(d)?) };
        runtime::dispatch::attach(h.id, disp);
        Ok(())
    })
}
