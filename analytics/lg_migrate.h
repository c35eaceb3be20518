/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_migrate: versioned ClickHouse schema migrations and retention.
 *
 * Purpose: analytics/schema/NNNN_name.sql files are compiled into the binary (generated
 * lg_migrate_files.c, so a container needs no schema directory). lg_migrate_apply creates
 * schema_migrations if missing, then applies, in version order, each migration whose
 * version is not recorded there, statement by statement (the HTTP interface runs one
 * statement per request), and records it. Every statement is CREATE ... IF NOT EXISTS, so
 * a run interrupted half way is simply run again: idempotent. A recorded migration whose
 * file changed since is reported (LG_ERR_STATE), never re-applied silently.
 * lg_migrate_retention drops whole monthly partitions older than the kept months.
 *
 * Thread: blocking (curl easy): CLI and tests only.
 * Ownership: nothing returned needs freeing.
 * Errors: those of lg_chclient_query; LG_ERR_STATE (changed migration); LG_ERR_INVALID.
 */
#ifndef LG_MIGRATE_H
#define LG_MIGRATE_H

#include <stddef.h>

struct lg_chclient_opts;

/* One embedded migration file. */
struct lg_migrate_file {
    const char *name; /* "0001_requests" */
    const char *sql;  /* file text */
};

/* The embedded migrations, sorted by name (generated at build time). */
const struct lg_migrate_file *lg_migrate_files(size_t *count);

/* Applies pending migrations. |applied_out| (may be NULL) receives how many were applied
 * by this call (0 when up to date). */
int lg_migrate_apply(const struct lg_chclient_opts *ch, size_t *applied_out);

/* Drops partitions of llm_requests, llm_request_bodies and llm_usage_daily whose month is
 * before the |keep_months| most recent months (the current month counts as one). 1..1200.
 * |dropped_out| (may be NULL) receives the number of partitions dropped. */
int lg_migrate_retention(const struct lg_chclient_opts *ch, int keep_months,
                         size_t *dropped_out);

#endif /* LG_MIGRATE_H */
