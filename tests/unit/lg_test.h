/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_test: shared glue for cmocka unit tests. Include after <cmocka.h>.
 *
 * lg_test_use_cmocka_allocator() routes lg_malloc & co. to cmocka's test_malloc/test_free, so
 * a leak or an overrun fails the test that caused it. lg_test_fail_after(n) makes the n-th
 * following allocation (0 = the next) fail, to reach LG_ERR_NOMEM paths; -1 turns it off.
 * State is per test process, reset by lg_test_use_cmocka_allocator().
 */
#ifndef LG_TEST_H
#define LG_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "lg_mem.h"

struct lg_test_alloc_state {
    long fail_after; /* allocations left before one fails; -1 = never */
    long count;      /* allocations attempted */
};

static struct lg_test_alloc_state lg_test_alloc = {-1, 0};

static int lg_test_should_fail(void)
{
    lg_test_alloc.count++;
    if (lg_test_alloc.fail_after < 0) {
        return 0;
    }
    return lg_test_alloc.fail_after-- == 0;
}

static void *lg_test_malloc(size_t size, void *ud)
{
    (void)ud;
    return lg_test_should_fail() ? NULL : test_malloc(size);
}

static void *lg_test_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return lg_test_should_fail() ? NULL : test_calloc(n, size);
}

static void *lg_test_realloc(void *p, size_t size, void *ud)
{
    (void)ud;
    return lg_test_should_fail() ? NULL : test_realloc(p, size);
}

static void lg_test_free(void *p, void *ud)
{
    (void)ud;
    test_free(p);
}

static inline void lg_test_use_cmocka_allocator(void)
{
    static const struct lg_allocator a = {lg_test_malloc, lg_test_calloc, lg_test_realloc,
                                          lg_test_free, NULL};
    lg_test_alloc.fail_after = -1;
    lg_test_alloc.count = 0;
    lg_mem_set_allocator(&a);
}

static inline void lg_test_fail_after(long n)
{
    lg_test_alloc.fail_after = n;
}

#endif /* LG_TEST_H */
