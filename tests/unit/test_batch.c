/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "lg_batch.h"
#include "lg_err.h"
#include "lg_record.h"
#include "lg_spool.h"
#include "lg_test.h"

static int setup(void **state)
{
    (void)state;
    lg_test_use_cmocka_allocator();
    return 0;
}

/* The batch under test is made inside each test: cmocka checks blocks per test. */
static lg_batch *mk(void)
{
    struct lg_batch_limits lim = {3, 1000, 500};
    lg_batch *b = NULL;
    assert_int_equal(lg_batch_new(&b, &lim), LG_OK);
    return b;
}

static void add(lg_batch *b, const char *row, int64_t now, int want)
{
    assert_int_equal(lg_batch_add(b, (const uint8_t *)row, strlen(row), now), want);
}

static void test_batch_row_limit(void **state)
{
    (void)state;
    lg_batch *b = mk();
    assert_false(lg_batch_is_due(b, 0));
    add(b, "{\"a\":1", 0, LG_OK);
    add(b, "{\"a\":2", 0, LG_OK);
    assert_false(lg_batch_is_due(b, 10));
    add(b, "{\"a\":3", 0, LG_OK);
    assert_true(lg_batch_is_due(b, 10));
    add(b, "{\"a\":4", 0, LG_ERR_EXHAUSTED);
    assert_int_equal(lg_batch_count(b), 3);
    lg_batch_free(b);
}

static void test_batch_age_limit(void **state)
{
    (void)state;
    lg_batch *b = mk();
    assert_int_equal(lg_batch_ms_until_due(b, 0), INT64_MAX);
    add(b, "{\"a\":1", 100, LG_OK);
    assert_false(lg_batch_is_due(b, 599));
    assert_int_equal(lg_batch_ms_until_due(b, 400), 200);
    assert_true(lg_batch_is_due(b, 600));
    assert_int_equal(lg_batch_ms_until_due(b, 700), 0);
    lg_batch_free(b);
}

static void test_batch_byte_limit(void **state)
{
    (void)state;
    lg_batch *b = mk();
    char big[900];
    memset(big, 'x', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 1] = 0;
    add(b, big, 0, LG_OK);
    add(b, big, 0, LG_ERR_EXHAUSTED); /* would pass max_bytes */
    lg_batch_reset(b);
    char huge[1500];
    memset(huge, 'y', sizeof(huge) - 1);
    huge[0] = '{';
    huge[sizeof(huge) - 1] = 0;
    add(b, huge, 0, LG_OK); /* a single oversized row is accepted alone */
    assert_true(lg_batch_is_due(b, 0));
    add(b, "{", 0, LG_ERR_EXHAUSTED);
    add(b, "", 0, LG_ERR_INVALID);
    add(b, "x", 0, LG_ERR_INVALID);
    lg_batch_free(b);
}

static void test_batch_id_deterministic_and_body(void **state)
{
    (void)state;
    lg_batch *b = mk();
    add(b, "{\"a\":1", 0, LG_OK);
    add(b, "{\"a\":2", 0, LG_OK);
    assert_int_equal(lg_batch_seal(b, false), LG_OK);
    char id1[64];
    strcpy(id1, lg_batch_id(b));
    char want[256];
    snprintf(want, sizeof(want),
             "{\"a\":1,\"batch_id\":\"%s\"}\n{\"a\":2,\"batch_id\":\"%s\"}\n", id1, id1);
    struct lg_slice body = lg_batch_body(b);
    assert_int_equal(body.len, strlen(want));
    assert_memory_equal(body.ptr, want, body.len);
    /* Same rows, fresh batch: same id. */
    lg_batch_reset(b);
    add(b, "{\"a\":1", 5, LG_OK);
    add(b, "{\"a\":2", 6, LG_OK);
    assert_int_equal(lg_batch_seal(b, true), LG_OK);
    assert_string_equal(lg_batch_id(b), id1);
    /* The gzip body inflates to the same text. */
    body = lg_batch_body(b);
    uint8_t out[512];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)body.ptr;
    zs.avail_in = (uInt)body.len;
    zs.next_out = out;
    zs.avail_out = sizeof(out);
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t got = sizeof(out) - zs.avail_out;
    inflateEnd(&zs);
    assert_int_equal(got, strlen(want));
    assert_memory_equal(out, want, got);
    assert_int_equal(lg_batch_body_raw_len(b), strlen(want));
    lg_batch_free(b);
}

static void test_batch_remove_changes_id(void **state)
{
    (void)state;
    lg_batch *b = mk();
    add(b, "{\"a\":1", 0, LG_OK);
    add(b, "{\"bad\":", 0, LG_OK);
    add(b, "{\"a\":3", 0, LG_OK);
    assert_int_equal(lg_batch_seal(b, false), LG_OK);
    char id1[64];
    strcpy(id1, lg_batch_id(b));
    assert_int_equal(lg_batch_remove(b, 1), LG_OK);
    assert_int_equal(lg_batch_remove(b, 7), LG_ERR_INVALID);
    assert_int_equal(lg_batch_count(b), 2);
    struct lg_slice r = lg_batch_row(b, 1);
    assert_int_equal(r.len, 6);
    assert_memory_equal(r.ptr, "{\"a\":3", 6);
    assert_int_equal(lg_batch_seal(b, false), LG_OK);
    assert_string_not_equal(lg_batch_id(b), id1);
    /* The id after a removal is the id of the remaining rows, as a fresh batch of just them
     * would get (the removed row's digest leaves the list the id is hashed from). */
    char id2[64];
    strcpy(id2, lg_batch_id(b));
    lg_batch_reset(b);
    add(b, "{\"a\":1", 0, LG_OK);
    add(b, "{\"a\":3", 0, LG_OK);
    assert_int_equal(lg_batch_seal(b, true), LG_OK);
    assert_string_equal(lg_batch_id(b), id2);
    lg_batch_reset(b);
    assert_int_equal(lg_batch_seal(b, false), LG_ERR_INVALID);
    lg_batch_free(b);
}

/* The id is a hash of the rows' CRC-32s and lengths: lg_batch_add (CRC computed) and
 * lg_batch_add_crc with the spool's CRC give the same id; any changed byte, a swap of two
 * rows, or one row fewer changes it; and it is the given CRC that counts. */
static void test_batch_id_follows_row_crcs(void **state)
{
    (void)state;
    static const char *rows[] = {"{\"a\":1", "{\"a\":2", "{\"a\":3"};
    lg_batch *b = mk();
    char ids[6][64];
    for (int v = 0; v < 6; v++) {
        lg_batch_reset(b);
        for (int i = 0; i < (v == 5 ? 2 : 3); i++) { /* v5: one row fewer */
            const char *r = rows[v == 2 ? 2 - i : i];
            char tmp[16];
            snprintf(tmp, sizeof(tmp), "%s", r);
            if (v == 3 && i == 1) {
                tmp[5] = '7'; /* one changed byte */
            }
            size_t len = strlen(tmp);
            uint32_t crc = lg_spool_crc32(tmp, len);
            if (v == 4 && i == 0) {
                crc ^= 1; /* a wrong CRC: a different id, nothing worse */
            }
            if (v == 0 || v == 5) {
                assert_int_equal(lg_batch_add(b, (const uint8_t *)tmp, len, 0), LG_OK);
            } else {
                assert_int_equal(lg_batch_add_crc(b, (const uint8_t *)tmp, len, crc, 0),
                                 LG_OK);
            }
        }
        assert_int_equal(lg_batch_seal_stream(b), LG_OK);
        snprintf(ids[v], sizeof(ids[v]), "%s", lg_batch_id(b));
    }
    assert_string_equal(ids[0], ids[1]); /* v1: same rows through add_crc */
    for (int v = 2; v < 6; v++) {
        assert_string_not_equal(ids[v], ids[0]);
    }
    lg_batch_free(b);
}

static void test_batch_time_range(void **state)
{
    (void)state;
    lg_batch *b = mk();
    int64_t lo, hi;
    assert_false(lg_batch_time_range(b, &lo, &hi));
    add(b, "{\"a\":\"\\\"start_time_ms\\\":1\",\"start_time_ms\":1793491200500", 0, LG_OK);
    add(b, "{\"start_time_ms\":1793491300000,\"x\":1", 0, LG_OK);
    assert_true(lg_batch_time_range(b, &lo, &hi));
    assert_int_equal(lo, INT64_C(1793491200500));
    assert_int_equal(hi, INT64_C(1793491300000));
    /* A row without a time is another month's (1970-01: test_batch_never_spans_two_months) */
    add(b, "{\"no_time\":1", 0, LG_ERR_EXHAUSTED);
    lg_batch_reset(b);
    add(b, "{\"start_time_ms\":5", 0, LG_OK);
    assert_true(lg_batch_time_range(b, &lo, &hi));
    assert_int_equal(lo, 5);
    add(b, "{\"no_time\":1", 0, LG_OK);
    assert_false(lg_batch_time_range(b, &lo, &hi)); /* one row without: no narrowing */
    lg_batch_free(b);
}

static void test_batch_never_spans_two_months(void **state)
{
    (void)state;
    lg_batch *b = mk();
    /* 2026-10-31T23:59:59.999Z, then 2026-11-01T00:00:00.000Z. */
    add(b, "{\"start_time_ms\":1793491199999", 0, LG_OK);
    add(b, "{\"start_time_ms\":1793491100000", 0, LG_OK);
    add(b, "{\"start_time_ms\":1793491200000", 0, LG_ERR_EXHAUSTED);
    lg_batch_reset(b);
    add(b, "{\"start_time_ms\":1793491200000", 0, LG_OK);
    add(b, "{\"start_time_ms\":1796083199999", 0, LG_OK); /* 2026-11-30T23:59:59.999Z */
    add(b, "{\"start_time_ms\":1796083200000", 0, LG_ERR_EXHAUSTED); /* December */
    add(b, "{\"start_time_ms\":1793491200001", 0, LG_OK); /* November still fits */
    /* Year boundary and leap day. */
    lg_batch_reset(b);
    add(b, "{\"start_time_ms\":1709164800000", 0, LG_OK); /* 2024-02-29T00:00Z */
    add(b, "{\"start_time_ms\":1709251199999", 0, LG_OK); /* 2024-02-29T23:59:59.999Z */
    add(b, "{\"start_time_ms\":1709251200000", 0, LG_ERR_EXHAUSTED); /* 2024-03-01 */
    /* A row without start_time_ms lands in the partition of the column's default, 0
     * (1970-01), whether it comes first or later (both were let through). */
    lg_batch_reset(b);
    add(b, "{\"a\":1", 0, LG_OK);
    add(b, "{\"start_time_ms\":1793491200000", 0, LG_ERR_EXHAUSTED);
    add(b, "{\"a\":2", 0, LG_OK);
    add(b, "{\"start_time_ms\":5", 0, LG_OK); /* 1970-01 too */
    lg_batch_reset(b);
    add(b, "{\"start_time_ms\":1793491200000", 0, LG_OK);
    add(b, "{\"a\":1", 0, LG_ERR_EXHAUSTED);
    add(b, "{\"start_time_ms\":1793491200001", 0, LG_OK);
    lg_batch_free(b);
}

/* A seal cut into steps (as the shipper does while an insert is in flight) gives the same
 * id and the same bytes as one seal, gzip'd or not; rows cannot be added meanwhile, and a
 * reset abandons it. */
static void test_batch_seal_in_steps(void **state)
{
    (void)state;
    for (int gz = 0; gz <= 1; gz++) {
        lg_batch *b = mk();
        add(b, "{\"a\":1", 0, LG_OK);
        add(b, "{\"a\":2", 0, LG_OK);
        add(b, "{\"a\":3", 0, LG_OK);
        assert_int_equal(lg_batch_seal(b, gz != 0), LG_OK);
        struct lg_slice one = lg_batch_body(b);
        uint8_t want[512];
        size_t want_len = one.len;
        assert_true(want_len <= sizeof(want));
        memcpy(want, one.ptr, want_len);
        char id[64];
        snprintf(id, sizeof(id), "%s", lg_batch_id(b));
        assert_int_equal(lg_batch_seal_step(b, 1), LG_ERR_STATE);
        assert_int_equal(lg_batch_seal_begin(b, gz != 0), LG_OK);
        assert_true(lg_batch_is_sealing(b));
        assert_string_equal(lg_batch_id(b), id);
        assert_int_equal(lg_batch_add(b, (const uint8_t *)"{\"a\":4", 6, 0), LG_ERR_INVALID);
        int steps = 0, rc;
        while ((rc = lg_batch_seal_step(b, 1)) == LG_ERR_AGAIN) {
            steps++;
        }
        assert_int_equal(rc, LG_OK);
        /* Rows one by one (uncompressed, zlib) or one gzip member per step (libdeflate). */
        assert_true(steps <= 2);
        assert_false(lg_batch_is_sealing(b));
        struct lg_slice body = lg_batch_body(b);
        assert_int_equal(body.len, want_len);
        assert_memory_equal(body.ptr, want, want_len);
        /* Abandoned half way by a reset: the batch is empty and usable again. */
        assert_int_equal(lg_batch_seal_begin(b, gz != 0), LG_OK);
        if (gz == 0) {
            assert_int_equal(lg_batch_seal_step(b, 1), LG_ERR_AGAIN);
        }
        lg_batch_reset(b);
        assert_false(lg_batch_is_sealing(b));
        add(b, "{\"a\":5", 0, LG_OK);
        assert_int_equal(lg_batch_seal_begin(b, gz != 0), LG_OK);
        lg_batch_free(b); /* frees a seal in progress */
    }
}

/* A body larger than one gzip member (several members with libdeflate, one zlib stream
 * without) inflates, member after member, to exactly the closed rows. */
static void test_batch_gzip_members_inflate_to_rows(void **state)
{
    (void)state;
    struct lg_batch_limits lim = {10, 8u * 1024u * 1024u, 500};
    lg_batch *b = NULL;
    assert_int_equal(lg_batch_new(&b, &lim), LG_OK);
    size_t row_len = 700u * 1024u;
    uint8_t *row = test_malloc(row_len);
    for (int k = 0; k < 3; k++) {
        memset(row, 'a' + k, row_len);
        memcpy(row, "{\"x\":\"", 6);
        row[row_len - 1] = '"';
        assert_int_equal(lg_batch_add(b, row, row_len, 0), LG_OK);
    }
    assert_int_equal(lg_batch_seal(b, true), LG_OK);
    size_t raw = lg_batch_body_raw_len(b);
    uint8_t *out = test_malloc(raw + 1);
    struct lg_slice body = lg_batch_body(b);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)body.ptr;
    zs.avail_in = (uInt)body.len;
    zs.next_out = out;
    zs.avail_out = (uInt)(raw + 1);
    int zrc;
    while ((zrc = inflate(&zs, Z_NO_FLUSH)) == Z_STREAM_END && zs.avail_in > 0) {
        assert_int_equal(inflateReset(&zs), Z_OK);
    }
    assert_true(zrc == Z_STREAM_END || zrc == Z_OK);
    assert_int_equal(zs.avail_in, 0);
    size_t got = raw + 1 - zs.avail_out;
    inflateEnd(&zs);
    assert_int_equal(got, raw);
    size_t off = 0;
    for (size_t i = 0; i < 3; i++) {
        struct lg_slice r = lg_batch_row(b, i);
        assert_memory_equal(out + off, r.ptr, r.len);
        off += r.len;
        char suffix[64];
        int n = snprintf(suffix, sizeof(suffix), ",\"batch_id\":\"%s\"}\n", lg_batch_id(b));
        assert_memory_equal(out + off, suffix, (size_t)n);
        off += (size_t)n;
    }
    assert_int_equal(off, raw);
    test_free(out);
    test_free(row);
    lg_batch_free(b);
}

/* Reads the whole body of the last seal through lg_batch_body_read in |chunk|-byte reads. */
static size_t read_all(lg_batch *b, size_t chunk, uint8_t *out, size_t cap)
{
    size_t off = 0, n;
    while (off < cap && (n = lg_batch_body_read(b, off, out + off,
                                                chunk < cap - off ? chunk : cap - off)) > 0) {
        off += n;
    }
    return off;
}

static void test_batch_streamed_body_equals_sealed_body(void **state)
{
    (void)state;
    struct lg_batch_limits lim = {100, 100000, 500};
    lg_batch *b = NULL;
    assert_int_equal(lg_batch_new(&b, &lim), LG_OK);
    char row[128];
    for (int i = 0; i < 37; i++) {
        int n = snprintf(row, sizeof(row), "{\"i\":%d,\"pad\":\"%.*s\"", i, i % 23,
                         "abcdefghijklmnopqrstuvwxyz");
        assert_int_equal(lg_batch_add(b, (const uint8_t *)row, (size_t)n, 0), LG_OK);
    }
    static uint8_t want[8192], got[8192];
    assert_int_equal(lg_batch_seal(b, false), LG_OK);
    struct lg_slice body = lg_batch_body(b);
    assert_true(body.len < sizeof(want));
    memcpy(want, body.ptr, body.len);
    char id[64];
    strcpy(id, lg_batch_id(b));
    /* A materialized seal reads back through the same call. */
    assert_int_equal(lg_batch_body_len(b), body.len);
    assert_int_equal(read_all(b, 1000, got, sizeof(got)), body.len);
    assert_memory_equal(got, want, body.len);

    assert_int_equal(lg_batch_seal_stream(b), LG_OK);
    assert_string_equal(lg_batch_id(b), id); /* same rows, same id, whatever the seal */
    assert_int_equal(lg_batch_body(b).len, 0);
    assert_int_equal(lg_batch_body_len(b), body.len);
    assert_int_equal(lg_batch_body_raw_len(b), body.len);
    /* Chunk sizes that cut rows and suffixes anywhere, including one byte at a time. */
    const size_t chunks[] = {1, 7, 31, 64, 100, 4096};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        memset(got, 0, sizeof(got));
        assert_int_equal(read_all(b, chunks[c], got, sizeof(got)), body.len);
        assert_memory_equal(got, want, body.len);
    }
    /* Past the end: nothing. A read behind the last one (a rewind) finds its row. */
    assert_int_equal(lg_batch_body_read(b, body.len, got, 10), 0);
    for (size_t off = 0; off < body.len; off += 97) {
        size_t n = lg_batch_body_read(b, off, got, 50);
        assert_int_equal(n, body.len - off < 50 ? body.len - off : 50);
        assert_memory_equal(got, want + off, n);
    }
    for (size_t off = body.len - 1; off > 0; off -= off > 61 ? 61 : off) {
        assert_int_equal(lg_batch_body_read(b, off, got, 1), 1);
        assert_int_equal(got[0], want[off]);
    }
    /* Removing a row ends the streamed seal (the id no longer holds). */
    assert_int_equal(lg_batch_remove(b, 3), LG_OK);
    assert_int_equal(lg_batch_body_len(b), 0);
    assert_int_equal(lg_batch_seal_stream(b), LG_OK);
    assert_string_not_equal(lg_batch_id(b), id);
    lg_batch_reset(b);
    assert_int_equal(lg_batch_seal_stream(b), LG_ERR_INVALID); /* empty */
    lg_batch_free(b);
}

static void test_batch_trim_gives_memory_back(void **state)
{
    (void)state;
    struct lg_batch_limits lim = {1000, 1 << 20, 500};
    lg_batch *b = NULL;
    assert_int_equal(lg_batch_new(&b, &lim), LG_OK);
    char row[600];
    memset(row, 'x', sizeof(row));
    row[0] = '{';
    for (int i = 0; i < 200; i++) {
        assert_int_equal(lg_batch_add(b, (const uint8_t *)row, sizeof(row), 0), LG_OK);
    }
    assert_int_equal(lg_batch_seal(b, true), LG_OK);
    char id[64];
    strcpy(id, lg_batch_id(b));
    lg_batch_trim(b, 1024); /* holds rows: no-op */
    assert_int_equal(lg_batch_count(b), 200);
    assert_string_equal(lg_batch_id(b), id);
    lg_batch_reset(b);
    lg_batch_trim(b, 1024); /* empty: buffers freed */
    for (int i = 0; i < 200; i++) {
        assert_int_equal(lg_batch_add(b, (const uint8_t *)row, sizeof(row), 0), LG_OK);
    }
    assert_int_equal(lg_batch_seal(b, true), LG_OK);
    assert_string_equal(lg_batch_id(b), id); /* same rows, same id after a trim */
    lg_batch_reset(b);
    lg_batch_trim(b, 0);
    assert_int_equal(lg_batch_seal_stream(b), LG_ERR_INVALID);
    lg_batch_free(b);
}

static void test_batch_invalid_limits_and_nomem(void **state)
{
    (void)state;
    lg_batch *b = NULL;
    struct lg_batch_limits lim = {0, 10, 1};
    assert_int_equal(lg_batch_new(&b, &lim), LG_ERR_INVALID);
    lim.max_rows = 1;
    lg_test_fail_after(0);
    assert_int_equal(lg_batch_new(&b, &lim), LG_ERR_NOMEM);
    lg_test_fail_after(1);
    assert_int_equal(lg_batch_new(&b, &lim), LG_ERR_NOMEM);
    lg_test_fail_after(2);
    assert_int_equal(lg_batch_new(&b, &lim), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
}

/* The holder of test_batch_ref_mode: counts per block. */
struct holder {
    int refs[4];
    int retains, releases;
};

static void t_retain(void *ctx, void *blk)
{
    struct holder *h = ctx;
    h->refs[(int *)blk - h->refs]++;
    h->retains++;
}

static void t_release(void *ctx, void *blk)
{
    struct holder *h = ctx;
    assert_true(h->refs[(int *)blk - h->refs] > 0);
    h->refs[(int *)blk - h->refs]--;
    h->releases++;
}

/* Reference mode: rows lent with a hold on their block give the same id and the same
 * bodies (materialized, gzip, streamed) as the same rows copied in; the batch retains each
 * block once while its rows are held (a block's rows come one after another) and releases
 * each once at the reset (and at free); a removed row leaves the rest intact; the two modes
 * never mix. */
static void test_batch_ref_mode(void **state)
{
    (void)state;
    struct lg_batch_limits lim = {100, 100000, 500};
    lg_batch *c = NULL, *r = NULL;
    assert_int_equal(lg_batch_new(&c, &lim), LG_OK);
    assert_int_equal(lg_batch_new(&r, &lim), LG_OK);
    static char rows[40][96];
    struct holder h = {{0}, 0, 0};
    assert_int_equal(lg_batch_add_ref(r, (const uint8_t *)"{\"a\":1", 6, 1, 0, &h.refs[0]),
                     LG_ERR_INVALID); /* no holder yet */
    lg_batch_set_holder(r, t_retain, t_release, &h);
    for (int i = 0; i < 40; i++) {
        int n = snprintf(rows[i], sizeof(rows[i]),
                         "{\"start_time_ms\":1793491200500,\"i\":%d,\"pad\":\"%.*s\"", i, i % 23,
                         "abcdefghijklmnopqrstuvwxyz");
        uint32_t crc = lg_spool_crc32(rows[i], (size_t)n);
        assert_int_equal(
            lg_batch_add_crc(c, (const uint8_t *)rows[i], (size_t)n, crc, 0), LG_OK);
        assert_int_equal(lg_batch_add_ref(r, (const uint8_t *)rows[i], (size_t)n, crc, 0,
                                          &h.refs[i / 10]),
                         LG_OK);
    }
    assert_int_equal(h.retains, 4);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(h.refs[k], 1);
    }
    assert_int_equal(lg_batch_bytes(r), lg_batch_bytes(c));
    int64_t lo, hi;
    assert_true(lg_batch_time_range(r, &lo, &hi));
    assert_int_equal(lo, INT64_C(1793491200500));
    /* The modes do not mix. */
    assert_int_equal(lg_batch_add(r, (const uint8_t *)"{\"x\":1", 6, 0), LG_ERR_INVALID);
    assert_int_equal(lg_batch_add_ref(c, (const uint8_t *)rows[0], 6, 1, 0, &h.refs[0]),
                     LG_ERR_INVALID);
    assert_int_equal(lg_batch_add_ref(r, (const uint8_t *)rows[0], 6, 1, 0, NULL),
                     LG_ERR_INVALID);
    static uint8_t want[8192], got[8192];
    for (int pass = 0; pass < 2; pass++) {
        for (int gz = 0; gz < 2; gz++) {
            assert_int_equal(lg_batch_seal(c, gz), LG_OK);
            assert_int_equal(lg_batch_seal(r, gz), LG_OK);
            assert_string_equal(lg_batch_id(r), lg_batch_id(c));
            struct lg_slice wb = lg_batch_body(c), rb = lg_batch_body(r);
            assert_int_equal(rb.len, wb.len);
            assert_memory_equal(rb.ptr, wb.ptr, wb.len);
        }
        assert_int_equal(lg_batch_seal_stream(c), LG_OK);
        assert_int_equal(lg_batch_seal_stream(r), LG_OK);
        size_t n = read_all(c, 4096, want, sizeof(want));
        assert_int_equal(read_all(r, 37, got, sizeof(got)), n);
        assert_memory_equal(got, want, n);
        for (size_t i = 0; i < lg_batch_count(r); i++) {
            struct lg_slice a = lg_batch_row(c, i), b = lg_batch_row(r, i);
            assert_int_equal(a.len, b.len);
            assert_memory_equal(a.ptr, b.ptr, a.len);
        }
        /* Second pass: the same after removing rows 0, 17 and the last. */
        for (int k = 0; k < 3; k++) {
            size_t i = k == 0 ? 0 : k == 1 ? 17 : lg_batch_count(r) - 1;
            assert_int_equal(lg_batch_remove(c, i), LG_OK);
            assert_int_equal(lg_batch_remove(r, i), LG_OK);
        }
        assert_int_equal(lg_batch_count(r), (size_t)(37 - 3 * pass));
    }
    assert_int_equal(h.releases, 0); /* held until the reset */
    lg_batch_reset(r);
    assert_int_equal(h.releases, 4);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(h.refs[k], 0);
    }
    /* After a reset, either mode again; a free releases what is held. */
    assert_int_equal(lg_batch_add(r, (const uint8_t *)"{\"x\":1", 6, 0), LG_OK);
    lg_batch_reset(r);
    assert_int_equal(lg_batch_add_ref(r, (const uint8_t *)rows[3], 6, 1, 0, &h.refs[2]),
                     LG_OK);
    assert_int_equal(h.refs[2], 1);
    lg_batch_free(r);
    assert_int_equal(h.refs[2], 0);
    lg_batch_free(c);
}

/* RowBinary rows: the body is each row's columns (the version byte left out) followed by
 * batch_id as a String column; the format is the rows'; start_time_ms is read from the
 * first column (time range, month rule); a JSON row does not join a RowBinary batch nor the
 * reverse; a row that is not one whole RowBinary row is refused; streamed = sealed. */
static void test_batch_rowbinary_rows(void **state)
{
    (void)state;
    struct lg_batch_limits lim = {100, 1000000, 500};
    lg_batch *b = NULL;
    assert_int_equal(lg_batch_new(&b, &lim), LG_OK);
    struct lg_buf rows[5];
    const int64_t t0 = INT64_C(1764165000123); /* 2025-11-26 */
    for (int i = 0; i < 5; i++) {
        struct lg_record *r;
        assert_int_equal(lg_record_new(&r), LG_OK);
        char id[16];
        int n = snprintf(id, sizeof(id), "rb-%d", i);
        assert_int_equal(lg_record_set_str(&r->request_id, id, (size_t)n), LG_OK);
        r->start_time_ms = t0 + i * 1000;
        lg_buf_init(&rows[i], 1 << 16);
        assert_int_equal(lg_record_encode_rowbinary(r, &rows[i]), LG_OK);
        lg_record_free(r);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(lg_batch_add(b, rows[i].data, rows[i].len, 0), LG_OK);
    }
    assert_int_equal(lg_batch_format(b), LG_RECORD_ROWBINARY_V1);
    struct lg_slice r0 = lg_batch_row(b, 0);
    assert_int_equal(r0.len, rows[0].len - 1);
    assert_memory_equal(r0.ptr, rows[0].data + 1, r0.len);
    int64_t lo, hi;
    assert_true(lg_batch_time_range(b, &lo, &hi));
    assert_true(lo == t0 && hi == t0 + 3000);
    /* Lent as whole (rows this process's encoder wrote), a row is not walked: only its
     * start_time_ms must be there. Lent otherwise, a cut row is refused. */
    struct holder h = {{0}, 0, 0};
    lg_batch *w = NULL;
    assert_int_equal(lg_batch_new(&w, &lim), LG_OK);
    lg_batch_set_holder(w, t_retain, t_release, &h);
    assert_int_equal(lg_batch_add_ref(w, rows[4].data, rows[4].len - 1, 1, 0, &h.refs[0]),
                     LG_ERR_INVALID);
    assert_int_equal(lg_batch_add_ref_whole(w, rows[4].data, 8, 1, 0, &h.refs[0]),
                     LG_ERR_INVALID);
    assert_int_equal(lg_batch_add_ref_whole(w, rows[4].data, rows[4].len - 1, 1, 0,
                                            &h.refs[0]),
                     LG_OK);
    assert_int_equal(lg_batch_add_ref_whole(w, rows[3].data, rows[3].len, 1, 0, &h.refs[0]),
                     LG_OK);
    assert_true(lg_batch_time_range(w, &lo, &hi));
    assert_true(lo == t0 + 3000 && hi == t0 + 4000);
    lg_batch_free(w);
    /* A JSON row waits for the next batch; a cut RowBinary row is refused. */
    add(b, "{\"start_time_ms\":1764165000123", 0, LG_ERR_EXHAUSTED);
    assert_int_equal(lg_batch_add(b, rows[4].data, rows[4].len - 1, 0), LG_ERR_INVALID);
    const uint8_t stray[] = {0x02, 0, 0, 0};
    assert_int_equal(lg_batch_add(b, stray, sizeof(stray), 0), LG_ERR_INVALID);
    assert_int_equal(lg_batch_count(b), 4);

    assert_int_equal(lg_batch_seal(b, false), LG_OK);
    const char *id = lg_batch_id(b);
    size_t idlen = strlen(id);
    struct lg_slice body = lg_batch_body(b);
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        assert_memory_equal(body.ptr + off, rows[i].data + 1, rows[i].len - 1);
        off += rows[i].len - 1;
        assert_int_equal(body.ptr[off], idlen);
        assert_memory_equal(body.ptr + off + 1, id, idlen);
        off += 1 + idlen;
    }
    assert_int_equal(off, body.len);
    static uint8_t want[8192], got[8192];
    assert_true(body.len < sizeof(want));
    memcpy(want, body.ptr, body.len);
    size_t blen = body.len;
    assert_int_equal(lg_batch_seal_stream(b), LG_OK);
    assert_int_equal(read_all(b, 13, got, sizeof(got)), blen);
    assert_memory_equal(got, want, blen);

    /* A month later: the month rule holds for RowBinary rows too. */
    lg_batch_reset(b);
    assert_int_equal(lg_batch_add(b, rows[0].data, rows[0].len, 0), LG_OK);
    struct lg_record *late;
    assert_int_equal(lg_record_new(&late), LG_OK);
    late->start_time_ms = t0 + INT64_C(40) * 86400000;
    struct lg_buf lb;
    lg_buf_init(&lb, 1 << 16);
    assert_int_equal(lg_record_encode_rowbinary(late, &lb), LG_OK);
    assert_int_equal(lg_batch_add(b, lb.data, lb.len, 0), LG_ERR_EXHAUSTED);
    lg_record_free(late);
    lg_buf_deinit(&lb);
    /* And a RowBinary row does not join a JSON batch. */
    lg_batch_reset(b);
    add(b, "{\"start_time_ms\":1764165000123", 0, LG_OK);
    assert_int_equal(lg_batch_format(b), '{');
    assert_int_equal(lg_batch_add(b, rows[0].data, rows[0].len, 0), LG_ERR_EXHAUSTED);
    for (int i = 0; i < 5; i++) {
        lg_buf_deinit(&rows[i]);
    }
    lg_batch_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_batch_row_limit, setup),
        cmocka_unit_test_setup(test_batch_age_limit, setup),
        cmocka_unit_test_setup(test_batch_byte_limit, setup),
        cmocka_unit_test_setup(test_batch_id_deterministic_and_body, setup),
        cmocka_unit_test_setup(test_batch_remove_changes_id, setup),
        cmocka_unit_test_setup(test_batch_id_follows_row_crcs, setup),
        cmocka_unit_test_setup(test_batch_time_range, setup),
        cmocka_unit_test_setup(test_batch_never_spans_two_months, setup),
        cmocka_unit_test_setup(test_batch_seal_in_steps, setup),
        cmocka_unit_test_setup(test_batch_gzip_members_inflate_to_rows, setup),
        cmocka_unit_test_setup(test_batch_streamed_body_equals_sealed_body, setup),
        cmocka_unit_test_setup(test_batch_trim_gives_memory_back, setup),
        cmocka_unit_test_setup(test_batch_invalid_limits_and_nomem, setup),
        cmocka_unit_test_setup(test_batch_ref_mode, setup),
        cmocka_unit_test_setup(test_batch_rowbinary_rows, setup),
    };
    return cmocka_run_group_tests_name("batch", tests, NULL, NULL);
}
