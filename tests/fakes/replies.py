"""What the fake servers share: a handler base class that answers with fixed bytes, a gateway
base class for the fake fronts of Prometheus, a loopback server, and the exporters' /metrics."""
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ReplyingHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler with reply(code, body, content_type)."""
    protocol_version = "HTTP/1.1"

    def reply(self, code, body, content_type="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        """The request's body (Content-Length bytes), b"" when it has none."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def relay(self, url, method, body):
        """Sends the request on to `url` (with its body and Content-Type) and replies with
        the status and body that come back: how the fake proxies reach the real Prometheus."""
        req = urllib.request.Request(url, data=body or None, method=method)
        if body:
            req.add_header("Content-Type", self.headers.get("Content-Type"))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                self.reply(r.status, r.read())
        except urllib.error.HTTPError as e:
            self.reply(e.code, e.read())

    def log_message(self, *a):
        pass


class GatewayHandler(ReplyingHandler):
    """A front for Prometheus, as the auth gateways and managed services are: GET and POST go,
    with the body read, to forward(method, body), which checks the request and usually relay()s
    it."""

    def forward(self, method, body):
        raise NotImplementedError

    def do_GET(self):
        self.forward("GET", self.read_body())

    def do_POST(self):
        self.forward("POST", self.read_body())


def serve_on_loopback(port, handler):
    """A threading server for `handler` on 127.0.0.1:`port`, whose threads end with the process."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def serve_metrics(address, port, render):
    """Serves an exporter on `address`:`port` until the process ends: /metrics answers render()'s
    text (the Prometheus text format, read anew on every scrape), /health "OK", the rest 404."""

    class MetricsHandler(ReplyingHandler):
        def do_GET(self):
            path = self.path.split("?")[0]
            if path not in ("/metrics", "/health"):
                self.send_error(404)
                return
            body = render().encode() if path == "/metrics" else b"OK"
            self.reply(200, body, "text/plain; version=0.0.4")

    server = ThreadingHTTPServer((address, port), MetricsHandler)
    server.daemon_threads = True
    server.serve_forever()
