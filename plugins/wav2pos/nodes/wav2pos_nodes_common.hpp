// Shared by the wav2pos plugin's nodes: the model configuration from node options, the
// device choice, the position normaliser, the input preparation and weight loading (spec §2, §4).
#pragma once

#include <torch/cuda.h>
#include <torch/types.h>
#include <w2p/node.hpp>
#include <w2p/options.hpp>
#include <w2p/torch_bridge.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ngcc/nodes/ngcc_nodes_common.hpp"
#include "torch_common/checkpoint.hpp"
#include "torch_common/state_dict.hpp"
#include "torch_common/weights_io.hpp"
#include "wav2pos/model/wav2pos.hpp"

namespace w2p::wav2pos {

/// Options describing the model (defaults = the reference's cfg.py, spec §4) and the data fields.
inline std::vector<OptionSpec> model_options() {
  return {
      OptionSpec::integer("audio_len", 2048).range(8, 1e7).describe("samples per channel crop"),
      OptionSpec::integer("embed_dim", 256).range(1, 1e5).describe("encoder width"),
      OptionSpec::integer("depth", 4).range(1, 1000).describe("encoder blocks"),
      OptionSpec::integer("num_heads", 4).range(1, 1000).describe("encoder attention heads"),
      OptionSpec::integer("decoder_embed_dim", 256).range(1, 1e5).describe("decoder width"),
      OptionSpec::integer("decoder_depth", 4).range(1, 1000).describe("decoder blocks"),
      OptionSpec::integer("decoder_num_heads", 4).range(1, 1000).describe("decoder heads"),
      OptionSpec::integer("sample_rate", 16000).range(2, 1e7).describe("Hz"),
      OptionSpec::integer("ngcc_max_tau", 314)
          .range(1, 1e6)
          .describe("lags of the internal NGCC (QUIRK spec §4.2: 314, not the pre-training's 342)"),
      OptionSpec::integer("ngcc_num_channels", 128)
          .range(1, 4096)
          .describe("NGCC feature channels; must match the pre-trained NGCC"),
      OptionSpec::integer("ngcc_sinc_kernel", 1023)
          .range(3, 1e5)
          .describe("NGCC SincConv taps; must match the pre-trained NGCC"),
      OptionSpec::number("ngcc_dropout", 0.5).range(0, 1).describe("NGCC head dropout p"),
      OptionSpec::boolean("ngcc_follows_train_mode", true)
          .describe(
              "QUIRK(spec §4.2): the frozen NGCC follows train/eval mode (batch statistics and "
              "dropout in training); false keeps it in eval mode"),
      OptionSpec::boolean("fft_sinc_conv", true)
          .describe("NGCC SincConv as an FFT product (same function, faster); false = direct"),
      OptionSpec::boolean("fft_conv", true)
          .describe("NGCC 128->128 convolutions as FFT products (same function, faster); "
                    "false = direct"),
      OptionSpec::choice("time_delay", {"ngcc", "gcc_phat"}, "ngcc")
          .describe(
              "time-delay feature of the kept audio pairs: the frozen pre-trained NGCC-PHAT (the "
              "reference) or plain GCC-PHAT over the same lags (no pre-training needed)"),
      OptionSpec::choice("device", {"cpu", "cuda", "auto"}, "cpu")
          .describe("where the model runs; auto = cuda when LibTorch has a GPU, else cpu"),
      OptionSpec::string("audio_field", "audio").describe("f32 [B, K, L], channel 0 = source"),
      OptionSpec::string("source_field", "source_pos").describe("f64 [B, 3] metres"),
      OptionSpec::string("mic_field", "mic_pos").describe("f64 [B, K-1, 3] metres"),
  };
}

/// The batched scene fields the trainer and the evaluator read (names from the *_field
/// options): audio [B, K, L], source [B, 3], microphones [B, M, 3]; `extra` appended.
inline Schema scene_batch_schema(const Options& o, FieldSpec extra) {
  return Schema{
      {{o.get_string("audio_field"), spec(DType::kF32, {"B", "K", "L"}),
        "signals, channel 0 = source"},
       {o.get_string("source_field"), spec(DType::kF64, {"B", 3}), "source position, metres"},
       {o.get_string("mic_field"), spec(DType::kF64, {"B", "M", 3}),
        "microphone positions, metres"},
       std::move(extra)}};
}

/// roomsim.position_stats' output: the position normaliser's statistics.
inline Schema position_stats_schema() {
  return Schema{{{"mean", spec(DType::kF64, {3}), "training sources' mean, metres"},
                 {"std", spec(DType::kF64, {3}), "training sources' std, metres"}}};
}

inline Wav2PosConfig model_config(const Options& o) {
  if (o.get_int("ngcc_sinc_kernel") % 2 == 0) {
    throw Error(ErrorKind::kConfig, "option 'ngcc_sinc_kernel': must be odd, got " +
                                        std::to_string(o.get_int("ngcc_sinc_kernel")))
        .note("expected an odd number of taps, e.g. 1023");
  }
  for (const auto& [dim, heads] :
       {std::pair{"embed_dim", "num_heads"}, std::pair{"decoder_embed_dim", "decoder_num_heads"}}) {
    if (o.get_int(dim) % o.get_int(heads) != 0) {
      throw Error(ErrorKind::kConfig,
                  std::string("option '") + dim + "' = " + std::to_string(o.get_int(dim)) +
                      " is not divisible by '" + heads + "' = " + std::to_string(o.get_int(heads)))
          .note("expected a width that splits evenly over the attention heads");
    }
  }
  Wav2PosConfig c;
  c.audio_len = o.get_int("audio_len");
  c.patch_size = c.audio_len;
  c.embed_dim = o.get_int("embed_dim");
  c.depth = o.get_int("depth");
  c.num_heads = o.get_int("num_heads");
  c.decoder_embed_dim = o.get_int("decoder_embed_dim");
  c.decoder_depth = o.get_int("decoder_depth");
  c.decoder_num_heads = o.get_int("decoder_num_heads");
  c.fs = o.get_int("sample_rate");
  c.ngcc_max_tau = o.get_int("ngcc_max_tau");
  c.ngcc_num_channels = o.get_int("ngcc_num_channels");
  c.ngcc_sinc_kernel = o.get_int("ngcc_sinc_kernel");
  c.ngcc_dropout = o.get_float("ngcc_dropout");
  c.ngcc_follows_train_mode = o.get_bool("ngcc_follows_train_mode");
  c.ngcc_fft_sinc_conv = o.get_bool("fft_sinc_conv");
  c.ngcc_fft_conv = o.get_bool("fft_conv");
  return c;
}

/// The model's forward with the time-delay feature of option `time_delay`.
inline Wav2PosOutput run_model(Wav2PosImpl& model, bool gcc_phat, const torch::Tensor& audio,
                               const torch::Tensor& locations, const torch::Tensor& ids_keep) {
  if (!gcc_phat) return model.forward(audio, locations, ids_keep);
  const TokenLayout layout = make_token_layout(ids_keep, audio.size(1));
  return model.forward_with_features(
      audio, locations, ids_keep,
      gcc_phat_pair_features(audio, layout, model.config().ngcc_max_tau));
}

/// The device of option `device`; "cuda" without a CUDA LibTorch is a configuration error.
inline torch::Device model_device(const Options& o) {
  const std::string d = o.get_string("device");
  const bool cuda = torch::cuda::is_available();
  if (d == "cuda" && !cuda) {
    throw Error(ErrorKind::kConfig, "option 'device': cuda requested but this LibTorch has no GPU")
        .note("expected device: cpu or auto, or a CUDA LibTorch (configure with Torch_DIR)");
  }
  return (d == "cuda" || (d == "auto" && cuda)) ? torch::Device(torch::kCUDA)
                                                : torch::Device(torch::kCPU);
}

/// The training set's source position mean/std (roomsim.position_stats: fields mean, std f64[3]).
struct PositionNormaliser {
  torch::Tensor mu, sigma;  ///< [3] float64, CPU

  static PositionNormaliser from_side(const std::vector<Item>& items) {
    if (items.empty()) {
      throw Error(ErrorKind::kData, "side input 'stats' is empty")
          .note("expected one item with fields mean, std (f64[3]) from roomsim.position_stats");
    }
    PositionNormaliser n;
    n.mu = to_torch(items.back().get("mean")).to(torch::kFloat64).clone();
    n.sigma = to_torch(items.back().get("std")).to(torch::kFloat64).clone();
    if (!(n.sigma > 0).all().item<bool>()) {
      throw Error(ErrorKind::kData, "side input 'stats': std must be positive on every axis")
          .note("expected the per-axis std of the training sources (a data set of >= 2 items)");
    }
    return n;
  }

  /// source [B, 3] and mics [B, M, 3] (metres, float64) -> [B, 1 + M, 3] float32 normalised.
  torch::Tensor normalise(const torch::Tensor& source, const torch::Tensor& mics) const {
    const auto all =
        torch::cat({source.to(torch::kFloat64).unsqueeze(1), mics.to(torch::kFloat64)}, 1);
    return ((all - mu) / sigma).to(torch::kFloat32);
  }

  /// [B, N, 3] normalised -> metres, float64.
  torch::Tensor metres(const torch::Tensor& normalised) const {
    return normalised.to(torch::kCPU, torch::kFloat64) * sigma + mu;
  }
};

/// Loads pre-trained NGCC-PHAT weights (ngcc.trainer's <prefix>_weights.pt: keys 'ngcc.*', or a
/// whole wav2pos state_dict: keys 'ngcc.ngcc.*') into the model's frozen NGCC and freezes it.
inline void load_pretrained_ngcc(Wav2PosImpl& model, const std::string& path) {
  namespace tc = w2p::torch_common;
  auto values = tc::to_map(tc::read_torch_state_dict(path));
  if (values.count("ngcc.ngcc.backbone.conv.0.low_hz_") != 0)
    values = tc::strip_prefix(values, "ngcc.");
  try {
    tc::load_state_dict(*model.ngcc, values, /*strict=*/true);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kConfig, "NGCC weights '" + path + "' do not fit: " + e.what())
        .note(
            "expected the checkpoint of an NGCC-PHAT with ngcc_num_channels / ngcc_sinc_kernel "
            "as this node's options (max_tau may differ)");
  }
  for (auto& p : model.ngcc->parameters()) p.set_requires_grad(false);
}

/// Loads trained wav2pos weights: a torch.save state_dict (the trainer's <prefix>_weights.pt,
/// or the reference's) or one of the trainer's epoch checkpoints (<prefix>_epochNNN.pt).
inline void load_wav2pos_weights(Wav2PosImpl& model, const std::string& path) {
  namespace tc = w2p::torch_common;
  tc::StateDict state;
  bool state_dict = true;
  try {
    state = tc::read_torch_state_dict(path);
  } catch (const std::exception&) {
    state_dict = false;  // not a state_dict file: maybe a checkpoint archive
  }
  const char* expected = "expected weights of the architecture in this node's options";
  if (state_dict) {
    try {
      tc::load_state_dict(model, tc::to_map(state), /*strict=*/true);
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kConfig, "wav2pos weights '" + path + "' do not fit: " + e.what())
          .note(expected);
    }
    return;
  }
  try {
    (void)tc::load_checkpoint(path, model, nullptr);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kConfig, "cannot load wav2pos weights '" + path + "': " + e.what())
        .note("expected a torch.save state_dict or a wav2pos.trainer epoch checkpoint")
        .note(expected);
  }
}

/// Checks a batch: audio [B, K, L >= audio_len] with K >= 3, source [B, 3], mics [B, K-1, 3].
inline void check_batch(const NodeContext& ctx, const Item& item, const torch::Tensor& audio,
                        const torch::Tensor& source, const torch::Tensor& mics,
                        std::int64_t audio_len) {
  const bool ok = audio.dim() == 3 && audio.size(1) >= 3 && source.dim() == 2 &&
                  source.size(0) == audio.size(0) && source.size(1) == 3 && mics.dim() == 3 &&
                  mics.size(0) == audio.size(0) && mics.size(1) == audio.size(1) - 1 &&
                  mics.size(2) == 3;
  if (!ok) {
    throw Error(ErrorKind::kData, describe_item(ctx, &item) + ": audio " +
                                      std::string(c10::str(audio.sizes())) + ", source " +
                                      std::string(c10::str(source.sizes())) + " and microphones " +
                                      std::string(c10::str(mics.sizes())) + " do not match")
        .note(
            "expected audio [B, K, L] (K >= 3), source positions [B, 3], microphones [B, K-1, 3]");
  }
  if (audio.size(2) < audio_len) {
    throw Error(ErrorKind::kData, describe_item(ctx, &item) + ": audio has " +
                                      std::to_string(audio.size(2)) +
                                      " samples, fewer than audio_len " + std::to_string(audio_len))
        .note("expected at least audio_len samples per channel");
  }
}

/// Throws naming the item when a tensor holds NaN or infinity.
inline void check_finite(const NodeContext& ctx, const Item& item, const torch::Tensor& t,
                         const std::string& field) {
  if (!torch::isfinite(t).all().item<bool>()) {
    throw Error(ErrorKind::kData,
                describe_item(ctx, &item) + ": field '" + field + "' holds NaN or infinity")
        .note("expected finite values; check the data set that produced this batch");
  }
}

}  // namespace w2p::wav2pos
