#include "server/cli/explain_hpa.hpp"

#include <yaml-cpp/yaml.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "adapters/kubernetes/object_reader.hpp"
#include "server/cli/one_shot_backend.hpp"
#include "server/core/replica_calculator.hpp"
#include "server/core/status.hpp"
#include "server/core/text_file.hpp"
#include "server/wiring/cluster.hpp"

namespace gma::cli {
namespace {

namespace hpa = core::hpa;
namespace k8s = adapters::kubernetes;
using json = nlohmann::json;

/// Thrown for what stops the explanation before any metric is read; caught in
/// run_explain_hpa, which prints it and exits with kNothingToExplain.
struct cannot_explain : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------------------------
// Reading the HPA

/// A YAML node as the JSON kubectl would send: plain scalars typed as YAML 1.2's core schema
/// (integers, floats, true/false, null), quoted scalars strings.
json to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& entry : node) out[entry.first.as<std::string>()] = to_json(entry.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(to_json(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (node.Tag() == "!") return text;  // quoted
      if (text == "true" || text == "false") return text == "true";
      if (text == "null" || text == "~") return nullptr;
      auto number = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (number.is_number()) return number;
      return text;
    }
    default:
      return nullptr;
  }
}

/// An object's `kind`, or "" when it has none (or not a string).
std::string kind_of(const json& object) {
  if (!object.is_object()) return "";
  const auto it = object.find("kind");
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

/// The first HorizontalPodAutoscaler of the manifest `file` (a List's items count).
json read_manifest(const std::string& file) {
  const auto text = core::read_text_file(file);
  if (!text) throw cannot_explain(file + ": cannot read the file");
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(*text);
  } catch (const YAML::Exception& e) {
    throw cannot_explain(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  for (const auto& document : documents) {
    json object = to_json(document);
    std::vector<json> candidates{object};
    if (kind_of(object) == "List" && object["items"].is_array())
      candidates = object["items"].get<std::vector<json>>();
    for (auto& candidate : candidates)
      if (kind_of(candidate) == "HorizontalPodAutoscaler") return candidate;
  }
  throw cannot_explain(file + ": no HorizontalPodAutoscaler in the file");
}

/// The Kubernetes API, when the command has access to it.
class cluster_reader {
 public:
  cluster_reader(one_shot_backend& backend, const std::string& kubeconfig) : backend_(backend) {
    if (auto access = wiring::cluster_access_from(kubeconfig))
      http_.emplace(backend.context().get_executor(), access->client_options);
  }

  bool available() const { return http_.has_value(); }

  /// The object at `path`, or nullopt with `why` set.
  std::optional<json> read(const std::string& path, std::string& why) {
    k8s::read_failure failure;
    auto object = backend_.run(k8s::async_read_object(*http_, path, kTimeout, failure));
    if (!object) {
      why = failure.message;
      return std::nullopt;
    }
    return std::move(*object);
  }

 private:
  static constexpr std::chrono::milliseconds kTimeout{10000};
  one_shot_backend& backend_;
  std::optional<adapters::http_client::http_client> http_;
};

/// Everything the controller would know at this sync, and where each piece came from.
struct situation {
  hpa::autoscaler autoscaler;
  std::string pod_selector;  ///< empty when unknown
  hpa::cluster_view cluster;
  std::string replicas_source;  ///< "Deployment spec.replicas", "--current-replicas"
  std::vector<std::string> notes;
};

hpa::autoscaler read_autoscaler(const config::options& opts, cluster_reader& cluster) {
  json object;
  if (!opts.hpa_file.empty()) {
    object = read_manifest(opts.hpa_file);
  } else {
    if (!cluster.available())
      throw cannot_explain("--hpa " + opts.hpa_name +
                           ": no Kubernetes access (give --lister-kubeconfig, or run in a "
                           "cluster), or explain a manifest with -f");
    const auto slash = opts.hpa_name.find('/');
    std::string why;
    auto live = cluster.read(
        k8s::object_path("autoscaling/v2", "horizontalpodautoscalers",
                         opts.hpa_name.substr(0, slash), opts.hpa_name.substr(slash + 1)),
        why);
    if (!live) throw cannot_explain("HorizontalPodAutoscaler " + opts.hpa_name + ": " + why);
    object = std::move(*live);
  }
  std::string error;
  auto parsed = hpa::parse_autoscaler(object, error);
  if (!parsed)
    throw cannot_explain((opts.hpa_file.empty() ? "--hpa " + opts.hpa_name : opts.hpa_file) + ": " +
                         error);
  return std::move(*parsed);
}

/// The scale target's selector and replicas, from its scale subresource (as the controller
/// reads them, for any kind with one) or the flags.
void read_scale_target(const config::options& opts, cluster_reader& cluster, situation& s) {
  const auto& target = s.autoscaler.scale_target;
  const std::string what = target.kind + " " + s.autoscaler.namespace_ + "/" + target.name;
  std::optional<hpa::scale_target_state> state;
  std::string why = "no Kubernetes access (give --lister-kubeconfig, or run in a cluster)";
  if (cluster.available()) {
    auto scale =
        cluster.read(k8s::object_path(target.api_version.empty() ? "apps/v1" : target.api_version,
                                      target.plural(), s.autoscaler.namespace_, target.name) +
                         "/scale",
                     why);
    if (scale) {
      auto read = hpa::read_scale(*scale, why);
      if (read) state = *read;
    }
  }
  if (state) {
    s.pod_selector = state->selector;
    s.cluster.spec_replicas = state->spec_replicas;
    s.cluster.status_replicas = state->status_replicas;
    s.replicas_source = target.kind + " spec.replicas";
  } else if (!opts.pod_selector.empty()) {
    s.notes.push_back("the scale target " + what + " could not be read (" + why +
                      "): its pods are those of --selector");
  } else {
    throw cannot_explain("the scale target " + what + " could not be read: " + why +
                         "; give --selector (and --current-replicas) to explain without it");
  }
  if (!opts.pod_selector.empty()) {
    if (state && state->selector != opts.pod_selector)
      s.notes.push_back("--selector " + opts.pod_selector + " is used instead of the " +
                        target.kind + "'s selector " + state->selector);
    s.pod_selector = opts.pod_selector;
  }
  // The flag stands for both counts: a rollout's surge pods (status above spec) are the
  // target's to report.
  if (opts.current_replicas >= 0) {
    s.cluster.spec_replicas = s.cluster.status_replicas = opts.current_replicas;
    s.replicas_source = "--current-replicas";
  } else if (!state) {
    throw cannot_explain("the current replica count of " + what +
                         " is not known: give --current-replicas");
  }
}

/// The pods of the selector; nullopt (with a note) when they cannot be listed.
void list_pods(cluster_reader& cluster, situation& s) {
  if (!cluster.available()) {
    s.notes.push_back("the pods could not be listed: no Kubernetes access");
    return;
  }
  std::string why;
  const std::string path =
      "/api/v1/namespaces/" + adapters::http_client::url_encode(s.autoscaler.namespace_) +
      "/pods?labelSelector=" + adapters::http_client::url_encode(s.pod_selector);
  auto list = cluster.read(path, why);
  if (!list || !(*list)["items"].is_array()) {
    s.notes.push_back("the pods could not be listed: " + (list ? "no items" : why));
    return;
  }
  std::vector<hpa::pod_status> pods;
  for (const auto& item : (*list)["items"]) pods.push_back(hpa::read_pod_status(item));
  s.cluster.pods = std::move(pods);
}

// ---------------------------------------------------------------------------------------------
// Reading the metrics

/// The Status a request for the metric would get, as "HTTP 404 NotFound: <message>".
std::string status_text(const error_code& ec, const std::string& resource,
                        const std::string& metric) {
  const auto status = core::provider_error_status(ec, resource, metric);
  return "HTTP " + std::to_string(status.code) + " " + status.body.value("reason", "") + ": " +
         status.body.value("message", "");
}

/// An external item's name: its labels, "{namespace=inference,pod=triton-a}".
std::string labels_text(const core::label_map& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : ",") + k + "=" + v;
  return "{" + out + "}";
}

hpa::metric_reading read_metric(one_shot_backend& backend, const hpa::metric_spec& spec,
                                const situation& s) {
  hpa::metric_reading reading;
  if (spec.type == hpa::source_type::resource ||
      spec.type == hpa::source_type::container_resource) {
    reading.skipped =
        "Resource metrics come from metrics.k8s.io (metrics-server), which "
        "explain-hpa does not read: this metric's proposal is not counted";
    return reading;
  }
  std::string selector_error;
  auto selector = core::label_selector::parse(spec.selector, &selector_error);
  if (!selector) {
    reading.error = "invalid metric selector \"" + spec.selector + "\": " + selector_error;
    return reading;
  }
  const auto& ns = s.autoscaler.namespace_;
  if (spec.type == hpa::source_type::external) {
    auto items = backend.run(
        backend.rules().async_get_external_metric({ns, spec.name, std::move(*selector)}));
    if (!items) {
      reading.error = status_text(items.error(), "", spec.name);
      return reading;
    }
    for (const auto& item : *items)
      reading.values.emplace_back(labels_text(item.labels), item.value.milli_value());
    return reading;
  }
  core::custom_metric_query query{"pods", ns, "*", spec.name, std::move(*selector), std::nullopt};
  if (spec.type == hpa::source_type::object) {
    query.group_resource = spec.described_object.group_resource();
    query.name = spec.described_object.name;
    // A Namespace is cluster-scoped: the HPA's client asks for its own namespace,
    // /namespaces/NS/metrics/METRIC, whatever name the reference gives.
    if (query.group_resource == "namespaces") {
      query.namespace_.clear();
      query.name = ns;
    }
  } else if (!s.cluster.pods) {
    reading.error = "not read: the pods of the scale target could not be listed";
    return reading;
  } else {
    query.only_names.emplace();
    for (const auto& pod : *s.cluster.pods) query.only_names->push_back(pod.name);
  }
  const std::string resource = query.group_resource;
  auto values = backend.run(backend.rules().async_get_metric(std::move(query)));
  if (!values) {
    reading.error = status_text(values.error(), resource, spec.name);
    return reading;
  }
  for (const auto& value : *values)
    reading.values.emplace_back(value.described_object.name, value.value.milli_value());
  return reading;
}

// ---------------------------------------------------------------------------------------------
// Printing

std::string target_text(const hpa::metric_spec& m) {
  if (m.target == hpa::target_type::utilization)
    return "Utilization " + std::to_string(m.target_utilization) + "%";
  return std::string(hpa::target_name(m.target)) + " " + m.target_quantity.to_string();
}

/// A number for the table: four decimals at most ("0.8969", "0.1", "2").
std::string number_text(double r) { return hpa::ratio_text(r, 4); }

std::string metric_title(const hpa::metric_spec& m) {
  std::string title = std::string(hpa::source_name(m.type)) + " " + m.name;
  if (m.type == hpa::source_type::object)
    title += " of " + m.described_object.kind + " " + m.described_object.name;
  if (m.type == hpa::source_type::container_resource) title += " of container " + m.container;
  return title;
}

std::string values_text(const hpa::metric_reading& r) {
  std::string out;
  for (const auto& [name, milli] : r.values)
    out += (out.empty() ? "" : ", ") + name + " " + hpa::milli_text(milli);
  return out.empty() ? "(none)" : out;
}

void print_table(const situation& s, const std::vector<hpa::metric_reading>& readings,
                 const hpa::decision& d, const hpa::tolerances& tol) {
  const auto& a = s.autoscaler;
  std::ostringstream out;
  out << "HorizontalPodAutoscaler " << a.namespace_ << "/" << a.name << " (" << a.api_version
      << ") scales " << a.scale_target.kind << " " << a.scale_target.name << "\n";
  out << "  current replicas " << s.cluster.spec_replicas << " (" << s.replicas_source
      << "), minReplicas " << a.min_replicas << ", maxReplicas " << a.max_replicas << ", tolerance "
      << number_text(tol.scale_down)
      << (tol.scale_up != tol.scale_down ? " down / " + number_text(tol.scale_up) + " up" : "")
      << "\n";
  out << "  pods: ";
  if (s.cluster.pods) {
    std::size_t ready = 0;
    for (const auto& p : *s.cluster.pods) ready += p.phase == "Running" && p.ready;
    out << s.cluster.pods->size() << " selected by "
        << (s.pod_selector.empty() ? "<none>" : s.pod_selector) << ", " << ready
        << " running and ready\n";
  } else {
    out << "not known\n";
  }
  for (std::size_t i = 0; i < a.metrics.size(); ++i) {
    const auto& m = a.metrics[i];
    const auto& o = d.metrics[i];
    out << "\nMetric " << i + 1 << ": " << metric_title(m) << "\n";
    out << "  selector:  " << (m.selector.empty() ? "<none>" : m.selector) << "\n";
    if (!o.skipped) out << "  values:    " << values_text(readings[i]) << "\n";
    if (o.current_milli) out << "  current:   " << hpa::milli_text(*o.current_milli) << "\n";
    out << "  target:    " << target_text(m) << "\n";
    if (o.ratio) out << "  ratio:     " << number_text(*o.ratio) << "\n";
    out << "  proposal:  "
        << (o.valid     ? std::to_string(o.proposal)
            : o.skipped ? "not counted"
                        : "none (error)")
        << "\n";
    out << "  " << (o.valid || o.skipped ? "reason:    " : "error:     ") << o.reason << "\n";
  }
  out << "\nDesired replicas: " << d.desired
      << (d.able_to_scale ? "" : " (the controller would not scale)") << "\n  " << d.reason << "\n";
  if (!s.notes.empty() || !d.unknowns.empty()) out << "Not known or assumed here:\n";
  for (const auto& note : s.notes) out << "  - " << note << "\n";
  for (const auto& unknown : d.unknowns) out << "  - " << unknown << "\n";
  std::cout << out.str();
}

void print_json(const situation& s, const std::vector<hpa::metric_reading>& readings,
                const hpa::decision& d, const hpa::tolerances& tol) {
  const auto& a = s.autoscaler;
  json metrics = json::array();
  for (std::size_t i = 0; i < a.metrics.size(); ++i) {
    const auto& m = a.metrics[i];
    const auto& o = d.metrics[i];
    json values = json::array();
    for (const auto& [name, milli] : readings[i].values)
      values.push_back({{"name", name}, {"value", hpa::milli_text(milli)}});
    json target = {{"type", hpa::target_name(m.target)}};
    if (m.target == hpa::target_type::utilization)
      target["averageUtilization"] = m.target_utilization;
    else
      target[m.target == hpa::target_type::value ? "value" : "averageValue"] =
          m.target_quantity.to_string();
    json entry = {{"type", hpa::source_name(m.type)},
                  {"name", m.name},
                  {"selector", m.selector},
                  {"target", target},
                  {"values", values},
                  {"status", o.valid     ? "ok"
                             : o.skipped ? "skipped"
                                         : "error"},
                  {"reason", o.reason}};
    if (m.type == hpa::source_type::object)
      entry["describedObject"] = {{"apiVersion", m.described_object.api_version},
                                  {"kind", m.described_object.kind},
                                  {"name", m.described_object.name}};
    entry["current"] = o.current_milli ? json(hpa::milli_text(*o.current_milli)) : json(nullptr);
    entry["ratio"] = o.ratio && std::isfinite(*o.ratio) ? json(*o.ratio) : json(nullptr);
    entry["proposal"] = o.valid ? json(o.proposal) : json(nullptr);
    metrics.push_back(std::move(entry));
  }
  json pods = nullptr;
  if (s.cluster.pods) {
    pods = json::array();
    for (const auto& p : *s.cluster.pods)
      pods.push_back(
          {{"name", p.name}, {"phase", p.phase}, {"ready", p.ready}, {"deleted", p.deleted}});
  }
  json out = {
      {"hpa", {{"apiVersion", a.api_version}, {"namespace", a.namespace_}, {"name", a.name}}},
      {"scaleTargetRef",
       {{"apiVersion", a.scale_target.api_version},
        {"kind", a.scale_target.kind},
        {"name", a.scale_target.name}}},
      {"podSelector", s.pod_selector},
      {"pods", pods},
      {"currentReplicas", s.cluster.spec_replicas},
      {"currentReplicasFrom", s.replicas_source},
      {"statusReplicas", s.cluster.status_replicas},
      {"minReplicas", a.min_replicas},
      {"maxReplicas", a.max_replicas},
      {"tolerance", {{"scaleDown", tol.scale_down}, {"scaleUp", tol.scale_up}}},
      {"metrics", metrics},
      {"desiredReplicas", d.desired},
      {"ableToScale", d.able_to_scale},
      {"decidedBy", d.deciding_metric ? json(*d.deciding_metric) : json(nullptr)},
      {"reason", d.reason},
      {"notes", s.notes},
      {"unknowns", d.unknowns}};
  // Names and messages come from the cluster and may hold invalid UTF-8: replaced, not thrown.
  std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

int explain(const config::options& opts) {
  one_shot_backend backend(opts);
  cluster_reader cluster(backend, opts.lister_kubeconfig);
  situation s;
  s.autoscaler = read_autoscaler(opts, cluster);
  if (s.autoscaler.namespace_.empty()) {
    // kubectl would use its context's namespace, which this does not read.
    s.autoscaler.namespace_ = "default";
    s.notes.push_back("the manifest names no namespace: explained in \"default\"");
  }
  read_scale_target(opts, cluster, s);
  list_pods(cluster, s);

  auto rules = load_rules_or_explain(opts.config_file);
  if (!rules) return kNothingToExplain;
  if (!backend.discover(std::move(*rules)))
    throw cannot_explain("discovery failed: Prometheus at " + opts.prometheus_url +
                         " did not answer every series query (the warning above says why)");
  std::vector<hpa::metric_reading> readings;
  for (const auto& spec : s.autoscaler.metrics) readings.push_back(read_metric(backend, spec, s));

  hpa::tolerances tol{opts.tolerance, opts.tolerance};
  if (const auto& behavior = s.autoscaler.behavior) {
    tol.scale_down = behavior->scale_down.tolerance.value_or(tol.scale_down);
    tol.scale_up = behavior->scale_up.tolerance.value_or(tol.scale_up);
  }
  const auto decision = hpa::decide(s.autoscaler, readings, s.cluster, tol);
  if (opts.output == "json")
    print_json(s, readings, decision, tol);
  else
    print_table(s, readings, decision, tol);

  // The controller fails on these metrics too: their reasons are its errors.
  int status = kEveryMetricRead;
  for (std::size_t i = 0; i < decision.metrics.size(); ++i)
    if (!decision.metrics[i].valid && !decision.metrics[i].skipped) {
      std::cerr << "Error: " << metric_title(s.autoscaler.metrics[i]) << ": "
                << decision.metrics[i].reason << "\n";
      status = kMetricUnreadable;
    }
  return status;
}

}  // namespace

int run_explain_hpa(const config::options& opts) try {
  return explain(opts);
} catch (const cannot_explain& e) {
  std::cerr << "Error: " << e.what() << "\n";
  return kNothingToExplain;
} catch (const config::usage_error& e) {
  std::cerr << "Error: " << e.what() << "\n";
  return kUsage;
} catch (const std::exception& e) {
  std::cerr << "Error: " << e.what() << "\n";
  return kNothingToExplain;
}

}  // namespace gma::cli
