/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_price.h"

#include <math.h>
#include <string.h>

#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

/* Prices are per 1M tokens. */
#define PRICE_TOKENS_PER_UNIT 1000000ull
#define NANO_PER_USD          1e9

/* With price <= LG_CHAT_PRICE_MAX_NUSD_PER_MTOK (1e13) and tokens < 2^32 (4.3e9), the
 * quotient part tokens * (price / 1e6) stays below 4.3e16 and each remainder part
 * tokens * (price % 1e6) below 4.3e15: three of each sum well inside 2^64 (1.8e19). */
_Static_assert(LG_CHAT_PRICE_MAX_NUSD_PER_MTOK <= 10000000000000ull,
               "cost math overflow bound assumes prices <= 1e13 nano-USD per 1M tokens");

struct price_model {
    char *name;
    struct lg_chat_price_entry price;
};

struct lg_chat_price {
    struct price_model *models; /* lg_malloc'd array of |max| */
    size_t count;
    size_t max;
};

int lg_chat_price_new(lg_chat_price **out, size_t max_models)
{
    lg_chat_price *t = lg_calloc(1, sizeof(*t));
    if (t == NULL) {
        return LG_ERR_NOMEM;
    }
    if (max_models > 0) {
        t->models = lg_calloc(max_models, sizeof(*t->models));
        if (t->models == NULL) {
            lg_free(t);
            return LG_ERR_NOMEM;
        }
    }
    t->max = max_models;
    *out = t;
    return LG_OK;
}

void lg_chat_price_free(lg_chat_price *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->count; i++) {
        lg_free(t->models[i].name);
    }
    lg_free(t->models);
    lg_free(t);
}

static const struct price_model *price_find(const lg_chat_price *t, const char *model)
{
    for (size_t i = 0; i < t->count; i++) {
        if (strcmp(t->models[i].name, model) == 0) {
            return &t->models[i];
        }
    }
    return NULL;
}

int lg_chat_price_add(lg_chat_price *t, const char *model, const struct lg_chat_price_entry *price)
{
    size_t n = strlen(model);
    if (n == 0 || n > LG_CHAT_MAX_ID_BYTES) {
        return LG_ERR_INVALID;
    }
    if (price->input_nusd_per_mtok > LG_CHAT_PRICE_MAX_NUSD_PER_MTOK ||
        price->cached_input_nusd_per_mtok > LG_CHAT_PRICE_MAX_NUSD_PER_MTOK ||
        price->output_nusd_per_mtok > LG_CHAT_PRICE_MAX_NUSD_PER_MTOK) {
        return LG_ERR_INVALID;
    }
    if (price_find(t, model) != NULL) {
        return LG_ERR_INVALID;
    }
    if (t->count == t->max) {
        return LG_ERR_TOO_LARGE;
    }
    char *name = lg_strndup(model, n);
    if (name == NULL) {
        return LG_ERR_NOMEM;
    }
    t->models[t->count].name = name;
    t->models[t->count].price = *price;
    t->count++;
    return LG_OK;
}

int lg_chat_price_from_usd(double usd_per_mtok, uint64_t *out)
{
    /* The comparison is false for NaN, so NaN is refused too. */
    if (!(usd_per_mtok >= 0.0) ||
        usd_per_mtok * NANO_PER_USD > (double)LG_CHAT_PRICE_MAX_NUSD_PER_MTOK) {
        return LG_ERR_INVALID;
    }
    /* Rounding to the nearest nano-USD makes any price written with at most nine decimals
     * exact ("0.15" is 0.1499999... as a double). */
    *out = (uint64_t)llround(usd_per_mtok * NANO_PER_USD);
    return LG_OK;
}

uint64_t lg_chat_price_compute(const struct lg_chat_price_entry *price,
                               const struct lg_chat_price_usage *usage)
{
    uint64_t cached =
        usage->cached_tokens <= usage->prompt_tokens ? usage->cached_tokens : usage->prompt_tokens;
    uint64_t tokens[3] = {usage->prompt_tokens - cached, cached, usage->completion_tokens};
    uint64_t prices[3] = {price->input_nusd_per_mtok, price->cached_input_nusd_per_mtok,
                          price->output_nusd_per_mtok};
    /* sum(t * p) / 1e6 computed as sum(t * (p / 1e6)) + sum(t * (p % 1e6)) / 1e6: the same
     * exact value, without a 128-bit intermediate (bounds in the _Static_assert above). */
    uint64_t whole = 0;
    uint64_t rest = 0;
    for (size_t i = 0; i < 3; i++) {
        whole += tokens[i] * (prices[i] / PRICE_TOKENS_PER_UNIT);
        rest += tokens[i] * (prices[i] % PRICE_TOKENS_PER_UNIT);
    }
    /* Round half up: a call is billed to the nearest nano-USD. */
    return whole + (rest + PRICE_TOKENS_PER_UNIT / 2) / PRICE_TOKENS_PER_UNIT;
}

enum lg_chat_price_result lg_chat_price_cost(const lg_chat_price *t, const char *model,
                                             const struct lg_chat_price_usage *usage,
                                             uint64_t *cost_nusd)
{
    const struct price_model *m = t != NULL && model != NULL ? price_find(t, model) : NULL;
    if (m == NULL) {
        *cost_nusd = 0;
        return LG_CHAT_PRICE_UNPRICED;
    }
    *cost_nusd = lg_chat_price_compute(&m->price, usage);
    return LG_CHAT_PRICE_PRICED;
}

size_t lg_chat_price_count(const lg_chat_price *t)
{
    return t->count;
}
