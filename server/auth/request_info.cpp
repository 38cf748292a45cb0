#include "server/auth/request_info.hpp"

#include <vector>

#include "server/core/request_path.hpp"
#include "server/core/strings.hpp"

namespace gma::auth {

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
  if (a.name.empty() && a.verb == "get") a.verb = "list";
  return a;
}

}  // namespace gma::auth
