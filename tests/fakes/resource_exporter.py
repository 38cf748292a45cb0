#!/usr/bin/env python3
"""A synthetic exporter of the series prometheus-adapter's resourceRules read, for the
resource metrics (metrics.k8s.io) end-to-end tests: what Prometheus gets, in kube-prometheus,
from the kubelet's cAdvisor and resource endpoints, from node-exporter and from
kube-state-metrics. It is scraped with honor_labels: true, so each series carries the labels the
kube-prometheus ServiceMonitors give it (job, instance, namespace, pod, node, ...).

  --scenario FILE   JSON, re-read on every scrape:
    containers  [{namespace, pod, container, node, cpu, memory}]: the cAdvisor series of one
                container (job "kubelet", metrics_path "/metrics/cadvisor"):
                container_cpu_usage_seconds_total, a counter growing at `cpu` cores, and
                container_memory_working_set_bytes = `memory`. A key left out (or null) leaves
                that series out. Each pod also gets its pod-cgroup series (container "",
                image "", the sums of its containers), which the rules' container!="" leave out,
                and a kube_pod_info (job "kube-state-metrics").
    nodes       [{name, idle, mem_total, mem_available, cpu, working_set}]: node-exporter on the
                node (job "node-exporter", instance = the node's name as kube-prometheus relabels
                it, namespace "monitoring", pod "node-exporter-<hash>", and that pod's
                kube_pod_info with node=<name>): node_cpu_seconds_total for each CPU, mode "idle"
                growing at idle[i] seconds per second and modes "user" and "system" sharing the
                rest, node_memory_MemTotal_bytes and node_memory_MemAvailable_bytes; and the
                kubelet's /metrics/resource series (job "kubelet", node=<name>):
                node_cpu_usage_seconds_total growing at `cpu` cores, node_memory_working_set_bytes
                = `working_set`. Keys left out leave those series out.

Counters are rate x (whole seconds since a fixed base), written with that whole second as the
sample's explicit timestamp (cAdvisor and the kubelet's resource endpoint write timestamps too),
so rate() and irate() over any two samples give the rate back exactly when it is a sum of
powers of two (1.5, 0.25, 0.0625): the tests can expect exact quantities, such as the
truncation of 0.0625 cores to "62m".
"""
import argparse
import hashlib
import json
import math
import time
import uuid

from replies import serve_metrics

BASE = math.floor(time.time()) - 1000  # counters start well above zero


def _digest(*parts):
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def labels_text(labels):
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def number(value):
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def render(scenario, now=None):
    """The exposition text for `scenario` at time `now` (seconds; default the current time)."""
    second = math.floor(time.time() if now is None else now)
    stamp = second * 1000
    elapsed = second - BASE
    series = {}  # metric name -> [line]

    def add(name, labels, value, timestamped=True):
        series.setdefault(name, []).append(f"{name}{{{labels_text(labels)}}} {number(value)}" +
                                           (f" {stamp}" if timestamped else ""))

    pods = {}
    for c in scenario.get("containers", []):
        pods.setdefault((c["namespace"], c["pod"]), []).append(c)
    for (ns, pod), containers in pods.items():
        node = containers[0].get("node", "gpu-node-1")
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ns}/{pod}"))
        cgroup = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid.replace('-', '_')}.slice"
        kubelet = {"endpoint": "https-metrics", "instance": f"10.0.1.{int(_digest(node)[:2], 16) % 200 + 1}:10250",
                   "job": "kubelet", "metrics_path": "/metrics/cadvisor", "namespace": ns, "node": node, "pod": pod,
                   "service": "kubelet"}
        total_cpu, total_memory = None, None
        for c in containers:
            cid = _digest("container", ns, pod, c["container"])
            labels = {"container": c["container"], **kubelet, "id": f"{cgroup}/cri-containerd-{cid}.scope",
                      "image": c.get("image", "nvcr.io/nvidia/tritonserver:24.08-py3"), "name": cid}
            labels = dict(sorted(labels.items()))
            if c.get("cpu") is not None:
                add("container_cpu_usage_seconds_total", labels, c["cpu"] * elapsed)
                total_cpu = (total_cpu or 0) + c["cpu"]
            if c.get("memory") is not None:
                add("container_memory_working_set_bytes", labels, c["memory"])
                total_memory = (total_memory or 0) + c["memory"]
        pod_labels = dict(sorted({"container": "", **kubelet, "id": cgroup, "image": "", "name": ""}.items()))
        if total_cpu is not None:
            add("container_cpu_usage_seconds_total", pod_labels, total_cpu * elapsed)
        if total_memory is not None:
            add("container_memory_working_set_bytes", pod_labels, total_memory + 1720320)  # + the pause container
        add("kube_pod_info", pod_info(ns, pod, node, "ReplicaSet", pod.rsplit("-", 1)[0]), 1, timestamped=False)

    for n in scenario.get("nodes", []):
        name = n["name"]
        exporter_pod = "node-exporter-" + "".join("bcdfghjklmnpqrstvwxz2456789"[int(ch, 16) % 27]
                                                  for ch in _digest("node-exporter", name)[:5])
        node_exporter = {"container": "kube-rbac-proxy", "endpoint": "https", "instance": name,
                         "job": "node-exporter", "namespace": "monitoring", "pod": exporter_pod,
                         "service": "node-exporter"}
        for i, idle in enumerate(n.get("idle", [])):
            busy = 1 - idle
            for mode, share in (("idle", idle), ("system", busy / 4), ("user", busy - busy / 4)):
                add("node_cpu_seconds_total", dict(sorted({**node_exporter, "cpu": str(i), "mode": mode}.items())),
                    share * elapsed)
        if "mem_total" in n:
            add("node_memory_MemTotal_bytes", node_exporter, n["mem_total"], timestamped=False)
        if "mem_available" in n:
            add("node_memory_MemAvailable_bytes", node_exporter, n["mem_available"], timestamped=False)
        if "idle" in n or "mem_total" in n:
            add("kube_pod_info", pod_info("monitoring", exporter_pod, name, "DaemonSet", "node-exporter"), 1,
                timestamped=False)
        kubelet = {"endpoint": "https-metrics", "instance": f"10.0.1.{int(_digest(name)[:2], 16) % 200 + 1}:10250",
                   "job": "kubelet", "metrics_path": "/metrics/resource", "node": name, "service": "kubelet"}
        if n.get("cpu") is not None:
            add("node_cpu_usage_seconds_total", kubelet, n["cpu"] * elapsed)
        if n.get("working_set") is not None:
            add("node_memory_working_set_bytes", kubelet, n["working_set"])

    kinds = {"container_cpu_usage_seconds_total": "counter", "node_cpu_seconds_total": "counter",
             "node_cpu_usage_seconds_total": "counter"}
    lines = []
    for name, rows in series.items():
        lines.append(f"# TYPE {name} {kinds.get(name, 'gauge')}")
        lines += rows
    return "\n".join(lines) + "\n"


def pod_info(ns, pod, node, owner_kind, owner_name):
    """kube-state-metrics' kube_pod_info of a pod, as kube-prometheus scrapes it."""
    h = _digest("pod", ns, pod)
    host_network = owner_kind == "DaemonSet"
    host_ip = f"10.0.1.{int(_digest(node)[:2], 16) % 200 + 1}"
    return {"container": "kube-rbac-proxy-main", "created_by_kind": owner_kind, "created_by_name": owner_name,
            "endpoint": "https-main", "host_ip": host_ip, "host_network": str(host_network).lower(),
            "instance": "10.244.0.5:8443", "job": "kube-state-metrics", "namespace": ns, "node": node,
            "pod": pod, "pod_ip": host_ip if host_network else f"10.244.{int(h[:2], 16) % 8 + 1}.{int(h[2:4], 16) % 250 + 2}",
            "priority_class": "system-node-critical" if host_network else "", "service": "kube-state-metrics",
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ns}/{pod}"))}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--scenario", required=True)
    args = parser.parse_args()

    def current():
        with open(args.scenario) as f:
            return render(json.load(f))

    serve_metrics("127.0.0.1", args.port, current)


if __name__ == "__main__":
    main()
