#include "server/core/request_path.hpp"

#include "server/core/strings.hpp"

namespace gma::core {
namespace {

bool parse_query(std::string_view query, std::map<std::string, std::string>& out) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) return false;
    out.try_emplace(std::move(*key), std::move(*value));
  }
  return true;
}

}  // namespace

request_path parse_request_path(std::string_view target) {
  request_path out;
  const auto question = target.find('?');
  const std::string_view raw_path = target.substr(0, question);
  if (question != std::string_view::npos && !parse_query(target.substr(question + 1), out.query))
    return out;
  if (raw_path.empty() || raw_path.front() != '/') return out;
  std::string_view rest = raw_path.substr(1);
  while (true) {
    const auto slash = rest.find('/');
    auto decoded = percent_decode(rest.substr(0, slash), false);
    if (!decoded || decoded->find('/') != std::string::npos) return out;
    out.segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  for (const auto& segment : out.segments) out.path += "/" + segment;
  if (!out.segments.empty() && out.segments.back().empty()) out.segments.pop_back();
  out.valid = true;
  return out;
}

}  // namespace gma::core
