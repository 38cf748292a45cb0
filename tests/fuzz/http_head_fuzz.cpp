// Fuzz target: HTTP/1.1 request heads (and whatever follows them) through the session's request
// loop, http::async_serve_requests (server/http/session.hpp), the same code the TLS sessions
// run, here over Beast's in-memory test stream. The input is what a client sends before it
// closes its side. Invariants beyond not crashing: the loop ends once the input is used up,
// and what the server wrote back is a sequence of well-formed HTTP responses, each one a status
// the session may send.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/http.hpp>

#include "server/http/session.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using test_stream = boost::beast::test::stream;

/// The test stream has no clock: deadlines never pass, and a cancelled head read ends the
/// connection as a closed one would.
template <>
struct gma::http::stream_transport<test_stream> {
  static void expires_after(test_stream&, std::chrono::milliseconds) {}
  static void expires_never(test_stream&) {}
  static void cancel_reads(test_stream& s) { s.close(); }
};

namespace {

/// Answers every request with its method and target, as a handler that reads them would.
class echo_handler final : public gma::http::request_handler {
 public:
  net::awaitable<gma::http::reply> async_handle(gma::http::request req) override {
    co_return gma::http::reply{200, "text/plain", req.method + " " + req.target};
  }
};

/// Checks that `written` is complete HTTP responses, each 200, 400 or 431.
void check_responses(std::string_view written) {
  while (!written.empty()) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.eager(true);
    boost::system::error_code ec;
    const std::size_t used = parser.put(net::buffer(written.data(), written.size()), ec);
    GMA_FUZZ_CHECK(!ec && parser.is_done(), "the server wrote a malformed response: " +
                                                ec.message() + " in " + std::string(written));
    const unsigned status = parser.get().result_int();
    GMA_FUZZ_CHECK(status == 200 || status == 400 || status == 431,
                   "unexpected status " + std::to_string(status));
    written.remove_prefix(used);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  gma::fuzz::guarded([&] {
    net::io_context ioc;
    const auto strand = net::make_strand(ioc);
    test_stream server(strand);
    test_stream client(strand);
    server.connect(client);
    server.append(gma::fuzz::as_text(data, size));
    // The client sends nothing more: the server reads end of stream after the input, and its
    // replies still reach the client.
    server.close_remote();

    static echo_handler handler;
    // Small limits, so that inputs of a few KiB reach the 431 and 400 paths.
    gma::http::server_limits limits;
    limits.max_header_bytes = 2048;
    limits.max_body_bytes = 1024;
    auto table = gma::http::connection_table::create(1);
    auto slot = table->admit(strand);
    bool ended = false;
    net::co_spawn(strand, gma::http::async_serve_requests(server, *slot, handler, limits, nullptr),
                  [&ended](std::exception_ptr e, bool /*refused*/) {
                    if (e) std::rethrow_exception(e);
                    ended = true;
                  });
    ioc.run();
    GMA_FUZZ_CHECK(ended, "the request loop did not end when the input did");
    check_responses(client.str());
  });
  return 0;
}
