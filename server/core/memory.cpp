#include "server/core/memory.hpp"

#include <malloc.h>

namespace gma::core {

void release_free_heap() noexcept { malloc_trim(0); }

}  // namespace gma::core
