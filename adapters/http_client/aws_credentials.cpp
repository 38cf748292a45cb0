#include "adapters/http_client/aws_credentials.hpp"

#include <nlohmann/json.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <stdexcept>

#include "adapters/http_client/client_tls.hpp"
#include "server/core/log.hpp"
#include "server/core/strings.hpp"
#include "server/core/text_file.hpp"

namespace gma::adapters::http_client {
namespace {

using std::chrono::system_clock;
constexpr auto kFetchTimeout = std::chrono::seconds(5);

std::string env_or(const environment_lookup& env, const char* name, std::string fallback = {}) {
  const char* value = env(name);
  return value && *value ? std::string(value) : fallback;
}

/// A token file's contents without the trailing newline an editor or `echo` leaves.
std::optional<std::string> read_token(const std::string& path) {
  auto text = core::read_text_file(path);
  if (!text) return std::nullopt;
  while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back()))) text->pop_back();
  return text;
}

/// ISO 8601 UTC ("2026-11-29T21:00:00Z", fractions of a second allowed), as STS and the
/// container endpoint write Expiration.
std::optional<system_clock::time_point> parse_iso8601(const std::string& text) {
  std::tm tm{};
  char rest[32] = {};
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%31s", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, rest) != 7)
    return std::nullopt;
  std::string zone = rest;
  if (zone.starts_with('.')) zone.erase(0, zone.find_first_not_of("0123456789", 1));
  if (zone != "Z" && zone != "+00:00") return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return system_clock::from_time_t(timegm(&tm));
}

/// The text of the first <tag> element in an AWS query-protocol XML answer, entities decoded.
std::optional<std::string> xml_text(std::string_view xml, const std::string& tag) {
  const auto open = xml.find("<" + tag + ">");
  if (open == std::string_view::npos) return std::nullopt;
  const auto start = open + tag.size() + 2;
  const auto close = xml.find("</" + tag + ">", start);
  if (close == std::string_view::npos) return std::nullopt;
  std::string out;
  const auto text = xml.substr(start, close - start);
  static constexpr std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool decoded = false;
    for (const auto& [entity, c] : kEntities) {
      if (text.substr(i).starts_with(entity)) {
        out += c;
        i += entity.size() - 1;
        decoded = true;
        break;
      }
    }
    if (!decoded) out += text[i];
  }
  return out;
}

/// An http_client for a credentials endpoint, on the calling coroutine's executor.
net::awaitable<std::unique_ptr<http_client>> client_for(
    const endpoint& target, const std::string& ca_file,
    std::vector<std::pair<std::string, std::string>> headers) {
  options opts;
  opts.target = target;
  opts.headers = std::move(headers);
  opts.max_body_bytes = 1024 * 1024;
  if (target.tls) {
    client_tls_settings tls;
    if (!ca_file.empty()) tls.ca_pem = core::read_text_file_or_throw(ca_file);
    opts.tls_context = make_client_tls_context(tls);
  }
  auto executor = co_await net::this_coro::executor;
  co_return std::make_unique<http_client>(std::move(executor), std::move(opts));
}

/// The container endpoint's URL is only trusted over https, or over http on the hosts EKS and
/// ECS serve it from (botocore's ContainerMetadataFetcher): nothing else may see the token.
bool allowed_container_host(const endpoint& target) {
  if (target.tls) return true;
  const auto& host = target.host;
  return host == "localhost" || host.starts_with("127.") || host == "::1" ||
         host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23";
}

}  // namespace

std::string aws_credential_source::describe() const {
  switch (from) {
    case kind::environment:
      return "the environment (AWS_ACCESS_KEY_ID " + keys.access_key_id + ")";
    case kind::web_identity:
      return "web identity (role " + role_arn + ", token " + token_file + ") via STS at " +
             sts_endpoint;
    case kind::container:
      return "the container credentials endpoint " + url;
  }
  return "";
}

aws_credential_source aws_credential_source_from(const environment_lookup& env,
                                                 const std::string& region,
                                                 const std::string& sts_endpoint) {
  aws_credential_source source;
  source.ca_file = env_or(env, "AWS_CA_BUNDLE");
  // 1. Keys in the environment.
  const auto key_id = env_or(env, "AWS_ACCESS_KEY_ID");
  const auto secret = env_or(env, "AWS_SECRET_ACCESS_KEY");
  if (!key_id.empty() || !secret.empty()) {
    if (key_id.empty() || secret.empty())
      throw std::runtime_error(
          "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: only one is set");
    source.keys = {key_id, secret, env_or(env, "AWS_SESSION_TOKEN"), std::nullopt};
    return source;
  }
  // 2. IRSA: a projected service-account token exchanged for the role's credentials.
  const auto role_arn = env_or(env, "AWS_ROLE_ARN");
  const auto web_token_file = env_or(env, "AWS_WEB_IDENTITY_TOKEN_FILE");
  if (!role_arn.empty() && !web_token_file.empty()) {
    source.from = aws_credential_source::kind::web_identity;
    source.role_arn = role_arn;
    source.token_file = web_token_file;
    source.session_name = env_or(
        env, "AWS_ROLE_SESSION_NAME",
        "gpu-metrics-adapter-" + std::to_string(system_clock::to_time_t(system_clock::now())));
    const auto sts_region = env_or(env, "AWS_REGION", env_or(env, "AWS_DEFAULT_REGION", region));
    source.sts_endpoint = sts_endpoint;
    if (source.sts_endpoint.empty()) source.sts_endpoint = env_or(env, "AWS_ENDPOINT_URL_STS");
    if (source.sts_endpoint.empty()) {
      source.sts_endpoint = env_or(env, "AWS_STS_REGIONAL_ENDPOINTS") == "legacy"
                                ? "https://sts.amazonaws.com"
                                : "https://sts." + sts_region + ".amazonaws.com" +
                                      (sts_region.starts_with("cn-") ? ".cn" : "");
    }
    if (!endpoint::parse(source.sts_endpoint))
      throw std::runtime_error("invalid STS endpoint \"" + source.sts_endpoint +
                               "\": expected http(s)://host[:port]");
    return source;
  }
  // 3. The container endpoint: EKS Pod Identity (FULL_URI) or ECS (RELATIVE_URI).
  auto url = env_or(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (url.empty()) {
    const auto relative = env_or(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    if (!relative.empty()) url = "http://169.254.170.2" + relative;
  }
  if (!url.empty()) {
    const auto target = endpoint::parse(url);
    if (!target)
      throw std::runtime_error("invalid AWS_CONTAINER_CREDENTIALS_FULL_URI \"" + url +
                               "\": expected http(s)://host[:port][/path]");
    if (!allowed_container_host(*target))
      throw std::runtime_error("AWS_CONTAINER_CREDENTIALS_FULL_URI " + url +
                               ": over http only loopback, 169.254.170.2, 169.254.170.23 and "
                               "fd00:ec2::23 may serve credentials");
    source.from = aws_credential_source::kind::container;
    source.url = url;
    source.token_file = env_or(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    source.token = env_or(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
    return source;
  }
  throw std::runtime_error(
      "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_ROLE_ARN and "
      "AWS_WEB_IDENTITY_TOKEN_FILE (IRSA), or AWS_CONTAINER_CREDENTIALS_FULL_URI and "
      "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (EKS Pod Identity)");
}

aws_credentials::aws_credentials(aws_credential_source source) : source_(std::move(source)) {
  if (!refreshes()) credentials_ = source_.keys;
}

result<sigv4::credentials> aws_credentials::current(std::string& why) const {
  std::lock_guard lock(mutex_);
  const std::string last =
      last_error_.empty() ? "" : " (the last fetch failed: " + last_error_ + ")";
  if (!credentials_) {
    why = "no AWS credentials from " + source_.describe() + " yet" + last;
    return errc::backend_unavailable;
  }
  if (credentials_->expiration && system_clock::now() >= *credentials_->expiration) {
    why = "the AWS credentials from " + source_.describe() + " have expired" + last;
    return errc::backend_unavailable;
  }
  return *credentials_;
}

net::awaitable<result<sigv4::credentials>> aws_credentials::async_fetch(std::string& why) {
  sigv4::credentials out;
  if (source_.from == aws_credential_source::kind::web_identity) {
    const auto token = read_token(source_.token_file);
    if (!token || token->empty()) {
      why = "cannot read the web identity token " + source_.token_file;
      co_return errc::backend_unavailable;
    }
    // STS query API, unsigned: the token is the proof.
    const auto target = *endpoint::parse(source_.sts_endpoint);
    std::vector<std::pair<std::string, std::string>> no_headers;
    auto client = co_await client_for(target, source_.ca_file, std::move(no_headers));
    std::string form = "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" +
                       url_encode(source_.role_arn) +
                       "&RoleSessionName=" + url_encode(source_.session_name) +
                       "&WebIdentityToken=" + url_encode(*token);
    // Named locals: GCC 12 destroys temporaries in a co_await expression twice.
    std::string root = "/";
    std::string form_type = "application/x-www-form-urlencoded";
    auto answer = co_await client->async_request(
        bhttp::verb::post, std::move(root), std::move(form), std::move(form_type), kFetchTimeout);
    if (!answer) {
      why = "cannot reach STS at " + source_.sts_endpoint;
      co_return errc::backend_unavailable;
    }
    if (answer->status != 200) {
      why = "STS answered " + std::to_string(answer->status) + ": " +
            xml_text(answer->body, "Code").value_or("") + " " +
            core::printable(xml_text(answer->body, "Message").value_or(answer->body), 300);
      co_return errc::backend_unavailable;
    }
    const auto credentials = xml_text(answer->body, "Credentials").value_or("");
    out.access_key_id = xml_text(credentials, "AccessKeyId").value_or("");
    out.secret_access_key = xml_text(credentials, "SecretAccessKey").value_or("");
    out.session_token = xml_text(credentials, "SessionToken").value_or("");
    out.expiration = parse_iso8601(xml_text(credentials, "Expiration").value_or(""));
  } else {
    std::string token = source_.token;
    if (!source_.token_file.empty()) {
      const auto read = read_token(source_.token_file);
      if (!read) {
        why = "cannot read the authorization token " + source_.token_file;
        co_return errc::backend_unavailable;
      }
      token = *read;
    }
    if (token.find_first_of("\r\n") != std::string::npos) {
      why = "the container authorization token holds a line break";
      co_return errc::backend_unavailable;
    }
    auto target = *endpoint::parse(source_.url);
    std::string path = target.base_path.empty() ? "/" : target.base_path;
    target.base_path.clear();
    // The token goes as it is, without "Bearer " (the container credential provider).
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty()) headers.emplace_back("Authorization", token);
    auto client = co_await client_for(target, source_.ca_file, std::move(headers));
    auto answer = co_await client->async_get(std::move(path), kFetchTimeout);
    if (!answer) {
      why = "cannot reach " + source_.url;
      co_return errc::backend_unavailable;
    }
    if (answer->status != 200) {
      why = source_.url + " answered " + std::to_string(answer->status) + ": " +
            core::printable(answer->body, 300);
      co_return errc::backend_unavailable;
    }
    const auto json = nlohmann::json::parse(answer->body, nullptr, false);
    const auto field = [&](const char* name) {
      return json.is_object() && json.contains(name) && json[name].is_string()
                 ? json[name].get<std::string>()
                 : std::string();
    };
    out.access_key_id = field("AccessKeyId");
    out.secret_access_key = field("SecretAccessKey");
    out.session_token = field("Token");
    out.expiration = parse_iso8601(field("Expiration"));
  }
  if (out.access_key_id.empty() || out.secret_access_key.empty() || !out.expiration) {
    why = "the answer holds no AccessKeyId, SecretAccessKey and Expiration";
    co_return errc::protocol_error;
  }
  co_return out;
}

bool aws_credentials::first_fetch_done() const {
  std::lock_guard lock(mutex_);
  return fetched_ || !refreshes();
}

net::awaitable<bool> aws_credentials::async_fetch_once() {
  if (!refreshes()) co_return true;
  std::string why;
  auto fetched = co_await async_fetch(why);
  std::lock_guard lock(mutex_);
  fetched_ = true;
  if (!fetched) {
    last_error_ = why;
    core::log::warning("AWS credentials from " + source_.describe() + ": " + why);
    co_return false;
  }
  credentials_ = *fetched;
  last_error_.clear();
  co_return true;
}

net::awaitable<void> aws_credentials::async_keep_fresh() {
  if (!refreshes()) co_return;
  for (;;) {
    const bool fetched = co_await async_fetch_once();
    if (!fetched) {
      std::lock_guard lock(mutex_);
      throw std::runtime_error("AWS credentials: " + last_error_);
    }
    system_clock::time_point expiration;
    {
      std::lock_guard lock(mutex_);
      expiration = *credentials_->expiration;
    }
    const auto now = system_clock::now();
    core::log::verbose(1, [&] {
      return "AWS credentials from " + source_.describe() + " valid for " +
             std::to_string(
                 std::chrono::duration_cast<std::chrono::seconds>(expiration - now).count()) +
             " s";
    });
    // kRefreshBefore the expiration; for credentials shorter-lived than that, half-way.
    auto wait = expiration - now - kRefreshBefore;
    if (wait <= system_clock::duration::zero()) wait = (expiration - now) / 2;
    wait = std::max<system_clock::duration>(wait, std::chrono::seconds(1));
    net::steady_timer timer(co_await net::this_coro::executor,
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait));
    co_await timer.async_wait(net::use_awaitable);
  }
}

sigv4_signer::sigv4_signer(std::shared_ptr<aws_credentials> credentials, sigv4::signing_scope scope)
    : credentials_(std::move(credentials)), scope_(std::move(scope)) {}

std::string sigv4_signer::sign(bhttp::request<bhttp::string_body>& request) const {
  std::string why;
  const auto credentials = credentials_->current(why);
  if (!credentials) return "not sending the request unsigned: " + why;
  sigv4::sign_request(request, *credentials, scope_, system_clock::now());
  return {};
}

}  // namespace gma::adapters::http_client
