#pragma once
/// @file The open client connections. A flood of idle clients (connected but silent, or
/// between requests) must not lock out the HPA: when every slot is taken, the connection that
/// has been idle the longest is closed to make room, as nginx reuses keep-alive connections.
/// Only when every connection is busy answering a request is a new one refused.
///
/// @par Thread safety
/// admit() may be called from any thread; an entry is used by its session's strand. The table
/// lives as long as its longest-lived entry (entries share it).

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>

namespace gma::http {

class connection_table : public std::enable_shared_from_this<connection_table> {
 public:
  /// One connection's slot; released when the last reference goes.
  class entry : public std::enable_shared_from_this<entry> {
   public:
    entry(std::shared_ptr<connection_table> table, boost::asio::any_io_executor strand);
    ~entry();
    entry(const entry&) = delete;
    entry& operator=(const entry&) = delete;

    /// Idle: handshaking, waiting for or reading a request's head. Busy: answering one.
    void set_idle(bool idle);
    /// The session's socket, closed on the session's strand when the slot is reclaimed;
    /// nullptr once the session ends. Call on the session's strand.
    void attach(boost::asio::ip::tcp::socket* socket);

   private:
    friend class connection_table;
    std::shared_ptr<connection_table> table_;
    boost::asio::any_io_executor strand_;
    std::atomic<bool> idle_{true};
    std::atomic<std::chrono::steady_clock::rep> idle_since_;
    bool reclaimed_ = false;                          // guarded by the table's mutex
    std::list<entry*>::iterator position_;            // guarded by the table's mutex
    boost::asio::ip::tcp::socket* socket_ = nullptr;  // used on strand_ only
  };

  static std::shared_ptr<connection_table> create(int capacity);

  /// A slot for a new connection whose session runs on `strand`. When the table is full, the
  /// longest-idle connection is closed to make room; nullptr when every connection is busy.
  std::shared_ptr<entry> admit(const boost::asio::any_io_executor& strand);

  /// Connections holding a slot.
  int size() const;

 private:
  explicit connection_table(int capacity) : capacity_(capacity) {}
  /// Marks the longest-idle entry reclaimed and has it closed; false when none is idle.
  bool reclaim_longest_idle();  // mutex_ held

  const int capacity_;
  mutable std::mutex mutex_;
  std::list<entry*> entries_;  // guarded by mutex_, oldest first
  int reclaiming_ = 0;         // slots being freed; guarded by mutex_
};

}  // namespace gma::http
