// What every LibTorch node sets up when it opens.
#pragma once

namespace w2p::torch_common {

/// LibTorch's intra-op threads: the node's `threads` option when > 0, else the pipeline's
/// thread count (at least 1); and the caching CPU allocator (cpu_allocator.hpp).
void prepare_torch_runtime(int threads_option, int run_threads);

/// For one benchmark case: `threads` threads and an empty allocator cache, so that blocks an
/// earlier case cached (other shapes) neither serve nor crowd this one.
void prepare_benchmark_runtime(int threads);

}  // namespace w2p::torch_common
