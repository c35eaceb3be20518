/* SPDX-License-Identifier: Apache-2.0 */
/*
 * chat_ttft: time to first token, straight to the OpenAI-compatible fake upstream versus
 * through llmgate-chat, measured by the same C process so that client costs match:
 *
 *   direct:  HTTP/1.1 keep-alive socket to the fake, POST /v1/chat/completions, until the
 *            first `"content":"tok` byte arrives (blocking I/O: this is a benchmark client);
 *   gateway: lg_grpc_client (h2c, one connection) StreamChat until the first ContentDelta.
 *
 * Requests alternate (direct, gateway, gateway, direct, ...) so drift hits both alike. Prints
 * one line per path with p50/p90/p99 in microseconds and exits 0; asserts nothing on time.
 *   chat_ttft --gateway HOST:PORT --fake HOST:PORT --model NAME --n N
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "llmgate/chat/v1/chat.pb-c.h"

#include "lg_cfg.h"
#include "lg_err.h"
#include "lg_grpc_client.h"
#include "lg_loop.h"
#include "lg_mem.h"

#define TTFT_MAX_N 100000
#define TTFT_BUF_BYTES 65536
#define TTFT_HOST_BYTES 64

static int64_t ttft_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int ttft_connect(const char *hostport)
{
    char host[TTFT_HOST_BYTES];
    uint16_t port;
    if (lg_cfg_split_hostport(hostport, host, sizeof(host), &port) != LG_OK) {
        return -1;
    }
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* One direct request on the keep-alive socket |fd|; returns microseconds to the first token
 * or -1. Reads the whole chunked response so the connection can be reused. */
static int64_t ttft_direct(int fd, const char *req, size_t req_len, char *buf)
{
    int64_t t0 = ttft_now_us();
    if (send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
        return -1;
    }
    size_t have = 0;
    int64_t first = -1;
    for (;;) {
        ssize_t n = recv(fd, buf + have, TTFT_BUF_BYTES - 1 - have, 0);
        if (n <= 0) {
            return -1;
        }
        have += (size_t)n;
        buf[have] = '\0';
        if (first < 0 && strstr(buf, "\"content\":\"tok") != NULL) {
            first = ttft_now_us() - t0;
        }
        if (have >= 5 && memcmp(buf + have - 5, "0\r\n\r\n", 5) == 0) {
            return first;
        }
        if (have > TTFT_BUF_BYTES / 2) { /* keep only a tail: enough for both markers */
            memmove(buf, buf + have - 64, 64);
            have = 64;
        }
    }
}

struct ttft_gw {
    struct event_base *base;
    int64_t t0;
    int64_t first; /* -1 until the first ContentDelta */
    int status;
};

static void ttft_on_message(lg_grpc_client_call *call, const uint8_t *msg, size_t len,
                            void *user_data)
{
    (void)call;
    struct ttft_gw *g = user_data;
    if (g->first >= 0) {
        return;
    }
    Llmgate__Chat__V1__ChatEvent *ev = llmgate__chat__v1__chat_event__unpack(NULL, len, msg);
    if (ev != NULL && ev->event_case == LLMGATE__CHAT__V1__CHAT_EVENT__EVENT_CONTENT) {
        g->first = ttft_now_us() - g->t0;
    }
    llmgate__chat__v1__chat_event__free_unpacked(ev, NULL);
}

static void ttft_on_close(lg_grpc_client_call *call, const struct lg_grpc_client_status *st,
                          void *user_data)
{
    (void)call;
    struct ttft_gw *g = user_data;
    g->status = st->code;
    event_base_loopbreak(g->base);
}

static int64_t ttft_gateway(lg_grpc_client *c, struct event_base *base, const uint8_t *req,
                            size_t len)
{
    struct ttft_gw g = {base, ttft_now_us(), -1, -1};
    struct lg_grpc_client_call_cbs cbs;
    memset(&cbs, 0, sizeof(cbs));
    cbs.on_message = ttft_on_message;
    cbs.on_close = ttft_on_close;
    struct lg_grpc_client_call_opts o;
    memset(&o, 0, sizeof(o));
    o.kind = LG_GRPC_CLIENT_SERVER_STREAMING;
    o.timeout_ms = 30000;
    if (lg_grpc_client_start(c, "/llmgate.chat.v1.ChatService/StreamChat", req, len, &o, &cbs,
                             &g, NULL) != LG_OK) {
        return -1;
    }
    event_base_dispatch(base);
    return g.status == 0 ? g.first : -1;
}

static int ttft_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t ttft_pct(int64_t *v, size_t n, double q)
{
    size_t k = (size_t)(q * (double)(n - 1) + 0.5);
    return v[k < n ? k : n - 1];
}

int main(int argc, char **argv)
{
    const char *gateway = NULL;
    const char *fake = NULL;
    const char *model = "fake-long-50";
    int64_t n = 500;
    const struct lg_cfg_opt opts[] = {
        {"gateway", LG_CFG_STRING, &gateway, NULL, 0, 0, "llmgate-chat gRPC HOST:PORT"},
        {"fake", LG_CFG_STRING, &fake, NULL, 0, 0, "fake upstream HOST:PORT"},
        {"model", LG_CFG_STRING, &model, "fake-long-50", 0, 0, "model (same name on both)"},
        {"n", LG_CFG_INT, &n, "500", 2, TTFT_MAX_N, "requests per path"},
    };
    char err[256];
    if (lg_cfg_parse(opts, sizeof(opts) / sizeof(opts[0]), argc, argv, NULL, 0, NULL, err,
                     sizeof(err)) != LG_OK ||
        gateway == NULL || fake == NULL) {
        fprintf(stderr, "usage: chat_ttft --gateway HOST:PORT --fake HOST:PORT [--model M] [--n N]\n");
        return 2;
    }
    lg_loop_ignore_sigpipe();
    char body[512];
    int blen = snprintf(body, sizeof(body),
                        "{\"model\":\"%s\",\"stream\":true,\"stream_options\":{\"include_usage\":"
                        "true},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                        model);
    char req[1024];
    int rlen = snprintf(req, sizeof(req),
                        "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                        "application/json\r\nContent-Length: %d\r\n\r\n%s",
                        fake, blen, body);
    Llmgate__Chat__V1__ChatMessage m = LLMGATE__CHAT__V1__CHAT_MESSAGE__INIT;
    m.role = (char *)(uintptr_t) "user";
    m.content = (char *)(uintptr_t) "x";
    Llmgate__Chat__V1__ChatMessage *mp = &m;
    Llmgate__Chat__V1__ChatRequest cr = LLMGATE__CHAT__V1__CHAT_REQUEST__INIT;
    cr.user_id = (char *)(uintptr_t) "ttft";
    cr.model = (char *)(uintptr_t)model;
    cr.n_messages = 1;
    cr.messages = &mp;
    uint8_t pbuf[256];
    size_t plen = llmgate__chat__v1__chat_request__pack(&cr, pbuf);

    struct event_base *base = lg_loop_base_new();
    lg_grpc_client *c = NULL;
    int fd = ttft_connect(fake);
    int64_t *direct = lg_calloc((size_t)n, sizeof(*direct));
    int64_t *gw = lg_calloc((size_t)n, sizeof(*gw));
    char *buf = lg_malloc(TTFT_BUF_BYTES);
    if (base == NULL || fd < 0 || direct == NULL || gw == NULL || buf == NULL ||
        lg_grpc_client_new(&c, base, gateway, NULL) != LG_OK) {
        fprintf(stderr, "chat_ttft: setup failed\n");
        return 1;
    }
    /* Warm both paths (connections, caches). */
    (void)ttft_direct(fd, req, (size_t)rlen, buf);
    (void)ttft_gateway(c, base, pbuf, plen);
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        bool direct_first = i % 2 == 0;
        int64_t a = direct_first ? ttft_direct(fd, req, (size_t)rlen, buf) : -2;
        int64_t b = ttft_gateway(c, base, pbuf, plen);
        if (!direct_first) {
            a = ttft_direct(fd, req, (size_t)rlen, buf);
        }
        if (a < 0 || b < 0) {
            fprintf(stderr, "chat_ttft: request %lld failed\n", (long long)i);
            rc = 1;
        }
        direct[i] = a;
        gw[i] = b;
    }
    if (rc == 0) {
        qsort(direct, (size_t)n, sizeof(*direct), ttft_cmp);
        qsort(gw, (size_t)n, sizeof(*gw), ttft_cmp);
        size_t k = (size_t)n;
        printf("direct_us p50 %lld p90 %lld p99 %lld\n", (long long)ttft_pct(direct, k, 0.5),
               (long long)ttft_pct(direct, k, 0.9), (long long)ttft_pct(direct, k, 0.99));
        printf("gateway_us p50 %lld p90 %lld p99 %lld\n", (long long)ttft_pct(gw, k, 0.5),
               (long long)ttft_pct(gw, k, 0.9), (long long)ttft_pct(gw, k, 0.99));
    }
    lg_grpc_client_free(c);
    event_base_free(base);
    close(fd);
    lg_free(direct);
    lg_free(gw);
    lg_free(buf);
    return rc;
}
