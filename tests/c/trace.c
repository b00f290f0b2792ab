/*
 * The message trace (sipreg_user_agent_set_trace_callback): every REGISTER
 * sent and every response received arrives with direction, transport, both
 * addresses and a timestamp; Authorization values are redacted (no digest
 * response, no password); no call after the callback is replaced or the user
 * agent freed (each context is released at once: a late call is a
 * use-after-free for AddressSanitizer / valgrind, and is counted); a callback
 * may call into the library, including removing itself.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common.h"

static registrar g;
static int slot = 0;

#define MAGIC 0x7ACE0001u

struct collector {
    unsigned magic;
    pthread_mutex_t lock;
    int sent, received;
    int sent_register, received_2xx, redacted_auth;
    int leaked_secret;        /* a digest response or the password in the text */
    int bad_record;           /* missing fields, wrong lengths, odd addresses */
    int64_t last_ts;
    int backwards_ts;
    char password[128];
    char remote[128];
};

static atomic_int stale_calls;

static void collector_init(struct collector *c, const char *password) {
    memset(c, 0, sizeof *c);
    c->magic = MAGIC;
    pthread_mutex_init(&c->lock, NULL);
    snprintf(c->password, sizeof c->password, "%s", password);
    /* "sip:127.0.0.1:PORT" -> "127.0.0.1:PORT" */
    snprintf(c->remote, sizeof c->remote, "%s", g.uri + 4);
}

static int64_t wall_us(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

static void on_trace(void *ud, sipreg_user_agent *ua, const sipreg_trace_record *rec) {
    struct collector *c = ud;
    if (c->magic != MAGIC) {
        stale_calls++;
        return;
    }
    pthread_mutex_lock(&c->lock);
    int sent = rec->direction == SIPREG_TRACE_SENT;
    if (!ua || !rec->message || !rec->transport || !rec->local || !rec->remote ||
        strlen(rec->message) != rec->message_len || strcmp(rec->transport, "udp") != 0 ||
        strcmp(rec->remote, c->remote) != 0 || strncmp(rec->local, "127.0.0.1:", 10) != 0 ||
        (rec->direction != SIPREG_TRACE_SENT && rec->direction != SIPREG_TRACE_RECEIVED))
        c->bad_record++;
    int64_t now = wall_us();
    if (rec->timestamp_us > now + 1000 || rec->timestamp_us < now - 60 * 1000000LL) c->bad_record++;
    if (rec->timestamp_us < c->last_ts) c->backwards_ts++;
    c->last_ts = rec->timestamp_us;
    if (sent) {
        c->sent++;
        if (!strncmp(rec->message, "REGISTER ", 9)) c->sent_register++;
        if (strstr(rec->message, "\r\nAuthorization: Digest <redacted>\r\n")) c->redacted_auth++;
        if (strstr(rec->message, "response=") || strstr(rec->message, "nonce=") ||
            strstr(rec->message, c->password))
            c->leaked_secret++;
    } else {
        c->received++;
        if (!strncmp(rec->message, "SIP/2.0 2", 9)) c->received_2xx++;
    }
    pthread_mutex_unlock(&c->lock);
}

static void messages_are_traced_and_redacted(void) {
    char aor[128], pw[128];
    int k = slot++;
    test_user(k, aor, sizeof aor, pw, sizeof pw);
    sipreg_user_agent *ua = make_ua(k, 2.0);
    if (!ua) return;
    struct collector c;
    collector_init(&c, pw);
    EXPECT_RC(sipreg_user_agent_set_trace_callback(NULL, on_trace, &c), SIPREG_ERR_NULL_ARGUMENT);
    MUST(sipreg_user_agent_set_trace_callback(ua, on_trace, &c));
    tracker t;
    tracker_init(&t);
    sipreg_registerer *r = make_reg(ua, g.uri, 60, &t);
    if (r) {
        EXPECT_RC(sipreg_register(r), SIPREG_OK);
        EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, t_timeout(5)), "registered");
        EXPECT_RC(sipreg_dispose(r), SIPREG_OK);
        EXPECT(tracker_wait(&t, SIPREG_STATE_TERMINATED, 1, t_timeout(5)), "terminated");
    }
    EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
    if (r) sipreg_registerer_free(r);
    pthread_mutex_lock(&c.lock);
    /* REGISTER (401 with Kamailio, then with credentials) and the un-REGISTER. */
    EXPECT(c.sent_register >= 2, "%d REGISTERs traced", c.sent_register);
    EXPECT(c.received >= 2 && c.received_2xx >= 2, "%d responses, %d 2xx", c.received, c.received_2xx);
    EXPECT(c.bad_record == 0, "%d malformed records", c.bad_record);
    EXPECT(c.backwards_ts == 0, "timestamps went back %d times", c.backwards_ts);
    EXPECT(c.leaked_secret == 0, "%d messages showed a secret", c.leaked_secret);
    if (g.kamailio) EXPECT(c.redacted_auth >= 2, "%d redacted Authorization headers", c.redacted_auth);
    pthread_mutex_unlock(&c.lock);
    c.magic = 0;
    tracker_destroy(&t);
}

/* Replaces and removes callbacks while REGISTERs fly, then frees user agents
   mid-transaction or with an un-REGISTER in flight; every replaced context is
   wiped and freed at once. */
static void no_call_after_replace_or_free(void) {
    int rounds = t_slow() ? 4 : 12;
    for (int i = 0; i < rounds; i++) {
        char aor[128], pw[128];
        int k = slot++;
        test_user(k, aor, sizeof aor, pw, sizeof pw);
        /* Even rounds: registered, then freed with shutdown timeout 0 and the
           un-REGISTER in flight; odd rounds: freed with the REGISTER in flight. */
        sipreg_user_agent *ua = make_ua(k, i % 2 ? 0.5 : 0.0);
        if (!ua) return;
        struct collector *cur = malloc(sizeof *cur);
        collector_init(cur, pw);
        MUST(sipreg_user_agent_set_trace_callback(ua, on_trace, cur));
        tracker t;
        tracker_init(&t);
        sipreg_registerer *r = make_reg(ua, g.uri, 60, &t);
        if (r) EXPECT_RC(sipreg_register(r), SIPREG_OK);
        if (r && i % 2 == 0) EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, t_timeout(5)), "registered");
        for (int j = 0; j < 5; j++) {
            t_sleep_ms((unsigned)(i % 3));
            struct collector *next = malloc(sizeof *next);
            collector_init(next, pw);
            EXPECT_RC(sipreg_user_agent_set_trace_callback(ua, on_trace, next), SIPREG_OK);
            cur->magic = 0;
            free(cur);
            cur = next;
        }
        t_sleep_ms((unsigned)(i % 4) * 3);
        if (i % 2) {
            EXPECT_RC(sipreg_user_agent_set_trace_callback(ua, NULL, NULL), SIPREG_OK);
            cur->magic = 0;
            free(cur);
            cur = NULL;
        }
        EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
        if (cur) {
            cur->magic = 0;
            free(cur);
        }
        if (r) sipreg_registerer_free(r);
        tracker_destroy(&t);
    }
    t_sleep_ms(200);
    EXPECT(stale_calls == 0, "%d calls after the callback was replaced or freed", (int)stale_calls);
}

struct reentrant {
    atomic_int calls;
    atomic_int stats_ok;
    atomic_int removed_ok;
};

/* Calls into the library from the trace callback, then removes itself. */
static void on_trace_reentrant(void *ud, sipreg_user_agent *ua, const sipreg_trace_record *rec) {
    struct reentrant *re = ud;
    (void)rec;
    re->calls++;
    sipreg_stats st;
    if (sipreg_user_agent_stats(ua, &st) == SIPREG_OK && st.sent >= 1) re->stats_ok++;
    if (sipreg_user_agent_set_trace_callback(ua, NULL, NULL) == SIPREG_OK) re->removed_ok++;
}

static void callback_may_call_into_the_library(void) {
    int k = slot++;
    sipreg_user_agent *ua = make_ua(k, 2.0);
    if (!ua) return;
    struct reentrant re = {0};
    MUST(sipreg_user_agent_set_trace_callback(ua, on_trace_reentrant, &re));
    tracker t;
    tracker_init(&t);
    sipreg_registerer *r = make_reg(ua, g.uri, 60, &t);
    if (r) {
        EXPECT_RC(sipreg_register(r), SIPREG_OK);
        EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, t_timeout(5)), "registered");
    }
    EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
    if (r) sipreg_registerer_free(r);
    /* The first message (the REGISTER) reached it; it removed itself, so nothing more did. */
    EXPECT(re.calls == 1, "%d calls", (int)re.calls);
    EXPECT(re.stats_ok == 1 && re.removed_ok == 1, "stats %d, removed %d", (int)re.stats_ok, (int)re.removed_ok);
    tracker_destroy(&t);
}

int main(void) {
    printf("trace:\n");
    if (!registrar_start(&g)) {
        fprintf(stderr, "no registrar\n");
        return 1;
    }
    printf("  (registrar: %s at %s)\n", g.kamailio ? "Kamailio" : "built-in", g.uri);
    RUN(messages_are_traced_and_redacted);
    RUN(no_call_after_replace_or_free);
    RUN(callback_may_call_into_the_library);
    registrar_stop(&g);
    return t_finish("trace");
}
