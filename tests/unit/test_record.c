/* SPDX-License-Identifier: Apache-2.0 */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_mem.h"
#include "lg_record.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

static struct lg_record *make_record(void)
{
    struct lg_record *r;
    assert_int_equal(lg_record_new(&r), LG_OK);
    assert_int_equal(lg_record_set_str(&r->request_id, "req-1", 5), LG_OK);
    assert_int_equal(lg_record_set_str(&r->user_id, "u\"ser\\1", 7), LG_OK);
    assert_int_equal(lg_record_set_str(&r->model, "gpt-x", 5), LG_OK);
    const char *msgs = "[{\"role\":\"user\",\"content\":\"h\xc3\xa9llo\\n\x01\"}]";
    assert_int_equal(lg_record_set_str(&r->request_messages, msgs, strlen(msgs)), LG_OK);
    r->has_temperature = true;
    r->temperature = 0.7;
    r->has_max_tokens = true;
    r->max_tokens = 256;
    r->stream = true;
    r->prompt_tokens = 11;
    r->completion_tokens = 22;
    r->total_tokens = 33;
    r->estimated_cost_nano_usd = INT64_C(9223372036854775807);
    r->usage_source = LG_RECORD_USAGE_ESTIMATED;
    r->start_time_ms = INT64_C(1764165000123);
    r->status = LG_RECORD_STATUS_CANCELLED;
    return r;
}

static void test_record_encode_every_field(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_record_encode_json(r, &b), LG_OK);
    assert_int_equal(b.data[b.len - 1], '\n');
    json_error_t jerr;
    json_t *j = json_loadb((const char *)b.data, b.len, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "req-1");
    assert_string_equal(json_string_value(json_object_get(j, "user_id")), "u\"ser\\1");
    assert_string_equal(json_string_value(json_object_get(j, "request_messages")),
                        r->request_messages);
    assert_true(json_real_value(json_object_get(j, "temperature")) == 0.7);
    assert_int_equal(json_integer_value(json_object_get(j, "max_tokens")), 256);
    assert_int_equal(json_integer_value(json_object_get(j, "stream")), 1);
    /* Exact 64-bit decimal: the largest cost survives without float rounding. */
    assert_non_null(strstr((char *)b.data, "\"estimated_cost_nano_usd\":9223372036854775807"));
    assert_string_equal(json_string_value(json_object_get(j, "usage_source")), "estimated");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "cancelled");
    assert_string_equal(json_string_value(json_object_get(j, "metadata")), "{}");
    assert_int_equal(json_integer_value(json_object_get(j, "time_to_first_token_ms")), -1);
    assert_int_equal(json_integer_value(json_object_get(j, "start_time_ms")),
                     INT64_C(1764165000123));
    /* Control byte escaped as \u0001, no raw control bytes in the line. */
    assert_non_null(strstr((char *)b.data, "\\u0001"));
    for (size_t i = 0; i + 1 < b.len; i++) {
        assert_true(b.data[i] >= 0x20);
    }
    json_decref(j);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

static void test_record_row_is_open(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_record_encode_row(r, &b), LG_OK);
    assert_int_not_equal(b.data[b.len - 1], '}');
    lg_buf_deinit(&b);
    lg_record_free(r);
}

static void test_record_cap_leaves_buffer(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_buf b;
    lg_buf_init(&b, 64);
    assert_int_equal(lg_buf_append_str(&b, "keep"), LG_OK);
    assert_int_equal(lg_record_encode_json(r, &b), LG_ERR_TOO_LARGE);
    assert_int_equal(b.len, 4);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

/* make_record with an |n|-byte response_content of '"' (each escaped as \" in JSON). */
static struct lg_record *make_big_record(size_t n)
{
    struct lg_record *r = make_record();
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, '"', n);
    assert_int_equal(lg_record_set_str(&r->response_content, big, n), LG_OK);
    free(big);
    return r;
}

static void test_record_huge_body(void **state)
{
    (void)state;
    size_t n = 3u << 20;
    struct lg_record *r = make_big_record(n);
    struct lg_buf b;
    lg_buf_init(&b, 16u << 20);
    assert_int_equal(lg_record_encode_json(r, &b), LG_OK);
    json_t *j = json_loadb((const char *)b.data, b.len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_string_length(json_object_get(j, "response_content")), n);
    json_decref(j);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

static void test_record_dup_and_nomem(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_record *c = NULL;
    assert_int_equal(lg_record_dup(r, &c), LG_OK);
    assert_string_equal(c->user_id, r->user_id);
    assert_ptr_not_equal(c->user_id, r->user_id);
    lg_record_free(c);
    /* One allocation: the copy and all its strings. */
    lg_test_fail_after(0);
    assert_int_equal(lg_record_dup(r, &c), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
    lg_record_free(r);
}

/* ---- differential test: the encoder against a reference ------------------------------
 *
 * ref_encode_row is the piecewise encoder this module had before the one-reservation
 * rewrite, with the escaping spelled out byte by byte and the numbers through printf
 * ("%lld", "%.17g"): the oracle. Every generated record must encode to the same bytes. */

static void ref_escaped(struct lg_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != 0; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            assert_int_equal(lg_buf_appendf(b, "\\%c", c), LG_OK);
        } else if (c == '\n') {
            assert_int_equal(lg_buf_append_str(b, "\\n"), LG_OK);
        } else if (c == '\r') {
            assert_int_equal(lg_buf_append_str(b, "\\r"), LG_OK);
        } else if (c == '\t') {
            assert_int_equal(lg_buf_append_str(b, "\\t"), LG_OK);
        } else if (c < 0x20 || c == 0x7f) {
            assert_int_equal(lg_buf_appendf(b, "\\u%04x", c), LG_OK);
        } else {
            assert_int_equal(lg_buf_append(b, &c, 1), LG_OK);
        }
    }
}

static void ref_str(struct lg_buf *b, const char *key, const char *val, const char *def)
{
    assert_int_equal(lg_buf_appendf(b, ",\"%s\":\"", key), LG_OK);
    ref_escaped(b, val != NULL ? val : def);
    assert_int_equal(lg_buf_append_str(b, "\""), LG_OK);
}

static void ref_int(struct lg_buf *b, const char *key, int64_t v)
{
    assert_int_equal(lg_buf_appendf(b, ",\"%s\":%lld", key, (long long)v), LG_OK);
}

static void ref_encode_row(const struct lg_record *r, struct lg_buf *b)
{
    /* start_time_ms first: the batcher reads it at a fixed place (a row's month). */
    assert_int_equal(lg_buf_appendf(b, "{\"start_time_ms\":%lld", (long long)r->start_time_ms),
                     LG_OK);
    ref_str(b, "request_id", r->request_id, "");
    ref_str(b, "stream_id", r->stream_id, "");
    ref_str(b, "user_id", r->user_id, "");
    ref_str(b, "conversation_id", r->conversation_id, "");
    ref_str(b, "agent_id", r->agent_id, "");
    ref_str(b, "provider_config_id", r->provider_config_id, "");
    ref_str(b, "provider", r->provider, "");
    ref_str(b, "model", r->model, "");
    bool has_t = r->has_temperature && isfinite(r->temperature);
    ref_int(b, "has_temperature", has_t);
    assert_int_equal(
        lg_buf_appendf(b, ",\"temperature\":%.17g", has_t ? r->temperature : 0.0), LG_OK);
    ref_int(b, "has_max_tokens", r->has_max_tokens);
    ref_int(b, "max_tokens", r->has_max_tokens ? r->max_tokens : 0);
    ref_int(b, "stream", r->stream);
    ref_str(b, "request_messages", r->request_messages, "");
    ref_str(b, "request_params", r->request_params, "");
    ref_str(b, "response_content", r->response_content, "");
    ref_str(b, "finish_reason", r->finish_reason, "");
    ref_int(b, "prompt_tokens", r->prompt_tokens);
    ref_int(b, "completion_tokens", r->completion_tokens);
    ref_int(b, "cached_tokens", r->cached_tokens);
    ref_int(b, "total_tokens", r->total_tokens);
    ref_int(b, "estimated_cost_nano_usd", r->estimated_cost_nano_usd);
    ref_str(b, "usage_source", lg_record_usage_source_name(r->usage_source), "");
    ref_int(b, "price_missing", r->price_missing);
    ref_int(b, "end_time_ms", r->end_time_ms);
    ref_int(b, "duration_ms", r->duration_ms);
    ref_int(b, "time_to_first_token_ms", r->time_to_first_token_ms);
    ref_str(b, "status", lg_record_status_name(r->status), "");
    ref_str(b, "error_message", r->error_message, "");
    ref_str(b, "metadata", r->metadata, "{}");
}

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static int64_t rnd_i64(uint64_t *s)
{
    static const int64_t edge[] = {0,  1,   -1,  9,    10,   99,   100, -9, -10,
                                   INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1,
                                   INT64_C(999999999999999999), INT64_C(1000000000000000000),
                                   INT64_C(-1000000000000000000), INT64_C(1793491200000)};
    uint64_t k = rnd(s);
    switch (k % 4) {
    case 0:
        return edge[(k >> 8) % (sizeof(edge) / sizeof(edge[0]))];
    case 1:
        return (int64_t)(rnd(s) % 100000) - 1000;
    default: {
        uint64_t u = rnd(s) >> (k >> 8) % 64; /* every magnitude */
        int64_t v;
        memcpy(&v, &u, sizeof(v));
        return v; /* the shift by 0 gives negative values too */
    }
    }
}

static double rnd_double(uint64_t *s)
{
    static const double edge[] = {0.0,     -0.0,    0.1,     0.7,       1.0,      2.0,
                                  1e-4,    1e-5,    9.99e-5, 1e-6,      1e-7,     1e15,
                                  1e16,    1e17,    1e22,    123456.789, 0.5,     0.25,
                                  DBL_MIN, DBL_MAX, DBL_TRUE_MIN, DBL_EPSILON, 4503599627370495.5,
                                  4503599627370496.0, 9007199254740993.0, 0.30000000000000004,
                                  99999999999999999.0, 9.9999999999999995e-5, 1.0000000000000001e-6,
                                  NAN,     INFINITY, -INFINITY, 1.5,  2.675};
    uint64_t k = rnd(s);
    double d;
    switch (k % 6) {
    case 0:
        d = edge[(k >> 8) % (sizeof(edge) / sizeof(edge[0]))];
        break;
    case 1: /* what callers send: k / 10^d */
        d = (double)(rnd(s) % 201) / (double)((k >> 8) % 3 == 0 ? 10 : 100);
        break;
    case 2: { /* any bit pattern: subnormals, NaNs, huge */
        uint64_t u = rnd(s);
        memcpy(&d, &u, sizeof(d));
        break;
    }
    case 3: /* uniform in [0, 2) */
        d = (double)(rnd(s) >> 11) * 0x1p-52;
        break;
    case 4: { /* a random mantissa at an exponent near the fast range's edges */
        uint64_t u = (rnd(s) & ((UINT64_C(1) << 52) - 1)) |
                     ((uint64_t)(1023 - 25 + (int)((k >> 8) % 80)) << 52);
        memcpy(&d, &u, sizeof(d));
        break;
    }
    default: { /* dyadic: ties in the 17th digit */
        d = ldexp((double)(rnd(s) % (UINT64_C(1) << 53)), -(int)((k >> 8) % 80));
        break;
    }
    }
    return (k >> 20) % 5 == 0 ? -d : d;
}

/* A string of |len| random bytes (no NUL: the record's strings are C strings) drawn from a
 * mode: plain ASCII, text with escapes, UTF-8 (valid and invalid), or any byte. */
static char *rnd_str(uint64_t *s, size_t len)
{
    static const char *const pieces[] = {"\xc3\xa9", "\xf0\x9f\x98\x80", "\xe2\x82\xac", "\xff",
                                         "\xc3", "\x80\x80", "\"", "\\", "\n", "\t", "\r",
                                         "\x01", "\x1f", "\x7f", "\b", "\f", " ", "lorem "};
    char *p = malloc(len + 1);
    assert_non_null(p);
    uint64_t mode = rnd(s) % 4;
    size_t i = 0;
    while (i < len) {
        uint64_t k = rnd(s);
        if (mode == 0 || (mode == 1 && k % 16 != 0)) {
            p[i++] = (char)(' ' + (k >> 8) % 95 == '"' ? 'q' : ' ' + (k >> 8) % 95);
            if (p[i - 1] == '\\') {
                p[i - 1] = 'b';
            }
        } else if (mode == 3) {
            p[i++] = (char)(1 + (k >> 8) % 255);
        } else {
            const char *x = pieces[(k >> 8) % (sizeof(pieces) / sizeof(pieces[0]))];
            for (; *x != 0 && i < len; x++) {
                p[i++] = *x;
            }
        }
    }
    p[len] = 0;
    return p;
}

static size_t rnd_len(uint64_t *s)
{
    uint64_t k = rnd(s);
    switch (k % 8) {
    case 0:
        return 0;
    case 1:
        return 1 + (k >> 8) % 3000; /* bodies, past the inline area */
    case 2:
        return 200 + (k >> 8) % 120; /* around the inline limit */
    default:
        return (k >> 8) % 70; /* crossing 8- and 16-byte blocks at each offset */
    }
}

/* Fills |r| (from lg_record_new) at random: strings set, left NULL, or assigned directly
 * as an lg_malloc'd copy. */
static void rnd_record(struct lg_record *r, uint64_t *s)
{
    char **fields[] = {&r->request_id,       &r->stream_id,        &r->user_id,
                       &r->conversation_id,  &r->agent_id,         &r->provider_config_id,
                       &r->provider,         &r->model,            &r->request_messages,
                       &r->request_params,   &r->response_content, &r->finish_reason,
                       &r->error_message,    &r->metadata};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        uint64_t k = rnd(s);
        if (k % 6 == 0) {
            continue; /* NULL */
        }
        size_t len = rnd_len(s);
        char *v = rnd_str(s, len);
        if (k % 6 == 1) {
            *fields[i] = lg_strdup(v);
            assert_non_null(*fields[i]);
        } else {
            assert_int_equal(lg_record_set_str(fields[i], v, len), LG_OK);
        }
        free(v);
    }
    uint64_t k = rnd(s);
    r->has_temperature = k % 5 != 0;
    r->temperature = rnd_double(s);
    r->has_max_tokens = (k >> 3) % 3 != 0;
    r->max_tokens = rnd_i64(s);
    r->stream = (k >> 5) & 1;
    r->price_missing = (k >> 6) & 1;
    r->status = (enum lg_record_status)((k >> 7) % 5); /* 4: out of range on purpose */
    r->usage_source = (enum lg_record_usage_source)((k >> 10) % 3);
    r->prompt_tokens = rnd_i64(s);
    r->completion_tokens = rnd_i64(s);
    r->cached_tokens = rnd_i64(s);
    r->total_tokens = rnd_i64(s);
    r->estimated_cost_nano_usd = rnd_i64(s);
    r->start_time_ms = rnd_i64(s);
    r->end_time_ms = rnd_i64(s);
    r->duration_ms = rnd_i64(s);
    r->time_to_first_token_ms = rnd_i64(s);
}

static void check_same_as_reference(const struct lg_record *r, struct lg_buf *got,
                                    struct lg_buf *want)
{
    lg_buf_reset(got);
    lg_buf_reset(want);
    assert_int_equal(lg_buf_append_str(got, "prefix"), LG_OK);
    assert_int_equal(lg_buf_append_str(want, "prefix"), LG_OK);
    assert_int_equal(lg_record_encode_row(r, got), LG_OK);
    ref_encode_row(r, want);
    if (got->len != want->len || memcmp(got->data, want->data, got->len) != 0) {
        print_error("got  %s\nwant %s\n", (char *)got->data, (char *)want->data);
    }
    assert_int_equal(got->len, want->len);
    assert_memory_equal(got->data, want->data, got->len);
    assert_int_equal(got->data[got->len], 0);
    /* The JSON line: the same row, closed. */
    size_t n = want->len, row = n - strlen("prefix");
    assert_int_equal(lg_record_encode_json(r, got), LG_OK);
    assert_int_equal(got->len, n + row + 2);
    assert_memory_equal(got->data + n, want->data + strlen("prefix"), row);
    assert_memory_equal(got->data + n + row, "}\n", 2);
}

static void test_record_encode_matches_reference(void **state)
{
    (void)state;
    uint64_t seed = UINT64_C(0x9e3779b97f4a7c15);
    struct lg_buf got, want;
    lg_buf_init(&got, 1u << 20);
    lg_buf_init(&want, 1u << 20);
    for (int i = 0; i < 4000; i++) {
        struct lg_record *r = NULL;
        assert_int_equal(lg_record_new(&r), LG_OK);
        rnd_record(r, &seed);
        check_same_as_reference(r, &got, &want);
        struct lg_record *c = NULL;
        assert_int_equal(lg_record_dup(r, &c), LG_OK);
        check_same_as_reference(c, &got, &want);
        lg_record_free(c);
        lg_record_free(r);
    }
    lg_buf_deinit(&got);
    lg_buf_deinit(&want);
}

/* The temperature's text: "%.17g" for many doubles of every kind (the encoder formats the
 * common ones itself). Non-finite values are stored as absent: has_temperature 0 and
 * temperature 0. */
static void test_record_temperature_text(void **state)
{
    (void)state;
    uint64_t seed = 12345;
    struct lg_record *r = NULL;
    assert_int_equal(lg_record_new(&r), LG_OK);
    r->has_temperature = true;
    struct lg_buf got, want;
    lg_buf_init(&got, 4096);
    lg_buf_init(&want, 4096);
    for (int i = 0; i < 100000; i++) {
        r->temperature = rnd_double(&seed);
        check_same_as_reference(r, &got, &want);
    }
    /* Every k/10^d with small d, as callers send them. */
    for (int d = 0; d <= 6; d++) {
        for (int k = -2000; k <= 2000; k++) {
            r->temperature = (double)k / pow(10.0, d);
            check_same_as_reference(r, &got, &want);
        }
    }
    r->temperature = NAN;
    lg_buf_reset(&got);
    assert_int_equal(lg_record_encode_row(r, &got), LG_OK);
    assert_non_null(strstr((char *)got.data, "\"has_temperature\":0,\"temperature\":0,"));
    r->temperature = -0.0;
    lg_buf_reset(&got);
    assert_int_equal(lg_record_encode_row(r, &got), LG_OK);
    assert_non_null(strstr((char *)got.data, "\"has_temperature\":1,\"temperature\":-0,"));
    lg_buf_deinit(&got);
    lg_buf_deinit(&want);
    lg_record_free(r);
}

/* Caps: LG_ERR_TOO_LARGE exactly when the row does not fit (however much room the worst
 * case would want), |out| unchanged; LG_ERR_NOMEM when the buffer cannot grow. */
static void test_record_encode_cap_exact(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_buf b;
    lg_buf_init(&b, 1u << 20);
    assert_int_equal(lg_record_encode_json(r, &b), LG_OK);
    size_t n = b.len;
    lg_buf_deinit(&b);
    lg_buf_init(&b, n + 3);
    assert_int_equal(lg_buf_append_str(&b, "abc"), LG_OK);
    assert_int_equal(lg_record_encode_json(r, &b), LG_OK);
    assert_int_equal(b.len, n + 3);
    lg_buf_deinit(&b);
    lg_buf_init(&b, n + 2);
    assert_int_equal(lg_buf_append_str(&b, "abc"), LG_OK);
    assert_int_equal(lg_record_encode_json(r, &b), LG_ERR_TOO_LARGE);
    assert_int_equal(b.len, 3);
    assert_string_equal((char *)b.data, "abc");
    assert_int_equal(lg_record_encode_row(r, &b), LG_OK); /* the open row is 2 shorter */
    lg_buf_deinit(&b);
    lg_buf_init(&b, 1u << 20);
    lg_test_fail_after(0);
    assert_int_equal(lg_record_encode_row(r, &b), LG_ERR_NOMEM);
    assert_int_equal(b.len, 0);
    lg_test_fail_after(-1);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

/* ---- one allocation per record ---------------------------------------------------------- */

static void test_record_new_is_one_allocation(void **state)
{
    (void)state;
    struct lg_record *r = NULL;
    lg_test_fail_after(0);
    assert_int_equal(lg_record_new(&r), LG_ERR_NOMEM);
    lg_test_fail_after(1); /* the record; every small string goes in its area */
    assert_int_equal(lg_record_new(&r), LG_OK);
    assert_int_equal(r->time_to_first_token_ms, -1);
    assert_null(r->request_id);
    assert_int_equal(lg_record_set_str(&r->request_id, "req-1", 5), LG_OK);
    assert_int_equal(lg_record_set_str(&r->metadata, "{\"k\":\"v\"}", 9), LG_OK);
    assert_int_equal(lg_record_set_str(&r->model, "gpt-x", 5), LG_OK);
    assert_string_equal(r->request_id, "req-1");
    assert_string_equal(r->metadata, "{\"k\":\"v\"}");
    /* A body does not fit the area: its own block, and that allocation can fail, leaving
     * the field as it was. */
    char big[4000];
    memset(big, 'b', sizeof(big));
    assert_int_equal(lg_record_set_str(&r->response_content, big, sizeof(big)),
                     LG_ERR_NOMEM);
    assert_null(r->response_content);
    lg_test_fail_after(-1);
    assert_int_equal(lg_record_set_str(&r->response_content, big, sizeof(big)), LG_OK);
    assert_int_equal(strlen(r->response_content), sizeof(big));
    lg_record_free(r); /* cmocka: a bad free or a leak fails the test */
}

static void test_record_set_str_replaces(void **state)
{
    (void)state;
    struct lg_record *r = NULL;
    assert_int_equal(lg_record_new(&r), LG_OK);
    /* Replacing a string in the area (not freed: it is part of the record's block). */
    assert_int_equal(lg_record_set_str(&r->model, "model-a", 7), LG_OK);
    assert_int_equal(lg_record_set_str(&r->model, "model-bb", 8), LG_OK);
    assert_string_equal(r->model, "model-bb");
    /* From its own bytes. */
    assert_int_equal(lg_record_set_str(&r->model, r->model + 6, 2), LG_OK);
    assert_string_equal(r->model, "bb");
    /* To NULL, then back. */
    assert_int_equal(lg_record_set_str(&r->model, NULL, 0), LG_OK);
    assert_null(r->model);
    /* Embedded NUL: copied as given (the row stops at the NUL, as before). */
    assert_int_equal(lg_record_set_str(&r->user_id, "u\0x", 3), LG_OK);
    assert_memory_equal(r->user_id, "u\0x", 4);
    /* Many replacements: the area fills, the rest go to their own blocks, all freed. */
    char v[200];
    for (int i = 0; i < 100; i++) {
        int n = snprintf(v, sizeof(v), "%0*d", 10 + i, i);
        assert_int_equal(lg_record_set_str(&r->stream_id, v, (size_t)n), LG_OK);
        assert_string_equal(r->stream_id, v);
        assert_int_equal(lg_record_set_str(&r->agent_id, r->stream_id, (size_t)n), LG_OK);
    }
    /* The last field of the struct too (the lookup from a field to its record). */
    assert_int_equal(lg_record_set_str(&r->metadata, "{}", 2), LG_OK);
    assert_int_equal(lg_record_set_str(&r->error_message, "e", 1), LG_OK);
    assert_int_equal(lg_record_set_str(&r->request_id, "r", 1), LG_OK);
    lg_record_free(r);
}

/* A caller may still assign an lg_malloc'd string to a field: the record frees it. */
static void test_record_direct_assignment(void **state)
{
    (void)state;
    struct lg_record *r = NULL;
    assert_int_equal(lg_record_new(&r), LG_OK);
    r->provider = lg_strdup("openai");
    assert_non_null(r->provider);
    assert_int_equal(lg_record_set_str(&r->finish_reason, "stop", 4), LG_OK);
    r->error_message = lg_strdup("direct");
    /* set_str over a directly assigned string frees it. */
    assert_int_equal(lg_record_set_str(&r->error_message, "via set_str", 11), LG_OK);
    r->finish_reason = lg_strdup("length"); /* the area copy is abandoned, not freed */
    struct lg_record *c = NULL;
    assert_int_equal(lg_record_dup(r, &c), LG_OK);
    assert_string_equal(c->provider, "openai");
    assert_string_equal(c->finish_reason, "length");
    assert_string_equal(c->error_message, "via set_str");
    assert_ptr_not_equal(c->provider, r->provider);
    /* The copy's own strings can be replaced, and a copy of a copy made. */
    assert_int_equal(lg_record_set_str(&c->provider, "demo", 4), LG_OK);
    struct lg_record *cc = NULL;
    assert_int_equal(lg_record_dup(c, &cc), LG_OK);
    assert_string_equal(cc->provider, "demo");
    lg_record_free(cc);
    lg_record_free(c);
    lg_record_free(r);
}

/* ---- RowBinary ---------------------------------------------------------------------- */

/* The JSON line of |r| (NUL-terminated copy; caller frees). */
static char *json_line(const struct lg_record *r)
{
    struct lg_buf b;
    lg_buf_init(&b, 64u << 20);
    assert_int_equal(lg_record_encode_json(r, &b), LG_OK);
    char *s = strndup((const char *)b.data, b.len);
    lg_buf_deinit(&b);
    return s;
}

/* Encodes |r| as RowBinary, decodes it back and asserts both records give the same JSON
 * line (every column, as the JSON encoder sees it). */
static void assert_rowbinary_round_trip(const struct lg_record *r)
{
    struct lg_buf b;
    lg_buf_init(&b, 64u << 20);
    assert_int_equal(lg_record_encode_rowbinary(r, &b), LG_OK);
    assert_int_equal(b.data[0], LG_RECORD_ROWBINARY_V1);
    assert_int_equal(lg_record_rowbinary_check(LG_RECORD_ROWBINARY_V1, b.data + 1, b.len - 1),
                     LG_OK);
    struct lg_record *back = NULL;
    assert_int_equal(lg_record_from_rowbinary(LG_RECORD_ROWBINARY_V1, b.data + 1, b.len - 1,
                                              &back),
                     LG_OK);
    char *want = json_line(r), *got = json_line(back);
    assert_string_equal(got, want);
    free(want);
    free(got);
    lg_record_free(back);
    lg_buf_deinit(&b);
}

static uint64_t le64_at(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

/* The bytes ClickHouse reads: version byte, then start_time_ms Int64 LE, request_id as a
 * LEB128 length and its bytes, ..., the UInt8 flags as one byte each, temperature as the
 * Float64's bytes; and the column list is the JSON row's keys in order. */
static void test_record_rowbinary_layout(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_record_encode_rowbinary(r, &b), LG_OK);
    const uint8_t *p = b.data;
    assert_int_equal(*p++, 0x01);
    assert_true(le64_at(p) == UINT64_C(1764165000123));
    p += 8;
    assert_int_equal(*p++, 5);
    assert_memory_equal(p, "req-1", 5);
    p += 5;
    assert_int_equal(*p++, 0); /* stream_id: NULL is "" */
    assert_int_equal(*p++, 7);
    assert_memory_equal(p, "u\"ser\\1", 7); /* no escaping */
    p += 7;
    for (int i = 0; i < 4; i++) { /* conversation, agent, provider_config, provider */
        assert_int_equal(*p++, 0);
    }
    assert_int_equal(*p++, 5);
    assert_memory_equal(p, "gpt-x", 5);
    p += 5;
    assert_int_equal(*p++, 1); /* has_temperature UInt8 */
    double t;
    uint64_t bits = le64_at(p);
    memcpy(&t, &bits, sizeof(t));
    assert_true(t == 0.7);
    p += 8;
    assert_int_equal(*p++, 1); /* has_max_tokens */
    assert_true(le64_at(p) == 256);
    p += 8;
    assert_int_equal(*p++, 1); /* stream */
    assert_int_equal(*p, strlen(r->request_messages));

    /* Column list = the JSON keys in order (scanned from a row without quotes in values). */
    struct lg_record *plain;
    assert_int_equal(lg_record_new(&plain), LG_OK);
    char *line = json_line(plain);
    char keys[2048] = "";
    for (char *q = line; (q = strstr(q, "\":")) != NULL; q += 2) {
        char *k = q;
        while (k > line && k[-1] != '"') {
            k--;
        }
        if (keys[0] != 0) {
            strcat(keys, ",");
        }
        strncat(keys, k, (size_t)(q - k));
    }
    free(line);
    assert_string_equal(lg_record_rowbinary_columns(LG_RECORD_ROWBINARY_V1), keys);
    assert_null(lg_record_rowbinary_columns(2));
    lg_record_free(plain);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

static void test_record_rowbinary_round_trip(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    assert_rowbinary_round_trip(r);
    /* Every string set (quotes, backslashes, control bytes, UTF-8 and invalid UTF-8), the
     * extremes of every integer, a negative zero temperature. */
    char **strs[] = {&r->request_id, &r->stream_id, &r->user_id, &r->conversation_id,
                     &r->agent_id, &r->provider_config_id, &r->provider, &r->model,
                     &r->request_messages, &r->request_params, &r->response_content,
                     &r->finish_reason, &r->error_message, &r->metadata};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        char v[64];
        int n = snprintf(v, sizeof(v), "f%zu \"q\" \\ \x01\x1f\x7f h\xc3\xa9 \xff\xfe", i);
        assert_int_equal(lg_record_set_str(strs[i], v, (size_t)n), LG_OK);
    }
    r->temperature = -0.0;
    r->max_tokens = INT64_MIN;
    r->prompt_tokens = INT64_MAX;
    r->completion_tokens = -1;
    r->cached_tokens = 0;
    r->total_tokens = INT64_C(1) << 40;
    r->estimated_cost_nano_usd = INT64_MIN;
    r->price_missing = true;
    r->end_time_ms = -5;
    r->duration_ms = 1;
    r->time_to_first_token_ms = 123;
    for (int st = 0; st <= 3; st++) {
        r->status = (enum lg_record_status)st;
        r->usage_source = st % 2 ? LG_RECORD_USAGE_REPORTED : LG_RECORD_USAGE_ESTIMATED;
        assert_rowbinary_round_trip(r);
    }
    /* A NaN temperature is stored as absent, as in JSON. */
    r->temperature = NAN;
    assert_rowbinary_round_trip(r);
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_record_encode_rowbinary(r, &b), LG_OK);
    struct lg_record *back;
    assert_int_equal(
        lg_record_from_rowbinary(LG_RECORD_ROWBINARY_V1, b.data + 1, b.len - 1, &back), LG_OK);
    assert_false(back->has_temperature);
    assert_true(back->temperature == 0.0);
    lg_record_free(back);
    /* An empty record too (every string NULL, metadata "{}"). */
    struct lg_record *e;
    assert_int_equal(lg_record_new(&e), LG_OK);
    assert_rowbinary_round_trip(e);
    lg_record_free(e);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

/* A 3 MiB body: a three-byte LEB128 length, and the row round-trips; a cap too small for
 * the row leaves the buffer as it was. */
static void test_record_rowbinary_huge_body_and_cap(void **state)
{
    (void)state;
    size_t n = 3u << 20;
    struct lg_record *r = make_big_record(n);
    assert_rowbinary_round_trip(r);
    struct lg_buf b;
    lg_buf_init(&b, n);
    assert_int_equal(lg_buf_append_str(&b, "keep"), LG_OK);
    assert_int_equal(lg_record_encode_rowbinary(r, &b), LG_ERR_TOO_LARGE);
    assert_int_equal(b.len, 4);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

/* lg_record_rowbinary_check accepts exactly one whole row: every truncation, a byte more,
 * an overlong length and an unknown version are refused; so is decoding an unknown enum. */
static void test_record_rowbinary_check(void **state)
{
    (void)state;
    struct lg_record *r = make_record();
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_record_encode_rowbinary(r, &b), LG_OK);
    const uint8_t *cols = b.data + 1;
    size_t len = b.len - 1;
    assert_int_equal(lg_record_rowbinary_check(1, cols, len), LG_OK);
    for (size_t k = 0; k < len; k++) {
        assert_int_equal(lg_record_rowbinary_check(1, cols, k), LG_ERR_INVALID);
    }
    uint8_t *more = malloc(len + 1);
    memcpy(more, cols, len);
    more[len] = 0;
    assert_int_equal(lg_record_rowbinary_check(1, more, len + 1), LG_ERR_INVALID);
    assert_int_equal(lg_record_rowbinary_check(2, cols, len), LG_ERR_INVALID);
    /* request_id's length (after the 8 bytes of start_time_ms) made to claim past the end */
    memcpy(more, cols, len);
    more[8] = 0xff;
    assert_int_equal(lg_record_rowbinary_check(1, more, len), LG_ERR_INVALID);
    /* an 11-byte LEB128 length */
    uint8_t overlong[8 + 11] = {0};
    memset(overlong + 8, 0x80, 11);
    assert_int_equal(lg_record_rowbinary_check(1, overlong, sizeof(overlong)), LG_ERR_INVALID);
    free(more);
    /* status "sucess" (unknown): checks, but does not decode */
    assert_int_equal(lg_record_set_str(&r->error_message, "x", 1), LG_OK);
    lg_buf_reset(&b);
    assert_int_equal(lg_record_encode_rowbinary(r, &b), LG_OK);
    uint8_t *st = memmem(b.data, b.len, "\x09" "cancelled", 10);
    assert_non_null(st);
    memcpy(st + 1, "cancelleX", 9);
    struct lg_record *back = NULL;
    assert_int_equal(lg_record_rowbinary_check(1, b.data + 1, b.len - 1), LG_OK);
    assert_int_equal(lg_record_from_rowbinary(1, b.data + 1, b.len - 1, &back), LG_ERR_INVALID);
    assert_null(back);
    lg_buf_deinit(&b);
    lg_record_free(r);
}

static void test_record_file_sink_writes_lines(void **state)
{
    (void)state;
    char path[] = "/tmp/lg_test_record_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct lg_record_sink sink;
    assert_int_equal(lg_record_file_sink_open(&sink, path), LG_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lg_record_sink_enqueue(&sink, make_record()), LG_OK);
    }
    lg_record_sink_close(&sink);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        json_t *j = json_loads(line, 0, NULL);
        assert_non_null(j);
        json_decref(j);
        lines++;
    }
    fclose(f);
    unlink(path);
    assert_int_equal(lines, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_record_encode_every_field, setup),
        cmocka_unit_test_setup(test_record_row_is_open, setup),
        cmocka_unit_test_setup(test_record_cap_leaves_buffer, setup),
        cmocka_unit_test_setup(test_record_huge_body, setup),
        cmocka_unit_test_setup(test_record_dup_and_nomem, setup),
        cmocka_unit_test_setup(test_record_encode_matches_reference, setup),
        cmocka_unit_test_setup(test_record_temperature_text, setup),
        cmocka_unit_test_setup(test_record_encode_cap_exact, setup),
        cmocka_unit_test_setup(test_record_new_is_one_allocation, setup),
        cmocka_unit_test_setup(test_record_set_str_replaces, setup),
        cmocka_unit_test_setup(test_record_direct_assignment, setup),
        cmocka_unit_test_setup(test_record_file_sink_writes_lines, setup),
        cmocka_unit_test_setup(test_record_rowbinary_layout, setup),
        cmocka_unit_test_setup(test_record_rowbinary_round_trip, setup),
        cmocka_unit_test_setup(test_record_rowbinary_huge_body_and_cap, setup),
        cmocka_unit_test_setup(test_record_rowbinary_check, setup),
    };
    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
