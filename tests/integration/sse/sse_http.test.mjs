// llmgate-sse over raw HTTP/1.1 sockets against the real llmgate-chat (demo provider):
// event format, resume without gap or duplicate (header, query, second replica), 204,
// resume_expired, heartbeats, identity and every refusal as a JSON 4xx.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  startChat, startSse, keysFile, request, parseSse, chatEvents, textOf, createStream,
  readEvents, until, run, killAll,
} from './harness.mjs';

const KEYS = { 'sk-alice': 'alice', 'sk-bob': 'bob' };
const ALICE = { Authorization: 'Bearer sk-alice' };
const BOB = { Authorization: 'Bearer sk-bob' };
const ORIGIN = 'http://allowed.example';
// Connects with SO_RCVBUF fixed small (set before connect: no window autotuning), sends the
// request and then never reads, until it is killed.
const SLOW_READER = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(('GET %s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' % sys.argv[3]).encode())
sys.stdin.read()
`;

async function main() {
  const keys = keysFile(KEYS);
  const common = ['--keys', keys, '--token-secret', 'integration-secret', '--cors-origins', ORIGIN,
    '--max-streams-per-user', '2', '--max-body-bytes', '4096', '--max-header-bytes', '2048'];
  const chat = await startChat(['--demo-pace-ms', '15']);
  const sse = await startSse(chat.addrs.grpc, [...common, '--heartbeat-ms', '300']);
  const sse2 = await startSse(chat.addrs.grpc, [...common, '--heartbeat-ms', '300']);
  const A = sse.addrs.http;
  const B = sse2.addrs.http;
  // Slow generation and short heartbeats: heartbeats fall between tokens; tiny replay buffer.
  const slowChat = await startChat(['--demo-pace-ms', '150', '--replay-max-events', '4']);
  const slow = await startSse(slowChat.addrs.grpc, ['--heartbeat-ms', '40']);
  const S = slow.addrs.http;

  let full = null; // the uninterrupted answer to DEFAULT_PROMPT, in order
  const fullText = async () => {
    if (full === null) {
      const s = await createStream(A, { key: 'sk-alice' });
      const r = await readEvents(A, s.events_url);
      full = textOf(chatEvents(r.body, s.stream_id));
    }
    return full;
  };

  const failed = await run('sse_http', [
    ['readyz turns ready once the chat service answers health checks', async () => {
      await until(async () => (await request(A, { path: '/readyz' })).status === 200, 'readyz');
      const h = await request(A, { path: '/healthz' });
      assert.equal(h.status, 200);
    }],
    ['GET / serves the demo page', async () => {
      const r = await request(A, { path: '/' });
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /text\/html/);
      assert.match(r.body, /EventSource|app\.js/);
      const js = await request(A, { path: '/app.js' });
      assert.match(js.body, /new EventSource/);
    }],
    ['POST /v1/chat/streams answers 201 with an unguessable id and events_url', async () => {
      const s = await createStream(A, { key: 'sk-alice' });
      assert.match(s.stream_id, /^[A-Za-z0-9_-]{22,64}$/);
      assert.ok(s.events_url.startsWith(`/v1/chat/streams/${s.stream_id}/events?token=`));
    }],
    ['a full stream: preamble comment, retry once, contiguous ids, start..done', async () => {
      const s = await createStream(A, { key: 'sk-alice' });
      const r = await readEvents(A, s.events_url);
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^text\/event-stream/);
      assert.match(r.headers['cache-control'], /no-cache/);
      assert.match(r.headers['cache-control'], /no-transform/);
      assert.equal(r.headers['x-accel-buffering'], 'no');
      assert.ok(r.body.startsWith(':'), 'first line is a comment');
      const blocks = parseSse(r.body);
      assert.equal(blocks.filter((b) => b.retry !== undefined).length, 1, 'retry once');
      for (const b of blocks.filter((x) => x.event === 'heartbeat')) {
        assert.equal(b.id, undefined, 'heartbeats carry no id');
      }
      const evs = chatEvents(r.body, s.stream_id);
      assert.deepEqual(evs.map((e) => e.seq), evs.map((_, i) => i + 1));
      assert.equal(evs[0].event, 'start');
      assert.equal(evs.at(-1).event, 'done');
      assert.ok(evs.filter((e) => e.event === 'content').length >= 3);
      const d = evs.at(-1).json.data;
      assert.equal(d.finish_reason, 'stop');
      assert.ok(d.usage.completion_tokens > 0);
      assert.equal(textOf(evs), await fullText());
    }],
    ['drop mid-stream, resume with Last-Event-ID: no gap, no duplicate', async () => {
      const s = await createStream(A, { key: 'sk-alice' });
      const first = await readEvents(A, s.events_url, {
        stopWhen: (evs) => evs.filter((e) => e.event === 'content').length >= 3,
      });
      assert.equal(first.dropped, true);
      const part1 = chatEvents(first.body.slice(0, first.body.lastIndexOf('\n\n') + 2), s.stream_id);
      const last = part1.at(-1).id;
      const second = await readEvents(A, s.events_url, { headers: { 'Last-Event-ID': last } });
      const part2 = chatEvents(second.body, s.stream_id);
      assert.equal(part2[0].seq, part1.at(-1).seq + 1, 'no gap, no duplicate');
      assert.equal(textOf(part1) + textOf(part2), await fullText());
      assert.equal(part2.at(-1).event, 'done');
    }],
    ['resume with the lastEventId query parameter', async () => {
      const s = await createStream(A, { key: 'sk-alice' });
      const first = await readEvents(A, s.events_url, {
        stopWhen: (evs) => evs.filter((e) => e.event === 'content').length >= 2,
      });
      const part1 = chatEvents(first.body.slice(0, first.body.lastIndexOf('\n\n') + 2), s.stream_id);
      const q = `&lastEventId=${encodeURIComponent(part1.at(-1).id)}`;
      const part2 = chatEvents((await readEvents(A, s.events_url + q)).body, s.stream_id);
      assert.equal(part2[0].seq, part1.at(-1).seq + 1);
      assert.equal(textOf(part1) + textOf(part2), await fullText());
    }],
    ['resume through a second adapter process (stateless replicas)', async () => {
      const s = await createStream(A, { key: 'sk-alice' });
      const first = await readEvents(A, s.events_url, {
        stopWhen: (evs) => evs.filter((e) => e.event === 'content').length >= 2,
      });
      const part1 = chatEvents(first.body.slice(0, first.body.lastIndexOf('\n\n') + 2), s.stream_id);
      const second = await readEvents(B, s.events_url, { headers: { 'Last-Event-ID': part1.at(-1).id } });
      const part2 = chatEvents(second.body, s.stream_id);
      assert.equal(part2[0].seq, part1.at(-1).seq + 1);
      assert.equal(textOf(part1) + textOf(part2), await fullText());
    }],
    ['a finished, fully delivered stream answers 204', async () => {
      const s = await createStream(A, { key: 'sk-alice' });
      const evs = chatEvents((await readEvents(A, s.events_url)).body, s.stream_id);
      const r = await readEvents(A, s.events_url, { headers: { 'Last-Event-ID': evs.at(-1).id } });
      assert.equal(r.status, 204);
    }],
    ['an unknown stream is 404 with a JSON error', async () => {
      const r = await request(A, { path: '/v1/chat/streams/0123456789abcdef0123456789abcdef/events', headers: ALICE });
      assert.equal(r.status, 404);
      assert.equal(JSON.parse(r.body).error.code, 'not_found');
    }],
    ["another user's stream is refused (403/404)", async () => {
      const s = await createStream(A, { key: 'sk-alice' });
      const r = await request(A, { path: `/v1/chat/streams/${s.stream_id}/events`, headers: BOB });
      assert.ok(r.status === 403 || r.status === 404, `status ${r.status}`);
      assert.ok(JSON.parse(r.body).error.code);
      const c = await request(A, { method: 'POST', path: `/v1/chat/streams/${s.stream_id}/cancel`, headers: BOB, body: {} });
      assert.ok(c.status === 403 || c.status === 404, `cancel status ${c.status}`);
    }],
    ['identity: 401 without credentials, 403 for a token of another stream', async () => {
      const s = await createStream(A, { key: 'sk-alice' });
      const t = await createStream(A, { key: 'sk-alice' });
      let r = await request(A, { path: `/v1/chat/streams/${s.stream_id}/events` });
      assert.equal(r.status, 401);
      assert.equal(JSON.parse(r.body).error.code, 'unauthenticated');
      r = await request(A, { method: 'POST', path: '/v1/chat/streams', headers: { Authorization: 'Bearer nope' }, body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(r.status, 401);
      const tok = t.events_url.split('token=')[1];
      r = await request(A, { path: `/v1/chat/streams/${s.stream_id}/events?token=${tok}` });
      assert.equal(r.status, 403);
      r = await request(A, { path: `/v1/chat/streams/${s.stream_id}/events?token=${tok.slice(0, -2)}00` });
      assert.equal(r.status, 401);
    }],
    ['a malformed Last-Event-ID is 400 JSON', async () => {
      const s = await createStream(A, { key: 'sk-alice' });
      for (const bad of ['x', `${s.stream_id}.`, `${s.stream_id}.-1`, `other.3`]) {
        const r = await request(A, { path: s.events_url, headers: { 'Last-Event-ID': bad } });
        assert.equal(r.status, 400, bad);
        assert.equal(JSON.parse(r.body).error.code, 'bad_last_event_id');
      }
    }],
    ['limits: 413, 400, 415, 405, 404 and 429 with JSON errors', async () => {
      const big = { model: 'demo', messages: [{ role: 'user', content: 'x'.repeat(5000) }] };
      let r = await request(A, { method: 'POST', path: '/v1/chat/streams', headers: ALICE, body: big });
      assert.equal(r.status, 413);
      assert.equal(JSON.parse(r.body).error.code, 'body_too_large');
      r = await request(A, { method: 'POST', path: '/v1/chat/streams', headers: { ...ALICE, 'Content-Type': 'text/plain' }, body: '{}' });
      assert.equal(r.status, 415);
      assert.equal(JSON.parse(r.body).error.code, 'unsupported_media_type');
      r = await request(A, { method: 'POST', path: '/v1/chat/streams', headers: { ...ALICE, 'Content-Type': 'application/json' }, body: '{"model":' });
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.body).error.code, 'invalid_request');
      const deep = '{"model":"demo","messages":[{"role":"user","content":"x"}],"x":' + '['.repeat(40) + ']'.repeat(40) + '}';
      r = await request(A, { method: 'POST', path: '/v1/chat/streams', headers: { ...ALICE, 'Content-Type': 'application/json' }, body: deep });
      assert.equal(r.status, 413);
      assert.match(JSON.parse(r.body).error.message, /nested/);
      r = await request(A, { method: 'GET', path: '/v1/chat/streams', headers: ALICE });
      assert.equal(r.status, 405);
      assert.ok(JSON.parse(r.body).error);
      r = await request(A, { path: '/nope' });
      assert.equal(r.status, 404);
      assert.ok(JSON.parse(r.body).error);
      // Two streams per user: the third concurrent one is refused with 429.
      const open = [];
      const held = [];
      for (let i = 0; i < 2; i++) {
        const s = await createStream(A, { key: 'sk-alice', prompt: 'long ' + 'words '.repeat(50) });
        let seen = false;
        open.push(readEvents(A, s.events_url, { stopWhen: (evs, t) => { seen = true; return false; } }));
        held.push(() => seen);
      }
      await until(() => held.every((f) => f()), 'two streams open');
      const s3 = await createStream(A, { key: 'sk-alice' });
      r = await request(A, { path: s3.events_url });
      assert.equal(r.status, 429);
      assert.equal(JSON.parse(r.body).error.code, 'too_many_streams');
      await Promise.all(open);
      // Headers over the cap are refused before any handler runs.
      r = await request(A, { path: '/healthz', headers: { 'X-Big': 'y'.repeat(4000) } });
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.body).error.code, 'bad_request');
    }],
    ['cancel mid-stream: 200 and the stream ends with finish_reason cancelled', async () => {
      const s = await createStream(A, { key: 'sk-alice', prompt: 'Tell a long story about ' + 'rivers '.repeat(40) });
      let cancelled = null;
      const r = await readEvents(A, s.events_url, {
        stopWhen: (evs) => {
          if (!cancelled && evs.some((e) => e.event === 'content')) {
            cancelled = request(A, { method: 'POST', path: `/v1/chat/streams/${s.stream_id}/cancel`, headers: ALICE, body: {} });
          }
          return false;
        },
      });
      const c = await cancelled;
      assert.equal(c.status, 200, c.body);
      const evs = chatEvents(r.body, s.stream_id);
      assert.equal(evs.at(-1).event, 'done');
      assert.equal(evs.at(-1).json.data.finish_reason, 'cancelled');
    }],
    ['CORS: explicit allowed origin with credentials; others refused', async () => {
      let r = await request(A, { method: 'OPTIONS', path: '/v1/chat/streams', headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST' } });
      assert.equal(r.status, 204);
      assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
      assert.equal(r.headers['access-control-allow-credentials'], 'true');
      r = await request(A, { path: '/healthz', headers: { Origin: ORIGIN } });
      assert.equal(r.headers['access-control-allow-origin'], ORIGIN);
      r = await request(A, { method: 'OPTIONS', path: '/v1/chat/streams', headers: { Origin: 'http://evil.example' } });
      assert.equal(r.status, 403);
      assert.equal(r.headers['access-control-allow-origin'], undefined);
    }],
    ['heartbeats (event: heartbeat, no id) arrive while a stream is idle', async () => {
      const s = await createStream(S, { prompt: 'short' });
      const r = await readEvents(S, s.events_url);
      const blocks = parseSse(r.body);
      const firstId = blocks.findIndex((b) => b.id !== undefined);
      const lastId = blocks.findLastIndex((b) => b.id !== undefined);
      const hb = blocks.slice(firstId, lastId).filter((b) => b.event === 'heartbeat');
      assert.ok(hb.length >= 1, 'a heartbeat between two chat events');
      for (const b of hb) {
        assert.equal(b.id, undefined);
        assert.deepEqual(JSON.parse(b.data), { type: 'heartbeat', data: {} });
      }
    }],
    ['an id older than the replay buffer gets an error event resume_expired', async () => {
      const s = await createStream(S, { prompt: 'Explain replay buffers in some detail please' });
      const evs = chatEvents((await readEvents(S, s.events_url)).body, s.stream_id);
      assert.ok(evs.length > 6, 'longer than the replay buffer');
      const r = await readEvents(S, s.events_url, { headers: { 'Last-Event-ID': `${s.stream_id}.1` } });
      assert.equal(r.status, 200);
      const err = parseSse(r.body).find((b) => b.event === 'error');
      assert.ok(err, r.body);
      assert.equal(JSON.parse(err.data).data.code, 'resume_expired');
    }],
    ['250 concurrent streams (more than one HTTP/2 connection carries) all complete', async () => {
      const N = 250;
      const c = await startChat(['--demo-pace-ms', '20']);
      const e = await startSse(c.addrs.grpc, ['--max-streams-per-user', '1000']);
      const E = e.addrs.http;
      const made = await Promise.all(Array.from({ length: N }, (_, i) =>
        createStream(E, { prompt: `short ${i}` })));
      const results = await Promise.all(made.map((s) => readEvents(E, s.events_url)));
      await e.stop();
      await c.stop();
      results.forEach((r, i) => {
        assert.equal(r.status, 200);
        const evs = chatEvents(r.body, made[i].stream_id);
        assert.equal(evs[0].event, 'start');
        assert.equal(evs.at(-1).event, 'done');
      });
    }],
    ['a client that stops reading is cut off at the output bound (memory stays bounded)', async () => {
      // Heartbeats every millisecond on an idle stream fill the client's path quickly; the
      // client never reads, so the adapter's queue reaches --outbuf-bytes and it disconnects.
      const c = await startChat(['--demo-pace-ms', '10000']);
      const e = await startSse(c.addrs.grpc, ['--heartbeat-ms', '1', '--outbuf-bytes', '4096']);
      const E = e.addrs.http;
      const st = await createStream(E, { prompt: 'slow reader' });
      // A reader with a tiny, fixed receive buffer (no autotuning) that never reads.
      const [host, port] = E.split(':');
      const reader = spawn('/usr/bin/python3', ['-c', SLOW_READER, host, port, st.events_url],
        { stdio: ['pipe', 'ignore', 'inherit'] });
      const metric = async (n) => Number(((await request(E, { path: '/metrics' })).body
        .match(new RegExp(`^${n} (\\d+)`, 'm')) || [])[1]);
      await until(async () => (await metric('llmgate_sse_slow_clients_total')) >= 1, 'slow client cut off', 60000);
      await until(async () => (await metric('llmgate_sse_streams_open')) === 0, 'stream released');
      reader.kill('SIGKILL');
      await e.stop();
      await c.stop();
    }],
    ['same-origin requests need no allow-list entry', async () => {
      const r = await request(A, { method: 'POST', path: '/v1/chat/streams', headers: { ...ALICE, Origin: `http://${A}` }, body: { model: 'demo', messages: [{ role: 'user', content: 'x' }] } });
      assert.equal(r.status, 201);
      assert.equal(r.headers['access-control-allow-origin'], undefined);
    }],
    ['metrics count events, resumes and refusals', async () => {
      const r = await request(A, { path: '/metrics' });
      assert.equal(r.status, 200);
      const v = (n) => Number((r.body.match(new RegExp(`^${n} (\\d+)`, 'm')) || [])[1]);
      assert.ok(v('llmgate_sse_events_sent_total') > 0);
      assert.ok(v('llmgate_sse_resumes_total') > 0);
      assert.ok(v('llmgate_sse_http_4xx_total') > 0);
    }],
  ]);
  for (const p of [slow, slowChat, sse2, sse, chat]) {
    try { await p.stop(); } catch (e) { console.log(`not ok - clean exit: ${e.message}`); return 1; }
  }
  return failed;
}

main().then((f) => process.exit(f ? 1 : 0), async (e) => {
  console.error(e);
  await killAll();
  process.exit(1);
});
