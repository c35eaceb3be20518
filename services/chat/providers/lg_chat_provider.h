/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_provider: the narrow interface between a chat stream and the provider that
 * generates its answer (the built-in demo, or an OpenAI-compatible upstream).
 *
 * A stream starts one upstream call ("upcall") with a provider's start function and
 * receives, on the loop thread: zero or more on_delta (text pieces, in order), then exactly
 * one on_done with the outcome (finish reason or error, token usage, attempts). Retries,
 * timeouts and backoff happen inside the provider, before the first delta only; once a delta
 * was delivered a failure ends the call with on_done(err).
 *
 * Thread: one loop thread; all callbacks fire from that loop, never from inside start.
 * Ownership: the provider owns the upcall. After on_done returns the provider frees it; the
 * stream must drop its pointer inside on_done and must not call cancel from there. cancel
 * stops the call at once (aborting any transfer): no callback fires after it and the upcall
 * is freed (later, if cancel was called from inside on_delta). Everything passed to start is
 * borrowed for the start call only; providers copy what they keep.
 * Errors (in on_done.err): LG_ERR_UNAVAILABLE (upstream down, 5xx, connection failed),
 * LG_ERR_EXHAUSTED (429 after retries), LG_ERR_TIMEOUT (connect, first byte or idle
 * timeout), LG_ERR_INVALID (upstream refused the request, 400/404/422), LG_ERR_UNAUTHENTICATED
 * (401/403 from upstream), LG_ERR_MALFORMED (broken stream), LG_ERR_UPSTREAM (error object
 * mid-stream), LG_ERR_NOMEM.
 */
#ifndef LG_CHAT_PROVIDER_H
#define LG_CHAT_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lg_chat_request;
struct lg_chat_provider_cfg;

/* Token counts of one call. */
struct lg_chat_usage {
    uint32_t prompt_tokens; /* includes cached_tokens */
    uint32_t completion_tokens;
    uint32_t cached_tokens;
};

/* How an upcall ended; every pointer is borrowed for the on_done call. */
struct lg_chat_outcome {
    int err;                   /* LG_OK or an lg_err code (see header comment) */
    const char *finish_reason; /* "stop", "length", "content_filter", ...; NULL on error */
    const char *message;       /* on error: a message safe to show callers (no secrets) */
    bool has_usage;            /* true when upstream reported usage (usage is then exact) */
    struct lg_chat_usage usage;
    uint32_t attempts; /* upstream requests made (1 + retries) */
    long http_status;  /* last upstream HTTP status, 0 when none (demo, no reply) */
};

/* Text piece |text| (|len| bytes, UTF-8, borrowed for the call). */
typedef void (*lg_chat_provider_delta_cb)(const char *text, size_t len, void *user_data);
/* The call ended; see the ownership rules above. */
typedef void (*lg_chat_provider_done_cb)(const struct lg_chat_outcome *outcome, void *user_data);

struct lg_chat_provider_cbs {
    lg_chat_provider_delta_cb on_delta;
    lg_chat_provider_done_cb on_done;
};

/* An upcall in flight. Providers embed this as their first member. */
struct lg_chat_upcall {
    void (*cancel)(struct lg_chat_upcall *u); /* see lg_chat_upcall_cancel */
};

/* What a provider needs to start a call; borrowed for the start call only. */
struct lg_chat_call_params {
    const struct lg_chat_request *req;      /* validated request */
    const struct lg_chat_provider_cfg *cfg; /* the resolved provider config */
    const char *upstream_model;             /* model name sent upstream */
    const char *request_id;                 /* for logs and the upstream's x-request-id */
    uint32_t demo_pace_ms;                  /* demo: pause between tokens */
};

/* Stops |u| (see the ownership rules). Accepts NULL. */
static inline void lg_chat_upcall_cancel(struct lg_chat_upcall *u)
{
    if (u != NULL) {
        u->cancel(u);
    }
}

#endif /* LG_CHAT_PROVIDER_H */
