/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static void test_buf_append_and_take(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 1024);
    assert_int_equal(lg_buf_append_str(&b, "hello"), LG_OK);
    assert_int_equal(lg_buf_appendf(&b, " %d", 42), LG_OK);
    assert_int_equal(b.len, 8);
    assert_string_equal((char *)b.data, "hello 42");
    uint8_t *p;
    size_t n;
    assert_int_equal(lg_buf_take(&b, &p, &n), LG_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "hello 42", 8);
    assert_null(b.data);
    lg_free(p);
    lg_buf_deinit(&b);
}

static void test_buf_cap_is_enforced(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 10);
    assert_int_equal(lg_buf_append(&b, "0123456789", 10), LG_OK);
    assert_int_equal(lg_buf_append_byte(&b, 'x'), LG_ERR_TOO_LARGE);
    assert_int_equal(b.len, 10); /* unchanged after a refused append */
    assert_int_equal(lg_buf_appendf(&b, "%s", "y"), LG_ERR_TOO_LARGE);
    assert_null(lg_buf_reserve(&b, 1));
    lg_buf_consume(&b, 4);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "456789", 6);
    lg_buf_deinit(&b);
}

static void test_buf_nomem(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 100);
    lg_test_fail_after(0);
    assert_int_equal(lg_buf_append_str(&b, "x"), LG_ERR_NOMEM);
    assert_int_equal(b.len, 0);
    assert_int_equal(lg_buf_append_str(&b, "x"), LG_OK);
    lg_buf_deinit(&b);
}

static void test_buf_json_escape(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 100);
    const char in[] = "a\"b\\c\nd\x01\xc3\xa9";
    assert_int_equal(lg_buf_append_json_escaped(&b, (const uint8_t *)in, sizeof(in) - 1), LG_OK);
    assert_string_equal((char *)b.data, "a\\\"b\\\\c\\nd\\u0001\xc3\xa9");
    lg_buf_deinit(&b);
}

/* The escaper skips 8 plain bytes at a time: every byte value, at every position of a
 * 20-byte run of plain text, is escaped exactly as on its own. */
static void test_buf_json_escape_any_position(void **state)
{
    (void)state;
    struct lg_buf b, one;
    lg_buf_init(&b, 256);
    lg_buf_init(&one, 16);
    for (int v = 0; v < 256; v++) {
        uint8_t c = (uint8_t)v;
        lg_buf_reset(&one);
        assert_int_equal(lg_buf_append_json_escaped(&one, &c, 1), LG_OK);
        for (size_t pos = 0; pos < 20; pos++) {
            uint8_t in[20];
            memset(in, 'x', sizeof(in));
            in[pos] = c;
            lg_buf_reset(&b);
            assert_int_equal(lg_buf_append_json_escaped(&b, in, sizeof(in)), LG_OK);
            assert_int_equal(b.len, sizeof(in) - 1 + one.len);
            for (size_t k = 0; k < pos; k++) {
                assert_int_equal(b.data[k], 'x');
            }
            assert_memory_equal(b.data + pos, one.data, one.len);
        }
    }
    lg_buf_deinit(&one);
    lg_buf_deinit(&b);
}

static void test_buf_slice_helpers(void **state)
{
    (void)state;
    struct lg_slice s = lg_slice_from_cstr("abc");
    assert_int_equal(s.len, 3);
    assert_true(lg_slice_eq_cstr(s, "abc"));
    assert_false(lg_slice_eq_cstr(s, "abcd"));
    assert_true(lg_slice_eq_cstr(lg_slice_from_cstr(NULL), ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_buf_append_and_take, setup),
        cmocka_unit_test_setup(test_buf_cap_is_enforced, setup),
        cmocka_unit_test_setup(test_buf_nomem, setup),
        cmocka_unit_test_setup(test_buf_json_escape, setup),
        cmocka_unit_test_setup(test_buf_json_escape_any_position, setup),
        cmocka_unit_test_setup(test_buf_slice_helpers, setup),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
