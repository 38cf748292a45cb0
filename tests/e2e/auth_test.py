"""End to end: delegated authentication and authorization over real TLS, with CAs and
certificates made by openssl here, the fake Kubernetes API answering TokenReview and
SubjectAccessReview, and kubectl (client certificate, token) plus Python's TLS client (front
proxy headers) as clients, directly and through the fake API's aggregation proxy.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from e2e_test import BINARY, PODS, SCENARIO_A, StackTest  # noqa: E402
from stack import Stack, issue, make_ca, wait_until  # noqa: E402

PODS_PATH = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/inference/pods/%2A/gpu_utilization"
SERVICE_DNS = "gpu-metrics-adapter.gpu-metrics.svc"  # the Service of stack.register_apiservices()
AUTH = {
    "tokens": {
        "token-bob": {"username": "bob", "uid": "42", "groups": ["ml-team"]},
        "token-carol": {"username": "carol", "groups": ["guests"]},
        "token-dave": {"username": "dave", "groups": ["ml-team"], "extra": {"scopes/a": ["x", "y"]}},
    },
    "allow": [
        {"user": "alice", "verb": "get", "resource": "pods", "subresource": "gpu_utilization"},
        {"user": "bob", "verb": "get", "resource": "pods"},
        {"user": "dave", "verb": "get", "resource": "pods"},
        {"user": "system:serviceaccount:kube-system:horizontal-pod-autoscaler", "verb": "get"},
        {"user": "system:serviceaccount:kube-system:horizontal-pod-autoscaler", "verb": "list"},
        {"group": "discovery-readers", "path": "/apis"},
    ],
}
HPA_HEADERS = {"X-Remote-User": "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
               "X-Remote-Group": "system:serviceaccounts", "X-Remote-Extra-Scopes%2Fa": "x"}


class Certificates:
    """Every CA and certificate the tests need, made with the openssl CLI."""

    def __init__(self, directory):
        d = os.path.join(directory, "pki")
        os.makedirs(d)
        self.front_proxy_ca = make_ca(d, "front-proxy-ca")
        self.client_ca = make_ca(d, "client-ca")
        self.other_ca = make_ca(d, "other-ca")
        self.serving_ca = make_ca(d, "serving-ca")
        self.rotated_ca = make_ca(d, "rotated-serving-ca")
        self.front_proxy = issue(d, self.front_proxy_ca, "front-proxy", "front-proxy-client", client=True)
        self.front_proxy_wrong_cn = issue(d, self.front_proxy_ca, "front-proxy-other", "someone-else", client=True)
        self.forged_front_proxy = issue(d, self.other_ca, "forged", "front-proxy-client", client=True)
        self.alice = issue(d, self.client_ca, "alice", "alice", ["ml-team", "viewers"], client=True)
        # Also for the name kube-aggregator checks: <service>.<namespace>.svc of the APIService.
        self.serving = issue(d, self.serving_ca, "serving", "127.0.0.1", dns_names=(SERVICE_DNS,))
        self.rotated = issue(d, self.rotated_ca, "rotated", "127.0.0.1", dns_names=(SERVICE_DNS,))


class DelegatedAuth(StackTest):
    @classmethod
    def start(cls, stack):
        cls.pki = Certificates(stack.dir)
        stack.start_exporter("exporter-a", SCENARIO_A)
        stack.start_prometheus([{"name": "dcgm", "exporter": "exporter-a"}])
        stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 6)
        # The fake API's aggregation proxy presents the front-proxy pair the adapter trusts, and
        # takes the users of client-ca's certificates.
        kubeconfig = stack.start_fake_kube(PODS, auth=AUTH, aggregator=True, front_proxy=cls.pki.front_proxy,
                                           client_ca=cls.pki.client_ca)
        # The serving pair lives where cert-manager would rotate it.
        cls.cert_file = os.path.join(stack.dir, "tls.crt")
        cls.key_file = os.path.join(stack.dir, "tls.key")
        shutil.copy(cls.pki.serving[0], cls.cert_file)
        shutil.copy(cls.pki.serving[1], cls.key_file)
        stack.start_adapter([
            f"--tls-cert-file={cls.cert_file}", f"--tls-private-key-file={cls.key_file}",
            f"--requestheader-client-ca-file={cls.pki.front_proxy_ca[0]}",
            "--requestheader-allowed-names=front-proxy-client",
            f"--client-ca-file={cls.pki.client_ca[0]}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--authorization-webhook-cache-authorized-ttl=3s",
            "--authorization-webhook-cache-unauthorized-ttl=3s",
            "--authentication-token-webhook-cache-ttl=3s",
        ], lister_kubeconfig=kubeconfig, insecure=False, serving_ca=cls.pki.serving_ca[0])
        stack.register_apiservices(ca_bundle=cls.pki.serving_ca[0])

    def reviews(self, kind):
        return [r for r in self.stack.kube_request("GET", "/fake/reviews") if r["kind"] == kind]

    def last_sar(self):
        return self.reviews("SubjectAccessReview")[-1]["spec"]

    # -- front proxy -----------------------------------------------------------------------
    def test_front_proxy_headers_are_authorized_through_subject_access_review(self):
        status, body = self.stack.https_get(PODS_PATH + "?labelSelector=app%3Dtriton", HPA_HEADERS,
                                            client_cert=self.pki.front_proxy)
        self.assertEqual(status, 200, body)
        self.assertEqual({i["describedObject"]["name"] for i in json.loads(body)["items"]},
                         {"triton-a", "triton-b"})
        spec = self.last_sar()
        self.assertEqual(spec["user"], HPA_HEADERS["X-Remote-User"])
        self.assertEqual(spec["groups"], ["system:serviceaccounts", "system:authenticated"])
        self.assertEqual(spec["extra"], {"scopes/a": ["x"]})
        self.assertEqual(spec["resourceAttributes"], {
            "namespace": "inference", "verb": "get", "group": "custom.metrics.k8s.io",
            "version": "v1beta2", "resource": "pods", "subresource": "gpu_utilization", "name": "*"})

    def test_external_metric_is_a_list_of_the_metric_resource(self):
        status, body = self.stack.https_get(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/inference/gpu_utilization", HPA_HEADERS,
            client_cert=self.pki.front_proxy)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.last_sar()["resourceAttributes"], {
            "namespace": "inference", "verb": "list", "group": "external.metrics.k8s.io",
            "version": "v1beta1", "resource": "gpu_utilization"})

    def test_an_encoded_slash_is_404_and_never_reviewed_as_another_resource(self):
        before = len(self.reviews("SubjectAccessReview"))
        # Decoded whole, this path would name resource "secrets"; routed by segments, the
        # namespace "a/secrets". Either way it is not a path the API serves.
        status, body = self.stack.https_get(
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/a%2Fsecrets/pods/x/gpu_utilization",
            HPA_HEADERS, client_cert=self.pki.front_proxy)
        self.assertEqual(status, 404, body)
        self.assertEqual(json.loads(body)["reason"], "NotFound")
        self.assertEqual(len(self.reviews("SubjectAccessReview")), before)

    def test_headers_from_another_ca_are_not_trusted(self):
        status, body = self.stack.https_get(PODS_PATH, HPA_HEADERS, client_cert=self.pki.forged_front_proxy)
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["message"],
                         'pods.custom.metrics.k8s.io "*" is forbidden: User "system:anonymous" cannot get '
                         'resource "pods/gpu_utilization" in API group "custom.metrics.k8s.io" in the '
                         'namespace "inference": no RBAC policy matched')
        self.assertEqual(self.last_sar()["groups"], ["system:unauthenticated"])

    def test_headers_from_a_cn_outside_the_allowed_names_are_not_trusted(self):
        status, body = self.stack.https_get(PODS_PATH, HPA_HEADERS, client_cert=self.pki.front_proxy_wrong_cn)
        self.assertEqual(status, 403, body)
        self.assertEqual(self.last_sar()["user"], "system:anonymous")

    def test_headers_without_a_certificate_are_ignored_even_system_masters(self):
        status, body = self.stack.https_get(PODS_PATH, {"X-Remote-User": "admin",
                                                        "X-Remote-Group": "system:masters"})
        self.assertEqual(status, 403, body)
        self.assertEqual(json.loads(body)["reason"], "Forbidden")

    def test_system_masters_through_the_front_proxy_skips_the_review(self):
        before = len(self.reviews("SubjectAccessReview"))
        status, _ = self.stack.https_get("/apis/custom.metrics.k8s.io/v1beta1",
                                         {"X-Remote-User": "system:kube-aggregator",
                                          "X-Remote-Group": "system:masters"},
                                         client_cert=self.pki.front_proxy)
        self.assertEqual(status, 200)
        self.assertEqual(len(self.reviews("SubjectAccessReview")), before)

    # -- client certificates and tokens with kubectl ---------------------------------------
    def test_kubectl_with_a_client_certificate(self):
        kubeconfig = self.stack.write_kubeconfig("alice", cert=self.pki.alice[0], key=self.pki.alice[1])
        code, out, err = self.stack.kubectl_raw(PODS_PATH, kubeconfig=kubeconfig)
        self.assertEqual(code, 0, err)
        self.assertEqual(len(json.loads(out)["items"]), 3)
        spec = self.last_sar()
        self.assertEqual(spec["user"], "alice")
        self.assertEqual(spec["groups"], ["ml-team", "viewers", "system:authenticated"])
        # alice may read gpu_utilization only.
        code, _, err = self.stack.kubectl_raw(PODS_PATH.replace("gpu_utilization", "gpu_power_watts"),
                                              kubeconfig=kubeconfig)
        self.assertNotEqual(code, 0)
        self.assertIn('Error from server (Forbidden): pods.custom.metrics.k8s.io "*" is forbidden: '
                      'User "alice" cannot get resource "pods/gpu_power_watts"', err)

    def test_kubectl_with_a_token(self):
        kubeconfig = self.stack.write_kubeconfig("bob", token="token-bob")
        code, out, err = self.stack.kubectl_raw(PODS_PATH, kubeconfig=kubeconfig)
        self.assertEqual(code, 0, err)
        self.assertIn("token-bob", [r["spec"]["token"] for r in self.reviews("TokenReview")])
        self.assertEqual(self.last_sar()["user"], "bob")
        self.assertEqual(self.last_sar()["uid"], "42")

    def test_invalid_token_is_401(self):
        kubeconfig = self.stack.write_kubeconfig("mallory", token="not-a-token")
        code, _, err = self.stack.kubectl_raw(PODS_PATH, kubeconfig=kubeconfig)
        self.assertNotEqual(code, 0)
        self.assertIn("Unauthorized", err)
        status, body = self.stack.https_get(PODS_PATH, {"Authorization": "Bearer not-a-token"})
        self.assertEqual((status, json.loads(body)["reason"]), (401, "Unauthorized"))

    def test_denied_review_is_403(self):
        kubeconfig = self.stack.write_kubeconfig("carol", token="token-carol")
        code, _, err = self.stack.kubectl_raw(PODS_PATH, kubeconfig=kubeconfig)
        self.assertNotEqual(code, 0)
        self.assertIn('(Forbidden)', err)
        self.assertIn('User "carol" cannot get resource "pods/gpu_utilization"', err)

    def test_non_resource_paths(self):
        self.assertEqual(self.stack.https_get("/healthz"), (200, "ok"))
        self.assertEqual(self.stack.https_get("/readyz")[0], 200)
        status, body = self.stack.https_get("/metrics")
        self.assertEqual(status, 403)
        self.assertEqual(json.loads(body)["message"],
                         'forbidden: User "system:anonymous" cannot get path "/metrics": no RBAC policy matched')
        self.assertEqual(json.loads(body)["details"], {})

    # -- through the aggregation proxy -------------------------------------------------------
    # Each check asks for a namespace of its own, so that no decision cached by an earlier
    # test answers it: the review it finds is the one its request caused.
    def sar_for(self, namespace):
        found = [r["spec"] for r in self.reviews("SubjectAccessReview")
                 if r["spec"].get("resourceAttributes", {}).get("namespace") == namespace]
        self.assertTrue(found, f"no SubjectAccessReview for namespace {namespace}")
        return found[-1]

    def test_through_the_aggregator_a_token_user_is_reviewed_as_itself(self):
        tokens_before = len(self.reviews("TokenReview"))
        kubeconfig = self.stack.write_aggregator_kubeconfig("bob-aggregated", token="token-bob")
        code, out, err = self.stack.kubectl_raw(PODS_PATH, kubeconfig=kubeconfig)
        self.assertEqual(code, 0, err)
        self.assertEqual(len(json.loads(out)["items"]), 3)
        code, out, err = self.stack.kubectl_raw(PODS_PATH.replace("inference", "agg-bob"), kubeconfig=kubeconfig)
        self.assertEqual(code, 0, err)
        spec = self.sar_for("agg-bob")
        self.assertEqual((spec["user"], spec["groups"]), ("bob", ["ml-team", "system:authenticated"]))
        # The adapter trusted the proxy's headers: bob's token never reached it.
        self.assertEqual(len(self.reviews("TokenReview")), tokens_before)

    def test_through_the_aggregator_a_certificate_user_and_extras(self):
        kubeconfig = self.stack.write_aggregator_kubeconfig("alice-aggregated", cert=self.pki.alice[0],
                                                            key=self.pki.alice[1])
        code, out, err = self.stack.kubectl_raw(PODS_PATH.replace("inference", "agg-alice"), kubeconfig=kubeconfig)
        self.assertEqual(code, 0, err)
        spec = self.sar_for("agg-alice")
        self.assertEqual((spec["user"], spec["groups"]), ("alice", ["ml-team", "viewers", "system:authenticated"]))
        # dave's extra arrives as X-Remote-Extra-Scopes%2fa (escaped, then canonicalized by Go).
        status, _, body = self.stack.aggregator_get(PODS_PATH.replace("inference", "agg-dave"), token="token-dave")
        self.assertEqual(status, 200, body)
        self.assertEqual(self.sar_for("agg-dave")["extra"], {"scopes/a": ["x", "y"]})

    def test_through_the_aggregator_a_refused_user_gets_the_adapters_403(self):
        kubeconfig = self.stack.write_aggregator_kubeconfig("carol-aggregated", token="token-carol")
        code, _, err = self.stack.kubectl_raw(PODS_PATH, kubeconfig=kubeconfig)
        self.assertNotEqual(code, 0)
        self.assertIn('Error from server (Forbidden): pods.custom.metrics.k8s.io "*" is forbidden: '
                      'User "carol" cannot get resource "pods/gpu_utilization"', err)
        # Headers a client forges are dropped by the proxy: carol stays carol.
        status, headers, body = self.stack.aggregator_get(PODS_PATH.replace("inference", "agg-carol"),
                                                          token="token-carol", headers={
                                                              "X-Remote-User": "admin",
                                                              "X-Remote-Group": "system:masters"})
        self.assertEqual(status, 403, body)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertIn('User "carol" cannot get resource', json.loads(body)["message"])
        self.assertEqual(self.sar_for("agg-carol")["user"], "carol")

    # -- caching ---------------------------------------------------------------------------
    def test_decisions_are_cached_within_the_ttl_and_asked_again_after(self):
        path = PODS_PATH.replace("inference", "batch")
        bob = {"Authorization": "Bearer token-bob"}
        count = lambda kind: len([r for r in self.reviews(kind)
                                  if kind == "TokenReview" or "resourceAttributes" in r["spec"]])
        # Python's client, not kubectl: four requests must fit well inside the 3 s TTL, and
        # kubectl's start-up alone can take a second on a loaded machine.
        self.assertEqual(self.stack.https_get(path, bob)[0], 200)
        sars, tokens = count("SubjectAccessReview"), count("TokenReview")
        started = time.time()
        for _ in range(3):
            self.assertEqual(self.stack.https_get(path, bob)[0], 200)
        self.assertLess(time.time() - started, 2.5, "too slow to test a 3 s cache")
        self.assertEqual(count("SubjectAccessReview"), sars, "a cached decision was asked again")
        self.assertEqual(count("TokenReview"), tokens, "a cached token was reviewed again")
        time.sleep(3.5)
        self.assertEqual(self.stack.https_get(path, bob)[0], 200)
        self.assertEqual(count("SubjectAccessReview"), sars + 1)
        self.assertEqual(count("TokenReview"), tokens + 1)

    # -- certificates ----------------------------------------------------------------------
    def test_zz_rotated_serving_certificate_is_served_without_restart(self):
        kept = self.stack.https_connection(self.pki.alice)
        self.assertEqual(self.stack.https_get("/healthz", connection=kept), (200, "ok"))
        pid = self.stack.procs["adapter"].pid
        # cert-manager writes the new pair in place.
        shutil.copy(self.pki.rotated[1], self.key_file)
        shutil.copy(self.pki.rotated[0], self.cert_file)
        # From now on only the new CA verifies the server.
        self.stack.serving_ca = self.pki.rotated_ca[0]
        wait_until("the rotated certificate", lambda: self.stack.https_get("/healthz")[0] == 200, timeout=20)
        self.assertEqual(self.stack.procs["adapter"].pid, pid)
        self.assertIsNone(self.stack.procs["adapter"].poll())
        # The connection made before the rotation keeps working.
        self.assertEqual(self.stack.https_get("/healthz", connection=kept), (200, "ok"))
        kept.close()
        self.assertIn("reloaded the serving certificate", self.stack.log("adapter"))

    def test_zz_unreachable_cluster_is_503_never_allow(self):
        self.stack.stop("kube")
        status, body = self.stack.https_get(PODS_PATH.replace("inference", "never-asked"),
                                            HPA_HEADERS, client_cert=self.pki.front_proxy)
        self.assertEqual(status, 503, body)
        self.assertEqual(json.loads(body)["reason"], "ServiceUnavailable")
        self.assertEqual(self.stack.https_get("/livez"), (200, "ok"))


class ConfigMapTrust(unittest.TestCase):
    """No CA flags: the CAs and header names come from kube-system/extension-apiserver-authentication."""

    def test_configmap_is_read_and_followed(self):
        stack = Stack(os.path.abspath(BINARY))
        self.addCleanup(stack.close)
        pki = Certificates(stack.dir)
        stack.start_exporter("exporter-a", SCENARIO_A)
        stack.start_prometheus([{"name": "dcgm", "exporter": "exporter-a"}])
        stack.wait_for_series("DCGM_FI_DEV_GPU_UTIL", 6)
        kubeconfig = stack.start_fake_kube(PODS, auth=AUTH)
        with open(pki.front_proxy_ca[0]) as f:
            front_proxy_ca = f.read()
        data = {"requestheader-client-ca-file": front_proxy_ca,
                "requestheader-username-headers": '["X-Remote-User"]',
                "requestheader-group-headers": '["X-Remote-Group"]',
                "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
                "requestheader-allowed-names": '["front-proxy-client"]'}
        stack.kube_request("PUT", "/fake/configmap", {"data": data})
        stack.start_adapter([f"--authentication-kubeconfig={kubeconfig}",
                             f"--authorization-kubeconfig={kubeconfig}"], insecure=False)
        status, body = stack.https_get(PODS_PATH, HPA_HEADERS, client_cert=pki.front_proxy)
        self.assertEqual(status, 200, body)
        # kube-apiserver now names another front-proxy client: the old CN loses its trust.
        data["requestheader-allowed-names"] = '["aggregator"]'
        stack.kube_request("PUT", "/fake/configmap", {"data": data})
        wait_until("the ConfigMap change", lambda: stack.https_get(
            PODS_PATH, HPA_HEADERS, client_cert=pki.front_proxy)[0] == 403, timeout=20)


def not_in_cluster():
    """This environment without KUBERNETES_SERVICE_*: a CI runner inside a pod would otherwise
    make the adapter read its service account."""
    return {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE")}


class SecureByDefault(unittest.TestCase):
    def test_refuses_to_start_without_any_auth_configuration(self):
        p = subprocess.run([os.path.abspath(BINARY), "--secure-port=1"], capture_output=True, text=True,
                           timeout=30, env=not_in_cluster())
        self.assertEqual(p.returncode, 1)
        self.assertIn("refusing to start", p.stderr)
        self.assertIn("--authorization-kubeconfig", p.stderr)
        self.assertIn("--requestheader-client-ca-file", p.stderr)

    def test_refuses_without_authorization(self):
        p = subprocess.run([os.path.abspath(BINARY), "--secure-port=1", "--client-ca-file=/dev/null"],
                           capture_output=True, text=True, timeout=30,
                           env=not_in_cluster())
        self.assertEqual(p.returncode, 1)
        self.assertIn("authorization needs --authorization-kubeconfig", p.stderr)
        self.assertNotIn("authentication needs", p.stderr)

    def test_bad_tls_flags_stop_the_start(self):
        p = subprocess.run([os.path.abspath(BINARY), "--insecure-skip-auth", "--secure-port=1",
                            "--tls-min-version=VersionTLS10", f"--cert-dir={os.path.join('/tmp', 'gma-tls-flag-test')}"],
                           capture_output=True, text=True, timeout=30,
                           env=not_in_cluster())
        self.assertEqual(p.returncode, 1)
        self.assertIn("--tls-min-version", p.stderr)


if __name__ == "__main__":
    unittest.main()
