/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <cmocka.h>

#include "lg_err.h"
#include "lg_queue.h"
#include "lg_test.h"

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    lg_queue *q = NULL;
    assert_int_equal(lg_queue_new(&q, 8), LG_OK);
    *state = q;
    return 0;
}

static int teardown(void **state)
{
    lg_queue_free(*state);
    return 0;
}

static void test_queue_capacity_must_be_power_of_two(void **state)
{
    (void)state;
    lg_queue *q = NULL;
    assert_int_equal(lg_queue_new(&q, 6), LG_ERR_INVALID);
    assert_int_equal(lg_queue_new(&q, 1), LG_ERR_INVALID);
    lg_test_fail_after(0);
    assert_int_equal(lg_queue_new(&q, 4), LG_ERR_NOMEM);
    lg_test_fail_after(1);
    assert_int_equal(lg_queue_new(&q, 4), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
}

static void test_queue_full_then_empty_fifo(void **state)
{
    lg_queue *q = *state;
    uintptr_t v;
    for (v = 1; v <= 8; v++) {
        assert_int_equal(lg_queue_push(q, (void *)v), LG_OK);
    }
    assert_int_equal(lg_queue_count(q), 8);
    assert_int_equal(lg_queue_push(q, (void *)v), LG_ERR_EXHAUSTED);
    void *out;
    for (v = 1; v <= 8; v++) {
        assert_int_equal(lg_queue_pop(q, &out), LG_OK);
        assert_int_equal((uintptr_t)out, v);
    }
    assert_int_equal(lg_queue_pop(q, &out), LG_ERR_AGAIN);
    /* Wraps around the ring correctly. */
    for (int round = 0; round < 5; round++) {
        assert_int_equal(lg_queue_push(q, (void *)(uintptr_t)100), LG_OK);
        assert_int_equal(lg_queue_pop(q, &out), LG_OK);
        assert_int_equal((uintptr_t)out, 100);
    }
    assert_int_equal(lg_queue_capacity(q), 8);
}

#define PRODUCERS 4
#define PER_PRODUCER 50000

struct producer_arg {
    lg_queue *q;
    uintptr_t base;
    long full; /* pushes refused because the ring was full */
};

static void *producer(void *p)
{
    struct producer_arg *a = p;
    for (uintptr_t i = 0; i < PER_PRODUCER; i++) {
        while (lg_queue_push(a->q, (void *)(a->base + i + 1)) == LG_ERR_EXHAUSTED) {
            a->full++;
        }
    }
    return NULL;
}

static void test_queue_many_producers_lose_nothing(void **state)
{
    (void)state;
    lg_queue *q = NULL;
    assert_int_equal(lg_queue_new(&q, 1024), LG_OK);
    pthread_t th[PRODUCERS];
    struct producer_arg args[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        args[i] = (struct producer_arg){q, (uintptr_t)i * 1000000u, 0};
        pthread_create(&th[i], NULL, producer, &args[i]);
    }
    uintptr_t last[PRODUCERS] = {0};
    long got = 0;
    while (got < (long)PRODUCERS * PER_PRODUCER) {
        void *out;
        if (lg_queue_pop(q, &out) != LG_OK) {
            continue;
        }
        uintptr_t v = (uintptr_t)out;
        size_t who = v / 1000000u;
        uintptr_t seq = v % 1000000u;
        assert_true(who < PRODUCERS);
        assert_true(seq == last[who] + 1); /* per-producer order kept, nothing skipped */
        last[who] = seq;
        got++;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(th[i], NULL);
    }
    void *out;
    assert_int_equal(lg_queue_pop(q, &out), LG_ERR_AGAIN);
    lg_queue_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_capacity_must_be_power_of_two, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_then_empty_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_many_producers_lose_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
