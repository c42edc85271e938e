// NGCC-PHAT (spec §3): a SincNet backbone per channel, 128-channel GCC-PHAT per channel pair,
// and a convolutional head giving one logit per lag. Module paths equal the reference's, so
// state_dicts are interchangeable (param-names.txt, section ngcc_pretrain, keys after "ngcc.").
//
// Threading: a module instance is not thread-safe (BatchNorm statistics, autograd state);
// use one per thread or guard it.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "ngcc/model/sinc_conv.hpp"

namespace w2p::ngcc {

struct NgccPhatConfig {
  int64_t max_tau = 342;  ///< lags -max_tau..max_tau; 314 inside wav2pos (QUIRK spec §4.2)
  int64_t sig_len = 2048;
  int64_t num_channels = 128;
  int64_t fs = 16000;
  int64_t sinc_kernel = 1023;
  double dropout = 0.5;  ///< head Dropout p
  double backbone_bn_momentum = 0.05;
  double head_bn_momentum = 0.1;
  double phat_eps = 1e-3;
  /// Compute the circular SincConv as an FFT product instead of a 1023-tap direct convolution:
  /// the same function (circular 'same' padding of a length-L signal is a circular correlation
  /// of period L), ~1e-6 relative rounding difference, far cheaper. false = as the reference.
  bool fft_sinc_conv = true;
  /// Compute the 128->128 convolutions of the backbone (circular padding) and of the head (zero
  /// padding) as spectral products (spectral_conv.hpp): the same function to ~1e-6 relative,
  /// 3.5-7x fewer operations. false = direct convolutions, the reference's arithmetic.
  bool fft_conv = true;
  /// ... for batches of at least this many signals (backbone) or correlations (head): below it
  /// the kernels' spectra (128 x 128 per frequency bin) cost more than the products save, and
  /// the direct convolution is faster (e.g. one 6-microphone localisation).
  int64_t fft_conv_min_rows = 32;
  /// Without a graph (frozen NGCC, inference) the head convolves chunks of rows of at most this
  /// many input values: ~80 MB of temporaries that the allocator reuses, instead of full-batch
  /// copies (866 MB each in a wav2pos training step). Same result.
  int64_t head_chunk_values = int64_t{20} << 20;
};

/// Index tensors (first, second) of every channel pair a < b among `channels`, ascending (the
/// order of pair_features and features::all_channel_pairs), int64 on `device`.
std::pair<torch::Tensor, torch::Tensor> channel_pair_indices(int64_t channels,
                                                             const torch::Device& device);

/// GCC-PHAT of the last axis: y1, y2 [..., L] -> [..., 2 max_tau + 1], n = 2L,
/// cc = irfft(G / (|G| + eps), n) with G = rfft(y1, n) conj(rfft(y2, n)); index i = lag i - max_tau
/// (y2 delayed by d peaks at lag -d). Differentiable.
torch::Tensor gcc_phat(const torch::Tensor& y1, const torch::Tensor& y2, int64_t max_tau,
                       double eps = 1e-3);

/// The SincNet backbone: conv.0 SincConv, conv.1..3 Conv1d(128, 128, k = 11, 9, 7), each with
/// circular 'same' padding, bn.0..3 BatchNorm1d (momentum 0.05), LeakyReLU(0.2) after layers
/// 0..2, none after layer 3.
class SincBackboneImpl : public torch::nn::Module {
 public:
  explicit SincBackboneImpl(const NgccPhatConfig& config = {});

  /// x [N, L] -> [N, 128, L]. If `trace` is given it receives the SincConv output (before BN)
  /// and the output of each of the 4 layers (5 tensors [N, 128, L]).
  torch::Tensor forward(const torch::Tensor& x, std::vector<torch::Tensor>* trace = nullptr);

  SincConv sinc() const { return sinc_; }
  const std::vector<torch::nn::Conv1d>& convs() const { return convs_; }  ///< conv.1..3
  const std::vector<torch::nn::BatchNorm1d>& norms() const { return norms_; }

 private:
  torch::Tensor sinc_layer(const torch::Tensor& x);  // x [N, L] -> [N, 128, L], circular

  NgccPhatConfig config_;
  torch::nn::ModuleList conv_;  // registered as "conv"
  torch::nn::ModuleList bn_;    // registered as "bn"
  SincConv sinc_{nullptr};
  std::vector<torch::nn::Conv1d> convs_;
  std::vector<torch::nn::BatchNorm1d> norms_;
};
TORCH_MODULE(SincBackbone);

/// The reference's NGCCPHAT (head 'classifier'). State_dict keys: backbone.conv.*, backbone.bn.*,
/// mlp.{0,1,2}.{0 conv, 1 bn}.*, final_conv.*.
class NgccPhatImpl : public torch::nn::Module {
 public:
  explicit NgccPhatImpl(const NgccPhatConfig& config = {});

  /// x [N, L] -> features [N, 128, L]. `trace` as SincBackboneImpl::forward.
  torch::Tensor backbone_forward(const torch::Tensor& x,
                                 std::vector<torch::Tensor>* trace = nullptr);
  /// y1, y2 [N, C, L] -> [N, C, 2 max_tau + 1] (gcc_phat with this config's max_tau, eps).
  torch::Tensor gcc(const torch::Tensor& y1, const torch::Tensor& y2) const;
  /// cc [N, 128, T] -> logits [N, T]; `trace` receives the 3 block outputs [N, 128, T].
  torch::Tensor head(const torch::Tensor& cc, std::vector<torch::Tensor>* trace = nullptr);
  /// x1, x2 [B, L] -> logits [B, 2 max_tau + 1] (class c = lag c - max_tau).
  /// Train mode: the backbone runs on x1, then on x2 (two BatchNorm batches, as the reference);
  /// eval mode: once on [x1; x2] (same result, one pass).
  torch::Tensor forward(const torch::Tensor& x1, const torch::Tensor& x2);

  /// Sets the p of the head's Dropout layers (the fixtures' train-mode data use p = 0).
  void set_dropout(double p);
  int64_t max_tau() const { return config_.max_tau; }
  int64_t num_classes() const { return 2 * config_.max_tau + 1; }
  const NgccPhatConfig& config() const { return config_; }

  SincBackbone backbone{nullptr};
  torch::nn::ModuleList mlp{
      nullptr};  ///< mlp.i = Sequential(Conv1d, BatchNorm1d, LeakyReLU, Dropout)
  torch::nn::Conv1d final_conv{nullptr};

 private:
  NgccPhatConfig config_;
  std::vector<torch::nn::Conv1d> head_convs_;       // mlp.i.0
  std::vector<torch::nn::BatchNorm1d> head_norms_;  // mlp.i.1
  std::vector<torch::nn::Dropout> dropouts_;        // mlp.i.3: its p and mode drive fast_dropout
};
TORCH_MODULE(NgccPhat);

/// Channel pairs and class labels of a pre-training batch.
struct PairBatch {
  torch::Tensor pairs;   ///< [B, 2] int64 (m1, m2), channel indices into the audio
  torch::Tensor labels;  ///< [B] int64 = trunc(T[b, m1, m2] + max_tau)
};

/// Outputs of one pre-training forward.
struct PretrainOutput {
  torch::Tensor loss;       ///< () cross-entropy, mean over the batch
  torch::Tensor logits;     ///< [B, 2 max_tau + 1]
  torch::Tensor labels;     ///< [B] int64
  torch::Tensor pred_tdoa;  ///< [B] int64 = argmax - max_tau
};

/// The reference's masked_NGCCPHAT: NGCC-PHAT pre-training on random microphone pairs and the
/// time-delay features wav2pos uses. State_dict keys "ngcc.*".
class MaskedNgccPhatImpl : public torch::nn::Module {
 public:
  explicit MaskedNgccPhatImpl(const NgccPhatConfig& config = {});

  /// audio [B, K, L] -> [B, K (K - 1), 2 max_tau + 1]: the backbone on all B K signals at once
  /// (one BatchNorm batch), for each pair a < b (ascending) the GCC-PHAT of (a, b) followed by its
  /// lag-reversed copy for (b, a), then the head on all pairs at once.
  torch::Tensor pair_features(const torch::Tensor& audio);

  /// Draws (m1, m2) uniformly from 1..num_mics each (they may coincide) per example and builds
  /// the labels from tdoa [B, K, K] (float64, samples).
  PairBatch random_pair_labels(const torch::Tensor& tdoa, std::mt19937_64& rng,
                               int64_t num_mics = 6) const;
  /// Labels for given pairs: trunc(tdoa[b, m1, m2] + max_tau) (conversion toward zero).
  torch::Tensor pair_labels(const torch::Tensor& tdoa, const torch::Tensor& pairs) const;

  /// audio [B, K, L], pairs [B, 2] -> logits [B, 2 max_tau + 1] of (audio[b, m1], audio[b, m2]).
  torch::Tensor forward_pairs(const torch::Tensor& audio, const torch::Tensor& pairs);
  /// Logits, CE loss and predicted TDOA for given pairs (the reference's forward without the
  /// augmentation and the random draw: pass augmented audio and pairs from random_pair_labels).
  PretrainOutput forward(const torch::Tensor& audio, const torch::Tensor& tdoa,
                         const torch::Tensor& pairs);

  /// argmax - max_tau, [B] int64.
  torch::Tensor predict_tdoa(const torch::Tensor& logits) const;

  NgccPhat ngcc{nullptr};
};
TORCH_MODULE(MaskedNgccPhat);

}  // namespace w2p::ngcc
