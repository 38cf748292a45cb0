// The client certificate chain a connection shares with its requests, and its one memo: what
// the authenticator concluded about the chain, valid for the key it was stored under.
#include "server/http/message.hpp"

#include <gtest/gtest.h>

namespace gma::http {
namespace {

TEST(ClientCertificateChain, MemoIsForItsKeyAndTypeOnly) {
  const client_certificate_chain chain({"leaf", "intermediate"});
  EXPECT_EQ(chain.der(), (std::vector<std::string>{"leaf", "intermediate"}));
  EXPECT_EQ(chain.recall<std::string>(1), nullptr);  // nothing stored yet
  chain.remember(1, std::make_shared<const std::string>("jane"));
  ASSERT_NE(chain.recall<std::string>(1), nullptr);
  EXPECT_EQ(*chain.recall<std::string>(1), "jane");
  EXPECT_EQ(chain.recall<std::string>(2), nullptr);  // stored for another configuration
  EXPECT_EQ(chain.recall<int>(1), nullptr);          // not what was stored
  // A new conclusion replaces the old one.
  chain.remember(2, std::make_shared<const std::string>("joe"));
  EXPECT_EQ(chain.recall<std::string>(1), nullptr);
  EXPECT_EQ(*chain.recall<std::string>(2), "joe");
}

}  // namespace
}  // namespace gma::http
