/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_grpc_server: fuzz target for lg_grpc_server's connection input, owner grpc-server.
 *
 * Each input is the byte stream a client sends on one connection. The target adopts one end
 * of a socketpair into a server (lg_grpc_server_adopt_fd) with a unary and a bidi echo
 * method, writes the input to the other end, half-closes it and runs the loop until the
 * server has closed the connection. "No crash, no leak, no sanitizer report, and the
 * connection always ends" is the property. Built two ways (tests/fuzz/grpc_server.cmake):
 * with clang and -fsanitize=fuzzer as a libFuzzer target (LG_FUZZ_LIBFUZZER), and in every
 * build as a deterministic smoke driver registered with ctest: valid seed streams plus a
 * fixed-seed stream of mutations of them, under ASan/UBSan.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "lg_err.h"
#include "lg_grpc_server.h"
#include "lg_log.h"

/* Loop turns per input before the connection must have ended. */
#define FUZZ_MAX_TURNS        2000
#define FUZZ_SMOKE_ITERATIONS 3000
#define FUZZ_SMOKE_MAX_LEN    4096
#define FUZZ_SMOKE_SEED       0x2545F4914F6CDD1Du
#define FUZZ_READ_BYTES       65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_echo(lg_grpc_call *call, const uint8_t *msg, size_t len, void *ud)
{
    (void)ud;
    lg_grpc_call_send(call, msg, len);
    if (lg_grpc_call_get_method(call)[4] == 'U') {
        lg_grpc_call_add_trailing_metadata(call, "x-t-bin", msg, len < 16 ? len : 16);
        lg_grpc_call_finish(call, (int)(len % 17), "fuzz \xe2\x98\xba");
    }
}

static void fuzz_half_close(lg_grpc_call *call, void *ud)
{
    (void)ud;
    lg_grpc_call_finish(call, LG_GRPC_OK, NULL);
}

static void fuzz_close(lg_grpc_call *call, enum lg_grpc_close_reason reason, void *ud)
{
    (void)call;
    (void)reason;
    (void)ud;
}

/* Reads and discards what the server wrote, so it is never blocked on a full socket. */
static void fuzz_drain(int fd)
{
    uint8_t buf[FUZZ_READ_BYTES];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct lg_grpc_method_cbs cbs = {NULL, fuzz_echo, fuzz_half_close, NULL,
                                                  fuzz_close};
    lg_log_init(LG_LOG_OFF, -1);
    struct event_base *base = event_base_new();
    lg_grpc_server *srv = NULL;
    struct lg_grpc_server_opts o;
    lg_grpc_server_opts_default(&o);
    o.keepalive_time_ms = 0;
    o.max_recv_msg_bytes = 65536;
    int sv[2];
    if (!base || lg_grpc_server_new(&srv, base, &o) != LG_OK ||
        lg_grpc_server_register(srv, "/f.S/U", LG_GRPC_UNARY, &cbs, NULL) != LG_OK ||
        lg_grpc_server_register(srv, "/f.S/B", LG_GRPC_BIDI_STREAMING, &cbs, NULL) != LG_OK ||
        socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        abort();
    }
    if (lg_grpc_server_adopt_fd(srv, sv[0], "fuzz") != LG_OK) {
        abort();
    }
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    /* Feed in two parts with loop turns between, so reads split at a data-chosen point. */
    size_t split = size ? data[0] % (size + 1) : 0;
    size_t off = 0;
    int turns = 0;
    while (off < size && turns < FUZZ_MAX_TURNS) {
        size_t end = off < split ? split : size;
        ssize_t n = send(sv[1], data + off, end - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        fuzz_drain(sv[1]);
        turns++;
    }
    shutdown(sv[1], SHUT_WR);
    while (lg_grpc_server_get_conn_count(srv) > 0 && turns < FUZZ_MAX_TURNS) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        fuzz_drain(sv[1]);
        turns++;
    }
    if (lg_grpc_server_get_conn_count(srv) > 0) {
        /* Calls may legitimately stay open (a bidi call the client half-closed is finished,
         * but a unary call without END_STREAM waits): closing our end must end them. */
        close(sv[1]);
        sv[1] = -1;
        for (int i = 0; i < FUZZ_MAX_TURNS && lg_grpc_server_get_conn_count(srv) > 0; i++) {
            event_base_loop(base, EVLOOP_NONBLOCK);
        }
        if (lg_grpc_server_get_conn_count(srv) > 0) {
            fprintf(stderr, "fuzz_grpc_server: connection did not end after the peer closed\n");
            abort();
        }
    }
    if (sv[1] >= 0) {
        close(sv[1]);
    }
    lg_grpc_server_free(srv);
    event_base_free(base);
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER

/* ---- deterministic smoke driver -------------------------------------------------------- */

struct fuzz_seed {
    uint8_t buf[FUZZ_SMOKE_MAX_LEN];
    size_t len;
};

static void seed_add(struct fuzz_seed *s, const void *p, size_t n)
{
    if (n > 0 && s->len + n <= sizeof(s->buf)) {
        memcpy(s->buf + s->len, p, n);
        s->len += n;
    }
}

static void seed_frame(struct fuzz_seed *s, uint8_t type, uint8_t flags, uint32_t sid,
                       const uint8_t *payload, size_t n)
{
    uint8_t hd[9] = {
        (uint8_t)(n >> 16),   (uint8_t)(n >> 8),    (uint8_t)n,          type,        flags,
        (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};
    seed_add(s, hd, sizeof(hd));
    seed_add(s, payload, n);
}

/* HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2), no Huffman. */
static size_t hpack_lit(uint8_t *out, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value), at = 0;
    out[at++] = 0x00;
    out[at++] = (uint8_t)nl;
    memcpy(out + at, name, nl);
    at += nl;
    out[at++] = (uint8_t)vl;
    memcpy(out + at, value, vl);
    return at + vl;
}

/* Preface, SETTINGS, then one request per stream on |path| with |msg| and END_STREAM. */
static void seed_request(struct fuzz_seed *s, const char *path, const char *extra_name,
                         const char *extra_value, uint8_t flag, uint32_t nstreams)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    seed_add(s, preface, sizeof(preface) - 1);
    seed_frame(s, 0x4, 0, 0, NULL, 0);
    for (uint32_t i = 0; i < nstreams; i++) {
        uint8_t hb[512];
        size_t n = 0;
        n += hpack_lit(hb + n, ":method", "POST");
        n += hpack_lit(hb + n, ":scheme", "http");
        n += hpack_lit(hb + n, ":path", path);
        n += hpack_lit(hb + n, ":authority", "f");
        n += hpack_lit(hb + n, "content-type", "application/grpc");
        n += hpack_lit(hb + n, "te", "trailers");
        if (extra_name) {
            n += hpack_lit(hb + n, extra_name, extra_value);
        }
        uint32_t sid = 1 + 2 * i;
        seed_frame(s, 0x1, 0x4, sid, hb, n);
        uint8_t msg[] = {flag, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
        seed_frame(s, 0x0, 0x1, sid, msg, sizeof(msg));
    }
    uint8_t ping[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    seed_frame(s, 0x6, 0, 0, ping, sizeof(ping));
}

static uint64_t xorshift(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *st = x;
    return x;
}

/* Writes the seeds to |dir| (one file each), as a starting corpus for the libFuzzer target. */
static int write_seeds(const char *dir, const struct fuzz_seed *seeds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/seed%zu", dir, i);
        FILE *fp = fopen(path, "wb");
        if (!fp || fwrite(seeds[i].buf, 1, seeds[i].len, fp) != seeds[i].len) {
            fprintf(stderr, "cannot write %s\n", path);
            return 1;
        }
        fclose(fp);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct fuzz_seed seeds[6];
    seed_request(&seeds[0], "/f.S/U", NULL, NULL, 0, 1);
    seed_request(&seeds[1], "/f.S/B", "grpc-timeout", "1m", 0, 3);
    seed_request(&seeds[2], "/f.S/U", "grpc-encoding", "gzip", 1, 2);
    seed_request(&seeds[3], "/f.S/Nope", "x-a-bin", "AAEC", 0, 1);
    seed_add(&seeds[4], "GET / HTTP/1.1\r\nHost: f\r\n\r\n", 27);
    seed_request(&seeds[5], "/f.S/B", "content-type", "text/plain", 0, 4);
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
        return write_seeds(argv[2], seeds, sizeof(seeds) / sizeof(seeds[0]));
    }
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        (void)LLVMFuzzerTestOneInput(seeds[i].buf, seeds[i].len);
    }
    uint64_t st = FUZZ_SMOKE_SEED;
    static uint8_t buf[FUZZ_SMOKE_MAX_LEN];
    for (int it = 0; it < FUZZ_SMOKE_ITERATIONS; it++) {
        const struct fuzz_seed *s = &seeds[xorshift(&st) % (sizeof(seeds) / sizeof(seeds[0]))];
        size_t len = s->len;
        memcpy(buf, s->buf, len);
        int edits = 1 + (int)(xorshift(&st) % 4);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = xorshift(&st) % len;
            switch (xorshift(&st) % 4) {
            case 0: /* flip a byte */
                buf[at] ^= (uint8_t)(1u << (xorshift(&st) % 8));
                break;
            case 1: /* random byte */
                buf[at] = (uint8_t)xorshift(&st);
                break;
            case 2: /* truncate */
                len = at;
                break;
            default: /* duplicate a tail piece */
                if (len + (len - at) <= sizeof(buf)) {
                    memcpy(buf + len, buf + at, len - at);
                    len += len - at;
                }
                break;
            }
        }
        (void)LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_grpc_server: %d inputs ok\n", FUZZ_SMOKE_ITERATIONS + 6);
    return 0;
}

#endif /* LG_FUZZ_LIBFUZZER */
