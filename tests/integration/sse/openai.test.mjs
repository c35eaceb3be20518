// The official `openai` npm client, unchanged, against llmgate-sse's /v1/chat/completions
// (real llmgate-chat with the demo provider behind it): streaming with usage, non-streaming,
// and errors surfacing as the client's own APIError types.
import assert from 'node:assert/strict';
import { startChat, startSse, keysFile, request, parseSse, run, killAll } from './harness.mjs';

const PROMPT = 'What is a replay buffer?';

// A missing package fails with a clear message (scripts/test runs scripts/install-npm).
let OpenAI;
try {
  OpenAI = (await import('openai')).default;
} catch (e) {
  console.log(`the openai npm package is missing (run scripts/install-npm): ${e.message}`);
  process.exit(1);
}

async function main() {
  const chat = await startChat(['--demo-pace-ms', '5']);
  // Heartbeats every 20 ms: the stream carries `: ping` comments the client must ignore.
  const sse = await startSse(chat.addrs.grpc, ['--keys', keysFile({ 'sk-test': 'tester' }),
    '--heartbeat-ms', '20']);
  const A = sse.addrs.http;
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `http://${A}/v1`, maxRetries: 0 });
  const messages = [{ role: 'user', content: PROMPT }];
  let full = null;

  const failed = await run('openai', [
    ['stream false: one chat.completion', async () => {
      const r = await client.chat.completions.create({ model: 'demo', messages });
      assert.equal(r.object, 'chat.completion');
      assert.equal(r.model, 'demo');
      assert.equal(r.choices.length, 1);
      assert.equal(r.choices[0].message.role, 'assistant');
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.ok(r.choices[0].message.content.length > 0);
      assert.ok(r.usage.completion_tokens > 0);
      assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
      full = r.choices[0].message.content;
    }],
    ['stream true with include_usage: chunks, usage chunk, [DONE]', async () => {
      const stream = await client.chat.completions.create({
        model: 'demo', messages, stream: true, stream_options: { include_usage: true },
      });
      let text = '';
      let finish = null;
      let usage = null;
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        assert.equal(chunk.object, 'chat.completion.chunk');
        if (chunk.choices.length) {
          text += chunk.choices[0].delta.content || '';
          finish = chunk.choices[0].finish_reason || finish;
        }
        if (chunk.usage) usage = chunk.usage;
      }
      assert.ok(chunks > 3);
      assert.equal(finish, 'stop');
      assert.ok(usage && usage.completion_tokens > 0, 'usage chunk');
      assert.equal(text, full, 'streamed text equals the non-streamed answer');
    }],
    ['raw stream: data lines, `: ping` heartbeats, data: [DONE] last', async () => {
      const r = await request(A, {
        method: 'POST', path: '/v1/chat/completions', headers: { Authorization: 'Bearer sk-test' },
        body: { model: 'demo', messages, stream: true },
      });
      assert.equal(r.status, 200);
      assert.match(r.headers['content-type'], /^text\/event-stream/);
      const blocks = parseSse(r.body);
      assert.ok(blocks.every((b) => b.event === undefined && b.id === undefined), 'data-only');
      assert.ok(blocks.some((b) => b.comments.includes('ping')), 'a ping comment');
      const data = blocks.filter((b) => b.data !== undefined).map((b) => b.data);
      assert.equal(data.at(-1), '[DONE]');
      assert.ok(data.slice(0, -1).every((d) => JSON.parse(d).object === 'chat.completion.chunk'));
    }],
    ['errors are OpenAI error objects the client understands', async () => {
      const bad = new OpenAI({ apiKey: 'sk-wrong', baseURL: `http://${A}/v1`, maxRetries: 0 });
      await assert.rejects(bad.chat.completions.create({ model: 'demo', messages }),
        (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
      await assert.rejects(client.chat.completions.create({ model: 'demo', messages: [] }),
        (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && /messages/.test(e.message));
      await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages }),
        (e) => e instanceof OpenAI.APIError && e.status >= 400);
    }],
  ]);
  for (const p of [sse, chat]) {
    try { await p.stop(); } catch (e) { console.log(`not ok - clean exit: ${e.message}`); return 1; }
  }
  return failed;
}

main().then((f) => process.exit(f ? 1 : 0), async (e) => {
  console.error(e);
  await killAll();
  process.exit(1);
});
