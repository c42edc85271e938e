// Weight files: PyTorch's torch.save(model.state_dict()) zip format, and an HDF5 layout.
//
// read_torch_state_dict reads what the reference writes (torch.save of an OrderedDict, zip
// format, PyTorch >= 1.6) with our own reader of the pickle in data.pkl (LibTorch's
// torch::pickle_load turns an OrderedDict into None); write_torch_state_dict writes the same
// layout as torch.save (an OrderedDict of tensors), so Python's torch.load and
// model.load_state_dict accept it. The legacy (non-zip) format is not supported.
// Files are written to `<path>.tmp` and renamed, so a failed write leaves an old file intact.
#pragma once

#include <string>

#include "torch_common/state_dict.hpp"

namespace w2p::torch_common {

/// Reads a torch.save'd state_dict (OrderedDict or plain dict of tensors; CPU tensors in the file's
/// order). Throws std::runtime_error naming the file on anything it cannot read.
StateDict read_torch_state_dict(const std::string& path);

/// Writes `state` as torch.save(OrderedDict) does (contiguous CPU copies of the tensors).
void write_torch_state_dict(const std::string& path, const StateDict& state);

/// Reads the HDF5 layout of the golden fixtures: one dataset per key under `group`
/// (dots kept in the name), ordered by the group's `keys_in_order` attribute (JSON list) when
/// present, else alphabetically. float32/float64/int64 datasets keep their dtype.
StateDict read_hdf5_state_dict(const std::string& path, const std::string& group = "state_dict");

/// Writes `state` in that layout (with `keys_in_order`), replacing the file.
void write_hdf5_state_dict(const std::string& path, const StateDict& state,
                           const std::string& group = "state_dict");

}  // namespace w2p::torch_common
