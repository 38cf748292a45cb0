#include "server/auth/request_info.hpp"

#include <map>
#include <string>
#include <vector>

#include "server/core/request_path.hpp"
#include "server/core/strings.hpp"

namespace gma::auth {
namespace {

/// strconv.ParseBool's true.
bool is_true(const std::map<std::string, std::string>& query, const char* key) {
  const auto it = query.find(key);
  if (it == query.end()) return false;
  const auto& v = it->second;
  return v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True";
}

/// The name a fieldSelector requires exactly (metadata.name=X or ==X), if it is a valid path
/// segment name; empty otherwise.
std::string exact_name(const std::map<std::string, std::string>& query) {
  const auto it = query.find("fieldSelector");
  if (it == query.end()) return "";
  std::string_view rest = it->second;
  while (true) {
    const auto comma = rest.find(',');
    std::string_view piece = rest.substr(0, comma);
    for (const std::string_view prefix : {"metadata.name==", "metadata.name="}) {
      if (piece.substr(0, prefix.size()) != prefix) continue;
      const std::string_view name = piece.substr(prefix.size());
      const bool valid =
          name != "." && name != ".." && name.find_first_of("/%") == std::string_view::npos;
      return valid ? std::string(name) : "";
    }
    if (comma == std::string_view::npos) return "";
    rest.remove_prefix(comma + 1);
  }
}

}  // namespace

core::request_attributes request_attributes_for(std::string_view method, std::string_view target,
                                                const core::request_path& parsed) {
  core::request_attributes a;
  a.path = parsed.valid ? parsed.path : std::string(target.substr(0, target.find('?')));
  a.verb = method == "GET" || method == "HEAD" ? "get" : method == "POST" ? "create" : "";
  if (a.verb.empty()) a.verb = core::ascii_lower(method);
  if (!parsed.valid) return a;
  std::vector<std::string> parts;
  for (const auto& segment : parsed.segments)
    if (!segment.empty()) parts.push_back(segment);
  if (parts.size() < 3 || (parts[0] != "apis" && parts[0] != "api")) return a;
  std::size_t i = 1;
  if (parts[0] == "apis") {
    if (parts.size() - i < 3) return a;
    a.api_group = parts[i++];
  }
  a.resource_request = true;
  a.api_version = parts[i++];
  std::vector<std::string> rel(parts.begin() + static_cast<long>(i), parts.end());
  if (!rel.empty() && rel[0] == "namespaces") {
    if (rel.size() > 1) {
      a.namespace_ = rel[1];
      if (rel.size() > 2 && rel[2] != "status" && rel[2] != "finalize")
        rel.erase(rel.begin(), rel.begin() + 2);
    }
  }
  if (rel.size() >= 3) a.subresource = rel[2];
  if (rel.size() >= 2) a.name = rel[1];
  if (!rel.empty()) a.resource = rel[0];
  if (a.name.empty() && a.verb == "get") {
    // A collection's GET is a list, or a watch; a list that names one object by its field
    // selector is authorized for that name (RequestInfoFactory.NewRequestInfo).
    a.verb = is_true(parsed.query, "watch") ? "watch" : "list";
    a.name = exact_name(parsed.query);
  }
  return a;
}

}  // namespace gma::auth
