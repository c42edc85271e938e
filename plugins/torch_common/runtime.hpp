// What every LibTorch node sets up when it opens.
#pragma once

namespace w2p::torch_common {

/// LibTorch's intra-op threads: the node's `threads` option when > 0, else the pipeline's
/// thread count (at least 1); and the caching CPU allocator (cpu_allocator.hpp).
void prepare_torch_runtime(int threads_option, int run_threads);

}  // namespace w2p::torch_common
