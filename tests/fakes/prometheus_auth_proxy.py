#!/usr/bin/env python3
"""An authenticating HTTPS front for Prometheus, as Thanos/Mimir gateways and OAuth proxies are:
it demands a client certificate from --client-ca, a bearer token and a tenant header, forwards
what passes to the real Prometheus at --upstream, and records what it saw at /proxy/requests.
"""
import argparse
import json
import ssl
import threading

from replies import GatewayHandler, serve_on_loopback


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--client-ca", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--tenant", required=True)
    args = p.parse_args()
    seen = []
    lock = threading.Lock()

    class Handler(GatewayHandler):

        def forward(self, method, body):
            if self.path == "/proxy/requests":
                with lock:
                    return self.reply(200, json.dumps(seen).encode())
            cert = self.connection.getpeercert()
            subject = dict(x[0] for x in cert.get("subject", ())) if cert else {}
            record = {"method": method, "path": self.path.split("?")[0], "client": subject.get("commonName"),
                      "authorization": self.headers.get("Authorization"), "tenant": self.headers.get("X-Scope-OrgID")}
            with lock:
                seen.append(record)
            if record["authorization"] != f"Bearer {args.token}" or record["tenant"] != args.tenant:
                return self.reply(401, b'{"status":"error","errorType":"unauthorized","error":"bad credentials"}')
            self.relay(args.upstream + self.path, method, body)

    server = serve_on_loopback(args.port, Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
