/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_demo: the built-in, offline "demo" provider.
 *
 * It answers like an assistant would, deterministically, from the conversation: the reply
 * is composed from the last user message (its topic and key words) with templates chosen by
 * a hash of the prompt, so the same prompt always gets the same answer. It streams the
 * reply token by token with a configurable pause (0 for benchmarks: one token per loop
 * turn), stops at max_tokens with finish_reason "length", and reports exact usage under its
 * own tokenizer (a token is optional leading spaces plus a word, or one other character;
 * each message costs DEMO_TOKENS_PER_MESSAGE more, as with OpenAI chat formats).
 *
 * Thread: the loop thread of |base|. Ownership and callbacks: see lg_chat_provider.h.
 * Errors: LG_ERR_NOMEM (start or compose), LG_ERR_TOO_LARGE (compose: |out| cap).
 */
#ifndef LG_CHAT_DEMO_H
#define LG_CHAT_DEMO_H

#include <stddef.h>
#include <stdint.h>

#include "lg_chat_provider.h"

struct event_base;
struct lg_buf;
struct lg_chat_request;

/* Starts a demo upcall on |base|. Returns LG_OK and the upcall in |*out|, or LG_ERR_NOMEM. */
int lg_chat_demo_start(struct event_base *base, const struct lg_chat_call_params *params,
                       const struct lg_chat_provider_cbs *cbs, void *user_data,
                       struct lg_chat_upcall **out);

/* Appends the full reply for |req| to |out| (sans-I/O; what start streams). */
int lg_chat_demo_compose(const struct lg_chat_request *req, struct lg_buf *out);

/* Length in bytes of the first token of |s| (|len| bytes); 0 only when |len| is 0. */
size_t lg_chat_demo_token_len(const char *s, size_t len);
/* Number of tokens in |s|. */
uint32_t lg_chat_demo_count_tokens(const char *s, size_t len);
/* Prompt tokens of |req| (content tokens plus the per-message overhead). */
uint32_t lg_chat_demo_prompt_tokens(const struct lg_chat_request *req);

#endif /* LG_CHAT_DEMO_H */
