"""End to end, the metric snapshot cache (--metrics-cache-ttl, --metrics-serve-stale-for) with
the real Prometheus behind both synthetic exporters, the fake Kubernetes API and the real binary:

- Prometheus load, read from Prometheus' own prometheus_http_requests_total: many HPA requests
  cost at most one query per rule and namespace with the cache, and at least one per request
  with --metrics-cache-ttl=0;
- the same answers with the cache and without it, from two adapters on one Prometheus asked at
  the same moment;
- a frozen Prometheus (SIGSTOP): the last good answer at once until TTL + serve-stale-for, then
  503 within the query deadline, and fresh answers again after SIGCONT.

Timestamps in answers are Prometheus' evaluation times, so a cached answer's timestamp is when
its snapshot was fetched: at most a TTL older than an uncached one, never newer.
"""
import calendar
import json
import os
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from stack import Stack, wait_until  # noqa: E402
from e2e_test import (BINARY, PODS, StackTest, start_gpu_prometheus,  # noqa: E402
                      start_one_exporter_prometheus)

CUSTOM = "/apis/custom.metrics.k8s.io"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
PODS_STAR = f"{CUSTOM}/v1beta2/namespaces/{{}}/pods/%2A/gpu_utilization"
HPA_PATH = PODS_STAR.format("inference") + "?labelSelector=app%3Dtriton"
EXTERNAL_PATH = f"{EXTERNAL}/namespaces/inference/gpu.utilization?labelSelector=gpu%3D0"
# The requests of the load tests and what each must answer (scenarios A and B of e2e_test.py).
LOAD = [
    (HPA_PATH, {"triton-a": "87500m", "triton-b": "60"}),
    (PODS_STAR.format("inference") + "?labelSelector=app%3Dother", {"other-c": "10"}),
    (PODS_STAR.format("inference"), {"triton-a": "87500m", "triton-b": "60", "other-c": "10"}),
    (PODS_STAR.format("batch"), {"trainer-0": "42"}),
    (PODS_STAR.format("batch") + "?labelSelector=app%3Dtrainer", {"trainer-0": "42"}),
]
# gpu_utilization is served by two built-in rules (namespace/pod and exported_* labels), both
# discovered here; LOAD asks for two namespaces.
RULES, NAMESPACES = 2, 2


def values(body):
    return {i["describedObject"]["name"]: i["value"] for i in json.loads(body)["items"]}


def cache_counter(stack, result):
    """gma_metric_cache_requests_total{result="<result>"} from the adapter's /metrics, 0 if absent."""
    status, body = stack.https_get("/metrics")
    for line in body.splitlines():
        if line.startswith("gma_metric_cache_requests_total{") and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def epoch(timestamp):
    return calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ"))


class PrometheusLoad(StackTest):
    """Each test starts its own adapter on the shared Prometheus; nothing else queries it while
    a test counts (discovery uses /api/v1/series, another handler)."""
    REQUESTS = 200

    @classmethod
    def start(cls, stack):
        start_gpu_prometheus(stack)
        cls.lister = stack.start_fake_kube(PODS)

    def burst(self, threads=4):
        """REQUESTS requests over LOAD, from `threads` keep-alive connections at once; returns
        the wrong answers."""
        wrong = []
        lock = threading.Lock()

        def client(k):
            connection = self.stack.https_connection()
            for i in range(k, self.REQUESTS, threads):
                path, expected = LOAD[i % len(LOAD)]
                status, body = self.stack.https_get(path, connection=connection)
                if status != 200 or values(body) != expected:
                    with lock:
                        wrong.append((path, status, body[:300]))
            connection.close()
        workers = [threading.Thread(target=client, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return wrong

    def test_cached_requests_cost_one_query_per_rule_and_namespace(self):
        # A TTL far longer than the burst, so that no refresh falls inside it.
        self.stack.start_adapter(["--metrics-cache-ttl=60s"], lister_kubeconfig=self.lister)
        before = self.stack.prometheus_requests_answered()
        self.assertEqual(self.burst(), [])
        queries = self.stack.prometheus_requests_answered() - before
        self.assertLessEqual(queries, RULES * NAMESPACES,
                             f"{queries} Prometheus queries for {self.REQUESTS} requests")
        self.assertGreater(cache_counter(self.stack, "hit"), self.REQUESTS / 2)

    def test_uncached_requests_query_every_time(self):
        self.stack.start_adapter(["--metrics-cache-ttl=0"], lister_kubeconfig=self.lister)
        before = self.stack.prometheus_requests_answered()
        self.assertEqual(self.burst(), [])
        queries = self.stack.prometheus_requests_answered() - before
        self.assertGreaterEqual(queries, self.REQUESTS)


class SameAnswers(StackTest):
    """An adapter with the cache and one with --metrics-cache-ttl=0, on the same Prometheus and
    the same pods, asked for the same thing at the same moment."""
    TTL = 10  # seconds, the default, given explicitly

    @classmethod
    def start(cls, stack):
        start_gpu_prometheus(stack)
        lister = stack.start_fake_kube(PODS)
        stack.start_adapter([f"--metrics-cache-ttl={cls.TTL}s"], lister_kubeconfig=lister)
        cls.uncached = Stack(stack.binary)
        try:
            cls.uncached.start_adapter(["--metrics-cache-ttl=0"], lister_kubeconfig=lister,
                                       prometheus_url=stack.prometheus_url)
        except Exception:
            cls.uncached.dump_logs_and_close()
            raise
        for s in (stack, cls.uncached):
            wait_until("discovery of every built-in metric", lambda: "vllm_kv_cache_usage" in
                       s.https_get(CUSTOM + "/v1beta2")[1], timeout=30)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.uncached.close()
        finally:
            super().tearDownClass()

    PATHS = [
        PODS_STAR.format("inference"),
        HPA_PATH,
        PODS_STAR.format("inference") + "?labelSelector=app+in+%28triton%2Cother%29",
        PODS_STAR.format("inference") + "?labelSelector=%21tier",
        PODS_STAR.format("inference") + "?labelSelector=app%3Dnobody",
        PODS_STAR.format("batch"),                      # exported_* labels
        PODS_STAR.format("gpu-operator"),               # the exporter's own pod: no items
        f"{CUSTOM}/v1beta1/namespaces/inference/pods/*/gpu_utilization"
        "?labelSelector=app%3Dtriton&metricLabelSelector=gpu%3D0",
        f"{CUSTOM}/v1beta2/namespaces/inference/pods/triton-a/gpu_memory_used_bytes",
        f"{CUSTOM}/v1beta2/namespaces/inference/pods/triton-b/gpu_utilization",
        f"{CUSTOM}/v1beta2/namespaces/batch/pods/trainer-0/gpu_power_watts",
        f"{CUSTOM}/v1beta2/namespaces/inference/pods/idle-pod/gpu_utilization",  # 404
        f"{CUSTOM}/v1beta2/namespaces/llm/metrics/vllm_num_requests_waiting",
        f"{CUSTOM}/v1beta2/namespaces/inference/metrics/gpu_utilization",
        f"{CUSTOM}/v1beta2/namespaces/batch/metrics/gpu_memory_utilization",
        EXTERNAL_PATH,
        f"{EXTERNAL}/namespaces/inference/gpu_utilization?labelSelector=gpu+in+%280%2C1%2C2%29",
        f"{EXTERNAL}/namespaces/llm/vllm_num_requests_waiting?labelSelector=model_name%3Dllama-3-8b",
        f"{EXTERNAL}/namespaces/llm/vllm_kv_cache_usage",
    ]

    def both(self, path):
        """(status, body) from each adapter, asked at once."""
        answers = {}

        def ask(name, stack):
            answers[name] = stack.https_get(path)
        threads = [threading.Thread(target=ask, args=(n, s)) for n, s in
                   (("cached", self.stack), ("uncached", self.uncached))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return answers["cached"], answers["uncached"]

    @staticmethod
    def split(body):
        """The body without timestamps (items in a stable order), and the timestamps."""
        parsed = json.loads(body)
        stamps = [item.pop("timestamp") for item in parsed.get("items", [])]
        if "items" in parsed:
            parsed["items"].sort(key=lambda i: json.dumps(i, sort_keys=True))
        return parsed, stamps

    def compare_all(self):
        for path in self.PATHS:
            with self.subTest(path=path):
                (c_status, c_body), (u_status, u_body) = self.both(path)
                self.assertEqual(c_status, u_status, f"cached: {c_body[:300]}\nuncached: {u_body[:300]}")
                if c_status != 200:
                    self.assertEqual(c_body, u_body)
                    continue
                (cached, c_stamps), (uncached, u_stamps) = self.split(c_body), self.split(u_body)
                self.assertEqual(cached, uncached)
                for c, u in zip(c_stamps, u_stamps):
                    # The cached sample was evaluated at most a TTL (plus refresh time and the
                    # second the two requests may straddle) before the uncached one.
                    self.assertLessEqual(epoch(c), epoch(u) + 1, (c, u))
                    self.assertGreaterEqual(epoch(c), epoch(u) - self.TTL - 2, (c, u))

    def test_answers_are_the_same_cold_and_warm(self):
        self.compare_all()  # the first request of each: misses, and hits of the snapshots just made
        time.sleep(1.5)
        self.compare_all()  # from the cache

    def test_a_deleted_pod_leaves_both_answers(self):
        path = PODS_STAR.format("inference")
        self.stack.kube_request("DELETE", "/fake/pods/inference/other-c")
        try:
            wait_until("the deleted pod to leave both answers", lambda: all(
                "other-c" not in values(s.https_get(path)[1]) for s in (self.stack, self.uncached)), timeout=15)
            (c_status, c_body), (u_status, u_body) = self.both(path)
            self.assertEqual((c_status, values(c_body)), (u_status, values(u_body)))
            self.assertEqual(values(c_body), {"triton-a": "87500m", "triton-b": "60"})
        finally:
            self.stack.kube_request("PUT", "/fake/pods/inference/other-c", {"labels": {"app": "other"}})
        wait_until("the pod back in both answers", lambda: all(
            "other-c" in values(s.https_get(path)[1]) for s in (self.stack, self.uncached)), timeout=15)


class SlowPrometheus(StackTest):
    """Prometheus behind tests/fakes/fault_prometheus.py, answering every request DELAY late: a
    request that waits for Prometheus shows it in its latency."""
    TTL, DELAY = 2.0, 0.7

    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        lister = stack.start_fake_kube(PODS)
        stack.start_adapter([f"--metrics-cache-ttl={cls.TTL:g}s"], lister_kubeconfig=lister,
                            prometheus_url=stack.start_fault_proxy())
        stack.set_fault(mode="delay", seconds=cls.DELAY)

    def test_concurrent_requests_share_one_query(self):
        path = PODS_STAR.format("inference").replace("gpu_utilization", "gpu_power_watts")
        start = threading.Barrier(8)
        answers = []

        def ask():
            connection = self.stack.https_connection()
            start.wait()
            answers.append(self.stack.https_get(path, connection=connection))
            connection.close()
        before = self.stack.prometheus_requests_answered()
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        queries = self.stack.prometheus_requests_answered() - before
        self.assertEqual({status for status, _ in answers}, {200}, answers)
        self.assertEqual(len({body for _, body in answers}), 1, "one snapshot, one answer")
        # One rule serves gpu_power_watts here (no exported_* series): one query for all eight.
        self.assertEqual(queries, 1)
        self.assertGreater(cache_counter(self.stack, "coalesced"), 0)

    def test_steady_reads_never_wait_for_prometheus(self):
        connection = self.stack.https_connection()
        self.addCleanup(connection.close)
        self.assertEqual(self.stack.https_get(HPA_PATH, connection=connection)[0], 200)  # the miss
        before = self.stack.prometheus_requests_answered()
        slow, old = [], []
        ended = time.monotonic() + 4 * self.TTL
        while time.monotonic() < ended:
            started = time.monotonic()
            status, body = self.stack.https_get(HPA_PATH, connection=connection)
            took = time.monotonic() - started
            self.assertEqual((status, values(body)), (200, {"triton-a": "87500m", "triton-b": "60"}))
            if took > self.DELAY / 2:
                slow.append(round(took, 3))
            age = time.time() - min(epoch(i["timestamp"]) for i in json.loads(body)["items"])
            if age > self.TTL + 1.5:  # refreshed ahead: never older than a TTL (+ 1 s rounding)
                old.append(round(age, 1))
            time.sleep(0.25)
        self.assertEqual(slow, [], "requests that waited for Prometheus (s)")
        self.assertEqual(old, [], "answers older than the TTL (s)")
        self.assertGreaterEqual(self.stack.prometheus_requests_answered() - before, 2, "refreshes")

    def test_zz_unread_snapshots_stop_being_refreshed(self):
        # After the tests above nothing reads: once the snapshots have gone unread for a while
        # (30 s, the cache's keep-warm time), the refreshes stop and the snapshots are dropped.
        def quiet():
            before = self.stack.prometheus_requests_answered()
            time.sleep(3 * self.TTL)
            return self.stack.prometheus_requests_answered() == before
        wait_until("Prometheus queries to stop once nothing reads", quiet, timeout=100, interval=0)
        wait_until("no snapshot kept", lambda: "gma_metric_cache_entries 0" in self.stack.https_get("/metrics")[1],
                   timeout=10)


class FrozenPrometheus(StackTest):
    """Prometheus stopped with SIGSTOP: it accepts connections and answers nothing."""
    TTL, STALE, DEADLINE = 1.0, 3.0, 1.0

    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        stack.start_adapter([f"--metrics-cache-ttl={cls.TTL:g}s", f"--metrics-serve-stale-for={cls.STALE:g}s",
                             f"--prometheus-query-timeout={cls.DEADLINE:g}s"],
                            lister_kubeconfig=stack.start_fake_kube(PODS))

    EXPECTED = {HPA_PATH: {"triton-a": "87500m", "triton-b": "60"}, EXTERNAL_PATH: {"triton-a": "80"}}

    @staticmethod
    def answer_values(body):
        """Pod name -> value; external items name their pod in metricLabels."""
        return {(i.get("describedObject") or {}).get("name") or i["metricLabels"]["pod"]: i["value"]
                for i in json.loads(body)["items"]}

    def answer(self, path, connection):
        """(status, the values of a 200 or the reason of a Status, seconds taken)."""
        started = time.monotonic()
        status, body = self.stack.https_get(path, connection=connection)
        took = time.monotonic() - started
        try:
            what = self.answer_values(body) if status == 200 else json.loads(body).get("reason")
        except (ValueError, KeyError, AttributeError):
            what = body[:200]
        return status, what, took

    def test_stale_answers_then_503_then_fresh_again(self):
        connection = self.stack.https_connection()
        self.addCleanup(connection.close)
        for path, expected in self.EXPECTED.items():
            self.assertEqual(self.answer(path, connection)[:2], (200, expected))
        prometheus = self.stack.procs["prometheus"].pid
        seen = []  # (seconds after the stop, path, status, values or reason, seconds taken)
        os.kill(prometheus, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            end = self.TTL + self.STALE + 2 * (self.DEADLINE + 0.5) + 1
            while time.monotonic() - stopped < end:
                for path in self.EXPECTED:
                    at = time.monotonic() - stopped
                    seen.append((round(at, 2), path, *self.answer(path, connection)))
                time.sleep(0.2)
        finally:
            os.kill(prometheus, signal.SIGCONT)
        resumed = time.time()
        timeline = "\n".join(f"{at:6.2f}s {path[-45:]} {status} {what} {took * 1000:.0f} ms"
                              for at, path, status, what, took in seen)
        # The snapshot was fetched at most a TTL before the stop, so the last good answer is
        # served at least until stop + serve-stale-for, at once and unchanged ...
        early = [s for s in seen if s[0] < self.STALE - 0.3]
        self.assertTrue(early, timeline)
        for at, path, status, what, took in early:
            self.assertEqual(status, 200, timeline)
            self.assertEqual(what, self.EXPECTED[path], timeline)
            self.assertLess(took, 0.5, timeline)
        # ... and never after stop + TTL + serve-stale-for: then a 503 within the deadline.
        late = [s for s in seen if s[0] > self.TTL + self.STALE + 0.3]
        self.assertTrue(late, timeline)
        for at, path, status, what, took in late:
            self.assertEqual((status, what), (503, "ServiceUnavailable"), timeline)
            self.assertLess(took, self.DEADLINE + 0.5 + 1.0, timeline)
        self.assertGreater(cache_counter(self.stack, "stale"), 0)

        # Prometheus back: fresh answers (evaluated after SIGCONT) without a restart.
        def fresh():
            for path, expected in self.EXPECTED.items():
                status, body = self.stack.https_get(path, connection=connection)
                if status != 200 or self.answer_values(body) != expected:
                    return False
                if min(epoch(i["timestamp"]) for i in json.loads(body)["items"]) < int(resumed):
                    return False
            return True
        wait_until("fresh answers after SIGCONT", fresh, timeout=20)


if __name__ == "__main__":
    unittest.main()
