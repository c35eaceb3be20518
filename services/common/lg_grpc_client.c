/* SPDX-License-Identifier: Apache-2.0 */
#define LG_LOG_MODULE "grpc_client"
#include "lg_grpc_client.h"

#include <arpa/inet.h>
#include <assert.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <nghttp2/nghttp2.h>

#include "lg_buf.h"
#include "lg_cfg.h"
#include "lg_err.h"
#include "lg_grpc_frame.h"
#include "lg_limits.h"
#include "lg_log.h"
#include "lg_mem.h"
#include "lg_time.h"

/* Longest host name we keep (RFC 1035: 253 characters plus a NUL, rounded). */
#define CLIENT_MAX_HOST_BYTES 256
/* Per-call arena: request metadata copies, response metadata copies and the status
 * message. Bounded by both header lists plus slack for the arena's chunk rounding. The chunk
 * is small because a typical call's metadata fits in a few hundred bytes, and an idle SSE
 * stream holds one call open for minutes: with 4 KiB chunks the arena was about half of an
 * idle stream's heap (measured with 10k-50k idle streams through llmgate-sse); 512 bytes
 * brought the adapter to 5.7 KiB per idle stream at 10k. Bigger metadata just takes more
 * chunks. */
#define CLIENT_ARENA_CHUNK_BYTES 512u
#define CLIENT_ARENA_MAX_BYTES   (4u * LG_GRPC_CLIENT_MAX_HEADER_LIST_BYTES)
/* Longest grpc-message we keep; longer ones are cut (they only ever carry a reason). */
#define CLIENT_MAX_STATUS_MESSAGE_BYTES LG_GRPC_CLIENT_MAX_HEADER_LIST_BYTES
/* Request headers we always send (:method :scheme :path :authority te content-type
 * user-agent grpc-accept-encoding grpc-encoding grpc-timeout). */
#define CLIENT_FIXED_HEADERS 10
/* HTTP :status values (RFC 9110) the HTTP-to-gRPC mapping needs. */
#define HTTP_OK                200
#define HTTP_INFORMATIONAL_MIN 100
#define HTTP_INFORMATIONAL_MAX 199
#define HTTP_BAD_REQUEST       400
#define HTTP_UNAUTHORIZED      401
#define HTTP_FORBIDDEN         403
#define HTTP_NOT_FOUND         404
#define HTTP_TOO_MANY_REQUESTS 429
#define HTTP_BAD_GATEWAY       502
#define HTTP_UNAVAILABLE       503
#define HTTP_GATEWAY_TIMEOUT   504
#define HTTP_STATUS_DIGITS     3
/* Milliseconds and nanoseconds per second, for timeval and grpc-timeout conversions. */
#define MS_PER_S     1000
#define US_PER_MS    1000
#define NS_PER_MS    1000000u
#define PCT          100u
#define DECIMAL_BASE 10
/* Metadata entries allocated for the first header block; doubled as needed (bounded by
 * LG_GRPC_CLIENT_MAX_HEADER_LIST_BYTES, as every entry costs at least 32 bytes there). */
#define CLIENT_MD_INITIAL_CAP 8

_Static_assert(LG_GRPC_FRAME_DEFAULT_MAX_MESSAGE_BYTES <= LG_GRPC_CLIENT_MAX_RECV_MSG_BYTES_HARD,
               "the default receive limit is within the hard maximum");
_Static_assert(LG_GRPC_CLIENT_BACKOFF_INITIAL_MS <= LG_GRPC_CLIENT_BACKOFF_MAX_MS,
               "backoff starts below its cap");

enum call_state {
    CALL_QUEUED = 0, /* in c->pending: waiting for a connection or a stream slot */
    CALL_ACTIVE = 1, /* in c->active: has an HTTP/2 stream on c->conn */
    CALL_DONE = 2,   /* in c->done: status fixed, on_close pending (next kick) */
};

struct lg_grpc_client_call {
    TAILQ_ENTRY(lg_grpc_client_call) link; /* in exactly one of pending/active/done */
    lg_grpc_client *client;
    enum call_state state;
    struct lg_grpc_client_call_cbs cbs;
    void *user_data;
    enum lg_grpc_client_kind kind;
    int32_t stream_id;            /* 0 until submitted */
    struct client_stream *stream; /* nghttp2's handle while ACTIVE, else NULL */
    bool retried;                 /* already retried once after REFUSED_STREAM / GOAWAY */
    bool wait_for_ready;          /* stays queued through failed dials (until its deadline) */
    char *path;                   /* arena */
    nghttp2_nv *req_nv;           /* request headers, arena; values live in the arena */
    size_t req_nv_count;
    size_t req_timeout_nv;     /* index of grpc-timeout in req_nv, or SIZE_MAX */
    int64_t deadline_ms;       /* absolute monotonic ms, or -1 */
    struct event *deadline_ev; /* NULL without a deadline */
    struct lg_buf req;         /* framed request (prefix + payload) */
    size_t req_off;            /* bytes of |req| handed to nghttp2 */
    lg_arena *arena;           /* header copies; freed with the call */
    lg_grpc_frame_reader *reader;
    struct lg_buf inflated; /* scratch for decompressing one message */
    struct lg_buf scratch;  /* scratch for base64 decoding */
    /* Response header block being received. */
    struct lg_grpc_client_md *md; /* lg_realloc'd array */
    size_t md_count;
    size_t md_cap;
    size_t hdr_bytes; /* header list size of the current block */
    int http_status;  /* :status of the current block, 0 if none */
    bool ct_ok;       /* content-type of the block is application/grpc */
    bool have_grpc_status;
    int grpc_status;
    struct lg_slice grpc_message; /* raw (still percent-encoded), arena */
    bool got_headers;             /* final response headers received */
    bool gzip_response;           /* grpc-encoding: gzip */
    bool unknown_encoding;        /* grpc-encoding other than identity/gzip */
    uint64_t msgs;                /* response messages delivered */
    uint64_t compressed_msgs;     /* of which had the compressed flag */
    bool paused;                  /* lg_grpc_client_call_set_paused(true) */
    size_t unconsumed;            /* bytes received while paused, not yet credited back */
    /* Final status (valid in CALL_DONE). */
    int code;
    const char *message; /* arena or a string literal */
    size_t message_len;
    bool has_trailers;
};

TAILQ_HEAD(call_list, lg_grpc_client_call);

/* The stream_user_data nghttp2 holds for one of our streams. It is a separate object, not
 * the call, because nghttp2 may keep it after the call has ended: a request whose HEADERS
 * were still queued when the call was cancelled is opened and closed later (with our
 * pointer), and nghttp2_session_set_stream_user_data cannot reach such a stream. The handle
 * lives until nghttp2 closes the stream (or the session is deleted). */
struct client_stream {
    lg_grpc_client_call *call;      /* NULL once the call ended on our side */
    LIST_ENTRY(client_stream) link; /* in client_conn.streams */
};

LIST_HEAD(stream_list, client_stream);

struct client_conn {
    uint64_t id; /* connection number, as in logs */
    struct bufferevent *bev;
    nghttp2_session *session;   /* NULL while connecting */
    bool ready;                 /* the server's first SETTINGS arrived: streams may open.
                                   Waiting for it (as grpc-go does) means the server's
                                   MAX_CONCURRENT_STREAMS is known before the first stream,
                                   instead of streams being refused in a burst. */
    bool goaway;                /* GOAWAY received or sent: no new streams */
    size_t open_streams;        /* streams submitted and not yet closed by nghttp2 */
    struct stream_list streams; /* their handles */
    struct event *connect_timer;
    struct event *keepalive_timer; /* NULL when keepalive is off */
    bool ping_outstanding;         /* a keepalive PING awaits its ACK */
};

struct lg_grpc_client {
    struct event_base *base;
    struct evdns_base *dns; /* only for a target that is not an IP literal */
    struct lg_grpc_client_opts opts;
    char host[CLIENT_MAX_HOST_BYTES];
    uint16_t port;
    char *authority;
    char *user_agent;
    struct client_conn *conn; /* NULL when not connected or dialling */
    struct call_list pending;
    struct call_list active;
    struct call_list done;
    size_t pending_count;
    size_t call_count;
    struct event *kick_ev;    /* deferred work: submit, send, deliver on_close, redial */
    struct event *backoff_ev; /* pending while redialling is held back */
    uint32_t backoff_ms;      /* next backoff delay */
    uint64_t conn_seq;        /* connection numbers handed out */
    uint64_t connect_count;
    size_t max_open_streams;
    bool freeing;
    unsigned in_callback; /* depth of user callbacks running: lg_grpc_client_free is refused */
};

static void client_kick(lg_grpc_client *c);
static void conn_close(lg_grpc_client *c, int code, const char *why);
static void conn_fail(lg_grpc_client *c, int code, const char *why);
static void conn_keepalive_arm(lg_grpc_client *c, uint32_t ms);

/* ---- helpers --------------------------------------------------------------------------- */

/* Brackets a user callback (lg_grpc_client_free from inside one is a caller bug). */
static void c_enter(lg_grpc_client *c)
{
    c->in_callback++;
}

static void c_leave(lg_grpc_client *c)
{
    c->in_callback--;
}

static struct timeval client_ms_to_tv(int64_t ms)
{
    struct timeval tv;
    if (ms < 0) {
        ms = 0;
    }
    tv.tv_sec = (time_t)(ms / MS_PER_S);
    tv.tv_usec = (suseconds_t)((ms % MS_PER_S) * US_PER_MS);
    return tv;
}

static const char *state_name(enum call_state s)
{
    switch (s) {
    case CALL_QUEUED:
        return "queued";
    case CALL_ACTIVE:
        return "active";
    case CALL_DONE:
        return "done";
    }
    return "?";
}

static uint64_t client_conn_id(const lg_grpc_client *c)
{
    return c->conn ? c->conn->id : 0;
}

/* Moves |call| between lists; the one place a call changes state (logged at debug). */
static void call_set_state(lg_grpc_client_call *call, enum call_state to)
{
    lg_grpc_client *c = call->client;
    enum call_state from = call->state;
    switch (from) {
    case CALL_QUEUED:
        TAILQ_REMOVE(&c->pending, call, link);
        c->pending_count--;
        break;
    case CALL_ACTIVE:
        TAILQ_REMOVE(&c->active, call, link);
        break;
    case CALL_DONE:
        TAILQ_REMOVE(&c->done, call, link);
        break;
    }
    switch (to) {
    case CALL_QUEUED:
        /* A call put back (retry) goes first: it was started before the others. */
        if (from == CALL_ACTIVE) {
            TAILQ_INSERT_HEAD(&c->pending, call, link);
        } else {
            TAILQ_INSERT_TAIL(&c->pending, call, link);
        }
        c->pending_count++;
        break;
    case CALL_ACTIVE:
        TAILQ_INSERT_TAIL(&c->active, call, link);
        break;
    case CALL_DONE:
        TAILQ_INSERT_TAIL(&c->done, call, link);
        break;
    }
    call->state = to;
    struct lg_log_ctx ctx = {.conn = client_conn_id(c)};
    lg_log(LG_LOG_DEBUG, &ctx, "call_state", "path=%s stream=%d %s->%s", call->path,
           (int)call->stream_id, state_name(from), state_name(to));
}

/* Fixes the call's final status and queues on_close for the next kick. |msg| must outlive
 * the call (a literal or arena memory). With |rst| an open stream is reset with CANCEL.
 * Safe inside nghttp2 callbacks: it only submits frames. */
static void call_finish(lg_grpc_client_call *call, int code, const char *msg, size_t msg_len,
                        bool rst)
{
    lg_grpc_client *c = call->client;
    if (call->state == CALL_DONE) {
        return;
    }
    if (call->stream) {
        call->stream->call = NULL; /* nghttp2 may still report the stream: ignore it */
        call->stream = NULL;
    }
    if (call->state == CALL_ACTIVE && c->conn && c->conn->session && call->stream_id > 0) {
        nghttp2_session *s = c->conn->session;
        if (rst) {
            /* The stream may already be closed on nghttp2's side: nothing to reset then. */
            (void)nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
        }
    }
    if (call->deadline_ev) {
        evtimer_del(call->deadline_ev);
    }
    call->code = code;
    call->message = msg ? msg : "";
    call->message_len = msg ? msg_len : 0;
    call_set_state(call, CALL_DONE);
    client_kick(c);
}

static void call_finish_str(lg_grpc_client_call *call, int code, const char *msg, bool rst)
{
    call_finish(call, code, msg, strlen(msg), rst);
}

static void call_free(lg_grpc_client_call *call)
{
    if (!call) {
        return;
    }
    if (call->deadline_ev) {
        event_free(call->deadline_ev);
    }
    lg_grpc_frame_reader_free(call->reader);
    lg_buf_deinit(&call->req);
    lg_buf_deinit(&call->inflated);
    lg_buf_deinit(&call->scratch);
    lg_free(call->md);
    lg_arena_free(call->arena);
    lg_free(call);
}

/* ---- response headers -------------------------------------------------------------------- */

static void call_reset_block(lg_grpc_client_call *call)
{
    call->md_count = 0;
    call->hdr_bytes = 0;
    call->http_status = 0;
    call->ct_ok = false;
    call->have_grpc_status = false;
    call->grpc_status = LG_GRPC_UNKNOWN;
    call->grpc_message = (struct lg_slice){NULL, 0};
}

static int call_md_push(lg_grpc_client_call *call, const char *key, const uint8_t *val, size_t len)
{
    if (call->md_count == call->md_cap) {
        size_t ncap = call->md_cap ? call->md_cap * 2 : CLIENT_MD_INITIAL_CAP;
        struct lg_grpc_client_md *n = lg_realloc(call->md, ncap * sizeof(*n));
        if (!n) {
            return LG_ERR_NOMEM;
        }
        call->md = n;
        call->md_cap = ncap;
    }
    call->md[call->md_count++] = (struct lg_grpc_client_md){key, val, len};
    return LG_OK;
}

struct bin_ctx {
    lg_grpc_client_call *call;
    const char *key;
};

static int call_md_bin_cb(struct lg_slice v, void *ud)
{
    struct bin_ctx *b = ud;
    char *copy = lg_arena_strndup(b->call->arena, (const char *)v.ptr, v.len);
    if (!copy) {
        return LG_ERR_TOO_LARGE;
    }
    return call_md_push(b->call, b->key, (const uint8_t *)copy, v.len);
}

/* Keeps a custom metadata entry (reserved names are handled by the caller). */
static int call_md_add(lg_grpc_client_call *call, const uint8_t *name, size_t namelen,
                       const uint8_t *value, size_t valuelen)
{
    char *key = lg_arena_strndup(call->arena, (const char *)name, namelen);
    if (!key) {
        return LG_ERR_TOO_LARGE;
    }
    if (lg_grpc_frame_is_bin_key(name, namelen)) {
        struct bin_ctx b = {call, key};
        return lg_grpc_frame_bin_decode_list(value, valuelen, &call->scratch, call_md_bin_cb, &b);
    }
    char *val = lg_arena_strndup(call->arena, (const char *)value, valuelen);
    if (!val) {
        return LG_ERR_TOO_LARGE;
    }
    return call_md_push(call, key, (const uint8_t *)val, valuelen);
}

static bool name_is(const uint8_t *name, size_t namelen, const char *lit)
{
    size_t n = strlen(lit);
    return namelen == n && memcmp(name, lit, n) == 0;
}

static int parse_http_status(const uint8_t *v, size_t len)
{
    if (len != HTTP_STATUS_DIGITS) {
        return 0;
    }
    int s = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return 0;
        }
        s = s * DECIMAL_BASE + (v[i] - '0');
    }
    return s;
}

/* One response header field. Returns LG_OK, or an error that ends the call. */
static int call_on_header(lg_grpc_client_call *call, const uint8_t *name, size_t namelen,
                          const uint8_t *value, size_t valuelen)
{
    call->hdr_bytes += namelen + valuelen + LG_GRPC_CLIENT_HEADER_FIELD_OVERHEAD_BYTES;
    if (call->hdr_bytes > LG_GRPC_CLIENT_MAX_HEADER_LIST_BYTES) {
        return LG_ERR_TOO_LARGE;
    }
    if (name_is(name, namelen, ":status")) {
        call->http_status = parse_http_status(value, valuelen);
        return LG_OK;
    }
    if (name_is(name, namelen, "content-type")) {
        call->ct_ok = lg_grpc_frame_is_grpc_content_type(value, valuelen);
        return LG_OK;
    }
    if (name_is(name, namelen, "grpc-status")) {
        int st = LG_GRPC_UNKNOWN;
        if (lg_grpc_frame_status_parse(value, valuelen, &st) != LG_OK) {
            st = LG_GRPC_UNKNOWN;
        }
        call->have_grpc_status = true;
        call->grpc_status = st;
        return LG_OK;
    }
    if (name_is(name, namelen, "grpc-message")) {
        char *m = lg_arena_strndup(call->arena, (const char *)value, valuelen);
        if (!m) {
            return LG_ERR_TOO_LARGE;
        }
        call->grpc_message = (struct lg_slice){(const uint8_t *)m, valuelen};
        return LG_OK;
    }
    if (name_is(name, namelen, "grpc-encoding")) {
        call->gzip_response = name_is(value, valuelen, "gzip");
        call->unknown_encoding = !call->gzip_response && !name_is(value, valuelen, "identity");
        return LG_OK;
    }
    if (lg_grpc_frame_is_reserved_key(name, namelen)) {
        return LG_OK; /* other pseudo headers and grpc-* are protocol, not metadata */
    }
    return call_md_add(call, name, namelen, value, valuelen);
}

/* grpc doc/http-grpc-status-mapping.md. */
static int http_to_grpc_status(int http)
{
    switch (http) {
    case HTTP_BAD_REQUEST:
        return LG_GRPC_INTERNAL;
    case HTTP_UNAUTHORIZED:
        return LG_GRPC_UNAUTHENTICATED;
    case HTTP_FORBIDDEN:
        return LG_GRPC_PERMISSION_DENIED;
    case HTTP_NOT_FOUND:
        return LG_GRPC_UNIMPLEMENTED;
    case HTTP_TOO_MANY_REQUESTS:
    case HTTP_BAD_GATEWAY:
    case HTTP_UNAVAILABLE:
    case HTTP_GATEWAY_TIMEOUT:
        return LG_GRPC_UNAVAILABLE;
    default:
        return LG_GRPC_UNKNOWN;
    }
}

/* Finishes the call from a header block carrying the status (trailers or Trailers-Only). */
static void call_finish_from_status_block(lg_grpc_client_call *call, bool trailers_only)
{
    if (trailers_only && call->http_status != HTTP_OK) {
        call_finish_str(call, http_to_grpc_status(call->http_status),
                        "non-200 HTTP status in trailers-only response", false);
        return;
    }
    if (!call->have_grpc_status) {
        call_finish_str(call, LG_GRPC_UNKNOWN, "missing grpc-status", false);
        return;
    }
    int code = call->grpc_status;
    if (code == LG_GRPC_OK) {
        int rv = lg_grpc_frame_reader_finish(call->reader);
        if (rv != LG_OK) {
            call_finish_str(call, LG_GRPC_INTERNAL, "truncated message before trailers", false);
            return;
        }
        if (call->kind == LG_GRPC_CLIENT_UNARY && call->msgs != 1) {
            call_finish_str(call, LG_GRPC_INTERNAL, "unary response without a message", false);
            return;
        }
    }
    const char *msg = "";
    size_t msg_len = 0;
    if (call->grpc_message.len > 0) {
        lg_buf_reset(&call->scratch);
        size_t keep = call->grpc_message.len;
        if (lg_grpc_frame_percent_decode(call->grpc_message.ptr, keep, &call->scratch) == LG_OK) {
            char *m =
                lg_arena_strndup(call->arena, (const char *)call->scratch.data, call->scratch.len);
            if (m) {
                msg = m;
                msg_len = call->scratch.len;
            }
        }
        if (msg_len == 0) {
            /* Decoding failed (over a cap): the spec prefers the raw form to nothing. */
            msg = (const char *)call->grpc_message.ptr;
            msg_len = keep;
        }
    }
    call->has_trailers = true;
    call_finish(call, code, msg, msg_len, false);
}

/* A complete header block arrived for |call|. */
static void call_on_header_block(lg_grpc_client_call *call, bool end_stream)
{
    if (!call->got_headers) {
        if (call->http_status >= HTTP_INFORMATIONAL_MIN &&
            call->http_status <= HTTP_INFORMATIONAL_MAX && !end_stream) {
            return; /* 1xx: the final response headers follow */
        }
        if (end_stream) {
            call_finish_from_status_block(call, true);
            return;
        }
        if (call->http_status != HTTP_OK) {
            call_finish_str(call, http_to_grpc_status(call->http_status), "non-200 HTTP status",
                            true);
            return;
        }
        if (!call->ct_ok) {
            call_finish_str(call, LG_GRPC_INTERNAL, "response content-type is not gRPC", true);
            return;
        }
        call->got_headers = true;
        if (call->cbs.on_headers) {
            c_enter(call->client);
            call->cbs.on_headers(call, call->md, call->md_count, call->user_data);
            c_leave(call->client);
        }
        return;
    }
    if (!end_stream) {
        call_finish_str(call, LG_GRPC_INTERNAL, "trailers without END_STREAM", true);
        return;
    }
    call_finish_from_status_block(call, false);
}

/* ---- response messages ------------------------------------------------------------------- */

static int call_on_message(const struct lg_grpc_frame_msg *m, void *ud)
{
    lg_grpc_client_call *call = ud;
    const uint8_t *p = m->data.ptr;
    size_t len = m->data.len;
    if (m->compressed) {
        call->compressed_msgs++;
        if (call->unknown_encoding) {
            call_finish_str(call, LG_GRPC_UNIMPLEMENTED, "unsupported grpc-encoding", true);
            return LG_ERR_CANCELLED;
        }
        if (!call->gzip_response) {
            call_finish_str(call, LG_GRPC_INTERNAL, "compressed message without grpc-encoding",
                            true);
            return LG_ERR_CANCELLED;
        }
        lg_buf_reset(&call->inflated);
        int rv = lg_grpc_frame_gunzip(p, len, &call->inflated);
        if (rv != LG_OK) {
            call_finish_str(call, lg_err_grpc_status(rv),
                            rv == LG_ERR_TOO_LARGE ? "decompressed message over the limit"
                                                   : "bad gzip message",
                            true);
            return LG_ERR_CANCELLED;
        }
        p = call->inflated.data;
        len = call->inflated.len;
    }
    call->msgs++;
    if (call->kind == LG_GRPC_CLIENT_UNARY && call->msgs > 1) {
        call_finish_str(call, LG_GRPC_INTERNAL, "unary response with several messages", true);
        return LG_ERR_CANCELLED;
    }
    if (call->cbs.on_message) {
        c_enter(call->client);
        call->cbs.on_message(call, p, len, call->user_data);
        c_leave(call->client);
    }
    /* The callback may have cancelled the call: deliver nothing more. */
    return call->state == CALL_ACTIVE ? LG_OK : LG_ERR_CANCELLED;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------------- */

static lg_grpc_client_call *stream_call(nghttp2_session *s, int32_t stream_id)
{
    struct client_stream *h = nghttp2_session_get_stream_user_data(s, stream_id);
    lg_grpc_client_call *call = h ? h->call : NULL;
    return (call && call->state == CALL_ACTIVE) ? call : NULL;
}

static ssize_t h2_send_cb(nghttp2_session *s, const uint8_t *data, size_t length, int flags,
                          void *ud)
{
    (void)s;
    (void)flags;
    lg_grpc_client *c = ud;
    struct evbuffer *out = bufferevent_get_output(c->conn->bev);
    if (evbuffer_get_length(out) >= LG_GRPC_CLIENT_OUTBUF_HIGH_BYTES) {
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    if (evbuffer_add(out, data, length) != 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t)length;
}

static int h2_begin_headers_cb(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    lg_grpc_client_call *call = stream_call(s, frame->hd.stream_id);
    if (call) {
        call_reset_block(call);
    }
    return 0;
}

static int h2_header_cb(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    lg_grpc_client_call *call = stream_call(s, frame->hd.stream_id);
    if (!call) {
        return 0;
    }
    int rv = call_on_header(call, name, namelen, value, valuelen);
    if (rv == LG_ERR_TOO_LARGE) {
        call_finish_str(call, LG_GRPC_RESOURCE_EXHAUSTED, "response metadata over the limit", true);
    } else if (rv != LG_OK) {
        /* MALFORMED (bad base64) -> INTERNAL; NOMEM -> RESOURCE_EXHAUSTED. */
        call_finish_str(call, lg_err_grpc_status(rv), "bad response metadata", true);
    }
    return 0;
}

/* (Re)starts the keepalive timer for |ms|; no-op when keepalive is off. */
static void conn_keepalive_arm(lg_grpc_client *c, uint32_t ms)
{
    if (c->conn && c->conn->keepalive_timer) {
        struct timeval tv = client_ms_to_tv(ms);
        evtimer_add(c->conn->keepalive_timer, &tv);
    }
}

static int h2_frame_recv_cb(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    lg_grpc_client *c = ud;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
        lg_grpc_client_call *call = stream_call(s, frame->hd.stream_id);
        if (call) {
            call_on_header_block(call, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
        }
        break;
    }
    case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && c->conn->ping_outstanding) {
            c->conn->ping_outstanding = false;
            conn_keepalive_arm(c, c->opts.keepalive_time_ms);
        }
        break;
    case NGHTTP2_GOAWAY: {
        struct lg_log_ctx ctx = {.conn = client_conn_id(c)};
        lg_log(LG_LOG_INFO, &ctx, "goaway", "last_stream=%d error=%u",
               (int)frame->goaway.last_stream_id, frame->goaway.error_code);
        c->conn->goaway = true;
        break;
    }
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !c->conn->ready) {
            struct client_conn *k = c->conn;
            k->ready = true;
            evtimer_del(k->connect_timer);
            conn_keepalive_arm(c, c->opts.keepalive_time_ms);
            c->connect_count++;
            c->backoff_ms = c->opts.backoff_initial_ms;
            struct lg_log_ctx ctx = {.conn = k->id};
            lg_log(LG_LOG_INFO, &ctx, "connected", "target=%s:%u", c->host, (unsigned)c->port);
        }
        /* Ready now, or a larger MAX_CONCURRENT_STREAMS may admit queued calls. */
        client_kick(c);
        break;
    default:
        break;
    }
    return 0;
}

static int h2_data_chunk_cb(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                            const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    lg_grpc_client_call *call = stream_call(s, stream_id);
    if (call && !call->got_headers) {
        call_finish_str(call, LG_GRPC_INTERNAL, "DATA before response headers", true);
    } else if (call) {
        int rv = lg_grpc_frame_reader_feed(call->reader, data, len, call_on_message, call);
        if (rv != LG_OK && call->state == CALL_ACTIVE) {
            call_finish_str(call, lg_err_grpc_status(rv),
                            rv == LG_ERR_TOO_LARGE ? "response message over the receive limit"
                                                   : "malformed response message",
                            true);
        }
    }
    /* Flow control (automatic window updates are off): the bytes were handed out, so the
     * connection window is credited at once; the stream window only while the call is not
     * paused, so a paused call holds back just its own server. Errors only mean the stream
     * is already gone. */
    if (call && call->state == CALL_ACTIVE && call->paused) {
        call->unconsumed += len;
        (void)nghttp2_session_consume_connection(s, len);
    } else {
        (void)nghttp2_session_consume(s, stream_id, len);
    }
    return 0;
}

/* HTTP/2 error code -> gRPC status (PROTOCOL-HTTP2.md "Errors"). */
static int h2_error_to_grpc(uint32_t error_code)
{
    switch (error_code) {
    case NGHTTP2_REFUSED_STREAM:
        return LG_GRPC_UNAVAILABLE;
    case NGHTTP2_CANCEL:
        return LG_GRPC_CANCELLED;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return LG_GRPC_RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
        return LG_GRPC_PERMISSION_DENIED;
    default:
        return LG_GRPC_INTERNAL;
    }
}

static void call_requeue(lg_grpc_client_call *call)
{
    call->stream_id = 0;
    call->stream = NULL;
    call->req_off = 0;
    call->unconsumed = 0;
    call->retried = true;
    call_set_state(call, CALL_QUEUED);
}

static int h2_stream_close_cb(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    lg_grpc_client *c = ud;
    if (c->conn->open_streams > 0) {
        c->conn->open_streams--;
    }
    lg_grpc_client_call *call = stream_call(s, stream_id);
    struct client_stream *h = nghttp2_session_get_stream_user_data(s, stream_id);
    if (h) {
        nghttp2_session_set_stream_user_data(s, stream_id, NULL);
        LIST_REMOVE(h, link);
        lg_free(h);
        if (call) {
            call->stream = NULL;
        }
    }
    if (call) {
        if (error_code == NGHTTP2_REFUSED_STREAM && !call->retried && !call->got_headers) {
            /* Not processed by the server (RST_STREAM(REFUSED_STREAM) or beyond a GOAWAY's
             * last stream): safe to retry once, transparently, as grpc does. */
            call_requeue(call);
        } else if (error_code == NGHTTP2_NO_ERROR) {
            call_finish_str(call, LG_GRPC_INTERNAL, "stream closed without trailers", false);
        } else {
            call_finish_str(call, h2_error_to_grpc(error_code), "stream reset by the server",
                            false);
        }
    }
    client_kick(c); /* a slot is free */
    return 0;
}

static ssize_t h2_data_read_cb(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                               uint32_t *data_flags, nghttp2_data_source *src, void *ud)
{
    (void)src;
    (void)ud;
    lg_grpc_client_call *call = stream_call(s, stream_id);
    if (!call) {
        /* The call ended locally (its RST_STREAM is queued): send nothing more. */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    size_t left = call->req.len - call->req_off;
    size_t n = left < length ? left : length;
    if (n) {
        memcpy(buf, call->req.data + call->req_off, n);
    }
    call->req_off += n;
    if (call->req_off == call->req.len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

static int client_session_new(lg_grpc_client *c, nghttp2_session **out)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        return LG_ERR_NOMEM;
    }
    nghttp2_session_callbacks_set_send_callback(cbs, h2_send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, h2_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, h2_frame_recv_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_data_chunk_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_stream_close_cb);
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return LG_ERR_NOMEM;
    }
    /* Window updates follow what callers took (see h2_data_chunk_cb), not what arrived. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    int rv = nghttp2_session_client_new2(out, cbs, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    return rv == 0 ? LG_OK : LG_ERR_NOMEM;
}

/* ---- connection -------------------------------------------------------------------------- */

static void conn_free(struct client_conn *k)
{
    if (!k) {
        return;
    }
    if (k->session) {
        nghttp2_session_del(k->session); /* runs no stream-close callbacks */
    }
    struct client_stream *h;
    while ((h = LIST_FIRST(&k->streams)) != NULL) {
        if (h->call) {
            h->call->stream = NULL;
        }
        LIST_REMOVE(h, link);
        lg_free(h);
    }
    if (k->bev) {
        bufferevent_free(k->bev);
    }
    if (k->connect_timer) {
        event_free(k->connect_timer);
    }
    if (k->keepalive_timer) {
        event_free(k->keepalive_timer);
    }
    lg_free(k);
}

/* Sends what nghttp2 has queued. Returns LG_OK or an error that ends the connection. */
static int conn_flush(lg_grpc_client *c)
{
    struct client_conn *k = c->conn;
    if (!k || !k->session) {
        return LG_OK;
    }
    int rv = nghttp2_session_send(k->session);
    if (rv != 0) {
        return LG_ERR_PROTOCOL;
    }
    return LG_OK;
}

/* True when the connection has nothing left to do (after GOAWAY, with no streams). */
static bool conn_is_idle_closed(const struct client_conn *k)
{
    return k->session && !nghttp2_session_want_read(k->session) &&
           !nghttp2_session_want_write(k->session) &&
           evbuffer_get_length(bufferevent_get_output(k->bev)) == 0;
}

/* Ends every call on the connection with |code| and frees it. Never from inside an
 * nghttp2 callback (it deletes the session). */
static void conn_close(lg_grpc_client *c, int code, const char *why)
{
    struct client_conn *k = c->conn;
    if (!k) {
        return;
    }
    struct lg_log_ctx ctx = {.conn = k->id};
    lg_log(LG_LOG_INFO, &ctx, "conn_close", "target=%s:%u reason=%s", c->host, (unsigned)c->port,
           why);
    lg_grpc_client_call *call;
    while ((call = TAILQ_FIRST(&c->active)) != NULL) {
        /* The session goes away with the connection: no RST needed. */
        call->stream_id = 0;
        call_finish_str(call, code, why, false);
    }
    c->conn = NULL;
    conn_free(k);
    client_kick(c);
}

static void conn_read_cb(struct bufferevent *bev, void *ud)
{
    lg_grpc_client *c = ud;
    struct client_conn *k = c->conn;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) {
            break;
        }
        ssize_t n = nghttp2_session_mem_recv(k->session, v.iov_base, v.iov_len);
        if (n < 0) {
            struct lg_log_ctx ctx = {.conn = k->id};
            lg_log(LG_LOG_WARN, &ctx, "h2_recv_failed", "error=%s", nghttp2_strerror((int)n));
            conn_fail(c, LG_GRPC_INTERNAL, "HTTP/2 protocol error from the server");
            return;
        }
        evbuffer_drain(in, (size_t)n);
    }
    if (conn_flush(c) != LG_OK) {
        conn_fail(c, LG_GRPC_UNAVAILABLE, "HTTP/2 send failed");
        return;
    }
    if (conn_is_idle_closed(k)) {
        conn_close(c, LG_GRPC_UNAVAILABLE, "connection closed after GOAWAY");
    }
}

static void conn_write_cb(struct bufferevent *bev, void *ud)
{
    (void)bev;
    lg_grpc_client *c = ud;
    if (conn_flush(c) != LG_OK) {
        conn_fail(c, LG_GRPC_UNAVAILABLE, "HTTP/2 send failed");
        return;
    }
    if (c->conn && conn_is_idle_closed(c->conn)) {
        conn_close(c, LG_GRPC_UNAVAILABLE, "connection closed after GOAWAY");
    }
}

static uint32_t backoff_jittered(uint32_t ms)
{
    uint32_t r = 0;
    evutil_secure_rng_get_bytes(&r, sizeof(r));
    uint64_t span = (uint64_t)ms * LG_GRPC_CLIENT_BACKOFF_JITTER_PCT / PCT; /* +- span */
    if (span == 0) {
        return ms;
    }
    uint64_t off = r % (2 * span + 1);
    return (uint32_t)((uint64_t)ms - span + off);
}

static void client_backoff_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    client_kick(ud);
}

/* A dial failed: waiting calls end UNAVAILABLE (fail-fast) and redialling is held back. */
static void conn_dial_failed(lg_grpc_client *c, const char *why)
{
    struct lg_log_ctx ctx = {.conn = c->conn ? c->conn->id : 0};
    lg_log(LG_LOG_WARN, &ctx, "connect_failed", "target=%s:%u reason=%s backoff_ms=%u", c->host,
           (unsigned)c->port, why, (unsigned)c->backoff_ms);
    struct client_conn *k = c->conn;
    c->conn = NULL;
    conn_free(k);
    lg_grpc_client_call *call = TAILQ_FIRST(&c->pending);
    while (call) {
        lg_grpc_client_call *next = TAILQ_NEXT(call, link);
        if (!call->wait_for_ready) {
            call_finish_str(call, LG_GRPC_UNAVAILABLE, "failed to connect to the server", false);
        }
        call = next;
    }
    struct timeval tv = client_ms_to_tv(backoff_jittered(c->backoff_ms));
    evtimer_add(c->backoff_ev, &tv);
    uint64_t next =
        (uint64_t)c->backoff_ms * LG_GRPC_CLIENT_BACKOFF_MULT_NUM / LG_GRPC_CLIENT_BACKOFF_MULT_DEN;
    c->backoff_ms = next > c->opts.backoff_max_ms ? c->opts.backoff_max_ms : (uint32_t)next;
}

/* The connection failed: before it was ready this is a failed dial (waiting calls end,
 * redialling backs off, so a peer that is not an HTTP/2 server is not hammered); after, the
 * calls on it end with |code| and the next call redials at once. */
static void conn_fail(lg_grpc_client *c, int code, const char *why)
{
    if (c->conn && !c->conn->ready) {
        conn_dial_failed(c, why);
    } else {
        conn_close(c, code, why);
    }
}

static int conn_start_session(lg_grpc_client *c)
{
    struct client_conn *k = c->conn;
    int rv = client_session_new(c, &k->session);
    if (rv != LG_OK) {
        return rv;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->opts.stream_window_bytes},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, LG_GRPC_CLIENT_MAX_HEADER_LIST_BYTES},
    };
    if (nghttp2_submit_settings(k->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) !=
        0) {
        return LG_ERR_NOMEM;
    }
    if (nghttp2_session_set_local_window_size(k->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)c->opts.conn_window_bytes) != 0) {
        return LG_ERR_NOMEM;
    }
    return LG_OK;
}

static void conn_event_cb(struct bufferevent *bev, short what, void *ud)
{
    lg_grpc_client *c = ud;
    if (what & BEV_EVENT_CONNECTED) {
        /* The connect timer keeps running until the server's SETTINGS arrive. */
        evutil_socket_t fd = bufferevent_getfd(bev);
        int one = 1;
        /* Latency over throughput: each gRPC message should leave at once. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (conn_start_session(c) != LG_OK) {
            conn_dial_failed(c, "out of memory starting the HTTP/2 session");
            return;
        }
        /* Our preface and SETTINGS go out now; streams wait for the server's SETTINGS. */
        if (conn_flush(c) != LG_OK) {
            conn_dial_failed(c, "HTTP/2 send failed");
        }
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        int err = EVUTIL_SOCKET_ERROR();
        const char *why = (what & BEV_EVENT_EOF) ? "connection closed by the server"
                          : err                  ? evutil_socket_error_to_string(err)
                                                 : "connection lost";
        conn_fail(c, LG_GRPC_UNAVAILABLE, why);
    }
}

/* Keepalive (grpc doc/keepalive.md, client side): while calls are open, a PING goes out
 * keepalive_time_ms after the last ACK; no ACK within keepalive_timeout_ms means the peer
 * or the path is gone (no RST will ever come), so the connection is failed and its calls
 * end UNAVAILABLE. Idle connections send no PINGs: servers count those as abuse. */
static void conn_keepalive_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    lg_grpc_client *c = ud;
    struct client_conn *k = c->conn;
    if (!k || !k->ready) {
        return;
    }
    if (k->ping_outstanding) {
        conn_fail(c, LG_GRPC_UNAVAILABLE, "keepalive PING not acknowledged");
        return;
    }
    if (TAILQ_EMPTY(&c->active)) {
        conn_keepalive_arm(c, c->opts.keepalive_time_ms);
        return;
    }
    if (nghttp2_submit_ping(k->session, NGHTTP2_FLAG_NONE, NULL) != 0) {
        conn_fail(c, LG_GRPC_UNAVAILABLE, "out of memory sending a keepalive PING");
        return;
    }
    k->ping_outstanding = true;
    conn_keepalive_arm(c, c->opts.keepalive_timeout_ms);
    client_kick(c); /* sends it */
}

static void conn_connect_timeout_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    conn_dial_failed(ud, "connect timed out");
}

static bool host_is_ip_literal(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    return evutil_inet_pton(AF_INET, host, &a4) == 1 || evutil_inet_pton(AF_INET6, host, &a6) == 1;
}

static void conn_dial(lg_grpc_client *c)
{
    struct client_conn *k = lg_calloc(1, sizeof(*k));
    if (!k) {
        conn_dial_failed(c, "out of memory");
        return;
    }
    k->id = ++c->conn_seq;
    LIST_INIT(&k->streams);
    c->conn = k;
    /* Deferred callbacks: libevent may report a failed connect from inside
     * bufferevent_socket_connect_hostname, where freeing the bufferevent is not safe. */
    k->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    k->connect_timer = evtimer_new(c->base, conn_connect_timeout_cb, c);
    if (c->opts.keepalive_time_ms > 0) {
        k->keepalive_timer = evtimer_new(c->base, conn_keepalive_cb, c);
    }
    if (!k->bev || !k->connect_timer || (c->opts.keepalive_time_ms > 0 && !k->keepalive_timer)) {
        conn_dial_failed(c, "out of memory");
        return;
    }
    bufferevent_setcb(k->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(k->bev, EV_READ, 0, LG_GRPC_CLIENT_READ_HIGH_BYTES);
    bufferevent_setwatermark(k->bev, EV_WRITE, LG_GRPC_CLIENT_OUTBUF_HIGH_BYTES / 2, 0);
    bufferevent_enable(k->bev, EV_READ | EV_WRITE);
    struct timeval tv = client_ms_to_tv(c->opts.connect_timeout_ms);
    evtimer_add(k->connect_timer, &tv);
    struct lg_log_ctx ctx = {.conn = k->id};
    lg_log(LG_LOG_DEBUG, &ctx, "dial", "target=%s:%u", c->host, (unsigned)c->port);
    /* A numeric host connects without any lookup; a name goes through evdns, never a
     * blocking getaddrinfo on the loop. */
    if (bufferevent_socket_connect_hostname(k->bev, c->dns, AF_UNSPEC, c->host, c->port) != 0) {
        conn_dial_failed(c, "connect failed");
    }
}

/* ---- submitting calls ------------------------------------------------------------------- */

static void call_update_timeout_header(lg_grpc_client_call *call, char *tbuf)
{
    if (call->req_timeout_nv == SIZE_MAX) {
        return;
    }
    int64_t left = call->deadline_ms - lg_time_mono_ms();
    if (left < 1) {
        left = 1;
    }
    size_t n = lg_grpc_frame_timeout_format((uint64_t)left * NS_PER_MS, tbuf);
    call->req_nv[call->req_timeout_nv].value = (uint8_t *)tbuf;
    call->req_nv[call->req_timeout_nv].valuelen = n;
}

/* Opens a stream for |call| on the connection. Returns LG_OK or an lg_err. */
static int call_submit(lg_grpc_client *c, lg_grpc_client_call *call)
{
    char tbuf[LG_GRPC_FRAME_TIMEOUT_STR_BYTES];
    call_update_timeout_header(call, tbuf); /* the time spent queued counts */
    nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = h2_data_read_cb};
    struct client_stream *h = lg_calloc(1, sizeof(*h));
    if (!h) {
        return LG_ERR_NOMEM;
    }
    h->call = call;
    int32_t id =
        nghttp2_submit_request(c->conn->session, NULL, call->req_nv, call->req_nv_count, &prd, h);
    if (id < 0) {
        lg_free(h);
        return id == NGHTTP2_ERR_NOMEM ? LG_ERR_NOMEM : LG_ERR_UNAVAILABLE;
    }
    LIST_INSERT_HEAD(&c->conn->streams, h, link);
    call->stream = h;
    call->stream_id = id;
    c->conn->open_streams++;
    if (c->conn->open_streams > c->max_open_streams) {
        c->max_open_streams = c->conn->open_streams;
    }
    call_set_state(call, CALL_ACTIVE);
    return LG_OK;
}

static void client_submit_pending(lg_grpc_client *c)
{
    struct client_conn *k = c->conn;
    if (!k || !k->ready || k->goaway) {
        return;
    }
    uint32_t peer_max =
        nghttp2_session_get_remote_settings(k->session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    lg_grpc_client_call *call;
    while (k->open_streams < peer_max && (call = TAILQ_FIRST(&c->pending)) != NULL) {
        int rv = call_submit(c, call);
        if (rv != LG_OK) {
            call_finish_str(call, lg_err_grpc_status(rv), "could not open a stream", false);
            if (rv == LG_ERR_UNAVAILABLE) {
                k->goaway = true; /* stream ids exhausted or session closing */
                return;
            }
        }
    }
}

/* Deferred work, run on a later loop turn than whatever asked for it. */
static void client_kick_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    lg_grpc_client *c = ud;
    if (c->conn && c->conn->ready) {
        if (c->conn->goaway && TAILQ_EMPTY(&c->active) && c->conn->open_streams == 0 &&
            !TAILQ_EMPTY(&c->pending)) {
            /* A draining connection with nothing left: replace it for the waiting calls. */
            conn_close(c, LG_GRPC_UNAVAILABLE, "connection drained after GOAWAY");
        } else {
            client_submit_pending(c);
            if (conn_flush(c) != LG_OK) {
                conn_fail(c, LG_GRPC_UNAVAILABLE, "HTTP/2 send failed");
            } else if (conn_is_idle_closed(c->conn)) {
                conn_close(c, LG_GRPC_UNAVAILABLE, "connection closed after GOAWAY");
            }
        }
    }
    if (!c->conn && !TAILQ_EMPTY(&c->pending) && !evtimer_pending(c->backoff_ev, NULL)) {
        conn_dial(c);
    }
    /* on_close last: it may start calls, which schedule another kick. */
    lg_grpc_client_call *call;
    while ((call = TAILQ_FIRST(&c->done)) != NULL) {
        TAILQ_REMOVE(&c->done, call, link);
        struct lg_grpc_client_status st = {
            .code = call->code,
            .message = call->message,
            .message_len = call->message_len,
            .trailers = call->has_trailers ? call->md : NULL,
            .trailer_count = call->has_trailers ? call->md_count : 0,
        };
        c_enter(c);
        call->cbs.on_close(call, &st, call->user_data);
        c_leave(c);
        c->call_count--;
        call_free(call);
    }
}

static void client_kick(lg_grpc_client *c)
{
    if (!c->freeing) {
        event_active(c->kick_ev, EV_TIMEOUT, 0);
    }
}

static void call_deadline_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    call_finish_str(ud, LG_GRPC_DEADLINE_EXCEEDED, "deadline exceeded", true);
}

/* ---- call construction -------------------------------------------------------------------- */

static bool method_is_valid(const char *m)
{
    /* "/service/method": a leading slash, a non-empty service, a slash, a method. */
    if (!m || m[0] != '/') {
        return false;
    }
    const char *slash = strchr(m + 1, '/');
    return slash && slash > m + 1 && slash[1] != '\0' && !strchr(slash + 1, '/');
}

static int md_is_valid(const struct lg_grpc_client_md *md)
{
    if (!md->key || (md->len > 0 && !md->val)) {
        return LG_ERR_INVALID;
    }
    const uint8_t *k = (const uint8_t *)md->key;
    size_t klen = strlen(md->key);
    if (!lg_grpc_frame_is_valid_key(k, klen) || lg_grpc_frame_is_reserved_key(k, klen)) {
        return LG_ERR_INVALID;
    }
    if (!lg_grpc_frame_is_bin_key(k, klen) &&
        !lg_grpc_frame_is_valid_ascii_value(md->val, md->len)) {
        return LG_ERR_INVALID;
    }
    return LG_OK;
}

static nghttp2_nv make_nv(const char *name, const char *value, size_t valuelen)
{
    nghttp2_nv nv = {(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)value, strlen(name),
                     valuelen, NGHTTP2_NV_FLAG_NONE};
    return nv;
}

/* Builds the request header list into the call's arena. */
static int call_build_headers(lg_grpc_client *c, lg_grpc_client_call *call, const char *method,
                              const struct lg_grpc_client_call_opts *o)
{
    size_t count = CLIENT_FIXED_HEADERS + o->md_count;
    call->req_nv = lg_arena_alloc(call->arena, count * sizeof(nghttp2_nv));
    call->path = lg_arena_strndup(call->arena, method, strlen(method));
    if (!call->req_nv || !call->path) {
        return LG_ERR_NOMEM;
    }
    size_t n = 0;
    nghttp2_nv *nv = call->req_nv;
    nv[n++] = make_nv(":method", "POST", strlen("POST"));
    nv[n++] = make_nv(":scheme", "http", strlen("http"));
    nv[n++] = make_nv(":path", call->path, strlen(call->path));
    nv[n++] = make_nv(":authority", c->authority, strlen(c->authority));
    nv[n++] = make_nv("te", "trailers", strlen("trailers"));
    nv[n++] = make_nv("content-type", "application/grpc", strlen("application/grpc"));
    nv[n++] = make_nv("user-agent", c->user_agent, strlen(c->user_agent));
    nv[n++] = make_nv("grpc-accept-encoding", "identity,gzip", strlen("identity,gzip"));
    if (o->gzip) {
        nv[n++] = make_nv("grpc-encoding", "gzip", strlen("gzip"));
    }
    call->req_timeout_nv = SIZE_MAX;
    if (o->timeout_ms > 0) {
        call->req_timeout_nv = n;
        nv[n++] = make_nv("grpc-timeout", "", 0); /* filled at submit */
    }
    size_t bytes = 0;
    for (size_t i = 0; i < o->md_count; i++) {
        const struct lg_grpc_client_md *m = &o->md[i];
        size_t klen = strlen(m->key);
        const char *val = (const char *)m->val;
        size_t vlen = m->len;
        if (lg_grpc_frame_is_bin_key((const uint8_t *)m->key, klen)) {
            lg_buf_reset(&call->scratch);
            int rv = lg_grpc_frame_base64_encode(m->val, m->len, &call->scratch);
            if (rv != LG_OK) {
                return rv;
            }
            val = (const char *)call->scratch.data;
            vlen = call->scratch.len;
        }
        /* Checked before copying: the arena then fails only when memory does. */
        bytes += klen + vlen + LG_GRPC_CLIENT_HEADER_FIELD_OVERHEAD_BYTES;
        if (bytes > LG_GRPC_CLIENT_MAX_HEADER_LIST_BYTES) {
            return LG_ERR_TOO_LARGE;
        }
        char *key = lg_arena_strndup(call->arena, m->key, klen);
        char *vcopy = lg_arena_strndup(call->arena, val ? val : "", vlen);
        if (!key || !vcopy) {
            return LG_ERR_NOMEM;
        }
        nv[n++] = make_nv(key, vcopy, vlen);
    }
    call->req_nv_count = n;
    return LG_OK;
}

static int call_new(lg_grpc_client *c, const char *method, const uint8_t *req, size_t len,
                    const struct lg_grpc_client_call_opts *o, lg_grpc_client_call **out)
{
    lg_grpc_client_call *call = lg_calloc(1, sizeof(*call));
    if (!call) {
        return LG_ERR_NOMEM;
    }
    call->client = c;
    call->kind = o->kind;
    call->wait_for_ready = o->wait_for_ready;
    call->deadline_ms = -1;
    lg_buf_init(&call->req, (size_t)LG_GRPC_FRAME_MAX_PAYLOAD_BYTES + LG_GRPC_FRAME_PREFIX_BYTES);
    lg_buf_init(&call->inflated, c->opts.max_recv_msg_bytes);
    lg_buf_init(&call->scratch, LG_GRPC_CLIENT_MAX_HEADER_LIST_BYTES);
    int rv = lg_arena_new(&call->arena, CLIENT_ARENA_CHUNK_BYTES, CLIENT_ARENA_MAX_BYTES);
    if (rv == LG_OK) {
        rv = lg_grpc_frame_reader_new(&call->reader, c->opts.max_recv_msg_bytes);
    }
    if (rv == LG_OK) {
        rv = call_build_headers(c, call, method, o);
    }
    if (rv == LG_OK) {
        rv = lg_grpc_frame_encode(&call->req, req, len, o->gzip);
        if (rv == LG_ERR_INVALID) {
            rv = LG_ERR_TOO_LARGE;
        }
    }
    if (rv == LG_OK && o->timeout_ms > 0) {
        call->deadline_ms = lg_time_mono_ms() + o->timeout_ms;
        call->deadline_ev = evtimer_new(c->base, call_deadline_cb, call);
        if (!call->deadline_ev) {
            rv = LG_ERR_NOMEM;
        } else {
            struct timeval tv = client_ms_to_tv(o->timeout_ms);
            evtimer_add(call->deadline_ev, &tv);
        }
    }
    if (rv != LG_OK) {
        call_free(call);
        return rv;
    }
    *out = call;
    return LG_OK;
}

int lg_grpc_client_start(lg_grpc_client *c, const char *method, const uint8_t *req, size_t len,
                         const struct lg_grpc_client_call_opts *opts,
                         const struct lg_grpc_client_call_cbs *cbs, void *user_data,
                         lg_grpc_client_call **call_out)
{
    static const struct lg_grpc_client_call_opts defaults = {.kind = LG_GRPC_CLIENT_UNARY};
    const struct lg_grpc_client_call_opts *o = opts ? opts : &defaults;
    if (c->freeing) {
        return LG_ERR_STATE;
    }
    if (!method_is_valid(method) || !cbs || !cbs->on_close || (len > 0 && !req) ||
        (o->md_count > 0 && !o->md) ||
        (o->kind != LG_GRPC_CLIENT_UNARY && o->kind != LG_GRPC_CLIENT_SERVER_STREAMING)) {
        return LG_ERR_INVALID;
    }
    for (size_t i = 0; i < o->md_count; i++) {
        if (md_is_valid(&o->md[i]) != LG_OK) {
            return LG_ERR_INVALID;
        }
    }
    if (c->pending_count >= c->opts.max_queued_calls) {
        return LG_ERR_EXHAUSTED;
    }
    lg_grpc_client_call *call;
    int rv = call_new(c, method, req, len, o, &call);
    if (rv != LG_OK) {
        return rv;
    }
    call->cbs = *cbs;
    call->user_data = user_data;
    call->state = CALL_QUEUED;
    TAILQ_INSERT_TAIL(&c->pending, call, link);
    c->pending_count++;
    c->call_count++;
    client_kick(c);
    if (call_out) {
        *call_out = call;
    }
    return LG_OK;
}

int lg_grpc_client_call_cancel(lg_grpc_client_call *call)
{
    if (call->state == CALL_DONE) {
        return LG_ERR_STATE;
    }
    call_finish_str(call, LG_GRPC_CANCELLED, "cancelled by the client", true);
    return LG_OK;
}

int lg_grpc_client_call_set_paused(lg_grpc_client_call *call, bool paused)
{
    if (call->state == CALL_DONE) {
        return LG_ERR_STATE;
    }
    call->paused = paused;
    lg_grpc_client *c = call->client;
    if (!paused && call->unconsumed > 0 && call->state == CALL_ACTIVE && c->conn &&
        c->conn->session) {
        (void)nghttp2_session_consume_stream(c->conn->session, call->stream_id, call->unconsumed);
        call->unconsumed = 0;
        client_kick(c); /* sends the WINDOW_UPDATE */
    }
    return LG_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

void lg_grpc_client_opts_default(struct lg_grpc_client_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->max_recv_msg_bytes = LG_GRPC_FRAME_DEFAULT_MAX_MESSAGE_BYTES;
    opts->max_queued_calls = LG_GRPC_CLIENT_MAX_QUEUED_CALLS;
    opts->connect_timeout_ms = LG_GRPC_CLIENT_CONNECT_TIMEOUT_MS;
    opts->backoff_initial_ms = LG_GRPC_CLIENT_BACKOFF_INITIAL_MS;
    opts->backoff_max_ms = LG_GRPC_CLIENT_BACKOFF_MAX_MS;
    opts->stream_window_bytes = LG_GRPC_CLIENT_STREAM_WINDOW_BYTES;
    opts->conn_window_bytes = LG_GRPC_CLIENT_CONN_WINDOW_BYTES;
    opts->keepalive_time_ms = 0; /* off, as in grpc clients */
    opts->keepalive_timeout_ms = LG_GRPC_CLIENT_KEEPALIVE_TIMEOUT_MS;
}

static int client_check_opts(const struct lg_grpc_client_opts *o)
{
    if (o->max_recv_msg_bytes == 0 ||
        o->max_recv_msg_bytes > LG_GRPC_CLIENT_MAX_RECV_MSG_BYTES_HARD ||
        o->max_queued_calls == 0 || o->max_queued_calls > LG_GRPC_CLIENT_MAX_QUEUED_CALLS ||
        o->connect_timeout_ms == 0 || o->backoff_initial_ms == 0 ||
        o->backoff_max_ms < o->backoff_initial_ms ||
        (o->keepalive_time_ms > 0 && o->keepalive_timeout_ms == 0) ||
        o->stream_window_bytes > NGHTTP2_MAX_WINDOW_SIZE ||
        o->conn_window_bytes > NGHTTP2_MAX_WINDOW_SIZE) {
        return LG_ERR_INVALID;
    }
    return LG_OK;
}

static int client_set_strings(lg_grpc_client *c, const char *target)
{
    const char *auth = c->opts.authority ? c->opts.authority : target;
    c->authority = lg_strdup(auth);
    struct lg_buf ua;
    lg_buf_init(&ua, LG_GRPC_CLIENT_MAX_HEADER_LIST_BYTES);
    int rv = lg_buf_appendf(&ua, "%s lg-grpc-client/1",
                            c->opts.user_agent ? c->opts.user_agent : "llmgate-grpc");
    if (rv == LG_OK) {
        size_t n;
        rv = lg_buf_take(&ua, (uint8_t **)&c->user_agent, &n);
    }
    lg_buf_deinit(&ua);
    if (rv != LG_OK) {
        return rv;
    }
    /* The copies are ours; the caller's strings are not kept. */
    c->opts.authority = NULL;
    c->opts.user_agent = NULL;
    return c->authority ? LG_OK : LG_ERR_NOMEM;
}

int lg_grpc_client_new(lg_grpc_client **out, struct event_base *base, const char *target,
                       const struct lg_grpc_client_opts *opts)
{
    struct lg_grpc_client_opts o;
    if (opts) {
        o = *opts;
    } else {
        lg_grpc_client_opts_default(&o);
    }
    if (!base || !target || client_check_opts(&o) != LG_OK) {
        return LG_ERR_INVALID;
    }
    lg_grpc_client *c = lg_calloc(1, sizeof(*c));
    if (!c) {
        return LG_ERR_NOMEM;
    }
    c->base = base;
    c->opts = o;
    c->backoff_ms = o.backoff_initial_ms;
    TAILQ_INIT(&c->pending);
    TAILQ_INIT(&c->active);
    TAILQ_INIT(&c->done);
    int rv = lg_cfg_split_hostport(target, c->host, sizeof(c->host), &c->port);
    if (rv != LG_OK || c->port == 0) {
        rv = LG_ERR_INVALID;
        goto out_free_client;
    }
    rv = client_set_strings(c, target);
    if (rv != LG_OK) {
        goto out_free_client;
    }
    c->kick_ev = event_new(base, -1, 0, client_kick_cb, c);
    c->backoff_ev = evtimer_new(base, client_backoff_cb, c);
    if (!c->kick_ev || !c->backoff_ev) {
        rv = LG_ERR_NOMEM;
        goto out_free_client;
    }
    if (!host_is_ip_literal(c->host)) {
        c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                          EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (!c->dns) {
            rv = LG_ERR_INVALID; /* no resolver configuration */
            goto out_free_client;
        }
    }
    *out = c;
    return LG_OK;

out_free_client:
    lg_grpc_client_free(c);
    return rv;
}

void lg_grpc_client_free(lg_grpc_client *c)
{
    if (!c) {
        return;
    }
    /* Freeing the client from one of its own callbacks would free the call (and the stack of
     * nghttp2 frames) that is still running: the contract forbids it. */
    assert(c->in_callback == 0);
    lg_grpc_client_call *call;
    while ((call = TAILQ_FIRST(&c->pending)) != NULL) {
        call_finish_str(call, LG_GRPC_CANCELLED, "client shut down", false);
    }
    while ((call = TAILQ_FIRST(&c->active)) != NULL) {
        call_finish_str(call, LG_GRPC_CANCELLED, "client shut down", false);
    }
    c->freeing = true;
    /* Deliver every on_close now: the loop will not run for this client again. */
    if (c->kick_ev) {
        struct client_conn *k = c->conn;
        c->conn = NULL;
        conn_free(k);
        client_kick_cb(-1, 0, c);
        event_free(c->kick_ev);
    }
    conn_free(c->conn);
    if (c->backoff_ev) {
        event_free(c->backoff_ev);
    }
    if (c->dns) {
        evdns_base_free(c->dns, 0);
    }
    lg_free(c->authority);
    lg_free(c->user_agent);
    lg_free(c);
}

/* ---- accessors -------------------------------------------------------------------------- */

uint64_t lg_grpc_client_call_get_compressed_count(const lg_grpc_client_call *call)
{
    return call->compressed_msgs;
}

int32_t lg_grpc_client_call_get_stream_id(const lg_grpc_client_call *call)
{
    return call->stream_id;
}

bool lg_grpc_client_is_connected(const lg_grpc_client *c)
{
    return c->conn && c->conn->ready && !c->conn->goaway;
}

uint64_t lg_grpc_client_get_connect_count(const lg_grpc_client *c)
{
    return c->connect_count;
}

size_t lg_grpc_client_get_call_count(const lg_grpc_client *c)
{
    return c->call_count;
}

size_t lg_grpc_client_get_max_open_streams(const lg_grpc_client *c)
{
    return c->max_open_streams;
}

size_t lg_grpc_client_get_outbuf_len(const lg_grpc_client *c)
{
    if (!c->conn || !c->conn->bev) {
        return 0;
    }
    return evbuffer_get_length(bufferevent_get_output(c->conn->bev));
}
