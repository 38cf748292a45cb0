#include "server/http/connections.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <optional>

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

TEST_F(ConnectionTableTest, DrainClosesConnectionsBetweenRequestsAndLetsTheOthersFinish) {
  table = connection_table::create(3);
  auto waiting = admit();   // kept alive, waiting for its next request
  auto arriving = admit();  // handshaking or sending its first request: its answer is coming
  auto busy = admit();      // answering
  tcp::socket waiting_socket(ioc, tcp::v4());
  tcp::socket arriving_socket(ioc, tcp::v4());
  tcp::socket busy_socket(ioc, tcp::v4());
  waiting->attach(&waiting_socket);
  arriving->attach(&arriving_socket);
  busy->attach(&busy_socket);
  waiting->set_between_requests(true);
  busy->set_idle(false);
  busy->begin_request();
  table->drain();
  ioc.run();
  EXPECT_FALSE(waiting_socket.is_open());
  EXPECT_TRUE(arriving_socket.is_open());
  EXPECT_TRUE(busy_socket.is_open());
  EXPECT_FALSE(busy->request_cancelled());
  EXPECT_TRUE(busy->draining());
  waiting.reset();
  EXPECT_EQ(admit(), nullptr) << "a draining table admits nothing, even with room";
}

TEST_F(ConnectionTableTest, CancelRequestsCancelsRunningRequestsAndClosesEveryOtherConnection) {
  auto answering = admit();
  auto writing = admit();  // busy, but its handler is done: nothing to cancel, so it is closed
  tcp::socket answering_socket(ioc, tcp::v4());
  tcp::socket writing_socket(ioc, tcp::v4());
  answering->attach(&answering_socket);
  writing->attach(&writing_socket);
  answering->set_idle(false);
  writing->set_idle(false);
  std::optional<net::cancellation_type> emitted;
  answering->request_slot().assign([&](net::cancellation_type type) { emitted = type; });
  answering->begin_request();
  table->cancel_requests();
  ioc.run();
  ASSERT_TRUE(emitted.has_value());
  EXPECT_EQ(*emitted, net::cancellation_type::terminal);
  EXPECT_TRUE(answering->request_cancelled());
  EXPECT_TRUE(answering_socket.is_open()) << "its session still writes the 503";
  EXPECT_FALSE(writing_socket.is_open());
  EXPECT_FALSE(writing->request_cancelled());
}

}  // namespace
}  // namespace gma::http
