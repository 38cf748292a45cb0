"""End to end: the resource metrics API (metrics.k8s.io/v1beta1, what kubectl top and CPU/memory
HPAs read) served from prometheus-adapter resourceRules, through the path a cluster uses.

The real Prometheus scrapes tests/fakes/resource_exporter.py (cAdvisor, kubelet, node-exporter
and kube-state-metrics series) and evaluates kubernetes-mixin's node_namespace_pod:kube_pod_info:
rule; the adapter runs with kube-prometheus' own rules file (testdata/, verbatim), lists and
watches pods and nodes in the fake Kubernetes API, and is registered there as the APIService
v1beta1.metrics.k8s.io; clients ask the fake API, whose aggregation proxy forwards to the
adapter with the front-proxy certificate and the user's identity, which the adapter authorizes
with SubjectAccessReviews. A second adapter runs prometheus-adapter's deploy/manifests rules.

What is expected comes from shared/reference/resource-metrics.md (the wire contract), not from
the adapter: every value is the answer of the rule's own query, asked of Prometheus here and
formatted by the reference's Quantity rules (section 3); the scenario's rates are exact in
binary, so those answers are also written out below by hand, from the same table.
"""
import datetime
import decimal
import json
import os
import re
import subprocess
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from e2e_test import BINARY, StackTest  # noqa: E402
from stack import wait_until  # noqa: E402

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata")
KUBE_PROMETHEUS_CONFIG = os.path.join(TESTDATA, "kube-prometheus-adapter-config.yaml")
DEPLOY_CONFIG = os.path.join(TESTDATA, "prometheus-adapter-deploy-config.yaml")
NODE_RULES = os.path.join(TESTDATA, "kubernetes-mixin-node-rules.yaml")
METRICS = "/apis/metrics.k8s.io/v1beta1"
GROUP = "metrics.k8s.io"
Ki, Mi, Gi = 1 << 10, 1 << 20, 1 << 30

# -- the cluster ----------------------------------------------------------------------------------
VLLM_A, VLLM_B = "vllm-7d4b9c-abcde", "vllm-7d4b9c-fghij"
EMBEDDER, LOADER, IDLE, EVICTED = "embedder-5f6d8-k2m4n", "loader-84c2d-x8q9z", "idle-6b7c9-p4r5s", "vllm-7d4b9c-zzzzz"
TRITON, LATE, GHOST = "triton-6c8d7-q7w2x", "late-5c4f7-m3n8b", "ghost-7f8d9-d3l3t"
PODS = [
    {"namespace": "ml", "name": VLLM_A, "labels": {"app": "vllm", "pod-template-hash": "7d4b9c"}},
    {"namespace": "ml", "name": VLLM_B, "labels": {"app": "vllm", "pod-template-hash": "7d4b9c"}},
    {"namespace": "ml", "name": EMBEDDER, "labels": {"app": "embedder"}},
    {"namespace": "ml", "name": LOADER, "labels": {"app": "loader"}},   # memory series only
    {"namespace": "ml", "name": IDLE, "labels": {"app": "idle"}},       # no series at all
    # Evicted, with series Prometheus still has: metrics.k8s.io lists Running pods only.
    {"namespace": "ml", "name": EVICTED, "labels": {"app": "vllm"}, "phase": "Failed"},
    {"namespace": "inference", "name": TRITON, "labels": {"app": "triton"}},
]
# LATE has series from the start and is created later; GHOST has series and never a pod.
CONTAINERS = [
    {"namespace": "ml", "pod": VLLM_A, "container": "server", "node": "gpu-node-1", "cpu": 1.5, "memory": 42250240},
    {"namespace": "ml", "pod": VLLM_A, "container": "metrics-proxy", "node": "gpu-node-1", "cpu": 0.0625,
     "memory": 42250241},
    {"namespace": "ml", "pod": VLLM_B, "container": "server", "node": "gpu-node-2", "cpu": 2, "memory": Gi},
    {"namespace": "ml", "pod": EMBEDDER, "container": "server", "node": "gpu-node-2", "cpu": 2 ** -12, "memory": 512},
    {"namespace": "ml", "pod": EMBEDDER, "container": "warmup", "node": "gpu-node-2", "memory": 32 * Mi},
    {"namespace": "ml", "pod": LOADER, "container": "loader", "node": "gpu-node-1", "memory": 64 * Mi},
    {"namespace": "ml", "pod": EVICTED, "container": "server", "node": "gpu-node-1", "cpu": 0.5, "memory": Gi},
    {"namespace": "ml", "pod": GHOST, "container": "server", "node": "gpu-node-1", "cpu": 0.5, "memory": Gi},
    {"namespace": "ml", "pod": LATE, "container": "server", "node": "gpu-node-1", "cpu": 0.75, "memory": 3 * Gi},
    {"namespace": "inference", "pod": TRITON, "container": "server", "node": "gpu-node-1", "cpu": 3.75,
     "memory": 8 * Gi},
]
GPU_LABELS = {"nvidia.com/gpu.present": "true", "node.kubernetes.io/instance-type": "g5.2xlarge"}
NODES = [
    {"name": "gpu-node-1", "labels": GPU_LABELS},
    {"name": "gpu-node-2", "labels": GPU_LABELS, "allocatable": {"cpu": "15890m", "memory": "63221760Ki"}},
    {"name": "cpu-node-1", "labels": {"node.kubernetes.io/instance-type": "m6i.large"}},  # no series
]
# gpu-node-3 has series and joins the cluster during a test.
NODE_SERIES = [
    # node-exporter: busy CPU = sum(1 - idle); memory = MemTotal - MemAvailable. The kubelet's
    # resource endpoint (prometheus-adapter's deploy rules): cpu cores and working_set bytes.
    {"name": "gpu-node-1", "idle": [0.75, 0.75, 0.5, 0.5, 1, 1, 1, 1], "mem_total": 32 * Gi, "mem_available": 20 * Gi,
     "cpu": 1.25, "working_set": 10 * Gi},
    {"name": "gpu-node-2", "idle": [0.875] * 8, "mem_total": 64 * Gi, "mem_available": 64 * Gi - 3263365120,
     "cpu": 0.5, "working_set": 2 * Gi},
    {"name": "gpu-node-3", "idle": [0.5, 0.5], "mem_total": 16 * Gi, "mem_available": 15 * Gi,
     "cpu": 0.25, "working_set": Gi},
]
SCENARIO = {"containers": CONTAINERS, "nodes": NODE_SERIES}

# The answers, by the reference's Quantity table (section 3): CPU NewMilliQuantity(int64(v*1000),
# DecimalSI) -- 1.5 -> 1500m, 0.0625 -> 62m (truncated), 2 -> 2, 2^-12 -> 0 -- and memory
# NewMilliQuantity(int64(v*1000), BinarySI) -- 42250240 -> 41260Ki, 42250241 -> 42250241 (not a
# multiple of 1024), 1073741824 -> 1Gi, 512 -> 512 (below 1024). A container with one resource
# only gets "0" for the other (section 4).
EXPECTED_PODS = {
    ("ml", VLLM_A): {"server": {"cpu": "1500m", "memory": "41260Ki"},
                     "metrics-proxy": {"cpu": "62m", "memory": "42250241"}},
    ("ml", VLLM_B): {"server": {"cpu": "2", "memory": "1Gi"}},
    ("ml", EMBEDDER): {"server": {"cpu": "0", "memory": "512"}, "warmup": {"cpu": "0", "memory": "32Mi"}},
    ("inference", TRITON): {"server": {"cpu": "3750m", "memory": "8Gi"}},
}
LATE_USAGE = {"server": {"cpu": "750m", "memory": "3Gi"}}
EXPECTED_NODES = {  # kube-prometheus rules: node-exporter
    "gpu-node-1": {"cpu": "1500m", "memory": "12Gi"},
    "gpu-node-2": {"cpu": "1", "memory": "3186880Ki"},
}
EXPECTED_NODES_DEPLOY = {  # prometheus-adapter's deploy rules: the kubelet's resource endpoint
    "gpu-node-1": {"cpu": "1250m", "memory": "10Gi"},
    "gpu-node-2": {"cpu": "500m", "memory": "2Gi"},
}

# Users of the fake API (bearer tokens) and what its SubjectAccessReviews allow them.
AUTH = {
    "tokens": {
        "token-viewer": {"username": "viewer", "groups": ["viewers"]},
        "token-ml-reader": {"username": "ml-reader", "groups": ["ml-team"]},
        "token-stranger": {"username": "stranger", "groups": ["guests"]},
    },
    "allow": [
        # system:aggregated-metrics-reader, bound to the viewers.
        *[{"group": "viewers", "apiGroup": GROUP, "resource": r, "verb": v}
          for r in ("pods", "nodes") for v in ("get", "list", "watch")],
        # A Role in namespace ml only.
        *[{"user": "ml-reader", "apiGroup": GROUP, "resource": "pods", "namespace": "ml", "verb": v}
          for v in ("get", "list")],
        # system:discovery.
        {"group": "system:authenticated", "path": "/api*"},
    ],
}
TOKENS = {"viewer": "token-viewer", "ml-reader": "token-ml-reader", "stranger": "token-stranger"}

# Byte for byte (reference section 1).
RESOURCE_LIST = ('{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"metrics.k8s.io/v1beta1",'
                 '"resources":[{"name":"nodes","singularName":"","namespaced":false,"kind":"NodeMetrics",'
                 '"verbs":["get","list"]},{"name":"pods","singularName":"","namespaced":true,"kind":"PodMetrics",'
                 '"verbs":["get","list"]}]}')
API_GROUP = ('{"kind":"APIGroup","apiVersion":"v1","name":"metrics.k8s.io","versions":[{"groupVersion":'
             '"metrics.k8s.io/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":'
             '"metrics.k8s.io/v1beta1","version":"v1beta1"}}')
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def status_json(code, reason, message, details=None):
    """A metav1.Status failure as Go writes it: compact, fields in struct order."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason}
    if details is not None:
        body["details"] = details
    body["code"] = code
    return json.dumps(body, separators=(",", ":"))


# -- the rules files ------------------------------------------------------------------------------
def read_rules_yaml(path):
    """The YAML these rules files are written in (std.manifestYamlDoc's): nested mappings with
    quoted or plain keys, quoted scalars, and `|` block scalars (clip chomping). Python's
    standard library has no YAML reader; this one reads exactly that."""
    lines = open(path).read().split("\n")
    root, i = {}, 0
    stack = [(-1, root)]  # (indent, mapping) of the keys that enclose this line
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        indent = len(line) - len(line.lstrip(" "))
        key, _, rest = line.strip().partition(":")
        key, rest = (json.loads(key) if key.startswith('"') else key), rest.strip()
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        i += 1
        if rest == "|":
            block = []
            while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip(" ")) > indent):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            margin = min(len(b) - len(b.lstrip(" ")) for b in block if b.strip())
            parent[key] = "\n".join(b[margin:] for b in block) + "\n"
        elif rest == "":
            parent[key] = {}
            stack.append((indent, parent[key]))
        else:
            parent[key] = json.loads(rest) if rest.startswith('"') else rest
    return root


def go_duration(seconds):
    """time.Duration.String() of whole seconds: 300 -> "5m0s", 30 -> "30s", 3600 -> "1h0m0s"."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h{m}m{s}s" if h else f"{m}m{s}s" if m else f"{s}s") if seconds else "0s"


class Rules:
    """One resourceRules file: its queries rendered as prometheus-adapter renders them (section 4:
    LabelMatchers and GroupBy from the resources' overrides) and their answers, as the adapter
    must serve them."""

    def __init__(self, path):
        rules = read_rules_yaml(path)["resourceRules"]
        self.cpu, self.memory = rules["cpu"], rules["memory"]
        m = re.fullmatch(r"(\d+)([smh])", rules["window"])
        self.window = go_duration(int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)])

    @staticmethod
    def label(rule, resource):
        return next(label for label, r in rule["resources"]["overrides"].items() if r["resource"] == resource)

    @staticmethod
    def render(template, matchers, group_by):
        text = template.replace("<<.LabelMatchers>>", matchers).replace("<<.GroupBy>>", group_by)
        assert "<<" not in text, f"a template action this test does not render: {text}"
        return text

    @staticmethod
    def matcher(label, values):
        values = sorted(values)
        return f'{label}="{values[0]}"' if len(values) == 1 else f'{label}=~"{"|".join(values)}"'

    def pod_usage(self, stack, namespace, pods):
        """{pod: {container: {"cpu": q, "memory": q}}} for the pods of a namespace, from the
        containerQuery of each resource asked of Prometheus."""
        samples = {}
        for resource, rule in (("cpu", self.cpu), ("memory", self.memory)):
            pod_label = self.label(rule, "pod")
            query = self.render(rule["containerQuery"], f'{self.label(rule, "namespace")}="{namespace}",' +
                                self.matcher(pod_label, pods), f"{pod_label},{rule['containerLabel']}")
            for s in stack.prometheus_query(query):
                pod, container = s["metric"].get(pod_label, ""), s["metric"].get(rule["containerLabel"], "")
                samples.setdefault(pod, {}).setdefault(resource, {})[container] = float(s["value"][1])
        out = {}
        for pod, by_resource in samples.items():
            if set(by_resource) != {"cpu", "memory"}:
                continue  # a pod without both is left out
            containers = set(by_resource["cpu"]) | set(by_resource["memory"])
            out[pod] = {c: {"cpu": cpu_quantity(by_resource["cpu"].get(c, 0)),
                            "memory": memory_quantity(by_resource["memory"].get(c, 0))} for c in containers}
        return out

    def node_usage(self, stack, nodes):
        """{node: {"cpu": q, "memory": q}} from the nodeQuery of each resource."""
        samples = {}
        for resource, rule in (("cpu", self.cpu), ("memory", self.memory)):
            node_label = self.label(rule, "node")
            query = self.render(rule["nodeQuery"], self.matcher(node_label, nodes), node_label)
            for s in stack.prometheus_query(query):
                samples.setdefault(s["metric"].get(node_label, ""), {}).setdefault(resource, float(s["value"][1]))
        return {node: {"cpu": cpu_quantity(v["cpu"]), "memory": memory_quantity(v["memory"])}
                for node, v in samples.items() if set(v) == {"cpu", "memory"}}


# -- Quantity (reference section 3) ---------------------------------------------------------------
def _milli(value):
    """int64(v*1000) of a sample, after NaN and negative values become 0."""
    return 0 if value != value or value < 0 else int(value * 1000)


def cpu_quantity(value):
    """NewMilliQuantity(int64(v*1000), DecimalSI).String()."""
    return _decimal_si(_milli(value))


def _decimal_si(milli):
    """A milli-value as DecimalSI: factors of 10 stripped, the exponent then made a multiple of 3."""
    mantissa, exponent = milli, -3
    if mantissa == 0:
        return "0"
    while mantissa % 10 == 0:
        mantissa, exponent = mantissa // 10, exponent + 1
    while exponent % 3:
        mantissa, exponent = mantissa * 10, exponent - 1
    return f"{mantissa}{ {-9: 'n', -6: 'u', -3: 'm', 0: '', 3: 'k', 6: 'M', 9: 'G', 12: 'T'}[exponent]}"


def memory_quantity(value):
    """NewMilliQuantity(int64(v*1000), BinarySI).String(): DecimalSI below 1024 or when not a
    whole number, else the largest power of 1024 that divides it as Ki, Mi, Gi, ..."""
    milli = _milli(value)
    if milli < 1024 * 1000 or milli % 1000:
        return _decimal_si(milli)
    number, power = milli // 1000, 0
    while number % 1024 == 0:
        number, power = number // 1024, power + 1
    return f"{number}{['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][power]}"


def quantity(text):
    """The exact value of a Quantity string."""
    m = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|[numkMGT]?)", text)
    if not m:
        raise ValueError(f"not a quantity this test reads: {text!r}")
    scale = {"n": decimal.Decimal("1e-9"), "u": decimal.Decimal("1e-6"), "m": decimal.Decimal("1e-3"), "": 1,
             "k": 1000, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "Ki": Ki, "Mi": Mi, "Gi": Gi, "Ti": 1 << 40}
    return decimal.Decimal(m.group(1)) * scale[m.group(2)]


def ceil(d):
    return int(d.to_integral_value(rounding=decimal.ROUND_CEILING))


def top_cpu(total):
    """kubectl top's CPU(cores): Quantity.MilliValue() (rounded up) and "m"."""
    return f"{ceil(total * 1000)}m"


def top_memory(total):
    """kubectl top's MEMORY(bytes): Quantity.Value() (rounded up) / 2^20, integer division, "Mi"."""
    return f"{ceil(total) // Mi}Mi"


def top_percent(usage, available):
    """int64(float64(usage.MilliValue()) / float64(available.MilliValue()) * 100) and "%"."""
    return f"{int(float(ceil(usage * 1000)) / float(ceil(available * 1000)) * 100)}%"


def top_table(out):
    """kubectl top's output as [{column: value}] (tabwriter columns; no value has a space)."""
    lines = [line.split() for line in out.strip().splitlines()]
    return [dict(zip(lines[0], row)) for row in lines[1:]]


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


class ResourceMetrics(StackTest):
    @classmethod
    def start(cls, stack):
        cls.rules = Rules(KUBE_PROMETHEUS_CONFIG)
        cls.deploy_rules = Rules(DEPLOY_CONFIG)
        stack.start_exporter("resource-exporter", SCENARIO, script="resource_exporter.py")
        stack.start_prometheus([{"name": "resource-metrics", "exporter": "resource-exporter", "honor_labels": True}],
                               rule_files=[NODE_RULES])
        lister = stack.start_fake_kube(PODS, auth=AUTH, nodes=NODES, aggregator=True)
        auth = [*stack.front_proxy_args(), f"--authentication-kubeconfig={lister}",
                f"--authorization-kubeconfig={lister}"]
        stack.start_adapter([f"--config={KUBE_PROMETHEUS_CONFIG}", *auth], lister_kubeconfig=lister, insecure=False)
        stack.register_apiservices(groups=[(GROUP, "v1beta1", 100)])
        stack.start_adapter([f"--config={DEPLOY_CONFIG}", *auth], lister_kubeconfig=lister, insecure=False,
                            name="adapter-deploy")
        cls.kubeconfigs = {user: stack.write_aggregator_kubeconfig(user, token=token) for user, token in TOKENS.items()}
        # The data first: Prometheus must answer the rules' own queries with the scenario's values
        # (two samples for irate, and the recording rule). This holds whatever the adapter does.
        try:
            wait_until("Prometheus answering the rules' queries with the scenario's values",
                       lambda: cls.oracle_pods(stack) == EXPECTED_PODS and
                       cls.rules.node_usage(stack, ["gpu-node-1", "gpu-node-2", "cpu-node-1"]) == EXPECTED_NODES and
                       cls.deploy_rules.node_usage(stack, ["gpu-node-1", "gpu-node-2"]) == EXPECTED_NODES_DEPLOY,
                       timeout=30)
        except TimeoutError as e:
            raise AssertionError(f"{e}\npods: {cls.oracle_pods(stack)}\nnodes: "
                                 f"{cls.rules.node_usage(stack, ['gpu-node-1', 'gpu-node-2'])}") from None
        # Then give the adapter a moment to list and watch pods and nodes; a test that finds it
        # still not answering fails on its own (quickly: nothing below waits long).
        try:
            wait_until("the adapter serving node and pod metrics", lambda: all(
                stack.aggregator_get(path, token="token-viewer")[0] == 200
                for path in (f"{METRICS}/nodes", f"{METRICS}/namespaces/ml/pods")), timeout=15)
        except TimeoutError:
            pass

    @classmethod
    def oracle_pods(cls, stack, rules=None):
        """EXPECTED_PODS' shape, from Prometheus: each namespace's Running pods' containerQuery."""
        out = {}
        for ns in sorted({p["namespace"] for p in PODS}):
            running = [p["name"] for p in PODS if p["namespace"] == ns and p.get("phase", "Running") == "Running"]
            for pod, usage in (rules or cls.rules).pod_usage(stack, ns, running).items():
                out[(ns, pod)] = usage
        return out

    # -- helpers ----------------------------------------------------------------------------------
    def api(self, path, user="viewer"):
        """(status, headers, body) of a GET through the fake API's aggregation proxy as `user`."""
        return self.stack.aggregator_get(path, token=TOKENS[user])

    def get_json(self, path, user="viewer"):
        status, headers, body = self.api(path, user)
        self.assertEqual(status, 200, f"GET {path}: {body}")
        self.assertEqual(headers.get("content-type"), "application/json", path)
        return json.loads(body)

    def top(self, *args, user="viewer"):
        code, out, err = self.stack.kubectl("top", *args, kubeconfig=self.kubeconfigs[user])
        self.assertEqual(code, 0, f"kubectl top {' '.join(args)} as {user}: {err}")
        return top_table(out)

    def reviews_of(self, user):
        """The metrics.k8s.io resourceAttributes of every SubjectAccessReview made for `user`."""
        return [{k: r["spec"]["resourceAttributes"].get(k, "") for k in
                 ("verb", "group", "version", "resource", "subresource", "namespace", "name")}
                for r in self.stack.kube_request("GET", "/fake/reviews") if r["kind"] == "SubjectAccessReview"
                and r["spec"].get("user") == user and
                r["spec"].get("resourceAttributes", {}).get("group") == GROUP]

    def assert_review(self, user, verb, resource, namespace="", name=""):
        wanted = {"verb": verb, "group": GROUP, "version": "v1beta1", "resource": resource, "subresource": "",
                  "namespace": namespace, "name": name}
        self.assertIn(wanted, self.reviews_of(user))

    def check_item(self, item, ns, name, labels, before, after, single=False):
        """One PodMetrics or NodeMetrics object as section 2 has it."""
        head = ["kind", "apiVersion"] if single else []
        self.assertEqual(list(item), head + ["metadata", "timestamp", "window", "containers" if ns else "usage"])
        if single:
            self.assertEqual((item["kind"], item["apiVersion"]),
                             ("PodMetrics" if ns else "NodeMetrics", "metrics.k8s.io/v1beta1"))
        meta = item["metadata"]
        self.assertEqual(list(meta), ["name"] + (["namespace"] if ns else []) + ["creationTimestamp", "labels"])
        self.assertEqual((meta["name"], meta.get("namespace"), meta["labels"]), (name, ns, labels))
        # creationTimestamp: the time of the response, whole seconds, UTC.
        self.assertRegex(meta["creationTimestamp"], TIME)
        self.assertTrue(int(before) - 1 <= parse_time(meta["creationTimestamp"]) <= after + 1, meta)
        # timestamp: the samples' time (the query's), recent.
        self.assertRegex(item["timestamp"], TIME)
        self.assertLess(abs(parse_time(item["timestamp"]) - after), 60, item["timestamp"])
        self.assertEqual(item["window"], self.rules.window)
        self.assertEqual(self.rules.window, "5m0s")

    def containers(self, item):
        for c in item["containers"]:
            self.assertEqual(list(c), ["name", "usage"])
            self.assertEqual(list(c["usage"]), ["cpu", "memory"])
        return {c["name"]: c["usage"] for c in item["containers"]}

    def pod_labels(self, ns, name):
        return next(p["labels"] for p in PODS if (p["namespace"], p["name"]) == (ns, name))

    # -- discovery --------------------------------------------------------------------------------
    def test_discovery_is_byte_exact(self):
        status, headers, body = self.api(METRICS)
        self.assertEqual((status, body.rstrip("\n")), (200, RESOURCE_LIST))
        self.assertEqual(headers["content-type"], "application/json")
        # /apis/metrics.k8s.io: the aggregator answers it for registered groups, and so does the
        # extension server itself when asked (here directly, as the proxy would).
        status, body = self.stack.https_get("/apis/metrics.k8s.io", {"X-Remote-User": "viewer",
                                                                     "X-Remote-Group": "viewers"},
                                            client_cert=self.stack.front_proxy)
        self.assertEqual((status, body.rstrip("\n")), (200, API_GROUP))
        self.assertEqual(self.api("/apis/metrics.k8s.io")[2].rstrip("\n"), API_GROUP)
        groups = [g["name"] for g in self.get_json("/apis")["groups"]]
        self.assertIn(GROUP, groups)

    # -- pods -------------------------------------------------------------------------------------
    def test_pod_metrics_list_is_the_rules_answer(self):
        before = time.time()
        body = self.get_json(f"{METRICS}/namespaces/ml/pods")
        after = time.time()
        self.assertEqual(list(body), ["kind", "apiVersion", "metadata", "items"])
        self.assertEqual((body["kind"], body["apiVersion"], body["metadata"]),
                         ("PodMetricsList", "metrics.k8s.io/v1beta1", {}))
        oracle = {pod: usage for (ns, pod), usage in self.oracle_pods(self.stack).items() if ns == "ml"}
        names = [i["metadata"]["name"] for i in body["items"]]
        # Running pods with both resources, in name order: not the loader (no CPU), the idle pod
        # (no series), the evicted pod (Failed) or the ghost (no pod object).
        self.assertEqual(names, sorted(oracle))
        self.assertEqual(names, sorted([VLLM_A, VLLM_B, EMBEDDER]))
        for item in body["items"]:
            name = item["metadata"]["name"]
            with self.subTest(pod=name):
                self.check_item(item, "ml", name, self.pod_labels("ml", name), before, after)
                self.assertEqual(self.containers(item), oracle[name])
                self.assertEqual(self.containers(item), EXPECTED_PODS[("ml", name)])

    def test_pods_of_all_namespaces_are_sorted_by_namespace_then_name(self):
        body = self.get_json(f"{METRICS}/pods")
        self.assertEqual(body["kind"], "PodMetricsList")
        keys = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in body["items"]]
        self.assertEqual(keys, sorted(EXPECTED_PODS))
        self.assertEqual({k: self.containers(i) for k, i in zip(keys, body["items"])}, self.oracle_pods(self.stack))

    def test_label_selectors_choose_the_pods(self):
        cases = {
            f"{METRICS}/namespaces/ml/pods?labelSelector=app%3Dvllm": [VLLM_A, VLLM_B],
            f"{METRICS}/namespaces/ml/pods?labelSelector=app+in+%28embedder%2Ctriton%29": [EMBEDDER],
            f"{METRICS}/namespaces/ml/pods?labelSelector=app%21%3Dvllm": [EMBEDDER],
            f"{METRICS}/namespaces/ml/pods?labelSelector=app%3Dnobody": [],
            f"{METRICS}/pods?labelSelector=app%3Dtriton": [TRITON],
        }
        for path, expected in cases.items():
            with self.subTest(path=path):
                self.assertEqual([i["metadata"]["name"] for i in self.get_json(path)["items"]], expected)

    def test_field_selectors_on_name_and_namespace_only(self):
        body = self.get_json(f"{METRICS}/namespaces/ml/pods?fieldSelector=metadata.name%3D{VLLM_B}")
        self.assertEqual([i["metadata"]["name"] for i in body["items"]], [VLLM_B])
        # Authorized for that name (section 7).
        self.assert_review("viewer", "list", "pods", namespace="ml", name=VLLM_B)
        body = self.get_json(f"{METRICS}/pods?fieldSelector=metadata.namespace%3Dinference")
        self.assertEqual([i["metadata"]["name"] for i in body["items"]], [TRITON])
        status, _, body = self.api(f"{METRICS}/namespaces/ml/pods?fieldSelector=spec.nodeName%3Dgpu-node-1")
        self.assertEqual(status, 400, body)
        self.assertEqual(json.loads(body)["message"],
                         '"spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace"')

    def test_one_pod(self):
        before = time.time()
        item = self.get_json(f"{METRICS}/namespaces/ml/pods/{VLLM_A}")
        after = time.time()
        self.check_item(item, "ml", VLLM_A, self.pod_labels("ml", VLLM_A), before, after, single=True)
        self.assertEqual(self.containers(item), self.oracle_pods(self.stack)[("ml", VLLM_A)])

    def test_unknown_and_unmeasured_pods_are_404(self):
        for name in ("no-such-pod", EVICTED):  # not in the lister: not a Running pod
            status, _, body = self.api(f"{METRICS}/namespaces/ml/pods/{name}")
            self.assertEqual((status, body.rstrip("\n")), (404, status_json(
                404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})))
        for name in (IDLE, LOADER):  # a pod the rules have no answer for (LOADER: memory only)
            status, _, body = self.api(f"{METRICS}/namespaces/ml/pods/{name}")
            self.assertEqual((status, body.rstrip("\n")), (404, status_json(
                404, "NotFound", f'podmetrics.metrics.k8s.io "ml/{name}" not found',
                {"name": f"ml/{name}", "group": GROUP, "kind": "podmetrics"})))

    def test_pods_come_from_the_watch(self):
        path = f"{METRICS}/namespaces/ml/pods"
        names = lambda: [i["metadata"]["name"] for i in self.get_json(path)["items"]]  # noqa: E731
        self.assertNotIn(LATE, names())
        self.stack.kube_request("PUT", f"/fake/pods/ml/{LATE}", {"labels": {"app": "late"}})
        try:
            wait_until("the new pod in the list", lambda: LATE in names(), timeout=15)
            self.assertEqual(self.containers(self.get_json(f"{path}/{LATE}")), LATE_USAGE)
            # A pod that stops running leaves the list (a watch with status.phase=Running sees it
            # deleted), and comes back when it runs again.
            self.stack.kube_request("PUT", f"/fake/pods/ml/{LATE}", {"labels": {"app": "late"}, "phase": "Failed"})
            wait_until("the failed pod out of the list", lambda: LATE not in names(), timeout=15)
            self.stack.kube_request("PUT", f"/fake/pods/ml/{LATE}", {"labels": {"app": "late"}})
            wait_until("the pod back", lambda: LATE in names(), timeout=15)
        finally:
            self.stack.kube_request("DELETE", f"/fake/pods/ml/{LATE}")
        wait_until("the deleted pod out of the list", lambda: LATE not in names(), timeout=15)

    # -- nodes ------------------------------------------------------------------------------------
    def test_node_metrics_list_is_the_rules_answer(self):
        before = time.time()
        body = self.get_json(f"{METRICS}/nodes")
        after = time.time()
        self.assertEqual(list(body), ["kind", "apiVersion", "metadata", "items"])
        self.assertEqual((body["kind"], body["apiVersion"], body["metadata"]),
                         ("NodeMetricsList", "metrics.k8s.io/v1beta1", {}))
        oracle = self.rules.node_usage(self.stack, [n["name"] for n in NODES])
        self.assertEqual(oracle, EXPECTED_NODES)
        # cpu-node-1 has no series: left out.
        self.assertEqual([i["metadata"]["name"] for i in body["items"]], ["gpu-node-1", "gpu-node-2"])
        for item in body["items"]:
            name = item["metadata"]["name"]
            with self.subTest(node=name):
                labels = self.stack.kube_request("GET", f"/api/v1/nodes/{name}")["metadata"]["labels"]
                self.check_item(item, None, name, labels, before, after)
                self.assertEqual(list(item["usage"]), ["cpu", "memory"])
                self.assertEqual(item["usage"], oracle[name])

    def test_node_label_selector_and_one_node(self):
        body = self.get_json(f"{METRICS}/nodes?labelSelector=nvidia.com%2Fgpu.present%3Dtrue")
        self.assertEqual([i["metadata"]["name"] for i in body["items"]], ["gpu-node-1", "gpu-node-2"])
        body = self.get_json(f"{METRICS}/nodes?labelSelector=node.kubernetes.io%2Finstance-type%3Dm6i.large")
        self.assertEqual(body["items"], [])  # cpu-node-1 matches, but has no metrics
        before = time.time()
        item = self.get_json(f"{METRICS}/nodes/gpu-node-2")
        labels = self.stack.kube_request("GET", "/api/v1/nodes/gpu-node-2")["metadata"]["labels"]
        self.check_item(item, None, "gpu-node-2", labels, before, time.time(), single=True)
        self.assertEqual(item["usage"], self.rules.node_usage(self.stack, ["gpu-node-2"])["gpu-node-2"])

    def test_unknown_and_unmeasured_nodes_are_404(self):
        status, _, body = self.api(f"{METRICS}/nodes/no-such-node")
        self.assertEqual((status, body.rstrip("\n")), (404, status_json(
            404, "NotFound", 'node "no-such-node" not found', {"name": "no-such-node", "kind": "node"})))
        status, _, body = self.api(f"{METRICS}/nodes/cpu-node-1")
        self.assertEqual((status, body.rstrip("\n")), (404, status_json(
            404, "NotFound", 'nodemetrics.metrics.k8s.io "cpu-node-1" not found',
            {"name": "cpu-node-1", "group": GROUP, "kind": "nodemetrics"})))

    def test_nodes_come_from_the_watch(self):
        path = f"{METRICS}/nodes"
        names = lambda: [i["metadata"]["name"] for i in self.get_json(path)["items"]]  # noqa: E731
        self.assertNotIn("gpu-node-3", names())
        self.stack.kube_request("PUT", "/fake/nodes/gpu-node-3", {"labels": GPU_LABELS})
        try:
            wait_until("the new node in the list", lambda: "gpu-node-3" in names(), timeout=15)
            self.assertEqual(self.get_json(f"{path}/gpu-node-3")["usage"], {"cpu": "1", "memory": "1Gi"})
        finally:
            self.stack.kube_request("DELETE", "/fake/nodes/gpu-node-3")
        wait_until("the deleted node out of the list", lambda: "gpu-node-3" not in names(), timeout=15)
        # Listed and watched, not listed per request.
        requests = self.stack.kube_request("GET", "/fake/node_requests")
        self.assertTrue(any("watch=" in r["query"] for r in requests), requests)
        lists = len([r for r in requests if "watch=" not in r["query"]])
        for _ in range(3):
            self.get_json(path)
        self.assertEqual(len([r for r in self.stack.kube_request("GET", "/fake/node_requests")
                              if "watch=" not in r["query"]]), lists, "requests must not LIST nodes")

    # -- what is not served -----------------------------------------------------------------------
    def test_watch_is_405(self):
        for path, kind in ((f"{METRICS}/namespaces/ml/pods?watch=true", "pods"), (f"{METRICS}/nodes?watch=true", "nodes")):
            status, _, body = self.api(path)
            self.assertEqual((status, body.rstrip("\n")), (405, status_json(
                405, "MethodNotAllowed", f'watch is not supported on resources of kind "{kind}.metrics.k8s.io"',
                {"group": GROUP, "kind": kind})), path)

    # -- kubectl top --------------------------------------------------------------------------------
    def expected_pod_row(self, ns, name, usage=None):
        usage = usage or self.oracle_pods(self.stack)[(ns, name)]
        return {"CPU(cores)": top_cpu(sum(quantity(u["cpu"]) for u in usage.values())),
                "MEMORY(bytes)": top_memory(sum(quantity(u["memory"]) for u in usage.values()))}

    def test_kubectl_top_pod(self):
        rows = self.top("pod", "-n", "ml")
        self.assertEqual({r["NAME"]: {k: v for k, v in r.items() if k != "NAME"} for r in rows},
                         {name: self.expected_pod_row("ml", name) for name in (VLLM_A, VLLM_B, EMBEDDER)})
        # 1500m + 62m of CPU; 41260Ki + 42250241 bytes = 80.29 MiB, shown as 80Mi.
        self.assertEqual(self.expected_pod_row("ml", VLLM_A), {"CPU(cores)": "1562m", "MEMORY(bytes)": "80Mi"})
        self.assertEqual(self.top("pod", VLLM_B, "-n", "ml"),
                         [{"NAME": VLLM_B, **self.expected_pod_row("ml", VLLM_B)}])
        rows = self.top("pod", "-A")
        self.assertEqual({(r["NAMESPACE"], r["NAME"]): (r["CPU(cores)"], r["MEMORY(bytes)"]) for r in rows},
                         {key: tuple(self.expected_pod_row(*key).values()) for key in EXPECTED_PODS})
        rows = self.top("pod", "-n", "ml", "--containers", "-l", "app=embedder")
        self.assertEqual({(r["POD"], r["NAME"]): (r["CPU(cores)"], r["MEMORY(bytes)"]) for r in rows},
                         {(EMBEDDER, "server"): ("0m", "0Mi"), (EMBEDDER, "warmup"): ("0m", "32Mi")})

    def test_kubectl_top_node(self):
        rows = {r["NAME"]: list(r.values())[1:] for r in self.top("node")}
        oracle = self.rules.node_usage(self.stack, [n["name"] for n in NODES])
        expected = {}
        for name, usage in oracle.items():
            allocatable = self.stack.kube_request("GET", f"/api/v1/nodes/{name}")["status"]["allocatable"]
            cpu, memory = quantity(usage["cpu"]), quantity(usage["memory"])
            expected[name] = [top_cpu(cpu), top_percent(cpu, quantity(allocatable["cpu"])),
                              top_memory(memory), top_percent(memory, quantity(allocatable["memory"]))]
        # A node in the cluster without metrics shows <unknown>.
        expected["cpu-node-1"] = ["<unknown>"] * 4
        self.assertEqual(rows, expected)
        # gpu-node-1: 1500m of 7910m is 18%; 12Gi of 31610880Ki is 39%.
        self.assertEqual(expected["gpu-node-1"], ["1500m", "18%", "12288Mi", "39%"])
        rows = self.top("node", "gpu-node-2")
        self.assertEqual([list(r.values()) for r in rows], [["gpu-node-2", *expected["gpu-node-2"]]])

    def test_kubectl_top_errors(self):
        code, _, err = self.stack.kubectl("top", "node", "cpu-node-1", kubeconfig=self.kubeconfigs["viewer"])
        self.assertNotEqual(code, 0)
        self.assertIn('Error from server (NotFound): nodemetrics.metrics.k8s.io "cpu-node-1" not found', err)
        code, _, err = self.stack.kubectl("top", "pod", "no-such-pod", "-n", "ml", kubeconfig=self.kubeconfigs["viewer"])
        self.assertNotEqual(code, 0)
        self.assertIn('Error from server (NotFound): pods "no-such-pod" not found', err)

    # -- authorization ------------------------------------------------------------------------------
    def test_requests_are_authorized_with_the_metrics_attributes(self):
        self.top("pod", "-n", "ml", user="viewer")
        self.assert_review("viewer", "list", "pods", namespace="ml")
        self.top("pod", "-A", user="viewer")
        self.assert_review("viewer", "list", "pods")
        self.top("pod", VLLM_A, "-n", "ml", user="viewer")
        self.assert_review("viewer", "get", "pods", namespace="ml", name=VLLM_A)
        self.top("node", user="viewer")
        self.assert_review("viewer", "list", "nodes")
        self.top("node", "gpu-node-1", user="viewer")
        self.assert_review("viewer", "get", "nodes", name="gpu-node-1")

    def test_a_user_allowed_one_namespace_only(self):
        self.assertEqual({r["NAME"] for r in self.top("pod", "-n", "ml", user="ml-reader")}, {VLLM_A, VLLM_B, EMBEDDER})
        for args, message in (
                (("pod", "-n", "inference"), 'User "ml-reader" cannot list resource "pods" in API group '
                                             '"metrics.k8s.io" in the namespace "inference"'),
                (("node",), 'User "ml-reader" cannot list resource "nodes" in API group "metrics.k8s.io"')):
            code, _, err = self.stack.kubectl("top", *args, kubeconfig=self.kubeconfigs["ml-reader"])
            self.assertNotEqual(code, 0, args)
            self.assertIn("Error from server (Forbidden)", err)
            self.assertIn(message, err)

    def test_a_refused_user_gets_403(self):
        status, _, body = self.api(f"{METRICS}/namespaces/ml/pods", user="stranger")
        self.assertEqual(status, 403, body)
        body = json.loads(body)
        self.assertEqual((body["reason"], body["code"]), ("Forbidden", 403))
        self.assertIn('User "stranger" cannot list resource "pods" in API group "metrics.k8s.io" in the namespace '
                      '"ml"', body["message"])
        self.assert_review("stranger", "list", "pods", namespace="ml")

    # -- prometheus-adapter's own deploy rules --------------------------------------------------------
    def test_check_explains_the_resource_queries(self):
        """`check --explain` prints the container query of a namespace and the node queries, and
        runs each once against Prometheus."""
        p = subprocess.run([os.path.abspath(BINARY), "check", f"--config={KUBE_PROMETHEUS_CONFIG}",
                            f"--prometheus-url={self.stack.prometheus_url}",
                            "--explain=/apis/metrics.k8s.io/v1beta1/namespaces/ml/pods",
                            "--explain=/apis/metrics.k8s.io/v1beta1/nodes"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("resourceRules for metrics.k8s.io)", p.stdout)
        self.assertIn("resource pods (metrics.k8s.io/v1beta1): cpu from line", p.stdout)
        self.assertIn(f"window {self.rules.window}", p.stdout)
        pods_part = p.stdout.split("explain /apis/metrics.k8s.io/v1beta1/namespaces/ml/pods:")[1]
        pods_part, nodes_part = pods_part.split("explain /apis/metrics.k8s.io/v1beta1/nodes:")
        # The containerQuery for the whole namespace, then the memory one; each answered.
        self.assertIn('container_cpu_usage_seconds_total{namespace="ml",pod!="",container!="",pod!=""}',
                      pods_part)
        self.assertIn('container_memory_working_set_bytes{namespace="ml",pod!="",container!="",pod!=""}',
                      pods_part)
        self.assertEqual(len(re.findall(r"=> Prometheus: [1-9][0-9]* series", pods_part)), 2, pods_part)
        self.assertEqual(len(re.findall(r"=> Prometheus: [1-9][0-9]* series", nodes_part)), 2, nodes_part)
        # Each resource's nodes by its own label: node for CPU, instance for memory.
        self.assertIn("sum by (node)", nodes_part)
        self.assertIn("sum by (instance)", nodes_part)

    def test_deploy_manifest_rules_read_the_kubelet_resource_series(self):
        headers = {"X-Remote-User": "viewer", "X-Remote-Group": "viewers"}
        status, body = self.stack.https_get(f"{METRICS}/nodes", headers, client_cert=self.stack.front_proxy,
                                            adapter="adapter-deploy")
        self.assertEqual(status, 200, body)
        items = json.loads(body)["items"]
        self.assertEqual({i["metadata"]["name"]: i["usage"] for i in items},
                         self.deploy_rules.node_usage(self.stack, [n["name"] for n in NODES]))
        self.assertEqual({i["metadata"]["name"]: i["usage"] for i in items}, EXPECTED_NODES_DEPLOY)
        self.assertEqual({i["window"] for i in items}, {self.deploy_rules.window})
        status, body = self.stack.https_get(f"{METRICS}/namespaces/ml/pods", headers,
                                            client_cert=self.stack.front_proxy, adapter="adapter-deploy")
        self.assertEqual(status, 200, body)
        self.assertEqual({i["metadata"]["name"]: self.containers(i) for i in json.loads(body)["items"]},
                         {pod: usage for (ns, pod), usage in self.oracle_pods(self.stack, self.deploy_rules).items()
                          if ns == "ml"})


class Quantities(unittest.TestCase):
    """This test's own formatting against the reference's table (section 3), so that a
    disagreement with the adapter is not this file's mistake."""

    def test_the_reference_table(self):
        for value, text in ((0.012, "12m"), (1.5, "1500m"), (2.0, "2"), (1.001, "1"), (0.0004, "0"),
                            (float("nan"), "0"), (-3, "0")):
            self.assertEqual(cpu_quantity(value), text, value)
        for value, text in ((42250240, "41260Ki"), (1073741824, "1Gi"), (42250241, "42250241"), (512, "512"),
                            (1234.5, "1234500m")):
            self.assertEqual(memory_quantity(value), text, value)
        self.assertEqual(go_duration(300), "5m0s")
        self.assertEqual(go_duration(30), "30s")
        self.assertEqual(go_duration(3600), "1h0m0s")

    def test_the_rules_files_read_as_written(self):
        rules = Rules(KUBE_PROMETHEUS_CONFIG)
        self.assertEqual(rules.window, "5m0s")
        self.assertEqual((Rules.label(rules.cpu, "node"), Rules.label(rules.memory, "node")), ("node", "instance"))
        self.assertEqual(rules.memory["containerQuery"],
                         'sum by (<<.GroupBy>>) (\n  container_memory_working_set_bytes{<<.LabelMatchers>>,'
                         'container!="",pod!=""}\n)\n')
        self.assertEqual(Rules.render(rules.memory["containerQuery"], 'namespace="ml",pod=~"a|b"', "pod,container"),
                         'sum by (pod,container) (\n  container_memory_working_set_bytes{namespace="ml",pod=~"a|b",'
                         'container!="",pod!=""}\n)\n')
        self.assertEqual(Rules(DEPLOY_CONFIG).cpu["containerLabel"], "container")


if __name__ == "__main__":
    unittest.main()
