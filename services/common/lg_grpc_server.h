/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_grpc_server: a gRPC server (h2c, prior knowledge) on nghttp2 and libevent.
 *
 * Purpose. Accepts HTTP/2 connections on HOST:PORT, validates gRPC requests (POST,
 * content-type application/grpc[+proto] else HTTP 415, te: trailers: nghttp2 resets a stream
 * with any other te value; a missing te is tolerated, as grpc-go does), routes them by :path
 * to registered methods, reassembles length-prefixed messages (gzip or identity), and sends
 * responses: initial metadata, messages, trailers with grpc-status and percent-encoded
 * grpc-message (Trailers-Only when nothing was sent). Deadlines (grpc-timeout), client
 * cancellation (RST_STREAM), connection loss and shutdown end a call and tell its handler.
 *
 * Thread. Everything runs on the one event_base given to lg_grpc_server_new; every function
 * here must be called on that loop's thread. Handlers may answer later (e.g. from a curl
 * multi callback on the same loop): keep the lg_grpc_call pointer until on_close.
 *
 * Ownership. The server owns every lg_grpc_call. A call pointer is valid from on_start (or
 * the first callback that receives it) until its on_close callback returns; after that it
 * is freed by the server, never by the handler. Request message bytes passed to on_message
 * are borrowed for the duration of that callback only (unpack them with protobuf-c into
 * lg_grpc_call_get_arena(), which lives until the call is freed). Bytes passed to
 * lg_grpc_call_send are copied. Strings passed to register/metadata functions are copied.
 *
 * Callbacks. Handlers run from the loop. A call is started (on_start, then whatever request
 * data and half-close came with its headers) only after the read that brought its headers
 * has been processed and every frame nghttp2 queued meanwhile has been sent: a call whose
 * client reset it in that same read never starts, nor does one that a GOAWAY sent meanwhile
 * excludes (its stream id above the GOAWAY's last-stream-id). Later messages and half-closes
 * of a started call may be delivered inside the HTTP/2 session's receive path. Handlers may
 * call any lg_grpc_call_* function on their own call (the runtime defers
 * socket writes to the end of the loop turn, coalescing what is queued), but must not call
 * lg_grpc_server_free from a callback. Every call gets exactly one on_close.
 *
 * Errors. LG_ERR_INVALID (bad argument), LG_ERR_NOMEM, LG_ERR_AGAIN (send queue full: wait for
 * on_writable), LG_ERR_STATE (call already finished, or metadata after it was sent),
 * LG_ERR_CLOSED (the call has ended: cancelled, deadline, connection lost),
 * LG_ERR_TOO_LARGE (message or metadata over a limit), LG_ERR_IO (listen failed),
 * LG_ERR_EXHAUSTED (too many methods, listeners or hooks).
 */
#ifndef LG_GRPC_SERVER_H
#define LG_GRPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ProtobufCMessage;
typedef struct lg_arena lg_arena;
typedef struct lg_metrics lg_metrics;

typedef struct lg_grpc_server lg_grpc_server;
typedef struct lg_grpc_call lg_grpc_call;

/* Options; fill with lg_grpc_server_opts_default, then change what you need. A value may
 * only tighten the compiled hard maximum in lg_limits.h (checked by lg_grpc_server_new). */
struct lg_grpc_server_opts {
    /* Largest request message (decompressed) accepted; over it the call ends
     * RESOURCE_EXHAUSTED (default 4 MiB). */
    size_t max_recv_msg_bytes;
    /* SETTINGS_MAX_CONCURRENT_STREAMS per connection. */
    uint32_t max_concurrent_streams;
    /* SETTINGS_MAX_HEADER_LIST_SIZE; a request over it gets RESOURCE_EXHAUSTED
     * (Trailers-Only) and never reaches a handler. */
    uint32_t max_header_list_bytes;
    /* SETTINGS_INITIAL_WINDOW_SIZE (per stream) and the connection receive window. */
    uint32_t initial_stream_window_bytes;
    uint32_t initial_conn_window_bytes;
    /* Per-call send queue bound: lg_grpc_call_send returns LG_ERR_AGAIN once this many bytes
     * wait unsent. */
    size_t call_send_queue_bytes;
    /* Accepted connections beyond this are closed at once. */
    uint32_t max_connections;
    /* Idle time before the server PINGs a client (0 = off); no PING ack within
     * keepalive_timeout_ms closes the connection. */
    uint32_t keepalive_time_ms;
    uint32_t keepalive_timeout_ms;
    /* Client PINGs closer than min_ping_interval_ms (without calls) are strikes; more than
     * max_ping_strikes get GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"). */
    uint32_t min_ping_interval_ms;
    uint32_t max_ping_strikes;
    /* Rapid reset: calls the client may reset per connection, counting calls reset before
     * they could start (in the read that brought their headers) and running calls (handler
     * started, not finished) of methods not exempted (lg_grpc_server_exempt_from_reset_budget):
     * max_client_resets at once, refilled at client_resets_per_sec; past it
     * GOAWAY(ENHANCE_YOUR_CALM) with the last started stream, and the connection closes. */
    uint32_t max_client_resets;
    uint32_t client_resets_per_sec;
    /* nghttp2's limit on every RST_STREAM frame (GOAWAY(INTERNAL_ERROR) past it). */
    uint32_t max_stream_resets;
    uint32_t stream_resets_per_sec;
    /* Graceful shutdown: time in-flight calls get to finish. */
    uint32_t drain_ms;
};

/* How a method streams (decides how request messages are delivered, see on_message). */
enum lg_grpc_method_kind {
    LG_GRPC_UNARY = 0,            /* one request, one response */
    LG_GRPC_SERVER_STREAMING = 1, /* one request, many responses */
    LG_GRPC_CLIENT_STREAMING = 2, /* many requests, one response */
    LG_GRPC_BIDI_STREAMING = 3,   /* many requests, many responses */
};

/* Why a call ended (passed to on_close). */
enum lg_grpc_close_reason {
    LG_GRPC_CLOSE_FINISHED = 0,  /* lg_grpc_call_finish was called and the trailers went out */
    LG_GRPC_CLOSE_CANCELLED = 1, /* the client reset the stream (RST_STREAM) */
    LG_GRPC_CLOSE_DEADLINE = 2,  /* grpc-timeout expired: DEADLINE_EXCEEDED was sent */
    LG_GRPC_CLOSE_CONN_LOST = 3, /* the connection closed or failed under the call */
    LG_GRPC_CLOSE_SHUTDOWN = 4,  /* the server shut down (drain deadline or free) */
    LG_GRPC_CLOSE_ERROR = 5,     /* the runtime ended the call with an error status (e.g.
                                    RESOURCE_EXHAUSTED, INTERNAL on a bad request stream) */
};

/* A call started: the request headers arrived and were valid. Return LG_OK to accept; any
 * other lg_err ends the call at once with that code's gRPC status (no on_close follows). */
typedef int (*lg_grpc_call_start_cb)(lg_grpc_call *call, void *user_data);
/* One request message, |msg| borrowed for this callback only (|len| may be 0).
 * UNARY and SERVER_STREAMING: called exactly once, after the client half-closed (a request
 * stream with zero or several messages ends the call with UNIMPLEMENTED before this).
 * CLIENT_STREAMING and BIDI: called for each message as it arrives. */
typedef void (*lg_grpc_call_message_cb)(lg_grpc_call *call, const uint8_t *msg, size_t len,
                                        void *user_data);
/* The client finished sending (END_STREAM). Only for CLIENT_STREAMING and BIDI methods. */
typedef void (*lg_grpc_call_half_close_cb)(lg_grpc_call *call, void *user_data);
/* The send queue, which was full (lg_grpc_call_send returned LG_ERR_AGAIN), has room again. */
typedef void (*lg_grpc_call_writable_cb)(lg_grpc_call *call, void *user_data);
/* The call ended for |reason|. Fires exactly once per call; stop all work for it (cancel
 * upstream requests, timers). |call| is invalid once this returns; lg_grpc_call_* functions
 * called from inside it return LG_ERR_CLOSED (accessors still work). */
typedef void (*lg_grpc_call_close_cb)(lg_grpc_call *call, enum lg_grpc_close_reason reason,
                                      void *user_data);

/* A method's handler. on_message and on_close are required; the rest may be NULL. Every
 * callback receives the call's user_data: the method's, unless the handler replaced it with
 * lg_grpc_call_set_user_data. */
struct lg_grpc_method_cbs {
    lg_grpc_call_start_cb on_start;
    lg_grpc_call_message_cb on_message;
    lg_grpc_call_half_close_cb on_half_close;
    lg_grpc_call_writable_cb on_writable;
    lg_grpc_call_close_cb on_close;
};

/* Called once when lg_grpc_server_shutdown begins (before the first GOAWAY), e.g. so that
 * health reports NOT_SERVING. */
typedef void (*lg_grpc_server_shutdown_cb)(lg_grpc_server *srv, void *user_data);
/* Called once when a shutdown has finished: every connection is closed. The server may be
 * freed from inside this callback. */
typedef void (*lg_grpc_server_done_cb)(lg_grpc_server *srv, void *user_data);

/* ---- lifecycle ------------------------------------------------------------------------- */

/* Fills |opts| with the defaults from lg_limits.h. */
void lg_grpc_server_opts_default(struct lg_grpc_server_opts *opts);

/* Creates a server on |base| (borrowed; must outlive the server). |opts| is copied; NULL
 * means defaults. Sets SIGPIPE to ignored for the process (socket writes report EPIPE).
 * Returns LG_OK and the server in |*out| (returned owned, free with lg_grpc_server_free),
 * LG_ERR_INVALID (an option above its hard maximum), LG_ERR_IO (sigaction failed) or
 * LG_ERR_NOMEM. */
int lg_grpc_server_new(lg_grpc_server **out, struct event_base *base,
                       const struct lg_grpc_server_opts *opts);

/* Closes every connection at once (each live call gets on_close(LG_GRPC_CLOSE_SHUTDOWN)),
 * stops listening and frees the server. Accepts NULL. Not from inside a server callback. */
void lg_grpc_server_free(lg_grpc_server *srv);

/* Registers |path| ("/pkg.Service/Method", copied) with |kind| and |cbs| (copied);
 * |user_data| is passed to the callbacks. Register before lg_grpc_server_listen.
 * Returns LG_OK, LG_ERR_INVALID (malformed path or missing callbacks), LG_ERR_STATE
 * (duplicate path) or LG_ERR_NOMEM. */
int lg_grpc_server_register(lg_grpc_server *srv, const char *path, enum lg_grpc_method_kind kind,
                            const struct lg_grpc_method_cbs *cbs, void *user_data);

/* Marks the registered method |path| as cheap to reset: a client resetting its running calls
 * spends none of its connection's client-reset budget (opts.max_client_resets). For methods
 * whose calls start nothing a reset wastes (no upstream request), which a proxy cancels as its
 * own clients go away (llmgate-sse cancels ResumeStream calls when browsers disconnect);
 * nghttp2's limit on RST_STREAM frames (opts.max_stream_resets) still applies. Returns LG_OK or
 * LG_ERR_INVALID (|path| not registered). */
int lg_grpc_server_exempt_from_reset_budget(lg_grpc_server *srv, const char *path);

/* Listens on |hostport| ("127.0.0.1:0" picks a free port). The bound address is written to
 * |bound| (|boundlen| bytes, NUL-terminated, "HOST:PORT"). May be called up to
 * LG_GRPC_SERVER_MAX_LISTENERS times for several addresses. Returns LG_OK, LG_ERR_INVALID
 * (bad address), LG_ERR_IO (bind/listen failed; logged with errno), LG_ERR_EXHAUSTED (more
 * addresses than that) or LG_ERR_NOMEM. */
int lg_grpc_server_listen(lg_grpc_server *srv, const char *hostport, char *bound, size_t boundlen);

/* Serves the connected stream socket |fd| as if a listener had accepted it (socket
 * activation, in-process tests and fuzzing). |fd| is made non-blocking; |peer| (may be NULL)
 * names it in logs and lg_grpc_call_get_peer. Returns LG_OK (|fd| is taken: the server closes
 * it), LG_ERR_INVALID (bad fd), LG_ERR_UNAVAILABLE (shutting down or at max_connections) or
 * LG_ERR_NOMEM; on error |fd| stays the caller's. */
int lg_grpc_server_adopt_fd(lg_grpc_server *srv, int fd, const char *peer);

/* Exposes per-call metrics in |m| (borrowed; must outlive the server):
 * llmgate_grpc_requests_total{method,code} (every ended call, by its :path for registered
 * methods, "unknown" otherwise, and the grpc-status name it ended with: the status sent, or
 * CANCELLED for a client reset or lost connection, DEADLINE_EXCEEDED, UNAVAILABLE for a call
 * cut by shutdown) and llmgate_grpc_request_duration_seconds{method} (headers to end).
 * Call once, before serving. LG_OK, LG_ERR_STATE (already set), or the errors of
 * lg_metrics_register (LG_ERR_STATE when the names are taken, LG_ERR_NOMEM). */
int lg_grpc_server_set_metrics(lg_grpc_server *srv, lg_metrics *m);

/* Adds a hook run when a shutdown begins (at most LG_GRPC_MAX_SHUTDOWN_HOOKS). Returns
 * LG_OK or LG_ERR_EXHAUSTED. */
int lg_grpc_server_add_shutdown_hook(lg_grpc_server *srv, lg_grpc_server_shutdown_cb cb,
                                     void *user_data);

/* Graceful shutdown: runs the shutdown hooks, stops accepting, sends GOAWAY with
 * last-stream-id 2^31-1 to every connection, then (after one PING round trip) GOAWAY with the
 * real last stream id; in-flight calls may finish for |drain_ms| (0 = opts.drain_ms), after
 * which they are cancelled (on_close(LG_GRPC_CLOSE_SHUTDOWN)) and the connections closed.
 * |done| (may be NULL) fires once everything is closed. Calling it again is a no-op. */
void lg_grpc_server_shutdown(lg_grpc_server *srv, uint32_t drain_ms, lg_grpc_server_done_cb done,
                             void *user_data);

/* True between the start of lg_grpc_server_shutdown and lg_grpc_server_free. */
bool lg_grpc_server_is_shutting_down(const lg_grpc_server *srv);

/* Number of open connections and of live calls (for metrics and tests). */
size_t lg_grpc_server_get_conn_count(const lg_grpc_server *srv);
size_t lg_grpc_server_get_call_count(const lg_grpc_server *srv);

/* ---- call operations ------------------------------------------------------------------- */

/* Queues one response message (|len| bytes at |msg|, copied, framed by the runtime). It goes
 * out at the end of this loop turn, together with whatever else is queued, subject to HTTP/2
 * flow control. A message is accepted while fewer than opts.call_send_queue_bytes are
 * queued, so the queue holds at most that bound plus one message.
 * Returns LG_OK, LG_ERR_AGAIN (queue full: nothing was queued; on_writable fires when there
 * is room), LG_ERR_STATE (already finished), LG_ERR_CLOSED (call ended), LG_ERR_NOMEM. */
int lg_grpc_call_send(lg_grpc_call *call, const uint8_t *msg, size_t len);

/* As lg_grpc_call_send, but packs the protobuf-c message |m| (borrowed) straight into the
 * send queue, without an intermediate copy. Same return values. */
int lg_grpc_call_send_pb(lg_grpc_call *call, const struct ProtobufCMessage *m);

/* Asks that response messages from now on be gzip-compressed, when the client's
 * grpc-accept-encoding allows gzip (otherwise this is a no-op returning LG_OK). Turn it on
 * before the first send: the grpc-encoding header goes with the initial metadata. After
 * that, a call whose headers announced gzip may switch each message between gzip (|on|) and
 * identity; turning it on for a call whose headers did not returns LG_ERR_STATE. */
int lg_grpc_call_set_compress(lg_grpc_call *call, bool on);

/* Adds one initial-metadata entry (sent with the response headers, which go out with the
 * first message or the trailers). |key| is a lower-case metadata name; for keys ending in
 * "-bin" |val| is raw bytes that the runtime base64-encodes (unpadded), otherwise printable
 * ASCII. Copied. Returns LG_OK, LG_ERR_INVALID (bad key, reserved "grpc-"/":" name, bad
 * value), LG_ERR_STATE (headers already sent), LG_ERR_TOO_LARGE, LG_ERR_CLOSED, NOMEM. */
int lg_grpc_call_add_initial_metadata(lg_grpc_call *call, const char *key, const uint8_t *val,
                                      size_t len);
/* As above, for trailing metadata (sent with the trailers). LG_ERR_STATE after finish. */
int lg_grpc_call_add_trailing_metadata(lg_grpc_call *call, const char *key, const uint8_t *val,
                                       size_t len);

/* Ends the call with gRPC |status| (enum lg_grpc_status) and |message| (UTF-8, may be NULL;
 * percent-encoded by the runtime). Trailers go out after the queued messages; with nothing
 * sent it is a Trailers-Only response. If the client has not half-closed, the stream is then
 * reset with NO_ERROR. on_close(LG_GRPC_CLOSE_FINISHED) follows once the trailers are
 * written (on a later loop turn, never inside this call). Returns LG_OK, LG_ERR_STATE
 * (finished twice), LG_ERR_CLOSED (the call already ended), LG_ERR_INVALID (status > 16). */
int lg_grpc_call_finish(lg_grpc_call *call, int status, const char *message);

/* Cancels the call from the server side: RST_STREAM(CANCEL) to the client, then on_close
 * with LG_GRPC_CLOSE_CANCELLED on a later loop turn. Returns LG_OK or LG_ERR_CLOSED. */
int lg_grpc_call_cancel(lg_grpc_call *call);

/* ---- call accessors (no side effects) ------------------------------------------------- */

/* The first request metadata value for lower-case |key|, or NULL; its length in |*len_out|
 * (may be NULL). "-bin" values are returned base64-decoded. Borrowed until the call is
 * freed. Values are NUL-terminated (the terminator is not counted). */
const uint8_t *lg_grpc_call_get_metadata(const lg_grpc_call *call, const char *key,
                                         size_t *len_out);
/* Calls |cb| for every request metadata entry, in arrival order (pseudo-headers and
 * grpc-* reserved names excluded). Borrowed values as above. */
typedef void (*lg_grpc_metadata_cb)(const char *key, const uint8_t *val, size_t len,
                                    void *user_data);
void lg_grpc_call_foreach_metadata(const lg_grpc_call *call, lg_grpc_metadata_cb cb,
                                   void *user_data);

/* The deadline as an absolute CLOCK_MONOTONIC time in milliseconds, or -1 without one. */
int64_t lg_grpc_call_get_deadline_ms(const lg_grpc_call *call);
/* Milliseconds left until the deadline (0 when passed), or -1 without a deadline. */
int64_t lg_grpc_call_get_remaining_ms(const lg_grpc_call *call);
/* The peer address "HOST:PORT" (borrowed until the call is freed). */
const char *lg_grpc_call_get_peer(const lg_grpc_call *call);
/* The method path, "/pkg.Service/Method" (borrowed until the call is freed). */
const char *lg_grpc_call_get_method(const lg_grpc_call *call);
/* The arena for request-scoped allocations (e.g. lg_arena_protobuf_allocator), freed when
 * the call is freed. */
lg_arena *lg_grpc_call_get_arena(lg_grpc_call *call);
/* Connection number (as in logs) and HTTP/2 stream id. */
uint64_t lg_grpc_call_get_conn_id(const lg_grpc_call *call);
int32_t lg_grpc_call_get_stream_id(const lg_grpc_call *call);
/* True once the call has ended for any reason other than a finish still being flushed. */
bool lg_grpc_call_is_cancelled(const lg_grpc_call *call);
/* True when the client's grpc-accept-encoding lists gzip. */
bool lg_grpc_call_accepts_gzip(const lg_grpc_call *call);
/* True when the request message being delivered (or last delivered) to on_message arrived
 * compressed on the wire (the runtime decompressed it). */
bool lg_grpc_call_is_request_compressed(const lg_grpc_call *call);
/* Bytes queued by lg_grpc_call_send and not yet handed to the socket (tests, metrics). */
size_t lg_grpc_call_get_queued_bytes(const lg_grpc_call *call);

/* The user data the callbacks receive: the method's, or what was set here. */
void *lg_grpc_call_get_user_data(const lg_grpc_call *call);
void lg_grpc_call_set_user_data(lg_grpc_call *call, void *user_data);

/* The server a call belongs to. */
lg_grpc_server *lg_grpc_call_get_server(const lg_grpc_call *call);

#endif /* LG_GRPC_SERVER_H */
