#pragma once
/// @file Command-line flags, named as prometheus-adapter and k8s.io/apiserver name them.
/// Parsed once in main; each component receives its own values.

#include <chrono>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace gma::config {

/// What the process was asked to do: the first argument "check" or "explain-hpa" selects
/// that command.
enum class command { serve, check, explain_hpa };

/// "check", "explain-hpa", or "" for serving.
const char* command_name(command cmd);

struct options {
  command cmd = command::serve;
  // Serving
  std::string bind_address = "0.0.0.0";
  int secure_port = 6443;
  std::string tls_cert_file;
  std::string tls_private_key_file;
  std::string cert_dir;  ///< empty: default_cert_dir()
  int max_open_connections = 2048;
  std::chrono::milliseconds request_header_timeout{std::chrono::seconds(32)};
  std::chrono::milliseconds shutdown_drain_timeout{std::chrono::seconds(10)};
  bool insecure_skip_auth = false;
  unsigned threads = 0;  ///< I/O threads; 0: the CPUs this process may use, at least 2
  std::string tls_min_version = "VersionTLS12";
  std::vector<std::string> tls_cipher_suites;
  // Authentication (k8s.io/apiserver DelegatingAuthenticationOptions)
  std::string authentication_kubeconfig;
  std::chrono::seconds authentication_token_webhook_cache_ttl{10};
  std::string client_ca_file;
  std::string requestheader_client_ca_file;
  std::vector<std::string> requestheader_allowed_names;
  std::vector<std::string> requestheader_username_headers{"x-remote-user"};
  std::vector<std::string> requestheader_group_headers{"x-remote-group"};
  std::vector<std::string> requestheader_extra_headers_prefix{"x-remote-extra-"};
  // Authorization (DelegatingAuthorizationOptions)
  std::string authorization_kubeconfig;
  std::chrono::seconds authorization_webhook_cache_authorized_ttl{10};
  std::chrono::seconds authorization_webhook_cache_unauthorized_ttl{10};
  std::vector<std::string> authorization_always_allow_paths{"/healthz", "/readyz", "/livez"};
  // Prometheus
  std::string prometheus_url = "https://localhost";
  std::string prometheus_ca_file;
  std::string prometheus_client_tls_cert_file;
  std::string prometheus_client_tls_key_file;
  std::string prometheus_token_file;
  std::string prometheus_auth_config;
  bool prometheus_auth_incluster = false;
  std::string prometheus_auth_provider;  ///< "gcp", "azure"; empty: none
  std::string prometheus_gcp_metadata_url =
      "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token";
  std::string prometheus_azure_authority_host;  ///< empty: $AZURE_AUTHORITY_HOST or Azure's
  std::vector<std::pair<std::string, std::string>> prometheus_headers;
  std::string prometheus_verb = "GET";
  std::string prometheus_sigv4_region;  ///< empty: requests are not SigV4-signed
  std::string prometheus_sigv4_service = "aps";
  std::string prometheus_sigv4_sts_endpoint;  ///< empty: AWS_ENDPOINT_URL_STS or the regional one
  /// --prometheus-partial-response: "allow", "deny" or "none" (nothing sent).
  std::string prometheus_partial_response = "deny";
  std::chrono::seconds metrics_max_age{0};  ///< 0: the relist interval
  std::string config_file;                  ///< rules file; built-in GPU rules when empty
  std::chrono::seconds metrics_relist_interval{60};
  std::chrono::milliseconds prometheus_query_timeout{5000};
  bool readiness_requires_prometheus = false;
  std::chrono::milliseconds metrics_cache_ttl{std::chrono::seconds(10)};  ///< 0: no cache
  int metrics_cache_max_entries = 10000;
  std::chrono::milliseconds metrics_serve_stale_for{std::chrono::minutes(1)};  ///< 0: never
  std::uint64_t discovery_max_reply_bytes = std::uint64_t{1} << 30;
  int discovery_max_series_shapes = 10000;
  // Kubernetes
  std::string lister_kubeconfig;
  // Logging
  int verbosity = 0;
  bool help = false;
  bool version = false;
  /// A leading argument naming prometheus-adapter's binary ("/adapter"), as its Helm chart
  /// passes; skipped with a warning. Empty when there was none.
  std::string reference_binary_argument;
  // check
  std::vector<std::string> explain;  ///< --explain requests, in order
  // explain-hpa
  std::string hpa_file;          ///< -f/--filename: an HPA manifest
  std::string hpa_name;          ///< --hpa NAMESPACE/NAME: a live HPA
  std::string pod_selector;      ///< --selector: the scale target's pods, when unreachable
  int current_replicas = -1;     ///< --current-replicas; -1: the scale target's
  double tolerance = 0.1;        ///< --tolerance
  std::string output = "table";  ///< -o/--output: table or json
  /// The names of the flags given on the command line (without "--"), e.g. "prometheus-url".
  std::set<std::string> given;
  /// Flags of the reference adapter that only concern Go internals; accepted and ignored.
  std::vector<std::string> ignored_flags;
};

/// Thrown for an unknown flag or a bad value; what() is a one-line reason.
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Parses the arguments after the program name: an optional command ("check",
/// "explain-hpa"), then flags in the `--flag=value` and `--flag value` forms (`-f` and `-o`
/// are short for --filename and --output). Throws usage_error.
options parse_options(const std::vector<std::string>& args);

/// The --help text: every flag with its default and meaning, in aligned columns.
std::string help_text();

/// Where the self-signed serving certificate goes without --cert-dir: in a pod (the
/// KUBERNETES_SERVICE_HOST variable is set), apiserver.local.config/certificates as in
/// k8s.io/apiserver; elsewhere the user's cache directory ($XDG_CACHE_HOME or ~/.cache, then
/// gpu-metrics-adapter/certificates), so that a laptop run does not write a private key into
/// the working directory.
std::string default_cert_dir();

/// Go duration syntax ("90s", "1m30s", "500ms", "2h"); throws usage_error.
std::chrono::milliseconds parse_duration(const std::string& text);

}  // namespace gma::config
