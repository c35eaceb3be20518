#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""ClickHouse and process faults end to end (issue 7), real processes throughout:
llmgate-chat (demo provider) shipping billing records to a real ClickHouse
(tests/integration/clickhouse/start.sh), directly or through ch_proxy.py, with python grpcio
as the client. After every fault the counts reconcile exactly:
    records made = rows in llm_requests (FINAL) + dead letters + counted drops.

The tests run in order (test_1_..., test_2_...) on one ClickHouse and one spool directory:
 1 ClickHouse down at start      records spool, land once it comes up
 2 ClickHouse killed mid-load    (-9), comes back on the same ports, everything lands
 3 SIGKILL of llmgate-chat mid-load (ClickHouse down, so all is spooled), restart: the spool
   replays, rows = records found in the spool at the kill, no row twice
 4 SIGTERM drain with streams in flight: they finish, records land, exit 0, later calls refused
 5 slow ClickHouse (proxy delays every request 1.5 s)
 6 exception inside a 200 (proxy answers 3 INSERTs with 200 + "Code: 241 ..."): retried
 7 fd exhaustion (RLIMIT_NOFILE 64): connections beyond are refused or dropped, accept keeps
   working after they close, the process survives
 8 memory bounds: an over-large request is refused with an error, the service goes on
  test_clickhouse_faults.py --chat BIN --analytics BIN --protos DIR --ch-scripts DIR --workdir DIR
"""
import argparse
import glob
import os
import resource
import shutil
import socket
import sys
import threading
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

ARGS = None
ENV = {}
TOTAL = {"made": 0}
REPORT = []


def setUpModule():
    try:
        start_all()
    except BaseException:
        stop_all()
        raise


def start_all():
    global grpc, pb, pbg
    work = ARGS.workdir
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    grpc, pb, pbg = lib.gen_stubs(ARGS.protos, work)
    ch = lib.ClickHouse(ARGS.ch_scripts, os.path.join(work, "ch"))
    ENV["ch"] = ch
    ch.start()
    lib.subprocess.check_call([ARGS.analytics, "migrate", "--clickhouse-url", ch.url],
                              stdout=lib.subprocess.DEVNULL)
    ENV["spool"] = os.path.join(work, "spool")
    ENV["log"] = os.path.join(work, "chat.log")
    here = os.path.dirname(os.path.abspath(__file__))
    ENV["proxy"] = lib.Proc([sys.executable, os.path.join(here, "ch_proxy.py"),
                             ch.url.split("//", 1)[1]], ["ch_proxy"])


def stop_all():
    if "chat" in ENV:
        ENV["chat"].kill()
    if "proxy" in ENV:
        ENV["proxy"].kill()
    if "ch" in ENV:
        ENV["ch"].stop()


def tearDownModule():
    code = None
    if "chat" in ENV and ENV["chat"].alive():
        close_chat()
        code = ENV["chat"].stop()
    stop_all()
    sys.stderr.write("\nRECONCILIATION (made = rows + dead letters + drops)\n")
    for line in REPORT:
        sys.stderr.write("  " + line + "\n")
    assert code in (None, 0), "llmgate-chat exited with %s (see %s)" % (code, ENV["log"])


def start_chat(url, extra=(), preexec_fn=None):
    if "chat" in ENV and ENV["chat"].log not in (None, lib.subprocess.DEVNULL):
        ENV["chat"].log.close()
    p = lib.Proc([ARGS.chat, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                  "--clickhouse-url", url, "--spool-dir", ENV["spool"], "--demo-pace-ms", "0",
                  "--log-level", "info"] + list(extra), ["grpc", "admin"], log=ENV["log"],
                 preexec_fn=preexec_fn)
    ENV["chat"] = p
    ENV["channel"] = grpc.insecure_channel(p.addr["grpc"])
    ENV["stub"] = pbg.ChatServiceStub(ENV["channel"])
    return p


def close_chat():
    if "channel" in ENV:
        ENV["channel"].close()
        del ENV["channel"]


def complete(u):
    req = pb.ChatRequest(user_id=u, model="demo", max_tokens=3,
                         messages=[pb.ChatMessage(role="user", content="bill me")])
    try:
        ENV["stub"].Complete(req, timeout=30)
        return True
    except grpc.RpcError:
        return False


def load(prefix, n, threads=4, stop=None):
    """n Complete calls from |threads| threads; returns the number answered OK."""
    ok = [0] * threads

    def worker(t):
        for i in range(t, n, threads):
            if stop is not None and stop.is_set():
                return
            if complete("%s-%d" % (prefix, i)):
                ok[t] += 1
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(ok)


def prefix():
    return "f" + uuid.uuid4().hex[:10]


def rows(p):
    q = ENV["ch"].query("SELECT count(), uniqExact(request_id) FROM llm_requests FINAL "
                        "WHERE startsWith(user_id, '%s')" % p)
    final, uniq = (int(x) for x in q.split())
    raw = int(ENV["ch"].query("SELECT count() FROM llm_requests WHERE startsWith(user_id, '%s')"
                              % p))
    return final, uniq, raw


def dead_letters(p):
    n = 0
    for path in glob.glob(os.path.join(ENV["spool"], "deadletter*")):
        with open(path, "rb") as f:
            n += sum(1 for ln in f if p.encode() in ln)
    return n


def dropped():
    return int(lib.metrics(ENV["chat"].addr["admin"]).get(
        "llmgate_chat_records_dropped_total", 0))


def spooled(p):
    """Records of users |p|* in the spool segments: the user id is the one column of these
    records that holds |p|, once per row, in either row format (a RowBinary row has it
    after its length byte, a JSON row after "user_id":")."""
    needle = p.encode()
    n = 0
    for path in glob.glob(os.path.join(ENV["spool"], "*.seg")):
        with open(path, "rb") as f:
            n += f.read().count(needle)
    return n


def reconcile(case, p, made, drops=0, timeout=120):
    def balanced():
        final, uniq, raw = rows(p)
        return (final, uniq, raw) if final + dead_letters(p) + drops == made else None
    final, uniq, raw = lib.wait_for(balanced, "%s: made %d = rows + dead + drops" % (case, made),
                                    timeout)
    dead = dead_letters(p)
    REPORT.append("%-34s made %5d  rows %5d  dead %d  dropped %d  (raw rows before merge %d)"
                  % (case, made, final, dead, drops, raw))
    assert final == uniq, "a request_id counted twice"
    TOTAL["made"] += made
    return final, dead


class ClickHouseFaults(unittest.TestCase):
    def test_1_clickhouse_down_at_start(self):
        ENV["ch"].stop()
        start_chat(ENV["ch"].url)
        p = prefix()
        made = load(p, 200)
        self.assertEqual(made, 200)  # the request path never waits for ClickHouse
        lib.wait_for(lambda: spooled(p) == made, "all records spooled while ClickHouse is down")
        ENV["ch"].start()
        reconcile("clickhouse down at start", p, made, dropped())

    def test_2_clickhouse_killed_mid_load_then_back(self):
        p = prefix()
        done = {}
        t = threading.Thread(target=lambda: done.update(n=load(p, 600)))
        t.start()
        lib.wait_for(lambda: rows(p)[0] > 0, "first rows land")
        ENV["ch"].stop(hard=True)
        t.join()
        self.assertEqual(done["n"], 600)
        ENV["ch"].start()
        reconcile("clickhouse killed mid-load, back", p, 600, dropped())

    def test_3_sigkill_chat_mid_load_then_restart_replays(self):
        ENV["ch"].stop()
        p = prefix()
        stop = threading.Event()
        done = {}
        t = threading.Thread(target=lambda: done.update(n=load(p, 100000, stop=stop)))
        t.start()
        lib.wait_for(lambda: spooled(p) >= 300, "300 records spooled under load")
        # One more call, and the SIGKILL the moment its answer arrives: its record was
        # enqueued microseconds before, well inside the shipper's 20 ms tick.
        last_answered = complete(p + "-last")
        ENV["chat"].kill()  # SIGKILL mid-load
        stop.set()
        t.join()
        close_chat()
        at_kill = spooled(p)
        self.assertTrue(last_answered)
        self.assertEqual(spooled(p + "-last"), 1,
                         "the call answered right before the kill has no spooled record")
        # Durable answers: a call's final answer waits until its record is in the spool file,
        # so every call a client saw succeed has its record there (calls cut by the kill may
        # have one too). Before that, ~100 answered records were lost to the kill (e.g. 479
        # answered, 372 spooled). What reached the spool must land, once.
        REPORT.append("sigkill: calls answered OK %d, records in spool at kill %d"
                      % (done["n"], at_kill))
        self.assertGreaterEqual(at_kill, 300)
        self.assertGreaterEqual(at_kill, done["n"] + 1, "answered calls without a spooled record")
        start_chat(ENV["ch"].url)
        ENV["ch"].start()
        reconcile("sigkill chat mid-load, restart", p, at_kill, dropped())

    def test_4_sigterm_drains_streams_in_flight(self):
        close_chat()
        code = ENV["chat"].stop()
        self.assertEqual(code, 0)
        start_chat(ENV["ch"].url, ["--demo-pace-ms", "20", "--drain-ms", "20000"])
        p = prefix()
        n = 20
        outs = [None] * n
        started = threading.Semaphore(0)

        def stream(i):
            evs = []
            req = pb.ChatRequest(user_id="%s-%d" % (p, i), model="demo", max_tokens=60,
                                 messages=[pb.ChatMessage(role="user", content="long answer")])
            try:
                for ev in ENV["stub"].StreamChat(req, timeout=60):
                    if not evs:
                        started.release()
                    evs.append(ev.WhichOneof("event"))
                outs[i] = ("OK", evs)
            except grpc.RpcError as e:
                if not evs:
                    started.release()
                outs[i] = (e.code().name, evs)
        ts = [threading.Thread(target=stream, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for _ in range(n):
            self.assertTrue(started.acquire(timeout=60))
        ENV["chat"].p.send_signal(lib.signal.SIGTERM)
        for t in ts:
            t.join()
        code = ENV["chat"].p.wait(timeout=60)
        close_chat()
        self.assertEqual(code, 0)
        for status, evs in outs:
            self.assertEqual(status, "OK")
            self.assertEqual(evs[-1], "done", evs[-3:])  # drained, not cut
        reconcile("sigterm drain, 20 streams", p, n, 0)

    def test_5_slow_clickhouse(self):
        proxy = ENV["proxy"].addr["ch_proxy"]
        lib.http_get(proxy, "/_fault/slow/1500")
        start_chat("http://" + proxy)
        p = prefix()
        made = load(p, 300)
        self.assertEqual(made, 300)
        reconcile("slow clickhouse (1.5 s/request)", p, made, dropped())
        lib.http_get(proxy, "/_fault/pass/0")

    def test_6_exception_inside_200(self):
        proxy = ENV["proxy"].addr["ch_proxy"]
        import json
        before = json.loads(lib.http_get(proxy, "/_stats")[1])["faulted"]
        lib.http_get(proxy, "/_fault/exception/3")
        p = prefix()
        made = load(p, 300)
        lib.wait_for(lambda: json.loads(lib.http_get(proxy, "/_stats")[1])["faulted"]
                     == before + 3, "3 INSERTs answered 200 + exception")
        reconcile("exception inside a 200 (x3)", p, made, dropped())

    def test_7_fd_exhaustion_accept_keeps_working(self):
        close_chat()
        self.assertEqual(ENV["chat"].stop(), 0)
        limit = 64

        def lower():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
        chat = start_chat(ENV["ch"].url, preexec_fn=lower)
        host, port = chat.addr["grpc"].rsplit(":", 1)
        socks = []
        for _ in range(limit * 2):
            s = socket.create_connection((host, int(port)), timeout=10)
            socks.append(s)
        with open(ENV["log"], "rb") as f:
            before_total = f.read().count(b'"accept_failed"')
        lib.wait_for(lambda: chat.fds() >= limit - 2, "fd table full")
        self.assertTrue(chat.alive())
        for s in socks:
            s.close()
        lib.wait_for(lambda: chat.fds() < limit - 8, "fds released after clients left")
        probe = prefix()
        lib.wait_for(lambda: load(probe, 1, threads=1) == 1 or None,
                     "a call succeeds after the storm")
        reconcile("fd exhaustion, probe call", probe, 1, dropped())
        with open(ENV["log"], "rb") as f:
            failed = f.read().count(b'"accept_failed"') - before_total
        REPORT.append("fd exhaustion: %d accept_failed log lines while %d connections waited"
                      % (failed, limit * 2))
        # Accepting pauses on EMFILE (LG_LOOP_ACCEPT_PAUSE_MS) instead of spinning on
        # the still-readable socket: before that fix this run logged thousands of lines.
        self.assertLess(failed, limit * 2)
        p = prefix()
        made = load(p, 50)
        self.assertEqual(made, 50)
        reconcile("fd exhaustion, then 50 calls", p, made, dropped())

    def test_8_memory_bound_refused_with_error(self):
        big = "x" * (3 * 1024 * 1024)  # over LG_CHAT_MAX_PROMPT_BYTES (2 MiB)
        req = pb.ChatRequest(user_id="mem-" + prefix(), model="demo",
                             messages=[pb.ChatMessage(role="user", content=big)])
        with self.assertRaises(grpc.RpcError) as cm:
            ENV["stub"].Complete(req, timeout=30)
        self.assertIn(cm.exception.code(), (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                            grpc.StatusCode.INVALID_ARGUMENT))
        REPORT.append("3 MiB prompt: %s" % cm.exception.code().name)
        p = prefix()
        self.assertEqual(load(p, 10), 10)
        reconcile("after memory bound", p, 10, dropped())


INJECTIONS = ["x' OR 1=1 --", "x\\' OR 1=1 --", "x'); DROP TABLE llm_requests; --",
              "x' UNION ALL SELECT * FROM system.users --", "\\", "x\\", "' OR ''='",
              "x\nDROP TABLE llm_requests", "%27%20OR%201%3D1", "x' FORMAT TSV --"]


class Injection(unittest.TestCase):
    """ClickHouse queries built from user input (UsageService, the CLI) resist injection:
    each attempt is refused (INVALID_ARGUMENT / non-zero exit) or answers only that literal
    user's rows (none); the tables and every other user's rows are untouched."""

    def test_9_usage_service_and_cli_resist_injection(self):
        usage = pbg.UsageServiceStub(ENV["channel"])
        victim = prefix()
        self.assertEqual(load(victim, 3), 3)
        reconcile("injection victim rows", victim, 3, dropped())
        total = int(ENV["ch"].query("SELECT count() FROM llm_requests"))
        outcomes = []
        for evil in INJECTIONS:
            md = (("x-user-id", evil),) if "\n" not in evil else ()
            for rpc, req in (("ListLogs", pb.ListLogsRequest(user_id=evil, limit=100)),
                             ("ListLogs-filters", pb.ListLogsRequest(
                                 user_id=victim + "-0", limit=100, model=evil,
                                 conversation_id=evil)),
                             ("GetUsage", pb.GetUsageRequest(user_id=evil))):
                call_md = md if not rpc.endswith("filters") else (("x-user-id", victim + "-0"),)
                try:
                    if rpc.startswith("ListLogs"):
                        got = usage.ListLogs(req, metadata=call_md, timeout=30)
                        n = len(got.records)
                    else:
                        got = usage.GetUsage(req, metadata=call_md, timeout=30)
                        n = int(got.requests)
                    outcomes.append("OK")
                    self.assertEqual(n, 0, "%s %r returned rows" % (rpc, evil))
                except grpc.RpcError as e:
                    outcomes.append(e.code().name)
                    self.assertIn(e.code(), (grpc.StatusCode.INVALID_ARGUMENT,
                                             grpc.StatusCode.PERMISSION_DENIED,
                                             grpc.StatusCode.UNAUTHENTICATED), e.details())
            for cmd in ("usage", "logs"):
                r = lib.subprocess.run([ARGS.analytics, cmd, "--clickhouse-url",
                                        ENV["ch"].url, "--user", evil],
                                       capture_output=True, text=True, timeout=60)
                self.assertNotIn(victim, r.stdout, "CLI %s %r leaked rows" % (cmd, evil))
                outcomes.append("cli-%s-exit%d" % (cmd, r.returncode))
        self.assertEqual(int(ENV["ch"].query("SELECT count() FROM llm_requests")), total)
        self.assertEqual(rows(victim)[0], 3)
        REPORT.append("injection: %d attempts, outcomes %s" % (len(outcomes), sorted(
            {o: outcomes.count(o) for o in outcomes}.items())))


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True)
    ap.add_argument("--analytics", required=True)
    ap.add_argument("--protos", required=True)
    ap.add_argument("--ch-scripts", required=True)
    ap.add_argument("--workdir", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2, failfast=False)


if __name__ == "__main__":
    main()
