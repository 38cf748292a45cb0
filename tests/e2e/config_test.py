"""End to end: a prometheus-adapter rules file (--config) against the real Prometheus, hot
reload under concurrent requests, strict loading, and the reference's flags.
"""
import base64
import json
import os
import ssl
import urllib.parse
import urllib.request
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from e2e_test import BINARY, PODS, SCENARIO_A, StackTest, start_gpu_prometheus  # noqa: E402
from stack import FAKES, Stack, free_port, issue, make_ca, wait_until  # noqa: E402

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"

# The rule from the reference adapter's users for DCGM_FI_DEV_GPU_UTIL behind honorLabels: false
# (DevSecOpsSamples/eks-gpu-autoscaling), as they deploy it.
GPU_CONFIG = """\
rules:
- seriesQuery: 'DCGM_FI_DEV_GPU_UTIL{exported_namespace!="",exported_pod!=""}'
  name:
    as: DCGM_FI_DEV_GPU_UTIL_AVG
  resources:
    overrides:
      exported_namespace: {resource: "namespace"}
      exported_pod: {resource: "pod"}
      exported_container: {resource: "service"}
  metricsQuery: ceil(avg_over_time(<<.Series>>{<<.LabelMatchers>>}[60s]))
- seriesQuery: 'DCGM_FI_DEV_FB_USED{namespace!="",pod!=""}'
  name: {matches: "^DCGM_FI_DEV_(.*)$", as: "gpu_${1}_mib"}
  resources:
    template: "<<.Resource>>"
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
externalRules:
- seriesQuery: '{__name__=~"^vllm:num_requests_waiting$"}'
  name: {matches: "^vllm:(.*)$", as: "vllm_${1}"}
  resources:
    overrides:
      namespace: {resource: namespace}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (model_name)
- seriesQuery: 'DCGM_FI_DEV_POWER_USAGE'
  name: {as: cluster_gpu_power_watts}
  resources: {namespaced: false}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>})
resourceRules:
  cpu: {containerQuery: x, nodeQuery: y, resources: {}, containerLabel: container}
"""


class RulesFile(StackTest):
    @classmethod
    def start(cls, stack):
        start_gpu_prometheus(stack)
        lister = stack.start_fake_kube(PODS)
        cls.config = os.path.join(stack.dir, "config.yaml")
        with open(cls.config, "w") as f:
            f.write(GPU_CONFIG)
        # Flags of a prometheus-adapter Deployment that concern only Go internals.
        stack.start_adapter([f"--config={cls.config}", "--profiling", "--vmodule", "x=2",
                             "--log-flush-frequency=5s", "--prometheus-verb=POST",
                             "--metrics-max-age=5m", "--prometheus-header=X-Scope-OrgID=tenant-1"],
                            lister_kubeconfig=lister)
        wait_until("discovery", lambda: "pods/DCGM_FI_DEV_GPU_UTIL_AVG" in stack.https_get(CUSTOM)[1],
                   timeout=30)

    def get(self, path):
        status, body = self.stack.https_get(path)
        self.assertEqual(status, 200, f"{path}: {body}")
        return json.loads(body)

    def values(self, body):
        return {i["describedObject"]["name"]: i["value"] for i in body["items"]}

    def test_reference_gpu_rule_serves_pods_through_exported_labels(self):
        body = self.get(f"{CUSTOM}/namespaces/batch/pods/%2A/DCGM_FI_DEV_GPU_UTIL_AVG")
        self.assertEqual(self.values(body), {"trainer-0": "42"})
        self.assertEqual(body["items"][0]["describedObject"]["kind"], "Pod")
        # kubectl, as an HPA debugger would use it.
        code, out, err = self.stack.kubectl_raw(
            f"{CUSTOM}/namespaces/batch/pods/%2A/DCGM_FI_DEV_GPU_UTIL_AVG?labelSelector=app%3Dtrainer")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.values(json.loads(out)), {"trainer-0": "42"})

    def test_discovery_follows_the_rules(self):
        resources = {r["name"]: r["namespaced"] for r in self.get(CUSTOM)["resources"]}
        for name in ("pods/DCGM_FI_DEV_GPU_UTIL_AVG", "services/DCGM_FI_DEV_GPU_UTIL_AVG",
                     "pods/gpu_FB_USED_mib"):
            self.assertTrue(resources[name], name)
        self.assertFalse(resources["namespaces/DCGM_FI_DEV_GPU_UTIL_AVG"])
        external = {r["name"]: r["namespaced"] for r in self.get(EXTERNAL)["resources"]}
        self.assertEqual(external, {"vllm_num_requests_waiting": True, "cluster_gpu_power_watts": False})

    def test_template_rule_and_namespace_metric(self):
        body = self.get(f"{CUSTOM}/namespaces/inference/pods/triton-a/gpu_FB_USED_mib")
        self.assertEqual(self.values(body), {"triton-a": str(20514 + 1000)})
        ns = self.get(f"{CUSTOM}/namespaces/inference/metrics/gpu_FB_USED_mib")
        self.assertEqual(ns["items"][0]["describedObject"], {"kind": "Namespace", "name": "inference", "apiVersion": "/v1"})

    def test_external_rules(self):
        body = self.get(f"{EXTERNAL}/namespaces/llm/vllm_num_requests_waiting?labelSelector=model_name%3Dllama-3-8b")
        self.assertEqual([(i["metricLabels"], i["value"]) for i in body["items"]], [({"model_name": "llama-3-8b"}, "7")])
        power = self.get(f"{EXTERNAL}/namespaces/anything/cluster_gpu_power_watts")
        self.assertEqual(len(power["items"]), 1)

    def test_undiscovered_metric_is_404(self):
        status, body = self.stack.https_get(f"{CUSTOM}/namespaces/batch/pods/%2A/gpu_utilization")
        self.assertEqual(status, 404, body)

    def test_ignored_flags_and_resource_rules_are_reported(self):
        log = self.stack.log("adapter")
        self.assertIn("ignoring flags that only concern prometheus-adapter's Go runtime: --profiling, "
                      "--vmodule, --log-flush-frequency", log)
        # Half a resourceRules loads, as in prometheus-adapter, and says what it cannot serve.
        self.assertIn("config.yaml:28: resourceRules.memory is missing: it loads, as in "
                      "prometheus-adapter, but every metrics.k8s.io request gets 500", log)
        status, body = self.stack.https_get("/apis/metrics.k8s.io/v1beta1/namespaces/inference/pods")
        self.assertEqual(status, 500, body)
        self.assertEqual(json.loads(body)["reason"], "InternalError")
        self.assertIn("its resources map no label to pods and namespaces", self.stack.log("adapter"))

    def check(self, *args):
        return subprocess.run([os.path.abspath(BINARY), "check", *args], capture_output=True,
                              text=True, timeout=60)

    def test_check_lists_discoveries_and_explains_requests(self):
        prometheus = f"--prometheus-url={self.stack.prometheus_url}"
        p = self.check(f"--config={self.config}", prometheus,
                       "--explain", "namespaces/batch/pods/*/DCGM_FI_DEV_GPU_UTIL_AVG?labelSelector=app%3Dtrainer",
                       "--explain=namespaces/llm/vllm_num_requests_waiting?labelSelector=model_name%3Dllama-3-8b")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"{self.config}: OK (2 rules, 2 external rules, resourceRules for metrics.k8s.io)",
                      p.stdout)
        self.assertIn(f"custom   pods/DCGM_FI_DEV_GPU_UTIL_AVG (series DCGM_FI_DEV_GPU_UTIL) from rule {self.config}:2",
                      p.stdout)
        self.assertIn("external cluster_gpu_power_watts (not namespaced)", p.stdout)
        self.assertIn('  ceil(avg_over_time(DCGM_FI_DEV_GPU_UTIL{exported_namespace="batch",exported_pod!=""}[60s]))\n',
                      p.stdout)
        self.assertIn("selects the pods matching labelSelector=app=trainer", p.stdout)
        self.assertIn('  sum(vllm:num_requests_waiting{model_name="llama-3-8b",namespace="llm"}) by (model_name)\n',
                      p.stdout)

    def test_builtin_rules_render_valid_promql_scoped_to_the_namespace(self):
        """Every query the built-in rules send, as `check --explain` prints it, is accepted by
        the real Prometheus, and its `unless` right-hand side stays in the namespace asked."""
        builtin = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "manifests",
                               "base", "gpu-rules.yaml")  # compiled in as the built-in rules
        prometheus = [f"--config={builtin}", f"--prometheus-url={self.stack.prometheus_url}"]
        listing = self.check(*prometheus)
        self.assertEqual(listing.returncode, 0, listing.stderr)
        requests = []
        for line in listing.stdout.splitlines():
            words = line.split()
            if line.startswith("custom   pods/"):
                metric = words[1].split("/", 1)[1]
                requests += [f"namespaces/inference/pods/*/{metric}?labelSelector=app%3Dtriton",
                             f"namespaces/inference/pods/triton-a/{metric}"]
            elif line.startswith("custom   namespaces/"):
                requests.append(f"namespaces/inference/metrics/{words[1].split('/', 1)[1]}")
            elif line.startswith("external "):
                requests.append(f"namespaces/inference/{words[1]}?labelSelector=gpu%3D0")
        self.assertGreaterEqual(len(requests), 20, listing.stdout)
        explained = self.check(*prometheus, *[f"--explain={r}" for r in requests])
        self.assertEqual(explained.returncode, 0, explained.stdout + explained.stderr)
        queries = [line.strip() for line in explained.stdout.splitlines()
                   if line.startswith("  ") and not line.startswith("  #") and "=> Prometheus:" not in line]
        # check itself ran each one: every query answered, none refused.
        self.assertEqual(explained.stdout.count("=> Prometheus: "), len(queries), explained.stdout)
        self.assertNotIn("=> Prometheus: error", explained.stdout)
        self.assertGreaterEqual(len(queries), len(requests))
        for promql in queries:
            if "unless on (job, instance)" in promql:
                for right_side in promql.split("unless on (job, instance)")[1:]:
                    self.assertIn('{namespace="inference",exported_pod!=""}', right_side, promql)
            body = urllib.parse.urlencode({"query": promql}).encode()
            with urllib.request.urlopen(f"{self.stack.prometheus_url}/api/v1/query", data=body,
                                        timeout=10) as reply:
                answer = json.load(reply)
            self.assertEqual(answer["status"], "success", promql)

    def test_check_refuses_a_bad_file_and_unknown_requests(self):
        bad = os.path.join(self.stack.dir, "bad.yaml")
        with open(bad, "w") as f:
            f.write("externalRules:\n- seriesQuery: q\n  metricsQuery: 'sum(<<.Series>>) by (<<.GroupBy>>)'\n")
        p = self.check(f"--config={bad}")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr.strip().splitlines()[0][:len(bad) + 3], f"{bad}:2:")
        p = self.check(f"--config={self.config}", f"--prometheus-url={self.stack.prometheus_url}",
                       "--explain", "namespaces/batch/pods/*/no_such_metric")
        self.assertEqual(p.returncode, 1)
        self.assertIn("error: metric not found", p.stdout)

    def test_zz_hot_reload_keeps_serving(self):
        path = f"{CUSTOM}/namespaces/batch/pods/%2A/DCGM_FI_DEV_GPU_UTIL_AVG"
        failures = []
        stop = threading.Event()
        counts = [0]

        def hammer():
            connection = self.stack.https_connection()
            while not stop.is_set():
                status, body = self.stack.https_get(path, connection=connection)
                counts[0] += 1
                if status != 200 or '"trainer-0"' not in body:
                    failures.append((status, body[:200]))
        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            # A new rule through SIGHUP ...
            with open(self.config + ".new", "w") as f:
                f.write(GPU_CONFIG.replace("externalRules:", """\
- seriesQuery: 'DCGM_FI_DEV_POWER_USAGE{namespace!="",pod!=""}'
  name: {as: gpu_power_from_config}
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
externalRules:"""))
            os.replace(self.config + ".new", self.config)
            self.stack.procs["adapter"].send_signal(signal.SIGHUP)
            wait_until("the new rule", lambda: self.stack.https_get(
                f"{CUSTOM}/namespaces/inference/pods/triton-b/gpu_power_from_config")[0] == 200, timeout=20)
            self.assertIn("\ngma_config_last_reload_successful 1\n", self.stack.https_get("/metrics")[1])
            # ... then a broken file, noticed by the file watch: the old rules stay.
            with open(self.config + ".new", "w") as f:
                f.write(GPU_CONFIG.replace("metricsQuery: ceil", "metricQuery: ceil"))
            os.replace(self.config + ".new", self.config)
            wait_until("the failed reload", lambda: "gma_config_reload_failures_total 1" in
                       self.stack.https_get("/metrics")[1], timeout=20)
            self.assertIn("\ngma_config_last_reload_successful 0\n", self.stack.https_get("/metrics")[1])
            time.sleep(1)
        finally:
            stop.set()
            for t in threads:
                t.join()
        self.assertEqual(failures, [], f"{len(failures)} of {counts[0]} requests failed during reloads")
        self.assertGreater(counts[0], 20)
        self.assertIn("config.yaml:10: unknown key \"metricQuery\"", self.stack.log("adapter"))
        self.assertEqual(self.stack.https_get(f"{CUSTOM}/namespaces/inference/pods/triton-b/gpu_power_from_config")[0], 200)
        self.assertIn("gma_config_last_reload_success_timestamp_seconds", self.stack.https_get("/metrics")[1])


class PartialDiscovery(StackTest):
    """A series query Prometheus refuses does not cost the other rules their metrics."""

    @classmethod
    def start(cls, stack):
        stack.start_exporter("exporter-a", SCENARIO_A)
        stack.start_prometheus([{"name": "dcgm", "exporter": "exporter-a"}])
        stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 6)
        config = os.path.join(stack.dir, "config.yaml")
        with open(config, "w") as f:
            f.write("""\
rules:
- seriesQuery: 'DCGM_FI_DEV_POWER_USAGE{namespace!="",pod!=""}'
  name: {as: power}
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
- seriesQuery: 'DCGM_FI_DEV_GPU_UTIL{pod=~"("}'
  name: {as: broken}
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)
""")
        # Not ready: the broken rule is never discovered (its readiness check says so).
        stack.start_adapter([f"--config={config}"], wait_ready=False)

    def test_the_good_rule_is_served(self):
        wait_until("discovery", lambda: self.stack.https_get(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/pods/triton-a/power")[0] == 200, timeout=20)
        names = {r["name"] for r in json.loads(self.stack.https_get(CUSTOM)[1])["resources"]}
        self.assertEqual(names, {"pods/power", "namespaces/power"})
        self.assertIn('series query DCGM_FI_DEV_GPU_UTIL{pod=~"("} failed', self.stack.log("adapter"))
        # The broken rule is named by the (informational) discovery check.
        status, body = self.stack.https_get("/readyz?verbose")
        self.assertEqual(status, 200, body)
        self.assertRegex(body, r"\[-\]metric-discovery failed: discovery failing for the rule at "
                               r".*config.yaml:6: HTTP 400, errorType bad_data")
        # Prometheus answered the other query, so an undiscovered metric is a plain 404.
        status, body = self.stack.https_get(f"{CUSTOM}/namespaces/inference/pods/triton-a/broken")
        self.assertEqual(status, 404, body)


class PrometheusCredentials(unittest.TestCase):
    """The reference's Prometheus flags reach a Prometheus behind an authenticating gateway."""

    def setUp(self):
        self.stack = Stack(os.path.abspath(BINARY))
        self.addCleanup(self.stack.close)
        d = os.path.join(self.stack.dir, "pki")
        os.makedirs(d)
        self.server_ca = make_ca(d, "gateway-ca")
        self.client_ca = make_ca(d, "client-ca")
        server = issue(d, self.server_ca, "gateway", "127.0.0.1")
        self.client = issue(d, self.client_ca, "adapter", "gpu-metrics-adapter", client=True)
        self.stack.start_exporter("exporter-a", SCENARIO_A)
        self.stack.start_prometheus([{"name": "dcgm", "exporter": "exporter-a"}])
        self.stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 6)
        self.port = free_port()
        self.stack.start("gateway", [sys.executable, os.path.join(FAKES, "prometheus_auth_proxy.py"),
                                     "--port", str(self.port), "--upstream", self.stack.prometheus_url,
                                     "--cert", server[0], "--key", server[1], "--client-ca", self.client_ca[0],
                                     "--token", "s3cret", "--tenant", "tenant-1"])
        wait_until("the gateway", lambda: socket_open(self.port), timeout=20)
        self.token_file = os.path.join(self.stack.dir, "token")
        with open(self.token_file, "w") as f:
            f.write("s3cret\n")

    def seen(self):
        context = ssl.create_default_context(cafile=self.server_ca[0])
        context.load_cert_chain(*self.client)
        req = urllib.request.Request(f"https://127.0.0.1:{self.port}/proxy/requests",
                                     headers={"Authorization": "Bearer s3cret", "X-Scope-OrgID": "tenant-1"})
        with urllib.request.urlopen(req, context=context, timeout=5) as r:
            return json.loads(r.read())

    def served(self):
        status, body = self.stack.https_get(f"{CUSTOM}/namespaces/inference/pods/triton-b/gpu_utilization")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["items"][0]["value"], "60")

    def test_ca_client_certificate_token_header_and_post(self):
        self.stack.start_adapter([f"--prometheus-url=https://127.0.0.1:{self.port}/",
                                  f"--prometheus-ca-file={self.server_ca[0]}",
                                  f"--prometheus-client-tls-cert-file={self.client[0]}",
                                  f"--prometheus-client-tls-key-file={self.client[1]}",
                                  f"--prometheus-token-file={self.token_file}",
                                  "--prometheus-header=X-Scope-OrgID=tenant-1", "--prometheus-verb=POST"])
        self.served()
        seen = [r for r in self.seen() if r["path"].startswith("/api/v1/")]
        self.assertTrue(seen)
        for r in seen:
            self.assertEqual((r["client"], r["authorization"], r["tenant"]),
                             ("gpu-metrics-adapter", "Bearer s3cret", "tenant-1"))
        self.assertIn(("POST", "/api/v1/query"), {(r["method"], r["path"]) for r in seen})

    def test_auth_config_kubeconfig(self):
        def b64(path):
            with open(path, "rb") as f:
                return base64.b64encode(f.read()).decode()
        kubeconfig = os.path.join(self.stack.dir, "prometheus.kubeconfig")
        with open(kubeconfig, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: p, cluster: {{server: "https://ignored.example", certificate-authority-data: {b64(self.server_ca[0])}}}}}]
users: [{{name: p, user: {{token: s3cret, client-certificate-data: {b64(self.client[0])}, client-key-data: {b64(self.client[1])}}}}}]
contexts: [{{name: p, context: {{cluster: p, user: p}}}}]
current-context: p
""")
        self.stack.start_adapter([f"--prometheus-url=https://127.0.0.1:{self.port}",
                                  f"--prometheus-auth-config={kubeconfig}",
                                  "--prometheus-header=X-Scope-OrgID=tenant-1"])
        self.served()
        self.assertTrue(all(r["client"] == "gpu-metrics-adapter" for r in self.seen()))

    def test_wrong_token_is_refused_by_the_gateway(self):
        with open(self.token_file, "w") as f:
            f.write("wrong\n")
        self.stack.start_adapter([f"--prometheus-url=https://127.0.0.1:{self.port}",
                                  f"--prometheus-ca-file={self.server_ca[0]}",
                                  f"--prometheus-client-tls-cert-file={self.client[0]}",
                                  f"--prometheus-client-tls-key-file={self.client[1]}",
                                  f"--prometheus-token-file={self.token_file}",
                                  "--prometheus-header=X-Scope-OrgID=tenant-1"], wait_ready=False)
        status, body = self.stack.https_get(f"{CUSTOM}/namespaces/inference/pods/triton-b/gpu_utilization")
        self.assertIn(status, (500, 503), body)
        wait_until("the gateway's refusal in the log", lambda: "unauthorized" in self.stack.log("adapter"),
                   timeout=10)


def socket_open(port):
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class BadConfigAtStart(unittest.TestCase):
    def test_refused_with_file_line_and_reason(self):
        stack = Stack(os.path.abspath(BINARY))
        self.addCleanup(stack.close)
        path = os.path.join(stack.dir, "bad.yaml")
        with open(path, "w") as f:
            f.write("rules:\n- seriesQuery: x\n  resources: {template: '<<.Resource>>'}\n"
                    "  seriesFilters: [{is: '(x'}]\n  metricsQuery: q\n")
        p = subprocess.run([os.path.abspath(BINARY), "--insecure-skip-auth", "--secure-port=1",
                            f"--cert-dir={stack.dir}", f"--config={path}"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertIn(f"{path}:4: seriesFilters.is is not a valid regular expression", p.stderr)


if __name__ == "__main__":
    unittest.main()
