/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chat_service: llmgate.chat.v1.ChatService (StreamChat, Complete, ResumeStream,
 * CancelStream) and UsageService on an lg_grpc_server.
 *
 * Streams outlive their client: every StreamChat event (start, content, done, error) gets a
 * per-stream seq (1, 2, 3, ...) and goes into the stream's bounded replay buffer; each
 * reader (the StreamChat call, later ResumeStream calls) sends from the buffer at its own
 * pace, so gRPC backpressure never blocks generation and a resumer gets every event after
 * its after_seq exactly once, then the live ones. When the last reader leaves, generation
 * continues for grace_ms; after the stream ends its buffer is kept retention_ms, then freed.
 * Complete is the same generation without a registry entry, answered once.
 *
 * Identity: ChatRequest.user_id, checked against the x-user-id metadata when present
 * (differing ids: PERMISSION_DENIED; an empty user_id takes x-user-id). Resume and cancel
 * are owner-only (PERMISSION_DENIED), unknown or expired ids are NOT_FOUND.
 *
 * UsageService (ListLogs, GetUsage) is answered from ClickHouse through lg_usage, for the
 * caller's own user id only (same identity rule as above).
 *
 * Billing: exactly one lg_record per upstream call (success, error, cancelled, timeout,
 * client gone), handed to the sink when the call ends.
 *
 * Thread: the loop thread of the server's event_base.
 * Ownership: config (opts.cfg), sink, curlm and metrics are borrowed and must outlive the
 * service; a configuration given to lg_chat_service_set_config is taken.
 * Errors: LG_ERR_INVALID (bad option), LG_ERR_NOMEM, registration errors of lg_grpc_server.
 */
#ifndef LG_CHAT_SERVICE_H
#define LG_CHAT_SERVICE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct lg_record_sink;
typedef struct lg_grpc_server lg_grpc_server;
typedef struct lg_chat_config lg_chat_config;
typedef struct lg_curlm lg_curlm;
typedef struct lg_metrics lg_metrics;
typedef struct lg_usage lg_usage;

/* What the billing record keeps of prompt and answer texts (privacy setting). */
enum lg_chat_body_mode {
    LG_CHAT_BODY_FULL = 0,      /* whole texts */
    LG_CHAT_BODY_TRUNCATED = 1, /* at most body_max_bytes of each */
    LG_CHAT_BODY_NONE = 2,      /* neither (NULL in the record) */
};

struct lg_chat_service_opts {
    const lg_chat_config *cfg;   /* providers; borrowed */
    struct lg_record_sink *sink; /* billing records; borrowed. A sink with set_notify (the
                                    shipper) tells the loop from its own thread, with
                                    event_active, when held answers may go: the event_base
                                    must then be thread-aware, as for |usage|. */
    lg_curlm *curlm;             /* for openai providers; may be NULL when there are none */
    lg_metrics *metrics;         /* may be NULL */
    const char *node;            /* this pod's node (StatefulSet ordinal, 1-5 digits), put
                                    into stream ids as "n<node>_" so adapters can route
                                    ResumeStream/CancelStream to the owner; NULL or "" =
                                    none. Copied. Invalid: LG_ERR_INVALID. */
    lg_usage *usage;             /* UsageService backend (ClickHouse); NULL answers
                                    UNIMPLEMENTED. Its results arrive on its worker thread
                                    and are handed to the loop with event_active, so the
                                    event_base must be thread-aware
                                    (evthread_use_pthreads before event_base_new). */
    uint32_t demo_pace_ms;       /* demo provider: pause between tokens */
    uint32_t grace_ms;           /* generation continues this long after the last reader */
    uint32_t retention_ms;       /* a finished stream stays resumable this long */
    enum lg_chat_body_mode body_mode;
    size_t body_max_bytes;    /* for LG_CHAT_BODY_TRUNCATED */
    size_t replay_max_events; /* per stream; <= LG_CHAT_REPLAY_MAX_EVENTS */
    size_t replay_max_bytes;  /* per stream; <= LG_CHAT_REPLAY_MAX_BYTES */
    size_t max_streams;       /* registered streams; <= LG_CHAT_MAX_STREAMS. When full,
                                 the oldest finished stream is evicted; with only
                                 generating streams a new one gets RESOURCE_EXHAUSTED */
};

typedef struct lg_chat_service lg_chat_service;

/* Fills |opts| with the defaults of lg_limits.h (cfg, sink etc. NULL). */
void lg_chat_service_opts_default(struct lg_chat_service_opts *opts);

/* Parses "full", "none" or "truncated:N" (N bytes, 1..LG_CHAT_MAX_RESPONSE_BYTES).
 * LG_OK or LG_ERR_INVALID. */
int lg_chat_service_parse_body_mode(const char *s, enum lg_chat_body_mode *mode, size_t *max_bytes);

/* Registers the services' methods on |srv| (before lg_grpc_server_listen). Returned owned.
 * On an error after some methods were registered they stay registered, pointing at freed
 * memory: the caller must then free |srv| without serving (startup fails anyway). */
int lg_chat_service_new(lg_chat_service **out, struct event_base *base, lg_grpc_server *srv,
                        const struct lg_chat_service_opts *opts);
/* Stops every stream still generating (each writes its record, status cancelled) and frees
 * everything. Call after lg_grpc_server_free (no call may still point at a stream) and after
 * lg_usage_free (no usage result may still be on its way). */
void lg_chat_service_free(lg_chat_service *svc);

/* Makes |cfg| (taken on LG_OK) the configuration of new streams (SIGHUP reload of providers
 * and prices). Streams already running keep the configuration they started with; an old
 * configuration is freed when its last stream is. LG_OK, LG_ERR_INVALID (|cfg| NULL) or
 * LG_ERR_NOMEM (|cfg| is still the caller's). */
int lg_chat_service_set_config(lg_chat_service *svc, lg_chat_config *cfg);

/* Streams alive (generating, in grace or retained), for metrics and tests. */
size_t lg_chat_service_get_stream_count(const lg_chat_service *svc);

#endif /* LG_CHAT_SERVICE_H */
