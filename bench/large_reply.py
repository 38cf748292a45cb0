#!/usr/bin/env python3
"""Benchmark (not run by CI): what one large Prometheus reply does to the adapter's memory.

A Prometheus stand-in on loopback answers discovery with the built-in rules' series, and every
query with one vector reply of about --mb megabytes (distinct pods with long label sets, the
shape a namespace-wide query returns on a large cluster). The adapter answers one
pods/*/gpu_utilization request from it; the bench reports its resident memory before, at the
peak (VmHWM) and a few seconds after, for each binary given, side by side in one run:

  python3 bench/large_reply.py --binary build/gpu-metrics-adapter --binary /tmp/base/build/gpu-metrics-adapter
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from stack import Stack, free_port, wait_until  # noqa: E402

PATH = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/pods/%2A/gpu_utilization"


def query_reply(megabytes):
    """A vector of samples for distinct pods, about `megabytes` of JSON."""
    sample = {"metric": {"namespace": "inference", "pod": "", "container": "server",
                         "Hostname": "gpu-node-0000", "UUID": "GPU-" + "0" * 36,
                         "modelName": "NVIDIA H100 80GB HBM3", "pci_bus_id": "00000000:00:00.0",
                         "DCGM_FI_DRIVER_VERSION": "550.54.15", "job": "dcgm-exporter",
                         "instance": "10.0.0.1:9400"},
              "value": [1700000000.0, "87.5"]}
    one = len(json.dumps(sample))
    count = megabytes * 1024 * 1024 // one
    result = []
    for i in range(count):
        s = json.loads(json.dumps(sample))
        s["metric"]["pod"] = f"triton-{i:07d}"
        result.append(s)
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def series_reply():
    labels = {"__name__": "DCGM_FI_DEV_GPU_UTIL", "namespace": "inference", "pod": "triton-0000000",
              "container": "server", "gpu": "0"}
    return json.dumps({"status": "success", "data": [labels]}).encode()


def serve_prometheus(port, big):
    small = series_reply()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_GET(self):
            body = big if self.path.startswith("/api/v1/query") else small
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def memory_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields


def measure(binary, prometheus_url):
    stack = Stack(os.path.abspath(binary))
    try:
        stack.start_adapter(wait_ready=True, prometheus_url=prometheus_url)
        wait_until("discovery", lambda: "pods/gpu_utilization" in stack.https_get(
            "/apis/custom.metrics.k8s.io/v1beta2")[1], timeout=30)
        pid = stack.adapter_pid()
        before = memory_kib(pid)["VmRSS"]
        status, body = stack.https_get(PATH)
        if status != 200:
            raise RuntimeError(f"{binary}: HTTP {status}: {body[:300]}")
        items = len(json.loads(body)["items"])
        time.sleep(3)
        after = memory_kib(pid)
        return {"binary": binary, "items": items, "before": before, "peak": after["VmHWM"],
                "after": after["VmRSS"]}
    finally:
        stack.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", action="append", default=[])
    p.add_argument("--mb", type=int, default=20)
    args = p.parse_args()
    binaries = args.binary or [os.path.join(os.path.dirname(__file__), "..", "build", "gpu-metrics-adapter")]
    big = query_reply(args.mb)
    port = free_port()
    serve_prometheus(port, big)
    print(f"query reply: {len(big) / 1048576:.1f} MiB")
    print(f"{'binary':60} {'items':>7} {'RSS before':>11} {'peak':>9} {'RSS after':>10}")
    for binary in binaries:
        r = measure(binary, f"http://127.0.0.1:{port}")
        print(f"{r['binary']:60} {r['items']:7d} {r['before'] / 1024:9.1f}Mi {r['peak'] / 1024:7.1f}Mi "
              f"{r['after'] / 1024:8.1f}Mi")


if __name__ == "__main__":
    main()
