# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the lg-grpc-testserver integration tests.

The ctest entries set LG_TESTSERVER (the binary) and LG_PYGEN (grpcio stubs generated into the
build tree by grpc_tools.protoc). Every test starts its own server on 127.0.0.1:0 and parses
the `listening grpc HOST:PORT` line; nothing sleeps and hopes: waits poll a condition with a
deadline.
"""
import json
import os
import select
import signal
import socket
import subprocess
import time

import grpc

# The generated grpc.testing / grpc.health / grpc.reflection modules live in the build tree;
# grpc is a regular package, so its search path is extended rather than shadowed.
grpc.__path__.append(os.path.join(os.environ["LG_PYGEN"], "grpc"))

from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0


class Server:
    """A running lg-grpc-testserver; stop() checks it exits cleanly (ASan/LSan included)."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [os.environ["LG_TESTSERVER"], "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE, stderr=None, text=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        if not line.startswith("listening grpc "):
            self.proc.kill()
            raise RuntimeError("server did not start: %r" % line)
        self.addr = line.split()[2]
        self.host, port = self.addr.rsplit(":", 1)
        self.port = int(port)

    def channel(self, **kw):
        return grpc.insecure_channel(self.addr, **kw)

    def stub(self, channel):
        return test_pb2_grpc.TestServiceStub(channel)

    def stats(self):
        """The test-only counters of the server (JSON)."""
        with self.channel() as ch:
            call = ch.unary_unary("/llmgate.testing.Stats/Get",
                                  request_serializer=lambda x: x,
                                  response_deserializer=lambda x: x)
            return json.loads(call(b"", timeout=10))

    def wait_stats(self, pred, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        s = self.stats()
        while not pred(s):
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s; stats=%r" % (what, s))
            time.sleep(0.02)
            s = self.stats()
        return s

    def assert_serving(self):
        """A fresh connection still gets a correct answer."""
        with self.channel() as ch:
            r = self.stub(ch).UnaryCall(messages_pb2.SimpleRequest(response_size=7), timeout=10)
            assert len(r.payload.body) == 7

    def stop(self, sig=signal.SIGTERM):
        """Stops the server with |sig| (None: it is already on its way out; just wait)."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not exit after signal")
        self.proc.stdout.close()
        if rc != 0:
            raise AssertionError("server exited with %d (sanitizer report above?)" % rc)


def raw_connect(server, timeout=10.0):
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_until_closed(sock, limit=1 << 20):
    """Reads until the peer closes (or |limit| bytes); returns the bytes."""
    out = b""
    while len(out) < limit:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        out += chunk
    return out


__all__ = ["Server", "raw_connect", "recv_until_closed", "empty_pb2", "messages_pb2",
           "test_pb2_grpc", "grpc"]
