#include "torch_common/cpu_allocator.hpp"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>

namespace w2p::torch_common {
namespace {

constexpr std::size_t kHeader = 64;  // keeps the data 64-byte aligned, as LibTorch's allocator
constexpr std::size_t kLargeBlock = std::size_t{4} << 20;
constexpr std::size_t kHugePage = std::size_t{2} << 20;

// The header in front of every block: its total size (0 for small blocks, freed directly).
struct BlockHeader {
  std::size_t cached_size;
};

std::size_t default_cache_limit() {
  if (const char* env = std::getenv("W2P_TORCH_CACHE_MB")) {
    return static_cast<std::size_t>(std::strtoull(env, nullptr, 10)) << 20;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const std::size_t physical =
      pages > 0 && page > 0 ? static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) : 0;
  return std::min(physical / 4, std::size_t{8} << 30);
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  static CachingCpuAllocator& instance() {
    static auto* allocator = new CachingCpuAllocator();  // never destroyed: tensors may outlive us
    return *allocator;
  }

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(std::size_t n) override { return make(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    std::memcpy(dest, src, count);
  }
#else
  c10::DataPtr allocate(std::size_t n) const override { return make(n); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  CpuAllocatorStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, block] : free_) std::free(block);
    free_.clear();
    stats_.cached_bytes = 0;
  }

 private:
  CachingCpuAllocator() : limit_(default_cache_limit()) {}

  c10::DataPtr make(std::size_t n) const {
    if (n == 0) return {nullptr, nullptr, &release, c10::Device(c10::DeviceType::CPU)};
    void* data = instance().take(n);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  void* take(std::size_t n) {
    void* block = nullptr;
    std::size_t cached_size = 0;
    if (n + kHeader >= kLargeBlock) {
      cached_size = (n + kHeader + kHugePage - 1) / kHugePage * kHugePage;
      {
        // Best fit up to 1.5x the size: shapes vary a little between steps (the number of
        // kept channels is random), and a near miss would mean clearing fresh pages again.
        std::lock_guard<std::mutex> lock(mutex_);
        const auto it = free_.lower_bound(cached_size);
        if (it != free_.end() && it->first <= cached_size + cached_size / 2) {
          cached_size = it->first;
          block = it->second;
          free_.erase(it);
          stats_.cached_bytes -= cached_size;
          ++stats_.reused;
        } else {
          ++stats_.fresh;
        }
      }
      if (block == nullptr) {
        block = std::aligned_alloc(kHugePage, cached_size);
        if (block != nullptr) madvise(block, cached_size, MADV_HUGEPAGE);
      }
    } else {
      block = std::aligned_alloc(kHeader, (n + 2 * kHeader - 1) / kHeader * kHeader);
    }
    if (block == nullptr) throw std::bad_alloc();
    static_cast<BlockHeader*>(block)->cached_size = cached_size;
    return static_cast<char*>(block) + kHeader;
  }

  static void release(void* data) {
    if (data == nullptr) return;
    void* block = static_cast<char*>(data) - kHeader;
    const std::size_t size = static_cast<BlockHeader*>(block)->cached_size;
    if (size != 0) {
      auto& self = instance();
      std::lock_guard<std::mutex> lock(self.mutex_);
      if (self.stats_.cached_bytes + size <= self.limit_) {
        self.free_.emplace(size, block);
        self.stats_.cached_bytes += size;
        return;
      }
    }
    std::free(block);
  }

  std::mutex mutex_;
  std::multimap<std::size_t, void*> free_;  // cached blocks by size
  CpuAllocatorStats stats_;
  std::size_t limit_;
};

bool installed_here = false;

// Pins the shared object holding this code (dlclose becomes a no-op for it): LibTorch keeps a
// pointer to the allocator, and tensors carry its deleter, past any plugin unload.
void pin_this_library() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&install_caching_cpu_allocator), &info) != 0 &&
      info.dli_fname != nullptr) {
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
}

}  // namespace

bool install_caching_cpu_allocator() {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (c10::GetCPUAllocator() != c10::GetDefaultCPUAllocator()) return false;
  if (default_cache_limit() == 0) return false;  // W2P_TORCH_CACHE_MB=0: LibTorch's own
  pin_this_library();
  c10::SetCPUAllocator(&CachingCpuAllocator::instance(), /*priority=*/1);
  installed_here = true;
  return true;
}

CpuAllocatorStats caching_cpu_allocator_stats() {
  if (!installed_here) return {};
  return CachingCpuAllocator::instance().stats();
}

void release_cached_cpu_blocks() {
  if (installed_here) CachingCpuAllocator::instance().clear();
}

}  // namespace w2p::torch_common
