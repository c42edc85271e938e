#include "wav2pos/model/wav2pos.hpp"

#include <torch/nn/init.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

namespace w2p::wav2pos {
namespace {

std::string shape_text(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(t.size(i));
  }
  return s + "]";
}

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("wav2pos: " + message);
}

torch::nn::LayerNorm layer_norm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps));
}

/// Max over `dim`, keeping it (the values of torch.max, as the reference).
torch::Tensor max_keepdim(const torch::Tensor& x, int64_t dim) {
  return std::get<0>(x.max(dim, /*keepdim=*/true));
}

/// A [B, n, D] view of a [1, 1, D] learned vector, n copies along axis 1.
torch::Tensor tile(const torch::Tensor& token, int64_t batch, int64_t n) {
  return token.expand({batch, n, token.size(2)});
}

torch::Tensor gather_tokens(const torch::Tensor& x, const torch::Tensor& ids) {
  return x.gather(1, ids.unsqueeze(-1).expand({-1, -1, x.size(2)}));
}

torch::Tensor int64_tensor(const std::vector<std::int64_t>& values,
                           const std::vector<int64_t>& shape, const torch::Device& device) {
  return torch::tensor(values, torch::dtype(torch::kInt64)).view(shape).to(device);
}

}  // namespace

// ---- building blocks --------------------------------------------------------------------------

AttentionImpl::AttentionImpl(int64_t dim, int64_t num_heads)
    : num_heads_(num_heads), scale_(1.0 / std::sqrt(static_cast<double>(dim / num_heads))) {
  if (num_heads <= 0 || dim % num_heads != 0) {
    throw std::invalid_argument("wav2pos: embedding " + std::to_string(dim) +
                                " is not divisible into " + std::to_string(num_heads) + " heads");
  }
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim)));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0);
  const int64_t n = x.size(1);
  const int64_t c = x.size(2);
  // [B, N, 3 C] -> [3, B, heads, N, head_dim]
  const torch::Tensor parts =
      qkv->forward(x).reshape({b, n, 3, num_heads_, c / num_heads_}).permute({2, 0, 3, 1, 4});
  const torch::Tensor q = parts[0] * scale_;  // scale = 1/8 for 64-dim heads: exact either way
  const torch::Tensor attn = torch::matmul(q, parts[1].transpose(-2, -1)).softmax(-1);
  return proj->forward(torch::matmul(attn, parts[2]).transpose(1, 2).reshape({b, n, c}));
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return fc2->forward(torch::gelu(fc1->forward(x)));
}

BlockImpl::BlockImpl(int64_t dim, int64_t num_heads, double mlp_ratio, double eps) {
  norm1 = register_module("norm1", layer_norm(dim, eps));
  attn = register_module("attn", Attention(dim, num_heads));
  norm2 = register_module("norm2", layer_norm(dim, eps));
  mlp =
      register_module("mlp", Mlp(dim, static_cast<int64_t>(static_cast<double>(dim) * mlp_ratio)));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = x + attn->forward(norm1->forward(x));
  return y + mlp->forward(norm2->forward(y));
}

PermutedBatchNorm1dImpl::PermutedBatchNorm1dImpl(int64_t features) {
  bn = register_module("bn", torch::nn::BatchNorm1d(features));
}

torch::Tensor PermutedBatchNorm1dImpl::forward(const torch::Tensor& x) {
  // BatchNorm1d of [B, C, N] (the reference permutes) = BatchNorm1d of the B*N rows [B*N, C]:
  // same statistics, no transposed copies.
  return bn->forward(x.reshape({-1, x.size(-1)})).view(x.sizes());
}

PatchEmbedImpl::PatchEmbedImpl(int64_t patch_size, int64_t embed_dim, int64_t decoder_embed_dim) {
  proj = register_module(
      "proj", torch::nn::Conv2d(
                  torch::nn::Conv2dOptions(1, embed_dim, {1, patch_size}).stride({1, patch_size})));
  projT = register_module("projT", torch::nn::Linear(decoder_embed_dim, patch_size));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& patches) {
  // A (1, patch) convolution of stride patch over [B, 1, K, patch] is one matrix product per
  // token: weight [E, 1, 1, patch] viewed as [E, patch].
  const torch::Tensor& w = proj->weight;
  return torch::linear(patches, w.view({w.size(0), w.size(3)}), proj->bias);
}

torch::Tensor PatchEmbedImpl::forward_transposed(const torch::Tensor& tokens) {
  return projT->forward(tokens);
}

// ---- token layout -----------------------------------------------------------------------------

TokenLayout make_token_layout(const torch::Tensor& ids_keep, std::int64_t num_channels) {
  require(ids_keep.dim() == 2 && ids_keep.scalar_type() == torch::kInt64,
          "ids_keep must be int64 [B, n_keep], got " + shape_text(ids_keep));
  const torch::Tensor cpu = ids_keep.to(torch::kCPU).contiguous();
  const auto acc = cpu.accessor<int64_t, 2>();
  std::vector<std::int64_t> ids;
  ids.reserve(static_cast<std::size_t>(cpu.numel()));
  for (int64_t b = 0; b < cpu.size(0); ++b) {
    for (int64_t j = 0; j < cpu.size(1); ++j) ids.push_back(acc[b][j]);
  }
  const MaskPlan plan = make_mask_plan(std::move(ids), cpu.size(0), num_channels);

  const torch::Device device = ids_keep.device();
  const int64_t b = plan.batch;
  TokenLayout layout;
  layout.num_channels = num_channels;
  layout.num_kept_locations = plan.num_kept_locations;
  layout.num_kept_audio = plan.num_kept_audio;
  layout.ids_keep = ids_keep;
  layout.mask = torch::tensor(plan.mask(), torch::dtype(torch::kFloat32))
                    .view({b, plan.num_tokens()})
                    .to(device);
  layout.ids_restore = int64_tensor(plan.ids_restore(), {b, plan.num_tokens()}, device);
  layout.ids_keep_audio = int64_tensor(plan.ids_keep_audio(), {b, plan.num_kept_audio}, device);
  std::vector<std::int64_t> first;
  std::vector<std::int64_t> second;
  for (int64_t i = 0; i < plan.num_kept_audio; ++i) {
    for (int64_t j = i + 1; j < plan.num_kept_audio; ++j) {
      first.insert(first.end(), {i, j});
      second.insert(second.end(), {j, i});
    }
  }
  const auto pairs = static_cast<int64_t>(first.size());
  layout.pair_first = int64_tensor(first, {pairs}, device);
  layout.pair_second = int64_tensor(second, {pairs}, device);
  return layout;
}

torch::Tensor ids_keep_tensor(const MaskPlan& plan) {
  return torch::tensor(plan.ids_keep, torch::dtype(torch::kInt64))
      .view({plan.batch, plan.num_kept()});
}

// ---- the model --------------------------------------------------------------------------------

Wav2PosImpl::Wav2PosImpl(const Wav2PosConfig& config) : config_(config) {
  const Wav2PosConfig& c = config_;
  require(c.patch_size == c.audio_len,
          "only one patch per channel is supported (patch_size must equal audio_len)");
  const int64_t e = c.embed_dim;
  const int64_t d = c.decoder_embed_dim;
  auto token = [](int64_t dim) { return torch::zeros({1, 1, dim}); };
  enc_audio_modality = register_parameter("enc_audio_modality", token(e));
  enc_loc_modality = register_parameter("enc_loc_modality", token(e));
  mask_token_source = register_parameter("mask_token_source", token(d));
  mask_token_mic = register_parameter("mask_token_mic", token(d));
  mask_token_audio = register_parameter("mask_token_audio", token(d));
  dec_audio_modality = register_parameter("dec_audio_modality", token(d));
  dec_loc_modality = register_parameter("dec_loc_modality", token(d));

  ngcc::NgccPhatConfig ngcc_config;
  ngcc_config.max_tau = c.ngcc_max_tau;
  ngcc_config.sig_len = c.audio_len;
  ngcc_config.fs = c.fs;
  ngcc_config.sinc_kernel = c.ngcc_sinc_kernel;
  ngcc_config.num_channels = c.ngcc_num_channels;
  ngcc_config.dropout = c.ngcc_dropout;
  ngcc_config.fft_sinc_conv = c.ngcc_fft_sinc_conv;
  ngcc_config.fft_conv = c.ngcc_fft_conv;
  ngcc = register_module("ngcc", ngcc::MaskedNgccPhat(ngcc_config));

  patch_embed = register_module("patch_embed", PatchEmbed(c.patch_size, e, d));
  encoder_embed_locs = register_module(
      "encoder_embed_locs",
      torch::nn::Sequential(torch::nn::Linear(c.pos_dim, c.loc_embed_hidden),
                            PermutedBatchNorm1d(c.loc_embed_hidden), torch::nn::GELU(),
                            torch::nn::Linear(c.loc_embed_hidden, e), PermutedBatchNorm1d(e)));
  get_decoder_mic_feature =
      register_module("get_decoder_mic_feature",
                      torch::nn::Sequential(torch::nn::Linear(d, d),
                                            layer_norm(d, c.layer_norm_eps), torch::nn::GELU()));
  decoder_fproj = register_module(
      "decoder_fproj",
      torch::nn::Sequential(torch::nn::Linear(d, d), layer_norm(d, c.layer_norm_eps)));
  get_decoder_audio_features = register_module(
      "get_decoder_audio_features",
      torch::nn::Sequential(torch::nn::Linear(d, d), layer_norm(d, c.layer_norm_eps)));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) {
    encoder_blocks_.emplace_back(e, c.num_heads, c.mlp_ratio, c.layer_norm_eps);
    blocks->push_back(encoder_blocks_.back());
  }
  patch_norm = register_module("patch_norm", layer_norm(c.patch_size, c.layer_norm_eps));
  norm = register_module("norm", layer_norm(e, c.layer_norm_eps));
  decoder_embed = register_module("decoder_embed", torch::nn::Linear(e, d));
  decoder_blocks = register_module("decoder_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.decoder_depth; ++i) {
    decoder_blocks_.emplace_back(d, c.decoder_num_heads, c.mlp_ratio, c.layer_norm_eps);
    decoder_blocks->push_back(decoder_blocks_.back());
  }
  decoder_norm = register_module("decoder_norm", layer_norm(d, c.layer_norm_eps));
  decoder_max = register_module("decoder_max", torch::nn::Linear(d, d));
  const int64_t lags = 2 * c.ngcc_max_tau + 1;
  loc_mlp = register_module(
      "loc_mlp", torch::nn::Sequential(torch::nn::Linear(2 * d + lags, c.td_hidden),
                                       PermutedBatchNorm1d(c.td_hidden), torch::nn::GELU(),
                                       torch::nn::Linear(c.td_hidden, c.td_hidden)));
  loc_proj = register_module("loc_proj", torch::nn::Linear(c.td_hidden, d));
  auto head = [&c, d]() {
    return torch::nn::Sequential(torch::nn::Linear(3 * d, c.head_hidden),
                                 PermutedBatchNorm1d(c.head_hidden), torch::nn::GELU(),
                                 torch::nn::Linear(c.head_hidden, c.head_hidden2),
                                 PermutedBatchNorm1d(c.head_hidden2), torch::nn::GELU(),
                                 torch::nn::Linear(c.head_hidden2, c.pos_dim));
  };
  decoder_pred_source = register_module("decoder_pred_source", head());
  decoder_pred_locs = register_module("decoder_pred_locs", head());

  // The reference's initialize_weights: tokens and Linear weights N(0, 0.02), Linear biases 0,
  // LayerNorm 1/0 (already LibTorch's defaults), the rest (Conv2d, BatchNorm) as constructed.
  // The NGCC is left alone: it is loaded pre-trained.
  torch::NoGradGuard no_grad;
  for (auto* t : {&mask_token_mic, &mask_token_audio, &mask_token_source, &enc_audio_modality,
                  &enc_loc_modality, &dec_audio_modality, &dec_loc_modality}) {
    torch::nn::init::normal_(*t, 0.0, 0.02);
  }
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    if (item.key() == "ngcc" || item.key().rfind("ngcc.", 0) == 0) continue;
    if (auto* linear = item.value()->as<torch::nn::LinearImpl>()) {
      torch::nn::init::normal_(linear->weight, 0.0, 0.02);
      if (linear->bias.defined()) torch::nn::init::zeros_(linear->bias);
    }
  }
  if (!c.ngcc_follows_train_mode) ngcc->eval();
}

void Wav2PosImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (!config_.ngcc_follows_train_mode && ngcc) ngcc->eval();
}

torch::Tensor gcc_phat_pair_features(const torch::Tensor& audio, const TokenLayout& layout,
                                     std::int64_t max_tau) {
  torch::NoGradGuard no_grad;
  const torch::Tensor kept =
      audio.gather(1, layout.ids_keep_audio.unsqueeze(-1).expand({-1, -1, audio.size(2)}));
  const auto [first, second] = ngcc::channel_pair_indices(kept.size(1), audio.device());
  const auto cc =
      ngcc::gcc_phat(kept.index_select(1, first), kept.index_select(1, second), max_tau);
  return torch::stack({cc, cc.flip(-1)}, 2).reshape({audio.size(0), -1, cc.size(-1)});
}

torch::Tensor Wav2PosImpl::ngcc_features(const torch::Tensor& audio, const TokenLayout& layout) {
  // The NGCC is frozen: no graph, no saved activations (the bulk of a training step's memory).
  torch::NoGradGuard no_grad;
  const torch::Tensor kept =
      audio.gather(1, layout.ids_keep_audio.unsqueeze(-1).expand({-1, -1, audio.size(2)}));
  return ngcc->pair_features(kept);
}

Wav2PosOutput Wav2PosImpl::forward(const torch::Tensor& audio, const torch::Tensor& locations,
                                   const torch::Tensor& ids_keep, Wav2PosTrace* trace) {
  require(audio.dim() == 3, "audio must be [B, K, L], got " + shape_text(audio));
  const TokenLayout layout = make_token_layout(ids_keep, audio.size(1));
  return run(audio, locations, layout, nullptr, trace);
}

Wav2PosOutput Wav2PosImpl::forward_with_features(const torch::Tensor& audio,
                                                 const torch::Tensor& locations,
                                                 const torch::Tensor& ids_keep,
                                                 const torch::Tensor& ngcc_features,
                                                 Wav2PosTrace* trace) {
  require(audio.dim() == 3, "audio must be [B, K, L], got " + shape_text(audio));
  const TokenLayout layout = make_token_layout(ids_keep, audio.size(1));
  return run(audio, locations, layout, &ngcc_features, trace);
}

Wav2PosOutput Wav2PosImpl::run(const torch::Tensor& audio, const torch::Tensor& locations,
                               const TokenLayout& layout, const torch::Tensor* given_features,
                               Wav2PosTrace* trace) {
  const int64_t b = audio.size(0);
  const int64_t k = audio.size(1);
  const int64_t d = config_.decoder_embed_dim;
  require(
      audio.size(2) == config_.patch_size,
      "audio must be [B, K, " + std::to_string(config_.patch_size) + "], got " + shape_text(audio));
  require(locations.dim() == 3 && locations.size(0) == b && locations.size(1) == k &&
              locations.size(2) == config_.pos_dim,
          "locations must be [" + std::to_string(b) + ", " + std::to_string(k) + ", " +
              std::to_string(config_.pos_dim) + "], got " + shape_text(locations));
  require(layout.ids_keep.size(0) == b, "ids_keep has " + std::to_string(layout.ids_keep.size(0)) +
                                            " rows for a batch of " + std::to_string(b));

  // ---- encoder (spec §4.1)
  Wav2PosOutput out;
  out.mask = layout.mask;
  out.enc_mu = audio.mean(-1, /*keepdim=*/true);
  out.enc_sigma = audio.std(-1, /*unbiased=*/true, /*keepdim=*/true);
  const torch::Tensor patch_tokens = patch_embed->forward((audio - out.enc_mu) / out.enc_sigma);
  const torch::Tensor loc_tokens = encoder_embed_locs->forward(locations);
  torch::Tensor x = gather_tokens(
      torch::cat({loc_tokens + enc_loc_modality, patch_tokens + enc_audio_modality}, 1),
      layout.ids_keep);
  if (trace != nullptr) {
    trace->patch_embed = patch_tokens;
    trace->loc_embed = loc_tokens;
    trace->encoder_in = x;
  }
  for (auto& block : encoder_blocks_) x = block->forward(x);
  x = norm->forward(x);

  // ---- time-delay features of the kept audio channels (frozen NGCC)
  const torch::Tensor features =
      given_features != nullptr ? *given_features : ngcc_features(audio, layout);
  const int64_t pairs = layout.pair_first.size(0);
  require(features.dim() == 3 && features.size(0) == b && features.size(1) == pairs &&
              features.size(2) == 2 * config_.ngcc_max_tau + 1,
          "NGCC features must be [" + std::to_string(b) + ", " + std::to_string(pairs) + ", " +
              std::to_string(2 * config_.ngcc_max_tau + 1) + "], got " + shape_text(features));

  // ---- decoder (spec §4.2)
  const torch::Tensor embedded = decoder_embed->forward(x);
  // Mask tokens in the order the masked ids are listed: source location, masked microphone
  // locations, masked audio; ids_restore puts kept and mask tokens in token order.
  const int64_t masked_locs = k - layout.num_kept_locations;  // >= 1: the source
  const int64_t masked_audio = k - layout.num_kept_audio;
  const torch::Tensor mask_tokens =
      torch::cat({mask_token_source, tile(mask_token_mic, 1, masked_locs - 1),
                  tile(mask_token_audio, 1, masked_audio)},
                 1)
          .expand({b, -1, -1});
  const torch::Tensor full =
      gather_tokens(torch::cat({embedded, mask_tokens}, 1), layout.ids_restore);
  const torch::Tensor loc_part = full.slice(1, 0, k);
  const torch::Tensor audio_part = full.slice(1, k, 2 * k);
  // Pair-wise positional encoding: location token i gets a feature of audio token i and vice
  // versa (the max over a channel's patches is the identity with one patch per channel).
  const torch::Tensor f_mic = decoder_fproj->forward(get_decoder_mic_feature->forward(audio_part));
  const torch::Tensor f_audio = get_decoder_audio_features->forward(loc_part);
  torch::Tensor y = torch::cat(
      {loc_part + f_mic + dec_loc_modality, audio_part + f_audio + dec_audio_modality}, 1);
  if (trace != nullptr) {
    trace->latent = x;
    trace->ngcc_features = features;
    trace->decoder_embed = embedded;
    trace->decoder_in = y;
  }
  for (auto& block : decoder_blocks_) y = block->forward(y);
  y = decoder_norm->forward(y);
  const torch::Tensor decoded_locs = y.slice(1, 0, k);
  const torch::Tensor decoded_audio = y.slice(1, k, 2 * k);

  // Global feature: max over the kept tokens of decoder_max(embedding).
  const torch::Tensor global = max_keepdim(decoder_max->forward(embedded), 1);
  // Time-delay feature: decoded location tokens of the kept-audio channels, in ordered pairs,
  // with the NGCC feature of each pair; MLP, max over pairs, projection.
  const torch::Tensor kept_locs = gather_tokens(decoded_locs, layout.ids_keep_audio);
  const torch::Tensor pair_in =
      torch::cat({kept_locs.index_select(1, layout.pair_first),
                  kept_locs.index_select(1, layout.pair_second), features.to(y.dtype())},
                 2);
  const torch::Tensor td_pooled = max_keepdim(loc_mlp->forward(pair_in), 1);
  const torch::Tensor td_feature = loc_proj->forward(td_pooled);

  const torch::Tensor head_in =
      torch::cat({decoded_locs, global.expand({b, k, d}), td_feature.expand({b, k, d})}, 2);
  const torch::Tensor source = decoder_pred_source->forward(head_in.slice(1, 0, 1));
  const torch::Tensor mics = decoder_pred_locs->forward(head_in.slice(1, 1, k));
  out.pred_locs = torch::cat({source, mics}, 1);
  out.pred_audio = patch_embed->forward_transposed(decoded_audio);
  if (trace != nullptr) {
    trace->decoder_out = y;
    trace->global_feature = global;
    trace->td_pooled = td_pooled;
    trace->td_feature = td_feature;
  }
  return out;
}

}  // namespace w2p::wav2pos
