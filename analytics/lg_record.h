/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_record: the billing record (one per upstream model call, DESIGN.md contract 3), its
 * row encodings (JSONEachRow and RowBinary, with the RowBinary decoder and whole-row check
 * the shipper's batches and dead letters use), and the sink interface the chat service
 * hands records to.
 *
 * Purpose: the chat service fills one struct lg_record per upstream call and gives it to a
 * struct lg_record_sink; the sink is either the ClickHouse shipper (lg_shipper) or, for
 * tests and local runs, a JSON-lines file (lg_record_file_sink_open).
 *
 * Thread: a record belongs to one thread at a time. lg_record_sink_enqueue may be called
 * from any thread, concurrently, as long as the sink is open.
 *
 * Ownership: every string field is NULL (= empty) or a NUL-terminated string that the
 * record owns. A record from lg_record_new or lg_record_dup is ONE allocation: the struct
 * plus an inline area for its strings; lg_record_set_str copies a short value (ids, model,
 * provider, params, finish_reason, metadata, ...) into that area while it has room, and a
 * long one (a body) or one that no longer fits into its own lg_malloc'd block. A caller may
 * still assign an lg_malloc'd string to a field directly: the record then owns it.
 * lg_record_free frees each field that does not point into the record's own area, then the
 * record. Hence: never lg_free a field yourself, never point a field at another record's
 * string or at memory you do not hand over, and call lg_record_set_str only on fields of a
 * record from lg_record_new/lg_record_dup (it finds the record from the field's address).
 * Records are only made by lg_record_new/lg_record_dup (not on the stack, not by copying
 * the struct). A sink's enqueue takes the record on LG_OK (the caller must not touch it
 * again); on an error the caller still owns it and frees it.
 *
 * Errors: LG_ERR_NOMEM, LG_ERR_TOO_LARGE (encoding past the buffer cap), LG_ERR_INVALID,
 * LG_ERR_EXHAUSTED (sink full: queue and spool at their caps; the drop was counted),
 * LG_ERR_CLOSED (sink closed), LG_ERR_IO (file sink write failed).
 */
#ifndef LG_RECORD_H
#define LG_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lg_buf;

enum lg_record_status {
    LG_RECORD_STATUS_SUCCESS = 0,
    LG_RECORD_STATUS_ERROR = 1,
    LG_RECORD_STATUS_CANCELLED = 2,
    LG_RECORD_STATUS_TIMEOUT = 3,
};

enum lg_record_usage_source {
    LG_RECORD_USAGE_REPORTED = 0,  /* token counts came from the upstream's usage block */
    LG_RECORD_USAGE_ESTIMATED = 1, /* counted locally (upstream gave none, or cancelled) */
};

/* One upstream call. Callers fill the fields directly (this is a plain struct). */
struct lg_record {
    /* Identity. request_id is unique per upstream call and is the dedup key in ClickHouse
     * (ReplacingMergeTree); it must not be empty. */
    char *request_id;
    char *stream_id;
    char *user_id;
    char *conversation_id;
    char *agent_id;
    char *provider_config_id;
    char *provider; /* "openai", "anthropic", "demo", ... */
    char *model;

    /* Request parameters. */
    bool has_temperature; /* false: the caller did not set one */
    double temperature;
    bool has_max_tokens; /* false: the caller did not set one */
    int64_t max_tokens;
    bool stream;            /* StreamChat (true) or Complete (false) */
    char *request_messages; /* JSON array text [{"role":..,"content":..}], or NULL when the
                               privacy setting leaves bodies out */
    char *request_params;   /* JSON object text of the other parameters, or NULL */

    /* Response. */
    char *response_content; /* full text (or truncated / NULL, per privacy setting) */
    char *finish_reason;    /* "stop", "length", ... or NULL */

    /* Usage. */
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;
    int64_t total_tokens;
    int64_t estimated_cost_nano_usd; /* exact integer nano-USD (1e-9 USD); never a float */
    enum lg_record_usage_source usage_source;
    bool price_missing; /* the model had no price row: cost is 0 and must be reviewed */

    /* Timing, wall clock for start/end (unix milliseconds, UTC); durations from the
     * monotonic clock. time_to_first_token_ms is -1 when no token arrived. */
    int64_t start_time_ms;
    int64_t end_time_ms;
    int64_t duration_ms;
    int64_t time_to_first_token_ms;

    /* Outcome. */
    enum lg_record_status status;
    char *error_message; /* NULL on success; never contains secrets */
    char *metadata;      /* JSON object text (caller metadata), or NULL for {} */
};

/* ---- lifecycle --------------------------------------------------------------------- */

/* Allocates a zeroed record (time_to_first_token_ms = -1) with its inline string area, in
 * one allocation. Returned owned; LG_ERR_NOMEM. */
int lg_record_new(struct lg_record **out);
/* Frees every string field that is not in the record's own area, and |r| with its area.
 * Accepts NULL. */
void lg_record_free(struct lg_record *r);
/* Replaces *|field| (&r->x for a string field x of a record r from lg_record_new or
 * lg_record_dup) with a copy of |len| bytes of |p| (p may be NULL when len is 0: the field
 * becomes NULL); |p| may point into the record's own strings. The copy goes into the
 * record's area when it is short and fits (no allocation), else into an lg_malloc'd block.
 * The old value is released only on success: freed if it was its own block, left in the
 * area (not reused) if it was there. LG_OK or LG_ERR_NOMEM. */
int lg_record_set_str(char **field, const char *p, size_t len);
/* Deep copy of |r|, every string in the copy's area: one allocation. Returned owned;
 * LG_ERR_NOMEM. */
int lg_record_dup(const struct lg_record *r, struct lg_record **out);

/* ---- encoding ---------------------------------------------------------------------- */

/* Appends |r| as an *open* JSONEachRow object to |out|: '{' and every column, but no
 * closing brace, so the batcher can add the batch_id column and '}' without re-encoding.
 * Strings are JSON-escaped (control bytes and 0x7f as \u00XX; UTF-8, valid or not, passes
 * through; a string ends at its first NUL); integers are exact decimals; the temperature is
 * the text of printf "%.17g" (17 significant digits, trailing zeros dropped: round-trips;
 * "-0" for negative zero; a NaN or infinite temperature is written as has_temperature 0,
 * temperature 0). The row is reserved and written in one step (no partial output).
 * Columns: see analytics/schema (table llm_ingest). LG_OK, LG_ERR_TOO_LARGE (|out| cap:
 * |out| is left as it was), LG_ERR_NOMEM. */
int lg_record_encode_row(const struct lg_record *r, struct lg_buf *out);
/* lg_record_encode_row + "}\n": one complete JSON line. */
int lg_record_encode_json(const struct lg_record *r, struct lg_buf *out);

/* RowBinary rows (ClickHouse's binary row format: integers little endian, Float64 as its 8
 * IEEE bytes, strings as a LEB128 length and the bytes), the shipper's default format. A
 * spooled RowBinary row starts with a version byte, LG_RECORD_ROWBINARY_V1, then its columns
 * in the order lg_record_rowbinary_columns(version) names them; ClickHouse gets the columns
 * only (the batcher leaves the byte out and adds batch_id). The byte tells a RowBinary row
 * from a JSON one ('{') in the same spool, and a later column set gets its own version while
 * rows spooled with this one keep being sent with this one's column list. The values are
 * those of the JSON row: strings end at their first NUL, a NULL metadata is "{}", the enums
 * are their names, a NaN or infinite temperature is has_temperature 0, temperature 0. */
#define LG_RECORD_ROWBINARY_V1 0x01u

/* Appends |r| as an open RowBinary row (version byte and columns, no batch_id), reserved and
 * written in one step. LG_OK, LG_ERR_TOO_LARGE (|out| cap: left as it was), LG_ERR_NOMEM. */
int lg_record_encode_rowbinary(const struct lg_record *r, struct lg_buf *out);
/* The columns of version |version|'s rows, comma separated, without batch_id (a static
 * string), or NULL for an unknown version. */
const char *lg_record_rowbinary_columns(unsigned version);
/* Checks that |cols| (|len| bytes: a row's columns, after its version byte) is exactly one
 * whole |version| row: every column present, each length within the row, no byte left over.
 * A row that passes cannot shift ClickHouse's reading of the next one. LG_OK or
 * LG_ERR_INVALID. Pure. */
int lg_record_rowbinary_check(unsigned version, const uint8_t *cols, size_t len);
/* The start_time_ms of a version-1 row from its columns (at least their first 8 bytes:
 * it is the first column). Pure. */
int64_t lg_record_rowbinary_start_ms(const uint8_t *cols);
/* Decodes a row's columns (as lg_record_rowbinary_check takes them) into a new record
 * (returned owned): lg_record_encode_json of it gives the JSON row the record had. LG_OK,
 * LG_ERR_INVALID (not a whole row, or an enum name this build does not know), LG_ERR_NOMEM. */
int lg_record_from_rowbinary(unsigned version, const uint8_t *cols, size_t len,
                             struct lg_record **out);

/* Names for enum values, as stored in ClickHouse ("success", "reported", ...). */
const char *lg_record_status_name(enum lg_record_status s);
const char *lg_record_usage_source_name(enum lg_record_usage_source s);

/* ---- sink interface ---------------------------------------------------------------- */

/* Where the chat service hands finished records. The functions are set by the sink's
 * open/new function; callers use the inline wrappers. */
struct lg_record_sink {
    /* Takes |r| on LG_OK. Must not block on I/O for long (the shipper never does; the file
     * sink does one write(2)). Errors: LG_ERR_EXHAUSTED, LG_ERR_CLOSED, LG_ERR_IO,
     * LG_ERR_NOMEM; the caller keeps |r| on error. */
    int (*enqueue)(void *impl, struct lg_record *r);
    /* Releases the sink (flushes what it can). */
    void (*close)(void *impl);
    /* Optional (NULL: every accepted record is already written, as the file sink's are):
     * a ticket for the records enqueued so far by this thread, and whether they have all
     * reached a file that outlives the process (lg_shipper_ticket / lg_shipper_written). */
    uint64_t (*ticket)(void *impl);
    bool (*written)(void *impl, uint64_t ticket);
    /* Optional (NULL: poll written()): has |fn|(|arg|) called, from the sink's own thread,
     * whenever a ticket taken before may have become written (a hint: check written()). fn
     * NULL stops it; once that call returns, fn is neither running nor called again.
     * (lg_shipper_set_written_notify.) */
    void (*set_notify)(void *impl, void (*fn)(void *arg), void *arg);
    void *impl; /* the sink's own state */
};

static inline int lg_record_sink_enqueue(struct lg_record_sink *s, struct lg_record *r)
{
    return s->enqueue(s->impl, r);
}

/* Closes |s| (calls its close function once) and clears it. Accepts a cleared sink. */
void lg_record_sink_close(struct lg_record_sink *s);

/* A sink that appends each record as one JSON line (lg_record_encode_json, no batch_id)
 * to the file |path| (created 0600, appended). Each enqueue is one write(2) under a mutex,
 * then the record is freed. Fills |out|. LG_OK, LG_ERR_IO (open failed), LG_ERR_NOMEM. */
int lg_record_file_sink_open(struct lg_record_sink *out, const char *path);

#endif /* LG_RECORD_H */
