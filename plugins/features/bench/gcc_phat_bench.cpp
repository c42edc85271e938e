// GCC-PHAT of all 21 pairs of a 7-channel, 2048-sample item (the wav2pos input), two ways:
//   BM_GccPhatPerPair (baseline): every pair transforms both of its signals (42 forward FFTs);
//   BM_GccPhatSharedSpectra: each channel is transformed once and reused (7 forward FFTs).
// Both do the 21 inverse FFTs. Compare the two times of one run (ratio), not absolute numbers.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "features/kernels/gcc_phat.hpp"

namespace w2p::features {
namespace {

constexpr int kChannels = 7;
constexpr int kLength = 2048;
constexpr int kMaxTau = 314;

std::vector<float> make_item() {
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(kChannels * kLength);
  for (float& v : x) v = normal(gen);
  return x;
}

void BM_GccPhatPerPair(benchmark::State& state) {
  const std::vector<float> item = make_item();
  const std::vector<ChannelPair> pairs = all_channel_pairs(kChannels);
  GccPhat gcc(kLength, kMaxTau);
  std::vector<float> out(pairs.size() * gcc.num_lags());
  for (auto _ : state) {
    for (std::size_t p = 0; p < pairs.size(); ++p) {
      gcc.correlate(item.data() + pairs[p].a * kLength, item.data() + pairs[p].b * kLength,
                    out.data() + p * gcc.num_lags());
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_GccPhatSharedSpectra(benchmark::State& state) {
  const std::vector<float> item = make_item();
  const std::vector<ChannelPair> pairs = all_channel_pairs(kChannels);
  GccPhat gcc(kLength, kMaxTau);
  std::vector<float> out(pairs.size() * gcc.num_lags());
  for (auto _ : state) {
    gcc.correlate_pairs(item.data(), kChannels, pairs, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_GccPhatPerPair)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GccPhatSharedSpectra)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace w2p::features

BENCHMARK_MAIN();
