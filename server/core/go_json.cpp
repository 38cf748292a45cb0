#include "server/core/go_json.hpp"

namespace gma::core {

std::string to_go_json(const json& value) {
  const std::string compact = value.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(compact.size() + 1);
  // These characters can only occur inside JSON strings, so a plain scan is safe.
  for (std::size_t i = 0; i < compact.size(); ++i) {
    const char c = compact[i];
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else if (c == '\xE2' && i + 2 < compact.size() && compact[i + 1] == '\x80' &&
               (compact[i + 2] == '\xA8' || compact[i + 2] == '\xA9')) {
      out += compact[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  out += '\n';
  return out;
}

}  // namespace gma::core
