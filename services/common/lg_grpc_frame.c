/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_grpc_frame.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

#include <zlib.h>

#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

/* zlib windowBits: 15 (32 KiB window, the maximum) + 16 selects the gzip wrapper (RFC 1952)
 * instead of zlib's own (zlib.h, deflateInit2/inflateInit2). gRPC's "gzip" is RFC 1952. */
#define FRAME_ZLIB_GZIP_WINDOW_BITS (15 + 16)
/* zlib memLevel 8 is zlib's default (zlib.h): 256 KiB of deflate state. */
#define FRAME_ZLIB_MEM_LEVEL 8
/* grpc-timeout's longest value: 8 digits (PROTOCOL-HTTP2.md "TimeoutValue"). */
#define FRAME_TIMEOUT_MAX_DIGITS 8
#define FRAME_TIMEOUT_MAX_VALUE  99999999u
/* grpc-status: an int has at most 10 decimal digits. */
#define FRAME_DECIMAL_BASE 10
/* The prefix's length field: 4 bytes, big-endian. */
#define FRAME_LEN_BYTES     (LG_GRPC_FRAME_PREFIX_BYTES - 1)
#define FRAME_BITS_PER_BYTE 8
/* grpc-message may carry 0x20..0x7E as they are (PROTOCOL-HTTP2.md "Status-Message"); other
 * bytes and '%' become "%XX": one '%' and two hex digits of 4 bits each. */
#define FRAME_PRINTABLE_MIN    0x20
#define FRAME_PRINTABLE_MAX    0x7E
#define FRAME_PCT_ESCAPE_BYTES 3
#define FRAME_HEX_BITS         4
#define FRAME_HEX_MASK         ((1u << FRAME_HEX_BITS) - 1)
/* base64 (RFC 4648 section 4): 6 bits per character, groups of 4 characters, at most two
 * '=' of padding. */
#define FRAME_B64_BITS          6
#define FRAME_B64_MASK          ((1u << FRAME_B64_BITS) - 1)
#define FRAME_B64_GROUP_CHARS   4
#define FRAME_B64_MAX_PAD       2
#define FRAME_STATUS_MAX_DIGITS 10

_Static_assert(LG_GRPC_FRAME_TIMEOUT_STR_BYTES >= FRAME_TIMEOUT_MAX_DIGITS + 2,
               "grpc-timeout buffer holds 8 digits, a unit and a NUL");
_Static_assert(LG_GRPC_FRAME_ZLIB_CHUNK_BYTES > 0 && LG_GRPC_FRAME_ZLIB_CHUNK_BYTES <= UINT_MAX,
               "zlib counts in uInt");

static uint8_t frame_ascii_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c - 'A' + 'a') : c;
}

/* ---- encoder ------------------------------------------------------------------------- */

void lg_grpc_frame_write_prefix(uint8_t out[LG_GRPC_FRAME_PREFIX_BYTES], bool compressed,
                                size_t len)
{
    assert(len <= LG_GRPC_FRAME_MAX_PAYLOAD_BYTES);
    out[0] = compressed ? LG_GRPC_FRAME_FLAG_COMPRESSED : 0;
    for (size_t i = 0; i < FRAME_LEN_BYTES; i++) {
        out[1 + i] = (uint8_t)(len >> (FRAME_BITS_PER_BYTE * (FRAME_LEN_BYTES - 1 - i)));
    }
}

static int frame_append_whole(struct lg_buf *out, const uint8_t *payload, size_t len,
                              bool compressed)
{
    if (len > LG_GRPC_FRAME_MAX_PAYLOAD_BYTES) {
        return LG_ERR_INVALID;
    }
    if (len > out->max - out->len || out->max - out->len - len < LG_GRPC_FRAME_PREFIX_BYTES) {
        return LG_ERR_TOO_LARGE;
    }
    /* One reserve for prefix and payload, so a failure leaves |out| as it was. */
    uint8_t *w = lg_buf_reserve(out, LG_GRPC_FRAME_PREFIX_BYTES + len);
    if (!w) {
        return LG_ERR_NOMEM;
    }
    lg_grpc_frame_write_prefix(w, compressed, len);
    if (len) {
        memcpy(w + LG_GRPC_FRAME_PREFIX_BYTES, payload, len);
    }
    lg_buf_commit(out, LG_GRPC_FRAME_PREFIX_BYTES + len);
    return LG_OK;
}

int lg_grpc_frame_encode(struct lg_buf *out, const uint8_t *msg, size_t len, bool gzip)
{
    if (!gzip) {
        return frame_append_whole(out, msg, len, false);
    }
    /* Compress aside first: the prefix needs the compressed length, and |out| must be left
     * unchanged on failure. The extra copy only costs on the compressed path. */
    size_t room = out->max - out->len;
    if (room < LG_GRPC_FRAME_PREFIX_BYTES) {
        return LG_ERR_TOO_LARGE;
    }
    struct lg_buf z;
    lg_buf_init(&z, room - LG_GRPC_FRAME_PREFIX_BYTES);
    int rv = lg_grpc_frame_gzip(msg, len, &z);
    if (rv == LG_OK) {
        rv = frame_append_whole(out, z.data, z.len, true);
    }
    lg_buf_deinit(&z);
    return rv;
}

/* ---- reassembler --------------------------------------------------------------------- */

struct lg_grpc_frame_reader {
    size_t max_message_bytes; /* receive limit, from the declared length */
    uint8_t hdr[LG_GRPC_FRAME_PREFIX_BYTES];
    size_t hdr_len;     /* prefix bytes gathered, 0..5 */
    bool have_hdr;      /* the prefix is complete: now reading |need| payload bytes */
    bool compressed;    /* flag of the current message */
    size_t need;        /* payload length of the current message */
    struct lg_buf part; /* payload gathered across feeds; max = max_message_bytes */
    int err;            /* sticky error; LG_OK while usable */
    bool finished;      /* lg_grpc_frame_reader_finish was called */
    uint64_t count;     /* messages delivered */
};

int lg_grpc_frame_reader_new(lg_grpc_frame_reader **out, size_t max_message_bytes)
{
    lg_grpc_frame_reader *r = lg_calloc(1, sizeof(*r));
    if (!r) {
        return LG_ERR_NOMEM;
    }
    r->max_message_bytes = max_message_bytes;
    lg_buf_init(&r->part, max_message_bytes);
    r->err = LG_OK;
    *out = r;
    return LG_OK;
}

void lg_grpc_frame_reader_free(lg_grpc_frame_reader *r)
{
    if (!r) {
        return;
    }
    lg_buf_deinit(&r->part);
    lg_free(r);
}

/* Parses the gathered prefix. Peer input: errors, never asserts. */
static int reader_take_prefix(lg_grpc_frame_reader *r, const uint8_t *h)
{
    if (h[0] & (uint8_t)~LG_GRPC_FRAME_FLAG_COMPRESSED) {
        return LG_ERR_MALFORMED;
    }
    uint32_t len = 0;
    for (size_t i = 0; i < FRAME_LEN_BYTES; i++) {
        len = len << FRAME_BITS_PER_BYTE | h[1 + i];
    }
    if (len > r->max_message_bytes) {
        return LG_ERR_TOO_LARGE;
    }
    r->compressed = (h[0] & LG_GRPC_FRAME_FLAG_COMPRESSED) != 0;
    r->need = len;
    r->have_hdr = true;
    return LG_OK;
}

static int reader_deliver(lg_grpc_frame_reader *r, const uint8_t *p, size_t len,
                          lg_grpc_frame_msg_cb cb, void *user_data)
{
    struct lg_grpc_frame_msg m = {{p, len}, r->compressed};
    r->have_hdr = false;
    r->hdr_len = 0;
    r->need = 0;
    r->count++;
    int rv = cb(&m, user_data);
    lg_buf_reset(&r->part);
    return rv;
}

/* Consumes prefix bytes from |*p|; returns LG_OK with r->have_hdr set once complete. */
static int reader_feed_prefix(lg_grpc_frame_reader *r, const uint8_t **p, size_t *len)
{
    if (r->hdr_len == 0 && *len >= LG_GRPC_FRAME_PREFIX_BYTES) {
        const uint8_t *h = *p;
        *p += LG_GRPC_FRAME_PREFIX_BYTES;
        *len -= LG_GRPC_FRAME_PREFIX_BYTES;
        return reader_take_prefix(r, h);
    }
    size_t take = LG_GRPC_FRAME_PREFIX_BYTES - r->hdr_len;
    if (take > *len) {
        take = *len;
    }
    memcpy(r->hdr + r->hdr_len, *p, take);
    r->hdr_len += take;
    *p += take;
    *len -= take;
    if (r->hdr_len < LG_GRPC_FRAME_PREFIX_BYTES) {
        return LG_OK;
    }
    return reader_take_prefix(r, r->hdr);
}

static int reader_feed_loop(lg_grpc_frame_reader *r, const uint8_t *p, size_t len,
                            lg_grpc_frame_msg_cb cb, void *user_data)
{
    while (len > 0 || (r->have_hdr && r->need == r->part.len)) {
        if (!r->have_hdr) {
            int rv = reader_feed_prefix(r, &p, &len);
            if (rv != LG_OK) {
                return rv;
            }
            continue;
        }
        int rv;
        if (r->part.len == 0 && len >= r->need) {
            /* The whole payload is in this chunk: hand it out without a copy. */
            size_t n = r->need;
            const uint8_t *m = p;
            p += n;
            len -= n;
            rv = reader_deliver(r, m, n, cb, user_data);
        } else {
            size_t take = r->need - r->part.len;
            if (take > len) {
                take = len;
            }
            rv = lg_buf_append(&r->part, p, take);
            if (rv != LG_OK) {
                return rv;
            }
            p += take;
            len -= take;
            if (r->part.len < r->need) {
                return LG_OK;
            }
            rv = reader_deliver(r, r->part.data, r->part.len, cb, user_data);
        }
        if (rv != LG_OK) {
            /* The caller refused the message: the stream fails; keep no promise to resume. */
            r->err = LG_ERR_STATE;
            return rv;
        }
    }
    return LG_OK;
}

int lg_grpc_frame_reader_feed(lg_grpc_frame_reader *r, const uint8_t *p, size_t len,
                              lg_grpc_frame_msg_cb cb, void *user_data)
{
    if (r->err != LG_OK) {
        return r->err;
    }
    if (r->finished) {
        return LG_ERR_STATE;
    }
    int rv = reader_feed_loop(r, p, len, cb, user_data);
    if (rv != LG_OK && r->err == LG_OK) {
        r->err = rv;
    }
    return rv;
}

int lg_grpc_frame_reader_finish(lg_grpc_frame_reader *r)
{
    if (r->err != LG_OK) {
        return r->err;
    }
    r->finished = true;
    if (r->have_hdr || r->hdr_len > 0) {
        return LG_ERR_MALFORMED;
    }
    return LG_OK;
}

size_t lg_grpc_frame_reader_pending_len(const lg_grpc_frame_reader *r)
{
    return r->have_hdr ? LG_GRPC_FRAME_PREFIX_BYTES + r->part.len : r->hdr_len;
}

uint64_t lg_grpc_frame_reader_count(const lg_grpc_frame_reader *r)
{
    return r->count;
}

/* ---- gzip ---------------------------------------------------------------------------- */

static voidpf frame_zalloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return lg_calloc(items, size);
}

static void frame_zfree(voidpf opaque, voidpf p)
{
    (void)opaque;
    lg_free(p);
}

static void frame_zinit(z_stream *zs)
{
    memset(zs, 0, sizeof(*zs));
    zs->zalloc = frame_zalloc;
    zs->zfree = frame_zfree;
}

/* Feeds zlib its next input piece: avail_in is a uInt, the input a size_t. */
static void frame_zrefill(z_stream *zs, const uint8_t **in, size_t *left)
{
    if (zs->avail_in == 0 && *left > 0) {
        size_t n = *left > UINT_MAX ? UINT_MAX : *left;
        zs->next_in = (Bytef *)(uintptr_t)*in; /* zlib does not write through next_in */
        zs->avail_in = (uInt)n;
        *in += n;
        *left -= n;
    }
}

/* Room for the next zlib output chunk in |out|, bounded by the chunk size and out->max. */
static size_t frame_zroom(const struct lg_buf *out)
{
    size_t room = out->max - out->len;
    return room > LG_GRPC_FRAME_ZLIB_CHUNK_BYTES ? LG_GRPC_FRAME_ZLIB_CHUNK_BYTES : room;
}

int lg_grpc_frame_gzip(const uint8_t *in, size_t len, struct lg_buf *out)
{
    z_stream zs;
    frame_zinit(&zs);
    int zr = deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, FRAME_ZLIB_GZIP_WINDOW_BITS,
                          FRAME_ZLIB_MEM_LEVEL, Z_DEFAULT_STRATEGY);
    if (zr == Z_MEM_ERROR) {
        return LG_ERR_NOMEM;
    }
    if (zr != Z_OK) {
        return LG_ERR_INTERNAL;
    }
    int rv = LG_OK;
    size_t left = len;
    for (;;) {
        frame_zrefill(&zs, &in, &left);
        size_t room = frame_zroom(out);
        if (room == 0) {
            rv = LG_ERR_TOO_LARGE;
            break;
        }
        uint8_t *w = lg_buf_reserve(out, room);
        if (!w) {
            rv = LG_ERR_NOMEM;
            break;
        }
        zs.next_out = w;
        zs.avail_out = (uInt)room;
        zr = deflate(&zs, left == 0 ? Z_FINISH : Z_NO_FLUSH);
        lg_buf_commit(out, room - zs.avail_out);
        if (zr == Z_STREAM_END) {
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rv = LG_ERR_INTERNAL;
            break;
        }
    }
    deflateEnd(&zs);
    return rv;
}

/* Maps a failing inflate() result. */
static int frame_inflate_error(int zr)
{
    return zr == Z_MEM_ERROR ? LG_ERR_NOMEM : LG_ERR_MALFORMED;
}

/* The gzip member ended: bytes after it are not what the peer claimed to send. */
static int frame_gunzip_at_end(const z_stream *zs, size_t left)
{
    return (zs->avail_in > 0 || left > 0) ? LG_ERR_MALFORMED : LG_OK;
}

/* The output cap is reached: does the stream still have output? One-byte probes answer
 * without inflating the rest of a bomb. */
static int frame_gunzip_probe(z_stream *zs, const uint8_t **in, size_t *left)
{
    for (;;) {
        frame_zrefill(zs, in, left);
        uint8_t probe;
        zs->next_out = &probe;
        zs->avail_out = 1;
        int zr = inflate(zs, Z_NO_FLUSH);
        if (zs->avail_out == 0) {
            return LG_ERR_TOO_LARGE;
        }
        if (zr == Z_STREAM_END) {
            return frame_gunzip_at_end(zs, *left);
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            return frame_inflate_error(zr);
        }
        if (zs->avail_in == 0 && *left == 0) {
            return LG_ERR_MALFORMED; /* truncated */
        }
    }
}

int lg_grpc_frame_gunzip(const uint8_t *in, size_t len, struct lg_buf *out)
{
    z_stream zs;
    frame_zinit(&zs);
    int zr = inflateInit2(&zs, FRAME_ZLIB_GZIP_WINDOW_BITS);
    if (zr != Z_OK) {
        return zr == Z_MEM_ERROR ? LG_ERR_NOMEM : LG_ERR_INTERNAL;
    }
    int rv = LG_OK;
    size_t left = len;
    for (;;) {
        frame_zrefill(&zs, &in, &left);
        size_t room = frame_zroom(out);
        if (room == 0) {
            rv = frame_gunzip_probe(&zs, &in, &left);
            break;
        }
        uint8_t *w = lg_buf_reserve(out, room);
        if (!w) {
            rv = LG_ERR_NOMEM;
            break;
        }
        zs.next_out = w;
        zs.avail_out = (uInt)room;
        zr = inflate(&zs, Z_NO_FLUSH);
        lg_buf_commit(out, room - zs.avail_out);
        if (zr == Z_STREAM_END) {
            rv = frame_gunzip_at_end(&zs, left);
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rv = frame_inflate_error(zr);
            break;
        }
        if (zs.avail_out > 0 && zs.avail_in == 0 && left == 0) {
            rv = LG_ERR_MALFORMED; /* room left, input used up, no end: truncated */
            break;
        }
    }
    inflateEnd(&zs);
    return rv;
}

/* ---- percent-encoding ---------------------------------------------------------------- */

static const char frame_hex_upper[] = "0123456789ABCDEF";
static const char frame_hex_lower[] = "0123456789abcdef";

int lg_grpc_frame_percent_encode(const uint8_t *in, size_t len, struct lg_buf *out)
{
    size_t run = 0; /* start of the pending run of bytes that pass unchanged */
    for (size_t i = 0; i < len; i++) {
        uint8_t c = in[i];
        if (c >= FRAME_PRINTABLE_MIN && c <= FRAME_PRINTABLE_MAX && c != '%') {
            continue;
        }
        int rv = lg_buf_append(out, in + run, i - run);
        if (rv != LG_OK) {
            return rv;
        }
        char esc[FRAME_PCT_ESCAPE_BYTES] = {'%', frame_hex_upper[c >> FRAME_HEX_BITS],
                                            frame_hex_upper[c & FRAME_HEX_MASK]};
        rv = lg_buf_append(out, esc, sizeof(esc));
        if (rv != LG_OK) {
            return rv;
        }
        run = i + 1;
    }
    return lg_buf_append(out, in + run, len - run);
}

/* Value of one hex digit (either case), or -1. */
static int frame_hex_value(uint8_t c)
{
    const char *hit =
        c ? memchr(frame_hex_lower, frame_ascii_lower(c), sizeof(frame_hex_lower) - 1) : NULL;
    return hit ? (int)(hit - frame_hex_lower) : -1;
}

int lg_grpc_frame_percent_decode(const uint8_t *in, size_t len, struct lg_buf *out)
{
    size_t run = 0; /* start of the pending run of bytes copied as they are */
    size_t i = 0;
    while (i < len) {
        int hi = -1;
        int lo = -1;
        if (in[i] == '%' && len - i >= FRAME_PCT_ESCAPE_BYTES) {
            hi = frame_hex_value(in[i + 1]);
            lo = frame_hex_value(in[i + 2]);
        }
        if (hi < 0 || lo < 0) {
            i++; /* not an escape: kept as it is */
            continue;
        }
        int rv = lg_buf_append(out, in + run, i - run);
        if (rv != LG_OK) {
            return rv;
        }
        rv = lg_buf_append_byte(out, (uint8_t)(hi << FRAME_HEX_BITS | lo));
        if (rv != LG_OK) {
            return rv;
        }
        i += FRAME_PCT_ESCAPE_BYTES;
        run = i;
    }
    return lg_buf_append(out, in + run, len - run);
}

/* ---- base64 -------------------------------------------------------------------------- */

static const char frame_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int lg_grpc_frame_base64_encode(const uint8_t *in, size_t len, struct lg_buf *out)
{
    /* Unpadded: ceil(len * 8 / 6) characters. */
    if (len > (SIZE_MAX - FRAME_B64_BITS) / FRAME_BITS_PER_BYTE) {
        return LG_ERR_TOO_LARGE;
    }
    size_t n = (len * FRAME_BITS_PER_BYTE + FRAME_B64_BITS - 1) / FRAME_B64_BITS;
    if (n > out->max - out->len) {
        return LG_ERR_TOO_LARGE;
    }
    uint8_t *w = lg_buf_reserve(out, n);
    if (!w) {
        return LG_ERR_NOMEM;
    }
    size_t o = 0;
    uint32_t acc = 0;  /* pending bits, the newest in the low end */
    unsigned bits = 0; /* how many of them, < 6 between bytes */
    for (size_t i = 0; i < len; i++) {
        acc = acc << FRAME_BITS_PER_BYTE | in[i];
        bits += FRAME_BITS_PER_BYTE;
        while (bits >= FRAME_B64_BITS) {
            bits -= FRAME_B64_BITS;
            w[o++] = (uint8_t)frame_b64_alphabet[(acc >> bits) & FRAME_B64_MASK];
        }
    }
    if (bits > 0) {
        w[o++] = (uint8_t)frame_b64_alphabet[(acc << (FRAME_B64_BITS - bits)) & FRAME_B64_MASK];
    }
    assert(o == n);
    lg_buf_commit(out, o);
    return LG_OK;
}

/* Value of one base64 character, or -1. */
static int frame_b64_value(uint8_t c)
{
    const char *hit = c ? memchr(frame_b64_alphabet, c, sizeof(frame_b64_alphabet) - 1) : NULL;
    return hit ? (int)(hit - frame_b64_alphabet) : -1;
}

int lg_grpc_frame_base64_decode(const uint8_t *in, size_t len, struct lg_buf *out)
{
    /* Padding: at most two '=' and only at the end of a 4-aligned value. */
    size_t pad = 0;
    while (pad < len && in[len - 1 - pad] == '=') {
        pad++;
    }
    if (pad > FRAME_B64_MAX_PAD || (pad > 0 && len % FRAME_B64_GROUP_CHARS != 0)) {
        return LG_ERR_MALFORMED;
    }
    size_t n = len - pad;
    /* A last character carrying fewer than 8 bits (4n+1 characters) cannot end a value. */
    if ((n % FRAME_B64_GROUP_CHARS) * FRAME_B64_BITS % FRAME_BITS_PER_BYTE >= FRAME_B64_BITS) {
        return LG_ERR_MALFORMED;
    }
    size_t outn = n / FRAME_BITS_PER_BYTE * FRAME_B64_BITS +
                  n % FRAME_BITS_PER_BYTE * FRAME_B64_BITS / FRAME_BITS_PER_BYTE;
    if (outn > out->max - out->len) {
        return LG_ERR_TOO_LARGE;
    }
    uint8_t *w = lg_buf_reserve(out, outn);
    if (!w) {
        return LG_ERR_NOMEM;
    }
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = frame_b64_value(in[i]);
        if (v < 0) {
            return LG_ERR_MALFORMED; /* nothing committed: |out| unchanged */
        }
        acc = acc << FRAME_B64_BITS | (uint32_t)v;
        bits += FRAME_B64_BITS;
        if (bits >= FRAME_BITS_PER_BYTE) {
            bits -= FRAME_BITS_PER_BYTE;
            w[o++] = (uint8_t)(acc >> bits);
        }
    }
    assert(o == outn);
    lg_buf_commit(out, o);
    return LG_OK;
}

static bool frame_is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

int lg_grpc_frame_bin_decode_list(const uint8_t *in, size_t len, struct lg_buf *scratch,
                                  lg_grpc_frame_bin_cb cb, void *user_data)
{
    size_t start = 0;
    for (;;) {
        size_t end = start;
        while (end < len && in[end] != ',') {
            end++;
        }
        size_t a = start;
        size_t b = end;
        while (a < b && frame_is_ows(in[a])) {
            a++;
        }
        while (b > a && frame_is_ows(in[b - 1])) {
            b--;
        }
        lg_buf_reset(scratch);
        int rv = lg_grpc_frame_base64_decode(in + a, b - a, scratch);
        if (rv != LG_OK) {
            return rv;
        }
        rv = cb(lg_buf_slice(scratch), user_data);
        if (rv != LG_OK) {
            return rv;
        }
        if (end >= len) {
            return LG_OK;
        }
        start = end + 1;
    }
}

/* ---- grpc-timeout -------------------------------------------------------------------- */

struct frame_unit {
    char letter;
    uint64_t ns; /* nanoseconds per unit */
};

/* Finest first: the formatter picks the first unit whose value fits 8 digits. */
static const struct frame_unit frame_units[] = {
    {'n', UINT64_C(1)},
    {'u', UINT64_C(1000)},
    {'m', UINT64_C(1000000)},
    {'S', UINT64_C(1000000000)},
    {'M', UINT64_C(60) * UINT64_C(1000000000)},
    {'H', UINT64_C(3600) * UINT64_C(1000000000)},
};

#define FRAME_UNIT_COUNT (sizeof(frame_units) / sizeof(frame_units[0]))

int lg_grpc_frame_timeout_parse(const uint8_t *in, size_t len, uint64_t *ns_out)
{
    if (len < 2 || len > FRAME_TIMEOUT_MAX_DIGITS + 1) {
        return LG_ERR_INVALID;
    }
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (in[i] < '0' || in[i] > '9') {
            return LG_ERR_INVALID;
        }
        v = v * FRAME_DECIMAL_BASE + (uint64_t)(in[i] - '0');
    }
    for (size_t u = 0; u < FRAME_UNIT_COUNT; u++) {
        if ((uint8_t)frame_units[u].letter == in[len - 1]) {
            uint64_t mult = frame_units[u].ns;
            *ns_out = v > UINT64_MAX / mult ? UINT64_MAX : v * mult;
            return LG_OK;
        }
    }
    return LG_ERR_INVALID;
}

size_t lg_grpc_frame_timeout_format(uint64_t ns, char out[LG_GRPC_FRAME_TIMEOUT_STR_BYTES])
{
    uint64_t v = FRAME_TIMEOUT_MAX_VALUE;
    char unit = 'H';
    for (size_t u = 0; u < FRAME_UNIT_COUNT; u++) {
        uint64_t mult = frame_units[u].ns;
        uint64_t q = ns / mult + (ns % mult != 0); /* round up: never shorten a deadline */
        if (q <= FRAME_TIMEOUT_MAX_VALUE) {
            v = q;
            unit = frame_units[u].letter;
            break;
        }
    }
    char digits[FRAME_TIMEOUT_MAX_DIGITS];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + v % FRAME_DECIMAL_BASE);
        v /= FRAME_DECIMAL_BASE;
    } while (v > 0);
    size_t o = 0;
    while (nd > 0) {
        out[o++] = digits[--nd];
    }
    out[o++] = unit;
    out[o] = '\0';
    return o;
}

/* ---- metadata and headers ------------------------------------------------------------ */

bool lg_grpc_frame_is_valid_key(const uint8_t *key, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        uint8_t c = key[i];
        bool ok =
            (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '.' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool lg_grpc_frame_is_reserved_key(const uint8_t *key, size_t len)
{
    static const char grpc_prefix[] = "grpc-";
    size_t plen = sizeof(grpc_prefix) - 1;
    if (len > 0 && key[0] == ':') {
        return true;
    }
    return len >= plen && memcmp(key, grpc_prefix, plen) == 0;
}

bool lg_grpc_frame_is_bin_key(const uint8_t *key, size_t len)
{
    static const char bin_suffix[] = "-bin";
    size_t slen = sizeof(bin_suffix) - 1;
    return len > slen && memcmp(key + len - slen, bin_suffix, slen) == 0;
}

bool lg_grpc_frame_is_valid_ascii_value(const uint8_t *val, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (val[i] < FRAME_PRINTABLE_MIN || val[i] > FRAME_PRINTABLE_MAX) {
            return false;
        }
    }
    return true;
}

bool lg_grpc_frame_is_grpc_content_type(const uint8_t *val, size_t len)
{
    static const char ct[] = "application/grpc";
    size_t n = sizeof(ct) - 1;
    if (len < n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (frame_ascii_lower(val[i]) != (uint8_t)ct[i]) {
            return false;
        }
    }
    return len == n || val[n] == '+' || val[n] == ';';
}

int lg_grpc_frame_status_parse(const uint8_t *in, size_t len, int *status_out)
{
    if (len == 0 || len > FRAME_STATUS_MAX_DIGITS || (len > 1 && in[0] == '0')) {
        return LG_ERR_MALFORMED;
    }
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] < '0' || in[i] > '9') {
            return LG_ERR_MALFORMED;
        }
        v = v * FRAME_DECIMAL_BASE + (in[i] - '0');
    }
    if (v > INT_MAX) {
        return LG_ERR_MALFORMED;
    }
    *status_out = (int)v;
    return LG_OK;
}
