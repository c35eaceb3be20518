# SPDX-License-Identifier: Apache-2.0
"""The grpc-go client (grpc-go-interop-client) against lg-grpc-testserver: every case must
pass, and the server must exit cleanly (ASan/LSan) afterwards."""
import os
import subprocess
import unittest

from lgts import Server


class GoClient(unittest.TestCase):
    def test_go_client_interop(self):
        server = Server()
        try:
            r = subprocess.run([os.environ["LG_GO_CLIENT"], server.addr], capture_output=True,
                               text=True, timeout=120)
            print(r.stdout)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotIn("FAILED", r.stdout)
            self.assertEqual(r.stdout.count(" ok"), 10)
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
