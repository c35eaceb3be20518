/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_record.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

/* The string fields, in declaration order (ascending offsets: record_of_field relies on
 * it), in one place so free/dup/set_str cannot miss one. */
#define LG_RECORD_STRINGS(X)                                                                   \
    X(request_id)                                                                              \
    X(stream_id)                                                                               \
    X(user_id)                                                                                 \
    X(conversation_id)                                                                         \
    X(agent_id)                                                                                \
    X(provider_config_id)                                                                      \
    X(provider)                                                                                \
    X(model)                                                                                   \
    X(request_messages)                                                                        \
    X(request_params)                                                                          \
    X(response_content)                                                                        \
    X(finish_reason)                                                                           \
    X(error_message)                                                                           \
    X(metadata)

/* One allocation holds a header, the record and an inline area for its small strings
 * (lg_record.h, Ownership): a record used to be ~14 mallocs, each freed by the shipper
 * thread while producers allocated in the same malloc arena (lock contention seen in perf
 * of the end-to-end run). RECORD_AREA_BYTES fits the ids, model, provider, params,
 * finish_reason and metadata of a typical call; a string longer than
 * RECORD_INLINE_MAX_BYTES (a body) gets its own block so it cannot crowd them out. */
#define RECORD_AREA_BYTES 512u
#define RECORD_INLINE_MAX_BYTES 256u
#define RECORD_MAGIC UINT64_C(0x6c675f7265636f72) /* "lg_recor" */

struct record_hdr {
    uint64_t magic;         /* RECORD_MAGIC */
    struct lg_record *self; /* the record that follows: tells a header from other bytes */
    size_t area_len;        /* bytes of the area after the record */
    size_t area_used;       /* bytes handed out (bump only: a replaced string stays) */
};

/* The header's slot: keeps the record at max_align_t alignment after it. */
#define RECORD_HDR_BYTES 32u
static_assert(sizeof(struct record_hdr) <= RECORD_HDR_BYTES, "record header slot");
static_assert(RECORD_HDR_BYTES % _Alignof(max_align_t) == 0, "record alignment");

static struct record_hdr *record_hdr(const struct lg_record *r)
{
    return (struct record_hdr *)(void *)((char *)(uintptr_t)r - RECORD_HDR_BYTES);
}

static char *record_area(const struct lg_record *r)
{
    return (char *)(uintptr_t)(r + 1);
}

static bool record_area_holds(const struct lg_record *r, const char *s)
{
    uintptr_t a = (uintptr_t)record_area(r), p = (uintptr_t)s;
    return s != NULL && p >= a && p - a < record_hdr(r)->area_len;
}

/* A zeroed record (time_to_first_token_ms = -1) with an area of |area_len| bytes. */
static struct lg_record *record_alloc(size_t area_len)
{
    if (area_len > SIZE_MAX - RECORD_HDR_BYTES - sizeof(struct lg_record)) {
        return NULL;
    }
    char *block = lg_malloc(RECORD_HDR_BYTES + sizeof(struct lg_record) + area_len);
    if (block == NULL) {
        return NULL;
    }
    struct lg_record *r = (struct lg_record *)(void *)(block + RECORD_HDR_BYTES);
    memset(r, 0, sizeof(*r));
    r->time_to_first_token_ms = -1;
    struct record_hdr h = {RECORD_MAGIC, r, area_len, 0};
    memcpy(block, &h, sizeof(h));
    return r;
}

/* The record (made by lg_record_new or lg_record_dup) whose string field |field| is, or
 * NULL. Candidates are tried from the first field's offset up, so every header read lies
 * between the record's header and |field|: inside the record's block. */
static struct lg_record *record_of_field(char **field)
{
    static const size_t offsets[] = {
#define LG_RECORD_OFFSET(f) offsetof(struct lg_record, f),
        LG_RECORD_STRINGS(LG_RECORD_OFFSET)
#undef LG_RECORD_OFFSET
    };
    uintptr_t f = (uintptr_t)field;
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        if (f < offsets[i] + RECORD_HDR_BYTES) {
            break;
        }
        const char *cand = (const char *)field - offsets[i];
        struct record_hdr h;
        memcpy(&h, cand - RECORD_HDR_BYTES, sizeof(h.magic) + sizeof(h.self));
        if (h.magic == RECORD_MAGIC && (const char *)h.self == cand) {
            return h.self;
        }
    }
    return NULL;
}

int lg_record_new(struct lg_record **out)
{
    struct lg_record *r = record_alloc(RECORD_AREA_BYTES);
    if (r == NULL) {
        return LG_ERR_NOMEM;
    }
    *out = r;
    return LG_OK;
}

void lg_record_free(struct lg_record *r)
{
    if (r == NULL) {
        return;
    }
    assert(record_hdr(r)->magic == RECORD_MAGIC && record_hdr(r)->self == r);
#define LG_RECORD_FREE_FIELD(f)                                                                \
    if (!record_area_holds(r, r->f)) {                                                         \
        lg_free(r->f);                                                                         \
    }
    LG_RECORD_STRINGS(LG_RECORD_FREE_FIELD)
#undef LG_RECORD_FREE_FIELD
    lg_free(record_hdr(r));
}

/* |n| bytes of |r|'s area, or NULL when they do not fit. */
static char *record_area_take(struct lg_record *r, size_t n)
{
    struct record_hdr *h = record_hdr(r);
    if (n > h->area_len - h->area_used) {
        return NULL;
    }
    char *p = record_area(r) + h->area_used;
    h->area_used += n;
    return p;
}

int lg_record_set_str(char **field, const char *p, size_t len)
{
    struct lg_record *r = record_of_field(field);
    char *copy = NULL;
    if (p != NULL) {
        if (r != NULL && len < RECORD_INLINE_MAX_BYTES) {
            copy = record_area_take(r, len + 1);
        }
        if (copy != NULL) {
            memcpy(copy, p, len); /* the taken bytes are fresh: no overlap with |p| */
            copy[len] = '\0';
        } else {
            copy = lg_strndup(p, len);
            if (copy == NULL) {
                return LG_ERR_NOMEM;
            }
        }
    }
    if (r == NULL || !record_area_holds(r, *field)) {
        lg_free(*field);
    }
    *field = copy;
    return LG_OK;
}

/* One block: every string of |r| goes into the copy's area. */
int lg_record_dup(const struct lg_record *r, struct lg_record **out)
{
    size_t area = 0;
#define LG_RECORD_SIZE_FIELD(f) area += r->f != NULL ? strlen(r->f) + 1 : 0;
    LG_RECORD_STRINGS(LG_RECORD_SIZE_FIELD)
#undef LG_RECORD_SIZE_FIELD
    struct lg_record *c = record_alloc(area > RECORD_AREA_BYTES ? area : RECORD_AREA_BYTES);
    if (c == NULL) {
        return LG_ERR_NOMEM;
    }
    struct record_hdr *h = record_hdr(c);
    *c = *r;
#define LG_RECORD_DUP_FIELD(f)                                                                 \
    if (r->f != NULL) {                                                                        \
        size_t n = strlen(r->f) + 1;                                                           \
        c->f = memcpy(record_area(c) + h->area_used, r->f, n);                                 \
        h->area_used += n;                                                                     \
    }
    LG_RECORD_STRINGS(LG_RECORD_DUP_FIELD)
#undef LG_RECORD_DUP_FIELD
    *out = c;
    return LG_OK;
}

const char *lg_record_status_name(enum lg_record_status s)
{
    switch (s) {
    case LG_RECORD_STATUS_SUCCESS:
        return "success";
    case LG_RECORD_STATUS_ERROR:
        return "error";
    case LG_RECORD_STATUS_CANCELLED:
        return "cancelled";
    case LG_RECORD_STATUS_TIMEOUT:
        return "timeout";
    }
    return "error";
}

const char *lg_record_usage_source_name(enum lg_record_usage_source s)
{
    return s == LG_RECORD_USAGE_ESTIMATED ? "estimated" : "reported";
}

/* ---- row encoding --------------------------------------------------------------------
 *
 * A row is built in one step: measure every piece, reserve room for the whole row once, and
 * write it through a raw pointer (perf of the shipper: one lg_buf call per piece, buf_grow
 * on each, vfprintf for the temperature and a byte-wise escape loop were most of ~4 us of
 * shipper CPU per ~2.4 KB row). The bytes are the same as the piecewise encoder's, which
 * tests/unit/test_record.c keeps as its oracle. */

/* The row's string columns, in output order. */
enum row_str {
    ROW_REQUEST_ID, ROW_STREAM_ID, ROW_USER_ID, ROW_CONVERSATION_ID, ROW_AGENT_ID,
    ROW_PROVIDER_CONFIG_ID, ROW_PROVIDER, ROW_MODEL, ROW_REQUEST_MESSAGES, ROW_REQUEST_PARAMS,
    ROW_RESPONSE_CONTENT, ROW_FINISH_REASON, ROW_USAGE_SOURCE, ROW_STATUS, ROW_ERROR_MESSAGE,
    ROW_METADATA, ROW_NSTR
};

/* The row's integer columns, in output order. */
enum row_int {
    ROW_HAS_TEMPERATURE, ROW_HAS_MAX_TOKENS, ROW_MAX_TOKENS, ROW_STREAM, ROW_PROMPT_TOKENS,
    ROW_COMPLETION_TOKENS, ROW_CACHED_TOKENS, ROW_TOTAL_TOKENS, ROW_COST, ROW_PRICE_MISSING,
    ROW_START_TIME, ROW_END_TIME, ROW_DURATION, ROW_TTFT, ROW_NINT
};

/* Longest text of an int64 ("-9223372036854775808") and of "%.17g" of a double
 * ("-2.2250738585072014e-308"). */
#define ROW_INT_MAX_BYTES 20u
#define ROW_DOUBLE_MAX_BYTES 24u
/* Rows whose strings total more than this are measured exactly before reserving, so a big
 * body does not grow the output buffer to 6x its size. */
#define ROW_RESERVE_WORST_MAX_BYTES 65536u

/* Everything a row prints, gathered before writing. */
struct row_vals {
    const uint8_t *str[ROW_NSTR];
    size_t str_len[ROW_NSTR];
    int64_t num[ROW_NINT];
    double temp_val; /* 0 when absent or not finite */
    char temp[ROW_DOUBLE_MAX_BYTES + 8];
    size_t temp_len;
};

/* The row as literal pieces, each followed by a value: S(i) a quoted-escaped string's
 * text, I(i) an integer, T the temperature, N nothing. */
#define ROW_PIECES(S, I, T, N)                                                                 \
    I("{\"start_time_ms\":", ROW_START_TIME)                                                   \
    S(",\"request_id\":\"", ROW_REQUEST_ID)                                                    \
    S("\",\"stream_id\":\"", ROW_STREAM_ID)                                                    \
    S("\",\"user_id\":\"", ROW_USER_ID)                                                        \
    S("\",\"conversation_id\":\"", ROW_CONVERSATION_ID)                                        \
    S("\",\"agent_id\":\"", ROW_AGENT_ID)                                                      \
    S("\",\"provider_config_id\":\"", ROW_PROVIDER_CONFIG_ID)                                  \
    S("\",\"provider\":\"", ROW_PROVIDER)                                                      \
    S("\",\"model\":\"", ROW_MODEL)                                                            \
    I("\",\"has_temperature\":", ROW_HAS_TEMPERATURE)                                          \
    T(",\"temperature\":")                                                                     \
    I(",\"has_max_tokens\":", ROW_HAS_MAX_TOKENS)                                              \
    I(",\"max_tokens\":", ROW_MAX_TOKENS)                                                      \
    I(",\"stream\":", ROW_STREAM)                                                              \
    S(",\"request_messages\":\"", ROW_REQUEST_MESSAGES)                                        \
    S("\",\"request_params\":\"", ROW_REQUEST_PARAMS)                                          \
    S("\",\"response_content\":\"", ROW_RESPONSE_CONTENT)                                      \
    S("\",\"finish_reason\":\"", ROW_FINISH_REASON)                                            \
    I("\",\"prompt_tokens\":", ROW_PROMPT_TOKENS)                                              \
    I(",\"completion_tokens\":", ROW_COMPLETION_TOKENS)                                        \
    I(",\"cached_tokens\":", ROW_CACHED_TOKENS)                                                \
    I(",\"total_tokens\":", ROW_TOTAL_TOKENS)                                                  \
    I(",\"estimated_cost_nano_usd\":", ROW_COST)                                               \
    S(",\"usage_source\":\"", ROW_USAGE_SOURCE)                                                \
    I("\",\"price_missing\":", ROW_PRICE_MISSING)                                              \
    I(",\"end_time_ms\":", ROW_END_TIME)                                                       \
    I(",\"duration_ms\":", ROW_DURATION)                                                       \
    I(",\"time_to_first_token_ms\":", ROW_TTFT)                                                \
    S(",\"status\":\"", ROW_STATUS)                                                            \
    S("\",\"error_message\":\"", ROW_ERROR_MESSAGE)                                            \
    S("\",\"metadata\":\"", ROW_METADATA)                                                      \
    N("\"")

#define ROW_LIT_LEN1(lit, i) +(sizeof(lit) - 1)
#define ROW_LIT_LEN0(lit) +(sizeof(lit) - 1)
/* Bytes of the literal pieces of a row. */
enum { ROW_LIT_BYTES = 0 ROW_PIECES(ROW_LIT_LEN1, ROW_LIT_LEN1, ROW_LIT_LEN0, ROW_LIT_LEN0) };
#undef ROW_LIT_LEN1
#undef ROW_LIT_LEN0

static const uint64_t pow10_u64[20] = {
    UINT64_C(1),
    UINT64_C(10),
    UINT64_C(100),
    UINT64_C(1000),
    UINT64_C(10000),
    UINT64_C(100000),
    UINT64_C(1000000),
    UINT64_C(10000000),
    UINT64_C(100000000),
    UINT64_C(1000000000),
    UINT64_C(10000000000),
    UINT64_C(100000000000),
    UINT64_C(1000000000000),
    UINT64_C(10000000000000),
    UINT64_C(100000000000000),
    UINT64_C(1000000000000000),
    UINT64_C(10000000000000000),
    UINT64_C(100000000000000000),
    UINT64_C(1000000000000000000),
    UINT64_C(10000000000000000000),
};

/* Decimal digits of |u| (1 for 0). */
static size_t u64_digits(uint64_t u)
{
    size_t n = 1;
    while (n < 20 && u >= pow10_u64[n]) {
        n++;
    }
    return n;
}

/* Writes the |n| decimal digits of |u| at |p| and returns the end. */
static uint8_t *put_u64_digits(uint8_t *p, uint64_t u, size_t n)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
    uint8_t *end = p + n, *q = end;
    while (u >= 100) {
        size_t k = (size_t)(u % 100) * 2;
        u /= 100;
        q -= 2;
        q[0] = (uint8_t)pairs[k];
        q[1] = (uint8_t)pairs[k + 1];
    }
    if (u >= 10) {
        q -= 2;
        q[0] = (uint8_t)pairs[u * 2];
        q[1] = (uint8_t)pairs[u * 2 + 1];
    } else {
        *--q = (uint8_t)('0' + u);
    }
    return end;
}

/* |v| as %lld prints it (INT64_MIN included: negated as unsigned). */
static size_t i64_len(int64_t v)
{
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    return u64_digits(u) + (v < 0 ? 1u : 0u);
}

static uint8_t *put_i64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        *p++ = '-';
        u = (uint64_t)0 - u;
    }
    return put_u64_digits(p, u, u64_digits(u));
}

#if defined(__SIZEOF_INT128__)
__extension__ typedef unsigned __int128 u128; /* GCC and clang on 64-bit targets */

/* The 17 significant digits of |v| (finite, > 0), correctly rounded (ties to even, as glibc
 * printf in the default rounding mode), as an integer in [10^16, 10^17) with the decimal
 * exponent of its first digit; false when |v| is outside the range done here exactly
 * (v = m * 2^-k, m < 2^53, k >= 1, v >= ~1e-6): the caller then uses printf. Exact:
 * m * 10^p < 2^53 * 10^22 < 2^127 fits in 128 bits, and the shift by k is the exact
 * quotient with the exact remainder for the rounding. */
static bool double_digits17(double v, uint64_t *digits, int *exp10)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    int be = (int)((bits >> 52) & 0x7ff);
    if (be == 0 || be >= 1075) { /* subnormal, or an integer >= 2^52 */
        return false;
    }
    u128 m = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    int k = 1075 - be;                       /* v = m / 2^k, 1 <= k */
    int e2 = be - 1023;                      /* 2^e2 <= v < 2^(e2+1) */
    int est = (e2 * 78913) >> 18;            /* floor(e2 * log10(2)): E10 is est or est+1 */
    if (est < -6) {
        return false;
    }
    for (int e10 = est + 1; e10 >= est; e10--) {
        int p = 16 - e10; /* 1 <= p <= 22 */
        u128 pw = 1;
        for (int i = 0; i < p; i++) {
            pw *= 10u;
        }
        u128 n = m * pw;
        u128 q = n >> k;
        if (e10 == est + 1 && q < pow10_u64[16]) {
            continue; /* v < 10^(est+1): its first digit is at est */
        }
        u128 rem = n - (q << k), half = (u128)1 << (k - 1);
        if (rem > half || (rem == half && (q & 1u) != 0)) {
            q++;
        }
        if (q == pow10_u64[17]) { /* 9.99..95 rounded up to 10.00.. */
            q = pow10_u64[16];
            e10++;
        }
        *digits = (uint64_t)q;
        *exp10 = e10;
        return true;
    }
    return false;
}
#endif

/* "%.17g" of |v| into |out| (ROW_DOUBLE_MAX_BYTES + 1 at least); returns the length. The
 * common case (0, and values from 1e-6 to 2^52 that are not integers, such as 0.7) is
 * formatted here from the exact digits in the way %g lays them out (fixed notation for
 * exponents -4..16, else d.ddde[+-]XX; trailing zeros and a bare point dropped); the rest
 * goes to snprintf (printf_fp was ~10% of encoding a row). */
static size_t format_double17(double v, char *out, size_t cap)
{
    char *p = out;
    if (v == 0.0) {
        if (signbit(v)) {
            *p++ = '-';
        }
        *p++ = '0';
        return (size_t)(p - out);
    }
#if defined(__SIZEOF_INT128__)
    uint64_t d;
    int x;
    if (isfinite(v) && double_digits17(fabs(v), &d, &x)) {
        char dig[17];
        put_u64_digits((uint8_t *)dig, d, 17);
        int last = 16; /* last significant digit after dropping trailing zeros */
        while (last > 0 && dig[last] == '0') {
            last--;
        }
        if (v < 0) {
            *p++ = '-';
        }
        if (x >= 0 && x < 17) { /* fixed: dig[0..x] '.' rest */
            memcpy(p, dig, (size_t)x + 1);
            p += x + 1;
            if (last > x) {
                *p++ = '.';
                memcpy(p, dig + x + 1, (size_t)(last - x));
                p += last - x;
            }
        } else if (x >= -4) { /* fixed: "0." zeros digits */
            *p++ = '0';
            *p++ = '.';
            for (int i = -1; i > x; i--) {
                *p++ = '0';
            }
            memcpy(p, dig, (size_t)last + 1);
            p += last + 1;
        } else { /* d[.ddd]e-XX */
            *p++ = dig[0];
            if (last > 0) {
                *p++ = '.';
                memcpy(p, dig + 1, (size_t)last);
                p += last;
            }
            *p++ = 'e';
            *p++ = x < 0 ? '-' : '+';
            unsigned ax = (unsigned)(x < 0 ? -x : x);
            *p++ = (char)('0' + ax / 10u);
            *p++ = (char)('0' + ax % 10u);
        }
        return (size_t)(p - out);
    }
#endif
    int n = snprintf(out, cap, "%.17g", v);
    return n > 0 ? (size_t)n : 0;
}

/* |text_temp|: also format the temperature as JSON text (RowBinary writes its 8 bytes). */
static void row_gather(const struct lg_record *r, struct row_vals *v, bool text_temp)
{
    static const uint8_t empty[] = "";
    const char *s[ROW_NSTR] = {
        r->request_id,       r->stream_id,
        r->user_id,          r->conversation_id,
        r->agent_id,         r->provider_config_id,
        r->provider,         r->model,
        r->request_messages, r->request_params,
        r->response_content, r->finish_reason,
        lg_record_usage_source_name(r->usage_source),
        lg_record_status_name(r->status),
        r->error_message,    r->metadata != NULL ? r->metadata : "{}",
    };
    for (size_t i = 0; i < ROW_NSTR; i++) {
        v->str[i] = s[i] != NULL ? (const uint8_t *)s[i] : empty;
        v->str_len[i] = s[i] != NULL ? strlen(s[i]) : 0;
    }
    /* A non-finite temperature cannot be a JSON number; it is stored as absent. */
    bool has_t = r->has_temperature && isfinite(r->temperature);
    v->num[ROW_HAS_TEMPERATURE] = has_t ? 1 : 0;
    v->num[ROW_HAS_MAX_TOKENS] = r->has_max_tokens ? 1 : 0;
    v->num[ROW_MAX_TOKENS] = r->has_max_tokens ? r->max_tokens : 0;
    v->num[ROW_STREAM] = r->stream ? 1 : 0;
    v->num[ROW_PROMPT_TOKENS] = r->prompt_tokens;
    v->num[ROW_COMPLETION_TOKENS] = r->completion_tokens;
    v->num[ROW_CACHED_TOKENS] = r->cached_tokens;
    v->num[ROW_TOTAL_TOKENS] = r->total_tokens;
    v->num[ROW_COST] = r->estimated_cost_nano_usd;
    v->num[ROW_PRICE_MISSING] = r->price_missing ? 1 : 0;
    v->num[ROW_START_TIME] = r->start_time_ms;
    v->num[ROW_END_TIME] = r->end_time_ms;
    v->num[ROW_DURATION] = r->duration_ms;
    v->num[ROW_TTFT] = r->time_to_first_token_ms;
    v->temp_val = has_t ? r->temperature : 0.0;
    v->temp_len = text_temp ? format_double17(v->temp_val, v->temp, sizeof(v->temp)) : 0;
}

/* Bytes the row takes: exact when |exact|, else an upper bound without a pass over the
 * strings' bytes. SIZE_MAX when it would not fit a size_t. */
static size_t row_len(const struct row_vals *v, bool exact)
{
    size_t n = ROW_LIT_BYTES + v->temp_len;
    for (size_t i = 0; i < ROW_NINT; i++) {
        n += exact ? i64_len(v->num[i]) : ROW_INT_MAX_BYTES;
    }
    for (size_t i = 0; i < ROW_NSTR; i++) {
        size_t s = v->str_len[i];
        if (s > (SIZE_MAX - n) / LG_BUF_JSON_ESCAPE_MAX_GROWTH) {
            return SIZE_MAX;
        }
        n += exact ? lg_buf_json_escaped_len(v->str[i], s) : s * LG_BUF_JSON_ESCAPE_MAX_GROWTH;
    }
    return n;
}

static uint8_t *row_write(uint8_t *p, const struct row_vals *v)
{
#define ROW_PUT_LIT(lit)                                                                       \
    memcpy(p, lit, sizeof(lit) - 1);                                                           \
    p += sizeof(lit) - 1;
#define ROW_PUT_S(lit, i)                                                                      \
    ROW_PUT_LIT(lit)                                                                           \
    p = lg_buf_json_escape_to(p, v->str[i], v->str_len[i]);
#define ROW_PUT_I(lit, i)                                                                      \
    ROW_PUT_LIT(lit)                                                                           \
    p = put_i64(p, v->num[i]);
#define ROW_PUT_T(lit)                                                                         \
    ROW_PUT_LIT(lit)                                                                           \
    memcpy(p, v->temp, v->temp_len);                                                           \
    p += v->temp_len;
    ROW_PIECES(ROW_PUT_S, ROW_PUT_I, ROW_PUT_T, ROW_PUT_LIT)
#undef ROW_PUT_T
#undef ROW_PUT_I
#undef ROW_PUT_S
#undef ROW_PUT_LIT
    return p;
}

/* Appends the open row and then |tail| (|tail_len| bytes) to |out|, all or nothing. */
static int row_encode(const struct lg_record *r, struct lg_buf *out, const char *tail,
                      size_t tail_len)
{
    struct row_vals v;
    row_gather(r, &v, true);
    size_t strs = 0;
    for (size_t i = 0; i < ROW_NSTR; i++) {
        strs += v.str_len[i]; /* cannot wrap: distinct strings in memory */
    }
    size_t room = out->len <= out->max ? out->max - out->len : 0;
    size_t need = strs <= ROW_RESERVE_WORST_MAX_BYTES ? row_len(&v, false) : SIZE_MAX;
    if (need > room || need > SIZE_MAX - tail_len || need + tail_len > room) {
        need = row_len(&v, true); /* exact: fails only when the row truly does not fit */
    }
    if (need > SIZE_MAX - tail_len || need + tail_len > room) {
        return LG_ERR_TOO_LARGE;
    }
    uint8_t *start = lg_buf_reserve(out, need + tail_len);
    if (start == NULL) {
        return LG_ERR_NOMEM;
    }
    uint8_t *end = row_write(start, &v);
    memcpy(end, tail, tail_len);
    end += tail_len;
    lg_buf_commit(out, (size_t)(end - start));
    return LG_OK;
}

int lg_record_encode_row(const struct lg_record *r, struct lg_buf *out)
{
    return row_encode(r, out, "", 0);
}

int lg_record_encode_json(const struct lg_record *r, struct lg_buf *out)
{
    return row_encode(r, out, "}\n", 2);
}

/* ---- RowBinary ----------------------------------------------------------------------
 *
 * The same columns in the same order as the JSON row (ROW_PIECES), as ClickHouse's
 * RowBinary reads them for the types of analytics/schema's llm_ingest: UInt8 for the four
 * flags, Int64 for the other integers, Float64, String. No escaping and no digits: the
 * encoder measures the row exactly (one strlen per string), reserves it once and copies. */

/* The UInt8 columns; every other integer column is Int64. */
static bool row_int_is_u8(enum row_int i)
{
    return i == ROW_HAS_TEMPERATURE || i == ROW_HAS_MAX_TOKENS || i == ROW_STREAM ||
           i == ROW_PRICE_MISSING;
}

/* LEB128, as ClickHouse writes and reads string lengths (writeVarUInt). */
#define RB_VARINT_MAX_BYTES 10u

static size_t rb_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80u) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *rb_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80u) {
        *p++ = (uint8_t)(v | 0x80u);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *rb_put_le64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
    return p + sizeof(v);
}

static uint64_t rb_get_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static const char rb_columns_v1[] =
    "start_time_ms,request_id,stream_id,user_id,conversation_id,agent_id,provider_config_id,"
    "provider,model,has_temperature,temperature,has_max_tokens,max_tokens,stream,"
    "request_messages,request_params,response_content,finish_reason,prompt_tokens,"
    "completion_tokens,cached_tokens,total_tokens,estimated_cost_nano_usd,usage_source,"
    "price_missing,end_time_ms,duration_ms,time_to_first_token_ms,status,error_message,"
    "metadata";

const char *lg_record_rowbinary_columns(unsigned version)
{
    return version == LG_RECORD_ROWBINARY_V1 ? rb_columns_v1 : NULL;
}

int lg_record_encode_rowbinary(const struct lg_record *r, struct lg_buf *out)
{
    struct row_vals v;
    row_gather(r, &v, false);
    size_t need = 1 + 8; /* version byte, temperature */
    for (size_t i = 0; i < ROW_NINT; i++) {
        need += row_int_is_u8((enum row_int)i) ? 1u : 8u;
    }
    for (size_t i = 0; i < ROW_NSTR; i++) {
        need += rb_varint_len(v.str_len[i]) + v.str_len[i]; /* cannot wrap: distinct strings */
    }
    size_t room = out->len <= out->max ? out->max - out->len : 0;
    if (need > room) {
        return LG_ERR_TOO_LARGE;
    }
    uint8_t *start = lg_buf_reserve(out, need);
    if (start == NULL) {
        return LG_ERR_NOMEM;
    }
    uint8_t *p = start;
    *p++ = LG_RECORD_ROWBINARY_V1;
    uint64_t tbits;
    memcpy(&tbits, &v.temp_val, sizeof(tbits));
#define RB_PUT_S(lit, i)                                                                       \
    p = rb_put_varint(p, v.str_len[i]);                                                        \
    memcpy(p, v.str[i], v.str_len[i]);                                                         \
    p += v.str_len[i];
#define RB_PUT_I(lit, i)                                                                       \
    if (row_int_is_u8(i)) {                                                                    \
        *p++ = (uint8_t)v.num[i];                                                              \
    } else {                                                                                   \
        p = rb_put_le64(p, (uint64_t)v.num[i]);                                                \
    }
#define RB_PUT_T(lit) p = rb_put_le64(p, tbits);
#define RB_PUT_N(lit)
    ROW_PIECES(RB_PUT_S, RB_PUT_I, RB_PUT_T, RB_PUT_N)
#undef RB_PUT_N
#undef RB_PUT_T
#undef RB_PUT_I
#undef RB_PUT_S
    assert((size_t)(p - start) == need);
    lg_buf_commit(out, need);
    return LG_OK;
}

/* A decoded row: views into its bytes. */
struct rb_cols {
    const uint8_t *str[ROW_NSTR];
    size_t str_len[ROW_NSTR];
    int64_t num[ROW_NINT];
    double temp;
};

/* Reads one whole version-1 row's columns from |p| (|len| bytes) into |c|. LG_OK when every
 * column is there and nothing is left over, else LG_ERR_INVALID. */
static int rb_walk(const uint8_t *p, size_t len, struct rb_cols *c)
{
    const uint8_t *end = p + len;
    bool ok = true;
#define RB_GET_S(lit, i)                                                                       \
    if (ok) {                                                                                  \
        uint64_t n = 0;                                                                        \
        unsigned shift = 0;                                                                    \
        for (;;) {                                                                             \
            if (p == end || shift >= 7u * RB_VARINT_MAX_BYTES) {                               \
                ok = false;                                                                    \
                break;                                                                         \
            }                                                                                  \
            uint8_t b = *p++;                                                                  \
            n |= (uint64_t)(b & 0x7fu) << shift;                                               \
            shift += 7;                                                                        \
            if (b < 0x80u) {                                                                   \
                break;                                                                         \
            }                                                                                  \
        }                                                                                      \
        if (ok && n > (uint64_t)(end - p)) {                                                   \
            ok = false;                                                                        \
        }                                                                                      \
        if (ok) {                                                                              \
            c->str[i] = p;                                                                     \
            c->str_len[i] = (size_t)n;                                                         \
            p += n;                                                                            \
        }                                                                                      \
    }
#define RB_GET_I(lit, i)                                                                       \
    if (ok) {                                                                                  \
        size_t w = row_int_is_u8(i) ? 1u : 8u;                                                 \
        if ((size_t)(end - p) < w) {                                                           \
            ok = false;                                                                        \
        } else {                                                                               \
            c->num[i] = w == 1 ? (int64_t)*p : (int64_t)rb_get_le64(p);                        \
            p += w;                                                                            \
        }                                                                                      \
    }
#define RB_GET_T(lit)                                                                          \
    if (ok) {                                                                                  \
        if ((size_t)(end - p) < 8u) {                                                          \
            ok = false;                                                                        \
        } else {                                                                               \
            uint64_t bits = rb_get_le64(p);                                                    \
            memcpy(&c->temp, &bits, sizeof(bits));                                             \
            p += 8;                                                                            \
        }                                                                                      \
    }
#define RB_GET_N(lit)
    ROW_PIECES(RB_GET_S, RB_GET_I, RB_GET_T, RB_GET_N)
#undef RB_GET_N
#undef RB_GET_T
#undef RB_GET_I
#undef RB_GET_S
    return ok && p == end ? LG_OK : LG_ERR_INVALID;
}

int lg_record_rowbinary_check(unsigned version, const uint8_t *cols, size_t len)
{
    struct rb_cols c;
    if (version != LG_RECORD_ROWBINARY_V1) {
        return LG_ERR_INVALID;
    }
    return rb_walk(cols, len, &c);
}

/* True when string column |i| of |c| is exactly |name|. */
static bool rb_col_is(const struct rb_cols *c, enum row_str i, const char *name)
{
    return c->str_len[i] == strlen(name) && memcmp(c->str[i], name, c->str_len[i]) == 0;
}

int64_t lg_record_rowbinary_start_ms(const uint8_t *cols)
{
    return (int64_t)rb_get_le64(cols); /* the first column (ROW_PIECES) */
}

int lg_record_from_rowbinary(unsigned version, const uint8_t *cols, size_t len,
                             struct lg_record **out)
{
    struct rb_cols c;
    if (version != LG_RECORD_ROWBINARY_V1 || rb_walk(cols, len, &c) != LG_OK) {
        return LG_ERR_INVALID;
    }
    /* The enums back from the names the encoder wrote (lg_record_*_name). */
    int status = -1, source = -1;
    for (int st = LG_RECORD_STATUS_SUCCESS; st <= LG_RECORD_STATUS_TIMEOUT; st++) {
        if (rb_col_is(&c, ROW_STATUS, lg_record_status_name((enum lg_record_status)st))) {
            status = st;
        }
    }
    for (int u = LG_RECORD_USAGE_REPORTED; u <= LG_RECORD_USAGE_ESTIMATED; u++) {
        if (rb_col_is(&c, ROW_USAGE_SOURCE,
                      lg_record_usage_source_name((enum lg_record_usage_source)u))) {
            source = u;
        }
    }
    if (status < 0 || source < 0) {
        return LG_ERR_INVALID;
    }
    struct lg_record *r;
    int rc = lg_record_new(&r);
    if (rc != LG_OK) {
        return rc;
    }
    char **fields[ROW_NSTR] = {
        [ROW_REQUEST_ID] = &r->request_id,
        [ROW_STREAM_ID] = &r->stream_id,
        [ROW_USER_ID] = &r->user_id,
        [ROW_CONVERSATION_ID] = &r->conversation_id,
        [ROW_AGENT_ID] = &r->agent_id,
        [ROW_PROVIDER_CONFIG_ID] = &r->provider_config_id,
        [ROW_PROVIDER] = &r->provider,
        [ROW_MODEL] = &r->model,
        [ROW_REQUEST_MESSAGES] = &r->request_messages,
        [ROW_REQUEST_PARAMS] = &r->request_params,
        [ROW_RESPONSE_CONTENT] = &r->response_content,
        [ROW_FINISH_REASON] = &r->finish_reason,
        [ROW_ERROR_MESSAGE] = &r->error_message,
        [ROW_METADATA] = &r->metadata,
    };
    for (size_t i = 0; i < ROW_NSTR && rc == LG_OK; i++) {
        if (fields[i] != NULL) {
            rc = lg_record_set_str(fields[i], (const char *)c.str[i], c.str_len[i]);
        }
    }
    if (rc != LG_OK) {
        lg_record_free(r);
        return rc;
    }
    r->status = (enum lg_record_status)status;
    r->usage_source = (enum lg_record_usage_source)source;
    r->has_temperature = c.num[ROW_HAS_TEMPERATURE] != 0;
    r->temperature = c.temp;
    r->has_max_tokens = c.num[ROW_HAS_MAX_TOKENS] != 0;
    r->max_tokens = c.num[ROW_MAX_TOKENS];
    r->stream = c.num[ROW_STREAM] != 0;
    r->prompt_tokens = c.num[ROW_PROMPT_TOKENS];
    r->completion_tokens = c.num[ROW_COMPLETION_TOKENS];
    r->cached_tokens = c.num[ROW_CACHED_TOKENS];
    r->total_tokens = c.num[ROW_TOTAL_TOKENS];
    r->estimated_cost_nano_usd = c.num[ROW_COST];
    r->price_missing = c.num[ROW_PRICE_MISSING] != 0;
    r->start_time_ms = c.num[ROW_START_TIME];
    r->end_time_ms = c.num[ROW_END_TIME];
    r->duration_ms = c.num[ROW_DURATION];
    r->time_to_first_token_ms = c.num[ROW_TTFT];
    *out = r;
    return LG_OK;
}

void lg_record_sink_close(struct lg_record_sink *s)
{
    if (s->close != NULL) {
        s->close(s->impl);
    }
    s->enqueue = NULL;
    s->close = NULL;
    s->ticket = NULL;
    s->written = NULL;
    s->set_notify = NULL;
    s->impl = NULL;
}

/* ---- JSON-lines file sink ------------------------------------------------------------ */

struct file_sink {
    pthread_mutex_t mu; /* serialises writes so lines never interleave */
    int fd;
};

static int file_sink_enqueue(void *impl, struct lg_record *r)
{
    struct file_sink *fs = impl;
    struct lg_buf b;
    lg_buf_init(&b, LG_RECORD_MAX_ROW_BYTES);
    int rc = lg_record_encode_json(r, &b);
    if (rc != LG_OK) {
        goto out_deinit;
    }
    pthread_mutex_lock(&fs->mu);
    size_t off = 0;
    while (off < b.len) {
        ssize_t n = write(fs->fd, b.data + off, b.len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = LG_ERR_IO;
            break;
        }
        off += (size_t)n;
    }
    pthread_mutex_unlock(&fs->mu);
    if (rc == LG_OK) {
        lg_record_free(r);
    }
out_deinit:
    lg_buf_deinit(&b);
    return rc;
}

static void file_sink_close(void *impl)
{
    struct file_sink *fs = impl;
    close(fs->fd);
    pthread_mutex_destroy(&fs->mu);
    lg_free(fs);
}

int lg_record_file_sink_open(struct lg_record_sink *out, const char *path)
{
    struct file_sink *fs = lg_calloc(1, sizeof(*fs));
    if (fs == NULL) {
        return LG_ERR_NOMEM;
    }
    fs->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fs->fd < 0) {
        lg_free(fs);
        return LG_ERR_IO;
    }
    pthread_mutex_init(&fs->mu, NULL);
    out->enqueue = file_sink_enqueue;
    out->close = file_sink_close;
    out->ticket = NULL; /* each record is written by enqueue itself */
    out->written = NULL;
    out->set_notify = NULL;
    out->impl = fs;
    return LG_OK;
}
