// TrainingFiles (checkpoint names, the last checkpoint, the log kept on resume),
// TrainerCheckpoints' reading of that log, and TrainingProgress (step counts and ETA of the
// trainers' status line).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "support/process.hpp"
#include "torch_common/trainer_checkpoints.hpp"
#include "torch_common/training_files.hpp"
#include "torch_common/training_progress.hpp"

namespace fs = std::filesystem;
using w2p::torch_common::TrainerCheckpoints;
using w2p::torch_common::TrainingFiles;
using w2p::torch_common::TrainingProgress;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(TrainingFiles, FindsTheHighestNumberedCheckpointOfItsPrefixOnly) {
  w2p::test::ScratchDir dir;
  const TrainingFiles files(dir.path().string(), "w2p.v1");
  EXPECT_EQ(files.last_checkpoint().first, 0);
  EXPECT_EQ(files.checkpoint_path(7), (dir.path() / "w2p.v1_epoch007.pt").string());
  for (const char* name : {"w2p.v1_epoch002.pt", "w2p.v1_epoch010.pt", "w2p.v1_epoch009.pt",
                           "w2pXv1_epoch099.pt", "other_epoch050.pt", "w2p.v1_epoch011.pt.tmp"}) {
    std::ofstream(dir.path() / name) << "x";
  }
  const auto [epoch, path] = files.last_checkpoint();
  EXPECT_EQ(epoch, 10);  // the '.' is literal; .tmp files are not checkpoints
  EXPECT_EQ(path, (dir.path() / "w2p.v1_epoch010.pt").string());
}

TEST(TrainingFiles, OpenLogKeepsTheCheckpointedEpochsOnResume) {
  w2p::test::ScratchDir dir;
  const TrainingFiles files(dir.path().string(), "t");
  EXPECT_TRUE(files.open_log("epoch,loss", 0).empty());
  files.append_log("1,0.5");
  files.append_log("2,0.25");
  files.append_log("3,0.125");
  std::ofstream(files.log_path(), std::ios::app) << "4,0.0";  // a torn last line
  const auto kept = files.open_log("epoch,loss", 2);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[1], "2,0.25");
  EXPECT_EQ(read(files.log_path()), "epoch,loss\n1,0.5\n2,0.25\n");
  EXPECT_EQ(files.open_log("epoch,loss", 0).size(), 0u);
  EXPECT_EQ(read(files.log_path()), "epoch,loss\n");
}

TEST(TrainerCheckpoints, ResumedLogGivesTheLastKeptEpochsLossStepsAndStepTime) {
  w2p::test::ScratchDir dir;
  const std::string header = "epoch,loss,lr,steps,ms_per_step,val_loss";
  TrainerCheckpoints checkpoints(dir.path().string(), "t");
  EXPECT_EQ(checkpoints.open_log(header, 0).steps, 0);  // a fresh log
  checkpoints.append_log("1,2.5,0,137,12763.3,");
  checkpoints.append_log("2,1.25,0.0002,137,12000,0.9");
  checkpoints.append_log("3,1.0,0.0004,137,11000,0.8");
  const auto last = checkpoints.open_log(header, 2);
  EXPECT_DOUBLE_EQ(last.loss, 1.25);
  EXPECT_EQ(last.steps, 137);
  EXPECT_DOUBLE_EQ(last.ms_per_step, 12000);
}

TEST(TrainingProgress, ResumedRunShowsTheEtaFromItsFirstStep) {
  TrainingProgress p(3);
  p.resume(4, 2.0);  // the log's last epoch: 4 steps of 2 s
  p.step(1, 2.0);
  EXPECT_EQ(p.text(), "epoch 2/3 step 1/4 ETA 14s");
}

TEST(TrainingProgress, EstimatesTheTimeLeftFromTheStepsOfAFinishedEpoch) {
  TrainingProgress p(3);
  p.step(0, 2.0);
  EXPECT_EQ(p.text(), "epoch 1/3 step 1");  // no epoch seen yet: no total, no ETA
  for (int i = 0; i < 3; ++i) p.step(0, 2.0);
  p.end_epoch();
  p.step(1, 2.0);
  // 4 steps per epoch, 2 s each: 3 left in epoch 2 and 4 in epoch 3 = 14 s.
  EXPECT_EQ(p.text(), "epoch 2/3 step 1/4 ETA 14s");
  EXPECT_EQ(TrainingProgress::duration(59.6), "1m00s");
  EXPECT_EQ(TrainingProgress::duration(3725), "1h02m");
  EXPECT_EQ(TrainingProgress::duration(2 * 86400 + 7 * 3600), "2d07h");
}

}  // namespace
