#include "server/auth/authorizer.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

namespace gma::auth {
namespace {

constexpr std::size_t kMaxCachedDecisions = 8192;

/// Appends a number and a terminator: the length of a field, or how many items a list has.
void append_number(std::string& key, std::size_t n, char terminator) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  key.append(digits, end);
  key += terminator;
}

/// Appends a field as "<length>:<bytes>": no field's bytes can be read as another's.
void append_field(std::string& key, std::string_view field) {
  append_number(key, field.size(), ':');
  key += field;
}

}  // namespace

std::string authorization_cache_key(const core::request_attributes& a) {
  std::string key;
  key.reserve(128 + a.path.size());
  append_field(key, a.user.name);
  append_field(key, a.user.uid);
  append_number(key, a.user.groups.size(), '#');
  for (const auto& group : a.user.groups) append_field(key, group);
  append_number(key, a.user.extra.size(), '#');
  for (const auto& [name, values] : a.user.extra) {
    append_field(key, name);
    append_number(key, values.size(), '#');
    for (const auto& value : values) append_field(key, value);
  }
  append_field(key, a.verb);
  key += a.resource_request ? 'r' : 'n';
  // The path does not matter for resource requests.
  append_field(key, a.resource_request ? std::string_view() : std::string_view(a.path));
  for (const auto* field :
       {&a.namespace_, &a.api_group, &a.api_version, &a.resource, &a.subresource, &a.name})
    append_field(key, *field);
  return key;
}

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
    const core::request_attributes& attributes) {
  if (!attributes.resource_request && always_allowed(attributes.path))
    co_return core::authorization_decision{true, ""};
  const auto& groups = attributes.user.groups;
  if (std::find(groups.begin(), groups.end(), "system:masters") != groups.end())
    co_return core::authorization_decision{true, ""};
  std::string key = authorization_cache_key(attributes);
  if (auto cached = cache_.get(key)) co_return std::move(*cached);
  // Only a review needs its own copy of the attributes.
  core::request_attributes for_review = attributes;
  auto decision = co_await reviewer_.async_review_access(std::move(for_review));
  if (!decision) co_return decision.error();
  cache_.put(std::move(key), *decision,
             decision->allowed ? options_.allowed_ttl : options_.denied_ttl);
  co_return *decision;
}

}  // namespace gma::auth
