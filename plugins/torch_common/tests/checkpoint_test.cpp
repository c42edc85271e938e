#include "torch_common/checkpoint.hpp"

#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

#include <unistd.h>

#include "torch_common/optim.hpp"
#include "torch_common/state_dict.hpp"

namespace w2p::torch_common {
namespace {

namespace fs = std::filesystem;

torch::nn::Sequential make_model(int64_t hidden = 8) {
  return torch::nn::Sequential(torch::nn::Linear(5, hidden), torch::nn::BatchNorm1d(hidden),
                               torch::nn::Linear(hidden, 1));
}

// One epoch of a tiny regression: data drawn from torch's generator, a std::mt19937_64 used for
// a shuffle-like choice, lr from the reference schedule, so every piece of saved state matters.
void run_epoch(torch::nn::Sequential& model, torch::optim::Optimizer& opt, int epoch,
               std::mt19937_64& rng) {
  set_learning_rate(opt, reference_lr(epoch + 1, 1e-2, 2, 6));
  for (int step = 0; step < 3; ++step) {
    const auto x = torch::randn({16, 5});
    const auto y = x.sum(1, true) * static_cast<double>(rng() % 3 + 1);
    opt.zero_grad();
    torch::nn::functional::mse_loss(model->forward(x), y).backward();
    opt.step();
  }
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("w2p_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

TEST_F(CheckpointTest, ResumeEndsWithTheWeightsOfAnUninterruptedRun) {
  const int kEpochs = 4;
  // Uninterrupted.
  torch::manual_seed(7);
  auto model_a = make_model();
  auto opt_a = make_adamw(split_weight_decay(model_a->named_parameters()));
  std::mt19937_64 rng_a(99);
  for (int e = 0; e < kEpochs; ++e) run_epoch(model_a, *opt_a, e, rng_a);

  // Interrupted after epoch 2, checkpointed, resumed in fresh objects.
  torch::manual_seed(7);
  auto model_b = make_model();
  auto opt_b = make_adamw(split_weight_decay(model_b->named_parameters()));
  std::mt19937_64 rng_b(99);
  for (int e = 0; e < 2; ++e) run_epoch(model_b, *opt_b, e, rng_b);
  CheckpointMeta meta;
  meta.epoch = 2;
  meta.scheduler_state = {2.0, 1e-2};
  meta.torch_rng_state = capture_torch_rng_state();
  std::ostringstream rng_text;
  rng_text << rng_b;
  // mt19937_64 state as words (its textual form is the 312 words + index).
  std::istringstream words_in(rng_text.str());
  for (uint64_t w; words_in >> w;) meta.rng_words.push_back(w);
  save_checkpoint(path("ckpt.pt"), *model_b, opt_b.get(), meta);
  EXPECT_FALSE(fs::exists(path("ckpt.pt.tmp")));

  torch::manual_seed(12345);  // disturb the generator: the checkpoint must restore it
  auto model_c = make_model(8);
  auto opt_c = make_adamw(split_weight_decay(model_c->named_parameters()));
  const auto loaded = load_checkpoint(path("ckpt.pt"), *model_c, opt_c.get());
  ASSERT_EQ(loaded.epoch, 2);
  EXPECT_EQ(loaded.scheduler_state, meta.scheduler_state);
  EXPECT_EQ(loaded.rng_words, meta.rng_words);
  restore_torch_rng_state(loaded.torch_rng_state);
  std::ostringstream words_out;
  for (size_t i = 0; i < loaded.rng_words.size(); ++i)
    words_out << (i ? " " : "") << loaded.rng_words[i];
  std::mt19937_64 rng_c;
  std::istringstream(words_out.str()) >> rng_c;
  for (int e = static_cast<int>(loaded.epoch); e < kEpochs; ++e)
    run_epoch(model_c, *opt_c, e, rng_c);

  const auto want = state_dict(*model_a);
  const auto got = state_dict(*model_c);
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_TRUE(torch::equal(got[i].second, want[i].second)) << want[i].first;
  }
}

TEST_F(CheckpointTest, OtherArchitectureNamesTheKeyAndBothShapes) {
  auto model = make_model(8);
  save_checkpoint(path("ckpt.pt"), *model, nullptr, {});
  auto other = make_model(6);
  try {
    load_checkpoint(path("ckpt.pt"), *other, nullptr);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path("ckpt.pt")), std::string::npos) << msg;
    EXPECT_NE(msg.find("0.weight: expected shape [6,5], got [8,5]"), std::string::npos) << msg;
  }
  // A checkpoint without optimiser state cannot restore an optimiser.
  auto opt = make_adamw(split_weight_decay(model->named_parameters()));
  EXPECT_THROW(load_checkpoint(path("ckpt.pt"), *model, opt.get()), std::runtime_error);
}

TEST_F(CheckpointTest, TruncatedFileFailsClearly) {
  auto model = make_model();
  save_checkpoint(path("ckpt.pt"), *model, nullptr, {});
  const auto size = fs::file_size(path("ckpt.pt"));
  fs::copy_file(path("ckpt.pt"), path("cut.pt"));
  fs::resize_file(path("cut.pt"), size / 2);
  try {
    load_checkpoint(path("cut.pt"), *model, nullptr);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path("cut.pt")), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_checkpoint(path("missing.pt"), *model, nullptr), std::runtime_error);
}

TEST_F(CheckpointTest, FailedWriteLeavesThePreviousCheckpoint) {
  auto model = make_model();
  CheckpointMeta meta;
  meta.epoch = 3;
  save_checkpoint(path("ckpt.pt"), *model, nullptr, meta);
  const auto good_size = fs::file_size(path("ckpt.pt"));
  // The temporary name is taken by a directory: the new file cannot be written.
  fs::create_directories(path("ckpt.pt.tmp"));
  meta.epoch = 4;
  EXPECT_THROW(save_checkpoint(path("ckpt.pt"), *model, nullptr, meta), std::runtime_error);
  EXPECT_EQ(fs::file_size(path("ckpt.pt")), good_size);
  EXPECT_EQ(load_checkpoint(path("ckpt.pt"), *model, nullptr).epoch, 3);
}

}  // namespace
}  // namespace w2p::torch_common
