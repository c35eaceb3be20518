#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Half-open TCP (issue 7): an SSE reader vanishes without FIN or RST mid-stream. Runs in a
private network namespace (`unshare -n`, started by ctest); the reader runs in a second one
behind a veth pair and vanishes by dropping its address, touching nothing else on the
machine.

The adapter keeps writing events that are never acknowledged; its per-client output bound
(--outbuf-bytes) and chat's replay bound must release the stream without the client's help,
generation and billing go on, and the adapter keeps serving others. A nearly idle stream
(one event a second and heartbeats: never near the output bound) is released by the
adapter's TCP_USER_TIMEOUT (--tcp-user-timeout-ms), long before its answer would end.
Skipped when namespaces or veth are not available (needs CAP_NET_ADMIN).
  unshare -n test_half_open.py --chat BIN --sse BIN --workdir DIR
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

ARGS = None


def sh(*argv):
    return subprocess.call(list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class HalfOpen(unittest.TestCase):
    def setUp(self):
        try:
            # Under `unshare -n` (exec'd) our parent is the caller, still in the old namespace.
            private = (os.readlink("/proc/self/ns/net") !=
                       os.readlink("/proc/%d/ns/net" % os.getppid()))
        except OSError:
            private = False
        if not private:  # never touch the machine's own network
            self.skipTest("not in a private network namespace (run under unshare -n)")
        if sh("ip", "link", "set", "lo", "up") != 0 or \
                sh("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1") != 0:
            self.skipTest("needs a private network namespace with CAP_NET_ADMIN (unshare -n)")
        self.addCleanup(sh, "ip", "link", "del", "v0")
        sh("ip", "addr", "add", "10.77.0.1/24", "dev", "v0")
        sh("ip", "link", "set", "v0", "up")
        work = ARGS.workdir
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        here = os.path.dirname(os.path.abspath(__file__))
        self.fake = lib.Proc([sys.executable, os.path.join(here, "fault_upstream.py")],
                             ["fake", "blackhole"])
        self.addCleanup(self.fake.kill)
        cfg = {"providers": [{"id": "fake", "kind": "openai",
                              "base_url": "http://%s/v1" % self.fake.addr["fake"],
                              "max_retries": 0,
                              "models": [{"name": "fault-slow-long", "input_usd_per_mtok": 1,
                                          "output_usd_per_mtok": 1}]},
                             {"id": "demo", "kind": "demo"}]}
        with open(os.path.join(work, "chat.json"), "w") as f:
            json.dump(cfg, f)
        self.records = os.path.join(work, "records.jsonl")
        idle = self._testMethodName.startswith("test_idle")
        self.chat = lib.Proc([ARGS.chat, "--listen", "127.0.0.1:0", "--admin-listen",
                              "127.0.0.1:0", "--config", os.path.join(work, "chat.json"),
                              "--records-file", self.records, "--grace-ms", "2000",
                              "--replay-max-events", "256"] +
                             (["--demo-pace-ms", "1000"] if idle else []), ["grpc", "admin"],
                             log=os.path.join(work, "chat.log"))
        self.sse = lib.Proc([ARGS.sse, "--listen", "10.77.0.1:0", "--chat",
                             self.chat.addr["grpc"], "--outbuf-bytes", "65536",
                             "--heartbeat-ms", "500"] +
                            (["--tcp-user-timeout-ms", "3000"] if idle else []), ["http"],
                            log=os.path.join(work, "sse.log"))

    def tearDown(self):
        c1 = self.sse.stop()
        c2 = self.chat.stop()
        self.assertEqual((c1, c2), (0, 0), "exit codes (LeakSanitizer?)")

    def post(self, model):
        host, port = self.sse.addr["http"].rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=30)
        body = json.dumps({"model": model, "max_tokens": 30000,
                           "messages": [{"role": "user", "content": "long"}]}).encode()
        s.sendall(b"POST /v1/chat/streams HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        f = s.makefile("rb")
        self.assertIn(b"201", f.readline())
        n = 0
        while True:
            line = f.readline().strip()
            if not line:
                break
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        created = json.loads(f.read(n))
        s.close()
        return created

    def vanishing_reader(self, created, events):
        """Starts a reader of |created| in its own network namespace behind a veth pair, so
        it can vanish the way a phone or a crashed NAT does (no FIN, no RST, packets just
        stop); returns once it has read |events| content events."""
        here = os.path.dirname(os.path.abspath(__file__))
        client = subprocess.Popen(["unshare", "-n", sys.executable,
                                   os.path.join(here, "half_open_client.py"),
                                   self.sse.addr["http"], created["events_url"], str(events)],
                                  stdout=subprocess.PIPE)
        self.addCleanup(client.wait)
        self.addCleanup(client.kill)
        pid = str(client.pid)
        lib.wait_for(lambda: os.readlink("/proc/%s/ns/net" % pid) !=
                     os.readlink("/proc/self/ns/net"), "client in its own namespace", 10)
        lib.wait_for(lambda: sh("ip", "link", "set", "v1", "netns", pid) == 0,
                     "veth end moved into the client's namespace", 10)
        for argv in (["ip", "link", "set", "lo", "up"],
                     ["ip", "addr", "add", "10.77.0.2/24", "dev", "v1"],
                     ["ip", "link", "set", "v1", "up"]):
            self.assertEqual(sh("nsenter", "-t", pid, "-n", *argv), 0, argv)
        self.assertIn(b"200", client.stdout.readline())
        self.assertEqual(client.stdout.readline().strip(), b"read%d" % events)
        return pid

    def vanish(self, pid):
        # The client's address goes away; packets to it are dropped silently there.
        self.assertEqual(sh("nsenter", "-t", pid, "-n", "ip", "addr", "flush", "dev", "v1"), 0)

    def test_half_open_reader_is_released(self):
        created = self.post("fault-slow-long")
        self.vanish(self.vanishing_reader(created, 5))
        admin = self.sse.addr["http"]
        lib.wait_for(lambda: lib.metrics(admin).get("llmgate_sse_streams_open", 0) == 0,
                     "half-open reader released by the server", 120)
        rec = lib.wait_for(lambda: [r for r in lib.records(self.records)
                                    if r["stream_id"] == created["stream_id"]], "record", 120)
        sys.stderr.write("[half-open] released; record status %s, completion tokens %d, "
                         "slow_clients_total %d\n" % (
                             rec[0]["status"], rec[0]["completion_tokens"],
                             lib.metrics(admin).get("llmgate_sse_slow_clients_total", 0)))
        self.assertIn(rec[0]["status"], ("success", "cancelled"))
        # Others are still served.
        self.assertEqual(lib.http_get(admin, "/healthz")[0], 200)

    def test_idle_half_open_reader_is_released_by_tcp_user_timeout(self):
        # The demo answer paces one token a second: a hundred-odd seconds of small writes that
        # never come near --outbuf-bytes, so only TCP_USER_TIMEOUT (3 s here) can find the
        # reader gone before the answer ends.
        created = self.post("demo")
        self.vanish(self.vanishing_reader(created, 2))
        admin = self.sse.addr["http"]
        lib.wait_for(lambda: lib.metrics(admin).get("llmgate_sse_streams_open", 0) == 0,
                     "idle half-open reader released (TCP_USER_TIMEOUT)", 60)
        recs = [r for r in lib.records(self.records) if r["stream_id"] == created["stream_id"]]
        self.assertEqual(recs, [], "the answer ended before the reader was released: no test")
        self.assertEqual(lib.metrics(admin).get("llmgate_sse_slow_clients_total", 0), 0)
        self.assertEqual(lib.http_get(admin, "/healthz")[0], 200)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True)
    ap.add_argument("--sse", required=True)
    ap.add_argument("--workdir", required=True)
    ARGS, rest = ap.parse_known_args()
    lib.run_tests([sys.argv[0]] + rest)


if __name__ == "__main__":
    main()
