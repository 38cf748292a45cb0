#include "server/auth/authorizer.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace gma::auth {
namespace {

constexpr std::size_t kMaxCachedDecisions = 8192;

std::string cache_key(const core::request_attributes& a) {
  nlohmann::json key = {a.user.name, a.user.uid,         a.user.groups, a.user.extra,
                        a.verb,      a.resource_request, a.path,        a.namespace_,
                        a.api_group, a.api_version,      a.resource,    a.subresource,
                        a.name};
  if (a.resource_request) key[6] = "";  // the path does not matter for resource requests
  return key.dump();
}

}  // namespace

authorizer::authorizer(core::access_reviewer& reviewer, authorization_options options)
    : reviewer_(reviewer), options_(std::move(options)), cache_(kMaxCachedDecisions) {}

bool authorizer::always_allowed(const std::string& path) const {
  return std::any_of(options_.always_allow_paths.begin(), options_.always_allow_paths.end(),
                     [&](const std::string& allowed) {
                       if (allowed.ends_with("*"))
                         return path.starts_with(allowed.substr(0, allowed.size() - 1));
                       return path == allowed;
                     });
}

boost::asio::awaitable<result<core::authorization_decision>> authorizer::async_authorize(
    core::request_attributes attributes) {
  if (!attributes.resource_request && always_allowed(attributes.path))
    co_return core::authorization_decision{true, ""};
  const auto& groups = attributes.user.groups;
  if (std::find(groups.begin(), groups.end(), "system:masters") != groups.end())
    co_return core::authorization_decision{true, ""};
  std::string key = cache_key(attributes);
  if (auto cached = cache_.get(key)) co_return std::move(*cached);
  auto decision = co_await reviewer_.async_review_access(std::move(attributes));
  if (!decision) co_return decision.error();
  cache_.put(std::move(key), *decision,
             decision->allowed ? options_.allowed_ttl : options_.denied_ttl);
  co_return *decision;
}

}  // namespace gma::auth
