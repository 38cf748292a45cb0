#!/usr/bin/env python3
"""Benchmark (not run by CI): the adapter's memory and start-up at cluster scale (issue 8: hold
100k series and 10k pods in under 64 MiB).

Generates, deterministically from --seed:
  - a cluster of --pods pods (10,000) in --namespaces namespaces (50) of uneven size: inference
    Deployments (vLLM, Triton, TGI, ... with a model label), embedding/ASR/image servers, PyTorchJob
    workers, CPU services and StatefulSets, with the labels such workloads carry (app,
    app.kubernetes.io/name|instance|component|part-of|version|managed-by, pod-template-hash or
    controller-revision-hash, team, tier, env, model, training.kubeflow.org/*), served by the fake
    Kubernetes API (tests/fakes/fake_kube_apiserver.py);
  - a GPU fleet of about --series series (100,000): nodes of several types (A10G, L4, L40S,
    H100, A100, A100 with MIG 3g.40gb), each GPU (or MIG instance) with the 12 DCGM fields below
    and dcgm-exporter 4.x Kubernetes-mode labels (gpu, UUID, pci_bus_id, device, modelName,
    GPU_I_PROFILE/GPU_I_ID on MIG, Hostname, DCGM_FI_DRIVER_VERSION, container/namespace/pod when
    a pod holds it). GPU pods are placed on the nodes (a pod's GPUs on one node); about 13 % of
    the GPUs stay idle (no pod labels) and pods that do not fit stay Pending (no series). The
    nodes are split over --endpoints exporter endpoints (8) served by bench/fleet_exporter.py
    from pages rendered once (values do not change); the last --renamed-endpoints (1) of them are
    scraped with honor_labels: false, as the GPU Operator's ServiceMonitor does, so their
    workload labels become exported_namespace/exported_pod/exported_container.
The real Prometheus scrapes them every --scrape-interval (15s). The bench waits until it holds
every series (a count() query), then starts the adapter (built-in rules, default flags,
--insecure-skip-auth, --lister-kubeconfig for the fake) once per configuration:

  empty      no series, no pods        (a second, empty Prometheus; an empty pod list)
  pods       no series, all pods
  pods/4     no series, the first quarter of the pods
  series/4   a quarter of the endpoints (a third Prometheus scraping only them), no pods
  series     all series, no pods
  full       all series, all pods      (the figures the targets are about)

and for each, --repeat (5) times, a fresh adapter process: the time from its start until
/readyz?verbose shows "[+]metric-discovery ok" and "[+]pod-cache-sync ok"; VmRSS then;
--requests (500) HPA-style requests (pods/*/METRIC?labelSelector=<a GPU Deployment's selector>,
the namespaces in turn, one after another on one keep-alive TLS connection) with their p50/p99;
VmRSS and the peak VmHWM after them; and the adapter's self-metrics (gma_discovery_*,
gma_pod_cache_*; "n/a" when the binary has none). Figures are the median of the runs with their
range; the peak-RSS target is judged on the highest run and time to ready on the slowest (glibc
malloc arenas make this RSS vary by tens of MiB from run to run). For "full" it checks --check
(50) of each run's answers, chosen by the seed, against Prometheus asked directly (sum/avg by pod
of the DCGM series of the namespace, in both label forms), comparing the pods and the values
numerically (the adapter rounds to milli-units); every one must match, and every request must be
answered 200 (the bench only asks for Deployments that have data).

Per-series and per-pod costs are differences between configurations (the median of each):
from empty, (series - empty) / series and (pods - empty) / pods; marginal, (series - series/4)
and (pods - pods/4) over the units added. The checks print whether the quarter points lie on the
from-empty lines and whether series + pods - empty predicts "full". The projection to
--project-series (1M) and --project-pods (100k) is "full" + the marginal costs times what is
added (and, next to it, empty + the from-empty costs): a straight line through points 10x below
it, for the same series mix and pod objects (see the notes printed with it).

  python3 bench/scale.py [--binary build/gpu-metrics-adapter] [--json FILE]
  python3 bench/scale.py --pods 1000 --series 10000 --repeat 1   # a quick look, ~30 s
  python3 bench/scale.py --adapter-env MALLOC_ARENA_MAX=1 --adapter-arg=--threads=1   # variants

A full run takes about 3-4 minutes on 2 cores (most of it the 10k-pod adapter starts); the
Prometheus holding 100k series uses about 0.7 GB and a quarter of a core, the one with 25k (only
until its configuration has run) about 0.2 GB. The adapter is started as
tests/support/stack.py's Stack.start_adapter cannot: with default flags (that one fixes
--metrics-relist-interval=2s, a discovery of 100k series every 2 s), and the fake Kubernetes API
is waited for with a one-pod page rather than a list of every pod (ScaleStack below).
"""
import argparse
import hashlib
import http.client
import json
import math
import os
import random
import re
import shutil
import ssl
import statistics
import sys
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "support"))
from stack import Stack, free_port, http_get, kubeconfig_yaml, wait_until  # noqa: E402

RULES_FILE = os.path.join(HERE, "..", "manifests", "base", "gpu-rules.yaml")
FAKES = os.path.join(HERE, "..", "tests", "fakes")
MIB = 1024 * 1024

# The adapter's self-metrics that say what discovery and the pod cache hold (new in issue 8).
SELF_GAUGES = ["gma_discovery_series_shapes", "gma_discovery_last_reply_bytes",
               "gma_discovery_last_duration_seconds", "gma_discovery_last_series", "gma_pod_cache_pods",
               "gma_pod_cache_last_list_bytes", "gma_pod_cache_last_list_duration_seconds",
               "gma_pod_cache_bytes"]

# -- the GPU fleet -------------------------------------------------------------------------------
# dcgm-exporter fields in the GPU Operator's dcp-metrics-included.csv order: (name, type, help).
# The six the built-in rules read (GPU_UTIL, FB_USED, FB_FREE, POWER_USAGE, GR_ENGINE_ACTIVE,
# PIPE_TENSOR_ACTIVE; FB_FREE only in queries, not in a seriesQuery) are among them; MIG
# instances have no DCGM_FI_DEV_GPU_UTIL.
FIELDS = [
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active."),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active sending or receiving data."),
]
# Node types: GPU model, GPUs, MiB of framebuffer (used + free), TDP and idle watts, PCI bus ids,
# MIG instances per GPU (3g.40gb) or 0.
POOLS = {
    "a10g-4": ("NVIDIA A10G", 4, 22564, 300, 25, ["00000000:00:1B.0", "00000000:00:1C.0", "00000000:00:1D.0",
                                                  "00000000:00:1E.0"], 0),
    "a10g-8": ("NVIDIA A10G", 8, 22564, 300, 25, [f"00000000:00:{b:02X}.0" for b in range(0x16, 0x1E)], 0),
    "l4-8": ("NVIDIA L4", 8, 22563, 72, 16, [f"00000000:{b:02X}:00.0" for b in (0x38, 0x3A, 0x3C, 0x3E, 0xB8, 0xBA,
                                                                                0xBC, 0xBE)], 0),
    "l40s-4": ("NVIDIA L40S", 4, 46068, 350, 35, ["00000000:9E:00.0", "00000000:A0:00.0", "00000000:A2:00.0",
                                                  "00000000:A4:00.0"], 0),
    "h100-8": ("NVIDIA H100 80GB HBM3", 8, 81559, 700, 70, [f"00000000:{b:02X}:00.0" for b in (0x53, 0x64, 0x75, 0x86,
                                                                                                0x97, 0xA8, 0xB9, 0xCA)], 0),
    "a100-8": ("NVIDIA A100-SXM4-80GB", 8, 81920, 400, 55, [f"00000000:{a}:{b}.0" for a in ("10", "20", "90", "A0")
                                                            for b in ("1C", "1D")], 0),
    "a100-mig": ("NVIDIA A100-SXM4-80GB", 8, 40192, 400, 55, [f"00000000:{a}:{b}.0" for a in ("10", "20", "90", "A0")
                                                              for b in ("1C", "1D")], 2),
}
# Which node pools a pod asking for n GPUs lands on (its Deployment picks one).
POOLS_FOR = {1: (["a10g-4", "a10g-8", "l4-8", "l40s-4", "a100-mig"], [3, 2, 3, 1, 1]),
             2: (["l40s-4", "a10g-8", "l4-8", "h100-8"], [2, 2, 1, 1]),
             4: (["h100-8", "a100-8", "l40s-4"], [3, 2, 1]),
             8: (["h100-8", "a100-8"], [3, 2])}
DRIVERS = ["570.133.20"] * 6 + ["550.144.03"] * 3 + ["535.230.02"]

# -- the cluster ---------------------------------------------------------------------------------
TEAMS = ["search", "ads-ranking", "recsys", "llm-platform", "vision", "speech", "fraud", "maps", "translate",
         "assistant", "code-assist", "trust-safety", "genai-studio", "forecasting", "payments-risk",
         "support-bot", "docs-ai", "media", "video-understanding", "embeddings", "labeling", "research",
         "mlops", "growth", "shared-inference"]
LLMS = [("llama-3.1-8b-instruct", 1, 8), ("mistral-7b-instruct-v0.3", 1, 5), ("qwen2.5-7b-instruct", 1, 5),
        ("gemma-2-9b-it", 1, 3), ("phi-3-medium-128k-instruct", 1, 2), ("mixtral-8x7b-instruct", 2, 2),
        ("deepseek-v2-lite-chat", 2, 1), ("llama-3.1-70b-instruct", 4, 3), ("qwen2.5-72b-instruct", 4, 1),
        ("llama-3.1-405b-instruct-fp8", 8, 1)]
# (app.kubernetes.io/name, component, container, versions, models [(model, GPUs, weight)], weight)
GPU_SERVERS = [
    ("vllm", "inference-server", "vllm", ["v0.6.3", "v0.7.2", "v0.8.5"], LLMS, 8),
    ("triton", "inference-server", "triton", ["24.08", "24.12", "25.01"],
     [("ensemble-ranker", 1, 3), ("bert-large-ner", 1, 2), ("yolov8x", 1, 2), ("llama-3.1-8b-trtllm", 1, 2),
      ("llama-3.1-70b-trtllm", 4, 1)], 5),
    ("tgi", "inference-server", "text-generation-inference", ["2.3.1", "3.0.1"], LLMS, 3),
    ("sglang", "inference-server", "sglang", ["v0.4.1"], LLMS, 2),
    ("embedder", "embedding", "tei", ["1.5", "1.6"], [("bge-large-en-v1.5", 1, 3), ("e5-mistral-7b-instruct", 1, 1),
                                                     ("gte-qwen2-7b-instruct", 1, 1)], 3),
    ("reranker", "reranking", "tei", ["1.6"], [("bge-reranker-v2-m3", 1, 1)], 1),
    ("whisper", "asr", "whisper", ["v3.2.0"], [("whisper-large-v3", 1, 1)], 1),
    ("sdxl", "image-generation", "diffusers", ["0.31.0"], [("sdxl-base-1.0", 1, 2), ("flux.1-schnell", 1, 1)], 1),
]
CPU_SERVICES = [  # (name, component, tier, container, versions, StatefulSet?)
    ("api-gateway", "gateway", "frontend", "envoy", ["1.31.2"], False),
    ("router", "router", "frontend", "router", ["2.4.0", "2.5.1"], False),
    ("web", "frontend", "frontend", "nginx", ["1.27.3"], False),
    ("tokenizer", "preprocessing", "backend", "tokenizer", ["0.9.1"], False),
    ("feature-server", "feature-store", "backend", "feast", ["0.40.1"], False),
    ("batch-worker", "worker", "batch", "worker", ["3.2.0"], False),
    ("prompt-cache", "cache", "backend", "app", ["1.0.4"], False),
    ("otel-collector", "telemetry", "observability", "otel-collector", ["0.111.0"], False),
    ("model-registry", "registry", "backend", "registry", ["0.2.10"], False),
    ("redis", "cache", "cache", "redis", ["7.4.1"], True),
    ("postgres", "database", "database", "postgres", ["16.4"], True),
    ("kafka", "broker", "messaging", "kafka", ["3.8.0"], True),
]
HASH_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes uses for generated names

# -- the HPA metrics and the PromQL that answers them directly ------------------------------------
# metric -> (weight of HPAs using it, PromQL over the per-GPU series of one namespace, grouped
# by the pod label). {s} are the selector's matchers, {g} the pod label.
HPA_METRICS = {
    "gpu_utilization": (10, "avg by ({g}) (DCGM_FI_DEV_GPU_UTIL{{{s}}})"),
    "gpu_memory_used_bytes": (2, "sum by ({g}) (DCGM_FI_DEV_FB_USED{{{s}}} * 1048576)"),
    "gpu_memory_utilization": (2, "avg by ({g}) (DCGM_FI_DEV_FB_USED{{{s}}} / (DCGM_FI_DEV_FB_USED{{{s}}} + "
                                  "DCGM_FI_DEV_FB_FREE{{{s}}}) * 100)"),
    "gpu_power_watts": (2, "sum by ({g}) (DCGM_FI_DEV_POWER_USAGE{{{s}}})"),
    "gpu_engine_active": (3, "avg by ({g}) (DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{s}}})"),
    "gpu_tensor_active": (1, "avg by ({g}) (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{s}}})"),
}
# The two label forms: honor_labels: true targets (namespace/pod) and false ones (exported_*).
LABEL_FORMS = [('namespace="{ns}",pod!="",exported_pod=""', "pod"),
               ('exported_namespace="{ns}",exported_pod!=""', "exported_pod")]


def k8s_hash(rng, n):
    return "".join(rng.choice(HASH_CHARS) for _ in range(n))


def weighted(rng, items, weights):
    return rng.choices(items, weights=weights, k=1)[0]


def namespace_names(n):
    names = []
    for i in range(n):
        team, env = TEAMS[(i // 2) % len(TEAMS)], ("prod", "staging")[i % 2]
        round_ = i // (2 * len(TEAMS))
        names.append(f"{team}-{env}" + (f"-{round_ + 1}" if round_ else ""))
    return names


def generate_cluster(rng, pod_count, namespace_count, gpu_target):
    """Pods (with their labels) in Deployments/StatefulSets/PyTorchJobs. A new workload is a GPU
    one with a probability that keeps the GPUs asked for close to gpu_target. Returns
    (pods, workloads); a workload is {namespace, app, selector, pods, gpus, pool, container,
    hpa}, a pod {namespace, name, labels}."""
    namespaces = namespace_names(namespace_count)
    weights = [rng.lognormvariate(0, 0.9) * (1.0 if "-prod" in ns else 0.35) for ns in namespaces]
    sizes = [max(2, int(pod_count * w / sum(weights))) for w in weights]
    k = 0
    while sum(sizes) != pod_count:  # exact total: add to or take from the namespaces in turn
        i = k % len(sizes)
        if sum(sizes) < pod_count:
            sizes[i] += 1
        elif sizes[i] > 1:
            sizes[i] -= 1
        k += 1
        if k > 10 * pod_count + 1000:
            break
    pods, workloads = [], []
    gpus_left, pods_left = gpu_target, pod_count
    for ns, size in zip(namespaces, sizes):
        team = ns.rsplit("-", 1)[0] if not ns.split("-")[-1].isdigit() else ns.rsplit("-", 2)[0]
        env = "prod" if "-prod" in ns else "staging"
        used_apps = set()
        left = size
        while left > 0:
            p_gpu = min(0.85, max(0.0, gpus_left / max(1, pods_left) / 1.4))
            if rng.random() < p_gpu:
                if rng.random() < 0.04:
                    w = training_job(rng, ns, team, env, used_apps)
                else:
                    w = gpu_deployment(rng, ns, team, env, used_apps)
            else:
                w = cpu_workload(rng, ns, team, env, used_apps)
            replicas = min(left, w.pop("replicas"))
            make = w.pop("name_and_labels")
            w["pods"] = []
            for r in range(replicas):
                name, labels = make(r)
                pods.append({"namespace": ns, "name": name, "labels": labels})
                w["pods"].append(name)
            workloads.append(w)
            left -= replicas
            pods_left -= replicas
            gpus_left -= replicas * w["gpus"]
    return pods, workloads


def unique_app(base, used):
    app, n = base, 2
    while app in used:
        app, n = f"{base}-{n}", n + 1
    used.add(app)
    return app


def gpu_deployment(rng, ns, team, env, used):
    name, component, container, versions, models, _ = weighted(rng, GPU_SERVERS, [s[5] for s in GPU_SERVERS])
    model, gpus, _ = weighted(rng, models, [m[2] for m in models])
    short = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:30].rstrip("-")
    app = unique_app(f"{name}-{short}", used)
    pool = weighted(rng, *POOLS_FOR[gpus])
    template_hash = k8s_hash(rng, rng.choice((9, 10)))
    replicas = 1 + min(39, int(rng.expovariate(1 / 4.0)))
    helm = rng.random() < 0.6
    labels = {"app": app, "app.kubernetes.io/name": name, "app.kubernetes.io/instance": app,
              "app.kubernetes.io/component": component, "app.kubernetes.io/part-of": f"{team}-platform",
              "app.kubernetes.io/version": rng.choice(versions)}
    if helm:
        labels["app.kubernetes.io/managed-by"] = "Helm"
        labels["helm.sh/chart"] = f"{name}-{rng.choice(('0.3.1', '1.2.0', '1.4.7'))}"
    labels.update({"model": model, "team": team, "tier": "gpu-serving", "env": env,
                   "pod-template-hash": template_hash})
    selector = ({"app.kubernetes.io/name": name, "app.kubernetes.io/instance": app} if helm else {"app": app})
    return {"namespace": ns, "app": app, "selector": selector, "gpus": gpus, "pool": pool, "container": container,
            "hpa": True, "replicas": replicas,
            "name_and_labels": lambda r: (f"{app}-{template_hash}-{k8s_hash(rng, 5)}", dict(labels))}


def training_job(rng, ns, team, env, used):
    model, _, _ = weighted(rng, LLMS, [m[2] for m in LLMS])
    job = unique_app(f"ft-{re.sub(r'[^a-z0-9]+', '-', model)[:24].rstrip('-')}-{k8s_hash(rng, 5)}", used)
    replicas = rng.choice((2, 2, 4, 4, 8))
    pool = weighted(rng, *POOLS_FOR[8])

    def name_and_labels(r):
        return (f"{job}-worker-{r}", {
            "training.kubeflow.org/job-name": job, "training.kubeflow.org/operator-name": "pytorchjob-controller",
            "training.kubeflow.org/replica-type": "worker", "training.kubeflow.org/replica-index": str(r),
            "training.kubeflow.org/job-role": "master" if r == 0 else "worker",
            "model": model, "team": team, "tier": "training", "env": env})
    return {"namespace": ns, "app": job, "selector": {"training.kubeflow.org/job-name": job}, "gpus": 8,
            "pool": pool, "container": "pytorch", "hpa": False, "replicas": replicas,
            "name_and_labels": name_and_labels}


def cpu_workload(rng, ns, team, env, used):
    name, component, tier, container, versions, stateful = rng.choice(CPU_SERVICES)
    app = unique_app(name, used)
    labels = {"app": app, "app.kubernetes.io/name": name, "app.kubernetes.io/instance": app,
              "app.kubernetes.io/component": component, "app.kubernetes.io/part-of": f"{team}-platform",
              "app.kubernetes.io/version": rng.choice(versions), "team": team, "tier": tier, "env": env}
    if stateful:
        replicas = rng.choice((1, 3, 3, 5))
        revision = f"{app}-{k8s_hash(rng, 10)}"

        def name_and_labels(r):
            return (f"{app}-{r}", {**labels, "controller-revision-hash": revision,
                                   "statefulset.kubernetes.io/pod-name": f"{app}-{r}",
                                   "apps.kubernetes.io/pod-index": str(r)})
    else:
        replicas = 1 + min(29, int(rng.expovariate(1 / 3.0)))
        template_hash = k8s_hash(rng, rng.choice((9, 10)))

        def name_and_labels(r):
            return (f"{app}-{template_hash}-{k8s_hash(rng, 5)}", {**labels, "pod-template-hash": template_hash})
    return {"namespace": ns, "app": app, "selector": {"app": app}, "gpus": 0, "pool": None, "container": container,
            "hpa": False, "replicas": replicas, "name_and_labels": name_and_labels}


def series_per_slot(pool):
    return len(FIELDS) - (1 if POOLS[pool][6] else 0)  # MIG instances: no DCGM_FI_DEV_GPU_UTIL


def slots_of(pool):
    return POOLS[pool][1] * max(1, POOLS[pool][6])


def generate_fleet(rng, workloads, series_target, endpoints):
    """Nodes with GPU slots (a GPU, or a MIG instance); GPU pods placed first-fit on the node
    type their workload asks for until 92 % of the series budget, then idle nodes up to it."""
    nodes = []
    used = 0
    gpu_pods = [(w, name) for w in workloads if w["gpus"] for name in w["pods"]]
    rng.shuffle(gpu_pods)
    open_node = {}
    pending = 0

    def new_node(pool):
        i = len(nodes)
        model, gpus, fb, tdp, idle_w, pci, mig = POOLS[pool]
        node = {"index": i, "pool": pool, "hostname": f"ip-10-{16 + i // 64516}-{(i // 254) % 254 + 1}-"
                f"{i % 254 + 1}.ec2.internal", "driver": rng.choice(DRIVERS), "endpoint": i % endpoints,
                "slots": []}
        for g in range(gpus):
            gpu_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            for inst in range(max(1, mig)):
                node["slots"].append({"gpu": g, "uuid": f"GPU-{gpu_uuid}", "pci": pci[g], "model": model,
                                      "mig": ("3g.40gb", str(1 + inst)) if mig else None, "fb": fb, "tdp": tdp,
                                      "idle_w": idle_w, "pod": None})
        node["free"] = list(range(len(node["slots"])))
        nodes.append(node)
        return node

    for w, name in gpu_pods:
        node = open_node.get(w["pool"])
        if node is None or len(node["free"]) < w["gpus"]:
            cost = slots_of(w["pool"]) * series_per_slot(w["pool"])
            if used + cost > 0.92 * series_target:
                pending += 1
                continue
            node = open_node[w["pool"]] = new_node(w["pool"])
            used += cost
        for _ in range(w["gpus"]):
            node["slots"][node["free"].pop(0)]["pod"] = (w["namespace"], name, w["container"])
    pools = list(POOLS)
    while True:  # idle capacity (autoscaled-up nodes waiting for work) up to the budget
        fitting = [p for p in pools if used + slots_of(p) * series_per_slot(p) <= series_target]
        if not fitting:
            break
        pool = rng.choice(fitting)
        new_node(pool)
        used += slots_of(pool) * series_per_slot(pool)
    return nodes, pending


def render_value(field, slot, rng):
    busy = slot["pod"] is not None
    load = slot["load"]
    if field == "DCGM_FI_DEV_SM_CLOCK":
        return str(210 if not busy else int(1200 + 780 * load))
    if field == "DCGM_FI_DEV_GPU_TEMP":
        return str(int(28 + 50 * load + rng.randint(0, 4)))
    if field == "DCGM_FI_DEV_POWER_USAGE":
        return f"{slot['idle_w'] + (slot['tdp'] - slot['idle_w']) * load + rng.random():f}"
    if field == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION":
        return str(rng.randint(10 ** 9, 10 ** 12))
    if field == "DCGM_FI_DEV_GPU_UTIL":
        return str(int(round(100 * load)))
    if field == "DCGM_FI_DEV_MEM_COPY_UTIL":
        return str(int(60 * load * rng.random()))
    if field == "DCGM_FI_DEV_XID_ERRORS":
        return "0" if rng.random() > 0.002 else rng.choice(("13", "31", "43", "79"))
    if field == "DCGM_FI_DEV_FB_FREE":
        return str(slot["fb"] - slot["fb_used"])
    if field == "DCGM_FI_DEV_FB_USED":
        return str(slot["fb_used"])
    if field == "DCGM_FI_PROF_GR_ENGINE_ACTIVE":
        return f"{load * (0.85 + 0.15 * rng.random()):f}"
    if field == "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE":
        return f"{load * (0.1 + 0.5 * rng.random()):f}"
    if field == "DCGM_FI_PROF_DRAM_ACTIVE":
        return f"{load * (0.2 + 0.6 * rng.random()):f}"
    raise KeyError(field)


def render_endpoints(rng, nodes, endpoints):
    """The /metrics page of each endpoint, in dcgm-exporter's order: per field its HELP and TYPE,
    then one line per GPU of the endpoint's nodes. Returns ([bytes], [series count])."""
    per_endpoint = [[] for _ in range(endpoints)]
    for node in nodes:
        for slot in node["slots"]:
            busy = slot["pod"] is not None
            slot["load"] = round(rng.uniform(0.15, 1.0), 2) if busy else 0.0
            slot["fb_used"] = (int(slot["fb"] * rng.uniform(0.3, 0.95)) if busy else rng.randint(0, 3))
            labels = (f'gpu="{slot["gpu"]}",UUID="{slot["uuid"]}",pci_bus_id="{slot["pci"]}",device="nvidia{slot["gpu"]}",'
                      f'modelName="{slot["model"]}"')
            if slot["mig"]:
                labels += f',GPU_I_PROFILE="{slot["mig"][0]}",GPU_I_ID="{slot["mig"][1]}"'
            labels += f',Hostname="{node["hostname"]}",DCGM_FI_DRIVER_VERSION="{node["driver"]}"'
            if busy:
                ns, pod, container = slot["pod"]
                labels += f',container="{container}",namespace="{ns}",pod="{pod}"'
            slot["labels"] = labels
            per_endpoint[node["endpoint"]].append(slot)
    pages, counts = [], []
    for slots in per_endpoint:
        lines, count = [], 0
        for field, kind, help_text in FIELDS:
            lines.append(f"# HELP {field} {help_text}")
            lines.append(f"# TYPE {field} {kind}")
            for slot in slots:
                if field == "DCGM_FI_DEV_GPU_UTIL" and slot["mig"]:
                    continue
                lines.append(f"{field}{{{slot['labels']}}} {render_value(field, slot, rng)}")
                count += 1
        pages.append(("\n".join(lines) + "\n").encode())
        counts.append(count)
    return pages, counts


def hpa_requests(rng, workloads, placed_pods, count, api_version):
    """`count` HPA requests: Deployments with GPUs (and at least one placed pod) as targets, the
    namespaces taken in turn, each target's metric drawn by weight. placed_pods: (namespace, pod)
    -> "gpu" or "mig" (what its first GPU is). Returns [{namespace, metric, selector, path}]."""
    by_ns = {}
    for w in workloads:
        if w["hpa"] and any((w["namespace"], p) in placed_pods for p in w["pods"]):
            by_ns.setdefault(w["namespace"], []).append(w)
            # MIG instances have no DCGM_FI_DEV_GPU_UTIL: an HPA on MIG pods uses gpu_engine_active.
            w["has_util"] = any(placed_pods.get((w["namespace"], p)) == "gpu" for p in w["pods"])
    if not by_ns:
        return []
    names = list(HPA_METRICS)
    weights = [HPA_METRICS[m][0] for m in names]
    for targets in by_ns.values():
        rng.shuffle(targets)
        for w in targets:
            w["hpa_metric"] = weighted(rng, names, weights)
    order = sorted(by_ns)
    rng.shuffle(order)
    requests, turn = [], {ns: 0 for ns in order}
    while len(requests) < count:
        for ns in order:
            if len(requests) == count:
                break
            targets = by_ns[ns]
            w = targets[turn[ns] % len(targets)]
            turn[ns] += 1
            selector = ",".join(f"{k}={v}" for k, v in w["selector"].items())
            metric = w["hpa_metric"] if turn[ns] <= len(targets) else weighted(rng, names, weights)
            if metric == "gpu_utilization" and not w["has_util"]:
                metric = "gpu_engine_active"
            path = (f"/apis/custom.metrics.k8s.io/{api_version}/namespaces/{ns}/pods/%2A/{metric}"
                    f"?labelSelector={urllib.parse.quote(selector, safe='')}")
            requests.append({"namespace": ns, "metric": metric, "selector": w["selector"], "path": path})
    return requests


# -- measuring -----------------------------------------------------------------------------------
def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) * 1024
    return fields


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def parse_quantity(text):
    """A Kubernetes Quantity string as a float: decimal SI and binary suffixes, exponents."""
    m = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+))(?:(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?", text)
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    number, suffix, exponent = m.groups()
    scale = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
             "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
    if exponent is not None:
        return float(number) * 10 ** int(exponent)
    return float(number) * (scale[suffix] if suffix else 1)


def same_value(adapter, prometheus):
    """The adapter rounds to the nearest milli-unit; allow that and float noise."""
    return abs(adapter - prometheus) <= 0.0005 + 1e-9 * abs(prometheus)


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(len(sorted_values) * p) - 1))]


def series_queries():
    """The distinct seriesQuery selectors of the built-in rules (what discovery asks)."""
    with open(RULES_FILE) as f:
        return sorted(set(re.findall(r"seriesQuery: '([^']*)'", f.read())))


class ScaleStack(Stack):
    """tests/support/stack.py's Stack with what a run at scale needs and it does not do:
    start_adapter there fixes --metrics-relist-interval=2s and --v=1 (a discovery of 100k series
    every 2 s would be the benchmark), start_fake_kube waits with an unpaged list of every pod,
    and wait_for_series fetches every series; these use default flags, a one-pod page and
    count()."""

    def start_kube(self, pods, tag):
        port = self.ports.get("kube-" + tag) or free_port()
        self.ports["kube-" + tag] = port
        path = os.path.join(self.dir, f"pods-{tag}.json")
        with open(path, "w") as f:
            json.dump(pods, f)
        self.start("kube-" + tag, [sys.executable, os.path.join(FAKES, "fake_kube_apiserver.py"), "--port", str(port),
                            "--pods", path])
        wait_until("fake kube API", lambda: "PodList" in http_get(f"http://127.0.0.1:{port}/api/v1/pods?limit=1"),
                   timeout=120)
        kubeconfig = os.path.join(self.dir, f"lister-{tag}.kubeconfig")
        with open(kubeconfig, "w") as f:
            f.write(kubeconfig_yaml(f"http://127.0.0.1:{port}", token="lister-token"))
        return kubeconfig, port

    def start_plain_adapter(self, prometheus_url, kubeconfig, extra_args=(), extra_env=None):
        """The adapter with default flags (and `extra_args`); returns its start time
        (time.monotonic())."""
        port = free_port()
        self.ports["adapter"] = port
        cert_dir = os.path.join(self.dir, "certs")
        args = [self.binary, f"--secure-port={port}", "--bind-address=127.0.0.1", f"--cert-dir={cert_dir}",
                f"--prometheus-url={prometheus_url}", "--insecure-skip-auth", f"--lister-kubeconfig={kubeconfig}",
                *extra_args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
        env.update(extra_env or {})
        started = time.monotonic()
        self.start("adapter", args, env=env)
        self.serving_ca = os.path.join(cert_dir, "apiserver.crt")
        return started

    def count_series(self, selector):
        result = self.prometheus_query(f"count({selector})")
        return int(float(result[0]["value"][1])) if result else 0


def wait_ready(stack, started, timeout=180):
    """Polls /readyz?verbose every 50 ms; returns the seconds from `started` until the pod
    cache and the discovery checks were each seen ok, and both."""
    seen = {}
    deadline = started + timeout
    markers = {"discovery": "[+]metric-discovery ok", "pods": "[+]pod-cache-sync ok"}
    last = ""
    while time.monotonic() < deadline:
        if stack.procs["adapter"].poll() is not None:
            raise RuntimeError(f"the adapter exited ({stack.procs['adapter'].returncode}):\n"
                               f"{stack.log('adapter')[-3000:]}")
        if os.path.exists(stack.serving_ca):
            try:
                status, body = stack.https_get("/readyz?verbose")
            except (OSError, ValueError):  # the certificate being written
                status, body = 0, ""
            now = time.monotonic()
            last = body
            for key, marker in markers.items():
                if key not in seen and marker in body:
                    seen[key] = round(now - started, 3)
            if len(seen) == len(markers):
                return {"ready_s": max(seen.values()), "pod_cache_synced_s": seen["pods"],
                        "discovery_done_s": seen["discovery"]}
        time.sleep(0.05)
    raise TimeoutError(f"adapter not ready after {timeout} s: {last}")


def adapter_connection(stack):
    context = ssl.create_default_context(cafile=stack.serving_ca)
    return http.client.HTTPSConnection("127.0.0.1", stack.ports["adapter"], context=context, timeout=60)


def run_load(stack, requests, keep):
    """The requests one after another on one keep-alive connection. Returns latencies (ms),
    status counts and the bodies of the requests whose index is in `keep`."""
    connection = adapter_connection(stack)
    latencies, statuses, bodies = [], {}, {}
    for i, request in enumerate(requests):
        started = time.perf_counter()
        try:
            connection.request("GET", request["path"])
            response = connection.getresponse()
            body = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as e:
            status, body = 0, str(e).encode()
            connection.close()
            connection = adapter_connection(stack)
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if i in keep:
            bodies[i] = (status, body)
    connection.close()
    return latencies, statuses, bodies


def self_metrics(stack):
    status, body = stack.https_get("/metrics")
    found = {}
    if status != 200:
        return found
    for line in body.splitlines():
        if line.startswith("gma_") and " " in line:
            name, value = line.rsplit(" ", 1)
            try:
                found[name] = float(value)
            except ValueError:
                pass
    return found


def expected_values(prometheus, namespace, metric):
    """pod -> (value, its pod label) from Prometheus itself, both label forms, NaN/Inf left out as
    the adapter does."""
    values = {}
    for matchers, group in LABEL_FORMS:
        promql = HPA_METRICS[metric][1].format(s=matchers.format(ns=namespace), g=group)
        for sample in prometheus.prometheus_query(promql):
            value = float(sample["value"][1])
            if math.isfinite(value):
                values[sample["metric"][group]] = (value, group)
    return values


def check_answers(prometheus, requests, bodies, pods_by_ns):
    """Compares each kept answer with Prometheus: same pods (those of the namespace matching the
    selector that have data), same values numerically. Returns (answers checked, pod values
    compared, of them from exported_* series, [mismatch])."""
    cache, mismatches, compared, exported = {}, [], 0, 0
    for i, (status, body) in sorted(bodies.items()):
        request = requests[i]
        ns, metric = request["namespace"], request["metric"]
        if (ns, metric) not in cache:
            cache[ns, metric] = expected_values(prometheus, ns, metric)
        data = cache[ns, metric]
        selected = {name for name, labels in pods_by_ns.get(ns, {}).items()
                    if all(labels.get(k) == v for k, v in request["selector"].items())}
        expected = {pod: v for pod, (v, _) in data.items() if pod in selected}
        problem = None
        if not expected:
            problem = "Prometheus has no data for the selected pods (the bench chose a bad request)"
        elif status != 200:
            problem = f"HTTP {status}: {body[:200]!r}"
        else:
            items = json.loads(body)["items"]
            got = {item["describedObject"]["name"]: item["value"] for item in items}
            elsewhere = [i["describedObject"].get("namespace") for i in items
                         if i["describedObject"].get("namespace") != ns]
            if elsewhere:
                problem = f"items for namespace {elsewhere[0]}"
            elif len(got) != len(items):
                problem = "a pod twice"
            elif set(got) != set(expected):
                problem = (f"pods differ: missing {sorted(set(expected) - set(got))[:5]}, "
                           f"extra {sorted(set(got) - set(expected))[:5]}")
            else:
                compared += len(got)
                exported += sum(1 for pod in got if data[pod][1] == "exported_pod")
                for pod, text in got.items():
                    if not same_value(parse_quantity(text), expected[pod]):
                        problem = f"{pod}: adapter {text} = {parse_quantity(text)}, Prometheus {expected[pod]}"
                        break
        if problem:
            mismatches.append({"request": i, "path": request["path"], "problem": problem})
    return len(bodies), compared, exported, mismatches


# -- the run -------------------------------------------------------------------------------------
CONFIGS = {  # name -> (Prometheus, pods)
    "empty": ("empty", "none"),
    "pods": ("empty", "all"),
    "pods/4": ("empty", "quarter"),
    "series/4": ("quarter", "none"),
    "series": ("full", "none"),
    "full": ("full", "all"),
}
ORDER = ["empty", "pods", "pods/4", "series/4", "full", "series"]


def measure_config(name, stack, prometheus, kubeconfig, requests, keep, series, pods, attempt=0, args=None):
    print(f"[{name}{' #' + str(attempt + 1) if attempt else ''}] adapter against {series} series and {pods} pods ...",
          flush=True)
    started = stack.start_plain_adapter(prometheus.prometheus_url, kubeconfig, args.adapter_arg if args else (),
                                        dict(e.split("=", 1) for e in args.adapter_env) if args else None)
    pid = stack.procs["adapter"].pid
    ready = wait_ready(stack, started)
    at_ready = proc_status(pid)
    cpu_ready = cpu_seconds(pid)
    latencies, statuses, bodies = run_load(stack, requests, keep)
    after = proc_status(pid)
    gauges = self_metrics(stack)
    cpu_end = cpu_seconds(pid)
    stack.stop("adapter")
    s = sorted(latencies)
    result = {"config": name, "series": series, "pods": pods, **ready,
              "rss_ready": at_ready["VmRSS"], "rss_anon_ready": at_ready.get("RssAnon"),
              "rss_after_load": after["VmRSS"], "rss_anon_after_load": after.get("RssAnon"),
              "rss_file_after_load": after.get("RssFile"), "hwm": after["VmHWM"],
              "cpu_s_to_ready": round(cpu_ready, 2), "cpu_s_total": round(cpu_end, 2),
              "requests": len(latencies), "statuses": {str(k): v for k, v in sorted(statuses.items())},
              "p50_ms": round(statistics.median(s), 2) if s else None,
              "p99_ms": round(percentile(s, 0.99), 2) if s else None,
              "max_ms": round(s[-1], 2) if s else None,
              "self_metrics": {g: gauges.get(g) for g in SELF_GAUGES},
              "discovered_metrics": {k.split('"')[1]: v for k, v in gauges.items()
                                     if k.startswith("gma_discovered_metrics{")},
              "cache_requests": {k.split('"')[1]: v for k, v in gauges.items()
                                 if k.startswith("gma_metric_cache_requests_total{")}}
    print(f"[{name}] ready {result['ready_s']} s, RSS {mib(result['rss_ready'])} -> {mib(result['rss_after_load'])}"
          f" MiB, peak {mib(result['hwm'])} MiB, p50/p99 {result['p50_ms']}/{result['p99_ms']} ms, "
          f"statuses {result['statuses']}", flush=True)
    return result, bodies


FIGURES = ("ready_s", "pod_cache_synced_s", "discovery_done_s", "rss_ready", "rss_anon_ready", "rss_after_load",
           "rss_anon_after_load", "rss_file_after_load", "hwm", "cpu_s_to_ready", "cpu_s_total", "p50_ms", "p99_ms",
           "max_ms")


def combine(runs):
    """One configuration's runs as one record: the median of each figure and its range [min, max],
    the statuses and mismatches of every run, the self-metrics of the last."""
    out = dict(runs[-1])
    for key in FIGURES:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = statistics.median_low(values) if key.startswith(("rss", "hwm")) else round(
                statistics.median(values), 3)
            out[key + "_range"] = [min(values), max(values)]
    if len(runs) > 1:
        statuses = {}
        for r in runs:
            for k, v in r["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
        out["statuses"] = statuses
        out["requests"] = sum(r["requests"] for r in runs)
        if "checked" in out:
            out["checked"] = sum(r["checked"] for r in runs)
            out["values_compared"] = sum(r["values_compared"] for r in runs)
            out["values_compared_exported"] = sum(r["values_compared_exported"] for r in runs)
            out["mismatches"] = [dict(m, run=i) for i, r in enumerate(runs) for m in r["mismatches"]]
    out["runs"] = runs
    return out


def pod_list_bytes(port):
    """What a full LIST of the fake's pods weighs in pages of 500, as full Pods and as
    PartialObjectMetadata (when the fake serves that form), and how long the fake takes."""
    out = {}
    for form, accept in (("full", "application/json"),
                         ("metadata", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
                                      "application/json")):
        total, pages, token, kind = 0, 0, None, None
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            target = "/api/v1/pods?limit=500" + (f"&continue={urllib.parse.quote(token)}" if token else "")
            connection.request("GET", target, headers={"Accept": accept})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                break
            page = json.loads(body)
            kind = page.get("kind")
            total += len(body)
            pages += 1
            token = page.get("metadata", {}).get("continue")
            if not token:
                break
        connection.close()
        out[form] = {"kind": kind, "bytes": total, "pages": pages, "seconds": round(time.monotonic() - started, 2)}
    return out


def mib(n):
    return None if n is None else round(n / MIB, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(HERE, "..", "build", "gpu-metrics-adapter"))
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--series", type=int, default=100000, help="DCGM series in Prometheus (about)")
    parser.add_argument("--endpoints", type=int, default=8)
    parser.add_argument("--renamed-endpoints", type=int, default=1,
                        help="of the endpoints, how many are scraped with honor_labels: false")
    parser.add_argument("--scrape-interval", default="15s")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--check", type=int, default=50, help="answers of 'full' checked against Prometheus")
    parser.add_argument("--api-version", default="v1beta1", choices=("v1beta1", "v1beta2"))
    parser.add_argument("--configs", default=",".join(ORDER),
                        help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument("--project-series", type=int, default=1_000_000)
    parser.add_argument("--project-pods", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5,
                        help="adapter runs per configuration; figures are their medians")
    parser.add_argument("--adapter-arg", action="append", default=[], metavar="FLAG",
                        help="an extra adapter flag, e.g. --adapter-arg=--threads=1 (repeatable)")
    parser.add_argument("--adapter-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for the adapter, e.g. MALLOC_ARENA_MAX=1 (repeatable)")
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, pages)")
    parser.add_argument("--report", metavar="JSON", help="print the report of an earlier run's --json file and exit")
    args = parser.parse_args()
    if args.report:
        with open(args.report) as f:
            result = json.load(f)
        result["costs"] = costs(result, args)
        print_report(result, args)
        return
    configs = [c for c in ORDER if c in args.configs.split(",")]
    unknown = set(args.configs.split(",")) - set(ORDER)
    if unknown:
        sys.exit(f"unknown configurations: {sorted(unknown)}")
    if not shutil.which("prometheus"):
        sys.exit("the prometheus server is not installed (apt-get install prometheus)")
    binary = os.path.abspath(args.binary)
    began = time.time()
    loadavg_start = open("/proc/loadavg").read().split()[:3]

    # -- generate ---------------------------------------------------------------------------
    rng = random.Random(args.seed)
    per_slot = sum(series_per_slot(p) * slots_of(p) for p in POOLS) / sum(slots_of(p) for p in POOLS)
    pods, workloads = generate_cluster(rng, args.pods, args.namespaces, 0.87 * args.series / per_slot)
    nodes, pending = generate_fleet(rng, workloads, args.series, args.endpoints)
    pages, counts = render_endpoints(rng, nodes, args.endpoints)
    slots = [s for n in nodes for s in n["slots"]]
    placed = {}
    for slot in slots:
        if slot["pod"]:
            placed.setdefault((slot["pod"][0], slot["pod"][1]), "mig" if slot["mig"] else "gpu")
    requests = hpa_requests(rng, workloads, placed, args.requests, args.api_version)
    keep = set(rng.sample(range(len(requests)), min(args.check, len(requests))))
    quarter_endpoints = list(range(max(1, args.endpoints // 4)))
    quarter_pods = pods[:len(pods) // 4]
    pods_by_ns = {}
    for p in pods:
        pods_by_ns.setdefault(p["namespace"], {})[p["name"]] = p["labels"]
    pod_json = json.dumps(pods)
    scenario = {
        "seed": args.seed, "namespaces": args.namespaces, "pods": len(pods),
        "gpu_pods": sum(len(w["pods"]) for w in workloads if w["gpus"]),
        "gpu_pods_placed": len(placed), "gpu_pods_pending": pending,
        "workloads": len(workloads), "hpa_targets": len({(r["namespace"], tuple(r["selector"].items()))
                                                         for r in requests}),
        "nodes": len(nodes), "gpu_slots": len(slots), "mig_slots": sum(1 for s in slots if s["mig"]),
        "idle_slots": sum(1 for s in slots if not s["pod"]), "series": sum(counts),
        "series_per_endpoint": counts, "page_bytes": sum(len(p) for p in pages),
        "quarter_series": sum(counts[i] for i in quarter_endpoints), "quarter_pods": len(quarter_pods),
        "pod_list_json_bytes": len(pod_json), "labels_per_pod": round(sum(len(p["labels"]) for p in pods) / max(1, len(pods)), 1),
        "dcgm_fields": len(FIELDS), "requests": len(requests), "checked": len(keep),
        "request_namespaces": len({r["namespace"] for r in requests}),
        "renamed_endpoints": args.renamed_endpoints, "endpoints": args.endpoints,
        "scrape_interval": args.scrape_interval, "repeat": args.repeat,
        "fake_kube_apiserver_sha256": hashlib.sha256(
            open(os.path.join(FAKES, "fake_kube_apiserver.py"), "rb").read()).hexdigest()[:16],
    }
    print(f"generated in {time.time() - began:.1f} s: {scenario['pods']} pods ({scenario['gpu_pods_placed']} "
          f"holding GPUs, {pending} pending) in {args.namespaces} namespaces, {scenario['nodes']} nodes, "
          f"{scenario['gpu_slots']} GPUs/MIG instances ({scenario['idle_slots']} idle), {scenario['series']} series "
          f"({scenario['page_bytes'] / MIB:.1f} MiB of text over {args.endpoints} endpoints)", flush=True)

    # -- start the parts --------------------------------------------------------------------
    stack = ScaleStack(binary, scrape_interval=args.scrape_interval)
    extra = []  # the empty and the quarter Prometheus
    result = {"binary": binary, "adapter_args": args.adapter_arg, "adapter_env": args.adapter_env,
              "command": " ".join(sys.argv), "scenario": scenario, "configs": {}, "loadavg_start": loadavg_start}
    try:
        page_args = []
        for i, page in enumerate(pages):
            path = os.path.join(stack.dir, f"endpoint-{i}.prom")
            with open(path, "wb") as f:
                f.write(page)
            stack.ports[f"endpoint-{i}"] = free_port()
            page_args += ["--serve", f"{stack.ports[f'endpoint-{i}']}={path}"]
        stack.start("fleet", [sys.executable, os.path.join(HERE, "fleet_exporter.py"), *page_args])
        wait_until("the fleet exporter", lambda: all(http_get(f"http://127.0.0.1:{stack.ports[f'endpoint-{i}']}/health")
                                                     == "OK" for i in range(args.endpoints)), timeout=30)

        def jobs(indexes):
            out = []
            for i in indexes:
                renamed = i >= args.endpoints - args.renamed_endpoints
                job = {"name": f"dcgm-exporter-{i}", "exporter": f"endpoint-{i}", "honor_labels": not renamed}
                if renamed:  # Kubernetes SD's labels of the exporter pod, renamed away from the series'
                    job["target_labels"] = {"namespace": "gpu-operator", "pod": f"nvidia-dcgm-exporter-{i:x}z7kq",
                                            "container": "nvidia-dcgm-exporter"}
                out.append(job)
            return out

        need = {CONFIGS[c][0] for c in configs}
        prometheus = {}
        if "full" in need:
            stack.start_prometheus(jobs(range(args.endpoints)))
            prometheus["full"] = stack
        for kind in ("quarter", "empty"):
            if kind in need:
                other = ScaleStack(binary, scrape_interval=args.scrape_interval)
                other.ports.update({k: v for k, v in stack.ports.items() if k.startswith("endpoint-")})
                other.start_prometheus(jobs(quarter_endpoints) if kind == "quarter" else [])
                extra.append(other)
                prometheus[kind] = other
        expected_series = {"full": scenario["series"], "quarter": scenario["quarter_series"], "empty": 0}
        pod_sets = {"none": [], "all": pods, "quarter": quarter_pods}
        kube = {}

        def ingested(kind):
            """Waits until that Prometheus holds every series."""
            wait_until(f"{expected_series[kind]} series in the {kind} Prometheus",
                       lambda: prometheus[kind].count_series('{__name__=~"DCGM_FI_.+"}') >= expected_series[kind],
                       timeout=300, interval=1.0)

        discovered_series = None
        for name in configs:
            kind, pod_set = CONFIGS[name]
            ingested(kind)
            if kind == "full" and discovered_series is None:
                discovered_series = sum(stack.count_series(q) for q in series_queries())
                scenario["series_seen_by_discovery"] = discovered_series
            if pod_set not in kube:
                kube[pod_set], port = stack.start_kube(pod_sets[pod_set], pod_set)
                if pod_set == "all":
                    scenario["pod_list"] = pod_list_bytes(port)
            runs = []
            for attempt in range(args.repeat):
                measured, bodies = measure_config(name, stack, prometheus[kind], kube[pod_set], requests,
                                                  keep if name == "full" else set(), expected_series[kind],
                                                  len(pod_sets[pod_set]), attempt, args)
                if name == "full":
                    checked, compared, exported, mismatches = check_answers(stack, requests, bodies, pods_by_ns)
                    measured.update(checked=checked, values_compared=compared, values_compared_exported=exported,
                                    mismatches=mismatches)
                    print(f"[full] checked {checked} answers ({compared} pod values, {exported} of them from "
                          f"exported_* series) against Prometheus: {len(mismatches)} mismatches", flush=True)
                runs.append(measured)
            result["configs"][name] = combine(runs)
            if kind == "quarter" and not any(CONFIGS[c][0] == "quarter" for c in configs[configs.index(name) + 1:]):
                prometheus["quarter"].close()  # its scrapes would disturb the rest
                extra.remove(prometheus["quarter"])
            if kind == "empty" and not any(CONFIGS[c][0] == "empty" for c in configs[configs.index(name) + 1:]):
                prometheus["empty"].close()
                extra.remove(prometheus["empty"])
        if "full" in prometheus:
            pid = stack.procs["prometheus"].pid
            status = proc_status(pid)
            result["prometheus"] = {"rss": status["VmRSS"], "hwm": status["VmHWM"], "cpu_s": round(cpu_seconds(pid), 1),
                                    "scrape_duration_max_s": max(float(r["value"][1]) for r in
                                                                 stack.prometheus_query("scrape_duration_seconds")),
                                    "targets_up": sum(float(r["value"][1]) for r in stack.prometheus_query("up"))}
        result["fleet_exporter_rss"] = proc_status(stack.procs["fleet"].pid)["VmRSS"]
        result["loadavg"] = open("/proc/loadavg").read().split()[:3]
    except Exception:
        for s in [stack, *extra]:
            for name in list(s.procs):
                print(f"--- {name} log ---\n{s.log(name)[-2000:]}", file=sys.stderr)
        raise
    finally:
        for other in extra:
            other.close()
        if args.keep:
            print(f"kept {stack.dir}")
        stack.close(keep_dir=args.keep)
    result["elapsed_s"] = round(time.time() - began, 1)
    result["costs"] = costs(result, args)
    print_report(result, args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"results written to {args.json}")
    full = result["configs"].get("full")
    sys.exit(0 if full is None or not full.get("mismatches") and set(full["statuses"]) == {"200"} else 1)


def costs(result, args):
    """Bytes per series and per pod, two ways: from the empty adapter ((series - empty) / series,
    (pods - empty) / pods: fixed costs that come with the first pod or series included) and
    marginal (between the quarter and the whole: fixed costs left out). The projection is the
    measured "full" point plus the marginal costs times what is added; the one from empty is
    shown next to it. Checks: the quarter points against the from-empty line, and "full" against
    empty + both differences (do the costs add up?). Each figure is the median of a configuration's
    runs: which malloc arenas a run's allocations land in moves its RSS by tens of MiB, and the
    median of five is stable from one bench run to the next where the lowest is not."""
    c = result["configs"]  # each figure the median of the configuration's runs
    out = {}
    for figure in ("rss_ready", "rss_after_load", "hwm"):
        f = {}
        e, se, po, fu = (c.get(k) for k in ("empty", "series", "pods", "full"))
        sq, pq = c.get("series/4"), c.get("pods/4")
        if e and se:
            f["per_series_from_empty"] = (se[figure] - e[figure]) / max(1, se["series"])
        if e and po:
            f["per_pod_from_empty"] = (po[figure] - e[figure]) / max(1, po["pods"])
        if se and sq and se["series"] > sq["series"]:
            f["per_series_marginal"] = (se[figure] - sq[figure]) / (se["series"] - sq["series"])
        if po and pq and po["pods"] > pq["pods"]:
            f["per_pod_marginal"] = (po[figure] - pq[figure]) / (po["pods"] - pq["pods"])
        checks = {}
        if e and se and po and fu:
            predicted = se[figure] + po[figure] - e[figure]
            checks["full = series + pods - empty"] = (predicted, fu[figure])
        if e and sq and "per_series_from_empty" in f:
            checks["series/4 on the line from empty"] = (e[figure] + f["per_series_from_empty"] * sq["series"],
                                                         sq[figure])
        if e and pq and "per_pod_from_empty" in f:
            checks["pods/4 on the line from empty"] = (e[figure] + f["per_pod_from_empty"] * pq["pods"], pq[figure])
        f["checks"] = {k: {"predicted": round(p), "measured": m, "error_pct": round(100 * (m - p) / p, 1)}
                       for k, (p, m) in checks.items()}
        if fu and "per_series_marginal" in f and "per_pod_marginal" in f:
            f["projection_marginal"] = round(fu[figure] + f["per_series_marginal"] * (args.project_series - fu["series"])
                                             + f["per_pod_marginal"] * (args.project_pods - fu["pods"]))
        if e and "per_series_from_empty" in f and "per_pod_from_empty" in f:
            f["projection_from_empty"] = round(e[figure] + f["per_series_from_empty"] * args.project_series
                                               + f["per_pod_from_empty"] * args.project_pods)
        out[figure] = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in f.items()}
    discovered = result["scenario"].get("series_seen_by_discovery")
    if discovered and "series" in c and "empty" in c:
        out["per_discovered_series_from_empty_rss_after_load"] = round(
            (c["series"]["rss_after_load"] - c["empty"]["rss_after_load"]) / discovered, 1)
    return out


def spread(x, key, fmt):
    """' (a-b)' when the configuration ran more than once."""
    r = x.get(key + "_range")
    return f" ({fmt(r[0])}-{fmt(r[1])})" if r and len(x.get("runs", [])) > 1 else ""


def print_report(r, args):
    s, c = r["scenario"], r["configs"]
    full = c.get("full")
    print()
    print(f"binary: {r['binary']}" + (f" {' '.join(r['adapter_args'])}" if r["adapter_args"] else "")
          + (f" (environment {' '.join(r['adapter_env'])})" if r["adapter_env"] else ""))
    print(f"scenario (seed {s['seed']}): {s['pods']} pods in {s['namespaces']} namespaces ({s['labels_per_pod']} "
          f"labels each), {s['series']} DCGM series ({s['dcgm_fields']} fields; "
          f"{s.get('series_seen_by_discovery', 'n/a')} of them match the built-in rules' seriesQuery) from "
          f"{s['gpu_slots']} GPUs/MIG instances on {s['nodes']} nodes ({s['idle_slots']} idle; {s['gpu_pods_placed']} "
          f"pods hold GPUs, {s['gpu_pods_pending']} pending), {s['endpoints']} endpoints ({s['renamed_endpoints']} "
          f"honor_labels: false), scrape every {s['scrape_interval']}; {s['requests']} HPA requests over "
          f"{s['request_namespaces']} namespaces and {s['hpa_targets']} Deployments; {s['repeat']} adapter run(s) "
          f"per configuration")
    if "pod_list" in s:
        parts = [f"{form} ({v['kind']}) {v['bytes'] / MIB:.1f} MiB = {v['bytes'] / max(1, s['pods']):,.0f} B/pod in "
                 f"{v['pages']} pages, {v['seconds']} s to a Python client" for form, v in s["pod_list"].items()]
        print(f"the fake Kubernetes API's LIST of all pods (fake_kube_apiserver.py sha256 "
              f"{s['fake_kube_apiserver_sha256']}): " + "; ".join(parts))
    print()
    if full:
        statuses = full["statuses"]
        ok200 = statuses.get("200", 0)
        correct = full.get("checked", 0) - len(full.get("mismatches", []))
        rows = [
            (f"Peak RSS (VmHWM), {full['series'] / 1000:.0f}k series + {full['pods'] / 1000:.0f}k pods",
             f"{mib(full['hwm_range'][1])} MiB, the highest of {len(full['runs'])} run(s) (median {mib(full['hwm'])}, "
             f"lowest {mib(full['hwm_range'][0])})", "≤ 64 MiB", full["hwm_range"][1] <= 64 * MIB),
            ("Time to ready after Prometheus has the data (discovery + pod cache)",
             f"{full['ready_s_range'][1]} s, the slowest run (median {full['ready_s']}: pods synced "
             f"{full['pod_cache_synced_s']} s, discovery {full['discovery_done_s']} s)", "≤ 30 s",
             full["ready_s_range"][1] <= 30),
            ("Correct answers", f"{correct}/{full.get('checked', 0)} checked against Prometheus "
             f"({full.get('values_compared', 0)} pod values, {full.get('values_compared_exported', 0)} from "
             f"exported_* series); "
             f"{ok200}/{full['requests']} answered 200", "every request",
             correct == full.get("checked", 0) and ok200 == full["requests"]),
        ]
        print("| Figure | Measured | Target | |")
        print("|---|---|---|---|")
        for what, value, target, ok in rows:
            print(f"| {what} | {value} | {target} | {'met' if ok else 'MISSED'} |")
        print()
        print(f"full: VmRSS at ready {mib(full['rss_ready'])} MiB, after the HPA requests "
              f"{mib(full['rss_after_load'])} MiB (anon {mib(full['rss_anon_after_load'])}, file "
              f"{mib(full['rss_file_after_load'])}); latency p50 {full['p50_ms']} ms, p99 {full['p99_ms']} ms, max "
              f"{full['max_ms']} ms; cache (last run) {full['cache_requests'] or 'n/a'}; CPU {full['cpu_s_to_ready']} s "
              f"to ready")
        for m in full.get("mismatches", [])[:10]:
            print(f"  MISMATCH request {m['request']} {m['path']}: {m['problem']}")
        print()
    print("Each configuration: median (lowest-highest) of its runs.")
    print()
    print("| Configuration | Series | Pods | Ready s | VmRSS at ready MiB | VmRSS after load MiB | VmHWM MiB | "
          "p50 / p99 ms | Statuses |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in ORDER:
        if name in c:
            x = c[name]
            print(f"| {name} | {x['series']} | {x['pods']} | {x['ready_s']}{spread(x, 'ready_s', str)} | "
                  f"{mib(x['rss_ready'])}{spread(x, 'rss_ready', mib)} | "
                  f"{mib(x['rss_after_load'])}{spread(x, 'rss_after_load', mib)} | {mib(x['hwm'])}"
                  f"{spread(x, 'hwm', mib)} | {x['p50_ms']} / {x['p99_ms']} | {x['statuses']} |")
    print()
    if full:
        print("Self-metrics (full, last run, after the load):")
        for g in SELF_GAUGES:
            v = full["self_metrics"].get(g)
            print(f"  {g} {'n/a' if v is None else f'{v:,.0f}' if v == int(v) else f'{v:g}'}")
        print()
    k = r.get("costs")
    if k and any(len(k[f]) > 1 for f in ("rss_ready", "rss_after_load", "hwm")):
        def b(value):
            return "n/a" if value is None else f"{value:,.0f} B"

        def m(value):
            return "n/a" if value is None else f"{value / MIB:,.0f} MiB"
        print(f"Costs (bytes of the figure per series / per pod; each configuration's median) and projection "
              f"to {args.project_series:,} series and {args.project_pods:,} pods:")
        print()
        print("| Figure | per series, from empty | per series, marginal | per pod, from empty | per pod, marginal | "
              "projection: full + marginal | projection: empty + from-empty |")
        print("|---|---|---|---|---|---|---|")
        for figure, label in (("rss_ready", "VmRSS at ready"), ("rss_after_load", "VmRSS after load"),
                              ("hwm", "VmHWM (peak)")):
            f = k[figure]
            print(f"| {label} | {b(f.get('per_series_from_empty'))} | {b(f.get('per_series_marginal'))} | "
                  f"{b(f.get('per_pod_from_empty'))} | {b(f.get('per_pod_marginal'))} | "
                  f"{m(f.get('projection_marginal'))} | {m(f.get('projection_from_empty'))} |")
        print()
        for figure, label in (("rss_after_load", "VmRSS after load"), ("hwm", "VmHWM")):
            for name, v in k[figure]["checks"].items():
                print(f"  check, {label}: {name}: predicted {mib(v['predicted'])} MiB, measured {mib(v['measured'])} "
                      f"MiB ({v['error_pct']:+.1f} %)")
        if "per_discovered_series_from_empty_rss_after_load" in k:
            print(f"  per series that discovery receives (matching a seriesQuery; "
                  f"{s.get('series_seen_by_discovery')} of {s['series']}): "
                  f"{k['per_discovered_series_from_empty_rss_after_load']:,.0f} B of VmRSS after load, from empty")
        print("  How the projection is made: straight lines through the measured points, 10x below the projected "
              "size. 'from empty' charges fixed costs that come with the first pods or series (allocator arenas, "
              "buffers) to every unit; 'marginal' (quarter -> whole) leaves them out and is added to the measured "
              "'full' point. Both assume linear growth (the checks above show how far that holds), the same series "
              f"mix ({s['dcgm_fields']} DCGM fields, {100 * s.get('series_seen_by_discovery', 0) / max(1, s['series']):.0f}"
              f" % of the series read by discovery, {100 * s['idle_slots'] / max(1, s['gpu_slots']):.0f} % idle GPUs) "
              f"and the same pod objects ({s.get('pod_list', {}).get('full', {}).get('bytes', 0) / max(1, s['pods']):,.0f}"
              " B each as a full Pod), and that the peaks of discovery and the pod list add up, which transient "
              "buffers need not do.")
        print()
    if "prometheus" in r:
        p = r["prometheus"]
        print(f"Prometheus (full): RSS {mib(p['rss'])} MiB (peak {mib(p['hwm'])}), CPU {p['cpu_s']} s over the run, "
              f"slowest scrape {p['scrape_duration_max_s']:.2f} s, {p['targets_up']:.0f} targets up; "
              f"fleet exporter RSS {mib(r['fleet_exporter_rss'])} MiB; load average {' '.join(r.get('loadavg_start', []))} "
              f"at the start, {' '.join(r['loadavg'])} at the end")
    print(f"elapsed {r['elapsed_s']} s")


if __name__ == "__main__":
    main()
