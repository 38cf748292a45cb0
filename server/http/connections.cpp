#include "server/http/connections.hpp"

#include <boost/asio/post.hpp>

namespace gma::http {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

connection_table::entry::entry(std::shared_ptr<connection_table> table, net::any_io_executor strand)
    : table_(std::move(table)),
      strand_(std::move(strand)),
      idle_since_(clock::now().time_since_epoch().count()) {}

connection_table::entry::~entry() {
  std::lock_guard lock(table_->mutex_);
  if (reclaimed_) --table_->reclaiming_;
  table_->entries_.erase(position_);
}

void connection_table::entry::set_idle(bool idle) {
  if (idle && !idle_) idle_since_ = clock::now().time_since_epoch().count();
  idle_ = idle;
}

void connection_table::entry::attach(net::ip::tcp::socket* socket) { socket_ = socket; }

bool connection_table::entry::draining() const { return table_->draining_; }

void connection_table::entry::stop(bool even_busy) {
  if (in_request_) {
    if (!even_busy) return;
    request_cancelled_ = true;
    cancel_request_.emit(net::cancellation_type::terminal);
    return;
  }
  // The drain closes only connections waiting for their next request: one still handshaking
  // or sending its request has its answer coming (a client retries a GET only on a reused
  // connection, so closing it would lose the request), and one writing a reply ends after it.
  // The deadline closes them all.
  if (!socket_ || (!even_busy && !between_requests_)) return;
  boost::system::error_code ignored;
  socket_->close(ignored);
}

std::shared_ptr<connection_table> connection_table::create(int capacity) {
  return std::shared_ptr<connection_table>(new connection_table(capacity));
}

bool connection_table::reclaim_longest_idle() {
  entry* oldest = nullptr;
  for (auto* e : entries_)
    if (!e->reclaimed_ && e->idle_ && (!oldest || e->idle_since_ < oldest->idle_since_)) oldest = e;
  if (!oldest) return false;
  oldest->reclaimed_ = true;
  ++reclaiming_;
  // Closed on its own strand, where its session uses the socket; the session then ends and
  // frees the slot. A session that ended meanwhile has let go of its entry or its socket.
  net::post(oldest->strand_, [weak = oldest->weak_from_this()] {
    const auto victim = weak.lock();
    if (!victim || !victim->socket_) return;
    boost::system::error_code ignored;
    victim->socket_->close(ignored);
  });
  return true;
}

std::shared_ptr<connection_table::entry> connection_table::admit(
    const net::any_io_executor& strand) {
  std::lock_guard lock(mutex_);
  if (draining_) return nullptr;
  const int open = static_cast<int>(entries_.size()) - reclaiming_;
  if (open >= capacity_ && !reclaim_longest_idle()) return nullptr;
  auto e = std::make_shared<entry>(shared_from_this(), strand);
  e->position_ = entries_.insert(entries_.end(), e.get());
  return e;
}

int connection_table::size() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(entries_.size());
}

}  // namespace gma::http

namespace gma::http {

void connection_table::stop_all(bool even_busy) {
  std::lock_guard lock(mutex_);
  for (auto* e : entries_)
    // On the entry's strand, where its session uses the socket and the request's signal; a
    // session that ended meanwhile has let go of its entry.
    net::post(e->strand_, [weak = e->weak_from_this(), even_busy] {
      if (const auto target = weak.lock()) target->stop(even_busy);
    });
}

void connection_table::drain() {
  draining_ = true;
  stop_all(false);
}

void connection_table::cancel_requests() {
  draining_ = true;
  stop_all(true);
}

}  // namespace gma::http
