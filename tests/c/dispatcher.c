/*
 * The dispatcher (issue 19): callbacks run only inside sipreg_dispatcher_run,
 * on the thread that calls it, driven by poll() on its fd; the worker never
 * waits for a slow application (other user agents go on); frees and calls
 * from inside dispatched callbacks; bad arguments; failure fields on events.
 * Runs under ASan and valgrind with the other C tests.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static registrar reg_srv;

/* Everything one dispatched registerer saw, checked on the one thread. */
typedef struct seen {
    pthread_t owner;          /* the only thread allowed to run callbacks */
    int off_thread;           /* callbacks on another thread */
    int nstates;
    sipreg_state states[32];
    int responses;
    int failed_events;
    sipreg_failure last_failure_kind;   /* from the FAILED event */
    char last_failure_detail[256];
    sipreg_failure on_last_state_event;  /* the `failure` field of the last STATE_CHANGED event */
    int traces;
    int trace_off_thread;
    sipreg_registerer *handle;
    /* actions from inside callbacks */
    int free_on_registered;   /* free the registerer and its user agent when Registered */
    sipreg_user_agent *ua;
    sipreg_dispatcher *d;
    sipreg_result reentry;    /* sipreg_dispatcher_run from inside a callback */
    int freed;
} seen;

static void seen_init(seen *s) {
    memset(s, 0, sizeof *s);
    s->owner = pthread_self();
    s->reentry = SIPREG_OK;
}

static void on_state(void *ud, sipreg_registerer *r, sipreg_state st) {
    seen *s = ud;
    if (!pthread_equal(pthread_self(), s->owner)) s->off_thread++;
    if (s->nstates < 32) s->states[s->nstates] = st;
    s->nstates++;
    if (s->d) {
        uint32_t ran = 0;
        s->reentry = sipreg_dispatcher_run(s->d, 0, &ran);
    }
    if (st == SIPREG_STATE_REGISTERED && s->free_on_registered) {
        /* Neither may wait for this very callback, nor block the loop. */
        sipreg_registerer_free(r);
        sipreg_user_agent_free(s->ua);
        s->freed = 1;
    }
}

static void on_event(void *ud, sipreg_registerer *r, const sipreg_event *ev) {
    seen *s = ud;
    (void)r;
    if (!pthread_equal(pthread_self(), s->owner)) s->off_thread++;
    if (ev->failure_detail == NULL) s->off_thread += 1000; /* never NULL */
    if (ev->kind == SIPREG_EVENT_RESPONSE) s->responses++;
    if (ev->kind == SIPREG_EVENT_STATE_CHANGED) s->on_last_state_event = ev->failure;
    if (ev->kind == SIPREG_EVENT_FAILED) {
        s->failed_events++;
        s->last_failure_kind = ev->failure;
        snprintf(s->last_failure_detail, sizeof s->last_failure_detail, "%s", ev->failure_detail);
    }
}

static void on_trace(void *ud, sipreg_user_agent *ua, const sipreg_trace_record *rec) {
    seen *s = ud;
    (void)ua;
    (void)rec;
    s->traces++;
    if (!pthread_equal(pthread_self(), s->owner)) s->trace_off_thread++;
}

static bool has_state(const seen *s, sipreg_state st) {
    for (int i = 0; i < s->nstates && i < 32; i++)
        if (s->states[i] == st) return true;
    return false;
}

static bool fd_readable(int fd, int timeout_ms) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* The application's loop: poll() the fd, run what waits, until `done` or the timeout. */
static bool loop_until(sipreg_dispatcher *d, const seen *s, bool (*done)(const seen *), double seconds) {
    double end = t_now() + t_timeout(seconds);
    int fd = sipreg_dispatcher_fd(d);
    while (!done(s)) {
        if (t_now() > end) return false;
        if (fd_readable(fd, 50)) {
            uint32_t ran = 0;
            sipreg_result rc = sipreg_dispatcher_run(d, 0, &ran);
            if (rc != SIPREG_OK) {
                t_fail(__FILE__, __LINE__, "dispatcher_run: %s (%s)", sipreg_result_str(rc), sipreg_last_error());
                return false;
            }
        }
    }
    return true;
}

static bool registered(const seen *s) { return has_state(s, SIPREG_STATE_REGISTERED); }
static bool terminated(const seen *s) { return has_state(s, SIPREG_STATE_TERMINATED); }
static bool unregistered(const seen *s) { return has_state(s, SIPREG_STATE_UNREGISTERED); }
static bool freed(const seen *s) { return s->freed != 0; }

static sipreg_registerer *dispatched_reg(sipreg_user_agent *ua, const char *uri, seen *s) {
    sipreg_registerer *r = make_reg(ua, uri, 60, NULL);
    if (!r) return NULL;
    EXPECT_RC(sipreg_registerer_set_state_callback(r, on_state, s), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_set_event_callback(r, on_event, s), SIPREG_OK);
    s->handle = r;
    return r;
}

static void bad_arguments(void) {
    sipreg_dispatcher *d = NULL;
    uint32_t ran = 7;
    EXPECT_RC(sipreg_dispatcher_new(NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT(sipreg_dispatcher_fd(NULL) == -1, "fd of NULL");
    EXPECT_RC(sipreg_dispatcher_run(NULL, 0, &ran), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT(ran == 7, "ran untouched on failure");
    EXPECT_RC(sipreg_dispatcher_free(NULL), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_dispatcher(NULL, NULL), SIPREG_ERR_NULL_ARGUMENT);
    sipreg_dispatcher *forged = (sipreg_dispatcher *)(uintptr_t)0x7fff0003;
    EXPECT(sipreg_dispatcher_fd(forged) == -1, "fd of a forged handle");
    EXPECT_RC(sipreg_dispatcher_run(forged, 0, NULL), SIPREG_ERR_INVALID_ARGUMENT);
    MUST(sipreg_dispatcher_new(&d));
    int fd = sipreg_dispatcher_fd(d);
    EXPECT(fd >= 0, "a real fd, got %d", fd);
    EXPECT(!fd_readable(fd, 0), "nothing waits: not readable");
    EXPECT_RC(sipreg_dispatcher_run(d, 0, NULL), SIPREG_OK);
    sipreg_dispatcher_stats st;
    EXPECT_RC(sipreg_dispatcher_get_stats(d, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_dispatcher_get_stats(d, &st), SIPREG_OK);
    EXPECT(st.waiting == 0 && st.dropped == 0 && st.coalesced == 0, "empty stats");
    EXPECT_RC(sipreg_dispatcher_free(d), SIPREG_OK);
    EXPECT_RC(sipreg_dispatcher_free(d), SIPREG_ERR_TERMINATED);
    EXPECT(sipreg_dispatcher_fd(d) == -1, "fd of a freed handle");
    EXPECT_RC(sipreg_dispatcher_run(d, 0, NULL), SIPREG_ERR_TERMINATED);
    /* Names, never NULL. */
    EXPECT(strcmp(sipreg_state_str(SIPREG_STATE_REGISTERED), "Registered") == 0, "state name");
    EXPECT(strcmp(sipreg_state_str(99), "Unknown") == 0, "unknown state name");
    EXPECT(strcmp(sipreg_failure_str(SIPREG_FAILURE_AUTH_REJECTED), "auth_rejected") == 0, "failure name");
    EXPECT(strcmp(sipreg_failure_str(-1), "unknown") == 0, "unknown failure name");
}

/* One thread: poll() the fd, every callback (state, event, trace) on it, in order. */
static void one_thread_with_poll(void) {
    sipreg_dispatcher *d = NULL;
    seen s;
    seen_init(&s);
    MUST(sipreg_dispatcher_new(&d));
    sipreg_user_agent *ua = make_ua(1, 2.0);
    if (!ua) return;
    MUST(sipreg_user_agent_set_dispatcher(ua, d));
    MUST(sipreg_user_agent_set_trace_callback(ua, on_trace, &s));
    sipreg_registerer *r = dispatched_reg(ua, reg_srv.uri, &s);
    if (!r) return;
    MUST(sipreg_register(r));
    /* The outcome waits for us: the fd becomes readable, nothing ran yet. */
    EXPECT(fd_readable(sipreg_dispatcher_fd(d), (int)(t_timeout(5.0) * 1000)), "fd readable after register");
    sipreg_state now = SIPREG_STATE_INITIAL;
    for (double end = t_now() + t_timeout(5.0); now != SIPREG_STATE_REGISTERED && t_now() < end;) {
        EXPECT_RC(sipreg_registerer_state(r, &now), SIPREG_OK);
        t_sleep_ms(10);
    }
    EXPECT(now == SIPREG_STATE_REGISTERED, "the accessor sees Registered at once");
    EXPECT(s.nstates == 0 && s.responses == 0 && s.traces == 0, "no callback outside run (%d states, %d traces)",
           s.nstates, s.traces);
    sipreg_dispatcher_stats st;
    EXPECT_RC(sipreg_dispatcher_get_stats(d, &st), SIPREG_OK);
    EXPECT(st.waiting >= 3, "state, response and traces wait: %llu", (unsigned long long)st.waiting);
    /* The free is refused while the user agent uses the dispatcher. */
    EXPECT_RC(sipreg_dispatcher_free(d), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT(loop_until(d, &s, registered, 5.0), "Registered through run");
    EXPECT(s.responses >= 1 && s.traces >= 2, "responses %d, traces %d", s.responses, s.traces);
    EXPECT(!fd_readable(sipreg_dispatcher_fd(d), 0), "drained: not readable");
    MUST(sipreg_unregister(r, false));
    EXPECT(loop_until(d, &s, unregistered, 5.0), "Unregistered through run");
    MUST(sipreg_dispose(r));
    EXPECT(loop_until(d, &s, terminated, 5.0), "Terminated through run");
    EXPECT(s.on_last_state_event == SIPREG_FAILURE_NONE, "no failure on the events of a success");
    EXPECT(s.nstates == 3 && s.states[0] == SIPREG_STATE_REGISTERED && s.states[1] == SIPREG_STATE_UNREGISTERED &&
               s.states[2] == SIPREG_STATE_TERMINATED,
           "states in order (%d)", s.nstates);
    EXPECT(s.off_thread == 0 && s.trace_off_thread == 0, "%d callbacks and %d traces on another thread",
           s.off_thread, s.trace_off_thread);
    EXPECT(s.reentry == SIPREG_OK, "no reentry attempted here");
    sipreg_registerer_free(r);
    EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
    /* Nothing delivers through it any more: it may go. */
    EXPECT_RC(sipreg_dispatcher_run(d, 0, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_dispatcher_free(d), SIPREG_OK);
}

/* A stalled application (its dispatcher never run) holds up nobody else. */
static void slow_application_does_not_stall_others(void) {
    sipreg_dispatcher *d = NULL;
    seen slow;
    seen_init(&slow);
    MUST(sipreg_dispatcher_new(&d));
    sipreg_user_agent *ua_slow = make_ua(2, 2.0);
    sipreg_user_agent *ua_free = make_ua(3, 2.0);
    if (!ua_slow || !ua_free) return;
    MUST(sipreg_user_agent_set_dispatcher(ua_slow, d));
    sipreg_registerer *r_slow = dispatched_reg(ua_slow, reg_srv.uri, &slow);
    tracker t;
    tracker_init(&t);
    sipreg_registerer *r_free = make_reg(ua_free, reg_srv.uri, 60, &t);
    if (!r_slow || !r_free) return;
    MUST(sipreg_register(r_slow));
    EXPECT(fd_readable(sipreg_dispatcher_fd(d), (int)(t_timeout(5.0) * 1000)), "the slow one's outcome waits");
    /* The other user agent registers, unregisters and registers again meanwhile. */
    MUST(sipreg_register(r_free));
    EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, t_timeout(5.0)), "the other registers");
    MUST(sipreg_unregister(r_free, false));
    EXPECT(tracker_wait(&t, SIPREG_STATE_UNREGISTERED, 1, t_timeout(5.0)), "the other unregisters");
    MUST(sipreg_register(r_free));
    EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 2, t_timeout(5.0)), "and registers again");
    EXPECT(slow.nstates == 0, "the stalled application saw nothing yet");
    EXPECT(loop_until(d, &slow, registered, 5.0), "its Registered is there when it runs");
    MUST(sipreg_dispose(r_free));
    EXPECT(tracker_wait(&t, SIPREG_STATE_TERMINATED, 1, t_timeout(5.0)), "other terminated");
    tracker_check(&t, "other");
    MUST(sipreg_dispose(r_slow));
    EXPECT(loop_until(d, &slow, terminated, 5.0), "slow terminated");
    EXPECT(slow.off_thread == 0, "callbacks on another thread: %d", slow.off_thread);
    sipreg_registerer_free(r_free);
    sipreg_registerer_free(r_slow);
    sipreg_user_agent_free(ua_free);
    sipreg_user_agent_free(ua_slow);
    tracker_destroy(&t);
    EXPECT_RC(sipreg_dispatcher_free(d), SIPREG_OK);
}

/* From inside a dispatched callback: run is refused, frees return at once. */
static void calls_from_inside_callbacks(void) {
    sipreg_dispatcher *d = NULL;
    seen s;
    seen_init(&s);
    MUST(sipreg_dispatcher_new(&d));
    sipreg_user_agent *ua = make_ua(4, 2.0);
    if (!ua) return;
    MUST(sipreg_user_agent_set_dispatcher(ua, d));
    sipreg_registerer *r = dispatched_reg(ua, reg_srv.uri, &s);
    if (!r) return;
    s.d = d;
    s.ua = ua;
    s.free_on_registered = 1;
    MUST(sipreg_register(r));
    EXPECT(loop_until(d, &s, freed, 5.0), "freed from inside the callback");
    EXPECT(s.reentry == SIPREG_ERR_REQUEST_PENDING, "run from a callback: %s", sipreg_result_str(s.reentry));
    /* Terminated of the freed handle is discarded, never delivered. */
    int before = s.nstates;
    t_sleep_ms(200);
    EXPECT_RC(sipreg_dispatcher_run(d, 0, NULL), SIPREG_OK);
    EXPECT(s.nstates == before, "no callback after the free (%d -> %d)", before, s.nstates);
    EXPECT_RC(sipreg_dispatcher_free(d), SIPREG_OK);
}

/* A failed attempt: a FAILED event with its kind and detail, the same as the accessor. */
static void failure_on_events_and_accessor(void) {
    sipreg_dispatcher *d = NULL;
    seen s;
    seen_init(&s);
    MUST(sipreg_dispatcher_new(&d));
    sipreg_user_agent *ua = make_ua(5, 1.0);
    if (!ua) return;
    MUST(sipreg_user_agent_set_dispatcher(ua, d));
    char uri[64];
    snprintf(uri, sizeof uri, "sip:127.0.0.1:%d", closed_udp_port());
    sipreg_registerer *r = dispatched_reg(ua, uri, &s);
    if (!r) return;
    sipreg_failure kind = SIPREG_FAILURE_FLOW;
    size_t need = 0;
    EXPECT_RC(sipreg_registerer_failure(r, &kind, NULL, 0, &need), SIPREG_OK);
    EXPECT(kind == SIPREG_FAILURE_NONE && need == 1, "no failure before an attempt");
    MUST(sipreg_register(r));
    EXPECT(loop_until(d, &s, unregistered, 5.0), "Unregistered after ICMP port unreachable");
    EXPECT(s.failed_events == 1, "one FAILED event, got %d", s.failed_events);
    EXPECT(s.last_failure_kind == SIPREG_FAILURE_TRANSPORT, "transport, got %s",
           sipreg_failure_str(s.last_failure_kind));
    EXPECT(strstr(s.last_failure_detail, "ICMP") != NULL, "detail: %s", s.last_failure_detail);
    EXPECT(s.on_last_state_event == SIPREG_FAILURE_TRANSPORT, "the state change carries it: %s",
           sipreg_failure_str(s.on_last_state_event));
    EXPECT_RC(sipreg_registerer_failure(r, &kind, NULL, 0, &need), SIPREG_OK);
    EXPECT(kind == SIPREG_FAILURE_TRANSPORT, "accessor kind %s", sipreg_failure_str(kind));
    EXPECT(need == strlen(s.last_failure_detail) + 1, "needed %zu", need);
    char small[4];
    memset(small, 'x', sizeof small);
    size_t need2 = 0;
    EXPECT_RC(sipreg_registerer_failure(r, &kind, small, sizeof small, &need2), SIPREG_ERR_BUFFER_TOO_SMALL);
    EXPECT(need2 == need && small[0] == 'x', "size reported, buffer untouched");
    char *buf = malloc(need);
    EXPECT_RC(sipreg_registerer_failure(r, &kind, buf, need, NULL), SIPREG_OK);
    EXPECT(buf && strcmp(buf, s.last_failure_detail) == 0, "same detail: %s", buf ? buf : "(null)");
    free(buf);
    uint16_t status = 0;
    char reason[64];
    EXPECT_RC(sipreg_registerer_failure_response(r, &status, reason, sizeof reason, NULL), SIPREG_OK);
    EXPECT(status == 503 && strcmp(reason, "Service Unavailable") == 0, "synthesised 503, got %u %s", status, reason);
    MUST(sipreg_dispose(r));
    EXPECT(loop_until(d, &s, terminated, 5.0), "Terminated");
    EXPECT(s.on_last_state_event == SIPREG_FAILURE_TRANSPORT, "Terminated carries the last failure too");
    sipreg_registerer_free(r);
    sipreg_user_agent_free(ua);
    EXPECT_RC(sipreg_dispatcher_free(d), SIPREG_OK);
}

int main(void) {
    printf("dispatcher:\n");
    if (!registrar_start(&reg_srv)) return 1;
    RUN(bad_arguments);
    RUN(one_thread_with_poll);
    RUN(slow_application_does_not_stall_others);
    RUN(calls_from_inside_callbacks);
    RUN(failure_on_events_and_accessor);
    registrar_stop(&reg_srv);
    return t_finish("dispatcher");
}
