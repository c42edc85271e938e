#include "support/torch_fixture.hpp"

#include <stdexcept>
#include <vector>

namespace w2p::test {
namespace {

template <typename T>
torch::Tensor to_tensor(const Array<T>& array, torch::Dtype dtype) {
  return torch::from_blob(const_cast<T*>(array.values.data()),
                          std::vector<std::int64_t>(array.shape.begin(), array.shape.end()),
                          torch::TensorOptions().dtype(dtype))
      .clone();
}

}  // namespace

torch::Tensor read_tensor(const H5Reader& file, const std::string& name) {
  const auto [kind, size] = file.element_type(name);
  if (kind == 'i') return to_tensor(file.read<std::int64_t>(name), torch::kInt64);
  if (kind == 'f' && size == 8) return to_tensor(file.read<double>(name), torch::kFloat64);
  if (kind == 'f') return to_tensor(file.read<float>(name), torch::kFloat32);
  throw std::runtime_error(file.path() + ": dataset '" + name + "' is not numeric");
}

std::map<std::string, torch::Tensor> read_tensor_group(const H5Reader& file,
                                                       const std::string& group) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& key : file.list(group)) out.emplace(key, read_tensor(file, group + "/" + key));
  return out;
}

}  // namespace w2p::test
