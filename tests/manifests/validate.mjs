// Renders every kustomize target under manifests/ with `kubectl kustomize` and validates each
// object offline against the Kubernetes OpenAPI schemas (kubernetes-models) and the CRD
// schemas of cert-manager and prometheus-operator, then checks the properties the project
// promises (locked-down pods, APIServices, no --insecure-skip-auth).
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../manifests");
const modules = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "rbac.authorization.k8s.io/v1": "kubernetes-models/rbac.authorization.k8s.io/v1",
  "apiregistration.k8s.io/v1": "kubernetes-models/apiregistration.k8s.io/v1",
  "autoscaling/v2": "kubernetes-models/autoscaling/v2",
  "cert-manager.io/v1": "@kubernetes-models/cert-manager/cert-manager.io/v1",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};

let passed = 0;
let failed = 0;
function check(name, ok, detail = "") {
  if (ok) {
    passed++;
  } else {
    failed++;
    console.log(`FAIL ${name}${detail ? ": " + detail : ""}`);
  }
}

async function render(target) {
  const out = execFileSync("kubectl", ["kustomize", path.join(root, target)], { encoding: "utf8" });
  const objects = parseAllDocuments(out).map((d) => d.toJSON()).filter(Boolean);
  for (const obj of objects) {
    const name = `${target}: ${obj.kind} ${obj.metadata?.namespace ?? ""}/${obj.metadata?.name}`;
    const module = modules[obj.apiVersion];
    if (!module) {
      check(name, false, `no schema for apiVersion ${obj.apiVersion}`);
      continue;
    }
    const Model = (await import(module))[obj.kind];
    if (!Model) {
      check(name, false, `no schema for kind ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
      check(name, true);
    } catch (e) {
      check(name, false, e.message);
    }
  }
  return objects;
}

const find = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const all = (objects, kind) => objects.filter((o) => o.kind === kind);

// base: a locked-down adapter behind three APIServices.
const base = await render("base");
const deployment = find(base, "Deployment", "gpu-metrics-adapter");
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
check("base: 2 replicas", deployment.spec.replicas === 2);
check("base: spread across nodes",
  pod.topologySpreadConstraints?.[0]?.topologyKey === "kubernetes.io/hostname");
check("base: runs as non-root", pod.securityContext.runAsNonRoot === true && container.securityContext.runAsNonRoot === true);
check("base: read-only root filesystem", container.securityContext.readOnlyRootFilesystem === true);
check("base: drops all capabilities", JSON.stringify(container.securityContext.capabilities) === '{"drop":["ALL"]}');
check("base: seccomp RuntimeDefault", container.securityContext.seccompProfile?.type === "RuntimeDefault");
check("base: no privilege escalation", container.securityContext.allowPrivilegeEscalation === false);
check("base: requests and limits", !!container.resources.requests?.cpu && !!container.resources.limits?.memory);
for (const probe of ["livenessProbe", "readinessProbe"]) {
  const expected = probe === "livenessProbe" ? "/livez" : "/readyz";
  check(`base: ${probe} is HTTPS ${expected}`,
    container[probe]?.httpGet?.scheme === "HTTPS" && container[probe]?.httpGet?.path === expected);
}
check("base: serves the shipped rules file",
  container.args.includes("--config=/etc/adapter/config.yaml") &&
  find(base, "ConfigMap", "gpu-metrics-adapter-rules")?.data?.["config.yaml"]?.includes("gpu_utilization"));
check("base: PodDisruptionBudget", !!find(base, "PodDisruptionBudget", "gpu-metrics-adapter"));
check("base: auth-delegator binding",
  all(base, "ClusterRoleBinding").some((b) => b.roleRef.name === "system:auth-delegator"));
const reader = all(base, "RoleBinding").find((b) => b.roleRef.name === "extension-apiserver-authentication-reader");
check("base: authentication reader in kube-system", reader?.metadata.namespace === "kube-system");
check("base: pods and namespaces readable",
  all(base, "ClusterRole").some((r) => r.rules.some((rule) =>
    rule.resources?.includes("pods") && rule.resources?.includes("namespaces") && rule.verbs.includes("watch"))));
check("base: a role for scraping /metrics",
  all(base, "ClusterRole").some((r) => r.rules.some((rule) => rule.nonResourceURLs?.includes("/metrics"))));
check("base: HPA controller may read both groups",
  all(base, "ClusterRoleBinding").some((b) => b.subjects?.some((s) =>
    s.name === "horizontal-pod-autoscaler" && s.namespace === "kube-system")));
const apiServices = all(base, "APIService").map((a) => a.metadata.name).sort();
check("base: three APIServices", JSON.stringify(apiServices) === JSON.stringify(
  ["v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"]),
  apiServices.join(","));
check("base: v1beta2 preferred",
  find(base, "APIService", "v1beta2.custom.metrics.k8s.io").spec.versionPriority >
  find(base, "APIService", "v1beta1.custom.metrics.k8s.io").spec.versionPriority);

// cert-manager: verified TLS between kube-aggregator and the adapter.
const cm = await render("overlays/cert-manager");
for (const a of all(cm, "APIService")) {
  check(`cert-manager: ${a.metadata.name} verifies TLS`, a.spec.insecureSkipTLSVerify === undefined);
  check(`cert-manager: ${a.metadata.name} gets its caBundle from cainjector`,
    a.metadata.annotations?.["cert-manager.io/inject-ca-from"] === "gpu-metrics/gpu-metrics-adapter-serving");
}
const cmContainer = find(cm, "Deployment", "gpu-metrics-adapter").spec.template.spec.containers[0];
check("cert-manager: serves the issued certificate",
  cmContainer.args.includes("--tls-cert-file=/var/run/serving-cert/tls.crt"));
check("cert-manager: keeps the rules file", cmContainer.args.includes("--config=/etc/adapter/config.yaml"));
const serving = find(cm, "Certificate", "gpu-metrics-adapter-serving");
check("cert-manager: certificate names the Service",
  serving.spec.dnsNames.includes("gpu-metrics-adapter.gpu-metrics.svc"));
const cmVolume = find(cm, "Deployment", "gpu-metrics-adapter").spec.template.spec.volumes[0];
check("cert-manager: secret volume replaces the emptyDir", !!cmVolume.secret && !cmVolume.emptyDir);

// custom metrics only, beside KEDA.
const customOnly = await render("overlays/custom-metrics-only");
check("custom-metrics-only: no external APIService",
  all(customOnly, "APIService").every((a) => a.spec.group === "custom.metrics.k8s.io") &&
  all(customOnly, "APIService").length === 2);

// examples
const examples = await render("examples");
for (const d of [...all(examples, "Deployment"), ...all(examples, "DaemonSet")]) {
  const spec = d.spec.template.spec;
  const volumes = new Set((spec.volumes ?? []).map((v) => v.name));
  for (const c of spec.containers)
    for (const m of c.volumeMounts ?? [])
      check(`examples: ${d.metadata.name} mounts a declared volume ${m.name}`, volumes.has(m.name));
  for (const c of spec.containers) {
    const gpu = c.resources?.limits?.["nvidia.com/gpu"];
    if (gpu !== undefined)
      check(`examples: ${d.metadata.name} requests whole GPUs in limits`, Number.isInteger(Number(gpu)));
  }
}
const hpas = all(examples, "HorizontalPodAutoscaler");
check("examples: Pods HPA on gpu_utilization averageValue 80", hpas.some((h) =>
  h.spec.metrics[0].type === "Pods" && h.spec.metrics[0].pods.metric.name === "gpu_utilization" &&
  String(h.spec.metrics[0].pods.target.averageValue) === "80"));
check("examples: External HPA on gpu.utilization with a selector", hpas.some((h) =>
  h.spec.metrics[0].type === "External" && h.spec.metrics[0].external.metric.name === "gpu.utilization" &&
  !!h.spec.metrics[0].external.metric.selector));
check("examples: ServiceMonitor honours labels",
  all(examples, "ServiceMonitor").every((s) => s.spec.endpoints.every((e) => e.honorLabels === true)));
const dcgm = find(examples, "DaemonSet", "dcgm-exporter").spec.template.spec.containers[0];
check("examples: dcgm-exporter in Kubernetes mode with NODE_NAME",
  dcgm.env.some((e) => e.name === "DCGM_EXPORTER_KUBERNETES" && e.value === "true") &&
  dcgm.env.some((e) => e.name === "NODE_NAME" && e.valueFrom?.fieldRef?.fieldPath === "spec.nodeName"));

// Nothing deployable may turn authentication off.
for (const [target, objects] of [["base", base], ["overlays/cert-manager", cm], ["overlays/custom-metrics-only", customOnly]])
  check(`${target}: never --insecure-skip-auth`, !JSON.stringify(objects).includes("insecure-skip-auth"));

console.log(`manifests: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
