/* SPDX-License-Identifier: Apache-2.0 */
#define LG_LOG_MODULE "shipper"
#include "lg_shipper.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "lg_batch.h"
#include "lg_buf.h"
#include "lg_chclient.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_log.h"
#include "lg_mem.h"
#include "lg_time.h"
#include "lg_queue.h"
#include "lg_record.h"
#include "lg_spool.h"

/* The statements batches are sent with, by their rows' format. llm_ingest is a Null table
 * whose materialized views fill llm_requests, llm_request_bodies and llm_usage_daily
 * (analytics/schema). JSON rows name their columns; RowBinary rows are read in the order
 * of the column list, which comes from the rows' version (lg_record_rowbinary_columns):
 * columns the server has and the list lacks get their defaults. */
#define SHIPPER_INSERT_PARAMS_JSON                                                             \
    "query=INSERT%20INTO%20llm_ingest%20FORMAT%20JSONEachRow&input_format_skip_unknown_fields=1"

enum ship_phase {
    PHASE_IDLE,     /* collecting rows, or ready to (re)send a sealed batch */
    PHASE_SENDING,  /* INSERT in flight */
    PHASE_CHECKING, /* batch_id landed-check in flight */
    PHASE_BACKOFF,  /* waiting until backoff_until */
};

struct lg_shipper {
    /* Immutable after new. */
    struct lg_chclient_opts ch;
    char *url, *user, *key, *ca_file, *dl_path;
    bool gzip, no_ship;
    enum lg_shipper_format format; /* of new rows */
    lg_queue *q;
    lg_spool *sp;
    pthread_t th;
    bool thread_started;
    bool stopped; /* lg_shipper_stop ran (controlling thread only) */
    uint64_t cpu_ns_last; /* last reading of the thread's CPU clock (controlling thread) */

    /* Hot path and control flags. */
    atomic_bool closed;  /* enqueue refuses */
    atomic_bool stop;    /* thread must finish */
    /* Keeps |closed|, read by every enqueue, off the line of the counters below that the
     * shipper thread writes per record (bench_enqueue, 8 producers: p99 90-142 ns in 6 of
     * 13 runs without, 29-52 ns in 10 of 10 with; lg_malloc aligns only to 16). */
    char pad_counters[64];
    atomic_uint_fast64_t overflowed, dropped, popped, spooled, rows_shipped, batches, retries,
        dead_letters, landed_checks, landed_on_check;
    /* Spool turns (lg_shipper_ticket): a turn takes a number, drains the whole ring into the
     * spool and writes it out; turn_done is the last turn that did both. */
    atomic_uint_fast64_t turn_started, turn_done;
    /* The spool cannot take records now (disk full or failing, at its cap): waiting for a
     * turn would only delay answers, so lg_shipper_written says yes (the records wait in
     * memory, as documented for a full disk). */
    atomic_bool spool_blocked;
    /* lg_shipper_set_written_notify: the highest ticket taken (tickets wake the shipper and
     * ask for a call), and the callback, guarded by nt_mu (held while it runs, so clearing
     * it waits for a call in progress). */
    atomic_uint_fast64_t nt_want;
    pthread_mutex_t nt_mu;
    void (*nt_fn)(void *arg);
    void *nt_arg;

    /* The overflow path's scratch encoding buffer (producers, when the ring is full). */
    pthread_mutex_t ovf_mu;
    struct lg_buf ovf_row;

    /* Control requests, guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t sync_req, sync_done;   /* generations */
    bool sync_full;                 /* the last sync found the spool full: records wait */
    uint64_t drain_req, drain_seen; /* drain: ship ignoring age while drain_req > 0 */
    int draining;                   /* callers currently waiting in lg_shipper_drain */
    bool idle;                      /* nothing queued, spooled-unacked or in flight */
    uint64_t idle_gen;              /* bumped each time idle is published */

    /* Shipper thread only. */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *hdrs;
    struct lg_buf resp, urlbuf, sql, dl, params;
    struct lg_chclient_reader body_rd; /* curl pulls the in-flight batch's body through it */
    lg_batch *batch;             /* the batch being sent (or collected when none is) */
    lg_batch *next;              /* prepared while |batch| is in flight: double buffering
                                    keeps ClickHouse busy while we read, hash and gzip */
    struct lg_spool_pos next_end;/* spool position after |next|'s last row */
    bool next_sealed;
    bool next_state_saved;       /* the state file already names |next| as in flight */
    bool prep_more;              /* preparing |next| has another slice to do */
    bool ring_more;              /* the last turn left records in the ring (per-turn cap) */
    enum ship_phase phase;
    bool sealed;                 /* batch content is fixed (sent or about to be) */
    bool need_check;             /* ask ClickHouse before (re)sending */
    bool startup_check;          /* the check is for the state file's batch */
    char check_id[LG_SPOOL_BATCH_ID_BYTES];
    uint64_t check_rows;
    struct lg_spool_pos rd;        /* next spool record to read */
    struct lg_spool_pos batch_end; /* spool position after the batch's last row */
    bool spool_at_end;             /* last read said AGAIN */
    unsigned attempt;
    int64_t backoff_until;
    int64_t sent_ms; /* when the INSERT in flight started (debug log) */
    uint64_t rng;
    int64_t last_sync_ms;
    /* The run: records popped from the ring and encoded as spool frames into |frames|, run[i]
     * taking run_len[i] bytes of it; run[run_done..run_n) are not yet in the spool (held
     * while it is full or failing), starting at byte |run_off|. */
    struct lg_buf frames;
    struct lg_record *run[LG_SHIPPER_RUN_RECORDS];
    size_t run_len[LG_SHIPPER_RUN_RECORDS];
    size_t run_n, run_done, run_off;
    bool spool_failing;     /* the last spool flush failed (logged once per episode) */
    /* The dead-letter file and its line buffer: the shipper thread writes to it, and so
     * does a producer whose record cannot be encoded on the overflow path. */
    pthread_mutex_t dl_mu;
    int dl_fd;
    uint64_t drop_logged;

    /* The syncer thread (syncer_main); sy_job..sy_quit guarded by sy_mu. */
    pthread_t sy_th;
    bool sy_started;
    pthread_mutex_t sy_mu;
    pthread_cond_t sy_cv;
    struct lg_spool_sync sy_job; /* handed over by the loop */
    bool sy_busy;                /* a job is handed over and its result not yet taken */
    bool sy_finished;            /* it ran: sy_rc is its result */
    int sy_rc;
    bool sy_quit;
    bool sy_reap;                /* acknowledged segments wait for lg_spool_reap */
    atomic_uint_fast64_t sy_cpu_ns; /* the syncer's CPU time, as it last noted it */
    /* Shipper thread only: the sync request generation the job in flight completes (0:
     * none) and whether it found the spool blocked. */
    uint64_t sy_covers;
    bool sy_full;
};

/* xorshift64*: per-shipper jitter source (no global rand state). */
static uint64_t next_rand(lg_shipper *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * UINT64_C(2685821657736338717);
}

static void add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- dead letters ------------------------------------------------------------------- */

/* Appends ,"row":"<JSON row text>" for a row ClickHouse gets as RowBinary columns of
 * version |fmt| (decoded: a dead letter is for people and for replay by hand), or
 * ,"row_hex":"..." when it does not decode. */
static int dead_letter_rowbinary(struct lg_buf *b, unsigned fmt, const uint8_t *row, size_t len)
{
    struct lg_record *r;
    int rc = lg_record_from_rowbinary(fmt, row, len, &r);
    if (rc == LG_OK) {
        struct lg_buf json;
        lg_buf_init(&json, LG_RECORD_MAX_ROW_BYTES);
        rc = lg_record_encode_row(r, &json);
        lg_record_free(r);
        if (rc == LG_OK) {
            rc = lg_buf_append_str(b, ",\"row\":\"");
        }
        if (rc == LG_OK) {
            rc = lg_buf_append_json_escaped(b, json.data, json.len);
        }
        lg_buf_deinit(&json);
        return rc == LG_OK ? lg_buf_append_str(b, "\"") : rc;
    }
    rc = lg_buf_append_str(b, ",\"row_hex\":\"");
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < len && rc == LG_OK; i++) {
        char h[2] = {hex[row[i] >> 4], hex[row[i] & 15]};
        rc = lg_buf_append(b, h, 2);
    }
    return rc == LG_OK ? lg_buf_append_str(b, "\"") : rc;
}

int lg_shipper_dead_letter_line(struct lg_buf *b, int64_t time_ms, const char *batch_id,
                                int code, const char *why, const uint8_t *row, size_t len,
                                unsigned fmt)
{
    int rc = lg_buf_appendf(b, "{\"time_ms\":%" PRId64 ",\"batch_id\":\"%s\",\"code\":%d,"
                            "\"error\":\"", time_ms, batch_id, code);
    if (rc == LG_OK) {
        rc = lg_buf_append_json_escaped(b, (const uint8_t *)why, strlen(why));
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(b, "\"");
    }
    if (rc == LG_OK && fmt == LG_RECORD_ROWBINARY_V1) {
        rc = dead_letter_rowbinary(b, fmt, row, len);
    } else if (rc == LG_OK) {
        rc = lg_buf_append_str(b, ",\"row\":\"");
        if (rc == LG_OK) {
            rc = lg_buf_append_json_escaped(b, row, len);
        }
        if (rc == LG_OK) {
            rc = lg_buf_append_str(b, "\"");
        }
    }
    return rc == LG_OK ? lg_buf_append_str(b, "}\n") : rc;
}

/* Writes one dead letter (lg_shipper_dead_letter_line) and fdatasyncs it. */
static void dead_letter(lg_shipper *s, const char *batch_id, int code, const char *why,
                        const uint8_t *row, size_t len, unsigned fmt)
{
    pthread_mutex_lock(&s->dl_mu);
    struct lg_buf *b = &s->dl;
    lg_buf_reset(b);
    int rc = lg_shipper_dead_letter_line(b, lg_time_wall_ms(), batch_id, code, why, row, len,
                                         fmt);
    size_t off = 0;
    while (rc == LG_OK && off < b->len) {
        ssize_t n = write(s->dl_fd, b->data + off, b->len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = LG_ERR_IO;
            break;
        }
        off += (size_t)n;
    }
    if (rc == LG_OK && fdatasync(s->dl_fd) != 0) {
        rc = LG_ERR_IO;
    }
    pthread_mutex_unlock(&s->dl_mu);
    add(&s->dead_letters, 1);
    if (rc != LG_OK) {
        lg_log(LG_LOG_ERROR, NULL, "dead_letter_write_failed", "path=%s err=%s row_bytes=%zu",
               s->dl_path, lg_err_name(rc), len);
    } else {
        lg_log(LG_LOG_WARN, NULL, "dead_letter", "batch=%s code=%d row_bytes=%zu", batch_id,
               code, len);
    }
}

/* A record that can never be encoded (too large, or no memory for its row): dead-lettered
 * by request id and freed, on the shipper thread (fill_run) and the overflow path alike. */
static void dead_letter_record(lg_shipper *s, struct lg_record *r, int rc)
{
    const char *rid = r->request_id != NULL ? r->request_id : "";
    dead_letter(s, "", 0, lg_err_str(rc), (const uint8_t *)rid, strlen(rid), 0);
    lg_record_free(r);
}

/* ---- ring -> spool ------------------------------------------------------------------ */

/* Appends |r| to |buf| as one spool frame: the header (lg_spool_frame_finish) and the
 * row in format |f|. LG_OK; LG_ERR_TOO_LARGE when the row passes LG_RECORD_MAX_ROW_BYTES or
 * |buf|'s cap, LG_ERR_NOMEM, or the encoder's error: |buf| is then as it was. Used by the
 * shipper thread (a run of frames) and by the overflow path (one frame). */
static int encode_frame(struct lg_buf *buf, const struct lg_record *r, enum lg_shipper_format f)
{
    size_t mark = buf->len;
    int rc = lg_buf_append(buf, (const uint8_t[LG_SPOOL_FRAME_HDR_BYTES]){0},
                           LG_SPOOL_FRAME_HDR_BYTES);
    if (rc == LG_OK) {
        rc = f == LG_SHIPPER_FORMAT_JSON ? lg_record_encode_row(r, buf)
                                         : lg_record_encode_rowbinary(r, buf);
    }
    size_t plen = rc == LG_OK ? buf->len - mark - LG_SPOOL_FRAME_HDR_BYTES : 0;
    if (rc == LG_OK && plen > LG_RECORD_MAX_ROW_BYTES) {
        rc = LG_ERR_TOO_LARGE;
    }
    if (rc == LG_OK) {
        rc = lg_spool_frame_finish(buf->data + mark, plen);
    }
    if (rc != LG_OK) {
        buf->len = mark;
        if (buf->data != NULL) {
            buf->data[mark] = 0;
        }
    }
    return rc;
}

static bool run_held(const lg_shipper *s)
{
    return s->run_done < s->run_n;
}

/* Appends the run's unspooled frames in one spool call and frees the
 * records taken. True when the whole run is in the spool; false while the spool refuses
 * (at its cap, or its disk full or failing, or memory short): backpressure, not a fault
 * of the records. They stay held here, the ring fills, then producers spool themselves and
 * a refusal there is the counted, logged drop (overflow). */
static bool flush_run(lg_shipper *s)
{
    size_t taken = 0;
    int rc;
    if (s->run_off == 0) {
        /* Usually the spool takes the run's memory whole (no copy); |frames| is then empty
         * and the run is done. */
        rc = lg_spool_append_buf(s->sp, &s->frames, &taken);
    } else {
        rc = lg_spool_append_frames(s->sp, s->frames.data + s->run_off,
                                    s->frames.len - s->run_off, &taken);
    }
    s->run_off += taken;
    while (s->run_done < s->run_n && taken >= s->run_len[s->run_done]) {
        taken -= s->run_len[s->run_done];
        lg_record_free(s->run[s->run_done]);
        s->run[s->run_done++] = NULL;
        add(&s->spooled, 1);
    }
    if (rc == LG_ERR_INVALID) {
        /* Cannot happen (the frames are ours); never spin on it: give the rest up, counted
         * and logged as the contract's drops. */
        lg_log(LG_LOG_ERROR, NULL, "record_dropped", "reason=bad_frames n=%zu",
               s->run_n - s->run_done);
        add(&s->dropped, s->run_n - s->run_done);
        while (s->run_done < s->run_n) {
            lg_record_free(s->run[s->run_done]);
            s->run[s->run_done++] = NULL;
        }
    }
    return !run_held(s);
}

/* Pops up to LG_SHIPPER_RUN_RECORDS records (about LG_SHIPPER_RUN_BYTES of rows) and
 * encodes each straight into |frames| as a spool frame. A record that can never be
 * encoded or spooled (too large, invalid) is dead-lettered by request id and freed, kept
 * out of the pipeline but not lost. Returns how many were popped. */
static size_t fill_run(lg_shipper *s)
{
    lg_buf_reset(&s->frames);
    s->run_n = s->run_done = s->run_off = 0;
    size_t popped = 0;
    while (s->run_n < LG_SHIPPER_RUN_RECORDS && s->frames.len < LG_SHIPPER_RUN_BYTES) {
        void *item;
        if (lg_queue_pop(s->q, &item) != LG_OK) {
            break;
        }
        popped++;
        add(&s->popped, 1);
        struct lg_record *r = item;
        size_t mark = s->frames.len;
        int rc = encode_frame(&s->frames, r, s->format);
        if (rc != LG_OK) {
            dead_letter_record(s, r, rc);
            continue;
        }
        s->run[s->run_n] = r;
        s->run_len[s->run_n++] = s->frames.len - mark;
    }
    return popped;
}

/* Moves records from the ring to the spool, a run at a time (one spool lock per run): at
 * most LG_SHIPPER_DRAIN_MAX_PER_TURN per loop turn (|all| at shutdown), so a flood of
 * producers cannot keep this thread from shipping; when they outpace it the ring fills and
 * they spool records themselves. True when the ring was emptied and nothing is held. */
static bool drain_ring(lg_shipper *s, bool all)
{
    size_t n = 0;
    for (;;) {
        if (run_held(s) && !flush_run(s)) {
            return false;
        }
        if (!all && n >= LG_SHIPPER_DRAIN_MAX_PER_TURN) {
            return false;
        }
        if (n > 0 && !all && s->phase == PHASE_SENDING) {
            /* Between runs, curl moves the INSERT's body on: in a burst, a turn's runs (up
             * to LG_SHIPPER_DRAIN_MAX_PER_TURN records, tens of ms) otherwise left
             * ClickHouse waiting for bytes once the socket buffer was sent, and the first
             * insert of 1M records enqueued at once took 4.0 s instead of ~0.4 s. A turn
             * of one run (paced arrivals) adds no call. The transfer's end is read by the
             * loop (curl_multi_info_read), as always. */
            int running;
            curl_multi_perform(s->multi, &running);
        }
        size_t got = fill_run(s);
        if (got == 0) {
            return true; /* emptied */
        }
        n += got;
    }
}

/* Frees the run's unspooled records (at stop); returns how many. */
static uint64_t discard_run(lg_shipper *s)
{
    uint64_t n = 0;
    while (s->run_done < s->run_n) {
        lg_record_free(s->run[s->run_done]);
        s->run[s->run_done++] = NULL;
        n++;
    }
    return n;
}

/* ---- batches ------------------------------------------------------------------------ */

/* How fill_batch stopped. */
enum fill_end {
    FILL_AT_END,  /* spool read to its end (or a read error, logged) */
    FILL_CLOSED,  /* the batch takes no more rows (full, or the next row is another month) */
    FILL_BUDGET,  /* |budget| bytes read; call again */
};

/* Reads spool records into |b| until it is closed, the spool ends, or about |budget| bytes
 * were read (SIZE_MAX: no limit). A batch being sealed takes no rows (FILL_CLOSED). */
static enum fill_end fill_batch(lg_shipper *s, lg_batch *b, struct lg_spool_pos *end,
                                int64_t now, size_t budget)
{
    s->spool_at_end = false;
    if (lg_batch_is_sealing(b)) {
        return FILL_CLOSED;
    }
    size_t used = 0;
    for (;;) {
        if (used >= budget) {
            return FILL_BUDGET;
        }
        struct lg_spool_pos before = s->rd;
        struct lg_slice row; /* a view of the spool's read-ahead buffer: one copy, into b */
        int rc = lg_spool_read_view(s->sp, &s->rd, &row);
        if (rc == LG_ERR_AGAIN) {
            s->spool_at_end = true;
            return FILL_AT_END;
        }
        if (rc == LG_ERR_CORRUPT) {
            lg_log(LG_LOG_ERROR, NULL, "spool_corrupt_record", "seg=%" PRIu64, before.seg);
            continue;
        }
        if (rc != LG_OK) {
            lg_log(LG_LOG_ERROR, NULL, "spool_read_failed", "err=%s", lg_err_name(rc));
            return FILL_AT_END;
        }
        used += row.len;
        /* The row stays where the spool read it (a written buffer kept for the reader, or
         * its read-ahead): the batch holds that block instead of copying the row (the copy
         * was the shipper thread's largest user-space cost at 30k rows/s, perf). */
        void *blk = lg_spool_last_block(s->sp);
        /* Rows from the written buffers are this process's encoder's own (encode_frame);
         * rows read back from a file are checked whole. */
        uint32_t crc = lg_spool_last_crc(s->sp);
        rc = blk == NULL ? LG_ERR_NOMEM
             : lg_spool_last_from_memory(s->sp)
                 ? lg_batch_add_ref_whole(b, row.ptr, row.len, crc, now, blk)
                 : lg_batch_add_ref(b, row.ptr, row.len, crc, now, blk);
        if (rc == LG_ERR_EXHAUSTED || rc == LG_ERR_NOMEM) {
            s->rd = before; /* re-read it for the next batch, or on a later turn */
            return rc == LG_ERR_NOMEM ? FILL_AT_END : FILL_CLOSED;
        }
        if (rc != LG_OK) {
            /* A RowBinary frame that is not one whole row cannot be decoded: its columns
             * go as hex (row_hex). */
            bool rb = row.len > 0 && row.ptr[0] == LG_RECORD_ROWBINARY_V1;
            dead_letter(s, "", 0,
                        rb ? "row is not one whole RowBinary row" : "row is not a JSON object",
                        row.ptr + (rb ? 1 : 0), row.len - (rb ? 1 : 0),
                        rb ? LG_RECORD_ROWBINARY_V1 : 0);
        }
        *end = s->rd;
    }
}

/* Persists the state: the acknowledged position moves to |ack| when given, and the batch
 * in flight is [ack, |end|) with id |id| (NULL: none). */
static void write_state(lg_shipper *s, const struct lg_spool_pos *ack, struct lg_spool_pos end,
                        const char *id)
{
    struct lg_spool_state st;
    lg_spool_get_state(s->sp, &st);
    if (ack != NULL) {
        st.ack = *ack;
    }
    st.has_inflight = id != NULL;
    st.inflight_end = end;
    snprintf(st.batch_id, sizeof(st.batch_id), "%s", id != NULL ? id : "");
    int rc = lg_spool_save_state(s->sp, &st);
    if (rc != LG_OK) {
        /* The old state stays: after a crash the batch is checked/resent and the
         * ReplacingMergeTree collapses a duplicate. */
        lg_log(LG_LOG_ERROR, NULL, "spool_state_save_failed", "err=%s", lg_err_name(rc));
    }
}

/* |inflight|: the current batch is about to be sent (state written before the request: a
 * crash from then on makes the next start check its batch_id before sending anything);
 * else it landed: the acknowledged position moves past it. */
static void save_state(lg_shipper *s, bool inflight)
{
    if (inflight) {
        write_state(s, NULL, s->batch_end, lg_batch_id(s->batch));
    } else {
        write_state(s, &s->batch_end, s->batch_end, NULL);
    }
}

static void syncer_reap(lg_shipper *s);

/* The batch [ack, batch_end) landed (or was wholly dead-lettered). */
static void ack_batch(lg_shipper *s, uint64_t rows)
{
    if (s->next_sealed && lg_batch_count(s->next) > 0 && !s->startup_check) {
        /* The next batch is ready and goes out next turn: one state write says both "this
         * one landed" and "that one is in flight" (two fsync'd writes per insert were most of
         * the pause between inserts in a backlog). */
        write_state(s, &s->batch_end, s->next_end, lg_batch_id(s->next));
        s->next_state_saved = true;
    } else {
        save_state(s, false);
    }
    syncer_reap(s); /* the segments this acknowledgement emptied go off this thread */
    if (lg_spool_pos_before(s->rd, s->batch_end)) {
        s->rd = s->batch_end; /* a startup check acknowledged rows not yet read */
    }
    add(&s->rows_shipped, rows);
    add(&s->batches, 1);
    lg_batch_reset(s->batch);
    s->sealed = false;
    s->need_check = false;
    s->startup_check = false;
    s->attempt = 0;
    s->phase = PHASE_IDLE;
}

static void retry_later(lg_shipper *s, int64_t now)
{
    add(&s->retries, 1);
    unsigned shift = s->attempt < 16 ? s->attempt : 16;
    int64_t cap = (int64_t)LG_SHIPPER_BACKOFF_MIN_MS << shift;
    if (cap > LG_SHIPPER_BACKOFF_MAX_MS) {
        cap = LG_SHIPPER_BACKOFF_MAX_MS;
    }
    s->attempt++;
    /* Full jitter: uniform in [MIN/2, cap], so a fleet does not retry in lockstep. */
    int64_t lo = LG_SHIPPER_BACKOFF_MIN_MS / 2;
    s->backoff_until = now + lo + (int64_t)(next_rand(s) % (uint64_t)(cap - lo + 1));
    s->phase = PHASE_BACKOFF;
}

/* ---- HTTP --------------------------------------------------------------------------- */

static int start_request(lg_shipper *s, const char *params, const void *body, size_t len,
                         bool gz)
{
    curl_slist_free_all(s->hdrs);
    s->hdrs = NULL;
    lg_buf_reset(&s->resp);
    int rc = lg_chclient_setup(s->easy, &s->ch, params, body, len, gz, &s->resp, &s->urlbuf,
                               &s->hdrs);
    if (rc != LG_OK) {
        return rc;
    }
    return curl_multi_add_handle(s->multi, s->easy) == CURLM_OK ? LG_OK : LG_ERR_INTERNAL;
}

/* The in-flight batch's body, for curl (lg_chclient_reader). */
static size_t body_read(void *ud, size_t off, uint8_t *dst, size_t cap)
{
    lg_shipper *s = ud;
    return lg_batch_body_read(s->batch, off, dst, cap);
}

/* Seals |b| whole: gzip'd, or streamed (uncompressed bodies are made while curl sends). */
static int seal_now(lg_shipper *s, lg_batch *b)
{
    return s->gzip ? lg_batch_seal(b, true) : lg_batch_seal_stream(b);
}

static void start_insert(lg_shipper *s, int64_t now)
{
    /* Keep-alive, safely: when a reused connection dies before any answer, libcurl
     * silently resends the request on a new one (its "connection died, retrying a fresh
     * connect"), and for an INSERT the server may already have executed the first copy, a
     * double-billed batch no batch_id check would see (found by it_ambiguous.sh when bodies
     * were POSTFIELDS, after which every INSERT took a fresh connection). The body is now
     * always read through lg_chclient_setup_reader's callback, which has no seek function:
     * once any body byte was sent, that resend needs a rewind and fails instead
     * (CURLE_SEND_FAIL_REWIND, ambiguous: the landed-check decides). it_ambiguous.sh
     * asserts both: 7 connections for 10 INSERTs and 3 cuts, and each cut failing so. */
    /* query_id = batch_id: while an earlier attempt of this batch is still executing on the
     * server (its client was cut or killed, ClickHouse goes on), a resend is refused with
     * Code 216 instead of inserting a second copy, and the landed-check sees it running. */
    lg_buf_reset(&s->params);
    int rc;
    unsigned fmt = lg_batch_format(s->batch);
    if (fmt == '{') {
        rc = lg_buf_append_str(&s->params, SHIPPER_INSERT_PARAMS_JSON);
    } else {
        lg_buf_reset(&s->sql);
        rc = lg_buf_appendf(&s->sql, "INSERT INTO llm_ingest (%s,batch_id) FORMAT RowBinary",
                            lg_record_rowbinary_columns(fmt));
        if (rc == LG_OK) {
            rc = lg_buf_append_str(&s->params, "query=");
        }
        if (rc == LG_OK) {
            rc = lg_chclient_urlencode(&s->params, (const char *)s->sql.data);
        }
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(&s->params, "&query_id=");
    }
    if (rc == LG_OK) {
        rc = lg_chclient_urlencode(&s->params, lg_batch_id(s->batch));
    }
    if (rc == LG_OK) {
        curl_slist_free_all(s->hdrs);
        s->hdrs = NULL;
        lg_buf_reset(&s->resp);
        s->body_rd = (struct lg_chclient_reader){body_read, s, lg_batch_body_len(s->batch), 0};
        rc = lg_chclient_setup_reader(s->easy, &s->ch, (const char *)s->params.data,
                                      &s->body_rd, s->gzip, &s->resp, &s->urlbuf, &s->hdrs);
    }
    if (rc == LG_OK && curl_multi_add_handle(s->multi, s->easy) != CURLM_OK) {
        rc = LG_ERR_INTERNAL;
    }
    if (rc != LG_OK) {
        lg_log(LG_LOG_ERROR, NULL, "insert_start_failed", "err=%s", lg_err_name(rc));
        retry_later(s, now);
        return;
    }
    s->phase = PHASE_SENDING;
    s->sent_ms = now;
    lg_log(LG_LOG_DEBUG, NULL, "insert_started",
           "batch=%s rows=%zu bytes=%zu attempt=%u format=%s", lg_batch_id(s->batch),
           lg_batch_count(s->batch), lg_batch_body_len(s->batch), s->attempt,
           fmt == '{' ? "json" : "rowbinary");
}

static void start_check(lg_shipper *s, int64_t now)
{
    lg_buf_reset(&s->sql);
    /* Two numbers: attempts of this batch still executing (query_id = batch_id), and rows
     * of it that landed. Only "none running" makes the second one final. */
    int rc = lg_buf_append_str(&s->sql, "SELECT (SELECT count() FROM system.processes "
                                         "WHERE query_id = ");
    if (rc == LG_OK) {
        rc = lg_chclient_quote(&s->sql, s->check_id, strlen(s->check_id));
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(&s->sql, "), (SELECT uniqExact(request_id) FROM llm_requests "
                                        "WHERE batch_id = ");
    }
    if (rc == LG_OK) {
        rc = lg_chclient_quote(&s->sql, s->check_id, strlen(s->check_id));
    }
    int64_t lo, hi;
    if (rc == LG_OK && !s->startup_check && lg_batch_time_range(s->batch, &lo, &hi)) {
        /* Partition pruning: batch_id is in no index, so without this the check reads the
         * batch_id column of the whole table. (A startup check knows only the id.) */
        rc = lg_buf_appendf(&s->sql,
                            " AND start_time >= toDateTime(%" PRId64 ") AND start_time <= "
                            "toDateTime(%" PRId64 ")",
                            lo / 1000, hi / 1000);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(&s->sql, ") FORMAT TSV");
    }
    if (rc == LG_OK) {
        rc = start_request(s, NULL, s->sql.data, s->sql.len, false);
    }
    if (rc != LG_OK) {
        retry_later(s, now);
        return;
    }
    add(&s->landed_checks, 1);
    s->phase = PHASE_CHECKING;
}

/* The number of rows a batch id stands for: the suffix after '-' (see lg_batch_seal). */
static uint64_t rows_of_id(const char *id)
{
    const char *dash = strrchr(id, '-');
    uint64_t v = 0;
    for (const char *p = dash != NULL ? dash + 1 : ""; *p >= '0' && *p <= '9'; p++) {
        v = v * 10u + (uint64_t)(*p - '0');
    }
    return v;
}

static void seal_and_send(lg_shipper *s, int64_t now)
{
    int rc = seal_now(s, s->batch);
    if (rc != LG_OK) {
        lg_log(LG_LOG_ERROR, NULL, "batch_seal_failed", "err=%s", lg_err_name(rc));
        retry_later(s, now);
        return;
    }
    s->sealed = true;
    /* Written before the request: a crash from here on makes the next start check this
     * batch_id before sending anything. */
    save_state(s, true);
    start_insert(s, now);
}

static void on_insert_failed(lg_shipper *s, const struct lg_chclient_result *res, int64_t now)
{
    enum lg_chclient_verdict v = lg_chclient_classify(res);
    const char *id = lg_batch_id(s->batch);
    if (v == LG_CHCLIENT_BAD_ROW && (size_t)res->row <= lg_batch_count(s->batch)) {
        size_t i = (size_t)res->row - 1;
        struct lg_slice r = lg_batch_row(s->batch, i);
        dead_letter(s, id, res->ch_code, res->message, r.ptr, r.len, lg_batch_format(s->batch));
        lg_batch_remove(s->batch, i);
        if (lg_batch_count(s->batch) == 0) {
            ack_batch(s, 0);
            return;
        }
        /* The rest is resent at once: ClickHouse parsed nothing into the table (one block). */
        seal_and_send(s, now);
        return;
    }
    if (v == LG_CHCLIENT_BAD_DATA || v == LG_CHCLIENT_BAD_ROW) {
        for (size_t i = 0; i < lg_batch_count(s->batch); i++) {
            struct lg_slice r = lg_batch_row(s->batch, i);
            dead_letter(s, id, res->ch_code, res->message, r.ptr, r.len,
                        lg_batch_format(s->batch));
        }
        ack_batch(s, 0);
        return;
    }
    lg_log(LG_LOG_WARN, NULL, "insert_failed", "batch=%s http=%ld code=%d attempt=%u msg=%.200s",
           id, res->http_status, res->ch_code, s->attempt, res->message);
    /* The server saw the request: whatever it says, check before resending. */
    s->need_check = true;
    retry_later(s, now);
}

static void on_done(lg_shipper *s, CURLcode cc, int64_t now)
{
    curl_multi_remove_handle(s->multi, s->easy);
    enum ship_phase was = s->phase;
    long status = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        bool ambiguous = false;
        int rc = lg_chclient_curl_error((int)cc, &ambiguous);
        lg_log(LG_LOG_WARN, NULL, was == PHASE_SENDING ? "insert_failed" : "check_failed",
               "err=%s curl=%s ambiguous=%d attempt=%u", lg_err_name(rc),
               curl_easy_strerror(cc), ambiguous ? 1 : 0, s->attempt);
        if (was == PHASE_SENDING && ambiguous) {
            s->need_check = true;
        }
        retry_later(s, now);
        return;
    }
    struct lg_chclient_result res;
    int rc = lg_chclient_parse_response(status, s->resp.data, s->resp.len, &res);
    if (was == PHASE_SENDING) {
        if (rc == LG_OK) {
            lg_log(LG_LOG_DEBUG, NULL, "insert_acked", "batch=%s rows=%zu ms=%" PRId64,
                   lg_batch_id(s->batch), lg_batch_count(s->batch), now - s->sent_ms);
            ack_batch(s, lg_batch_count(s->batch));
        } else {
            on_insert_failed(s, &res, now);
        }
        return;
    }
    /* PHASE_CHECKING */
    if (rc != LG_OK) {
        retry_later(s, now);
        return;
    }
    uint64_t running = 0, landed = 0;
    size_t i = 0;
    for (; i < s->resp.len && s->resp.data[i] >= '0' && s->resp.data[i] <= '9'; i++) {
        running = running * 10u + (uint64_t)(s->resp.data[i] - '0');
    }
    bool two = i < s->resp.len && s->resp.data[i] == '\t';
    for (i++; two && i < s->resp.len && s->resp.data[i] >= '0' && s->resp.data[i] <= '9'; i++) {
        landed = landed * 10u + (uint64_t)(s->resp.data[i] - '0');
    }
    lg_log(LG_LOG_INFO, NULL, "landed_check",
           "batch=%s running=%" PRIu64 " landed=%" PRIu64 " rows=%" PRIu64, s->check_id,
           running, landed, s->check_rows);
    if (!two || running > 0) {
        /* Still executing (or an answer we do not understand): ask again later. */
        retry_later(s, now);
        return;
    }
    if (landed >= s->check_rows && s->check_rows > 0) {
        add(&s->landed_on_check, 1);
        ack_batch(s, s->check_rows);
        return;
    }
    s->need_check = false;
    if (s->startup_check) {
        /* The batch named by the state file did not land: rebuild from the spool. */
        s->startup_check = false;
        struct lg_spool_state st;
        lg_spool_get_state(s->sp, &st);
        s->batch_end = st.ack;
    }
    s->phase = PHASE_IDLE;
}

/* While |batch| is sealed and in flight, fill |next| from the spool and seal (hash + gzip)
 * it, so the CPU work overlaps ClickHouse's. The work is cut into slices of
 * LG_SHIPPER_PREPARE_BYTES_PER_TURN, with the loop turning at once between slices
 * (|prep_more|): done in one go, reading and compressing 64 MiB kept this thread from
 * feeding the in-flight request for ~0.5 s, and ClickHouse, waiting for body bytes, sat
 * idle (strace of a replay: 0.7-0.85 s between an acknowledgement and the next POST).
 * |next| is sealed when it is closed, or when the spool is at its end and it is due (age,
 * or a drain). Not during a startup check: the rows after the acknowledged position may
 * be the batch being checked. */
static void prepare_next(lg_shipper *s, int64_t now, bool draining)
{
    s->prep_more = false;
    if (s->startup_check || !s->sealed || s->next_sealed) {
        return;
    }
    if (lg_batch_is_sealing(s->next)) {
        int rc = lg_batch_seal_step(s->next, LG_SHIPPER_PREPARE_BYTES_PER_TURN);
        s->next_sealed = rc == LG_OK;
        s->prep_more = rc == LG_ERR_AGAIN;
        if (rc != LG_OK && rc != LG_ERR_AGAIN) {
            /* Abandoned: the batch is sealed again when it becomes the current one. */
            lg_log(LG_LOG_ERROR, NULL, "batch_seal_failed", "err=%s", lg_err_name(rc));
        }
        return;
    }
    enum fill_end fe = fill_batch(s, s->next, &s->next_end, now,
                                  LG_SHIPPER_PREPARE_BYTES_PER_TURN);
    if (fe == FILL_BUDGET) {
        s->prep_more = true;
        return;
    }
    if (lg_batch_count(s->next) > 0 &&
        (fe == FILL_CLOSED || lg_batch_is_full(s->next) || draining ||
         lg_batch_is_due(s->next, now))) {
        if (!s->gzip) {
            /* Nothing to compress: the id is all there is to make before sending. */
            s->next_sealed = lg_batch_seal_stream(s->next) == LG_OK;
            return;
        }
        s->prep_more = lg_batch_seal_begin(s->next, s->gzip) == LG_OK;
    }
}

/* Makes the prepared batch the current one (the current one is empty: just acknowledged). */
static void promote_next(lg_shipper *s)
{
    lg_batch *t = s->batch;
    s->batch = s->next;
    s->next = t;
    s->batch_end = s->next_end;
    s->sealed = s->next_sealed;
    s->next_sealed = false;
}

static void step_ship(lg_shipper *s, int64_t now, bool draining)
{
    if (s->phase == PHASE_BACKOFF && now >= s->backoff_until) {
        s->phase = PHASE_IDLE;
    }
    if (s->phase != PHASE_IDLE) {
        prepare_next(s, now, draining);
        return;
    }
    s->prep_more = false;
    if (s->need_check) {
        if (!s->startup_check) {
            snprintf(s->check_id, sizeof(s->check_id), "%s", lg_batch_id(s->batch));
            s->check_rows = lg_batch_count(s->batch);
        }
        start_check(s, now);
        return;
    }
    if (s->sealed) {
        start_insert(s, now);
        return;
    }
    if (lg_batch_count(s->batch) == 0 && lg_batch_count(s->next) > 0) {
        bool state_saved = s->next_state_saved;
        s->next_state_saved = false;
        promote_next(s);
        if (!s->sealed && lg_batch_is_sealing(s->batch)) {
            /* Its seal was under way: finish it now (nothing is in flight to feed). */
            s->sealed = lg_batch_seal_step(s->batch, SIZE_MAX) == LG_OK;
        }
        if (s->sealed) {
            if (!state_saved) {
                save_state(s, true);
            }
            start_insert(s, now);
            return;
        }
    }
    fill_batch(s, s->batch, &s->batch_end, now, SIZE_MAX);
    if (lg_batch_count(s->batch) > 0 && (draining || lg_batch_is_due(s->batch, now))) {
        seal_and_send(s, now);
    }
}

/* ---- the syncer ---------------------------------------------------------------------- */

/* The syncer thread runs the spool's fdatasyncs (lg_spool_sync_run) handed over by the
 * loop, so the loop keeps feeding the insert in flight while the disk catches up: in a
 * 1M-record burst the loop spent 1.1 s of the first batch's 3.2 s blocked in fdatasync
 * (strace), and ClickHouse waited for body bytes meanwhile. One job at a time. */
/* Publishes this thread's CPU time for lg_shipper_get_stats. */
static void syncer_note_cpu(lg_shipper *s)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0) {
        atomic_store_explicit(&s->sy_cpu_ns,
                              (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                              memory_order_relaxed);
    }
}

static void *syncer_main(void *arg)
{
    lg_shipper *s = arg;
    pthread_setname_np(pthread_self(), "lg-spool-sync");
    pthread_mutex_lock(&s->sy_mu);
    for (;;) {
        syncer_note_cpu(s);
        if (s->sy_reap) {
            s->sy_reap = false;
            pthread_mutex_unlock(&s->sy_mu);
            lg_spool_reap(s->sp);
            pthread_mutex_lock(&s->sy_mu);
            continue;
        }
        if (s->sy_busy && !s->sy_finished) {
            struct lg_spool_sync job = s->sy_job;
            pthread_mutex_unlock(&s->sy_mu);
            int rc = lg_spool_sync_run(s->sp, &job);
            pthread_mutex_lock(&s->sy_mu);
            s->sy_rc = rc;
            s->sy_finished = true;
            curl_multi_wakeup(s->multi); /* the loop takes the result at once */
            continue;
        }
        if (s->sy_quit) {
            break;
        }
        pthread_cond_wait(&s->sy_cv, &s->sy_mu);
    }
    pthread_mutex_unlock(&s->sy_mu);
    return NULL;
}

/* Takes a finished job's result: true when one finished (|*rc| its result). Sets |*busy|
 * when a job is still running. */
static bool syncer_collect(lg_shipper *s, int *rc, bool *busy)
{
    bool done = false;
    *busy = false;
    if (!s->sy_started) {
        return false;
    }
    pthread_mutex_lock(&s->sy_mu);
    if (s->sy_busy && s->sy_finished) {
        done = true;
        *rc = s->sy_rc;
        s->sy_busy = s->sy_finished = false;
    }
    *busy = s->sy_busy;
    pthread_mutex_unlock(&s->sy_mu);
    return done;
}

/* Has the syncer remove the segment files an acknowledgement dropped (lg_spool_reap), or
 * removes them here when there is no syncer. */
static void syncer_reap(lg_shipper *s)
{
    if (!s->sy_started) {
        lg_spool_reap(s->sp);
        return;
    }
    pthread_mutex_lock(&s->sy_mu);
    s->sy_reap = true;
    pthread_cond_signal(&s->sy_cv);
    pthread_mutex_unlock(&s->sy_mu);
}

static void syncer_stop(lg_shipper *s)
{
    if (!s->sy_started) {
        return;
    }
    pthread_mutex_lock(&s->sy_mu);
    s->sy_quit = true; /* a job handed over still runs first */
    pthread_cond_signal(&s->sy_cv);
    pthread_mutex_unlock(&s->sy_mu);
    pthread_join(s->sy_th, NULL);
    s->sy_started = false;
}

/* ---- the thread --------------------------------------------------------------------- */

/* Returns the spool write's result (the fdatasync's come back through the syncer). */
static int handle_control(lg_shipper *s, int64_t now, bool emptied, bool *draining)
{
    bool sync_now = now - s->last_sync_ms >= LG_SHIPPER_SYNC_INTERVAL_MS;
    pthread_mutex_lock(&s->mu);
    uint64_t want_sync = s->sync_req;
    bool sync_pending = want_sync > s->sync_done;
    *draining = s->draining > 0;
    pthread_mutex_unlock(&s->mu);
    /* A sync request (lg_shipper_sync) is complete once a sync has run that began when the
     * ring was empty (everything in it in the spool) or the spool could not take records
     * (they wait in memory: reported as full). */
    uint64_t complete = 0; /* the request generation completed this turn */
    bool complete_full = false;
    int job_rc = LG_OK;
    bool busy = false;
    if (syncer_collect(s, &job_rc, &busy)) {
        if (job_rc != LG_OK) {
            lg_log(LG_LOG_ERROR, NULL, "spool_sync_failed", "err=%s", lg_err_name(job_rc));
        }
        complete = s->sy_covers;
        complete_full = s->sy_full || job_rc != LG_OK;
        s->sy_covers = 0;
    }
    /* Only a turn that emptied the ring (or found the spool blocked) can complete a waiting
     * request: an fdatasync on the other turns of a backlog would be wasted. The interval
     * sync runs regardless (a written record reaches the disk within
     * LG_SHIPPER_SYNC_INTERVAL_MS plus one fdatasync). */
    bool do_sync = !busy && (sync_now || (sync_pending && (emptied || run_held(s))));
    int rc;
    if (do_sync) {
        struct lg_spool_sync job;
        rc = lg_spool_sync_begin(s->sp, &job);
        bool covers = sync_pending && (rc != LG_OK || lg_queue_count(s->q) == 0 || run_held(s));
        bool full = rc != LG_OK || run_held(s);
        if (rc == LG_OK && s->sy_started) {
            pthread_mutex_lock(&s->sy_mu);
            s->sy_job = job;
            s->sy_busy = true;
            s->sy_finished = false;
            pthread_cond_signal(&s->sy_cv);
            pthread_mutex_unlock(&s->sy_mu);
            s->sy_covers = covers ? want_sync : 0;
            s->sy_full = full;
        } else {
            /* A failed write (nothing to wait for) or no syncer thread: run it here. */
            int src = lg_spool_sync_run(s->sp, &job);
            if (covers) {
                complete = want_sync;
                complete_full = full || src != LG_OK;
            }
        }
        s->last_sync_ms = now;
    } else {
        rc = lg_spool_flush(s->sp, false);
    }
    /* Retried every turn while the disk is full: one line when it starts failing and one
     * when it writes again, not one per turn. */
    if (rc != LG_OK && !s->spool_failing) {
        lg_log(LG_LOG_ERROR, NULL, "spool_flush_failed", "err=%s", lg_err_name(rc));
    } else if (rc == LG_OK && s->spool_failing) {
        lg_log(LG_LOG_WARN, NULL, "spool_flush_recovered", "held=%zu", s->run_n - s->run_done);
    }
    s->spool_failing = rc != LG_OK;
    bool idle = lg_queue_count(s->q) == 0 && !run_held(s) && s->phase == PHASE_IDLE &&
                !s->sealed && !s->need_check && lg_batch_count(s->batch) == 0 &&
                lg_batch_count(s->next) == 0 &&
                lg_spool_at_end(s->sp, s->rd);
    if (idle) {
        /* Caught up: a backlog's full-size batch buffers go back (both batches are empty). */
        lg_batch_trim(s->batch, LG_SHIPPER_IDLE_KEEP_BATCH_BYTES);
        lg_batch_trim(s->next, LG_SHIPPER_IDLE_KEEP_BATCH_BYTES);
        lg_spool_trim_free(s->sp, LG_SHIPPER_IDLE_KEEP_BATCH_BYTES);
    }
    pthread_mutex_lock(&s->mu);
    bool synced = false;
    if (complete > s->sync_done) {
        s->sync_done = complete;
        s->sync_full = complete_full;
        synced = true;
    }
    s->idle = idle || s->no_ship;
    s->idle_gen++;
    /* Waiters want a finished sync or an idle state (drain): a broadcast on every busy
     * turn woke a draining caller for nothing, a context switch per turn of a replay. */
    if (synced || s->idle) {
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int64_t poll_timeout(lg_shipper *s, int64_t now)
{
    int64_t t = LG_SHIPPER_TICK_MS;
    if (s->prep_more || s->ring_more) {
        /* A slice of the next batch, or records over the turn's cap, are waiting: just let
         * curl move first (sleeping a tick here capped a backlog at 8192 records/20 ms). */
        return 0;
    }
    if (s->phase == PHASE_BACKOFF && s->backoff_until - now < t) {
        t = s->backoff_until - now;
    }
    int64_t due = lg_batch_ms_until_due(lg_batch_count(s->batch) > 0 ? s->batch : s->next, now);
    if (s->phase == PHASE_IDLE && due < t) {
        t = due;
    }
    return t < 0 ? 0 : t;
}

static void *thread_main(void *arg)
{
    lg_shipper *s = arg;
    /* Named for top -H, perf --sort comm and gdb; failure is harmless. */
    pthread_setname_np(pthread_self(), "lg-shipper");
    /* Without the syncer (no thread to be had) the loop runs the fdatasyncs itself. */
    s->sy_started = pthread_create(&s->sy_th, NULL, syncer_main, s) == 0;
    if (!s->sy_started) {
        lg_log(LG_LOG_WARN, NULL, "syncer_not_started", "fdatasync=inline");
    }
    int64_t stop_deadline = INT64_MAX;
    for (;;) {
        int64_t now = lg_time_mono_ms();
        bool stopping = atomic_load_explicit(&s->stop, memory_order_acquire);
        if (stopping && stop_deadline == INT64_MAX) {
            stop_deadline = now + LG_SHIPPER_DRAIN_DEADLINE_MS;
        }
        /* The fence pairs with lg_shipper_ticket's: either this turn's drain sees a record
         * pushed before the ticket was taken, or the ticket names a later turn. */
        uint64_t turn = atomic_fetch_add(&s->turn_started, 1) + 1;
        atomic_thread_fence(memory_order_seq_cst);
        uint64_t done_before = atomic_load_explicit(&s->turn_done, memory_order_relaxed);
        /* Every push begun before this turn (the fence orders it against the tickets'). */
        size_t reserved = lg_queue_reserved(s->q);
        bool emptied = drain_ring(s, false);
        s->ring_more = !emptied && !run_held(s);
        bool draining = false;
        int frc = handle_control(s, now, emptied, &draining);
        /* "Emptied" alone is not enough: the drain stops at a slot whose producer is still
         * between its reservation and its store, and skips filled slots behind it in that
         * shard. A ticket taken after such a later push names this turn, so the turn counts
         * as done only once everything reserved before it was taken (and written). */
        if (frc == LG_OK && emptied && lg_queue_taken(s->q) >= reserved) {
            atomic_store_explicit(&s->turn_done, turn, memory_order_release);
        }
        bool blocked = frc != LG_OK || run_held(s);
        atomic_store_explicit(&s->spool_blocked, blocked, memory_order_release);
        if ((blocked || (frc == LG_OK && emptied)) &&
            atomic_load_explicit(&s->nt_want, memory_order_relaxed) > done_before) {
            /* Someone holds a ticket this turn may have satisfied (or the spool is blocked,
             * which lg_shipper_written also reports as written). */
            pthread_mutex_lock(&s->nt_mu);
            if (s->nt_fn != NULL) {
                s->nt_fn(s->nt_arg);
            }
            pthread_mutex_unlock(&s->nt_mu);
        }
        if (!s->no_ship) {
            step_ship(s, now, draining || stopping);
        }
        if (stopping) {
            pthread_mutex_lock(&s->mu);
            bool idle = s->idle;
            pthread_mutex_unlock(&s->mu);
            if (idle || now >= stop_deadline) {
                break;
            }
        }
        int running = 0;
        curl_multi_poll(s->multi, NULL, 0, (int)poll_timeout(s, now), NULL);
        curl_multi_perform(s->multi, &running);
        int left;
        CURLMsg *m;
        while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                on_done(s, m->data.result, lg_time_mono_ms());
            }
        }
    }
    if (s->phase == PHASE_SENDING || s->phase == PHASE_CHECKING) {
        /* Abandoned at the deadline: the state file names the batch, so the next start
         * checks whether it landed before sending it again. */
        curl_multi_remove_handle(s->multi, s->easy);
        lg_log(LG_LOG_WARN, NULL, "drain_deadline", "batch=%s left_in_spool=1",
               lg_batch_id(s->batch));
    }
    syncer_stop(s); /* its job in flight, if any, finishes first */
    drain_ring(s, true);
    lg_spool_flush(s->sp, true);
    return NULL;
}

/* ---- public API ---------------------------------------------------------------------- */

int lg_shipper_format_parse(const char *v, enum lg_shipper_format *out)
{
    static const struct {
        const char *name;
        enum lg_shipper_format f;
    } names[] = {{"rowbinary", LG_SHIPPER_FORMAT_ROWBINARY}, {"json", LG_SHIPPER_FORMAT_JSON}};
    for (size_t i = 0; v != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(v, names[i].name) == 0) {
            *out = names[i].f;
            return LG_OK;
        }
    }
    return LG_ERR_INVALID;
}

int lg_shipper_compression_parse(const char *v, enum lg_shipper_compression *out)
{
    static const struct {
        const char *name;
        enum lg_shipper_compression c;
    } names[] = {{"auto", LG_SHIPPER_COMPRESSION_AUTO},
                 {"gzip", LG_SHIPPER_COMPRESSION_GZIP},
                 {"none", LG_SHIPPER_COMPRESSION_NONE}};
    for (size_t i = 0; v != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(v, names[i].name) == 0) {
            *out = names[i].c;
            return LG_OK;
        }
    }
    return LG_ERR_INVALID;
}

bool lg_shipper_compression_gzip(enum lg_shipper_compression c, const char *url)
{
    switch (c) {
    case LG_SHIPPER_COMPRESSION_GZIP:
        return true;
    case LG_SHIPPER_COMPRESSION_NONE:
        return false;
    case LG_SHIPPER_COMPRESSION_AUTO:
    default:
        return !lg_chclient_url_is_loopback(url);
    }
}

/* The overflow path's append: |r| as one frame in |row| (reset first), then into the
 * spool. LG_OK or the error of the encoder or of the spool (|r| untouched);
 * *|unencodable| tells the encoder's (the record can never be spooled) from the spool's
 * refusal. */
static int spool_frame(lg_shipper *s, struct lg_buf *row, const struct lg_record *r,
                       bool *unencodable)
{
    lg_buf_reset(row);
    int rc = encode_frame(row, r, s->format);
    *unencodable = rc != LG_OK;
    size_t taken = 0;
    if (rc == LG_OK) {
        rc = lg_spool_append_frames(s->sp, row->data, row->len, &taken);
    }
    return rc;
}

static int overflow(lg_shipper *s, struct lg_record *r)
{
    /* The shared scratch buffer when no other producer holds it: a fresh buffer per record
     * (malloc of the encoder's worst case, ~15 KB for a 2.4 KB row) was the largest cost of
     * a burst after encoding itself (_int_malloc, page faults, and the malloc arena's lock,
     * which the shipper thread freeing records also takes). A producer that finds it taken
     * does not wait: it uses its own, as before. */
    int rc;
    bool unencodable;
    if (pthread_mutex_trylock(&s->ovf_mu) == 0) {
        rc = spool_frame(s, &s->ovf_row, r, &unencodable);
        lg_buf_trim(&s->ovf_row, LG_SHIPPER_OVERFLOW_KEEP_BYTES); /* a huge record's */
        pthread_mutex_unlock(&s->ovf_mu);
    } else {
        struct lg_buf row;
        lg_buf_init(&row, LG_SPOOL_FRAME_HDR_BYTES + LG_RECORD_MAX_ROW_BYTES);
        rc = spool_frame(s, &row, r, &unencodable);
        lg_buf_deinit(&row);
    }
    if (rc == LG_OK || unencodable) {
        /* Taken either way; an unencodable record is not a drop (nothing is wrong with the
         * spool): dead-lettered, as the shipper thread does with one it pops. */
        add(&s->overflowed, 1);
        if (rc == LG_OK) {
            lg_record_free(r);
        } else {
            dead_letter_record(s, r, rc);
        }
        return LG_OK;
    }
    uint64_t n = atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed) + 1;
    /* One line per power of two of drops: visible, but a flood cannot flood the log. */
    if ((n & (n - 1)) == 0) {
        lg_log(LG_LOG_ERROR, NULL, "record_dropped", "dropped_total=%" PRIu64 " reason=%s", n,
               lg_err_name(rc));
    }
    return LG_ERR_EXHAUSTED;
}

int lg_shipper_enqueue(lg_shipper *s, struct lg_record *r)
{
    if (atomic_load_explicit(&s->closed, memory_order_relaxed)) {
        return LG_ERR_CLOSED;
    }
    if (lg_queue_push(s->q, r) == LG_OK) {
        return LG_OK;
    }
    return overflow(s, r);
}

uint64_t lg_shipper_ticket(lg_shipper *s)
{
    atomic_thread_fence(memory_order_seq_cst);
    uint64_t t = atomic_load(&s->turn_started) + 1;
    uint64_t w = atomic_load_explicit(&s->nt_want, memory_order_relaxed);
    while (w < t && !atomic_compare_exchange_weak(&s->nt_want, &w, t)) {
    }
    curl_multi_wakeup(s->multi); /* that turn now, not at the next tick */
    return t;
}

void lg_shipper_set_written_notify(lg_shipper *s, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&s->nt_mu);
    s->nt_fn = fn;
    s->nt_arg = arg;
    pthread_mutex_unlock(&s->nt_mu);
}

static void sink_set_notify(void *impl, void (*fn)(void *arg), void *arg)
{
    lg_shipper_set_written_notify(impl, fn, arg);
}

bool lg_shipper_written(lg_shipper *s, uint64_t ticket)
{
    return atomic_load_explicit(&s->turn_done, memory_order_acquire) >= ticket ||
           atomic_load_explicit(&s->spool_blocked, memory_order_acquire);
}

static int sink_enqueue(void *impl, struct lg_record *r)
{
    return lg_shipper_enqueue(impl, r);
}

static uint64_t sink_ticket(void *impl)
{
    return lg_shipper_ticket(impl);
}

static bool sink_written(void *impl, uint64_t ticket)
{
    return lg_shipper_written(impl, ticket);
}

static void sink_close(void *impl)
{
    (void)impl;
}

void lg_shipper_sink(lg_shipper *s, struct lg_record_sink *out)
{
    out->enqueue = sink_enqueue;
    out->close = sink_close;
    out->ticket = sink_ticket;
    out->written = sink_written;
    out->set_notify = sink_set_notify;
    out->impl = s;
}

static void deadline_at(struct timespec *ts, int64_t timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (timeout_ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int lg_shipper_sync(lg_shipper *s, int64_t timeout_ms)
{
    struct timespec dl;
    deadline_at(&dl, timeout_ms);
    pthread_mutex_lock(&s->mu);
    uint64_t gen = ++s->sync_req;
    curl_multi_wakeup(s->multi);
    int rc = LG_OK;
    while (s->sync_done < gen) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT) {
            rc = LG_ERR_TIMEOUT;
            break;
        }
    }
    if (rc == LG_OK && s->sync_full) {
        rc = LG_ERR_EXHAUSTED;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int lg_shipper_drain(lg_shipper *s, int64_t timeout_ms)
{
    if (s->no_ship) {
        return LG_ERR_INVALID; /* nothing can land; its idle state would have said LG_OK */
    }
    struct timespec dl;
    deadline_at(&dl, timeout_ms);
    pthread_mutex_lock(&s->mu);
    s->draining++;
    curl_multi_wakeup(s->multi);
    /* Wait for an idle state published after this call started (two generations: the
     * first may have been computed before our records were queued). */
    uint64_t start = s->idle_gen;
    int rc = LG_OK;
    while (!(s->idle && s->idle_gen >= start + 2)) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT) {
            rc = LG_ERR_TIMEOUT;
            break;
        }
    }
    s->draining--;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void lg_shipper_get_stats(lg_shipper *s, struct lg_shipper_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->overflowed = atomic_load(&s->overflowed);
    out->queue_depth = lg_queue_count(s->q);
    out->accepted = atomic_load(&s->popped) + out->overflowed + out->queue_depth;
    out->dropped = atomic_load(&s->dropped); /* spool-lost records are added below */
    out->spooled = atomic_load(&s->spooled);
    out->rows_shipped = atomic_load(&s->rows_shipped);
    out->batches = atomic_load(&s->batches);
    out->retries = atomic_load(&s->retries);
    out->dead_letters = atomic_load(&s->dead_letters);
    out->landed_checks = atomic_load(&s->landed_checks);
    out->landed_on_check = atomic_load(&s->landed_on_check);
    clockid_t cid;
    struct timespec ts;
    if (s->thread_started && !s->stopped && pthread_getcpuclockid(s->th, &cid) == 0 &&
        clock_gettime(cid, &ts) == 0) {
        s->cpu_ns_last = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    out->thread_cpu_ns = s->cpu_ns_last + atomic_load_explicit(&s->sy_cpu_ns,
                                                                memory_order_relaxed);
    struct lg_spool_stats ss;
    lg_spool_get_stats(s->sp, &ss);
    out->spool_bytes = ss.bytes;
    out->corrupt_records = ss.corrupt_records;
    out->spool_read_memory = ss.read_from_memory;
    out->spool_read_file = ss.read_from_file;
    out->spool_recycled = ss.recycled;
    out->dropped += ss.lost;
}

int lg_shipper_format_metrics(lg_shipper *s, struct lg_buf *out)
{
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } m[] = {
        {"accepted_total", "counter", "Billing records accepted by enqueue.", st.accepted},
        {"overflowed_total", "counter", "Records spooled by the caller (ring full).",
         st.overflowed},
        {"dropped_total", "counter",
         "Records lost: ring full and spool full or unwritable (the only loss).", st.dropped},
        {"rows_shipped_total", "counter", "Rows acknowledged by ClickHouse.", st.rows_shipped},
        {"batches_total", "counter", "Inserts acknowledged by ClickHouse.", st.batches},
        {"retries_total", "counter", "Failed attempts that were retried.", st.retries},
        {"dead_letters_total", "counter", "Rows moved to the dead-letter file.",
         st.dead_letters},
        {"landed_checks_total", "counter", "batch_id checks before a resend.",
         st.landed_checks},
        {"landed_on_check_total", "counter", "Batches found landed by a check (not resent).",
         st.landed_on_check},
        {"spool_corrupt_records_total", "counter", "Spool records skipped for a bad CRC.",
         st.corrupt_records},
        {"spool_read_memory_total", "counter",
         "Spooled records batched from memory (written buffers kept for the reader).",
         st.spool_read_memory},
        {"spool_read_file_total", "counter",
         "Spooled records batched by reading the segment files back.", st.spool_read_file},
        {"spool_segments_recycled_total", "counter",
         "Spool segments made from an acknowledged segment's file instead of a new one.",
         st.spool_recycled},
        {"spool_bytes", "gauge", "Bytes in the spool (segments and buffer).", st.spool_bytes},
        {"queue_depth", "gauge", "Records waiting in the hot-path ring.", st.queue_depth},
    };
    int rc = LG_OK;
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]) && rc == LG_OK; i++) {
        rc = lg_buf_appendf(out,
                            "# HELP llmgate_shipper_%s %s\n# TYPE llmgate_shipper_%s %s\n"
                            "llmgate_shipper_%s %" PRIu64 "\n",
                            m[i].name, m[i].help, m[i].name, m[i].type, m[i].name, m[i].v);
    }
    return rc;
}

/* The batches' holder callbacks: they hold the spool's read blocks their rows lie in. */
static void hold_block(void *ctx, void *blk)
{
    lg_shipper *s = ctx;
    lg_spool_block_retain(s->sp, blk);
}

static void release_block(void *ctx, void *blk)
{
    lg_shipper *s = ctx;
    lg_spool_block_release(s->sp, blk);
}

static char *dup_or_null(const char *p, bool *ok)
{
    if (p == NULL) {
        return NULL;
    }
    char *c = lg_strdup(p);
    if (c == NULL) {
        *ok = false;
    }
    return c;
}

static int init_resources(lg_shipper *s, const struct lg_shipper_opts *o)
{
    bool ok = true;
    s->url = dup_or_null(o->clickhouse_url != NULL ? o->clickhouse_url : "", &ok);
    s->user = dup_or_null(o->user, &ok);
    s->key = dup_or_null(o->key, &ok);
    s->ca_file = dup_or_null(o->ca_file, &ok);
    struct lg_buf p;
    lg_buf_init(&p, LG_CHCLIENT_MAX_URL_BYTES);
    if (o->dead_letter_path != NULL) {
        lg_buf_append_str(&p, o->dead_letter_path);
    } else {
        lg_buf_appendf(&p, "%s/deadletter.jsonl", o->spool_dir);
    }
    s->dl_path = dup_or_null(p.len > 0 ? (const char *)p.data : "", &ok);
    lg_buf_deinit(&p);
    if (!ok) {
        return LG_ERR_NOMEM;
    }
    s->ch = (struct lg_chclient_opts){s->url, s->user, s->key,
                                      o->http_timeout_ms > 0 ? o->http_timeout_ms
                                                             : LG_SHIPPER_HTTP_TIMEOUT_MS,
                                      LG_SHIPPER_CONNECT_TIMEOUT_MS, s->ca_file};
    int rc = lg_queue_new(&s->q, o->queue_capacity > 0 ? o->queue_capacity
                                                          : LG_SHIPPER_QUEUE_CAPACITY);
    if (rc != LG_OK) {
        return rc;
    }
    struct lg_spool_opts so = {
        o->spool_dir, o->spool_max_bytes > 0 ? o->spool_max_bytes : LG_SPOOL_DEFAULT_MAX_BYTES,
        o->spool_segment_bytes > 0 ? o->spool_segment_bytes : LG_SPOOL_DEFAULT_SEGMENT_BYTES};
    rc = lg_spool_open(&s->sp, &so); /* creates the directory the dead-letter file is in */
    if (rc == LG_ERR_CORRUPT) {
        /* Nothing is guessed: from the oldest segment the acknowledged head would ship again
         * (docs/operations.md, "Corrupt spool state"). */
        lg_log(LG_LOG_ERROR, NULL, "spool_state_corrupt",
               "path=%s/state fix=\"move it aside to replay from the oldest segment\"",
               o->spool_dir);
    }
    if (rc != LG_OK) {
        return rc;
    }
    s->dl_fd = open(s->dl_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->dl_fd < 0) {
        return LG_ERR_IO;
    }
    struct lg_batch_limits bl = {
        o->batch_rows > 0 ? o->batch_rows : LG_SHIPPER_DEFAULT_BATCH_ROWS,
        o->batch_bytes > 0 ? o->batch_bytes : LG_SHIPPER_DEFAULT_BATCH_BYTES,
        o->batch_age_ms > 0 ? o->batch_age_ms : LG_SHIPPER_DEFAULT_BATCH_AGE_MS};
    rc = lg_batch_new(&s->batch, &bl);
    if (rc == LG_OK) {
        rc = lg_batch_new(&s->next, &bl);
    }
    if (rc != LG_OK) {
        return rc;
    }
    lg_batch_set_holder(s->batch, hold_block, release_block, s);
    lg_batch_set_holder(s->next, hold_block, release_block, s);
    s->multi = curl_multi_init();
    s->easy = curl_easy_init();
    return s->multi != NULL && s->easy != NULL ? LG_OK : LG_ERR_NOMEM;
}

static void free_resources(lg_shipper *s)
{
    if (s->multi != NULL) {
        curl_multi_cleanup(s->multi);
    }
    if (s->easy != NULL) {
        curl_easy_cleanup(s->easy);
    }
    curl_slist_free_all(s->hdrs);
    lg_batch_free(s->batch);
    lg_batch_free(s->next);
    lg_spool_close(s->sp);
    lg_queue_free(s->q);
    if (s->dl_fd >= 0) {
        close(s->dl_fd);
    }
    lg_buf_deinit(&s->resp);
    lg_buf_deinit(&s->urlbuf);
    lg_buf_deinit(&s->sql);
    lg_buf_deinit(&s->frames);
    lg_buf_deinit(&s->dl);
    lg_buf_deinit(&s->params);
    lg_free(s->url);
    lg_free(s->user);
    lg_free(s->key);
    lg_free(s->ca_file);
    lg_free(s->dl_path);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->sy_cv);
    pthread_mutex_destroy(&s->sy_mu);
    lg_buf_deinit(&s->ovf_row);
    pthread_mutex_destroy(&s->ovf_mu);
    pthread_mutex_destroy(&s->dl_mu);
    pthread_mutex_destroy(&s->nt_mu);
    lg_free(s);
}

int lg_shipper_new(lg_shipper **out, const struct lg_shipper_opts *o)
{
    if (o->spool_dir == NULL || (!o->no_ship && o->clickhouse_url == NULL) ||
        (unsigned)o->compression > LG_SHIPPER_COMPRESSION_NONE ||
        (unsigned)o->format > LG_SHIPPER_FORMAT_JSON) {
        return LG_ERR_INVALID;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    lg_shipper *s = lg_calloc(1, sizeof(*s));
    if (s == NULL) {
        return LG_ERR_NOMEM;
    }
    s->dl_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->sy_mu, NULL);
    pthread_cond_init(&s->sy_cv, NULL);
    pthread_mutex_init(&s->ovf_mu, NULL);
    pthread_mutex_init(&s->dl_mu, NULL);
    pthread_mutex_init(&s->nt_mu, NULL);
    lg_buf_init(&s->ovf_row, LG_SPOOL_FRAME_HDR_BYTES + LG_RECORD_MAX_ROW_BYTES);
    lg_buf_init(&s->resp, LG_CHCLIENT_MAX_ERROR_BYTES);
    lg_buf_init(&s->urlbuf, LG_CHCLIENT_MAX_URL_BYTES);
    lg_buf_init(&s->sql, LG_CHCLIENT_MAX_URL_BYTES);
    lg_buf_init(&s->frames,
                LG_SHIPPER_RUN_BYTES + LG_SPOOL_FRAME_HDR_BYTES + LG_RECORD_MAX_ROW_BYTES);
    lg_buf_init(&s->dl, 2 * LG_SPOOL_MAX_RECORD_BYTES);
    lg_buf_init(&s->params, LG_CHCLIENT_MAX_URL_BYTES);
    s->gzip = lg_shipper_compression_gzip(o->compression, o->clickhouse_url);
    s->no_ship = o->no_ship;
    s->format = o->format;
    s->rng = (uint64_t)lg_time_wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    int rc = init_resources(s, o);
    if (rc != LG_OK) {
        free_resources(s);
        return rc;
    }
    struct lg_spool_state st;
    lg_spool_get_state(s->sp, &st);
    s->rd = st.ack;
    s->batch_end = st.ack;
    if (st.has_inflight && st.batch_id[0] != 0) {
        /* A batch was in flight when the last run ended: ask before resending. */
        s->need_check = true;
        s->startup_check = true;
        snprintf(s->check_id, sizeof(s->check_id), "%s", st.batch_id);
        s->check_rows = rows_of_id(st.batch_id);
        s->batch_end = st.inflight_end;
    }
    s->last_sync_ms = lg_time_mono_ms();
    if (pthread_create(&s->th, NULL, thread_main, s) != 0) {
        free_resources(s);
        return LG_ERR_NOMEM;
    }
    s->thread_started = true;
    lg_log(LG_LOG_INFO, NULL, "shipper_started", "compression=%s format=%s",
           s->no_ship ? "n/a (spool only)" : s->gzip ? "gzip" : "none",
           s->format == LG_SHIPPER_FORMAT_JSON ? "json" : "rowbinary");
    *out = s;
    return LG_OK;
}

void lg_shipper_stop(lg_shipper *s)
{
    if (s->stopped) {
        return;
    }
    s->stopped = true;
    atomic_store(&s->closed, true);
    atomic_store_explicit(&s->stop, true, memory_order_release);
    curl_multi_wakeup(s->multi);
    if (s->thread_started) {
        pthread_join(s->th, NULL);
    }
    /* Only when the spool is full or cannot write at the end: these were accepted but can be
     * neither shipped nor spooled. They are the counted, logged drops of the contract. */
    uint64_t unwritten = lg_spool_discard(s->sp); /* counted by the spool (stats.lost) */
    if (unwritten > 0) {
        lg_log(LG_LOG_ERROR, NULL, "record_dropped", "dropped_at_stop=%" PRIu64
               " reason=spool_write_failed", unwritten);
    }
    uint64_t lost = discard_run(s);
    void *item;
    while (lg_queue_pop(s->q, &item) == LG_OK) {
        lg_record_free(item);
        lost++;
    }
    if (lost > 0) {
        add(&s->dropped, lost);
        lg_log(LG_LOG_ERROR, NULL, "record_dropped", "dropped_at_stop=%" PRIu64
               " reason=spool_full_or_failing", lost);
    }
}

void lg_shipper_free(lg_shipper *s)
{
    if (s == NULL) {
        return;
    }
    lg_shipper_stop(s);
    free_resources(s);
}
