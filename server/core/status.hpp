#pragma once
/// @file metav1.Status error bodies, as k8s.io/apimachinery/pkg/api/errors builds them.

#include <string>
#include <string_view>

#include "server/core/auth_types.hpp"
#include "server/core/error.hpp"
#include "server/core/go_json.hpp"

namespace gma::core {

/// A Status body with its HTTP code. Value type.
struct status_error {
  int code;
  json body;
};

/// 404 NotFound for a metric (custom-metrics-apiserver NewMetricNotFoundError):
/// "the server could not find the metric <metric> for <resource>".
status_error metric_not_found(std::string_view resource, std::string_view metric);
/// 404 for a path that names no API resource ("the server could not find the requested resource").
status_error resource_not_found();
/// 400 BadRequest with the given message.
status_error bad_request(std::string_view message);
/// 405 MethodNotAllowed.
status_error method_not_allowed();
/// 404 NotFound for an object, as errors.NewNotFound(groupResource, name) builds it:
/// `pods "x" not found`, `podmetrics.metrics.k8s.io "ns/x" not found`.
status_error object_not_found(std::string_view group, std::string_view resource,
                              std::string_view name);
/// 405 MethodNotAllowed as errors.NewMethodNotSupported(groupResource, action) builds it:
/// `watch is not supported on resources of kind "pods.metrics.k8s.io"`.
status_error method_not_supported(std::string_view group, std::string_view resource,
                                  std::string_view action);
/// 503 ServiceUnavailable with the given message.
status_error service_unavailable(std::string_view message);
/// 401 Unauthorized ("Unauthorized"), for credentials the cluster rejected.
status_error unauthorized();
/// 403 Forbidden as k8s.io/apiserver's responsewriters.Forbidden writes it, for the request's
/// attributes and the reviewer's reason (may be empty).
status_error forbidden(const request_attributes& attributes, std::string_view reason);
/// 500 InternalError ("Internal error occurred: <cause>") with the cause in details.
status_error internal_error(std::string_view cause);

/// The Status a client gets for a metrics provider's error on `metric` of `resource`: 404 for
/// an unknown metric, 400 for a selector the backend cannot apply, 503 while Prometheus or the
/// pod list is unavailable, 500 otherwise. What the API handler answers and `explain-hpa`
/// reports.
status_error provider_error_status(const error_code& ec, std::string_view resource,
                                   std::string_view metric);

}  // namespace gma::core
