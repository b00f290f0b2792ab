/* Shared helpers for the C boundary tests; see common.h. */
#include "common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int t_failures = 0;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

void t_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&fail_lock);
    t_failures++;
    fprintf(stderr, "\nFAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&fail_lock);
}

int t_finish(const char *program) {
    if (t_failures) {
        printf("%s: %d check(s) FAILED\n", program, t_failures);
        return 1;
    }
    printf("%s: all checks passed\n", program);
    return 0;
}

double t_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void t_sleep_ms(unsigned ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

bool t_slow(void) {
    const char *s = getenv("SIPREG_TEST_SLOW");
    return s && *s && strcmp(s, "0") != 0;
}

double t_timeout(double seconds) { return t_slow() ? seconds * 4 : seconds; }

const char *state_name(sipreg_state s) {
    switch (s) {
    case SIPREG_STATE_INITIAL: return "Initial";
    case SIPREG_STATE_REGISTERED: return "Registered";
    case SIPREG_STATE_UNREGISTERED: return "Unregistered";
    case SIPREG_STATE_TERMINATED: return "Terminated";
    }
    return "(bad state)";
}

/* ---- tracker --------------------------------------------------------------- */

void tracker_init(tracker *t) {
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->changed, NULL);
}

void tracker_destroy(tracker *t) {
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->changed);
}

void tracker_on_state(void *user_data, sipreg_registerer *r, sipreg_state s) {
    tracker *t = user_data;
    pthread_mutex_lock(&t->lock);
    if (t->handle && r != t->handle) t->wrong_handle++;
    if ((unsigned)s > SIPREG_STATE_TERMINATED) {
        t->bad_state_value++;
    } else {
        if (t->nstates > 0 && t->states[t->nstates - 1 < TRACK_MAX ? t->nstates - 1 : TRACK_MAX - 1] == s)
            t->repeated_state++;
        if (t->nstates < TRACK_MAX) t->states[t->nstates] = s;
        else t->states[TRACK_MAX - 1] = s;
        t->nstates++;
        t->counts[s]++;
    }
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
}

void tracker_on_event(void *user_data, sipreg_registerer *r, const sipreg_event *ev) {
    tracker *t = user_data;
    pthread_mutex_lock(&t->lock);
    if (t->handle && r != t->handle) t->wrong_handle++;
    if (ev->kind == SIPREG_EVENT_RESPONSE) {
        t->responses++;
        t->last_status = ev->status_code;
        if (ev->reason == NULL) t->bad_state_value++;
    }
    pthread_cond_broadcast(&t->changed);
    pthread_mutex_unlock(&t->lock);
}

static bool wait_pred(tracker *t, double seconds, bool (*pred)(tracker *, int, int), int a, int b) {
    double end = t_now() + seconds;
    pthread_mutex_lock(&t->lock);
    bool ok = pred(t, a, b);
    while (!ok) {
        double left = end - t_now();
        if (left <= 0) break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double ms = left > 0.05 ? 50 : left * 1000; /* re-check often */
        until.tv_nsec += (long)(ms * 1e6);
        while (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->changed, &t->lock, &until);
        ok = pred(t, a, b);
    }
    pthread_mutex_unlock(&t->lock);
    return ok;
}

static bool has_state(tracker *t, int s, int n) { return t->counts[s] >= n; }
static bool has_responses(tracker *t, int n, int unused) {
    (void)unused;
    return t->responses >= n;
}

bool tracker_wait(tracker *t, sipreg_state s, int n, double seconds) {
    return wait_pred(t, t_timeout(seconds), has_state, (int)s, n);
}

bool tracker_wait_responses(tracker *t, int n, double seconds) {
    return wait_pred(t, t_timeout(seconds), has_responses, n, 0);
}

int tracker_count(tracker *t, sipreg_state s) {
    pthread_mutex_lock(&t->lock);
    int n = t->counts[s];
    pthread_mutex_unlock(&t->lock);
    return n;
}

sipreg_state tracker_last(tracker *t) {
    pthread_mutex_lock(&t->lock);
    sipreg_state s = t->nstates ? t->states[(t->nstates - 1) < TRACK_MAX ? t->nstates - 1 : TRACK_MAX - 1]
                                : SIPREG_STATE_INITIAL;
    pthread_mutex_unlock(&t->lock);
    return s;
}

void tracker_check(tracker *t, const char *what) {
    pthread_mutex_lock(&t->lock);
    if (t->bad_state_value)
        t_fail(__FILE__, __LINE__, "%s: %d callback(s) with an invalid state/reason", what, t->bad_state_value);
    if (t->repeated_state)
        t_fail(__FILE__, __LINE__, "%s: the same state was reported twice in a row (%d)", what, t->repeated_state);
    if (t->wrong_handle)
        t_fail(__FILE__, __LINE__, "%s: %d callback(s) with a different registerer handle", what, t->wrong_handle);
    if (t->counts[SIPREG_STATE_TERMINATED] > 1)
        t_fail(__FILE__, __LINE__, "%s: Terminated reported %d times", what, t->counts[SIPREG_STATE_TERMINATED]);
    pthread_mutex_unlock(&t->lock);
}

/* ---- built-in registrar ---------------------------------------------------- */

/* Copies the value of header `name` (case-insensitive, full name) from line `l`; 1 if it matched. */
static int header_is(const char *l, size_t n, const char *name) {
    size_t k = strlen(name);
    return n > k && strncasecmp(l, name, k) == 0 && l[k] == ':';
}

static void answer(registrar *g, const char *req, size_t len, struct sockaddr_in *from, socklen_t fromlen) {
    if (len < 9 || strncmp(req, "REGISTER ", 9) != 0) return; /* only REGISTER */
    char out[4096];
    size_t o = 0;
    long expires = -1;
    char contacts[1024] = "";
    size_t c = 0;
    o += (size_t)snprintf(out + o, sizeof out - o, "SIP/2.0 200 OK\r\n");
    const char *p = req, *end = req + len;
    /* skip the request line */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) return;
    p = nl + 1;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r') n--;
        if (n == 0) break; /* end of headers */
        if (header_is(p, n, "Via") || header_is(p, n, "From") || header_is(p, n, "Call-ID") ||
            header_is(p, n, "CSeq")) {
            if (o + n + 2 < sizeof out) {
                memcpy(out + o, p, n);
                o += n;
                out[o++] = '\r';
                out[o++] = '\n';
            }
        } else if (header_is(p, n, "To")) {
            if (o + n + 20 < sizeof out) {
                memcpy(out + o, p, n);
                o += n;
                o += (size_t)snprintf(out + o, sizeof out - o, ";tag=builtin\r\n");
            }
        } else if (header_is(p, n, "Expires")) {
            expires = strtol(p + 8, NULL, 10);
        } else if (header_is(p, n, "Contact")) {
            const char *lt = memchr(p, '<', n), *gt = lt ? memchr(lt, '>', n - (size_t)(lt - p)) : NULL;
            if (lt && gt) {
                /* keep only bindings that are not being removed */
                const char *params = gt + 1;
                size_t plen = n - (size_t)(params - p);
                char ptxt[512];
                snprintf(ptxt, sizeof ptxt, "%.*s", (int)plen, params);
                char *e = strstr(ptxt, "expires=");
                long ce = e ? strtol(e + 8, NULL, 10) : -1;
                if (ce != 0 && c + (size_t)(gt - lt) + 40 < sizeof contacts) {
                    c += (size_t)snprintf(contacts + c, sizeof contacts - c, "%.*s|%ld\n",
                                          (int)(gt - lt + 1), lt, ce);
                }
            }
        }
        p = nl + 1;
    }
    if (expires != 0) {
        char *line = contacts;
        while (*line) {
            char *bar = strchr(line, '|'), *eol = strchr(line, '\n');
            if (!bar || !eol) break;
            long ce = strtol(bar + 1, NULL, 10);
            long granted = ce > 0 ? ce : (expires > 0 ? expires : 600);
            o += (size_t)snprintf(out + o, sizeof out - o, "Contact: %.*s;expires=%ld\r\n", (int)(bar - line), line,
                                  granted);
            line = eol + 1;
        }
    }
    o += (size_t)snprintf(out + o, sizeof out - o, "Content-Length: 0\r\n\r\n");
    if (o < sizeof out) {
        sendto(g->fd, out, o, 0, (struct sockaddr *)from, fromlen);
        g->handled++;
    }
}

static void *registrar_main(void *arg) {
    registrar *g = arg;
    char buf[8192];
    while (!g->stop) {
        struct pollfd pfd = {g->fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) continue;
        struct sockaddr_in from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(g->fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &fromlen);
        if (n <= 0) continue;
        buf[n] = 0;
        answer(g, buf, (size_t)n, &from, fromlen);
    }
    return NULL;
}

bool registrar_start(registrar *g) {
    memset(g, 0, sizeof *g);
    g->fd = -1;
    const char *kp = getenv("SIPREG_KAMAILIO_PORT");
    if (kp && *kp) {
        g->kamailio = true;
        g->port = atoi(kp);
        snprintf(g->uri, sizeof g->uri, "sip:127.0.0.1:%d", g->port);
        return g->port > 0;
    }
    g->fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (g->fd < 0) return false;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (bind(g->fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(g->fd, (struct sockaddr *)&a, &al) != 0) {
        close(g->fd);
        return false;
    }
    g->port = ntohs(a.sin_port);
    snprintf(g->uri, sizeof g->uri, "sip:127.0.0.1:%d", g->port);
    if (pthread_create(&g->thread, NULL, registrar_main, g) != 0) {
        close(g->fd);
        return false;
    }
    return true;
}

void registrar_stop(registrar *g) {
    if (g->kamailio || g->fd < 0) return;
    g->stop = 1;
    pthread_join(g->thread, NULL);
    close(g->fd);
    g->fd = -1;
}

void test_user(int k, char *aor, size_t aor_len, char *password, size_t pw_len) {
    /* 10+ digits: distinct from the Rust tests' users (at most 8 digits). */
    unsigned long n = 1000000000UL + (unsigned long)(getpid() % 1000000) * 1000UL + (unsigned long)k;
    snprintf(aor, aor_len, "sip:user%lu@127.0.0.1", n);
    snprintf(password, pw_len, "pw-user%lu", n);
}

sipreg_user_agent *make_ua(int k, double shutdown) {
    char aor[128], pw[128];
    test_user(k, aor, sizeof aor, pw, sizeof pw);
    sipreg_user_agent *ua = NULL;
    sipreg_result rc = sipreg_user_agent_new(aor, &ua);
    if (rc != SIPREG_OK) {
        t_fail(__FILE__, __LINE__, "user_agent_new(%s): %s (%s)", aor, sipreg_result_str(rc), sipreg_last_error());
        return NULL;
    }
    if ((rc = sipreg_user_agent_set_password(ua, pw)) != SIPREG_OK ||
        (rc = sipreg_user_agent_set_timers(ua, 0.1, 1.0, 1.0)) != SIPREG_OK ||
        (rc = sipreg_user_agent_set_shutdown_timeout(ua, shutdown)) != SIPREG_OK) {
        t_fail(__FILE__, __LINE__, "configuring the user agent: %s (%s)", sipreg_result_str(rc), sipreg_last_error());
        sipreg_user_agent_free(ua);
        return NULL;
    }
    return ua;
}

sipreg_registerer *make_reg(sipreg_user_agent *ua, const char *registrar_uri, uint32_t expires, tracker *t) {
    sipreg_registerer_options *o = NULL;
    sipreg_registerer *r = NULL;
    sipreg_result rc;
    if ((rc = sipreg_registerer_options_new(&o)) != SIPREG_OK) goto fail;
    if ((rc = sipreg_registerer_options_set_registrar(o, registrar_uri)) != SIPREG_OK) goto fail;
    if ((rc = sipreg_registerer_options_set_expires(o, expires)) != SIPREG_OK) goto fail;
    if ((rc = sipreg_registerer_options_set_retry(o, false)) != SIPREG_OK) goto fail;
    if ((rc = sipreg_registerer_new(ua, o, t ? tracker_on_state : NULL, t, &r)) != SIPREG_OK) goto fail;
    sipreg_registerer_options_free(o);
    if (t) {
        pthread_mutex_lock(&t->lock);
        t->handle = r;
        pthread_mutex_unlock(&t->lock);
        if ((rc = sipreg_registerer_set_event_callback(r, tracker_on_event, t)) != SIPREG_OK) {
            t_fail(__FILE__, __LINE__, "set_event_callback: %s (%s)", sipreg_result_str(rc), sipreg_last_error());
        }
    }
    return r;
fail:
    t_fail(__FILE__, __LINE__, "creating a registerer for %s: %s (%s)", registrar_uri, sipreg_result_str(rc),
           sipreg_last_error());
    if (o) sipreg_registerer_options_free(o);
    return NULL;
}

int closed_udp_port(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

int blackhole_udp(int *port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    *port = ntohs(a.sin_port);
    return fd;
}
