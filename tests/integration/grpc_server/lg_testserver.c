/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg-grpc-testserver: grpc.testing.TestService on lg_grpc_server, for interop tests with
 * real gRPC clients and for benchmarks. Registers EmptyCall, UnaryCall, StreamingOutputCall,
 * StreamingInputCall, FullDuplexCall, grpc.health.v1.Health and grpc.reflection (v1 and
 * v1alpha), plus a test-only method /llmgate.testing.Stats/Get that answers a JSON document of
 * runtime counters (send-queue high mark, LG_ERR_AGAIN count, close reasons), so tests can
 * observe backpressure and cancellation from outside.
 *
 * Prints `listening grpc HOST:PORT` once it accepts connections. SIGTERM/SIGINT start a
 * graceful shutdown (two-phase GOAWAY, drain), after which the process exits 0.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>

#include "grpc/testing/empty.pb-c.h"
#include "grpc/testing/messages.pb-c.h"
#include "lg_buf.h"
#include "lg_cfg.h"
#include "lg_err.h"
#include "lg_grpc_health.h"
#include "lg_grpc_reflection.h"
#include "lg_grpc_server.h"
#define LG_LOG_MODULE "testserver"
#include "lg_log.h"
#include "lg_loop.h"
#include "lg_mem.h"
#include "lg_testserver_fds.h"

/* Largest response payload the test service produces (grpc interop asks for 314159 bytes;
 * benchmarks and the slow-reader test use up to 1 MiB per message). */
#define TS_MAX_PAYLOAD_BYTES (4u * 1024u * 1024u)
/* Stats document size. */
#define TS_STATS_BYTES 1024u
/* Bytes of a listen address. */
#define TS_ADDR_BYTES 128u

struct ts_stats {
    size_t max_queued_bytes; /* highest lg_grpc_call_get_queued_bytes seen after a send */
    uint64_t again;          /* sends refused with LG_ERR_AGAIN */
    uint64_t writable;       /* on_writable callbacks */
    uint64_t closes[6];      /* by enum lg_grpc_close_reason */
    uint64_t messages_sent;
};

struct ts_app {
    struct event_base *base;
    lg_grpc_server *srv;
    lg_grpc_health *health;
    lg_grpc_reflection *refl;
    lg_loop_signals *sigs;
    uint8_t *zeros; /* TS_MAX_PAYLOAD_BYTES of zero bytes, the payload of every response */
    struct ts_stats stats;
};

/* Per-call state of a streaming method (heap, freed in on_close). */
struct ts_stream {
    struct ts_app *app;
    lg_grpc_call *call;
    struct event *timer;                            /* paces responses with interval_us */
    Grpc__Testing__StreamingOutputCallRequest *req; /* in the call arena */
    size_t next;                                    /* next response_parameters index */
    bool half_closed;                               /* client finished sending (FullDuplexCall) */
    bool waiting; /* a send returned LG_ERR_AGAIN: resume from on_writable */
    int status;   /* final status to send after the last response */
    const char *status_msg;
};

static void ts_echo_metadata(lg_grpc_call *call)
{
    size_t len;
    const uint8_t *v = lg_grpc_call_get_metadata(call, "x-grpc-test-echo-initial", &len);
    if (v) {
        lg_grpc_call_add_initial_metadata(call, "x-grpc-test-echo-initial", v, len);
    }
    v = lg_grpc_call_get_metadata(call, "x-grpc-test-echo-trailing-bin", &len);
    if (v) {
        lg_grpc_call_add_trailing_metadata(call, "x-grpc-test-echo-trailing-bin", v, len);
    }
}

static int ts_on_start(lg_grpc_call *call, void *user_data)
{
    (void)user_data;
    ts_echo_metadata(call);
    return LG_OK;
}

static void ts_on_close_count(lg_grpc_call *call, enum lg_grpc_close_reason reason, void *user_data)
{
    (void)call;
    struct ts_app *app = user_data;
    app->stats.closes[reason]++;
}

static void ts_note_send(struct ts_app *app, lg_grpc_call *call, int rc)
{
    if (rc == LG_ERR_AGAIN) {
        app->stats.again++;
        return;
    }
    if (rc == LG_OK) {
        app->stats.messages_sent++;
    }
    size_t q = lg_grpc_call_get_queued_bytes(call);
    if (q > app->stats.max_queued_bytes) {
        app->stats.max_queued_bytes = q;
    }
}

/* ---- EmptyCall, UnaryCall --------------------------------------------------------------- */

static void ts_empty_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len, void *user_data)
{
    (void)msg;
    (void)len;
    struct ts_app *app = user_data;
    ts_note_send(app, call, lg_grpc_call_send(call, NULL, 0));
    lg_grpc_call_finish(call, LG_GRPC_OK, NULL);
}

static bool ts_payload(struct ts_app *app, int32_t size, Grpc__Testing__Payload *p)
{
    if (size < 0 || (uint32_t)size > TS_MAX_PAYLOAD_BYTES) {
        return false;
    }
    p->body.data = app->zeros;
    p->body.len = (size_t)size;
    return true;
}

static void ts_unary_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len, void *user_data)
{
    struct ts_app *app = user_data;
    ProtobufCAllocator a;
    lg_arena_protobuf_allocator(lg_grpc_call_get_arena(call), &a);
    Grpc__Testing__SimpleRequest *req = grpc__testing__simple_request__unpack(&a, len, msg);
    if (!req) {
        lg_grpc_call_finish(call, LG_GRPC_INTERNAL, "cannot parse SimpleRequest");
        return;
    }
    /* Interop "client_compressed_unary": a request that expects compression must have
     * arrived compressed; the probe without it gets INVALID_ARGUMENT. */
    if (req->expect_compressed && req->expect_compressed->value &&
        !lg_grpc_call_is_request_compressed(call)) {
        lg_grpc_call_finish(call, LG_GRPC_INVALID_ARGUMENT, "expected a compressed request");
        return;
    }
    if (req->response_status && req->response_status->code != 0) {
        lg_grpc_call_finish(call, req->response_status->code, req->response_status->message);
        return;
    }
    if (req->response_compressed && req->response_compressed->value) {
        lg_grpc_call_set_compress(call, true);
    }
    Grpc__Testing__SimpleResponse resp;
    grpc__testing__simple_response__init(&resp);
    Grpc__Testing__Payload payload = GRPC__TESTING__PAYLOAD__INIT;
    if (!ts_payload(app, req->response_size, &payload)) {
        lg_grpc_call_finish(call, LG_GRPC_INVALID_ARGUMENT, "response_size out of range");
        return;
    }
    resp.payload = &payload;
    ts_note_send(app, call, lg_grpc_call_send_pb(call, &resp.base));
    lg_grpc_call_finish(call, LG_GRPC_OK, NULL);
}

/* ---- StreamingOutputCall, FullDuplexCall ------------------------------------------------ */

static void ts_stream_pump(struct ts_stream *st);

static void ts_stream_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ts_stream_pump(arg);
}

/* Sends the responses of the current request, pacing by interval_us and stopping at
 * LG_ERR_AGAIN; finishes when everything is out and the client is done. */
static void ts_stream_pump(struct ts_stream *st)
{
    while (st->req && st->next < st->req->n_response_parameters) {
        Grpc__Testing__ResponseParameters *rp = st->req->response_parameters[st->next];
        Grpc__Testing__StreamingOutputCallResponse resp =
            GRPC__TESTING__STREAMING_OUTPUT_CALL_RESPONSE__INIT;
        Grpc__Testing__Payload payload = GRPC__TESTING__PAYLOAD__INIT;
        if (!ts_payload(st->app, rp->size, &payload)) {
            lg_grpc_call_finish(st->call, LG_GRPC_INVALID_ARGUMENT, "size out of range");
            return;
        }
        resp.payload = &payload;
        /* Interop "server_compressed_streaming": compression chosen per message. */
        lg_grpc_call_set_compress(st->call, rp->compressed && rp->compressed->value);
        int rc = lg_grpc_call_send_pb(st->call, &resp.base);
        ts_note_send(st->app, st->call, rc);
        if (rc == LG_ERR_AGAIN) {
            st->waiting = true;
            return;
        }
        if (rc != LG_OK) {
            return; /* the call ended; on_close follows */
        }
        st->next++;
        if (st->next < st->req->n_response_parameters &&
            st->req->response_parameters[st->next]->interval_us > 0) {
            int64_t us = st->req->response_parameters[st->next]->interval_us;
            struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
            evtimer_add(st->timer, &tv);
            return;
        }
    }
    if (st->half_closed) {
        lg_grpc_call_finish(st->call, st->status, st->status_msg);
    }
}

/* Streaming calls get their state at start; on_close frees it. */
static int ts_stream_on_start(lg_grpc_call *call, void *user_data)
{
    struct ts_app *app = user_data;
    struct ts_stream *st = lg_calloc(1, sizeof(*st));
    if (!st) {
        return LG_ERR_NOMEM;
    }
    st->app = app;
    st->call = call;
    st->timer = evtimer_new(app->base, ts_stream_on_timer, st);
    if (!st->timer) {
        lg_free(st);
        return LG_ERR_NOMEM;
    }
    lg_grpc_call_set_user_data(call, st);
    ts_echo_metadata(call);
    return LG_OK;
}

static void ts_stream_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len,
                                 void *user_data)
{
    struct ts_stream *st = user_data;
    ProtobufCAllocator a;
    lg_arena_protobuf_allocator(lg_grpc_call_get_arena(call), &a);
    Grpc__Testing__StreamingOutputCallRequest *req =
        grpc__testing__streaming_output_call_request__unpack(&a, len, msg);
    if (!req) {
        lg_grpc_call_finish(call, LG_GRPC_INTERNAL, "cannot parse StreamingOutputCallRequest");
        return;
    }
    if (req->response_status && req->response_status->code != 0) {
        lg_grpc_call_finish(call, req->response_status->code, req->response_status->message);
        return;
    }
    if (st->req && st->next < st->req->n_response_parameters) {
        lg_grpc_call_finish(call, LG_GRPC_FAILED_PRECONDITION,
                            "request arrived before the previous responses went out");
        return;
    }
    st->req = req;
    st->next = 0;
    /* Announce gzip in the headers when any response of this request wants it. */
    for (size_t i = 0; i < req->n_response_parameters; i++) {
        if (req->response_parameters[i]->compressed &&
            req->response_parameters[i]->compressed->value) {
            lg_grpc_call_set_compress(call, true);
        }
    }
    /* StreamingOutputCall's one request arrives after the half-close. */
    if (lg_grpc_call_get_method(call)[strlen("/grpc.testing.TestService/")] == 'S') {
        st->half_closed = true;
    }
    if (req->n_response_parameters > 0 && req->response_parameters[0]->interval_us > 0) {
        int64_t us = req->response_parameters[0]->interval_us;
        struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};
        evtimer_add(st->timer, &tv);
        return;
    }
    ts_stream_pump(st);
}

static void ts_stream_on_half_close(lg_grpc_call *call, void *user_data)
{
    struct ts_stream *st = user_data;
    st->half_closed = true;
    if (!st->req || st->next >= st->req->n_response_parameters) {
        lg_grpc_call_finish(call, st->status, st->status_msg);
    }
}

static void ts_stream_on_writable(lg_grpc_call *call, void *user_data)
{
    struct ts_stream *st = user_data;
    st->app->stats.writable++;
    if (st->waiting) {
        st->waiting = false;
        ts_stream_pump(st);
    }
    (void)call;
}

static void ts_stream_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason,
                               void *user_data)
{
    (void)call;
    struct ts_stream *st = user_data;
    st->app->stats.closes[reason]++;
    event_free(st->timer);
    lg_free(st);
}

/* ---- StreamingInputCall ----------------------------------------------------------------- */

/* The running total of a client-streaming call lives in its arena (freed with the call). */
static int ts_input_on_start(lg_grpc_call *call, void *user_data)
{
    (void)user_data;
    size_t *total = lg_arena_alloc(lg_grpc_call_get_arena(call), sizeof(*total));
    if (!total) {
        return LG_ERR_NOMEM;
    }
    *total = 0;
    lg_grpc_call_set_user_data(call, total);
    return LG_OK;
}

static void ts_input_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len, void *user_data)
{
    size_t *total = user_data;
    ProtobufCAllocator a;
    lg_arena_protobuf_allocator(lg_grpc_call_get_arena(call), &a);
    Grpc__Testing__StreamingInputCallRequest *req =
        grpc__testing__streaming_input_call_request__unpack(&a, len, msg);
    if (!req) {
        lg_grpc_call_finish(call, LG_GRPC_INTERNAL, "cannot parse StreamingInputCallRequest");
        return;
    }
    *total += req->payload ? req->payload->body.len : 0;
}

static void ts_input_on_half_close(lg_grpc_call *call, void *user_data)
{
    size_t *total = user_data;
    Grpc__Testing__StreamingInputCallResponse resp;
    grpc__testing__streaming_input_call_response__init(&resp);
    resp.aggregated_payload_size = (int32_t)*total;
    if (lg_grpc_call_send_pb(call, &resp.base) == LG_OK) {
        lg_grpc_call_finish(call, LG_GRPC_OK, NULL);
    }
}

static void ts_input_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason, void *user_data)
{
    /* Not counted in the stats: user_data is the call's total, not the app. */
    (void)call;
    (void)reason;
    (void)user_data;
}

/* ---- test-only stats -------------------------------------------------------------------- */

static void ts_stats_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len, void *user_data)
{
    (void)msg;
    (void)len;
    struct ts_app *app = user_data;
    char doc[TS_STATS_BYTES];
    const struct ts_stats *s = &app->stats;
    int n =
        snprintf(doc, sizeof(doc),
                 "{\"max_queued_bytes\":%zu,\"again\":%" PRIu64 ",\"writable\":%" PRIu64
                 ",\"messages_sent\":%" PRIu64 ",\"closed_finished\":%" PRIu64
                 ",\"closed_cancelled\":%" PRIu64 ",\"closed_deadline\":%" PRIu64
                 ",\"closed_conn_lost\":%" PRIu64 ",\"closed_shutdown\":%" PRIu64
                 ",\"closed_error\":%" PRIu64 ",\"calls\":%zu,\"conns\":%zu}",
                 s->max_queued_bytes, s->again, s->writable, s->messages_sent, s->closes[0],
                 s->closes[1], s->closes[2], s->closes[3], s->closes[4], s->closes[5],
                 lg_grpc_server_get_call_count(app->srv), lg_grpc_server_get_conn_count(app->srv));
    if (n < 0 || (size_t)n >= sizeof(doc)) {
        lg_grpc_call_finish(call, LG_GRPC_INTERNAL, "stats too long");
        return;
    }
    lg_grpc_call_send(call, (const uint8_t *)doc, (size_t)n);
    lg_grpc_call_finish(call, LG_GRPC_OK, NULL);
}

/* ---- main -------------------------------------------------------------------------------- */

static void ts_on_done(lg_grpc_server *srv, void *user_data)
{
    (void)srv;
    struct ts_app *app = user_data;
    event_base_loopbreak(app->base);
}

static void ts_on_signal(int signo, void *user_data)
{
    struct ts_app *app = user_data;
    if (signo == SIGHUP) {
        return;
    }
    lg_log(LG_LOG_INFO, NULL, "signal", "signo=%d", signo);
    if (lg_grpc_server_is_shutting_down(app->srv)) {
        event_base_loopbreak(app->base); /* second signal: stop now */
        return;
    }
    lg_grpc_server_shutdown(app->srv, 0, ts_on_done, app);
}

static int ts_register(struct ts_app *app)
{
    static const struct lg_grpc_method_cbs empty = {ts_on_start, ts_empty_on_message, NULL, NULL,
                                                    ts_on_close_count};
    static const struct lg_grpc_method_cbs unary = {ts_on_start, ts_unary_on_message, NULL, NULL,
                                                    ts_on_close_count};
    static const struct lg_grpc_method_cbs stream = {ts_stream_on_start, ts_stream_on_message,
                                                     ts_stream_on_half_close, ts_stream_on_writable,
                                                     ts_stream_on_close};
    static const struct lg_grpc_method_cbs stats = {NULL, ts_stats_on_message, NULL, NULL,
                                                    ts_on_close_count};
    static const struct lg_grpc_method_cbs input = {
        ts_input_on_start, ts_input_on_message, ts_input_on_half_close, NULL, ts_input_on_close};
    int rc = lg_grpc_server_register(app->srv, "/grpc.testing.TestService/EmptyCall", LG_GRPC_UNARY,
                                     &empty, app);
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(app->srv, "/grpc.testing.TestService/UnaryCall", LG_GRPC_UNARY,
                                     &unary, app);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(app->srv, "/grpc.testing.TestService/StreamingOutputCall",
                                     LG_GRPC_SERVER_STREAMING, &stream, app);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(app->srv, "/grpc.testing.TestService/FullDuplexCall",
                                     LG_GRPC_BIDI_STREAMING, &stream, app);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(app->srv, "/grpc.testing.TestService/StreamingInputCall",
                                     LG_GRPC_CLIENT_STREAMING, &input, app);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(app->srv, "/llmgate.testing.Stats/Get", LG_GRPC_UNARY, &stats,
                                     app);
    }
    return rc;
}

int main(int argc, char **argv)
{
    const char *listen = NULL;
    const char *log_level = NULL;
    int64_t queue_bytes = 0;
    int64_t drain_ms = 0;
    int64_t keepalive_ms = -1;
    int64_t keepalive_timeout_ms = 0;
    struct lg_cfg_opt opts[] = {
        {"listen", LG_CFG_STRING, &listen, "127.0.0.1:0", 0, 0, "gRPC listen address HOST:PORT"},
        {"log-level", LG_CFG_STRING, &log_level, "warn", 0, 0, "debug, info, warn, error, off"},
        {"send-queue-bytes", LG_CFG_INT, &queue_bytes, "0", 0, INT32_MAX,
         "per-call send queue bound (0 = runtime default)"},
        {"drain-ms", LG_CFG_INT, &drain_ms, "0", 0, 3600000,
         "graceful shutdown drain time in ms (0 = runtime default)"},
        {"keepalive-ms", LG_CFG_INT, &keepalive_ms, "-1", -1, INT32_MAX,
         "idle time before a keepalive PING in ms (-1 = runtime default, 0 = off)"},
        {"keepalive-timeout-ms", LG_CFG_INT, &keepalive_timeout_ms, "0", 0, INT32_MAX,
         "PING ack timeout in ms (0 = runtime default)"},
    };
    const size_t nopts = sizeof(opts) / sizeof(opts[0]);
    char err[256];
    int rc = lg_cfg_parse(opts, nopts, argc, argv, NULL, 0, NULL, err, sizeof(err));
    if (rc == 1) {
        struct lg_buf b;
        lg_buf_init(&b, 65536);
        lg_cfg_usage(opts, nopts, argv[0], "[flags]", &b);
        fputs(b.data ? (const char *)b.data : "", stdout);
        lg_buf_deinit(&b);
        return 0;
    }
    if (rc != LG_OK) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    enum lg_log_level lvl = LG_LOG_WARN;
    if (lg_log_parse_level(log_level, &lvl) != 0) {
        fprintf(stderr, "bad --log-level\n");
        return 2;
    }
    lg_log_init(lvl, -1);

    struct ts_app app;
    memset(&app, 0, sizeof(app));
    int exit_code = 1;
    app.base = lg_loop_base_new();
    app.zeros = lg_calloc(1, TS_MAX_PAYLOAD_BYTES);
    if (!app.base || !app.zeros) {
        fprintf(stderr, "startup: out of memory\n");
        goto out_free_base;
    }
    struct lg_grpc_server_opts so;
    lg_grpc_server_opts_default(&so);
    if (queue_bytes > 0) {
        so.call_send_queue_bytes = (size_t)queue_bytes;
    }
    if (drain_ms > 0) {
        so.drain_ms = (uint32_t)drain_ms;
    }
    if (keepalive_ms >= 0) {
        so.keepalive_time_ms = (uint32_t)keepalive_ms;
    }
    if (keepalive_timeout_ms > 0) {
        so.keepalive_timeout_ms = (uint32_t)keepalive_timeout_ms;
    }
    if (lg_grpc_server_new(&app.srv, app.base, &so) != LG_OK ||
        lg_grpc_health_new(&app.health, app.srv) != LG_OK ||
        lg_grpc_reflection_new(&app.refl, app.srv, lg_testserver_fds, lg_testserver_fds_len) !=
            LG_OK ||
        ts_register(&app) != LG_OK ||
        lg_loop_signals_new(&app.sigs, app.base, ts_on_signal, &app) != LG_OK) {
        fprintf(stderr, "startup failed\n");
        goto out_free_server;
    }
    lg_grpc_health_set_status(app.health, "grpc.testing.TestService", LG_GRPC_HEALTH_SERVING);
    char bound[TS_ADDR_BYTES];
    if (lg_grpc_server_listen(app.srv, listen, bound, sizeof(bound)) != LG_OK) {
        fprintf(stderr, "cannot listen on %s\n", listen);
        goto out_free_server;
    }
    printf("listening grpc %s\n", bound);
    fflush(stdout);
    event_base_dispatch(app.base);
    exit_code = 0;

out_free_server:
    lg_loop_signals_free(app.sigs);
    lg_grpc_server_free(app.srv);
    lg_grpc_reflection_free(app.refl);
    lg_grpc_health_free(app.health);
out_free_base:
    lg_free(app.zeros);
    if (app.base) {
        event_base_free(app.base);
    }
    return exit_code;
}
