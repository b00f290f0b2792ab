/*
 * Re-entrancy: library calls from inside the state / event callbacks (which
 * run on the worker thread): unregister, dispose, register, replacing the
 * callback, sipreg_registerer_free of the registerer itself, and
 * sipreg_user_agent_free of its user agent. None may deadlock or crash, and
 * after a free from inside a callback that callback is the last one.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static registrar g;
static int slot = 0;

#define WAIT 10.0

/* ---- unregister then dispose from the state callback --------------------- */

struct chain {
    tracker t;
    atomic_int rc_unregister, rc_dispose, rc_dispose_again, rc_register_in_registered;
    atomic_int called_unregister, called_dispose;
};

static void chain_cb(void *ud, sipreg_registerer *r, sipreg_state s) {
    struct chain *c = ud;
    tracker_on_state(&c->t, r, s);
    if (s == SIPREG_STATE_REGISTERED && !c->called_unregister) {
        c->called_unregister = 1;
        c->rc_unregister = sipreg_unregister(r, false);
        /* A second request while the un-REGISTER was accepted: pending. */
        c->rc_register_in_registered = sipreg_register(r);
    } else if (s == SIPREG_STATE_UNREGISTERED && !c->called_dispose) {
        c->called_dispose = 1;
        c->rc_dispose = sipreg_dispose(r);
        c->rc_dispose_again = sipreg_dispose(r);
    }
}

static void unregister_and_dispose_from_callback(void) {
    struct chain *c = calloc(1, sizeof *c);
    tracker_init(&c->t);
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, NULL) : NULL;
    if (!r) goto out;
    c->t.handle = r;
    EXPECT_RC(sipreg_registerer_set_state_callback(r, chain_cb, c), SIPREG_OK);
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    EXPECT(tracker_wait(&c->t, SIPREG_STATE_TERMINATED, 1, WAIT), "Terminated after the chain");
    EXPECT(c->rc_unregister == SIPREG_OK, "unregister from callback: %s", sipreg_result_str(c->rc_unregister));
    EXPECT(c->rc_register_in_registered == SIPREG_ERR_REQUEST_PENDING, "register right after: %s",
           sipreg_result_str(c->rc_register_in_registered));
    EXPECT(c->rc_dispose == SIPREG_OK, "dispose from callback: %s", sipreg_result_str(c->rc_dispose));
    EXPECT(c->rc_dispose_again == SIPREG_ERR_TERMINATED, "second dispose from callback: %s",
           sipreg_result_str(c->rc_dispose_again));
    EXPECT(c->t.nstates == 3, "Registered, Unregistered, Terminated: %d transitions", c->t.nstates);
    tracker_check(&c->t, "chain");
out:
    sipreg_registerer_free(r);
    sipreg_user_agent_free(ua);
    tracker_destroy(&c->t);
    free(c);
}

/* ---- dispose from the event callback on the first final response ------------ */

struct on_response {
    tracker t;
    atomic_int rc, done;
};

static void dispose_on_response(void *ud, sipreg_registerer *r, const sipreg_event *ev) {
    struct on_response *o = ud;
    tracker_on_event(&o->t, r, ev);
    if (ev->kind == SIPREG_EVENT_RESPONSE && !o->done) {
        o->done = 1;
        o->rc = sipreg_dispose(r);
    }
}

static void dispose_from_event_callback(void) {
    struct on_response *o = calloc(1, sizeof *o);
    tracker_init(&o->t);
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, &o->t) : NULL;
    if (!r) goto out;
    EXPECT_RC(sipreg_registerer_set_event_callback(r, dispose_on_response, o), SIPREG_OK);
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    EXPECT(tracker_wait(&o->t, SIPREG_STATE_TERMINATED, 1, WAIT), "terminated");
    EXPECT(o->rc == SIPREG_OK, "dispose from the event callback: %s", sipreg_result_str(o->rc));
    tracker_check(&o->t, "dispose on response");
out:
    sipreg_registerer_free(r);
    sipreg_user_agent_free(ua);
    tracker_destroy(&o->t);
    free(o);
}

/* ---- sipreg_registerer_free from inside its own callback -------------------- */

struct self_free {
    atomic_int freed;            /* the callback freed the registerer */
    atomic_int after_free;       /* callbacks after that (must stay 0) */
    atomic_int states;
    atomic_int rc_after;         /* a call on the handle right after the free */
    sipreg_state freed_in;
};

static void self_free_state(void *ud, sipreg_registerer *r, sipreg_state s) {
    struct self_free *f = ud;
    if (f->freed) {
        f->after_free++;
        return;
    }
    f->states++;
    if (s == SIPREG_STATE_REGISTERED) {
        f->freed_in = s;
        sipreg_registerer_free(r);
        f->freed = 1;
        f->rc_after = sipreg_register(r);
        sipreg_registerer_free(r); /* twice, from the callback: no crash */
    }
}

static void self_free_event(void *ud, sipreg_registerer *r, const sipreg_event *ev) {
    struct self_free *f = ud;
    (void)r;
    (void)ev;
    if (f->freed) f->after_free++;
}

static void free_from_own_callback(void) {
    /* Static: if a callback does run after the free, it is counted, not a use-after-free. */
    static struct self_free f;
    memset(&f, 0, sizeof f);
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, NULL) : NULL;
    if (!r) goto out;
    EXPECT_RC(sipreg_registerer_set_state_callback(r, self_free_state, &f), SIPREG_OK);
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    for (int i = 0; i < (int)(t_timeout(WAIT) * 100) && !f.freed; i++) t_sleep_ms(10);
    EXPECT(f.freed, "the callback freed the registerer");
    /* The background dispose (un-REGISTER, Terminated) must stay silent. */
    t_sleep_ms(t_slow() ? 2000 : 500);
    EXPECT(f.after_free == 0, "%d callback(s) after sipreg_registerer_free from inside a callback", (int)f.after_free);
    EXPECT(f.rc_after == SIPREG_ERR_TERMINATED, "a call after the free: %s", sipreg_result_str(f.rc_after));
    EXPECT_RC(sipreg_register(r), SIPREG_ERR_TERMINATED);
    sipreg_state s;
    EXPECT_RC(sipreg_registerer_state(r, &s), SIPREG_ERR_TERMINATED);
    sipreg_registerer_free(r); /* the caller's own free later: reported, no crash */
out:
    sipreg_user_agent_free(ua);
}

/*
 * The same, with an event callback installed too: the state callback frees
 * the registerer; the event callback for that same state change must not run
 * afterwards ("No callback for it runs after this returns (unless called from
 * inside one of its own callbacks, which then is the last)").
 */
static void free_from_state_callback_silences_event_callback(void) {
    static struct self_free f;
    memset(&f, 0, sizeof f);
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, NULL) : NULL;
    if (!r) goto out;
    EXPECT_RC(sipreg_registerer_set_state_callback(r, self_free_state, &f), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_set_event_callback(r, self_free_event, &f), SIPREG_OK);
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    for (int i = 0; i < (int)(t_timeout(WAIT) * 100) && !f.freed; i++) t_sleep_ms(10);
    EXPECT(f.freed, "the callback freed the registerer");
    t_sleep_ms(t_slow() ? 2000 : 500);
    EXPECT(f.after_free == 0, "%d callback(s) after sipreg_registerer_free from inside the state callback",
           (int)f.after_free);
out:
    sipreg_user_agent_free(ua);
}

/* ---- freeing the user agent from inside a callback (must not wait / deadlock) */

struct ua_free {
    sipreg_user_agent *ua;
    atomic_int rc, done;
    tracker t;
};

static void free_ua_cb(void *ud, sipreg_registerer *r, sipreg_state s) {
    struct ua_free *u = ud;
    tracker_on_state(&u->t, r, s);
    if (s == SIPREG_STATE_REGISTERED && !u->done) {
        u->rc = sipreg_user_agent_free(u->ua);
        u->done = 1;
    }
}

static void user_agent_free_from_callback(void) {
    struct ua_free *u = calloc(1, sizeof *u);
    tracker_init(&u->t);
    /* A long shutdown timeout: a free that waited inside the callback (where
       the worker cannot finish the un-REGISTER) would block it for 60 s, and
       Terminated would not come within WAIT. */
    u->ua = make_ua(slot++, 60);
    sipreg_registerer *r = u->ua ? make_reg(u->ua, g.uri, 300, NULL) : NULL;
    if (!r) {
        if (u->ua) sipreg_user_agent_free(u->ua);
        goto out;
    }
    u->t.handle = r;
    EXPECT_RC(sipreg_registerer_set_state_callback(r, free_ua_cb, u), SIPREG_OK);
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    EXPECT(tracker_wait(&u->t, SIPREG_STATE_TERMINATED, 1, WAIT), "terminated after the user agent was freed");
    EXPECT(u->rc == SIPREG_OK, "user_agent_free from a callback: %s", sipreg_result_str(u->rc));
    EXPECT_RC(sipreg_user_agent_free(u->ua), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_register(r), SIPREG_ERR_TERMINATED);
    tracker_check(&u->t, "ua free in callback");
    sipreg_registerer_free(r);
out:
    tracker_destroy(&u->t);
    free(u);
}

/* ---- replacing callbacks from inside a callback --------------------------------- */

struct swap {
    tracker first, second;
};

static void second_cb(void *ud, sipreg_registerer *r, sipreg_state s) {
    struct swap *w = ud;
    tracker_on_state(&w->second, r, s);
}

static void first_cb(void *ud, sipreg_registerer *r, sipreg_state s) {
    struct swap *w = ud;
    tracker_on_state(&w->first, r, s);
    if (s == SIPREG_STATE_REGISTERED) {
        sipreg_result rc = sipreg_registerer_set_state_callback(r, second_cb, w);
        if (rc != SIPREG_OK) t_fail(__FILE__, __LINE__, "set_state_callback in callback: %s", sipreg_result_str(rc));
        rc = sipreg_dispose(r);
        if (rc != SIPREG_OK) t_fail(__FILE__, __LINE__, "dispose in callback: %s", sipreg_result_str(rc));
    }
}

static void replace_callback_from_callback(void) {
    struct swap *w = calloc(1, sizeof *w);
    tracker_init(&w->first);
    tracker_init(&w->second);
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, NULL) : NULL;
    if (!r) goto out;
    EXPECT_RC(sipreg_registerer_set_state_callback(r, first_cb, w), SIPREG_OK);
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    EXPECT(tracker_wait(&w->second, SIPREG_STATE_TERMINATED, 1, WAIT), "the new callback saw Terminated");
    EXPECT(tracker_count(&w->first, SIPREG_STATE_TERMINATED) == 0, "the old callback is no longer called");
    EXPECT(w->first.nstates == 1, "old callback saw only Registered (%d)", w->first.nstates);
out:
    sipreg_registerer_free(r);
    sipreg_user_agent_free(ua);
    tracker_destroy(&w->first);
    tracker_destroy(&w->second);
    free(w);
}

/* ---- replacing callbacks from another thread while they run ------------------ */

#define PROBE_MAGIC 0xCA11BACCu

struct probe {
    unsigned magic;
    atomic_int running;
    atomic_long calls;
};

static atomic_int stale_probe_calls;

static void probe_state(void *ud, sipreg_registerer *r, sipreg_state s) {
    struct probe *p = ud;
    (void)r;
    (void)s;
    p->running++;
    if (p->magic != PROBE_MAGIC) stale_probe_calls++;
    t_sleep_ms(1);
    p->calls++;
    p->running--;
}

static void probe_event(void *ud, sipreg_registerer *r, const sipreg_event *ev) {
    struct probe *p = ud;
    (void)r;
    (void)ev;
    p->running++;
    if (p->magic != PROBE_MAGIC) stale_probe_calls++;
    p->calls++;
    p->running--;
}

struct churn {
    sipreg_registerer *r;
    atomic_int stop;
};

static void *churn_main(void *arg) {
    struct churn *c = arg;
    int i = 0;
    while (!c->stop) {
        sipreg_result rc = (i++ % 2) ? sipreg_register(c->r) : sipreg_unregister(c->r, false);
        if (rc != SIPREG_OK && rc != SIPREG_ERR_REQUEST_PENDING)
            t_fail(__FILE__, __LINE__, "churn: %s", sipreg_result_str(rc));
        t_sleep_ms(1);
    }
    return NULL;
}

/* "Off the worker thread this returns once no call of the old callback is
   running, so its user_data may then be released." */
static void replace_callbacks_while_they_run(void) {
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, NULL) : NULL;
    if (!r) {
        if (ua) sipreg_user_agent_free(ua);
        return;
    }
    struct churn c = {r, 0};
    pthread_t th;
    pthread_create(&th, NULL, churn_main, &c);
    struct probe *ps = NULL, *pe = NULL;
    long replaced = 0, calls = 0;
    double end = t_now() + (t_slow() ? 2.0 : 1.5);
    while (t_now() < end) {
        struct probe *ns = calloc(1, sizeof *ns), *ne = calloc(1, sizeof *ne);
        ns->magic = ne->magic = PROBE_MAGIC;
        EXPECT_RC(sipreg_registerer_set_state_callback(r, probe_state, ns), SIPREG_OK);
        EXPECT_RC(sipreg_registerer_set_event_callback(r, probe_event, ne), SIPREG_OK);
        if (ps) {
            if (ps->running || pe->running) t_fail(__FILE__, __LINE__, "an old callback is still running");
            calls += ps->calls + pe->calls;
            ps->magic = pe->magic = 0xdeadbeef;
            free(ps);
            free(pe);
        }
        ps = ns;
        pe = ne;
        replaced++;
        t_sleep_ms((unsigned)(replaced % 4));
    }
    c.stop = 1;
    pthread_join(th, NULL);
    /* Removing them works the same way. */
    EXPECT_RC(sipreg_registerer_set_state_callback(r, NULL, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_set_event_callback(r, NULL, NULL), SIPREG_OK);
    calls += ps->calls + pe->calls;
    ps->magic = pe->magic = 0xdeadbeef;
    free(ps);
    free(pe);
    sipreg_dispose(r);
    t_sleep_ms(200);
    printf("[%ld replacements, %ld callbacks] ", replaced, calls);
    EXPECT(calls > 0, "callbacks ran");
    EXPECT(stale_probe_calls == 0, "%d call(s) of a replaced callback", (int)stale_probe_calls);
    sipreg_registerer_free(r);
    sipreg_user_agent_free(ua);
}

int main(void) {
    printf("callbacks:\n");
    if (!registrar_start(&g)) {
        fprintf(stderr, "no registrar\n");
        return 1;
    }
    printf("  (registrar: %s at %s)\n", g.kamailio ? "Kamailio" : "built-in", g.uri);
    RUN(unregister_and_dispose_from_callback);
    RUN(dispose_from_event_callback);
    RUN(free_from_own_callback);
    RUN(free_from_state_callback_silences_event_callback);
    RUN(user_agent_free_from_callback);
    RUN(replace_callback_from_callback);
    RUN(replace_callbacks_while_they_run);
    registrar_stop(&g);
    return t_finish("callbacks");
}
