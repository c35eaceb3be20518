/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_sse_table: a small chained hash map for the edge's per-connection and per-user
 * bookkeeping (pointer or string keys -> pointer values). Buckets double when the table
 * holds more than two entries per bucket, so lookups stay O(1) from ten connections to
 * fifty thousand without a large fixed table.
 *
 * Thread: one owner (the loop thread). Ownership: keys are borrowed (a string key must
 * stay valid while its entry exists, typically because the value holds it); values are
 * borrowed. Errors: LG_ERR_NOMEM.
 */
#ifndef LG_SSE_TABLE_H
#define LG_SSE_TABLE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct lg_sse_table lg_sse_table;

/* |string_keys| true: keys are NUL-terminated strings compared by content; false: keys are
 * compared as pointers. */
int lg_sse_table_new(lg_sse_table **out, bool string_keys);
/* Frees the table (not the values). Accepts NULL. */
void lg_sse_table_free(lg_sse_table *t);
/* Inserts or replaces |key| -> |value|. */
int lg_sse_table_put(lg_sse_table *t, const void *key, void *value);
/* The value of |key|, or NULL. */
void *lg_sse_table_get(const lg_sse_table *t, const void *key);
/* Removes |key|; returns its value or NULL. */
void *lg_sse_table_del(lg_sse_table *t, const void *key);
/* Entries held. */
size_t lg_sse_table_count(const lg_sse_table *t);
/* Calls |fn| for every entry; |fn| must not modify the table. */
void lg_sse_table_each(const lg_sse_table *t, void (*fn)(const void *key, void *value, void *ud),
                       void *ud);

#endif /* LG_SSE_TABLE_H */
