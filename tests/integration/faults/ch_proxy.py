#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""ch_proxy: an HTTP/1.1 relay in front of a real ClickHouse that misbehaves on command.

Every request is forwarded to ClickHouse (a fresh upstream connection each) and the answer
relayed, except as the current mode says. The test switches modes with
`GET /_fault/<mode>/<n>` on the proxy itself:
  pass/0         relay everything
  slow/<ms>      wait <ms> before forwarding each request (ClickHouse "seconds per insert")
  exception/<n>  the next <n> INSERTs are not forwarded: the answer is 200 OK with a
                 ClickHouse exception in the body ("Code: 241, e.displayText() = DB::Exception:
                 Memory limit ..."), as ClickHouse does when a query fails after its
                 headers were sent
`GET /_stats` answers JSON {"inserts": forwarded INSERTs, "faulted": INSERTs answered with an
exception, "requests": all requests}.
usage: ch_proxy.py CLICKHOUSE_HOST:PORT      prints: listening ch_proxy 127.0.0.1:PORT
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXCEPTION = (b"Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded: "
             b"would use 9.31 GiB, maximum: 9.31 GiB, e.what() = DB::Exception\n")


class State:
    def __init__(self, upstream):
        self.lock = threading.Lock()
        self.upstream = upstream
        self.mode = "pass"
        self.arg = 0
        self.stats = {"inserts": 0, "faulted": 0, "requests": 0}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        st = self.server.state
        if self.path.startswith("/_fault/"):
            _, _, mode, arg = self.path.split("/", 3)
            with st.lock:
                st.mode, st.arg = mode, int(arg)
            return self.reply(200, b"ok\n")
        if self.path == "/_stats":
            with st.lock:
                return self.reply(200, json.dumps(st.stats).encode(), "application/json")
        return self.relay(b"")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.relay(self.rfile.read(n) if n else b"")

    def relay(self, body):
        st = self.server.state
        q = urllib.parse.unquote_plus(urllib.parse.urlsplit(self.path).query).upper()
        is_insert = "INSERT INTO" in q or body[:11].upper() == b"INSERT INTO"
        with st.lock:
            st.stats["requests"] += 1
            mode, arg = st.mode, st.arg
            fault = is_insert and mode == "exception" and st.arg > 0
            if fault:
                st.arg -= 1
                st.stats["faulted"] += 1
            elif is_insert:
                st.stats["inserts"] += 1
        if fault:
            return self.reply(200, EXCEPTION)
        if mode == "slow":
            time.sleep(arg / 1000.0)
        host, port = st.upstream.rsplit(":", 1)
        up = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in ("connection", "content-length"):
                    up.putheader(k, v)
            up.putheader("Content-Length", str(len(body)))
            up.putheader("Connection", "close")
            up.endheaders(body)
            r = up.getresponse()
            data = r.read()
        except OSError:
            self.close_connection = True
            return
        finally:
            up.close()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length",
                                 "keep-alive"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("upstream")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = State(a.upstream)
    print("listening ch_proxy %s:%d" % srv.server_address[:2], flush=True)
    srv.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    sys.exit(main())
