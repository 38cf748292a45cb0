#!/usr/bin/env python3
"""Starts the real parts on loopback: Prometheus (Debian's package), synthetic dcgm-exporters,
the fake Kubernetes API and gpu-metrics-adapter, and stops them all again.

Used by the end-to-end tests and by the demo (`python3 tests/support/stack.py demo`).
"""
import base64
import decimal
import importlib.util
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
# What a sanitizer prints (scripts/sanitize.sh builds the adapter with them).
SANITIZER_REPORTS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "WARNING: ThreadSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")
FAKES = os.path.join(os.path.dirname(HERE), "fakes")
# The fake API's aggregation proxy (start_fake_kube(aggregator=True)): the CN of its front-proxy
# client certificate, the APIServices of manifests/base/apiservices.yaml (group, version,
# versionPriority), and the user kubectl is by default.
FRONT_PROXY_CN = "front-proxy-client"
ADAPTER_APISERVICES = (("custom.metrics.k8s.io", "v1beta2", 200), ("custom.metrics.k8s.io", "v1beta1", 100),
                       ("external.metrics.k8s.io", "v1beta1", 100))
KUBECTL_TOKEN = "kubectl-admin-token"
KUBECTL_USER = {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins"]}


_RESERVED_PORTS = []  # lock files held for the life of this process


def free_port():
    """A loopback port nobody listens on, reserved for this process: under `ctest -j` two
    suites asking at once get different ports (a lock file per port), where binding port 0 and
    closing again could hand both the same one."""
    import fcntl
    locks = os.path.join(tempfile.gettempdir(), "gma-test-ports")
    os.makedirs(locks, exist_ok=True)
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        handle = open(os.path.join(locks, str(port)), "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _RESERVED_PORTS.append(handle)
        return port


def wait_until(what, predicate, timeout=60.0, interval=0.2):
    deadline = time.time() + timeout
    last_error = None
    while time.time() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as e:  # the thing may not be up yet
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what} (last error: {last_error})")


def http_get(url, timeout=5, ca_file=None):
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    with urllib.request.urlopen(url, timeout=timeout, context=context) as r:
        return r.read().decode()


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory, name):
    """A self-signed CA made with the openssl CLI; returns (cert, key) paths."""
    cert, key = os.path.join(directory, f"{name}.crt"), os.path.join(directory, f"{name}.key")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}")
    return cert, key


def issue(directory, ca, name, cn, organizations=(), client=False, dns_names=()):
    """A certificate signed by `ca` (cert, key): for clients (CN/O, clientAuth) or for the
    server 127.0.0.1/localhost and `dns_names` (serverAuth). Returns (cert, key) paths."""
    cert, key, csr = (os.path.join(directory, f"{name}.{ext}") for ext in ("crt", "key", "csr"))
    ext = os.path.join(directory, f"{name}.ext")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage=clientAuth\n" if client else
                "subjectAltName=IP:127.0.0.1,DNS:localhost" + "".join(f",DNS:{d}" for d in dns_names) +
                "\nextendedKeyUsage=serverAuth\n")
    subject = f"/CN={cn}" + "".join(f"/O={o}" for o in organizations)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", subject)
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", ext)
    return cert, key


def make_certificates(directory, name="127.0.0.1"):
    """A CA and a server certificate for 127.0.0.1 signed by it. Returns (ca, cert, key)."""
    ca = make_ca(directory, f"ca-{name}")
    cert, key = issue(directory, ca, f"server-{name}", name)
    return ca[0], cert, key


class Stack:
    """One Prometheus, one or two exporters, optionally the fake Kubernetes API, and the adapter."""

    def __init__(self, adapter_binary, workdir=None, scrape_interval="1s", backend="prometheus"):
        """backend: what start_prometheus starts: "prometheus" (Debian's prometheus) or
        "victoria-metrics" (Debian's single-node VictoriaMetrics, its own scraper on the same
        scrape config). Either way the part is named "prometheus" (stop("prometheus"),
        prometheus_url, prometheus.log)."""
        self.binary = adapter_binary
        self.backend = backend
        self.dir = workdir or tempfile.mkdtemp(prefix="gma-stack-")
        self.scrape_interval = scrape_interval
        self.procs = {}
        self.ports = {}
        self.serving_cas = {}  # adapter name -> the CA of its serving certificate
        self.sanitizer_reports = []

    # -- processes -------------------------------------------------------------------------
    def start(self, name, args, env=None, open_files=None):
        """`open_files`: (soft, hard) RLIMIT_NOFILE for the process, as a container runtime sets."""
        def limit():  # runs in the forked child: nothing that imports or allocates locks
            resource.setrlimit(resource.RLIMIT_NOFILE, open_files)
        if name in self.procs:
            self.stop(name)  # so that its log is read before it is overwritten
        if env is None:
            # A test machine inside a pod must not make the adapter think it runs in-cluster.
            env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
        with open(os.path.join(self.dir, name + ".log"), "wb") as log:
            self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, env=env,
                                                start_new_session=True,
                                                preexec_fn=limit if open_files else None)
        return self.procs[name]

    def stop(self, name, timeout=10):
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is not None:  # it ended by itself, perhaps aborted by a sanitizer
            self.collect_sanitizer_reports(name)
            return None
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        self.collect_sanitizer_reports(name)
        return code

    def collect_sanitizer_reports(self, name):
        log = self.log(name)
        if any(marker in log for marker in SANITIZER_REPORTS):
            self.sanitizer_reports.append(f"--- {name} log ---\n{log[-20000:]}")

    def log(self, name):
        with open(os.path.join(self.dir, name + ".log"), errors="replace") as f:
            return f.read()

    def dump_logs_and_close(self):
        """For a failed set-up: show the end of every log, then stop everything."""
        for name in list(self.procs):
            print(f"--- {name} log ---\n{self.log(name)[-3000:]}", file=sys.stderr)
        self.close()

    def close(self, keep_dir=False):
        """Stops everything; raises if a sanitized process reported a finding."""
        for name in list(self.procs):
            self.stop(name)
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.sanitizer_reports:
            reports, self.sanitizer_reports = self.sanitizer_reports, []
            raise AssertionError("sanitizer findings:\n" + "\n".join(reports))

    # -- parts -----------------------------------------------------------------------------
    def start_exporter(self, name, scenario=None, demo=False, script="dcgm_exporter.py"):
        """A synthetic exporter from tests/fakes (`script`) serving `scenario`; returns its port."""
        port = free_port()
        self.ports[name] = port
        args = [sys.executable, os.path.join(FAKES, script), "--port", str(port)]
        if demo:
            args.append("--demo")
        else:
            path = os.path.join(self.dir, name + ".json")
            with open(path, "w") as f:
                json.dump(scenario, f)
            args += ["--scenario", path]
        self.start(name, args)
        wait_until(name, lambda: http_get(f"http://127.0.0.1:{port}/health") == "OK", timeout=20)
        return port

    def update_scenario(self, name, scenario):
        path = os.path.join(self.dir, name + ".json")
        with open(path + ".tmp", "w") as f:
            json.dump(scenario, f)
        os.replace(path + ".tmp", path)

    def start_prometheus(self, jobs, tls=None, rule_files=()):
        """jobs: [{name, exporter, honor_labels, target_labels}] scraped every scrape_interval.
        tls: (ca_cert, cert, key) to serve HTTPS instead of HTTP. rule_files: Prometheus rule
        files it loads and evaluates every scrape_interval."""
        if self.backend == "victoria-metrics":
            if tls or rule_files:
                raise ValueError("the VictoriaMetrics stack serves plain HTTP and evaluates no rules")
            return self._start_victoria_metrics(jobs)
        prometheus = shutil.which("prometheus")
        if not prometheus:
            raise RuntimeError("the prometheus server is not installed (apt-get install prometheus)")
        port = free_port()
        self.ports["prometheus"] = port
        self.prometheus_config_lines = [
            f"global: {{scrape_interval: {self.scrape_interval}, evaluation_interval: {self.scrape_interval}}}"]
        if rule_files:
            self.prometheus_config_lines.append(f"rule_files: {json.dumps(list(rule_files))}")
        self.prometheus_config_lines.append("scrape_configs:")
        for job in jobs:
            self.prometheus_config_lines += self._scrape_job(job)
        config = self._write_prometheus_config()
        args = [prometheus, f"--config.file={config}",
                f"--storage.tsdb.path={os.path.join(self.dir, 'tsdb')}",
                f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
        self.prometheus_ca = None
        self.prometheus_url = f"http://127.0.0.1:{port}"
        if tls:
            web = os.path.join(self.dir, "web.yml")
            with open(web, "w") as f:
                f.write(f"tls_server_config: {{cert_file: {tls[1]}, key_file: {tls[2]}}}\n")
            args.append(f"--web.config.file={web}")
            self.prometheus_ca = tls[0]
            self.prometheus_url = f"https://127.0.0.1:{port}"
        self.start("prometheus", args)
        wait_until("prometheus", lambda: "Ready" in http_get(f"{self.prometheus_url}/-/ready",
                                                             ca_file=self.prometheus_ca), timeout=60)
        return port

    def _start_victoria_metrics(self, jobs):
        """VictoriaMetrics single-node on loopback, scraping `jobs` with -promscrape.config (the
        scrape_configs Prometheus gets), its storage in this stack's directory. Queries see
        samples at once (-search.latencyOffset=0s: by default VictoriaMetrics evaluates queries
        near now 30 s in the past, backends.md section 2)."""
        binary = shutil.which("victoria-metrics")
        if not binary:
            raise RuntimeError("VictoriaMetrics is not installed (apt-get install victoria-metrics)")
        port = free_port()
        self.ports["prometheus"] = port
        # VictoriaMetrics parses its scrape config strictly: no evaluation_interval.
        self.prometheus_config_lines = [f"global: {{scrape_interval: {self.scrape_interval}}}", "scrape_configs:"]
        for job in jobs:
            self.prometheus_config_lines += self._scrape_job(job)
        config = self._write_prometheus_config()
        self.prometheus_ca = None
        self.prometheus_url = f"http://127.0.0.1:{port}"
        self.start("prometheus", [binary, f"-storageDataPath={os.path.join(self.dir, 'vmdata')}",
                                  f"-httpListenAddr=127.0.0.1:{port}", f"-promscrape.config={config}",
                                  "-retentionPeriod=1d", "-search.latencyOffset=0s", "-loggerLevel=WARN"])
        wait_until("victoria-metrics", lambda: http_get(f"{self.prometheus_url}/health") == "OK", timeout=60)
        return port

    def _scrape_job(self, job):
        """The scrape_configs lines of one job: `exporter` names a part started here, or `target`
        is host:port; `ca_file` scrapes over HTTPS, verifying the target's certificate with it."""
        target = job.get("target") or f"127.0.0.1:{self.ports[job['exporter']]}"
        labels = json.dumps(job.get("target_labels", {}))
        lines = [f"- job_name: {job['name']}",
                 f"  honor_labels: {'true' if job.get('honor_labels', True) else 'false'}"]
        if job.get("ca_file"):
            lines += ["  scheme: https", f"  tls_config: {{ca_file: {job['ca_file']}}}"]
        lines.append(f"  static_configs: [{{targets: ['{target}'], labels: {labels}}}]")
        return lines

    def _write_prometheus_config(self):
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config + ".tmp", "w") as f:
            f.write("\n".join(self.prometheus_config_lines) + "\n")
        os.replace(config + ".tmp", config)
        return config

    def scrape_adapter(self, job="gpu-metrics-adapter"):
        """Makes the running Prometheus scrape the adapter's own /metrics as `job` (over HTTPS,
        verifying its serving certificate), as the ServiceMonitor of
        manifests/components/servicemonitor does in a cluster: the job is added to the config,
        Prometheus reloads it on SIGHUP, and this waits until the target is up."""
        self.prometheus_config_lines += self._scrape_job(
            {"name": job, "target": f"127.0.0.1:{self.ports['adapter']}", "ca_file": self.serving_ca})
        self._write_prometheus_config()
        self.procs["prometheus"].send_signal(signal.SIGHUP)
        self.wait_for_series(f'up{{job="{job}"}} == 1', 1, timeout=30)

    def start_both_label_forms(self, honored, renamed, extra_jobs=(), rule_files=()):
        """Two synthetic dcgm-exporters behind the real Prometheus, one per label form:
        `honored` (a scenario) scraped with honorLabels: true, `renamed` with false, whose target
        labels name the exporter's own pod (as Kubernetes SD would), so that Prometheus renames
        the workload labels to exported_*. `extra_jobs` and `rule_files` go to start_prometheus.
        Waits for nothing: callers know their series."""
        self.start_exporter("exporter-a", honored)
        self.start_exporter("exporter-b", renamed)
        self.start_prometheus([
            {"name": "dcgm-honor", "exporter": "exporter-a", "honor_labels": True},
            {"name": "dcgm-renamed", "exporter": "exporter-b", "honor_labels": False,
             "target_labels": {"namespace": "gpu-operator", "pod": "dcgm-exporter-x7k2p",
                               "container": "dcgm-exporter"}},
            *extra_jobs,
        ], rule_files=rule_files)

    def prometheus_query(self, promql):
        url = f"{self.prometheus_url}/api/v1/query?query=" + urllib.parse.quote(promql)
        return json.loads(http_get(url, ca_file=self.prometheus_ca))["data"]["result"]

    def prometheus_requests_answered(self, handler="/api/v1/query"):
        """How many requests Prometheus has answered on `handler`, all status codes, from its
        own counter prometheus_http_requests_total. Read from /metrics, so the reading itself
        is not counted (as it would be through /api/v1/query)."""
        text = http_get(f"{self.prometheus_url}/metrics", ca_file=self.prometheus_ca)
        total = 0.0
        for line in text.splitlines():
            if line.startswith("prometheus_http_requests_total{") and f'handler="{handler}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def wait_for_series(self, promql, count, timeout=60):
        wait_until(f"{count} series for {promql}", lambda: len(self.prometheus_query(promql)) >= count,
                   timeout=timeout)

    def start_fault_proxy(self):
        """tests/fakes/fault_prometheus.py in front of the running Prometheus; returns its URL."""
        port = free_port()
        self.ports["fault"] = port
        self.start("fault", [sys.executable, os.path.join(FAKES, "fault_prometheus.py"),
                             "--port", str(port), "--upstream", self.prometheus_url])
        url = f"http://127.0.0.1:{port}"
        wait_until("fault proxy", lambda: http_get(f"{url}/fault/requests") is not None, timeout=20)
        return url

    def set_fault(self, status=0, body="", content_type="application/json", **fault):
        """Makes the fault proxy answer every API request with `status`, or misbehave as
        `mode=...` says (see tests/fakes/fault_prometheus.py); no fault forwards again."""
        fault.update(status=status, body=body, content_type=content_type)
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports['fault']}/fault", method="PUT",
                                     data=json.dumps(fault).encode())
        urllib.request.urlopen(req, timeout=5).read()

    def fault_requests(self):
        return json.loads(http_get(f"http://127.0.0.1:{self.ports['fault']}/fault/requests"))

    def adapter_pid(self):
        return self.procs["adapter"].pid

    def start_fake_kube(self, pods, auth=None, nodes=None, aggregator=False, front_proxy=None, client_ca=None):
        """The fake Kubernetes API (tests/fakes/fake_kube_apiserver.py) with `pods`, `nodes` and
        the tokens and allow rules of `auth`, on a plain HTTP port; returns the kubeconfig the
        adapter lists pods with (and that reaches TokenReview and SubjectAccessReview).

        aggregator=True also serves HTTPS, with this stack's own CAs (made here with openssl), so
        that kubectl can reach it as a user: clients authenticate with a bearer token of `auth`
        or a certificate of self.client_ca; its aggregation proxy presents self.front_proxy (CN
        front-proxy-client, signed by self.front_proxy_ca) to the APIServices that
        register_apiservices() registers. self.aggregator_kubeconfig is kubectl's kubeconfig
        for it, as KUBECTL_USER (token KUBECTL_TOKEN, added to the tokens). A test with its own
        PKI passes the front-proxy pair (cert, key) to present and the client CA (cert, key) to
        trust instead (self.front_proxy_ca is then None: front_proxy_args() is the test's job)."""
        port = free_port()
        self.ports["kube"] = port
        path = os.path.join(self.dir, "pods.json")
        with open(path, "w") as f:
            json.dump(pods, f)
        args = [sys.executable, os.path.join(FAKES, "fake_kube_apiserver.py"), "--port", str(port),
                "--pods", path]
        if nodes is not None:
            nodes_path = os.path.join(self.dir, "nodes.json")
            with open(nodes_path, "w") as f:
                json.dump(nodes, f)
            args += ["--nodes", nodes_path]
        if aggregator:
            auth = json.loads(json.dumps(auth or {}))
            auth.setdefault("tokens", {}).setdefault(KUBECTL_TOKEN, KUBECTL_USER)
            pki = os.path.join(self.dir, "kube-pki")
            os.makedirs(pki, exist_ok=True)
            self.kube_ca = make_ca(pki, "kube-ca")
            serving = issue(pki, self.kube_ca, "kube-serving", "kube-apiserver")
            self.client_ca = client_ca or make_ca(pki, "client-ca")
            self.front_proxy_ca = None if front_proxy else make_ca(pki, "front-proxy-ca")
            self.front_proxy = front_proxy or issue(pki, self.front_proxy_ca, "front-proxy-client", FRONT_PROXY_CN,
                                                    client=True)
            secure_port = free_port()
            self.ports["kube-secure"] = secure_port
            args += ["--secure-port", str(secure_port), "--tls-cert", serving[0], "--tls-key", serving[1],
                     "--client-ca-file", self.client_ca[0], "--proxy-client-cert-file", self.front_proxy[0],
                     "--proxy-client-key-file", self.front_proxy[1]]
        if auth is not None:
            auth_path = os.path.join(self.dir, "auth.json")
            with open(auth_path, "w") as f:
                json.dump(auth, f)
            args += ["--auth", auth_path]
        self.start("kube", args)
        # One pod is enough to see it up (every pod is several KB of JSON).
        wait_until("fake kube API", lambda: "PodList" in http_get(f"http://127.0.0.1:{port}/api/v1/pods?limit=1"),
                   timeout=20)
        if aggregator:
            self.aggregator_kubeconfig = self.write_aggregator_kubeconfig("kubectl-aggregator", token=KUBECTL_TOKEN)
        kubeconfig = os.path.join(self.dir, "lister.kubeconfig")
        with open(kubeconfig, "w") as f:
            f.write(kubeconfig_yaml(f"http://127.0.0.1:{port}", token="lister-token"))
        return kubeconfig

    def write_aggregator_kubeconfig(self, name, token=None, cert=None, key=None):
        """A kubeconfig for kubectl that reaches the fake API's HTTPS port (and through its proxy
        the adapter), verifying its certificate, as the user of `token` or of the client
        certificate `cert`/`key`."""
        path = os.path.join(self.dir, f"{name}.kubeconfig")
        with open(path, "w") as f:
            f.write(kubeconfig_yaml(f"https://127.0.0.1:{self.ports['kube-secure']}", ca_file=self.kube_ca[0],
                                    token=token, cert=cert, key=key))
        return path

    def front_proxy_args(self):
        """The adapter's flags that make it trust the fake API's aggregation proxy (requires
        start_fake_kube(aggregator=True)): its front-proxy CA and client name."""
        return [f"--requestheader-client-ca-file={self.front_proxy_ca[0]}",
                f"--requestheader-allowed-names={FRONT_PROXY_CN}"]

    def register_apiservices(self, groups=ADAPTER_APISERVICES, ca_bundle=None, adapter="adapter"):
        """Registers APIServices for the running adapter `adapter` with the fake API, as
        manifests/base/apiservices.yaml does (service gpu-metrics/gpu-metrics-adapter;
        insecureSkipTLSVerify, or the serving CA `ca_bundle` checked for
        gpu-metrics-adapter.gpu-metrics.svc). `groups`: [(group, version, versionPriority)]."""
        for group, version, priority in groups:
            spec = {"group": group, "version": version,
                    "service": {"name": "gpu-metrics-adapter", "namespace": "gpu-metrics", "port": 443},
                    "groupPriorityMinimum": 100, "versionPriority": priority}
            if ca_bundle:
                with open(ca_bundle, "rb") as f:
                    spec["caBundle"] = base64.b64encode(f.read()).decode()
            else:
                spec["insecureSkipTLSVerify"] = True
            self.kube_request("PUT", "/fake/apiservices", {
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": f"{version}.{group}"}, "spec": spec,
                "endpoint": f"127.0.0.1:{self.ports[adapter]}"})

    def aggregator_get(self, path, token=KUBECTL_TOKEN, client_cert=None, headers=None):
        """(status, headers, body) of a GET to the fake API's HTTPS port with Python's client (which
        sends what kubectl would not: any header, a path as written), as the user of `token`,
        of `client_cert` (cert, key), or anonymous (token None)."""
        import http.client
        context = ssl.create_default_context(cafile=self.kube_ca[0])
        if client_cert:
            context.load_cert_chain(*client_cert)
        connection = http.client.HTTPSConnection("127.0.0.1", self.ports["kube-secure"], context=context,
                                                 timeout=20)
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        try:
            connection.request("GET", path, headers=all_headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
        finally:
            connection.close()

    def kube_request(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports['kube']}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"{}")

    def kube_faults(self, **faults):
        """Sets faults of the fake Kubernetes API (PUT /fake/faults; see its docstring)."""
        return self.kube_request("PUT", "/fake/faults", faults)

    def pod_requests(self):
        """Every pod LIST and WATCH the fake Kubernetes API received, in order:
        [{"query", "accept", "served", ...}]."""
        return self.kube_request("GET", "/fake/pod_requests")

    def start_adapter(self, extra_args=(), lister_kubeconfig=None, prometheus_url=None,
                      wait_ready=True, insecure=True, serving_ca=None, open_files=None, name="adapter",
                      env=None):
        """Starts the adapter; `serving_ca` is the CA of a --tls-cert-file given in extra_args
        (default: the self-signed certificate it writes to its cert dir). A `name` other than
        "adapter" starts a second one beside it (its own port, cert dir and log; self.kubeconfig
        and self.serving_ca stay the first one's; https_get(adapter=name) reaches it). `env`
        replaces the environment (as Stack.start)."""
        port = free_port()
        self.ports[name] = port
        cert_dir = os.path.join(self.dir, "certs" if name == "adapter" else f"certs-{name}")
        args = [self.binary, f"--secure-port={port}", "--bind-address=127.0.0.1",
                f"--cert-dir={cert_dir}",
                f"--prometheus-url={prometheus_url or self.prometheus_url}",
                "--metrics-relist-interval=2s", "--v=1", *extra_args]
        if insecure:
            args.append("--insecure-skip-auth")
        if lister_kubeconfig:
            args.append(f"--lister-kubeconfig={lister_kubeconfig}")
        self.start(name, args, env=env, open_files=open_files)
        ca = serving_ca or os.path.join(cert_dir, "apiserver.crt")
        self.serving_cas[name] = ca
        wait_until("the adapter's certificate", lambda: os.path.exists(ca), timeout=20)
        if name == "adapter":
            self.serving_ca = ca
            self.kubeconfig = self.write_kubeconfig("kubectl", token="demo")
        if wait_ready:
            # Ready here means discovery has run: /readyz itself no longer waits for Prometheus.
            wait_until("adapter /readyz with discovery", lambda: (lambda r: r[0] == 200 and
                       "[+]metric-discovery ok" in r[1])(self.https_get("/readyz?verbose", adapter=name)), timeout=60)
        else:
            wait_until("adapter /livez", lambda: self.https_get("/livez", adapter=name)[0] == 200, timeout=60)
        return port

    def write_kubeconfig(self, name, token=None, cert=None, key=None):
        """A kubeconfig for kubectl that reaches the adapter, verifying its certificate."""
        path = os.path.join(self.dir, f"{name}.kubeconfig")
        with open(path, "w") as f:
            f.write(kubeconfig_yaml(f"https://127.0.0.1:{self.ports['adapter']}", ca_file=self.serving_ca,
                                    token=token, cert=cert, key=key))
        return path

    def https_get(self, path, headers=None, client_cert=None, connection=None, adapter="adapter"):
        """(status, body) of a GET to the adapter with Python's TLS client, which can send any
        header and client certificate. `connection` reuses a keep-alive connection."""
        owned = connection is None
        if owned:
            connection = self.https_connection(client_cert, adapter=adapter)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read().decode()
        except OSError as e:
            return 0, str(e)
        finally:
            if owned:
                connection.close()

    def https_connection(self, client_cert=None, adapter="adapter"):
        import http.client
        context = ssl.create_default_context(
            cafile=self.serving_ca if adapter == "adapter" else self.serving_cas[adapter])
        if client_cert:
            context.load_cert_chain(*client_cert)
        return http.client.HTTPSConnection("127.0.0.1", self.ports[adapter], context=context, timeout=10)

    def kubectl_raw(self, path, timeout="10s", kubeconfig=None, via_aggregator=False):
        """Returns (exit code, stdout, stderr) of `kubectl get --raw PATH`, sent to the adapter, or
        with via_aggregator to the fake API, whose proxy forwards it (as in a cluster)."""
        if kubeconfig is None:
            kubeconfig = self.aggregator_kubeconfig if via_aggregator else self.kubeconfig
        return self.kubectl("get", "--raw", path, timeout=timeout, kubeconfig=kubeconfig)

    def kubectl(self, *args, timeout="10s", kubeconfig=None):
        """(exit code, stdout, stderr) of kubectl with `args`, by default as the aggregator's
        kubectl user (kubectl top and the like go to the fake API); discovery cached in this
        stack's directory only."""
        p = subprocess.run(["kubectl", f"--kubeconfig={kubeconfig or self.aggregator_kubeconfig}",
                            f"--request-timeout={timeout}", f"--cache-dir={os.path.join(self.dir, 'kubectl-cache')}",
                            *args], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr


def kubeconfig_yaml(server, ca_file=None, token=None, cert=None, key=None):
    cluster = f"server: {server}"
    if ca_file:
        cluster += f", certificate-authority: {ca_file}"
    user = ", ".join(([f"token: {token}"] if token else []) +
                     ([f"client-certificate: {cert}", f"client-key: {key}"] if cert else []))
    return ("apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: local, cluster: {{{cluster}}}}}]\n"
            f"users: [{{name: local, user: {{{user}}}}}]\n"
            "contexts: [{name: local, context: {cluster: local, user: local}}]\n"
            "current-context: local\n")


def _interrupt(*_):
    raise KeyboardInterrupt


# -- reading answers as the HPA does ---------------------------------------------------------
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
HPA_TOLERANCE = 0.1  # kube-controller-manager's --horizontal-pod-autoscaler-tolerance


def quantity_milli(text):
    """The milli-value of a Kubernetes Quantity string, which is what the HPA reads
    (resource.Quantity.MilliValue(), rounded up): "87500m" -> 87500, "80" -> 80000, "2k" -> 2000000."""
    m = re.fullmatch(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)",
                     text)
    if not m:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number = decimal.Decimal(m.group(1) + (m.group(2) or ""))
    suffix = m.group(3) or ""
    if suffix in _BINARY_SUFFIXES:
        number *= 2 ** _BINARY_SUFFIXES[suffix]
    else:
        number = number.scaleb(_DECIMAL_SUFFIXES[suffix])
    return int((number * 1000).to_integral_value(rounding=decimal.ROUND_CEILING))


def format_milli(milli):
    """The number a milli-value stands for, as a person writes it: 87500 -> "87.5", 80000 -> "80"."""
    whole, fraction = divmod(abs(milli), 1000)
    return ("-" if milli < 0 else "") + str(whole) + (f".{fraction:03d}".rstrip("0") if fraction else "")


def hpa_pods_recommendation(milli_values, target_milli, tolerance=HPA_TOLERANCE):
    """(average milli-value, usage ratio, desired replicas) of an HPA with a Pods metric and an
    AverageValue target, when every pod is ready and has a value, as kube-controller-manager
    computes them (replica_calculator.go GetMetricReplicas, metrics GetMetricUsageRatio): the
    average is the integer mean of the milli-values; while |ratio - 1| <= tolerance the
    replicas stay, otherwise
    ceil(ratio x pods). minReplicas/maxReplicas and the scale-down stabilization window come after."""
    total, pods = sum(milli_values), len(milli_values)
    average = total // pods if total >= 0 else -(-total // pods)  # Go's division truncates
    ratio = average / target_milli
    if abs(1.0 - ratio) <= tolerance:
        return average, ratio, pods
    return average, ratio, math.ceil(ratio * pods)


def exact_ratio(average_milli, target_milli):
    """average / target written out in full ("0.978125"): every digit, so that ceil(pods x ratio)
    can be checked by hand (milli-values over a target of whole units always end)."""
    with decimal.localcontext() as context:
        context.prec = 40
        return format((decimal.Decimal(average_milli) / decimal.Decimal(target_milli)).normalize(), "f")


# -- the demo --------------------------------------------------------------------------------
DEMO_NAMESPACE = "inference"
DEMO_SELECTOR = "app=triton"
DEMO_TARGET = 80  # the README's example HPA: pods/gpu_utilization, target averageValue "80"
DEMO_HPA_PATH = (f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{DEMO_NAMESPACE}/pods/*/gpu_utilization"
                 "?labelSelector=" + urllib.parse.quote(DEMO_SELECTOR, safe=""))
DEMO_DISCOVERY_PATH = "/apis/custom.metrics.k8s.io/v1beta2"
DEMO_EXTERNAL_PATH = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{DEMO_NAMESPACE}/gpu_utilization"


def demo_pods():
    """The pods of the synthetic exporter's --demo scenario, as a Deployment's ReplicaSet labels
    them (app=<name>, pod-template-hash=<hash> from <name>-<hash>-<suffix>), with their GPUs:
    [{namespace, name, labels, gpus}] for the fake Kubernetes API (which ignores "gpus")."""
    if FAKES not in sys.path:  # the exporter imports its fellow fakes' replies.py
        sys.path.append(FAKES)
    spec = importlib.util.spec_from_file_location("dcgm_exporter", os.path.join(FAKES, "dcgm_exporter.py"))
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)
    pods = {}
    for g in exporter.DEMO["gpus"]:
        if "pod" in g:
            pod = pods.setdefault((g["namespace"], g["pod"]), {"namespace": g["namespace"], "name": g["pod"]})
            app, template_hash, _ = g["pod"].rsplit("-", 2)
            pod["labels"] = {"app": app, "pod-template-hash": template_hash}
            pod["gpus"] = pod.get("gpus", 0) + 1
    return list(pods.values())


def _indented(text, indent="  "):
    return "\n".join(indent + line for line in text.strip().splitlines())


def _table(header, rows, indent="  "):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return "\n".join(indent + "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in [header, *rows])


def _ask(stack, path, command):
    """Asks the adapter for `path` with kubectl, then prints `command` (the line a user would
    type); the answer's JSON, or None after printing kubectl's error."""
    code, out, err = stack.kubectl_raw(path)
    print(command)
    if code != 0:
        print(_indented(err))
        return None
    return json.loads(out)


def _print_discovery(stack):
    answer = _ask(stack, DEMO_DISCOVERY_PATH, f"$ kubectl get --raw {DEMO_DISCOVERY_PATH}")
    if answer is None:
        return
    resources = {}
    for r in answer["resources"]:
        kind, _, metric = r["name"].partition("/")
        resources.setdefault(metric, set()).add(kind)
    kinds = sorted({kind for ks in resources.values() for kind in ks}, reverse=True)
    print(f"  {len(resources)} metrics, each for {' and '.join(k + '/' for k in kinds)}:")
    print(textwrap.fill(", ".join(sorted(resources)), width=98, initial_indent="  ", subsequent_indent="  "))


def _print_external(stack):
    answer = _ask(stack, DEMO_EXTERNAL_PATH, f"\n$ kubectl get --raw '{DEMO_EXTERNAL_PATH}'")
    if answer is None:
        return
    items = answer["items"]
    # One item per pod, averaged over its GPUs: an External AverageValue target divides the
    # items' sum by the replicas, so a per-GPU list would count a 2-GPU pod twice.
    print(f"  {len(items)} items, one per pod, averaged over the pod's GPUs "
          "(gpu_utilization_per_gpu lists each GPU):")
    rows = [(i["metricLabels"].get("pod", "-"), format_milli(quantity_milli(i["value"]))) for i in items]
    print(_table(("POD", "GPU_UTILIZATION"), sorted(rows)))


def _print_hpa_round(stack, replicas):
    """One round: the HPA's request, its answer as a table and the HPA's recommendation."""
    answer = _ask(stack, DEMO_HPA_PATH,
                  f"[{time.strftime('%H:%M:%SZ', time.gmtime())}] $ kubectl get --raw '{DEMO_HPA_PATH}'")
    if answer is None:
        return
    items = sorted(answer["items"], key=lambda i: i["describedObject"]["name"])
    values = [quantity_milli(i["value"]) for i in items]
    print(_table(("POD", "GPU_UTILIZATION", "SAMPLED"),
                 [(i["describedObject"]["name"], format_milli(v), i["timestamp"].partition("T")[2])
                  for i, v in zip(items, values)]))
    if len(items) != replicas:
        print(f"  HPA: {len(items)} of the {replicas} pods have a value; no recommendation this round")
        return
    average, ratio, desired = hpa_pods_recommendation(values, DEMO_TARGET * 1000)
    ratio_text = exact_ratio(average, DEMO_TARGET * 1000)
    line = f"  HPA ({replicas} replicas): average {format_milli(average)} / {DEMO_TARGET} = {ratio_text} -> "
    plural = lambda n: f"{n} replica" + ("" if n == 1 else "s")  # noqa: E731
    if abs(1.0 - ratio) <= HPA_TOLERANCE:
        line += f"within the {HPA_TOLERANCE:.0%} tolerance: keeps {plural(desired)}"
    else:
        change = "scale up" if desired > replicas else "scale down" if desired < replicas else "no change"
        line += f"ceil({replicas} x {ratio_text}) = {plural(desired)} ({change})"
    print(line)


def demo(binary):
    """The README's first command ends here: the whole stack with moving load, and every round
    the HPA's own request (pods by label selector) with what the HPA would make of it."""
    stack = Stack(binary, workdir=os.path.join(os.getcwd(), ".demo"))
    shutil.rmtree(stack.dir, ignore_errors=True)
    os.makedirs(stack.dir)
    signal.signal(signal.SIGTERM, _interrupt)
    interval = float(os.environ.get("GMA_DEMO_INTERVAL", "15"))  # tests shorten it
    pods = demo_pods()
    key, _, value = DEMO_SELECTOR.partition("=")
    replicas = sum(1 for p in pods if p["namespace"] == DEMO_NAMESPACE and p["labels"].get(key) == value)
    try:
        print("starting a synthetic dcgm-exporter, Prometheus, a fake Kubernetes API and gpu-metrics-adapter ...",
              flush=True)
        stack.start_exporter("dcgm-exporter", demo=True)
        stack.start_prometheus([{"name": "dcgm-exporter", "exporter": "dcgm-exporter", "honor_labels": True}])
        lister = stack.start_fake_kube([{k: p[k] for k in ("namespace", "name", "labels")} for p in pods])
        stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 5)
        stack.start_adapter(lister_kubeconfig=lister)  # ready: discovery has run, the pod list is read
        wait_until("discovery", lambda: "pods/gpu_utilization" in stack.kubectl_raw(DEMO_DISCOVERY_PATH)[1],
                   timeout=30)
        print(f"\n  adapter      https://127.0.0.1:{stack.ports['adapter']}  (--insecure-skip-auth: anyone on "
              "this machine may read it)")
        print(f"  prometheus   {stack.prometheus_url}  (scrapes the synthetic dcgm-exporter every "
              f"{stack.scrape_interval})")
        print("  pods         served by a fake Kubernetes API; the adapter lists and watches them:")
        print(_table(("NAMESPACE/NAME", "LABELS", "GPUS"),
                     [(f"{p['namespace']}/{p['name']}", ",".join(f"{k}={v}" for k, v in p["labels"].items()),
                       p["gpus"]) for p in pods], indent="    "))
        print(f"  logs         {stack.dir}/ (kept after it stops):\n"
              "               adapter.log, prometheus.log, kube.log (the fake Kubernetes API), dcgm-exporter.log")
        print(f"  kubectl      export KUBECONFIG={stack.kubeconfig}")
        print("               then copy any command below\n")
        _print_discovery(stack)
        _print_external(stack)
        print()
        for text, indent in (
                (f"Every {interval:g} s: the request an HPA makes for the {DEMO_SELECTOR} pods, and the replicas "
                 f"it would want with the README's example target (pods/gpu_utilization, averageValue "
                 f"{DEMO_TARGET}):", ""),
                (f"desired = ceil(current replicas x average / {DEMO_TARGET}), unchanged while "
                 f"|average / {DEMO_TARGET} - 1| <= {HPA_TOLERANCE}", "  "),
                (f"average: the mean of the pods' values (in milli-units, as the HPA reads them); current "
                 f"replicas: the {replicas} {DEMO_SELECTOR} pods. minReplicas, maxReplicas and the 5-minute "
                 "scale-down window come after this; nothing is scaled here.", "  "),
                ("SAMPLED: the time of Prometheus' sample, UTC; the adapter serves an answer for up to 10 s "
                 "(--metrics-cache-ttl).", "  ")):
            print(textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent))
        print("Ctrl-C stops everything.\n", flush=True)
        while True:
            _print_hpa_round(stack, replicas)
            print(flush=True)
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping ...", flush=True)
        stack.close(keep_dir=True)
        print("stopped; nothing is left running.")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "demo":
        sys.exit("usage: stack.py demo PATH_TO_gpu-metrics-adapter")
    demo(sys.argv[2])
