#include "server/auth/authenticator.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "server/core/change_watcher.hpp"
#include "server/core/log.hpp"
#include "server/core/strings.hpp"
#include "server/core/text_file.hpp"

namespace gma::auth {
namespace {

constexpr std::size_t kMaxCachedTokens = 4096;

std::string token_key(const std::string& token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof digest);
}

std::vector<std::string> json_string_array(const std::map<std::string, std::string>& data,
                                           const std::string& key,
                                           std::vector<std::string> fallback) {
  const auto it = data.find(key);
  if (it == data.end() || it->second.empty()) return fallback;
  const auto parsed = nlohmann::json::parse(it->second, nullptr, false);
  if (!parsed.is_array()) throw std::runtime_error(key + " is not a JSON array of strings");
  std::vector<std::string> out;
  for (const auto& v : parsed) {
    if (!v.is_string()) throw std::runtime_error(key + " is not a JSON array of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<std::string> lowered(std::vector<std::string> names) {
  for (auto& n : names) n = core::ascii_lower(n);
  return names;
}

/// Every authenticated user is in system:authenticated (k8s AuthenticatedGroupAdder).
authentication_result authenticated(core::user_info user) {
  if (std::find(user.groups.begin(), user.groups.end(), "system:authenticated") ==
      user.groups.end())
    user.groups.push_back("system:authenticated");
  return {authentication_outcome::authenticated, std::move(user)};
}

/// One CA's answer about a connection's chain. It is checked again from `valid_until` on, on
/// its own: the other CA's answer may hold longer (or shorter).
template <class T>
struct ca_answer {
  T value{};
  /// max(): nothing but a new configuration can change it (no such CA is configured).
  std::chrono::system_clock::time_point valid_until = std::chrono::system_clock::time_point::max();
};

}  // namespace

/// What one certificate chain proves under one configuration, kept with the connection: each
/// CA's answer, and until when it holds.
struct authenticator::chain_verdict {
  using time_point = std::chrono::system_clock::time_point;

  /// The configuration it was made under: its header names read the front proxy's headers.
  std::shared_ptr<const authentication_config> config;
  /// Verified to the request-header CA with an allowed CN: the X-Remote-* headers are trusted.
  ca_answer<bool> front_proxy;
  /// Verified to the client CA with a CN: the user the certificate names.
  ca_answer<std::optional<core::user_info>> client;

  /// Whether every answer still holds at `now`, so that the verdict can be used as it is.
  bool holds_at(time_point now) const {
    return now < front_proxy.valid_until && now < client.valid_until;
  }
};

namespace {

/// The generation numbers of configurations, unique across authenticators so that a chain's
/// verdict can never be taken for another authenticator's.
std::uint64_t next_generation() {
  static std::atomic<std::uint64_t> last{0};
  return ++last;
}

/// A chain a CA refused is shown to it again after this long: a certificate whose notBefore is
/// still ahead (a clock a little behind the issuer's) may verify later. Per CA: a chain another
/// CA verified does not keep this refusal for as long as that CA's answer holds.
constexpr std::chrono::minutes kUnverifiedRecheck{1};

/// The first non-empty value of the first of `names` that has one, in header order.
std::string first_non_empty(const http::request& req, const std::vector<std::string>& names) {
  for (const auto& name : names)
    for (const auto& [k, v] : req.headers)
      if (k == name && !v.empty()) return v;
  return {};
}

/// The user the front proxy names in its headers; nullopt without a user name.
std::optional<core::user_info> user_from_headers(const authentication_config& config,
                                                 const http::request& req) {
  core::user_info user;
  user.name = first_non_empty(req, config.username_headers);
  if (user.name.empty()) return std::nullopt;
  for (const auto& header : config.group_headers)
    for (const auto& [k, v] : req.headers)
      if (k == header) user.groups.push_back(v);
  for (const auto& prefix : config.extra_headers_prefixes)
    for (const auto& [name, value] : req.headers)
      if (name.size() > prefix.size() && name.starts_with(prefix)) {
        const auto key = core::percent_decode(name.substr(prefix.size()), false);
        if (key) user.extra[core::ascii_lower(*key)].push_back(value);
      }
  return user;
}

/// Until when a CA's answer about a chain holds: a chain it verified until the chain expires, a
/// chain it refused for kUnverifiedRecheck.
std::chrono::system_clock::time_point answer_valid_until(
    const std::optional<certificate_identity>& identity,
    std::chrono::system_clock::time_point now) {
  return identity ? identity->valid_until : now + kUnverifiedRecheck;
}

/// The request-header CA's answer: the X-Remote-* headers are trusted only on a connection
/// whose certificate verifies to it and carries an allowed CN; anywhere else they are ignored.
ca_answer<bool> front_proxy_answer(const authentication_config& config,
                                   const std::vector<std::string>& der_chain,
                                   std::chrono::system_clock::time_point now) {
  const auto identity = config.requestheader_ca->verify(der_chain, now);
  const bool allowed =
      identity && (config.allowed_names.empty() ||
                   std::find(config.allowed_names.begin(), config.allowed_names.end(),
                             identity->common_name) != config.allowed_names.end());
  if (identity && !allowed)
    core::log::verbose(1, [&] {
      return "front-proxy certificate CN \"" + identity->common_name +
             "\" is not in --requestheader-allowed-names; ignoring its headers";
    });
  return {allowed, answer_valid_until(identity, now)};
}

/// The client CA's answer: the user a chain it verifies names with its CN and O values.
ca_answer<std::optional<core::user_info>> client_answer(const authentication_config& config,
                                                        const std::vector<std::string>& der_chain,
                                                        std::chrono::system_clock::time_point now) {
  auto identity = config.client_ca->verify(der_chain, now);
  const auto valid_until = answer_valid_until(identity, now);
  if (!identity || identity->common_name.empty()) return {std::nullopt, valid_until};
  return {core::user_info{identity->common_name, "", std::move(identity->organizations), {}},
          valid_until};
}

}  // namespace

authenticator::chain_verdict authenticator::verify_chain(
    std::shared_ptr<const authentication_config> config, const std::vector<std::string>& der_chain,
    std::chrono::system_clock::time_point now, const chain_verdict* kept) {
  chain_verdict verdict{std::move(config), {}, {}};
  // No configuration: nothing verifies until set_config(), which makes every kept verdict
  // stale by itself; the answers need no expiry.
  if (!verdict.config) return verdict;
  const auto& cfg = *verdict.config;
  if (kept && now < kept->front_proxy.valid_until)
    verdict.front_proxy = kept->front_proxy;
  else if (cfg.requestheader_ca)
    verdict.front_proxy = front_proxy_answer(cfg, der_chain, now);
  if (kept && now < kept->client.valid_until)
    verdict.client = kept->client;
  else if (cfg.client_ca)
    verdict.client = client_answer(cfg, der_chain, now);
  return verdict;
}

authentication_config config_from_configmap(const std::map<std::string, std::string>& data) {
  authentication_config config;
  config.source = "ConfigMap kube-system/extension-apiserver-authentication";
  if (auto it = data.find("client-ca-file"); it != data.end() && !it->second.empty())
    config.client_ca = std::make_shared<const ca_bundle>(it->second, "client-ca-file (ConfigMap)");
  if (auto it = data.find("requestheader-client-ca-file"); it != data.end() && !it->second.empty())
    config.requestheader_ca =
        std::make_shared<const ca_bundle>(it->second, "requestheader-client-ca-file (ConfigMap)");
  config.allowed_names = json_string_array(data, "requestheader-allowed-names", {});
  config.username_headers =
      lowered(json_string_array(data, "requestheader-username-headers", config.username_headers));
  config.group_headers =
      lowered(json_string_array(data, "requestheader-group-headers", config.group_headers));
  config.extra_headers_prefixes = lowered(
      json_string_array(data, "requestheader-extra-headers-prefix", config.extra_headers_prefixes));
  return config;
}

authentication_config config_from_files(const authentication_files& files) {
  authentication_config config;
  config.source = "flags";
  if (!files.client_ca_file.empty())
    config.client_ca =
        std::make_shared<const ca_bundle>(core::read_text_file_or_throw(files.client_ca_file),
                                          "--client-ca-file " + files.client_ca_file);
  if (!files.requestheader_client_ca_file.empty())
    config.requestheader_ca = std::make_shared<const ca_bundle>(
        core::read_text_file_or_throw(files.requestheader_client_ca_file),
        "--requestheader-client-ca-file " + files.requestheader_client_ca_file);
  config.allowed_names = files.allowed_names;
  config.username_headers = files.username_headers;
  config.group_headers = files.group_headers;
  config.extra_headers_prefixes = files.extra_headers_prefixes;
  return config;
}

authenticator::authenticator(core::token_reviewer* tokens, std::chrono::seconds token_cache_ttl,
                             time_source now)
    : tokens_(tokens),
      now_(std::move(now)),
      token_cache_ttl_(token_cache_ttl),
      generation_(next_generation()),
      token_cache_(kMaxCachedTokens) {}

void authenticator::set_config(std::shared_ptr<const authentication_config> config) {
  std::lock_guard lock(mutex_);
  config_ = std::move(config);
  // Every connection's kept verdict is for the old number: each verifies again once.
  generation_.store(next_generation(), std::memory_order_release);
}

std::shared_ptr<const authentication_config> authenticator::config() const {
  std::lock_guard lock(mutex_);
  return config_;
}

std::vector<core::health_check> authenticator::readiness_checks() const {
  const bool loaded = config() != nullptr;
  return {{"authentication-config", loaded,
           loaded ? "" : "the client CA configuration has not been loaded yet"}};
}

boost::asio::awaitable<void> authenticator::async_watch_files(authentication_files files,
                                                              std::chrono::seconds interval) {
  std::vector<std::string> paths;
  for (const auto* path : {&files.client_ca_file, &files.requestheader_client_ca_file})
    if (!path->empty()) paths.push_back(*path);
  core::change_watcher<std::string> watcher(
      core::file_contents_reader(paths, "client CA files"),
      [this, files](const std::string&) {
        try {
          set_config(std::make_shared<const authentication_config>(config_from_files(files)));
        } catch (const std::exception& e) {
          core::log::warning(std::string("client CA files not reloaded: ") + e.what());
          return false;
        }
        core::log::info("reloaded the client CA files");
        return true;
      },
      core::read_files_fingerprint(paths, "client CA files"));
  co_await watcher.async_run(interval);
}

std::shared_ptr<const authenticator::chain_verdict> authenticator::verdict_for(
    const http::client_certificate_chain& chain) const {
  // The common case, every request after a connection's first: one atomic read and the
  // connection's own memo, no lock shared with other connections.
  const auto now = now_();
  const auto generation_seen = generation_.load(std::memory_order_acquire);
  auto kept = chain.recall<chain_verdict>(generation_seen);
  if (kept && kept->holds_at(now)) return kept;
  std::shared_ptr<const authentication_config> config;
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    config = config_;
    generation = generation_.load(std::memory_order_relaxed);
  }
  // A configuration set since the memo was read: every CA answers again.
  if (generation != generation_seen) kept = nullptr;
  auto verdict = std::make_shared<const chain_verdict>(
      verify_chain(std::move(config), chain.der(), now, kept.get()));
  chain.remember(generation, verdict);
  return verdict;
}

boost::asio::awaitable<result<authentication_result>> authenticator::async_authenticate(
    const http::request& req) {
  if (req.client_chain) {
    const auto verdict = verdict_for(*req.client_chain);
    if (verdict->front_proxy.value)
      if (auto user = user_from_headers(*verdict->config, req))
        co_return authenticated(std::move(*user));
    if (verdict->client.value) co_return authenticated(*verdict->client.value);
  }
  std::string token;
  for (const auto& [name, value] : req.headers)
    if (name == "authorization" && value.size() > 7 &&
        core::ascii_lower(value.substr(0, 7)) == "bearer ") {
      token = value.substr(7);
      while (!token.empty() && token.front() == ' ') token.erase(0, 1);
      break;
    }
  if (!token.empty() && tokens_) {
    std::string key = token_key(token);
    auto cached = token_cache_.get(key);
    if (!cached) {
      auto reviewed = co_await tokens_->async_review_token(std::move(token));
      if (!reviewed) co_return reviewed.error();
      token_cache_.put(std::move(key), *reviewed, token_cache_ttl_);
      cached = std::move(*reviewed);
    }
    if (!*cached) co_return authentication_result{authentication_outcome::rejected, {}};
    co_return authenticated(std::move(**cached));
  }
  co_return authentication_result{authentication_outcome::anonymous,
                                  {"system:anonymous", "", {"system:unauthenticated"}, {}}};
}

}  // namespace gma::auth
