/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_replay: a stream's bounded replay buffer, the last events of a stream kept so that
 * ResumeStream(after_seq) can deliver each later event exactly once.
 *
 * Events carry consecutive seq numbers (1, 2, 3, ...) and opaque bytes (the serialized
 * ChatEvent). The buffer holds at most |max_events| events and |max_bytes| bytes; appending
 * past either drops the oldest events, so the newest (including the final done/error event)
 * are always kept. A resume that needs a dropped event fails with LG_ERR_EXPIRED.
 *
 * Thread: owned by one stream on the loop thread; not thread-safe.
 * Ownership: appended bytes are copied; slices returned by lg_chat_replay_get are borrowed
 * until the next append or the free.
 * Errors: LG_ERR_INVALID (seq not the next one), LG_ERR_TOO_LARGE (one event larger than
 * max_bytes), LG_ERR_NOMEM, LG_ERR_EXPIRED (dropped), LG_ERR_AGAIN (not produced yet).
 */
#ifndef LG_CHAT_REPLAY_H
#define LG_CHAT_REPLAY_H

#include <stddef.h>
#include <stdint.h>

struct lg_slice;

typedef struct lg_chat_replay lg_chat_replay;

/* Creates an empty buffer; |max_events| >= 1. Returned owned. */
int lg_chat_replay_new(lg_chat_replay **out, size_t max_events, size_t max_bytes);
void lg_chat_replay_free(lg_chat_replay *r);

/* Appends event |seq| (must be last_seq + 1; the first is 1) with |len| bytes copied from
 * |data|, dropping the oldest events to stay within both bounds. On error nothing changes. */
int lg_chat_replay_append(lg_chat_replay *r, uint64_t seq, const uint8_t *data, size_t len);

/* Borrows event |seq| into |*out|. LG_OK, LG_ERR_EXPIRED (seq < first kept, or 0) or
 * LG_ERR_AGAIN (seq > last appended). */
int lg_chat_replay_get(const lg_chat_replay *r, uint64_t seq, struct lg_slice *out);

/* Seq of the oldest kept event (0 when empty) and of the newest appended (0 when none). */
uint64_t lg_chat_replay_first_seq(const lg_chat_replay *r);
uint64_t lg_chat_replay_last_seq(const lg_chat_replay *r);
/* Events and bytes currently held. */
size_t lg_chat_replay_count(const lg_chat_replay *r);
size_t lg_chat_replay_bytes(const lg_chat_replay *r);

#endif /* LG_CHAT_REPLAY_H */
