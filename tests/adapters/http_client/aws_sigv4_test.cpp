// The worked examples of AWS' SigV4 documentation (IAM User Guide / General Reference, the
// ListUsers request of 2015-08-30) and of the AWS SigV4 test suite (awslabs/aws-c-auth
// tests/aws-signing-test-suite/v4), as published: every expected string below is copied from
// those documents, none was produced by this code.
#include "adapters/http_client/aws_sigv4.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>

namespace gma::adapters::http_client::sigv4 {
namespace {

namespace bhttp = boost::beast::http;

const credentials kExample{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", {}};
constexpr const char* kDate = "20150830T123600Z";
constexpr const char* kEmptyPayloadHash =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::string hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

/// 2015-08-30T12:36:00Z, the examples' X-Amz-Date.
std::chrono::system_clock::time_point example_time() {
  using namespace std::chrono;
  return sys_days{year{2015} / 8 / 30} + hours(12) + minutes(36);
}

TEST(SigV4DocumentedExample, IamListUsersStepByStep) {
  const request_parts request{"GET",
                              "/?Action=ListUsers&Version=2010-05-08",
                              {{"Host", "iam.amazonaws.com"},
                               {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                               {"X-Amz-Date", kDate}},
                              ""};
  const auto out = sign(request, kExample, kDate, {"us-east-1", "iam"});
  EXPECT_EQ(out.canonical_request,
            "GET\n"
            "/\n"
            "Action=ListUsers&Version=2010-05-08\n"
            "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
            "host:iam.amazonaws.com\n"
            "x-amz-date:20150830T123600Z\n"
            "\n"
            "content-type;host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex_sha256(out.canonical_request),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  EXPECT_EQ(out.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20150830T123600Z\n"
            "20150830/us-east-1/iam/aws4_request\n"
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  EXPECT_EQ(hex(signing_key(kExample.secret_access_key, "20150830", {"us-east-1", "iam"})),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
  EXPECT_EQ(out.signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
  EXPECT_EQ(out.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

TEST(SigV4DocumentedExample, SigningKeyOfTheTestSuite) {
  EXPECT_EQ(hex(signing_key(kExample.secret_access_key, "20150830", {"us-east-1", "service"})),
            "938127b5336810ddb6a5d6af445fcac9e371f9ed418ed386b022aed82901be75");
}

struct suite_case {
  const char* name;
  const char* method;
  const char* target;
  std::vector<std::pair<std::string, std::string>> headers;
  const char* payload;
  const char* canonical_request;  // as the suite's .creq file
  const char* canonical_request_sha256;
  const char* signature;
};

TEST(SigV4DocumentedExample, TestSuiteCases) {
  const std::vector<suite_case> cases = {
      {"get-vanilla",
       "GET",
       "/",
       {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kDate}},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
      {"get-vanilla-query-order-key-case",
       "GET",
       "/?Param2=value2&Param1=value1",
       {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", kDate}},
       "",
       "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
       "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {"get-vanilla-with-session-token",
       "GET",
       "/",
       {{"Host", "example.amazonaws.com"},
        {"X-Amz-Date", kDate},
        {"X-Amz-Security-Token",
         "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"}},
       "",
       "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
       "x-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\n"
       "host;x-amz-date;x-amz-security-token\n"
       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
       "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"},
      {"post-x-www-form-urlencoded",
       "POST",
       "/",
       {{"Content-Type", "application/x-www-form-urlencoded"},
        {"Content-Length", "13"},
        {"Host", "example.amazonaws.com"},
        {"X-Amz-Date", kDate},
        {"x-amz-content-sha256",
         "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"}},
       "Param1=value1",
       "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\n"
       "host:example.amazonaws.com\n"
       "x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n"
       "x-amz-date:20150830T123600Z\n\n"
       "content-length;content-type;host;x-amz-content-sha256;x-amz-date\n"
       "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
       "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
       "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const auto out =
        sign({c.method, c.target, c.headers, c.payload}, kExample, kDate, {"us-east-1", "service"});
    EXPECT_EQ(out.canonical_request, c.canonical_request);
    EXPECT_EQ(hex_sha256(out.canonical_request), c.canonical_request_sha256);
    EXPECT_EQ(out.string_to_sign, std::string("AWS4-HMAC-SHA256\n20150830T123600Z\n"
                                              "20150830/us-east-1/service/aws4_request\n") +
                                      c.canonical_request_sha256);
    EXPECT_EQ(out.signature, c.signature);
  }
}

TEST(SigV4CanonicalForm, PathsAndQueries) {
  EXPECT_EQ(canonical_uri(""), "/");
  EXPECT_EQ(canonical_uri("/example space/"), "/example%20space/");
  EXPECT_EQ(canonical_uri("/\xE1\x88\xB4"), "/%E1%88%B4");
  EXPECT_EQ(canonical_uri("//example//"), "/example/");
  EXPECT_EQ(canonical_uri("/./"), "/");
  EXPECT_EQ(canonical_uri("/example/.."), "/");
  EXPECT_EQ(canonical_uri("/workspaces/ws-1/api/v1/query"), "/workspaces/ws-1/api/v1/query");
  // Already percent-encoded on the wire: encoded again (every service but S3).
  EXPECT_EQ(canonical_uri("/a%20b"), "/a%2520b");
  EXPECT_EQ(canonical_query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3");
  EXPECT_EQ(canonical_query("query=sum%28up%29&time=1.5&empty="),
            "empty=&query=sum%28up%29&time=1.5");
  EXPECT_EQ(canonical_query("match%5B%5D=b&match%5B%5D=a"), "match%5B%5D=a&match%5B%5D=b");
  EXPECT_EQ(canonical_query(""), "");
  EXPECT_EQ(hex_sha256(""), kEmptyPayloadHash);
  EXPECT_EQ(amz_date(example_time()), kDate);
}

TEST(SigV4SignRequest, SignsABeastRequestAsTheSuiteSessionTokenCase) {
  bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/", 11};
  req.set(bhttp::field::host, "example.amazonaws.com");
  req.set(bhttp::field::user_agent, "gpu-metrics-adapter");  // not signed
  auto temporary = kExample;
  temporary.session_token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
  sign_request(req, temporary, {"us-east-1", "service"}, example_time());
  EXPECT_EQ(req["X-Amz-Date"], kDate);
  EXPECT_EQ(req["X-Amz-Security-Token"], temporary.session_token);
  EXPECT_EQ(req[bhttp::field::authorization],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date;x-amz-security-token, "
            "Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8");
}

TEST(SigV4SignRequest, SignsAFormPostWithoutContentSha256AsAmpClientsDo) {
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/", 11};
  req.set(bhttp::field::host, "example.amazonaws.com");
  req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
  req.body() = "Param1=value1";
  req.prepare_payload();
  sign_request(req, kExample, {"us-east-1", "service"}, example_time());
  EXPECT_EQ(req.count("X-Amz-Security-Token"), 0u);
  EXPECT_EQ(req[bhttp::field::authorization],
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=content-length;content-type;host;x-amz-date, "
            "Signature=fec50118d90ecf934441dd37fb9a49bd7f5adb6450802ca3a0977623bbb7c27f");
}

}  // namespace
}  // namespace gma::adapters::http_client::sigv4
