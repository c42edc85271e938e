#include "ngcc/model/ngcc_phat.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "ngcc/tests/ngcc_fixture.hpp"

namespace w2p::ngcc {
namespace {

using Shape = std::vector<int64_t>;
constexpr int64_t kLen = 1100;  // > the 1023 taps: the FFT SincConv path
using w2p::test::report_deviation;

NgccPhatConfig small_config() {
  NgccPhatConfig config;
  config.max_tau = 20;
  config.sig_len = kLen;
  config.num_channels = 128;  // the head is 128 -> 128 whatever the backbone width
  return config;
}

TEST(NgccPhat, StateDictKeysAndShapesEqualTheReference) {
  MaskedNgccPhat model;
  const auto ours = torch_common::state_dict(*model);
  const auto ref = torch_common::read_hdf5_state_dict(test::pretrain_file());
  ASSERT_EQ(ours.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(ours[i].first, ref[i].first) << "position " << i;  // same order, too
    EXPECT_EQ(ours[i].second.sizes(), ref[i].second.sizes()) << ref[i].first;
    EXPECT_EQ(ours[i].second.scalar_type(), ref[i].second.scalar_type()) << ref[i].first;
  }
}

TEST(NgccPhat, ModuleShapes) {
  const auto config = small_config();
  torch::NoGradGuard no_grad;
  SincBackbone backbone(config);
  std::vector<torch::Tensor> trace;
  EXPECT_EQ(backbone->forward(torch::randn({3, kLen}), &trace).sizes(), (Shape{3, 128, kLen}));
  ASSERT_EQ(trace.size(), 5U);
  for (const auto& t : trace) EXPECT_EQ(t.sizes(), (Shape{3, 128, kLen}));
  // Shorter than the kernel (direct form) and too short for one circular wrap (as the reference).
  EXPECT_EQ(backbone->forward(torch::randn({2, 600})).sizes(), (Shape{2, 128, 600}));
  EXPECT_THROW(backbone->forward(torch::randn({2, 500})), std::invalid_argument);
  EXPECT_THROW(backbone->forward(torch::randn({3, 1, kLen})), std::invalid_argument);

  EXPECT_EQ(gcc_phat(torch::randn({2, 5, 256}), torch::randn({2, 5, 256}), 20).sizes(),
            (Shape{2, 5, 41}));
  EXPECT_THROW(gcc_phat(torch::randn({2, 16}), torch::randn({2, 16}), 16), std::invalid_argument);

  NgccPhat ngcc(config);
  ngcc->eval();
  trace.clear();
  EXPECT_EQ(ngcc->head(torch::randn({3, 128, 41}), &trace).sizes(), (Shape{3, 41}));
  EXPECT_EQ(trace.size(), 3U);
  EXPECT_EQ(ngcc->forward(torch::randn({3, kLen}), torch::randn({3, kLen})).sizes(),
            (Shape{3, 41}));
  EXPECT_EQ(ngcc->num_classes(), 41);

  MaskedNgccPhat masked(config);
  masked->eval();
  const auto audio = torch::randn({2, 4, kLen});
  EXPECT_EQ(masked->pair_features(audio).sizes(), (Shape{2, 12, 41}));
  const auto pairs = torch::tensor({1, 2, 3, 3}, torch::kInt64).view({2, 2});
  const auto out = masked->forward(audio, torch::zeros({2, 4, 4}, torch::kFloat64), pairs);
  EXPECT_EQ(out.logits.sizes(), (Shape{2, 41}));
  EXPECT_EQ(out.loss.dim(), 0);
  EXPECT_EQ(out.pred_tdoa.sizes(), (Shape{2}));
}

// The FFT forms of the circular convolutions (SincConv, 128->128 layers) compute the same
// function as the reference's padded direct convolutions.
TEST(NgccPhat, FftBackboneEqualsTheDirectCircularConvolutions) {
  auto config = small_config();
  config.fft_sinc_conv = false;
  config.fft_conv = false;
  torch::manual_seed(1);
  SincBackbone direct(config);
  config.fft_sinc_conv = true;
  config.fft_conv = true;
  config.fft_conv_min_rows = 1;
  SincBackbone fft(config);
  torch_common::load_state_dict(*fft, torch_common::to_map(torch_common::state_dict(*direct)));
  direct->eval();
  fft->eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> a, b;
  const auto x = torch::randn({2, 1500});  // longer than the kernel: the FFT path is taken
  direct->forward(x, &a);
  fft->forward(x, &b);
  EXPECT_LE(report_deviation("sinc conv FFT vs direct", b[0], a[0]).rel, 2e-6);
  EXPECT_LE(report_deviation("backbone FFT vs direct", b.back(), a.back()).rel, 2e-5);

  // Backward (without the ill-conditioned GCC-PHAT above it): the same parameter gradients.
  {
    torch::AutoGradMode grad_on(true);  // inside the test's NoGradGuard
    direct->train();
    fft->train();
    const auto weights = torch::randn({2, 128, 1500});
    (direct->forward(x) * weights).sum().backward();
    (fft->forward(x) * weights).sum().backward();
    const auto ga = direct->named_parameters(), gb = fft->named_parameters();
    for (const auto& item : ga) {
      const auto d = report_deviation("backbone grad FFT vs direct " + item.key(),
                                      gb[item.key()].grad(), item.value().grad());
      if (item.key().find(".bias") == std::string::npos || item.key().rfind("bn.", 0) == 0) {
        EXPECT_LE(d.rel, 1e-4) << item.key();  // conv biases before BN: exact gradient 0
      }
    }
  }
}

// Pair features (the wav2pos time-delay input): in eval mode, pair (a, b) equals the NGCC-PHAT
// logits of (x_a, x_b), and the next row those of (x_b, x_a).
// The head's zero-padded convolutions as spectral products: the same logits and parameter
// gradients as the direct form (train mode, dropout off; BatchNorm on batch statistics).
TEST(NgccPhat, FftHeadEqualsTheDirectHead) {
  auto config = small_config();
  config.fft_conv = false;
  torch::manual_seed(2);
  NgccPhat direct(config);
  config.fft_conv = true;
  config.fft_conv_min_rows = 1;
  NgccPhat fft(config);
  torch_common::load_state_dict(*fft, torch_common::to_map(torch_common::state_dict(*direct)));
  for (auto* m : {&direct, &fft}) {
    (*m)->train();
    (*m)->set_dropout(0.0);
  }
  const auto cc = torch::randn({6, 128, 2 * config.max_tau + 1});
  const auto weights = torch::randn({6, 2 * config.max_tau + 1});
  const auto a = direct->head(cc), b = fft->head(cc);
  EXPECT_LE(report_deviation("head logits FFT vs direct", b, a).rel, 1e-5);
  (a * weights).sum().backward();
  (b * weights).sum().backward();
  const auto ga = direct->named_parameters(), gb = fft->named_parameters();
  for (const auto& item : ga) {
    if (item.key().rfind("backbone.", 0) == 0) continue;
    if (item.key().find(".0.bias") != std::string::npos) continue;  // before BN: exact 0
    EXPECT_LE(report_deviation("head grad FFT vs direct " + item.key(), gb[item.key()].grad(),
                               item.value().grad())
                  .rel,
              1e-4)
        << item.key();
  }
}

TEST(NgccPhat, PairFeaturesAreTheLogitsOfEveryOrderedPair) {
  torch::manual_seed(2);
  MaskedNgccPhat model(small_config());
  model->eval();
  torch::NoGradGuard no_grad;
  const auto audio = torch::randn({2, 3, kLen});
  const auto features = model->pair_features(audio);  // pairs (0,1),(1,0),(0,2),(2,0),(1,2),(2,1)
  const std::vector<std::pair<int64_t, int64_t>> order = {{0, 1}, {1, 0}, {0, 2},
                                                          {2, 0}, {1, 2}, {2, 1}};
  for (size_t p = 0; p < order.size(); ++p) {
    const auto [a, b] = order[p];
    const auto want = model->ngcc->forward(audio.select(1, a), audio.select(1, b));
    EXPECT_LE(w2p::test::deviation(features.select(1, static_cast<int64_t>(p)), want).rel, 1e-5)
        << "pair " << a << "," << b;
  }
}

TEST(NgccPhat, LabelsTruncateTowardZeroAsTheReference) {
  const w2p::test::H5Reader file(test::pretrain_file());
  const auto tdoa = w2p::test::read_tensor(file, "inputs/tdoas");
  const auto pairs = w2p::test::read_tensor(file, "inputs/pair");
  MaskedNgccPhat model;
  EXPECT_TRUE(
      torch::equal(model->pair_labels(tdoa, pairs), w2p::test::read_tensor(file, "inputs/labels")));
  EXPECT_TRUE(
      torch::equal(model->pair_labels(tdoa, w2p::test::read_tensor(file, "forward_test/pair")),
                   w2p::test::read_tensor(file, "forward_test/labels")));
  // A negative TDOA with a fraction: -2.7 + 342 = 339.3 -> 339 (trunc), not 340 (round).
  auto t = torch::zeros({1, 7, 7}, torch::kFloat64);
  t[0][1][2] = -2.7;
  EXPECT_EQ(
      model->pair_labels(t, torch::tensor({1, 2}, torch::kInt64).view({1, 2})).item<int64_t>(),
      339);
}

TEST(NgccPhat, RandomPairsAreMicrophonesOneToSix) {
  MaskedNgccPhat model;
  std::mt19937_64 rng(4);
  auto tdoa = torch::randn({500, 7, 7}, torch::kFloat64) * 50.0;
  const auto batch = model->random_pair_labels(tdoa, rng);
  EXPECT_EQ(batch.pairs.min().item<int64_t>(), 1);
  EXPECT_EQ(batch.pairs.max().item<int64_t>(), 6);
  EXPECT_TRUE(torch::equal(batch.labels, model->pair_labels(tdoa, batch.pairs)));
  EXPECT_GT((batch.pairs.select(1, 0) == batch.pairs.select(1, 1)).sum().item<int64_t>(), 0);
}

TEST(NgccPhat, DropoutPIsSettable) {
  torch::manual_seed(3);
  NgccPhat model(small_config());
  model->train();
  const auto x1 = torch::randn({4, kLen}), x2 = torch::randn({4, kLen});
  torch::NoGradGuard no_grad;
  model->set_dropout(0.0);
  const auto a = model->forward(x1, x2);
  EXPECT_TRUE(torch::allclose(a, model->forward(x1, x2)));  // deterministic without dropout
  model->set_dropout(0.5);
  EXPECT_FALSE(torch::allclose(a, model->forward(x1, x2)));
}

}  // namespace
}  // namespace w2p::ngcc

namespace w2p::ngcc {
namespace {

// Without a graph the head convolves in chunks of rows and normalises in place; it must give
// the graph path's logits and BatchNorm running statistics, in train and in eval mode.
TEST(NgccPhat, GradientFreeHeadEqualsTheGraphHead) {
  auto config = small_config();
  config.dropout = 0.0;
  config.head_chunk_values = 128 * 51 * 64;  // 64 rows per chunk
  for (const bool training : {true, false}) {
    torch::manual_seed(4);
    NgccPhat graph(config), no_graph(config);
    torch::NoGradGuard init;
    const auto source = graph->named_parameters();
    for (auto& item : no_graph->named_parameters()) item.value().copy_(source[item.key()]);
    graph->train(training);
    no_graph->train(training);
    // 200 rows of 128 x 41: several chunks and a partial one.
    const auto cc = torch::randn({200, 128, 41}) * 0.1;
    torch::Tensor expected;
    {
      torch::AutoGradMode with_grad(true);
      expected = graph->head(cc.clone().requires_grad_()).detach();
    }
    const auto got = no_graph->head(cc);
    EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5)) << "training " << training;
    const auto a = graph->named_buffers(), b = no_graph->named_buffers();
    for (const auto& item : a) {
      if (item.key().rfind("mlp.", 0) != 0) continue;
      EXPECT_TRUE(torch::allclose(item.value().to(torch::kFloat64),
                                  b[item.key()].to(torch::kFloat64), 1e-5, 1e-6))
          << item.key() << " training " << training;
    }
  }
}

}  // namespace
}  // namespace w2p::ngcc
