/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_usage: the read side for UsageService (ListLogs, GetUsage) and the CLI's `logs` and
 * `usage`: a user's recent billing records and usage totals from ClickHouse.
 *
 * Deduplication: both read llm_requests with FINAL, so a record that reached ClickHouse
 * twice (a retried batch) is counted once even before background merges.
 * Injection: user ids are validated (1..LG_USAGE_MAX_USER_ID_BYTES bytes, no control bytes)
 * and then passed as quoted string literals (lg_chclient_quote); limits/pages/times are
 * integers formatted by us. ClickHouse 18.16 has no server-side query parameters.
 *
 * Thread: the *_sync functions block on HTTP (curl easy) and are for the CLI or worker
 * threads. lg_usage_new starts one worker thread; lg_usage_list_logs / lg_usage_get_usage
 * queue a job (bounded: LG_USAGE_MAX_PENDING) and return at once; the callback runs later
 * ON THE WORKER THREAD: a libevent caller hands the result to its loop (e.g. with
 * event_active on an event of a base made thread-aware by evthread_use_pthreads).
 * Ownership: results are returned owned to the callback / caller; free them with
 * lg_usage_logs_free / lg_usage_report_free. Input strings are copied.
 * Errors: LG_ERR_INVALID (bad user id or range), LG_ERR_EXHAUSTED (too many pending jobs),
 * LG_ERR_CLOSED, LG_ERR_UPSTREAM / LG_ERR_UNAVAILABLE / LG_ERR_TIMEOUT / LG_ERR_IO
 * (ClickHouse), LG_ERR_MALFORMED (unexpected answer), LG_ERR_NOMEM, LG_ERR_TOO_LARGE.
 */
#ifndef LG_USAGE_H
#define LG_USAGE_H

#include <stddef.h>
#include <stdint.h>

struct lg_chclient_opts;

/* One record as ListLogs shows it (no bodies). Strings are owned by the logs list. */
struct lg_usage_log {
    char *request_id, *stream_id, *conversation_id, *agent_id, *provider_config_id, *provider;
    char *model;
    char *status, *finish_reason, *error_message, *usage_source;
    int64_t prompt_tokens, completion_tokens, cached_tokens, total_tokens;
    int64_t estimated_cost_nano_usd;
    int64_t start_time_ms, duration_ms, time_to_first_token_ms;
    int stream; /* 0/1 */
};

struct lg_usage_logs {
    struct lg_usage_log *items;
    size_t count;
};

/* Totals for one (day, model), or for a whole model, a whole day, or everything. */
struct lg_usage_bucket {
    char day[11]; /* "YYYY-MM-DD", "" when not by day */
    char *model;  /* NULL when not by model */
    uint64_t requests, errors;
    int64_t prompt_tokens, completion_tokens, cached_tokens, total_tokens;
    int64_t cost_nano_usd;
};

struct lg_usage_report {
    struct lg_usage_bucket total;
    struct lg_usage_bucket *by_model_day; /* sorted by day, then model */
    size_t n_model_day;
    struct lg_usage_bucket *by_model; /* sorted by model */
    size_t n_model;
    struct lg_usage_bucket *by_day; /* sorted by day */
    size_t n_day;
};

void lg_usage_logs_free(struct lg_usage_logs *l);
void lg_usage_report_free(struct lg_usage_report *r);

/* Validates a user id as described above. LG_OK or LG_ERR_INVALID. */
int lg_usage_check_user_id(const char *user_id);

/* Narrows ListLogs in the query itself (so a page holds |limit| matching records): NULL or
 * "" = any model / conversation; start_time_ms in [since_ms, until_ms), 0 = unbounded. The
 * strings are validated like a user id (LG_ERR_INVALID) and quoted. */
struct lg_usage_log_filter {
    const char *model;
    const char *conversation_id;
    int64_t since_ms;
    int64_t until_ms;
};

/* A user's records, newest first: |limit| per page (1..LG_USAGE_MAX_LIMIT), page 0 first,
 * only those matching |filter| (NULL = all). Blocking. Fills |out| (returned owned). */
int lg_usage_list_logs_filtered_sync(const struct lg_chclient_opts *ch, const char *user_id,
                                     uint32_t limit, uint32_t page,
                                     const struct lg_usage_log_filter *filter,
                                     struct lg_usage_logs *out);
/* The same without a filter. */
int lg_usage_list_logs_sync(const struct lg_chclient_opts *ch, const char *user_id,
                            uint32_t limit, uint32_t page, struct lg_usage_logs *out);
/* A user's usage with start_time_ms in [from_ms, to_ms). Blocking. Fills |out|. */
int lg_usage_get_usage_sync(const struct lg_chclient_opts *ch, const char *user_id,
                            int64_t from_ms, int64_t to_ms, struct lg_usage_report *out);

typedef struct lg_usage lg_usage;

/* |rc| LG_OK or an error; |logs| is returned owned (empty on error). Worker thread. */
typedef void (*lg_usage_logs_cb)(int rc, struct lg_usage_logs *logs, void *user_data);
typedef void (*lg_usage_report_cb)(int rc, struct lg_usage_report *report, void *user_data);

/* Starts the worker. |ch| and its strings are copied. */
int lg_usage_new(lg_usage **out, const struct lg_chclient_opts *ch);
/* Runs the callbacks of jobs already queued (with LG_ERR_CLOSED if not started), joins the
 * worker, frees. Accepts NULL. */
void lg_usage_free(lg_usage *u);
int lg_usage_list_logs(lg_usage *u, const char *user_id, uint32_t limit, uint32_t page,
                       lg_usage_logs_cb cb, void *user_data);
/* With a filter; its strings are copied. */
int lg_usage_list_logs_filtered(lg_usage *u, const char *user_id, uint32_t limit,
                                uint32_t page, const struct lg_usage_log_filter *filter,
                                lg_usage_logs_cb cb, void *user_data);
int lg_usage_get_usage(lg_usage *u, const char *user_id, int64_t from_ms, int64_t to_ms,
                       lg_usage_report_cb cb, void *user_data);

#endif /* LG_USAGE_H */
