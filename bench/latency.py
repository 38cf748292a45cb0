#!/usr/bin/env python3
"""Benchmark (not run by CI): what the adapter adds on top of Prometheus.

Starts the real Prometheus with the synthetic dcgm-exporter and the adapter (built-in rules,
pods from the fake Kubernetes API), then, side by side in one run over keep-alive connections:
  - the HPA's request:  GET pods/*/gpu_utilization?labelSelector=app=triton through the adapter
  - the same PromQL sent straight to Prometheus's /api/v1/query
and reports both latency distributions, their ratio, and the adapter's resident memory.

  python3 bench/latency.py [--requests N] [--binary build/gpu-metrics-adapter]
"""
import argparse
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from e2e_test import PODS, start_gpu_prometheus  # noqa: E402
from stack import Stack, wait_until  # noqa: E402

PATH = ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/pods/%2A/gpu_utilization"
        "?labelSelector=app%3Dtriton")
# The query the built-in rule sends for that request (namespace-wide: the pods are picked from
# its answer); through the adapter the answer comes from its cache once warm.
PROMQL = ('avg by (pod) ((DCGM_FI_DEV_GPU_UTIL{namespace="inference",pod!="",exported_pod=""} '
          'unless on (job, instance) DCGM_FI_DEV_GPU_UTIL{namespace="inference",exported_pod!=""}))')


def timed(send, n):
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        send()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50": statistics.median(samples), "p99": samples[int(len(samples) * 0.99) - 1],
            "mean": statistics.fmean(samples)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                         "gpu-metrics-adapter"))
    args = parser.parse_args()
    stack = Stack(os.path.abspath(args.binary))
    try:
        start_gpu_prometheus(stack)
        stack.start_adapter(lister_kubeconfig=stack.start_fake_kube(PODS))
        wait_until("discovery", lambda: stack.https_get(PATH)[0] == 200, timeout=30)
        adapter = stack.https_connection()
        prometheus = http.client.HTTPConnection("127.0.0.1", stack.ports["prometheus"], timeout=10)
        query = "/api/v1/query?query=" + urllib.parse.quote(PROMQL)

        def via_adapter():
            status, body = stack.https_get(PATH, connection=adapter)
            assert status == 200 and "triton-a" in body, body

        def direct():
            prometheus.request("GET", query)
            response = prometheus.getresponse()
            body = response.read()
            assert response.status == 200 and b"triton-a" in body, body

        for send in (via_adapter, direct):  # warm up both paths
            timed(send, 20)
        # Interleave rounds so both see the same machine load.
        rounds = [(timed(via_adapter, args.requests // 5), timed(direct, args.requests // 5)) for _ in range(5)]
        result = {}
        for i, name in enumerate(("adapter", "prometheus")):
            result[name] = {k: statistics.median(r[i][k] for r in rounds) for k in ("p50", "p99", "mean")}
        result["ratio_p50"] = result["adapter"]["p50"] / result["prometheus"]["p50"]
        with open(f"/proc/{stack.procs['adapter'].pid}/status") as f:
            rss = next(line for line in f if line.startswith("VmRSS"))
        result["adapter_rss"] = rss.split(":", 1)[1].strip()
        print(json.dumps(result, indent=2))
    finally:
        stack.close()


if __name__ == "__main__":
    main()
