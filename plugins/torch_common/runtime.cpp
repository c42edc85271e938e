#include "torch_common/runtime.hpp"

#include <ATen/Parallel.h>

#include <algorithm>

#include "torch_common/cpu_allocator.hpp"

namespace w2p::torch_common {

void prepare_torch_runtime(int threads_option, int run_threads) {
  at::set_num_threads(threads_option > 0 ? threads_option : std::max(1, run_threads));
  install_caching_cpu_allocator();
}

void prepare_benchmark_runtime(int threads) {
  prepare_torch_runtime(threads, 1);
  release_cached_cpu_blocks();
}

}  // namespace w2p::torch_common
