/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_spool (owner: fuzz): the analytics spool's recovery and reader over corrupted
 * segment files and state files (analytics/lg_spool.h).
 *
 * Each input becomes a spool directory (under $LG_FUZZ_TMPDIR, else /dev/shm, else /tmp, so
 * the fsyncs of lg_spool_close stay cheap), which is then opened and replayed like the
 * shipper does after a crash. Input layout:
 *   byte 0      flags: bit 0 two segments (else one), bit 1 fix the CRC of every frame whose
 *               length fits (so hostile lengths and payloads get past the CRC check), bit 2
 *               write a state file, bit 3 segment numbers near UINT64_MAX, bit 4 omit the
 *               magic of the first segment, bit 5 version 2 segments ("LGSPOOL2", each
 *               walkable frame's CRC field XORed with the segment's mask, after the fix of
 *               bit 1), bit 6 a spare file (DIR/spare: the first segment's bytes as valid
 *               version 2 frames of another segment number) and 64-byte segments, so the
 *               record appended after recovery starts a new segment made from the spare,
 *               bit 7 unused;
 *   bytes 1-2   length of the first segment's body when there are two (little endian);
 *   bytes 3-34  state fields when bit 2 is set: ack seg delta, ack off, inflight end seg
 *               delta, inflight end off (u64 LE each), written with a correct CRC;
 *   rest        segment bodies (after the 8-byte magic, unless bit 4 is set), frames with
 *               plain CRCs (bit 5 masks them).
 * Properties: no crash, leak or sanitizer report; lg_spool_read returns only LG_OK,
 * LG_ERR_AGAIN, LG_ERR_CORRUPT (a bounded number of times) or LG_ERR_IO; every record it
 * returns is at most LG_SPOOL_MAX_RECORD_BYTES and matches its CRC (re-checked here);
 * without a state file, a record appended after recovery is read back intact after the
 * recovered ones, as the last record (no leftover of a recycled spare after it);
 * stats.bytes never exceeds max_bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_spool.h"

#define FUZZ_MAGIC         "LGSPOOL1"
#define FUZZ_MAGIC_V2      "LGSPOOL2"
#define FUZZ_MAGIC_LEN     8
#define FUZZ_FRAME_HDR     8
#define FUZZ_HDR_BYTES     3
#define FUZZ_STATE_BYTES   32
#define FUZZ_MAX_BYTES     (4u * 1024u * 1024u)
#define FUZZ_SEGMENT_BYTES (64u * 1024u)
#define FUZZ_MAX_READS     4096
#define FUZZ_TAIL          "tail-record-after-recovery"

#define F_TWO_SEGMENTS 0x01u
#define F_FIX_CRC      0x02u
#define F_STATE        0x04u
#define F_HIGH_SEG     0x08u
#define F_NO_MAGIC     0x10u
#define F_V2           0x20u
#define F_SPARE        0x40u
#define FUZZ_SPARE_SEGMENT_BYTES 64u

#define LG_FUZZ_SMOKE_ITERATIONS 3000
#define LG_FUZZ_SMOKE_MAX_LEN    8192
#include "lg_fuzz_smoke.h"

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(v); i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (size_t i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void write_file(const char *path, const uint8_t *a, size_t alen, const uint8_t *b,
                       size_t blen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        abort();
    }
    if ((alen > 0 && write(fd, a, alen) != (ssize_t)alen) ||
        (blen > 0 && write(fd, b, blen) != (ssize_t)blen)) {
        abort();
    }
    close(fd);
}

/* A version 2 segment's CRC mask (the spool format, analytics/lg_spool.h). */
static uint32_t seg_mask(uint64_t seg)
{
    return (uint32_t)((seg + 1u) * 2654435761u);
}

/* For each frame of |p| that lies wholly inside it: rewrites its CRC when |fix|, then XORs
 * |mask| into it. */
static void fix_crcs(uint8_t *p, size_t n, bool fix, uint32_t mask)
{
    size_t off = 0;
    while (off + FUZZ_FRAME_HDR <= n) {
        uint32_t len = get_u32(p + off);
        if (len > n - off - FUZZ_FRAME_HDR) {
            break;
        }
        uint32_t crc = fix ? (uint32_t)crc32(0L, p + off + FUZZ_FRAME_HDR, len)
                           : get_u32(p + off + 4);
        put_u32(p + off + 4, crc ^ mask);
        off += FUZZ_FRAME_HDR + len;
    }
}

/* Writes segment |seg| (or the spare file when |name| is given) from a copy of |body|. */
static void write_segment(const char *dir, uint64_t seg, const char *name, bool magic,
                          const uint8_t *body, size_t n, bool fix, bool v2)
{
    char path[512];
    if (name != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, name);
    } else {
        snprintf(path, sizeof(path), "%s/%020" PRIu64 ".seg", dir, seg);
    }
    uint8_t *copy = malloc(n > 0 ? n : 1);
    if (copy == NULL) {
        abort();
    }
    memcpy(copy, body, n);
    fix_crcs(copy, n, fix, v2 ? seg_mask(seg) : 0);
    write_file(path, (const uint8_t *)(v2 ? FUZZ_MAGIC_V2 : FUZZ_MAGIC),
               magic ? FUZZ_MAGIC_LEN : 0, copy, n);
    free(copy);
}

static void write_state(const char *dir, uint64_t base, const uint8_t *f)
{
    char line[256];
    int n = snprintf(line, sizeof(line), "lgspool-state 1 %" PRIu64 " %" PRIu64 " %d %" PRIu64
                     " %" PRIu64 " %s",
                     base + get_u64(f) % 4, get_u64(f + 8), f[16] & 1, base + get_u64(f + 16) % 4,
                     get_u64(f + 24), (f[16] & 2) ? "0123456789abcdef" : "-");
    if (n < 0 || (size_t)n >= sizeof(line)) {
        abort();
    }
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)line, (uInt)n);
    char full[300];
    int m = snprintf(full, sizeof(full), "%s %lx\n", line, (unsigned long)crc);
    char path[512];
    snprintf(path, sizeof(path), "%s/state", dir);
    write_file(path, (const uint8_t *)full, (size_t)m, NULL, 0);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static const char *tmp_root(void)
{
    const char *t = getenv("LG_FUZZ_TMPDIR");
    if (t != NULL && t[0] != 0) {
        return t;
    }
    struct stat st;
    return stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
}

/* Reads from |cur| until AGAIN/IO; returns true when the last record read was the tail. */
static bool replay(lg_spool *sp, struct lg_spool_pos *cur)
{
    struct lg_buf out;
    lg_buf_init(&out, LG_SPOOL_MAX_RECORD_BYTES);
    bool saw_tail = false;
    for (int i = 0; i < FUZZ_MAX_READS; i++) {
        int rc = lg_spool_read(sp, cur, &out);
        if (rc == LG_OK) {
            if (out.len > LG_SPOOL_MAX_RECORD_BYTES) {
                abort();
            }
            saw_tail = out.len == sizeof(FUZZ_TAIL) - 1 &&
                       memcmp(out.data, FUZZ_TAIL, out.len) == 0;
            continue;
        }
        if (rc == LG_ERR_CORRUPT) {
            continue;
        }
        if (rc != LG_ERR_AGAIN && rc != LG_ERR_IO) {
            abort();
        }
        break;
    }
    lg_buf_deinit(&out);
    return saw_tail;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < FUZZ_HDR_BYTES) {
        return 0;
    }
    uint8_t flags = data[0];
    size_t split = (size_t)data[1] | (size_t)data[2] << 8;
    const uint8_t *p = data + FUZZ_HDR_BYTES;
    size_t n = size - FUZZ_HDR_BYTES;
    const uint8_t *state = NULL;
    if (flags & F_STATE) {
        if (n < FUZZ_STATE_BYTES) {
            return 0;
        }
        state = p;
        p += FUZZ_STATE_BYTES;
        n -= FUZZ_STATE_BYTES;
    }
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/lg-fuzz-spool-XXXXXX", tmp_root());
    if (mkdtemp(dir) == NULL) {
        abort();
    }
    uint8_t *body = malloc(n > 0 ? n : 1);
    if (body == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(body, p, n);
    }
    uint64_t base = (flags & F_HIGH_SEG) ? UINT64_MAX - 2 : 1;
    bool fix = (flags & F_FIX_CRC) != 0;
    bool v2 = (flags & F_V2) != 0;
    if (flags & F_SPARE) {
        /* Valid frames, but of a segment number the spool never gives the spare. */
        write_segment(dir, base - 100, "spare", true, body, n, true, true);
    }
    if (flags & F_TWO_SEGMENTS) {
        size_t a = split < n ? split : n;
        write_segment(dir, base, NULL, !(flags & F_NO_MAGIC), body, a, fix, v2);
        write_segment(dir, base + 1, NULL, true, body + a, n - a, fix, v2);
    } else {
        write_segment(dir, base, NULL, !(flags & F_NO_MAGIC), body, n, fix, v2);
    }
    free(body);
    if (state != NULL) {
        write_state(dir, base, state);
    }

    struct lg_spool_opts o = {dir, FUZZ_MAX_BYTES,
                              (flags & F_SPARE) ? FUZZ_SPARE_SEGMENT_BYTES : FUZZ_SEGMENT_BYTES};
    lg_spool *sp = NULL;
    if (lg_spool_open(&sp, &o) == LG_OK) {
        struct lg_spool_state st;
        lg_spool_get_state(sp, &st);
        struct lg_spool_pos cur = st.ack;
        (void)replay(sp, &cur);
        int rc = lg_spool_append(sp, FUZZ_TAIL, sizeof(FUZZ_TAIL) - 1);
        if (rc == LG_OK) {
            rc = lg_spool_flush(sp, false);
        }
        if (rc == LG_OK && state == NULL && !replay(sp, &cur)) {
            abort(); /* a record appended after recovery must be readable */
        }
        struct lg_spool_stats stats;
        lg_spool_get_stats(sp, &stats);
        if (stats.bytes > FUZZ_MAX_BYTES) {
            abort();
        }
        st.ack = cur;
        st.has_inflight = false;
        st.batch_id[0] = 0;
        (void)lg_spool_save_state(sp, &st);
        lg_spool_close(sp);
    }
    remove_dir(dir);
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
/* Makes a real spool with |nrec| records and emits "flags, split, state?, segment bodies". */
static void fuzz_seed_spool(lg_fuzz_emit_fn emit, void *ud, uint8_t flags, size_t nrec)
{
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/lg-fuzz-seed-XXXXXX", tmp_root());
    if (mkdtemp(dir) == NULL) {
        abort();
    }
    struct lg_spool_opts o = {dir, FUZZ_MAX_BYTES, FUZZ_SEGMENT_BYTES};
    lg_spool *sp = NULL;
    if (lg_spool_open(&sp, &o) != LG_OK) {
        abort();
    }
    for (size_t i = 0; i < nrec; i++) {
        char rec[128];
        int k = snprintf(rec, sizeof(rec), "{\"request_id\":\"r%zu\",\"n\":%zu}", i, i * 7);
        if (lg_spool_append(sp, rec, (size_t)k) != LG_OK) {
            abort();
        }
    }
    lg_spool_close(sp);
    char path[512];
    snprintf(path, sizeof(path), "%s/%020d.seg", dir, 0);
    uint8_t buf[8192];
    FILE *f = fopen(path, "rb");
    size_t len = f != NULL ? fread(buf, 1, sizeof(buf), f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    remove_dir(dir);
    size_t body = len > FUZZ_MAGIC_LEN ? len - FUZZ_MAGIC_LEN : 0;
    uint8_t in[FUZZ_HDR_BYTES + FUZZ_STATE_BYTES + sizeof(buf)];
    size_t at = 0;
    in[at++] = flags;
    in[at++] = (uint8_t)(body / 2);
    in[at++] = (uint8_t)((body / 2) >> 8);
    if (flags & F_STATE) {
        memset(in + at, 0, FUZZ_STATE_BYTES);
        in[at + 8] = FUZZ_MAGIC_LEN; /* ack at the first record */
        at += FUZZ_STATE_BYTES;
    }
    /* The body's frames carry plain CRCs (the writer's flags choose the version): the
     * spool wrote segment 0 as version 2. */
    fix_crcs(buf + FUZZ_MAGIC_LEN, body, false, seg_mask(0));
    memcpy(in + at, buf + FUZZ_MAGIC_LEN, body);
    emit(in, at + body, ud);
}

static void fuzz_seeds(lg_fuzz_emit_fn emit, void *ud)
{
    fuzz_seed_spool(emit, ud, 0, 0);
    fuzz_seed_spool(emit, ud, 0, 5);
    fuzz_seed_spool(emit, ud, F_TWO_SEGMENTS, 8);
    fuzz_seed_spool(emit, ud, F_FIX_CRC, 3);
    fuzz_seed_spool(emit, ud, F_STATE | F_TWO_SEGMENTS, 6);
    fuzz_seed_spool(emit, ud, F_HIGH_SEG | F_TWO_SEGMENTS | F_FIX_CRC, 4);
    fuzz_seed_spool(emit, ud, F_V2, 5);
    fuzz_seed_spool(emit, ud, F_V2 | F_TWO_SEGMENTS | F_SPARE, 6);
    fuzz_seed_spool(emit, ud, F_SPARE, 3);
}
#endif
