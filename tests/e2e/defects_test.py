"""End to end, for defects found by running the adapter as a user's cluster would: a backend
that refuses our credentials, the Host header, clients that send slowly, and a container's
open-file limit with many idle clients. Real TLS, the real Prometheus, the real binary.
"""
import os
import re
import resource
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from stack import Stack, free_port, wait_until  # noqa: E402
from e2e_test import BINARY, StackTest, start_one_exporter_prometheus  # noqa: E402

PODS_PATH = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/pods/%2A/gpu_utilization"


class PrometheusRefusals(StackTest):
    """The adapter reaches Prometheus through tests/fakes/fault_prometheus.py."""

    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        # Without the metric cache every request asks Prometheus, so each refusal set below is
        # met, logged and mapped on its own (the cache remembers a failure for a short retry gap).
        stack.start_adapter(["--metrics-cache-ttl=0"], prometheus_url=stack.start_fault_proxy())

    def readyz_prometheus(self):
        return self.stack.https_get("/readyz/prometheus")

    def test_host_header_carries_the_port(self):
        hosts = {r["host"] for r in self.stack.fault_requests()}
        self.assertEqual(hosts, {f"127.0.0.1:{self.stack.ports['fault']}"})

    def test_refused_credentials_are_named_in_the_log_and_fail_readiness(self):
        self.assertEqual(self.readyz_prometheus()[0], 200)
        try:
            self.stack.set_fault(403, "access denied by policy for user adapter", "text/plain")
            status, body = wait_until("readiness to fail", lambda: (lambda r: r if r[0] != 200 else None)(
                self.readyz_prometheus()), timeout=20)
            self.assertEqual(status, 500)
            self.assertIn("refused our credentials: HTTP 403, not JSON: access denied by policy", body)
            self.assertEqual(self.stack.https_get(PODS_PATH)[0], 500)
            log = self.stack.log("adapter")
            self.assertRegex(log, r"prometheus query for the rule at built-in gpu-rules.yaml:\d+ at "
                                  r"http://127.0.0.1:\d+ failed: HTTP 403, not JSON: access denied by policy")
            # One line per discovery run (every 2 s), naming Prometheus, however many queries failed.
            wait_until("discovery's failure line", lambda: re.search(
                r"discovery from Prometheus at http://127.0.0.1:\d+: (\d+) of \1 series queries failed "
                r"\(HTTP 403.*\) for the rules at built-in gpu-rules.yaml:\d+",
                self.stack.log("adapter")), timeout=10)

            self.stack.set_fault(403, '{"status":"error","errorType":"forbidden",'
                                      '"error":"tenant gpu may not read"}')
            self.assertEqual(self.stack.https_get(PODS_PATH)[0], 500)
            self.assertIn("failed: HTTP 403, errorType forbidden: tenant gpu may not read",
                          self.stack.log("adapter"))
            # A gateway's own JSON (problem+json has a numeric status) is quoted, not misread.
            self.stack.set_fault(403, '{"status":403,"title":"Forbidden","detail":"no\\nscope"}')
            self.assertEqual(self.stack.https_get(PODS_PATH)[0], 500)
            self.assertIn('failed: HTTP 403: {"status":403,"title":"Forbidden","detail":"no\\nscope"}',
                          self.stack.log("adapter"))
            # An outage after a refusal does not make the refusal look resolved.
            self.stack.set_fault(502, "bad gateway", "text/plain")
            self.assertEqual(self.stack.https_get(PODS_PATH)[0], 503)
            status, body = self.readyz_prometheus()
            self.assertEqual(status, 500)
            self.assertIn("refused our credentials", body)
        finally:
            self.stack.set_fault(0)
        wait_until("readiness to recover", lambda: self.readyz_prometheus()[0] == 200, timeout=20)


def tls_connect(stack):
    context = ssl.create_default_context(cafile=stack.serving_ca)
    raw = socket.create_connection(("127.0.0.1", stack.ports["adapter"]), timeout=20)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def read_until_closed(conn):
    data = b""
    try:
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    return data


class SlowClients(StackTest):
    """Deadlines of the request head and of keep-alive idleness, over real TLS."""

    @classmethod
    def start(cls, stack):
        stack.start_adapter(["--request-header-timeout=2s", "--metrics-relist-interval=1h"],
                            wait_ready=False, prometheus_url=f"http://127.0.0.1:{free_port()}")

    def test_a_client_sending_one_byte_at_a_time_gets_408_at_the_header_deadline(self):
        conn = tls_connect(self.stack)
        request = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"x" * 200
        answer, closed = b"", False
        started = time.time()
        # One thread: a byte, then a quarter second listening (an SSL socket is not for two
        # threads at once).
        conn.settimeout(0.25)
        try:
            for i in range(len(request)):
                conn.send(request[i:i + 1])
                try:
                    chunk = conn.recv(4096)
                except (TimeoutError, socket.timeout):
                    continue
                answer += chunk
                if not chunk or answer.endswith(b"Timeout"):
                    closed = True
                    break
        except (OSError, ssl.SSLError):
            closed = True  # the server closed while we were sending, as it should
        elapsed = time.time() - started
        conn.settimeout(5)
        if not answer.endswith(b"Timeout"):
            answer += read_until_closed(conn)
        conn.close()
        self.assertTrue(closed or answer, "the connection was still open after 200 slow bytes")
        self.assertTrue(answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer[:200])
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 8, "a slow client held its connection past the header deadline")

    def test_an_idle_keep_alive_connection_outlives_the_header_deadline(self):
        conn = tls_connect(self.stack)
        try:
            for _ in range(2):
                conn.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                answer = conn.recv(4096)
                self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK"), answer[:200])
                self.assertTrue(answer.endswith(b"ok"), answer)
                time.sleep(3)  # longer than the header deadline, shorter than the idle timeout
        finally:
            conn.close()

    def test_readyz_does_not_fail_because_prometheus_is_unreachable(self):
        # An unready APIService would break `kubectl api-resources`, namespace deletion and
        # garbage collection for the whole cluster; Prometheus' state is its own check.
        status, body = self.stack.https_get("/readyz?verbose")
        self.assertEqual(status, 200, body)
        self.assertIn("[-]prometheus failed:", body)
        self.assertEqual(self.stack.https_get("/readyz/prometheus")[0], 500)
        self.assertIn("gma_prometheus_up 0", self.stack.https_get("/metrics")[1])
        strict = Stack(os.path.abspath(BINARY))
        try:
            strict.start_adapter(["--readiness-requires-prometheus", "--metrics-relist-interval=1h"],
                                 wait_ready=False, prometheus_url=f"http://127.0.0.1:{free_port()}")
            status, body = strict.https_get("/readyz?verbose")
            self.assertEqual(status, 500, body)
            self.assertIn("readyz check failed", body)
        finally:
            strict.close()

    def test_a_silent_client_is_closed_without_a_reply(self):
        conn = tls_connect(self.stack)
        started = time.time()
        self.assertEqual(read_until_closed(conn), b"")
        conn.close()
        self.assertLess(time.time() - started, 8)


class DiscoveryBounds(StackTest):
    """A seriesQuery whose answer is over a discovery bound: never a silent cliff."""

    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        # The one exporter's series answers are about 1.7 KB for most seriesQueries.
        stack.start_adapter(["--discovery-max-reply-bytes=1Ki"], wait_ready=False)

    def test_a_rule_over_the_bound_is_logged_and_fails_readiness_naming_it(self):
        status, body = wait_until("discovery to fail on the bound", lambda: (
            lambda r: r if "[-]metric-discovery failed" in r[1] else None)(
            self.stack.https_get("/readyz?verbose")), timeout=30)
        # Required: a configuration that loses a rule must not go ready.
        self.assertEqual(status, 500, body)
        self.assertRegex(body, r"discovery failing for the rules? at built-in gpu-rules.yaml:\d+")
        self.assertIn("the answer is larger than 1024 bytes; raise --discovery-max-reply-bytes or "
                      "narrow the seriesQuery", body)
        self.assertRegex(self.stack.log("adapter"),
                         r"series quer(y .*|ies) failed \(the answer is larger than 1024 bytes; raise "
                         r"--discovery-max-reply-bytes or narrow the seriesQuery\) for the rules? at "
                         r"built-in gpu-rules.yaml:\d+")
        self.assertIn('gma_prometheus_request_errors_total{endpoint="series",reason="limit"}',
                      self.stack.https_get("/metrics")[1])


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class OpenFileLimit(unittest.TestCase):
    """The container runtime's nofile limit, with more idle clients than descriptors."""

    def setUp(self):
        self.stack = Stack(os.path.abspath(BINARY))
        self.sockets = []
        self.saved_limit = resource.getrlimit(resource.RLIMIT_NOFILE)
        soft, hard = self.saved_limit
        if hard != resource.RLIM_INFINITY and hard < 4096:
            self.skipTest(f"this test opens 1100 sockets; the hard open-file limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))

    def tearDown(self):
        for s in self.sockets:
            s.close()
        self.stack.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, self.saved_limit)

    def start(self, open_files):
        try:
            # No Prometheus: one discovery run at start, so its warnings do not mix with what
            # the connections cause.
            self.stack.start_adapter(["--metrics-relist-interval=1h"], wait_ready=False,
                                     open_files=open_files,
                                     prometheus_url=f"http://127.0.0.1:{free_port()}")
        except Exception:
            self.stack.dump_logs_and_close()
            raise

    def test_idle_clients_beyond_the_connection_limit_do_not_lock_out_requests(self):
        self.stack.start_adapter(["--max-open-connections=50", "--metrics-relist-interval=1h"],
                                 wait_ready=False, prometheus_url=f"http://127.0.0.1:{free_port()}")
        for _ in range(200):
            self.sockets.append(socket.create_connection(("127.0.0.1", self.stack.ports["adapter"])))
        time.sleep(0.5)
        for _ in range(3):
            self.assertEqual(self.stack.https_get("/livez"), (200, "ok"))

    def test_the_soft_limit_is_raised_to_the_hard_limit(self):
        self.start((256, 4096))
        with open(f"/proc/{self.stack.adapter_pid()}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        self.assertEqual(line.split()[3:5], ["4096", "4096"])
        self.assertIn("raised the open-file limit from 256 to 4096", self.stack.log("adapter"))

    def test_more_idle_clients_than_descriptors_neither_spin_nor_flood_the_log(self):
        self.start((1024, 1024))
        pid = self.stack.adapter_pid()
        for _ in range(1100):
            self.sockets.append(socket.create_connection(("127.0.0.1", self.stack.ports["adapter"])))
        time.sleep(1)
        log_before, cpu_before = len(self.stack.log("adapter")), cpu_seconds(pid)
        time.sleep(3)
        cpu = cpu_seconds(pid) - cpu_before
        logged = len(self.stack.log("adapter")) - log_before
        self.assertLess(cpu, 0.6, f"the adapter used {cpu:.2f} s of CPU in 3 s with idle clients")
        self.assertLess(logged, 4096, f"the adapter logged {logged} bytes in 3 s")
        self.assertIn("--max-open-connections=2048 is more than the open-file limit of 1024 allows; "
                      "serving at most 960 connections", self.stack.log("adapter"))
        # The idle clients do not lock out a real one: the longest-idle connection makes room.
        self.assertEqual(self.stack.https_get("/livez")[0], 200)


if __name__ == "__main__":
    unittest.main()
