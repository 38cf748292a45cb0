#!/usr/bin/env python3
"""A synthetic dcgm-exporter (and vLLM metrics endpoint) for tests and the demo.

Serves /metrics in the Prometheus text format with the series, label names and label order of
NVIDIA dcgm-exporter 4.x in Kubernetes mode (see shared/reference/gpu-metrics.md section 1.4).

  --scenario FILE   JSON describing GPUs, vLLM and Triton servers; re-read on every scrape so a
                    test can change values while Prometheus runs.

Scenario keys beyond the basics (all optional, so older scenarios render as before):
  gpus[].labels           extra labels after the pod attributes, as --kubernetes-enable-pod-labels
                          adds them (e.g. {"gpu_type": "a10g"})
  vllm[].gpu_cache        served as vllm:gpu_cache_usage_perc, vLLM's name for the KV-cache use
                          before vllm:kv_cache_usage_perc (key "kv")
  triton[]                {namespace, pod, model, queue_us_per_s, success_per_s, compute_us_per_s}:
                          Triton's cumulative counters nv_inference_queue_duration_us,
                          nv_inference_request_success and nv_inference_compute_infer_duration_us,
                          growing at those rates since the exporter started, so rate() over any
                          window gives them back.
  --demo            built-in pods whose load changes over time (sine waves), for the demo.
"""
import argparse
import json
import math
import time

from replies import serve_metrics

STARTED = time.time()

DEMO = {
    "hostname": "gpu-node-1",
    "gpus": [
        {"gpu": 0, "namespace": "inference", "pod": "triton-5d8f7c9b6-x2kqp", "container": "triton"},
        {"gpu": 1, "namespace": "inference", "pod": "triton-5d8f7c9b6-x2kqp", "container": "triton"},
        {"gpu": 2, "namespace": "inference", "pod": "triton-5d8f7c9b6-7hbzt", "container": "triton"},
        {"gpu": 3, "namespace": "llm", "pod": "vllm-7c9d-4k2mn", "container": "vllm"},
        {"gpu": 4},
    ],
    "vllm": [{"namespace": "llm", "pod": "vllm-7c9d-4k2mn", "model_name": "llama-3-8b"}],
}


def demo_values(scenario):
    """Fills in values that move slowly, as real inference load does."""
    t = time.time()
    for i, g in enumerate(scenario["gpus"]):
        busy = "pod" in g
        load = (0.5 + 0.45 * math.sin(t / 60.0 + i)) if busy else 0.0
        g.update(util=round(100 * load), fb_used=int(2000 + 18000 * load) if busy else 0,
                 fb_free=int(22564 - (2000 + 18000 * load)) if busy else 22564,
                 power=round(60 + 240 * load, 3), engine=round(load, 6), tensor=round(0.8 * load, 6))
    for i, v in enumerate(scenario["vllm"]):
        load = 0.5 + 0.5 * math.sin(t / 45.0 + i)
        v.update(waiting=int(12 * load), kv=round(load * 0.9, 6))
    return scenario


FIELDS = [
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", "util", "{:d}"),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", "fb_free", "{:d}"),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", "fb_used", "{:d}"),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", "power", "{:f}"),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.", "engine", "{:f}"),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active.", "tensor", "{:f}"),
]


def format_value(fmt, value):
    if isinstance(value, str):  # "NaN", "+Inf" as the exporter can print them
        return value
    return fmt.format(int(value) if fmt == "{:d}" else float(value))


def render(scenario):
    host = scenario.get("hostname", "gpu-node-1")
    host_label = scenario.get("hostname_label", "Hostname")
    lines = []
    for name, kind, help_text, key, fmt in FIELDS:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for g in scenario.get("gpus", []):
            if key not in g:
                continue
            n = g["gpu"]
            labels = (f'gpu="{n}",UUID="GPU-{n:08d}-2d4a-4e0f-9a51-0c7d2b3e4f56",'
                      f'pci_bus_id="00000000:{n:02X}:1E.0",device="nvidia{n}",modelName="NVIDIA A10G"')
            if "mig_profile" in g:
                labels += f',GPU_I_PROFILE="{g["mig_profile"]}",GPU_I_ID="{g.get("mig_id", 1)}"'
            labels += f',{host_label}="{host}",DCGM_FI_DRIVER_VERSION="570.133.20"'
            if "pod" in g:
                labels += f',container="{g.get("container", "main")}",namespace="{g["namespace"]}",pod="{g["pod"]}"'
            labels += "".join(f',{k}="{v}"' for k, v in g.get("labels", {}).items())
            lines.append(f"{name}{{{labels}}} {format_value(fmt, g[key])}")
    vllm = scenario.get("vllm", [])
    if vllm:
        for name, key, kind in (("vllm:num_requests_waiting", "waiting", "gauge"),
                                ("vllm:kv_cache_usage_perc", "kv", "gauge")):
            lines.append(f"# TYPE {name} {kind}")
            for v in vllm:
                if key in v:
                    lines.append(f'{name}{{engine="0",model_name="{v["model_name"]}",'
                                 f'namespace="{v["namespace"]}",pod="{v["pod"]}"}} {format_value("{:f}", v[key])}')
        if any("gpu_cache" in v for v in vllm):  # vLLM before the rename (PR #18354)
            lines.append("# TYPE vllm:gpu_cache_usage_perc gauge")
            for v in vllm:
                if "gpu_cache" in v:
                    lines.append(f'vllm:gpu_cache_usage_perc{{engine="0",model_name="{v["model_name"]}",'
                                 f'namespace="{v["namespace"]}",pod="{v["pod"]}"}} '
                                 f'{format_value("{:f}", v["gpu_cache"])}')
    triton = scenario.get("triton", [])
    if triton:
        elapsed = time.time() - STARTED
        for name, key in (("nv_inference_request_success", "success_per_s"),
                          ("nv_inference_queue_duration_us", "queue_us_per_s"),
                          ("nv_inference_compute_infer_duration_us", "compute_us_per_s")):
            lines.append(f"# TYPE {name} counter")
            for t in triton:
                lines.append(f'{name}{{model="{t["model"]}",version="1",namespace="{t["namespace"]}",'
                             f'pod="{t["pod"]}"}} {t.get(key, 0) * elapsed:f}')
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--scenario")
    group.add_argument("--demo", action="store_true")
    args = parser.parse_args()

    def current():
        if args.demo:
            return render(demo_values(json.loads(json.dumps(DEMO))))
        with open(args.scenario) as f:
            return render(json.load(f))

    serve_metrics(args.address, args.port, current)


if __name__ == "__main__":
    main()
