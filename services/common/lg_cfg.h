/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_cfg: 12-factor configuration for every binary: flags, each also read from the
 * environment as LLMGATE_<FLAG> (upper case, '-' -> '_'), then a default. Precedence:
 * flag > environment > default. `--help` output is generated from the same table, so the
 * documentation cannot drift from the parser.
 *
 * Ownership: string results point into argv, the environment or the table's default
 * (borrowed, valid for the life of the process); nothing is allocated.
 * Thread: startup only (reads the environment).
 * Errors: LG_ERR_INVALID with a message that names the flag and its variable.
 */
#ifndef LG_CFG_H
#define LG_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lg_buf;

enum lg_cfg_type {
    LG_CFG_STRING, /* dst: const char ** */
    LG_CFG_INT,    /* dst: int64_t *, checked against [min, max] */
    LG_CFG_BOOL,   /* dst: bool *; "--flag" alone is true; values 1/0/true/false/yes/no */
};

/* One option. A table of these describes a binary's whole configuration. */
struct lg_cfg_opt {
    const char *name;      /* flag name without dashes, e.g. "admin-listen" */
    enum lg_cfg_type type; /* how to parse the value */
    void *dst;             /* where to store it (see lg_cfg_type) */
    const char *def;       /* default as text; NULL = unset (strings stay NULL) */
    int64_t min, max;      /* inclusive bounds for LG_CFG_INT */
    const char *help;      /* one line for --help */
};

/* Parses |argv| (argv[0] is the program) and the environment into the table's dst fields.
 * Arguments that are not flags are positional: their indices are stored in |pos_out| (up to
 * |pos_max|) and their count in |*npos_out| (both may be NULL when none are allowed).
 * Returns LG_OK, 1 when --help/-h was given (caller prints lg_cfg_usage and exits 0), or
 * LG_ERR_INVALID with a one-line reason in |err| (|errlen| bytes). */
int lg_cfg_parse(const struct lg_cfg_opt *opts, size_t nopts, int argc, char **argv,
                 int *pos_out, size_t pos_max, size_t *npos_out, char *err, size_t errlen);

/* Appends a --help text for the table to |out|: usage line, one line per flag with its
 * variable and default. */
int lg_cfg_usage(const struct lg_cfg_opt *opts, size_t nopts, const char *prog,
                 const char *synopsis, struct lg_buf *out);

/* Splits "HOST:PORT" ("[v6]:PORT" too) into |host| (|hostlen| bytes, NUL-terminated) and
 * |*port|. Returns LG_OK or LG_ERR_INVALID. Port 0 is valid (pick a free port). */
int lg_cfg_split_hostport(const char *addr, char *host, size_t hostlen, uint16_t *port);

#endif /* LG_CFG_H */
