#!/usr/bin/env python3
"""A small stand-in for kube-apiserver, for end-to-end tests (no real one installs here).

It speaks the real JSON of:
  GET  /api/v1/pods                      PodList, with limit/continue paging and resourceVersion
  GET  /api/v1/pods?watch=1&resourceVersion=N
                                         a chunked stream of WatchEvent lines (ADDED, MODIFIED,
                                         DELETED, BOOKMARK; ERROR 410 Gone for an expired version)
  POST /apis/authentication.k8s.io/v1/tokenreviews
  POST /apis/authorization.k8s.io/v1/subjectaccessreviews
and lets the test drive it:
  PUT    /fake/pods/{namespace}/{name}   body {"labels": {...}} creates or updates a pod
  DELETE /fake/pods/{namespace}/{name}
  GET    /fake/requests                  counts of requests by path, to assert on caching
  GET    /fake/reviews                   the TokenReview and SubjectAccessReview bodies received
  PUT    /fake/configmap                 body {"data": {...}} replaces
                                         kube-system/extension-apiserver-authentication
  DELETE /fake/history                   forgets past events: a watch from before gets 410 Gone
  PUT    /fake/faults                    body {"list_failures": N} fails the next N pod LISTs
                                         with 500; {"raw": ["line", ...]} sends these lines, as
                                         they are, to every open watch; {"drop_watches": true}
                                         cuts every open watch without ending it
Tokens and authorization decisions come from --auth FILE: {"tokens": {"<token>": {"username":
..., "groups": [...]}}, "allow": [{"user" or "group": ..., and optionally "verb", "resource",
"subresource", "namespace", "path"}]}; a review is allowed when any rule matches it.
"""
import argparse
import json
import ssl
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Store:
    def __init__(self):
        self.lock = threading.Condition()
        self.version = 100
        self.pods = {}        # (ns, name) -> pod object
        self.events = []      # (version, type, pod)
        self.oldest = 100     # versions before this are compacted: a watch from them gets 410
        self.requests = Counter()
        self.reviews = []
        self.configmap = None  # data of kube-system/extension-apiserver-authentication
        self.list_failures = 0
        self.watch_generation = 0  # bumped to cut every open watch

    def pod(self, ns, name, labels):
        self.version += 1
        return {
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, ns + "/" + name)),
                         "resourceVersion": str(self.version),
                         "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "nvcr.io/nvidia/tritonserver:24.08-py3",
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
            "status": {"phase": "Running"},
        }

    def put(self, ns, name, labels):
        with self.lock:
            kind = "MODIFIED" if (ns, name) in self.pods else "ADDED"
            obj = self.pod(ns, name, labels)
            self.pods[(ns, name)] = obj
            self.events.append((self.version, kind, obj))
            self.lock.notify_all()

    def delete(self, ns, name):
        with self.lock:
            obj = self.pods.pop((ns, name), None)
            if obj is None:
                return False
            self.version += 1
            obj = json.loads(json.dumps(obj))
            obj["metadata"]["resourceVersion"] = str(self.version)
            self.events.append((self.version, "DELETED", obj))
            self.lock.notify_all()
            return True

    def compact(self):
        with self.lock:
            self.oldest = self.version
            self.events = []


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def make_handler(store, auth):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def send_json(self, code, body):
            data = (json.dumps(body, separators=(",", ":")) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def read_body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def log_message(self, *a):
            pass

        def do_GET(self):
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            store.requests[url.path + ("?watch" if q.get("watch") in ("1", "true") else "")] += 1
            if url.path == "/fake/requests":
                return self.send_json(200, dict(store.requests))
            if url.path == "/fake/reviews":
                return self.send_json(200, store.reviews)
            if url.path == "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication":
                if store.configmap is None:
                    return self.send_json(404, status(404, "NotFound", 'configmaps "extension-apiserver-authentication" not found'))
                return self.send_json(200, {"kind": "ConfigMap", "apiVersion": "v1",
                                            "metadata": {"name": "extension-apiserver-authentication",
                                                         "namespace": "kube-system"},
                                            "data": store.configmap})
            if url.path != "/api/v1/pods":
                return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
            if q.get("watch") in ("1", "true"):
                return self.watch(q)
            with store.lock:
                if store.list_failures > 0:
                    store.list_failures -= 1
                    return self.send_json(500, status(500, "InternalError", "etcdserver: request timed out"))
                items = [store.pods[k] for k in sorted(store.pods)]
                version = store.version
            start = int(q.get("continue") or 0)
            limit = int(q.get("limit") or 0) or len(items) or 1
            page = items[start:start + limit]
            meta = {"resourceVersion": str(version)}
            if start + limit < len(items):
                meta["continue"] = str(start + limit)
            self.send_json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": page})

        def chunk(self, obj):
            data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def watch(self, q):
            since = int(q.get("resourceVersion") or 0)
            deadline = time.time() + int(q.get("timeoutSeconds") or 60)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                with store.lock:
                    generation = store.watch_generation
                    if since < store.oldest:
                        self.chunk({"type": "ERROR", "object": status(410, "Expired",
                                    f"too old resource version: {since} ({store.oldest})")})
                        self.wfile.write(b"0\r\n\r\n")
                        return
                while time.time() < deadline:
                    with store.lock:
                        if store.watch_generation != generation:
                            self.close_connection = True
                            return  # cut: no terminating chunk
                        pending = [e for e in store.events if e[0] > since]
                        if not pending:
                            store.lock.wait(timeout=min(1.0, max(0.0, deadline - time.time())))
                            continue
                    for version, kind, obj in pending:
                        if kind == "RAW":  # one line, as every watch event is
                            data = (obj + "\n").encode()
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                            self.wfile.flush()
                        else:
                            self.chunk({"type": kind, "object": obj})
                        since = version
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

        def do_PUT(self):
            parts = urlsplit(self.path).path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["fake", "pods"]:
                store.put(parts[2], parts[3], self.read_body().get("labels", {}))
                return self.send_json(200, {"ok": True})
            if parts == ["fake", "configmap"]:
                store.configmap = self.read_body().get("data", {})
                return self.send_json(200, {"ok": True})
            if parts == ["fake", "faults"]:
                faults = self.read_body()
                with store.lock:
                    store.list_failures = int(faults.get("list_failures", store.list_failures))
                    for line in faults.get("raw", []):
                        store.version += 1
                        store.events.append((store.version, "RAW", line))
                    if faults.get("drop_watches"):
                        store.watch_generation += 1
                    store.lock.notify_all()
                return self.send_json(200, {"ok": True})
            self.send_json(404, status(404, "NotFound", "not found"))

        def do_DELETE(self):
            parts = urlsplit(self.path).path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["fake", "pods"]:
                return self.send_json(200 if store.delete(parts[2], parts[3]) else 404, {})
            if parts == ["fake", "history"]:
                store.compact()
                return self.send_json(200, {})
            self.send_json(404, status(404, "NotFound", "not found"))

        def do_POST(self):
            path = urlsplit(self.path).path
            store.requests[path] += 1
            body = self.read_body()
            store.reviews.append(json.loads(json.dumps(body)))
            if path == "/apis/authentication.k8s.io/v1/tokenreviews":
                user = auth.get("tokens", {}).get(body.get("spec", {}).get("token", ""))
                body["status"] = ({"authenticated": True, "user": user} if user
                                  else {"authenticated": False, "error": "invalid bearer token"})
                return self.send_json(201, body)
            if path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
                spec = body.get("spec", {})
                attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}

                def matches(rule):
                    who = (rule.get("user") == spec.get("user") if "user" in rule
                           else rule.get("group") in spec.get("groups", []))
                    return who and all(rule[k] == attrs.get(k) for k in
                                       ("verb", "resource", "subresource", "namespace", "path") if k in rule)
                allowed = any(matches(rule) for rule in auth.get("allow", []))
                body["status"] = {"allowed": allowed}
                if not allowed:
                    body["status"]["reason"] = "no RBAC policy matched"
                return self.send_json(201, body)
            self.send_json(404, status(404, "NotFound", "not found"))

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pods", help="JSON file: [{namespace, name, labels}] created at start")
    parser.add_argument("--auth", help="JSON file with tokens and allow rules")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    store = Store()
    if args.pods:
        with open(args.pods) as f:
            for p in json.load(f):
                store.put(p["namespace"], p["name"], p.get("labels", {}))
    auth = {}
    if args.auth:
        with open(args.auth) as f:
            auth = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(store, auth))
    server.daemon_threads = True
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
