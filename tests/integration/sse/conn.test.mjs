// llmgate-sse connection-level behaviour against the real llmgate-chat: the slow-header
// guard, keep-alive request caps, keys reload on SIGHUP, open development mode.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import crypto from 'node:crypto';
import {
  startChat, startSse, startProc, keysFile, request, createStream, readEvents, chatEvents, parseSse,
  until, run, killAll, SSE_BIN,
} from './harness.mjs';

// Opens a socket and resolves once the server closes it; |drip| keeps writing one header
// byte at a time while it is open.
function slowHeaders(addr) {
  const [host, port] = addr.split(':');
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), host);
    let timer = null;
    sock.on('connect', () => {
      sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      timer = setInterval(() => sock.write('a'), 50);
    });
    const done = () => { clearInterval(timer); sock.destroy(); resolve(true); };
    sock.on('end', done);
    sock.on('close', done);
    sock.on('error', done);
  });
}

// Writes |bytes| on a new socket and resolves everything the server sent until it closed.
function exchange(addr, bytes) {
  const [host, port] = addr.split(':');
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), host);
    let got = '';
    sock.on('connect', () => sock.write(bytes));
    sock.on('data', (d) => { got += d.toString('latin1'); });
    sock.on('error', () => {}); // a reset after the answer (unread body) still resolves below
    sock.on('close', () => resolve(got));
  });
}

// Splits a response text into {status, headers (lower-case names), body} (Content-Length).
function parseResponse(text) {
  const end = text.indexOf('\r\n\r\n');
  const lines = text.slice(0, end).split('\r\n');
  const headers = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  const len = Number(headers['content-length'] || 0);
  return { status: Number(lines[0].split(' ')[1]), headers,
    body: text.slice(end + 4, end + 4 + len), rest: text.slice(end + 4 + len) };
}

async function metric(addr, name) {
  const r = await request(addr, { path: '/metrics' });
  const m = r.body.match(new RegExp(`^${name} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : 0;
}

// Sends |n| keep-alive requests on one socket, one after the other; resolves the list of
// response heads and whether the server closed the socket afterwards.
function keepAlive(addr, n) {
  const [host, port] = addr.split(':');
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), host);
    const heads = [];
    let buf = '';
    let sent = 0;
    const next = () => { sent++; sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'); };
    sock.on('connect', next);
    sock.on('data', (d) => {
      buf += d.toString();
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const len = Number((head.match(/content-length: (\d+)/i) || [])[1] || 0);
        if (buf.length < end + 4 + len) return;
        heads.push(head);
        buf = buf.slice(end + 4 + len);
        if (sent < n) next();
      }
    });
    sock.on('close', () => resolve({ heads, closed: true }));
    sock.on('error', reject);
  });
}

async function main() {
  const chat = await startChat(['--demo-pace-ms', '5']);
  const keysPath = keysFile({ 'sk-one': 'one' });
  const sse = await startSse(chat.addrs.grpc, ['--keys', keysPath, '--header-timeout-ms', '300',
    '--max-requests-per-conn', '3']);
  const A = sse.addrs.http;
  const open = await startSse(chat.addrs.grpc, ['--max-body-bytes', '1000', '--max-header-bytes', '2000']);
  const O = open.addrs.http;

  const failed = await run('conn', [
    ['slow headers: a connection dripping header bytes is closed by the header deadline', async () => {
      assert.equal(await slowHeaders(A), true);
    }],
    ['keep-alive: the last allowed request says Connection: close and the socket closes', async () => {
      const r = await keepAlive(A, 3);
      assert.equal(r.heads.length, 3);
      assert.ok(r.heads.slice(0, 2).every((h) => !/connection: close/i.test(h)));
      assert.match(r.heads[2], /connection: close/i);
      assert.equal(r.closed, true);
    }],
    ['SIGHUP reloads the keys file: new key admitted, removed key refused', async () => {
      let s = await request(A, { method: 'POST', path: '/v1/chat/streams', headers: { Authorization: 'Bearer sk-two' }, body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(s.status, 401);
      const h = crypto.createHash('sha256').update('sk-two').digest('hex');
      fs.writeFileSync(keysPath, `sha256:${h} two\n`);
      sse.proc.kill('SIGHUP');
      await until(async () => (await request(A, { method: 'POST', path: '/v1/chat/streams', headers: { Authorization: 'Bearer sk-two' }, body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } })).status === 201, 'new key admitted');
      s = await request(A, { method: 'POST', path: '/v1/chat/streams', headers: { Authorization: 'Bearer sk-one' }, body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(s.status, 401);
      // A broken file keeps the previous keys.
      fs.writeFileSync(keysPath, 'garbage\n');
      sse.proc.kill('SIGHUP');
      await until(() => /keys_reload_failed/.test(sse.stderr()), 'reload failure logged');
      s = await request(A, { method: 'POST', path: '/v1/chat/streams', headers: { Authorization: 'Bearer sk-two' }, body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(s.status, 201);
    }],
    ['without a key or token, GET /events is 401 (the id alone is no credential)', async () => {
      const s = await createStream(A, { key: 'sk-two' });
      const r = await request(A, { path: `/v1/chat/streams/${s.stream_id}/events` });
      assert.equal(r.status, 401);
      assert.equal(JSON.parse(r.body).error.code, 'unauthenticated');
    }],
    ['open development mode: no credentials needed, loudly logged at start', async () => {
      assert.match(open.stderr(), /open_mode/);
      const s = await createStream(O);
      const r = await readEvents(O, s.events_url);
      assert.equal(chatEvents(r.body, s.stream_id).at(-1).event, 'done');
    }],
    ['--workers 2: processes share the port; tokens from one verify in the other', async () => {
      // No --token-secret: the leader makes one random secret before forking the workers.
      const w = await startSse(chat.addrs.grpc, ['--workers', '2', '--keys', keysFile({ 'sk-w': 'w' })]);
      const W = w.addrs.http;
      for (let i = 0; i < 20; i++) {
        const s = await createStream(W, { key: 'sk-w', prompt: `worker ${i}` });
        const r = await readEvents(W, s.events_url); // a new connection: either worker
        assert.equal(r.status, 200, r.body);
        assert.equal(chatEvents(r.body, s.stream_id).at(-1).event, 'done');
      }
      await w.stop(); // the leader forwards SIGTERM and reaps the worker: exit 0 overall
    }],
    ['chat service down: GET /events opens and ends with error unavailable (EventSource retries)', async () => {
      const c = await startChat(['--demo-pace-ms', '5']);
      const e = await startSse(c.addrs.grpc, []);
      const s = await createStream(e.addrs.http);
      await c.kill();
      const r = await readEvents(e.addrs.http, s.events_url);
      assert.equal(r.status, 200);
      const err = parseSse(r.body).find((b) => b.event === 'error');
      assert.ok(err && err.id === undefined, r.body);
      assert.equal(JSON.parse(err.data).data.code, 'unavailable');
      const o = await request(e.addrs.http, { method: 'POST', path: '/v1/chat/completions', body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(o.status, 503);
      assert.equal(JSON.parse(o.body).error.code, 'unavailable');
      await e.stop();
    }],
    ['refusals inside the HTTP parser are JSON too (headers, body, method, garbage, pipelined)', async () => {
      // These are refused by libevent's evhttp before any handler of ours runs; it writes an
      // HTML page, which the adapter swaps for a JSON error with the same status.
      const post = 'POST /v1/chat/streams HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n';
      const cases = [
        ['headers over --max-header-bytes', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(3000)}\r\n\r\n`, 400, 'bad_request', /2000-byte/],
        ['many headers over the cap', 'GET /healthz HTTP/1.1\r\nHost: x\r\n' + Array.from({ length: 60 }, (_, i) => `X-H${i}: ${'b'.repeat(50)}\r\n`).join('') + '\r\n', 400, 'bad_request', /headers/],
        ['request line over the cap', `GET /${'c'.repeat(3000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 400, 'bad_request', /request line/],
        ['Content-Length body over --max-body-bytes', `${post}Content-Length: 5000\r\n\r\n${'{'.repeat(5000)}`, 413, 'body_too_large', /1000-byte/],
        ['chunked body over the cap', `${post}Transfer-Encoding: chunked\r\n\r\n1388\r\n${'{'.repeat(5000)}\r\n0\r\n\r\n`, 413, 'body_too_large', /1000-byte/],
        ['unknown method', 'BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 405, 'method_not_allowed', /GET, HEAD, POST, OPTIONS/],
        ['method outside the allowed set', 'DELETE /healthz HTTP/1.1\r\nHost: x\r\n\r\n', 405, 'method_not_allowed', /GET/],
        ['not HTTP at all', 'GARBAGE\r\n\r\n', 400, 'bad_request', /malformed/],
        ['bad Content-Length', `${post}Content-Length: abc\r\n\r\n`, 400, 'bad_request', /malformed/],
      ];
      const before = await metric(O, 'llmgate_sse_http_4xx_total');
      for (const [what, bytes, status, code, msg] of cases) {
        const r = parseResponse(await exchange(O, bytes));
        assert.equal(r.status, status, what);
        assert.equal(r.headers['content-type'], 'application/json', what);
        assert.match(r.headers.connection, /close/i, what);
        const e = JSON.parse(r.body).error; // the OpenAI shape, which also has code + message
        assert.equal(e.code, code, what);
        assert.equal(e.type, 'invalid_request_error', what);
        assert.match(e.message, msg, what);
        if (status === 405) assert.equal(r.headers.allow, 'GET, HEAD, POST, OPTIONS');
        assert.ok(!/<HTML>/i.test(r.body), what);
      }
      // Pipelined after a good request: the first answer is untouched, the second is JSON.
      const two = await exchange(O, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' +
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(3000)}\r\n\r\n`);
      const first = parseResponse(two);
      assert.equal(first.status, 200);
      assert.equal(JSON.parse(first.body).status, 'ok');
      const second = parseResponse(first.rest);
      assert.equal(second.status, 400);
      assert.equal(JSON.parse(second.body).error.code, 'bad_request');
      assert.equal(await metric(O, 'llmgate_sse_http_4xx_total'), before + cases.length + 1);
      // The process is fine afterwards.
      const s = await createStream(O);
      assert.equal(chatEvents((await readEvents(O, s.events_url)).body, s.stream_id).at(-1).event, 'done');
    }],
    ['fd exhaustion: accepting pauses instead of spinning, and works again after', async () => {
      // RLIMIT_NOFILE 64: a burst of idle connections fills the descriptor table. Before the
      // fix, libevent's listener retried accept() at once and printed a warning each time
      // (7.7 million lines in 1.5 s); now each failure pauses accepting for 100 ms.
      const f = await startProc('/usr/bin/prlimit', ['--nofile=64:64', SSE_BIN, '--listen',
        '127.0.0.1:0', '--chat', chat.addrs.grpc, '--header-timeout-ms', '60000'], ['http'],
      'llmgate-sse (64 fds)');
      const [host, port] = f.addrs.http.split(':');
      const socks = [];
      for (let i = 0; i < 128; i++) {
        const s = net.connect(Number(port), host);
        s.on('error', () => {});
        socks.push(s);
      }
      const failures = () => (f.stderr().match(/"accept_failed"/g) || []).length;
      // Two failures: the first pause ended, accepting resumed, and paused again.
      await until(() => failures() >= 2, 'accept failed twice (paused and resumed)');
      for (const s of socks) s.destroy();
      await until(async () => (await request(f.addrs.http, { path: '/healthz' })).status === 200,
        'accepting again once descriptors are free');
      const n = failures();
      assert.ok(n < 1000, `${n} accept_failed lines: the listener spins`);
      assert.ok(!/Error from accept/.test(f.stderr()), 'libevent warned (no pause)');
      const s = await request(f.addrs.http, { method: 'POST', path: '/v1/chat/streams', body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(s.status, 201);
      await f.stop();
    }],
    ['tokens and keys never reach the logs', async () => {
      const s = await createStream(A, { key: 'sk-two' });
      const token = s.events_url.split('token=')[1];
      await readEvents(A, s.events_url);
      for (const p of [sse, open]) {
        assert.ok(!p.stderr().includes(token), 'token logged');
        assert.ok(!p.stderr().includes('sk-two') && !p.stderr().includes('sk-one'), 'key logged');
      }
    }],
  ]);
  for (const p of [open, sse, chat]) {
    try { await p.stop(); } catch (e) { console.log(`not ok - clean exit: ${e.message}`); return 1; }
  }
  return failed;
}

main().then((f) => process.exit(f ? 1 : 0), async (e) => {
  console.error(e);
  await killAll();
  process.exit(1);
});
