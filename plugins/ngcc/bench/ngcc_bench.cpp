// NGCC-PHAT pre-training step (forward + backward + AdamW), batch 64, max_tau 342, L 2048, with
// the reference's direct 1023-tap SincConv and with our FFT form; 1 and 2 threads. Counters:
// s/step, GFLOP/s over the step's nominal convolution FLOPs, and a float matmul for comparison.
//
//   w2p_ngcc_bench --benchmark_filter=Fft   (the direct form needs ~30+ s per step on one core)
#include <benchmark/benchmark.h>
#include <torch/nn/functional/loss.h>

#include <random>

#include "ngcc/model/ngcc_phat.hpp"
#include "ngcc/model/spectral_conv.hpp"
#include "torch_common/optim.hpp"
#include "torch_common/runtime.hpp"

namespace {

using w2p::ngcc::MaskedNgccPhat;
using w2p::ngcc::NgccPhatConfig;

constexpr int64_t kBatch = 64;
constexpr int64_t kLen = 2048;

// Multiply-adds x 2 of the convolutions of one step (forward; backward = 2 x forward: input and
// weight gradients): SincConv 1023 taps and the 128->128 convs over 2B signals, the head over B
// correlations. The direct SincConv dominates; the FFT form replaces its 1023-tap term.
double step_flops(bool fft_sinc, int64_t max_tau) {
  const double signals = 2.0 * kBatch, c = 128.0, len = kLen, lags = 2.0 * max_tau + 1.0;
  const double sinc = fft_sinc ? 0.0 : 2.0 * signals * c * 1023.0 * len;
  const double backbone = 2.0 * signals * c * c * (11 + 9 + 7) * len;
  const double head = 2.0 * kBatch * (c * c * (11 + 9 + 7) + c * 5) * lags;
  // SincConv needs no input gradient (first layer): forward + filter gradient only.
  return 2.0 * sinc + 3.0 * (backbone + head);
}

void BM_TrainStep(benchmark::State& state, bool fft_sinc) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(0)));
  torch::manual_seed(0);
  NgccPhatConfig config;
  config.fft_sinc_conv = fft_sinc;
  config.fft_conv = fft_sinc;
  MaskedNgccPhat model(config);
  model->train();
  auto opt = w2p::torch_common::make_adamw(w2p::torch_common::split_weight_decay(
      model->named_parameters(), w2p::torch_common::reference_no_decay_names()));
  const auto audio = torch::randn({kBatch, 7, kLen});
  const auto tdoa = torch::randn({kBatch, 7, 7}, torch::kFloat64) * 100.0;
  std::mt19937_64 rng(1);
  const auto step = [&] {
    const auto batch = model->random_pair_labels(tdoa, rng);
    opt->zero_grad();
    const auto out = model->forward(audio, tdoa, batch.pairs);
    out.loss.backward();
    opt->step();
    benchmark::DoNotOptimize(out.loss.item<float>());
  };
  // Warm-up: the steady state of a run, whose caching allocator has settled (two steps).
  for (int i = 0; i < 2; ++i) step();
  for (auto _ : state) step();
  const double flops = step_flops(fft_sinc, config.max_tau);
  state.counters["GFLOP/step"] = flops * 1e-9;
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// A float GEMM of the shape a 128->128 k=11 convolution lowers to, as the FLOP/s yardstick.
void BM_Matmul(benchmark::State& state) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(0)));
  const auto a = torch::randn({128, 128 * 11});
  const auto b = torch::randn({128 * 11, 8192});
  for (auto _ : state) benchmark::DoNotOptimize(torch::matmul(a, b).data_ptr());
  const double flops = 2.0 * 128 * 128 * 11 * 8192;
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// One 128->128 k=11 layer of a pre-training batch, forward + backward (input, weight and bias
// gradients): args {0 direct, 1 spectral} x {0 backbone: circular, 64 signals of 2048 samples;
// 1 head: zero padding, 64 correlations of 685 lags} x threads. GFLOP/s over the direct
// convolution's nominal FLOPs, so the spectral form's figure is an effective rate.
void BM_Conv128(benchmark::State& state) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(2)));
  const bool spectral = state.range(0) == 1;
  const bool head = state.range(1) == 1;
  const int64_t n = 64, c = 128, k = 11, length = head ? 685 : kLen;
  const auto padding = head ? w2p::ngcc::ConvPadding::kZeros : w2p::ngcc::ConvPadding::kCircular;
  const auto x = torch::randn({n, c, length}, torch::requires_grad());
  const auto w = (torch::randn({c, c, k}) * 0.03).requires_grad_();
  const auto b = torch::randn({c}, torch::requires_grad());
  const auto g = torch::randn({n, c, length});
  const auto layer = [&] {
    const auto y = spectral ? w2p::ngcc::spectral_conv1d(x, w, b, padding)
                            : w2p::ngcc::direct_conv1d(x, w, b, padding);
    y.backward(g);
    x.mutable_grad().reset();
    w.mutable_grad().reset();
    b.mutable_grad().reset();
  };
  layer();
  for (auto _ : state) layer();
  const double flops = 3.0 * 2.0 * n * c * c * k * length;
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// Inference latency for 6 microphones: all 30 ordered pairs' features (eval mode).
void BM_PairFeatures6Mics(benchmark::State& state) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(0)));
  MaskedNgccPhat model;
  model->eval();
  torch::NoGradGuard no_grad;
  const auto audio = torch::randn({1, 6, kLen});
  for (auto _ : state) benchmark::DoNotOptimize(model->pair_features(audio).data_ptr());
}

// Where the frozen NGCC-PHAT of a wav2pos training step spends its time: batch 64, 7 channels,
// all 21 pairs (42 ordered) through the head, train mode (the reference's QUIRK), no gradient.
// Parts: 0 = backbone on 448 signals, 1 = the whole pair_features (backbone, GCC-PHAT of the
// 21 x 64 channel pairs with 128 feature channels each, n = 4096, lags +-314, head), 2 = head on
// the 42 x 64 ordered pairs. GCC-PHAT = 1 - 0 - 2.
void BM_WavPosFeatureParts(benchmark::State& state) {
  w2p::torch_common::prepare_benchmark_runtime(static_cast<int>(state.range(1)));
  NgccPhatConfig config;
  config.max_tau = 314;
  MaskedNgccPhat model(config);
  model->train();
  torch::NoGradGuard no_grad;
  const int64_t k = 7, pairs = k * (k - 1) / 2, c = 128, lags = 2 * config.max_tau + 1;
  const auto audio = torch::randn({kBatch * k, kLen});
  const auto cc = torch::randn({kBatch * 2 * pairs, c, lags});
  double flops = 0;
  const auto part = [&] {
    switch (state.range(0)) {
      case 0:
        return model->ngcc->backbone_forward(audio);
      case 1:
        return model->pair_features(audio.view({kBatch, k, kLen}));
      default:
        return model->ngcc->head(cc);
    }
  };
  for (int i = 0; i < 2; ++i) part();  // warm-up: the allocator's cache settles in two runs
  for (auto _ : state) benchmark::DoNotOptimize(part().data_ptr());
  const double backbone = 2.0 * kBatch * k * c * c * (11 + 9 + 7) * kLen;
  const double head = 2.0 * kBatch * 2 * pairs * (c * c * (11 + 9 + 7) + c * 5) * lags;
  flops = state.range(0) == 0 ? backbone : state.range(0) == 2 ? head : backbone + head;
  state.counters["GFLOP"] = flops * 1e-9;
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_Conv128)
    ->ArgsProduct({{0, 1}, {0, 1}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_WavPosFeatureParts)
    ->ArgsProduct({{0, 1, 2}, {1, 2}})
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, Fft, true)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(2)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, Direct, false)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK(BM_Matmul)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PairFeatures6Mics)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
