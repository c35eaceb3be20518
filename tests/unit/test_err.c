/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lg_err.h"

static void test_err_maps_are_consistent(void **state)
{
    (void)state;
    assert_int_equal(LG_OK, 0);
    assert_string_equal(lg_err_name(LG_ERR_TOO_LARGE), "TOO_LARGE");
    assert_int_equal(lg_err_grpc_status(LG_ERR_TOO_LARGE), LG_GRPC_RESOURCE_EXHAUSTED);
    assert_int_equal(lg_err_http_status(LG_ERR_TOO_LARGE), 413);
    assert_int_equal(lg_err_grpc_status(LG_ERR_TIMEOUT), LG_GRPC_DEADLINE_EXCEEDED);
    assert_int_equal(lg_err_http_status(LG_ERR_NOT_FOUND), 404);
    assert_int_equal(lg_err_grpc_status(LG_ERR_UNIMPLEMENTED), LG_GRPC_UNIMPLEMENTED);
    assert_string_equal(lg_err_str(LG_ERR_NOMEM), "out of memory");
}

static void test_err_unknown_codes(void **state)
{
    (void)state;
    assert_string_equal(lg_err_str(-9999), "unknown error");
    assert_string_equal(lg_err_name(12345), "UNKNOWN");
    assert_int_equal(lg_err_grpc_status(-9999), LG_GRPC_UNKNOWN);
    assert_int_equal(lg_err_http_status(-9999), 500);
}

static void test_err_fatal_line(void **state)
{
    (void)state;
    assert_true(LG_ERR_IS_FATAL(LG_ERR_NOMEM));
    assert_true(LG_ERR_IS_FATAL(LG_ERR_PROTOCOL));
    assert_false(LG_ERR_IS_FATAL(LG_ERR_TOO_LARGE));
    assert_false(LG_ERR_IS_FATAL(LG_ERR_AGAIN));
}

static void test_err_grpc_status_names(void **state)
{
    (void)state;
    assert_string_equal(lg_grpc_status_name(0), "OK");
    assert_string_equal(lg_grpc_status_name(4), "DEADLINE_EXCEEDED");
    assert_string_equal(lg_grpc_status_name(16), "UNAUTHENTICATED");
    assert_string_equal(lg_grpc_status_name(17), "UNKNOWN");
    assert_string_equal(lg_grpc_status_name(-1), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_maps_are_consistent),
        cmocka_unit_test(test_err_unknown_codes),
        cmocka_unit_test(test_err_fatal_line),
        cmocka_unit_test(test_err_grpc_status_names),
    };
    return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}
