/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_err.h"

#include <stddef.h>

struct lg_err_row {
    int code;
    const char *name;
    const char *msg;
    int grpc;
    int http;
};

static const struct lg_err_row lg_err_rows[] = {
#define LG_ERR_ROW(name, value, msg, grpc, http) {value, #name, msg, LG_GRPC_##grpc, http},
    LG_ERR_MAP(LG_ERR_ROW)
#undef LG_ERR_ROW
};

static const struct lg_err_row *err_find(int code)
{
    for (size_t i = 0; i < sizeof(lg_err_rows) / sizeof(lg_err_rows[0]); i++) {
        if (lg_err_rows[i].code == code) {
            return &lg_err_rows[i];
        }
    }
    return NULL;
}

const char *lg_err_str(int code)
{
    const struct lg_err_row *r = err_find(code);
    return r ? r->msg : "unknown error";
}

const char *lg_err_name(int code)
{
    const struct lg_err_row *r = err_find(code);
    return r ? r->name : "UNKNOWN";
}

int lg_err_grpc_status(int code)
{
    const struct lg_err_row *r = err_find(code);
    return r ? r->grpc : LG_GRPC_UNKNOWN;
}

int lg_err_http_status(int code)
{
    const struct lg_err_row *r = err_find(code);
    return r ? r->http : 500;
}

const char *lg_grpc_status_name(int status)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",          "UNKNOWN",        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND",  "ALREADY_EXISTS", "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",    "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (status < 0 || (size_t)status >= sizeof(names) / sizeof(names[0])) {
        return "UNKNOWN";
    }
    return names[status];
}
