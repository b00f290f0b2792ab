// sipreg.hpp: a header-only C++17 RAII wrapper over the sipreg C API.
//
//   sipreg::user_agent ua("sip:alice@127.0.0.1");
//   ua.set_password("alicepw");
//   sipreg::registerer r(ua, {.expires = 300, .registrar = "sip:127.0.0.1:5060"});
//   r.on_state([](sipreg::state s) { std::cout << sipreg::to_string(s) << "\n"; });
//   r.register_();          // returns at once; the outcome arrives in on_state
//
// Ownership: each object owns its C handle and frees it in its destructor
// (sipreg_registerer_free / sipreg_user_agent_free); objects move, never copy.
// Callbacks (std::function) run on the library's worker thread; they may call
// any method (including dispose()) but must not block for long. Exceptions
// thrown by a callback are swallowed at the C boundary. Setting a callback
// waits until a running call of the previous one has returned, so replacing
// or destroying is safe from any thread other than the worker (do not call
// on_state/on_response/on_trace from inside a callback).
// Errors from the C API become sipreg::error (code + sipreg_last_error()).
#ifndef SIPREG_HPP
#define SIPREG_HPP

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <sipreg.h>

namespace sipreg {

/// A failed C call: the sipreg_result and the library's last-error text.
class error : public std::runtime_error {
public:
    error(sipreg_result code, const std::string &what)
        : std::runtime_error(what + ": " + sipreg_result_str(code) + " (" + sipreg_last_error() + ")"),
          code_(code) {}
    /// The C result code, e.g. SIPREG_ERR_REQUEST_PENDING.
    sipreg_result code() const noexcept { return code_; }

private:
    sipreg_result code_;
};

/// Throws sipreg::error unless `rc` is SIPREG_OK.
inline void check(sipreg_result rc, const char *what) {
    if (rc != SIPREG_OK) throw error(rc, what);
}

/// The library version ("0.1.0").
inline std::string version() { return sipreg_version(); }

/// Registerer state (SIP.js RegistererState).
enum class state { initial = SIPREG_STATE_INITIAL, registered = SIPREG_STATE_REGISTERED,
                   unregistered = SIPREG_STATE_UNREGISTERED, terminated = SIPREG_STATE_TERMINATED };

/// "Initial", "Registered", "Unregistered" or "Terminated".
inline const char *to_string(state s) {
    switch (s) {
    case state::initial: return "Initial";
    case state::registered: return "Registered";
    case state::unregistered: return "Unregistered";
    case state::terminated: return "Terminated";
    }
    return "Unknown";
}

/// One traced SIP message (copied out of the C record).
struct trace_record {
    bool sent;                 ///< true: sent by the library; false: received
    std::string transport;     ///< "udp", "tcp", …
    std::string local;         ///< the library's end, "IP:port" ("" if unknown)
    std::string remote;        ///< the peer's end
    std::int64_t timestamp_us; ///< microseconds since the Unix epoch
    std::string message;       ///< the text, Authorization values redacted
};

/// Identity, credentials and transport shared by registerers (sipreg_user_agent).
class user_agent {
public:
    /// Creates a user agent for `aor` ("sip:alice@example.com").
    explicit user_agent(const std::string &aor) : trace_(std::make_unique<trace_fn>()) {
        sipreg_user_agent *ua = nullptr;
        check(sipreg_user_agent_new(aor.c_str(), &ua), "sipreg_user_agent_new");
        ua_ = ua;
    }
    user_agent(const user_agent &) = delete;
    user_agent &operator=(const user_agent &) = delete;
    user_agent(user_agent &&o) noexcept : ua_(std::exchange(o.ua_, nullptr)), trace_(std::move(o.trace_)) {}
    user_agent &operator=(user_agent &&o) noexcept {
        if (this != &o) {
            reset();
            ua_ = std::exchange(o.ua_, nullptr);
            trace_ = std::move(o.trace_);
        }
        return *this;
    }
    /// Disposes every registerer (bounded wait) and frees the handle.
    ~user_agent() { reset(); }

    /// Digest password (empty optional removes it).
    void set_password(const std::optional<std::string> &pw) {
        check(sipreg_user_agent_set_password(ua_, pw ? pw->c_str() : nullptr), "sipreg_user_agent_set_password");
    }
    /// Digest username (default: the AOR's user).
    void set_auth_username(const std::string &u) {
        check(sipreg_user_agent_set_auth_username(ua_, u.c_str()), "sipreg_user_agent_set_auth_username");
    }
    /// "udp" (default), "tcp", "tls" …
    void set_transport(const std::string &t) {
        check(sipreg_user_agent_set_transport(ua_, t.c_str()), "sipreg_user_agent_set_transport");
    }
    /// Receives every SIP message sent and received (nullptr / empty turns the trace off).
    void on_trace(std::function<void(const trace_record &)> fn) {
        check(sipreg_user_agent_set_trace_callback(ua_, nullptr, nullptr), "sipreg_user_agent_set_trace_callback");
        *trace_ = std::move(fn);
        if (*trace_)
            check(sipreg_user_agent_set_trace_callback(ua_, &user_agent::trampoline, trace_.get()),
                  "sipreg_user_agent_set_trace_callback");
    }
    /// Message counters.
    sipreg_stats stats() const {
        sipreg_stats s{};
        check(sipreg_user_agent_stats(ua_, &s), "sipreg_user_agent_stats");
        return s;
    }
    /// The C handle (still owned by this object).
    sipreg_user_agent *get() const noexcept { return ua_; }

private:
    using trace_fn = std::function<void(const trace_record &)>;

    static void trampoline(void *ud, sipreg_user_agent *, const sipreg_trace_record *r) noexcept {
        try {
            auto *fn = static_cast<trace_fn *>(ud);
            trace_record rec{r->direction == SIPREG_TRACE_SENT, r->transport, r->local, r->remote,
                             r->timestamp_us, std::string(r->message, r->message_len)};
            (*fn)(rec);
        } catch (...) {
        }
    }
    void reset() noexcept {
        // Frees the handle; no trace call runs or starts after this returns.
        if (ua_) sipreg_user_agent_free(std::exchange(ua_, nullptr));
    }

    sipreg_user_agent *ua_ = nullptr;
    std::unique_ptr<trace_fn> trace_;
};

/// Registerer settings (the common ones; defaults as in SIP.js).
struct registerer_options {
    std::uint32_t expires = 600;  ///< requested expiry, seconds
    std::string registrar;        ///< default: the AOR's domain
    bool retry = true;            ///< automatic recovery after failures
};

/// Registers one contact for the user agent's AOR (sipreg_registerer).
class registerer {
public:
    /// Creates a registerer on `ua` (which must outlive it or be freed first: both are safe).
    registerer(user_agent &ua, const registerer_options &o = {}) : cb_(std::make_unique<callbacks>()) {
        sipreg_registerer_options *opts = nullptr;
        check(sipreg_registerer_options_new(&opts), "sipreg_registerer_options_new");
        std::unique_ptr<sipreg_registerer_options, void (*)(sipreg_registerer_options *)> guard(
            opts, [](sipreg_registerer_options *p) { sipreg_registerer_options_free(p); });
        check(sipreg_registerer_options_set_expires(opts, o.expires), "set_expires");
        if (!o.registrar.empty())
            check(sipreg_registerer_options_set_registrar(opts, o.registrar.c_str()), "set_registrar");
        check(sipreg_registerer_options_set_retry(opts, o.retry), "set_retry");
        sipreg_registerer *r = nullptr;
        check(sipreg_registerer_new(ua.get(), opts, nullptr, nullptr, &r), "sipreg_registerer_new");
        r_ = r;
        install();
    }
    registerer(const registerer &) = delete;
    registerer &operator=(const registerer &) = delete;
    registerer(registerer &&o) noexcept : r_(std::exchange(o.r_, nullptr)), cb_(std::move(o.cb_)) {}
    /// Frees the handle (a registered binding is removed in the background); no callback after this.
    ~registerer() {
        if (r_) sipreg_registerer_free(r_);
    }

    /// Called on every state change.
    void on_state(std::function<void(state)> fn) {
        replace([&] { cb_->state = std::move(fn); });
    }
    /// Called on every final response (status code, reason phrase).
    void on_response(std::function<void(int, const std::string &)> fn) {
        replace([&] { cb_->response = std::move(fn); });
    }
    /// Sends a REGISTER (throws sipreg::error with SIPREG_ERR_REQUEST_PENDING if one is in flight).
    void register_() { check(sipreg_register(r_), "sipreg_register"); }
    /// Removes the binding (`all`: Contact: *).
    void unregister(bool all = false) { check(sipreg_unregister(r_, all), "sipreg_unregister"); }
    /// Unregisters if registered, then Terminated (final).
    void dispose() { check(sipreg_dispose(r_), "sipreg_dispose"); }
    /// The current state.
    sipreg::state current_state() const {
        sipreg_state s = SIPREG_STATE_INITIAL;
        check(sipreg_registerer_state(r_, &s), "sipreg_registerer_state");
        return static_cast<sipreg::state>(s);
    }

private:
    struct callbacks {
        std::function<void(state)> state;
        std::function<void(int, const std::string &)> response;
    };

    static void trampoline(void *ud, sipreg_registerer *, const sipreg_event *ev) noexcept {
        try {
            auto *cb = static_cast<callbacks *>(ud);
            if (ev->kind == SIPREG_EVENT_STATE_CHANGED && cb->state)
                cb->state(static_cast<sipreg::state>(ev->state));
            else if (ev->kind == SIPREG_EVENT_RESPONSE && cb->response)
                cb->response(ev->status_code, ev->reason);
        } catch (...) {
        }
    }
    void install() {
        check(sipreg_registerer_set_event_callback(r_, &registerer::trampoline, cb_.get()),
              "sipreg_registerer_set_event_callback");
    }
    template <class F> void replace(F &&assign) {
        // Removing the C callback waits for a running call, so the assignment never races it.
        check(sipreg_registerer_set_event_callback(r_, nullptr, nullptr), "sipreg_registerer_set_event_callback");
        assign();
        install();
    }

    sipreg_registerer *r_ = nullptr;
    std::unique_ptr<callbacks> cb_;
};

} // namespace sipreg

#endif
