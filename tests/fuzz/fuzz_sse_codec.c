/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzing of the SSE adapter's sans-I/O codecs with one input: the encoder (model output of
 * any bytes must yield exactly one well-framed event whose JSON decodes back to the input
 * when it is valid UTF-8), and every parser of peer input (Last-Event-ID, query strings,
 * chat request JSON, events tokens, keys files). Built as a libFuzzer target with clang
 * (LG_FUZZ_LIBFUZZER) and, in every build, as a deterministic smoke driver run by ctest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_mem.h"
#include "lg_sse_auth.h"
#include "lg_sse_enc.h"
#include "lg_sse_json.h"
#include "lg_fuzz_utf8.h"

#define FUZZ_SID                 "0123456789abcdef0123456789abcdef"
#define FUZZ_MAX_EVENT           (64 * 1024)
#define FUZZ_SMOKE_ITERATIONS    20000
#define FUZZ_SMOKE_MAX_LEN       400
#define FUZZ_SMOKE_SEED          0x2545f4914f6cdd1dull
#define FUZZ_MAX_STR             1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_content_event(const uint8_t *data, size_t size)
{
    struct lg_buf b;
    lg_buf_init(&b, FUZZ_MAX_EVENT);
    if (lg_sse_enc_content(&b, FUZZ_SID, 7, data, size) != LG_OK) {
        lg_buf_deinit(&b);
        return; /* over the cap: nothing was written */
    }
    const char *s = (const char *)b.data;
    /* Framing: no CR, no NUL, exactly one blank line (at the end), three field lines. */
    if (memchr(s, '\r', b.len) != NULL || strlen(s) != b.len) {
        abort();
    }
    const char *blank = strstr(s, "\n\n");
    if (blank == NULL || (size_t)(blank - s) + 2 != b.len) {
        abort();
    }
    static const char head[] = "id: " FUZZ_SID ".7\nevent: content\ndata: ";
    if (strncmp(s, head, sizeof(head) - 1) != 0 ||
        memchr(s + sizeof(head) - 1, '\n', b.len - (sizeof(head) - 1) - 2) != NULL) {
        abort();
    }
    /* The data line is JSON whose content is the input (when the input is valid UTF-8). */
    json_error_t e;
    const char *js = s + sizeof(head) - 1;
    json_t *j = json_loadb(js, b.len - (sizeof(head) - 1) - 2, JSON_ALLOW_NUL, &e);
    if (j == NULL) {
        abort();
    }
    json_t *c = json_object_get(json_object_get(j, "data"), "content");
    if (!json_is_string(c)) {
        abort();
    }
    if (lg_fuzz_valid_utf8(data, size) &&
        (json_string_length(c) != size || memcmp(json_string_value(c), data, size) != 0)) {
        abort();
    }
    json_decref(j);
    lg_buf_deinit(&b);
}

static void parse_peer_input(const uint8_t *data, size_t size)
{
    char str[FUZZ_MAX_STR + 1];
    char out[FUZZ_MAX_STR + 1];
    size_t n = size < FUZZ_MAX_STR ? size : FUZZ_MAX_STR;
    uint64_t seq;
    memcpy(str, data, n);
    str[n] = 0;
    (void)lg_sse_parse_last_event_id((const char *)data, size, FUZZ_SID, &seq);
    (void)lg_sse_resume_point(NULL, str, FUZZ_SID, &seq);
    (void)lg_sse_query_get(str, "token", out, sizeof(out));

    uint8_t secret[LG_SSE_AUTH_SECRET_BYTES] = {1};
    char user[128];
    (void)lg_sse_token_verify(secret, str, FUZZ_SID, 0, user, sizeof(user));

    lg_sse_keys *k = NULL;
    if (lg_sse_keys_parse(&k, (const char *)data, size, NULL) == LG_OK) {
        const char *u;
        (void)lg_sse_keys_lookup(k, "key", 3, &u);
        lg_sse_keys_free(k);
    }

    lg_arena *a = NULL;
    if (lg_arena_new(&a, 0, 0) == LG_OK) {
        struct lg_sse_chat_req r;
        char why[128];
        (void)lg_sse_json_parse_chat(a, (const char *)data, size, &r, why, sizeof(why));
        lg_arena_free(a);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_content_event(data, size);
    parse_peer_input(data, size);
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
static uint64_t smoke_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int main(void)
{
    static const char *const seeds[] = {
        "Hello\n\nid: x.9\nevent: done\r\n\r\ndata: {}",
        "{\"model\":\"demo\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        FUZZ_SID ".42",
        "token=61.61.1.00&lastEventId=" FUZZ_SID "%2E3",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef alice\n",
        "\xe2\x80\xa8\xf0\x9f\x98\x80\xc3\x28\xed\xa0\x80",
    };
    uint8_t buf[FUZZ_SMOKE_MAX_LEN];
    uint64_t st = FUZZ_SMOKE_SEED;
    lg_sse_json_use_lg_alloc();
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        LLVMFuzzerTestOneInput((const uint8_t *)seeds[i], strlen(seeds[i]));
    }
    for (int it = 0; it < FUZZ_SMOKE_ITERATIONS; it++) {
        size_t len = (size_t)(smoke_next(&st) % FUZZ_SMOKE_MAX_LEN);
        const char *seed = seeds[smoke_next(&st) % (sizeof(seeds) / sizeof(seeds[0]))];
        size_t sl = strlen(seed);
        for (size_t i = 0; i < len; i++) {
            /* Mutations of a seed: mostly its bytes, some random, some structural. */
            uint64_t r = smoke_next(&st);
            buf[i] = (r % 4 == 0) ? (uint8_t)(r >> 8)
                     : (r % 4 == 1) ? (uint8_t)"{}[]\":,\\\n\r.%0a"[(r >> 8) % 15]
                                    : (uint8_t)seed[(i + (r >> 16)) % sl];
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_sse_codec smoke: %d inputs ok\n", FUZZ_SMOKE_ITERATIONS);
    return 0;
}
#endif
