"""End to end, against hostile clients (issue #9): oversized request heads, garbage before,
inside and after the TLS session, request paths built to confuse routing, and the rules file
flipped between broken and good under concurrent load. Real TLS (Python's SSLObject over a
plain socket, so every byte on the wire is chosen here), the real Prometheus, the real binary.

Each test checks what a client sees (the status, the Status body, whether the connection is
closed) and then that the adapter still runs and still answers the HPA's request correctly.
Slow clients (408), many idle connections and the encoded `/` are in defects_test.py and
auth_test.py.
"""
import json
import os
import random
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from hostile import RawTls, raw_exchange, send_in_one_write, status_line, tls_exchange  # noqa: E402
from stack import Stack, wait_until  # noqa: E402
from e2e_test import BINARY, PODS, StackTest, start_one_exporter_prometheus  # noqa: E402

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
HPA_PATH = f"{CUSTOM}/namespaces/inference/pods/%2A/gpu_utilization?labelSelector=app%3Dtriton"
EXPECTED = {"triton-a": "87500m", "triton-b": "60"}
KIB = 1024
NOT_FOUND = "the server could not find the requested resource"


def values(body):
    return {i["describedObject"]["name"]: i["value"] for i in json.loads(body)["items"]}


def split_reply(answer):
    """(status, {lower-cased header: value}, body) of one HTTP/1.1 reply."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line(answer), headers, body


_SHARED = {}


def tearDownModule():
    if "stack" in _SHARED:
        _SHARED.pop("stack").close()


class AdapterTest(unittest.TestCase):
    """The stack the test classes below share (started once for the module): Prometheus
    scraping one synthetic exporter, the fake Kubernetes API, and the adapter at --v=4 (it logs
    every PromQL query it sends) with --metrics-cache-ttl=0."""

    @classmethod
    def setUpClass(cls):
        if "stack" not in _SHARED:
            stack = Stack(os.path.abspath(BINARY))
            try:
                start_one_exporter_prometheus(stack)
                # Without the metric cache, a valid request logs its own query and nothing
                # refreshes snapshots in the background, so PathTricks can tell which request
                # reached Prometheus.
                stack.start_adapter(["--v=4", "--metrics-cache-ttl=0"],
                                    lister_kubeconfig=stack.start_fake_kube(PODS))
            except Exception:
                stack.dump_logs_and_close()
                raise
            _SHARED["stack"] = stack
        cls.stack = _SHARED["stack"]

    def port(self):
        return self.stack.ports["adapter"]

    def assert_still_serving(self):
        """The process has not exited, /healthz is ok, and the HPA's request is answered with
        the right values, each on a new connection."""
        self.assertIsNone(self.stack.procs["adapter"].poll(), "the adapter exited")
        self.assertEqual(self.stack.https_get("/healthz"), (200, "ok"))
        status, body = self.stack.https_get(HPA_PATH)
        self.assertEqual(status, 200, body)
        self.assertEqual(values(body), EXPECTED)

    def exchange(self, request, timeout=20):
        """Sends `request` (bytes) over a fresh TLS connection; returns (plaintext answer,
        whether the server closed the connection)."""
        return tls_exchange(self.port(), self.stack.serving_ca, request, timeout=timeout)


class OversizedRequests(AdapterTest):
    """The request head is limited to 64 KiB, request line and header lines together. A head
    beyond it is answered as Go's net/http answers one beyond its limit (kube-apiserver's is
    1 MiB), 431 Request Header Fields Too Large, and the connection is closed: the rest of the
    head is never read, so the connection cannot carry another request. Go has no limit on the
    number of header lines, so many short ones are served."""

    def assert_too_large(self, request):
        # Sent 4 KiB at a time, each read by the server before the next, so that what is
        # checked here is the answer, not whether a reset dropped it (the next class does that).
        answer, closed = tls_exchange(self.port(), self.stack.serving_ca, request, chunk=4096, pace=0.1)
        self.assertEqual(status_line(answer), 431, answer[:300])
        self.assertIn(b"connection: close", answer.lower())
        self.assertTrue(closed, "the connection must be closed after a head that was not read")
        self.assert_still_serving()

    def test_a_100_kib_header_is_431_and_closed(self):
        self.assert_too_large(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (100 * KIB)
                              + b"\r\n\r\n")

    def test_200_header_lines_beyond_the_limit_are_431_and_closed(self):
        lines = b"".join(b"X-Line-%03d: %s\r\n" % (i, b"v" * 500) for i in range(200))  # ~100 KiB
        self.assert_too_large(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n" + lines + b"\r\n")

    def test_a_100_kib_url_is_431_and_closed(self):
        self.assert_too_large(b"GET " + CUSTOM.encode() + b"/namespaces/" + b"a" * (100 * KIB)
                              + b"/pods/x/gpu_utilization HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

    def test_200_short_header_lines_are_served(self):
        lines = b"".join(b"X-Line-%03d: v\r\n" % i for i in range(200))
        answer, _ = self.exchange(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                  + lines + b"\r\n")
        self.assertEqual(split_reply(answer)[0::2], (200, b"ok"), answer[:300])
        self.assert_still_serving()

    def test_a_head_just_under_the_limit_is_served(self):
        # A 60 KiB header (a large token, many X-Remote-Extra-* values) is within the limit.
        answer, _ = self.exchange(b"GET " + HPA_PATH.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  b"Connection: close\r\nX-Big: " + b"a" * (60 * KIB) + b"\r\n\r\n")
        status, _, body = split_reply(answer)
        self.assertEqual(status, 200, answer[:300])
        self.assertEqual(values(body), EXPECTED)


class OversizedInOneWrite(AdapterTest):
    """An ordinary client writes its whole request at once, then reads. The server answers
    after 64 KiB and closes with the rest unread, and closing a socket with unread bytes makes
    the kernel send a reset, which can erase the answer before the client reads it (RFC 9112
    section 9.6). Servers close in stages to avoid that: Go's closes its write side, then waits
    a moment before closing (closeWriteAndWait). The client must read its 431 every time."""

    def test_an_oversized_head_sent_in_one_write_gets_its_431_every_time(self):
        # A 1 MiB URL: the larger the unread rest, the likelier the reset.
        request = (b"GET " + CUSTOM.encode() + b"/namespaces/" + b"a" * (1024 * KIB)
                   + b"/pods/x/gpu_utilization HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answers = [send_in_one_write(self.port(), self.stack.serving_ca, request) for _ in range(10)]
        self.assertEqual([status_line(a) for a in answers], [431] * 10,
                         "None: the connection was reset or closed before the answer arrived")
        self.assert_still_serving()


class GarbageAroundTls(AdapterTest):
    """Bytes that are not what the protocol expects, before the handshake completes, inside the
    session and after it ended. Each connection is closed (with a 400 where HTTP is spoken), no
    connection gets an HTTP answer it did not ask for, and the adapter serves on."""

    def client_hello(self):
        with RawTls(self.port(), self.stack.serving_ca) as conn:
            hello = conn.client_hello()
        self.assertEqual(hello[0], 0x16, "a TLS handshake record")
        return hello

    # -- before the handshake ------------------------------------------------------------------
    def test_random_bytes_instead_of_a_handshake_are_closed(self):
        # 0x00 is no TLS content type: the handshake fails at once, not at its 10 s deadline.
        answer, closed, elapsed = raw_exchange(self.port(), b"\x00" + random.Random(9).randbytes(4096))
        self.assertTrue(closed, "random bytes kept the connection open")
        self.assertLess(elapsed, 8)
        self.assertFalse(answer.startswith(b"HTTP/"), answer[:100])
        self.assert_still_serving()

    def test_plain_http_to_the_tls_port_is_closed_or_400(self):
        answer, closed, _ = raw_exchange(self.port(), b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertTrue(closed)
        # Go answers "400 Bad Request" in plain text; closing at once is as good.
        if answer:
            self.assertEqual(status_line(answer), 400, answer[:200])
        self.assert_still_serving()

    def test_a_truncated_client_hello_is_closed_at_the_handshake_deadline_and_blocks_nobody(self):
        hello = self.client_hello()
        result = {}

        def stalled():
            result["exchange"] = raw_exchange(self.port(), hello[:len(hello) // 2], timeout=40)
        thread = threading.Thread(target=stalled)
        thread.start()
        try:
            time.sleep(0.5)
            self.assert_still_serving()  # while the stalled handshake waits
        finally:
            thread.join()
        answer, closed, elapsed = result["exchange"]
        self.assertTrue(closed, "a stalled handshake must be closed at the 10 s handshake deadline")
        self.assertLess(elapsed, 25)
        self.assertFalse(answer.startswith(b"HTTP/"), answer[:100])
        self.assert_still_serving()

    def test_a_truncated_client_hello_then_end_of_stream_is_closed_at_once(self):
        hello = self.client_hello()
        answer, closed, elapsed = raw_exchange(self.port(), hello[:len(hello) // 2], shut_write=True)
        self.assertTrue(closed)
        self.assertLess(elapsed, 5)
        self.assert_still_serving()

    def test_a_mangled_client_hello_gets_a_tls_alert(self):
        hello = bytearray(self.client_hello())
        for i in range(60, len(hello)):  # the random, session id, suites and extensions
            hello[i] ^= 0x5A
        answer, closed, elapsed = raw_exchange(self.port(), bytes(hello))
        self.assertTrue(closed)
        self.assertLess(elapsed, 5)
        self.assertEqual(answer[:1], b"\x15", f"a TLS alert record, not {answer[:50]!r}")
        self.assert_still_serving()

    # -- inside the session --------------------------------------------------------------------
    def test_non_http_bytes_inside_tls_are_400_and_closed(self):
        junk = {
            "binary": b"\x00\x01\x02\xff\xfe\x7f" + random.Random(4).randbytes(64).replace(b"\n", b"")
                      + b"\r\n\r\n",
            "an SSH banner": b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n\r\n",
            "a NUL in the request target": b"GET /apis/a\x00b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            "a request line without a version": b"GET /livez\r\nHost: 127.0.0.1\r\n\r\n",
            "a header line without a colon": b"GET /livez HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
            "a ClientHello inside the session": self.client_hello() + b"\r\n\r\n",
        }
        for name, data in junk.items():
            with self.subTest(junk=name):
                answer, closed = self.exchange(data)
                self.assertEqual(status_line(answer), 400, answer[:200])
                self.assertIn(b"connection: close", answer.lower())
                self.assertTrue(closed)
        self.assert_still_serving()

    def test_a_corrupted_record_after_the_handshake_closes_the_connection(self):
        with RawTls(self.port(), self.stack.serving_ca) as conn:
            conn.handshake()
            # An application-data record whose bytes no key produced: its MAC fails.
            conn.send_raw(b"\x17\x03\x03\x00\x40" + random.Random(3).randbytes(64))
            answer = conn.receive(15)
            self.assertTrue(conn.closed)
            self.assertEqual(answer, b"")
        self.assert_still_serving()

    def test_a_replayed_record_is_not_answered_twice(self):
        with RawTls(self.port(), self.stack.serving_ca) as conn:
            conn.handshake()
            record = conn.seal(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            conn.send_raw(record)
            wait_until("the first answer", lambda: conn.server_has_spoken(), timeout=15)
            first = conn.receive(1)
            self.assertTrue(first.startswith(b"HTTP/1.1 200 OK") and first.endswith(b"ok"), first)
            conn.send_raw(record)  # the same bytes again: the sequence number no longer fits
            self.assertEqual(conn.receive(15), b"")
            self.assertTrue(conn.closed)
        self.assert_still_serving()

    # -- after the session ---------------------------------------------------------------------
    def test_a_request_pipelined_after_connection_close_is_not_answered(self):
        with RawTls(self.port(), self.stack.serving_ca) as conn:
            conn.handshake()
            conn.send_raw(conn.seal(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                          + conn.seal(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
            answer = conn.receive(15)
            self.assertTrue(conn.closed, "Connection: close must end the session")
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK"), answer[:200])
        self.assertEqual(answer.count(b"HTTP/1.1 "), 1, answer)
        self.assert_still_serving()

    def test_a_request_after_a_400_is_not_answered(self):
        with RawTls(self.port(), self.stack.serving_ca) as conn:
            conn.handshake()
            conn.send_raw(conn.seal(b"\x00garbage\r\n\r\n")
                          + conn.seal(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
            answer = conn.receive(15)
            self.assertTrue(conn.closed)
        self.assertEqual(status_line(answer), 400, answer[:200])
        self.assertEqual(answer.count(b"HTTP/1.1 "), 1, answer)
        self.assert_still_serving()

    def test_a_record_after_the_server_closed_is_not_answered(self):
        with RawTls(self.port(), self.stack.serving_ca) as conn:
            conn.handshake()
            conn.send(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = conn.receive(15)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK"), answer[:200])
            self.assertTrue(conn.closed, "Connection: close must end the session")
            conn.send_raw(b"\x17\x03\x03\x00\x20" + bytes(32))
            self.assertEqual(conn.raw_rest(10), (b"", True))
        self.assert_still_serving()

    def test_a_record_after_our_close_notify_is_not_answered(self):
        with RawTls(self.port(), self.stack.serving_ca) as conn:
            conn.handshake()
            conn.send(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            wait_until("the answer", lambda: conn.server_has_spoken(), timeout=15)
            self.assertTrue(conn.receive(1).startswith(b"HTTP/1.1 200 OK"))
            conn.close_notify()
            conn.send_raw(b"\x17\x03\x03\x00\x20" + bytes(32))
            self.assertEqual(conn.receive(15), b"")
            self.assertTrue(conn.closed)
        self.assert_still_serving()

    def test_a_session_closed_before_any_request_gets_no_reply(self):
        # A client that connects and leaves (a TCP health check through a TLS library, a
        # scanner) sent no request, so it gets no answer: Go's server closes silently.
        with RawTls(self.port(), self.stack.serving_ca) as conn:
            conn.handshake()
            conn.close_notify()
            answer = conn.receive(15)
            self.assertTrue(conn.closed)
            self.assertEqual(answer, b"", "a reply to a request nobody sent")
        self.assert_still_serving()


class PathTricks(AdapterTest):
    """Request paths built to confuse routing. The adapter routes the raw path segment by
    segment, decoding each once, as Kubernetes' RequestInfo does: nothing resolves `..`, and a
    name no Kubernetes object can have is a 404 NotFound Status without a Prometheus query."""

    def get(self, path):
        """(status, headers, body) of GET `path` sent byte for byte."""
        answer, _ = self.exchange(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                                  .encode("latin-1"))
        return split_reply(answer)

    def assert_status(self, path, code, reason, message=None):
        """A Status body for `code`, its message decoded from strict JSON and UTF-8."""
        status, headers, body = self.get(path)
        self.assertEqual(status, code, body[:300])
        self.assertEqual(headers.get("content-type"), "application/json")
        parsed = json.loads(body.decode("utf-8"))
        self.assertEqual((parsed["kind"], parsed["apiVersion"], parsed["status"], parsed["reason"],
                          parsed["code"]), ("Status", "v1", "Failure", reason, code), parsed)
        if message is not None:
            self.assertEqual(parsed["message"], message)
        return parsed, headers

    def queries_during(self, action):
        """The PromQL queries the adapter logged while `action` ran."""
        before = len(self.stack.log("adapter"))
        action()
        return [line for line in self.stack.log("adapter")[before:].splitlines()
                if "prometheus query:" in line]

    def assert_not_found_without_a_query(self, path, message=None):
        queries = self.queries_during(lambda: self.assert_status(path, 404, "NotFound", message))
        self.assertEqual(queries, [], f"{path} reached Prometheus")

    def test_a_valid_name_is_queried(self):
        # The control for the tests below: the log shows the query a valid request sends.
        def request():
            status, _, body = self.get(f"{CUSTOM}/namespaces/inference/pods/triton-b/gpu_utilization")
            self.assertEqual(status, 200, body)
        queries = self.queries_during(request)
        # One query per rule for the whole namespace (the pod is picked from its answer), cache
        # or not: the namespace is in it, the pod's name is not.
        self.assertTrue(queries and all('namespace="inference"' in q for q in queries), queries)

    def test_dot_segments_are_not_resolved(self):
        for path, message in [
            (f"{CUSTOM}/namespaces/../pods/triton-a/gpu_utilization",
             "the server could not find the metric gpu_utilization for pods triton-a"),
            (f"{CUSTOM}/namespaces/%2e%2e/pods/triton-a/gpu_utilization",
             "the server could not find the metric gpu_utilization for pods triton-a"),
            (f"{CUSTOM}/namespaces/%2E%2E/metrics/gpu_utilization",
             "the server could not find the metric gpu_utilization for namespaces"),
            (f"{CUSTOM}/namespaces/inference/pods/../gpu_utilization",
             "the server could not find the metric gpu_utilization for pods .."),
            (f"{CUSTOM}/namespaces/inference/pods/./gpu_utilization",
             "the server could not find the metric gpu_utilization for pods ."),
            (f"{CUSTOM}/namespaces/inference/pods/%2A/%2e%2e", "the server could not find the metric .. for pods"),
            (f"{EXTERNAL}/namespaces/%2e%2e/gpu_utilization",
             "the server could not find the metric gpu_utilization for namespaces"),
            # Resolved, these would be the discovery documents or an always-allowed path's neighbour.
            (f"{CUSTOM}/../v1beta2", NOT_FOUND),
            ("/healthz/../apis/custom.metrics.k8s.io/v1beta2", NOT_FOUND),
            ("/healthz/%2e%2e/apis", NOT_FOUND),
            ("/readyz/..", NOT_FOUND),
        ]:
            with self.subTest(path=path):
                self.assert_not_found_without_a_query(path, message)
        self.assert_still_serving()

    def test_double_encoding_is_decoded_once(self):
        self.assert_not_found_without_a_query(
            f"{CUSTOM}/namespaces/inference/pods/%252F/gpu_utilization",
            "the server could not find the metric gpu_utilization for pods %2F")
        self.assert_not_found_without_a_query(
            f"{CUSTOM}/namespaces/a%252Fsecrets/pods/x/gpu_utilization",
            "the server could not find the metric gpu_utilization for pods x")
        self.assert_not_found_without_a_query(f"{CUSTOM}/namespaces/inference/pods/%252e%252e/gpu_utilization",
                                              "the server could not find the metric gpu_utilization for pods %2e%2e")
        self.assert_still_serving()

    def test_nul_bytes(self):
        self.assert_not_found_without_a_query(
            f"{CUSTOM}/namespaces/inference/pods/a%00b/gpu_utilization",
            "the server could not find the metric gpu_utilization for pods a\x00b")
        self.assert_not_found_without_a_query(
            f"{EXTERNAL}/namespaces/inference/gpu_utilization%00",
            "the server could not find the metric gpu_utilization\x00 for namespaces")
        self.assert_not_found_without_a_query(f"/healthz%00", NOT_FOUND)
        self.assert_still_serving()

    def test_a_very_long_single_segment(self):
        # 60,000 characters: within the head limit, beyond any Kubernetes name (253).
        name = "a" * 60000
        self.assert_not_found_without_a_query(
            f"{CUSTOM}/namespaces/inference/pods/{name}/gpu_utilization",
            f"the server could not find the metric gpu_utilization for pods {name}")
        self.assert_not_found_without_a_query(f"{EXTERNAL}/namespaces/{name}/gpu_utilization")
        self.assert_not_found_without_a_query(f"{CUSTOM}/namespaces/inference/pods/%2A/{name}")
        self.assert_still_serving()

    def test_backslashes_are_plain_characters(self):
        for path, name in [(f"{CUSTOM}/namespaces/inference/pods/x\\..\\triton-a/gpu_utilization", "x\\..\\triton-a"),
                           (f"{CUSTOM}/namespaces/inference/pods/x%5C..%5Ctriton-a/gpu_utilization", "x\\..\\triton-a"),
                           (f"{CUSTOM}/namespaces/inference/pods/%5Ctriton-a/gpu_utilization", "\\triton-a")]:
            with self.subTest(path=path):
                self.assert_not_found_without_a_query(
                    path, f"the server could not find the metric gpu_utilization for pods {name}")
        self.assert_not_found_without_a_query("/apis\\custom.metrics.k8s.io\\v1beta2", NOT_FOUND)
        self.assert_still_serving()

    def test_empty_segments_are_not_collapsed(self):
        for path in ["//apis", f"/{CUSTOM}", f"{CUSTOM}//namespaces/inference/pods/triton-a/gpu_utilization",
                     f"{CUSTOM}/namespaces//pods/triton-a/gpu_utilization",
                     f"{CUSTOM}/namespaces/inference/pods//gpu_utilization",
                     f"{EXTERNAL}/namespaces/inference//gpu_utilization"]:
            with self.subTest(path=path):
                self.assert_not_found_without_a_query(path, NOT_FOUND)
        self.assert_still_serving()

    def test_invalid_utf8_and_line_breaks_in_a_name(self):
        # Go's encoder writes invalid UTF-8 as U+FFFD; a CR LF stays inside the JSON string.
        self.assert_not_found_without_a_query(
            f"{CUSTOM}/namespaces/inference/pods/%ff%fe/gpu_utilization",
            "the server could not find the metric gpu_utilization for pods \ufffd\ufffd")
        self.assert_not_found_without_a_query(  # an overlong '/'
            f"{CUSTOM}/namespaces/inference/pods/%c0%af/gpu_utilization",
            "the server could not find the metric gpu_utilization for pods \ufffd\ufffd")
        _, headers = self.assert_status(f"{CUSTOM}/namespaces/inference/pods/a%0d%0aSet-Cookie:%20x=1/gpu_utilization",
                                        404, "NotFound",
                                        "the server could not find the metric gpu_utilization for pods "
                                        "a\r\nSet-Cookie: x=1")
        self.assertNotIn("set-cookie", headers)
        self.assert_still_serving()

    def test_malformed_escapes_are_a_client_error(self):
        # Go rejects them before routing (400); a 404 NotFound Status is as clear. Never a 500.
        for path in [f"{CUSTOM}/namespaces/inference/pods/%ZZ/gpu_utilization",
                     f"{CUSTOM}/namespaces/inference/pods/%/gpu_utilization",
                     f"{CUSTOM}/namespaces/inference/pods/%2/gpu_utilization"]:
            with self.subTest(path=path):
                status, _, body = self.get(path)
                self.assertIn(status, (400, 404), body[:300])
                self.assert_status(path, status, "BadRequest" if status == 400 else "NotFound")
        self.assert_still_serving()


# A rules file for the flip test: the HPA's metric and an external metric, both with fixed values.
GOOD_RULES = """\
rules:
- seriesQuery: 'DCGM_FI_DEV_GPU_UTIL{namespace!="",pod!=""}'
  name: {as: gpu_utilization}
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'avg by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})'
externalRules:
- seriesQuery: '{__name__="vllm:num_requests_waiting",namespace!=""}'
  name: {matches: "^vllm:(.*)$", as: "vllm_${1}"}
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: 'sum by (model_name) (<<.Series>>{<<.LabelMatchers>>})'
"""
# The same with one more rule, so that a good reload is seen to take effect.
GOOD_RULES_PLUS = GOOD_RULES.replace("externalRules:", """\
- seriesQuery: 'DCGM_FI_DEV_POWER_USAGE{namespace!="",pod!=""}'
  name: {as: gpu_power_from_config}
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'sum by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})'
externalRules:""")
BROKEN_YAML = GOOD_RULES.replace("{resource: namespace}, pod", "{resource: namespace}}, pod", 1)  # line 4
BAD_REGEX = GOOD_RULES.replace('"^vllm:(.*)$"', '"^vllm:(.*$"')  # line 8
EXTERNAL_PATH = f"{EXTERNAL}/namespaces/llm/vllm_num_requests_waiting?labelSelector=model_name%3Dllama-3-8b"


class RulesFlippedUnderLoad(StackTest):
    """The rules file rewritten every second or so, alternately broken (invalid YAML, a regular
    expression RE2 refuses) and good, with a SIGHUP each time, while four clients keep asking.
    A broken file keeps the rules in force, so not one request may fail; each rejection is
    logged with the file, the line and the reason."""

    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        stack.wait_for_series("vllm:num_requests_waiting", 2)
        lister = stack.start_fake_kube(PODS)
        cls.config = os.path.join(stack.dir, "config.yaml")
        with open(cls.config, "w") as f:
            f.write(GOOD_RULES)
        stack.start_adapter([f"--config={cls.config}"], lister_kubeconfig=lister)
        wait_until("discovery of the rules", lambda: "vllm_num_requests_waiting" in
                   stack.https_get(EXTERNAL)[1], timeout=30)

    def check(self, path, status, body):
        """None if the answer to `path` is right, else what is wrong with it."""
        try:
            if status != 200:
                return f"{status}: {body[:200]}"
            parsed = json.loads(body)
            if path == HPA_PATH and values(body) != EXPECTED:
                return f"values {values(body)}"
            if path == EXTERNAL_PATH and [i["value"] for i in parsed["items"]] != ["7"]:
                return f"items {parsed['items']}"
            if path == CUSTOM and "pods/gpu_utilization" not in {r["name"] for r in parsed["resources"]}:
                return f"discovery {body[:200]}"
        except (ValueError, KeyError) as e:
            return f"{e}: {body[:200]}"
        return None

    def count(self, text):
        return self.stack.log("adapter").count(text)

    def write_and_reload(self, contents, outcome):
        """Replaces the file (as a ConfigMap update does, atomically), sends SIGHUP and waits
        for the log line that says how the reload went."""
        before = self.count(outcome)
        with open(self.config + ".new", "w") as f:
            f.write(contents)
        os.replace(self.config + ".new", self.config)
        self.stack.procs["adapter"].send_signal(signal.SIGHUP)
        wait_until(f"'{outcome}' in the log", lambda: self.count(outcome) > before, timeout=20)

    def test_flipping_between_broken_and_good_fails_no_request(self):
        paths = [HPA_PATH, EXTERNAL_PATH, CUSTOM]
        for path in paths:  # the baseline is right before the load starts
            self.assertIsNone(self.check(path, *self.stack.https_get(path)), path)
        failures, done, stop = [], [0], threading.Event()
        lock = threading.Lock()

        def client(offset):
            connection = self.stack.https_connection()
            i = offset
            while not stop.is_set():
                path = paths[i % len(paths)]
                status, body = self.stack.https_get(path, connection=connection)
                problem = self.check(path, status, body)
                with lock:
                    done[0] += 1
                    if problem:
                        failures.append((path, problem))
                if status == 0:  # the connection broke: count it, then go on with a new one
                    connection.close()
                    connection = self.stack.https_connection()
                i += 1
            connection.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        failed, reloaded = "config reload failed, keeping the current rules", f"reloaded rules from {self.config}"
        flips = 0
        try:
            started = time.time()
            while flips < 8 or time.time() - started < 15:
                self.write_and_reload(BROKEN_YAML, failed)
                time.sleep(0.3)
                self.write_and_reload(GOOD_RULES_PLUS, reloaded)
                time.sleep(0.3)
                self.write_and_reload(BAD_REGEX, failed)
                time.sleep(0.3)
                self.write_and_reload(GOOD_RULES, reloaded)
                time.sleep(0.3)
                flips += 4
            self.write_and_reload(GOOD_RULES_PLUS, reloaded)
            time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [], f"{len(failures)} of {done[0]} requests failed during {flips} flips")
        self.assertGreater(done[0], 100)
        log = self.stack.log("adapter")
        self.assertIn(f"{failed}: {self.config}:4: illegal flow end", log)
        self.assertIn(f"{failed}: {self.config}:8: name.matches is not a valid regular expression", log)
        # The last good file is in force: its extra rule is served.
        wait_until("the extra rule", lambda: self.stack.https_get(
            f"{CUSTOM}/namespaces/inference/pods/triton-b/gpu_power_from_config")[0] == 200, timeout=20)
        self.assertIsNone(self.stack.procs["adapter"].poll())


if __name__ == "__main__":
    unittest.main()
