/*
 * Shared helpers for the C boundary tests: check macros, a state tracker fed
 * by the library's callbacks, registrar selection (the real Kamailio from
 * SIPREG_KAMAILIO_PORT, else a minimal built-in UDP registrar on loopback),
 * and loopback "closed" / "black hole" ports.
 */
#ifndef SIPREG_TEST_COMMON_H
#define SIPREG_TEST_COMMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sipreg.h"

/* Number of failed checks so far; main returns non-zero when it is not 0. */
extern int t_failures;

/* Reports a failed check (file:line, message) and counts it. */
void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Checks that `call` returns `want`; prints the call, both codes and the last error otherwise. */
#define EXPECT_RC(call, want)                                                              \
    do {                                                                                   \
        sipreg_result got_ = (call);                                                       \
        sipreg_result want_ = (want);                                                      \
        if (got_ != want_)                                                                 \
            t_fail(__FILE__, __LINE__, "%s: got %s, want %s (last error: %s)", #call,      \
                   sipreg_result_str(got_), sipreg_result_str(want_), sipreg_last_error()); \
    } while (0)

/* Checks a condition. */
#define EXPECT(cond, ...)                                           \
    do {                                                            \
        if (!(cond)) {                                              \
            t_fail(__FILE__, __LINE__, "expected " #cond ": " __VA_ARGS__); \
        }                                                           \
    } while (0)

/* A call that must succeed for the test to go on; aborts the test otherwise. */
#define MUST(call)                                                                         \
    do {                                                                                   \
        sipreg_result got_ = (call);                                                       \
        if (got_ != SIPREG_OK) {                                                           \
            t_fail(__FILE__, __LINE__, "%s: %s (%s) -- giving up", #call,                  \
                   sipreg_result_str(got_), sipreg_last_error());                          \
            return;                                                                        \
        }                                                                                  \
    } while (0)

/* Runs one test function and prints its name and outcome. */
#define RUN(fn)                                                                        \
    do {                                                                               \
        int before_ = t_failures;                                                      \
        double t0_ = t_now();                                                          \
        printf("  %-52s ", #fn);                                                       \
        fflush(stdout);                                                                \
        fn();                                                                          \
        printf("%s (%.2f s)\n", t_failures == before_ ? "ok" : "FAILED", t_now() - t0_); \
        fflush(stdout);                                                                \
    } while (0)

/* Prints the summary and gives main's exit status. */
int t_finish(const char *program);

/* Monotonic seconds. */
double t_now(void);
void t_sleep_ms(unsigned ms);

/* Whether a command-prefix runner (valgrind) is in use: SIPREG_TEST_SLOW=1. */
bool t_slow(void);
/* Timeout scaled for slow runners. */
double t_timeout(double seconds);

/* ---- state tracking ------------------------------------------------------ */

#define TRACK_MAX 256

/* Records every state callback and event callback of one registerer. */
typedef struct tracker {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int nstates;
    sipreg_state states[TRACK_MAX];
    int counts[4];               /* per state */
    int responses;               /* final responses seen (event callback) */
    uint16_t last_status;
    int bad_state_value;         /* a callback passed a state outside 0..3 */
    int repeated_state;          /* the same state twice in a row */
    sipreg_registerer *handle;   /* the handle the callbacks were given */
    int wrong_handle;            /* a callback got a different handle */
} tracker;

void tracker_init(tracker *t);
void tracker_destroy(tracker *t);
/* The state callback: user_data is a tracker*. */
void tracker_on_state(void *user_data, sipreg_registerer *r, sipreg_state s);
/* The event callback: user_data is a tracker*. */
void tracker_on_event(void *user_data, sipreg_registerer *r, const sipreg_event *ev);
/* Waits until state `s` has been reported at least `n` times in total. */
bool tracker_wait(tracker *t, sipreg_state s, int n, double seconds);
/* Waits until at least `n` final responses were reported. */
bool tracker_wait_responses(tracker *t, int n, double seconds);
int tracker_count(tracker *t, sipreg_state s);
sipreg_state tracker_last(tracker *t);
/* Checks the ordering rules (no repeats, valid values, right handle). */
void tracker_check(tracker *t, const char *what);

/* ---- registrar --------------------------------------------------------- */

typedef struct registrar {
    bool kamailio;          /* the real Kamailio (SIPREG_KAMAILIO_PORT) */
    int port;
    char uri[96];           /* "sip:127.0.0.1:PORT" */
    /* built-in registrar */
    int fd;
    pthread_t thread;
    volatile int stop;
    volatile long handled;
} registrar;

/* Starts using Kamailio if SIPREG_KAMAILIO_PORT is set, else a built-in UDP registrar. */
bool registrar_start(registrar *g);
void registrar_stop(registrar *g);

/* A distinct user for slot `k` of this process: aor "sip:userN@127.0.0.1", password "pw-userN". */
void test_user(int k, char *aor, size_t aor_len, char *password, size_t pw_len);

/*
 * A user agent for test user `k` with its password, short timers (T1 0.1 s)
 * and a shutdown timeout of `shutdown` seconds. NULL on failure (reported).
 */
sipreg_user_agent *make_ua(int k, double shutdown);

/* A registerer on `ua` to `registrar_uri` with `expires`, retry off, tracked by `t` (state + event). */
sipreg_registerer *make_reg(sipreg_user_agent *ua, const char *registrar_uri, uint32_t expires, tracker *t);

/* A loopback UDP port nobody listens on (bound, then closed: ICMP port unreachable). */
int closed_udp_port(void);
/* A bound UDP socket that never answers (no ICMP either); returns its fd, port in *port. */
int blackhole_udp(int *port);

const char *state_name(sipreg_state s);

#endif
