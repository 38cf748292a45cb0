#pragma once
// A transport that answers from a function instead of the network and records every request:
// the seam under api_client, rules_provider and the Kubernetes review clients.
//
// Thread safety: requests may arrive from any thread; a mutex guards the record and the
// responder, and the responder is called without it held.

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "adapters/http_client/http_client.hpp"

namespace gma::testing {

/// One request as the client under test handed it to the transport.
struct sent_request {
  boost::beast::http::verb method;
  std::string target;  ///< as passed: the endpoint's base path is not in it
  std::string body;
  std::string content_type;
  std::chrono::steady_clock::duration timeout;
};

class fake_transport final : public adapters::http_client::transport {
 public:
  using response = adapters::http_client::response;
  using responder = std::function<result<response>(const sent_request&)>;

  explicit fake_transport(const std::string& url = "http://prometheus.test:9090")
      : target_(*adapters::http_client::endpoint::parse(url)) {}

  /// Every later request is answered by `r`.
  void answer_with(responder r) {
    std::lock_guard lock(mutex_);
    responder_ = std::move(r);
  }

  /// Every later request gets `status` with a JSON `body`.
  void reply(unsigned status, std::string body) {
    answer_with([status, body = std::move(body)](const sent_request&) -> result<response> {
      return response{status, "application/json", body};
    });
  }

  /// Every later request fails as the http_client fails, with `code`.
  void fail(errc code) {
    answer_with([code](const sent_request&) -> result<response> { return code; });
  }

  std::vector<sent_request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  boost::asio::awaitable<result<response>> async_request(
      boost::beast::http::verb method, std::string target, std::string body,
      std::string content_type, std::chrono::steady_clock::duration timeout) override {
    sent_request sent{method, std::move(target), std::move(body), std::move(content_type), timeout};
    responder answer;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(sent);
      answer = responder_;
    }
    // No responder: as an unreachable server.
    if (!answer) co_return errc::backend_unavailable;
    co_return answer(sent);
  }

  const adapters::http_client::endpoint& target() const noexcept override { return target_; }

 private:
  adapters::http_client::endpoint target_;
  mutable std::mutex mutex_;
  responder responder_;                 // guarded by mutex_
  std::vector<sent_request> requests_;  // guarded by mutex_
};

}  // namespace gma::testing
