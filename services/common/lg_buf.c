/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_buf.h"

#include <stdio.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h> /* AVX2 intrinsics, used under a target attribute */
#endif

#include "lg_err.h"
#include "lg_mem.h"

/* Smallest allocation: avoids a realloc per byte for tiny buffers. */
#define BUF_MIN_ALLOC_BYTES 64u
/* Longest input lg_buf_append_json_escaped reserves 6x for without measuring it first. */
#define BUF_JSON_RESERVE_WORST_MAX_BYTES 16384u

struct lg_slice lg_slice_from_cstr(const char *s)
{
    struct lg_slice r = {(const uint8_t *)s, s ? strlen(s) : 0};
    return r;
}

int lg_slice_eq_cstr(struct lg_slice a, const char *s)
{
    size_t n = strlen(s);
    return a.len == n && (n == 0 || memcmp(a.ptr, s, n) == 0);
}

void lg_buf_init(struct lg_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void lg_buf_deinit(struct lg_buf *b)
{
    lg_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void lg_buf_reset(struct lg_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = 0;
    }
}

void lg_buf_trim(struct lg_buf *b, size_t keep)
{
    if (b->cap > keep) {
        size_t max = b->max;
        lg_buf_deinit(b);
        lg_buf_init(b, max);
    }
}

static int buf_grow(struct lg_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra) {
        return LG_ERR_TOO_LARGE;
    }
    size_t need = b->len + extra;
    if (need <= b->cap && b->data) {
        return LG_OK;
    }
    size_t cap = b->cap ? b->cap : BUF_MIN_ALLOC_BYTES;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    if (cap > b->max) {
        cap = b->max;
    }
    uint8_t *p = lg_realloc(b->data, cap + 1);
    if (!p) {
        return LG_ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return LG_OK;
}

uint8_t *lg_buf_reserve(struct lg_buf *b, size_t len)
{
    if (buf_grow(b, len) != LG_OK) {
        return NULL;
    }
    return b->data + b->len;
}

void lg_buf_commit(struct lg_buf *b, size_t len)
{
    b->len += len;
    b->data[b->len] = 0;
}

int lg_buf_append(struct lg_buf *b, const void *p, size_t len)
{
    int rv = buf_grow(b, len);
    if (rv != LG_OK) {
        return rv;
    }
    if (len) {
        memcpy(b->data + b->len, p, len);
    }
    b->len += len;
    b->data[b->len] = 0;
    return LG_OK;
}

int lg_buf_append_str(struct lg_buf *b, const char *s)
{
    return lg_buf_append(b, s, strlen(s));
}

int lg_buf_append_byte(struct lg_buf *b, uint8_t c)
{
    return lg_buf_append(b, &c, 1);
}

int lg_buf_vappendf(struct lg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return LG_ERR_INVALID;
    }
    int rv = buf_grow(b, (size_t)n);
    if (rv != LG_OK) {
        return rv;
    }
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return LG_OK;
}

int lg_buf_appendf(struct lg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rv = lg_buf_vappendf(b, fmt, ap);
    va_end(ap);
    return rv;
}

void lg_buf_consume(struct lg_buf *b, size_t len)
{
    if (len >= b->len) {
        lg_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + len, b->len - len);
    b->len -= len;
    b->data[b->len] = 0;
}

int lg_buf_take(struct lg_buf *b, uint8_t **out, size_t *len_out)
{
    if (!b->data) {
        int rv = buf_grow(b, 0);
        if (rv != LG_OK) {
            return rv;
        }
        b->data[0] = 0;
    }
    *out = b->data;
    *len_out = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return LG_OK;
}

struct lg_slice lg_buf_slice(const struct lg_buf *b)
{
    struct lg_slice s = {b->data, b->len};
    return s;
}

/* What each byte becomes inside a JSON string: 0 = itself, 'u' = \u00XX, else a backslash
 * and this letter. Control bytes (< 0x20) and 0x7f are escaped, as are '"' and '\\'; bytes
 * >= 0x80 pass (callers give UTF-8). */
static const uint8_t json_esc[256] = {
    ['\0'] = 'u', [0x01] = 'u', [0x02] = 'u', [0x03] = 'u', [0x04] = 'u', [0x05] = 'u',
    [0x06] = 'u', [0x07] = 'u', [0x08] = 'u', ['\t'] = 't', ['\n'] = 'n', [0x0b] = 'u',
    [0x0c] = 'u', ['\r'] = 'r', [0x0e] = 'u', [0x0f] = 'u', [0x10] = 'u', [0x11] = 'u',
    [0x12] = 'u', [0x13] = 'u', [0x14] = 'u', [0x15] = 'u', [0x16] = 'u', [0x17] = 'u',
    [0x18] = 'u', [0x19] = 'u', [0x1a] = 'u', [0x1b] = 'u', [0x1c] = 'u', [0x1d] = 'u',
    [0x1e] = 'u', [0x1f] = 'u', ['"'] = '"',  ['\\'] = '\\', [0x7f] = 'u',
};

/* Writes the escape of |c| (a byte with json_esc[c] != 0) and returns the end. */
static uint8_t *json_escape_byte(uint8_t *dst, uint8_t c)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t e = json_esc[c];
    dst[0] = '\\';
    if (e != 'u') {
        dst[1] = e;
        return dst + 2;
    }
    dst[1] = 'u';
    dst[2] = '0';
    dst[3] = '0';
    dst[4] = (uint8_t)hex[c >> 4];
    dst[5] = (uint8_t)hex[c & 0xf];
    return dst + 6;
}

size_t lg_buf_json_escaped_len(const uint8_t *s, size_t len)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        uint8_t e = json_esc[s[i]];
        n += e == 0 ? 0 : e == 'u' ? 5 : 1;
    }
    return n;
}

/* Nonzero when a byte of |w| needs a JSON escape: < 0x20, '"', '\\' or 0x7f ("Bit Twiddling
 * Hacks", hasless / haszero: exact as a yes/no for the whole word; bytes >= 0x80 never
 * match). Lets the loop below skip 8 plain bytes at a time: the byte loop was ~20% of the
 * shipper thread's CPU (JSON rows of ~2 KB, analytics/README.md). */
static uint64_t json_word_special(uint64_t w)
{
    const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\'), del = w ^ (ones * 0x7f);
    return ((w - ones * 0x20) & ~w & highs) | ((q - ones) & ~q & highs) |
           ((bs - ones) & ~bs & highs) | ((del - ones) & ~del & highs);
}

/* The wide scans below store a whole block of input to |dst| before looking at where its
 * first special byte is: safe because at least a block of input is left, and each input
 * byte becomes at least one output byte, so those bytes lie inside what the call writes. */
#if defined(__x86_64__) && defined(__GNUC__)
/* 32 bytes per step where the CPU has AVX2 (chosen at run time: the build targets the
 * x86-64 baseline). Same scan as the SSE2 loop below; returns how far it got in |*at|.
 * Perf at 30k rows/s: the escape was the shipper thread's largest own function. */
__attribute__((target("avx2"))) static uint8_t *escape_avx2(uint8_t *dst, const uint8_t *s,
                                                             size_t len, size_t *at)
{
    size_t i = 0;
    const __m256i ctl = _mm256_set1_epi8(0x1f), quote = _mm256_set1_epi8('"');
    const __m256i bslash = _mm256_set1_epi8('\\'), del = _mm256_set1_epi8(0x7f);
    while (i + 32 <= len) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
        __m256i m = _mm256_or_si256(
            _mm256_cmpeq_epi8(_mm256_min_epu8(v, ctl), v),
            _mm256_or_si256(_mm256_cmpeq_epi8(v, quote),
                            _mm256_or_si256(_mm256_cmpeq_epi8(v, bslash),
                                            _mm256_cmpeq_epi8(v, del))));
        unsigned mask = (unsigned)_mm256_movemask_epi8(m);
        _mm256_storeu_si256((__m256i *)(void *)dst, v);
        if (mask == 0) {
            dst += 32;
            i += 32;
            continue;
        }
        unsigned skip = (unsigned)__builtin_ctz(mask);
        dst = json_escape_byte(dst + skip, s[i + skip]);
        i += skip + 1;
    }
    *at = i;
    return dst;
}
#endif

uint8_t *lg_buf_json_escape_to(uint8_t *dst, const uint8_t *s, size_t len)
{
    size_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (len >= 64 && __builtin_cpu_supports("avx2")) {
        dst = escape_avx2(dst, s, len, &i);
    }
#endif
#if defined(__SSE2__)
    /* x86-64 baseline: 16 bytes per step (perf of the shipper: the escape scan was the
     * largest part of encoding a ~2 KB billing row). */
    const __m128i ctl = _mm_set1_epi8(0x1f), quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\'), del = _mm_set1_epi8(0x7f);
    while (i + 16 <= len) { /* after the AVX2 loop: its last 16..31 bytes */
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v),
                                 _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                              _mm_or_si128(_mm_cmpeq_epi8(v, bslash),
                                                           _mm_cmpeq_epi8(v, del))));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        _mm_storeu_si128((__m128i *)(void *)dst, v);
        if (mask == 0) {
            dst += 16;
            i += 16;
            continue;
        }
        unsigned skip = (unsigned)__builtin_ctz(mask);
        dst = json_escape_byte(dst + skip, s[i + skip]);
        i += skip + 1;
    }
#endif
    /* Portable: 8 bytes per step (json_word_special). */
    while (i + sizeof(uint64_t) <= len) {
        uint64_t w;
        memcpy(&w, s + i, sizeof(w));
        memcpy(dst, &w, sizeof(w));
        if (!json_word_special(w)) {
            dst += sizeof(w);
            i += sizeof(w);
            continue;
        }
        while (json_esc[s[i]] == 0) {
            dst++;
            i++;
        }
        dst = json_escape_byte(dst, s[i]);
        i++;
    }
    for (; i < len; i++) {
        uint8_t c = s[i];
        if (json_esc[c] == 0) {
            *dst++ = c;
        } else {
            dst = json_escape_byte(dst, c);
        }
    }
    return dst;
}

int lg_buf_append_json_escaped(struct lg_buf *b, const uint8_t *s, size_t len)
{
    /* Short input: reserve the worst case when it fits under the cap (no measuring pass).
     * Else measure, so a big input does not grow the buffer to 6x its size, and the call
     * fails with LG_ERR_TOO_LARGE exactly when the escaped text does not fit, as before. */
    size_t need = len * LG_BUF_JSON_ESCAPE_MAX_GROWTH;
    if (len > BUF_JSON_RESERVE_WORST_MAX_BYTES || b->len > b->max || need > b->max - b->len) {
        need = lg_buf_json_escaped_len(s, len);
    }
    int rv = buf_grow(b, need);
    if (rv != LG_OK) {
        return rv;
    }
    uint8_t *end = lg_buf_json_escape_to(b->data + b->len, s, len);
    b->len = (size_t)(end - b->data);
    b->data[b->len] = 0;
    return LG_OK;
}
