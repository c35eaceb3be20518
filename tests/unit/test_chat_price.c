/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "lg_chat_price.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_test.h"

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    lg_chat_price *t;
    assert_int_equal(lg_chat_price_new(&t, 4), LG_OK);
    /* gpt-4o list price: $2.50 in, $1.25 cached in, $10.00 out per 1M tokens. */
    struct lg_chat_price_entry e = {2500000000ull, 1250000000ull, 10000000000ull};
    assert_int_equal(lg_chat_price_add(t, "gpt-4o", &e), LG_OK);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    lg_chat_price_free(*state);
    return 0;
}

static void test_chat_price_exact_cost(void **state)
{
    lg_chat_price *t = *state;
    /* 1000 prompt (200 cached), 500 completion:
     * 800 * 2500 + 200 * 1250 + 500 * 10000 = 2,000,000 + 250,000 + 5,000,000 nano-USD. */
    struct lg_chat_price_usage u = {1000, 500, 200};
    uint64_t cost = 1;
    assert_int_equal(lg_chat_price_cost(t, "gpt-4o", &u, &cost), LG_CHAT_PRICE_PRICED);
    assert_int_equal(cost, 7250000ull);
}

static void test_chat_price_rounds_half_up_once(void **state)
{
    (void)state;
    /* 150,000 nano-USD per 1M tokens = 0.15 nano-USD per token.
     * 3 tokens cost 0.45 -> 0; 4 tokens 0.6 -> 1; 10 tokens 1.5 -> 2. Three separate
     * roundings would differ from one rounding of the sum: check the sum is rounded once. */
    struct lg_chat_price_entry e = {150000ull, 150000ull, 150000ull};
    struct lg_chat_price_usage u3 = {3, 0, 0};
    struct lg_chat_price_usage u4 = {4, 0, 0};
    struct lg_chat_price_usage u10 = {10, 0, 0};
    assert_int_equal(lg_chat_price_compute(&e, &u3), 0);
    assert_int_equal(lg_chat_price_compute(&e, &u4), 1);
    assert_int_equal(lg_chat_price_compute(&e, &u10), 2);
    struct lg_chat_price_usage split = {2, 1, 1}; /* 0.15 + 0.15 + 0.15 = 0.45 -> 0 */
    assert_int_equal(lg_chat_price_compute(&e, &split), 0);
}

static void test_chat_price_extremes_do_not_overflow(void **state)
{
    (void)state;
    struct lg_chat_price_entry e = {LG_CHAT_PRICE_MAX_NUSD_PER_MTOK,
                                    LG_CHAT_PRICE_MAX_NUSD_PER_MTOK,
                                    LG_CHAT_PRICE_MAX_NUSD_PER_MTOK};
    struct lg_chat_price_usage u = {UINT32_MAX, UINT32_MAX, 0};
    /* (2^32 - 1) * 2 tokens * 1e13 / 1e6 = 85,899,345,860,000,000 exactly. */
    assert_int_equal(lg_chat_price_compute(&e, &u), 85899345900000000ull);
}

static void test_chat_price_cached_clamped_to_prompt(void **state)
{
    lg_chat_price *t = *state;
    struct lg_chat_price_usage u = {100, 0, 500}; /* a broken upstream report */
    uint64_t cost;
    assert_int_equal(lg_chat_price_cost(t, "gpt-4o", &u, &cost), LG_CHAT_PRICE_PRICED);
    assert_int_equal(cost, 125000ull); /* all 100 prompt tokens at the cached price */
}

static void test_chat_price_missing_model_is_flagged(void **state)
{
    lg_chat_price *t = *state;
    struct lg_chat_price_usage u = {1000, 500, 0};
    uint64_t cost = 99;
    assert_int_equal(lg_chat_price_cost(t, "no-such-model", &u, &cost), LG_CHAT_PRICE_UNPRICED);
    assert_int_equal(cost, 0);
    cost = 99;
    assert_int_equal(lg_chat_price_cost(NULL, "gpt-4o", &u, &cost), LG_CHAT_PRICE_UNPRICED);
    assert_int_equal(cost, 0);
}

static void test_chat_price_from_usd(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(lg_chat_price_from_usd(0.15, &v), LG_OK);
    assert_int_equal(v, 150000000ull);
    assert_int_equal(lg_chat_price_from_usd(2.5, &v), LG_OK);
    assert_int_equal(v, 2500000000ull);
    assert_int_equal(lg_chat_price_from_usd(0.000000001, &v), LG_OK);
    assert_int_equal(v, 1ull);
    assert_int_equal(lg_chat_price_from_usd(-1.0, &v), LG_ERR_INVALID);
    assert_int_equal(lg_chat_price_from_usd(1e9, &v), LG_ERR_INVALID);
    assert_int_equal(lg_chat_price_from_usd(NAN, &v), LG_ERR_INVALID);
}

static void test_chat_price_add_errors(void **state)
{
    (void)state;
    /* Own table: cmocka checks for leaks before the teardown runs. */
    lg_chat_price *t;
    assert_int_equal(lg_chat_price_new(&t, 4), LG_OK);
    struct lg_chat_price_entry ok = {1, 1, 1};
    assert_int_equal(lg_chat_price_add(t, "gpt-4o", &ok), LG_OK);
    struct lg_chat_price_entry big = {LG_CHAT_PRICE_MAX_NUSD_PER_MTOK + 1, 0, 0};
    assert_int_equal(lg_chat_price_add(t, "gpt-4o", &ok), LG_ERR_INVALID); /* duplicate */
    assert_int_equal(lg_chat_price_add(t, "", &ok), LG_ERR_INVALID);
    assert_int_equal(lg_chat_price_add(t, "x", &big), LG_ERR_INVALID);
    assert_int_equal(lg_chat_price_add(t, "a", &ok), LG_OK);
    assert_int_equal(lg_chat_price_add(t, "b", &ok), LG_OK);
    assert_int_equal(lg_chat_price_add(t, "c", &ok), LG_OK);
    assert_int_equal(lg_chat_price_add(t, "d", &ok), LG_ERR_TOO_LARGE);
    assert_int_equal(lg_chat_price_count(t), 4);
    lg_test_fail_after(0);
    lg_chat_price *t2 = NULL;
    assert_int_equal(lg_chat_price_new(&t2, 4), LG_ERR_NOMEM);
    lg_test_fail_after(1);
    assert_int_equal(lg_chat_price_add(t, "e", &ok), LG_ERR_TOO_LARGE); /* full first */
    lg_test_fail_after(-1);
    lg_chat_price_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chat_price_exact_cost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_price_rounds_half_up_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_price_extremes_do_not_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_price_cached_clamped_to_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_price_missing_model_is_flagged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_price_from_usd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_price_add_errors, setup, teardown),
    };
    return cmocka_run_group_tests_name("chat_price", tests, NULL, NULL);
}
