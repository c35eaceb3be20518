/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_chat_service (owner: fuzz): hostile request messages through the real chat service.
 * fuzz_chat_request repeats the service's glue code; this target does not.
 *
 * Each input is one gRPC call to an in-process llmgate-chat (lg_grpc_server +
 * lg_chat_service with the built-in demo provider at pace 0, records to /dev/null,
 * UsageService backed by lg_usage pointed at a closed ClickHouse port). Byte 0 picks the
 * method (the same numbering as fuzz_chat_request, so the corpora are interchangeable:
 * 0 StreamChat, 1 ResumeStream, 2 CancelStream, 3 ListLogs, 4 GetUsage, 5 Complete) and
 * whether x-user-id is sent (bit 7). The rest is the request message, sent as one
 * length-prefixed gRPC message by a real HTTP/2 client (nghttp2) over a socketpair adopted by
 * the server. Properties: no crash, leak or sanitizer report; the call ends by itself or,
 * after a bounded number of loop turns, when the client hangs up, and the server then holds
 * no connection.
 *
 * The server, service and usage worker are made and freed per input (the service keeps
 * streams for their retention time; a fresh one per input keeps inputs independent).
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <nghttp2/nghttp2.h>

#include "lg_chat_config.h"
#include "lg_chat_service.h"
#include "lg_chclient.h"
#include "lg_err.h"
#include "lg_grpc_server.h"
#include "lg_log.h"
#include "lg_record.h"
#include "lg_usage.h"

#define FUZZ_MAX_TURNS     3000
/* Waiting turns after the non-blocking ones, each at most FUZZ_WAIT_US: at most 0.5 s per
 * input for calls that do not end by themselves. */
#define FUZZ_WAIT_TURNS    500
#define FUZZ_WAIT_US       1000
#define FUZZ_READ_BYTES    65536
#define FUZZ_MAX_BODY      (64 * 1024)
#define FUZZ_GRPC_PREFIX   5
#define FUZZ_CH_URL        "http://127.0.0.1:1"
#define FUZZ_CH_TIMEOUT_MS 2000
#define FUZZ_USER_BIT      0x80u

#define LG_FUZZ_SMOKE_ITERATIONS 400
#include "lg_fuzz_smoke.h"

static const char *const fuzz_paths[] = {
    "/llmgate.chat.v1.ChatService/StreamChat",  "/llmgate.chat.v1.ChatService/ResumeStream",
    "/llmgate.chat.v1.ChatService/CancelStream", "/llmgate.chat.v1.UsageService/ListLogs",
    "/llmgate.chat.v1.UsageService/GetUsage",    "/llmgate.chat.v1.ChatService/Complete",
};
#define FUZZ_NPATHS (sizeof(fuzz_paths) / sizeof(fuzz_paths[0]))

struct fuzz_client {
    int fd;
    const uint8_t *body; /* prefix + message */
    size_t len, off;
    bool closed; /* the call's stream closed (answer, trailers or reset) */
    int status;  /* grpc-status received, -1 until then */
};

static ssize_t fuzz_read_body(nghttp2_session *s, int32_t sid, uint8_t *buf, size_t len,
                                    uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)sid;
    (void)src;
    struct fuzz_client *c = ud;
    size_t n = c->len - c->off < len ? c->len - c->off : len;
    memcpy(buf, c->body + c->off, n);
    c->off += n;
    if (c->off == c->len) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

static int fuzz_on_close(nghttp2_session *s, int32_t sid, uint32_t err, void *ud)
{
    (void)s;
    (void)sid;
    (void)err;
    ((struct fuzz_client *)ud)->closed = true;
    return 0;
}

/* Every grpc-status the server sends must be a gRPC code (0..16, decimal). */
static int fuzz_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                          size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                          void *ud)
{
    (void)s;
    (void)frame;
    (void)flags;
    struct fuzz_client *c = ud;
    if (namelen == sizeof("grpc-status") - 1 && memcmp(name, "grpc-status", namelen) == 0) {
        int v = 0;
        if (valuelen == 0 || valuelen > 2) {
            abort();
        }
        for (size_t i = 0; i < valuelen; i++) {
            if (value[i] < '0' || value[i] > '9') {
                abort();
            }
            v = v * 10 + (value[i] - '0');
        }
        if (v > LG_GRPC_UNAUTHENTICATED) {
            abort();
        }
        c->status = v;
    }
    return 0;
}

/* Sends what the client session has queued (the socketpair holds far more than one input). */
static void fuzz_pump(nghttp2_session *s, struct fuzz_client *c)
{
    const uint8_t *p;
    ssize_t n;
    while (c->fd >= 0 && (n = nghttp2_session_mem_send(s, &p)) > 0) {
        size_t off = 0;
        while (off < (size_t)n) {
            ssize_t w = send(c->fd, p + off, (size_t)n - off, MSG_NOSIGNAL);
            if (w <= 0) {
                return;
            }
            off += (size_t)w;
        }
    }
}

/* Feeds what the server wrote to the client session. */
static void fuzz_receive(nghttp2_session *s, struct fuzz_client *c)
{
    uint8_t buf[FUZZ_READ_BYTES];
    ssize_t n;
    while ((n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        if (nghttp2_session_mem_recv(s, buf, (size_t)n) < 0) {
            c->closed = true; /* the server broke HTTP/2: stop talking */
            return;
        }
    }
    if (n == 0) {
        c->closed = true;
    }
}

static nghttp2_session *fuzz_client_new(struct fuzz_client *c, const char *path, bool user)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session *s = NULL;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        abort();
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, fuzz_on_close);
    nghttp2_session_callbacks_set_on_header_callback(cbs, fuzz_on_header);
    if (nghttp2_session_client_new(&s, cbs, c) != 0) {
        abort();
    }
    nghttp2_session_callbacks_del(cbs);
#define FUZZ_NV(n, v)                                                                      \
    {(uint8_t *)(uintptr_t)(n), (uint8_t *)(uintptr_t)(v), sizeof(n) - 1, strlen(v),       \
     NGHTTP2_NV_FLAG_NONE}
    const nghttp2_nv hdrs[] = {
        FUZZ_NV(":method", "POST"),
        FUZZ_NV(":scheme", "http"),
        FUZZ_NV(":path", path),
        FUZZ_NV(":authority", "fuzz"),
        FUZZ_NV("content-type", "application/grpc"),
        FUZZ_NV("te", "trailers"),
        FUZZ_NV("x-user-id", "alice"),
    };
#undef FUZZ_NV
    size_t nh = sizeof(hdrs) / sizeof(hdrs[0]) - (user ? 0 : 1);
    nghttp2_data_provider prd = {{.ptr = NULL}, fuzz_read_body};
    if (nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0) != 0 ||
        nghttp2_submit_request(s, NULL, hdrs, nh, &prd, c) < 0) {
        abort();
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size - 1 > FUZZ_MAX_BODY) {
        return 0;
    }
    lg_log_init(LG_LOG_OFF, -1);
    evthread_use_pthreads(); /* lg_usage answers from its worker thread */
    struct event_base *base = event_base_new();
    lg_grpc_server *srv = NULL;
    lg_chat_service *svc = NULL;
    lg_chat_config *cfg = NULL;
    lg_usage *usage = NULL;
    struct lg_record_sink sink = {0};
    struct lg_grpc_server_opts go;
    lg_grpc_server_opts_default(&go);
    go.keepalive_time_ms = 0;
    struct lg_chclient_opts ch = {FUZZ_CH_URL,        NULL, NULL, FUZZ_CH_TIMEOUT_MS,
                                  FUZZ_CH_TIMEOUT_MS, NULL};
    struct lg_chat_service_opts so;
    lg_chat_service_opts_default(&so);
    so.demo_pace_ms = 0;
    if (base == NULL || lg_chat_config_new_default(&cfg) != LG_OK ||
        lg_record_file_sink_open(&sink, "/dev/null") != LG_OK ||
        lg_usage_new(&usage, &ch) != LG_OK || lg_grpc_server_new(&srv, base, &go) != LG_OK) {
        abort();
    }
    so.cfg = cfg;
    so.sink = &sink;
    so.usage = usage;
    int sv[2];
    if (lg_chat_service_new(&svc, base, srv, &so) != LG_OK ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
        lg_grpc_server_adopt_fd(srv, sv[0], "fuzz") != LG_OK) {
        abort();
    }
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);

    /* The gRPC message: 5-byte prefix (uncompressed, big-endian length) + the input. */
    size_t mlen = size - 1;
    uint8_t *body = malloc(FUZZ_GRPC_PREFIX + mlen);
    if (body == NULL) {
        abort();
    }
    body[0] = 0;
    body[1] = (uint8_t)(mlen >> 24);
    body[2] = (uint8_t)(mlen >> 16);
    body[3] = (uint8_t)(mlen >> 8);
    body[4] = (uint8_t)mlen;
    memcpy(body + FUZZ_GRPC_PREFIX, data + 1, mlen);
    struct fuzz_client c = {sv[1], body, FUZZ_GRPC_PREFIX + mlen, 0, false, -1};
    nghttp2_session *s = fuzz_client_new(&c, fuzz_paths[(data[0] & 0x7fu) % FUZZ_NPATHS],
                                         (data[0] & FUZZ_USER_BIT) != 0);
    /* Non-blocking turns first; then turns that wait up to FUZZ_WAIT_US for an event, so an
     * answer coming from the usage worker thread (ClickHouse refused) can arrive. */
    const struct timeval wait = {0, FUZZ_WAIT_US};
    for (int turns = 0; !c.closed && turns < FUZZ_MAX_TURNS + FUZZ_WAIT_TURNS; turns++) {
        fuzz_pump(s, &c);
        if (turns < FUZZ_MAX_TURNS) {
            event_base_loop(base, EVLOOP_NONBLOCK);
        } else {
            event_base_loopexit(base, &wait);
            event_base_loop(base, EVLOOP_ONCE);
        }
        fuzz_receive(s, &c);
    }
    /* Hang up (a stream still generating, or an answer still on its way from the usage
     * worker, must cope with the client leaving). */
    close(sv[1]);
    for (int i = 0; i < FUZZ_MAX_TURNS && lg_grpc_server_get_conn_count(srv) > 0; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    if (lg_grpc_server_get_conn_count(srv) > 0) {
        fprintf(stderr, "fuzz_chat_service: connection did not end after the client left\n");
        abort();
    }
    nghttp2_session_del(s);
    free(body);
    lg_grpc_server_free(srv);
    lg_usage_free(usage);
    event_base_loop(base, EVLOOP_NONBLOCK); /* usage answers handed over by lg_usage_free */
    lg_chat_service_free(svc);
    lg_record_sink_close(&sink);
    lg_chat_config_free(cfg);
    event_base_free(base);
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
static void fuzz_seeds(lg_fuzz_emit_fn emit, void *ud)
{
    /* The committed corpus (tests/fuzz/corpus/chat_service, a copy of chat_request's seeds
     * with and without x-user-id) is the real seed set; these keep a bare run useful: a demo StreamChat that completes, a GetUsage with
     * since_unix = INT64_MAX (the overflow fixed in usage_submit) and a ListLogs that reaches
     * the (unreachable) ClickHouse. */
    static const uint8_t chat[] = {0x80, 0x0a, 0x05, 'a', 'l', 'i', 'c', 'e', 0x2a,
                                   0x04, 'd',  'e',  'm', 'o', 0x32, 0x0b, 0x0a, 0x04,
                                   'u',  's',  'e',  'r', 0x12, 0x03, 'h', 'i', '!'};
    static const uint8_t usage[] = {0x84, 0x0a, 0x05, 'a', 'l', 'i', 'c', 'e', 0x10, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
    static const uint8_t logs[] = {0x83, 0x0a, 0x05, 'a', 'l', 'i', 'c', 'e', 0x10, 0x05};
    emit(chat, sizeof(chat), ud);
    emit(usage, sizeof(usage), ud);
    emit(logs, sizeof(logs), ud);
}
#endif
