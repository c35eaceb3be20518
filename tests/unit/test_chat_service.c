/* SPDX-License-Identifier: Apache-2.0 */
/* lg_chat_service: options and their checks. The RPC behaviour (streams, resume, cancel,
 * deadlines, records) is tested end to end in tests/integration/chat with real clients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "lg_chat_config.h"
#include "lg_chat_service.h"
#include "lg_err.h"
#include "lg_grpc_server.h"
#include "lg_limits.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static void test_chat_service_body_modes(void **state)
{
    (void)state;
    enum lg_chat_body_mode mode;
    size_t n = 0;
    assert_int_equal(lg_chat_service_parse_body_mode("full", &mode, &n), LG_OK);
    assert_int_equal(mode, LG_CHAT_BODY_FULL);
    assert_int_equal(lg_chat_service_parse_body_mode("none", &mode, &n), LG_OK);
    assert_int_equal(mode, LG_CHAT_BODY_NONE);
    assert_int_equal(lg_chat_service_parse_body_mode("truncated:512", &mode, &n), LG_OK);
    assert_int_equal(mode, LG_CHAT_BODY_TRUNCATED);
    assert_int_equal(n, 512);
    const char *bad[] = {"",
                         "truncated",
                         "truncated:",
                         "truncated:0",
                         "truncated:-1",
                         "truncated:12x",
                         "truncated:99999999999999999999",
                         "FULL",
                         "some"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(lg_chat_service_parse_body_mode(bad[i], &mode, &n), LG_ERR_INVALID);
    }
}

/* Options above the compiled maxima are refused (config can only tighten); valid options
 * register the methods, and a second service on the same server finds them taken. */
static void test_chat_service_options_only_tighten(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    lg_grpc_server *srv;
    assert_int_equal(lg_grpc_server_new(&srv, base, NULL), LG_OK);
    lg_chat_config *cfg;
    assert_int_equal(lg_chat_config_new_default(&cfg), LG_OK);
    struct lg_chat_service_opts o;
    lg_chat_service_opts_default(&o);
    assert_int_equal(o.grace_ms, LG_CHAT_GRACE_MS_DEFAULT);
    lg_chat_service *svc = NULL;
    assert_int_equal(lg_chat_service_new(&svc, base, srv, &o), LG_ERR_INVALID); /* no cfg */
    o.cfg = cfg;
    o.replay_max_events = LG_CHAT_REPLAY_MAX_EVENTS + 1;
    assert_int_equal(lg_chat_service_new(&svc, base, srv, &o), LG_ERR_INVALID);
    o.replay_max_events = 8;
    o.grace_ms = LG_CHAT_GRACE_MS_MAX + 1;
    assert_int_equal(lg_chat_service_new(&svc, base, srv, &o), LG_ERR_INVALID);
    o.grace_ms = 10;
    assert_int_equal(lg_chat_service_new(&svc, base, srv, &o), LG_OK);
    assert_int_equal(lg_chat_service_get_stream_count(svc), 0);
    lg_chat_service *again = NULL;
    assert_int_not_equal(lg_chat_service_new(&again, base, srv, &o), LG_OK);
    lg_grpc_server_free(srv);
    lg_chat_service_free(svc);
    lg_chat_config_free(cfg);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chat_service_body_modes, setup),
        cmocka_unit_test_setup(test_chat_service_options_only_tighten, setup),
    };
    return cmocka_run_group_tests_name("chat_service", tests, NULL, NULL);
}
