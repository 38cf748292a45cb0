"""What a new user runs first: the demo keeps printing values until it is stopped, and stops
everything it started."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from e2e_test import BINARY

STACK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support", "stack.py")
VALUES = "/pods/%2A/gpu_utilization"


def processes_mentioning(text):
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


class Demo(unittest.TestCase):
    def test_demo_prints_values_every_round_until_stopped(self):
        with tempfile.TemporaryDirectory() as cwd:
            env = dict(os.environ, GMA_DEMO_INTERVAL="1")
            demo = subprocess.Popen([sys.executable, STACK, "demo", os.path.abspath(BINARY)], cwd=cwd,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            rounds, lines = 0, []
            deadline = time.time() + 120
            try:
                while rounds < 5 and time.time() < deadline:
                    line = demo.stdout.readline()
                    if not line:
                        break
                    lines.append(line)
                    # Each round asks for the values and prints the answer's items.
                    if VALUES in line:
                        answer = demo.stdout.readline()
                        lines.append(answer)
                        if '"items":[{' in answer:
                            rounds += 1
            finally:
                demo.send_signal(signal.SIGTERM)
                rest, _ = demo.communicate(timeout=60)
            self.assertEqual(rounds, 5, "".join(lines[-20:]))
            self.assertEqual(demo.returncode, 0)
            self.assertIn("stopped; nothing is left running.", rest)
            self.assertEqual(processes_mentioning(os.path.join(cwd, ".demo")), [])


if __name__ == "__main__":
    unittest.main()
