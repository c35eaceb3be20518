# SPDX-License-Identifier: Apache-2.0
"""Shared harness of the integration tests written in Python (faults, security, soak, chat,
replicas): real processes that print `listening <name> HOST:PORT`, conditions polled with a
deadline (never sleep-and-hope, never a timing threshold), gRPC stubs generated into the work
directory, /metrics scraping, process RSS and fd counts from /proc, ClickHouse over HTTP.
"""
import json
import os
import signal
import subprocess
import sys
import time
import unittest
import urllib.parse
import urllib.request

POLL_S = 0.05
WAIT_S = 60.0


def run_tests(argv):
    """unittest.main for a test that needs a privilege it may lack: exits 77 (ctest's
    SKIP_RETURN_CODE) when every test skipped, so ctest reports it skipped, not passed."""
    r = unittest.main(argv=argv, verbosity=2, exit=False).result
    if r.testsRun > 0 and len(r.skipped) == r.testsRun and r.wasSuccessful():
        sys.exit(77)
    sys.exit(0 if r.wasSuccessful() else 1)


def wait_for(cond, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # the condition may raise until it holds
            last = e
        time.sleep(POLL_S)
    raise AssertionError("timed out waiting for %s (last error: %r)" % (what, last))


class Proc:
    """A child process that prints `listening <name> HOST:PORT` lines on stdout."""

    def __init__(self, argv, names, env=None, log=None, preexec_fn=None):
        self.argv = argv
        self.logpath = log
        self.log = open(log, "ab") if log else subprocess.DEVNULL
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, env=env,
                                  preexec_fn=preexec_fn)
        self.pid = self.p.pid
        self.addr = {}
        deadline = time.monotonic() + WAIT_S
        while set(names) - set(self.addr):
            if time.monotonic() > deadline:
                self.p.kill()
                raise AssertionError("%s did not print its listening lines" % argv[0])
            line = self.p.stdout.readline().decode()
            if not line:
                raise AssertionError("%s exited: %s" % (argv[0], self.p.wait()))
            parts = line.split()
            if len(parts) == 3 and parts[0] == "listening":
                self.addr[parts[1]] = parts[2]

    def alive(self):
        return self.p.poll() is None

    def signal(self, signo):
        if self.p.poll() is None:
            self.p.send_signal(signo)

    def wait(self, timeout=WAIT_S):
        return self.p.wait(timeout=timeout)

    def stop(self, timeout=60):
        """SIGTERM, wait; returns the exit status (SIGKILL after |timeout| s: returns -9)."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        return self.p.wait()

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))


def gen_stubs(protos, work):
    """Generates chat.proto stubs into work/gen; returns (grpc, chat_pb2, chat_pb2_grpc)."""
    gen = os.path.join(work, "gen")
    os.makedirs(gen, exist_ok=True)
    subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I" + protos,
                           "--python_out=" + gen, "--grpc_python_out=" + gen,
                           "llmgate/chat/v1/chat.proto"])
    if gen not in sys.path:
        sys.path.insert(0, gen)
    import grpc
    from llmgate.chat.v1 import chat_pb2, chat_pb2_grpc
    return grpc, chat_pb2, chat_pb2_grpc


def http_get(addr, path, timeout=10):
    with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=timeout) as r:
        return r.status, r.read()


def metrics(addr):
    """Prometheus text from http://addr/metrics as {name{labels}: float}."""
    _, body = http_get(addr, "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            continue
        k, _, v = line.rpartition(" ")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def records(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    return out


def lines(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return sum(1 for ln in f if ln.strip())


class ClickHouse:
    """A private ClickHouse from tests/integration/clickhouse/start.sh (owner: analytics)."""

    def __init__(self, scripts, chdir):
        self.scripts = scripts
        self.dir = chdir
        self.url = None

    def start(self):
        out = subprocess.check_output([os.path.join(self.scripts, "start.sh"), self.dir],
                                      text=True)
        self.url = out.split()[-1]
        return self.url

    def stop(self, hard=False):
        argv = [os.path.join(self.scripts, "stop.sh"), self.dir]
        if hard:
            argv.append("-9")
        subprocess.call(argv, stdout=subprocess.DEVNULL)

    def url_from_dir(self):
        with open(os.path.join(self.dir, "url")) as f:
            self.url = f.read().strip()
        return self.url

    def query(self, sql, timeout=30):
        data = sql.encode()
        req = urllib.request.Request(self.url + "/", data=data)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read().decode()
