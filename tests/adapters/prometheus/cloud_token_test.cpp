#include "adapters/prometheus/cloud_token.hpp"

#include <gtest/gtest.h>

namespace gma::adapters::prometheus {
namespace {

using std::chrono::seconds;

TEST(TokenResponse, ParsesGoogleAndAzureAnswers) {
  struct ok_case {
    std::string body;
    std::string token;
    seconds expires_in;
  };
  const std::vector<ok_case> cases = {
      // The GKE metadata server (backends.md 6).
      {R"({"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"})", "ya29.abc",
       seconds(3599)},
      // Azure AD v2, with ext_expires_in.
      {R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0"})",
       "eyJ0", seconds(3599)},
      // Azure AD v1 writes numbers as strings; token_type in another case; none at all.
      {R"({"token_type":"bearer","expires_in":"3600","access_token":"t1"})", "t1", seconds(3600)},
      {R"({"access_token":"t2","expires_in":5})", "t2", seconds(5)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body);
    std::string why;
    const auto grant = parse_token_response(c.body, why);
    ASSERT_TRUE(grant) << why;
    EXPECT_EQ(grant->access_token, c.token);
    EXPECT_EQ(grant->expires_in, c.expires_in);
  }
}

TEST(TokenResponse, RefusesWhatCannotBeSent) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not a JSON object"},
      {"[]", "not a JSON object"},
      {R"({"expires_in":3599,"token_type":"Bearer"})", "no access_token"},
      {R"({"access_token":"","expires_in":3599})", "no access_token"},
      {R"({"access_token":"a\r\nX-Evil: 1","expires_in":3599})", "line break"},
      {R"({"access_token":"a","expires_in":3599,"token_type":"mac"})", "not Bearer"},
      {R"({"access_token":"a"})", "no expires_in"},
      {R"({"access_token":"a","expires_in":0})", "not a positive number"},
      {R"({"access_token":"a","expires_in":-5})", "not a positive number"},
      {R"({"access_token":"a","expires_in":"soon"})", "not a positive number"},
  };
  for (const auto& [body, reason] : cases) {
    SCOPED_TRACE(body);
    std::string why;
    EXPECT_FALSE(parse_token_response(body, why));
    EXPECT_NE(why.find(reason), std::string::npos) << why;
  }
}

TEST(TokenResponse, ErrorSummaryQuotesOAuthErrors) {
  EXPECT_EQ(token_error_summary(
                400, R"({"error":"invalid_request","error_description":"AADSTS70021: No matching )"
                     R"(federated identity record found for presented assertion.\r\nTrace ID: 1",)"
                     R"("error_codes":[70021]})"),
            "HTTP 400, error invalid_request: AADSTS70021: No matching federated identity record "
            "found for presented assertion.");
  EXPECT_EQ(token_error_summary(403, "Missing Metadata-Flavor:Google header.\n"),
            "HTTP 403: Missing Metadata-Flavor:Google header. ");
  EXPECT_EQ(token_error_summary(500, ""), "HTTP 500");
  EXPECT_EQ(token_error_summary(500, std::string(1000, 'x')).size(), 200 + 10);
}

TEST(TokenRefresh, BeforeExpiryNeverInABusyLoop) {
  const std::vector<std::pair<seconds, seconds>> cases = {
      {seconds(3599), seconds(2879)},  // 80% comes before 5 minutes ahead
      {seconds(86400), seconds(69120)},
      {seconds(1200), seconds(900)},  // 5 minutes ahead comes before 80%
      {seconds(600), seconds(300)},   // both at half its life
      {seconds(400), seconds(200)},   // 5 minutes ahead would be sooner than half: half
      {seconds(10), seconds(5)},
      {seconds(1), seconds(1)},  // never sooner than a second
      {seconds(0), seconds(1)},
  };
  for (const auto& [expires_in, after] : cases) {
    SCOPED_TRACE(expires_in.count());
    EXPECT_EQ(refresh_after(expires_in), after);
    if (expires_in > seconds(1)) {
      EXPECT_LT(refresh_after(expires_in), expires_in);
    }
  }
}

TEST(CloudTokenSource, WithoutATokenRequestsFailWithTheReason) {
  cloud_token_source source({cloud_token_settings::provider::gcp,
                             "http://127.0.0.1:1/computeMetadata/v1/instance/service-accounts/"
                             "default/token"});
  const auto current = source.current_token();
  EXPECT_EQ(current.token, "");
  EXPECT_EQ(current.why_none,
            "no access token for Prometheus from gcp ("
            "http://127.0.0.1:1/computeMetadata/v1/instance/service-accounts/default/token): the "
            "first one has not arrived yet");
  EXPECT_THROW(cloud_token_source({cloud_token_settings::provider::azure, "login/tenant"}),
               std::runtime_error);
}

}  // namespace
}  // namespace gma::adapters::prometheus
