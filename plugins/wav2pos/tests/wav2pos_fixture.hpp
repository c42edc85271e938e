// The wav2pos reference fixture (wav2pos.h5) for the wav2pos tests: the file, its tensors and a
// model holding the reference's weights.
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>

#include <string>

#include "support/torch_fixture.hpp"
#include "torch_common/state_dict.hpp"
#include "torch_common/tests/reference_fixtures.hpp"
#include "torch_common/weights_io.hpp"
#include "wav2pos/model/wav2pos.hpp"

namespace w2p::wav2pos::test {

// One intra-op thread: the tests share a few cores with other jobs, where LibTorch's spinning
// worker threads cost far more than they bring; no result depends on the thread count.
struct SingleThreadEnvironment : ::testing::Environment {
  void SetUp() override { torch::set_num_threads(1); }
};
inline ::testing::Environment* const kSingleThread =
    ::testing::AddGlobalTestEnvironment(new SingleThreadEnvironment);

/// $W2P_REFERENCE_FIXTURES/wav2pos.h5 (default ../shared/fixtures/reference).
inline std::string reference_file() { return w2p::test::reference_fixture("wav2pos.h5"); }

/// The open fixture file (opened once per test binary).
inline const w2p::test::H5Reader& reference() {
  static const w2p::test::H5Reader file(reference_file());
  return file;
}

/// A dataset of the fixture as a tensor (stored dtype and shape).
inline torch::Tensor read(const std::string& name) {
  return w2p::test::read_tensor(reference(), name);
}

/// wav2pos with the fixture's state_dict loaded (strict: every key and shape must match).
inline Wav2Pos load_reference_model(const Wav2PosConfig& config = {}) {
  Wav2Pos model(config);
  torch_common::load_state_dict(
      *model, torch_common::to_map(torch_common::read_hdf5_state_dict(reference_file())));
  return model;
}

}  // namespace w2p::wav2pos::test
