#include "ngcc/model/sinc_conv.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "ngcc/tests/ngcc_fixture.hpp"

namespace w2p::ngcc {
namespace {

using w2p::test::report_deviation;

TEST(SincConv, Shapes) {
  SincConv conv;
  EXPECT_EQ(conv->low_hz_.sizes(), (std::vector<int64_t>{128, 1}));
  EXPECT_EQ(conv->band_hz_.sizes(), (std::vector<int64_t>{128, 1}));
  EXPECT_EQ(conv->filters().sizes(), (std::vector<int64_t>{128, 1, 1023}));
  EXPECT_EQ(conv->forward(torch::randn({3, 1, 1100})).sizes(),
            (std::vector<int64_t>{3, 128, 1100 - 1022}));
  // Only the two band parameters are state (window and time axis are constants).
  EXPECT_EQ(conv->named_parameters().keys(), (std::vector<std::string>{"low_hz_", "band_hz_"}));
  EXPECT_TRUE(conv->named_buffers().is_empty());
  EXPECT_THROW(SincConv(SincConvOptions{8, 10}), std::invalid_argument);
}

TEST(SincConv, InitialBandsAreMelSpacedFrom30HzToNyquistMinus100) {
  SincConv conv;
  const auto low = conv->low_hz_.squeeze(1).to(torch::kFloat64);
  const auto band = conv->band_hz_.squeeze(1).to(torch::kFloat64);
  EXPECT_NEAR(low[0].item<double>(), 30.0, 1e-4);
  EXPECT_NEAR((low[127] + band[127]).item<double>(), 7900.0, 1e-2);
  // Equal steps on the mel scale: mel = 2595 log10(1 + f / 700).
  const auto mel = [](const torch::Tensor& f) { return 2595.0 * torch::log10(1.0 + f / 700.0); };
  const auto steps = mel(low + band) - mel(low);
  EXPECT_LT((steps - steps.mean()).abs().max().item<double>(), 1e-3);
  EXPECT_GT(band.min().item<double>(), 0.0);
}

}  // namespace
}  // namespace w2p::ngcc
