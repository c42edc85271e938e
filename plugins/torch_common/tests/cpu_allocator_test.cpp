#include "torch_common/cpu_allocator.hpp"

#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace w2p::torch_common {
namespace {

TEST(CachingCpuAllocator, ReusesFreedLargeBlocksAndKeepsTensorsCorrect) {
  install_caching_cpu_allocator();
  EXPECT_FALSE(install_caching_cpu_allocator());  // idempotent
  EXPECT_NE(c10::GetCPUAllocator(), c10::GetDefaultCPUAllocator());
  release_cached_cpu_blocks();

  const auto before = caching_cpu_allocator_stats();
  const void* first = nullptr;
  {
    auto big = torch::full({1024, 2048}, 3.0f);  // 8 MB
    first = big.data_ptr();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(first) % 64, 0u);
    EXPECT_EQ(big.sum().item<double>(), 3.0 * 1024 * 2048);
  }
  EXPECT_GE(caching_cpu_allocator_stats().cached_bytes, 8u << 20);
  auto again = torch::ones({2048, 1024});  // same size: the cached block
  EXPECT_EQ(again.data_ptr(), first);
  EXPECT_EQ(again.sum().item<double>(), 1024.0 * 2048);
  const auto after = caching_cpu_allocator_stats();
  EXPECT_EQ(after.reused, before.reused + 1);
  EXPECT_EQ(after.fresh, before.fresh + 1);

  // A somewhat smaller request takes a cached larger block; a much smaller one does not.
  const void* larger = nullptr;
  {
    auto big = torch::empty({3 * 1024 * 1024});  // 12 MB
    larger = big.data_ptr();
  }
  {
    auto smaller = torch::empty({2 * 1024 * 1024 + 512 * 1024});  // 10 MB
    EXPECT_EQ(smaller.data_ptr(), larger);
  }
  {
    auto much_smaller = torch::empty({1024 * 1024 + 256 * 1024});  // 5 MB
    EXPECT_NE(much_smaller.data_ptr(), larger);
  }

  // Small tensors and empty ones go through the same allocator.
  auto small = torch::arange(10);
  EXPECT_EQ(small.sum().item<int64_t>(), 45);
  auto empty = torch::empty({0, 5});
  EXPECT_EQ(empty.numel(), 0);

  release_cached_cpu_blocks();
  EXPECT_EQ(caching_cpu_allocator_stats().cached_bytes, 0u);
}

}  // namespace
}  // namespace w2p::torch_common
