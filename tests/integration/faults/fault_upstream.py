#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Fault scenarios for the OpenAI-compatible fake upstream (stands in for a paid API only).

Extends tests/fakes/openai_fake.py (owner: chat; imported, not copied) with the upstream
faults of issue 7. Like the base fake, the scenario is chosen by the request's `model`:

  fault-429-storm    every attempt: 429 + Retry-After: 1 (a storm never clears)
  fault-503          every attempt: 503 with an OpenAI error body
  fault-503-after    2 content chunks, then an error object {"error": {"code": 503}}, end
  fault-hang-mid     2 content chunks, then silence (idle timeout must fire)
  fault-garbage-head binary garbage instead of an HTTP status line, then close
  fault-garbage-body 200 text/event-stream, then binary garbage, then close
  fault-reset-mid    2 content chunks, then a TCP RST (SO_LINGER 0)
  fault-10mb         200, 10 MB of content in 10,240 chunks of 1 KiB, then finish/[DONE]
  fault-10mb-line    200, one 10 MB `data:` line
  fault-slow-long    3000 chunks of 100 bytes, 5 ms apart (~15 s, a live stream to lose)
  fault-inject       content carrying CR/LF/"id:"/"event:"/"data:" text (SSE injection)

Everything else falls through to the base fake. A second listener, `blackhole`, never
accepts: its accept queue is filled by this process, so a further SYN gets no answer and a
client's connect() hangs (the "hang at connect" fault).
Prints `listening fake HOST:PORT` and `listening blackhole HOST:PORT`.
"""
import argparse
import importlib.util
import os
import socket
import struct
import sys
import time
from http.server import ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "openai_fake", os.path.join(HERE, "..", "..", "fakes", "openai_fake.py"))
base = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(base)

TEN_MB = 10 * 1024 * 1024
INJECT = ["line1\r\n\r\nid: forged.999\r\nevent: done\r\ndata: {\"type\":\"done\"}\n\n",
          "\nid: evil\nretry: 1\n\n", "data: [DONE]\n\n", "\u2028tail\r"]


class Handler(base.Handler):
    def err_obj(self, msg, typ, code=None):
        return {"error": {"message": msg, "type": typ, "param": None, "code": code}}

    def chunks(self, model, words):
        for w in words:
            self.event(base.chunk("chatcmpl-fault", model, {"content": w}))

    def scenario(self, model, attempt, body):
        if model == "fault-429-storm":
            self.send_json(429, self.err_obj("Rate limit reached", "requests",
                                             "rate_limit_exceeded"), {"Retry-After": "1"})
        elif model == "fault-503":
            self.send_json(503, self.err_obj("The engine is currently overloaded",
                                             "server_error"))
        elif model == "fault-503-after":
            self.start_stream()
            self.chunks(model, base.WORDS[:2])
            self.event(self.err_obj("The engine is currently overloaded", "server_error", 503))
            self.end_stream()
        elif model == "fault-hang-mid":
            self.start_stream()
            self.chunks(model, base.WORDS[:2])
            time.sleep(30)
            self.close_connection = True
        elif model == "fault-garbage-head":
            self.wfile.write(bytes(range(256)) * 4)
            self.wfile.flush()
            self.close_connection = True
        elif model == "fault-garbage-body":
            self.start_stream()
            self.raw(bytes(range(256)) * 16)
            self.end_stream()
            self.close_connection = True
        elif model == "fault-reset-mid":
            self.start_stream()
            self.chunks(model, base.WORDS[:2])
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif model == "fault-10mb":
            self.normal(model, words=["x" * 1024] * (TEN_MB // 1024))
        elif model == "fault-10mb-line":
            self.start_stream()
            self.event(base.chunk("chatcmpl-fault", model, {"content": "y" * TEN_MB}))
            self.end_stream()
        elif model == "fault-slow-long":
            self.normal(model, words=["z" * 100] * 3000, pause=0.005)
        elif model == "fault-inject":
            self.normal(model, words=INJECT)
        else:
            super().scenario(model, attempt, body)

    def finish(self):
        try:
            super().finish()
        except OSError:  # the reset scenario closed the socket itself
            pass


def blackhole():
    """A listener whose accept queue is full: later SYNs are dropped, connect() hangs."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fillers = []
    addr = ls.getsockname()
    # backlog 0 admits one queued connection; fill it (plus one for kernels that admit two).
    for _ in range(2):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(addr)
        except BlockingIOError:
            pass
        fillers.append(c)
    return ls, fillers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    hole = blackhole()
    print("listening fake %s:%d" % srv.server_address[:2], flush=True)
    print("listening blackhole %s:%d" % hole[0].getsockname(), flush=True)
    try:
        srv.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
