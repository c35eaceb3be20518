/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_openai: the OpenAI-compatible provider (OpenAI, Azure OpenAI, vLLM, llama.cpp
 * server, Ollama, ...): POST {base_url}/chat/completions with "stream": true and
 * "stream_options": {"include_usage": true}, read as text/event-stream through lg_chat_sse,
 * on libcurl's multi-socket interface (lg_curlm) on the loop thread. HTTP/2 is used when the
 * upstream offers it (ALPN over TLS; plain http stays HTTP/1.1).
 *
 * Timeouts: connect (CURLOPT_CONNECTTIMEOUT_MS), first byte (from request start to the first
 * body byte) and idle (longest gap between body bytes), both checked by a libevent timer.
 * Retries: on 408, 409, 429, 5xx and connection-level failures, only while no token has
 * been delivered, at most cfg->max_retries times, after Retry-After / retry-after-ms when
 * given (capped by LG_CHAT_UPSTREAM_RETRY_AFTER_MAX_MS) or exponential backoff otherwise.
 * Status mapping: 400/404/422 -> LG_ERR_INVALID, 401/403 -> LG_ERR_UNAUTHENTICATED,
 * 429 -> LG_ERR_EXHAUSTED, 408/5xx/connection -> LG_ERR_UNAVAILABLE, timeouts -> LG_ERR_TIMEOUT,
 * an error object mid-stream -> LG_ERR_UPSTREAM, a broken stream -> LG_ERR_MALFORMED.
 *
 * Thread, ownership, callbacks: see lg_chat_provider.h. The API key goes only into the
 * Authorization header; it is never logged.
 */
#ifndef LG_CHAT_OPENAI_H
#define LG_CHAT_OPENAI_H

#include <stddef.h>
#include <stdint.h>

#include "lg_chat_provider.h"

struct event_base;
struct lg_buf;
struct lg_slice;
typedef struct lg_curlm lg_curlm;

/* Starts an upcall. Returns LG_OK, LG_ERR_NOMEM or LG_ERR_INTERNAL (curl refused). */
int lg_chat_openai_start(lg_curlm *curlm, struct event_base *base,
                         const struct lg_chat_call_params *params,
                         const struct lg_chat_provider_cbs *cbs, void *user_data,
                         struct lg_chat_upcall **out);

/* Appends the upstream JSON request body for |params| to |out| (sans-I/O). */
int lg_chat_openai_build_body(const struct lg_chat_call_params *params, struct lg_buf *out);

/* One parsed stream chunk (sans-I/O, for tests). Pointers borrow from |chunk|'s JSON, valid
 * until lg_chat_openai_chunk_deinit. */
struct lg_chat_openai_chunk {
    bool done;           /* the "[DONE]" sentinel */
    const char *content; /* choices[0].delta.content, or NULL */
    size_t content_len;
    const char *finish_reason; /* choices[0].finish_reason, or NULL */
    bool has_usage;            /* a usage object was present (not null) */
    struct lg_chat_usage usage;
    const char *error_message; /* an "error" object's message, or NULL */
    void *json_;               /* private: the parsed document */
};

/* Parses one SSE data payload. LG_OK, or LG_ERR_MALFORMED (not JSON, or not an object). */
int lg_chat_openai_parse_chunk(struct lg_slice data, struct lg_chat_openai_chunk *out);
void lg_chat_openai_chunk_deinit(struct lg_chat_openai_chunk *c);

/* Parses a Retry-After (seconds, or an HTTP date) or retry-after-ms header value into
 * milliseconds; -1 when absent or unparseable. |now_unix| is used for dates. */
int64_t lg_chat_openai_retry_after_ms(const char *retry_after, const char *retry_after_ms,
                                      int64_t now_unix);

/* The lg_err for an upstream HTTP status (see the header comment). */
int lg_chat_openai_status_err(long http_status);
/* True when a failure with |http_status| (0 = connection-level) may be retried. */
bool lg_chat_openai_is_retryable(long http_status);

#endif /* LG_CHAT_OPENAI_H */
