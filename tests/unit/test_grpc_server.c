/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lg_grpc_server.h"

static void test_grpc_server_placeholder(void **state)
{
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_grpc_server_placeholder)};
    return cmocka_run_group_tests_name("grpc_server", tests, NULL, NULL);
}
