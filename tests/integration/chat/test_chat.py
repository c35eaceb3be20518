#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Integration tests of llmgate-chat with a real gRPC client (python grpcio), the real binary
and the OpenAI-compatible fake upstream (tests/fakes/openai_fake.py).

Run by ctest (tests/integration/chat.cmake):
  test_chat.py --chat BIN --fake FAKE.py --protos DIR --workdir DIR [unittest args]
Stubs are generated from chat.proto into the work directory with grpc_tools.protoc (never
committed). Every wait polls a condition with a deadline; nothing asserts on timing.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
from lib import Proc, wait_for  # noqa: E402  (the shared harness)

ARGS = None
pb = pbg = grpc = None
ENV = {}

WAIT_S = 20.0
SECRET = "sk-test-secret-do-not-log"


def records(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    return out


def wait_record(path, **match):
    def find():
        got = [r for r in records(path) if all(r.get(k) == v for k, v in match.items())]
        return got
    return wait_for(find, "record %r in %s" % (match, path))


def msgs(text):
    return [pb.ChatMessage(role="system", content="You are a helpful assistant."),
            pb.ChatMessage(role="user", content=text)]


def setUpModule():
    try:
        start_all()
    except BaseException:
        # unittest skips tearDownModule when setUpModule fails: stop what did start.
        for name in ("a", "b", "c"):
            if name in ENV:
                ENV[name].p.kill()
        if "fake" in ENV:
            ENV["fake"].p.kill()
        raise


def start_all():
    global pb, pbg, grpc
    work = ARGS.workdir
    os.makedirs(work, exist_ok=True)
    gen = os.path.join(work, "gen")
    os.makedirs(gen, exist_ok=True)
    subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I" + ARGS.protos,
                           "--python_out=" + gen, "--grpc_python_out=" + gen,
                           "llmgate/chat/v1/chat.proto"])
    # grpc.health.v1 stubs under another Python package name: "grpc" is grpcio itself.
    hdir = os.path.join(gen, "lghealth")
    os.makedirs(hdir, exist_ok=True)
    with open(os.path.join(ARGS.protos, "grpc/health/v1/health.proto")) as f_in, \
            open(os.path.join(hdir, "health.proto"), "w") as f_out:
        f_out.write(f_in.read())
    subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I" + gen,
                           "--python_out=" + gen, "--grpc_python_out=" + gen,
                           "lghealth/health.proto"])
    sys.path.insert(0, gen)
    import grpc as g
    from llmgate.chat.v1 import chat_pb2, chat_pb2_grpc
    grpc, pb, pbg = g, chat_pb2, chat_pb2_grpc

    fake = Proc([sys.executable, ARGS.fake, "--listen", "127.0.0.1:0"], ["fake"])
    ENV["fake"] = fake
    fake_models = ["fake-normal", "fake-crlf", "fake-nousage", "fake-429", "fake-429ms",
                   "fake-500", "fake-500-once", "fake-500-after", "fake-cut", "fake-malformed",
                   "fake-400", "fake-hang", "fake-trickle", "fake-long-100000",
                   "fake-cumulative"]
    priced = [{"name": m, "input_usd_per_mtok": 2.5, "cached_input_usd_per_mtok": 1.25,
               "output_usd_per_mtok": 10} for m in fake_models]
    cfg = {"providers": [
        {"id": "fake", "kind": "openai", "base_url": "http://%s/v1" % fake.addr["fake"],
         "api_key_env": "LG_IT_FAKE_KEY", "first_byte_timeout_ms": 1500,
         "idle_timeout_ms": 1500, "max_retries": 2,
         "models": priced + [{"name": "unpriced", "upstream_model": "fake-normal"}]},
        {"id": "down", "kind": "openai", "base_url": "http://127.0.0.1:1/v1",
         "max_retries": 1, "models": [{"name": "refused", "input_usd_per_mtok": 1,
                                       "output_usd_per_mtok": 1}]},
        {"id": "demo", "kind": "demo"}]}
    cfg_path = os.path.join(work, "chat.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ, LG_IT_FAKE_KEY=SECRET)
    for name, extra in (("a", ["--grace-ms", "30000"]),
                        ("b", ["--grace-ms", "300", "--retention-ms", "2000",
                               "--body-logging", "none", "--replay-max-events", "8"]),
                        ("c", ["--max-streams", "3"])):
        rec = os.path.join(work, "records-%s.jsonl" % name)
        if os.path.exists(rec):
            os.unlink(rec)
        penv = dict(env)
        if name == "c":
            penv["LLMGATE_BODY_LOGGING"] = "truncated:16"  # flags also read LLMGATE_<FLAG>
        p = Proc([ARGS.chat, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                  "--config", cfg_path, "--records-file", rec, "--demo-pace-ms", "20",
                  "--log-level", "info"] + extra, ["grpc", "admin"], env=penv,
                 log=os.path.join(work, "chat-%s.log" % name))
        p.records = rec
        p.logfile = os.path.join(work, "chat-%s.log" % name)
        p.channel = grpc.insecure_channel(p.addr["grpc"])
        p.stub = pbg.ChatServiceStub(p.channel)
        ENV[name] = p


def tearDownModule():
    codes = {}
    for name in ("a", "b", "c"):
        p = ENV.get(name)
        if p:
            p.channel.close()
            codes[name] = p.stop()
    if ENV.get("fake"):
        ENV["fake"].p.kill()
        ENV["fake"].p.wait()
    for name, code in codes.items():
        # Under ASan a leak makes the exit status non-zero: a clean shutdown is part of the test.
        assert code == 0, "llmgate-chat %s exited with %s (see %s)" % (name, code,
                                                                     ENV[name].logfile)
    for name in ("a", "b", "c"):
        with open(ENV[name].logfile, "rb") as f:
            assert SECRET.encode() not in f.read(), "API key leaked into logs"
        with open(ENV[name].records, "rb") as f:
            assert SECRET.encode() not in f.read(), "API key leaked into records"


def user():
    return "u-" + uuid.uuid4().hex[:12]


def md(u):
    return (("x-user-id", u),)


def kind(ev):
    return ev.WhichOneof("event")


def text_of(evs):
    return "".join(e.content.text for e in evs if kind(e) == "content")


class DemoTest(unittest.TestCase):
    def test_stream_demo_seq_usage_record(self):
        a = ENV["a"]
        u = user()
        evs = list(a.stub.StreamChat(pb.ChatRequest(user_id=u, model="demo", conversation_id="c1",
                                                    messages=msgs("What is a replay buffer?"),
                                                    metadata={"team": "it"}), timeout=60))
        self.assertEqual([e.seq for e in evs], list(range(1, len(evs) + 1)))
        self.assertEqual(kind(evs[0]), "start")
        self.assertEqual(kind(evs[-1]), "done")
        self.assertTrue(all(e.stream_id == evs[0].stream_id for e in evs))
        self.assertEqual(len(evs[0].stream_id), 22)
        done = evs[-1].done
        ncontent = sum(1 for e in evs if kind(e) == "content")
        self.assertEqual(done.finish_reason, "stop")
        self.assertEqual(done.usage.completion_tokens, ncontent)
        self.assertFalse(done.usage.usage_estimated)
        u_ = done.usage
        self.assertEqual(u_.total_tokens, u_.prompt_tokens + u_.completion_tokens)
        # Demo prices: $0.50 in, $1.50 out per 1M tokens = 500 / 1500 nano-USD per token.
        self.assertEqual(u_.estimated_cost_nano_usd, 500 * u_.prompt_tokens + 1500 * u_.completion_tokens)
        self.assertIn("replay", text_of(evs).lower())
        [r] = wait_record(a.records, stream_id=evs[0].stream_id)
        self.assertEqual(r["status"], "success")
        self.assertEqual(r["request_id"], evs[0].start.request_id)
        self.assertEqual(r["user_id"], u)
        self.assertEqual(r["conversation_id"], "c1")
        self.assertEqual(r["provider"], "demo")
        self.assertEqual(r["prompt_tokens"], u_.prompt_tokens)
        self.assertEqual(r["completion_tokens"], u_.completion_tokens)
        self.assertEqual(r["estimated_cost_nano_usd"], u_.estimated_cost_nano_usd)
        self.assertEqual(r["usage_source"], "reported")
        self.assertEqual(r["response_content"], text_of(evs))
        self.assertEqual(json.loads(r["metadata"]), {"team": "it"})
        self.assertEqual(r["stream"], 1)
        self.assertGreaterEqual(r["time_to_first_token_ms"], 0)

    def test_complete_demo_max_tokens_length(self):
        a = ENV["a"]
        u = user()
        resp = a.stub.Complete(pb.ChatRequest(user_id=u, model="demo", max_tokens=5,
                                              messages=msgs("Tell me about HTTP/2 flow control")),
                               timeout=30)
        self.assertEqual(resp.finish_reason, "length")
        self.assertEqual(resp.usage.completion_tokens, 5)
        self.assertEqual(resp.model, "demo")
        self.assertTrue(resp.content)
        [r] = wait_record(a.records, user_id=u)
        self.assertEqual(r["status"], "success")
        self.assertEqual(r["finish_reason"], "length")
        self.assertEqual(r["stream"], 0)
        self.assertEqual(r["max_tokens"], 5)
        self.assertEqual(r["response_content"], resp.content)

    def test_validation_and_identity(self):
        a = ENV["a"]
        cases = [
            (pb.ChatRequest(user_id="v", model="demo"), (), "INVALID_ARGUMENT", "messages"),
            (pb.ChatRequest(user_id="v", model="demo",
                            messages=[pb.ChatMessage(role="wizard", content="x")]), (),
             "INVALID_ARGUMENT", "role"),
            (pb.ChatRequest(user_id="v", model="gpt-9", messages=msgs("x")), (),
             "INVALID_ARGUMENT", "unknown model"),
            (pb.ChatRequest(user_id="v", model="demo", provider_config_id="nope",
                            messages=msgs("x")), (), "INVALID_ARGUMENT", "provider_config_id"),
            (pb.ChatRequest(user_id="v", model="demo", max_tokens=2000000, messages=msgs("x")),
             (), "INVALID_ARGUMENT", "max_tokens"),
            (pb.ChatRequest(user_id="alice", model="demo", messages=msgs("x")), md("mallory"),
             "PERMISSION_DENIED", "x-user-id"),
            (pb.ChatRequest(model="demo", messages=msgs("x")), (), "UNAUTHENTICATED", "user_id"),
        ]
        for req, meta, code, part in cases:
            for call in (lambda: list(a.stub.StreamChat(req, metadata=meta, timeout=10)),
                         lambda: a.stub.Complete(req, metadata=meta, timeout=10)):
                with self.assertRaises(grpc.RpcError) as cm:
                    call()
                self.assertEqual(cm.exception.code().name, code)
                self.assertIn(part, cm.exception.details())
        # x-user-id alone identifies the caller.
        u = user()
        resp = a.stub.Complete(pb.ChatRequest(model="demo", max_tokens=2, messages=msgs("hi")),
                               metadata=md(u), timeout=10)
        self.assertEqual(resp.usage.completion_tokens, 2)
        wait_record(a.records, user_id=u)

    def test_deadline_gives_timeout_record(self):
        a = ENV["a"]
        u = user()
        it = a.stub.StreamChat(pb.ChatRequest(user_id=u, model="demo",
                                              messages=msgs("Write a long essay on queues")),
                               timeout=0.3)
        with self.assertRaises(grpc.RpcError) as cm:
            list(it)
        # The server's deadline timer and the client's race: the client reports
        # DEADLINE_EXCEEDED, or CANCELLED when the server's RST_STREAM(CANCEL) lands first.
        self.assertIn(cm.exception.code(), (grpc.StatusCode.DEADLINE_EXCEEDED,
                                            grpc.StatusCode.CANCELLED))
        [r] = wait_record(a.records, user_id=u)
        self.assertEqual(r["status"], "timeout")
        self.assertEqual(r["finish_reason"], "timeout")
        self.assertEqual(r["usage_source"], "estimated")
        with self.assertRaises(grpc.RpcError) as cm:
            a.stub.Complete(pb.ChatRequest(user_id=u + "c", model="demo",
                                           messages=msgs("Write a long essay on queues")),
                            timeout=0.3)
        self.assertIn(cm.exception.code(), (grpc.StatusCode.DEADLINE_EXCEEDED,
                                            grpc.StatusCode.CANCELLED))
        [r] = wait_record(a.records, user_id=u + "c")
        self.assertEqual(r["status"], "timeout")

    def test_cancel_stream(self):
        a = ENV["a"]
        u = user()
        it = a.stub.StreamChat(pb.ChatRequest(user_id=u, model="demo",
                                              messages=msgs("Explain cancellation in gRPC")),
                               timeout=60)
        first = next(it)
        sid = first.stream_id
        next(it)
        with self.assertRaises(grpc.RpcError) as cm:
            a.stub.CancelStream(pb.CancelRequest(stream_id=sid), metadata=md("mallory"), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        with self.assertRaises(grpc.RpcError) as cm:
            a.stub.CancelStream(pb.CancelRequest(stream_id="A" * 22), metadata=md(u), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        resp = a.stub.CancelStream(pb.CancelRequest(stream_id=sid), metadata=md(u), timeout=10)
        self.assertTrue(resp.cancelled)
        rest = list(it)
        self.assertEqual(kind(rest[-1]), "done")
        self.assertEqual(rest[-1].done.finish_reason, "cancelled")
        [r] = wait_record(a.records, stream_id=sid)
        self.assertEqual(r["status"], "cancelled")
        self.assertEqual(r["finish_reason"], "cancelled")
        self.assertEqual(r["completion_tokens"], rest[-1].done.usage.completion_tokens)
        again = a.stub.CancelStream(pb.CancelRequest(stream_id=sid), metadata=md(u), timeout=10)
        self.assertFalse(again.cancelled)

    def test_disconnect_then_resume_gets_exactly_the_rest(self):
        a = ENV["a"]
        u = user()
        req = pb.ChatRequest(user_id=u, model="demo",
                             messages=msgs("How do streams survive a client disconnect?"))
        whole = a.stub.Complete(req, timeout=60).content
        it = a.stub.StreamChat(req, timeout=60)
        got = [next(it) for _ in range(6)]
        it.cancel()  # the client goes away mid-stream (RST_STREAM CANCEL)
        sid = got[0].stream_id
        after = got[-1].seq
        with self.assertRaises(grpc.RpcError) as cm:
            list(a.stub.ResumeStream(pb.ResumeRequest(stream_id=sid, after_seq=after),
                                     metadata=md("mallory"), timeout=10))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        with self.assertRaises(grpc.RpcError) as cm:
            list(a.stub.ResumeStream(pb.ResumeRequest(stream_id="B" * 22, after_seq=0),
                                     metadata=md(u), timeout=10))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        rest = list(a.stub.ResumeStream(pb.ResumeRequest(stream_id=sid, after_seq=after),
                                        metadata=md(u), timeout=60))
        self.assertEqual([e.seq for e in rest], list(range(after + 1, after + 1 + len(rest))))
        self.assertEqual(kind(rest[-1]), "done")
        self.assertEqual(text_of(got) + text_of(rest), whole)
        self.assertEqual(rest[-1].done.usage.completion_tokens,
                         sum(1 for e in got + rest if kind(e) == "content"))
        recs = wait_record(a.records, stream_id=sid)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["status"], "success")
        # After the end the stream stays resumable (retention): from 0 replays everything.
        again = list(a.stub.ResumeStream(pb.ResumeRequest(stream_id=sid, after_seq=0),
                                         metadata=md(u), timeout=10))
        self.assertEqual([e.seq for e in again], list(range(1, rest[-1].seq + 1)))


    def test_detached_stream_chat_ends_after_start_and_generation_goes_on(self):
        # llmgate-sse's POST /v1/chat/streams: only the stream id is wanted, without an
        # RST_STREAM per stream (resets in bulk trip the server's rapid-reset limit).
        a = ENV["a"]
        u = user()
        req = pb.ChatRequest(user_id=u, model="demo",
                             messages=msgs("Why should an edge detach from a stream?"))
        whole = a.stub.Complete(req, timeout=60).content
        call = a.stub.StreamChat(req, metadata=md(u) + (("x-llmgate-detach", "1"),), timeout=60)
        evs = list(call)  # ends by itself with OK
        self.assertEqual(call.code(), grpc.StatusCode.OK)
        self.assertEqual([kind(e) for e in evs], ["start"])
        sid = evs[0].stream_id
        rest = list(a.stub.ResumeStream(pb.ResumeRequest(stream_id=sid, after_seq=1),
                                        metadata=md(u), timeout=60))
        self.assertEqual([e.seq for e in rest], list(range(2, 2 + len(rest))))
        self.assertEqual(kind(rest[-1]), "done")
        self.assertEqual(text_of(rest), whole)
        recs = wait_record(a.records, stream_id=sid)
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["status"], "success")


class GraceTest(unittest.TestCase):
    def test_client_gone_past_grace_is_cancelled_then_expires(self):
        b = ENV["b"]
        u = user()
        it = b.stub.StreamChat(pb.ChatRequest(user_id=u, model="demo",
                                              messages=msgs("Describe grace periods")),
                               timeout=60)
        first = next(it)
        next(it)
        it.cancel()
        [r] = wait_record(b.records, stream_id=first.stream_id)
        self.assertEqual(r["status"], "cancelled")
        self.assertIn("grace", r["error_message"])
        self.assertIn(r["request_messages"], ("", None))  # --body-logging none
        self.assertIn(r["response_content"], ("", None))

        def expired():
            try:
                list(b.stub.ResumeStream(pb.ResumeRequest(stream_id=first.stream_id),
                                         metadata=md(u), timeout=10))
                return False
            except grpc.RpcError as e:
                return e.code() == grpc.StatusCode.NOT_FOUND
        wait_for(expired, "retention expiry")


class BodyLoggingTest(unittest.TestCase):
    def test_truncated_bodies(self):
        c = ENV["c"]  # LLMGATE_BODY_LOGGING=truncated:16
        u = user()
        resp = c.stub.Complete(pb.ChatRequest(user_id=u, model="demo", max_tokens=30,
                                              messages=msgs("Say something long")), timeout=30)
        [r] = wait_record(c.records, user_id=u)
        self.assertEqual(r["response_content"], resp.content.encode()[:16].decode())
        self.assertEqual(len(r["request_messages"].encode()), 16)
        self.assertEqual(r["completion_tokens"], 30)  # counts are not truncated


class StreamCapTest(unittest.TestCase):
    def test_full_registry_evicts_finished_streams_never_generating_ones(self):
        c = ENV["c"]  # --max-streams 3
        u = user()
        req = pb.ChatRequest(user_id=u, model="demo", messages=msgs("Explain eviction policies"))
        its = [c.stub.StreamChat(req, timeout=60) for _ in range(3)]
        sids = [next(it).stream_id for it in its]
        with self.assertRaises(grpc.RpcError) as cm:
            list(c.stub.StreamChat(req, timeout=60))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        for sid, it in zip(sids, its):
            c.stub.CancelStream(pb.CancelRequest(stream_id=sid), metadata=md(u), timeout=10)
            self.assertEqual(list(it)[-1].done.finish_reason, "cancelled")
        # All three slots hold finished streams now: a new stream evicts the oldest.
        evs = list(c.stub.StreamChat(pb.ChatRequest(user_id=u, model="demo", max_tokens=2,
                                                    messages=msgs("hi there")), timeout=60))
        self.assertEqual(kind(evs[-1]), "done")
        with self.assertRaises(grpc.RpcError) as cm:
            list(c.stub.ResumeStream(pb.ResumeRequest(stream_id=sids[0]), metadata=md(u),
                                     timeout=10))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        last = list(c.stub.ResumeStream(pb.ResumeRequest(stream_id=sids[2]), metadata=md(u),
                                        timeout=10))
        self.assertEqual(last[-1].done.finish_reason, "cancelled")


class SlowReaderTest(unittest.TestCase):
    def test_stalled_reader_costs_bounded_memory(self):
        """A reader that stops reading never stalls generation (the record is written while it
        sleeps) and never makes the gateway buffer without bound: once it has fallen behind
        the replay buffer its call ends RESOURCE_EXHAUSTED. That counts as the reader leaving,
        so on this instance (grace 300 ms) generation may be stopped before it completes."""
        b = ENV["b"]  # --replay-max-events 8
        u = user()
        it = b.stub.StreamChat(pb.ChatRequest(user_id=u, model="fake-long-100000",
                                              messages=msgs("hi")), timeout=120)
        first = next(it)
        [r] = wait_record(b.records, stream_id=first.stream_id)  # while nobody reads
        self.assertIn(r["status"], ("success", "cancelled"))
        if r["status"] == "cancelled":
            self.assertIn("grace", r["error_message"])
        n = 1
        with self.assertRaises(grpc.RpcError) as cm:
            for _ in it:
                n += 1
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("fell behind", cm.exception.details())
        self.assertLess(n, 100000)


class ReplayBoundTest(unittest.TestCase):
    def test_bounded_replay_keeps_the_newest_events(self):
        b = ENV["b"]  # --replay-max-events 8
        u = user()
        evs = list(b.stub.StreamChat(pb.ChatRequest(user_id=u, model="demo", max_tokens=20,
                                                    messages=msgs("Explain ring buffers")),
                                     timeout=60))
        self.assertEqual(len(evs), 22)  # start, 20 tokens, done: the live reader saw all
        sid, last = evs[0].stream_id, evs[-1].seq
        with self.assertRaises(grpc.RpcError) as cm:
            list(b.stub.ResumeStream(pb.ResumeRequest(stream_id=sid, after_seq=0),
                                     metadata=md(u), timeout=10))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertIn("resume_expired", cm.exception.details())
        tail = list(b.stub.ResumeStream(pb.ResumeRequest(stream_id=sid, after_seq=last - 8),
                                        metadata=md(u), timeout=10))
        self.assertEqual([e.seq for e in tail], list(range(last - 7, last + 1)))
        self.assertEqual(tail[-1].SerializeToString(), evs[-1].SerializeToString())


def fake_stats():
    import urllib.request
    with urllib.request.urlopen("http://%s/_stats" % ENV["fake"].addr["fake"]) as f:
        return json.load(f)


class FakeUpstreamTest(unittest.TestCase):
    def stream(self, model, u, **kw):
        return list(ENV["a"].stub.StreamChat(pb.ChatRequest(user_id=u, model=model,
                                                            messages=msgs("hi"), **kw),
                                             timeout=30))

    def check_ok(self, model, reported=True):
        u = user()
        evs = self.stream(model, u)
        self.assertEqual(text_of(evs), "Hello from the fake upstream.")
        done = evs[-1].done
        self.assertEqual(done.finish_reason, "stop")
        [r] = wait_record(ENV["a"].records, user_id=u)
        self.assertEqual(r["status"], "success")
        self.assertEqual(r["provider"], "openai")
        self.assertEqual(r["usage_source"], "reported" if reported else "estimated")
        self.assertEqual(done.usage.usage_estimated, not reported)
        if reported:
            # (11 - 3) * 2500 + 3 * 1250 + 6 * 10000 nano-USD.
            self.assertEqual(done.usage.estimated_cost_nano_usd, 83750)
            self.assertEqual((r["prompt_tokens"], r["completion_tokens"], r["cached_tokens"]),
                             (11, 6, 3))
            self.assertEqual(r["estimated_cost_nano_usd"], 83750)
        return r

    def test_normal_stream_sends_include_usage(self):
        self.check_ok("fake-normal")
        body = fake_stats()["last_body"]
        self.assertTrue(body["stream"])
        self.assertEqual(body["stream_options"], {"include_usage": True})
        self.assertEqual(body["messages"][1], {"role": "user", "content": "hi"})

    def test_crlf_and_comments(self):
        self.check_ok("fake-crlf")

    def test_no_usage_is_estimated_and_flagged(self):
        r = self.check_ok("fake-nousage", reported=False)
        self.assertEqual(r["completion_tokens"], 6)  # demo tokenizer on the answer text
        self.assertGreater(r["estimated_cost_nano_usd"], 0)

    def test_429_retry_after_then_success(self):
        before = fake_stats()["requests"].get("fake-429", 0)
        self.check_ok("fake-429")
        self.assertEqual(fake_stats()["requests"]["fake-429"] - before, 2)
        before = fake_stats()["requests"].get("fake-429ms", 0)
        self.check_ok("fake-429ms")
        self.assertEqual(fake_stats()["requests"]["fake-429ms"] - before, 2)

    def test_500_once_is_retried(self):
        self.check_ok("fake-500-once")

    def test_500_before_first_token_fails_unavailable(self):
        u = user()
        before = fake_stats()["requests"].get("fake-500", 0)
        with self.assertRaises(grpc.RpcError) as cm:
            self.stream("fake-500", u)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(fake_stats()["requests"]["fake-500"] - before, 3)  # 1 + 2 retries
        [r] = wait_record(ENV["a"].records, user_id=u)
        self.assertEqual(r["status"], "error")
        self.assertIn("500", r["error_message"])

    def test_400_is_invalid_argument_without_retry(self):
        u = user()
        before = fake_stats()["requests"].get("fake-400", 0)
        with self.assertRaises(grpc.RpcError) as cm:
            self.stream("fake-400", u)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(fake_stats()["requests"]["fake-400"] - before, 1)
        [r] = wait_record(ENV["a"].records, user_id=u)
        self.assertEqual(r["status"], "error")

    def test_error_after_first_token_is_an_error_event(self):
        for model in ("fake-500-after", "fake-cut", "fake-malformed"):
            u = user()
            evs = self.stream(model, u)  # status OK: the error event is the outcome
            self.assertEqual(kind(evs[-1]), "error", model)
            self.assertTrue(evs[-1].error.code)
            self.assertTrue(text_of(evs))
            [r] = wait_record(ENV["a"].records, user_id=u)
            self.assertEqual(r["status"], "error", model)
            self.assertEqual(r["response_content"], text_of(evs))

    def test_hang_times_out(self):
        u = user()
        with self.assertRaises(grpc.RpcError) as cm:
            self.stream("fake-hang", u)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        [r] = wait_record(ENV["a"].records, user_id=u)
        self.assertEqual(r["status"], "timeout")

    def test_refused_connection(self):
        u = user()
        with self.assertRaises(grpc.RpcError) as cm:
            self.stream("refused", u)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        [r] = wait_record(ENV["a"].records, user_id=u)
        self.assertEqual(r["status"], "error")
        self.assertEqual(r["provider_config_id"], "down")

    def test_cancel_aborts_the_upstream_transfer(self):
        a = ENV["a"]
        u = user()
        it = a.stub.StreamChat(pb.ChatRequest(user_id=u, model="fake-trickle", messages=msgs("hi")),
                               timeout=30)
        first = next(it)
        while kind(next(it)) != "content":
            pass
        resp = a.stub.CancelStream(pb.CancelRequest(stream_id=first.stream_id), metadata=md(u),
                                   timeout=10)
        self.assertTrue(resp.cancelled)
        rest = list(it)
        self.assertEqual(rest[-1].done.finish_reason, "cancelled")
        [r] = wait_record(a.records, stream_id=first.stream_id)
        self.assertEqual(r["status"], "cancelled")
        self.assertEqual(r["usage_source"], "estimated")
        self.assertLess(r["completion_tokens"], 6)

    def test_cumulative_usage_is_not_summed(self):
        u = user()
        evs = self.stream("fake-cumulative", u)
        self.assertEqual(evs[-1].done.usage.completion_tokens, 6)
        self.assertEqual(evs[-1].done.usage.prompt_tokens, 11)
        [r] = wait_record(ENV["a"].records, user_id=u)
        self.assertEqual((r["prompt_tokens"], r["completion_tokens"]), (11, 6))
        self.assertEqual(r["usage_source"], "reported")

    def test_slow_trickle(self):
        self.check_ok("fake-trickle")

    def test_unpriced_model_costs_zero_and_is_flagged(self):
        u = user()
        evs = self.stream("unpriced", u)
        self.assertEqual(evs[-1].done.usage.estimated_cost_nano_usd, 0)
        [r] = wait_record(ENV["a"].records, user_id=u)
        self.assertEqual(r["price_missing"], 1)
        self.assertEqual(r["estimated_cost_nano_usd"], 0)
        self.assertEqual(r["completion_tokens"], 6)

    def test_grpc_health(self):
        from lghealth import health_pb2, health_pb2_grpc
        h = health_pb2_grpc.HealthStub(ENV["a"].channel)
        S = health_pb2.HealthCheckResponse
        self.assertEqual(h.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status,
                         S.SERVING)
        self.assertEqual(h.Check(health_pb2.HealthCheckRequest(
            service="llmgate.chat.v1.ChatService"), timeout=10).status, S.SERVING)
        # No ClickHouse on this instance: UsageService is not serving, and says so.
        self.assertEqual(h.Check(health_pb2.HealthCheckRequest(
            service="llmgate.chat.v1.UsageService"), timeout=10).status, S.NOT_SERVING)
        usage = pbg.UsageServiceStub(ENV["a"].channel)
        with self.assertRaises(grpc.RpcError) as cm:
            usage.ListLogs(pb.ListLogsRequest(user_id="x"), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_admin_metrics_and_health(self):
        import urllib.request
        self.check_ok("fake-normal")
        admin = ENV["a"].addr["admin"]
        with urllib.request.urlopen("http://%s/healthz" % admin) as f:
            self.assertEqual(f.status, 200)
        with urllib.request.urlopen("http://%s/metrics" % admin) as f:
            text = f.read().decode()
        self.assertIn('llmgate_chat_calls_total{provider="fake",status="success"}', text)
        self.assertIn("llmgate_chat_gateway_ttft_overhead_seconds_count", text)
        self.assertIn("llmgate_chat_streams ", text)

    def test_complete_through_fake(self):
        u = user()
        resp = ENV["a"].stub.Complete(pb.ChatRequest(user_id=u, model="fake-normal",
                                                     messages=msgs("hi"), temperature=0.5),
                                      timeout=30)
        self.assertEqual(resp.content, "Hello from the fake upstream.")
        self.assertEqual(resp.usage.prompt_tokens, 11)
        self.assertEqual(fake_stats()["last_body"]["temperature"], 0.5)
        [r] = wait_record(ENV["a"].records, user_id=u)
        self.assertEqual(r["stream"], 0)
        self.assertEqual(r["temperature"], 0.5)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True)
    ap.add_argument("--fake", required=True)
    ap.add_argument("--protos", required=True)
    ap.add_argument("--workdir", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
