/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_sse_json: request bodies in, JSON bodies out, for the SSE adapter's HTTP endpoints.
 *
 * In: POST /v1/chat/streams and POST /v1/chat/completions bodies are parsed with jansson
 * (duplicate keys refused), their depth checked against LG_SSE_MAX_JSON_DEPTH and their
 * fields validated (types, roles, counts) into an lg_sse_chat_req whose strings live in a
 * per-request lg_arena. The OpenAI body shape (model, messages, stream, stream_options,
 * temperature, max_tokens or max_completion_tokens, user, metadata) is a superset of ours
 * (which adds conversation_id, agent_id, provider_config_id).
 *
 * Out: OpenAI chat.completion, chat.completion.chunk and error objects, and the adapter's own
 * JSON error body {"error":{"code":..., "message":...}}, assembled into a capped lg_buf with
 * model text escaped by lg_sse_enc_json_str (any bytes are safe).
 *
 * Thread: pure functions; any thread. Ownership: parse results are arena-owned (borrowed by
 * the caller until lg_arena_free); output goes to a caller-owned lg_buf.
 * Errors: LG_ERR_MALFORMED (not JSON), LG_ERR_INVALID (wrong shape, with a reason),
 *         LG_ERR_TOO_LARGE (depth, count or buffer cap), LG_ERR_NOMEM.
 */
#ifndef LG_SSE_JSON_H
#define LG_SSE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lg_buf.h"
#include "lg_mem.h"
#include "lg_sse_enc.h"

/* One chat message. Strings are NUL-terminated arena copies: JSON strings holding \u0000
 * are refused at parse time, so every string is a plain C string. */
struct lg_sse_chat_msg {
    const char *role;    /* "system", "user", "assistant" or "tool" */
    const char *content; /* text; "" allowed */
};

/* One metadata pair (string values only). */
struct lg_sse_kv {
    const char *key;
    const char *value;
};

/* A validated chat request (both endpoints). */
struct lg_sse_chat_req {
    const char *model;              /* required, 1..128 bytes */
    const char *conversation_id;    /* optional; NULL when absent */
    const char *agent_id;           /* optional */
    const char *provider_config_id; /* optional */
    struct lg_sse_chat_msg *msgs;   /* 1..LG_SSE_MAX_MESSAGES */
    size_t n_msgs;
    struct lg_sse_kv *meta; /* metadata (string values); NULL when absent */
    size_t n_meta;
    double temperature;    /* valid when has_temperature; 0..2 */
    bool has_temperature;
    int64_t max_tokens;    /* 0 = unset; else 1..1e6 */
    bool stream;           /* OpenAI "stream" */
    bool include_usage;    /* OpenAI stream_options.include_usage */
};

/* Parses and validates |body| (|len| bytes). On LG_ERR_INVALID/MALFORMED/TOO_LARGE, |why|
 * (|whylen| bytes) receives a short reason safe to show to the client (no body bytes). */
int lg_sse_json_parse_chat(lg_arena *a, const char *body, size_t len,
                           struct lg_sse_chat_req *out, char *why, size_t whylen);

/* Routes jansson's allocations through lg_malloc/lg_free (process-wide; startup or test
 * setup only). */
void lg_sse_json_use_lg_alloc(void);

/* {"error":{"code":"<code>","message":"<message>"}} — the adapter's error body. */
int lg_sse_json_error(struct lg_buf *b, const char *code, const char *message);

/* {"stream_id":"<id>","events_url":"<url>"} — the 201 body of POST /v1/chat/streams. */
int lg_sse_json_created(struct lg_buf *b, const char *stream_id, const char *events_url);

/* OpenAI error object {"error":{"message","type","param":null,"code"}}. */
int lg_sse_json_openai_error(struct lg_buf *b, const char *type, const char *code,
                             const char *message);

/* Common fields of every OpenAI object we emit for one response. */
struct lg_sse_oai_ctx {
    const char *id;    /* "chatcmpl-<stream_id>" */
    const char *model; /* echoed model */
    int64_t created;   /* unix seconds */
};

/* `data: <chunk>\n\n` with delta {"role":"assistant","content":""} (the first chunk). */
int lg_sse_json_oai_chunk_role(struct lg_buf *b, const struct lg_sse_oai_ctx *c);
/* `data: <chunk>\n\n` with delta {"content":<text>}. */
int lg_sse_json_oai_chunk_text(struct lg_buf *b, const struct lg_sse_oai_ctx *c,
                               const uint8_t *text, size_t len);
/* `data: <chunk>\n\n` with delta {} and finish_reason. */
int lg_sse_json_oai_chunk_finish(struct lg_buf *b, const struct lg_sse_oai_ctx *c,
                                 const char *finish_reason);
/* `data: <chunk>\n\n` with choices [] and usage (stream_options.include_usage). */
int lg_sse_json_oai_chunk_usage(struct lg_buf *b, const struct lg_sse_oai_ctx *c,
                                const struct lg_sse_done *d);
/* `data: [DONE]\n\n`. */
int lg_sse_json_oai_done(struct lg_buf *b);
/* One chat.completion body with |text| as the assistant message. */
int lg_sse_json_oai_completion(struct lg_buf *b, const struct lg_sse_oai_ctx *c,
                               const uint8_t *text, size_t len, const struct lg_sse_done *d);

#endif /* LG_SSE_JSON_H */
