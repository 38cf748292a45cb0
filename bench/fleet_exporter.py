#!/usr/bin/env python3
"""Serves pre-rendered Prometheus text pages, one per port: the dcgm-exporter endpoints of a
simulated GPU fleet for bench/scale.py (which renders the pages once and writes them to files).

Each page is read once at start and then served as the same bytes on every scrape, so a fleet
of 100,000 series costs a few megabytes and no CPU beyond the socket writes.

  python3 bench/fleet_exporter.py --serve 9401=/tmp/endpoint-0.prom --serve 9402=/tmp/endpoint-1.prom

Paths: /metrics (the page), /health ("OK"); anything else is a 404.
"""
import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(page):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            path = self.path.split("?")[0]
            if path == "/metrics":
                body, kind = page, "text/plain; version=0.0.4; charset=utf-8"
            elif path == "/health":
                body, kind = b"OK", "text/plain"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--serve", action="append", required=True, metavar="PORT=FILE",
                        help="serve FILE's bytes as /metrics on PORT (repeatable)")
    args = parser.parse_args()
    servers = []
    for spec in args.serve:
        port, _, path = spec.partition("=")
        with open(path, "rb") as f:
            page = f.read()
        server = ThreadingHTTPServer((args.address, int(port)), make_handler(page))
        server.daemon_threads = True
        servers.append(server)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
