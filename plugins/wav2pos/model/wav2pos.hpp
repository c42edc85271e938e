// wav2pos: masked autoencoder over microphone/source locations and audio (spec §4).
//
// Tokens: for K channels (channel 0 = the source, 1..K-1 = microphones) the sequence has 2K
// tokens, K location tokens then K audio tokens (one 2048-sample patch per channel), each in
// channel order. The encoder sees the kept tokens (`ids_keep`, see masking.hpp); the decoder
// rebuilds all 2K tokens with mask tokens and predicts every location and every audio patch.
// The model is a set-to-set regressor: no parameter depends on K, so a model trained with 7
// channels runs with any K >= 3 (the mask must keep >= 2 audio channels).
//
// Submodules are public members named as the reference's modules, so the state_dict keys equal
// the reference's (`shared/reference/param-names.txt`, wav2pos section), e.g.
// `blocks.0.attn.qkv.weight`, `encoder_embed_locs.1.bn.running_mean`,
// `ngcc.ngcc.backbone.conv.0.low_hz_`.
//
// Threading: a module instance is not safe for concurrent forwards in train mode (BatchNorm
// running statistics); eval-mode forwards from several threads on one instance are fine.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "ngcc/model/ngcc_phat.hpp"
#include "wav2pos/model/masking.hpp"

namespace w2p::wav2pos {

/// Hyper-parameters (defaults = the reference's cfg.py, spec §4).
struct Wav2PosConfig {
  std::int64_t audio_len = 2048;   ///< samples per channel
  std::int64_t patch_size = 2048;  ///< must equal audio_len: one audio token per channel
  /// Channels of the training data (source + microphones): the default for masks and benchmarks.
  /// No parameter depends on it; forwards accept any number of channels.
  std::int64_t num_channels = 7;
  std::int64_t embed_dim = 256;
  std::int64_t depth = 4;
  std::int64_t num_heads = 4;
  std::int64_t decoder_embed_dim = 256;
  std::int64_t decoder_depth = 4;
  std::int64_t decoder_num_heads = 4;
  double mlp_ratio = 4.0;
  std::int64_t pos_dim = 3;            ///< coordinates per location
  std::int64_t loc_embed_hidden = 64;  ///< encoder_embed_locs: Linear(3, 64) ...
  std::int64_t td_hidden = 512;        ///< loc_mlp width
  std::int64_t head_hidden = 512;      ///< location heads: 768 -> 512 -> 256 -> 3
  std::int64_t head_hidden2 = 256;
  double layer_norm_eps = 1e-5;  ///< nn.LayerNorm default
  /// QUIRK(spec §4.2): the internal NGCC-PHAT is built with its constructor default max_tau 314
  /// (629 lags), not the 342 of the pre-training stage.
  std::int64_t ngcc_max_tau = 314;
  std::int64_t fs = 16000;
  std::int64_t ngcc_sinc_kernel = 1023;
  /// NGCC feature channels (SincConv filters; 128 in the reference). Smaller values give a
  /// cheaper model for quick runs; the pre-trained NGCC must have the same number.
  std::int64_t ngcc_num_channels = 128;
  /// NGCC head dropout. QUIRK(spec §4.2): active during wav2pos training when the NGCC follows
  /// the train mode (the reference's value is 0.5).
  double ngcc_dropout = 0.5;
  /// QUIRK(spec §4.2): the frozen NGCC follows the parent's train/eval mode, so in training its
  /// BatchNorms use batch statistics and update their running statistics, and its dropout is
  /// active. false keeps the NGCC in eval mode whatever the parent's mode (the fix).
  bool ngcc_follows_train_mode = true;
  /// The NGCC's SincConv as an FFT product (see ngcc::NgccPhatConfig::fft_sinc_conv): the same
  /// function to ~1e-6 relative, far cheaper; false = the reference's direct convolution.
  bool ngcc_fft_sinc_conv = true;
  /// The NGCC's 128->128 convolutions as FFT products (ngcc::NgccPhatConfig::fft_conv).
  bool ngcc_fft_conv = true;
};

/// timm `Attention`: multi-head self-attention with a fused qkv projection (with bias).
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(std::int64_t dim, std::int64_t num_heads);
  /// x [B, N, dim] -> [B, N, dim]
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear qkv{nullptr};
  torch::nn::Linear proj{nullptr};

 private:
  std::int64_t num_heads_;
  double scale_;
};
TORCH_MODULE(Attention);

/// timm `Mlp`: fc1, GELU (exact), fc2.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(std::int64_t dim, std::int64_t hidden);
  /// x [..., dim] -> [..., dim]
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};
};
TORCH_MODULE(Mlp);

/// timm `Block`: pre-norm transformer block, x + attn(norm1(x)), then x + mlp(norm2(x)).
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(std::int64_t dim, std::int64_t num_heads, double mlp_ratio, double eps);
  /// x [B, N, dim] -> [B, N, dim]
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::LayerNorm norm1{nullptr};
  Attention attn{nullptr};
  torch::nn::LayerNorm norm2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(Block);

/// The reference's PBatchNorm1d: BatchNorm1d over the feature axis of a [B, N, C] tensor, the
/// statistics taken over all B*N rows. The wrapper is why keys read `<seq>.<i>.bn.<name>`.
class PermutedBatchNorm1dImpl : public torch::nn::Module {
 public:
  explicit PermutedBatchNorm1dImpl(std::int64_t features);
  /// x [B, N, C] -> [B, N, C]
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::BatchNorm1d bn{nullptr};
};
TORCH_MODULE(PermutedBatchNorm1d);

/// The reference's PatchEmbedAudio with one patch per channel: `proj` embeds a patch (a
/// Conv2d (1, patch) of stride patch, stored as such; computed as the equivalent matrix
/// product), `projT` maps a decoded audio token back to a patch.
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(std::int64_t patch_size, std::int64_t embed_dim, std::int64_t decoder_embed_dim);
  /// patches [B, K, patch] -> [B, K, embed_dim]
  torch::Tensor forward(const torch::Tensor& patches);
  /// tokens [B, K, decoder_embed_dim] -> [B, K, patch]. The reference squeezes here (batch 1
  /// gives [K, patch]); we keep the batch axis (spec §6).
  torch::Tensor forward_transposed(const torch::Tensor& tokens);

  torch::nn::Conv2d proj{nullptr};
  torch::nn::Linear projT{nullptr};  // NOLINT(readability-identifier-naming): checkpoint key
};
TORCH_MODULE(PatchEmbed);

/// What one forward returns.
struct Wav2PosOutput {
  torch::Tensor pred_locs;   ///< [B, K, 3] normalised positions (row 0 source, 1.. mics)
  torch::Tensor pred_audio;  ///< [B, K, patch] patches in the per-patch standardised domain
  torch::Tensor mask;        ///< [B, 2K] float32, 1 = masked token
  torch::Tensor enc_mu;      ///< [B, K, 1] per-patch mean of the encoder input
  torch::Tensor enc_sigma;   ///< [B, K, 1] per-patch unbiased std of the encoder input
};

/// Intermediate activations (for tests and diagnostics), filled when a forward is given one.
struct Wav2PosTrace {
  torch::Tensor patch_embed;     ///< [B, K, E] audio token embeddings, channel order
  torch::Tensor loc_embed;       ///< [B, K, E] encoder_embed_locs output, channel order
  torch::Tensor encoder_in;      ///< [B, n_keep, E] kept tokens + modality entering block 0
  torch::Tensor latent;          ///< [B, n_keep, E] encoder output after norm
  torch::Tensor ngcc_features;   ///< [B, P, 2 max_tau + 1] time-delay features, P = Ka (Ka - 1)
  torch::Tensor decoder_embed;   ///< [B, n_keep, D] decoder_embed(latent)
  torch::Tensor decoder_in;      ///< [B, 2K, D] tokens entering decoder block 0
  torch::Tensor decoder_out;     ///< [B, 2K, D] decoder output after decoder_norm
  torch::Tensor global_feature;  ///< [B, 1, D] max over kept tokens of decoder_max(...)
  torch::Tensor td_pooled;       ///< [B, 1, td_hidden] max over pairs of loc_mlp(...)
  torch::Tensor td_feature;      ///< [B, 1, D] loc_proj(td_pooled)
};

/// Token layout derived from `ids_keep` (see masking.hpp), as tensors on the model's device.
struct TokenLayout {
  std::int64_t num_channels = 0;        ///< K
  std::int64_t num_kept_locations = 0;  ///< per sample
  std::int64_t num_kept_audio = 0;      ///< Ka, per sample
  torch::Tensor ids_keep;               ///< [B, n_keep] int64
  torch::Tensor mask;                   ///< [B, 2K] float32, 1 = masked
  torch::Tensor ids_restore;            ///< [B, 2K] int64: token t = concat(kept, masked)[t]
  torch::Tensor ids_keep_audio;         ///< [B, Ka] int64 kept audio channels
  torch::Tensor pair_first;             ///< [P] int64 positions into ids_keep_audio
  torch::Tensor pair_second;            ///< [P] int64; pairs (a, b), (b, a) for a < b
};

/// Checks `ids_keep` [B, n_keep] (int64, any device) and derives the layout; throws
/// std::invalid_argument as make_mask_plan.
TokenLayout make_token_layout(const torch::Tensor& ids_keep, std::int64_t num_channels);

/// Plain GCC-PHAT in place of the NGCC-PHAT features (a swap by option, not the reference): for
/// the kept audio channels of `layout`, per pair a < b the GCC-PHAT of (a, b) then its
/// lag-reversed copy for (b, a), as the NGCC's pair order. audio [B, K, L] ->
/// [B, Ka (Ka - 1), 2 max_tau + 1]. No gradient.
torch::Tensor gcc_phat_pair_features(const torch::Tensor& audio, const TokenLayout& layout,
                                     std::int64_t max_tau);

/// `ids_keep` of a mask plan as an int64 tensor [B, n_keep].
torch::Tensor ids_keep_tensor(const MaskPlan& plan);

/// The wav2pos model (reference class `wav2pos` with use_ngcc='pre-trained').
class Wav2PosImpl : public torch::nn::Module {
 public:
  explicit Wav2PosImpl(const Wav2PosConfig& config = {});

  /// Full forward. audio [B, K, audio_len] float32 (already standardised per channel; in
  /// training the noisy input: the encoder and the NGCC see it, the loss target is the clean
  /// signal, see losses.hpp); locations [B, K, 3] normalised (row 0 = source: its value is
  /// never seen, the token is masked); ids_keep [B, n_keep] int64 ascending. The NGCC features
  /// are computed by the frozen internal NGCC without gradient. `trace`, when given, receives
  /// the intermediates.
  Wav2PosOutput forward(const torch::Tensor& audio, const torch::Tensor& locations,
                        const torch::Tensor& ids_keep, Wav2PosTrace* trace = nullptr);

  /// As forward, with precomputed NGCC features [B, Ka (Ka - 1), 2 max_tau + 1] of the kept
  /// audio channels (pair order: for a < b over kept channels, (a, b) then (b, a)).
  Wav2PosOutput forward_with_features(const torch::Tensor& audio, const torch::Tensor& locations,
                                      const torch::Tensor& ids_keep,
                                      const torch::Tensor& ngcc_features,
                                      Wav2PosTrace* trace = nullptr);

  /// NGCC features of the kept audio channels: audio [B, K, L] -> [B, Ka (Ka - 1), 629],
  /// computed under torch::NoGradGuard (the NGCC is frozen).
  torch::Tensor ngcc_features(const torch::Tensor& audio, const TokenLayout& layout);

  /// Sets train/eval mode; with ngcc_follows_train_mode = false the NGCC stays in eval mode.
  void train(bool on = true) override;

  const Wav2PosConfig& config() const { return config_; }

  // Registered in the reference's order (parameters first, then modules).
  torch::Tensor enc_audio_modality;  ///< [1, 1, E]
  torch::Tensor enc_loc_modality;    ///< [1, 1, E]
  torch::Tensor mask_token_source;   ///< [1, 1, D]
  torch::Tensor mask_token_mic;      ///< [1, 1, D]
  torch::Tensor mask_token_audio;    ///< [1, 1, D]
  torch::Tensor dec_audio_modality;  ///< [1, 1, D]
  torch::Tensor dec_loc_modality;    ///< [1, 1, D]

  ngcc::MaskedNgccPhat ngcc{nullptr};
  PatchEmbed patch_embed{nullptr};
  torch::nn::Sequential encoder_embed_locs{nullptr};          ///< Linear, PBN, GELU, Linear, PBN
  torch::nn::Sequential get_decoder_mic_feature{nullptr};     ///< Linear, LayerNorm, GELU
  torch::nn::Sequential decoder_fproj{nullptr};               ///< Linear, LayerNorm
  torch::nn::Sequential get_decoder_audio_features{nullptr};  ///< Linear, LayerNorm
  torch::nn::ModuleList blocks{nullptr};
  /// QUIRK(spec §4.1): registered by the reference (LayerNorm(patch_size)) but never used;
  /// kept so that checkpoints match key for key.
  torch::nn::LayerNorm patch_norm{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear decoder_embed{nullptr};
  torch::nn::ModuleList decoder_blocks{nullptr};
  torch::nn::LayerNorm decoder_norm{nullptr};
  torch::nn::Linear decoder_max{nullptr};
  torch::nn::Sequential loc_mlp{nullptr};  ///< Linear(2D + 2 max_tau + 1, 512), PBN, GELU, Linear
  torch::nn::Linear loc_proj{nullptr};
  torch::nn::Sequential decoder_pred_source{nullptr};  ///< 3D -> 512 -> 256 -> 3 with PBN, GELU
  torch::nn::Sequential decoder_pred_locs{nullptr};

 private:
  Wav2PosOutput run(const torch::Tensor& audio, const torch::Tensor& locations,
                    const TokenLayout& layout, const torch::Tensor* given_features,
                    Wav2PosTrace* trace);

  Wav2PosConfig config_;
  std::vector<Block> encoder_blocks_;  // typed views of `blocks`
  std::vector<Block> decoder_blocks_;  // typed views of `decoder_blocks`
};
TORCH_MODULE(Wav2Pos);

}  // namespace w2p::wav2pos
