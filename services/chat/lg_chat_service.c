/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_service.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>

#include "llmgate/chat/v1/chat.pb-c.h"

#include "lg_buf.h"
#include "lg_chat_config.h"
#include "lg_chat_demo.h"
#include "lg_chat_openai.h"
#include "lg_chat_price.h"
#include "lg_chat_provider.h"
#include "lg_chat_registry.h"
#include "lg_chat_replay.h"
#include "lg_chat_pb.h"
#include "lg_chat_request.h"
#include "lg_err.h"
#include "lg_grpc_server.h"
#include "lg_limits.h"
#include "lg_mem.h"
#include "lg_time.h"
#include "lg_metrics.h"
#include "lg_record.h"
#include "lg_usage.h"

#define LG_LOG_MODULE "chat"
#include "lg_log.h"

#define CHAT_PATH_STREAM   "/llmgate.chat.v1.ChatService/StreamChat"
#define CHAT_PATH_COMPLETE "/llmgate.chat.v1.ChatService/Complete"
#define CHAT_PATH_RESUME   "/llmgate.chat.v1.ChatService/ResumeStream"
#define CHAT_PATH_CANCEL   "/llmgate.chat.v1.ChatService/CancelStream"
#define USAGE_PATH_LIST    "/llmgate.chat.v1.UsageService/ListLogs"
#define USAGE_PATH_GET     "/llmgate.chat.v1.UsageService/GetUsage"

/* Metadata key carrying the caller's identity, set by trusted front ends (the SSE adapter). */
#define CHAT_USER_METADATA "x-user-id"
/* StreamChat with this metadata set to "1" ends the call with OK right after the start event
 * while generation goes on (the grace period starts, as when a caller leaves). An edge that
 * only needs the stream id (llmgate-sse's POST /v1/chat/streams) uses it instead of
 * cancelling the call: a cancel is an RST_STREAM, and at a thousand streams those trip the
 * server's rapid-reset limit (GOAWAY), after which the client's retries of calls that had in
 * fact started were billed twice. */
#define CHAT_DETACH_METADATA "x-llmgate-detach"
/* A client that resets its call this close to its deadline (or later) has timed out: its
 * own deadline timer races the server's, so a RST_STREAM(CANCEL) a few ms early is the
 * same event as the server-side DEADLINE (grpc-timeout is sent rounded, after a delay). */
#define CHAT_DEADLINE_SLACK_MS 100
/* ListLogs page size when the request sets none. */
#define CHAT_USAGE_DEFAULT_LIMIT 50u
/* GetUsage without until_unix counts up to now plus a day (clock skew, time zones). */
#define CHAT_USAGE_FUTURE_MS 86400000
/* Longest reason text produced by validation and resolution. */
#define CHAT_WHY_BYTES 256

typedef Llmgate__Chat__V1__ChatRequest pb_request;
typedef Llmgate__Chat__V1__ChatEvent pb_event;

/* First field of every object used as call user data, so on_close can tell them apart. */
enum chat_tag {
    CHAT_TAG_SERVICE = 1,
    CHAT_TAG_SUB = 2,
    CHAT_TAG_STREAM = 3,
    CHAT_TAG_USAGE = 4,
};

enum stream_state {
    STREAM_GENERATING = 0, /* the upcall runs */
    STREAM_FINISHED = 1,   /* the record was written; the buffer is kept for resumers */
};

struct chat_stream;

/* A reader of a stream: the StreamChat call that started it, or a ResumeStream call. */
struct chat_sub {
    enum chat_tag tag; /* CHAT_TAG_SUB */
    struct chat_sub *next;
    struct chat_stream *st; /* NULL once the stream is gone */
    lg_grpc_call *call;
    uint64_t next_seq; /* next event to send */
    uint64_t detach_after_seq; /* detached StreamChat: finish OK once this event went out;
                                  0 = stay until the stream ends */
    bool blocked;      /* send queue full: waiting for on_writable */
    bool finished;     /* lg_grpc_call_finish was called */
};

struct chat_stream {
    enum chat_tag tag;                       /* CHAT_TAG_STREAM */
    struct chat_stream *prev, *next;         /* every stream of the service */
    struct chat_stream *fin_prev, *fin_next; /* finished registered streams, oldest first */
    bool in_fin;                             /* linked in the finished list */
    lg_chat_service *svc;
    char id[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1];
    char request_id[LG_CHAT_REGISTRY_ID_LEN + 1];
    char *user_id;   /* owner, for logs */
    bool registered; /* in the registry (StreamChat); Complete streams are not */
    bool dead;       /* finished and unregistered: freed by the next sweep */
    enum stream_state state;
    int final_err;             /* LG_OK, or how generation failed (readers' final status) */
    const char *final_message; /* static text or NULL, for the readers' grpc-message */
    const char *model;         /* requested model name (borrowed from the config) */
    struct lg_chat_upcall *up; /* NULL once on_done fired or after a cancel */
    lg_chat_replay *replay;    /* StreamChat only */
    uint64_t last_seq;
    struct chat_sub *subs;
    size_t n_subs;
    lg_grpc_call *unary;   /* Complete: the call to answer; NULL once it left */
    struct lg_record *rec; /* filled at start, handed to the sink at the end */
    struct chat_cfg *cfg;  /* the configuration |prov| and |model| come from */
    const struct lg_chat_provider_cfg *prov;
    struct lg_buf response; /* answer text (capped at LG_CHAT_MAX_RESPONSE_BYTES) */
    bool response_truncated;
    uint32_t prompt_tokens_est;
    uint32_t deltas;
    bool had_content;
    int64_t start_mono_ms;
    int64_t first_token_mono_ms; /* -1 before the first token */
    int64_t in_us;               /* monotonic: request handling began */
    int64_t pre_upstream_us;     /* time from in_us until the upstream call was handed off */
    /* Durable answers: the final event and the unary answer wait until the record is in the
     * spool file (the sink's ticket), so a kill -9 cannot lose the record of a call whose
     * client saw it end. */
    bool held;
    uint64_t ticket;
    int64_t held_since_ms;
    struct chat_stream *held_prev, *held_next;
    struct chat_unary_stash *stash; /* Complete: the answer to give once released */
};

/* A Complete answer kept while its record is not yet written (strings copied). */
struct chat_unary_stash {
    int err;
    char *message;
    char *finish_reason;
    struct lg_chat_usage usage;
    uint64_t cost;
    bool reported;
};

/* A provider/price configuration and the streams using it. SIGHUP swaps in a new one
 * (lg_chat_service_set_config); a stream keeps the one it started with (its provider, model
 * name and prices are borrowed from it), so an old configuration is freed only when its last
 * stream is gone. */
struct chat_cfg {
    const lg_chat_config *cfg;
    lg_chat_config *owned; /* NULL for opts.cfg, which the caller owns */
    size_t refs;           /* streams using it, + 1 while it is the current one */
    struct chat_cfg *prev, *next;
};

struct lg_chat_service {
    enum chat_tag tag;         /* CHAT_TAG_SERVICE */
    struct chat_cfg *cfg;      /* current configuration (new streams) */
    struct chat_cfg *cfg_list; /* every configuration still referenced */
    struct event_base *base;
    lg_grpc_server *srv;
    struct lg_chat_service_opts opts;
    lg_chat_registry *reg;
    struct chat_stream *streams;
    size_t n_streams;
    /* Finished, still-registered streams in the order they finished: when the registry is
     * full, the oldest of them is evicted to make room (retention is a cache; a generating
     * stream is never evicted). */
    struct chat_stream *fin_head, *fin_tail;
    struct event *sweep;
    struct lg_buf scratch; /* one serialized event at a time */
    lg_metrics_series *m_started;
    lg_metrics_series *m_tokens;
    lg_metrics_series *m_records;
    lg_metrics_series *m_record_drops;
    lg_metrics_series *m_overhead;        /* gateway's own share of time to first token */
    lg_metrics_series *m_streams;         /* streams alive (gauge) */
    lg_metrics_family *m_calls;           /* upstream calls by provider config and status */
    lg_metrics_series *m_reloads;         /* configuration reloads applied */
    lg_metrics_series *m_open;            /* streams generating (gauge) */
    lg_metrics_family *m_ttft;            /* time to first token by provider config (histogram) */
    lg_metrics_family *m_upstream_errors; /* upstream failures by provider config and kind */
    /* UsageService results come back on the lg_usage worker thread; they are queued here
     * and handed to the loop by activating |usage_ev| (the base is thread-aware). */
    pthread_mutex_t usage_lock;
    struct usage_job *usage_ready; /* guarded by usage_lock */
    struct event *usage_ev;
    /* Streams whose final answer waits for their record to be written, oldest first, and
     * the timer that polls the sink for them (armed only while the list is not empty). */
    struct chat_stream *held_head, *held_tail;
    struct event *held_ev;
    /* The sink activates |held_ev| when records may have been written (set_notify): the
     * timer then only enforces LG_CHAT_DURABLE_WAIT_MS, at a coarse interval. */
    bool held_notified;
    lg_metrics_series *m_unwritten_answers;
};

/* ---- small helpers --------------------------------------------------------------------- */

static struct lg_log_ctx chat_ctx(const struct chat_stream *st)
{
    struct lg_log_ctx ctx = {0, st->id, st->request_id, st->user_id};
    return ctx;
}

static void chat_finish(lg_grpc_call *call, int err, const char *msg)
{
    lg_grpc_call_finish(call, err == LG_OK ? LG_GRPC_OK : lg_err_grpc_status(err), msg);
}

/* ---- records --------------------------------------------------------------------------- */

static int chat_set(char **field, const char *s)
{
    return s != NULL && s[0] != '\0' ? lg_record_set_str(field, s, strlen(s)) : LG_OK;
}

/* Keeps |len| bytes of |p| in |field| according to the body setting. */
static int chat_set_body(const lg_chat_service *svc, char **field, const char *p, size_t len)
{
    switch (svc->opts.body_mode) {
    case LG_CHAT_BODY_NONE:
        return LG_OK;
    case LG_CHAT_BODY_TRUNCATED:
        if (len > svc->opts.body_max_bytes) {
            len = svc->opts.body_max_bytes;
            /* Do not cut a UTF-8 sequence in half. */
            while (len > 0 && ((unsigned char)p[len] & 0xC0u) == 0x80u) {
                len--;
            }
        }
        break;
    case LG_CHAT_BODY_FULL:
        break;
    }
    return lg_record_set_str(field, p, len);
}

static int chat_record_params(struct lg_record *rec, const struct lg_chat_request *req,
                              const char *upstream_model)
{
    struct lg_buf b;
    lg_buf_init(&b, LG_CHAT_MAX_ID_BYTES * 2 + 128);
    int rc = lg_buf_append_str(&b, "{\"upstream_model\":\"");
    if (rc == LG_OK) {
        rc =
            lg_buf_append_json_escaped(&b, (const uint8_t *)upstream_model, strlen(upstream_model));
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(&b, "\"");
    }
    if (rc == LG_OK && req->has_temperature) {
        rc = lg_buf_appendf(&b, ",\"temperature\":%.17g", req->temperature);
    }
    if (rc == LG_OK && req->has_max_tokens) {
        rc = lg_buf_appendf(&b, ",\"max_tokens\":%u", req->max_tokens);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(&b, "}");
    }
    if (rc == LG_OK) {
        rc = lg_record_set_str(&rec->request_params, (const char *)b.data, b.len);
    }
    lg_buf_deinit(&b);
    return rc;
}

static int chat_record_bodies(const lg_chat_service *svc, struct lg_record *rec,
                              const struct lg_chat_request *req)
{
    struct lg_buf b;
    lg_buf_init(&b, LG_CHAT_UPSTREAM_MAX_REQUEST_BYTES);
    int rc = LG_OK;
    if (svc->opts.body_mode != LG_CHAT_BODY_NONE) {
        rc = lg_chat_request_append_messages_json(req, &b);
        if (rc == LG_OK) {
            rc = chat_set_body(svc, &rec->request_messages, (const char *)b.data, b.len);
        }
    }
    lg_buf_reset(&b);
    if (rc == LG_OK && req->n_metadata > 0) {
        rc = lg_chat_request_append_metadata_json(req, &b);
        if (rc == LG_OK) {
            rc = lg_record_set_str(&rec->metadata, (const char *)b.data, b.len);
        }
    }
    lg_buf_deinit(&b);
    return rc;
}

/* Fills the request half of the record. */
static int chat_record_start(struct chat_stream *st, const struct lg_chat_request *req,
                             const struct lg_chat_model_cfg *model, bool stream)
{
    int rc = lg_record_new(&st->rec);
    if (rc != LG_OK) {
        return rc;
    }
    struct lg_record *rec = st->rec;
    rec->stream = stream;
    rec->has_temperature = req->has_temperature;
    rec->temperature = req->temperature;
    rec->has_max_tokens = req->has_max_tokens;
    rec->max_tokens = req->max_tokens;
    rec->start_time_ms = lg_time_wall_ms();
    rc = chat_set(&rec->request_id, st->request_id);
    if (rc == LG_OK && stream) {
        rc = chat_set(&rec->stream_id, st->id);
    }
    if (rc == LG_OK) {
        rc = chat_set(&rec->user_id, req->user_id);
    }
    if (rc == LG_OK) {
        rc = chat_set(&rec->conversation_id, req->conversation_id);
    }
    if (rc == LG_OK) {
        rc = chat_set(&rec->agent_id, req->agent_id);
    }
    if (rc == LG_OK) {
        rc = chat_set(&rec->provider_config_id, st->prov->id);
    }
    if (rc == LG_OK) {
        rc = chat_set(&rec->provider, lg_chat_config_kind_name(st->prov->kind));
    }
    if (rc == LG_OK) {
        rc = chat_set(&rec->model, model->name);
    }
    if (rc == LG_OK) {
        rc = chat_record_params(rec, req, model->upstream_model);
    }
    if (rc == LG_OK) {
        rc = chat_record_bodies(st->svc, rec, req);
    }
    return rc;
}

/* Completes the record with the outcome and hands it to the sink. Called exactly once per
 * stream; |usage| is exact when |reported|. */
static void chat_record_finish(struct chat_stream *st, enum lg_record_status status,
                               const char *finish_reason, const char *error_message,
                               const struct lg_chat_usage *usage, bool reported, uint64_t cost,
                               bool priced)
{
    lg_chat_service *svc = st->svc;
    struct lg_record *rec = st->rec;
    st->rec = NULL;
    if (rec == NULL) {
        return;
    }
    int64_t now = lg_time_mono_ms();
    rec->status = status;
    rec->prompt_tokens = usage->prompt_tokens;
    rec->completion_tokens = usage->completion_tokens;
    rec->cached_tokens = usage->cached_tokens;
    rec->total_tokens = (int64_t)usage->prompt_tokens + usage->completion_tokens;
    rec->usage_source = reported ? LG_RECORD_USAGE_REPORTED : LG_RECORD_USAGE_ESTIMATED;
    rec->estimated_cost_nano_usd = (int64_t)cost;
    rec->price_missing = !priced;
    rec->duration_ms = now - st->start_mono_ms;
    rec->end_time_ms = rec->start_time_ms + rec->duration_ms;
    rec->time_to_first_token_ms =
        st->first_token_mono_ms >= 0 ? st->first_token_mono_ms - st->start_mono_ms : -1;
    /* Allocation failures below leave a field empty; the record is still written. */
    (void)chat_set(&rec->finish_reason, finish_reason);
    (void)chat_set(&rec->error_message, error_message);
    (void)chat_set_body(svc, &rec->response_content, (const char *)st->response.data,
                        st->response.len);
    struct lg_log_ctx ctx = chat_ctx(st);
    lg_log(LG_LOG_INFO, &ctx, "record",
           "status=%s finish=%s prompt=%u completion=%u cached=%u cost_nusd=%llu usage=%s "
           "duration_ms=%lld",
           lg_record_status_name(status), finish_reason != NULL ? finish_reason : "",
           usage->prompt_tokens, usage->completion_tokens, usage->cached_tokens,
           (unsigned long long)cost, reported ? "reported" : "estimated",
           (long long)rec->duration_ms);
    int rc = svc->opts.sink != NULL ? lg_record_sink_enqueue(svc->opts.sink, rec) : LG_ERR_CLOSED;
    if (rc != LG_OK) {
        lg_log(LG_LOG_ERROR, &ctx, "record_dropped", "sink refused the record: %s",
               lg_err_name(rc));
        lg_metrics_counter_inc(svc->m_record_drops);
        lg_record_free(rec);
        return;
    }
    lg_metrics_counter_inc(svc->m_records);
    struct lg_record_sink *sink = svc->opts.sink;
    if (sink->ticket != NULL && sink->written != NULL) {
        st->ticket = sink->ticket(sink->impl);
        st->held = !sink->written(sink->impl, st->ticket);
    }
}

/* Counts the call under {provider=<config id>, status=<record status>}. Provider ids come
 * from the config (at most LG_CHAT_MAX_PROVIDERS), so the label set stays small. */
static void chat_count_call(lg_chat_service *svc, const struct chat_stream *st,
                            enum lg_record_status status)
{
    if (svc->m_calls == NULL) {
        return;
    }
    const char *values[] = {st->prov->id, lg_record_status_name(status)};
    lg_metrics_series *series = NULL;
    if (lg_metrics_family_with_labels(svc->m_calls, values, &series) == LG_OK) {
        lg_metrics_counter_inc(series);
    }
}

/* The kind label of an upstream failure: a small fixed set (lg_err codes the providers end
 * with), never upstream text. */
static const char *chat_upstream_error_kind(int err)
{
    switch (err) {
    case LG_ERR_TIMEOUT:
        return "timeout";
    case LG_ERR_UNAVAILABLE:
        return "unavailable";
    case LG_ERR_EXHAUSTED:
        return "rate_limited";
    case LG_ERR_UNAUTHENTICATED:
    case LG_ERR_PERMISSION:
        return "auth";
    case LG_ERR_MALFORMED:
        return "malformed";
    case LG_ERR_INVALID:
    case LG_ERR_NOT_FOUND:
        return "rejected";
    case LG_ERR_UPSTREAM:
        return "upstream";
    default:
        return "other";
    }
}

/* Counts a call that failed on the provider's side (not a client cancel or our deadline)
 * under {provider=<config id>, kind}. */
static void chat_count_upstream_error(lg_chat_service *svc, const struct chat_stream *st, int err)
{
    if (svc->m_upstream_errors == NULL) {
        return;
    }
    const char *values[] = {st->prov->id, chat_upstream_error_kind(err)};
    lg_metrics_series *series = NULL;
    if (lg_metrics_family_with_labels(svc->m_upstream_errors, values, &series) == LG_OK) {
        lg_metrics_counter_inc(series);
    }
}

/* Observes request start to first content token, per provider config id. */
static void chat_observe_ttft(lg_chat_service *svc, const struct chat_stream *st, int64_t ms)
{
    if (svc->m_ttft == NULL) {
        return;
    }
    const char *values[] = {st->prov->id};
    lg_metrics_series *series = NULL;
    if (lg_metrics_family_with_labels(svc->m_ttft, values, &series) == LG_OK) {
        lg_metrics_histogram_observe(series, (double)ms / 1e3);
    }
}

/* ---- events ---------------------------------------------------------------------------- */

static void chat_sub_pump(struct chat_sub *sub);

/* Serializes |ev| (seq and stream id are set here) into the replay buffer and wakes every
 * reader. A failure here loses the event for resumers only; it is logged. */
static void chat_emit(struct chat_stream *st, pb_event *ev)
{
    lg_chat_service *svc = st->svc;
    if (st->replay == NULL) {
        return; /* Complete: no events, only the final answer */
    }
    ev->stream_id = st->id;
    ev->seq = st->last_seq + 1;
    size_t n = llmgate__chat__v1__chat_event__get_packed_size(ev);
    lg_buf_reset(&svc->scratch);
    uint8_t *p = lg_buf_reserve(&svc->scratch, n);
    int rc = p != NULL ? LG_OK : LG_ERR_TOO_LARGE;
    if (rc == LG_OK) {
        llmgate__chat__v1__chat_event__pack(ev, p);
        rc = lg_chat_replay_append(st->replay, ev->seq, p, n);
    }
    if (rc != LG_OK) {
        struct lg_log_ctx ctx = chat_ctx(st);
        lg_log(LG_LOG_ERROR, &ctx, "event_lost", "seq=%llu bytes=%zu: %s",
               (unsigned long long)ev->seq, n, lg_err_name(rc));
        return;
    }
    st->last_seq = ev->seq;
    for (struct chat_sub *s = st->subs; s != NULL; s = s->next) {
        chat_sub_pump(s);
    }
}

static void chat_emit_start(struct chat_stream *st, const char *model)
{
    Llmgate__Chat__V1__StreamStart start = LLMGATE__CHAT__V1__STREAM_START__INIT;
    start.model = (char *)(uintptr_t)model;
    start.provider = (char *)(uintptr_t)lg_chat_config_kind_name(st->prov->kind);
    start.request_id = st->request_id;
    pb_event ev = LLMGATE__CHAT__V1__CHAT_EVENT__INIT;
    ev.event_case = LLMGATE__CHAT__V1__CHAT_EVENT__EVENT_START;
    ev.start = &start;
    chat_emit(st, &ev);
}

static void chat_fill_usage(Llmgate__Chat__V1__Usage *u, const struct lg_chat_usage *usage,
                            uint64_t cost, bool reported)
{
    u->prompt_tokens = usage->prompt_tokens;
    u->completion_tokens = usage->completion_tokens;
    u->cached_tokens = usage->cached_tokens;
    u->total_tokens = usage->prompt_tokens + usage->completion_tokens;
    u->estimated_cost_nano_usd = cost;
    u->usage_estimated = !reported;
}

/* ---- readers --------------------------------------------------------------------------- */

static void chat_stream_detach(struct chat_stream *st, struct chat_sub *sub)
{
    for (struct chat_sub **pp = &st->subs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sub) {
            *pp = sub->next;
            st->n_subs--;
            break;
        }
    }
    sub->st = NULL;
}

/* Sends what |sub| has not seen yet, until the call's send queue is full; finishes the call
 * once the stream is over and everything went out. */
static void chat_sub_pump(struct chat_sub *sub)
{
    struct chat_stream *st = sub->st;
    if (st == NULL || sub->blocked || sub->finished) {
        return;
    }
    /* A held stream's last event (done or error) waits until its record is written. */
    uint64_t last = st->held ? st->last_seq - 1 : st->last_seq;
    while (sub->next_seq <= last) {
        struct lg_slice ev;
        int rc = lg_chat_replay_get(st->replay, sub->next_seq, &ev);
        if (rc == LG_ERR_EXPIRED) {
            /* The reader fell behind the bounded buffer: its missing events are gone. */
            sub->finished = true;
            lg_grpc_call_finish(sub->call, LG_GRPC_RESOURCE_EXHAUSTED,
                                "resume_expired: reader fell behind the replay buffer");
            return;
        }
        rc = lg_grpc_call_send(sub->call, ev.ptr, ev.len);
        if (rc == LG_ERR_AGAIN) {
            sub->blocked = true;
            return;
        }
        if (rc != LG_OK) {
            return; /* the call ended; on_close detaches it */
        }
        sub->next_seq++;
        if (sub->detach_after_seq != 0 && sub->next_seq > sub->detach_after_seq) {
            sub->finished = true; /* on_close detaches it and starts the grace period */
            lg_grpc_call_finish(sub->call, LG_GRPC_OK, NULL);
            return;
        }
    }
    if (st->state == STREAM_FINISHED && !st->held) {
        /* A failure before any content ends the call with its gRPC status (after the error
         * event); once content was streamed the error event is the outcome. */
        sub->finished = true;
        int err = st->had_content ? LG_OK : st->final_err;
        chat_finish(sub->call, err, err == LG_OK ? NULL : st->final_message);
    }
}

static void chat_fin_unlink(lg_chat_service *svc, struct chat_stream *st)
{
    if (!st->in_fin) {
        return;
    }
    if (st->fin_prev != NULL) {
        st->fin_prev->fin_next = st->fin_next;
    } else {
        svc->fin_head = st->fin_next;
    }
    if (st->fin_next != NULL) {
        st->fin_next->fin_prev = st->fin_prev;
    } else {
        svc->fin_tail = st->fin_prev;
    }
    st->fin_prev = st->fin_next = NULL;
    st->in_fin = false;
}

static void chat_fin_append(lg_chat_service *svc, struct chat_stream *st)
{
    st->fin_prev = svc->fin_tail;
    st->fin_next = NULL;
    if (svc->fin_tail != NULL) {
        svc->fin_tail->fin_next = st;
    } else {
        svc->fin_head = st;
    }
    svc->fin_tail = st;
    st->in_fin = true;
}

static struct chat_cfg *chat_cfg_add(lg_chat_service *svc, const lg_chat_config *cfg,
                                     lg_chat_config *owned)
{
    struct chat_cfg *c = lg_calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->cfg = cfg;
    c->owned = owned;
    c->refs = 1;
    c->next = svc->cfg_list;
    if (svc->cfg_list != NULL) {
        svc->cfg_list->prev = c;
    }
    svc->cfg_list = c;
    return c;
}

static void chat_cfg_unref(lg_chat_service *svc, struct chat_cfg *c)
{
    if (c == NULL || --c->refs > 0) {
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        svc->cfg_list = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    lg_chat_config_free(c->owned);
    lg_free(c);
}

static void chat_held_unlink(lg_chat_service *svc, struct chat_stream *st);
static void chat_stash_free(struct chat_stream *st);

static void chat_stream_free(struct chat_stream *st)
{
    lg_chat_service *svc = st->svc;
    chat_fin_unlink(svc, st);
    chat_held_unlink(svc, st);
    chat_stash_free(st);
    while (st->subs != NULL) {
        chat_stream_detach(st, st->subs);
    }
    if (st->prev != NULL) {
        st->prev->next = st->next;
    } else {
        svc->streams = st->next;
    }
    if (st->next != NULL) {
        st->next->prev = st->prev;
    }
    svc->n_streams--;
    lg_metrics_gauge_add(svc->m_streams, -1);
    if (st->state == STREAM_GENERATING) {
        lg_metrics_gauge_add(svc->m_open, -1);
    }
    chat_cfg_unref(svc, st->cfg);
    lg_chat_replay_free(st->replay);
    lg_record_free(st->rec);
    lg_buf_deinit(&st->response);
    lg_free(st->user_id);
    lg_free(st);
}

/* ---- ending a stream ------------------------------------------------------------------- */

/* The one place a stream changes state (STYLE.md: traced old -> new at debug). */
static void chat_stream_set_state(struct chat_stream *st, enum stream_state next)
{
    static const char *const names[] = {"generating", "finished"};
    struct lg_log_ctx ctx = chat_ctx(st);
    lg_log(LG_LOG_DEBUG, &ctx, "stream_state", "%s -> %s subs=%zu seq=%llu", names[st->state],
           names[next], st->n_subs, (unsigned long long)st->last_seq);
    if (st->state == STREAM_GENERATING && next == STREAM_FINISHED) {
        lg_metrics_gauge_add(st->svc->m_open, -1);
    }
    st->state = next;
}

static void chat_unary_answer(struct chat_stream *st, int err, const char *message,
                              const char *finish_reason, const struct lg_chat_usage *usage,
                              uint64_t cost, bool reported);

/* A static message for a failure code: the provider's own message is not kept past the
 * callback, and readers may finish long after it. */
static const char *chat_public_message(int err)
{
    switch (err) {
    case LG_ERR_UNAVAILABLE:
        return "upstream unavailable";
    case LG_ERR_EXHAUSTED:
        return "upstream rate limit exceeded";
    case LG_ERR_TIMEOUT:
        return "upstream timed out";
    case LG_ERR_INVALID:
        return "upstream refused the request";
    case LG_ERR_UNAUTHENTICATED:
        return "upstream refused the gateway's credentials";
    case LG_ERR_MALFORMED:
        return "upstream sent a malformed stream";
    case LG_ERR_UPSTREAM:
        return "upstream reported an error mid-stream";
    default:
        return lg_err_str(err);
    }
}

/* Estimated usage when upstream reported none: the demo tokenizer on the texts. */
static void chat_estimate_usage(const struct chat_stream *st, struct lg_chat_usage *u)
{
    u->prompt_tokens = st->prompt_tokens_est;
    u->completion_tokens =
        lg_chat_demo_count_tokens((const char *)st->response.data, st->response.len);
    if (st->response_truncated && u->completion_tokens < st->deltas) {
        u->completion_tokens = st->deltas;
    }
    u->cached_tokens = 0;
}

static enum lg_record_status chat_status_for(int err)
{
    switch (err) {
    case LG_OK:
        return LG_RECORD_STATUS_SUCCESS;
    case LG_ERR_TIMEOUT:
        return LG_RECORD_STATUS_TIMEOUT;
    case LG_ERR_CANCELLED:
        return LG_RECORD_STATUS_CANCELLED;
    default:
        return LG_RECORD_STATUS_ERROR;
    }
}

/* ---- durable answers ------------------------------------------------------------------- */

static void chat_stash_free(struct chat_stream *st)
{
    if (st->stash == NULL) {
        return;
    }
    lg_free(st->stash->message);
    lg_free(st->stash->finish_reason);
    lg_free(st->stash);
    st->stash = NULL;
}

static void chat_held_unlink(lg_chat_service *svc, struct chat_stream *st)
{
    if (!st->held) {
        return;
    }
    st->held = false;
    if (st->held_prev != NULL) {
        st->held_prev->held_next = st->held_next;
    } else if (svc->held_head == st) {
        svc->held_head = st->held_next;
    }
    if (st->held_next != NULL) {
        st->held_next->held_prev = st->held_prev;
    } else if (svc->held_tail == st) {
        svc->held_tail = st->held_prev;
    }
    st->held_prev = st->held_next = NULL;
}

static void chat_held_arm(lg_chat_service *svc)
{
    struct timeval tv = {0, svc->held_notified ? LG_CHAT_DURABLE_NOTIFIED_POLL_MS * 1000
                                               : LG_CHAT_DURABLE_POLL_US};
    if (svc->held_ev != NULL && !evtimer_pending(svc->held_ev, NULL)) {
        evtimer_add(svc->held_ev, &tv);
    }
}

/* Puts |st| (held: its record is not written yet) at the end of the held list. */
static void chat_held_link(lg_chat_service *svc, struct chat_stream *st)
{
    st->held_since_ms = lg_time_mono_ms();
    st->held_prev = svc->held_tail;
    st->held_next = NULL;
    if (svc->held_tail != NULL) {
        svc->held_tail->held_next = st;
    } else {
        svc->held_head = st;
    }
    svc->held_tail = st;
    chat_held_arm(svc);
}

/* The record is written (or the wait gave up): the final event goes to the readers and the
 * unary call gets its answer. */
static void chat_held_release(struct chat_stream *st)
{
    chat_held_unlink(st->svc, st);
    for (struct chat_sub *s = st->subs; s != NULL; s = s->next) {
        chat_sub_pump(s);
    }
    struct chat_unary_stash *u = st->stash;
    if (u != NULL && st->unary != NULL) {
        chat_unary_answer(st, u->err, u->message, u->finish_reason, &u->usage, u->cost,
                          u->reported);
    }
    chat_stash_free(st);
}

/* The sink's thread: records may have been written. */
static void chat_held_notify(void *arg)
{
    lg_chat_service *svc = arg;
    event_active(svc->held_ev, EV_TIMEOUT, 1);
}

static void chat_on_held(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_chat_service *svc = arg;
    struct lg_record_sink *sink = svc->opts.sink;
    int64_t now = lg_time_mono_ms();
    struct chat_stream *st = svc->held_head;
    while (st != NULL) {
        struct chat_stream *next = st->held_next;
        bool written = sink != NULL && sink->written != NULL &&
                       sink->written(sink->impl, st->ticket);
        if (!written && now - st->held_since_ms >= LG_CHAT_DURABLE_WAIT_MS) {
            /* The spool cannot write (disk full): answer anyway rather than hang the client;
             * the record waits in memory (SECURITY.md) and is counted here. */
            struct lg_log_ctx ctx = chat_ctx(st);
            lg_log(LG_LOG_WARN, &ctx, "answer_before_written", "waited_ms=%lld",
                   (long long)(now - st->held_since_ms));
            lg_metrics_counter_inc(svc->m_unwritten_answers);
            written = true;
        }
        if (written) {
            chat_held_release(st);
        }
        st = next;
    }
    if (svc->held_head != NULL) {
        chat_held_arm(svc);
    }
}

/* The stream ended: with the provider's outcome, or stopped by us (|by_us|: cancel, grace
 * expiry, client deadline, shutdown; |err| LG_ERR_CANCELLED or LG_ERR_TIMEOUT, reported as a
 * done event with finish_reason "cancelled"/"timeout"). Writes the record, emits the final
 * event, answers the unary call, and starts the retention period. */
static void chat_stream_end(struct chat_stream *st, int err, bool by_us, const char *finish_reason,
                            const char *message, const struct lg_chat_usage *reported_usage)
{
    lg_chat_service *svc = st->svc;
    struct lg_chat_usage usage;
    bool reported = reported_usage != NULL;
    if (reported) {
        usage = *reported_usage;
    } else {
        chat_estimate_usage(st, &usage);
    }
    uint64_t cost = 0;
    struct lg_chat_price_usage pu = {usage.prompt_tokens, usage.completion_tokens,
                                     usage.cached_tokens};
    bool priced =
        lg_chat_price_cost(st->prov->prices, st->model, &pu, &cost) == LG_CHAT_PRICE_PRICED;
    if (by_us) {
        finish_reason = err == LG_ERR_TIMEOUT ? "timeout" : "cancelled";
    }
    int64_t duration = lg_time_mono_ms() - st->start_mono_ms;
    chat_record_finish(st, chat_status_for(err), finish_reason, err == LG_OK ? NULL : message,
                       &usage, reported, cost, priced);
    if (st->held) {
        chat_held_link(svc, st);
    }
    chat_count_call(svc, st, chat_status_for(err));
    if (err != LG_OK && !by_us && err != LG_ERR_CANCELLED) {
        chat_count_upstream_error(svc, st, err);
    }
    chat_stream_set_state(st, STREAM_FINISHED);
    st->final_err = by_us ? LG_OK : err;
    st->final_message = st->final_err == LG_OK ? NULL : chat_public_message(err);

    if (err == LG_OK || by_us) {
        Llmgate__Chat__V1__Usage u = LLMGATE__CHAT__V1__USAGE__INIT;
        chat_fill_usage(&u, &usage, cost, reported);
        Llmgate__Chat__V1__StreamDone done = LLMGATE__CHAT__V1__STREAM_DONE__INIT;
        done.finish_reason = (char *)(uintptr_t)(finish_reason != NULL ? finish_reason : "stop");
        done.usage = &u;
        done.duration_ms = (uint64_t)duration;
        pb_event ev = LLMGATE__CHAT__V1__CHAT_EVENT__INIT;
        ev.event_case = LLMGATE__CHAT__V1__CHAT_EVENT__EVENT_DONE;
        ev.done = &done;
        chat_emit(st, &ev);
    } else {
        Llmgate__Chat__V1__StreamError e = LLMGATE__CHAT__V1__STREAM_ERROR__INIT;
        e.code = (char *)(uintptr_t)lg_grpc_status_name(lg_err_grpc_status(err));
        e.message = (char *)(uintptr_t)(message != NULL ? message : lg_err_str(err));
        pb_event ev = LLMGATE__CHAT__V1__CHAT_EVENT__INIT;
        ev.event_case = LLMGATE__CHAT__V1__CHAT_EVENT__EVENT_ERROR;
        ev.error = &e;
        chat_emit(st, &ev);
    }
    for (struct chat_sub *s = st->subs; s != NULL; s = s->next) {
        chat_sub_pump(s);
    }
    if (st->unary != NULL && st->held) {
        struct chat_unary_stash *u = lg_calloc(1, sizeof(*u));
        st->stash = u;
        if (u != NULL) {
            u->err = err;
            u->message = message != NULL ? lg_strdup(message) : NULL;
            u->finish_reason = finish_reason != NULL ? lg_strdup(finish_reason) : NULL;
            u->usage = usage;
            u->cost = cost;
            u->reported = reported;
        }
        if (u == NULL || (message != NULL && u->message == NULL) ||
            (finish_reason != NULL && u->finish_reason == NULL)) {
            chat_stash_free(st);
            chat_held_unlink(svc, st); /* out of memory: answer now */
        }
    }
    if (st->unary != NULL && !st->held) {
        chat_unary_answer(st, err, message, finish_reason, &usage, cost, reported);
    }
    if (st->registered) {
        lg_chat_registry_set_deadline(svc->reg, st->id,
                                      (uint64_t)lg_time_mono_ms() + svc->opts.retention_ms);
        chat_fin_append(svc, st);
    } else {
        st->dead = true; /* Complete: nothing to keep; freed on a later loop turn */
    }
}

/* Stops generation from our side (the upcall gets no more callbacks). */
static void chat_stream_stop(struct chat_stream *st, int err, const char *why)
{
    if (st->state != STREAM_GENERATING) {
        return;
    }
    struct lg_chat_upcall *up = st->up;
    st->up = NULL;
    lg_chat_upcall_cancel(up);
    chat_stream_end(st, err, true, NULL, why, NULL);
}

/* ---- provider callbacks ---------------------------------------------------------------- */

static void chat_on_delta(const char *text, size_t len, void *user_data)
{
    struct chat_stream *st = user_data;
    lg_chat_service *svc = st->svc;
    int64_t first_in_us = -1;
    if (st->first_token_mono_ms < 0) {
        st->first_token_mono_ms = lg_time_mono_ms();
        first_in_us = lg_time_mono_us();
        chat_observe_ttft(svc, st, st->first_token_mono_ms - st->start_mono_ms);
    }
    st->deltas++;
    st->had_content = true;
    lg_metrics_counter_inc(svc->m_tokens);
    if (!st->response_truncated && lg_buf_append(&st->response, text, len) != LG_OK) {
        st->response_truncated = true;
    }
    if (st->replay == NULL) {
        return;
    }
    Llmgate__Chat__V1__ContentDelta c = LLMGATE__CHAT__V1__CONTENT_DELTA__INIT;
    /* protobuf-c packs strings with strlen: the piece must be NUL-terminated. */
    char small[256];
    char *copy = len < sizeof(small) ? small : lg_malloc(len + 1);
    if (copy == NULL) {
        return;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    c.text = copy;
    pb_event ev = LLMGATE__CHAT__V1__CHAT_EVENT__INIT;
    ev.event_case = LLMGATE__CHAT__V1__CHAT_EVENT__EVENT_CONTENT;
    ev.content = &c;
    chat_emit(st, &ev);
    if (copy != small) {
        lg_free(copy);
    }
    if (first_in_us >= 0 && st->prov->kind != LG_CHAT_PROVIDER_DEMO) {
        /* The gateway's own share of TTFT: request in -> upstream call handed to curl, plus
         * first upstream token in -> event queued on the client's call. */
        int64_t us = st->pre_upstream_us + (lg_time_mono_us() - first_in_us);
        lg_metrics_histogram_observe(svc->m_overhead, (double)us / 1e6);
    }
}

static void chat_on_done(const struct lg_chat_outcome *o, void *user_data)
{
    struct chat_stream *st = user_data;
    st->up = NULL; /* the provider frees it when we return */
    chat_stream_end(st, o->err, false, o->finish_reason, o->message,
                    o->has_usage ? &o->usage : NULL);
}

static const struct lg_chat_provider_cbs chat_provider_cbs = {chat_on_delta, chat_on_done};

/* True when the call ended because its deadline passed (see CHAT_DEADLINE_SLACK_MS). */
static bool chat_is_deadline(lg_grpc_call *call, enum lg_grpc_close_reason reason)
{
    if (reason == LG_GRPC_CLOSE_DEADLINE) {
        return true;
    }
    int64_t left = lg_grpc_call_get_remaining_ms(call);
    return left >= 0 && left <= CHAT_DEADLINE_SLACK_MS &&
           (reason == LG_GRPC_CLOSE_CANCELLED || reason == LG_GRPC_CLOSE_CONN_LOST);
}

/* ---- requests -------------------------------------------------------------------------- */


/* The caller's identity: |claimed| (may be empty) against the x-user-id metadata.
 * Returns the user id (borrowed) or NULL with |*err| set. */
static const char *chat_identity(lg_grpc_call *call, const char *claimed, int *err)
{
    size_t len = 0;
    const uint8_t *hdr = lg_grpc_call_get_metadata(call, CHAT_USER_METADATA, &len);
    if (hdr != NULL && len > 0) {
        if (claimed[0] != '\0' && strcmp(claimed, (const char *)hdr) != 0) {
            *err = LG_ERR_PERMISSION;
            return NULL;
        }
        return (const char *)hdr;
    }
    if (claimed[0] == '\0') {
        *err = LG_ERR_UNAUTHENTICATED;
        return NULL;
    }
    return claimed;
}

static int chat_start_upcall(struct chat_stream *st, const struct lg_chat_request *req,
                             const struct lg_chat_model_cfg *model)
{
    lg_chat_service *svc = st->svc;
    struct lg_chat_call_params params = {
        .req = req,
        .cfg = st->prov,
        .upstream_model = model->upstream_model,
        .request_id = st->request_id,
        .demo_pace_ms = svc->opts.demo_pace_ms,
    };
    if (st->prov->kind == LG_CHAT_PROVIDER_DEMO) {
        return lg_chat_demo_start(svc->base, &params, &chat_provider_cbs, st, &st->up);
    }
    if (svc->opts.curlm == NULL) {
        return LG_ERR_UNAVAILABLE;
    }
    return lg_chat_openai_start(svc->opts.curlm, svc->base, &params, &chat_provider_cbs, st,
                                &st->up);
}

/* Frees the oldest finished stream that nobody reads, to make room in a full registry.
 * Returns false when every slot holds a generating (or read) stream. */
static bool chat_evict_oldest_finished(lg_chat_service *svc)
{
    for (struct chat_stream *st = svc->fin_head; st != NULL; st = st->fin_next) {
        if (st->n_subs == 0) {
            struct lg_log_ctx ctx = chat_ctx(st);
            lg_log(LG_LOG_DEBUG, &ctx, "evict", "registry full: retained stream dropped early");
            lg_chat_registry_remove(svc->reg, st->id);
            st->registered = false;
            chat_stream_free(st);
            return true;
        }
    }
    return false;
}

/* Creates a stream for a validated request (registered when |streaming|). On error nothing
 * is left behind and |why| may hold a reason. */
static int chat_stream_new(lg_chat_service *svc, const struct lg_chat_request *req, bool streaming,
                           struct chat_stream **out, char *why, size_t why_len)
{
    const struct lg_chat_provider_cfg *prov;
    const struct lg_chat_model_cfg *model;
    int rc = lg_chat_config_resolve(svc->cfg->cfg, req->provider_config_id, req->model, &prov,
                                    &model, why, why_len);
    if (rc != LG_OK) {
        return rc;
    }
    struct chat_stream *st = lg_calloc(1, sizeof(*st));
    if (st == NULL) {
        return LG_ERR_NOMEM;
    }
    st->tag = CHAT_TAG_STREAM;
    st->svc = svc;
    st->cfg = svc->cfg;
    st->cfg->refs++;
    st->prov = prov;
    st->model = model->name;
    st->first_token_mono_ms = -1;
    st->start_mono_ms = lg_time_mono_ms();
    st->in_us = lg_time_mono_us();
    lg_buf_init(&st->response, LG_CHAT_MAX_RESPONSE_BYTES);
    st->next = svc->streams;
    if (svc->streams != NULL) {
        svc->streams->prev = st;
    }
    svc->streams = st;
    svc->n_streams++;
    lg_metrics_gauge_add(svc->m_streams, 1);
    lg_metrics_gauge_add(svc->m_open, 1);
    st->user_id = lg_strdup(req->user_id);
    rc = st->user_id != NULL ? lg_chat_registry_new_id(st->request_id) : LG_ERR_NOMEM;
    if (rc == LG_OK && streaming) {
        rc = lg_chat_replay_new(&st->replay, svc->opts.replay_max_events,
                                svc->opts.replay_max_bytes);
        if (rc == LG_OK) {
            rc = lg_chat_registry_add(svc->reg, req->user_id, st, st->id);
            if (rc == LG_ERR_EXHAUSTED && chat_evict_oldest_finished(svc)) {
                rc = lg_chat_registry_add(svc->reg, req->user_id, st, st->id);
            }
            st->registered = rc == LG_OK;
        }
    } else if (rc == LG_OK) {
        rc = lg_chat_registry_new_id(st->id);
    }
    if (rc == LG_OK) {
        rc = chat_record_start(st, req, model, streaming);
    }
    st->prompt_tokens_est = lg_chat_demo_prompt_tokens(req);
    if (rc == LG_OK && streaming) {
        chat_emit_start(st, model->name);
    }
    if (rc == LG_OK) {
        rc = chat_start_upcall(st, req, model);
        st->pre_upstream_us = lg_time_mono_us() - st->in_us;
        if (rc != LG_OK) {
            /* The call was attempted: it still gets its record. */
            snprintf(why, why_len, "provider could not start: %s", lg_err_str(rc));
            chat_stream_end(st, rc, false, NULL, why, NULL);
            if (st->registered) {
                lg_chat_registry_remove(svc->reg, st->id);
            }
            chat_stream_free(st);
            return rc;
        }
    }
    if (rc != LG_OK) {
        if (st->registered) {
            lg_chat_registry_remove(svc->reg, st->id);
        }
        chat_stream_free(st);
        return rc;
    }
    lg_metrics_counter_inc(svc->m_started);
    struct lg_log_ctx ctx = chat_ctx(st);
    lg_log(LG_LOG_INFO, &ctx, "stream_start", "provider=%s model=%s messages=%zu prompt_bytes=%zu",
           prov->id, model->name, req->n_messages, lg_chat_request_prompt_len(req));
    *out = st;
    return LG_OK;
}

/* Unpacks and checks a ChatRequest; on failure the call is finished here. */
static int chat_read_request(lg_grpc_call *call, const uint8_t *msg, size_t len,
                             struct lg_chat_request *req)
{
    ProtobufCAllocator alloc;
    lg_arena *arena = lg_grpc_call_get_arena(call);
    lg_arena_protobuf_allocator(arena, &alloc);
    pb_request *pb = llmgate__chat__v1__chat_request__unpack(&alloc, len, msg);
    if (pb == NULL) {
        lg_grpc_call_finish(call, LG_GRPC_INVALID_ARGUMENT, "ChatRequest does not parse");
        return LG_ERR_INVALID;
    }
    int rc = lg_chat_pb_view_request(arena, pb, req);
    if (rc != LG_OK) {
        chat_finish(call, rc, NULL);
        return rc;
    }
    rc = LG_OK;
    const char *user = chat_identity(call, pb->user_id, &rc);
    if (user == NULL) {
        chat_finish(call, rc,
                    rc == LG_ERR_PERMISSION ? "user_id does not match x-user-id"
                                            : "user_id or x-user-id is required");
        return rc;
    }
    req->user_id = user;
    char why[CHAT_WHY_BYTES] = "";
    rc = lg_chat_request_validate(req, why, sizeof(why));
    if (rc != LG_OK) {
        chat_finish(call, rc, why);
        return rc;
    }
    return LG_OK;
}

static void chat_sub_attach(struct chat_stream *st, struct chat_sub *sub)
{
    sub->st = st;
    sub->next = st->subs;
    st->subs = sub;
    st->n_subs++;
    if (st->registered && st->state == STREAM_GENERATING) {
        /* A reader is back: no grace deadline while someone reads. */
        lg_chat_registry_set_deadline(st->svc->reg, st->id, 0);
    }
}

static struct chat_sub *chat_sub_new(lg_grpc_call *call)
{
    struct chat_sub *sub = lg_calloc(1, sizeof(*sub));
    if (sub != NULL) {
        sub->tag = CHAT_TAG_SUB;
        sub->call = call;
        lg_grpc_call_set_user_data(call, sub);
    }
    return sub;
}

/* ---- StreamChat / ResumeStream --------------------------------------------------------- */

static void chat_stream_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len,
                                   void *user_data)
{
    lg_chat_service *svc = user_data;
    struct lg_chat_request req;
    if (chat_read_request(call, msg, len, &req) != LG_OK) {
        return;
    }
    struct chat_sub *sub = chat_sub_new(call);
    if (sub == NULL) {
        chat_finish(call, LG_ERR_NOMEM, NULL);
        return;
    }
    char why[CHAT_WHY_BYTES] = "";
    struct chat_stream *st;
    int rc = chat_stream_new(svc, &req, true, &st, why, sizeof(why));
    if (rc != LG_OK) {
        lg_grpc_call_set_user_data(call, svc);
        lg_free(sub);
        chat_finish(call, rc, why[0] != '\0' ? why : NULL);
        return;
    }
    sub->next_seq = 1;
    size_t dlen = 0;
    const uint8_t *detach = lg_grpc_call_get_metadata(call, CHAT_DETACH_METADATA, &dlen);
    if (detach != NULL && dlen == 1 && detach[0] == '1') {
        sub->detach_after_seq = 1; /* the start event carries the stream id */
    }
    chat_sub_attach(st, sub);
    chat_sub_pump(sub);
}

static void chat_sub_on_writable(lg_grpc_call *call, void *user_data)
{
    (void)call;
    struct chat_sub *sub = user_data;
    sub->blocked = false;
    chat_sub_pump(sub);
}

/* A reader left. The last reader of a generating stream starts the grace period, except on
 * a deadline, which ends generation as a timeout (the caller said how long it waits). */
static void chat_sub_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason, void *user_data)
{
    if (*(const enum chat_tag *)user_data != CHAT_TAG_SUB) {
        return; /* refused before a reader existed: the user data is the service */
    }
    struct chat_sub *sub = user_data;
    struct chat_stream *st = sub->st;
    if (st != NULL) {
        chat_stream_detach(st, sub);
    }
    lg_free(sub);
    if (st == NULL || st->n_subs > 0 || st->state != STREAM_GENERATING) {
        return;
    }
    if (chat_is_deadline(call, reason)) {
        chat_stream_stop(st, LG_ERR_TIMEOUT, "client deadline exceeded");
        return;
    }
    uint64_t now = (uint64_t)lg_time_mono_ms();
    lg_chat_registry_set_deadline(st->svc->reg, st->id, now + st->svc->opts.grace_ms);
    struct lg_log_ctx ctx = chat_ctx(st);
    lg_log(LG_LOG_INFO, &ctx, "client_gone", "reason=%d grace_ms=%u", (int)reason,
           st->svc->opts.grace_ms);
}

/* Looks up a stream for a resume or cancel, finishing the call on failure. */
static struct chat_stream *chat_lookup(lg_chat_service *svc, lg_grpc_call *call,
                                       const char *stream_id)
{
    int rc = LG_OK;
    size_t len = 0;
    const uint8_t *user = lg_grpc_call_get_metadata(call, CHAT_USER_METADATA, &len);
    if (user == NULL || len == 0) {
        lg_grpc_call_finish(call, LG_GRPC_UNAUTHENTICATED, "x-user-id metadata is required");
        return NULL;
    }
    void *v = NULL;
    rc = lg_chat_registry_lookup(svc->reg, stream_id, (const char *)user, &v);
    if (rc == LG_ERR_NOT_FOUND) {
        lg_grpc_call_finish(call, LG_GRPC_NOT_FOUND, "unknown or expired stream_id");
        return NULL;
    }
    if (rc != LG_OK) {
        lg_grpc_call_finish(call, LG_GRPC_PERMISSION_DENIED, "stream belongs to another user");
        return NULL;
    }
    return v;
}

static void chat_resume_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len,
                                   void *user_data)
{
    lg_chat_service *svc = user_data;
    ProtobufCAllocator alloc;
    lg_arena_protobuf_allocator(lg_grpc_call_get_arena(call), &alloc);
    Llmgate__Chat__V1__ResumeRequest *rq =
        llmgate__chat__v1__resume_request__unpack(&alloc, len, msg);
    if (rq == NULL) {
        lg_grpc_call_finish(call, LG_GRPC_INVALID_ARGUMENT, "ResumeRequest does not parse");
        return;
    }
    struct chat_stream *st = chat_lookup(svc, call, rq->stream_id);
    if (st == NULL) {
        return;
    }
    if (rq->after_seq < st->last_seq && rq->after_seq + 1 < lg_chat_replay_first_seq(st->replay)) {
        lg_grpc_call_finish(call, LG_GRPC_NOT_FOUND,
                            "resume_expired: events after after_seq are no longer buffered");
        return;
    }
    if (st->n_subs >= LG_CHAT_MAX_SUBSCRIBERS) {
        lg_grpc_call_finish(call, LG_GRPC_RESOURCE_EXHAUSTED, "too many readers on this stream");
        return;
    }
    struct chat_sub *sub = chat_sub_new(call);
    if (sub == NULL) {
        chat_finish(call, LG_ERR_NOMEM, NULL);
        return;
    }
    sub->next_seq = rq->after_seq + 1;
    chat_sub_attach(st, sub);
    struct lg_log_ctx ctx = chat_ctx(st);
    lg_log(LG_LOG_INFO, &ctx, "resume", "after_seq=%llu last_seq=%llu",
           (unsigned long long)rq->after_seq, (unsigned long long)st->last_seq);
    chat_sub_pump(sub);
}

/* ---- CancelStream ---------------------------------------------------------------------- */

static void chat_cancel_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len,
                                   void *user_data)
{
    lg_chat_service *svc = user_data;
    ProtobufCAllocator alloc;
    lg_arena_protobuf_allocator(lg_grpc_call_get_arena(call), &alloc);
    Llmgate__Chat__V1__CancelRequest *rq =
        llmgate__chat__v1__cancel_request__unpack(&alloc, len, msg);
    if (rq == NULL) {
        lg_grpc_call_finish(call, LG_GRPC_INVALID_ARGUMENT, "CancelRequest does not parse");
        return;
    }
    struct chat_stream *st = chat_lookup(svc, call, rq->stream_id);
    if (st == NULL) {
        return;
    }
    Llmgate__Chat__V1__CancelResponse resp = LLMGATE__CHAT__V1__CANCEL_RESPONSE__INIT;
    resp.cancelled = st->state == STREAM_GENERATING;
    if (resp.cancelled) {
        struct lg_log_ctx ctx = chat_ctx(st);
        lg_log(LG_LOG_INFO, &ctx, "cancel", "by=owner");
        chat_stream_stop(st, LG_ERR_CANCELLED, "cancelled by the caller");
    }
    lg_grpc_call_send_pb(call, &resp.base);
    lg_grpc_call_finish(call, LG_GRPC_OK, NULL);
}

/* ---- Complete -------------------------------------------------------------------------- */

static void chat_unary_answer(struct chat_stream *st, int err, const char *message,
                              const char *finish_reason, const struct lg_chat_usage *usage,
                              uint64_t cost, bool reported)
{
    lg_grpc_call *call = st->unary;
    st->unary = NULL;
    lg_grpc_call_set_user_data(call, st->svc);
    if (err != LG_OK) {
        chat_finish(call, err, message);
        return;
    }
    Llmgate__Chat__V1__Usage u = LLMGATE__CHAT__V1__USAGE__INIT;
    chat_fill_usage(&u, usage, cost, reported);
    Llmgate__Chat__V1__ChatResponse resp = LLMGATE__CHAT__V1__CHAT_RESPONSE__INIT;
    resp.stream_id = st->id;
    resp.content = st->response.data != NULL ? (char *)st->response.data : (char *)(uintptr_t) "";
    resp.finish_reason = (char *)(uintptr_t)(finish_reason != NULL ? finish_reason : "stop");
    resp.usage = &u;
    resp.model = (char *)(uintptr_t)st->model;
    int rc = lg_grpc_call_send_pb(call, &resp.base);
    chat_finish(call, rc == LG_ERR_AGAIN ? LG_OK : rc, NULL);
}

static void chat_complete_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len,
                                     void *user_data)
{
    lg_chat_service *svc = user_data;
    struct lg_chat_request req;
    if (chat_read_request(call, msg, len, &req) != LG_OK) {
        return;
    }
    char why[CHAT_WHY_BYTES] = "";
    struct chat_stream *st;
    int rc = chat_stream_new(svc, &req, false, &st, why, sizeof(why));
    if (rc != LG_OK) {
        chat_finish(call, rc, why[0] != '\0' ? why : NULL);
        return;
    }
    st->unary = call;
    lg_grpc_call_set_user_data(call, st);
}

/* The unary call ended: answered already (user data is the service again), or the client
 * left first (deadline or cancel): then generation stops and the record says so. */
static void chat_complete_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason,
                                   void *user_data)
{
    if (*(const enum chat_tag *)user_data != CHAT_TAG_STREAM) {
        return;
    }
    struct chat_stream *st = user_data;
    st->unary = NULL;
    bool deadline = chat_is_deadline(call, reason);
    chat_stream_stop(st, deadline ? LG_ERR_TIMEOUT : LG_ERR_CANCELLED,
                     deadline ? "client deadline exceeded" : "client went away");
}

/* ---- UsageService ---------------------------------------------------------------------- */

/* One ListLogs or GetUsage query in flight on the lg_usage worker. */
struct usage_job {
    enum chat_tag tag; /* CHAT_TAG_USAGE */
    struct usage_job *next;
    lg_chat_service *svc;
    lg_grpc_call *call; /* NULL once the call ended (the answer is then dropped) */
    bool is_report;
    bool answered; /* the worker's result arrived */
    int rc;
    struct lg_usage_logs logs;     /* owned */
    struct lg_usage_report report; /* owned */
    char *user;                    /* the asserted user (ListLogs' LogRecord.user_id), owned */
};

static void usage_job_free(struct usage_job *j)
{
    lg_usage_logs_free(&j->logs);
    lg_usage_report_free(&j->report);
    lg_free(j->user);
    lg_free(j);
}

/* Worker thread: queue the result for the loop. */
static void usage_post(struct usage_job *j)
{
    lg_chat_service *svc = j->svc;
    pthread_mutex_lock(&svc->usage_lock);
    j->next = svc->usage_ready;
    svc->usage_ready = j;
    pthread_mutex_unlock(&svc->usage_lock);
    event_active(svc->usage_ev, EV_READ, 0);
}

static void usage_on_logs(int rc, struct lg_usage_logs *logs, void *user_data)
{
    struct usage_job *j = user_data;
    j->rc = rc;
    j->logs = *logs; /* moved */
    usage_post(j);
}

static void usage_on_report(int rc, struct lg_usage_report *report, void *user_data)
{
    struct usage_job *j = user_data;
    j->rc = rc;
    j->report = *report; /* moved */
    usage_post(j);
}

static int usage_answer_logs(struct usage_job *j)
{
    size_t n = j->logs.count;
    Llmgate__Chat__V1__LogRecord *recs = lg_calloc(n > 0 ? n : 1, sizeof(*recs));
    Llmgate__Chat__V1__LogRecord **ptrs = lg_calloc(n > 0 ? n : 1, sizeof(*ptrs));
    Llmgate__Chat__V1__Usage *usages = lg_calloc(n > 0 ? n : 1, sizeof(*usages));
    int rc = recs != NULL && ptrs != NULL && usages != NULL ? LG_OK : LG_ERR_NOMEM;
    size_t kept = 0;
    for (size_t i = 0; rc == LG_OK && i < n; i++) {
        const struct lg_usage_log *g = &j->logs.items[i];
        Llmgate__Chat__V1__LogRecord *r = &recs[kept];
        Llmgate__Chat__V1__Usage *u = &usages[kept];
        llmgate__chat__v1__log_record__init(r);
        llmgate__chat__v1__usage__init(u);
        u->prompt_tokens = (uint32_t)g->prompt_tokens;
        u->completion_tokens = (uint32_t)g->completion_tokens;
        u->cached_tokens = (uint32_t)g->cached_tokens;
        u->total_tokens = (uint32_t)g->total_tokens;
        u->estimated_cost_nano_usd = (uint64_t)g->estimated_cost_nano_usd;
        u->usage_estimated = g->usage_source != NULL && strcmp(g->usage_source, "estimated") == 0;
        r->request_id = g->request_id;
        r->stream_id = g->stream_id;
        r->conversation_id = g->conversation_id;
        r->agent_id = g->agent_id;
        r->user_id = j->user; /* every row is the asserted user's */
        r->provider_config_id = g->provider_config_id;
        r->provider = g->provider;
        r->model = g->model;
        r->status = g->status;
        r->finish_reason = g->finish_reason;
        r->error_message = g->error_message;
        r->usage = u;
        r->start_unix_ms = g->start_time_ms;
        r->duration_ms = (uint64_t)(g->duration_ms > 0 ? g->duration_ms : 0);
        r->time_to_first_token_ms =
            (uint64_t)(g->time_to_first_token_ms > 0 ? g->time_to_first_token_ms : 0);
        ptrs[kept++] = r;
    }
    if (rc == LG_OK) {
        Llmgate__Chat__V1__ListLogsResponse resp;
        llmgate__chat__v1__list_logs_response__init(&resp);
        resp.n_records = kept;
        resp.records = ptrs;
        rc = lg_grpc_call_send_pb(j->call, &resp.base);
    }
    lg_free(recs);
    lg_free(ptrs);
    lg_free(usages);
    return rc;
}

static void usage_fill_row(Llmgate__Chat__V1__UsageRow *row, const struct lg_usage_bucket *b)
{
    llmgate__chat__v1__usage_row__init(row);
    row->day = (char *)(uintptr_t)b->day;
    row->model = b->model;
    row->requests = b->requests;
    row->prompt_tokens = (uint64_t)b->prompt_tokens;
    row->completion_tokens = (uint64_t)b->completion_tokens;
    row->cached_tokens = (uint64_t)b->cached_tokens;
    row->total_tokens = (uint64_t)b->total_tokens;
    row->cost_nano_usd = (uint64_t)b->cost_nano_usd;
}

static int usage_answer_report(struct usage_job *j)
{
    const struct lg_usage_report *rep = &j->report;
    size_t n = rep->n_model_day;
    Llmgate__Chat__V1__UsageRow *rows = lg_calloc(n > 0 ? n : 1, sizeof(*rows));
    Llmgate__Chat__V1__UsageRow **ptrs = lg_calloc(n > 0 ? n : 1, sizeof(*ptrs));
    int rc = rows != NULL && ptrs != NULL ? LG_OK : LG_ERR_NOMEM;
    if (rc == LG_OK) {
        for (size_t i = 0; i < n; i++) {
            usage_fill_row(&rows[i], &rep->by_model_day[i]);
            ptrs[i] = &rows[i];
        }
        Llmgate__Chat__V1__GetUsageResponse resp;
        llmgate__chat__v1__get_usage_response__init(&resp);
        resp.n_rows = n;
        resp.rows = ptrs;
        resp.requests = rep->total.requests;
        resp.total_tokens = (uint64_t)rep->total.total_tokens;
        resp.cost_nano_usd = (uint64_t)rep->total.cost_nano_usd;
        rc = lg_grpc_call_send_pb(j->call, &resp.base);
    }
    lg_free(rows);
    lg_free(ptrs);
    return rc;
}

static void usage_answer(struct usage_job *j)
{
    lg_grpc_call *call = j->call;
    j->answered = true;
    if (call == NULL) {
        usage_job_free(j); /* the caller left */
        return;
    }
    lg_grpc_call_set_user_data(call, j->svc);
    j->call = NULL;
    int rc = j->rc;
    if (rc == LG_OK) {
        j->call = call;
        rc = j->is_report ? usage_answer_report(j) : usage_answer_logs(j);
        j->call = NULL;
    }
    if (rc == LG_OK) {
        lg_grpc_call_finish(call, LG_GRPC_OK, NULL);
    } else {
        chat_finish(call, rc,
                    rc == LG_ERR_INVALID ? "bad user id or time range" : "usage store unavailable");
    }
    usage_job_free(j);
}

static void usage_on_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_chat_service *svc = arg;
    pthread_mutex_lock(&svc->usage_lock);
    struct usage_job *list = svc->usage_ready;
    svc->usage_ready = NULL;
    pthread_mutex_unlock(&svc->usage_lock);
    while (list != NULL) {
        struct usage_job *next = list->next;
        usage_answer(list);
        list = next;
    }
}

/* Unpacks the request, checks identity, queues the query. On error the call is finished. */
static void usage_submit(lg_chat_service *svc, struct usage_job *j, const uint8_t *msg, size_t len)
{
    ProtobufCAllocator alloc;
    lg_arena_protobuf_allocator(lg_grpc_call_get_arena(j->call), &alloc);
    Llmgate__Chat__V1__GetUsageRequest *gq = NULL;
    Llmgate__Chat__V1__ListLogsRequest *lq = NULL;
    if (j->is_report) {
        gq = llmgate__chat__v1__get_usage_request__unpack(&alloc, len, msg);
    } else {
        lq = llmgate__chat__v1__list_logs_request__unpack(&alloc, len, msg);
    }
    int rc = gq != NULL || lq != NULL ? LG_OK : LG_ERR_INVALID;
    const char *user = NULL;
    if (rc == LG_OK) {
        user = chat_identity(j->call, gq != NULL ? gq->user_id : lq->user_id, &rc);
    }
    if (user != NULL && gq != NULL) {
        int64_t from = lg_chat_pb_unix_to_ms(gq->since_unix);
        int64_t to = gq->until_unix > 0 ? lg_chat_pb_unix_to_ms(gq->until_unix)
                                        : lg_time_wall_ms() + CHAT_USAGE_FUTURE_MS;
        rc = lg_usage_get_usage(svc->opts.usage, user, from, to, usage_on_report, j);
    } else if (user != NULL) {
        j->user = lg_strdup(user);
        uint32_t limit = lq->limit == 0 ? CHAT_USAGE_DEFAULT_LIMIT : lq->limit;
        /* The filters go into the query (lg_usage copies them): filtering a fetched page
         * afterwards returned fewer than |limit| records, or none, while older matching
         * ones existed. */
        struct lg_usage_log_filter f = {lq->model, lq->conversation_id,
                                        lg_chat_pb_unix_to_ms(lq->since_unix),
                                        lg_chat_pb_unix_to_ms(lq->until_unix)};
        rc = j->user == NULL ? LG_ERR_NOMEM
                             : lg_usage_list_logs_filtered(
                                   svc->opts.usage, user,
                                   limit < LG_USAGE_MAX_LIMIT ? limit : LG_USAGE_MAX_LIMIT, 0,
                                   &f, usage_on_logs, j);
    }
    if (rc == LG_OK) {
        lg_grpc_call_set_user_data(j->call, j);
        return;
    }
    const char *why = rc == LG_ERR_PERMISSION        ? "user_id does not match x-user-id"
                      : rc == LG_ERR_UNAUTHENTICATED ? "user_id or x-user-id is required"
                      : rc == LG_ERR_INVALID         ? "bad request, user id or time range"
                                                     : NULL;
    chat_finish(j->call, rc, why);
    usage_job_free(j);
}

static void chat_usage_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len,
                                  void *user_data)
{
    lg_chat_service *svc = user_data;
    if (svc->opts.usage == NULL) {
        lg_grpc_call_finish(call, LG_GRPC_UNIMPLEMENTED,
                            "usage queries need ClickHouse: start llmgate-chat with "
                            "--clickhouse-url");
        return;
    }
    struct usage_job *j = lg_calloc(1, sizeof(*j));
    if (j == NULL) {
        chat_finish(call, LG_ERR_NOMEM, NULL);
        return;
    }
    j->tag = CHAT_TAG_USAGE;
    j->svc = svc;
    j->call = call;
    j->is_report = strcmp(lg_grpc_call_get_method(call), USAGE_PATH_GET) == 0;
    usage_submit(svc, j, msg, len);
}

/* The call ended: a job still waiting for the worker forgets it (freed when it answers). */
static void chat_usage_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason,
                                void *user_data)
{
    (void)call;
    (void)reason;
    if (*(const enum chat_tag *)user_data == CHAT_TAG_USAGE) {
        struct usage_job *j = user_data;
        j->call = NULL;
    }
}

static void chat_noop_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason,
                               void *user_data)
{
    (void)call;
    (void)reason;
    (void)user_data;
}

/* ---- sweep: grace and retention -------------------------------------------------------- */

static uint64_t chat_on_expire(const char *id, void *value, uint64_t now_ms, void *user_data)
{
    (void)id;
    lg_chat_service *svc = user_data;
    struct chat_stream *st = value;
    if (st->n_subs > 0) {
        /* Readers are attached (a slow one after retention): look again later. */
        return now_ms +
               (st->state == STREAM_GENERATING ? svc->opts.grace_ms : svc->opts.retention_ms);
    }
    if (st->state == STREAM_GENERATING) {
        struct lg_log_ctx ctx = chat_ctx(st);
        lg_log(LG_LOG_INFO, &ctx, "grace_expired", "grace_ms=%u", svc->opts.grace_ms);
        chat_stream_stop(st, LG_ERR_CANCELLED, "client gone: grace period expired");
        return now_ms + svc->opts.retention_ms;
    }
    st->registered = false;
    chat_stream_free(st);
    return 0;
}

static void chat_on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lg_chat_service *svc = arg;
    lg_chat_registry_expire(svc->reg, (uint64_t)lg_time_mono_ms(), chat_on_expire, svc);
    struct chat_stream *st = svc->streams;
    while (st != NULL) {
        struct chat_stream *next = st->next;
        if (st->dead && !st->held) {
            chat_stream_free(st);
        }
        st = next;
    }
}

/* ---- lifecycle ------------------------------------------------------------------------- */

void lg_chat_service_opts_default(struct lg_chat_service_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->demo_pace_ms = LG_CHAT_DEMO_PACE_MS_DEFAULT;
    opts->grace_ms = LG_CHAT_GRACE_MS_DEFAULT;
    opts->retention_ms = LG_CHAT_RETENTION_MS_DEFAULT;
    opts->body_mode = LG_CHAT_BODY_FULL;
    opts->body_max_bytes = LG_CHAT_BODY_TRUNCATE_DEFAULT_BYTES;
    opts->replay_max_events = LG_CHAT_REPLAY_MAX_EVENTS;
    opts->replay_max_bytes = LG_CHAT_REPLAY_MAX_BYTES;
    opts->max_streams = LG_CHAT_MAX_STREAMS;
}

int lg_chat_service_parse_body_mode(const char *s, enum lg_chat_body_mode *mode, size_t *max_bytes)
{
    if (strcmp(s, "full") == 0) {
        *mode = LG_CHAT_BODY_FULL;
        return LG_OK;
    }
    if (strcmp(s, "none") == 0) {
        *mode = LG_CHAT_BODY_NONE;
        return LG_OK;
    }
    static const char prefix[] = "truncated:";
    if (strncmp(s, prefix, sizeof(prefix) - 1) != 0) {
        return LG_ERR_INVALID;
    }
    const char *p = s + sizeof(prefix) - 1;
    size_t n = 0;
    if (*p == '\0') {
        return LG_ERR_INVALID;
    }
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || n > LG_CHAT_MAX_RESPONSE_BYTES) {
            return LG_ERR_INVALID;
        }
        n = n * 10 + (size_t)(*p - '0');
    }
    if (n == 0 || n > LG_CHAT_MAX_RESPONSE_BYTES) {
        return LG_ERR_INVALID;
    }
    *mode = LG_CHAT_BODY_TRUNCATED;
    *max_bytes = n;
    return LG_OK;
}

static int chat_register(lg_chat_service *svc)
{
    const struct lg_grpc_method_cbs stream_cbs = {NULL, chat_stream_on_message, NULL,
                                                  chat_sub_on_writable, chat_sub_on_close};
    const struct lg_grpc_method_cbs complete_cbs = {NULL, chat_complete_on_message, NULL, NULL,
                                                    chat_complete_on_close};
    const struct lg_grpc_method_cbs cancel_cbs = {NULL, chat_cancel_on_message, NULL, NULL,
                                                  chat_noop_on_close};
    const struct lg_grpc_method_cbs usage_cbs = {NULL, chat_usage_on_message, NULL, NULL,
                                                 chat_usage_on_close};
    const struct lg_grpc_method_cbs resume_cbs = {NULL, chat_resume_on_message, NULL,
                                                  chat_sub_on_writable, chat_sub_on_close};
    int rc = lg_grpc_server_register(svc->srv, CHAT_PATH_STREAM, LG_GRPC_SERVER_STREAMING,
                                     &stream_cbs, svc);
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(svc->srv, CHAT_PATH_RESUME, LG_GRPC_SERVER_STREAMING,
                                     &resume_cbs, svc);
    }
    if (rc == LG_OK) {
        /* A follower of a stream: its reset (llmgate-sse cancels it when a browser goes away)
         * wastes no model call, so it spends no rapid-reset budget. */
        rc = lg_grpc_server_exempt_from_reset_budget(svc->srv, CHAT_PATH_RESUME);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(svc->srv, CHAT_PATH_COMPLETE, LG_GRPC_UNARY, &complete_cbs,
                                     svc);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(svc->srv, CHAT_PATH_CANCEL, LG_GRPC_UNARY, &cancel_cbs, svc);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(svc->srv, USAGE_PATH_LIST, LG_GRPC_UNARY, &usage_cbs, svc);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(svc->srv, USAGE_PATH_GET, LG_GRPC_UNARY, &usage_cbs, svc);
    }
    return rc;
}

static void chat_register_metrics(lg_chat_service *svc)
{
    lg_metrics *m = svc->opts.metrics;
    if (m == NULL) {
        return;
    }
    /* Registration failures leave a NULL series, which every update accepts as a no-op. */
    (void)lg_metrics_register_counter(m, "llmgate_chat_streams_started_total",
                                      "Chat calls started (StreamChat and Complete)",
                                      &svc->m_started);
    (void)lg_metrics_register_counter(m, "llmgate_chat_tokens_streamed_total",
                                      "Content deltas delivered by providers", &svc->m_tokens);
    (void)lg_metrics_register_gauge(m, "llmgate_chat_streams",
                                    "Streams alive: generating, in grace, or retained",
                                    &svc->m_streams);
    (void)lg_metrics_register_counter(m, "llmgate_chat_records_total",
                                      "Billing records handed to the sink", &svc->m_records);
    (void)lg_metrics_register_counter(m, "llmgate_chat_records_dropped_total",
                                      "Billing records the sink refused", &svc->m_record_drops);
    (void)lg_metrics_register_counter(m, "llmgate_chat_answers_before_written_total",
                                      "Calls answered before their record reached the spool "
                                      "file (it could not write within the wait)",
                                      &svc->m_unwritten_answers);
    /* Microsecond buckets: the gateway's share of TTFT is far below the default latency
     * buckets (5 ms and up). */
    static const double overhead_buckets[] = {25e-6, 50e-6, 100e-6, 200e-6, 500e-6,
                                              1e-3,  2e-3,  5e-3,   10e-3};
    const struct lg_metrics_desc d = {
        LG_METRICS_HISTOGRAM,
        "llmgate_chat_gateway_ttft_overhead_seconds",
        "Gateway's own share of time to first token on upstream calls (request in to "
        "upstream hand-off, plus first upstream token to event queued)",
        NULL,
        0,
        overhead_buckets,
        sizeof(overhead_buckets) / sizeof(overhead_buckets[0])};
    lg_metrics_family *f = NULL;
    if (lg_metrics_register(m, &d, &f) == LG_OK) {
        (void)lg_metrics_family_with_labels(f, NULL, &svc->m_overhead);
    }
    static const char *const call_labels[] = {"provider", "status"};
    const struct lg_metrics_desc calls = {
        LG_METRICS_COUNTER,
        "llmgate_chat_calls_total",
        "Upstream calls by provider config id and billing-record status",
        call_labels,
        2,
        NULL,
        0};
    (void)lg_metrics_register(m, &calls, &svc->m_calls);
    static const char *const ttft_labels[] = {"provider"};
    const struct lg_metrics_desc ttft = {
        LG_METRICS_HISTOGRAM,
        "llmgate_chat_time_to_first_token_seconds",
        "Request start to the first content token, by provider config id",
        ttft_labels,
        1,
        NULL,
        0};
    (void)lg_metrics_register(m, &ttft, &svc->m_ttft);
    static const char *const err_labels[] = {"provider", "kind"};
    const struct lg_metrics_desc errs = {
        LG_METRICS_COUNTER,
        "llmgate_upstream_errors_total",
        "Upstream calls that failed on the provider's side, by provider config id and kind "
        "(timeout, unavailable, rate_limited, auth, malformed, rejected, upstream, other)",
        err_labels,
        2,
        NULL,
        0};
    (void)lg_metrics_register(m, &errs, &svc->m_upstream_errors);
    (void)lg_metrics_register_counter(m, "llmgate_chat_config_reloads_total",
                                      "Provider/price configurations applied by SIGHUP",
                                      &svc->m_reloads);
    (void)lg_metrics_register_gauge(m, "llmgate_chat_open_streams",
                                    "Streams generating (with or without a reader), not yet "
                                    "finished",
                                    &svc->m_open);
}

int lg_chat_service_new(lg_chat_service **out, struct event_base *base, lg_grpc_server *srv,
                        const struct lg_chat_service_opts *opts)
{
    if (opts->cfg == NULL || opts->replay_max_events == 0 ||
        opts->replay_max_events > LG_CHAT_REPLAY_MAX_EVENTS ||
        opts->replay_max_bytes > LG_CHAT_REPLAY_MAX_BYTES ||
        opts->grace_ms > LG_CHAT_GRACE_MS_MAX || opts->retention_ms > LG_CHAT_RETENTION_MS_MAX ||
        opts->demo_pace_ms > LG_CHAT_DEMO_PACE_MS_MAX || opts->max_streams == 0 ||
        opts->max_streams > LG_CHAT_MAX_STREAMS) {
        return LG_ERR_INVALID;
    }
    lg_chat_service *svc = lg_calloc(1, sizeof(*svc));
    if (svc == NULL) {
        return LG_ERR_NOMEM;
    }
    svc->tag = CHAT_TAG_SERVICE;
    svc->base = base;
    svc->srv = srv;
    svc->opts = *opts;
    lg_buf_init(&svc->scratch, LG_CHAT_MAX_EVENT_BYTES);
    pthread_mutex_init(&svc->usage_lock, NULL);
    svc->usage_ev = event_new(base, -1, 0, usage_on_ready, svc);
    int rc =
        svc->usage_ev != NULL ? lg_chat_registry_new(&svc->reg, opts->max_streams) : LG_ERR_NOMEM;
    if (rc == LG_OK) {
        rc = lg_chat_registry_set_node(svc->reg, opts->node);
    }
    if (rc != LG_OK) {
        goto out_free_svc;
    }
    svc->cfg = chat_cfg_add(svc, opts->cfg, NULL);
    if (svc->cfg == NULL) {
        rc = LG_ERR_NOMEM;
        goto out_free_svc;
    }
    svc->held_ev = evtimer_new(base, chat_on_held, svc);
    if (svc->held_ev == NULL) {
        rc = LG_ERR_NOMEM;
        goto out_free_svc;
    }
    if (opts->sink != NULL && opts->sink->set_notify != NULL && opts->sink->ticket != NULL) {
        /* Woken by the shipper the moment a held answer's record is written, instead of
         * polling every LG_CHAT_DURABLE_POLL_US. */
        opts->sink->set_notify(opts->sink->impl, chat_held_notify, svc);
        svc->held_notified = true;
    }
    svc->sweep = event_new(base, -1, EV_PERSIST, chat_on_sweep, svc);
    struct timeval tv = {LG_CHAT_SWEEP_MS / 1000, (LG_CHAT_SWEEP_MS % 1000) * 1000};
    if (svc->sweep == NULL || event_add(svc->sweep, &tv) != 0) {
        rc = LG_ERR_NOMEM;
        goto out_free_svc;
    }
    rc = chat_register(svc);
    if (rc != LG_OK) {
        goto out_free_svc;
    }
    chat_register_metrics(svc);
    *out = svc;
    return LG_OK;
out_free_svc:
    lg_chat_service_free(svc);
    return rc;
}

void lg_chat_service_free(lg_chat_service *svc)
{
    if (svc == NULL) {
        return;
    }
    if (svc->sweep != NULL) {
        event_free(svc->sweep);
    }
    while (svc->held_head != NULL) {
        chat_held_release(svc->held_head); /* shutting down: the drain writes the records */
    }
    if (svc->held_notified) {
        /* Returns once no notification is running: none can reach the freed event. */
        svc->opts.sink->set_notify(svc->opts.sink->impl, NULL, NULL);
    }
    if (svc->held_ev != NULL) {
        event_free(svc->held_ev);
    }
    while (svc->streams != NULL) {
        struct chat_stream *st = svc->streams;
        st->unary = NULL; /* the server is gone: no call to answer */
        chat_stream_stop(st, LG_ERR_CANCELLED, "service shutting down");
        if (st->registered) {
            lg_chat_registry_remove(svc->reg, st->id);
        }
        chat_stream_free(st);
    }
    chat_cfg_unref(svc, svc->cfg); /* the streams, gone now, held the others */
    lg_chat_registry_free(svc->reg);
    lg_buf_deinit(&svc->scratch);
    /* lg_usage_free (called before this) has run every pending job's callback. */
    usage_on_ready(-1, 0, svc);
    if (svc->usage_ev != NULL) {
        event_free(svc->usage_ev);
    }
    pthread_mutex_destroy(&svc->usage_lock);
    lg_free(svc);
}

int lg_chat_service_set_config(lg_chat_service *svc, lg_chat_config *cfg)
{
    if (cfg == NULL) {
        return LG_ERR_INVALID;
    }
    struct chat_cfg *c = chat_cfg_add(svc, cfg, cfg);
    if (c == NULL) {
        return LG_ERR_NOMEM;
    }
    struct chat_cfg *old = svc->cfg;
    svc->cfg = c;
    chat_cfg_unref(svc, old);
    lg_metrics_counter_inc(svc->m_reloads);
    lg_log(LG_LOG_INFO, NULL, "config_applied", "providers=%zu", lg_chat_config_count(cfg));
    return LG_OK;
}

size_t lg_chat_service_get_stream_count(const lg_chat_service *svc)
{
    return svc->n_streams;
}
