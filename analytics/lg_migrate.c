/* SPDX-License-Identifier: Apache-2.0 */
#define LG_LOG_MODULE "migrate"
#include "lg_migrate.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "lg_buf.h"
#include "lg_chclient.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_log.h"

#define MIGRATIONS_TABLE_SQL                                                                   \
    "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "              \
    "checksum String, applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree() "      \
    "ORDER BY version"

static unsigned version_of(const char *name)
{
    unsigned v = 0;
    for (int i = 0; name[i] >= '0' && name[i] <= '9' && i < 9; i++) {
        v = v * 10u + (unsigned)(name[i] - '0');
    }
    return v;
}

/* Runs each statement of |sql|: "--" comment lines are skipped, a statement ends with a
 * line ending in ';'. */
static int run_file(const struct lg_chclient_opts *ch, const char *name, const char *sql)
{
    struct lg_buf stmt, resp;
    lg_buf_init(&stmt, LG_CHCLIENT_MAX_URL_BYTES);
    lg_buf_init(&resp, LG_CHCLIENT_MAX_ERROR_BYTES);
    int rc = LG_OK;
    const char *p = sql;
    while (*p != 0 && rc == LG_OK) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        const char *t = p;
        while (t < p + len && (*t == ' ' || *t == '\t')) {
            t++;
        }
        bool comment = (size_t)(p + len - t) >= 2 && t[0] == '-' && t[1] == '-';
        if (!comment) {
            size_t e = len;
            while (e > 0 && (p[e - 1] == ' ' || p[e - 1] == '\t' || p[e - 1] == '\r')) {
                e--;
            }
            bool end = e > 0 && p[e - 1] == ';';
            rc = lg_buf_append(&stmt, p, end ? e - 1 : len);
            if (rc == LG_OK) {
                rc = lg_buf_append_byte(&stmt, '\n');
            }
            if (rc == LG_OK && end) {
                struct lg_chclient_result res;
                rc = lg_chclient_query(ch, (const char *)stmt.data, &resp, &res);
                if (rc != LG_OK) {
                    lg_log(LG_LOG_ERROR, NULL, "migration_failed", "name=%s msg=%.300s", name,
                           res.message);
                }
                lg_buf_reset(&stmt);
            }
        }
        p += len + (nl != NULL ? 1 : 0);
    }
    lg_buf_deinit(&stmt);
    lg_buf_deinit(&resp);
    return rc;
}

/* Reads "version\tchecksum" lines of applied migrations into |resp|. */
static bool find_applied(const struct lg_buf *resp, unsigned version, char *sum, size_t sumlen)
{
    const char *p = (const char *)resp->data;
    const char *end = p + resp->len;
    while (p != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        const char *tab = memchr(p, '\t', len);
        if (tab != NULL && version_of(p) == version) {
            size_t n = len - (size_t)(tab + 1 - p);
            if (n >= sumlen) {
                n = sumlen - 1;
            }
            memcpy(sum, tab + 1, n);
            sum[n] = 0;
            return true;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return false;
}

int lg_migrate_apply(const struct lg_chclient_opts *ch, size_t *applied_out)
{
    struct lg_buf resp, sql;
    lg_buf_init(&resp, LG_CHCLIENT_MAX_RESPONSE_BYTES);
    lg_buf_init(&sql, LG_CHCLIENT_MAX_URL_BYTES);
    size_t applied = 0;
    struct lg_chclient_result res;
    int rc = lg_chclient_query(ch, MIGRATIONS_TABLE_SQL, &resp, &res);
    if (rc != LG_OK) {
        /* The first request: an unreachable server or a refused certificate shows here. */
        lg_log(LG_LOG_ERROR, NULL, "migration_failed", "name=schema_migrations msg=%.300s",
               res.message);
    }
    if (rc == LG_OK) {
        rc = lg_chclient_query(ch, "SELECT version, checksum FROM schema_migrations FINAL "
                                   "ORDER BY version FORMAT TSV", &resp, NULL);
    }
    size_t n = 0;
    const struct lg_migrate_file *files = lg_migrate_files(&n);
    for (size_t i = 0; i < n && rc == LG_OK; i++) {
        char sum[24], have[32];
        snprintf(sum, sizeof(sum), "%08x",
                 (unsigned)crc32(0L, (const Bytef *)files[i].sql, (uInt)strlen(files[i].sql)));
        unsigned v = version_of(files[i].name);
        if (find_applied(&resp, v, have, sizeof(have))) {
            if (strcmp(have, sum) != 0) {
                lg_log(LG_LOG_ERROR, NULL, "migration_changed",
                       "name=%s applied_checksum=%s file_checksum=%s", files[i].name, have,
                       sum);
                rc = LG_ERR_STATE;
            }
            continue;
        }
        rc = run_file(ch, files[i].name, files[i].sql);
        if (rc != LG_OK) {
            break;
        }
        lg_buf_reset(&sql);
        rc = lg_buf_appendf(&sql,
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES "
                            "(%u, '%s', '%s')",
                            v, files[i].name, sum);
        if (rc == LG_OK) {
            struct lg_buf r2;
            lg_buf_init(&r2, LG_CHCLIENT_MAX_ERROR_BYTES);
            rc = lg_chclient_query(ch, (const char *)sql.data, &r2, NULL);
            lg_buf_deinit(&r2);
        }
        if (rc == LG_OK) {
            applied++;
            lg_log(LG_LOG_INFO, NULL, "migration_applied", "name=%s", files[i].name);
        }
    }
    lg_buf_deinit(&resp);
    lg_buf_deinit(&sql);
    if (applied_out != NULL) {
        *applied_out = applied;
    }
    return rc;
}

int lg_migrate_retention(const struct lg_chclient_opts *ch, int keep_months,
                         size_t *dropped_out)
{
    if (keep_months < 1 || keep_months > LG_MIGRATE_MAX_KEEP_MONTHS) {
        return LG_ERR_INVALID;
    }
    struct lg_buf sql, resp;
    lg_buf_init(&sql, LG_CHCLIENT_MAX_URL_BYTES);
    lg_buf_init(&resp, LG_CHCLIENT_MAX_RESPONSE_BYTES);
    /* Partitions are toYYYYMM months: compare as numbers against the first kept month. */
    int rc = lg_buf_appendf(&sql,
        "SELECT DISTINCT table, partition FROM system.parts WHERE active AND "
        "database = currentDatabase() AND table IN ('llm_requests', 'llm_request_bodies', "
        "'llm_usage_daily') AND toUInt32(partition) < "
        "toYYYYMM(addMonths(toStartOfMonth(today()), -%d)) ORDER BY table, partition "
        "FORMAT TSV",
        keep_months - 1);
    if (rc == LG_OK) {
        rc = lg_chclient_query(ch, (const char *)sql.data, &resp, NULL);
    }
    size_t dropped = 0;
    const char *p = (const char *)resp.data;
    const char *end = p != NULL ? p + resp.len : NULL;
    while (rc == LG_OK && p != NULL && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        const char *tab = memchr(p, '\t', len);
        if (tab != NULL) {
            /* Table names come from our own IN list; the partition is all digits. */
            int tlen = (int)(tab - p);
            int plen = (int)(len - (size_t)(tab + 1 - p));
            bool digits = plen > 0 && plen <= 8;
            for (int k = 0; k < plen && digits; k++) {
                digits = tab[1 + k] >= '0' && tab[1 + k] <= '9';
            }
            if (digits) {
                lg_buf_reset(&sql);
                lg_buf_appendf(&sql, "ALTER TABLE %.*s DROP PARTITION %.*s", tlen, p, plen,
                               tab + 1);
                struct lg_buf r2;
                lg_buf_init(&r2, LG_CHCLIENT_MAX_ERROR_BYTES);
                rc = lg_chclient_query(ch, (const char *)sql.data, &r2, NULL);
                lg_buf_deinit(&r2);
                if (rc == LG_OK) {
                    dropped++;
                    lg_log(LG_LOG_INFO, NULL, "partition_dropped", "table=%.*s partition=%.*s",
                           tlen, p, plen, tab + 1);
                }
            }
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    lg_buf_deinit(&sql);
    lg_buf_deinit(&resp);
    if (dropped_out != NULL) {
        *dropped_out = dropped;
    }
    return rc;
}
