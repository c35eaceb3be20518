/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_mem.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "lg_err.h"

static void *libc_malloc(size_t size, void *ud)
{
    (void)ud;
    return malloc(size);
}

static void *libc_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return calloc(n, size);
}

static void *libc_realloc(void *p, size_t size, void *ud)
{
    (void)ud;
    return realloc(p, size);
}

static void libc_free(void *p, void *ud)
{
    (void)ud;
    free(p);
}

/* The one process-wide hook (see the header: set at startup only). */
static struct lg_allocator lg_mem_alloc = {libc_malloc, libc_calloc, libc_realloc, libc_free,
                                           NULL};

void lg_mem_set_allocator(const struct lg_allocator *a)
{
    if (a) {
        lg_mem_alloc = *a;
    } else {
        lg_mem_alloc = (struct lg_allocator){libc_malloc, libc_calloc, libc_realloc, libc_free,
                                             NULL};
    }
}

void *lg_malloc(size_t size)
{
    return lg_mem_alloc.malloc_fn(size ? size : 1, lg_mem_alloc.ud);
}

void *lg_calloc(size_t n, size_t size)
{
    return lg_mem_alloc.calloc_fn(n ? n : 1, size ? size : 1, lg_mem_alloc.ud);
}

void *lg_realloc(void *p, size_t size)
{
    return lg_mem_alloc.realloc_fn(p, size ? size : 1, lg_mem_alloc.ud);
}

void lg_free(void *p)
{
    if (p) {
        lg_mem_alloc.free_fn(p, lg_mem_alloc.ud);
    }
}

char *lg_strndup(const char *p, size_t len)
{
    char *s = lg_malloc(len + 1);
    if (!s) {
        return NULL;
    }
    if (len) {
        memcpy(s, p, len);
    }
    s[len] = '\0';
    return s;
}

char *lg_strdup(const char *s)
{
    return s ? lg_strndup(s, strlen(s)) : NULL;
}

/* Arena chunks form a singly linked list; allocation bumps |used| in the newest chunk. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t cap;  /* bytes of data[] */
    size_t used; /* bytes of data[] handed out */
    alignas(max_align_t) unsigned char data[];
};

struct lg_arena {
    struct arena_chunk *head;
    size_t chunk_bytes; /* default chunk payload size */
    size_t max_bytes;   /* cap on the sum of chunk payloads; 0 = none */
    size_t total_cap;   /* sum of chunk payloads allocated */
    size_t used;        /* bytes handed out */
};

/* 4 KiB covers a typical parsed ChatRequest with its headers in one chunk. */
#define ARENA_DEFAULT_CHUNK_BYTES 4096u

int lg_arena_new(lg_arena **out, size_t chunk_bytes, size_t max_bytes)
{
    lg_arena *a = lg_calloc(1, sizeof(*a));
    if (!a) {
        return LG_ERR_NOMEM;
    }
    a->chunk_bytes = chunk_bytes ? chunk_bytes : ARENA_DEFAULT_CHUNK_BYTES;
    a->max_bytes = max_bytes;
    *out = a;
    return LG_OK;
}

void lg_arena_free(lg_arena *a)
{
    if (!a) {
        return;
    }
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        lg_free(c);
        c = next;
    }
    lg_free(a);
}

void *lg_arena_alloc(lg_arena *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    size_t need = (size + align - 1) & ~(align - 1);
    if (need < size) {
        return NULL; /* overflow */
    }
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > a->chunk_bytes ? need : a->chunk_bytes;
        if (a->max_bytes && (cap > a->max_bytes || a->total_cap > a->max_bytes - cap)) {
            return NULL;
        }
        c = lg_malloc(sizeof(*c) + cap);
        if (!c) {
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->total_cap += cap;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

char *lg_arena_strndup(lg_arena *a, const char *p, size_t len)
{
    char *s = lg_arena_alloc(a, len + 1);
    if (!s) {
        return NULL;
    }
    if (len) {
        memcpy(s, p, len);
    }
    s[len] = '\0';
    return s;
}

size_t lg_arena_used(const lg_arena *a)
{
    return a->used;
}

static void *arena_pb_alloc(void *ud, size_t size)
{
    return lg_arena_alloc(ud, size);
}

static void arena_pb_free(void *ud, void *p)
{
    /* Freed in bulk by lg_arena_free. */
    (void)ud;
    (void)p;
}

void lg_arena_protobuf_allocator(lg_arena *a, struct ProtobufCAllocator *out)
{
    out->alloc = arena_pb_alloc;
    out->free = arena_pb_free;
    out->allocator_data = a;
}
