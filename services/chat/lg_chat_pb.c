/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_pb.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lg_chat_request.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "llmgate/chat/v1/chat.pb-c.h"

int lg_chat_pb_view_request(lg_arena *arena, const Llmgate__Chat__V1__ChatRequest *pb,
                            struct lg_chat_request *r)
{
    memset(r, 0, sizeof(*r));
    r->user_id = pb->user_id;
    r->conversation_id = pb->conversation_id;
    r->agent_id = pb->agent_id;
    r->provider_config_id = pb->provider_config_id;
    r->model = pb->model;
    r->has_temperature =
        pb->temperature_opt_case == LLMGATE__CHAT__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
    r->temperature = r->has_temperature ? pb->temperature : 0.0;
    r->has_max_tokens =
        pb->max_tokens_opt_case == LLMGATE__CHAT__V1__CHAT_REQUEST__MAX_TOKENS_OPT_MAX_TOKENS;
    r->max_tokens = r->has_max_tokens ? pb->max_tokens : 0;
    if (pb->n_messages > LG_CHAT_MAX_MESSAGES || pb->n_metadata > LG_CHAT_MAX_METADATA) {
        r->n_messages = pb->n_messages; /* validation refuses it with a clear reason */
        r->n_metadata = pb->n_metadata;
        return LG_OK;
    }
    struct lg_chat_message *msgs =
        lg_arena_alloc(arena, sizeof(*msgs) * (pb->n_messages > 0 ? pb->n_messages : 1));
    struct lg_chat_kv *kv =
        lg_arena_alloc(arena, sizeof(*kv) * (pb->n_metadata > 0 ? pb->n_metadata : 1));
    if (msgs == NULL || kv == NULL) {
        return LG_ERR_NOMEM;
    }
    for (size_t i = 0; i < pb->n_messages; i++) {
        msgs[i].role = pb->messages[i]->role;
        msgs[i].content = pb->messages[i]->content;
        msgs[i].content_len = strlen(pb->messages[i]->content);
    }
    for (size_t i = 0; i < pb->n_metadata; i++) {
        kv[i].key = pb->metadata[i]->key;
        kv[i].value = pb->metadata[i]->value;
    }
    r->messages = msgs;
    r->n_messages = pb->n_messages;
    r->metadata = kv;
    r->n_metadata = pb->n_metadata;
    return LG_OK;
}

int64_t lg_chat_pb_unix_to_ms(int64_t s)
{
    return s <= 0 ? 0 : s > INT64_MAX / 1000 ? INT64_MAX : s * 1000;
}
