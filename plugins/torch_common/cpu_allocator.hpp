// A caching CPU allocator for LibTorch. The default one returns every large tensor to the
// system (glibc serves blocks over 32 MB by mmap), so each training step page-faults and zeroes
// its activations afresh: a third of the frozen NGCC-PHAT head's time inside a wav2pos step was
// kernel page-fault work. Steps allocate the same sizes again and again, so keeping freed large
// blocks for reuse removes that cost; new large blocks are backed by transparent huge pages.
#pragma once

#include <cstddef>

namespace w2p::torch_common {

struct CpuAllocatorStats {
  std::size_t cached_bytes = 0;  ///< freed large blocks kept for reuse
  std::size_t reused = 0;        ///< large allocations served from the cache
  std::size_t fresh = 0;         ///< large allocations that went to the system
};

/// Makes the caching allocator LibTorch's CPU allocator for the rest of the process (idempotent;
/// does nothing when another non-default allocator is installed). Blocks of 4 MB and more are
/// rounded up to 2 MB and cached by size (a request takes the smallest cached block of up to
/// 1.5x its size), up to W2P_TORCH_CACHE_MB megabytes (default: a quarter
/// of the physical memory, at most 8 GB; 0 keeps LibTorch's default allocator); smaller ones go
/// straight to the C library. The library holding the allocator stays loaded until exit, since
/// tensors may outlive the plugin that installed it. Returns true if this call installed it.
bool install_caching_cpu_allocator();

/// Counters of the installed caching allocator (zeros when it is not installed).
CpuAllocatorStats caching_cpu_allocator_stats();

/// Frees every cached block (e.g. after a phase with larger tensors than the next one needs).
void release_cached_cpu_blocks();

}  // namespace w2p::torch_common
