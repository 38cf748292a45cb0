#include "adapters/prometheus/resource_provider.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <tuple>

#include "adapters/prometheus/rules_query.hpp"
#include "server/core/log.hpp"
#include "server/core/memory.hpp"

namespace gma::adapters::prometheus {
namespace {

/// int64(v * 1000) as Go converts it, for the values it defines: truncated toward zero, and
/// saturated where Go's conversion would be undefined.
std::int64_t truncated_milli(double value) {
  if (std::isnan(value) || value < 0) return 0;  // prometheus-adapter reads both as 0
  const double milli = value * 1000;
  if (milli >= 9.2e18) return std::numeric_limits<std::int64_t>::max();
  return static_cast<std::int64_t>(milli);
}

double sample_value(const std::string& text) { return std::strtod(text.c_str(), nullptr); }

core::sys_seconds whole_seconds(double unix_seconds) {
  return core::sys_seconds(std::chrono::seconds(static_cast<long long>(std::floor(unix_seconds))));
}

/// "resourceRules.cpu at rules.yaml:12", for log lines and cache sources.
std::string rule_name(const rules_config& config, const resource_query_rule& rule,
                      const char* resource) {
  return std::string("resourceRules.") + resource + " at " + config.source + ":" +
         std::to_string(rule.line);
}

/// Why a query of a rule cannot be rendered, for the log: the rule says what it lacks.
std::string unrenderable(const resource_query_rule& rule, bool nodes) {
  if (nodes ? !rule.has_node_query : !rule.has_container_query)
    return nodes ? "it has no nodeQuery" : "it has no containerQuery";
  const char* needed = nodes ? "nodes" : "pods and namespaces";
  return std::string("its resources map no label to ") + needed +
         " (add resources.overrides, e.g. {" +
         (nodes ? "node: {resource: node}"
                : "pod: {resource: pod}, namespace: "
                  "{resource: namespace}") +
         "}), or its query renders empty";
}

/// The first row after `it` of another object.
template <class Iterator>
Iterator next_object(Iterator it, Iterator end) {
  return std::find_if(it, end, [&](const auto& row) { return row.object != it->object; });
}

}  // namespace

core::quantity cpu_quantity(double cores) {
  return core::quantity::from_milli(truncated_milli(cores), core::quantity_format::decimal_si);
}

core::quantity memory_quantity(double bytes) {
  return core::quantity::from_milli(truncated_milli(bytes), core::quantity_format::binary_si);
}

resource_provider::resource_provider(api_client& client, const rules_provider& rules,
                                     net::any_io_executor executor,
                                     core::snapshot_cache_options cache)
    : client_(client), rules_(rules), cache_(std::move(executor), cache) {}

net::awaitable<void> resource_provider::async_run_cache_refresh() {
  co_await cache_.async_run_refresher([this] {
    // Answers of rules a reload replaced are not asked for again, and age out; dropping them
    // at once keeps a removed rule's queries from being refreshed meanwhile.
    const auto config = rules_.current_config();
    const std::string current = config->resource ? config->resource->fingerprint : "";
    cache_.drop_if([&](const std::string& tag) { return tag != current; });
  });
}

bool resource_provider::serving() const { return rules_.current_config()->resource.has_value(); }

std::chrono::milliseconds resource_provider::window() const {
  const auto config = rules_.current_config();
  return config->resource ? config->resource->window : std::chrono::milliseconds(0);
}

resource_provider::usage_cache::ticket resource_provider::request(
    const rules_config& config, const resource_query_rule& rule, const char* resource,
    const std::optional<std::string>& namespace_) {
  const bool nodes = !namespace_;
  const std::string key = config.resource->fingerprint + '\x1f' + resource + '\x1f' +
                          (nodes ? std::string("\x1fnodes") : *namespace_);
  return cache_.request(key, [&]() -> usage_cache::source {
    std::string what = rule_name(config, rule, resource) +
                       (nodes ? " for nodes" : " for the pods of namespace " + *namespace_);
    std::string execution_error;
    auto promql = nodes ? render_node_query(rule, &execution_error)
                        : render_container_query(rule, *namespace_, &execution_error);
    if (!promql) {
      core::log::warning("cannot ask Prometheus for " + what + ": " +
                         (execution_error.empty() ? unrenderable(rule, nodes) : execution_error));
      const error_code error = promql.error();
      return {config.resource->fingerprint, std::move(what),
              [error] { return failed_fetch(error); }};
    }
    const auto object_label =
        rule.resources.label_for_resource({"", nodes ? "nodes" : "pods"}).value_or("");
    return {config.resource->fingerprint, what,
            [this, promql = std::move(*promql),
             rule_line = config.source + ":" + std::to_string(rule.line), context = "the " + what,
             object_label, container = nodes ? std::string() : rule.container_label] {
              return async_fetch(promql, rule_line, context, object_label, container);
            }};
  });
}

net::awaitable<result<std::shared_ptr<const resource_provider::usage_rows>>>
resource_provider::failed_fetch(error_code error) {
  co_return error;
}

net::awaitable<result<std::shared_ptr<const resource_provider::usage_rows>>>
resource_provider::async_fetch(std::string promql, std::string rule, std::string context,
                               std::string object_label, std::string container_label) {
  core::trim_heap_after trim;  // declared first: runs after the samples are freed
  std::size_t reply_bytes = 0;
  std::vector<std::string> warnings;
  core::log::verbose(4, [&] { return context + ": " + promql; });
  auto samples =
      co_await client_.async_query(std::move(promql), context, reply_bytes, nullptr, &warnings);
  trim.bytes += reply_bytes;
  if (!warnings.empty()) rules_.note_warnings(rule, context, warnings);
  if (!samples) co_return samples.error();
  auto rows = std::make_shared<usage_rows>();
  rows->rows.reserve(samples->size());
  for (auto& sample : *samples) {
    const auto object = sample.labels.find(object_label);
    if (object == sample.labels.end()) continue;  // no pod or node to give it to
    usage_rows::row row{object->second, "", sample.timestamp, sample_value(sample.value)};
    if (!container_label.empty())
      if (const auto c = sample.labels.find(container_label); c != sample.labels.end())
        row.container = c->second;
    rows->rows.push_back(std::move(row));
  }
  // Sorted, and of two samples for one container the first kept.
  std::stable_sort(rows->rows.begin(), rows->rows.end(), [](const auto& a, const auto& b) {
    return std::tie(a.object, a.container) < std::tie(b.object, b.container);
  });
  rows->rows.erase(std::unique(rows->rows.begin(), rows->rows.end(),
                               [](const auto& a, const auto& b) {
                                 return a.object == b.object && a.container == b.container;
                               }),
                   rows->rows.end());
  co_return std::shared_ptr<const usage_rows>(std::move(rows));
}

net::awaitable<result<std::vector<core::pod_usage>>> resource_provider::async_pod_usage(
    std::vector<std::string> namespaces) {
  const auto config = rules_.current_config();  // the whole request uses one config
  if (!config->resource) co_return errc::metric_not_found;
  std::sort(namespaces.begin(), namespaces.end());
  namespaces.erase(std::unique(namespaces.begin(), namespaces.end()), namespaces.end());
  std::vector<usage_cache::ticket> tickets;
  for (const auto& ns : namespaces) {
    tickets.push_back(request(*config, config->resource->cpu, "cpu", ns));
    tickets.push_back(request(*config, config->resource->memory, "memory", ns));
  }
  auto answers = co_await cache_.async_wait_all(std::move(tickets));
  if (!answers) co_return answers.error();

  std::vector<core::pod_usage> out;
  for (std::size_t n = 0; n < namespaces.size(); ++n) {
    const auto& cpu = (*answers)[2 * n]->rows;
    const auto& memory = (*answers)[2 * n + 1]->rows;
    // Both answers are sorted by pod then container: walk them together, pod by pod. A pod is
    // served only when both have it; a container in one only reads 0 for the other.
    auto c = cpu.begin();
    auto m = memory.begin();
    while (c != cpu.end() && m != memory.end()) {
      // A pod in one answer only is not served.
      if (c->object < m->object) {
        c = next_object(c, cpu.end());
        continue;
      }
      if (m->object < c->object) {
        m = next_object(m, memory.end());
        continue;
      }
      core::pod_usage pod{namespaces[n], c->object, {}, {}};
      double earliest = std::numeric_limits<double>::infinity();
      std::map<std::string, core::resource_usage> containers;
      const std::string name = c->object;
      for (; c != cpu.end() && c->object == name; ++c) {
        containers[c->container].cpu = cpu_quantity(c->value);
        containers[c->container].memory = memory_quantity(0);
        earliest = std::min(earliest, c->timestamp);
      }
      for (; m != memory.end() && m->object == name; ++m) {
        auto [it, added] = containers.try_emplace(m->container);
        if (added) it->second.cpu = cpu_quantity(0);
        it->second.memory = memory_quantity(m->value);
        earliest = std::min(earliest, m->timestamp);
      }
      pod.timestamp = whole_seconds(earliest);
      for (auto& [container, usage] : containers) pod.containers.push_back({container, usage});
      out.push_back(std::move(pod));
    }
  }
  co_return out;
}

net::awaitable<result<std::vector<core::node_usage>>> resource_provider::async_node_usage() {
  const auto config = rules_.current_config();
  if (!config->resource) co_return errc::metric_not_found;
  std::vector<usage_cache::ticket> tickets;
  tickets.push_back(request(*config, config->resource->cpu, "cpu", std::nullopt));
  tickets.push_back(request(*config, config->resource->memory, "memory", std::nullopt));
  auto answers = co_await cache_.async_wait_all(std::move(tickets));
  if (!answers) co_return answers.error();
  const auto& cpu = (*answers)[0]->rows;
  const auto& memory = (*answers)[1]->rows;
  std::vector<core::node_usage> out;
  // The first sample of each node in each answer, as prometheus-adapter reads rawCPUs[0].
  auto m = memory.begin();
  for (auto c = cpu.begin(); c != cpu.end(); ++c) {
    if (c != cpu.begin() && std::prev(c)->object == c->object) continue;
    m = std::lower_bound(m, memory.end(), c->object,
                         [](const auto& r, const std::string& name) { return r.object < name; });
    if (m == memory.end() || m->object != c->object) continue;
    out.push_back({c->object,
                   whole_seconds(std::min(c->timestamp, m->timestamp)),
                   {cpu_quantity(c->value), memory_quantity(m->value)}});
  }
  co_return out;
}

result<std::vector<std::string>> resource_provider::explain(
    const std::optional<std::string>& namespace_) const {
  const auto config = rules_.current_config();
  if (!config->resource) return errc::metric_not_found;
  std::vector<std::string> out;
  for (const auto* rule : {&config->resource->cpu, &config->resource->memory}) {
    auto promql =
        namespace_ ? render_container_query(*rule, *namespace_) : render_node_query(*rule);
    if (!promql) return promql.error();
    out.push_back(std::move(*promql));
  }
  return out;
}

}  // namespace gma::adapters::prometheus
