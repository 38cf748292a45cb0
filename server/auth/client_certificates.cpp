#include "server/auth/client_certificates.hpp"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>

#include "server/core/log.hpp"

namespace gma::auth {
namespace {

struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_free>;

x509_ptr from_der(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  return x509_ptr(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

std::vector<std::string> name_entries(X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    unsigned char* utf8 = nullptr;
    const int n =
        ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n >= 0) out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
  }
  return out;
}

/// notAfter as a time point; the distant past when it cannot be read, so that nothing is kept.
std::chrono::system_clock::time_point not_after(X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
    return std::chrono::system_clock::time_point::min();
  return saturating_from_time_t(timegm(&tm));
}

/// The earliest notAfter of the chain X509_verify_cert built (leaf, intermediates, root).
std::chrono::system_clock::time_point chain_valid_until(X509_STORE_CTX* ctx) {
  auto until = std::chrono::system_clock::time_point::max();
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  for (int i = 0; chain && i < sk_X509_num(chain); ++i)
    until = std::min(until, not_after(sk_X509_value(chain, i)));
  return until;
}

}  // namespace

std::chrono::system_clock::time_point saturating_from_time_t(std::time_t t) noexcept {
  using clock = std::chrono::system_clock;
  // from_time_t multiplies the seconds into the clock's nanoseconds, which overflows (UB, in
  // practice a wrap into the past) after 2262; compare in seconds first.
  constexpr auto most = std::chrono::duration_cast<std::chrono::seconds>(clock::duration::max());
  constexpr auto least = std::chrono::duration_cast<std::chrono::seconds>(clock::duration::min());
  if (t >= most.count()) return clock::time_point::max();
  if (t <= least.count()) return clock::time_point::min();
  return clock::from_time_t(t);
}

ca_bundle::ca_bundle(const std::string& pem, std::string description)
    : store_(X509_STORE_new()), description_(std::move(description)) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store_, cert);
    X509_free(cert);
    ++count;
  }
  BIO_free(bio);
  if (count == 0) {
    X509_STORE_free(store_);
    throw std::runtime_error(description_ + ": no PEM certificate found");
  }
}

ca_bundle::~ca_bundle() { X509_STORE_free(store_); }

std::optional<certificate_identity> ca_bundle::verify(
    const std::vector<std::string>& der_chain, std::chrono::system_clock::time_point at) const {
  ++verifications_;
  if (der_chain.empty()) return std::nullopt;
  x509_ptr leaf = from_der(der_chain.front());
  if (!leaf) return std::nullopt;
  STACK_OF(X509)* intermediates = sk_X509_new_null();
  std::vector<x509_ptr> owned;
  for (std::size_t i = 1; i < der_chain.size(); ++i) {
    if (auto cert = from_der(der_chain[i])) {
      sk_X509_push(intermediates, cert.get());
      owned.push_back(std::move(cert));
    }
  }
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  bool ok = X509_STORE_CTX_init(ctx, store_, leaf.get(), intermediates) == 1;
  auto valid_until = std::chrono::system_clock::time_point::min();
  if (ok) {
    // ExtKeyUsage ClientAuth, as Go's x509 verify options in the apiserver require.
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx),
                               std::chrono::system_clock::to_time_t(at));
    ok = X509_verify_cert(ctx) == 1;
    if (ok) {
      valid_until = chain_valid_until(ctx);
    } else {
      core::log::verbose(2, [&] {
        return "client certificate not verified by " + description_ + ": " +
               X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
      });
    }
  }
  X509_STORE_CTX_free(ctx);
  sk_X509_free(intermediates);
  if (!ok) return std::nullopt;
  X509_NAME* subject = X509_get_subject_name(leaf.get());
  const auto cn = name_entries(subject, NID_commonName);
  return certificate_identity{cn.empty() ? "" : cn.front(),
                              name_entries(subject, NID_organizationName), valid_until};
}

}  // namespace gma::auth
