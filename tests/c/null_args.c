/*
 * NULL for every pointer argument of every function: each returns
 * SIPREG_ERR_NULL_ARGUMENT, except where the header documents NULL as
 * meaningful (the *_free functions ignore it, optional strings clear a
 * setting, a NULL callback removes it, NULL options mean the defaults).
 * Also: a failing call leaves its out-parameter untouched and creates nothing.
 */
#include <string.h>

#include "common.h"

static sipreg_user_agent *ua;
static sipreg_registerer *reg;
static sipreg_registerer_options *opts;

static void global_functions(void) {
    EXPECT(sipreg_version() != NULL && strcmp(sipreg_version(), SIPREG_VERSION) == 0, "version %s",
           sipreg_version() ? sipreg_version() : "(null)");
    EXPECT(sipreg_last_error() != NULL, "last_error never NULL");
    for (int i = SIPREG_OK; i <= SIPREG_ERR_INTERNAL; i++)
        EXPECT(sipreg_result_str((sipreg_result)i) != NULL && strncmp(sipreg_result_str((sipreg_result)i), "SIPREG_", 7) == 0,
               "result_str(%d)", i);
    /* NULL callback = logging off: documented as fine, with any level. */
    EXPECT_RC(sipreg_set_log_callback(NULL, NULL, SIPREG_LOG_DEBUG), SIPREG_OK);
    EXPECT_RC(sipreg_set_log_callback(NULL, NULL, SIPREG_LOG_OFF), SIPREG_OK);
}

static void options_functions(void) {
    uint32_t v = 0;
    EXPECT_RC(sipreg_registerer_options_new(NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT(strlen(sipreg_last_error()) > 0, "a failing call sets the last error");
    EXPECT_RC(sipreg_registerer_options_free(NULL), SIPREG_OK); /* documented: ignored */
    EXPECT_RC(sipreg_registerer_options_set_expires(NULL, 60), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_refresh_frequency(NULL, 90), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_registrar(NULL, "sip:127.0.0.1"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_instance_id(NULL, "urn:uuid:00000000-0000-0000-0000-000000000001"),
              SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_call_id(NULL, "abc"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_from_display_name(NULL, "A"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_to_display_name(NULL, "A"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_to_uri(NULL, "sip:a@b"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_from_tag(NULL, "t"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_add_extra_header(NULL, "X-A: b"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_add_extra_contact_param(NULL, "a=b"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_reg_id(NULL, 1), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_cseq(NULL, 1), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_retry(NULL, true), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_retry_base(NULL, 1.0), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_retry_max(NULL, 1.0), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_retry_after_max(NULL, 1.0), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_get_expires(NULL, &v), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_get_expires(opts, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_get_expires(NULL, NULL), SIPREG_ERR_NULL_ARGUMENT);

    /* Optional strings: NULL clears the setting (documented), on a valid builder. */
    EXPECT_RC(sipreg_registerer_options_set_registrar(opts, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_instance_id(opts, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_call_id(opts, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_from_display_name(opts, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_to_display_name(opts, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_to_uri(opts, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_from_tag(opts, NULL), SIPREG_OK);
    /* A header / contact parameter to add is required. */
    EXPECT_RC(sipreg_registerer_options_add_extra_header(opts, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_add_extra_contact_param(opts, NULL), SIPREG_ERR_NULL_ARGUMENT);
}

static void user_agent_functions(void) {
    sipreg_user_agent *out = (sipreg_user_agent *)(uintptr_t)0x5a5a;
    sipreg_stats st;
    EXPECT_RC(sipreg_user_agent_new(NULL, &out), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT(out == (sipreg_user_agent *)(uintptr_t)0x5a5a, "out untouched on failure");
    EXPECT_RC(sipreg_user_agent_new("sip:alice@127.0.0.1", NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_new(NULL, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_password(NULL, "pw"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_auth_username(NULL, "u"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_transport(NULL, "udp"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_outbound_proxy(NULL, "sip:127.0.0.1"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_local_address(NULL, "127.0.0.1"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_user_agent(NULL, "x"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_timers(NULL, 0.5, 4, 5), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_shutdown_timeout(NULL, 1), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_network_changed(NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_stats(NULL, &st), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_stats(ua, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_free(NULL), SIPREG_OK); /* documented: ignored */

    /* Documented NULL values on a valid user agent. */
    EXPECT_RC(sipreg_user_agent_set_password(ua, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_auth_username(ua, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_outbound_proxy(ua, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_local_address(ua, NULL), SIPREG_OK);
    /* Not documented as optional: required. */
    EXPECT_RC(sipreg_user_agent_set_transport(ua, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_user_agent(ua, NULL), SIPREG_ERR_NULL_ARGUMENT);
}

static void registerer_functions(void) {
    sipreg_registerer *out = (sipreg_registerer *)(uintptr_t)0x5a5a;
    sipreg_state s;
    size_t n;
    char buf[64];
    uint16_t code;
    uint32_t u32;
    uint64_t u64;
    bool present;
    double d;

    EXPECT_RC(sipreg_registerer_new(NULL, opts, NULL, NULL, &out), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT(out == (sipreg_registerer *)(uintptr_t)0x5a5a, "out untouched on failure");
    EXPECT_RC(sipreg_registerer_new(ua, opts, NULL, NULL, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_new(NULL, NULL, NULL, NULL, NULL), SIPREG_ERR_NULL_ARGUMENT);

    EXPECT_RC(sipreg_registerer_set_state_callback(NULL, tracker_on_state, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_set_event_callback(NULL, tracker_on_event, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_register(NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_unregister(NULL, false), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_unregister(NULL, true), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_dispose(NULL), SIPREG_ERR_NULL_ARGUMENT);
    sipreg_registerer_free(NULL); /* documented: ignored */

    EXPECT_RC(sipreg_registerer_state(NULL, &s), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_state(reg, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_contact_count(NULL, &n), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_contact_count(reg, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_contact(NULL, 0, buf, sizeof buf, &n), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_retry_after(NULL, &u32, &present), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_retry_after(reg, NULL, &present), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_retry_after(reg, &u32, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_last_response(NULL, &code, buf, sizeof buf, &n), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_last_response(reg, NULL, buf, sizeof buf, &n), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_next_retry(NULL, &d), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_next_retry(reg, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_failure_count(NULL, &u32), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_failure_count(reg, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_retransmissions(NULL, &u64), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_retransmissions(reg, NULL), SIPREG_ERR_NULL_ARGUMENT);

    /* Documented NULLs: no callback, default options, optional `needed`, code-only query. */
    EXPECT_RC(sipreg_registerer_set_state_callback(reg, NULL, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_set_event_callback(reg, NULL, NULL), SIPREG_OK);
    code = 1234;
    n = 0;
    EXPECT_RC(sipreg_registerer_last_response(reg, &code, NULL, 0, &n), SIPREG_OK);
    EXPECT(code == 0, "no response yet: code %u", (unsigned)code);
    EXPECT(n == 1, "needed for an empty reason is 1, got %zu", n);
    EXPECT_RC(sipreg_registerer_last_response(reg, &code, NULL, 0, NULL), SIPREG_OK);
    /* A non-zero length with a NULL buffer is a NULL argument. */
    EXPECT_RC(sipreg_registerer_last_response(reg, &code, NULL, 16, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_last_response(reg, &code, buf, sizeof buf, NULL), SIPREG_OK);
    EXPECT(buf[0] == 0, "empty reason before any response");

    sipreg_registerer *r2 = NULL;
    EXPECT_RC(sipreg_registerer_new(ua, NULL, NULL, NULL, &r2), SIPREG_OK); /* NULL options = defaults */
    EXPECT(r2 != NULL, "a registerer was made");
    if (r2) {
        EXPECT_RC(sipreg_registerer_state(r2, &s), SIPREG_OK);
        EXPECT(s == SIPREG_STATE_INITIAL, "new registerer is Initial, got %s", state_name(s));
        sipreg_registerer_free(r2);
    }
}

static void credential_and_request_header_functions(void) {
    const char *hs[] = {"X-A: 1", NULL};
    EXPECT_RC(sipreg_user_agent_add_credential(NULL, NULL, NULL, "pw", SIPREG_SECRET_PASSWORD),
              SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_add_credential(NULL, "r", "u", NULL, SIPREG_SECRET_HA1_MD5), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_digest_downgrade(NULL, true), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_register_with_headers(NULL, hs, 1), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_register_with_headers(NULL, NULL, 0), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_unregister_with_headers(NULL, false, hs, 1), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_unregister_with_headers(NULL, true, NULL, 0), SIPREG_ERR_NULL_ARGUMENT);
    /* A NULL array with headers to read, or a NULL element: refused, nothing sent. */
    EXPECT_RC(sipreg_register_with_headers(reg, NULL, 1), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_register_with_headers(reg, hs, 2), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_unregister_with_headers(reg, false, NULL, 3), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_unregister_with_headers(reg, true, hs, 2), SIPREG_ERR_NULL_ARGUMENT);
    sipreg_state s;
    EXPECT_RC(sipreg_registerer_state(reg, &s), SIPREG_OK);
    EXPECT(s == SIPREG_STATE_INITIAL, "nothing was started: %s", state_name(s));

    /* Documented NULLs: any realm, the default username; a NULL secret removes. */
    EXPECT_RC(sipreg_user_agent_add_credential(ua, NULL, NULL, "pw", SIPREG_SECRET_PASSWORD), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_add_credential(ua, NULL, NULL, NULL, SIPREG_SECRET_PASSWORD), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_add_credential(ua, "r", NULL, NULL, SIPREG_SECRET_HA1_SHA256), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_digest_downgrade(ua, false), SIPREG_OK);
    /* No headers: a NULL array with n = 0 is fine (on a registerer of its own). */
    sipreg_registerer *r2 = NULL;
    EXPECT_RC(sipreg_registerer_new(ua, opts, NULL, NULL, &r2), SIPREG_OK);
    if (r2) {
        EXPECT_RC(sipreg_register_with_headers(r2, NULL, 0), SIPREG_OK);
        sipreg_registerer_free(r2);
    }
}

int main(void) {
    printf("null_args:\n");
    int port = closed_udp_port();
    char registrar_uri[64];
    snprintf(registrar_uri, sizeof registrar_uri, "sip:127.0.0.1:%d", port);
    if (sipreg_user_agent_new("sip:nulltest@127.0.0.1", &ua) != SIPREG_OK ||
        sipreg_registerer_options_new(&opts) != SIPREG_OK ||
        sipreg_registerer_options_set_registrar(opts, registrar_uri) != SIPREG_OK ||
        sipreg_registerer_new(ua, opts, NULL, NULL, &reg) != SIPREG_OK) {
        fprintf(stderr, "setup failed: %s\n", sipreg_last_error());
        return 1;
    }
    RUN(global_functions);
    RUN(options_functions);
    RUN(user_agent_functions);
    RUN(registerer_functions);
    RUN(credential_and_request_header_functions);
    sipreg_registerer_free(reg);
    sipreg_registerer_options_free(opts);
    EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
    return t_finish("null_args");
}
