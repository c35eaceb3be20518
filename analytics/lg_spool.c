/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef LG_HAVE_LIBDEFLATE
#    include <libdeflate.h>
#endif
#include <zlib.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

/* Segment magic: identifies the format and its version. Version 2 (written now) XORs a
 * per-segment value into each frame's CRC field (seg_mask); version 1 segments (from an
 * older build) are read and appended to as they are. */
#define SPOOL_MAGIC "LGSPOOL2"
#define SPOOL_MAGIC_V1 "LGSPOOL1"
#define SPOOL_MAGIC_LEN 8
/* A wholly acknowledged segment file kept for reuse as the next segment (see "Recycling"). */
#define SPOOL_SPARE_NAME "spare"
/* Frame header: u32 length, u32 CRC-32 (both little endian). */
#define SPOOL_FRAME_HDR 8
_Static_assert(SPOOL_FRAME_HDR == LG_SPOOL_FRAME_HDR_BYTES, "frame header size");
/* "<20 digits>.seg" plus the directory. */
#define SPOOL_PATH_MAX 4096

/* A block of the reader's memory that records returned by lg_spool_read_view lie in. Held
 * (lg_spool_block_retain) it outlives the reader's next refill: the reader detaches it
 * and reads on into other memory, and the last lg_spool_block_release gives the memory
 * to the free list. */
struct spool_block {
    uint8_t *data; /* the memory, owned here once detached */
    size_t cap;
    unsigned refs;
    bool detached;
};

/* A free block's header, kept in its own first bytes (the free list costs no memory). */
struct spool_free {
    struct spool_free *next;
    size_t cap;
};

struct lg_spool {
    char *dir;
    uint64_t max_bytes;
    uint64_t segment_bytes;

    pthread_mutex_t mu;  /* guards everything in this block */
    int wfd;             /* active segment, written at its file offset (|wsize|) */
    uint64_t wseg;       /* its number */
    uint64_t wsize;      /* bytes written to it (flushed) */
    uint32_t wmask;      /* its frames' CRC mask (seg_mask; 0 for a version 1 segment) */
    uint64_t wstale;     /* a recycled file's old size: bytes past |wsize| are leftovers */
    struct lg_buf wbuf;  /* frames not yet written */
    /* The first |wmasked| bytes of |wbuf| (frames a failed write left) carry the mask
     * |wmasked_with| already; the rest carry plain CRCs. Frames are masked at the write,
     * where the segment they land in is known. */
    size_t wmasked;
    uint32_t wmasked_with;
    /* Recycling: a wholly acknowledged segment file is renamed to DIR/spare by
     * lg_spool_reap instead of being truncated and unlinked, and becomes the next new
     * segment: its blocks stay allocated and its pages cached, so writing over them costs
     * no page allocation, block reservation, truncate or file creation (perf at 30k rows/s:
     * those were ~12% of the shipper's threads). Its old frames carry another segment's
     * mask, so none can pass as a frame of its new number; the leftovers past the new
     * data are cut at rotation, and by recovery after a crash. */
    bool spare_ready;    /* DIR/spare exists and may be taken */
    bool spare_busy;     /* lg_spool_reap is renaming a segment to it */
    uint64_t recycled;   /* segments made from the spare */
    uint64_t disk_bytes; /* bytes of all segment files */
    uint64_t first_seg;  /* lowest segment present */
    uint64_t reap_lo, reap_hi; /* dropped segments whose files lg_spool_reap removes */
    uint64_t appended;
    uint64_t wbuf_records; /* records in |wbuf| */
    int werr;            /* permanent write error: a failed write could not be rolled back */
    bool wfailed;        /* the last write failed and was rolled back: appends refuse with
                            LG_ERR_IO (no request thread retries I/O) until a flush writes */
    struct lg_spool_pos acked; /* highest acknowledged position passed to save_state */
    uint64_t lost;       /* records discarded unwritten (lg_spool_discard, close) */
    int unsynced_fd;     /* the previous segment, rotated away but not yet fdatasync'd */
    uint64_t unsynced_seg; /* its number */
    bool dir_dirty;      /* a segment was created since the directory was last fsync'd */
    /* Handoff: write buffers already written to the segment, kept for the reader instead
     * of being emptied, so records the shipper reads soon after writing them come from
     * memory: no pread copy back out of the page cache and no CRC pass (the bytes are the
     * ones the CRC was computed over). A queue of LG_SPOOL_HANDOFF_SLOTS buffers in write
     * order, holding at most LG_SPOOL_HANDOFF_BYTES; when the reader falls behind, newer
     * buffers are emptied as before and it reads those records from the file. Buffers move
     * between |wbuf|, the slots and |rb| by swapping their memory, never by copying. */
    struct lg_buf ho[LG_SPOOL_HANDOFF_SLOTS];
    struct lg_spool_pos ho_pos[LG_SPOOL_HANDOFF_SLOTS]; /* where each slot's bytes start */
    size_t ho_head, ho_n;
    uint64_t ho_bytes;   /* bytes held in the slots */

    /* Reader side: the shipper thread only. */
    int rfd;
    uint64_t rseg;     /* segment |rfd| belongs to; UINT64_MAX none */
    struct lg_buf rb;  /* read-ahead: bytes of segment |rseg| starting at |rb_off| */
    uint64_t rb_off;
    bool rb_mem;       /* |rb| came from the handoff, not from the file: CRCs not rechecked */
    uint32_t rmask;    /* segment |rseg|'s CRC mask */
    struct spool_block *rb_blk; /* |rb|'s memory as a block, once lg_spool_last_block asked */
    struct spool_free *free;    /* released blocks' memory, reused by the reader */
    uint64_t free_bytes;
    /* Records read from the handoff / from the file: written by the reader only, read by
     * lg_spool_get_stats from any thread. */
    _Atomic uint64_t read_mem, read_file;
    /* The writer's end (wseg, wsize) and first_seg as last seen under |mu|. Reads before
     * that end need no lock (flushed bytes before it never change while unacknowledged):
     * one lock per record was 4% of a replay's CPU. Refreshed when a read reaches it. */
    uint64_t rk_wseg, rk_wsize, rk_first;
    uint32_t last_crc; /* of the record the last read returned */
    bool last_mem;     /* that record came from a written buffer (not the file) */

    struct lg_spool_state state;
    uint64_t torn_bytes; /* set at open (recovery), before any other thread sees the spool */
    _Atomic uint64_t corrupt_records; /* the reader counts; lg_spool_get_stats from any thread */
};

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Exchanges the memory of two buffers; each keeps its own maximum (|a|'s contents must fit
 * |b|'s and the other way round). */
static void buf_swap(struct lg_buf *a, struct lg_buf *b)
{
    struct lg_buf t = *a;
    a->data = b->data;
    a->len = b->len;
    a->cap = b->cap;
    b->data = t.data;
    b->len = t.len;
    b->cap = t.cap;
}

/* CRC-32 (the zlib/gzip polynomial). libdeflate's computes the same values about 4x faster
 * than zlib 1.2.13's (PCLMUL; 7.9 vs 2.1 GB/s measured here), and every record is checked
 * once when written and once per read, so spools stay readable by either build. */
static uint32_t crc_of(const void *p, size_t len)
{
#ifdef LG_HAVE_LIBDEFLATE
    return libdeflate_crc32(0, p, len);
#else
    return (uint32_t)crc32(0L, (const Bytef *)p, (uInt)len);
#endif
}

/* The value XORed into the CRC field of version 2 segment |seg|'s frames: a multiplication
 * by an odd constant is a bijection mod 2^32, so segments whose numbers differ by less than
 * 2^32 have different masks and a frame written under one number never checks under
 * another (a recycled file's leftovers). Never 0 (the version 1 value) below 2^32 - 1. */
static uint32_t seg_mask(uint64_t seg)
{
    return (uint32_t)((seg + 1u) * 2654435761u);
}

/* The mask of a segment whose file starts with |magic| (SPOOL_MAGIC_LEN bytes). False for
 * a file that is no segment of either version. */
static bool magic_mask(const uint8_t *magic, uint64_t seg, uint32_t *mask)
{
    if (memcmp(magic, SPOOL_MAGIC, SPOOL_MAGIC_LEN) == 0) {
        *mask = seg_mask(seg);
        return true;
    }
    if (memcmp(magic, SPOOL_MAGIC_V1, SPOOL_MAGIC_LEN) == 0) {
        *mask = 0;
        return true;
    }
    return false;
}

/* XORs |x| into the CRC field of each frame of |p| (|len| bytes of whole frames). */
static void xor_crcs(uint8_t *p, size_t len, uint32_t x)
{
    if (x == 0) {
        return;
    }
    for (size_t off = 0; len - off >= SPOOL_FRAME_HDR;) {
        put_u32(p + off + 4, get_u32(p + off + 4) ^ x);
        off += SPOOL_FRAME_HDR + (size_t)get_u32(p + off);
        if (off > len) {
            break;
        }
    }
}

static int seg_path(const lg_spool *sp, uint64_t seg, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%020" PRIu64 ".seg", sp->dir, seg);
    return (n < 0 || (size_t)n >= outlen) ? LG_ERR_INVALID : LG_OK;
}

/* Writes all |len| bytes; |*done| (optional) gets how many were written, also on failure
 * (a full disk takes a prefix). */
static int write_all_count(int fd, const uint8_t *p, size_t len, size_t *done)
{
    size_t got = 0;
    int rc = LG_OK;
    while (got < len) {
        ssize_t n = write(fd, p + got, len - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = LG_ERR_IO;
            break;
        }
        got += (size_t)n;
    }
    if (done != NULL) {
        *done = got;
    }
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    return write_all_count(fd, p, len, NULL);
}

static ssize_t pread_all(int fd, uint8_t *p, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return LG_ERR_IO;
    }
    int rc = fsync(fd) == 0 ? LG_OK : LG_ERR_IO;
    close(fd);
    return rc;
}

static int spare_path(const lg_spool *sp, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/" SPOOL_SPARE_NAME, sp->dir);
    return (n < 0 || (size_t)n >= outlen) ? LG_ERR_INVALID : LG_OK;
}

/* Makes the spare file segment |seg| (at |path|) when there is one and no file of that name
 * exists. True when it did. Caller holds mu. */
static bool take_spare_locked(lg_spool *sp, const char *path)
{
    if (!sp->spare_ready || sp->spare_busy) {
        return false;
    }
    char spare[SPOOL_PATH_MAX];
    if (spare_path(sp, spare, sizeof(spare)) != LG_OK) {
        return false;
    }
    if (renameat2(AT_FDCWD, spare, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
        /* EEXIST: the segment exists (the last one, at open): it is appended to. Any other
         * error: the spare is not used again (lg_spool_reap may make a new one). */
        sp->spare_ready = errno == EEXIST;
        return false;
    }
    sp->spare_ready = false;
    sp->recycled++;
    return true;
}

/* Opens segment |seg| for writing at its end, writing the magic when it is new (a fresh
 * file, or the spare renamed to it). Caller holds mu. */
static int open_segment_locked(lg_spool *sp, uint64_t seg)
{
    char path[SPOOL_PATH_MAX];
    int rc = seg_path(sp, seg, path, sizeof(path));
    if (rc != LG_OK) {
        return rc;
    }
    bool recycled = take_spare_locked(sp, path);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return LG_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return LG_ERR_IO;
    }
    uint64_t size = recycled ? 0 : (uint64_t)st.st_size;
    uint32_t mask = seg_mask(seg);
    if (size > 0) {
        uint8_t magic[SPOOL_MAGIC_LEN];
        if (pread_all(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
            !magic_mask(magic, seg, &mask)) {
            /* Cannot happen after recovery (which empties a file without a magic). */
            close(fd);
            return LG_ERR_CORRUPT;
        }
    } else {
        if (pwrite(fd, SPOOL_MAGIC, SPOOL_MAGIC_LEN, 0) != SPOOL_MAGIC_LEN) {
            /* A partial magic would make the file look like a segment with a torn head:
             * remove it (emptied first, in case the unlink fails: an empty file is taken
             * as new by the next open). */
            if (ftruncate(fd, 0) != 0) {
                /* Nothing more to undo: the caller gets LG_ERR_IO either way. */
            }
            (void)unlink(path);
            close(fd);
            return LG_ERR_IO;
        }
        size = SPOOL_MAGIC_LEN;
        sp->disk_bytes += SPOOL_MAGIC_LEN;
        sp->dir_dirty = true; /* the new name is made durable by the next synced flush */
    }
    if (lseek(fd, (off_t)size, SEEK_SET) < 0) {
        close(fd);
        return LG_ERR_IO;
    }
    sp->wfd = fd;
    sp->wseg = seg;
    sp->wsize = size;
    sp->wmask = mask;
    sp->wstale = recycled ? (uint64_t)st.st_size : 0;
    return LG_OK;
}

/* Closes the active segment and opens the next. Caller holds mu and has flushed the
 * buffer. When the next segment cannot be created (disk full), |wfd| stays -1 and |wseg| /
 * |wsize| keep describing the closed one, so the reader still sees all of it; the next
 * flush creates the segment. */
static int rotate_locked(lg_spool *sp)
{
    /* The closed segment is fdatasync'd by the next lg_spool_flush(sync) on the shipper
     * thread, not here: a rotation can happen inside an append on a request thread (the
     * overflow path), which must not wait for the disk. Only if a second rotation comes
     * before that sync is the older one synced here. */
    if (sp->unsynced_fd >= 0) {
        int rc = fdatasync(sp->unsynced_fd);
        close(sp->unsynced_fd);
        sp->unsynced_fd = -1;
        if (rc != 0) {
            return LG_ERR_IO;
        }
    }
    if (sp->wstale > sp->wsize) {
        /* A recycled file longer than its new contents: its leftovers go, so a reader of the
         * closed segment meets its end, not frames that fail their check (counted as
         * corrupt). A few KB usually: segments close at about the same size. If this fails
         * that is all that happens. */
        if (ftruncate(sp->wfd, (off_t)sp->wsize) != 0) {
            /* Leftovers stay: read as a corrupt record at the segment's end, then skipped. */
        }
    }
    sp->wstale = 0;
    sp->unsynced_fd = sp->wfd;
    sp->unsynced_seg = sp->wseg;
    sp->wfd = -1;
    int rc = open_segment_locked(sp, sp->wseg + 1);
    if (rc != LG_OK) {
        sp->wfailed = true;
    }
    return rc;
}

/* Undoes a failed write to the active segment: the file goes back to its last good size
 * (|wsize|, a frame boundary), so it never holds a torn frame and later frames follow
 * valid ones. The unwritten frames stay in |wbuf| for the next flush. Caller holds mu. */
static int rollback_locked(lg_spool *sp)
{
    sp->wfailed = true;
    if (ftruncate(sp->wfd, (off_t)sp->wsize) != 0 ||
        lseek(sp->wfd, (off_t)sp->wsize, SEEK_SET) < 0) {
        /* The segment may end in garbage: never write to it again (the next open truncates
         * the torn tail). Appends refuse from now on and the buffer is counted lost. */
        sp->werr = LG_ERR_IO;
    }
    return LG_ERR_IO;
}

/* Truncates then unlinks segment |seg|: the reader may still hold it open, and on a full
 * disk the space must return now, not when that descriptor moves on. The truncate drops
 * the file's pages from the page cache, ~15 ms for a 64 MiB segment here. */
static void remove_segment(const lg_spool *sp, uint64_t seg)
{
    char path[SPOOL_PATH_MAX];
    if (seg_path(sp, seg, path, sizeof(path)) == LG_OK && truncate(path, 0) == 0) {
        (void)unlink(path);
    }
}

/* Removes the spare file (a full disk needs its space). Caller holds mu. */
static void drop_spare_locked(lg_spool *sp)
{
    char spare[SPOOL_PATH_MAX];
    if (sp->spare_ready && !sp->spare_busy && spare_path(sp, spare, sizeof(spare)) == LG_OK) {
        (void)unlink(spare);
        sp->spare_ready = false;
    }
}

/* Drops the segments before |seg| (never the active one) from the spool: their bytes leave
 * the count at once. The files go now when |now| (the disk is full: the space is needed for
 * the next write), else they are left for lg_spool_reap, off the caller's thread (the
 * shipper loop, which must not stall on a truncate between two inserts). Caller holds mu. */
static void delete_before_locked(lg_spool *sp, uint64_t seg, bool now)
{
    while (sp->first_seg < seg && sp->first_seg < sp->wseg) {
        char path[SPOOL_PATH_MAX];
        struct stat sb;
        if (seg_path(sp, sp->first_seg, path, sizeof(path)) == LG_OK && stat(path, &sb) == 0) {
            uint64_t n = (uint64_t)sb.st_size;
            sp->disk_bytes -= n < sp->disk_bytes ? n : sp->disk_bytes;
        }
        if (sp->reap_lo == sp->reap_hi) {
            sp->reap_lo = sp->first_seg;
        }
        sp->reap_hi = sp->first_seg + 1;
        sp->first_seg++;
    }
    if (now) {
        for (; sp->reap_lo < sp->reap_hi; sp->reap_lo++) {
            remove_segment(sp, sp->reap_lo);
        }
        drop_spare_locked(sp);
    }
    if (sp->unsynced_fd >= 0 && sp->unsynced_seg < sp->first_seg) {
        /* The rotated-away segment was acknowledged and deleted: nothing left to sync. */
        close(sp->unsynced_fd);
        sp->unsynced_fd = -1;
    }
}

/* True when the segment file at |path| is of version 2. Only those are recycled: a
 * crash after the spare is renamed to its new number but before its new magic is on disk
 * leaves the old magic in place, and a version 1 file's old frames (plain CRCs) would then
 * check again and be replayed: acknowledged rows billed twice. A version 2 file's old
 * frames carry their old number's mask and fail under the new one. */
static bool is_version_2(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    uint8_t magic[SPOOL_MAGIC_LEN];
    bool v2 = pread_all(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
              memcmp(magic, SPOOL_MAGIC, SPOOL_MAGIC_LEN) == 0;
    close(fd);
    return v2;
}

void lg_spool_reap(lg_spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    uint64_t lo = sp->reap_lo, hi = sp->reap_hi;
    sp->reap_lo = sp->reap_hi;
    /* The newest of them becomes the spare when there is none: its pages are the likeliest
     * to be still cached. */
    bool keep = lo < hi && !sp->spare_ready && !sp->spare_busy;
    sp->spare_busy = keep;
    pthread_mutex_unlock(&sp->mu);
    for (uint64_t seg = lo; seg < hi; seg++) {
        if (keep && seg == hi - 1) {
            char path[SPOOL_PATH_MAX], spare[SPOOL_PATH_MAX];
            bool ok = seg_path(sp, seg, path, sizeof(path)) == LG_OK &&
                      is_version_2(path) &&
                      spare_path(sp, spare, sizeof(spare)) == LG_OK &&
                      rename(path, spare) == 0;
            pthread_mutex_lock(&sp->mu);
            sp->spare_ready = ok;
            sp->spare_busy = false;
            pthread_mutex_unlock(&sp->mu);
            if (ok) {
                continue;
            }
        }
        remove_segment(sp, seg);
    }
}

/* On a failed write: when every byte of the active segment is acknowledged (in ClickHouse),
 * the segment is deleted so its space serves the unwritten buffer; the next write creates
 * the following segment. This is how a spool that filled its disk recovers once ClickHouse
 * has taken what it holds (a 64 MiB segment on a small disk would otherwise never be freed:
 * only segments wholly before the acknowledged one are deleted). True when done. */
static bool reclaim_locked(lg_spool *sp)
{
    if (sp->first_seg > sp->wseg || sp->wsize <= SPOOL_MAGIC_LEN ||
        lg_spool_pos_before(sp->acked, (struct lg_spool_pos){sp->wseg, sp->wsize})) {
        return false; /* already done, nothing to free, or not all of it in ClickHouse */
    }
    /* By path: the segment may be open (active) or closed by a rotation whose next segment
     * could not be created. */
    char path[SPOOL_PATH_MAX];
    if (seg_path(sp, sp->wseg, path, sizeof(path)) != LG_OK || truncate(path, 0) != 0) {
        return false;
    }
    if (sp->wfd >= 0) {
        close(sp->wfd);
        sp->wfd = -1;
    }
    (void)unlink(path);
    sp->disk_bytes -= sp->wsize < sp->disk_bytes ? sp->wsize : sp->disk_bytes;
    delete_before_locked(sp, sp->wseg, true);
    sp->first_seg = sp->wseg + 1; /* no segment left; the next write creates wseg + 1 */
    if (sp->unsynced_fd >= 0) {
        close(sp->unsynced_fd); /* it was one of those deleted */
        sp->unsynced_fd = -1;
    }
    return true;
}

/* After a write that took only the first |done| bytes of the buffer: the frames that were
 * written whole stay in the segment (|wsize| moves past them) and leave the buffer; the
 * rest, from the first incomplete frame on, is kept for the next flush. Without this, a
 * buffer larger than the free space (1 MiB against a small disk) could never be written.
 * Caller holds mu and rolls the file back to |wsize| next. */
static void keep_written_frames_locked(lg_spool *sp, size_t done)
{
    size_t off = 0;
    uint64_t n = 0;
    while (sp->wbuf.len - off >= SPOOL_FRAME_HDR) {
        size_t frame = SPOOL_FRAME_HDR + (size_t)get_u32(sp->wbuf.data + off);
        if (frame > done - off) {
            break;
        }
        off += frame;
        n++;
    }
    if (off == 0) {
        return;
    }
    sp->wsize += off;
    memmove(sp->wbuf.data, sp->wbuf.data + off, sp->wbuf.len - off);
    sp->wbuf.len -= off;
    sp->wbuf.data[sp->wbuf.len] = 0;
    sp->wbuf_records -= n;
    sp->wmasked = sp->wbuf.len; /* all of it was masked for the failed write */
}

/* Moves the written buffer's bytes (whole frames, just written to end at wseg/wsize) into
 * the next handoff slot, and that slot's empty memory into |wbuf|, when a slot and the
 * byte budget allow; otherwise leaves |wbuf| to be emptied. Caller holds mu. */
static void handoff_put_locked(lg_spool *sp)
{
    if (sp->wbuf.len == 0 || sp->ho_n == LG_SPOOL_HANDOFF_SLOTS ||
        sp->ho_bytes + sp->wbuf.len > LG_SPOOL_HANDOFF_BYTES) {
        return;
    }
    size_t i = (sp->ho_head + sp->ho_n) % LG_SPOOL_HANDOFF_SLOTS;
    buf_swap(&sp->wbuf, &sp->ho[i]); /* the slot was empty: |wbuf| gets empty memory */
    sp->ho_pos[i] = (struct lg_spool_pos){sp->wseg, sp->wsize - sp->ho[i].len};
    sp->ho_bytes += sp->ho[i].len;
    sp->ho_n++;
}

/* Writes the buffer to the active segment, creating that segment first if a rotation or a
 * reclaim left none. LG_OK or LG_ERR_IO (rolled back; the buffer is kept). Caller holds
 * mu. */
static int write_buffer_locked(lg_spool *sp)
{
    if (sp->wfd < 0) {
        int rc = open_segment_locked(sp, sp->wseg + 1);
        if (rc != LG_OK) {
            sp->wfailed = true;
            return rc;
        }
    }
    /* The frames' CRCs get the mask of the segment they land in (a retry after a failed
     * write may land in another one: the frames masked then are re-masked). */
    if (sp->wmasked > 0) {
        xor_crcs(sp->wbuf.data, sp->wmasked, sp->wmasked_with ^ sp->wmask);
    }
    xor_crcs(sp->wbuf.data + sp->wmasked, sp->wbuf.len - sp->wmasked, sp->wmask);
    sp->wmasked = sp->wbuf.len;
    sp->wmasked_with = sp->wmask;
    size_t done = 0;
    if (write_all_count(sp->wfd, sp->wbuf.data, sp->wbuf.len, &done) != LG_OK) {
        keep_written_frames_locked(sp, done);
        return rollback_locked(sp);
    }
    sp->wsize += sp->wbuf.len;
    handoff_put_locked(sp);
    lg_buf_reset(&sp->wbuf);
    sp->wmasked = 0;
    sp->wbuf_records = 0;
    sp->wfailed = false;
    return LG_OK;
}

/* Writes the buffer out; rotates the segment once it is full. Caller holds mu. */
static int flush_locked(lg_spool *sp)
{
    if (sp->werr != LG_OK) {
        return sp->werr;
    }
    if (sp->wbuf.len == 0 && sp->wfd >= 0) {
        return LG_OK;
    }
    int rc = write_buffer_locked(sp);
    if (rc != LG_OK && sp->werr == LG_OK && reclaim_locked(sp)) {
        rc = write_buffer_locked(sp);
    }
    if (rc == LG_OK && sp->wsize >= sp->segment_bytes) {
        rc = rotate_locked(sp);
    }
    return rc;
}

/* Appends one frame: |hdr| (length and CRC, made by the caller outside the lock) then
 * |len| payload bytes. The checks and errors of lg_spool_append. Caller holds mu. */
static int append_frame_locked(lg_spool *sp, const uint8_t *hdr, const uint8_t *p, size_t len)
{
    size_t frame = SPOOL_FRAME_HDR + len;
    int rc = LG_OK;
    if (sp->werr != LG_OK || sp->wfailed) {
        /* A write failed (disk full, I/O error): refuse rather than buffer a record that
         * may never be written. The shipper's periodic flush retries; the caller holds
         * the record (backpressure) or counts it dropped. */
        return LG_ERR_IO;
    }
    if (sp->disk_bytes + sp->wbuf.len + frame > sp->max_bytes) {
        return LG_ERR_EXHAUSTED;
    }
    if (sp->wsize + sp->wbuf.len > SPOOL_MAGIC_LEN &&
        sp->wsize + sp->wbuf.len + frame > sp->segment_bytes) {
        /* This record would overflow the segment: close it and start the next one. */
        uint64_t seg = sp->wseg;
        rc = flush_locked(sp);
        if (rc == LG_OK && sp->wseg == seg) {
            rc = rotate_locked(sp);
        }
        if (rc != LG_OK) {
            return rc;
        }
    }
    if (sp->wbuf.len + frame > sp->wbuf.max) {
        rc = flush_locked(sp);
        if (rc != LG_OK) {
            return rc;
        }
    }
    if (frame > sp->wbuf.max) {
        /* Larger than the whole buffer (now empty): write it directly, header then
         * payload; a failure is rolled back and the record refused. */
        rc = write_buffer_locked(sp);
        uint8_t mhdr[SPOOL_FRAME_HDR];
        memcpy(mhdr, hdr, SPOOL_FRAME_HDR);
        put_u32(mhdr + 4, get_u32(hdr + 4) ^ sp->wmask);
        if (rc == LG_OK && (write_all(sp->wfd, mhdr, SPOOL_FRAME_HDR) != LG_OK ||
                            write_all(sp->wfd, p, len) != LG_OK)) {
            rc = rollback_locked(sp);
            /* Nothing stays buffered (the buffer was written just above) and this record
             * is refused, the caller's again: appends need not wait for a flush. Left set,
             * nothing would ever clear it (only a buffer write does) and the spool would
             * refuse every record until a restart. */
            sp->wfailed = false;
        }
        if (rc != LG_OK) {
            return rc;
        }
        sp->wsize += frame;
    } else {
        /* One reservation for header and payload: two appends were two capacity checks
         * and, on a fresh buffer, possibly two reallocations. */
        uint8_t *dst = lg_buf_reserve(&sp->wbuf, frame);
        if (dst == NULL) {
            return LG_ERR_NOMEM; /* nothing was added: no half frame stays buffered */
        }
        memcpy(dst, hdr, SPOOL_FRAME_HDR);
        memcpy(dst + SPOOL_FRAME_HDR, p, len);
        lg_buf_commit(&sp->wbuf, frame);
        sp->wbuf_records++;
    }
    sp->disk_bytes += frame;
    sp->appended++;
    return LG_OK;
}

int lg_spool_append(lg_spool *sp, const void *p, size_t len)
{
    if (len > LG_SPOOL_MAX_RECORD_BYTES) {
        return LG_ERR_TOO_LARGE;
    }
    uint8_t hdr[SPOOL_FRAME_HDR];
    put_u32(hdr, (uint32_t)len);
    put_u32(hdr + 4, crc_of(p, len));
    pthread_mutex_lock(&sp->mu);
    int rc = append_frame_locked(sp, hdr, p, len);
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

int lg_spool_frame_finish(uint8_t *frame, size_t payload_len)
{
    if (payload_len > LG_SPOOL_MAX_RECORD_BYTES) {
        return LG_ERR_TOO_LARGE;
    }
    put_u32(frame, (uint32_t)payload_len);
    put_u32(frame + 4, crc_of(frame + SPOOL_FRAME_HDR, payload_len));
    return LG_OK;
}

/* The payload length of the whole frame at |off| of |frames| (|len| bytes) into |*plen|;
 * false when no whole, plausible frame starts there. */
static bool frame_at(const uint8_t *frames, size_t len, size_t off, size_t *plen)
{
    if (len - off < SPOOL_FRAME_HDR) {
        return false;
    }
    *plen = get_u32(frames + off);
    return *plen <= LG_SPOOL_MAX_RECORD_BYTES && *plen <= len - off - SPOOL_FRAME_HDR;
}

/* Counts the frames of |frames| (|len| bytes) into |*n|; false when they do not parse as
 * whole frames. */
static bool count_frames(const uint8_t *frames, size_t len, uint64_t *n)
{
    size_t off = 0, plen;
    *n = 0;
    while (off < len) {
        if (!frame_at(frames, len, off, &plen)) {
            return false;
        }
        off += SPOOL_FRAME_HDR + plen;
        (*n)++;
    }
    return true;
}

/* Takes all of |b|'s frames (|n| of them) by exchanging memory with the empty write
 * buffer, when the spool would take each of them as they come without a rotation inside
 * the run and without reaching the cap; the buffered frames, if any, are written first
 * (one write per run instead of a copy of every byte). False when it cannot (nothing
 * taken: the caller appends them one by one). Caller holds mu. */
static bool take_buffer_locked(lg_spool *sp, struct lg_buf *b, uint64_t n)
{
    size_t len = b->len;
    if (sp->werr != LG_OK || sp->wfailed || sp->wfd < 0 || len == 0 || len > sp->wbuf.max) {
        return false;
    }
    if (sp->wbuf.len > 0 && flush_locked(sp) != LG_OK) {
        return false; /* the frame-by-frame path reports the error */
    }
    if (sp->wfd < 0 || sp->disk_bytes + len > sp->max_bytes) {
        return false;
    }
    if (sp->wsize > SPOOL_MAGIC_LEN && sp->wsize + len > sp->segment_bytes) {
        /* As append_frame_locked does when a record would overflow the segment. */
        if (rotate_locked(sp) != LG_OK || sp->wfd < 0 ||
            sp->disk_bytes + len > sp->max_bytes) {
            return false;
        }
    }
    if (sp->wsize + len > sp->segment_bytes) {
        return false; /* longer than a segment: split by the frame-by-frame path */
    }
    buf_swap(&sp->wbuf, b); /* |b| gets the write buffer's empty memory */
    sp->wmasked = 0;
    sp->wbuf_records = n;
    sp->disk_bytes += len;
    sp->appended += n;
    return true;
}

/* The frame-by-frame part of lg_spool_append_frames. Caller holds mu. */
static int append_frames_locked(lg_spool *sp, const uint8_t *frames, size_t len, size_t *taken)
{
    int rc = LG_OK;
    size_t off = 0, plen;
    while (off < len) {
        if (!frame_at(frames, len, off, &plen)) {
            rc = LG_ERR_INVALID;
            break;
        }
        rc = append_frame_locked(sp, frames + off, frames + off + SPOOL_FRAME_HDR, plen);
        if (rc != LG_OK) {
            break;
        }
        off += SPOOL_FRAME_HDR + plen;
    }
    *taken = off;
    return rc;
}

int lg_spool_append_frames(lg_spool *sp, const uint8_t *frames, size_t len, size_t *taken)
{
    pthread_mutex_lock(&sp->mu);
    int rc = append_frames_locked(sp, frames, len, taken);
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

int lg_spool_append_buf(lg_spool *sp, struct lg_buf *frames, size_t *taken)
{
    uint64_t n = 0;
    bool whole = count_frames(frames->data, frames->len, &n); /* outside the lock */
    pthread_mutex_lock(&sp->mu);
    int rc = LG_OK;
    size_t len = frames->len;
    if (whole && take_buffer_locked(sp, frames, n)) {
        *taken = len;
    } else {
        rc = append_frames_locked(sp, frames->data, frames->len, taken);
    }
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

int lg_spool_sync_begin(lg_spool *sp, struct lg_spool_sync *job)
{
    job->fd[0] = job->fd[1] = -1;
    job->dir = false;
    pthread_mutex_lock(&sp->mu);
    int rc = flush_locked(sp);
    if (rc == LG_OK && sp->wfd >= 0) {
        /* A duplicate: a rotation may close |wfd| while the job runs. */
        job->fd[0] = fcntl(sp->wfd, F_DUPFD_CLOEXEC, 0);
        if (job->fd[0] < 0) {
            rc = LG_ERR_IO;
        }
    }
    if (rc == LG_OK) {
        job->fd[1] = sp->unsynced_fd; /* the job owns it now */
        sp->unsynced_fd = -1;
        job->dir = sp->dir_dirty;
        sp->dir_dirty = false;
    }
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

int lg_spool_sync_run(lg_spool *sp, struct lg_spool_sync *job)
{
    int rc = LG_OK;
    for (int i = 0; i < 2; i++) {
        if (job->fd[i] >= 0) {
            if (fdatasync(job->fd[i]) != 0) {
                rc = LG_ERR_IO;
            }
            close(job->fd[i]);
            job->fd[i] = -1;
        }
    }
    if (job->dir) {
        job->dir = false;
        if (fsync_dir(sp->dir) != LG_OK) {
            pthread_mutex_lock(&sp->mu);
            sp->dir_dirty = true; /* the next sync tries again */
            pthread_mutex_unlock(&sp->mu);
            rc = LG_ERR_IO;
        }
    }
    return rc;
}

int lg_spool_flush(lg_spool *sp, bool sync)
{
    if (!sync) {
        pthread_mutex_lock(&sp->mu);
        int rc = flush_locked(sp);
        pthread_mutex_unlock(&sp->mu);
        return rc;
    }
    struct lg_spool_sync job;
    int rc = lg_spool_sync_begin(sp, &job);
    int src = lg_spool_sync_run(sp, &job); /* also releases what begin took on failure */
    return rc != LG_OK ? rc : src;
}

/* Returns |len| bytes at |off| of |fd| through the window |win| (file offset |*win_off|),
 * refilled with one pread of at least LG_SPOOL_READ_AHEAD_BYTES when they are not in it.
 * NULL when fewer bytes exist or on a read error (recovery stops there either way);
 * *|nomem| set when the window cannot grow. */
static const uint8_t *tail_get(int fd, struct lg_buf *win, uint64_t *win_off, uint64_t off,
                               size_t len, bool *nomem)
{
    if (off >= *win_off && len <= win->len && off - *win_off <= win->len - len) {
        return win->data + (off - *win_off);
    }
    size_t want = len > LG_SPOOL_READ_AHEAD_BYTES ? len : LG_SPOOL_READ_AHEAD_BYTES;
    lg_buf_reset(win);
    uint8_t *dst = lg_buf_reserve(win, want);
    if (dst == NULL) {
        *nomem = true;
        return NULL;
    }
    ssize_t n = pread_all(fd, dst, want, off);
    if (n < 0) {
        return NULL;
    }
    lg_buf_commit(win, (size_t)n);
    *win_off = off;
    return (size_t)n >= len ? win->data : NULL;
}

/* Scans segment |seg| from the start; truncates at the first invalid frame. */
static int recover_tail(lg_spool *sp, uint64_t seg)
{
    char path[SPOOL_PATH_MAX];
    int rc = seg_path(sp, seg, path, sizeof(path));
    if (rc != LG_OK) {
        return rc;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return LG_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return LG_ERR_IO;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint64_t off = 0;
    uint8_t magic[SPOOL_MAGIC_LEN];
    uint32_t mask = 0;
    if (pread_all(fd, magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
        magic_mask(magic, seg, &mask)) {
        off = SPOOL_MAGIC_LEN;
    }
    /* Frames are read through a window of LG_SPOOL_READ_AHEAD_BYTES, one pread per window
     * rather than two per frame: a 64 MiB tail segment of 2 KB rows was ~60k preads and
     * up to 1.2 s before a replay could send anything (strace of llmgate-analytics
     * replay). */
    struct lg_buf win;
    lg_buf_init(&win, LG_SPOOL_READ_AHEAD_BYTES + LG_SPOOL_MAX_RECORD_BYTES);
    uint64_t win_off = 0;
    while (off > 0 && off + SPOOL_FRAME_HDR <= size) {
        bool nomem = false;
        const uint8_t *hdr = tail_get(fd, &win, &win_off, off, SPOOL_FRAME_HDR, &nomem);
        if (hdr == NULL && !nomem) {
            break;
        }
        uint32_t len = hdr != NULL ? get_u32(hdr) : 0;
        uint32_t crc = hdr != NULL ? get_u32(hdr + 4) : 0;
        if (hdr != NULL && (len > LG_SPOOL_MAX_RECORD_BYTES ||
                            off + SPOOL_FRAME_HDR + len > size)) {
            break;
        }
        const uint8_t *payload =
            nomem ? NULL : tail_get(fd, &win, &win_off, off + SPOOL_FRAME_HDR, len, &nomem);
        if (nomem) {
            lg_buf_deinit(&win);
            close(fd);
            return LG_ERR_NOMEM;
        }
        /* A recycled file's leftovers fail here too (another segment's mask): cut. */
        if (payload == NULL || crc_of(payload, len) != (crc ^ mask)) {
            break;
        }
        off += SPOOL_FRAME_HDR + len;
    }
    lg_buf_deinit(&win);
    if (off < size) {
        /* off == 0: not even a valid magic; the file restarts empty. */
        sp->torn_bytes += size - off;
        if (ftruncate(fd, (off_t)off) != 0 || fdatasync(fd) != 0) {
            close(fd);
            return LG_ERR_IO;
        }
    }
    close(fd);
    return LG_OK;
}

/* Finds the lowest and highest segment numbers and the total size. */
static int scan_dir(lg_spool *sp, uint64_t *lo, uint64_t *hi, bool *any)
{
    DIR *d = opendir(sp->dir);
    if (d == NULL) {
        return LG_ERR_IO;
    }
    *any = false;
    *lo = UINT64_MAX;
    *hi = 0;
    sp->disk_bytes = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n != 24 || strcmp(e->d_name + 20, ".seg") != 0) {
            continue;
        }
        uint64_t v = 0;
        bool ok = true;
        for (size_t i = 0; i < 20; i++) {
            char c = e->d_name[i];
            if (c < '0' || c > '9') {
                ok = false;
                break;
            }
            v = v * 10u + (uint64_t)(c - '0');
        }
        if (!ok) {
            continue;
        }
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) == 0) {
            sp->disk_bytes += (uint64_t)st.st_size;
        }
        *any = true;
        *lo = v < *lo ? v : *lo;
        *hi = v > *hi ? v : *hi;
    }
    closedir(d);
    return LG_OK;
}

/* State file: one text line "lgspool-state 1 ackseg ackoff inflight endseg endoff id crc". */
static int load_state(lg_spool *sp)
{
    char path[SPOOL_PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/state", sp->dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return LG_ERR_INVALID;
    }
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return errno == ENOENT ? LG_OK : LG_ERR_IO;
    }
    char line[512];
    int rc = LG_OK;
    if (fgets(line, sizeof(line), f) == NULL) {
        goto out_close;
    }
    unsigned long long as, ao, es, eo;
    int infl;
    char id[LG_SPOOL_BATCH_ID_BYTES];
    unsigned long crc;
    /* sscanf is banned for peer input; this file is our own, and its CRC is checked. */
    if (sscanf(line, "lgspool-state 1 %llu %llu %d %llu %llu %63s %lx", &as, &ao, &infl, &es,
               &eo, id, &crc) != 7) {
        rc = LG_ERR_CORRUPT;
        goto out_close;
    }
    char *last = strrchr(line, ' ');
    if (last == NULL || crc_of(line, (size_t)(last - line)) != (uint32_t)crc) {
        rc = LG_ERR_CORRUPT;
        goto out_close;
    }
    sp->state.ack = (struct lg_spool_pos){as, ao};
    sp->state.has_inflight = infl != 0;
    sp->state.inflight_end = (struct lg_spool_pos){es, eo};
    if (strcmp(id, "-") == 0) {
        id[0] = 0;
    }
    memcpy(sp->state.batch_id, id, sizeof(id));
out_close:
    fclose(f);
    return rc;
}

int lg_spool_save_state(lg_spool *sp, const struct lg_spool_state *st)
{
    char path[SPOOL_PATH_MAX], tmp[SPOOL_PATH_MAX];
    int n1 = snprintf(path, sizeof(path), "%s/state", sp->dir);
    int n2 = snprintf(tmp, sizeof(tmp), "%s/state.tmp", sp->dir);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(path) || (size_t)n2 >= sizeof(tmp)) {
        return LG_ERR_INVALID;
    }
    /* Segments wholly before the acknowledged one are deleted before the state is written,
     * not after: everything before st->ack is in ClickHouse, so a crash in between at worst
     * replays from an older ack whose segments are gone (skipped) and checks the batch in
     * flight by its id. The other order deadlocks a full disk: the new state file needs
     * space that only the deletion frees. */
    pthread_mutex_lock(&sp->mu);
    if (lg_spool_pos_before(sp->acked, st->ack)) {
        sp->acked = st->ack;
    }
    /* Deferred to lg_spool_reap unless the disk is full: then the state file itself may need
     * the space now. */
    delete_before_locked(sp, st->ack.seg, sp->wfailed);
    if (sp->wfailed) {
        /* Disk full and the active segment now wholly acknowledged: free it before the
         * state file needs room (the next flush writes into a new segment). */
        (void)reclaim_locked(sp);
    }
    pthread_mutex_unlock(&sp->mu);
    char line[512];
    int len = snprintf(line, sizeof(line), "lgspool-state 1 %" PRIu64 " %" PRIu64 " %d %" PRIu64
                       " %" PRIu64 " %s",
                       st->ack.seg, st->ack.off, st->has_inflight ? 1 : 0,
                       st->inflight_end.seg, st->inflight_end.off,
                       st->batch_id[0] != 0 ? st->batch_id : "-");
    if (len < 0 || (size_t)len >= sizeof(line) - 16) {
        return LG_ERR_INVALID;
    }
    int len2 = snprintf(line + len, sizeof(line) - (size_t)len, " %08lx\n",
                        (unsigned long)crc_of(line, (size_t)len));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return LG_ERR_IO;
    }
    int rc = write_all(fd, (const uint8_t *)line, (size_t)(len + len2));
    if (rc == LG_OK && fdatasync(fd) != 0) {
        rc = LG_ERR_IO;
    }
    close(fd);
    if (rc == LG_OK && rename(tmp, path) != 0) {
        rc = LG_ERR_IO;
    }
    if (rc == LG_OK) {
        rc = fsync_dir(sp->dir);
    }
    if (rc != LG_OK) {
        return rc;
    }
    sp->state = *st;
    return LG_OK;
}

/* mkdir -p |dir| (0700 for what it creates). */
static int mkdir_parents(const char *dir)
{
    char path[SPOOL_PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path)) {
        return LG_ERR_INVALID;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != 0) {
            continue;
        }
        char c = path[i];
        path[i] = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            return LG_ERR_IO;
        }
        path[i] = c;
    }
    return LG_OK;
}

static void free_buffers(lg_spool *sp)
{
    /* Every block was released (lg_spool_close's contract); |rb|'s own may remain. */
    lg_free(sp->rb_blk);
    sp->rb_blk = NULL;
    lg_spool_trim_free(sp, 0);
    lg_buf_deinit(&sp->wbuf);
    lg_buf_deinit(&sp->rb);
    for (size_t i = 0; i < LG_SPOOL_HANDOFF_SLOTS; i++) {
        lg_buf_deinit(&sp->ho[i]);
    }
}

int lg_spool_open(lg_spool **out, const struct lg_spool_opts *o)
{
    if (o->dir == NULL || o->segment_bytes <= SPOOL_MAGIC_LEN ||
        o->max_bytes < o->segment_bytes) {
        return LG_ERR_INVALID;
    }
    if (mkdir_parents(o->dir) != LG_OK) {
        return LG_ERR_IO;
    }
    lg_spool *sp = lg_calloc(1, sizeof(*sp));
    if (sp == NULL) {
        return LG_ERR_NOMEM;
    }
    sp->dir = lg_strdup(o->dir);
    if (sp->dir == NULL) {
        lg_free(sp);
        return LG_ERR_NOMEM;
    }
    sp->max_bytes = o->max_bytes;
    sp->segment_bytes = o->segment_bytes;
    sp->wfd = -1;
    sp->unsynced_fd = -1;
    sp->rfd = -1;
    sp->rseg = UINT64_MAX;
    lg_buf_init(&sp->wbuf, LG_SPOOL_WRITE_BUFFER_BYTES);
    lg_buf_init(&sp->rb, LG_SPOOL_MAX_RECORD_BYTES + SPOOL_FRAME_HDR + LG_SPOOL_READ_AHEAD_BYTES);
    for (size_t i = 0; i < LG_SPOOL_HANDOFF_SLOTS; i++) {
        lg_buf_init(&sp->ho[i], LG_SPOOL_WRITE_BUFFER_BYTES);
    }
    /* Adaptive: the writer lock is held for a memcpy of one record almost always, and the
     * shipper thread and producers on the overflow path take it at ~100k records/s each
     * in a backlog; sleeping on the futex at once was a third of the shipper thread's
     * samples there (perf, end to end with --premake). A short spin first avoids most. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&sp->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    uint64_t lo, hi;
    bool any;
    int rc = scan_dir(sp, &lo, &hi, &any);
    if (rc != LG_OK) {
        goto out_free_spool;
    }
    if (any) {
        rc = recover_tail(sp, hi);
        if (rc == LG_OK) {
            rc = scan_dir(sp, &lo, &hi, &any);
        }
        if (rc != LG_OK) {
            goto out_free_spool;
        }
    } else {
        lo = 0;
        hi = 0;
    }
    rc = load_state(sp);
    if (rc != LG_OK) {
        goto out_free_spool;
    }
    char spare[SPOOL_PATH_MAX];
    struct stat sst;
    sp->spare_ready = spare_path(sp, spare, sizeof(spare)) == LG_OK &&
                      stat(spare, &sst) == 0 && S_ISREG(sst.st_mode);
    if (!any) {
        /* No segment, but the state may name positions: all its segments were deleted (a
         * reclaim on a full disk, then a stop before the next segment could be created).
         * Number the new segment after them, so that no acknowledged position lies ahead
         * of new records (the reader would wait for it, and deletion would follow it). */
        struct lg_spool_pos a = sp->state.ack, e = sp->state.inflight_end;
        uint64_t past = a.seg > e.seg ? a.seg : e.seg;
        if (past > 0 || a.off > SPOOL_MAGIC_LEN || e.off > 0) {
            lo = past + 1;
            hi = lo;
        }
    }
    sp->first_seg = lo;
    if (!any || lg_spool_pos_before(sp->state.ack, (struct lg_spool_pos){lo, 0})) {
        sp->state.ack = (struct lg_spool_pos){lo, SPOOL_MAGIC_LEN};
    }
    sp->acked = sp->state.ack;
    rc = open_segment_locked(sp, hi);
    if (rc != LG_OK) {
        goto out_free_spool;
    }
    *out = sp;
    return LG_OK;

out_free_spool:
    free_buffers(sp);
    pthread_mutex_destroy(&sp->mu);
    lg_free(sp->dir);
    lg_free(sp);
    return rc;
}

void lg_spool_close(lg_spool *sp)
{
    if (sp == NULL) {
        return;
    }
    if (lg_spool_flush(sp, true) != LG_OK) {
        (void)lg_spool_discard(sp);
    }
    lg_spool_reap(sp);
    if (sp->unsynced_fd >= 0) {
        close(sp->unsynced_fd); /* only after a failed flush */
    }
    if (sp->wfd >= 0) {
        close(sp->wfd);
    }
    if (sp->rfd >= 0) {
        close(sp->rfd);
    }
    free_buffers(sp);
    pthread_mutex_destroy(&sp->mu);
    lg_free(sp->dir);
    lg_free(sp);
}

bool lg_spool_pos_before(struct lg_spool_pos a, struct lg_spool_pos b)
{
    return a.seg < b.seg || (a.seg == b.seg && a.off < b.off);
}

bool lg_spool_at_end(lg_spool *sp, struct lg_spool_pos pos)
{
    pthread_mutex_lock(&sp->mu);
    bool end = sp->wbuf.len == 0 &&
               !lg_spool_pos_before(pos, (struct lg_spool_pos){sp->wseg, sp->wsize});
    pthread_mutex_unlock(&sp->mu);
    return end;
}

/* Called before |rb|'s memory is reused or given away: a held block keeps it, and |rb|
 * goes on with memory from the free list (or none: the next read allocates). */
static void rb_detach(lg_spool *sp)
{
    struct spool_block *k = sp->rb_blk;
    if (k == NULL) {
        return;
    }
    sp->rb_blk = NULL;
    if (k->refs == 0) {
        lg_free(k);
        return;
    }
    k->detached = true;
    k->data = sp->rb.data;
    k->cap = sp->rb.cap;
    sp->rb.data = NULL;
    sp->rb.len = 0;
    sp->rb.cap = 0;
    struct spool_free *f = sp->free;
    if (f != NULL) {
        sp->free = f->next;
        sp->free_bytes -= f->cap;
        sp->rb.cap = f->cap;
        sp->rb.data = (uint8_t *)f;
        sp->rb.data[0] = 0;
    }
}

void *lg_spool_last_block(lg_spool *sp)
{
    if (sp->rb_blk == NULL) {
        sp->rb_blk = lg_calloc(1, sizeof(*sp->rb_blk));
    }
    return sp->rb_blk;
}

void lg_spool_block_retain(lg_spool *sp, void *blk)
{
    (void)sp;
    ((struct spool_block *)blk)->refs++;
}

void lg_spool_block_release(lg_spool *sp, void *blk)
{
    struct spool_block *k = blk;
    if (--k->refs > 0 || !k->detached) {
        return; /* still held, or still |rb|'s own memory */
    }
    if (k->cap >= sizeof(struct spool_free) + 4096 &&
        sp->free_bytes + k->cap <= LG_SPOOL_FREE_BLOCK_BYTES) {
        struct spool_free *f = (struct spool_free *)(void *)k->data;
        f->next = sp->free;
        f->cap = k->cap;
        sp->free = f;
        sp->free_bytes += k->cap;
    } else {
        lg_free(k->data);
    }
    lg_free(k);
}

void lg_spool_trim_free(lg_spool *sp, uint64_t keep_bytes)
{
    while (sp->free != NULL && sp->free_bytes > keep_bytes) {
        struct spool_free *f = sp->free;
        sp->free = f->next;
        sp->free_bytes -= f->cap;
        lg_free(f);
    }
}

/* Opens segment |seg| for reading if it is not the one open. */
static int reader_open(lg_spool *sp, uint64_t seg)
{
    if (sp->rseg == seg && sp->rfd >= 0) {
        return LG_OK;
    }
    if (sp->rfd >= 0) {
        close(sp->rfd);
        sp->rfd = -1;
        sp->rseg = UINT64_MAX;
    }
    rb_detach(sp);
    lg_buf_reset(&sp->rb);
    sp->rb_mem = false;
    char path[SPOOL_PATH_MAX];
    int rc = seg_path(sp, seg, path, sizeof(path));
    if (rc != LG_OK) {
        return rc;
    }
    sp->rfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sp->rfd < 0) {
        return errno == ENOENT ? LG_ERR_NOT_FOUND : LG_ERR_IO;
    }
    sp->rseg = seg;
    /* Without a readable magic the frames are checked as version 2: they fail and the
     * segment is skipped as corrupt. */
    uint8_t magic[SPOOL_MAGIC_LEN];
    if (pread_all(sp->rfd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
        !magic_mask(magic, seg, &sp->rmask)) {
        sp->rmask = seg_mask(seg);
    }
    return LG_OK;
}

/* Takes the handoff slot whose bytes start at |off| of the open read segment into |rb|
 * (the slot gets |rb|'s memory back, trimmed), dropping the slots before it: the reader
 * has passed them. True when one was taken. */
static bool handoff_take(lg_spool *sp, uint64_t off)
{
    bool took = false;
    pthread_mutex_lock(&sp->mu);
    while (sp->ho_n > 0) {
        size_t i = sp->ho_head;
        struct lg_spool_pos at = sp->ho_pos[i];
        bool passed = at.seg < sp->rseg || (at.seg == sp->rseg && at.off < off);
        if (!passed && !(at.seg == sp->rseg && at.off == off)) {
            break; /* a later slot: the bytes at |off| come from the file */
        }
        sp->ho_bytes -= sp->ho[i].len;
        if (!passed) {
            rb_detach(sp);
            buf_swap(&sp->rb, &sp->ho[i]);
            sp->rb_off = off;
            took = true;
        }
        lg_buf_trim(&sp->ho[i], LG_SPOOL_WRITE_BUFFER_BYTES);
        lg_buf_reset(&sp->ho[i]);
        sp->ho_head = (i + 1) % LG_SPOOL_HANDOFF_SLOTS;
        sp->ho_n--;
        if (took) {
            break;
        }
    }
    pthread_mutex_unlock(&sp->mu);
    return took;
}

/* Returns |len| bytes of the open read segment at |off|, served from the read-ahead buffer
 * (refilled from the handoff when it holds the bytes at |off|, else with one pread of up to LG_SPOOL_READ_AHEAD_BYTES), never reading at or past
 * |limit| (the flushed size of the active segment; UINT64_MAX for a closed one, whose end
 * is the file's). NULL when fewer bytes exist; *|io| set on a read error. */
static const uint8_t *reader_get(lg_spool *sp, uint64_t off, size_t len, uint64_t limit,
                                 bool *io)
{
    /* Written without off + len, which wraps for a hostile offset from the state file. */
    if (off >= sp->rb_off && len <= sp->rb.len && off - sp->rb_off <= sp->rb.len - len) {
        return sp->rb.data + (off - sp->rb_off);
    }
    size_t want = len > LG_SPOOL_READ_AHEAD_BYTES ? len : LG_SPOOL_READ_AHEAD_BYTES;
    if (limit != UINT64_MAX) {
        if (off >= limit) {
            return NULL;
        }
        if (limit - off < want) {
            want = (size_t)(limit - off);
        }
    }
    if (want < len) {
        return NULL;
    }
    if (handoff_take(sp, off)) {
        sp->rb_mem = true;
        return len <= sp->rb.len ? sp->rb.data : NULL;
    }
    sp->rb_mem = false;
    rb_detach(sp);
    lg_buf_reset(&sp->rb);
    uint8_t *dst = lg_buf_reserve(&sp->rb, want);
    if (dst == NULL) {
        *io = true;
        return NULL;
    }
    ssize_t n = pread_all(sp->rfd, dst, want, off);
    if (n < 0) {
        *io = true;
        return NULL;
    }
    lg_buf_commit(&sp->rb, (size_t)n);
    sp->rb_off = off;
    return (size_t)n >= len ? sp->rb.data : NULL;
}

int lg_spool_read(lg_spool *sp, struct lg_spool_pos *cur, struct lg_buf *out)
{
    struct lg_slice v;
    struct lg_spool_pos at = *cur;
    int rc = lg_spool_read_view(sp, cur, &v);
    if (rc == LG_OK) {
        lg_buf_reset(out);
        rc = lg_buf_append(out, v.ptr, v.len);
        if (rc != LG_OK) {
            *cur = at; /* not copied (|out| too small or no memory): read it again later */
        }
    }
    return rc;
}

int lg_spool_read_view(lg_spool *sp, struct lg_spool_pos *cur, struct lg_slice *out)
{
    if (cur->seg > sp->rk_wseg || (cur->seg == sp->rk_wseg && cur->off >= sp->rk_wsize) ||
        cur->seg < sp->rk_first) {
        pthread_mutex_lock(&sp->mu);
        sp->rk_wseg = sp->wseg;
        sp->rk_wsize = sp->wsize;
        sp->rk_first = sp->first_seg;
        pthread_mutex_unlock(&sp->mu);
    }
    uint64_t wseg = sp->rk_wseg, wsize = sp->rk_wsize, first = sp->rk_first;
    if (cur->seg < first) {
        *cur = (struct lg_spool_pos){first, SPOOL_MAGIC_LEN};
    }
    if (cur->off < SPOOL_MAGIC_LEN) {
        cur->off = SPOOL_MAGIC_LEN;
    }
    for (;;) {
        if (cur->seg > wseg || (cur->seg == wseg && cur->off >= wsize)) {
            return LG_ERR_AGAIN;
        }
        int rc = reader_open(sp, cur->seg);
        if (rc == LG_ERR_NOT_FOUND && cur->seg < wseg) {
            *cur = (struct lg_spool_pos){cur->seg + 1, SPOOL_MAGIC_LEN};
            continue;
        }
        if (rc != LG_OK) {
            return rc;
        }
        bool closed = cur->seg < wseg;
        uint64_t limit = closed ? UINT64_MAX : wsize;
        bool io = false;
        const uint8_t *hdr = reader_get(sp, cur->off, SPOOL_FRAME_HDR, limit, &io);
        if (io) {
            return LG_ERR_IO;
        }
        if (hdr == NULL) {
            if (closed) {
                /* End of a closed segment: continue in the next one. */
                *cur = (struct lg_spool_pos){cur->seg + 1, SPOOL_MAGIC_LEN};
                continue;
            }
            return LG_ERR_AGAIN;
        }
        uint32_t len = get_u32(hdr);
        uint32_t crc = get_u32(hdr + 4);
        if (len > LG_SPOOL_MAX_RECORD_BYTES) {
            goto corrupt;
        }
        const uint8_t *payload = reader_get(sp, cur->off + SPOOL_FRAME_HDR, len, limit, &io);
        if (io) {
            return LG_ERR_IO;
        }
        /* From the handoff the frame is the memory its CRC was computed over (the header
         * and payload come from one slot: slots hold whole frames and are taken only at a
         * frame's start); from the file it is checked. */
        crc ^= sp->rmask;
        if (payload == NULL || (!sp->rb_mem && crc_of(payload, len) != crc)) {
            goto corrupt;
        }
        _Atomic uint64_t *n = sp->rb_mem ? &sp->read_mem : &sp->read_file;
        atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
                              memory_order_relaxed); /* one writer: no locked add */
        *out = (struct lg_slice){payload, len};
        sp->last_crc = crc; /* unmasked: the payload's CRC-32 */
        sp->last_mem = sp->rb_mem;
        cur->off += SPOOL_FRAME_HDR + len;
        return LG_OK;
    corrupt:
        atomic_fetch_add_explicit(&sp->corrupt_records, 1, memory_order_relaxed);
        *cur = (struct lg_spool_pos){cur->seg + 1, SPOOL_MAGIC_LEN};
        if (cur->seg > wseg) {
            /* The active segment itself is damaged: nothing more to read until a new
             * segment exists. Should not happen: open truncates a torn tail. */
            cur->seg = wseg;
            cur->off = wsize;
        }
        return LG_ERR_CORRUPT;
    }
}

uint32_t lg_spool_last_crc(const lg_spool *sp)
{
    return sp->last_crc;
}

bool lg_spool_last_from_memory(const lg_spool *sp)
{
    return sp->last_mem;
}

uint32_t lg_spool_crc32(const void *p, size_t len)
{
    return crc_of(p, len);
}

void lg_spool_get_state(const lg_spool *sp, struct lg_spool_state *out)
{
    *out = sp->state;
}

uint64_t lg_spool_discard(lg_spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    uint64_t n = sp->wbuf_records;
    sp->disk_bytes -= sp->wbuf.len < sp->disk_bytes ? sp->wbuf.len : sp->disk_bytes;
    lg_buf_reset(&sp->wbuf);
    sp->wmasked = 0;
    sp->wbuf_records = 0;
    sp->lost += n;
    pthread_mutex_unlock(&sp->mu);
    return n;
}

void lg_spool_get_stats(lg_spool *sp, struct lg_spool_stats *out)
{
    pthread_mutex_lock(&sp->mu);
    out->bytes = sp->disk_bytes;
    out->segments = sp->wseg >= sp->first_seg ? sp->wseg - sp->first_seg + 1 : 0;
    out->appended = sp->appended;
    out->lost = sp->lost;
    out->write_failed = sp->werr != LG_OK || sp->wfailed;
    out->recycled = sp->recycled;
    pthread_mutex_unlock(&sp->mu);
    out->torn_bytes = sp->torn_bytes;
    out->corrupt_records = atomic_load_explicit(&sp->corrupt_records, memory_order_relaxed);
    out->read_from_memory = atomic_load_explicit(&sp->read_mem, memory_order_relaxed);
    out->read_from_file = atomic_load_explicit(&sp->read_file, memory_order_relaxed);
}
