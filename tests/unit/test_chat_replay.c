/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lg_buf.h"
#include "lg_chat_replay.h"
#include "lg_err.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static void append_n(lg_chat_replay *r, uint64_t from, uint64_t to, size_t len)
{
    uint8_t bytes[64];
    for (uint64_t s = from; s <= to; s++) {
        memset(bytes, (int)('a' + s % 26), sizeof(bytes));
        assert_int_equal(lg_chat_replay_append(r, s, bytes, len), LG_OK);
    }
}

static void test_chat_replay_get_after_seq(void **state)
{
    (void)state;
    lg_chat_replay *r;
    assert_int_equal(lg_chat_replay_new(&r, 8, 1024), LG_OK);
    struct lg_slice s;
    assert_int_equal(lg_chat_replay_get(r, 1, &s), LG_ERR_AGAIN);
    append_n(r, 1, 5, 10);
    assert_int_equal(lg_chat_replay_first_seq(r), 1);
    assert_int_equal(lg_chat_replay_last_seq(r), 5);
    for (uint64_t q = 1; q <= 5; q++) {
        assert_int_equal(lg_chat_replay_get(r, q, &s), LG_OK);
        assert_int_equal(s.len, 10);
        assert_int_equal(s.ptr[0], 'a' + q % 26);
    }
    assert_int_equal(lg_chat_replay_get(r, 6, &s), LG_ERR_AGAIN);
    assert_int_equal(lg_chat_replay_get(r, 0, &s), LG_ERR_EXPIRED);
    lg_chat_replay_free(r);
}

static void test_chat_replay_event_bound_drops_oldest(void **state)
{
    (void)state;
    lg_chat_replay *r;
    assert_int_equal(lg_chat_replay_new(&r, 4, 1024), LG_OK);
    append_n(r, 1, 10, 8);
    assert_int_equal(lg_chat_replay_count(r), 4);
    assert_int_equal(lg_chat_replay_first_seq(r), 7);
    assert_int_equal(lg_chat_replay_bytes(r), 32);
    struct lg_slice s;
    assert_int_equal(lg_chat_replay_get(r, 6, &s), LG_ERR_EXPIRED);
    assert_int_equal(lg_chat_replay_get(r, 7, &s), LG_OK);
    assert_int_equal(lg_chat_replay_get(r, 10, &s), LG_OK);
    lg_chat_replay_free(r);
}

static void test_chat_replay_byte_bound_drops_oldest(void **state)
{
    (void)state;
    lg_chat_replay *r;
    assert_int_equal(lg_chat_replay_new(&r, 100, 100), LG_OK);
    append_n(r, 1, 9, 30); /* 270 bytes offered, at most 100 kept: 3 events */
    assert_int_equal(lg_chat_replay_count(r), 3);
    assert_true(lg_chat_replay_bytes(r) <= 100);
    assert_int_equal(lg_chat_replay_first_seq(r), 7);
    /* A bigger event pushes out as many as needed; the newest is always kept. */
    uint8_t big[64];
    memset(big, 'z', sizeof(big));
    assert_int_equal(lg_chat_replay_append(r, 10, big, sizeof(big)), LG_OK);
    assert_int_equal(lg_chat_replay_first_seq(r), 9);
    assert_int_equal(lg_chat_replay_bytes(r), 94);
    lg_chat_replay_free(r);
}

static void test_chat_replay_refuses_bad_input(void **state)
{
    (void)state;
    lg_chat_replay *r;
    assert_int_equal(lg_chat_replay_new(&r, 0, 100), LG_ERR_INVALID);
    assert_int_equal(lg_chat_replay_new(&r, 4, 16), LG_OK);
    uint8_t b[32] = {0};
    assert_int_equal(lg_chat_replay_append(r, 2, b, 1), LG_ERR_INVALID); /* must start at 1 */
    assert_int_equal(lg_chat_replay_append(r, 1, b, 17), LG_ERR_TOO_LARGE);
    assert_int_equal(lg_chat_replay_append(r, 1, b, 16), LG_OK);
    assert_int_equal(lg_chat_replay_append(r, 1, b, 1), LG_ERR_INVALID); /* duplicate */
    assert_int_equal(lg_chat_replay_append(r, 2, b, 0), LG_OK);          /* empty is fine */
    lg_chat_replay_free(r);
}

static void test_chat_replay_out_of_memory_changes_nothing(void **state)
{
    (void)state;
    lg_chat_replay *r = NULL;
    lg_test_fail_after(0);
    assert_int_equal(lg_chat_replay_new(&r, 4, 16), LG_ERR_NOMEM);
    lg_test_fail_after(1);
    assert_int_equal(lg_chat_replay_new(&r, 4, 16), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_int_equal(lg_chat_replay_new(&r, 2, 100), LG_OK);
    append_n(r, 1, 2, 8);
    lg_test_fail_after(0);
    uint8_t b[8] = {0};
    assert_int_equal(lg_chat_replay_append(r, 3, b, 8), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    /* Nothing was dropped by the failed append. */
    assert_int_equal(lg_chat_replay_first_seq(r), 1);
    assert_int_equal(lg_chat_replay_last_seq(r), 2);
    lg_chat_replay_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_chat_replay_get_after_seq, setup),
        cmocka_unit_test_setup(test_chat_replay_event_bound_drops_oldest, setup),
        cmocka_unit_test_setup(test_chat_replay_byte_bound_drops_oldest, setup),
        cmocka_unit_test_setup(test_chat_replay_refuses_bad_input, setup),
        cmocka_unit_test_setup(test_chat_replay_out_of_memory_changes_nothing, setup),
    };
    return cmocka_run_group_tests_name("chat_replay", tests, NULL, NULL);
}
