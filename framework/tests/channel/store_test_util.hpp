// Helpers shared by the channel store tests: scratch directories, reading datasets with the
// HDF5 C API (independently of the store's own reader) and running h5py.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "w2p/hdf5_lock.hpp"

namespace w2p::test {

/// A fresh directory per test, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("w2p_channel_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" +
             info->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Every string of a variable-length string dataset of any rank, row-major, read with the
/// plain HDF5 C API.
inline std::vector<std::string> read_vlen_strings(const std::string& file,
                                                  const std::string& dataset) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  std::vector<std::string> out;
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  EXPECT_GE(f, 0) << file;
  if (f < 0) return out;
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  EXPECT_GE(d, 0) << dataset;
  if (d >= 0) {
    const hid_t type = H5Dget_type(d);
    EXPECT_EQ(H5Tget_class(type), H5T_STRING);
    EXPECT_GT(H5Tis_variable_str(type), 0) << dataset << " is not variable-length";
    EXPECT_EQ(H5Tget_cset(type), H5T_CSET_UTF8) << dataset << " is not UTF-8";
    const hid_t space = H5Dget_space(d);
    const hssize_t n = H5Sget_simple_extent_npoints(space);
    std::vector<char*> ptrs(static_cast<std::size_t>(n), nullptr);
    const hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5T_CSET_UTF8);
    if (n > 0) {
      EXPECT_GE(H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), 0);
      for (char* p : ptrs) out.emplace_back(p != nullptr ? p : "");
      H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
    }
    H5Tclose(mem);
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(d);
  }
  H5Fclose(f);
  return out;
}

/// A python3 that can import h5py ("" when none: those checks are skipped).
inline std::string python_with_h5py() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("W2P_PYTHON")) candidates.emplace_back(env);
  candidates.insert(candidates.end(), {"/usr/bin/python3", "python3"});
  for (const auto& py : candidates) {
    const std::string cmd = py + " -c 'import h5py' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return "";
}

/// Runs a python script (with h5py) on `file`; returns its exit status (0 = every assert held).
inline int run_h5py(const std::string& python, const std::string& script_path,
                    const std::string& script, const std::string& file) {
  {
    std::ofstream out(script_path);
    out << script;
  }
  const std::string cmd = python + " " + script_path + " " + file;
  return std::system(cmd.c_str());
}

}  // namespace w2p::test
