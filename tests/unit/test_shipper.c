/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of lg_shipper that need no ClickHouse: spool-only mode, the overflow path,
 * the cap and its drop counting, closed state, failing inserts against a closed port.
 * The shipper allocates on its own thread and cmocka's test_malloc is not thread-safe, so
 * this file keeps libc's allocator; LeakSanitizer (the ASan build) checks for leaks.
 * Integration tests with a real ClickHouse: tests/integration/analytics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <time.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_record.h"
#include "lg_shipper.h"
#include "lg_spool.h"

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = malloc(sizeof(*f));
    strcpy(f->dir, "/tmp/lg_test_shipper_XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
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

static struct lg_record *rec(int i)
{
    struct lg_record *r = NULL;
    assert_int_equal(lg_record_new(&r), LG_OK);
    char id[32];
    int n = snprintf(id, sizeof(id), "r-%d", i);
    assert_int_equal(lg_record_set_str(&r->request_id, id, (size_t)n), LG_OK);
    assert_int_equal(lg_record_set_str(&r->user_id, "u", 1), LG_OK);
    return r;
}

static struct lg_shipper_opts spool_only(const char *dir)
{
    struct lg_shipper_opts o;
    memset(&o, 0, sizeof(o));
    o.spool_dir = dir;
    o.no_ship = true;
    return o;
}

/* Rows in the spool after its acknowledged position, each asserted to be a whole row of
 * |fmt| ('{' for JSON, else a RowBinary version) for a record made by rec(). */
static int count_spooled_fmt(const char *dir, unsigned fmt)
{
    struct lg_spool_opts so = {dir, UINT64_C(1) << 30, UINT64_C(64) << 20};
    lg_spool *sp = NULL;
    assert_int_equal(lg_spool_open(&sp, &so), LG_OK);
    struct lg_spool_state st;
    lg_spool_get_state(sp, &st);
    struct lg_spool_pos cur = st.ack;
    struct lg_buf b;
    lg_buf_init(&b, 1 << 20);
    int n = 0;
    while (lg_spool_read(sp, &cur, &b) == LG_OK) {
        assert_int_equal(b.data[0], fmt);
        if (fmt == LG_RECORD_ROWBINARY_V1) {
            struct lg_record *r = NULL;
            assert_int_equal(lg_record_from_rowbinary(fmt, b.data + 1, b.len - 1, &r), LG_OK);
            assert_memory_equal(r->request_id, "r-", 2);
            lg_record_free(r);
        } else {
            assert_non_null(memmem(b.data, b.len, "\"request_id\":\"r-", 16));
        }
        n++;
    }
    lg_buf_deinit(&b);
    lg_spool_close(sp);
    return n;
}

/* The default format's rows. */
static int count_spooled(const char *dir)
{
    return count_spooled_fmt(dir, LG_RECORD_ROWBINARY_V1);
}

static void test_shipper_invalid_options(void **state)
{
    struct fixture *f = *state;
    struct lg_shipper_opts o;
    memset(&o, 0, sizeof(o));
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_ERR_INVALID); /* no spool dir */
    o.spool_dir = f->dir;
    assert_int_equal(lg_shipper_new(&s, &o), LG_ERR_INVALID); /* no URL, shipping on */
    o.no_ship = true;
    o.queue_capacity = 3;
    assert_int_equal(lg_shipper_new(&s, &o), LG_ERR_INVALID); /* ring not a power of 2 */
    o.queue_capacity = 0;
    o.compression = (enum lg_shipper_compression)7;
    assert_int_equal(lg_shipper_new(&s, &o), LG_ERR_INVALID); /* unknown compression */
    o.compression = LG_SHIPPER_COMPRESSION_AUTO;
    o.format = (enum lg_shipper_format)2;
    assert_int_equal(lg_shipper_new(&s, &o), LG_ERR_INVALID); /* unknown format */
    enum lg_shipper_format fm = LG_SHIPPER_FORMAT_JSON;
    assert_int_equal(lg_shipper_format_parse("rowbinary", &fm), LG_OK);
    assert_int_equal(fm, LG_SHIPPER_FORMAT_ROWBINARY);
    assert_int_equal(lg_shipper_format_parse("json", &fm), LG_OK);
    assert_int_equal(fm, LG_SHIPPER_FORMAT_JSON);
    assert_int_equal(lg_shipper_format_parse("tsv", &fm), LG_ERR_INVALID);
    assert_int_equal(lg_shipper_format_parse(NULL, &fm), LG_ERR_INVALID);
}

static void test_shipper_compression_auto_by_host(void **state)
{
    (void)state;
    enum lg_shipper_compression c = LG_SHIPPER_COMPRESSION_NONE;
    assert_int_equal(lg_shipper_compression_parse("auto", &c), LG_OK);
    assert_int_equal(c, LG_SHIPPER_COMPRESSION_AUTO);
    assert_int_equal(lg_shipper_compression_parse("gzip", &c), LG_OK);
    assert_int_equal(c, LG_SHIPPER_COMPRESSION_GZIP);
    assert_int_equal(lg_shipper_compression_parse("none", &c), LG_OK);
    assert_int_equal(c, LG_SHIPPER_COMPRESSION_NONE);
    assert_int_equal(lg_shipper_compression_parse("zstd", &c), LG_ERR_INVALID);
    assert_int_equal(lg_shipper_compression_parse(NULL, &c), LG_ERR_INVALID);
    /* auto: off on loopback (nothing crosses a wire), on for any other host. */
    assert_false(lg_shipper_compression_gzip(LG_SHIPPER_COMPRESSION_AUTO,
                                             "http://127.0.0.1:8123"));
    assert_false(lg_shipper_compression_gzip(LG_SHIPPER_COMPRESSION_AUTO,
                                             "http://localhost:8123"));
    assert_false(lg_shipper_compression_gzip(LG_SHIPPER_COMPRESSION_AUTO, "http://[::1]:8123"));
    assert_true(lg_shipper_compression_gzip(LG_SHIPPER_COMPRESSION_AUTO,
                                            "https://ch.example:8443"));
    assert_true(lg_shipper_compression_gzip(LG_SHIPPER_COMPRESSION_AUTO,
                                            "http://10.0.0.5:8123"));
    /* An explicit choice wins over the host. */
    assert_true(lg_shipper_compression_gzip(LG_SHIPPER_COMPRESSION_GZIP,
                                            "http://127.0.0.1:8123"));
    assert_false(lg_shipper_compression_gzip(LG_SHIPPER_COMPRESSION_NONE,
                                             "http://10.0.0.5:8123"));
}

static void spools_every_record(struct fixture *f, enum lg_shipper_format format)
{
    struct lg_shipper_opts o = spool_only(f->dir);
    o.format = format;
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_OK);
    struct lg_record_sink sink;
    lg_shipper_sink(s, &sink);
    for (int i = 0; i < 500; i++) {
        assert_int_equal(lg_record_sink_enqueue(&sink, rec(i)), LG_OK);
    }
    assert_int_equal(lg_shipper_sync(s, 30000), LG_OK);
    /* Spooled, but nothing can land: drain does not say "all landed". */
    assert_int_equal(lg_shipper_drain(s, 1000), LG_ERR_INVALID);
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    assert_int_equal(st.accepted, 500);
    assert_int_equal(st.spooled + st.overflowed, 500);
    assert_int_equal(st.dropped, 0);
    lg_record_sink_close(&sink); /* no-op for the shipper's sink */
    lg_shipper_free(s);
    assert_int_equal(count_spooled_fmt(f->dir, format == LG_SHIPPER_FORMAT_JSON
                                                   ? '{'
                                                   : LG_RECORD_ROWBINARY_V1),
                     500);
}

static void test_shipper_spools_every_record(void **state)
{
    spools_every_record(*state, LG_SHIPPER_FORMAT_ROWBINARY);
}

static void test_shipper_spools_every_record_json(void **state)
{
    spools_every_record(*state, LG_SHIPPER_FORMAT_JSON);
}

/* Occurrences of "r-" (the request ids of rec(): no other column holds it) in the spool's
 * segment files, read raw (what a restart after a kill -9 would find: written, not
 * necessarily synced). */
static int count_written(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    static const char needle[] = "r-";
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 4, ".seg") != 0) {
            continue;
        }
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        static char buf[1 << 20];
        size_t got = fread(buf, 1, sizeof(buf), fp);
        fclose(fp);
        for (size_t i = 0; i + sizeof(needle) - 1 <= got; i++) {
            if (memcmp(buf + i, needle, sizeof(needle) - 1) == 0) {
                n++;
            }
        }
    }
    closedir(d);
    return n;
}

/* A spool-only shipper and its sink, with the durable-answer operations. */
static lg_shipper *start_sink(struct fixture *f, struct lg_record_sink *sink)
{
    struct lg_shipper_opts o = spool_only(f->dir);
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_OK);
    lg_shipper_sink(s, sink);
    assert_non_null(sink->ticket);
    assert_non_null(sink->written);
    assert_non_null(sink->set_notify);
    return s;
}

/* Durable answers: once lg_shipper_written(ticket) says so, every record enqueued before the
 * ticket is in a segment file, while the shipper still runs (no stop, no sync). */
static void test_shipper_ticket_written_means_in_spool_file(void **state)
{
    struct fixture *f = *state;
    struct lg_record_sink sink;
    lg_shipper *s = start_sink(f, &sink);
    int total = 0;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 50; i++) {
            assert_int_equal(lg_record_sink_enqueue(&sink, rec(total++)), LG_OK);
        }
        uint64_t t = sink.ticket(sink.impl);
        assert_true(t > 0);
        struct timespec pause = {0, 100000};
        for (int k = 0; k < 300000 && !sink.written(sink.impl, t); k++) {
            nanosleep(&pause, NULL);
        }
        assert_true(sink.written(sink.impl, t));
        assert_int_equal(count_written(f->dir), total);
    }
    lg_shipper_free(s);
}

/* The written-notification: after a ticket, the callback comes (on the shipper thread) and
 * by then written() is true for it, each round, without polling written() in between; once
 * the callback is cleared it is not called again, even with tickets taken. */
struct notify_box {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
};

static void on_written(void *arg)
{
    struct notify_box *b = arg;
    pthread_mutex_lock(&b->mu);
    b->calls++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void test_shipper_written_notify(void **state)
{
    struct fixture *f = *state;
    struct lg_record_sink sink;
    lg_shipper *s = start_sink(f, &sink);
    struct notify_box box = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    sink.set_notify(sink.impl, on_written, &box);
    int total = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 20; i++) {
            assert_int_equal(lg_record_sink_enqueue(&sink, rec(total++)), LG_OK);
        }
        pthread_mutex_lock(&box.mu);
        int seen = box.calls;
        pthread_mutex_unlock(&box.mu);
        uint64_t t = sink.ticket(sink.impl);
        /* Wait for calls (a call may be for an earlier turn: wait again until written). */
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 30;
        pthread_mutex_lock(&box.mu);
        while (!sink.written(sink.impl, t)) {
            while (box.calls == seen) {
                assert_int_equal(pthread_cond_timedwait(&box.cv, &box.mu, &deadline), 0);
            }
            seen = box.calls;
        }
        pthread_mutex_unlock(&box.mu);
        assert_int_equal(count_written(f->dir), total);
    }
    sink.set_notify(sink.impl, NULL, NULL);
    pthread_mutex_lock(&box.mu);
    int after = box.calls;
    pthread_mutex_unlock(&box.mu);
    assert_int_equal(lg_record_sink_enqueue(&sink, rec(total++)), LG_OK);
    uint64_t t = sink.ticket(sink.impl);
    struct timespec pause = {0, 100000};
    for (int k = 0; k < 300000 && !sink.written(sink.impl, t); k++) {
        nanosleep(&pause, NULL);
    }
    assert_true(sink.written(sink.impl, t));
    assert_int_equal(lg_shipper_sync(s, 30000), LG_OK);
    pthread_mutex_lock(&box.mu);
    assert_int_equal(box.calls, after);
    pthread_mutex_unlock(&box.mu);
    lg_shipper_free(s);
}

static void test_shipper_overflow_goes_to_spool(void **state)
{
    struct fixture *f = *state;
    struct lg_shipper_opts o = spool_only(f->dir);
    o.queue_capacity = 2; /* the ring is full at once: the caller spools */
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_OK);
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(lg_shipper_enqueue(s, rec(i)), LG_OK);
    }
    assert_int_equal(lg_shipper_sync(s, 30000), LG_OK);
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    assert_true(st.overflowed > 0);
    assert_int_equal(st.spooled + st.overflowed, 2000);
    lg_shipper_free(s);
    assert_int_equal(count_spooled(f->dir), 2000);
}

/* Dead-letter lines: a RowBinary row is written as the JSON row of its record; one that
 * does not decode as hex; text as it is. Each line is one JSON object. */
static void test_shipper_dead_letter_line(void **state)
{
    (void)state;
    struct lg_record *r = rec(7);
    assert_int_equal(lg_record_set_str(&r->response_content, "a \"b\"\n", 6), LG_OK);
    struct lg_buf rb, js, line;
    lg_buf_init(&rb, 1 << 20);
    lg_buf_init(&js, 1 << 20);
    lg_buf_init(&line, 1 << 20);
    assert_int_equal(lg_record_encode_rowbinary(r, &rb), LG_OK);
    assert_int_equal(lg_record_encode_row(r, &js), LG_OK);
    assert_int_equal(lg_shipper_dead_letter_line(&line, 5, "b-1", 27, "bad \"x\"", rb.data + 1,
                                                 rb.len - 1, LG_RECORD_ROWBINARY_V1),
                     LG_OK);
    json_t *j = json_loadb((const char *)line.data, line.len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "time_ms")), 5);
    assert_string_equal(json_string_value(json_object_get(j, "batch_id")), "b-1");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 27);
    assert_string_equal(json_string_value(json_object_get(j, "error")), "bad \"x\"");
    const char *row = json_string_value(json_object_get(j, "row"));
    assert_non_null(row);
    assert_int_equal(strlen(row), js.len);
    assert_memory_equal(row, js.data, js.len);
    json_decref(j);
    /* Columns cut short: hex of the bytes given. */
    lg_buf_reset(&line);
    assert_int_equal(lg_shipper_dead_letter_line(&line, 5, "", 0, "cut", rb.data + 1, 3,
                                                 LG_RECORD_ROWBINARY_V1),
                     LG_OK);
    j = json_loadb((const char *)line.data, line.len, 0, NULL);
    assert_non_null(j);
    assert_null(json_object_get(j, "row"));
    char want[7];
    snprintf(want, sizeof(want), "%02x%02x%02x", rb.data[1], rb.data[2], rb.data[3]);
    assert_string_equal(json_string_value(json_object_get(j, "row_hex")), want);
    json_decref(j);
    /* A JSON row, as it is. */
    lg_buf_reset(&line);
    assert_int_equal(lg_shipper_dead_letter_line(&line, 5, "", 0, "e", js.data, js.len, '{'),
                     LG_OK);
    j = json_loadb((const char *)line.data, line.len, 0, NULL);
    assert_non_null(j);
    assert_memory_equal(json_string_value(json_object_get(j, "row")), js.data, js.len);
    json_decref(j);
    lg_buf_deinit(&rb);
    lg_buf_deinit(&js);
    lg_buf_deinit(&line);
    lg_record_free(r);
}

/* The dead-letter file of the spool in |dir| as a string (up to |cap| - 1 bytes). */
static void read_dead_letters(const char *dir, char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/deadletter.jsonl", dir);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t got = fread(buf, 1, cap - 1, fp);
    fclose(fp);
    buf[got] = 0;
}

/* A record whose row can never be spooled (past LG_RECORD_MAX_ROW_BYTES: refused by the
 * encoder at the buffer's cap, or by the row check of a run just under it) is
 * dead-lettered by request id; the records before and after it in the same run are
 * spooled. */
static void test_shipper_unspoolable_record_dead_lettered(void **state)
{
    struct fixture *f = *state;
    struct lg_shipper_opts o = spool_only(f->dir);
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_OK);
    size_t sizes[2] = {(size_t)LG_RECORD_MAX_ROW_BYTES + (2u << 20), /* past the run's cap */
                       (size_t)LG_RECORD_MAX_ROW_BYTES + 4096u};     /* under it */
    char *big = malloc(sizes[0]);
    assert_non_null(big);
    memset(big, 'x', sizes[0]);
    for (int i = 0; i < 5; i++) {
        struct lg_record *r = rec(i);
        if (i == 1 || i == 3) {
            assert_int_equal(lg_record_set_str(&r->response_content, big, sizes[i / 2]), LG_OK);
        }
        assert_int_equal(lg_shipper_enqueue(s, r), LG_OK);
    }
    free(big);
    assert_int_equal(lg_shipper_sync(s, 30000), LG_OK);
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    assert_int_equal(st.accepted, 5);
    assert_int_equal(st.spooled, 3);
    assert_int_equal(st.dead_letters, 2);
    assert_int_equal(st.dropped, 0);
    lg_shipper_free(s);
    assert_int_equal(count_spooled(f->dir), 3);
    char buf[4096];
    read_dead_letters(f->dir, buf, sizeof(buf));
    assert_non_null(strstr(buf, "r-1"));
    assert_non_null(strstr(buf, "r-3"));
    assert_null(strstr(buf, "r-2"));
}

/* The same record on the full-ring path (the caller encodes): dead-lettered and taken,
 * not refused as a drop (it was LG_ERR_EXHAUSTED, counted dropped, before). With a ring of
 * 2 slots, three small records then a huge one reach the overflow path unless the thread
 * drained in between: repeated, so the huge records take both paths. */
static void test_shipper_unencodable_on_overflow_dead_lettered(void **state)
{
    struct fixture *f = *state;
    struct lg_shipper_opts o = spool_only(f->dir);
    o.queue_capacity = 2;
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_OK);
    size_t big_len = (size_t)LG_RECORD_MAX_ROW_BYTES + 4096u;
    char *big = malloc(big_len);
    assert_non_null(big);
    memset(big, 'x', big_len);
    enum { ROUNDS = 8, SMALL = 3 };
    for (int k = 0; k < ROUNDS; k++) {
        for (int i = 0; i < SMALL; i++) {
            assert_int_equal(lg_shipper_enqueue(s, rec(k * 10 + i)), LG_OK);
        }
        struct lg_record *r = rec(k * 10 + 9);
        assert_int_equal(lg_record_set_str(&r->response_content, big, big_len), LG_OK);
        assert_int_equal(lg_shipper_enqueue(s, r), LG_OK);
    }
    free(big);
    assert_int_equal(lg_shipper_sync(s, 30000), LG_OK);
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    assert_true(st.overflowed > 0);
    assert_int_equal(st.accepted, ROUNDS * (SMALL + 1));
    assert_int_equal(st.dead_letters, ROUNDS);
    assert_int_equal(st.dropped, 0);
    lg_shipper_free(s);
    assert_int_equal(count_spooled(f->dir), ROUNDS * SMALL);
    char buf[8192];
    read_dead_letters(f->dir, buf, sizeof(buf));
    for (int k = 0; k < ROUNDS; k++) {
        char id[32];
        snprintf(id, sizeof(id), "\"row\":\"r-%d\"", k * 10 + 9);
        assert_non_null(strstr(buf, id));
    }
}

static void test_shipper_cap_drops_are_counted(void **state)
{
    struct fixture *f = *state;
    struct lg_shipper_opts o = spool_only(f->dir);
    o.queue_capacity = 2;
    o.spool_max_bytes = 16384;
    o.spool_segment_bytes = 8192;
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_OK);
    int ok = 0, refused = 0;
    for (int i = 0; i < 1000; i++) {
        struct lg_record *r = rec(i);
        int rc = lg_shipper_enqueue(s, r);
        if (rc == LG_OK) {
            ok++;
        } else {
            assert_int_equal(rc, LG_ERR_EXHAUSTED);
            lg_record_free(r); /* ownership stays with the caller on error */
            refused++;
        }
    }
    assert_true(refused > 0);
    int rc = lg_shipper_sync(s, 30000);
    assert_true(rc == LG_OK || rc == LG_ERR_EXHAUSTED);
    lg_shipper_stop(s);
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    /* Every record is either in the spool or counted as dropped. */
    int spooled = 0;
    lg_shipper_free(s);
    spooled = count_spooled(f->dir);
    assert_int_equal((uint64_t)spooled + st.dropped, 1000);
    assert_true(st.dropped >= (uint64_t)refused);
    (void)ok;
}

/* A spool-only shipper with a 4-slot ring whose first record is spooled, then a "full
 * disk": RLIMIT_FSIZE stops the segment from growing. |saved| gets the limit to restore. */
static lg_shipper *start_disk_full(struct fixture *f, struct rlimit *saved)
{
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, saved), 0);
    struct lg_shipper_opts o = spool_only(f->dir);
    o.queue_capacity = 4;
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_OK);
    assert_int_equal(lg_shipper_enqueue(s, rec(0)), LG_OK);
    assert_int_equal(lg_shipper_sync(s, 30000), LG_OK);
    char seg[160];
    snprintf(seg, sizeof(seg), "%s/%020d.seg", f->dir, 0);
    struct stat sb;
    assert_int_equal(stat(seg, &sb), 0);
    struct rlimit full = *saved;
    full.rlim_cur = (rlim_t)sb.st_size + 1;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &full), 0);
    return s;
}

/* The spool's disk fills (RLIMIT_FSIZE: a write past it fails after a partial write, like
 * ENOSPC): records are held, not dead-lettered; producers that find the ring full are
 * refused and counted; once space returns every accepted record reaches the spool. */
static void test_shipper_disk_full_is_backpressure(void **state)
{
    struct fixture *f = *state;
    struct rlimit saved;
    lg_shipper *s = start_disk_full(f, &saved);
    assert_int_equal(lg_shipper_enqueue(s, rec(1)), LG_OK);
    /* The flush fails: sync reports that accepted records wait in memory. */
    assert_int_equal(lg_shipper_sync(s, 30000), LG_ERR_EXHAUSTED);
    int ok = 2, refused = 0;
    for (int i = 2; i < 42; i++) {
        struct lg_record *r = rec(i);
        int rc = lg_shipper_enqueue(s, r);
        if (rc == LG_OK) {
            ok++;
        } else {
            assert_int_equal(rc, LG_ERR_EXHAUSTED);
            lg_record_free(r);
            refused++;
        }
    }
    assert_true(refused > 0); /* at most the ring and the held record were taken */
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    assert_int_equal(st.dropped, (uint64_t)refused);
    assert_int_equal(st.dead_letters, 0);
    /* Space returns: the spool's flush writes what it kept, the held record and the ring
     * follow. Polled: each sync is one loop turn of the shipper. */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    int rc = LG_ERR_EXHAUSTED;
    for (int i = 0; i < 3000 && rc == LG_ERR_EXHAUSTED; i++) {
        rc = lg_shipper_sync(s, 30000);
    }
    assert_int_equal(rc, LG_OK);
    lg_shipper_stop(s);
    lg_shipper_get_stats(s, &st);
    assert_int_equal(st.dropped, (uint64_t)refused);
    assert_int_equal(st.dead_letters, 0);
    assert_int_equal(st.spooled + st.overflowed, (uint64_t)ok);
    lg_shipper_free(s);
    assert_int_equal(count_spooled(f->dir), ok);
}

/* Stopped while the disk is still full: the records the spool could not write and those
 * held or queued are counted as dropped, so made = spooled + dropped still holds. */
static void test_shipper_disk_full_at_stop_counts_unwritten(void **state)
{
    struct fixture *f = *state;
    struct rlimit saved;
    lg_shipper *s = start_disk_full(f, &saved);
    int refused = 0;
    for (int i = 1; i < 21; i++) {
        struct lg_record *r = rec(i);
        if (lg_shipper_enqueue(s, r) != LG_OK) {
            lg_record_free(r);
            refused++;
        }
    }
    assert_int_equal(lg_shipper_sync(s, 30000), LG_ERR_EXHAUSTED);
    lg_shipper_stop(s);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    assert_int_equal(st.dead_letters, 0);
    assert_true(st.dropped > (uint64_t)refused); /* accepted ones were lost too, counted */
    lg_shipper_free(s);
    assert_int_equal((uint64_t)count_spooled(f->dir) + st.dropped, 21);
}

static void test_shipper_closed_after_stop(void **state)
{
    struct fixture *f = *state;
    struct lg_shipper_opts o = spool_only(f->dir);
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_OK);
    lg_shipper_stop(s);
    struct lg_record *r = rec(1);
    assert_int_equal(lg_shipper_enqueue(s, r), LG_ERR_CLOSED);
    lg_record_free(r);
    struct lg_buf m;
    lg_buf_init(&m, 1 << 16);
    assert_int_equal(lg_shipper_format_metrics(s, &m), LG_OK);
    assert_non_null(strstr((char *)m.data, "# TYPE llmgate_shipper_dropped_total counter\n"));
    assert_non_null(strstr((char *)m.data, "llmgate_shipper_queue_depth 0\n"));
    lg_buf_deinit(&m);
    lg_shipper_free(s);
}

static void test_shipper_retries_when_unreachable(void **state)
{
    struct fixture *f = *state;
    struct lg_shipper_opts o;
    memset(&o, 0, sizeof(o));
    o.spool_dir = f->dir;
    o.clickhouse_url = "http://127.0.0.1:9"; /* discard port: connection refused */
    o.batch_age_ms = 1;
    lg_shipper *s = NULL;
    assert_int_equal(lg_shipper_new(&s, &o), LG_OK);
    assert_int_equal(lg_shipper_enqueue(s, rec(1)), LG_OK);
    assert_int_equal(lg_shipper_drain(s, 500), LG_ERR_TIMEOUT);
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    assert_true(st.retries > 0);
    assert_int_equal(st.rows_shipped, 0);
    lg_shipper_free(s);
    /* Not lost: still in the spool for the next start. */
    assert_int_equal(count_spooled(f->dir), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shipper_invalid_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_compression_auto_by_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_spools_every_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_spools_every_record_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_dead_letter_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_written_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_unspoolable_record_dead_lettered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shipper_ticket_written_means_in_spool_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shipper_overflow_goes_to_spool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_unencodable_on_overflow_dead_lettered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_cap_drops_are_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_disk_full_is_backpressure, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shipper_disk_full_at_stop_counts_unwritten, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shipper_closed_after_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shipper_retries_when_unreachable, setup, teardown),
    };
    return cmocka_run_group_tests_name("shipper", tests, NULL, NULL);
}
