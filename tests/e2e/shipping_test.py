"""What a new user runs first: the demo says where its logs are and how to point kubectl at it,
then prints, every round until it is stopped, the HPA's own request (pods by label selector), the
answer as numbers and the replicas an HPA would want; and it stops everything it started."""
import decimal
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from e2e_test import BINARY

STACK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support", "stack.py")
# What an HPA on the triton Deployment asks (kubectl sends pods/%2A/..., as client-go does).
HPA_REQUEST = ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/pods/*/gpu_utilization"
               "?labelSelector=app%3Dtriton")
# The triton pods of the synthetic exporter's --demo scenario (tests/fakes/dcgm_exporter.py).
TRITON_PODS = {"triton-5d8f7c9b6-x2kqp", "triton-5d8f7c9b6-7hbzt"}
TARGET = 80
ROUNDS = 5

COMMAND = re.compile(r"^\[\d\d:\d\d:\d\dZ\] \$ kubectl get --raw '(?P<path>[^']+)'$")
ROW = re.compile(r"^  (?P<pod>\S+) +(?P<value>-?\d+(?:\.\d{1,3})?) +(?P<sampled>\d\d:\d\d:\d\dZ)$")
HPA = re.compile(r"^  HPA \((?P<current>\d+) replicas?\): average (?P<average>\S+) / 80 = (?P<ratio>\S+) -> "
                 r"(?:within the 10% tolerance: keeps|ceil\(\d+ x \S+\) =) (?P<desired>\d+) replicas?\b")


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


def quantity(text):
    """A Quantity as the adapter writes gpu_utilization (0-100, rounded to milli-units)."""
    if not re.fullmatch(r"\d+m?", text):
        raise AssertionError(f"unexpected quantity {text!r}")
    return decimal.Decimal(text[:-1]) / 1000 if text.endswith("m") else decimal.Decimal(text)


def hpa_wants(values, current):
    """The HPA's recommendation for a Pods metric with target averageValue 80, recomputed from
    the printed numbers: kube-controller-manager averages the milli-values with integer division,
    keeps the replicas while |ratio - 1| <= 0.1, else ceil(ratio x pods)."""
    milli = [int(decimal.Decimal(v) * 1000) for v in values]
    average = sum(milli) // len(milli)
    ratio = average / (TARGET * 1000)
    desired = current if abs(ratio - 1.0) <= 0.1 else math.ceil(ratio * len(milli))
    return decimal.Decimal(average) / 1000, desired


class Demo(unittest.TestCase):
    def test_demo_prints_the_hpa_request_and_recommendation_every_round_until_stopped(self):
        with tempfile.TemporaryDirectory() as cwd:
            workdir = os.path.join(cwd, ".demo")
            env = dict(os.environ, GMA_DEMO_INTERVAL="1")
            demo = subprocess.Popen([sys.executable, STACK, "demo", os.path.abspath(BINARY)], cwd=cwd,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            lines, rounds, round_ = [], [], None
            kubeconfig, logs_present = None, False
            deadline = time.time() + 180
            try:
                while len(rounds) < ROUNDS and time.time() < deadline:
                    line = demo.stdout.readline()
                    if not line:
                        break
                    lines.append(line)
                    line = line.rstrip("\n")
                    if m := re.search(r"export KUBECONFIG=(\S+)", line):
                        kubeconfig = m.group(1)
                    if m := COMMAND.match(line):
                        round_ = {"path": m.group("path"), "rows": [], "hpa": None}
                    elif round_ is not None and (m := ROW.match(line)):
                        round_["rows"].append(m.groupdict())
                    elif round_ is not None and (m := HPA.match(line)):
                        round_["hpa"] = m.groupdict()
                        # The same request, asked right away, as the user would copy it.
                        p = subprocess.run(["kubectl", f"--kubeconfig={kubeconfig}", "get", "--raw",
                                            round_["path"]], capture_output=True, text=True, timeout=60)
                        round_["adapter"] = (p.returncode, p.stdout, p.stderr)
                        rounds.append(round_)
                        round_ = None
                # The logs the demo names exist while it runs.
                logs_present = all(os.path.exists(os.path.join(workdir, name))
                                   for name in ("adapter.log", "prometheus.log", "kube.log"))
            finally:
                demo.send_signal(signal.SIGTERM)
                rest, _ = demo.communicate(timeout=60)
            output = "".join(lines)
            self.assertEqual(len(rounds), ROUNDS, "".join(lines[-30:]) + rest)
            self.assertEqual(demo.returncode, 0)
            self.assertIn("stopped; nothing is left running.", rest)
            self.assertEqual(processes_mentioning(workdir), [])

            # Where the logs are and how to point kubectl at the demo.
            self.assertEqual(kubeconfig, os.path.join(workdir, "kubectl.kubeconfig"))
            self.assertRegex(output, re.escape(f"logs         {workdir}/ (kept after it stops):\n") +
                             r" +adapter\.log, prometheus\.log, kube\.log ")
            self.assertTrue(logs_present)
            # First round only: discovery as metric names, the external metric as a table.
            self.assertRegex(output, r"\n  8 metrics, each for pods/ and namespaces/:\n  gpu_engine_active, ")
            self.assertNotIn('"kind":"APIResourceList"', output)
            # The external metric: one item per pod (the 2-GPU pod once), as an HPA reads it.
            self.assertIn("  2 items, one per pod, averaged over the pod's GPUs", output)
            for pod in sorted(TRITON_PODS):
                self.assertEqual(len(re.findall(rf"\n  {pod} +\d+(\.\d+)?\n", output.split(": the request an HPA makes")[0])),
                                 1, pod)
            self.assertIn("desired = ceil(current replicas x average / 80), unchanged while "
                          "|average / 80 - 1| <= 0.1", output)

            compared = 0
            for r in rounds:
                with self.subTest(path=r["path"], rows=r["rows"], hpa=r["hpa"]):
                    # The HPA's own request, labelSelector included; the labelled triton pods answer.
                    self.assertEqual(r["path"], HPA_REQUEST)
                    self.assertEqual({row["pod"] for row in r["rows"]}, TRITON_PODS)
                    values = [row["value"] for row in r["rows"]]
                    for v in values:
                        self.assertTrue(0 <= decimal.Decimal(v) <= 100, v)
                    # The recommendation follows from the printed numbers.
                    average, desired = hpa_wants(values, current=len(values))
                    self.assertEqual(int(r["hpa"]["current"]), len(TRITON_PODS))
                    self.assertEqual(decimal.Decimal(r["hpa"]["average"]), average)
                    self.assertEqual(decimal.Decimal(r["hpa"]["ratio"]), average / TARGET)
                    self.assertEqual(int(r["hpa"]["desired"]), desired)
                    # The adapter answers the same request with the same values: asked a moment
                    # later, it may have refreshed its answer, so compare samples of the same time.
                    code, out, err = r["adapter"]
                    self.assertEqual(code, 0, err)
                    answer = {i["describedObject"]["name"]: (quantity(i["value"]), i["timestamp"].partition("T")[2])
                              for i in json.loads(out)["items"]}
                    self.assertEqual(set(answer), TRITON_PODS)
                    if all(answer[row["pod"]][1] == row["sampled"] for row in r["rows"]):
                        compared += 1
                        for row in r["rows"]:
                            self.assertEqual(answer[row["pod"]][0], decimal.Decimal(row["value"]), row)
            # The adapter keeps an answer 10 s and a round takes about a second.
            self.assertGreaterEqual(compared, 2, rounds)


if __name__ == "__main__":
    unittest.main()
