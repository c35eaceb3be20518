/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_grpc_client: a gRPC client (h2c with prior knowledge) on nghttp2 and libevent.
 *
 * Purpose. One lg_grpc_client talks to one target "HOST:PORT" over one HTTP/2 connection
 * that carries many concurrent calls. Unary and server-streaming calls: the request message
 * is sent whole (optionally gzip-compressed), response headers, each response message and
 * the final status (grpc-status, decoded grpc-message, trailing metadata; Trailers-Only
 * responses included) come back through callbacks. Per-call deadlines (sent as
 * grpc-timeout and enforced by a local timer: DEADLINE_EXCEEDED + RST_STREAM(CANCEL)),
 * cancellation (RST_STREAM(CANCEL), status CANCELLED), custom metadata both ways ("-bin"
 * keys base64 on the wire, raw bytes in this API), gzip responses, a receive limit.
 * Streams open once the server's first SETTINGS frame has arrived (so its
 * MAX_CONCURRENT_STREAMS is known); calls beyond that limit wait in a bounded local queue.
 * Connection loss ends the calls on that connection with UNAVAILABLE; the next call dials
 * again. A dial fails when TCP connect fails, the peer closes or speaks something other than
 * HTTP/2 before its SETTINGS, or connect_timeout_ms passes; calls waiting for it end
 * UNAVAILABLE (gRPC's default fail-fast behaviour; calls started with wait_for_ready keep
 * waiting instead) and further dials back off exponentially.
 * GOAWAY: streams the server did not process are retried once on a new connection; the rest finish
 * on the old one. PINGs are acknowledged by nghttp2; optional keepalive PINGs
 * (opts.keepalive_time_ms) detect a dead path while calls are open.
 *
 * Thread. Everything runs on the event_base given to lg_grpc_client_new; every function
 * must be called on that loop's thread, and every callback fires on it. The process must
 * ignore SIGPIPE (lg_loop_ignore_sigpipe) since sockets are written with write(2).
 *
 * Ownership and lifetime of a call. lg_grpc_client_start returns a call handle owned by
 * the client. The handle is valid until the call's on_close callback RETURNS; the client
 * frees it right after, so clear any pointer to it inside on_close. on_close fires exactly
 * once per started call, always on a later loop turn (never inside lg_grpc_client_start,
 * lg_grpc_client_call_cancel or another call's callback), so any callback may start new
 * calls or cancel calls, including its own. No callback may free the client
 * (lg_grpc_client_free); do that from outside the client's callbacks. Everything passed in
 * (method, request bytes, metadata, options) is copied; everything passed to callbacks
 * (metadata, messages, status message) is borrowed for the duration of that callback.
 *
 * Errors. Returned by functions: LG_ERR_INVALID (bad argument: method not "/svc/method",
 * bad metadata key or value, reserved key), LG_ERR_TOO_LARGE (request over 4 GiB - 1),
 * LG_ERR_EXHAUSTED (local call queue full), LG_ERR_STATE (call already closing; client
 * shutting down), LG_ERR_NOMEM. Everything that happens after a successful start is
 * reported once, as a gRPC status code in on_close (enum lg_grpc_status in lg_err.h):
 * OK, the server's status, CANCELLED (lg_grpc_client_call_cancel), DEADLINE_EXCEEDED
 * (local timer), UNAVAILABLE (connect failed, connection lost, GOAWAY before processing
 * after the retry), RESOURCE_EXHAUSTED (response message over the receive limit, or
 * response metadata over its limit), INTERNAL (protocol violation: missing or bad
 * content-type on a 200 response, compressed message without grpc-encoding, bad gzip,
 * truncated message, a stream closed without trailers, a unary response without exactly
 * one message), UNIMPLEMENTED (unsupported grpc-encoding), and the HTTP-to-gRPC mapping of
 * a non-200 :status (grpc doc/http-grpc-status-mapping.md).
 */
#ifndef LG_GRPC_CLIENT_H
#define LG_GRPC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct lg_grpc_client lg_grpc_client;
typedef struct lg_grpc_client_call lg_grpc_client_call;

/* Client options; fill with lg_grpc_client_opts_default, then change what you need. */
struct lg_grpc_client_opts {
    size_t max_recv_msg_bytes;     /* largest response message accepted, after
                                      decompression; over it the call ends
                                      RESOURCE_EXHAUSTED (default 4 MiB) */
    uint32_t max_queued_calls;     /* calls waiting for a connection or a stream slot;
                                      lg_grpc_client_start returns LG_ERR_EXHAUSTED past it */
    uint32_t connect_timeout_ms;   /* a dial (TCP + HTTP/2 preface) that takes longer fails */
    uint32_t backoff_initial_ms;   /* wait before redialing after the first failed dial */
    uint32_t backoff_max_ms;       /* cap of the exponential backoff (x1.6 per failure) */
    uint32_t stream_window_bytes;  /* SETTINGS_INITIAL_WINDOW_SIZE we announce (per stream) */
    uint32_t conn_window_bytes;    /* connection-level receive window */
    uint32_t keepalive_time_ms;    /* while calls are open, PING the server this long after
                                      the last ACK; 0 = off (the default). Servers refuse
                                      pings that come too often (grpc: 5 min by default) */
    uint32_t keepalive_timeout_ms; /* no PING ACK within this: the connection is failed and
                                      its calls end UNAVAILABLE */
    const char *authority;         /* :authority to send (copied); NULL = the target */
    const char *user_agent;        /* user-agent prefix (copied); NULL = "llmgate-grpc" */
};

/* How many response messages a call expects. */
enum lg_grpc_client_kind {
    LG_GRPC_CLIENT_UNARY = 0,            /* exactly one response message (else INTERNAL) */
    LG_GRPC_CLIENT_SERVER_STREAMING = 1, /* zero or more response messages */
};

/* One metadata entry. Keys are lower-case [0-9a-z_.-]; for keys ending in "-bin" the value
 * is raw bytes (base64 on the wire), otherwise printable ASCII (0x20..0x7E). */
struct lg_grpc_client_md {
    const char *key;    /* NUL-terminated */
    const uint8_t *val; /* |len| bytes; NUL-terminated when received (not counted) */
    size_t len;         /* bytes of |val| */
};

/* Per-call options. Zero-initialise, then set what you need. */
struct lg_grpc_client_call_opts {
    enum lg_grpc_client_kind kind;      /* unary or server-streaming */
    int64_t timeout_ms;                 /* deadline from the start call; <= 0 = none */
    const struct lg_grpc_client_md *md; /* request metadata (copied); may be NULL */
    size_t md_count;                    /* entries in |md| */
    bool gzip;                          /* gzip-compress the request message */
    bool wait_for_ready; /* gRPC wait-for-ready: instead of failing with UNAVAILABLE when
                            a dial fails, wait for later dials (with backoff) until the
                            deadline; set a timeout_ms with it */
};

/* The final status of a call, borrowed for the duration of on_close. */
struct lg_grpc_client_status {
    int code;                                 /* enum lg_grpc_status */
    const char *message;                      /* decoded grpc-message (UTF-8), or a local
                                                 reason; never NULL, may be "" */
    size_t message_len;                       /* bytes of |message| */
    const struct lg_grpc_client_md *trailers; /* trailing metadata (or the Trailers-Only
                                                 headers), without grpc-* and pseudo
                                                 headers; "-bin" values decoded */
    size_t trailer_count;                     /* entries in |trailers| */
};

/* The response headers arrived (not called for a Trailers-Only response). |md| holds the
 * custom metadata (pseudo headers and grpc-* names left out, "-bin" values decoded). */
typedef void (*lg_grpc_client_headers_cb)(lg_grpc_client_call *call,
                                          const struct lg_grpc_client_md *md, size_t count,
                                          void *user_data);
/* One response message, decompressed, |len| bytes at |msg| (borrowed until return). */
typedef void (*lg_grpc_client_message_cb)(lg_grpc_client_call *call, const uint8_t *msg, size_t len,
                                          void *user_data);
/* The call ended with |st|. Fires exactly once, on a later loop turn than any API call;
 * |call| is freed by the client when this returns. */
typedef void (*lg_grpc_client_close_cb)(lg_grpc_client_call *call,
                                        const struct lg_grpc_client_status *st, void *user_data);

/* A call's callbacks; on_close is required, the others may be NULL. */
struct lg_grpc_client_call_cbs {
    lg_grpc_client_headers_cb on_headers;
    lg_grpc_client_message_cb on_message;
    lg_grpc_client_close_cb on_close;
};

/* ---- lifecycle ------------------------------------------------------------------------- */

/* Fills |opts| with the defaults from lg_limits.h. */
void lg_grpc_client_opts_default(struct lg_grpc_client_opts *opts);

/* Creates a client for |target| ("HOST:PORT", "[v6]:PORT"; a name is resolved with evdns,
 * from /etc/hosts or DNS, at each dial, and its first address is dialled; there is no
 * fallback to further addresses) on |base| (borrowed; must outlive the client). |opts| is copied;
 * NULL means defaults. Nothing is dialled until the first call. Returns LG_OK and |*out| (returned
 * owned, free with lg_grpc_client_free), LG_ERR_INVALID (bad target or option) or LG_ERR_NOMEM. */
int lg_grpc_client_new(lg_grpc_client **out, struct event_base *base, const char *target,
                       const struct lg_grpc_client_opts *opts);

/* Ends every unfinished call (on_close runs, from inside this function, with CANCELLED),
 * closes the connection and frees the client. Accepts NULL. Never from a client callback. */
void lg_grpc_client_free(lg_grpc_client *c);

/* ---- calls ----------------------------------------------------------------------------- */

/* Starts a call of |method| ("/package.Service/Method", copied) with the request message
 * |req| (|len| bytes, copied; may be NULL when |len| is 0). |opts| may be NULL (unary, no
 * deadline, no metadata). |cbs| is copied; |user_data| is passed to the callbacks.
 * On LG_OK, |*call_out| (may be NULL if the caller never cancels) is the handle, valid
 * until on_close returns, and on_close is guaranteed to follow. On error nothing was
 * started and no callback fires: LG_ERR_INVALID, LG_ERR_TOO_LARGE, LG_ERR_EXHAUSTED,
 * LG_ERR_NOMEM. */
int lg_grpc_client_start(lg_grpc_client *c, const char *method, const uint8_t *req, size_t len,
                         const struct lg_grpc_client_call_opts *opts,
                         const struct lg_grpc_client_call_cbs *cbs, void *user_data,
                         lg_grpc_client_call **call_out);

/* Cancels |call|: if its stream is open, RST_STREAM(CANCEL) goes to the server; no further
 * headers or messages are delivered, and on_close follows on a later loop turn with
 * CANCELLED. May be called from the call's own on_headers/on_message. Returns LG_OK, or
 * LG_ERR_STATE when the call has already ended (its on_close is pending). */
int lg_grpc_client_call_cancel(lg_grpc_client_call *call);

/* Receive backpressure for one call. While |paused|, bytes the server sends on this call
 * are no longer credited back to it (no stream WINDOW_UPDATE), so the server stops after at
 * most opts.stream_window_bytes more; other calls on the connection are not held back.
 * Messages that arrive meanwhile are still delivered. Resuming credits what arrived and
 * lets the server continue. Use it to stop a fast server from outrunning a slow consumer
 * (e.g. an SSE client): pause past your output high watermark, resume on drain. May be
 * called from the call's callbacks. Returns LG_OK, or LG_ERR_STATE once the call has ended. */
int lg_grpc_client_call_set_paused(lg_grpc_client_call *call, bool paused);

/* ---- accessors (no side effects) ------------------------------------------------------- */

/* Response messages received by |call| with the compressed flag set (tests, metrics). */
uint64_t lg_grpc_client_call_get_compressed_count(const lg_grpc_client_call *call);
/* The HTTP/2 stream id of |call|, or 0 while it waits for a connection or a slot. */
int32_t lg_grpc_client_call_get_stream_id(const lg_grpc_client_call *call);

/* True while an HTTP/2 connection is ready (server SETTINGS received) and not draining
 * after GOAWAY. */
bool lg_grpc_client_is_connected(const lg_grpc_client *c);
/* Connections that became ready (server SETTINGS received) so far: 1 after the first
 * successful dial; each reconnect adds one. */
uint64_t lg_grpc_client_get_connect_count(const lg_grpc_client *c);
/* Calls started and not yet closed (queued + on a stream + waiting for on_close). */
size_t lg_grpc_client_get_call_count(const lg_grpc_client *c);
/* Bytes waiting in the connection's socket output buffer, 0 without a connection (tests,
 * metrics). nghttp2 stops producing once this reaches LG_GRPC_CLIENT_OUTBUF_HIGH_BYTES. */
size_t lg_grpc_client_get_outbuf_len(const lg_grpc_client *c);
/* Largest number of streams open at once on one connection so far (tests). */
size_t lg_grpc_client_get_max_open_streams(const lg_grpc_client *c);

#endif /* LG_GRPC_CLIENT_H */
