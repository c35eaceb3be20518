#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Client side of test_half_open.py, run in its own network namespace: connects to ADDR,
GETs PATH, prints the status line and "readN" after N content events (third argument,
default 5), then holds the socket open without reading until killed."""
import socket, sys, time
# child netns client: waits for its address, connects, GETs the events url, reads 5 content events, then holds
addr, path = sys.argv[1], sys.argv[2]
want = int(sys.argv[3]) if len(sys.argv) > 3 else 5
host, port = addr.rsplit(":", 1)
deadline = time.monotonic() + 30
while True:
    try:
        s = socket.create_connection((host, int(port)), timeout=5); break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.05)
s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
f = s.makefile("rb")
print(f.readline().decode().strip(), flush=True)
seen = 0
while seen < want:
    if f.readline().startswith(b"event: content"):
        seen += 1
print("read%d" % want, flush=True)
time.sleep(600)
