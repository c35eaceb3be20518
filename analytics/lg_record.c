/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_record.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

int lg_record_new(struct lg_record **out)
{
    struct lg_record *r = lg_calloc(1, sizeof(*r));
    if (r == NULL) {
        return LG_ERR_NOMEM;
    }
    r->time_to_first_token_ms = -1;
    *out = r;
    return LG_OK;
}

/* The string fields, in one place so free/dup cannot miss one. */
#define LG_RECORD_STRINGS(X)                                                                   \
    X(request_id)                                                                              \
    X(stream_id)                                                                               \
    X(user_id)                                                                                 \
    X(conversation_id)                                                                         \
    X(agent_id)                                                                                \
    X(provider_config_id)                                                                      \
    X(provider)                                                                                \
    X(model)                                                                                   \
    X(request_messages)                                                                        \
    X(request_params)                                                                          \
    X(response_content)                                                                        \
    X(finish_reason)                                                                           \
    X(error_message)                                                                           \
    X(metadata)

void lg_record_free(struct lg_record *r)
{
    if (r == NULL) {
        return;
    }
#define LG_RECORD_FREE_FIELD(f) lg_free(r->f);
    LG_RECORD_STRINGS(LG_RECORD_FREE_FIELD)
#undef LG_RECORD_FREE_FIELD
    lg_free(r);
}

int lg_record_set_str(char **field, const char *p, size_t len)
{
    char *copy = NULL;
    if (p != NULL) {
        copy = lg_strndup(p, len);
        if (copy == NULL) {
            return LG_ERR_NOMEM;
        }
    }
    lg_free(*field);
    *field = copy;
    return LG_OK;
}

int lg_record_dup(const struct lg_record *r, struct lg_record **out)
{
    struct lg_record *c = lg_malloc(sizeof(*c));
    if (c == NULL) {
        return LG_ERR_NOMEM;
    }
    *c = *r;
#define LG_RECORD_CLEAR_FIELD(f) c->f = NULL;
    LG_RECORD_STRINGS(LG_RECORD_CLEAR_FIELD)
#undef LG_RECORD_CLEAR_FIELD
#define LG_RECORD_DUP_FIELD(f)                                                                 \
    if (r->f != NULL && lg_record_set_str(&c->f, r->f, strlen(r->f)) != LG_OK) {               \
        goto out_free_copy;                                                                    \
    }
    LG_RECORD_STRINGS(LG_RECORD_DUP_FIELD)
#undef LG_RECORD_DUP_FIELD
    *out = c;
    return LG_OK;

out_free_copy:
    lg_record_free(c);
    return LG_ERR_NOMEM;
}

const char *lg_record_status_name(enum lg_record_status s)
{
    switch (s) {
    case LG_RECORD_STATUS_SUCCESS:
        return "success";
    case LG_RECORD_STATUS_ERROR:
        return "error";
    case LG_RECORD_STATUS_CANCELLED:
        return "cancelled";
    case LG_RECORD_STATUS_TIMEOUT:
        return "timeout";
    }
    return "error";
}

const char *lg_record_usage_source_name(enum lg_record_usage_source s)
{
    return s == LG_RECORD_USAGE_ESTIMATED ? "estimated" : "reported";
}

/* Appends ,"<key>": (the keys are our own literals: nothing to escape). Plain appends, not
 * lg_buf_appendf: vfprintf was the largest single cost of encoding a row (perf of the
 * shipper benchmark: ~20% of the shipping thread in vfprintf and its helpers). */
static int encode_key(struct lg_buf *b, const char *key)
{
    int rc = lg_buf_append_str(b, ",\"");
    if (rc == LG_OK) {
        rc = lg_buf_append_str(b, key);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(b, "\":");
    }
    return rc;
}

static int encode_str(struct lg_buf *b, const char *key, const char *val, const char *def)
{
    int rc = encode_key(b, key);
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(b, '"');
    }
    if (rc != LG_OK) {
        return rc;
    }
    if (val == NULL) {
        val = def;
    }
    rc = lg_buf_append_json_escaped(b, (const uint8_t *)val, strlen(val));
    if (rc != LG_OK) {
        return rc;
    }
    return lg_buf_append_byte(b, '"');
}

/* ,"<key>":<v> in decimal, as %lld would print it (INT64_MIN included). */
static int encode_int(struct lg_buf *b, const char *key, int64_t v)
{
    int rc = encode_key(b, key);
    if (rc != LG_OK) {
        return rc;
    }
    char digits[24]; /* 19 digits of 2^63 and a sign */
    size_t n = sizeof(digits);
    /* Negated as unsigned so INT64_MIN does not overflow. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[--n] = (char)('0' + (u % 10u));
        u /= 10u;
    } while (u != 0);
    if (v < 0) {
        digits[--n] = '-';
    }
    return lg_buf_append(b, digits + n, sizeof(digits) - n);
}

/* ,"<key>":0 or 1. */
static int encode_flag(struct lg_buf *b, const char *key, bool v)
{
    return encode_int(b, key, v ? 1 : 0);
}

static int encode_ids(const struct lg_record *r, struct lg_buf *b)
{
    int rc = lg_buf_append_str(b, "{\"request_id\":\"");
    const char *rid = r->request_id != NULL ? r->request_id : "";
    if (rc == LG_OK) {
        rc = lg_buf_append_json_escaped(b, (const uint8_t *)rid, strlen(rid));
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(b, '"');
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "stream_id", r->stream_id, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "user_id", r->user_id, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "conversation_id", r->conversation_id, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "agent_id", r->agent_id, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "provider_config_id", r->provider_config_id, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "provider", r->provider, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "model", r->model, "");
    }
    return rc;
}

static int encode_params(const struct lg_record *r, struct lg_buf *b)
{
    /* A non-finite temperature cannot be a JSON number; it is stored as absent. */
    bool has_t = r->has_temperature && isfinite(r->temperature);
    int rc = encode_flag(b, "has_temperature", has_t);
    if (rc == LG_OK) {
        rc = lg_buf_appendf(b, ",\"temperature\":%.17g", has_t ? r->temperature : 0.0);
    }
    if (rc == LG_OK) {
        rc = encode_flag(b, "has_max_tokens", r->has_max_tokens);
    }
    if (rc == LG_OK) {
        rc = encode_int(b, "max_tokens", r->has_max_tokens ? r->max_tokens : 0);
    }
    if (rc == LG_OK) {
        rc = encode_flag(b, "stream", r->stream);
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "request_messages", r->request_messages, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "request_params", r->request_params, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "response_content", r->response_content, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "finish_reason", r->finish_reason, "");
    }
    return rc;
}

static int encode_usage(const struct lg_record *r, struct lg_buf *b)
{
    int rc = encode_int(b, "prompt_tokens", r->prompt_tokens);
    if (rc == LG_OK) {
        rc = encode_int(b, "completion_tokens", r->completion_tokens);
    }
    if (rc == LG_OK) {
        rc = encode_int(b, "cached_tokens", r->cached_tokens);
    }
    if (rc == LG_OK) {
        rc = encode_int(b, "total_tokens", r->total_tokens);
    }
    if (rc == LG_OK) {
        rc = encode_int(b, "estimated_cost_nano_usd", r->estimated_cost_nano_usd);
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "usage_source", lg_record_usage_source_name(r->usage_source), "");
    }
    if (rc == LG_OK) {
        rc = encode_flag(b, "price_missing", r->price_missing);
    }
    return rc;
}

static int encode_outcome(const struct lg_record *r, struct lg_buf *b)
{
    int rc = encode_int(b, "start_time_ms", r->start_time_ms);
    if (rc == LG_OK) {
        rc = encode_int(b, "end_time_ms", r->end_time_ms);
    }
    if (rc == LG_OK) {
        rc = encode_int(b, "duration_ms", r->duration_ms);
    }
    if (rc == LG_OK) {
        rc = encode_int(b, "time_to_first_token_ms", r->time_to_first_token_ms);
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "status", lg_record_status_name(r->status), "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "error_message", r->error_message, "");
    }
    if (rc == LG_OK) {
        rc = encode_str(b, "metadata", r->metadata, "{}");
    }
    return rc;
}

int lg_record_encode_row(const struct lg_record *r, struct lg_buf *out)
{
    size_t mark = out->len;
    int rc = encode_ids(r, out);
    if (rc == LG_OK) {
        rc = encode_params(r, out);
    }
    if (rc == LG_OK) {
        rc = encode_usage(r, out);
    }
    if (rc == LG_OK) {
        rc = encode_outcome(r, out);
    }
    if (rc != LG_OK) {
        /* Leave |out| as it was: a half row must never reach a batch. */
        out->len = mark;
        if (out->data != NULL) {
            out->data[mark] = 0;
        }
    }
    return rc;
}

int lg_record_encode_json(const struct lg_record *r, struct lg_buf *out)
{
    size_t mark = out->len;
    int rc = lg_record_encode_row(r, out);
    if (rc == LG_OK) {
        rc = lg_buf_append(out, "}\n", 2);
        if (rc != LG_OK) {
            out->len = mark;
            if (out->data != NULL) {
                out->data[mark] = 0;
            }
        }
    }
    return rc;
}

void lg_record_sink_close(struct lg_record_sink *s)
{
    if (s->close != NULL) {
        s->close(s->impl);
    }
    s->enqueue = NULL;
    s->close = NULL;
    s->ticket = NULL;
    s->written = NULL;
    s->impl = NULL;
}

/* ---- JSON-lines file sink ------------------------------------------------------------ */

struct file_sink {
    pthread_mutex_t mu; /* serialises writes so lines never interleave */
    int fd;
};

static int file_sink_enqueue(void *impl, struct lg_record *r)
{
    struct file_sink *fs = impl;
    struct lg_buf b;
    lg_buf_init(&b, LG_RECORD_MAX_ROW_BYTES);
    int rc = lg_record_encode_json(r, &b);
    if (rc != LG_OK) {
        goto out_deinit;
    }
    pthread_mutex_lock(&fs->mu);
    size_t off = 0;
    while (off < b.len) {
        ssize_t n = write(fs->fd, b.data + off, b.len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = LG_ERR_IO;
            break;
        }
        off += (size_t)n;
    }
    pthread_mutex_unlock(&fs->mu);
    if (rc == LG_OK) {
        lg_record_free(r);
    }
out_deinit:
    lg_buf_deinit(&b);
    return rc;
}

static void file_sink_close(void *impl)
{
    struct file_sink *fs = impl;
    close(fs->fd);
    pthread_mutex_destroy(&fs->mu);
    lg_free(fs);
}

int lg_record_file_sink_open(struct lg_record_sink *out, const char *path)
{
    struct file_sink *fs = lg_calloc(1, sizeof(*fs));
    if (fs == NULL) {
        return LG_ERR_NOMEM;
    }
    fs->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fs->fd < 0) {
        lg_free(fs);
        return LG_ERR_IO;
    }
    pthread_mutex_init(&fs->mu, NULL);
    out->enqueue = file_sink_enqueue;
    out->close = file_sink_close;
    out->ticket = NULL; /* each record is written by enqueue itself */
    out->written = NULL;
    out->impl = fs;
    return LG_OK;
}
