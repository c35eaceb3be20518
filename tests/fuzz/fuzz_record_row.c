/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_record_row (owner: fuzz): the shipper's row encoding of hostile billing records
 * (lg_record_encode_row / lg_record_encode_json) and their assembly into one insert body
 * (lg_batch_add / lg_batch_seal, plain and gzip).
 *
 * Input: the first FUZZ_NUM_BYTES bytes fill the numeric fields (any int64, any double
 * including NaN/inf, any enum value, flags); the rest is split at NUL bytes into the string
 * fields (any bytes: quotes, backslashes, control bytes, CR/LF, invalid UTF-8). One to four
 * records are made, record k taking the strings rotated by k.
 * Properties (abort() on violation): the body of the sealed batch (gunzipped when gzip) is
 * exactly one line per record, each line a JSON object (jansson) with the batch_id of the
 * batch, the row's integers exact and, when the input strings are valid UTF-8, its strings
 * equal to the record's; with invalid UTF-8 the structure must still hold (bytes >= 0x80
 * are mapped to 'x' before parsing: the encoder passes them through, ClickHouse strings
 * are bytes); lg_record_encode_json gives the same row as one line. RowBinary: each
 * record's row passes lg_record_rowbinary_check, decodes (lg_record_from_rowbinary) to a
 * record with the same JSON line, and no prefix of it passes the check; the raw input
 * itself, taken as a row's columns, is checked and decoded without a fault.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zlib.h>

#include "lg_batch.h"
#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_record.h"

#define FUZZ_NUM_BYTES   64
#define FUZZ_MAX_RECORDS 4
#define FUZZ_NSTR        14
#define FUZZ_ROW_MAX     (1024u * 1024u)
#define FUZZ_GUNZIP_MAX  (8u * 1024u * 1024u)

#define LG_FUZZ_SMOKE_ITERATIONS 10000
#include "lg_fuzz_smoke.h"
#include "lg_fuzz_utf8.h"

static const char *const fuzz_str_names[FUZZ_NSTR] = {
    "request_id", "stream_id", "user_id", "conversation_id", "agent_id",
    "provider_config_id", "provider", "model", "request_messages", "request_params",
    "response_content", "finish_reason", "error_message", "metadata"};

static char **fuzz_str_field(struct lg_record *r, size_t i)
{
    char **f[FUZZ_NSTR] = {&r->request_id,       &r->stream_id,        &r->user_id,
                           &r->conversation_id,  &r->agent_id,         &r->provider_config_id,
                           &r->provider,         &r->model,            &r->request_messages,
                           &r->request_params,   &r->response_content, &r->finish_reason,
                           &r->error_message,    &r->metadata};
    return f[i];
}

static int64_t get_i64(const uint8_t *p)
{
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(v); i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    int64_t s;
    memcpy(&s, &v, sizeof(s));
    return s;
}

static void check_int(json_t *row, const char *key, int64_t want)
{
    json_t *v = json_object_get(row, key);
    if (!json_is_integer(v) || json_integer_value(v) != want) {
        abort();
    }
}

/* Checks one body line against |r|. */
static void check_line(const uint8_t *line, size_t len, const struct lg_record *r,
                       const char *batch_id)
{
    if (memchr(line, '\n', len) != NULL || memchr(line, '\r', len) != NULL) {
        abort();
    }
    bool utf8 = lg_fuzz_valid_utf8(line, len);
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        abort();
    }
    for (size_t i = 0; i < len; i++) {
        copy[i] = (!utf8 && line[i] >= 0x80) ? 'x' : (char)line[i];
    }
    json_error_t e;
    json_t *row = json_loadb(copy, len, 0, &e);
    free(copy);
    if (!json_is_object(row)) {
        abort();
    }
    json_t *bid = json_object_get(row, "batch_id");
    if (batch_id != NULL && (!json_is_string(bid) || strcmp(json_string_value(bid), batch_id))) {
        abort();
    }
    check_int(row, "prompt_tokens", r->prompt_tokens);
    check_int(row, "completion_tokens", r->completion_tokens);
    check_int(row, "estimated_cost_nano_usd", r->estimated_cost_nano_usd);
    check_int(row, "start_time_ms", r->start_time_ms);
    check_int(row, "time_to_first_token_ms", r->time_to_first_token_ms);
    json_t *t = json_object_get(row, "temperature");
    if (!json_is_number(t) || (r->has_temperature && isfinite(r->temperature) &&
                               json_number_value(t) != r->temperature)) {
        abort();
    }
    if (utf8) {
        for (size_t i = 0; i < FUZZ_NSTR; i++) {
            const char *want = *fuzz_str_field((struct lg_record *)(uintptr_t)r, i);
            json_t *v = json_object_get(row, fuzz_str_names[i]);
            if (!json_is_string(v)) {
                abort();
            }
            if (want == NULL) {
                want = i == FUZZ_NSTR - 1 ? "{}" : "";
            }
            if (strcmp(json_string_value(v), want) != 0) {
                abort();
            }
        }
    }
    json_decref(row);
}

/* Gunzips |in| into |out| (capped). Returns false when zlib refuses it. */
static bool gunzip(struct lg_slice in, struct lg_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        return false;
    }
    z.next_in = (Bytef *)(uintptr_t)in.ptr;
    z.avail_in = (uInt)in.len;
    int zr = Z_OK;
    while (zr == Z_OK) {
        uint8_t *dst = lg_buf_reserve(out, 65536);
        if (dst == NULL) {
            break;
        }
        z.next_out = dst;
        z.avail_out = 65536;
        zr = inflate(&z, Z_NO_FLUSH);
        lg_buf_commit(out, 65536 - z.avail_out);
    }
    inflateEnd(&z);
    return zr == Z_STREAM_END;
}

static void fill_record(struct lg_record *r, const uint8_t *num, char *const *strs,
                        const size_t *lens, size_t nstr, size_t k)
{
    r->has_temperature = num[0] & 1;
    r->has_max_tokens = (num[0] >> 1) & 1;
    r->stream = (num[0] >> 2) & 1;
    r->price_missing = (num[0] >> 3) & 1;
    r->status = (enum lg_record_status)(num[1] % 5); /* 4 is out of range on purpose */
    r->usage_source = (enum lg_record_usage_source)(num[2] % 3);
    memcpy(&r->temperature, num + 8, sizeof(r->temperature));
    r->max_tokens = get_i64(num + 16);
    r->prompt_tokens = get_i64(num + 24);
    r->completion_tokens = get_i64(num + 32) ^ (int64_t)k;
    r->cached_tokens = get_i64(num + 40);
    r->total_tokens = r->prompt_tokens;
    r->estimated_cost_nano_usd = get_i64(num + 48);
    r->start_time_ms = get_i64(num + 56);
    r->end_time_ms = r->start_time_ms;
    r->duration_ms = (int64_t)num[3];
    r->time_to_first_token_ms = (num[4] & 1) ? -1 : (int64_t)num[5];
    for (size_t i = 0; i < FUZZ_NSTR && nstr > 0; i++) {
        size_t s = (i + k) % nstr;
        if (lg_record_set_str(fuzz_str_field(r, i), strs[s], lens[s]) != LG_OK) {
            abort();
        }
    }
}

/* RowBinary properties of |r|, whose JSON line is |line|. */
static void check_rowbinary(const struct lg_record *r, const struct lg_buf *line)
{
    struct lg_buf rb, back_line;
    lg_buf_init(&rb, FUZZ_ROW_MAX);
    lg_buf_init(&back_line, FUZZ_ROW_MAX);
    if (lg_record_encode_rowbinary(r, &rb) != LG_OK || rb.len < 2 ||
        rb.data[0] != LG_RECORD_ROWBINARY_V1 ||
        lg_record_rowbinary_check(LG_RECORD_ROWBINARY_V1, rb.data + 1, rb.len - 1) != LG_OK) {
        abort();
    }
    /* A few prefixes (every one would be quadratic on big inputs). */
    for (size_t cut = 1; cut <= 4 && cut < rb.len; cut++) {
        if (lg_record_rowbinary_check(LG_RECORD_ROWBINARY_V1, rb.data + 1, rb.len - 1 - cut) ==
            LG_OK) {
            abort();
        }
    }
    struct lg_record *back = NULL;
    if (lg_record_from_rowbinary(LG_RECORD_ROWBINARY_V1, rb.data + 1, rb.len - 1, &back) !=
            LG_OK ||
        lg_record_encode_json(back, &back_line) != LG_OK || back_line.len != line->len ||
        memcmp(back_line.data, line->data, line->len) != 0) {
        abort();
    }
    lg_record_free(back);
    lg_buf_deinit(&rb);
    lg_buf_deinit(&back_line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Any bytes as a spooled row's columns: no fault, and what passes the check decodes or
     * is refused for its enum names only. */
    struct lg_record *any = NULL;
    int crc = lg_record_rowbinary_check(LG_RECORD_ROWBINARY_V1, data, size);
    int drc = lg_record_from_rowbinary(LG_RECORD_ROWBINARY_V1, data, size, &any);
    if ((crc != LG_OK && drc == LG_OK) || (drc == LG_OK) != (any != NULL)) {
        abort();
    }
    lg_record_free(any);

    if (size < FUZZ_NUM_BYTES) {
        return 0;
    }
    const uint8_t *num = data;
    /* Split the rest at NUL bytes (lg_record strings are C strings). */
    char *strs[FUZZ_NSTR];
    size_t lens[FUZZ_NSTR], nstr = 0;
    size_t off = FUZZ_NUM_BYTES;
    while (off <= size && nstr < FUZZ_NSTR) {
        const uint8_t *end = memchr(data + off, 0, size - off);
        size_t n = end != NULL ? (size_t)(end - (data + off)) : size - off;
        strs[nstr] = (char *)(uintptr_t)(data + off);
        lens[nstr++] = n;
        off += n + 1;
    }
    size_t nrec = 1 + (size_t)(num[6] % FUZZ_MAX_RECORDS);
    bool gzip = (num[7] & 1) != 0;
    struct lg_record *recs[FUZZ_MAX_RECORDS] = {NULL};
    struct lg_batch_limits lim = {FUZZ_MAX_RECORDS, 64u * 1024u * 1024u, 1000};
    lg_batch *b = NULL;
    if (lg_batch_new(&b, &lim) != LG_OK) {
        abort();
    }
    struct lg_buf row, line;
    lg_buf_init(&row, FUZZ_ROW_MAX);
    lg_buf_init(&line, FUZZ_ROW_MAX);
    for (size_t k = 0; k < nrec; k++) {
        if (lg_record_new(&recs[k]) != LG_OK) {
            abort();
        }
        fill_record(recs[k], num, strs, lens, nstr, k);
        lg_buf_reset(&row);
        lg_buf_reset(&line);
        if (lg_record_encode_row(recs[k], &row) != LG_OK ||
            lg_record_encode_json(recs[k], &line) != LG_OK) {
            abort(); /* the cap is far above any input here */
        }
        if (line.len < 2 || line.data[line.len - 1] != '\n') {
            abort();
        }
        check_line(line.data, line.len - 1, recs[k], NULL);
        check_rowbinary(recs[k], &line);
        if (lg_batch_add(b, row.data, row.len, 0) != LG_OK) {
            abort();
        }
    }
    if (lg_batch_seal(b, gzip) != LG_OK) {
        abort();
    }
    struct lg_slice body = lg_batch_body(b);
    struct lg_buf plain;
    lg_buf_init(&plain, FUZZ_GUNZIP_MAX);
    if (gzip) {
        if (!gunzip(body, &plain)) {
            abort();
        }
    } else if (lg_buf_append(&plain, body.ptr, body.len) != LG_OK) {
        abort();
    }
    if (plain.len != lg_batch_body_raw_len(b)) {
        abort();
    }
    size_t at = 0, k = 0;
    while (at < plain.len) {
        const uint8_t *nl = memchr(plain.data + at, '\n', plain.len - at);
        if (nl == NULL || k >= nrec) {
            abort(); /* every row ends with a newline; no extra rows */
        }
        size_t n = (size_t)(nl - (plain.data + at));
        check_line(plain.data + at, n, recs[k], lg_batch_id(b));
        at += n + 1;
        k++;
    }
    if (k != nrec) {
        abort();
    }
    lg_buf_deinit(&plain);
    lg_buf_deinit(&row);
    lg_buf_deinit(&line);
    lg_batch_free(b);
    for (size_t i = 0; i < nrec; i++) {
        lg_record_free(recs[i]);
    }
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
static void fuzz_seed_one(lg_fuzz_emit_fn emit, void *ud, uint8_t f0, uint8_t nrec_gzip,
                          const char *strings, size_t slen)
{
    uint8_t buf[FUZZ_NUM_BYTES + 1024];
    memset(buf, 0, FUZZ_NUM_BYTES);
    buf[0] = f0;
    buf[1] = 1;
    buf[6] = nrec_gzip;
    buf[7] = nrec_gzip;
    double t = 0.7;
    memcpy(buf + 8, &t, sizeof(t));
    buf[16] = 64;
    buf[24] = 12;
    buf[32] = 34;
    buf[48] = 0x40;
    buf[49] = 0x42;
    buf[56] = 0x10;
    buf[62] = 0x01;
    memcpy(buf + FUZZ_NUM_BYTES, strings, slen);
    emit(buf, FUZZ_NUM_BYTES + slen, ud);
}

static void fuzz_seeds(lg_fuzz_emit_fn emit, void *ud)
{
    static const char plain[] =
        "req-1\0str-1\0alice\0conv\0agent\0default\0openai\0gpt-4o-mini\0"
        "[{\"role\":\"user\",\"content\":\"hi\"}]\0{\"temperature\":0.7}\0Hello!\0stop\0\0"
        "{\"team\":\"x\"}";
    static const char hostile[] =
        "r\"\\\n\r\x01\x1f\x7f\0s\xc3\xa9\xe2\x80\xa8\0u\xff\xfe\0\"},{\"x\":1\0a\0p\0o\0"
        "m\0[\0{\0\xf0\x9f\x98\x80\xed\xa0\x80\0len\0err\nline\0}";
    fuzz_seed_one(emit, ud, 0x0f, 0, plain, sizeof(plain) - 1);
    fuzz_seed_one(emit, ud, 0x05, 3, plain, sizeof(plain) - 1);
    fuzz_seed_one(emit, ud, 0x01, 2, hostile, sizeof(hostile) - 1);
    fuzz_seed_one(emit, ud, 0x00, 1, hostile, sizeof(hostile) - 1);
}
#endif
