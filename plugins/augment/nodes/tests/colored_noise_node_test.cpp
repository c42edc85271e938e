// Node-level tests of augment.colored_noise: tiny pipelines through the built w2p-run
// (core.tensor_source items [7, 16000]), stores read back with the HDF5 C API.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <w2p/rng.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "support/fixture_h5.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using w2p::test::H5Reader;

namespace {

struct Output {
  int code = -1;
  std::string text;
};

Output shell(const std::string& command) {
  const auto r = w2p::test::run_command(command + " 2>&1");
  return Output{r.exit_code, r.output};
}

constexpr int kItems = 4;
constexpr int kSeed = 5;

std::string pipeline(const std::string& options) {
  return "graph: {seed: " + std::to_string(kSeed) +
         ", max_in_flight: 8}\n"
         "channels: {noisy: {store: noisy.h5}}\n"
         "nodes:\n"
         "  - {name: src, type: core.tensor_source, options: {count: " +
         std::to_string(kItems) +
         ", shape: [7, 16000], field: audio, fill: normal}, outputs: {out: clean}}\n"
         "  - {name: noise, type: augment.colored_noise, options: " +
         options +
         ", inputs: {in: clean}, outputs: {out: noisy}}\n"
         "  - {name: sink, type: core.null_sink, inputs: {in: noisy}}\n";
}

class ColoredNoiseNode : public ::testing::Test {
 protected:
  Output run(const std::string& yaml, const std::string& run_dir, const std::string& extra = "") {
    const fs::path file = dir_ / (run_dir + ".yaml");
    std::ofstream(file) << yaml;
    return shell(std::string("'") + W2P_RUN_EXE + "' --quiet --plugin-path '" + W2P_PLUGIN_DIR +
                 "' --run-dir '" + (dir_ / run_dir).string() + "' " + extra + " '" + file.string() +
                 "'");
  }
  H5Reader noisy(const std::string& run_dir) {
    return H5Reader((dir_ / run_dir / "noisy.h5").string());
  }
  w2p::test::ScratchDir scratch_;
  const fs::path& dir_ = scratch_.path();
};

double rms(const float* x, int n) {
  double s = 0;
  for (int t = 0; t < n; ++t) s += static_cast<double>(x[t]) * x[t];
  return std::sqrt(s / n);
}

TEST_F(ColoredNoiseNode, EachRowGetsItsDrawnSnrFromThePerItemGenerator) {
  const Output out = run(pipeline("{out_field: noisy}"), "run");
  ASSERT_EQ(out.code, 0) << out.text;
  const H5Reader store = noisy("run");
  const auto clean = store.read<float>("audio");
  const auto with_noise = store.read<float>("noisy");
  ASSERT_EQ(with_noise.shape, (std::vector<std::int64_t>{kItems, 7, 16000}));
  for (int k = 0; k < kItems; ++k) {
    // The node draws, per item, every row's SNR first from rng(seed, node, epoch, index).
    w2p::Rng rng = w2p::Rng::for_item(kSeed, "noise", 0, static_cast<std::uint64_t>(k));
    std::uniform_real_distribution<float> snr(0.0f, 30.0f);
    for (int r = 0; r < 7; ++r) {
      const float* x = clean.values.data() + (k * 7 + r) * 16000;
      const float* y = with_noise.values.data() + (k * 7 + r) * 16000;
      std::vector<float> noise(16000);
      for (int t = 0; t < 16000; ++t) noise[t] = y[t] - x[t];
      const double measured = 20 * std::log10(rms(x, 16000) / rms(noise.data(), 16000));
      EXPECT_NEAR(measured, snr(rng), 0.01) << "item " << k << " row " << r;
    }
  }
}

TEST_F(ColoredNoiseNode, IdenticalWithOneAndTwoThreads) {
  const Output one = run(pipeline("{}"), "one", "--threads 1");
  ASSERT_EQ(one.code, 0) << one.text;
  const Output two = run(pipeline("{}"), "two", "--threads 2");
  ASSERT_EQ(two.code, 0) << two.text;
  EXPECT_EQ(noisy("one").read<float>("audio").values, noisy("two").read<float>("audio").values);
}

TEST_F(ColoredNoiseNode, DisabledPassesItemsThrough) {
  const Output out = run(pipeline("{enabled: false, out_field: noisy}"), "run");
  ASSERT_EQ(out.code, 0) << out.text;
  const H5Reader store = noisy("run");
  EXPECT_EQ(store.read<float>("audio").values, store.read<float>("noisy").values);
}

TEST_F(ColoredNoiseNode, BadOptionsAreReported) {
  const Output out = run(pipeline("{snr_db: [30, 0]}"), "run", "--check");
  EXPECT_EQ(out.code, 2) << out.text;
  EXPECT_NE(out.text.find("option 'snr_db'"), std::string::npos) << out.text;
}

}  // namespace
