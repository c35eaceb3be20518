/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_metrics: a registry of counters, gauges and histograms with label sets, rendered in the
 * Prometheus text exposition format 0.0.4 for /metrics.
 *
 * Model: a registry (lg_metrics, passed explicitly, never global) holds families; a family
 * is one metric name with a fixed list of label names; a series is one family plus one
 * tuple of label values. Callers resolve a series once (lg_metrics_family_with_labels, or the
 * lg_metrics_register_counter/_gauge/_histogram shortcuts for label-less metrics) and keep
 * the handle;
 * updates through a handle are lock-free atomics with no allocation, so the hot path and the
 * shipper thread can update the same series at any time.
 *
 * Cardinality: a family holds at most LG_METRICS_MAX_SERIES_PER_FAMILY series; a new label
 * tuple past the cap is refused (LG_ERR_TOO_LARGE, counted by lg_metrics_get_refused) so an
 * unbounded label (a user id, a raw path) can never grow memory without bound. Every update
 * function accepts a NULL series as a no-op, so a caller whose series was refused keeps
 * working without branches.
 *
 * Rendering: families in registration order, series in creation order; HELP and TYPE lines
 * for every family; histograms as cumulative _bucket{le="..."} lines ending with le="+Inf",
 * then _sum and _count. Label values are escaped (backslash, double quote, newline), HELP
 * text too (backslash, newline).
 *
 * Threads: registration (lg_metrics_register*, lg_metrics_family_with_labels) and rendering
 * take the registry's mutex and may be called from any thread; updates (counter/gauge/
 * histogram functions) are atomic and may be called from any thread, never block and never
 * allocate. Scrape callbacks (gauges and counters read at scrape time) run on the thread
 * that calls lg_metrics_render, or lg_metrics_get_gauge/_get_counter, under the mutex.
 *
 * Ownership: the registry owns every family and series; handles are borrowed and stay valid
 * until lg_metrics_free. Names, help texts, label names and label values are copied.
 *
 * Errors: LG_ERR_INVALID (bad name, label name, bucket list or label count; wrong type),
 * LG_ERR_STATE (a family of that name already exists), LG_ERR_TOO_LARGE (cardinality cap,
 * too many labels or buckets, label value too long, render output past its cap),
 * LG_ERR_NOMEM.
 */
#ifndef LG_METRICS_H
#define LG_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct lg_buf;

/* Content-Type of the rendered text (exposition format 0.0.4). */
#define LG_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct lg_metrics lg_metrics;
typedef struct lg_metrics_family lg_metrics_family;
typedef struct lg_metrics_series lg_metrics_series;

enum lg_metrics_type {
    LG_METRICS_COUNTER,   /* monotonically increasing uint64; name should end in _total */
    LG_METRICS_GAUGE,     /* int64 that goes up and down, or computed at scrape time */
    LG_METRICS_HISTOGRAM, /* observations (double, base units: seconds, bytes) in buckets */
};

/* Describes a family for lg_metrics_register. Everything is borrowed for the call only. */
struct lg_metrics_desc {
    enum lg_metrics_type type;
    const char *name;               /* [a-zA-Z_:][a-zA-Z0-9_:]*, e.g. "llmgate_requests_total" */
    const char *help;               /* one line of help text (any bytes; escaped on output) */
    const char *const *label_names; /* nlabels names, [a-zA-Z_][a-zA-Z0-9_]*, not "__*";
                                       "le" is refused for histograms */
    size_t nlabels;                 /* 0..LG_METRICS_MAX_LABELS */
    const double *buckets;          /* histograms: strictly increasing finite upper bounds,
                                       without +Inf (added implicitly); NULL = the default
                                       latency buckets lg_metrics_latency_buckets_s */
    size_t nbuckets;                /* 1..LG_METRICS_MAX_BUCKETS, ignored when buckets NULL */
};

/* Default histogram bounds for latencies in seconds: the Prometheus client defaults
 * (5 ms .. 10 s) extended to 120 s, because LLM streams last far longer than typical RPCs. */
extern const double lg_metrics_latency_buckets_s[];
extern const size_t lg_metrics_latency_buckets_count;

/* Computes a gauge's value at scrape time (e.g. a queue depth). Called by lg_metrics_render
 * on the rendering thread while it holds the registry mutex: the callback must be quick, must
 * not block, and may update series (atomics) but must not call lg_metrics_register*,
 * lg_metrics_family_with_labels, lg_metrics_gauge_set_cb or lg_metrics_render. */
typedef int64_t (*lg_metrics_scrape_cb)(void *user_data);

/* Reads a counter kept elsewhere (e.g. a module's own statistics) at scrape time; the same
 * rules as lg_metrics_scrape_cb. The value it returns must never decrease. */
typedef uint64_t (*lg_metrics_counter_scrape_cb)(void *user_data);

/* ---- lifecycle ---- */

/* Creates an empty registry. Returns LG_OK or LG_ERR_NOMEM. |*out| is returned owned. */
int lg_metrics_new(lg_metrics **out);
/* Frees the registry, every family and every series. Accepts NULL. No update may run
 * concurrently (stop the threads that update first). */
void lg_metrics_free(lg_metrics *m);

/* ---- registration (any thread, takes the registry mutex) ---- */

/* Registers a family described by |desc|; |*out| is borrowed from |m|. A family without
 * labels gets its single series at once, so it renders as 0 before the first update.
 * Errors: LG_ERR_INVALID, LG_ERR_STATE (name taken), LG_ERR_TOO_LARGE, LG_ERR_NOMEM. */
int lg_metrics_register(lg_metrics *m, const struct lg_metrics_desc *desc,
                        lg_metrics_family **out);

/* Shortcuts for label-less families: register and return the single series. */
int lg_metrics_register_counter(lg_metrics *m, const char *name, const char *help,
                                lg_metrics_series **out);
int lg_metrics_register_gauge(lg_metrics *m, const char *name, const char *help,
                              lg_metrics_series **out);
/* A label-less counter whose value is |cb|(|user_data|) at each scrape, for statistics a
 * module already counts itself (lg_shipper_get_stats, ...): no double bookkeeping on the
 * hot path. |user_data| is borrowed until lg_metrics_free. |out| may be NULL. */
int lg_metrics_register_counter_cb(lg_metrics *m, const char *name, const char *help,
                                   lg_metrics_counter_scrape_cb cb, void *user_data,
                                   lg_metrics_series **out);
/* A label-less histogram with the default latency buckets (lg_metrics_latency_buckets_s),
 * for durations observed in seconds. */
int lg_metrics_register_histogram(lg_metrics *m, const char *name, const char *help,
                                  lg_metrics_series **out);
/* A label-less gauge whose value is |cb|(|user_data|) at each scrape. |user_data| is
 * borrowed and must stay valid until lg_metrics_free. |out| may be NULL. */
int lg_metrics_register_gauge_cb(lg_metrics *m, const char *name, const char *help,
                                 lg_metrics_scrape_cb cb, void *user_data,
                                 lg_metrics_series **out);

/* Returns in |*out| the series of |f| for |values| (exactly the family's nlabels values, in
 * the order of its label names; NULL when nlabels is 0), creating it on first use. Label
 * values are any bytes up to LG_METRICS_MAX_LABEL_VALUE_BYTES (escaped on output).
 * Resolve once and keep the handle: this takes the registry mutex and compares strings.
 * Errors: LG_ERR_INVALID (|f| NULL, |values| NULL with labels), LG_ERR_TOO_LARGE (value too
 * long, or the family is at LG_METRICS_MAX_SERIES_PER_FAMILY: |*out| is set to NULL, which
 * every update accepts as a no-op), LG_ERR_NOMEM. */
int lg_metrics_family_with_labels(lg_metrics_family *f, const char *const *values,
                                  lg_metrics_series **out);

/* ---- updates (any thread, lock-free, no allocation; NULL |s| is a no-op) ---- */

void lg_metrics_counter_inc(lg_metrics_series *s);
void lg_metrics_counter_add(lg_metrics_series *s, uint64_t n);

void lg_metrics_gauge_set(lg_metrics_series *s, int64_t v);
/* Adds |delta| (negative to decrease). */
void lg_metrics_gauge_add(lg_metrics_series *s, int64_t delta);
/* Binds |s| to a scrape callback (replacing any set value); |cb| NULL unbinds. Not for the
 * hot path: call it once after resolving the series. */
void lg_metrics_gauge_set_cb(lg_metrics_series *s, lg_metrics_scrape_cb cb, void *user_data);

/* Records one observation |v| (base units; NaN is ignored). */
void lg_metrics_histogram_observe(lg_metrics_series *s, double v);

/* ---- rendering ---- */

/* Appends the whole registry in text format 0.0.4 to |out| (lg_buf's max bounds the output).
 * Errors: LG_ERR_TOO_LARGE (|out| reached its max; its contents are then incomplete),
 * LG_ERR_NOMEM. */
int lg_metrics_render(lg_metrics *m, struct lg_buf *out);

/* ---- accessors (for tests and the admin server; no side effects) ---- */

/* Current counter value (calls the scrape callback when bound, under the registry mutex);
 * 0 for NULL or a non-counter. */
uint64_t lg_metrics_get_counter(const lg_metrics_series *s);
/* Current gauge value (calls the scrape callback when bound, under the registry mutex, so
 * not from inside a scrape callback); 0 for NULL or a non-gauge. */
int64_t lg_metrics_get_gauge(const lg_metrics_series *s);
/* Number of observations of a histogram; 0 for NULL or a non-histogram. */
uint64_t lg_metrics_get_histogram_count(const lg_metrics_series *s);
/* Number of label tuples refused by the cardinality cap since the registry was created. */
uint64_t lg_metrics_get_refused(const lg_metrics *m);

#endif /* LG_METRICS_H */
