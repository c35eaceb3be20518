/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_price: the per-model price table and the exact cost of one call.
 *
 * Prices are integers: nano-USD (USD * 1e9) per 1M tokens, for input, cached input and
 * output. Cost = (prompt - cached) * input + cached * cached_input + completion * output,
 * divided by 1e6 once at the end and rounded half up, so the result is exact integer
 * nano-USD with no float anywhere (research/gateway.md "Shipper rules"). A model with no
 * price costs 0 and is flagged (LG_CHAT_PRICE_UNPRICED), never guessed.
 *
 * Thread: a table is built at startup and then read-only; lookups from any thread.
 * Ownership: the table copies model names; lg_chat_price_free releases them.
 * Errors: LG_ERR_INVALID (price above LG_CHAT_PRICE_MAX_NUSD_PER_MTOK, empty or over-long
 * model name, duplicate), LG_ERR_TOO_LARGE (table full), LG_ERR_NOMEM.
 */
#ifndef LG_CHAT_PRICE_H
#define LG_CHAT_PRICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Prices of one model, nano-USD per 1M tokens. */
struct lg_chat_price_entry {
    uint64_t input_nusd_per_mtok;        /* uncached prompt tokens */
    uint64_t cached_input_nusd_per_mtok; /* prompt tokens served from the provider's cache */
    uint64_t output_nusd_per_mtok;       /* completion tokens */
};

/* Token counts of one call, as reported (or estimated). */
struct lg_chat_price_usage {
    uint32_t prompt_tokens; /* includes cached_tokens */
    uint32_t completion_tokens;
    uint32_t cached_tokens; /* part of prompt_tokens; clamped to it */
};

typedef struct lg_chat_price lg_chat_price;

/* The outcome of pricing one call. */
enum lg_chat_price_result {
    LG_CHAT_PRICE_PRICED = 0,   /* the model had a price; cost is exact */
    LG_CHAT_PRICE_UNPRICED = 1, /* no price for the model; cost is 0 */
};

/* Creates an empty table holding at most |max_models|. Returned owned. */
int lg_chat_price_new(lg_chat_price **out, size_t max_models);
void lg_chat_price_free(lg_chat_price *t);

/* Adds |model| (copied) with |price|. Errors: see the header comment. */
int lg_chat_price_add(lg_chat_price *t, const char *model, const struct lg_chat_price_entry *price);

/* Converts a price in USD per 1M tokens (as written in config files, e.g. 2.5) to nano-USD,
 * rounding to the nearest nano-USD. Returns LG_OK, or LG_ERR_INVALID for a negative, NaN or
 * too large value. */
int lg_chat_price_from_usd(double usd_per_mtok, uint64_t *out);

/* Computes the cost of |usage| for |model| into |*cost_nusd|. Returns LG_CHAT_PRICE_PRICED
 * or LG_CHAT_PRICE_UNPRICED (cost 0). |t| may be NULL (everything unpriced). */
enum lg_chat_price_result lg_chat_price_cost(const lg_chat_price *t, const char *model,
                                             const struct lg_chat_price_usage *usage,
                                             uint64_t *cost_nusd);

/* Pure cost math for one price entry (exposed for tests and for callers holding an entry). */
uint64_t lg_chat_price_compute(const struct lg_chat_price_entry *price,
                               const struct lg_chat_price_usage *usage);

/* Number of models in the table. */
size_t lg_chat_price_count(const lg_chat_price *t);

#endif /* LG_CHAT_PRICE_H */
