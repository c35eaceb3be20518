// llmgate-sse connection-level behaviour against the real llmgate-chat: the slow-header
// guard, keep-alive request caps, keys reload on SIGHUP, open development mode.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import crypto from 'node:crypto';
import {
  startChat, startSse, keysFile, request, createStream, readEvents, chatEvents, parseSse, until,
  run, killAll,
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
  const open = await startSse(chat.addrs.grpc, []);
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
