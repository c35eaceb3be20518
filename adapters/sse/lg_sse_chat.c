/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_sse_chat.h"

#include <string.h>

#include <event2/event.h>
#include <protobuf-c/protobuf-c.h>

#include "grpc/health/v1/health.pb-c.h"
#include "lg_err.h"
#include "lg_grpc_client.h"
#include "lg_limits.h"
#include "lg_mem.h"
#include "llmgate/chat/v1/chat.pb-c.h"

#define LG_LOG_MODULE "sse_chat"
#include "lg_log.h"

#define M_STREAM_CHAT "/llmgate.chat.v1.ChatService/StreamChat"
#define M_RESUME      "/llmgate.chat.v1.ChatService/ResumeStream"
#define M_CANCEL      "/llmgate.chat.v1.ChatService/CancelStream"
#define M_HEALTH      "/grpc.health.v1.Health/Check"
#define MD_USER       "x-user-id"
/* Asks StreamChat to end the call with OK after the start event (see llmgate-chat). */
#define MD_DETACH     "x-llmgate-detach"

enum call_kind {
    CK_STREAM, /* StreamChat or ResumeStream: ChatEvent messages */
    CK_CANCEL, /* CancelStream: one CancelResponse */
    CK_HEALTH, /* Health/Check: one HealthCheckResponse */
};

struct lg_sse_call {
    lg_sse_chat *chat;
    enum call_kind kind;
    lg_grpc_client_call *gc; /* valid until on_close returns */
    lg_sse_chat_event_cb ev_cb;
    lg_sse_chat_end_cb end_cb;
    lg_sse_chat_cancel_cb cancel_cb;
    void *ud;
    bool aborted;                    /* no callback fires any more */
    bool detached;                   /* StreamChat asked to end after the start event */
    int local_rc;                    /* a local reason to end (bad message), else LG_OK */
    bool cancelled;                  /* CK_CANCEL: the response's flag */
    struct lg_sse_call *prev, *next; /* live calls of the chat handle */
};

/* Connections to the chat pod that owns streams of one node (resume routing). */
struct chat_owner {
    char node[LG_SSE_CHAT_NODE_MAX_DIGITS + 1]; /* "" = free slot */
    char *addr;                                 /* lg_malloc'd HOST:PORT of that pod */
    lg_grpc_client *clients[LG_SSE_CHAT_OWNER_MAX_CONNS];
    size_t nclients;
};

/* --chat-node-map entry: node -> address. */
struct chat_map_entry {
    char node[LG_SSE_CHAT_NODE_MAX_DIGITS + 1];
    char *addr; /* lg_malloc'd */
};

struct lg_sse_chat {
    struct event_base *base;
    char *addr;     /* owned copy of the target */
    char *pod_tmpl; /* owner address template ({ordinal} or {node}), or NULL */
    struct chat_map_entry map[LG_SSE_CHAT_MAX_OWNERS];
    size_t nmap;
    struct chat_owner owners[LG_SSE_CHAT_MAX_OWNERS];
    /* One lg_grpc_client is one HTTP/2 connection, and the chat server admits a bounded
     * number of concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS, 100 by
     * default); every open SSE stream holds one ResumeStream call. So calls spread over a
     * pool of connections, opened on demand, each given at most LG_SSE_CHAT_CALLS_PER_CONN. */
    lg_grpc_client *clients[LG_SSE_CHAT_MAX_CONNS];
    size_t nclients;
    struct event *health_timer;
    bool ready; /* last health check said SERVING */
    bool health_inflight;
    struct lg_sse_call *calls; /* live calls (for lg_sse_chat_free) */
};

static void *pb_alloc(void *ud, size_t size)
{
    (void)ud;
    return lg_malloc(size);
}

static void pb_free(void *ud, void *p)
{
    (void)ud;
    lg_free(p);
}

/* protobuf-c unpacks through lg_malloc, so the allocator hook sees every byte. */
static ProtobufCAllocator pb_allocator(void)
{
    ProtobufCAllocator a = {pb_alloc, pb_free, NULL};
    return a;
}

static int status_to_err(int code)
{
    switch (code) {
    case LG_GRPC_OK:
        return LG_OK;
    case LG_GRPC_CANCELLED:
        return LG_ERR_CANCELLED;
    case LG_GRPC_INVALID_ARGUMENT:
    case LG_GRPC_OUT_OF_RANGE:
        return LG_ERR_INVALID;
    case LG_GRPC_DEADLINE_EXCEEDED:
        return LG_ERR_TIMEOUT;
    case LG_GRPC_NOT_FOUND:
        return LG_ERR_NOT_FOUND;
    case LG_GRPC_PERMISSION_DENIED:
        return LG_ERR_PERMISSION;
    case LG_GRPC_RESOURCE_EXHAUSTED:
        return LG_ERR_EXHAUSTED;
    case LG_GRPC_FAILED_PRECONDITION:
        return LG_ERR_STATE;
    case LG_GRPC_UNAUTHENTICATED:
        return LG_ERR_UNAUTHENTICATED;
    case LG_GRPC_UNIMPLEMENTED:
        return LG_ERR_UNIMPLEMENTED;
    case LG_GRPC_UNAVAILABLE:
        return LG_ERR_UNAVAILABLE;
    default:
        return LG_ERR_UPSTREAM;
    }
}

static void call_link(lg_sse_chat *c, struct lg_sse_call *call)
{
    call->next = c->calls;
    if (c->calls != NULL) {
        c->calls->prev = call;
    }
    c->calls = call;
}

static void call_unlink(lg_sse_chat *c, struct lg_sse_call *call)
{
    if (call->prev != NULL) {
        call->prev->next = call->next;
    } else if (c->calls == call) {
        c->calls = call->next;
    }
    if (call->next != NULL) {
        call->next->prev = call->prev;
    }
    call->prev = call->next = NULL;
}

/* Cancels the gRPC call on our side; its on_close still follows and frees the wrapper. */
static void call_stop(struct lg_sse_call *call)
{
    call->aborted = true;
    if (call->gc != NULL) {
        lg_grpc_client_call_cancel(call->gc);
    }
}

static void fill_event(const Llmgate__Chat__V1__ChatEvent *e, struct lg_sse_chat_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    ev->stream_id = e->stream_id;
    ev->seq = e->seq;
    switch (e->event_case) {
    case LLMGATE__CHAT__V1__CHAT_EVENT__EVENT_START:
        ev->type = LG_SSE_TYPE_START;
        ev->model = e->start->model;
        break;
    case LLMGATE__CHAT__V1__CHAT_EVENT__EVENT_CONTENT:
        ev->type = LG_SSE_TYPE_CONTENT;
        ev->text = (const uint8_t *)e->content->text;
        ev->text_len = strlen(e->content->text);
        break;
    case LLMGATE__CHAT__V1__CHAT_EVENT__EVENT_DONE:
        ev->type = LG_SSE_TYPE_DONE;
        ev->done.finish_reason = e->done->finish_reason;
        ev->done.duration_ms = e->done->duration_ms;
        if (e->done->usage != NULL) {
            ev->done.prompt_tokens = e->done->usage->prompt_tokens;
            ev->done.completion_tokens = e->done->usage->completion_tokens;
            ev->done.cached_tokens = e->done->usage->cached_tokens;
            ev->done.total_tokens = e->done->usage->total_tokens;
            ev->done.cost_nano_usd = e->done->usage->estimated_cost_nano_usd;
        }
        break;
    case LLMGATE__CHAT__V1__CHAT_EVENT__EVENT_ERROR:
        ev->type = LG_SSE_TYPE_ERROR;
        ev->code = e->error->code;
        ev->message = e->error->message;
        break;
    default:
        ev->type = LG_SSE_TYPE_HEARTBEAT; /* unknown oneof: skipped by the caller below */
        break;
    }
}

static void on_stream_message(lg_grpc_client_call *gc, const uint8_t *msg, size_t len, void *ud)
{
    struct lg_sse_call *call = ud;
    (void)gc;
    if (call->aborted) {
        if (call->detached) {
            /* The server kept streaming although asked to detach: stop it. */
            call->detached = false;
            lg_grpc_client_call_cancel(call->gc);
        }
        return;
    }
    ProtobufCAllocator a = pb_allocator();
    Llmgate__Chat__V1__ChatEvent *e = llmgate__chat__v1__chat_event__unpack(&a, len, msg);
    if (e == NULL || !lg_sse_is_stream_id(e->stream_id, strlen(e->stream_id))) {
        /* A message we cannot use ends the call: the client resumes from its last id. */
        call->local_rc = LG_ERR_UPSTREAM;
        if (e != NULL) {
            llmgate__chat__v1__chat_event__free_unpacked(e, &a);
        }
        lg_grpc_client_call_cancel(call->gc);
        return;
    }
    struct lg_sse_chat_event ev;
    fill_event(e, &ev);
    if (ev.type != LG_SSE_TYPE_HEARTBEAT && call->ev_cb(&ev, call->ud) != LG_OK) {
        if (call->detached) {
            /* No RST_STREAM: the server ends the call with OK after this event, and resets
             * in bulk would trip its rapid-reset limit. */
            call->aborted = true;
        } else {
            call_stop(call);
        }
    }
    llmgate__chat__v1__chat_event__free_unpacked(e, &a);
}

static void on_cancel_message(lg_grpc_client_call *gc, const uint8_t *msg, size_t len, void *ud)
{
    struct lg_sse_call *call = ud;
    (void)gc;
    ProtobufCAllocator a = pb_allocator();
    Llmgate__Chat__V1__CancelResponse *r = llmgate__chat__v1__cancel_response__unpack(&a, len, msg);
    if (r == NULL) {
        call->local_rc = LG_ERR_UPSTREAM;
        return;
    }
    call->cancelled = r->cancelled;
    llmgate__chat__v1__cancel_response__free_unpacked(r, &a);
}

static void on_health_message(lg_grpc_client_call *gc, const uint8_t *msg, size_t len, void *ud)
{
    struct lg_sse_call *call = ud;
    (void)gc;
    ProtobufCAllocator a = pb_allocator();
    Grpc__Health__V1__HealthCheckResponse *r =
        grpc__health__v1__health_check_response__unpack(&a, len, msg);
    call->cancelled =
        r != NULL && r->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    if (r != NULL) {
        grpc__health__v1__health_check_response__free_unpacked(r, &a);
    }
}

static void on_call_close(lg_grpc_client_call *gc, const struct lg_grpc_client_status *st, void *ud)
{
    struct lg_sse_call *call = ud;
    lg_sse_chat *c = call->chat;
    (void)gc;
    call->gc = NULL;
    call_unlink(c, call);
    int rc = call->local_rc != LG_OK ? call->local_rc : status_to_err(st->code);
    if (call->kind == CK_HEALTH) {
        bool was = c->ready;
        c->ready = rc == LG_OK && call->cancelled;
        c->health_inflight = false;
        if (was != c->ready) {
            lg_log(LG_LOG_INFO, NULL, "chat_health", "ready=%d status=%s", c->ready ? 1 : 0,
                   lg_grpc_status_name(st->code));
        }
    } else if (!call->aborted) {
        if (call->kind == CK_CANCEL) {
            call->cancel_cb(rc, call->cancelled, st->message, call->ud);
        } else {
            call->end_cb(rc, st->message, call->ud);
        }
    }
    lg_free(call);
}

/* The first connection with room, a new one while the pool has room, else the least loaded
 * (its calls then wait in the client's bounded queue). */
static int pool_pick(struct event_base *base, const char *addr, lg_grpc_client **clients,
                     size_t *nclients, size_t max, lg_grpc_client **out)
{
    size_t best = 0;
    for (size_t i = 0; i < *nclients; i++) {
        size_t n = lg_grpc_client_get_call_count(clients[i]);
        if (n < LG_SSE_CHAT_CALLS_PER_CONN) {
            *out = clients[i];
            return LG_OK;
        }
        if (n < lg_grpc_client_get_call_count(clients[best])) {
            best = i;
        }
    }
    if (*nclients < max) {
        struct lg_grpc_client_opts o;
        lg_grpc_client_opts_default(&o);
        o.user_agent = "llmgate-sse";
        int rc = lg_grpc_client_new(&clients[*nclients], base, addr, &o);
        if (rc == LG_OK) {
            *out = clients[(*nclients)++];
            return LG_OK;
        }
        if (*nclients == 0) {
            return rc;
        }
    }
    *out = clients[best];
    return LG_OK;
}

static int chat_pick_client(lg_sse_chat *c, lg_grpc_client **out)
{
    return pool_pick(c->base, c->addr, c->clients, &c->nclients, LG_SSE_CHAT_MAX_CONNS, out);
}

/* ---- resume routing (docs/operations.md 6.2) ---- */

static bool is_node(const char *s, size_t len)
{
    if (len == 0 || len > LG_SSE_CHAT_NODE_MAX_DIGITS || (s[0] == '0' && len > 1)) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

int lg_sse_chat_parse_node(const char *stream_id, char node_out[LG_SSE_CHAT_NODE_MAX_DIGITS + 1])
{
    node_out[0] = '\0';
    size_t len = strlen(stream_id);
    if (len < LG_SSE_CHAT_ID_RANDOM_CHARS) {
        return LG_ERR_INVALID;
    }
    size_t plen = len - LG_SSE_CHAT_ID_RANDOM_CHARS;
    if (plen == 0) {
        return LG_ERR_NOT_FOUND;
    }
    /* Only what precedes the last 22 (random) characters is the prefix "n<digits>_". */
    if (plen < 3 || stream_id[0] != 'n' || stream_id[plen - 1] != '_' ||
        !is_node(stream_id + 1, plen - 2)) {
        return LG_ERR_INVALID;
    }
    memcpy(node_out, stream_id + 1, plen - 2);
    node_out[plen - 2] = '\0';
    return LG_OK;
}

static void owner_clear(struct chat_owner *o)
{
    for (size_t i = 0; i < o->nclients; i++) {
        lg_grpc_client_free(o->clients[i]); /* on_close runs for its live calls */
    }
    lg_free(o->addr);
    memset(o, 0, sizeof(*o));
}

static bool owner_is_idle(const struct chat_owner *o)
{
    for (size_t i = 0; i < o->nclients; i++) {
        if (lg_grpc_client_get_call_count(o->clients[i]) > 0) {
            return false;
        }
    }
    return true;
}

/* Writes the address of the pod owning |node| into a new lg_malloc'd string: the node map
 * first, else the template with every {ordinal} / {node} replaced. LG_ERR_NOT_FOUND when
 * neither knows the node (a forged or foreign id), LG_ERR_NOMEM, LG_ERR_TOO_LARGE. */
static int owner_addr(const lg_sse_chat *c, const char *node, char **out)
{
    for (size_t i = 0; i < c->nmap; i++) {
        if (strcmp(c->map[i].node, node) == 0) {
            *out = lg_strdup(c->map[i].addr);
            return *out != NULL ? LG_OK : LG_ERR_NOMEM;
        }
    }
    if (c->pod_tmpl == NULL) {
        return LG_ERR_NOT_FOUND;
    }
    char buf[LG_SSE_CHAT_ADDR_MAX_BYTES + 1];
    size_t n = 0;
    size_t nlen = strlen(node);
    for (const char *p = c->pod_tmpl; *p != '\0';) {
        const char *piece = p;
        size_t plen = 1;
        size_t skip = 1;
        if (strncmp(p, "{ordinal}", 9) == 0 || strncmp(p, "{node}", 6) == 0) {
            piece = node;
            plen = nlen;
            skip = p[1] == 'o' ? 9 : 6;
        }
        if (n + plen > LG_SSE_CHAT_ADDR_MAX_BYTES) {
            return LG_ERR_TOO_LARGE;
        }
        memcpy(buf + n, piece, plen);
        n += plen;
        p += skip;
    }
    buf[n] = '\0';
    *out = lg_strdup(buf);
    return *out != NULL ? LG_OK : LG_ERR_NOMEM;
}

/* The owner pool of |node|, created on first use; when every slot is taken an idle pool is
 * reused. LG_ERR_UNAVAILABLE when all LG_SSE_CHAT_MAX_OWNERS pools carry calls. */
static int owner_get(lg_sse_chat *c, const char *node, struct chat_owner **out)
{
    struct chat_owner *free_slot = NULL;
    struct chat_owner *idle = NULL;
    for (size_t i = 0; i < LG_SSE_CHAT_MAX_OWNERS; i++) {
        struct chat_owner *o = &c->owners[i];
        if (o->node[0] == '\0') {
            if (free_slot == NULL) {
                free_slot = o;
            }
        } else if (strcmp(o->node, node) == 0) {
            *out = o;
            return LG_OK;
        } else if (idle == NULL && owner_is_idle(o)) {
            idle = o;
        }
    }
    char *addr = NULL;
    int rc = owner_addr(c, node, &addr);
    if (rc != LG_OK) {
        return rc;
    }
    struct chat_owner *o = free_slot;
    if (o == NULL && idle != NULL) {
        owner_clear(idle);
        o = idle;
    }
    if (o == NULL) {
        lg_free(addr);
        return LG_ERR_UNAVAILABLE;
    }
    memcpy(o->node, node, strlen(node) + 1);
    o->addr = addr;
    *out = o;
    return LG_OK;
}

/* The connection for a call about |stream_id| (NULL: a new stream or a health check): the
 * owning pod's when routing is configured and the id names a node, else the default target.
 * An id whose prefix is malformed, or names a node no route knows, is LG_ERR_NOT_FOUND: no
 * chat pod can hold it, and the client gets 404 rather than a connection attempt. */
static int chat_route(lg_sse_chat *c, const char *stream_id, lg_grpc_client **out)
{
    if (stream_id == NULL || (c->pod_tmpl == NULL && c->nmap == 0)) {
        return chat_pick_client(c, out);
    }
    char node[LG_SSE_CHAT_NODE_MAX_DIGITS + 1];
    int rc = lg_sse_chat_parse_node(stream_id, node);
    if (rc == LG_ERR_NOT_FOUND) {
        return chat_pick_client(c, out); /* an id without a node: single-pod deployment */
    }
    if (rc != LG_OK) {
        return LG_ERR_NOT_FOUND;
    }
    struct chat_owner *o;
    rc = owner_get(c, node, &o);
    if (rc != LG_OK) {
        return rc;
    }
    return pool_pick(c->base, o->addr, o->clients, &o->nclients, LG_SSE_CHAT_OWNER_MAX_CONNS, out);
}

int lg_sse_chat_set_routes(lg_sse_chat *c, const char *pod_tmpl, const char *node_map)
{
    if (pod_tmpl != NULL && pod_tmpl[0] != '\0') {
        if (strlen(pod_tmpl) > LG_SSE_CHAT_ADDR_MAX_BYTES ||
            (strstr(pod_tmpl, "{ordinal}") == NULL && strstr(pod_tmpl, "{node}") == NULL)) {
            return LG_ERR_INVALID;
        }
        lg_free(c->pod_tmpl);
        c->pod_tmpl = lg_strdup(pod_tmpl);
        if (c->pod_tmpl == NULL) {
            return LG_ERR_NOMEM;
        }
    }
    /* node=HOST:PORT,node=HOST:PORT,... */
    for (const char *p = node_map; p != NULL && *p != '\0';) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq == NULL || c->nmap >= LG_SSE_CHAT_MAX_OWNERS || !is_node(p, (size_t)(eq - p)) ||
            len - (size_t)(eq - p) - 1 == 0 ||
            len - (size_t)(eq - p) - 1 > LG_SSE_CHAT_ADDR_MAX_BYTES) {
            return LG_ERR_INVALID;
        }
        struct chat_map_entry *e = &c->map[c->nmap];
        memcpy(e->node, p, (size_t)(eq - p));
        e->node[eq - p] = '\0';
        e->addr = lg_strndup(eq + 1, len - (size_t)(eq - p) - 1);
        if (e->addr == NULL) {
            return LG_ERR_NOMEM;
        }
        c->nmap++;
        p = end != NULL ? end + 1 : p + len;
    }
    return LG_OK;
}

static int call_start(lg_sse_chat *c, enum call_kind kind, const char *method, const char *user,
                      const char *stream_id, const uint8_t *req, size_t len, int64_t timeout_ms,
                      bool detach, void *ud, struct lg_sse_call **out)
{
    struct lg_grpc_client_md md[2] = {
        {MD_USER, (const uint8_t *)user, user != NULL ? strlen(user) : 0},
        {MD_DETACH, (const uint8_t *)"1", 1},
    };
    struct lg_grpc_client_call_opts o = {0};
    struct lg_grpc_client_call_cbs cbs = {NULL, NULL, on_call_close};
    struct lg_sse_call *call = lg_calloc(1, sizeof(*call));
    if (call == NULL) {
        return LG_ERR_NOMEM;
    }
    call->chat = c;
    call->kind = kind;
    call->ud = ud;
    o.kind = kind == CK_STREAM ? LG_GRPC_CLIENT_SERVER_STREAMING : LG_GRPC_CLIENT_UNARY;
    o.timeout_ms = timeout_ms;
    if (user != NULL && user[0] != 0) {
        o.md = md;
        o.md_count = detach ? 2 : 1;
    } else if (detach) {
        o.md = &md[1];
        o.md_count = 1;
    }
    cbs.on_message = kind == CK_STREAM   ? on_stream_message
                     : kind == CK_CANCEL ? on_cancel_message
                                         : on_health_message;
    lg_grpc_client *client = NULL;
    int rc = chat_route(c, stream_id, &client);
    if (rc == LG_OK) {
        rc = lg_grpc_client_start(client, method, req, len, &o, &cbs, call, &call->gc);
    }
    if (rc != LG_OK) {
        lg_free(call);
        return rc == LG_ERR_EXHAUSTED ? LG_ERR_UNAVAILABLE : rc;
    }
    call->detached = detach;
    call_link(c, call);
    *out = call;
    return LG_OK;
}

/* Packs |msg| into an lg_malloc'd buffer. */
static int pack(const ProtobufCMessage *msg, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *b = lg_malloc(n > 0 ? n : 1);
    if (b == NULL) {
        return LG_ERR_NOMEM;
    }
    protobuf_c_message_pack(msg, b);
    *out = b;
    *len = n;
    return LG_OK;
}

/* Builds the ChatRequest for |r| and packs it. Pointer arrays are lg_malloc'd here and freed
 * before returning; strings are borrowed from |r|. */
static int pack_chat_request(const char *user, const struct lg_sse_chat_req *r, uint8_t **out,
                             size_t *len)
{
    Llmgate__Chat__V1__ChatRequest q;
    int rc = LG_ERR_NOMEM;
    Llmgate__Chat__V1__ChatMessage *msgs = lg_calloc(r->n_msgs, sizeof(*msgs));
    Llmgate__Chat__V1__ChatMessage **mp = lg_calloc(r->n_msgs, sizeof(*mp));
    Llmgate__Chat__V1__ChatRequest__MetadataEntry *kv = lg_calloc(r->n_meta + 1, sizeof(*kv));
    Llmgate__Chat__V1__ChatRequest__MetadataEntry **kvp = lg_calloc(r->n_meta + 1, sizeof(*kvp));
    if (msgs == NULL || mp == NULL || kv == NULL || kvp == NULL) {
        goto out_free_arrays;
    }
    /* The generated __init functions, not the INIT macros: those cast away const. */
    llmgate__chat__v1__chat_request__init(&q);
    /* protobuf-c takes char * fields; it never writes through them when packing. */
    q.user_id = (char *)(uintptr_t)(user != NULL ? user : "");
    q.model = (char *)(uintptr_t)r->model;
    if (r->conversation_id != NULL) {
        q.conversation_id = (char *)(uintptr_t)r->conversation_id;
    }
    if (r->agent_id != NULL) {
        q.agent_id = (char *)(uintptr_t)r->agent_id;
    }
    if (r->provider_config_id != NULL) {
        q.provider_config_id = (char *)(uintptr_t)r->provider_config_id;
    }
    for (size_t i = 0; i < r->n_msgs; i++) {
        llmgate__chat__v1__chat_message__init(&msgs[i]);
        msgs[i].role = (char *)(uintptr_t)r->msgs[i].role;
        msgs[i].content = (char *)(uintptr_t)r->msgs[i].content;
        mp[i] = &msgs[i];
    }
    q.n_messages = r->n_msgs;
    q.messages = mp;
    for (size_t i = 0; i < r->n_meta; i++) {
        llmgate__chat__v1__chat_request__metadata_entry__init(&kv[i]);
        kv[i].key = (char *)(uintptr_t)r->meta[i].key;
        kv[i].value = (char *)(uintptr_t)r->meta[i].value;
        kvp[i] = &kv[i];
    }
    q.n_metadata = r->n_meta;
    q.metadata = kvp;
    if (r->has_temperature) {
        q.temperature_opt_case = LLMGATE__CHAT__V1__CHAT_REQUEST__TEMPERATURE_OPT_TEMPERATURE;
        q.temperature = r->temperature;
    }
    if (r->max_tokens > 0) {
        q.max_tokens_opt_case = LLMGATE__CHAT__V1__CHAT_REQUEST__MAX_TOKENS_OPT_MAX_TOKENS;
        q.max_tokens = (uint32_t)r->max_tokens;
    }
    rc = pack(&q.base, out, len);
out_free_arrays:
    lg_free(msgs);
    lg_free(mp);
    lg_free(kv);
    lg_free(kvp);
    return rc;
}

static int chat_start(lg_sse_chat *c, const char *user, const struct lg_sse_chat_req *req,
                      bool detach, lg_sse_chat_event_cb ev_cb, lg_sse_chat_end_cb end_cb,
                      void *user_data, lg_sse_call **out)
{
    uint8_t *buf;
    size_t len;
    int rc = pack_chat_request(user, req, &buf, &len);
    if (rc != LG_OK) {
        return rc;
    }
    rc = call_start(c, CK_STREAM, M_STREAM_CHAT, user, NULL, buf, len, 0, detach, user_data, out);
    lg_free(buf);
    if (rc == LG_OK) {
        (*out)->ev_cb = ev_cb;
        (*out)->end_cb = end_cb;
    }
    return rc;
}

int lg_sse_chat_start(lg_sse_chat *c, const char *user, const struct lg_sse_chat_req *req,
                      lg_sse_chat_event_cb ev_cb, lg_sse_chat_end_cb end_cb, void *user_data,
                      lg_sse_call **out)
{
    return chat_start(c, user, req, false, ev_cb, end_cb, user_data, out);
}

int lg_sse_chat_create(lg_sse_chat *c, const char *user, const struct lg_sse_chat_req *req,
                       lg_sse_chat_event_cb ev_cb, lg_sse_chat_end_cb end_cb, void *user_data,
                       lg_sse_call **out)
{
    return chat_start(c, user, req, true, ev_cb, end_cb, user_data, out);
}

int lg_sse_chat_resume(lg_sse_chat *c, const char *user, const char *stream_id, uint64_t after_seq,
                       lg_sse_chat_event_cb ev_cb, lg_sse_chat_end_cb end_cb, void *user_data,
                       lg_sse_call **out)
{
    Llmgate__Chat__V1__ResumeRequest q;
    uint8_t *buf;
    size_t len;
    llmgate__chat__v1__resume_request__init(&q);
    q.stream_id = (char *)(uintptr_t)stream_id;
    q.after_seq = after_seq;
    int rc = pack(&q.base, &buf, &len);
    if (rc != LG_OK) {
        return rc;
    }
    rc = call_start(c, CK_STREAM, M_RESUME, user, stream_id, buf, len, 0, false, user_data, out);
    lg_free(buf);
    if (rc == LG_OK) {
        (*out)->ev_cb = ev_cb;
        (*out)->end_cb = end_cb;
    }
    return rc;
}

int lg_sse_chat_cancel(lg_sse_chat *c, const char *user, const char *stream_id,
                       lg_sse_chat_cancel_cb cb, void *user_data, lg_sse_call **out)
{
    Llmgate__Chat__V1__CancelRequest q;
    uint8_t *buf;
    size_t len;
    llmgate__chat__v1__cancel_request__init(&q);
    q.stream_id = (char *)(uintptr_t)stream_id;
    int rc = pack(&q.base, &buf, &len);
    if (rc != LG_OK) {
        return rc;
    }
    rc = call_start(c, CK_CANCEL, M_CANCEL, user, stream_id, buf, len, LG_SSE_RPC_TIMEOUT_MS, false,
                    user_data, out);
    lg_free(buf);
    if (rc == LG_OK) {
        (*out)->cancel_cb = cb;
    }
    return rc;
}

void lg_sse_call_abort(lg_sse_call *call)
{
    if (call != NULL) {
        call_stop(call);
    }
}

static void on_health_timer(evutil_socket_t fd, short what, void *arg)
{
    lg_sse_chat *c = arg;
    struct lg_sse_call *call;
    (void)fd;
    (void)what;
    if (!c->health_inflight && call_start(c, CK_HEALTH, M_HEALTH, NULL, NULL, NULL, 0,
                                          LG_SSE_RPC_TIMEOUT_MS, false, NULL, &call) == LG_OK) {
        c->health_inflight = true;
    }
    struct timeval tv = {LG_SSE_HEALTH_PERIOD_MS / 1000, (LG_SSE_HEALTH_PERIOD_MS % 1000) * 1000};
    event_add(c->health_timer, &tv);
}

int lg_sse_chat_new(lg_sse_chat **out, struct event_base *base, const char *addr)
{
    struct lg_grpc_client_opts o;
    lg_sse_chat *c = lg_calloc(1, sizeof(*c));
    if (c == NULL) {
        return LG_ERR_NOMEM;
    }
    c->base = base;
    c->addr = lg_strdup(addr);
    lg_grpc_client_opts_default(&o);
    o.user_agent = "llmgate-sse";
    /* The first connection is made now so a bad target is refused at startup. */
    int rc = c->addr == NULL ? LG_ERR_NOMEM : lg_grpc_client_new(&c->clients[0], base, addr, &o);
    if (rc != LG_OK) {
        lg_free(c->addr);
        lg_free(c);
        return rc;
    }
    c->nclients = 1;
    c->health_timer = event_new(base, -1, 0, on_health_timer, c);
    if (c->health_timer == NULL) {
        lg_grpc_client_free(c->clients[0]);
        lg_free(c->addr);
        lg_free(c);
        return LG_ERR_NOMEM;
    }
    event_active(c->health_timer, 0, 0); /* first check at once */
    *out = c;
    return LG_OK;
}

void lg_sse_chat_free(lg_sse_chat *c)
{
    if (c == NULL) {
        return;
    }
    for (struct lg_sse_call *call = c->calls; call != NULL; call = call->next) {
        call->aborted = true;
    }
    event_free(c->health_timer);
    for (size_t i = 0; i < c->nclients; i++) {
        lg_grpc_client_free(c->clients[i]); /* on_close runs for its live calls, freeing them */
    }
    for (size_t i = 0; i < LG_SSE_CHAT_MAX_OWNERS; i++) {
        owner_clear(&c->owners[i]);
    }
    for (size_t i = 0; i < c->nmap; i++) {
        lg_free(c->map[i].addr);
    }
    lg_free(c->pod_tmpl);
    lg_free(c->addr);
    lg_free(c);
}

bool lg_sse_chat_is_ready(const lg_sse_chat *c)
{
    return c->ready;
}
