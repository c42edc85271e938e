// Loss terms and metrics (spec §4.4): against the reference's own predictions stored in
// wav2pos.h5 (so the loss is checked apart from the model), and on constructed cases that pin
// which patches and rows count.
#include "wav2pos/model/losses.hpp"

#include <gtest/gtest.h>

#include <string>

#include "wav2pos/tests/wav2pos_fixture.hpp"

namespace w2p::wav2pos {
namespace {

using test::read;
using w2p::test::report_deviation;

constexpr double kTol = 1e-6;

class LossesOnReferencePredictions : public ::testing::TestWithParam<const char*> {};

TEST_P(LossesOnReferencePredictions, EqualTheReferenceLossesAndSourceErrors) {
  const std::string g = GetParam();
  const torch::Tensor pred_locs = read(g + "/pred_locs");
  const Wav2PosLosses losses = forward_loss(read("inputs/audio"), read(g + "/pred_audio"),
                                            pred_locs, read("inputs/locations"), read(g + "/mask"));
  EXPECT_LE(report_deviation(g + "/loss_audio", losses.audio, read(g + "/loss_audio")).rel, kTol);
  EXPECT_LE(report_deviation(g + "/loss_locs", losses.locations, read(g + "/loss_locs")).rel, kTol);
  EXPECT_NEAR(losses.total.item<double>(),
              0.1 * losses.audio.item<double>() + losses.locations.item<double>(), 1e-6);
  if (g == "train") {
    EXPECT_LE(report_deviation("train/loss_total", losses.total, read("train/loss_total")).rel,
              kTol);
    return;  // the train group stores no metres-domain estimates
  }
  const torch::Tensor estimate =
      source_position_m(pred_locs, read("inputs/loc_mu"), read("inputs/loc_sigma"));
  EXPECT_LE(report_deviation(g + "/source_est_m", estimate, read(g + "/source_est_m")).rel, 1e-12);
  const torch::Tensor error = source_error_m(estimate, read("inputs/source_m"));
  EXPECT_LE(report_deviation(g + "/source_err_m", error, read(g + "/source_err_m")).rel, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Groups, LossesOnReferencePredictions,
                         ::testing::Values("eval_1a", "eval_1b", "eval_2a", "train"));

// A batch of 2, K = 4 channels, L = 8 samples, with predictions off by known amounts.
struct Case {
  torch::Tensor target = torch::randn({2, 4, 8}, torch::kFloat32);
  torch::Tensor standardised;
  torch::Tensor locations = torch::randn({2, 4, 3}, torch::kFloat32);
  torch::Tensor mask = torch::zeros({2, 8}, torch::kFloat32);
  Case() { standardised = (target - target.mean(-1, true)) / target.std(-1, true, true); }
};

TEST(ForwardLoss, AudioTermAveragesOnlyTheKeptPatches) {
  torch::manual_seed(1);
  Case c;
  c.mask.index_put_({0, 4}, 1.0);  // example 0: source audio masked
  c.mask.index_put_({1, 6}, 1.0);  // example 1: channel 2 audio masked
  torch::Tensor pred = c.standardised.clone();
  pred.index_put_({0, 0}, pred.index({0, 0}) + 5.0);  // masked patch: error must not count
  pred.index_put_({1, 2}, pred.index({1, 2}) - 7.0);  // masked patch: error must not count
  pred.index_put_({1, 3}, pred.index({1, 3}) + 3.0);  // kept patch: squared error 9
  const auto losses = forward_loss(c.target, pred, c.locations, c.locations, c.mask);
  EXPECT_NEAR(losses.audio.item<double>(), 9.0 / 6.0, 1e-5);  // 6 kept patches
  EXPECT_NEAR(losses.locations.item<double>(), 0.0, 1e-12);
}

TEST(ForwardLoss, LocationTermIsSourcePlusMaskedMicrophones) {
  torch::manual_seed(2);
  Case c;
  torch::Tensor pred = c.locations.clone();
  pred.index_put_({torch::indexing::Slice(), 0}, pred.index({torch::indexing::Slice(), 0}) + 0.5);
  pred.index_put_({0, 1}, pred.index({0, 1}) + 2.0);  // microphone 1 of example 0
  pred.index_put_({1, 3}, pred.index({1, 3}) + 1.0);  // microphone 3 of example 1
  const torch::Tensor audio = c.standardised;
  // No microphone masked: only the source term (mean over B x 3 of 0.25).
  auto losses = forward_loss(c.target, audio, pred, c.locations, c.mask);
  EXPECT_NEAR(losses.locations.item<double>(), 0.25, 1e-6);
  // Both displaced microphones masked: + mean of their per-row MSEs (4 and 1).
  c.mask.index_put_({0, 1}, 1.0);
  c.mask.index_put_({1, 3}, 1.0);
  losses = forward_loss(c.target, audio, pred, c.locations, c.mask);
  EXPECT_NEAR(losses.locations.item<double>(), 0.25 + (4.0 + 1.0) / 2.0, 1e-5);
  // A third masked microphone without error dilutes the average; the source token (mask
  // column 0) never enters the microphone term.
  c.mask.index_put_({1, 2}, 1.0);
  c.mask.index_put_({0, 0}, 1.0);
  losses = forward_loss(c.target, audio, pred, c.locations, c.mask);
  EXPECT_NEAR(losses.locations.item<double>(), 0.25 + (4.0 + 1.0) / 3.0, 1e-5);
  EXPECT_NEAR(losses.total.item<double>(),
              0.1 * losses.audio.item<double>() + losses.locations.item<double>(), 1e-6);
  LossWeights weights;
  weights.audio = 0.0;
  weights.locations = 2.0;
  EXPECT_NEAR(
      forward_loss(c.target, audio, pred, c.locations, c.mask, weights).total.item<double>(),
      2.0 * losses.locations.item<double>(), 1e-5);
}

TEST(ForwardLoss, RejectsMismatchedShapes) {
  Case c;
  EXPECT_THROW(forward_loss(c.target, c.target.slice(2, 0, 4), c.locations, c.locations, c.mask),
               std::invalid_argument);
  EXPECT_THROW(forward_loss(c.target, c.target, c.locations, c.locations, c.mask.slice(1, 0, 6)),
               std::invalid_argument);
}

TEST(Metrics, ErrorAndAccuracy) {
  const torch::Tensor estimate = torch::tensor({{0.0, 0.0, 0.0}, {3.0, 4.0, 0.0}}, torch::kFloat64);
  const torch::Tensor truth = torch::zeros({2, 1, 3}, torch::kFloat64);
  const torch::Tensor error = source_error_m(estimate, truth);
  EXPECT_DOUBLE_EQ(error[0].item<double>(), 0.0);
  EXPECT_DOUBLE_EQ(error[1].item<double>(), 5.0);
  EXPECT_DOUBLE_EQ(accuracy(error).item<double>(), 0.5);
  EXPECT_DOUBLE_EQ(accuracy(error, 6.0).item<double>(), 1.0);
}

}  // namespace
}  // namespace w2p::wav2pos
