# SPDX-License-Identifier: Apache-2.0
"""The grpc C++ 1.51 client (grpc-cpp-interop-client) against lg-grpc-testserver: every case
must pass, and the server must exit cleanly (ASan/LSan) afterwards."""
import os
import subprocess
import unittest

from lgts import Server


class CppClient(unittest.TestCase):
    def test_cpp_client_interop(self):
        server = Server()
        try:
            r = subprocess.run([os.environ["LG_CPP_CLIENT"], server.addr], capture_output=True,
                               text=True, timeout=120)
            print(r.stdout)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotIn("FAILED", r.stdout)
            self.assertEqual(r.stdout.count(" ok"), 12)
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
