/*
 * The process-wide log callback, installed, replaced and removed over and over
 * while the worker logs heavily (REGISTER traffic plus junk datagrams, each
 * logged at DEBUG). Each installation gets its own heap object, released as
 * soon as the call that replaced it returns: a call of an old callback after
 * that is a use-after-free (AddressSanitizer / valgrind) and is also counted.
 * Also: a log callback that removes itself from inside, and one that calls
 * other library functions.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

static registrar g;
static int slot = 0;

#define MAGIC 0x10C0FFEEu

struct sink {
    unsigned magic;
    sipreg_log_level max;
    atomic_long lines;
    atomic_int running;
};

static atomic_int bad_lines, wrong_level, stale_calls;
static atomic_long total_lines;
static atomic_int stop_traffic;

static void on_log(void *ud, sipreg_log_level level, const char *msg) {
    struct sink *s = ud;
    s->running++;
    if (s->magic != MAGIC) stale_calls++;
    if (!msg || strlen(msg) > 65536) bad_lines++;
    if (level < SIPREG_LOG_ERROR || level > s->max) wrong_level++;
    s->lines++;
    total_lines++;
    s->running--;
}

/* Keeps the worker logging: register/unregister cycles and junk datagrams to our socket. */
struct traffic {
    sipreg_user_agent *ua;
    sipreg_registerer *r;
    tracker t;
    int contact_port;
};

static int contact_port(sipreg_registerer *r) {
    char buf[256];
    size_t n = 0;
    if (sipreg_registerer_contact(r, 0, buf, sizeof buf, &n) != SIPREG_OK) return 0;
    /* sip:user@127.0.0.1:PORT[;params] */
    char *at = strchr(buf, '@');
    char *colon = at ? strchr(at, ':') : NULL;
    return colon ? atoi(colon + 1) : 0;
}

static void *traffic_main(void *arg) {
    struct traffic *tr = arg;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {0};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons((uint16_t)tr->contact_port);
    const char junk[] = "this is not SIP at all";
    int i = 0;
    while (!stop_traffic) {
        if (tr->contact_port) {
            for (int k = 0; k < 20; k++) sendto(fd, junk, sizeof junk - 1, 0, (struct sockaddr *)&to, sizeof to);
        }
        /* A refresh or an un-REGISTER / re-REGISTER: INFO and DEBUG lines. */
        sipreg_result rc = (i++ % 2) ? sipreg_register(tr->r) : sipreg_unregister(tr->r, false);
        if (rc != SIPREG_OK && rc != SIPREG_ERR_REQUEST_PENDING)
            t_fail(__FILE__, __LINE__, "traffic: %s", sipreg_result_str(rc));
        t_sleep_ms(2);
    }
    close(fd);
    return NULL;
}

static void set_unset_while_logging(void) {
    struct traffic tr;
    memset(&tr, 0, sizeof tr);
    tracker_init(&tr.t);
    tr.ua = make_ua(slot++, 4);
    tr.r = tr.ua ? make_reg(tr.ua, g.uri, 300, &tr.t) : NULL;
    if (!tr.r) goto out;
    EXPECT_RC(sipreg_register(tr.r), SIPREG_OK);
    if (!tracker_wait(&tr.t, SIPREG_STATE_REGISTERED, 1, 10)) {
        t_fail(__FILE__, __LINE__, "not registered");
        goto out;
    }
    tr.contact_port = contact_port(tr.r);
    EXPECT(tr.contact_port > 0, "our contact port");
    stop_traffic = 0;
    pthread_t th;
    pthread_create(&th, NULL, traffic_main, &tr);

    double end = t_now() + (t_slow() ? 3.0 : 2.0);
    long installs = 0;
    struct sink *current = NULL;
    const sipreg_log_level levels[] = {SIPREG_LOG_DEBUG, SIPREG_LOG_INFO, SIPREG_LOG_ERROR, SIPREG_LOG_DEBUG,
                                       SIPREG_LOG_WARN};
    while (t_now() < end) {
        struct sink *next = calloc(1, sizeof *next);
        next->magic = MAGIC;
        next->max = levels[installs % 5];
        sipreg_result rc = sipreg_set_log_callback(on_log, next, next->max);
        if (rc != SIPREG_OK) t_fail(__FILE__, __LINE__, "set_log_callback: %s", sipreg_result_str(rc));
        /* The old sink is no longer called: poison and free it. */
        if (current) {
            if (current->running) t_fail(__FILE__, __LINE__, "an old log callback is still running");
            current->magic = 0xdeadbeef;
            free(current);
        }
        current = next;
        installs++;
        if (installs % 7 == 0) {
            /* Logging off (both ways), then the old sink goes too. */
            rc = (installs % 14 == 0) ? sipreg_set_log_callback(NULL, NULL, SIPREG_LOG_DEBUG)
                                      : sipreg_set_log_callback(on_log, current, SIPREG_LOG_OFF);
            if (rc != SIPREG_OK) t_fail(__FILE__, __LINE__, "logging off: %s", sipreg_result_str(rc));
            current->magic = 0xdeadbeef;
            free(current);
            current = NULL;
        }
        t_sleep_ms(installs % 3);
    }
    EXPECT_RC(sipreg_set_log_callback(NULL, NULL, SIPREG_LOG_OFF), SIPREG_OK);
    if (current) {
        current->magic = 0xdeadbeef;
        free(current);
    }
    stop_traffic = 1;
    pthread_join(th, NULL);
    t_sleep_ms(100);
    printf("[%ld installs, %ld lines] ", installs, (long)total_lines);
    EXPECT(total_lines > 0, "some lines were logged");
    EXPECT(stale_calls == 0, "%d call(s) of a replaced log callback", (int)stale_calls);
    EXPECT(bad_lines == 0, "%d bad line(s)", (int)bad_lines);
    EXPECT(wrong_level == 0, "%d line(s) above the installed level", (int)wrong_level);
    sipreg_dispose(tr.r);
    tracker_wait(&tr.t, SIPREG_STATE_TERMINATED, 1, 10);
out:
    sipreg_registerer_free(tr.r);
    if (tr.ua) sipreg_user_agent_free(tr.ua);
    tracker_destroy(&tr.t);
}

/* A log callback that removes itself, and one that calls into the library. */
static atomic_int self_unset_calls, self_unset_rc = -1;
static void self_unset(void *ud, sipreg_log_level level, const char *msg) {
    (void)ud;
    (void)level;
    (void)msg;
    if (self_unset_calls++ == 0) self_unset_rc = sipreg_set_log_callback(NULL, NULL, SIPREG_LOG_OFF);
}

static atomic_int reentrant_calls, reentrant_bad;
static void reentrant(void *ud, sipreg_log_level level, const char *msg) {
    sipreg_registerer *r = ud;
    sipreg_state s;
    (void)level;
    (void)msg;
    reentrant_calls++;
    if (sipreg_registerer_state(r, &s) != SIPREG_OK) reentrant_bad++;
    const char *e = sipreg_last_error();
    if (!e) reentrant_bad++;
}

static void log_callback_reentrancy(void) {
    tracker t;
    tracker_init(&t);
    sipreg_user_agent *ua = make_ua(slot++, 4);
    sipreg_registerer *r = ua ? make_reg(ua, g.uri, 300, &t) : NULL;
    if (!r) goto out;
    EXPECT_RC(sipreg_set_log_callback(self_unset, NULL, SIPREG_LOG_DEBUG), SIPREG_OK);
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    EXPECT(tracker_wait(&t, SIPREG_STATE_REGISTERED, 1, 10), "registered with a self-removing log callback");
    int calls = self_unset_calls;
    EXPECT(calls >= 1, "the log callback ran");
    EXPECT(self_unset_rc == SIPREG_OK, "set_log_callback from inside the log callback: %d", (int)self_unset_rc);
    /* It removed itself: no more calls. */
    int answered = t.responses;
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    EXPECT(tracker_wait_responses(&t, answered + 1, 10), "refresh answered");
    t_sleep_ms(50);
    EXPECT(self_unset_calls == calls, "the self-removed log callback was called again (%d -> %d)", calls,
           (int)self_unset_calls);

    EXPECT_RC(sipreg_set_log_callback(reentrant, r, SIPREG_LOG_DEBUG), SIPREG_OK);
    int before = t.responses;
    EXPECT_RC(sipreg_register(r), SIPREG_OK);
    EXPECT(tracker_wait_responses(&t, before + 1, 10), "refresh answered");
    EXPECT_RC(sipreg_set_log_callback(NULL, NULL, SIPREG_LOG_OFF), SIPREG_OK);
    EXPECT(reentrant_calls > 0, "the re-entrant log callback ran");
    EXPECT(reentrant_bad == 0, "library calls from the log callback failed %d times", (int)reentrant_bad);
    EXPECT_RC(sipreg_dispose(r), SIPREG_OK);
    EXPECT(tracker_wait(&t, SIPREG_STATE_TERMINATED, 1, 10), "terminated");
out:
    sipreg_set_log_callback(NULL, NULL, SIPREG_LOG_OFF);
    sipreg_registerer_free(r);
    if (ua) sipreg_user_agent_free(ua);
    tracker_destroy(&t);
}

int main(void) {
    printf("log_callback:\n");
    if (!registrar_start(&g)) {
        fprintf(stderr, "no registrar\n");
        return 1;
    }
    printf("  (registrar: %s at %s)\n", g.kamailio ? "Kamailio" : "built-in", g.uri);
    RUN(set_unset_while_logging);
    RUN(log_callback_reentrancy);
    registrar_stop(&g);
    return t_finish("log_callback");
}
