/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_queue.h"

#include <stdatomic.h>
#include <stdint.h>

#include "lg_err.h"
#include "lg_mem.h"

/* Cache line size on x86-64 and most arm64: keeps the producer and consumer counters from
 * sharing a line (false sharing would cost every push a line transfer). */
#define LG_QUEUE_CACHE_LINE 64

struct lg_queue_slot {
    atomic_size_t seq; /* == position: free for the push at |position|; position+1: full */
    void *item;
};

struct lg_queue {
    struct lg_queue_slot *slots;
    size_t mask; /* capacity - 1 */
    /* Padding rather than _Alignas: lg_malloc guarantees only max_align_t alignment. */
    char pad_head[LG_QUEUE_CACHE_LINE];
    atomic_size_t head; /* next position to push */
    char pad_tail[LG_QUEUE_CACHE_LINE - sizeof(atomic_size_t)];
    atomic_size_t tail; /* next position to pop */
};

int lg_queue_new(lg_queue **out, size_t capacity)
{
    if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
        return LG_ERR_INVALID;
    }
    lg_queue *q = lg_calloc(1, sizeof(*q));
    if (q == NULL) {
        return LG_ERR_NOMEM;
    }
    q->slots = lg_calloc(capacity, sizeof(*q->slots));
    if (q->slots == NULL) {
        lg_free(q);
        return LG_ERR_NOMEM;
    }
    for (size_t i = 0; i < capacity; i++) {
        atomic_init(&q->slots[i].seq, i);
    }
    q->mask = capacity - 1;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    *out = q;
    return LG_OK;
}

void lg_queue_free(lg_queue *q)
{
    if (q == NULL) {
        return;
    }
    lg_free(q->slots);
    lg_free(q);
}

int lg_queue_push(lg_queue *q, void *item)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (;;) {
        struct lg_queue_slot *s = &q->slots[pos & q->mask];
        size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                s->item = item;
                atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
                return LG_OK;
            }
        } else if (dif < 0) {
            return LG_ERR_EXHAUSTED;
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
}

int lg_queue_pop(lg_queue *q, void **out)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        struct lg_queue_slot *s = &q->slots[pos & q->mask];
        size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *out = s->item;
                atomic_store_explicit(&s->seq, pos + q->mask + 1, memory_order_release);
                return LG_OK;
            }
        } else if (dif < 0) {
            return LG_ERR_AGAIN;
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
}

size_t lg_queue_capacity(const lg_queue *q)
{
    return q->mask + 1;
}

size_t lg_queue_count(const lg_queue *q)
{
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    return h >= t ? h - t : 0;
}
