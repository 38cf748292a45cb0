#include "server/core/status.hpp"

namespace gma::core {
namespace {

json failure(std::string_view message, const char* reason, int code,
             const json* details = nullptr) {
  json body = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
               {"status", "Failure"}, {"message", message}, {"reason", reason}};
  if (details) body["details"] = *details;
  body["code"] = code;
  return body;
}

}  // namespace

status_error metric_not_found(std::string_view resource, std::string_view metric) {
  const std::string message = "the server could not find the metric " + std::string(metric) +
                              " for " + std::string(resource);
  return {404, failure(message, "NotFound", 404)};
}

status_error resource_not_found() {
  const json details = json::object();
  return {404,
          failure("the server could not find the requested resource", "NotFound", 404, &details)};
}

status_error bad_request(std::string_view message) {
  return {400, failure(message, "BadRequest", 400)};
}

status_error method_not_allowed() {
  const json details = json::object();
  return {405, failure("the server does not allow this method on the requested resource",
                       "MethodNotAllowed", 405, &details)};
}

namespace {

std::string qualified(std::string_view group, std::string_view resource) {
  return group.empty() ? std::string(resource) : std::string(resource) + "." + std::string(group);
}

/// StatusDetails' group and kind, each left out when empty (omitempty).
json group_kind_details(std::string_view group, std::string_view resource) {
  json details = json::object();
  if (!group.empty()) details["group"] = group;
  if (!resource.empty()) details["kind"] = resource;
  return details;
}

}  // namespace

status_error object_not_found(std::string_view group, std::string_view resource,
                              std::string_view name) {
  json details = json::object();
  details["name"] = name;
  if (!group.empty()) details["group"] = group;
  if (!resource.empty()) details["kind"] = resource;
  return {404, failure(qualified(group, resource) + " \"" + std::string(name) + "\" not found",
                       "NotFound", 404, &details)};
}

status_error method_not_supported(std::string_view group, std::string_view resource,
                                  std::string_view action) {
  const json details = group_kind_details(group, resource);
  return {405, failure(std::string(action) + " is not supported on resources of kind \"" +
                           qualified(group, resource) + "\"",
                       "MethodNotAllowed", 405, &details)};
}

status_error service_unavailable(std::string_view message) {
  return {503, failure(message, "ServiceUnavailable", 503)};
}

status_error unauthorized() { return {401, failure("Unauthorized", "Unauthorized", 401)}; }

status_error forbidden(const request_attributes& a, std::string_view reason) {
  // authorizer's forbiddenMessage, wrapped by errors.NewForbidden.
  std::string message = "User \"" + a.user.name + "\" cannot " + a.verb;
  if (!a.resource_request) {
    message += " path \"" + a.path + "\"";
  } else {
    const std::string resource =
        a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
    message += " resource \"" + resource + "\" in API group \"" + a.api_group + "\"";
    message += a.namespace_.empty() ? " at the cluster scope"
                                    : " in the namespace \"" + a.namespace_ + "\"";
  }
  if (!reason.empty()) message += ": " + std::string(reason);
  const std::string qualified =
      a.resource_request ? (a.api_group.empty() ? a.resource : a.resource + "." + a.api_group) : "";
  if (qualified.empty()) {
    message = "forbidden: " + message;
  } else if (a.name.empty()) {
    message = qualified + " is forbidden: " + message;
  } else {
    message = qualified + " \"" + a.name + "\" is forbidden: " + message;
  }
  json details = json::object();
  if (a.resource_request) {
    if (!a.name.empty()) details["name"] = a.name;
    if (!a.api_group.empty()) details["group"] = a.api_group;
    if (!a.resource.empty()) details["kind"] = a.resource;
  }
  return {403, failure(message, "Forbidden", 403, &details)};
}

status_error internal_error(std::string_view cause) {
  const json details = {{"causes", json::array({json{{"message", cause}}})}};
  return {500, failure("Internal error occurred: " + std::string(cause), "InternalError", 500,
                       &details)};
}

status_error provider_error_status(const error_code& ec, std::string_view resource,
                                   std::string_view metric) {
  if (ec == errc::metric_not_found) return metric_not_found(resource, metric);
  if (ec == errc::invalid_selector)
    return bad_request(
        "unsupported label selector: the operators '>' and '<' cannot be applied to metric "
        "labels");
  if (ec == errc::backend_unavailable)
    return service_unavailable(
        "unable to fetch metrics: the metrics backend (Prometheus) is unavailable");
  if (ec == errc::kubernetes_unavailable)
    return service_unavailable("the pod list has not been read from the Kubernetes API yet");
  return internal_error("unable to fetch metrics");
}

}  // namespace gma::core
