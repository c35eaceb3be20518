#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""An OpenAI-compatible fake upstream for llmgate tests (stands in for a paid API only).

POST /v1/chat/completions speaks the exact streaming wire format of OpenAI's chat
completions API (HTTP/1.1, chunked transfer encoding, text/event-stream, `data: {chunk}`
events, `data: [DONE]`). The behaviour is scripted per request by the `model` field, so one
fake serves every test case at once:

  fake-normal        6 content chunks, finish "stop", usage chunk (include_usage), [DONE]
  fake-crlf          the same with CRLF line ends and SSE comments
  fake-nousage       as normal, without the usage chunk (upstream gave no usage)
  fake-429           first attempt of a request id: 429 + Retry-After: 1; then normal
  fake-429ms         first attempt: 429 + retry-after-ms: 50; then normal
  fake-500           always 500 with an OpenAI error body (retried, then fails)
  fake-500-once      first attempt 500, then normal
  fake-500-after     3 content chunks, then a mid-stream error object, then the end
  fake-cut           3 content chunks, then the connection closes (no finish, no [DONE])
  fake-malformed     one valid chunk, then a data line that is not JSON
  fake-400           400 invalid_request_error (not retried)
  fake-hang          reads the request, never answers (first-byte timeout)
  fake-trickle       normal, with 150 ms between chunks
  fake-cumulative    usage on every chunk, cumulative (vLLM continuous usage stats)
  fake-long-N        N content chunks "tok0 tok1 ..." (benchmarks), usage, [DONE]

GET /_stats answers JSON {"requests": {model: count}, "last_body": {...}} so tests can check
retries and the request the gateway sent. Prints `listening fake HOST:PORT` once bound.
Usage: openai_fake.py [--listen 127.0.0.1:0]
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = ["Hello", " from", " the", " fake", " upstream", "."]
USAGE = {"prompt_tokens": 11, "completion_tokens": len(WORDS), "total_tokens": 11 + len(WORDS),
         "prompt_tokens_details": {"cached_tokens": 3},
         "completion_tokens_details": {"reasoning_tokens": 0}}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {}
        self.attempts = {}  # (model, x-request-id) -> count
        self.last_body = None

    def count(self, model, rid):
        with self.lock:
            self.requests[model] = self.requests.get(model, 0) + 1
            key = (model, rid)
            self.attempts[key] = self.attempts.get(key, 0) + 1
            return self.attempts[key]


STATE = State()


def chunk(cid, model, delta, finish=None, usage=False):
    obj = {"id": cid, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
           "system_fingerprint": "fp_fake",
           "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    obj["usage"] = None
    return obj


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openai-fake/1"
    # Real upstreams send each SSE event at once; without TCP_NODELAY a small write waits for
    # the ACK of the previous one (up to the peer's 40 ms delayed ACK on a kept-alive
    # connection), which would be measured as gateway TTFT.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet: tests read stdout
        pass

    # ---- plumbing ----
    def send_json(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-request-id", "req_fake")
        self.end_headers()

    def raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, obj, eol="\n"):
        text = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"))
        self.raw("data: " + text + eol + eol)

    def end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # ---- routes ----
    def do_GET(self):
        if self.path == "/_stats":
            with STATE.lock:
                self.send_json(200, {"requests": STATE.requests, "last_body": STATE.last_body})
            return
        self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        if self.path != "/v1/chat/completions":
            self.send_json(404, {"error": {"message": "unknown path", "type": "invalid_request_error"}})
            return
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        with STATE.lock:
            STATE.last_body = body
        model = body.get("model", "")
        attempt = STATE.count(model, self.headers.get("X-Request-Id", ""))
        if not body.get("stream"):
            self.send_json(400, {"error": {"message": "this fake only streams", "type": "invalid_request_error"}})
            return
        self.scenario(model, attempt, body)

    def normal(self, model, words=WORDS, eol="\n", usage=True, pause=0.0, comments=False):
        cid = "chatcmpl-fake"
        self.start_stream()
        if comments:
            self.raw(": keep-alive" + eol + eol)
        self.event(chunk(cid, model, {"role": "assistant", "content": ""}), eol)
        for w in words:
            if pause:
                time.sleep(pause)
            self.event(chunk(cid, model, {"content": w}), eol)
        self.event(chunk(cid, model, {}, finish="stop"), eol)
        if usage:
            u = dict(USAGE)
            u["completion_tokens"] = len(words)
            u["total_tokens"] = u["prompt_tokens"] + len(words)
            last = chunk(cid, model, {})
            last["choices"] = []
            last["usage"] = u
            self.event(last, eol)
        self.event("[DONE]", eol)
        self.end_stream()

    def scenario(self, model, attempt, body):
        err = lambda m, t, c=None: {"error": {"message": m, "type": t, "param": None, "code": c}}
        if model in ("fake-normal",):
            self.normal(model)
        elif model == "fake-crlf":
            self.normal(model, eol="\r\n", comments=True)
        elif model == "fake-nousage":
            self.normal(model, usage=False)
        elif model == "fake-429":
            if attempt == 1:
                self.send_json(429, err("Rate limit reached", "requests", "rate_limit_exceeded"),
                               {"Retry-After": "1"})
            else:
                self.normal(model)
        elif model == "fake-429ms":
            if attempt == 1:
                self.send_json(429, err("Rate limit reached", "requests", "rate_limit_exceeded"),
                               {"retry-after-ms": "50"})
            else:
                self.normal(model)
        elif model == "fake-500":
            self.send_json(500, err("The server had an error", "server_error"))
        elif model == "fake-500-once":
            if attempt == 1:
                self.send_json(500, err("The server had an error", "server_error"))
            else:
                self.normal(model)
        elif model == "fake-500-after":
            cid = "chatcmpl-fake"
            self.start_stream()
            for w in WORDS[:3]:
                self.event(chunk(cid, model, {"content": w}))
            self.event(err("The server had an error while processing your request", "server_error"))
            self.end_stream()
        elif model == "fake-cut":
            cid = "chatcmpl-fake"
            self.start_stream()
            for w in WORDS[:3]:
                self.event(chunk(cid, model, {"content": w}))
            self.close_connection = True
            self.wfile.flush()
        elif model == "fake-malformed":
            cid = "chatcmpl-fake"
            self.start_stream()
            self.event(chunk(cid, model, {"content": "Hi"}))
            self.raw("data: {\"id\": \"broken\n\n")
            self.end_stream()
        elif model == "fake-400":
            self.send_json(400, err("Invalid 'messages': empty", "invalid_request_error"))
        elif model == "fake-hang":
            time.sleep(30)
            self.close_connection = True
        elif model == "fake-cumulative":
            cid = "chatcmpl-fake"
            self.start_stream()
            for i, w in enumerate(WORDS):
                c = chunk(cid, model, {"content": w})
                c["usage"] = {"prompt_tokens": 11, "completion_tokens": i + 1,
                              "total_tokens": 12 + i}
                self.event(c)
            last = chunk(cid, model, {}, finish="stop")
            last["usage"] = {"prompt_tokens": 11, "completion_tokens": len(WORDS),
                             "total_tokens": 11 + len(WORDS)}
            self.event(last)
            self.event("[DONE]")
            self.end_stream()
        elif model == "fake-trickle":
            self.normal(model, pause=0.15)
        elif model.startswith("fake-long-"):
            n = int(model[len("fake-long-"):])
            self.normal(model, words=["tok%d " % i for i in range(n)])
        else:
            self.send_json(404, err("The model `%s` does not exist" % model, "invalid_request_error",
                                    "model_not_found"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    print("listening fake %s:%d" % srv.server_address[:2], flush=True)
    try:
        srv.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
