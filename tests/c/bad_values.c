/*
 * Bad values at the boundary: invalid UTF-8 in every string argument, absurd
 * option values (expires 0, refresh_frequency out of 50..99, negative / NaN /
 * infinite / huge timers and retry values), bad URIs, CR/LF header injection,
 * reg_id without instance_id, unknown transports, forged and mistyped handles.
 * Each is refused with SIPREG_ERR_INVALID_ARGUMENT (or the documented code)
 * at the call that receives it, without crashing, and sets a last-error text.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "common.h"

#define BAD_UTF8 "sip:\xff\xfe@127.0.0.1"
#define BAD_UTF8_TEXT "ab\xc3\x28\x80z" /* invalid 2-byte sequence, stray continuation */

static sipreg_user_agent *ua;
static sipreg_registerer_options *opts;
static int closed_port;

/* Checks that the last error is set and mentions nothing absurd. */
static void expect_last_error(const char *call) {
    const char *e = sipreg_last_error();
    if (!e || !*e) t_fail(__FILE__, __LINE__, "%s: no last-error text", call);
}

#define EXPECT_INVALID(call)                             \
    do {                                                 \
        EXPECT_RC(call, SIPREG_ERR_INVALID_ARGUMENT);    \
        expect_last_error(#call);                        \
    } while (0)

static void invalid_utf8_everywhere(void) {
    sipreg_user_agent *u = (sipreg_user_agent *)(uintptr_t)0x77;
    EXPECT_INVALID(sipreg_user_agent_new(BAD_UTF8, &u));
    EXPECT(u == (sipreg_user_agent *)(uintptr_t)0x77, "out untouched");
    EXPECT_INVALID(sipreg_user_agent_set_password(ua, BAD_UTF8_TEXT));
    EXPECT_INVALID(sipreg_user_agent_set_auth_username(ua, BAD_UTF8_TEXT));
    EXPECT_INVALID(sipreg_user_agent_set_transport(ua, "ud\xff"));
    EXPECT_INVALID(sipreg_user_agent_set_outbound_proxy(ua, BAD_UTF8));
    EXPECT_INVALID(sipreg_user_agent_set_local_address(ua, "127.0.0.\xff"));
    EXPECT_INVALID(sipreg_user_agent_set_user_agent(ua, BAD_UTF8_TEXT));
    EXPECT_INVALID(sipreg_registerer_options_set_registrar(opts, "sip:127.0.0.1\xff"));
    EXPECT_INVALID(sipreg_registerer_options_set_instance_id(opts, "\xff"));
    EXPECT_INVALID(sipreg_registerer_options_set_call_id(opts, BAD_UTF8_TEXT));
    EXPECT_INVALID(sipreg_registerer_options_set_from_display_name(opts, BAD_UTF8_TEXT));
    EXPECT_INVALID(sipreg_registerer_options_set_to_display_name(opts, BAD_UTF8_TEXT));
    EXPECT_INVALID(sipreg_registerer_options_set_to_uri(opts, BAD_UTF8));
    EXPECT_INVALID(sipreg_registerer_options_set_from_tag(opts, BAD_UTF8_TEXT));
    EXPECT_INVALID(sipreg_registerer_options_add_extra_header(opts, "X-A: " BAD_UTF8_TEXT));
    EXPECT_INVALID(sipreg_registerer_options_add_extra_contact_param(opts, "a=" BAD_UTF8_TEXT));
    /* Overlong encoding of '/' and a surrogate half: also invalid UTF-8. */
    EXPECT_INVALID(sipreg_user_agent_set_user_agent(ua, "a\xc0\xaf"));
    EXPECT_INVALID(sipreg_user_agent_set_user_agent(ua, "a\xed\xa0\x80"));
}

static void absurd_numbers(void) {
    const double bad[] = {-1.0, -1e-9, NAN, -NAN, INFINITY, -INFINITY, 1e300, DBL_MAX, 1e6};
    EXPECT_INVALID(sipreg_registerer_options_set_expires(opts, 0));
    EXPECT_RC(sipreg_registerer_options_set_expires(opts, UINT32_MAX), SIPREG_OK); /* legal, if long */
    EXPECT_RC(sipreg_registerer_options_set_expires(opts, 60), SIPREG_OK);
    uint32_t e = 0;
    EXPECT_RC(sipreg_registerer_options_get_expires(opts, &e), SIPREG_OK);
    EXPECT(e == 60, "expires read back as %u", e);

    const uint32_t freqs[] = {0, 1, 49, 100, 101, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof freqs / sizeof *freqs; i++) {
        sipreg_result rc = sipreg_registerer_options_set_refresh_frequency(opts, freqs[i]);
        if (rc != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "refresh_frequency %u: %s", freqs[i], sipreg_result_str(rc));
    }
    EXPECT_RC(sipreg_registerer_options_set_refresh_frequency(opts, 50), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_refresh_frequency(opts, 99), SIPREG_OK);

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double v = bad[i];
        sipreg_result rc;
        if ((rc = sipreg_registerer_options_set_retry_base(opts, v)) != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "retry_base %g: %s", v, sipreg_result_str(rc));
        if ((rc = sipreg_registerer_options_set_retry_max(opts, v)) != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "retry_max %g: %s", v, sipreg_result_str(rc));
        if ((rc = sipreg_registerer_options_set_retry_after_max(opts, v)) != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "retry_after_max %g: %s", v, sipreg_result_str(rc));
        if ((rc = sipreg_user_agent_set_timers(ua, v, 4, 5)) != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "t1 %g: %s", v, sipreg_result_str(rc));
        if ((rc = sipreg_user_agent_set_timers(ua, 0.5, v, 5)) != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "t2 %g: %s", v, sipreg_result_str(rc));
        if ((rc = sipreg_user_agent_set_timers(ua, 0.5, 4, v)) != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "t4 %g: %s", v, sipreg_result_str(rc));
        if ((rc = sipreg_user_agent_set_shutdown_timeout(ua, v)) != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "shutdown timeout %g: %s", v, sipreg_result_str(rc));
    }
    /* Zero and sub-millisecond timers; T2 below T1. */
    EXPECT_INVALID(sipreg_user_agent_set_timers(ua, 0, 4, 5));
    EXPECT_INVALID(sipreg_user_agent_set_timers(ua, 1e-7, 4, 5));
    EXPECT_INVALID(sipreg_user_agent_set_timers(ua, 0.5, 0, 5));
    EXPECT_INVALID(sipreg_user_agent_set_timers(ua, 0.5, 4, 0));
    EXPECT_INVALID(sipreg_user_agent_set_timers(ua, 4, 0.5, 5));
    EXPECT_INVALID(sipreg_user_agent_set_timers(ua, -0.0, 4, 5));
    {
        sipreg_result rc = sipreg_user_agent_set_shutdown_timeout(ua, -0.0); /* zero: OK or refused, never a panic */
        EXPECT(rc == SIPREG_OK || rc == SIPREG_ERR_INVALID_ARGUMENT, "shutdown -0.0: %s", sipreg_result_str(rc));
    }
    EXPECT_RC(sipreg_user_agent_set_timers(ua, 0.5, 4, 5), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_shutdown_timeout(ua, 0), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_shutdown_timeout(ua, 2), SIPREG_OK);
    EXPECT_INVALID(sipreg_registerer_options_set_cseq(opts, 1u << 31));
    EXPECT_INVALID(sipreg_registerer_options_set_cseq(opts, UINT32_MAX));
    EXPECT_RC(sipreg_registerer_options_set_cseq(opts, (1u << 31) - 1), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_cseq(opts, 1), SIPREG_OK);
}

/* sipreg_registerer_new with `o` must fail with `want` and create nothing. */
static void expect_new_fails(sipreg_registerer_options *o, sipreg_result want, const char *what) {
    sipreg_registerer *r = (sipreg_registerer *)(uintptr_t)0x99;
    sipreg_result rc = sipreg_registerer_new(ua, o, NULL, NULL, &r);
    if (rc != want) t_fail(__FILE__, __LINE__, "registerer_new with %s: got %s, want %s (%s)", what, sipreg_result_str(rc),
                           sipreg_result_str(want), sipreg_last_error());
    if (r != (sipreg_registerer *)(uintptr_t)0x99) {
        t_fail(__FILE__, __LINE__, "registerer_new with %s wrote a handle on failure", what);
        if (rc == SIPREG_OK) sipreg_registerer_free(r);
    }
}

static sipreg_registerer_options *fresh_opts(void) {
    sipreg_registerer_options *o = NULL;
    char uri[64];
    snprintf(uri, sizeof uri, "sip:127.0.0.1:%d", closed_port);
    if (sipreg_registerer_options_new(&o) != SIPREG_OK || sipreg_registerer_options_set_registrar(o, uri) != SIPREG_OK)
        t_fail(__FILE__, __LINE__, "options: %s", sipreg_last_error());
    return o;
}

static void bad_uris_and_injection(void) {
    sipreg_user_agent *u = NULL;
    const char *bad_aors[] = {"", "alice", "sip:", "sip:@", "sip:127.0.0.1", "http://alice@127.0.0.1",
                              "sip:alice@", "sip:alice@127.0.0.1?Subject=x", "sip:alice@127.0.0.1\r\nVia: x",
                              "sip:alice@127.0.0.1\n", "sip:al ice@127.0.0.1", "sip:alice@[::1", "sip:alice@127.0.0.1:99999",
                              "sip:alice@127.0.0.1:-1", "sips:", "<sip:alice@127.0.0.1>"};
    for (size_t i = 0; i < sizeof bad_aors / sizeof *bad_aors; i++) {
        u = NULL;
        sipreg_result rc = sipreg_user_agent_new(bad_aors[i], &u);
        if (rc != SIPREG_ERR_INVALID_ARGUMENT) {
            t_fail(__FILE__, __LINE__, "aor \"%s\": got %s, want INVALID_ARGUMENT", bad_aors[i], sipreg_result_str(rc));
            if (rc == SIPREG_OK) sipreg_user_agent_free(u);
        }
    }
    const char *bad_uris[] = {"", "not a uri", "sip:", "http://127.0.0.1", "sip:127.0.0.1\r\nX-Evil: 1",
                              "sip:127.0.0.1\n", "sip:127.0.0.1:0x10", "sip:127.0.0.1:65536", "sip:[::1"};
    for (size_t i = 0; i < sizeof bad_uris / sizeof *bad_uris; i++) {
        sipreg_result rc = sipreg_user_agent_set_outbound_proxy(ua, bad_uris[i]);
        if (rc != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "outbound proxy \"%s\": %s", bad_uris[i], sipreg_result_str(rc));
        /* The registrar is checked at the setter (CR/LF) or at registerer_new (syntax). */
        sipreg_registerer_options *o = fresh_opts();
        rc = sipreg_registerer_options_set_registrar(o, bad_uris[i]);
        if (rc == SIPREG_OK) expect_new_fails(o, SIPREG_ERR_INVALID_ARGUMENT, bad_uris[i]);
        else if (rc != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "registrar \"%s\": %s", bad_uris[i], sipreg_result_str(rc));
        sipreg_registerer_options_free(o);
    }
    /* Registrar with a user part or URI headers; to_uri that is no URI. */
    const char *bad_registrars[] = {"sip:bob@127.0.0.1", "sip:127.0.0.1?Route=x", "sip:127.0.0.1;transport=sctp"};
    for (size_t i = 0; i < sizeof bad_registrars / sizeof *bad_registrars; i++) {
        sipreg_registerer_options *o = fresh_opts();
        sipreg_result rc = sipreg_registerer_options_set_registrar(o, bad_registrars[i]);
        if (rc == SIPREG_OK) expect_new_fails(o, SIPREG_ERR_INVALID_ARGUMENT, bad_registrars[i]);
        else EXPECT(rc == SIPREG_ERR_INVALID_ARGUMENT, "registrar %s: %s", bad_registrars[i], sipreg_result_str(rc));
        sipreg_registerer_options_free(o);
    }
    {
        sipreg_registerer_options *o = fresh_opts();
        sipreg_result rc = sipreg_registerer_options_set_to_uri(o, "definitely not a uri");
        if (rc == SIPREG_OK) expect_new_fails(o, SIPREG_ERR_INVALID_ARGUMENT, "to_uri garbage");
        else EXPECT(rc == SIPREG_ERR_INVALID_ARGUMENT, "to_uri: %s", sipreg_result_str(rc));
        sipreg_registerer_options_free(o);
    }

    /* CR/LF (and other control characters) must never reach the wire. */
    const char *inject[] = {"x\r\nContact: *", "x\nVia: evil", "x\rX", "x\tx\x01", "x\x7f"};
    for (size_t i = 0; i < sizeof inject / sizeof *inject; i++) {
        const char *v = inject[i];
        sipreg_result rc;
#define NO_CTL(call)                                                                                            \
    if ((rc = (call)) != SIPREG_ERR_INVALID_ARGUMENT)                                                          \
        t_fail(__FILE__, __LINE__, "%s with control characters (#%zu): %s", #call, i, sipreg_result_str(rc));
        NO_CTL(sipreg_user_agent_set_password(ua, v));
        NO_CTL(sipreg_user_agent_set_auth_username(ua, v));
        NO_CTL(sipreg_user_agent_set_user_agent(ua, v));
        NO_CTL(sipreg_registerer_options_set_call_id(opts, v));
        NO_CTL(sipreg_registerer_options_set_from_display_name(opts, v));
        NO_CTL(sipreg_registerer_options_set_to_display_name(opts, v));
        NO_CTL(sipreg_registerer_options_set_from_tag(opts, v));
        NO_CTL(sipreg_registerer_options_set_instance_id(opts, v));
        NO_CTL(sipreg_registerer_options_add_extra_contact_param(opts, v));
#undef NO_CTL
    }
    const char *bad_headers[] = {"X-A: b\r\nContact: *", "X-A: b\nX-B: c", "X-A: b\r", "NoColonHere", ": empty name",
                                 "X-A:", "X-A:   ", "Bad Name: x", "Via: SIP/2.0/UDP evil", "Contact: *",
                                 "CSeq: 1 REGISTER", "Call-ID: x", "Authorization: Digest x", "Content-Length: 5",
                                 "X-A: \x01"};
    for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
        sipreg_result rc = sipreg_registerer_options_add_extra_header(opts, bad_headers[i]);
        if (rc != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "extra header \"%s\": %s", bad_headers[i], sipreg_result_str(rc));
    }
    const char *bad_params[] = {"", "=x", "a b", "expires=5", "EXPIRES=1", "a=\"unterminated", "a=b;c", "a=<x>"};
    for (size_t i = 0; i < sizeof bad_params / sizeof *bad_params; i++) {
        sipreg_result rc = sipreg_registerer_options_add_extra_contact_param(opts, bad_params[i]);
        if (rc != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "contact param \"%s\": %s", bad_params[i], sipreg_result_str(rc));
    }
    /* The builder still works and has none of the rejected values. */
    EXPECT_RC(sipreg_registerer_options_add_extra_header(opts, "X-Test: fine"), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_add_extra_contact_param(opts, "fine=1"), SIPREG_OK);

    const char *bad_local[] = {"", "localhost", "127.0.0.1:99999", "1.2.3", "127.0.0.1:port", "::1]:5060x"};
    for (size_t i = 0; i < sizeof bad_local / sizeof *bad_local; i++) {
        sipreg_result rc = sipreg_user_agent_set_local_address(ua, bad_local[i]);
        if (rc != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "local address \"%s\": %s", bad_local[i], sipreg_result_str(rc));
    }
    EXPECT_INVALID(sipreg_user_agent_set_user_agent(ua, ""));
    EXPECT_INVALID(sipreg_user_agent_set_user_agent(ua, "   "));
    EXPECT_INVALID(sipreg_user_agent_set_auth_username(ua, ""));
}

static void option_combinations_fail_at_new(void) {
    /* reg_id needs an instance id: accepted by the setter, refused at registerer_new. */
    sipreg_registerer_options *o = fresh_opts();
    EXPECT_RC(sipreg_registerer_options_set_reg_id(o, 1), SIPREG_OK);
    expect_new_fails(o, SIPREG_ERR_INVALID_ARGUMENT, "reg_id without instance_id");
    EXPECT_RC(sipreg_registerer_options_set_instance_id(o, "not-a-uuid"), SIPREG_OK);
    expect_new_fails(o, SIPREG_ERR_INVALID_ARGUMENT, "instance_id not a UUID");
    EXPECT_RC(sipreg_registerer_options_set_instance_id(o, "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"), SIPREG_OK);
    sipreg_registerer *r = NULL;
    EXPECT_RC(sipreg_registerer_new(ua, o, NULL, NULL, &r), SIPREG_OK);
    sipreg_registerer_free(r);
    EXPECT_RC(sipreg_registerer_options_set_reg_id(o, 0), SIPREG_OK); /* 0 removes it */
    EXPECT_RC(sipreg_registerer_options_set_instance_id(o, NULL), SIPREG_OK);
    r = NULL;
    EXPECT_RC(sipreg_registerer_new(ua, o, NULL, NULL, &r), SIPREG_OK);
    sipreg_registerer_free(r);
    sipreg_registerer_options_free(o);

    /* Retry policy: base 0 (setter range allows it), max below base. */
    o = fresh_opts();
    sipreg_result rc = sipreg_registerer_options_set_retry_base(o, 0);
    if (rc == SIPREG_OK) expect_new_fails(o, SIPREG_ERR_INVALID_ARGUMENT, "retry_base 0");
    else EXPECT(rc == SIPREG_ERR_INVALID_ARGUMENT, "retry_base 0: %s", sipreg_result_str(rc));
    sipreg_registerer_options_free(o);
    o = fresh_opts();
    EXPECT_RC(sipreg_registerer_options_set_retry_base(o, 100), SIPREG_OK);
    rc = sipreg_registerer_options_set_retry_max(o, 10);
    if (rc == SIPREG_OK) expect_new_fails(o, SIPREG_ERR_INVALID_ARGUMENT, "retry_max < retry_base");
    else EXPECT(rc == SIPREG_ERR_INVALID_ARGUMENT, "retry_max: %s", sipreg_result_str(rc));
    sipreg_registerer_options_free(o);

    /* Transports: "sctp" is refused at the setter; "tls" creates a registerer
       (the connection, and its handshake, happen only when a request is sent). */
    sipreg_user_agent *u = NULL;
    MUST(sipreg_user_agent_new("sip:transport@127.0.0.1", &u));
    EXPECT_INVALID(sipreg_user_agent_set_transport(u, "sctp"));
    EXPECT_INVALID(sipreg_user_agent_set_transport(u, ""));
    EXPECT_INVALID(sipreg_user_agent_set_transport(u, "udp "));
    EXPECT_RC(sipreg_user_agent_set_transport(u, "TCP"), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_transport(u, "tls"), SIPREG_OK);
    o = fresh_opts();
    r = (sipreg_registerer *)(uintptr_t)0x99;
    EXPECT_RC(sipreg_registerer_new(u, o, NULL, NULL, &r), SIPREG_OK);
    if (r != (sipreg_registerer *)(uintptr_t)0x99) sipreg_registerer_free(r);
    sipreg_registerer_options_free(o);
    EXPECT_RC(sipreg_user_agent_set_transport(u, "udp"), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_free(u), SIPREG_OK);
}

static void forged_and_mistyped_handles(void) {
    sipreg_registerer *forged = (sipreg_registerer *)(uintptr_t)0x12345678;
    sipreg_user_agent *forged_ua = (sipreg_user_agent *)(uintptr_t)0x12345678;
    sipreg_registerer_options *forged_o = (sipreg_registerer_options *)(uintptr_t)0x12345678;
    sipreg_registerer *high = (sipreg_registerer *)(uintptr_t)UINTPTR_MAX;
    sipreg_state s;
    size_t n;
    char buf[32];
    uint16_t code;
    uint32_t u32;
    uint64_t u64;
    bool present;
    double d;
    sipreg_stats st;
    sipreg_registerer *r = NULL;

    EXPECT_INVALID(sipreg_register(forged));
    EXPECT_INVALID(sipreg_register(high));
    EXPECT_INVALID(sipreg_unregister(forged, true));
    EXPECT_INVALID(sipreg_dispose(forged));
    EXPECT_INVALID(sipreg_registerer_state(forged, &s));
    EXPECT_INVALID(sipreg_registerer_contact_count(forged, &n));
    EXPECT_INVALID(sipreg_registerer_contact(forged, 0, buf, sizeof buf, &n));
    EXPECT_INVALID(sipreg_registerer_retry_after(forged, &u32, &present));
    EXPECT_INVALID(sipreg_registerer_last_response(forged, &code, buf, sizeof buf, &n));
    EXPECT_INVALID(sipreg_registerer_next_retry(forged, &d));
    EXPECT_INVALID(sipreg_registerer_failure_count(forged, &u32));
    EXPECT_INVALID(sipreg_registerer_retransmissions(forged, &u64));
    EXPECT_INVALID(sipreg_registerer_set_state_callback(forged, tracker_on_state, NULL));
    EXPECT_INVALID(sipreg_registerer_set_event_callback(forged, tracker_on_event, NULL));
    sipreg_registerer_free(forged);
    sipreg_registerer_free(high);
    EXPECT_INVALID(sipreg_user_agent_set_password(forged_ua, "x"));
    EXPECT_INVALID(sipreg_user_agent_stats(forged_ua, &st));
    EXPECT_INVALID(sipreg_user_agent_network_changed(forged_ua));
    EXPECT_INVALID(sipreg_user_agent_free(forged_ua));
    EXPECT_INVALID(sipreg_registerer_new(forged_ua, NULL, NULL, NULL, &r));
    EXPECT_INVALID(sipreg_registerer_new(ua, forged_o, NULL, NULL, &r));
    EXPECT_INVALID(sipreg_registerer_options_set_expires(forged_o, 60));
    EXPECT_INVALID(sipreg_registerer_options_free(forged_o));

    /* A handle of one kind passed as another is refused as such (an invalid
     * argument naming both kinds) and frees nothing. */
    sipreg_registerer *ua_as_reg = (sipreg_registerer *)(void *)ua;
    sipreg_registerer_options *ua_as_opts = (sipreg_registerer_options *)(void *)ua;
    sipreg_user_agent *opts_as_ua = (sipreg_user_agent *)(void *)opts;
    EXPECT_INVALID(sipreg_register(ua_as_reg));
    EXPECT(strstr(sipreg_last_error(), "sipreg_user_agent handle, not a sipreg_registerer") != NULL,
           "the message names both kinds: %s", sipreg_last_error());
    EXPECT_INVALID(sipreg_registerer_state(ua_as_reg, &s));
    sipreg_registerer_free(ua_as_reg);
    EXPECT_INVALID(sipreg_registerer_options_free(ua_as_opts));
    EXPECT_INVALID(sipreg_user_agent_free(opts_as_ua));
    /* Both still work. */
    EXPECT_RC(sipreg_user_agent_stats(ua, &st), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_expires(opts, 60), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_new(ua, opts, NULL, NULL, &r), SIPREG_OK);
    sipreg_registerer_free(r);

    /* A freed options builder: refused (TERMINATED, as freed handles are). */
    sipreg_registerer_options *o = NULL;
    MUST(sipreg_registerer_options_new(&o));
    EXPECT_RC(sipreg_registerer_options_free(o), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_free(o), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_registerer_options_set_expires(o, 60), SIPREG_ERR_TERMINATED);
    EXPECT(sipreg_registerer_new(ua, o, NULL, NULL, &r) != SIPREG_OK, "freed options refused");

    /* A freed user agent. */
    sipreg_user_agent *u = NULL;
    MUST(sipreg_user_agent_new("sip:freed@127.0.0.1", &u));
    EXPECT_RC(sipreg_user_agent_free(u), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_free(u), SIPREG_ERR_TERMINATED);
    /* Passed as a registerer, it is still of another kind, not a freed registerer. */
    EXPECT_INVALID(sipreg_register((sipreg_registerer *)(void *)u));
    EXPECT_RC(sipreg_user_agent_set_password(u, "x"), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_user_agent_stats(u, &st), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_registerer_new(u, NULL, NULL, NULL, &r), SIPREG_ERR_TERMINATED);
}

static void credentials_and_request_headers(void) {
    const char *md5 = "0123456789abcdef0123456789ABCDEF"; /* 32 hex digits, either case */
    const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    EXPECT_RC(sipreg_user_agent_add_credential(ua, "r", "u", md5, SIPREG_SECRET_HA1_MD5), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_add_credential(ua, NULL, NULL, sha, SIPREG_SECRET_HA1_SHA256), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_add_credential(ua, NULL, NULL, sha, SIPREG_SECRET_HA1_SHA512_256), SIPREG_OK);
    /* Kinds out of range from C: refused, never undefined behaviour. */
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, "pw", (sipreg_secret)4));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, "pw", (sipreg_secret)-1));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, "pw", (sipreg_secret)INT32_MAX));
    /* An HA1 of the wrong length, not hex, or of another algorithm's length. */
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, "0123", SIPREG_SECRET_HA1_MD5));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, sha, SIPREG_SECRET_HA1_MD5));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, md5, SIPREG_SECRET_HA1_SHA256));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, "0123456789abcdef0123456789abcdeg",
                                                    SIPREG_SECRET_HA1_MD5));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, "", SIPREG_SECRET_HA1_SHA512_256));
    EXPECT(strstr(sipreg_last_error(), md5) == NULL, "the secret is never echoed");
    /* Invalid UTF-8, control characters, an empty username. */
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, BAD_UTF8_TEXT, NULL, "pw", SIPREG_SECRET_PASSWORD));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, BAD_UTF8_TEXT, "pw", SIPREG_SECRET_PASSWORD));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, BAD_UTF8_TEXT, SIPREG_SECRET_PASSWORD));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, "r\r\nX: y", NULL, "pw", SIPREG_SECRET_PASSWORD));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, "u\n", "pw", SIPREG_SECRET_PASSWORD));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, NULL, "p\rw", SIPREG_SECRET_PASSWORD));
    EXPECT_INVALID(sipreg_user_agent_add_credential(ua, NULL, "", "pw", SIPREG_SECRET_PASSWORD));
    EXPECT(strstr(sipreg_last_error(), "pw") == NULL, "the secret is never echoed: %s", sipreg_last_error());
    /* Forged and freed user agents. */
    sipreg_user_agent *forged_ua = (sipreg_user_agent *)(uintptr_t)0x12345678;
    EXPECT_INVALID(sipreg_user_agent_add_credential(forged_ua, NULL, NULL, "pw", SIPREG_SECRET_PASSWORD));
    EXPECT_INVALID(sipreg_user_agent_set_digest_downgrade(forged_ua, true));
    sipreg_user_agent *u = NULL;
    MUST(sipreg_user_agent_new("sip:freedcreds@127.0.0.1", &u));
    EXPECT_RC(sipreg_user_agent_add_credential(u, NULL, NULL, "secret-to-wipe", SIPREG_SECRET_PASSWORD), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_free(u), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_add_credential(u, NULL, NULL, "pw", SIPREG_SECRET_PASSWORD), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_user_agent_set_digest_downgrade(u, true), SIPREG_ERR_TERMINATED);

    /* Per-request headers: the extra headers' checks, then nothing is sent. */
    sipreg_registerer *r = NULL;
    MUST(sipreg_registerer_new(ua, opts, NULL, NULL, &r));
    const char *bad[] = {"X-A: 1\r\nVia: SIP/2.0/UDP evil", "Contact: <sip:x@127.0.0.1>", "Authorization: Digest x",
                         "Expires: 0", "no colon", "X-Empty:   ", "Bad Name: v", "X-A: " BAD_UTF8_TEXT,
                         "X-Nul\x01: v", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *one[] = {"X-Good: 1", bad[i]};
        sipreg_result rc = sipreg_register_with_headers(r, one, 2);
        if (rc != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "register header %zu: %s", i, sipreg_result_str(rc));
        rc = sipreg_unregister_with_headers(r, true, one, 2);
        if (rc != SIPREG_ERR_INVALID_ARGUMENT)
            t_fail(__FILE__, __LINE__, "unregister header %zu: %s", i, sipreg_result_str(rc));
    }
    /* An absurd count is refused before anything is read past the caller's array. */
    const char *many[300];
    for (size_t i = 0; i < 300; i++) many[i] = "X-Many: 1";
    EXPECT_INVALID(sipreg_register_with_headers(r, many, 300));
    sipreg_state s;
    EXPECT_RC(sipreg_registerer_state(r, &s), SIPREG_OK);
    EXPECT(s == SIPREG_STATE_INITIAL, "nothing was sent: %s", state_name(s));
    sipreg_registerer_free(r);
    sipreg_registerer *forged = (sipreg_registerer *)(uintptr_t)0x12345678;
    const char *good[] = {"X-Good: 1"};
    EXPECT_INVALID(sipreg_register_with_headers(forged, good, 1));
    EXPECT_INVALID(sipreg_unregister_with_headers(forged, false, good, 1));
    /* Freed: TERMINATED. */
    EXPECT_RC(sipreg_register_with_headers(r, good, 1), SIPREG_ERR_TERMINATED);
    EXPECT_RC(sipreg_user_agent_set_digest_downgrade(ua, false), SIPREG_OK);
}

static void result_names(void) {
    const char *names[] = {"SIPREG_OK", "SIPREG_ERR_NULL_ARGUMENT", "SIPREG_ERR_INVALID_ARGUMENT",
                           "SIPREG_ERR_REQUEST_PENDING", "SIPREG_ERR_TERMINATED", "SIPREG_ERR_TRANSPORT",
                           "SIPREG_ERR_BUFFER_TOO_SMALL", "SIPREG_ERR_INTERNAL"};
    for (int i = 0; i < 8; i++)
        EXPECT(strcmp(sipreg_result_str((sipreg_result)i), names[i]) == 0, "result_str(%d) = %s", i,
               sipreg_result_str((sipreg_result)i));
    /* Log levels in range, with no callback: fine. */
    for (int l = SIPREG_LOG_OFF; l <= SIPREG_LOG_DEBUG; l++)
        EXPECT_RC(sipreg_set_log_callback(NULL, NULL, (sipreg_log_level)l), SIPREG_OK);
    /* Out-of-range values from C are answered, never undefined behaviour. */
    const char *s = sipreg_result_str((sipreg_result)42);
    EXPECT(s != NULL, "result_str(42) must give a text");
    EXPECT_INVALID(sipreg_set_log_callback(NULL, NULL, (sipreg_log_level)9));
    EXPECT(strcmp(sipreg_result_str((sipreg_result)-1), "SIPREG_UNKNOWN") == 0, "result_str(-1)");
}

int main(void) {
    printf("bad_values:\n");
    closed_port = closed_udp_port();
    if (sipreg_user_agent_new("sip:badvalues@127.0.0.1", &ua) != SIPREG_OK) {
        fprintf(stderr, "setup: %s\n", sipreg_last_error());
        return 1;
    }
    opts = fresh_opts();
    RUN(invalid_utf8_everywhere);
    RUN(absurd_numbers);
    RUN(bad_uris_and_injection);
    RUN(option_combinations_fail_at_new);
    RUN(forged_and_mistyped_handles);
    RUN(credentials_and_request_headers);
    RUN(result_names);
    /* The builder and user agent survived all of it. */
    sipreg_registerer *r = NULL;
    EXPECT_RC(sipreg_registerer_new(ua, opts, NULL, NULL, &r), SIPREG_OK);
    sipreg_registerer_free(r);
    sipreg_registerer_options_free(opts);
    EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
    return t_finish("bad_values");
}
