/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lg_err.h"
#include "lg_mem.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static void test_mem_arena_frees_everything_at_once(void **state)
{
    (void)state;
    lg_arena *a;
    assert_int_equal(lg_arena_new(&a, 64, 0), LG_OK);
    for (int i = 0; i < 100; i++) {
        char *s = lg_arena_strndup(a, "hello world", 11);
        assert_non_null(s);
        assert_string_equal(s, "hello world");
    }
    void *big = lg_arena_alloc(a, 1000); /* larger than a chunk: gets its own */
    assert_non_null(big);
    memset(big, 0xab, 1000);
    assert_true(lg_arena_used(a) >= 100 * 12 + 1000);
    lg_arena_free(a); /* cmocka reports any chunk left behind */
}

static void test_mem_arena_cap(void **state)
{
    (void)state;
    lg_arena *a;
    assert_int_equal(lg_arena_new(&a, 128, 256), LG_OK);
    assert_non_null(lg_arena_alloc(a, 100));
    assert_non_null(lg_arena_alloc(a, 100));
    assert_null(lg_arena_alloc(a, 200)); /* would pass max_bytes */
    lg_arena_free(a);
}

static void test_mem_nomem(void **state)
{
    (void)state;
    lg_arena *a = NULL;
    lg_test_fail_after(0);
    assert_int_equal(lg_arena_new(&a, 0, 0), LG_ERR_NOMEM);
    assert_int_equal(lg_arena_new(&a, 0, 0), LG_OK);
    lg_test_fail_after(0);
    assert_null(lg_arena_alloc(a, 8));
    assert_null(lg_strdup(NULL));
    lg_arena_free(a);
    lg_arena_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_mem_arena_frees_everything_at_once, setup),
        cmocka_unit_test_setup(test_mem_arena_cap, setup),
        cmocka_unit_test_setup(test_mem_nomem, setup),
    };
    return cmocka_run_group_tests_name("mem", tests, NULL, NULL);
}
