# SPDX-License-Identifier: Apache-2.0
"""Harness for one lg_grpc_client integration case (owner: grpc-client).

Starts the python grpcio TestService (peer_server.py) on 127.0.0.1:0, runs the C driver
(lg-grpc-client-interop) against it for one case, serves the driver's "STEP kill" /
"STEP restart" requests (reconnect case), stops the server and exits 0 only when the driver
printed PASS and exited 0. Waits poll a condition with a deadline; nothing sleeps and hopes.

  /usr/bin/python3 run_case.py --driver BIN --case NAME [--max-concurrent-streams N]
"""
import argparse
import os
import select
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
START_TIMEOUT_S = 30.0
CASE_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0


class Peer:
    def __init__(self, port=0, max_streams=0):
        cmd = [sys.executable, os.path.join(HERE, "peer_server.py"), "--port", str(port)]
        if max_streams:
            cmd += ["--max-concurrent-streams", str(max_streams)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        line = read_line(self.proc, START_TIMEOUT_S)
        if not line.startswith("listening grpc "):
            self.kill()
            raise RuntimeError("peer did not start: %r" % line)
        self.addr = line.split()[2]
        self.port = int(self.addr.rsplit(":", 1)[1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(STOP_TIMEOUT_S)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def stop(self):
        try:
            self.proc.stdin.close()  # peer_server exits when stdin closes
        except OSError:
            pass
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


def read_line(proc, timeout):
    """One line from |proc|'s stdout within |timeout| seconds, or "" (EOF / timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            return proc.stdout.readline()
        if proc.poll() is not None:
            return proc.stdout.readline()
    return ""


def start_peer_on(port, max_streams):
    """Restarts the peer on the same |port|; retries while the port is still held."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return Peer(port, max_streams)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--max-concurrent-streams", type=int, default=0)
    args = ap.parse_args()

    peer = Peer(0, args.max_concurrent_streams)
    drv = subprocess.Popen([args.driver, "--target", peer.addr, "--case", args.case],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    verdict = ""
    deadline = time.monotonic() + CASE_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            line = read_line(drv, max(0.1, deadline - time.monotonic()))
            if not line:
                break
            line = line.strip()
            print("driver:", line, flush=True)
            if line == "STEP kill":
                peer.kill()
                drv.stdin.write("done\n")
                drv.stdin.flush()
            elif line == "STEP restart":
                peer = start_peer_on(peer.port, args.max_concurrent_streams)
                drv.stdin.write("done\n")
                drv.stdin.flush()
            elif line.startswith("PASS") or line.startswith("FAIL"):
                verdict = line
        rc = drv.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        drv.kill()
        drv.wait()
        rc = -1
    finally:
        if drv.poll() is None:
            drv.kill()
            drv.wait()
        peer.stop()
    if rc != 0 or not verdict.startswith("PASS"):
        print("case %s failed: rc=%s verdict=%r" % (args.case, rc, verdict), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
