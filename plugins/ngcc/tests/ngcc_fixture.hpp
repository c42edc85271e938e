// The NGCC-PHAT of ngcc_pretrain.h5 (the reference's weights) for the ngcc tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "ngcc/model/ngcc_phat.hpp"
#include "support/torch_fixture.hpp"
#include "torch_common/state_dict.hpp"
#include "torch_common/tests/reference_fixtures.hpp"
#include "torch_common/weights_io.hpp"

namespace w2p::ngcc::test {

// One intra-op thread: the tests share a few cores with other jobs, where LibTorch's spinning
// worker threads cost far more than they bring; no result depends on the thread count.
struct SingleThreadEnvironment : ::testing::Environment {
  void SetUp() override { torch::set_num_threads(1); }
};
inline ::testing::Environment* const kSingleThread =
    ::testing::AddGlobalTestEnvironment(new SingleThreadEnvironment);

inline std::string pretrain_file() { return w2p::test::reference_fixture("ngcc_pretrain.h5"); }

/// masked_NGCCPHAT with the fixture's state_dict loaded (strict: every key must match).
inline MaskedNgccPhat load_reference_model(const NgccPhatConfig& config = {}) {
  MaskedNgccPhat model(config);
  torch_common::load_state_dict(
      *model, torch_common::to_map(torch_common::read_hdf5_state_dict(pretrain_file())));
  return model;
}

}  // namespace w2p::ngcc::test
