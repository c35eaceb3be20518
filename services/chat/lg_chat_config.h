/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_config: the provider configuration of llmgate-chat, loaded from a JSON file
 * (--config), or the built-in default (the demo provider serving model "demo").
 *
 *   {"providers": [
 *     {"id": "openai", "kind": "openai", "base_url": "https://api.openai.com/v1",
 *      "api_key_env": "OPENAI_API_KEY",          (or "api_key_file": "/run/secrets/key")
 *      "connect_timeout_ms": 5000, "first_byte_timeout_ms": 60000, "idle_timeout_ms": 30000,
 *      "max_retries": 2,
 *      "models": [{"name": "gpt-4o", "upstream_model": "gpt-4o-2024-08-06",
 *                  "input_usd_per_mtok": 2.5, "cached_input_usd_per_mtok": 1.25,
 *                  "output_usd_per_mtok": 10}]},
 *     {"id": "demo", "kind": "demo"}]}
 *
 * A model without the three prices is served but billed at cost 0 and flagged. Timeouts and
 * retries may only tighten the compiled maxima (lg_limits.h, chat section). The API key is
 * read once at load; it is never logged and never copied into records or error messages.
 *
 * Thread: loaded at startup, read-only afterwards (any thread may read).
 * Ownership: the config owns every string; pointers returned are borrowed until
 * lg_chat_config_free.
 * Errors: LG_ERR_INVALID (with a one-line reason naming the key, never a secret), LG_ERR_IO
 * (file unreadable), LG_ERR_TOO_LARGE, LG_ERR_NOMEM. lg_chat_config_resolve returns
 * LG_ERR_INVALID for an unknown provider or model.
 */
#ifndef LG_CHAT_CONFIG_H
#define LG_CHAT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lg_chat_price.h"

enum lg_chat_provider_kind {
    LG_CHAT_PROVIDER_DEMO = 0,   /* built-in, offline */
    LG_CHAT_PROVIDER_OPENAI = 1, /* OpenAI-compatible /chat/completions */
};

/* One model a provider serves. */
struct lg_chat_model_cfg {
    char *name;           /* what callers ask for */
    char *upstream_model; /* what is sent upstream (defaults to name) */
};

/* One provider config (read-only after load). */
struct lg_chat_provider_cfg {
    char *id; /* provider_config_id */
    enum lg_chat_provider_kind kind;
    char *base_url; /* openai: e.g. "http://127.0.0.1:8000/v1" (no trailing /) */
    char *api_key;  /* secret; NULL when none; never log */
    uint32_t connect_timeout_ms;
    uint32_t first_byte_timeout_ms; /* from sending the request to the first body byte */
    uint32_t idle_timeout_ms;       /* longest gap between two body reads */
    uint32_t max_retries;           /* attempts after the first, before the first token */
    struct lg_chat_model_cfg *models;
    size_t n_models;
    lg_chat_price *prices; /* per model name */
};

typedef struct lg_chat_config lg_chat_config;

/* Loads |path|. On LG_ERR_INVALID/IO a reason goes to |why| (|why_len| bytes). */
int lg_chat_config_load(lg_chat_config **out, const char *path, char *why, size_t why_len);
/* Parses JSON text |text| (|len| bytes); same as lg_chat_config_load otherwise. */
int lg_chat_config_parse(lg_chat_config **out, const char *text, size_t len, char *why,
                         size_t why_len);
/* The default: one provider "demo" of kind demo serving model "demo" at demo prices. */
int lg_chat_config_new_default(lg_chat_config **out);
void lg_chat_config_free(lg_chat_config *cfg);

/* Finds the provider and model for a request: by |provider_config_id| when not empty (the
 * model must be one of its models), else the first provider serving |model|. LG_OK with
 * borrowed pointers, or LG_ERR_INVALID with a reason in |why|. */
int lg_chat_config_resolve(const lg_chat_config *cfg, const char *provider_config_id,
                           const char *model, const struct lg_chat_provider_cfg **prov_out,
                           const struct lg_chat_model_cfg **model_out, char *why, size_t why_len);

size_t lg_chat_config_count(const lg_chat_config *cfg);
const struct lg_chat_provider_cfg *lg_chat_config_get(const lg_chat_config *cfg, size_t i);
/* "demo" or "openai". */
const char *lg_chat_config_kind_name(enum lg_chat_provider_kind kind);

#endif /* LG_CHAT_CONFIG_H */
