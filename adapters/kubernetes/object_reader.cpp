#include "adapters/kubernetes/object_reader.hpp"

namespace gma::adapters::kubernetes {
namespace {

/// A failed result<json>: json is constructible from an enum, so errc needs saying so.
result<nlohmann::json> failed(const error_code& ec) {
  return result<nlohmann::json>(boost::system::in_place_error, ec);
}

}  // namespace

std::string object_path(const std::string& api_version, const std::string& plural,
                        const std::string& namespace_, const std::string& name) {
  const std::string root = api_version.find('/') == std::string::npos ? "/api/" : "/apis/";
  return root + api_version + "/namespaces/" + http_client::url_encode(namespace_) + "/" + plural +
         "/" + http_client::url_encode(name);
}

boost::asio::awaitable<result<nlohmann::json>> async_read_object(http_client::transport& client,
                                                                 std::string path,
                                                                 std::chrono::milliseconds timeout,
                                                                 read_failure& failure) {
  auto res = co_await client.async_get(path, timeout);
  if (!res) {
    failure = {0, "no answer from the Kubernetes API at " + client.target().url() + ": " +
                      res.error().message()};
    co_return failed(res.error());
  }
  auto body = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (res->status != 200) {
    // A Status body says why in its message; anything else is quoted.
    std::string why = body.is_object() && body.contains("message") && body["message"].is_string()
                          ? body["message"].get<std::string>()
                          : res->body.substr(0, 200);
    failure = {res->status, "HTTP " + std::to_string(res->status) + ": " + why};
    co_return failed(errc::backend_error);
  }
  if (!body.is_object()) {
    failure = {res->status, "GET " + path + " answered with something that is not a JSON object"};
    co_return failed(errc::protocol_error);
  }
  co_return body;
}

}  // namespace gma::adapters::kubernetes
