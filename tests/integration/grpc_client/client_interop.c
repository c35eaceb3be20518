/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg-grpc-client-interop: drives lg_grpc_client against a real gRPC server (the python
 * grpcio TestService of peer_server.py) and checks each result exactly.
 *
 *   lg-grpc-client-interop --target HOST:PORT --case NAME
 *
 * Prints "PASS NAME" and exits 0, or "FAIL NAME: reason" and exits 1. The "reconnect" case
 * talks to its harness (run_case.py): it prints "STEP kill" / "STEP restart" and waits for a
 * line on stdin before going on, so the harness can kill and restart the server.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "grpc/testing/empty.pb-c.h"
#include "grpc/testing/messages.pb-c.h"
#include "lg_err.h"
#include "lg_grpc_client.h"
#include "lg_log.h"
#include "lg_mem.h"

#define MAX_MSGS         8
#define MAX_TEXT         512
#define CONCURRENT_CALLS 100
#define QUEUED_CALLS     20
#define PEER_MAX_STREAMS 4 /* run_case.py starts the server with this limit for "queue" */

static const char special_msg[] =
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\t\n";

/* What one call produced. */
struct result {
    bool closed;
    int code;
    char message[MAX_TEXT];
    size_t message_len;
    bool got_headers;
    char echo_initial[MAX_TEXT];
    uint8_t echo_trailing[MAX_TEXT];
    size_t echo_trailing_len;
    size_t nmsgs;
    size_t sizes[MAX_MSGS];
    uint8_t *first; /* copy of the first message (lg_malloc) */
    size_t first_len;
    uint64_t compressed;
    bool cancel_on_first;
    lg_grpc_client_call *call;
};

struct driver {
    struct event_base *base;
    lg_grpc_client *client;
    const char *target;
    size_t open_calls; /* calls started and not yet closed */
    char failure[MAX_TEXT];
    struct event *stdin_ev;
    bool got_line;
};

static void fail(struct driver *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct driver *d, const char *fmt, ...)
{
    if (d->failure[0]) {
        return; /* keep the first failure */
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->failure, sizeof(d->failure), fmt, ap);
    va_end(ap);
}

struct call_ctx {
    struct driver *d;
    struct result *r;
};

static void on_headers(lg_grpc_client_call *call, const struct lg_grpc_client_md *md, size_t count,
                       void *ud)
{
    (void)call;
    struct call_ctx *cc = ud;
    cc->r->got_headers = true;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(md[i].key, "x-grpc-test-echo-initial") == 0 && md[i].len < MAX_TEXT) {
            memcpy(cc->r->echo_initial, md[i].val, md[i].len);
            cc->r->echo_initial[md[i].len] = 0;
        }
    }
}

static void on_message(lg_grpc_client_call *call, const uint8_t *msg, size_t len, void *ud)
{
    struct call_ctx *cc = ud;
    struct result *r = cc->r;
    if (r->nmsgs < MAX_MSGS) {
        r->sizes[r->nmsgs] = len;
    }
    if (r->nmsgs == 0) {
        r->first = lg_malloc(len ? len : 1);
        if (r->first) {
            memcpy(r->first, msg, len);
            r->first_len = len;
        }
    }
    r->nmsgs++;
    if (r->cancel_on_first) {
        int rv = lg_grpc_client_call_cancel(call);
        if (rv != LG_OK) {
            fail(cc->d, "cancel returned %d", rv);
        }
        /* A second cancel is refused: the call is already ending. */
        if (lg_grpc_client_call_cancel(call) != LG_ERR_STATE) {
            fail(cc->d, "second cancel not refused");
        }
    }
}

static void on_close(lg_grpc_client_call *call, const struct lg_grpc_client_status *st, void *ud)
{
    struct call_ctx *cc = ud;
    struct result *r = cc->r;
    r->closed = true;
    r->code = st->code;
    r->message_len = st->message_len < MAX_TEXT - 1 ? st->message_len : MAX_TEXT - 1;
    memcpy(r->message, st->message, r->message_len);
    r->message[r->message_len] = 0;
    r->compressed = lg_grpc_client_call_get_compressed_count(call);
    for (size_t i = 0; i < st->trailer_count; i++) {
        const struct lg_grpc_client_md *m = &st->trailers[i];
        if (strcmp(m->key, "x-grpc-test-echo-trailing-bin") == 0 && m->len < MAX_TEXT) {
            memcpy(r->echo_trailing, m->val, m->len);
            r->echo_trailing_len = m->len;
        }
    }
    r->call = NULL; /* the handle dies when this returns */
    cc->d->open_calls--;
    if (cc->d->open_calls == 0) {
        event_base_loopbreak(cc->d->base);
    }
    lg_free(cc);
}

static const struct lg_grpc_client_call_cbs cbs = {on_headers, on_message, on_close};

/* Starts a call recording into |r|. */
static int start(struct driver *d, const char *method, const uint8_t *req, size_t len,
                 const struct lg_grpc_client_call_opts *o, struct result *r)
{
    struct call_ctx *cc = lg_malloc(sizeof(*cc));
    if (!cc) {
        return LG_ERR_NOMEM;
    }
    cc->d = d;
    cc->r = r;
    int rv = lg_grpc_client_start(d->client, method, req, len, o, &cbs, cc, &r->call);
    if (rv != LG_OK) {
        lg_free(cc);
        return rv;
    }
    d->open_calls++;
    return LG_OK;
}

/* Runs the loop until every started call has closed. */
static void run_calls(struct driver *d)
{
    if (d->open_calls > 0) {
        event_base_dispatch(d->base);
    }
}

static void result_free(struct result *r)
{
    lg_free(r->first);
    r->first = NULL;
}

/* Runs one call to completion. */
static int run_one(struct driver *d, const char *method, const uint8_t *req, size_t len,
                   const struct lg_grpc_client_call_opts *o, struct result *r)
{
    int rv = start(d, method, req, len, o, r);
    if (rv != LG_OK) {
        fail(d, "start %s: %s", method, lg_err_str(rv));
        return rv;
    }
    run_calls(d);
    return LG_OK;
}

static bool expect_code(struct driver *d, const char *what, const struct result *r, int code)
{
    if (!r->closed) {
        fail(d, "%s: never closed", what);
        return false;
    }
    if (r->code != code) {
        fail(d, "%s: status %d (%s) \"%s\", want %d", what, r->code, lg_grpc_status_name(r->code),
             r->message, code);
        return false;
    }
    return true;
}

/* Packs a protobuf-c message into lg_malloc'd memory. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = lg_malloc(*len ? *len : 1);
    if (p) {
        protobuf_c_message_pack(m, p);
    }
    return p;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/* ---- cases -------------------------------------------------------------------------------- */

static void case_empty_unary(struct driver *d)
{
    struct result r = {0};
    run_one(d, "/grpc.testing.TestService/EmptyCall", NULL, 0, NULL, &r);
    if (expect_code(d, "empty_unary", &r, LG_GRPC_OK)) {
        if (!r.got_headers || r.nmsgs != 1 || r.sizes[0] != 0) {
            fail(d, "empty_unary: headers=%d messages=%zu size=%zu", r.got_headers, r.nmsgs,
                 r.sizes[0]);
        }
    }
    result_free(&r);
}

/* A SimpleRequest with a zero payload of |req_size| asking for |resp_size| bytes. */
static uint8_t *simple_request(size_t req_size, int32_t resp_size, bool resp_compressed,
                               const Grpc__Testing__EchoStatus *status, size_t *len)
{
    Grpc__Testing__SimpleRequest req;
    grpc__testing__simple_request__init(&req);
    Grpc__Testing__Payload payload;
    grpc__testing__payload__init(&payload);
    Grpc__Testing__BoolValue comp;
    grpc__testing__bool_value__init(&comp);
    uint8_t *body = lg_calloc(1, req_size ? req_size : 1);
    if (!body) {
        return NULL;
    }
    payload.body.data = body;
    payload.body.len = req_size;
    req.payload = &payload;
    req.response_size = resp_size;
    if (resp_compressed) {
        comp.value = true;
        req.response_compressed = &comp;
    }
    req.response_status = (Grpc__Testing__EchoStatus *)(uintptr_t)status;
    uint8_t *p = pack(&req.base, len);
    lg_free(body);
    return p;
}

static void check_simple_response(struct driver *d, const char *what, const struct result *r,
                                  size_t want_size, size_t want_req_size)
{
    if (!expect_code(d, what, r, LG_GRPC_OK)) {
        return;
    }
    if (r->nmsgs != 1 || !r->first) {
        fail(d, "%s: %zu messages", what, r->nmsgs);
        return;
    }
    Grpc__Testing__SimpleResponse *resp =
        grpc__testing__simple_response__unpack(NULL, r->first_len, r->first);
    if (!resp) {
        fail(d, "%s: response does not unpack", what);
        return;
    }
    size_t got = resp->payload ? resp->payload->body.len : 0;
    if (got != want_size || (got && !all_zero(resp->payload->body.data, got))) {
        fail(d, "%s: response payload %zu bytes, want %zu zeros", what, got, want_size);
    }
    char want_user[32];
    snprintf(want_user, sizeof(want_user), "%zu", want_req_size);
    if (!resp->username || strcmp(resp->username, want_user) != 0) {
        fail(d, "%s: server saw a %s-byte request, want %s", what,
             resp->username ? resp->username : "?", want_user);
    }
    grpc__testing__simple_response__free_unpacked(resp, NULL);
}

static void case_large_unary(struct driver *d)
{
    size_t len;
    uint8_t *req = simple_request(271828, 314159, false, NULL, &len);
    struct result r = {0};
    run_one(d, "/grpc.testing.TestService/UnaryCall", req, len, NULL, &r);
    check_simple_response(d, "large_unary", &r, 314159, 271828);
    if (r.compressed != 0) {
        fail(d, "large_unary: %" PRIu64 " compressed messages", r.compressed);
    }
    result_free(&r);
    lg_free(req);
}

static uint8_t *streaming_request(const int32_t *sizes, const int32_t *intervals_us, size_t n,
                                  bool compressed, size_t *len)
{
    Grpc__Testing__StreamingOutputCallRequest req;
    grpc__testing__streaming_output_call_request__init(&req);
    Grpc__Testing__ResponseParameters params[MAX_MSGS];
    Grpc__Testing__ResponseParameters *pp[MAX_MSGS];
    Grpc__Testing__BoolValue comp;
    grpc__testing__bool_value__init(&comp);
    comp.value = true;
    for (size_t i = 0; i < n; i++) {
        grpc__testing__response_parameters__init(&params[i]);
        params[i].size = sizes[i];
        params[i].interval_us = intervals_us ? intervals_us[i] : 0;
        if (compressed) {
            params[i].compressed = &comp;
        }
        pp[i] = &params[i];
    }
    req.n_response_parameters = n;
    req.response_parameters = pp;
    return pack(&req.base, len);
}

static void case_server_streaming(struct driver *d)
{
    static const int32_t sizes[] = {31415, 9, 2653, 58979};
    size_t len;
    uint8_t *req = streaming_request(sizes, NULL, 4, false, &len);
    struct lg_grpc_client_call_opts o = {.kind = LG_GRPC_CLIENT_SERVER_STREAMING};
    struct result r = {0};
    run_one(d, "/grpc.testing.TestService/StreamingOutputCall", req, len, &o, &r);
    if (expect_code(d, "server_streaming", &r, LG_GRPC_OK)) {
        if (r.nmsgs != 4) {
            fail(d, "server_streaming: %zu messages", r.nmsgs);
        }
        for (size_t i = 0; i < 4 && i < r.nmsgs; i++) {
            /* StreamingOutputCallResponse{payload{body: N}}: 1+len(1+len(N)+N) bytes. */
            Grpc__Testing__StreamingOutputCallResponse resp;
            grpc__testing__streaming_output_call_response__init(&resp);
            Grpc__Testing__Payload p;
            grpc__testing__payload__init(&p);
            p.body.len = (size_t)sizes[i];
            resp.payload = &p;
            size_t want = protobuf_c_message_get_packed_size(&resp.base);
            if (r.sizes[i] != want) {
                fail(d, "server_streaming: message %zu is %zu bytes, want %zu", i, r.sizes[i],
                     want);
            }
        }
    }
    result_free(&r);
    lg_free(req);
}

static void case_special_status_message(struct driver *d)
{
    Grpc__Testing__EchoStatus st;
    grpc__testing__echo_status__init(&st);
    st.code = 2;
    st.message = (char *)(uintptr_t)special_msg;
    size_t len;
    uint8_t *req = simple_request(0, 0, false, &st, &len);
    struct result r = {0};
    run_one(d, "/grpc.testing.TestService/UnaryCall", req, len, NULL, &r);
    if (expect_code(d, "special_status_message", &r, LG_GRPC_UNKNOWN)) {
        if (r.message_len != sizeof(special_msg) - 1 ||
            memcmp(r.message, special_msg, r.message_len) != 0) {
            fail(d, "special_status_message: message differs (%zu bytes)", r.message_len);
        }
    }
    result_free(&r);
    lg_free(req);
}

/* Two messages, then a non-OK status in the trailers: the messages are delivered and the
 * status is the server's (interop status_code_and_message, streaming form). */
static void case_status_after_messages(struct driver *d)
{
    static const int32_t sizes[] = {7, 8};
    size_t len;
    uint8_t *base = streaming_request(sizes, NULL, 2, false, &len);
    Grpc__Testing__StreamingOutputCallRequest *req =
        grpc__testing__streaming_output_call_request__unpack(NULL, len, base);
    Grpc__Testing__EchoStatus st;
    grpc__testing__echo_status__init(&st);
    st.code = LG_GRPC_INVALID_ARGUMENT;
    st.message = (char *)(uintptr_t) "test status message";
    req->response_status = &st;
    size_t len2;
    uint8_t *packed = pack(&req->base, &len2);
    req->response_status = NULL;
    grpc__testing__streaming_output_call_request__free_unpacked(req, NULL);
    struct lg_grpc_client_call_opts o = {.kind = LG_GRPC_CLIENT_SERVER_STREAMING};
    struct result r = {0};
    run_one(d, "/grpc.testing.TestService/StreamingOutputCall", packed, len2, &o, &r);
    if (expect_code(d, "status_after_messages", &r, LG_GRPC_INVALID_ARGUMENT)) {
        if (r.nmsgs != 2 || strcmp(r.message, "test status message") != 0) {
            fail(d, "status_after_messages: %zu messages, message \"%s\"", r.nmsgs, r.message);
        }
    }
    result_free(&r);
    lg_free(packed);
    lg_free(base);
}

static void case_unimplemented(struct driver *d, const char *method, const char *what)
{
    struct result r = {0};
    run_one(d, method, NULL, 0, NULL, &r);
    expect_code(d, what, &r, LG_GRPC_UNIMPLEMENTED);
    result_free(&r);
}

static void check_echo(struct driver *d, const char *what, const struct result *r)
{
    static const uint8_t ab[] = {0xab, 0xab, 0xab};
    if (strcmp(r->echo_initial, "test_initial_metadata_value") != 0) {
        fail(d, "%s: initial metadata echo \"%s\"", what, r->echo_initial);
    }
    if (r->echo_trailing_len != 3 || memcmp(r->echo_trailing, ab, 3) != 0) {
        fail(d, "%s: trailing-bin echo %zu bytes", what, r->echo_trailing_len);
    }
}

static void case_custom_metadata(struct driver *d)
{
    static const uint8_t ab[] = {0xab, 0xab, 0xab};
    const struct lg_grpc_client_md md[] = {
        {"x-grpc-test-echo-initial", (const uint8_t *)"test_initial_metadata_value",
         strlen("test_initial_metadata_value")},
        {"x-grpc-test-echo-trailing-bin", ab, sizeof(ab)},
    };
    size_t len;
    uint8_t *req = simple_request(271828, 314159, false, NULL, &len);
    struct lg_grpc_client_call_opts o = {.md = md, .md_count = 2};
    struct result r = {0};
    run_one(d, "/grpc.testing.TestService/UnaryCall", req, len, &o, &r);
    check_simple_response(d, "custom_metadata unary", &r, 314159, 271828);
    check_echo(d, "custom_metadata unary", &r);
    result_free(&r);
    lg_free(req);

    static const int32_t sizes[] = {314159};
    req = streaming_request(sizes, NULL, 1, false, &len);
    o.kind = LG_GRPC_CLIENT_SERVER_STREAMING;
    struct result r2 = {0};
    run_one(d, "/grpc.testing.TestService/StreamingOutputCall", req, len, &o, &r2);
    if (expect_code(d, "custom_metadata streaming", &r2, LG_GRPC_OK)) {
        check_echo(d, "custom_metadata streaming", &r2);
    }
    result_free(&r2);
    lg_free(req);
}

static void case_deadline_exceeded(struct driver *d)
{
    /* The server waits 30 s before its only response; the deadline is 100 ms. */
    static const int32_t sizes[] = {1};
    static const int32_t intervals[] = {30 * 1000 * 1000};
    size_t len;
    uint8_t *req = streaming_request(sizes, intervals, 1, false, &len);
    struct lg_grpc_client_call_opts o = {.kind = LG_GRPC_CLIENT_SERVER_STREAMING,
                                         .timeout_ms = 100};
    struct result r = {0};
    run_one(d, "/grpc.testing.TestService/StreamingOutputCall", req, len, &o, &r);
    if (expect_code(d, "deadline_exceeded", &r, LG_GRPC_DEADLINE_EXCEEDED) && r.nmsgs != 0) {
        fail(d, "deadline_exceeded: %zu messages", r.nmsgs);
    }
    result_free(&r);
    lg_free(req);
}

static void case_cancel_after_first_response(struct driver *d)
{
    /* Responses after the first come 30 s later: the cancel must end the call. */
    static const int32_t sizes[] = {31415, 9, 2653, 58979};
    static const int32_t intervals[] = {0, 30 * 1000 * 1000, 0, 0};
    size_t len;
    uint8_t *req = streaming_request(sizes, intervals, 4, false, &len);
    struct lg_grpc_client_call_opts o = {.kind = LG_GRPC_CLIENT_SERVER_STREAMING};
    struct result r = {.cancel_on_first = true};
    run_one(d, "/grpc.testing.TestService/StreamingOutputCall", req, len, &o, &r);
    if (expect_code(d, "cancel_after_first_response", &r, LG_GRPC_CANCELLED) && r.nmsgs != 1) {
        fail(d, "cancel_after_first_response: %zu messages", r.nmsgs);
    }
    result_free(&r);
    lg_free(req);
}

/* |n| streaming calls at once, each answering twice with a pause in between so they overlap.
 * All must succeed on one connection; |max_streams| bounds the streams open at once. */
static void concurrent(struct driver *d, size_t n, size_t want_max_open, const char *what)
{
    static const int32_t sizes[] = {100, 200};
    static const int32_t intervals[] = {0, 200 * 1000};
    size_t len;
    uint8_t *req = streaming_request(sizes, intervals, 2, false, &len);
    struct result *r = lg_calloc(n, sizeof(*r));
    if (!req || !r) {
        fail(d, "%s: out of memory", what);
        lg_free(req);
        lg_free(r);
        return;
    }
    struct lg_grpc_client_call_opts o = {.kind = LG_GRPC_CLIENT_SERVER_STREAMING};
    for (size_t i = 0; i < n; i++) {
        int rv = start(d, "/grpc.testing.TestService/StreamingOutputCall", req, len, &o, &r[i]);
        if (rv != LG_OK) {
            fail(d, "%s: start %zu: %s", what, i, lg_err_str(rv));
        }
    }
    run_calls(d);
    for (size_t i = 0; i < n; i++) {
        if (expect_code(d, what, &r[i], LG_GRPC_OK) && r[i].nmsgs != 2) {
            fail(d, "%s: call %zu got %zu messages", what, i, r[i].nmsgs);
        }
        result_free(&r[i]);
    }
    if (lg_grpc_client_get_connect_count(d->client) != 1) {
        fail(d, "%s: %" PRIu64 " connections, want 1", what,
             lg_grpc_client_get_connect_count(d->client));
    }
    if (lg_grpc_client_get_max_open_streams(d->client) != want_max_open) {
        fail(d, "%s: %zu streams open at most, want %zu", what,
             lg_grpc_client_get_max_open_streams(d->client), want_max_open);
    }
    lg_free(r);
    lg_free(req);
}

static void case_gzip(struct driver *d)
{
    /* Compressed request (zeros compress well) and compressed response. */
    size_t len;
    uint8_t *req = simple_request(271828, 314159, true, NULL, &len);
    struct lg_grpc_client_call_opts o = {.gzip = true};
    struct result r = {0};
    run_one(d, "/grpc.testing.TestService/UnaryCall", req, len, &o, &r);
    check_simple_response(d, "gzip unary", &r, 314159, 271828);
    if (r.compressed != 1) {
        fail(d, "gzip unary: %" PRIu64 " compressed responses, want 1", r.compressed);
    }
    result_free(&r);
    lg_free(req);

    static const int32_t sizes[] = {31415, 9, 2653, 58979};
    req = streaming_request(sizes, NULL, 4, true, &len);
    struct lg_grpc_client_call_opts so = {.kind = LG_GRPC_CLIENT_SERVER_STREAMING, .gzip = true};
    struct result r2 = {0};
    run_one(d, "/grpc.testing.TestService/StreamingOutputCall", req, len, &so, &r2);
    if (expect_code(d, "gzip streaming", &r2, LG_GRPC_OK)) {
        if (r2.nmsgs != 4 || r2.compressed == 0) {
            fail(d, "gzip streaming: %zu messages, %" PRIu64 " compressed", r2.nmsgs,
                 r2.compressed);
        }
    }
    result_free(&r2);
    lg_free(req);
}

static void case_receive_limit(struct driver *d)
{
    /* The client was created with a 1000-byte receive limit (see main). */
    size_t len;
    uint8_t *req = simple_request(0, 2000, false, NULL, &len);
    struct result r = {0};
    run_one(d, "/grpc.testing.TestService/UnaryCall", req, len, NULL, &r);
    expect_code(d, "receive_limit", &r, LG_GRPC_RESOURCE_EXHAUSTED);
    result_free(&r);
    struct result r2 = {0};
    uint8_t *small = simple_request(0, 900, false, NULL, &len);
    run_one(d, "/grpc.testing.TestService/UnaryCall", small, len, NULL, &r2);
    check_simple_response(d, "receive_limit under the cap", &r2, 900, 0);
    result_free(&r2);
    lg_free(small);
    lg_free(req);
}

/* ---- reconnect: the harness kills and restarts the server between steps ------------------ */

static void stdin_cb(evutil_socket_t fd, short what, void *ud)
{
    (void)what;
    struct driver *d = ud;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    (void)n; /* a line, or EOF: either way the harness has done its step */
    d->got_line = true;
    event_base_loopbreak(d->base);
}

/* Tells the harness to do |step| and waits for its answer line. */
static void harness_step(struct driver *d, const char *step)
{
    printf("STEP %s\n", step);
    fflush(stdout);
    d->got_line = false;
    event_add(d->stdin_ev, NULL);
    while (!d->got_line) {
        event_base_dispatch(d->base);
    }
    event_del(d->stdin_ev);
}

static void case_reconnect(struct driver *d)
{
    size_t len;
    uint8_t *req = simple_request(10, 10, false, NULL, &len);
    struct result r1 = {0};
    run_one(d, "/grpc.testing.TestService/UnaryCall", req, len, NULL, &r1);
    check_simple_response(d, "reconnect first call", &r1, 10, 10);
    result_free(&r1);

    /* An in-flight call when the server dies ends UNAVAILABLE. */
    static const int32_t sizes[] = {5, 5};
    static const int32_t intervals[] = {0, 30 * 1000 * 1000};
    size_t slen;
    uint8_t *sreq = streaming_request(sizes, intervals, 2, false, &slen);
    struct lg_grpc_client_call_opts so = {.kind = LG_GRPC_CLIENT_SERVER_STREAMING};
    struct result r2 = {0};
    if (start(d, "/grpc.testing.TestService/StreamingOutputCall", sreq, slen, &so, &r2) == LG_OK) {
        /* Run until the first message is in, then have the server killed. */
        while (r2.nmsgs == 0 && !r2.closed) {
            event_base_loop(d->base, EVLOOP_ONCE);
        }
        harness_step(d, "kill");
        run_calls(d);
    }
    if (expect_code(d, "reconnect in-flight call", &r2, LG_GRPC_UNAVAILABLE) && r2.nmsgs != 1) {
        fail(d, "reconnect in-flight call: %zu messages", r2.nmsgs);
    }
    result_free(&r2);

    /* With the server down, a call fails fast with UNAVAILABLE. */
    struct result r3 = {0};
    run_one(d, "/grpc.testing.TestService/UnaryCall", req, len, NULL, &r3);
    expect_code(d, "reconnect while down", &r3, LG_GRPC_UNAVAILABLE);
    result_free(&r3);

    /* After the restart (same port), a later call redials (after the backoff) and works. */
    harness_step(d, "restart");
    struct result r4 = {0};
    run_one(d, "/grpc.testing.TestService/UnaryCall", req, len, NULL, &r4);
    check_simple_response(d, "reconnect after restart", &r4, 10, 10);
    result_free(&r4);
    if (lg_grpc_client_get_connect_count(d->client) != 2) {
        fail(d, "reconnect: %" PRIu64 " connections, want 2",
             lg_grpc_client_get_connect_count(d->client));
    }
    lg_free(sreq);
    lg_free(req);
}

/* ---- main --------------------------------------------------------------------------------- */

static int run_case(struct driver *d, const char *name)
{
    if (strcmp(name, "empty_unary") == 0) {
        case_empty_unary(d);
    } else if (strcmp(name, "large_unary") == 0) {
        case_large_unary(d);
    } else if (strcmp(name, "server_streaming") == 0) {
        case_server_streaming(d);
    } else if (strcmp(name, "special_status_message") == 0) {
        case_special_status_message(d);
    } else if (strcmp(name, "status_after_messages") == 0) {
        case_status_after_messages(d);
    } else if (strcmp(name, "unimplemented_method") == 0) {
        case_unimplemented(d, "/grpc.testing.TestService/UnimplementedCall", name);
    } else if (strcmp(name, "unimplemented_service") == 0) {
        case_unimplemented(d, "/grpc.testing.UnimplementedService/UnimplementedCall", name);
    } else if (strcmp(name, "custom_metadata") == 0) {
        case_custom_metadata(d);
    } else if (strcmp(name, "deadline_exceeded") == 0) {
        case_deadline_exceeded(d);
    } else if (strcmp(name, "cancel_after_first_response") == 0) {
        case_cancel_after_first_response(d);
    } else if (strcmp(name, "concurrent_streams") == 0) {
        concurrent(d, CONCURRENT_CALLS, CONCURRENT_CALLS, name);
    } else if (strcmp(name, "queue_beyond_max_streams") == 0) {
        concurrent(d, QUEUED_CALLS, PEER_MAX_STREAMS, name);
    } else if (strcmp(name, "gzip") == 0) {
        case_gzip(d);
    } else if (strcmp(name, "receive_limit") == 0) {
        case_receive_limit(d);
    } else if (strcmp(name, "reconnect") == 0) {
        case_reconnect(d);
    } else {
        fail(d, "unknown case");
    }
    return d->failure[0] ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *target = NULL;
    const char *name = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--target") == 0) {
            target = argv[i + 1];
        } else if (strcmp(argv[i], "--case") == 0) {
            name = argv[i + 1];
        }
    }
    if (!target || !name) {
        fprintf(stderr, "usage: %s --target HOST:PORT --case NAME\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    lg_log_init(LG_LOG_WARN, -1);
    struct driver d = {.target = target};
    d.base = event_base_new();
    struct lg_grpc_client_opts opts;
    lg_grpc_client_opts_default(&opts);
    opts.backoff_initial_ms = 50; /* the reconnect case redials soon after its failed dial */
    opts.backoff_max_ms = 200;
    if (strcmp(name, "receive_limit") == 0) {
        opts.max_recv_msg_bytes = 1000;
    }
    int rv = lg_grpc_client_new(&d.client, d.base, target, &opts);
    if (rv != LG_OK) {
        printf("FAIL %s: client_new: %s\n", name, lg_err_str(rv));
        return 1;
    }
    d.stdin_ev = event_new(d.base, STDIN_FILENO, EV_READ, stdin_cb, &d);
    int failed = run_case(&d, name);
    if (lg_grpc_client_get_call_count(d.client) != 0) {
        fail(&d, "%zu calls left open", lg_grpc_client_get_call_count(d.client));
        failed = 1;
    }
    lg_grpc_client_free(d.client);
    event_free(d.stdin_ev);
    event_base_free(d.base);
    if (failed) {
        printf("FAIL %s: %s\n", name, d.failure);
        return 1;
    }
    printf("PASS %s\n", name);
    return 0;
}
