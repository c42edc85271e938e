// Shared by the ngcc plugin's nodes: the model configuration from node options, and the
// reference's input preparation (crop, per-channel standardisation; spec §2).
#pragma once

#include <torch/types.h>
#include <w2p/node.hpp>
#include <w2p/options.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "ngcc/model/ngcc_phat.hpp"

namespace w2p::ngcc {

/// Options describing the NGCC-PHAT architecture (defaults = the reference's pre-training).
inline std::vector<OptionSpec> model_options() {
  return {
      OptionSpec::integer("max_tau", 342)
          .range(1, 1e6)
          .describe("lags -max_tau..max_tau (2 max_tau + 1 classes)"),
      OptionSpec::integer("sig_len", 2048)
          .range(8, 1e7)
          .describe("samples per crop fed to the model (the reference's audio_len)"),
      OptionSpec::integer("num_channels", 128)
          .range(1, 4096)
          .describe("SincConv filters = feature channels (128 in the reference)"),
      OptionSpec::integer("sinc_kernel", 1023)
          .range(3, 1e5)
          .describe("SincConv taps, odd (1023 in the reference)"),
      OptionSpec::integer("sample_rate", 16000).range(2, 1e7).describe("Hz"),
      OptionSpec::number("dropout", 0.5).range(0, 1).describe("p of the head's Dropout layers"),
      OptionSpec::boolean("fft_sinc_conv", true)
          .describe("SincConv as an FFT product (same function, faster); false = direct"),
      OptionSpec::boolean("fft_conv", true)
          .describe("128->128 convolutions as FFT products (same function, faster); false = "
                    "direct"),
  };
}

inline void check_model_options(const Options& o) {
  if (o.get_int("sinc_kernel") % 2 == 0) {
    throw Error(ErrorKind::kConfig, "option 'sinc_kernel': must be odd, got " +
                                        std::to_string(o.get_int("sinc_kernel")))
        .note("expected an odd number of taps, e.g. 1023");
  }
  if (o.get_int("sinc_kernel") > o.get_int("sig_len")) {
    throw Error(ErrorKind::kConfig,
                "option 'sinc_kernel': " + std::to_string(o.get_int("sinc_kernel")) +
                    " taps exceed sig_len " + std::to_string(o.get_int("sig_len")))
        .note("expected sinc_kernel <= sig_len");
  }
}

inline NgccPhatConfig model_config(const Options& o) {
  NgccPhatConfig c;
  c.max_tau = o.get_int("max_tau");
  c.sig_len = o.get_int("sig_len");
  c.num_channels = o.get_int("num_channels");
  c.sinc_kernel = o.get_int("sinc_kernel");
  c.fs = o.get_int("sample_rate");
  c.dropout = o.get_float("dropout");
  c.fft_sinc_conv = o.get_bool("fft_sinc_conv");
  c.fft_conv = o.get_bool("fft_conv");
  return c;
}

/// audio [B, K, L] -> [B, K, len] from `start`, each channel standardised (x - mean) / std with
/// the unbiased std, as the reference's main.py. Returns a fresh contiguous tensor.
inline torch::Tensor crop_standardise(const torch::Tensor& audio, int64_t start, int64_t len) {
  const auto x = audio.narrow(-1, start, len).to(torch::kFloat32);
  const auto mean = x.mean({-1}, true);
  const auto std = x.std({-1}, /*unbiased=*/true, /*keepdim=*/true);
  return ((x - mean) / std).contiguous();
}

/// Checks a batch's audio [B, K, L] and tdoa [B, K, K] against the configuration.
inline void check_batch(const NodeContext& ctx, const Item& item, const torch::Tensor& audio,
                        const torch::Tensor& tdoa, int64_t sig_len, int64_t num_mics) {
  if (audio.dim() != 3 || tdoa.dim() != 3 || tdoa.size(0) != audio.size(0) ||
      tdoa.size(1) != audio.size(1) || tdoa.size(2) != audio.size(1)) {
    throw Error(ErrorKind::kData, describe_item(ctx, &item) + ": audio " +
                                      std::string(c10::str(audio.sizes())) + " and tdoa " +
                                      std::string(c10::str(tdoa.sizes())) + " do not match")
        .note("expected audio [B, K, L] and tdoa [B, K, K]");
  }
  if (audio.size(2) < sig_len) {
    throw Error(ErrorKind::kData, describe_item(ctx, &item) + ": audio has " +
                                      std::to_string(audio.size(2)) +
                                      " samples, fewer than sig_len " + std::to_string(sig_len))
        .note("expected at least sig_len samples per channel");
  }
  if (audio.size(1) < num_mics + 1) {
    throw Error(ErrorKind::kData, describe_item(ctx, &item) + ": audio has " +
                                      std::to_string(audio.size(1)) + " channels")
        .note("expected channel 0 (source) + num_mics = " + std::to_string(num_mics) +
              " microphones");
  }
}

}  // namespace w2p::ngcc
