// The AWS credential chain read from an environment given as a map, and the fetches from STS
// and the container endpoint against loopback servers answering their documented formats.
#include "adapters/http_client/aws_credentials.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "tests/support/loopback_http.hpp"
#include "tests/support/run_awaitable.hpp"

namespace gma::adapters::http_client {
namespace {

namespace net = boost::asio;
using kind = aws_credential_source::kind;
using server = testing::scripted_server;
using testing::run_awaitable;

environment_lookup env_of(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

std::string temp_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("gma_aws_" + name + "_" + std::to_string(::getpid()));
  std::ofstream(path) << text;
  return path.string();
}

TEST(AwsCredentialSource, FollowsTheSdkOrder) {
  const std::map<std::string, std::string> all = {
      {"AWS_ACCESS_KEY_ID", "AKID"},
      {"AWS_SECRET_ACCESS_KEY", "SECRET"},
      {"AWS_SESSION_TOKEN", "TOKEN"},
      {"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"},
      {"AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
      {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"},
      {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/t"}};
  auto source = aws_credential_source_from(env_of(all), "us-east-1", "");
  EXPECT_EQ(source.from, kind::environment);
  EXPECT_EQ(source.keys.access_key_id, "AKID");
  EXPECT_EQ(source.keys.session_token, "TOKEN");
  EXPECT_FALSE(aws_credentials(source).refreshes());

  auto without_keys = all;
  without_keys.erase("AWS_ACCESS_KEY_ID");
  without_keys.erase("AWS_SECRET_ACCESS_KEY");
  source = aws_credential_source_from(env_of(without_keys), "us-east-1", "");
  EXPECT_EQ(source.from, kind::web_identity);
  EXPECT_EQ(source.role_arn, "arn:aws:iam::1:role/r");
  EXPECT_EQ(source.sts_endpoint, "https://sts.us-east-1.amazonaws.com");
  EXPECT_TRUE(source.session_name.starts_with("gpu-metrics-adapter-"));

  auto container_only = without_keys;
  container_only.erase("AWS_ROLE_ARN");
  source = aws_credential_source_from(env_of(container_only), "us-east-1", "");
  EXPECT_EQ(source.from, kind::container);
  EXPECT_EQ(source.url, "http://169.254.170.23/v1/credentials");
  EXPECT_EQ(source.token_file, "/t");
}

TEST(AwsCredentialSource, StsEndpointIsRegionalUnlessToldOtherwise) {
  std::map<std::string, std::string> env = {{"AWS_ROLE_ARN", "arn:aws:iam::1:role/r"},
                                            {"AWS_WEB_IDENTITY_TOKEN_FILE", "/t"}};
  const auto sts = [&](const std::string& flag = "") {
    return aws_credential_source_from(env_of(env), "eu-west-1", flag).sts_endpoint;
  };
  EXPECT_EQ(sts(), "https://sts.eu-west-1.amazonaws.com");
  env["AWS_REGION"] = "cn-north-1";
  EXPECT_EQ(sts(), "https://sts.cn-north-1.amazonaws.com.cn");
  env["AWS_REGION"] = "us-west-2";
  EXPECT_EQ(sts(), "https://sts.us-west-2.amazonaws.com");
  env["AWS_STS_REGIONAL_ENDPOINTS"] = "legacy";
  EXPECT_EQ(sts(), "https://sts.amazonaws.com");
  env["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:4566";
  EXPECT_EQ(sts(), "http://127.0.0.1:4566");
  EXPECT_EQ(sts("https://sts.example"), "https://sts.example");
}

TEST(AwsCredentialSource, RefusesWhatCannotWork) {
  const std::vector<std::map<std::string, std::string>> refused = {
      {},
      {{"AWS_ACCESS_KEY_ID", "AKID"}},
      {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/creds"}},
      {{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://x"}},
  };
  for (const auto& env : refused) {
    SCOPED_TRACE(env.empty() ? "empty" : env.begin()->second);
    EXPECT_THROW(aws_credential_source_from(env_of(env), "us-east-1", ""), std::runtime_error);
  }
  const auto ecs = aws_credential_source_from(
      env_of({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x"}}), "us-east-1", "");
  EXPECT_EQ(ecs.url, "http://169.254.170.2/v2/credentials/x");
}

TEST(AwsCredentials, WebIdentityFromStsThenSignsEveryRequest) {
  const auto token = temp_file("web_token", "eyJ.jwt\n");
  net::io_context ioc;
  const std::string xml =
      "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
      "<AssumeRoleWithWebIdentityResult><Credentials><SessionToken>FwoG&amp;token</SessionToken>"
      "<SecretAccessKey>wJalr/SECRET</SecretAccessKey><Expiration>2099-01-01T00:00:00Z"
      "</Expiration><AccessKeyId>ASIAEXAMPLE</AccessKeyId></Credentials>"
      "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
  server sts(ioc, {{{server::reply(200, xml)}}});
  server prometheus(ioc, {{{server::reply(200, "{}")}}});
  aws_credential_source source;
  source.from = kind::web_identity;
  source.role_arn = "arn:aws:iam::1:role/r";
  source.session_name = "s1";
  source.token_file = token;
  source.sts_endpoint = sts.url();
  auto credentials = std::make_shared<aws_credentials>(source);
  std::string why;
  EXPECT_FALSE(credentials->current(why));
  EXPECT_NE(why.find("no AWS credentials"), std::string::npos);
  EXPECT_TRUE(run_awaitable(ioc, credentials->async_fetch_once()));
  std::filesystem::remove(token);
  const auto& form = sts.received(0).at(0);
  EXPECT_EQ(form.target(), "/");
  EXPECT_EQ(form.count(bhttp::field::authorization), 0u);
  EXPECT_EQ(form.body(),
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%"
            "3Arole%2Fr&RoleSessionName=s1&WebIdentityToken=eyJ.jwt");
  const auto got = credentials->current(why);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->access_key_id, "ASIAEXAMPLE");
  EXPECT_EQ(got->secret_access_key, "wJalr/SECRET");
  EXPECT_EQ(got->session_token, "FwoG&token");

  options opts;
  opts.target = *endpoint::parse(prometheus.url("/workspaces/ws-1"));
  opts.signer =
      std::make_shared<sigv4_signer>(credentials, sigv4::signing_scope{"eu-west-1", "aps"});
  http_client client(ioc.get_executor(), opts);
  const auto res =
      run_awaitable(ioc, client.async_get("/api/v1/query?query=up", std::chrono::seconds(5)));
  ASSERT_TRUE(res) << res.error().message();
  const auto& req = prometheus.received(0).at(0);
  EXPECT_EQ(req["X-Amz-Security-Token"], "FwoG&token");
  EXPECT_TRUE(std::string(req[bhttp::field::authorization])
                  .starts_with("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/"));
  EXPECT_NE(std::string(req[bhttp::field::authorization])
                .find("/eu-west-1/aps/aws4_request, SignedHeaders=accept;host;x-amz-date;"
                      "x-amz-security-token, Signature="),
            std::string::npos);
}

TEST(AwsCredentials, ContainerEndpointGetsTheRawTokenAndExpiredOrMissingCredentialsSendNothing) {
  const auto token = temp_file("pod_token", "pod-jwt");
  net::io_context ioc;
  server agent(
      ioc, {{{server::reply(200, R"({"AccessKeyId":"ASIAPOD","SecretAccessKey":"s","Token":"t",)"
                                 R"("AccountId":"1","Expiration":"2001-01-01T00:00:00Z"})")}}});
  server prometheus(ioc, std::vector<std::vector<server::step>>{});
  aws_credential_source source;
  source.from = kind::container;
  source.url = agent.url("/v1/credentials");
  source.token_file = token;
  auto credentials = std::make_shared<aws_credentials>(source);
  EXPECT_FALSE(credentials->first_fetch_done());
  EXPECT_TRUE(run_awaitable(ioc, credentials->async_fetch_once()));
  EXPECT_TRUE(credentials->first_fetch_done());
  std::filesystem::remove(token);
  const auto& asked = agent.received(0).at(0);
  EXPECT_EQ(asked.target(), "/v1/credentials");
  EXPECT_EQ(asked[bhttp::field::authorization], "pod-jwt");
  std::string why;
  EXPECT_FALSE(credentials->current(why));  // expired in 2001
  EXPECT_NE(why.find("have expired"), std::string::npos);

  options opts;
  opts.target = *endpoint::parse(prometheus.url());
  opts.signer =
      std::make_shared<sigv4_signer>(credentials, sigv4::signing_scope{"us-east-1", "aps"});
  http_client client(ioc.get_executor(), opts);
  std::string reason;
  body_handler handler{[](const response_head&) { return true; },
                       [](std::string_view) { return true; },
                       [&](const std::string& r) { reason = r; }};
  const auto res =
      run_awaitable(ioc, client.async_request_streamed({bhttp::verb::get, "/api/v1/query"},
                                                       std::chrono::seconds(5), handler));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error(), errc::backend_unavailable);
  EXPECT_NE(reason.find("not sending the request unsigned"), std::string::npos) << reason;
  EXPECT_EQ(prometheus.accepted(), 0u);
}

}  // namespace
}  // namespace gma::adapters::http_client
