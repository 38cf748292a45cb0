#pragma once
/// @file The one parser of request targets: routing (server/handlers/route) and authorization
/// (server/auth/request_info) both derive what a request asks for from it, so they can never
/// disagree about which resource a path names. Pure functions; thread-safe.

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace gma::core {

struct request_path {
  /// False for a target that names nothing: a malformed escape, a path that does not start
  /// with '/', or an encoded '/' (%2F) inside a segment, which would let the served resource
  /// and the authorized one differ. Such a request is a 404.
  bool valid = false;
  /// The percent-decoded segments ("%2A" is "*"); a single trailing empty segment ("/apis/")
  /// is dropped.
  std::vector<std::string> segments;
  /// The decoded path, for non-resource authorization ("/healthz").
  std::string path;
  /// Form-decoded query parameters; the first value of a key wins, as url.Values.Get does. A
  /// malformed query string makes the target invalid.
  std::map<std::string, std::string> query;
};

request_path parse_request_path(std::string_view target);

}  // namespace gma::core
