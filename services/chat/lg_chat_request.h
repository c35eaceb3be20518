/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_request: the chat request as the service sees it (independent of protobuf-c), and
 * its validation.
 *
 * The RPC layer (lg_chat_service) unpacks a ChatRequest and fills this plain struct with
 * borrowed pointers into the call's arena; providers and the billing code read only this.
 * Validation refuses what no provider should see: no messages, an unknown role, empty or
 * over-long ids, absurd max_tokens or temperature, prompts over LG_CHAT_MAX_PROMPT_BYTES.
 * Whether the model exists is decided by the provider config (lg_chat_config_resolve).
 *
 * Thread: pure functions; any thread.
 * Ownership: every pointer in the structs is borrowed from whoever filled them.
 * Errors: LG_ERR_INVALID, with a one-line reason (safe to show to the caller: it never
 * quotes message content).
 */
#ifndef LG_CHAT_REQUEST_H
#define LG_CHAT_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lg_buf;

/* One conversation message. */
struct lg_chat_message {
    const char *role;    /* NUL-terminated */
    const char *content; /* |content_len| bytes, NUL-terminated after them */
    size_t content_len;
};

/* One metadata entry. */
struct lg_chat_kv {
    const char *key;   /* NUL-terminated */
    const char *value; /* NUL-terminated */
};

/* A chat request. Strings are NUL-terminated; "" for absent. */
struct lg_chat_request {
    const char *user_id;
    const char *conversation_id;
    const char *agent_id;
    const char *provider_config_id;
    const char *model;
    const struct lg_chat_message *messages;
    size_t n_messages;
    bool has_temperature;
    double temperature; /* valid when has_temperature; 0..2 */
    bool has_max_tokens;
    uint32_t max_tokens; /* valid when has_max_tokens; 1..LG_CHAT_MAX_TOKENS_LIMIT */
    const struct lg_chat_kv *metadata;
    size_t n_metadata;
};

/* Checks |r|. Returns LG_OK, or LG_ERR_INVALID with a reason in |why| (|why_len| bytes,
 * NUL-terminated, no CR/LF). */
int lg_chat_request_validate(const struct lg_chat_request *r, char *why, size_t why_len);

/* True when |role| is one the service accepts (system, user, assistant, tool, developer). */
bool lg_chat_request_is_known_role(const char *role);

/* Total bytes of message content. */
size_t lg_chat_request_prompt_len(const struct lg_chat_request *r);

/* Appends the messages as a JSON array [{"role":..,"content":..},...] to |out| (for the
 * upstream body and the billing record). LG_OK, LG_ERR_TOO_LARGE, LG_ERR_NOMEM. */
int lg_chat_request_append_messages_json(const struct lg_chat_request *r, struct lg_buf *out);

/* Appends the metadata as a JSON object to |out|. LG_OK, LG_ERR_TOO_LARGE, LG_ERR_NOMEM. */
int lg_chat_request_append_metadata_json(const struct lg_chat_request *r, struct lg_buf *out);

#endif /* LG_CHAT_REQUEST_H */
