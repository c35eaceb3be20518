/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lg_buf.h"
#include "lg_err.h"
#include "lg_limits.h"

/* "admin-listen" -> "LLMGATE_ADMIN_LISTEN". Returns LG_OK or LG_ERR_TOO_LARGE. */
static int cfg_env_name(const char *flag, char *out, size_t outlen)
{
    static const char prefix[] = "LLMGATE_";
    size_t n = strlen(flag);
    if (sizeof(prefix) + n > outlen) {
        return LG_ERR_TOO_LARGE;
    }
    memcpy(out, prefix, sizeof(prefix) - 1);
    for (size_t i = 0; i < n; i++) {
        char c = flag[i];
        if (c == '-') {
            c = '_';
        } else if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        out[sizeof(prefix) - 1 + i] = c;
    }
    out[sizeof(prefix) - 1 + n] = 0;
    return LG_OK;
}

static int cfg_parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = true;
            return LG_OK;
        }
        if (strcmp(v, no[i]) == 0) {
            *out = false;
            return LG_OK;
        }
    }
    return LG_ERR_INVALID;
}

/* Stores |v| into |o|; |src| names where it came from for the error message. */
static int cfg_store(const struct lg_cfg_opt *o, const char *v, const char *src, char *err,
                     size_t errlen)
{
    char env[128];
    cfg_env_name(o->name, env, sizeof(env));
    if (strlen(v) > LG_CFG_MAX_VALUE_BYTES) {
        snprintf(err, errlen, "--%s (%s) from %s: value longer than %d bytes", o->name, env, src,
                 LG_CFG_MAX_VALUE_BYTES);
        return LG_ERR_INVALID;
    }
    switch (o->type) {
    case LG_CFG_STRING:
        *(const char **)o->dst = v;
        return LG_OK;
    case LG_CFG_BOOL:
        if (cfg_parse_bool(v, o->dst) != LG_OK) {
            snprintf(err, errlen, "--%s (%s) from %s: expected true or false", o->name, env, src);
            return LG_ERR_INVALID;
        }
        return LG_OK;
    case LG_CFG_INT: {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        int saved = errno;
        if (saved != 0 || end == v || *end != 0 || x < o->min || x > o->max) {
            snprintf(err, errlen, "--%s (%s) from %s: expected an integer in [%lld, %lld]",
                     o->name, env, src, (long long)o->min, (long long)o->max);
            return LG_ERR_INVALID;
        }
        *(int64_t *)o->dst = (int64_t)x;
        return LG_OK;
    }
    }
    return LG_ERR_INVALID;
}

static const struct lg_cfg_opt *cfg_find(const struct lg_cfg_opt *opts, size_t nopts,
                                         const char *name, size_t len)
{
    for (size_t i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0) {
            return &opts[i];
        }
    }
    return NULL;
}

/* Defaults first, then the environment: flags parsed afterwards override both. */
static int cfg_apply_defaults_and_env(const struct lg_cfg_opt *opts, size_t nopts, char *err,
                                      size_t errlen)
{
    for (size_t i = 0; i < nopts; i++) {
        char env[128];
        if (opts[i].def && cfg_store(&opts[i], opts[i].def, "default", err, errlen) != LG_OK) {
            return LG_ERR_INVALID;
        }
        if (cfg_env_name(opts[i].name, env, sizeof(env)) != LG_OK) {
            snprintf(err, errlen, "--%s: flag name too long", opts[i].name);
            return LG_ERR_INVALID;
        }
        const char *v = getenv(env);
        if (v && cfg_store(&opts[i], v, "environment", err, errlen) != LG_OK) {
            return LG_ERR_INVALID;
        }
    }
    return LG_OK;
}

int lg_cfg_parse(const struct lg_cfg_opt *opts, size_t nopts, int argc, char **argv,
                 int *pos_out, size_t pos_max, size_t *npos_out, char *err, size_t errlen)
{
    size_t npos = 0;
    if (cfg_apply_defaults_and_env(opts, nopts, err, errlen) != LG_OK) {
        return LG_ERR_INVALID;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (!pos_out || npos >= pos_max) {
                snprintf(err, errlen, "unexpected argument '%.64s'", a);
                return LG_ERR_INVALID;
            }
            pos_out[npos++] = i;
            continue;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct lg_cfg_opt *o = cfg_find(opts, nopts, name, nlen);
        if (!o) {
            snprintf(err, errlen, "unknown flag '--%.*s' (see --help)", (int)(nlen > 64 ? 64 : nlen),
                     name);
            return LG_ERR_INVALID;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && o->type == LG_CFG_BOOL) {
            v = "true";
        } else if (!v) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", o->name);
                return LG_ERR_INVALID;
            }
            v = argv[++i];
        }
        if (cfg_store(o, v, "command line", err, errlen) != LG_OK) {
            return LG_ERR_INVALID;
        }
    }
    if (npos_out) {
        *npos_out = npos;
    }
    return LG_OK;
}

int lg_cfg_usage(const struct lg_cfg_opt *opts, size_t nopts, const char *prog,
                 const char *synopsis, struct lg_buf *out)
{
    int rv = lg_buf_appendf(out, "usage: %s %s\n\nFlags (each also read from its environment "
                                 "variable; a flag wins over the variable):\n",
                            prog, synopsis ? synopsis : "[flags]");
    for (size_t i = 0; i < nopts && rv == LG_OK; i++) {
        char env[128];
        cfg_env_name(opts[i].name, env, sizeof(env));
        const char *arg = opts[i].type == LG_CFG_INT    ? " N"
                          : opts[i].type == LG_CFG_BOOL ? "[=BOOL]"
                                                        : " VALUE";
        rv = lg_buf_appendf(out, "  --%s%s\n      %s\n      env %s", opts[i].name, arg,
                            opts[i].help, env);
        if (rv == LG_OK && opts[i].def) {
            rv = lg_buf_appendf(out, ", default %s", opts[i].def);
        }
        if (rv == LG_OK) {
            rv = lg_buf_append_str(out, "\n");
        }
    }
    return rv;
}

int lg_cfg_split_hostport(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = strrchr(addr, ':');
    const char *h = addr;
    size_t hl;
    if (!colon || colon[1] == 0) {
        return LG_ERR_INVALID;
    }
    hl = (size_t)(colon - addr);
    if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
        h = addr + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen) {
        return LG_ERR_INVALID;
    }
    char *end = NULL;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != 0 || p < 0 || p > 65535) {
        return LG_ERR_INVALID;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (uint16_t)p;
    return LG_OK;
}
