#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// tests/integration/clickhouse/chdb/chdb_http.js DIR PORT
//
// Current ClickHouse for the tests, where only Debian's 18.16 server can be installed: chDB
// (npm @chdb/lib-linux-x64-gnu: libchdb.so, ClickHouse 26.x built as a library, the engine
// of `clickhouse local`, and its Node binding; the `chdb` wrapper package is not used
// because its other platforms' packages are not in this registry, so `npm ci` cannot
// verify its lock file) behind
// the part of ClickHouse's HTTP interface that llmgate and its tests use. Every statement
// runs in the real current engine: its parser, analyzer, table engines (MergeTree family,
// Null, materialized views), functions and error messages. Only this HTTP layer is ours; it
// follows the documented interface (https://clickhouse.com/docs/en/interfaces/http):
//
//   GET /ping                     "Ok.\n"
//   GET|POST /?query=SQL          the query is the `query` parameter, then a newline and
//                                 the body (INSERT data); without `query`, the body
//   Content-Encoding: gzip|deflate  an INSERT's body is decompressed by ClickHouse itself
//                                 (written to a file, then INSERT ... FROM INFILE ...
//                                 COMPRESSION: the engine's own read buffer, as its HTTP
//                                 server uses for request bodies); any other body by zlib.
//                                 A RowBinary/Native body goes through such a file too
//                                 (COMPRESSION 'none'): it is not text to append to a query
//   other parameters              settings for this request only (restored afterwards);
//                                 `database` as USE; `query_id`, `default_format`,
//                                 `wait_end_of_query` and the like are accepted
//   auth                          X-ClickHouse-User/-Key, basic auth, or user/password
//                                 parameters: "default" (no password) or "llmgate" with
//                                 "llmgate-secret", as tests/integration/clickhouse/start.sh
//   result                        200 and the output (TabSeparated unless the query says
//                                 FORMAT); an error is "Code: N. DB::Exception: ..." with the
//                                 status ClickHouse's HTTPHandler gives that code
//                                 (exceptionCodeToHTTPStatus: 400 bad input, 404 unknown
//                                 object, 403 auth, 500 otherwise) and the header
//                                 X-ClickHouse-Exception-Code.
//
// What this does not reproduce: the server's own HTTP quirks (progress headers, exceptions
// written into a 200 response after streaming began, multi-statement rejection, sessions,
// chunked transfer of the body into the parser while it arrives).
// Those are covered by the 18.16 server, which the same tests also run against.
//
// Requests run one at a time (one engine connection; settings are per request). Listens on
// 127.0.0.1 only. SIGTERM/SIGINT close the connection and exit 0. Data lives in DIR/data, so
// a restart with the same DIR keeps the tables.
'use strict';

const fs = require('fs');
const http = require('http');
const zlib = require('zlib');
const path = require('path');
const chdb = require('@chdb/lib-linux-x64-gnu');

const dir = process.argv[2];
const port = Number(process.argv[3]);
if (!dir || !Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: chdb_http.js DIR PORT\n');
  process.exit(2);
}

const USERS = { default: '', llmgate: 'llmgate-secret' };
// URL parameters of the HTTP interface that are not settings.
const NOT_SETTINGS = new Set(['query', 'user', 'password', 'quota_key', 'database',
  'default_format', 'query_id', 'session_id', 'session_timeout', 'session_check',
  'compress', 'decompress', 'buffer_size', 'wait_end_of_query', 'stacktrace', 'role']);

// ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp),
// by error name; the engine itself gives each name's code (errorCodeToName) at start.
const STATUS_BY_NAME = new Map([
  [401, ['REQUIRED_PASSWORD']],
  [403, ['UNKNOWN_USER', 'WRONG_PASSWORD', 'AUTHENTICATION_FAILED', 'SET_NON_GRANTED_ROLE',
    'ACCESS_DENIED']],
  [400, ['BAD_ARGUMENTS', 'CANNOT_COMPILE_REGEXP', 'CANNOT_PARSE_TEXT',
    'CANNOT_PARSE_ESCAPE_SEQUENCE', 'CANNOT_PARSE_QUOTED_STRING', 'CANNOT_PARSE_DATE',
    'CANNOT_PARSE_DATETIME', 'CANNOT_PARSE_NUMBER', 'CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING',
    'CANNOT_PARSE_IPV4', 'CANNOT_PARSE_IPV6', 'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
    'CANNOT_PARSE_UUID', 'DUPLICATE_COLUMN', 'ILLEGAL_COLUMN', 'UNKNOWN_ELEMENT_IN_AST',
    'UNKNOWN_TYPE_OF_AST_NODE', 'THERE_IS_NO_COLUMN', 'TOO_DEEP_AST', 'TOO_BIG_AST',
    'UNEXPECTED_AST_STRUCTURE', 'SYNTAX_ERROR', 'INCORRECT_DATA', 'TYPE_MISMATCH',
    'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE']],
  [404, ['UNKNOWN_TABLE', 'UNKNOWN_FUNCTION', 'UNKNOWN_IDENTIFIER', 'UNKNOWN_TYPE',
    'UNKNOWN_STORAGE', 'UNKNOWN_DATABASE', 'UNKNOWN_SETTING', 'UNKNOWN_DIRECTION_OF_SORTING',
    'UNKNOWN_AGGREGATE_FUNCTION', 'UNKNOWN_FORMAT', 'UNKNOWN_DATABASE_ENGINE',
    'UNKNOWN_TYPE_OF_QUERY', 'UNKNOWN_ROLE']],
  [413, ['QUERY_IS_TOO_LARGE']],
  [501, ['NOT_IMPLEMENTED']],
  [503, ['SOCKET_TIMEOUT', 'CANNOT_OPEN_FILE', 'CANNOT_SCHEDULE_TASK']],
  [411, ['HTTP_LENGTH_REQUIRED']],
  [408, ['TIMEOUT_EXCEEDED']],
  [415, ['UNSUPPORTED_MEDIA_TYPE']],
].flatMap(([st, names]) => names.map((n) => [n, st])));

const conn = chdb.CreateConnection(path.join(dir, 'data'));
// One statement (or several) in the engine; the output text, or throws its error.
function query(sql, format = 'TabSeparated') {
  return chdb.QueryWithConnection(conn, sql, format);
}
let bodies = 0; // compressed INSERT bodies written so far (their file names)
const CODE = new Map(); // error name -> code
const STATUS = new Map(); // error code -> HTTP status
for (const line of query(
  "SELECT number, errorCodeToName(number) FROM numbers(2000) WHERE errorCodeToName(number) != ''")
  .split('\n')) {
  const [code, name] = line.split('\t');
  if (name === undefined) continue;
  CODE.set(name, Number(code));
  if (STATUS_BY_NAME.has(name)) STATUS.set(Number(code), STATUS_BY_NAME.get(name));
}

// An error the engine did not raise (this layer's own checks), in ClickHouse's form.
function chError(name, text) {
  return `Code: ${CODE.get(name) ?? 0}. DB::Exception: ${text}. (${name})`;
}

function quote(v) {
  return "'" + String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'") + "'";
}

function isIdent(v) {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(v);
}

function errorReply(res, msg) {
  const text = String(msg).replace(/^Query failed: /, '');
  const m = /^Code: (\d+)\./.exec(text);
  const code = m ? Number(m[1]) : 0;
  res.writeHead(m ? (STATUS.get(code) || 500) : 500, {
    'Content-Type': 'text/plain; charset=UTF-8',
    'X-ClickHouse-Exception-Code': String(code),
  });
  res.end(text.endsWith('\n') ? text : text + '\n');
}

function authorized(req, params) {
  let user = req.headers['x-clickhouse-user'];
  let key = req.headers['x-clickhouse-key'];
  const basic = /^Basic (.+)$/.exec(req.headers.authorization || '');
  if (user === undefined && basic) {
    const s = Buffer.from(basic[1], 'base64').toString();
    const i = s.indexOf(':');
    user = i < 0 ? s : s.slice(0, i);
    key = i < 0 ? '' : s.slice(i + 1);
  }
  if (user === undefined) {
    user = params.get('user') ?? 'default';
    key = params.get('password') ?? '';
  }
  return Object.prototype.hasOwnProperty.call(USERS, user) && USERS[user] === (key ?? '');
}

// Runs |sql| with |settings| (name -> value) and |db| in force, restores them, returns the
// output bytes or throws the engine's error.
function run(sql, settings, db) {
  const restore = [];
  try {
    for (const [k, v] of settings) {
      const r = query(`SELECT changed, value FROM system.settings WHERE name = ${quote(k)}`);
      if (r === '') throw new Error(chError('UNKNOWN_SETTING', `Unknown setting '${k}'`));
      const [changed, value] = r.replace(/\n$/, '').split('\t');
      restore.push(changed === '1' ? `SET ${k} = ${quote(value)}` : `SET ${k} = DEFAULT`);
      query(`SET ${k} = ${quote(v)}`);
    }
    if (db !== null) {
      restore.push(`USE ${query('SELECT currentDatabase()').trim()}`);
      query(`USE ${db}`);
    }
    return Buffer.from(query(sql));
  } finally {
    for (const r of restore.reverse()) query(r);
  }
}

function handle(req, res, body) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/ping') {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' });
    res.end('Ok.\n');
    return;
  }
  if (url.pathname !== '/') {
    errorReply(res, chError('NOT_IMPLEMENTED', `no handler for ${url.pathname} in this test server`));
    return;
  }
  const params = url.searchParams;
  if (!authorized(req, params)) {
    errorReply(res, chError('AUTHENTICATION_FAILED',
      'Authentication failed: password is incorrect, or there is no user with such name'));
    return;
  }
  const enc = (req.headers['content-encoding'] || '').toLowerCase();
  const q = params.get('query');
  // INSERT INTO t [(cols)] FORMAT F with a compressed body: ClickHouse decompresses it.
  const ins = q === null ? null
    : /^\s*INSERT\s+INTO\s+([A-Za-z_][\w.]*(?:\s*\([^()]*\))?)\s+FORMAT\s+(\w+)\s*$/i.exec(q);
  // A binary body (RowBinary, Native) cannot go through the query text either: it goes
  // through a file as it came, which the engine reads without decompressing.
  const binary = ins !== null && /^(RowBinary|Native)/i.test(ins[2]) && enc === '';
  const infile = ((enc === 'gzip' || enc === 'deflate') || binary) && ins !== null && body.length > 0
    ? path.join(dir, `body-${process.pid}-${++bodies}.${binary ? 'bin' : enc}`) : null;
  try {
    if (infile !== null) {
      // decompressed by the engine, below
    } else if (enc === 'gzip') body = zlib.gunzipSync(body);
    else if (enc === 'deflate') body = zlib.inflateSync(body);
    else if (enc !== '' && enc !== 'identity') {
      throw new Error(chError('NOT_IMPLEMENTED', `Content-Encoding ${enc} is not supported by this test server`));
    }
  } catch (e) {
    errorReply(res, /^Code: /.test(e.message) ? e.message
      : chError('CANNOT_DECOMPRESS', `cannot decompress the body: ${e.message}`));
    return;
  }
  const settings = [];
  for (const [k, v] of params) {
    if (NOT_SETTINGS.has(k)) continue;
    if (k.startsWith('param_') || !isIdent(k)) {
      errorReply(res, chError('NOT_IMPLEMENTED', `parameter ${k} is not supported by this test server`));
      return;
    }
    settings.push([k, v]);
  }
  const db = params.get('database');
  if (db !== null && !isIdent(db)) {
    errorReply(res, chError('UNKNOWN_DATABASE', `Database ${db} does not exist`));
    return;
  }
  const sql = infile !== null
    ? `INSERT INTO ${ins[1]} FROM INFILE ${quote(infile)} COMPRESSION ${quote(binary ? 'none' : enc)} FORMAT ${ins[2]}`
    : q === null ? body.toString() : (body.length ? q + '\n' + body.toString() : q);
  if (sql.trim() === '') {
    errorReply(res, chError('SYNTAX_ERROR', 'Empty query'));
    return;
  }
  try {
    if (infile !== null) fs.writeFileSync(infile, body);
    const out = run(sql, settings, db);
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Query-Id': params.get('query_id') || '',
    });
    res.end(out);
  } catch (e) {
    errorReply(res, e.message);
  } finally {
    if (infile !== null) fs.rmSync(infile, { force: true });
  }
}

const server = http.createServer((req, res) => {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  // The engine's calls are synchronous: one request runs to its end before the next.
  req.on('end', () => {
    try {
      handle(req, res, Buffer.concat(parts));
    } catch (e) {
      if (!res.headersSent) errorReply(res, chError('STD_EXCEPTION', e.message));
      else res.destroy();
    }
  });
});
server.keepAliveTimeout = 10000;
server.requestTimeout = 0; // large INSERT bodies on a slow machine
server.listen(port, '127.0.0.1');

function stop() {
  server.close();
  chdb.CloseConnection(conn);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
