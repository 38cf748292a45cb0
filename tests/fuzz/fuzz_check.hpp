#pragma once
/// @file What the fuzz targets share: GMA_FUZZ_CHECK, which turns a broken invariant into a
/// crash that libFuzzer records with its input, and guarded(), which does the same for an
/// exception our code lets escape (our parsers of untrusted input must not throw; those that
/// document an exception at start-up have it caught by their target first).

#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

namespace gma::fuzz {

/// Reports `what` and aborts: libFuzzer writes the input as crash-<sha1> and exits non-zero.
[[noreturn]] inline void fail(const std::string& what) {
  // The sanitizer's report descriptor, because scripts/fuzz.sh closes stderr (-close_fd_mask=2)
  // to keep the adapter's own log lines out of the run.
  __sanitizer_report_error_summary(("gma fuzz: " + what).c_str());
  std::fprintf(stderr, "gma fuzz: %s\n", what.c_str());
  std::abort();
}

/// Runs `body`, failing on any exception that escapes it.
template <class Body>
void guarded(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    fail(std::string("uncaught exception ") + typeid(e).name() + ": " + e.what());
  } catch (...) {
    fail("uncaught exception of a type not derived from std::exception");
  }
}

/// The input as text.
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace gma::fuzz

/// Fails with the condition's text and `message` (built only when it fails).
#define GMA_FUZZ_CHECK(condition, message)                                           \
  do {                                                                               \
    if (!(condition)) ::gma::fuzz::fail(std::string(#condition) + ": " + (message)); \
  } while (false)
