#include "server/http/connections.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

namespace gma::http {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class ConnectionTableTest : public ::testing::Test {
 protected:
  std::shared_ptr<connection_table::entry> admit() {
    return table->admit(net::make_strand(ioc.get_executor()));
  }
  net::io_context ioc;
  std::shared_ptr<connection_table> table = connection_table::create(2);
};

TEST_F(ConnectionTableTest, AFullTableClosesTheLongestIdleConnection) {
  auto first = admit();
  auto second = admit();
  tcp::socket first_socket(ioc, tcp::v4());
  tcp::socket second_socket(ioc, tcp::v4());
  first->attach(&first_socket);
  second->attach(&second_socket);
  auto third = admit();  // room made by closing the first, idle the longest
  ASSERT_NE(third, nullptr);
  ioc.run();
  EXPECT_FALSE(first_socket.is_open());
  EXPECT_TRUE(second_socket.is_open());
  first->attach(nullptr);
  first.reset();  // its session ends
  EXPECT_EQ(table->size(), 2);
}

TEST_F(ConnectionTableTest, BusyConnectionsAreNeverClosedAndThenNewOnesAreRefused) {
  auto first = admit();
  auto second = admit();
  first->set_idle(false);
  second->set_idle(false);
  EXPECT_EQ(admit(), nullptr);
  second->set_idle(true);
  tcp::socket second_socket(ioc, tcp::v4());
  second->attach(&second_socket);
  auto third = admit();
  ASSERT_NE(third, nullptr);
  ioc.run();
  EXPECT_FALSE(second_socket.is_open());
}

TEST_F(ConnectionTableTest, AConnectionBeingClosedIsNotChosenTwice) {
  auto first = admit();
  auto second = admit();
  second->set_idle(false);
  auto third = admit();  // reclaims the first
  ASSERT_NE(third, nullptr);
  third->set_idle(false);
  // The first is still closing and the others are busy: nothing left to reclaim.
  EXPECT_EQ(admit(), nullptr);
}

}  // namespace
}  // namespace gma::http
