#include "adapters/kubernetes/cluster_access.hpp"

#include "adapters/http_client/client_tls.hpp"

#include "server/core/text_file.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace gma::adapters::kubernetes {
namespace {

namespace fs = std::filesystem;

std::string base64_decode(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int value = 0;
  int bits = -8;
  for (char c : in) {
    if (c == '=' || std::isspace(static_cast<unsigned char>(c))) continue;
    const auto pos = kAlphabet.find(c);
    if (pos == std::string::npos) throw std::runtime_error("invalid base64 data in kubeconfig");
    value = (value << 6) + static_cast<int>(pos);
    bits += 6;
    if (bits >= 0) {
      out += static_cast<char>((value >> bits) & 0xFF);
      bits -= 8;
    }
  }
  return out;
}

YAML::Node find_named(const YAML::Node& list, const std::string& name, const char* what,
                      const char* field) {
  if (list)
    for (const auto& entry : list)
      if (entry["name"] && entry["name"].as<std::string>() == name) return entry[field];
  throw std::runtime_error(std::string("kubeconfig has no ") + what + " named \"" + name + "\"");
}

/// Reads "<key>-data" (base64) or "<key>" (a path relative to the kubeconfig's folder).
std::string pem(const YAML::Node& node, const std::string& key, const fs::path& base) {
  if (node[key + "-data"]) return base64_decode(node[key + "-data"].as<std::string>());
  if (node[key]) {
    fs::path p = node[key].as<std::string>();
    return core::read_text_file_or_throw((p.is_absolute() ? p : base / p).string());
  }
  return {};
}

/// Refuses a user whose only credentials come from an exec plugin or an auth-provider (how
/// EKS, GKE and AKS kubeconfigs authenticate): the adapter runs neither, and starting anyway
/// would send every request unauthenticated.
void refuse_plugin_credentials(const YAML::Node& user, const std::string& user_name,
                               const std::string& path) {
  if (!user) return;
  const bool has_own = user["token"] || user["tokenFile"] || user["client-certificate"] ||
                       user["client-certificate-data"];
  if (has_own) return;
  std::string how;
  if (user["exec"]) {
    how = "an exec plugin";
    if (user["exec"]["command"]) how += " (" + user["exec"]["command"].as<std::string>() + ")";
  } else if (user["auth-provider"]) {
    how = "an auth-provider";
    if (user["auth-provider"]["name"])
      how += " (" + user["auth-provider"]["name"].as<std::string>() + ")";
  } else {
    return;
  }
  throw std::runtime_error(
      "kubeconfig " + path + ": the user \"" + user_name + "\" authenticates with " + how +
      ", which gpu-metrics-adapter does not run, so its requests would be unauthenticated. "
      "Run it in the cluster (it then uses its service account), or give it a kubeconfig whose "
      "user has a token, tokenFile or client certificate, for example a tokenFile (re-read every "
      "minute, so it can be renewed) holding a service account's token: kubectl create token "
      "gpu-metrics-adapter -n gpu-metrics --duration=24h");
}

/// The current context's settings from a loaded kubeconfig.
cluster_access from_config(const YAML::Node& config, const std::string& path) {
  const fs::path base = fs::path(path).parent_path();
  if (!config["current-context"])
    throw std::runtime_error("kubeconfig " + path + " has no current-context");
  const std::string context_name = config["current-context"].as<std::string>();
  const YAML::Node context = find_named(config["contexts"], context_name, "context", "context");
  const YAML::Node cluster =
      find_named(config["clusters"], context["cluster"].as<std::string>(), "cluster", "cluster");
  YAML::Node user;
  if (context["user"]) {
    const auto user_name = context["user"].as<std::string>();
    user = find_named(config["users"], user_name, "user", "user");
    refuse_plugin_credentials(user, user_name, path);
  }

  cluster_access access;
  access.description = "kubeconfig " + path + " (context " + context_name + ")";
  auto endpoint = http_client::endpoint::parse(cluster["server"].as<std::string>(""));
  if (!endpoint) throw std::runtime_error("kubeconfig " + path + ": server must be an http(s) URL");
  access.client_options.target = *endpoint;
  if (endpoint->tls) {
    http_client::client_tls_settings tls;
    tls.insecure_skip_verify =
        cluster["insecure-skip-tls-verify"] && cluster["insecure-skip-tls-verify"].as<bool>();
    if (!tls.insecure_skip_verify) {
      auto ca = pem(cluster, "certificate-authority", base);
      if (!ca.empty()) tls.ca_pem = std::move(ca);  // none given: the system's CAs, as kubectl
    }
    if (user) {
      tls.client_cert_pem = pem(user, "client-certificate", base);
      tls.client_key_pem = pem(user, "client-key", base);
    }
    try {
      access.client_options.tls_context = http_client::make_client_tls_context(tls);
    } catch (const std::exception& e) {
      throw std::runtime_error("kubeconfig " + path + ": " + e.what());
    }
  }
  if (user && user["token"]) {
    access.client_options.headers.emplace_back("Authorization",
                                               "Bearer " + user["token"].as<std::string>());
  } else if (user && user["tokenFile"]) {
    fs::path token_file = user["tokenFile"].as<std::string>();
    access.client_options.bearer_token_file =
        (token_file.is_absolute() ? token_file : base / token_file).string();
  }
  return access;
}

}  // namespace

cluster_access load_kubeconfig(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec) && !ec)
    throw std::runtime_error("kubeconfig " + path + ": no such file");
  const auto text = core::read_text_file(path);
  if (!text)
    throw std::runtime_error("kubeconfig " + path + ": cannot read the file" +
                             (fs::is_directory(path, ec) ? " (it is a directory)" : ""));
  return parse_kubeconfig(*text, path);
}

cluster_access parse_kubeconfig(const std::string& text, const std::string& path) {
  // yaml-cpp's exceptions (text that is not YAML, a field of the wrong type, a list where a
  // mapping belongs) become the std::runtime_error naming the file that this file promises.
  try {
    return from_config(YAML::Load(text), path);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error("kubeconfig " + path + ": " + e.what());
  }
}

bool in_cluster_available() {
  return std::getenv("KUBERNETES_SERVICE_HOST") != nullptr &&
         std::getenv("KUBERNETES_SERVICE_PORT") != nullptr;
}

cluster_access load_in_cluster() {
  if (!in_cluster_available())
    throw std::runtime_error("not running in a cluster (KUBERNETES_SERVICE_HOST is not set)");
  const std::string dir = "/var/run/secrets/kubernetes.io/serviceaccount/";
  std::string host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  auto endpoint = http_client::endpoint::parse("https://" + host + ":" +
                                               std::getenv("KUBERNETES_SERVICE_PORT"));
  if (!endpoint) throw std::runtime_error("invalid KUBERNETES_SERVICE_HOST/PORT");
  cluster_access access;
  access.description = "in-cluster service account";
  access.client_options.target = *endpoint;
  http_client::client_tls_settings tls;
  tls.ca_pem = core::read_text_file_or_throw(dir + "ca.crt");
  access.client_options.tls_context = http_client::make_client_tls_context(tls);
  // Bound service-account tokens rotate; the client re-reads the file.
  access.client_options.bearer_token_file = dir + "token";
  if (!fs::exists(access.client_options.bearer_token_file))
    throw std::runtime_error("no service account token at " +
                             access.client_options.bearer_token_file);
  return access;
}

}  // namespace gma::adapters::kubernetes
