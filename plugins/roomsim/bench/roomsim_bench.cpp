// One wav2pos room per iteration (5 x 5 x 2 m, 6 microphones one per face, 1 s of signal at
// 16 kHz): image sources, six RIRs and the full convolution, single thread. Anechoic and
// reverberant (T60 0.3 / 0.35 / 0.4 s via inverse Sabine); the stages are timed separately so
// the split can be compared with pyroomacoustics' profile (issue 5: 75 % RIRs, 23 % images,
// 1.4 % convolution; 2.1 reverberant and 171-189 anechoic rooms/s on one thread).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "roomsim/kernels/fft_convolution.hpp"
#include "roomsim/kernels/simulate_room.hpp"
#include "roomsim/kernels/wav2pos_geometry.hpp"

namespace {

using namespace w2p::roomsim;

struct Scene {
  ShoeboxRoom room;
  Vec3 source{};
  std::vector<Vec3> mics;
  std::vector<float> signal;
};

// A fixed scene; t60_ms = 0 for the anechoic room (absorption 1, order 0).
Scene make_scene(int t60_ms) {
  std::mt19937_64 gen(1234);
  Scene s;
  const auto mics = sample_face_microphones(kWav2posRoomSize, gen);
  s.mics.assign(mics.begin(), mics.end());
  s.source = sample_source_position(kWav2posRoomSize, {}, gen);
  if (t60_ms == 0) {
    s.room = ShoeboxRoom::uniform(kWav2posRoomSize, 1.0, 0);
  } else {
    const SabineParameters p = inverse_sabine(t60_ms / 1000.0, kWav2posRoomSize);
    s.room = ShoeboxRoom::uniform(kWav2posRoomSize, p.energy_absorption, p.max_order);
  }
  std::normal_distribution<float> noise(0.0f, 0.1f);
  s.signal.resize(16000);
  for (float& v : s.signal) v = noise(gen);
  return s;
}

void set_counters(benchmark::State& state, const Scene& s) {
  state.SetItemsProcessed(state.iterations());  // items/s = rooms/s
  state.counters["images"] = static_cast<double>(count_image_sources(s.room.max_order));
}

// The whole room: what one simulated item costs. exact:1 sums the RIR filters in the
// reference's order (RirOptions::exact_summation) instead of the polyphase grid.
void BM_Room(benchmark::State& state) {
  const Scene s = make_scene(static_cast<int>(state.range(0)));
  RirOptions options;
  options.exact_summation = state.range(1) != 0;
  const ShoeboxSimulator sim(options);
  for (auto _ : state) {
    MicSignals out = sim.simulate(s.room, s.source, s.mics, s.signal.data(), s.signal.size());
    benchmark::DoNotOptimize(out.samples.data());
  }
  set_counters(state, s);
}
BENCHMARK(BM_Room)
    ->ArgNames({"t60_ms", "exact"})
    ->ArgsProduct({{0, 300, 350, 400}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

void BM_ImageSources(benchmark::State& state) {
  const Scene s = make_scene(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    ImageSources images = compute_image_sources(s.room, s.source);
    benchmark::DoNotOptimize(images.x.data());
  }
  set_counters(state, s);
}
BENCHMARK(BM_ImageSources)->ArgName("t60_ms")->Arg(400)->Unit(benchmark::kMillisecond);

void BM_SixRirs(benchmark::State& state) {
  const Scene s = make_scene(static_cast<int>(state.range(0)));
  const ImageSources images = compute_image_sources(s.room, s.source);
  const bool exact = state.range(1) != 0;
  for (auto _ : state) {
    for (const Vec3& mic : s.mics) {
      std::vector<float> rir = build_rir(images, mic, s.room.sample_rate, s.room.c,
                                         FractionalDelayTable::reference(), exact);
      benchmark::DoNotOptimize(rir.data());
    }
  }
  set_counters(state, s);
}
BENCHMARK(BM_SixRirs)
    ->ArgNames({"t60_ms", "exact"})
    ->ArgsProduct({{400}, {0, 1}})
    ->Unit(benchmark::kMillisecond);

void BM_Convolution(benchmark::State& state) {
  const Scene s = make_scene(static_cast<int>(state.range(0)));
  const std::vector<std::vector<float>> rirs =
      ShoeboxSimulator().compute_rirs(s.room, s.source, s.mics);
  const auto length = static_cast<std::size_t>(mic_signal_length(rirs, s.signal.size()));
  for (auto _ : state) {
    std::vector<float> out = convolve_full_many(s.signal.data(), s.signal.size(), rirs, length);
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state, s);
}
BENCHMARK(BM_Convolution)->ArgName("t60_ms")->Arg(0)->Arg(400)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
