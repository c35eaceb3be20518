/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    lg_test_fail_after(2);
    assert_int_equal(lg_queue_new(&q, 4), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    /* A power of two whose slot bytes would wrap size_t: refused before any allocation. */
    assert_int_equal(lg_queue_new(&q, (size_t)1 << (sizeof(size_t) * 8 - 2)), LG_ERR_NOMEM);
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

/* lg_queue_reserved / lg_queue_taken: monotonic totals over the shards, one per push and
 * per pop, across wraps and full refusals (a refused push reserves nothing). */
static void test_queue_reserved_and_taken(void **state)
{
    lg_queue *q = *state;
    assert_int_equal(lg_queue_reserved(q), 0);
    assert_int_equal(lg_queue_taken(q), 0);
    uintptr_t v;
    for (v = 1; v <= 8; v++) {
        assert_int_equal(lg_queue_push(q, (void *)v), LG_OK);
    }
    assert_int_equal(lg_queue_push(q, (void *)v), LG_ERR_EXHAUSTED);
    assert_int_equal(lg_queue_reserved(q), 8);
    void *out;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lg_queue_pop(q, &out), LG_OK);
    }
    assert_int_equal(lg_queue_taken(q), 3);
    for (int round = 0; round < 20; round++) { /* wraps every shard several times */
        assert_int_equal(lg_queue_push(q, (void *)(uintptr_t)7), LG_OK);
        assert_int_equal(lg_queue_pop(q, &out), LG_OK);
    }
    assert_int_equal(lg_queue_reserved(q), 28);
    assert_int_equal(lg_queue_taken(q), 23);
    while (lg_queue_pop(q, &out) == LG_OK) {
    }
    assert_int_equal(lg_queue_taken(q), lg_queue_reserved(q));
}

#define PRODUCERS    4
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

/* Pops everything; checks that each producer's items (value = producer * STRIDE + seq,
 * seq from 1) come out in order without gaps. Returns the number popped. */
#define STRIDE 1000000u
static long drain_in_order(lg_queue *q, uintptr_t *last, size_t producers)
{
    long got = 0;
    void *out;
    while (lg_queue_pop(q, &out) == LG_OK) {
        uintptr_t v = (uintptr_t)out;
        size_t who = v / STRIDE;
        assert_true(who < producers);
        assert_int_equal(v % STRIDE, last[who] + 1);
        last[who] = v % STRIDE;
        got++;
    }
    return got;
}

/* Every capacity holds exactly that many items, pushed by one thread across all shards
 * (a full shard moves the push on), and gives them back in push order. */
static void test_queue_capacity_exact(void **state)
{
    (void)state;
    const size_t caps[] = {2, 4, 8, 16, 64, 1024, 65536};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        lg_queue *q = NULL;
        assert_int_equal(lg_queue_new(&q, caps[c]), LG_OK);
        assert_int_equal(lg_queue_capacity(q), caps[c]);
        uintptr_t v = 1;
        while (lg_queue_push(q, (void *)v) == LG_OK) {
            v++;
        }
        assert_int_equal(v - 1, caps[c]);
        assert_int_equal(lg_queue_count(q), caps[c]);
        uintptr_t last[1] = {0};
        assert_int_equal(drain_in_order(q, last, 1), (long)caps[c]);
        assert_int_equal(lg_queue_count(q), 0);
        /* And again after the wrap, with the binding that moved around the shards. */
        for (v = 1; v <= caps[c]; v++) {
            assert_int_equal(lg_queue_push(q, (void *)v), LG_OK);
        }
        assert_int_equal(lg_queue_push(q, (void *)v), LG_ERR_EXHAUSTED);
        last[0] = 0;
        assert_int_equal(drain_in_order(q, last, 1), (long)caps[c]);
        lg_queue_free(q);
    }
}

struct pusher {
    lg_queue *q;
    uintptr_t who;
    uintptr_t n;        /* items to push; 0: push until refused */
    uintptr_t accepted; /* items accepted */
    bool spin;          /* retry a refused push (a consumer runs) */
    pthread_barrier_t *go;
    int bad; /* a push result other than LG_OK / LG_ERR_EXHAUSTED (cmocka
              * asserts only on the test's own thread) */
};

static void *pusher_main(void *p)
{
    struct pusher *a = p;
    if (a->go != NULL) {
        pthread_barrier_wait(a->go);
    }
    for (uintptr_t i = 1; a->n == 0 || i <= a->n; i++) {
        int rc;
        while ((rc = lg_queue_push(a->q, (void *)(a->who * STRIDE + i))) == LG_ERR_EXHAUSTED &&
               a->spin) {
            sched_yield();
        }
        if (rc != LG_OK) {
            a->bad = rc != LG_ERR_EXHAUSTED ? rc : 0;
            break;
        }
        a->accepted = i;
    }
    return NULL;
}

/* One thread's home shard is full while another thread's is not: its push goes on to a
 * shard with room instead of being refused, and the other thread is not refused either. */
static void test_queue_full_shard_spills(void **state)
{
    (void)state;
    lg_queue *q = NULL;
    const size_t cap = (size_t)LG_QUEUE_MAX_SHARDS * 4; /* 4 slots per shard */
    assert_int_equal(lg_queue_new(&q, cap), LG_OK);
    /* A second thread takes a home shard and puts one item there. */
    struct pusher other = {q, 1, 1, 0, false, NULL, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, pusher_main, &other), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(other.accepted, 1);
    /* This thread pushes three shards' worth: its own fills after 4. */
    for (uintptr_t i = 1; i <= 12; i++) {
        assert_int_equal(lg_queue_push(q, (void *)(0 * STRIDE + i)), LG_OK);
    }
    assert_int_equal(lg_queue_count(q), 13);
    /* The other thread can still push (its home has room, or it moves on). */
    other.n = 3;
    other.accepted = 0;
    assert_int_equal(pthread_create(&th, NULL, pusher_main, &other), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(other.accepted, 3);
    /* Thread-level order: the second run of the other thread restarts at seq 1 (a new
     * thread), so check this thread's items only. */
    uintptr_t mine = 0;
    long got = 0;
    void *out;
    while (lg_queue_pop(q, &out) == LG_OK) {
        uintptr_t v = (uintptr_t)out;
        if (v / STRIDE == 0) {
            assert_int_equal(v, mine + 1);
            mine = v;
        }
        got++;
    }
    assert_int_equal(mine, 12);
    assert_int_equal(got, 16);
    lg_queue_free(q);
}

#define FILLERS 6

/* Several threads fill a small queue until it refuses (all shards full, many moves from
 * shard to shard), then one consumer drains it: exactly the capacity was accepted, and
 * each producer's items come out in its order. Repeated, so the bindings move on. */
static void test_queue_producers_fill_then_drain_in_order(void **state)
{
    (void)state;
    lg_queue *q = NULL;
    const size_t cap = 256;
    assert_int_equal(lg_queue_new(&q, cap), LG_OK);
    for (int round = 0; round < 20; round++) {
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, FILLERS);
        struct pusher ps[FILLERS];
        pthread_t th[FILLERS];
        for (uintptr_t i = 0; i < FILLERS; i++) {
            ps[i] = (struct pusher){q, i, 0, 0, false, &go, 0};
            assert_int_equal(pthread_create(&th[i], NULL, pusher_main, &ps[i]), 0);
        }
        uintptr_t total = 0;
        for (int i = 0; i < FILLERS; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            assert_int_equal(ps[i].bad, 0);
            total += ps[i].accepted;
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(total, cap);
        assert_int_equal(lg_queue_count(q), cap);
        uintptr_t last[FILLERS] = {0};
        assert_int_equal(drain_in_order(q, last, FILLERS), (long)cap);
        for (int i = 0; i < FILLERS; i++) {
            assert_int_equal(last[i], ps[i].accepted);
        }
    }
    lg_queue_free(q);
}

#define RACERS    6
#define PER_RACER 20000u

/* More producers than the small queue has room for, pushing while the consumer drains:
 * the queue is full most of the time, so pushes move between shards constantly. Nothing
 * is lost and each producer's order holds. */
static void test_queue_producers_race_consumer_in_order(void **state)
{
    (void)state;
    lg_queue *q = NULL;
    assert_int_equal(lg_queue_new(&q, 64), LG_OK);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    struct pusher ps[RACERS];
    pthread_t th[RACERS];
    for (uintptr_t i = 0; i < RACERS; i++) {
        ps[i] = (struct pusher){q, i, PER_RACER, 0, true, &go, 0};
        assert_int_equal(pthread_create(&th[i], NULL, pusher_main, &ps[i]), 0);
    }
    uintptr_t last[RACERS] = {0};
    long got = 0;
    while (got < (long)RACERS * PER_RACER) {
        long n = drain_in_order(q, last, RACERS);
        if (n == 0) {
            sched_yield();
        }
        got += n;
    }
    for (int i = 0; i < RACERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(ps[i].bad, 0);
        assert_int_equal(last[i], PER_RACER);
    }
    pthread_barrier_destroy(&go);
    void *out;
    assert_int_equal(lg_queue_pop(q, &out), LG_ERR_AGAIN);
    lg_queue_free(q);
}

/* One thread pushing into two queues in turn keeps a binding (and an order) per queue:
 * its items in one queue never reach the other, and both come out in order, also when
 * both are small enough that the pushes move between shards. Then more queues than the
 * thread's table holds: nothing is lost, each queue gives back exactly its items. */
static void test_queue_two_queues_same_thread(void **state)
{
    (void)state;
    lg_queue *a = NULL, *b = NULL;
    assert_int_equal(lg_queue_new(&a, 16), LG_OK);
    assert_int_equal(lg_queue_new(&b, 32), LG_OK);
    for (uintptr_t i = 1; i <= 32; i++) {
        if (i <= 16) {
            assert_int_equal(lg_queue_push(a, (void *)(0 * STRIDE + i)), LG_OK);
        }
        assert_int_equal(lg_queue_push(b, (void *)(0 * STRIDE + i)), LG_OK);
    }
    assert_int_equal(lg_queue_push(a, (void *)(uintptr_t)99), LG_ERR_EXHAUSTED);
    assert_int_equal(lg_queue_push(b, (void *)(uintptr_t)99), LG_ERR_EXHAUSTED);
    uintptr_t last[1] = {0};
    assert_int_equal(drain_in_order(a, last, 1), 16);
    last[0] = 0;
    assert_int_equal(drain_in_order(b, last, 1), 32);
    lg_queue_free(a);
    lg_queue_free(b);

    enum { NQ = LG_QUEUE_THREAD_QUEUES + 3, PER_Q = 50 };
    lg_queue *qs[NQ];
    for (int i = 0; i < NQ; i++) {
        assert_int_equal(lg_queue_new(&qs[i], 64), LG_OK);
    }
    for (uintptr_t n = 1; n <= PER_Q; n++) {
        for (uintptr_t i = 0; i < NQ; i++) {
            assert_int_equal(lg_queue_push(qs[i], (void *)(i * STRIDE + n)), LG_OK);
        }
    }
    for (uintptr_t i = 0; i < NQ; i++) {
        assert_int_equal(lg_queue_count(qs[i]), PER_Q);
        uintptr_t seen = 0, sum = 0;
        void *out;
        while (lg_queue_pop(qs[i], &out) == LG_OK) {
            assert_int_equal((uintptr_t)out / STRIDE, i);
            sum += (uintptr_t)out % STRIDE;
            seen++;
        }
        assert_int_equal(seen, PER_Q);
        assert_int_equal(sum, PER_Q * (PER_Q + 1) / 2);
        lg_queue_free(qs[i]);
    }
}

/* A queue freed and a new one made (often at the same address): the thread's binding to
 * the old one must not leak into the new one (a dependency on an item that never existed
 * would stall the consumer). */
static void test_queue_new_queue_after_free(void **state)
{
    (void)state;
    for (int round = 0; round < 4; round++) {
        lg_queue *q = NULL;
        assert_int_equal(lg_queue_new(&q, 8), LG_OK);
        for (uintptr_t i = 1; i <= 8; i++) {
            assert_int_equal(lg_queue_push(q, (void *)i), LG_OK);
        }
        uintptr_t last[1] = {0};
        /* Leave some in it: the binding's last position is past the start. */
        void *out;
        assert_int_equal(lg_queue_pop(q, &out), LG_OK);
        assert_int_equal((uintptr_t)out, 1);
        while (lg_queue_pop(q, &out) == LG_OK) {
        }
        lg_queue_free(q);
        assert_int_equal(lg_queue_new(&q, 16), LG_OK);
        for (uintptr_t i = 1; i <= 3; i++) {
            assert_int_equal(lg_queue_push(q, (void *)i), LG_OK);
        }
        assert_int_equal(drain_in_order(q, last, 1), 3);
        lg_queue_free(q);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_capacity_must_be_power_of_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_then_empty_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_reserved_and_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_many_producers_lose_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_capacity_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_full_shard_spills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_producers_fill_then_drain_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_producers_race_consumer_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_two_queues_same_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_new_queue_after_free, setup, teardown),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
