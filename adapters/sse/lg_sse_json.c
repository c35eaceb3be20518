/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_sse_json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "lg_err.h"
#include "lg_limits.h"

/* Longest model, conversation, agent or provider config id accepted. */
#define JSON_MAX_ID_BYTES 128
/* Largest max_tokens accepted; the provider applies its own, smaller cap. */
#define JSON_MAX_MAX_TOKENS 1000000
/* Highest temperature OpenAI accepts. */
#define JSON_MAX_TEMPERATURE 2.0
/* Metadata pairs in one request, and bytes of one metadata key or value. */
#define JSON_MAX_META        16
#define JSON_MAX_META_BYTES  512

static void *json_lg_malloc(size_t n)
{
    return lg_malloc(n);
}

static void json_lg_free(void *p)
{
    lg_free(p);
}

void lg_sse_json_use_lg_alloc(void)
{
    json_set_alloc_funcs(json_lg_malloc, json_lg_free);
}

/* Nesting depth of the JSON text, scanned before parsing so a deep document is refused
 * without building it. Strings are skipped (brackets inside them do not count). */
static size_t json_depth(const char *s, size_t len)
{
    size_t depth = 0;
    size_t max = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = false;
            }
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            depth++;
            max = depth > max ? depth : max;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

/* Writes the reason |a||b| for the client and returns |rc|. */
static int why_set(char *why, size_t whylen, int rc, const char *a, const char *b)
{
    if (why != NULL && whylen > 0) {
        size_t off = 0;
        for (const char *p = a; *p != 0 && off + 1 < whylen; p++) {
            why[off++] = *p;
        }
        for (const char *p = b; *p != 0 && off + 1 < whylen; p++) {
            why[off++] = *p;
        }
        why[off] = 0;
    }
    return rc;
}

/* Copies optional string field |name| of |obj| into |*out| (NULL when absent or null). */
static int opt_str(lg_arena *a, json_t *obj, const char *name, size_t max, const char **out,
                   char *why, size_t whylen)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return LG_OK;
    }
    if (!json_is_string(v)) {
        return why_set(why, whylen, LG_ERR_INVALID, name, " must be a string");
    }
    size_t n = json_string_length(v);
    if (n > max) {
        return why_set(why, whylen, LG_ERR_TOO_LARGE, name, " is too long");
    }
    *out = lg_arena_strndup(a, json_string_value(v), n);
    return *out != NULL ? LG_OK : LG_ERR_NOMEM;
}

static bool is_role(const char *r)
{
    return strcmp(r, "system") == 0 || strcmp(r, "user") == 0 ||
           strcmp(r, "assistant") == 0 || strcmp(r, "tool") == 0 ||
           strcmp(r, "developer") == 0;
}

/* OpenAI content may be a string or an array of {"type":"text","text":...} parts; parts are
 * joined (non-text parts are refused: this gateway carries text only). */
static int msg_content(lg_arena *a, json_t *c, const char **out, char *why, size_t whylen)
{
    if (json_is_string(c)) {
        *out = lg_arena_strndup(a, json_string_value(c), json_string_length(c));
        return *out != NULL ? LG_OK : LG_ERR_NOMEM;
    }
    if (c == NULL || json_is_null(c)) {
        *out = "";
        return LG_OK;
    }
    if (!json_is_array(c)) {
        return why_set(why, whylen, LG_ERR_INVALID, "message content must be a string", "");
    }
    size_t total = 0;
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part)
    {
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(json_object_get(part, "type")) ||
            strcmp(json_string_value(json_object_get(part, "type")), "text") != 0 ||
            !json_is_string(t)) {
            return why_set(why, whylen, LG_ERR_INVALID, "only text content parts", "");
        }
        total += json_string_length(t);
    }
    char *s = lg_arena_alloc(a, total + 1);
    if (s == NULL) {
        return LG_ERR_NOMEM;
    }
    size_t off = 0;
    json_array_foreach(c, i, part)
    {
        json_t *t = json_object_get(part, "text");
        memcpy(s + off, json_string_value(t), json_string_length(t));
        off += json_string_length(t);
    }
    s[off] = 0;
    *out = s;
    return LG_OK;
}

static int parse_messages(lg_arena *a, json_t *root, struct lg_sse_chat_req *out, char *why,
                          size_t whylen)
{
    json_t *msgs = json_object_get(root, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        return why_set(why, whylen, LG_ERR_INVALID, "messages must be a non-empty array", "");
    }
    if (json_array_size(msgs) > LG_SSE_MAX_MESSAGES) {
        return why_set(why, whylen, LG_ERR_TOO_LARGE, "too many messages", "");
    }
    out->n_msgs = json_array_size(msgs);
    out->msgs = lg_arena_alloc(a, out->n_msgs * sizeof(*out->msgs));
    if (out->msgs == NULL) {
        return LG_ERR_NOMEM;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        json_t *role = json_object_get(m, "role");
        if (!json_is_object(m) || !json_is_string(role) || !is_role(json_string_value(role))) {
            return why_set(why, whylen, LG_ERR_INVALID, "each message needs a role (system, user, assistant, tool)",
                           "");
        }
        out->msgs[i].role = lg_arena_strndup(a, json_string_value(role), json_string_length(role));
        if (out->msgs[i].role == NULL) {
            return LG_ERR_NOMEM;
        }
        int rc = msg_content(a, json_object_get(m, "content"), &out->msgs[i].content, why, whylen);
        if (rc != LG_OK) {
            return rc;
        }
    }
    return LG_OK;
}

static int parse_meta(lg_arena *a, json_t *root, struct lg_sse_chat_req *out, char *why,
                      size_t whylen)
{
    json_t *meta = json_object_get(root, "metadata");
    if (meta == NULL || json_is_null(meta)) {
        return LG_OK;
    }
    if (!json_is_object(meta)) {
        return why_set(why, whylen, LG_ERR_INVALID, "metadata must be an object", "");
    }
    if (json_object_size(meta) > JSON_MAX_META) {
        return why_set(why, whylen, LG_ERR_TOO_LARGE, "too many metadata keys", "");
    }
    out->meta = lg_arena_alloc(a, (json_object_size(meta) + 1) * sizeof(*out->meta));
    if (out->meta == NULL) {
        return LG_ERR_NOMEM;
    }
    const char *k;
    json_t *v;
    json_object_foreach(meta, k, v)
    {
        if (!json_is_string(v) || strlen(k) > JSON_MAX_META_BYTES ||
            json_string_length(v) > JSON_MAX_META_BYTES) {
            return why_set(why, whylen, LG_ERR_INVALID, "metadata values must be short strings",
                           "");
        }
        struct lg_sse_kv *kv = &out->meta[out->n_meta];
        kv->key = lg_arena_strndup(a, k, strlen(k));
        kv->value = lg_arena_strndup(a, json_string_value(v), json_string_length(v));
        if (kv->key == NULL || kv->value == NULL) {
            return LG_ERR_NOMEM;
        }
        out->n_meta++;
    }
    return LG_OK;
}

static int parse_numbers(json_t *root, struct lg_sse_chat_req *out, char *why, size_t whylen)
{
    json_t *t = json_object_get(root, "temperature");
    if (t != NULL && !json_is_null(t)) {
        if (!json_is_number(t) || json_number_value(t) < 0.0 ||
            json_number_value(t) > JSON_MAX_TEMPERATURE) {
            return why_set(why, whylen, LG_ERR_INVALID, "temperature must be 0..2", "");
        }
        out->temperature = json_number_value(t);
        out->has_temperature = true;
    }
    json_t *mt = json_object_get(root, "max_completion_tokens");
    if (mt == NULL || json_is_null(mt)) {
        mt = json_object_get(root, "max_tokens");
    }
    if (mt != NULL && !json_is_null(mt)) {
        if (!json_is_integer(mt) || json_integer_value(mt) < 1 ||
            json_integer_value(mt) > JSON_MAX_MAX_TOKENS) {
            return why_set(why, whylen, LG_ERR_INVALID, "max_tokens must be 1..1000000", "");
        }
        out->max_tokens = (int64_t)json_integer_value(mt);
    }
    json_t *st = json_object_get(root, "stream");
    if (st != NULL && !json_is_null(st)) {
        if (!json_is_boolean(st)) {
            return why_set(why, whylen, LG_ERR_INVALID, "stream must be a boolean", "");
        }
        out->stream = json_is_true(st);
    }
    json_t *so = json_object_get(root, "stream_options");
    if (so != NULL && !json_is_null(so)) {
        json_t *iu = json_object_get(so, "include_usage");
        if (!json_is_object(so) || (iu != NULL && !json_is_boolean(iu))) {
            return why_set(why, whylen, LG_ERR_INVALID, "bad stream_options", "");
        }
        out->include_usage = json_is_true(iu);
    }
    return LG_OK;
}

static int parse_root(lg_arena *a, json_t *root, struct lg_sse_chat_req *out, char *why,
                      size_t whylen)
{
    int rc;
    if (!json_is_object(root)) {
        return why_set(why, whylen, LG_ERR_INVALID, "body must be a JSON object", "");
    }
    if ((rc = opt_str(a, root, "model", JSON_MAX_ID_BYTES, &out->model, why, whylen)) != LG_OK ||
        (rc = opt_str(a, root, "conversation_id", JSON_MAX_ID_BYTES, &out->conversation_id, why,
                      whylen)) != LG_OK ||
        (rc = opt_str(a, root, "agent_id", JSON_MAX_ID_BYTES, &out->agent_id, why, whylen)) !=
            LG_OK ||
        (rc = opt_str(a, root, "provider_config_id", JSON_MAX_ID_BYTES, &out->provider_config_id,
                      why, whylen)) != LG_OK) {
        return rc;
    }
    if (out->model == NULL || out->model[0] == 0) {
        return why_set(why, whylen, LG_ERR_INVALID, "model is required", "");
    }
    if ((rc = parse_messages(a, root, out, why, whylen)) != LG_OK ||
        (rc = parse_meta(a, root, out, why, whylen)) != LG_OK) {
        return rc;
    }
    return parse_numbers(root, out, why, whylen);
}

int lg_sse_json_parse_chat(lg_arena *a, const char *body, size_t len,
                           struct lg_sse_chat_req *out, char *why, size_t whylen)
{
    json_error_t jerr;
    memset(out, 0, sizeof(*out));
    if (len > LG_SSE_MAX_BODY_BYTES) {
        return why_set(why, whylen, LG_ERR_TOO_LARGE, "body too large", "");
    }
    if (json_depth(body, len) > LG_SSE_MAX_JSON_DEPTH) {
        return why_set(why, whylen, LG_ERR_TOO_LARGE, "JSON nested too deeply", "");
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return why_set(why, whylen, LG_ERR_MALFORMED, "body is not valid JSON", "");
    }
    int rc = parse_root(a, root, out, why, whylen);
    json_decref(root);
    return rc;
}

/* ---- output ----------------------------------------------------------------------------- */

#define OUT_TRY(b, mark, expr)                                                                 \
    do {                                                                                       \
        int out_rc_ = (expr);                                                                  \
        if (out_rc_ != LG_OK) {                                                                \
            (b)->len = (mark);                                                                 \
            if ((b)->data != NULL) {                                                           \
                (b)->data[mark] = 0;                                                           \
            }                                                                                  \
            return out_rc_;                                                                    \
        }                                                                                      \
    } while (0)

/* Appends "<s>" with escaping. */
static int put_str(struct lg_buf *b, const char *s)
{
    int rc = lg_buf_append_byte(b, '"');
    if (rc == LG_OK) {
        rc = lg_sse_enc_json_str(b, (const uint8_t *)s, strlen(s));
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(b, '"');
    }
    return rc;
}

int lg_sse_json_error(struct lg_buf *b, const char *code, const char *message)
{
    size_t mark = b->len;
    OUT_TRY(b, mark, lg_buf_append_str(b, "{\"error\":{\"code\":"));
    OUT_TRY(b, mark, put_str(b, code));
    OUT_TRY(b, mark, lg_buf_append_str(b, ",\"message\":"));
    OUT_TRY(b, mark, put_str(b, message));
    OUT_TRY(b, mark, lg_buf_append_str(b, "}}"));
    return LG_OK;
}

int lg_sse_json_created(struct lg_buf *b, const char *stream_id, const char *events_url)
{
    size_t mark = b->len;
    OUT_TRY(b, mark, lg_buf_append_str(b, "{\"stream_id\":"));
    OUT_TRY(b, mark, put_str(b, stream_id));
    OUT_TRY(b, mark, lg_buf_append_str(b, ",\"events_url\":"));
    OUT_TRY(b, mark, put_str(b, events_url));
    OUT_TRY(b, mark, lg_buf_append_str(b, "}"));
    return LG_OK;
}

int lg_sse_json_openai_error(struct lg_buf *b, const char *type, const char *code,
                             const char *message)
{
    size_t mark = b->len;
    OUT_TRY(b, mark, lg_buf_append_str(b, "{\"error\":{\"message\":"));
    OUT_TRY(b, mark, put_str(b, message));
    OUT_TRY(b, mark, lg_buf_append_str(b, ",\"type\":"));
    OUT_TRY(b, mark, put_str(b, type));
    OUT_TRY(b, mark, lg_buf_append_str(b, ",\"param\":null,\"code\":"));
    OUT_TRY(b, mark, put_str(b, code));
    OUT_TRY(b, mark, lg_buf_append_str(b, "}}"));
    return LG_OK;
}

/* `data: {"id":..,"object":"chat.completion.chunk","created":..,"model":..,` */
static int chunk_head(struct lg_buf *b, const struct lg_sse_oai_ctx *c)
{
    int rc = lg_buf_append_str(b, "data: {\"id\":");
    if (rc == LG_OK) {
        rc = put_str(b, c->id);
    }
    if (rc == LG_OK) {
        rc = lg_buf_appendf(b, ",\"object\":\"chat.completion.chunk\",\"created\":%" PRId64
                               ",\"model\":",
                            c->created);
    }
    if (rc == LG_OK) {
        rc = put_str(b, c->model);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(b, ",\"system_fingerprint\":null,");
    }
    return rc;
}

int lg_sse_json_oai_chunk_role(struct lg_buf *b, const struct lg_sse_oai_ctx *c)
{
    size_t mark = b->len;
    OUT_TRY(b, mark, chunk_head(b, c));
    OUT_TRY(b, mark,
            lg_buf_append_str(b, "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
                                 "\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}"
                                 "\n\n"));
    return LG_OK;
}

int lg_sse_json_oai_chunk_text(struct lg_buf *b, const struct lg_sse_oai_ctx *c,
                               const uint8_t *text, size_t len)
{
    size_t mark = b->len;
    OUT_TRY(b, mark, chunk_head(b, c));
    OUT_TRY(b, mark, lg_buf_append_str(b, "\"choices\":[{\"index\":0,\"delta\":{\"content\":\""));
    OUT_TRY(b, mark, lg_sse_enc_json_str(b, text, len));
    OUT_TRY(b, mark,
            lg_buf_append_str(b, "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"));
    return LG_OK;
}

int lg_sse_json_oai_chunk_finish(struct lg_buf *b, const struct lg_sse_oai_ctx *c,
                                 const char *finish_reason)
{
    size_t mark = b->len;
    OUT_TRY(b, mark, chunk_head(b, c));
    OUT_TRY(b, mark,
            lg_buf_append_str(b, "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
                                 "\"finish_reason\":"));
    OUT_TRY(b, mark, put_str(b, finish_reason != NULL ? finish_reason : "stop"));
    OUT_TRY(b, mark, lg_buf_append_str(b, "}]}\n\n"));
    return LG_OK;
}

static int usage_obj(struct lg_buf *b, const struct lg_sse_done *d)
{
    return lg_buf_appendf(b,
                          "\"usage\":{\"prompt_tokens\":%" PRIu64
                          ",\"completion_tokens\":%" PRIu64 ",\"total_tokens\":%" PRIu64
                          ",\"prompt_tokens_details\":{\"cached_tokens\":%" PRIu64 "}}",
                          d->prompt_tokens, d->completion_tokens, d->total_tokens,
                          d->cached_tokens);
}

int lg_sse_json_oai_chunk_usage(struct lg_buf *b, const struct lg_sse_oai_ctx *c,
                                const struct lg_sse_done *d)
{
    size_t mark = b->len;
    OUT_TRY(b, mark, chunk_head(b, c));
    OUT_TRY(b, mark, lg_buf_append_str(b, "\"choices\":[],"));
    OUT_TRY(b, mark, usage_obj(b, d));
    OUT_TRY(b, mark, lg_buf_append_str(b, "}\n\n"));
    return LG_OK;
}

int lg_sse_json_oai_done(struct lg_buf *b)
{
    return lg_buf_append_str(b, "data: [DONE]\n\n");
}

int lg_sse_json_oai_completion(struct lg_buf *b, const struct lg_sse_oai_ctx *c,
                               const uint8_t *text, size_t len, const struct lg_sse_done *d)
{
    size_t mark = b->len;
    OUT_TRY(b, mark, lg_buf_append_str(b, "{\"id\":"));
    OUT_TRY(b, mark, put_str(b, c->id));
    OUT_TRY(b, mark,
            lg_buf_appendf(b, ",\"object\":\"chat.completion\",\"created\":%" PRId64 ",\"model\":",
                           c->created));
    OUT_TRY(b, mark, put_str(b, c->model));
    OUT_TRY(b, mark,
            lg_buf_append_str(b, ",\"system_fingerprint\":null,\"choices\":[{\"index\":0,"
                                 "\"message\":{\"role\":\"assistant\",\"content\":\""));
    OUT_TRY(b, mark, lg_sse_enc_json_str(b, text, len));
    OUT_TRY(b, mark, lg_buf_append_str(b, "\",\"refusal\":null},\"logprobs\":null,"
                                          "\"finish_reason\":"));
    OUT_TRY(b, mark, put_str(b, d->finish_reason != NULL ? d->finish_reason : "stop"));
    OUT_TRY(b, mark, lg_buf_append_str(b, "}],"));
    OUT_TRY(b, mark, usage_obj(b, d));
    OUT_TRY(b, mark, lg_buf_append_str(b, "}"));
    return LG_OK;
}
