/*
 * Handle lifecycle misuse against a registrar (Kamailio from
 * SIPREG_KAMAILIO_PORT, else the built-in one): register twice, unregister
 * before register, dispose twice, calls after dispose and after free, free
 * twice, free without dispose while callbacks are running, freeing the user
 * agent with live registerers, and the buffer-too-small paths.
 */
#include <stdatomic.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static registrar g;
static int slot = 0;

#define WAIT 10.0

static void register_twice(void) {
    tracker t;
    tracker_init(&t);
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, &t) : NULL;
    if (!r) goto out;
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    /* The first REGISTER is in flight (or at least accepted): no queueing. */
    EXPECT_RC(sipreg_register(r), SIPREG_ERR_REQUEST_PENDING);
    EXPECT_RC(sipreg_unregister(r, false), SIPREG_ERR_REQUEST_PENDING);
    EXPECT_RC(sipreg_unregister(r, true), SIPREG_ERR_REQUEST_PENDING);
    EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, WAIT), "registered");
    /* Once settled, a refresh is accepted again, and again refused while it runs. */
    int before = t.responses;
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    EXPECT_RC(sipreg_register(r), SIPREG_ERR_REQUEST_PENDING);
    EXPECT(tracker_wait_responses(&t, before + 1, WAIT), "the refresh got a final response");
    sipreg_state s;
    /* Still Registered, and no second Registered transition for the refresh. */
    t_sleep_ms(100);
    EXPECT_RC(sipreg_registerer_state(r, &s), SIPREG_OK);
    EXPECT(s == SIPREG_STATE_REGISTERED, "state %s", state_name(s));
    EXPECT(tracker_count(&t, SIPREG_STATE_REGISTERED) == 1, "Registered reported %d times",
           tracker_count(&t, SIPREG_STATE_REGISTERED));
    EXPECT_RC(sipreg_dispose(r), SIPREG_OK);
    EXPECT(tracker_wait(&t, SIPREG_STATE_TERMINATED, 1, WAIT), "terminated");
    tracker_check(&t, "register_twice");
out:
    sipreg_registerer_free(r);
    sipreg_user_agent_free(ua);
    tracker_destroy(&t);
}

static void unregister_before_register(void) {
    for (int all = 0; all <= 1; all++) {
        tracker t;
        tracker_init(&t);
        sipreg_user_agent *ua = make_ua(slot++, 4);
        sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, &t) : NULL;
        if (!r) {
            sipreg_user_agent_free(ua);
            tracker_destroy(&t);
            return;
        }
        /* Allowed: sends an un-REGISTER (SIP.js does), ends Unregistered. */
        EXPECT_RC(sipreg_unregister(r, all), SIPREG_OK);
        EXPECT(tracker_wait(&t, SIPREG_STATE_UNREGISTERED, 1, WAIT), "Unregistered after an early unregister(all=%d)",
               all);
        EXPECT(tracker_wait_responses(&t, 1, WAIT), "the un-REGISTER got a final response");
        uint16_t code = 0;
        EXPECT_RC(sipreg_registerer_last_response(r, &code, NULL, 0, NULL), SIPREG_OK);
        EXPECT(code == 200, "un-REGISTER answered 200, got %u", (unsigned)code);
        sipreg_state s;
        EXPECT_RC(sipreg_registerer_state(r, &s), SIPREG_OK);
        EXPECT(s == SIPREG_STATE_UNREGISTERED, "state %s", state_name(s));
        EXPECT(tracker_count(&t, SIPREG_STATE_REGISTERED) == 0, "never Registered");
        /* A register afterwards works normally. */
        EXPECT_RC(sipreg_register(r), SIPREG_OK);
        EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, WAIT), "registered afterwards");
        tracker_check(&t, "unregister_before_register");
        sipreg_registerer_free(r); /* without dispose: un-REGISTERs in the background */
        sipreg_user_agent_free(ua);
        tracker_destroy(&t);
    }
}

/* Every mutating call answers TERMINATED; accessors keep working. */
static void expect_terminated_handle(sipreg_registerer *r, bool freed) {
    EXPECT_RC(sipreg_register(r), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_unregister(r, false), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_unregister(r, true), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_dispose(r), SIPREG_ERR_TERMINATED);
    sipreg_state s = SIPREG_STATE_INITIAL;
    size_t n = 99;
    uint16_t code = 0;
    char buf[64];
    uint32_t u32;
    uint64_t u64;
    bool present;
    double d;
    sipreg_result want = freed ? SIPREG_ERR_TERMINATED : SIPREG_OK;
    EXPECT_RC(sipreg_registerer_state(r, &s), want);
    if (!freed) EXPECT(s == SIPREG_STATE_TERMINATED, "state %s", state_name(s));
    EXPECT_RC(sipreg_registerer_contact_count(r, &n), want);
    if (!freed) EXPECT(n == 0, "no contacts after dispose, got %zu", n);
    EXPECT_RC(sipreg_registerer_last_response(r, &code, buf, sizeof buf, &n), want);
    EXPECT_RC(sipreg_registerer_retry_after(r, &u32, &present), want);
    EXPECT_RC(sipreg_registerer_next_retry(r, &d), want);
    EXPECT_RC(sipreg_registerer_failure_count(r, &u32), want);
    EXPECT_RC(sipreg_registerer_retransmissions(r, &u64), want);
    if (freed) {
        EXPECT_RC(sipreg_registerer_contact(r, 0, buf, sizeof buf, &n), SIPREG_ERR_TERMINATED);
        EXPECT_RC(sipreg_registerer_set_state_callback(r, NULL, NULL), SIPREG_ERR_TERMINATED);
        EXPECT_RC(sipreg_registerer_set_event_callback(r, NULL, NULL), SIPREG_ERR_TERMINATED);
    }
}

static void dispose_twice_and_calls_after_dispose(void) {
    tracker t;
    tracker_init(&t);
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, &t) : NULL;
    if (!r) goto out;
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, WAIT), "registered");
    EXPECT_RC(sipreg_dispose(r), SIPREG_OK);
    /* At once, before Terminated arrives. */
    EXPECT_RC(sipreg_dispose(r), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_register(r), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_unregister(r, false), SIPREG_ERR_TERMINATED);
    EXPECT(tracker_wait(&t, SIPREG_STATE_TERMINATED, 1, WAIT), "terminated");
    EXPECT(tracker_last(&t) == SIPREG_STATE_TERMINATED, "Terminated is last");
    /* Disposing a registered registerer un-registers first. */
    EXPECT(tracker_count(&t, SIPREG_STATE_UNREGISTERED) == 1, "Unregistered before Terminated (%d)",
           tracker_count(&t, SIPREG_STATE_UNREGISTERED));
    expect_terminated_handle(r, false);
    t_sleep_ms(200);
    EXPECT(tracker_count(&t, SIPREG_STATE_TERMINATED) == 1, "Terminated once");
    tracker_check(&t, "dispose_twice");

    /* Dispose of an Initial registerer: Terminated without any request. */
    tracker t2;
    tracker_init(&t2);
    sipreg_registerer *r2 = make_reg(ua, g.uri, 300, &t2);
    if (r2) {
        EXPECT_RC(sipreg_dispose(r2), SIPREG_OK);
        EXPECT_RC(sipreg_dispose(r2), SIPREG_ERR_TERMINATED);
        EXPECT(tracker_wait(&t2, SIPREG_STATE_TERMINATED, 1, WAIT), "initial registerer terminated");
        expect_terminated_handle(r2, false);
        tracker_check(&t2, "dispose initial");
        sipreg_registerer_free(r2);
        expect_terminated_handle(r2, true);
    }
    tracker_destroy(&t2);
out:
    sipreg_registerer_free(r);
    if (r) expect_terminated_handle(r, true);
    sipreg_user_agent_free(ua);
    tracker_destroy(&t);
}

static void calls_after_free_and_free_twice(void) {
    sipreg_user_agent *ua = make_ua(slot++, 4);
    if (!ua) return;
    sipreg_registerer *r = make_reg(ua, g.uri, 300, NULL);
    if (!r) goto out;
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    sipreg_registerer_free(r); /* while the REGISTER is in flight */
    expect_terminated_handle(r, true);
    sipreg_registerer_free(r); /* twice: reported, no crash */
    sipreg_registerer_free(r);
    expect_terminated_handle(r, true);
    /* Other handles are unaffected. */
    sipreg_registerer *r2 = make_reg(ua, g.uri, 300, NULL);
    sipreg_state s;
    if (r2) {
        EXPECT_RC(sipreg_registerer_state(r2, &s), SIPREG_OK);
        sipreg_registerer_free(r2);
    }
out:
    sipreg_user_agent_free(ua);
}

/* ---- free without dispose: no callback after free returns ------------------ */

struct heap_probe {
    unsigned magic;
    volatile int calls;
    volatile int events;
    char scratch[64];
};

static void slow_state_cb(void *ud, sipreg_registerer *r, sipreg_state s) {
    struct heap_probe *p = ud;
    (void)r;
    /* Touch the heap object (ASan / valgrind flag this after it was freed). */
    p->calls++;
    snprintf(p->scratch, sizeof p->scratch, "state %d magic %u", (int)s, p->magic);
    t_sleep_ms(3); /* widen the window in which free() races with this callback */
    p->calls++;
}

static void slow_event_cb(void *ud, sipreg_registerer *r, const sipreg_event *ev) {
    struct heap_probe *p = ud;
    (void)r;
    p->events++;
    snprintf(p->scratch, sizeof p->scratch, "event %d %u", (int)ev->kind, (unsigned)ev->status_code);
    t_sleep_ms(2);
    p->events++;
}

static void free_without_dispose(void) {
    sipreg_user_agent *ua = make_ua(slot++, 4);
    if (!ua) return;
    int rounds = t_slow() ? 6 : 25;
    int racing = 0;
    for (int i = 0; i < rounds; i++) {
        struct heap_probe *ps = calloc(1, sizeof *ps), *pe = calloc(1, sizeof *pe);
        ps->magic = pe->magic = 0xC0FFEE;
        sipreg_registerer *r = make_reg(ua, g.uri, 300, NULL);
        if (!r) {
            free(ps);
            free(pe);
            break;
        }
        EXPECT_RC(sipreg_registerer_set_state_callback(r, slow_state_cb, ps), SIPREG_OK);
        EXPECT_RC(sipreg_registerer_set_event_callback(r, slow_event_cb, pe), SIPREG_OK);
        EXPECT_RC(sipreg_register(r), SIPREG_OK);
        /* Free at different points: before, during and after the exchange. */
        t_sleep_ms((unsigned)(i % 8) * 3);
        if (i == rounds - 1) {
            /* The last round frees a Registered registerer. */
            for (int k = 0; k < 200 && ps->calls == 0; k++) t_sleep_ms(10);
        }
        if ((ps->calls & 1) || (pe->events & 1)) racing++;
        sipreg_stats before;
        sipreg_user_agent_stats(ua, &before);
        sipreg_registerer_free(r);
        /* No callback may be running or start now: poison and release the memory. */
        int c = ps->calls, e = pe->events;
        EXPECT(!(c & 1) && !(e & 1), "a callback was still running when free returned (round %d)", i);
        memset(ps, 0xdd, sizeof *ps);
        memset(pe, 0xdd, sizeof *pe);
        free(ps);
        free(pe);
        if (i == rounds - 1) {
            /* Freed while Registered: the background dispose sends an un-REGISTER. */
            sipreg_stats after = before;
            for (int k = 0; k < 300 && after.sent == before.sent; k++) {
                t_sleep_ms(10);
                sipreg_user_agent_stats(ua, &after);
            }
            EXPECT(after.sent > before.sent, "an un-REGISTER after freeing a registered registerer (sent %llu -> %llu)",
                   (unsigned long long)before.sent, (unsigned long long)after.sent);
        }
    }
    printf("[%d/%d rounds freed during a callback] ", racing, rounds);
    /* Late callbacks (a bug) would hit the freed memory under the sanitizer
       while the user agent frees what is left. */
    EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
}

/* ---- freeing the user agent with live registerers ------------------------- */

static void user_agent_free_with_live_registerers(void) {
    const double shutdown = 1.0;
    tracker t[3];
    for (int i = 0; i < 3; i++) tracker_init(&t[i]);
    int bh_port = 0;
    int bh = blackhole_udp(&bh_port);
    char bh_uri[64];
    snprintf(bh_uri, sizeof bh_uri, "sip:127.0.0.1:%d", bh_port);
    sipreg_user_agent *ua = make_ua(slot++, shutdown);
    sipreg_registerer *r[3] = {NULL, NULL, NULL};
    if (!ua) goto out;
    r[0] = make_reg(ua, g.uri, 300, &t[0]); /* will be Registered */
    r[1] = make_reg(ua, g.uri, 300, &t[1]); /* stays Initial */
    r[2] = make_reg(ua, bh_uri, 300, &t[2]); /* REGISTER in flight, never answered */
    if (!r[0] || !r[1] || !r[2]) goto out;
    EXPECT_RC(sipreg_register(r[0]), SIPREG_OK);
    EXPECT(tracker_wait(&t[0], SIPREG_STATE_REGISTERED, 1, WAIT), "registered");
    EXPECT_RC(sipreg_register(r[2]), SIPREG_OK);
    /* How long the free may wait for the un-REGISTERs (the shutdown timeout)
       is the library's rule; here it returns and every registerer ends. */
    EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
    ua = NULL;
    for (int i = 0; i < 3; i++) {
        EXPECT(tracker_wait(&t[i], SIPREG_STATE_TERMINATED, 1, WAIT), "registerer %d terminated", i);
        expect_terminated_handle(r[i], false);
        tracker_check(&t[i], "ua free");
    }
    EXPECT(tracker_count(&t[0], SIPREG_STATE_UNREGISTERED) == 1, "the registered one was un-REGISTERed");
out:
    for (int i = 0; i < 3; i++) {
        sipreg_registerer_free(r[i]);
        if (r[i]) expect_terminated_handle(r[i], true);
    }
    if (ua) sipreg_user_agent_free(ua);
    close(bh);
    for (int i = 0; i < 3; i++) tracker_destroy(&t[i]);
}

/* ---- buffer too small --------------------------------------------------------- */

static void buffer_too_small(void) {
    tracker t;
    tracker_init(&t);
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, &t) : NULL;
    if (!r) goto out;
    size_t n = 0, needed = 0;
    char small[4];
    /* No contacts yet: index 0 is out of range. */
    EXPECT_RC(sipreg_registerer_contact_count(r, &n), SIPREG_OK);
    EXPECT(n == 0, "no contacts before registering");
    EXPECT_RC(sipreg_registerer_contact(r, 0, small, sizeof small, &needed), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    if (!tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, WAIT)) {
        t_fail(__FILE__, __LINE__, "not registered");
        goto out;
    }
    EXPECT_RC(sipreg_registerer_contact_count(r, &n), SIPREG_OK);
    EXPECT(n >= 1, "a contact after registering");
    /* Size query: NULL buffer with length 0. */
    needed = 0;
    EXPECT_RC(sipreg_registerer_contact(r, 0, NULL, 0, &needed), SIPREG_ERR_BUFFER_TOO_SMALL);
    EXPECT(needed > 10 && needed < 512, "needed %zu", needed);
    /* One byte short, in an exactly-sized heap block (ASan would see an overflow). */
    if (needed > 1) {
        char *b = malloc(needed - 1);
        memset(b, 'X', needed - 1);
        size_t again = 0;
        EXPECT_RC(sipreg_registerer_contact(r, 0, b, needed - 1, &again), SIPREG_ERR_BUFFER_TOO_SMALL);
        EXPECT(again == needed, "needed reported %zu then %zu", needed, again);
        int untouched = 1;
        for (size_t i = 0; i < needed - 1; i++) untouched &= b[i] == 'X';
        EXPECT(untouched, "a too-small buffer is left untouched");
        EXPECT_RC(sipreg_registerer_contact(r, 0, b, 1, NULL), SIPREG_ERR_BUFFER_TOO_SMALL);
        free(b);
        b = malloc(needed);
        again = 0;
        EXPECT_RC(sipreg_registerer_contact(r, 0, b, needed, &again), SIPREG_OK);
        EXPECT(strlen(b) == needed - 1, "copied %zu chars, needed %zu", strlen(b), needed);
        EXPECT(strncmp(b, "sip:", 4) == 0, "contact %s", b);
        free(b);
    }
    EXPECT_RC(sipreg_registerer_contact(r, n, small, sizeof small, &needed), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_registerer_contact(r, (size_t)-1, small, sizeof small, &needed), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_registerer_contact(r, 0, NULL, 64, &needed), SIPREG_ERR_NULL_ARGUMENT);

    /* last_response: "OK" needs 3 bytes. */
    uint16_t code = 0;
    needed = 0;
    EXPECT_RC(sipreg_registerer_last_response(r, &code, NULL, 0, &needed), SIPREG_OK);
    EXPECT(code == 200, "code %u", (unsigned)code);
    EXPECT(needed >= 2, "needed %zu", needed);
    char *b = malloc(needed);
    size_t again = 0;
    code = 0;
    EXPECT_RC(sipreg_registerer_last_response(r, &code, b, needed - 1, &again), SIPREG_ERR_BUFFER_TOO_SMALL);
    EXPECT(again == needed, "needed %zu then %zu", needed, again);
    EXPECT(code == 200, "the code is still written with a small buffer (got %u)", (unsigned)code);
    EXPECT_RC(sipreg_registerer_last_response(r, &code, b, needed, &again), SIPREG_OK);
    EXPECT(strlen(b) == needed - 1, "reason \"%s\"", b);
    free(b);
    EXPECT_RC(sipreg_dispose(r), SIPREG_OK);
    EXPECT(tracker_wait(&t, SIPREG_STATE_TERMINATED, 1, WAIT), "terminated");
out:
    sipreg_registerer_free(r);
    sipreg_user_agent_free(ua);
    tracker_destroy(&t);
}

/* ---- sipreg_registerer_new racing sipreg_user_agent_free ------------------- */

struct maker {
    sipreg_user_agent *ua;
    atomic_int go, stop, n;
    sipreg_registerer *made[4096];
};

static void *make_registerers(void *arg) {
    struct maker *m = arg;
    while (!m->go) {
    }
    while (!m->stop && m->n < 4096) {
        sipreg_registerer *r = NULL;
        sipreg_result rc = sipreg_registerer_new(m->ua, NULL, NULL, NULL, &r);
        if (rc != SIPREG_OK) {
            if (rc != SIPREG_ERR_TERMINATED)
                t_fail(__FILE__, __LINE__, "registerer_new during user_agent_free: %s", sipreg_result_str(rc));
            break;
        }
        m->made[m->n++] = r;
        /* Under valgrind (one thread runs at a time) a spinning maker would
           starve the freeing thread until the array is full. */
        if (t_slow() && m->n % 32 == 0) sched_yield();
    }
    return NULL;
}

/* Polls the state of `r` until it is Terminated (true) or `seconds` passed. */
static bool wait_terminated(sipreg_registerer *r, double seconds) {
    double end = t_now() + t_timeout(seconds);
    for (;;) {
        sipreg_state s = SIPREG_STATE_INITIAL;
        sipreg_registerer_state(r, &s);
        if (s == SIPREG_STATE_TERMINATED) return true;
        if (t_now() >= end) return false;
        t_sleep_ms(5);
    }
}

/*
 * Registerers created while another thread frees their user agent: each
 * either fails (TERMINATED) or is Terminated once user_agent_free returned.
 * A REGISTER in flight to a black hole keeps the user agent in its "freeing"
 * phase for the whole shutdown bound, which is the window of the race.
 */
static void registerer_new_racing_user_agent_free(void) {
    const double shutdown = 0.3;
    int rounds = t_slow() ? 2 : 4, late_alive = 0, total = 0;
    int bh_port = 0;
    int bh = blackhole_udp(&bh_port);
    char bh_uri[64];
    snprintf(bh_uri, sizeof bh_uri, "sip:127.0.0.1:%d", bh_port);
    for (int round = 0; round < rounds; round++) {
        struct maker *m = calloc(1, sizeof *m);
        m->ua = make_ua(slot++, shutdown);
        sipreg_registerer *r0 = m->ua ? make_reg(m->ua, bh_uri, 300, NULL) : NULL;
        if (!r0) {
            if (m->ua) sipreg_user_agent_free(m->ua);
            free(m);
            break;
        }
        EXPECT_RC(sipreg_register(r0), SIPREG_OK); /* never answered */
        pthread_t th;
        pthread_create(&th, NULL, make_registerers, m);
        m->go = 1;
        t_sleep_ms(1);
        EXPECT_RC(sipreg_user_agent_free(m->ua), SIPREG_OK);
        m->stop = 1;
        pthread_join(th, NULL);
        for (int i = 0; i < m->n; i++) {
            if (!wait_terminated(m->made[i], WAIT) || sipreg_register(m->made[i]) != SIPREG_ERR_TERMINATED)
                late_alive++;
        }
        total += m->n;
        for (int i = 0; i < m->n; i++) sipreg_registerer_free(m->made[i]);
        sipreg_registerer_free(r0);
        free(m);
    }
    close(bh);
    printf("[%d made during %d frees; %d still usable afterwards] ", total, rounds, late_alive);
    EXPECT(late_alive == 0, "%d registerer(s) created during user_agent_free stayed usable", late_alive);
}

int main(void) {
    printf("lifecycle:\n");
    if (!registrar_start(&g)) {
        fprintf(stderr, "no registrar\n");
        return 1;
    }
    printf("  (registrar: %s at %s)\n", g.kamailio ? "Kamailio" : "built-in", g.uri);
    RUN(register_twice);
    RUN(unregister_before_register);
    RUN(dispose_twice_and_calls_after_dispose);
    RUN(calls_after_free_and_free_twice);
    RUN(free_without_dispose);
    RUN(user_agent_free_with_live_registerers);
    RUN(buffer_too_small);
    RUN(registerer_new_racing_user_agent_free);
    registrar_stop(&g);
    return t_finish("lifecycle");
}
