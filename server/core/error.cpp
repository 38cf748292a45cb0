#include "server/core/error.hpp"

#include <string>

namespace gma {
namespace {

class gma_error_category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "gma"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::invalid_selector:
        return "invalid label selector";
      case errc::bad_request:
        return "bad request";
      case errc::metric_not_found:
        return "metric not found";
      case errc::path_not_found:
        return "path not found";
      case errc::backend_unavailable:
        return "unavailable: no answer within the deadline";
      case errc::backend_error:
        return "answered with an error";
      case errc::kubernetes_unavailable:
        return "the pod list from the Kubernetes API is not available";
      case errc::protocol_error:
        return "protocol error";
    }
    return "unknown gma error";
  }
};

}  // namespace

const boost::system::error_category& gma_category() noexcept {
  static const gma_error_category category;
  return category;
}

}  // namespace gma
