#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""llmgate-chat with real ClickHouse: billing records go through the analytics shipper
(--clickhouse-url, --spool-dir) and UsageService (ListLogs, GetUsage) reads them back.

  test_chat_clickhouse.py --chat BIN --analytics BIN --protos DIR --workdir DIR --ch-scripts DIR
ClickHouse is started on free loopback ports by tests/integration/clickhouse/start.sh.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.request
import uuid

ARGS = None
ENV = {}
WAIT_S = 90.0


def wait_for(cond, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # the condition may fail until data lands
            last = e
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last error: %r)" % (what, last))


def setUpModule():
    try:
        start_all()
    except BaseException:
        # unittest skips tearDownModule when setUpModule fails: stop what did start.
        if "chat" in ENV:
            ENV["chat"].kill()
        if "chdir" in ENV:
            subprocess.call([os.path.join(ARGS.ch_scripts, "stop.sh"), ENV["chdir"]])
        raise


def start_all():
    work = ARGS.workdir
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    gen = os.path.join(work, "gen")
    os.makedirs(gen)
    subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I" + ARGS.protos,
                           "--python_out=" + gen, "--grpc_python_out=" + gen,
                           "llmgate/chat/v1/chat.proto"])
    sys.path.insert(0, gen)
    global grpc, pb, pbg
    import grpc
    from llmgate.chat.v1 import chat_pb2 as pb, chat_pb2_grpc as pbg
    chdir = os.path.join(work, "ch")
    out = subprocess.check_output([os.path.join(ARGS.ch_scripts, "start.sh"), chdir], text=True)
    ENV["chdir"] = chdir
    url = out.split()[-1]
    ENV["url"] = url
    subprocess.check_call([ARGS.analytics, "migrate", "--clickhouse-url", url],
                          stdout=subprocess.DEVNULL)
    # Credentials from the environment, as the Kubernetes manifests pass them: the ClickHouse
    # user "llmgate" (start.sh) for the inserts and for UsageService's queries.
    env = dict(os.environ, LLMGATE_CLICKHOUSE_USER="llmgate",
               LLMGATE_CLICKHOUSE_KEY="llmgate-secret")
    p, addr = start_chat("chat", [], env)
    ENV["chat"] = p
    ENV["channel"] = grpc.insecure_channel(addr["grpc"])
    ENV["chat_stub"] = pbg.ChatServiceStub(ENV["channel"])
    ENV["usage_stub"] = pbg.UsageServiceStub(ENV["channel"])


def start_chat(name, extra, env=None):
    """Starts llmgate-chat shipping to the test's ClickHouse (spool WORKDIR/NAME-spool, log
    WORKDIR/NAME.log); returns the process and its {"grpc": addr, "admin": addr}."""
    log = open(os.path.join(ARGS.workdir, name + ".log"), "wb")
    p = subprocess.Popen([ARGS.chat, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                          "--clickhouse-url", ENV["url"],
                          "--spool-dir", os.path.join(ARGS.workdir, name + "-spool"),
                          "--demo-pace-ms", "0"] + extra,
                         stdout=subprocess.PIPE, stderr=log, env=env)
    addr = {}
    while set(["grpc", "admin"]) - set(addr):
        line = p.stdout.readline().decode()
        if not line:
            raise AssertionError("llmgate-chat exited: %s" % p.wait())
        parts = line.split()
        if len(parts) == 3 and parts[0] == "listening":
            addr[parts[1]] = parts[2]
    return p, addr


def metric(admin, name):
    body = urllib.request.urlopen("http://%s/metrics" % admin, timeout=10).read().decode()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def tearDownModule():
    code = None
    if "chat" in ENV:
        ENV["channel"].close()
        ENV["chat"].send_signal(signal.SIGTERM)
        code = ENV["chat"].wait(timeout=60)
    if "chdir" in ENV:
        subprocess.call([os.path.join(ARGS.ch_scripts, "stop.sh"), ENV["chdir"]])
    assert code == 0, "llmgate-chat exited with %s" % code


class UsageTest(unittest.TestCase):
    def test_records_reach_clickhouse_and_usage_reads_them(self):
        chat, usage = ENV["chat_stub"], ENV["usage_stub"]
        u = "u-" + uuid.uuid4().hex[:12]
        msgs = [pb.ChatMessage(role="user", content="Summarise the shipper design")]
        events = []
        for i in range(3):
            evs = list(chat.StreamChat(pb.ChatRequest(user_id=u, model="demo", max_tokens=5 + i,
                                                      conversation_id="conv-%d" % i,
                                                      messages=msgs), timeout=30))
            events.append(evs)
        resp = chat.Complete(pb.ChatRequest(user_id=u, model="demo", max_tokens=4, messages=msgs),
                             timeout=30)
        want_cost = sum(e[-1].done.usage.estimated_cost_nano_usd for e in events) + \
            resp.usage.estimated_cost_nano_usd
        want_tokens = sum(e[-1].done.usage.total_tokens for e in events) + resp.usage.total_tokens

        def four():
            got = usage.ListLogs(pb.ListLogsRequest(user_id=u, limit=10), timeout=30)
            return got if len(got.records) == 4 else None
        got = wait_for(four, "4 records of %s in ClickHouse" % u)
        by_stream = {r.stream_id: r for r in got.records}
        for evs in events:
            r = by_stream[evs[0].stream_id]
            done = evs[-1].done
            self.assertEqual(r.request_id, evs[0].start.request_id)
            self.assertEqual(r.status, "success")
            self.assertEqual(r.finish_reason, "length")
            self.assertEqual(r.usage.completion_tokens, done.usage.completion_tokens)
            self.assertEqual(r.usage.prompt_tokens, done.usage.prompt_tokens)
            self.assertEqual(r.usage.estimated_cost_nano_usd, done.usage.estimated_cost_nano_usd)
            self.assertEqual(r.model, "demo")
            self.assertEqual(r.user_id, u)
            self.assertEqual(r.provider_config_id, "demo")
        only = usage.ListLogs(pb.ListLogsRequest(user_id=u, conversation_id="conv-1"), timeout=30)
        self.assertEqual([r.stream_id for r in only.records], [events[1][0].stream_id])
        # The filters narrow the query, not a fetched page: with limit 1 the newest record
        # (the Complete, no conversation) is not conv-0, the oldest; it must still come back.
        oldest = usage.ListLogs(pb.ListLogsRequest(user_id=u, limit=1, conversation_id="conv-0"),
                                timeout=30)
        self.assertEqual([r.stream_id for r in oldest.records], [events[0][0].stream_id])
        two = usage.ListLogs(pb.ListLogsRequest(user_id=u, limit=2, model="demo"), timeout=30)
        self.assertEqual(len(two.records), 2)
        self.assertEqual(len(usage.ListLogs(pb.ListLogsRequest(user_id=u, model="other"),
                                            timeout=30).records), 0)

        rep = usage.GetUsage(pb.GetUsageRequest(user_id=u), timeout=30)
        self.assertEqual(rep.requests, 4)
        self.assertEqual(rep.cost_nano_usd, want_cost)
        self.assertEqual(rep.total_tokens, want_tokens)
        self.assertEqual(len(rep.rows), 1)
        self.assertEqual(rep.rows[0].model, "demo")
        self.assertEqual(len(rep.rows[0].day), 10)

        with self.assertRaises(grpc.RpcError) as cm:
            usage.ListLogs(pb.ListLogsRequest(user_id=u), metadata=(("x-user-id", "mallory"),),
                           timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        with self.assertRaises(grpc.RpcError) as cm:
            usage.GetUsage(pb.GetUsageRequest(), timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        none = usage.ListLogs(pb.ListLogsRequest(user_id="nobody-" + u), timeout=30)
        self.assertEqual(len(none.records), 0)

    def test_clickhouse_credentials_are_sent(self):
        # A wrong password given by flag: ClickHouse refuses the inserts (counted, retried,
        # the record stays in the spool) and UsageService's queries. Without the headers the
        # server would take the calls as its password-less "default" user.
        p, addr = start_chat("chat-badkey", ["--clickhouse-user", "llmgate",
                                             "--clickhouse-key", "not-the-password"])
        channel = grpc.insecure_channel(addr["grpc"])
        try:
            chat = pbg.ChatServiceStub(channel)
            usage = pbg.UsageServiceStub(channel)
            u = "u-" + uuid.uuid4().hex[:12]
            chat.Complete(pb.ChatRequest(user_id=u, model="demo", max_tokens=3,
                                         messages=[pb.ChatMessage(role="user", content="hi")]),
                          timeout=30)
            wait_for(lambda: (metric(addr["admin"], "llmgate_shipper_insert_failures_total")
                              or 0) >= 1, "an insert refused for the wrong key")
            self.assertEqual(metric(addr["admin"], "llmgate_shipper_rows_shipped_total"), 0)
            with self.assertRaises(grpc.RpcError) as cm:
                usage.ListLogs(pb.ListLogsRequest(user_id=u, limit=10), timeout=30)
            self.assertNotEqual(cm.exception.code(), grpc.StatusCode.OK)
        finally:
            channel.close()
            p.kill()  # its spool cannot drain (wrong key); the directory is the test's own
            p.wait(timeout=60)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True)
    ap.add_argument("--analytics", required=True)
    ap.add_argument("--protos", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--ch-scripts", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
