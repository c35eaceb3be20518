/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sse_http (owner: fuzz): the SSE adapter's HTTP/1.1 edge (adapters/sse/lg_sse_http.h)
 * as a peer sees it: request line, headers, bodies (Content-Length and chunked), keep-alive
 * and pipelining, routing, API-key (Bearer) and token checks, CORS, Last-Event-ID, JSON
 * bodies of /v1/chat/streams and /v1/chat/completions.
 *
 * The edge has no sans-I/O parser of its own (it is built on evhttp), so each input is the
 * byte stream one client sends on one loopback TCP connection to a real lg_sse_http server
 * running in this process: the input is written, the write side is shut down, and the loop
 * runs until the server has closed the connection (the property: it always does, within a
 * bounded number of loop turns, with no crash, leak or sanitizer report). The chat service
 * address points at a closed port, so requests that need it end in 503 (stream and
 * completion paths past the chat call are covered by the integration tests instead).
 *
 * The server, its loop and its keys are made once per process (a libFuzzer harness runs
 * millions of inputs; making a listener per input would exhaust ephemeral ports) and kept
 * in one fixture struct reached through a function-scope static: the only global state,
 * and it is test code.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "lg_err.h"
#include "lg_log.h"
#include "lg_metrics.h"
#include "lg_sse_auth.h"
#include "lg_sse_chat.h"
#include "lg_sse_http.h"

/* Loop turns per input before the connection must have ended. */
#define FUZZ_MAX_TURNS     5000
/* Non-blocking loop turns between the last byte written and the half-close: evhttp cancels
 * a request whose client half-closes while its handler waits (here: for the chat call to be
 * refused), so the answers that come within a few turns get the chance to be written. */
#define FUZZ_SETTLE_TURNS  64
/* Blocking loop turns after the half-close before the client hangs up. */
#define FUZZ_HALF_CLOSED_TURNS 3
/* Heartbeat period: short, so a stream to a gone client is found (by a failed write) soon. */
#define FUZZ_HEARTBEAT_MS  5
#define FUZZ_READ_BYTES    65536
#define FUZZ_CHAT_ADDR     "127.0.0.1:1"
#define FUZZ_KEY           "fuzz-key-0123456789"
#define FUZZ_IDLE_MS       200
#define FUZZ_MAX_BODY      (64 * 1024)
#define FUZZ_MAX_HEADER    (8 * 1024)

#define LG_FUZZ_SMOKE_ITERATIONS 1500
#include "lg_fuzz_smoke.h"

struct fuzz_fixture {
    struct event_base *base;
    lg_metrics *metrics;
    lg_sse_chat *chat;
    lg_sse_http *http;
    struct sockaddr_in addr;
};

struct fuzz_conn {
    int fd;
    bool closed;
    struct event *ev; /* our read event; removed at EOF (a level-triggered EOF would keep a
                         non-blocking loop turn busy forever) */
};

static struct fuzz_fixture *fixture(void)
{
    static struct fuzz_fixture f;
    static bool ready;
    if (ready) {
        return &f;
    }
    lg_log_init(LG_LOG_OFF, -1);
    /* As llmgate-sse does at startup: a write to a reset connection is an error, not a kill. */
    signal(SIGPIPE, SIG_IGN);
    static const uint8_t secret[LG_SSE_AUTH_SECRET_BYTES] = {7};
    static const char page[] = "<!doctype html><title>fuzz</title>";
    static const struct lg_sse_http_file files[] = {
        {"/", "text/html; charset=utf-8", (const uint8_t *)page, sizeof(page) - 1},
    };
    f.base = event_base_new();
    if (f.base == NULL || lg_metrics_new(&f.metrics) != LG_OK ||
        lg_sse_chat_new(&f.chat, f.base, FUZZ_CHAT_ADDR) != LG_OK) {
        abort();
    }
    struct lg_sse_http_opts o = {
        .listen = "127.0.0.1:0",
        .listen_fd = -1,
        .heartbeat_ms = FUZZ_HEARTBEAT_MS,
        .max_body_bytes = FUZZ_MAX_BODY,
        .max_header_bytes = FUZZ_MAX_HEADER,
        .idle_timeout_ms = FUZZ_IDLE_MS,
        .header_timeout_ms = FUZZ_IDLE_MS,
        .max_streams_per_user = 4,
        .max_requests_per_conn = 8,
        .outbuf_bytes = 65536,
        .cors_origins = "http://localhost:8080,https://app.example",
        .token_secret = secret,
        .files = files,
        .nfiles = sizeof(files) / sizeof(files[0]),
        .chat = f.chat,
        .metrics = f.metrics,
        .admin = NULL,
    };
    char bound[64];
    if (lg_sse_http_new(&f.http, f.base, &o, bound, sizeof(bound)) != LG_OK) {
        abort();
    }
    char hash[96];
    char keys_text[160];
    lg_sse_keys *keys = NULL;
    if (lg_sse_auth_hash_key(FUZZ_KEY, sizeof(FUZZ_KEY) - 1, hash, sizeof(hash)) != LG_OK) {
        abort();
    }
    int n = snprintf(keys_text, sizeof(keys_text), "%s alice\n", hash);
    if (n < 0 || lg_sse_keys_parse(&keys, keys_text, (size_t)n, NULL) != LG_OK) {
        abort();
    }
    lg_sse_http_set_keys(f.http, keys);
    char *colon = strrchr(bound, ':');
    if (colon == NULL) {
        abort();
    }
    *colon = 0;
    memset(&f.addr, 0, sizeof(f.addr));
    f.addr.sin_family = AF_INET;
    f.addr.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
    if (inet_pton(AF_INET, bound, &f.addr.sin_addr) != 1) {
        abort();
    }
    ready = true;
    return &f;
}

static void on_client_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct fuzz_conn *c = arg;
    uint8_t buf[FUZZ_READ_BYTES];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return;
        }
        c->closed = true; /* EOF or reset: the server ended the connection */
        event_del(c->ev);
        return;
    }
}

/* Writes what the socket takes now; returns bytes written (the rest is sent later). */
static size_t send_some(int fd, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, p + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) {
            break;
        }
        off += (size_t)w;
    }
    return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_fixture *f = fixture();
    struct fuzz_conn c = {socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), false, NULL};
    if (c.fd < 0) {
        abort();
    }
    if (connect(c.fd, (const struct sockaddr *)&f->addr, sizeof(f->addr)) != 0) {
        abort();
    }
    evutil_make_socket_nonblocking(c.fd);
    struct event *ev = event_new(f->base, c.fd, EV_READ | EV_PERSIST, on_client_readable, &c);
    c.ev = ev;
    if (ev == NULL || event_add(ev, NULL) != 0) {
        abort();
    }
    size_t sent = 0;
    int turns = 0, settle = 0;
    while (sent < size || settle++ < FUZZ_SETTLE_TURNS) {
        sent += send_some(c.fd, data + sent, size - sent);
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        if (c.closed || turns++ > FUZZ_MAX_TURNS) {
            break;
        }
    }
    /* Half-close, as a client that has said everything; a server that is streaming to us
     * (SSE, heartbeats) rightly keeps going, so after a few turns we hang up for good. */
    shutdown(c.fd, SHUT_WR);
    for (turns = 0; !c.closed && turns < FUZZ_HALF_CLOSED_TURNS; turns++) {
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    event_free(ev);
    /* Hang up with a reset, so the server's next write to a stream fails at once. */
    struct linger lin = {1, 0};
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
    close(c.fd);
    /* The property: every stream the connection opened is released once the client is gone
     * (found by the next heartbeat write at the latest). */
    for (turns = 0; lg_sse_http_get_stream_count(f->http) > 0; turns++) {
        if (turns == FUZZ_MAX_TURNS) {
            abort();
        }
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
static void fuzz_seed_str(lg_fuzz_emit_fn emit, void *ud, const char *s)
{
    emit((const uint8_t *)s, strlen(s), ud);
}

static void fuzz_seeds(lg_fuzz_emit_fn emit, void *ud)
{
    static const char *const seeds[] = {
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/chat/streams HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " FUZZ_KEY
        "\r\nContent-Type: application/json\r\nContent-Length: 62\r\n\r\n"
        "{\"model\":\"demo\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: bearer " FUZZ_KEY
        "\r\nTransfer-Encoding: chunked\r\n\r\n"
        "20\r\n{\"model\":\"demo\",\"stream\":true,\"\r\n"
        "2e\r\nmessages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\r\n0\r\n\r\n",
        "GET /v1/chat/streams/0123456789abcdef0123456789abcdef/events HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer " FUZZ_KEY "\r\nLast-Event-ID: 0123456789abcdef0123456789abcdef.7"
        "\r\nAccept: text/event-stream\r\n\r\n",
        "GET /v1/chat/streams/0123456789abcdef0123456789abcdef/events?token=616c696365.30313233."
        "99999999999.00ff&lastEventId=0123456789abcdef0123456789abcdef%2E3 HTTP/1.1\r\n"
        "Host: x\r\nOrigin: http://localhost:8080\r\n\r\n",
        "POST /v1/chat/streams/0123456789abcdef0123456789abcdef/cancel HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer wrong\r\nContent-Length: 0\r\n\r\n",
        "POST /v1/chat/streams/0123456789abcdef0123456789abcdef/token HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer " FUZZ_KEY "\r\nContent-Length: 2\r\n\r\n{}",
        "OPTIONS /v1/chat/streams HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n"
        "Access-Control-Request-Method: POST\r\n"
        "Access-Control-Request-Headers: authorization, content-type\r\n\r\n",
        "POST /v1/chat/streams HTTP/1.0\r\nContent-Length: 5\r\nContent-Length: 7\r\n"
        "Transfer-Encoding: chunked\r\n\r\n{\"a\":",
        "GET /v1/chat/streams/../../etc/passwd/events HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        fuzz_seed_str(emit, ud, seeds[i]);
    }
}
#endif
