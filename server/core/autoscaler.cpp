#include "server/core/autoscaler.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>

namespace gma::core::hpa {
namespace {

using json = nlohmann::json;

/// "path.key", or "key" at the top.
std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

/// Reading one object, with the path of the field being read for error messages. The first
/// error wins; later reads are no-ops that return defaults.
class reader {
 public:
  explicit reader(std::string& error) : error_(error) {}

  bool failed() const { return !error_.empty(); }
  void fail(const std::string& path, const std::string& why) {
    if (error_.empty()) error_ = path + ": " + why;
  }

  /// The member `key` of `parent`, or nullptr when absent or null.
  static const json* member(const json& parent, const char* key) {
    if (!parent.is_object()) return nullptr;
    const auto it = parent.find(key);
    return it == parent.end() || it->is_null() ? nullptr : &*it;
  }

  std::string text(const json& parent, const char* key, const std::string& path,
                   bool required = false) {
    const json* value = member(parent, key);
    if (!value) {
      if (required) fail(join(path, key), "required");
      return "";
    }
    if (!value->is_string()) {
      fail(join(path, key), "expected a string");
      return "";
    }
    return value->get<std::string>();
  }

  std::optional<std::int32_t> integer(const json& parent, const char* key,
                                      const std::string& path) {
    const json* value = member(parent, key);
    if (!value) return std::nullopt;
    if (!value->is_number_integer() || value->get<std::int64_t>() < INT32_MIN ||
        value->get<std::int64_t>() > INT32_MAX) {
      fail(join(path, key), "expected a 32-bit integer");
      return std::nullopt;
    }
    return static_cast<std::int32_t>(value->get<std::int64_t>());
  }

  /// A resource.Quantity field: a string, or a number as the API server also accepts.
  std::optional<quantity> amount(const json& parent, const char* key, const std::string& path) {
    const json* value = member(parent, key);
    if (!value) return std::nullopt;
    const std::string text = value->is_string() ? value->get<std::string>() : value->dump();
    auto parsed = quantity::parse(text);
    if (!parsed || !(value->is_string() || value->is_number())) {
      fail(join(path, key), "\"" + text + "\" is not a quantity");
      return std::nullopt;
    }
    return *parsed;
  }

  std::string selector(const json& parent, const char* key, const std::string& path) {
    const json* value = member(parent, key);
    if (!value) return "";
    std::string why;
    auto text = selector_string(*value, why);
    if (!text) {
      fail(join(path, key), why);
      return "";
    }
    return *text;
  }

 private:
  std::string& error_;
};

object_reference read_reference(reader& r, const json& parent, const char* key,
                                const std::string& path) {
  const std::string here = join(path, key);
  const json* ref = reader::member(parent, key);
  if (!ref) {
    r.fail(here, "required");
    return {};
  }
  return {r.text(*ref, "apiVersion", here), r.text(*ref, "kind", here, true),
          r.text(*ref, "name", here, true)};
}

/// `target` of autoscaling/v2 and v2beta2: {type, value | averageValue | averageUtilization}.
void read_target(reader& r, const json& source, const std::string& path, metric_spec& m) {
  const std::string here = path + ".target";
  const json* target = reader::member(source, "target");
  if (!target) return r.fail(here, "required");
  const std::string type = r.text(*target, "type", here, true);
  std::optional<quantity> amount;
  if (type == "Value") {
    m.target = target_type::value;
    amount = r.amount(*target, "value", here);
  } else if (type == "AverageValue") {
    m.target = target_type::average_value;
    amount = r.amount(*target, "averageValue", here);
  } else if (type == "Utilization") {
    m.target = target_type::utilization;
    const auto percent = r.integer(*target, "averageUtilization", here);
    if (!percent && !r.failed()) r.fail(here + ".averageUtilization", "required");
    m.target_utilization = percent.value_or(0);
    return;
  } else {
    return r.fail(here + ".type",
                  "must be Value, AverageValue or Utilization, not \"" + type + "\"");
  }
  if (!amount && !r.failed())
    r.fail(here + "." + (m.target == target_type::value ? "value" : "averageValue"),
           "required for type " + type);
  if (amount) m.target_quantity = *amount;
}

/// `metric: {name, selector}` of v2 and v2beta2.
void read_identifier(reader& r, const json& source, const std::string& path, metric_spec& m) {
  const std::string here = path + ".metric";
  const json* metric = reader::member(source, "metric");
  if (!metric) return r.fail(here, "required");
  m.name = r.text(*metric, "name", here, true);
  m.selector = r.selector(*metric, "selector", here);
}

metric_spec read_v2_metric(reader& r, const json& entry, const std::string& path) {
  metric_spec m;
  const std::string type = r.text(entry, "type", path, true);
  const auto source_of = [&](const char* key) -> const json* {
    const json* source = reader::member(entry, key);
    if (!source) r.fail(join(path, key), "required for type " + type);
    return source;
  };
  if (type == "Pods") {
    m.type = source_type::pods;
    if (const json* s = source_of("pods")) {
      read_identifier(r, *s, path + ".pods", m);
      read_target(r, *s, path + ".pods", m);
    }
  } else if (type == "Object") {
    m.type = source_type::object;
    if (const json* s = source_of("object")) {
      m.described_object = read_reference(r, *s, "describedObject", path + ".object");
      read_identifier(r, *s, path + ".object", m);
      read_target(r, *s, path + ".object", m);
    }
  } else if (type == "External") {
    m.type = source_type::external;
    if (const json* s = source_of("external")) {
      read_identifier(r, *s, path + ".external", m);
      read_target(r, *s, path + ".external", m);
    }
  } else if (type == "Resource" || type == "ContainerResource") {
    const bool container = type == "ContainerResource";
    m.type = container ? source_type::container_resource : source_type::resource;
    const char* key = container ? "containerResource" : "resource";
    if (const json* s = source_of(key)) {
      m.name = r.text(*s, "name", join(path, key), true);
      if (container) m.container = r.text(*s, "container", join(path, key), true);
      read_target(r, *s, join(path, key), m);
    }
  } else {
    r.fail(path + ".type", "unknown metric source type \"" + type + "\"");
  }
  return m;
}

/// autoscaling/v2beta1: targets are fields of the source (targetAverageValue, targetValue,
/// targetAverageUtilization) and selectors are `selector` or `metricSelector`.
metric_spec read_v2beta1_metric(reader& r, const json& entry, const std::string& path) {
  metric_spec m;
  const std::string type = r.text(entry, "type", path, true);
  const auto pick_target = [&](const json& s, const std::string& here) {
    if (auto v = r.amount(s, "targetValue", here)) {
      m.target = target_type::value;
      m.target_quantity = *v;
    } else if (auto a = r.amount(s, "targetAverageValue", here)) {
      m.target = target_type::average_value;
      m.target_quantity = *a;
    } else if (auto u = r.integer(s, "targetAverageUtilization", here)) {
      m.target = target_type::utilization;
      m.target_utilization = *u;
    } else if (!r.failed()) {
      r.fail(here, "needs targetValue, targetAverageValue or targetAverageUtilization");
    }
  };
  if (type == "Pods" || type == "Object" || type == "External") {
    const char* key = type == "Pods" ? "pods" : type == "Object" ? "object" : "external";
    const std::string here = join(path, key);
    const json* s = reader::member(entry, key);
    if (!s) {
      r.fail(here, "required for type " + type);
      return m;
    }
    m.type = type == "Pods"     ? source_type::pods
             : type == "Object" ? source_type::object
                                : source_type::external;
    m.name = r.text(*s, "metricName", here, true);
    m.selector =
        r.selector(*s, m.type == source_type::external ? "metricSelector" : "selector", here);
    if (m.type == source_type::object) {
      m.described_object = read_reference(r, *s, "target", here);
      // v2beta1's Object metric has targetValue, and averageValue for a per-pod target.
      if (auto a = r.amount(*s, "averageValue", here)) {
        m.target = target_type::average_value;
        m.target_quantity = *a;
        return m;
      }
    }
    pick_target(*s, here);
  } else if (type == "Resource" || type == "ContainerResource") {
    const bool container = type == "ContainerResource";
    const char* key = container ? "containerResource" : "resource";
    const std::string here = join(path, key);
    const json* s = reader::member(entry, key);
    if (!s) {
      r.fail(here, "required for type " + type);
      return m;
    }
    m.type = container ? source_type::container_resource : source_type::resource;
    m.name = r.text(*s, "name", here, true);
    if (container) m.container = r.text(*s, "container", here, true);
    pick_target(*s, here);
  } else {
    r.fail(path + ".type", "unknown metric source type \"" + type + "\"");
  }
  return m;
}

scaling_rules read_rules(reader& r, const json& behavior, const char* key, bool scale_up) {
  const std::string here = std::string("spec.behavior.") + key;
  scaling_rules rules;
  // The defaults of k8s.io/kubernetes pkg/apis/autoscaling/v2/defaults.go.
  if (scale_up) {
    rules.policies = {{"Pods", 4, 15}, {"Percent", 100, 15}};
  } else {
    rules.stabilization_window_seconds = 300;
    rules.policies = {{"Percent", 100, 15}};
  }
  const json* given = reader::member(behavior, key);
  if (!given) return rules;
  if (auto window = r.integer(*given, "stabilizationWindowSeconds", here))
    rules.stabilization_window_seconds = *window;
  if (auto select = r.text(*given, "selectPolicy", here); !select.empty()) {
    if (select != "Max" && select != "Min" && select != "Disabled")
      r.fail(here + ".selectPolicy", "must be Max, Min or Disabled");
    rules.select_policy = select;
  }
  if (const json* tolerance = reader::member(*given, "tolerance")) {
    const std::string text =
        tolerance->is_string() ? tolerance->get<std::string>() : tolerance->dump();
    const auto parsed = quantity::parse(text);
    double plain = 0;  // the controller reads it with AsApproximateFloat64: "0.0125" exactly
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), plain);
    if (!parsed || !(tolerance->is_string() || tolerance->is_number()))
      r.fail(here + ".tolerance", "\"" + text + "\" is not a quantity");
    else if (ec == std::errc() && end == text.data() + text.size())
      rules.tolerance = plain;
    else
      rules.tolerance = static_cast<double>(parsed->milli_value()) / 1000.0;
  }
  if (const json* policies = reader::member(*given, "policies")) {
    rules.policies.clear();
    if (!policies->is_array()) r.fail(here + ".policies", "expected a list");
    for (std::size_t i = 0; policies->is_array() && i < policies->size(); ++i) {
      const std::string at = here + ".policies[" + std::to_string(i) + "]";
      scaling_rules::policy p{r.text((*policies)[i], "type", at, true),
                              r.integer((*policies)[i], "value", at).value_or(0),
                              r.integer((*policies)[i], "periodSeconds", at).value_or(0)};
      if (p.type != "Pods" && p.type != "Percent" && !r.failed())
        r.fail(at + ".type", "must be Pods or Percent");
      rules.policies.push_back(std::move(p));
    }
  }
  return rules;
}

}  // namespace

const char* source_name(source_type type) {
  switch (type) {
    case source_type::pods:
      return "Pods";
    case source_type::object:
      return "Object";
    case source_type::external:
      return "External";
    case source_type::resource:
      return "Resource";
    case source_type::container_resource:
      return "ContainerResource";
  }
  return "";
}

const char* target_name(target_type type) {
  switch (type) {
    case target_type::value:
      return "Value";
    case target_type::average_value:
      return "AverageValue";
    case target_type::utilization:
      return "Utilization";
  }
  return "";
}

std::string object_reference::group() const {
  const auto slash = api_version.find('/');
  return slash == std::string::npos ? "" : api_version.substr(0, slash);
}

std::string object_reference::plural() const {
  std::string plural;
  for (char c : kind) plural += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (plural.ends_with("s"))
    plural += "es";
  else if (plural.ends_with("y"))
    plural = plural.substr(0, plural.size() - 1) + "ies";
  else
    plural += "s";
  return plural;
}

std::string object_reference::group_resource() const {
  const std::string g = group();
  return g.empty() ? plural() : plural() + "." + g;
}

result<std::string> selector_string(const json& selector, std::string& error) {
  if (!selector.is_object()) {
    error = "expected a label selector object";
    return errc::invalid_selector;
  }
  std::vector<std::pair<std::string, std::string>> requirements;  // key, text
  if (const json* labels = reader::member(selector, "matchLabels"); labels && labels->is_object()) {
    for (const auto& [key, value] : labels->items()) {
      if (!value.is_string()) {
        error = "matchLabels." + key + ": expected a string";
        return errc::invalid_selector;
      }
      requirements.emplace_back(key, key + "=" + value.get<std::string>());
    }
  }
  if (const json* labels = reader::member(selector, "matchLabels");
      labels && !labels->is_object()) {
    error = "matchLabels: expected a map";
    return errc::invalid_selector;
  }
  if (const json* expressions = reader::member(selector, "matchExpressions")) {
    if (!expressions->is_array()) {
      error = "matchExpressions: expected a list";
      return errc::invalid_selector;
    }
    for (const auto& e : *expressions) {
      const json* key_value = reader::member(e, "key");
      const json* op_value = reader::member(e, "operator");
      if (!key_value || !key_value->is_string() || !op_value || !op_value->is_string()) {
        error = "matchExpressions: each needs a key and an operator";
        return errc::invalid_selector;
      }
      const std::string key = key_value->get<std::string>();
      const std::string op = op_value->get<std::string>();
      std::vector<std::string> values;
      if (const json* v = reader::member(e, "values"); v && v->is_array())
        for (const auto& item : *v)
          if (item.is_string()) values.push_back(item.get<std::string>());
      std::sort(values.begin(), values.end());
      std::string list;
      for (const auto& v : values) list += (list.empty() ? "" : ",") + v;
      if (op == "In")
        requirements.emplace_back(key, key + " in (" + list + ")");
      else if (op == "NotIn")
        requirements.emplace_back(key, key + " notin (" + list + ")");
      else if (op == "Exists")
        requirements.emplace_back(key, key);
      else if (op == "DoesNotExist")
        requirements.emplace_back(key, "!" + key);
      else {
        error = "\"" + op + "\" is not a valid label selector operator";
        return errc::invalid_selector;
      }
    }
  }
  std::stable_sort(requirements.begin(), requirements.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (const auto& [key, text] : requirements) out += (out.empty() ? "" : ",") + text;
  return out;
}

result<scale_target_state> read_scale(const json& scale, std::string& error) {
  error.clear();
  reader r(error);
  scale_target_state state;
  // Both replica counts are omitempty in some versions: absent means 0.
  if (const json* spec = reader::member(scale, "spec"))
    state.spec_replicas = r.integer(*spec, "replicas", "spec").value_or(0);
  if (const json* status = reader::member(scale, "status")) {
    state.status_replicas = r.integer(*status, "replicas", "status").value_or(0);
    state.selector = r.text(*status, "selector", "status");
  }
  if (!r.failed() && state.selector.empty())
    r.fail("status.selector", "empty: the HPA controller needs it to select the target's pods");
  if (r.failed()) return errc::bad_request;
  return state;
}

pod_status read_pod_status(const json& pod) {
  pod_status out;
  const auto text = [](const json* parent, const char* key) {
    const json* value = parent ? reader::member(*parent, key) : nullptr;
    return value && value->is_string() ? value->get<std::string>() : std::string();
  };
  const json* metadata = reader::member(pod, "metadata");
  out.name = text(metadata, "name");
  out.deleted = metadata && reader::member(*metadata, "deletionTimestamp") != nullptr;
  out.ready = false;
  const json* status = reader::member(pod, "status");
  out.phase = text(status, "phase");
  if (const json* conditions = status ? reader::member(*status, "conditions") : nullptr;
      conditions && conditions->is_array())
    for (const auto& c : *conditions)
      if (text(&c, "type") == "Ready") out.ready = text(&c, "status") == "True";
  return out;
}

result<autoscaler> parse_autoscaler(const json& object, std::string& error) try {
  error.clear();
  reader r(error);
  autoscaler hpa;
  hpa.api_version = r.text(object, "apiVersion", "", true);
  const std::string kind = r.text(object, "kind", "");
  if (!r.failed() && kind != "HorizontalPodAutoscaler")
    r.fail("kind", "expected HorizontalPodAutoscaler, not \"" + kind + "\"");
  const bool v2beta1 = hpa.api_version == "autoscaling/v2beta1";
  if (!r.failed() && hpa.api_version != "autoscaling/v2" &&
      hpa.api_version != "autoscaling/v2beta2" && !v2beta1)
    r.fail("apiVersion", "\"" + hpa.api_version +
                             "\" is not supported: use autoscaling/v2 (or v2beta2, v2beta1); "
                             "autoscaling/v1 has no metrics list");
  if (r.failed()) return errc::bad_request;
  const json* metadata = reader::member(object, "metadata");
  if (metadata) {
    hpa.name = r.text(*metadata, "name", "metadata");
    hpa.namespace_ = r.text(*metadata, "namespace", "metadata");
  }
  const json* spec = reader::member(object, "spec");
  if (!spec) {
    r.fail("spec", "required");
    return errc::bad_request;
  }
  hpa.scale_target = read_reference(r, *spec, "scaleTargetRef", "spec");
  hpa.min_replicas = r.integer(*spec, "minReplicas", "spec").value_or(1);
  if (auto max = r.integer(*spec, "maxReplicas", "spec"))
    hpa.max_replicas = *max;
  else
    r.fail("spec.maxReplicas", "required");
  if (const json* metrics = reader::member(*spec, "metrics")) {
    if (!metrics->is_array()) r.fail("spec.metrics", "expected a list");
    for (std::size_t i = 0; metrics->is_array() && i < metrics->size() && !r.failed(); ++i) {
      const std::string path = "spec.metrics[" + std::to_string(i) + "]";
      hpa.metrics.push_back(v2beta1 ? read_v2beta1_metric(r, (*metrics)[i], path)
                                    : read_v2_metric(r, (*metrics)[i], path));
    }
  }
  if (hpa.metrics.empty()) {
    metric_spec cpu;
    cpu.type = source_type::resource;
    cpu.name = "cpu";
    cpu.target = target_type::utilization;
    cpu.target_utilization = 80;
    hpa.metrics.push_back(cpu);
  }
  if (const json* behavior = reader::member(*spec, "behavior"))
    hpa.behavior = behavior_rules{read_rules(r, *behavior, "scaleUp", true),
                                  read_rules(r, *behavior, "scaleDown", false)};
  if (!r.failed() && hpa.min_replicas > hpa.max_replicas)
    r.fail("spec.minReplicas", "must not be greater than maxReplicas");
  if (r.failed()) return errc::bad_request;
  return hpa;
} catch (const json::exception& e) {
  // A shape the reads above did not expect (a list where a map belongs, ...).
  error = std::string("not a HorizontalPodAutoscaler this reads: ") + e.what();
  return errc::bad_request;
}

}  // namespace gma::core::hpa
