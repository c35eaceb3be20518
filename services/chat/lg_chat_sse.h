/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_sse: incremental parser for an upstream text/event-stream body (the OpenAI
 * streaming wire format), sans-I/O: bytes in, events out, no fd and no loop.
 *
 * Follows the WHATWG "event stream interpretation" rules: lines end with CR, LF or CRLF (a
 * CRLF split across two reads is one line end); a line starting with ':' is a comment; "data"
 * lines are joined with LF; a blank line dispatches the event when it has data; a single
 * space after the colon is dropped; unknown fields are ignored. Bytes may arrive split at any
 * point. The callback receives the event's data (never including the trailing LF); the
 * caller interprets it (a JSON chunk, "[DONE]", an error object).
 *
 * Thread: one parser belongs to one transfer on one loop thread.
 * Ownership: the data slice passed to the callback is borrowed for the callback only.
 * Errors: LG_ERR_TOO_LARGE (a line or an event past its cap; the parser is then unusable),
 * LG_ERR_NOMEM, or any negative code the callback returns (feeding stops there).
 */
#ifndef LG_CHAT_SSE_H
#define LG_CHAT_SSE_H

#include <stddef.h>
#include <stdint.h>

struct lg_slice;

typedef struct lg_chat_sse lg_chat_sse;

/* Called once per dispatched event. |event| is the "event:" field ("" when absent) and
 * |data| the joined data lines; both borrowed. Return LG_OK to continue or a negative
 * lg_err to stop feeding (returned by lg_chat_sse_feed). */
typedef int (*lg_chat_sse_event_cb)(struct lg_slice event, struct lg_slice data, void *user_data);

/* Creates a parser whose lines never exceed |max_line_bytes| and events |max_event_bytes|.
 * Returns LG_OK or LG_ERR_NOMEM; |*out| is returned owned (lg_chat_sse_free). */
int lg_chat_sse_new(lg_chat_sse **out, size_t max_line_bytes, size_t max_event_bytes);
/* Frees |p|; accepts NULL. */
void lg_chat_sse_free(lg_chat_sse *p);

/* Feeds |len| bytes; calls |cb| for each complete event. Returns LG_OK, or the first error
 * (see header comment). Bytes of an incomplete line are kept for the next call. */
int lg_chat_sse_feed(lg_chat_sse *p, const uint8_t *data, size_t len, lg_chat_sse_event_cb cb,
                     void *user_data);

/* Number of events dispatched so far (for tests and logs). */
uint64_t lg_chat_sse_get_event_count(const lg_chat_sse *p);

#endif /* LG_CHAT_SSE_H */
