#!/usr/bin/env python3
"""Benchmark (not run by CI): the metric snapshot cache under the load of many HPAs.

Starts the real Prometheus scraping two synthetic dcgm-exporters (one with honorLabels: true,
one with false, so both built-in gpu_utilization rules serve), 10 namespaces of 10 pods each
with three app labels, the fake Kubernetes API and the adapter (--insecure-skip-auth), then
side by side in one run:
  (a) Prometheus load: the /api/v1/query requests Prometheus answered (its own counter
      prometheus_http_requests_total, read from its /metrics so the reading is not counted)
      for 1000 HPA requests pods/*/gpu_utilization?labelSelector=app=<x> paced over one 15 s
      window, spread over the namespaces and selectors: cold cache, then each further 15 s of
      the same load (steady state, refresh-ahead included), split into the cache's misses and
      its refreshes; the same 1000 as one burst on a cold cache (16 connections, as fast as they
      go); and paced with --metrics-cache-ttl=0;
  (b) cache-hit throughput and latency with wrk (-t2 -c32, keep-alive, one fixed path) against
      the adapter and against nginx serving the adapter's reply bytes as a static file over TLS;
  (c) the uncached path (--metrics-cache-ttl=0): p50 of the request through the adapter against
      the same PromQL (taken from the adapter's --v=4 log: every query it sends for the request,
      sent at once as the adapter does, and one after another; the faster of the two counts)
      sent straight to Prometheus over keep-alive connections, in interleaved rounds as bench/latency.py, with the
      adapter's /livez on the same TLS connection as the floor of client, TLS and HTTP;
  (d) latency at 1000 HPAs' load on one replica: the steady-state part of (a), ~67 requests/s
      paced (an open loop, not a closed one) over keep-alive TLS connections;
  (e) a frozen Prometheus (SIGSTOP for 30 s, adapter started with --metrics-serve-stale-for=15s
      so that the freeze shows both the stale window and the 503s), a request every 0.5 s, then
      SIGCONT and the time until answers are fresh again.
It prints a table with each figure next to its target, then everything as JSON.
nginx and wrk are Debian packages (scripts/install-deps.sh --bench installs them).

  python3 bench/hpa_load.py [--binary build/gpu-metrics-adapter] [--json-only]
"""
import argparse
import calendar
import concurrent.futures
import http.client
import json
import os
import queue
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "support"))
from stack import Stack, free_port, http_get, openssl, wait_until  # noqa: E402
from latency import timed  # noqa: E402  (p50 and p99 of n sequential sends)

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
NAMESPACES = [f"team-{i}" for i in range(10)]
APPS = ["triton"] * 4 + ["vllm"] * 3 + ["embed"] * 3  # pod i of each namespace
SELECTORS = ["app%3Dtriton", "app%3Dvllm", "app%3Dembed", "app+in+%28triton%2Cvllm%29"]
WINDOW = 15.0  # seconds: the HPA controller's sync period
HPAS = 1000
TTL, STALE_FOR = 10.0, 15.0  # (e): the default --metrics-cache-ttl, and --metrics-serve-stale-for


def hpa_path(i):
    """HPA i's request: the namespaces and selectors vary together over 40 distinct requests."""
    namespace = NAMESPACES[i % len(NAMESPACES)]
    selector = SELECTORS[(i // len(NAMESPACES)) % len(SELECTORS)]
    return f"{CUSTOM}/namespaces/{namespace}/pods/%2A/gpu_utilization?labelSelector={selector}"


def scenario():
    """Pods 0-7 of every namespace on an exporter scraped with honorLabels: true, pods 8-9 on one
    scraped with false (their series carry exported_namespace/exported_pod), one GPU each."""
    honor, renamed, pods = [], [], []
    for n, namespace in enumerate(NAMESPACES):
        for i, app in enumerate(APPS):
            name = f"{app}-{i}"
            pods.append({"namespace": namespace, "name": name, "labels": {"app": app}})
            gpus = honor if i < 8 else renamed
            gpus.append({"gpu": len(gpus), "util": (n * 10 + i * 7) % 100, "fb_used": 1000 + i,
                         "fb_free": 3000, "power": 100.0 + i, "engine": 0.5, "tensor": 0.25,
                         "namespace": namespace, "pod": name, "container": "server"})
    honor.append({"gpu": len(honor), "util": 0, "fb_used": 0, "fb_free": 4000, "power": 20.0,
                  "engine": 0.0, "tensor": 0.0})  # an idle GPU
    return ({"hostname": "gpu-node-1", "gpus": honor},
            {"hostname": "gpu-node-2", "hostname_label": "hostname", "gpus": renamed}, pods)


def percentiles(samples_ms):
    if not samples_ms:
        return {"n": 0}
    s = sorted(samples_ms)
    return {"n": len(s), "p50": round(statistics.median(s), 2),
            "p99": round(s[max(0, int(len(s) * 0.99) - 1)], 2), "max": round(s[-1], 2)}


def adapter_connection(stack, timeout=15):
    context = ssl.create_default_context(cafile=stack.serving_ca)
    return http.client.HTTPSConnection("127.0.0.1", stack.ports["adapter"], context=context, timeout=timeout)


def get(connection, path):
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


class PacedLoad:
    """Requests at fixed times (rate per second), whatever the answers' latency: a dispatcher
    hands each to the next free worker, each worker holding one keep-alive TLS connection.
    Records (scheduled, started, ended, status) per request, times in time.monotonic()."""

    def __init__(self, stack, rate, seconds, workers=16):
        self.stack, self.rate, self.seconds, self.workers = stack, rate, seconds, workers
        self.results = []
        self.lock = threading.Lock()

    def run(self, start_at):
        jobs = queue.Queue()
        threads = [threading.Thread(target=self.worker, args=(jobs,)) for _ in range(self.workers)]
        for t in threads:
            t.start()
        for i in range(int(self.rate * self.seconds)):
            at = start_at + i / self.rate
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            jobs.put((at, hpa_path(i)))
        for _ in threads:
            jobs.put(None)
        for t in threads:
            t.join()
        return self.results

    def worker(self, jobs):
        connection = adapter_connection(self.stack)
        while True:
            job = jobs.get()
            if job is None:
                break
            scheduled, path = job
            started = time.monotonic()
            try:
                status, _ = get(connection, path)
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()
                connection = adapter_connection(self.stack)
            with self.lock:
                self.results.append((scheduled, started, time.monotonic(), status))
        connection.close()


def load_windows(stack, windows, rate=HPAS / WINDOW):
    """Runs the paced load for len(windows) windows of WINDOW seconds and reads Prometheus'
    query counter at each boundary. Returns ([(name, queries, requests, errors, latency)], results)."""
    load = PacedLoad(stack, rate, WINDOW * len(windows))
    counts, misses = [stack.prometheus_requests_answered()], [cache_misses(stack)]  # before any load
    start_at = time.monotonic() + 0.5
    thread = threading.Thread(target=lambda: load.run(start_at))
    thread.start()
    for k in range(1, len(windows) + 1):
        time.sleep(max(0.0, start_at + k * WINDOW - time.monotonic()))
        counts.append(stack.prometheus_requests_answered())
        misses.append(cache_misses(stack))
    thread.join()
    # Requests still being answered at a boundary are few; the last window's stragglers are in
    # the last count because the thread has ended before it is read again.
    counts[-1] = stack.prometheus_requests_answered()
    misses[-1] = cache_misses(stack)
    rows = []
    for k, name in enumerate(windows):
        lo, hi = start_at + k * WINDOW, start_at + (k + 1) * WINDOW
        mine = [r for r in load.results if lo <= r[0] < hi]
        rows.append({"window": name, "requests": len(mine), "prometheus_queries": counts[k + 1] - counts[k],
                     "cache_misses": misses[k + 1] - misses[k],
                     "errors": sum(1 for r in mine if r[3] != 200),
                     "latency_ms": percentiles([(r[2] - r[1]) * 1000 for r in mine]),
                     "latency_from_schedule_ms": percentiles([(r[2] - r[0]) * 1000 for r in mine])})
    return rows


def cache_misses(stack):
    """gma_metric_cache_requests_total{result="miss"}: snapshots a request had to fetch (one
    per rule and key), so that a window's queries split into misses and refreshes."""
    return adapter_metrics(stack).get('gma_metric_cache_requests_total{result="miss"}', 0)


def burst(stack, n=HPAS, workers=16):
    """n HPA requests as fast as `workers` keep-alive connections go (a closed loop); returns
    the Prometheus queries they cost, the seconds they took and the failed requests."""
    before = stack.prometheus_requests_answered()
    failed = []
    started = time.monotonic()

    def client(k):
        connection = adapter_connection(stack)
        for i in range(k, n, workers):
            status, _ = get(connection, hpa_path(i))
            if status != 200:
                failed.append(status)
        connection.close()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    return {"requests": n, "seconds": round(took, 2), "prometheus_queries":
            stack.prometheus_requests_answered() - before, "errors": len(failed)}


def adapter_metrics(stack):
    status, body = stack.https_get("/metrics")
    found = {}
    for line in body.splitlines():
        if line.startswith(("gma_metric_cache_", "gma_prometheus_queries_total")):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


# -- (b) wrk against the adapter and nginx -----------------------------------------------------
def wrk(url, seconds, threads=2, connections=32):
    p = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                       capture_output=True, text=True, timeout=seconds + 30)
    out = p.stdout

    def ms(text):
        value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
        return round(float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit], 3)
    result = {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        result[f"p{pct}_ms"] = ms(re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["errors"] = (errors.group(1) if errors else "none") + (f"; non-2xx {non2xx.group(1)}" if non2xx else "")
    return result


def start_nginx(body, directory):
    """nginx in the foreground, with its own config, temp paths and a self-signed certificate,
    serving `body` at every path as application/json over TLS, on a free port."""
    os.chmod(directory, 0o755)  # a worker may run as nobody when started as root
    www = os.path.join(directory, "www")
    os.makedirs(www)
    os.chmod(www, 0o755)
    with open(os.path.join(www, "body.json"), "wb") as f:
        f.write(body)
    os.chmod(os.path.join(www, "body.json"), 0o644)
    cert, key = os.path.join(directory, "nginx.crt"), os.path.join(directory, "nginx.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1")
    port = free_port()
    temp = "\n".join(f"  {kind}_temp_path {directory}/{kind};" for kind in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    config = os.path.join(directory, "nginx.conf")
    with open(config, "w") as f:
        f.write(f"""daemon off;
worker_processes 2;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temp}
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    root {www};
    location / {{ default_type application/json; try_files /body.json =404; }}
  }}
}}
""")
    proc = subprocess.Popen(["nginx", "-p", directory, "-c", config, "-e", f"{directory}/error.log"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    context = ssl._create_unverified_context()
    wait_until("nginx", lambda: _status(port, context) == 200, timeout=20)
    return proc, port


def _status(port, context):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
    try:
        c.request("GET", "/x")
        return c.getresponse().status
    finally:
        c.close()


# -- (c) uncached: through the adapter and straight to Prometheus ----------------------------
def uncached_vs_direct(stack, path, queries, requests=500):
    """The adapter asks the rules serving a metric concurrently, so the direct side sends the
    same queries concurrently too, one keep-alive connection each (and, for reference, one after
    another on one connection)."""
    adapter = adapter_connection(stack)
    targets = ["/api/v1/query?query=" + urllib.parse.quote(q) for q in queries]
    port = stack.ports["prometheus"]
    sequential_connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(targets))
    local = threading.local()

    def ask(target, connection=None):
        if connection is None:
            if not hasattr(local, "connection"):
                local.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection = local.connection
        status, body = get(connection, target)
        assert status == 200 and b'"status":"success"' in body, body

    def via_adapter():
        status, body = get(adapter, path)
        assert status == 200 and b'"items":[{' in body, body

    def livez():  # the floor: this client, TLS and the adapter's HTTP, no Prometheus
        status, body = get(adapter, "/livez")
        assert status == 200, body

    def direct():
        for future in [pool.submit(ask, target) for target in targets]:
            future.result()

    def direct_sequential():
        for target in targets:
            ask(target, sequential_connection)
    sends = (via_adapter, direct, direct_sequential, livez)
    for send in sends:
        timed(send, 20)
    rounds = [[timed(send, requests // 5) for send in sends] for _ in range(5)]
    pool.shutdown()
    result = {}
    for i, name in enumerate(("adapter_ms", "prometheus_direct_ms", "prometheus_direct_sequential_ms",
                              "adapter_livez_ms")):
        result[name] = {k: round(statistics.median(r[i][k] for r in rounds), 3) for k in ("p50", "p99")}
    # Against the faster of the two direct ways: Python's thread hand-off can cost more than the
    # concurrency saves on small queries.
    fastest = min(result["prometheus_direct_ms"]["p50"], result["prometheus_direct_sequential_ms"]["p50"])
    result["ratio_p50"] = round(result["adapter_ms"]["p50"] / fastest, 2)
    result["queries_per_request"] = len(queries)
    result["promql"] = queries
    return result


# -- (e) frozen Prometheus -------------------------------------------------------------------
def frozen(stack, path, freeze_seconds=30.0, interval=0.5):
    connection = adapter_connection(stack, timeout=30)

    def ask():
        """One request; a connection the adapter or a timeout broke is replaced (status 0)."""
        nonlocal connection
        try:
            return get(connection, path)
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = adapter_connection(stack, timeout=30)
            return 0, b""

    for _ in range(5):  # warm: the snapshot exists and is read
        assert ask()[0] == 200
        time.sleep(0.2)
    pid = stack.procs["prometheus"].pid
    answers = []
    os.kill(pid, signal.SIGSTOP)
    stopped = time.time()
    try:
        while time.time() - stopped < freeze_seconds:
            started = time.time()
            status, body = ask()
            took = time.time() - started
            answers.append({"t": round(started - stopped, 2), "status": status, "ms": round(took * 1000, 1),
                            "timestamp": _timestamp(body) if status == 200 else None})
            time.sleep(max(0.0, interval - took))
    finally:
        os.kill(pid, signal.SIGCONT)
    resumed = time.time()
    fresh_after = None
    while time.time() - resumed < 30:
        status, body = ask()
        if status == 200 and _epoch(_timestamp(body)) >= int(resumed):
            fresh_after = round(time.time() - resumed, 2)
            break
        time.sleep(0.1)
    ok = [a for a in answers if a["status"] == 200]
    failed = [a for a in answers if a["status"] != 200]
    return {"freeze_s": freeze_seconds, "answers": len(answers),
            "stale_200": {"count": len(ok), "last_at_s": ok[-1]["t"] if ok else None,
                          "max_ms": max((a["ms"] for a in ok), default=None)},
            "non_200": {"count": len(failed), "statuses": sorted({a["status"] for a in failed}),
                        "first_at_s": failed[0]["t"] if failed else None,
                        "max_ms": max((a["ms"] for a in failed), default=None)},
            "fresh_200_after_sigcont_s": fresh_after, "timeline": answers}


def _timestamp(body):
    items = json.loads(body)["items"]
    return max(i["timestamp"] for i in items) if items else None


def _epoch(timestamp):
    return calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")) if timestamp else 0


def logged_queries(stack, since):
    return [line.split("prometheus query: ", 1)[1] for line in stack.log("adapter")[since:].splitlines()
            if "prometheus query: " in line]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                         "gpu-metrics-adapter"))
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: scripts/install-deps.sh --bench (or apt-get install {tool})")
    began = time.time()
    stack = Stack(os.path.abspath(args.binary))
    nginx_dir = tempfile.mkdtemp(prefix="gma-bench-nginx-")
    nginx = None
    result = {"binary": os.path.abspath(args.binary), "hpas": HPAS, "window_s": WINDOW}
    try:
        honor, renamed, pods = scenario()
        stack.start_both_label_forms(honor, renamed)
        stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", len(pods) + 1)
        lister = stack.start_fake_kube(pods)
        probe = hpa_path(0)

        def start(extra, probe_first=True):
            stack.start_adapter(list(extra), lister_kubeconfig=lister)  # waits for a discovery
            if probe_first:
                wait_until("the adapter to answer", lambda: stack.https_get(probe)[0] == 200, timeout=30)

        # (a) + (d) with the cache (defaults: --metrics-cache-ttl=10s), cold then steady: no
        # metric request before the first window.
        start(["--v=1"], probe_first=False)
        rows = load_windows(stack, ["cold", "steady-1", "steady-2"])
        result["a_cached"] = rows
        result["cache_metrics_after_a"] = adapter_metrics(stack)
        steady = [r for r in rows if r["window"].startswith("steady")]
        result["d_latency_1000_hpas"] = {
            "requests": sum(r["requests"] for r in steady), "errors": sum(r["errors"] for r in steady),
            "p50_ms": max(r["latency_ms"]["p50"] for r in steady),
            "p99_ms": max(r["latency_ms"]["p99"] for r in steady),
            "max_ms": max(r["latency_ms"]["max"] for r in steady),
            "p99_from_schedule_ms": max(r["latency_from_schedule_ms"]["p99"] for r in steady)}

        # (a) again as one burst on a cold cache, faster than a refresh comes round.
        start(["--v=1"], probe_first=False)
        result["a_cached_burst"] = burst(stack)
        result["a_cached_burst"]["cache_misses"] = cache_misses(stack)

        # (b) hit throughput: the adapter, then nginx with the same bytes.
        status, body = get(adapter_connection(stack), probe)
        assert status == 200, body
        hit_url = f"https://127.0.0.1:{stack.ports['adapter']}{probe}"
        adapter_wrk = wrk(hit_url, 10)
        nginx, nginx_port = start_nginx(body, nginx_dir)
        nginx_wrk = wrk(f"https://127.0.0.1:{nginx_port}{probe}", 10)
        result["b_hit_throughput"] = {"path": probe, "body_bytes": len(body), "wrk": "-t2 -c32 -d10s",
                                      "adapter": adapter_wrk, "nginx": nginx_wrk,
                                      "ratio_rps": round(adapter_wrk["requests_per_s"] / nginx_wrk["requests_per_s"], 3)}
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=10)
        nginx = None

        # (a) without the cache, logging the PromQL it sends for (c).
        start(["--metrics-cache-ttl=0", "--v=4"])
        result["a_uncached"] = load_windows(stack, ["ttl=0"])
        since = len(stack.log("adapter"))
        stack.https_get(probe)
        time.sleep(0.2)
        queries = logged_queries(stack, since)

        # (c) the uncached path against Prometheus itself, at --v=1.
        start(["--metrics-cache-ttl=0", "--v=1"])
        result["c_uncached_vs_direct"] = uncached_vs_direct(stack, probe, queries)

        # (e) frozen Prometheus.
        start([f"--metrics-serve-stale-for={STALE_FOR:g}s", "--v=1"])
        result["e_frozen"] = frozen(stack, probe)
        result["e_frozen"]["adapter_flags"] = (f"--metrics-cache-ttl={TTL:g}s (default) --metrics-serve-stale-for="
                                               f"{STALE_FOR:g}s --prometheus-query-timeout=5s (default)")
        result["cache_metrics_after_e"] = adapter_metrics(stack)
        result["elapsed_s"] = round(time.time() - began, 1)
    finally:
        if nginx is not None:
            nginx.kill()
            nginx.wait()
        shutil.rmtree(nginx_dir, ignore_errors=True)
        stack.close()
    if not args.json_only:
        print_table(result)
    print(json.dumps(result, indent=2))


def print_table(r):
    cold, steady, uncached = r["a_cached"][0], r["a_cached"][1:], r["a_uncached"][0]
    b, c, d, e = r["b_hit_throughput"], r["c_uncached_vs_direct"], r["d_latency_1000_hpas"], r["e_frozen"]

    def per_1000(row):
        return row["prometheus_queries"] * 1000 / max(1, row["requests"])

    def met(ok):
        return "" if ok is None else ("met" if ok else "MISSED")
    stale, failed = e["stale_200"], e["non_200"]
    burst_row = r["a_cached_burst"]

    def split(row):
        return f"{row['cache_misses']:.0f} misses, {row['prometheus_queries'] - row['cache_misses']:.0f} refreshes"
    rows = [
        ("(a) Prometheus queries, 1000 req paced, cold 15 s", f"{cold['prometheus_queries']} for {cold['requests']}"
         f" ({split(cold)})", "<= 20", per_1000(cold) <= 20),
        *[(f"(a) ... {row['window']} 15 s", f"{row['prometheus_queries']} for {row['requests']} ({split(row)})",
           "<= 20 + refreshes", None) for row in steady],
        ("(a) ... 1000 req burst, cold", f"{burst_row['prometheus_queries']} for {burst_row['requests']} in "
         f"{burst_row['seconds']} s, {burst_row['errors']} errors", "<= 20", per_1000(burst_row) <= 20),
        ("(a) ... --metrics-cache-ttl=0", f"{uncached['prometheus_queries']} for {uncached['requests']}"
         f" ({per_1000(uncached):.1f}/1000)", "~2000 (2 rules)", None),
        ("(a) cached cold / ttl=0", f"{cold['prometheus_queries'] / max(1, uncached['prometheus_queries']):.4f}",
         "", None),
        ("(b) hit req/s adapter / nginx", f"{b['adapter']['requests_per_s']:.0f} / "
         f"{b['nginx']['requests_per_s']:.0f} = {b['ratio_rps']:.2f}", ">= 0.5", b["ratio_rps"] >= 0.5),
        ("(b) p50 / p99 ms adapter | nginx", f"{b['adapter']['p50_ms']} / {b['adapter']['p99_ms']} | "
         f"{b['nginx']['p50_ms']} / {b['nginx']['p99_ms']}", "", None),
        ("(c) uncached p50 ms adapter / direct", f"{c['adapter_ms']['p50']:.2f} / "
         f"{min(c['prometheus_direct_ms']['p50'], c['prometheus_direct_sequential_ms']['p50']):.2f} = "
         f"{c['ratio_p50']:.2f} (direct: {c['queries_per_request']} queries at once "
         f"{c['prometheus_direct_ms']['p50']:.2f}, one after another "
         f"{c['prometheus_direct_sequential_ms']['p50']:.2f}; the faster counts)",
         "<= 1.2", c["ratio_p50"] <= 1.2),
        ("(c) ... GET /livez on the same connection", f"{c['adapter_livez_ms']['p50']:.2f} ms p50", "", None),
        ("(d) 1000 HPAs, 67/s for 30 s: p50/p99/max ms", f"{d['p50_ms']} / {d['p99_ms']} / {d['max_ms']}, "
         f"{d['errors']} errors of {d['requests']}", "p99 <= 50", d["p99_ms"] <= 50 and d["errors"] == 0),
        ("(e) frozen 30 s: 200s (stale)", f"{stale['count']}, last at {stale['last_at_s']} s, "
         f"max {stale['max_ms']} ms", f"until >= {STALE_FOR - 1:g} s, each <= 100 ms",
         bool(stale["count"]) and stale["last_at_s"] >= STALE_FOR - 1 and stale["max_ms"] <= 100
         and stale["last_at_s"] <= TTL + STALE_FOR + 0.5),
        ("(e) ... then", f"{failed['count']} x {failed['statuses']} from {failed['first_at_s']} s, "
         f"max {failed['max_ms']} ms", "503 within 5.5 s",
         bool(failed["count"]) and failed["statuses"] == [503] and failed["max_ms"] <= 5600),
        ("(e) fresh 200 after SIGCONT", f"{e['fresh_200_after_sigcont_s']} s", "", None),
    ]
    widths = [max(len(str(x[i])) for x in rows) for i in range(3)]
    print(f"binary: {r['binary']}\n(e) adapter: {e['adapter_flags']}")
    print(f"{'what':<{widths[0]}}  {'measured':<{widths[1]}}  {'target':<{widths[2]}}")
    for what, value, target, ok in rows:
        print(f"{what:<{widths[0]}}  {value:<{widths[1]}}  {target:<{widths[2]}}  {met(ok)}")
    print(f"elapsed {r['elapsed_s']} s\n")


if __name__ == "__main__":
    main()
