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

/* ---- common: gRPC runtime ------------------------------------------------------------- */

/* ---- chat service --------------------------------------------------------------------- */

/* ---- SSE adapter ---------------------------------------------------------------------- */

/* ---- analytics shipper ---------------------------------------------------------------- */

#endif /* LG_LIMITS_H */
