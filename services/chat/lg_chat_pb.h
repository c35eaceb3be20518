/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_pb: the glue between chat.proto messages and the service's sans-I/O types, in one
 * place so that the service and its fuzz target decode requests with the same code.
 *
 * Thread: any; pure functions. Ownership: views borrow the protobuf message's strings and
 * take their arrays from the caller's arena, so a view lives as long as both.
 * Errors: LG_ERR_NOMEM (arena exhausted).
 */
#ifndef LG_CHAT_PB_H
#define LG_CHAT_PB_H

#include <stdint.h>

#include "lg_mem.h"

struct lg_chat_request;
struct Llmgate__Chat__V1__ChatRequest;

/* Fills |r| with a borrowed view of |pb|, its message and metadata arrays allocated from
 * |arena|. Counts over LG_CHAT_MAX_MESSAGES or LG_CHAT_MAX_METADATA are copied without the
 * arrays, so that lg_chat_request_validate refuses them with a clear reason. */
int lg_chat_pb_view_request(lg_arena *arena, const struct Llmgate__Chat__V1__ChatRequest *pb,
                            struct lg_chat_request *r);

/* Unix seconds from a request to milliseconds: 0 (unbounded) for |s| <= 0, INT64_MAX past
 * what milliseconds can hold (a hostile since/until must not overflow a signed multiply). */
int64_t lg_chat_pb_unix_to_ms(int64_t s);

#endif /* LG_CHAT_PB_H */
