/*
 * sipreg-poll: register several accounts from one thread, with every
 * callback run by the application's own poll() loop (a sipreg_dispatcher).
 *
 *   sipreg-poll --registrar sip:127.0.0.1:5060 [--transport udp] [--expires 600]
 *               [--hold SECONDS] AOR PASSWORD [AOR PASSWORD ...]
 *
 * Prints "<aor> state <Name>" per state change and "<aor> failed <kind>
 * (<status>): <detail>" per failed attempt; holds the registrations for
 * --hold seconds (or until Ctrl-C), then disposes them all. No thread of its
 * own, no lock: the library's worker only queues the callbacks, and the
 * dispatcher's fd wakes poll() when they wait. A GLib, Qt or libuv program
 * watches the same fd in its loop (see docs/threading.md).
 *
 * Exit status 0 only if every account reached Registered and then Terminated.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sipreg.h"

#define MAX_ACCOUNTS 64

struct account {
    const char *aor;
    sipreg_user_agent *ua;
    sipreg_registerer *reg;
    int registered;
    int terminated;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs inside sipreg_dispatcher_run, on the main thread: no lock needed. */
static void on_event(void *user_data, sipreg_registerer *r, const sipreg_event *ev) {
    struct account *a = user_data;
    (void)r;
    switch (ev->kind) {
    case SIPREG_EVENT_STATE_CHANGED:
        printf("%s state %s\n", a->aor, sipreg_state_str(ev->state));
        if (ev->state == SIPREG_STATE_REGISTERED) a->registered = 1;
        if (ev->state == SIPREG_STATE_TERMINATED) a->terminated = 1;
        break;
    case SIPREG_EVENT_FAILED:
        if (ev->status_code)
            printf("%s failed %s (%u %s): %s\n", a->aor, sipreg_failure_str(ev->failure),
                   (unsigned)ev->status_code, ev->reason, ev->failure_detail);
        else
            printf("%s failed %s: %s\n", a->aor, sipreg_failure_str(ev->failure), ev->failure_detail);
        break;
    case SIPREG_EVENT_RETRY_SCHEDULED:
        printf("%s retry in %.1f s\n", a->aor, ev->retry_delay);
        break;
    default:
        break;
    }
    fflush(stdout);
}

static int count(const struct account *accts, int n, int terminated) {
    int c = 0;
    for (int i = 0; i < n; i++) c += terminated ? accts[i].terminated : accts[i].registered;
    return c;
}

/* The loop: sleep in poll() until callbacks wait (or `until`), then run them here. */
static int pump(sipreg_dispatcher *d, double until) {
    struct pollfd p = {.fd = sipreg_dispatcher_fd(d), .events = POLLIN};
    double left = until - now_s();
    int ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
    int n = poll(&p, 1, ms);
    if (n < 0 && errno != EINTR) {
        perror("poll");
        return -1;
    }
    if (n > 0) {
        uint32_t ran = 0;
        sipreg_result rc = sipreg_dispatcher_run(d, 0, &ran);
        if (rc != SIPREG_OK) {
            fprintf(stderr, "sipreg_dispatcher_run: %s\n", sipreg_last_error());
            return -1;
        }
    }
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: sipreg-poll --registrar URI [--transport T] [--expires S] [--hold S] AOR PASSWORD ...\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *registrar = NULL, *transport = NULL;
    unsigned expires = 600;
    double hold = 5.0;
    struct account accts[MAX_ACCOUNTS];
    const char *passwords[MAX_ACCOUNTS];
    int n = 0;
    memset(accts, 0, sizeof accts);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--registrar") && i + 1 < argc) registrar = argv[++i];
        else if (!strcmp(argv[i], "--transport") && i + 1 < argc) transport = argv[++i];
        else if (!strcmp(argv[i], "--expires") && i + 1 < argc) expires = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hold") && i + 1 < argc) hold = atof(argv[++i]);
        else if (argv[i][0] == '-') return usage();
        else if (i + 1 < argc && n < MAX_ACCOUNTS) {
            accts[n].aor = argv[i];
            passwords[n++] = argv[++i];
        } else return usage();
    }
    if (!registrar || n == 0) return usage();
    signal(SIGINT, on_sigint);

    sipreg_dispatcher *d = NULL;
    if (sipreg_dispatcher_new(&d) != SIPREG_OK) {
        fprintf(stderr, "sipreg_dispatcher_new: %s\n", sipreg_last_error());
        return 1;
    }
    sipreg_registerer_options *opts = NULL;
    if (sipreg_registerer_options_new(&opts) != SIPREG_OK ||
        sipreg_registerer_options_set_registrar(opts, registrar) != SIPREG_OK ||
        sipreg_registerer_options_set_expires(opts, expires) != SIPREG_OK) {
        fprintf(stderr, "options: %s\n", sipreg_last_error());
        return 1;
    }
    for (int i = 0; i < n; i++) {
        struct account *a = &accts[i];
        if (sipreg_user_agent_new(a->aor, &a->ua) != SIPREG_OK ||
            sipreg_user_agent_set_password(a->ua, passwords[i]) != SIPREG_OK ||
            (transport && sipreg_user_agent_set_transport(a->ua, transport) != SIPREG_OK) ||
            /* Before the registerer: its callbacks go where the user agent's go now. */
            sipreg_user_agent_set_dispatcher(a->ua, d) != SIPREG_OK ||
            sipreg_registerer_new(a->ua, opts, NULL, NULL, &a->reg) != SIPREG_OK ||
            sipreg_registerer_set_event_callback(a->reg, on_event, a) != SIPREG_OK ||
            sipreg_register(a->reg) != SIPREG_OK) {
            fprintf(stderr, "%s: %s\n", a->aor, sipreg_last_error());
            return 1;
        }
    }
    sipreg_registerer_options_free(opts);

    /* Hold: run callbacks as they come, until --hold passed or Ctrl-C. */
    double end = now_s() + hold;
    while (!interrupted && now_s() < end)
        if (pump(d, end) < 0) break;
    int registered = count(accts, n, 0);

    /* Dispose all at once (un-REGISTERs in parallel), then wait for Terminated, bounded. */
    for (int i = 0; i < n; i++) sipreg_dispose(accts[i].reg);
    end = now_s() + 6.0;
    while (count(accts, n, 1) < n && now_s() < end)
        if (pump(d, end) < 0) break;
    int terminated = count(accts, n, 1);

    for (int i = 0; i < n; i++) {
        sipreg_registerer_free(accts[i].reg);
        sipreg_user_agent_free(accts[i].ua);
    }
    if (sipreg_dispatcher_free(d) != SIPREG_OK) fprintf(stderr, "sipreg_dispatcher_free: %s\n", sipreg_last_error());
    printf("registered %d/%d, terminated %d/%d\n", registered, n, terminated, n);
    return registered == n && terminated == n ? 0 : 1;
}
