// The authenticator with certificates made in the test (tests/support/test_certificates.hpp)
// and a fake TokenReview seam (core::token_reviewer): the front-proxy rules of
// kubernetes-metrics-apis.md 8.2, client certificates, bearer tokens and their cache.
#include "server/auth/authenticator.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <ctime>
#include <limits>

#include "tests/support/fake_reviewers.hpp"
#include "tests/support/run_awaitable.hpp"
#include "tests/support/test_certificates.hpp"

namespace gma::auth {
namespace {

using namespace std::chrono_literals;
using testing::certificate_authority;
using testing::fake_token_reviewer;
using testing::run_awaitable;
using testing::validity;

// One CA for the front proxy, another for clients, as a cluster has them. The authenticator's
// clock is `now`, which a test moves forward.
struct fixture {
  explicit fixture(std::chrono::seconds ttl = 1h) : authn(&tokens, ttl, [this] { return now; }) {
    authentication_config config;
    config.requestheader_ca = std::make_shared<const ca_bundle>(front_proxy_ca.pem(), "front");
    config.client_ca = std::make_shared<const ca_bundle>(client_ca.pem(), "client");
    config.allowed_names = {"front-proxy-client"};
    authn.set_config(std::make_shared<const authentication_config>(std::move(config)));
  }

  result<authentication_result> authenticate(
      std::vector<std::pair<std::string, std::string>> headers,
      std::optional<std::string> certificate = std::nullopt) {
    return authenticate_on(std::move(headers),
                           certificate ? connection_with(*certificate) : nullptr);
  }

  /// A request on the connection whose chain is `chain` (nullptr: no client certificate).
  result<authentication_result> authenticate_on(
      std::vector<std::pair<std::string, std::string>> headers,
      std::shared_ptr<const http::client_certificate_chain> chain) {
    http::request req{"GET", "/apis/custom.metrics.k8s.io/v1beta2", std::move(headers),
                      std::move(chain)};
    return run_awaitable(ioc, authn.async_authenticate(req));
  }

  /// What the TLS session hands every request of a connection whose client sent `certificate`.
  static std::shared_ptr<const http::client_certificate_chain> connection_with(
      const std::string& certificate) {
    return std::make_shared<const http::client_certificate_chain>(
        std::vector<std::string>{certificate});
  }

  /// Verifications by the CAs currently configured, front proxy and client together.
  std::uint64_t verifications() const {
    return front_proxy_verifications() + client_verifications();
  }
  std::uint64_t front_proxy_verifications() const {
    return authn.config()->requestheader_ca->verifications();
  }
  std::uint64_t client_verifications() const { return authn.config()->client_ca->verifications(); }

  boost::asio::io_context ioc;
  certificate_authority front_proxy_ca{"front-proxy-ca"};
  certificate_authority client_ca{"kubernetes-ca"};
  fake_token_reviewer tokens;
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  authenticator authn;
};

const std::vector<std::pair<std::string, std::string>> kRemoteHeaders = {
    {"x-remote-user", "alice"},
    {"x-remote-group", "ml-team"},
    {"x-remote-group", "system:authenticated"},
    {"x-remote-extra-scopes", "read"},
    {"x-remote-extra-scopes", "write"},
    {"x-remote-extra-acme.com%2Fproject", "gpu"},
};

TEST(AuthenticatorFrontProxy, AllowedCertificateMakesTheHeadersTheUser) {
  fixture f;
  const auto r = f.authenticate(kRemoteHeaders, f.front_proxy_ca.issue("front-proxy-client"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, authentication_outcome::authenticated);
  EXPECT_EQ(r->user.name, "alice");
  // system:authenticated is not repeated when the proxy already sent it.
  EXPECT_EQ(r->user.groups, (std::vector<std::string>{"ml-team", "system:authenticated"}));
  // Extra keys are percent-decoded (url.PathUnescape) and lower-cased.
  EXPECT_EQ(r->user.extra, (std::map<std::string, std::vector<std::string>>{
                               {"scopes", {"read", "write"}}, {"acme.com/project", {"gpu"}}}));
  EXPECT_EQ(f.tokens.reviews, 0);
}

// A CN outside --requestheader-allowed-names, or a certificate from another CA: the headers
// are ignored, and the request is what it would be without them.
TEST(AuthenticatorFrontProxy, HeadersAreIgnoredWithoutAnAllowedProxyCertificate) {
  fixture f;
  auto r = f.authenticate(kRemoteHeaders, f.front_proxy_ca.issue("someone-else"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, authentication_outcome::anonymous);
  EXPECT_EQ(r->user.name, "system:anonymous");
  EXPECT_EQ(r->user.groups, std::vector<std::string>{"system:unauthenticated"});
  // A client certificate authenticates as itself, whatever headers come with it.
  r = f.authenticate(kRemoteHeaders, f.client_ca.issue("front-proxy-client", {"admins"}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, authentication_outcome::authenticated);
  EXPECT_EQ(r->user.name, "front-proxy-client");
  EXPECT_EQ(r->user.groups, (std::vector<std::string>{"admins", "system:authenticated"}));
  EXPECT_TRUE(r->user.extra.empty());
  // No certificate at all.
  r = f.authenticate(kRemoteHeaders);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, authentication_outcome::anonymous);
}

TEST(AuthenticatorFrontProxy, EmptyAllowedNamesAcceptAnyCommonName) {
  fixture f;
  auto config = std::make_shared<authentication_config>(*f.authn.config());
  config->allowed_names.clear();
  f.authn.set_config(config);
  const auto r = f.authenticate(kRemoteHeaders, f.front_proxy_ca.issue("any-proxy"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->user.name, "alice");
}

// The ConfigMap's header names (JSON arrays, any case): the first non-empty username header
// wins, groups come from every group header, and the prefixes are matched lower-cased.
TEST(AuthenticatorFrontProxy, HeaderNamesFromTheConfigMap) {
  fixture f;
  auto config = config_from_configmap(
      {{"requestheader-client-ca-file", f.front_proxy_ca.pem()},
       {"requestheader-allowed-names", R"(["front-proxy-client"])"},
       {"requestheader-username-headers", R"(["X-Empty-User","X-Remote-User","X-Other-User"])"},
       {"requestheader-group-headers", R"(["X-Remote-Group","X-Team"])"},
       {"requestheader-extra-headers-prefix", R"(["X-Remote-Extra-","X-Acme-"])"}});
  f.authn.set_config(std::make_shared<const authentication_config>(std::move(config)));
  const auto r = f.authenticate({{"x-empty-user", ""},
                                 {"x-other-user", "mallory"},
                                 {"x-remote-user", "alice"},
                                 {"x-team", "gpu"},
                                 {"x-remote-group", "ml"},
                                 {"x-acme-region", "eu"}},
                                f.front_proxy_ca.issue("front-proxy-client"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->user.name, "alice");
  EXPECT_EQ(r->user.groups, (std::vector<std::string>{"ml", "gpu", "system:authenticated"}));
  EXPECT_EQ(r->user.extra, (std::map<std::string, std::vector<std::string>>{{"region", {"eu"}}}));
}

TEST(AuthenticatorFrontProxy, MalformedConfigMapNamesTheKey) {
  try {
    config_from_configmap({{"requestheader-group-headers", "X-Remote-Group"}});
    FAIL() << "a comma list was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("requestheader-group-headers"), std::string::npos);
  }
}

TEST(AuthenticatorClientCertificate, CommonNameAndOrganizations) {
  fixture f;
  const auto r = f.authenticate({}, f.client_ca.issue("jane", {"devs", "ops"}));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, authentication_outcome::authenticated);
  EXPECT_EQ(r->user.name, "jane");
  EXPECT_EQ(r->user.groups, (std::vector<std::string>{"devs", "ops", "system:authenticated"}));
}

// Verification with the client-auth purpose, as the apiserver's x509 authenticator does: a
// serving certificate, another CA's certificate, or bytes that are no certificate are nobody.
TEST(AuthenticatorClientCertificate, UnverifiableCertificatesAreAnonymous) {
  fixture f;
  certificate_authority stranger("stranger-ca");
  for (const std::string& der : {f.client_ca.issue("jane", {}, "serverAuth"),
                                 stranger.issue("jane"), std::string("not DER")}) {
    const auto r = f.authenticate({}, der);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->outcome, authentication_outcome::anonymous);
  }
}

// A connection's chain is verified on its first request; its later requests reuse the verdict.
// Another connection with the same certificate is verified on its own.
TEST(AuthenticatorConnection, ChainIsVerifiedOncePerConnection) {
  fixture f;
  const auto certificate = f.client_ca.issue("jane", {"devs"});
  const auto connection = fixture::connection_with(certificate);
  for (int i = 0; i < 5; ++i) {
    const auto r = f.authenticate_on({}, connection);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->user.name, "jane");
    EXPECT_EQ(r->user.groups, (std::vector<std::string>{"devs", "system:authenticated"}));
  }
  // Once against each CA: the front proxy's (no match) and the clients'.
  EXPECT_EQ(f.verifications(), 2u);
  ASSERT_TRUE(f.authenticate_on({}, fixture::connection_with(certificate)).has_value());
  EXPECT_EQ(f.verifications(), 4u);
}

// The front proxy's connection: its certificate is verified once, but the user comes from each
// request's own headers.
TEST(AuthenticatorConnection, FrontProxyHeadersAreReadOnEveryRequest) {
  fixture f;
  const auto connection = fixture::connection_with(f.front_proxy_ca.issue("front-proxy-client"));
  for (const char* user : {"alice", "bob", "carol"}) {
    const auto r = f.authenticate_on({{"x-remote-user", user}}, connection);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->user.name, user);
  }
  // Without a user header the connection's certificate does not authenticate anyone.
  const auto r = f.authenticate_on({}, connection);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, authentication_outcome::anonymous);
  EXPECT_EQ(f.verifications(), 2u);
}

// A refused chain is remembered too: a client that keeps sending requests with a certificate
// no CA vouches for costs one verification per connection, not one per request.
TEST(AuthenticatorConnection, RefusedChainIsNotVerifiedOnEveryRequest) {
  fixture f;
  certificate_authority stranger("stranger-ca");
  const auto connection = fixture::connection_with(stranger.issue("jane"));
  for (int i = 0; i < 3; ++i) {
    const auto r = f.authenticate_on({}, connection);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->outcome, authentication_outcome::anonymous);
  }
  EXPECT_EQ(f.verifications(), 2u);
}

// A CA rotation applies to new connections, and to open ones at their next request: the chain
// is verified again against the new CAs, so a connection whose CA was dropped is no longer
// authenticated, and one whose CA stayed is verified once more and goes on.
TEST(AuthenticatorConnection, CaRotationReverifiesOpenConnections) {
  fixture f;
  const auto jane = fixture::connection_with(f.client_ca.issue("jane"));
  ASSERT_EQ(f.authenticate_on({}, jane)->user.name, "jane");
  certificate_authority next_ca("kubernetes-ca-2");
  const auto joe = fixture::connection_with(next_ca.issue("joe"));
  EXPECT_EQ(f.authenticate_on({}, joe)->outcome, authentication_outcome::anonymous);

  // The new bundle trusts the next CA only.
  auto rotated = std::make_shared<authentication_config>(*f.authn.config());
  rotated->client_ca = std::make_shared<const ca_bundle>(next_ca.pem(), "client (rotated)");
  rotated->requestheader_ca = std::make_shared<const ca_bundle>(f.front_proxy_ca.pem(), "front");
  f.authn.set_config(rotated);
  EXPECT_EQ(f.authenticate_on({}, jane)->outcome, authentication_outcome::anonymous);
  EXPECT_EQ(f.authenticate_on({}, joe)->user.name, "joe");
  EXPECT_EQ(f.verifications(), 4u);
  // The same bundles again (a reload of unchanged files) still mean one more check each.
  f.authn.set_config(std::make_shared<authentication_config>(*rotated));
  EXPECT_EQ(f.authenticate_on({}, joe)->user.name, "joe");
  EXPECT_EQ(f.authenticate_on({}, joe)->user.name, "joe");
  EXPECT_EQ(f.verifications(), 6u);
}

// Before any configuration is loaded nothing verifies; the first configuration applies to the
// connections already open.
TEST(AuthenticatorConnection, FirstConfigurationAppliesToOpenConnections) {
  boost::asio::io_context ioc;
  certificate_authority ca("kubernetes-ca");
  authenticator authn(nullptr, 10s);
  const auto connection = fixture::connection_with(ca.issue("jane"));
  const http::request req{"GET", "/apis", {}, connection};
  EXPECT_EQ(run_awaitable(ioc, authn.async_authenticate(req))->outcome,
            authentication_outcome::anonymous);
  authentication_config config;
  config.client_ca = std::make_shared<const ca_bundle>(ca.pem(), "client");
  authn.set_config(std::make_shared<const authentication_config>(std::move(config)));
  EXPECT_EQ(run_awaitable(ioc, authn.async_authenticate(req))->user.name, "jane");
}

// A verified chain is kept until its notAfter, and no longer: the connection's first request
// after it verifies the chain again, which now fails, and the client is anonymous.
TEST(AuthenticatorConnection, ExpiredChainIsVerifiedAgain) {
  fixture f;
  const auto connection = fixture::connection_with(
      f.client_ca.issue("jane", {}, "clientAuth", validity{.not_after_seconds = 3600}));
  EXPECT_EQ(f.authenticate_on({}, connection)->user.name, "jane");
  f.now += 59min;
  EXPECT_EQ(f.authenticate_on({}, connection)->user.name, "jane");
  EXPECT_EQ(f.client_verifications(), 1u);
  f.now += 2min;
  const auto r = f.authenticate_on({}, connection);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, authentication_outcome::anonymous);
  EXPECT_EQ(f.client_verifications(), 2u);
}

// A refusal is kept for a minute: a certificate whose notBefore is a little ahead of this
// clock (the issuer's runs ahead) authenticates once it has passed, at the first request a
// minute after the refusal, not before.
TEST(AuthenticatorConnection, RefusalIsCheckedAgainAfterAMinute) {
  fixture f;
  const auto connection = fixture::connection_with(
      f.client_ca.issue("jane", {}, "clientAuth", validity{.not_before_seconds = 30}));
  EXPECT_EQ(f.authenticate_on({}, connection)->outcome, authentication_outcome::anonymous);
  f.now += 40s;  // past notBefore, but the refusal holds for a minute
  EXPECT_EQ(f.authenticate_on({}, connection)->outcome, authentication_outcome::anonymous);
  EXPECT_EQ(f.client_verifications(), 1u);
  f.now += 21s;
  EXPECT_EQ(f.authenticate_on({}, connection)->user.name, "jane");
  EXPECT_EQ(f.client_verifications(), 2u);
}

// Each CA's answer has its own lifetime: a client certificate's refusal by the front-proxy CA
// is checked again after a minute, while its verification by the client CA holds until it
// expires; and the other way round for the front proxy's certificate.
TEST(AuthenticatorConnection, EachCaAnswerHasItsOwnLifetime) {
  fixture f;
  const auto jane = fixture::connection_with(f.client_ca.issue("jane"));
  const auto proxy = fixture::connection_with(f.front_proxy_ca.issue("front-proxy-client"));
  EXPECT_EQ(f.authenticate_on({}, jane)->user.name, "jane");
  EXPECT_EQ(f.authenticate_on({{"x-remote-user", "alice"}}, proxy)->user.name, "alice");
  EXPECT_EQ(f.front_proxy_verifications(), 2u);
  EXPECT_EQ(f.client_verifications(), 2u);
  f.now += 61s;
  EXPECT_EQ(f.authenticate_on({}, jane)->user.name, "jane");
  EXPECT_EQ(f.front_proxy_verifications(), 3u);  // jane's refusal, checked again
  EXPECT_EQ(f.client_verifications(), 2u);       // jane's verification, kept
  EXPECT_EQ(f.authenticate_on({{"x-remote-user", "alice"}}, proxy)->user.name, "alice");
  EXPECT_EQ(f.front_proxy_verifications(), 3u);  // the proxy's verification, kept
  EXPECT_EQ(f.client_verifications(), 3u);       // the proxy's refusal, checked again
  // And again a minute later; in between, nothing.
  EXPECT_EQ(f.authenticate_on({}, jane)->user.name, "jane");
  EXPECT_EQ(f.verifications(), 6u);
  f.now += 61s;
  EXPECT_EQ(f.authenticate_on({}, jane)->user.name, "jane");
  EXPECT_EQ(f.verifications(), 7u);
}

// A chain valid beyond the system clock's range (nanoseconds since 1970 end in 2262) is kept
// for good, not taken as expired: its notAfter must not wrap into the past.
TEST(AuthenticatorConnection, ChainValidBeyondTheClocksRangeIsKept) {
  const validity far{.not_after_time = "99991231235959Z"};
  certificate_authority ca("kubernetes-ca", far);
  authentication_config config;
  config.client_ca = std::make_shared<const ca_bundle>(ca.pem(), "client");
  boost::asio::io_context ioc;
  auto now = std::chrono::system_clock::now();
  authenticator authn(nullptr, 10s, [&now] { return now; });
  authn.set_config(std::make_shared<const authentication_config>(std::move(config)));
  const http::request req{
      "GET", "/apis", {}, fixture::connection_with(ca.issue("jane", {}, "clientAuth", far))};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(run_awaitable(ioc, authn.async_authenticate(req))->user.name, "jane");
    now += 24h * 365;
  }
  EXPECT_EQ(authn.config()->client_ca->verifications(), 1u);
}

// What a verified chain is worth in time: until the earliest notAfter in it (the test CA and
// its leaves are valid for 24 hours), after which the connection's next request verifies again.
TEST(CaBundle, VerifiedIdentityLastsUntilTheChainExpires) {
  certificate_authority ca("kubernetes-ca");
  const ca_bundle bundle(ca.pem(), "client");
  const auto now = std::chrono::system_clock::now();
  const auto identity = bundle.verify({ca.issue("jane")}, now);
  ASSERT_TRUE(identity.has_value());
  EXPECT_GT(identity->valid_until, now + 23h);
  EXPECT_LT(identity->valid_until, now + 25h);
  EXPECT_EQ(bundle.verifications(), 1u);
  // The earliest notAfter of the chain: the leaf's here, the CA's when the leaf outlives it.
  const auto leaf =
      bundle.verify({ca.issue("jane", {}, "clientAuth", {.not_after_seconds = 60})}, now);
  ASSERT_TRUE(leaf.has_value());
  EXPECT_LT(leaf->valid_until, now + 2min);
  const auto outliving =
      bundle.verify({ca.issue("jane", {}, "clientAuth", {.not_after_seconds = 48 * 3600})}, now);
  ASSERT_TRUE(outliving.has_value());
  EXPECT_LT(outliving->valid_until, now + 25h);
}

// Verified at the time asked for, not the wall clock's: before notBefore and after notAfter the
// chain is refused.
TEST(CaBundle, VerifiesAtTheGivenTime) {
  certificate_authority ca("kubernetes-ca");
  const ca_bundle bundle(ca.pem(), "client");
  const auto jane = ca.issue("jane");
  const auto now = std::chrono::system_clock::now();
  EXPECT_TRUE(bundle.verify({jane}, now).has_value());
  EXPECT_FALSE(bundle.verify({jane}, now - 2h).has_value());   // before notBefore
  EXPECT_FALSE(bundle.verify({jane}, now + 25h).has_value());  // after notAfter
}

// A notAfter in the year 9999 is valid_until max(), not a time wrapped into the past.
TEST(CaBundle, NotAfterBeyondTheClocksRangeIsTheEndOfTime) {
  const validity far{.not_after_time = "99991231235959Z"};
  certificate_authority ca("kubernetes-ca", far);
  const ca_bundle bundle(ca.pem(), "client");
  const auto identity =
      bundle.verify({ca.issue("jane", {}, "clientAuth", far)}, std::chrono::system_clock::now());
  ASSERT_TRUE(identity.has_value());
  EXPECT_EQ(identity->valid_until, std::chrono::system_clock::time_point::max());
}

TEST(CaBundle, TimeConversionSaturates) {
  using clock = std::chrono::system_clock;
  EXPECT_EQ(saturating_from_time_t(253402300799), clock::time_point::max());  // 9999-12-31
  EXPECT_EQ(saturating_from_time_t(std::numeric_limits<std::time_t>::max()),
            clock::time_point::max());
  EXPECT_EQ(saturating_from_time_t(std::numeric_limits<std::time_t>::min()),
            clock::time_point::min());
  EXPECT_EQ(saturating_from_time_t(1'700'000'000), clock::from_time_t(1'700'000'000));
  EXPECT_EQ(saturating_from_time_t(0), clock::from_time_t(0));
  // The last second the clock holds, 2262-04-11, is itself.
  EXPECT_EQ(saturating_from_time_t(9'223'372'035), clock::from_time_t(9'223'372'035));
}

TEST(AuthenticatorToken, ReviewedTokenIsTheUserAndIsCached) {
  fixture f;
  for (int i = 0; i < 3; ++i) {
    const auto r = f.authenticate({{"authorization", "Bearer good-token"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->outcome, authentication_outcome::authenticated);
    EXPECT_EQ(r->user, (core::user_info{"bob", "u-7", {"team", "system:authenticated"}, {}}));
  }
  EXPECT_EQ(f.tokens.reviews, 1);
  // The scheme is case-insensitive, as Go's bearer token authenticator reads it.
  ASSERT_TRUE(f.authenticate({{"authorization", "bearer good-token"}}).has_value());
  EXPECT_EQ(f.tokens.reviews, 1);
}

TEST(AuthenticatorToken, RejectedTokenIsUnauthorizedAndCachedToo) {
  fixture f;
  for (int i = 0; i < 2; ++i) {
    const auto r = f.authenticate({{"authorization", "Bearer stolen"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->outcome, authentication_outcome::rejected);
  }
  EXPECT_EQ(f.tokens.reviews, 1);
}

// The TTL is --authentication-token-webhook-cache-ttl: with 0 every request is reviewed.
TEST(AuthenticatorToken, ZeroTtlReviewsEveryTime) {
  fixture f(0s);
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(f.authenticate({{"authorization", "Bearer good-token"}}).has_value());
  EXPECT_EQ(f.tokens.reviews, 2);
}

// A token that could not be reviewed is an error (the guard's 503), not anonymous; the
// failure is not cached, so the next request asks again.
TEST(AuthenticatorToken, UnreachableKubernetesIsAnErrorAndNotCached) {
  fixture f;
  f.tokens.unavailable = true;
  auto r = f.authenticate({{"authorization", "Bearer good-token"}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), errc::kubernetes_unavailable);
  f.tokens.unavailable = false;
  r = f.authenticate({{"authorization", "Bearer good-token"}});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->user.name, "bob");
  EXPECT_EQ(f.tokens.reviews, 2);
}

// Certificates come first: a request they authenticate never costs a TokenReview.
TEST(AuthenticatorToken, CertificatesWinOverTokens) {
  fixture f;
  const auto r =
      f.authenticate({{"authorization", "Bearer good-token"}}, f.client_ca.issue("jane"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->user.name, "jane");
  EXPECT_EQ(f.tokens.reviews, 0);
}

TEST(AuthenticatorToken, WithoutAReviewerTokensAreNotLookedAt) {
  boost::asio::io_context ioc;
  authenticator authn(nullptr, 10s);
  http::request req{"GET", "/apis", {{"authorization", "Bearer good-token"}}, nullptr};
  const auto r = run_awaitable(ioc, authn.async_authenticate(req));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, authentication_outcome::anonymous);
}

TEST(AuthenticatorReadiness, ReadyOnceAConfigurationIsLoaded) {
  fake_token_reviewer tokens;
  authenticator authn(&tokens, 10s);
  auto checks = authn.readiness_checks();
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].name, "authentication-config");
  EXPECT_FALSE(checks[0].ok);
  authn.set_config(std::make_shared<const authentication_config>());
  EXPECT_TRUE(authn.readiness_checks()[0].ok);
}

}  // namespace
}  // namespace gma::auth
