/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_batch: sans-I/O assembly of one ClickHouse insert from encoded rows.
 *
 * Purpose: collects open rows of one format (lg_record_encode_row output, JSONEachRow: '{'
 * ... without the closing brace; or lg_record_encode_rowbinary output: a version byte and
 * the RowBinary columns) until a row, byte or age limit is reached; then lg_batch_seal
 * computes a deterministic batch_id (a 64-bit hash, XXH3 or FNV-1a by build, of each row's
 * CRC-32 and length in order, and their count, so the same rows always give the same id,
 * across restarts), closes every row with ,"batch_id":"<id>"}\n (JSON) or appends the id as
 * the batch_id String column (RowBinary), and gzips the body (or streams it:
 * lg_batch_seal_stream). A row ClickHouse rejects can be removed (lg_batch_remove) and the
 * batch sealed again; its id changes with its content.
 *
 * Thread: none; a batch belongs to the shipper thread.
 * Ownership: rows are copied in (lg_batch_add*), or lent with a hold on their memory
 * (lg_batch_add_ref); lg_batch_row / lg_batch_body / lg_batch_id return views valid until
 * the next mutation of the batch.
 * Errors: LG_ERR_EXHAUSTED (batch full: row not added), LG_ERR_INVALID, LG_ERR_NOMEM,
 * LG_ERR_TOO_LARGE, LG_ERR_INTERNAL (zlib failure).
 */
#ifndef LG_BATCH_H
#define LG_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lg_buf.h"

typedef struct lg_batch lg_batch;

struct lg_batch_limits {
    size_t max_rows;    /* rows per insert */
    size_t max_bytes;   /* raw (uncompressed) row bytes per insert; a single larger row is
                           still accepted alone */
    int64_t max_age_ms; /* a non-empty batch is due this long after its first row */
};

int lg_batch_new(lg_batch **out, const struct lg_batch_limits *lim);
void lg_batch_free(lg_batch *b);
/* Empties the batch (keeps its memory). */
void lg_batch_reset(lg_batch *b);

/* Gives back the memory of an empty batch whose buffers grew past |keep_bytes| (a backlog
 * fills batches to their byte cap; a batch keeps its memory across lg_batch_reset, so
 * without this a gateway would hold two full batches for good after one outage). No-op
 * while the batch holds rows or is being sealed. */
void lg_batch_trim(lg_batch *b, size_t keep_bytes);

/* Adds one open row of |len| bytes, read at |now_ms| (monotonic). LG_OK, LG_ERR_EXHAUSTED
 * when the batch already holds max_rows rows, the row would pass max_bytes (and the batch
 * is not empty), the row's start_time_ms is in another UTC month than the batch's rows
 * (one batch never spans two monthly partitions, so it lands whole or not at all), or it
 * is in another format than theirs (one INSERT statement per batch), LG_ERR_INVALID (an
 * empty row, a row starting with neither '{' nor LG_RECORD_ROWBINARY_V1, or a RowBinary row
 * that is not exactly one whole row: lg_record_rowbinary_check), LG_ERR_NOMEM. */
int lg_batch_add(lg_batch *b, const uint8_t *row, size_t len, int64_t now_ms);
/* lg_batch_add for a row whose CRC-32 (lg_spool_crc32 of its |len| bytes) the caller already
 * has, such as the spool frame's it was read from (lg_spool_last_crc). A wrong |crc| gives a
 * wrong batch_id, nothing worse. */
int lg_batch_add_crc(lg_batch *b, const uint8_t *row, size_t len, uint32_t crc, int64_t now_ms);
/* Reference mode, for rows that already sit in memory that outlives the batch (the
 * spool's read buffers): lg_batch_add_ref adds a row without copying it; |hold| names the
 * caller's block of memory the row lies in, which the batch keeps retained (|retain| once
 * per block, when a row from a block other than the last row's comes) until
 * lg_batch_reset or lg_batch_free call |release| for it. The rows must stay unchanged
 * meanwhile. A batch takes rows one way until it is reset: lg_batch_add_ref into a batch
 * holding copied rows, or the reverse, is LG_ERR_INVALID (as is a NULL |hold|, or no
 * holder set). Other results as lg_batch_add_crc. lg_batch_set_holder sets the two
 * callbacks and their context (for every later lg_batch_add_ref). */
void lg_batch_set_holder(lg_batch *b, void (*retain)(void *ctx, void *hold),
                         void (*release)(void *ctx, void *hold), void *ctx);
int lg_batch_add_ref(lg_batch *b, const uint8_t *row, size_t len, uint32_t crc,
                     int64_t now_ms, void *hold);
/* lg_batch_add_ref for a row the caller knows to be whole as lg_record_encode_rowbinary
 * wrote it (the shipper: rows its own encoder wrote in this process, read back from the
 * spool's memory): a RowBinary row is not walked (lg_record_rowbinary_check), only its
 * start_time_ms must be there. A row that is not whole would make ClickHouse misread the
 * rows after it: rows from files, from other processes or builds go through
 * lg_batch_add_ref. */
int lg_batch_add_ref_whole(lg_batch *b, const uint8_t *row, size_t len, uint32_t crc,
                           int64_t now_ms, void *hold);
/* True when the batch holds max_rows rows or max_bytes bytes. */
bool lg_batch_is_full(const lg_batch *b);
/* True when the batch should be sent now: full, or non-empty and max_age_ms old. */
bool lg_batch_is_due(const lg_batch *b, int64_t now_ms);
/* Milliseconds until the batch becomes due by age: 0 if due, INT64_MAX if empty (nothing to
 * wait for). */
int64_t lg_batch_ms_until_due(const lg_batch *b, int64_t now_ms);
size_t lg_batch_count(const lg_batch *b);
/* Raw row bytes held. */
size_t lg_batch_bytes(const lg_batch *b);
/* The smallest and largest "start_time_ms" among the rows, for narrowing the landed-check
 * query to the partitions the batch can be in. false when a row had none (or the batch is
 * empty): then no narrowing is safe. */
bool lg_batch_time_range(const lg_batch *b, int64_t *min_ms, int64_t *max_ms);
/* Row |i| (0-based) as ClickHouse gets it, without batch_id (a RowBinary row without its
 * version byte). */
struct lg_slice lg_batch_row(const lg_batch *b, size_t i);
/* Removes row |i|. LG_OK or LG_ERR_INVALID. The batch must be sealed again. */
int lg_batch_remove(lg_batch *b, size_t i);

/* Computes the batch_id and builds the body; |gzip| compresses it (Content-Encoding: gzip).
 * LG_OK, LG_ERR_INVALID (empty), LG_ERR_NOMEM, LG_ERR_INTERNAL. */
int lg_batch_seal(lg_batch *b, bool gzip);
/* The same in steps, so a shipper can keep its in-flight transfer moving while the next
 * batch is compressed: lg_batch_seal_begin computes the batch_id and prepares the body
 * (LG_OK, LG_ERR_INVALID (empty), LG_ERR_NOMEM, LG_ERR_INTERNAL); each
 * lg_batch_seal_step then encodes rows worth about |budget| raw bytes and returns
 * LG_ERR_AGAIN while rows are left, LG_OK once the body is complete, LG_ERR_STATE when no
 * seal was begun, LG_ERR_NOMEM / LG_ERR_INTERNAL (the seal is then abandoned). Adding
 * rows while sealing is refused (LG_ERR_INVALID); lg_batch_reset and lg_batch_remove
 * abandon a seal in progress. lg_batch_seal is begin + one unbounded step. */
int lg_batch_seal_begin(lg_batch *b, bool gzip);
int lg_batch_seal_step(lg_batch *b, size_t budget);
/* True between lg_batch_seal_begin and the step that finished (or failed). */
bool lg_batch_is_sealing(const lg_batch *b);
/* Seals without building a body: computes the batch_id only; the uncompressed body (rows
 * with their batch_id) is produced by lg_batch_body_read straight from the rows, so an
 * uncompressed insert copies each byte once (into curl's buffer) instead of twice.
 * LG_OK, LG_ERR_INVALID (empty). Abandons a seal in progress. */
int lg_batch_seal_stream(lg_batch *b);
/* Bytes of the last seal's body as sent (compressed, or raw for a streamed seal). */
size_t lg_batch_body_len(const lg_batch *b);
/* Copies body bytes [off, off + n) of the last seal into |dst|, n = min(cap, len - off);
 * any kind of seal. Sequential reads are O(bytes); a read behind the last one finds its
 * row by binary search. Returns n (0 at the end). The batch must not change meanwhile. */
size_t lg_batch_body_read(lg_batch *b, size_t off, uint8_t *dst, size_t cap);
/* The rows' format: '{' (JSONEachRow) or their RowBinary version (LG_RECORD_ROWBINARY_V1);
 * meaningful while the batch holds rows. */
unsigned lg_batch_format(const lg_batch *b);
/* The id of the last seal ("" before). */
const char *lg_batch_id(const lg_batch *b);
/* The body of the last seal ({NULL, 0} after lg_batch_seal_stream). */
struct lg_slice lg_batch_body(const lg_batch *b);
/* Size of the last sealed body before compression. */
size_t lg_batch_body_raw_len(const lg_batch *b);

#endif /* LG_BATCH_H */
