#pragma once
/// @file The open client connections. A flood of idle clients (connected but silent, or
/// between requests) must not lock out the HPA: when every slot is taken, the connection that
/// has been idle the longest is closed to make room, as nginx reuses keep-alive connections.
/// Only when every connection is busy answering a request is a new one refused.
///
/// The table also stops its connections at shutdown, in two steps: drain() closes those waiting
/// between requests and lets the others finish theirs; cancel_requests(), at the drain deadline,
/// cancels the requests still running (their sessions answer 503) and closes the rest.
///
/// @par Thread safety
/// admit(), size(), drain() and cancel_requests() may be called from any thread; an entry is
/// used by its session's strand, and the table acts on an entry only on that strand. The
/// table lives as long as its longest-lived entry (entries share it).

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
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

    /// The slot to bind to the handler of the request being answered, between
    /// begin_request() and end_request(); cancel_requests() emits terminal cancellation on it.
    /// Call on the session's strand.
    boost::asio::cancellation_slot request_slot() { return cancel_request_.slot(); }
    void begin_request() { in_request_ = true; }
    void end_request() { in_request_ = false; }
    /// The running request was cancelled by cancel_requests(). Call on the session's strand.
    bool request_cancelled() const { return request_cancelled_; }
    /// Waiting on a kept-alive connection for the next request: drain() closes such a
    /// connection at once, while one still handshaking or sending its first request may finish
    /// it. Call on the session's strand.
    void set_between_requests(bool between) { between_requests_ = between; }
    /// The server is stopping: the session ends after the reply it is writing.
    bool draining() const;

   private:
    friend class connection_table;
    /// drain() (`even_busy` false) closes the socket of a connection between requests;
    /// cancel_requests() (true) cancels the running request, or closes the socket. Runs on
    /// strand_.
    void stop(bool even_busy);

    std::shared_ptr<connection_table> table_;
    boost::asio::any_io_executor strand_;
    std::atomic<bool> idle_{true};
    std::atomic<std::chrono::steady_clock::rep> idle_since_;
    bool reclaimed_ = false;                           // guarded by the table's mutex
    std::list<entry*>::iterator position_;             // guarded by the table's mutex
    boost::asio::ip::tcp::socket* socket_ = nullptr;   // used on strand_ only
    boost::asio::cancellation_signal cancel_request_;  // used on strand_ only
    bool in_request_ = false;                          // used on strand_ only
    bool request_cancelled_ = false;                   // used on strand_ only
    bool between_requests_ = false;                    // used on strand_ only
  };

  static std::shared_ptr<connection_table> create(int capacity);

  /// A slot for a new connection whose session runs on `strand`. When the table is full, the
  /// longest-idle connection is closed to make room; nullptr when every connection is busy.
  std::shared_ptr<entry> admit(const boost::asio::any_io_executor& strand);

  /// Connections holding a slot.
  int size() const;

  /// First step of a shutdown: new connections are refused, those waiting between requests
  /// are closed, and the others end after their reply.
  void drain();
  /// Second step, at the drain deadline: requests still being answered are cancelled, and
  /// every other connection is closed.
  void cancel_requests();

 private:
  explicit connection_table(int capacity) : capacity_(capacity) {}
  /// Marks the longest-idle entry reclaimed and has it closed; false when none is idle.
  bool reclaim_longest_idle();  // mutex_ held
  /// Runs entry::stop(even_busy) on every entry's strand.
  void stop_all(bool even_busy);

  const int capacity_;
  mutable std::mutex mutex_;
  std::list<entry*> entries_;  // guarded by mutex_, oldest first
  int reclaiming_ = 0;         // slots being freed; guarded by mutex_
  std::atomic<bool> draining_{false};
};

}  // namespace gma::http
