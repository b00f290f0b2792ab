/*
 * The NAT / outbound / routing functions of issue 10: NULL arguments, small
 * buffers, indexes out of range, values before any registration, bad values.
 * (Values from a real 200 are checked in tests/nat_it.rs and test_nat.py.)
 */
#include <string.h>

#include "common.h"

static sipreg_user_agent *ua;
static sipreg_registerer *reg;
static sipreg_registerer_options *opts;

static void null_arguments(void) {
    char buf[64];
    size_t n;
    EXPECT_RC(sipreg_user_agent_set_keepalive(NULL, 30), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_contact_rewrite(NULL, true), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_options_set_path_gruu(NULL, true), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_service_route_count(NULL, &n), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_service_route_count(reg, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_service_route(NULL, 0, buf, sizeof buf, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_path_count(NULL, &n), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_path_count(reg, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_path(NULL, 0, buf, sizeof buf, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_pub_gruu(NULL, buf, sizeof buf, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_temp_gruu(NULL, buf, sizeof buf, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_public_address(NULL, buf, sizeof buf, NULL), SIPREG_ERR_NULL_ARGUMENT);
    /* A NULL buffer with a length is a NULL argument. */
    EXPECT_RC(sipreg_registerer_pub_gruu(reg, NULL, 16, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_service_route(reg, 0, NULL, 16, NULL), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_registerer_temp_gruu(reg, buf, sizeof buf, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_public_address(reg, buf, sizeof buf, NULL), SIPREG_OK);
}

static void before_registration(void) {
    char buf[64];
    size_t n = 99;
    EXPECT_RC(sipreg_registerer_service_route_count(reg, &n), SIPREG_OK);
    EXPECT(n == 0, "no Service-Route yet, got %zu", n);
    n = 99;
    EXPECT_RC(sipreg_registerer_path_count(reg, &n), SIPREG_OK);
    EXPECT(n == 0, "no Path yet, got %zu", n);
    EXPECT_RC(sipreg_registerer_service_route(reg, 0, buf, sizeof buf, NULL), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT(strstr(sipreg_last_error(), "out of range") != NULL, "%s", sipreg_last_error());
    EXPECT_RC(sipreg_registerer_path(reg, 0, buf, sizeof buf, NULL), SIPREG_ERR_INVALID_ARGUMENT);
    const char *names[] = {"pub_gruu", "temp_gruu", "public_address"};
    sipreg_result (*fns[])(sipreg_registerer *, char *, size_t, size_t *) = {
        sipreg_registerer_pub_gruu, sipreg_registerer_temp_gruu, sipreg_registerer_public_address};
    for (int i = 0; i < 3; i++) {
        memset(buf, 'x', sizeof buf);
        EXPECT_RC(fns[i](reg, buf, sizeof buf, NULL), SIPREG_OK);
        EXPECT(buf[0] == 0, "%s empty before a 2xx", names[i]);
        /* Even "" needs one byte: a zero-length buffer is too small and says so. */
        memset(buf, 'x', sizeof buf);
        size_t need = 0;
        EXPECT_RC(fns[i](reg, buf, 0, &need), SIPREG_ERR_BUFFER_TOO_SMALL);
        EXPECT(buf[0] == 'x', "%s: nothing written into a too small buffer", names[i]);
        EXPECT(need == 1, "%s: needed %zu, not 1", names[i], need);
        EXPECT(strstr(sipreg_last_error(), "1 bytes needed") != NULL, "%s: %s", names[i], sipreg_last_error());
        need = 0;
        EXPECT_RC(fns[i](reg, NULL, 0, &need), SIPREG_ERR_BUFFER_TOO_SMALL);
        EXPECT(need == 1, "%s: the size query gives 1, got %zu", names[i], need);
    }
}

static void bad_values(void) {
    EXPECT_RC(sipreg_user_agent_set_keepalive(ua, 3601), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT(strstr(sipreg_last_error(), "keepalive") != NULL, "error names the option: %s", sipreg_last_error());
    EXPECT_RC(sipreg_user_agent_set_keepalive(ua, 0), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_keepalive(ua, 3600), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_contact_rewrite(ua, false), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_contact_rewrite(ua, true), SIPREG_OK);
    EXPECT_RC(sipreg_registerer_options_set_path_gruu(opts, true), SIPREG_OK);
    /* A forged handle is refused, not dereferenced. */
    sipreg_registerer *forged = (sipreg_registerer *)(uintptr_t)0x7fff0001;
    size_t n;
    char buf[8];
    EXPECT_RC(sipreg_registerer_service_route_count(forged, &n), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_registerer_pub_gruu(forged, buf, sizeof buf, NULL), SIPREG_ERR_INVALID_ARGUMENT);
}

int main(void) {
    printf("nat_routing:\n");
    int port = closed_udp_port();
    char registrar_uri[64];
    snprintf(registrar_uri, sizeof registrar_uri, "sip:127.0.0.1:%d", port);
    if (sipreg_user_agent_new("sip:nattest@127.0.0.1", &ua) != SIPREG_OK ||
        sipreg_registerer_options_new(&opts) != SIPREG_OK ||
        sipreg_registerer_options_set_registrar(opts, registrar_uri) != SIPREG_OK ||
        sipreg_registerer_new(ua, opts, NULL, NULL, &reg) != SIPREG_OK) {
        fprintf(stderr, "setup failed: %s\n", sipreg_last_error());
        return 1;
    }
    RUN(null_arguments);
    RUN(before_registration);
    RUN(bad_values);
    sipreg_registerer_free(reg);
    sipreg_registerer_options_free(opts);
    EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
    return t_finish("nat_routing");
}
