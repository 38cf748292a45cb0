#pragma once
// Prometheus' side of the fake transport: the reply bodies a test answers with, and the PromQL
// of the requests the client under test sent. Pure functions, safe from any thread.

#include <string>

#include "server/core/strings.hpp"
#include "tests/support/fake_transport.hpp"

namespace gma::testing {

/// A successful /api/v1/query reply whose vector holds `elements` (JSON objects, comma-joined).
inline std::string vector_of(const std::string& elements) {
  return R"({"status":"success","data":{"resultType":"vector","result":[)" + elements + "]}}";
}

/// The PromQL of an /api/v1/query request, decoded ("?" if it does not decode).
inline std::string promql_of(const sent_request& r) {
  const auto start = r.target.find("query=") + 6;
  const auto end = r.target.find("&timeout=");
  return core::percent_decode(r.target.substr(start, end - start), false).value_or("?");
}

}  // namespace gma::testing
