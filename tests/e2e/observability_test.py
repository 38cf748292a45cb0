"""End to end: the Grafana dashboard and the alert rules of manifests/observability.

- The PrometheusRule's groups pass `promtool check rules`, and its alerts pass the unit tests of
  observability_alerts_test.yaml (`promtool test rules`: each fires on trouble after its `for:`,
  with its annotations, and stays silent on the look-alikes).
- Every PromQL expression of the dashboard (its template variables set as Grafana would, for one
  HPA and for all) and of the rules runs without error on the real Prometheus of the test stack.
  That Prometheus scrapes two synthetic dcgm-exporters (both label forms), a static
  kube-state-metrics page with HPAs and the adapter's Deployment, and the adapter's own /metrics
  as job gpu-metrics-adapter, as the ServiceMonitor of manifests/components/servicemonitor does;
  it loads the rules too. So the adapter-health panels show the adapter's numbers, the HPA and
  per-pod GPU panels show exactly the scenario's values, and only the alert the scenario calls
  for is active.
- The dashboard's shape: variables, data sources, ids, layout; the alerts' annotations, and a
  runbook in README.md for each.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from stack import Stack, free_port, http_get, wait_until  # noqa: E402
from e2e_test import StackTest, gpu  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
OBSERVABILITY = os.path.join(ROOT, "manifests", "observability")
DASHBOARD = os.path.join(OBSERVABILITY, "gpu-metrics-adapter-dashboard.json")
ALERTS = os.path.join(OBSERVABILITY, "alerts.yaml")
ALERT_TESTS = os.path.join(HERE, "observability_alerts_test.yaml")
README = os.path.join(ROOT, "README.md")
BUILTIN_RULES = os.path.join(ROOT, "manifests", "base", "gpu-rules.yaml")
RUNBOOKS = "https://github.com/gpu-metrics-adapter/gpu-metrics-adapter#"
JOB = "gpu-metrics-adapter"  # the job the ServiceMonitor's Service name gives the adapter's scrape
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
MIB = 1048576

# honorLabels: true. HPA inference/triton scales Deployment triton (pod x2kqp: two GPUs);
# triton-large's pod must not count as triton's, whose name it starts with.
HONORED = {"gpus": [
    gpu(0, 80, "inference", "triton-5d8f7c9b6-x2kqp", fb_used=1000, fb_free=3000),
    gpu(1, 90, "inference", "triton-5d8f7c9b6-x2kqp", fb_used=3000, fb_free=1000),
    gpu(2, 10, "inference", "triton-large-6b7c8d9f5-abcde", fb_used=500, fb_free=3500),
    gpu(3, 50, "llm", "vllm-7c9d8f6b5-4k2mn", fb_used=2000, fb_free=2000),
    gpu(4, 0),
]}
# honorLabels: false: triton's second pod (7hbzt) appears as exported_namespace/exported_pod.
RENAMED = {"hostname": "gpu-node-2", "gpus": [
    gpu(0, 60, "inference", "triton-5d8f7c9b6-7hbzt", fb_used=1024, fb_free=3072),
    gpu(1, 0),
]}
PODS = [{"namespace": ns, "name": name, "labels": {"app": name.rsplit("-", 2)[0]}}
        for ns, name in (("inference", "triton-5d8f7c9b6-x2kqp"), ("inference", "triton-5d8f7c9b6-7hbzt"),
                         ("inference", "triton-large-6b7c8d9f5-abcde"), ("llm", "vllm-7c9d8f6b5-4k2mn"))]


def hpa_series(namespace, name, target, replicas, metrics, scaling_active=True):
    """kube-state-metrics' series of one HPA (v2 names and labels): metrics are
    [(metric_name, metric_target_type, target, current)]; replicas (min, max, current, desired)."""
    key = f'namespace="{namespace}",horizontalpodautoscaler="{name}"'
    lines = [f'kube_horizontalpodautoscaler_info{{{key},scaletargetref_api_version="apps/v1",'
             f'scaletargetref_kind="Deployment",scaletargetref_name="{target}"}} 1']
    for field, value in zip(("spec_min", "spec_max", "status_current", "status_desired"), replicas):
        lines.append(f"kube_horizontalpodautoscaler_{field}_replicas{{{key}}} {value}")
    for metric, kind, spec, status in metrics:
        labels = f'{key},metric_name="{metric}",metric_target_type="{kind}"'
        lines.append(f"kube_horizontalpodautoscaler_spec_target_metric{{{labels}}} {spec}")
        if status is not None:
            lines.append(f"kube_horizontalpodautoscaler_status_target_metric{{{labels}}} {status}")
    conditions = {"AbleToScale": True, "ScalingActive": scaling_active, "ScalingLimited": False}
    for condition, state in conditions.items():
        for status in ("true", "false", "unknown"):
            value = 1 if status == str(state).lower() else 0
            lines.append(f'kube_horizontalpodautoscaler_status_condition{{{key},condition="{condition}",'
                         f'status="{status}"}} {value}')
    return lines


# What kube-state-metrics (and, for aggregator_unavailable_apiservice, kube-apiserver) would
# serve. inference/broken cannot read its metric (no status value, ScalingActive False);
# inference/idle was scaled to zero by hand (ScalingActive False too, which is not a failure).
CLUSTER_STATE = "\n".join([
    *hpa_series("inference", "triton", "triton", (1, 8, 2, 3), [("gpu_utilization", "average", 70, 77.5)]),
    *hpa_series("inference", "triton-large", "triton-large", (1, 4, 1, 1), [("gpu_utilization", "average", 80, 10)]),
    *hpa_series("inference", "broken", "broken", (1, 4, 2, 2), [("gpu_power_watts", "average", 200, None)],
                scaling_active=False),
    *hpa_series("inference", "idle", "idle", (1, 4, 0, 0), [("gpu_utilization", "average", 80, None)],
                scaling_active=False),
    *hpa_series("llm", "vllm", "vllm", (1, 4, 1, 2), [("vllm_num_requests_waiting", "average", 5, 10),
                                                      ("vllm_kv_cache_usage", "average", 0.8, 0.4)]),
    'kube_deployment_status_replicas_available{namespace="gpu-metrics",deployment="gpu-metrics-adapter"} 2',
    'kube_deployment_spec_replicas{namespace="gpu-metrics",deployment="gpu-metrics-adapter"} 2',
    'aggregator_unavailable_apiservice{name="v1beta1.custom.metrics.k8s.io"} 0',
    'aggregator_unavailable_apiservice{name="v1beta2.custom.metrics.k8s.io"} 0',
    'aggregator_unavailable_apiservice{name="v1beta1.external.metrics.k8s.io"} 0',
    'aggregator_unavailable_apiservice{name="v1beta1.metrics.k8s.io"} 1',  # not ours
]) + "\n"


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def load_rules():
    with open(ALERTS) as f:
        rule = yaml.safe_load(f)
    return rule, [r for g in rule["spec"]["groups"] for r in g["rules"]]


def panels(dashboard):
    """Every panel, those inside collapsed rows included."""
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])


def targets(dashboard):
    return [(p, t) for p in panels(dashboard) for t in p.get("targets", [])]


def variables(dashboard):
    return {v["name"]: v for v in dashboard["templating"]["list"]}


VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


def substitute(expr, values):
    """`expr` with Grafana's $name and ${name} replaced by `values`; label_replace's $1 stays."""
    def replace(m):
        name = m.group(1) or m.group(2)
        if name.isdigit():
            return m.group(0)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]
    return VARIABLE.sub(replace, expr)


def label_values_query(definition):
    """Grafana's label_values(selector, label) as the PromQL that lists the same values."""
    m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", definition.strip(), re.S)
    if not m:
        raise ValueError(f"not a label_values() query: {definition}")
    return f"group by ({m.group(2)}) ({m.group(1)})", m.group(2)


def github_anchors(markdown):
    """The anchors GitHub gives the headings of a Markdown file (code blocks left out)."""
    anchors, seen, fenced = set(), {}, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not m:
            continue
        anchor = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


class RulesWithPromtool(unittest.TestCase):
    """The PrometheusRule's groups, as the plain rules file promtool (and Prometheus) reads."""

    def setUp(self):
        if not shutil.which("promtool"):
            self.fail("promtool is not installed (Debian's prometheus package ships it)")
        self.dir = tempfile.mkdtemp(prefix="gma-rules-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.rule, self.rules = load_rules()
        self.rules_file = os.path.join(self.dir, "alerts.rules.yaml")
        with open(self.rules_file, "w") as f:
            yaml.safe_dump(self.rule["spec"], f)

    def test_promtool_check_rules(self):
        p = subprocess.run(["promtool", "check", "rules", self.rules_file], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(f"SUCCESS: {len(self.rules)} rules found", p.stdout)

    def test_alert_unit_tests(self):
        with open(ALERT_TESTS) as f:
            tests = yaml.safe_load(f)
        tests["rule_files"] = [self.rules_file]
        path = os.path.join(self.dir, "alerts_test.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(tests, f)
        p = subprocess.run(["promtool", "test", "rules", path], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # Every alert is tested firing at least once.
        firing = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"] if t["exp_alerts"]}
        self.assertEqual(firing, {r["alert"] for r in self.rules})


class Shape(unittest.TestCase):
    """What Grafana, Alertmanager and a reader of the README need, without a Prometheus."""

    @classmethod
    def setUpClass(cls):
        cls.dashboard = load_dashboard()
        cls.rule, cls.rules = load_rules()

    def test_dashboard_identity(self):
        d = self.dashboard
        self.assertEqual(d["uid"], "gpu-metrics-adapter")
        self.assertEqual(d["title"], "gpu-metrics-adapter")
        self.assertGreaterEqual(d["schemaVersion"], 39)
        self.assertNotIn("id", d)  # a provisioned dashboard gets its id from Grafana
        self.assertNotIn("__inputs", d)  # no import-time data source: the variable picks it

    def test_template_variables(self):
        v = variables(self.dashboard)
        self.assertEqual(v["datasource"]["type"], "datasource")
        self.assertEqual(v["datasource"]["query"], "prometheus")
        for name in ("job", "namespace", "hpa", "target"):
            self.assertEqual(v[name]["type"], "query", name)
            self.assertEqual(v[name]["datasource"], DATASOURCE, name)
            self.assertEqual(v[name]["definition"], v[name]["query"]["query"], name)
            label_values_query(v[name]["definition"])
        self.assertIn('namespace="$namespace"', v["hpa"]["definition"])
        self.assertTrue(v["hpa"]["multi"] and v["hpa"]["includeAll"])
        self.assertIn('horizontalpodautoscaler=~"$hpa"', v["target"]["definition"])
        self.assertEqual(v["target"]["hide"], 2)  # derived from $hpa, not a choice of its own

    def test_every_panel_queries_through_the_datasource_variable(self):
        queries = [p for p in panels(self.dashboard) if p["type"] != "row"]
        self.assertGreaterEqual(len(queries), 20)
        for p in queries:
            self.assertIn(p["type"], ("timeseries", "stat"), p["title"])
            self.assertEqual(p["datasource"], DATASOURCE, p["title"])
            self.assertTrue(p["targets"], p["title"])
            self.assertTrue(p.get("description"), p["title"])
            refs = [t["refId"] for t in p["targets"]]
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"], DATASOURCE, p["title"])
                self.assertTrue(t["expr"].strip(), p["title"])

    def test_ids_unique_and_layout_without_overlap(self):
        all_panels = list(panels(self.dashboard))
        ids = [p["id"] for p in all_panels]
        self.assertEqual(len(ids), len(set(ids)))
        cells = {}
        for p in all_panels:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, f"{p['title']} overlaps {cells.get((x, y))}")
                    cells[(x, y)] = p["title"]

    def test_two_parts_templated_as_promised(self):
        rows = [p for p in self.dashboard["panels"] if p["type"] == "row"]
        self.assertEqual([r["title"] for r in rows], ["Adapter health", "GPU autoscaling"])
        gpu_row_y = rows[1]["gridPos"]["y"]
        for p, t in targets(self.dashboard):
            if p["gridPos"]["y"] > gpu_row_y:  # GPU autoscaling: per namespace and HPA
                self.assertIn('namespace="$namespace"', t["expr"], p["title"])
                self.assertTrue('horizontalpodautoscaler=~"$hpa"' in t["expr"] or "$target" in t["expr"], p["title"])
            else:  # adapter health: the adapter's job
                self.assertIn('job=~"$job"', t["expr"], p["title"])
        exprs = "\n".join(t["expr"] for _, t in targets(self.dashboard))
        for series in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "exported_pod",
                       "kube_horizontalpodautoscaler_status_current_replicas",
                       "kube_horizontalpodautoscaler_status_desired_replicas",
                       "kube_horizontalpodautoscaler_spec_target_metric",
                       "kube_horizontalpodautoscaler_status_target_metric",
                       "gma_config_reload_failures_total", "gma_config_last_reload_success_timestamp_seconds",
                       "gma_http_request_duration_seconds_bucket", "gma_metric_cache_requests_total",
                       "gma_pod_cache_pods", "gma_discovery_runs_total", "gma_discovered_metrics"):
            self.assertIn(series, exprs)

    def test_fits_kubectl_apply(self):
        # Client-side apply keeps the whole ConfigMap in an annotation, limited to 256 KiB.
        self.assertLess(os.path.getsize(DASHBOARD), 200 * 1024)

    def test_every_alert_has_for_severity_and_annotations(self):
        names = [r["alert"] for r in self.rules]
        self.assertEqual(len(names), len(set(names)))
        self.assertEqual(set(names), {
            "GmaAdapterDown", "GmaAdapterNoReadyReplica", "GmaAPIServiceUnavailable", "GmaHighServerErrorRate",
            "GmaPrometheusQueryErrors", "GmaServingStaleAnswers", "GmaDiscoveryFailing", "GmaConfigReloadFailing",
            "GmaHPACannotReadMetrics"})
        for r in self.rules:
            self.assertRegex(r.get("for", ""), r"^[1-9][0-9]*[smh]$", r["alert"])
            self.assertIn(r["labels"]["severity"], ("critical", "warning"), r["alert"])
            for key in ("summary", "description", "runbook_url"):
                self.assertTrue(r["annotations"].get(key), f"{r['alert']}: {key}")
            self.assertEqual(r["annotations"]["runbook_url"], RUNBOOKS + "alert-" + r["alert"].lower())

    def test_runbooks_are_in_the_readme(self):
        with open(README) as f:
            anchors = github_anchors(f.read())
        for r in self.rules:
            anchor = r["annotations"]["runbook_url"].rpartition("#")[2]
            self.assertIn(anchor, anchors, f"{r['alert']}: README.md has no heading for #{anchor}")
        for link in self.dashboard["links"]:
            if link["url"].startswith(RUNBOOKS):
                self.assertIn(link["url"].rpartition("#")[2], anchors, link["title"])


class AgainstPrometheus(StackTest):
    """The dashboard's and the rules' queries on the real Prometheus, scraping the adapter."""

    @classmethod
    def start(cls, stack):
        cluster = os.path.join(stack.dir, "cluster-state")
        os.makedirs(cluster)
        with open(os.path.join(cluster, "metrics"), "w") as f:
            f.write(CLUSTER_STATE)
        port = free_port()
        stack.ports["kube-state-metrics"] = port
        stack.start("kube-state-metrics", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                           "--directory", cluster])
        wait_until("static kube-state-metrics", lambda: "kube_horizontalpodautoscaler_info" in
                   http_get(f"http://127.0.0.1:{port}/metrics"), timeout=20)
        rule, _ = load_rules()
        rules_file = os.path.join(stack.dir, "alerts.rules.yaml")
        with open(rules_file, "w") as f:
            yaml.safe_dump(rule["spec"], f)
        stack.start_both_label_forms(HONORED, RENAMED, rule_files=[rules_file], extra_jobs=[
            {"name": "kube-state-metrics", "exporter": "kube-state-metrics", "honor_labels": True}])
        stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 7)
        stack.wait_for_series("kube_horizontalpodautoscaler_info", 5)
        config = os.path.join(stack.dir, "config.yaml")
        shutil.copy(BUILTIN_RULES, config)
        stack.start_adapter([f"--config={config}"], lister_kubeconfig=stack.start_fake_kube(PODS))
        stack.scrape_adapter(JOB)
        # What an HPA and kube-aggregator ask, so that the request panels have something to show:
        # twice, with a scrape in between, since a counter first scraped at its final value has
        # no rate.
        def ask():
            for path in ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/pods/%2A/gpu_utilization"
                         "?labelSelector=app%3Dtriton",
                         "/apis/external.metrics.k8s.io/v1beta1/namespaces/inference/gpu_utilization",
                         "/apis/custom.metrics.k8s.io/v1beta2"):
                status, body = stack.https_get(path)
                if status != 200:
                    raise AssertionError(f"{path}: {status} {body}")
        ask()
        requests = f'gma_http_requests_total{{job="{JOB}",route=~"custom_metric|external_metric|discovery"}}'
        stack.wait_for_series(requests, 3)
        for _ in range(5):
            ask()
        stack.wait_for_series(f"rate({requests}[1m]) > 0", 3)

    def query(self, promql):
        """The instant query's result; fails the test on any error Prometheus reports."""
        url = f"{self.stack.prometheus_url}/api/v1/query?query=" + urllib.parse.quote(promql)
        try:
            answer = json.loads(http_get(url, timeout=10))
        except Exception as e:  # an HTTP 400/422 carries Prometheus' error
            body = e.read().decode() if hasattr(e, "read") else ""
            self.fail(f"{promql}\n=> {e} {body}")
        self.assertEqual(answer["status"], "success", f"{promql}\n=> {answer}")
        self.assertNotIn("warnings", answer, promql)
        return answer["data"]["result"]

    def values_of(self, definition, values):
        promql, label = label_values_query(substitute(definition, values))
        return {r["metric"].get(label) for r in self.query(promql)}

    def settings(self, hpa):
        """The variables as Grafana sets them for namespace inference and `hpa` (one name, or
        All); $target from its own query, as a hidden multi-value variable interpolates."""
        v = variables(load_dashboard())
        values = {"job": JOB, "namespace": "inference", "hpa": hpa, "__rate_interval": "1m"}
        targets_ = sorted(self.values_of(v["target"]["definition"], values))
        self.assertTrue(targets_, f"no scale target for hpa {hpa}")
        values["target"] = targets_[0] if len(targets_) == 1 else "(" + "|".join(targets_) + ")"
        return values

    def panel_results(self, title, values):
        panel = next(p for p in panels(load_dashboard()) if p["title"] == title)
        return {t["refId"]: self.query(substitute(t["expr"], values)) for t in panel["targets"]}

    # -- every query runs ------------------------------------------------------------------
    def test_every_dashboard_query_runs(self):
        dashboard = load_dashboard()
        for hpa in ("triton", ".*"):
            values = self.settings(hpa)
            for p, t in targets(dashboard):
                with self.subTest(panel=p["title"], ref=t["refId"], hpa=hpa):
                    self.query(substitute(t["expr"], values))

    def test_every_rule_query_runs(self):
        _, rules = load_rules()
        for r in rules:
            with self.subTest(alert=r["alert"]):
                self.query(r["expr"])

    def test_template_variables_list_what_exists(self):
        v = variables(load_dashboard())
        values = {"namespace": "inference", "hpa": "triton"}
        self.assertEqual(self.values_of(v["job"]["definition"], values), {JOB})
        self.assertEqual(self.values_of(v["namespace"]["definition"], values), {"inference", "llm"})
        self.assertEqual(self.values_of(v["hpa"]["definition"], values), {"triton", "triton-large", "broken", "idle"})
        self.assertEqual(self.values_of(v["target"]["definition"], values), {"triton"})
        self.assertEqual(self.values_of(v["target"]["definition"], {"namespace": "inference", "hpa": ".*"}),
                         {"triton", "triton-large", "broken", "idle"})

    # -- the adapter's own numbers -----------------------------------------------------------
    def test_adapter_health_panels_show_the_adapter(self):
        dashboard = load_dashboard()
        gpu_row_y = next(p for p in dashboard["panels"] if p["title"] == "GPU autoscaling")["gridPos"]["y"]
        values = self.settings("triton")
        for p, t in targets(dashboard):
            if p["gridPos"]["y"] > gpu_row_y or "request_errors_total" in t["expr"]:
                continue  # (no Prometheus request has failed here)
            with self.subTest(panel=p["title"], ref=t["refId"]):
                self.assertTrue(self.query(substitute(t["expr"], values)), t["expr"])

    def test_adapter_health_values(self):
        values = self.settings("triton")
        number = lambda result: float(result[0]["value"][1])  # noqa: E731
        self.assertEqual(number(self.panel_results("Replicas scraped", values)["A"]), 1)
        self.assertEqual(number(self.panel_results("Prometheus reachable", values)["A"]), 1)
        self.assertEqual(number(self.panel_results("5xx answers", values)["A"]), 0)
        self.assertEqual(number(self.panel_results("Pods in the pod cache", values)["A"]), len(PODS))
        discovered = {r["metric"]["group"]: float(r["value"][1])
                      for r in self.panel_results("Discovered metrics", values)["A"]}
        self.assertEqual(set(discovered), {"custom.metrics.k8s.io", "external.metrics.k8s.io"})
        self.assertTrue(all(n > 0 for n in discovered.values()), discovered)
        routes = {(r["metric"]["route"], r["metric"]["code"])
                  for r in self.panel_results("Requests by route and code", values)["A"]}
        self.assertLessEqual({("custom_metric", "200"), ("external_metric", "200"), ("discovery", "200"),
                              ("metrics", "200")}, routes)
        since_load = number(self.panel_results("Since the last good rules load", values)["A"])
        self.assertTrue(0 <= since_load < 600, since_load)

    def test_every_gma_metric_and_label_exists(self):
        """Each gma_* name the dashboard and rules use is one the adapter exports, and each label
        they match it on is one it has (or one Prometheus adds). A family appears with its first
        sample: an adapter whose Prometheus is a closed port shows the failures' families."""
        failing = Stack(self.stack.binary)
        self.addCleanup(failing.close)
        failing.start_adapter(prometheus_url=f"http://127.0.0.1:{free_port()}", wait_ready=False)
        text = wait_until("an adapter counting Prometheus errors", lambda: (lambda r: r[1] if r[0] == 200 and
                          "gma_prometheus_request_errors_total{" in r[1] else None)(failing.https_get("/metrics")))
        status, own = self.stack.https_get("/metrics")
        self.assertEqual(status, 200)
        text += own
        exported = {}  # family: the labels its samples have (none yet for a family without one)
        for line in text.splitlines():
            m = re.match(r"# TYPE (gma_\w+) ", line)
            if m:
                exported.setdefault(m.group(1), set())
            m = re.match(r"(gma_\w+?)(?:_bucket|_sum|_count)?(?:\{(.*)\})? ", line)
            if m:
                exported.setdefault(m.group(1), set()).update(re.findall(r'(\w+)="', m.group(2) or ""))
        _, rules = load_rules()
        exprs = [t["expr"] for _, t in targets(load_dashboard())] + [r["expr"] for r in rules]
        used = 0
        for expr in exprs:
            for name, matchers in re.findall(r"(gma_\w+?)(?:_bucket|_sum|_count)?\{([^}]*)\}", expr):
                used += 1
                self.assertIn(name, exported, expr)
                if not exported[name]:
                    continue  # no sample yet (gma_prometheus_request_errors_total: nothing failed)
                for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                    self.assertIn(label, exported[name] | {"job", "instance", "le"}, f"{name}: {expr}")
        self.assertGreater(used, 20)

    # -- the HPAs and their pods -------------------------------------------------------------
    def test_metric_against_target(self):
        values = self.settings("triton")
        results = self.panel_results("Current metric and target", values)
        self.assertEqual([(r["metric"], r["value"][1]) for r in results["A"]],
                         [({"horizontalpodautoscaler": "triton", "metric_name": "gpu_utilization",
                            "metric_target_type": "average"}, "77.5")])
        self.assertEqual([r["value"][1] for r in results["B"]], ["70"])
        ratio = self.panel_results("Current / target", values)["A"]
        self.assertEqual([r["value"][1] for r in ratio], [str(77.5 / 70)])
        # All HPAs of llm: one line per metric, the same HPA's two metrics apart.
        llm = dict(values, namespace="llm", hpa=".*")
        current = {r["metric"]["metric_name"]: r["value"][1]
                   for r in self.panel_results("Current metric and target", llm)["A"]}
        self.assertEqual(current, {"vllm_num_requests_waiting": "10", "vllm_kv_cache_usage": "0.4"})

    def test_replicas(self):
        results = self.panel_results("Replicas: current and desired", self.settings("triton"))
        self.assertEqual({ref: [r["value"][1] for r in rs] for ref, rs in results.items()},
                         {"A": ["2"], "B": ["3"], "C": ["1"], "D": ["8"]})

    def test_conditions(self):
        results = self.panel_results("HPA conditions", self.settings(".*"))["A"]
        got = {(r["metric"]["horizontalpodautoscaler"], r["metric"]["condition"]): r["value"][1] for r in results}
        self.assertEqual(got[("triton", "ScalingActive")], "1")
        self.assertEqual(got[("broken", "ScalingActive")], "0")
        self.assertEqual(len(got), 4 * 3)

    def by_pod(self, title, hpa):
        results = self.panel_results(title, self.settings(hpa))["A"]
        pods = [r["metric"]["pod"] for r in results]
        self.assertEqual(len(pods), len(set(pods)), results)
        self.assertTrue(all(r["metric"]["namespace"] == "inference" for r in results), results)
        return {r["metric"]["pod"]: float(r["value"][1]) for r in results}

    def test_gpu_per_pod_in_both_label_forms(self):
        # x2kqp's series carry namespace/pod, 7hbzt's exported_namespace/exported_pod.
        self.assertEqual(self.by_pod("GPU utilization per pod", "triton"),
                         {"triton-5d8f7c9b6-x2kqp": 85, "triton-5d8f7c9b6-7hbzt": 60})
        self.assertEqual(self.by_pod("GPU memory used per pod", "triton"),
                         {"triton-5d8f7c9b6-x2kqp": 4000 * MIB, "triton-5d8f7c9b6-7hbzt": 1024 * MIB})
        self.assertEqual(self.by_pod("GPU memory used % per pod", "triton"),
                         {"triton-5d8f7c9b6-x2kqp": 50, "triton-5d8f7c9b6-7hbzt": 25})

    def test_gpu_per_pod_of_every_hpa(self):
        # All HPAs of the namespace: triton-large's pod too; still not the idle GPUs.
        self.assertEqual(self.by_pod("GPU utilization per pod", ".*"),
                         {"triton-5d8f7c9b6-x2kqp": 85, "triton-5d8f7c9b6-7hbzt": 60,
                          "triton-large-6b7c8d9f5-abcde": 10})

    # -- the rules, evaluated by Prometheus ----------------------------------------------------
    def test_rules_evaluate_and_only_the_broken_hpa_alerts(self):
        def api(path):
            return json.loads(http_get(self.stack.prometheus_url + path))["data"]

        _, rules = load_rules()
        loaded = wait_until("every rule evaluated", lambda: (lambda rs: rs if len(rs) == len(rules) and all(
            r["lastEvaluation"] > "2000" for r in rs) else None)(
            [r for g in api("/api/v1/rules")["groups"] for r in g["rules"]]), timeout=30)
        for r in loaded:
            self.assertEqual((r["name"], r["health"], r.get("lastError", "")), (r["name"], "ok", ""))

        def active():
            return sorted((a["labels"]["alertname"], a["labels"].get("namespace"),
                           a["labels"].get("horizontalpodautoscaler")) for a in api("/api/v1/alerts")["alerts"])
        expected = [("GmaHPACannotReadMetrics", "inference", "broken")]
        wait_until(f"only {expected} active", lambda: active() == expected, timeout=30)


if __name__ == "__main__":
    unittest.main()
