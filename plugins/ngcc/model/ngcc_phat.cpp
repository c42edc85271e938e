#include "ngcc/model/ngcc_phat.hpp"

#include <ATen/Parallel.h>
#include <ATen/ops/fft_irfft.h>
#include <ATen/ops/fft_rfft.h>
#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/modules/activation.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "features/kernels/gcc_phat.hpp"
#include "ngcc/model/dropout.hpp"
#include "ngcc/model/spectral_conv.hpp"

namespace w2p::ngcc {
namespace F = torch::nn::functional;
namespace {

constexpr double kLeakySlope = 0.2;
constexpr int64_t kBackboneKernels[] = {11, 9, 7};
constexpr int64_t kHeadKernels[] = {11, 9, 7};
constexpr int64_t kFinalKernel = 5;

torch::Tensor circular_pad(const torch::Tensor& x, int64_t pad) {
  return F::pad(x, F::PadFuncOptions({pad, pad}).mode(torch::kCircular));
}

// Whether a 128->128 convolution of a batch of `rows` goes spectral: when the config asks for it
// and the batch is large enough to pay for the kernels' spectra (fft_conv_min_rows).
bool use_fft_conv(const NgccPhatConfig& config, int64_t rows) {
  return config.fft_conv && rows >= config.fft_conv_min_rows;
}

// A 'same' convolution with `conv`'s parameters: spectral, or the reference's direct form.
torch::Tensor same_conv(const torch::nn::Conv1d& conv, const torch::Tensor& x, ConvPadding padding,
                        bool fft) {
  return fft ? spectral_conv1d(x, conv->weight, conv->bias, padding)
             : direct_conv1d(x, conv->weight, conv->bias, padding);
}

// LeakyReLU(0.2), in place when no graph is recorded (saves a pass and a buffer).
torch::Tensor leaky(const torch::Tensor& x) {
  return F::leaky_relu(x, F::LeakyReLUFuncOptions()
                              .negative_slope(kLeakySlope)
                              .inplace(!torch::GradMode::is_enabled()));
}

// Keeps lags -max_tau..max_tau of a circular correlation of length n (last axis).
torch::Tensor crop_lags(const torch::Tensor& cc, int64_t max_tau) {
  const int64_t n = cc.size(-1);
  return torch::cat({cc.narrow(-1, n - max_tau, max_tau), cc.narrow(-1, 0, max_tau + 1)}, -1);
}

torch::Tensor phat_correlation(const torch::Tensor& spec1, const torch::Tensor& spec2, int64_t n,
                               int64_t max_tau, double eps) {
  const auto g = spec1 * torch::conj(spec2);
  // G * (1 / (|G| + eps)) as the reference writes it (phi, then the product): same rounding.
  const auto cc = at::fft_irfft(g * torch::reciprocal(torch::abs(g) + eps), n);
  return crop_lags(cc, max_tau);
}

// GCC-PHAT of every channel pair a < b of y [B, K, C, L] without gradient -> [B, P, 2, C, T]:
// (a, b) then its lag-reversed copy (b, a). On the CPU each (example, feature channel) is one
// FFTW pass over its K signals (the features plugin's GccPhat: float32, the reference's
// formula), in parallel over rows; elsewhere one example at a time with ATen's FFTs.
torch::Tensor pair_gcc_phat_no_grad(const torch::Tensor& y, int64_t max_tau, double eps) {
  const int64_t b = y.size(0), k = y.size(1), c = y.size(2), length = y.size(3);
  const int64_t t = 2 * max_tau + 1;
  const std::vector<features::ChannelPair> pairs = features::all_channel_pairs(static_cast<int>(k));
  const auto p = static_cast<int64_t>(pairs.size());
  auto out = torch::empty({b, p, 2, c, t}, y.options());
  if (!y.is_cpu() || y.scalar_type() != torch::kFloat32) {
    const auto [ia, ib] = channel_pair_indices(k, y.device());
    for (int64_t i = 0; i < b; ++i) {
      const auto spec = at::fft_rfft(y[i], 2 * length);  // [K, C, F]
      const auto cc = phat_correlation(spec.index_select(0, ia), spec.index_select(0, ib),
                                       2 * length, max_tau, eps);  // [P, C, T]
      out[i].select(1, 0).copy_(cc);
      out[i].select(1, 1).copy_(cc.flip(-1));
    }
    return out;
  }
  const auto rows = y.permute({0, 2, 1, 3}).contiguous();  // [B, C, K, L]: K signals per row
  const float* in = rows.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, b * c, 1, [&](int64_t begin, int64_t end) {
    features::GccPhat gcc(static_cast<int>(length), static_cast<int>(max_tau),
                          static_cast<float>(eps));
    std::vector<float> cc(static_cast<size_t>(p * t));
    for (int64_t row = begin; row < end; ++row) {
      const int64_t bi = row / c, ci = row % c;
      gcc.correlate_pairs(in + row * k * length, static_cast<int>(k), pairs, cc.data());
      for (int64_t q = 0; q < p; ++q) {
        const float* src = cc.data() + q * t;
        float* ab = o + (((bi * p + q) * 2 + 0) * c + ci) * t;
        float* ba = o + (((bi * p + q) * 2 + 1) * c + ci) * t;
        std::copy(src, src + t, ab);
        std::reverse_copy(src, src + t, ba);
      }
    }
  });
  return out;
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> channel_pair_indices(int64_t channels,
                                                             const torch::Device& device) {
  std::vector<int64_t> first, second;
  for (const auto& pair : features::all_channel_pairs(static_cast<int>(channels))) {
    first.push_back(pair.a);
    second.push_back(pair.b);
  }
  const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(device);
  return {torch::tensor(first, opts), torch::tensor(second, opts)};
}

torch::Tensor gcc_phat(const torch::Tensor& y1, const torch::Tensor& y2, int64_t max_tau,
                       double eps) {
  const int64_t n = y1.size(-1) + y2.size(-1);
  if (max_tau >= n / 2) throw std::invalid_argument("gcc_phat: max_tau too large for the signal");
  return phat_correlation(at::fft_rfft(y1, n), at::fft_rfft(y2, n), n, max_tau, eps);
}

// ---- backbone -----------------------------------------------------------------------------------

SincBackboneImpl::SincBackboneImpl(const NgccPhatConfig& config) : config_(config) {
  conv_ = register_module("conv", torch::nn::ModuleList());
  bn_ = register_module("bn", torch::nn::ModuleList());
  const int64_t c = config_.num_channels;
  sinc_ = SincConv(SincConvOptions{c, config_.sinc_kernel, config_.fs, 50.0, 50.0});
  conv_->push_back(sinc_);
  for (const int64_t k : kBackboneKernels) {
    convs_.emplace_back(torch::nn::Conv1dOptions(c, c, k));
    conv_->push_back(convs_.back());
  }
  for (int i = 0; i < 4; ++i) {
    norms_.emplace_back(torch::nn::BatchNorm1dOptions(c).momentum(config_.backbone_bn_momentum));
    bn_->push_back(norms_.back());
  }
}

torch::Tensor SincBackboneImpl::sinc_layer(const torch::Tensor& x) {
  const int64_t length = x.size(-1);
  const int64_t k = config_.sinc_kernel;
  if (length < k / 2) {
    throw std::invalid_argument("SincBackbone: signals of " + std::to_string(length) +
                                " samples are shorter than half the SincConv kernel (" +
                                std::to_string(k / 2) + "); circular padding cannot wrap twice");
  }
  if (!config_.fft_sinc_conv || k > length) {
    return sinc_->forward(circular_pad(x.unsqueeze(1), k / 2));
  }
  // Circular 'same' cross-correlation as a spectral product: out[t] = sum_j h[j] x[(t + j) mod L]
  // with h[j] = filter[j + K/2], j = -K/2..K/2, laid out circularly over L samples.
  const auto w = sinc_->filters().squeeze(1);  // [C, K]
  const int64_t half = k / 2;
  const auto h =
      torch::cat({w.narrow(1, half, half + 1), torch::zeros({w.size(0), length - k}, w.options()),
                  w.narrow(1, 0, half)},
                 1);                                         // [C, L]
  const auto spec_x = at::fft_rfft(x, length).unsqueeze(1);  // [N, 1, F]
  const auto spec_h = torch::conj(at::fft_rfft(h, length));  // [C, F]
  return at::fft_irfft(spec_x * spec_h, length);             // [N, C, L]
}

torch::Tensor SincBackboneImpl::forward(const torch::Tensor& x, std::vector<torch::Tensor>* trace) {
  if (x.dim() != 2) throw std::invalid_argument("SincBackbone: expected x [N, L]");
  auto y = sinc_layer(x);
  if (trace) trace->push_back(y);
  y = leaky(norms_[0]->forward(y));
  if (trace) trace->push_back(y);
  for (size_t i = 0; i < convs_.size(); ++i) {
    y = same_conv(convs_[i], y, ConvPadding::kCircular, use_fft_conv(config_, y.size(0)));
    y = norms_[i + 1]->forward(y);
    // Layer 3 has LeakyReLU(1) in the reference: the identity.
    if (i + 1 < convs_.size()) y = leaky(y);
    if (trace) trace->push_back(y);
  }
  return y;
}

// ---- NGCC-PHAT ----------------------------------------------------------------------------------

NgccPhatImpl::NgccPhatImpl(const NgccPhatConfig& config) : config_(config) {
  const int64_t c = config_.num_channels;
  backbone = register_module("backbone", SincBackbone(config_));
  mlp = register_module("mlp", torch::nn::ModuleList());
  // mlp.i = Sequential(Conv1d, BatchNorm1d, LeakyReLU, Dropout) as in the reference (module
  // paths); head() runs the parts itself, with explicit 'same' zero padding.
  for (const int64_t k : kHeadKernels) {
    head_convs_.emplace_back(torch::nn::Conv1dOptions(c, c, k));
    head_norms_.emplace_back(torch::nn::BatchNorm1dOptions(c).momentum(config_.head_bn_momentum));
    dropouts_.emplace_back(torch::nn::DropoutOptions(config_.dropout));
    mlp->push_back(torch::nn::Sequential(
        head_convs_.back(), head_norms_.back(),
        torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(kLeakySlope)),
        dropouts_.back()));
  }
  final_conv = register_module("final_conv",
                               torch::nn::Conv1d(torch::nn::Conv1dOptions(c, 1, kFinalKernel)));
}

torch::Tensor NgccPhatImpl::backbone_forward(const torch::Tensor& x,
                                             std::vector<torch::Tensor>* trace) {
  return backbone->forward(x, trace);
}

torch::Tensor NgccPhatImpl::gcc(const torch::Tensor& y1, const torch::Tensor& y2) const {
  return gcc_phat(y1, y2, config_.max_tau, config_.phat_eps);
}

namespace {

// same_conv with zero padding, without a graph in chunks of rows of at most `chunk_values` input
// values, into one output tensor (the spectral form writes each chunk in place).
torch::Tensor chunked_conv(const torch::nn::Conv1d& conv, const torch::Tensor& x, bool fft,
                           int64_t chunk_values) {
  const int64_t n = x.size(0);
  const int64_t chunk = std::max<int64_t>(1, chunk_values / (x.size(1) * x.size(2)));
  if (chunk >= n) return same_conv(conv, x, ConvPadding::kZeros, fft);
  auto out = torch::empty({n, conv->options.out_channels(), x.size(2)}, x.options());
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t rows = std::min(chunk, n - first);
    const auto part = x.narrow(0, first, rows);
    auto dst = out.narrow(0, first, rows);
    if (fft) {
      spectral_conv1d(part, conv->weight, conv->bias, ConvPadding::kZeros, dst);
    } else {
      dst.copy_(direct_conv1d(part, conv->weight, conv->bias, ConvPadding::kZeros));
    }
  }
  return out;
}

// BatchNorm1d on x [N, C, T] in place, no gradient: batch statistics (and the running-statistics
// update BatchNorm1d makes) in train mode, running statistics in eval mode.
void batch_norm_in_place(torch::nn::BatchNorm1d& bn, torch::Tensor& x) {
  const auto& o = bn->options;
  torch::Tensor mean, var;
  if (bn->is_training()) {
    std::tie(var, mean) = torch::var_mean(x, torch::IntArrayRef{0, 2}, /*unbiased=*/false);
    const double count = static_cast<double>(x.numel() / x.size(1));
    bn->num_batches_tracked.add_(1);
    // momentum None = cumulative average, as BatchNorm1d
    const double m = o.momentum() ? *o.momentum() : 1.0 / bn->num_batches_tracked.item<double>();
    bn->running_mean.mul_(1.0 - m).add_(mean, m);
    bn->running_var.mul_(1.0 - m).add_(var * (count / std::max(count - 1.0, 1.0)), m);
  } else {
    mean = bn->running_mean;
    var = bn->running_var;
  }
  const auto scale = bn->weight * torch::rsqrt(var + o.eps());
  const auto shift = bn->bias - mean * scale;
  x.mul_(scale.view({1, -1, 1})).add_(shift.view({1, -1, 1}));
}

}  // namespace

torch::Tensor NgccPhatImpl::head(const torch::Tensor& cc, std::vector<torch::Tensor>* trace) {
  // Without a graph (and without a trace, which keeps the module path for parity checks) the
  // convolutions run in chunks of rows and BatchNorm works in place.
  const bool no_graph = !torch::GradMode::is_enabled() && trace == nullptr;
  const auto convolve = [&](const torch::nn::Conv1d& conv, const torch::Tensor& x, bool fft) {
    return no_graph ? chunked_conv(conv, x, fft, config_.head_chunk_values)
                    : same_conv(conv, x, ConvPadding::kZeros, fft);
  };
  auto y = cc;
  for (size_t i = 0; i < head_convs_.size(); ++i) {
    y = convolve(head_convs_[i], y, use_fft_conv(config_, y.size(0)));
    if (no_graph) {
      batch_norm_in_place(head_norms_[i], y);
    } else {
      y = head_norms_[i]->forward(y);
    }
    y = leaky(y);
    const auto& drop = dropouts_[i];
    y = fast_dropout(y, drop->options.p(), drop->is_training(), /*in_place=*/true);
    if (trace) trace->push_back(y);
  }
  y = convolve(final_conv, y, /*fft=*/false);  // 128 -> 1, 5 taps: direct is cheaper
  return y.reshape({y.size(0), -1});
}

torch::Tensor NgccPhatImpl::forward(const torch::Tensor& x1, const torch::Tensor& x2) {
  torch::Tensor y1, y2;
  if (is_training()) {
    // Two BatchNorm batches, x1 first (running statistics updated in the reference's order).
    y1 = backbone->forward(x1);
    y2 = backbone->forward(x2);
  } else {
    const auto y = backbone->forward(torch::cat({x1, x2}, 0));
    y1 = y.narrow(0, 0, x1.size(0));
    y2 = y.narrow(0, x1.size(0), x2.size(0));
  }
  return head(gcc(y1, y2));
}

void NgccPhatImpl::set_dropout(double p) {
  for (auto& d : dropouts_) d->options.p(p);
}

// ---- masked NGCC-PHAT ---------------------------------------------------------------------------

MaskedNgccPhatImpl::MaskedNgccPhatImpl(const NgccPhatConfig& config) {
  ngcc = register_module("ngcc", NgccPhat(config));
}

torch::Tensor MaskedNgccPhatImpl::pair_features(const torch::Tensor& audio) {
  if (audio.dim() != 3) throw std::invalid_argument("pair_features: expected audio [B, K, L]");
  const int64_t b = audio.size(0), k = audio.size(1), length = audio.size(2);
  const auto y = ngcc->backbone_forward(audio.reshape({b * k, length}));  // [B K, C, L]
  const int64_t c = y.size(1);
  const auto& cfg = ngcc->config();
  const int64_t t = 2 * cfg.max_tau + 1;
  torch::Tensor both;  // [B, P, 2, C, T]: (a, b) then (b, a), the lag-reversed (a, b)
  if (torch::GradMode::is_enabled()) {
    const auto [ia, ib] = channel_pair_indices(k, audio.device());
    const int64_t n = 2 * length;
    const auto spec = at::fft_rfft(y, n).view({b, k, c, -1});  // one FFT per channel
    const auto cc = phat_correlation(spec.index_select(1, ia), spec.index_select(1, ib), n,
                                     cfg.max_tau, cfg.phat_eps);  // [B, P, C, T]
    both = torch::stack({cc, cc.flip(-1)}, 2);
  } else {
    // No graph to keep (the frozen NGCC inside wav2pos, inference): the whole batch's spectra
    // and correlations would be B P C (n/2 + 1) complex values (several GB for a training
    // batch), so the correlations are made row by row and only the kept lags are stored.
    both = pair_gcc_phat_no_grad(y.view({b, k, c, length}), cfg.max_tau, cfg.phat_eps);
  }
  const auto logits = ngcc->head(both.reshape({-1, c, t}));  // [B P 2, T]
  return logits.view({b, -1, t});
}

PairBatch MaskedNgccPhatImpl::random_pair_labels(const torch::Tensor& tdoa, std::mt19937_64& rng,
                                                 int64_t num_mics) const {
  const int64_t b = tdoa.size(0);
  std::uniform_int_distribution<int64_t> draw(1, num_mics);
  auto pairs = torch::empty({b, 2}, torch::kInt64);
  auto acc = pairs.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    acc[i][0] = draw(rng);
    acc[i][1] = draw(rng);
  }
  pairs = pairs.to(tdoa.device());
  return {pairs, pair_labels(tdoa, pairs)};
}

torch::Tensor MaskedNgccPhatImpl::pair_labels(const torch::Tensor& tdoa,
                                              const torch::Tensor& pairs) const {
  const int64_t b = tdoa.size(0);
  const auto rows = torch::arange(b, pairs.options());
  const auto t = tdoa.to(torch::kFloat64).index({rows, pairs.select(1, 0), pairs.select(1, 1)});
  return (t + static_cast<double>(ngcc->max_tau())).to(torch::kInt64);  // toward zero
}

torch::Tensor MaskedNgccPhatImpl::forward_pairs(const torch::Tensor& audio,
                                                const torch::Tensor& pairs) {
  const auto rows = torch::arange(audio.size(0), pairs.options());
  const auto x1 = audio.index({rows, pairs.select(1, 0)});
  const auto x2 = audio.index({rows, pairs.select(1, 1)});
  return ngcc->forward(x1, x2);
}

PretrainOutput MaskedNgccPhatImpl::forward(const torch::Tensor& audio, const torch::Tensor& tdoa,
                                           const torch::Tensor& pairs) {
  PretrainOutput out;
  out.logits = forward_pairs(audio, pairs);
  out.labels = pair_labels(tdoa, pairs);
  out.loss = F::cross_entropy(out.logits, out.labels);
  out.pred_tdoa = predict_tdoa(out.logits);
  return out;
}

torch::Tensor MaskedNgccPhatImpl::predict_tdoa(const torch::Tensor& logits) const {
  return logits.argmax(-1) - ngcc->max_tau();
}

}  // namespace w2p::ngcc
