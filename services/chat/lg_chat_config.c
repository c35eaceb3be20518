/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

/* Demo prices (USD per 1M tokens: 0.50 in, 0.25 cached in, 1.50 out), so that the demo shows
 * real, non-zero costs end to end. */
#define DEMO_INPUT_NUSD_PER_MTOK  500000000ull
#define DEMO_CACHED_NUSD_PER_MTOK 250000000ull
#define DEMO_OUTPUT_NUSD_PER_MTOK 1500000000ull

struct lg_chat_config {
    struct lg_chat_provider_cfg *providers;
    size_t count;
};

__attribute__((format(printf, 3, 4))) static int config_fail(char *why, size_t why_len,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return LG_ERR_INVALID;
}

const char *lg_chat_config_kind_name(enum lg_chat_provider_kind kind)
{
    return kind == LG_CHAT_PROVIDER_OPENAI ? "openai" : "demo";
}

static void provider_deinit(struct lg_chat_provider_cfg *p)
{
    lg_free(p->id);
    lg_free(p->base_url);
    if (p->api_key != NULL) {
        /* Secrets do not linger in freed heap memory. */
        explicit_bzero(p->api_key, strlen(p->api_key));
        lg_free(p->api_key);
    }
    for (size_t i = 0; i < p->n_models; i++) {
        lg_free(p->models[i].name);
        lg_free(p->models[i].upstream_model);
    }
    lg_free(p->models);
    lg_chat_price_free(p->prices);
}

void lg_chat_config_free(lg_chat_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < cfg->count; i++) {
        provider_deinit(&cfg->providers[i]);
    }
    lg_free(cfg->providers);
    lg_free(cfg);
}

static int config_alloc(lg_chat_config **out, size_t n)
{
    lg_chat_config *cfg = lg_calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        return LG_ERR_NOMEM;
    }
    cfg->providers = lg_calloc(n, sizeof(*cfg->providers));
    if (cfg->providers == NULL) {
        lg_free(cfg);
        return LG_ERR_NOMEM;
    }
    *out = cfg;
    return LG_OK;
}

static void provider_defaults(struct lg_chat_provider_cfg *p)
{
    p->connect_timeout_ms = LG_CHAT_UPSTREAM_CONNECT_TIMEOUT_MS;
    p->first_byte_timeout_ms = LG_CHAT_UPSTREAM_FIRST_BYTE_TIMEOUT_MS;
    p->idle_timeout_ms = LG_CHAT_UPSTREAM_IDLE_TIMEOUT_MS;
    p->max_retries = LG_CHAT_UPSTREAM_MAX_RETRIES;
}

/* Sets up |p| as the demo provider serving "demo". */
static int provider_init_demo(struct lg_chat_provider_cfg *p, const char *id)
{
    provider_defaults(p);
    p->kind = LG_CHAT_PROVIDER_DEMO;
    p->id = lg_strdup(id);
    p->models = lg_calloc(1, sizeof(*p->models));
    int rc = p->id != NULL && p->models != NULL ? LG_OK : LG_ERR_NOMEM;
    if (rc == LG_OK) {
        p->models[0].name = lg_strdup("demo");
        p->models[0].upstream_model = lg_strdup("demo");
        p->n_models = 1;
        rc =
            p->models[0].name != NULL && p->models[0].upstream_model != NULL ? LG_OK : LG_ERR_NOMEM;
    }
    if (rc == LG_OK) {
        rc = lg_chat_price_new(&p->prices, 1);
    }
    if (rc == LG_OK) {
        struct lg_chat_price_entry e = {DEMO_INPUT_NUSD_PER_MTOK, DEMO_CACHED_NUSD_PER_MTOK,
                                        DEMO_OUTPUT_NUSD_PER_MTOK};
        rc = lg_chat_price_add(p->prices, "demo", &e);
    }
    return rc;
}

int lg_chat_config_new_default(lg_chat_config **out)
{
    lg_chat_config *cfg;
    int rc = config_alloc(&cfg, 1);
    if (rc != LG_OK) {
        return rc;
    }
    cfg->count = 1;
    rc = provider_init_demo(&cfg->providers[0], "demo");
    if (rc != LG_OK) {
        lg_chat_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return LG_OK;
}

/* Reads a whole small file (a config or a secret) into |out|, at most |max| bytes. */
static int config_read_file(const char *path, size_t max, struct lg_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return LG_ERR_IO;
    }
    int rc = LG_OK;
    for (;;) {
        size_t room = max - out->len;
        uint8_t probe;
        /* With the cap reached, one more byte means the file is too large. */
        uint8_t *p = room > 0 ? lg_buf_reserve(out, room < 4096 ? room : 4096) : &probe;
        if (p == NULL) {
            rc = LG_ERR_NOMEM;
            break;
        }
        ssize_t n = read(fd, p, room > 0 ? (room < 4096 ? room : 4096) : 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = LG_ERR_IO;
            break;
        }
        if (n == 0) {
            break;
        }
        if (room == 0) {
            rc = LG_ERR_TOO_LARGE;
            break;
        }
        lg_buf_commit(out, (size_t)n);
    }
    close(fd);
    return rc;
}

static int config_get_str(json_t *obj, const char *key, bool required, char **out, char *why,
                          size_t why_len, const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return required ? config_fail(why, why_len, "%s: \"%s\" is required", where, key) : LG_OK;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > LG_CFG_MAX_VALUE_BYTES) {
        return config_fail(why, why_len, "%s: \"%s\" must be a non-empty string", where, key);
    }
    *out = lg_strndup(json_string_value(v), json_string_length(v));
    return *out != NULL ? LG_OK : LG_ERR_NOMEM;
}

static int config_get_u32(json_t *obj, const char *key, uint32_t max, uint32_t *out, char *why,
                          size_t why_len, const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) {
        return LG_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        return config_fail(why, why_len, "%s: \"%s\" must be an integer in 0..%u", where, key, max);
    }
    /* Config can only tighten: the compiled default is also the maximum accepted here. */
    *out = (uint32_t)json_integer_value(v);
    return LG_OK;
}

/* Reads the API key from the variable named by "api_key_env" or the file "api_key_file". */
static int config_load_secret(json_t *pj, struct lg_chat_provider_cfg *p, char *why, size_t why_len)
{
    json_t *env = json_object_get(pj, "api_key_env");
    json_t *file = json_object_get(pj, "api_key_file");
    if (env != NULL && json_is_string(env)) {
        const char *val = getenv(json_string_value(env));
        if (val == NULL || val[0] == '\0' || strlen(val) > LG_CHAT_MAX_SECRET_BYTES) {
            return config_fail(why, why_len, "provider %s: environment variable %s is not set",
                               p->id, json_string_value(env));
        }
        p->api_key = lg_strdup(val);
        return p->api_key != NULL ? LG_OK : LG_ERR_NOMEM;
    }
    if (file != NULL && json_is_string(file)) {
        struct lg_buf b;
        lg_buf_init(&b, LG_CHAT_MAX_SECRET_BYTES);
        int rc = config_read_file(json_string_value(file), LG_CHAT_MAX_SECRET_BYTES, &b);
        if (rc != LG_OK) {
            lg_buf_deinit(&b);
            return config_fail(why, why_len, "provider %s: cannot read api_key_file %s", p->id,
                               json_string_value(file));
        }
        while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r' ||
                             b.data[b.len - 1] == ' ')) {
            b.len--;
        }
        p->api_key = lg_strndup((const char *)b.data, b.len);
        explicit_bzero(b.data, b.cap);
        lg_buf_deinit(&b);
        return p->api_key != NULL ? LG_OK : LG_ERR_NOMEM;
    }
    return LG_OK; /* local servers (vLLM, llama.cpp, Ollama) often need no key */
}

static int config_price_field(json_t *mj, const char *key, uint64_t *out, int *found, char *why,
                              size_t why_len, const char *model)
{
    json_t *v = json_object_get(mj, key);
    if (v == NULL) {
        return LG_OK;
    }
    if (!json_is_number(v) || lg_chat_price_from_usd(json_number_value(v), out) != LG_OK) {
        return config_fail(why, why_len, "model %s: \"%s\" must be a price in USD per 1M tokens",
                           model, key);
    }
    (*found)++;
    return LG_OK;
}

static int config_parse_model(json_t *mj, struct lg_chat_provider_cfg *p, char *why, size_t why_len)
{
    struct lg_chat_model_cfg *m = &p->models[p->n_models];
    if (!json_is_object(mj)) {
        return config_fail(why, why_len, "provider %s: each model must be an object", p->id);
    }
    int rc = config_get_str(mj, "name", true, &m->name, why, why_len, p->id);
    if (rc == LG_OK) {
        rc = config_get_str(mj, "upstream_model", false, &m->upstream_model, why, why_len, p->id);
    }
    if (rc == LG_OK && m->upstream_model == NULL) {
        m->upstream_model = lg_strdup(m->name);
        rc = m->upstream_model != NULL ? LG_OK : LG_ERR_NOMEM;
    }
    p->n_models++; /* counted now so that deinit frees what was set */
    if (rc != LG_OK) {
        return rc;
    }
    if (strlen(m->name) > LG_CHAT_MAX_ID_BYTES) {
        return config_fail(why, why_len, "provider %s: model name too long", p->id);
    }
    struct lg_chat_price_entry e = {0, 0, 0};
    int found = 0;
    rc = config_price_field(mj, "input_usd_per_mtok", &e.input_nusd_per_mtok, &found, why, why_len,
                            m->name);
    if (rc == LG_OK) {
        rc = config_price_field(mj, "cached_input_usd_per_mtok", &e.cached_input_nusd_per_mtok,
                                &found, why, why_len, m->name);
    }
    if (rc == LG_OK) {
        rc = config_price_field(mj, "output_usd_per_mtok", &e.output_nusd_per_mtok, &found, why,
                                why_len, m->name);
    }
    if (rc == LG_OK && found > 0) {
        /* A model priced for input but not cached input bills cached tokens as input. */
        if (json_object_get(mj, "cached_input_usd_per_mtok") == NULL) {
            e.cached_input_nusd_per_mtok = e.input_nusd_per_mtok;
        }
        rc = lg_chat_price_add(p->prices, m->name, &e);
        if (rc == LG_ERR_INVALID) {
            rc = config_fail(why, why_len, "provider %s: model %s listed twice", p->id, m->name);
        }
    }
    return rc;
}

static int config_parse_models(json_t *pj, struct lg_chat_provider_cfg *p, char *why,
                               size_t why_len)
{
    json_t *models = json_object_get(pj, "models");
    if (!json_is_array(models) || json_array_size(models) == 0 ||
        json_array_size(models) > LG_CHAT_MAX_MODELS) {
        return config_fail(why, why_len,
                           "provider %s: \"models\" must be a non-empty array of "
                           "at most %d",
                           p->id, LG_CHAT_MAX_MODELS);
    }
    size_t n = json_array_size(models);
    p->models = lg_calloc(n, sizeof(*p->models));
    if (p->models == NULL) {
        return LG_ERR_NOMEM;
    }
    int rc = lg_chat_price_new(&p->prices, n);
    for (size_t i = 0; rc == LG_OK && i < n; i++) {
        rc = config_parse_model(json_array_get(models, i), p, why, why_len);
    }
    return rc;
}

static int config_parse_openai(json_t *pj, struct lg_chat_provider_cfg *p, char *why,
                               size_t why_len)
{
    int rc = config_get_str(pj, "base_url", true, &p->base_url, why, why_len, p->id);
    if (rc != LG_OK) {
        return rc;
    }
    size_t n = strlen(p->base_url);
    while (n > 0 && p->base_url[n - 1] == '/') {
        p->base_url[--n] = '\0';
    }
    if (strncmp(p->base_url, "http://", 7) != 0 && strncmp(p->base_url, "https://", 8) != 0) {
        return config_fail(why, why_len,
                           "provider %s: base_url must start with http:// or "
                           "https://",
                           p->id);
    }
    const char *where = p->id;
    rc = config_get_u32(pj, "connect_timeout_ms", LG_CHAT_UPSTREAM_TIMEOUT_MS_MAX,
                        &p->connect_timeout_ms, why, why_len, where);
    if (rc == LG_OK) {
        rc = config_get_u32(pj, "first_byte_timeout_ms", LG_CHAT_UPSTREAM_TIMEOUT_MS_MAX,
                            &p->first_byte_timeout_ms, why, why_len, where);
    }
    if (rc == LG_OK) {
        rc = config_get_u32(pj, "idle_timeout_ms", LG_CHAT_UPSTREAM_TIMEOUT_MS_MAX,
                            &p->idle_timeout_ms, why, why_len, where);
    }
    if (rc == LG_OK) {
        rc = config_get_u32(pj, "max_retries", LG_CHAT_UPSTREAM_MAX_RETRIES_MAX, &p->max_retries,
                            why, why_len, where);
    }
    if (rc == LG_OK) {
        rc = config_load_secret(pj, p, why, why_len);
    }
    if (rc == LG_OK) {
        rc = config_parse_models(pj, p, why, why_len);
    }
    return rc;
}

static int config_parse_provider(json_t *pj, lg_chat_config *cfg, char *why, size_t why_len)
{
    struct lg_chat_provider_cfg *p = &cfg->providers[cfg->count];
    provider_defaults(p);
    cfg->count++; /* counted now so that lg_chat_config_free frees a half-parsed entry */
    if (!json_is_object(pj)) {
        return config_fail(why, why_len, "each provider must be an object");
    }
    int rc = config_get_str(pj, "id", true, &p->id, why, why_len, "provider");
    if (rc != LG_OK) {
        return rc;
    }
    for (size_t i = 0; i + 1 < cfg->count; i++) {
        if (strcmp(cfg->providers[i].id, p->id) == 0) {
            return config_fail(why, why_len, "provider %s: id used twice", p->id);
        }
    }
    const char *kind = json_string_value(json_object_get(pj, "kind"));
    if (kind != NULL && strcmp(kind, "openai") == 0) {
        p->kind = LG_CHAT_PROVIDER_OPENAI;
        return config_parse_openai(pj, p, why, why_len);
    }
    if (kind != NULL && strcmp(kind, "demo") == 0) {
        char *id = p->id;
        p->id = NULL;
        rc = provider_init_demo(p, id);
        lg_free(id);
        return rc;
    }
    return config_fail(why, why_len, "provider %s: \"kind\" must be \"openai\" or \"demo\"", p->id);
}

int lg_chat_config_parse(lg_chat_config **out, const char *text, size_t len, char *why,
                         size_t why_len)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return config_fail(why, why_len, "config is not valid JSON (line %d: %s)", jerr.line,
                           jerr.text);
    }
    json_t *providers = json_object_get(root, "providers");
    int rc;
    if (!json_is_array(providers) || json_array_size(providers) == 0 ||
        json_array_size(providers) > LG_CHAT_MAX_PROVIDERS) {
        rc = config_fail(why, why_len, "\"providers\" must be a non-empty array of at most %d",
                         LG_CHAT_MAX_PROVIDERS);
        goto out_put_root;
    }
    lg_chat_config *cfg;
    rc = config_alloc(&cfg, json_array_size(providers));
    if (rc != LG_OK) {
        goto out_put_root;
    }
    for (size_t i = 0; rc == LG_OK && i < json_array_size(providers); i++) {
        rc = config_parse_provider(json_array_get(providers, i), cfg, why, why_len);
    }
    if (rc != LG_OK) {
        lg_chat_config_free(cfg);
        goto out_put_root;
    }
    *out = cfg;
out_put_root:
    json_decref(root);
    return rc;
}

int lg_chat_config_load(lg_chat_config **out, const char *path, char *why, size_t why_len)
{
    struct lg_buf b;
    lg_buf_init(&b, LG_CHAT_CONFIG_MAX_BYTES);
    int rc = config_read_file(path, LG_CHAT_CONFIG_MAX_BYTES, &b);
    if (rc == LG_ERR_IO) {
        snprintf(why, why_len, "cannot read config file %s", path);
    } else if (rc == LG_ERR_TOO_LARGE) {
        snprintf(why, why_len, "config file %s is larger than %u bytes", path,
                 (unsigned)LG_CHAT_CONFIG_MAX_BYTES);
    }
    if (rc == LG_OK) {
        rc = lg_chat_config_parse(out, (const char *)b.data, b.len, why, why_len);
    }
    lg_buf_deinit(&b);
    return rc;
}

static const struct lg_chat_model_cfg *provider_find_model(const struct lg_chat_provider_cfg *p,
                                                           const char *model)
{
    for (size_t i = 0; i < p->n_models; i++) {
        if (strcmp(p->models[i].name, model) == 0) {
            return &p->models[i];
        }
    }
    return NULL;
}

int lg_chat_config_resolve(const lg_chat_config *cfg, const char *provider_config_id,
                           const char *model, const struct lg_chat_provider_cfg **prov_out,
                           const struct lg_chat_model_cfg **model_out, char *why, size_t why_len)
{
    bool by_id = provider_config_id != NULL && provider_config_id[0] != '\0';
    for (size_t i = 0; i < cfg->count; i++) {
        const struct lg_chat_provider_cfg *p = &cfg->providers[i];
        if (by_id && strcmp(p->id, provider_config_id) != 0) {
            continue;
        }
        const struct lg_chat_model_cfg *m = provider_find_model(p, model);
        if (m != NULL) {
            *prov_out = p;
            *model_out = m;
            return LG_OK;
        }
        if (by_id) {
            return config_fail(why, why_len, "unknown model for provider_config_id %s",
                               provider_config_id);
        }
    }
    if (by_id) {
        return config_fail(why, why_len, "unknown provider_config_id");
    }
    return config_fail(why, why_len, "unknown model");
}

size_t lg_chat_config_count(const lg_chat_config *cfg)
{
    return cfg->count;
}

const struct lg_chat_provider_cfg *lg_chat_config_get(const lg_chat_config *cfg, size_t i)
{
    return i < cfg->count ? &cfg->providers[i] : NULL;
}
