"""--prometheus-auth-provider=gcp|azure end to end: the adapter gets an access token from a fake
GKE metadata server or a fake Azure AD (tests/fakes/cloud_identity.py, speaking their documented
requests and JSON), sends it to a front of the real Prometheus that accepts only unexpired
tokens the fake issued, refreshes it before it expires, and answers 503 with a clear log line
once the token endpoint is down and the last token has expired. Loopback only.
"""
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from e2e_test import BINARY, StackTest, start_one_exporter_prometheus  # noqa: E402
from stack import FAKES, free_port, wait_until  # noqa: E402

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
METRIC = f"{CUSTOM}/namespaces/inference/pods/triton-b/gpu_utilization"
GCP_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
EXPIRES_IN = 4  # seconds: refreshed after 2


def http(url, headers=None):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


class CloudAuth(StackTest):
    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)

    def start_identity(self, provider):
        """The token endpoint and Prometheus' front; returns the token endpoint's URL."""
        self.token_port, proxy_port = free_port(), free_port()
        issued = os.path.join(self.stack.dir, f"issued-{provider}.json")
        self.assertion = os.path.join(self.stack.dir, "azure-identity-token")
        with open(self.assertion, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig\n")
        script = os.path.join(FAKES, "cloud_identity.py")
        self.token_args = [sys.executable, script, "token", "--provider", provider, "--port",
                           str(self.token_port), "--issued-file", issued, "--expires-in", str(EXPIRES_IN),
                           "--assertion-file", self.assertion, "--tenant", "tenant-1", "--client-id", "client-1"]
        self.stack.start("identity", self.token_args)
        self.stack.start("front", [sys.executable, script, "proxy", "--port", str(proxy_port), "--issued-file",
                                   issued, "--upstream", self.stack.prometheus_url])
        self.front = f"http://127.0.0.1:{proxy_port}"
        base = f"http://127.0.0.1:{self.token_port}"
        wait_until("the fake token endpoint", lambda: http(base + "/fake/state")[0] == 200, timeout=20)
        wait_until("the front", lambda: http(self.front + "/api/v1/query?query=up")[0] == 401, timeout=20)
        self.addCleanup(self.stack.stop, "front")
        self.addCleanup(self.stack.stop, "identity")
        self.addCleanup(self.stack.stop, "adapter")
        return base

    def state(self):
        return json.loads(http(f"http://127.0.0.1:{self.token_port}/fake/state")[1])

    def served(self):
        status, body = self.stack.https_get(METRIC)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["items"][0]["value"], "60")

    def refreshes_and_fails_closed(self, provider):
        """The checks both providers share, once the adapter runs against the fakes."""
        self.served()
        # Refreshed before it expires: tokens keep coming, and after the first one expired
        # (the front refuses it) requests still pass with a newer one.
        first = f"{provider}-token-1"
        wait_until("a refreshed token", lambda: self.state()["issued"] >= 3, timeout=20)
        time.sleep(EXPIRES_IN + 0.5)
        status, _ = http(self.front + "/api/v1/query?query=up", {"Authorization": f"Bearer {first}"})
        self.assertEqual(status, 401, "the front still accepts the first token")
        self.served()
        log = self.stack.log("adapter")
        self.assertIn(f"prometheus-token ({provider}): got an access token from ", log)
        # The token endpoint goes away: once the last token has expired, requests fail with 503
        # rather than going out unauthenticated, and the log says why.
        self.stack.stop("identity")

        def unavailable():
            status, body = self.stack.https_get(METRIC)
            return status == 503 and body
        wait_until("503 without a token", unavailable, timeout=EXPIRES_IN + 10)
        log = self.stack.log("adapter")
        self.assertRegex(log, rf"prometheus-token \({provider}\): cannot get an access token from http://127\.0\.0\.1:"
                              rf"{self.token_port}/\S+: cannot connect to 127\.0\.0\.1:{self.token_port}")
        self.assertRegex(log, rf"failed: no access token for Prometheus from {provider} \(http://127\.0\.0\.1:"
                              rf"{self.token_port}/\S+\): the last one expired and refreshing it failed: "
                              rf"cannot connect to 127\.0\.0\.1:{self.token_port}")
        # Back again: served without a restart.
        self.stack.start("identity", self.token_args)
        wait_until("served again", lambda: self.stack.https_get(METRIC)[0] == 200, timeout=40)

    def test_gcp_metadata_server_token(self):
        base = self.start_identity("gcp")
        # The fake refuses what the metadata server refuses.
        self.assertEqual(http(base + GCP_PATH)[0], 403)
        self.stack.start_adapter([f"--prometheus-auth-provider=gcp", f"--prometheus-gcp-metadata-url={base}{GCP_PATH}",
                                  "--metrics-cache-ttl=0"], prometheus_url=self.front)
        requests = self.state()["requests"]
        self.assertTrue(requests)
        for r in requests[1:]:  # the first is the check above
            self.assertEqual((r["method"], r["path"], r["flavor"]), ("GET", GCP_PATH, "Google"))
        self.refreshes_and_fails_closed("gcp")
        # The front refuses Thanos' partial_response as Google does: the adapter left it out
        # after the first refusal, and said so once.
        log = self.stack.log("adapter")
        self.assertEqual(log.count("refuses the partial_response parameter"), 1, log)
        self.assertIn('Unknown name \\"partial_response\\"', log)

    def test_check_explain_fetches_one_token(self):
        base = self.start_identity("gcp")
        rules = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "manifests", "base",
                             "gpu-rules.yaml")
        args = [os.path.abspath(BINARY), "check", "--config", rules, "--prometheus-url", self.front,
                "--prometheus-auth-provider=gcp", "--explain", "namespaces/inference/pods/*/gpu_utilization"]
        p = subprocess.run([*args, f"--prometheus-gcp-metadata-url={base}{GCP_PATH}"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"=> Prometheus: [1-9]\d* series")
        self.assertEqual(self.state()["issued"], 1)
        self.stack.stop("identity")
        p = subprocess.run([*args, f"--prometheus-gcp-metadata-url={base}{GCP_PATH}"], capture_output=True,
                           text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("prometheus-token (gcp): cannot get an access token from", p.stdout + p.stderr)

    def test_azure_workload_identity_token_exchange(self):
        base = self.start_identity("azure")
        env = {"AZURE_CLIENT_ID": "client-1", "AZURE_TENANT_ID": "tenant-1",
               "AZURE_FEDERATED_TOKEN_FILE": self.assertion, "AZURE_AUTHORITY_HOST": base + "/"}
        with mock.patch.dict(os.environ, env):
            self.stack.start_adapter(["--prometheus-auth-provider=azure", "--metrics-cache-ttl=0"],
                                     prometheus_url=self.front)
        for r in self.state()["requests"]:
            self.assertEqual((r["method"], r["path"], r["content_type"]),
                             ("POST", "/tenant-1/oauth2/v2.0/token", "application/x-www-form-urlencoded"))
            self.assertEqual(r["form"], {
                "client_id": "client-1", "scope": "https://prometheus.monitor.azure.com/.default",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig",
                "grant_type": "client_credentials"})
        # Kubelet rotates the projected token: the next exchange presents the new one.
        with open(self.assertion, "w") as f:
            f.write("eyJhbGciOiJSUzI1NiJ9.rotated.sig")
        wait_until("an exchange with the rotated token", lambda: any(
            r["form"]["client_assertion"] == "eyJhbGciOiJSUzI1NiJ9.rotated.sig" for r in self.state()["requests"]),
            timeout=20)
        self.refreshes_and_fails_closed("azure")

    def test_azure_refused_exchange_is_logged_with_the_reason(self):
        self.start_identity("azure")
        env = {"AZURE_CLIENT_ID": "someone-else", "AZURE_TENANT_ID": "tenant-1",
               "AZURE_FEDERATED_TOKEN_FILE": self.assertion}
        with mock.patch.dict(os.environ, env):
            self.stack.start_adapter(["--prometheus-auth-provider=azure", "--metrics-cache-ttl=0",
                                      f"--prometheus-azure-authority-host=http://127.0.0.1:{self.token_port}"],
                                     prometheus_url=self.front, wait_ready=False)
        wait_until("the refusal in the log", lambda: "AADSTS900144" in self.stack.log("adapter"), timeout=20)
        self.assertIn("prometheus-token (azure): cannot get an access token from "
                      f"http://127.0.0.1:{self.token_port}/tenant-1/oauth2/v2.0/token: HTTP 400, error "
                      "invalid_request: AADSTS900144: The request body must contain client_id=client-1.",
                      self.stack.log("adapter"))
        status, body = self.stack.https_get(METRIC)
        self.assertEqual(status, 503, body)

    def test_azure_without_the_webhook_environment_refuses_to_start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
        with mock.patch.dict(os.environ, env, clear=True):
            proc = self.stack.start("bare", [os.path.abspath(BINARY), "--prometheus-auth-provider=azure",
                                             "--insecure-skip-auth", f"--secure-port={free_port()}",
                                             f"--cert-dir={os.path.join(self.stack.dir, 'certs-bare')}"])
        self.assertNotEqual(proc.wait(timeout=20), 0)
        self.assertIn("--prometheus-auth-provider=azure needs AZURE_CLIENT_ID in the environment",
                      self.stack.log("bare"))


if __name__ == "__main__":
    unittest.main()
