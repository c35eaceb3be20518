/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_grpc_frame: fuzz target for the sans-I/O gRPC codec (lg_grpc_frame), owner grpc-client.
 *
 * Built two ways (tests/fuzz/grpc_frame.cmake): with clang and -fsanitize=fuzzer as a
 * libFuzzer target (LG_FUZZ_LIBFUZZER), and in every build as a deterministic smoke driver
 * registered with ctest, which runs the target over fixed seeds and a fixed-seed stream of
 * mutations under ASan/UBSan. Besides "no crash", the target checks round-trip invariants:
 * percent and base64 encoding decode back to the input, a formatted grpc-timeout parses
 * back to no less than the value, and the reassembler yields the same messages whatever
 * the split of its input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_grpc_frame.h"

#define FUZZ_MAX_MESSAGE_BYTES 4096
#define FUZZ_MAX_OUT_BYTES     65536
#define FUZZ_SMOKE_ITERATIONS  20000
#define FUZZ_SMOKE_MAX_LEN     512
#define FUZZ_SMOKE_SEED        0x9E3779B97F4A7C15u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_grpc_frame: invariant broken: %s\n", what);
        abort();
    }
}

/* Sums the message lengths and counts them: the same for any split of the input. */
struct fuzz_tally {
    uint64_t count;
    uint64_t bytes;
    uint64_t hash;
};

static int fuzz_msg_cb(const struct lg_grpc_frame_msg *m, void *ud)
{
    struct fuzz_tally *t = ud;
    t->count++;
    t->bytes += m->data.len;
    for (size_t i = 0; i < m->data.len; i++) {
        t->hash = t->hash * 31u + m->data.ptr[i];
    }
    t->hash = t->hash * 31u + (m->compressed ? 1u : 0u);
    return LG_OK;
}

static int fuzz_reassemble(const uint8_t *p, size_t len, size_t split, struct fuzz_tally *t)
{
    lg_grpc_frame_reader *r;
    if (lg_grpc_frame_reader_new(&r, FUZZ_MAX_MESSAGE_BYTES) != LG_OK) {
        return LG_ERR_NOMEM;
    }
    int rv = lg_grpc_frame_reader_feed(r, p, split, fuzz_msg_cb, t);
    if (rv == LG_OK) {
        rv = lg_grpc_frame_reader_feed(r, p + split, len - split, fuzz_msg_cb, t);
    }
    if (rv == LG_OK) {
        rv = lg_grpc_frame_reader_finish(r);
    }
    lg_grpc_frame_reader_free(r);
    return rv;
}

static void fuzz_reader(const uint8_t *data, size_t size)
{
    struct fuzz_tally whole = {0};
    int rv_whole = fuzz_reassemble(data, size, size, &whole);
    size_t split = size ? data[0] % (size + 1) : 0;
    struct fuzz_tally parts = {0};
    int rv_parts = fuzz_reassemble(data, size, split, &parts);
    fuzz_check(rv_whole == rv_parts, "reader result depends on the split");
    fuzz_check(whole.count == parts.count && whole.bytes == parts.bytes && whole.hash == parts.hash,
               "reader messages depend on the split");
}

static void fuzz_roundtrips(const uint8_t *data, size_t size)
{
    struct lg_buf enc;
    struct lg_buf dec;
    lg_buf_init(&enc, FUZZ_MAX_OUT_BYTES);
    lg_buf_init(&dec, FUZZ_MAX_OUT_BYTES);
    if (lg_grpc_frame_percent_encode(data, size, &enc) == LG_OK &&
        lg_grpc_frame_percent_decode(enc.data, enc.len, &dec) == LG_OK) {
        fuzz_check(dec.len == size && (size == 0 || memcmp(dec.data, data, size) == 0),
                   "percent round trip");
        fuzz_check(lg_grpc_frame_is_valid_ascii_value(enc.data, enc.len),
                   "percent output is printable ASCII");
    }
    lg_buf_reset(&enc);
    lg_buf_reset(&dec);
    if (lg_grpc_frame_base64_encode(data, size, &enc) == LG_OK) {
        fuzz_check(lg_grpc_frame_base64_decode(enc.data, enc.len, &dec) == LG_OK,
                   "base64 of our own output decodes");
        fuzz_check(dec.len == size && (size == 0 || memcmp(dec.data, data, size) == 0),
                   "base64 round trip");
    }
    if (size >= sizeof(uint64_t)) {
        uint64_t ns;
        memcpy(&ns, data, sizeof(ns));
        char t[LG_GRPC_FRAME_TIMEOUT_STR_BYTES];
        size_t n = lg_grpc_frame_timeout_format(ns, t);
        uint64_t back = 0;
        fuzz_check(lg_grpc_frame_timeout_parse((const uint8_t *)t, n, &back) == LG_OK,
                   "formatted timeout parses");
        /* Rounded up, and saturated at UINT64_MAX: never shorter than asked. */
        fuzz_check(back >= ns, "formatted timeout is not shorter");
    }
    lg_buf_deinit(&enc);
    lg_buf_deinit(&dec);
}

static int fuzz_bin_cb(struct lg_slice v, void *ud)
{
    (void)v;
    (void)ud;
    return LG_OK;
}

static void fuzz_parsers(const uint8_t *data, size_t size)
{
    struct lg_buf out;
    lg_buf_init(&out, FUZZ_MAX_OUT_BYTES);
    (void)lg_grpc_frame_percent_decode(data, size, &out);
    lg_buf_reset(&out);
    (void)lg_grpc_frame_base64_decode(data, size, &out);
    lg_buf_reset(&out);
    (void)lg_grpc_frame_gunzip(data, size, &out);
    struct lg_buf scratch;
    lg_buf_init(&scratch, FUZZ_MAX_OUT_BYTES);
    (void)lg_grpc_frame_bin_decode_list(data, size, &scratch, fuzz_bin_cb, NULL);
    uint64_t ns;
    (void)lg_grpc_frame_timeout_parse(data, size, &ns);
    int st;
    (void)lg_grpc_frame_status_parse(data, size, &st);
    (void)lg_grpc_frame_is_grpc_content_type(data, size);
    (void)lg_grpc_frame_is_valid_key(data, size);
    lg_buf_deinit(&scratch);
    lg_buf_deinit(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader(data, size);
    fuzz_roundtrips(data, size);
    fuzz_parsers(data, size);
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
/* xorshift64: the smoke driver's deterministic input stream (state is local to main). */
static uint64_t fuzz_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int main(void)
{
    /* Seeds: well-formed streams and values, then random bytes around them. */
    static const uint8_t seed_stream[] = {0, 0, 0, 0, 3, 'a', 'b', 'c', 1, 0, 0, 0,
                                          0, 0, 0, 0, 0, 1,   'x', 2,   0, 0, 0};
    static const char *const seed_text[] = {
        "%09%0Atest%E2%98%BA",
        "q6ur",
        "Zm9v,YmFy==",
        "99999999H",
        "1n",
        "application/grpc+proto",
        "0",
        "2147483648",
        "%",
        "%4",
        "Zg===",
    };
    (void)LLVMFuzzerTestOneInput(seed_stream, sizeof(seed_stream));
    for (size_t i = 0; i < sizeof(seed_text) / sizeof(seed_text[0]); i++) {
        (void)LLVMFuzzerTestOneInput((const uint8_t *)seed_text[i], strlen(seed_text[i]));
    }
    uint64_t state = FUZZ_SMOKE_SEED;
    uint8_t buf[FUZZ_SMOKE_MAX_LEN];
    for (int it = 0; it < FUZZ_SMOKE_ITERATIONS; it++) {
        size_t len = (size_t)(fuzz_next(&state) % FUZZ_SMOKE_MAX_LEN);
        /* Half the inputs start from the seed stream so the reader sees valid prefixes. */
        size_t keep = (it % 2 == 0) ? (len < sizeof(seed_stream) ? len : sizeof(seed_stream)) : 0;
        memcpy(buf, seed_stream, keep);
        for (size_t i = keep; i < len; i++) {
            buf[i] = (uint8_t)fuzz_next(&state);
        }
        (void)LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_grpc_frame: %d inputs ok\n", FUZZ_SMOKE_ITERATIONS);
    return 0;
}
#endif
