#include "torch_common/state_dict.hpp"

#include <torch/types.h>

#include <set>
#include <sstream>
#include <stdexcept>

namespace w2p::torch_common {
namespace {

void collect(const torch::nn::Module& module, const std::string& prefix, StateDict& out) {
  for (const auto& item : module.named_parameters(/*recurse=*/false)) {
    if (item.value().defined()) out.emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& item : module.named_buffers(/*recurse=*/false)) {
    if (item.value().defined()) out.emplace_back(prefix + item.key(), item.value());
  }
  for (const auto& child : module.named_children()) {
    collect(*child.value(), prefix + child.key() + ".", out);
  }
}

std::string shape_string(const torch::Tensor& t) {
  std::ostringstream os;
  os << '[';
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? "," : "") << t.size(i);
  os << ']';
  return os.str();
}

}  // namespace

StateDict state_dict(const torch::nn::Module& module) {
  StateDict out;
  collect(module, "", out);
  return out;
}

std::map<std::string, torch::Tensor> to_map(const StateDict& state) {
  return {state.begin(), state.end()};
}

std::map<std::string, torch::Tensor> strip_prefix(const std::map<std::string, torch::Tensor>& state,
                                                  const std::string& prefix) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [key, value] : state) {
    if (key.compare(0, prefix.size(), prefix) == 0) out.emplace(key.substr(prefix.size()), value);
  }
  return out;
}

LoadResult load_state_dict(torch::nn::Module& module,
                           const std::map<std::string, torch::Tensor>& values, bool strict) {
  const StateDict own = state_dict(module);
  LoadResult result;
  std::vector<std::string> mismatched;
  std::set<std::string> own_keys;
  for (const auto& [key, dest] : own) {
    own_keys.insert(key);
    const auto it = values.find(key);
    if (it == values.end()) {
      result.missing_keys.push_back(key);
    } else if (!it->second.defined() || it->second.sizes() != dest.sizes()) {
      mismatched.push_back(key + ": expected shape " + shape_string(dest) + ", got " +
                           (it->second.defined() ? shape_string(it->second) : "undefined"));
    }
  }
  for (const auto& entry : values) {
    if (own_keys.count(entry.first) == 0) result.unexpected_keys.push_back(entry.first);
  }
  const bool key_problems =
      strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty());
  if (!mismatched.empty() || key_problems) {
    std::ostringstream os;
    os << "load_state_dict: state_dict does not fit the module";
    if (!mismatched.empty()) {
      os << "\n  shape mismatches (" << mismatched.size() << "):";
      for (const auto& m : mismatched) os << "\n    " << m;
    }
    if (key_problems && !result.missing_keys.empty()) {
      os << "\n  missing keys (" << result.missing_keys.size() << "):";
      for (const auto& k : result.missing_keys) os << "\n    " << k;
    }
    if (key_problems && !result.unexpected_keys.empty()) {
      os << "\n  unexpected keys (" << result.unexpected_keys.size() << "):";
      for (const auto& k : result.unexpected_keys) os << "\n    " << k;
    }
    throw std::runtime_error(os.str());
  }
  torch::NoGradGuard no_grad;
  for (const auto& [key, dest] : own) {
    const auto it = values.find(key);
    if (it == values.end()) continue;
    auto dest_tensor = dest;  // shallow handle; copy_ writes into the module's storage
    dest_tensor.copy_(it->second.to(dest.device(), dest.scalar_type()));
  }
  return result;
}

StateDict clone_state_dict(const StateDict& state) {
  StateDict out;
  out.reserve(state.size());
  for (const auto& [key, value] : state) out.emplace_back(key, value.detach().clone());
  return out;
}

}  // namespace w2p::torch_common
