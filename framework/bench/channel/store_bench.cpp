// StoreWriter throughput for items of f32[7,16000] (one 7-microphone second at 16 kHz), without
// compression, next to the cost of copying the same items in memory.
//
// The store is written under $W2P_BENCH_DIR (default: the system temp directory) and committed
// (fsync + rename) in every iteration, so the rate is what reaches the disk. Counter MB_per_s is
// in 10^6 bytes per second (tools/bench-store reads it).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "channel/hdf5_store.hpp"

namespace w2p {
namespace {

constexpr std::int64_t kMics = 7;
constexpr std::int64_t kSamples = 16000;

std::string bench_dir() {
  const char* env = std::getenv("W2P_BENCH_DIR");
  return env != nullptr && *env != '\0' ? env : std::filesystem::temp_directory_path().string();
}

Item make_item(int i) {
  Tensor audio = Tensor::zeros(DType::kF32, {kMics, kSamples});
  float* p = audio.mutable_data<float>();
  for (std::int64_t j = 0; j < audio.numel(); ++j) p[j] = static_cast<float>((i * 31 + j) % 977);
  return Item{{"audio", audio}, {"index", Tensor::scalar<std::int64_t>(i)}};
}

void BM_StoreWriter(benchmark::State& state) {
  const int items = static_cast<int>(state.range(0));
  const auto chunk = static_cast<std::uint64_t>(state.range(1));
  std::vector<Item> pool;
  for (int i = 0; i < 16; ++i) pool.push_back(make_item(i));
  const Schema schema{
      {{"audio", spec(DType::kF32, {kMics, kSamples}), ""}, {"index", spec(DType::kI64), ""}}};
  const std::string path = bench_dir() + "/w2p_bench_store.h5";
  std::size_t bytes = 0;
  for (auto _ : state) {
    StoreWriter w(path, schema, {{"config_hash", "bench"}}, StoreOptions{chunk, 0});
    for (int i = 0; i < items; ++i) w.append(pool[static_cast<std::size_t>(i) % pool.size()]);
    w.commit();
    bytes += static_cast<std::size_t>(items) * pool[0].nbytes();
  }
  std::filesystem::remove(path);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["MB_per_s"] =
      benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
}
// 1200 items = 538 MB per iteration: about the volume of tools/bench-store's dd (512 MiB), so
// that both see the same page-cache and write-back behaviour.
BENCHMARK(BM_StoreWriter)
    ->Args({1200, 64})
    ->Args({1200, 16})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Reading back in order and at random positions.
void BM_StoreReader(benchmark::State& state) {
  const bool random = state.range(0) != 0;
  const int items = 256;
  const std::string path = bench_dir() + "/w2p_bench_store_read.h5";
  {
    StoreWriter w(path,
                  Schema{{{"audio", spec(DType::kF32, {kMics, kSamples}), ""},
                          {"index", spec(DType::kI64), ""}}},
                  {{"config_hash", "bench"}});
    for (int i = 0; i < items; ++i) w.append(make_item(i));
    w.commit();
  }
  StoreReader r(path);
  std::size_t bytes = 0;
  std::uint64_t k = 0;
  for (auto _ : state) {
    const std::uint64_t index = random ? (k * 2654435761u) % items : k % items;
    ++k;
    Item item = r.read(index);
    bytes += item.nbytes();
    benchmark::DoNotOptimize(item);
  }
  std::filesystem::remove(path);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["MB_per_s"] =
      benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_StoreReader)->Arg(0)->Arg(1)->UseRealTime();

// The in-memory reference: a deep copy (clone) of every tensor of the item.
void BM_ItemDeepCopy(benchmark::State& state) {
  const Item item = make_item(1);
  std::size_t bytes = 0;
  for (auto _ : state) {
    Item copy;
    for (const auto& [name, t] : item.fields()) copy.set(name, t.clone());
    benchmark::DoNotOptimize(copy);
    bytes += item.nbytes();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["MB_per_s"] =
      benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ItemDeepCopy);

// What a channel does when it hands an item to a consumer: a shallow copy sharing the buffers.
void BM_ItemShallowCopy(benchmark::State& state) {
  const Item item = make_item(1);
  for (auto _ : state) {
    Item copy = item;
    benchmark::DoNotOptimize(copy);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_ItemShallowCopy);

}  // namespace
}  // namespace w2p

BENCHMARK_MAIN();
