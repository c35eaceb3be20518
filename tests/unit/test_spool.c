/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_spool.h"
#include "lg_test.h"

struct fixture {
    char dir[64];
    struct rlimit fsize; /* RLIMIT_FSIZE at setup, restored by teardown */
};

static int setup(void **state)
{
    lg_test_use_cmocka_allocator();
    struct fixture *f = malloc(sizeof(*f));
    /* Disk-full tests cap the file size (RLIMIT_FSIZE): a write past it fails with EFBIG
     * after a partial write, like ENOSPC, instead of raising SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &f->fsize);
    strcpy(f->dir, "/tmp/lg_test_spool_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    setrlimit(RLIMIT_FSIZE, &f->fsize);
    DIR *d = opendir(f->dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            unlinkat(dirfd(d), e->d_name, 0);
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static uint64_t seg_size(struct fixture *f, uint64_t seg);

static lg_spool *open_spool(struct fixture *f, uint64_t max, uint64_t seg)
{
    struct lg_spool_opts o = {f->dir, max, seg};
    lg_spool *sp = NULL;
    assert_int_equal(lg_spool_open(&sp, &o), LG_OK);
    return sp;
}

/* Where a reader starts: the acknowledged position. */
static struct lg_spool_pos ack_of(lg_spool *sp)
{
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    return st.ack;
}

/* Overwrites the first payload byte of segment 0 (its first record) in the file. */
static void spoil_first_payload(struct fixture *f)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%020d.seg", f->dir, 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c = 'X';
    assert_int_equal(pwrite(fd, &c, 1, 8 + 8), 1);
    close(fd);
}

static void append_n(lg_spool *sp, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char rec[64];
        int len = snprintf(rec, sizeof(rec), "record-%06d", i);
        assert_int_equal(lg_spool_append(sp, rec, (size_t)len), LG_OK);
    }
}

/* Reads every record from |cur|; checks they are record-<from>..; returns the count. */
static int read_all(lg_spool *sp, struct lg_spool_pos *cur, int from)
{
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    int n = 0;
    int rc;
    while ((rc = lg_spool_read(sp, cur, &b)) == LG_OK) {
        char want[64];
        snprintf(want, sizeof(want), "record-%06d", from + n);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
        n++;
    }
    assert_int_equal(rc, LG_ERR_AGAIN);
    lg_buf_deinit(&b);
    return n;
}

static void test_spool_append_read_across_segments(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 256);
    append_n(sp, 0, 1);
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    struct lg_spool_pos cur = st.ack;
    /* Buffered appends are invisible until flushed. */
    assert_int_equal(read_all(sp, &cur, 0), 0);
    append_n(sp, 1, 99);
    assert_int_equal(lg_spool_flush(sp, true), LG_OK);
    assert_int_equal(read_all(sp, &cur, 0), 100);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_true(stats.segments > 1);
    assert_int_equal(stats.appended, 100);
    lg_spool_close(sp);
    /* Reopen: nothing acknowledged, everything is replayed. */
    sp = open_spool(f, 1 << 20, 256);
    lg_spool_get_state(sp, &st);
    cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 0), 100);
    lg_spool_close(sp);
}

/* lg_spool_read_view lends the record without a copy and caches the writer's end: records
 * flushed after the reader reached that end (in the same segment and in new ones) must
 * still be seen, in order. */
static void test_spool_view_reads_follow_the_writer(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 300);
    struct lg_spool_pos cur = ack_of(sp);
    struct lg_slice v;
    int next = 0;
    for (int round = 0; round < 6; round++) {
        int add = 3 + round * 7; /* some rounds stay in a segment, some cross into new ones */
        for (int i = 0; i < add; i++) {
            char rec[64];
            int len = snprintf(rec, sizeof(rec), "record-%06d", next + i);
            assert_int_equal(lg_spool_append(sp, rec, (size_t)len), LG_OK);
        }
        assert_int_equal(lg_spool_flush(sp, false), LG_OK);
        for (int i = 0; i < add; i++) {
            assert_int_equal(lg_spool_read_view(sp, &cur, &v), LG_OK);
            char want[64];
            int len = snprintf(want, sizeof(want), "record-%06d", next + i);
            assert_int_equal(v.len, (size_t)len);
            assert_memory_equal(v.ptr, want, v.len);
        }
        assert_int_equal(lg_spool_read_view(sp, &cur, &v), LG_ERR_AGAIN);
        next += add;
    }
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_true(stats.segments > 1);
    lg_spool_close(sp);
}

/* Appends record-000000..099, flushes, reads the first 60 from the acknowledged position:
 * returns where the reader stopped; |st| gets the state as it was before the reads. */
static struct lg_spool_pos append_100_read_60(lg_spool *sp, struct lg_spool_state *st)
{
    append_n(sp, 0, 100);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    lg_spool_get_state(sp, st);
    struct lg_spool_pos cur = st->ack;
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    for (int i = 0; i < 60; i++) {
        assert_int_equal(lg_spool_read(sp, &cur, &b), LG_OK);
    }
    lg_buf_deinit(&b);
    return cur;
}

static void test_spool_ack_persists_and_frees_segments(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 256);
    struct lg_spool_state st;
    struct lg_spool_pos cur = append_100_read_60(sp, &st);
    struct lg_spool_stats before, after;
    lg_spool_get_stats(sp, &before);
    st.ack = cur;
    st.has_inflight = true;
    st.inflight_end = cur;
    strcpy(st.batch_id, "abc123");
    assert_int_equal(lg_spool_save_state(sp, &st), LG_OK);
    lg_spool_get_stats(sp, &after);
    assert_true(after.bytes < before.bytes);
    assert_true(after.segments < before.segments);
    /* The files go in lg_spool_reap, not in save_state (off the acknowledging thread). */
    assert_int_not_equal(seg_size(f, 0), UINT64_MAX);
    lg_spool_reap(sp);
    assert_int_equal(seg_size(f, 0), UINT64_MAX);
    assert_int_not_equal(seg_size(f, cur.seg), UINT64_MAX); /* the unacknowledged stay */
    lg_spool_reap(sp); /* nothing left to remove: harmless */
    lg_spool_close(sp);
    sp = open_spool(f, 1 << 20, 256);
    struct lg_spool_state st2;
    lg_spool_get_state(sp, &st2);
    assert_true(st2.has_inflight);
    assert_string_equal(st2.batch_id, "abc123");
    cur = st2.ack;
    assert_int_equal(read_all(sp, &cur, 60), 40);
    lg_spool_close(sp);
}

/* A state file failing its CRC is refused (LG_ERR_CORRUPT) and left as it is; moved
 * aside, the spool opens at its oldest segment and the acknowledged head replays
 * (docs/operations.md, "Corrupt spool state"). */
static void test_spool_corrupt_state_refused(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 1 << 16);
    struct lg_spool_state st;
    struct lg_spool_pos cur = append_100_read_60(sp, &st);
    st.ack = cur;
    assert_int_equal(lg_spool_save_state(sp, &st), LG_OK);
    lg_spool_close(sp);
    char path[128], aside[128];
    snprintf(path, sizeof(path), "%s/state", f->dir);
    snprintf(aside, sizeof(aside), "%s/state.bad", f->dir);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    char line[256];
    size_t n = fread(line, 1, sizeof(line), fp);
    assert_true(n > 20);
    /* One digit of the acknowledged offset changed: the line parses, its CRC fails. */
    char *off = line + strlen("lgspool-state 1 ");
    off = strchr(off, ' ') + 1;
    *off = *off == '9' ? '8' : (char)(*off + 1);
    rewind(fp);
    assert_int_equal(fwrite(line, 1, n, fp), n);
    fclose(fp);
    struct lg_spool_opts o = {f->dir, 1 << 20, 1 << 16};
    sp = NULL;
    assert_int_equal(lg_spool_open(&sp, &o), LG_ERR_CORRUPT);
    assert_null(sp);
    fp = fopen(path, "rb");
    char again[256];
    assert_int_equal(fread(again, 1, sizeof(again), fp), n);
    fclose(fp);
    assert_memory_equal(again, line, n); /* left as it was */
    assert_int_equal(rename(path, aside), 0);
    sp = open_spool(f, 1 << 20, 1 << 16);
    cur = ack_of(sp);
    assert_int_equal(read_all(sp, &cur, 0), 100);
    lg_spool_close(sp);
    unlink(aside);
}

/* A frame of "record-NNNNNN": 8-byte header and 13 bytes. */
#define REC_FRAME_BYTES (8u + 13u)

/* Frames of "record-NNNNNN" for from..from+n-1, back to back, made the way the shipper
 * makes them (header reserved, payload written after it, lg_spool_frame_finish). */
static size_t make_frames(uint8_t *out, int from, int n)
{
    size_t len = 0;
    for (int i = from; i < from + n; i++) {
        int plen = snprintf((char *)out + len + LG_SPOOL_FRAME_HDR_BYTES, 32, "record-%06d", i);
        assert_int_equal(lg_spool_frame_finish(out + len, (size_t)plen), LG_OK);
        len += LG_SPOOL_FRAME_HDR_BYTES + (size_t)plen;
    }
    return len;
}

static uint64_t file_ino(struct fixture *f, const char *name)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", f->dir, name);
    struct stat st;
    return stat(p, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

#define LONG_PAD "........................................" /* 40 bytes */

/* Appends |n| records "long-record-<i>-" and 40 dots. */
static void append_padded(lg_spool *sp, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        char rec[128];
        int len = snprintf(rec, sizeof(rec), "long-record-%06d-" LONG_PAD, i);
        assert_int_equal(lg_spool_append(sp, rec, (size_t)len), LG_OK);
    }
}

/* Reads every record from |cur| and checks they are append_padded's from |from| on. */
static int read_padded(lg_spool *sp, struct lg_spool_pos *cur, int from)
{
    struct lg_slice v;
    int n = 0, rc;
    while ((rc = lg_spool_read_view(sp, cur, &v)) == LG_OK) {
        char want[128];
        int len = snprintf(want, sizeof(want), "long-record-%06d-" LONG_PAD, from + n);
        assert_int_equal(v.len, (size_t)len);
        assert_memory_equal(v.ptr, want, v.len);
        assert_int_equal(lg_spool_last_crc(sp), lg_spool_crc32(want, (size_t)len));
        n++;
    }
    assert_int_equal(rc, LG_ERR_AGAIN);
    return n;
}

/* An acknowledged segment is kept as DIR/spare by lg_spool_reap and becomes the next new
 * segment (same file). Its old frames are valid frames of another segment number: after a
 * restart none of them may come back (they are acknowledged rows: a duplicate bill). The
 * new records are all there, from memory and after a reopen from the file, and a recycled
 * segment closed by a rotation reads to its end without a corrupt record. */
static void test_spool_recycles_acknowledged_segment(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 256);
    append_n(sp, 0, 40); /* 11 per segment: segments 0-3 */
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    struct lg_spool_pos cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 0), 40);
    st.ack = cur;
    assert_int_equal(lg_spool_save_state(sp, &st), LG_OK);
    lg_spool_reap(sp);
    uint64_t spare = file_ino(f, "spare");
    assert_int_not_equal(spare, 0);
    assert_int_equal(seg_size(f, 0), UINT64_MAX);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.recycled, 0);
    /* Fill segment 3 (7 left), then 3 records in segment 4: the spare, same file. */
    append_n(sp, 40, 10);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.recycled, 1);
    assert_int_equal(file_ino(f, "spare"), 0);
    assert_int_equal(file_ino(f, "00000000000000000004.seg"), spare);
    assert_int_equal(read_all(sp, &cur, 40), 10);
    lg_spool_close(sp); /* like a crash: the old frames past the new ones stay in the file */
    sp = open_spool(f, 1 << 20, 256);
    lg_spool_get_stats(sp, &stats);
    assert_true(stats.torn_bytes > 0); /* the leftovers, cut by recovery */
    lg_spool_get_state(sp, &st);
    cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 40), 10); /* not one old record */
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.corrupt_records, 0);
    /* Acknowledge, reap (segment 3 becomes the spare), and write longer records: the
     * recycled segment 5 closes earlier than its old contents ended. */
    st.ack = cur;
    assert_int_equal(lg_spool_save_state(sp, &st), LG_OK);
    lg_spool_reap(sp);
    assert_int_not_equal(file_ino(f, "spare"), 0);
    struct lg_spool_pos from = cur;
    append_padded(sp, 0, 12);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.recycled, 1); /* counted since this open */
    assert_true(stats.segments >= 3);
    lg_spool_close(sp);
    sp = open_spool(f, 1 << 20, 256);
    cur = from;
    assert_int_equal(read_padded(sp, &cur, 0), 12);
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.corrupt_records, 0);
    assert_int_equal(stats.read_from_file, 12);
    lg_spool_close(sp);
}

/* A spool written by an older build (version 1: "LGSPOOL1", plain CRCs) is read after the
 * upgrade and appended to in the same segment; the next segment is version 2 and reads on
 * in order. An acknowledged version 1 segment is removed, never recycled: after a crash
 * between renaming the spare and writing its new magic, its old plain-CRC frames would
 * check again. */
static void test_spool_reads_version_1_segments(void **state)
{
    struct fixture *f = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/%020d.seg", f->dir, 0);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "LGSPOOL1", 8), 8);
    uint8_t frames[64 * 5];
    size_t len = make_frames(frames, 0, 5);
    assert_int_equal(write(fd, frames, len), (ssize_t)len);
    close(fd);
    lg_spool *sp = open_spool(f, 1 << 20, 256);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.torn_bytes, 0);
    append_n(sp, 5, 5);
    lg_spool_close(sp);
    assert_int_equal(seg_size(f, 0), 8 + 10 * REC_FRAME_BYTES); /* one segment, extended */
    sp = open_spool(f, 1 << 20, 256);
    struct lg_spool_pos cur = {0, 0};
    assert_int_equal(read_all(sp, &cur, 0), 10);
    append_n(sp, 10, 10); /* one more fits segment 0; the rest start segment 1 (version 2) */
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    assert_int_equal(read_all(sp, &cur, 10), 10);
    assert_int_equal(cur.seg, 1);
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.corrupt_records, 0);
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    st.ack = cur;
    assert_int_equal(lg_spool_save_state(sp, &st), LG_OK);
    lg_spool_reap(sp);
    assert_int_equal(seg_size(f, 0), UINT64_MAX);
    assert_int_equal(file_ino(f, "spare"), 0); /* removed, not kept for reuse */
    lg_spool_close(sp);
    sp = open_spool(f, 1 << 20, 256);
    lg_spool_get_state(sp, &st);
    cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 20), 0);
    lg_spool_close(sp);
}

static void test_spool_torn_tail_truncated(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 1 << 16);
    append_n(sp, 0, 10);
    lg_spool_close(sp);
    /* Simulate a crash in the middle of a write: half a frame at the end. */
    char path[128];
    snprintf(path, sizeof(path), "%s/%020d.seg", f->dir, 0);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    uint8_t torn[] = {20, 0, 0, 0, 1, 2, 3, 4, 'r', 'e', 'c'};
    assert_int_equal(write(fd, torn, sizeof(torn)), sizeof(torn));
    close(fd);
    sp = open_spool(f, 1 << 20, 1 << 16);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.torn_bytes, sizeof(torn));
    /* New appends follow the last good record. */
    append_n(sp, 10, 5);
    assert_int_equal(lg_spool_flush(sp, true), LG_OK);
    struct lg_spool_pos cur = ack_of(sp);
    assert_int_equal(read_all(sp, &cur, 0), 15);
    lg_spool_close(sp);
}

static void test_spool_crc_mismatch_detected(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 1 << 16);
    append_n(sp, 0, 10);
    lg_spool_close(sp);
    /* Flip one payload byte of the last record: its CRC no longer matches. */
    char path[128];
    snprintf(path, sizeof(path), "%s/%020d.seg", f->dir, 0);
    int fd = open(path, O_RDWR);
    struct stat st;
    fstat(fd, &st);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, st.st_size - 1), 1);
    c ^= 0x55;
    assert_int_equal(pwrite(fd, &c, 1, st.st_size - 1), 1);
    close(fd);
    sp = open_spool(f, 1 << 20, 1 << 16);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_true(stats.torn_bytes > 0);
    struct lg_spool_state s;
    lg_spool_get_state(sp, &s);
    struct lg_spool_pos cur = s.ack;
    assert_int_equal(read_all(sp, &cur, 0), 9);
    lg_spool_close(sp);
}

static void test_spool_corrupt_middle_segment_skipped(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 256);
    append_n(sp, 0, 40);
    lg_spool_close(sp);
    spoil_first_payload(f);
    sp = open_spool(f, 1 << 20, 256);
    struct lg_spool_state s;
    lg_spool_get_state(sp, &s);
    struct lg_spool_pos cur = s.ack;
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_spool_read(sp, &cur, &b), LG_ERR_CORRUPT);
    int n = 0;
    while (lg_spool_read(sp, &cur, &b) == LG_OK) {
        n++;
    }
    assert_true(n > 0 && n < 40);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.corrupt_records, 1);
    lg_buf_deinit(&b);
    lg_spool_close(sp);
}

/* Records read soon after they were written come from the write buffers the spool kept
 * (the handoff), not from the file: a byte changed in the file after the write is not
 * seen, and no CRC check fails. Read from the file (after a reopen), the same byte is a
 * CRC mismatch: file reads stay checked. */
static void test_spool_reads_written_records_from_memory(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 256);
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    struct lg_spool_pos cur = st.ack;
    append_n(sp, 0, 10);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    spoil_first_payload(f);
    assert_int_equal(read_all(sp, &cur, 0), 10);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.read_from_memory, 10);
    assert_int_equal(stats.read_from_file, 0);
    assert_int_equal(stats.corrupt_records, 0);
    /* More after the reader caught up (into a second segment: 10 records fill the first):
     * memory again, following on in order. */
    append_n(sp, 10, 5);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    assert_int_equal(read_all(sp, &cur, 10), 5);
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.read_from_memory, 15);
    assert_true(lg_spool_last_from_memory(sp));
    lg_spool_close(sp);
    sp = open_spool(f, 1 << 20, 256);
    lg_spool_get_state(sp, &st);
    cur = st.ack;
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    assert_int_equal(lg_spool_read(sp, &cur, &b), LG_ERR_CORRUPT);
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.corrupt_records, 1);
    assert_int_equal(stats.read_from_memory, 0);
    /* the next records come from the file, and say so */
    assert_int_equal(lg_spool_read(sp, &cur, &b), LG_OK);
    assert_false(lg_spool_last_from_memory(sp));
    lg_buf_deinit(&b);
    lg_spool_close(sp);
}

/* Appends records in three times as many flushes as the handoff has slots, none read:
 * the first flushes' buffers stay in memory, the rest only in the file. Returns how many. */
static int flush_past_handoff(lg_spool *sp)
{
    int n = 0;
    for (unsigned i = 0; i < 3 * LG_SPOOL_HANDOFF_SLOTS; i++) {
        append_n(sp, n, 50);
        n += 50;
        assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    }
    return n;
}

/* A reader far behind the writer: the handoff keeps only its first buffers (slots, bytes
 * bounded); the rest is read from the file, in order, across segments. Reading again from
 * the start (a rewind) gets the same records, from the file. */
static void test_spool_reader_behind_reads_file(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 26, 1 << 14);
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    struct lg_spool_pos start = st.ack, cur = start;
    int n = flush_past_handoff(sp);
    assert_int_equal(read_all(sp, &cur, 0), n);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_true(stats.read_from_memory > 0);
    assert_true(stats.read_from_file > 0);
    assert_int_equal(stats.read_from_memory + stats.read_from_file, (uint64_t)n);
    assert_true(stats.segments > 1);
    cur = start;
    assert_int_equal(read_all(sp, &cur, 0), n);
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.read_from_memory + stats.read_from_file, 2 * (uint64_t)n);
    assert_int_equal(stats.corrupt_records, 0);
    lg_spool_close(sp);
}

/* A held block keeps the bytes of the records read from it valid and unchanged while the
 * reader moves on through other memory: written buffers taken from the handoff (one per
 * flush) and, with the reader behind, read-ahead refills from the file. Held twice, it
 * needs two releases; released memory is reused (and freed at close: no leak). */
static void test_spool_held_block_outlives_reads(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 26, 1 << 14);
    struct lg_spool_pos cur = ack_of(sp);
    int n = flush_past_handoff(sp);
    struct lg_slice held[3];
    void *blk[3];
    int at[3] = {0, 120, 2000}; /* in a handoff buffer, another one, read from the file */
    int k = 0;
    struct lg_slice v;
    for (int i = 0; i < n; i++) {
        assert_int_equal(lg_spool_read_view(sp, &cur, &v), LG_OK);
        if (k < 3 && i == at[k]) {
            held[k] = v;
            blk[k] = lg_spool_last_block(sp);
            assert_non_null(blk[k]);
            lg_spool_block_retain(sp, blk[k]);
            if (k == 0) {
                lg_spool_block_retain(sp, blk[k]);
            }
            k++;
        }
    }
    assert_int_equal(lg_spool_read_view(sp, &cur, &v), LG_ERR_AGAIN);
    assert_true(blk[0] != blk[1] && blk[1] != blk[2]);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_true(stats.read_from_memory > 0 && stats.read_from_file > 0);
    for (int j = 0; j < 3; j++) {
        char want[32];
        snprintf(want, sizeof(want), "record-%06d", at[j]);
        assert_int_equal(held[j].len, strlen(want));
        assert_memory_equal(held[j].ptr, want, held[j].len);
    }
    lg_spool_block_release(sp, blk[0]);
    assert_memory_equal(held[0].ptr, "record-000000", 13); /* still held once */
    lg_spool_block_release(sp, blk[0]);
    lg_spool_block_release(sp, blk[1]);
    /* More records, read into memory the released blocks gave back. */
    append_n(sp, n, 50);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    assert_int_equal(read_all(sp, &cur, n), 50);
    assert_memory_equal(held[2].ptr, "record-002000", 13);
    lg_spool_block_release(sp, blk[2]);
    lg_spool_trim_free(sp, 0);
    lg_spool_close(sp);
}

static void test_spool_cap_refuses(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 512, 256);
    int ok = 0, full = 0;
    for (int i = 0; i < 100; i++) {
        int rc = lg_spool_append(sp, "record-xxxxxx", 13);
        if (rc == LG_OK) {
            ok++;
        } else {
            assert_int_equal(rc, LG_ERR_EXHAUSTED);
            full++;
        }
    }
    assert_true(ok > 0 && full > 0);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_true(stats.bytes <= 512 + 8);
    char big[8];
    memset(big, 0, sizeof(big));
    assert_int_equal(lg_spool_append(sp, big, (size_t)LG_SPOOL_MAX_RECORD_BYTES + 1),
                     LG_ERR_TOO_LARGE);
    lg_spool_close(sp);
}


/* One call appends many frames, read back as the records appended one by one would be,
 * each with the CRC lg_spool_last_crc reports equal to lg_spool_crc32 of its bytes. */
static void test_spool_append_frames_reads_back(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 256); /* 256-byte segments: frames rotate */
    uint8_t frames[64 * 40];
    append_n(sp, 0, 3);
    size_t len = make_frames(frames, 3, 40);
    size_t taken = 0;
    assert_int_equal(lg_spool_append_frames(sp, frames, len, &taken), LG_OK);
    assert_int_equal(taken, len);
    append_n(sp, 43, 2);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    struct lg_spool_pos cur = {0, 0};
    struct lg_slice v;
    for (int i = 0; i < 45; i++) {
        assert_int_equal(lg_spool_read_view(sp, &cur, &v), LG_OK);
        char want[32];
        snprintf(want, sizeof(want), "record-%06d", i);
        assert_int_equal(v.len, strlen(want));
        assert_memory_equal(v.ptr, want, v.len);
        assert_int_equal(lg_spool_last_crc(sp), lg_spool_crc32(want, strlen(want)));
    }
    assert_int_equal(lg_spool_read_view(sp, &cur, &v), LG_ERR_AGAIN);
    struct lg_spool_stats st;
    lg_spool_get_stats(sp, &st);
    assert_int_equal(st.appended, 45);
    assert_true(st.segments > 1);
    lg_spool_close(sp);
}

/* At the cap, a prefix of whole frames is taken and reported; the rest is not in the spool
 * and a later call (after room returns) takes it. Garbage is refused as LG_ERR_INVALID. */
static void test_spool_append_frames_prefix_at_cap(void **state)
{
    struct fixture *f = *state;
    /* Room for 8 + 10 frames of 21 bytes (the magic is not counted against the cap). */
    lg_spool *sp = open_spool(f, 8 + 10 * REC_FRAME_BYTES, 64);
    uint8_t frames[64 * 16];
    size_t len = make_frames(frames, 0, 16);
    size_t taken = 0;
    assert_int_equal(lg_spool_append_frames(sp, frames, len, &taken), LG_ERR_EXHAUSTED);
    assert_true(taken > 0 && taken < len);
    assert_int_equal(taken % REC_FRAME_BYTES, 0);
    int in = (int)(taken / REC_FRAME_BYTES);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    struct lg_spool_pos cur = {0, 0};
    assert_int_equal(read_all(sp, &cur, 0), in);
    /* Garbage: a length past the end. Nothing taken. */
    uint8_t bad[LG_SPOOL_FRAME_HDR_BYTES + 4] = {0xff, 0xff, 0, 0};
    assert_int_equal(lg_spool_append_frames(sp, bad, sizeof(bad), &taken), LG_ERR_INVALID);
    assert_int_equal(taken, 0);
    assert_int_equal(lg_spool_append_frames(sp, bad, 3, &taken), LG_ERR_INVALID);
    uint8_t big[LG_SPOOL_FRAME_HDR_BYTES];
    assert_int_equal(lg_spool_frame_finish(big, (size_t)LG_SPOOL_MAX_RECORD_BYTES + 1),
                     LG_ERR_TOO_LARGE);
    lg_spool_close(sp);
}

/* lg_spool_append_buf takes a run's memory instead of copying it: the caller's buffer comes
 * back empty (other memory, same maximum) and the records read back in order, after the
 * records buffered before it and across a rotation that the run starts. When the run would
 * pass the cap it is copied frame by frame instead: a prefix is taken and the caller's
 * buffer is left as it was. */
static void test_spool_append_buf_takes_memory(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 8 + 200 * REC_FRAME_BYTES, 8 + 30 * REC_FRAME_BYTES);
    struct lg_buf run;
    lg_buf_init(&run, 128 * 64);
    append_n(sp, 0, 2); /* buffered: written before the run's memory is taken */
    size_t taken = 0;
    for (int r = 0; r < 6; r++) { /* 2 + 6 * 20 records: runs 2 and 4 start new segments */
        uint8_t *dst = lg_buf_reserve(&run, 20 * 64);
        assert_non_null(dst);
        size_t len = make_frames(dst, 2 + r * 20, 20);
        lg_buf_commit(&run, len);
        const uint8_t *mem = run.data;
        assert_int_equal(lg_spool_append_buf(sp, &run, &taken), LG_OK);
        assert_int_equal(taken, len);
        assert_int_equal(run.len, 0);
        assert_true(run.data != mem);
        assert_int_equal(run.max, 128 * 64);
    }
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    struct lg_spool_pos cur = {0, 0};
    assert_int_equal(read_all(sp, &cur, 0), 122);
    struct lg_spool_stats st;
    lg_spool_get_stats(sp, &st);
    assert_int_equal(st.appended, 122);
    assert_true(st.segments >= 4);
    assert_int_equal(st.corrupt_records, 0);
    /* 78 more fit the cap: a run of 100 is cut there, copied, and stays in |run|. */
    uint8_t *dst = lg_buf_reserve(&run, 100 * 64);
    assert_non_null(dst);
    size_t len = make_frames(dst, 122, 100);
    lg_buf_commit(&run, len);
    assert_int_equal(lg_spool_append_buf(sp, &run, &taken), LG_ERR_EXHAUSTED);
    assert_int_equal(run.len, len);
    assert_int_equal(taken % REC_FRAME_BYTES, 0);
    assert_true(taken > 0 && taken < len);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    assert_int_equal(read_all(sp, &cur, 122), (int)(taken / REC_FRAME_BYTES));
    /* Garbage is refused as by lg_spool_append_frames. */
    lg_buf_reset(&run);
    assert_int_equal(lg_buf_append(&run, "\xff\xff\0\0\0\0\0\0abc", 11), LG_OK);
    assert_int_equal(lg_spool_append_buf(sp, &run, &taken), LG_ERR_INVALID);
    assert_int_equal(taken, 0);
    lg_buf_deinit(&run);
    lg_spool_close(sp);
}

/* Descriptors open in this process (to check that a sync job closes what it took). */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* lg_spool_sync_begin writes the buffer (the records are readable after it, before the job
 * runs) and takes the active segment (a duplicate) and the one rotated away; a rotation
 * while the job waits does not disturb it; running it closes what it took; the next job
 * takes the segment rotated away meanwhile. */
static void test_spool_sync_job_in_two_steps(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 256);
    int fds0 = open_fds();
    append_n(sp, 0, 5);
    struct lg_spool_sync job;
    assert_int_equal(lg_spool_sync_begin(sp, &job), LG_OK);
    assert_true(job.fd[0] >= 0);
    assert_true(job.dir); /* segment 0 was created since the last directory sync */
    struct lg_spool_pos cur = {0, 0};
    assert_int_equal(read_all(sp, &cur, 0), 5);
    append_n(sp, 5, 30); /* rotates: 256-byte segments */
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    assert_int_equal(lg_spool_sync_run(sp, &job), LG_OK);
    assert_int_equal(job.fd[0], -1);
    assert_int_equal(job.fd[1], -1);
    struct lg_spool_sync job2;
    assert_int_equal(lg_spool_sync_begin(sp, &job2), LG_OK);
    assert_true(job2.fd[1] >= 0); /* the segment rotated away since the first job */
    assert_int_equal(lg_spool_sync_run(sp, &job2), LG_OK);
    assert_int_equal(open_fds(), fds0 + 1); /* the new active segment; the reader's is open too */
    assert_int_equal(read_all(sp, &cur, 5), 30);
    assert_int_equal(lg_spool_flush(sp, true), LG_OK); /* the one-step form still works */
    lg_spool_close(sp);
}

/* Files may grow to |bytes| (the soft limit; |f->fsize| is put back by teardown). */
static void limit_file_size(struct fixture *f, uint64_t bytes)
{
    struct rlimit rl = f->fsize;
    rl.rlim_cur = (rlim_t)bytes;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static uint64_t seg_size(struct fixture *f, uint64_t seg)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%020llu.seg", f->dir, (unsigned long long)seg);
    struct stat st;
    if (stat(p, &st) != 0) {
        return UINT64_MAX; /* no such segment */
    }
    return (uint64_t)st.st_size;
}


/* 10 records written, 5 more buffered, then the disk "fills" with room for one and a half
 * more frames: the write takes a prefix and the flush fails. The whole frame stays written,
 * the half one is rolled back and it and the 3 after it stay buffered. Returns the good
 * size of segment 0 (11 records). */
static uint64_t fill_then_fail(struct fixture *f, lg_spool *sp)
{
    append_n(sp, 0, 10);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    uint64_t before = seg_size(f, 0);
    append_n(sp, 10, 5); /* accepted: nothing has failed yet */
    limit_file_size(f, before + REC_FRAME_BYTES + REC_FRAME_BYTES / 2);
    assert_int_equal(lg_spool_flush(sp, false), LG_ERR_IO);
    assert_int_equal(seg_size(f, 0), before + REC_FRAME_BYTES);
    return before + REC_FRAME_BYTES;
}

/* A record larger than the write buffer is written directly; when that write fails (disk
 * full) the record is refused, and once space returns the next appends are taken. Before
 * the fix the spool refused every record from then on (nothing buffered, so no flush ever
 * cleared the failure). */
static void test_spool_failed_direct_write_recovers(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 64u << 20, 16u << 20);
    append_n(sp, 0, 2);
    assert_int_equal(lg_spool_flush(sp, false), LG_OK);
    uint64_t before = seg_size(f, 0);
    size_t big_len = LG_SPOOL_WRITE_BUFFER_BYTES + 4096;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'x', big_len);
    limit_file_size(f, before + 4096);
    assert_int_equal(lg_spool_append(sp, big, big_len), LG_ERR_IO);
    assert_int_equal(seg_size(f, 0), before); /* rolled back: no torn frame */
    limit_file_size(f, f->fsize.rlim_cur);
    append_n(sp, 2, 3); /* asserts LG_OK for each */
    assert_int_equal(lg_spool_flush(sp, true), LG_OK);
    struct lg_spool_pos cur = ack_of(sp);
    assert_int_equal(read_all(sp, &cur, 0), 5);
    free(big);
    lg_spool_close(sp);
}

static void test_spool_append_after_failed_write(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 1 << 20);
    uint64_t good = fill_then_fail(f, sp);
    /* Refused, not buffered: a record is never taken that may not be written. */
    assert_int_equal(lg_spool_append(sp, "record-000015", 13), LG_ERR_IO);
    assert_int_equal(lg_spool_append(sp, "record-000015", 13), LG_ERR_IO);
    assert_int_equal(lg_spool_flush(sp, true), LG_ERR_IO); /* retried, still failing */
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_true(stats.write_failed);
    assert_int_equal(stats.appended, 15);
    assert_int_equal(stats.lost, 0); /* the 4 unwritten records wait in memory */
    assert_int_equal(seg_size(f, 0), good);
    /* Given up (shutdown): counted, never silent. */
    assert_int_equal(lg_spool_discard(sp), 4);
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.lost, 4);
    lg_spool_close(sp);
}

static void test_spool_rollback_leaves_readable_spool(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 1 << 20);
    uint64_t good = fill_then_fail(f, sp);
    /* The partial write was truncated away: no torn frame, nothing corrupt. */
    assert_int_equal(seg_size(f, 0), good);
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    struct lg_spool_pos cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 0), 11);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.corrupt_records, 0);
    /* Close with the disk still full: the buffered records are counted lost. */
    lg_spool_close(sp);
    setrlimit(RLIMIT_FSIZE, &f->fsize);
    sp = open_spool(f, 1 << 20, 1 << 20);
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.torn_bytes, 0);
    lg_spool_get_state(sp, &st);
    cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 0), 11);
    lg_spool_close(sp);
}

static void test_spool_recovers_after_space_returns(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 1 << 20);
    fill_then_fail(f, sp);
    assert_int_equal(lg_spool_append(sp, "record-000015", 13), LG_ERR_IO);
    setrlimit(RLIMIT_FSIZE, &f->fsize); /* space returns */
    assert_int_equal(lg_spool_flush(sp, true), LG_OK);
    append_n(sp, 15, 5);
    assert_int_equal(lg_spool_flush(sp, true), LG_OK);
    struct lg_spool_pos cur = ack_of(sp);
    assert_int_equal(read_all(sp, &cur, 0), 20); /* in order, none lost */
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_false(stats.write_failed);
    assert_int_equal(stats.lost, 0);
    assert_int_equal(stats.corrupt_records, 0);
    lg_spool_close(sp);
}

static void test_spool_full_disk_reclaims_acknowledged_segment(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 1 << 20);
    fill_then_fail(f, sp);
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    struct lg_spool_pos cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 0), 11);
    /* Not acknowledged: the full segment must stay, the flush keeps failing. */
    assert_int_equal(lg_spool_flush(sp, false), LG_ERR_IO);
    /* ClickHouse took all 11: the retry deletes the segment and writes into the next. */
    st.ack = cur;
    assert_int_equal(lg_spool_save_state(sp, &st), LG_OK);
    assert_int_equal(lg_spool_flush(sp, true), LG_OK);
    assert_int_equal(seg_size(f, 0), UINT64_MAX);
    assert_true(seg_size(f, 1) < UINT64_MAX);
    assert_int_equal(read_all(sp, &cur, 11), 4);
    append_n(sp, 15, 1);
    assert_int_equal(lg_spool_flush(sp, true), LG_OK);
    assert_int_equal(read_all(sp, &cur, 15), 1);
    struct lg_spool_stats stats;
    lg_spool_get_stats(sp, &stats);
    assert_int_equal(stats.segments, 1);
    assert_int_equal(stats.lost, 0);
    lg_spool_close(sp);
    /* And a restart resumes after the acknowledged position, in the new segment. */
    setrlimit(RLIMIT_FSIZE, &f->fsize);
    sp = open_spool(f, 1 << 20, 1 << 20);
    lg_spool_get_state(sp, &st);
    cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 11), 5);
    lg_spool_close(sp);
}

/* The disk is so full that after the reclaim even the next segment cannot be created, and
 * the process stops: no segment is left, and the state file names a batch in flight. The
 * next open must number its segment after the positions the state names: the shipper, once
 * its check finds that batch landed, reads on from the batch's end, and new records lying
 * "before" it would never be read (and deletions would follow it). */
static void test_spool_reopen_after_reclaim_without_segment(void **state)
{
    struct fixture *f = *state;
    lg_spool *sp = open_spool(f, 1 << 20, 1 << 20);
    fill_then_fail(f, sp);
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    struct lg_spool_pos cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 0), 11);
    st.ack = cur;
    st.has_inflight = true;
    st.inflight_end = cur;
    snprintf(st.batch_id, sizeof(st.batch_id), "b-11");
    assert_int_equal(lg_spool_save_state(sp, &st), LG_OK);
    limit_file_size(f, 4); /* not even a segment's magic fits */
    assert_int_equal(lg_spool_flush(sp, false), LG_ERR_IO);
    assert_int_equal(seg_size(f, 0), UINT64_MAX);
    assert_int_equal(seg_size(f, 1), UINT64_MAX); /* the half-made one was removed */
    assert_int_equal(lg_spool_discard(sp), 4);
    lg_spool_close(sp);
    setrlimit(RLIMIT_FSIZE, &f->fsize);
    sp = open_spool(f, 1 << 20, 1 << 20);
    lg_spool_get_state(sp, &st);
    assert_true(st.has_inflight);
    cur = st.inflight_end; /* where the shipper goes on once "b-11" is found landed */
    append_n(sp, 15, 3);
    assert_int_equal(lg_spool_flush(sp, true), LG_OK);
    assert_int_equal(read_all(sp, &cur, 15), 3);
    cur = st.ack;
    assert_int_equal(read_all(sp, &cur, 15), 3);
    lg_spool_close(sp);
}

static void test_spool_invalid_options(void **state)
{
    struct fixture *f = *state;
    struct lg_spool_opts o = {f->dir, 100, 1000};
    lg_spool *sp = NULL;
    assert_int_equal(lg_spool_open(&sp, &o), LG_ERR_INVALID);
    o = (struct lg_spool_opts){"/proc/definitely/not/here", 1 << 20, 256};
    assert_int_equal(lg_spool_open(&sp, &o), LG_ERR_IO);
    /* Missing parents are created (mkdir -p). */
    char nested[128];
    snprintf(nested, sizeof(nested), "%s/a/b", f->dir);
    o = (struct lg_spool_opts){nested, 1 << 20, 256};
    assert_int_equal(lg_spool_open(&sp, &o), LG_OK);
    lg_spool_close(sp);
    char p2[160];
    snprintf(p2, sizeof(p2), "%s/a/b/%020d.seg", f->dir, 0);
    unlink(p2);
    rmdir(nested);
    snprintf(p2, sizeof(p2), "%s/a", f->dir);
    rmdir(p2);
    o = (struct lg_spool_opts){f->dir, 1 << 20, 256};
    lg_test_fail_after(0);
    assert_int_equal(lg_spool_open(&sp, &o), LG_ERR_NOMEM);
    lg_test_fail_after(-1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_spool_append_read_across_segments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_view_reads_follow_the_writer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_ack_persists_and_frees_segments, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_recycles_acknowledged_segment, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_reads_version_1_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_torn_tail_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_corrupt_state_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_crc_mismatch_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_corrupt_middle_segment_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_reads_written_records_from_memory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_reader_behind_reads_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_held_block_outlives_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_cap_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_append_frames_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_append_buf_takes_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_sync_job_in_two_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_append_frames_prefix_at_cap, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_invalid_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_append_after_failed_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_failed_direct_write_recovers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_rollback_leaves_readable_spool, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_recovers_after_space_returns, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_full_disk_reclaims_acknowledged_segment,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_reopen_after_reclaim_without_segment, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
