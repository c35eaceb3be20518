/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lg_chclient: ClickHouse over HTTP with libcurl: request setup, response parsing and
 * failure classification (what to retry, what to dead-letter).
 *
 * Purpose: the shipper (curl multi, its own thread) and the CLI / usage queries (curl easy,
 * off any request loop) talk to ClickHouse through these functions. Works with 18.16 and
 * current servers: queries go in the body (POST), INSERTs in ?query= with the data in the
 * body; gzip uses Content-Encoding (18.16 supports it); auth by the URL's user:password
 * (basic) or X-ClickHouse-User / X-ClickHouse-Key; TLS when the URL is https, verified against
 * the system's CAs or opts.ca_file.
 *
 * Success is HTTP 200 *and* no exception text in the body: ClickHouse can start a 200 reply
 * and append "Code: N, e.displayText() = DB::Exception: ..." (18.16) or
 * "Code: N. DB::Exception: ..." (current) at the end when the query fails mid-stream.
 *
 * Thread: parsing and classification are pure. lg_chclient_query blocks (curl_easy) and is
 * for the CLI and worker threads only, never an event-loop thread.
 * Ownership: results fill caller-owned structs and lg_bufs. Strings in opts are borrowed.
 * Errors: LG_ERR_UPSTREAM (ClickHouse answered with an error), LG_ERR_UNAVAILABLE
 * (connect failed), LG_ERR_TIMEOUT, LG_ERR_IO (connection broke), LG_ERR_TOO_LARGE
 * (response past its cap), LG_ERR_NOMEM, LG_ERR_INVALID.
 */
#ifndef LG_CHCLIENT_H
#define LG_CHCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lg_buf;
struct curl_slist;

/* Connection settings. */
struct lg_chclient_opts {
    const char *url;        /* http(s)://[user:pass@]host:port (no path/query) */
    const char *user;       /* X-ClickHouse-User, or NULL */
    const char *key;        /* X-ClickHouse-Key, or NULL */
    long timeout_ms;        /* whole request */
    long connect_timeout_ms;
    const char *ca_file;    /* https: PEM bundle of the CAs to trust (CURLOPT_CAINFO), for a
                               ClickHouse with a private CA; NULL = the system's store. The
                               server's certificate and name are always verified. */
};

/* What ClickHouse said. */
struct lg_chclient_result {
    long http_status; /* 0 when no HTTP answer */
    int ch_code;      /* exception code, 0 when none */
    long row;         /* 1-based row named by "(at row N)", 0 when none */
    char message[512];/* exception text (truncated, one line), "" when none */
};

enum lg_chclient_verdict {
    LG_CHCLIENT_OK = 0,      /* landed */
    LG_CHCLIENT_RETRY = 1,   /* transient or unknown: back off and retry, never drop */
    LG_CHCLIENT_BAD_ROW = 2, /* ClickHouse rejected one row's data (result.row says which) */
    LG_CHCLIENT_BAD_DATA = 3,/* data rejected, row not named */
};

/* Parses an HTTP answer. Fills |out|; returns LG_OK when the request succeeded (status 200
 * and no exception in |body|), else LG_ERR_UPSTREAM. */
int lg_chclient_parse_response(long http_status, const uint8_t *body, size_t len,
                               struct lg_chclient_result *out);
/* Decides what the shipper does with a parsed failure. Parse/type errors (codes 6, 26,
 * 27, 38, 41, 53, 69, 70, 72, 117, 131) are the data's fault; everything else (5xx,
 * too many parts 252, memory limit 241, read-only 242, too many queries 202, timeouts,
 * unknown table...) is retried, so an operator can fix the server without losing rows. */
enum lg_chclient_verdict lg_chclient_classify(const struct lg_chclient_result *r);
/* For a curl failure |curl_code| (CURLcode): LG_ERR_UNAVAILABLE when the request certainly
 * never reached the server (connect/resolve failed), else LG_ERR_TIMEOUT / LG_ERR_IO, where
 * *|ambiguous| is set: the insert may have landed, check its batch_id before resending. */
int lg_chclient_curl_error(int curl_code, bool *ambiguous);

/* Prepares |easy| (a CURL *) for one POST: URL = opts->url + "/?" + |params| (already
 * URL-encoded, may be NULL), body |body|/|len| (borrowed until the transfer ends), response
 * into |resp| (bounded by its max). |gzip_body| adds Content-Encoding: gzip. The header
 * list is returned in |*headers_out| (free with curl_slist_free_all after the transfer).
 * |url_buf| receives the URL (borrowed by curl until the transfer ends). */
int lg_chclient_setup(void *easy, const struct lg_chclient_opts *o, const char *params,
                      const void *body, size_t len, bool gzip_body, struct lg_buf *resp,
                      struct lg_buf *url_buf, struct curl_slist **headers_out);

/* A body produced on demand (lg_chclient_setup_reader): |fn| copies up to |cap| bytes of
 * the body from offset |off| into |dst| and returns how many (0 only past the end). */
struct lg_chclient_reader {
    size_t (*fn)(void *ud, size_t off, uint8_t *dst, size_t cap);
    void *ud;
    size_t len; /* the whole body's length (Content-Length) */
    size_t off; /* next offset curl asks for; set to 0 by setup */
};
/* As lg_chclient_setup, but curl pulls the body through |rd| (borrowed until the transfer
 * ends; so are the bytes |fn| reads): no copy of the body is made up front. A transfer
 * that would have to rewind the body fails (no silent resend of an INSERT). The same easy
 * handle may be set up with lg_chclient_setup afterwards (POSTFIELDS wins over the read
 * function). */
int lg_chclient_setup_reader(void *easy, const struct lg_chclient_opts *o, const char *params,
                             struct lg_chclient_reader *rd, bool gzip_body, struct lg_buf *resp,
                             struct lg_buf *url_buf, struct curl_slist **headers_out);

/* True when |url|'s host is a loopback address: "localhost" (RFC 6761), 127.0.0.0/8, ::1 or
 * ::ffff:127.x.y.z. Names are not resolved. False for anything unparsable. Pure. */
bool lg_chclient_url_is_loopback(const char *url);

/* Appends |s| URL-encoded (RFC 3986 unreserved kept) to |out|. */
int lg_chclient_urlencode(struct lg_buf *out, const char *s);
/* Appends |s| as a ClickHouse single-quoted string literal ('...', with \ and ' and control
 * bytes escaped), the one safe way to put user input into SQL on 18.16, which has no query
 * parameters. */
int lg_chclient_quote(struct lg_buf *out, const char *s, size_t len);

/* Runs one statement |sql| (POST body) and reads the answer into |resp|. Blocking. LG_OK or
 * an error with |res| filled (may be NULL). */
int lg_chclient_query(const struct lg_chclient_opts *o, const char *sql, struct lg_buf *resp,
                      struct lg_chclient_result *res);
/* INSERT: ?query=|insert_sql| and |data| as the body. Blocking. */
int lg_chclient_insert(const struct lg_chclient_opts *o, const char *insert_sql,
                       const void *data, size_t len, bool gzip_body,
                       struct lg_chclient_result *res);

#endif /* LG_CHCLIENT_H */
