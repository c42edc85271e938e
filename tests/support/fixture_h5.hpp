// Read-only access to the golden HDF5 fixtures (../shared/fixtures) for tests.
//
// The fixtures are written by h5py; every numeric dataset is converted by HDF5 to the element
// type the test asks for, so a test can read float32 data as double for comparisons.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace w2p::test {

/// Absolute path of a fixture file, e.g. fixture_path("reference/gcc_phat.h5").
/// The root is $W2P_FIXTURES if set, else the build's W2P_FIXTURES_DIR (../shared/fixtures).
std::string fixture_path(const std::string& relative);

/// A dataset read into memory: row-major values and the shape (empty for a scalar).
template <typename T>
struct Array {
  std::vector<std::int64_t> shape;
  std::vector<T> values;
  std::int64_t numel() const { return static_cast<std::int64_t>(values.size()); }
};

/// An open HDF5 file. Throws std::runtime_error naming the file and dataset on failure.
class H5Reader {
 public:
  explicit H5Reader(const std::string& path);
  ~H5Reader();
  H5Reader(const H5Reader&) = delete;
  H5Reader& operator=(const H5Reader&) = delete;

  bool exists(const std::string& name) const;
  /// Stored element type of a dataset: 'f' float, 'i' integer, 's' string; with its byte size.
  std::pair<char, std::size_t> element_type(const std::string& name) const;
  /// Numeric dataset converted to T (float, double, int64_t, int32_t).
  template <typename T>
  Array<T> read(const std::string& name) const;
  /// Variable- or fixed-length string dataset (1-D).
  std::vector<std::string> read_strings(const std::string& name) const;
  /// Names of the members of a group, in HDF5's (alphabetical) order.
  std::vector<std::string> list(const std::string& group) const;
  /// Attribute of an object ("/" for the file): numeric as double, or as a string.
  double attr_double(const std::string& object, const std::string& attr) const;
  std::string attr_string(const std::string& object, const std::string& attr) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::int64_t file_ = -1;
};

}  // namespace w2p::test
