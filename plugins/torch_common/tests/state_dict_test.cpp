#include "torch_common/state_dict.hpp"

#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace w2p::torch_common {
namespace {

// A module with own parameters, own buffers and nested children, like the reference models.
struct ToyImpl : torch::nn::Module {
  ToyImpl() {
    token = register_parameter("token", torch::randn({1, 1, 4}));
    body = register_module(
        "body", torch::nn::Sequential(torch::nn::Linear(4, 3), torch::nn::BatchNorm1d(3)));
    scale = register_buffer("scale", torch::ones({3}));
    head = register_module("head", torch::nn::Linear(3, 2));
  }
  torch::Tensor token, scale;
  torch::nn::Sequential body{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Toy);

std::vector<std::string> keys(const StateDict& state) {
  std::vector<std::string> out;
  for (const auto& entry : state) out.push_back(entry.first);
  return out;
}

TEST(StateDict, KeysFollowPyTorchOrder) {
  Toy toy;
  // PyTorch: own parameters, own buffers, then the children in registration order.
  const std::vector<std::string> want = {"token",
                                         "scale",
                                         "body.0.weight",
                                         "body.0.bias",
                                         "body.1.weight",
                                         "body.1.bias",
                                         "body.1.running_mean",
                                         "body.1.running_var",
                                         "body.1.num_batches_tracked",
                                         "head.weight",
                                         "head.bias"};
  EXPECT_EQ(keys(state_dict(*toy)), want);
  // Entries alias the module's tensors.
  EXPECT_TRUE(state_dict(*toy).front().second.is_same(toy->token));
}

TEST(StateDict, LoadCopiesValuesAndConvertsDtype) {
  Toy source, dest;
  auto values = to_map(clone_state_dict(state_dict(*source)));
  values["head.weight"] = values["head.weight"].to(torch::kFloat64);  // converted on load
  const auto result = load_state_dict(*dest, values);
  EXPECT_TRUE(result.missing_keys.empty());
  EXPECT_TRUE(result.unexpected_keys.empty());
  for (const auto& [key, tensor] : state_dict(*dest)) {
    EXPECT_TRUE(torch::equal(tensor, to_map(state_dict(*source)).at(key))) << key;
  }
  EXPECT_EQ(dest->head->weight.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(dest->head->weight.requires_grad());  // still the module's parameter
}

TEST(StateDict, StrictLoadNamesMissingAndUnexpectedKeysAndCopiesNothing) {
  Toy source, dest;
  const auto before = clone_state_dict(state_dict(*dest));
  auto values = to_map(state_dict(*source));
  values.erase("head.bias");
  values["head.extra"] = torch::zeros({2});
  try {
    load_state_dict(*dest, values);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing keys (1)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("head.bias"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected keys (1)"), std::string::npos) << msg;
    EXPECT_NE(msg.find("head.extra"), std::string::npos) << msg;
  }
  const auto after = state_dict(*dest);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(torch::equal(after[i].second, before[i].second)) << after[i].first;
  }
  // Non-strict: the matching keys are copied, the rest reported.
  const auto result = load_state_dict(*dest, values, /*strict=*/false);
  EXPECT_EQ(result.missing_keys, std::vector<std::string>{"head.bias"});
  EXPECT_EQ(result.unexpected_keys, std::vector<std::string>{"head.extra"});
  EXPECT_TRUE(torch::equal(dest->head->weight, source->head->weight));
}

TEST(StateDict, ShapeMismatchNamesKeyAndBothShapesEvenWhenNotStrict) {
  Toy dest;
  auto values = to_map(clone_state_dict(state_dict(*dest)));
  values["body.0.weight"] = torch::zeros({5, 4});
  for (const bool strict : {true, false}) {
    try {
      load_state_dict(*dest, values, strict);
      FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("body.0.weight: expected shape [3,4], got [5,4]"), std::string::npos)
          << msg;
    }
  }
}

TEST(StateDict, StripPrefixKeepsOnlyThatSubtree) {
  Toy toy;
  const auto sub = strip_prefix(to_map(state_dict(*toy)), "body.");
  EXPECT_EQ(sub.size(), 7U);
  EXPECT_TRUE(sub.at("0.weight").is_same(toy->body[0]->as<torch::nn::Linear>()->weight));
  // Loads into the child module directly.
  torch::nn::Sequential other(torch::nn::Linear(4, 3), torch::nn::BatchNorm1d(3));
  load_state_dict(*other, sub);
  EXPECT_TRUE(torch::equal(other[0]->as<torch::nn::Linear>()->weight,
                           toy->body[0]->as<torch::nn::Linear>()->weight));
}

TEST(StateDict, CloneIsDeep) {
  Toy toy;
  const auto copy = clone_state_dict(state_dict(*toy));
  {
    torch::NoGradGuard no_grad;
    toy->token.add_(1.0);
  }
  EXPECT_FALSE(torch::equal(copy.front().second, toy->token));
  EXPECT_FALSE(copy.front().second.requires_grad());
}

}  // namespace
}  // namespace w2p::torch_common
