"""End to end: what the HPA computes from the built-in metrics, against the real Prometheus.

External metrics are summed by the HPA; for an AverageValue target the sum is divided by the
replica count. So the built-in external GPU metrics answer one item per pod (aggregated over the
pod's GPUs as the Pods metrics are), in both label forms, after the selector has picked the GPU
series; the per-GPU series stay available as *_per_gpu. Also: vLLM's older KV-cache name, and the
Triton queue-time rules of manifests/examples/triton-rules.yaml.
"""
import json
import math
import os
import re
import subprocess
import sys
import unittest
import urllib.parse
import urllib.request
from decimal import Decimal

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from stack import wait_until  # noqa: E402
import e2e_test  # noqa: E402

BINARY = e2e_test.BINARY
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BUILTIN_RULES = os.path.join(ROOT, "manifests", "base", "gpu-rules.yaml")
TRITON_RULES = os.path.join(ROOT, "manifests", "examples", "triton-rules.yaml")
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
A10G = "?labelSelector=gpu-type%3Da10g"  # as an HPA's matchLabels: {gpu-type: a10g} sends it


def gpu(n, util, namespace=None, pod=None, container="server", gpu_type="a10g", fb_used=1000,
        power=100.0):
    g = {"gpu": n, "util": util, "fb_used": fb_used, "fb_free": 4000 - fb_used, "power": power,
         "engine": util / 100, "tensor": util / 200, "labels": {"gpu_type": gpu_type}}
    if pod:
        g.update(namespace=namespace, pod=pod, container=container)
    return g


# honorLabels: true. triton-a has two GPUs at 89 and 90, triton-b one at 54; other-h100's GPU
# is left out by the gpu-type selector, and GPU 4 is idle.
HONORED = {
    "gpus": [
        gpu(0, 89, "inference", "triton-a", "triton", fb_used=1000, power=100.5),
        gpu(1, 90, "inference", "triton-a", "triton", fb_used=2001, power=200.25),
        gpu(2, 54, "inference", "triton-b", "triton", fb_used=1500, power=150.0),
        gpu(3, 10, "inference", "other-h100", "triton", gpu_type="h100"),
        gpu(4, 0),
    ],
    # vllm-old is an older vLLM (only vllm:gpu_cache_usage_perc), vllm-both exposes both names.
    "vllm": [
        {"namespace": "llm", "pod": "vllm-new", "model_name": "llama-3-8b", "waiting": 1, "kv": 0.5},
        {"namespace": "llm", "pod": "vllm-old", "model_name": "llama-3-8b", "waiting": 3, "gpu_cache": 0.375},
        {"namespace": "llm", "pod": "vllm-both", "model_name": "llama-3-8b", "waiting": 2, "kv": 0.25,
         "gpu_cache": 0.75},
    ],
}
# honorLabels: false: the workload labels become exported_*, namespace/pod/container name the
# exporter's pod. trainer-a's two GPUs are held by two of its containers.
RENAMED = {
    "hostname": "gpu-node-2",
    "gpus": [
        gpu(0, 89, "batch", "trainer-a", "trainer", fb_used=1000, power=100.5),
        gpu(1, 90, "batch", "trainer-a", "loader", fb_used=2001, power=200.25),
        gpu(2, 54, "batch", "trainer-b", "trainer", fb_used=1500, power=150.0),
        gpu(3, 0),
    ],
}
GPU_METRICS = ["gpu_utilization", "gpu.utilization", "gpu_memory_used_bytes",
               "gpu_memory_utilization", "gpu_power_watts", "gpu_engine_active", "gpu_tensor_active"]


def milli(quantity):
    """Quantity.MilliValue(): ceil(q x 1000), for the suffixes the adapter writes."""
    scale = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal(10**3),
             "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12)}
    if quantity[-1] in scale:
        value = Decimal(quantity[:-1]) * scale[quantity[-1]]
    else:
        value = Decimal(quantity)
    return math.ceil(value * 1000)


def hpa_external_average_value(items, target, replicas, tolerance=0.1):
    """The HPA's desired replicas for an External AverageValue target (replica_calculator.go
    GetExternalMetricReplicas): the SUM of the items' milli-values over target x replicas."""
    value = sum(milli(i["value"]) for i in items)
    ratio = value / (milli(target) * replicas)
    if 1 - tolerance <= ratio <= 1 + tolerance:
        return replicas
    return math.ceil(value / milli(target))


def hpa_pods_average_value(items, target, replicas, tolerance=0.1):
    """The HPA's desired replicas for a Pods AverageValue target, every pod with a value
    (calcPlainMetricReplicas): the average over the pods, times the pods."""
    usage = sum(milli(i["value"]) for i in items) // len(items)
    ratio = usage / milli(target)
    if 1 - tolerance <= ratio <= 1 + tolerance:
        return replicas
    return math.ceil(ratio * len(items))


class StackTest(e2e_test.StackTest):
    """One stack per class (e2e_test's), plus a GET that must succeed."""

    def get(self, path):
        status, body = self.stack.https_get(path)
        self.assertEqual(status, 200, f"{path}: {body}")
        return json.loads(body)

    def by_pod(self, path):
        """External items as {pod: (value, metricLabels)}; fails on two items for one pod."""
        items = self.get(path)["items"]
        out = {}
        for i in items:
            pod = i["metricLabels"]["pod"]
            self.assertNotIn(pod, out, f"two items for pod {pod}: {items}")
            out[pod] = (i["value"], i["metricLabels"])
        return out

    def pod_values(self, path):
        return {i["describedObject"]["name"]: i["value"] for i in self.get(path)["items"]}


class BuiltInGpuSemantics(StackTest):
    @classmethod
    def start(cls, stack):
        stack.start_both_label_forms(HONORED, RENAMED)
        stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 9)
        stack.wait_for_series("vllm:gpu_cache_usage_perc", 2)
        stack.start_adapter()  # the built-in rules, no --config

    def test_external_gpu_utilization_is_one_item_per_pod(self):
        for namespace, a, b in (("inference", "triton-a", "triton-b"), ("batch", "trainer-a", "trainer-b")):
            with self.subTest(namespace=namespace):
                items = self.by_pod(f"{EXTERNAL}/namespaces/{namespace}/gpu.utilization{A10G}")
                # a's GPUs averaged (89, 90), in both label forms, even when two containers
                # hold them; each item names its pod and nothing else.
                self.assertEqual(items, {a: ("89500m", {"namespace": namespace, "pod": a}),
                                         b: ("54", {"namespace": namespace, "pod": b})})

    def test_hpa_average_value_80_is_the_per_pod_average(self):
        items = self.get(f"{EXTERNAL}/namespaces/inference/gpu.utilization{A10G}")["items"]
        self.assertEqual(sum(milli(i["value"]) for i in items) / 2, 71750)  # avg(89.5, 54)
        self.assertEqual(hpa_external_average_value(items, "80", replicas=2), 2)
        # The same as the Pods metric would give for those two pods.
        pods = self.get(f"{CUSTOM}/namespaces/inference/pods/%2A/gpu_utilization")["items"]
        pods = [i for i in pods if i["describedObject"]["name"] in ("triton-a", "triton-b")]
        self.assertEqual(hpa_pods_average_value(pods, "80", replicas=2), 2)
        # One item per GPU, as the external metric was before: (89+90+54)/2 = 116.5 per pod,
        # and the HPA would scale 2 pods to ceil(233/80) = 3.
        per_gpu = self.get(f"{EXTERNAL}/namespaces/inference/gpu_utilization_per_gpu{A10G}")["items"]
        self.assertEqual(sum(milli(i["value"]) for i in per_gpu) / 2, 116500)
        self.assertEqual(hpa_external_average_value(per_gpu, "80", replicas=2), 3)

    def test_per_gpu_metric_keeps_one_item_per_gpu(self):
        for namespace, a, b in (("inference", "triton-a", "triton-b"), ("batch", "trainer-a", "trainer-b")):
            with self.subTest(namespace=namespace):
                items = self.get(f"{EXTERNAL}/namespaces/{namespace}/gpu_utilization_per_gpu{A10G}")["items"]
                self.assertEqual(sorted((i["metricLabels"]["pod"], i["metricLabels"]["gpu"], i["value"])
                                        for i in items),
                                 [(a, "0", "89"), (a, "1", "90"), (b, "2", "54")])
                for i in items:
                    self.assertEqual(i["metricLabels"]["namespace"], namespace)
                    self.assertEqual(i["metricLabels"]["modelName"], "NVIDIA A10G")
        # exported_container is relabelled to container on the per-GPU items.
        items = self.get(f"{EXTERNAL}/namespaces/batch/gpu_utilization_per_gpu{A10G}")["items"]
        self.assertEqual(sorted(i["metricLabels"]["container"] for i in items), ["loader", "trainer", "trainer"])

    def test_selector_picks_gpu_series_before_the_average(self):
        # honorLabels: true: container is the workload's.
        items = self.by_pod(f"{EXTERNAL}/namespaces/inference/gpu_utilization?labelSelector=container%3Dtriton")
        self.assertEqual({p: v for p, (v, _) in items.items()},
                         {"triton-a": "89500m", "triton-b": "54", "other-h100": "10"})
        items = self.by_pod(f"{EXTERNAL}/namespaces/inference/gpu_utilization?labelSelector=gpu%3D1")
        self.assertEqual({p: v for p, (v, _) in items.items()}, {"triton-a": "90"})
        # honorLabels: false: select on the series' own exported_container; only trainer-a's
        # GPU held by "loader" is left.
        items = self.by_pod(f"{EXTERNAL}/namespaces/batch/gpu_utilization?labelSelector=exported_container%3Dloader")
        self.assertEqual(items, {"trainer-a": ("90", {"namespace": "batch", "pod": "trainer-a"})})

    def test_every_external_gpu_metric_equals_the_pods_metric(self):
        # Aggregated over the pod's GPUs as the Pods metric is (avg or sum), in both label forms.
        for namespace in ("inference", "batch"):
            for metric in GPU_METRICS:
                with self.subTest(namespace=namespace, metric=metric):
                    pods_metric = "gpu_utilization" if metric == "gpu.utilization" else metric
                    expected = self.pod_values(f"{CUSTOM}/namespaces/{namespace}/pods/%2A/{pods_metric}")
                    self.assertEqual(len(expected), 3 if namespace == "inference" else 2)
                    items = self.by_pod(f"{EXTERNAL}/namespaces/{namespace}/{metric}")
                    self.assertEqual({p: v for p, (v, _) in items.items()}, expected)
        # Sums, spelled out: triton-a's memory and power.
        items = self.by_pod(f"{EXTERNAL}/namespaces/inference/gpu_memory_used_bytes{A10G}")
        self.assertEqual(items["triton-a"][0], str((1000 + 2001) * 1048576))
        items = self.by_pod(f"{EXTERNAL}/namespaces/batch/gpu_power_watts{A10G}")
        self.assertEqual(items["trainer-a"][0], "300750m")

    def test_exporter_pod_is_never_an_item(self):
        for metric in ("gpu_utilization", "gpu_utilization_per_gpu"):
            with self.subTest(metric=metric):
                self.assertEqual(self.get(f"{EXTERNAL}/namespaces/gpu-operator/{metric}")["items"], [])

    def test_vllm_kv_cache_reads_the_older_name_once_per_pod(self):
        expected = {"vllm-new": "500m", "vllm-old": "375m", "vllm-both": "250m"}
        self.assertEqual(self.pod_values(f"{CUSTOM}/namespaces/llm/pods/%2A/vllm_kv_cache_usage"), expected)
        items = self.by_pod(f"{EXTERNAL}/namespaces/llm/vllm_kv_cache_usage?labelSelector=model_name%3Dllama-3-8b")
        self.assertEqual({p: v for p, (v, _) in items.items()}, expected)
        self.assertEqual(items["vllm-old"][1], {"namespace": "llm", "pod": "vllm-old"})
        # The namespace average counts vllm-both once, with its new name: avg(0.5, 0.375, 0.25).
        body = self.get(f"{CUSTOM}/namespaces/llm/metrics/vllm_kv_cache_usage")
        self.assertEqual([i["value"] for i in body["items"]], ["375m"])

    def test_external_vllm_queue_is_one_item_per_pod(self):
        items = self.by_pod(f"{EXTERNAL}/namespaces/llm/vllm_num_requests_waiting?labelSelector=model_name%3Dllama-3-8b")
        self.assertEqual(items, {"vllm-new": ("1", {"namespace": "llm", "pod": "vllm-new"}),
                                 "vllm-old": ("3", {"namespace": "llm", "pod": "vllm-old"}),
                                 "vllm-both": ("2", {"namespace": "llm", "pod": "vllm-both"})})

    def test_discovery_lists_per_pod_and_per_gpu_metrics(self):
        external = {r["name"] for r in self.get(EXTERNAL)["resources"]}
        for metric in GPU_METRICS:
            self.assertIn(metric, external)
            if metric != "gpu.utilization":
                self.assertIn(metric + "_per_gpu", external)
        self.assertIn("vllm_kv_cache_usage", external)


class OlderVllmOnly(StackTest):
    """A cluster whose vLLM servers all predate the rename: the metric is still discovered."""

    @classmethod
    def start(cls, stack):
        stack.start_exporter("vllm", {"vllm": [
            {"namespace": "llm", "pod": "vllm-0", "model_name": "mistral-7b", "waiting": 4, "gpu_cache": 0.625}]})
        stack.start_prometheus([{"name": "vllm", "exporter": "vllm", "honor_labels": True}])
        stack.wait_for_series("vllm:gpu_cache_usage_perc", 1)
        stack.start_adapter()

    def test_served_as_vllm_kv_cache_usage(self):
        self.assertEqual(self.stack.prometheus_query("vllm:kv_cache_usage_perc"), [])
        names = {r["name"] for r in self.get(CUSTOM)["resources"]}
        self.assertIn("pods/vllm_kv_cache_usage", names)
        self.assertEqual(self.pod_values(f"{CUSTOM}/namespaces/llm/pods/vllm-0/vllm_kv_cache_usage"),
                         {"vllm-0": "625m"})
        self.assertEqual(self.by_pod(f"{EXTERNAL}/namespaces/llm/vllm_kv_cache_usage"),
                         {"vllm-0": ("625m", {"namespace": "llm", "pod": "vllm-0"})})


# Triton counters grow at these rates (per second) since the exporter started.
TRITON = {"triton": [
    {"namespace": "serving", "pod": "triton-q1", "model": "resnet50",
     "queue_us_per_s": 5000, "success_per_s": 10, "compute_us_per_s": 20000},
    # Two models: weighted by requests, (6000 + 2000) / (2 + 6) = 1000 us, not avg(3000, 333).
    {"namespace": "serving", "pod": "triton-q2", "model": "m1",
     "queue_us_per_s": 6000, "success_per_s": 2, "compute_us_per_s": 4000},
    {"namespace": "serving", "pod": "triton-q2", "model": "m2",
     "queue_us_per_s": 2000, "success_per_s": 6, "compute_us_per_s": 4000},
    {"namespace": "serving", "pod": "triton-idle", "model": "resnet50"},
]}


def combined_rules():
    """gpu-rules.yaml with triton-rules.yaml's rules appended, as triton-rules.yaml says."""
    with open(BUILTIN_RULES) as f:
        config = yaml.safe_load(f)
    with open(TRITON_RULES) as f:
        triton = yaml.safe_load(f)
    for key in ("rules", "externalRules"):
        config[key] += triton[key]
    return config


class TritonRules(StackTest):
    """manifests/examples/triton-rules.yaml appended to the built-in rules, served by the adapter."""

    @classmethod
    def start(cls, stack):
        stack.start_exporter("triton", TRITON)
        stack.start_exporter("dcgm", HONORED)
        stack.start_prometheus([{"name": "triton", "exporter": "triton", "honor_labels": True},
                                {"name": "dcgm", "exporter": "dcgm", "honor_labels": True}])
        stack.wait_for_series("rate(nv_inference_queue_duration_us[1m])", 4)  # two samples each
        stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 5)
        cls.config = os.path.join(stack.dir, "config.yaml")
        with open(cls.config, "w") as f:
            yaml.safe_dump(combined_rules(), f, sort_keys=False)
        stack.start_adapter([f"--config={cls.config}"])

    def check(self, *args):
        return subprocess.run([os.path.abspath(BINARY), "check", *args], capture_output=True,
                              text=True, timeout=60)

    def test_the_example_file_loads(self):
        p = self.check(f"--config={TRITON_RULES}")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("OK (2 rules, 1 external rules)", p.stdout)
        p = self.check(f"--config={self.config}")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("OK (16 rules, 29 external rules)", p.stdout)

    def test_queries_are_accepted_by_prometheus(self):
        prometheus = [f"--config={TRITON_RULES}", f"--prometheus-url={self.stack.prometheus_url}"]
        requests = ["namespaces/serving/pods/*/triton_avg_queue_time_us",
                    "namespaces/serving/pods/triton-q1/triton_avg_queue_time_us",
                    "namespaces/serving/metrics/triton_avg_queue_time_us",
                    "namespaces/serving/pods/*/triton_queue_compute_ratio",
                    "namespaces/serving/metrics/triton_queue_compute_ratio",
                    "namespaces/serving/triton_avg_queue_time_us?labelSelector=model%3Dm1"]
        explained = self.check(*prometheus, *[f"--explain={r}" for r in requests])
        self.assertEqual(explained.returncode, 0, explained.stdout + explained.stderr)
        queries = [line.strip() for line in explained.stdout.splitlines()
                   if line.startswith("  ") and not line.startswith("  #") and "=> Prometheus:" not in line]
        self.assertEqual(len(queries), len(requests), explained.stdout)
        # check ran each one itself, and each found series.
        self.assertEqual(len(re.findall(r"=> Prometheus: [1-9]\d* series", explained.stdout)), len(requests),
                         explained.stdout)
        for promql in queries:
            body = urllib.parse.urlencode({"query": promql}).encode()
            with urllib.request.urlopen(f"{self.stack.prometheus_url}/api/v1/query", data=body,
                                        timeout=10) as reply:
                answer = json.load(reply)
            self.assertEqual(answer["status"], "success", promql)
            self.assertTrue(answer["data"]["result"], promql)

    def wait_for(self, path, expected, values):
        """rate() needs two samples in its window: wait until the answer is the expected one."""
        wait_until(f"{path} to be {expected}", lambda: values(path) == expected, timeout=30)

    def test_average_queue_time_per_request(self):
        self.wait_for(f"{CUSTOM}/namespaces/serving/pods/%2A/triton_avg_queue_time_us",
                      {"triton-q1": "500", "triton-q2": "1k", "triton-idle": "0"}, self.pod_values)
        self.wait_for(f"{CUSTOM}/namespaces/serving/pods/%2A/triton_queue_compute_ratio",
                      {"triton-q1": "250m", "triton-q2": "1", "triton-idle": "0"}, self.pod_values)
        # External: one item per pod; a selector on a model sums only its series.
        self.wait_for(f"{EXTERNAL}/namespaces/serving/triton_avg_queue_time_us?labelSelector=model%3Dm1",
                      {"triton-q2": ("3k", {"namespace": "serving", "pod": "triton-q2"})}, self.by_pod)
        # The built-in GPU rules are served alongside.
        self.assertEqual(self.pod_values(f"{CUSTOM}/namespaces/inference/pods/triton-b/gpu_utilization"),
                         {"triton-b": "54"})


if __name__ == "__main__":
    unittest.main()
