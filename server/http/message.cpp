#include "server/http/message.hpp"

#include "server/core/go_json.hpp"

namespace gma::http {

reply status_reply(const core::status_error& e) {
  return {static_cast<unsigned>(e.code), "application/json", core::to_go_json(e.body)};
}

}  // namespace gma::http
