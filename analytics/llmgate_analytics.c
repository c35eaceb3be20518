/* SPDX-License-Identifier: Apache-2.0 */
/*
 * llmgate-analytics: the analytics side at a terminal.
 *
 *   llmgate-analytics migrate   --clickhouse-url URL
 *   llmgate-analytics retention --clickhouse-url URL --keep-months N
 *   llmgate-analytics usage     --clickhouse-url URL --user U [--from YYYY-MM-DD] [--to ...]
 *   llmgate-analytics logs      --clickhouse-url URL --user U [--limit N] [--page P]
 *   llmgate-analytics replay    --clickhouse-url URL --spool-dir DIR [--timeout-ms N]
 *                               [--compression auto|gzip|none]
 *
 * Exit status: 0 on success, 1 on a failure (one JSON log line on stderr says why), 2 on a
 * usage error.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "lg_buf.h"
#include "lg_cfg.h"
#include "lg_chclient.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_log.h"
#include "lg_migrate.h"
#include "lg_shipper.h"
#include "lg_usage.h"

struct cli {
    const char *url, *ch_user, *ch_key, *ch_ca_file, *user, *from, *to, *spool_dir, *log_level, *compression;
    int64_t keep_months, limit, page, timeout_ms, batch_rows, batch_bytes;
    bool no_gzip;
    struct lg_chclient_opts ch;
};

/* "YYYY-MM-DD" -> unix ms (UTC). Strict: exactly that shape. */
static int parse_day(const char *s, int64_t *out)
{
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-') {
        return LG_ERR_INVALID;
    }
    int v[3] = {0, 0, 0};
    const int start[3] = {0, 5, 8}, len[3] = {4, 2, 2};
    for (int f = 0; f < 3; f++) {
        for (int i = 0; i < len[f]; i++) {
            char c = s[start[f] + i];
            if (c < '0' || c > '9') {
                return LG_ERR_INVALID;
            }
            v[f] = v[f] * 10 + (c - '0');
        }
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31) {
        return LG_ERR_INVALID;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    *out = (int64_t)timegm(&tm) * 1000;
    return LG_OK;
}

static void print_usd(FILE *f, int64_t nano)
{
    /* Exact: integer nano-USD printed as a decimal with 9 places, no float. */
    const char *sign = nano < 0 ? "-" : "";
    uint64_t a = nano < 0 ? (uint64_t)0 - (uint64_t)nano : (uint64_t)nano;
    fprintf(f, "%s%" PRIu64 ".%09" PRIu64, sign, a / 1000000000u, a % 1000000000u);
}

static void print_bucket(const char *label, const struct lg_usage_bucket *b)
{
    printf("%s\trequests=%" PRIu64 "\terrors=%" PRIu64 "\tprompt=%" PRId64
           "\tcompletion=%" PRId64 "\tcached=%" PRId64 "\ttotal=%" PRId64 "\tcost_usd=",
           label, b->requests, b->errors, b->prompt_tokens, b->completion_tokens,
           b->cached_tokens, b->total_tokens);
    print_usd(stdout, b->cost_nano_usd);
    printf("\n");
}

static int cmd_usage(struct cli *c)
{
    int64_t from = 0, to = INT64_C(4102444800000); /* 2100-01-01 */
    if ((c->from != NULL && parse_day(c->from, &from) != LG_OK) ||
        (c->to != NULL && parse_day(c->to, &to) != LG_OK)) {
        fprintf(stderr, "llmgate-analytics: --from/--to must be YYYY-MM-DD\n");
        return 2;
    }
    if (c->to != NULL) {
        to += INT64_C(86400000); /* --to is inclusive */
    }
    struct lg_usage_report r;
    int rc = lg_usage_get_usage_sync(&c->ch, c->user, from, to, &r);
    if (rc != LG_OK) {
        lg_log(LG_LOG_ERROR, NULL, "usage_failed", "err=%s", lg_err_name(rc));
        return rc == LG_ERR_INVALID ? 2 : 1;
    }
    print_bucket("total", &r.total);
    char label[512];
    for (size_t i = 0; i < r.n_model; i++) {
        snprintf(label, sizeof(label), "model %s", r.by_model[i].model);
        print_bucket(label, &r.by_model[i]);
    }
    for (size_t i = 0; i < r.n_day; i++) {
        snprintf(label, sizeof(label), "day %s", r.by_day[i].day);
        print_bucket(label, &r.by_day[i]);
    }
    for (size_t i = 0; i < r.n_model_day; i++) {
        snprintf(label, sizeof(label), "day %s model %s", r.by_model_day[i].day,
                 r.by_model_day[i].model);
        print_bucket(label, &r.by_model_day[i]);
    }
    lg_usage_report_free(&r);
    return 0;
}

static int cmd_logs(struct cli *c)
{
    struct lg_usage_logs l;
    int rc = lg_usage_list_logs_sync(&c->ch, c->user, (uint32_t)c->limit, (uint32_t)c->page,
                                     &l);
    if (rc != LG_OK) {
        lg_log(LG_LOG_ERROR, NULL, "logs_failed", "err=%s", lg_err_name(rc));
        return rc == LG_ERR_INVALID ? 2 : 1;
    }
    for (size_t i = 0; i < l.count; i++) {
        const struct lg_usage_log *g = &l.items[i];
        printf("%s\tstart_ms=%" PRId64 "\t%s\t%s\t%s\tprompt=%" PRId64 "\tcompletion=%" PRId64
               "\ttotal=%" PRId64 "\tcost_usd=",
               g->request_id, g->start_time_ms, g->provider, g->model, g->status,
               g->prompt_tokens, g->completion_tokens, g->total_tokens);
        print_usd(stdout, g->estimated_cost_nano_usd);
        printf("\tduration_ms=%" PRId64 "\tttft_ms=%" PRId64 "\n", g->duration_ms,
               g->time_to_first_token_ms);
    }
    lg_usage_logs_free(&l);
    return 0;
}

static int cmd_replay(struct cli *c)
{
    if (c->spool_dir == NULL) {
        fprintf(stderr, "llmgate-analytics: replay needs --spool-dir\n");
        return 2;
    }
    struct lg_shipper_opts o;
    memset(&o, 0, sizeof(o));
    o.clickhouse_url = c->url;
    o.user = c->ch_user;
    o.ca_file = c->ch_ca_file;
    o.key = c->ch_key;
    o.spool_dir = c->spool_dir;
    o.batch_rows = (size_t)c->batch_rows;
    o.batch_bytes = (size_t)c->batch_bytes;
    if (lg_shipper_compression_parse(c->compression, &o.compression) != LG_OK) {
        fprintf(stderr, "llmgate-analytics: --compression must be auto, gzip or none\n");
        return 2;
    }
    if (c->no_gzip) {
        o.compression = LG_SHIPPER_COMPRESSION_NONE;
    }
    lg_shipper *s = NULL;
    int rc = lg_shipper_new(&s, &o);
    if (rc != LG_OK) {
        lg_log(LG_LOG_ERROR, NULL, "replay_failed", "err=%s dir=%s", lg_err_name(rc),
               c->spool_dir);
        return 1;
    }
    rc = lg_shipper_drain(s, c->timeout_ms);
    struct lg_shipper_stats st;
    lg_shipper_get_stats(s, &st);
    printf("replay rows_shipped=%" PRIu64 " batches=%" PRIu64 " retries=%" PRIu64
           " dead_letters=%" PRIu64 " landed_on_check=%" PRIu64 " corrupt=%" PRIu64
           " spool_bytes=%" PRIu64 " complete=%d\n",
           st.rows_shipped, st.batches, st.retries, st.dead_letters, st.landed_on_check,
           st.corrupt_records, st.spool_bytes, rc == LG_OK ? 1 : 0);
    lg_shipper_free(s);
    return rc == LG_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct cli c;
    memset(&c, 0, sizeof(c));
    const struct lg_cfg_opt opts[] = {
        {"clickhouse-url", LG_CFG_STRING, &c.url, "http://127.0.0.1:8123", 0, 0,
         "ClickHouse HTTP interface (http(s)://[user:pass@]host:port)"},
        {"clickhouse-user", LG_CFG_STRING, &c.ch_user, NULL, 0, 0,
         "ClickHouse user (X-ClickHouse-User)"},
        {"clickhouse-key", LG_CFG_STRING, &c.ch_key, NULL, 0, 0,
         "ClickHouse password (X-ClickHouse-Key)"},
        {"clickhouse-ca-file", LG_CFG_STRING, &c.ch_ca_file, NULL, 0, 0,
         "https: PEM file of the CAs to trust (default: the system's)"},
        {"user", LG_CFG_STRING, &c.user, NULL, 0, 0, "user id (usage, logs)"},
        {"from", LG_CFG_STRING, &c.from, NULL, 0, 0, "first day YYYY-MM-DD (usage)"},
        {"to", LG_CFG_STRING, &c.to, NULL, 0, 0, "last day YYYY-MM-DD, inclusive (usage)"},
        {"limit", LG_CFG_INT, &c.limit, "50", 1, LG_USAGE_MAX_LIMIT, "records per page (logs)"},
        {"page", LG_CFG_INT, &c.page, "0", 0, LG_USAGE_MAX_PAGE, "page, 0 first (logs)"},
        {"keep-months", LG_CFG_INT, &c.keep_months, NULL, 1, LG_MIGRATE_MAX_KEEP_MONTHS,
         "months kept, the current one included (retention)"},
        {"spool-dir", LG_CFG_STRING, &c.spool_dir, NULL, 0, 0, "spool to replay (replay)"},
        {"timeout-ms", LG_CFG_INT, &c.timeout_ms, "600000", 1, INT64_C(86400000),
         "give up replaying after this long (replay)"},
        {"batch-rows", LG_CFG_INT, &c.batch_rows, "0", 0, INT64_C(1000000),
         "rows per insert, 0 = built-in default (replay)"},
        {"batch-bytes", LG_CFG_INT, &c.batch_bytes, "0", 0, INT64_C(1) << 30,
         "raw bytes per insert, 0 = built-in default (replay)"},
        {"compression", LG_CFG_STRING, &c.compression, "auto", 0, 0,
         "INSERT bodies: auto (gzip unless ClickHouse is on a loopback address) | gzip | "
         "none (replay)"},
        {"no-gzip", LG_CFG_BOOL, &c.no_gzip, "false", 0, 0,
         "same as --compression none (replay)"},
        {"log-level", LG_CFG_STRING, &c.log_level, "warn", 0, 0, "debug|info|warn|error"},
    };
    size_t nopts = sizeof(opts) / sizeof(opts[0]);
    int pos[2];
    size_t npos = 0;
    char err[256];
    int rc = lg_cfg_parse(opts, nopts, argc, argv, pos, 2, &npos, err, sizeof(err));
    if (rc == 1 || (rc == LG_OK && npos != 1)) {
        struct lg_buf u;
        lg_buf_init(&u, 1 << 16);
        lg_cfg_usage(opts, nopts, "llmgate-analytics",
                     "migrate|retention|usage|logs|replay [flags]", &u);
        fputs((const char *)u.data, rc == 1 ? stdout : stderr);
        lg_buf_deinit(&u);
        return rc == 1 ? 0 : 2;
    }
    if (rc != LG_OK) {
        fprintf(stderr, "llmgate-analytics: %s\n", err);
        return 2;
    }
    enum lg_log_level lvl = LG_LOG_WARN;
    lg_log_parse_level(c.log_level, &lvl);
    lg_log_init(lvl, -1);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c.ch = (struct lg_chclient_opts){c.url, c.ch_user, c.ch_key, LG_SHIPPER_HTTP_TIMEOUT_MS,
                                     LG_SHIPPER_CONNECT_TIMEOUT_MS, c.ch_ca_file};
    const char *cmd = argv[pos[0]];
    int status = 2;
    if (strcmp(cmd, "migrate") == 0) {
        size_t applied = 0;
        rc = lg_migrate_apply(&c.ch, &applied);
        if (rc == LG_OK) {
            printf("migrate applied=%zu\n", applied);
        } else {
            lg_log(LG_LOG_ERROR, NULL, "migrate_failed", "err=%s", lg_err_name(rc));
        }
        status = rc == LG_OK ? 0 : 1;
    } else if (strcmp(cmd, "retention") == 0) {
        if (c.keep_months == 0) {
            fprintf(stderr, "llmgate-analytics: retention needs --keep-months N\n");
        } else {
            size_t dropped = 0;
            rc = lg_migrate_retention(&c.ch, (int)c.keep_months, &dropped);
            if (rc == LG_OK) {
                printf("retention dropped_partitions=%zu\n", dropped);
            } else {
                lg_log(LG_LOG_ERROR, NULL, "retention_failed", "err=%s", lg_err_name(rc));
            }
            status = rc == LG_OK ? 0 : 1;
        }
    } else if (strcmp(cmd, "usage") == 0 || strcmp(cmd, "logs") == 0) {
        if (lg_usage_check_user_id(c.user) != LG_OK) {
            fprintf(stderr, "llmgate-analytics: %s needs --user U (1..%d bytes, no control "
                            "characters)\n", cmd, LG_USAGE_MAX_USER_ID_BYTES);
        } else {
            status = cmd[0] == 'u' ? cmd_usage(&c) : cmd_logs(&c);
        }
    } else if (strcmp(cmd, "replay") == 0) {
        status = cmd_replay(&c);
    } else {
        fprintf(stderr, "llmgate-analytics: unknown command '%.32s' (see --help)\n", cmd);
    }
    curl_global_cleanup();
    return status;
}
