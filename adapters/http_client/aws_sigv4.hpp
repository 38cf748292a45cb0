#pragma once
/// @file AWS Signature Version 4 (AWS IAM User Guide, "Create a signed AWS API request") over
/// OpenSSL's SHA-256 and HMAC-SHA256: the canonical request, the string to sign, the signing
/// key and the Authorization header, for Amazon Managed Service for Prometheus (service
/// "aps") and any other SigV4 service. Only header-signed requests; no presigned URLs, no
/// chunked (streaming) payloads.
///
/// @par Thread safety
/// Pure functions of their arguments: safe to call from any thread at once.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gma::adapters::http_client::sigv4 {

/// An access key, and for temporary credentials (STS, EKS Pod Identity) the session token
/// that goes with it.
struct credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  ///< empty for long-term keys
  /// When temporary credentials stop working; nullopt for keys that do not expire.
  std::optional<std::chrono::system_clock::time_point> expiration;
};

/// Where a signature is valid: the region and the service ("aps").
struct signing_scope {
  std::string region;
  std::string service;
};

/// What a request is signed over, as it goes on the wire.
struct request_parts {
  std::string_view method;  ///< "GET"
  std::string_view target;  ///< the path and the query as sent: "/api/v1/query?query=up"
  /// Every header to sign (name as sent, value as sent); must include Host and X-Amz-Date, and
  /// X-Amz-Security-Token with temporary credentials.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view payload;  ///< the body; empty for a GET
};

/// Every intermediate of a signature, so that tests can compare each with AWS' examples.
struct signature_steps {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  ///< "host;x-amz-date"
  std::string signature;       ///< lowercase hex
  std::string authorization;   ///< the Authorization header's value
};

/// Lowercase hex SHA-256 of `data` (the HashedPayload of an empty body is the SHA-256 of "").
std::string hex_sha256(std::string_view data);

/// The binary signing key: HMAC chained over "AWS4"+secret, the date (yyyymmdd), the region,
/// the service and "aws4_request".
std::string signing_key(std::string_view secret, std::string_view date, const signing_scope& scope);

/// The CanonicalURI of a path: '.' and '..' segments and repeated '/' removed (as for every
/// service but S3), each segment URI-encoded (a '%' already on the wire is encoded again);
/// "/" for an empty path.
std::string canonical_uri(std::string_view path);

/// The CanonicalQueryString of a query (without '?'): each name and value decoded and
/// re-encoded with RFC 3986 (space is %20), sorted by name and then value, joined with '&'.
std::string canonical_query(std::string_view query);

/// `time` as X-Amz-Date: UTC "20150830T123600Z".
std::string amz_date(std::chrono::system_clock::time_point time);

/// Signs `request` at `date` (the X-Amz-Date value among its headers).
signature_steps sign(const request_parts& request, const credentials& credentials,
                     std::string_view date, const signing_scope& scope);

/// Signs a request ready to send (body and headers final) in place: sets X-Amz-Date to `now`,
/// X-Amz-Security-Token for temporary credentials and Authorization. Every header is signed
/// but Authorization, User-Agent, Expect, Connection and X-Amzn-Trace-Id, which proxies add,
/// rewrite or drop (aws-sdk-go-v2 leaves out the same, but Connection, which is hop-by-hop).
void sign_request(boost::beast::http::request<boost::beast::http::string_body>& request,
                  const credentials& credentials, const signing_scope& scope,
                  std::chrono::system_clock::time_point now);

}  // namespace gma::adapters::http_client::sigv4
