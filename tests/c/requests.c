/*
 * The contact answers through the C ABI: requests sent from this program to
 * a registered contact over UDP reach the request callback with the whole
 * message, its method, the flow id of the registration and the flow; the
 * answer goes back inside the callback or after it (from this thread, with
 * a copy of the message); OPTIONS are answered by the library; without a
 * callback 405 with Allow; an unknown contact user 404; sipreg_user_agent_send
 * puts a message on the flow; the header and body readers; NULL and bad
 * arguments of every new function; and a user agent freed while requests
 * keep arriving (the callback's context is wiped and freed the moment the
 * free returns: a late call is a use-after-free for ASan / valgrind).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"

static registrar g;
static int slot = 0;

#define MAGIC 0x5E0E57u

/* What the callback saw; the last message is copied for an answer later. */
struct inbox {
    unsigned magic;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int count;
    int bad;                    /* a field that does not hold what it says */
    int answer_inside;          /* status to answer inside the callback, 0: none */
    char method[32];
    uint64_t flow_id;
    char flow[128];
    char *message;              /* heap copy of the last one */
    size_t length;
};

static atomic_int stale_calls;

static void inbox_init(struct inbox *b, int answer_inside) {
    memset(b, 0, sizeof *b);
    b->magic = MAGIC;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->changed, NULL);
    b->answer_inside = answer_inside;
}

static void inbox_destroy(struct inbox *b) {
    free(b->message);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->changed);
    memset(b, 0xA5, sizeof *b);
}

static void on_request(void *ud, sipreg_user_agent *ua, const sipreg_incoming *rq) {
    struct inbox *b = ud;
    if (b->magic != MAGIC) {
        stale_calls++;
        return;
    }
    pthread_mutex_lock(&b->lock);
    if (!ua || !rq || !rq->message || !rq->method || !rq->flow || rq->flow_id == 0 ||
        rq->message[rq->length] != '\0' || strncmp(rq->message, rq->method, strlen(rq->method)) != 0 ||
        strncmp(rq->flow, "udp:127.0.0.1:", 14) != 0) {
        fprintf(stderr, "bad record: method %s flow %s flow_id %llu length %zu\n", rq->method ? rq->method : "-",
                rq->flow ? rq->flow : "-", (unsigned long long)rq->flow_id, rq->length);
        b->bad++;
    }
    b->count++;
    snprintf(b->method, sizeof b->method, "%s", rq->method);
    snprintf(b->flow, sizeof b->flow, "%s", rq->flow);
    b->flow_id = rq->flow_id;
    free(b->message);
    b->message = malloc(rq->length + 1);
    memcpy(b->message, rq->message, rq->length + 1);
    b->length = rq->length;
    if (b->answer_inside && strcmp(rq->method, "ACK") != 0) {
        if (sipreg_user_agent_respond(ua, rq->flow_id, rq->message, rq->length, (uint16_t)b->answer_inside,
                                      "Inside", "X-Inside: yes\r\n", NULL, 0) != SIPREG_OK)
            b->bad++;
    }
    pthread_cond_broadcast(&b->changed);
    pthread_mutex_unlock(&b->lock);
}

static bool inbox_wait(struct inbox *b, int n, double seconds) {
    double end = t_now() + seconds;
    pthread_mutex_lock(&b->lock);
    while (b->count < n && t_now() < end) {
        pthread_mutex_unlock(&b->lock);
        t_sleep_ms(5);
        pthread_mutex_lock(&b->lock);
    }
    bool ok = b->count >= n;
    pthread_mutex_unlock(&b->lock);
    return ok;
}

/* A UDP socket of this program on loopback; its "ip:port" in `me`. */
static int peer_socket(char *me, size_t len) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &al);
    snprintf(me, len, "127.0.0.1:%d", ntohs(a.sin_port));
    struct timeval tv = {.tv_sec = t_slow() ? 8 : 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* The registered contact "sip:user@127.0.0.1:PORT" -> its port. */
static int contact_port(sipreg_registerer *r, char *contact, size_t len) {
    if (sipreg_registerer_contact(r, 0, contact, len, NULL) != SIPREG_OK) return -1;
    const char *colon = strrchr(contact, ':');
    return colon ? atoi(colon + 1) : -1;
}

static void send_request(int fd, int port, const char *method, const char *uri, const char *me, int n,
                         const char *body) {
    char m[2048];
    int len = snprintf(m, sizeof m,
                       "%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKc%d%d\r\nMax-Forwards: 70\r\n"
                       "From: <sip:tester@127.0.0.1>;tag=t%d\r\nTo: <%s>\r\nCall-ID: c%d-%d@127.0.0.1\r\n"
                       "CSeq: 1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                       method, uri, me, (int)getpid(), n, n, uri, (int)getpid(), n, method, strlen(body), body);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sendto(fd, m, (size_t)len, 0, (struct sockaddr *)&to, sizeof to);
}

/* Receives one datagram (NUL-terminated) into `buf`; its length, or -1 on timeout. */
static int receive(int fd, char *buf, size_t len) {
    ssize_t n = recv(fd, buf, len - 1, 0);
    if (n < 0) return -1;
    buf[n] = '\0';
    return (int)n;
}

struct account {
    sipreg_user_agent *ua;
    sipreg_registerer *r;
    tracker t;
    char contact[256];
    int port;
};

static bool account_up(struct account *a, const char *allow) {
    int k = slot++;
    memset(a, 0, sizeof *a);
    a->ua = make_ua(k, 1.0);
    if (!a->ua) return false;
    if (allow && sipreg_user_agent_set_allow(a->ua, allow) != SIPREG_OK) return false;
    tracker_init(&a->t);
    a->r = make_reg(a->ua, g.uri, 300, &a->t);
    if (!a->r || sipreg_register(a->r) != SIPREG_OK) return false;
    if (!tracker_wait(&a->t, SIPREG_STATE_REGISTERED, 1, t_timeout(5))) return false;
    a->port = contact_port(a->r, a->contact, sizeof a->contact);
    return a->port > 0;
}

static void account_down(struct account *a) {
    if (a->ua) EXPECT_RC(sipreg_user_agent_free(a->ua), SIPREG_OK);
    if (a->r) sipreg_registerer_free(a->r);
    tracker_destroy(&a->t);
}

static void requests_reach_the_callback_and_are_answered(void) {
    struct account a;
    if (!account_up(&a, "INVITE, ACK, BYE, OPTIONS, MESSAGE")) {
        t_fail(__FILE__, __LINE__, "no registered account");
        account_down(&a);
        return;
    }
    char me[64], buf[4096];
    int fd = peer_socket(me, sizeof me);
    /* Without a callback: 405 with our Allow; OPTIONS 200 by the library. */
    send_request(fd, a.port, "MESSAGE", a.contact, me, 1, "hi");
    EXPECT(receive(fd, buf, sizeof buf) > 0 && !strncmp(buf, "SIP/2.0 405 ", 12), "405: %s", buf);
    EXPECT(strstr(buf, "\r\nAllow: INVITE, ACK, BYE, OPTIONS, MESSAGE\r\n") != NULL, "Allow: %s", buf);
    send_request(fd, a.port, "OPTIONS", a.contact, me, 2, "");
    EXPECT(receive(fd, buf, sizeof buf) > 0 && !strncmp(buf, "SIP/2.0 200 ", 12), "200: %s", buf);
    /* A user it does not have: 404. */
    char other[300];
    snprintf(other, sizeof other, "sip:nobody%s", strchr(a.contact, '@'));
    send_request(fd, a.port, "MESSAGE", other, me, 3, "hi");
    EXPECT(receive(fd, buf, sizeof buf) > 0 && !strncmp(buf, "SIP/2.0 404 ", 12), "404: %s", buf);

    /* With a callback that answers inside it. */
    struct inbox in;
    inbox_init(&in, 202);
    MUST(sipreg_user_agent_set_request_callback(a.ua, on_request, &in));
    send_request(fd, a.port, "MESSAGE", a.contact, me, 4, "hello inside");
    EXPECT(inbox_wait(&in, 1, t_timeout(5)), "the MESSAGE reached the callback");
    EXPECT(receive(fd, buf, sizeof buf) > 0 && !strncmp(buf, "SIP/2.0 202 Inside\r\n", 20), "202: %s", buf);
    EXPECT(strstr(buf, "\r\nX-Inside: yes\r\n") && strstr(buf, ";tag="), "%s", buf);
    uint64_t flow = 0;
    EXPECT_RC(sipreg_registerer_flow_id(a.r, &flow), SIPREG_OK);
    pthread_mutex_lock(&in.lock);
    EXPECT(in.bad == 0, "%d malformed records", in.bad);
    EXPECT(!strcmp(in.method, "MESSAGE"), "%s", in.method);
    EXPECT(flow != 0 && in.flow_id == flow, "flow %llu vs %llu", (unsigned long long)in.flow_id,
           (unsigned long long)flow);
    pthread_mutex_unlock(&in.lock);

    /* The readers of a request's headers and body. */
    size_t n = 99, off = 0, blen = 0, need = 0;
    EXPECT_RC(sipreg_message_header_count(in.message, in.length, "cseq", &n), SIPREG_OK);
    EXPECT(n == 1, "%zu", n);
    EXPECT_RC(sipreg_message_header_count(in.message, in.length, "X-None", &n), SIPREG_OK);
    EXPECT(n == 0, "%zu", n);
    char value[64];
    EXPECT_RC(sipreg_message_header(in.message, in.length, "c", 0, value, sizeof value, &need), SIPREG_OK);
    EXPECT(!strcmp(value, "text/plain") && need == 11, "%s %zu", value, need);
    char tiny[4] = "xyz";
    EXPECT_RC(sipreg_message_header(in.message, in.length, "Content-Type", 0, tiny, sizeof tiny, &need),
              SIPREG_ERR_BUFFER_TOO_SMALL);
    EXPECT(need == 11 && !strcmp(tiny, "xyz"), "needed %zu, buffer untouched", need);
    EXPECT_RC(sipreg_message_header(in.message, in.length, "CSeq", 1, value, sizeof value, NULL),
              SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_message_body(in.message, in.length, &off, &blen), SIPREG_OK);
    EXPECT(blen == 12 && !memcmp(in.message + off, "hello inside", 12), "body at %zu, %zu bytes", off, blen);

    /* A callback that does not answer: this thread answers after it returned. */
    EXPECT_RC(sipreg_user_agent_set_request_callback(a.ua, NULL, NULL), SIPREG_OK);
    struct inbox later;
    inbox_init(&later, 0);
    MUST(sipreg_user_agent_set_request_callback(a.ua, on_request, &later));
    send_request(fd, a.port, "INFO", a.contact, me, 5, "Signal=1");
    EXPECT(inbox_wait(&later, 1, t_timeout(5)), "the INFO reached the callback");
    EXPECT(receive(fd, buf, sizeof buf) < 0, "nothing answered yet: %s", buf);
    pthread_mutex_lock(&later.lock);
    char *copy = malloc(later.length);
    memcpy(copy, later.message, later.length);
    size_t copy_len = later.length;
    uint64_t copy_flow = later.flow_id;
    pthread_mutex_unlock(&later.lock);
    const char body[] = "ok\0with a NUL";
    EXPECT_RC(sipreg_user_agent_respond(a.ua, copy_flow, copy, copy_len, 200, NULL,
                                        "Content-Type: application/octet-stream", body, sizeof body - 1),
              SIPREG_OK);
    int got = receive(fd, buf, sizeof buf);
    EXPECT(got > 0 && !strncmp(buf, "SIP/2.0 200 OK\r\n", 16), "200 later: %s", buf);
    EXPECT(got > 13 && !memcmp(buf + got - 13, "ok\0with a NUL", 13), "the body, NUL and all");
    /* The INFO's retransmission gets the same answer, not the callback. */
    send_request(fd, a.port, "INFO", a.contact, me, 5, "Signal=1");
    char again[4096];
    EXPECT(receive(fd, again, sizeof again) == got && !memcmp(again, buf, (size_t)got), "the same answer again");
    EXPECT(later.count == 1, "%d calls", later.count);

    /* The application's own message on the flow: to the registrar. */
    const char *own = "MESSAGE sip:someone@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKown\r\n"
                      "From: <sip:me@127.0.0.1>;tag=1\r\nTo: <sip:someone@127.0.0.1>\r\nCall-ID: own\r\n"
                      "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n";
    sipreg_stats before, after;
    EXPECT_RC(sipreg_user_agent_stats(a.ua, &before), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_send(a.ua, flow, own, strlen(own)), SIPREG_OK);
    double end = t_now() + t_timeout(5);
    do {
        t_sleep_ms(10);
        EXPECT_RC(sipreg_user_agent_stats(a.ua, &after), SIPREG_OK);
    } while (after.sent == before.sent && t_now() < end);
    EXPECT(after.sent == before.sent + 1, "sent %llu -> %llu", (unsigned long long)before.sent,
           (unsigned long long)after.sent);
    EXPECT(after.requests >= 6 && after.answered >= 5, "requests %llu answered %llu",
           (unsigned long long)after.requests, (unsigned long long)after.answered);

    free(copy);
    close(fd);
    account_down(&a);
    /* No call after the free returned: the contexts can go. */
    in.magic = 0;
    later.magic = 0;
    inbox_destroy(&in);
    inbox_destroy(&later);
}

static void null_and_bad_arguments(void) {
    struct account a;
    if (!account_up(&a, NULL)) {
        t_fail(__FILE__, __LINE__, "no registered account");
        account_down(&a);
        return;
    }
    uint64_t flow = 0, out = 7;
    EXPECT_RC(sipreg_registerer_flow_id(a.r, &flow), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_flow_id(NULL, &out), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_flow_id(a.r, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT(out == 7, "untouched");
    const char *req = "MESSAGE sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKn\r\n"
                      "From: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: n\r\nCSeq: 1 MESSAGE\r\n\r\n";
    size_t rl = strlen(req);
    EXPECT_RC(sipreg_user_agent_set_request_callback(NULL, on_request, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_allow(NULL, "OPTIONS"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_allow(a.ua, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_answer_options(NULL, false), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_contact_user(NULL, "x"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_ws_origin(NULL, "http://x"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(NULL, flow, req, rl, 200, NULL, NULL, NULL, 0), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, NULL, rl, 200, NULL, NULL, NULL, 0), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, req, rl, 200, NULL, NULL, NULL, 5), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_send(NULL, flow, req, rl), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_send(a.ua, flow, NULL, rl), SIPREG_ERR_NULL_ARGUMENT);
    size_t n, off, len;
    EXPECT_RC(sipreg_message_header_count(NULL, 5, "Via", &n), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_message_header_count(req, rl, NULL, &n), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_message_header_count(req, rl, "Via", NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_message_header(req, rl, "Via", 0, NULL, 0, &len), SIPREG_ERR_BUFFER_TOO_SMALL);
    EXPECT(len > 10, "needed %zu", len);
    EXPECT_RC(sipreg_message_body(req, rl, NULL, &len), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_message_body(req, rl, &off, NULL), SIPREG_ERR_NULL_ARGUMENT);

    /* Bad values. */
    EXPECT_RC(sipreg_user_agent_set_allow(a.ua, "IN VITE"), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_allow(a.ua, "INVITE\r\nX: y"), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_allow(a.ua, "\xff"), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_contact_user(a.ua, "a@b"), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_contact_user(a.ua, ""), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_contact_user(a.ua, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_ws_origin(a.ua, "no origin"), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_ws_origin(a.ua, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, req, rl, 99, NULL, NULL, NULL, 0), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, req, rl, 700, NULL, NULL, NULL, 0), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, req, rl, 200, "O\r\nK", NULL, NULL, 0),
              SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, req, rl, 200, NULL, "Via: SIP/2.0/UDP x", NULL, 0),
              SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, req, rl, 200, NULL, "no colon", NULL, 0),
              SIPREG_ERR_INVALID_ARGUMENT);
    char *big = calloc(1, 70000);
    memset(big, 'x', 69999);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, req, rl, 200, NULL, NULL, big, 61000), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_send(a.ua, flow, big, 69999), SIPREG_ERR_INVALID_ARGUMENT);
    free(big);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, "garbage", 7, 200, NULL, NULL, NULL, 0),
              SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, flow, req, 20, 200, NULL, NULL, NULL, 0), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, 0, req, rl, 200, NULL, NULL, NULL, 0), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_respond(a.ua, UINT64_MAX, req, rl, 200, NULL, NULL, NULL, 0),
              SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_send(a.ua, flow, "hello", 5), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_send(a.ua, flow, req, 0), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_send(a.ua, 0, req, rl), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_message_header_count("hello", 5, "Via", &n), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_message_body("hello", 5, &off, &len), SIPREG_ERR_INVALID_ARGUMENT);
    sipreg_user_agent *forged = (sipreg_user_agent *)(uintptr_t)0x12345678;
    EXPECT_RC(sipreg_user_agent_respond(forged, flow, req, rl, 200, NULL, NULL, NULL, 0), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_request_callback(forged, on_request, NULL), SIPREG_ERR_INVALID_ARGUMENT);

    /* After the registration ended, its flow is closed: a transport error. */
    sipreg_user_agent *ua = a.ua;
    EXPECT_RC(sipreg_dispose(a.r), SIPREG_OK);
    EXPECT(tracker_wait(&a.t, SIPREG_STATE_TERMINATED, 1, t_timeout(5)), "terminated");
    double end = t_now() + t_timeout(5);
    sipreg_result rc;
    while ((rc = sipreg_user_agent_send(ua, flow, req, rl)) == SIPREG_OK && t_now() < end) t_sleep_ms(20);
    EXPECT(rc == SIPREG_ERR_TRANSPORT, "send on a closed flow: %s (%s)", sipreg_result_str(rc), sipreg_last_error());
    EXPECT_RC(sipreg_user_agent_respond(ua, flow, req, rl, 200, NULL, NULL, NULL, 0), SIPREG_ERR_TRANSPORT);
    EXPECT_RC(sipreg_registerer_flow_id(a.r, &out), SIPREG_OK);
    EXPECT(out == 0, "no flow after dispose: %llu", (unsigned long long)out);
    account_down(&a);
    /* A freed user agent. */
    EXPECT_RC(sipreg_user_agent_respond(ua, flow, req, rl, 200, NULL, NULL, NULL, 0), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_user_agent_send(ua, flow, req, rl), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_user_agent_set_request_callback(ua, on_request, NULL), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_user_agent_set_allow(ua, "OPTIONS"), SIPREG_ERR_TERMINATED);
}

struct flood {
    int fd;
    int port;
    char me[64];
    char contact[256];
    atomic_int stop;
    atomic_int sent;
};

static void *flood_main(void *arg) {
    struct flood *f = arg;
    int n = 1000;
    while (!f->stop) {
        send_request(f->fd, f->port, "MESSAGE", f->contact, f->me, n++, "flood");
        f->sent++;
        if (n % 16 == 0) t_sleep_ms(1);
    }
    return NULL;
}

/* Frees the user agent while requests keep arriving and the callback runs;
   the callback's context is wiped and freed right after the free returns. */
static void free_while_requests_arrive(void) {
    int rounds = t_slow() ? 2 : 6;
    for (int i = 0; i < rounds; i++) {
        struct account a;
        if (!account_up(&a, NULL)) {
            t_fail(__FILE__, __LINE__, "no registered account");
            account_down(&a);
            return;
        }
        struct inbox *in = malloc(sizeof *in);
        inbox_init(in, i % 2 ? 200 : 0);
        MUST(sipreg_user_agent_set_request_callback(a.ua, on_request, in));
        struct flood f = {.port = a.port};
        f.fd = peer_socket(f.me, sizeof f.me);
        snprintf(f.contact, sizeof f.contact, "%s", a.contact);
        pthread_t th;
        pthread_create(&th, NULL, flood_main, &f);
        EXPECT(inbox_wait(in, 3, t_timeout(5)), "requests arrived (%d)", in->count);
        EXPECT_RC(sipreg_user_agent_free(a.ua), SIPREG_OK);
        a.ua = NULL;
        in->magic = 0;
        inbox_destroy(in);
        free(in);
        t_sleep_ms(50);
        f.stop = 1;
        pthread_join(th, NULL);
        close(f.fd);
        account_down(&a);
    }
    t_sleep_ms(100);
    EXPECT(stale_calls == 0, "%d calls after the user agent was freed", (int)stale_calls);
}

/* With a dispatcher the callback runs only inside sipreg_dispatcher_run, on
   the thread that calls it; the answer from there reaches the sender. */
static void callback_through_a_dispatcher(void) {
    struct account a;
    if (!account_up(&a, NULL)) {
        t_fail(__FILE__, __LINE__, "no registered account");
        account_down(&a);
        return;
    }
    sipreg_dispatcher *d = NULL;
    MUST(sipreg_dispatcher_new(&d));
    MUST(sipreg_user_agent_set_dispatcher(a.ua, d));
    struct inbox in;
    inbox_init(&in, 200);
    MUST(sipreg_user_agent_set_request_callback(a.ua, on_request, &in));
    char me[64], buf[4096];
    int fd = peer_socket(me, sizeof me);
    send_request(fd, a.port, "MESSAGE", a.contact, me, 41, "through the dispatcher");
    /* Nothing runs until this thread runs the dispatcher. */
    t_sleep_ms(300);
    EXPECT(in.count == 0, "%d calls before sipreg_dispatcher_run", in.count);
    double end = t_now() + t_timeout(5);
    while (in.count == 0 && t_now() < end) {
        uint32_t ran = 0;
        EXPECT_RC(sipreg_dispatcher_run(d, 0, &ran), SIPREG_OK);
        t_sleep_ms(10);
    }
    EXPECT(in.count == 1 && in.bad == 0, "%d calls, %d bad", in.count, in.bad);
    EXPECT(receive(fd, buf, sizeof buf) > 0 && !strncmp(buf, "SIP/2.0 200 ", 12), "200: %s", buf);
    close(fd);
    EXPECT_RC(sipreg_user_agent_set_request_callback(a.ua, NULL, NULL), SIPREG_OK);
    account_down(&a);
    uint32_t ran = 0;
    sipreg_dispatcher_run(d, 0, &ran);
    EXPECT_RC(sipreg_dispatcher_free(d), SIPREG_OK);
    in.magic = 0;
    inbox_destroy(&in);
}

int main(void) {
    printf("requests:\n");
    if (!registrar_start(&g)) {
        fprintf(stderr, "no registrar\n");
        return 1;
    }
    printf("  (registrar: %s at %s)\n", g.kamailio ? "Kamailio" : "built-in", g.uri);
    RUN(requests_reach_the_callback_and_are_answered);
    RUN(null_and_bad_arguments);
    RUN(free_while_requests_arrive);
    RUN(callback_through_a_dispatcher);
    registrar_stop(&g);
    return t_finish("requests");
}
