/*
 * 8 threads hammer shared handles for SIPREG_STRESS_SECONDS (default 10):
 * register / unregister / unregister-all / state / contacts / last response /
 * retry accessors / stats, now and then network_changed and callback
 * replacement; late in the run one registerer is disposed and another freed
 * while the others still use them. Against the real Kamailio when
 * SIPREG_KAMAILIO_PORT is set, else against a closed loopback port (every
 * REGISTER fails with an ICMP error). Mutating calls may only ever return OK,
 * REQUEST_PENDING or TERMINATED; accessors OK or TERMINATED (contact(i) also
 * INVALID_ARGUMENT when the list shrank between count and read). The state
 * callback ordering rules must hold throughout, and the library must still
 * work afterwards.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define THREADS 8
#define REGS 4

static registrar g;
static bool use_kamailio;
static char target_uri[96];
static sipreg_user_agent *uas[2];
static sipreg_registerer *regs[REGS];
static tracker trackers[REGS];
static double run_seconds;
static double t_start;
static atomic_int disposed_one, freed_one;

enum op { OP_REGISTER, OP_UNREGISTER, OP_UNREGISTER_ALL, OP_STATE, OP_CONTACTS, OP_LAST_RESPONSE, OP_RETRY, OP_STATS,
          OP_NETWORK, OP_SET_CALLBACK, OP_COUNT };
static const char *op_names[OP_COUNT] = {"register", "unregister", "unregister(all)", "state", "contacts",
                                         "last_response", "retry accessors", "stats", "network_changed",
                                         "set_event_callback"};
/* counts[op][result] */
static atomic_long counts[OP_COUNT][8];
static atomic_int bad;

static void record(enum op op, sipreg_result rc, bool allowed) {
    if ((unsigned)rc < 8) counts[op][rc]++;
    if (!allowed) {
        bad++;
        if (bad <= 20)
            t_fail(__FILE__, __LINE__, "%s returned %s (%s)", op_names[op], sipreg_result_str(rc), sipreg_last_error());
    }
}

static bool mutating_ok(sipreg_result rc) {
    return rc == SIPREG_OK || rc == SIPREG_ERR_REQUEST_PENDING || rc == SIPREG_ERR_TERMINATED;
}
static bool accessor_ok(sipreg_result rc) { return rc == SIPREG_OK || rc == SIPREG_ERR_TERMINATED; }

static unsigned xorshift(unsigned *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned seed = 0x9e3779b9u * (unsigned)(id + 1);
    long iterations = 0;
    while (t_now() - t_start < run_seconds) {
        double elapsed = t_now() - t_start;
        /* Late in the run: one registerer is disposed, another freed, while everyone still uses them. */
        if (id == 0 && elapsed > run_seconds * 0.6 && !disposed_one) {
            disposed_one = 1;
            sipreg_result rc = sipreg_dispose(regs[0]);
            record(OP_UNREGISTER, rc, mutating_ok(rc));
        }
        if (id == 1 && elapsed > run_seconds * 0.8 && !freed_one) {
            freed_one = 1;
            sipreg_registerer_free(regs[1]);
        }
        sipreg_registerer *r = regs[xorshift(&seed) % REGS];
        unsigned pick = xorshift(&seed) % 100;
        enum op op = pick < 20   ? OP_REGISTER
                     : pick < 35 ? OP_UNREGISTER
                     : pick < 38 ? OP_UNREGISTER_ALL
                     : pick < 55 ? OP_STATE
                     : pick < 72 ? OP_CONTACTS
                     : pick < 82 ? OP_LAST_RESPONSE
                     : pick < 90 ? OP_RETRY
                     : pick < 97 ? OP_STATS
                     : pick < 98 ? OP_NETWORK
                                 : OP_SET_CALLBACK;
        sipreg_result rc;
        switch (op) {
        case OP_REGISTER:
            rc = sipreg_register(r);
            record(op, rc, mutating_ok(rc));
            break;
        case OP_UNREGISTER:
        case OP_UNREGISTER_ALL:
            rc = sipreg_unregister(r, op == OP_UNREGISTER_ALL);
            record(op, rc, mutating_ok(rc));
            break;
        case OP_STATE: {
            sipreg_state s = SIPREG_STATE_INITIAL;
            rc = sipreg_registerer_state(r, &s);
            record(op, rc, accessor_ok(rc) && (unsigned)s <= SIPREG_STATE_TERMINATED);
            break;
        }
        case OP_CONTACTS: {
            size_t n = 0;
            rc = sipreg_registerer_contact_count(r, &n);
            record(op, rc, accessor_ok(rc));
            for (size_t i = 0; rc == SIPREG_OK && i < n && i < 4; i++) {
                char buf[512];
                size_t need = 0;
                sipreg_result rc2 = sipreg_registerer_contact(r, i, buf, sizeof buf, &need);
                /* The list may have shrunk since the count: index out of range is fine then. */
                record(op, rc2, accessor_ok(rc2) || rc2 == SIPREG_ERR_INVALID_ARGUMENT);
                if (rc2 == SIPREG_OK && strncmp(buf, "sip", 3) != 0) record(op, SIPREG_ERR_INTERNAL, false);
            }
            break;
        }
        case OP_LAST_RESPONSE: {
            uint16_t code;
            char buf[128];
            size_t need;
            rc = sipreg_registerer_last_response(r, &code, buf, sizeof buf, &need);
            record(op, rc, accessor_ok(rc));
            break;
        }
        case OP_RETRY: {
            uint32_t secs, fails;
            bool present;
            double next;
            uint64_t retrans;
            rc = sipreg_registerer_retry_after(r, &secs, &present);
            record(op, rc, accessor_ok(rc));
            rc = sipreg_registerer_next_retry(r, &next);
            record(op, rc, accessor_ok(rc));
            rc = sipreg_registerer_failure_count(r, &fails);
            record(op, rc, accessor_ok(rc));
            rc = sipreg_registerer_retransmissions(r, &retrans);
            record(op, rc, accessor_ok(rc));
            break;
        }
        case OP_STATS: {
            sipreg_stats st;
            rc = sipreg_user_agent_stats(uas[xorshift(&seed) % 2], &st);
            record(op, rc, rc == SIPREG_OK);
            break;
        }
        case OP_NETWORK:
            if (xorshift(&seed) % 20 == 0) { /* rare: it re-binds every socket */
                rc = sipreg_user_agent_network_changed(uas[xorshift(&seed) % 2]);
                record(op, rc, rc == SIPREG_OK);
            }
            break;
        case OP_SET_CALLBACK: {
            int k = -1;
            for (int i = 0; i < REGS; i++)
                if (regs[i] == r) k = i;
            rc = sipreg_registerer_set_event_callback(r, tracker_on_event, &trackers[k]);
            record(op, rc, accessor_ok(rc));
            break;
        }
        default:
            break;
        }
        iterations++;
        if (iterations % 64 == 0) t_sleep_ms(1);
    }
    return (void *)(intptr_t)iterations;
}

static void hammer_shared_handles(void) {
    const char *env = getenv("SIPREG_STRESS_SECONDS");
    run_seconds = env && *env ? atof(env) : 10.0;
    if (run_seconds <= 0) run_seconds = 10.0;
    for (int u = 0; u < 2; u++) {
        uas[u] = make_ua(u, 1.0);
        if (!uas[u]) return;
    }
    for (int i = 0; i < REGS; i++) {
        tracker_init(&trackers[i]);
        regs[i] = make_reg(uas[i / 2], target_uri, 60, &trackers[i]);
        if (!regs[i]) return;
    }
    printf("[%s, %.0f s] ", use_kamailio ? "Kamailio" : "closed port", run_seconds);
    fflush(stdout);
    pthread_t th[THREADS];
    t_start = t_now();
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *n;
        pthread_join(th[i], &n);
        total += (long)(intptr_t)n;
    }
    printf("\n    %ld calls by %d threads:\n", total, THREADS);
    for (int op = 0; op < OP_COUNT; op++) {
        printf("    %-20s", op_names[op]);
        for (int rc = 0; rc < 8; rc++)
            if (counts[op][rc]) printf(" %s=%ld", sipreg_result_str((sipreg_result)rc) + 7, (long)counts[op][rc]);
        printf("\n");
    }
    EXPECT(bad == 0, "%d call(s) returned a code outside the allowed set", (int)bad);
    EXPECT(counts[OP_REGISTER][SIPREG_OK] > 0, "some REGISTERs were accepted");
    if (use_kamailio) {
        /* Requests still in flight when the threads stop may be what gets
           registered (a slow machine, valgrind): wait for outcomes, bounded. */
        int registered = 0;
        double until = t_now() + t_timeout(30);
        for (;;) {
            registered = 0;
            for (int i = 0; i < REGS; i++) registered += tracker_count(&trackers[i], SIPREG_STATE_REGISTERED);
            if (registered > 0 || t_now() > until) break;
            usleep(50 * 1000);
        }
        EXPECT(registered > 0, "some registrations succeeded against Kamailio");
    }

    /* Wind down: dispose what is left; all reach Terminated within the bound. */
    for (int i = 0; i < REGS; i++) {
        if (i == 1) continue; /* freed */
        sipreg_result rc = sipreg_dispose(regs[i]);
        EXPECT(rc == SIPREG_OK || rc == SIPREG_ERR_TERMINATED, "dispose %d: %s", i, sipreg_result_str(rc));
    }
    for (int i = 0; i < REGS; i++) {
        if (i == 1) continue;
        EXPECT(tracker_wait(&trackers[i], SIPREG_STATE_TERMINATED, 1, 10), "registerer %d terminated", i);
        tracker_check(&trackers[i], "stress");
        sipreg_registerer_free(regs[i]);
    }
    sipreg_registerer_free(regs[1]); /* already freed: reported, no crash */
    for (int u = 0; u < 2; u++) EXPECT_RC(sipreg_user_agent_free(uas[u]), SIPREG_OK);
    for (int i = 0; i < REGS; i++) tracker_destroy(&trackers[i]);
}

/* The library still works after the storm. */
static void still_works_afterwards(void) {
    tracker t;
    tracker_init(&t);
    sipreg_user_agent *ua = make_ua(10, 1.0);
    sipreg_registerer *r = ua ? make_reg(ua, target_uri, 60, &t) : NULL;
    if (!r) goto out;
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    if (use_kamailio) {
        EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, 10), "a fresh registerer registers");
    } else {
        EXPECT(tracker_wait(&t, SIPREG_STATE_UNREGISTERED, 1, 10), "a fresh registerer fails fast (closed port)");
        EXPECT(t.last_status == 503 || t.last_status == 408, "synthesised failure, got %u", (unsigned)t.last_status);
    }
    EXPECT_RC(sipreg_dispose(r), SIPREG_OK);
    EXPECT(tracker_wait(&t, SIPREG_STATE_TERMINATED, 1, 10), "terminated");
out:
    sipreg_registerer_free(r);
    if (ua) sipreg_user_agent_free(ua);
    tracker_destroy(&t);
}

int main(void) {
    printf("stress:\n");
    const char *kp = getenv("SIPREG_KAMAILIO_PORT");
    use_kamailio = kp && *kp;
    if (use_kamailio) {
        registrar_start(&g);
        snprintf(target_uri, sizeof target_uri, "%s", g.uri);
    } else {
        snprintf(target_uri, sizeof target_uri, "sip:127.0.0.1:%d", closed_udp_port());
    }
    RUN(hammer_shared_handles);
    RUN(still_works_afterwards);
    return t_finish("stress");
}
