#!/usr/bin/env python3
"""A cloud's workload identity and its managed Prometheus, on loopback, as two processes that
share --issued-file:
- `token`: the token endpoint of the GKE metadata server (--provider gcp) or of Azure AD
  (--provider azure), speaking their documented requests and JSON. Tokens last --expires-in
  seconds (short, so that refreshes are seen); every request issues a new one. GET /fake/state
  returns what was asked and issued.
- `proxy`: a front for the real Prometheus at --upstream that forwards only requests bearing a
  token the endpoint issued and that has not expired, as the managed services do; it keeps
  running when the token endpoint is stopped. With --provider gcp it refuses, as Google's API
  does, a query parameter the Prometheus API request messages do not have (400
  INVALID_ARGUMENT "Unknown name ... Cannot bind query parameter", pyrra-dev/pyrra#1063).
"""
import argparse
import json
import os
import threading
import time
import urllib.parse
from replies import GatewayHandler, ReplyingHandler, serve_on_loopback

GCP_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
AZURE_SCOPE = "https://prometheus.monitor.azure.com/.default"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# The fields of Google's request messages for /api/v1/query and /api/v1/series.
GCP_PARAMETERS = {"query", "time", "timeout", "match[]", "start", "end"}


def gcp_unknown_parameter(name):
    message = (f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
               f"Field '{name}' could not be found in request message.")
    return json.dumps({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT",
                                 "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                              "fieldViolations": [{"description": message}]}]}},
                      indent=2).encode()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("role", choices=["token", "proxy"])
    p.add_argument("--provider", choices=["gcp", "azure"], default="gcp")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--issued-file", required=True, help="token -> expiry (unix time), JSON")
    p.add_argument("--upstream", help="proxy: the real Prometheus")
    p.add_argument("--expires-in", type=int, default=6)
    p.add_argument("--tenant", default="tenant-1")
    p.add_argument("--client-id", default="client-1")
    p.add_argument("--assertion-file", help="azure: the federated token the client must present")
    args = p.parse_args()
    lock = threading.Lock()
    state = {"requests": [], "issued": 0}

    def read_issued():
        try:
            with open(args.issued_file) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def oauth_error(handler, code, error, description):
        body = {"error": error, "error_description": description, "error_codes": [70021],
                "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
                "trace_id": "00000000-0000-0000-0000-000000000000",
                "correlation_id": "00000000-0000-0000-0000-000000000000"}
        handler.reply(code, json.dumps(body).encode())

    def issue(handler):
        with lock:
            state["issued"] += 1
            token = f"{args.provider}-token-{state['issued']}"
            issued = read_issued()
            issued[token] = time.time() + args.expires_in
            with open(args.issued_file + ".tmp", "w") as f:
                json.dump(issued, f)
            os.replace(args.issued_file + ".tmp", args.issued_file)
        body = {"access_token": token, "expires_in": args.expires_in, "token_type": "Bearer"}
        if args.provider == "azure":
            body["ext_expires_in"] = args.expires_in
        handler.reply(200, json.dumps(body).encode())

    class Tokens(ReplyingHandler):
        def record(self, method, **extra):
            with lock:
                state["requests"].append({"method": method, "path": self.path, **extra})

        def do_GET(self):
            if self.path == "/fake/state":
                with lock:
                    return self.reply(200, json.dumps(state).encode())
            if args.provider != "gcp" or self.path.split("?")[0] != GCP_PATH:
                return self.reply(404, b"not found\n", "text/plain")
            flavor = self.headers.get("Metadata-Flavor")
            self.record("GET", flavor=flavor)
            if flavor != "Google":  # the metadata server's own answer
                return self.reply(403, b"Missing Metadata-Flavor:Google header.\n", "text/plain")
            issue(self)

        def do_POST(self):
            raw = self.read_body().decode()
            if args.provider != "azure" or self.path != f"/{args.tenant}/oauth2/v2.0/token":
                return self.reply(404, b"not found\n", "text/plain")
            form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
            self.record("POST", content_type=self.headers.get("Content-Type"), form=form)
            if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                return oauth_error(self, 400, "invalid_request", "AADSTS900144: bad content type")
            expected = {"client_id": args.client_id, "scope": AZURE_SCOPE,
                        "client_assertion_type": JWT_BEARER, "grant_type": "client_credentials"}
            for name, value in expected.items():
                if form.get(name) != value:
                    return oauth_error(self, 400, "invalid_request",
                                       f"AADSTS900144: The request body must contain {name}={value}.")
            with open(args.assertion_file) as f:
                assertion = f.read().strip()
            if form.get("client_assertion") != assertion:
                return oauth_error(self, 400, "invalid_client",
                                   "AADSTS70021: No matching federated identity record found for "
                                   "presented assertion.\r\nTrace ID: 0")
            issue(self)

    class Front(GatewayHandler):
        def forward(self, method, body):
            auth = self.headers.get("Authorization") or ""
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
            issued = read_issued()
            if not (token in issued and issued[token] > time.time()):
                return self.reply(401, b'{"status":"error","errorType":"unauthorized",'
                                       b'"error":"missing, unknown or expired token"}')
            if args.provider == "gcp":
                unknown = sorted(set(self.parameters(body)) - GCP_PARAMETERS)
                if unknown:
                    return self.reply(400, gcp_unknown_parameter(unknown[0]))
            self.relay(args.upstream + self.path, method, body)

        def parameters(self, body):
            names = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            if self.headers.get("Content-Type") == "application/x-www-form-urlencoded":
                names.update(urllib.parse.parse_qs(body.decode()))
            return names

    serve_on_loopback(args.port, Tokens if args.role == "token" else Front).serve_forever()


if __name__ == "__main__":
    main()
