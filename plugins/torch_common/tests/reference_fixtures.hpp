// Test helpers shared by the LibTorch plugins' parity tests: where the reference fixtures are,
// and how far a tensor is from its golden value.
#pragma once

#include <torch/types.h>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "support/fixture_h5.hpp"

namespace w2p::test {

/// A file of the reference fixture set: $W2P_REFERENCE_FIXTURES/<name> when that variable is set
/// (so the parity tests run unchanged on another fixture set of the same layout), else the
/// build's ../shared/fixtures/reference/<name>.
inline std::string reference_fixture(const std::string& name) {
  if (const char* dir = std::getenv("W2P_REFERENCE_FIXTURES"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/" + name;
  }
  return fixture_path("reference/" + name);
}

/// Distance of `got` from `want`: max |got - want| and that divided by max |want| (the
/// "relative" figure the parity tolerances use: robust to entries that are almost zero).
struct Deviation {
  double abs = 0.0;
  double rel = 0.0;
};

inline Deviation deviation(const torch::Tensor& got, const torch::Tensor& want) {
  const auto g = got.detach().to(torch::kCPU, torch::kFloat64);
  const auto w = want.detach().to(torch::kCPU, torch::kFloat64);
  if (g.sizes() != w.sizes()) {
    return {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  }
  Deviation d;
  if (w.numel() == 0) return d;
  d.abs = (g - w).abs().max().item<double>();
  const double scale = w.abs().max().item<double>();
  d.rel = scale > 0.0 ? d.abs / scale : d.abs;
  return d;
}

/// Prints the deviation (the measured figures end up in the test log) and returns it.
inline Deviation report_deviation(const std::string& what, const torch::Tensor& got,
                                  const torch::Tensor& want) {
  const Deviation d = deviation(got, want);
  std::printf("[ deviation ] %-44s max abs %.3e  rel %.3e\n", what.c_str(), d.abs, d.rel);
  return d;
}

}  // namespace w2p::test
