#!/usr/bin/env python3
"""A small stand-in for kube-apiserver, for end-to-end tests and benchmarks (no real one
installs here).

It speaks the real JSON of:
  GET  /api/v1/pods                      a list, with limit/continue paging and resourceVersion
  GET  /api/v1/pods?watch=1&resourceVersion=N
                                         a chunked stream of WatchEvent lines (ADDED, MODIFIED,
                                         DELETED; BOOKMARK with allowWatchBookmarks=true; ERROR
                                         410 Expired for a compacted version). Without a
                                         resourceVersion, or with 0, it starts with a synthetic
                                         ADDED for every pod, as kube-apiserver does.
  GET  /api/v1/nodes, /api/v1/nodes?watch=1&resourceVersion=N
                                         the same for nodes (NodeList / Node, or the metadata forms;
                                         paging, continue tokens, bookmarks, 410s), in name order
  GET  /api/v1/nodes/{name}              the full Node (see node_object()); 404 NotFound
                                         'nodes "x" not found', details {"name":"x","kind":"nodes"}
  Lists and watches of pods and nodes take labelSelector and fieldSelector (metadata.name,
  metadata.namespace, spec.nodeName, status.phase, status.podIP, ... for pods; metadata.name,
  spec.unschedulable for nodes; "field label not supported: f" or "invalid selector: ..." is a
  400). A list with a selector has no remainingItemCount; a watch with one shows an object that
  starts matching as ADDED and one that stops matching as DELETED, as kube-apiserver's does.
  GET  /api/v1/namespaces/{ns}/pods?labelSelector=S
                                         the full PodList ({"kind":"PodList","apiVersion":"v1",
                                         "metadata":{"resourceVersion":"N"},"items":[full Pods]}) of
                                         that namespace's pods matching S, in one page, whatever the
                                         Accept (no watch, paging or faults; not in /fake/pod_requests).
                                         S is labels.Parse's syntax: a=b, a==b, a!=b, a in (x,y),
                                         a notin (x), a, !a, a>1, a<1, comma-separated for AND; one it
                                         cannot parse is a 400 BadRequest Status with its message
                                         ("unable to parse requirement: found 'b' expected: '('", ...)
  GET  /api/v1/namespaces/{ns}/pods/{name}
                                         the full Pod; 404 NotFound {"message":"pods \\"x\\" not found",
                                         "details":{"name":"x","kind":"pods"}, ...}
  GET  /apis/apps/v1/namespaces/{ns}/{deployments|statefulsets|replicasets}/{name}/scale
                                         the workload's autoscaling/v1 Scale, as the HPA controller
                                         reads it: {"kind":"Scale","apiVersion":"autoscaling/v1",
                                         "metadata":{name,namespace,uid,resourceVersion,
                                         creationTimestamp},"spec":{"replicas":N},"status":{"replicas":
                                         M,"selector":"app=triton"}}; the workload's 404 otherwise
  GET  /apis/{group}/{version}/namespaces/{ns}/{plural}/{name}
                                         an object put with PUT /fake/objects (plurals
                                         horizontalpodautoscalers, deployments, statefulsets,
                                         replicasets), served only at its own apiVersion, except that
                                         an HPA of autoscaling/v2 is also served at v2beta2 and the
                                         other way round (the same shape: apiVersion rewritten, and the
                                         omitempty fields of the status as that version writes them).
                                         v2beta1 is served at v2beta1 only (no conversion). Otherwise
                                         kube-apiserver's 404: {"kind":"Status","apiVersion":"v1",
                                         "metadata":{},"status":"Failure","message":"deployments.apps
                                         \\"triton\\" not found","reason":"NotFound","details":{"name":
                                         "triton","group":"apps","kind":"deployments"},"code":404}
  POST /apis/authentication.k8s.io/v1/tokenreviews
  POST /apis/authorization.k8s.io/v1/subjectaccessreviews
  GET  /api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication
  GET  /version                          v1.32.4 (kubectl's dispatcher picks its kubectl by it)
  GET  /api                              APIVersions ["v1"]
  GET  /apis                             the APIGroupList kube-aggregator writes: this fake's own
                                         groups (apiregistration.k8s.io, apps, authentication.k8s.io,
                                         authorization.k8s.io, autoscaling) and then those of the
                                         registered APIServices, ordered as apiregistration's
                                         SortedByGroupAndVersion orders them (groupPriorityMinimum,
                                         then name; versions by versionPriority, then kube-aware
                                         version); the legacy form whatever the Accept
  GET  /apis/{group}                     its APIGroup, answered here for registered groups too
  *    /apis/{group}/{version}[/...]     for a registered APIService: the aggregation proxy

The aggregation proxy does what kube-aggregator does (shared/reference/resource-metrics.md §9):
the request goes over TLS to the APIService's "endpoint", with the front-proxy client
certificate (--proxy-client-cert-file/--proxy-client-key-file), the serving certificate checked
against spec.caBundle for <service>.<namespace>.svc (or not at all with insecureSkipTLSVerify),
the decoded path escaped again as Go escapes it ('*' -> %2A) and the query re-encoded as
url.Values.Encode() writes it (keys sorted, space '+', ',' %2C, ...). The client's headers pass
but for hop-by-hop ones, Authorization and any X-Remote-*; then X-Remote-User, one
X-Remote-Group per group and X-Remote-Extra-<escaped key> per extra value name the user who
authenticated to this fake, and X-Forwarded-For the client. Status, headers and body come back
unchanged, streamed. An endpoint that cannot be reached, or whose certificate does not verify,
is a 503 "service unavailable" (text/plain), as for an APIService that is not Available.
Unlike kube-apiserver, the fake does not authorize the request first: what the tests see is
the extension server's own authorization.
Users authenticate as kube-apiserver's authenticators do: a client certificate verified by
--client-ca-file on the HTTPS port (CN the user, each O a group), else a bearer token of the
--auth file ("tokens"; an unknown one is 401 Unauthorized), else system:anonymous
(group system:unauthenticated); every authenticated user also has the group
system:authenticated. (kubectl sends its credentials only over HTTPS: use --secure-port.)
Nothing but the proxy checks who is asking.

Pods are served in two forms, chosen by the Accept header as kube-apiserver chooses them: its
media types are tried in order (highest q first) and the first one the fake can serve wins.
  application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1   (a LIST)
      {"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{
       "resourceVersion":..., "continue":..., "remainingItemCount":...},"items":[
       {"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{ObjectMeta}}]}
  application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1       (a WATCH)
      every event's object is {"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1",
      "metadata":{ObjectMeta}}; a BOOKMARK's is the same with only resourceVersion (and the
      creationTimestamp null every empty ObjectMeta prints); an ERROR's is a v1 Status.
  application/json, application/*, */* or no Accept
      the full PodList / Pod, as before.
Parameters may come in any order; the as= of a list on a watch (or the other way round) is a
406 NotAcceptable, as kube-apiserver answers it. Types this fake does not speak (YAML, protobuf,
CBOR, as=Table, meta.k8s.io/v1beta1) are skipped for the next one; none left is a 406.

Every ObjectMeta is whole (generateName, uid, ownerReferences, annotations, and the managedFields
of kube-controller-manager and the kubelet, which the metadata form keeps too): about 4.8 KB;
a full pod, with a realistic spec and status, about 8.6 KB. Both forms of each pod are
serialised once, when the pod is put, so 10,000 pods (--pods) are cheap to page and to watch.

Pods are listed in etcd's key order ("<namespace>/<name>"). Continue tokens are
kube-apiserver's (base64url of {"v":"meta.k8s.io/v1","rv":N,"start":"<ns>/<name>\\u0000"}); a
token older than DELETE /fake/history is 410 Expired, and a continue with a resourceVersion is
400, as kube-apiserver refuses both at once. Pages after the first are cut from the current pods
(not a snapshot at the token's version), and keep the token's resourceVersion. A first page
with resourceVersion=0 is paged like any other (a kube-apiserver answering it from its watch
cache may ignore the limit and send every pod at once). Responses are Content-Type:
application/json.

The test drives it with:
  PUT    /fake/pods/{namespace}/{name}   body {"labels": {...}} creates or updates a pod; optional
                                         "annotations" (an object, replacing the default ones),
                                         "phase": "Running" (default) | "Pending" | "Failed" and
                                         "ready": true (default) | false, each PUT setting both (see
                                         pod_status_of(): Pending is scheduled, ContainerCreating, no
                                         podIP; Failed is evicted; a Running pod not ready has Ready
                                         and ContainersReady "False" and its container not ready);
                                         anything else is a 400
  PUT    /fake/objects                   body a Kubernetes object: HorizontalPodAutoscaler
                                         (autoscaling/v2, v2beta2 or v2beta1, kept as given) or
                                         Deployment, StatefulSet, ReplicaSet (apps/v1), with
                                         metadata.namespace and metadata.name; creates or replaces it
                                         and answers 200 with it as stored. Filled in as kube-apiserver
                                         does: metadata.uid, resourceVersion (the pods' version
                                         counter), generation (1; +1 when a replace changes the spec),
                                         creationTimestamp (both kept on a replace), managedFields
                                         (unless given), spec.replicas 1 / spec.minReplicas 1 when
                                         absent. With no status: a workload gets its controller's for
                                         all replicas up (Deployment observedGeneration, replicas,
                                         updatedReplicas, readyReplicas, availableReplicas = spec.replicas
                                         and conditions Available, Progressing; StatefulSet also
                                         currentReplicas and revisions; ReplicaSet replicas,
                                         fullyLabeledReplicas, readyReplicas, availableReplicas, as it
                                         has no updatedReplicas), an HPA currentReplicas = desiredReplicas
                                         = its scale target's spec.replicas if that is stored now, else 0
                                         (in v2, currentReplicas 0 is left out and "currentMetrics":null
                                         is written, as encoding/json writes them). An unknown apiVersion
                                         and kind is a 400 BadRequest Status
  DELETE /fake/objects/{group}/{plural}/{namespace}/{name}
                                         removes one ("core" as the group of pods, as DELETE
                                         /fake/pods); 200 {} or 404 NotFound Status
  DELETE /fake/pods/{namespace}/{name}   a force delete: the DELETED event's object is the last
                                         state with deletionTimestamp, deletionGracePeriodSeconds 0
  PUT    /fake/nodes/{name}              body {"labels", "capacity", "allocatable", "ready",
                                         "unschedulable", "taints"} (all optional: see node_object())
                                         creates or replaces a node (uid and creation kept); answers
                                         the Node
  DELETE /fake/nodes/{name}              deletes it (nodes have no finalizers: the DELETED event's
                                         object is its last state); 404 Status if there is none
  PUT    /fake/apiservices               body an apiregistration.k8s.io/v1 APIService with spec.group,
                                         version, service, caBundle or insecureSkipTLSVerify,
                                         groupPriorityMinimum, versionPriority, and "endpoint":
                                         "host:port" (where the Service's endpoint listens); registers
                                         or replaces it under metadata.name (default <version>.<group>)
  DELETE /fake/apiservices/{name}        unregisters it
  GET    /fake/apiservices               the registrations
  GET    /fake/proxied                   every request the proxy handled: {"method", "path" (as sent
                                         on), "user", "groups", "headers" (as sent on: [[name,
                                         value]]), "service", "status", "error" (when unreachable)}
  GET    /fake/node_requests             every node LIST and WATCH, as /fake/pod_requests
  GET    /fake/requests                  counts of requests by path, to assert on caching
  GET    /fake/pod_requests              every pod LIST and WATCH received, in order:
                                         {"query": raw query string, "accept": the Accept header,
                                          "served": "PartialObjectMetadataList" | "PodList" |
                                          "PartialObjectMetadata" | "Pod" | "406" | "500" | "410"
                                          | "400"}  (a watch answered with an ERROR 410 is "410");
                                         a list served also has "resourceVersion" and
                                         "handed_continue" (its metadata's; "" on the last page)
  GET    /fake/reviews                   the TokenReview and SubjectAccessReview bodies received
  PUT    /fake/configmap                 body {"data": {...}} replaces
                                         kube-system/extension-apiserver-authentication
  DELETE /fake/history                   forgets past events and moves the version on (etcd
                                         compacting after writes elsewhere): a watch or continue
                                         token from any version handed out before gets 410 Gone
  PUT    /fake/faults                    body with any of (they act on pods, or on nodes with
                                         "resource": "nodes"; metadata_form and bookmark_interval on
                                         both):
           {"list_failures": N}            fails the next N pod LISTs (any page) with 500
           {"raw": ["line", ...]}          sends these lines, as they are, to every open watch
           {"drop_watches": true}          cuts every open watch without ending it
           {"end_watches": true}           ends every open watch cleanly (as its timeout would)
           {"metadata_form": "serve"}      (default) the metadata forms above
                          "ignore"         an old server: full objects whatever the Accept
                          "refuse"         406 NotAcceptable for any Accept that mentions
                                           as=PartialObjectMetadata (LIST or WATCH), with the Status
                                           "only the following media types are accepted: ...";
                                           plain JSON is served
           {"split_event": {"namespace", "name", "labels", "pieces": 4, "pause": 0.2}}
                                           creates or updates the pod; open watches get its event
                                           line in `pieces` HTTP chunks, `pause` s apart
           {"bookmark_interval": S}        a BOOKMARK every S seconds to watches that allow them
                                           (default 60, about kube-apiserver's once a minute)
  GET    /fake/faults                    the current settings, "split_chunks_written",
                                         "bookmarks_written" and "open_watches" (being streamed) of
                                         pods, and "nodes": {list_failures, open_watches,
                                         bookmarks_written}
Tokens and authorization decisions come from --auth FILE: {"tokens": {"<token>": {"username":
..., "uid": ..., "groups": [...], "extra": {key: [values]}}}, "allow": [{"user" or "group": ...,
and optionally "verb", "apiGroup", "resource", "subresource", "namespace", "name", "path" (a
trailing * matches what it prefixes)}]}; a review is allowed when any rule matches it.
--nodes FILE: [{"name", ...}] created at start, as PUT /fake/nodes takes them.
--pods FILE: [{"namespace", "name", "labels"}] created at start; optional "annotations" (an
object) replace the default annotations, optional "phase" and "ready" as PUT /fake/pods takes them;
other keys are ignored.
"""
import argparse
import base64
import bisect
import binascii
import hashlib
import http.client
import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

META_GROUP_VERSION = "meta.k8s.io/v1"
ONLY_MEDIA_TYPES = ("only the following media types are accepted: application/json, "
                    "application/yaml, application/vnd.kubernetes.protobuf")
CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")
DEFAULT_ANNOTATIONS = {"kubectl.kubernetes.io/default-container": "main",
                       "prometheus.io/port": "8002", "prometheus.io/scrape": "true"}
IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"


def dumps(obj):
    """JSON as Go's encoding/json writes it: compact, UTF-8."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def status(code, reason, message, details=None):
    """A v1 Status as kube-apiserver writes a failure; `details` (StatusDetails: name, group,
    kind, ...) comes between reason and code, and is left out when None."""
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason}
    if details is not None:
        out["details"] = details
    out["code"] = code
    return out


def not_found(group, plural, name):
    """kube-apiserver's 404 for a named object: 'deployments.apps "x" not found' with
    details {name, group, kind}; for the core group 'pods "x" not found' and no group."""
    if group:
        return status(404, "NotFound", f'{plural}.{group} "{name}" not found',
                      {"name": name, "group": group, "kind": plural})
    return status(404, "NotFound", f'{plural} "{name}" not found', {"name": name, "kind": plural})


def _digest(*parts):
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


def _fields(value):
    """FieldsV1 of a value as server-side apply records it: f:<field> for object keys,
    k:{"name":...} for list items keyed by name, "." for a set that is itself owned."""
    if isinstance(value, dict):
        out = {".": {}}
        for k, v in value.items():
            out["f:" + k] = _fields(v)
        return out
    if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        out = {}
        for item in value:
            for field in ("containerPort", "mountPath", "name", "type", "ip"):
                if field in item:
                    key = {field: item[field]}
                    if field == "containerPort":
                        key["protocol"] = item.get("protocol", "TCP")
                    out["k:" + json.dumps(key, separators=(",", ":"))] = _fields(item)
                    break
        return {".": {}, **out} if out else {}  # a list without keys is atomic
    return {}


def _top_fields(obj):
    return {"f:" + k: _fields(v) for k, v in obj.items()}


def derived(ns, name, uid):
    """The values of a pod that follow from its name and uid (stable across updates)."""
    h = _digest(ns, name)
    base = name.rsplit("-", 1)[0] if "-" in name else name
    return {"base": base, "owner_uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"replicaset/{ns}/{base}")),
            "node": f"gpu-node-{int(h[:2], 16) % 8 + 1}",
            "pod_ip": f"10.244.{int(h[2:4], 16) % 8 + 1}.{int(h[4:6], 16) % 250 + 2}",
            "host_ip": f"10.0.0.{int(h[:2], 16) % 8 + 11}", "token_volume": f"kube-api-access-{h[6:11]}",
            "container_id": "containerd://" + _digest(uid)}


POD_PHASES = ("Running", "Pending", "Failed")
NOT_READY = "containers with unready status: [main]"
EVICTED = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 51200Ki. "
           "Container main was using 31457280Ki, request is 24Gi, has larger consumption of memory. ")


def pod_status_of(created, d, phase="Running", ready=True):
    """A pod's status as the kubelet writes it:
      Running, ready      every condition True, the container running and ready (the default);
      Running, not ready  Ready and ContainersReady False (ContainersNotReady), the container
                          running and started but not ready (a failing readiness probe);
      Pending             scheduled (PodScheduled, Initialized True), its sandbox not up
                          (PodReadyToStartContainers False), not ready; the container waiting
                          with reason ContainerCreating, imageID "", no containerID; no podIP;
      Failed              evicted: reason Evicted and its message, a DisruptionTarget condition
                          (TerminationByKubelet), Ready and ContainersReady False (PodFailed), the
                          container terminated (exit code 137).
    `ready` matters only for Running."""
    host_ip, pod_ip, container_id = d["host_ip"], d["pod_ip"], d["container_id"]
    if phase == "Running" and ready:
        condition = {"status": "True", "lastProbeTime": None, "lastTransitionTime": created}
        pod_status = {
            "phase": "Running",
            "conditions": [dict(type=t, **condition) for t in
                           ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "hostIP": host_ip, "hostIPs": [{"ip": host_ip}], "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
            "startTime": created,
            "containerStatuses": [{
                "name": "main", "state": {"running": {"startedAt": created}}, "lastState": {},
                "ready": True, "restartCount": 0, "image": IMAGE,
                "imageID": "nvcr.io/nvidia/tritonserver@sha256:" + _digest(IMAGE),
                "containerID": d["container_id"], "started": True}],
            "qosClass": "Burstable"}
        return pod_status

    def cond(kind, ok, reason=None, message=None):
        c = {"type": kind, "status": "True" if ok else "False", "lastProbeTime": None,
             "lastTransitionTime": created}
        if reason:
            c["reason"] = reason
        if message:
            c["message"] = message
        return c
    container = {"name": "main", "state": {"running": {"startedAt": created}}, "lastState": {},
                 "ready": False, "restartCount": 0, "image": IMAGE,
                 "imageID": "nvcr.io/nvidia/tritonserver@sha256:" + _digest(IMAGE),
                 "containerID": container_id, "started": True}
    pod_status = {"phase": phase}
    if phase == "Running":  # not ready
        pod_status["conditions"] = [
            cond("PodReadyToStartContainers", True), cond("Initialized", True),
            cond("Ready", False, "ContainersNotReady", NOT_READY),
            cond("ContainersReady", False, "ContainersNotReady", NOT_READY), cond("PodScheduled", True)]
    elif phase == "Pending":
        pod_status["conditions"] = [
            cond("PodReadyToStartContainers", False), cond("Initialized", True),
            cond("Ready", False, "ContainersNotReady", NOT_READY),
            cond("ContainersReady", False, "ContainersNotReady", NOT_READY), cond("PodScheduled", True)]
        container = {"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {},
                     "ready": False, "restartCount": 0, "image": IMAGE, "imageID": "", "started": False}
    elif phase == "Failed":
        pod_status["conditions"] = [
            cond("DisruptionTarget", True, "TerminationByKubelet", EVICTED),
            cond("PodReadyToStartContainers", False), cond("Initialized", True),
            cond("Ready", False, "PodFailed"), cond("ContainersReady", False, "PodFailed"),
            cond("PodScheduled", True)]
        pod_status["message"] = EVICTED
        pod_status["reason"] = "Evicted"
        container["state"] = {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": created,
                                             "finishedAt": created, "containerID": container_id}}
        container["started"] = False
    else:
        raise ValueError(f"unknown pod phase {phase!r}")
    pod_status.update(hostIP=host_ip, hostIPs=[{"ip": host_ip}])
    if phase != "Pending":
        pod_status.update(podIP=pod_ip, podIPs=[{"ip": pod_ip}])
    pod_status["startTime"] = created
    pod_status["containerStatuses"] = [container]
    pod_status["qosClass"] = "Burstable"
    return pod_status


def pod_object(ns, name, labels, version, uid, created, annotations=None, deleted=None, d=None,
               phase="Running", ready=True):
    """A Pod as kube-apiserver returns it for a ReplicaSet's pod on a GPU node: running and ready,
    or as pod_status_of() describes for another phase or readiness."""
    d = d or derived(ns, name, uid)
    base, owner_uid, node, token_volume = (d[k] for k in ("base", "owner_uid", "node", "token_volume"))
    annotations = dict(DEFAULT_ANNOTATIONS if annotations is None else annotations)
    spec = {
        "volumes": [
            {"name": "model-store", "persistentVolumeClaim": {"claimName": f"{base}-models"}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
            {"name": token_volume, "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                    "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}], "defaultMode": 420}}],
        "containers": [{
            "name": "main", "image": IMAGE,
            "command": ["tritonserver"],
            "args": ["--model-repository=/models", "--strict-model-config=false",
                     "--log-verbose=0", "--metrics-port=8002"],
            "ports": [{"name": "http", "containerPort": 8000, "protocol": "TCP"},
                      {"name": "grpc", "containerPort": 8001, "protocol": "TCP"},
                      {"name": "metrics", "containerPort": 8002, "protocol": "TCP"}],
            "env": [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                    {"name": "CUDA_MODULE_LOADING", "value": "LAZY"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"apiVersion": "v1",
                                                                         "fieldPath": "metadata.namespace"}}}],
            "resources": {"limits": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
                          "requests": {"cpu": "4", "memory": "24Gi", "nvidia.com/gpu": "1"}},
            "volumeMounts": [{"name": "model-store", "readOnly": True, "mountPath": "/models"},
                             {"name": "dshm", "mountPath": "/dev/shm"},
                             {"name": token_volume, "readOnly": True,
                              "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
            "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": "http", "scheme": "HTTP"},
                              "initialDelaySeconds": 30, "timeoutSeconds": 1, "periodSeconds": 10,
                              "successThreshold": 1, "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http", "scheme": "HTTP"},
                               "initialDelaySeconds": 10, "timeoutSeconds": 1, "periodSeconds": 5,
                               "successThreshold": 1, "failureThreshold": 3},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent"}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "serviceAccountName": "default", "serviceAccount": "default", "nodeName": node,
        "securityContext": {}, "schedulerName": "default-scheduler",
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300}],
        "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority"}
    pod_status = pod_status_of(created, d, phase, ready)
    owners = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": base, "uid": owner_uid,
               "controller": True, "blockOwnerDeletion": True}]
    controller_fields = {"f:metadata": {"f:annotations": _fields(annotations),
                                        "f:generateName": {}, "f:labels": _fields(labels),
                                        "f:ownerReferences": {".": {}, f'k:{{"uid":"{owner_uid}"}}': {}}},
                         "f:spec": _top_fields({k: v for k, v in spec.items()
                                                if k not in ("nodeName", "serviceAccount")})}
    kubelet_fields = {"f:status": _top_fields(pod_status)}
    metadata = {"name": name, "generateName": base + "-", "namespace": ns, "uid": uid,
                "resourceVersion": str(version), "creationTimestamp": created}
    if deleted:
        metadata["deletionTimestamp"] = deleted
        metadata["deletionGracePeriodSeconds"] = 0
    metadata.update({
        "labels": labels, "annotations": annotations, "ownerReferences": owners,
        "managedFields": [
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
             "time": created, "fieldsType": "FieldsV1", "fieldsV1": controller_fields},
            {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": created,
             "fieldsType": "FieldsV1", "fieldsV1": kubelet_fields, "subresource": "status"}]})
    for empty in [k for k in ("labels", "annotations") if not metadata[k]]:
        del metadata[empty]  # omitempty
        del controller_fields["f:metadata"]["f:" + empty]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": metadata, "spec": spec, "status": pod_status}


class PodRenderer:
    """Both JSON forms of a pod, fast: pod_object() is serialised once with placeholders, and
    each pod is that text with its own values put in (about ten times quicker than building and
    serialising the object per pod; 10,000 pods take well under a second). Pods without labels
    or annotations, deleted ones, and those not Running and ready (another status) take the slow
    path (omitempty, deletionTimestamp, pod_status_of())."""
    LABELS = {"@@labels@@": "@"}
    ANNOTATIONS = {"@@annotations@@": "@"}

    def __init__(self):
        d = {k: f"@@{k}@@" for k in ("base", "owner_uid", "node", "pod_ip", "host_ip", "token_volume", "container_id")}
        pod = pod_object("@@ns@@", "@@name@@", self.LABELS, "@@version@@", "@@uid@@", "@@created@@",
                         self.ANNOTATIONS, d=d)
        full = dumps(pod).decode()
        meta = dumps({"kind": "PartialObjectMetadata", "apiVersion": META_GROUP_VERSION,
                      "metadata": pod["metadata"]}).decode()
        placeholders = {dumps(self.LABELS).decode(): "labels", dumps(_fields(self.LABELS)).decode(): "labels_fields",
                        dumps(self.ANNOTATIONS).decode(): "annotations",
                        dumps(_fields(self.ANNOTATIONS)).decode(): "annotations_fields",
                        **{f"@@{k}@@": k for k in ("ns", "name", "version", "uid", "created", *d)}}
        pattern = re.compile("|".join(re.escape(p) for p in sorted(placeholders, key=len, reverse=True)))
        # Each form as [text, key, text, key, ..., text]: a pod is one join.
        self.forms = []
        for text in (full, meta):
            parts = pattern.split(text)
            keys = [placeholders[m] for m in pattern.findall(text)]
            self.forms.append((parts, keys))

    def render(self, ns, name, labels, version, uid, created, annotations=None, deleted=None,
               phase="Running", ready=True):
        """(full Pod JSON, PartialObjectMetadata JSON), as bytes."""
        annotations = DEFAULT_ANNOTATIONS if annotations is None else annotations
        if deleted or not labels or not annotations or phase != "Running" or not ready:
            pod = pod_object(ns, name, labels, version, uid, created, annotations, deleted,
                             phase=phase, ready=ready)
            return dumps(pod), dumps({"kind": "PartialObjectMetadata", "apiVersion": META_GROUP_VERSION,
                                      "metadata": pod["metadata"]})
        values = {"ns": ns, "name": name, "version": str(version), "uid": uid, "created": created,
                  **derived(ns, name, uid)}
        values = {k: dumps(v).decode()[1:-1] for k, v in values.items()}  # JSON-escaped, no quotes
        values.update(labels=dumps(labels).decode(), labels_fields=dumps(_fields(labels)).decode(),
                      annotations=dumps(annotations).decode(),
                      annotations_fields=dumps(_fields(annotations)).decode())
        out = []
        for parts, keys in self.forms:
            pieces = [parts[0]]
            for key, text in zip(keys, parts[1:]):
                pieces.append(values[key])
                pieces.append(text)
            out.append("".join(pieces).encode())
        return out[0], out[1]


RENDERER = None  # made on first use


def render_pod(*args, **kwargs):
    global RENDERER
    if RENDERER is None:
        RENDERER = PodRenderer()
    return RENDERER.render(*args, **kwargs)


class Entry:
    """A pod at one version, serialised once in both forms."""
    __slots__ = ("key", "ns", "name", "labels", "annotations", "uid", "created", "phase", "ready", "full", "meta")

    def __init__(self, ns, name, labels, annotations, version, uid, created, deleted=None,
                 phase="Running", ready=True):
        self.key = f"{ns}/{name}"  # its etcd key below /registry/pods/
        self.ns, self.name, self.labels, self.annotations = ns, name, labels, annotations
        self.uid, self.created, self.phase, self.ready = uid, created, phase, ready
        self.full, self.meta = render_pod(ns, name, labels, version, uid, created, annotations, deleted,
                                          phase=phase, ready=ready)

    def field(self, name):
        """The value of a field selector's field (POD_FIELDS), as kube-apiserver's PodToSelectableFields."""
        if name == "metadata.name":
            return self.name
        if name == "metadata.namespace":
            return self.ns
        if name == "status.phase":
            return self.phase
        d = derived(self.ns, self.name, self.uid)
        if name == "spec.nodeName":
            return d["node"]
        if name == "status.podIP":
            return "" if self.phase == "Pending" else d["pod_ip"]
        return {"spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
                "spec.serviceAccountName": "default", "spec.hostNetwork": "false",
                "status.nominatedNodeName": ""}[name]


# The field selectors kube-apiserver accepts for each resource (pkg/registry/core/*/strategy.go
# and the v1 conversions); any other field is a 400 "field label not supported: <field>".
POD_FIELDS = ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
              "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
              "status.nominatedNodeName")
NODE_FIELDS = ("metadata.name", "spec.unschedulable")


def node_object(name, version, uid, created, labels=None, capacity=None, allocatable=None, ready=True,
                unschedulable=False, taints=None):
    """A Node as kube-apiserver returns it for a kubelet-registered GPU node: the well-known labels
    (kubernetes.io/hostname, arch, os) under the given ones, capacity and allocatable (cpu, memory,
    pods, ephemeral-storage, hugepages; the given keys replace the defaults), the four kubelet
    conditions (Ready True, or False with KubeletNotReady), addresses, daemonEndpoints and
    nodeInfo, and the managedFields of the kubelet and kube-controller-manager."""
    h = _digest("node", name)
    index = int(h[:2], 16) % 200 + 1
    all_labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    all_labels = dict(sorted({**all_labels, **(labels or {})}.items()))  # Go marshals map keys sorted
    annotations = {"node.alpha.kubernetes.io/ttl": "0",
                   "volumes.kubernetes.io/controller-managed-attach-detach": "true"}
    cap = {"cpu": "8", "ephemeral-storage": "203056560Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
           "memory": "32761856Ki", "pods": "110"}
    cap.update(capacity or {})
    alloc = {"cpu": "7910m", "ephemeral-storage": "187136244953", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
             "memory": "31610880Ki", "pods": "110"}
    alloc.update(allocatable or {})
    cap, alloc = dict(sorted(cap.items())), dict(sorted(alloc.items()))  # Go marshals map keys sorted

    def condition(kind, ok, reason, message):
        return {"type": kind, "status": "True" if ok else "False", "lastHeartbeatTime": created,
                "lastTransitionTime": created, "reason": reason, "message": message}
    conditions = [
        condition("MemoryPressure", False, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        condition("DiskPressure", False, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        condition("PIDPressure", False, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        condition("Ready", True, "KubeletReady", "kubelet is posting ready status") if ready else
        condition("Ready", False, "KubeletNotReady", "container runtime network not ready: NetworkReady=false "
                  "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized")]
    spec = {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"],
            "providerID": f"aws:///us-east-1a/i-0{h[8:24]}"}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    status_ = {
        "capacity": cap, "allocatable": alloc, "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": f"10.0.1.{index}"}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": h[:32], "systemUUID": str(uuid.UUID(h[32:64])), "bootID": str(uuid.UUID(h[:32])),
                     "kernelVersion": "6.1.0-28-cloud-amd64", "osImage": "Debian GNU/Linux 12 (bookworm)",
                     "containerRuntimeVersion": "containerd://1.7.24", "kubeletVersion": "v1.32.4",
                     "kubeProxyVersion": "v1.32.4", "operatingSystem": "linux", "architecture": "amd64"},
        "images": [{"names": ["nvcr.io/nvidia/tritonserver@sha256:" + _digest(IMAGE), IMAGE],
                    "sizeBytes": 7423512376}]}
    metadata = {"name": name, "uid": uid, "resourceVersion": str(version), "creationTimestamp": created,
                "labels": all_labels, "annotations": annotations,
                "managedFields": [
                    {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": created,
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {
                         "f:annotations": _fields({k: v for k, v in annotations.items() if k.startswith("volumes.")}),
                         "f:labels": _fields(all_labels)}}},
                    {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                     "time": created, "fieldsType": "FieldsV1", "fieldsV1": {
                         "f:metadata": {"f:annotations": {"f:node.alpha.kubernetes.io/ttl": {}}},
                         "f:spec": {"f:podCIDR": {}, "f:podCIDRs": {".": {}, f'v:"10.244.{index}.0/24"': {}}}}},
                    {"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": created,
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:status": _top_fields(
                         {k: v for k, v in status_.items() if k != "images"})}, "subresource": "status"}]}
    return {"kind": "Node", "apiVersion": "v1", "metadata": metadata, "spec": spec, "status": status_}


class NodeEntry:
    """A node at one version, serialised once in both forms (full Node, PartialObjectMetadata)."""
    __slots__ = ("key", "name", "labels", "uid", "created", "spec", "unschedulable", "full", "meta")

    def __init__(self, name, spec, version, uid, created):
        self.key = self.name = name  # its etcd key below /registry/minions/
        self.spec, self.uid, self.created = spec, uid, created
        self.unschedulable = bool(spec.get("unschedulable", False))
        node = node_object(name, version, uid, created, labels=spec.get("labels"), capacity=spec.get("capacity"),
                           allocatable=spec.get("allocatable"), ready=spec.get("ready", True),
                           unschedulable=self.unschedulable, taints=spec.get("taints"))
        self.labels = node["metadata"]["labels"]
        self.full = dumps(node)
        self.meta = dumps({"kind": "PartialObjectMetadata", "apiVersion": META_GROUP_VERSION,
                           "metadata": node["metadata"]})

    def field(self, name):
        return self.name if name == "metadata.name" else ("true" if self.unschedulable else "false")


class Collection:
    """One resource's objects in etcd key order, with their event history, the LISTs and WATCHes
    received and the faults set for them. Pods and nodes each have one; they share the store's
    lock and resourceVersion (etcd's revision is global, so a compaction expires both)."""

    def __init__(self, resource, kind, fields):
        self.resource, self.kind, self.fields = resource, kind, fields  # "pods", "Pod", POD_FIELDS
        self.keys = []        # sorted keys ("<ns>/<name>" or "<name>"), as etcd orders them
        self.by_key = {}      # key -> entry
        # (version, type, entry or raw line, split (pieces, pause) or None, the entry before or None)
        self.events = []
        self.requests = []    # every LIST and WATCH, as GET /fake/pod_requests shows them
        self.list_failures = 0
        self.watch_generation = 0  # bumped to cut every open watch
        self.end_generation = 0    # bumped to end every open watch cleanly
        self.split_chunks_written = 0
        self.open_watches = 0
        self.bookmarks_written = 0

    def store(self, version, entry, split=None):
        """Adds or replaces `entry` at `version` (ADDED or MODIFIED). Call with the lock held."""
        before = self.by_key.get(entry.key)
        if before is None:
            bisect.insort(self.keys, entry.key)
        self.by_key[entry.key] = entry
        self.events.append((version, "MODIFIED" if before else "ADDED", entry, split, before))

    def remove(self, version, gone):
        """Removes the entry with gone's key; `gone` is its last state, the DELETED event's object."""
        before = self.by_key.pop(gone.key)
        del self.keys[bisect.bisect_left(self.keys, gone.key)]
        self.events.append((version, "DELETED", gone, None, before))


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# The objects PUT /fake/objects takes: (apiVersion, kind) -> (group, plural).
OBJECT_KINDS = {
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("autoscaling", "horizontalpodautoscalers"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): ("autoscaling", "horizontalpodautoscalers"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): ("autoscaling", "horizontalpodautoscalers"),
    ("apps/v1", "Deployment"): ("apps", "deployments"),
    ("apps/v1", "StatefulSet"): ("apps", "statefulsets"),
    ("apps/v1", "ReplicaSet"): ("apps", "replicasets"),
}
# (group, version, plural) served by GET /apis/{group}/{version}/namespaces/{ns}/{plural}/{name}.
SERVED_RESOURCES = {(api_version.split("/")[0], api_version.split("/")[1], plural)
                    for (api_version, _), (_, plural) in OBJECT_KINDS.items()}
WORKLOAD_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "ReplicaSet": "replicasets"}
# Go's field order of each struct, as encoding/json writes it.
OBJECT_ORDER = ("kind", "apiVersion", "metadata", "spec", "status")
META_ORDER = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
              "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
              "ownerReferences", "finalizers", "managedFields")
SPEC_ORDER = {
    "HorizontalPodAutoscaler": ("scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior"),
    "Deployment": ("replicas", "selector", "template", "strategy", "minReadySeconds", "revisionHistoryLimit",
                   "paused", "progressDeadlineSeconds"),
    "StatefulSet": ("replicas", "selector", "template", "volumeClaimTemplates", "serviceName",
                    "podManagementPolicy", "updateStrategy", "revisionHistoryLimit", "minReadySeconds",
                    "persistentVolumeClaimRetentionPolicy", "ordinals"),
    "ReplicaSet": ("replicas", "minReadySeconds", "selector", "template"),
}
HPA_STATUS_ORDER = ("observedGeneration", "lastScaleTime", "currentReplicas", "desiredReplicas", "currentMetrics",
                    "conditions")
HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString's, as in pod-template-hash


def selector_text(selector):
    """A metav1.LabelSelector as labels.Selector.String() writes it (LabelSelectorAsSelector):
    requirements sorted by key, set values sorted."""
    reqs = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for e in selector.get("matchExpressions") or []:
        values = ",".join(sorted(e.get("values") or []))
        text = {"In": f"{e['key']} in ({values})", "NotIn": f"{e['key']} notin ({values})",
                "Exists": e["key"], "DoesNotExist": "!" + e["key"]}[e["operator"]]
        reqs.append((e["key"], text))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def scale_of(workload):
    """The autoscaling/v1 Scale of a Deployment, StatefulSet or ReplicaSet, as its /scale
    subresource answers: spec.replicas (omitempty), status.replicas and status.selector."""
    meta = workload["metadata"]
    spec = {"replicas": workload["spec"]["replicas"]} if workload["spec"].get("replicas") else {}
    status = {"replicas": (workload.get("status") or {}).get("replicas", 0)}
    selector = selector_text(workload["spec"].get("selector") or {})
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": spec, "status": status}


def ordered(d, order):
    """d with the keys of `order` first, in that order, then the others as they came."""
    return {**{k: d[k] for k in order if k in d}, **{k: v for k, v in d.items() if k not in order}}


def template_hash(*parts):
    n = int(_digest(*parts)[:16], 16)
    out = ""
    for _ in range(10):
        n, r = divmod(n, len(HASH_ALPHABET))
        out += HASH_ALPHABET[r]
    return out


def workload_status(kind, name, replicas, generation, created):
    """The status the workload's controller writes once its pods are all up (fields that
    encoding/json omits when zero are left out, as kube-apiserver leaves them out)."""
    n = replicas

    def nonzero(d, keep=()):
        return {k: v for k, v in d.items() if v or k in keep}
    if kind == "Deployment":
        out = nonzero({"observedGeneration": generation, "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                       "availableReplicas": n})
        rs = f"{name}-{template_hash('deployment', name)}"
        out["conditions"] = [
            {"type": "Available", "status": "True", "lastUpdateTime": created, "lastTransitionTime": created,
             "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
            {"type": "Progressing", "status": "True", "lastUpdateTime": created, "lastTransitionTime": created,
             "reason": "NewReplicaSetAvailable", "message": f'ReplicaSet "{rs}" has successfully progressed.'}]
        return out
    if kind == "StatefulSet":
        revision = f"{name}-{template_hash('statefulset', name)}"
        return nonzero({"observedGeneration": generation, "replicas": n, "readyReplicas": n, "currentReplicas": n,
                        "updatedReplicas": n, "currentRevision": revision, "updateRevision": revision,
                        "collisionCount": 0, "availableReplicas": n},
                       keep=("replicas", "collisionCount", "availableReplicas"))
    return nonzero({"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n, "availableReplicas": n,
                    "observedGeneration": generation}, keep=("replicas",))


def hpa_status(version, replicas):
    """A HorizontalPodAutoscalerStatus with current and desired replicas: in autoscaling/v2
    currentReplicas and conditions are omitempty and currentMetrics is not (null); in v2beta2 and
    v2beta1 none of them is."""
    if version == "v2":
        out = {"currentReplicas": replicas} if replicas else {}
        out.update(desiredReplicas=replicas, currentMetrics=None)
        return out
    return {"currentReplicas": replicas, "desiredReplicas": replicas, "currentMetrics": None, "conditions": None}


def hpa_as(obj, version):
    """A v2 HPA as autoscaling/v2beta2 serves it, or a v2beta2 one as v2: the same shape, with its
    apiVersion and the omitempty fields of its status as that version writes them."""
    out = dict(obj, apiVersion="autoscaling/" + version)
    st = out.get("status")
    if isinstance(st, dict):
        st = dict(st)
        if version == "v2":
            if not st.get("currentReplicas"):
                st.pop("currentReplicas", None)
            if not st.get("conditions"):
                st.pop("conditions", None)
            st.setdefault("currentMetrics", None)
        else:
            st.setdefault("currentReplicas", 0)
            st.setdefault("currentMetrics", None)
            st.setdefault("conditions", None)
        out["status"] = ordered(st, HPA_STATUS_ORDER)
    return out


class Store:
    def __init__(self):
        self.lock = threading.Condition()
        self.version = 100
        self.pods = {}        # (ns, name) -> Entry
        self.pod_set = Collection("pods", "Pod", POD_FIELDS)
        self.node_set = Collection("nodes", "Node", NODE_FIELDS)
        self.oldest = 100     # versions before this are compacted: a watch from them gets 410
        self.requests = Counter()
        self.reviews = []
        self.configmap = None  # data of kube-system/extension-apiserver-authentication
        self.metadata_form = "serve"
        self.bookmark_interval = 60.0
        self.objects = {}     # (group, plural, namespace, name) -> object (a dict, at its apiVersion)
        self.apiservices = {}  # name -> registered APIService (see register_apiservice)
        self.proxied = []     # every request the aggregation proxy forwarded or refused

    def entry(self, ns, name, labels, annotations=None, phase="Running", ready=True):
        """The pod at the next version (an existing pod keeps its uid, creation and annotations;
        its phase and readiness are the ones given)."""
        self.version += 1
        old = self.pods.get((ns, name))
        if old is not None:
            uid, created = old.uid, old.created
            if annotations is None:
                annotations = old.annotations
        else:
            uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ns}/{name}/{self.version}"))
            created = now()
        return Entry(ns, name, dict(labels), annotations, self.version, uid, created, phase=phase, ready=ready)

    def pod(self, ns, name, labels, annotations=None, phase="Running", ready=True):
        """A new full Pod object at the next version, as a dict (tests/fuzz/make_seeds.py)."""
        return json.loads(self.entry(ns, name, labels, annotations, phase, ready).full)

    def put(self, ns, name, labels, annotations=None, split=None, phase="Running", ready=True):
        with self.lock:
            entry = self.entry(ns, name, labels, annotations, phase, ready)
            self.pods[(ns, name)] = entry
            self.pod_set.store(self.version, entry, split)
            self.lock.notify_all()

    def delete(self, ns, name):
        """A force delete: the DELETED event carries the last state, with deletionTimestamp."""
        with self.lock:
            entry = self.pods.pop((ns, name), None)
            if entry is None:
                return False
            self.version += 1
            gone = Entry(ns, name, entry.labels, entry.annotations, self.version, entry.uid, entry.created,
                         deleted=now(), phase=entry.phase, ready=entry.ready)
            self.pod_set.remove(self.version, gone)
            self.lock.notify_all()
            return True

    def put_node(self, name, spec):
        """Creates or replaces a node (an existing one keeps its uid and creationTimestamp). `spec`:
        optional labels, capacity, allocatable, ready, unschedulable, taints (see node_object())."""
        with self.lock:
            self.version += 1
            old = self.node_set.by_key.get(name)
            uid = old.uid if old else str(uuid.uuid5(uuid.NAMESPACE_URL, f"node/{name}/{self.version}"))
            entry = NodeEntry(name, dict(spec), self.version, uid, old.created if old else now())
            self.node_set.store(self.version, entry)
            self.lock.notify_all()
            return entry

    def delete_node(self, name):
        """Deletes a node at once (nodes have no finalizers): the DELETED event carries its last
        state at the deletion's resourceVersion."""
        with self.lock:
            old = self.node_set.by_key.get(name)
            if old is None:
                return False
            self.version += 1
            self.node_set.remove(self.version, NodeEntry(name, old.spec, self.version, old.uid, old.created))
            self.lock.notify_all()
            return True

    def put_object(self, body):
        """Stores a HorizontalPodAutoscaler or apps/v1 workload with what kube-apiserver adds:
        (code, the stored object or a Status)."""
        if not isinstance(body, dict):
            return 400, status(400, "BadRequest", "the body is not a Kubernetes object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if (api_version, kind) not in OBJECT_KINDS:
            return 400, status(400, "BadRequest", f'no kind "{kind}" is registered for version "{api_version}" '
                                                  'in scheme "pkg/runtime/scheme.go:100"')
        group, plural = OBJECT_KINDS[(api_version, kind)]
        meta = body.get("metadata")
        ns, name = (meta.get("namespace"), meta.get("name")) if isinstance(meta, dict) else (None, None)
        if not (isinstance(ns, str) and ns and isinstance(name, str) and name):
            return 400, status(400, "BadRequest", f"{kind} needs metadata.namespace and metadata.name")
        obj = json.loads(json.dumps(body))
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        if kind == "HorizontalPodAutoscaler":
            spec.setdefault("minReplicas", 1)  # as kube-apiserver defaults them
        else:
            spec.setdefault("replicas", 1)
        obj["spec"] = spec = ordered(spec, SPEC_ORDER[kind])
        with self.lock:
            key = (group, plural, ns, name)
            old = self.objects.get(key)
            self.version += 1
            if old is None:
                uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{group}/{plural}/{ns}/{name}/{self.version}"))
                created, generation = now(), 1
            else:
                uid, created = old["metadata"]["uid"], old["metadata"]["creationTimestamp"]
                generation = old["metadata"]["generation"] + (old.get("spec") != spec)
            if obj.get("status") is None:
                if kind == "HorizontalPodAutoscaler":
                    ref = spec.get("scaleTargetRef") if isinstance(spec.get("scaleTargetRef"), dict) else {}
                    target = self.objects.get((str(ref.get("apiVersion", "")).rpartition("/")[0],
                                               WORKLOAD_PLURALS.get(ref.get("kind")), ns, ref.get("name")))
                    replicas = target["spec"].get("replicas", 1) if target else 0
                    obj["status"] = hpa_status(api_version.split("/")[1], replicas)
                else:
                    obj["status"] = workload_status(kind, name, spec["replicas"], generation, created)
            meta = dict(obj["metadata"], uid=uid, resourceVersion=str(self.version), generation=generation,
                        creationTimestamp=created)
            if "managedFields" not in meta:
                applied = {"f:" + k: _fields(meta[k]) for k in ("labels", "annotations") if meta.get(k)}
                applied = ({"f:metadata": applied} if applied else {}) | {"f:spec": _top_fields(spec)}
                meta["managedFields"] = [
                    {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": api_version,
                     "time": created, "fieldsType": "FieldsV1", "fieldsV1": applied}]
                if isinstance(obj["status"], dict) and obj["status"]:
                    meta["managedFields"].append(
                        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": api_version,
                         "time": created, "fieldsType": "FieldsV1",
                         "fieldsV1": {"f:status": _top_fields(obj["status"])}, "subresource": "status"})
            obj["metadata"] = ordered(meta, META_ORDER)
            obj = ordered(obj, OBJECT_ORDER)
            self.objects[key] = obj
            return 200, obj

    def get_object(self, group, version, plural, ns, name):
        """(code, object or Status) for GET /apis/{group}/{version}/namespaces/{ns}/{plural}/{name}:
        an object only at its own apiVersion, but for HPAs autoscaling/v2 and v2beta2 are one."""
        with self.lock:
            obj = self.objects.get((group, plural, ns, name))
        if obj is None:
            return 404, not_found(group, plural, name)
        stored = obj["apiVersion"].split("/")[1]
        if stored == version:
            return 200, obj
        if group == "autoscaling" and {stored, version} == {"v2", "v2beta2"}:
            return 200, hpa_as(obj, version)
        return 404, not_found(group, plural, name)

    def delete_object(self, group, plural, ns, name):
        with self.lock:
            if self.objects.pop((group, plural, ns, name), None) is None:
                return False
            self.version += 1
            return True

    def namespace_pods(self, ns, requirements):
        """The full JSON of the pods of a namespace that match, in key order, and the version."""
        with self.lock:
            prefix = ns + "/"
            keys = self.pod_set.keys
            start = bisect.bisect_left(keys, prefix)
            out = []
            for key in keys[start:]:
                if not key.startswith(prefix):
                    break
                entry = self.pod_set.by_key[key]
                if requirements.matches(entry):
                    out.append(entry.full)
            return out, self.version

    def compact(self):
        """etcd compacting after writes elsewhere in the cluster (its revision is global): the
        version moves on, and every version handed out so far is gone."""
        with self.lock:
            self.version += 1
            self.oldest = self.version
            self.pod_set.events = []
            self.node_set.events = []

    def record(self, collection, query, accept, served):
        with self.lock:
            collection.requests.append({"query": query, "accept": accept, "served": served})


def parse_accept(header):
    """[(type, subtype, {param: value})] in the order kube-apiserver tries them: by q, highest
    first, and in the header's order among equals."""
    ranges = []
    for i, part in enumerate((header or "*/*").split(",")):
        fields = [f.strip() for f in part.split(";")]
        if not fields[0]:
            continue
        kind, _, sub = fields[0].lower().partition("/")
        params = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip().lower()] = v.strip()
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            ranges.append((-q, i, kind, sub, params))
    return [(kind, sub, params) for _, _, kind, sub, params in sorted(ranges)]


def negotiate(accept, want, form, kind="Pod"):
    """What to serve for a pod or node request: "meta", "full", or ("406", message). `want` is the
    as= a metadata answer of this request needs (PartialObjectMetadataList for a LIST,
    PartialObjectMetadata for a WATCH); `form` the metadata_form setting; `kind` Pod or Node."""
    if form == "refuse" and "as=partialobjectmetadata" in (accept or "").lower().replace(" ", ""):
        return "406", ONLY_MEDIA_TYPES
    for kind, sub, params in parse_accept(accept):
        if (kind, sub) not in (("application", "json"), ("application", "*"), ("*", "*")):
            continue  # YAML, protobuf, CBOR: this fake speaks JSON only
        target = params.get("as")
        if target is None:
            return "full"
        if form == "ignore":
            return "full"
        if params.get("g") != "meta.k8s.io" or params.get("v") != "v1" or \
                target not in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            continue  # Table, meta.k8s.io/v1beta1: not served by this fake
        if target == want:
            return "meta"
        if target == "PartialObjectMetadata":
            return "406", f"you requested PartialObjectMetadata, but the requested object is a list (*core.{kind}List)"
        return "406", f"you requested PartialObjectMetadataList, but the requested object is not a list (*core.{kind})"
    return "406", ONLY_MEDIA_TYPES


def encode_continue(rv, key):
    token = json.dumps({"v": META_GROUP_VERSION, "rv": rv, "start": key + "\x00"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def decode_continue(token):
    """(rv, start key) or raises ValueError with kube-apiserver's reason."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"continue key is not valid: {e}")
    if not isinstance(data, dict) or data.get("v") != META_GROUP_VERSION:
        raise ValueError("continue key is not valid: server does not recognize this encoded key")
    rv, start = data.get("rv"), data.get("start")
    if not isinstance(rv, int) or not isinstance(start, str) or rv <= 0:
        raise ValueError("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    return rv, start


class SelectorError(ValueError):
    pass


SELECTOR_SYMBOLS = {")": "CLOSE", ",": "COMMA", "!": "NOT", "==": "DOUBLE_EQUALS", "=": "EQUALS", ">": "GT",
                    "in": "IN", "<": "LT", "!=": "NOT_EQUALS", "notin": "NOT_IN", "(": "OPEN"}
SELECTOR_OPERATORS = {"IN": "in", "NOT_IN": "notin", "EQUALS": "=", "DOUBLE_EQUALS": "==", "NOT_EQUALS": "!=",
                      "GT": "gt", "LT": "lt"}
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _regex_error(msg, fmt, *examples):
    """k8s.io/apimachinery validation.RegexError."""
    return msg + " (e.g. " + " or ".join(f"'{e}', " for e in examples) + f"regex used for validation is '{fmt}')"


QUALIFIED_NAME_ERROR = _regex_error("must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                                    "end with an alphanumeric character", QUALIFIED_NAME.pattern,
                                    "MyName", "my.name", "123-abc")


def _label_key_errors(key):
    """validation.IsQualifiedName."""
    errs = []
    parts = key.split("/")
    if len(parts) > 2:
        return ["a qualified name " + QUALIFIED_NAME_ERROR +
                " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errs.append("prefix part must be no more than 253 characters")
            if not DNS1123_SUBDOMAIN.fullmatch(prefix):
                errs.append("prefix part " + _regex_error(
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                    "'.', and must start and end with an alphanumeric character", DNS1123_SUBDOMAIN.pattern,
                    "example.com"))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if not QUALIFIED_NAME.fullmatch(name):
        errs.append("name part " + QUALIFIED_NAME_ERROR)
    return errs


def _label_value_errors(value):
    """validation.IsValidLabelValue."""
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if value and not QUALIFIED_NAME.fullmatch(value):
        errs.append(_regex_error("a valid label must be an empty string or consist of alphanumeric characters, "
                                 "'-', '_' or '.', and must start and end with an alphanumeric character",
                                 f"({QUALIFIED_NAME.pattern})?", "MyValue", "my_value", "12345"))
    return errs


def _invalid(field, value, detail):
    """A field.Error of type Invalid, as its Error() prints it."""
    return f"{field}: Invalid value: {json.dumps(value)}: {detail}"


def parse_selector(text):
    """A label selector as k8s.io/apimachinery/pkg/labels.Parse reads it: [(key, operator,
    values)], with its error messages (SelectorError). Operators: in notin = == != gt lt exists !."""
    items, pos = [], 0
    while True:  # the lexer
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        if pos == len(text):
            items.append(("END", ""))
            break
        if text[pos] in "=!(),><":
            last, buf = None, ""
            while pos < len(text) and text[pos] in "=!(),><":
                buf += text[pos]
                if buf in SELECTOR_SYMBOLS:
                    last = (SELECTOR_SYMBOLS[buf], buf)
                elif last is not None:
                    break
                pos += 1
            items.append(last or ("ERROR", f"error expected: keyword found '{buf}'"))
        else:
            start = pos
            while pos < len(text) and text[pos] not in "=!(),>< \t\r\n":
                pos += 1
            word = text[start:pos]
            items.append((SELECTOR_SYMBOLS.get(word, "ID"), word))
    at = [0]

    def look(values=True):
        tok, lit = items[min(at[0], len(items) - 1)]
        return ("ID" if values and tok in ("IN", "NOT_IN") else tok), lit

    def consume(values=True):
        item = look(values)
        at[0] += 1
        return item

    def exact_value():
        if look()[0] in ("END", "COMMA"):
            return {""}
        tok, lit = consume()
        if tok == "ID":
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")

    def identifiers():
        values = set()
        while True:
            tok, lit = consume()
            if tok == "ID":
                values.add(lit)
                tok2, lit2 = look()
                if tok2 == "COMMA":
                    continue
                if tok2 == "CLOSE":
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == "COMMA":
                if not values:
                    values.add("")
                tok2 = look()[0]
                if tok2 == "CLOSE":
                    values.add("")
                    return values
                if tok2 == "COMMA":
                    consume()
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def value_set():
        tok, lit = consume()
        if tok != "OPEN":
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = look()
        if tok in ("ID", "COMMA"):
            values = identifiers()
            if consume()[0] != "CLOSE":
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == "CLOSE":
            consume()
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def requirement():
        op = None
        tok, key = consume()
        if tok == "NOT":
            op = "!"
            tok, key = consume()
        if tok != "ID":
            raise SelectorError(f"found '{key}', expected: identifier")
        errs = _label_key_errors(key)
        if errs:
            raise SelectorError(_invalid("<nil>", key, "; ".join(errs)))
        if op == "!" or look()[0] in ("END", "COMMA"):
            return key, op or "exists", []
        tok, lit = consume(values=False)
        if tok not in SELECTOR_OPERATORS:
            raise SelectorError(f"found '{lit}', expected: {', '.join(SELECTOR_OPERATORS.values())}")
        op = SELECTOR_OPERATORS[tok]
        values = sorted(value_set() if op in ("in", "notin") else exact_value())
        errs = []
        if op in ("gt", "lt"):
            errs += [_invalid(f"values[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer")
                     for i, v in enumerate(values) if not re.fullmatch(r"[+-]?[0-9]+", v)
                     or not -2**63 <= int(v) < 2**63]
        for i, v in enumerate(values):
            verrs = _label_value_errors(v)
            if verrs:
                errs.append(_invalid(f"values[{i}][{key}]", v, "; ".join(verrs)))
        if errs:
            raise SelectorError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
        return key, op, values

    requirements = []
    while True:
        tok, lit = look()
        if tok == "END":
            return requirements
        if tok not in ("ID", "NOT"):
            raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
        try:
            requirements.append(requirement())
        except SelectorError as e:
            raise SelectorError(f"unable to parse requirement: {e}") from None
        tok, lit = consume()
        if tok == "END":
            return requirements
        if tok != "COMMA":
            raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
        tok, lit = look()
        if tok not in ("ID", "NOT"):
            raise SelectorError(f"found '{lit}', expected: identifier after ','")


def selector_matches(requirements, labels):
    """labels.Requirement.Matches for every requirement (AND)."""
    for key, op, values in requirements:
        has = key in labels
        if op in ("in", "=", "=="):
            ok = has and labels[key] in values
        elif op in ("notin", "!="):
            ok = not has or labels[key] not in values
        elif op == "exists":
            ok = has
        elif op == "!":
            ok = not has
        else:  # gt, lt
            ok = has and re.fullmatch(r"[+-]?[0-9]+", labels[key]) is not None and (
                int(labels[key]) > int(values[0]) if op == "gt" else int(labels[key]) < int(values[0]))
        if not ok:
            return False
    return True


def _split_field_terms(text):
    """fields.splitTerms: the terms between commas that no backslash escapes."""
    terms, current, escaped = [], "", False
    for ch in text:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            current += ch
            escaped = True
        elif ch == ",":
            terms.append(current)
            current = ""
        else:
            current += ch
    terms.append(current)
    return terms


def parse_field_selector(text, supported):
    """A fieldSelector as kube-apiserver reads it (fields.ParseSelector, then the resource's
    field label conversion): [(field, "=" or "!=", value)], or SelectorError with its message."""
    out = []
    for term in sorted(_split_field_terms(text)):
        if not term:
            continue
        for i in range(len(term)):
            op = next((o for o in ("!=", "==", "=") if term.startswith(o, i)), None)
            if op:
                field, value = term[:i], term[i + len(op):]
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        unescaped, escaped = "", False
        for ch in value:
            if escaped:
                if ch not in "\\,=":
                    raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
                unescaped += ch
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch in ",=":
                raise SelectorError(f"invalid field selector: unescaped {ch!r} in value: {value}")
            else:
                unescaped += ch
        if escaped:
            raise SelectorError("invalid field selector: unterminated escape sequence")
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        out.append((field, "!=" if op == "!=" else "=", unescaped))
    return out


class Selectors:
    """The labelSelector and fieldSelector of a LIST or WATCH; raises SelectorError (a 400) for
    either one kube-apiserver would refuse."""

    def __init__(self, q, supported_fields):
        self.labels = parse_selector(q.get("labelSelector", ""))
        self.fields = parse_field_selector(q.get("fieldSelector", ""), supported_fields)

    def __bool__(self):
        return bool(self.labels or self.fields)

    def matches(self, entry):
        return selector_matches(self.labels, entry.labels) and all(
            (entry.field(f) == v) == (op == "=") for f, op, v in self.fields)


def watch_event_type(kind, entry, before, selectors):
    """The type a watch filtered by `selectors` shows for a stored event, or None: as
    kube-apiserver's filtered watch does, an object that starts matching is ADDED, one that stops
    matching is DELETED (with its new state), one that never matched is not shown."""
    if not selectors:
        return kind
    now_in = selectors.matches(entry)
    if kind == "ADDED":
        return "ADDED" if now_in else None
    if kind == "DELETED":
        return "DELETED" if now_in else None
    was_in = before is not None and selectors.matches(before)
    if was_in and now_in:
        return "MODIFIED"
    return "ADDED" if now_in else ("DELETED" if was_in else None)


# -- the aggregation proxy: URLs as Go writes them -------------------------------------------------
_GO_UNESCAPED_QUERY = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_GO_UNESCAPED_PATH = _GO_UNESCAPED_QUERY | set(b"$&+,/:;=@")


def _go_unescape(text, query):
    """url.unescape: %XX (two hex digits, or an error), and in a query '+' as a space; bytes."""
    raw = text.encode("utf-8", "surrogateescape")
    out, i = bytearray(), 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            pair = raw[i + 1:i + 3]
            if len(pair) != 2 or not all(chr(b) in "0123456789abcdefABCDEF" for b in pair):
                raise ValueError(f"invalid URL escape {raw[i:i + 3]!r}")
            out.append(int(pair, 16))
            i += 3
            continue
        out.append(0x20 if (query and c == 0x2B) else c)
        i += 1
    return bytes(out)


def _go_escape(data, unescaped, space_plus):
    return "".join(chr(b) if b in unescaped else ("+" if space_plus and b == 0x20 else "%%%02X" % b)
                   for b in data)


def go_query_encode(raw_query):
    """req.URL.Query().Encode(): the query parsed as url.ParseQuery parses it (pairs with a ';' or
    a bad escape dropped), then written with the keys sorted, each value escaped by
    url.QueryEscape (space '+', everything but letters, digits and -_.~ as %XX)."""
    values = {}
    for pair in raw_query.split("&"):
        if not pair or ";" in pair:
            continue
        key, _, value = pair.partition("=")
        try:
            key, value = _go_unescape(key, True), _go_unescape(value, True)
        except ValueError:
            continue
        values.setdefault(key, []).append(value)
    return "&".join(_go_escape(k, _GO_UNESCAPED_QUERY, True) + "=" + _go_escape(v, _GO_UNESCAPED_QUERY, True)
                    for k in sorted(values) for v in values[k])


def go_path_escape(raw_path):
    """The path kube-aggregator sends: the request's decoded path (req.URL.Path) escaped again by
    url.URL.EscapedPath(): '*' becomes %2A, a space %20, an escaped '/' a plain one."""
    return _go_escape(_go_unescape(raw_path, False), _GO_UNESCAPED_PATH, False)


_TOKEN_BYTES = set(b"!#$&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def canonical_header_key(key):
    """textproto.CanonicalMIMEHeaderKey: the first letter and each one after '-' upper-case."""
    out, upper = [], True
    for ch in key:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


def extra_header(key):
    """The X-Remote-Extra-<key> header name client-go's SetAuthProxyHeaders writes: bytes outside
    the RFC 7230 token set (and '%') as %XX, then canonicalized by Go's http.Header."""
    escaped = "".join(chr(b) if b in _TOKEN_BYTES else "%%%02X" % b for b in key.encode())
    return canonical_header_key("X-Remote-Extra-" + escaped)


def _kube_version_key(version):
    """version.CompareKubeAwareVersionStrings as a sort key, larger for the later version: GA
    above beta above alpha, then by the numbers; strings not of that form lowest."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (0, 0, 0, 0)
    return (1, {"alpha": 1, "beta": 2, None: 3}[m.group(2)], int(m.group(1)), int(m.group(3) or 0))


# The groups this fake serves itself, as kube-apiserver's local APIServices: (group, version,
# groupPriorityMinimum, versionPriority), from kube-aggregator's apiVersionPriorities.
LOCAL_APISERVICES = [("apiregistration.k8s.io", "v1", 18000, 15), ("apps", "v1", 17800, 15),
                     ("authentication.k8s.io", "v1", 17700, 15), ("authorization.k8s.io", "v1", 17600, 15),
                     ("autoscaling", "v2", 17500, 30), ("autoscaling", "v1", 17500, 15),
                     ("autoscaling", "v2beta1", 17500, 9), ("autoscaling", "v2beta2", 17500, 9)]


def sorted_groups(apiservices):
    """apiregistration's SortedByGroupAndVersion: APIServices by groupPriorityMinimum (highest
    first), then by name; each group where its first APIService falls, its versions by
    versionPriority (highest first), then by kube-aware version. [(group, [versions])]."""
    ordered_services = sorted(apiservices, key=lambda a: (-a["groupPriorityMinimum"], a["name"]))
    groups = []
    for a in ordered_services:
        for group, members in groups:
            if group == a["group"]:
                members.append(a)
                break
        else:
            groups.append((a["group"], [a]))
    return [(group, [a["version"] for a in sorted(
        sorted(members, key=lambda a: a["version"]),
        key=lambda a: (a["versionPriority"], _kube_version_key(a["version"])), reverse=True)])
            for group, members in groups]


def api_group(group, versions):
    gv = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gv, "preferredVersion": gv[0]}


HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "transfer-encoding", "upgrade"}
ANONYMOUS = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
UNAUTHORIZED = status(401, "Unauthorized", "Unauthorized")
VERSION_INFO = {"major": "1", "minor": "32", "gitVersion": "v1.32.4",
                "gitCommit": "59526cd4867447956156ae3a602fcbac5a0f2c6b", "gitTreeState": "clean",
                "buildDate": "2025-04-22T16:03:33Z", "goVersion": "go1.23.6", "compiler": "gc",
                "platform": "linux/amd64"}
EMPTY_NODE_STATUS = {"daemonEndpoints": {"kubeletEndpoint": {"Port": 0}}, "nodeInfo": {
    k: "" for k in ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
                    "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture")}}


def register_apiservice(store, obj, proxy_client_cert=None):
    """Registers an apiregistration.k8s.io/v1 APIService for the proxy: (code, body). Besides the
    real fields (spec.group, version, service {name, namespace, port}, caBundle base64 PEM or
    insecureSkipTLSVerify, groupPriorityMinimum, versionPriority), "endpoint": "host:port" says
    where the service's endpoint listens (what kube-aggregator resolves through the Service and
    its EndpointSlices). TLS to it presents the front-proxy client certificate and checks the
    serving certificate for <service>.<namespace>.svc against caBundle, unless insecureSkipTLSVerify."""
    if not isinstance(obj, dict) or not isinstance(obj.get("spec"), dict):
        return 400, status(400, "BadRequest", "the body is not an APIService")
    spec = obj["spec"]
    group, version, service = spec.get("group"), spec.get("version"), spec.get("service")
    endpoint = obj.get("endpoint")
    if not (isinstance(group, str) and group and isinstance(version, str) and version and isinstance(service, dict)
            and isinstance(endpoint, str) and ":" in endpoint):
        return 400, status(400, "BadRequest", "an APIService needs spec.group, spec.version, spec.service "
                                              "and \"endpoint\": \"host:port\"")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if spec.get("insecureSkipTLSVerify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif spec.get("caBundle"):
            context.load_verify_locations(cadata=base64.b64decode(spec["caBundle"]).decode())
        if proxy_client_cert:
            context.load_cert_chain(*proxy_client_cert)
    except (ValueError, ssl.SSLError, binascii.Error) as e:
        return 400, status(400, "BadRequest", f"the APIService's TLS settings do not load: {e}")
    name = (obj.get("metadata") or {}).get("name") or f"{version}.{group}"
    host, _, port = endpoint.rpartition(":")
    entry = {"name": name, "group": group, "version": version,
             "groupPriorityMinimum": int(spec.get("groupPriorityMinimum", 100)),
             "versionPriority": int(spec.get("versionPriority", 100)), "host": host, "port": int(port),
             "server_name": f"{service.get('name')}.{service.get('namespace')}.svc", "context": context,
             "insecure": bool(spec.get("insecureSkipTLSVerify"))}
    with store.lock:
        store.apiservices[name] = entry
    return 200, {"name": name, "group": group, "version": version, "endpoint": endpoint,
                 "serverName": entry["server_name"]}


def make_handler(store, auth, proxy_client_cert=None):
    tokens = auth.get("tokens", {})

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def send_bytes(self, code, data):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def send_json(self, code, body):
            self.send_bytes(code, dumps(body) + b"\n")

        def read_body(self):
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def log_message(self, *a):
            pass

        # -- routing ---------------------------------------------------------------------------
        def aggregated(self, url):
            """The APIService whose /apis/<group>/<version>[/...] this request names, or None."""
            parts = unquote(url.path).strip("/").split("/")
            if len(parts) < 3 or parts[0] != "apis":
                return None
            with store.lock:
                for service in store.apiservices.values():
                    if (service["group"], service["version"]) == (parts[1], parts[2]):
                        return service
            return None

        def do_GET(self):
            url = urlsplit(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            store.requests[url.path + ("?watch" if q.get("watch") in ("1", "true") else "")] += 1
            if url.path.startswith("/fake/"):
                return self.fake_get(url)
            service = self.aggregated(url)
            if service is not None:
                return self.proxy(service, url)
            if self.discovery(url.path):
                return None
            if url.path == "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication":
                if store.configmap is None:
                    return self.send_json(404, status(404, "NotFound", 'configmaps "extension-apiserver-authentication" not found'))
                return self.send_json(200, {"kind": "ConfigMap", "apiVersion": "v1",
                                            "metadata": {"name": "extension-apiserver-authentication",
                                                         "namespace": "kube-system"},
                                            "data": store.configmap})
            parts = url.path.strip("/").split("/")
            if len(parts) in (5, 6) and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
                if len(parts) == 6:
                    with store.lock:
                        entry = store.pods.get((parts[3], parts[5]))
                    if entry is None:
                        return self.send_json(404, not_found("", "pods", parts[5]))
                    return self.send_bytes(200, entry.full + b"\n")
                return self.namespace_list(parts[3], q)
            if len(parts) == 4 and parts[:3] == ["api", "v1", "nodes"]:
                with store.lock:
                    entry = store.node_set.by_key.get(parts[3])
                if entry is None:
                    return self.send_json(404, not_found("", "nodes", parts[3]))
                return self.send_bytes(200, entry.full + b"\n")
            if len(parts) == 8 and parts[:3] == ["apis", "apps", "v1"] and parts[3] == "namespaces" and \
                    parts[5] in WORKLOAD_PLURALS.values() and parts[7] == "scale":
                code, body = store.get_object("apps", "v1", parts[5], parts[4], parts[6])
                return self.send_json(code, scale_of(body) if code == 200 else body)
            if len(parts) == 7 and parts[0] == "apis" and parts[3] == "namespaces" and \
                    (parts[1], parts[2], parts[5]) in SERVED_RESOURCES:
                code, body = store.get_object(parts[1], parts[2], parts[5], parts[4], parts[6])
                return self.send_json(code, body)
            collection = {"/api/v1/pods": store.pod_set, "/api/v1/nodes": store.node_set}.get(url.path)
            if collection is None:
                return self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
            watch = q.get("watch") in ("1", "true")
            accept = self.headers.get("Accept")
            form = negotiate(accept, "PartialObjectMetadata" if watch else "PartialObjectMetadataList",
                             store.metadata_form, collection.kind)
            if isinstance(form, tuple):
                store.record(collection, url.query, accept, "406")
                return self.send_json(406, status(406, "NotAcceptable", form[1]))
            try:
                selectors = Selectors(q, collection.fields)
            except SelectorError as e:
                store.record(collection, url.query, accept, "400")
                return self.send_json(400, status(400, "BadRequest", str(e)))
            if watch:
                return self.watch(collection, selectors, q, url.query, accept, form == "meta")
            return self.list(collection, selectors, q, url.query, accept, form == "meta")

        def fake_get(self, url):
            if url.path == "/fake/requests":
                return self.send_json(200, dict(store.requests))
            collection = {"/fake/pod_requests": store.pod_set, "/fake/node_requests": store.node_set}.get(url.path)
            if collection is not None:
                with store.lock:
                    return self.send_json(200, list(collection.requests))
            if url.path == "/fake/faults":
                with store.lock:
                    nodes = store.node_set
                    return self.send_json(200, {"list_failures": store.pod_set.list_failures,
                                                "metadata_form": store.metadata_form,
                                                "bookmark_interval": store.bookmark_interval,
                                                "split_chunks_written": store.pod_set.split_chunks_written,
                                                "open_watches": store.pod_set.open_watches,
                                                "bookmarks_written": store.pod_set.bookmarks_written,
                                                "nodes": {"list_failures": nodes.list_failures,
                                                          "open_watches": nodes.open_watches,
                                                          "bookmarks_written": nodes.bookmarks_written}})
            if url.path == "/fake/reviews":
                return self.send_json(200, store.reviews)
            if url.path == "/fake/proxied":
                with store.lock:
                    return self.send_json(200, list(store.proxied))
            if url.path == "/fake/apiservices":
                with store.lock:
                    return self.send_json(200, [{k: v for k, v in a.items() if k != "context"}
                                                for a in store.apiservices.values()])
            return self.send_json(404, status(404, "NotFound", "not found"))

        def discovery(self, path):
            """Answers /version, /api, /apis and /apis/<group> as kube-apiserver and its aggregator
            do (the legacy forms, whatever the Accept: a client asking for aggregated discovery
            falls back to them); False for any other path."""
            if path == "/version":
                return self.send_json(200, VERSION_INFO) or True
            if path in ("/api", "/api/"):
                host, port = self.server.server_address[:2]
                return self.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{host}:{port}"}]}) or True
            parts = path.strip("/").split("/")
            if parts[0] != "apis" or len(parts) > 2:
                return False
            with store.lock:
                services = [{"name": f"{v}.{g}", "group": g, "version": v, "groupPriorityMinimum": gp,
                             "versionPriority": vp} for g, v, gp, vp in LOCAL_APISERVICES]
                services += list(store.apiservices.values())
            groups = sorted_groups(services)
            if len(parts) == 1:
                return self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1",
                                            "groups": [api_group(g, vs) for g, vs in groups]}) or True
            for group, versions in groups:
                if group == parts[1]:
                    return self.send_json(200, {"kind": "APIGroup", "apiVersion": "v1",
                                                **api_group(group, versions)}) or True
            return False

        # -- the aggregation proxy ------------------------------------------------------------------
        def authenticate(self):
            """The user of this request, as kube-apiserver's authenticators find it: a client
            certificate verified against --client-ca-file (CN the name, each O a group), else a
            bearer token of --auth, else system:anonymous; an authenticated user also gets the group
            system:authenticated. None, after answering 401, for a token nobody knows."""
            certificate = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            if certificate:
                subject = [pair for rdn in certificate.get("subject", ()) for pair in rdn]
                user = {"username": next((v for k, v in subject if k == "commonName"), ""),
                        "groups": [v for k, v in subject if k == "organizationName"]}
            elif self.headers.get("Authorization"):
                scheme, _, token = self.headers["Authorization"].partition(" ")
                user = tokens.get(token.strip()) if scheme.lower() == "bearer" else None
                if user is None:
                    self.send_json(401, UNAUTHORIZED)
                    return None
                user = json.loads(json.dumps(user))
            else:
                return json.loads(json.dumps(ANONYMOUS))
            user.setdefault("groups", [])
            if "system:authenticated" not in user["groups"]:
                user["groups"].append("system:authenticated")
            return user

        def proxy(self, service, url):
            """Forwards this request to the APIService's endpoint as kube-aggregator does (see
            register_apiservice): the path and query re-encoded as Go does, the client's headers
            but for hop-by-hop ones, Authorization and X-Remote-*, then X-Remote-User, one
            X-Remote-Group per group and X-Remote-Extra-* for the user this fake authenticated.
            The answer's status, headers and body come back as they are, streamed; an endpoint
            that cannot be reached (or whose certificate does not verify) is a 503 with the body
            "service unavailable", as from an APIService that is not Available."""
            user = self.authenticate()
            if user is None:
                return
            length = self.headers.get("Content-Length")
            body = self.rfile.read(int(length)) if length else None
            query = go_query_encode(url.query)
            target = go_path_escape(url.path) + ("?" + query if query else "")
            drop = HOP_BY_HOP | {"authorization", "host", "content-length"} | {
                h.strip().lower() for h in self.headers.get("Connection", "").split(",")}
            headers = [(k, v) for k, v in self.headers.items()
                       if k.lower() not in drop and not k.lower().startswith("x-remote-")]
            headers.append(("X-Remote-User", user.get("username", "")))
            headers += [("X-Remote-Group", g) for g in user["groups"]]
            headers += [(extra_header(k), v) for k, vs in sorted((user.get("extra") or {}).items()) for v in vs]
            headers.append(("X-Forwarded-For", self.client_address[0]))
            if body is not None:
                headers.append(("Content-Length", str(len(body))))
            record = {"method": self.command, "path": target, "user": user.get("username", ""),
                      "groups": user["groups"], "headers": headers, "service": service["name"]}
            # kube-apiserver gives discovery (/apis/<group>/<version>) 5 s.
            timeout = 5 if len(unquote(url.path).strip("/").split("/")) == 3 else 60
            connection = None
            try:
                raw = socket.create_connection((service["host"], service["port"]), timeout=timeout)
                try:
                    tls = service["context"].wrap_socket(
                        raw, server_hostname=None if service["insecure"] else service["server_name"])
                except BaseException:
                    raw.close()
                    raise
                connection = http.client.HTTPConnection(service["host"], service["port"], timeout=timeout)
                connection.sock = tls
                connection.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
                connection.putheader("Host", f"{service['host']}:{service['port']}")
                for k, v in headers:
                    connection.putheader(k, v)
                connection.endheaders(body)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as e:
                if connection is not None:
                    connection.close()
                record.update(status=503, error=str(e))
                with store.lock:
                    store.proxied.append(record)
                data = b"service unavailable\n"  # http.Error's body
                self.send_response(503)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            record["status"] = response.status
            with store.lock:
                store.proxied.append(record)
            try:
                self.relay(response)
            finally:
                connection.close()

        def relay(self, response):
            length = response.getheader("Content-Length")
            no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
            self.send_response_only(response.status, response.reason)
            hop = HOP_BY_HOP | {h.strip().lower() for h in (response.getheader("Connection") or "").split(",")}
            for k, v in response.getheaders():
                if k.lower() not in hop:
                    self.send_header(k, v)
            chunked = length is None and not no_body
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if no_body:
                return
            try:
                while True:
                    data = response.read1(65536)
                    if not data:
                        break
                    if chunked:
                        self.write_chunk(data)
                    else:
                        self.wfile.write(data)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (OSError, http.client.HTTPException):
                self.close_connection = True

        # -- pods and nodes ------------------------------------------------------------------------
        def namespace_list(self, ns, q):
            """GET /api/v1/namespaces/{ns}/pods: every matching pod of the namespace, in full, in one
            page (no watch, paging, faults or metadata form)."""
            if q.get("watch") in ("1", "true"):
                return self.send_json(400, status(400, "BadRequest",
                                                  "this fake watches pods only at /api/v1/pods"))
            try:
                selectors = Selectors(q, POD_FIELDS)
            except SelectorError as e:
                return self.send_json(400, status(400, "BadRequest", str(e)))
            items, version = store.namespace_pods(ns, selectors)
            self.send_bytes(200, b'{"kind":"PodList","apiVersion":"v1","metadata":' +
                            dumps({"resourceVersion": str(version)}) + b',"items":[' + b",".join(items) + b"]}\n")

        def list(self, collection, selectors, q, query, accept, meta):
            served = "PartialObjectMetadataList" if meta else collection.kind + "List"
            with store.lock:
                keys = collection.keys
                if collection.list_failures > 0:
                    collection.list_failures -= 1
                    collection.requests.append({"query": query, "accept": accept, "served": "500"})
                    failure = status(500, "InternalError", "etcdserver: request timed out")
                    version = None
                else:
                    failure = None
                    version = store.version
                    start = 0
                    if q.get("continue") and q.get("resourceVersion"):
                        failure = status(400, "BadRequest",
                                         "specifying resource version is not allowed when using continue")
                    elif q.get("continue"):
                        try:
                            version, start_key = decode_continue(q["continue"])
                        except ValueError as e:
                            failure = status(400, "BadRequest", str(e))
                        else:
                            if version < store.oldest:
                                failure = status(410, "Expired", CONTINUE_TOO_OLD)
                            start = bisect.bisect_left(keys, start_key)
                    if failure is None:
                        try:
                            limit = max(0, int(q.get("limit") or 0))
                        except ValueError:
                            limit = 0
                        if not selectors:
                            end = len(keys) if limit == 0 else min(len(keys), start + limit)
                            page = [collection.by_key[k] for k in keys[start:end]]
                        else:  # the storage scans on until `limit` objects match
                            page, end = [], start
                            while end < len(keys) and (limit == 0 or len(page) < limit):
                                entry = collection.by_key[keys[end]]
                                end += 1
                                if selectors.matches(entry):
                                    page.append(entry)
                        list_meta = {"resourceVersion": str(version)}
                        if end < len(keys):
                            list_meta["continue"] = encode_continue(version, keys[end - 1]) if end > 0 else ""
                            if not selectors:  # kube-apiserver cannot count what a selector leaves
                                list_meta["remainingItemCount"] = len(keys) - end
                    record = {"query": query, "accept": accept,
                              "served": str(failure["code"]) if failure else served}
                    if failure is None:
                        record.update(resourceVersion=list_meta["resourceVersion"],
                                      handed_continue=list_meta.get("continue", ""))
                    collection.requests.append(record)
            if failure is not None:
                return self.send_json(failure["code"], failure)
            if meta:
                head = b'{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":'
                items = b",".join(e.meta for e in page)
            else:
                head = b'{"kind":"' + collection.kind.encode() + b'List","apiVersion":"v1","metadata":'
                items = b",".join(e.full for e in page)
            self.send_bytes(200, head + dumps(list_meta) + b',"items":[' + items + b"]}\n")

        def write_chunk(self, data):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def write_event(self, collection, kind, obj_bytes, split=None):
            line = b'{"type":"' + kind.encode() + b'","object":' + obj_bytes + b"}\n"
            if not split:
                return self.write_chunk(line)
            pieces, pause = max(1, int(split[0])), float(split[1])
            size = -(-len(line) // pieces)
            parts = [line[i:i + size] for i in range(0, len(line), size)]
            for i, part in enumerate(parts):
                if i:
                    time.sleep(pause)
                self.write_chunk(part)
                with store.lock:
                    collection.split_chunks_written += 1

        def bookmark(self, collection, version, meta):
            if meta:
                obj = {"kind": "PartialObjectMetadata", "apiVersion": META_GROUP_VERSION,
                       "metadata": {"resourceVersion": str(version), "creationTimestamp": None}}
            elif collection.kind == "Pod":
                obj = {"kind": "Pod", "apiVersion": "v1",
                       "metadata": {"resourceVersion": str(version), "creationTimestamp": None},
                       "spec": {"containers": None}, "status": {}}
            else:
                obj = {"kind": "Node", "apiVersion": "v1",
                       "metadata": {"resourceVersion": str(version), "creationTimestamp": None},
                       "spec": {}, "status": EMPTY_NODE_STATUS}
            self.write_event(collection, "BOOKMARK", dumps(obj))
            with store.lock:
                collection.bookmarks_written += 1

        def watch(self, collection, selectors, q, query, accept, meta):
            rv = q.get("resourceVersion") or "0"
            try:
                since = int(rv)
            except ValueError:
                since = -1
            bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
            deadline = time.time() + int(q.get("timeoutSeconds") or 60)
            with store.lock:
                initial = []
                if since == 0:  # start at the most recent version, with a synthetic ADDED for every object
                    initial = [e for e in (collection.by_key[k] for k in collection.keys)
                               if not selectors or selectors.matches(e)]
                    since = store.version
                expired = since < store.oldest
                generation, ending = collection.watch_generation, collection.end_generation
                collection.requests.append({"query": query, "accept": accept, "served": "410" if expired else
                                            ("PartialObjectMetadata" if meta else collection.kind)})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            with store.lock:
                collection.open_watches += 1
            try:
                if expired:
                    self.write_event(collection, "ERROR", dumps(status(410, "Expired",
                                     f"too old resource version: {since} ({store.oldest})")))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                for entry in initial:
                    self.write_event(collection, "ADDED", entry.meta if meta else entry.full)
                last_bookmark = time.time()
                while time.time() < deadline:
                    with store.lock:
                        if collection.watch_generation != generation:
                            self.close_connection = True
                            return  # cut: no terminating chunk
                        if collection.end_generation != ending:
                            break
                        first = bisect.bisect_right(collection.events, since, key=lambda e: e[0])
                        pending = collection.events[first:]
                        if not pending:
                            if bookmarks and time.time() - last_bookmark >= store.bookmark_interval:
                                since = max(since, store.version)
                                version = since
                            else:
                                wait = min(1.0, max(0.0, deadline - time.time()))
                                if bookmarks:
                                    wait = max(0.01, min(wait, last_bookmark + store.bookmark_interval - time.time()))
                                store.lock.wait(timeout=wait)
                                continue
                    if not pending:
                        self.bookmark(collection, version, meta)
                        last_bookmark = time.time()
                        continue
                    for version, kind, obj, split, before in pending:
                        if kind == "RAW":  # one line, as every watch event is
                            self.write_chunk((obj + "\n").encode())
                        else:
                            shown = watch_event_type(kind, obj, before, selectors)
                            if shown:
                                self.write_event(collection, shown, obj.meta if meta else obj.full, split)
                        since = version
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with store.lock:
                    collection.open_watches -= 1

        # -- writes ------------------------------------------------------------------------------
        def do_PUT(self):
            url = urlsplit(self.path)
            service = self.aggregated(url)
            if service is not None:
                return self.proxy(service, url)
            parts = url.path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["fake", "pods"]:
                body = self.read_body()
                phase, ready = body.get("phase", "Running"), body.get("ready", True)
                if phase not in POD_PHASES:
                    return self.send_json(400, status(400, "BadRequest", f"unknown phase {phase!r}: one of "
                                                                         + ", ".join(POD_PHASES)))
                if not isinstance(ready, bool):
                    return self.send_json(400, status(400, "BadRequest", "ready must be true or false"))
                store.put(parts[2], parts[3], body.get("labels", {}), body.get("annotations"),
                          phase=phase, ready=ready)
                return self.send_json(200, {"ok": True})
            if len(parts) == 3 and parts[:2] == ["fake", "nodes"]:
                try:
                    body = self.read_body()
                except ValueError as e:
                    return self.send_json(400, status(400, "BadRequest", f"the body is not JSON: {e}"))
                if not isinstance(body, dict):
                    return self.send_json(400, status(400, "BadRequest", "the body is not a JSON object"))
                return self.send_bytes(200, store.put_node(parts[2], body).full + b"\n")
            if parts == ["fake", "apiservices"]:
                try:
                    body = self.read_body()
                except ValueError as e:
                    return self.send_json(400, status(400, "BadRequest", f"the body is not JSON: {e}"))
                return self.send_json(*register_apiservice(store, body, proxy_client_cert))
            if parts == ["fake", "objects"]:
                try:
                    body = self.read_body()
                except ValueError as e:
                    return self.send_json(400, status(400, "BadRequest", f"the body is not JSON: {e}"))
                return self.send_json(*store.put_object(body))
            if parts == ["fake", "configmap"]:
                store.configmap = self.read_body().get("data", {})
                return self.send_json(200, {"ok": True})
            if parts == ["fake", "faults"]:
                faults = self.read_body()
                form = faults.get("metadata_form")
                if form is not None and form not in ("serve", "ignore", "refuse"):
                    return self.send_json(400, status(400, "BadRequest", f"unknown metadata_form {form!r}"))
                if faults.get("resource", "pods") not in ("pods", "nodes"):
                    return self.send_json(400, status(400, "BadRequest", "resource is pods or nodes"))
                collection = store.node_set if faults.get("resource") == "nodes" else store.pod_set
                with store.lock:
                    collection.list_failures = int(faults.get("list_failures", collection.list_failures))
                    store.metadata_form = form or store.metadata_form
                    store.bookmark_interval = float(faults.get("bookmark_interval", store.bookmark_interval))
                    for line in faults.get("raw", []):
                        store.version += 1
                        collection.events.append((store.version, "RAW", line, None, None))
                    if faults.get("drop_watches"):
                        collection.watch_generation += 1
                    if faults.get("end_watches"):
                        collection.end_generation += 1
                    store.lock.notify_all()
                split = faults.get("split_event")
                if split:
                    store.put(split["namespace"], split["name"], split.get("labels", {}), split.get("annotations"),
                              split=(split.get("pieces", 4), split.get("pause", 0.2)))
                return self.send_json(200, {"ok": True})
            self.send_json(404, status(404, "NotFound", "not found"))

        def do_DELETE(self):
            url = urlsplit(self.path)
            service = self.aggregated(url)
            if service is not None:
                return self.proxy(service, url)
            parts = url.path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["fake", "pods"]:
                return self.send_json(200 if store.delete(parts[2], parts[3]) else 404, {})
            if len(parts) == 3 and parts[:2] == ["fake", "nodes"]:
                return (self.send_json(200, {}) if store.delete_node(parts[2])
                        else self.send_json(404, not_found("", "nodes", parts[2])))
            if len(parts) == 3 and parts[:2] == ["fake", "apiservices"]:
                with store.lock:
                    gone = store.apiservices.pop(parts[2], None)
                return self.send_json(200 if gone else 404, {})
            if len(parts) == 6 and parts[:2] == ["fake", "objects"]:
                group = "" if parts[2] == "core" else parts[2]
                plural, ns, name = parts[3:]
                deleted = (store.delete(ns, name) if (group, plural) == ("", "pods")
                           else store.delete_object(group, plural, ns, name))
                return self.send_json(200, {}) if deleted else self.send_json(404, not_found(group, plural, name))
            if parts == ["fake", "history"]:
                store.compact()
                return self.send_json(200, {})
            self.send_json(404, status(404, "NotFound", "not found"))

        def do_PATCH(self):
            url = urlsplit(self.path)
            service = self.aggregated(url)
            if service is not None:
                return self.proxy(service, url)
            self.send_json(404, status(404, "NotFound", "not found"))

        def do_POST(self):
            url = urlsplit(self.path)
            service = self.aggregated(url)
            if service is not None:
                return self.proxy(service, url)
            path = url.path
            store.requests[path] += 1
            body = self.read_body()
            store.reviews.append(json.loads(json.dumps(body)))
            if path == "/apis/authentication.k8s.io/v1/tokenreviews":
                user = tokens.get(body.get("spec", {}).get("token", ""))
                body["status"] = ({"authenticated": True, "user": user} if user
                                  else {"authenticated": False, "error": "invalid bearer token"})
                return self.send_json(201, body)
            if path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
                spec = body.get("spec", {})
                attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}

                def matches(rule):
                    who = (rule.get("user") == spec.get("user") if "user" in rule
                           else rule.get("group") in spec.get("groups", []))
                    if not who:
                        return False
                    if "path" in rule:  # a trailing * matches every path it prefixes, as in RBAC
                        path_ = attrs.get("path")
                        if "path" not in attrs or not (path_ == rule["path"] or (
                                rule["path"].endswith("*") and path_.startswith(rule["path"][:-1]))):
                            return False
                    if "apiGroup" in rule and (attrs.get("group", "") != rule["apiGroup"] or "path" in attrs):
                        return False
                    return all(rule[k] == attrs.get(k) for k in
                               ("verb", "resource", "subresource", "namespace", "name") if k in rule)
                allowed = any(matches(rule) for rule in auth.get("allow", []))
                body["status"] = {"allowed": allowed}
                if not allowed:
                    body["status"]["reason"] = "no RBAC policy matched"
                return self.send_json(201, body)
            self.send_json(404, status(404, "NotFound", "not found"))

    return Handler


class TLSServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer over TLS whose handshakes run in each connection's own thread, so a
    client that never finishes one holds up nobody else."""
    daemon_threads = True

    def __init__(self, address, handler, context):
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request, client_address):
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True,
                        help="plain HTTP (HTTPS with --tls-cert and no --secure-port)")
    parser.add_argument("--pods", help="JSON file: [{namespace, name, labels}] created at start")
    parser.add_argument("--nodes", help="JSON file: [{name, labels, capacity, allocatable, ready, unschedulable, "
                                        "taints}] created at start (see node_object())")
    parser.add_argument("--auth", help="JSON file with tokens and allow rules")
    parser.add_argument("--tls-cert", help="the serving certificate (PEM)")
    parser.add_argument("--tls-key")
    parser.add_argument("--secure-port", type=int,
                        help="an HTTPS port besides --port, with --tls-cert and --tls-key (--port stays plain)")
    parser.add_argument("--client-ca-file", help="CA of the client certificates that authenticate users on "
                                                 "the HTTPS port (CN the name, O the groups)")
    parser.add_argument("--proxy-client-cert-file", help="the front-proxy client certificate the aggregation "
                                                         "proxy presents to APIService endpoints")
    parser.add_argument("--proxy-client-key-file")
    parser.add_argument("--apiservices", help="JSON file: [APIService with \"endpoint\"], registered at start "
                                              "(as PUT /fake/apiservices)")
    args = parser.parse_args()
    store = Store()
    if args.pods:
        with open(args.pods) as f:
            for p in json.load(f):
                store.put(p["namespace"], p["name"], p.get("labels", {}), p.get("annotations"),
                          phase=p.get("phase", "Running"), ready=p.get("ready", True))
    if args.nodes:
        with open(args.nodes) as f:
            for n in json.load(f):
                store.put_node(n["name"], n)
    auth = {}
    if args.auth:
        with open(args.auth) as f:
            auth = json.load(f)
    proxy_client_cert = ((args.proxy_client_cert_file, args.proxy_client_key_file)
                         if args.proxy_client_cert_file else None)
    if args.apiservices:
        with open(args.apiservices) as f:
            for a in json.load(f):
                code, body = register_apiservice(store, a, proxy_client_cert)
                if code != 200:
                    parser.error(f"--apiservices: {body['message']}")
    handler = make_handler(store, auth, proxy_client_cert)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    if args.tls_cert and not args.secure_port:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    if args.secure_port:
        if not args.tls_cert:
            parser.error("--secure-port needs --tls-cert and --tls-key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.client_ca_file:
            ctx.load_verify_locations(args.client_ca_file)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        secure = TLSServer(("127.0.0.1", args.secure_port), handler, ctx)
        threading.Thread(target=secure.serve_forever, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
