/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lg_err.h"
#include "lg_sse_table.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static void test_sse_table_pointer_keys_grow(void **state)
{
    (void)state;
    static int items[1000];
    lg_sse_table *t = NULL;
    assert_int_equal(lg_sse_table_new(&t, false), LG_OK);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(lg_sse_table_put(t, &items[i], &items[i]), LG_OK);
    }
    assert_int_equal(lg_sse_table_count(t), 1000);
    for (int i = 0; i < 1000; i++) {
        assert_ptr_equal(lg_sse_table_get(t, &items[i]), &items[i]);
    }
    for (int i = 0; i < 1000; i += 2) {
        assert_ptr_equal(lg_sse_table_del(t, &items[i]), &items[i]);
    }
    assert_int_equal(lg_sse_table_count(t), 500);
    assert_null(lg_sse_table_get(t, &items[0]));
    assert_ptr_equal(lg_sse_table_get(t, &items[1]), &items[1]);
    assert_null(lg_sse_table_del(t, &items[0]));
    lg_sse_table_free(t);
}

static void test_sse_table_string_keys(void **state)
{
    (void)state;
    lg_sse_table *t = NULL;
    int a = 1;
    int b = 2;
    char k1[] = "alice";
    char k2[] = "alice"; /* same content, other pointer */
    assert_int_equal(lg_sse_table_new(&t, true), LG_OK);
    assert_int_equal(lg_sse_table_put(t, k1, &a), LG_OK);
    assert_ptr_equal(lg_sse_table_get(t, k2), &a);
    assert_int_equal(lg_sse_table_put(t, k2, &b), LG_OK); /* replaces */
    assert_int_equal(lg_sse_table_count(t), 1);
    assert_ptr_equal(lg_sse_table_get(t, "alice"), &b);
    assert_null(lg_sse_table_get(t, "bob"));
    assert_ptr_equal(lg_sse_table_del(t, "alice"), &b);
    assert_int_equal(lg_sse_table_count(t), 0);
    lg_sse_table_free(t);
}

static void test_sse_table_nomem(void **state)
{
    (void)state;
    lg_sse_table *t = NULL;
    int v = 0;
    lg_test_fail_after(0);
    assert_int_equal(lg_sse_table_new(&t, false), LG_ERR_NOMEM);
    lg_test_fail_after(1);
    assert_int_equal(lg_sse_table_new(&t, false), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_int_equal(lg_sse_table_new(&t, false), LG_OK);
    lg_test_fail_after(0);
    assert_int_equal(lg_sse_table_put(t, &v, &v), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_int_equal(lg_sse_table_count(t), 0);
    lg_sse_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sse_table_pointer_keys_grow, setup),
        cmocka_unit_test_setup(test_sse_table_string_keys, setup),
        cmocka_unit_test_setup(test_sse_table_nomem, setup),
    };
    return cmocka_run_group_tests_name("sse_table", tests, NULL, NULL);
}
