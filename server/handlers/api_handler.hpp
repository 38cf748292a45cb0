#pragma once
/// @file Answers every route of the server: discovery, custom and external metrics, health,
/// version and our own /metrics. Transport-free: it takes a method and target and returns a
/// status, content type and body, so it is tested without sockets.
///
/// @par Thread safety
/// async_handle may run concurrently on many strands. The providers, lister, readiness
/// sources and registry are borrowed and must outlive the handler.

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <vector>

#include "server/core/provider.hpp"
#include "server/core/status.hpp"

namespace gma::handlers {

/// One HTTP request as the transport hands it over.
struct request {
  std::string method;
  std::string target;
  /// Header fields with lower-case names, in arrival order; repeated fields repeat.
  std::vector<std::pair<std::string, std::string>> headers;
  /// The TLS client's certificate chain (leaf first, DER), verified by nobody yet; shared by
  /// every request of the connection. nullptr without a client certificate.
  std::shared_ptr<const std::vector<std::string>> client_chain;
};

struct reply {
  unsigned status = 200;
  std::string content_type;
  std::string body;
};

struct handler_dependencies {
  core::custom_metrics_provider* custom = nullptr;
  core::external_metrics_provider* external = nullptr;
  /// nullptr when the server has no Kubernetes access.
  const core::pod_lister* pods = nullptr;
  std::vector<const core::readiness_source*> readiness;
  prometheus::Registry* registry = nullptr;
  std::string version = "v0.0.0";
};

/// A Status error as the reply Kubernetes sends: its code, application/json, Go's JSON.
reply status_reply(const core::status_error& e);

/// Anything that turns a request into a reply; the server calls one of these.
class request_handler {
 public:
  virtual ~request_handler() = default;
  virtual boost::asio::awaitable<reply> async_handle(request req) = 0;
};

class api_handler final : public request_handler {
 public:
  explicit api_handler(handler_dependencies deps);

  boost::asio::awaitable<reply> async_handle(request req) override;

 private:
  boost::asio::awaitable<reply> async_dispatch(const request& req, const char*& route_name);

  handler_dependencies deps_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
};

}  // namespace gma::handlers
