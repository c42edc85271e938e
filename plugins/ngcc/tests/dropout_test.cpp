#include "ngcc/model/dropout.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace w2p::ngcc {
namespace {

TEST(FastDropout, IdentityWhenEvaluatingOrPZero) {
  const auto x = torch::randn({4, 5});
  EXPECT_TRUE(fast_dropout(x, 0.5, /*training=*/false).equal(x));
  EXPECT_TRUE(fast_dropout(x, 0.0, /*training=*/true).equal(x));
  EXPECT_EQ(fast_dropout(x, 1.0, true).abs().sum().item<float>(), 0.0f);
  EXPECT_THROW(fast_dropout(x, 1.5, true), std::invalid_argument);
}

TEST(FastDropout, KeepsTheRightFractionAndScalesTheRest) {
  for (const double p : {0.5, 0.1, 0.8}) {
    const auto x = torch::ones({1000, 1000});
    const auto y = fast_dropout(x, p, true);
    const double kept = (y != 0).to(torch::kFloat64).mean().item<double>();
    EXPECT_NEAR(kept, 1.0 - p, 0.003) << "p " << p;  // 1e6 draws: sd < 0.0005
    const auto nonzero = y.masked_select(y != 0);
    EXPECT_TRUE(torch::allclose(nonzero, torch::full_like(nonzero, 1.0 / (1.0 - p))));
  }
}

TEST(FastDropout, ReproducibleFromTheTorchSeedAndIndependentOfThreads) {
  const auto x = torch::randn({300, 257});
  torch::manual_seed(7);
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto a = fast_dropout(x, 0.5, true);
  const auto a2 = fast_dropout(x, 0.5, true);
  torch::manual_seed(7);
  torch::set_num_threads(2);
  const auto b = fast_dropout(x, 0.5, true);
  torch::set_num_threads(threads);
  EXPECT_TRUE(a.equal(b));
  EXPECT_FALSE(a.equal(a2));  // the next call draws a new mask
}

TEST(FastDropout, InPlaceWithoutGradientMatchesTheOutOfPlaceMask) {
  const auto x = torch::randn({64, 100});
  torch::manual_seed(3);
  const auto expected = fast_dropout(x, 0.3, true);
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  auto y = x.clone();
  const auto out = fast_dropout(y, 0.3, true, /*in_place=*/true);
  EXPECT_EQ(out.data_ptr(), y.data_ptr());
  EXPECT_TRUE(out.equal(expected));
}

TEST(FastDropout, GradientIsTheMask) {
  const auto x = torch::randn({50, 40}, torch::requires_grad());
  const auto y = fast_dropout(x, 0.5, true);
  y.sum().backward();
  // d y / d x = mask: 0 where dropped, 2 where kept.
  EXPECT_TRUE(x.grad().equal((y != 0).to(torch::kFloat32) * 2.0f));
}

}  // namespace
}  // namespace w2p::ngcc
