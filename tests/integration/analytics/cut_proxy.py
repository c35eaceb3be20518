"""cut_proxy: an HTTP/1.1 relay in front of a real ClickHouse that loses answers on purpose.

It forwards each request to ClickHouse and relays the answer, except for the INSERTs whose
ordinal numbers are given with --cut: for those, ClickHouse executes the insert, and the
relay then closes the client's connection without a byte of the answer. That is the
"connection cut before the answer" case of issue 5: the client cannot know whether its
batch landed.
usage: cut_proxy.py CLICKHOUSE_HOST:PORT --cut 2,5
prints: listening cut_proxy 127.0.0.1:PORT; on stderr a line per client connection
accepted and per INSERT relayed (keep-alive is counted from them)
"""
import argparse
import http.client
import socket
import sys
import threading

ap = argparse.ArgumentParser()
ap.add_argument("upstream")
ap.add_argument("--cut", default="")
args = ap.parse_args()
UP_HOST, UP_PORT = args.upstream.rsplit(":", 1)
CUT = {int(x) for x in args.cut.split(",") if x}
lock = threading.Lock()
inserts = [0]
MAX_HEADER = 64 * 1024


def read_request(f):
    line = f.readline(MAX_HEADER)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers = []
    length = 0
    while True:
        h = f.readline(MAX_HEADER)
        if h in (b"\r\n", b"\n", b""):
            break
        k, v = h.decode("latin-1").split(":", 1)
        headers.append((k.strip(), v.strip()))
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    body = f.read(length) if length else b""
    return method, target, headers, body


def serve(conn):
    f = conn.makefile("rb")
    try:
        while True:
            req = read_request(f)
            if req is None:
                return
            method, target, headers, body = req
            up = http.client.HTTPConnection(UP_HOST, int(UP_PORT), timeout=120)
            up.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                if k.lower() not in ("connection",):
                    up.putheader(k, v)
            up.putheader("Connection", "close")
            up.endheaders(body)
            resp = up.getresponse()
            data = resp.read()
            is_insert = "INSERT" in target
            cut = False
            if is_insert:
                with lock:
                    inserts[0] += 1
                    cut = inserts[0] in CUT
                    sys.stderr.write("cut_proxy: insert #%d\n" % inserts[0])
                    sys.stderr.flush()
            if cut:
                sys.stderr.write("cut_proxy: cut the answer of insert #%d (status %d)\n"
                                 % (inserts[0], resp.status))
                sys.stderr.flush()
                conn.shutdown(socket.SHUT_RDWR)
                return
            out = ["HTTP/1.1 %d %s" % (resp.status, resp.reason)]
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length",
                                     "keep-alive"):
                    out.append("%s: %s" % (k, v))
            out.append("Content-Length: %d" % len(data))
            out.append("Connection: keep-alive")
            conn.sendall(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + data)
            up.close()
    except (ConnectionError, OSError):
        return
    finally:
        conn.close()


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print("listening cut_proxy 127.0.0.1:%d" % srv.getsockname()[1], flush=True)
conns = 0
while True:
    c, _ = srv.accept()
    conns += 1
    sys.stderr.write("cut_proxy: connection #%d\n" % conns)
    sys.stderr.flush()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
