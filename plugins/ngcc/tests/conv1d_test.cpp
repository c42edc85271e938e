#include "ngcc/model/conv1d.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace w2p::ngcc {
namespace {

// Forward and all three gradients equal LibTorch's conv1d (float32 rounding).
TEST(Conv1d, EqualsTorchConv1dAndItsGradients) {
  torch::manual_seed(5);
  for (const bool with_bias : {true, false}) {
    for (const int64_t k : {1, 5, 11}) {
      const auto x = torch::randn({3, 6, 40}, torch::requires_grad());
      const auto w = torch::randn({4, 6, k}, torch::requires_grad());
      const auto b = with_bias ? torch::randn({4}, torch::requires_grad()) : torch::Tensor();
      const auto g = torch::randn({3, 4, 40 - k + 1});
      const auto ours = conv1d(x, w, b);
      const auto [gx, gw, gb] = [&] {
        ours.backward(g);
        auto r = std::make_tuple(x.grad().clone(), w.grad().clone(),
                                 with_bias ? b.grad().clone() : torch::Tensor());
        x.mutable_grad().reset();
        w.mutable_grad().reset();
        if (with_bias) b.mutable_grad().reset();
        return r;
      }();
      const auto theirs = torch::conv1d(x, w, b);
      theirs.backward(g);
      EXPECT_TRUE(torch::allclose(ours, theirs, 1e-5, 1e-5)) << "k " << k;
      EXPECT_TRUE(torch::allclose(gx, x.grad(), 1e-5, 1e-5)) << "k " << k;
      EXPECT_TRUE(torch::allclose(gw, w.grad(), 1e-4, 1e-5)) << "k " << k;
      if (with_bias) {
        EXPECT_TRUE(torch::allclose(gb, b.grad(), 1e-5, 1e-5));
      }
    }
  }
}

TEST(Conv1d, OnlyRequestedGradientsAreComputed) {
  const auto x = torch::randn({2, 3, 20});
  const auto w = torch::randn({5, 3, 3}, torch::requires_grad());
  conv1d(x, w, torch::Tensor()).sum().backward();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(w.grad().sizes(), w.sizes());
}

}  // namespace
}  // namespace w2p::ngcc

namespace w2p::ngcc {
namespace {

// Inside a graph as the backbone uses it: circular padding before, training BatchNorm after.
TEST(Conv1d, GradientsThroughPaddingAndBatchNorm) {
  torch::manual_seed(6);
  const auto x = (torch::randn({4, 8, 64}) + 3.0).requires_grad_();
  const auto w = torch::randn({8, 8, 5}, torch::requires_grad());
  const auto b = torch::randn({8}, torch::requires_grad());
  const auto g = torch::randn({4, 8, 64});
  const auto run = [&](bool ours) {
    const auto xp = torch::nn::functional::pad(
        x, torch::nn::functional::PadFuncOptions({2, 2}).mode(torch::kCircular));
    const auto y = ours ? conv1d(xp, w, b) : torch::conv1d(xp, w, b);
    const auto z = torch::batch_norm(y, {}, {}, {}, {}, true, 0.1, 1e-5, false);
    (z * g).sum().backward();
    auto r = std::make_tuple(x.grad().clone(), w.grad().clone(), b.grad().clone());
    x.mutable_grad().reset();
    w.mutable_grad().reset();
    b.mutable_grad().reset();
    return r;
  };
  const auto [x1, w1, b1] = run(true);
  const auto [x2, w2, b2] = run(false);
  EXPECT_TRUE(torch::allclose(x1, x2, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(w1, w2, 1e-4, 1e-5)) << (w1 - w2).abs().max();
  EXPECT_TRUE(torch::allclose(b1, b2, 1e-4, 1e-5));
}

}  // namespace
}  // namespace w2p::ngcc
