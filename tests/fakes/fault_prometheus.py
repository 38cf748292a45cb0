#!/usr/bin/env python3
"""A plain-HTTP front for the real Prometheus that can be told to misbehave, for fault-injection
tests: it forwards every API request to --upstream unless a fault is set, and records what it
received.

  PUT  /fault           body {"status": 403, "body": "...", "content_type": "text/plain"}: answer
                        every API request so; {} or {"status": 0} forwards again. Other faults:
                        {"mode": "delay", "seconds": 3}   answer after a delay
                        {"mode": "reset"}                 reset the connection, no answer
                        {"mode": "truncate"}              half the real body, then close
                        {"mode": "values", "value": "+Inf"}  the real answer, every value replaced
                        {"mode": "large", "mb": 70}       a valid reply of that many MB
  GET  /fault/requests  the requests seen: [{"method", "path", "host", "params"}], params being
                        the query string's and a form body's parameters, {name: [values]}
"""
import argparse
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import ThreadingHTTPServer

from replies import ReplyingHandler


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    args = p.parse_args()
    state = {"fault": {}, "seen": []}
    lock = threading.Lock()

    class Handler(ReplyingHandler):

        def log_message(self, *_):
            pass

        def body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else None

        def reply_large(self, mb):
            """A valid reply of `mb` MB, written a MiB at a time: building it whole took long
            enough, for each of discovery's concurrent requests too, to push the HPA request
            past its deadline on a loaded machine. A client that stops reading ends the write."""
            head, tail = b'{"status":"success","data":"', b'"}'
            chunk = b"x" * (1024 * 1024)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(head) + mb * len(chunk) + len(tail)))
            self.end_headers()
            try:
                self.wfile.write(head)
                for _ in range(mb):
                    self.wfile.write(chunk)
                self.wfile.write(tail)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def handle_api(self, method):
            if self.path == "/fault/requests":
                with lock:
                    return self.reply(200, json.dumps(state["seen"]).encode())
            body = self.body()
            with lock:
                state["seen"].append({"method": method, "path": self.path.split("?")[0],
                                      "host": self.headers.get("Host"), "params": self.params(body)})
                del state["seen"][:-1000]
                fault = dict(state["fault"])
            mode = fault.get("mode")
            if fault.get("status"):
                return self.reply(fault["status"], fault.get("body", "").encode(),
                                  fault.get("content_type", "application/json"))
            if mode == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return self.connection.close()
            if mode == "large":
                return self.reply_large(int(fault.get("mb", 70)))
            if mode == "delay":
                time.sleep(float(fault.get("seconds", 3)))
            status, answer, content_type = self.forward(method, body)
            if mode == "truncate":
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer[: len(answer) // 2])
                self.close_connection = True
                return
            if mode == "values" and status == 200:
                doc = json.loads(answer)
                result = doc.get("data", {}).get("result") if isinstance(doc.get("data"), dict) else None
                for sample in result or []:
                    if isinstance(sample, dict) and "value" in sample:
                        sample["value"][1] = fault.get("value", "NaN")
                answer = json.dumps(doc).encode()
            self.reply(status, answer, content_type)

        def params(self, body):
            params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if self.headers.get("Content-Type") == "application/x-www-form-urlencoded":
                for name, values in urllib.parse.parse_qs(body.decode()).items():
                    params.setdefault(name, []).extend(values)
            return params

        def forward(self, method, body):
            req = urllib.request.Request(args.upstream + self.path, data=body, method=method)
            if body:
                req.add_header("Content-Type", self.headers.get("Content-Type"))
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, r.read(), r.headers.get("Content-Type", "application/json")
            except urllib.error.HTTPError as e:
                return e.code, e.read(), "application/json"

        def do_GET(self):
            self.handle_api("GET")

        def do_POST(self):
            self.handle_api("POST")

        def do_PUT(self):
            if self.path != "/fault":
                return self.reply(404, b"{}")
            fault = json.loads(self.body() or b"{}")
            with lock:
                state["fault"] = fault
            self.reply(200, b"{}")

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
