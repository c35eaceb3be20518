/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_sse_chat: the adapter's view of the chat service (protos/llmgate/chat/v1/chat.proto),
 * over lg_grpc_client. It is the only module that sees the generated protobuf-c types: it
 * turns an lg_sse_chat_req into a ChatRequest and each ChatEvent into an lg_sse_chat_event,
 * and passes the caller's user as `x-user-id` metadata. The adapter holds no stream state:
 * every read of a stream is a ResumeStream call, so any replica serves any reconnect.
 *
 * Thread: the loop thread of the event_base given to lg_sse_chat_new; callbacks fire on it.
 * Ownership: lg_sse_chat and each lg_sse_call are owned by this module. A call stays valid
 * until its end callback has returned or until lg_sse_call_abort; after either, no callback
 * fires for it and the handle must not be used. Event fields are borrowed for the callback.
 * Resume routing: with lg_sse_chat_set_routes, ResumeStream and CancelStream for a stream id
 * that names a node go to that chat pod (connections opened on demand, bounded); an id
 * naming a node no route knows is refused with LG_ERR_NOT_FOUND (404), never dialled.
 *
 * Errors: calls end with an lg_err mapped from the gRPC status (NOT_FOUND, PERMISSION,
 * EXHAUSTED, INVALID, UNAVAILABLE, TIMEOUT, UPSTREAM...), and the grpc-message text;
 * starting a call returns LG_ERR_NOMEM, LG_ERR_UNAVAILABLE (no connection), LG_ERR_INVALID,
 * LG_ERR_NOT_FOUND (resume/cancel of an id no route can reach).
 */
#ifndef LG_SSE_CHAT_H
#define LG_SSE_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lg_sse_enc.h"
#include "lg_sse_json.h"

struct event_base;

/* Resume routing (docs/operations.md 6.2). A stream id may start with the owning chat pod's
 * node, "n<digits>_", before its 22 random characters; ResumeStream and CancelStream then go
 * to that pod, StreamChat and health checks to the default target. */
/* Random characters at the end of every stream id (128 bits, base64url). */
#define LG_SSE_CHAT_ID_RANDOM_CHARS 22
/* Digits of a node (StatefulSet ordinal); the chat service refuses longer ones. */
#define LG_SSE_CHAT_NODE_MAX_DIGITS 5
/* Owner pods the adapter keeps connections to at once; a further node reuses an idle slot,
 * and with every slot busy the call gets UNAVAILABLE (a StatefulSet rarely runs 64 pods). */
#define LG_SSE_CHAT_MAX_OWNERS 64
/* Connections per owner pod (each carries LG_SSE_CHAT_CALLS_PER_CONN calls): a resume is one
 * call per open browser stream of that pod. */
#define LG_SSE_CHAT_OWNER_MAX_CONNS 16
/* Longest owner address (template result or map value). */
#define LG_SSE_CHAT_ADDR_MAX_BYTES 255

typedef struct lg_sse_chat lg_sse_chat;
typedef struct lg_sse_call lg_sse_call;

/* One ChatEvent, flattened. Pointers are borrowed for the callback. */
struct lg_sse_chat_event {
    enum lg_sse_type type; /* START, CONTENT, DONE or ERROR */
    const char *stream_id; /* the stream's id (validated charset) */
    uint64_t seq;          /* 1, 2, 3, ... within the stream */
    const char *model;     /* START: the model serving the stream */
    const uint8_t *text;   /* CONTENT: the delta (any bytes) */
    size_t text_len;
    struct lg_sse_done done; /* DONE: outcome and usage */
    const char *code;        /* ERROR: symbolic code (e.g. "UNAVAILABLE") */
    const char *message;     /* ERROR: human text */
};

/* An event arrived. Return LG_OK to go on; any negative value cancels the call (no further
 * callback fires, the end callback included). */
typedef int (*lg_sse_chat_event_cb)(const struct lg_sse_chat_event *ev, void *user_data);
/* The call ended: |rc| is LG_OK for a normal end, else the mapped lg_err; |message| is the
 * grpc-message (borrowed, may be ""). Fires once; the call is gone once it returns. */
typedef void (*lg_sse_chat_end_cb)(int rc, const char *message, void *user_data);
/* Unary CancelStream answered: |rc| as above, |cancelled| false when already finished. */
typedef void (*lg_sse_chat_cancel_cb)(int rc, bool cancelled, const char *message, void *user_data);

/* Connects lazily to |addr| ("HOST:PORT", h2c). Returns LG_OK, LG_ERR_INVALID, LG_ERR_NOMEM. */
int lg_sse_chat_new(lg_sse_chat **out, struct event_base *base, const char *addr);
/* Configures resume routing: |pod_tmpl| is an address template with {ordinal} (or {node})
 * replaced by the node, e.g. "llmgate-chat-{ordinal}.llmgate-chat-headless:50051";
 * |node_map| is "node=HOST:PORT,..." and wins over the template (tests, fixed topologies).
 * Either may be NULL or "". Call once, after lg_sse_chat_new. LG_OK, LG_ERR_INVALID (a
 * template without a placeholder, a malformed map entry, more than LG_SSE_CHAT_MAX_OWNERS
 * entries), LG_ERR_NOMEM. On error |c| is still valid and freed by lg_sse_chat_free. */
int lg_sse_chat_set_routes(lg_sse_chat *c, const char *pod_tmpl, const char *node_map);
/* Reads the node prefix of |stream_id| into |node_out|: LG_OK; LG_ERR_NOT_FOUND when the id
 * has none (|node_out| ""); LG_ERR_INVALID when the prefix is not "n<1-5 digits>_". */
int lg_sse_chat_parse_node(const char *stream_id, char node_out[LG_SSE_CHAT_NODE_MAX_DIGITS + 1]);

/* Aborts every call (no callbacks) and frees |c|. Accepts NULL. */
void lg_sse_chat_free(lg_sse_chat *c);

/* StreamChat(|req|) for |user|. */
int lg_sse_chat_start(lg_sse_chat *c, const char *user, const struct lg_sse_chat_req *req,
                      lg_sse_chat_event_cb ev_cb, lg_sse_chat_end_cb end_cb, void *user_data,
                      lg_sse_call **out);
/* StreamChat(|req|) for |user|, detached: the chat service ends the call with OK right after
 * the start event (which carries the stream id) and generation goes on for its grace period,
 * waiting for a ResumeStream. Return non-LG_OK from |ev_cb| once the stream id is known: the
 * call is then left to end by itself, without an RST_STREAM (resets in bulk trip the chat
 * server's rapid-reset limit). */
int lg_sse_chat_create(lg_sse_chat *c, const char *user, const struct lg_sse_chat_req *req,
                       lg_sse_chat_event_cb ev_cb, lg_sse_chat_end_cb end_cb, void *user_data,
                       lg_sse_call **out);
/* ResumeStream(|stream_id|, |after_seq|) for |user|. */
int lg_sse_chat_resume(lg_sse_chat *c, const char *user, const char *stream_id, uint64_t after_seq,
                       lg_sse_chat_event_cb ev_cb, lg_sse_chat_end_cb end_cb, void *user_data,
                       lg_sse_call **out);
/* CancelStream(|stream_id|) for |user|. The callback fires once, unless |*out| is aborted
 * (or the chat handle freed) first. */
int lg_sse_chat_cancel(lg_sse_chat *c, const char *user, const char *stream_id,
                       lg_sse_chat_cancel_cb cb, void *user_data, lg_sse_call **out);
/* Cancels |call| (RST_STREAM); no callback fires for it afterwards. Must not be called from
 * inside that call's own callbacks (return a negative value from the event callback). */
void lg_sse_call_abort(lg_sse_call *call);

/* True when the chat service answered its last health check (for /readyz). */
bool lg_sse_chat_is_ready(const lg_sse_chat *c);

#endif /* LG_SSE_CHAT_H */
