// Shared harness of the llmgate-sse integration tests: starts real processes (llmgate-chat
// with the demo provider, llmgate-sse) on 127.0.0.1 port 0, reads their `listening` lines,
// speaks raw HTTP/1.1 and parses text/event-stream. No sleeps: every wait polls a condition
// against a deadline.
import { spawn } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import assert from 'node:assert/strict';

export const SSE_BIN = process.env.LLMGATE_SSE_BIN;
export const CHAT_BIN = process.env.LLMGATE_CHAT_BIN;
export const WAIT_MS = 30000; // generous deadline for any single condition (ASan builds are slow)

const procs = new Set();
// Whatever a failed test left running dies with the test process (no orphans).
process.on('exit', () => {
  for (const p of procs) p.kill('SIGKILL');
});

export function tmpDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// Starts |bin| with |args|; resolves {proc, addrs, stderr(), stop()} once every name in
// |names| has printed `listening <name> <HOST:PORT>`.
export function startProc(bin, args, names, label) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    procs.add(proc);
    const addrs = {};
    let out = '';
    let err = '';
    let done = false;
    const timer = setTimeout(() => {
      if (!done) {
        done = true;
        proc.kill('SIGKILL');
        reject(new Error(`${label}: no listening line within ${WAIT_MS} ms\n${err}`));
      }
    }, WAIT_MS);
    proc.stdout.on('data', (d) => {
      out += d.toString();
      for (const m of out.matchAll(/^listening (\S+) (\S+)$/gm)) addrs[m[1]] = m[2];
      if (!done && names.every((n) => addrs[n])) {
        done = true;
        clearTimeout(timer);
        resolve(handle);
      }
    });
    proc.stderr.on('data', (d) => { err += d.toString(); });
    proc.on('exit', (code, sig) => {
      procs.delete(proc);
      handle.exitCode = code;
      handle.exitSignal = sig;
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`${label} exited early (${code}/${sig})\n${err}`));
      }
    });
    const handle = {
      proc, addrs, label,
      stderr: () => err,
      exited: new Promise((r) => proc.on('exit', () => r())),
      // SIGTERM and wait; asserts a clean exit (ASan/LSan reports make the exit code non-zero).
      async stop({ check = true } = {}) {
        if (handle.exitCode === undefined && handle.exitSignal === undefined) {
          proc.kill('SIGTERM');
          await withDeadline(handle.exited, `${label} did not exit after SIGTERM`);
        }
        if (check && handle.exitCode !== 0) {
          throw new Error(`${label} exit ${handle.exitCode}/${handle.exitSignal}\n${err.slice(-4000)}`);
        }
      },
      async kill() {
        proc.kill('SIGKILL');
        await withDeadline(handle.exited, `${label} did not die`);
      },
    };
  });
}

export function withDeadline(promise, what, ms = WAIT_MS) {
  let t;
  return Promise.race([
    promise.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms); }),
  ]);
}

export async function startChat(extra = []) {
  return startProc(CHAT_BIN, ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
    '--records-file', path.join(tmpDir('lg-sse-rec-'), 'records.jsonl'), ...extra],
  ['grpc', 'admin'], 'llmgate-chat');
}

export async function startSse(chatAddr, extra = [], listen = '127.0.0.1:0') {
  return startProc(SSE_BIN, ['--listen', listen, '--chat', chatAddr, ...extra], ['http'],
    'llmgate-sse');
}

// A keys file with the given {key: user} map.
export function keysFile(map) {
  const dir = tmpDir('lg-sse-keys-');
  const lines = Object.entries(map).map(([k, u]) =>
    `sha256:${crypto.createHash('sha256').update(k).digest('hex')} ${u}`);
  const p = path.join(dir, 'keys');
  fs.writeFileSync(p, '# test keys\n' + lines.join('\n') + '\n');
  return p;
}

export async function killAll() {
  for (const p of procs) p.kill('SIGKILL');
}

// Polls |fn| until it returns a truthy value.
export async function until(fn, what, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// One HTTP/1.1 request over a raw socket; resolves {status, headers, body}. The body is
// de-chunked. |onData(text)| sees the de-chunked body as it arrives and may return true to
// stop reading (the socket is destroyed: a dropped connection).
export function request(addr, { method = 'GET', path: p = '/', headers = {}, body, onData } = {}) {
  const [host, port] = addr.split(':');
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), host);
    let raw = Buffer.alloc(0);
    let head = null;
    let bodyText = '';
    let chunkBuf = Buffer.alloc(0);
    let finished = false;
    const finish = (dropped) => {
      if (finished) return;
      finished = true;
      sock.destroy();
      if (!head) return reject(new Error('no response head'));
      resolve({ ...head, body: bodyText, dropped });
    };
    const feedBody = (buf) => {
      if (head.chunked) {
        chunkBuf = Buffer.concat([chunkBuf, buf]);
        for (;;) {
          const nl = chunkBuf.indexOf('\r\n');
          if (nl < 0) return;
          const size = parseInt(chunkBuf.slice(0, nl).toString(), 16);
          if (chunkBuf.length < nl + 2 + size + 2) return;
          const piece = chunkBuf.slice(nl + 2, nl + 2 + size).toString();
          chunkBuf = chunkBuf.slice(nl + 2 + size + 2);
          if (size === 0) return finish(false);
          bodyText += piece;
          if (onData && onData(bodyText)) return finish(true);
        }
      } else {
        bodyText += buf.toString();
        if (onData && onData(bodyText)) return finish(true);
        if (head.length !== undefined && Buffer.byteLength(bodyText) >= head.length) finish(false);
      }
    };
    sock.on('data', (d) => {
      if (finished) return;
      if (head) return feedBody(d);
      raw = Buffer.concat([raw, d]);
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = raw.slice(0, end).toString().split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      head = { status, headers, chunked: /chunked/i.test(headers['transfer-encoding'] || '') };
      if (headers['content-length'] !== undefined) head.length = Number(headers['content-length']);
      const rest = raw.slice(end + 4);
      if (status === 204 || status === 304 || method === 'HEAD' ||
          (head.length === 0 && !head.chunked)) return finish(false);
      if (rest.length) feedBody(rest);
    });
    sock.on('end', () => finish(false));
    sock.on('close', () => finish(false));
    sock.on('error', (e) => { if (!finished) { finished = true; reject(e); } });
    const h = { Host: addr, ...headers };
    let b = body;
    if (b !== undefined && typeof b !== 'string') {
      b = JSON.stringify(b);
      h['Content-Type'] = h['Content-Type'] || 'application/json';
    }
    if (b !== undefined) h['Content-Length'] = Buffer.byteLength(b);
    let req = `${method} ${p} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(h)) req += `${k}: ${v}\r\n`;
    sock.write(req + '\r\n' + (b || ''));
  });
}

// Parses an event stream per the WHATWG rules we rely on: returns [{id, event, data,
// comment}] for each dispatched block, plus comments and retry fields.
export function parseSse(text) {
  const out = [];
  const blocks = text.split(/\r\n\r\n|\n\n|\r\r/);
  const complete = /(\r\n\r\n|\n\n|\r\r)$/.test(text) ? blocks.length : blocks.length - 1;
  for (let i = 0; i < complete; i++) {
    const b = blocks[i];
    if (b === '') continue;
    const ev = { id: undefined, event: undefined, data: [], comments: [], retry: undefined };
    for (const line of b.split(/\r\n|\n|\r/)) {
      if (line.startsWith(':')) { ev.comments.push(line.slice(1).trim()); continue; }
      const c = line.indexOf(':');
      const f = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v.startsWith(' ')) v = v.slice(1);
      if (f === 'id') ev.id = v;
      else if (f === 'event') ev.event = v;
      else if (f === 'data') ev.data.push(v);
      else if (f === 'retry') ev.retry = v;
    }
    ev.data = ev.data.length ? ev.data.join('\n') : undefined;
    out.push(ev);
  }
  return out;
}

// The chat events (blocks with an id) of a stream, checked for shape.
export function chatEvents(text, sid) {
  const evs = parseSse(text).filter((e) => e.id !== undefined);
  for (const e of evs) {
    assert.match(e.id, new RegExp(`^${sid}\\.\\d+$`));
    const d = JSON.parse(e.data);
    assert.equal(d.type, e.event);
    assert.equal(typeof d.data, 'object');
    e.seq = Number(e.id.split('.').pop());
    e.json = d;
  }
  return evs;
}

export function textOf(evs) {
  return evs.filter((e) => e.event === 'content').map((e) => e.json.data.content).join('');
}

export const DEFAULT_PROMPT = 'Explain how server-sent events resume after a dropped connection.';

export async function createStream(addr, { key, prompt = DEFAULT_PROMPT, model = 'demo' } = {}) {
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  const r = await request(addr, {
    method: 'POST', path: '/v1/chat/streams', headers,
    body: { model, messages: [{ role: 'user', content: prompt }] },
  });
  assert.equal(r.status, 201, r.body);
  return JSON.parse(r.body);
}

// Reads the events of |url| until the stream ends (or |stopWhen(events)| says stop).
export async function readEvents(addr, url, { headers = {}, stopWhen } = {}) {
  let evs = [];
  const r = await withDeadline(request(addr, {
    path: url, headers: { Accept: 'text/event-stream', ...headers },
    onData: stopWhen ? (t) => { evs = parseSse(t); return stopWhen(evs, t); } : undefined,
  }), `events of ${url}`);
  return r;
}

// A minimal test runner: named async tests, run in order, with a summary line.
export async function run(name, tests) {
  let failed = 0;
  const t0 = Date.now();
  for (const [tname, fn] of tests) {
    try {
      await fn();
      console.log(`ok - ${name}: ${tname}`);
    } catch (e) {
      failed++;
      console.log(`not ok - ${name}: ${tname}\n${e.stack}`);
    }
  }
  console.log(`${name}: ${tests.length - failed}/${tests.length} passed in ${Date.now() - t0} ms`);
  return failed;
}
