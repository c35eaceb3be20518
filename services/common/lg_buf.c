/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_buf.h"

#include <stdio.h>
#include <string.h>

#include "lg_err.h"
#include "lg_mem.h"

/* Smallest allocation: avoids a realloc per byte for tiny buffers. */
#define BUF_MIN_ALLOC_BYTES 64u

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

int lg_buf_append_json_escaped(struct lg_buf *b, const uint8_t *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the pending run of bytes that need no escaping */
    for (size_t i = 0; i < len; i++) {
        uint64_t w;
        while (i + sizeof(w) <= len && (memcpy(&w, s + i, sizeof(w)), !json_word_special(w))) {
            i += sizeof(w);
        }
        if (i >= len) {
            break;
        }
        uint8_t c = s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                u[0] = '\\';
                u[1] = 'u';
                u[2] = '0';
                u[3] = '0';
                u[4] = hex[c >> 4];
                u[5] = hex[c & 0xf];
                u[6] = 0;
                esc = u;
            }
            break;
        }
        if (esc) {
            int rv = lg_buf_append(b, s + run, i - run);
            if (rv == LG_OK) {
                rv = lg_buf_append_str(b, esc);
            }
            if (rv != LG_OK) {
                return rv;
            }
            run = i + 1;
        }
    }
    return lg_buf_append(b, s + run, len - run);
}
