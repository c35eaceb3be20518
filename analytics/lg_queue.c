/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_queue.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "lg_err.h"
#include "lg_mem.h"

/* Cache line size on x86-64 and most arm64: a shard's push position, its pop position and
 * the next shard's push position each get their own line, so a push writes only lines its
 * own thread writes (false sharing would cost every push a line transfer). */
#define LG_QUEUE_CACHE_LINE 64

/* lg_queue_dep.shard when the producer's previous item is in the same shard (or none). */
#define LG_QUEUE_NO_DEP UINT32_MAX

_Static_assert((LG_QUEUE_MAX_SHARDS & (LG_QUEUE_MAX_SHARDS - 1)) == 0,
               "shard indexes are masked: a power of two");
_Static_assert(LG_QUEUE_MIN_SHARD_SLOTS >= 2, "a one-slot Vyukov ring cannot tell full");
_Static_assert(LG_QUEUE_POP_BURST >= 1, "the consumer takes at least one item per shard");

/* 16 bytes, as in Vyukov's ring: a push writes a new cache line every 4 pushes. With the
 * dependency in the slot (32 bytes) it was every 2, and a lone producer's p99 went from
 * 23 to ~125 ns (line fills from memory: the ring is larger than the cache). */
struct lg_queue_slot {
    atomic_size_t seq; /* == position: free for the push at |position|; position+1: full */
    void *item;
};

/* Beside each slot, in a parallel array: where the pushing thread's previous item in this
 * queue is, when in another shard. The consumer takes the slot's item only once that
 * shard's tail is past |pos|. Written by a producer only when it changes shard (rare); the
 * consumer reads it at every pop and sets it back to none after one was set. Ordered by
 * the slot's seq like the item. */
struct lg_queue_dep {
    size_t pos;
    uint32_t shard; /* LG_QUEUE_NO_DEP: no constraint beyond this shard's order */
};

struct lg_queue_shard {
    /* Producers' line: read-only ring geometry beside the push position, which only the
     * threads bound to this shard (and spills) write. */
    alignas(LG_QUEUE_CACHE_LINE) struct lg_queue_slot *slots;
    struct lg_queue_dep *deps; /* parallel to slots */
    size_t mask;               /* slots in this shard - 1 */
    atomic_size_t head;        /* next position to push */
    /* Consumer's line, with its own copy of the geometry: were the consumer to read the
     * producers' line at every pop, the next push would have to take that line back from
     * its core (measured: p99 of a lone producer 25 -> ~130 ns). */
    alignas(LG_QUEUE_CACHE_LINE) atomic_size_t tail; /* next position to pop */
    struct lg_queue_slot *c_slots;                   /* == slots */
    struct lg_queue_dep *c_deps;                     /* == deps */
    size_t c_mask;                                   /* == mask */
};

struct lg_queue {
    /* Immutable after new; read by every push. */
    struct lg_queue_shard *shards; /* |nshards|, cache-line aligned inside shards_mem */
    uint32_t nshards;              /* a power of two */
    size_t capacity;               /* all shards' slots */
    uint64_t uid;                  /* tells this queue from an earlier one at the same address */
    void *shards_mem, *slots_mem;  /* allocations (with alignment slack); slots, then deps */
    /* Written once per producer thread (first push). lg_calloc guarantees only max_align_t
     * alignment, so padding rather than alignas keeps it off the read-mostly line. */
    char pad_home[LG_QUEUE_CACHE_LINE];
    atomic_uint next_home; /* next home shard to hand out, modulo nshards */
    char pad_consumer[LG_QUEUE_CACHE_LINE];
    /* Consumer only. */
    uint32_t cursor; /* shard the consumer takes from */
    uint32_t burst;  /* items taken from it in a row */
};

/* A thread's binding to one queue. */
struct lg_queue_binding {
    const lg_queue *q; /* NULL: unused entry */
    uint64_t uid;      /* q->uid when bound (q's address may be reused by a later queue) */
    uint32_t home;     /* shard tried first: the first one given, or where it last spilled */
    uint32_t last;     /* shard of this thread's previous push, LG_QUEUE_NO_DEP: none */
    size_t last_pos;   /* its position there */
};

/* The per-thread binding table. Thread-local rather than shared: it is each producer's own
 * memory of where it pushes and where its previous item went (per-producer order), and it
 * needs no registration or cleanup when a thread ends. The alternative, a producer handle
 * passed by every caller, would change lg_shipper_enqueue and all its callers. Nothing in
 * it is read by another thread. */
struct lg_queue_thread {
    struct lg_queue_binding b[LG_QUEUE_THREAD_QUEUES];
    uint32_t victim; /* next entry to reuse when all are taken */
};

static _Thread_local struct lg_queue_thread lg_queue_tls;

/* Returns |mem| rounded up to a cache line (|mem| was allocated with a line of slack). */
static void *align_line(void *mem)
{
    uintptr_t p = (uintptr_t)mem;
    p = (p + LG_QUEUE_CACHE_LINE - 1) & ~(uintptr_t)(LG_QUEUE_CACHE_LINE - 1);
    return (void *)p;
}

static uint64_t new_uid(const lg_queue *q)
{
    /* Two queues at one address exist one after the other, so their creation times
     * differ. Only a hint anyway: a stale binding costs balance, never correctness (see
     * dep_check). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec) ^
           (uint64_t)(uintptr_t)q;
}

int lg_queue_new(lg_queue **out, size_t capacity)
{
    if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
        return LG_ERR_INVALID;
    }
    uint32_t nshards = LG_QUEUE_MAX_SHARDS;
    while (nshards > 1 && capacity / nshards < LG_QUEUE_MIN_SHARD_SLOTS) {
        nshards /= 2;
    }
    size_t per = capacity / nshards;
    const size_t slot_bytes = sizeof(struct lg_queue_slot) + sizeof(struct lg_queue_dep);
    if (capacity > (SIZE_MAX - LG_QUEUE_CACHE_LINE) / slot_bytes) {
        return LG_ERR_NOMEM; /* the size would wrap: no allocation could hold it */
    }
    lg_queue *q = lg_calloc(1, sizeof(*q));
    if (q == NULL) {
        return LG_ERR_NOMEM;
    }
    q->shards_mem = lg_calloc(1, nshards * sizeof(struct lg_queue_shard) + LG_QUEUE_CACHE_LINE);
    if (q->shards_mem == NULL) {
        goto out_free_queue;
    }
    q->slots_mem = lg_calloc(1, capacity * slot_bytes + LG_QUEUE_CACHE_LINE);
    if (q->slots_mem == NULL) {
        goto out_free_shards;
    }
    q->shards = align_line(q->shards_mem);
    struct lg_queue_slot *slots = align_line(q->slots_mem);
    struct lg_queue_dep *deps = (struct lg_queue_dep *)(slots + capacity);
    for (uint32_t i = 0; i < nshards; i++) {
        struct lg_queue_shard *sh = &q->shards[i];
        sh->slots = slots + (size_t)i * per;
        sh->deps = deps + (size_t)i * per;
        sh->mask = per - 1;
        sh->c_slots = sh->slots;
        sh->c_deps = sh->deps;
        sh->c_mask = sh->mask;
        for (size_t j = 0; j < per; j++) {
            atomic_init(&sh->slots[j].seq, j);
            sh->deps[j].shard = LG_QUEUE_NO_DEP;
        }
        atomic_init(&sh->head, 0);
        atomic_init(&sh->tail, 0);
    }
    q->nshards = nshards;
    q->capacity = capacity;
    q->uid = new_uid(q);
    atomic_init(&q->next_home, 0);
    *out = q;
    return LG_OK;

out_free_shards:
    lg_free(q->shards_mem);
out_free_queue:
    lg_free(q);
    return LG_ERR_NOMEM;
}

void lg_queue_free(lg_queue *q)
{
    if (q == NULL) {
        return;
    }
    lg_free(q->slots_mem);
    lg_free(q->shards_mem);
    lg_free(q);
}

/* This thread's binding to |q|, made on first use: the home shard is handed out round
 * robin, so the first LG_QUEUE_MAX_SHARDS producer threads each get their own. */
static struct lg_queue_binding *binding_of(lg_queue *q)
{
    struct lg_queue_thread *t = &lg_queue_tls;
    struct lg_queue_binding *free_entry = NULL;
    for (uint32_t i = 0; i < LG_QUEUE_THREAD_QUEUES; i++) {
        struct lg_queue_binding *b = &t->b[i];
        if (b->q == q && b->uid == q->uid) {
            return b;
        }
        if (b->q == NULL && free_entry == NULL) {
            free_entry = b;
        }
    }
    struct lg_queue_binding *b = free_entry;
    if (b == NULL) {
        b = &t->b[t->victim];
        t->victim = (t->victim + 1) % LG_QUEUE_THREAD_QUEUES;
    }
    unsigned h = atomic_fetch_add_explicit(&q->next_home, 1, memory_order_relaxed);
    *b = (struct lg_queue_binding){q, q->uid, h & (q->nshards - 1), LG_QUEUE_NO_DEP, 0};
    return b;
}

/* The constraint to record for a push into shard |s|: the thread's previous item, when it
 * is in another shard. A position at or past that shard's head cannot be an item of this
 * queue (a binding left by a freed queue at the same address whose uid matched by chance):
 * it is dropped, so the consumer can never wait for an item that does not exist. */
static uint32_t dep_check(const lg_queue *q, const struct lg_queue_binding *b, uint32_t s)
{
    if (b->last == LG_QUEUE_NO_DEP || b->last == s || b->last >= q->nshards) {
        return LG_QUEUE_NO_DEP;
    }
    size_t head = atomic_load_explicit(&q->shards[b->last].head, memory_order_relaxed);
    return b->last_pos < head ? b->last : LG_QUEUE_NO_DEP;
}

/* One Vyukov push into shard |s|; false when that shard is full. */
static bool shard_push(lg_queue *q, struct lg_queue_binding *b, uint32_t s, void *item)
{
    struct lg_queue_shard *sh = &q->shards[s];
    size_t pos = atomic_load_explicit(&sh->head, memory_order_relaxed);
    for (;;) {
        struct lg_queue_slot *slot = &sh->slots[pos & sh->mask];
        size_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&sh->head, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                slot->item = item;
                uint32_t dep = dep_check(q, b, s);
                if (dep != LG_QUEUE_NO_DEP) {
                    sh->deps[pos & sh->mask] = (struct lg_queue_dep){b->last_pos, dep};
                }
                atomic_store_explicit(&slot->seq, pos + 1, memory_order_release);
                b->last = s;
                b->last_pos = pos;
                return true;
            }
        } else if (dif < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&sh->head, memory_order_relaxed);
        }
    }
}

int lg_queue_push(lg_queue *q, void *item)
{
    struct lg_queue_binding *b = binding_of(q);
    uint32_t n = q->nshards;
    /* Masked: only a binding left by a freed queue whose uid matched by chance could hold
     * a larger index (see dep_check). */
    uint32_t home = b->home & (n - 1);
    if (shard_push(q, b, home, item)) {
        return LG_OK;
    }
    /* Home is full: move home to another shard with room, taken from the same round robin
     * as first bindings, so that a spilling thread goes to a shard no other thread was
     * given if there is one (not to its neighbour's home, where both would then contend on
     * every push), and stays there (one probe per push, not a full home first). The queue
     * refuses only when all shards are full. */
    uint32_t start = atomic_fetch_add_explicit(&q->next_home, 1, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = (start + i) & (n - 1);
        if (s != home && shard_push(q, b, s, item)) {
            b->home = s;
            return LG_OK;
        }
    }
    return LG_ERR_EXHAUSTED;
}

/* Takes the item at shard |s|'s tail if it is published and its producer's previous item
 * (if in another shard) was taken already. Consumer thread only. */
static bool shard_pop(lg_queue *q, uint32_t s, void **out)
{
    struct lg_queue_shard *sh = &q->shards[s];
    size_t pos = atomic_load_explicit(&sh->tail, memory_order_relaxed);
    struct lg_queue_slot *slot = &sh->c_slots[pos & sh->c_mask];
    if (atomic_load_explicit(&slot->seq, memory_order_acquire) != pos + 1) {
        return false; /* empty, or its producer is between its CAS and its store */
    }
    struct lg_queue_dep *dep = &sh->c_deps[pos & sh->c_mask];
    if (dep->shard != LG_QUEUE_NO_DEP) {
        if (atomic_load_explicit(&q->shards[dep->shard].tail, memory_order_relaxed) <= dep->pos) {
            return false; /* the producer's previous item is still in shard dep->shard */
        }
        dep->shard = LG_QUEUE_NO_DEP; /* before the slot is released to the next push */
    }
    *out = slot->item;
    atomic_store_explicit(&slot->seq, pos + sh->c_mask + 1, memory_order_release);
    atomic_store_explicit(&sh->tail, pos + 1, memory_order_relaxed);
    return true;
}

/* Why a pass over the shards cannot miss a takeable item forever: a dependency always
 * names an item reserved earlier than the one that waits (the same producer pushed it
 * first), and each shard is FIFO in reservation order, so following waits from any
 * blocked item ends at a shard whose tail can be taken, or at a push still in progress. */
int lg_queue_pop(lg_queue *q, void **out)
{
    uint32_t n = q->nshards;
    if (q->burst >= LG_QUEUE_POP_BURST) {
        q->cursor = (q->cursor + 1) & (n - 1);
        q->burst = 0;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = (q->cursor + i) & (n - 1);
        if (shard_pop(q, s, out)) {
            if (i != 0) {
                q->cursor = s;
                q->burst = 0;
            }
            q->burst++;
            return LG_OK;
        }
    }
    return LG_ERR_AGAIN;
}

size_t lg_queue_capacity(const lg_queue *q)
{
    return q->capacity;
}

size_t lg_queue_count(const lg_queue *q)
{
    size_t total = 0;
    for (uint32_t i = 0; i < q->nshards; i++) {
        size_t h = atomic_load_explicit(&q->shards[i].head, memory_order_relaxed);
        size_t t = atomic_load_explicit(&q->shards[i].tail, memory_order_relaxed);
        total += h >= t ? h - t : 0;
    }
    return total;
}

size_t lg_queue_reserved(const lg_queue *q)
{
    size_t total = 0;
    for (uint32_t i = 0; i < q->nshards; i++) {
        total += atomic_load_explicit(&q->shards[i].head, memory_order_acquire);
    }
    return total;
}

size_t lg_queue_taken(const lg_queue *q)
{
    size_t total = 0;
    for (uint32_t i = 0; i < q->nshards; i++) {
        total += atomic_load_explicit(&q->shards[i].tail, memory_order_acquire);
    }
    return total;
}
