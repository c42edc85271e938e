#include "ngcc/model/spectral_conv.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <tuple>

namespace w2p::ngcc {
namespace {

namespace F = torch::nn::functional;

// The direct convolution in float64: the yardstick for both float32 forms.
torch::Tensor direct(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                     ConvPadding padding) {
  const int64_t half = w.size(2) / 2;
  auto options = F::PadFuncOptions({half, half});
  if (padding == ConvPadding::kCircular) options.mode(torch::kCircular);
  return torch::conv1d(F::pad(x, options), w, b);
}

double relative(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got.to(torch::kFloat64) - want).abs().max() / want.abs().max()).item<double>();
}

// Output and gradients of x, w, b for an output gradient g.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor> run(
    bool spectral, const torch::Tensor& x0, const torch::Tensor& w0, const torch::Tensor& b0,
    const torch::Tensor& g, ConvPadding padding) {
  const auto dtype = spectral ? torch::kFloat32 : torch::kFloat64;
  const auto x = x0.to(dtype).detach().requires_grad_();
  const auto w = w0.to(dtype).detach().requires_grad_();
  const auto b = b0.to(dtype).detach().requires_grad_();
  const auto y = spectral ? spectral_conv1d(x, w, b, padding) : direct(x, w, b, padding);
  y.backward(g.to(dtype));
  return {y.detach(), x.grad(), w.grad(), b.grad()};
}

// Forward and all three gradients equal the direct convolution to float32 rounding, for both
// paddings, odd and even lengths, channel counts that do not fill a transposition block, and
// FFT lengths that are not powers of two.
TEST(SpectralConv1d, EqualsTheDirectConvolutionAndItsGradients) {
  torch::manual_seed(11);
  struct Case {
    int64_t n, c, o, length, k;
  };
  for (const auto padding : {ConvPadding::kCircular, ConvPadding::kZeros}) {
    for (const Case s : {Case{3, 5, 7, 64, 11}, Case{2, 20, 17, 45, 9}, Case{4, 16, 32, 128, 7},
                         Case{1, 3, 2, 13, 1}, Case{2, 8, 8, 685, 11}}) {
      const auto x = torch::randn({s.n, s.c, s.length}) + 0.5;  // a mean: cancelling sums
      const auto w = torch::randn({s.o, s.c, s.k});
      const auto b = torch::randn({s.o});
      const auto g = torch::randn({s.n, s.o, s.length});
      const auto [y, gx, gw, gb] = run(true, x, w, b, g, padding);
      const auto [y_ref, gx_ref, gw_ref, gb_ref] = run(false, x, w, b, g, padding);
      const std::string what =
          std::string(padding == ConvPadding::kCircular ? "circular" : "zeros") + " L " +
          std::to_string(s.length) + " K " + std::to_string(s.k);
      EXPECT_EQ(y.sizes(), y_ref.sizes()) << what;
      EXPECT_LT(relative(y, y_ref), 2e-6) << what;
      EXPECT_LT(relative(gx, gx_ref), 2e-6) << what;
      EXPECT_LT(relative(gw, gw_ref), 2e-6) << what;
      EXPECT_LT(relative(gb, gb_ref), 2e-6) << what;
    }
  }
}

TEST(SpectralConv1d, FftLengths) {
  EXPECT_EQ(spectral_conv_fft_length(2048, 11, ConvPadding::kCircular), 2048);
  EXPECT_EQ(spectral_conv_fft_length(685, 11, ConvPadding::kZeros), 720);  // >= 690, 2^4 3^2 5
  EXPECT_EQ(spectral_conv_fft_length(629, 7, ConvPadding::kZeros), 640);
}

TEST(SpectralConv1d, WithoutGraphOrBiasAndOnlyRequestedGradients) {
  torch::manual_seed(12);
  const auto x = torch::randn({2, 4, 32});
  const auto w = torch::randn({3, 4, 5});
  {
    torch::NoGradGuard no_grad;
    EXPECT_LT(relative(spectral_conv1d(x, w, torch::Tensor(), ConvPadding::kZeros),
                       direct(x.to(torch::kFloat64), w.to(torch::kFloat64), torch::Tensor(),
                              ConvPadding::kZeros)),
              2e-6);
  }
  const auto wg = w.clone().requires_grad_();
  spectral_conv1d(x, wg, torch::Tensor(), ConvPadding::kCircular).sum().backward();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(wg.grad().sizes(), w.sizes());
}

TEST(SpectralConv1d, RejectsEvenKernelsAndMismatchedChannels) {
  EXPECT_THROW(spectral_conv1d(torch::randn({1, 2, 8}), torch::randn({2, 2, 4}), torch::Tensor(),
                               ConvPadding::kZeros),
               std::invalid_argument);
  EXPECT_THROW(spectral_conv1d(torch::randn({1, 3, 8}), torch::randn({2, 2, 3}), torch::Tensor(),
                               ConvPadding::kZeros),
               std::invalid_argument);
}

}  // namespace
}  // namespace w2p::ngcc
