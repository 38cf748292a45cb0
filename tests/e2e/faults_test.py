"""Fault injection against real parts: the real Prometheus behind tests/fakes/fault_prometheus.py,
which answers with the fault each test sets. Every fault must give the right Status within the
query deadline, and correct answers must come back as soon as the fault is gone, without a
restart.
"""
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from stack import wait_until  # noqa: E402
from e2e_test import PODS, StackTest, start_one_exporter_prometheus  # noqa: E402

HPA_PATH = ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/pods/%2A/gpu_utilization"
            "?labelSelector=app%3Dtriton")
EXPECTED = {"triton-a": "87500m", "triton-b": "60"}
DEADLINE = 1.0  # --prometheus-query-timeout


class PrometheusFaults(StackTest):
    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        lister = stack.start_fake_kube(PODS)
        # Without the metric cache every request asks Prometheus, so each sees the fault set
        # for it (with the cache, the last good answer is served stale: tests/e2e/cache_test.py).
        stack.start_adapter([f"--prometheus-query-timeout={DEADLINE:g}s", "--metrics-cache-ttl=0"],
                            lister_kubeconfig=lister, prometheus_url=stack.start_fault_proxy())

    def tearDown(self):
        self.stack.set_fault(0)

    def answer(self):
        started = time.time()
        status, body = self.stack.https_get(HPA_PATH)
        return status, body, time.time() - started

    def values(self, body):
        return {i["describedObject"]["name"]: i["value"] for i in json.loads(body)["items"]}

    def assert_fault(self, expected_status, reason, message_part, **fault):
        self.assertEqual(self.values(self.answer()[1]), EXPECTED)  # healthy before
        self.stack.set_fault(**fault)
        status, body, elapsed = self.answer()
        self.assertEqual(status, expected_status, body)
        status_body = json.loads(body)
        self.assertEqual(status_body["kind"], "Status")
        self.assertEqual(status_body["reason"], reason)
        self.assertIn(message_part, status_body["message"])
        self.assertLess(elapsed, DEADLINE + 2.5, "the query deadline must bound the answer")
        self.stack.set_fault(0)
        wait_until("a correct answer again", lambda: (lambda r: r[0] == 200 and
                   self.values(r[1]) == EXPECTED)(self.answer()), timeout=10)

    def test_queries_and_series_lookups_deny_partial_responses_by_default(self):
        # Thanos' partial_response=false: a query a store cannot answer fails rather than scale
        # an HPA on part of its pods. The real Prometheus behind the proxy ignores it.
        self.assertEqual(self.values(self.answer()[1]), EXPECTED)
        seen = [r for r in self.stack.fault_requests() if r["path"] in ("/api/v1/query", "/api/v1/series")]
        self.assertEqual({r["path"] for r in seen}, {"/api/v1/query", "/api/v1/series"})
        for r in seen:
            self.assertEqual(r["params"].get("partial_response"), ["false"], r)

    def test_500_from_a_proxy_is_503(self):
        self.assert_fault(503, "ServiceUnavailable", "unavailable", status=500, body="oops",
                          content_type="text/plain")

    def test_invalid_json_is_500(self):
        self.assert_fault(500, "InternalError", "unable to fetch metrics", status=200,
                          body="{not json")

    def test_truncated_body_is_503(self):
        self.assert_fault(503, "ServiceUnavailable", "unavailable", mode="truncate")

    def test_status_error_is_500(self):
        self.assert_fault(500, "InternalError", "unable to fetch metrics", status=422,
                          body='{"status":"error","errorType":"execution","error":"too many samples"}')

    def test_timeout_error_type_is_503(self):
        self.assert_fault(503, "ServiceUnavailable", "unavailable", status=503,
                          body='{"status":"error","errorType":"timeout","error":"query timed out"}')

    def test_a_body_over_the_size_limit_is_500(self):
        self.assert_fault(500, "InternalError", "unable to fetch metrics", mode="large", mb=70)

    def test_a_delay_past_the_deadline_is_503_within_the_deadline(self):
        self.assert_fault(503, "ServiceUnavailable", "unavailable", mode="delay", seconds=5)

    def test_a_reset_connection_is_503(self):
        self.assert_fault(503, "ServiceUnavailable", "unavailable", mode="reset")

    def test_nan_and_infinite_values_are_left_out(self):
        for value in ("NaN", "+Inf", "-Inf", "1e400"):
            with self.subTest(value=value):
                self.stack.set_fault(mode="values", value=value)
                status, body, _ = self.answer()
                self.assertEqual((status, json.loads(body)["items"]), (200, []), body)
        self.stack.set_fault(0)
        self.assertEqual(self.values(self.answer()[1]), EXPECTED)
        self.assertIn("is not a finite number", self.stack.log("adapter"))


class GracefulShutdown(StackTest):
    """SIGTERM while a request waits on a slow Prometheus. Requests in flight finish, or get a
    503 Status at the drain deadline; idle connections do not hold the drain; nothing accepts
    after the signal; and the process exits 0 within the deadline, with nothing freed while a
    request still uses it (the sanitizer runs would report that)."""
    DRAIN = 3.0  # --shutdown-drain-timeout
    GRACE = 2.0  # http::kCancelGrace: time for a cancelled request to write its 503

    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        cls.lister = stack.start_fake_kube(PODS)
        cls.proxy = stack.start_fault_proxy()

    def setUp(self):
        self.stack.set_fault(0)
        # The query deadline is far away, so that only the drain can end a slow request.
        self.stack.start_adapter([f"--shutdown-drain-timeout={self.DRAIN:g}s",
                                  "--prometheus-query-timeout=60s"],
                                 lister_kubeconfig=self.lister, prometheus_url=self.proxy)
        self.adapter = self.stack.procs["adapter"]

    def tearDown(self):
        self.stack.set_fault(0)

    def request_held_by_prometheus(self, delay):
        """Starts the HPA request in a thread with Prometheus answering after `delay`; returns
        once the query is waiting at Prometheus. The thread stores (status, body, time)."""
        seen = len(self.stack.fault_requests())
        self.stack.set_fault(mode="delay", seconds=delay)
        result = {}

        def run():
            status, body = self.stack.https_get(HPA_PATH)
            result.update(status=status, body=body, at=time.time())
        thread = threading.Thread(target=run)
        thread.start()
        wait_until("the query at Prometheus",
                   lambda: any(r["path"].startswith("/api/v1/query")
                               for r in self.stack.fault_requests()[seen:]), timeout=10)
        return thread, result

    def exit_code_within(self, seconds):
        try:
            return self.adapter.wait(timeout=seconds)
        except Exception:
            self.fail(f"the adapter did not exit within {seconds:g} s of SIGTERM")

    def test_a_request_in_flight_finishes_and_idle_connections_do_not_hold_the_drain(self):
        idle = self.stack.https_connection()
        self.assertEqual(self.stack.https_get("/healthz", connection=idle)[0], 200)
        thread, result = self.request_held_by_prometheus(delay=1.5)
        signalled = time.time()
        self.adapter.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with self.assertRaises(ConnectionRefusedError, msg="accepting after SIGTERM"):
            socket.create_connection(("127.0.0.1", self.stack.ports["adapter"]), timeout=2).close()
        thread.join(timeout=15)
        self.assertEqual(result["status"], 200, result["body"])
        self.assertEqual(self.values(result["body"]), EXPECTED)
        self.assertEqual(self.exit_code_within(self.DRAIN + self.GRACE + 3), 0)
        # The idle keep-alive connection was closed at once, so the process ended when the
        # request did, not at the drain deadline.
        self.assertLess(time.time() - signalled, self.DRAIN)
        self.assertIn("every connection is closed; stopping", self.stack.log("adapter"))
        idle.close()

    def test_a_request_still_running_at_the_drain_deadline_gets_503(self):
        thread, result = self.request_held_by_prometheus(delay=30)
        signalled = time.time()
        self.adapter.send_signal(signal.SIGTERM)
        thread.join(timeout=15)
        self.assertEqual(result.get("status"), 503, result.get("body"))
        status = json.loads(result["body"])
        self.assertEqual((status["kind"], status["reason"], status["code"]),
                         ("Status", "ServiceUnavailable", 503))
        self.assertIn("shutting down", status["message"])
        answered_after = result["at"] - signalled
        self.assertGreater(answered_after, self.DRAIN - 0.5, "answered before the drain deadline")
        self.assertLess(answered_after, self.DRAIN + self.GRACE)
        self.assertEqual(self.exit_code_within(self.DRAIN + self.GRACE + 3), 0)
        self.assertIn("cancelling their requests with 503", self.stack.log("adapter"))

    values = PrometheusFaults.values


class KubernetesFaults(StackTest):
    """The fake Kubernetes API misbehaving under the pod watch: the adapter recovers, and a pod
    added afterwards is served."""

    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        lister = stack.start_fake_kube(PODS)
        stack.start_adapter(lister_kubeconfig=lister)

    def faults(self, **faults):
        self.stack.kube_request("PUT", "/fake/faults", faults)

    def pods_selected(self, app):
        status, body = self.stack.https_get(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/pods/%2A/gpu_utilization"
            f"?labelSelector=app%3D{app}")
        return {i["describedObject"]["name"] for i in json.loads(body)["items"]} if status == 200 else None

    def relabel_and_expect(self, pod, app):
        """A label change made after the fault reaches the answers."""
        self.stack.kube_request("PUT", f"/fake/pods/inference/{pod}", {"labels": {"app": app}})
        wait_until(f"{pod} with app={app}", lambda: pod in (self.pods_selected(app) or set()), timeout=40)

    def test_garbage_and_wrongly_typed_watch_events_are_skipped(self):
        self.faults(raw=["this is not JSON", '{"type":"ADDED","object":{"metadata":'
                         '{"name":"x","namespace":5,"labels":{"app":7}}}}',
                         '{"type":7,"object":"nope"}', '{"type":"ADDED","object":{"metadata":'
                         '{"name":["n"],"namespace":"inference","labels":"app=x"}}}', "[1,2]"])
        self.relabel_and_expect("triton-b", "canary-1")
        self.assertEqual(self.stack.https_get("/readyz/loop-pod-watch")[0], 200)

    def test_expired_history_410_relists(self):
        self.stack.kube_request("DELETE", "/fake/history")
        self.faults(drop_watches=True)
        self.relabel_and_expect("other-c", "canary-2")

    def test_lists_failing_for_a_while_then_recovering(self):
        self.faults(list_failures=3)
        self.stack.kube_request("DELETE", "/fake/history")
        self.faults(drop_watches=True)
        self.relabel_and_expect("triton-a", "canary-3")
        self.assertEqual(self.stack.kube_request("GET", "/fake/requests").get("/api/v1/pods", 0) >= 4, True)


if __name__ == "__main__":
    unittest.main()
