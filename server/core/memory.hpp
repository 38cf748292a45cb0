#pragma once
/// @file Giving memory back to the system after large, short-lived work.

#include <cstddef>

namespace gma::core {

/// Transient work at least this large (a Prometheus reply's bytes) is followed by a trim.
inline constexpr std::size_t kTrimAfterBytes = 4 * 1024 * 1024;

/// Returns the free pages of the heap to the system (glibc's malloc_trim). A 20 MB reply
/// parses into a few hundred MB of short-lived allocations; without this the resident size
/// stays at that peak for good. Thread-safe; costs a few milliseconds, so call it only after
/// large work.
void release_free_heap() noexcept;

/// Calls release_free_heap() when it is destroyed if `bytes` reached kTrimAfterBytes: declare
/// it before the large objects so that it runs after they are freed.
class trim_heap_after {
 public:
  trim_heap_after() = default;
  trim_heap_after(const trim_heap_after&) = delete;
  trim_heap_after& operator=(const trim_heap_after&) = delete;
  ~trim_heap_after() {
    if (bytes >= kTrimAfterBytes) release_free_heap();
  }
  std::size_t bytes = 0;
};

}  // namespace gma::core
