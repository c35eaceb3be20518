/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_sse_http: the HTTP/1.1 edge of llmgate-sse, on libevent's evhttp (keep-alive, chunked
 * responses, header and body caps, timeouts; chosen because every other binary already
 * speaks HTTP/1.1 through it and lg_admin plugs into the same server).
 *
 *   POST /v1/chat/streams                 StreamChat; 201 {"stream_id","events_url"}
 *   GET  /v1/chat/streams/{id}/events     ResumeStream(after Last-Event-ID) as text/event-stream
 *   POST /v1/chat/streams/{id}/cancel     CancelStream; 200 {"cancelled":bool}
 *   POST /v1/chat/streams/{id}/token      a fresh events token (EventSource reconnects)
 *   POST /v1/chat/completions             OpenAI-compatible (stream true/false)
 *   GET  /, /app.js, /style.css           the demo page (adapters/sse/web)
 *   GET  /healthz, /readyz, /metrics      lg_admin (embedded)
 *
 * Identity: Authorization: Bearer <key> through the keys file; GET /events also accepts
 * ?token=<signed token> (EventSource sends no headers). Without keys the edge is open:
 * every caller is "anonymous".
 * Every refusal this module makes is a 4xx/5xx with a JSON error body (OpenAI error objects
 * on /v1/chat/completions). Transport-level refusals made inside libevent before a handler
 * runs (request line or headers over the cap, body over the cap) use libevent's own body.
 *
 * Thread: the loop thread of |base|. Ownership: options are copied; |chat|, |metrics| and
 * |admin| are borrowed and must outlive the server; keys given to lg_sse_http_set_keys are
 * taken. Errors: LG_ERR_INVALID (bad option), LG_ERR_IO (bind failed), LG_ERR_NOMEM.
 */
#ifndef LG_SSE_HTTP_H
#define LG_SSE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lg_admin.h"
#include "lg_metrics.h"
#include "lg_sse_auth.h"
#include "lg_sse_chat.h"

struct event_base;

typedef struct lg_sse_http lg_sse_http;

/* Static files of the demo page, loaded at startup. All borrowed for lg_sse_http_new. */
struct lg_sse_http_file {
    const char *path;         /* URL path, e.g. "/" or "/app.js" */
    const char *content_type; /* e.g. "text/html; charset=utf-8" */
    const uint8_t *data;      /* file bytes (copied) */
    size_t len;
};

struct lg_sse_http_opts {
    const char *listen;            /* "HOST:PORT"; port 0 picks one (when listen_fd < 0) */
    int listen_fd;                 /* a listening socket to serve instead (taken), or -1 */
    int64_t heartbeat_ms;          /* heartbeat period of open event streams */
    int64_t max_body_bytes;        /* <= LG_SSE_MAX_BODY_BYTES */
    int64_t max_header_bytes;      /* <= LG_SSE_MAX_HEADER_BYTES */
    int64_t idle_timeout_ms;       /* keep-alive idle and read timeout */
    int64_t header_timeout_ms;     /* a new connection's first request must be complete by
                                      then, however slowly its bytes arrive (slowloris) */
    int64_t max_streams_per_user;  /* concurrent event streams per user */
    int64_t max_requests_per_conn; /* keep-alive requests before close */
    int64_t outbuf_bytes;          /* queued bytes per client before it is cut off */
    int64_t tcp_user_timeout_ms;   /* TCP_USER_TIMEOUT of accepted sockets: sent data left
                                      unacknowledged this long aborts the connection; 0 = the
                                      kernel's retransmission limit (many minutes) */
    const char *cors_origins;      /* comma-separated allow-list; NULL = no CORS */
    const uint8_t *token_secret;   /* LG_SSE_AUTH_SECRET_BYTES (copied) */
    const struct lg_sse_http_file *files; /* demo page files */
    size_t nfiles;
    lg_sse_chat *chat;   /* the chat service client */
    lg_metrics *metrics; /* registry for the adapter's metrics */
    lg_admin *admin;     /* embedded admin endpoints; NULL = none */
};

/* Binds and starts serving; the bound "HOST:PORT" goes to |bound| (|boundlen| bytes). */
int lg_sse_http_new(lg_sse_http **out, struct event_base *base,
                    const struct lg_sse_http_opts *opts, char *bound, size_t boundlen);
/* Stops serving, aborts every open stream and frees |h|. Accepts NULL. */
void lg_sse_http_free(lg_sse_http *h);
/* Replaces the keys (taken; NULL = open development mode). The previous keys are freed. */
void lg_sse_http_set_keys(lg_sse_http *h, lg_sse_keys *keys);
/* Event streams open right now (SSE and OpenAI). */
size_t lg_sse_http_get_stream_count(const lg_sse_http *h);

#endif /* LG_SSE_HTTP_H */
