#!/usr/bin/env python3
"""An Amazon Managed Service for Prometheus look-alike on loopback: it serves
`/workspaces/<id>/api/v1/...`, demands AWS Signature Version 4 on every request, checks it by
recomputing the signature from the documented algorithm (AWS IAM User Guide, "Create a signed AWS
API request"), and forwards what passes to the real Prometheus at --upstream. Secrets come from
--key ID=SECRET and from the fake credential endpoints' /fake/keys (--keys-from). What it saw is at
/proxy/requests.
"""
import argparse
import calendar
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
import urllib.request

from replies import GatewayHandler, serve_on_loopback

UNRESERVED = "-_.~"


def canonical_uri(path):
    segments = []
    for s in path.split("/"):
        if s == "..":
            segments = segments[:-1]
        elif s not in ("", "."):
            segments.append(urllib.parse.quote(s, safe=UNRESERVED))
    uri = "/" + "/".join(segments)
    return uri + "/" if len(segments) and path.endswith("/") else uri


def canonical_query(query):
    pairs = []
    for item in filter(None, query.split("&")):
        name, _, value = item.partition("=")
        pairs.append((urllib.parse.quote(urllib.parse.unquote(name), safe=UNRESERVED),
                      urllib.parse.quote(urllib.parse.unquote(value), safe=UNRESERVED)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def signature(secret, method, target, headers, signed, payload, amz_date, region, service):
    """The hex signature and the canonical request of a request, signing the header names
    `signed` (lowercase) of `headers` (name -> list of values)."""
    path, _, query = target.partition("?")
    canonical_headers = "".join(
        f"{name}:{','.join(' '.join(v.split()) for v in headers[name])}\n" for name in signed)
    creq = "\n".join([method, canonical_uri(path), canonical_query(query), canonical_headers,
                      ";".join(signed), hashlib.sha256(payload).hexdigest()])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest(), creq


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--workspace", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--service", default="aps")
    p.add_argument("--key", action="append", default=[], help="ID=SECRET of a long-term key")
    p.add_argument("--keys-from", help="URL of a JSON {id: {secret, token}} of temporary keys")
    args = p.parse_args()
    keys = {k.split("=", 1)[0]: {"secret": k.split("=", 1)[1], "token": None} for k in args.key}
    prefix = f"/workspaces/{args.workspace}"
    seen = []
    lock = threading.Lock()

    def key_for(key_id):
        if key_id not in keys and args.keys_from:
            with urllib.request.urlopen(args.keys_from, timeout=5) as r:
                keys.update(json.load(r))
        return keys.get(key_id)

    class Handler(GatewayHandler):
        def check(self, method, body):
            """None when the signature is right, else why not."""
            auth = self.headers.get("Authorization") or ""
            if not auth.startswith("AWS4-HMAC-SHA256 "):
                return "missing AWS4-HMAC-SHA256 Authorization", None
            fields = dict(f.strip().split("=", 1) for f in auth[len("AWS4-HMAC-SHA256 "):].split(","))
            key_id, date, region, service, terminal = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            amz_date = self.headers.get("X-Amz-Date") or ""
            if (region, service, terminal) != (args.region, args.service, "aws4_request"):
                return f"wrong scope {fields['Credential']}", key_id
            if date != amz_date[:8] or abs(time.time() - calendar.timegm(
                    time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))) > 300:
                return f"X-Amz-Date {amz_date} is not now", key_id
            if not {"host", "x-amz-date"} <= set(signed) or signed != sorted(signed):
                return f"SignedHeaders {signed}", key_id
            key = key_for(key_id)
            if key is None:
                return f"unknown access key {key_id}", key_id
            if key["token"] and (self.headers.get("X-Amz-Security-Token") != key["token"]
                                 or "x-amz-security-token" not in signed):
                return "temporary credentials without their (signed) session token", key_id
            headers = {}
            for name, value in self.headers.items():
                headers.setdefault(name.lower(), []).append(value)
            if any(name not in headers for name in signed):
                return "a signed header is missing", key_id
            expected, creq = signature(key["secret"], method, self.path, headers, signed, body,
                                       amz_date, args.region, args.service)
            if not hmac.compare_digest(expected, fields["Signature"]):
                return "The request signature we calculated does not match the signature you provided. " \
                       f"The Canonical String for this request should have been {creq!r}", key_id
            return None, key_id

        def forward(self, method, body):
            if self.path == "/proxy/requests":
                with lock:
                    return self.reply(200, json.dumps(seen).encode())
            why, key_id = self.check(method, body)
            with lock:
                seen.append({"method": method, "path": self.path.split("?")[0], "key_id": key_id,
                             "error": why})
            if why:
                return self.reply(403, json.dumps({"message": why}).encode())
            if not self.path.startswith(prefix + "/api/v1/"):
                return self.reply(404, b'{"message":"no such workspace path"}')
            self.relay(args.upstream + self.path[len(prefix):], method, body)

    serve_on_loopback(args.port, Handler).serve_forever()


if __name__ == "__main__":
    main()
