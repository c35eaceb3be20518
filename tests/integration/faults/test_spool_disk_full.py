#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Disk spool full (issue 7): llmgate-chat's spool directory on a 512 KiB tmpfs (a real
ENOSPC, not the configured cap that it_disk_cap.sh covers), ClickHouse down while 1500
records are made, then up. The counts must reconcile exactly:
    records made = rows in llm_requests + dead letters + counted drops.
Needs CAP_SYS_ADMIN for the tmpfs mount; skipped without it.

KNOWN FAILURE (registered DISABLED in faults.cmake until lg_spool is fixed): after the first
failed write the spool keeps accepting records into its write buffer and reports them
spooled; they are never written, dead-lettered or counted as dropped. Measured: 1500 made,
500 on disk, 0 dead letters, 0 drops (1005 spool_flush_failed log lines, exit 0).
  test_spool_disk_full.py --chat BIN --analytics BIN --protos DIR --ch-scripts DIR --workdir DIR
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

ARGS = None
MADE = 1500


class SpoolDiskFull(unittest.TestCase):
    def setUp(self):
        work = ARGS.workdir
        if os.path.ismount(os.path.join(work, "mnt")):
            subprocess.call(["umount", os.path.join(work, "mnt")])
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(os.path.join(work, "mnt"))
        self.mnt = os.path.join(work, "mnt")
        if subprocess.call(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", self.mnt],
                           stderr=subprocess.DEVNULL) != 0:
            self.skipTest("cannot mount a tmpfs (needs CAP_SYS_ADMIN)")
        self.addCleanup(subprocess.call, ["umount", self.mnt])
        self.grpc, self.pb, self.pbg = lib.gen_stubs(ARGS.protos, work)
        self.ch = lib.ClickHouse(ARGS.ch_scripts, os.path.join(work, "ch"))
        self.ch.start()
        self.addCleanup(self.ch.stop)
        subprocess.check_call([ARGS.analytics, "migrate", "--clickhouse-url", self.ch.url],
                              stdout=subprocess.DEVNULL)
        self.ch.stop()
        self.spool = os.path.join(self.mnt, "spool")
        self.chat = lib.Proc([ARGS.chat, "--listen", "127.0.0.1:0", "--admin-listen",
                              "127.0.0.1:0", "--clickhouse-url", self.ch.url, "--spool-dir",
                              self.spool, "--demo-pace-ms", "0"], ["grpc", "admin"],
                             log=os.path.join(work, "chat.log"))
        self.addCleanup(self.chat.kill)

    def test_spool_disk_full_counts_reconcile(self):
        pb, grpc = self.pb, self.grpc
        channel = grpc.insecure_channel(self.chat.addr["grpc"])
        stub = self.pbg.ChatServiceStub(channel)
        ok = 0
        for i in range(MADE):
            stub.Complete(pb.ChatRequest(user_id="df-%d" % i, model="demo", max_tokens=3,
                                         messages=[pb.ChatMessage(role="user",
                                                                  content="x" * 300)]),
                          timeout=30)
            ok += 1
        self.assertEqual(ok, MADE)  # the request path never waits for the spool
        self.ch.start()

        def balanced():
            rows = int(self.ch.query("SELECT count() FROM llm_requests FINAL "
                                     "WHERE startsWith(user_id, 'df-')"))
            dead = 0
            for path in glob.glob(os.path.join(self.spool, "deadletter*")):
                with open(path, "rb") as f:
                    dead += sum(1 for ln in f if ln.strip())
            m = lib.metrics(self.chat.addr["admin"])
            drops = int(m.get("llmgate_chat_records_dropped_total", 0) +
                        m.get("llmgate_shipper_dropped_records_total", 0))
            self.last = (rows, dead, drops)
            return rows + dead + drops == MADE
        try:
            lib.wait_for(balanced, "made = rows + dead letters + drops", 90)
        finally:
            sys.stderr.write("[spool disk full] made %d rows %d dead %d dropped %d\n"
                             % ((MADE,) + getattr(self, "last", (0, 0, 0))))
        channel.close()
        self.assertEqual(self.chat.stop(), 0)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--chat", required=True)
    ap.add_argument("--analytics", required=True)
    ap.add_argument("--protos", required=True)
    ap.add_argument("--ch-scripts", required=True)
    ap.add_argument("--workdir", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
