#!/usr/bin/env python3
"""Benchmark (not run by CI): a soak, to see that the adapter's memory stays flat under a
steady mixed load.

Starts the real Prometheus with both synthetic dcgm-exporters, the fake Kubernetes API and the
adapter (built-in rules), as bench/latency.py does, then for --duration seconds several client
threads send a mix over keep-alive connections: discovery, pods/* metrics with label
selectors, single pods, namespaces, external metrics with selectors, a few 404s and 400s, and a
few connections dropped half-way (before the handshake ends, or in the middle of a request
head). The adapter's resident memory is read from /proc every second.

It prints the RSS after a warm-up (--warmup seconds of the same load), at the end and at its
highest, and the requests done and failed. Exit code 1 when the RSS at the end exceeds the
warm-up RSS by more than 10 % + 2 MiB, or when any request got an unexpected answer.

  python3 bench/soak.py [--duration 60] [--warmup 5] [--threads 4] [--binary build/gpu-metrics-adapter]
"""
import argparse
import collections
import json
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from e2e_test import PODS, start_gpu_prometheus  # noqa: E402
from hostile import RawTls, raw_exchange, rss_kib  # noqa: E402
from stack import Stack, wait_until  # noqa: E402

CUSTOM = "/apis/custom.metrics.k8s.io"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
NS = f"{CUSTOM}/v1beta2/namespaces"


def values(body):
    return {i["describedObject"]["name"]: i["value"] for i in json.loads(body)["items"]}


def external_values(body):
    return sorted(i["value"] for i in json.loads(body)["items"])


def has_resource(name):
    return lambda body: name in {r["name"] for r in json.loads(body)["resources"]}


def reason(expected):
    return lambda body: json.loads(body)["reason"] == expected


# (weight, kind, path, expected status, check of the body or None). Values are the scenario's
# (tests/e2e/e2e_test.py), so every answer is known exactly.
REQUESTS = [
    (3, "discovery", "/apis", 200, lambda b: len(json.loads(b)["groups"]) == 2),
    (3, "discovery", f"{CUSTOM}/v1beta2", 200, has_resource("pods/gpu_utilization")),
    (1, "discovery", f"{CUSTOM}/v1beta1", 200, has_resource("pods/gpu_power_watts")),
    (2, "discovery", EXTERNAL, 200, has_resource("gpu.utilization")),
    (10, "pods", f"{NS}/inference/pods/%2A/gpu_utilization?labelSelector=app%3Dtriton", 200,
     lambda b: values(b) == {"triton-a": "87500m", "triton-b": "60"}),
    (4, "pods", f"{NS}/inference/pods/%2A/gpu_utilization?labelSelector=app+in+%28triton%2Cother%29%2C%21tier",
     200, lambda b: values(b) == {"triton-b": "60", "other-c": "10"}),
    (3, "pods", f"{NS}/inference/pods/%2A/gpu_memory_used_bytes?labelSelector=tier%3Dgpu", 200,
     lambda b: values(b) == {"triton-a": str((20514 + 1000) * 1048576)}),
    (3, "pods", f"{NS}/batch/pods/%2A/gpu_utilization?labelSelector=app%3Dtrainer", 200,
     lambda b: values(b) == {"trainer-0": "42"}),
    (2, "pods", f"{NS}/inference/pods/triton-a/gpu_power_watts", 200,
     lambda b: values(b) == {"triton-a": "247912m"}),
    (2, "namespace", f"{NS}/inference/metrics/gpu_power_watts", 200,
     lambda b: [i["value"] for i in json.loads(b)["items"]] == ["547912m"]),
    (4, "external", f"{EXTERNAL}/namespaces/inference/gpu.utilization?labelSelector=pod%3Dtriton-a", 200,
     lambda b: external_values(b) == ["87500m"]),  # one item per pod: avg(80, 95)
    (3, "external", f"{EXTERNAL}/namespaces/llm/vllm_num_requests_waiting?labelSelector=model_name%3Dllama-3-8b",
     200, lambda b: external_values(b) == ["7"]),
    (1, "404", f"{NS}/inference/pods/%2A/no_such_metric", 404, reason("NotFound")),
    (1, "404", f"{CUSTOM}/v1beta3", 404, reason("NotFound")),
    (1, "400", f"{NS}/inference/pods/%2A/gpu_utilization?labelSelector=app+in+%28triton", 400,
     reason("BadRequest")),
]


class Load:
    def __init__(self, stack, seed):
        self.stack = stack
        self.random = random.Random(seed)
        self.kinds = [r for r in REQUESTS for _ in range(r[0])]
        self.done = collections.Counter()
        self.failed = []

    def drop_a_connection(self):
        """A client that leaves half-way: in the handshake, or in the middle of a head."""
        port = self.stack.ports["adapter"]
        if self.random.random() < 0.5:
            with RawTls(port, self.stack.serving_ca) as conn:
                hello = conn.client_hello()
            raw_exchange(port, hello[:len(hello) // 2], timeout=2, shut_write=True)
        else:
            with RawTls(port, self.stack.serving_ca) as conn:
                conn.handshake()
                conn.send(b"GET /apis/custom.metrics.k8s.io/v1beta2 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half")
        self.done["dropped"] += 1

    def run(self, stop):
        connection = self.stack.https_connection()
        while not stop.is_set():
            if self.random.random() < 0.02:
                self.drop_a_connection()
                continue
            _, kind, path, expected, check = self.random.choice(self.kinds)
            status, body = self.stack.https_get(path, connection=connection)
            ok = status == expected
            if ok and check:
                try:
                    ok = bool(check(body))
                except (ValueError, KeyError, TypeError):
                    ok = False
            self.done[kind] += 1
            if not ok:
                self.failed.append(f"{path}: {status} {body[:200]}")
            if status == 0 or self.random.random() < 0.01:  # broken, or a client reconnecting
                connection.close()
                connection = self.stack.https_connection()
        connection.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=60, help="seconds of load after the warm-up")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--binary", default=os.environ.get("GMA_BINARY") or os.path.join(
        os.path.dirname(__file__), "..", "build", "gpu-metrics-adapter"))
    args = parser.parse_args()
    stack = Stack(os.path.abspath(args.binary))
    try:
        start_gpu_prometheus(stack)
        stack.start_adapter(lister_kubeconfig=stack.start_fake_kube(PODS))
        wait_until("discovery", lambda: "vllm_num_requests_waiting" in stack.https_get(EXTERNAL)[1], timeout=30)
        pid = stack.adapter_pid()
        idle_kib = rss_kib(pid)
        stop = threading.Event()
        loads = [Load(stack, seed) for seed in range(args.threads)]
        threads = [threading.Thread(target=load.run, args=(stop,)) for load in loads]
        samples = []  # (seconds since the start, KiB)
        started = time.time()
        for t in threads:
            t.start()
        try:
            while time.time() - started < args.warmup + args.duration:
                time.sleep(1)
                if stack.procs["adapter"].poll() is not None:
                    raise RuntimeError("the adapter exited:\n" + stack.log("adapter")[-3000:])
                samples.append((time.time() - started, rss_kib(pid)))
        finally:
            stop.set()
            for t in threads:
                t.join()
        elapsed = time.time() - started
        warm = [kib for at, kib in samples if at >= args.warmup]
        start_kib, end_kib, max_kib = warm[0], warm[-1], max(warm)
        done = sum((load.done for load in loads), collections.Counter())
        failed = [f for load in loads for f in load.failed]
        limit_kib = start_kib * 1.10 + 2048
        print(json.dumps({
            "seconds": round(elapsed, 1), "threads": args.threads,
            "rss_idle_mib": round(idle_kib / 1024, 1),
            "rss_after_warmup_mib": round(start_kib / 1024, 1),
            "rss_end_mib": round(end_kib / 1024, 1),
            "rss_max_mib": round(max_kib / 1024, 1),
            "rss_limit_mib": round(limit_kib / 1024, 1),
            "rss_every_10s_mib": [round(kib / 1024, 1) for _, kib in samples[::10]],
            "requests_done": sum(done.values()), "requests_per_second": round(sum(done.values()) / elapsed),
            "by_kind": dict(sorted(done.items())),
            "requests_failed": len(failed),
        }, indent=2))
        for f in failed[:20]:
            print("failed:", f)
        problems = []
        if end_kib > limit_kib:
            problems.append(f"RSS grew from {start_kib} KiB to {end_kib} KiB (limit {limit_kib:.0f} KiB)")
        if failed:
            problems.append(f"{len(failed)} requests got an unexpected answer")
        for p in problems:
            print("FAIL:", p)
        return 1 if problems else 0
    finally:
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
