/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_batch.h"

#include <endian.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#ifdef LG_HAVE_LIBDEFLATE
#    include <libdeflate.h>
#endif
#ifdef LG_HAVE_XXHASH
#    include <xxhash.h>
#endif
#include <zlib.h>

#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"
#include "lg_record.h"
#include "lg_spool.h"

/* FNV-1a 64 (public domain constants): fast, deterministic, good enough to tell batches
 * apart; the batch_id is a dedup key checked against ClickHouse, not a security token. */
#define FNV64_OFFSET UINT64_C(14695981039346656037)
#define FNV64_PRIME UINT64_C(1099511628211)
/* zlib: 15-bit window plus 16 selects the gzip wrapper (zlib.h, deflateInit2). */
#define GZIP_WINDOW_BITS (15 + 16)
#define GZIP_MEM_LEVEL 8
/* With libdeflate the gzip body is a series of members (seal_feed_members); without it, one
 * zlib stream. */
#ifdef LG_HAVE_LIBDEFLATE
#    define LG_BATCH_USE_MEMBERS 1
#else
#    define LG_BATCH_USE_MEMBERS 0
#endif

struct lg_batch {
    struct lg_batch_limits lim;
    struct lg_buf rows; /* rows back to back (copy mode) */
    /* Start of row i among the rows back to back; offs[count] = their total length. In
     * copy mode that is also where row i is in |rows|. */
    size_t *offs;
    /* Reference mode (lg_batch_add_ref): row i is at ptr[i], in memory the caller lends;
     * the batch holds the caller's blocks (|holds|, each retained once) until reset. */
    bool ref_mode;
    const uint8_t **ptr;
    void **holds;
    size_t nholds, holds_cap;
    void (*retain)(void *ctx, void *hold);
    void (*release)(void *ctx, void *hold);
    void *hold_ctx;
    uint64_t *digs;     /* row i's digest: CRC-32 << 32 | length, little endian (hash_rows) */
    size_t count;
    size_t offs_cap;
    int64_t first_ms; /* when the first row was added */
    int64_t min_start_ms, max_start_ms; /* range of the rows' start_time_ms */
    bool range_ok;                      /* every row had a parsable start_time_ms */
    char id[40];
    size_t raw_len;     /* last sealed body's size before compression */
    struct lg_buf body; /* last sealed body as sent (empty for a streamed seal) */
    bool gz;
    bool streamed;      /* sealed by lg_batch_seal_stream: the body is made on read */
    /* lg_batch_body_read's position in a streamed body: row |rd_row| starts at body
     * offset |rd_base|, so sequential reads find their row at once. */
    size_t rd_row, rd_base;
    /* A seal in progress (lg_batch_seal_begin .. lg_batch_seal_step returning LG_OK). */
    bool sealing;
    bool zs_live;        /* zs holds deflate state to release with deflateEnd */
    z_stream zs;
    size_t seal_next;    /* next row to feed */
    size_t seal_bound;   /* bytes reserved in |body| for the compressed output */
    char suffix[64];     /* ,"batch_id":"<id>"}\n (JSON), or <length byte><id> (RowBinary) */
    size_t suffix_len;
    int64_t month; /* month_of the first row's start_time_ms (0 when it has none) */
    unsigned fmt;  /* the rows' format: '{' (JSONEachRow) or a RowBinary version */
#ifdef LG_HAVE_LIBDEFLATE
    struct libdeflate_compressor *ldc; /* made at the first gzip seal */
    struct lg_buf member;              /* raw bytes of the gzip member being made */
#endif
};

static void seal_abort(lg_batch *b)
{
    if (b->zs_live) {
        deflateEnd(&b->zs);
        b->zs_live = false;
    }
    b->sealing = false;
}

int lg_batch_new(lg_batch **out, const struct lg_batch_limits *lim)
{
    if (lim->max_rows == 0 || lim->max_bytes == 0 || lim->max_age_ms < 0) {
        return LG_ERR_INVALID;
    }
    lg_batch *b = lg_calloc(1, sizeof(*b));
    if (b == NULL) {
        return LG_ERR_NOMEM;
    }
    b->lim = *lim;
    /* A single row may exceed max_bytes (accepted alone), hence the row maximum on top. */
    size_t cap = lim->max_bytes + LG_RECORD_MAX_ROW_BYTES;
    lg_buf_init(&b->rows, cap);
    lg_buf_init(&b->body, cap + (lim->max_rows + 1) * LG_BATCH_ROW_OVERHEAD_BYTES);
#ifdef LG_HAVE_LIBDEFLATE
    lg_buf_init(&b->member, LG_BATCH_GZIP_MEMBER_BYTES + LG_RECORD_MAX_ROW_BYTES +
                                LG_BATCH_ROW_OVERHEAD_BYTES);
#endif
    b->offs = lg_malloc(sizeof(*b->offs) * 16);
    b->digs = lg_malloc(sizeof(*b->digs) * 16);
    b->ptr = lg_malloc(sizeof(*b->ptr) * 16);
    if (b->offs == NULL || b->digs == NULL || b->ptr == NULL) {
        lg_batch_free(b);
        return LG_ERR_NOMEM;
    }
    b->offs_cap = 16;
    b->offs[0] = 0;
    b->range_ok = true;
    *out = b;
    return LG_OK;
}

/* Gives back every block the batch holds (reference mode). */
static void release_holds(lg_batch *b)
{
    for (size_t i = 0; i < b->nholds; i++) {
        b->release(b->hold_ctx, b->holds[i]);
    }
    b->nholds = 0;
}

void lg_batch_free(lg_batch *b)
{
    if (b == NULL) {
        return;
    }
    seal_abort(b);
    release_holds(b);
    lg_free(b->holds);
    lg_free(b->ptr);
#ifdef LG_HAVE_LIBDEFLATE
    libdeflate_free_compressor(b->ldc);
    lg_buf_deinit(&b->member);
#endif
    lg_buf_deinit(&b->rows);
    lg_buf_deinit(&b->body);
    lg_free(b->offs);
    lg_free(b->digs);
    lg_free(b);
}

void lg_batch_reset(lg_batch *b)
{
    seal_abort(b);
    release_holds(b);
    b->ref_mode = false;
    lg_buf_reset(&b->rows);
    b->raw_len = 0;
    lg_buf_reset(&b->body);
    b->streamed = false;
    b->count = 0;
    b->offs[0] = 0;
    b->id[0] = 0;
    b->range_ok = true;
}

void lg_batch_trim(lg_batch *b, size_t keep_bytes)
{
    if (b->count != 0 || b->sealing) {
        return;
    }
    lg_buf_trim(&b->rows, keep_bytes);
    lg_buf_trim(&b->body, keep_bytes);
    b->streamed = false;
#ifdef LG_HAVE_LIBDEFLATE
    lg_buf_trim(&b->member, keep_bytes);
#endif
}

/* Finds "start_time_ms":<digits> in a row made by lg_record_encode_row (the key occurs
 * once; string values cannot contain it unescaped since '"' is escaped in them). */
static bool row_start_ms(const uint8_t *row, size_t len, int64_t *out)
{
    static const char key[] = "\"start_time_ms\":";
    const size_t klen = sizeof(key) - 1;
    const uint8_t *p = NULL;
    if (len > klen && row[0] == '{' && memcmp(row + 1, key, klen) == 0) {
        /* The encoder writes it first: the month of a row in one compare (the backwards
         * search below was 4% of the shipper thread at 30k rows/s). */
        p = row + 1;
    }
    /* Rows spooled by an older encoder have it after the bodies, ~200 bytes from the
     * end: searched backwards, quote by quote (memrchr); it occurs once, so the last
     * occurrence is the one. memmem over whole 2 KB rows was 3-5% of a replay's CPU. */
    for (size_t end = len; end > 0 && p == NULL;) {
        const uint8_t *q = memrchr(row, '"', end);
        if (q == NULL) {
            break;
        }
        size_t at = (size_t)(q - row);
        if (len - at >= klen && memcmp(q, key, klen) == 0) {
            p = q;
        }
        end = at;
    }
    if (p == NULL) {
        return false;
    }
    size_t i = (size_t)(p - row) + sizeof(key) - 1;
    int64_t v = 0;
    size_t digits = 0;
    while (i < len && row[i] >= '0' && row[i] <= '9' && digits < 18) {
        v = v * 10 + (row[i] - '0');
        i++;
        digits++;
    }
    *out = v;
    return digits > 0;
}

/* Months since year 0 of a unix-ms UTC time (civil_from_days, H. Hinnant's algorithm),
 * matching ClickHouse's toYYYYMM(toDateTime(intDiv(ms, 1000))) with the server in UTC. */
static int64_t month_of(int64_t ms)
{
    int64_t z = (ms >= 0 ? ms / 86400000 : (ms - 86399999) / 86400000) + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
    return y * 12 + (m - 1);
}

int lg_batch_add(lg_batch *b, const uint8_t *row, size_t len, int64_t now_ms)
{
    return lg_batch_add_crc(b, row, len, lg_spool_crc32(row, len), now_ms);
}

/* Where row |i|'s bytes are. */
static const uint8_t *row_at(const lg_batch *b, size_t i)
{
    return b->ref_mode ? b->ptr[i] : b->rows.data + b->offs[i];
}

/* The checks and bookkeeping of adding a row, around |store| (which puts the bytes where
 * row |count| will be read from): LG_OK or the refusal, with nothing changed. */
static int add_row(lg_batch *b, const uint8_t *row, size_t len, uint32_t crc, int64_t now_ms,
                   bool ref, void *hold, bool whole)
{
    if (len == 0 || b->sealing || (b->count > 0 && b->ref_mode != ref)) {
        return LG_ERR_INVALID;
    }
    /* A RowBinary row is checked whole here: one that is not could make ClickHouse read
     * its neighbours' bytes as its own and name the wrong row in its error. The batch keeps
     * its columns only (ClickHouse's bytes); the version byte picks the INSERT's column
     * list (lg_batch_format). */
    unsigned fmt = row[0];
    if (fmt == LG_RECORD_ROWBINARY_V1) {
        /* |whole|: the caller vouches (perf: the walk was ~7% of the shipper's threads at
         * 30k rows/s, reading each row's length bytes; the rows it skips are the ones this
         * process's encoder just wrote). Eight bytes are needed for start_time_ms. */
        if (whole ? len < 1 + 8 : lg_record_rowbinary_check(fmt, row + 1, len - 1) != LG_OK) {
            return LG_ERR_INVALID;
        }
        row++;
        len--;
    } else if (fmt != '{') {
        return LG_ERR_INVALID;
    }
    size_t total = b->offs[b->count];
    if (b->count >= b->lim.max_rows || (b->count > 0 && total + len > b->lim.max_bytes)) {
        return LG_ERR_EXHAUSTED;
    }
    /* One format per batch: one INSERT statement (spools written before and after an
     * upgrade hold both). */
    if (b->count > 0 && fmt != b->fmt) {
        return LG_ERR_EXHAUSTED;
    }
    int64_t t = 0;
    bool has_t = true;
    if (fmt == '{') {
        has_t = row_start_ms(row, len, &t);
    } else {
        t = lg_record_rowbinary_start_ms(row); /* checked: at least its first column */
    }
    /* One batch, one monthly partition: ClickHouse inserts a block per partition, so a
     * batch spanning two months could land half way and a resend would duplicate the
     * landed half (research/shipper.md section 1, "Atomicity"). A row without the key
     * lands in the partition of the column's default, 0 (1970-01): it was exempt from the
     * rule, and so was every row after it. */
    int64_t month = month_of(has_t ? t : 0);
    if (b->count > 0 && month != b->month) {
        return LG_ERR_EXHAUSTED;
    }
    if (b->count + 2 > b->offs_cap) {
        size_t ncap = b->offs_cap * 2;
        size_t *n = lg_realloc(b->offs, sizeof(*n) * ncap);
        if (n == NULL) {
            return LG_ERR_NOMEM;
        }
        b->offs = n;
        uint64_t *d = lg_realloc(b->digs, sizeof(*d) * ncap);
        if (d == NULL) {
            return LG_ERR_NOMEM; /* offs grew alone: harmless, the next add retries */
        }
        b->digs = d;
        const uint8_t **pp = lg_realloc(b->ptr, sizeof(*pp) * ncap);
        if (pp == NULL) {
            return LG_ERR_NOMEM;
        }
        b->ptr = pp;
        b->offs_cap = ncap;
    }
    if (ref) {
        if (b->nholds == 0 || b->holds[b->nholds - 1] != hold) {
            if (b->nholds == b->holds_cap) {
                size_t ncap = b->holds_cap ? b->holds_cap * 2 : 16;
                void **h = lg_realloc(b->holds, sizeof(*h) * ncap);
                if (h == NULL) {
                    return LG_ERR_NOMEM;
                }
                b->holds = h;
                b->holds_cap = ncap;
            }
            b->retain(b->hold_ctx, hold);
            b->holds[b->nholds++] = hold;
        }
        b->ptr[b->count] = row;
    } else {
        int rc = lg_buf_append(&b->rows, row, len);
        if (rc != LG_OK) {
            return rc;
        }
    }
    b->ref_mode = ref;
    if (b->count == 0) {
        b->first_ms = now_ms;
        b->min_start_ms = INT64_MAX;
        b->max_start_ms = INT64_MIN;
    }
    /* The spooled length (with a RowBinary row's version byte): what the CRC covers. */
    size_t slen = fmt == '{' ? len : len + 1;
    b->digs[b->count] = htole64((uint64_t)crc << 32 | (uint64_t)(uint32_t)slen);
    if (b->count == 0) {
        b->month = month;
        b->fmt = fmt;
    }
    if (has_t) {
        b->min_start_ms = t < b->min_start_ms ? t : b->min_start_ms;
        b->max_start_ms = t > b->max_start_ms ? t : b->max_start_ms;
    } else {
        b->range_ok = false;
    }
    b->count++;
    b->offs[b->count] = total + len;
    return LG_OK;
}

int lg_batch_add_crc(lg_batch *b, const uint8_t *row, size_t len, uint32_t crc, int64_t now_ms)
{
    return add_row(b, row, len, crc, now_ms, false, NULL, false);
}

void lg_batch_set_holder(lg_batch *b, void (*retain)(void *ctx, void *hold),
                         void (*release)(void *ctx, void *hold), void *ctx)
{
    b->retain = retain;
    b->release = release;
    b->hold_ctx = ctx;
}

int lg_batch_add_ref(lg_batch *b, const uint8_t *row, size_t len, uint32_t crc,
                     int64_t now_ms, void *hold)
{
    if (b->retain == NULL || hold == NULL) {
        return LG_ERR_INVALID;
    }
    return add_row(b, row, len, crc, now_ms, true, hold, false);
}

int lg_batch_add_ref_whole(lg_batch *b, const uint8_t *row, size_t len, uint32_t crc,
                           int64_t now_ms, void *hold)
{
    if (b->retain == NULL || hold == NULL) {
        return LG_ERR_INVALID;
    }
    return add_row(b, row, len, crc, now_ms, true, hold, true);
}

bool lg_batch_is_full(const lg_batch *b)
{
    return b->count >= b->lim.max_rows || b->offs[b->count] >= b->lim.max_bytes;
}

bool lg_batch_is_due(const lg_batch *b, int64_t now_ms)
{
    if (b->count == 0) {
        return false;
    }
    return b->count >= b->lim.max_rows || b->offs[b->count] >= b->lim.max_bytes ||
           now_ms - b->first_ms >= b->lim.max_age_ms;
}

int64_t lg_batch_ms_until_due(const lg_batch *b, int64_t now_ms)
{
    if (b->count == 0) {
        return INT64_MAX;
    }
    if (lg_batch_is_due(b, now_ms)) {
        return 0;
    }
    return b->first_ms + b->lim.max_age_ms - now_ms;
}

size_t lg_batch_count(const lg_batch *b)
{
    return b->count;
}

size_t lg_batch_bytes(const lg_batch *b)
{
    return b->offs[b->count];
}

bool lg_batch_time_range(const lg_batch *b, int64_t *min_ms, int64_t *max_ms)
{
    if (b->count == 0 || !b->range_ok) {
        return false;
    }
    *min_ms = b->min_start_ms;
    *max_ms = b->max_start_ms;
    return true;
}

struct lg_slice lg_batch_row(const lg_batch *b, size_t i)
{
    if (i >= b->count) {
        return (struct lg_slice){NULL, 0};
    }
    return (struct lg_slice){row_at(b, i), b->offs[i + 1] - b->offs[i]};
}

int lg_batch_remove(lg_batch *b, size_t i)
{
    if (i >= b->count) {
        return LG_ERR_INVALID;
    }
    seal_abort(b);
    size_t start = b->offs[i], end = b->offs[i + 1], len = end - start;
    if (b->ref_mode) {
        /* The block stays held (other rows may lie in it) until the reset. */
        memmove(b->ptr + i, b->ptr + i + 1, sizeof(*b->ptr) * (b->count - i - 1));
    } else {
        memmove(b->rows.data + start, b->rows.data + end, b->rows.len - end);
        b->rows.len -= len;
        b->rows.data[b->rows.len] = 0;
    }
    for (size_t k = i + 1; k <= b->count; k++) {
        b->offs[k - 1] = b->offs[k] - len;
    }
    memmove(b->digs + i, b->digs + i + 1, sizeof(*b->digs) * (b->count - i - 1));
    b->count--;
    b->id[0] = 0;
    b->streamed = false;
    return LG_OK;
}

/* Feeds |len| bytes to the deflate stream writing into |out| (reserved to its bound). */
static int deflate_feed(z_stream *zs, const uint8_t *p, size_t len, int flush)
{
    zs->next_in = (Bytef *)(uintptr_t)p;
    zs->avail_in = (uInt)len;
    int zrc = deflate(zs, flush);
    if (flush == Z_FINISH) {
        return zrc == Z_STREAM_END ? LG_OK : LG_ERR_INTERNAL;
    }
    return (zrc == Z_OK || zrc == Z_BUF_ERROR) && zs->avail_in == 0 ? LG_OK : LG_ERR_INTERNAL;
}

/* The batch_id hash: a 64-bit hash of the rows' digests (CRC-32 and length of each row,
 * in order), not of every byte: the CRC is the spool frame's, already computed over the row
 * when it was written and checked against it when read, so the id still follows the
 * content (one changed, added, removed or moved row changes it, but for a CRC collision in
 * each differing row) at 8 bytes hashed per row. Hashing all bytes (XXH3 streaming over
 * 2.4 KB rows) was ~14% of the shipper thread end to end. XXH3-64 (frozen output since
 * xxhash 0.8) with libxxhash, FNV-1a over the digest words without. Deterministic across
 * runs and hosts (the digests are stored little endian), which is all a batch_id needs;
 * the two builds, and the earlier all-bytes id, differ, which is safe across an upgrade or
 * a rebuild: a batch in flight is checked by the id the state file recorded, and a batch
 * rebuilt from the spool is a new insert under its new id (analytics/README.md, "No
 * double billing"). */
static uint64_t hash_rows(const lg_batch *b)
{
#ifdef LG_HAVE_XXHASH
    return (uint64_t)XXH3_64bits(b->digs, b->count * sizeof(*b->digs));
#else
    uint64_t h = FNV64_OFFSET;
    for (size_t i = 0; i < b->count; i++) {
        h ^= le64toh(b->digs[i]);
        h *= FNV64_PRIME;
    }
    return h;
#endif
}

/* The id, the row suffix and the raw length: what every kind of seal starts with. */
static int seal_id(lg_batch *b)
{
    seal_abort(b);
    b->streamed = false;
    if (b->count == 0) {
        return LG_ERR_INVALID;
    }
    int idlen = snprintf(b->id, sizeof(b->id), "%016" PRIx64 "-%zu", hash_rows(b), b->count);
    if (b->fmt == '{') {
        int slen = snprintf(b->suffix, sizeof(b->suffix), ",\"batch_id\":\"%s\"}\n", b->id);
        b->suffix_len = (size_t)slen;
    } else {
        /* RowBinary: batch_id is the last column, a String (one length byte: < 128). */
        b->suffix[0] = (char)idlen;
        memcpy(b->suffix + 1, b->id, (size_t)idlen);
        b->suffix_len = (size_t)idlen + 1;
    }
    b->raw_len = b->offs[b->count] + b->count * b->suffix_len;
    b->seal_next = 0;
    b->rd_row = 0;
    b->rd_base = 0;
    lg_buf_reset(&b->body);
    return LG_OK;
}

int lg_batch_seal_stream(lg_batch *b)
{
    int rc = seal_id(b);
    if (rc == LG_OK) {
        b->gz = false;
        b->streamed = true;
    }
    return rc;
}

int lg_batch_seal_begin(lg_batch *b, bool gzip)
{
    int rc = seal_id(b);
    if (rc != LG_OK) {
        return rc;
    }
    b->gz = gzip;
    if (!gzip) {
        b->seal_bound = b->raw_len;
    } else if (LG_BATCH_USE_MEMBERS) {
#ifdef LG_HAVE_LIBDEFLATE
        if (b->ldc == NULL) {
            b->ldc = libdeflate_alloc_compressor(1);
            if (b->ldc == NULL) {
                b->id[0] = 0;
                return LG_ERR_NOMEM;
            }
        }
#endif
        b->sealing = true;
        return LG_OK; /* the body grows member by member */
    } else {
        memset(&b->zs, 0, sizeof(b->zs));
        /* Level 1: ~4x smaller for billing rows at a fraction of level 6's CPU; the
         * shipper's CPU budget matters more than the last bytes on a LAN. */
        if (deflateInit2(&b->zs, 1, Z_DEFLATED, GZIP_WINDOW_BITS, GZIP_MEM_LEVEL,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            b->id[0] = 0;
            return LG_ERR_INTERNAL;
        }
        b->zs_live = true;
        b->seal_bound = deflateBound(&b->zs, (uLong)b->raw_len);
    }
    /* Reserved once: the output never moves while it is produced step by step. */
    uint8_t *dst = lg_buf_reserve(&b->body, b->seal_bound);
    if (dst == NULL) {
        seal_abort(b);
        b->id[0] = 0;
        return LG_ERR_NOMEM;
    }
    if (gzip) {
        b->zs.next_out = dst;
        b->zs.avail_out = (uInt)b->seal_bound;
    }
    b->sealing = true;
    return LG_OK;
}

#ifdef LG_HAVE_LIBDEFLATE
/* Compresses rows [seal_next, ...) as independent gzip members of about
 * LG_BATCH_GZIP_MEMBER_BYTES raw bytes each (RFC 1952 section 2.2: a gzip file is a series
 * of members; ClickHouse inflates them all, checked on 18.16 by POSTing two members) until
 * |budget| raw bytes are done or no row is left. libdeflate compresses whole buffers only,
 * hence the members; it is ~1.9x faster than zlib at level 1 on billing rows (990 vs 520
 * MB/s) with a slightly better ratio (22.6 vs 19.6 on the benchmark rows). */
static int seal_feed_members(lg_batch *b, size_t budget)
{
    size_t used = 0;
    while (b->seal_next < b->count && used < budget) {
        lg_buf_reset(&b->member);
        while (b->seal_next < b->count && b->member.len < LG_BATCH_GZIP_MEMBER_BYTES) {
            struct lg_slice r = lg_batch_row(b, b->seal_next);
            int rc = lg_buf_append(&b->member, r.ptr, r.len);
            if (rc == LG_OK) {
                rc = lg_buf_append(&b->member, b->suffix, b->suffix_len);
            }
            if (rc != LG_OK) {
                return rc;
            }
            b->seal_next++;
        }
        size_t bound = libdeflate_gzip_compress_bound(b->ldc, b->member.len);
        uint8_t *dst = lg_buf_reserve(&b->body, bound);
        if (dst == NULL) {
            return LG_ERR_NOMEM;
        }
        size_t n = libdeflate_gzip_compress(b->ldc, b->member.data, b->member.len, dst, bound);
        if (n == 0) {
            return LG_ERR_INTERNAL;
        }
        lg_buf_commit(&b->body, n);
        used += b->member.len;
    }
    return LG_OK;
}
#endif

/* Feeds rows [seal_next, ...) until |budget| raw bytes are consumed or none is left. */
static int seal_feed_rows(lg_batch *b, size_t budget)
{
    size_t used = 0;
    while (b->seal_next < b->count && used < budget) {
        struct lg_slice r = lg_batch_row(b, b->seal_next);
        int rc;
        if (b->gz) {
            rc = deflate_feed(&b->zs, r.ptr, r.len, Z_NO_FLUSH);
            if (rc == LG_OK) {
                rc = deflate_feed(&b->zs, (const uint8_t *)b->suffix, b->suffix_len,
                                  Z_NO_FLUSH);
            }
        } else {
            rc = lg_buf_append(&b->body, r.ptr, r.len);
            if (rc == LG_OK) {
                rc = lg_buf_append(&b->body, b->suffix, b->suffix_len);
            }
        }
        if (rc != LG_OK) {
            return rc;
        }
        used += r.len + b->suffix_len;
        b->seal_next++;
    }
    return LG_OK;
}

int lg_batch_seal_step(lg_batch *b, size_t budget)
{
    if (!b->sealing) {
        return LG_ERR_STATE;
    }
    int rc;
#ifdef LG_HAVE_LIBDEFLATE
    rc = b->gz ? seal_feed_members(b, budget) : seal_feed_rows(b, budget);
#else
    rc = seal_feed_rows(b, budget);
#endif
    if (rc == LG_OK && b->seal_next < b->count) {
        return LG_ERR_AGAIN;
    }
    if (rc == LG_OK && b->gz && !LG_BATCH_USE_MEMBERS) {
        rc = deflate_feed(&b->zs, NULL, 0, Z_FINISH);
        if (rc == LG_OK) {
            lg_buf_commit(&b->body, b->seal_bound - b->zs.avail_out);
        }
    }
    seal_abort(b);
    if (rc != LG_OK) {
        lg_buf_reset(&b->body);
        b->id[0] = 0;
    }
    return rc;
}

bool lg_batch_is_sealing(const lg_batch *b)
{
    return b->sealing;
}

int lg_batch_seal(lg_batch *b, bool gzip)
{
    int rc = lg_batch_seal_begin(b, gzip);
    if (rc == LG_OK) {
        rc = lg_batch_seal_step(b, SIZE_MAX);
    }
    return rc;
}

unsigned lg_batch_format(const lg_batch *b)
{
    return b->fmt;
}

const char *lg_batch_id(const lg_batch *b)
{
    return b->id;
}

struct lg_slice lg_batch_body(const lg_batch *b)
{
    return lg_buf_slice(&b->body);
}

size_t lg_batch_body_len(const lg_batch *b)
{
    return b->streamed ? b->raw_len : b->body.len;
}

/* Row |i|'s bytes in a streamed body: the open row, then the suffix. Body offset of row i
 * is offs[i] + i * suffix_len. */
static size_t stream_read(lg_batch *b, size_t off, uint8_t *dst, size_t cap)
{
    if (off < b->rd_base) {
        /* A read behind the cursor (a rewind): find the row by binary search. */
        size_t lo = 0, hi = b->count;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (b->offs[mid] + mid * b->suffix_len <= off) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        b->rd_row = lo;
        b->rd_base = b->offs[lo] + lo * b->suffix_len;
    }
    size_t n = 0;
    while (n < cap && b->rd_row < b->count) {
        size_t rlen = b->offs[b->rd_row + 1] - b->offs[b->rd_row];
        size_t whole = rlen + b->suffix_len;
        size_t in = off + n - b->rd_base; /* offset inside row rd_row + suffix */
        if (in >= whole) {
            b->rd_base += whole;
            b->rd_row++;
            continue;
        }
        size_t take;
        if (in < rlen) {
            take = rlen - in < cap - n ? rlen - in : cap - n;
            memcpy(dst + n, row_at(b, b->rd_row) + in, take);
        } else {
            size_t sin = in - rlen;
            take = b->suffix_len - sin < cap - n ? b->suffix_len - sin : cap - n;
            memcpy(dst + n, b->suffix + sin, take);
        }
        n += take;
    }
    return n;
}

size_t lg_batch_body_read(lg_batch *b, size_t off, uint8_t *dst, size_t cap)
{
    if (b->streamed) {
        return off < b->raw_len ? stream_read(b, off, dst, cap) : 0;
    }
    if (off >= b->body.len) {
        return 0;
    }
    size_t n = b->body.len - off < cap ? b->body.len - off : cap;
    memcpy(dst, b->body.data + off, n);
    return n;
}

size_t lg_batch_body_raw_len(const lg_batch *b)
{
    return b->raw_len;
}
