/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_sse_http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "lg_buf.h"
#include "lg_cfg.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_loop.h"
#include "lg_mem.h"
#include "lg_sse_table.h"

#define LG_LOG_MODULE "sse_http"
#include "lg_log.h"

/* Longest error or JSON reply we build (error bodies, 201 bodies, events URLs). */
#define HTTP_MAX_SMALL_BODY_BYTES 4096
/* A parsed chat body takes up to 4x its size in the per-request arena, plus this much fixed
 * overhead (JSON nodes, the request struct): without it a small --max-body-bytes (1000) left
 * too little room for even a tiny valid body, which was refused 503 out of memory. */
#define HTTP_ARENA_BASE_BYTES 16384
/* Longest events URL: path, id, token. */
#define HTTP_MAX_URL_BYTES (64 + LG_SSE_MAX_STREAM_ID_BYTES + LG_SSE_MAX_TOKEN_BYTES)
/* The anonymous user of open development mode. */
#define HTTP_OPEN_USER "anonymous"
/* Longest Origin we compare against the allow-list. */
#define HTTP_MAX_ORIGIN_BYTES 256
/* Preflight cache lifetime sent to browsers, in seconds (RFC 9110 / Fetch). */
#define HTTP_CORS_MAX_AGE_S "600"
#define HTTP_PATH_STREAMS "/v1/chat/streams"
/* listen(2) backlog of the edge socket when it binds it itself (the --workers path gets the
 * same from lg_sse_main.c): room for a reconnect storm of thousands of EventSource clients. */
#define HTTP_LISTEN_BACKLOG 4096

enum stream_kind {
    SK_CREATE,     /* POST /v1/chat/streams: waits for the stream id */
    SK_EVENTS,     /* GET /events: text/event-stream */
    SK_OAI_STREAM, /* POST /v1/chat/completions, stream true */
    SK_OAI_FULL,   /* POST /v1/chat/completions, stream false */
    SK_CANCEL,     /* POST /cancel: waits for CancelStream */
};

struct conn;

/* What only the OpenAI endpoint needs, kept out of every SSE stream's memory. */
struct oai_part {
    char finish[32];                               /* copy of done.finish_reason */
    char model[129];                               /* model echoed in objects */
    char oai_id[LG_SSE_MAX_STREAM_ID_BYTES + 16];  /* "chatcmpl-<stream id>" */
};

/* One request that waits on the chat service (at most one per connection: evhttp serves a
 * connection's requests one after the other). */
struct stream {
    lg_sse_http *h;
    struct conn *c;              /* owning connection; NULL once detached */
    struct evhttp_request *req;  /* owned by evhttp until the reply ends */
    enum stream_kind kind;
    lg_sse_call *call;           /* NULL once the call ended or was aborted */
    struct event *timer;         /* first-event wait, then heartbeats */
    bool headers_sent;           /* 200 and the preamble are out */
    bool done_seen;              /* a DONE event was relayed */
    bool counted;                /* holds one of the user's stream slots */
    uint64_t events;             /* events relayed */
    char user[LG_SSE_MAX_USER_ID_BYTES + 1];          /* the caller (x-user-id) */
    char stream_id[LG_SSE_MAX_STREAM_ID_BYTES + 1];   /* known once the first event came */
    struct lg_buf text;          /* SK_OAI_FULL: the assembled answer */
    struct lg_sse_done done;     /* SK_OAI_*: outcome and usage */
    struct oai_part *oai;        /* SK_OAI_*: owned; NULL for the other kinds */
    int64_t created;             /* unix seconds of the request */
    bool include_usage;          /* SK_OAI_STREAM: stream_options.include_usage */
    /* Output of this loop turn not yet handed to evhttp: every event of one gRPC read goes
     * out as one HTTP chunk (see stream_write). Empty, with no memory, between turns. */
    struct lg_buf out;
    bool flush_queued;           /* linked in h->flush */
    TAILQ_ENTRY(stream) flush_link;
};

/* What the edge tracks per keep-alive connection. */
struct conn {
    lg_sse_http *h;
    struct evhttp_connection *evcon;
    uint64_t id;          /* for logs */
    int64_t nreq;         /* requests seen */
    struct stream *active;
    struct event *kill;   /* deferred close (slow client) */
};

/* Slow-header guard of a fresh connection (see guard_new). */
struct guard {
    lg_sse_http *h;
    struct bufferevent *bev; /* referenced (bufferevent_incref) while the guard lives */
    struct event *timer;
    int64_t deadline_ms; /* lg_loop_now_ms() by which the first request must be complete */
};

/* Streams one user holds. */
struct user_slot {
    char name[LG_SSE_MAX_USER_ID_BYTES + 1];
    int64_t n;
};

struct lg_sse_http {
    struct event_base *base;
    struct evhttp *http;
    struct lg_sse_http_opts o;  /* copied; strings below are owned copies */
    char *cors;                 /* owned copy of the allow-list */
    uint8_t secret[LG_SSE_AUTH_SECRET_BYTES];
    struct lg_sse_http_file *files; /* owned copies */
    lg_sse_keys *keys;          /* NULL = open mode */
    lg_sse_table *conns;        /* evcon -> struct conn */
    lg_sse_table *guards;       /* bufferevent -> struct guard */
    lg_sse_table *users;        /* user -> struct user_slot */
    struct evbuffer *scratch;   /* hands bytes to evhttp_send_reply_chunk */
    struct lg_buf enc;          /* hot-path event encoding, reused (reset per event) */
    TAILQ_HEAD(flush_list, stream) flush; /* streams with output pending this turn */
    struct event *flush_ev;     /* runs stream_flush_all once the current callbacks are done */
    uint64_t next_conn_id;
    size_t nstreams;            /* open event streams */
    lg_metrics_series *m_streams, *m_events, *m_resumes, *m_heartbeats, *m_4xx, *m_5xx,
        *m_upstream_err, *m_slow;
};

/* ---- small helpers ----------------------------------------------------------------------- */

static void count_status(lg_sse_http *h, int code)
{
    if (code >= 500) {
        lg_metrics_counter_inc(h->m_5xx);
    } else if (code >= 400) {
        lg_metrics_counter_inc(h->m_4xx);
    }
}

static const char *reason_for(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 499:
        return "Client Closed Request";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return code < 500 ? "Bad Request" : "Internal Server Error";
    }
}

/* Symbolic lower-case code for an lg_err ("not_found"). */
static void err_code(int rc, char *out, size_t outlen)
{
    const char *n = lg_err_name(rc);
    size_t i = 0;
    for (; n[i] != 0 && i + 1 < outlen; i++) {
        char ch = n[i];
        out[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    out[i] = 0;
}

/* Sends a complete reply with |body| (|len| bytes) of |ctype|. */
static void send_body(lg_sse_http *h, struct evhttp_request *req, int code, const char *ctype,
                      const void *body, size_t len)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    count_status(h, code);
    if (ctype != NULL) {
        evhttp_add_header(oh, "Content-Type", ctype);
    }
    evhttp_add_header(oh, "Cache-Control", "no-store");
    if (b != NULL && len > 0) {
        evbuffer_add(b, body, len);
    }
    evhttp_send_reply(req, code, reason_for(code), b);
    if (b != NULL) {
        evbuffer_free(b);
    }
}

/* Sends a JSON error: the adapter's shape, or an OpenAI error object when |openai|. */
static void send_error(lg_sse_http *h, struct evhttp_request *req, int code, bool openai,
                       const char *ecode, const char *message)
{
    struct lg_buf b;
    lg_buf_init(&b, HTTP_MAX_SMALL_BODY_BYTES);
    int rc;
    if (openai) {
        const char *type = code == 401   ? "authentication_error"
                           : code == 403 ? "permission_error"
                           : code == 404 ? "not_found_error"
                           : code == 429 ? "rate_limit_error"
                           : code < 500  ? "invalid_request_error"
                                         : "api_error";
        rc = lg_sse_json_openai_error(&b, type, ecode, message);
    } else {
        rc = lg_sse_json_error(&b, ecode, message);
    }
    if (code == 401) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
    }
    if (rc == LG_OK) {
        send_body(h, req, code, "application/json", b.data, b.len);
    } else {
        send_body(h, req, code, "application/json", "{\"error\":{\"code\":\"internal\"}}", 28);
    }
    lg_buf_deinit(&b);
}

/* Sends the error for lg_err |rc| with the HTTP status from the error table. */
static void send_lg_error(lg_sse_http *h, struct evhttp_request *req, bool openai, int rc,
                          const char *message)
{
    char code[32];
    err_code(rc, code, sizeof(code));
    send_error(h, req, lg_err_http_status(rc), openai, code,
               message != NULL && message[0] != 0 ? message : lg_err_str(rc));
}

/* ---- CORS ---------------------------------------------------------------------------------- */

static bool cors_allowed(const lg_sse_http *h, const char *origin)
{
    if (h->cors == NULL || origin == NULL) {
        return false;
    }
    size_t olen = strlen(origin);
    if (olen == 0 || olen > HTTP_MAX_ORIGIN_BYTES) {
        return false;
    }
    const char *p = h->cors;
    while (*p != 0) {
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ') {
            n--;
        }
        if (n == olen && memcmp(p, origin, n) == 0) {
            return true;
        }
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    return false;
}

/* True when |origin| is this server itself ("http(s)://" + Host): browsers send Origin on
 * same-origin POSTs too, and those need no CORS at all. */
static bool is_same_origin(struct evhttp_request *req, const char *origin)
{
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    const char *rest = NULL;
    if (host == NULL) {
        return false;
    }
    if (strncmp(origin, "http://", strlen("http://")) == 0) {
        rest = origin + strlen("http://");
    } else if (strncmp(origin, "https://", strlen("https://")) == 0) {
        rest = origin + strlen("https://");
    }
    return rest != NULL && strcasecmp(rest, host) == 0;
}

/* Adds CORS headers for an allowed Origin; returns whether the origin is allowed (or absent,
 * or the server itself). */
static bool cors_apply(lg_sse_http *h, struct evhttp_request *req)
{
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (origin == NULL || is_same_origin(req, origin)) {
        return true;
    }
    if (!cors_allowed(h, origin)) {
        return false;
    }
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    /* An explicit origin, never "*": EventSource withCredentials requires it. */
    evhttp_add_header(oh, "Access-Control-Allow-Origin", origin);
    evhttp_add_header(oh, "Access-Control-Allow-Credentials", "true");
    evhttp_add_header(oh, "Vary", "Origin");
    return true;
}

/* ---- user stream slots ---------------------------------------------------------------------- */

static int slot_take(lg_sse_http *h, struct stream *st)
{
    struct user_slot *u = lg_sse_table_get(h->users, st->user);
    if (u == NULL) {
        u = lg_calloc(1, sizeof(*u));
        if (u == NULL) {
            return LG_ERR_NOMEM;
        }
        memcpy(u->name, st->user, strlen(st->user) + 1);
        if (lg_sse_table_put(h->users, u->name, u) != LG_OK) {
            lg_free(u);
            return LG_ERR_NOMEM;
        }
    }
    if (u->n >= h->o.max_streams_per_user) {
        if (u->n == 0) {
            lg_sse_table_del(h->users, u->name);
            lg_free(u);
        }
        return LG_ERR_EXHAUSTED;
    }
    u->n++;
    st->counted = true;
    return LG_OK;
}

static void slot_release(lg_sse_http *h, struct stream *st)
{
    if (!st->counted) {
        return;
    }
    st->counted = false;
    struct user_slot *u = lg_sse_table_get(h->users, st->user);
    if (u != NULL && --u->n <= 0) {
        lg_sse_table_del(h->users, u->name);
        lg_free(u);
    }
}

/* ---- streams -------------------------------------------------------------------------------- */

static bool is_event_stream(enum stream_kind k)
{
    return k == SK_EVENTS || k == SK_OAI_STREAM;
}

static int stream_new(lg_sse_http *h, struct conn *c, struct evhttp_request *req,
                      enum stream_kind kind, const char *user, struct stream **out)
{
    struct stream *st = lg_calloc(1, sizeof(*st));
    if (st == NULL) {
        return LG_ERR_NOMEM;
    }
    st->h = h;
    st->c = c;
    st->req = req;
    st->kind = kind;
    size_t ulen = strlen(user);
    memcpy(st->user, user, ulen < sizeof(st->user) ? ulen + 1 : sizeof(st->user));
    st->user[sizeof(st->user) - 1] = 0;
    st->created = (int64_t)time(NULL);
    lg_buf_init(&st->text, LG_SSE_MAX_COMPLETION_BYTES);
    lg_buf_init(&st->out, (size_t)h->o.outbuf_bytes);
    if (is_event_stream(kind)) {
        int rc = slot_take(h, st);
        if (rc != LG_OK) {
            lg_buf_deinit(&st->text);
            lg_buf_deinit(&st->out);
            lg_free(st);
            return rc;
        }
        h->nstreams++;
        lg_metrics_gauge_set(h->m_streams, (int64_t)h->nstreams);
    }
    c->active = st;
    *out = st;
    return LG_OK;
}

/* Forgets output not yet handed to evhttp (the connection is gone or going). */
static void stream_drop_pending(struct stream *st)
{
    if (st->flush_queued) {
        TAILQ_REMOVE(&st->h->flush, st, flush_link);
        st->flush_queued = false;
    }
    lg_buf_deinit(&st->out);
}

/* Hands this turn's output of |st| to evhttp as one chunk and releases its memory. */
static void stream_flush(struct stream *st)
{
    lg_sse_http *h = st->h;
    if (st->flush_queued) {
        TAILQ_REMOVE(&h->flush, st, flush_link);
        st->flush_queued = false;
    }
    if (st->out.len > 0 && st->req != NULL && st->c != NULL) {
        if (evbuffer_add(h->scratch, st->out.data, st->out.len) == 0) {
            evhttp_send_reply_chunk(st->req, h->scratch);
        }
        evbuffer_drain(h->scratch, evbuffer_get_length(h->scratch));
    }
    lg_buf_deinit(&st->out);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    lg_sse_http *h = arg;
    struct stream *st;
    (void)fd;
    (void)what;
    while ((st = TAILQ_FIRST(&h->flush)) != NULL) {
        stream_flush(st);
    }
}

/* Frees |st| and its call. Never called from inside the call's own callbacks with a live
 * call (callers set st->call = NULL first there). */
static void stream_free(struct stream *st)
{
    lg_sse_http *h = st->h;
    if (st->call != NULL) {
        lg_sse_call_abort(st->call);
        st->call = NULL;
    }
    if (st->timer != NULL) {
        event_free(st->timer);
    }
    if (st->c != NULL && st->c->active == st) {
        st->c->active = NULL;
    }
    if (is_event_stream(st->kind)) {
        h->nstreams--;
        lg_metrics_gauge_set(h->m_streams, (int64_t)h->nstreams);
    }
    slot_release(h, st);
    stream_drop_pending(st);
    lg_buf_deinit(&st->text);
    lg_free(st->oai);
    lg_free(st);
}

/* Detaches |st| from its connection before a reply call that may close the connection
 * (and run the close callback) synchronously. Returns the request to answer. */
static struct evhttp_request *stream_detach(struct stream *st)
{
    stream_flush(st); /* this turn's events go out before whatever the caller sends */
    struct evhttp_request *req = st->req;
    if (st->c != NULL && st->c->active == st) {
        st->c->active = NULL;
    }
    st->c = NULL;
    st->req = NULL;
    return req;
}

static void on_kill(evutil_socket_t fd, short what, void *arg);

/* Closes the client connection on a later loop turn (a slow client, a broken stream). The
 * event is made on first use: most connections never need it. Without memory for it the
 * connection is left to the client or the timeouts (nothing more is written to it). */
static void conn_kill_later(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->kill == NULL) {
        c->kill = event_new(c->h->base, -1, 0, on_kill, c);
    }
    if (c->kill != NULL) {
        event_active(c->kill, 0, 0);
    }
}

/* Appends |b| to the chunked reply. The bytes are collected per stream and handed to evhttp
 * once per loop turn (on_flush, or earlier in stream_detach): a gRPC read carries many events
 * of one stream, and one chunk (one chunk header, one evbuffer hand-over, one write wake-up)
 * for all of them is what keeps the per-event cost at the encoding. A client whose queued
 * output passes the bound is cut off (it can resume with Last-Event-ID): LG_ERR_EXHAUSTED;
 * LG_ERR_NOMEM without memory for the pending bytes. With |now| the bytes go out at once. */
static int stream_write_at(struct stream *st, const struct lg_buf *b, bool now)
{
    lg_sse_http *h = st->h;
    if (st->c == NULL) {
        return LG_ERR_CLOSED;
    }
    struct bufferevent *bev = evhttp_connection_get_bufferevent(st->c->evcon);
    size_t queued = evbuffer_get_length(bufferevent_get_output(bev)) + st->out.len;
    if (queued + b->len > (size_t)h->o.outbuf_bytes) {
        struct lg_log_ctx ctx = {st->c->id, st->stream_id, NULL, st->user};
        lg_log(LG_LOG_WARN, &ctx, "slow_client", "queued=%zu limit=%" PRId64, queued,
               h->o.outbuf_bytes);
        lg_metrics_counter_inc(h->m_slow);
        conn_kill_later(st->c);
        return LG_ERR_EXHAUSTED;
    }
    if (now) {
        /* A lone write (preamble, heartbeat: what an idle stream does) goes straight out
         * behind anything pending, with no per-stream staging memory. */
        stream_flush(st);
        evbuffer_add(h->scratch, b->data, b->len);
        evhttp_send_reply_chunk(st->req, h->scratch);
        evbuffer_drain(h->scratch, evbuffer_get_length(h->scratch));
        return LG_OK;
    }
    int rc = lg_buf_append(&st->out, b->data, b->len);
    if (rc != LG_OK) {
        return rc;
    }
    if (!st->flush_queued) {
        if (TAILQ_EMPTY(&h->flush)) {
            event_active(h->flush_ev, 0, 0);
        }
        TAILQ_INSERT_TAIL(&h->flush, st, flush_link);
        st->flush_queued = true;
    }
    return LG_OK;
}

static int stream_write(struct stream *st, const struct lg_buf *b)
{
    return stream_write_at(st, b, false);
}

static void timer_arm(struct stream *st, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(st->timer, &tv);
}

/* Fixes the kernel send buffer of an event stream's socket. Linux grows an autotuned send
 * buffer to tcp_wmem[2] (4 MiB) toward a client that stops reading, which would hide a slow
 * client from the outbuf bound for megabytes; a fixed size keeps the per-client total at
 * about 2 * LG_SSE_SNDBUF_BYTES (the kernel doubles it) + --outbuf-bytes. */
static void stream_fix_sndbuf(struct stream *st)
{
    int v = LG_SSE_SNDBUF_BYTES;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(st->c->evcon);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) != 0) {
        int e = errno;
        lg_log(LG_LOG_DEBUG, NULL, "sndbuf_failed", "errno=%d", e);
    }
}

/* Sends 200 with the event-stream headers and the preamble (a comment that makes proxies and
 * browsers see the response at once, then `retry:` for SK_EVENTS). */
static int stream_open(struct stream *st)
{
    struct lg_buf b;
    struct evkeyvalq *oh = evhttp_request_get_output_headers(st->req);
    evhttp_add_header(oh, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(oh, "Cache-Control", "no-cache, no-transform");
    evhttp_add_header(oh, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(st->req, 200, "OK");
    st->headers_sent = true;
    stream_fix_sndbuf(st);
    /* The request headers were used up (auth, resume point, CORS); a browser sends a
     * kilobyte or more of them, which an idle stream would otherwise keep for hours. */
    evhttp_clear_headers(evhttp_request_get_input_headers(st->req));
    lg_buf_init(&b, HTTP_MAX_SMALL_BODY_BYTES);
    int rc = lg_sse_enc_comment(&b, "llmgate");
    if (rc == LG_OK && st->kind == SK_EVENTS) {
        rc = lg_sse_enc_retry(&b, LG_SSE_RETRY_MS);
    }
    if (rc == LG_OK) {
        rc = stream_write_at(st, &b, true);
    }
    lg_buf_deinit(&b);
    if (rc == LG_OK) {
        timer_arm(st, st->h->o.heartbeat_ms);
    }
    return rc;
}

/* Ends a reply that may or may not have started, then frees |st|. */
static void stream_finish(struct stream *st)
{
    struct evhttp_request *req = stream_detach(st);
    if (req != NULL && st->headers_sent) {
        evhttp_send_reply_end(req);
    }
    stream_free(st);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct stream *st = arg;
    struct lg_buf b;
    (void)fd;
    (void)what;
    if (st->c == NULL) {
        return;
    }
    if (!st->headers_sent) {
        stream_open(st); /* on failure the connection is already being closed */
        return;
    }
    lg_buf_init(&b, HTTP_MAX_SMALL_BODY_BYTES);
    int rc = st->kind == SK_EVENTS ? lg_sse_enc_heartbeat(&b) : lg_sse_enc_comment(&b, "ping");
    if (rc == LG_OK && stream_write_at(st, &b, true) == LG_OK) {
        lg_metrics_counter_inc(st->h->m_heartbeats);
        timer_arm(st, st->h->o.heartbeat_ms);
    }
    lg_buf_deinit(&b);
}

/* ---- chat callbacks: SSE events --------------------------------------------------------------- */

static int encode_event(struct lg_buf *b, const struct lg_sse_chat_event *ev)
{
    switch (ev->type) {
    case LG_SSE_TYPE_START:
        return lg_sse_enc_start(b, ev->stream_id, ev->seq, ev->model);
    case LG_SSE_TYPE_CONTENT:
        return lg_sse_enc_content(b, ev->stream_id, ev->seq, ev->text, ev->text_len);
    case LG_SSE_TYPE_DONE:
        return lg_sse_enc_done(b, ev->stream_id, ev->seq, &ev->done);
    case LG_SSE_TYPE_ERROR: {
        char code[64];
        size_t i = 0;
        const char *src = ev->code != NULL && ev->code[0] != 0 ? ev->code : "internal";
        for (; src[i] != 0 && i + 1 < sizeof(code); i++) {
            char ch = src[i];
            ch = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
            code[i] = ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) ? ch : '_';
        }
        code[i] = 0;
        return lg_sse_enc_error(b, ev->stream_id, ev->seq, code, ev->message);
    }
    case LG_SSE_TYPE_HEARTBEAT:
        break;
    }
    return LG_ERR_INVALID;
}

static int on_events_event(const struct lg_sse_chat_event *ev, void *ud)
{
    struct stream *st = ud;
    if (!st->headers_sent && stream_open(st) != LG_OK) {
        st->call = NULL;
        return LG_ERR_CLOSED;
    }
    struct lg_buf *b = &st->h->enc;
    lg_buf_reset(b);
    int rc = encode_event(b, ev);
    if (rc == LG_OK) {
        rc = stream_write(st, b);
    }
    if (rc != LG_OK) {
        st->call = NULL; /* returning an error cancels it; no end callback follows */
        conn_kill_later(st->c);
        return rc;
    }
    st->events++;
    lg_metrics_counter_inc(st->h->m_events);
    return LG_OK;
}

static bool is_resume_expired(int rc, const char *msg)
{
    return rc == LG_ERR_EXPIRED ||
           (rc == LG_ERR_NOT_FOUND && msg != NULL && strstr(msg, "resume_expired") != NULL);
}

/* Failures a retry may cure. EventSource gives up on any non-200 answer, so these open the
 * stream and end it with an error event instead: the browser then reconnects by itself. */
static bool is_transient(int rc)
{
    return rc == LG_ERR_UNAVAILABLE || rc == LG_ERR_TIMEOUT || rc == LG_ERR_UPSTREAM ||
           rc == LG_ERR_IO || rc == LG_ERR_CLOSED || rc == LG_ERR_AGAIN;
}

static void on_events_end(int rc, const char *msg, void *ud)
{
    struct stream *st = ud;
    lg_sse_http *h = st->h;
    struct lg_log_ctx ctx = {st->c != NULL ? st->c->id : 0, st->stream_id, NULL, st->user};
    st->call = NULL;
    if (rc != LG_OK && !is_resume_expired(rc, msg) && rc != LG_ERR_NOT_FOUND &&
        rc != LG_ERR_PERMISSION) {
        lg_metrics_counter_inc(h->m_upstream_err);
        lg_log(LG_LOG_WARN, &ctx, "resume_failed", "rc=%s events=%" PRIu64, lg_err_name(rc),
               st->events);
    }
    if (!st->headers_sent && st->c != NULL) {
        if (rc == LG_OK && st->events == 0) {
            struct evhttp_request *req = stream_detach(st);
            send_body(h, req, 204, NULL, NULL, 0); /* finished and fully delivered */
            stream_free(st);
            return;
        }
        if (!is_resume_expired(rc, msg) && !is_transient(rc) && rc != LG_OK) {
            struct evhttp_request *req = stream_detach(st);
            send_lg_error(h, req, false, rc, rc == LG_ERR_NOT_FOUND ? "no such stream" : msg);
            stream_free(st);
            return;
        }
        if (stream_open(st) != LG_OK) {
            stream_free(st);
            return;
        }
    }
    if (rc != LG_OK && st->c != NULL) {
        struct lg_buf b;
        char code[32];
        lg_buf_init(&b, HTTP_MAX_SMALL_BODY_BYTES);
        if (is_resume_expired(rc, msg)) {
            memcpy(code, "resume_expired", sizeof("resume_expired"));
        } else {
            err_code(rc, code, sizeof(code));
        }
        if (lg_sse_enc_error(&b, NULL, 0, code, msg) == LG_OK) {
            stream_write(st, &b);
        }
        lg_buf_deinit(&b);
    }
    stream_finish(st);
}

/* ---- chat callbacks: create ------------------------------------------------------------------- */

static void events_url(lg_sse_http *h, const char *user, const char *sid, char *out,
                       size_t outlen)
{
    char tok[LG_SSE_MAX_TOKEN_BYTES + 1];
    int n;
    if (h->keys != NULL && user[0] != 0 &&
        lg_sse_token_make(h->secret, user, sid, (int64_t)time(NULL) + LG_SSE_TOKEN_TTL_S, tok,
                          sizeof(tok)) == LG_OK) {
        n = snprintf(out, outlen, HTTP_PATH_STREAMS "/%s/events?token=%s", sid, tok);
    } else {
        n = snprintf(out, outlen, HTTP_PATH_STREAMS "/%s/events", sid);
    }
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = 0;
    }
}

static void reply_created(struct stream *st)
{
    lg_sse_http *h = st->h;
    char url[HTTP_MAX_URL_BYTES];
    struct lg_buf b;
    events_url(h, st->user, st->stream_id, url, sizeof(url));
    lg_buf_init(&b, HTTP_MAX_SMALL_BODY_BYTES);
    struct evhttp_request *req = stream_detach(st);
    if (lg_sse_json_created(&b, st->stream_id, url) == LG_OK) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", url);
        send_body(h, req, 201, "application/json", b.data, b.len);
    } else {
        send_lg_error(h, req, false, LG_ERR_INTERNAL, NULL);
    }
    lg_buf_deinit(&b);
}

static int on_create_event(const struct lg_sse_chat_event *ev, void *ud)
{
    struct stream *st = ud;
    size_t n = strlen(ev->stream_id);
    st->call = NULL; /* detached: chat ends the call after this event; the stream lives on */
    if (st->c == NULL) {
        return LG_ERR_CLOSED;
    }
    if (n >= sizeof(st->stream_id)) {
        struct evhttp_request *req = stream_detach(st);
        send_lg_error(st->h, req, false, LG_ERR_UPSTREAM, "bad stream id from chat service");
        stream_free(st);
        return LG_ERR_CANCELLED;
    }
    memcpy(st->stream_id, ev->stream_id, n + 1);
    struct lg_log_ctx ctx = {st->c->id, st->stream_id, NULL, st->user};
    lg_log(LG_LOG_INFO, &ctx, "stream_created", "first_seq=%" PRIu64, ev->seq);
    reply_created(st);
    stream_free(st);
    return LG_ERR_CANCELLED;
}

static void on_plain_end(int rc, const char *msg, void *ud)
{
    struct stream *st = ud;
    bool openai = st->kind == SK_OAI_FULL || st->kind == SK_OAI_STREAM;
    st->call = NULL;
    if (st->c == NULL) {
        stream_free(st);
        return;
    }
    if (rc == LG_OK) {
        rc = LG_ERR_UPSTREAM;
        msg = "chat service ended the call without an answer";
    }
    lg_metrics_counter_inc(st->h->m_upstream_err);
    struct evhttp_request *req = stream_detach(st);
    send_lg_error(st->h, req, openai, rc, msg);
    stream_free(st);
}

/* ---- chat callbacks: OpenAI ------------------------------------------------------------------ */

static void oai_ctx(const struct stream *st, struct lg_sse_oai_ctx *c)
{
    c->id = st->oai->oai_id;
    c->model = st->oai->model;
    c->created = st->created;
}

static void oai_note_event(struct stream *st, const struct lg_sse_chat_event *ev)
{
    if (st->oai->oai_id[0] == 0) {
        snprintf(st->oai->oai_id, sizeof(st->oai->oai_id), "chatcmpl-%.64s", ev->stream_id);
    }
    if (ev->type == LG_SSE_TYPE_START && ev->model != NULL && ev->model[0] != 0) {
        size_t n = strlen(ev->model);
        n = n < sizeof(st->oai->model) - 1 ? n : sizeof(st->oai->model) - 1;
        memcpy(st->oai->model, ev->model, n);
        st->oai->model[n] = 0;
    }
    if (ev->type == LG_SSE_TYPE_DONE) {
        st->done = ev->done;
        const char *fr = ev->done.finish_reason != NULL ? ev->done.finish_reason : "stop";
        size_t n = strlen(fr);
        n = n < sizeof(st->oai->finish) - 1 ? n : sizeof(st->oai->finish) - 1;
        memcpy(st->oai->finish, fr, n);
        st->oai->finish[n] = 0;
        st->done.finish_reason = st->oai->finish;
        st->done_seen = true;
    }
}

static int oai_stream_piece(struct stream *st, const struct lg_sse_chat_event *ev,
                            struct lg_buf *b)
{
    struct lg_sse_oai_ctx c;
    int rc = LG_OK;
    oai_ctx(st, &c);
    switch (ev->type) {
    case LG_SSE_TYPE_START:
        rc = lg_sse_json_oai_chunk_role(b, &c);
        break;
    case LG_SSE_TYPE_CONTENT:
        rc = lg_sse_json_oai_chunk_text(b, &c, ev->text, ev->text_len);
        break;
    case LG_SSE_TYPE_DONE:
        rc = lg_sse_json_oai_chunk_finish(b, &c, st->oai->finish);
        if (rc == LG_OK && st->include_usage) {
            rc = lg_sse_json_oai_chunk_usage(b, &c, &st->done);
        }
        if (rc == LG_OK) {
            rc = lg_sse_json_oai_done(b);
        }
        break;
    case LG_SSE_TYPE_ERROR:
        rc = lg_buf_append_str(b, "data: ");
        if (rc == LG_OK) {
            rc = lg_sse_json_openai_error(b, "api_error", ev->code != NULL ? ev->code : "error",
                                          ev->message != NULL ? ev->message : "");
        }
        if (rc == LG_OK) {
            rc = lg_buf_append_str(b, "\n\n");
        }
        break;
    case LG_SSE_TYPE_HEARTBEAT:
        break;
    }
    return rc;
}

static int on_oai_event(const struct lg_sse_chat_event *ev, void *ud)
{
    struct stream *st = ud;
    struct lg_buf b;
    int rc;
    oai_note_event(st, ev);
    if (st->kind == SK_OAI_FULL) {
        if (ev->type == LG_SSE_TYPE_CONTENT) {
            rc = lg_buf_append(&st->text, ev->text, ev->text_len);
            if (rc != LG_OK) {
                st->call = NULL;
                struct evhttp_request *req = stream_detach(st);
                send_lg_error(st->h, req, true, rc, "answer too large");
                stream_free(st);
                return rc;
            }
        } else if (ev->type == LG_SSE_TYPE_ERROR) {
            st->call = NULL;
            struct evhttp_request *req = stream_detach(st);
            send_error(st->h, req, 502, true, ev->code != NULL ? ev->code : "upstream_error",
                       ev->message != NULL ? ev->message : "upstream error");
            stream_free(st);
            return LG_ERR_UPSTREAM;
        }
        return LG_OK;
    }
    if (!st->headers_sent) {
        if (ev->type == LG_SSE_TYPE_ERROR) {
            st->call = NULL;
            struct evhttp_request *req = stream_detach(st);
            send_error(st->h, req, 502, true, ev->code != NULL ? ev->code : "upstream_error",
                       ev->message != NULL ? ev->message : "upstream error");
            stream_free(st);
            return LG_ERR_UPSTREAM;
        }
        if (stream_open(st) != LG_OK) {
            st->call = NULL;
            return LG_ERR_CLOSED;
        }
        if (ev->type != LG_SSE_TYPE_START) {
            struct lg_sse_chat_event role = {.type = LG_SSE_TYPE_START};
            lg_buf_init(&b, HTTP_MAX_SMALL_BODY_BYTES);
            rc = oai_stream_piece(st, &role, &b);
            if (rc == LG_OK) {
                rc = stream_write(st, &b);
            }
            lg_buf_deinit(&b);
            if (rc != LG_OK) {
                st->call = NULL;
                return rc;
            }
        }
    }
    lg_buf_init(&b, LG_SSE_MAX_EVENT_BYTES);
    rc = oai_stream_piece(st, ev, &b);
    if (rc == LG_OK && b.len > 0) {
        rc = stream_write(st, &b);
    }
    lg_buf_deinit(&b);
    if (rc != LG_OK) {
        st->call = NULL;
        conn_kill_later(st->c);
        return rc;
    }
    st->events++;
    lg_metrics_counter_inc(st->h->m_events);
    return LG_OK;
}

static void on_oai_end(int rc, const char *msg, void *ud)
{
    struct stream *st = ud;
    lg_sse_http *h = st->h;
    st->call = NULL;
    if (st->c == NULL) {
        stream_free(st);
        return;
    }
    if (st->kind == SK_OAI_FULL) {
        struct evhttp_request *req = stream_detach(st);
        if (rc == LG_OK && st->done_seen) {
            struct lg_buf b;
            struct lg_sse_oai_ctx c;
            oai_ctx(st, &c);
            lg_buf_init(&b, LG_SSE_MAX_COMPLETION_BYTES + HTTP_MAX_SMALL_BODY_BYTES);
            int erc = lg_sse_json_oai_completion(&b, &c, st->text.data, st->text.len, &st->done);
            if (erc == LG_OK) {
                send_body(h, req, 200, "application/json", b.data, b.len);
            } else {
                send_lg_error(h, req, true, erc, NULL);
            }
            lg_buf_deinit(&b);
        } else {
            lg_metrics_counter_inc(h->m_upstream_err);
            send_lg_error(h, req, true, rc != LG_OK ? rc : LG_ERR_UPSTREAM, msg);
        }
        stream_free(st);
        return;
    }
    if (!st->headers_sent) {
        lg_metrics_counter_inc(h->m_upstream_err);
        struct evhttp_request *req = stream_detach(st);
        send_lg_error(h, req, true, rc != LG_OK ? rc : LG_ERR_UPSTREAM, msg);
        stream_free(st);
        return;
    }
    if (rc != LG_OK || !st->done_seen) {
        struct lg_buf b;
        char code[32];
        err_code(rc != LG_OK ? rc : LG_ERR_UPSTREAM, code, sizeof(code));
        lg_buf_init(&b, HTTP_MAX_SMALL_BODY_BYTES);
        if (lg_buf_append_str(&b, "data: ") == LG_OK &&
            lg_sse_json_openai_error(&b, "api_error", code,
                                     msg != NULL && msg[0] != 0 ? msg : "stream ended early") ==
                LG_OK &&
            lg_buf_append_str(&b, "\n\n") == LG_OK) {
            stream_write(st, &b);
        }
        lg_buf_deinit(&b);
    }
    stream_finish(st);
}

/* ---- chat callbacks: cancel ------------------------------------------------------------------ */

static void on_cancel_done(int rc, bool cancelled, const char *msg, void *ud)
{
    struct stream *st = ud;
    st->call = NULL;
    if (st->c == NULL) {
        stream_free(st);
        return;
    }
    struct evhttp_request *req = stream_detach(st);
    if (rc == LG_OK) {
        const char *body = cancelled ? "{\"cancelled\":true}" : "{\"cancelled\":false}";
        send_body(st->h, req, 200, "application/json", body, strlen(body));
    } else {
        send_lg_error(st->h, req, false, rc, rc == LG_ERR_NOT_FOUND ? "no such stream" : msg);
    }
    stream_free(st);
}

/* ---- authentication ------------------------------------------------------------------------- */

/* Resolves the caller from Authorization: Bearer. Open mode: "anonymous". */
static int auth_bearer(lg_sse_http *h, struct evhttp_request *req, char *user, size_t userlen)
{
    const char *hdr = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (h->keys == NULL) {
        snprintf(user, userlen, "%s", HTTP_OPEN_USER);
        return LG_OK;
    }
    const char *key;
    size_t klen;
    const char *u;
    if (lg_sse_auth_bearer(hdr, &key, &klen) != LG_OK ||
        lg_sse_keys_lookup(h->keys, key, klen, &u) != LG_OK) {
        return LG_ERR_UNAUTHENTICATED;
    }
    snprintf(user, userlen, "%s", u);
    return LG_OK;
}

/* GET /events: Bearer, else ?token=. (A stream-id-as-capability mode is not offered: the
 * chat service resumes a stream for its owner only, and the stateless adapter cannot know
 * the owner from the id alone.) */
static int auth_events(lg_sse_http *h, struct evhttp_request *req, const char *query,
                       const char *sid, char *user, size_t userlen)
{
    char tok[LG_SSE_MAX_TOKEN_BYTES + 1];
    if (h->keys == NULL ||
        evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization") != NULL) {
        return auth_bearer(h, req, user, userlen);
    }
    int rc = lg_sse_query_get(query, "token", tok, sizeof(tok));
    if (rc != LG_OK) {
        return LG_ERR_UNAUTHENTICATED;
    }
    rc = lg_sse_token_verify(h->secret, tok, sid, (int64_t)time(NULL), user, userlen);
    if (rc == LG_ERR_EXPIRED || rc == LG_ERR_INVALID) {
        rc = LG_ERR_UNAUTHENTICATED;
    }
    return rc;
}

/* ---- handlers --------------------------------------------------------------------------------- */

static struct evbuffer *req_body(struct evhttp_request *req, const char **p, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    *p = (const char *)evbuffer_pullup(in, -1);
    return in;
}

static bool is_json_request(struct evhttp_request *req)
{
    const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
    return ct == NULL || strncasecmp(ct, "application/json", strlen("application/json")) == 0;
}

/* Parses the chat request body into |r| (arena-owned) or answers the error itself. */
static int parse_chat_body(lg_sse_http *h, struct evhttp_request *req, bool openai, lg_arena *a,
                           struct lg_sse_chat_req *r)
{
    const char *body;
    size_t len;
    char why[128] = "out of memory";
    if (!is_json_request(req)) {
        send_error(h, req, 415, openai, "unsupported_media_type", "Content-Type must be "
                                                                  "application/json");
        return LG_ERR_UNSUPPORTED_MEDIA;
    }
    req_body(req, &body, &len);
    if (len > (size_t)h->o.max_body_bytes) {
        send_error(h, req, 413, openai, "too_large", "body too large");
        return LG_ERR_TOO_LARGE;
    }
    int rc = lg_sse_json_parse_chat(a, body != NULL ? body : "", len, r, why, sizeof(why));
    if (rc != LG_OK) {
        send_error(h, req, rc == LG_ERR_TOO_LARGE ? 413 : (rc == LG_ERR_NOMEM ? 503 : 400), openai,
                   rc == LG_ERR_TOO_LARGE ? "too_large"
                   : rc == LG_ERR_NOMEM   ? "unavailable"
                                          : "invalid_request",
                   why);
    }
    return rc;
}

static void handle_start(lg_sse_http *h, struct conn *c, struct evhttp_request *req, bool openai)
{
    char user[LG_SSE_MAX_USER_ID_BYTES + 1];
    struct lg_sse_chat_req r;
    lg_arena *a = NULL;
    struct stream *st = NULL;
    if (auth_bearer(h, req, user, sizeof(user)) != LG_OK) {
        send_error(h, req, 401, openai, "unauthenticated", "missing or unknown API key");
        return;
    }
    if (lg_arena_new(&a, 0, (size_t)h->o.max_body_bytes * 4 + HTTP_ARENA_BASE_BYTES) != LG_OK) {
        send_lg_error(h, req, openai, LG_ERR_NOMEM, NULL);
        return;
    }
    if (parse_chat_body(h, req, openai, a, &r) != LG_OK) {
        goto out_free_arena;
    }
    enum stream_kind kind = !openai ? SK_CREATE : (r.stream ? SK_OAI_STREAM : SK_OAI_FULL);
    int rc = stream_new(h, c, req, kind, user, &st);
    if (rc != LG_OK) {
        send_error(h, req, rc == LG_ERR_EXHAUSTED ? 429 : 503, openai,
                   rc == LG_ERR_EXHAUSTED ? "too_many_streams" : "unavailable",
                   rc == LG_ERR_EXHAUSTED ? "too many concurrent streams for this user"
                                          : "out of memory");
        goto out_free_arena;
    }
    st->include_usage = r.include_usage;
    if (openai && (st->oai = lg_calloc(1, sizeof(*st->oai))) == NULL) {
        rc = LG_ERR_NOMEM;
    } else if (kind == SK_OAI_STREAM &&
               (st->timer = event_new(h->base, -1, 0, on_timer, st)) == NULL) {
        rc = LG_ERR_NOMEM;
    } else {
        if (openai) {
            snprintf(st->oai->model, sizeof(st->oai->model), "%s", r.model);
        }
        rc = openai ? lg_sse_chat_start(h->o.chat, user, &r, on_oai_event, on_oai_end, st,
                                        &st->call)
                    : lg_sse_chat_create(h->o.chat, user, &r, on_create_event, on_plain_end, st,
                                         &st->call);
    }
    if (rc != LG_OK) {
        stream_detach(st);
        stream_free(st);
        send_lg_error(h, req, openai, rc, "chat service unavailable");
    }
out_free_arena:
    lg_arena_free(a); /* the request was serialized by lg_sse_chat_start */
}

static void handle_events(lg_sse_http *h, struct conn *c, struct evhttp_request *req,
                          const char *sid, const char *query)
{
    char user[LG_SSE_MAX_USER_ID_BYTES + 1];
    uint64_t after = 0;
    struct stream *st = NULL;
    int rc = auth_events(h, req, query, sid, user, sizeof(user));
    if (rc != LG_OK) {
        send_error(h, req, rc == LG_ERR_PERMISSION ? 403 : 401, false,
                   rc == LG_ERR_PERMISSION ? "forbidden" : "unauthenticated",
                   rc == LG_ERR_PERMISSION ? "token is for another stream"
                                           : "missing, unknown or expired credentials");
        return;
    }
    const char *last =
        evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
    rc = lg_sse_resume_point(last, query, sid, &after);
    if (rc != LG_OK) {
        send_error(h, req, 400, false, "bad_last_event_id",
                   rc == LG_ERR_PERMISSION ? "Last-Event-ID names another stream"
                                           : "Last-Event-ID must be <stream_id>.<seq>");
        return;
    }
    rc = stream_new(h, c, req, SK_EVENTS, user, &st);
    if (rc != LG_OK) {
        send_error(h, req, rc == LG_ERR_EXHAUSTED ? 429 : 503, false,
                   rc == LG_ERR_EXHAUSTED ? "too_many_streams" : "unavailable",
                   rc == LG_ERR_EXHAUSTED ? "too many concurrent streams for this user"
                                          : "out of memory");
        return;
    }
    memcpy(st->stream_id, sid, strlen(sid) + 1);
    if (after > 0) {
        lg_metrics_counter_inc(h->m_resumes);
    }
    if ((st->timer = event_new(h->base, -1, 0, on_timer, st)) == NULL) {
        rc = LG_ERR_NOMEM;
    } else {
        rc = lg_sse_chat_resume(h->o.chat, user, sid, after, on_events_event, on_events_end, st,
                                &st->call);
    }
    if (rc != LG_OK) {
        stream_detach(st);
        stream_free(st);
        send_lg_error(h, req, false, rc, "chat service unavailable");
        return;
    }
    timer_arm(st, LG_SSE_FIRST_EVENT_WAIT_MS);
}

static void handle_cancel(lg_sse_http *h, struct conn *c, struct evhttp_request *req,
                          const char *sid)
{
    char user[LG_SSE_MAX_USER_ID_BYTES + 1];
    struct stream *st = NULL;
    if (auth_bearer(h, req, user, sizeof(user)) != LG_OK) {
        send_error(h, req, 401, false, "unauthenticated", "missing or unknown API key");
        return;
    }
    int rc = stream_new(h, c, req, SK_CANCEL, user, &st);
    if (rc == LG_OK) {
        memcpy(st->stream_id, sid, strlen(sid) + 1);
        rc = lg_sse_chat_cancel(h->o.chat, user, sid, on_cancel_done, st, &st->call);
        if (rc != LG_OK) {
            stream_detach(st);
            stream_free(st);
        }
    }
    if (rc != LG_OK) {
        send_lg_error(h, req, false, rc, "chat service unavailable");
    }
}

static void handle_token(lg_sse_http *h, struct evhttp_request *req, const char *sid)
{
    char user[LG_SSE_MAX_USER_ID_BYTES + 1];
    char url[HTTP_MAX_URL_BYTES];
    struct lg_buf b;
    if (auth_bearer(h, req, user, sizeof(user)) != LG_OK) {
        send_error(h, req, 401, false, "unauthenticated", "missing or unknown API key");
        return;
    }
    events_url(h, user, sid, url, sizeof(url));
    lg_buf_init(&b, HTTP_MAX_SMALL_BODY_BYTES);
    if (lg_sse_json_created(&b, sid, url) == LG_OK) {
        send_body(h, req, 200, "application/json", b.data, b.len);
    } else {
        send_lg_error(h, req, false, LG_ERR_INTERNAL, NULL);
    }
    lg_buf_deinit(&b);
}

static bool serve_file(lg_sse_http *h, struct evhttp_request *req, const char *path)
{
    for (size_t i = 0; i < h->o.nfiles; i++) {
        if (strcmp(h->files[i].path, path) == 0) {
            send_body(h, req, 200, h->files[i].content_type, h->files[i].data, h->files[i].len);
            return true;
        }
    }
    return false;
}

static void handle_preflight(lg_sse_http *h, struct evhttp_request *req)
{
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (origin == NULL || !cors_allowed(h, origin)) {
        send_error(h, req, 403, false, "cors_forbidden", "origin not allowed");
        return;
    }
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    evhttp_add_header(oh, "Access-Control-Allow-Headers",
                      "Authorization, Content-Type, Last-Event-ID");
    evhttp_add_header(oh, "Access-Control-Max-Age", HTTP_CORS_MAX_AGE_S);
    send_body(h, req, 204, NULL, NULL, 0);
}

/* Splits "/v1/chat/streams/{id}/{action}" into |sid| and |action|. */
static bool split_stream_path(const char *path, char *sid, size_t sidlen, const char **action)
{
    size_t plen = strlen(HTTP_PATH_STREAMS "/");
    if (strncmp(path, HTTP_PATH_STREAMS "/", plen) != 0) {
        return false;
    }
    const char *id = path + plen;
    const char *slash = strchr(id, '/');
    if (slash == NULL) {
        return false;
    }
    size_t n = (size_t)(slash - id);
    if (!lg_sse_is_stream_id(id, n) || n >= sidlen) {
        return false;
    }
    memcpy(sid, id, n);
    sid[n] = 0;
    *action = slash + 1;
    return true;
}

/* Request framing libevent 2.1 lets through: several Content-Length headers (it uses the
 * first). RFC 9112 6.3 says to refuse them; a proxy in front that used another one would
 * see a different request boundary (request smuggling). Counted on the parsed headers. */
static bool ambiguous_length(struct evhttp_request *req)
{
    int n = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next) {
        n += evutil_ascii_strcasecmp(kv->key, "Content-Length") == 0;
    }
    return n > 1;
}

static void route(lg_sse_http *h, struct conn *c, struct evhttp_request *req)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
    char sid[LG_SSE_MAX_STREAM_ID_BYTES + 1];
    const char *action = NULL;
    bool get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
    if (path == NULL) {
        send_error(h, req, 400, false, "bad_request", "bad request target");
        return;
    }
    if (ambiguous_length(req)) {
        /* The bytes after this request cannot be trusted either: close after the answer. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        send_error(h, req, 400, false, "bad_request", "more than one Content-Length");
        return;
    }
    if (m == EVHTTP_REQ_OPTIONS) {
        handle_preflight(h, req);
        return;
    }
    if (h->o.admin != NULL && lg_admin_serve(h->o.admin, req) == LG_OK) {
        return;
    }
    if (strcmp(path, "/v1/chat/completions") == 0) {
        if (m != EVHTTP_REQ_POST) {
            send_error(h, req, 405, true, "method_not_allowed", "use POST");
            return;
        }
        handle_start(h, c, req, true);
        return;
    }
    if (strcmp(path, HTTP_PATH_STREAMS) == 0) {
        if (m != EVHTTP_REQ_POST) {
            send_error(h, req, 405, false, "method_not_allowed", "use POST");
            return;
        }
        handle_start(h, c, req, false);
        return;
    }
    if (split_stream_path(path, sid, sizeof(sid), &action)) {
        if (strcmp(action, "events") == 0 && get) {
            handle_events(h, c, req, sid, query);
            return;
        }
        if (strcmp(action, "cancel") == 0 && m == EVHTTP_REQ_POST) {
            handle_cancel(h, c, req, sid);
            return;
        }
        if (strcmp(action, "token") == 0 && m == EVHTTP_REQ_POST) {
            handle_token(h, req, sid);
            return;
        }
        if (strcmp(action, "events") == 0 || strcmp(action, "cancel") == 0 ||
            strcmp(action, "token") == 0) {
            send_error(h, req, 405, false, "method_not_allowed", "method not allowed");
            return;
        }
    }
    if (get && serve_file(h, req, path)) {
        return;
    }
    send_error(h, req, 404, false, "not_found", "no such path");
}

/* ---- connections ---------------------------------------------------------------------------- */

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    struct conn *c = arg;
    lg_sse_http *h = c->h;
    (void)evcon;
    if (c->active != NULL) {
        struct stream *st = c->active;
        struct evhttp_request *req = st->req;
        stream_drop_pending(st); /* nothing more goes to a closing connection */
        stream_detach(st);
        /* evhttp detaches a request it failed on (EOF, timeout) from the connection and
         * leaves it to us; one still attached is freed by evhttp right after this call. */
        if (req != NULL && evhttp_request_get_connection(req) == NULL) {
            evhttp_request_free(req);
        }
        stream_free(st);
    }
    lg_sse_table_del(h->conns, c->evcon);
    if (c->kill != NULL) {
        event_free(c->kill);
    }
    lg_free(c);
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    (void)fd;
    (void)what;
    evhttp_connection_free(c->evcon); /* runs on_conn_close, which frees c */
}

static struct conn *conn_get(lg_sse_http *h, struct evhttp_connection *evcon)
{
    struct conn *c = lg_sse_table_get(h->conns, evcon);
    if (c != NULL) {
        return c;
    }
    c = lg_calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->h = h;
    c->evcon = evcon;
    c->id = ++h->next_conn_id;
    if (lg_sse_table_put(h->conns, evcon, c) != LG_OK) {
        lg_free(c);
        return NULL;
    }
    evhttp_connection_set_closecb(evcon, on_conn_close, c);
    return c;
}

/* Slow-header guard: evhttp resets its read timeout on every byte, so a client dripping a
 * header byte at a time could hold a connection forever. Each new connection gets a deadline
 * for its first complete request; the bufferevent is referenced so the pointer stays valid,
 * and when the deadline passes first the socket is shut down, which evhttp sees as EOF.
 * The reference also keeps the socket open after evhttp has let the connection go (a client
 * that connected and left): the guard therefore looks every HTTP_GUARD_TICK_MS and lets go
 * too, or a connect-and-close flood would hold each descriptor for the whole header timeout
 * (seen: 55 descriptors held 10 s each kept a 64-descriptor process refusing connections). */
#define HTTP_GUARD_TICK_MS 200

static void guard_free(struct guard *g)
{
    lg_sse_table_del(g->h->guards, g->bev);
    event_free(g->timer);
    bufferevent_decref(g->bev);
    lg_free(g);
}

static void guard_arm(struct guard *g)
{
    int64_t left = g->deadline_ms - lg_loop_now_ms();
    int64_t ms = left < HTTP_GUARD_TICK_MS ? (left > 0 ? left : 0) : HTTP_GUARD_TICK_MS;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    event_add(g->timer, &tv);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    struct guard *g = arg;
    bufferevent_data_cb rcb = NULL;
    (void)fd;
    (void)what;
    bufferevent_getcb(g->bev, &rcb, NULL, NULL, NULL);
    evutil_socket_t s = bufferevent_getfd(g->bev);
    if (rcb == NULL || s < 0) {
        /* evhttp already freed it; only our reference keeps it (and its fd) alive. */
        bufferevent_disable(g->bev, EV_READ | EV_WRITE);
    } else if (lg_loop_now_ms() < g->deadline_ms) {
        guard_arm(g);
        return;
    } else {
        lg_log(LG_LOG_INFO, NULL, "header_timeout", "fd=%d", (int)s);
        lg_metrics_counter_inc(g->h->m_4xx);
        shutdown(s, SHUT_RDWR);
    }
    guard_free(g);
}

/* evhttp 2.1 answers some refusals itself, before any callback of ours runs: a malformed
 * request, or a request line or header block over --max-header-bytes (400), a body over
 * --max-body-bytes (413, Content-Length or chunked), a method outside the allowed set (501).
 * It writes them with evhttp_send_error's HTML page and has no hook to change that (2.2 adds
 * evhttp_set_errorcb). The edge promises a JSON error for every refusal, so each connection's
 * output buffer is watched: when evhttp appends its page, the response it belongs to is
 * replaced in place by a JSON one (same status, except 501 becomes 405 with Allow: every
 * route takes the same four methods). The body is the OpenAI error object, which also holds
 * the adapter's own "code" and "message" fields, since which endpoint was meant is unknown
 * here. Cost for every other write: one callback and a 20-byte peek. */
#define HTTP_EVHTTP_PAGE "<HTML><HEAD>\n<TITLE>"
#define HTTP_EVHTTP_PAGE_LEN (sizeof(HTTP_EVHTTP_PAGE) - 1)
/* evhttp's status line and headers in front of its page (Content-Type, Connection, Date,
 * Content-Length) take about 130 bytes; the search for the status line looks this far back. */
#define HTTP_EVHTTP_HEAD_MAX 1024
#define HTTP_ALLOWED_METHODS "GET, HEAD, POST, OPTIONS"

/* Offset of the last "HTTP/1." status line in [from, to) of |buf|, or -1. */
static ev_ssize_t last_status_line(struct evbuffer *buf, size_t from, size_t to)
{
    struct evbuffer_ptr start, end, hit;
    ev_ssize_t last = -1;
    if (evbuffer_ptr_set(buf, &start, from, EVBUFFER_PTR_SET) != 0 ||
        evbuffer_ptr_set(buf, &end, to, EVBUFFER_PTR_SET) != 0) {
        return -1;
    }
    for (;;) {
        hit = evbuffer_search_range(buf, "HTTP/1.", 7, &start, &end);
        if (hit.pos < 0) {
            return last;
        }
        last = hit.pos;
        start = hit;
        if (evbuffer_ptr_set(buf, &start, 1, EVBUFFER_PTR_ADD) != 0) {
            return last;
        }
    }
}

static int json_refusal(lg_sse_http *h, struct evbuffer *out, int status)
{
    char msg[160];
    const char *code = "bad_request";
    if (status == 413) {
        code = "body_too_large";
        snprintf(msg, sizeof(msg), "request body over the %zu-byte limit", h->o.max_body_bytes);
    } else if (status == 405) {
        code = "method_not_allowed";
        snprintf(msg, sizeof(msg), "method not allowed; use %s", HTTP_ALLOWED_METHODS);
    } else {
        snprintf(msg, sizeof(msg),
                 "malformed HTTP request, or request line and headers over the %zu-byte limit",
                 h->o.max_header_bytes);
    }
    struct lg_buf b;
    lg_buf_init(&b, HTTP_MAX_SMALL_BODY_BYTES);
    int rc = lg_sse_json_openai_error(&b, "invalid_request_error", code, msg);
    if (rc == LG_OK &&
        (evbuffer_add_printf(out,
                             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                             "Cache-Control: no-store\r\nConnection: close\r\n%s"
                             "Content-Length: %zu\r\n\r\n",
                             status, reason_for(status),
                             status == 405 ? "Allow: " HTTP_ALLOWED_METHODS "\r\n" : "",
                             b.len) < 0 ||
         evbuffer_add(out, b.data, b.len) != 0)) {
        rc = LG_ERR_NOMEM;
    }
    lg_buf_deinit(&b);
    return rc;
}

/* Copies |n| bytes at offset |pos| of |buf| into |out|; false when there are fewer. Uses
 * evbuffer_peek, which (unlike evbuffer_copyout_from) also works while the bufferevent holds
 * the buffer's start frozen. */
static bool copy_at(struct evbuffer *buf, size_t pos, char *out, size_t n)
{
    struct evbuffer_ptr at;
    struct evbuffer_iovec v[4];
    if (evbuffer_ptr_set(buf, &at, pos, EVBUFFER_PTR_SET) != 0) {
        return false;
    }
    int nv = evbuffer_peek(buf, (ev_ssize_t)n, &at, v, 4);
    size_t got = 0;
    for (int i = 0; i < nv && i < 4 && got < n; i++) {
        size_t k = v[i].iov_len < n - got ? v[i].iov_len : n - got;
        memcpy(out + got, v[i].iov_base, k);
        got += k;
    }
    return got == n;
}

static void on_output_added(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    lg_sse_http *h = arg;
    char peek[HTTP_EVHTTP_PAGE_LEN];
    if (info->n_added < HTTP_EVHTTP_PAGE_LEN ||
        !copy_at(buf, info->orig_size, peek, sizeof(peek)) ||
        memcmp(peek, HTTP_EVHTTP_PAGE, sizeof(peek)) != 0) {
        return;
    }
    size_t from = info->orig_size > HTTP_EVHTTP_HEAD_MAX ? info->orig_size - HTTP_EVHTTP_HEAD_MAX
                                                         : 0;
    ev_ssize_t head = last_status_line(buf, from, info->orig_size);
    char line[16] = {0};
    if (head < 0 || !copy_at(buf, (size_t)head, line, 12)) {
        return;
    }
    int status = atoi(line + 9); /* "HTTP/1.1 413" */
    if (status < 400 || status > 599) {
        return;
    }
    if (status == 501) {
        status = 405;
    }
    /* The socket bufferevent keeps the start of its output frozen (only its writer drains
     * it); when evhttp refuses a pipelined request from inside its write callback, it is.
     * A 1-byte copyout fails exactly then. The swap below needs the start, so it is thawed
     * for the swap and frozen again as found. */
    char probe;
    bool frozen = evbuffer_copyout(buf, &probe, 1) < 0;
    /* Earlier responses still unsent stay in front; evhttp's one is swapped. Our own adds
     * re-enter this callback, which returns at the peek. Out of memory anywhere here:
     * evhttp's page goes out as it is. */
    struct evbuffer *resp = evbuffer_new();
    struct evbuffer *keep = evbuffer_new();
    if (frozen) {
        evbuffer_unfreeze(buf, 1);
    }
    if (resp != NULL && keep != NULL && json_refusal(h, resp, status) == LG_OK &&
        evbuffer_remove_buffer(buf, keep, (size_t)head) == (int)head) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        evbuffer_add_buffer(buf, keep);
        evbuffer_add_buffer(buf, resp);
    }
    if (frozen) {
        evbuffer_freeze(buf, 1);
    }
    if (resp != NULL) {
        evbuffer_free(resp);
    }
    if (keep != NULL) {
        evbuffer_free(keep);
    }
    count_status(h, status);
    lg_log(LG_LOG_INFO, NULL, "http_refused", "status=%d", status);
}

static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    lg_sse_http *h = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        return NULL;
    }
    if (evbuffer_add_cb(bufferevent_get_output(bev), on_output_added, h) == NULL) {
        bufferevent_free(bev);
        return NULL;
    }
    struct guard *g = lg_calloc(1, sizeof(*g));
    if (g == NULL) {
        return bev; /* no guard: the idle timeout still applies */
    }
    g->h = h;
    g->bev = bev;
    g->timer = event_new(base, -1, 0, on_guard, g);
    if (g->timer == NULL || lg_sse_table_put(h->guards, bev, g) != LG_OK) {
        if (g->timer != NULL) {
            event_free(g->timer);
        }
        lg_free(g);
        return bev;
    }
    bufferevent_incref(bev);
    g->deadline_ms = lg_loop_now_ms() + h->o.header_timeout_ms;
    guard_arm(g);
    return bev;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    lg_sse_http *h = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct guard *g = lg_sse_table_get(h->guards, evhttp_connection_get_bufferevent(evcon));
    if (g != NULL) {
        guard_free(g); /* a complete request arrived in time */
    }
    struct conn *c = conn_get(h, evcon);
    if (c == NULL) {
        send_error(h, req, 503, false, "unavailable", "out of memory");
        return;
    }
    c->nreq++;
    if (c->nreq >= h->o.max_requests_per_conn) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    }
    if (!cors_apply(h, req) && evhttp_request_get_command(req) != EVHTTP_REQ_OPTIONS) {
        send_error(h, req, 403, false, "cors_forbidden", "origin not allowed");
        return;
    }
    route(h, c, req);
}

/* ---- lifecycle -------------------------------------------------------------------------------- */

static int register_metrics(lg_sse_http *h, lg_metrics *m)
{
    if (m == NULL) {
        return LG_OK;
    }
    int rc;
    if ((rc = lg_metrics_register_gauge(m, "llmgate_sse_streams_open",
                                        "Event streams open (SSE and OpenAI stream)",
                                        &h->m_streams)) != LG_OK ||
        (rc = lg_metrics_register_counter(m, "llmgate_sse_events_sent_total",
                                          "Chat events relayed to clients", &h->m_events)) !=
            LG_OK ||
        (rc = lg_metrics_register_counter(m, "llmgate_sse_resumes_total",
                                          "Event stream reconnects with a Last-Event-ID",
                                          &h->m_resumes)) != LG_OK ||
        (rc = lg_metrics_register_counter(m, "llmgate_sse_heartbeats_total", "Heartbeats sent",
                                          &h->m_heartbeats)) != LG_OK ||
        (rc = lg_metrics_register_counter(m, "llmgate_sse_http_4xx_total",
                                          "Requests refused with a 4xx status", &h->m_4xx)) !=
            LG_OK ||
        (rc = lg_metrics_register_counter(m, "llmgate_sse_http_5xx_total",
                                          "Requests failed with a 5xx status", &h->m_5xx)) !=
            LG_OK ||
        (rc = lg_metrics_register_counter(m, "llmgate_sse_upstream_errors_total",
                                          "Chat service calls that failed",
                                          &h->m_upstream_err)) != LG_OK ||
        (rc = lg_metrics_register_counter(m, "llmgate_sse_slow_clients_total",
                                          "Clients cut off for falling behind the output bound",
                                          &h->m_slow)) != LG_OK) {
        return rc;
    }
    return LG_OK;
}

static int check_opts(const struct lg_sse_http_opts *o)
{
    if ((o->listen == NULL && o->listen_fd < 0) || o->chat == NULL || o->token_secret == NULL ||
        o->heartbeat_ms < 1 || o->max_body_bytes < 1 ||
        o->max_body_bytes > LG_SSE_MAX_BODY_BYTES || o->max_header_bytes < 1 ||
        o->max_header_bytes > LG_SSE_MAX_HEADER_BYTES || o->idle_timeout_ms < 1 ||
        o->idle_timeout_ms > LG_SSE_IDLE_TIMEOUT_MS_MAX || o->header_timeout_ms < 1 ||
        o->header_timeout_ms > LG_SSE_IDLE_TIMEOUT_MS_MAX || o->max_streams_per_user < 1 ||
        o->max_streams_per_user > LG_SSE_MAX_STREAMS_PER_USER_MAX ||
        o->max_requests_per_conn < 1 || o->max_requests_per_conn > LG_SSE_MAX_REQUESTS_PER_CONN ||
        o->outbuf_bytes < 1 || o->outbuf_bytes > LG_SSE_OUTBUF_HIGH_BYTES ||
        o->tcp_user_timeout_ms < 0 || o->tcp_user_timeout_ms > LG_SSE_IDLE_TIMEOUT_MS_MAX) {
        return LG_ERR_INVALID;
    }
    return LG_OK;
}

static int copy_files(lg_sse_http *h, const struct lg_sse_http_opts *o)
{
    if (o->nfiles == 0) {
        return LG_OK;
    }
    h->files = lg_calloc(o->nfiles, sizeof(*h->files));
    if (h->files == NULL) {
        return LG_ERR_NOMEM;
    }
    for (size_t i = 0; i < o->nfiles; i++) {
        char *p = lg_strdup(o->files[i].path);
        char *t = lg_strdup(o->files[i].content_type);
        uint8_t *d = lg_malloc(o->files[i].len + 1);
        h->files[i].path = p;
        h->files[i].content_type = t;
        h->files[i].data = d;
        h->o.nfiles = i + 1;
        if (p == NULL || t == NULL || d == NULL) {
            return LG_ERR_NOMEM;
        }
        memcpy(d, o->files[i].data, o->files[i].len);
        h->files[i].len = o->files[i].len;
    }
    return LG_OK;
}

static int http_bind(lg_sse_http *h, char *bound, size_t boundlen)
{
    char host[256];
    uint16_t port;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct evhttp_bound_socket *bs;
    if (h->o.listen_fd >= 0) {
        /* A socket bound by the caller (SO_REUSEPORT workers); evhttp owns it from here. */
        evutil_make_socket_nonblocking(h->o.listen_fd);
        bs = evhttp_accept_socket_with_handle(h->http, h->o.listen_fd);
    } else {
        if (lg_cfg_split_hostport(h->o.listen, host, sizeof(host), &port) != LG_OK) {
            return LG_ERR_INVALID;
        }
        bs = evhttp_bind_socket_with_handle(h->http, host, port);
        /* evhttp listens with a backlog of 128: a burst of connects beyond it (a reconnect
         * storm, or the benchmark opening 1000 streams at once) overflows the accept queue and
         * each dropped SYN costs the client a 1 s retransmit. listen(2) again raises it. */
        if (bs != NULL && listen(evhttp_bound_socket_get_fd(bs), HTTP_LISTEN_BACKLOG) != 0) {
            return LG_ERR_IO;
        }
    }
    if (bs == NULL) {
        return LG_ERR_IO;
    }
    /* A reader that vanishes without FIN or RST (a phone leaving coverage, a NAT dropping its
     * state) leaves a half-open stream: heartbeats are written and never acknowledged, and
     * the kernel gives up only after its retransmission limit (about 15 minutes), while the
     * stream holds its ResumeStream call and buffers. TCP_USER_TIMEOUT bounds that; accepted
     * sockets inherit it from the listener. */
    if (h->o.tcp_user_timeout_ms > 0) {
        unsigned int ms = (unsigned int)h->o.tcp_user_timeout_ms;
        if (setsockopt(evhttp_bound_socket_get_fd(bs), IPPROTO_TCP, TCP_USER_TIMEOUT, &ms,
                       sizeof(ms)) != 0) {
            return LG_ERR_IO;
        }
    }
    /* lg_sse_http_free (which frees the listener) runs only after the loop has returned. */
    lg_loop_pause_accept_on_exhaustion(evhttp_bound_socket_get_listener(bs));
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) != 0) {
        return LG_ERR_IO;
    }
    return lg_loop_format_addr((struct sockaddr *)&ss, bound, boundlen);
}

int lg_sse_http_new(lg_sse_http **out, struct event_base *base,
                    const struct lg_sse_http_opts *opts, char *bound, size_t boundlen)
{
    int rc = check_opts(opts);
    if (rc != LG_OK) {
        return rc;
    }
    lg_sse_http *h = lg_calloc(1, sizeof(*h));
    if (h == NULL) {
        return LG_ERR_NOMEM;
    }
    h->base = base;
    TAILQ_INIT(&h->flush);
    lg_buf_init(&h->enc, LG_SSE_MAX_EVENT_BYTES);
    h->o = *opts;
    h->o.files = NULL;
    h->o.nfiles = 0;
    memcpy(h->secret, opts->token_secret, sizeof(h->secret));
    h->o.token_secret = h->secret;
    rc = LG_ERR_NOMEM;
    if ((opts->cors_origins != NULL && (h->cors = lg_strdup(opts->cors_origins)) == NULL) ||
        copy_files(h, opts) != LG_OK || lg_sse_table_new(&h->conns, false) != LG_OK ||
        lg_sse_table_new(&h->guards, false) != LG_OK ||
        lg_sse_table_new(&h->users, true) != LG_OK || (h->scratch = evbuffer_new()) == NULL ||
        (h->flush_ev = event_new(base, -1, 0, on_flush, h)) == NULL ||
        (h->http = evhttp_new(base)) == NULL) {
        goto out_free;
    }
    if ((rc = register_metrics(h, opts->metrics)) != LG_OK) {
        goto out_free;
    }
    struct timeval tv = {(time_t)(opts->idle_timeout_ms / 1000),
                         (suseconds_t)((opts->idle_timeout_ms % 1000) * 1000)};
    evhttp_set_timeout_tv(h->http, &tv);
    evhttp_set_max_headers_size(h->http, (ev_ssize_t)opts->max_header_bytes);
    evhttp_set_max_body_size(h->http, (ev_ssize_t)opts->max_body_bytes);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_default_content_type(h->http, "application/json");
    evhttp_set_bevcb(h->http, on_new_bev, h);
    evhttp_set_gencb(h->http, on_request, h);
    if ((rc = http_bind(h, bound, boundlen)) != LG_OK) {
        goto out_free;
    }
    *out = h;
    return LG_OK;

out_free:
    lg_sse_http_free(h);
    return rc;
}

static void free_guard_entry(const void *key, void *value, void *ud)
{
    struct guard *g = value;
    (void)key;
    (void)ud;
    event_free(g->timer);
    bufferevent_decref(g->bev);
    lg_free(g);
}

void lg_sse_http_free(lg_sse_http *h)
{
    if (h == NULL) {
        return;
    }
    if (h->http != NULL) {
        evhttp_free(h->http); /* closes every connection: on_conn_close frees streams */
    }
    if (h->guards != NULL) {
        lg_sse_table_each(h->guards, free_guard_entry, NULL);
        lg_sse_table_free(h->guards);
    }
    lg_sse_table_free(h->conns);
    lg_sse_table_free(h->users);
    if (h->scratch != NULL) {
        evbuffer_free(h->scratch);
    }
    if (h->flush_ev != NULL) {
        event_free(h->flush_ev);
    }
    lg_buf_deinit(&h->enc);
    for (size_t i = 0; i < h->o.nfiles; i++) {
        lg_free((void *)(uintptr_t)h->files[i].path);
        lg_free((void *)(uintptr_t)h->files[i].content_type);
        lg_free((void *)(uintptr_t)h->files[i].data);
    }
    lg_free(h->files);
    lg_free(h->cors);
    lg_sse_keys_free(h->keys);
    lg_free(h);
}

void lg_sse_http_set_keys(lg_sse_http *h, lg_sse_keys *keys)
{
    lg_sse_keys_free(h->keys);
    h->keys = keys;
}

size_t lg_sse_http_get_stream_count(const lg_sse_http *h)
{
    return h->nstreams;
}
