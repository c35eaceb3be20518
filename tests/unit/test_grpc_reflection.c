/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of lg_grpc_reflection's descriptor index (the ServerReflectionInfo RPC is tested
 * end to end, v1 and v1alpha, in tests/integration/grpc_server/test_health_reflection.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>

#include "lg_err.h"
#include "lg_grpc_reflection.h"
#include "lg_test.h"
#include "lg_testserver_fds.h"

struct r_fixture {
    struct event_base *base;
};

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    struct r_fixture *f = test_calloc(1, sizeof(*f));
    f->base = event_base_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct r_fixture *f = *state;
    event_base_free(f->base);
    test_free(f);
    return 0;
}

static void test_grpc_reflection_indexes_embedded_set(void **state)
{
    struct r_fixture *f = *state;
    lg_grpc_server *srv;
    lg_grpc_reflection *r;
    assert_int_equal(lg_grpc_server_new(&srv, f->base, NULL), LG_OK);
    assert_int_equal(lg_grpc_reflection_new(&r, srv, lg_testserver_fds, lg_testserver_fds_len),
                     LG_OK);
    /* test, empty, messages, health, reflection v1, v1alpha */
    assert_int_equal(lg_grpc_reflection_get_file_count(r), 6);
    /* TestService, UnimplementedService, Health, 2 x ServerReflection */
    assert_int_equal(lg_grpc_reflection_get_service_count(r), 5);
    lg_grpc_server_free(srv);
    lg_grpc_reflection_free(r);
}

static void test_grpc_reflection_rejects_garbage(void **state)
{
    struct r_fixture *f = *state;
    lg_grpc_server *srv;
    lg_grpc_reflection *r = NULL;
    static const uint8_t garbage[] = {0x0a, 0x7f, 0x01};
    assert_int_equal(lg_grpc_server_new(&srv, f->base, NULL), LG_OK);
    assert_int_equal(lg_grpc_reflection_new(&r, srv, garbage, sizeof(garbage)), LG_ERR_MALFORMED);
    assert_null(r);
    lg_grpc_server_free(srv);
}

static void test_grpc_reflection_nomem(void **state)
{
    struct r_fixture *f = *state;
    lg_grpc_server *srv;
    assert_int_equal(lg_grpc_server_new(&srv, f->base, NULL), LG_OK);
    lg_grpc_reflection *r = NULL;
    lg_test_fail_after(0);
    assert_int_equal(lg_grpc_reflection_new(&r, srv, lg_testserver_fds, lg_testserver_fds_len),
                     LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_null(r);
    lg_grpc_server_free(srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grpc_reflection_indexes_embedded_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_reflection_rejects_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_reflection_nomem, setup, teardown),
    };
    return cmocka_run_group_tests_name("grpc_reflection", tests, NULL, NULL);
}
