/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_openai.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "lg_buf.h"
#include "lg_chat_config.h"
#include "lg_chat_request.h"
#include "lg_chat_sse.h"
#include "lg_curlm.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

#define LG_LOG_MODULE "openai"
#include "lg_log.h"

/* Longest header line we look at (Retry-After values are short). */
#define OPENAI_HEADER_VALUE_BYTES 64
/* Longest error message kept from an upstream error body. */
#define OPENAI_MESSAGE_BYTES 256
#define OPENAI_FINISH_BYTES  32
#define OPENAI_PATH          "/chat/completions"

struct openai_upcall {
    struct lg_chat_upcall base; /* first: the stream holds this */
    lg_curlm *curlm;
    struct lg_chat_provider_cbs cbs;
    void *user_data;
    char request_id[OPENAI_HEADER_VALUE_BYTES];

    /* What every attempt sends. */
    struct lg_buf body;
    char *url;
    struct curl_slist *headers; /* includes the Authorization header: a secret */
    uint32_t connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms;
    uint32_t max_retries;

    /* The current attempt. */
    CURL *easy; /* NULL between attempts */
    uint32_t attempts;
    long http_status;
    bool status_known;     /* http_status read for this attempt */
    struct lg_buf errbody; /* a non-2xx body, capped */
    char retry_after[OPENAI_HEADER_VALUE_BYTES];
    char retry_after_ms[OPENAI_HEADER_VALUE_BYTES];
    lg_chat_sse *sse;
    struct event *timer;       /* first-byte, then idle timeout */
    struct event *retry_timer; /* backoff between attempts */

    /* The stream's outcome so far. */
    bool delivered; /* a delta went out: no more retries */
    bool saw_done;  /* "[DONE]" */
    char finish_reason[OPENAI_FINISH_BYTES];
    bool has_usage;
    struct lg_chat_usage usage;
    int fail_err; /* set by the parser or a mid-stream error object */
    char fail_msg[OPENAI_MESSAGE_BYTES];

    bool in_callback; /* inside cbs.on_delta */
    bool cancelled;   /* cancel came inside on_delta: abort, then free quietly */
};

/* ---- sans-I/O parts -------------------------------------------------------------------- */

int lg_chat_openai_status_err(long http_status)
{
    switch (http_status) {
    case 400:
    case 404:
    case 413:
    case 422:
        return LG_ERR_INVALID;
    case 401:
    case 403:
        return LG_ERR_UNAUTHENTICATED;
    case 429:
        return LG_ERR_EXHAUSTED;
    case 408:
        return LG_ERR_UNAVAILABLE;
    default:
        return http_status >= 500 ? LG_ERR_UNAVAILABLE : LG_ERR_UPSTREAM;
    }
}

bool lg_chat_openai_is_retryable(long http_status)
{
    /* The statuses openai-python retries (_base_client.py), plus connection failures. */
    return http_status == 0 || http_status == 408 || http_status == 409 || http_status == 429 ||
           http_status >= 500;
}

static bool openai_parse_uint(const char *s, int64_t *out)
{
    int64_t v = 0;
    if (*s < '0' || *s > '9') {
        return false;
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > INT64_MAX / 10 - 10) {
            return false;
        }
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return *s == '\0' || *s == '.' || isspace((unsigned char)*s);
}

int64_t lg_chat_openai_retry_after_ms(const char *retry_after, const char *retry_after_ms,
                                      int64_t now_unix)
{
    int64_t v;
    if (retry_after_ms != NULL && retry_after_ms[0] != '\0' &&
        openai_parse_uint(retry_after_ms, &v)) {
        return v;
    }
    if (retry_after == NULL || retry_after[0] == '\0') {
        return -1;
    }
    if (openai_parse_uint(retry_after, &v)) {
        return v <= INT64_MAX / 1000 ? v * 1000 : -1;
    }
    time_t when = curl_getdate(retry_after, NULL);
    if (when < 0) {
        return -1;
    }
    return when > now_unix ? ((int64_t)when - now_unix) * 1000 : 0;
}

int lg_chat_openai_build_body(const struct lg_chat_call_params *params, struct lg_buf *out)
{
    const struct lg_chat_request *req = params->req;
    int rc = lg_buf_append_str(out, "{\"model\":\"");
    if (rc == LG_OK) {
        rc = lg_buf_append_json_escaped(out, (const uint8_t *)params->upstream_model,
                                        strlen(params->upstream_model));
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(out, "\",\"messages\":");
    }
    if (rc == LG_OK) {
        rc = lg_chat_request_append_messages_json(req, out);
    }
    if (rc == LG_OK) {
        /* include_usage: the final chunk carries exact usage (research/gateway.md §4). */
        rc = lg_buf_append_str(out, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    }
    if (rc == LG_OK && req->has_temperature) {
        rc = lg_buf_appendf(out, ",\"temperature\":%.17g", req->temperature);
    }
    if (rc == LG_OK && req->has_max_tokens) {
        rc = lg_buf_appendf(out, ",\"max_tokens\":%u", req->max_tokens);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(out, '}');
    }
    return rc;
}

void lg_chat_openai_chunk_deinit(struct lg_chat_openai_chunk *c)
{
    if (c->json_ != NULL) {
        json_decref(c->json_);
        c->json_ = NULL;
    }
}

static uint32_t openai_u32(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return 0;
    }
    json_int_t n = json_integer_value(v);
    return n > (json_int_t)UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

int lg_chat_openai_parse_chunk(struct lg_slice data, struct lg_chat_openai_chunk *out)
{
    memset(out, 0, sizeof(*out));
    static const char done[] = "[DONE]";
    if (data.len == sizeof(done) - 1 && memcmp(data.ptr, done, data.len) == 0) {
        out->done = true;
        return LG_OK;
    }
    json_t *root = json_loadb((const char *)data.ptr, data.len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return LG_ERR_MALFORMED;
    }
    out->json_ = root;
    json_t *err = json_object_get(root, "error");
    if (err != NULL && !json_is_null(err)) {
        const char *m = json_string_value(json_object_get(err, "message"));
        out->error_message =
            m != NULL ? m : (json_is_string(err) ? json_string_value(err) : "upstream error");
        return LG_OK;
    }
    json_t *choices = json_object_get(root, "choices");
    json_t *c0 = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
    if (json_is_object(c0)) {
        json_t *content = json_object_get(json_object_get(c0, "delta"), "content");
        if (json_is_string(content) && json_string_length(content) > 0) {
            out->content = json_string_value(content);
            out->content_len = json_string_length(content);
        }
        out->finish_reason = json_string_value(json_object_get(c0, "finish_reason"));
    }
    json_t *usage = json_object_get(root, "usage");
    if (json_is_object(usage)) {
        out->has_usage = true;
        out->usage.prompt_tokens = openai_u32(usage, "prompt_tokens");
        out->usage.completion_tokens = openai_u32(usage, "completion_tokens");
        out->usage.cached_tokens =
            openai_u32(json_object_get(usage, "prompt_tokens_details"), "cached_tokens");
    }
    return LG_OK;
}

/* Drops a UTF-8 sequence cut in half at the end of |s| (after a %.200s of upstream text):
 * the message goes into a protobuf string, which must be valid UTF-8. */
static void openai_utf8_trim(char *s)
{
    size_t n = strlen(s);
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0u) == 0x80u) {
        i--;
    }
    if (i == 0 || ((unsigned char)s[i - 1] & 0x80u) == 0) {
        return; /* ends in ASCII (or only continuation bytes: left to the peer to reject) */
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0u ? 4 : lead >= 0xE0u ? 3 : lead >= 0xC0u ? 2 : 1;
    if (n - (i - 1) < need) {
        s[i - 1] = '\0';
    }
}

/* ---- the upcall ------------------------------------------------------------------------ */

static void openai_attempt_reset(struct openai_upcall *o)
{
    if (o->easy != NULL) {
        lg_curlm_remove(o->curlm, o->easy); /* LG_ERR_NOT_FOUND when already done: fine */
        curl_easy_cleanup(o->easy);
        o->easy = NULL;
    }
    lg_chat_sse_free(o->sse);
    o->sse = NULL;
    lg_buf_reset(&o->errbody);
    o->http_status = 0;
    o->status_known = false;
    o->retry_after[0] = '\0';
    o->retry_after_ms[0] = '\0';
    if (o->timer != NULL) {
        evtimer_del(o->timer);
    }
}

static void openai_free(struct openai_upcall *o)
{
    openai_attempt_reset(o);
    if (o->timer != NULL) {
        event_free(o->timer);
    }
    if (o->retry_timer != NULL) {
        event_free(o->retry_timer);
    }
    /* The Authorization header is a secret: clear it before the memory is reused. */
    for (struct curl_slist *h = o->headers; h != NULL; h = h->next) {
        explicit_bzero(h->data, strlen(h->data));
    }
    curl_slist_free_all(o->headers);
    lg_free(o->url);
    lg_buf_deinit(&o->body);
    lg_buf_deinit(&o->errbody);
    lg_free(o);
}

static void openai_done(struct openai_upcall *o, int err, const char *message)
{
    struct lg_chat_outcome out = {
        .err = err,
        .finish_reason =
            err == LG_OK ? (o->finish_reason[0] != '\0' ? o->finish_reason : "stop") : NULL,
        .message = message,
        .has_usage = o->has_usage,
        .usage = o->usage,
        .attempts = o->attempts,
        .http_status = o->http_status,
    };
    struct lg_log_ctx ctx = {0, NULL, o->request_id, NULL};
    if (err != LG_OK) {
        lg_log(LG_LOG_WARN, &ctx, "upstream_failed", "err=%s http_status=%ld attempts=%u",
               lg_err_name(err), o->http_status, o->attempts);
    }
    o->cbs.on_done(&out, o->user_data);
    openai_free(o);
}

static void openai_arm_timer(struct openai_upcall *o, uint32_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)((ms % 1000u) * 1000u)};
    evtimer_add(o->timer, &tv);
}

static int openai_on_sse_event(struct lg_slice event, struct lg_slice data, void *user_data)
{
    (void)event;
    struct openai_upcall *o = user_data;
    struct lg_chat_openai_chunk c;
    int rc = lg_chat_openai_parse_chunk(data, &c);
    if (rc != LG_OK) {
        o->fail_err = LG_ERR_MALFORMED;
        snprintf(o->fail_msg, sizeof(o->fail_msg), "upstream sent a malformed chunk");
        return rc;
    }
    if (c.error_message != NULL) {
        o->fail_err = LG_ERR_UPSTREAM;
        snprintf(o->fail_msg, sizeof(o->fail_msg), "upstream error: %.200s", c.error_message);
        openai_utf8_trim(o->fail_msg);
        lg_chat_openai_chunk_deinit(&c);
        return LG_ERR_UPSTREAM;
    }
    o->saw_done = o->saw_done || c.done;
    if (c.finish_reason != NULL) {
        snprintf(o->finish_reason, sizeof(o->finish_reason), "%s", c.finish_reason);
    }
    if (c.has_usage) {
        /* The last report wins. Some servers (vLLM's continuous usage stats) send cumulative
         * usage on every chunk: adding them up would overcount (Langfuse #8808). A final
         * chunk may carry both text and usage (LiteLLM #36168): both are kept. */
        o->has_usage = true;
        o->usage = c.usage;
    }
    if (c.content != NULL) {
        o->delivered = true;
        o->in_callback = true;
        o->cbs.on_delta(c.content, c.content_len, o->user_data);
        o->in_callback = false;
    }
    lg_chat_openai_chunk_deinit(&c);
    return o->cancelled ? LG_ERR_CANCELLED : LG_OK;
}

static size_t openai_on_body(char *ptr, size_t size, size_t nmemb, void *user_data)
{
    struct openai_upcall *o = user_data;
    size_t n = size * nmemb;
    if (!o->status_known) {
        curl_easy_getinfo(o->easy, CURLINFO_RESPONSE_CODE, &o->http_status);
        o->status_known = true;
    }
    openai_arm_timer(o, o->idle_timeout_ms);
    if (o->http_status < 200 || o->http_status > 299) {
        size_t room = LG_CHAT_UPSTREAM_ERROR_BODY_BYTES - o->errbody.len;
        (void)lg_buf_append(&o->errbody, ptr, n < room ? n : room);
        return n;
    }
    if (o->sse == NULL && lg_chat_sse_new(&o->sse, LG_CHAT_SSE_MAX_LINE_BYTES,
                                          LG_CHAT_SSE_MAX_EVENT_BYTES) != LG_OK) {
        o->fail_err = LG_ERR_NOMEM;
        return 0;
    }
    int rc = lg_chat_sse_feed(o->sse, (const uint8_t *)ptr, n, openai_on_sse_event, o);
    if (rc != LG_OK) {
        if (o->fail_err == LG_OK && !o->cancelled) {
            o->fail_err = rc == LG_ERR_NOMEM ? LG_ERR_NOMEM : LG_ERR_MALFORMED;
            snprintf(o->fail_msg, sizeof(o->fail_msg), "upstream stream broken: %s",
                     lg_err_str(rc));
        }
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    return n;
}

static size_t openai_on_header(char *buf, size_t size, size_t nitems, void *user_data)
{
    struct openai_upcall *o = user_data;
    size_t n = size * nitems;
    static const char ra[] = "retry-after:";
    static const char ra_ms[] = "retry-after-ms:";
    char *dst = NULL;
    size_t skip = 0;
    if (n > sizeof(ra_ms) - 1 && strncasecmp(buf, ra_ms, sizeof(ra_ms) - 1) == 0) {
        dst = o->retry_after_ms;
        skip = sizeof(ra_ms) - 1;
    } else if (n > sizeof(ra) - 1 && strncasecmp(buf, ra, sizeof(ra) - 1) == 0) {
        dst = o->retry_after;
        skip = sizeof(ra) - 1;
    } else if (n > 5 && strncmp(buf, "HTTP/", 5) == 0) {
        o->retry_after[0] = '\0'; /* a new response (after 100 Continue, or a redirect) */
        o->retry_after_ms[0] = '\0';
    }
    if (dst != NULL) {
        const char *v = buf + skip;
        size_t len = n - skip;
        while (len > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            len--;
        }
        while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ')) {
            len--;
        }
        if (len >= OPENAI_HEADER_VALUE_BYTES) {
            len = OPENAI_HEADER_VALUE_BYTES - 1;
        }
        memcpy(dst, v, len);
        dst[len] = '\0';
    }
    return n;
}

static int openai_start_attempt(struct openai_upcall *o);
static void openai_on_xfer_done(CURL *easy, CURLcode result, void *user_data);

/* Decides between a retry and the end, for a failure |err| with |http_status|. */
static void openai_fail(struct openai_upcall *o, int err, const char *message)
{
    bool retryable = !o->delivered && lg_chat_openai_is_retryable(o->http_status) &&
                     err != LG_ERR_TIMEOUT && err != LG_ERR_MALFORMED && err != LG_ERR_UPSTREAM &&
                     err != LG_ERR_NOMEM;
    if (!retryable || o->attempts > o->max_retries) {
        openai_done(o, err, message);
        return;
    }
    int64_t wait =
        lg_chat_openai_retry_after_ms(o->retry_after, o->retry_after_ms, (int64_t)time(NULL));
    if (wait > LG_CHAT_UPSTREAM_RETRY_AFTER_MAX_MS) {
        openai_done(o, err, "upstream asked to retry later than the gateway waits");
        return;
    }
    if (wait < 0) {
        uint64_t backoff = (uint64_t)LG_CHAT_UPSTREAM_BACKOFF_BASE_MS << (o->attempts - 1);
        wait = (int64_t)(backoff < LG_CHAT_UPSTREAM_BACKOFF_MAX_MS
                             ? backoff
                             : (uint64_t)LG_CHAT_UPSTREAM_BACKOFF_MAX_MS);
    }
    struct lg_log_ctx ctx = {0, NULL, o->request_id, NULL};
    lg_log(LG_LOG_INFO, &ctx, "upstream_retry", "http_status=%ld attempt=%u wait_ms=%lld",
           o->http_status, o->attempts, (long long)wait);
    openai_attempt_reset(o);
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
    evtimer_add(o->retry_timer, &tv);
}

static void openai_on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct openai_upcall *o = arg;
    int rc = openai_start_attempt(o);
    if (rc != LG_OK) {
        openai_done(o, rc, "could not start the upstream request");
    }
}

static void openai_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct openai_upcall *o = arg;
    const char *msg = o->status_known ? "upstream stream went idle" : "upstream sent no response";
    openai_attempt_reset(o);
    openai_done(o, LG_ERR_TIMEOUT, msg);
}

/* Extracts error.message from an OpenAI-style error body, into |out|. */
static void openai_error_message(struct openai_upcall *o, char *out, size_t outlen)
{
    snprintf(out, outlen, "upstream answered HTTP %ld", o->http_status);
    if (o->http_status == 401 || o->http_status == 403) {
        return; /* these messages can echo (parts of) the key: never pass them on */
    }
    json_t *root = json_loadb((const char *)o->errbody.data, o->errbody.len, 0, NULL);
    const char *m = json_string_value(json_object_get(json_object_get(root, "error"), "message"));
    if (m != NULL) {
        snprintf(out, outlen, "upstream answered HTTP %ld: %.200s", o->http_status, m);
        openai_utf8_trim(out);
    }
    json_decref(root);
}

static void openai_on_xfer_done(CURL *easy, CURLcode result, void *user_data)
{
    (void)easy;
    struct openai_upcall *o = user_data;
    evtimer_del(o->timer);
    if (o->cancelled) {
        openai_free(o);
        return;
    }
    if (!o->status_known) {
        curl_easy_getinfo(o->easy, CURLINFO_RESPONSE_CODE, &o->http_status);
    }
    char msg[OPENAI_MESSAGE_BYTES];
    if (o->fail_err != LG_OK) {
        snprintf(msg, sizeof(msg), "%s", o->fail_msg);
        openai_done(o, o->fail_err, msg);
        return;
    }
    if (result != CURLE_OK) {
        snprintf(msg, sizeof(msg), "upstream connection failed: %s", curl_easy_strerror(result));
        o->http_status = 0;
        openai_fail(o, result == CURLE_OPERATION_TIMEDOUT ? LG_ERR_TIMEOUT : LG_ERR_UNAVAILABLE,
                    msg);
        return;
    }
    if (o->http_status < 200 || o->http_status > 299) {
        openai_error_message(o, msg, sizeof(msg));
        openai_fail(o, lg_chat_openai_status_err(o->http_status), msg);
        return;
    }
    if (o->saw_done || o->finish_reason[0] != '\0') {
        openai_done(o, LG_OK, NULL);
        return;
    }
    /* The body ended without a finish: a cut stream. */
    snprintf(msg, sizeof(msg), "upstream stream ended before it finished");
    if (o->delivered) {
        openai_done(o, LG_ERR_MALFORMED, msg);
        return;
    }
    o->http_status = 0; /* retry like a connection failure */
    openai_fail(o, LG_ERR_UNAVAILABLE, msg);
}

static int openai_start_attempt(struct openai_upcall *o)
{
    o->easy = curl_easy_init();
    if (o->easy == NULL) {
        return LG_ERR_NOMEM;
    }
    o->attempts++;
    CURL *e = o->easy;
    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)o->body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, openai_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, o);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, openai_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, o);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
    /* HTTP/2 over TLS when the upstream offers it in ALPN; h2c is not assumed. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    int rc = lg_curlm_add(o->curlm, e, openai_on_xfer_done, o);
    if (rc != LG_OK) {
        curl_easy_cleanup(e);
        o->easy = NULL;
        return rc;
    }
    openai_arm_timer(o, o->first_byte_timeout_ms);
    return LG_OK;
}

static void openai_cancel(struct lg_chat_upcall *u)
{
    struct openai_upcall *o = (struct openai_upcall *)u;
    if (o->in_callback) {
        /* Inside curl's write callback: the transfer cannot be removed here. The callback
         * returns an error, curl ends the transfer, and the done callback frees quietly. */
        o->cancelled = true;
        return;
    }
    openai_free(o);
}

static int openai_headers(struct openai_upcall *o, const struct lg_chat_call_params *params)
{
    struct lg_buf h;
    lg_buf_init(&h, LG_CHAT_MAX_SECRET_BYTES + 64);
    const char *fixed[] = {"Content-Type: application/json", "Accept: text/event-stream",
                           "Expect:"};
    int rc = LG_OK;
    for (size_t i = 0; rc == LG_OK && i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        struct curl_slist *n = curl_slist_append(o->headers, fixed[i]);
        rc = n != NULL ? LG_OK : LG_ERR_NOMEM;
        o->headers = n != NULL ? n : o->headers;
    }
    if (rc == LG_OK) {
        rc = lg_buf_appendf(&h, "X-Request-Id: %s", params->request_id);
    }
    if (rc == LG_OK) {
        struct curl_slist *n = curl_slist_append(o->headers, (const char *)h.data);
        rc = n != NULL ? LG_OK : LG_ERR_NOMEM;
        o->headers = n != NULL ? n : o->headers;
    }
    if (rc == LG_OK && params->cfg->api_key != NULL) {
        lg_buf_reset(&h);
        rc = lg_buf_appendf(&h, "Authorization: Bearer %s", params->cfg->api_key);
        struct curl_slist *n =
            rc == LG_OK ? curl_slist_append(o->headers, (const char *)h.data) : NULL;
        rc = n != NULL ? LG_OK : LG_ERR_NOMEM;
        o->headers = n != NULL ? n : o->headers;
    }
    if (h.data != NULL) {
        explicit_bzero(h.data, h.len);
    }
    lg_buf_deinit(&h);
    return rc;
}

int lg_chat_openai_start(lg_curlm *curlm, struct event_base *base,
                         const struct lg_chat_call_params *params,
                         const struct lg_chat_provider_cbs *cbs, void *user_data,
                         struct lg_chat_upcall **out)
{
    const struct lg_chat_provider_cfg *cfg = params->cfg;
    struct openai_upcall *o = lg_calloc(1, sizeof(*o));
    if (o == NULL) {
        return LG_ERR_NOMEM;
    }
    o->base.cancel = openai_cancel;
    o->curlm = curlm;
    o->cbs = *cbs;
    o->user_data = user_data;
    snprintf(o->request_id, sizeof(o->request_id), "%s", params->request_id);
    o->connect_timeout_ms = cfg->connect_timeout_ms;
    o->first_byte_timeout_ms = cfg->first_byte_timeout_ms;
    o->idle_timeout_ms = cfg->idle_timeout_ms;
    o->max_retries = cfg->max_retries;
    lg_buf_init(&o->body, LG_CHAT_UPSTREAM_MAX_REQUEST_BYTES);
    lg_buf_init(&o->errbody, LG_CHAT_UPSTREAM_ERROR_BODY_BYTES);
    int rc = lg_chat_openai_build_body(params, &o->body);
    if (rc == LG_OK) {
        size_t base_len = strlen(cfg->base_url);
        o->url = lg_malloc(base_len + sizeof(OPENAI_PATH));
        rc = o->url != NULL ? LG_OK : LG_ERR_NOMEM;
        if (rc == LG_OK) {
            memcpy(o->url, cfg->base_url, base_len);
            memcpy(o->url + base_len, OPENAI_PATH, sizeof(OPENAI_PATH));
        }
    }
    if (rc == LG_OK) {
        rc = openai_headers(o, params);
    }
    if (rc == LG_OK) {
        o->timer = evtimer_new(base, openai_on_timeout, o);
        o->retry_timer = evtimer_new(base, openai_on_retry_timer, o);
        rc = o->timer != NULL && o->retry_timer != NULL ? LG_OK : LG_ERR_NOMEM;
    }
    if (rc == LG_OK) {
        rc = openai_start_attempt(o);
    }
    if (rc != LG_OK) {
        openai_free(o);
        return rc;
    }
    *out = &o->base;
    return LG_OK;
}
