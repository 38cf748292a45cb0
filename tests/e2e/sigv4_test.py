"""AWS SigV4 end to end (issue 13, item 3): the adapter with --prometheus-sigv4-region talks to an
Amazon Managed Service for Prometheus look-alike (tests/fakes/sigv4_proxy.py, which recomputes
every signature in Python from the documented algorithm and forwards to the real Prometheus),
with credentials from each source the AWS SDKs use: the environment's keys, IRSA's web identity
through a fake STS, and EKS Pod Identity through a fake agent (tests/fakes/fake_aws_credentials.py).
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fakes"))
from e2e_test import BINARY, CUSTOM, PODS, StackTest, start_one_exporter_prometheus  # noqa: E402
from sigv4_proxy import signature  # noqa: E402
from stack import FAKES, free_port, http_get, wait_until  # noqa: E402

REGION = "us-west-2"
WORKSPACE = "ws-e2e"
ROLE = "arn:aws:iam::123456789012:role/gpu-metrics-adapter"
STATIC_KEY = ("AKIAE2EEXAMPLE", "e2e/secret+KEY")
TRITON = f"{CUSTOM}/v1beta2/namespaces/inference/pods/triton-a/gpu_utilization"
# Temporary credentials live this long, so that the refresh (half-way for credentials shorter
# than the 5 minutes' margin) happens within a test.
DURATION = 6


class SigV4(StackTest):
    @classmethod
    def start(cls, stack):
        start_one_exporter_prometheus(stack)
        cls.lister = stack.start_fake_kube(PODS)
        cls.web_token = os.path.join(stack.dir, "web-identity-token")
        cls.pod_token = os.path.join(stack.dir, "pod-identity-token")
        with open(cls.web_token, "w") as f:
            f.write("eyJ-web-identity-jwt\n")
        with open(cls.pod_token, "w") as f:
            f.write("eyJ-pod-identity-jwt")
        cls.aws = free_port()
        stack.start("aws", [sys.executable, os.path.join(FAKES, "fake_aws_credentials.py"),
                            "--port", str(cls.aws), "--role-arn", ROLE,
                            "--web-identity-token", "eyJ-web-identity-jwt",
                            "--pod-identity-token", "eyJ-pod-identity-jwt", "--duration", str(DURATION)])
        cls.proxy = free_port()
        stack.start("proxy", [sys.executable, os.path.join(FAKES, "sigv4_proxy.py"), "--port", str(cls.proxy),
                              "--upstream", stack.prometheus_url, "--workspace", WORKSPACE, "--region", REGION,
                              "--key", "=".join(STATIC_KEY), "--keys-from", f"http://127.0.0.1:{cls.aws}/fake/keys"])
        for port in (cls.aws, cls.proxy):
            wait_until("fake", lambda port=port: http_get(f"http://127.0.0.1:{port}/fake/keys" if port == cls.aws
                                                          else f"http://127.0.0.1:{port}/proxy/requests"), timeout=20)

    def fetch(self, port, path):
        return json.loads(http_get(f"http://127.0.0.1:{port}{path}"))

    def run_adapter(self, aws_env, extra_args=(), wait_ready=True):
        """Restarts the adapter signing with `aws_env`; the proxy's records of this run."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "KUBERNETES_SERVICE_"))}
        env.update(aws_env)
        self.stack.stop("adapter")
        self.first = len(self.fetch(self.proxy, "/proxy/requests"))
        self.stack.start_adapter([f"--prometheus-sigv4-region={REGION}", *extra_args],
                                 lister_kubeconfig=self.lister, wait_ready=wait_ready, env=env,
                                 prometheus_url=f"http://127.0.0.1:{self.proxy}/workspaces/{WORKSPACE}")

    def seen(self):
        return self.fetch(self.proxy, "/proxy/requests")[self.first:]

    def assert_served_signed(self, key_prefix, methods=("GET",)):
        code, out, err = self.stack.kubectl_raw(TRITON)
        self.assertEqual(code, 0, err + self.stack.log("adapter")[-2000:])
        self.assertEqual([i["describedObject"]["name"] for i in json.loads(out)["items"]], ["triton-a"])
        seen = self.seen()
        self.assertEqual([r for r in seen if r["error"]], [], "every request verified")
        self.assertTrue(all(r["key_id"].startswith(key_prefix) for r in seen), seen)
        paths = {(r["method"], r["path"].removeprefix(f"/workspaces/{WORKSPACE}")) for r in seen}
        for method in methods:
            self.assertIn((method, "/api/v1/query"), paths)
        self.assertTrue(any(p == "/api/v1/series" for _, p in paths), paths)
        return seen

    def test_python_verifier_reproduces_the_documented_aws_example(self):
        # The IAM ListUsers example of AWS' SigV4 documentation: the verifier is right first.
        sig, _ = signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "GET", "/?Action=ListUsers&Version=2010-05-08",
                           {"content-type": ["application/x-www-form-urlencoded; charset=utf-8"],
                            "host": ["iam.amazonaws.com"], "x-amz-date": ["20150830T123600Z"]},
                           ["content-type", "host", "x-amz-date"], b"", "20150830T123600Z", "us-east-1", "iam")
        self.assertEqual(sig, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")

    def test_environment_keys_sign_get_and_post(self):
        keys = {"AWS_ACCESS_KEY_ID": STATIC_KEY[0], "AWS_SECRET_ACCESS_KEY": STATIC_KEY[1]}
        self.run_adapter(keys, ["--prometheus-verb=POST"])
        self.assert_served_signed(STATIC_KEY[0], methods=("POST",))
        self.run_adapter(keys)
        self.assert_served_signed(STATIC_KEY[0])
        self.assertIn("credentials from the environment (AWS_ACCESS_KEY_ID", self.stack.log("adapter"))

    def test_irsa_web_identity_through_sts_refreshed_before_expiry(self):
        self.run_adapter({"AWS_ROLE_ARN": ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": self.web_token,
                          "AWS_REGION": REGION, "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{self.aws}"})
        self.assert_served_signed("ASIASTS")
        # Discovery waited for the first credentials rather than failing without them.
        self.assertNotIn("not sending the request unsigned", self.stack.log("adapter"))
        calls = [r for r in self.fetch(self.aws, "/fake/requests") if r["kind"] == "sts"]
        self.assertIsNone(calls[-1]["authorization"], "AssumeRoleWithWebIdentity is unsigned")
        self.assertEqual(calls[-1]["form"]["RoleArn"], ROLE)
        self.assertEqual(calls[-1]["form"]["WebIdentityToken"], "eyJ-web-identity-jwt")
        # Refreshed before they expire: a second key signs later requests, none fails.
        wait_until("a refreshed key in use", lambda: len({r["key_id"] for r in self.seen()}) >= 2,
                   timeout=DURATION * 3)
        self.assertEqual([r for r in self.seen() if r["error"]], [])

    def test_eks_pod_identity_agent(self):
        self.run_adapter({"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{self.aws}/v1/credentials",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": self.pod_token})
        self.assert_served_signed("ASIAPOD")
        calls = [r for r in self.fetch(self.aws, "/fake/requests") if r["kind"] == "pod-identity"]
        self.assertEqual(calls[-1]["authorization"], "eyJ-pod-identity-jwt")

    def test_without_credentials_503_and_nothing_sent_unsigned(self):
        wrong = os.path.join(self.stack.dir, "wrong-token")
        with open(wrong, "w") as f:
            f.write("not-the-token")
        self.run_adapter({"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://127.0.0.1:{self.aws}/v1/credentials",
                          "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": wrong}, wait_ready=False)
        wait_until("the refusal logged", lambda: "not sending the request unsigned" in self.stack.log("adapter"),
                   timeout=20)
        code, _, err = self.stack.kubectl_raw(TRITON)
        self.assertNotEqual(code, 0)
        self.assertIn("ServiceUnavailable", err)
        self.assertEqual(self.seen(), [], "no request reached the backend")
        log = self.stack.log("adapter")
        self.assertIn("answered 401", log)
        # Failing while the supervisor waits to fetch again (most of the time: its back-off).
        wait_until("loop-aws-credentials failing in /readyz",
                   lambda: "[-]loop-aws-credentials failed" in self.stack.https_get("/readyz?verbose")[1],
                   timeout=10)
        if os.environ.get("GMA_SHOW_LOG"):
            print(log[-3000:])

    def test_check_command_signs_with_credentials_fetched_once(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ROLE_ARN": ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": self.web_token,
                    "AWS_ENDPOINT_URL_STS": f"http://127.0.0.1:{self.aws}"})
        self.first = len(self.fetch(self.proxy, "/proxy/requests"))
        rules = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "manifests", "base",
                             "gpu-rules.yaml")
        p = subprocess.run([os.path.abspath(BINARY), "check", "--config", rules,
                            f"--prometheus-url=http://127.0.0.1:{self.proxy}/workspaces/{WORKSPACE}",
                            f"--prometheus-sigv4-region={REGION}",
                            "--explain", "namespaces/inference/pods/*/gpu_utilization"],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("=> Prometheus:", p.stdout)
        seen = self.seen()
        self.assertTrue(seen)
        self.assertEqual([r for r in seen if r["error"] or not r["key_id"].startswith("ASIASTS")], [])

    def test_refusals(self):
        def run(*args, env=None):
            return subprocess.run([os.path.abspath(BINARY), *args], capture_output=True, text=True, timeout=30,
                                  env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | (env or {}))
        p = run("--prometheus-sigv4-region=us-west-2", "--prometheus-token-file=/dev/null")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--prometheus-sigv4-region excludes --prometheus-token-file", p.stderr)
        p = run("--prometheus-sigv4-service=aps")
        self.assertEqual(p.returncode, 2)
        self.assertIn("--prometheus-sigv4-service needs --prometheus-sigv4-region", p.stderr)
        p = run("--prometheus-sigv4-region=us-west-2", "--insecure-skip-auth", "--secure-port=1",
                f"--cert-dir={self.stack.dir}/refusal-certs")
        self.assertEqual(p.returncode, 1)
        self.assertIn("no AWS credentials: set AWS_ACCESS_KEY_ID", p.stderr)


if __name__ == "__main__":
    unittest.main()
