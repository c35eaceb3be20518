/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of lg_grpc_health's status table (the RPCs are tested end to end with grpcio in
 * tests/integration/grpc_server/test_health_reflection.py and test_shutdown.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>

#include "lg_err.h"
#include "lg_grpc_health.h"
#include "lg_limits.h"
#include "lg_test.h"

struct h_fixture {
    struct event_base *base;
};

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    struct h_fixture *f = test_calloc(1, sizeof(*f));
    f->base = event_base_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct h_fixture *f = *state;
    event_base_free(f->base);
    test_free(f);
    return 0;
}

static void test_grpc_health_status_table(void **state)
{
    struct h_fixture *f = *state;
    lg_grpc_server *srv;
    lg_grpc_health *h;
    assert_int_equal(lg_grpc_server_new(&srv, f->base, NULL), LG_OK);
    assert_int_equal(lg_grpc_health_new(&h, srv), LG_OK);
    assert_int_equal(lg_grpc_health_get_status(h, ""), LG_GRPC_HEALTH_SERVING);
    assert_int_equal(lg_grpc_health_get_status(h, "a.B"), LG_GRPC_HEALTH_SERVICE_UNKNOWN);
    assert_int_equal(lg_grpc_health_set_status(h, "a.B", LG_GRPC_HEALTH_NOT_SERVING), LG_OK);
    assert_int_equal(lg_grpc_health_get_status(h, "a.B"), LG_GRPC_HEALTH_NOT_SERVING);
    assert_int_equal(lg_grpc_health_set_status(h, "a.B", LG_GRPC_HEALTH_SERVICE_UNKNOWN),
                     LG_ERR_INVALID);
    assert_int_equal(lg_grpc_health_set_status(h, NULL, LG_GRPC_HEALTH_SERVING), LG_ERR_INVALID);
    lg_grpc_health_set_all(h, LG_GRPC_HEALTH_SERVING);
    assert_int_equal(lg_grpc_health_get_status(h, "a.B"), LG_GRPC_HEALTH_SERVING);
    /* The table is bounded. */
    char name[32];
    int rc = LG_OK;
    for (int i = 0; i < LG_GRPC_HEALTH_MAX_SERVICES + 1 && rc == LG_OK; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        rc = lg_grpc_health_set_status(h, name, LG_GRPC_HEALTH_SERVING);
    }
    assert_int_equal(rc, LG_ERR_EXHAUSTED);
    lg_grpc_server_free(srv);
    lg_grpc_health_free(h);
}

static void test_grpc_health_shutdown_turns_not_serving(void **state)
{
    struct h_fixture *f = *state;
    lg_grpc_server *srv;
    lg_grpc_health *h;
    assert_int_equal(lg_grpc_server_new(&srv, f->base, NULL), LG_OK);
    assert_int_equal(lg_grpc_health_new(&h, srv), LG_OK);
    assert_int_equal(lg_grpc_health_set_status(h, "a.B", LG_GRPC_HEALTH_SERVING), LG_OK);
    lg_grpc_server_shutdown(srv, 0, NULL, NULL);
    assert_int_equal(lg_grpc_health_get_status(h, ""), LG_GRPC_HEALTH_NOT_SERVING);
    assert_int_equal(lg_grpc_health_get_status(h, "a.B"), LG_GRPC_HEALTH_NOT_SERVING);
    lg_grpc_server_free(srv);
    lg_grpc_health_free(h);
}

static void test_grpc_health_nomem(void **state)
{
    struct h_fixture *f = *state;
    lg_grpc_server *srv;
    lg_grpc_health *h = NULL;
    assert_int_equal(lg_grpc_server_new(&srv, f->base, NULL), LG_OK);
    lg_test_fail_after(0);
    assert_int_equal(lg_grpc_health_new(&h, srv), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_null(h);
    lg_grpc_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grpc_health_status_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_health_shutdown_turns_not_serving, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grpc_health_nomem, setup, teardown),
    };
    return cmocka_run_group_tests_name("grpc_health", tests, NULL, NULL);
}
