/*
 * The TLS and WebSocket setters and the flow accessor at the C boundary:
 * NULL arguments, a missing, unreadable, empty or garbled CA file, bad server
 * names and paths. Each failure is a result code with a last-error text that
 * names the problem; valid values are accepted; nothing crashes or leaks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static sipreg_user_agent *ua;

static void expect_error_mentions(const char *what, const char *needle) {
    const char *e = sipreg_last_error();
    EXPECT(e && strstr(e, needle) != NULL, "%s: last error \"%s\" mentions \"%s\"", what, e ? e : "(null)",
           needle);
}

static char *write_temp(const char *content) {
    static char paths[4][64];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, 64, "/tmp/sipreg-tls-XXXXXX");
    int fd = mkstemp(p);
    if (fd < 0) return NULL;
    if (write(fd, content, strlen(content)) < 0) { close(fd); return NULL; }
    close(fd);
    return p;
}

static void null_arguments(void) {
    char buf[16];
    EXPECT_RC(sipreg_user_agent_set_tls_ca_file(NULL, "/x"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_tls_server_name(NULL, "x"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_tls_verify(NULL, true), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_ws_path(NULL, "/"), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_registerer_flow(NULL, buf, sizeof buf, NULL), SIPREG_ERR_NULL_ARGUMENT);
    /* Documented: NULL restores the default (system roots, the registrar's host). */
    EXPECT_RC(sipreg_user_agent_set_tls_ca_file(ua, NULL), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_tls_server_name(ua, NULL), SIPREG_OK);
    /* The path is required. */
    EXPECT_RC(sipreg_user_agent_set_ws_path(ua, NULL), SIPREG_ERR_NULL_ARGUMENT);
}

static void bad_ca_files(void) {
    EXPECT_RC(sipreg_user_agent_set_tls_ca_file(ua, "/nonexistent/dir/ca.pem"), SIPREG_ERR_INVALID_ARGUMENT);
    expect_error_mentions("missing file", "cannot read CA file");
    EXPECT_RC(sipreg_user_agent_set_tls_ca_file(ua, "/"), SIPREG_ERR_INVALID_ARGUMENT);
    expect_error_mentions("a directory", "cannot read CA file");
    char *empty = write_temp("");
    char *text = write_temp("hello, this is not a certificate\n");
    char *garbled = write_temp("-----BEGIN CERTIFICATE-----\n%%%%not base64%%%%\n-----END CERTIFICATE-----\n");
    char *truncated = write_temp("-----BEGIN CERTIFICATE-----\nMIIB\n");
    EXPECT(empty && text && garbled && truncated, "temp files");
    if (!empty || !text || !garbled || !truncated) return;
    EXPECT_RC(sipreg_user_agent_set_tls_ca_file(ua, empty), SIPREG_ERR_INVALID_ARGUMENT);
    expect_error_mentions("empty file", "no PEM certificate");
    EXPECT_RC(sipreg_user_agent_set_tls_ca_file(ua, text), SIPREG_ERR_INVALID_ARGUMENT);
    expect_error_mentions("text file", "no PEM certificate");
    EXPECT_RC(sipreg_user_agent_set_tls_ca_file(ua, garbled), SIPREG_ERR_INVALID_ARGUMENT);
    expect_error_mentions("garbled PEM", "not valid PEM");
    EXPECT_RC(sipreg_user_agent_set_tls_ca_file(ua, truncated), SIPREG_ERR_INVALID_ARGUMENT);
    expect_error_mentions("truncated PEM", "CA file");
    /* Unreadable: only meaningful when not root (root reads anything). */
    if (geteuid() != 0) {
        char *secret = write_temp("-----BEGIN CERTIFICATE-----\n");
        if (secret) {
            chmod(secret, 0);
            EXPECT_RC(sipreg_user_agent_set_tls_ca_file(ua, secret), SIPREG_ERR_INVALID_ARGUMENT);
            expect_error_mentions("unreadable file", "cannot read CA file");
            unlink(secret);
        }
    }
    EXPECT_RC(sipreg_user_agent_set_tls_ca_file(ua, "bad\xff"), SIPREG_ERR_INVALID_ARGUMENT);
    unlink(empty);
    unlink(text);
    unlink(garbled);
    unlink(truncated);
}

static void bad_names_and_paths(void) {
    EXPECT_RC(sipreg_user_agent_set_tls_server_name(ua, ""), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_tls_server_name(ua, "two words"), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_tls_server_name(ua, "a\r\nb"), SIPREG_ERR_INVALID_ARGUMENT);
    expect_error_mentions("server name", "server name");
    EXPECT_RC(sipreg_user_agent_set_tls_server_name(ua, "sip.example.com"), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_tls_server_name(ua, "127.0.0.1"), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_ws_path(ua, "no-slash"), SIPREG_ERR_INVALID_ARGUMENT);
    expect_error_mentions("ws path", "ws path");
    EXPECT_RC(sipreg_user_agent_set_ws_path(ua, "/a b"), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_ws_path(ua, "/x\n"), SIPREG_ERR_INVALID_ARGUMENT);
    EXPECT_RC(sipreg_user_agent_set_ws_path(ua, "/sip"), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_tls_verify(ua, false), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_tls_verify(ua, true), SIPREG_OK);
    for (const char *t = "udp\0tcp\0tls\0ws\0wss\0WSS\0"; *t; t += strlen(t) + 1)
        EXPECT_RC(sipreg_user_agent_set_transport(ua, t), SIPREG_OK);
    EXPECT_RC(sipreg_user_agent_set_transport(ua, "wsss"), SIPREG_ERR_INVALID_ARGUMENT);
}

static void flow_accessor(void) {
    sipreg_registerer *r = NULL;
    char buf[8];
    MUST(sipreg_user_agent_set_transport(ua, "udp"));
    MUST(sipreg_registerer_new(ua, NULL, NULL, NULL, &r));
    /* Before the first request: an empty string. */
    buf[0] = 'x';
    EXPECT_RC(sipreg_registerer_flow(r, buf, sizeof buf, NULL), SIPREG_OK);
    EXPECT(buf[0] == '\0', "empty flow before the first request");
    size_t need = 0;
    EXPECT_RC(sipreg_registerer_flow(r, NULL, 0, &need), SIPREG_ERR_BUFFER_TOO_SMALL);
    EXPECT(need == 1, "an empty flow needs 1 byte, got %zu", need);
    EXPECT_RC(sipreg_registerer_flow(r, NULL, 8, NULL), SIPREG_ERR_NULL_ARGUMENT);
    EXPECT_RC(sipreg_dispose(r), SIPREG_OK);
    sipreg_registerer_free(r);
    /* A freed handle: an error, not a crash. */
    EXPECT(sipreg_registerer_flow(r, buf, sizeof buf, NULL) != SIPREG_OK, "freed handle");
}

int main(void) {
    if (sipreg_user_agent_new("sip:tls@127.0.0.1", &ua) != SIPREG_OK) {
        fprintf(stderr, "setup: %s\n", sipreg_last_error());
        return 1;
    }
    RUN(null_arguments);
    RUN(bad_ca_files);
    RUN(bad_names_and_paths);
    RUN(flow_accessor);
    EXPECT_RC(sipreg_user_agent_free(ua), SIPREG_OK);
    return t_finish("tls_options");
}
