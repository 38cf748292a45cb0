"""End to end, a new user's first hour: the mistakes and migrations a user makes before an HPA
scales, each with the answer the user must see. The real binary, the real Prometheus, the fake
Kubernetes API, kubectl.

- prometheus-adapter's Helm chart arguments, which start with "/adapter";
- a wrong --prometheus-url and an unreachable Kubernetes API, named with the transport's reason
  at the shipped log level, once per discovery run;
- `check --explain` running each query against Prometheus;
- kubeconfigs whose user is an exec plugin or an auth-provider, and a missing kubeconfig;
- empty answers, explained at --v=1;
- -h, --version, "did you mean", the process metrics.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from stack import Stack, free_port, wait_until  # noqa: E402
from e2e_test import BINARY, CUSTOM, EXTERNAL, PODS, StackTest, start_one_exporter_prometheus  # noqa: E402


def closed_port():
    """A loopback port nothing listens on."""
    return free_port()


def read(path):
    with open(path) as f:
        return f.read()


def run_binary(*args, timeout=60):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
    return subprocess.run([os.path.abspath(BINARY), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


class CommandLine(unittest.TestCase):
    def test_short_help_and_version(self):
        p = run_binary("-h")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("--prometheus-url", p.stdout)
        p = run_binary("--version")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"^gpu-metrics-adapter v\d+\.\d+\.\d+\n$")

    def test_unknown_flag_gets_did_you_mean(self):
        p = run_binary("--promethues-url=http://p:9090")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr, "Error: unknown flag: --promethues-url "
                                   "(did you mean --prometheus-url?)\n")

    def test_explain_without_prometheus_fails_before_ok(self):
        p = run_binary("check", "--config", os.path.join(os.path.dirname(__file__), "..", "..",
                                                         "manifests", "base", "gpu-rules.yaml"),
                       "--explain", "namespaces/a/gpu_utilization")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stdout, "")  # no "OK" that reads as a pass
        self.assertIn("--explain needs --prometheus-url", p.stderr)

    def write(self, directory, name, text):
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_exec_and_auth_provider_kubeconfigs_are_refused(self):
        with tempfile.TemporaryDirectory() as d:
            cases = {
                "exec": ("    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
                         "      command: aws\n      args: [eks, get-token, --cluster-name, prod]\n",
                         "authenticates with an exec plugin (aws)"),
                "auth-provider": ("    auth-provider:\n      name: azure\n",
                                  "authenticates with an auth-provider (azure)"),
            }
            for name, (user, expected) in cases.items():
                with self.subTest(user=name):
                    path = self.write(d, name + ".kubeconfig", (
                        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                        "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                        "clusters:\n- name: k\n  cluster: {server: 'https://eks.example:443'}\n"
                        "users:\n- name: u\n  user:\n" + user))
                    p = run_binary("--insecure-skip-auth", f"--cert-dir={d}/certs",
                                   f"--secure-port={free_port()}", f"--lister-kubeconfig={path}")
                    self.assertEqual(p.returncode, 1, p.stderr)
                    self.assertIn(f"kubeconfig {path}: the user \"u\" {expected}", p.stderr)
                    self.assertIn("kubectl create token", p.stderr)

    def test_an_unreachable_authentication_cluster_is_named_with_the_reason(self):
        """Delegated auth whose cluster does not answer: the ConfigMap read names the URL and
        the transport's reason at the default level, not another part."""
        port = closed_port()
        with tempfile.TemporaryDirectory() as d:
            path = self.write(d, "auth.kubeconfig", (
                "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                f"clusters:\n- name: k\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\n"
                "users:\n- name: u\n  user: {token: t}\n"))
            env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
            with open(os.path.join(d, "log"), "wb") as log:
                p = subprocess.Popen([os.path.abspath(BINARY), f"--cert-dir={d}/certs", "--bind-address=127.0.0.1",
                                      f"--secure-port={free_port()}", f"--authentication-kubeconfig={path}",
                                      f"--authorization-kubeconfig={path}", "--prometheus-url=http://127.0.0.1:1"],
                                     stdout=log, stderr=subprocess.STDOUT, env=env)
                try:
                    expected = (f"GET http://127.0.0.1:{port}/api/v1/namespaces/kube-system/configmaps/"
                                f"extension-apiserver-authentication failed: cannot connect to 127.0.0.1:{port}: "
                                "Connection refused")
                    wait_until("the ConfigMap read's failure", lambda: expected in read(log.name), timeout=20)
                    text = read(log.name)
                    self.assertIn("from the Kubernetes API at http://127.0.0.1:", text)
                    self.assertNotIn("Prometheus unavailable", text)
                finally:
                    p.kill()
                    p.wait()

    def test_missing_kubeconfig_is_no_such_file(self):
        with tempfile.TemporaryDirectory() as d:
            p = run_binary("--insecure-skip-auth", f"--cert-dir={d}/certs", f"--secure-port={free_port()}",
                           f"--lister-kubeconfig={d}/nope.kubeconfig")
            self.assertEqual(p.returncode, 1)
            self.assertIn(f"kubeconfig {d}/nope.kubeconfig: no such file", p.stderr)


class HelmChartArguments(StackTest):
    """prometheus-adapter's chart renders `args: [/adapter, --secure-port=6443, --cert-dir=...,
    --prometheus-url=..., --metrics-relist-interval=1m, --v=4, --config=...]`: replacing only
    the image must start, with one warning."""

    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        rules = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "manifests",
                             "base", "gpu-rules.yaml")
        port = free_port()
        stack.ports["adapter"] = port
        cert_dir = os.path.join(stack.dir, "cert")
        stack.start("adapter", [stack.binary, "/adapter", f"--secure-port={port}", f"--cert-dir={cert_dir}",
                                f"--prometheus-url={stack.prometheus_url}/", "--metrics-relist-interval=1m",
                                "--v=4", f"--config={rules}",
                                # Not in the chart: this test has no cluster to delegate to.
                                "--bind-address=127.0.0.1", "--insecure-skip-auth"])
        stack.serving_ca = os.path.join(cert_dir, "apiserver.crt")
        wait_until("the adapter's discovery", lambda: "gpu_utilization" in stack.https_get(
            CUSTOM + "/v1beta2")[1], timeout=60)

    def test_it_serves_and_warns_once(self):
        status, body = self.stack.https_get(CUSTOM + "/v1beta2/namespaces/inference/pods/%2A/gpu_utilization")
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["items"])
        log = self.stack.log("adapter")
        self.assertEqual(log.count('ignoring the argument "/adapter"'), 1, log)


class WrongPrometheusUrl(StackTest):
    """A --prometheus-url where nothing listens, and a Kubernetes API that cannot be reached:
    the shipped log level (--v=0) names each component, its URL and the transport's reason."""

    @classmethod
    def start(cls, stack):
        cls.prometheus_port = closed_port()
        cls.kube_port = closed_port()
        kubeconfig = os.path.join(stack.dir, "unreachable.kubeconfig")
        with open(kubeconfig, "w") as f:
            f.write("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                    "contexts:\n- name: c\n  context: {cluster: k, user: u}\n"
                    f"clusters:\n- name: k\n  cluster: {{server: 'http://127.0.0.1:{cls.kube_port}'}}\n"
                    "users:\n- name: u\n  user: {token: t}\n")
        stack.start_adapter(["--v=0", "--metrics-relist-interval=1s"],
                            prometheus_url=f"http://127.0.0.1:{cls.prometheus_port}",
                            lister_kubeconfig=kubeconfig, wait_ready=False)
        wait_until("three discovery runs", lambda: stack.log("adapter").count(
            "discovery from Prometheus") >= 3, timeout=30)

    def test_discovery_logs_one_line_per_run_with_the_reason(self):
        log = self.stack.log("adapter")
        lines = [l for l in log.splitlines() if "series quer" in l]
        runs = [l for l in lines if "discovery from Prometheus" in l]
        self.assertEqual(lines, runs, "a series query failure logged outside the run's line")
        port = self.prometheus_port
        self.assertRegex(runs[0], rf"discovery from Prometheus at http://127.0.0.1:{port}: (\d+) of \1 "
                                  rf"series queries failed \(cannot connect to "
                                  rf"127.0.0.1:{port}: Connection refused\) for the rules at "
                                  r"built-in gpu-rules.yaml:\d+(, built-in gpu-rules.yaml:\d+)*; "
                                  r"no metrics from them yet$")
        self.assertNotIn("keeping", runs[0])  # there is nothing to keep
        self.assertNotIn("metrics backend unavailable", log)

    def test_the_kubernetes_api_is_named_with_the_reason(self):
        wait_until("the pod list failure", lambda: "listing pods failed" in self.stack.log("adapter"),
                   timeout=30)
        self.assertIn(f"Kubernetes API at http://127.0.0.1:{self.kube_port}: listing pods failed: "
                      f"cannot connect to 127.0.0.1:{self.kube_port}: Connection refused",
                      self.stack.log("adapter"))

    def test_readiness_does_not_say_discovery_is_ok(self):
        status, body = self.stack.https_get("/readyz?verbose")
        self.assertIn("[-]metric-discovery failed", body)
        self.assertNotIn("[+]metric-discovery ok", body)


class EmptyAnswersAndProcessMetrics(StackTest):
    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        lister = stack.start_fake_kube(PODS)
        stack.start_adapter(lister_kubeconfig=lister)  # --v=1

    def test_no_pod_matches_the_selector(self):
        path = CUSTOM + "/v1beta2/namespaces/inference/pods/%2A/gpu_utilization?labelSelector=app%3Dtritn"
        status, body = self.stack.https_get(path)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["items"], [])
        wait_until("the empty answer's reason", lambda: "no pods in namespace inference match "
                   "labelSelector app=tritn" in self.stack.log("adapter"), timeout=10)

    def test_pods_match_but_have_no_series(self):
        path = CUSTOM + "/v1beta2/namespaces/batch/pods/%2A/gpu_utilization?labelSelector=app%3Dtrainer"
        status, body = self.stack.https_get(path)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["items"], [])
        wait_until("the empty answer's reason", lambda: "1 pod in namespace batch matches labelSelector "
                   "app=trainer, but Prometheus has no series of gpu_utilization for it (trainer-0)"
                   in self.stack.log("adapter"), timeout=10)

    def test_external_metric_in_a_mistyped_namespace(self):
        status, body = self.stack.https_get(EXTERNAL + "/namespaces/infrence/gpu_utilization")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["items"], [])
        wait_until("the empty answer's reason", lambda: "empty answer: Prometheus has no series of "
                   "gpu_utilization in namespace infrence" in self.stack.log("adapter"), timeout=10)

    def test_process_metrics_are_exported(self):
        status, body = self.stack.https_get("/metrics")
        self.assertEqual(status, 200)
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                     "process_max_fds", "process_start_time_seconds", "process_virtual_memory_bytes"):
            self.assertRegex(body, rf"(?m)^{name} \d", name)
        rss = float(re.search(r"(?m)^process_resident_memory_bytes (\S+)", body).group(1))
        with open(f"/proc/{self.stack.adapter_pid()}/status") as f:
            vmrss = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024
        self.assertLess(abs(rss - vmrss), 16 * 1024 * 1024)  # the same process, moments apart
        # Every self-metric of ours carries the prefix.
        names = {l.split("{")[0].split(" ")[0] for l in body.splitlines() if l and not l.startswith("#")}
        ours = {n for n in names if not n.startswith(("process_", "gma_"))}
        self.assertEqual(ours, set())


class CheckRunsTheQueries(StackTest):
    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)

    def write_rules(self, text):
        path = os.path.join(self.stack.dir, "rules.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_accepted_queries_print_their_series_count(self):
        rules = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "manifests",
                             "base", "gpu-rules.yaml")
        p = run_binary("check", "--config", rules, "--prometheus-url", self.stack.prometheus_url,
                       "--explain", "namespaces/inference/pods/*/gpu_utilization")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        counts = re.findall(r"=> Prometheus: (\d+) series", p.stdout)
        self.assertTrue(counts, p.stdout)
        # The two label forms' rules: the honorLabels: true one finds the scenario's pods.
        self.assertGreater(max(int(c) for c in counts), 0, p.stdout)

    def test_a_query_prometheus_rejects_fails_the_check(self):
        rules = self.write_rules(
            "rules:\n"
            "- seriesQuery: 'DCGM_FI_DEV_GPU_UTIL{namespace!=\"\",pod!=\"\"}'\n"
            "  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}\n"
            "  name: {as: broken}\n"
            # A parenthesis short: loads (the adapter does not parse PromQL), Prometheus refuses.
            "  metricsQuery: 'avg by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>}'\n")
        p = run_binary("check", "--config", rules, "--prometheus-url", self.stack.prometheus_url,
                       "--explain", "namespaces/inference/pods/*/broken")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(": OK (1 rules, 0 external rules)", p.stdout)
        self.assertRegex(p.stdout, r"=> Prometheus: error: HTTP 400, errorType bad_data: invalid parameter \"query\": .*parse error: unclosed left parenthesis")


if __name__ == "__main__":
    unittest.main()
