/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_metrics.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

/* Exponent parsing in metrics_append_double. */
#define METRICS_DECIMAL_BASE 10
/* Go's FormatFloat(v, 'g', -1) switches to exponent form for decimal exponents below -4 or
 * from 6 on; Prometheus clients print floats that way, so llmgate does too. */
#define METRICS_EXP_FORM_BELOW (-4)
#define METRICS_EXP_FORM_FROM 6

_Static_assert(LG_METRICS_MAX_SERIES_PER_FAMILY > 0, "a family must hold one series");
_Static_assert(LG_METRICS_MAX_BUCKETS >= 1, "a histogram needs one finite bucket");

const double lg_metrics_latency_buckets_s[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                               1,     2.5,  5,     10,   30,  60,  120};
const size_t lg_metrics_latency_buckets_count =
    sizeof(lg_metrics_latency_buckets_s) / sizeof(lg_metrics_latency_buckets_s[0]);

struct lg_metrics_series {
    struct lg_metrics_family *family; /* owner, immutable */
    struct lg_metrics_series *next;   /* creation order; written under the registry mutex */
    const char **values;              /* family->nlabels copies (one allocation), or NULL */
    _Atomic uint64_t counter;         /* counters */
    _Atomic int64_t gauge;            /* gauges without a callback */
    lg_metrics_scrape_cb cb;          /* gauges: set and read under the registry mutex */
    lg_metrics_counter_scrape_cb counter_cb; /* counters read at scrape; set at registration */
    void *cb_user_data;               /* passed to cb */
    _Atomic uint64_t sum_bits;        /* histograms: bit pattern of the double sum */
    _Atomic uint64_t buckets[];       /* histograms: nbuckets + 1 (+Inf) NON-cumulative counts */
};

struct lg_metrics_family {
    lg_metrics *registry;            /* owner */
    struct lg_metrics_family *next;  /* registration order */
    enum lg_metrics_type type;
    char *name;                      /* owned */
    char *help;                      /* owned */
    char **label_names;              /* owned array of nlabels owned strings */
    size_t nlabels;
    double *bounds;                  /* owned, nbuckets finite strictly increasing bounds */
    size_t nbuckets;
    size_t nseries;                  /* <= LG_METRICS_MAX_SERIES_PER_FAMILY */
    struct lg_metrics_series *head;  /* creation order */
    struct lg_metrics_series *tail;
};

struct lg_metrics {
    pthread_mutex_t mu;              /* guards the family and series lists, and gauge cbs */
    struct lg_metrics_family *head;
    struct lg_metrics_family *tail;
    _Atomic uint64_t refused;        /* label tuples refused by the cardinality cap */
};

/* ---- names ---- */

static bool metrics_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool metrics_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]* (exposition format, "Metric names"). */
static bool metrics_valid_metric_name(const char *s)
{
    if (s == NULL || *s == 0) {
        return false;
    }
    for (size_t i = 0; s[i] != 0; i++) {
        char c = s[i];
        if (!(metrics_is_alpha(c) || c == ':' || (i > 0 && metrics_is_digit(c)))) {
            return false;
        }
    }
    return true;
}

/* Label names: [a-zA-Z_][a-zA-Z0-9_]*, and names starting with "__" are reserved. */
static bool metrics_valid_label_name(const char *s)
{
    if (s == NULL || *s == 0 || (s[0] == '_' && s[1] == '_')) {
        return false;
    }
    for (size_t i = 0; s[i] != 0; i++) {
        char c = s[i];
        if (!(metrics_is_alpha(c) || (i > 0 && metrics_is_digit(c)))) {
            return false;
        }
    }
    return true;
}

/* ---- lifecycle ---- */

int lg_metrics_new(lg_metrics **out)
{
    lg_metrics *m = lg_calloc(1, sizeof(*m));
    if (m == NULL) {
        return LG_ERR_NOMEM;
    }
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        lg_free(m);
        return LG_ERR_NOMEM;
    }
    atomic_init(&m->refused, 0);
    *out = m;
    return LG_OK;
}

static void metrics_series_free(struct lg_metrics_series *s)
{
    lg_free((void *)s->values);
    lg_free(s);
}

static void metrics_family_free(struct lg_metrics_family *f)
{
    if (f == NULL) {
        return;
    }
    struct lg_metrics_series *s = f->head;
    while (s != NULL) {
        struct lg_metrics_series *next = s->next;
        metrics_series_free(s);
        s = next;
    }
    for (size_t i = 0; f->label_names != NULL && i < f->nlabels; i++) {
        lg_free(f->label_names[i]);
    }
    lg_free(f->label_names);
    lg_free(f->bounds);
    lg_free(f->help);
    lg_free(f->name);
    lg_free(f);
}

void lg_metrics_free(lg_metrics *m)
{
    if (m == NULL) {
        return;
    }
    struct lg_metrics_family *f = m->head;
    while (f != NULL) {
        struct lg_metrics_family *next = f->next;
        metrics_family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->mu);
    lg_free(m);
}

/* ---- registration ---- */

static int metrics_check_desc(const struct lg_metrics_desc *d)
{
    if (d == NULL || !metrics_valid_metric_name(d->name) ||
        (d->nlabels > 0 && d->label_names == NULL)) {
        return LG_ERR_INVALID;
    }
    if (d->type != LG_METRICS_COUNTER && d->type != LG_METRICS_GAUGE &&
        d->type != LG_METRICS_HISTOGRAM) {
        return LG_ERR_INVALID;
    }
    if (d->nlabels > LG_METRICS_MAX_LABELS) {
        return LG_ERR_TOO_LARGE;
    }
    for (size_t i = 0; i < d->nlabels; i++) {
        if (!metrics_valid_label_name(d->label_names[i])) {
            return LG_ERR_INVALID;
        }
        if (d->type == LG_METRICS_HISTOGRAM && strcmp(d->label_names[i], "le") == 0) {
            return LG_ERR_INVALID;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(d->label_names[i], d->label_names[j]) == 0) {
                return LG_ERR_INVALID;
            }
        }
    }
    if (d->type != LG_METRICS_HISTOGRAM || d->buckets == NULL) {
        return LG_OK;
    }
    if (d->nbuckets == 0) {
        return LG_ERR_INVALID;
    }
    if (d->nbuckets > LG_METRICS_MAX_BUCKETS) {
        return LG_ERR_TOO_LARGE;
    }
    for (size_t i = 0; i < d->nbuckets; i++) {
        if (!isfinite(d->buckets[i]) || (i > 0 && !(d->buckets[i] > d->buckets[i - 1]))) {
            return LG_ERR_INVALID;
        }
    }
    return LG_OK;
}

static struct lg_metrics_family *metrics_find_family(lg_metrics *m, const char *name)
{
    for (struct lg_metrics_family *f = m->head; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}

/* Builds the family object from a checked |d|; not yet linked. */
static int metrics_family_build(lg_metrics *m, const struct lg_metrics_desc *d,
                                struct lg_metrics_family **out)
{
    struct lg_metrics_family *f = lg_calloc(1, sizeof(*f));
    if (f == NULL) {
        return LG_ERR_NOMEM;
    }
    f->registry = m;
    f->type = d->type;
    f->name = lg_strdup(d->name);
    f->help = lg_strdup(d->help != NULL ? d->help : "");
    if (f->name == NULL || f->help == NULL) {
        goto out_free_family;
    }
    if (d->nlabels > 0) {
        f->label_names = lg_calloc(d->nlabels, sizeof(char *));
        if (f->label_names == NULL) {
            goto out_free_family;
        }
        f->nlabels = d->nlabels;
        for (size_t i = 0; i < d->nlabels; i++) {
            f->label_names[i] = lg_strdup(d->label_names[i]);
            if (f->label_names[i] == NULL) {
                goto out_free_family;
            }
        }
    }
    if (d->type == LG_METRICS_HISTOGRAM) {
        const double *b = d->buckets != NULL ? d->buckets : lg_metrics_latency_buckets_s;
        size_t n = d->buckets != NULL ? d->nbuckets : lg_metrics_latency_buckets_count;
        f->bounds = lg_malloc(n * sizeof(double));
        if (f->bounds == NULL) {
            goto out_free_family;
        }
        memcpy(f->bounds, b, n * sizeof(double));
        f->nbuckets = n;
    }
    *out = f;
    return LG_OK;

out_free_family:
    metrics_family_free(f);
    return LG_ERR_NOMEM;
}

/* Creates a series of |f| for |values| (already validated) and links it. Mutex held. */
static int metrics_series_create(struct lg_metrics_family *f, const char *const *values,
                                 struct lg_metrics_series **out)
{
    size_t nslots = f->type == LG_METRICS_HISTOGRAM ? f->nbuckets + 1 : 0;
    struct lg_metrics_series *s =
        lg_calloc(1, sizeof(*s) + nslots * sizeof(_Atomic uint64_t));
    if (s == NULL) {
        return LG_ERR_NOMEM;
    }
    s->family = f;
    atomic_init(&s->counter, 0);
    atomic_init(&s->gauge, 0);
    atomic_init(&s->sum_bits, 0); /* all-zero bits are +0.0 */
    for (size_t i = 0; i < nslots; i++) {
        atomic_init(&s->buckets[i], 0);
    }
    if (f->nlabels > 0) {
        /* One block: the pointer array followed by the NUL-terminated copies. */
        size_t bytes = f->nlabels * sizeof(char *);
        for (size_t i = 0; i < f->nlabels; i++) {
            bytes += strlen(values[i]) + 1;
        }
        char *block = lg_malloc(bytes);
        if (block == NULL) {
            lg_free(s);
            return LG_ERR_NOMEM;
        }
        const char **ptrs = (const char **)(void *)block;
        char *p = block + f->nlabels * sizeof(char *);
        for (size_t i = 0; i < f->nlabels; i++) {
            size_t n = strlen(values[i]) + 1;
            memcpy(p, values[i], n);
            ptrs[i] = p;
            p += n;
        }
        s->values = ptrs;
    }
    if (f->tail != NULL) {
        f->tail->next = s;
    } else {
        f->head = s;
    }
    f->tail = s;
    f->nseries++;
    *out = s;
    return LG_OK;
}

int lg_metrics_register(lg_metrics *m, const struct lg_metrics_desc *desc,
                        lg_metrics_family **out)
{
    if (m == NULL || out == NULL) {
        return LG_ERR_INVALID;
    }
    int rc = metrics_check_desc(desc);
    if (rc != LG_OK) {
        return rc;
    }
    struct lg_metrics_family *f;
    rc = metrics_family_build(m, desc, &f);
    if (rc != LG_OK) {
        return rc;
    }
    pthread_mutex_lock(&m->mu);
    if (metrics_find_family(m, desc->name) != NULL) {
        rc = LG_ERR_STATE;
        goto out_unlock;
    }
    if (f->nlabels == 0) {
        struct lg_metrics_series *only;
        rc = metrics_series_create(f, NULL, &only);
        if (rc != LG_OK) {
            goto out_unlock;
        }
    }
    if (m->tail != NULL) {
        m->tail->next = f;
    } else {
        m->head = f;
    }
    m->tail = f;
    *out = f;
    pthread_mutex_unlock(&m->mu);
    return LG_OK;

out_unlock:
    pthread_mutex_unlock(&m->mu);
    metrics_family_free(f);
    return rc;
}

static int metrics_register_simple(lg_metrics *m, enum lg_metrics_type type, const char *name,
                                   const char *help, lg_metrics_series **out)
{
    struct lg_metrics_desc d = {.type = type, .name = name, .help = help};
    lg_metrics_family *f;
    int rc = lg_metrics_register(m, &d, &f);
    if (rc != LG_OK) {
        return rc;
    }
    if (out != NULL) {
        *out = f->head; /* created by lg_metrics_register; never removed */
    }
    return LG_OK;
}

int lg_metrics_register_counter(lg_metrics *m, const char *name, const char *help,
                                lg_metrics_series **out)
{
    return metrics_register_simple(m, LG_METRICS_COUNTER, name, help, out);
}

int lg_metrics_register_gauge(lg_metrics *m, const char *name, const char *help,
                              lg_metrics_series **out)
{
    return metrics_register_simple(m, LG_METRICS_GAUGE, name, help, out);
}

int lg_metrics_register_histogram(lg_metrics *m, const char *name, const char *help,
                                  lg_metrics_series **out)
{
    return metrics_register_simple(m, LG_METRICS_HISTOGRAM, name, help, out);
}

int lg_metrics_register_gauge_cb(lg_metrics *m, const char *name, const char *help,
                                 lg_metrics_scrape_cb cb, void *user_data,
                                 lg_metrics_series **out)
{
    if (cb == NULL) {
        return LG_ERR_INVALID;
    }
    lg_metrics_series *s;
    int rc = metrics_register_simple(m, LG_METRICS_GAUGE, name, help, &s);
    if (rc != LG_OK) {
        return rc;
    }
    lg_metrics_gauge_set_cb(s, cb, user_data);
    if (out != NULL) {
        *out = s;
    }
    return LG_OK;
}

int lg_metrics_register_counter_cb(lg_metrics *m, const char *name, const char *help,
                                   lg_metrics_counter_scrape_cb cb, void *user_data,
                                   lg_metrics_series **out)
{
    if (cb == NULL) {
        return LG_ERR_INVALID;
    }
    lg_metrics_series *s;
    int rc = metrics_register_simple(m, LG_METRICS_COUNTER, name, help, &s);
    if (rc != LG_OK) {
        return rc;
    }
    pthread_mutex_lock(&m->mu);
    s->counter_cb = cb;
    s->cb_user_data = user_data;
    pthread_mutex_unlock(&m->mu);
    if (out != NULL) {
        *out = s;
    }
    return LG_OK;
}

/* Linear search: a family holds at most LG_METRICS_MAX_SERIES_PER_FAMILY series and callers
 * resolve a tuple once and keep the handle, so a hash table would buy nothing measurable. */
static struct lg_metrics_series *metrics_find_series(struct lg_metrics_family *f,
                                                     const char *const *values)
{
    for (struct lg_metrics_series *s = f->head; s != NULL; s = s->next) {
        size_t i = 0;
        while (i < f->nlabels && strcmp(s->values[i], values[i]) == 0) {
            i++;
        }
        if (i == f->nlabels) {
            return s;
        }
    }
    return NULL;
}

int lg_metrics_family_with_labels(lg_metrics_family *f, const char *const *values,
                                  lg_metrics_series **out)
{
    if (out == NULL) {
        return LG_ERR_INVALID;
    }
    *out = NULL;
    if (f == NULL || (f->nlabels > 0 && values == NULL)) {
        return LG_ERR_INVALID;
    }
    for (size_t i = 0; i < f->nlabels; i++) {
        if (values[i] == NULL) {
            return LG_ERR_INVALID;
        }
        if (strlen(values[i]) > LG_METRICS_MAX_LABEL_VALUE_BYTES) {
            return LG_ERR_TOO_LARGE;
        }
    }
    lg_metrics *m = f->registry;
    int rc = LG_OK;
    pthread_mutex_lock(&m->mu);
    struct lg_metrics_series *s = metrics_find_series(f, values);
    if (s == NULL) {
        if (f->nseries >= LG_METRICS_MAX_SERIES_PER_FAMILY) {
            atomic_fetch_add_explicit(&m->refused, 1, memory_order_relaxed);
            rc = LG_ERR_TOO_LARGE;
        } else {
            rc = metrics_series_create(f, values, &s);
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (rc == LG_OK) {
        *out = s;
    }
    return rc;
}

/* ---- updates ---- */

static bool metrics_is(const lg_metrics_series *s, enum lg_metrics_type t)
{
    return s != NULL && s->family->type == t;
}

void lg_metrics_counter_inc(lg_metrics_series *s)
{
    lg_metrics_counter_add(s, 1);
}

void lg_metrics_counter_add(lg_metrics_series *s, uint64_t n)
{
    if (metrics_is(s, LG_METRICS_COUNTER)) {
        atomic_fetch_add_explicit(&s->counter, n, memory_order_relaxed);
    }
}

void lg_metrics_gauge_set(lg_metrics_series *s, int64_t v)
{
    if (metrics_is(s, LG_METRICS_GAUGE)) {
        atomic_store_explicit(&s->gauge, v, memory_order_relaxed);
    }
}

void lg_metrics_gauge_add(lg_metrics_series *s, int64_t delta)
{
    if (metrics_is(s, LG_METRICS_GAUGE)) {
        atomic_fetch_add_explicit(&s->gauge, delta, memory_order_relaxed);
    }
}

void lg_metrics_gauge_set_cb(lg_metrics_series *s, lg_metrics_scrape_cb cb, void *user_data)
{
    if (!metrics_is(s, LG_METRICS_GAUGE)) {
        return;
    }
    lg_metrics *m = s->family->registry;
    pthread_mutex_lock(&m->mu);
    s->cb = cb;
    s->cb_user_data = user_data;
    pthread_mutex_unlock(&m->mu);
}

static double metrics_bits_to_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static uint64_t metrics_double_to_bits(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    return bits;
}

void lg_metrics_histogram_observe(lg_metrics_series *s, double v)
{
    if (!metrics_is(s, LG_METRICS_HISTOGRAM) || isnan(v)) {
        return;
    }
    const struct lg_metrics_family *f = s->family;
    /* Bucket i counts v <= bounds[i] (and > bounds[i-1]); slot nbuckets is +Inf. Linear:
     * at most LG_METRICS_MAX_BUCKETS comparisons, no branches mispredicted for long. */
    size_t i = 0;
    while (i < f->nbuckets && v > f->bounds[i]) {
        i++;
    }
    atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
    uint64_t next;
    do {
        next = metrics_double_to_bits(metrics_bits_to_double(old) + v);
    } while (!atomic_compare_exchange_weak_explicit(&s->sum_bits, &old, next,
                                                    memory_order_relaxed, memory_order_relaxed));
}

/* ---- accessors ---- */

/* A counter's value; the caller holds the registry mutex (counter_cb is guarded by it). */
static uint64_t metrics_counter_value(const lg_metrics_series *s)
{
    if (s->counter_cb != NULL) {
        return s->counter_cb(s->cb_user_data);
    }
    return atomic_load_explicit(&s->counter, memory_order_relaxed);
}

uint64_t lg_metrics_get_counter(const lg_metrics_series *s)
{
    if (!metrics_is(s, LG_METRICS_COUNTER)) {
        return 0;
    }
    lg_metrics *m = s->family->registry;
    pthread_mutex_lock(&m->mu);
    uint64_t v = metrics_counter_value(s);
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* A gauge's value; the caller holds the registry mutex (cb is guarded by it). */
static int64_t metrics_gauge_value(const lg_metrics_series *s)
{
    if (s->cb != NULL) {
        return s->cb(s->cb_user_data);
    }
    return atomic_load_explicit(&s->gauge, memory_order_relaxed);
}

int64_t lg_metrics_get_gauge(const lg_metrics_series *s)
{
    if (!metrics_is(s, LG_METRICS_GAUGE)) {
        return 0;
    }
    lg_metrics *m = s->family->registry;
    pthread_mutex_lock(&m->mu);
    int64_t v = metrics_gauge_value(s);
    pthread_mutex_unlock(&m->mu);
    return v;
}

uint64_t lg_metrics_get_histogram_count(const lg_metrics_series *s)
{
    if (!metrics_is(s, LG_METRICS_HISTOGRAM)) {
        return 0;
    }
    uint64_t n = 0;
    for (size_t i = 0; i <= s->family->nbuckets; i++) {
        n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
    }
    return n;
}

uint64_t lg_metrics_get_refused(const lg_metrics *m)
{
    if (m == NULL) {
        return 0;
    }
    return atomic_load_explicit(&m->refused, memory_order_relaxed);
}

/* ---- rendering ---- */

/* Appends |v| as Prometheus clients print a float: "+Inf", "-Inf", "NaN", else the shortest
 * decimal that reads back as exactly |v|, in Go's FormatFloat(v, 'g', -1, 64) layout
 * (exponent form only below 1e-4 or from 1e6 on), so bounds read "0.005" and "120" rather
 * than "0.0050000000000000001" or "1.2e+02". */
static int metrics_append_double(struct lg_buf *out, double v)
{
    if (isnan(v)) {
        return lg_buf_append_str(out, "NaN");
    }
    if (isinf(v)) {
        return lg_buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
    }
    char tmp[40];
    /* DBL_DECIMAL_DIG (17) significant digits always round-trip, so the loop ends. */
    int digits = 1;
    for (; digits <= DBL_DECIMAL_DIG; digits++) {
        int n = snprintf(tmp, sizeof(tmp), "%.*e", digits - 1, v);
        if (n <= 0 || (size_t)n >= sizeof(tmp)) {
            return LG_ERR_INTERNAL;
        }
        if (strtod(tmp, NULL) == v) {
            break;
        }
    }
    /* "%e" always prints "e", a sign and at least two exponent digits. */
    const char *e = strchr(tmp, 'e');
    long exp = 0;
    for (const char *p = e != NULL ? e + 2 : ""; *p >= '0' && *p <= '9'; p++) {
        exp = exp * METRICS_DECIMAL_BASE + (*p - '0');
    }
    if (e != NULL && e[1] == '-') {
        exp = -exp;
    }
    if (v == 0 || exp < METRICS_EXP_FORM_BELOW || exp >= METRICS_EXP_FORM_FROM) {
        return lg_buf_append_str(out, v == 0 ? "0" : tmp);
    }
    long decimals = (long)digits - 1 - exp;
    return lg_buf_appendf(out, "%.*f", (int)(decimals > 0 ? decimals : 0), v);
}

/* Appends |s| escaped for a label value (\\, \", \n) or, with |help| set, for HELP text
 * (\\, \n only), as the text format 0.0.4 specifies. */
static int metrics_append_escaped(struct lg_buf *out, const char *s, bool help)
{
    int rc = LG_OK;
    for (size_t i = 0; s[i] != 0 && rc == LG_OK; i++) {
        char c = s[i];
        if (c == '\\') {
            rc = lg_buf_append(out, "\\\\", 2);
        } else if (c == '\n') {
            rc = lg_buf_append(out, "\\n", 2);
        } else if (c == '"' && !help) {
            rc = lg_buf_append(out, "\\\"", 2);
        } else {
            rc = lg_buf_append_byte(out, (uint8_t)c);
        }
    }
    return rc;
}

/* Appends `name<suffix>{l1="v1",...[,le="bound"]}` (no braces when there are no labels).
 * |le| is NULL except for histogram buckets. */
static int metrics_append_series_name(struct lg_buf *out, const struct lg_metrics_series *s,
                                      const char *suffix, const char *le)
{
    const struct lg_metrics_family *f = s->family;
    int rc = lg_buf_append_str(out, f->name);
    if (rc == LG_OK) {
        rc = lg_buf_append_str(out, suffix);
    }
    if (rc != LG_OK || (f->nlabels == 0 && le == NULL)) {
        return rc;
    }
    rc = lg_buf_append_byte(out, '{');
    for (size_t i = 0; i < f->nlabels && rc == LG_OK; i++) {
        rc = lg_buf_appendf(out, "%s%s=\"", i > 0 ? "," : "", f->label_names[i]);
        if (rc == LG_OK) {
            rc = metrics_append_escaped(out, s->values[i], false);
        }
        if (rc == LG_OK) {
            rc = lg_buf_append_byte(out, '"');
        }
    }
    if (rc == LG_OK && le != NULL) {
        rc = lg_buf_appendf(out, "%sle=\"%s\"", f->nlabels > 0 ? "," : "", le);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(out, '}');
    }
    return rc;
}

static int metrics_render_histogram(struct lg_buf *out, const struct lg_metrics_series *s)
{
    const struct lg_metrics_family *f = s->family;
    uint64_t cumulative = 0;
    int rc = LG_OK;
    for (size_t i = 0; i <= f->nbuckets && rc == LG_OK; i++) {
        cumulative += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
        struct lg_buf le;
        lg_buf_init(&le, 32);
        rc = i < f->nbuckets ? metrics_append_double(&le, f->bounds[i])
                             : lg_buf_append_str(&le, "+Inf");
        if (rc == LG_OK) {
            rc = metrics_append_series_name(out, s, "_bucket", (const char *)le.data);
        }
        lg_buf_deinit(&le);
        if (rc == LG_OK) {
            rc = lg_buf_appendf(out, " %" PRIu64 "\n", cumulative);
        }
    }
    /* _count is the +Inf bucket, so the two always agree within one scrape even while other
     * threads observe; _sum may lead or lag by the observations in flight. */
    if (rc == LG_OK) {
        rc = metrics_append_series_name(out, s, "_sum", NULL);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(out, ' ');
    }
    if (rc == LG_OK) {
        double sum =
            metrics_bits_to_double(atomic_load_explicit(&s->sum_bits, memory_order_relaxed));
        rc = metrics_append_double(out, sum);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_byte(out, '\n');
    }
    if (rc == LG_OK) {
        rc = metrics_append_series_name(out, s, "_count", NULL);
    }
    if (rc == LG_OK) {
        rc = lg_buf_appendf(out, " %" PRIu64 "\n", cumulative);
    }
    return rc;
}

static int metrics_render_series(struct lg_buf *out, const struct lg_metrics_series *s)
{
    int rc;
    switch (s->family->type) {
    case LG_METRICS_COUNTER:
        rc = metrics_append_series_name(out, s, "", NULL);
        if (rc == LG_OK) {
            rc = lg_buf_appendf(out, " %" PRIu64 "\n", metrics_counter_value(s));
        }
        return rc;
    case LG_METRICS_GAUGE:
        rc = metrics_append_series_name(out, s, "", NULL);
        if (rc == LG_OK) {
            rc = lg_buf_appendf(out, " %" PRId64 "\n", metrics_gauge_value(s));
        }
        return rc;
    case LG_METRICS_HISTOGRAM:
        return metrics_render_histogram(out, s);
    }
    return LG_ERR_INTERNAL;
}

static const char *metrics_type_name(enum lg_metrics_type t)
{
    switch (t) {
    case LG_METRICS_COUNTER:
        return "counter";
    case LG_METRICS_GAUGE:
        return "gauge";
    case LG_METRICS_HISTOGRAM:
        return "histogram";
    }
    return "untyped";
}

static int metrics_render_family(struct lg_buf *out, const struct lg_metrics_family *f)
{
    int rc = lg_buf_appendf(out, "# HELP %s ", f->name);
    if (rc == LG_OK) {
        rc = metrics_append_escaped(out, f->help, true);
    }
    if (rc == LG_OK) {
        rc = lg_buf_appendf(out, "\n# TYPE %s %s\n", f->name, metrics_type_name(f->type));
    }
    for (const struct lg_metrics_series *s = f->head; s != NULL && rc == LG_OK; s = s->next) {
        rc = metrics_render_series(out, s);
    }
    return rc;
}

int lg_metrics_render(lg_metrics *m, struct lg_buf *out)
{
    if (m == NULL || out == NULL) {
        return LG_ERR_INVALID;
    }
    int rc = LG_OK;
    pthread_mutex_lock(&m->mu);
    for (const struct lg_metrics_family *f = m->head; f != NULL && rc == LG_OK; f = f->next) {
        rc = metrics_render_family(out, f);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}
