/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_usage.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lg_buf.h"
#include "lg_chclient.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

int lg_usage_check_user_id(const char *user_id)
{
    if (user_id == NULL) {
        return LG_ERR_INVALID;
    }
    size_t n = strlen(user_id);
    if (n == 0 || n > LG_USAGE_MAX_USER_ID_BYTES) {
        return LG_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)user_id[i];
        if (c < 0x20 || c == 0x7f) {
            return LG_ERR_INVALID;
        }
    }
    return LG_OK;
}

/* Integers arrive as JSON numbers or, for 64-bit types, as quoted strings (ClickHouse's
 * output_format_json_quote_64bit_integers, on by default). */
static int64_t jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    const char *s = json_string_value(v);
    if (s == NULL) {
        return 0;
    }
    bool neg = *s == '-';
    s += neg ? 1 : 0;
    int64_t x = 0;
    for (int i = 0; s[i] >= '0' && s[i] <= '9' && i < 19; i++) {
        x = x * 10 + (s[i] - '0');
    }
    return neg ? -x : x;
}

static char *jstr(json_t *o, const char *key, bool *ok)
{
    const char *s = json_string_value(json_object_get(o, key));
    char *c = lg_strdup(s != NULL ? s : "");
    if (c == NULL) {
        *ok = false;
    }
    return c;
}

/* Runs |sql| and returns the "data" array of a FORMAT JSON answer (owned by |*root|). */
static int run_json(const struct lg_chclient_opts *ch, const char *sql, json_t **root,
                    json_t **data)
{
    struct lg_buf resp;
    lg_buf_init(&resp, LG_CHCLIENT_MAX_RESPONSE_BYTES);
    int rc = lg_chclient_query(ch, sql, &resp, NULL);
    if (rc == LG_OK) {
        *root = json_loadb((const char *)resp.data, resp.len, 0, NULL);
        *data = *root != NULL ? json_object_get(*root, "data") : NULL;
        if (!json_is_array(*data)) {
            json_decref(*root);
            *root = NULL;
            rc = LG_ERR_MALFORMED;
        }
    }
    lg_buf_deinit(&resp);
    return rc;
}

void lg_usage_logs_free(struct lg_usage_logs *l)
{
    for (size_t i = 0; l->items != NULL && i < l->count; i++) {
        struct lg_usage_log *g = &l->items[i];
        char *all[] = {g->request_id,    g->stream_id,          g->conversation_id,
                       g->agent_id,      g->provider_config_id, g->provider,
                       g->model,         g->status,             g->finish_reason,
                       g->error_message, g->usage_source};
        for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++) {
            lg_free(all[k]);
        }
    }
    lg_free(l->items);
    l->items = NULL;
    l->count = 0;
}

/* An optional filter string: absent, or a valid id. */
static bool filter_str_ok(const char *v)
{
    return v == NULL || v[0] == '\0' || lg_usage_check_user_id(v) == LG_OK;
}

static bool filter_ok(const struct lg_usage_log_filter *f)
{
    return f == NULL || (filter_str_ok(f->model) && filter_str_ok(f->conversation_id) &&
                         f->since_ms >= 0 && f->until_ms >= 0);
}

/* Appends " AND |col| = 'v'" when |v| is set. */
static int append_eq(struct lg_buf *sql, const char *col, const char *v)
{
    if (v == NULL || v[0] == '\0') {
        return LG_OK;
    }
    int rc = lg_buf_appendf(sql, " AND %s = ", col);
    return rc == LG_OK ? lg_chclient_quote(sql, v, strlen(v)) : rc;
}

int lg_usage_list_logs_sync(const struct lg_chclient_opts *ch, const char *user_id,
                            uint32_t limit, uint32_t page, struct lg_usage_logs *out)
{
    return lg_usage_list_logs_filtered_sync(ch, user_id, limit, page, NULL, out);
}

int lg_usage_list_logs_filtered_sync(const struct lg_chclient_opts *ch, const char *user_id,
                                     uint32_t limit, uint32_t page,
                                     const struct lg_usage_log_filter *filter,
                                     struct lg_usage_logs *out)
{
    memset(out, 0, sizeof(*out));
    if (lg_usage_check_user_id(user_id) != LG_OK || limit == 0 || limit > LG_USAGE_MAX_LIMIT ||
        page > LG_USAGE_MAX_PAGE || !filter_ok(filter)) {
        return LG_ERR_INVALID;
    }
    struct lg_buf sql;
    lg_buf_init(&sql, LG_CHCLIENT_MAX_URL_BYTES);
    int rc = lg_buf_append_str(&sql,
        "SELECT request_id, stream_id, conversation_id, agent_id, provider_config_id, provider, "
        "model, status, "
        "finish_reason, error_message, usage_source, prompt_tokens, completion_tokens, "
        "cached_tokens, total_tokens, estimated_cost_nano_usd, start_time_ms, duration_ms, "
        "time_to_first_token_ms, stream FROM llm_requests FINAL WHERE user_id = ");
    if (rc == LG_OK) {
        rc = lg_chclient_quote(&sql, user_id, strlen(user_id));
    }
    if (rc == LG_OK && filter != NULL) {
        rc = append_eq(&sql, "model", filter->model);
        if (rc == LG_OK) {
            rc = append_eq(&sql, "conversation_id", filter->conversation_id);
        }
        if (rc == LG_OK && filter->since_ms > 0) {
            rc = lg_buf_appendf(&sql, " AND start_time_ms >= %" PRId64, filter->since_ms);
        }
        if (rc == LG_OK && filter->until_ms > 0) {
            rc = lg_buf_appendf(&sql, " AND start_time_ms < %" PRId64, filter->until_ms);
        }
    }
    if (rc == LG_OK) {
        /* LIMIT offset, count: the form every ClickHouse version accepts. */
        rc = lg_buf_appendf(&sql,
                            " ORDER BY start_time_ms DESC, request_id LIMIT %" PRIu64
                            ", %" PRIu32 " FORMAT JSON",
                            (uint64_t)page * limit, limit);
    }
    json_t *root = NULL, *data = NULL;
    if (rc == LG_OK) {
        rc = run_json(ch, (const char *)sql.data, &root, &data);
    }
    lg_buf_deinit(&sql);
    if (rc != LG_OK) {
        return rc;
    }
    size_t n = json_array_size(data);
    out->items = lg_calloc(n > 0 ? n : 1, sizeof(*out->items));
    if (out->items == NULL) {
        json_decref(root);
        return LG_ERR_NOMEM;
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(data, i);
        struct lg_usage_log *g = &out->items[i];
        out->count = i + 1;
        g->request_id = jstr(o, "request_id", &ok);
        g->stream_id = jstr(o, "stream_id", &ok);
        g->conversation_id = jstr(o, "conversation_id", &ok);
        g->agent_id = jstr(o, "agent_id", &ok);
        g->provider_config_id = jstr(o, "provider_config_id", &ok);
        g->provider = jstr(o, "provider", &ok);
        g->model = jstr(o, "model", &ok);
        g->status = jstr(o, "status", &ok);
        g->finish_reason = jstr(o, "finish_reason", &ok);
        g->error_message = jstr(o, "error_message", &ok);
        g->usage_source = jstr(o, "usage_source", &ok);
        g->prompt_tokens = jint(o, "prompt_tokens");
        g->completion_tokens = jint(o, "completion_tokens");
        g->cached_tokens = jint(o, "cached_tokens");
        g->total_tokens = jint(o, "total_tokens");
        g->estimated_cost_nano_usd = jint(o, "estimated_cost_nano_usd");
        g->start_time_ms = jint(o, "start_time_ms");
        g->duration_ms = jint(o, "duration_ms");
        g->time_to_first_token_ms = jint(o, "time_to_first_token_ms");
        g->stream = (int)jint(o, "stream");
    }
    json_decref(root);
    if (!ok) {
        lg_usage_logs_free(out);
        return LG_ERR_NOMEM;
    }
    return LG_OK;
}

void lg_usage_report_free(struct lg_usage_report *r)
{
    struct lg_usage_bucket *lists[] = {r->by_model_day, r->by_model, r->by_day};
    size_t counts[] = {r->n_model_day, r->n_model, r->n_day};
    for (size_t l = 0; l < 3; l++) {
        for (size_t i = 0; lists[l] != NULL && i < counts[l]; i++) {
            lg_free(lists[l][i].model);
        }
        lg_free(lists[l]);
    }
    memset(r, 0, sizeof(*r));
}

static void bucket_add(struct lg_usage_bucket *dst, const struct lg_usage_bucket *src)
{
    dst->requests += src->requests;
    dst->errors += src->errors;
    dst->prompt_tokens += src->prompt_tokens;
    dst->completion_tokens += src->completion_tokens;
    dst->cached_tokens += src->cached_tokens;
    dst->total_tokens += src->total_tokens;
    dst->cost_nano_usd += src->cost_nano_usd;
}

/* Adds |b| into |list| under its model (by_model) or day (by_day); keeps first-seen order,
 * which is sorted because the query sorts by day, model (models are re-sorted after). */
static int merge_into(struct lg_usage_bucket *list, size_t *n, const struct lg_usage_bucket *b,
                      bool by_model)
{
    for (size_t i = 0; i < *n; i++) {
        bool same = by_model ? strcmp(list[i].model, b->model) == 0
                             : strcmp(list[i].day, b->day) == 0;
        if (same) {
            bucket_add(&list[i], b);
            return LG_OK;
        }
    }
    struct lg_usage_bucket *e = &list[(*n)++];
    memset(e, 0, sizeof(*e));
    if (by_model) {
        e->model = lg_strdup(b->model);
        if (e->model == NULL) {
            (*n)--;
            return LG_ERR_NOMEM;
        }
    } else {
        memcpy(e->day, b->day, sizeof(e->day));
    }
    bucket_add(e, b);
    return LG_OK;
}

static int cmp_model(const void *a, const void *b)
{
    return strcmp(((const struct lg_usage_bucket *)a)->model,
                  ((const struct lg_usage_bucket *)b)->model);
}

static int build_report(json_t *data, struct lg_usage_report *out)
{
    size_t n = json_array_size(data);
    size_t alloc = n > 0 ? n : 1;
    out->by_model_day = lg_calloc(alloc, sizeof(*out->by_model_day));
    out->by_model = lg_calloc(alloc, sizeof(*out->by_model));
    out->by_day = lg_calloc(alloc, sizeof(*out->by_day));
    if (out->by_model_day == NULL || out->by_model == NULL || out->by_day == NULL) {
        return LG_ERR_NOMEM;
    }
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        json_t *o = json_array_get(data, i);
        struct lg_usage_bucket *b = &out->by_model_day[i];
        out->n_model_day = i + 1;
        const char *day = json_string_value(json_object_get(o, "day"));
        snprintf(b->day, sizeof(b->day), "%s", day != NULL ? day : "");
        b->model = jstr(o, "model", &ok);
        b->requests = (uint64_t)jint(o, "requests");
        b->errors = (uint64_t)jint(o, "errors");
        b->prompt_tokens = jint(o, "prompt_tokens");
        b->completion_tokens = jint(o, "completion_tokens");
        b->cached_tokens = jint(o, "cached_tokens");
        b->total_tokens = jint(o, "total_tokens");
        b->cost_nano_usd = jint(o, "cost_nano_usd");
        if (ok && (merge_into(out->by_model, &out->n_model, b, true) != LG_OK ||
                   merge_into(out->by_day, &out->n_day, b, false) != LG_OK)) {
            ok = false;
        }
        bucket_add(&out->total, b);
    }
    if (!ok) {
        return LG_ERR_NOMEM;
    }
    qsort(out->by_model, out->n_model, sizeof(*out->by_model), cmp_model);
    return LG_OK;
}

int lg_usage_get_usage_sync(const struct lg_chclient_opts *ch, const char *user_id,
                            int64_t from_ms, int64_t to_ms, struct lg_usage_report *out)
{
    memset(out, 0, sizeof(*out));
    if (lg_usage_check_user_id(user_id) != LG_OK || from_ms < 0 || to_ms <= from_ms) {
        return LG_ERR_INVALID;
    }
    struct lg_buf sql;
    lg_buf_init(&sql, LG_CHCLIENT_MAX_URL_BYTES);
    int rc = lg_buf_append_str(&sql,
        "SELECT toString(toDate(start_time)) AS day, model, count() AS requests, "
        "sum(status != 'success') AS errors, sum(prompt_tokens) AS prompt_tokens, "
        "sum(completion_tokens) AS completion_tokens, sum(cached_tokens) AS cached_tokens, "
        "sum(total_tokens) AS total_tokens, sum(estimated_cost_nano_usd) AS cost_nano_usd "
        "FROM llm_requests FINAL WHERE user_id = ");
    if (rc == LG_OK) {
        rc = lg_chclient_quote(&sql, user_id, strlen(user_id));
    }
    if (rc == LG_OK) {
        rc = lg_buf_appendf(&sql,
                            " AND start_time_ms >= %" PRId64 " AND start_time_ms < %" PRId64
                            " GROUP BY day, model ORDER BY day, model LIMIT %u FORMAT JSON",
                            from_ms, to_ms, (unsigned)LG_USAGE_MAX_BUCKETS);
    }
    json_t *root = NULL, *data = NULL;
    if (rc == LG_OK) {
        rc = run_json(ch, (const char *)sql.data, &root, &data);
    }
    lg_buf_deinit(&sql);
    if (rc != LG_OK) {
        return rc;
    }
    rc = build_report(data, out);
    json_decref(root);
    if (rc != LG_OK) {
        lg_usage_report_free(out);
    }
    return rc;
}

/* ---- the worker ----------------------------------------------------------------------- */

struct usage_job {
    struct usage_job *next;
    bool is_logs;
    char *user_id;
    uint32_t limit, page;
    int64_t from_ms, to_ms; /* GetUsage's range, or ListLogs' filter range */
    char *model, *conversation_id; /* ListLogs' filter, owned; NULL = any */
    lg_usage_logs_cb logs_cb;
    lg_usage_report_cb report_cb;
    void *user_data;
};

struct lg_usage {
    char *url, *user, *key, *ca_file;
    struct lg_chclient_opts ch;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct usage_job *head, *tail; /* guarded by mu */
    size_t pending;
    bool stopping;
};

static void free_job(struct usage_job *j)
{
    lg_free(j->user_id);
    lg_free(j->model);
    lg_free(j->conversation_id);
    lg_free(j);
}

static void run_job(lg_usage *u, struct usage_job *j, int forced_rc)
{
    if (j->is_logs) {
        struct lg_usage_logs logs = {NULL, 0};
        struct lg_usage_log_filter f = {j->model, j->conversation_id, j->from_ms, j->to_ms};
        int rc = forced_rc != LG_OK ? forced_rc
                                    : lg_usage_list_logs_filtered_sync(&u->ch, j->user_id,
                                                                       j->limit, j->page, &f,
                                                                       &logs);
        j->logs_cb(rc, &logs, j->user_data);
    } else {
        struct lg_usage_report rep;
        memset(&rep, 0, sizeof(rep));
        int rc = forced_rc != LG_OK ? forced_rc
                                    : lg_usage_get_usage_sync(&u->ch, j->user_id, j->from_ms,
                                                              j->to_ms, &rep);
        j->report_cb(rc, &rep, j->user_data);
    }
    free_job(j);
}

static void *worker(void *arg)
{
    lg_usage *u = arg;
    pthread_mutex_lock(&u->mu);
    for (;;) {
        while (u->head == NULL && !u->stopping) {
            pthread_cond_wait(&u->cv, &u->mu);
        }
        struct usage_job *j = u->head;
        if (j == NULL) {
            break;
        }
        u->head = j->next;
        if (u->head == NULL) {
            u->tail = NULL;
        }
        u->pending--;
        bool stopping = u->stopping;
        pthread_mutex_unlock(&u->mu);
        run_job(u, j, stopping ? LG_ERR_CLOSED : LG_OK);
        pthread_mutex_lock(&u->mu);
    }
    pthread_mutex_unlock(&u->mu);
    return NULL;
}

int lg_usage_new(lg_usage **out, const struct lg_chclient_opts *ch)
{
    lg_usage *u = lg_calloc(1, sizeof(*u));
    if (u == NULL) {
        return LG_ERR_NOMEM;
    }
    u->url = lg_strdup(ch->url != NULL ? ch->url : "");
    u->user = ch->user != NULL ? lg_strdup(ch->user) : NULL;
    u->key = ch->key != NULL ? lg_strdup(ch->key) : NULL;
    u->ca_file = ch->ca_file != NULL ? lg_strdup(ch->ca_file) : NULL;
    if (u->url == NULL || (ch->user != NULL && u->user == NULL) ||
        (ch->key != NULL && u->key == NULL) || (ch->ca_file != NULL && u->ca_file == NULL)) {
        goto out_free_strings;
    }
    u->ch = *ch;
    u->ch.url = u->url;
    u->ch.user = u->user;
    u->ch.key = u->key;
    u->ch.ca_file = u->ca_file;
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    if (pthread_create(&u->th, NULL, worker, u) != 0) {
        pthread_cond_destroy(&u->cv);
        pthread_mutex_destroy(&u->mu);
        goto out_free_strings;
    }
    *out = u;
    return LG_OK;

out_free_strings:
    lg_free(u->url);
    lg_free(u->user);
    lg_free(u->key);
    lg_free(u->ca_file);
    lg_free(u);
    return LG_ERR_NOMEM;
}

void lg_usage_free(lg_usage *u)
{
    if (u == NULL) {
        return;
    }
    pthread_mutex_lock(&u->mu);
    u->stopping = true;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
    pthread_join(u->th, NULL);
    pthread_cond_destroy(&u->cv);
    pthread_mutex_destroy(&u->mu);
    lg_free(u->url);
    lg_free(u->user);
    lg_free(u->key);
    lg_free(u->ca_file);
    lg_free(u);
}

static int submit(lg_usage *u, struct usage_job *j)
{
    pthread_mutex_lock(&u->mu);
    int rc = LG_OK;
    if (u->stopping) {
        rc = LG_ERR_CLOSED;
    } else if (u->pending >= LG_USAGE_MAX_PENDING) {
        rc = LG_ERR_EXHAUSTED;
    } else {
        if (u->tail != NULL) {
            u->tail->next = j;
        } else {
            u->head = j;
        }
        u->tail = j;
        u->pending++;
        pthread_cond_signal(&u->cv);
    }
    pthread_mutex_unlock(&u->mu);
    if (rc != LG_OK) {
        free_job(j);
    }
    return rc;
}

static struct usage_job *new_job(const char *user_id)
{
    if (lg_usage_check_user_id(user_id) != LG_OK) {
        return NULL;
    }
    struct usage_job *j = lg_calloc(1, sizeof(*j));
    if (j == NULL) {
        return NULL;
    }
    j->user_id = lg_strdup(user_id);
    if (j->user_id == NULL) {
        lg_free(j);
        return NULL;
    }
    return j;
}

int lg_usage_list_logs(lg_usage *u, const char *user_id, uint32_t limit, uint32_t page,
                       lg_usage_logs_cb cb, void *user_data)
{
    return lg_usage_list_logs_filtered(u, user_id, limit, page, NULL, cb, user_data);
}

/* A copy of an optional filter string (NULL for absent or empty); false on NOMEM. */
static bool dup_filter_str(const char *v, char **out)
{
    *out = v != NULL && v[0] != '\0' ? lg_strdup(v) : NULL;
    return *out != NULL || v == NULL || v[0] == '\0';
}

int lg_usage_list_logs_filtered(lg_usage *u, const char *user_id, uint32_t limit,
                                uint32_t page, const struct lg_usage_log_filter *filter,
                                lg_usage_logs_cb cb, void *user_data)
{
    if (lg_usage_check_user_id(user_id) != LG_OK || limit == 0 || limit > LG_USAGE_MAX_LIMIT ||
        !filter_ok(filter)) {
        return LG_ERR_INVALID;
    }
    struct usage_job *j = new_job(user_id);
    if (j == NULL) {
        return LG_ERR_NOMEM;
    }
    if (filter != NULL) {
        if (!dup_filter_str(filter->model, &j->model) ||
            !dup_filter_str(filter->conversation_id, &j->conversation_id)) {
            free_job(j);
            return LG_ERR_NOMEM;
        }
        j->from_ms = filter->since_ms;
        j->to_ms = filter->until_ms;
    }
    j->is_logs = true;
    j->limit = limit;
    j->page = page;
    j->logs_cb = cb;
    j->user_data = user_data;
    return submit(u, j);
}

int lg_usage_get_usage(lg_usage *u, const char *user_id, int64_t from_ms, int64_t to_ms,
                       lg_usage_report_cb cb, void *user_data)
{
    if (lg_usage_check_user_id(user_id) != LG_OK || to_ms <= from_ms) {
        return LG_ERR_INVALID;
    }
    struct usage_job *j = new_job(user_id);
    if (j == NULL) {
        return LG_ERR_NOMEM;
    }
    j->from_ms = from_ms;
    j->to_ms = to_ms;
    j->report_cb = cb;
    j->user_data = user_data;
    return submit(u, j);
}
