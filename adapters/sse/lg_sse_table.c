/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_sse_table.h"

#include <stdint.h>
#include <string.h>

#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

struct entry {
    const void *key;
    void *value;
    size_t hash;
    struct entry *next;
};

struct lg_sse_table {
    struct entry **b; /* nb buckets, nb a power of two */
    size_t nb;
    size_t n;
    bool string_keys;
};

static size_t hash_key(const lg_sse_table *t, const void *key)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a offset basis */
    if (t->string_keys) {
        for (const unsigned char *p = key; *p != 0; p++) {
            h = (h ^ *p) * 1099511628211ULL; /* FNV prime */
        }
    } else {
        uintptr_t v = (uintptr_t)key;
        for (size_t i = 0; i < sizeof(v); i++) {
            h = (h ^ ((v >> (8 * i)) & 0xffU)) * 1099511628211ULL;
        }
    }
    return (size_t)h;
}

static bool key_eq(const lg_sse_table *t, const void *a, const void *b)
{
    return t->string_keys ? strcmp(a, b) == 0 : a == b;
}

int lg_sse_table_new(lg_sse_table **out, bool string_keys)
{
    lg_sse_table *t = lg_calloc(1, sizeof(*t));
    if (t == NULL) {
        return LG_ERR_NOMEM;
    }
    t->b = lg_calloc(LG_SSE_TABLE_MIN_BUCKETS, sizeof(*t->b));
    if (t->b == NULL) {
        lg_free(t);
        return LG_ERR_NOMEM;
    }
    t->nb = LG_SSE_TABLE_MIN_BUCKETS;
    t->string_keys = string_keys;
    *out = t;
    return LG_OK;
}

void lg_sse_table_free(lg_sse_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nb; i++) {
        struct entry *e = t->b[i];
        while (e != NULL) {
            struct entry *next = e->next;
            lg_free(e);
            e = next;
        }
    }
    lg_free(t->b);
    lg_free(t);
}

/* Doubles the bucket array; on allocation failure the table stays as it was (slower). */
static void table_grow(lg_sse_table *t)
{
    size_t nb = t->nb * 2;
    struct entry **b = lg_calloc(nb, sizeof(*b));
    if (b == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nb; i++) {
        struct entry *e = t->b[i];
        while (e != NULL) {
            struct entry *next = e->next;
            size_t j = e->hash & (nb - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    lg_free(t->b);
    t->b = b;
    t->nb = nb;
}

int lg_sse_table_put(lg_sse_table *t, const void *key, void *value)
{
    size_t h = hash_key(t, key);
    for (struct entry *e = t->b[h & (t->nb - 1)]; e != NULL; e = e->next) {
        if (e->hash == h && key_eq(t, e->key, key)) {
            e->key = key;
            e->value = value;
            return LG_OK;
        }
    }
    struct entry *e = lg_malloc(sizeof(*e));
    if (e == NULL) {
        return LG_ERR_NOMEM;
    }
    e->key = key;
    e->value = value;
    e->hash = h;
    e->next = t->b[h & (t->nb - 1)];
    t->b[h & (t->nb - 1)] = e;
    t->n++;
    if (t->n > 2 * t->nb) {
        table_grow(t);
    }
    return LG_OK;
}

void *lg_sse_table_get(const lg_sse_table *t, const void *key)
{
    size_t h = hash_key(t, key);
    for (struct entry *e = t->b[h & (t->nb - 1)]; e != NULL; e = e->next) {
        if (e->hash == h && key_eq(t, e->key, key)) {
            return e->value;
        }
    }
    return NULL;
}

void *lg_sse_table_del(lg_sse_table *t, const void *key)
{
    size_t h = hash_key(t, key);
    struct entry **pp = &t->b[h & (t->nb - 1)];
    while (*pp != NULL) {
        struct entry *e = *pp;
        if (e->hash == h && key_eq(t, e->key, key)) {
            void *v = e->value;
            *pp = e->next;
            lg_free(e);
            t->n--;
            return v;
        }
        pp = &e->next;
    }
    return NULL;
}

size_t lg_sse_table_count(const lg_sse_table *t)
{
    return t->n;
}

void lg_sse_table_each(const lg_sse_table *t, void (*fn)(const void *key, void *value, void *ud),
                       void *ud)
{
    for (size_t i = 0; i < t->nb; i++) {
        for (struct entry *e = t->b[i]; e != NULL; e = e->next) {
            fn(e->key, e->value, ud);
        }
    }
}
