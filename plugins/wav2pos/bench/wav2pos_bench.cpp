// wav2pos training step (forward + backward + AdamW, batch 64, a "random" training mask) and
// inference (setup 1a, batch 64 and batch 1), 6 microphones, on 1 and 2 threads. Counters:
// nominal GFLOP per call (the frozen NGCC-PHAT dominates; it runs forward only), achieved
// GFLOP/s, and a float GEMM of a backbone convolution's shape as the machine's yardstick.
//
//   w2p_wav2pos_bench --benchmark_filter=TrainStep/1   (one step takes tens of seconds)
#include <benchmark/benchmark.h>

#include "torch_common/optim.hpp"
#include "torch_common/runtime.hpp"
#include "wav2pos/model/losses.hpp"
#include "wav2pos/model/masking.hpp"
#include "wav2pos/model/wav2pos.hpp"

namespace {

using namespace w2p::wav2pos;  // NOLINT(google-build-using-namespace): benchmark file

constexpr std::int64_t kChannels = 7;
constexpr std::int64_t kLen = 2048;

// Nominal FLOPs (2 x multiply-adds) of one forward for a batch whose masks keep `kept_audio`
// audio channels and `kept` tokens: NGCC backbone per kept channel (3 convolutions 128->128,
// k = 11 + 9 + 7; the FFT SincConv is left out), NGCC head per ordered pair (k = 11 + 9 + 7 + 5
// over 629 lags), the location MLP per pair, patch embedding / reconstruction, transformers.
struct Flops {
  double ngcc = 0.0;
  double trainable = 0.0;
};
Flops forward_flops(std::int64_t batch, std::int64_t kept_audio, std::int64_t kept) {
  const double b = static_cast<double>(batch), ka = static_cast<double>(kept_audio);
  const double pairs = ka * (ka - 1.0), c = 128.0, lags = 629.0, e = 256.0;
  Flops f;
  f.ngcc = 2.0 * b * (ka * c * c * 27.0 * kLen + pairs * (c * c * 27.0 + c * 5.0) * lags);
  const double loc_mlp = pairs * ((2.0 * e + lags) * 512.0 + 512.0 * 512.0);
  const double patches = 2.0 * kChannels * kLen * e;
  const double blocks = 4.0 * (static_cast<double>(kept) + 2.0 * kChannels) * 12.0 * e * e;
  f.trainable = 2.0 * b * (loc_mlp + patches + blocks);
  return f;
}

void set_counters(benchmark::State& state, double flops) {
  state.counters["GFLOP/call"] = flops * 1e-9;
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_TrainStep(benchmark::State& state) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(0)));
  constexpr std::int64_t kBatch = 64;
  torch::manual_seed(0);
  Wav2Pos model;
  model->train();
  auto opt = w2p::torch_common::make_adamw(w2p::torch_common::split_weight_decay(
      model->named_parameters(), w2p::torch_common::reference_no_decay_names()));
  const torch::Tensor audio = torch::randn({kBatch, kChannels, kLen});
  const torch::Tensor locs = torch::randn({kBatch, kChannels, 3});
  NumpyLegacyRandom rng(1);
  double flops = 0.0;
  const auto step = [&] {
    const MaskPlan plan = random_mask({}, kBatch, kChannels, rng);
    opt->zero_grad();
    const auto out = model->forward(audio, locs, ids_keep_tensor(plan));
    const auto loss = forward_loss(audio, out.pred_audio, out.pred_locs, locs, out.mask);
    loss.total.backward();
    opt->step();
    benchmark::DoNotOptimize(loss.total.item<float>());
    const Flops f = forward_flops(kBatch, plan.num_kept_audio, plan.num_kept());
    flops = f.ngcc + 3.0 * f.trainable;  // backward of the trainable part ~ 2 x its forward
  };
  // Warm-up: the steady state of a run, whose caching allocator has settled (two steps).
  for (int i = 0; i < 2; ++i) step();
  for (auto _ : state) step();
  set_counters(state, flops);
}

// The step's two parts apart: the frozen NGCC's features (train mode, as in a training step:
// batch statistics, 6 kept audio channels, 30 ordered pairs) and the trainable rest (forward,
// backward, AdamW) on given features.
void BM_NgccFeatures(benchmark::State& state) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(0)));
  constexpr std::int64_t kBatch = 64;
  torch::manual_seed(0);
  Wav2Pos model;
  model->train();
  const torch::Tensor audio = torch::randn({kBatch, kChannels, kLen});
  const MaskPlan plan = preset_mask(MaskPreset::k1a, kBatch, kChannels);
  const TokenLayout layout = make_token_layout(ids_keep_tensor(plan), kChannels);
  for (int i = 0; i < 2; ++i) model->ngcc_features(audio, layout);  // warm-up (cache settles)
  for (auto _ : state) benchmark::DoNotOptimize(model->ngcc_features(audio, layout).data_ptr());
  set_counters(state, forward_flops(kBatch, plan.num_kept_audio, plan.num_kept()).ngcc);
}

void BM_TrainStepGivenFeatures(benchmark::State& state) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(0)));
  constexpr std::int64_t kBatch = 64;
  torch::manual_seed(0);
  Wav2Pos model;
  model->train();
  auto opt = w2p::torch_common::make_adamw(w2p::torch_common::split_weight_decay(
      model->named_parameters(), w2p::torch_common::reference_no_decay_names()));
  const torch::Tensor audio = torch::randn({kBatch, kChannels, kLen});
  const torch::Tensor locs = torch::randn({kBatch, kChannels, 3});
  const MaskPlan plan = preset_mask(MaskPreset::k1a, kBatch, kChannels);
  const torch::Tensor ids = ids_keep_tensor(plan);
  const torch::Tensor features = torch::randn({kBatch, 30, 629});
  for (auto _ : state) {
    opt->zero_grad();
    const auto out = model->forward_with_features(audio, locs, ids, features);
    const auto loss = forward_loss(audio, out.pred_audio, out.pred_locs, locs, out.mask);
    loss.total.backward();
    opt->step();
    benchmark::DoNotOptimize(loss.total.item<float>());
  }
  set_counters(state, 3.0 * forward_flops(kBatch, plan.num_kept_audio, plan.num_kept()).trainable);
}

void BM_Inference1a(benchmark::State& state) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(1)));
  const std::int64_t batch = state.range(0);
  torch::manual_seed(0);
  Wav2Pos model;
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor audio = torch::randn({batch, kChannels, kLen});
  const torch::Tensor locs = torch::randn({batch, kChannels, 3});
  const MaskPlan plan = preset_mask(MaskPreset::k1a, batch, kChannels);
  const torch::Tensor ids = ids_keep_tensor(plan);
  for (int i = 0; i < 2; ++i) model->forward(audio, locs, ids);  // warm-up (cache settles)
  for (auto _ : state) {
    benchmark::DoNotOptimize(model->forward(audio, locs, ids).pred_locs.data_ptr());
  }
  const Flops f = forward_flops(batch, plan.num_kept_audio, plan.num_kept());
  set_counters(state, f.ngcc + f.trainable);
}

// A float GEMM of the shape a 128->128 k=11 convolution over 8192 samples lowers to.
void BM_Matmul(benchmark::State& state) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(0)));
  const torch::Tensor a = torch::randn({128, 128 * 11});
  const torch::Tensor b = torch::randn({128 * 11, 8192});
  for (auto _ : state) benchmark::DoNotOptimize(torch::matmul(a, b).data_ptr());
  set_counters(state, 2.0 * 128 * 128 * 11 * 8192);
}

BENCHMARK(BM_Matmul)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_TrainStep)->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_NgccFeatures)->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_TrainStepGivenFeatures)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Inference1a)->Args({1, 1})->Args({1, 2})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Inference1a)
    ->Args({64, 1})
    ->Args({64, 2})
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
