#include "adapters/http_client/aws_sigv4.hpp"

#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>

#include "adapters/http_client/http_client.hpp"
#include "server/core/strings.hpp"

namespace gma::adapters::http_client::sigv4 {
namespace {

namespace bhttp = boost::beast::http;

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 15];
  }
  return out;
}

/// Binary HMAC-SHA256 with `key` over `data`.
std::string hmac(std::string_view key, std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  unsigned int size = sizeof digest;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest, &size);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

/// A header value as SigV4 canonicalises it: trimmed, inner runs of spaces made one.
std::string trimmed_value(std::string_view value) {
  std::string out;
  bool space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string hex_sha256(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return to_hex(digest, sizeof digest);
}

std::string signing_key(std::string_view secret, std::string_view date,
                        const signing_scope& scope) {
  const std::string date_key = hmac("AWS4" + std::string(secret), date);
  return hmac(hmac(hmac(date_key, scope.region), scope.service), "aws4_request");
}

std::string canonical_uri(std::string_view path) {
  std::vector<std::string_view> segments;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const auto segment = path.substr(start, end - start);
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.push_back(segment);
    }
    start = end + 1;
  }
  std::string out;
  for (const auto segment : segments) out += "/" + url_encode(segment);
  const bool trailing_slash =
      path.size() > 1 && (path.ends_with('/') || path.ends_with("/.") || path.ends_with("/.."));
  if (out.empty() || trailing_slash) out += '/';
  return out;
}

std::string canonical_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t start = 0;
  while (start < query.size()) {
    auto end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const auto pair = query.substr(start, end - start);
    start = end + 1;
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    const auto name = pair.substr(0, eq);
    const auto value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    // A malformed escape is signed as it is sent: encoded again, '%' and all.
    pairs.emplace_back(url_encode(core::percent_decode(name, false).value_or(std::string(name))),
                       url_encode(core::percent_decode(value, false).value_or(std::string(value))));
  }
  std::sort(pairs.begin(), pairs.end());
  std::string out;
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += '&';
    out += name + "=" + value;
  }
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[17];
  std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
  return text;
}

signature_steps sign(const request_parts& request, const credentials& credentials,
                     std::string_view date, const signing_scope& scope) {
  // Headers by lowercase name, repeated ones joined with ',' in the order sent.
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [name, value] : request.headers) {
    auto lower = core::ascii_lower(name);
    auto same = std::find_if(headers.begin(), headers.end(),
                             [&](const auto& h) { return h.first == lower; });
    if (same != headers.end()) {
      same->second += "," + trimmed_value(value);
    } else {
      headers.emplace_back(std::move(lower), trimmed_value(value));
    }
  }
  std::stable_sort(headers.begin(), headers.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  signature_steps out;
  std::string canonical_headers;
  for (const auto& [name, value] : headers) {
    canonical_headers += name + ":" + value + "\n";
    if (!out.signed_headers.empty()) out.signed_headers += ';';
    out.signed_headers += name;
  }
  const auto question = request.target.find('?');
  const auto path = request.target.substr(0, question);
  const auto query =
      question == std::string_view::npos ? std::string_view() : request.target.substr(question + 1);
  out.canonical_request = std::string(request.method) + "\n" + canonical_uri(path) + "\n" +
                          canonical_query(query) + "\n" + canonical_headers + "\n" +
                          out.signed_headers + "\n" + hex_sha256(request.payload);
  const std::string day(date.substr(0, 8));
  const std::string credential_scope =
      day + "/" + scope.region + "/" + scope.service + "/aws4_request";
  out.string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(date) + "\n" + credential_scope + "\n" +
                       hex_sha256(out.canonical_request);
  const auto mac = hmac(signing_key(credentials.secret_access_key, day, scope), out.string_to_sign);
  out.signature = to_hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());
  out.authorization = "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" +
                      credential_scope + ", SignedHeaders=" + out.signed_headers +
                      ", Signature=" + out.signature;
  return out;
}

void sign_request(bhttp::request<bhttp::string_body>& request, const credentials& credentials,
                  const signing_scope& scope, std::chrono::system_clock::time_point now) {
  const std::string date = amz_date(now);
  request.erase(bhttp::field::authorization);
  request.set("X-Amz-Date", date);
  if (credentials.session_token.empty()) {
    request.erase("X-Amz-Security-Token");
  } else {
    request.set("X-Amz-Security-Token", credentials.session_token);
  }
  request_parts parts{request.method_string(), request.target(), {}, request.body()};
  for (const auto& field : request) {
    const auto name = core::ascii_lower(field.name_string());
    if (name == "user-agent" || name == "expect" || name == "connection" ||
        name == "x-amzn-trace-id")
      continue;
    parts.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  request.set(bhttp::field::authorization, sign(parts, credentials, date, scope).authorization);
}

}  // namespace gma::adapters::http_client::sigv4
