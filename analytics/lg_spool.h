/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_spool: the shipper's write-ahead spool on local disk.
 *
 * Purpose: every billing record not yet acknowledged by ClickHouse lives here, so an outage,
 * a restart or a kill -9 loses nothing that reached the spool. Records are appended to
 * numbered segment files (DIR/<20-digit number>.seg, an 8-byte magic "LGSPOOL1", then
 * frames of u32 length (LE) | u32 CRC-32 of the payload (LE) | payload). A small state file
 * (DIR/state, replaced atomically with write+fsync+rename) holds the acknowledged position
 * and the batch in flight, so a restart knows where to resume and which batch_id to check
 * before resending. Segments wholly before the acknowledged position are deleted. The
 * total size of the segments plus buffered bytes never exceeds max_bytes: an append past
 * it fails with LG_ERR_EXHAUSTED (the caller counts the drop).
 *
 * Recovery (lg_spool_open): the last segment is scanned; a torn tail (short header, length
 * past the end, or CRC mismatch) is truncated and counted (stats.torn_bytes). A CRC
 * mismatch met by lg_spool_read inside an earlier segment skips the rest of that segment
 * and is counted (stats.corrupt_records): data loss is reported, never hidden.
 *
 * Thread: lg_spool_append and lg_spool_flush may be called from any thread (a mutex guards
 * the writer; the append path only copies into a buffer unless that buffer is full).
 * lg_spool_read, lg_spool_save_state and lg_spool_get_state belong to one thread (the
 * shipper). open/close while no other thread uses the spool. fsync runs only in
 * lg_spool_flush(sync=true), lg_spool_save_state, lg_spool_open (recovery) and
 * lg_spool_close (also for segments rotated away and new directory entries): never inside
 * lg_spool_append, which request threads call on the overflow path.
 * Ownership: the spool copies what it is given; lg_spool_read fills a caller-owned lg_buf.
 * Errors: LG_ERR_IO (with errno logged by the caller's context), LG_ERR_NOMEM,
 * LG_ERR_EXHAUSTED (cap), LG_ERR_TOO_LARGE (record larger than the maximum), LG_ERR_AGAIN
 * (nothing more to read yet), LG_ERR_CORRUPT (bad record skipped; read again),
 * LG_ERR_INVALID (bad options).
 */
#ifndef LG_SPOOL_H
#define LG_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lg_buf;

typedef struct lg_spool lg_spool;

/* A position in the spool: segment number and byte offset in that segment. */
struct lg_spool_pos {
    uint64_t seg;
    uint64_t off;
};

#define LG_SPOOL_BATCH_ID_BYTES 64 /* room for a batch id plus NUL */

/* What survives a restart besides the records themselves. */
struct lg_spool_state {
    struct lg_spool_pos ack;          /* everything before this landed in ClickHouse */
    bool has_inflight;                /* a batch was being sent */
    struct lg_spool_pos inflight_end; /* it covered [ack, inflight_end) */
    char batch_id[LG_SPOOL_BATCH_ID_BYTES]; /* and carried this batch_id */
};

struct lg_spool_opts {
    const char *dir;        /* created with its parents (0700) if missing; borrowed */
    uint64_t max_bytes;     /* cap on segment bytes on disk plus buffered bytes */
    uint64_t segment_bytes; /* a segment is closed once it reaches this size */
};

struct lg_spool_stats {
    uint64_t bytes;           /* current total (segments + buffered) */
    uint64_t segments;        /* segment files present */
    uint64_t torn_bytes;      /* bytes truncated from a torn tail at open */
    uint64_t corrupt_records; /* records skipped because of a CRC mismatch */
    uint64_t appended;        /* records appended since open */
};

/* Opens (or creates) the spool in |o->dir|, recovering a torn tail. Returned owned. */
int lg_spool_open(lg_spool **out, const struct lg_spool_opts *o);
/* Flushes and fsyncs buffered records, closes files, frees |sp|. Accepts NULL. */
void lg_spool_close(lg_spool *sp);

/* Appends one record of |len| bytes (copied). LG_OK, LG_ERR_EXHAUSTED (cap reached; nothing
 * written), LG_ERR_TOO_LARGE (len > LG_SPOOL_MAX_RECORD_BYTES), LG_ERR_IO, LG_ERR_NOMEM. */
int lg_spool_append(lg_spool *sp, const void *p, size_t len);
/* Writes buffered records to the segment file; with |sync|, fdatasync()s it too. */
int lg_spool_flush(lg_spool *sp, bool sync);

/* Reads the record at |*cur| into |out| (reset first) and advances |*cur| past it. Only
 * flushed records are visible. LG_OK, LG_ERR_AGAIN (no further record yet),
 * LG_ERR_CORRUPT (CRC mismatch: |*cur| moved to the next segment; call again),
 * LG_ERR_IO, LG_ERR_NOMEM / LG_ERR_TOO_LARGE (|out| cap). */
int lg_spool_read(lg_spool *sp, struct lg_spool_pos *cur, struct lg_buf *out);

/* The state loaded at open or last saved. A fresh spool starts at the first record. */
void lg_spool_get_state(const lg_spool *sp, struct lg_spool_state *out);
/* Persists |st| atomically (write, fsync, rename, fsync dir), then deletes segments that lie
 * wholly before st->ack. LG_OK or LG_ERR_IO (the old state stays valid). */
int lg_spool_save_state(lg_spool *sp, const struct lg_spool_state *st);

/* True when no record (written or buffered) lies at or after |pos|. Any thread. */
bool lg_spool_at_end(lg_spool *sp, struct lg_spool_pos pos);

/* True when |a| is before |b|. */
bool lg_spool_pos_before(struct lg_spool_pos a, struct lg_spool_pos b);

void lg_spool_get_stats(lg_spool *sp, struct lg_spool_stats *out);

#endif /* LG_SPOOL_H */
