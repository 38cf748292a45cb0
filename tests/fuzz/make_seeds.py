#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the inputs the
unit and end-to-end tests use, so that fuzzing starts from the shapes that matter. The
checked-in files are the corpus; run this again (python3 tests/fuzz/make_seeds.py) after
changing those tests. Files named regression-* are reproducers of fixed crashes, added by hand,
and are kept; every other file in a corpus folder is rewritten. Needs PyYAML (python3-yaml).
"""
import base64
import hashlib
import json
import os
import re
import sys
import urllib.parse

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
sys.path.insert(0, os.path.join(ROOT, "tests", "fakes"))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def cpp_literals(path):
    """The string literals of a C++ file: raw strings whole, ordinary ones with their escapes."""
    text = read(path)
    out = [m.group(2) for m in re.finditer(r'R"(\w*)\((.*?)\)\1"', text, re.S)]
    text = re.sub(r'R"(\w*)\((.*?)\)\1"', "", text, flags=re.S)
    for m in re.finditer(r'"((?:\\.|[^"\\\n])*)"', text):
        if m.start() > 0 and text[m.start() - 1] == "<":
            continue
        out.append(m.group(1).encode().decode("unicode_escape"))
    return [s for s in out if not s.endswith((".hpp", ".h"))]


def py_triple_strings(path):
    return re.findall(r'"""\\?\n?(.*?)"""', read(path), re.S)


def write(target, seeds):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    names = set()
    for source, seed in seeds:
        data = seed.encode() if isinstance(seed, str) else seed
        name = f"{source}-{hashlib.sha1(data).hexdigest()[:10]}"
        if name in names:
            continue
        names.add(name)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    for old in os.listdir(folder):
        if old not in names and not old.startswith("regression-"):
            os.remove(os.path.join(folder, old))
    print(f"{target}: {len(names)} seeds")


def label_selector_seeds():
    seeds = [("label_selector_test", s) for s in cpp_literals("tests/server/core/label_selector_test.cpp")
             if len(s) < 200 and "\n" not in s]
    for path in sorted(os.listdir(os.path.join(ROOT, "tests", "e2e"))):
        if path.endswith(".py"):
            for m in re.finditer(r"(?:labelSelector|metricLabelSelector)=([^&\"' ]*)", read("tests/e2e/" + path)):
                if "{" not in m.group(1):
                    seeds.append(("e2e", urllib.parse.unquote(m.group(1))))
    return seeds


def quantity_seeds():
    return [("quantity_test", s) for s in cpp_literals("tests/server/core/quantity_test.cpp")
            if len(s) < 64 and re.fullmatch(r"[-+0-9.eEKMGTPinumk]*", s)]


def rules_files():
    files = [("gpu-rules", read("manifests/base/gpu-rules.yaml"))]
    files += [("rules_config_test", s) for s in cpp_literals("tests/adapters/prometheus/rules_config_test.cpp")
              if re.match(r"\s*(rules|externalRules|resourceRules):", s)]
    files += [("default_rules_test", s) for s in cpp_literals("tests/adapters/prometheus/default_rules_test.cpp")
              if re.match(r"\s*(rules|externalRules):", s)]
    for path in ("tests/e2e/config_test.py", "tests/e2e/e2e_test.py"):
        files += [("e2e", s) for s in py_triple_strings(path) if "seriesQuery" in s]
    return files


def go_template_seeds(rules):
    seeds = [("rules_config_test", s) for s in cpp_literals("tests/adapters/prometheus/rules_config_test.cpp")
             if "<<" in s and "seriesQuery" not in s]
    seeds += [("go_template_test", s) for s in cpp_literals("tests/adapters/prometheus/go_template_test.cpp")
              if "<<" in s and len(s.encode()) <= 512]
    for source, text in rules:
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            continue
        if not isinstance(doc, dict):
            continue
        listed = [doc.get("rules"), doc.get("externalRules")]
        for rule in [r for rules in listed if isinstance(rules, list) for r in rules]:
            if not isinstance(rule, dict):
                continue
            if isinstance(rule.get("metricsQuery"), str):
                seeds.append((source, rule["metricsQuery"]))
            resources = rule.get("resources")
            if isinstance(resources, dict) and isinstance(resources.get("template"), str):
                seeds.append((source, resources["template"]))
    return seeds


def prometheus_reply_seeds():
    import dcgm_exporter
    # The fault replies of the e2e fault suite: status= and body= of one assert_fault call.
    seeds = []
    for call in re.findall(r"assert_fault\((.*?)\)\n", read("tests/e2e/faults_test.py"), re.S):
        body = re.search(r"body=(\"(?:\\.|[^\"])*\"|'(?:\\.|[^'])*')", call)
        status = re.search(r"status=(\d{3})", call)
        if body:
            seeds.append(("faults_test", f"{status.group(1) if status else 200}\n{eval(body.group(1))}"))
    # What Prometheus answers for the exporter's series (label names and order as it serves them).
    gpus = dcgm_exporter.DEMO["gpus"]
    series = [dict({"__name__": "DCGM_FI_DEV_GPU_UTIL", "Hostname": dcgm_exporter.DEMO["hostname"], "UUID": f"GPU-{g['gpu']}",
                    "device": f"nvidia{g['gpu']}", "modelName": "NVIDIA A100-SXM4-80GB"},
                   **{k: str(v) for k, v in g.items()}) for g in gpus]
    vector = [{"metric": {k: v for k, v in s.items() if k != "__name__"}, "value": [1732780800.123, value]}
              for s, value in zip(series, ["87.5", "NaN", "+Inf", "1e400", "-0", "4.9e-324"])]
    replies = [
        {"status": "success", "data": {"resultType": "vector", "result": vector}},
        {"status": "success", "data": {"resultType": "vector", "result": []}},
        {"status": "success", "data": {"resultType": "scalar", "result": [1732780800.5, "2"]}},
        {"status": "success", "data": {"resultType": "matrix", "result": []}},
        {"status": "success", "data": series},
        {"status": "success", "data": [], "warnings": ["PromQL info: metric might not be a counter"]},
        {"status": "error", "errorType": "bad_data", "error": "invalid parameter \"query\": 1:1: parse error"},
    ]
    seeds += [("prometheus", json.dumps(r, separators=(",", ":"))) for r in replies]
    seeds.append(("prometheus", "422\n" + json.dumps({"status": "error", "errorType": "execution",
                                                       "error": "query processing would load too many samples"})))
    seeds.append(("prometheus", "401\nUnauthorized\n"))
    return seeds


def pod_cache_seeds():
    from fake_kube_apiserver import Store, status
    store = Store()
    pods = [store.pod("inference", "triton-5d8f7c9b6-x2kqp", {"app": "triton", "pod-template-hash": "5d8f7c9b6"}),
            store.pod("llm", "vllm-7c9d-4k2mn", {"app": "vllm", "model": "llama-3-8b"}),
            store.pod("batch", "trainer-0", {})]
    seeds = [("fake_kube_apiserver", json.dumps({"kind": "PodList", "apiVersion": "v1",
                                                 "metadata": {"resourceVersion": str(store.version)},
                                                 "items": pods}, separators=(",", ":"))),
             ("fake_kube_apiserver", json.dumps({"kind": "PodList", "apiVersion": "v1",
                                                 "metadata": {"resourceVersion": "7", "continue": "2"},
                                                 "items": pods[:2]}, separators=(",", ":")))]
    events = [{"type": "ADDED", "object": pods[0]}, {"type": "MODIFIED", "object": pods[1]},
              {"type": "DELETED", "object": pods[0]},
              {"type": "BOOKMARK", "object": {"kind": "Pod", "metadata": {"resourceVersion": "9"}}},
              {"type": "ERROR", "object": status(410, "Expired", "too old resource version: 1 (100)")}]
    seeds.append(("fake_kube_apiserver", "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)))
    seeds += [("pod_cache_test", s) for s in cpp_literals("tests/adapters/kubernetes/pod_cache_test.cpp")
              if s.startswith("{")]
    return seeds


def kubeconfig_seeds():
    from stack import kubeconfig_yaml
    data = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
    return [
        ("stack", kubeconfig_yaml("http://127.0.0.1:8001", token="lister-token")),
        ("stack", kubeconfig_yaml("https://127.0.0.1:6443", ca_file="serving-ca.crt", token="demo")),
        ("stack", kubeconfig_yaml("https://127.0.0.1:6443", ca_file="/tmp/ca.crt", cert="client.crt", key="client.key")),
        ("kubeconfig", "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                       "clusters:\n- name: k\n  cluster:\n    server: https://[::1]:6443\n"
                       f"    certificate-authority-data: {data}\n"
                       "users:\n- name: u\n  user:\n    tokenFile: token\n"
                       "contexts:\n- name: c\n  context: {cluster: k, user: u, namespace: ml}\n"),
        ("kubeconfig", "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                       "clusters: [{name: k, cluster: {server: 'https://k8s.example.com', insecure-skip-tls-verify: true}}]\n"
                       "contexts: [{name: c, context: {cluster: k}}]\n"),
    ]


def hpa_seeds():
    """The HPAs of the explain-hpa tests as JSON: the unit tests' literals that parse as objects,
    and the end-to-end suite's manifests, plus the fake Kubernetes API's Scale."""
    import explain_hpa_test as e2e
    out = []
    for literal in cpp_literals("tests/server/core/replica_calculator_test.cpp"):
        try:
            value = json.loads(literal)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(("replica_calculator_test", literal))
    for hpa in (e2e.hpa_v2([e2e.pods_v2(), e2e.external_v2()]),
                e2e.hpa_v2([e2e.external_v2()], api_version="autoscaling/v2beta2"), e2e.hpa_v2beta1()):
        out.append(("explain_hpa_test", json.dumps(hpa)))
    return out


def main():
    write("label_selector", label_selector_seeds())
    write("quantity", quantity_seeds())
    rules = rules_files()
    write("rules_config", rules)
    write("go_template", go_template_seeds(rules))
    write("prometheus_reply", prometheus_reply_seeds())
    write("pod_cache", pod_cache_seeds())
    write("kubeconfig", kubeconfig_seeds())
    write("hpa", hpa_seeds())


if __name__ == "__main__":
    main()
