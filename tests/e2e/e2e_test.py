"""End to end: the real Prometheus scrapes synthetic dcgm-exporters, the adapter serves the
metrics over TLS, and kubectl get --raw asks for them, as a user debugging an HPA would:
EndToEnd asks the adapter itself, ThroughAggregator asks the fake Kubernetes API, whose
aggregation proxy forwards to the adapter as kube-aggregator does in a cluster (one stack for
both; ZzShutdown, last, stops its parts).

Values are fixed by the scenario, so every answer is known exactly.
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from stack import Stack, wait_until  # noqa: E402

BINARY = os.environ.get("GMA_BINARY") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "gpu-metrics-adapter")


def gpu(n, util, namespace=None, pod=None, fb_used=1000, fb_free=3000, power=100.0, **extra):
    g = {"gpu": n, "util": util, "fb_used": fb_used, "fb_free": fb_free, "power": power,
         "engine": 0.5, "tensor": 0.25, **extra}
    if pod:
        g.update(namespace=namespace, pod=pod, container="server")
    return g


# honorLabels: true exporter: workload labels are namespace/pod.
SCENARIO_A = {
    "hostname": "gpu-node-1",
    "gpus": [
        gpu(0, 80, "inference", "triton-a", fb_used=20514, fb_free=2000, power=187.412),
        gpu(1, 95, "inference", "triton-a", fb_used=1000, fb_free=21514, power=60.5),
        gpu(2, 60, "inference", "triton-b"),
        gpu(3, 10, "inference", "other-c"),
        gpu(4, "NaN", "inference", "triton-nan"),
        gpu(5, 0),
    ],
    "vllm": [{"namespace": "llm", "pod": "vllm-0", "model_name": "llama-3-8b", "waiting": 7, "kv": 0.25},
             {"namespace": "llm", "pod": "vllm-1", "model_name": "mistral-7b", "waiting": 2, "kv": 0.5}],
}
# honorLabels: false exporter: Prometheus renames the workload labels to exported_*, and
# namespace/pod name the exporter's own pod (set here as target labels).
SCENARIO_B = {"hostname": "gpu-node-2", "hostname_label": "hostname",
              "gpus": [gpu(0, 42, "batch", "trainer-0"), gpu(1, 7)]}
PODS = [
    {"namespace": "inference", "name": "triton-a", "labels": {"app": "triton", "tier": "gpu"}},
    {"namespace": "inference", "name": "triton-b", "labels": {"app": "triton"}},
    {"namespace": "inference", "name": "other-c", "labels": {"app": "other"}},
    {"namespace": "inference", "name": "triton-nan", "labels": {"app": "triton"}},
    {"namespace": "batch", "name": "trainer-0", "labels": {"app": "trainer"}},
]
CUSTOM = "/apis/custom.metrics.k8s.io"


class StackTest(unittest.TestCase):
    """A test class sharing one stack: start(stack) builds it once; a failure shows the logs.
    BACKEND is what serves the Prometheus API (Stack's backend)."""
    BACKEND = "prometheus"

    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(os.path.abspath(BINARY), backend=cls.BACKEND)
        try:
            cls.start(cls.stack)
        except Exception:
            cls.stack.dump_logs_and_close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()


def start_gpu_prometheus(stack):
    """Both synthetic exporters behind the real Prometheus: one scraped with honorLabels: true,
    one with false, whose target labels name the exporter's own pod (as Kubernetes SD would)."""
    stack.start_both_label_forms(SCENARIO_A, SCENARIO_B)
    # VictoriaMetrics shows no series whose only samples are NaN (triton-nan's GPU).
    stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 7 if stack.backend == "victoria-metrics" else 8)
    stack.wait_for_series("vllm:num_requests_waiting", 2)
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"


def start_one_exporter_prometheus(stack):
    """Scenario A's exporter behind the real Prometheus (honorLabels: true)."""
    stack.start_exporter("exporter-a", SCENARIO_A)
    stack.start_prometheus([{"name": "dcgm", "exporter": "exporter-a", "honor_labels": True}])
    stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 5)


_SHARED = {}  # the stack of EndToEnd, ThroughAggregator and ZzShutdown


def tearDownModule():
    stack = _SHARED.pop("stack", None)
    if stack is not None:
        stack.close()


class SharedStack(StackTest):
    """The classes of this module that share one stack: the first to run starts it (a failure
    shows the logs, and every later class fails with the same error without starting it again),
    tearDownModule closes it. The adapter is registered with the fake API's aggregation proxy
    for custom.metrics.k8s.io and external.metrics.k8s.io."""
    VIA_AGGREGATOR = False  # whether raw() asks through the fake API's aggregation proxy

    @classmethod
    def setUpClass(cls):
        if "error" in _SHARED:
            raise RuntimeError(f"the shared stack did not start: {_SHARED['error']}")
        if "stack" not in _SHARED:
            try:
                super().setUpClass()
            except Exception as e:
                _SHARED["error"] = e
                raise
            _SHARED["stack"] = cls.stack
        cls.stack = _SHARED["stack"]

    @classmethod
    def tearDownClass(cls):
        pass  # tearDownModule closes the shared stack

    @classmethod
    def start(cls, stack):
        start_gpu_prometheus(stack)
        lister = stack.start_fake_kube(PODS, aggregator=True)
        stack.start_adapter(lister_kubeconfig=lister)
        stack.register_apiservices()
        wait_until("discovery of every built-in metric", lambda: "vllm_kv_cache_usage" in
                   stack.kubectl_raw(CUSTOM + "/v1beta2")[1], timeout=30)

    def raw(self, path):
        """kubectl get --raw PATH: through the aggregation proxy for /apis/... when
        VIA_AGGREGATOR (other paths, such as /readyz, are never proxied in a cluster)."""
        return self.stack.kubectl_raw(path, via_aggregator=self.VIA_AGGREGATOR and path.startswith("/apis/"))

    def get(self, path):
        code, out, err = self.raw(path)
        self.assertEqual(code, 0, f"kubectl get --raw {path} failed: {err}")
        return json.loads(out)

    def get_error(self, path):
        code, out, err = self.raw(path)
        self.assertNotEqual(code, 0, f"{path} unexpectedly succeeded: {out}")
        return err


class EndToEnd(SharedStack):
    """kubectl asks the adapter itself."""

    def values(self, body):
        return {i["describedObject"]["name"]: i["value"] for i in body["items"]}

    # -- discovery -------------------------------------------------------------------------
    def test_api_group_list_is_exact(self):
        code, out, _ = self.raw("/apis")
        self.assertEqual(code, 0)
        self.assertEqual(out.strip(), json.dumps({
            "kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": "custom.metrics.k8s.io",
                 "versions": [{"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"},
                              {"groupVersion": "custom.metrics.k8s.io/v1beta1", "version": "v1beta1"}],
                 "preferredVersion": {"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"}},
                {"name": "external.metrics.k8s.io",
                 "versions": [{"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"}],
                 "preferredVersion": {"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"}}]},
            separators=(",", ":")))

    def test_discovery_lists_metrics_whose_series_exist(self):
        for version in ("v1beta1", "v1beta2"):
            body = self.get(f"{CUSTOM}/{version}")
            self.assertEqual(body["groupVersion"], f"custom.metrics.k8s.io/{version}")
            names = {r["name"]: r["namespaced"] for r in body["resources"]}
            self.assertTrue(names["pods/gpu_utilization"])
            self.assertFalse(names["namespaces/gpu_utilization"])
            self.assertEqual(len(names), 16)
        external = {r["name"] for r in self.get(EXTERNAL)["resources"]}
        self.assertIn("gpu.utilization", external)
        self.assertIn("vllm_num_requests_waiting", external)
        self.assertEqual(self.get("/apis/custom.metrics.k8s.io")["preferredVersion"]["version"], "v1beta2")

    # -- custom metrics for pods -------------------------------------------------------------
    def test_pods_hpa_request_returns_exactly_the_matching_pods(self):
        body = self.get(f"{CUSTOM}/v1beta2/namespaces/inference/pods/%2A/gpu_utilization"
                        "?labelSelector=app%3Dtriton")
        # triton-a averages its two GPUs (80, 95); triton-nan's NaN is left out, not faked.
        self.assertEqual(self.values(body), {"triton-a": "87500m", "triton-b": "60"})
        item = body["items"][0]
        self.assertEqual(item["describedObject"],
                         {"kind": "Pod", "namespace": "inference", "name": "triton-a", "apiVersion": "/v1"})
        self.assertEqual(item["metric"], {"name": "gpu_utilization", "selector": None})
        self.assertRegex(item["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(body["apiVersion"], "custom.metrics.k8s.io/v1beta2")

    def test_v1beta1_shape(self):
        body = self.get(f"{CUSTOM}/v1beta1/namespaces/inference/pods/*/gpu_utilization"
                        "?labelSelector=app%3Dtriton&metricLabelSelector=gpu%3D0")
        self.assertEqual(body["apiVersion"], "custom.metrics.k8s.io/v1beta1")
        self.assertEqual(self.values(body), {"triton-a": "80"})
        item = body["items"][0]
        self.assertEqual(item["metricName"], "gpu_utilization")
        self.assertEqual(item["selector"], {"matchLabels": {"gpu": "0"}})
        self.assertEqual(list(item), ["describedObject", "metricName", "timestamp", "value", "selector"])

    def test_every_selector_operator(self):
        base = f"{CUSTOM}/v1beta2/namespaces/inference/pods/%2A/gpu_utilization?labelSelector="
        cases = {
            "app+in+%28triton%2Cother%29": {"triton-a", "triton-b", "other-c"},
            "app+notin+%28triton%29": {"other-c"},
            "app%21%3Dtriton": {"other-c"},
            "app%3D%3Dother": {"other-c"},
            "tier": {"triton-a"},
            "%21tier": {"triton-b", "other-c"},
            "app%3Dtriton%2Ctier%3Dgpu": {"triton-a"},
            "app%3Dnobody": set(),
        }
        for selector, expected in cases.items():
            with self.subTest(selector=selector):
                self.assertEqual(set(self.values(self.get(base + selector))), expected)

    def test_wildcard_without_selector_answers_for_all_pods_with_data(self):
        body = self.get(f"{CUSTOM}/v1beta2/namespaces/inference/pods/*/gpu_utilization")
        self.assertEqual(self.values(body), {"triton-a": "87500m", "triton-b": "60", "other-c": "10"})

    def test_exported_labels_from_honor_labels_false(self):
        body = self.get(f"{CUSTOM}/v1beta2/namespaces/batch/pods/*/gpu_utilization")
        self.assertEqual(self.values(body), {"trainer-0": "42"})
        # The exporter's own pod must not appear as a GPU consumer.
        self.assertEqual(self.get(f"{CUSTOM}/v1beta2/namespaces/gpu-operator/pods/*/gpu_utilization")["items"], [])

    def test_single_pod_memory_power_and_ratios(self):
        memory = self.get(f"{CUSTOM}/v1beta2/namespaces/inference/pods/triton-a/gpu_memory_used_bytes")
        self.assertEqual(self.values(memory), {"triton-a": str((20514 + 1000) * 1048576)})
        power = self.get(f"{CUSTOM}/v1beta2/namespaces/inference/pods/triton-a/gpu_power_watts")
        self.assertEqual(self.values(power), {"triton-a": "247912m"})
        ratio = self.get(f"{CUSTOM}/v1beta2/namespaces/inference/pods/triton-b/gpu_memory_utilization")
        self.assertEqual(self.values(ratio), {"triton-b": "25"})
        engine = self.get(f"{CUSTOM}/v1beta2/namespaces/inference/pods/triton-b/gpu_engine_active")
        self.assertEqual(self.values(engine), {"triton-b": "500m"})

    def test_namespace_metric(self):
        body = self.get(f"{CUSTOM}/v1beta2/namespaces/llm/metrics/vllm_num_requests_waiting")
        self.assertEqual(len(body["items"]), 1)
        self.assertEqual(body["items"][0]["describedObject"], {"kind": "Namespace", "name": "llm", "apiVersion": "/v1"})
        self.assertEqual(body["items"][0]["value"], "9")

    # -- external metrics --------------------------------------------------------------------
    def test_external_alias_with_selector(self):
        # One item per pod: the selector keeps triton-a's GPU 0 (80) out of its two (80, 95).
        body = self.get(f"{EXTERNAL}/namespaces/inference/gpu.utilization?labelSelector=gpu%3D0")
        self.assertEqual(body["kind"], "ExternalMetricValueList")
        self.assertEqual(len(body["items"]), 1)
        item = body["items"][0]
        self.assertEqual(item["metricName"], "gpu.utilization")
        self.assertEqual(item["value"], "80")
        self.assertEqual(item["metricLabels"], {"namespace": "inference", "pod": "triton-a"})
        # Selecting the pod instead: one item, the average of its GPUs.
        body = self.get(f"{EXTERNAL}/namespaces/inference/gpu.utilization?labelSelector=pod%3Dtriton-a")
        self.assertEqual([i["value"] for i in body["items"]], ["87500m"])
        # The per-GPU metric keeps the series' labels.
        body = self.get(f"{EXTERNAL}/namespaces/inference/gpu_utilization_per_gpu?labelSelector=gpu%3D0")
        self.assertEqual(len(body["items"]), 1)
        labels = body["items"][0]["metricLabels"]
        self.assertEqual((labels["pod"], labels["modelName"]), ("triton-a", "NVIDIA A10G"))
        self.assertNotIn("__name__", labels)

    def test_external_vllm_queue_by_model(self):
        body = self.get(f"{EXTERNAL}/namespaces/llm/vllm_num_requests_waiting?labelSelector=model_name%3Dllama-3-8b")
        self.assertEqual([(i["metricLabels"]["pod"], i["value"]) for i in body["items"]], [("vllm-0", "7")])
        everything = self.get(f"{EXTERNAL}/namespaces/llm/vllm_kv_cache_usage")
        self.assertEqual(sorted(i["value"] for i in everything["items"]), ["250m", "500m"])

    def test_external_selector_keys_are_mapped_and_values_escaped(self):
        # "model.name" becomes model_name; a value with '.' inside `in` matches only itself.
        body = self.get(f"{EXTERNAL}/namespaces/llm/vllm_num_requests_waiting"
                        "?labelSelector=model.name+in+%28mistral-7b%2Cllama-3.8b%29")
        self.assertEqual([i["metricLabels"]["pod"] for i in body["items"]], ["vllm-1"])

    # -- errors ----------------------------------------------------------------------------
    def test_bad_selector_is_400(self):
        err = self.get_error(f"{CUSTOM}/v1beta2/namespaces/inference/pods/*/gpu_utilization"
                             "?labelSelector=app+in+%28triton")
        self.assertIn("BadRequest", err)
        self.assertIn("invalid labelSelector", err)

    def test_injection_attempt_is_rejected_or_harmless(self):
        err = self.get_error(f"{EXTERNAL}/namespaces/inference/gpu_utilization"
                             "?labelSelector=gpu%3D0%22%7D+or+vector%281%29")
        self.assertIn("BadRequest", err)
        # A namespace or pod name no Kubernetes object can have names nothing: 404, no query.
        err = self.get_error(f"{CUSTOM}/v1beta2/namespaces/x%22%7D%20or%20vector(1)%20%23/pods/*/gpu_utilization")
        self.assertIn("NotFound", err)
        err = self.get_error(f"{CUSTOM}/v1beta2/namespaces/inference/pods/a%22%7D%20or%20vector(1)/gpu_utilization")
        self.assertIn("NotFound", err)

    def test_unknown_metric_is_404(self):
        err = self.get_error(f"{CUSTOM}/v1beta2/namespaces/inference/pods/%2A/no_such_metric")
        self.assertIn("NotFound", err)
        self.assertIn("the server could not find the metric no_such_metric for pods", err)
        err = self.get_error(f"{CUSTOM}/v1beta2/namespaces/inference/pods/idle-pod/gpu_utilization")
        self.assertIn("could not find the metric gpu_utilization for pods idle-pod", err)
        self.assertIn("NotFound", self.get_error(f"{CUSTOM}/v1beta2/namespaces/inference/deployments.apps/x/gpu_utilization"))
        self.assertIn("NotFound", self.get_error("/apis/metrics.k8s.io/v1beta1"))

    # -- pods come from a watch, not a LIST per request --------------------------------------
    def test_pod_label_changes_arrive_through_the_watch(self):
        lists_before = self.stack.kube_request("GET", "/fake/requests").get("/api/v1/pods", 0)
        path = f"{CUSTOM}/v1beta2/namespaces/inference/pods/%2A/gpu_utilization?labelSelector=app%3Dcanary"
        self.assertEqual(self.get(path)["items"], [])
        self.stack.kube_request("PUT", "/fake/pods/inference/other-c", {"labels": {"app": "canary"}})
        try:
            wait_until("the relabelled pod", lambda: self.values(self.get(path)) == {"other-c": "10"}, timeout=15)
        finally:
            self.stack.kube_request("PUT", "/fake/pods/inference/other-c", {"labels": {"app": "other"}})
        for _ in range(5):
            self.get(path)
        lists_after = self.stack.kube_request("GET", "/fake/requests").get("/api/v1/pods", 0)
        self.assertEqual(lists_after, lists_before, "requests must not LIST pods")

    def test_wildcard_without_selector_leaves_out_deleted_pods(self):
        # Prometheus keeps a deleted pod's series for its lookback window; the pod list does not.
        path = f"{CUSTOM}/v1beta2/namespaces/inference/pods/*/gpu_utilization"
        self.assertIn("other-c", self.values(self.get(path)))
        self.stack.kube_request("DELETE", "/fake/pods/inference/other-c")
        try:
            wait_until("the deleted pod to leave the answer",
                       lambda: "other-c" not in self.values(self.get(path)), timeout=15)
            self.assertEqual(self.values(self.get(path)), {"triton-a": "87500m", "triton-b": "60"})
        finally:
            self.stack.kube_request("PUT", "/fake/pods/inference/other-c", {"labels": {"app": "other"}})
            wait_until("the pod back", lambda: "other-c" in self.values(self.get(path)), timeout=15)

    # -- operations ------------------------------------------------------------------------
    def test_health_version_and_self_metrics(self):
        code, out, _ = self.raw("/readyz?verbose")
        self.assertEqual(code, 0)
        self.assertIn("[+]metric-discovery ok", out)
        self.assertIn("[+]prometheus ok", out)
        self.assertIn("[+]pod-cache-sync ok", out)
        self.assertEqual(self.raw("/livez")[1], "ok")
        self.assertEqual(self.get("/version")["gitVersion"][0], "v")
        code, metrics, _ = self.raw("/metrics")
        self.assertEqual(code, 0)
        for name in ("gma_http_requests_total{", "gma_http_request_duration_seconds_bucket{",
                     "gma_prometheus_requests_total{", "gma_prometheus_request_duration_seconds_bucket{",
                     'gma_discovered_metrics{group="custom.metrics.k8s.io"} 16'):
            self.assertIn(name, metrics)


class ThroughAggregator(EndToEnd):
    """Every check of EndToEnd again, with kubectl talking to the fake Kubernetes API, whose
    aggregation proxy forwards /apis/<group>/<version>/... to the adapter: the answers must not
    change on the way (path and query re-encoded as Go does, status and body passed back)."""
    VIA_AGGREGATOR = True
    test_health_version_and_self_metrics = None  # /readyz, /metrics, /version: never proxied

    def test_api_group_list_is_exact(self):
        # The aggregator's own list: its local groups, then the registered ones in priority order.
        code, out, err = self.stack.kubectl_raw("/apis", via_aggregator=True)
        self.assertEqual(code, 0, err)
        groups = json.loads(out)["groups"]
        self.assertEqual([g["name"] for g in groups][-2:], ["custom.metrics.k8s.io", "external.metrics.k8s.io"])
        self.assertEqual(groups[0]["name"], "apiregistration.k8s.io")
        self.assertEqual(groups[-2], {
            "name": "custom.metrics.k8s.io",
            "versions": [{"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"},
                         {"groupVersion": "custom.metrics.k8s.io/v1beta1", "version": "v1beta1"}],
            "preferredVersion": {"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"}})

    def test_the_proxy_forwards_what_the_client_asked_with_its_identity(self):
        before = len(self.stack.kube_request("GET", "/fake/proxied"))
        self.get(f"{CUSTOM}/v1beta2/namespaces/inference/pods/*/gpu_utilization?labelSelector=app+in+(triton)")
        sent = self.stack.kube_request("GET", "/fake/proxied")[before:]
        self.assertEqual(len(sent), 1, sent)
        self.assertEqual(sent[0]["path"], f"{CUSTOM}/v1beta2/namespaces/inference/pods/%2A/gpu_utilization"
                                          "?labelSelector=app+in+%28triton%29&timeout=10s")
        headers = [(k.lower(), v) for k, v in sent[0]["headers"]]
        self.assertIn(("x-remote-user", "kubernetes-admin"), headers)
        self.assertEqual([v for k, v in headers if k == "x-remote-group"],
                         ["kubeadm:cluster-admins", "system:authenticated"])
        self.assertNotIn("authorization", dict(headers))


class ZzShutdown(SharedStack):
    """Last (unittest runs a module's classes in name order): stops the shared stack's parts."""

    def test_zz_stopped_prometheus_is_503_and_nothing_hangs(self):
        self.stack.stop("prometheus")
        # A request no earlier test made, so no cached snapshot can answer it (one that can is
        # served stale for --metrics-serve-stale-for, as tests/e2e/cache_test.py checks).
        path = f"{CUSTOM}/v1beta2/namespaces/batch/pods/*/gpu_tensor_active"
        errors = []
        for via_aggregator in (False, True):
            started = time.time()
            code, out, err = self.stack.kubectl_raw(path, via_aggregator=via_aggregator)
            self.assertNotEqual(code, 0, out)
            self.assertIn("ServiceUnavailable", err)
            self.assertLess(time.time() - started, 30, "a down backend must not hang the request")
            errors.append(err)
        self.assertEqual(errors[0], errors[1], "the adapter's 503 Status comes through the proxy unchanged")
        # Discovery keeps the last good list.
        names = {r["name"] for r in self.get(f"{CUSTOM}/v1beta2")["resources"]}
        self.assertIn("pods/gpu_utilization", names)
        self.assertIn("prometheus", self.stack.log("adapter"))

    def test_zzz_sigterm_stops_cleanly(self):
        started = time.time()
        self.assertEqual(self.stack.stop("adapter"), 0)
        self.assertLess(time.time() - started, 10)
        self.assertIn("received signal 15, shutting down", self.stack.log("adapter"))
        # Its APIService is now unavailable: the aggregator answers for it.
        status, headers, body = self.stack.aggregator_get(f"{CUSTOM}/v1beta2")
        self.assertEqual((status, body), (503, "service unavailable\n"))
        self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")
        code, _, err = self.stack.kubectl_raw(f"{CUSTOM}/v1beta2", via_aggregator=True)
        self.assertNotEqual(code, 0)
        self.assertIn("Error from server (ServiceUnavailable): the server is currently unable to handle the request",
                      err)


class StartUp(unittest.TestCase):
    def run_binary(self, *args):
        return subprocess.run([os.path.abspath(BINARY), *args], capture_output=True, text=True, timeout=30)

    def test_refuses_to_start_without_auth(self):
        p = self.run_binary("--secure-port=1", "--cert-dir=/nonexistent")
        self.assertEqual(p.returncode, 1)
        self.assertIn("refusing to start", p.stderr)
        self.assertIn("--insecure-skip-auth", p.stderr)

    def test_bad_flags_fail_with_one_line(self):
        for args in (["--no-such-flag"], ["--secure-port=70000"], ["--metrics-relist-interval=soon"]):
            with self.subTest(args=args):
                p = self.run_binary(*args)
                self.assertEqual(p.returncode, 2)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_help_lists_flags(self):
        p = self.run_binary("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--prometheus-url", p.stdout)


if __name__ == "__main__":
    unittest.main()


class BackendFailures(unittest.TestCase):
    """A Prometheus that never answers, and one behind TLS."""

    def setUp(self):
        self.stack = Stack(os.path.abspath(BINARY))

    def tearDown(self):
        self.stack.close()

    def test_silent_prometheus_gets_503_within_the_deadline(self):
        import socket
        import threading
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        held = []
        stop = threading.Event()

        def accept_and_hold():  # accepts, reads nothing, answers nothing
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(listener.accept()[0])
                except OSError:
                    pass
        thread = threading.Thread(target=accept_and_hold, daemon=True)
        thread.start()
        try:
            port = listener.getsockname()[1]
            self.stack.start_adapter(["--prometheus-query-timeout=1s"],
                                     prometheus_url=f"http://127.0.0.1:{port}", wait_ready=False)
            started = time.time()
            code, _, err = self.stack.kubectl_raw(
                f"{CUSTOM}/v1beta2/namespaces/inference/pods/*/gpu_utilization", timeout="20s")
            elapsed = time.time() - started
            self.assertNotEqual(code, 0)
            self.assertIn("ServiceUnavailable", err)
            self.assertLess(elapsed, 15, "the query deadline must bound the request")
            # Ready all the same (an unready APIService would break discovery for the whole
            # cluster), with Prometheus' state listed and on its own path.
            code, out, _ = self.stack.kubectl_raw("/readyz?verbose")
            self.assertEqual(code, 0, out)
            self.assertIn("[-]prometheus failed: Prometheus at 127.0.0.1:", out)
            self.assertIn("(informational: not required for readiness)", out)
            self.assertIn("[-]metric-discovery failed: no metric discovery has succeeded yet", out)
            self.assertNotEqual(self.stack.kubectl_raw("/readyz/prometheus")[0], 0)
            # The discovery list is never empty, even before the first success.
            self.assertEqual(self.get_names(), {"/custommetric"})
        finally:
            stop.set()
            thread.join()
            for s in held:
                s.close()
            listener.close()

    def test_connections_beyond_the_limit_are_closed(self):
        self.stack.start_exporter("exporter-a", SCENARIO_A)
        self.stack.start_prometheus([{"name": "dcgm", "exporter": "exporter-a"}])
        self.stack.start_adapter(["--max-open-connections=2"])
        held = [self.stack.https_connection() for _ in range(2)]
        for c in held:
            self.assertEqual(self.stack.https_get("/livez", connection=c), (200, "ok"))
        # Both are idle between requests: the one idle the longest makes room for a new client.
        self.assertEqual(self.stack.https_get("/livez"), (200, "ok"))
        self.assertEqual(self.stack.https_get("/livez", connection=held[0])[0], 0,
                         "the longest-idle connection must have been closed")
        self.assertEqual(self.stack.https_get("/livez", connection=held[1]), (200, "ok"))
        for c in held:
            c.close()

    def get_names(self):
        code, out, _ = self.stack.kubectl_raw(f"{CUSTOM}/v1beta2")
        self.assertEqual(code, 0)
        return {r["name"] for r in json.loads(out)["resources"]}

    def test_https_prometheus_verified_with_its_ca(self):
        from stack import make_certificates
        ca, cert, key = make_certificates(self.stack.dir)
        self.stack.start_exporter("exporter-a", SCENARIO_A)
        self.stack.start_prometheus([{"name": "dcgm", "exporter": "exporter-a"}], tls=(ca, cert, key))
        self.stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 6)
        self.stack.start_adapter([f"--prometheus-ca-file={ca}"])
        code, out, err = self.stack.kubectl_raw(
            f"{CUSTOM}/v1beta2/namespaces/inference/pods/triton-b/gpu_utilization")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["items"][0]["value"], "60")

    def test_https_prometheus_with_an_untrusted_certificate_is_refused(self):
        from stack import make_certificates
        ca, cert, key = make_certificates(self.stack.dir)
        other_dir = os.path.join(self.stack.dir, "other")
        os.makedirs(other_dir)
        other_ca, _, _ = make_certificates(other_dir)
        self.stack.start_exporter("exporter-a", SCENARIO_A)
        self.stack.start_prometheus([{"name": "dcgm", "exporter": "exporter-a"}], tls=(ca, cert, key))
        self.stack.start_adapter([f"--prometheus-ca-file={other_ca}"], wait_ready=False)
        code, _, err = self.stack.kubectl_raw(
            f"{CUSTOM}/v1beta2/namespaces/inference/pods/triton-b/gpu_utilization")
        self.assertNotEqual(code, 0)
        self.assertIn("ServiceUnavailable", err)
        wait_until("the TLS failure in the log", lambda: "certificate verify failed" in self.stack.log("adapter"),
                   timeout=10)
