/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_admin: the operator's HTTP/1.1 endpoints of every binary, on libevent's evhttp:
 *
 *   GET /healthz  liveness: 200 {"status":"ok"} as long as the loop runs
 *   GET /readyz   readiness: 200 {"status":"ready"} or 503 {"status":"not_ready"}, from
 *                 lg_admin_set_ready() AND the readiness callback (e.g. false during drain)
 *   GET /metrics  the lg_metrics registry in Prometheus text format 0.0.4
 *   anything else 404 with a JSON error body; methods other than GET/HEAD get 405
 *
 * Two ways to use it: lg_admin_new with opts.listen binds its own listener (llmgate-chat's
 * --admin-listen; port 0 picks a free port and lg_admin_get_address returns the bound
 * address, so main() prints `listening admin HOST:PORT`); or, with opts.listen NULL, no
 * listener is bound and a binary that already runs an evhttp server (llmgate-sse) passes its
 * requests to lg_admin_serve, which answers the admin paths and leaves the rest to it.
 *
 * Limits (lg_limits.h, common: metrics and admin): request header bytes, body bytes and the
 * idle/read/write timeout are bounded on the listener this module owns; /metrics output is
 * bounded by LG_METRICS_MAX_RENDER_BYTES (503 JSON error past it, never a truncated body).
 *
 * Thread: the thread that runs |base|; every function below is called on it, and the
 * readiness callback fires on it. Metrics updates from other threads are safe (lg_metrics).
 * Ownership: |base|, |opts->metrics| and |opts->ready_user_data| are borrowed and must
 * outlive the lg_admin; the lg_admin is returned owned (lg_admin_free).
 * Errors: LG_ERR_INVALID (bad address), LG_ERR_IO (bind/listen failed), LG_ERR_NOMEM;
 * lg_admin_serve returns LG_ERR_NOT_FOUND for paths it does not own (nothing sent).
 */
#ifndef LG_ADMIN_H
#define LG_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "lg_metrics.h"

struct event_base;
struct evhttp_request;

/* Returns whether the process should receive traffic now (e.g. false once draining).
 * Fires on the loop thread for every /readyz request; must not block. */
typedef bool (*lg_admin_ready_cb)(void *user_data);

/* Options for lg_admin_new; borrowed for the call, pointers inside as stated. */
struct lg_admin_opts {
    const char *listen;         /* "HOST:PORT" (port 0 = pick one), or NULL: no listener */
    lg_metrics *metrics;        /* registry served on /metrics; NULL serves an empty body */
    lg_admin_ready_cb ready_cb; /* NULL = ready unless lg_admin_set_ready(false) */
    void *ready_user_data;      /* passed to ready_cb */
    int timeout_ms;             /* connection timeout on the own listener; 0 = default
                                   LG_ADMIN_TIMEOUT_MS; may only lower it */
};

typedef struct lg_admin lg_admin;

/* Creates the admin server on |base| and binds opts->listen when given. Returns LG_OK,
 * LG_ERR_INVALID, LG_ERR_IO or LG_ERR_NOMEM; on error nothing is left bound. */
int lg_admin_new(lg_admin **out, struct event_base *base, const struct lg_admin_opts *opts);
/* Closes the listener and frees |a|. Accepts NULL. Call on the loop thread. */
void lg_admin_free(lg_admin *a);

/* Sets the readiness flag (initially true); /readyz answers 200 only when the flag is true
 * and the callback (if any) returns true. Call with false at the start of a drain. */
void lg_admin_set_ready(lg_admin *a, bool ready);

/* Answers |req| when its path is /healthz, /readyz or /metrics and returns LG_OK; returns
 * LG_ERR_NOT_FOUND without touching |req| otherwise. For binaries with their own evhttp. */
int lg_admin_serve(lg_admin *a, struct evhttp_request *req);

/* The bound address "HOST:PORT" ("[v6]:PORT" for IPv6), valid until lg_admin_free; ""
 * when no listener was bound. */
const char *lg_admin_get_address(const lg_admin *a);
/* Whether /readyz would currently answer 200 (calls the readiness callback). */
bool lg_admin_is_ready(const lg_admin *a);

#endif /* LG_ADMIN_H */
