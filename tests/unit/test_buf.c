/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* The escape as the byte-at-a-time rule states it: the oracle for the wide scans. */
static size_t ref_escape(const uint8_t *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c == '\n') {
            memcpy(out + n, "\\n", 2);
            n += 2;
        } else if (c == '\r') {
            memcpy(out + n, "\\r", 2);
            n += 2;
        } else if (c == '\t') {
            memcpy(out + n, "\\t", 2);
            n += 2;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(out + n, 7, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    return n;
}

/* Fills |in| with plain bytes and |nspecial| bytes that need escaping at random spots;
 * plain bytes include UTF-8 and invalid sequences (>= 0x80 pass as they are). */
static void fill_random(uint8_t *in, size_t len, size_t nspecial, uint32_t *seed)
{
    static const uint8_t special[] = {0, 1, 8, 9, 10, 12, 13, 0x1f, '"', '\\', 0x7f};
    for (size_t i = 0; i < len; i++) {
        *seed = *seed * 1103515245u + 12345u;
        uint8_t c = (uint8_t)(*seed >> 16);
        in[i] = c < 0x20 || c == '"' || c == '\\' || c == 0x7f ? (uint8_t)'a' : c;
    }
    for (size_t k = 0; len > 0 && k < nspecial; k++) {
        *seed = *seed * 1103515245u + 12345u;
        size_t at = (*seed >> 8) % len;
        in[at] = special[(*seed >> 4) % sizeof(special)];
    }
}

/* Every length 0..100 (crossing 8-, 16- and 32-byte blocks at each offset), every special byte
 * at every position, and random mixes: the same bytes as the reference, the same count as
 * lg_buf_json_escaped_len, and lg_buf_json_escape_to writes nothing past its end. */
static void test_buf_json_escape_matches_reference(void **state)
{
    (void)state;
    enum { MAXLEN = 100 };
    uint8_t in[MAXLEN];
    char want[MAXLEN * 6 + 1];
    uint8_t raw[MAXLEN * 6 + 16];
    struct lg_buf b;
    lg_buf_init(&b, 4096);
    uint32_t seed = 1;
    for (size_t len = 0; len <= MAXLEN; len++) {
        for (size_t trial = 0; trial < 200 + len * 4; trial++) {
            if (trial < len * 2) { /* one special byte at each position */
                memset(in, 'p', len);
                in[trial / 2] = trial % 2 ? (uint8_t)'"' : (uint8_t)0x01;
            } else {
                fill_random(in, len, trial % 4, &seed);
            }
            size_t n = ref_escape(in, len, want);
            lg_buf_reset(&b);
            assert_int_equal(lg_buf_append_str(&b, "<"), LG_OK);
            assert_int_equal(lg_buf_append_json_escaped(&b, in, len), LG_OK);
            assert_int_equal(b.len, n + 1);
            assert_memory_equal(b.data + 1, want, n);
            assert_int_equal(b.data[b.len], 0);
            assert_int_equal(lg_buf_json_escaped_len(in, len), n);
            memset(raw, 0xee, sizeof(raw));
            uint8_t *end = lg_buf_json_escape_to(raw, in, len);
            assert_int_equal((size_t)(end - raw), n);
            assert_memory_equal(raw, want, n);
            for (size_t k = n; k < sizeof(raw); k++) {
                assert_int_equal(raw[k], 0xee);
            }
        }
    }
    lg_buf_deinit(&b);
}

/* Past the cap: LG_ERR_TOO_LARGE exactly when the escaped text does not fit, and the
 * buffer is left as it was; an escaped text that fits exactly is accepted. */
static void test_buf_json_escape_cap_exact(void **state)
{
    (void)state;
    const uint8_t in[] = "ab\"c\x01";
    size_t n = lg_buf_json_escaped_len(in, sizeof(in) - 1); /* 2 + 2 + 1 + 6 */
    assert_int_equal(n, 11);
    struct lg_buf b;
    lg_buf_init(&b, 3 + n);
    assert_int_equal(lg_buf_append_str(&b, "abc"), LG_OK);
    assert_int_equal(lg_buf_append_json_escaped(&b, in, sizeof(in) - 1), LG_OK);
    assert_int_equal(b.len, 3 + n);
    lg_buf_deinit(&b);
    lg_buf_init(&b, 3 + n - 1);
    assert_int_equal(lg_buf_append_str(&b, "abc"), LG_OK);
    assert_int_equal(lg_buf_append_json_escaped(&b, in, sizeof(in) - 1), LG_ERR_TOO_LARGE);
    assert_int_equal(b.len, 3);
    assert_string_equal((char *)b.data, "abc");
    lg_test_fail_after(0);
    lg_buf_deinit(&b);
    lg_buf_init(&b, 100);
    assert_int_equal(lg_buf_append_json_escaped(&b, in, sizeof(in) - 1), LG_ERR_NOMEM);
    assert_int_equal(b.len, 0);
    lg_buf_deinit(&b);
}

/* A long input (over the worst-case reservation limit) is measured first: the buffer
 * grows to what it needs, not 6x. */
static void test_buf_json_escape_long_input(void **state)
{
    (void)state;
    size_t len = 100000;
    uint8_t *in = malloc(len);
    char *want = malloc(len * 6);
    assert_non_null(in);
    assert_non_null(want);
    uint32_t seed = 7;
    fill_random(in, len, 300, &seed);
    size_t n = ref_escape(in, len, want);
    struct lg_buf b;
    lg_buf_init(&b, 1u << 24);
    assert_int_equal(lg_buf_append_json_escaped(&b, in, len), LG_OK);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, want, n);
    assert_true(b.cap < 2 * n + 64);
    lg_buf_deinit(&b);
    free(want);
    free(in);
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

/* lg_buf_trim frees a buffer that grew past |keep| (empty, same maximum, usable again)
 * and leaves a smaller one as it is. */
static void test_buf_trim(void **state)
{
    (void)state;
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_buf_append(&b, (const uint8_t *)"abc", 3), LG_OK);
    lg_buf_trim(&b, 1024);
    assert_int_equal(b.len, 3); /* small: kept */
    assert_memory_equal(b.data, "abc", 3);
    assert_non_null(lg_buf_reserve(&b, 4096));
    lg_buf_trim(&b, 1024);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 1 << 20);
    assert_int_equal(lg_buf_append(&b, (const uint8_t *)"x", 1), LG_OK);
    assert_int_equal(b.len, 1);
    lg_buf_deinit(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_buf_append_and_take, setup),
        cmocka_unit_test_setup(test_buf_cap_is_enforced, setup),
        cmocka_unit_test_setup(test_buf_nomem, setup),
        cmocka_unit_test_setup(test_buf_json_escape, setup),
        cmocka_unit_test_setup(test_buf_json_escape_any_position, setup),
        cmocka_unit_test_setup(test_buf_json_escape_matches_reference, setup),
        cmocka_unit_test_setup(test_buf_json_escape_cap_exact, setup),
        cmocka_unit_test_setup(test_buf_json_escape_long_input, setup),
        cmocka_unit_test_setup(test_buf_slice_helpers, setup),
        cmocka_unit_test_setup(test_buf_trim, setup),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
