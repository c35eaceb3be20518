/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_registry.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>

#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

#define REGISTRY_ID_RANDOM_BYTES 16
_Static_assert((REGISTRY_ID_RANDOM_BYTES * 8 + 5) / 6 == LG_CHAT_REGISTRY_ID_LEN,
               "id length is 128 bits in base64url without padding");

struct registry_entry {
    struct registry_entry *next; /* bucket chain */
    char id[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1];
    char *owner;          /* lg_malloc'd */
    void *value;          /* borrowed */
    uint64_t deadline_ms; /* monotonic; 0 = none */
};

struct lg_chat_registry {
    struct registry_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t max;
    char prefix[LG_CHAT_REGISTRY_PREFIX_MAX_LEN + 1]; /* "n<node>_" or "" */
    size_t prefix_len;
};

int lg_chat_registry_new_id(char id_out[LG_CHAT_REGISTRY_ID_LEN + 1])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[REGISTRY_ID_RANDOM_BYTES];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return LG_ERR_IO;
        }
        got += (size_t)n;
    }
    /* base64url, 6 bits per character, most significant bits first. */
    size_t bit = 0;
    for (size_t i = 0; i < LG_CHAT_REGISTRY_ID_LEN; i++, bit += 6) {
        size_t byte = bit / 8;
        unsigned v = (unsigned)raw[byte] << 8;
        if (byte + 1 < sizeof(raw)) {
            v |= raw[byte + 1];
        }
        v = (v >> (10 - bit % 8)) & 0x3fu;
        id_out[i] = alphabet[v];
    }
    id_out[LG_CHAT_REGISTRY_ID_LEN] = '\0';
    return LG_OK;
}

/* FNV-1a: ids are random already, so any mixing is enough. */
static size_t registry_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)id; *p != '\0'; p++) {
        h ^= *p;
        h *= 1099511628211ull;
    }
    return (size_t)h;
}

int lg_chat_registry_new(lg_chat_registry **out, size_t max_entries)
{
    lg_chat_registry *reg = lg_calloc(1, sizeof(*reg));
    if (reg == NULL) {
        return LG_ERR_NOMEM;
    }
    size_t n = 16;
    while (n < max_entries && n < ((size_t)1 << 20)) {
        n <<= 1;
    }
    reg->buckets = lg_calloc(n, sizeof(*reg->buckets));
    if (reg->buckets == NULL) {
        lg_free(reg);
        return LG_ERR_NOMEM;
    }
    reg->nbuckets = n;
    reg->max = max_entries;
    *out = reg;
    return LG_OK;
}

static void registry_entry_free(struct registry_entry *e)
{
    lg_free(e->owner);
    lg_free(e);
}

void lg_chat_registry_free(lg_chat_registry *reg)
{
    if (reg == NULL) {
        return;
    }
    for (size_t i = 0; i < reg->nbuckets; i++) {
        struct registry_entry *e = reg->buckets[i];
        while (e != NULL) {
            struct registry_entry *next = e->next;
            registry_entry_free(e);
            e = next;
        }
    }
    lg_free(reg->buckets);
    lg_free(reg);
}

static struct registry_entry **registry_find(const lg_chat_registry *reg, const char *id)
{
    struct registry_entry **pp = &reg->buckets[registry_hash(id) & (reg->nbuckets - 1)];
    while (*pp != NULL && strcmp((*pp)->id, id) != 0) {
        pp = &(*pp)->next;
    }
    return pp;
}

static bool registry_is_node(const char *s, size_t len)
{
    if (len == 0 || len > LG_CHAT_REGISTRY_NODE_MAX_DIGITS || (s[0] == '0' && len > 1)) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

bool lg_chat_registry_is_node(const char *node)
{
    return node != NULL &&
           registry_is_node(node, strnlen(node, LG_CHAT_REGISTRY_NODE_MAX_DIGITS + 1));
}

int lg_chat_registry_set_node(lg_chat_registry *reg, const char *node)
{
    if (node == NULL || node[0] == '\0') {
        reg->prefix[0] = '\0';
        reg->prefix_len = 0;
        return LG_OK;
    }
    size_t len = strnlen(node, LG_CHAT_REGISTRY_NODE_MAX_DIGITS + 1);
    if (!registry_is_node(node, len)) {
        return LG_ERR_INVALID;
    }
    reg->prefix[0] = 'n';
    memcpy(reg->prefix + 1, node, len);
    reg->prefix[len + 1] = '_';
    reg->prefix[len + 2] = '\0';
    reg->prefix_len = len + 2;
    return LG_OK;
}

static bool registry_is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int lg_chat_registry_parse_node(const char *id, char node_out[LG_CHAT_REGISTRY_NODE_MAX_DIGITS + 1])
{
    node_out[0] = '\0';
    size_t len = strnlen(id, LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1);
    if (len < LG_CHAT_REGISTRY_ID_LEN || len > LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN) {
        return LG_ERR_INVALID;
    }
    size_t plen = len - LG_CHAT_REGISTRY_ID_LEN;
    for (size_t i = plen; i < len; i++) {
        if (!registry_is_b64url(id[i])) {
            return LG_ERR_INVALID;
        }
    }
    if (plen == 0) {
        return LG_ERR_NOT_FOUND;
    }
    /* The random part may itself start with "n", digits or "_", so the prefix is read only
     * from what precedes the last 22 characters. */
    if (plen < 3 || id[0] != 'n' || id[plen - 1] != '_' || !registry_is_node(id + 1, plen - 2)) {
        return LG_ERR_INVALID;
    }
    memcpy(node_out, id + 1, plen - 2);
    node_out[plen - 2] = '\0';
    return LG_OK;
}

int lg_chat_registry_add(lg_chat_registry *reg, const char *owner, void *value,
                         char id_out[LG_CHAT_REGISTRY_STREAM_ID_MAX_LEN + 1])
{
    size_t owner_len = strlen(owner);
    if (owner_len > LG_CHAT_MAX_ID_BYTES) {
        return LG_ERR_INVALID;
    }
    if (reg->count >= reg->max) {
        return LG_ERR_EXHAUSTED;
    }
    struct registry_entry *e = lg_calloc(1, sizeof(*e));
    if (e == NULL) {
        return LG_ERR_NOMEM;
    }
    e->owner = lg_strndup(owner, owner_len);
    if (e->owner == NULL) {
        lg_free(e);
        return LG_ERR_NOMEM;
    }
    /* A collision of 128 random bits does not happen; checking costs one lookup. */
    struct registry_entry **slot;
    do {
        memcpy(e->id, reg->prefix, reg->prefix_len);
        int rc = lg_chat_registry_new_id(e->id + reg->prefix_len);
        if (rc != LG_OK) {
            registry_entry_free(e);
            return rc;
        }
        slot = registry_find(reg, e->id);
    } while (*slot != NULL);
    e->value = value;
    *slot = e;
    reg->count++;
    memcpy(id_out, e->id, sizeof(e->id));
    return LG_OK;
}

int lg_chat_registry_lookup(const lg_chat_registry *reg, const char *id, const char *user,
                            void **value_out)
{
    struct registry_entry *e = *registry_find(reg, id);
    if (e == NULL) {
        return LG_ERR_NOT_FOUND;
    }
    if (strcmp(e->owner, user) != 0) {
        return LG_ERR_PERMISSION;
    }
    *value_out = e->value;
    return LG_OK;
}

int lg_chat_registry_set_deadline(lg_chat_registry *reg, const char *id, uint64_t deadline_ms)
{
    struct registry_entry *e = *registry_find(reg, id);
    if (e == NULL) {
        return LG_ERR_NOT_FOUND;
    }
    e->deadline_ms = deadline_ms;
    return LG_OK;
}

int lg_chat_registry_remove(lg_chat_registry *reg, const char *id)
{
    struct registry_entry **pp = registry_find(reg, id);
    struct registry_entry *e = *pp;
    if (e == NULL) {
        return LG_ERR_NOT_FOUND;
    }
    *pp = e->next;
    registry_entry_free(e);
    reg->count--;
    return LG_OK;
}

size_t lg_chat_registry_expire(lg_chat_registry *reg, uint64_t now_ms,
                               lg_chat_registry_expire_cb cb, void *user_data)
{
    size_t removed = 0;
    for (size_t i = 0; i < reg->nbuckets; i++) {
        struct registry_entry **pp = &reg->buckets[i];
        while (*pp != NULL) {
            struct registry_entry *e = *pp;
            if (e->deadline_ms == 0 || e->deadline_ms > now_ms) {
                pp = &e->next;
                continue;
            }
            uint64_t next = cb(e->id, e->value, now_ms, user_data);
            if (next != 0) {
                e->deadline_ms = next;
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            registry_entry_free(e);
            reg->count--;
            removed++;
        }
    }
    return removed;
}

size_t lg_chat_registry_count(const lg_chat_registry *reg)
{
    return reg->count;
}
