/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_queue: the shipper's hot-path queue, a bounded lock-free multi-producer,
 * single-consumer queue of pointers, sharded so that producers do not share a position.
 *
 * Purpose: lg_shipper_enqueue is the only cost a request pays; it is one lg_queue_push:
 * no lock, no syscall, no allocation. When the queue is full the push fails at once
 * (LG_ERR_EXHAUSTED) and the caller decides (the shipper spools the record).
 *
 * Design: the capacity is split into up to LG_QUEUE_MAX_SHARDS shards, each a Vyukov
 * bounded ring (a sequence number per slot, one CAS on the shard's own cache-line-padded
 * head). A thread is bound to a "home" shard of a queue on its first push to it (handed
 * out round robin, so up to LG_QUEUE_MAX_SHARDS producer threads never share a head);
 * the binding lives in a small per-thread table keyed by the queue, so one thread can use
 * several queues. A push whose home shard is full goes to another shard with room, so the
 * queue refuses only when every shard is full. The consumer takes from the shards in turn.
 *
 * Order: FIFO per producer thread, not global. When a producer's push lands in a shard
 * other than the one of its previous push, the slot records where that previous item is,
 * and the consumer does not take it before that one. Edge: a thread keeps this memory for
 * LG_QUEUE_THREAD_QUEUES queues; a thread that pushes to more queues than that in turn
 * forgets the oldest binding, and its next push there may overtake its previous one.
 *
 * Thread: lg_queue_push from any number of threads. lg_queue_pop from one consumer thread
 * at a time (another thread may take over after a join or a lock handoff).
 * lg_queue_count/capacity from any thread. new/free while no other thread uses the queue.
 * Ownership: the queue stores pointers only; it never frees what it holds. A popped
 * pointer belongs to the popper.
 * Errors: LG_ERR_INVALID (capacity not a power of two >= 2), LG_ERR_NOMEM, LG_ERR_EXHAUSTED
 * (full), LG_ERR_AGAIN (nothing can be taken now).
 *
 * Caveat (as DPDK documents for rte_ring): a producer preempted between its CAS and its
 * store delays the consumer at that slot of that shard until it runs again; other shards
 * are still taken, and other producers never wait.
 */
#ifndef LG_QUEUE_H
#define LG_QUEUE_H

#include <stddef.h>

/* Most shards per queue: producer threads beyond this share a shard (still correct, one
 * CAS more to contend). 16 covers a gateway's request threads on a typical node; each
 * shard costs two cache lines plus its share of the slots. */
#define LG_QUEUE_MAX_SHARDS 16u
/* Fewest slots per shard: a Vyukov ring of one slot cannot tell full from empty. Small
 * queues get fewer shards (a capacity of 8 gives 4 shards of 2). */
#define LG_QUEUE_MIN_SHARD_SLOTS 2u
/* Queues a thread remembers its binding for (see "Order" above). A gateway has one
 * shipper queue; the table is a linear scan, so it stays small. */
#define LG_QUEUE_THREAD_QUEUES 8u
/* Items the consumer takes from one shard before it moves on to the next: a shard is
 * drained in runs (no scan of the empty ones per item), and no shard waits for long. */
#define LG_QUEUE_POP_BURST 64u

typedef struct lg_queue lg_queue;

/* Allocates a queue of |capacity| slots in all (a power of two, >= 2). */
int lg_queue_new(lg_queue **out, size_t capacity);
/* Frees the queue; pointers still in it are not freed (drain first). Accepts NULL. */
void lg_queue_free(lg_queue *q);

/* Appends |item| (non-NULL). LG_OK or LG_ERR_EXHAUSTED when every shard is full (|item|
 * stays the caller's). Lock-free; never blocks, never allocates, no syscall. */
int lg_queue_push(lg_queue *q, void *item);
/* Removes an item into |*out|: the oldest of some producer. LG_OK or LG_ERR_AGAIN when
 * empty (or when only items of producers still in the middle of a push remain). One
 * consumer at a time. */
int lg_queue_pop(lg_queue *q, void **out);

/* Slots in all shards: the capacity given to lg_queue_new. */
size_t lg_queue_capacity(const lg_queue *q);
/* Approximate number of items (exact when no push/pop runs concurrently). */
size_t lg_queue_count(const lg_queue *q);
/* Pushes begun so far (slots reserved, filled or not), summed over the shards: grows by one
 * per successful lg_queue_push, at its reservation. Any thread. */
size_t lg_queue_reserved(const lg_queue *q);
/* Items taken so far by lg_queue_pop. When it reaches a value lg_queue_reserved returned,
 * every push begun before that call has been taken, including ones a drain had to stop
 * short of because an earlier slot of their shard was still being filled. */
size_t lg_queue_taken(const lg_queue *q);

#endif /* LG_QUEUE_H */
