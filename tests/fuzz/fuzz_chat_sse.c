/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzing of the chat service's upstream stream codecs: lg_chat_sse (text/event-stream) feeding
 * lg_chat_openai_parse_chunk, exactly as the openai provider does. The input is split into
 * reads at points taken from its first byte, so split handling is fuzzed too. Built as a
 * libFuzzer target with clang (LG_FUZZ_LIBFUZZER), and in every build as a deterministic
 * smoke driver run by ctest (fuzz.chat_sse_smoke).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lg_buf.h"
#include "lg_chat_openai.h"
#include "lg_chat_sse.h"
#include "lg_err.h"

/* Small caps so the limits are reached by fuzz inputs, not just by huge ones. */
#define FUZZ_MAX_LINE         512
#define FUZZ_MAX_EVENT        1024
#define FUZZ_SMOKE_ITERATIONS 20000
#define FUZZ_SMOKE_MAX_LEN    600
#define FUZZ_SMOKE_SEED       0x9e3779b97f4a7c15ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_on_event(struct lg_slice event, struct lg_slice data, void *user_data)
{
    (void)event;
    size_t *deltas = user_data;
    struct lg_chat_openai_chunk c;
    if (lg_chat_openai_parse_chunk(data, &c) == LG_OK) {
        if (c.content != NULL) {
            (*deltas) += c.content_len;
        }
        lg_chat_openai_chunk_deinit(&c);
    }
    return LG_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_chat_sse *p;
    if (size == 0 || lg_chat_sse_new(&p, FUZZ_MAX_LINE, FUZZ_MAX_EVENT) != LG_OK) {
        return 0;
    }
    size_t step = (size_t)data[0] % 17 + 1; /* read size, from the input itself */
    size_t deltas = 0;
    for (size_t off = 1; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (lg_chat_sse_feed(p, data + off, n, fuzz_on_event, &deltas) != LG_OK) {
            break;
        }
    }
    lg_chat_sse_free(p);
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
static uint64_t fuzz_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int main(void)
{
    static const char seed[] =
        "\x05: ping\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},"
        "\"finish_reason\":null}]}\r\n\r\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
        "\"completion_tokens\":1,\"prompt_tokens_details\":{\"cached_tokens\":1}}}\n\n"
        "event: error\ndata: {\"error\":{\"message\":\"x\"}}\n\ndata: [DONE]\n\n";
    (void)LLVMFuzzerTestOneInput((const uint8_t *)seed, sizeof(seed) - 1);
    uint64_t state = FUZZ_SMOKE_SEED;
    uint8_t buf[FUZZ_SMOKE_MAX_LEN];
    for (int it = 0; it < FUZZ_SMOKE_ITERATIONS; it++) {
        size_t len = (size_t)(fuzz_next(&state) % FUZZ_SMOKE_MAX_LEN);
        memcpy(buf, seed, len < sizeof(seed) - 1 ? len : sizeof(seed) - 1);
        /* Mutate a few bytes of the seed (or fill the rest with noise from printable-ish
         * bytes, CR and LF, which is what reaches the line logic). */
        for (size_t i = sizeof(seed) - 1; i < len; i++) {
            buf[i] = (uint8_t)fuzz_next(&state);
        }
        for (int k = 0; k < 4 && len > 1; k++) {
            size_t at = (size_t)(fuzz_next(&state) % len);
            static const uint8_t alphabet[] = "\r\n:{}\"data [DONE],\\u0";
            buf[at] = alphabet[fuzz_next(&state) % (sizeof(alphabet) - 1)];
        }
        (void)LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz_chat_sse: %d inputs ok\n", FUZZ_SMOKE_ITERATIONS);
    return 0;
}
#endif
