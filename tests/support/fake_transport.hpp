#pragma once
// A transport that answers from a function instead of the network and records every request:
// the seam under api_client, rules_provider and the Kubernetes review clients.
//
// Thread safety: requests may arrive from any thread; a mutex guards the record and the
// responder, and the responder is called without it held.

#include <algorithm>
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
  std::string accept = "application/json";
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

  /// Streamed answers arrive in pieces of this many bytes (default 7), so that every reader
  /// meets tokens split across pieces.
  void set_piece_size(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    piece_size_ = std::max<std::size_t>(bytes, 1);
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

  boost::asio::awaitable<result<unsigned>> async_request_streamed(
      adapters::http_client::outgoing_request request, std::chrono::steady_clock::duration timeout,
      adapters::http_client::body_handler handler) override {
    sent_request sent{request.method,
                      std::move(request.target),
                      std::move(request.body),
                      std::move(request.content_type),
                      timeout,
                      std::move(request.accept)};
    responder answer;
    std::size_t piece_size = 0;
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(sent);
      answer = responder_;
      piece_size = piece_size_;
    }
    if (!answer) co_return errc::backend_unavailable;
    auto res = answer(sent);
    if (!res) co_return res.error();
    if (!handler.on_head({res->status, res->content_type})) co_return res->status;
    const std::string_view body = res->body;
    for (std::size_t at = 0; at < body.size(); at += piece_size)
      if (!handler.on_piece(body.substr(at, piece_size))) break;
    co_return res->status;
  }

  const adapters::http_client::endpoint& target() const noexcept override { return target_; }

 private:
  adapters::http_client::endpoint target_;
  mutable std::mutex mutex_;
  responder responder_;                 // guarded by mutex_
  std::vector<sent_request> requests_;  // guarded by mutex_
  std::size_t piece_size_ = 7;          // guarded by mutex_
};

}  // namespace gma::testing
