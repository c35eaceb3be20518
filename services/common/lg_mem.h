/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_mem: the one allocator hook, and per-request arenas.
 *
 * All heap memory in llmgate goes through lg_malloc/lg_calloc/lg_realloc/lg_free, so one hook
 * serves accounting, leak checks and fail-after-N tests (redis zmalloc, nghttp2 failmalloc).
 * The hook is process-wide and set once, before any thread starts (lg_mem_set_allocator);
 * unit tests route it to cmocka's test_malloc. Out of memory is an error return
 * (LG_ERR_NOMEM), never an abort: a gateway under pressure sheds the request.
 *
 * lg_arena: a bump allocator for request-scoped data (parsed requests, protobuf-c messages,
 * header copies), freed in one call when the stream closes. Not thread-safe: one arena
 * belongs to one stream on one loop thread.
 */
#ifndef LG_MEM_H
#define LG_MEM_H

#include <stddef.h>

struct ProtobufCAllocator;

/* The allocator functions behind lg_malloc & co. All four must be set. */
struct lg_allocator {
    void *(*malloc_fn)(size_t size, void *ud);
    void *(*calloc_fn)(size_t n, size_t size, void *ud);
    void *(*realloc_fn)(void *p, size_t size, void *ud);
    void (*free_fn)(void *p, void *ud);
    void *ud; /* passed to every function above */
};

/* Replaces the process allocator with |a| (copied), or restores libc when |a| is NULL.
 * Call only at startup or from a test's setup, while no other thread allocates. */
void lg_mem_set_allocator(const struct lg_allocator *a);

void *lg_malloc(size_t size);
void *lg_calloc(size_t n, size_t size);
void *lg_realloc(void *p, size_t size);
void lg_free(void *p);

/* Returns an lg_malloc'd copy of |len| bytes at |p| plus a NUL, or NULL (out of memory). */
char *lg_strndup(const char *p, size_t len);
/* lg_strndup(s, strlen(s)); NULL in gives NULL out. */
char *lg_strdup(const char *s);

typedef struct lg_arena lg_arena;

/* Creates an arena whose chunks are at least |chunk_bytes| (0 = default) and whose total
 * never exceeds |max_bytes| (0 = no cap beyond memory). Returns LG_OK or LG_ERR_NOMEM. */
int lg_arena_new(lg_arena **out, size_t chunk_bytes, size_t max_bytes);
/* Frees every allocation made from |a| and |a| itself. Accepts NULL. */
void lg_arena_free(lg_arena *a);

/* Returns |size| bytes aligned for any type, valid until lg_arena_free, or NULL when out of
 * memory or past max_bytes. */
void *lg_arena_alloc(lg_arena *a, size_t size);
/* Copies |len| bytes plus a NUL into the arena; NULL on failure. */
char *lg_arena_strndup(lg_arena *a, const char *p, size_t len);
/* Bytes handed out so far (for accounting and tests). */
size_t lg_arena_used(const lg_arena *a);

/* Fills |out| so that protobuf-c unpacks into |a|: its free() is a no-op, the arena frees
 * everything at once. |a| is borrowed and must outlive every message unpacked with |out|. */
void lg_arena_protobuf_allocator(lg_arena *a, struct ProtobufCAllocator *out);

#endif /* LG_MEM_H */
