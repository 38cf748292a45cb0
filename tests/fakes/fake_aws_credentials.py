#!/usr/bin/env python3
"""A fake of the two AWS credential endpoints a pod uses, on loopback, speaking their documented
formats:

- STS AssumeRoleWithWebIdentity (IRSA): `POST /` with the query-protocol form
  `Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=…&RoleSessionName=…&WebIdentityToken=…`,
  unsigned; answers the `AssumeRoleWithWebIdentityResponse` XML (namespace
  https://sts.amazonaws.com/doc/2011-06-15/), or an `ErrorResponse` (400 InvalidIdentityToken).
- the EKS Pod Identity agent: `GET /v1/credentials` with `Authorization: <token>` (no "Bearer");
  answers `{"AccessKeyId","SecretAccessKey","Token","AccountId","Expiration"}`.

Credentials expire --duration seconds after they are issued, each with a new key id.
`GET /fake/keys` lists every key issued ({id: {"secret", "token"}}) for the verifying proxy,
`GET /fake/requests` what was asked.
"""
import argparse
import json
import re
import secrets
import threading
import time
import urllib.parse

from replies import ReplyingHandler, serve_on_loopback

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def iso8601(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--role-arn", required=True)
    p.add_argument("--web-identity-token", required=True)
    p.add_argument("--pod-identity-token", required=True)
    p.add_argument("--duration", type=int, default=3600, help="seconds credentials live")
    args = p.parse_args()
    keys = {}
    seen = []
    lock = threading.Lock()

    def issue(prefix):
        key_id = f"ASIA{prefix}{secrets.token_hex(6).upper()}"
        secret = secrets.token_urlsafe(30)
        token = secrets.token_urlsafe(60)
        with lock:
            keys[key_id] = {"secret": secret, "token": token}
        return key_id, secret, token, iso8601(time.time() + args.duration)

    class Handler(ReplyingHandler):
        def record(self, **what):
            with lock:
                seen.append(what)

        def do_GET(self):
            if self.path == "/fake/keys":
                with lock:
                    return self.reply(200, json.dumps(keys).encode())
            if self.path == "/fake/requests":
                with lock:
                    return self.reply(200, json.dumps(seen).encode())
            if self.path != "/v1/credentials":
                return self.reply(404, b'{"message":"not found"}')
            token = self.headers.get("Authorization")
            ok = token == args.pod_identity_token
            self.record(kind="pod-identity", authorization=token, ok=ok)
            if not ok:
                return self.reply(401, b'{"message":"invalid authorization token"}')
            key_id, secret, session, expiration = issue("POD")
            self.reply(200, json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret, "Token": session,
                                        "AccountId": "123456789012", "Expiration": expiration}).encode())

        def sts_error(self, code, message):
            body = (f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
                    f"<Message>{message}</Message></Error><RequestId>{secrets.token_hex(8)}</RequestId>"
                    "</ErrorResponse>")
            self.reply(400, body.encode(), "text/xml")

        def do_POST(self):
            form = dict(urllib.parse.parse_qsl(self.read_body().decode(), keep_blank_values=True))
            self.record(kind="sts", form=form, content_type=self.headers.get("Content-Type"),
                        authorization=self.headers.get("Authorization"))
            if self.path != "/" or not (self.headers.get("Content-Type") or "").startswith(
                    "application/x-www-form-urlencoded"):
                return self.sts_error("InvalidAction", "expected a form POST to /")
            if form.get("Action") != "AssumeRoleWithWebIdentity" or form.get("Version") != "2011-06-15":
                return self.sts_error("InvalidAction", "Could not find operation " + form.get("Action", ""))
            if not re.fullmatch(r"[\w+=,.@-]{2,64}", form.get("RoleSessionName", "")):
                return self.sts_error("ValidationError", "invalid RoleSessionName")
            if form.get("RoleArn") != args.role_arn:
                return self.sts_error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
            if form.get("WebIdentityToken") != args.web_identity_token:
                return self.sts_error("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider")
            key_id, secret, session, expiration = issue("STS")
            role = args.role_arn.split("/")[-1]
            body = (f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}">'
                    "<AssumeRoleWithWebIdentityResult>"
                    "<SubjectFromWebIdentityToken>system:serviceaccount:custom-metrics:gpu-metrics-adapter"
                    "</SubjectFromWebIdentityToken>"
                    "<Audience>sts.amazonaws.com</Audience>"
                    f"<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/{role}/"
                    f"{form['RoleSessionName']}</Arn><AssumedRoleId>AROA:{form['RoleSessionName']}"
                    "</AssumedRoleId></AssumedRoleUser>"
                    f"<Credentials><SessionToken>{session}</SessionToken>"
                    f"<SecretAccessKey>{secret}</SecretAccessKey>"
                    f"<Expiration>{expiration}</Expiration>"
                    f"<AccessKeyId>{key_id}</AccessKeyId></Credentials>"
                    "<Provider>arn:aws:iam::123456789012:oidc-provider/oidc.eks.example</Provider>"
                    "</AssumeRoleWithWebIdentityResult>"
                    f"<ResponseMetadata><RequestId>{secrets.token_hex(8)}</RequestId></ResponseMetadata>"
                    "</AssumeRoleWithWebIdentityResponse>")
            self.reply(200, body.encode(), "text/xml")

    serve_on_loopback(args.port, Handler).serve_forever()


if __name__ == "__main__":
    main()
