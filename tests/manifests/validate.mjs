// Renders every kustomize target under manifests/ with `kubectl kustomize` and validates each
// object offline against the Kubernetes OpenAPI schemas (kubernetes-models) and the CRD
// schemas of cert-manager and prometheus-operator, then checks the properties the project
// promises (locked-down pods, APIServices, no --insecure-skip-auth, a Prometheus URL that
// overlays can change without restating the arguments, opt-in components, one HPA per target,
// resource metrics only where components/resource-metrics is listed).
// Components and stacked overlays are rendered the way a user would use them: from an overlay
// of their own, written to a temporary directory that refers to manifests/ by relative path.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { parseAllDocuments } from "yaml";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../manifests");
const modules = {
  "v1": "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "rbac.authorization.k8s.io/v1": "kubernetes-models/rbac.authorization.k8s.io/v1",
  "networking.k8s.io/v1": "kubernetes-models/networking.k8s.io/v1",
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

const parseYaml = (text) => parseAllDocuments(text).map((d) => d.toJSON()).filter(Boolean);

// Validates objects against their schemas, one check per object.
async function validate(label, objects) {
  for (const obj of objects) {
    const name = `${label}: ${obj.kind} ${obj.metadata?.namespace ?? ""}/${obj.metadata?.name}`;
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

const rendered = new Set();  // kustomization directories under manifests/ rendered here
async function renderDir(dir, label) {
  let out;
  try {
    out = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    // Later checks need this target's objects: report and stop.
    check(`${label}: renders`, false, `kubectl kustomize: ${String(e.stderr ?? e.message).trim()}`);
    console.log(`manifests: ${passed} passed, ${failed} failed`);
    process.exit(1);
  }
  return validate(label, parseYaml(out));
}
// A kustomize target under manifests/ (a Kustomization, not a Component).
async function render(target) {
  rendered.add(target);
  return renderDir(path.join(root, target), target);
}

// A user's own overlay in a temporary directory. `kustomization` may say ${M} for the path of
// manifests/ relative to that directory (kustomize refuses absolute paths for resources and
// components); `files` are extra files written beside it.
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "gma-manifests-"));
process.on("exit", () => fs.rmSync(scratch, { recursive: true, force: true }));
let overlays = 0;
async function renderOverlay(label, kustomization, files = {}) {
  const dir = path.join(scratch, String(overlays++));
  fs.mkdirSync(dir);
  const m = path.relative(dir, root);
  fs.writeFileSync(path.join(dir, "kustomization.yaml"), kustomization.replaceAll("${M}", m));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return renderDir(dir, label);
}
// Components are rendered on top of the base, as a user's overlay lists them.
const componentsUsed = new Set();
function withComponents(resource, components, extra = "") {
  for (const c of components) componentsUsed.add(c);
  return `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- \${M}/${resource}
components:
${components.map((c) => `- \${M}/${c}`).join("\n")}
${extra}`;
}

const find = (objects, kind, name) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const all = (objects, kind) => objects.filter((o) => o.kind === kind);
const adapter = (objects) => find(objects, "Deployment", "gpu-metrics-adapter");
const adapterContainer = (objects) =>
  adapter(objects).spec.template.spec.containers.find((c) => c.name === "adapter");
// The Prometheus URL the adapter starts with: --prometheus-url after Kubernetes expands
// $(VAR) references from the container's env (unresolved references stay literal, as they do
// in a pod).
function prometheusUrl(objects) {
  const c = adapterContainer(objects);
  const flags = c.args.filter((a) => a.startsWith("--prometheus-url="));
  if (flags.length !== 1) return `${flags.length} --prometheus-url flags`;
  const env = Object.fromEntries((c.env ?? []).filter((e) => "value" in e).map((e) => [e.name, e.value]));
  return flags[0].slice("--prometheus-url=".length).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g,
    (ref, name) => (name in env ? env[name] : ref));
}
const targetKey = (hpa) => {
  const t = hpa.spec.scaleTargetRef;
  return `${hpa.metadata.namespace}/${t.apiVersion}/${t.kind}/${t.name}`;
};
// The HPA controller refuses to act on a target that two HPAs select (AmbiguousSelector).
function oneHpaPerTarget(label, objects) {
  const seen = new Map();
  for (const h of all(objects, "HorizontalPodAutoscaler")) {
    const key = targetKey(h);
    check(`${label}: only HPA ${h.metadata.name} targets ${key}`, !seen.has(key),
      seen.has(key) ? `also HPA ${seen.get(key)}` : "");
    seen.set(key, h.metadata.name);
  }
}
const metricTargets = (hpa, type) =>
  hpa.spec.metrics.filter((m) => m.type === type).map((m) => m[type.toLowerCase()]);

// The rules file the adapter reads: --config's file, from the ConfigMap volume mounted at its
// directory. Undefined when any link is missing.
function rulesFile(objects) {
  const c = adapterContainer(objects);
  const file = c.args.find((a) => a.startsWith("--config="))?.slice("--config=".length) ?? "";
  const dir = (m) => m.mountPath.replace(/\/?$/, "/");
  const mount = (c.volumeMounts ?? []).find((m) => file.startsWith(dir(m)));
  const volume = adapter(objects).spec.template.spec.volumes.find((v) => v.name === mount?.name);
  return find(objects, "ConfigMap", volume?.configMap?.name)?.data?.[file.slice(mount ? dir(mount).length : 0)];
}
// The rules file parsed as the reference reads it (yaml.v2, strictly): one document, no
// duplicate keys. Problems go to `errors`.
function parseRules(text) {
  const docs = parseAllDocuments(text ?? "");
  const errors = [...(text === undefined ? ["no rules file"] : []),
    ...(docs.length === 1 ? [] : [`${docs.length} YAML documents`]),
    ...docs.flatMap((d) => d.errors.map((e) => e.message))];
  return { config: docs[0]?.toJSON() ?? {}, errors };
}
// resourceRules in the schema of prometheus-adapter's pkg/config/config.go, which the adapter
// loads as strictly as the reference: ResourceRules {cpu, memory, window}, each ResourceRule
// {containerQuery, nodeQuery, resources, containerLabel}, resources a ResourceMapping. Every
// field is required here, and the mapping must name a label for each of namespace, pod and node
// (pods are asked per namespace; nodes by name). Returns the problems found.
const isMap = (v) => typeof v === "object" && v !== null && !Array.isArray(v);
function resourceRulesProblems(rr) {
  const problems = [];
  const mapping = (v, keys, where) => {
    if (!isMap(v)) {
      problems.push(`${where} is not a mapping`);
      return false;
    }
    for (const k of Object.keys(v)) if (!keys.includes(k)) problems.push(`${where}: unknown key ${k}`);
    return true;
  };
  if (!mapping(rr, ["cpu", "memory", "window"], "resourceRules")) return problems;
  for (const name of ["cpu", "memory"]) {
    const rule = rr[name];
    const where = `resourceRules.${name}`;
    if (!mapping(rule, ["containerQuery", "nodeQuery", "resources", "containerLabel"], where)) continue;
    for (const q of ["containerQuery", "nodeQuery"])
      if (typeof rule[q] !== "string" || !rule[q].includes("<<.LabelMatchers>>") || !rule[q].includes("<<.GroupBy>>"))
        problems.push(`${where}.${q}: not a query template with <<.LabelMatchers>> and <<.GroupBy>>`);
    if (typeof rule.containerLabel !== "string" || !/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(rule.containerLabel))
      problems.push(`${where}.containerLabel: not a label name: ${rule.containerLabel}`);
    if (!mapping(rule.resources, ["template", "overrides", "namespaced"], `${where}.resources`)) continue;
    const overrides = rule.resources.overrides ?? {};
    if (!isMap(overrides)) problems.push(`${where}.resources.overrides is not a mapping`);
    const mapped = new Set();
    for (const [label, o] of Object.entries(isMap(overrides) ? overrides : {}))
      if (mapping(o, ["group", "resource"], `${where}.resources.overrides.${label}`) && typeof o.resource === "string")
        mapped.add(o.resource.replace(/s$/, ""));  // pods = pod, as the RESTMapper normalises
    if (typeof rule.resources.template !== "string")
      for (const r of ["namespace", "pod", "node"])
        if (!mapped.has(r)) problems.push(`${where}.resources: no label for ${r}`);
  }
  // A Prometheus duration (model.Duration), as prometheus-adapter parses it.
  if (typeof rr.window !== "string" || !/^([0-9]+(ms|s|m|h|d|w|y))+$/.test(rr.window))
    problems.push(`resourceRules.window: not a Prometheus duration: ${rr.window}`);
  return problems;
}
// What a ServiceAccount may do through ClusterRoleBindings, as "group/resource:verb" strings.
function clusterGrants(objects, namespace, name) {
  const grants = new Set();
  for (const b of all(objects, "ClusterRoleBinding")) {
    if (!b.subjects?.some((s) => s.kind === "ServiceAccount" && s.name === name && s.namespace === namespace)) continue;
    for (const r of find(objects, "ClusterRole", b.roleRef.name)?.rules ?? [])
      for (const g of r.apiGroups ?? [])
        for (const res of r.resources ?? []) for (const v of r.verbs) grants.add(`${g}/${res}:${v}`);
  }
  return grants;
}
const adapterGrants = (objects) =>
  clusterGrants(objects, adapter(objects).metadata.namespace, adapter(objects).spec.template.spec.serviceAccountName);
const resourceMetricsApiServices = (objects) =>
  all(objects, "APIService").filter((a) => a.spec.group === "metrics.k8s.io" || a.metadata.name === "v1beta1.metrics.k8s.io");

// base: a locked-down adapter behind three APIServices.
const base = await render("base");
const deployment = adapter(base);
const pod = deployment.spec.template.spec;
const container = pod.containers[0];
const baseUrl = prometheusUrl(base);
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
// Resource metrics are opt-in (components/resource-metrics): registering v1beta1.metrics.k8s.io
// displaces metrics-server, and without the APIService the adapter has no use for resourceRules.
check("base: does not register metrics.k8s.io", resourceMetricsApiServices(base).length === 0);
const baseRules = parseRules(rulesFile(base));
check("base: the rules file parses", baseRules.errors.length === 0, baseRules.errors.join("; "));
check("base: the rules file has no resourceRules", !("resourceRules" in baseRules.config));
check("base: v1beta2 preferred",
  find(base, "APIService", "v1beta2.custom.metrics.k8s.io").spec.versionPriority >
  find(base, "APIService", "v1beta1.custom.metrics.k8s.io").spec.versionPriority);
// The priority class is opt-in (components/priority-class): some clusters refuse it here.
check("base: no priorityClassName", pod.priorityClassName === undefined, pod.priorityClassName);
// The URL is one env entry, so an overlay patches it without restating the arguments.
check("base: --prometheus-url comes from env PROMETHEUS_URL",
  container.args.includes("--prometheus-url=$(PROMETHEUS_URL)") &&
  container.env?.some((e) => e.name === "PROMETHEUS_URL" && /^https?:\/\//.test(e.value ?? "")));
check("base: Prometheus URL", baseUrl === "http://prometheus-operated.monitoring.svc:9090", baseUrl);
// An undefined $(VAR) stays literal in the pod, so every reference must have its env entry.
const argRefs = container.args.flatMap((a) => [...a.matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)].map((m) => m[1]));
check("base: every $(VAR) in args is defined in env",
  argRefs.every((name) => container.env?.some((e) => e.name === name)), argRefs.join(","));

// cert-manager: verified TLS between kube-aggregator and the adapter.
const cm = await render("overlays/cert-manager");
for (const a of all(cm, "APIService")) {
  check(`cert-manager: ${a.metadata.name} verifies TLS`, a.spec.insecureSkipTLSVerify === undefined);
  check(`cert-manager: ${a.metadata.name} gets its caBundle from cainjector`,
    a.metadata.annotations?.["cert-manager.io/inject-ca-from"] === "gpu-metrics/gpu-metrics-adapter-serving");
}
const cmContainer = adapterContainer(cm);
check("cert-manager: serves the issued certificate",
  cmContainer.args.includes("--tls-cert-file=/var/run/serving-cert/tls.crt") &&
  cmContainer.args.includes("--tls-private-key-file=/var/run/serving-cert/tls.key"));
check("cert-manager: keeps the rules file", cmContainer.args.includes("--config=/etc/adapter/config.yaml"));
// Only the TLS flags are added: every base argument is kept as it is, none is restated.
check("cert-manager: keeps every base argument and adds only the TLS flags",
  JSON.stringify(cmContainer.args) === JSON.stringify([...container.args,
    "--tls-cert-file=/var/run/serving-cert/tls.crt", "--tls-private-key-file=/var/run/serving-cert/tls.key"]),
  JSON.stringify(cmContainer.args));
check("cert-manager: keeps the base's Prometheus URL", prometheusUrl(cm) === baseUrl, prometheusUrl(cm));
const serving = find(cm, "Certificate", "gpu-metrics-adapter-serving");
check("cert-manager: certificate names the Service",
  serving.spec.dnsNames.includes("gpu-metrics-adapter.gpu-metrics.svc"));
const cmVolume = adapter(cm).spec.template.spec.volumes.find((v) => v.name === "serving-cert");
check("cert-manager: secret volume replaces the emptyDir", !!cmVolume?.secret && !cmVolume.emptyDir);

// custom metrics only, beside KEDA.
const customOnly = await render("overlays/custom-metrics-only");
check("custom-metrics-only: no external APIService",
  all(customOnly, "APIService").every((a) => a.spec.group === "custom.metrics.k8s.io") &&
  all(customOnly, "APIService").length === 2);

// Other backends: managed Prometheus with a cloud's workload identity (the base plus the identity
// binding, the cloud's query URL and the flag that signs or authenticates requests), Mimir (the
// tenant header) and Thanos (partial responses denied); nothing else changes.
// Each row: target, the flags added to the base's, the ServiceAccount annotation, the pod label,
// the URL's form.
const backendOverlays = [
  // Google's API refuses parameters it does not know: Thanos' partial_response is not sent.
  ["overlays/gke-managed-prometheus", ["--prometheus-auth-provider=gcp", "--prometheus-partial-response=none"],
    "iam.gke.io/gcp-service-account",
    undefined, /^https:\/\/monitoring\.googleapis\.com\/v1\/projects\/[^/]+\/location\/global\/prometheus$/],
  ["overlays/azure-monitor", ["--prometheus-auth-provider=azure"], "azure.workload.identity/client-id",
    "azure.workload.identity/use", /^https:\/\/[^/]+\.prometheus\.monitor\.azure\.com$/],
  // AMP: the workspace's base URL (the adapter appends /api/v1/...), SigV4 with IRSA.
  ["overlays/amazon-managed-prometheus", ["--prometheus-sigv4-region=us-east-1"], "eks.amazonaws.com/role-arn",
    undefined, /^https:\/\/aps-workspaces\.[a-z0-9-]+\.amazonaws\.com\/workspaces\/ws-[A-Za-z0-9-]+$/],
  // Mimir's Prometheus API is under /prometheus on the query-frontend.
  ["overlays/mimir", ["--prometheus-header=X-Scope-OrgID=TENANT"], undefined, undefined,
    /^http:\/\/mimir-query-frontend\.mimir\.svc:8080\/prometheus$/],
  ["overlays/thanos", ["--prometheus-partial-response=deny"], undefined, undefined,
    /^http:\/\/thanos-query-frontend\.thanos\.svc:9090$/],
];
const backendRendered = [];
const flagName = (arg) => arg.split("=")[0];
for (const [target, flags, saAnnotation, podLabel, urlForm] of backendOverlays) {
  const objects = await render(target);
  backendRendered.push([target, objects]);
  const c = adapterContainer(objects);
  const sa = find(objects, "ServiceAccount", "gpu-metrics-adapter");
  if (saAnnotation)
    check(`${target}: ServiceAccount annotated ${saAnnotation}`, !!sa?.metadata.annotations?.[saAnnotation]);
  else
    check(`${target}: ServiceAccount not annotated`, !!sa && sa.metadata.annotations === undefined,
      JSON.stringify(sa?.metadata.annotations));
  if (podLabel) {
    check(`${target}: pod labelled ${podLabel}: "true"`,
      adapter(objects).spec.template.metadata.labels?.[podLabel] === "true");
    check(`${target}: the label stays out of the selector`,
      adapter(objects).spec.selector.matchLabels[podLabel] === undefined);
  }
  check(`${target}: the backend's query URL`, urlForm.test(prometheusUrl(objects)), prometheusUrl(objects));
  check(`${target}: the base's arguments plus ${flags.join(" ")}`,
    JSON.stringify(c.args) === JSON.stringify([...container.args, ...flags]), JSON.stringify(c.args));
  const names = c.args.map(flagName).filter((n) => n !== "--prometheus-header");  // repeatable
  check(`${target}: no flag given twice`, new Set(names).size === names.length, JSON.stringify(c.args));
  check(`${target}: a single PROMETHEUS_URL`, c.env.filter((e) => e.name === "PROMETHEUS_URL").length === 1);
}
// AMP: the ServiceAccount names an IAM role; the signing region is the workspace's; the service
// name is the default (aps); SigV4 is the only source of credentials.
const amp = backendRendered.find(([t]) => t === "overlays/amazon-managed-prometheus")[1];
const ampArgs = adapterContainer(amp).args;
check("overlays/amazon-managed-prometheus: eks.amazonaws.com/role-arn is an IAM role ARN",
  /^arn:aws:iam::[0-9]{12}:role\/[\w+=,.@\/-]+$/.test(
    find(amp, "ServiceAccount", "gpu-metrics-adapter").metadata.annotations["eks.amazonaws.com/role-arn"]));
const ampRegion = ampArgs.find((a) => a.startsWith("--prometheus-sigv4-region="))?.split("=")[1];
check("overlays/amazon-managed-prometheus: --prometheus-sigv4-region is the workspace URL's region",
  new URL(prometheusUrl(amp)).hostname === `aps-workspaces.${ampRegion}.amazonaws.com`,
  `${ampRegion} ${prometheusUrl(amp)}`);
check("overlays/amazon-managed-prometheus: the default SigV4 service (aps), no other credentials",
  !ampArgs.some((a) => ["--prometheus-sigv4-service", "--prometheus-auth-provider", "--prometheus-token-file",
    "--prometheus-auth-config", "--prometheus-auth-incluster", "--prometheus-header"].includes(flagName(a))),
  JSON.stringify(ampArgs));
// Mimir: exactly one tenant header, with a tenant; no other credentials. Thanos: deny.
const mimirArgs = adapterContainer(backendRendered.find(([t]) => t === "overlays/mimir")[1]).args;
const tenants = mimirArgs.filter((a) => a.toLowerCase().startsWith("--prometheus-header=x-scope-orgid="));
check("overlays/mimir: one X-Scope-OrgID header, not empty",
  tenants.length === 1 && tenants[0].length > "--prometheus-header=X-Scope-OrgID=".length, JSON.stringify(tenants));
const thanosArgs = adapterContainer(backendRendered.find(([t]) => t === "overlays/thanos")[1]).args;
check("overlays/thanos: --prometheus-partial-response=deny, once",
  thanosArgs.filter((a) => flagName(a) === "--prometheus-partial-response").join() ===
    "--prometheus-partial-response=deny", JSON.stringify(thanosArgs));

// A user's overlay (examples/user-overlay): their image and their Prometheus URL.
const userDir = path.join(root, "examples/user-overlay");
const userPatch = fs.readFileSync(path.join(userDir, "prometheus-url.yaml"), "utf8");
const userUrl = parseYaml(userPatch)[0].spec.template.spec.containers[0].env
  .find((e) => e.name === "PROMETHEUS_URL").value;
const userImages = parseYaml(fs.readFileSync(path.join(userDir, "kustomization.yaml"), "utf8"))[0].images;
const userImage = `${userImages[0].newName}:${userImages[0].newTag}`;
const user = await render("examples/user-overlay");
check("user-overlay: the example changes the URL", userUrl !== baseUrl, userUrl);
check("user-overlay: runs the user's Prometheus URL", prometheusUrl(user) === userUrl, prometheusUrl(user));
check("user-overlay: runs the user's image", adapterContainer(user).image === userImage, adapterContainer(user).image);
check("user-overlay: keeps every base argument",
  JSON.stringify(adapterContainer(user).args) === JSON.stringify(container.args));
check("user-overlay: the env patch leaves a single PROMETHEUS_URL",
  adapterContainer(user).env.filter((e) => e.name === "PROMETHEUS_URL").length === 1);

// The same user's overlay on top of overlays/cert-manager: their URL survives the TLS patch.
const userOnCm = await renderOverlay("user-overlay on cert-manager", `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- \${M}/overlays/cert-manager
patches:
- path: prometheus-url.yaml
`, { "prometheus-url.yaml": userPatch });
check("user-overlay on cert-manager: keeps the user's Prometheus URL", prometheusUrl(userOnCm) === userUrl,
  prometheusUrl(userOnCm));
check("user-overlay on cert-manager: serves the issued certificate",
  adapterContainer(userOnCm).args.includes("--tls-cert-file=/var/run/serving-cert/tls.crt"));

// components/priority-class: opt-in system-cluster-critical, with the quota that admits it.
const prio = await renderOverlay("components/priority-class", withComponents("base", ["components/priority-class"]));
check("components/priority-class: system-cluster-critical",
  adapter(prio).spec.template.spec.priorityClassName === "system-cluster-critical");
check("components/priority-class: a ResourceQuota in gpu-metrics admits the class",
  all(prio, "ResourceQuota").some((q) => q.metadata.namespace === "gpu-metrics" &&
    q.spec.scopeSelector?.matchExpressions?.some((e) => e.scopeName === "PriorityClass" &&
      e.operator === "In" && e.values.includes("system-cluster-critical"))));
check("components/priority-class: keeps the base's Prometheus URL", prometheusUrl(prio) === baseUrl);

// components/servicemonitor: Prometheus scrapes the adapter's /metrics over HTTPS with a token.
const smObjects = await renderOverlay("components/servicemonitor", withComponents("base", ["components/servicemonitor"]));
const sm = find(smObjects, "ServiceMonitor", "gpu-metrics-adapter");
const service = find(smObjects, "Service", "gpu-metrics-adapter");
const endpoint = sm?.spec.endpoints[0];
check("components/servicemonitor: a ServiceMonitor in gpu-metrics", sm?.metadata.namespace === "gpu-metrics");
check("components/servicemonitor: scheme https on /metrics",
  endpoint?.scheme === "https" && endpoint?.path === "/metrics", JSON.stringify(endpoint));
check("components/servicemonitor: scrapes a port the Service has",
  service.spec.ports.some((p) => p.name === endpoint?.port));
check("components/servicemonitor: selects the adapter's Service",
  Object.entries(sm?.spec.selector.matchLabels ?? {}).every(([k, v]) => service.metadata.labels?.[k] === v) &&
  Object.keys(sm?.spec.selector.matchLabels ?? {}).length > 0);
check("components/servicemonitor: sends a bearer token",
  !!endpoint?.bearerTokenFile || !!endpoint?.authorization?.credentials);
check("components/servicemonitor: TLS is configured",
  endpoint?.tlsConfig?.insecureSkipVerify === true || !!endpoint?.tlsConfig?.ca);
const scraperBinding = all(smObjects, "ClusterRoleBinding").find((b) => b.roleRef.name === "gpu-metrics-adapter:metrics-scraper");
check("components/servicemonitor: binds gpu-metrics-adapter:metrics-scraper to kube-prometheus' Prometheus",
  !!find(smObjects, "ClusterRole", "gpu-metrics-adapter:metrics-scraper") &&
  scraperBinding?.subjects?.some((s) => s.kind === "ServiceAccount" && s.name === "prometheus-k8s" && s.namespace === "monitoring"));
check("components/servicemonitor: Prometheus may discover endpoints in gpu-metrics",
  all(smObjects, "RoleBinding").some((b) => b.metadata.namespace === "gpu-metrics" &&
    b.subjects?.some((s) => s.name === "prometheus-k8s") &&
    find(smObjects, "Role", b.roleRef.name)?.rules.some((r) => r.resources.includes("endpoints"))));

// components/explain-hpa: get, and only get, on HPAs and the scale subresources of the workloads
// they scale, for the adapter's ServiceAccount.
const ex = await renderOverlay("components/explain-hpa", withComponents("base", ["components/explain-hpa"]));
const exRole = find(ex, "ClusterRole", "gpu-metrics-adapter:explain-hpa");
const exGrants = (exRole?.rules ?? []).flatMap((r) => r.apiGroups.flatMap((g) =>
  r.resources.map((res) => `${g}/${res}:${[...r.verbs].sort().join(",")}`))).sort();
check("components/explain-hpa: get on HPAs and the workloads' scale subresources only",
  JSON.stringify(exGrants) === JSON.stringify(["apps/deployments/scale:get", "apps/replicasets/scale:get",
    "apps/statefulsets/scale:get", "autoscaling/horizontalpodautoscalers:get"]), JSON.stringify(exGrants));
check("components/explain-hpa: bound to the adapter's ServiceAccount",
  all(ex, "ClusterRoleBinding").some((b) => b.roleRef.name === "gpu-metrics-adapter:explain-hpa" &&
    b.subjects?.some((s) => s.kind === "ServiceAccount" && s.name === "gpu-metrics-adapter" &&
      s.namespace === "gpu-metrics")));
check("components/explain-hpa: keeps the base's Prometheus URL", prometheusUrl(ex) === baseUrl);

// components/kube-prometheus: kube-prometheus' NetworkPolicy admits the adapter to Prometheus.
const kp = await renderOverlay("components/kube-prometheus", withComponents("base", ["components/kube-prometheus"]));
const adapterPodLabels = adapter(kp).spec.template.metadata.labels;
check("components/kube-prometheus: admits the adapter's pods to Prometheus :9090",
  all(kp, "NetworkPolicy").some((p) => p.metadata.namespace === "monitoring" &&
    p.spec.ingress.some((i) => i.ports.some((port) => port.port === 9090) &&
      i.from.some((f) => f.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "gpu-metrics" &&
        Object.entries(f.podSelector?.matchLabels ?? {}).every(([k, v]) => adapterPodLabels[k] === v)))));

// components/resource-metrics: metrics.k8s.io/v1beta1 (kubectl top, cpu and memory HPAs) from
// kube-prometheus' resourceRules, for clusters that use the adapter instead of metrics-server.
const rm = await renderOverlay("components/resource-metrics", withComponents("base", ["components/resource-metrics"]));
const rmApis = resourceMetricsApiServices(rm);
const rmApi = rmApis[0];
check("components/resource-metrics: exactly one APIService for metrics.k8s.io, v1beta1.metrics.k8s.io",
  rmApis.length === 1 && rmApi.metadata.name === "v1beta1.metrics.k8s.io" &&
  rmApi.spec.group === "metrics.k8s.io" && rmApi.spec.version === "v1beta1", rmApis.map((a) => a.metadata.name).join(","));
const rmService = find(rm, "Service", rmApi?.spec.service?.name);
check("components/resource-metrics: the APIService points at the adapter's Service and port",
  rmService?.metadata.namespace === rmApi?.spec.service.namespace &&
  rmService?.spec.ports.some((p) => p.port === (rmApi.spec.service.port ?? 443)) &&
  Object.entries(rmService?.spec.selector ?? {}).every(([k, v]) => adapter(rm).spec.template.metadata.labels[k] === v),
  JSON.stringify(rmApi?.spec.service));
check("components/resource-metrics: groupPriorityMinimum 100, versionPriority 100",
  rmApi?.spec.groupPriorityMinimum === 100 && rmApi?.spec.versionPriority === 100);
// The same TLS handling as the base's APIServices: insecureSkipTLSVerify, no caBundle.
const rmCustomApi = find(rm, "APIService", "v1beta1.custom.metrics.k8s.io");
check("components/resource-metrics: TLS handled as the base's APIServices",
  rmApi?.spec.insecureSkipTLSVerify === rmCustomApi.spec.insecureSkipTLSVerify &&
  rmApi?.spec.caBundle === rmCustomApi.spec.caBundle &&
  isDeepStrictEqual(rmApi?.metadata.annotations, rmCustomApi.metadata.annotations));
check("components/resource-metrics: keeps the base's APIServices",
  isDeepStrictEqual(all(rm, "APIService").filter((a) => a !== rmApi).map((a) => a.metadata.name).sort(), apiServices));
const aggregated = find(rm, "ClusterRole", "system:aggregated-metrics-reader");
check("components/resource-metrics: system:aggregated-metrics-reader aggregates into view, edit and admin",
  ["view", "edit", "admin"].every((r) => aggregated?.metadata.labels?.[`rbac.authorization.k8s.io/aggregate-to-${r}`] === "true"),
  JSON.stringify(aggregated?.metadata.labels));
const aggregatedGrants = (aggregated?.rules ?? []).flatMap((r) => r.apiGroups.flatMap((g) =>
  r.resources.map((res) => `${g}/${res}:${[...r.verbs].sort().join(",")}`))).sort();
check("components/resource-metrics: system:aggregated-metrics-reader reads metrics.k8s.io pods and nodes only",
  isDeepStrictEqual(aggregatedGrants, ["metrics.k8s.io/nodes:get,list,watch", "metrics.k8s.io/pods:get,list,watch"]),
  JSON.stringify(aggregatedGrants));
const rmGrants = adapterGrants(rm);
check("components/resource-metrics: the adapter's ServiceAccount may get, list and watch nodes",
  ["get", "list", "watch"].every((v) => rmGrants.has(`/nodes:${v}`)), [...rmGrants].join(","));
check("components/resource-metrics: and still list and watch pods",
  ["list", "watch"].every((v) => rmGrants.has(`/pods:${v}`)));
// The rules file: the same ConfigMap, key and stable name as the base's, now with resourceRules.
const rmRulesText = rulesFile(rm);
const rmRules = parseRules(rmRulesText);
check("components/resource-metrics: the pods mount the rules ConfigMap under its stable name",
  adapter(rm).spec.template.spec.volumes.find((v) => v.name === "rules")?.configMap?.name === "gpu-metrics-adapter-rules" &&
  all(rm, "ConfigMap").length === 1);
check("components/resource-metrics: the rules file is one YAML document, no key repeated",
  rmRules.errors.length === 0, rmRules.errors.join("; "));
check("components/resource-metrics: the rules file's keys are rules, externalRules and resourceRules",
  isDeepStrictEqual(Object.keys(rmRules.config).sort(), ["externalRules", "resourceRules", "rules"]),
  Object.keys(rmRules.config).join(","));
const rrProblems = resourceRulesProblems(rmRules.config.resourceRules);
check("components/resource-metrics: resourceRules in the adapter's schema (cpu and memory: containerQuery, " +
  "nodeQuery, resources, containerLabel; window)", rrProblems.length === 0, rrProblems.join("; "));
const rr = rmRules.config.resourceRules ?? {};
check("components/resource-metrics: kube-prometheus' queries (cAdvisor and node-exporter series)",
  rr.cpu?.containerQuery?.includes("container_cpu_usage_seconds_total") &&
  rr.cpu?.nodeQuery?.includes("node_cpu_seconds_total") &&
  rr.memory?.containerQuery?.includes("container_memory_working_set_bytes") &&
  rr.memory?.nodeQuery?.includes("node_memory_MemAvailable_bytes") && rr.window === "5m");
check("components/resource-metrics: keeps the base's GPU rules and external rules",
  isDeepStrictEqual(rmRules.config.rules, baseRules.config.rules) &&
  isDeepStrictEqual(rmRules.config.externalRules, baseRules.config.externalRules));
// rules.yaml copies manifests/base/gpu-rules.yaml (one --config file holds everything): the copy
// must stay verbatim, comments included, from the base's `rules:` line on.
const baseRulesText = fs.readFileSync(path.join(root, "base/gpu-rules.yaml"), "utf8");
check("components/resource-metrics: rules.yaml holds manifests/base/gpu-rules.yaml verbatim from `rules:` on",
  (rmRulesText ?? "").includes(baseRulesText.slice(baseRulesText.search(/^rules:/m))));
check("components/resource-metrics: keeps every base argument",
  isDeepStrictEqual(adapterContainer(rm).args, container.args), JSON.stringify(adapterContainer(rm).args));
check("components/resource-metrics: keeps the base's Prometheus URL", prometheusUrl(rm) === baseUrl);

// With overlays/cert-manager: the component's APIService comes after that overlay's patch, so the
// user's overlay patches it the same way (the README's patch, verbatim).
const resourceMetricsCertManagerPatch = `patches:
- target: {group: apiregistration.k8s.io, kind: APIService, name: v1beta1.metrics.k8s.io}
  patch: |-
    - op: remove
      path: /spec/insecureSkipTLSVerify
    - op: add
      path: /metadata/annotations
      value:
        cert-manager.io/inject-ca-from: gpu-metrics/gpu-metrics-adapter-serving
`;
const rmCm = await renderOverlay("components/resource-metrics on cert-manager",
  withComponents("overlays/cert-manager", ["components/resource-metrics"], resourceMetricsCertManagerPatch));
check("components/resource-metrics on cert-manager: four APIServices, v1beta1.metrics.k8s.io one of them",
  all(rmCm, "APIService").length === 4 && resourceMetricsApiServices(rmCm).length === 1);
for (const a of all(rmCm, "APIService"))
  check(`components/resource-metrics on cert-manager: ${a.metadata.name} verifies TLS with the CA from cainjector`,
    a.spec.insecureSkipTLSVerify === undefined &&
    a.metadata.annotations?.["cert-manager.io/inject-ca-from"] === "gpu-metrics/gpu-metrics-adapter-serving");
// Beside KEDA: custom metrics and resource metrics, no external metrics.
const rmCustomOnly = await renderOverlay("components/resource-metrics on custom-metrics-only",
  withComponents("overlays/custom-metrics-only", ["components/resource-metrics"]));
check("components/resource-metrics on custom-metrics-only: custom.metrics.k8s.io and metrics.k8s.io only",
  isDeepStrictEqual(all(rmCustomOnly, "APIService").map((a) => a.metadata.name).sort(),
    ["v1beta1.custom.metrics.k8s.io", "v1beta1.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"]));
// A kube-prometheus user replacing prometheus-adapter: both components, their Prometheus URL.
const kpRm = await renderOverlay("components/kube-prometheus with components/resource-metrics",
  withComponents("base", ["components/kube-prometheus", "components/resource-metrics"], `patches:
- path: prometheus-url.yaml
`), { "prometheus-url.yaml": userPatch });
check("components/kube-prometheus with components/resource-metrics: the NetworkPolicy, the APIService and resourceRules",
  all(kpRm, "NetworkPolicy").length === 1 && resourceMetricsApiServices(kpRm).length === 1 &&
  resourceRulesProblems(parseRules(rulesFile(kpRm)).config.resourceRules).length === 0);
check("components/kube-prometheus with components/resource-metrics: the user's Prometheus URL",
  prometheusUrl(kpRm) === userUrl, prometheusUrl(kpRm));

// Everything at once, as the README's user overlay does: cert-manager, every component, the
// user's URL, and the ServiceMonitor verifying the cert-manager CA.
const stack = await renderOverlay("full stack", withComponents("overlays/cert-manager",
  ["components/priority-class", "components/servicemonitor", "components/kube-prometheus",
   "components/explain-hpa"], `patches:
- path: prometheus-url.yaml
- target: {group: monitoring.coreos.com, kind: ServiceMonitor, name: gpu-metrics-adapter}
  patch: |-
    - op: replace
      path: /spec/endpoints/0/tlsConfig
      value:
        ca: {secret: {name: gpu-metrics-adapter-serving, key: ca.crt}}
        serverName: gpu-metrics-adapter.gpu-metrics.svc
configMapGenerator:
- name: gpu-metrics-adapter-rules
  namespace: gpu-metrics
  behavior: replace
  files: [config.yaml=my-rules.yaml]
`), { "prometheus-url.yaml": userPatch, "my-rules.yaml": "rules: []\nexternalRules: []\n" });
check("full stack: user's Prometheus URL", prometheusUrl(stack) === userUrl, prometheusUrl(stack));
const stackRulesVolume = adapter(stack).spec.template.spec.volumes.find((v) => v.name === "rules");
check("full stack: the user's rules file, in the ConfigMap the pods mount",
  find(stack, "ConfigMap", stackRulesVolume.configMap.name)?.data?.["config.yaml"] === "rules: []\nexternalRules: []\n");
check("full stack: priority class", adapter(stack).spec.template.spec.priorityClassName === "system-cluster-critical");
check("full stack: issued certificate", adapterContainer(stack).args.includes("--tls-cert-file=/var/run/serving-cert/tls.crt"));
const stackSm = find(stack, "ServiceMonitor", "gpu-metrics-adapter").spec.endpoints[0].tlsConfig;
check("full stack: ServiceMonitor verifies the serving certificate's CA",
  stackSm.ca?.secret?.name === "gpu-metrics-adapter-serving" && stackSm.insecureSkipVerify === undefined &&
  find(stack, "Certificate", "gpu-metrics-adapter-serving").spec.dnsNames.includes(stackSm.serverName));

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
for (const h of hpas) {
  const t = h.spec.scaleTargetRef;
  check(`examples: HPA ${h.metadata.name} targets a Deployment of the examples in its namespace`,
    t.kind === "Deployment" && examples.some((o) => o.kind === "Deployment" &&
      o.metadata.name === t.name && o.metadata.namespace === h.metadata.namespace));
}
check("examples: Pods HPA on gpu_utilization averageValue 80", hpas.some((h) =>
  metricTargets(h, "Pods").some((p) => p.metric.name === "gpu_utilization" && String(p.target.averageValue) === "80")));
const vllmHpa = find(hpas, "HorizontalPodAutoscaler", "vllm");
check("examples: vLLM HPA in llm on Deployment vllm",
  vllmHpa?.metadata.namespace === "llm" && vllmHpa?.spec.scaleTargetRef.name === "vllm");
check("examples: vLLM HPA on queue depth (Pods vllm_num_requests_waiting)",
  !!vllmHpa && metricTargets(vllmHpa, "Pods").some((p) => p.metric.name === "vllm_num_requests_waiting" &&
    p.target.type === "AverageValue"));
check("examples: vLLM HPA on KV cache (0-1, averageValue 800m)",
  !!vllmHpa && metricTargets(vllmHpa, "Pods").some((p) => p.metric.name === "vllm_kv_cache_usage" &&
    String(p.target.averageValue) === "800m"));
const vllm = find(examples, "Deployment", "vllm");
const vllmContainer = vllm?.spec.template.spec.containers[0];
check("examples: vLLM runs vllm/vllm-openai on a GPU with port 8000 named http",
  vllmContainer?.image.startsWith("vllm/vllm-openai:") &&
  vllmContainer?.resources?.limits?.["nvidia.com/gpu"] !== undefined &&
  vllmContainer?.ports.some((p) => p.name === "http" && p.containerPort === 8000));
// The PodMonitor is what gives vLLM's series their namespace/pod labels.
const podMonitor = all(examples, "PodMonitor").find((p) => p.metadata.namespace === "llm");
check("examples: a PodMonitor scrapes the vLLM pods' http port",
  !!podMonitor && Object.entries(podMonitor.spec.selector.matchLabels).every(([k, v]) =>
    vllm.spec.template.metadata.labels[k] === v) &&
  podMonitor.spec.podMetricsEndpoints.some((e) => e.port === "http" && (e.path ?? "/metrics") === "/metrics"));
check("examples: ServiceMonitor honours labels",
  all(examples, "ServiceMonitor").every((s) => s.spec.endpoints.every((e) => e.honorLabels === true)));
const dcgm = find(examples, "DaemonSet", "dcgm-exporter").spec.template.spec.containers[0];
check("examples: dcgm-exporter in Kubernetes mode with NODE_NAME",
  dcgm.env.some((e) => e.name === "DCGM_EXPORTER_KUBERNETES" && e.value === "true") &&
  dcgm.env.some((e) => e.name === "NODE_NAME" && e.valueFrom?.fieldRef?.fieldPath === "spec.nodeName"));
check("examples: dcgm-exporter's series get a gpu_type label for HPA selectors",
  find(examples, "ServiceMonitor", "dcgm-exporter").spec.endpoints.some((e) =>
    e.metricRelabelings?.some((r) => r.targetLabel === "gpu_type")));

// examples/alternatives: not in the kustomization; each replaces an HPA of the examples (same
// name, namespace and target), so applying one never puts a second HPA on a Deployment.
const altDir = path.join(root, "examples/alternatives");
const altFiles = fs.readdirSync(altDir).filter((f) => f.endsWith(".yaml"));
check("examples/alternatives: has files", altFiles.length > 0);
const alternatives = [];
for (const f of altFiles)
  alternatives.push(...await validate(`examples/alternatives/${f}`, parseYaml(fs.readFileSync(path.join(altDir, f), "utf8"))));
for (const h of all(alternatives, "HorizontalPodAutoscaler")) {
  const replaced = hpas.find((e) => e.metadata.name === h.metadata.name && e.metadata.namespace === h.metadata.namespace);
  check(`examples/alternatives: HPA ${h.metadata.name} replaces the examples' HPA of that name and target`,
    !!replaced && targetKey(replaced) === targetKey(h));
}
check("examples/alternatives: External HPA on gpu.utilization with a gpu-type selector, 80 per pod",
  all(alternatives, "HorizontalPodAutoscaler").some((h) => metricTargets(h, "External").some((e) =>
    e.metric.name === "gpu.utilization" && !!e.metric.selector?.matchLabels?.["gpu-type"] &&
    e.target.type === "AverageValue" && String(e.target.averageValue) === "80")));

// observability: the Grafana dashboard as a ConfigMap the Grafana sidecar loads, and the alert
// rules as a PrometheusRule (tests/e2e/observability_test.py runs their queries).
const obs = await render("observability");
const dashboardFile = fs.readFileSync(path.join(root, "observability/gpu-metrics-adapter-dashboard.json"), "utf8");
const dashboards = all(obs, "ConfigMap").filter((c) => c.metadata.labels?.grafana_dashboard === "1");
check("observability: one ConfigMap labelled grafana_dashboard: \"1\"", dashboards.length === 1,
  `${dashboards.length}`);
const dashboardCm = dashboards[0];
check("observability: the dashboard ConfigMap has a stable name (no hash suffix)",
  dashboardCm?.metadata.name === "gpu-metrics-adapter-dashboard", dashboardCm?.metadata.name);
const dashboardKeys = Object.keys(dashboardCm?.data ?? {});
check("observability: the ConfigMap holds one .json file", dashboardKeys.length === 1 &&
  dashboardKeys[0].endsWith(".json"), dashboardKeys.join(","));
const dashboardText = dashboardCm?.data?.[dashboardKeys[0]] ?? "";
check("observability: the ConfigMap holds the dashboard file as it is", dashboardText === dashboardFile);
let dashboard = null;
try {
  dashboard = JSON.parse(dashboardText);
} catch (e) {
  check("observability: the dashboard is JSON", false, e.message);
}
if (dashboard) {
  const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
  const queryPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== "row");
  check("observability: the dashboard has a stable uid", dashboard.uid === "gpu-metrics-adapter", dashboard.uid);
  check("observability: variables datasource, namespace and hpa",
    vars.datasource?.type === "datasource" && vars.datasource?.query === "prometheus" &&
    vars.namespace?.type === "query" && vars.hpa?.type === "query");
  check("observability: every panel queries Prometheus through ${datasource}", queryPanels.length > 0 &&
    queryPanels.every((p) => p.datasource?.uid === "${datasource}" && p.targets?.length > 0 &&
      p.targets.every((t) => t.datasource?.uid === "${datasource}" && t.expr?.trim())));
}
// Client-side apply keeps the object in the last-applied annotation, limited to 256 KiB.
check("observability: the dashboard ConfigMap fits kubectl apply", JSON.stringify(dashboardCm ?? {}).length < 256 * 1024);
const promRules = all(obs, "PrometheusRule");
check("observability: one PrometheusRule", promRules.length === 1, `${promRules.length}`);
const alertRules = (promRules[0]?.spec.groups ?? []).flatMap((g) => g.rules);
check("observability: the PrometheusRule has alerts", alertRules.length > 0 && alertRules.every((r) => r.alert));
const alertNames = alertRules.map((r) => r.alert);
check("observability: alert names are unique", new Set(alertNames).size === alertNames.length, alertNames.join(","));
for (const r of alertRules) {
  check(`observability: ${r.alert} has for:, a severity, a summary and a description`,
    /^[0-9]+[smh]$/.test(r.for ?? "") && ["critical", "warning"].includes(r.labels?.severity) &&
    !!r.annotations?.summary && !!r.annotations?.description);
  check(`observability: ${r.alert} links to its runbook in the README`,
    r.annotations?.runbook_url === `https://github.com/gpu-metrics-adapter/gpu-metrics-adapter#alert-${r.alert.toLowerCase()}`,
    r.annotations?.runbook_url);
}

// One HPA per target, in everything rendered.
const deployable = [["base", base], ["overlays/cert-manager", cm], ["overlays/custom-metrics-only", customOnly],
  ["examples/user-overlay", user], ["user-overlay on cert-manager", userOnCm],
  ["components/priority-class", prio], ["components/servicemonitor", smObjects],
  ["components/kube-prometheus", kp], ["full stack", stack]];
deployable.push(...backendRendered);
// Only components/resource-metrics registers metrics.k8s.io or ships metrics-server's ClusterRole.
for (const [target, objects] of deployable)
  check(`${target}: no resource metrics (metrics.k8s.io, system:aggregated-metrics-reader)`,
    resourceMetricsApiServices(objects).length === 0 && !find(objects, "ClusterRole", "system:aggregated-metrics-reader"));
deployable.push(["components/resource-metrics", rm], ["components/resource-metrics on cert-manager", rmCm],
  ["components/resource-metrics on custom-metrics-only", rmCustomOnly],
  ["components/kube-prometheus with components/resource-metrics", kpRm]);
for (const [label, objects] of [...deployable, ["examples", examples]]) oneHpaPerTarget(label, objects);

// Nothing deployable may turn authentication off.
for (const [target, objects] of deployable)
  check(`${target}: never --insecure-skip-auth`, !JSON.stringify(objects).includes("insecure-skip-auth"));

// Every kustomization under manifests/ was rendered: Kustomizations directly, Components
// through a user's overlay.
function kustomizations(dir) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const sub = path.join(dir, entry.name);
    if (fs.existsSync(path.join(sub, "kustomization.yaml"))) found.push(path.relative(root, sub));
    found.push(...kustomizations(sub));
  }
  return found;
}
for (const k of kustomizations(root)) {
  const kind = parseYaml(fs.readFileSync(path.join(root, k, "kustomization.yaml"), "utf8"))[0].kind;
  check(`${k}: rendered by this test`, kind === "Component" ? componentsUsed.has(k) : rendered.has(k), kind);
}

console.log(`manifests: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
