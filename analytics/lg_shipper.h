/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_shipper: billing records to ClickHouse, once, never lost (issue 5).
 *
 * Path of a record: lg_shipper_enqueue (request thread: one lock-free ring push) ->
 * shipper thread: encoded as a row (RowBinary, or JSONEachRow: |format|) straight into a
 * spool frame and appended to
 * the write-ahead spool a run of records at a time (lg_spool; written every
 * LG_SHIPPER_TICK_MS, fdatasync'd every LG_SHIPPER_SYNC_INTERVAL_MS by a second thread, the
 * syncer, which also removes acknowledged segments: the shipper thread never waits for the
 * spool's data to reach the disk; it does fsync the small state file once per INSERT and
 * each dead-letter line) -> read back from the spool into a batch (lg_batch: rows,
 * bytes, age; the next batch is prepared while one is in flight) -> one INSERT INTO
 * llm_ingest in the rows' format (gzip'd, or uncompressed and streamed from the batch's rows:
 * |compression|) over libcurl multi (curl_multi_poll on the
 * shipper's own loop; keep-alive: libcurl's silent resend of a request whose reused
 * connection died cannot repeat an INSERT, whose body it cannot rewind, see start_insert)
 * -> on success the spool's ack position moves past the batch and whole acknowledged
 * segments are deleted.
 *
 * When the ring is full the caller encodes and appends to the spool itself (the only case
 * where enqueue does I/O: a write(2) when the spool's buffer fills). When the spool is at
 * its cap or cannot write (disk full, I/O error) the record is dropped: counted
 * (stats.dropped), logged, LG_ERR_EXHAUSTED. On the shipper thread either condition is
 * backpressure: the record is held (never dead-lettered: nothing is wrong with it), the
 * ring fills, and the spool's own flush retries until the disk takes writes again (see
 * lg_spool: a full disk recovers once ClickHouse acknowledged what the spool holds).
 *
 * Failures: a 200 with an exception in the body is a failure. Rows ClickHouse rejects as
 * malformed go to the dead-letter file (one JSON line each: error, code, batch_id, row) and
 * the rest of the batch is resent; a RowBinary row read back from a file that is not one
 * whole row is dead-lettered before sending (ClickHouse would misread the rows after it). When ClickHouse reports a data error without naming a
 * row of the batch ("at row N"), every row of that batch is dead-lettered: kept in the
 * file, out of the pipeline (retrying would fail the same way forever). A record that
 * cannot be encoded (too large, or no memory), by the shipper thread or by a caller on the
 * full-ring path, is dead-lettered by its request id alone (taken: LG_OK, not a drop).
 * Everything else (5xx, timeouts, connection errors, too many parts, memory limit, unknown
 * table) is retried forever with exponential backoff and full jitter; the spool holds the rows meanwhile. Before resending a batch after an
 * ambiguous failure (the request may have executed: timeout, cut connection), and at start
 * when the state file names a batch in flight, the shipper asks ClickHouse how many rows
 * carry that batch_id (SELECT uniqExact(request_id) FROM llm_requests WHERE batch_id = ..)
 * and treats the batch as landed when all did. Each INSERT carries query_id = batch_id, and
 * the check also counts queries with that id still running (system.processes): an attempt
 * whose client was cut or killed can still be executing on the server, and the answer is
 * final only once none is; a resend racing it is refused by ClickHouse (Code 216). The row
 * tables are ReplacingMergeTree on request_id as a second line of defence (the daily
 * rollup, a SummingMergeTree, is not: analytics/schema/0003).
 *
 * Thread: two threads of its own (lg-shipper, lg-spool-sync). lg_shipper_enqueue from any
 * thread, concurrently. Everything else from one
 * controlling thread (the service's main/loop thread), never from the shipper's thread.
 * Ownership: enqueue takes the record on LG_OK (freed by the shipper once spooled); on
 * error the caller keeps it. Option strings are copied.
 * Errors: LG_ERR_EXHAUSTED (dropped: ring and spool full), LG_ERR_CLOSED, LG_ERR_NOMEM,
 * LG_ERR_IO (spool), LG_ERR_INVALID (options), LG_ERR_TIMEOUT (wait deadline passed).
 */
#ifndef LG_SHIPPER_H
#define LG_SHIPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lg_buf;
struct lg_record;
struct lg_record_sink;

typedef struct lg_shipper lg_shipper;

/* Content-Encoding of INSERT bodies. AUTO (the default, zero): gzip unless the ClickHouse
 * host is a loopback address (lg_chclient_url_is_loopback), where compressing only costs
 * CPU on both sides of a connection that never leaves the machine (analytics/README.md,
 * "Performance"). A name is not resolved: a LAN host is gzip'd under AUTO. */
enum lg_shipper_compression {
    LG_SHIPPER_COMPRESSION_AUTO = 0,
    LG_SHIPPER_COMPRESSION_GZIP = 1,
    LG_SHIPPER_COMPRESSION_NONE = 2,
};

/* The format new records are spooled and sent in. ROWBINARY (the default, zero): ~22%
 * fewer bytes per billing row than JSON (the keys), no escaping and no decimal digits, so
 * less CPU per row to encode, spool and send (analytics/README.md, "Format"). JSON:
 * JSONEachRow lines, readable in the spool as they are. Either way a spool may hold both
 * (written by different builds or settings): each row is sent in its own format. */
enum lg_shipper_format {
    LG_SHIPPER_FORMAT_ROWBINARY = 0,
    LG_SHIPPER_FORMAT_JSON = 1,
};

struct lg_shipper_opts {
    const char *clickhouse_url;  /* http(s)://[user:pass@]host:port */
    const char *user;            /* X-ClickHouse-User or NULL */
    const char *key;             /* X-ClickHouse-Key or NULL */
    const char *ca_file;         /* https: CAs to trust (PEM), NULL = system store */
    const char *spool_dir;       /* required */
    const char *dead_letter_path;/* NULL: <spool_dir>/deadletter.jsonl */
    uint64_t spool_max_bytes;    /* 0: LG_SPOOL_DEFAULT_MAX_BYTES */
    uint64_t spool_segment_bytes;/* 0: LG_SPOOL_DEFAULT_SEGMENT_BYTES */
    size_t batch_rows;           /* 0: LG_SHIPPER_DEFAULT_BATCH_ROWS */
    size_t batch_bytes;          /* 0: LG_SHIPPER_DEFAULT_BATCH_BYTES */
    int64_t batch_age_ms;        /* 0: LG_SHIPPER_DEFAULT_BATCH_AGE_MS */
    size_t queue_capacity;       /* 0: LG_SHIPPER_QUEUE_CAPACITY (power of two) */
    long http_timeout_ms;        /* 0: LG_SHIPPER_HTTP_TIMEOUT_MS */
    enum lg_shipper_compression compression; /* 0: AUTO */
    enum lg_shipper_format format;           /* 0: ROWBINARY */
    bool no_ship;                /* spool only, never contact ClickHouse (tests, replay) */
};

/* Counters; all monotonic except the gauges spool_bytes and queue_depth. */
struct lg_shipper_stats {
    uint64_t accepted;       /* records taken by enqueue (ring or spool) */
    uint64_t overflowed;     /* of those, taken by the caller because the ring was full
                                (spooled, or dead-lettered when it cannot be encoded) */
    uint64_t dropped;        /* lost: refused at enqueue (ring full, spool full or failing),
                                freed at stop, or discarded unwritten by the spool */
    uint64_t spooled;        /* rows appended to the spool by the shipper thread */
    uint64_t rows_shipped;   /* rows acknowledged by ClickHouse */
    uint64_t batches;        /* inserts acknowledged */
    uint64_t retries;        /* failed attempts that will be retried */
    uint64_t dead_letters;   /* rows written to the dead-letter file */
    uint64_t landed_checks;  /* batch_id checks made */
    uint64_t landed_on_check;/* batches found already landed by a check (not resent) */
    uint64_t corrupt_records;/* spool records skipped for a bad CRC */
    uint64_t spool_read_memory; /* records batched from the spool's written buffers */
    uint64_t spool_read_file;   /* records batched by reading the spool's files back */
    uint64_t spool_recycled;    /* spool segments made from a recycled file */
    uint64_t thread_cpu_ns;  /* CPU time used by the shipper's two threads so far (the
                                syncer's as of its last job) */
    uint64_t spool_bytes;    /* gauge */
    uint64_t queue_depth;    /* gauge */
};

/* Opens the spool (recovering and scheduling replay of anything unacknowledged) and starts
 * the shipper thread. Returned owned. */
int lg_shipper_new(lg_shipper **out, const struct lg_shipper_opts *o);
/* Stops: enqueue refuses from now on (LG_ERR_CLOSED); the thread ships for up to
 * LG_SHIPPER_DRAIN_DEADLINE_MS (the SIGTERM budget), spools what is still queued, and
 * exits. What did not land stays in the spool for the next start. Records that could not
 * even be spooled (spool at its cap, or its disk full) are freed and counted in
 * stats.dropped. Stats remain
 * readable until lg_shipper_free. No enqueue may run concurrently with the call. */
void lg_shipper_stop(lg_shipper *s);
/* lg_shipper_stop if not done, then closes the spool and frees. Accepts NULL. */
void lg_shipper_free(lg_shipper *s);

/* One line of the dead-letter file into |b| (appended): {"time_ms":..,"batch_id":"..",
 * "code":N,"error":"..", then "row":"<text>"}\n with |row| as a JSON string. |fmt| says
 * what |row| is: 0 or '{', text (a JSON row, or a record's request id); a RowBinary version
 * (LG_RECORD_ROWBINARY_V1), a row's RowBinary columns, written decoded as the JSON row of
 * the same record (a dead letter is read by people and replayed by hand), or, when they do
 * not decode, as "row_hex":"<hex of the bytes>". LG_OK, LG_ERR_TOO_LARGE, LG_ERR_NOMEM. */
int lg_shipper_dead_letter_line(struct lg_buf *b, int64_t time_ms, const char *batch_id,
                                int code, const char *why, const uint8_t *row, size_t len,
                                unsigned fmt);

/* Parses "auto" | "gzip" | "none" (the --compression / config value). LG_OK or
 * LG_ERR_INVALID. */
int lg_shipper_compression_parse(const char *s, enum lg_shipper_compression *out);
/* Parses "rowbinary" | "json" (the --format / config value). LG_OK or LG_ERR_INVALID. */
int lg_shipper_format_parse(const char *s, enum lg_shipper_format *out);
/* What |c| means for ClickHouse at |url|: true = gzip the bodies. Pure. */
bool lg_shipper_compression_gzip(enum lg_shipper_compression c, const char *url);

/* Hot path. Takes |r| on LG_OK. LG_ERR_EXHAUSTED (dropped and counted; |r| still the
 * caller's), LG_ERR_CLOSED. */
int lg_shipper_enqueue(lg_shipper *s, struct lg_record *r);
/* Fills |out| with a sink that enqueues into |s| (close is a no-op: free |s| yourself). */
void lg_shipper_sink(lg_shipper *s, struct lg_record_sink *out);

/* Durable answers. After enqueueing a record, a caller that must not answer its client until
 * the record survives a kill -9 of this process takes a ticket, then polls
 * lg_shipper_written(ticket): true once every record it enqueued before the ticket has been
 * written to the spool file (write(2): in the page cache, which outlives the process; the
 * fdatasync follows within LG_SHIPPER_SYNC_INTERVAL_MS). Taking a ticket wakes the shipper
 * thread (one curl_multi_wakeup), so the wait is one shipper turn, not a tick. While the
 * spool cannot take records (disk full or failing, at its cap) it also says true: waiting
 * would only delay answers, and those records wait in memory (analytics/README.md). Any
 * thread. */
uint64_t lg_shipper_ticket(lg_shipper *s);
bool lg_shipper_written(lg_shipper *s, uint64_t ticket);
/* Instead of polling lg_shipper_written: |fn|(|arg|) is called on the shipper thread after
 * each turn that wrote records (or found the spool blocked) while a ticket taken since the
 * last call waits; a hint, so check lg_shipper_written (a call may come for a later turn
 * than yours). It must be quick and must not call into the shipper (e.g. event_active on
 * a libevent base with threading). fn NULL stops the calls; once this returns, |fn| is not
 * running and will not be called with the old |arg|. Any thread. */
void lg_shipper_set_written_notify(lg_shipper *s, void (*fn)(void *arg), void *arg);

/* Waits until every record accepted before the call is in the spool and fdatasync'd
 * (survives kill -9). LG_OK, LG_ERR_TIMEOUT, or LG_ERR_EXHAUSTED: the spool is at its cap
 * or cannot write (disk full), and some accepted records wait in memory for room. */
int lg_shipper_sync(lg_shipper *s, int64_t timeout_ms);
/* The SIGTERM hook: ships everything accepted so far, ignoring batch age, and waits until
 * ClickHouse acknowledged it all or |timeout_ms| passed. LG_OK (all landed) or
 * LG_ERR_TIMEOUT (the rest stays spooled). The shipper keeps running either way.
 * LG_ERR_INVALID at once for a spool-only shipper (no_ship: nothing lands; see
 * lg_shipper_sync). */
int lg_shipper_drain(lg_shipper *s, int64_t timeout_ms);

void lg_shipper_get_stats(lg_shipper *s, struct lg_shipper_stats *out);

/* Appends the stats in Prometheus text format (llmgate_shipper_* counters and gauges, with
 * HELP/TYPE lines) to |out|, for the owning binary's /metrics. LG_OK or the lg_buf error. */
int lg_shipper_format_metrics(lg_shipper *s, struct lg_buf *out);

#endif /* LG_SHIPPER_H */
