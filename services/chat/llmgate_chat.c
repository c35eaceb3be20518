/* SPDX-License-Identifier: Apache-2.0 */
/*
 * llmgate-chat: the chat service binary. gRPC (ChatService, UsageService, grpc.health.v1,
 * reflection) on --listen; /healthz, /readyz, /metrics on --admin-listen. Billing records go
 * to the ClickHouse shipper when --clickhouse-url is set, else to a JSON-lines file
 * (--records-file). With no --config it serves the built-in demo provider (model "demo").
 * SIGTERM/SIGINT: graceful drain (GOAWAY, in-flight calls finish), records flushed.
 */
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "lg_admin.h"
#include "lg_buf.h"
#include "lg_cfg.h"
#include "lg_chat_config.h"
#include "lg_chat_fds.h"
#include "lg_chat_registry.h"
#include "lg_chat_service.h"
#include "lg_chclient.h"
#include "lg_curlm.h"
#include "lg_err.h"
#include "lg_grpc_health.h"
#include "lg_grpc_reflection.h"
#include "lg_grpc_server.h"
#include "lg_limits.h"
#include "lg_loop.h"
#include "lg_metrics.h"
#include "lg_record.h"
#include "lg_shipper.h"
#include "lg_usage.h"

#define LG_LOG_MODULE "main"
#include "lg_log.h"

/* UsageService queries to ClickHouse: whole request and connect timeouts. */
#define CHAT_MAIN_USAGE_TIMEOUT_MS 10000
#define CHAT_MAIN_USAGE_CONNECT_MS 2000
/* Time the shipper gets at shutdown to land what is queued (the rest stays spooled). */
#define CHAT_MAIN_DRAIN_RECORDS_MS 5000
#define CHAT_MAIN_ADDR_BYTES       128

/* Flag defaults come from lg_limits.h as text, so --help cannot drift from the limits. */
#define CHAT_MAIN_STR2(x)              #x
#define CHAT_MAIN_STR(x)               CHAT_MAIN_STR2(x)
#define CHAT_MAIN_REPLAY_BYTES_DEFAULT "1048576"
_Static_assert(LG_CHAT_REPLAY_MAX_BYTES == 1048576u, "keep the --replay-max-bytes default in sync");

struct chat_flags {
    const char *listen;
    const char *admin_listen;
    const char *config;
    const char *clickhouse_url;
    const char *clickhouse_user;
    const char *clickhouse_key;
    const char *clickhouse_ca_file;
    const char *clickhouse_compression;
    const char *clickhouse_format;
    const char *spool_dir;
    const char *records_file;
    const char *body_logging;
    const char *log_level;
    const char *node;
    int64_t demo_pace_ms;
    int64_t grace_ms;
    int64_t retention_ms;
    int64_t replay_max_events;
    int64_t replay_max_bytes;
    int64_t drain_ms;
    int64_t max_streams;
};

struct chat_main {
    struct event_base *base;
    lg_grpc_server *srv;
    lg_admin *admin;
    lg_chat_service *svc; /* for SIGHUP reloads; borrowed from chat_parts */
    const char *config;   /* --config path, or NULL (built-in demo provider) */
    bool stopping;
};

static void chat_main_on_done(lg_grpc_server *srv, void *user_data)
{
    (void)srv;
    struct chat_main *m = user_data;
    event_base_loopbreak(m->base);
}

/* SIGHUP: re-reads the provider/price file. A file that fails to load keeps the running
 * configuration (and says why); streams already running keep theirs. */
static void chat_main_reload(struct chat_main *m)
{
    if (m->config == NULL || m->config[0] == '\0') {
        lg_log(LG_LOG_WARN, NULL, "config_reload", "no --config file: built-in demo stays");
        return;
    }
    lg_chat_config *cfg = NULL;
    char why[256] = "";
    int rc = lg_chat_config_load(&cfg, m->config, why, sizeof(why));
    if (rc == LG_OK) {
        rc = lg_chat_service_set_config(m->svc, cfg);
        if (rc != LG_OK) {
            lg_chat_config_free(cfg);
        }
    }
    if (rc != LG_OK) {
        lg_log(LG_LOG_ERROR, NULL, "config_reload_failed", "rc=%s why=%s kept previous config",
               lg_err_name(rc), why);
        return;
    }
    lg_log(LG_LOG_INFO, NULL, "config_reloaded", "providers=%zu", lg_chat_config_count(cfg));
}

static void chat_main_on_signal(int signo, void *user_data)
{
    struct chat_main *m = user_data;
    if (signo == SIGHUP) {
        chat_main_reload(m);
        return;
    }
    if (m->stopping) {
        /* Second SIGTERM/SIGINT: stop waiting for the drain. Teardown still stops the
         * remaining streams (each writes its record, status cancelled) and gives the
         * shipper its final flush, so nothing billed is lost by hurrying. */
        lg_log(LG_LOG_WARN, NULL, "shutdown_now", "signal=%d during drain: cutting it short",
               signo);
        event_base_loopbreak(m->base);
        return;
    }
    m->stopping = true;
    lg_log(LG_LOG_INFO, NULL, "shutdown", "signal=%d: draining", signo);
    if (m->admin != NULL) {
        lg_admin_set_ready(m->admin, false);
    }
    lg_grpc_server_shutdown(m->srv, 0, chat_main_on_done, m);
}

static int chat_main_parse(int argc, char **argv, struct chat_flags *f)
{
    const struct lg_cfg_opt opts[] = {
        {"listen", LG_CFG_STRING, &f->listen, "127.0.0.1:50051", 0, 0,
         "gRPC address HOST:PORT (port 0 picks a free port)"},
        {"admin-listen", LG_CFG_STRING, &f->admin_listen, "127.0.0.1:9090", 0, 0,
         "admin HTTP address for /healthz, /readyz, /metrics"},
        {"config", LG_CFG_STRING, &f->config, NULL, 0, 0,
         "provider config JSON file (default: built-in demo provider, model \"demo\")"},
        {"clickhouse-url", LG_CFG_STRING, &f->clickhouse_url, NULL, 0, 0,
         "ship billing records to ClickHouse at this URL (needs --spool-dir)"},
        {"clickhouse-user", LG_CFG_STRING, &f->clickhouse_user, NULL, 0, 0,
         "ClickHouse user, sent as X-ClickHouse-User (inserts and UsageService; a user in "
         "the URL also works)"},
        {"clickhouse-key", LG_CFG_STRING, &f->clickhouse_key, NULL, 0, 0,
         "ClickHouse password, sent as X-ClickHouse-Key"},
        {"clickhouse-ca-file", LG_CFG_STRING, &f->clickhouse_ca_file, NULL, 0, 0,
         "https ClickHouse: PEM file of the CAs to trust (default: the system's)"},
        {"clickhouse-compression", LG_CFG_STRING, &f->clickhouse_compression, "auto", 0, 0,
         "INSERT bodies to ClickHouse: auto (gzip unless its host is a loopback address) | "
         "gzip | none"},
        {"clickhouse-format", LG_CFG_STRING, &f->clickhouse_format, "rowbinary", 0, 0,
         "row format of billing records in the spool and to ClickHouse: rowbinary | json"},
        {"spool-dir", LG_CFG_STRING, &f->spool_dir, NULL, 0, 0,
         "write-ahead spool directory for the ClickHouse shipper"},
        {"records-file", LG_CFG_STRING, &f->records_file, "llmgate-records.jsonl", 0, 0,
         "JSON-lines file for billing records when --clickhouse-url is not set"},
        {"body-logging", LG_CFG_STRING, &f->body_logging, "full", 0, 0,
         "what records keep of prompts and answers: full | truncated:N | none"},
        {"log-level", LG_CFG_STRING, &f->log_level, "info", 0, 0,
         "debug | info | warn | error | off"},
        {"node", LG_CFG_STRING, &f->node, NULL, 0, 0,
         "this pod's node (StatefulSet ordinal, 0..99999), encoded in stream ids for resume "
         "routing; unset = none"},
        {"demo-pace-ms", LG_CFG_INT, &f->demo_pace_ms, CHAT_MAIN_STR(LG_CHAT_DEMO_PACE_MS_DEFAULT),
         0, LG_CHAT_DEMO_PACE_MS_MAX,
         "demo provider: pause between tokens (0 = as fast as possible)"},
        {"grace-ms", LG_CFG_INT, &f->grace_ms, CHAT_MAIN_STR(LG_CHAT_GRACE_MS_DEFAULT), 0,
         LG_CHAT_GRACE_MS_MAX, "generation continues this long after the last client left"},
        {"retention-ms", LG_CFG_INT, &f->retention_ms, CHAT_MAIN_STR(LG_CHAT_RETENTION_MS_DEFAULT),
         0, LG_CHAT_RETENTION_MS_MAX, "a finished stream stays resumable this long"},
        {"replay-max-events", LG_CFG_INT, &f->replay_max_events,
         CHAT_MAIN_STR(LG_CHAT_REPLAY_MAX_EVENTS), 1, LG_CHAT_REPLAY_MAX_EVENTS,
         "events kept per stream for ResumeStream"},
        {"replay-max-bytes", LG_CFG_INT, &f->replay_max_bytes, CHAT_MAIN_REPLAY_BYTES_DEFAULT, 1024,
         LG_CHAT_REPLAY_MAX_BYTES, "bytes kept per stream for ResumeStream"},
        {"drain-ms", LG_CFG_INT, &f->drain_ms, CHAT_MAIN_STR(LG_CHAT_DRAIN_MS_DEFAULT), 0,
         LG_CHAT_DRAIN_MS_MAX,
         "on SIGTERM, time in-flight calls get to finish"},
        {"max-streams", LG_CFG_INT, &f->max_streams, CHAT_MAIN_STR(LG_CHAT_MAX_STREAMS), 1,
         LG_CHAT_MAX_STREAMS,
         "streams kept at once (generating or resumable); the oldest finished go first"},
    };
    char err[256];
    int rc = lg_cfg_parse(opts, sizeof(opts) / sizeof(opts[0]), argc, argv, NULL, 0, NULL, err,
                          sizeof(err));
    if (rc == 1 || rc != LG_OK) {
        struct lg_buf usage;
        lg_buf_init(&usage, 1 << 16);
        lg_cfg_usage(opts, sizeof(opts) / sizeof(opts[0]), argv[0], "[flags]", &usage);
        if (rc != 1) {
            fprintf(stderr, "llmgate-chat: %s\n", err);
        }
        fputs(usage.data != NULL ? (const char *)usage.data : "", rc == 1 ? stdout : stderr);
        lg_buf_deinit(&usage);
        return rc == 1 ? 1 : -1;
    }
    return 0;
}

/* Opens the record sink: the shipper when --clickhouse-url is set, else the file. */
static int chat_main_sink(const struct chat_flags *f, lg_shipper **shipper,
                          struct lg_record_sink *sink)
{
    if (f->clickhouse_url != NULL && f->clickhouse_url[0] != '\0') {
        if (f->spool_dir == NULL) {
            fprintf(stderr, "llmgate-chat: --clickhouse-url needs --spool-dir\n");
            return LG_ERR_INVALID;
        }
        struct lg_shipper_opts so;
        memset(&so, 0, sizeof(so));
        so.clickhouse_url = f->clickhouse_url;
        so.user = f->clickhouse_user;
        so.key = f->clickhouse_key;
        so.ca_file = f->clickhouse_ca_file;
        so.spool_dir = f->spool_dir;
        if (lg_shipper_compression_parse(f->clickhouse_compression, &so.compression) != LG_OK) {
            fprintf(stderr, "llmgate-chat: --clickhouse-compression: auto, gzip or none\n");
            return LG_ERR_INVALID;
        }
        if (lg_shipper_format_parse(f->clickhouse_format, &so.format) != LG_OK) {
            fprintf(stderr, "llmgate-chat: --clickhouse-format: rowbinary or json\n");
            return LG_ERR_INVALID;
        }
        int rc = lg_shipper_new(shipper, &so);
        if (rc != LG_OK) {
            fprintf(stderr, "llmgate-chat: shipper: %s\n", lg_err_str(rc));
            return rc;
        }
        lg_shipper_sink(*shipper, sink);
        return LG_OK;
    }
    int rc = lg_record_file_sink_open(sink, f->records_file);
    if (rc != LG_OK) {
        fprintf(stderr, "llmgate-chat: cannot open records file %s\n", f->records_file);
    }
    return rc;
}

/* Shipper statistics exposed at scrape time (lg_metrics counter/gauge callbacks): the
 * shipper already counts them, so the record path does no second bookkeeping. */
static uint64_t chat_main_stat(lg_shipper *sh, size_t off)
{
    struct lg_shipper_stats st;
    lg_shipper_get_stats(sh, &st);
    uint64_t v;
    memcpy(&v, (const char *)&st + off, sizeof(v));
    return v;
}

static int64_t chat_main_queue_depth(void *ud)
{
    return (int64_t)chat_main_stat(ud, offsetof(struct lg_shipper_stats, queue_depth));
}

static int64_t chat_main_spool_bytes(void *ud)
{
    return (int64_t)chat_main_stat(ud, offsetof(struct lg_shipper_stats, spool_bytes));
}

static uint64_t chat_main_rows_shipped(void *ud)
{
    return chat_main_stat(ud, offsetof(struct lg_shipper_stats, rows_shipped));
}

static uint64_t chat_main_insert_failures(void *ud)
{
    return chat_main_stat(ud, offsetof(struct lg_shipper_stats, retries));
}

static uint64_t chat_main_dropped(void *ud)
{
    return chat_main_stat(ud, offsetof(struct lg_shipper_stats, dropped));
}

static int chat_main_shipper_metrics(lg_metrics *m, lg_shipper *sh)
{
    if (sh == NULL) {
        return LG_OK; /* records go to a file: nothing queued or spooled to report */
    }
    int rc = lg_metrics_register_gauge_cb(m, "llmgate_shipper_queue_depth",
                                          "Billing records waiting in memory for the shipper",
                                          chat_main_queue_depth, sh, NULL);
    if (rc == LG_OK) {
        rc = lg_metrics_register_gauge_cb(m, "llmgate_spool_bytes",
                                          "Bytes in the write-ahead spool (not yet acknowledged "
                                          "by ClickHouse)",
                                          chat_main_spool_bytes, sh, NULL);
    }
    if (rc == LG_OK) {
        rc = lg_metrics_register_counter_cb(m, "llmgate_shipper_rows_shipped_total",
                                            "Rows ClickHouse acknowledged", chat_main_rows_shipped,
                                            sh, NULL);
    }
    if (rc == LG_OK) {
        rc = lg_metrics_register_counter_cb(m, "llmgate_shipper_insert_failures_total",
                                            "Failed INSERTs to ClickHouse (each is retried)",
                                            chat_main_insert_failures, sh, NULL);
    }
    if (rc == LG_OK) {
        rc = lg_metrics_register_counter_cb(m, "llmgate_shipper_dropped_records_total",
                                            "Billing records lost because the ring was full while "
                                            "the spool was at its cap or could not write (the "
                                            "only loss)",
                                            chat_main_dropped, sh, NULL);
    }
    return rc;
}

static int chat_main_config(const struct chat_flags *f, lg_chat_config **cfg)
{
    if (f->config == NULL || f->config[0] == '\0') {
        return lg_chat_config_new_default(cfg);
    }
    char why[256] = "";
    int rc = lg_chat_config_load(cfg, f->config, why, sizeof(why));
    if (rc != LG_OK) {
        fprintf(stderr, "llmgate-chat: %s\n", why[0] != '\0' ? why : lg_err_str(rc));
    }
    return rc;
}

struct chat_parts {
    lg_chat_config *cfg;
    lg_shipper *shipper;
    struct lg_record_sink sink;
    lg_metrics *metrics;
    lg_curlm *curlm;
    lg_chat_service *svc;
    lg_usage *usage;
    lg_grpc_health *health;
    lg_grpc_reflection *reflection;
    lg_loop_signals *signals;
};

static int chat_main_service(const struct chat_flags *f, struct chat_main *m, struct chat_parts *p)
{
    struct lg_chat_service_opts so;
    lg_chat_service_opts_default(&so);
    so.cfg = p->cfg;
    so.sink = &p->sink;
    so.curlm = p->curlm;
    so.metrics = p->metrics;
    so.usage = p->usage;
    so.node = f->node;
    so.demo_pace_ms = (uint32_t)f->demo_pace_ms;
    so.grace_ms = (uint32_t)f->grace_ms;
    so.retention_ms = (uint32_t)f->retention_ms;
    so.replay_max_events = (size_t)f->replay_max_events;
    so.replay_max_bytes = (size_t)f->replay_max_bytes;
    so.max_streams = (size_t)f->max_streams;
    if (lg_chat_service_parse_body_mode(f->body_logging, &so.body_mode, &so.body_max_bytes) !=
        LG_OK) {
        fprintf(stderr, "llmgate-chat: --body-logging must be full, none or truncated:N\n");
        return LG_ERR_INVALID;
    }
    if (f->node != NULL && f->node[0] != '\0' && !lg_chat_registry_is_node(f->node)) {
        fprintf(stderr,
                "llmgate-chat: --node (LLMGATE_NODE) must be 0..99999 without leading "
                "zeros, got '%s'\n",
                f->node);
        return LG_ERR_INVALID;
    }
    struct lg_grpc_server_opts go;
    lg_grpc_server_opts_default(&go);
    go.drain_ms = (uint32_t)f->drain_ms;
    int rc = lg_grpc_server_new(&m->srv, m->base, &go);
    if (rc == LG_OK) {
        rc = lg_grpc_server_set_metrics(m->srv, p->metrics);
    }
    if (rc == LG_OK) {
        rc = lg_chat_service_new(&p->svc, m->base, m->srv, &so);
        m->svc = p->svc;
    }
    if (rc == LG_OK) {
        rc = lg_grpc_health_new(&p->health, m->srv);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_health_set_status(p->health, "llmgate.chat.v1.ChatService",
                                       LG_GRPC_HEALTH_SERVING);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_health_set_status(p->health, "llmgate.chat.v1.UsageService",
                                       p->usage != NULL ? LG_GRPC_HEALTH_SERVING
                                                        : LG_GRPC_HEALTH_NOT_SERVING);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_reflection_new(&p->reflection, m->srv, lg_chat_fds, lg_chat_fds_len);
    }
    return rc;
}

static int chat_main_listen(const struct chat_flags *f, struct chat_main *m, struct chat_parts *p)
{
    char bound[CHAT_MAIN_ADDR_BYTES];
    int rc = lg_grpc_server_listen(m->srv, f->listen, bound, sizeof(bound));
    if (rc != LG_OK) {
        fprintf(stderr, "llmgate-chat: cannot listen on %s\n", f->listen);
        return rc;
    }
    struct lg_admin_opts ao = {f->admin_listen, p->metrics, NULL, NULL, 0};
    rc = lg_admin_new(&m->admin, m->base, &ao);
    if (rc != LG_OK) {
        fprintf(stderr, "llmgate-chat: cannot listen on %s\n", f->admin_listen);
        return rc;
    }
    rc = lg_loop_signals_new(&p->signals, m->base, chat_main_on_signal, m);
    if (rc != LG_OK) {
        return rc;
    }
    printf("listening grpc %s\n", bound);
    printf("listening admin %s\n", lg_admin_get_address(m->admin));
    fflush(stdout);
    return LG_OK;
}

static void chat_main_teardown(struct chat_main *m, struct chat_parts *p)
{
    /* The signal events stay installed until the very end: a SIGTERM arriving while the
     * records are written and the shipper flushes lands in them (nobody dispatches it), not
     * in the default action that would kill the process and lose the final flush. */
    lg_admin_free(m->admin);
    lg_grpc_server_free(m->srv); /* every call gets on_close before the service goes */
    lg_grpc_reflection_free(p->reflection);
    lg_grpc_health_free(p->health);
    lg_usage_free(p->usage);      /* pending queries are answered LG_ERR_CLOSED, then joined */
    lg_chat_service_free(p->svc); /* writes the records of streams still running */
    lg_curlm_free(p->curlm);
    if (p->shipper != NULL) {
        lg_shipper_drain(p->shipper, CHAT_MAIN_DRAIN_RECORDS_MS);
        lg_shipper_free(p->shipper);
    } else {
        lg_record_sink_close(&p->sink);
    }
    lg_metrics_free(p->metrics);
    lg_chat_config_free(p->cfg);
    lg_loop_signals_free(p->signals);
    /* Everything is written: a late SIGTERM/SIGINT must not turn exit 0 into a kill. */
    (void)signal(SIGTERM, SIG_IGN);
    (void)signal(SIGINT, SIG_IGN);
    if (m->base != NULL) {
        event_base_free(m->base);
    }
}

int main(int argc, char **argv)
{
    struct chat_flags f;
    memset(&f, 0, sizeof(f));
    int prc = chat_main_parse(argc, argv, &f);
    if (prc != 0) {
        return prc == 1 ? 0 : 2;
    }
    enum lg_log_level level;
    if (lg_log_parse_level(f.log_level, &level) != 0) {
        fprintf(stderr, "llmgate-chat: bad --log-level %s\n", f.log_level);
        return 2;
    }
    lg_log_init(level, -1);
    lg_loop_route_libevent_logs();
    lg_loop_ignore_sigpipe();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "llmgate-chat: curl_global_init failed\n");
        return 1;
    }
    struct chat_main m;
    memset(&m, 0, sizeof(m));
    m.config = f.config;
    struct chat_parts p;
    memset(&p, 0, sizeof(p));
    int rc = chat_main_config(&f, &p.cfg);
    if (rc == LG_OK) {
        rc = chat_main_sink(&f, &p.shipper, &p.sink);
    }
    if (rc == LG_OK && f.clickhouse_url != NULL && f.clickhouse_url[0] != '\0') {
        struct lg_chclient_opts ch = {.url = f.clickhouse_url,
                                      .user = f.clickhouse_user,
                                      .key = f.clickhouse_key,
                                      .timeout_ms = CHAT_MAIN_USAGE_TIMEOUT_MS,
                                      .connect_timeout_ms = CHAT_MAIN_USAGE_CONNECT_MS,
                                      .ca_file = f.clickhouse_ca_file};
        rc = lg_usage_new(&p.usage, &ch);
    }
    if (rc == LG_OK) {
        /* UsageService results arrive from lg_usage's worker thread (event_active). */
        rc = evthread_use_pthreads() == 0 ? LG_OK : LG_ERR_INTERNAL;
    }
    if (rc == LG_OK) {
        m.base = lg_loop_base_new();
        rc = m.base != NULL ? lg_metrics_new(&p.metrics) : LG_ERR_NOMEM;
    }
    if (rc == LG_OK) {
        rc = chat_main_shipper_metrics(p.metrics, p.shipper);
    }
    if (rc == LG_OK) {
        rc = lg_curlm_new(&p.curlm, m.base);
    }
    if (rc == LG_OK) {
        rc = chat_main_service(&f, &m, &p);
    }
    if (rc == LG_OK) {
        rc = chat_main_listen(&f, &m, &p);
    }
    if (rc == LG_OK) {
        lg_log(LG_LOG_INFO, NULL, "ready", "providers=%zu demo_pace_ms=%lld grace_ms=%lld",
               lg_chat_config_count(p.cfg), (long long)f.demo_pace_ms, (long long)f.grace_ms);
        event_base_dispatch(m.base);
    } else {
        fprintf(stderr, "llmgate-chat: startup failed: %s\n", lg_err_str(rc));
    }
    chat_main_teardown(&m, &p);
    curl_global_cleanup();
    return rc == LG_OK ? 0 : 1;
}
