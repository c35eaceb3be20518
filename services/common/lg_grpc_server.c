/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_grpc_server.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>
#include <protobuf-c/protobuf-c.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_grpc_frame.h"
#include "lg_limits.h"
#define LG_LOG_MODULE "grpc_server"
#include "lg_log.h"
#include "lg_loop.h"
#include "lg_mem.h"
#include "lg_time.h"
#include "lg_metrics.h"

/* HTTP/2 client connection preface (RFC 9113 section 3.4). */
#define SRV_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define SRV_PREFACE_LEN (sizeof(SRV_PREFACE) - 1)
/* HTTP/2 frame header length (RFC 9113 section 4.1). */
#define SRV_FRAME_HEADER_BYTES 9
/* "HOST:PORT" of an IPv6 peer. */
#define SRV_PEER_BYTES 64
/* grpc-status or :status as text (an int formats in at most 11 bytes plus NUL). */
#define SRV_STATUS_TEXT_BYTES 12
/* Method table slots: a power of two at least twice the method maximum (open addressing). */
#define SRV_METHOD_SLOTS 512u
_Static_assert(SRV_METHOD_SLOTS >= 2u * LG_GRPC_SERVER_MAX_METHODS, "method table too small");
/* Our reset budget runs out before nghttp2's for resets of running calls (see lg_limits.h). */
_Static_assert(LG_GRPC_SERVER_STREAM_RESET_BURST >= 2u * LG_GRPC_SERVER_CLIENT_RESET_BURST &&
                   LG_GRPC_SERVER_STREAM_RESETS_PER_SEC >= LG_GRPC_SERVER_CLIENT_RESETS_PER_SEC,
               "nghttp2's reset limit must be looser than ours");
/* The client-reset token bucket counts thousandths of a reset: refilling at R resets/s adds R
 * thousandths per millisecond. */
#define SRV_RESET_TOKEN 1000u
/* The answer to an HTTP/1.x request on the h2c port (RFC 9110 15.6.6: the server does not
 * support the major version of HTTP used in the request). */
#define SRV_HTTP1_REPLY                                                                            \
    "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Type: text/plain\r\n"                      \
    "Connection: close\r\nContent-Length: 43\r\n\r\nthis port speaks HTTP/2 (h2c) and gRPC only"

/* Log context of a connection (a compound literal without top-level commas, so it can be a
 * macro argument). */
#define SRV_CTX(c) (&(const struct lg_log_ctx){.conn = (c)->id})

struct srv_method {
    char *path; /* lg_malloc'd "/pkg.Service/Method"; NULL marks a free slot */
    size_t path_len;
    enum lg_grpc_method_kind kind;
    struct lg_grpc_method_cbs cbs;
    void *user_data;
    bool reset_exempt; /* resets of its calls spend no client-reset budget */
    /* Metric series, resolved on first use (resolving takes the registry mutex) and kept:
     * one duration histogram per method, one request counter per (method, status). */
    lg_metrics_series *m_duration;
    lg_metrics_series *m_requests[LG_GRPC_UNAUTHENTICATED + 1];
};

struct srv_hook {
    lg_grpc_server_shutdown_cb cb;
    void *user_data;
};

struct srv_conn;

struct lg_grpc_server {
    struct event_base *base;
    struct lg_grpc_server_opts opts;
    nghttp2_session_callbacks *h2cbs; /* shared by every connection */
    nghttp2_option *h2opt;
    struct srv_method methods[SRV_METHOD_SLOTS];
    size_t nmethods;
    lg_loop_listener *listeners[LG_GRPC_SERVER_MAX_LISTENERS];
    size_t nlisteners;
    struct srv_conn *conns; /* doubly linked list of open connections */
    size_t nconns;
    size_t ncalls;
    uint64_t next_conn_id;
    struct srv_hook hooks[LG_GRPC_MAX_SHUTDOWN_HOOKS];
    size_t nhooks;
    bool shutting_down;
    struct event *drain_ev; /* drain deadline of a graceful shutdown */
    struct event *done_ev;  /* fires the done callback outside connection code */
    lg_grpc_server_done_cb done_cb;
    void *done_ud;
    lg_metrics_family *m_requests; /* llmgate_grpc_requests_total{method,code}; NULL = off */
    lg_metrics_family *m_duration; /* llmgate_grpc_request_duration_seconds{method} */
    struct srv_method unknown;     /* series of calls to unregistered paths ("unknown") */
};

struct srv_conn {
    lg_grpc_server *srv;
    struct srv_conn *prev, *next;
    evutil_socket_t fd;
    struct event *rev;    /* EV_READ | EV_PERSIST on fd */
    struct event *wev;    /* EV_WRITE on fd, armed only while output waits for the kernel */
    struct evbuffer *in;  /* bytes read and not yet fed to nghttp2 */
    struct evbuffer *out; /* frames produced by nghttp2 and not yet written */
    nghttp2_session *h2;
    struct event *flush_ev;     /* deferred session_send: one per loop turn, coalescing */
    struct event *keepalive_ev; /* only when keepalive is on */
    uint64_t id;
    char peer[SRV_PEER_BYTES];
    lg_grpc_call *calls; /* live calls on this connection */
    bool preface_checked;
    bool flush_pending;
    bool in_read;           /* conn_on_read is feeding nghttp2; it flushes at its end */
    bool closing;           /* conn_close under way: calls see LG_ERR_CLOSED */
    bool close_after_write; /* output drains, then the connection closes */
    bool shutdown_notice_sent;
    bool final_goaway_sent;
    bool ping_outstanding;
    int64_t last_activity_ms;
    int64_t opened_ms;
    int64_t last_client_ping_ms;
    uint32_t ping_strikes;
    /* Rapid reset: thousandths of a reset left in the client-reset bucket, refilled up to
     * opts.max_client_resets by the time since reset_refill_ms (conn_on_client_reset). */
    uint64_t reset_tokens;
    int64_t reset_refill_ms;
    uint64_t client_resets; /* resets counted by conn_on_client_reset, for the log */
    uint64_t rst_frames;    /* every RST_STREAM received, for the log */
    bool calm; /* our GOAWAY(ENHANCE_YOUR_CALM) (resets, pings) is queued: start nothing more */
    int32_t last_started_sid;
    int32_t goaway_last_sid; /* lowest last-stream-id of the GOAWAYs sent; INT32_MAX none */
    /* Calls whose request headers arrived and were valid, waiting to be started by
     * conn_dispatch (arrival order, linked through pend_prev/pend_next). */
    lg_grpc_call *pend_head, *pend_tail;
    size_t writable_waiters; /* calls that got LG_ERR_AGAIN and wait for on_writable */
    size_t held_bytes;       /* request bytes held by all calls (partial messages, unary
                                requests waiting for END_STREAM); <= CONN_RECV_HELD_BYTES */
    enum lg_grpc_close_reason close_reason; /* given to calls when the connection closes */
};

/* Request metadata entry (arena memory). */
struct srv_md {
    struct srv_md *next;
    const char *key;
    const uint8_t *val; /* NUL-terminated; base64-decoded for -bin keys */
    size_t len;
};

/* Response metadata entry (arena memory), ready for nghttp2. */
struct srv_nv {
    struct srv_nv *next;
    nghttp2_nv nv;
};

enum srv_encoding { SRV_ENC_IDENTITY = 0, SRV_ENC_GZIP = 1, SRV_ENC_UNSUPPORTED = 2 };

/* Life of a call, for the debug trace (curl's mstate): the detailed flags below carry the
 * protocol facts, this says where the call is. Changed only by call_set_state. */
enum srv_call_state {
    SRV_CALL_HEADERS = 0,    /* request headers arriving */
    SRV_CALL_STARTED = 1,    /* routed, on_start accepted it; nothing sent yet */
    SRV_CALL_RESPONDING = 2, /* response headers submitted, messages may flow */
    SRV_CALL_FINISHING = 3,  /* status set; trailers go out after the queued messages */
    SRV_CALL_DONE = 4,       /* trailers written; waiting for the stream to close */
    SRV_CALL_ABORTED = 5,    /* reset, deadline or runtime error: no more operations */
    SRV_CALL_CLOSED = 6,     /* on_close delivered; about to be freed */
};

struct lg_grpc_call {
    enum srv_call_state state;
    struct srv_conn *conn;
    lg_grpc_call *prev, *next;
    lg_grpc_call *pend_prev, *pend_next; /* conn's pending list, while pending */
    bool pending;                        /* routed, waiting for conn_dispatch */
    struct lg_buf pending_in;            /* request DATA that arrived while pending, fed at start */
    int32_t stream_id;
    const struct srv_method *method; /* NULL until routed */
    void *user_data;
    lg_arena *arena;
    /* request */
    const char *path; /* arena copy */
    size_t header_bytes;
    struct srv_md *md_head, *md_tail;
    size_t nmd;
    bool is_post, ct_ok, ct_seen, hdr_too_large, md_bad, timeout_bad;
    enum srv_encoding req_enc;
    bool accepts_gzip;
    int64_t deadline_ms; /* -1 = none */
    struct event *deadline_ev;
    lg_grpc_frame_reader *reader;
    struct lg_buf unary_msg; /* the one request of a unary/server-streaming call */
    struct lg_buf scratch;   /* gunzip / gzip output */
    uint32_t nmsgs;
    bool unary_compressed; /* the unary request arrived compressed */
    bool msg_compressed;   /* the message being delivered arrived compressed */
    size_t held_bytes;     /* this call's share of conn->held_bytes */
    /* response */
    struct evbuffer *sendq; /* framed messages not yet handed to nghttp2 */
    struct srv_nv *init_md, *trail_md;
    size_t resp_md_bytes;
    bool compress;           /* compress the next messages */
    bool compress_announced; /* the response headers carried grpc-encoding: gzip */
    bool started, headers_sent, finished, trailers_sent, half_closed, deferred;
    bool ended;          /* reset, lost or failed: no more operations */
    bool want_writable;  /* the handler got LG_ERR_AGAIN */
    bool runtime_failed; /* the runtime finished the call with an error status */
    bool deadline_hit;
    bool cancelled_by_server;
    bool in_close_cb;
    int status;
    const char *status_msg; /* arena, percent-encoded */
    int64_t start_us;       /* CLOCK_MONOTONIC when the request headers began, for metrics */
};

static void conn_close(struct srv_conn *c);
static void conn_schedule_flush(struct srv_conn *c);
static int call_submit_error(lg_grpc_call *call, int http_status, int grpc_status, const char *msg,
                             bool accept_encoding);

/* ---- method table ----------------------------------------------------------------------- */

static uint32_t srv_hash(const char *p, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

static const struct srv_method *srv_find_method(const lg_grpc_server *srv, const char *path,
                                                size_t len)
{
    uint32_t i = srv_hash(path, len) & (SRV_METHOD_SLOTS - 1u);
    while (srv->methods[i].path) {
        const struct srv_method *m = &srv->methods[i];
        if (m->path_len == len && memcmp(m->path, path, len) == 0) {
            return m;
        }
        i = (i + 1u) & (SRV_METHOD_SLOTS - 1u);
    }
    return NULL;
}

/* ---- options and lifecycle -------------------------------------------------------------- */

void lg_grpc_server_opts_default(struct lg_grpc_server_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_recv_msg_bytes = LG_GRPC_SERVER_MAX_RECV_MSG_BYTES_DEFAULT;
    o->max_concurrent_streams = LG_GRPC_SERVER_MAX_CONCURRENT_STREAMS;
    o->max_header_list_bytes = LG_GRPC_SERVER_MAX_HEADER_LIST_BYTES;
    o->initial_stream_window_bytes = LG_GRPC_SERVER_STREAM_WINDOW_BYTES;
    o->initial_conn_window_bytes = LG_GRPC_SERVER_CONN_WINDOW_BYTES;
    o->call_send_queue_bytes = LG_GRPC_SERVER_CALL_SEND_QUEUE_BYTES;
    o->max_connections = LG_GRPC_SERVER_MAX_CONNECTIONS;
    o->keepalive_time_ms = LG_GRPC_SERVER_KEEPALIVE_TIME_MS;
    o->keepalive_timeout_ms = LG_GRPC_SERVER_KEEPALIVE_TIMEOUT_MS;
    o->min_ping_interval_ms = LG_GRPC_SERVER_MIN_PING_INTERVAL_MS;
    o->max_ping_strikes = LG_GRPC_SERVER_MAX_PING_STRIKES;
    o->max_client_resets = LG_GRPC_SERVER_CLIENT_RESET_BURST;
    o->client_resets_per_sec = LG_GRPC_SERVER_CLIENT_RESETS_PER_SEC;
    o->max_stream_resets = LG_GRPC_SERVER_STREAM_RESET_BURST;
    o->stream_resets_per_sec = LG_GRPC_SERVER_STREAM_RESETS_PER_SEC;
    o->drain_ms = LG_GRPC_SERVER_DRAIN_MS;
}

static int srv_check_opts(const struct lg_grpc_server_opts *o)
{
    if (o->max_recv_msg_bytes == 0 ||
        o->max_recv_msg_bytes > LG_GRPC_SERVER_MAX_RECV_MSG_BYTES_MAX ||
        o->max_concurrent_streams == 0 ||
        o->max_concurrent_streams > LG_GRPC_SERVER_MAX_CONCURRENT_STREAMS_MAX ||
        o->max_header_list_bytes == 0 ||
        o->max_header_list_bytes > LG_GRPC_SERVER_MAX_HEADER_LIST_BYTES_MAX ||
        o->initial_stream_window_bytes == 0 || o->initial_stream_window_bytes > INT32_MAX ||
        o->initial_conn_window_bytes == 0 || o->initial_conn_window_bytes > INT32_MAX ||
        o->call_send_queue_bytes == 0 || o->max_connections == 0 ||
        o->drain_ms > LG_GRPC_SERVER_DRAIN_MS_MAX ||
        o->max_client_resets > LG_GRPC_SERVER_CLIENT_RESET_BURST ||
        o->client_resets_per_sec > LG_GRPC_SERVER_CLIENT_RESETS_PER_SEC ||
        o->max_stream_resets > LG_GRPC_SERVER_STREAM_RESET_BURST ||
        o->stream_resets_per_sec > LG_GRPC_SERVER_STREAM_RESETS_PER_SEC) {
        return LG_ERR_INVALID;
    }
    return LG_OK;
}

static int srv_setup_h2(lg_grpc_server *srv);

static void srv_on_done_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_grpc_server *srv = arg;
    lg_grpc_server_done_cb cb = srv->done_cb;
    srv->done_cb = NULL;
    if (cb) {
        cb(srv, srv->done_ud); /* may free srv */
    }
}

int lg_grpc_server_new(lg_grpc_server **out, struct event_base *base,
                       const struct lg_grpc_server_opts *opts)
{
    struct lg_grpc_server_opts o;
    if (opts) {
        o = *opts;
    } else {
        lg_grpc_server_opts_default(&o);
    }
    if (!base || srv_check_opts(&o) != LG_OK) {
        return LG_ERR_INVALID;
    }
    /* A write to a connection the peer has closed must fail with EPIPE, not kill the process
     * (evbuffer_write uses writev, which has no MSG_NOSIGNAL). */
    if (lg_loop_ignore_sigpipe() != LG_OK) {
        return LG_ERR_IO;
    }
    lg_grpc_server *srv = lg_calloc(1, sizeof(*srv));
    if (!srv) {
        return LG_ERR_NOMEM;
    }
    srv->base = base;
    srv->opts = o;
    srv->next_conn_id = 1;
    int rc = srv_setup_h2(srv);
    if (rc != LG_OK) {
        goto out_free_srv;
    }
    srv->done_ev = event_new(base, -1, 0, srv_on_done_ev, srv);
    if (!srv->done_ev) {
        rc = LG_ERR_NOMEM;
        goto out_free_h2;
    }
    *out = srv;
    return LG_OK;

out_free_h2:
    nghttp2_session_callbacks_del(srv->h2cbs);
    nghttp2_option_del(srv->h2opt);
out_free_srv:
    lg_free(srv);
    return rc;
}

void lg_grpc_server_free(lg_grpc_server *srv)
{
    if (!srv) {
        return;
    }
    srv->shutting_down = true;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        lg_loop_listener_free(srv->listeners[i]);
    }
    while (srv->conns) {
        srv->conns->close_reason = LG_GRPC_CLOSE_SHUTDOWN;
        conn_close(srv->conns);
    }
    for (size_t i = 0; i < SRV_METHOD_SLOTS; i++) {
        lg_free(srv->methods[i].path);
    }
    if (srv->drain_ev) {
        event_free(srv->drain_ev);
    }
    event_free(srv->done_ev);
    nghttp2_session_callbacks_del(srv->h2cbs);
    nghttp2_option_del(srv->h2opt);
    lg_free(srv);
}

int lg_grpc_server_register(lg_grpc_server *srv, const char *path, enum lg_grpc_method_kind kind,
                            const struct lg_grpc_method_cbs *cbs, void *user_data)
{
    if (!path || path[0] != '/' || !strchr(path + 1, '/') || !cbs || !cbs->on_message ||
        !cbs->on_close || (unsigned)kind > (unsigned)LG_GRPC_BIDI_STREAMING) {
        return LG_ERR_INVALID;
    }
    size_t len = strlen(path);
    if (srv_find_method(srv, path, len)) {
        return LG_ERR_STATE;
    }
    if (srv->nmethods >= LG_GRPC_SERVER_MAX_METHODS) {
        return LG_ERR_EXHAUSTED;
    }
    uint32_t i = srv_hash(path, len) & (SRV_METHOD_SLOTS - 1u);
    while (srv->methods[i].path) {
        i = (i + 1u) & (SRV_METHOD_SLOTS - 1u);
    }
    char *copy = lg_strndup(path, len);
    if (!copy) {
        return LG_ERR_NOMEM;
    }
    srv->methods[i] = (struct srv_method){
        .path = copy, .path_len = len, .kind = kind, .cbs = *cbs, .user_data = user_data};
    srv->nmethods++;
    return LG_OK;
}

int lg_grpc_server_exempt_from_reset_budget(lg_grpc_server *srv, const char *path)
{
    struct srv_method *m =
        path ? (struct srv_method *)(uintptr_t)srv_find_method(srv, path, strlen(path)) : NULL;
    if (!m) {
        return LG_ERR_INVALID;
    }
    m->reset_exempt = true;
    return LG_OK;
}

int lg_grpc_server_add_shutdown_hook(lg_grpc_server *srv, lg_grpc_server_shutdown_cb cb,
                                     void *user_data)
{
    if (srv->nhooks >= LG_GRPC_MAX_SHUTDOWN_HOOKS) {
        return LG_ERR_EXHAUSTED;
    }
    srv->hooks[srv->nhooks++] = (struct srv_hook){cb, user_data};
    return LG_OK;
}

int lg_grpc_server_set_metrics(lg_grpc_server *srv, lg_metrics *m)
{
    static const char *const req_labels[] = {"method", "code"};
    static const char *const dur_labels[] = {"method"};
    const struct lg_metrics_desc req = {
        LG_METRICS_COUNTER,
        "llmgate_grpc_requests_total",
        "gRPC calls ended, by method and grpc-status name (streaming calls count once, at "
        "their end)",
        req_labels,
        2,
        NULL,
        0};
    const struct lg_metrics_desc dur = {
        LG_METRICS_HISTOGRAM,
        "llmgate_grpc_request_duration_seconds",
        "gRPC call duration from request headers to the end of the call (whole stream for "
        "streaming calls)",
        dur_labels,
        1,
        NULL,
        0};
    if (srv->m_requests != NULL) {
        return LG_ERR_STATE;
    }
    lg_metrics_family *fr;
    lg_metrics_family *fd;
    int rc = lg_metrics_register(m, &req, &fr);
    if (rc == LG_OK) {
        rc = lg_metrics_register(m, &dur, &fd);
    }
    if (rc != LG_OK) {
        return rc;
    }
    srv->m_requests = fr;
    srv->m_duration = fd;
    return LG_OK;
}

bool lg_grpc_server_is_shutting_down(const lg_grpc_server *srv)
{
    return srv->shutting_down;
}

size_t lg_grpc_server_get_conn_count(const lg_grpc_server *srv)
{
    return srv->nconns;
}

size_t lg_grpc_server_get_call_count(const lg_grpc_server *srv)
{
    return srv->ncalls;
}

/* ---- calls: lifetime -------------------------------------------------------------------- */

static void call_on_deadline(evutil_socket_t fd, short what, void *arg);

static const char *call_state_name(enum srv_call_state st)
{
    static const char *const names[] = {"HEADERS", "STARTED", "RESPONDING", "FINISHING",
                                        "DONE",    "ABORTED", "CLOSED"};
    return (size_t)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* The one place a call changes state; traced old -> new at debug level. */
static void call_set_state(lg_grpc_call *call, enum srv_call_state st)
{
    if (call->state == st) {
        return;
    }
    struct lg_log_ctx ctx = {.conn = call->conn->id};
    lg_log(LG_LOG_DEBUG, &ctx, "call_state", "stream=%d %s->%s", (int)call->stream_id,
           call_state_name(call->state), call_state_name(st));
    call->state = st;
}

/* The grpc-status a call ended with, as its client saw it (or would have): the status it
 * finished with, else the one its close reason implies. */
static int call_final_status(const lg_grpc_call *call, enum lg_grpc_close_reason reason)
{
    if (call->trailers_sent || call->runtime_failed || reason == LG_GRPC_CLOSE_FINISHED) {
        return call->status;
    }
    switch (reason) {
    case LG_GRPC_CLOSE_DEADLINE:
        return LG_GRPC_DEADLINE_EXCEEDED;
    case LG_GRPC_CLOSE_SHUTDOWN:
        return LG_GRPC_UNAVAILABLE;
    default:
        return LG_GRPC_CANCELLED; /* reset by the client, or its connection went away */
    }
}

/* Counts the ended call in llmgate_grpc_requests_total and observes its duration. Series are
 * resolved once per method (and status) and cached in the method; unregistered paths share
 * the method "unknown", so the label set is bounded by the registered methods. */
static void call_observe(lg_grpc_call *call, enum lg_grpc_close_reason reason)
{
    lg_grpc_server *srv = call->conn->srv;
    if (srv->m_requests == NULL) {
        return;
    }
    struct srv_method *m = (struct srv_method *)(uintptr_t)call->method;
    if (m == NULL) {
        m = &srv->unknown;
    }
    const char *name = m->path != NULL ? m->path : "unknown";
    int status = call_final_status(call, reason);
    if (status < 0 || status > LG_GRPC_UNAUTHENTICATED) {
        status = LG_GRPC_UNKNOWN;
    }
    if (m->m_requests[status] == NULL) {
        const char *v[2] = {name, lg_grpc_status_name(status)};
        (void)lg_metrics_family_with_labels(srv->m_requests, v, &m->m_requests[status]);
    }
    if (m->m_duration == NULL) {
        const char *v[1] = {name};
        (void)lg_metrics_family_with_labels(srv->m_duration, v, &m->m_duration);
    }
    lg_metrics_counter_inc(m->m_requests[status]);
    lg_metrics_histogram_observe(m->m_duration,
                                 (double)(lg_time_mono_us() - call->start_us) / 1e6);
}

static lg_grpc_call *call_new(struct srv_conn *c, int32_t stream_id)
{
    lg_arena *arena;
    if (lg_arena_new(&arena, 0, LG_GRPC_SERVER_CALL_ARENA_BYTES) != LG_OK) {
        return NULL;
    }
    lg_grpc_call *call = lg_arena_alloc(arena, sizeof(*call));
    if (!call) {
        lg_arena_free(arena);
        return NULL;
    }
    memset(call, 0, sizeof(*call));
    call->arena = arena;
    call->conn = c;
    call->stream_id = stream_id;
    call->deadline_ms = -1;
    call->start_us = lg_time_mono_us();
    lg_buf_init(&call->unary_msg, c->srv->opts.max_recv_msg_bytes);
    lg_buf_init(&call->scratch, c->srv->opts.max_recv_msg_bytes);
    lg_buf_init(&call->pending_in, c->srv->opts.max_recv_msg_bytes + LG_GRPC_FRAME_PREFIX_BYTES);
    call->next = c->calls;
    if (c->calls) {
        c->calls->prev = call;
    }
    c->calls = call;
    c->srv->ncalls++;
    return call;
}

/* Takes |call| off its connection's pending list (no-op when it is not on it). */
static void call_unpend(lg_grpc_call *call)
{
    struct srv_conn *c = call->conn;
    if (!call->pending) {
        return;
    }
    call->pending = false;
    if (call->pend_prev) {
        call->pend_prev->pend_next = call->pend_next;
    } else {
        c->pend_head = call->pend_next;
    }
    if (call->pend_next) {
        call->pend_next->pend_prev = call->pend_prev;
    } else {
        c->pend_tail = call->pend_prev;
    }
    call->pend_prev = call->pend_next = NULL;
}

/* Frees |call| (no callback). The caller has made sure nghttp2 no longer refers to it. */
static void call_free(lg_grpc_call *call)
{
    struct srv_conn *c = call->conn;
    call_unpend(call);
    if (call->prev) {
        call->prev->next = call->next;
    } else {
        c->calls = call->next;
    }
    if (call->next) {
        call->next->prev = call->prev;
    }
    if (call->want_writable && c->writable_waiters > 0) {
        c->writable_waiters--;
    }
    c->srv->ncalls--;
    c->held_bytes -= call->held_bytes;
    if (call->deadline_ev) {
        event_free(call->deadline_ev);
    }
    if (call->sendq) {
        evbuffer_free(call->sendq);
    }
    lg_grpc_frame_reader_free(call->reader);
    lg_buf_deinit(&call->unary_msg);
    lg_buf_deinit(&call->scratch);
    lg_buf_deinit(&call->pending_in);
    lg_arena_free(call->arena); /* frees |call| itself */
}

/* Tells the handler the call ended (once) and frees it. */
static void call_end(lg_grpc_call *call, enum lg_grpc_close_reason reason)
{
    call->ended = true;
    call_set_state(call, SRV_CALL_CLOSED);
    if (call->started && call->method) {
        struct lg_log_ctx ctx = {.conn = call->conn->id};
        lg_log(LG_LOG_DEBUG, &ctx, "call_close", "stream=%d method=%s reason=%d",
               (int)call->stream_id, call->method->path, (int)reason);
        call->in_close_cb = true;
        call->method->cbs.on_close(call, reason, call->user_data);
    }
    call_observe(call, reason);
    call_free(call);
}

static enum lg_grpc_close_reason call_reason(const lg_grpc_call *call, uint32_t error_code)
{
    if (call->deadline_hit) {
        return LG_GRPC_CLOSE_DEADLINE;
    }
    if (call->runtime_failed) {
        return LG_GRPC_CLOSE_ERROR;
    }
    if (call->cancelled_by_server) {
        return LG_GRPC_CLOSE_CANCELLED;
    }
    /* Once the trailers are written the call has finished, whatever closes the stream after
     * that (our RST_STREAM(NO_ERROR), or a client reset after it read the status). */
    if (call->trailers_sent) {
        return LG_GRPC_CLOSE_FINISHED;
    }
    if (call->conn->srv->shutting_down && error_code == NGHTTP2_REFUSED_STREAM) {
        return LG_GRPC_CLOSE_SHUTDOWN;
    }
    return LG_GRPC_CLOSE_CANCELLED;
}

/* ---- calls: response side -------------------------------------------------------------- */

#define SRV_NV(n, v)                                                                               \
    {                                                                                              \
        (uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v), sizeof(n) - 1, sizeof(v) - 1,        \
            NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE                           \
    }

static nghttp2_nv srv_nv_str(const char *name, const char *value)
{
    nghttp2_nv nv = {(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, strlen(name),
                     strlen(value), NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
    return nv;
}

static size_t srv_nv_count(const struct srv_nv *l)
{
    size_t n = 0;
    for (; l; l = l->next) {
        n++;
    }
    return n;
}

/* Appends the entries of |l| (in insertion order) to |nva| from index |*n|. */
static void srv_nv_append(nghttp2_nv *nva, size_t *n, const struct srv_nv *l)
{
    for (; l; l = l->next) {
        nva[(*n)++] = l->nv;
    }
}

static ssize_t call_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                              size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                              void *user_data);

/* Fixed response header fields: :status, content-type, grpc-accept-encoding, grpc-encoding. */
#define SRV_RESP_FIXED_NV 4

static int call_submit_headers(lg_grpc_call *call)
{
    size_t n = 0;
    nghttp2_nv *nva = lg_arena_alloc(
        call->arena, sizeof(*nva) * (SRV_RESP_FIXED_NV + srv_nv_count(call->init_md)));
    if (!nva) {
        return LG_ERR_NOMEM;
    }
    static const nghttp2_nv st = SRV_NV(":status", "200");
    static const nghttp2_nv ct = SRV_NV("content-type", "application/grpc");
    static const nghttp2_nv ae = SRV_NV("grpc-accept-encoding", "identity,gzip");
    static const nghttp2_nv ge = SRV_NV("grpc-encoding", "gzip");
    nva[n++] = st;
    nva[n++] = ct;
    nva[n++] = ae;
    if (call->compress) {
        nva[n++] = ge;
        call->compress_announced = true;
    }
    srv_nv_append(nva, &n, call->init_md);
    nghttp2_data_provider prd;
    prd.source.ptr = call;
    prd.read_callback = call_data_read;
    int rv = nghttp2_submit_response(call->conn->h2, call->stream_id, nva, n, &prd);
    if (rv != 0) {
        return rv == NGHTTP2_ERR_NOMEM ? LG_ERR_NOMEM : LG_ERR_STATE;
    }
    call->headers_sent = true;
    call_set_state(call, SRV_CALL_RESPONDING);
    return LG_OK;
}

/* Builds the trailer fields (grpc-status, grpc-message, trailing metadata) into |nva| from
 * index |*n|. |nva| has room for 2 + count(trail_md) more entries. */
static void call_trailer_nv(lg_grpc_call *call, nghttp2_nv *nva, size_t *n)
{
    char *st = lg_arena_alloc(call->arena, SRV_STATUS_TEXT_BYTES);
    if (st) {
        snprintf(st, SRV_STATUS_TEXT_BYTES, "%d", call->status);
        nva[(*n)++] = srv_nv_str("grpc-status", st);
    } else {
        static const nghttp2_nv unk = SRV_NV("grpc-status", "2");
        nva[(*n)++] = unk;
    }
    if (call->status_msg && call->status_msg[0]) {
        nva[(*n)++] = srv_nv_str("grpc-message", call->status_msg);
    }
    srv_nv_append(nva, n, call->trail_md);
}

static ssize_t call_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                              size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                              void *user_data)
{
    (void)buf;
    (void)user_data;
    lg_grpc_call *call = source->ptr;
    size_t queued = evbuffer_get_length(call->sendq);
    if (queued == 0 && !call->finished) {
        call->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t take = queued < length ? queued : length;
    if (take) {
        *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    }
    if (take == queued && call->finished) {
        /* All data out: end the DATA stream here and send the trailers with END_STREAM
         * (submit_trailer inside the read callback is the earliest valid point). */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        nghttp2_nv *nva =
            lg_arena_alloc(call->arena, sizeof(*nva) * (2 + srv_nv_count(call->trail_md)));
        if (!nva) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
        }
        size_t n = 0;
        call_trailer_nv(call, nva, &n);
        if (nghttp2_submit_trailer(session, stream_id, nva, n) != 0) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
    }
    return (ssize_t)take;
}

static bool call_is_open(const lg_grpc_call *call)
{
    return !call->ended && !call->conn->closing && !call->in_close_cb;
}

static int call_prepare_send(lg_grpc_call *call)
{
    if (!call_is_open(call)) {
        return LG_ERR_CLOSED;
    }
    if (call->finished) {
        return LG_ERR_STATE;
    }
    size_t queued = call->sendq ? evbuffer_get_length(call->sendq) : 0;
    if (queued >= call->conn->srv->opts.call_send_queue_bytes) {
        if (!call->want_writable) {
            call->want_writable = true;
            call->conn->writable_waiters++;
        }
        return LG_ERR_AGAIN;
    }
    if (!call->sendq) {
        call->sendq = evbuffer_new();
        if (!call->sendq) {
            return LG_ERR_NOMEM;
        }
    }
    if (!call->headers_sent) {
        return call_submit_headers(call);
    }
    return LG_OK;
}

static void call_kick(lg_grpc_call *call)
{
    if (call->deferred) {
        call->deferred = false;
        nghttp2_session_resume_data(call->conn->h2, call->stream_id);
    }
    conn_schedule_flush(call->conn);
}

static int call_queue_gzip(lg_grpc_call *call, const uint8_t *msg, size_t len)
{
    /* Room for the prefix plus deflate's worst case on incompressible input (zlib's
     * deflateBound is about len + len/1000 + a few dozen bytes); len/8 + 64 covers it. */
    struct lg_buf out;
    lg_buf_init(&out, LG_GRPC_FRAME_PREFIX_BYTES + len + len / 8u + 64u);
    int rc = lg_grpc_frame_encode(&out, msg, len, true);
    if (rc == LG_OK && evbuffer_add(call->sendq, out.data, out.len) != 0) {
        rc = LG_ERR_NOMEM;
    }
    lg_buf_deinit(&out);
    return rc;
}

int lg_grpc_call_send(lg_grpc_call *call, const uint8_t *msg, size_t len)
{
    int rc = call_prepare_send(call);
    if (rc != LG_OK) {
        return rc;
    }
    if (len > LG_GRPC_FRAME_MAX_PAYLOAD_BYTES) {
        return LG_ERR_TOO_LARGE;
    }
    if (call->compress) {
        rc = call_queue_gzip(call, msg, len);
    } else {
        uint8_t prefix[LG_GRPC_FRAME_PREFIX_BYTES];
        lg_grpc_frame_write_prefix(prefix, false, len);
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(call->sendq, (ev_ssize_t)(sizeof(prefix) + len), &v, 1) != 1) {
            return LG_ERR_NOMEM;
        }
        memcpy(v.iov_base, prefix, sizeof(prefix));
        if (len) {
            memcpy((uint8_t *)v.iov_base + sizeof(prefix), msg, len);
        }
        v.iov_len = sizeof(prefix) + len;
        rc = evbuffer_commit_space(call->sendq, &v, 1) == 0 ? LG_OK : LG_ERR_NOMEM;
    }
    if (rc == LG_OK) {
        call_kick(call);
    }
    return rc;
}

int lg_grpc_call_send_pb(lg_grpc_call *call, const struct ProtobufCMessage *m)
{
    int rc = call_prepare_send(call);
    if (rc != LG_OK) {
        return rc;
    }
    size_t len = protobuf_c_message_get_packed_size(m);
    if (len > LG_GRPC_FRAME_MAX_PAYLOAD_BYTES) {
        return LG_ERR_TOO_LARGE;
    }
    if (call->compress) {
        /* Compression needs the packed bytes first; pack into the arena-independent scratch
         * by way of a temporary buffer. */
        uint8_t *tmp = lg_malloc(len);
        if (!tmp) {
            return LG_ERR_NOMEM;
        }
        protobuf_c_message_pack(m, tmp);
        rc = call_queue_gzip(call, tmp, len);
        lg_free(tmp);
    } else {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(call->sendq, (ev_ssize_t)(LG_GRPC_FRAME_PREFIX_BYTES + len), &v,
                                   1) != 1) {
            return LG_ERR_NOMEM;
        }
        lg_grpc_frame_write_prefix(v.iov_base, false, len);
        protobuf_c_message_pack(m, (uint8_t *)v.iov_base + LG_GRPC_FRAME_PREFIX_BYTES);
        v.iov_len = LG_GRPC_FRAME_PREFIX_BYTES + len;
        rc = evbuffer_commit_space(call->sendq, &v, 1) == 0 ? LG_OK : LG_ERR_NOMEM;
    }
    if (rc == LG_OK) {
        call_kick(call);
    }
    return rc;
}

int lg_grpc_call_set_compress(lg_grpc_call *call, bool on)
{
    if (!call_is_open(call)) {
        return LG_ERR_CLOSED;
    }
    if (!call->headers_sent) {
        call->compress = on && call->accepts_gzip;
        return LG_OK;
    }
    /* After the headers, messages may switch between gzip and identity only when the
     * headers announced grpc-encoding: gzip. */
    if (on && !call->compress_announced && call->accepts_gzip) {
        return LG_ERR_STATE;
    }
    call->compress = on && call->compress_announced;
    return LG_OK;
}

static int call_add_md(lg_grpc_call *call, struct srv_nv **list, const char *key,
                       const uint8_t *val, size_t len)
{
    size_t klen = key ? strlen(key) : 0;
    if (!key || !lg_grpc_frame_is_valid_key((const uint8_t *)key, klen) ||
        lg_grpc_frame_is_reserved_key((const uint8_t *)key, klen) || (!val && len)) {
        return LG_ERR_INVALID;
    }
    const uint8_t *v = val;
    size_t vlen = len;
    struct lg_buf enc;
    lg_buf_init(&enc, LG_GRPC_SERVER_MAX_RESPONSE_METADATA_BYTES);
    if (lg_grpc_frame_is_bin_key((const uint8_t *)key, klen)) {
        int rc = lg_grpc_frame_base64_encode(val, len, &enc);
        if (rc != LG_OK) {
            lg_buf_deinit(&enc);
            return rc;
        }
        v = enc.data ? enc.data : (const uint8_t *)"";
        vlen = enc.len;
    } else if (!lg_grpc_frame_is_valid_ascii_value(val, len)) {
        return LG_ERR_INVALID;
    }
    int rc = LG_OK;
    if (call->resp_md_bytes + klen + vlen > LG_GRPC_SERVER_MAX_RESPONSE_METADATA_BYTES) {
        rc = LG_ERR_TOO_LARGE;
        goto out_free_enc;
    }
    struct srv_nv *e = lg_arena_alloc(call->arena, sizeof(*e));
    char *k = lg_arena_strndup(call->arena, key, klen);
    char *vv = lg_arena_strndup(call->arena, (const char *)v, vlen);
    if (!e || !k || !vv) {
        rc = LG_ERR_NOMEM;
        goto out_free_enc;
    }
    e->nv = (nghttp2_nv){(uint8_t *)k, (uint8_t *)vv, klen, vlen,
                         NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
    e->next = NULL;
    /* Keep insertion order: append at the tail. */
    struct srv_nv **tail = list;
    while (*tail) {
        tail = &(*tail)->next;
    }
    *tail = e;
    call->resp_md_bytes += klen + vlen;
out_free_enc:
    lg_buf_deinit(&enc);
    return rc;
}

int lg_grpc_call_add_initial_metadata(lg_grpc_call *call, const char *key, const uint8_t *val,
                                      size_t len)
{
    if (!call_is_open(call)) {
        return LG_ERR_CLOSED;
    }
    if (call->headers_sent || call->finished) {
        return LG_ERR_STATE;
    }
    return call_add_md(call, &call->init_md, key, val, len);
}

int lg_grpc_call_add_trailing_metadata(lg_grpc_call *call, const char *key, const uint8_t *val,
                                       size_t len)
{
    if (!call_is_open(call)) {
        return LG_ERR_CLOSED;
    }
    if (call->finished) {
        return LG_ERR_STATE;
    }
    return call_add_md(call, &call->trail_md, key, val, len);
}

static int call_set_status(lg_grpc_call *call, int status, const char *message)
{
    call->status = status;
    call->status_msg = NULL;
    if (!message || !message[0]) {
        return LG_OK;
    }
    struct lg_buf b;
    lg_buf_init(&b, LG_GRPC_SERVER_MAX_STATUS_MESSAGE_BYTES);
    size_t len = strlen(message);
    int rc = lg_grpc_frame_percent_encode((const uint8_t *)message, len, &b);
    if (rc == LG_ERR_TOO_LARGE) {
        /* Too long: send a cut message rather than none (a cut %XX is still decodable). */
        lg_buf_reset(&b);
        rc = lg_grpc_frame_percent_encode((const uint8_t *)message,
                                          LG_GRPC_SERVER_MAX_STATUS_MESSAGE_BYTES / 3u, &b);
    }
    if (rc == LG_OK) {
        call->status_msg = lg_arena_strndup(call->arena, (const char *)b.data, b.len);
        rc = call->status_msg ? LG_OK : LG_ERR_NOMEM;
    }
    lg_buf_deinit(&b);
    return rc;
}

/* Trailers-Only response: one HEADERS frame with END_STREAM. */
static int call_submit_trailers_only(lg_grpc_call *call, int http_status, bool accept_encoding)
{
    nghttp2_nv *nva = lg_arena_alloc(call->arena, sizeof(*nva) * (5 + srv_nv_count(call->init_md) +
                                                                  srv_nv_count(call->trail_md)));
    if (!nva) {
        return LG_ERR_NOMEM;
    }
    size_t n = 0;
    char *hs = lg_arena_alloc(call->arena, SRV_STATUS_TEXT_BYTES);
    if (!hs) {
        return LG_ERR_NOMEM;
    }
    snprintf(hs, SRV_STATUS_TEXT_BYTES, "%d", http_status);
    nva[n++] = srv_nv_str(":status", hs);
    static const nghttp2_nv ct = SRV_NV("content-type", "application/grpc");
    static const nghttp2_nv ae = SRV_NV("grpc-accept-encoding", "identity,gzip");
    nva[n++] = ct;
    if (accept_encoding) {
        nva[n++] = ae;
    }
    srv_nv_append(nva, &n, call->init_md);
    call_trailer_nv(call, nva, &n);
    int rv = nghttp2_submit_response(call->conn->h2, call->stream_id, nva, n, NULL);
    if (rv != 0) {
        return rv == NGHTTP2_ERR_NOMEM ? LG_ERR_NOMEM : LG_ERR_STATE;
    }
    call->headers_sent = true;
    call->finished = true;
    call_set_state(call, SRV_CALL_FINISHING);
    conn_schedule_flush(call->conn);
    return LG_OK;
}

int lg_grpc_call_finish(lg_grpc_call *call, int status, const char *message)
{
    if (!call_is_open(call)) {
        return LG_ERR_CLOSED;
    }
    if (call->finished) {
        return LG_ERR_STATE;
    }
    if (status < 0 || status > LG_GRPC_UNAUTHENTICATED) {
        return LG_ERR_INVALID;
    }
    int rc = call_set_status(call, status, message);
    if (rc != LG_OK) {
        return rc;
    }
    if (!call->headers_sent) {
        return call_submit_trailers_only(call, 200, false);
    }
    call->finished = true;
    call_set_state(call, SRV_CALL_FINISHING);
    call_kick(call);
    return LG_OK;
}

int lg_grpc_call_cancel(lg_grpc_call *call)
{
    if (!call_is_open(call)) {
        return LG_ERR_CLOSED;
    }
    call->cancelled_by_server = true;
    call->ended = true;
    call_set_state(call, SRV_CALL_ABORTED);
    nghttp2_submit_rst_stream(call->conn->h2, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
    conn_schedule_flush(call->conn);
    return LG_OK;
}

/* Ends a call from the runtime with an error status (Trailers-Only when nothing was sent).
 * The handler, if started, learns it through on_close(LG_GRPC_CLOSE_ERROR). */
static int call_submit_error(lg_grpc_call *call, int http_status, int grpc_status, const char *msg,
                             bool accept_encoding)
{
    struct lg_log_ctx ctx = {.conn = call->conn->id};
    lg_log(LG_LOG_INFO, &ctx, "call_error", "stream=%d path=%s http=%d grpc_status=%d msg=%s",
           (int)call->stream_id, call->path ? call->path : "-", http_status, grpc_status, msg);
    call->runtime_failed = true;
    if (call->finished) {
        /* The handler already finished; a late protocol error just resets the stream. */
        nghttp2_submit_rst_stream(call->conn->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
        call->ended = true;
        call_set_state(call, SRV_CALL_ABORTED);
        return LG_OK;
    }
    call->trail_md = NULL;
    int rc = call_set_status(call, grpc_status, msg);
    if (rc != LG_OK) {
        return rc;
    }
    if (!call->headers_sent) {
        call->init_md = NULL;
        rc = call_submit_trailers_only(call, http_status, accept_encoding);
    } else {
        call->finished = true;
        call_set_state(call, SRV_CALL_FINISHING);
        if (call->sendq) {
            evbuffer_drain(call->sendq, evbuffer_get_length(call->sendq));
        }
        call_kick(call);
    }
    call->ended = true; /* handler calls now get LG_ERR_CLOSED */
    call_set_state(call, SRV_CALL_ABORTED);
    return rc;
}

/* ---- calls: accessors ------------------------------------------------------------------- */

const uint8_t *lg_grpc_call_get_metadata(const lg_grpc_call *call, const char *key, size_t *len_out)
{
    for (const struct srv_md *m = call->md_head; m; m = m->next) {
        if (strcmp(m->key, key) == 0) {
            if (len_out) {
                *len_out = m->len;
            }
            return m->val;
        }
    }
    return NULL;
}

void lg_grpc_call_foreach_metadata(const lg_grpc_call *call, lg_grpc_metadata_cb cb,
                                   void *user_data)
{
    for (const struct srv_md *m = call->md_head; m; m = m->next) {
        cb(m->key, m->val, m->len, user_data);
    }
}

int64_t lg_grpc_call_get_deadline_ms(const lg_grpc_call *call)
{
    return call->deadline_ms;
}

int64_t lg_grpc_call_get_remaining_ms(const lg_grpc_call *call)
{
    if (call->deadline_ms < 0) {
        return -1;
    }
    int64_t left = call->deadline_ms - lg_loop_now_ms();
    return left > 0 ? left : 0;
}

const char *lg_grpc_call_get_peer(const lg_grpc_call *call)
{
    return call->conn->peer;
}

const char *lg_grpc_call_get_method(const lg_grpc_call *call)
{
    return call->method ? call->method->path : (call->path ? call->path : "");
}

lg_arena *lg_grpc_call_get_arena(lg_grpc_call *call)
{
    return call->arena;
}

uint64_t lg_grpc_call_get_conn_id(const lg_grpc_call *call)
{
    return call->conn->id;
}

int32_t lg_grpc_call_get_stream_id(const lg_grpc_call *call)
{
    return call->stream_id;
}

bool lg_grpc_call_is_cancelled(const lg_grpc_call *call)
{
    return call->ended || call->conn->closing;
}

bool lg_grpc_call_accepts_gzip(const lg_grpc_call *call)
{
    return call->accepts_gzip;
}

bool lg_grpc_call_is_request_compressed(const lg_grpc_call *call)
{
    return call->msg_compressed;
}

size_t lg_grpc_call_get_queued_bytes(const lg_grpc_call *call)
{
    return call->sendq ? evbuffer_get_length(call->sendq) : 0;
}

void *lg_grpc_call_get_user_data(const lg_grpc_call *call)
{
    return call->user_data;
}

void lg_grpc_call_set_user_data(lg_grpc_call *call, void *user_data)
{
    call->user_data = user_data;
}

lg_grpc_server *lg_grpc_call_get_server(const lg_grpc_call *call)
{
    return call->conn->srv;
}

/* ---- request side: headers --------------------------------------------------------------- */

static bool srv_eq(const uint8_t *p, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(p, lit, n) == 0;
}

/* Does a grpc-accept-encoding / grpc-encoding list contain "gzip"? */
static bool srv_list_has_gzip(const uint8_t *v, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == ',')) {
            i++;
        }
        size_t start = i;
        while (i < len && v[i] != ',' && v[i] != ' ') {
            i++;
        }
        if (srv_eq(v + start, i - start, "gzip")) {
            return true;
        }
    }
    return false;
}

struct srv_bin_ctx {
    lg_grpc_call *call;
    const char *key;
    int rc;
};

static int call_store_md(lg_grpc_call *call, const char *key, const uint8_t *val, size_t len)
{
    if (call->nmd >= LG_GRPC_SERVER_MAX_METADATA) {
        call->md_bad = true;
        return LG_OK;
    }
    struct srv_md *m = lg_arena_alloc(call->arena, sizeof(*m));
    char *v = lg_arena_strndup(call->arena, (const char *)val, len);
    if (!m || !v) {
        return LG_ERR_NOMEM;
    }
    *m = (struct srv_md){NULL, key, (const uint8_t *)v, len};
    if (call->md_tail) {
        call->md_tail->next = m;
    } else {
        call->md_head = m;
    }
    call->md_tail = m;
    call->nmd++;
    return LG_OK;
}

static int call_on_bin_value(struct lg_slice value, void *user_data)
{
    struct srv_bin_ctx *bc = user_data;
    return call_store_md(bc->call, bc->key, value.ptr ? value.ptr : (const uint8_t *)"", value.len);
}

static int call_on_metadata(lg_grpc_call *call, const uint8_t *name, size_t namelen,
                            const uint8_t *value, size_t valuelen)
{
    /* Protocol headers are not metadata (user-agent is, and stays visible to handlers). */
    if (lg_grpc_frame_is_reserved_key(name, namelen) || srv_eq(name, namelen, "te") ||
        srv_eq(name, namelen, "content-type")) {
        return LG_OK;
    }
    char *key = lg_arena_strndup(call->arena, (const char *)name, namelen);
    if (!key) {
        return LG_ERR_NOMEM;
    }
    if (!lg_grpc_frame_is_bin_key(name, namelen)) {
        return call_store_md(call, key, value, valuelen);
    }
    struct lg_buf scratch;
    lg_buf_init(&scratch, call->conn->srv->opts.max_header_list_bytes);
    struct srv_bin_ctx bc = {call, key, LG_OK};
    int rc = lg_grpc_frame_bin_decode_list(value, valuelen, &scratch, call_on_bin_value, &bc);
    lg_buf_deinit(&scratch);
    if (rc == LG_ERR_NOMEM) {
        return rc;
    }
    if (rc != LG_OK) {
        call->md_bad = true; /* bad base64: the request is refused once headers end */
    }
    return LG_OK;
}

static int srv_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *user_data)
{
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    lg_grpc_call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!call || call->headers_sent) {
        return 0; /* client trailers or an already answered stream: ignore */
    }
    /* RFC 7541 section 4.1 entry size: name + value + 32. */
    call->header_bytes += namelen + valuelen + 32u;
    if (call->header_bytes > call->conn->srv->opts.max_header_list_bytes) {
        call->hdr_too_large = true;
        return 0;
    }
    if (call->hdr_too_large) {
        return 0;
    }
    if (name[0] == ':') {
        if (srv_eq(name, namelen, ":method")) {
            call->is_post = srv_eq(value, valuelen, "POST");
        } else if (srv_eq(name, namelen, ":path")) {
            call->path = lg_arena_strndup(call->arena, (const char *)value, valuelen);
            if (!call->path) {
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
        }
        return 0;
    }
    if (srv_eq(name, namelen, "content-type")) {
        call->ct_seen = true;
        call->ct_ok = lg_grpc_frame_is_grpc_content_type(value, valuelen);
    } else if (srv_eq(name, namelen, "grpc-encoding")) {
        if (srv_eq(value, valuelen, "gzip")) {
            call->req_enc = SRV_ENC_GZIP;
        } else if (!srv_eq(value, valuelen, "identity")) {
            call->req_enc = SRV_ENC_UNSUPPORTED;
        }
    } else if (srv_eq(name, namelen, "grpc-accept-encoding")) {
        call->accepts_gzip = srv_list_has_gzip(value, valuelen);
    } else if (srv_eq(name, namelen, "grpc-timeout")) {
        uint64_t ns;
        if (lg_grpc_frame_timeout_parse(value, valuelen, &ns) != LG_OK) {
            call->timeout_bad = true;
        } else {
            uint64_t ms = ns / 1000000u + (ns % 1000000u ? 1u : 0u);
            if (ms > (uint64_t)INT32_MAX * 1000u) {
                ms = (uint64_t)INT32_MAX * 1000u; /* far future: effectively none */
            }
            call->deadline_ms = lg_loop_now_ms() + (int64_t)ms;
        }
    }
    if (call_on_metadata(call, name, namelen, value, valuelen) != LG_OK) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

static int srv_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
                                void *user_data)
{
    struct srv_conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    lg_grpc_call *call = call_new(c, frame->hd.stream_id);
    if (!call) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* refuses this stream only */
    }
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
    c->ping_strikes = 0;
    return 0;
}

static void call_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_grpc_call *call = arg;
    if (call->ended) {
        return;
    }
    call->deadline_hit = true;
    if (call->finished) {
        struct lg_log_ctx ctx = {.conn = call->conn->id};
        lg_log(LG_LOG_INFO, &ctx, "call_deadline", "stream=%d method=%s", (int)call->stream_id,
               lg_grpc_call_get_method(call));
        /* The status is out or queued behind messages the client has not taken: give up on
         * them and cancel the stream (PROTOCOL-HTTP2.md: the server cancels locally). */
        nghttp2_submit_rst_stream(call->conn->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_CANCEL);
        call->ended = true;
        call_set_state(call, SRV_CALL_ABORTED);
        conn_schedule_flush(call->conn);
        return;
    }
    /* As grpc core does: end the call with DEADLINE_EXCEEDED in the trailers (whatever is
     * still queued is dropped), so the client sees the deadline status whichever side's
     * timer fires first; RST_STREAM(NO_ERROR) follows if the client is still sending. */
    call_submit_error(call, 200, LG_GRPC_DEADLINE_EXCEEDED, "deadline exceeded", false);
}

/* The request headers are complete: validate, route and start the call. */
static int call_on_request_headers(lg_grpc_call *call)
{
    lg_grpc_server *srv = call->conn->srv;
    if (call->hdr_too_large) {
        return call_submit_error(call, 200, LG_GRPC_RESOURCE_EXHAUSTED,
                                 "request metadata too large", false);
    }
    if (!call->is_post) {
        return call_submit_error(call, 405, LG_GRPC_INTERNAL, "gRPC requires POST", false);
    }
    if (!call->ct_ok) {
        return call_submit_error(call, 415, LG_GRPC_INTERNAL, "invalid gRPC request content-type",
                                 false);
    }
    if (call->md_bad || call->timeout_bad) {
        return call_submit_error(call, 200, LG_GRPC_INTERNAL, "malformed request metadata", false);
    }
    const struct srv_method *m =
        call->path ? srv_find_method(srv, call->path, strlen(call->path)) : NULL;
    if (!m) {
        char msg[LG_GRPC_SERVER_MAX_STATUS_MESSAGE_BYTES / 4];
        snprintf(msg, sizeof(msg), "unknown method %s", call->path ? call->path : "(none)");
        return call_submit_error(call, 200, LG_GRPC_UNIMPLEMENTED, msg, false);
    }
    if (call->req_enc == SRV_ENC_UNSUPPORTED) {
        return call_submit_error(call, 200, LG_GRPC_UNIMPLEMENTED, "unsupported grpc-encoding",
                                 true);
    }
    call->method = m;
    call->user_data = m->user_data;
    /* Started by conn_dispatch once this read has been processed (lg_grpc_server.h,
     * Callbacks): a reset in the same read, or a GOAWAY nghttp2 decides on meanwhile, ends it
     * before any handler runs. */
    struct srv_conn *c = call->conn;
    call->pending = true;
    call->pend_prev = c->pend_tail;
    if (c->pend_tail) {
        c->pend_tail->pend_next = call;
    } else {
        c->pend_head = call;
    }
    c->pend_tail = call;
    return LG_OK;
}

/* Starts a routed call: its deadline timer, then the handler's on_start. Returns LG_OK (the
 * call started, or on_start refused it and it was answered) or LG_ERR_NOMEM. */
static int call_start(lg_grpc_call *call)
{
    lg_grpc_server *srv = call->conn->srv;
    const struct srv_method *m = call->method;
    if (call->deadline_ms >= 0) {
        int64_t left = call->deadline_ms - lg_loop_now_ms();
        if (left < 0) {
            left = 0;
        }
        call->deadline_ev = evtimer_new(srv->base, call_on_deadline, call);
        struct timeval tv = {(time_t)(left / 1000), (suseconds_t)((left % 1000) * 1000)};
        if (!call->deadline_ev || evtimer_add(call->deadline_ev, &tv) != 0) {
            return LG_ERR_NOMEM;
        }
    }
    if (m->cbs.on_start) {
        int rc = m->cbs.on_start(call, call->user_data);
        if (rc != LG_OK) {
            return call_submit_error(call, 200, lg_err_grpc_status(rc), lg_err_str(rc), false);
        }
    }
    call->started = true;
    if (call->stream_id > call->conn->last_started_sid) {
        call->conn->last_started_sid = call->stream_id;
    }
    call_set_state(call, SRV_CALL_STARTED);
    return LG_OK;
}

/* ---- request side: messages ------------------------------------------------------------- */

static int call_on_frame_msg(const struct lg_grpc_frame_msg *msg, void *user_data)
{
    lg_grpc_call *call = user_data;
    if (call->ended || call->finished) {
        return LG_OK; /* answered already: drain silently */
    }
    const uint8_t *p = msg->data.ptr;
    size_t len = msg->data.len;
    if (msg->compressed) {
        if (call->req_enc != SRV_ENC_GZIP) {
            return call_submit_error(call, 200, LG_GRPC_INTERNAL,
                                     "compressed message without grpc-encoding", false);
        }
        lg_buf_reset(&call->scratch);
        int rc = lg_grpc_frame_gunzip(p, len, &call->scratch);
        if (rc == LG_ERR_TOO_LARGE) {
            return call_submit_error(call, 200, LG_GRPC_RESOURCE_EXHAUSTED,
                                     "decompressed message larger than the receive limit", false);
        }
        if (rc != LG_OK) {
            return call_submit_error(call, 200, LG_GRPC_INTERNAL, "failed to decompress message",
                                     false);
        }
        p = call->scratch.data ? call->scratch.data : (const uint8_t *)"";
        len = call->scratch.len;
    }
    call->nmsgs++;
    enum lg_grpc_method_kind kind = call->method->kind;
    if (kind == LG_GRPC_UNARY || kind == LG_GRPC_SERVER_STREAMING) {
        if (call->nmsgs > 1) {
            return call_submit_error(call, 200, LG_GRPC_UNIMPLEMENTED,
                                     "more than one request message for a unary request", false);
        }
        lg_buf_reset(&call->unary_msg);
        if (len && lg_buf_append(&call->unary_msg, p, len) != LG_OK) {
            return LG_ERR_NOMEM;
        }
        call->unary_compressed = msg->compressed;
        return LG_OK;
    }
    call->msg_compressed = msg->compressed;
    call->method->cbs.on_message(call, p, len, call->user_data);
    return LG_OK;
}

/* Recounts the request bytes |call| holds (a partial message in the reader, a unary request
 * waiting for END_STREAM) into the connection total. Past LG_GRPC_SERVER_CONN_RECV_HELD_BYTES
 * the call fails RESOURCE_EXHAUSTED and its buffers go: the per-message cap alone would let
 * one connection hold max_concurrent_streams x max_recv_msg_bytes. */
static void call_account_held(lg_grpc_call *call)
{
    struct srv_conn *c = call->conn;
    size_t now = (call->reader ? lg_grpc_frame_reader_pending_len(call->reader) : 0) +
                 call->unary_msg.len + call->pending_in.len;
    c->held_bytes = c->held_bytes - call->held_bytes + now;
    call->held_bytes = now;
    if (c->held_bytes <= LG_GRPC_SERVER_CONN_RECV_HELD_BYTES || call->finished) {
        return;
    }
    call_submit_error(call, 200, LG_GRPC_RESOURCE_EXHAUSTED,
                      "connection receive buffer limit exceeded", false);
    lg_grpc_frame_reader_free(call->reader);
    call->reader = NULL;
    lg_buf_deinit(&call->unary_msg);
    lg_buf_deinit(&call->pending_in);
    c->held_bytes -= call->held_bytes;
    call->held_bytes = 0;
}

/* Request DATA for a started call: reassembles messages and delivers them. */
static void call_on_data(lg_grpc_call *call, const uint8_t *data, size_t len)
{
    if (call->ended || call->finished) {
        return;
    }
    if (!call->reader && lg_grpc_frame_reader_new(
                             &call->reader, call->conn->srv->opts.max_recv_msg_bytes) != LG_OK) {
        call_submit_error(call, 200, LG_GRPC_RESOURCE_EXHAUSTED, "out of memory", false);
        return;
    }
    int rc = lg_grpc_frame_reader_feed(call->reader, data, len, call_on_frame_msg, call);
    call_account_held(call);
    if (rc == LG_ERR_TOO_LARGE) {
        call_submit_error(call, 200, LG_GRPC_RESOURCE_EXHAUSTED, "received message larger than max",
                          false);
    } else if (rc == LG_ERR_MALFORMED) {
        call_submit_error(call, 200, LG_GRPC_INTERNAL, "malformed message frame", false);
    } else if (rc == LG_ERR_NOMEM) {
        call_submit_error(call, 200, LG_GRPC_RESOURCE_EXHAUSTED, "out of memory", false);
    }
}

static int srv_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                             const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    lg_grpc_call *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!call || call->ended || call->finished) {
        return 0;
    }
    if (call->pending) {
        /* Held until conn_dispatch starts the call, within the connection's held bytes. */
        int rc = lg_buf_append(&call->pending_in, data, len);
        if (rc != LG_OK) {
            call_submit_error(
                call, 200, LG_GRPC_RESOURCE_EXHAUSTED,
                rc == LG_ERR_NOMEM ? "out of memory" : "received message larger than max", false);
            return 0;
        }
        call_account_held(call);
        return 0;
    }
    if (call->started) {
        call_on_data(call, data, len);
    }
    return 0;
}

/* Delivers the client's half-close (already recorded in call->half_closed) to a started call. */
static void call_deliver_half_close(lg_grpc_call *call)
{
    if (!call->started || call->ended || call->finished) {
        return;
    }
    if (call->reader && lg_grpc_frame_reader_finish(call->reader) != LG_OK) {
        call_submit_error(call, 200, LG_GRPC_INTERNAL, "request stream ended inside a message",
                          false);
        return;
    }
    enum lg_grpc_method_kind kind = call->method->kind;
    if (kind == LG_GRPC_UNARY || kind == LG_GRPC_SERVER_STREAMING) {
        if (call->nmsgs != 1) {
            call_submit_error(call, 200, LG_GRPC_UNIMPLEMENTED,
                              "expected exactly one request message", false);
            return;
        }
        const uint8_t *p = call->unary_msg.data ? call->unary_msg.data : (const uint8_t *)"";
        call->msg_compressed = call->unary_compressed;
        call->method->cbs.on_message(call, p, call->unary_msg.len, call->user_data);
        return;
    }
    if (call->method->cbs.on_half_close) {
        call->method->cbs.on_half_close(call, call->user_data);
    }
}

/* The client half-closed (END_STREAM on DATA or HEADERS); a pending call learns it when it
 * starts. */
static void call_on_half_close(lg_grpc_call *call)
{
    call->half_closed = true;
    call_deliver_half_close(call);
}

static void conn_send_final_goaway(struct srv_conn *c);

static void conn_on_client_ping(struct srv_conn *c)
{
    lg_grpc_server *srv = c->srv;
    int64_t now = lg_loop_now_ms();
    if (c->calls == NULL && c->last_client_ping_ms > 0 &&
        now - c->last_client_ping_ms < (int64_t)srv->opts.min_ping_interval_ms) {
        c->ping_strikes++;
        if (c->ping_strikes > srv->opts.max_ping_strikes && !c->calm) {
            c->calm = true; /* one GOAWAY, not one per PING of the flood */
            static const char reason[] = "too_many_pings";
            lg_log(LG_LOG_WARN, SRV_CTX(c), "ping_flood", "peer=%s strikes=%u", c->peer,
                   c->ping_strikes);
            nghttp2_submit_goaway(
                c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)reason, sizeof(reason) - 1);
            c->close_after_write = true;
        }
    }
    c->last_client_ping_ms = now;
}

/* The client reset a call that was about to start or running (see srv_on_frame_recv): one
 * token of the connection's reset budget (rapid reset, CVE-2023-44487: without it
 * HEADERS+RST_STREAM pairs start calls without ever holding a concurrency slot; calls reset in
 * the read that brought them never start, but still mark the pattern). With the budget spent, the
 * connection gets GOAWAY(ENHANCE_YOUR_CALM) naming the last started stream; nghttp2 ignores the
 * rest of its input, refuses the streams above it when the GOAWAY goes out (conn_dispatch never
 * starts them) and the connection closes. Called from nghttp2's receive path, before the stream
 * is closed. */
static void conn_on_client_reset(struct srv_conn *c)
{
    const struct lg_grpc_server_opts *o = &c->srv->opts;
    if (c->calm) {
        return;
    }
    c->client_resets++;
    int64_t now = lg_loop_now_ms();
    uint64_t cap = (uint64_t)o->max_client_resets * SRV_RESET_TOKEN;
    if (now > c->reset_refill_ms) {
        uint64_t add = (uint64_t)(now - c->reset_refill_ms) * o->client_resets_per_sec;
        c->reset_tokens = c->reset_tokens + add < cap ? c->reset_tokens + add : cap;
        c->reset_refill_ms = now;
    }
    if (c->reset_tokens >= SRV_RESET_TOKEN) {
        c->reset_tokens -= SRV_RESET_TOKEN;
        return;
    }
    c->calm = true;
    lg_log(LG_LOG_WARN, SRV_CTX(c), "rapid_reset", "peer=%s resets=%" PRIu64 " last_stream=%d",
           c->peer, c->client_resets, (int)c->last_started_sid);
    int rv =
        nghttp2_session_terminate_session2(c->h2, c->last_started_sid, NGHTTP2_ENHANCE_YOUR_CALM);
    if (rv != 0) {
        c->close_after_write = true;
    }
}

static int srv_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct srv_conn *c = user_data;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA: {
        lg_grpc_call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        if (!call) {
            return 0;
        }
        if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            int rc = call_on_request_headers(call);
            if (rc == LG_ERR_NOMEM) {
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
        }
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            call_on_half_close(call);
        }
        break;
    }
    case NGHTTP2_RST_STREAM: {
        c->rst_frames++;
        lg_grpc_call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
        /* A reset before the call could start (it came in the read that brought the
         * headers: the blind rapid-reset pattern), or of a running call whose method is not
         * exempt. Not: resets of finished calls, of exempt methods' calls (a proxy's readers
         * going away), or of streams without a call. */
        if (call && !call->ended && !call->finished &&
            (call->pending || (call->started && !call->method->reset_exempt))) {
            conn_on_client_reset(c);
        }
        break;
    }
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            c->ping_outstanding = false;
            if (c->shutdown_notice_sent && !c->final_goaway_sent) {
                conn_send_final_goaway(c);
            }
        } else {
            conn_on_client_ping(c);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int srv_on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct srv_conn *c = user_data;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        /* Also nghttp2's own (reset rate limit, floods): conn_dispatch starts no call above
         * the last-stream-id. nghttp2 closes those streams (REFUSED_STREAM) right after this. */
        int32_t last = frame->goaway.last_stream_id;
        if (last < c->goaway_last_sid) {
            c->goaway_last_sid = last;
        }
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
            lg_log(LG_LOG_INFO, SRV_CTX(c), "goaway_sent", "peer=%s error=%u last_stream=%d",
                   c->peer, frame->goaway.error_code, (int)last);
        }
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        return 0;
    }
    lg_grpc_call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!call) {
        return 0;
    }
    call->trailers_sent = true;
    if (call->state != SRV_CALL_ABORTED) {
        call_set_state(call, SRV_CALL_DONE);
    }
    if (!call->half_closed) {
        /* Early trailers: tell the client we want no more request data. */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int srv_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                               void *user_data)
{
    (void)user_data;
    lg_grpc_call *call = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!call) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    call_end(call, call_reason(call, error_code));
    return 0;
}

/* ---- connection I/O --------------------------------------------------------------------- */

static ssize_t srv_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                        void *user_data)
{
    (void)session;
    (void)flags;
    struct srv_conn *c = user_data;
    struct evbuffer *out = c->out;
    if (evbuffer_get_length(out) >= LG_GRPC_SERVER_OUTBUF_HIGH_BYTES) {
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    if (evbuffer_add(out, data, length) != 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t)length;
}

static int srv_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                         size_t length, nghttp2_data_source *source, void *user_data)
{
    (void)session;
    (void)frame;
    struct srv_conn *c = user_data;
    lg_grpc_call *call = source->ptr;
    struct evbuffer *out = c->out;
    if (evbuffer_get_length(out) >= LG_GRPC_SERVER_OUTBUF_HIGH_BYTES) {
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    if (evbuffer_add(out, framehd, SRV_FRAME_HEADER_BYTES) != 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    /* Moves whole chains where it can, so message bytes are not copied again. */
    if (length && evbuffer_remove_buffer(call->sendq, out, length) != (int)length) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int srv_setup_h2(lg_grpc_server *srv)
{
    if (nghttp2_session_callbacks_new(&srv->h2cbs) != 0) {
        return LG_ERR_NOMEM;
    }
    nghttp2_session_callbacks *cb = srv->h2cbs;
    nghttp2_session_callbacks_set_send_callback(cb, srv_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, srv_send_data);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, srv_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, srv_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, srv_on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, srv_on_stream_close);
    if (nghttp2_option_new(&srv->h2opt) != 0) {
        nghttp2_session_callbacks_del(srv->h2cbs);
        return LG_ERR_NOMEM;
    }
    /* Bound the reserved stream and closed-stream bookkeeping nghttp2 keeps. */
    nghttp2_option_set_no_closed_streams(srv->h2opt, 1);
    nghttp2_option_set_max_deflate_dynamic_table_size(srv->h2opt, 4096);
    /* Every RST_STREAM frame (CVE-2023-44487 fix); resets of running calls have our own,
     * tighter budget (conn_on_client_reset). */
    nghttp2_option_set_stream_reset_rate_limit(srv->h2opt, srv->opts.max_stream_resets,
                                               srv->opts.stream_resets_per_sec);
    return LG_OK;
}

static bool conn_flush(struct srv_conn *c);
static void conn_service(struct srv_conn *c);

static void conn_on_flush_ev(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct srv_conn *c = arg;
    c->flush_pending = false;
    conn_service(c);
}

static void conn_schedule_flush(struct srv_conn *c)
{
    /* Inside conn_on_read the flush follows the input anyway: no extra event. */
    if (!c->flush_pending && !c->closing && !c->in_read) {
        c->flush_pending = true;
        event_active(c->flush_ev, 0, 0);
    }
}

/* Gives on_writable to calls whose queue has drained below half its bound. */
static void conn_notify_writable(struct srv_conn *c)
{
    size_t low = c->srv->opts.call_send_queue_bytes / 2u;
    lg_grpc_call *call = c->calls;
    while (call && c->writable_waiters > 0) {
        lg_grpc_call *next = call->next;
        if (call->want_writable && !call->ended && evbuffer_get_length(call->sendq) <= low) {
            call->want_writable = false;
            c->writable_waiters--;
            if (call->method->cbs.on_writable) {
                call->method->cbs.on_writable(call, call->user_data);
            }
        }
        call = next;
    }
}

/* A socket error that means "try again later" (libevent keeps its own test internal). */
static bool srv_is_retriable(int err)
{
#if EAGAIN == EWOULDBLOCK
    return err == EAGAIN || err == EINTR;
#else
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
#endif
}

/* Writes what nghttp2 produced straight to the socket, in this loop turn: a response costs
 * one write(2) instead of arming EV_WRITE and waiting for the next epoll round (what a
 * bufferevent would do). What the kernel does not take waits for EV_WRITE. Returns LG_OK, or
 * LG_ERR_IO when the socket failed (the caller closes the connection). */
static int conn_write(struct srv_conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);
        if (n < 0) {
            int err = EVUTIL_SOCKET_ERROR();
            if (srv_is_retriable(err)) {
                break;
            }
            lg_log(LG_LOG_DEBUG, SRV_CTX(c), "write_failed", "peer=%s errno=%d", c->peer, err);
            return LG_ERR_IO;
        }
        if (n == 0) {
            break;
        }
    }
    if (evbuffer_get_length(c->out) > 0) {
        if (!event_pending(c->wev, EV_WRITE, NULL)) {
            event_add(c->wev, NULL);
        }
    } else if (event_pending(c->wev, EV_WRITE, NULL)) {
        event_del(c->wev);
    }
    return LG_OK;
}

/* Returns false when the connection was closed (and |c| freed). */
static bool conn_flush(struct srv_conn *c)
{
    if (c->closing) {
        return false;
    }
    /* Each round lets nghttp2 fill the output up to the high mark, then writes it. Bounded
     * (redis NET_MAX_WRITES_PER_EVENT), so one fast stream cannot starve other connections;
     * the rest continues from EV_WRITE. */
    for (int round = 0; round < LG_GRPC_SERVER_MAX_WRITE_ROUNDS; round++) {
        int rv = nghttp2_session_send(c->h2);
        if (rv != 0) {
            lg_log(LG_LOG_WARN, SRV_CTX(c), "h2_send_failed", "err=%s", nghttp2_strerror(rv));
            conn_close(c);
            return false;
        }
        if (conn_write(c) != LG_OK) {
            c->close_reason = LG_GRPC_CLOSE_CONN_LOST;
            conn_close(c);
            return false;
        }
        if (c->writable_waiters > 0) {
            conn_notify_writable(c);
        }
        if (evbuffer_get_length(c->out) > 0 || !nghttp2_session_want_write(c->h2)) {
            break;
        }
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) {
        c->close_after_write = true;
    }
    if (c->close_after_write && evbuffer_get_length(c->out) == 0) {
        conn_close(c);
        return false;
    }
    return true;
}

/* Starts a pending call (conn_dispatch): on_start, then the DATA and half-close that arrived
 * with its headers. */
static void call_dispatch(lg_grpc_call *call)
{
    struct srv_conn *c = call->conn;
    call_unpend(call);
    if (call->ended || call->finished) {
        return; /* answered while pending (an error status): no handler */
    }
    if (call->stream_id > c->goaway_last_sid) {
        /* nghttp2 closes these when the GOAWAY goes out; never start one regardless. */
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, call->stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        call->ended = true;
        call_set_state(call, SRV_CALL_ABORTED);
        return;
    }
    if (call_start(call) != LG_OK) {
        call_submit_error(call, 200, LG_GRPC_RESOURCE_EXHAUSTED, "out of memory", false);
        return;
    }
    if (call->pending_in.len > 0) {
        struct lg_buf in = call->pending_in; /* moved out: call_on_data recounts held bytes */
        lg_buf_init(&call->pending_in, in.max);
        call_on_data(call, in.data, in.len);
        lg_buf_deinit(&in);
    }
    call_account_held(call);
    if (call->half_closed) {
        call_deliver_half_close(call);
    }
}

/* Starts the calls whose headers arrived (call_on_request_headers), once nghttp2 has sent
 * every frame it queued while reading them: a GOAWAY among those (its reset rate limit, a
 * flood) has then gone out, nghttp2 has closed the streams above its last-stream-id, and
 * those calls never start. Streams the client reset meanwhile are gone too. While the output
 * is full (frames still queued) the calls wait for conn_on_write; after our own GOAWAY
 * (c->calm) none starts. */
static void conn_dispatch(struct srv_conn *c)
{
    if (!c->pend_head || c->closing || c->calm) {
        return;
    }
    if (nghttp2_session_send(c->h2) != 0 || nghttp2_session_get_outbound_queue_size(c->h2) > 0) {
        return; /* a failed send closes the connection in conn_flush */
    }
    while (c->pend_head && !c->calm && !c->closing) {
        call_dispatch(c->pend_head);
    }
}

/* After input or output: start what is ready, then flush. Handlers' writes during the
 * dispatch fold into this flush. */
static void conn_service(struct srv_conn *c)
{
    c->in_read = true;
    conn_dispatch(c);
    c->in_read = false;
    if (!conn_flush(c)) {
        return;
    }
    if (c->pend_head && !c->calm && nghttp2_session_get_outbound_queue_size(c->h2) == 0) {
        conn_schedule_flush(c); /* the output drained within the flush: start them next turn */
    }
}

/* Before the first nghttp2 input: an HTTP/1.x request line gets a plain-text 505 and the
 * connection closes. Returns true when the input was handled here. */
static bool conn_check_preface(struct srv_conn *c)
{
    size_t have = evbuffer_get_length(c->in);
    size_t n = have < SRV_PREFACE_LEN ? have : SRV_PREFACE_LEN;
    const uint8_t *p = evbuffer_pullup(c->in, (ev_ssize_t)n);
    if (p && memcmp(p, SRV_PREFACE, n) != 0) {
        /* Not HTTP/2. Anything but HTTP/1.x is refused by nghttp2 (GOAWAY PROTOCOL_ERROR). */
        bool http1 = n >= 4 && p[0] >= 'A' && p[0] <= 'Z' &&
                     evbuffer_search(c->in, " HTTP/1.", 8, NULL).pos >= 0;
        if (http1) {
            lg_log(LG_LOG_INFO, SRV_CTX(c), "http1_refused", "peer=%s", c->peer);
            evbuffer_drain(c->in, have);
            evbuffer_add(c->out, SRV_HTTP1_REPLY, sizeof(SRV_HTTP1_REPLY) - 1);
            c->close_after_write = true;
            event_del(c->rev);
            if (conn_write(c) != LG_OK || evbuffer_get_length(c->out) == 0) {
                conn_close(c);
            }
            return true;
        }
    }
    if (n < SRV_PREFACE_LEN && p && memcmp(p, SRV_PREFACE, n) == 0) {
        return true; /* wait for the whole preface */
    }
    c->preface_checked = true;
    return false;
}

/* Feeds the input to nghttp2 without copying it (evbuffer_peek), then drains it. */
static void conn_feed(struct srv_conn *c)
{
    struct evbuffer_iovec v[LG_GRPC_SERVER_READ_IOVECS];
    while (evbuffer_get_length(c->in) > 0) {
        int nv = evbuffer_peek(c->in, -1, NULL, v, LG_GRPC_SERVER_READ_IOVECS);
        if (nv > LG_GRPC_SERVER_READ_IOVECS) {
            nv = LG_GRPC_SERVER_READ_IOVECS;
        }
        size_t consumed = 0;
        for (int i = 0; i < nv; i++) {
            ssize_t rv = nghttp2_session_mem_recv(c->h2, v[i].iov_base, v[i].iov_len);
            if (rv < 0) {
                lg_log(LG_LOG_INFO, SRV_CTX(c), "h2_recv_failed", "peer=%s err=%s", c->peer,
                       nghttp2_strerror((int)rv));
                evbuffer_drain(c->in, evbuffer_get_length(c->in));
                if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
                    nghttp2_session_terminate_session(c->h2, NGHTTP2_PROTOCOL_ERROR);
                }
                c->close_after_write = true;
                event_del(c->rev);
                return;
            }
            consumed += (size_t)rv;
        }
        evbuffer_drain(c->in, consumed);
    }
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct srv_conn *c = arg;
    /* At most LG_GRPC_SERVER_INBUF_HIGH_BYTES per event: the read high watermark. */
    int n = evbuffer_read(c->in, fd, (int)LG_GRPC_SERVER_INBUF_HIGH_BYTES);
    if (n <= 0) {
        int err = EVUTIL_SOCKET_ERROR();
        if (n < 0 && srv_is_retriable(err)) {
            return;
        }
        lg_log(LG_LOG_DEBUG, SRV_CTX(c), "conn_eof", "peer=%s errno=%d", c->peer, n < 0 ? err : 0);
        c->close_reason = LG_GRPC_CLOSE_CONN_LOST;
        conn_close(c);
        return;
    }
    c->last_activity_ms = lg_loop_now_ms();
    if (!c->preface_checked && conn_check_preface(c)) {
        return;
    }
    c->in_read = true;
    conn_feed(c);
    c->in_read = false;
    conn_service(c);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct srv_conn *c = arg;
    if (conn_write(c) != LG_OK) {
        c->close_reason = LG_GRPC_CLOSE_CONN_LOST;
        conn_close(c);
        return;
    }
    if (c->close_after_write && evbuffer_get_length(c->out) == 0) {
        conn_close(c);
        return;
    }
    if (c->preface_checked && evbuffer_get_length(c->out) == 0 &&
        (nghttp2_session_want_write(c->h2) || c->pend_head)) {
        conn_service(c);
    }
}

static void conn_on_keepalive(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct srv_conn *c = arg;
    int64_t now = lg_loop_now_ms();
    if (c->ping_outstanding) {
        lg_log(LG_LOG_INFO, SRV_CTX(c), "keepalive_timeout", "peer=%s", c->peer);
        c->close_reason = LG_GRPC_CLOSE_CONN_LOST;
        conn_close(c);
        return;
    }
    int64_t idle = now - c->last_activity_ms;
    struct timeval tv;
    if (idle >= (int64_t)c->srv->opts.keepalive_time_ms) {
        nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL);
        c->ping_outstanding = true;
        conn_schedule_flush(c);
        tv.tv_sec = (time_t)(c->srv->opts.keepalive_timeout_ms / 1000u);
        tv.tv_usec = (suseconds_t)((c->srv->opts.keepalive_timeout_ms % 1000u) * 1000u);
    } else {
        int64_t left = (int64_t)c->srv->opts.keepalive_time_ms - idle;
        tv.tv_sec = (time_t)(left / 1000);
        tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
    }
    evtimer_add(c->keepalive_ev, &tv);
}

static void conn_close(struct srv_conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    lg_grpc_server *srv = c->srv;
    size_t ncalls = 0;
    for (const lg_grpc_call *call = c->calls; call; call = call->next) {
        ncalls++;
    }
    lg_log(LG_LOG_DEBUG, SRV_CTX(c), "conn_close",
           "peer=%s calls=%zu reason=%d client_resets=%" PRIu64 " rst_frames=%" PRIu64
           " age_ms=%" PRId64,
           c->peer, ncalls, (int)c->close_reason, c->client_resets, c->rst_frames,
           lg_loop_now_ms() - c->opened_ms);
    while (c->calls) {
        lg_grpc_call *call = c->calls;
        nghttp2_session_set_stream_user_data(c->h2, call->stream_id, NULL);
        enum lg_grpc_close_reason r = c->close_reason;
        if (call->deadline_hit) {
            r = LG_GRPC_CLOSE_DEADLINE;
        } else if (r == LG_GRPC_CLOSE_FINISHED && !call->trailers_sent) {
            /* A close after a GOAWAY (ours: ping or reset abuse; nghttp2's) cuts this call. */
            r = LG_GRPC_CLOSE_CONN_LOST;
        }
        call_end(call, r);
    }
    nghttp2_session_del(c->h2);
    event_free(c->rev);
    event_free(c->wev);
    evbuffer_free(c->in);
    evbuffer_free(c->out);
    evutil_closesocket(c->fd);
    event_free(c->flush_ev);
    if (c->keepalive_ev) {
        event_free(c->keepalive_ev);
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    srv->nconns--;
    lg_free(c);
    if (srv->shutting_down && srv->nconns == 0 && srv->done_cb) {
        event_active(srv->done_ev, 0, 0);
    }
}

static int conn_init_h2(struct srv_conn *c)
{
    const struct lg_grpc_server_opts *o = &c->srv->opts;
    if (nghttp2_session_server_new2(&c->h2, c->srv->h2cbs, c, c->srv->h2opt) != 0) {
        return LG_ERR_NOMEM;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->initial_stream_window_bytes},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, o->max_header_list_bytes},
    };
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0 ||
        nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)o->initial_conn_window_bytes) != 0) {
        return LG_ERR_NOMEM;
    }
    return LG_OK;
}

/* Sets up a connection on |fd| (non-blocking, connected). Returns LG_OK (|fd| is owned by
 * the connection), LG_ERR_UNAVAILABLE (shutting down or at the connection limit) or
 * LG_ERR_NOMEM; on error |fd| is still the caller's. */
static int conn_adopt(lg_grpc_server *srv, int fd, const char *peer)
{
    if (srv->shutting_down || srv->nconns >= srv->opts.max_connections) {
        lg_log(LG_LOG_WARN, NULL, "conn_refused", "conns=%zu shutting_down=%d", srv->nconns,
               (int)srv->shutting_down);
        return LG_ERR_UNAVAILABLE;
    }
    struct srv_conn *c = lg_calloc(1, sizeof(*c));
    if (!c) {
        return LG_ERR_NOMEM;
    }
    c->srv = srv;
    c->id = srv->next_conn_id++;
    c->last_activity_ms = lg_loop_now_ms();
    c->reset_tokens = (uint64_t)srv->opts.max_client_resets * SRV_RESET_TOKEN;
    c->reset_refill_ms = c->last_activity_ms;
    c->opened_ms = c->last_activity_ms;
    c->goaway_last_sid = INT32_MAX;
    snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "unknown");
    c->fd = fd;
    c->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, conn_on_read, c);
    c->wev = event_new(srv->base, fd, EV_WRITE, conn_on_write, c);
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->flush_ev = event_new(srv->base, -1, 0, conn_on_flush_ev, c);
    if (!c->rev || !c->wev || !c->in || !c->out || !c->flush_ev || conn_init_h2(c) != LG_OK) {
        goto out_free_conn;
    }
    if (srv->opts.keepalive_time_ms > 0) {
        c->keepalive_ev = evtimer_new(srv->base, conn_on_keepalive, c);
        struct timeval tv = {(time_t)(srv->opts.keepalive_time_ms / 1000u),
                             (suseconds_t)((srv->opts.keepalive_time_ms % 1000u) * 1000u)};
        if (!c->keepalive_ev || evtimer_add(c->keepalive_ev, &tv) != 0) {
            goto out_free_conn;
        }
    }
    if (event_add(c->rev, NULL) != 0) {
        goto out_free_conn;
    }
    c->next = srv->conns;
    if (srv->conns) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    srv->nconns++;
    lg_log(LG_LOG_DEBUG, SRV_CTX(c), "conn_open", "peer=%s", c->peer);
    /* Our SETTINGS (the server connection preface) go out with the first answer to the
     * client's preface, so that an HTTP/1.x client gets a plain HTTP/1.1 answer instead. */
    return LG_OK;

out_free_conn:
    lg_log(LG_LOG_WARN, NULL, "conn_setup_failed", "peer=%s", c->peer);
    if (c->h2) {
        nghttp2_session_del(c->h2);
    }
    if (c->keepalive_ev) {
        event_free(c->keepalive_ev);
    }
    if (c->flush_ev) {
        event_free(c->flush_ev);
    }
    if (c->rev) {
        event_free(c->rev);
    }
    if (c->wev) {
        event_free(c->wev);
    }
    if (c->in) {
        evbuffer_free(c->in);
    }
    if (c->out) {
        evbuffer_free(c->out);
    }
    lg_free(c);
    return LG_ERR_NOMEM;
}

static void srv_on_accept(int fd, const struct sockaddr *peer, int peer_len, void *user_data)
{
    (void)peer_len;
    lg_grpc_server *srv = user_data;
    char name[SRV_PEER_BYTES];
    if (lg_loop_format_addr(peer, name, sizeof(name)) != LG_OK) {
        snprintf(name, sizeof(name), "unknown");
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (conn_adopt(srv, fd, name) != LG_OK) {
        evutil_closesocket(fd);
    }
}

int lg_grpc_server_adopt_fd(lg_grpc_server *srv, int fd, const char *peer)
{
    if (fd < 0 || evutil_make_socket_nonblocking(fd) != 0) {
        return LG_ERR_INVALID;
    }
    return conn_adopt(srv, fd, peer);
}

int lg_grpc_server_listen(lg_grpc_server *srv, const char *hostport, char *bound, size_t boundlen)
{
    if (srv->nlisteners >= LG_GRPC_SERVER_MAX_LISTENERS) {
        return LG_ERR_EXHAUSTED;
    }
    lg_loop_listener *l;
    int rc = lg_loop_listen(&l, srv->base, hostport, LG_GRPC_SERVER_LISTEN_BACKLOG, srv_on_accept,
                            srv, bound, boundlen);
    if (rc != LG_OK) {
        return rc;
    }
    srv->listeners[srv->nlisteners++] = l;
    return LG_OK;
}

/* ---- graceful shutdown ------------------------------------------------------------------ */

static void conn_send_final_goaway(struct srv_conn *c)
{
    c->final_goaway_sent = true;
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
    conn_schedule_flush(c);
}

static void srv_on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_grpc_server *srv = arg;
    lg_log(LG_LOG_INFO, NULL, "drain_deadline", "conns=%zu calls=%zu", srv->nconns, srv->ncalls);
    while (srv->conns) {
        srv->conns->close_reason = LG_GRPC_CLOSE_SHUTDOWN;
        conn_close(srv->conns);
    }
}

void lg_grpc_server_shutdown(lg_grpc_server *srv, uint32_t drain_ms, lg_grpc_server_done_cb done,
                             void *user_data)
{
    if (srv->shutting_down) {
        return;
    }
    srv->shutting_down = true;
    srv->done_cb = done;
    srv->done_ud = user_data;
    lg_log(LG_LOG_INFO, NULL, "shutdown_begin", "conns=%zu calls=%zu", srv->nconns, srv->ncalls);
    for (size_t i = 0; i < srv->nhooks; i++) {
        srv->hooks[i].cb(srv, srv->hooks[i].user_data);
    }
    /* Close the listening sockets: new connections are refused at once (a disabled listener
     * would leave them waiting in the backlog until the process exits). */
    for (size_t i = 0; i < srv->nlisteners; i++) {
        lg_loop_listener_free(srv->listeners[i]);
        srv->listeners[i] = NULL;
    }
    srv->nlisteners = 0;
    for (struct srv_conn *c = srv->conns; c; c = c->next) {
        c->close_reason = LG_GRPC_CLOSE_SHUTDOWN;
        c->shutdown_notice_sent = true;
        /* GOAWAY with last-stream-id 2^31-1 (grpc proposal A9): no new streams, please. */
        nghttp2_submit_shutdown_notice(c->h2);
        /* The PING's ack tells us the client has seen the notice: then the real GOAWAY. */
        nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL);
        conn_schedule_flush(c);
    }
    if (srv->nconns == 0) {
        if (done) {
            event_active(srv->done_ev, 0, 0);
        }
        return;
    }
    uint32_t ms = drain_ms ? drain_ms : srv->opts.drain_ms;
    srv->drain_ev = evtimer_new(srv->base, srv_on_drain_deadline, srv);
    struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u)};
    if (!srv->drain_ev || evtimer_add(srv->drain_ev, &tv) != 0) {
        srv_on_drain_deadline(-1, 0, srv);
    }
}
