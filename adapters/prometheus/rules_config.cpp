#include "adapters/prometheus/rules_config.hpp"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "server/core/strings.hpp"

namespace gma::adapters::prometheus {
namespace {

// Resources whose plural is not just "+s" (a RESTMapper would know them all).
const std::map<std::string, std::string>& irregular_plurals() {
  static const std::map<std::string, std::string> table = {
      {"ingress", "ingresses"},
      {"endpoints", "endpoints"},
      {"networkpolicy", "networkpolicies"},
      {"podsecuritypolicy", "podsecuritypolicies"},
      {"priorityclass", "priorityclasses"},
      {"storageclass", "storageclasses"},
      {"ingressclass", "ingressclasses"},
      {"runtimeclass", "runtimeclasses"},
      {"status", "statuses"}};
  return table;
}

const std::set<std::string> kQueryFields = {"Series", "LabelMatchers", "GroupBy", "GroupBySlice",
                                            "LabelValuesByName"};
const std::set<std::string> kResourceFields = {"Group", "Resource"};

/// A group reference of Go's Regexp.Expand as an index: "3" is 3, anything that is not a
/// number (or too large for one) is -1.
int group_number(const std::string& name) {
  int index = -1;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), index);
  return ec == std::errc() && end == name.data() + name.size() && index >= 0 ? index : -1;
}

/// What prometheus-adapter's YAML reader (yaml.v2, UnmarshalStrict) does that yaml-cpp 0.7 does
/// not: a plain "<<" key merges a mapping, or a list of mappings, into the mapping that holds it
/// (the mapping's own keys win, then the earlier of the merged mappings), and a key set twice in
/// one mapping is an error. Works in place on the tree, whose nodes keep their line numbers.
class yaml_normalizer {
 public:
  explicit yaml_normalizer(std::string file) : file_(std::move(file)) {}

  void normalize(YAML::Node node, int depth = 0) {
    if (!node.IsMap() && !node.IsSequence()) return;
    if (depth > kMaxDepth)
      fail(node, "nested deeper than " + std::to_string(kMaxDepth) + " levels");
    // A node an alias shares is the same node, at the same place in the text: visiting each
    // place once keeps an alias-heavy file (a "billion laughs") linear. No two mappings or
    // lists start at the same byte.
    if (const int pos = node.Mark().pos; pos >= 0 && !seen_.insert(pos).second) return;
    if (node.IsSequence()) {
      for (auto child : node) normalize(child, depth + 1);
      return;
    }
    std::map<std::string, int> lines;  // key -> the line that set it
    std::vector<YAML::Node> merged;
    for (auto kv : node) {
      if (!kv.first.IsScalar()) continue;  // the loader refuses such keys by name
      const std::string key = kv.first.Scalar();
      const int line = kv.first.Mark().line + 1;
      if (const auto [first, inserted] = lines.emplace(key, line); !inserted)
        fail(kv.first, "key \"" + key + "\" already set in this mapping at line " +
                           std::to_string(first->second));
      // Only a plain << merges; a quoted "<<" is an ordinary key.
      if (key == "<<" && kv.first.Tag() != "!") {
        if (kv.second.IsMap()) {
          merged.push_back(kv.second);
        } else if (kv.second.IsSequence()) {
          for (auto item : kv.second) {
            if (!item.IsMap()) fail(item, "a merge (<<) takes a mapping or a list of mappings");
            merged.push_back(item);
          }
        } else {
          fail(kv.second, "a merge (<<) takes a mapping or a list of mappings");
        }
        continue;
      }
      normalize(kv.second, depth + 1);
    }
    if (merged.empty()) return;
    lines.erase("<<");
    node.remove("<<");
    for (auto& source : merged) {
      normalize(source, depth + 1);  // its own merges first
      for (auto kv : source)
        if (lines.emplace(kv.first.Scalar(), kv.first.Mark().line + 1).second)
          node[kv.first] = kv.second;
    }
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const YAML::Node& at, const std::string& why) const {
    const int line = at.Mark().line >= 0 ? at.Mark().line + 1 : 0;
    throw config_error(file_ + ":" + std::to_string(line) + ": " + why);
  }

  std::string file_;
  std::set<int> seen_;  ///< where the mappings and lists already visited start
};

class loader {
 public:
  loader(std::string file, std::vector<std::string>* warnings)
      : file_(std::move(file)), warnings_(warnings) {}

  [[noreturn]] void fail(const YAML::Node& at, const std::string& why) const {
    const int line = at.Mark().line >= 0 ? at.Mark().line + 1 : 0;
    throw config_error(file_ + ":" + std::to_string(line) + ": " + why);
  }

  /// Every $N, ${N} and ${name} of name.as must name a group of name.matches: Go would expand
  /// a missing one to nothing and serve a metric with a truncated or empty name.
  void check_name_references(const YAML::Node& at, const std::string& name_as,
                             const re2::RE2& matches) const {
    const int groups = matches.NumberOfCapturingGroups();
    const auto& names = matches.NamedCapturingGroups();
    expand_template(name_as, [&](const std::string& ref) {
      const int index = group_number(ref);
      const bool numeric = !ref.empty() && std::all_of(ref.begin(), ref.end(), ::isdigit);
      if (numeric && (index < 0 || index > groups))
        fail(at, "name.as refers to group " + ref + ", but name.matches has " +
                     std::to_string(groups) + " capture groups");
      if (!numeric && !names.contains(ref))
        fail(at, "name.as refers to the group \"" + ref + "\", which name.matches does not name");
      return std::string();
    });
  }

  void expect_keys(const YAML::Node& map, const std::set<std::string>& allowed,
                   const std::string& where) const {
    if (!map.IsMap()) fail(map, where + " must be a mapping");
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      if (!allowed.contains(key)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        fail(kv.first,
             "unknown key \"" + key + "\" in " + where + " (expected one of: " + list + ")");
      }
    }
  }

  std::string string_at(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) fail(node, what + " must be a string");
    return node.as<std::string>();
  }

  bool bool_at(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) fail(node, what + " must be true or false");
    const auto v = node.as<std::string>();
    if (v == "true" || v == "True" || v == "TRUE") return true;
    if (v == "false" || v == "False" || v == "FALSE") return false;
    fail(node, what + " must be true or false, not \"" + v + "\"");
  }

  std::shared_ptr<const re2::RE2> regex_at(const YAML::Node& node, const std::string& what) const {
    const std::string pattern = string_at(node, what);
    re2::RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_shared<const re2::RE2>(pattern, options);
    if (!re->ok()) fail(node, what + " is not a valid regular expression: " + re->error());
    return re;
  }

  go_template template_at(const YAML::Node& node, const std::string& what,
                          const std::set<std::string>& fields) const {
    std::string error;
    // The file and line first, then Go's error, which names the template (its key), the line
    // and column within it: "config.yaml:4: template: metricsQuery:1:4: unclosed action".
    auto t = go_template::parse(string_at(node, what), fields, &error, what);
    if (!t) fail(node, error);
    return *t;
  }

  resource_mapping resources_at(const YAML::Node& node) const {
    resource_mapping m;
    if (!node) return m;
    expect_keys(node, {"overrides", "template", "namespaced"}, "resources");
    if (const auto overrides = node["overrides"]) {
      if (!overrides.IsMap()) fail(overrides, "resources.overrides must be a mapping");
      for (const auto& kv : overrides) {
        const auto label = kv.first.as<std::string>();
        expect_keys(kv.second, {"group", "resource"}, "resources.overrides." + label);
        if (!kv.second["resource"])
          fail(kv.second, "resources.overrides." + label + " needs a resource");
        group_resource gr{kv.second["group"] ? string_at(kv.second["group"], "group") : "",
                          plural_resource(string_at(kv.second["resource"], "resource"))};
        m.overrides[label] = gr;
      }
    }
    if (const auto templ = node["template"]) {
      m.label_template = template_at(templ, "resources.template", kResourceFields);
      if (!m.label_template->uses("Resource"))
        fail(templ, "resources.template must use <<.Resource>>");
      // A label matches the template when it renders the template with these groups.
      const std::string pattern =
          "^" +
          m.label_template->render({{"Group", std::string("(?P<group>.+?)")},
                                    {"Resource", std::string("(?P<resource>.+?)")}}) +
          "$";
      auto re = std::make_shared<const re2::RE2>(pattern);
      if (!re->ok())
        fail(templ, "resources.template does not make a valid pattern: " + re->error());
      // resource_for_label reads the resource from this group. uses() also counts an index of
      // .Resource (which renders nothing), and the pattern can hide the group in a character
      // class or \Q...\E: refused here, such a template threw std::out_of_range in discovery.
      if (!re->NamedCapturingGroups().contains("resource"))
        fail(templ, "resources.template must use <<.Resource>> where it can match a label's text");
      m.template_regex = std::move(re);
    }
    if (const auto namespaced = node["namespaced"])
      m.namespaced = bool_at(namespaced, "resources.namespaced");
    return m;
  }

  /// The rule re-emitted as YAML, hashed: the same text gives the same fingerprint, whatever
  /// its line.
  static std::string fingerprint_of(const YAML::Node& node, const char* kind) {
    YAML::Emitter out;
    out << node;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016zx", std::hash<std::string_view>{}(out.c_str()));
    return std::string(kind) + "-" + hex;
  }

  discovery_rule rule_at(const YAML::Node& node, bool external) const {
    expect_keys(node, {"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery"},
                external ? "an external rule" : "a rule");
    discovery_rule r;
    r.line = node.Mark().line + 1;
    r.fingerprint = fingerprint_of(node, external ? "external" : "custom");
    if (!node["seriesQuery"]) fail(node, "the rule has no seriesQuery");
    r.series_query = string_at(node["seriesQuery"], "seriesQuery");
    if (r.series_query.empty()) fail(node["seriesQuery"], "seriesQuery is empty");
    if (const auto filters = node["seriesFilters"]) {
      if (!filters.IsSequence()) fail(filters, "seriesFilters must be a list");
      for (const auto& f : filters) {
        expect_keys(f, {"is", "isNot"}, "a series filter");
        if (f["is"] && f["isNot"]) fail(f, "a series filter has both is and isNot");
        if (!f["is"] && !f["isNot"]) fail(f, "a series filter needs is or isNot");
        r.filters.push_back(
            f["is"] ? series_filter{true, regex_at(f["is"], "seriesFilters.is")}
                    : series_filter{false, regex_at(f["isNot"], "seriesFilters.isNot")});
      }
    }
    r.resources = resources_at(node["resources"]);
    std::string matches = ".*";
    YAML::Node name_node = node["name"];
    if (name_node) {
      expect_keys(name_node, {"matches", "as"}, "name");
      if (name_node["matches"]) matches = string_at(name_node["matches"], "name.matches");
    }
    r.name_matches = name_node && name_node["matches"]
                         ? regex_at(name_node["matches"], "name.matches")
                         : std::make_shared<const re2::RE2>(matches);
    const int groups = r.name_matches->NumberOfCapturingGroups();
    if (name_node && name_node["as"]) {
      r.name_as = string_at(name_node["as"], "name.as");
      check_name_references(name_node["as"], r.name_as, *r.name_matches);
    } else if (groups >= 2) {
      fail(name_node, "name.matches has " + std::to_string(groups) +
                          " capture groups, so name.as is required");
    } else {
      r.name_as = groups == 1 ? "$1" : "$0";
    }
    r.filters.push_back({true, r.name_matches});
    if (node["metricsQuery"]) {
      r.metrics_query = template_at(node["metricsQuery"], "metricsQuery", kQueryFields);
    } else if (warnings_) {
      // prometheus-adapter loads it (an empty template), and every request for its metrics
      // fails: load it too, and say so now rather than at the first request.
      warnings_->push_back(file_ + ":" + std::to_string(r.line) +
                           ": the rule has no metricsQuery: it loads, as in prometheus-adapter, "
                           "but every request for its metrics gets 500");
    }

    const bool maps_something = !r.resources.overrides.empty() || r.resources.label_template;
    if (!external && !maps_something)
      fail(node,
           "the rule maps no series label to a Kubernetes resource (add resources.overrides "
           "or resources.template), so it could never serve a metric");
    if (external) {
      if (r.resources.namespaced && !r.resources.label_for_resource({"", "namespaces"}))
        fail(node,
             "the external rule is namespaced but no label maps to the namespace resource "
             "(prometheus-adapter answers 500 to every request for it); add resources."
             "overrides: {namespace: {resource: namespace}} or set resources.namespaced: false");
      // prometheus-adapter renders them empty ("by ()", "[]"), and its Helm chart's own CI
      // values do this: load, render the same, and say what it means.
      if ((r.metrics_query.uses("GroupBy") || r.metrics_query.uses("GroupBySlice")) && warnings_)
        warnings_->push_back(
            file_ + ":" + std::to_string(node["metricsQuery"].Mark().line + 1) +
            ": <<.GroupBy>> and <<.GroupBySlice>> render empty in an external rule, as in "
            "prometheus-adapter (\"by ()\" aggregates every series into one); name the labels "
            "to group by in metricsQuery instead");
    }
    return r;
  }

  resource_query_rule resource_query_rule_at(const YAML::Node& parent, const char* name) const {
    const std::string where = std::string("resourceRules.") + name;
    resource_query_rule r;
    const auto node = parent[name];
    r.line = (node ? node : parent).Mark().line + 1;
    if (!node || node.IsNull()) {
      // prometheus-adapter starts with an empty rule and fails every request for it.
      if (warnings_)
        warnings_->push_back(file_ + ":" + std::to_string(r.line) + ": " + where +
                             " is missing: it loads, as in prometheus-adapter, but every "
                             "metrics.k8s.io request gets 500");
      return r;
    }
    expect_keys(node, {"containerQuery", "nodeQuery", "resources", "containerLabel"}, where);
    for (const auto& [key, templ, present] :
         {std::tuple{"containerQuery", &r.container_query, &r.has_container_query},
          std::tuple{"nodeQuery", &r.node_query, &r.has_node_query}}) {
      if (const auto q = node[key]; q && !q.IsNull()) {
        *templ = template_at(q, where + "." + key, kQueryFields);
        *present = true;
      } else if (warnings_) {
        warnings_->push_back(file_ + ":" + std::to_string(r.line) + ": " + where + " has no " +
                             key + ": it loads, as in prometheus-adapter, but every request for " +
                             (std::string(key) == "nodeQuery" ? "node" : "pod") +
                             " metrics gets 500");
      }
    }
    r.resources = resources_at(node["resources"]);
    if (const auto label = node["containerLabel"])
      r.container_label = string_at(label, where + ".containerLabel");
    return r;
  }

  resource_rules resource_rules_at(const YAML::Node& node) const {
    expect_keys(node, {"cpu", "memory", "window"}, "resourceRules");
    resource_rules r;
    r.line = node.Mark().line + 1;
    r.fingerprint = fingerprint_of(node, "resource");
    r.cpu = resource_query_rule_at(node, "cpu");
    r.memory = resource_query_rule_at(node, "memory");
    if (const auto window = node["window"]; window && !window.IsNull()) {
      const auto text = string_at(window, "resourceRules.window");
      const auto parsed = parse_prometheus_duration(text);
      if (!parsed)
        fail(window, "resourceRules.window: not a valid duration string: \"" + text + "\"");
      r.window = *parsed;
    }
    return r;
  }

  rules_config load(const YAML::Node& root) {
    rules_config config;
    config.source = file_;
    if (!root || root.IsNull()) return config;
    expect_keys(root, {"rules", "externalRules", "resourceRules"}, "the config");
    for (const auto& [key, external] :
         {std::pair{"rules", false}, std::pair{"externalRules", true}}) {
      const auto list = root[key];
      if (!list || list.IsNull()) continue;
      if (!list.IsSequence()) fail(list, std::string(key) + " must be a list");
      for (const auto& rule : list)
        (external ? config.external_rules : config.rules).push_back(rule_at(rule, external));
    }
    if (const auto resource = root["resourceRules"]; resource && !resource.IsNull())
      config.resource = resource_rules_at(resource);
    return config;
  }

 private:
  std::string file_;
  std::vector<std::string>* warnings_;
};

}  // namespace

std::string plural_resource(const std::string& resource) {
  const std::string r = core::ascii_lower(resource);
  for (const auto& [singular, plural] : irregular_plurals())
    if (r == singular || r == plural) return plural;
  if (r.ends_with("s")) return r;
  if (r.ends_with("y") && r.size() > 1 &&
      std::string("aeiou").find(r[r.size() - 2]) == std::string::npos)
    return r.substr(0, r.size() - 1) + "ies";
  return r + "s";
}

std::string singular_resource(const std::string& resource) {
  for (const auto& [singular, plural] : irregular_plurals())
    if (resource == plural) return singular;
  if (resource.ends_with("ies")) return resource.substr(0, resource.size() - 3) + "y";
  if (resource.ends_with("s")) return resource.substr(0, resource.size() - 1);
  return resource;
}

std::optional<group_resource> resource_mapping::resource_for_label(const std::string& label) const {
  if (const auto it = overrides.find(label); it != overrides.end()) return it->second;
  if (!template_regex) return std::nullopt;
  std::string group;
  std::string resource;
  const int group_index = template_regex->NamedCapturingGroups().contains("group")
                              ? template_regex->NamedCapturingGroups().at("group")
                              : -1;
  const int resource_index = template_regex->NamedCapturingGroups().at("resource");
  const int n = template_regex->NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> groups(static_cast<std::size_t>(n));
  if (!template_regex->Match(label, 0, label.size(), re2::RE2::ANCHOR_BOTH, groups.data(), n))
    return std::nullopt;
  resource = std::string(groups[static_cast<std::size_t>(resource_index)]);
  if (group_index >= 0) group = std::string(groups[static_cast<std::size_t>(group_index)]);
  return group_resource{group, plural_resource(resource)};
}

std::optional<std::string> resource_mapping::label_for_resource(
    const group_resource& resource) const {
  for (const auto& [label, gr] : overrides)
    if (gr == resource) return label;
  if (!label_template) return std::nullopt;
  std::string group = resource.group;
  for (auto& c : group)
    if (c == '.' || c == '-') c = '_';
  return label_template->render(
      {{"Group", group}, {"Resource", singular_resource(resource.resource)}});
}

std::optional<std::string> discovery_rule::metric_name(const std::string& series_name) const {
  for (const auto& f : filters)
    if (re2::RE2::PartialMatch(series_name, *f.regex) != f.is) return std::nullopt;
  return expand_name(*name_matches, series_name, name_as);
}

std::optional<std::chrono::milliseconds> parse_prometheus_duration(const std::string& text) {
  // model.ParseDuration: units in this order, each at most once, "0" alone allowed.
  if (text == "0") return std::chrono::milliseconds(0);
  static const std::pair<const char*, std::int64_t> kUnits[] = {{"y", 365LL * 24 * 3600 * 1000},
                                                                {"w", 7LL * 24 * 3600 * 1000},
                                                                {"d", 24LL * 3600 * 1000},
                                                                {"h", 3600LL * 1000},
                                                                {"m", 60LL * 1000},
                                                                {"s", 1000},
                                                                {"ms", 1}};
  std::int64_t total = 0;
  std::size_t pos = 0;
  std::size_t next_unit = 0;
  if (text.empty()) return std::nullopt;
  while (pos < text.size()) {
    std::size_t digits = pos;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == pos || digits - pos > 15) return std::nullopt;
    const std::int64_t number = std::stoll(text.substr(pos, digits - pos));
    std::size_t unit_end = digits;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end])))
      ++unit_end;
    const std::string unit = text.substr(digits, unit_end - digits);
    std::size_t u = next_unit;
    while (u < std::size(kUnits) && unit != kUnits[u].first) ++u;
    if (u == std::size(kUnits)) return std::nullopt;
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    if (number > kMax / kUnits[u].second || total > kMax - number * kUnits[u].second)
      return std::nullopt;
    total += number * kUnits[u].second;
    next_unit = u + 1;
    pos = unit_end;
  }
  return std::chrono::milliseconds(total);
}

std::string expand_template(const std::string& templ,
                            const std::function<std::string(const std::string&)>& resolve) {
  std::string out;
  for (std::size_t i = 0; i < templ.size(); ++i) {
    if (templ[i] != '$' || i + 1 >= templ.size()) {
      out += templ[i];
      continue;
    }
    if (templ[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (templ[i + 1] == '{') {
      const auto close = templ.find('}', i + 2);
      if (close == std::string::npos) {  // Go copies a malformed reference as it is
        out += templ[i];
        continue;
      }
      out += resolve(templ.substr(i + 2, close - i - 2));
      i = close;
    } else {
      // $name takes the longest run of letters, digits and underscores, as Go does.
      std::size_t j = i + 1;
      while (j < templ.size() &&
             (std::isalnum(static_cast<unsigned char>(templ[j])) || templ[j] == '_'))
        ++j;
      if (j == i + 1) {
        out += templ[i];
        continue;
      }
      out += resolve(templ.substr(i + 1, j - i - 1));
      i = j - 1;
    }
  }
  return out;
}

std::string expand_name(const re2::RE2& re, const std::string& input, const std::string& templ) {
  const int n = re.NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> groups(static_cast<std::size_t>(n));
  if (!re.Match(input, 0, input.size(), re2::RE2::UNANCHORED, groups.data(), n)) return "";
  const auto& names = re.NamedCapturingGroups();
  return expand_template(templ, [&](const std::string& name) -> std::string {
    int index = group_number(name);
    if (index < 0)
      if (auto it = names.find(name); it != names.end()) index = it->second;
    if (index < 0 || index >= n || groups[static_cast<std::size_t>(index)].data() == nullptr)
      return "";
    return std::string(groups[static_cast<std::size_t>(index)]);
  });
}

rules_config parse_rules(const std::string& text, const std::string& file_name,
                         std::vector<std::string>* warnings) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw config_error(file_name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  try {
    // Only the first document is read, as yaml.v2's Unmarshal reads it (YAML::Load does too).
    yaml_normalizer(file_name).normalize(root);
    return loader(file_name, warnings).load(root);
  } catch (const YAML::Exception& e) {
    throw config_error(file_name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace gma::adapters::prometheus
