/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_spool: the shipper's write-ahead spool on local disk.
 *
 * Purpose: every billing record not yet acknowledged by ClickHouse lives here, so an outage,
 * a restart or a kill -9 loses nothing that reached the spool. Records are appended to
 * numbered segment files (DIR/<20-digit number>.seg, an 8-byte magic "LGSPOOL2", then
 * frames of u32 length (LE) | u32 CRC-32 of the payload XOR a value derived from the
 * segment number (LE) | payload). Segments of version 1 ("LGSPOOL1", no XOR) from an
 * older build are read, recovered and appended to as they are. A small state file
 * (DIR/state, replaced atomically with write+fsync+rename) holds the acknowledged position
 * and the batch in flight, so a restart knows where to resume and which batch_id to check
 * before resending. Segments wholly before the acknowledged position are deleted
 * (lg_spool_reap; a restart before that skips them: they lie before the ack), but for one
 * that lg_spool_reap keeps as DIR/spare and the next new segment reuses (recycling: writing
 * over allocated, cached blocks instead of a new file's; the spare is not counted in
 * max_bytes and is deleted when the disk fills). A recycled file's old frames carry
 * another segment number's XOR, so none passes the CRC check under its new number. The
 * total size of the segments plus buffered bytes never exceeds max_bytes: an append past
 * it fails with LG_ERR_EXHAUSTED (the caller counts the drop).
 *
 * Write failures (disk full, EIO): a failed write is rolled back (the segment is truncated
 * to its last good size, so it never ends in a torn frame) and the unwritten records stay
 * in the write buffer, retried by the next lg_spool_flush. Until a flush writes them,
 * lg_spool_append refuses every record with LG_ERR_IO: a record is never accepted that
 * cannot be persisted, and the memory held is bounded by the buffer. When the failed write
 * meets an active segment that is wholly acknowledged (lg_spool_save_state), that segment
 * is deleted and the write retried in the next one: a spool that filled its disk recovers
 * as soon as ClickHouse has taken what it holds. Records that are finally given up
 * (lg_spool_discard, lg_spool_close after a failed flush) are counted in stats.lost.
 *
 * Reading back: records written by this process are usually read from memory. A written
 * write buffer is kept (up to LG_SPOOL_HANDOFF_BYTES, by swapping buffers, not copying)
 * until the reader reaches it, and its frames are not CRC-checked again: they are the bytes
 * the CRC was computed over. Everything else (a reader behind, a restart) is read from the
 * segment files and checked. stats.read_from_memory / read_from_file count each.
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
 * lg_spool_flush(sync=true) and lg_spool_sync_run (without the writer lock),
 * lg_spool_save_state, lg_spool_open (recovery) and lg_spool_close (also for segments
 * rotated away and new directory entries): never inside lg_spool_append (but for a second
 * rotation before the first rotated segment was synced), which request threads call on the overflow path (and which never
 * retries a failed write: only lg_spool_flush does).
 * Ownership: the spool copies what it is given; lg_spool_read fills a caller-owned lg_buf;
 * lg_spool_read_view lends a view of its own buffer.
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
struct lg_slice;

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
    uint64_t lost;            /* records accepted but discarded unwritten (write failures) */
    bool write_failed;        /* the last write failed: appends refuse until a flush writes */
    uint64_t read_from_memory; /* records lg_spool_read* served from written buffers kept */
    uint64_t read_from_file;   /* records they read back from the segment files */
    uint64_t recycled;         /* segments made from the spare file (not created) */
};

/* Opens (or creates) the spool in |o->dir|, recovering a torn tail. Returned owned.
 * LG_OK, LG_ERR_INVALID (options), LG_ERR_IO, LG_ERR_NOMEM, or LG_ERR_CORRUPT: the state
 * file (the acknowledged position and the batch in flight) does not parse or fails its
 * CRC, or a segment kept after recovery has no magic. Nothing is guessed and nothing is
 * changed on disk; without a state file the spool opens at its oldest segment. */
int lg_spool_open(lg_spool **out, const struct lg_spool_opts *o);
/* Flushes and fsyncs buffered records, closes files, frees |sp|. Accepts NULL. */
void lg_spool_close(lg_spool *sp);

/* Appends one record of |len| bytes (copied). LG_OK, LG_ERR_EXHAUSTED (cap reached; nothing
 * written), LG_ERR_TOO_LARGE (len > LG_SPOOL_MAX_RECORD_BYTES), LG_ERR_IO (a write failed,
 * now or earlier and not yet retried by a successful flush: the record is not taken),
 * LG_ERR_NOMEM. On any error the record is not in the spool. */
int lg_spool_append(lg_spool *sp, const void *p, size_t len);
/* Batched appends, for a thread that spools many records at once (the shipper): one lock
 * per call instead of one per record, and no copy of the row between encoder and spool.
 * A frame is LG_SPOOL_FRAME_HDR_BYTES of header then the payload: reserve the header,
 * write the payload after it, then lg_spool_frame_finish(frame, payload_len) fills the
 * header (length, CRC-32). LG_OK or LG_ERR_TOO_LARGE (payload_len past
 * LG_SPOOL_MAX_RECORD_BYTES). Pure. */
#define LG_SPOOL_FRAME_HDR_BYTES 8
int lg_spool_frame_finish(uint8_t *frame, size_t payload_len);
/* Appends the finished frames in |frames| (|len| bytes, back to back) in order, each as
 * lg_spool_append would, stopping at the first one refused. Their CRCs are taken as
 * given (lg_spool_frame_finish made them): a read from memory does not recheck them. |*taken| gets the bytes of the
 * frames appended (a prefix of whole frames; the rest are not in the spool). LG_OK (all
 * taken), the refused frame's error (LG_ERR_EXHAUSTED, LG_ERR_IO, LG_ERR_NOMEM), or
 * LG_ERR_INVALID (|frames| does not parse as frames: nothing from there on is taken). */
int lg_spool_append_frames(lg_spool *sp, const uint8_t *frames, size_t len, size_t *taken);
/* lg_spool_append_frames over all of |frames|, without copying them when it can: when
 * every frame would be taken, none crossing into a new segment (one may start the run)
 * and |frames| fits the write buffer, the spool takes |frames|' memory and gives |frames|
 * its own empty memory in exchange (|frames| is left empty, its maximum unchanged; the
 * buffered frames before it, if any, are written first). Otherwise copies as
 * lg_spool_append_frames (|frames| unchanged). |*taken| and the result as there. */
int lg_spool_append_buf(lg_spool *sp, struct lg_buf *frames, size_t *taken);
/* Writes buffered records to the segment file; with |sync|, fdatasync()s it too. LG_OK or
 * LG_ERR_IO (what could not be written stays buffered for the next call). */
int lg_spool_flush(lg_spool *sp, bool sync);
/* lg_spool_flush(sync=true) in two steps, so the disk wait holds no lock and can run on
 * another thread than the writer's: appends (producers on the overflow path) never wait
 * for an fdatasync, and neither does a shipper loop feeding an insert.
 * lg_spool_sync_begin writes the buffer (as lg_spool_flush) and takes into |job| what must
 * reach the disk for everything written so far (a duplicate of the active segment's
 * descriptor, the segment rotated away since the last sync, whether the directory
 * changed); LG_OK or LG_ERR_IO (the write failed; |job| may still hold descriptors: run
 * it anyway, which releases them). lg_spool_sync_run, with no lock held and from any
 * thread, fdatasync()s and closes those files and fsyncs the directory; LG_OK or
 * LG_ERR_IO (the directory is retried by the next sync). One job at a time per spool. */
struct lg_spool_sync {
    int fd[2];
    bool dir;
};
int lg_spool_sync_begin(lg_spool *sp, struct lg_spool_sync *job);
int lg_spool_sync_run(lg_spool *sp, struct lg_spool_sync *job);
/* Gives up the buffered records a failed flush could not write: frees them, adds them to
 * stats.lost and returns how many (the caller logs and counts the loss). For shutdown. */
uint64_t lg_spool_discard(lg_spool *sp);

/* Reads the record at |*cur| into |out| (reset first) and advances |*cur| past it. Only
 * flushed records are visible. LG_OK, LG_ERR_AGAIN (no further record yet),
 * LG_ERR_CORRUPT (CRC mismatch: |*cur| moved to the next segment; call again),
 * LG_ERR_IO (also when the read-ahead buffer cannot grow), LG_ERR_NOMEM / LG_ERR_TOO_LARGE
 * (|out| cap: |*cur| stays on the record). */
int lg_spool_read(lg_spool *sp, struct lg_spool_pos *cur, struct lg_buf *out);
/* The same without a copy: |*out| points into the spool's read-ahead buffer, valid until
 * the next lg_spool_read* / lg_spool_close call. Errors as lg_spool_read (no cap error). */
int lg_spool_read_view(lg_spool *sp, struct lg_spool_pos *cur, struct lg_slice *out);

/* Holding what lg_spool_read_view returned past the next read (a batch that lends its rows
 * instead of copying them). lg_spool_last_block names the block of memory the last view
 * lies in (NULL: LG_ERR_NOMEM); while retained (lg_spool_block_retain, any number of
 * times) its bytes stay valid and unchanged, whatever the reader does next, until as
 * many lg_spool_block_release calls. Released memory is reused by the reader (up to
 * LG_SPOOL_FREE_BLOCK_BYTES kept; lg_spool_trim_free gives back all but |keep_bytes|).
 * The reader's thread only; every block is released before lg_spool_close. */
void *lg_spool_last_block(lg_spool *sp);
void lg_spool_block_retain(lg_spool *sp, void *blk);
void lg_spool_block_release(lg_spool *sp, void *blk);
void lg_spool_trim_free(lg_spool *sp, uint64_t keep_bytes);

/* The CRC-32 of the record the last successful lg_spool_read / lg_spool_read_view returned
 * (checked against its bytes by that read). */
uint32_t lg_spool_last_crc(const lg_spool *sp);
/* True when that record came from a written buffer this spool kept (bytes appended by this
 * process since it opened the spool), false when it was read back from a segment file. */
bool lg_spool_last_from_memory(const lg_spool *sp);
/* CRC-32 (the zlib/gzip polynomial) of |len| bytes: the frames' checksum. Pure. */
uint32_t lg_spool_crc32(const void *p, size_t len);

/* The state loaded at open or last saved. A fresh spool starts at the first record. */
void lg_spool_get_state(const lg_spool *sp, struct lg_spool_state *out);
/* Deletes segments that lie wholly before st->ack, then persists |st| atomically (write,
 * fsync, rename, fsync dir). Everything before st->ack must be in ClickHouse (it may be
 * deleted even when persisting fails). LG_OK or LG_ERR_IO (the old state stays valid). */
int lg_spool_save_state(lg_spool *sp, const struct lg_spool_state *st);

/* Removes the files of segments lg_spool_save_state dropped (wholly acknowledged): a
 * truncate and an unlink each, done here rather than inside save_state so the thread that
 * acknowledges batches does not wait on the page cache (~15 ms per 64 MiB segment). Their
 * bytes already left the spool's count. Any thread, no lock held while removing; also done
 * by lg_spool_close. On a full disk save_state removes them itself. */
void lg_spool_reap(lg_spool *sp);

/* True when no record (written or buffered) lies at or after |pos|. Any thread. */
bool lg_spool_at_end(lg_spool *sp, struct lg_spool_pos pos);

/* True when |a| is before |b|. */
bool lg_spool_pos_before(struct lg_spool_pos a, struct lg_spool_pos b);

void lg_spool_get_stats(lg_spool *sp, struct lg_spool_stats *out);

#endif /* LG_SPOOL_H */
