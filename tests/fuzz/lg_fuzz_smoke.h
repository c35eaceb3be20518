/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_fuzz_smoke: the deterministic driver shared by the fuzz targets owned by "fuzz"
 * (fuzz_chat_request, fuzz_chat_service, fuzz_spool, fuzz_chclient, fuzz_record_row,
 * fuzz_sse_http, fuzz_sse_auth).
 *
 * A target defines LLVMFuzzerTestOneInput and a seed generator
 *     static void fuzz_seeds(lg_fuzz_emit_fn emit, void *ud);
 * and includes this header once, after both. Built with LG_FUZZ_LIBFUZZER (clang,
 * -fsanitize=fuzzer) the header only declares the seed generator's types: libFuzzer owns
 * main(). Otherwise it provides main():
 *
 *   TARGET_smoke [DIR...]          replays the built-in seeds, then every file in each DIR
 *                                  (the committed corpus and the regressions/ inputs), then
 *                                  LG_FUZZ_SMOKE_ITERATIONS fixed-seed mutations of them;
 *   TARGET_smoke --write-seeds DIR writes the built-in seeds into DIR (how the committed
 *                                  binary corpora were made).
 *
 * The mutations are the cheap half of what libFuzzer does (bit flips, byte sets from an
 * alphabet of structure bytes, inserts, deletes, chunk copies, splices of two inputs,
 * truncation), driven by a xorshift64 generator with a fixed seed, so every ctest run
 * executes the same inputs and a failure reproduces. A crash aborts the run (ASan/UBSan
 * report or abort()); the input is not saved here: rerun the libFuzzer binary to minimise.
 *
 * Thread: main() only. Memory: the harness uses plain malloc (it is not code under test).
 */
#ifndef LG_FUZZ_SMOKE_H
#define LG_FUZZ_SMOKE_H

#include <stddef.h>
#include <stdint.h>

typedef void (*lg_fuzz_emit_fn)(const uint8_t *data, size_t len, void *ud);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef LG_FUZZ_LIBFUZZER

#    include <dirent.h>
#    include <stdio.h>
#    include <stdlib.h>
#    include <string.h>

#    ifndef LG_FUZZ_SMOKE_ITERATIONS
#        define LG_FUZZ_SMOKE_ITERATIONS 5000
#    endif
#    ifndef LG_FUZZ_SMOKE_MAX_LEN
#        define LG_FUZZ_SMOKE_MAX_LEN 4096
#    endif
#    define LG_FUZZ_SMOKE_SEED      0x9E3779B97F4A7C15ull
#    define LG_FUZZ_SMOKE_MAX_FILE  (1024 * 1024)
#    define LG_FUZZ_SMOKE_MAX_MUTS  8

struct lg_fuzz_pool {
    uint8_t **data;
    size_t *len;
    size_t n;
    size_t cap;
};

static void lg_fuzz_pool_add(const uint8_t *data, size_t len, void *ud)
{
    struct lg_fuzz_pool *p = ud;
    if (p->n == p->cap) {
        size_t cap = p->cap == 0 ? 16 : p->cap * 2;
        uint8_t **d = realloc(p->data, cap * sizeof(*d));
        if (d == NULL) {
            abort();
        }
        p->data = d;
        size_t *l = realloc(p->len, cap * sizeof(*l));
        if (l == NULL) {
            abort();
        }
        p->len = l;
        p->cap = cap;
    }
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL) {
        abort();
    }
    if (len > 0) {
        memcpy(copy, data, len);
    }
    p->data[p->n] = copy;
    p->len[p->n] = len;
    p->n++;
}

static uint64_t lg_fuzz_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Reads every regular file of |dir| into |p| (a missing dir is no error: no inputs yet). */
static size_t lg_fuzz_load_dir(struct lg_fuzz_pool *p, const char *dir)
{
    DIR *d = opendir(dir);
    size_t loaded = 0;
    if (d == NULL) {
        return 0;
    }
    struct dirent *e;
    uint8_t *buf = malloc(LG_FUZZ_SMOKE_MAX_FILE);
    if (buf == NULL) {
        abort();
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            continue;
        }
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        size_t len = fread(buf, 1, LG_FUZZ_SMOKE_MAX_FILE, f);
        fclose(f);
        lg_fuzz_pool_add(buf, len, p);
        loaded++;
    }
    free(buf);
    closedir(d);
    return loaded;
}

static void lg_fuzz_write_seed(const uint8_t *data, size_t len, void *ud)
{
    struct {
        const char *dir;
        size_t n;
    } *w = ud;
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/seed-%03zu", w->dir, w->n++);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        abort();
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* One mutation of buf[0..*len) in place (capacity LG_FUZZ_SMOKE_MAX_LEN). */
static void lg_fuzz_mutate(uint8_t *buf, size_t *len, const struct lg_fuzz_pool *p, uint64_t *st)
{
    static const uint8_t alphabet[] = "\0\xff\x7f\x80{}[]\":,\\\n\r .%0aZ\x08\x0a\x12\x1a\x22";
    uint64_t r = lg_fuzz_next(st);
    size_t n = *len;
    switch (r % 8) {
    case 0: /* flip a bit */
        if (n > 0) {
            buf[(r >> 8) % n] ^= (uint8_t)(1u << ((r >> 40) % 8));
        }
        break;
    case 1: /* set a structure byte */
        if (n > 0) {
            buf[(r >> 8) % n] = alphabet[(r >> 40) % (sizeof(alphabet) - 1)];
        }
        break;
    case 2: /* insert a random byte */
        if (n < LG_FUZZ_SMOKE_MAX_LEN) {
            size_t at = n > 0 ? (r >> 8) % (n + 1) : 0;
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = (uint8_t)(r >> 48);
            *len = n + 1;
        }
        break;
    case 3: /* delete a range */
        if (n > 0) {
            size_t at = (r >> 8) % n;
            size_t k = 1 + (r >> 40) % 16;
            k = k > n - at ? n - at : k;
            memmove(buf + at, buf + at + k, n - at - k);
            *len = n - k;
        }
        break;
    case 4: /* copy a chunk over another place */
        if (n > 1) {
            size_t from = (r >> 8) % n;
            size_t to = (r >> 24) % n;
            size_t k = 1 + (r >> 40) % 32;
            k = k > n - from ? n - from : k;
            k = k > n - to ? n - to : k;
            memmove(buf + to, buf + from, k);
        }
        break;
    case 5: /* splice the tail of another input */
        if (p->n > 0) {
            size_t i = (r >> 8) % p->n;
            size_t at = n > 0 ? (r >> 24) % (n + 1) : 0;
            size_t from = p->len[i] > 0 ? (r >> 40) % p->len[i] : 0;
            size_t k = p->len[i] - from;
            k = k > LG_FUZZ_SMOKE_MAX_LEN - at ? LG_FUZZ_SMOKE_MAX_LEN - at : k;
            if (k > 0) {
                memcpy(buf + at, p->data[i] + from, k);
            }
            *len = at + k;
        }
        break;
    case 6: /* truncate */
        if (n > 0) {
            *len = (r >> 8) % n;
        }
        break;
    default: /* a random little-endian integer somewhere (lengths, counts, varints) */
        if (n >= 4) {
            size_t at = (r >> 8) % (n - 3);
            uint32_t v = (uint32_t)(lg_fuzz_next(st) >> ((r >> 40) % 32));
            memcpy(buf + at, &v, sizeof(v));
        }
        break;
    }
}

static void fuzz_seeds(lg_fuzz_emit_fn emit, void *ud);

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
        struct {
            const char *dir;
            size_t n;
        } w = {argv[2], 0};
        fuzz_seeds(lg_fuzz_write_seed, &w);
        printf("%zu seeds written to %s\n", w.n, argv[2]);
        return 0;
    }
    struct lg_fuzz_pool pool = {0};
    fuzz_seeds(lg_fuzz_pool_add, &pool);
    size_t builtin = pool.n, files = 0;
    for (int i = 1; i < argc; i++) {
        files += lg_fuzz_load_dir(&pool, argv[i]);
    }
    for (size_t i = 0; i < pool.n; i++) {
        (void)LLVMFuzzerTestOneInput(pool.data[i], pool.len[i]);
    }
    uint64_t st = LG_FUZZ_SMOKE_SEED;
    uint8_t *buf = malloc(LG_FUZZ_SMOKE_MAX_LEN);
    if (buf == NULL) {
        abort();
    }
    for (long it = 0; it < LG_FUZZ_SMOKE_ITERATIONS && pool.n > 0; it++) {
        size_t i = (size_t)(lg_fuzz_next(&st) % pool.n);
        size_t len = pool.len[i] < LG_FUZZ_SMOKE_MAX_LEN ? pool.len[i] : LG_FUZZ_SMOKE_MAX_LEN;
        memcpy(buf, pool.data[i], len);
        size_t muts = 1 + (size_t)(lg_fuzz_next(&st) % LG_FUZZ_SMOKE_MAX_MUTS);
        for (size_t k = 0; k < muts; k++) {
            lg_fuzz_mutate(buf, &len, &pool, &st);
        }
        (void)LLVMFuzzerTestOneInput(buf, len);
    }
    free(buf);
    for (size_t i = 0; i < pool.n; i++) {
        free(pool.data[i]);
    }
    free(pool.data);
    free(pool.len);
    printf("%s: %zu built-in seeds, %zu files replayed, %d mutations ok\n", argv[0], builtin,
           files, LG_FUZZ_SMOKE_ITERATIONS);
    return 0;
}

#endif /* !LG_FUZZ_LIBFUZZER */
#endif /* LG_FUZZ_SMOKE_H */
