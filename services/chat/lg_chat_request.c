/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_request.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"

/* OpenAI accepts temperatures in [0, 2]; other providers use a subset. */
#define REQUEST_TEMPERATURE_MAX 2.0

static const char *const known_roles[] = {"system", "user", "assistant", "tool", "developer"};

bool lg_chat_request_is_known_role(const char *role)
{
    for (size_t i = 0; i < sizeof(known_roles) / sizeof(known_roles[0]); i++) {
        if (strcmp(role, known_roles[i]) == 0) {
            return true;
        }
    }
    return false;
}

size_t lg_chat_request_prompt_len(const struct lg_chat_request *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_messages; i++) {
        n += r->messages[i].content_len;
    }
    return n;
}

__attribute__((format(printf, 3, 4))) static int request_refuse(char *why, size_t why_len,
                                                                const char *fmt, ...)
{
    /* Only field names and numbers are printed, never content. */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return LG_ERR_INVALID;
}

static int request_check_ids(const struct lg_chat_request *r, char *why, size_t why_len)
{
    const char *names[] = {"user_id", "conversation_id", "agent_id", "provider_config_id", "model"};
    const char *vals[] = {r->user_id, r->conversation_id, r->agent_id, r->provider_config_id,
                          r->model};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(vals[i]) > LG_CHAT_MAX_ID_BYTES) {
            return request_refuse(why, why_len, "%s is longer than %zu bytes", names[i],
                                  (size_t)LG_CHAT_MAX_ID_BYTES);
        }
    }
    if (r->user_id[0] == '\0') {
        return request_refuse(why, why_len, "%s is required", "user_id");
    }
    if (r->model[0] == '\0') {
        return request_refuse(why, why_len, "%s is required", "model");
    }
    return LG_OK;
}

static int request_check_messages(const struct lg_chat_request *r, char *why, size_t why_len)
{
    if (r->n_messages == 0) {
        return request_refuse(why, why_len, "%s must not be empty", "messages");
    }
    if (r->n_messages > LG_CHAT_MAX_MESSAGES) {
        return request_refuse(why, why_len, "%s: more than %zu", "messages",
                              (size_t)LG_CHAT_MAX_MESSAGES);
    }
    for (size_t i = 0; i < r->n_messages; i++) {
        if (!lg_chat_request_is_known_role(r->messages[i].role)) {
            return request_refuse(why, why_len,
                                  "%s[%zu].role must be system, user, assistant, tool or developer",
                                  "messages", i);
        }
    }
    if (lg_chat_request_prompt_len(r) > LG_CHAT_MAX_PROMPT_BYTES) {
        return request_refuse(why, why_len, "%s: content is larger than %zu bytes", "messages",
                              (size_t)LG_CHAT_MAX_PROMPT_BYTES);
    }
    return LG_OK;
}

static int request_check_params(const struct lg_chat_request *r, char *why, size_t why_len)
{
    if (r->has_max_tokens && (r->max_tokens == 0 || r->max_tokens > LG_CHAT_MAX_TOKENS_LIMIT)) {
        return request_refuse(why, why_len, "%s must be between 1 and %zu", "max_tokens",
                              (size_t)LG_CHAT_MAX_TOKENS_LIMIT);
    }
    if (r->has_temperature &&
        !(r->temperature >= 0.0 && r->temperature <= REQUEST_TEMPERATURE_MAX)) {
        return request_refuse(why, why_len, "%s must be between 0 and %zu", "temperature",
                              (size_t)REQUEST_TEMPERATURE_MAX);
    }
    if (r->n_metadata > LG_CHAT_MAX_METADATA) {
        return request_refuse(why, why_len, "%s: more than %zu entries", "metadata",
                              (size_t)LG_CHAT_MAX_METADATA);
    }
    for (size_t i = 0; i < r->n_metadata; i++) {
        if (strlen(r->metadata[i].key) > LG_CHAT_MAX_ID_BYTES ||
            strlen(r->metadata[i].value) > LG_CHAT_MAX_METADATA_VALUE_BYTES) {
            return request_refuse(why, why_len, "%s entry %zu is too long", "metadata", i);
        }
    }
    return LG_OK;
}

int lg_chat_request_validate(const struct lg_chat_request *r, char *why, size_t why_len)
{
    /* Counts first: a view over the caps carries counts but no entries (chat_view_request
     * in lg_chat_service.c), so no entry may be read before both counts are checked. */
    if (r->n_metadata > LG_CHAT_MAX_METADATA) {
        return request_refuse(why, why_len, "%s: more than %zu entries", "metadata",
                              (size_t)LG_CHAT_MAX_METADATA);
    }
    int rc = request_check_ids(r, why, why_len);
    if (rc == LG_OK) {
        rc = request_check_messages(r, why, why_len);
    }
    if (rc == LG_OK) {
        rc = request_check_params(r, why, why_len);
    }
    return rc;
}

static int request_append_json_str(struct lg_buf *out, const char *s, size_t len)
{
    int rc = lg_buf_append_byte(out, '"');
    if (rc == LG_OK) {
        rc = lg_buf_append_json_escaped(out, (const uint8_t *)s, len);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(out, '"');
    }
    return rc;
}

int lg_chat_request_append_messages_json(const struct lg_chat_request *r, struct lg_buf *out)
{
    int rc = lg_buf_append_byte(out, '[');
    for (size_t i = 0; rc == LG_OK && i < r->n_messages; i++) {
        const struct lg_chat_message *m = &r->messages[i];
        rc = lg_buf_append_str(out, i == 0 ? "{\"role\":" : ",{\"role\":");
        if (rc == LG_OK) {
            rc = request_append_json_str(out, m->role, strlen(m->role));
        }
        if (rc == LG_OK) {
            rc = lg_buf_append_str(out, ",\"content\":");
        }
        if (rc == LG_OK) {
            rc = request_append_json_str(out, m->content, m->content_len);
        }
        if (rc == LG_OK) {
            rc = lg_buf_append_byte(out, '}');
        }
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(out, ']');
    }
    return rc;
}

int lg_chat_request_append_metadata_json(const struct lg_chat_request *r, struct lg_buf *out)
{
    int rc = lg_buf_append_byte(out, '{');
    for (size_t i = 0; rc == LG_OK && i < r->n_metadata; i++) {
        if (i > 0) {
            rc = lg_buf_append_byte(out, ',');
        }
        if (rc == LG_OK) {
            rc = request_append_json_str(out, r->metadata[i].key, strlen(r->metadata[i].key));
        }
        if (rc == LG_OK) {
            rc = lg_buf_append_byte(out, ':');
        }
        if (rc == LG_OK) {
            rc = request_append_json_str(out, r->metadata[i].value, strlen(r->metadata[i].value));
        }
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(out, '}');
    }
    return rc;
}
