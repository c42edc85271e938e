#include "torch_common/weights_io.hpp"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "support/torch_fixture.hpp"
#include "torch_common/tests/reference_fixtures.hpp"

namespace w2p::torch_common {
namespace {

namespace fs = std::filesystem;

class WeightsIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("w2p_weights_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// Every dtype and layout the writer must handle: float32/float64/int64, a scalar, an empty
// tensor, a non-contiguous view (written as a contiguous copy).
StateDict sample_state() {
  torch::manual_seed(5);
  const auto base = torch::randn({4, 6});
  return {{"enc.weight", torch::randn({3, 2, 5})},
          {"enc.bias", torch::randn({3}, torch::kFloat64)},
          {"bn.num_batches_tracked", torch::tensor(int64_t{1234567890123})},
          {"empty", torch::zeros({0, 3})},
          {"transposed", base.t()},
          {"column", base.select(1, 2)}};
}

void expect_same(const StateDict& got, const StateDict& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_EQ(got[i].second.scalar_type(), want[i].second.scalar_type()) << want[i].first;
    EXPECT_TRUE(torch::equal(got[i].second, want[i].second)) << want[i].first;
  }
}

std::vector<char> file_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_F(WeightsIoTest, TorchZipRoundTrip) {
  const auto state = sample_state();
  write_torch_state_dict(path("w.pt"), state);
  EXPECT_FALSE(fs::exists(path("w.pt.tmp")));
  expect_same(read_torch_state_dict(path("w.pt")), state);
}

TEST_F(WeightsIoTest, BrokenFilesFailNamingThePath) {
  write_torch_state_dict(path("w.pt"), sample_state());
  fs::copy_file(path("w.pt"), path("cut.pt"));
  fs::resize_file(path("cut.pt"), fs::file_size(path("w.pt")) / 2);
  std::ofstream(path("text.pt")) << "not a zip file";
  for (const std::string name : {"cut.pt", "text.pt", "missing.pt"}) {
    try {
      read_torch_state_dict(path(name));
      FAIL() << name << ": expected an error";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path(name)), std::string::npos) << e.what();
    }
  }
}

// Why the reader is ours: LibTorch's own torch::pickle_load does not return the state_dict of a
// torch.save file (it maps collections.OrderedDict to None, which then cannot take the items).
// If a LibTorch version starts returning a dict here, switch to it.
TEST_F(WeightsIoTest, LibTorchPickleLoadCannotReadAStateDict) {
  write_torch_state_dict(path("w.pt"), sample_state());
  bool got_dict = false;
  std::string outcome = "returned a non-dict";
  try {
    got_dict = torch::jit::pickle_load(file_bytes(path("w.pt"))).isGenericDict();
  } catch (const c10::Error& e) {
    outcome = std::string("threw: ") + e.what_without_backtrace();
  }
  std::printf("[ info ] torch::jit::pickle_load on a state_dict file %s\n",
              outcome.substr(0, 160).c_str());
  EXPECT_FALSE(got_dict);
}

#ifdef W2P_PYTHON3
// The stream Python's own pickler writes for torch.save (script: stand-ins for the torch globals,
// see fake_torch_save.py; no torch needed). Checks memo opcodes, BUILD of _metadata, shared
// storages with offsets and strides, SETITEMS batches, and that Python's unpickler accepts ours.
int run_python(const std::string& args) {
  const std::string cmd = std::string(W2P_PYTHON3) + " " + W2P_FAKE_TORCH_SAVE + " " + args;
  return std::system(cmd.c_str());
}

TEST_F(WeightsIoTest, ReadsWhatPythonsPicklerWrites) {
  ASSERT_EQ(run_python("make " + path("py.pt")), 0);
  const auto state = read_torch_state_dict(path("py.pt"));
  ASSERT_EQ(state.size(), 5U + 1100U);
  const auto weight = torch::arange(6, torch::kFloat32).view({2, 3});
  EXPECT_EQ(state[0].first, "layer.weight");
  EXPECT_TRUE(torch::equal(state[0].second, weight));
  EXPECT_TRUE(torch::equal(state[1].second, weight.select(1, 2)));  // offset 2, stride 3
  EXPECT_TRUE(torch::equal(state[2].second, weight.t()));
  EXPECT_TRUE(torch::equal(state[3].second, torch::tensor({0.1, -2.5}, torch::kFloat64)));
  EXPECT_EQ(state[4].first, "bn.num_batches_tracked");
  EXPECT_EQ(state[4].second.dim(), 0);
  EXPECT_EQ(state[4].second.item<int64_t>(), 1234567890123);
  EXPECT_EQ(state.back().first, "pad.1099");
  EXPECT_EQ(state.back().second.item<int>(), 1099);
}

TEST_F(WeightsIoTest, PythonsUnpicklerReadsWhatWeWrite) {
  const auto state = sample_state();
  write_torch_state_dict(path("ours.pt"), state);
  ASSERT_EQ(run_python("roundtrip " + path("ours.pt") + " " + path("back.pt")), 0);
  expect_same(read_torch_state_dict(path("back.pt")), state);
}
#endif

TEST_F(WeightsIoTest, ReadsTheFixtureHdf5Layout) {
  const auto file = test::reference_fixture("ngcc_pretrain.h5");
  const auto state = read_hdf5_state_dict(file);
  ASSERT_EQ(state.size(), 51U);  // param-names.txt, section ngcc_pretrain
  // keys_in_order gives PyTorch's order (not HDF5's alphabetical one).
  EXPECT_EQ(state.front().first, "ngcc.backbone.conv.0.low_hz_");
  EXPECT_EQ(state[8].first, "ngcc.backbone.bn.0.weight");
  EXPECT_EQ(state.back().first, "ngcc.final_conv.bias");
  const test::H5Reader reader(file);
  const auto want = test::read_tensor_group(reader, "state_dict");
  for (const auto& [key, tensor] : state) {
    ASSERT_EQ(want.count(key), 1U) << key;
    EXPECT_EQ(tensor.scalar_type(), want.at(key).scalar_type()) << key;
    EXPECT_TRUE(torch::equal(tensor, want.at(key))) << key;
  }
  EXPECT_EQ(to_map(state).at("ngcc.backbone.bn.0.num_batches_tracked").scalar_type(),
            torch::kInt64);
}

TEST_F(WeightsIoTest, Hdf5RoundTripKeepsOrderAndDtypes) {
  auto state = sample_state();
  write_hdf5_state_dict(path("w.h5"), state);
  expect_same(read_hdf5_state_dict(path("w.h5")), state);
  EXPECT_THROW(read_hdf5_state_dict(path("w.h5"), "no_such_group"), std::runtime_error);
  EXPECT_THROW(read_hdf5_state_dict(path("missing.h5")), std::runtime_error);
}

}  // namespace
}  // namespace w2p::torch_common
