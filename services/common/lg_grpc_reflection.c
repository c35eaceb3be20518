/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_grpc_reflection.h"

#include <stdio.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "lg_err.h"
#include "lg_limits.h"
#define LG_LOG_MODULE "grpc_reflection"
#include "lg_log.h"
#include "lg_mem.h"

/* FileDescriptorSet.file is field 1, length-delimited (descriptor.proto). */
#define REFL_FDS_FILE_TAG ((1u << 3) | 2u)
/* A varint is at most 10 bytes (protobuf encoding spec). */
#define REFL_VARINT_MAX_BYTES 10
/* The two longest generated enum names, shortened. */
#define REFL_REQ_ALL_EXTENSION_NUMBERS                                                             \
    GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE
#define REFL_RESP_ALL_EXTENSION_NUMBERS                                                            \
    GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE
/* Longest error message we send. */
#define REFL_ERROR_MSG_BYTES 512

struct refl_file {
    const char *name;        /* points into the unpacked set */
    ProtobufCBinaryData raw; /* the exact FileDescriptorProto bytes inside |fds| (borrowed) */
    const Google__Protobuf__FileDescriptorProto *fd;
};

struct refl_symbol {
    char *name; /* lg_malloc'd fully-qualified name */
    size_t file;
    bool is_message;
};

struct lg_grpc_reflection {
    ProtobufCAllocator alloc;                 /* lg_malloc-backed, for the set below */
    Google__Protobuf__FileDescriptorSet *set; /* unpacked with |alloc| */
    struct refl_file files[LG_GRPC_REFLECTION_MAX_FILES];
    size_t nfiles;
    struct refl_symbol *symbols; /* lg_malloc'd array of LG_GRPC_REFLECTION_MAX_SYMBOLS */
    size_t nsymbols;
    size_t nservices;
};

static void *refl_pb_alloc(void *ud, size_t size)
{
    (void)ud;
    return lg_malloc(size);
}

static void refl_pb_free(void *ud, void *p)
{
    (void)ud;
    lg_free(p);
}

/* Reads a varint at |*p| (not past |end|). Returns LG_OK or LG_ERR_MALFORMED. */
static int refl_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < REFL_VARINT_MAX_BYTES && *p < end; i++) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7fu) << (7u * i);
        if (!(b & 0x80u)) {
            *out = v;
            return LG_OK;
        }
    }
    return LG_ERR_MALFORMED;
}

/* Finds the raw bytes of each FileDescriptorSet.file entry, in order (so they match the
 * unpacked set's files one to one). */
static int refl_slice_files(lg_grpc_reflection *r, const uint8_t *fds, size_t len)
{
    const uint8_t *p = fds, *end = fds + len;
    size_t i = 0;
    while (p < end) {
        uint64_t tag, n;
        if (refl_varint(&p, end, &tag) != LG_OK || tag != REFL_FDS_FILE_TAG ||
            refl_varint(&p, end, &n) != LG_OK || n > (uint64_t)(end - p)) {
            return LG_ERR_MALFORMED;
        }
        if (i >= r->nfiles) {
            return LG_ERR_MALFORMED;
        }
        r->files[i].raw.data = (uint8_t *)(uintptr_t)p;
        r->files[i].raw.len = (size_t)n;
        p += n;
        i++;
    }
    return i == r->nfiles ? LG_OK : LG_ERR_MALFORMED;
}

static int refl_add_symbol(lg_grpc_reflection *r, const char *prefix, const char *name, size_t file,
                           bool is_message, char **full_out)
{
    if (r->nsymbols >= LG_GRPC_REFLECTION_MAX_SYMBOLS) {
        return LG_ERR_TOO_LARGE;
    }
    size_t plen = strlen(prefix), nlen = strlen(name);
    char *full = lg_malloc(plen + 1 + nlen + 1);
    if (!full) {
        return LG_ERR_NOMEM;
    }
    if (plen) {
        memcpy(full, prefix, plen);
        full[plen] = '.';
        memcpy(full + plen + 1, name, nlen + 1);
    } else {
        memcpy(full, name, nlen + 1);
    }
    r->symbols[r->nsymbols++] = (struct refl_symbol){full, file, is_message};
    if (full_out) {
        *full_out = full;
    }
    return LG_OK;
}

static int refl_index_message(lg_grpc_reflection *r, const char *prefix,
                              const Google__Protobuf__DescriptorProto *m, size_t file)
{
    char *full;
    int rc = refl_add_symbol(r, prefix, m->name, file, true, &full);
    for (size_t i = 0; rc == LG_OK && i < m->n_enum_type; i++) {
        rc = refl_add_symbol(r, full, m->enum_type[i]->name, file, false, NULL);
    }
    for (size_t i = 0; rc == LG_OK && i < m->n_nested_type; i++) {
        rc = refl_index_message(r, full, m->nested_type[i], file);
    }
    return rc;
}

static int refl_index_file(lg_grpc_reflection *r, size_t f)
{
    const Google__Protobuf__FileDescriptorProto *fd = r->files[f].fd;
    const char *pkg = fd->package ? fd->package : "";
    int rc = LG_OK;
    for (size_t i = 0; rc == LG_OK && i < fd->n_message_type; i++) {
        rc = refl_index_message(r, pkg, fd->message_type[i], f);
    }
    for (size_t i = 0; rc == LG_OK && i < fd->n_enum_type; i++) {
        rc = refl_add_symbol(r, pkg, fd->enum_type[i]->name, f, false, NULL);
    }
    for (size_t i = 0; rc == LG_OK && i < fd->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = fd->service[i];
        char *full;
        rc = refl_add_symbol(r, pkg, s->name, f, false, &full);
        if (rc == LG_OK) {
            r->nservices++;
        }
        for (size_t j = 0; rc == LG_OK && j < s->n_method; j++) {
            rc = refl_add_symbol(r, full, s->method[j]->name, f, false, NULL);
        }
    }
    return rc;
}

static const struct refl_symbol *refl_find_symbol(const lg_grpc_reflection *r, const char *name)
{
    for (size_t i = 0; i < r->nsymbols; i++) {
        if (strcmp(r->symbols[i].name, name) == 0) {
            return &r->symbols[i];
        }
    }
    return NULL;
}

static ptrdiff_t refl_find_file(const lg_grpc_reflection *r, const char *name)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        if (strcmp(r->files[i].name, name) == 0) {
            return (ptrdiff_t)i;
        }
    }
    return -1;
}

/* ---- the handler ------------------------------------------------------------------------ */

/* Adds file |f| and (depth first) its dependencies to |out|, each once. */
static void refl_collect(const lg_grpc_reflection *r, size_t f, bool *seen,
                         ProtobufCBinaryData *out, size_t *n)
{
    if (seen[f]) {
        return;
    }
    seen[f] = true;
    out[(*n)++] = r->files[f].raw;
    const Google__Protobuf__FileDescriptorProto *fd = r->files[f].fd;
    for (size_t i = 0; i < fd->n_dependency; i++) {
        ptrdiff_t d = refl_find_file(r, fd->dependency[i]);
        if (d >= 0) {
            refl_collect(r, (size_t)d, seen, out, n);
        }
    }
}

static int refl_answer_files(const lg_grpc_reflection *r, lg_arena *arena, size_t f,
                             Grpc__Reflection__V1__ServerReflectionResponse *resp)
{
    bool *seen = lg_arena_alloc(arena, r->nfiles * sizeof(bool));
    ProtobufCBinaryData *files = lg_arena_alloc(arena, r->nfiles * sizeof(*files));
    Grpc__Reflection__V1__FileDescriptorResponse *fdr = lg_arena_alloc(arena, sizeof(*fdr));
    if (!seen || !files || !fdr) {
        return LG_ERR_NOMEM;
    }
    memset(seen, 0, r->nfiles * sizeof(bool));
    grpc__reflection__v1__file_descriptor_response__init(fdr);
    size_t n = 0;
    refl_collect(r, f, seen, files, &n);
    fdr->n_file_descriptor_proto = n;
    fdr->file_descriptor_proto = files;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    resp->file_descriptor_response = fdr;
    return LG_OK;
}

static int refl_answer_services(const lg_grpc_reflection *r, lg_arena *arena,
                                Grpc__Reflection__V1__ServerReflectionResponse *resp)
{
    Grpc__Reflection__V1__ListServiceResponse *ls = lg_arena_alloc(arena, sizeof(*ls));
    Grpc__Reflection__V1__ServiceResponse **v =
        lg_arena_alloc(arena, (r->nservices + 1) * sizeof(*v));
    if (!ls || !v) {
        return LG_ERR_NOMEM;
    }
    grpc__reflection__v1__list_service_response__init(ls);
    size_t n = 0;
    for (size_t f = 0; f < r->nfiles; f++) {
        const Google__Protobuf__FileDescriptorProto *fd = r->files[f].fd;
        for (size_t i = 0; i < fd->n_service; i++) {
            Grpc__Reflection__V1__ServiceResponse *s = lg_arena_alloc(arena, sizeof(*s));
            size_t plen = fd->package ? strlen(fd->package) : 0;
            size_t nlen = strlen(fd->service[i]->name);
            char *name = lg_arena_alloc(arena, plen + nlen + 2);
            if (!s || !name || n >= r->nservices) {
                return LG_ERR_NOMEM;
            }
            grpc__reflection__v1__service_response__init(s);
            size_t at = 0;
            if (plen) {
                memcpy(name, fd->package, plen);
                name[plen] = '.';
                at = plen + 1;
            }
            memcpy(name + at, fd->service[i]->name, nlen + 1);
            s->name = name;
            v[n++] = s;
        }
    }
    ls->n_service = n;
    ls->service = v;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    resp->list_services_response = ls;
    return LG_OK;
}

static int refl_answer_error(lg_arena *arena, const char *what, const char *name,
                             Grpc__Reflection__V1__ServerReflectionResponse *resp)
{
    Grpc__Reflection__V1__ErrorResponse *er = lg_arena_alloc(arena, sizeof(*er));
    char *msg = lg_arena_alloc(arena, REFL_ERROR_MSG_BYTES);
    if (!er || !msg) {
        return LG_ERR_NOMEM;
    }
    grpc__reflection__v1__error_response__init(er);
    snprintf(msg, REFL_ERROR_MSG_BYTES, "%s not found: %s", what, name ? name : "");
    er->error_code = LG_GRPC_NOT_FOUND;
    er->error_message = msg;
    resp->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    resp->error_response = er;
    return LG_OK;
}

static int refl_answer(const lg_grpc_reflection *r, lg_arena *arena,
                       const Grpc__Reflection__V1__ServerReflectionRequest *req,
                       Grpc__Reflection__V1__ServerReflectionResponse *resp)
{
    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        return refl_answer_services(r, arena, resp);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME: {
        ptrdiff_t f = refl_find_file(r, req->file_by_filename);
        if (f < 0) {
            return refl_answer_error(arena, "file", req->file_by_filename, resp);
        }
        return refl_answer_files(r, arena, (size_t)f, resp);
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
        const struct refl_symbol *s = refl_find_symbol(r, req->file_containing_symbol);
        if (!s) {
            return refl_answer_error(arena, "symbol", req->file_containing_symbol, resp);
        }
        return refl_answer_files(r, arena, s->file, resp);
    }
    case REFL_REQ_ALL_EXTENSION_NUMBERS: {
        const struct refl_symbol *s = refl_find_symbol(r, req->all_extension_numbers_of_type);
        if (!s || !s->is_message) {
            return refl_answer_error(arena, "type", req->all_extension_numbers_of_type, resp);
        }
        Grpc__Reflection__V1__ExtensionNumberResponse *en = lg_arena_alloc(arena, sizeof(*en));
        if (!en) {
            return LG_ERR_NOMEM;
        }
        grpc__reflection__v1__extension_number_response__init(en);
        en->base_type_name = s->name;
        resp->message_response_case = REFL_RESP_ALL_EXTENSION_NUMBERS;
        resp->all_extension_numbers_response = en;
        return LG_OK;
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        return refl_answer_error(
            arena, "extension",
            req->file_containing_extension ? req->file_containing_extension->containing_type : "",
            resp);
    default:
        return refl_answer_error(arena, "request kind", "", resp);
    }
}

static void refl_on_message(lg_grpc_call *call, const uint8_t *msg, size_t len, void *user_data)
{
    const lg_grpc_reflection *r = user_data;
    lg_arena *arena = lg_grpc_call_get_arena(call);
    ProtobufCAllocator a;
    lg_arena_protobuf_allocator(arena, &a);
    /* v1 and v1alpha share one wire format: the v1 types parse both. */
    Grpc__Reflection__V1__ServerReflectionRequest *req =
        grpc__reflection__v1__server_reflection_request__unpack(&a, len, msg);
    if (!req) {
        lg_grpc_call_finish(call, LG_GRPC_INTERNAL, "cannot parse ServerReflectionRequest");
        return;
    }
    Grpc__Reflection__V1__ServerReflectionResponse resp;
    grpc__reflection__v1__server_reflection_response__init(&resp);
    resp.valid_host = req->host;
    resp.original_request = req;
    int rc = refl_answer(r, arena, req, &resp);
    if (rc == LG_OK) {
        rc = lg_grpc_call_send_pb(call, &resp.base);
    }
    if (rc == LG_ERR_AGAIN) {
        /* The client sends requests without reading answers: stop instead of buffering. */
        lg_grpc_call_finish(call, LG_GRPC_RESOURCE_EXHAUSTED, "reflection client not reading");
    } else if (rc != LG_OK && rc != LG_ERR_CLOSED) {
        lg_grpc_call_finish(call, lg_err_grpc_status(rc), lg_err_str(rc));
    }
}

static void refl_on_half_close(lg_grpc_call *call, void *user_data)
{
    (void)user_data;
    lg_grpc_call_finish(call, LG_GRPC_OK, NULL);
}

static void refl_on_close(lg_grpc_call *call, enum lg_grpc_close_reason reason, void *user_data)
{
    (void)call;
    (void)reason;
    (void)user_data;
}

static int refl_index(lg_grpc_reflection *r, const uint8_t *fds, size_t fds_len)
{
    r->alloc = (ProtobufCAllocator){refl_pb_alloc, refl_pb_free, NULL};
    r->set = google__protobuf__file_descriptor_set__unpack(&r->alloc, fds_len, fds);
    if (!r->set) {
        return LG_ERR_MALFORMED;
    }
    if (r->set->n_file > LG_GRPC_REFLECTION_MAX_FILES) {
        return LG_ERR_TOO_LARGE;
    }
    r->nfiles = r->set->n_file;
    for (size_t i = 0; i < r->nfiles; i++) {
        r->files[i].fd = r->set->file[i];
        r->files[i].name = r->set->file[i]->name ? r->set->file[i]->name : "";
    }
    int rc = refl_slice_files(r, fds, fds_len);
    r->symbols = lg_calloc(LG_GRPC_REFLECTION_MAX_SYMBOLS, sizeof(*r->symbols));
    if (rc == LG_OK && !r->symbols) {
        rc = LG_ERR_NOMEM;
    }
    for (size_t i = 0; rc == LG_OK && i < r->nfiles; i++) {
        rc = refl_index_file(r, i);
    }
    return rc;
}

int lg_grpc_reflection_new(lg_grpc_reflection **out, lg_grpc_server *srv, const uint8_t *fds,
                           size_t fds_len)
{
    static const struct lg_grpc_method_cbs cbs = {NULL, refl_on_message, refl_on_half_close, NULL,
                                                  refl_on_close};
    lg_grpc_reflection *r = lg_calloc(1, sizeof(*r));
    if (!r) {
        return LG_ERR_NOMEM;
    }
    int rc = refl_index(r, fds, fds_len);
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(srv,
                                     "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                     LG_GRPC_BIDI_STREAMING, &cbs, r);
    }
    if (rc == LG_OK) {
        rc = lg_grpc_server_register(
            srv, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            LG_GRPC_BIDI_STREAMING, &cbs, r);
    }
    if (rc != LG_OK) {
        lg_grpc_reflection_free(r);
        return rc;
    }
    *out = r;
    return LG_OK;
}

void lg_grpc_reflection_free(lg_grpc_reflection *r)
{
    if (!r) {
        return;
    }
    if (r->symbols) {
        for (size_t i = 0; i < r->nsymbols; i++) {
            lg_free(r->symbols[i].name);
        }
        lg_free(r->symbols);
    }
    if (r->set) {
        google__protobuf__file_descriptor_set__free_unpacked(r->set, &r->alloc);
    }
    lg_free(r);
}

size_t lg_grpc_reflection_get_file_count(const lg_grpc_reflection *r)
{
    return r->nfiles;
}

size_t lg_grpc_reflection_get_service_count(const lg_grpc_reflection *r)
{
    return r->nservices;
}
