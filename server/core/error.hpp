#pragma once
/// @file Error codes of the domain core and the adapters, as a Boost.System category.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace gma {

template <class T>
using result = boost::system::result<T>;
using boost::system::error_code;

/// Why a metrics request could not be answered. Each value maps to one HTTP status (the
/// error_reply of server/handlers/api_handler.cpp) so that the client sees the Kubernetes reason.
enum class errc {
  invalid_selector = 1,    ///< 400: the label selector does not parse or is not supported.
  bad_request,             ///< 400: another malformed request parameter.
  metric_not_found,        ///< 404: no such metric, or no data for the named object.
  path_not_found,          ///< 404: the path names no API resource.
  backend_unavailable,     ///< 503: Prometheus could not be reached or timed out.
  backend_error,           ///< 500: Prometheus answered with an error or an unusable body.
  kubernetes_unavailable,  ///< 503: the pod list is needed but not configured or not synced.
  protocol_error,          ///< 500: an upstream HTTP exchange was malformed.
};

/// The category of gma::errc. Thread-safe; a process-wide singleton.
const boost::system::error_category& gma_category() noexcept;

inline error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), gma_category()}; }

}  // namespace gma

template <>
struct boost::system::is_error_code_enum<gma::errc> : std::true_type {};
