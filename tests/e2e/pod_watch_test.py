"""End to end, the adapter's pod list-and-watch against tests/fakes/fake_kube_apiserver.py, with
the real Prometheus behind a synthetic dcgm-exporter and the real binary.

The adapter lists and watches pods metadata-only, as client-go's metadata informers do:
  LIST   /api/v1/pods?limit=500&resourceVersion=0, later pages limit=500&continue=TOKEN
         Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json
  WATCH  /api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=N
         Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json
and falls back to plain application/json (full Pods) on a server that answers 406. What the fake
received is read from its GET /fake/pod_requests; what the adapter made of it, from the pods an
HPA request with a labelSelector is answered for (a pod is in an answer only when it exists in
the pod cache, matches, and has data in Prometheus).

One Prometheus serves every class; each class (or test) has its own fake API and adapter.
"""
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from stack import Stack, wait_until  # noqa: E402
from e2e_test import BINARY, gpu  # noqa: E402

LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
PLAIN_ACCEPT = "application/json"
# What the adapter's log says when it falls back to full objects after a 406 (assumed: any line
# that names the media type it gave up on).
FALLBACK_LOG_PHRASE = "PartialObjectMetadata"
PAGE = 500

# GPUs of pods on every page of the paged list below, and of a pod created later (triton-split).
SCENARIO = {"hostname": "gpu-node-1", "gpus": [
    gpu(0, 80, "inference", "triton-a"), gpu(1, 95, "inference", "triton-a"),
    gpu(2, 60, "inference", "triton-b"), gpu(3, 10, "inference", "other-c"),
    gpu(4, 33, "inference", "triton-split"),
    gpu(5, 20, "fleet", "worker-0000"), gpu(6, 30, "fleet", "worker-0700"), gpu(7, 40, "fleet", "worker-1150"),
    gpu(8, 0)]}
GPU_SERIES = len(SCENARIO["gpus"])
PODS = [
    {"namespace": "inference", "name": "triton-a", "labels": {"app": "triton", "tier": "gpu"}},
    {"namespace": "inference", "name": "triton-b", "labels": {"app": "triton"}},
    {"namespace": "inference", "name": "other-c", "labels": {"app": "other"}},
]
TRITON = {"triton-a": "87500m", "triton-b": "60"}
# 1200 pods in "fleet", listed (in etcd's key order) before "inference": pages of 500 hold
# worker-0000..0499, 0500..0999, and 1000..1199 with the inference pods.
FLEET = [{"namespace": "fleet", "name": f"worker-{i:04d}", "labels": {"app": "worker", "pool": "abc"[i % 3]}}
         for i in range(1200)]

PROMETHEUS = None  # the module's Stack with the exporter and Prometheus


def setUpModule():
    global PROMETHEUS
    PROMETHEUS = Stack(os.path.abspath(BINARY))
    try:
        PROMETHEUS.start_exporter("exporter", SCENARIO)
        PROMETHEUS.start_prometheus([{"name": "dcgm", "exporter": "exporter", "honor_labels": True}])
        PROMETHEUS.wait_for_series("DCGM_FI_DEV_GPU_UTIL", GPU_SERIES)
    except Exception:
        PROMETHEUS.dump_logs_and_close()
        raise


def tearDownModule():
    PROMETHEUS.close()


def start_kube_and_adapter(pods, **faults):
    """A stack of its own: the fake API with `pods` (and `faults` set before the adapter starts)
    and the adapter on the module's Prometheus. Returns (stack, requests the fake had before)."""
    stack = Stack(os.path.abspath(BINARY))
    try:
        lister = stack.start_fake_kube(pods)
        if faults:
            stack.kube_faults(**faults)
        before = len(stack.pod_requests())  # start_fake_kube's own probe
        # No metric cache: every answer is picked from a fresh query, so only the pod cache decides.
        stack.start_adapter(["--metrics-cache-ttl=0"], lister_kubeconfig=lister,
                            prometheus_url=PROMETHEUS.prometheus_url)
    except Exception:
        stack.dump_logs_and_close()
        raise
    return stack, before


def selected(stack, namespace, selector):
    """{pod: value} of the HPA's request pods/*/gpu_utilization?labelSelector=..., or None
    when it is not a 200."""
    status, body = stack.https_get(
        f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/pods/%2A/gpu_utilization"
        f"?labelSelector={urllib.parse.quote(selector)}")
    if status != 200:
        return None
    return {i["describedObject"]["name"]: i["value"] for i in json.loads(body)["items"]}


def is_watch(request):
    return urllib.parse.parse_qs(request["query"]).get("watch", [""])[0] in ("1", "true")


def query(request):
    return {k: v[0] for k, v in urllib.parse.parse_qs(request["query"], keep_blank_values=True).items()}


class PodTest(unittest.TestCase):
    stack = None
    before = 0

    def requests(self):
        """The adapter's pod requests so far (not start_fake_kube's probe)."""
        return self.stack.pod_requests()[self.before:]

    def lists(self):
        return [r for r in self.requests() if not is_watch(r)]

    def watches(self):
        return [r for r in self.requests() if is_watch(r)]

    def show(self):
        """For failure messages: what the fake received and the end of the adapter's log."""
        lines = [f"  {r['served']:>26} {r['query'][:90]}  Accept: {r['accept']}" for r in self.requests()]
        return "\npod requests:\n" + "\n".join(lines[-30:]) + "\nadapter log:\n" + self.stack.log("adapter")[-3000:]

    def wait_for(self, what, namespace, selector, expected, timeout=20):
        try:
            wait_until(what, lambda: selected(self.stack, namespace, selector) == expected, timeout=timeout)
        except TimeoutError:
            self.fail(f"{what}: {selector} answered {selected(self.stack, namespace, selector)}, "
                      f"expected {expected}{self.show()}")

    def relabel_and_expect(self, name, labels, selector, expected):
        """A change made now reaches the answers (the adapter is watching again)."""
        self.assertNotEqual(selected(self.stack, "inference", selector), expected, "before the change")
        self.stack.kube_request("PUT", f"/fake/pods/inference/{name}", {"labels": labels})
        self.wait_for(f"{name} relabelled {labels}", "inference", selector, expected)

    def settle(self):
        """Waits until the adapter is watching (its last pod request is a watch being streamed)
        and answers as the pods are at rest: nothing an earlier step started is under way."""
        def quiet():
            requests = self.requests()
            return (requests and is_watch(requests[-1])
                    and requests[-1]["served"] in ("PartialObjectMetadata", "Pod")
                    and self.stack.kube_request("GET", "/fake/faults")["open_watches"] >= 1
                    and selected(self.stack, "inference", "app=triton") == TRITON
                    and selected(self.stack, "inference", "app=other") == {"other-c": "10"})
        try:
            wait_until("the adapter watching, with the pods at rest", quiet, timeout=20)
        except TimeoutError:
            self.fail("the adapter did not settle" + self.show())


class MetadataWatch(PodTest):
    """A server that serves the metadata forms, with 1203 pods: three pages."""

    @classmethod
    def setUpClass(cls):
        cls.stack, cls.before = start_kube_and_adapter(FLEET + PODS)
        try:
            wait_until("the first pod list", lambda: selected(cls.stack, "inference", "app=triton") == TRITON,
                       timeout=30)
        except Exception:
            cls.stack.dump_logs_and_close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def setUp(self):
        self.settle()

    def first_sync(self):
        """The requests of the first list, page by page, and the watch that followed it."""
        requests = self.requests()
        first_watch = next(i for i, r in enumerate(requests) if is_watch(r))
        return requests[:first_watch], requests[first_watch]

    def test_the_first_list_and_watch_ask_for_metadata_only(self):
        pages, watch = self.first_sync()
        first = pages[0]
        self.assertEqual(query(first), {"limit": str(PAGE), "resourceVersion": "0"}, self.show())
        self.assertEqual(first["accept"], LIST_ACCEPT, self.show())
        for page in pages:
            self.assertEqual(page["served"], "PartialObjectMetadataList", self.show())
        self.assertEqual(watch["accept"], WATCH_ACCEPT, self.show())
        self.assertEqual(watch["served"], "PartialObjectMetadata", self.show())
        watch_query = query(watch)
        self.assertEqual(watch_query.get("allowWatchBookmarks"), "true", self.show())
        # The watch starts where the list ended.
        self.assertEqual(watch_query.get("resourceVersion"), pages[-1]["resourceVersion"], self.show())

    def test_selectors_pick_exactly_the_right_pods(self):
        cases = [
            ("inference", "app=triton", TRITON),
            ("inference", "app=other", {"other-c": "10"}),
            ("inference", "app in (triton,other),!tier", {"triton-b": "60", "other-c": "10"}),
            ("inference", "tier=gpu", {"triton-a": "87500m"}),
            ("inference", "app=nobody", {}),
            ("inference", "app=worker", {}),  # the fleet's label, another namespace
        ]
        for namespace, selector, expected in cases:
            with self.subTest(selector=selector):
                self.assertEqual(selected(self.stack, namespace, selector), expected)

    def test_paging_follows_every_continue_token(self):
        pages, _ = self.first_sync()
        total = len(FLEET) + len(PODS)
        self.assertEqual(len(pages), -(-total // PAGE), self.show())  # 3 pages of 500, 500, 203
        for previous, page in zip(pages, pages[1:]):
            self.assertTrue(previous["handed_continue"], self.show())
            # Later pages: the token, no resourceVersion (kube-apiserver refuses both at once).
            self.assertEqual(query(page), {"limit": str(PAGE), "continue": previous["handed_continue"]},
                             self.show())
        self.assertEqual(pages[-1]["handed_continue"], "", self.show())
        # Pods with data on each page, the last one included.
        self.assertEqual(selected(self.stack, "fleet", "app=worker"),
                         {"worker-0000": "20", "worker-0700": "30", "worker-1150": "40"})
        self.assertEqual(selected(self.stack, "fleet", "pool=b"), {"worker-0700": "30", "worker-1150": "40"})
        self.assertEqual(selected(self.stack, "fleet", "pool in (a,c)"), {"worker-0000": "20"})

    def test_a_pod_deleted_through_the_watch_leaves_the_answers(self):
        lists = len(self.lists())
        self.stack.kube_request("DELETE", "/fake/pods/inference/triton-b")
        try:
            self.wait_for("triton-b gone", "inference", "app=triton", {"triton-a": "87500m"})
            self.assertEqual(selected(self.stack, "inference", "app in (triton,other)"),
                             {"triton-a": "87500m", "other-c": "10"})
            self.assertEqual(len(self.lists()), lists, "the deletion came through the watch, not a LIST" + self.show())
        finally:
            self.stack.kube_request("PUT", "/fake/pods/inference/triton-b", {"labels": {"app": "triton"}})
        self.wait_for("triton-b back", "inference", "app=triton", TRITON)

    def test_a_watch_event_split_across_reads_is_applied(self):
        lists = len(self.lists())
        written = self.stack.kube_request("GET", "/fake/faults")["split_chunks_written"]
        self.stack.kube_faults(split_event={"namespace": "inference", "name": "triton-split",
                                            "labels": {"app": "triton"}, "pieces": 4, "pause": 0.2})
        try:
            self.wait_for("the pod of the split event", "inference", "app=triton", {**TRITON, "triton-split": "33"})
            self.assertGreaterEqual(self.stack.kube_request("GET", "/fake/faults")["split_chunks_written"] - written,
                                    4, "the event went out in pieces")
            self.assertEqual(len(self.lists()), lists, "the pod came through the watch, not a LIST" + self.show())
        finally:
            self.stack.kube_request("DELETE", "/fake/pods/inference/triton-split")
        self.wait_for("the split pod deleted", "inference", "app=triton", TRITON)

    def test_expired_history_and_a_cut_watch_relist(self):
        lists = len(self.lists())
        self.stack.kube_request("DELETE", "/fake/history")
        self.stack.kube_faults(drop_watches=True)
        try:
            wait_until("a new LIST", lambda: len(self.lists()) > lists, timeout=20)
        except TimeoutError:
            self.fail("no LIST after the watch was cut with its history gone" + self.show())
        relist = self.lists()[lists]
        self.assertEqual(relist["accept"], LIST_ACCEPT, self.show())
        self.assertEqual(relist["served"], "PartialObjectMetadataList", self.show())
        try:
            self.relabel_and_expect("other-c", {"app": "triton"}, "app=triton", {**TRITON, "other-c": "10"})
            self.assertEqual(selected(self.stack, "fleet", "app=worker"),
                             {"worker-0000": "20", "worker-0700": "30", "worker-1150": "40"})
        finally:
            self.stack.kube_request("PUT", "/fake/pods/inference/other-c", {"labels": {"app": "other"}})
        self.wait_for("other-c back", "inference", "app=other", {"other-c": "10"})

    def test_a_watch_answered_410_gone_relists(self):
        # The watch ends cleanly (as at its timeout); the next one, from the version the adapter
        # has, is too old: an ERROR 410 Expired event, and the adapter lists again.
        lists, watches = len(self.lists()), len(self.watches())
        self.stack.kube_request("DELETE", "/fake/history")
        self.stack.kube_faults(end_watches=True)
        try:
            wait_until("a watch answered 410 and a LIST after it", lambda: any(
                w["served"] == "410" for w in self.watches()[watches:]) and len(self.lists()) > lists, timeout=20)
        except TimeoutError:
            self.fail("no 410 watch followed by a LIST" + self.show())
        requests = self.requests()
        new_watches = [i for i, r in enumerate(requests) if is_watch(r)][watches:]
        gone = next(i for i in new_watches if requests[i]["served"] == "410")
        relist = next((r for r in requests[gone + 1:] if not is_watch(r)), None)
        self.assertIsNotNone(relist, "a LIST after the 410" + self.show())
        # The API server's cache no longer reaches our version: a consistent read from etcd,
        # not resourceVersion=0, as client-go relists after an expired watch.
        self.assertEqual(query(relist), {"limit": str(PAGE)}, self.show())
        try:
            self.relabel_and_expect("triton-b", {"app": "triton", "tier": "gpu"}, "tier=gpu", TRITON)
        finally:
            self.stack.kube_request("PUT", "/fake/pods/inference/triton-b", {"labels": {"app": "triton"}})
        self.wait_for("triton-b without tier", "inference", "tier=gpu", {"triton-a": "87500m"})

    def test_bookmarks_keep_the_watch_resumable_without_a_relist(self):
        # The history is compacted past the version of the adapter's last event; a BOOKMARK
        # (metadata form: only resourceVersion, creationTimestamp null) carries the new version.
        # Resuming from it after the watch ends is no 410 and needs no LIST.
        lists, watches = len(self.lists()), len(self.watches())
        faults = lambda: self.stack.kube_request("GET", "/fake/faults")  # noqa: E731
        try:
            self.stack.kube_request("DELETE", "/fake/history")
            written = faults()["bookmarks_written"]
            self.stack.kube_faults(bookmark_interval=0.2)
            wait_until("bookmarks sent", lambda: faults()["bookmarks_written"] >= written + 2, timeout=10)
        finally:
            self.stack.kube_faults(bookmark_interval=60, end_watches=True)
        try:
            wait_until("the next watch", lambda: len(self.watches()) > watches, timeout=10)
        except TimeoutError:
            self.fail("no watch after the last one ended" + self.show())
        self.assertEqual(self.watches()[watches]["served"], "PartialObjectMetadata", self.show())
        try:
            self.relabel_and_expect("other-c", {"app": "triton"}, "app=triton", {**TRITON, "other-c": "10"})
        finally:
            self.stack.kube_request("PUT", "/fake/pods/inference/other-c", {"labels": {"app": "other"}})
        self.wait_for("other-c back", "inference", "app=other", {"other-c": "10"})
        self.assertEqual(len(self.lists()), lists, "resumed from the bookmark, no LIST" + self.show())


class Fallback(PodTest):
    """Servers that do not serve the metadata forms; each test starts its own fake and adapter."""

    def tearDown(self):
        if self.stack is not None:
            self.stack.close()
            self.stack = None

    def start(self, form):
        self.stack, self.before = start_kube_and_adapter(PODS, metadata_form=form)
        self.settle()

    def test_a_server_ignoring_the_metadata_accept_serves_full_pods(self):
        self.start("ignore")
        first = self.lists()[0]
        self.assertEqual(first["accept"], LIST_ACCEPT, self.show())
        self.assertEqual(first["served"], "PodList", self.show())
        self.assertEqual(self.watches()[0]["served"], "Pod", self.show())
        self.assertNotIn("406", {r["served"] for r in self.requests()}, self.show())
        self.assertEqual(selected(self.stack, "inference", "app in (triton,other),!tier"),
                         {"triton-b": "60", "other-c": "10"})
        self.relabel_and_expect("other-c", {"app": "triton"}, "app=triton", {**TRITON, "other-c": "10"})

    def test_a_server_refusing_metadata_gets_plain_json(self):
        self.start("refuse")
        requests = self.requests()
        self.assertEqual((requests[0]["served"], requests[0]["accept"]), ("406", LIST_ACCEPT), self.show())
        full = [r for r in requests if not is_watch(r) and r["served"] == "PodList"]
        self.assertTrue(full, self.show())
        self.assertEqual(full[0]["accept"], PLAIN_ACCEPT, self.show())
        self.assertEqual(query(full[0]).get("limit"), str(PAGE), self.show())
        self.assertIn("Pod", {w["served"] for w in self.watches()}, self.show())
        # It remembers: at most the list and the watch were refused once each.
        self.assertLessEqual([r["served"] for r in self.requests()].count("406"), 2, self.show())
        log = self.stack.log("adapter")
        self.assertTrue(any(FALLBACK_LOG_PHRASE in line for line in log.splitlines()),
                        f"no log line mentions {FALLBACK_LOG_PHRASE}:\n{log[-3000:]}")
        self.assertEqual(selected(self.stack, "inference", "app=other"), {"other-c": "10"})
        self.relabel_and_expect("other-c", {"app": "triton"}, "app=triton", {**TRITON, "other-c": "10"})


if __name__ == "__main__":
    unittest.main()
