/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_chat_request (owner: fuzz): protobuf decoding of every request type of
 * llmgate.chat.v1 (ChatRequest, ResumeRequest, CancelRequest, ListLogsRequest,
 * GetUsageRequest) into a call arena, followed by the service's own checks, so the
 * validation code sees hostile decoded messages.
 *
 * Input: byte 0 picks the message type; the rest is the serialized message exactly as it
 * arrives in a gRPC DATA frame after the 5-byte prefix. Decoding uses protobuf-c with the
 * per-call lg_arena allocator (capped like a server call arena), as lg_chat_service does.
 *
 * What runs after decoding (the same glue the service uses, from lg_chat_pb):
 *  - ChatRequest: lg_chat_pb_view_request(), then lg_chat_request_validate();
 *    when it accepts, the properties a provider relies on are checked (1..max messages,
 *    known roles, prompt and id sizes, 0 <= temperature <= 2 and not NaN, max_tokens range,
 *    metadata caps) and the messages/metadata JSON built for the upstream body and the
 *    billing record must be well-formed JSON with one element per message/entry (bytes >=
 *    0x80 are mapped to 'x' before jansson parses it: the encoder passes them through, and
 *    protobuf-c does not check UTF-8, so structure is what can be checked for any input);
 *    the refusal reason is one line.
 *  - ListLogs/GetUsage: user id check (lg_usage_check_user_id: no control bytes) and the
 *    seconds->milliseconds conversion of since/until (usage_unix_to_ms in the service).
 *  - Resume/Cancel: stream_id and after_seq are only looked up in a table; decoding and
 *    field access are what is exercised.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lg_buf.h"
#include "lg_chat_pb.h"
#include "lg_chat_request.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"
#include "lg_usage.h"
#include "llmgate/chat/v1/chat.pb-c.h"

#define FUZZ_ARENA_BYTES (4u * 1024u * 1024u)
#define FUZZ_WHY_BYTES   256

#define LG_FUZZ_SMOKE_ITERATIONS 20000
#include "lg_fuzz_smoke.h"

typedef Llmgate__Chat__V1__ChatRequest pb_request;

enum fuzz_kind {
    FUZZ_CHAT = 0,
    FUZZ_RESUME = 1,
    FUZZ_CANCEL = 2,
    FUZZ_LIST_LOGS = 3,
    FUZZ_GET_USAGE = 4,
    FUZZ_KINDS = 5,
};

/* Parses |b| as JSON after mapping bytes >= 0x80 to 'x'; returns the value or aborts. */
static json_t *load_structure(const struct lg_buf *b)
{
    char *copy = malloc(b->len + 1);
    if (copy == NULL) {
        abort();
    }
    for (size_t i = 0; i < b->len; i++) {
        copy[i] = b->data[i] >= 0x80 ? 'x' : (char)b->data[i];
    }
    json_error_t e;
    json_t *j = json_loadb(copy, b->len, JSON_ALLOW_NUL, &e);
    free(copy);
    if (j == NULL) {
        abort();
    }
    return j;
}

static void check_accepted(const struct lg_chat_request *r)
{
    if (r->n_messages == 0 || r->n_messages > LG_CHAT_MAX_MESSAGES ||
        r->n_metadata > LG_CHAT_MAX_METADATA ||
        lg_chat_request_prompt_len(r) > LG_CHAT_MAX_PROMPT_BYTES || r->user_id[0] == 0 ||
        r->model[0] == 0 || strlen(r->model) > LG_CHAT_MAX_ID_BYTES) {
        abort();
    }
    if (r->has_temperature && (isnan(r->temperature) || r->temperature < 0.0 ||
                               r->temperature > 2.0)) {
        abort();
    }
    if (r->has_max_tokens && (r->max_tokens == 0 || r->max_tokens > LG_CHAT_MAX_TOKENS_LIMIT)) {
        abort();
    }
    for (size_t i = 0; i < r->n_messages; i++) {
        if (!lg_chat_request_is_known_role(r->messages[i].role)) {
            abort();
        }
    }
    struct lg_buf b;
    lg_buf_init(&b, LG_CHAT_UPSTREAM_MAX_REQUEST_BYTES);
    if (lg_chat_request_append_messages_json(r, &b) != LG_OK) {
        abort(); /* the cap is sized for the largest accepted prompt */
    }
    json_t *j = load_structure(&b);
    if (!json_is_array(j) || json_array_size(j) != r->n_messages) {
        abort();
    }
    json_decref(j);
    lg_buf_reset(&b);
    if (lg_chat_request_append_metadata_json(r, &b) != LG_OK) {
        abort();
    }
    j = load_structure(&b);
    /* Duplicate map keys collapse in a JSON object, so only an upper bound holds. */
    if (!json_is_object(j) || json_object_size(j) > r->n_metadata ||
        (r->n_metadata > 0 && json_object_size(j) == 0)) {
        abort();
    }
    json_decref(j);
    lg_buf_deinit(&b);
}

static void fuzz_chat(lg_arena *a, ProtobufCAllocator *alloc, const uint8_t *p, size_t n)
{
    pb_request *pb = llmgate__chat__v1__chat_request__unpack(alloc, n, p);
    if (pb == NULL) {
        return;
    }
    struct lg_chat_request r;
    if (lg_chat_pb_view_request(a, pb, &r) != LG_OK) {
        return;
    }
    char why[FUZZ_WHY_BYTES] = "";
    int rc = lg_chat_request_validate(&r, why, sizeof(why));
    if (rc == LG_OK) {
        check_accepted(&r);
    } else if (rc != LG_ERR_INVALID || why[0] == 0 || strpbrk(why, "\r\n") != NULL) {
        abort();
    }
}

static void fuzz_usage(const char *user, int64_t since, int64_t until)
{
    int rc = lg_usage_check_user_id(user);
    if (rc == LG_OK) {
        size_t n = strlen(user);
        if (n == 0 || n > LG_USAGE_MAX_USER_ID_BYTES) {
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f) {
                abort();
            }
        }
    }
    int64_t from = lg_chat_pb_unix_to_ms(since), to = lg_chat_pb_unix_to_ms(until);
    if (from < 0 || to < 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    lg_arena *a = NULL;
    if (lg_arena_new(&a, 0, FUZZ_ARENA_BYTES) != LG_OK) {
        return 0;
    }
    ProtobufCAllocator alloc;
    lg_arena_protobuf_allocator(a, &alloc);
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch ((enum fuzz_kind)(data[0] % FUZZ_KINDS)) {
    case FUZZ_CHAT:
        fuzz_chat(a, &alloc, p, n);
        break;
    case FUZZ_RESUME: {
        Llmgate__Chat__V1__ResumeRequest *rq =
            llmgate__chat__v1__resume_request__unpack(&alloc, n, p);
        if (rq != NULL && (rq->stream_id == NULL || strlen(rq->stream_id) > n)) {
            abort();
        }
        break;
    }
    case FUZZ_CANCEL: {
        Llmgate__Chat__V1__CancelRequest *rq =
            llmgate__chat__v1__cancel_request__unpack(&alloc, n, p);
        if (rq != NULL && (rq->stream_id == NULL || strlen(rq->stream_id) > n)) {
            abort();
        }
        break;
    }
    case FUZZ_LIST_LOGS: {
        Llmgate__Chat__V1__ListLogsRequest *rq =
            llmgate__chat__v1__list_logs_request__unpack(&alloc, n, p);
        if (rq != NULL) {
            fuzz_usage(rq->user_id, rq->since_unix, rq->until_unix);
        }
        break;
    }
    default: {
        Llmgate__Chat__V1__GetUsageRequest *rq =
            llmgate__chat__v1__get_usage_request__unpack(&alloc, n, p);
        if (rq != NULL) {
            fuzz_usage(rq->user_id, rq->since_unix, rq->until_unix);
        }
        break;
    }
    }
    lg_arena_free(a);
    return 0;
}

#ifndef LG_FUZZ_LIBFUZZER
/* Packs |m| behind the kind byte and emits it. */
static void fuzz_emit_pb(lg_fuzz_emit_fn emit, void *ud, uint8_t kind, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL) {
        abort();
    }
    buf[0] = kind;
    protobuf_c_message_pack(m, buf + 1);
    emit(buf, n + 1, ud);
    free(buf);
}

/* The generated INIT macros cast away const (protobuf_c_empty_string); the seeds are the
 * only place this file uses them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
static void fuzz_seeds(lg_fuzz_emit_fn emit, void *ud)
{
    char s0[] = "system";
    char s1[] = "Be brief.";
    char s2[] = "user";
    char s3[] = "Hello \"world\"\n\x01\xc3\xa9";
    char s4[] = "team";
    char s5[] = "billing";
    char s6[] = "alice";
    char s7[] = "c1";
    char s8[] = "a1";
    char s9[] = "default";
    char s10[] = "demo";
    char s11[] = "0123456789abcdef0123456789abcdef";
    char s12[] = "0123456789abcdef0123456789abcdef";
    char s13[] = "alice";
    char s14[] = "demo";
    char s15[] = "c1";
    char s16[] = "bob' OR 1=1 --";
    Llmgate__Chat__V1__ChatMessage m0 = LLMGATE__CHAT__V1__CHAT_MESSAGE__INIT;
    Llmgate__Chat__V1__ChatMessage m1 = LLMGATE__CHAT__V1__CHAT_MESSAGE__INIT;
    m0.role = s0;
    m0.content = s1;
    m1.role = s2;
    m1.content = s3;
    Llmgate__Chat__V1__ChatMessage *msgs[] = {&m0, &m1};
    Llmgate__Chat__V1__ChatRequest__MetadataEntry e0 =
        LLMGATE__CHAT__V1__CHAT_REQUEST__METADATA_ENTRY__INIT;
    e0.key = s4;
    e0.value = s5;
    Llmgate__Chat__V1__ChatRequest__MetadataEntry *meta[] = {&e0};
    Llmgate__Chat__V1__ChatRequest rq = LLMGATE__CHAT__V1__CHAT_REQUEST__INIT;
    rq.user_id = s6;
    rq.conversation_id = s7;
    rq.agent_id = s8;
    rq.provider_config_id = s9;
    rq.model = s10;
    rq.n_messages = 2;
    rq.messages = msgs;
    rq.temperature_opt_case = LLMGATE__CHAT__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
    rq.temperature = 0.7;
    rq.max_tokens_opt_case = LLMGATE__CHAT__V1__CHAT_REQUEST__MAX_TOKENS_OPT_MAX_TOKENS;
    rq.max_tokens = 64;
    rq.n_metadata = 1;
    rq.metadata = meta;
    fuzz_emit_pb(emit, ud, FUZZ_CHAT, &rq.base);
    rq.temperature_opt_case = LLMGATE__CHAT__V1__CHAT_REQUEST__TEMPERATURE_OPT__NOT_SET;
    rq.max_tokens_opt_case = LLMGATE__CHAT__V1__CHAT_REQUEST__MAX_TOKENS_OPT__NOT_SET;
    rq.n_metadata = 0;
    rq.n_messages = 1;
    rq.messages = msgs + 1;
    fuzz_emit_pb(emit, ud, FUZZ_CHAT, &rq.base);

    Llmgate__Chat__V1__ResumeRequest rs = LLMGATE__CHAT__V1__RESUME_REQUEST__INIT;
    rs.stream_id = s11;
    rs.after_seq = 41;
    fuzz_emit_pb(emit, ud, FUZZ_RESUME, &rs.base);
    Llmgate__Chat__V1__CancelRequest cq = LLMGATE__CHAT__V1__CANCEL_REQUEST__INIT;
    cq.stream_id = s12;
    fuzz_emit_pb(emit, ud, FUZZ_CANCEL, &cq.base);
    Llmgate__Chat__V1__ListLogsRequest lq = LLMGATE__CHAT__V1__LIST_LOGS_REQUEST__INIT;
    lq.user_id = s13;
    lq.limit = 10;
    lq.model = s14;
    lq.conversation_id = s15;
    lq.since_unix = 1700000000;
    lq.until_unix = 1800000000;
    fuzz_emit_pb(emit, ud, FUZZ_LIST_LOGS, &lq.base);
    Llmgate__Chat__V1__GetUsageRequest gq = LLMGATE__CHAT__V1__GET_USAGE_REQUEST__INIT;
    gq.user_id = s16;
    gq.since_unix = 1700000000;
    fuzz_emit_pb(emit, ud, FUZZ_GET_USAGE, &gq.base);
}
#pragma GCC diagnostic pop
#endif
