/* SPDX-License-Identifier: Apache-2.0 */
#include "drv_record.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lg_err.h"
#include "lg_record.h"

static int set(char **f, const char *s)
{
    return lg_record_set_str(f, s, strlen(s));
}

/* Base time 2026-11-01T00:00:00Z plus i seconds: all in one month partition. */
#define DRV_BASE_MS INT64_C(1793491200000)

struct lg_record *drv_record_make(int64_t i)
{
    struct lg_record *r = NULL;
    if (lg_record_new(&r) != LG_OK) {
        return NULL;
    }
    char buf[256];
    snprintf(buf, sizeof(buf), "req-%08" PRId64, i);
    int rc = set(&r->request_id, buf);
    snprintf(buf, sizeof(buf), "stream-%" PRId64, i / 2);
    rc |= set(&r->stream_id, buf);
    snprintf(buf, sizeof(buf), "user-%" PRId64, i % 7);
    rc |= set(&r->user_id, buf);
    snprintf(buf, sizeof(buf), "conv-%" PRId64, i % 101);
    rc |= set(&r->conversation_id, buf);
    rc |= set(&r->agent_id, "agent-\"quoted\"");
    rc |= set(&r->provider_config_id, "pc-1");
    rc |= set(&r->provider, i % 2 ? "openai" : "demo");
    snprintf(buf, sizeof(buf), "model-%" PRId64, i % 3);
    rc |= set(&r->model, buf);
    snprintf(buf, sizeof(buf),
             "[{\"role\":\"user\",\"content\":\"h\xc3\xa9llo \\\"%" PRId64 "\\\"\\n\\ttab \xf0\x9f\x98\x80\"}]",
             i);
    rc |= set(&r->request_messages, buf);
    rc |= set(&r->request_params, "{\"top_p\":1}");
    /* ~1.5 KB of response per row: realistic billing rows are ~2 KB. */
    char body[1600];
    int n = snprintf(body, sizeof(body), "answer %" PRId64 " back\\slash 'single' \"double\"\n",
                     i);
    while (n < (int)sizeof(body) - 40) {
        n += snprintf(body + n, sizeof(body) - (size_t)n, " lorem ipsum %" PRId64, i % 997);
    }
    rc |= set(&r->response_content, body);
    rc |= set(&r->finish_reason, "stop");
    rc |= set(&r->metadata, "{\"k\":\"v\"}");
    if (i % 10 == 9) {
        rc |= set(&r->error_message, "upstream 500: \"boom\"");
        r->status = LG_RECORD_STATUS_ERROR;
    }
    r->has_temperature = i % 4 != 0;
    r->temperature = 0.1 * (double)(i % 10);
    r->has_max_tokens = i % 5 != 0;
    r->max_tokens = 100 + i % 50;
    r->stream = i % 2 == 0;
    r->prompt_tokens = 10 + i % 90;
    r->completion_tokens = 20 + i % 80;
    r->cached_tokens = i % 3;
    r->total_tokens = r->prompt_tokens + r->completion_tokens;
    r->estimated_cost_nano_usd = INT64_C(1234567) * (1 + i % 1000);
    r->usage_source = i % 6 == 0 ? LG_RECORD_USAGE_ESTIMATED : LG_RECORD_USAGE_REPORTED;
    r->price_missing = i % 50 == 0;
    r->start_time_ms = DRV_BASE_MS + i * 1000 + i % 1000;
    r->end_time_ms = r->start_time_ms + 500 + i % 400;
    r->duration_ms = r->end_time_ms - r->start_time_ms;
    r->time_to_first_token_ms = i % 8 == 0 ? -1 : 50 + i % 300;
    if (rc != LG_OK) {
        lg_record_free(r);
        return NULL;
    }
    return r;
}

