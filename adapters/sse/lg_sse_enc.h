/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_sse_enc: the sans-I/O text/event-stream encoder of the SSE adapter, and the parsers for
 * what a reconnecting EventSource sends back (Last-Event-ID, stream ids).
 *
 * Wire format (DESIGN.md contract 2, WHATWG "server-sent events"):
 *
 *   id: <stream_id>.<seq>
 *   event: content
 *   data: {"type":"content","data":{"content":"Hello"}}
 *   <blank line>
 *
 * Safety: an event is framed only by the encoder. Field values (stream id, event name) are
 * validated and refused when they contain anything outside their charset, and the data is a
 * JSON document built here from escaped strings: CR, LF, NUL and every other control byte in
 * model output become JSON escapes and invalid UTF-8 becomes U+FFFD, so no output of a model
 * can end a line, forge an `id:`/`event:` field or dispatch an event early. Generic data
 * (lg_sse_enc_event) is split on CR, LF and CRLF into several `data:` lines, as the spec
 * reassembles them.
 *
 * Thread: pure functions; any thread. Ownership: output is appended to a caller-owned lg_buf;
 * inputs are borrowed for the call. On error the buffer is left as it was.
 * Errors: LG_ERR_INVALID (a field would break the framing, a malformed id),
 *         LG_ERR_TOO_LARGE (the buffer's cap), LG_ERR_NOMEM.
 */
#ifndef LG_SSE_ENC_H
#define LG_SSE_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lg_buf.h"

/* Event types of contract 2 (the `event:` field and the `type` key of data). */
enum lg_sse_type {
    LG_SSE_TYPE_START = 0,
    LG_SSE_TYPE_CONTENT = 1,
    LG_SSE_TYPE_DONE = 2,
    LG_SSE_TYPE_ERROR = 3,
    LG_SSE_TYPE_HEARTBEAT = 4,
};

/* Usage and outcome of a finished stream (ChatEvent.done). */
struct lg_sse_done {
    const char *finish_reason;   /* "stop", "length", ...; NULL = "stop" */
    uint64_t prompt_tokens;      /* tokens in the request */
    uint64_t completion_tokens;  /* tokens generated */
    uint64_t cached_tokens;      /* prompt tokens served from cache */
    uint64_t total_tokens;       /* prompt + completion */
    uint64_t cost_nano_usd;      /* estimated cost, integer nano-USD */
    uint64_t duration_ms;        /* wall time of the upstream call */
};

/* "start", "content", ... for |t|; "message" outside the enum. */
const char *lg_sse_type_name(enum lg_sse_type t);

/* True when |id| (|len| bytes) is a well-formed stream id: 1..LG_SSE_MAX_STREAM_ID_BYTES of
 * [A-Za-z0-9_-]. Ids are compared and echoed in ids, URLs and logs, so nothing else passes. */
bool lg_sse_is_stream_id(const char *id, size_t len);

/* Appends |s| (|len| bytes) as the inside of a JSON string: ", \ and bytes < 0x20 or 0x7f are
 * escaped, U+2028/U+2029 too, invalid UTF-8 becomes \ufffd. */
int lg_sse_enc_json_str(struct lg_buf *b, const uint8_t *s, size_t len);

/* Appends one event. |stream_id| NULL writes no id line (heartbeats); otherwise it must pass
 * lg_sse_is_stream_id. |event| NULL writes no event line; otherwise it must be 1..32 of
 * [a-z_.]. |data| is split into `data:` lines on CR, LF and CRLF. */
int lg_sse_enc_event(struct lg_buf *b, const char *stream_id, uint64_t seq, const char *event,
                     const uint8_t *data, size_t len);

/* Contract-2 events: each appends id (not for heartbeats), event and a data JSON document
 * {"type":<name>,"data":{...}}. |text|/|len| is model output (any bytes). */
int lg_sse_enc_start(struct lg_buf *b, const char *stream_id, uint64_t seq, const char *model);
int lg_sse_enc_content(struct lg_buf *b, const char *stream_id, uint64_t seq,
                       const uint8_t *text, size_t len);
int lg_sse_enc_done(struct lg_buf *b, const char *stream_id, uint64_t seq,
                    const struct lg_sse_done *d);
/* |stream_id| NULL writes an error event without id (a refusal before any event, e.g.
 * resume_expired). |code| must be 1..64 of [a-z0-9_]; |message| is escaped. */
int lg_sse_enc_error(struct lg_buf *b, const char *stream_id, uint64_t seq, const char *code,
                     const char *message);
int lg_sse_enc_heartbeat(struct lg_buf *b);
/* `retry: <ms>` on its own (sent once, first thing after the preamble). */
int lg_sse_enc_retry(struct lg_buf *b, uint64_t ms);
/* A comment line `: <text>` (text must be printable ASCII, no CR/LF); used as the preamble
 * that flushes headers and as the OpenAI-endpoint heartbeat (`: ping`). */
int lg_sse_enc_comment(struct lg_buf *b, const char *text);

/* Parses a Last-Event-ID value `<stream_id>.<seq>` (|len| bytes, not NUL-terminated) for the
 * stream |expect_id|. An empty value means "from the start" (*seq_out = 0). Returns LG_OK,
 * LG_ERR_INVALID when malformed (bad charset, no dot, seq not 1..20 decimal digits or over
 * UINT64_MAX), LG_ERR_PERMISSION when it names another stream. */
int lg_sse_parse_last_event_id(const char *value, size_t len, const char *expect_id,
                               uint64_t *seq_out);

/* Picks the resume point of a GET /events: the Last-Event-ID header when present (|hdr| not
 * NULL), else the lastEventId query parameter (|query|, the raw query string without '?',
 * may be NULL), percent-decoded. Returns as lg_sse_parse_last_event_id. */
int lg_sse_resume_point(const char *hdr, const char *query, const char *expect_id,
                        uint64_t *seq_out);

/* Finds query parameter |name| in |query| (raw, without '?') and percent-decodes it into
 * |out| (|outlen| bytes with the NUL). Returns LG_OK, LG_ERR_NOT_FOUND when absent,
 * LG_ERR_INVALID when malformed, LG_ERR_TOO_LARGE when it does not fit. */
int lg_sse_query_get(const char *query, const char *name, char *out, size_t outlen);

#endif /* LG_SSE_ENC_H */
