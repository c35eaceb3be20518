/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_queue: the shipper's hot-path queue, a bounded lock-free multi-producer queue of
 * pointers (Vyukov's bounded MPMC ring: one CAS per push, a sequence number per slot).
 *
 * Purpose: lg_shipper_enqueue is the only cost a request pays; it is one lg_queue_push:
 * no lock, no syscall, no allocation. When the ring is full the push fails at once
 * (LG_ERR_EXHAUSTED) and the caller decides (the shipper spools the record).
 *
 * Thread: lg_queue_push from any number of threads; lg_queue_pop from any thread (the
 * shipper has one consumer). new/free while no other thread uses the queue.
 * Ownership: the queue stores pointers only; it never frees what it holds. A popped
 * pointer belongs to the popper.
 * Errors: LG_ERR_INVALID (capacity not a power of two >= 2), LG_ERR_NOMEM, LG_ERR_EXHAUSTED
 * (full), LG_ERR_AGAIN (empty).
 *
 * Caveat (as DPDK documents for rte_ring): a producer preempted between its CAS and its
 * store delays the consumer at that slot until it runs again; other producers never wait.
 */
#ifndef LG_QUEUE_H
#define LG_QUEUE_H

#include <stddef.h>

typedef struct lg_queue lg_queue;

/* Allocates a queue of |capacity| slots (a power of two, >= 2). */
int lg_queue_new(lg_queue **out, size_t capacity);
/* Frees the ring; pointers still in it are not freed (drain first). Accepts NULL. */
void lg_queue_free(lg_queue *q);

/* Appends |item| (non-NULL). LG_OK or LG_ERR_EXHAUSTED when full (|item| stays the
 * caller's). Lock-free; never blocks, never allocates. */
int lg_queue_push(lg_queue *q, void *item);
/* Removes the oldest item into |*out|. LG_OK or LG_ERR_AGAIN when empty. */
int lg_queue_pop(lg_queue *q, void **out);

/* Slots in the ring. */
size_t lg_queue_capacity(const lg_queue *q);
/* Approximate number of items (exact when no push/pop runs concurrently). */
size_t lg_queue_count(const lg_queue *q);

#endif /* LG_QUEUE_H */
