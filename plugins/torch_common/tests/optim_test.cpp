#include "torch_common/optim.hpp"

#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <vector>

#include "support/torch_fixture.hpp"
#include "torch_common/tests/reference_fixtures.hpp"

namespace w2p::torch_common {
namespace {

// Parameters named and shaped like the reference's special cases.
struct NamedImpl : torch::nn::Module {
  NamedImpl() {
    enc_audio_modality = register_parameter("enc_audio_modality", torch::randn({1, 1, 4}));
    mask_token_mic = register_parameter("mask_token_mic", torch::randn({1, 1, 4}));
    low_hz_ = register_parameter("low_hz_", torch::randn({4, 1}));
    gain = register_parameter("gain", torch::randn({4}));
    frozen = register_parameter("frozen", torch::randn({4, 4}), /*requires_grad=*/false);
    proj = register_module("proj", torch::nn::Linear(4, 3));
  }
  torch::Tensor enc_audio_modality, mask_token_mic, low_hz_, gain, frozen;
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(Named);

TEST(Optim, WeightDecayGroupsFollowTheReferenceRule) {
  Named model;
  const auto groups = split_weight_decay(model->named_parameters(), reference_no_decay_names());
  // Listed name, ndim <= 1 and ".bias" -> no decay; mask_token_* (list says "mask_token", names
  // are compared exactly) and the 2-D sinc-like parameter -> decay; frozen -> no group.
  EXPECT_EQ(groups.no_decay_names,
            (std::vector<std::string>{"enc_audio_modality", "gain", "proj.bias"}));
  EXPECT_EQ(groups.decay_names,
            (std::vector<std::string>{"mask_token_mic", "low_hz_", "proj.weight"}));
  ASSERT_EQ(groups.decay.size(), 3U);
  EXPECT_TRUE(groups.decay[2].is_same(model->proj->weight));
}

TEST(Optim, FirstAdamWStepMatchesTheClosedForm) {
  // From zero moments: p1 = p0 (1 - lr wd) - lr g / (|g| + eps) (bias corrections cancel).
  torch::manual_seed(3);
  Named model;
  const auto groups = split_weight_decay(model->named_parameters(), reference_no_decay_names());
  AdamWConfig config;
  config.lr = 1e-3;
  config.weight_decay = 0.1;
  auto opt = make_adamw(groups, config);
  ASSERT_EQ(opt->param_groups().size(), 2U);
  std::vector<torch::Tensor> before;
  for (const auto& p : model->parameters()) before.push_back(p.detach().clone());
  const auto x = torch::randn({2, 4});
  const auto loss = model->proj->forward(x * model->gain).pow(2).sum() +
                    (model->enc_audio_modality * model->mask_token_mic).sum() +
                    model->low_hz_.pow(3).sum();
  loss.backward();
  opt->step();
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& p = params[i];
    if (!p.requires_grad()) continue;
    const auto names = model->named_parameters();
    const std::string name = names.keys()[i];
    const bool decayed = std::find(groups.decay_names.begin(), groups.decay_names.end(), name) !=
                         groups.decay_names.end();
    const double wd = decayed ? config.weight_decay : 0.0;
    const auto g = p.grad();
    const auto want = before[i] * (1.0 - config.lr * wd) - config.lr * g / (g.abs() + config.eps);
    EXPECT_LT(test::deviation(p, want).abs, 1e-7) << name;
  }
}

TEST(Optim, LearningRateAccessors) {
  Named model;
  auto opt = make_adamw(split_weight_decay(model->named_parameters()));
  set_learning_rate(*opt, 2.5e-4);
  EXPECT_EQ(learning_rate(*opt, 0), 2.5e-4);
  EXPECT_EQ(learning_rate(*opt, 1), 2.5e-4);
}

TEST(Optim, ScheduleMatchesTheReference) {
  const test::H5Reader file(test::reference_fixture("schedule.h5"));
  const auto used = test::read_tensor(file, "lr_used_in_epoch");
  const auto after = test::read_tensor(file, "lr_after_step");
  const double before = test::read_tensor(file, "lr_epoch0_before_step").item<double>();
  ASSERT_EQ(used.numel(), 30);
  EXPECT_EQ(reference_lr(0), before);
  double worst = 0.0;
  for (int e = 0; e < 30; ++e) {
    const double want = used[e].item<double>();
    worst = std::max(worst, std::abs(reference_lr(e) - want));
    EXPECT_NEAR(reference_lr(e), want, 1e-15 + 1e-12 * want) << "epoch " << e;
    EXPECT_NEAR(reference_lr(e + 1), after[e].item<double>(), 1e-15) << "epoch " << e;
  }
  std::printf("[ deviation ] lr schedule (30 epochs) max abs %.3e\n", worst);
  // The quirks the spec names.
  EXPECT_EQ(reference_lr(0), 0.0);
  EXPECT_EQ(reference_lr(5), 1e-3);
  EXPECT_EQ(reference_lr(6), 1e-3);
  EXPECT_GT(reference_lr(29), 1e-5);
}

}  // namespace
}  // namespace w2p::torch_common
