#pragma once
/// @file CA bundles and client-certificate verification (k8s.io/apiserver x509 authenticator):
/// a chain must verify to the bundle with the client-auth purpose; the user is the CN and the
/// groups are the O values. Immutable after construction (but for a counter); thread-safe.
///
/// Certificate times are system_clock time points. A notAfter beyond the clock's range (after
/// 2262 with its nanoseconds, e.g. 99991231235959Z) is time_point::max(): it must not wrap
/// into the past.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

typedef struct x509_store_st X509_STORE;

namespace gma::auth {

struct certificate_identity {
  std::string common_name;
  std::vector<std::string> organizations;
  /// The earliest notAfter of the verified chain: past it the chain no longer verifies, so a
  /// verdict kept for a connection must not outlive it. time_point::max() past the clock's range.
  std::chrono::system_clock::time_point valid_until;
};

/// `t` as a system_clock time point; time_point::max() (min()) beyond the clock's range.
std::chrono::system_clock::time_point saturating_from_time_t(std::time_t t) noexcept;

class ca_bundle {
 public:
  /// Parses every certificate in `pem`; throws std::runtime_error when there is none.
  explicit ca_bundle(const std::string& pem, std::string description);
  ~ca_bundle();
  ca_bundle(const ca_bundle&) = delete;
  ca_bundle& operator=(const ca_bundle&) = delete;

  /// The identity of a DER chain (leaf first) that verifies to this bundle for client
  /// authentication at time `at` (notBefore <= at <= notAfter), or nullopt (logged at --v=2
  /// with the reason). The caller's clock, so that what it keeps and when it checks again agree
  /// with what was verified.
  std::optional<certificate_identity> verify(const std::vector<std::string>& der_chain,
                                             std::chrono::system_clock::time_point at) const;

  const std::string& description() const noexcept { return description_; }

  /// How many chains verify() has checked. Kept because the authenticator's tests need it to
  /// prove that a connection's chain is verified once, not per request, and that each CA's
  /// answer is checked again when it expires: the answers alone cannot show a verification
  /// that was skipped.
  std::uint64_t verifications() const noexcept { return verifications_; }

 private:
  X509_STORE* store_;
  std::string description_;
  mutable std::atomic<std::uint64_t> verifications_{0};
};

}  // namespace gma::auth
