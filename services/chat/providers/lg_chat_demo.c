/* SPDX-License-Identifier: Apache-2.0 */
#include "lg_chat_demo.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include <event2/event.h>

#include "lg_buf.h"
#include "lg_chat_request.h"
#include "lg_err.h"
#include "lg_limits.h"
#include "lg_mem.h"

/* Per-message framing tokens, as OpenAI's chat format counts them (role and separators). */
#define DEMO_TOKENS_PER_MESSAGE 3
/* Tokens priming the reply. */
#define DEMO_TOKENS_PER_REPLY 3
/* Words of the user's message quoted back as the topic, and key words used in the answer. */
#define DEMO_TOPIC_WORDS 12
#define DEMO_KEYWORDS    4
/* A key word is at least this long (skips "the", "and", ...), and at most this. */
#define DEMO_KEYWORD_MIN_BYTES 5
#define DEMO_KEYWORD_MAX_BYTES 32
/* Cap on the composed reply; far above what the templates produce. */
#define DEMO_REPLY_MAX_BYTES 16384

struct demo_upcall {
    struct lg_chat_upcall base; /* first: the stream holds this */
    struct event *timer;        /* fires once per token */
    struct lg_buf reply;        /* the whole answer, composed at start */
    size_t pos;                 /* bytes of |reply| already delivered */
    uint32_t max_tokens;        /* stop here with "length" */
    uint32_t sent_tokens;
    uint32_t prompt_tokens;
    struct timeval pace;
    struct lg_chat_provider_cbs cbs;
    void *user_data;
    bool in_callback; /* inside on_delta: cancel must defer the free */
    bool cancelled;   /* cancel was called inside on_delta */
};

/* ---- tokenizer --------------------------------------------------------------------------- */

static bool demo_is_word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80 || c == '\'';
}

size_t lg_chat_demo_token_len(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t')) {
        i++;
    }
    if (i == len) {
        return len;
    }
    if (!demo_is_word_byte((unsigned char)s[i])) {
        return i + 1;
    }
    while (i < len && demo_is_word_byte((unsigned char)s[i])) {
        i++;
    }
    return i;
}

uint32_t lg_chat_demo_count_tokens(const char *s, size_t len)
{
    uint32_t n = 0;
    size_t i = 0;
    while (i < len) {
        i += lg_chat_demo_token_len(s + i, len - i);
        n++;
    }
    return n;
}

uint32_t lg_chat_demo_prompt_tokens(const struct lg_chat_request *req)
{
    uint32_t n = DEMO_TOKENS_PER_REPLY;
    for (size_t i = 0; i < req->n_messages; i++) {
        n += DEMO_TOKENS_PER_MESSAGE +
             lg_chat_demo_count_tokens(req->messages[i].content, req->messages[i].content_len);
    }
    return n;
}

/* ---- composing the answer ---------------------------------------------------------------- */

static const char *const demo_stopwords[] = {
    "about",   "after",     "again",   "their",      "there",      "these",   "thing",  "think",
    "those",   "where",     "which",   "while",      "would",      "could",   "should", "please",
    "really",  "other",     "being",   "because",    "explain",    "tell",    "what",   "whats",
    "doing",   "going",     "make",    "something",  "works",      "work",    "does",   "using",
    "between", "within",    "without", "every",      "maybe",      "briefly", "quick",  "quickly",
    "simple",  "simply",    "example", "difference", "understand", "write",   "create", "program",
    "script",  "implement", "build",
};

static bool demo_is_stopword(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof(demo_stopwords) / sizeof(demo_stopwords[0]); i++) {
        if (strlen(demo_stopwords[i]) == n && strncasecmp(demo_stopwords[i], w, n) == 0) {
            return true;
        }
    }
    return false;
}

struct demo_words {
    const char *kw[DEMO_KEYWORDS];
    size_t kw_len[DEMO_KEYWORDS];
    size_t n_kw;
};

static bool demo_has_keyword(const struct demo_words *w, const char *s, size_t n)
{
    for (size_t i = 0; i < w->n_kw; i++) {
        if (w->kw_len[i] == n && strncasecmp(w->kw[i], s, n) == 0) {
            return true;
        }
    }
    return false;
}

static void demo_find_keywords(const char *s, size_t len, struct demo_words *w)
{
    size_t i = 0;
    w->n_kw = 0;
    while (i < len && w->n_kw < DEMO_KEYWORDS) {
        while (i < len && !isalnum((unsigned char)s[i])) {
            i++;
        }
        size_t start = i;
        while (i < len && (isalnum((unsigned char)s[i]) || s[i] == '-')) {
            i++;
        }
        size_t n = i - start;
        if (n >= DEMO_KEYWORD_MIN_BYTES && n <= DEMO_KEYWORD_MAX_BYTES &&
            !demo_is_stopword(s + start, n) && !demo_has_keyword(w, s + start, n)) {
            w->kw[w->n_kw] = s + start;
            w->kw_len[w->n_kw] = n;
            w->n_kw++;
        }
    }
}

static uint64_t demo_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The last user message, or the last message of any role. */
static const struct lg_chat_message *demo_last_user(const struct lg_chat_request *req)
{
    for (size_t i = req->n_messages; i > 0; i--) {
        if (strcmp(req->messages[i - 1].role, "user") == 0) {
            return &req->messages[i - 1];
        }
    }
    return req->n_messages > 0 ? &req->messages[req->n_messages - 1] : NULL;
}

/* Appends the first DEMO_TOPIC_WORDS words of |s| (one line, no trailing punctuation). */
static int demo_append_topic(struct lg_buf *out, const char *s, size_t len)
{
    size_t i = 0;
    size_t words = 0;
    size_t end = 0;
    while (i < len && (isspace((unsigned char)s[i]))) {
        i++;
    }
    size_t start = i;
    while (i < len && words < DEMO_TOPIC_WORDS && s[i] != '\n' && s[i] != '?' && s[i] != '.' &&
           s[i] != '!') {
        if (!isspace((unsigned char)s[i]) &&
            (i + 1 == len || isspace((unsigned char)s[i + 1]) || strchr("?.!\n", s[i + 1]))) {
            words++;
            end = i + 1;
        }
        i++;
    }
    while (end > start && strchr(",;:", s[end - 1]) != NULL) {
        end--;
    }
    if (end <= start) {
        return lg_buf_append_str(out, "your question");
    }
    int rc = lg_buf_append_str(out, "\"");
    for (size_t k = start; rc == LG_OK && k < end; k++) {
        rc = lg_buf_append_byte(out, (uint8_t)(s[k] == '"' ? '\'' : s[k]));
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(out, words == DEMO_TOPIC_WORDS && i < len ? "...\"" : "\"");
    }
    return rc;
}

static bool demo_is_greeting(const char *s, size_t len)
{
    static const char *const greetings[] = {"hi",    "hello",   "hey", "good morning",
                                            "hallo", "bonjour", "hola"};
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    for (size_t i = 0; i < sizeof(greetings) / sizeof(greetings[0]); i++) {
        size_t n = strlen(greetings[i]);
        if (len >= n && strncasecmp(s, greetings[i], n) == 0 &&
            (len == n || !isalpha((unsigned char)s[n]))) {
            return len < 40;
        }
    }
    return false;
}

static const char *const demo_openers[] = {
    "Good question. Let me walk through %T step by step.",
    "Here is how I would think about %T.",
    "Sure, let's look at %T together.",
    "Happy to help with %T. The short version first, then the details.",
};

/* %1..%4 are key words of the user's message; sentences whose key word is missing are
 * skipped, so short prompts still get a coherent answer. */
static const char *const demo_body[] = {
    "The heart of it is **%1**: once that part is clear, the rest follows naturally.",
    "A useful way to frame **%1** is to ask what problem it solves and what it costs.",
    "It helps to separate **%1** from **%2**, because they are often confused but answer "
    "different questions.",
    "In practice, **%2** matters most when the system is under load or when something fails.",
    "A common mistake is to optimise **%2** before measuring it; measure first.",
    "Think of **%3** as the glue: it connects the pieces and decides how errors travel.",
    "If you want one concrete next step, write a small example that exercises **%3** and "
    "watch how it behaves at the edges.",
    "Finally, **%4** is worth a look, since it is where most real-world surprises come from.",
};

static const char *const demo_closers[] = {
    "\n\nIn short: start simple, measure, and iterate. Want me to go deeper into any part?",
    "\n\nI hope that helps. Tell me more about your setup and I can be more specific.",
    "\n\nThat is the overview; ask a follow-up question and I will expand on it.",
};

static const char demo_joke[] =
    "Here is one from the gateway's own world: a TCP packet walks into a bar and says "
    "\"I'd like a beer.\" The bartender says \"You'd like a beer?\" and the packet says "
    "\"Yes, I'd like a beer.\" (It never trusts that anything arrived until it is "
    "acknowledged.) Want another one, maybe about HTTP/2 flow control?";

/* Case-insensitive substring search in |s| (|len| bytes) for NUL-terminated |needle|. */
static bool demo_contains(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        if (strncasecmp(s + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

/* A short code sketch for a coding question, in the language the question names. */
struct demo_lang {
    const char *marker; /* substring that names the language */
    const char *fence;  /* markdown fence tag */
    const char *body;   /* %1 is replaced by the first key word */
};

static const struct demo_lang demo_langs[] = {
    {"python", "python",
     "def %1(items):\n    \"\"\"Start small: make it work, then make it fast.\"\"\"\n"
     "    result = []\n    for item in items:\n        result.append(item)\n"
     "    return result\n"},
    {" go", "go",
     "func %1(items []string) []string {\n\tout := make([]string, 0, len(items))\n"
     "\tout = append(out, items...)\n\treturn out\n}\n"},
    {"javascript", "javascript",
     "function %1(items) {\n  // Start small: make it work, then make it fast.\n"
     "  return items.map((item) => item);\n}\n"},
    {" c?", "c",
     "/* Start small: make it work, then make it fast. */\n"
     "static int %1(const int *items, size_t n)\n{\n    int sum = 0;\n"
     "    for (size_t i = 0; i < n; i++) {\n        sum += items[i];\n    }\n"
     "    return sum;\n}\n"},
    {" in c", "c",
     "/* Start small: make it work, then make it fast. */\n"
     "static int %1(const int *items, size_t n)\n{\n    int sum = 0;\n"
     "    for (size_t i = 0; i < n; i++) {\n        sum += items[i];\n    }\n"
     "    return sum;\n}\n"},
};

static const struct demo_lang *demo_find_lang(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof(demo_langs) / sizeof(demo_langs[0]); i++) {
        if (demo_contains(s, len, demo_langs[i].marker)) {
            return &demo_langs[i];
        }
    }
    return NULL;
}

/* Appends a fenced code block for |lang| with the first key word as identifier. */
static int demo_append_code(struct lg_buf *out, const struct demo_lang *lang,
                            const struct demo_words *w)
{
    int rc = lg_buf_appendf(out, "\n\nA minimal sketch to start from:\n\n```%s\n", lang->fence);
    for (const char *p = lang->body; rc == LG_OK && *p != '\0'; p++) {
        if (p[0] == '%' && p[1] == '1') {
            p++;
            if (w->n_kw == 0) {
                rc = lg_buf_append_str(out, "solve");
                continue;
            }
            for (size_t k = 0; rc == LG_OK && k < w->kw_len[0]; k++) {
                char c = (char)tolower((unsigned char)w->kw[0][k]);
                rc = lg_buf_append_byte(out, (uint8_t)(c == '-' ? '_' : c));
            }
            continue;
        }
        rc = lg_buf_append_byte(out, (uint8_t)*p);
    }
    if (rc == LG_OK) {
        rc = lg_buf_append_str(out, "```");
    }
    return rc;
}

/* "What is X" / "Who was Y": the demo knows no facts, and says so. */
static bool demo_is_fact_question(const char *s, size_t len)
{
    static const char *const starts[] = {"what is ",  "what's ",   "who is ",   "who was ",
                                         "when did ", "when was ", "where is ", "how many "};
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        size_t n = strlen(starts[i]);
        if (len >= n && strncasecmp(s, starts[i], n) == 0) {
            return true;
        }
    }
    return false;
}

static const char demo_greeting[] =
    "Hello! I am the llmgate demo model. I run inside the gateway itself, so I answer "
    "offline and instantly, streaming my reply token by token like a hosted model would. "
    "Every answer is billed in exact tokens and nano-dollars, so you can watch usage and "
    "cost add up. Ask me about anything, for example how streaming with resume works.";

/* Appends template |t|, replacing %T with the topic and %1..%4 with key words. */
static int demo_append_template(struct lg_buf *out, const char *t, const struct demo_words *w,
                                const struct lg_chat_message *m)
{
    int rc = LG_OK;
    for (const char *p = t; rc == LG_OK && *p != '\0'; p++) {
        if (p[0] != '%' || p[1] == '\0') {
            rc = lg_buf_append_byte(out, (uint8_t)*p);
            continue;
        }
        p++;
        if (*p == 'T') {
            rc = demo_append_topic(out, m->content, m->content_len);
        } else {
            size_t k = (size_t)(*p - '1');
            rc = lg_buf_append(out, w->kw[k], w->kw_len[k]);
        }
    }
    return rc;
}

/* Highest %N used by |t| (0 when none). */
static size_t demo_template_needs(const char *t)
{
    size_t need = 0;
    for (const char *p = strchr(t, '%'); p != NULL; p = strchr(p + 1, '%')) {
        if (p[1] >= '1' && p[1] <= '4' && (size_t)(p[1] - '0') > need) {
            need = (size_t)(p[1] - '0');
        }
    }
    return need;
}

int lg_chat_demo_compose(const struct lg_chat_request *req, struct lg_buf *out)
{
    const struct lg_chat_message *m = demo_last_user(req);
    if (m == NULL || demo_is_greeting(m->content, m->content_len)) {
        return lg_buf_append_str(out, demo_greeting);
    }
    if (demo_contains(m->content, m->content_len, "joke")) {
        return lg_buf_append_str(out, demo_joke);
    }
    struct demo_words w;
    demo_find_keywords(m->content, m->content_len, &w);
    uint64_t h = demo_hash(m->content, m->content_len);
    size_t nop = sizeof(demo_openers) / sizeof(demo_openers[0]);
    int rc = LG_OK;
    if (demo_is_fact_question(m->content, m->content_len)) {
        rc = demo_append_template(out,
                                  "I am the offline demo model, so I cannot look up facts "
                                  "about %T, but I can show how an answer would stream.",
                                  &w, m);
    } else {
        rc = demo_append_template(out, demo_openers[h % nop], &w, m);
    }
    size_t nbody = sizeof(demo_body) / sizeof(demo_body[0]);
    size_t used = 0;
    /* Walk the body sentences from a prompt-dependent start; keep those whose key words
     * exist, up to five sentences split in two paragraphs. */
    for (size_t i = 0; rc == LG_OK && i < nbody && used < 5; i++) {
        const char *t = demo_body[(i + (h >> 8)) % nbody];
        if (demo_template_needs(t) > w.n_kw) {
            continue;
        }
        rc = lg_buf_append_str(out, used == 2 ? "\n\n" : " ");
        if (rc == LG_OK) {
            rc = demo_append_template(out, t, &w, m);
        }
        used++;
    }
    if (rc == LG_OK && used == 0) {
        rc = lg_buf_append_str(out, " The answer depends on a few details you have not "
                                    "mentioned yet: what you are building, for whom, and what "
                                    "\"good\" looks like for you.");
    }
    const struct demo_lang *lang = demo_find_lang(m->content, m->content_len);
    if (rc == LG_OK && lang != NULL) {
        rc = demo_append_code(out, lang, &w);
    }
    size_t ncl = sizeof(demo_closers) / sizeof(demo_closers[0]);
    if (rc == LG_OK) {
        rc = lg_buf_append_str(out, demo_closers[(h >> 16) % ncl]);
    }
    return rc;
}

/* ---- the upcall -------------------------------------------------------------------------- */

static void demo_free(struct demo_upcall *d)
{
    if (d->timer != NULL) {
        event_free(d->timer);
    }
    lg_buf_deinit(&d->reply);
    lg_free(d);
}

static void demo_finish(struct demo_upcall *d, const char *finish_reason)
{
    struct lg_chat_outcome o = {
        .err = LG_OK,
        .finish_reason = finish_reason,
        .has_usage = true,
        .usage = {d->prompt_tokens, d->sent_tokens, 0},
        .attempts = 1,
    };
    d->cbs.on_done(&o, d->user_data);
    demo_free(d);
}

static void demo_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct demo_upcall *d = arg;
    if (d->pos == d->reply.len) {
        demo_finish(d, "stop");
        return;
    }
    if (d->sent_tokens == d->max_tokens) {
        demo_finish(d, "length");
        return;
    }
    const char *p = (const char *)d->reply.data + d->pos;
    size_t n = lg_chat_demo_token_len(p, d->reply.len - d->pos);
    d->pos += n;
    d->sent_tokens++;
    d->in_callback = true;
    d->cbs.on_delta(p, n, d->user_data);
    d->in_callback = false;
    if (d->cancelled) {
        demo_free(d);
        return;
    }
    event_add(d->timer, &d->pace);
}

static void demo_cancel(struct lg_chat_upcall *u)
{
    struct demo_upcall *d = (struct demo_upcall *)u;
    if (d->in_callback) {
        d->cancelled = true; /* freed by demo_on_timer once on_delta returns */
        return;
    }
    demo_free(d);
}

int lg_chat_demo_start(struct event_base *base, const struct lg_chat_call_params *params,
                       const struct lg_chat_provider_cbs *cbs, void *user_data,
                       struct lg_chat_upcall **out)
{
    struct demo_upcall *d = lg_calloc(1, sizeof(*d));
    if (d == NULL) {
        return LG_ERR_NOMEM;
    }
    d->base.cancel = demo_cancel;
    lg_buf_init(&d->reply, DEMO_REPLY_MAX_BYTES);
    int rc = lg_chat_demo_compose(params->req, &d->reply);
    if (rc != LG_OK) {
        goto out_free;
    }
    d->timer = evtimer_new(base, demo_on_timer, d);
    if (d->timer == NULL) {
        rc = LG_ERR_NOMEM;
        goto out_free;
    }
    d->max_tokens =
        params->req->has_max_tokens ? params->req->max_tokens : LG_CHAT_DEMO_MAX_REPLY_TOKENS;
    d->prompt_tokens = lg_chat_demo_prompt_tokens(params->req);
    d->pace.tv_sec = (time_t)(params->demo_pace_ms / 1000u);
    d->pace.tv_usec = (suseconds_t)((params->demo_pace_ms % 1000u) * 1000u);
    d->cbs = *cbs;
    d->user_data = user_data;
    /* The first token comes on the next loop turn, never from inside start. */
    struct timeval now = {0, 0};
    event_add(d->timer, &now);
    *out = &d->base;
    return LG_OK;
out_free:
    demo_free(d);
    return rc;
}
