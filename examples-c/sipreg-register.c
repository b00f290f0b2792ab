/*
 * sipreg-register: register an address of record, hold the registration,
 * then dispose. Prints "state <Name>" per state change and
 * "response <code> <reason>" per final response.
 *
 * With --trace, every SIP message sent and received is printed too (credentials
 * redacted), each as a "--- <time> sent|received <transport> <local> -> <remote>"
 * line followed by the message indented by four spaces.
 *
 * With --ha1 (instead of --password), the credential is the HA1, the hex of
 * H(user:realm:password), so the device never holds the password.
 *
 * With --answer-messages, the contact is reachable for messages: each MESSAGE
 * that reaches it over the registered flow is printed as
 * "message from <From>: <body>" and answered 200; other requests get 405
 * (the library itself answers OPTIONS).
 *
 * Exit status 0 only if it reached Registered and then Terminated cleanly.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sipreg.h"

struct progress {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    sipreg_state state;
    int registered_seen;
    int terminated_seen;
};

static const char *state_name(sipreg_state s) {
    switch (s) {
    case SIPREG_STATE_INITIAL: return "Initial";
    case SIPREG_STATE_REGISTERED: return "Registered";
    case SIPREG_STATE_UNREGISTERED: return "Unregistered";
    case SIPREG_STATE_TERMINATED: return "Terminated";
    }
    return "Unknown";
}

/* Runs on the library's worker thread. */
static void on_event(void *user_data, sipreg_registerer *r, const sipreg_event *ev) {
    struct progress *p = user_data;
    (void)r;
    pthread_mutex_lock(&p->lock);
    if (ev->kind == SIPREG_EVENT_RESPONSE) {
        printf("response %u %s\n", (unsigned)ev->status_code, ev->reason);
    } else if (ev->kind == SIPREG_EVENT_STATE_CHANGED) {
        printf("state %s\n", state_name(ev->state));
        p->state = ev->state;
        if (ev->state == SIPREG_STATE_REGISTERED) p->registered_seen = 1;
        if (ev->state == SIPREG_STATE_TERMINATED) p->terminated_seen = 1;
        pthread_cond_broadcast(&p->changed);
    } else if (ev->kind == SIPREG_EVENT_FAILED) {
        /* Why, in words: "failed auth_rejected: credentials for realm ... were rejected". */
        printf("failed %s: %s\n", sipreg_failure_str(ev->failure), ev->failure_detail);
    } else if (ev->kind == SIPREG_EVENT_RETRY_SCHEDULED) {
        printf("retry in %.1f s (failure %u)\n", ev->retry_delay, ev->failure_count);
    }
    fflush(stdout);
    pthread_mutex_unlock(&p->lock);
}

/* Runs on the library's worker thread: one readable block per message. */
static void on_trace(void *user_data, sipreg_user_agent *ua, const sipreg_trace_record *rec) {
    (void)user_data;
    (void)ua;
    time_t secs = (time_t)(rec->timestamp_us / 1000000);
    struct tm tm;
    char when[32] = "";
    if (gmtime_r(&secs, &tm)) strftime(when, sizeof when, "%H:%M:%S", &tm);
    int sent = rec->direction == SIPREG_TRACE_SENT;
    flockfile(stdout);
    printf("--- %s.%06ld UTC %s %s %s %s %s (%zu bytes)\n", when, (long)(rec->timestamp_us % 1000000),
           sent ? "sent" : "received", rec->transport, *rec->local ? rec->local : "?", sent ? "->" : "<-",
           rec->remote, rec->message_len);
    const char *line = rec->message, *end = rec->message + rec->message_len;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (n > 0 && line[n - 1] == '\r') n--;
        printf("    %.*s\n", (int)n, line);
        line = nl ? nl + 1 : end;
    }
    fflush(stdout);
    funlockfile(stdout);
}

/* Runs on the library's worker thread for each request that reaches our
   contact (--answer-messages): MESSAGE bodies are printed and answered 200. */
static void on_request(void *user_data, sipreg_user_agent *ua, const sipreg_incoming *rq) {
    (void)user_data;
    if (!strcmp(rq->method, "ACK")) return; /* never answered */
    if (strcmp(rq->method, "MESSAGE") != 0) {
        sipreg_user_agent_respond(ua, rq->flow_id, rq->message, rq->length, 405, NULL,
                                  "Allow: OPTIONS, MESSAGE\r\n", NULL, 0);
        return;
    }
    char from[512] = "";
    sipreg_message_header(rq->message, rq->length, "From", 0, from, sizeof from, NULL);
    size_t offset = 0, len = 0;
    sipreg_message_body(rq->message, rq->length, &offset, &len);
    /* One line per message: line breaks of the body shown as spaces. */
    flockfile(stdout);
    printf("message from %s: ", from);
    for (size_t i = 0; i < len; i++) {
        char c = rq->message[offset + i];
        putchar(c == '\r' || c == '\n' ? ' ' : c);
    }
    putchar('\n');
    fflush(stdout);
    funlockfile(stdout);
    sipreg_user_agent_respond(ua, rq->flow_id, rq->message, rq->length, 200, NULL, NULL, NULL, 0);
}

static void on_log(void *user_data, sipreg_log_level level, const char *msg) {
    (void)user_data;
    fprintf(stderr, "sipreg[%d]: %s\n", (int)level, msg);
}

/* Waits until `done(p)` holds or `seconds` pass; returns whether it holds. */
static int wait_until(struct progress *p, int (*done)(struct progress *), double seconds) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)seconds;
    until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&p->lock);
    int ok = done(p);
    while (!ok) {
        if (pthread_cond_timedwait(&p->changed, &p->lock, &until) == ETIMEDOUT) { ok = done(p); break; }
        ok = done(p);
    }
    pthread_mutex_unlock(&p->lock);
    return ok;
}

static int settled(struct progress *p) { return p->state != SIPREG_STATE_INITIAL; }
static int not_registered(struct progress *p) { return p->state != SIPREG_STATE_REGISTERED; }
static int terminated(struct progress *p) { return p->terminated_seen; }

/* --help prints to stdout (exit 0); a usage error to stderr (exit 2). */
static void usage(FILE *to) {
    fprintf(to,
            "usage: sipreg-register --aor sip:alice@127.0.0.1 [--password PW] [--auth-user U]\n"
            "                       [--ha1 HEX [--ha1-algorithm MD5|SHA-256|SHA-512-256]]\n"
            "                       [--registrar sip:127.0.0.1:5060] [--transport udp|tcp|tls|ws|wss]\n"
            "                       [--ca-file PEM] [--server-name NAME] [--insecure] [--ws-path /]\n"
            "                       [--expires 600] [--hold SECONDS] [--unregister-all]\n"
            "                       [--keepalive SECONDS] [--trace] [--answer-messages]\n");
}

#define CHECK(call)                                                                     \
    do {                                                                                \
        sipreg_result rc_ = (call);                                                     \
        if (rc_ != SIPREG_OK) {                                                         \
            fprintf(stderr, "%s: %s (%s)\n", #call, sipreg_result_str(rc_), sipreg_last_error()); \
            goto out;                                                                   \
        }                                                                               \
    } while (0)

int main(int argc, char **argv) {
    const char *aor = NULL, *password = NULL, *auth_user = NULL, *registrar = NULL, *transport = NULL;
    const char *ca_file = NULL, *server_name = NULL, *ws_path = NULL;
    /* HA1 = hex of H(user:realm:password): lets a device register without storing the password. */
    const char *ha1 = NULL, *ha1_algorithm = NULL;
    unsigned long expires = 600;
    long keepalive = -1;
    double hold = 0;
    int unregister_all = 0, insecure = 0, trace = 0, answer_messages = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--unregister-all")) { unregister_all = 1; continue; }
        if (!strcmp(a, "--insecure")) { insecure = 1; continue; }
        if (!strcmp(a, "--trace")) { trace = 1; continue; }
        if (!strcmp(a, "--answer-messages")) { answer_messages = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!v) { usage(stderr); return 2; }
        if (!strcmp(a, "--aor")) aor = v;
        else if (!strcmp(a, "--password")) password = v;
        else if (!strcmp(a, "--auth-user")) auth_user = v;
        else if (!strcmp(a, "--ha1")) ha1 = v;
        else if (!strcmp(a, "--ha1-algorithm")) ha1_algorithm = v;
        else if (!strcmp(a, "--registrar")) registrar = v;
        else if (!strcmp(a, "--transport")) transport = v;
        else if (!strcmp(a, "--ca-file")) ca_file = v;
        else if (!strcmp(a, "--server-name")) server_name = v;
        else if (!strcmp(a, "--ws-path")) ws_path = v;
        else if (!strcmp(a, "--expires")) {
            char *end;
            expires = strtoul(v, &end, 10);
            if (*end || expires == 0 || expires > 0xffffffffUL) { fprintf(stderr, "bad --expires\n"); return 2; }
        } else if (!strcmp(a, "--keepalive")) {
            char *end;
            keepalive = strtol(v, &end, 10);
            if (*end || keepalive < 0 || keepalive > 3600) { fprintf(stderr, "bad --keepalive\n"); return 2; }
        } else if (!strcmp(a, "--hold")) {
            char *end;
            hold = strtod(v, &end);
            if (*end || hold < 0) { fprintf(stderr, "bad --hold\n"); return 2; }
        } else { usage(stderr); return 2; }
        i++;
    }
    if (!aor) { usage(stderr); return 2; }
    /* The HA1's algorithm: named, else MD5 for 32 hex digits and SHA-256 for 64. */
    sipreg_secret ha1_kind = ha1 && strlen(ha1) == 64 ? SIPREG_SECRET_HA1_SHA256 : SIPREG_SECRET_HA1_MD5;
    if (ha1_algorithm) {
        if (!ha1) { fprintf(stderr, "--ha1-algorithm needs --ha1\n"); return 2; }
        if (!strcasecmp(ha1_algorithm, "MD5")) ha1_kind = SIPREG_SECRET_HA1_MD5;
        else if (!strcasecmp(ha1_algorithm, "SHA-256")) ha1_kind = SIPREG_SECRET_HA1_SHA256;
        else if (!strcasecmp(ha1_algorithm, "SHA-512-256")) ha1_kind = SIPREG_SECRET_HA1_SHA512_256;
        else { fprintf(stderr, "bad --ha1-algorithm\n"); return 2; }
    }

    const char *log = getenv("SIPREG_LOG");
    if (log && *log) sipreg_set_log_callback(on_log, NULL, !strcmp(log, "debug") ? SIPREG_LOG_DEBUG : SIPREG_LOG_INFO);

    struct progress p = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, SIPREG_STATE_INITIAL, 0, 0 };
    sipreg_user_agent *ua = NULL;
    sipreg_registerer_options *opts = NULL;
    sipreg_registerer *r = NULL;
    int status = 1;

    CHECK(sipreg_user_agent_new(aor, &ua));
    if (trace) CHECK(sipreg_user_agent_set_trace_callback(ua, on_trace, NULL));
    if (password) CHECK(sipreg_user_agent_set_password(ua, password));
    if (auth_user) CHECK(sipreg_user_agent_set_auth_username(ua, auth_user));
    if (ha1) CHECK(sipreg_user_agent_add_credential(ua, NULL, NULL, ha1, ha1_kind));
    if (transport) CHECK(sipreg_user_agent_set_transport(ua, transport));
    if (ca_file) CHECK(sipreg_user_agent_set_tls_ca_file(ua, ca_file));
    if (server_name) CHECK(sipreg_user_agent_set_tls_server_name(ua, server_name));
    if (insecure) CHECK(sipreg_user_agent_set_tls_verify(ua, false));
    if (ws_path) CHECK(sipreg_user_agent_set_ws_path(ua, ws_path));
    if (keepalive >= 0) CHECK(sipreg_user_agent_set_keepalive(ua, (uint32_t)keepalive));
    if (answer_messages) {
        /* The REGISTER's Allow says what this contact accepts. */
        CHECK(sipreg_user_agent_set_allow(ua, "OPTIONS, MESSAGE"));
        CHECK(sipreg_user_agent_set_request_callback(ua, on_request, NULL));
    }
    CHECK(sipreg_registerer_options_new(&opts));
    CHECK(sipreg_registerer_options_set_expires(opts, (uint32_t)expires));
    if (registrar) CHECK(sipreg_registerer_options_set_registrar(opts, registrar));
    /* A CLI reports failures instead of retrying in the background. */
    CHECK(sipreg_registerer_options_set_retry(opts, false));
    CHECK(sipreg_registerer_new(ua, opts, NULL, NULL, &r));
    CHECK(sipreg_registerer_set_event_callback(r, on_event, &p));

    CHECK(sipreg_register(r));
    wait_until(&p, settled, 40.0);
    if (p.state == SIPREG_STATE_REGISTERED && hold > 0) {
        /* Refreshes happen on the worker thread; stop early if the binding is lost. */
        wait_until(&p, not_registered, hold);
    }
    if (unregister_all && p.state != SIPREG_STATE_TERMINATED) {
        sipreg_result rc = sipreg_unregister(r, true);
        if (rc == SIPREG_OK) {
            struct progress *pp = &p;
            (void)pp;
            wait_until(&p, not_registered, 40.0);
        }
    }
    CHECK(sipreg_dispose(r));
    wait_until(&p, terminated, 10.0);
    status = (p.registered_seen && p.terminated_seen) ? 0 : 1;

out:
    if (r) sipreg_registerer_free(r);
    if (opts) sipreg_registerer_options_free(opts);
    if (ua) sipreg_user_agent_free(ua);
    return status;
}
