/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of lg_grpc_server: the API contract (options, registration, call operations and
 * their error codes, exactly one on_close per call for every ending) driven in-process by a
 * small nghttp2 client on the same event loop. Interop with real gRPC clients lives in
 * tests/integration/grpc_server/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include "lg_err.h"
#include "lg_grpc_server.h"
#include "lg_limits.h"
#include "lg_test.h"

/* Poll budget for one condition: loop turns, each bounded by a short timeout. */
#define T_MAX_TURNS   20000
#define T_PATH        "/t.Svc/M"
#define T_STREAM_PATH "/t.Svc/S"
#define T_ADDR_BYTES  64
/* Requests one test may send with t_client_submit (each has its own body buffer). */
#define T_MAX_BODIES 8

/* ---- handler side ---------------------------------------------------------------------- */

enum t_mode {
    T_ECHO = 0,  /* send the request back and finish OK at once */
    T_ASYNC = 1, /* finish from a timer on a later loop turn */
    T_HOLD = 2,  /* keep the call open (no answer) */
    T_FLOOD = 3, /* send until LG_ERR_AGAIN, continue from on_writable */
    T_API = 4,   /* exercise the call API's error codes, then finish */
};

struct t_fixture {
    struct event_base *base;
    lg_grpc_server *srv;
    char addr[T_ADDR_BYTES];
    enum t_mode mode;
    lg_grpc_call *last_call;
    int starts;
    int messages;
    int closes;
    int close_reasons[6];
    int send_after_close_rc; /* what lg_grpc_call_send returned inside on_close */
    int agains;
    int writables;
    int flood_sent;
    int flood_target;
    struct event *timer;
    /* client */
    struct bufferevent *cbev;
    nghttp2_session *cs;
    int32_t sid;
    bool client_no_window; /* do not open flow-control windows */
    int resp_status;       /* grpc-status seen, -1 none */
    int http_status;
    size_t resp_bytes;
    uint32_t rst_code;
    bool stream_closed;
    bool ended;
    char initial_md[64];
    struct evbuffer *body;                 /* request bytes not yet sent */
    bool conn_closed;                      /* the server closed the client's connection */
    struct evbuffer *bodies[T_MAX_BODIES]; /* of t_client_submit */
    int nbodies;
    bool goaway_seen; /* a GOAWAY from the server: its code and last-stream-id */
    uint32_t goaway_code;
    int32_t goaway_last_sid;
    int ping_acks;
};

static int t_on_start(lg_grpc_call *call, void *user_data)
{
    struct t_fixture *f = user_data;
    f->starts++;
    f->last_call = call;
    return LG_OK;
}

static void t_async_finish(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct t_fixture *f = arg;
    assert_int_equal(lg_grpc_call_send(f->last_call, (const uint8_t *)"late", 4), LG_OK);
    assert_int_equal(lg_grpc_call_finish(f->last_call, LG_GRPC_OK, NULL), LG_OK);
}

static void t_flood(struct t_fixture *f, lg_grpc_call *call)
{
    static const uint8_t chunk[4096];
    while (f->flood_sent < f->flood_target) {
        int rc = lg_grpc_call_send(call, chunk, sizeof(chunk));
        if (rc == LG_ERR_AGAIN) {
            f->agains++;
            /* The queue is bounded: bound plus at most one message. */
            assert_true(lg_grpc_call_get_queued_bytes(call) <=
                        LG_GRPC_SERVER_CALL_SEND_QUEUE_BYTES + sizeof(chunk) + 5);
            return;
        }
        assert_int_equal(rc, LG_OK);
        f->flood_sent++;
    }
    assert_int_equal(lg_grpc_call_finish(call, LG_GRPC_OK, NULL), LG_OK);
}

static void t_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len, void *user_data)
{
    struct t_fixture *f = user_data;
    f->messages++;
    switch (f->mode) {
    case T_ECHO:
        assert_int_equal(lg_grpc_call_add_initial_metadata(call, "x-echo", (const uint8_t *)"v", 1),
                         LG_OK);
        assert_int_equal(lg_grpc_call_send(call, msg, len), LG_OK);
        /* Initial metadata can no longer change once the headers are submitted. */
        assert_int_equal(lg_grpc_call_add_initial_metadata(call, "x-late", (const uint8_t *)"v", 1),
                         LG_ERR_STATE);
        assert_int_equal(lg_grpc_call_finish(call, LG_GRPC_OK, NULL), LG_OK);
        assert_int_equal(lg_grpc_call_finish(call, LG_GRPC_OK, NULL), LG_ERR_STATE);
        assert_int_equal(lg_grpc_call_send(call, msg, len), LG_ERR_STATE);
        break;
    case T_ASYNC: {
        struct timeval tv = {0, 1000};
        evtimer_add(f->timer, &tv);
        break;
    }
    case T_HOLD:
        break;
    case T_FLOOD:
        t_flood(f, call);
        break;
    case T_API: {
        const uint8_t v[] = "v";
        const uint8_t bad[] = "a\nb";
        assert_int_equal(lg_grpc_call_add_initial_metadata(call, "Upper", v, 1), LG_ERR_INVALID);
        assert_int_equal(lg_grpc_call_add_initial_metadata(call, "grpc-x", v, 1), LG_ERR_INVALID);
        assert_int_equal(lg_grpc_call_add_initial_metadata(call, "x-a", bad, 3), LG_ERR_INVALID);
        /* -bin values are raw bytes: anything goes. */
        assert_int_equal(lg_grpc_call_add_trailing_metadata(call, "x-a-bin", bad, 3), LG_OK);
        assert_int_equal(lg_grpc_call_finish(call, 17, NULL), LG_ERR_INVALID);
        assert_int_equal(lg_grpc_call_set_compress(call, true), LG_OK); /* no-op: no gzip */
        assert_int_equal(lg_grpc_call_send(call, msg, len), LG_OK);
        /* The client does not accept gzip: still a no-op after the headers. */
        assert_int_equal(lg_grpc_call_set_compress(call, true), LG_OK);
        assert_false(lg_grpc_call_accepts_gzip(call));
        assert_false(lg_grpc_call_is_request_compressed(call));
        assert_int_equal(lg_grpc_call_get_remaining_ms(call), -1);
        assert_int_equal(lg_grpc_call_get_deadline_ms(call), -1);
        assert_string_equal(lg_grpc_call_get_method(call), T_PATH);
        assert_true(strncmp(lg_grpc_call_get_peer(call), "127.0.0.1:", 10) == 0);
        assert_int_equal(lg_grpc_call_get_stream_id(call), 1);
        assert_false(lg_grpc_call_is_cancelled(call));
        assert_ptr_equal(lg_grpc_call_get_server(call), f->srv);
        assert_int_equal(lg_grpc_call_finish(call, LG_GRPC_NOT_FOUND, "gone \xe2\x98\xba"), LG_OK);
        assert_int_equal(lg_grpc_call_add_trailing_metadata(call, "x-b", v, 1), LG_ERR_STATE);
        assert_int_equal(lg_grpc_call_cancel(call), LG_OK);
        assert_int_equal(lg_grpc_call_cancel(call), LG_ERR_CLOSED);
        assert_int_equal(lg_grpc_call_send(call, msg, len), LG_ERR_CLOSED);
        break;
    }
    }
}

static void t_on_writable(lg_grpc_call *call, void *user_data)
{
    struct t_fixture *f = user_data;
    f->writables++;
    t_flood(f, call);
}

static void t_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason, void *user_data)
{
    struct t_fixture *f = user_data;
    f->closes++;
    f->close_reasons[reason]++;
    f->send_after_close_rc = lg_grpc_call_send(call, (const uint8_t *)"x", 1);
    if (f->last_call == call) {
        f->last_call = NULL;
    }
}

/* ---- client side: a minimal nghttp2 client on the same loop --------------------------- */

static ssize_t c_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)s;
    (void)flags;
    struct t_fixture *f = ud;
    bufferevent_write(f->cbev, data, len);
    return (ssize_t)len;
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *ud)
{
    (void)s;
    (void)frame;
    (void)flags;
    struct t_fixture *f = ud;
    char v[32] = {0};
    memcpy(v, value, valuelen < sizeof(v) - 1 ? valuelen : sizeof(v) - 1);
    if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        f->resp_status = (int)strtol(v, NULL, 10);
    } else if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        f->http_status = (int)strtol(v, NULL, 10);
    } else if (namelen == 6 && memcmp(name, "x-echo", 6) == 0) {
        memcpy(f->initial_md, v, sizeof(v));
    }
    return 0;
}

static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
                     size_t len, void *ud)
{
    (void)s;
    (void)flags;
    (void)sid;
    (void)data;
    struct t_fixture *f = ud;
    f->resp_bytes += len;
    return 0;
}

static int c_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)s;
    struct t_fixture *f = ud;
    if (frame->hd.stream_id == f->sid && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA)) {
        f->ended = true;
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM && frame->hd.stream_id == f->sid) {
        f->rst_code = frame->rst_stream.error_code;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        f->goaway_seen = true;
        f->goaway_code = frame->goaway.error_code;
        f->goaway_last_sid = frame->goaway.last_stream_id;
    }
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        f->ping_acks++;
    }
    return 0;
}

static int c_on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *ud)
{
    (void)s;
    (void)code;
    struct t_fixture *f = ud;
    if (sid == f->sid) {
        f->stream_closed = true;
    }
    return 0;
}

static void c_on_read(struct bufferevent *bev, void *arg)
{
    struct t_fixture *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    const uint8_t *p = evbuffer_pullup(in, -1);
    assert_true(nghttp2_session_mem_recv(f->cs, p, n) >= 0);
    evbuffer_drain(in, n);
    nghttp2_session_send(f->cs);
}

static void c_on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct t_fixture *f = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        f->conn_closed = true;
    }
}

static void t_client_connect(struct t_fixture *f)
{
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, c_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
    nghttp2_option *opt;
    nghttp2_option_new(&opt);
    if (f->client_no_window) {
        nghttp2_option_set_no_auto_window_update(opt, 1);
    }
    assert_int_equal(nghttp2_session_client_new2(&f->cs, cb, f, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(f->cs, NGHTTP2_FLAG_NONE, NULL, 0);

    f->cbev = bufferevent_socket_new(f->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(f->cbev, c_on_read, NULL, c_on_event, f);
    bufferevent_enable(f->cbev, EV_READ | EV_WRITE);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)strtol(strrchr(f->addr, ':') + 1, NULL, 10));
    assert_int_equal(bufferevent_socket_connect(f->cbev, (struct sockaddr *)&sin, sizeof(sin)), 0);
}

static ssize_t c_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)sid;
    (void)ud;
    struct evbuffer *eb = src->ptr;
    int n = evbuffer_remove(eb, buf, length);
    if (evbuffer_get_length(eb) == 0) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return n;
}

/* Queues one request on |path| with one message |msg| and END_STREAM, with its own body
 * buffer; nghttp2_session_send puts it on the wire. Returns the stream id. */
static int32_t t_client_submit(struct t_fixture *f, const char *path, const char *msg)
{
    assert_true(f->nbodies < T_MAX_BODIES);
    struct evbuffer *body = evbuffer_new();
    f->bodies[f->nbodies++] = body;
#define T_NV2(k, v)                                                                                \
    {(uint8_t *)(uintptr_t)(k), (uint8_t *)(uintptr_t)(v), strlen(k), strlen(v),                   \
     NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {
        T_NV2(":method", "POST"),
        T_NV2(":scheme", "http"),
        T_NV2(":path", path),
        T_NV2(":authority", "t"),
        T_NV2("content-type", "application/grpc"),
        T_NV2("te", "trailers"),
    };
#undef T_NV2
    size_t mlen = strlen(msg);
    uint8_t prefix[5] = {0, 0, 0, 0, (uint8_t)mlen};
    evbuffer_add(body, prefix, sizeof(prefix));
    evbuffer_add(body, msg, mlen);
    nghttp2_data_provider prd;
    prd.source.ptr = body;
    prd.read_callback = c_read_body;
    int32_t sid =
        nghttp2_submit_request(f->cs, NULL, nva, sizeof(nva) / sizeof(nva[0]), &prd, NULL);
    assert_true(sid > 0);
    return sid;
}

/* Resets stream |sid| from the client (queued; nghttp2_session_send sends it). */
static void t_client_reset(struct t_fixture *f, int32_t sid)
{
    assert_int_equal(nghttp2_submit_rst_stream(f->cs, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL), 0);
}

/* Sends one request on |path| with one message |msg| and END_STREAM; |timeout| is a
 * grpc-timeout value or NULL. */
static void t_client_call(struct t_fixture *f, const char *path, const char *msg,
                          const char *timeout)
{
    nghttp2_nv nva[8];
    size_t n = 0;
#define T_NV(k, v)                                                                                 \
    nva[n++] = (nghttp2_nv){(uint8_t *)(uintptr_t)(k), (uint8_t *)(uintptr_t)(v), strlen(k),       \
                            strlen(v), NGHTTP2_NV_FLAG_NONE}
    T_NV(":method", "POST");
    T_NV(":scheme", "http");
    T_NV(":path", path);
    T_NV(":authority", "t");
    T_NV("content-type", "application/grpc");
    T_NV("te", "trailers");
    if (timeout) {
        T_NV("grpc-timeout", timeout);
    }
#undef T_NV
    size_t mlen = strlen(msg);
    uint8_t prefix[5] = {0, 0, 0, 0, (uint8_t)mlen};
    evbuffer_add(f->body, prefix, sizeof(prefix));
    evbuffer_add(f->body, msg, mlen);
    nghttp2_data_provider prd;
    prd.source.ptr = f->body;
    prd.read_callback = c_read_body;
    f->sid = nghttp2_submit_request(f->cs, NULL, nva, n, &prd, NULL);
    assert_true(f->sid > 0);
    nghttp2_session_send(f->cs);
}

static void t_run_until(struct t_fixture *f, bool *flag)
{
    for (int i = 0; i < T_MAX_TURNS && !*flag; i++) {
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (!*flag) {
            struct timeval tv = {0, 1000};
            event_base_loopexit(f->base, &tv);
            event_base_loop(f->base, EVLOOP_ONCE);
        }
    }
    assert_true(*flag);
}

static bool t_closes_at_least(struct t_fixture *f, int n)
{
    return f->closes >= n;
}

static void t_run_until_closes(struct t_fixture *f, int n)
{
    bool done = false;
    for (int i = 0; i < T_MAX_TURNS && !(done = t_closes_at_least(f, n)); i++) {
        struct timeval tv = {0, 1000};
        event_base_loopexit(f->base, &tv);
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    assert_true(done);
}

/* Runs the loop until |n| calls have started on the server. */
static void t_run_until_starts(struct t_fixture *f, int n)
{
    bool done = false;
    for (int i = 0; i < T_MAX_TURNS && !(done = f->starts >= n); i++) {
        struct timeval tv = {0, 1000};
        event_base_loopexit(f->base, &tv);
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    assert_true(done);
}

/* Runs the loop until the server has closed the client's connection. */
static void t_run_until_conn_closed(struct t_fixture *f)
{
    t_run_until(f, &f->conn_closed);
}

/* Runs the loop until the client has received a message from the server. */
static void t_run_until_first_message(struct t_fixture *f)
{
    bool got = false;
    for (int i = 0; i < T_MAX_TURNS && !(got = f->messages > 0); i++) {
        struct timeval tv = {0, 1000};
        event_base_loopexit(f->base, &tv);
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    assert_true(got);
}

/* ---- fixture --------------------------------------------------------------------------- */

/* The server and client live inside each test body: cmocka checks for leaks around the test
 * function alone, so what a test allocates it must free itself (t_stop). */
static void t_start_opts(struct t_fixture *f, const struct lg_grpc_server_opts *opts)
{
    f->resp_status = -1;
    f->body = evbuffer_new();
    assert_int_equal(lg_grpc_server_new(&f->srv, f->base, opts), LG_OK);
    static const struct lg_grpc_method_cbs cbs = {t_on_start, t_on_message, NULL, t_on_writable,
                                                  t_on_close};
    assert_int_equal(lg_grpc_server_register(f->srv, T_PATH, LG_GRPC_UNARY, &cbs, f), LG_OK);
    assert_int_equal(
        lg_grpc_server_register(f->srv, T_STREAM_PATH, LG_GRPC_SERVER_STREAMING, &cbs, f), LG_OK);
    assert_int_equal(lg_grpc_server_listen(f->srv, "127.0.0.1:0", f->addr, sizeof(f->addr)), LG_OK);
}

static void t_start(struct t_fixture *f)
{
    t_start_opts(f, NULL);
}

static void t_stop(struct t_fixture *f)
{
    lg_grpc_server_free(f->srv);
    f->srv = NULL;
    if (f->cs) {
        nghttp2_session_del(f->cs);
        f->cs = NULL;
    }
    if (f->cbev) {
        bufferevent_free(f->cbev);
        f->cbev = NULL;
    }
    evbuffer_free(f->body);
    f->body = NULL;
    for (int i = 0; i < f->nbodies; i++) {
        evbuffer_free(f->bodies[i]);
    }
    f->nbodies = 0;
}

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    struct t_fixture *f = test_calloc(1, sizeof(*f));
    f->base = event_base_new();
    f->timer = evtimer_new(f->base, t_async_finish, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct t_fixture *f = *state;
    event_free(f->timer);
    event_base_free(f->base);
    test_free(f);
    return 0;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_grpc_server_options_only_tighten(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    struct lg_grpc_server_opts o;
    lg_grpc_server_opts_default(&o);
    assert_int_equal(o.max_recv_msg_bytes, 4u * 1024u * 1024u);
    lg_grpc_server *s = NULL;
    o.max_recv_msg_bytes = LG_GRPC_SERVER_MAX_RECV_MSG_BYTES_MAX + 1u;
    assert_int_equal(lg_grpc_server_new(&s, f->base, &o), LG_ERR_INVALID);
    lg_grpc_server_opts_default(&o);
    o.max_concurrent_streams = 0;
    assert_int_equal(lg_grpc_server_new(&s, f->base, &o), LG_ERR_INVALID);
    assert_null(s);
    t_stop(f);
}

static void test_grpc_server_register_errors(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    static const struct lg_grpc_method_cbs cbs = {NULL, t_on_message, NULL, NULL, t_on_close};
    static const struct lg_grpc_method_cbs no_close = {NULL, t_on_message, NULL, NULL, NULL};
    assert_int_equal(lg_grpc_server_register(f->srv, "nopath", LG_GRPC_UNARY, &cbs, f),
                     LG_ERR_INVALID);
    assert_int_equal(lg_grpc_server_register(f->srv, "/a.B/C", LG_GRPC_UNARY, &no_close, f),
                     LG_ERR_INVALID);
    assert_int_equal(lg_grpc_server_register(f->srv, T_PATH, LG_GRPC_UNARY, &cbs, f), LG_ERR_STATE);
    char path[32];
    int rc = LG_OK;
    for (int i = 0; i < LG_GRPC_SERVER_MAX_METHODS + 1 && rc == LG_OK; i++) {
        snprintf(path, sizeof(path), "/x.S/M%d", i);
        rc = lg_grpc_server_register(f->srv, path, LG_GRPC_UNARY, &cbs, f);
    }
    assert_int_equal(rc, LG_ERR_EXHAUSTED);
    t_stop(f);
}

static void test_grpc_server_new_nomem(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    lg_grpc_server *s = NULL;
    lg_test_fail_after(0);
    assert_int_equal(lg_grpc_server_new(&s, f->base, NULL), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    assert_null(s);
    t_stop(f);
}

static void test_grpc_server_listen_bad_address(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    char bound[T_ADDR_BYTES];
    assert_int_equal(lg_grpc_server_listen(f->srv, "127.0.0.1", bound, sizeof(bound)),
                     LG_ERR_INVALID);
    t_stop(f);
}

static void test_grpc_server_unary_echo(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    f->mode = T_ECHO;
    t_client_connect(f);
    t_client_call(f, T_PATH, "hello", NULL);
    t_run_until(f, &f->stream_closed);
    t_run_until_closes(f, 1);
    assert_int_equal(f->http_status, 200);
    assert_int_equal(f->resp_status, 0);
    assert_int_equal(f->resp_bytes, 5 + 5);
    assert_string_equal(f->initial_md, "v");
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->close_reasons[LG_GRPC_CLOSE_FINISHED], 1);
    assert_int_equal(f->send_after_close_rc, LG_ERR_CLOSED);
    t_stop(f);
}

static void test_grpc_server_async_finish(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    f->mode = T_ASYNC;
    t_client_connect(f);
    t_client_call(f, T_PATH, "x", NULL);
    t_run_until(f, &f->stream_closed);
    t_run_until_closes(f, 1);
    assert_int_equal(f->resp_status, 0);
    assert_int_equal(f->resp_bytes, 5 + 4);
    assert_int_equal(f->close_reasons[LG_GRPC_CLOSE_FINISHED], 1);
    t_stop(f);
}

static void test_grpc_server_unknown_method_trailers_only(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    t_client_connect(f);
    t_client_call(f, "/t.Svc/Nope", "x", NULL);
    t_run_until(f, &f->stream_closed);
    assert_int_equal(f->http_status, 200);
    assert_int_equal(f->resp_status, LG_GRPC_UNIMPLEMENTED);
    assert_int_equal(f->resp_bytes, 0);
    assert_int_equal(f->starts, 0);
    assert_int_equal(f->closes, 0); /* never started: no on_close */
    t_stop(f);
}

static void test_grpc_server_client_reset_closes_once(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    f->mode = T_HOLD;
    t_client_connect(f);
    t_client_call(f, T_STREAM_PATH, "x", NULL);
    t_run_until_first_message(f);
    nghttp2_submit_rst_stream(f->cs, NGHTTP2_FLAG_NONE, f->sid, NGHTTP2_CANCEL);
    nghttp2_session_send(f->cs);
    t_run_until_closes(f, 1);
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->close_reasons[LG_GRPC_CLOSE_CANCELLED], 1);
    assert_int_equal(lg_grpc_server_get_call_count(f->srv), 0);
    t_stop(f);
}

static void test_grpc_server_deadline_closes_with_reason(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    f->mode = T_HOLD;
    t_client_connect(f);
    t_client_call(f, T_STREAM_PATH, "x", "20m");
    t_run_until_closes(f, 1);
    t_run_until(f, &f->stream_closed);
    assert_int_equal(f->close_reasons[LG_GRPC_CLOSE_DEADLINE], 1);
    assert_int_equal(f->resp_status, LG_GRPC_DEADLINE_EXCEEDED);
    t_stop(f);
}

static void test_grpc_server_free_with_live_calls(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    f->mode = T_HOLD;
    t_client_connect(f);
    t_client_call(f, T_STREAM_PATH, "x", NULL);
    t_run_until_first_message(f);
    lg_grpc_server_free(f->srv);
    f->srv = NULL; /* t_stop frees NULL */
    assert_int_equal(f->closes, 1);
    assert_int_equal(f->close_reasons[LG_GRPC_CLOSE_SHUTDOWN], 1);
    t_stop(f);
}

static void test_grpc_server_send_queue_backpressure(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    f->mode = T_FLOOD;
    f->flood_target = 512; /* 2 MiB, far past the 64 KiB window and the queue bound */
    f->client_no_window = true;
    t_client_connect(f);
    t_client_call(f, T_STREAM_PATH, "x", NULL);
    bool got = false;
    for (int i = 0; i < T_MAX_TURNS && !(got = f->agains > 0); i++) {
        struct timeval tv = {0, 1000};
        event_base_loopexit(f->base, &tv);
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    assert_true(got);
    assert_true(f->flood_sent < f->flood_target);
    assert_int_equal(f->writables, 0);
    /* The client reads: consume everything received and open the windows. */
    for (int i = 0; i < T_MAX_TURNS && !f->stream_closed; i++) {
        nghttp2_session_consume(f->cs, f->sid, f->resp_bytes);
        f->resp_bytes = 0;
        nghttp2_session_send(f->cs);
        struct timeval tv = {0, 1000};
        event_base_loopexit(f->base, &tv);
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    assert_true(f->stream_closed);
    assert_true(f->writables > 0);
    assert_int_equal(f->flood_sent, f->flood_target);
    assert_int_equal(f->resp_status, 0);
    t_stop(f);
}

static void test_grpc_server_call_api_errors(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    f->mode = T_API;
    t_client_connect(f);
    t_client_call(f, T_PATH, "x", NULL);
    t_run_until_closes(f, 1);
    assert_int_equal(f->messages, 1);
    assert_int_equal(f->close_reasons[LG_GRPC_CLOSE_CANCELLED], 1);
    t_stop(f);
}

/* Every allocation the server makes through lg_malloc fails in turn: the request fails (a
 * reset, an error status or a closed connection), nothing leaks, nothing crashes, and the
 * handler's close callback still comes exactly once for every call that started. */
static void test_grpc_server_nomem_anywhere_fails_cleanly(void **state)
{
    struct t_fixture *f = *state;
    for (long n = 0; n < 64; n++) {
        memset(f->close_reasons, 0, sizeof(f->close_reasons));
        f->starts = f->closes = f->messages = 0;
        f->stream_closed = f->conn_closed = f->ended = false;
        f->resp_status = -1;
        t_start(f);
        f->mode = T_ECHO;
        t_client_connect(f);
        t_client_call(f, T_PATH, "hello", NULL);
        lg_test_fail_after(n);
        bool done = false;
        for (int i = 0; i < T_MAX_TURNS && !(done = f->stream_closed || f->conn_closed); i++) {
            struct timeval tv = {0, 1000};
            event_base_loopexit(f->base, &tv);
            event_base_loop(f->base, EVLOOP_ONCE);
        }
        lg_test_fail_after(-1);
        assert_true(done);
        t_stop(f);
        assert_int_equal(f->closes, f->starts);
        /* Once the call started, a failed allocation is answered RESOURCE_EXHAUSTED. */
        if (f->starts > 0 && f->resp_status != LG_GRPC_OK) {
            assert_int_equal(f->resp_status, LG_GRPC_RESOURCE_EXHAUSTED);
        }
        if (f->resp_status == LG_GRPC_OK) {
            break; /* past the last allocation of the request path */
        }
    }
    assert_int_equal(f->resp_status, LG_GRPC_OK);
}

/* A request and its reset arriving in one read: the handler never runs (the call is started
 * only after the read), so a rapid-reset client costs no handler work for such pairs. */
static void test_grpc_server_reset_in_same_read_never_starts(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    f->mode = T_HOLD;
    t_client_connect(f);
    int32_t sid = t_client_submit(f, T_STREAM_PATH, "x");
    nghttp2_session_send(f->cs); /* HEADERS + DATA first (nghttp2 sends RST_STREAM earlier) */
    t_client_reset(f, sid);
    nghttp2_submit_ping(f->cs, NGHTTP2_FLAG_NONE, NULL);
    nghttp2_session_send(f->cs);
    /* The PING came in the same read: its ACK goes out after that read was dispatched. */
    bool acked = false;
    for (int i = 0; i < T_MAX_TURNS && !(acked = f->ping_acks > 0); i++) {
        struct timeval tv = {0, 1000};
        event_base_loopexit(f->base, &tv);
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    assert_true(acked);
    assert_int_equal(f->starts, 0);
    assert_int_equal(f->closes, 0);
    assert_int_equal(lg_grpc_server_get_call_count(f->srv), 0);
    assert_false(f->goaway_seen);
    t_stop(f);
}

/* Running calls reset past the budget (2, no refill here): GOAWAY(ENHANCE_YOUR_CALM) naming
 * the last started stream, and a request that arrived in the same read, before the resets,
 * never starts. */
static void test_grpc_server_resets_past_budget_enhance_your_calm(void **state)
{
    struct t_fixture *f = *state;
    struct lg_grpc_server_opts o;
    lg_grpc_server_opts_default(&o);
    o.max_client_resets = 2;
    o.client_resets_per_sec = 0;
    t_start_opts(f, &o);
    f->mode = T_HOLD;
    t_client_connect(f);
    int32_t sids[3];
    for (int i = 0; i < 3; i++) {
        sids[i] = t_client_submit(f, T_STREAM_PATH, "x");
        nghttp2_session_send(f->cs);
        t_run_until_starts(f, i + 1);
    }
    int32_t late = t_client_submit(f, T_STREAM_PATH, "late");
    nghttp2_session_send(f->cs);
    for (int i = 0; i < 3; i++) {
        t_client_reset(f, sids[i]);
    }
    nghttp2_session_send(f->cs); /* one write: late's HEADERS+DATA, then the three resets */
    t_run_until_conn_closed(f);
    assert_true(f->goaway_seen);
    assert_int_equal(f->goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert_int_equal(f->goaway_last_sid, sids[2]);
    assert_true(late > f->goaway_last_sid);
    assert_int_equal(f->starts, 3); /* |late| never started */
    assert_int_equal(f->closes, 3);
    assert_int_equal(f->close_reasons[LG_GRPC_CLOSE_CANCELLED], 3);
    t_stop(f);
}

/* Resets of running calls of a method exempted from the budget (a proxy's followers) spend
 * none of it: with a budget of 1 and no refill, three such resets leave the connection up. */
static void test_grpc_server_exempt_method_resets_spend_no_budget(void **state)
{
    struct t_fixture *f = *state;
    struct lg_grpc_server_opts o;
    lg_grpc_server_opts_default(&o);
    o.max_client_resets = 1;
    o.client_resets_per_sec = 0;
    t_start_opts(f, &o);
    assert_int_equal(lg_grpc_server_exempt_from_reset_budget(f->srv, "/t.Svc/Nope"),
                     LG_ERR_INVALID);
    assert_int_equal(lg_grpc_server_exempt_from_reset_budget(f->srv, T_STREAM_PATH), LG_OK);
    f->mode = T_HOLD;
    t_client_connect(f);
    for (int i = 0; i < 3; i++) {
        int32_t sid = t_client_submit(f, T_STREAM_PATH, "x");
        nghttp2_session_send(f->cs);
        t_run_until_starts(f, i + 1);
        t_client_reset(f, sid);
        nghttp2_session_send(f->cs);
        t_run_until_closes(f, i + 1);
    }
    f->sid = t_client_submit(f, T_PATH, "still");
    f->mode = T_ECHO;
    nghttp2_session_send(f->cs);
    t_run_until(f, &f->stream_closed);
    assert_int_equal(f->resp_status, LG_GRPC_OK);
    assert_false(f->goaway_seen);
    assert_int_equal(f->close_reasons[LG_GRPC_CLOSE_CANCELLED], 3);
    t_stop(f);
}

/* nghttp2's own reset limit (2 here) sends GOAWAY(INTERNAL_ERROR) in the middle of a read;
 * the requests after it in that read are above its last-stream-id and never start, and the
 * ones reset within the read did not start either. */
static void test_grpc_server_goaway_in_same_read_starts_nothing_above_it(void **state)
{
    struct t_fixture *f = *state;
    struct lg_grpc_server_opts o;
    lg_grpc_server_opts_default(&o);
    o.max_stream_resets = 2;
    o.stream_resets_per_sec = 0;
    t_start_opts(f, &o);
    f->mode = T_HOLD;
    t_client_connect(f);
    int32_t last_reset = 0;
    for (int i = 0; i < 3; i++) {
        last_reset = t_client_submit(f, T_STREAM_PATH, "x");
        nghttp2_session_send(f->cs);
        t_client_reset(f, last_reset);
        nghttp2_session_send(f->cs);
    }
    int32_t after1 = t_client_submit(f, T_STREAM_PATH, "y");
    int32_t after2 = t_client_submit(f, T_STREAM_PATH, "z");
    nghttp2_session_send(f->cs); /* all of it in one write */
    t_run_until_conn_closed(f);
    assert_true(f->goaway_seen);
    assert_int_equal(f->goaway_code, NGHTTP2_INTERNAL_ERROR);
    assert_int_equal(f->goaway_last_sid, last_reset);
    assert_true(after1 > f->goaway_last_sid && after2 > f->goaway_last_sid);
    assert_int_equal(f->starts, 0);
    assert_int_equal(f->closes, 0);
    t_stop(f);
}

static void t_on_done(lg_grpc_server *srv, void *user_data)
{
    (void)srv;
    bool *done = user_data;
    *done = true;
}

static void test_grpc_server_shutdown_without_connections(void **state)
{
    struct t_fixture *f = *state;
    t_start(f);
    bool done = false;
    lg_grpc_server_shutdown(f->srv, 0, t_on_done, &done);
    assert_true(lg_grpc_server_is_shutting_down(f->srv));
    t_run_until(f, &done);
    t_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grpc_server_options_only_tighten, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_register_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_new_nomem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_listen_bad_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_unary_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_async_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_unknown_method_trailers_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_client_reset_closes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_deadline_closes_with_reason, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_free_with_live_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_send_queue_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_shutdown_without_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_call_api_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_nomem_anywhere_fails_cleanly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_reset_in_same_read_never_starts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_resets_past_budget_enhance_your_calm,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_grpc_server_goaway_in_same_read_starts_nothing_above_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grpc_server_exempt_method_resets_spend_no_budget,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("grpc_server", tests, NULL, NULL);
}
