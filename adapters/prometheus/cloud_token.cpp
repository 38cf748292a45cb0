#include "adapters/prometheus/cloud_token.hpp"

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "adapters/http_client/client_tls.hpp"
#include "server/core/json_access.hpp"
#include "server/core/log.hpp"
#include "server/core/text_file.hpp"

namespace gma::adapters::prometheus {
namespace {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;
using std::chrono::seconds;

constexpr std::size_t kMaxTokenReplyBytes = 1 << 20;

/// Whole seconds, for log lines.
std::string in_seconds(clock::duration d) {
  return std::to_string(std::chrono::duration_cast<seconds>(d).count()) + "s";
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

/// expires_in as a number of seconds: a JSON number, or a string of digits (Azure AD v1).
std::optional<long long> seconds_in(const nlohmann::json& value) {
  if (value.is_number_integer()) return value.get<long long>();
  if (value.is_number_float()) return static_cast<long long>(value.get<double>());
  if (!value.is_string()) return std::nullopt;
  const auto& text = value.get_ref<const std::string&>();
  if (text.empty() || text.size() > 12 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return std::stoll(text);
}

}  // namespace

std::optional<token_grant> parse_token_response(std::string_view body, std::string& why) {
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    why = "the token response is not a JSON object";
    return std::nullopt;
  }
  token_grant grant;
  grant.access_token = core::string_at(doc, "access_token");
  if (grant.access_token.empty()) {
    why = "the token response has no access_token";
    return std::nullopt;
  }
  // A token goes into a header: a line break in it would split the request.
  if (grant.access_token.find_first_of("\r\n") != std::string::npos) {
    why = "the access_token holds a line break";
    return std::nullopt;
  }
  const auto type = doc.find("token_type");
  if (type != doc.end() && !(type->is_string() && iequals(type->get<std::string>(), "Bearer"))) {
    why = "the token_type is " + type->dump() + ", not Bearer";
    return std::nullopt;
  }
  const auto expires = doc.find("expires_in");
  const auto lifetime = expires == doc.end() ? std::nullopt : seconds_in(*expires);
  if (!lifetime || *lifetime <= 0) {
    why = expires == doc.end() ? "the token response has no expires_in"
                               : "the expires_in " + expires->dump() + " is not a positive number";
    return std::nullopt;
  }
  grant.expires_in = seconds(*lifetime);
  return grant;
}

std::string token_error_summary(unsigned status, std::string_view body) {
  std::string out = "HTTP " + std::to_string(status);
  const auto doc = nlohmann::json::parse(body, nullptr, false);
  const auto error = core::string_at(doc, "error");
  if (!error.empty()) {
    out += ", error " + error;
    const auto description = core::string_at(doc, "error_description");
    // Azure AD's descriptions run on with a trace and correlation id: the first line says it.
    if (!description.empty())
      out += ": " + description.substr(0, description.find_first_of("\r\n"));
    return out;
  }
  std::string start(body.substr(0, 200));
  std::replace_if(
      start.begin(), start.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return start.empty() ? out : out + ": " + start;
}

seconds refresh_after(seconds expires_in) {
  const seconds at_80_percent = expires_in * 4 / 5;
  const seconds five_minutes_before = expires_in - std::chrono::minutes(5);
  const seconds half = expires_in / 2;
  return std::max(seconds(1), std::max(half, std::min(at_80_percent, five_minutes_before)));
}

cloud_token_source::cloud_token_source(cloud_token_settings settings)
    : settings_(std::move(settings)) {
  auto target = http_client::endpoint::parse(settings_.token_url);
  if (!target)
    throw std::runtime_error("the " + std::string(provider_name()) + " token URL \"" +
                             settings_.token_url + "\" is not http(s)://host[:port]/path");
  endpoint_options_.target = *target;
  // The system's CAs verify login.microsoftonline.com; the metadata server is plain HTTP.
  if (target->tls) endpoint_options_.tls_context = http_client::make_client_tls_context({});
  // The metadata server refuses requests without it (a guard against SSRF through proxies).
  if (settings_.which == cloud_token_settings::provider::gcp)
    endpoint_options_.headers.emplace_back("Metadata-Flavor", "Google");
  endpoint_options_.max_idle_connections = 1;
}

const char* cloud_token_source::provider_name() const noexcept {
  return settings_.which == cloud_token_settings::provider::gcp ? "gcp" : "azure";
}

http_client::bearer_token cloud_token_source::current_token() {
  std::lock_guard lock(mutex_);
  if (!token_.empty() && clock::now() < expires_at_) return {token_, {}};
  std::string why = "no access token for Prometheus from " + std::string(provider_name()) + " (" +
                    settings_.token_url + "): ";
  if (!token_.empty())
    why += "the last one expired and refreshing it failed: " + last_failure_;
  else if (!last_failure_.empty())
    why += last_failure_;
  else
    why += "the first one has not arrived yet";
  return {{}, std::move(why)};
}

net::awaitable<std::optional<token_grant>> cloud_token_source::async_request(
    http_client::http_client& http, std::string& why) {
  http_client::outgoing_request request;
  if (settings_.which == cloud_token_settings::provider::azure) {
    // Kubelet rotates the projected token: read it for every exchange.
    auto assertion = core::read_text_file(settings_.federated_token_file);
    while (assertion && !assertion->empty() &&
           std::isspace(static_cast<unsigned char>(assertion->back())))
      assertion->pop_back();
    if (!assertion || assertion->empty()) {
      why = "cannot read the federated token from " + settings_.federated_token_file +
            " (AZURE_FEDERATED_TOKEN_FILE)";
      co_return std::nullopt;
    }
    // The client credentials grant with a federated assertion (Microsoft identity platform,
    // "client credentials flow", third case; RFC 7523 2.2).
    request.method = http_client::bhttp::verb::post;
    request.content_type = "application/x-www-form-urlencoded";
    request.body =
        "client_id=" + http_client::url_encode(settings_.client_id) +
        "&scope=" + http_client::url_encode(settings_.scope) + "&client_assertion_type=" +
        http_client::url_encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") +
        "&client_assertion=" + http_client::url_encode(*assertion) +
        "&grant_type=client_credentials";
  }
  unsigned status = 0;
  std::string body;
  std::string transport_reason;
  bool too_large = false;
  http_client::body_handler handler{[&](const http_client::response_head& head) {
                                      status = head.status;
                                      return true;
                                    },
                                    [&](std::string_view piece) {
                                      too_large = body.size() + piece.size() > kMaxTokenReplyBytes;
                                      if (!too_large) body.append(piece);
                                      return !too_large;
                                    },
                                    [&](const std::string& reason) { transport_reason = reason; }};
  const auto timeout = settings_.request_timeout;
  auto answered = co_await http.async_request_streamed(std::move(request), timeout, handler);
  if (!answered) {
    why = transport_reason.empty() ? answered.error().message() : transport_reason;
    co_return std::nullopt;
  }
  if (too_large) {
    why = "the token response is larger than 1 MiB";
    co_return std::nullopt;
  }
  if (status != 200) {
    why = token_error_summary(status, body);
    co_return std::nullopt;
  }
  co_return parse_token_response(body, why);
}

net::awaitable<bool> cloud_token_source::async_fetch_once() {
  const auto executor = co_await net::this_coro::executor;
  http_client::http_client http(executor, endpoint_options_);
  const auto asked_at = clock::now();
  std::string why;
  auto grant = co_await async_request(http, why);
  std::lock_guard lock(mutex_);
  if (!grant) {
    last_failure_ = std::move(why);
    core::log::warning("prometheus-token (" + std::string(provider_name()) +
                       "): cannot get an access token from " + settings_.token_url + ": " +
                       last_failure_);
    co_return false;
  }
  // Counted from the request, not the answer: the token cannot outlive what the server meant.
  token_ = std::move(grant->access_token);
  expires_at_ = asked_at + grant->expires_in;
  last_failure_.clear();
  co_return true;
}

net::awaitable<void> cloud_token_source::async_run() {
  const auto executor = co_await net::this_coro::executor;
  http_client::http_client http(executor, endpoint_options_);
  net::steady_timer timer(executor);
  const std::string who = "prometheus-token (" + std::string(provider_name()) + "): ";
  int failures = 0;
  for (;;) {
    const auto asked_at = clock::now();
    std::string why;
    auto grant = co_await async_request(http, why);
    clock::duration wait;
    if (grant) {
      wait = refresh_after(grant->expires_in);
      const bool first = [&] {
        std::lock_guard lock(mutex_);
        const bool was_missing = token_.empty() || clock::now() >= expires_at_;
        token_ = std::move(grant->access_token);
        expires_at_ = asked_at + grant->expires_in;
        last_failure_.clear();
        return was_missing;
      }();
      const std::string line = who + "got an access token from " + settings_.token_url +
                               ", valid for " + in_seconds(grant->expires_in) + "; the next in " +
                               in_seconds(wait);
      if (first || failures > 0) {
        core::log::info(line);
      } else {
        core::log::verbose(1, line);
      }
      failures = 0;
    } else {
      wait = std::min<clock::duration>(settings_.max_retry,
                                       settings_.first_retry * (1LL << std::min(failures, 16)));
      ++failures;
      std::string state;
      {
        std::lock_guard lock(mutex_);
        last_failure_ = why;
        const auto now = clock::now();
        state = !token_.empty() && now < expires_at_
                    ? "the current one expires in " + in_seconds(expires_at_ - now)
                    : "requests to Prometheus fail with 503 until one arrives";
      }
      core::log::warning(who + "cannot get an access token from " + settings_.token_url + ": " +
                         why + "; " + state + "; retrying in " + in_seconds(wait));
    }
    timer.expires_after(wait);
    co_await timer.async_wait(net::use_awaitable);
  }
}

}  // namespace gma::adapters::prometheus
