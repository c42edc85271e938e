#include "ngcc/model/dropout.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/nn/functional/dropout.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

namespace w2p::ngcc {
namespace {

constexpr int64_t kBlock = 4096;  // elements per independent random stream

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t draw_seed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
}

// data[i] *= kept ? scale : 0; at -O3 (CMakeLists) a vector compare-and-select, no branch (a
// branch per value mispredicts half the time).
inline void scale_block(float* data, const uint16_t* variates, int64_t count, uint16_t threshold,
                        float scale) {
  for (int64_t i = 0; i < count; ++i) {
    data[i] *= variates[i] >= threshold ? scale : 0.0f;
  }
}

// Inverted-dropout mask applied in place to n values; the stream of block b is seeded by seed
// and b, so the result does not depend on how blocks are split among threads. Each block
// draws its 16-bit variates first, then scales its values in one vectorised pass.
void apply_mask(float* data, int64_t n, double p, uint64_t seed) {
  const auto threshold = static_cast<uint16_t>(std::min(65535L, std::lround(p * 65536.0)));
  const auto scale = static_cast<float>(1.0 / (1.0 - p));
  at::parallel_for(0, (n + kBlock - 1) / kBlock, 1, [=](int64_t begin, int64_t end) {
    std::array<uint16_t, kBlock> variates;
    for (int64_t block = begin; block < end; ++block) {
      uint64_t state = seed ^ (static_cast<uint64_t>(block) * 0xD1B54A32D192ED03ULL);
      for (int64_t i = 0; i < kBlock; i += 4) {
        const uint64_t bits = splitmix64(state);
        std::memcpy(&variates[static_cast<size_t>(i)], &bits, sizeof bits);
      }
      const int64_t first = block * kBlock, count = std::min(n - first, kBlock);
      scale_block(data + first, variates.data(), count, threshold, scale);
    }
  });
}

}  // namespace

torch::Tensor fast_dropout(const torch::Tensor& x, double p, bool training, bool in_place) {
  if (!(p >= 0.0 && p <= 1.0)) {
    throw std::invalid_argument("fast_dropout: p must lie in [0, 1], got " + std::to_string(p));
  }
  if (!training || p == 0.0) return x;
  if (p == 1.0) return x * 0.0;
  if (!x.is_cpu() || x.scalar_type() != torch::kFloat32) {
    return torch::dropout(x, p, /*train=*/true);
  }
  const uint64_t seed = draw_seed();
  if (!torch::GradMode::is_enabled() && in_place && x.is_contiguous()) {
    apply_mask(x.data_ptr<float>(), x.numel(), p, seed);
    return x;
  }
  // The mask as a tensor (ones through apply_mask), so autograd sees a plain product.
  auto mask = torch::ones_like(x, torch::MemoryFormat::Contiguous);
  apply_mask(mask.data_ptr<float>(), mask.numel(), p, seed);
  return x * mask;
}

}  // namespace w2p::ngcc
