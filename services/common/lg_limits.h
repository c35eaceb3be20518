/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_limits: every limit and tunable default of llmgate, in one place, named with its unit.
 * Each says why this value and what happens when it is hit. Configuration may lower a
 * compiled hard maximum, never raise it (checked at load time by the owner of the limit).
 * Each area keeps its own section; add new limits to your area's section.
 */
#ifndef LG_LIMITS_H
#define LG_LIMITS_H

/* ---- common: logging ----------------------------------------------------------------- */

/* One log line's formatted message. Longer messages are truncated, never split: a log line
 * is one event (STYLE.md "Logging"). */
#define LG_LOG_MAX_LINE_BYTES 2048

/* ---- common: configuration ------------------------------------------------------------ */

/* Longest flag or environment value accepted; longer values are refused with a message
 * naming the key, so a pasted file cannot become a flag by accident. */
#define LG_CFG_MAX_VALUE_BYTES 4096

/* ---- common: metrics and admin -------------------------------------------------------- */

/* Series per metric family. A label fed from unbounded input (a user id, a raw path) would
 * otherwise grow memory and scrape size forever; past the cap new label tuples are refused
 * (LG_ERR_TOO_LARGE, counted in lg_metrics_get_refused) and their updates are dropped. */
#define LG_METRICS_MAX_SERIES_PER_FAMILY 1000
/* Label names per family: the metrics llmgate exposes use at most three or four. */
#define LG_METRICS_MAX_LABELS 8
/* Histogram buckets per family (without +Inf): each bucket costs one line per series. */
#define LG_METRICS_MAX_BUCKETS 32
/* One label value: model names and status codes fit; a longer value is refused. */
#define LG_METRICS_MAX_LABEL_VALUE_BYTES 256
/* Rendered /metrics text. 1000 series x ~40 families of short lines fits; past it the
 * scrape fails with 503 rather than serving a truncated body Prometheus would misread. */
#define LG_METRICS_MAX_RENDER_BYTES (8u * 1024u * 1024u)

/* Admin request headers: probes and Prometheus send a few hundred bytes. */
#define LG_ADMIN_MAX_HEADER_BYTES 8192
/* Admin request bodies: every admin path is a GET; a body is never needed. */
#define LG_ADMIN_MAX_BODY_BYTES 1024
/* Idle/read/write timeout of an admin connection: a stuck scraper or probe connection is
 * closed after this instead of holding a socket forever. Kubelet probes time out at 1 s by
 * default and Prometheus at 10 s, so 30 s never cuts off a healthy client. */
#define LG_ADMIN_TIMEOUT_MS 30000

/* ---- common: gRPC runtime ------------------------------------------------------------- */

/* ---- chat service --------------------------------------------------------------------- */

/* ---- SSE adapter ---------------------------------------------------------------------- */

/* ---- analytics shipper ---------------------------------------------------------------- */

#endif /* LG_LIMITS_H */
