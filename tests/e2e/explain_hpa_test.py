"""End to end: `gpu-metrics-adapter explain-hpa` against the real Prometheus and the fake
Kubernetes API, with the seed's three HPA forms (Pods gpu_utilization averageValue 80 in
autoscaling/v2; External gpu.utilization with selector gpu-type: tesla-v100 and averageValue 80
in v2beta2; both in v2beta1), as a manifest and as a live object, in table and JSON output, and a
metric that cannot be read.

The expected replica counts are computed here from the values the adapter's API serves, with
the controller's formulas written out independently (stack.hpa_pods_recommendation and
gpu_semantics_test.hpa_external_average_value), never copied from explain-hpa's output.
"""
import json
import math
import os
import subprocess
import sys
import unittest

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from stack import hpa_pods_recommendation, quantity_milli, wait_until  # noqa: E402
import e2e_test  # noqa: E402
from gpu_semantics_test import gpu, hpa_external_average_value  # noqa: E402

BINARY = e2e_test.BINARY
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
V100 = "?labelSelector=gpu-type%3Dtesla-v100"

# honorLabels: true. triton-a has two V100s at 89 and 90, triton-b one at 54; other-h100's GPU
# is left out by the gpu-type selector.
HONORED = {"gpus": [
    gpu(0, 89, "inference", "triton-a", "triton", gpu_type="tesla-v100"),
    gpu(1, 90, "inference", "triton-a", "triton", gpu_type="tesla-v100"),
    gpu(2, 54, "inference", "triton-b", "triton", gpu_type="tesla-v100"),
    gpu(3, 10, "inference", "other-h100", "triton", gpu_type="h100"),
]}
# honorLabels: false, in another namespace: the same answers must come from exported_* labels.
RENAMED = {"hostname": "gpu-node-2", "gpus": [
    gpu(0, 95, "batch", "trainer-a", "trainer", gpu_type="tesla-v100"),
    gpu(1, 85, "batch", "trainer-b", "trainer", gpu_type="tesla-v100"),
]}
PODS = [
    {"namespace": "inference", "name": "triton-a", "labels": {"app": "triton"}},
    {"namespace": "inference", "name": "triton-b", "labels": {"app": "triton"}},
    {"namespace": "inference", "name": "other-h100", "labels": {"app": "other"}},
    {"namespace": "batch", "name": "trainer-a", "labels": {"app": "trainer"}},
    {"namespace": "batch", "name": "trainer-b", "labels": {"app": "trainer"}},
]
TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "triton"}


def deployment(namespace, name, app, replicas):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app}},
                                  "spec": {"containers": [{"name": "server", "image": "nvcr.io/nvidia/tritonserver:24.05-py3"}]}}}}


def hpa_v2(metrics, api_version="autoscaling/v2", name="triton", namespace="inference", target=TARGET,
           max_replicas=10):
    return {"apiVersion": api_version, "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": target, "minReplicas": 1, "maxReplicas": max_replicas,
                     "metrics": metrics}}


def pods_v2(name="gpu_utilization", average="80"):
    return {"type": "Pods", "pods": {"metric": {"name": name},
                                     "target": {"type": "AverageValue", "averageValue": average}}}


def external_v2(average="80"):
    return {"type": "External", "external": {
        "metric": {"name": "gpu.utilization", "selector": {"matchLabels": {"gpu-type": "tesla-v100"}}},
        "target": {"type": "AverageValue", "averageValue": average}}}


def hpa_v2beta1(pods_average="80", external_average="80"):
    return {"apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "triton", "namespace": "inference"},
            "spec": {"scaleTargetRef": TARGET, "minReplicas": 1, "maxReplicas": 10, "metrics": [
                {"type": "Pods", "pods": {"metricName": "gpu_utilization", "targetAverageValue": pods_average}},
                {"type": "External", "external": {
                    "metricName": "gpu.utilization",
                    "metricSelector": {"matchLabels": {"gpu-type": "tesla-v100"}},
                    "targetAverageValue": external_average}}]}}


class ExplainHpa(e2e_test.StackTest):
    @classmethod
    def start(cls, stack):
        stack.start_both_label_forms(HONORED, RENAMED)
        stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 6)
        cls.lister = stack.start_fake_kube(PODS)
        stack.kube_request("PUT", "/fake/objects", deployment("inference", "triton", "triton", 2))
        stack.kube_request("PUT", "/fake/objects", deployment("batch", "trainer", "trainer", 2))
        # The server, to read what an HPA would read through the API and compare.
        stack.start_adapter(lister_kubeconfig=cls.lister)
        wait_until("gpu.utilization discovered",
                   lambda: "gpu.utilization" in stack.kubectl_raw(EXTERNAL)[1], timeout=30)

    # -- helpers ---------------------------------------------------------------------------

    def explain(self, *args, manifest=None, lister=True):
        command = [BINARY, "explain-hpa", f"--prometheus-url={self.stack.prometheus_url}", *args]
        if lister:
            command.append(f"--lister-kubeconfig={self.lister}")
        if manifest is not None:
            path = os.path.join(self.stack.dir, "hpa.yaml")
            with open(path, "w") as f:
                yaml.safe_dump(manifest, f)
            command += ["-f", path]
        p = subprocess.run(command, capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def explain_json(self, *args, **kwargs):
        code, out, err = self.explain("-o", "json", *args, **kwargs)
        self.assertIn(code, (0, 1), err)
        return code, json.loads(out), err

    def api_items(self, path):
        status, body = self.stack.https_get(path)
        self.assertEqual(status, 200, body)
        return json.loads(body)["items"]

    def pods_values(self, namespace, selector):
        items = self.api_items(f"{CUSTOM}/namespaces/{namespace}/pods/%2A/gpu_utilization?labelSelector={selector}")
        return {i["describedObject"]["name"]: i["value"] for i in items}

    # -- the seed's three forms ------------------------------------------------------------

    def test_v2_pods_metric_table(self):
        served = self.pods_values("inference", "app%3Dtriton")
        self.assertEqual(sorted(served), ["triton-a", "triton-b"])
        average, ratio, desired = hpa_pods_recommendation([quantity_milli(v) for v in served.values()], 80000)
        code, out, err = self.explain(manifest=hpa_v2([pods_v2()]))
        self.assertEqual(code, 0, err + out)
        self.assertIn("HorizontalPodAutoscaler inference/triton (autoscaling/v2) scales Deployment triton", out)
        self.assertIn("current replicas 2 (Deployment spec.replicas), minReplicas 1, maxReplicas 10, tolerance 0.1", out)
        self.assertIn("pods: 2 selected by app=triton, 2 running and ready", out)
        self.assertIn("Metric 1: Pods gpu_utilization", out)
        for pod, value in served.items():
            self.assertIn(f"{pod} {value}", out)
        self.assertIn(f"current:   {average}m" if average % 1000 else f"current:   {average // 1000}", out)
        self.assertIn(f"ratio:     {ratio:.4f}".rstrip("0") + "\n", out)
        self.assertIn(f"proposal:  {desired}\n", out)
        self.assertIn(f"\nDesired replicas: {desired}\n", out)
        self.assertIn("Not known or assumed here:", out)
        self.assertIn("stabilization", out)
        code, body, err = self.explain_json(manifest=hpa_v2([pods_v2()]))
        self.assertEqual(code, 0, err)
        self.assertEqual(sorted((v["name"], v["value"]) for v in body["metrics"][0]["values"]), sorted(served.items()))
        self.assertEqual((body["metrics"][0]["proposal"], body["desiredReplicas"]), (desired, desired))
        self.assertEqual(body["pods"], [{"name": p, "phase": "Running", "ready": True, "deleted": False}
                                        for p in sorted(served)])

    def test_v2beta2_external_metric_json(self):
        items = self.api_items(f"{EXTERNAL}/namespaces/inference/gpu.utilization{V100}")
        self.assertEqual(len(items), 2)  # triton-a and triton-b, not other-h100
        desired = hpa_external_average_value(
            [{"value": i["value"]} for i in items], "80", replicas=2)
        code, body, err = self.explain_json(manifest=hpa_v2([external_v2()], api_version="autoscaling/v2beta2"))
        self.assertEqual(code, 0, err)
        self.assertEqual(body["hpa"], {"apiVersion": "autoscaling/v2beta2", "namespace": "inference", "name": "triton"})
        metric = body["metrics"][0]
        self.assertEqual((metric["type"], metric["name"], metric["selector"], metric["status"]),
                         ("External", "gpu.utilization", "gpu-type=tesla-v100", "ok"))
        self.assertEqual(metric["target"], {"type": "AverageValue", "averageValue": "80"})
        self.assertEqual(sorted((v["name"], v["value"]) for v in metric["values"]),
                         sorted(("{namespace=inference,pod=%s}" % i["metricLabels"]["pod"], i["value"]) for i in items))
        total = sum(quantity_milli(i["value"]) for i in items)
        self.assertEqual(quantity_milli(metric["current"]), -(-total // 2))
        self.assertAlmostEqual(metric["ratio"], total / (80000 * 2))
        self.assertEqual(metric["proposal"], desired)
        self.assertEqual(body["desiredReplicas"], desired)
        self.assertEqual(body["decidedBy"], 0)
        self.assertTrue(body["ableToScale"])
        code, out, err = self.explain(manifest=hpa_v2([external_v2()], api_version="autoscaling/v2beta2"))
        self.assertEqual(code, 0, err)
        self.assertIn("(autoscaling/v2beta2)", out)
        self.assertIn("Metric 1: External gpu.utilization\n  selector:  gpu-type=tesla-v100", out)
        self.assertIn(f"proposal:  {desired}\n", out)
        self.assertIn(f"Desired replicas: {desired}\n", out)

    def test_v2beta1_both_metrics_take_the_larger_proposal(self):
        # Targets of 50: the Pods average and the External per-pod value both exceed them.
        served = self.pods_values("inference", "app%3Dtriton")
        _, _, pods_desired = hpa_pods_recommendation([quantity_milli(v) for v in served.values()], 50000)
        items = self.api_items(f"{EXTERNAL}/namespaces/inference/gpu.utilization{V100}")
        external_desired = hpa_external_average_value([{"value": i["value"]} for i in items], "40", replicas=2)
        code, body, err = self.explain_json(manifest=hpa_v2beta1(pods_average="50", external_average="40"))
        self.assertEqual(code, 0, err)
        self.assertEqual([m["proposal"] for m in body["metrics"]], [pods_desired, external_desired])
        self.assertEqual(body["desiredReplicas"], min(max(pods_desired, external_desired), 4))  # max(2 x 2, 4)
        self.assertEqual(body["decidedBy"], 0 if pods_desired >= external_desired else 1)
        # The table of the same HPA.
        code, out, err = self.explain(manifest=hpa_v2beta1(pods_average="50", external_average="40"))
        self.assertEqual(code, 0, err)
        self.assertIn("(autoscaling/v2beta1)", out)
        self.assertIn("Metric 2: External gpu.utilization\n  selector:  gpu-type=tesla-v100", out)

    def test_object_metric_of_the_namespace(self):
        status, body = self.stack.https_get(f"{CUSTOM}/namespaces/inference/metrics/gpu_power_watts")
        self.assertEqual(status, 200, body)
        served = json.loads(body)["items"][0]["value"]
        # Value: current / target times the ready pods (2); target half the value doubles them.
        target_milli = quantity_milli(served) // 2
        target = f"{target_milli}m"
        # The HPA's client asks for the HPA's own namespace, whatever name the reference gives.
        metric = {"type": "Object", "object": {
            "describedObject": {"apiVersion": "v1", "kind": "Namespace", "name": "elsewhere"},
            "metric": {"name": "gpu_power_watts"},
            "target": {"type": "Value", "value": target}}}
        code, body, err = self.explain_json(manifest=hpa_v2([metric]))
        self.assertEqual(code, 0, err)
        entry = body["metrics"][0]
        self.assertEqual(entry["describedObject"], {"apiVersion": "v1", "kind": "Namespace", "name": "elsewhere"})
        self.assertEqual([v["value"] for v in entry["values"]], [served])
        ratio = quantity_milli(served) / target_milli
        self.assertAlmostEqual(entry["ratio"], ratio)
        self.assertEqual(entry["proposal"], math.ceil(ratio * 2))
        self.assertIn("ready 2 pods", entry["reason"])

    def test_average_value_divides_by_the_targets_status_replicas(self):
        # A rollout's surge pod: spec.replicas 2, status.replicas 3. The controller divides the
        # External AverageValue by 3 (the scale subresource's status.replicas).
        surging = deployment("inference", "surging", "triton", 2)
        surging["status"] = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 2,
                             "availableReplicas": 2}
        self.stack.kube_request("PUT", "/fake/objects", surging)
        items = self.api_items(f"{EXTERNAL}/namespaces/inference/gpu.utilization{V100}")
        total = sum(quantity_milli(i["value"]) for i in items)
        code, body, err = self.explain_json(manifest=hpa_v2([external_v2("60")], target={**TARGET, "name": "surging"}))
        self.assertEqual(code, 0, err)
        self.assertEqual((body["currentReplicas"], body["statusReplicas"]), (2, 3))
        metric = body["metrics"][0]
        self.assertAlmostEqual(metric["ratio"], total / (60000 * 3))
        self.assertEqual(quantity_milli(metric["current"]), -(-total // 3))

    def test_renamed_label_form_gives_the_same_answer(self):
        served = self.pods_values("batch", "app%3Dtrainer")
        self.assertEqual(sorted(served), ["trainer-a", "trainer-b"])
        _, _, desired = hpa_pods_recommendation([quantity_milli(v) for v in served.values()], 60000)
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "trainer"}
        code, body, err = self.explain_json(
            manifest=hpa_v2([pods_v2(average="60"), external_v2("60")], name="trainer", namespace="batch",
                            target=target))
        self.assertEqual(code, 0, err)
        self.assertEqual(body["metrics"][0]["proposal"], desired)
        self.assertEqual(body["podSelector"], "app=trainer")

    def test_live_hpa(self):
        self.stack.kube_request("PUT", "/fake/objects", hpa_v2([pods_v2()], name="live"))
        code, out, err = self.explain("--hpa", "inference/live")
        self.assertEqual(code, 0, err)
        self.assertIn("HorizontalPodAutoscaler inference/live (autoscaling/v2)", out)
        self.assertIn("\nDesired replicas: 2\n", out)
        code, out, err = self.explain("--hpa", "inference/absent")
        self.assertEqual(code, 3)
        self.assertIn('HorizontalPodAutoscaler inference/absent: HTTP 404: horizontalpodautoscalers.autoscaling '
                      '"absent" not found', err)

    # -- what the controller would do with missing pods ----------------------------------

    def test_a_pod_without_a_metric_counts_at_the_target_on_a_scale_down(self):
        self.stack.kube_request("PUT", "/fake/pods/inference/triton-c", {"labels": {"app": "triton"}})
        self.stack.kube_request("PUT", "/fake/objects", deployment("inference", "triton3", "triton", 3))
        try:
            served = self.pods_values("inference", "app%3Dtriton")
            self.assertNotIn("triton-c", served)
            code, body, err = self.explain_json(
                manifest=hpa_v2([pods_v2()], target={**TARGET, "name": "triton3"}))
            self.assertEqual(code, 0, err)
            metric = body["metrics"][0]
            # avg(89.5, 54) = 71.75 < 80: triton-c counts as 80, (89.5 + 54 + 80) / 3 = 74.5,
            # a ratio of 0.93125, within the tolerance: 3 stays.
            values = [quantity_milli(v) for v in served.values()] + [80000]
            self.assertEqual(sum(values) // 3, 74500)
            self.assertIn("1 pod without a metric (triton-c) counted at the target, as on a scale-down: "
                          "the ratio becomes 0.931", metric["reason"])
            self.assertEqual(body["desiredReplicas"], 3)
            self.assertEqual(len(body["pods"]), 3)
        finally:
            self.stack.kube_request("DELETE", "/fake/pods/inference/triton-c")

    # -- what cannot be read ------------------------------------------------------------

    def test_a_metric_that_cannot_be_read(self):
        # The readable metric proposes a scale-down (71.75 / 160: 1 replica), which the
        # failing one blocks.
        manifest = hpa_v2([pods_v2(average="160"), pods_v2(name="gpu_temperature_missing")])
        code, out, err = self.explain(manifest=manifest)
        self.assertEqual(code, 1, out)
        message = "HTTP 404 NotFound: the server could not find the metric gpu_temperature_missing for pods"
        self.assertIn("  error:     " + message, out)
        self.assertIn("Error: Pods gpu_temperature_missing: " + message, err)
        self.assertIn("proposal:  1\n", out)
        self.assertIn("Desired replicas: 2 (the controller would not scale)\n  a metric could not be read and the "
                      "others propose to scale down, which a failing metric blocks", out)
        # Proposing a scale-up, the readable metric wins despite the failing one.
        code, out, err = self.explain(manifest=hpa_v2([pods_v2(average="40"), pods_v2(name="gpu_temperature_missing")]))
        self.assertEqual(code, 1, out)
        self.assertIn("Desired replicas: 4\n  Pods metric gpu_utilization proposes 4 (1 failing metric ignored, "
                      "since the count does not go down)", out)
        code, body, err = self.explain_json(manifest=manifest)
        self.assertEqual(code, 1)
        self.assertEqual([m["status"] for m in body["metrics"]], ["ok", "error"])
        self.assertEqual(body["metrics"][1]["reason"], message)
        self.assertIsNone(body["metrics"][1]["proposal"])
        self.assertFalse(body["ableToScale"])

    def test_unreachable_scale_target_needs_a_selector(self):
        manifest = hpa_v2([pods_v2()], target={**TARGET, "name": "gone"})
        code, out, err = self.explain(manifest=manifest)
        self.assertEqual(code, 3, out)
        self.assertIn('the scale target Deployment inference/gone could not be read: HTTP 404: deployments.apps '
                      '"gone" not found; give --selector', err)
        code, out, err = self.explain("--selector", "app=triton", "--current-replicas", "2", manifest=manifest)
        self.assertEqual(code, 0, err)
        self.assertIn("current replicas 2 (--current-replicas)", out)
        self.assertIn("could not be read (HTTP 404", out)
        self.assertIn("\nDesired replicas: 2\n", out)

    def test_resource_metrics_are_shown_as_not_read(self):
        cpu = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
        code, out, err = self.explain(manifest=hpa_v2([cpu, pods_v2()]))
        self.assertEqual(code, 0, err)
        self.assertIn("Metric 1: Resource cpu", out)
        self.assertIn("proposal:  not counted", out)
        self.assertIn("metrics.k8s.io (metrics-server)", out)

    def test_usage_and_input_errors(self):
        p = subprocess.run([BINARY, "explain-hpa"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("explain-hpa needs one of -f FILE and --hpa NAMESPACE/NAME", p.stderr)
        p = subprocess.run([BINARY, "--hpa", "a/b"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--hpa is a flag of the explain-hpa command", p.stderr)
        bad = hpa_v2([pods_v2(average="eighty")])
        code, out, err = self.explain(manifest=bad)
        self.assertEqual(code, 3)
        self.assertIn('spec.metrics[0].pods.target.averageValue: "eighty" is not a quantity', err)


if __name__ == "__main__":
    unittest.main()
