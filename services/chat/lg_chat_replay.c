/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_replay.h"

#include <string.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_mem.h"

struct replay_event {
    uint8_t *data; /* lg_malloc'd copy */
    size_t len;
};

struct lg_chat_replay {
    struct replay_event *ring; /* |max_events| slots; event seq lives in slot seq % max */
    size_t max_events;
    size_t max_bytes;
    size_t count;      /* events held: seqs first_seq .. last_seq */
    size_t bytes;      /* sum of held lengths */
    uint64_t last_seq; /* 0 before the first append */
};

int lg_chat_replay_new(lg_chat_replay **out, size_t max_events, size_t max_bytes)
{
    if (max_events == 0) {
        return LG_ERR_INVALID;
    }
    lg_chat_replay *r = lg_calloc(1, sizeof(*r));
    if (r == NULL) {
        return LG_ERR_NOMEM;
    }
    r->ring = lg_calloc(max_events, sizeof(*r->ring));
    if (r->ring == NULL) {
        lg_free(r);
        return LG_ERR_NOMEM;
    }
    r->max_events = max_events;
    r->max_bytes = max_bytes;
    *out = r;
    return LG_OK;
}

static struct replay_event *replay_slot(const lg_chat_replay *r, uint64_t seq)
{
    return &r->ring[seq % r->max_events];
}

static uint64_t replay_first(const lg_chat_replay *r)
{
    return r->count == 0 ? 0 : r->last_seq - r->count + 1;
}

static void replay_drop_oldest(lg_chat_replay *r)
{
    struct replay_event *e = replay_slot(r, replay_first(r));
    r->bytes -= e->len;
    lg_free(e->data);
    e->data = NULL;
    e->len = 0;
    r->count--;
}

void lg_chat_replay_free(lg_chat_replay *r)
{
    if (r == NULL) {
        return;
    }
    while (r->count > 0) {
        replay_drop_oldest(r);
    }
    lg_free(r->ring);
    lg_free(r);
}

int lg_chat_replay_append(lg_chat_replay *r, uint64_t seq, const uint8_t *data, size_t len)
{
    if (seq != r->last_seq + 1) {
        return LG_ERR_INVALID;
    }
    if (len > r->max_bytes) {
        return LG_ERR_TOO_LARGE;
    }
    /* Allocate first: on failure nothing has been dropped yet. */
    uint8_t *copy = lg_malloc(len > 0 ? len : 1);
    if (copy == NULL) {
        return LG_ERR_NOMEM;
    }
    if (len > 0) {
        memcpy(copy, data, len);
    }
    while (r->count > 0 && (r->count == r->max_events || r->bytes + len > r->max_bytes)) {
        replay_drop_oldest(r);
    }
    struct replay_event *e = replay_slot(r, seq);
    e->data = copy;
    e->len = len;
    r->count++;
    r->bytes += len;
    r->last_seq = seq;
    return LG_OK;
}

int lg_chat_replay_get(const lg_chat_replay *r, uint64_t seq, struct lg_slice *out)
{
    if (seq > r->last_seq) {
        return LG_ERR_AGAIN;
    }
    if (r->count == 0 || seq < replay_first(r)) {
        return LG_ERR_EXPIRED;
    }
    const struct replay_event *e = replay_slot(r, seq);
    out->ptr = e->data;
    out->len = e->len;
    return LG_OK;
}

uint64_t lg_chat_replay_first_seq(const lg_chat_replay *r)
{
    return replay_first(r);
}

uint64_t lg_chat_replay_last_seq(const lg_chat_replay *r)
{
    return r->last_seq;
}

size_t lg_chat_replay_count(const lg_chat_replay *r)
{
    return r->count;
}

size_t lg_chat_replay_bytes(const lg_chat_replay *r)
{
    return r->bytes;
}
