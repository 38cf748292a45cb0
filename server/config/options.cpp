#include "server/config/options.hpp"

#include "server/core/strings.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <optional>

namespace gma::config {
namespace {

struct flag {
  const char* name;
  const char* value_name;  // empty for booleans
  const char* help;
  std::function<void(options&, const std::string&)> set;
  command only_for = command::serve;  // serve: every command; else a flag of that command only
};

int parse_int(const std::string& name, const std::string& value, int min, int max) {
  int out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size() || out < min || out > max)
    throw usage_error("invalid value \"" + value + "\" for --" + name +
                      ": expected an integer from " + std::to_string(min) + " to " +
                      std::to_string(max));
  return out;
}

/// A byte count: digits with an optional binary suffix (Ki, Mi, Gi), as Kubernetes writes
/// memory sizes.
std::uint64_t parse_bytes(const std::string& name, const std::string& value, std::uint64_t min) {
  std::uint64_t number = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), number);
  const std::string_view suffix(end, value.data() + value.size() - end);
  int shift = -1;
  if (suffix.empty()) shift = 0;
  if (suffix == "Ki") shift = 10;
  if (suffix == "Mi") shift = 20;
  if (suffix == "Gi") shift = 30;
  if (ec != std::errc() || end == value.data() || shift < 0 ||
      number > (std::numeric_limits<std::uint64_t>::max() >> shift) || (number << shift) < min)
    throw usage_error("invalid value \"" + value + "\" for --" + name +
                      ": expected a byte count of at least " + std::to_string(min) +
                      " such as 512Mi or 2Gi");
  return number << shift;
}

/// A number from 0 to 1 ("0.1").
double parse_fraction(const std::string& name, const std::string& value) {
  double out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || end != value.data() + value.size() || !(out >= 0 && out < 1))
    throw usage_error("invalid value \"" + value + "\" for --" + name +
                      ": expected a number from 0 to 1, such as 0.1");
  return out;
}

bool parse_bool(const std::string& name, const std::string& value) {
  if (value == "true" || value == "1" || value == "t" || value == "True") return true;
  if (value == "false" || value == "0" || value == "f" || value == "False") return false;
  throw usage_error("invalid value \"" + value + "\" for --" + name + ": expected true or false");
}

std::chrono::milliseconds positive_duration(const std::string& name, const std::string& value) {
  try {
    const auto d = parse_duration(value);
    if (d.count() <= 0) throw usage_error("");
    return d;
  } catch (const usage_error&) {
    throw usage_error("invalid value \"" + value + "\" for --" + name +
                      ": expected a positive duration such as 30s or 1m");
  }
}

/// A duration where 0 means "off" (--metrics-cache-ttl=0).
std::chrono::milliseconds non_negative_duration(const std::string& name, const std::string& value) {
  try {
    const auto d = parse_duration(value);
    if (d.count() < 0) throw usage_error("");
    return d;
  } catch (const usage_error&) {
    throw usage_error("invalid value \"" + value + "\" for --" + name +
                      ": expected a duration such as 10s, or 0 to turn it off");
  }
}

/// pflag's StringSlice: comma-separated, empty means an empty list.
std::vector<std::string> split_list(const std::string& value) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= value.size() && !value.empty()) {
    const auto comma = value.find(',', start);
    std::string item =
        value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::vector<std::string> lower_list(const std::string& value) {
  auto out = split_list(value);
  for (auto& s : out) s = core::ascii_lower(s);
  return out;
}

std::chrono::seconds ttl(const std::string& name, const std::string& value) {
  try {
    return std::chrono::duration_cast<std::chrono::seconds>(parse_duration(value));
  } catch (const usage_error&) {
    throw usage_error("invalid value \"" + value + "\" for --" + name +
                      ": expected a duration such as 10s");
  }
}

/// An AWS region or service name ("us-east-1", "aps"): lowercase letters, digits and '-'.
std::string aws_name(const std::string& name, const std::string& value) {
  if (value.empty() ||
      value.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)
    throw usage_error("invalid value \"" + value + "\" for --" + name +
                      ": expected lowercase letters, digits and '-', such as us-east-1");
  return value;
}

const std::vector<flag>& flags() {
  static const std::vector<flag> table = {
      {"bind-address", "ip",
       "The IP address on which to listen for --secure-port. (default 0.0.0.0)",
       [](options& o, const std::string& v) { o.bind_address = v; }},
      {"secure-port", "int", "The port on which to serve HTTPS. (default 6443)",
       [](options& o, const std::string& v) {
         o.secure_port = parse_int("secure-port", v, 1, 65535);
       }},
      {"tls-cert-file", "path", "File with the x509 serving certificate (and any intermediates).",
       [](options& o, const std::string& v) { o.tls_cert_file = v; }},
      {"tls-private-key-file", "path", "File with the x509 private key matching --tls-cert-file.",
       [](options& o, const std::string& v) { o.tls_private_key_file = v; }},
      {"cert-dir", "path",
       "Where a self-signed certificate for localhost/127.0.0.1 is written when no certificate "
       "files are given. (default: apiserver.local.config/certificates in a pod, else "
       "~/.cache/gpu-metrics-adapter/certificates)",
       [](options& o, const std::string& v) { o.cert_dir = v; }},
      {"max-open-connections", "int",
       "Connections served at once; new ones beyond it are closed at once. (default 2048)",
       [](options& o, const std::string& v) {
         o.max_open_connections = parse_int("max-open-connections", v, 1, 1000000);
       }},
      {"request-header-timeout", "duration",
       "How long a client may take to send a request's head, from its first byte (or the TLS "
       "handshake); slower clients get 408 and are closed. (default 32s)",
       [](options& o, const std::string& v) {
         o.request_header_timeout = positive_duration("request-header-timeout", v);
       }},
      {"shutdown-drain-timeout", "duration",
       "On SIGTERM, how long requests being answered may run before they are answered 503 and "
       "the process exits; keep it below the pod's terminationGracePeriodSeconds. (default 10s)",
       [](options& o, const std::string& v) {
         o.shutdown_drain_timeout = positive_duration("shutdown-drain-timeout", v);
       }},
      {"threads", "int",
       "Threads that serve connections and requests. (default: the CPUs this process may use, "
       "at least 2)",
       [](options& o, const std::string& v) {
         o.threads = static_cast<unsigned>(parse_int("threads", v, 1, 1024));
       }},
      {"insecure-skip-auth", "",
       "Serve metrics without authentication or authorization. Anyone who can reach the port "
       "can read every metric: for local testing only.",
       [](options& o, const std::string& v) {
         o.insecure_skip_auth = parse_bool("insecure-skip-auth", v);
       }},
      {"tls-min-version", "version",
       "Minimum TLS version: VersionTLS12 or VersionTLS13. (default VersionTLS12)",
       [](options& o, const std::string& v) { o.tls_min_version = v; }},
      {"tls-cipher-suites", "strings",
       "Comma-separated TLS 1.2 cipher suites, Go names "
       "(TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,...).",
       [](options& o, const std::string& v) { o.tls_cipher_suites = split_list(v); }},
      {"authentication-kubeconfig", "path",
       "Kubeconfig for TokenReview and the extension-apiserver-authentication ConfigMap; "
       "in-cluster when empty.",
       [](options& o, const std::string& v) { o.authentication_kubeconfig = v; }},
      {"authentication-token-webhook-cache-ttl", "duration",
       "How long TokenReview answers are cached. (default 10s)",
       [](options& o, const std::string& v) {
         o.authentication_token_webhook_cache_ttl =
             ttl("authentication-token-webhook-cache-ttl", v);
       }},
      {"client-ca-file", "path", "CA bundle for client certificates: user = CN, groups = O.",
       [](options& o, const std::string& v) { o.client_ca_file = v; }},
      {"requestheader-client-ca-file", "path",
       "CA bundle for the front proxy's client certificate; only then are X-Remote-* headers "
       "trusted.",
       [](options& o, const std::string& v) { o.requestheader_client_ca_file = v; }},
      {"requestheader-allowed-names", "strings",
       "Front-proxy certificate CNs that may set user headers; empty allows any.",
       [](options& o, const std::string& v) { o.requestheader_allowed_names = split_list(v); }},
      {"requestheader-username-headers", "strings", "User name headers. (default x-remote-user)",
       [](options& o, const std::string& v) { o.requestheader_username_headers = lower_list(v); }},
      {"requestheader-group-headers", "strings", "Group headers. (default x-remote-group)",
       [](options& o, const std::string& v) { o.requestheader_group_headers = lower_list(v); }},
      {"requestheader-extra-headers-prefix", "strings",
       "Extra-attribute header prefixes. (default x-remote-extra-)",
       [](options& o, const std::string& v) {
         o.requestheader_extra_headers_prefix = lower_list(v);
       }},
      {"authorization-kubeconfig", "path",
       "Kubeconfig for SubjectAccessReview; in-cluster when empty.",
       [](options& o, const std::string& v) { o.authorization_kubeconfig = v; }},
      {"authorization-webhook-cache-authorized-ttl", "duration",
       "How long allowed answers are cached. (default 10s)",
       [](options& o, const std::string& v) {
         o.authorization_webhook_cache_authorized_ttl =
             ttl("authorization-webhook-cache-authorized-ttl", v);
       }},
      {"authorization-webhook-cache-unauthorized-ttl", "duration",
       "How long denied answers are cached. (default 10s)",
       [](options& o, const std::string& v) {
         o.authorization_webhook_cache_unauthorized_ttl =
             ttl("authorization-webhook-cache-unauthorized-ttl", v);
       }},
      {"authorization-always-allow-paths", "strings",
       "Paths served without authorization. (default /healthz,/readyz,/livez)",
       [](options& o, const std::string& v) {
         o.authorization_always_allow_paths = split_list(v);
       }},
      {"prometheus-url", "url",
       "URL of the Prometheus HTTP API server. (default https://localhost)",
       [](options& o, const std::string& v) { o.prometheus_url = v; }},
      {"prometheus-ca-file", "path",
       "CA bundle that verifies an https --prometheus-url; the system CAs when empty.",
       [](options& o, const std::string& v) { o.prometheus_ca_file = v; }},
      {"prometheus-client-tls-cert-file", "path",
       "Client certificate for mutual TLS with Prometheus.",
       [](options& o, const std::string& v) { o.prometheus_client_tls_cert_file = v; }},
      {"prometheus-client-tls-key-file", "path", "Key of --prometheus-client-tls-cert-file.",
       [](options& o, const std::string& v) { o.prometheus_client_tls_key_file = v; }},
      {"prometheus-token-file", "path",
       "File with a bearer token sent to Prometheus (re-read every minute).",
       [](options& o, const std::string& v) { o.prometheus_token_file = v; }},
      {"prometheus-auth-config", "path",
       "Kubeconfig whose current user and cluster CA are used to reach Prometheus (TLS, token, "
       "client certificate).",
       [](options& o, const std::string& v) { o.prometheus_auth_config = v; }},
      {"prometheus-auth-incluster", "",
       "Reach Prometheus with the pod's service account token and CA.",
       [](options& o, const std::string& v) {
         o.prometheus_auth_incluster = parse_bool("prometheus-auth-incluster", v);
       }},
      {"prometheus-auth-provider", "provider",
       "Send Prometheus an OAuth token from the cloud's workload identity, refreshed before it "
       "expires: gcp (the GKE metadata server, for Google Cloud Managed Service for Prometheus) "
       "or azure (AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE exchanged with "
       "Azure AD, for Azure Monitor managed Prometheus). The only source of Prometheus "
       "credentials: not with --prometheus-token-file, --prometheus-auth-config, "
       "--prometheus-auth-incluster, --prometheus-sigv4-region or an Authorization "
       "--prometheus-header. (default none)",
       [](options& o, const std::string& v) {
         if (v != "gcp" && v != "azure" && v != "none")
           throw usage_error("invalid value \"" + v +
                             "\" for --prometheus-auth-provider: expected gcp, azure or none");
         o.prometheus_auth_provider = v == "none" ? "" : v;
       }},
      {"prometheus-gcp-metadata-url", "url",
       "The metadata server's token URL for --prometheus-auth-provider=gcp. (default: on "
       "http://metadata.google.internal, the path "
       "/computeMetadata/v1/instance/service-accounts/default/token)",
       [](options& o, const std::string& v) { o.prometheus_gcp_metadata_url = v; }},
      {"prometheus-azure-authority-host", "url",
       "Azure AD for --prometheus-auth-provider=azure; tokens come from "
       "<host><tenant>/oauth2/v2.0/token. (default $AZURE_AUTHORITY_HOST, else "
       "https://login.microsoftonline.com/)",
       [](options& o, const std::string& v) { o.prometheus_azure_authority_host = v; }},
      {"prometheus-header", "key=value",
       "A header sent to Prometheus; repeatable. A bare key sends an empty value.",
       [](options& o, const std::string& v) {
         const auto eq = v.find('=');
         o.prometheus_headers.emplace_back(v.substr(0, eq),
                                           eq == std::string::npos ? "" : v.substr(eq + 1));
       }},
      {"prometheus-partial-response", "mode",
       "allow, deny or none: partial_response=true|false, meant for Thanos, on every query and "
       "series request. deny makes Thanos fail a query a store cannot answer instead of "
       "answering without that store's data, on which an HPA would scale wrongly; Prometheus, "
       "VictoriaMetrics and Mimir ignore the parameter, and a backend that refuses it by name "
       "(Google Cloud Managed Prometheus) is sent it no more after its first refusal. none "
       "sends nothing, and Thanos applies its --query.partial-response. (default deny)",
       [](options& o, const std::string& v) {
         if (v != "allow" && v != "deny" && v != "none")
           throw usage_error("invalid value \"" + v +
                             "\" for --prometheus-partial-response: expected allow, deny or none");
         o.prometheus_partial_response = v;
       }},
      {"prometheus-verb", "verb", "HTTP method for queries: GET or POST (form body). (default GET)",
       [](options& o, const std::string& v) {
         if (v != "GET" && v != "POST")
           throw usage_error("invalid value \"" + v +
                             "\" for --prometheus-verb: expected GET or POST");
         o.prometheus_verb = v;
       }},
      {"prometheus-sigv4-region", "region",
       "Sign every request to Prometheus with AWS Signature Version 4 for this region (Amazon "
       "Managed Service for Prometheus). Credentials, as the AWS SDKs find them: "
       "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); AWS_ROLE_ARN and "
       "AWS_WEB_IDENTITY_TOKEN_FILE (IRSA); AWS_CONTAINER_CREDENTIALS_FULL_URI and "
       "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (EKS Pod Identity).",
       [](options& o, const std::string& v) {
         o.prometheus_sigv4_region = aws_name("prometheus-sigv4-region", v);
       }},
      {"prometheus-sigv4-service", "name",
       "The SigV4 service name; needs --prometheus-sigv4-region. (default aps)",
       [](options& o, const std::string& v) {
         o.prometheus_sigv4_service = aws_name("prometheus-sigv4-service", v);
       }},
      {"prometheus-sigv4-sts-endpoint", "url",
       "STS endpoint for IRSA's AssumeRoleWithWebIdentity; needs --prometheus-sigv4-region. "
       "(default: AWS_ENDPOINT_URL_STS, else https://sts.<AWS_REGION>.amazonaws.com, or "
       "https://sts.amazonaws.com with AWS_STS_REGIONAL_ENDPOINTS=legacy)",
       [](options& o, const std::string& v) {
         if (!v.starts_with("https://") && !v.starts_with("http://"))
           throw usage_error(
               "invalid value \"" + v +
               "\" for --prometheus-sigv4-sts-endpoint: expected http(s)://host[:port]");
         o.prometheus_sigv4_sts_endpoint = v;
       }},
      {"config", "path",
       "prometheus-adapter rules file (rules, externalRules); reloaded on SIGHUP and when it "
       "changes. "
       "Without it the built-in GPU rules are served.",
       [](options& o, const std::string& v) { o.config_file = v; }},
      {"metrics-max-age", "duration",
       "How far back discovery looks for series; at least the relist interval. (default: the "
       "relist interval)",
       [](options& o, const std::string& v) {
         o.metrics_max_age = std::chrono::duration_cast<std::chrono::seconds>(
             positive_duration("metrics-max-age", v));
       }},
      {"metrics-relist-interval", "duration",
       "Interval between metric discovery runs against Prometheus. (default 1m)",
       [](options& o, const std::string& v) {
         o.metrics_relist_interval = std::chrono::duration_cast<std::chrono::seconds>(
             positive_duration("metrics-relist-interval", v));
         if (o.metrics_relist_interval.count() == 0)
           throw usage_error("invalid value \"" + v +
                             "\" for --metrics-relist-interval: must be at least 1s");
       }},
      {"prometheus-query-timeout", "duration",
       "Deadline of one Prometheus query; sent as timeout= and enforced. (default 5s)",
       [](options& o, const std::string& v) {
         o.prometheus_query_timeout = positive_duration("prometheus-query-timeout", v);
       }},
      {"metrics-cache-ttl", "duration",
       "How long a Prometheus answer is served from memory; refreshed ahead while it is read. "
       "0 queries Prometheus on every request. (default 10s)",
       [](options& o, const std::string& v) {
         o.metrics_cache_ttl = non_negative_duration("metrics-cache-ttl", v);
       }},
      {"metrics-cache-max-entries", "int",
       "Cached answers kept at most, least recently used dropped first. (default 10000)",
       [](options& o, const std::string& v) {
         o.metrics_cache_max_entries = parse_int("metrics-cache-max-entries", v, 1, 10000000);
       }},
      {"discovery-max-reply-bytes", "bytes",
       "Largest series answer discovery reads for one seriesQuery (read as it arrives, so memory "
       "does not grow with it); a larger one fails that seriesQuery's discovery and readiness. "
       "(default 1Gi)",
       [](options& o, const std::string& v) {
         o.discovery_max_reply_bytes = parse_bytes("discovery-max-reply-bytes", v, 1024);
       }},
      {"discovery-max-series-shapes", "int",
       "Most distinct series shapes (metric name and label names) discovery keeps for one "
       "seriesQuery; more fail its discovery and readiness. (default 10000)",
       [](options& o, const std::string& v) {
         o.discovery_max_series_shapes = parse_int("discovery-max-series-shapes", v, 1, 10000000);
       }},
      {"metrics-serve-stale-for", "duration",
       "While Prometheus fails, how long past its TTL the last good answer is still served; 0 "
       "never serves one. (default 1m)",
       [](options& o, const std::string& v) {
         o.metrics_serve_stale_for = non_negative_duration("metrics-serve-stale-for", v);
       }},
      {"readiness-requires-prometheus", "",
       "Fail /readyz while Prometheus does not answer or no discovery has succeeded. Off: "
       "Prometheus' health is /readyz/prometheus, and an unready APIService would break "
       "discovery for the whole cluster.",
       [](options& o, const std::string& v) {
         o.readiness_requires_prometheus = parse_bool("readiness-requires-prometheus", v);
       }},
      {"lister-kubeconfig", "path",
       "Kubeconfig for listing and watching pods; in-cluster configuration when empty.",
       [](options& o, const std::string& v) { o.lister_kubeconfig = v; }},
      {"v", "int",
       "Log verbosity: 1 refused requests, readiness failures, pod cache syncs and why an answer "
       "is empty; 2 connection errors and discovery sizes; 3 every request; 4 every PromQL "
       "query. (default 0: warnings, errors and changes)",
       [](options& o, const std::string& v) { o.verbosity = parse_int("v", v, 0, 10); }},
      {"help", "", "Print this help and exit (also -h).",
       [](options& o, const std::string& v) { o.help = parse_bool("help", v); }},
      {"version", "", "Print the version and exit.",
       [](options& o, const std::string& v) { o.version = parse_bool("version", v); }},
      {"explain", "request", "check only: print the PromQL that REQUEST would send; repeatable.",
       [](options& o, const std::string& v) { o.explain.push_back(v); }, command::check},
      {"filename", "file",
       "explain-hpa only (also -f): the HorizontalPodAutoscaler manifest to explain "
       "(autoscaling/v2, v2beta2 or v2beta1; the first HPA in the file).",
       [](options& o, const std::string& v) { o.hpa_file = v; }, command::explain_hpa},
      {"hpa", "namespace/name",
       "explain-hpa only: the live HorizontalPodAutoscaler to explain, read through "
       "--lister-kubeconfig or in-cluster.",
       [](options& o, const std::string& v) {
         const auto slash = v.find('/');
         if (slash == 0 || slash == std::string::npos || slash + 1 == v.size() ||
             v.find('/', slash + 1) != std::string::npos)
           throw usage_error("invalid value \"" + v + "\" for --hpa: expected NAMESPACE/NAME");
         o.hpa_name = v;
       },
       command::explain_hpa},
      {"selector", "selector",
       "explain-hpa only: the label selector of the scale target's pods, for when the target "
       "(Deployment, StatefulSet, ReplicaSet) cannot be read.",
       [](options& o, const std::string& v) { o.pod_selector = v; }, command::explain_hpa},
      {"current-replicas", "int",
       "explain-hpa only: the current replica count, instead of the scale target's "
       "spec.replicas; also the count AverageValue targets divide by (its status.replicas).",
       [](options& o, const std::string& v) {
         o.current_replicas = parse_int("current-replicas", v, 0, 1000000);
       },
       command::explain_hpa},
      {"tolerance", "float",
       "explain-hpa only: the controller's --horizontal-pod-autoscaler-tolerance; an HPA's "
       "behavior.*.tolerance takes precedence. (default 0.1)",
       [](options& o, const std::string& v) { o.tolerance = parse_fraction("tolerance", v); },
       command::explain_hpa},
      {"output", "format", "explain-hpa only (also -o): table or json. (default table)",
       [](options& o, const std::string& v) {
         if (v != "table" && v != "json")
           throw usage_error("invalid value \"" + v + "\" for --output: expected table or json");
         o.output = v;
       },
       command::explain_hpa},
  };
  return table;
}

/// prometheus-adapter flags that only tune Go internals (profiling, klog, audit, HTTP/2,
/// client rate limits): accepted so existing Deployments start, and ignored with a warning.
/// The bool says whether the flag takes a value.
const std::map<std::string, bool>& ignored_flags() {
  static const std::map<std::string, bool> table = {
      {"profiling", false},
      {"contention-profiling", false},
      {"debug-socket-path", true},
      {"vmodule", true},
      {"log-flush-frequency", true},
      {"logtostderr", false},
      {"alsologtostderr", false},
      {"log-dir", true},
      {"log-file", true},
      {"log-file-max-size", true},
      {"skip-headers", false},
      {"skip-log-headers", false},
      {"stderrthreshold", true},
      {"one-output", false},
      {"add-dir-header", false},
      {"logging-format", true},
      {"disable-http2", false},
      {"http2-max-streams-per-connection", true},
      {"permit-port-sharing", false},
      {"permit-address-sharing", false},
      {"enable-priority-and-fairness", false},
      {"discovery-interval", true},
      {"client-qps", true},
      {"client-burst", true},
      {"authentication-skip-lookup", false},
      {"authentication-tolerate-lookup-failure", false},
      {"tls-sni-cert-key", true},
      {"feature-gates", true},
      {"audit-policy-file", true},
      {"audit-log-path", true},
      {"audit-log-maxage", true},
      {"audit-log-maxbackup", true},
      {"audit-log-maxsize", true},
      {"audit-log-format", true},
      {"audit-log-mode", true},
      {"audit-log-compress", false},
      {"audit-log-batch-max-size", true},
      {"audit-log-batch-max-wait", true},
      {"audit-log-batch-buffer-size", true},
      {"audit-log-batch-throttle-enable", false},
      {"audit-log-batch-throttle-qps", true},
      {"audit-log-batch-throttle-burst", true},
      {"audit-log-truncate-enabled", false},
      {"audit-log-truncate-max-batch-size", true},
      {"audit-log-truncate-max-event-size", true},
      {"audit-log-version", true},
      {"audit-webhook-config-file", true},
      {"audit-webhook-initial-backoff", true},
      {"audit-webhook-mode", true},
      {"audit-webhook-batch-max-size", true},
      {"audit-webhook-batch-max-wait", true},
      {"audit-webhook-batch-buffer-size", true},
      {"audit-webhook-batch-throttle-enable", false},
      {"audit-webhook-batch-throttle-qps", true},
      {"audit-webhook-batch-throttle-burst", true},
      {"audit-webhook-truncate-enabled", false},
      {"audit-webhook-truncate-max-batch-size", true},
      {"audit-webhook-truncate-max-event-size", true},
      {"audit-webhook-version", true},
  };
  return table;
}

const flag* find_flag(const std::string& name) {
  for (const auto& f : flags())
    if (name == f.name) return &f;
  return nullptr;
}

/// Levenshtein distance, for "did you mean".
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

/// The known flag closest to `name`, when it is close enough to be a typo: at most a third of
/// its letters differ (two for short names), or one name starts the other.
std::optional<std::string> closest_flag(const std::string& name) {
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(2, name.size() / 3) + 1;
  const auto consider = [&](const std::string& candidate) {
    std::size_t d = edit_distance(name, candidate);
    if (name.size() >= 4 && candidate.size() >= 4 &&
        (candidate.starts_with(name) || name.starts_with(candidate)))
      d = std::min<std::size_t>(d, 1);
    // Replacing every letter of a short name is no typo ("--x" is not "--v").
    if (d < best_distance && d < name.size()) {
      best_distance = d;
      best = candidate;
    }
  };
  for (const auto& f : flags()) consider(f.name);
  return best;
}

/// Whether `arg` names prometheus-adapter's binary: "/adapter", "adapter" or a path ending in
/// "/adapter", as its Helm chart and walkthrough put first in `args`.
bool names_reference_binary(const std::string& arg) {
  // Never a flag: "--config=/etc/adapter" is a flag whose value ends so.
  return !arg.starts_with("-") && (arg == "adapter" || arg.ends_with("/adapter"));
}

}  // namespace

std::chrono::milliseconds parse_duration(const std::string& text) {
  static const std::map<std::string, double> kUnits = {
      {"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}};
  if (text == "0") return std::chrono::milliseconds(0);
  if (text.empty()) throw usage_error("empty duration");
  double total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    // The whole run of digits and dots must be one number: ".", "1.2.3" and "1." are not.
    double number = 0;
    const auto [end, ec] = std::from_chars(text.data() + start, text.data() + i, number);
    if (i == start || ec != std::errc() || end != text.data() + i || text[i - 1] == '.')
      throw usage_error("invalid duration " + text);
    const std::size_t unit_start = i;
    while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.')
      ++i;
    const auto unit = kUnits.find(text.substr(unit_start, i - unit_start));
    if (unit == kUnits.end()) throw usage_error("invalid duration " + text);
    total += number * unit->second;
  }
  if (total > 1e12) throw usage_error("duration too large: " + text);
  return std::chrono::milliseconds(static_cast<long long>(total));
}

options parse_options(const std::vector<std::string>& args) {
  options o;
  std::size_t i = 0;
  if (!args.empty() && names_reference_binary(args.front()))
    o.reference_binary_argument = args[i++];
  if (i < args.size() && (args[i] == "check" || args[i] == "explain-hpa")) {
    o.cmd = args[i] == "check" ? command::check : command::explain_hpa;
    ++i;
  }
  for (; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "-h") {
      o.help = true;
      continue;
    }
    if (arg.starts_with("--")) {
      arg = arg.substr(2);
    } else if (arg.starts_with("-") && arg.size() > 1) {
      arg = arg.substr(1);  // pflag accepts -v=2 for single-letter flags
      // kubectl's short forms.
      if (arg == "f" || arg.starts_with("f=")) arg = "filename" + arg.substr(1);
      if (arg == "o" || arg.starts_with("o=")) arg = "output" + arg.substr(1);
    } else {
      throw usage_error("unexpected argument \"" + arg + "\"; flags start with --");
    }
    std::optional<std::string> value;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    if (const auto ignored = ignored_flags().find(arg); ignored != ignored_flags().end()) {
      if (ignored->second && !value && i + 1 < args.size()) ++i;
      o.ignored_flags.push_back("--" + arg);
      continue;
    }
    const flag* f = find_flag(arg);
    if (!f) {
      const auto suggestion = closest_flag(arg);
      throw usage_error("unknown flag: --" + arg +
                        (suggestion ? " (did you mean --" + *suggestion + "?)" : " (see --help)"));
    }
    if (f->only_for != command::serve && o.cmd != f->only_for)
      throw usage_error("--" + arg + " is a flag of the " + command_name(f->only_for) +
                        " command (see --help)");
    if (!value) {
      if (*f->value_name == '\0') {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        throw usage_error("flag needs an argument: --" + arg);
      }
    }
    f->set(o, *value);
    o.given.insert(f->name);
  }
  if (o.cmd == command::explain_hpa && o.hpa_file.empty() == o.hpa_name.empty())
    throw usage_error("explain-hpa needs one of -f FILE and --hpa NAMESPACE/NAME");
  if (o.cert_dir.empty()) o.cert_dir = default_cert_dir();
  if (o.metrics_max_age.count() != 0 && o.metrics_max_age < o.metrics_relist_interval)
    throw usage_error("--metrics-max-age must be at least --metrics-relist-interval");
  if (o.prometheus_client_tls_cert_file.empty() != o.prometheus_client_tls_key_file.empty())
    throw usage_error(
        "--prometheus-client-tls-cert-file and --prometheus-client-tls-key-file go together");
  if (!o.prometheus_auth_config.empty() && o.prometheus_auth_incluster)
    throw usage_error(
        "--prometheus-auth-config and --prometheus-auth-incluster exclude each other");
  if (o.prometheus_sigv4_region.empty()) {
    for (const char* flag : {"prometheus-sigv4-service", "prometheus-sigv4-sts-endpoint"})
      if (o.given.contains(flag))
        throw usage_error("--" + std::string(flag) + " needs --prometheus-sigv4-region");
  } else {
    // SigV4 is the request's whole authentication: a second one would be sent alongside it
    // (a bearer token in the same Authorization header) or make no sense.
    const bool token = !o.prometheus_token_file.empty() || !o.prometheus_auth_config.empty() ||
                       o.prometheus_auth_incluster;
    if (token)
      throw usage_error(
          "--prometheus-sigv4-region excludes --prometheus-token-file, --prometheus-auth-config "
          "and --prometheus-auth-incluster: SigV4 signs the Authorization header itself");
    for (const auto& [name, value] : o.prometheus_headers) {
      const auto lower = core::ascii_lower(name);
      if (lower == "authorization" || lower.starts_with("x-amz-"))
        throw usage_error("--prometheus-header " + name +
                          " conflicts with --prometheus-sigv4-region, which sets it");
    }
  }
  if (!o.prometheus_auth_provider.empty()) {
    // One source of credentials: a token from the cloud beside another would be overwritten.
    if (!o.prometheus_sigv4_region.empty())
      throw usage_error(
          "--prometheus-auth-provider and --prometheus-sigv4-region exclude each other: both set "
          "the Authorization header; use one source of Prometheus credentials");
    const bool authorization_header =
        std::any_of(o.prometheus_headers.begin(), o.prometheus_headers.end(),
                    [](const auto& h) { return core::ascii_lower(h.first) == "authorization"; });
    for (const char* other :
         {"prometheus-token-file", "prometheus-auth-config", "prometheus-auth-incluster"})
      if (o.given.contains(other))
        throw usage_error("--prometheus-auth-provider and --" + std::string(other) +
                          " exclude each other: use one source of Prometheus credentials");
    if (authorization_header)
      throw usage_error(
          "--prometheus-auth-provider and --prometheus-header=Authorization=... exclude each "
          "other: use one source of Prometheus credentials");
  }
  return o;
}

namespace {

/// `text` in lines of at most `width` characters, broken at spaces.
std::vector<std::string> wrap(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::string line;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    const std::string word = text.substr(start, end - start);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(std::move(line));
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    start = end + 1;
  }
  if (!line.empty()) lines.push_back(std::move(line));
  return lines;
}

}  // namespace

const char* command_name(command cmd) {
  switch (cmd) {
    case command::check:
      return "check";
    case command::explain_hpa:
      return "explain-hpa";
    case command::serve:
      break;
  }
  return "";
}

std::string help_text() {
  std::string out =
      "gpu-metrics-adapter serves custom.metrics.k8s.io and external.metrics.k8s.io from "
      "Prometheus\nfor HorizontalPodAutoscalers.\n\nUsage:\n  gpu-metrics-adapter [flags]\n"
      "  gpu-metrics-adapter check --config FILE [--prometheus-url URL] [--explain REQUEST]...\n"
      "      Validates FILE (errors as file:line: reason, exit code 1); with a Prometheus, lists "
      "what\n"
      "      each rule discovers, and prints and runs the PromQL of each REQUEST, e.g.\n"
      "      'namespaces/NS/pods/*/METRIC?labelSelector=app=x' or "
      "'namespaces/NS/EXTERNAL_METRIC'.\n"
      "  gpu-metrics-adapter explain-hpa (-f HPA.yaml | --hpa NS/NAME) [--prometheus-url URL]\n"
      "      Reads the HPA's metrics through the same rules as the server and does the HPA\n"
      "      controller's arithmetic: per metric its values, target, ratio and proposal, then\n"
      "      the replica count and why. Exit code 0 when every metric was read, 1 when one\n"
      "      could not be (its Status message is shown), 3 when the HPA, its pods or the rules\n"
      "      could not be read at all, 2 for usage errors.\n\nFlags:\n";
  // Two columns: every description starts in one column and wraps within 100; a flag too long
  // for the first column has its description start on the next line, as argparse does.
  constexpr std::size_t kColumn = 40;
  constexpr std::size_t kWidth = 100;
  for (const auto& f : flags()) {
    std::string left = std::string("  --") + f.name;
    if (*f.value_name) left += std::string(" ") + f.value_name;
    if (left.size() + 2 > kColumn) {
      out += left + "\n";
      left.clear();
    }
    left.resize(kColumn, ' ');
    bool first = true;
    for (const auto& line : wrap(f.help, kWidth - kColumn)) {
      out += (first ? left : std::string(kColumn, ' ')) + line + "\n";
      first = false;
    }
  }
  return out;
}

std::string default_cert_dir() {
  constexpr const char* kSubdirectory = "gpu-metrics-adapter/certificates";
  if (std::getenv("KUBERNETES_SERVICE_HOST")) return "apiserver.local.config/certificates";
  if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && *cache == '/')
    return std::string(cache) + "/" + kSubdirectory;
  if (const char* home = std::getenv("HOME"); home && *home == '/')
    return std::string(home) + "/.cache/" + kSubdirectory;
  return "apiserver.local.config/certificates";
}

}  // namespace gma::config
