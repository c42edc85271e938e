#include "support/fixture_h5.hpp"

#include <hdf5.h>

#include <cstdlib>
#include <stdexcept>

namespace w2p::test {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

template <typename T>
hid_t native_type();
template <>
hid_t native_type<float>() {
  return H5T_NATIVE_FLOAT;
}
template <>
hid_t native_type<double>() {
  return H5T_NATIVE_DOUBLE;
}
template <>
hid_t native_type<std::int64_t>() {
  return H5T_NATIVE_INT64;
}
template <>
hid_t native_type<std::int32_t>() {
  return H5T_NATIVE_INT32;
}
template <>
hid_t native_type<std::uint8_t>() {
  return H5T_NATIVE_UINT8;
}

std::vector<std::int64_t> shape_of(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank > 0 ? rank : 0));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

std::string read_string_attr(hid_t attr) {
  const hid_t type = H5Aget_type(attr);
  std::string out;
  if (H5Tis_variable_str(type) > 0) {
    char* value = nullptr;
    const hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5Tget_cset(type));
    if (H5Aread(attr, mem, &value) >= 0 && value != nullptr) out = value;
    if (value != nullptr) H5free_memory(value);
    H5Tclose(mem);
  } else {
    std::vector<char> buf(H5Tget_size(type) + 1, '\0');
    H5Aread(attr, type, buf.data());
    out = buf.data();
  }
  H5Tclose(type);
  return out;
}

}  // namespace

std::string fixture_path(const std::string& relative) {
  const char* env = std::getenv("W2P_FIXTURES");
  const std::string root = env != nullptr && *env != '\0' ? env : W2P_FIXTURES_DIR;
  return root + "/" + relative;
}

H5Reader::H5Reader(const std::string& path) : path_(path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) fail(path, "cannot open HDF5 file (is ../shared/fixtures beside the checkout?)");
}

H5Reader::~H5Reader() {
  if (file_ >= 0) H5Fclose(file_);
}

bool H5Reader::exists(const std::string& name) const {
  return H5Lexists(file_, name.c_str(), H5P_DEFAULT) > 0;
}

std::pair<char, std::size_t> H5Reader::element_type(const std::string& name) const {
  const hid_t ds = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
  if (ds < 0) fail(path_, "no dataset '" + name + "'");
  const hid_t type = H5Dget_type(ds);
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  H5Tclose(type);
  H5Dclose(ds);
  const char kind = cls == H5T_FLOAT     ? 'f'
                    : cls == H5T_INTEGER ? 'i'
                    : cls == H5T_STRING  ? 's'
                                         : '?';
  return {kind, size};
}

template <typename T>
Array<T> H5Reader::read(const std::string& name) const {
  const hid_t ds = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
  if (ds < 0) fail(path_, "no dataset '" + name + "'");
  const hid_t space = H5Dget_space(ds);
  Array<T> out;
  out.shape = shape_of(space);
  std::size_t n = 1;
  for (auto d : out.shape) n *= static_cast<std::size_t>(d);
  out.values.resize(n);
  const herr_t status =
      H5Dread(ds, native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.values.data());
  H5Sclose(space);
  H5Dclose(ds);
  if (status < 0) fail(path_, "cannot read dataset '" + name + "' as the requested type");
  return out;
}

template Array<float> H5Reader::read<float>(const std::string&) const;
template Array<double> H5Reader::read<double>(const std::string&) const;
template Array<std::int64_t> H5Reader::read<std::int64_t>(const std::string&) const;
template Array<std::int32_t> H5Reader::read<std::int32_t>(const std::string&) const;
template Array<std::uint8_t> H5Reader::read<std::uint8_t>(const std::string&) const;

std::vector<std::string> H5Reader::read_strings(const std::string& name) const {
  const hid_t ds = H5Dopen2(file_, name.c_str(), H5P_DEFAULT);
  if (ds < 0) fail(path_, "no dataset '" + name + "'");
  const hid_t type = H5Dget_type(ds);
  const hid_t space = H5Dget_space(ds);
  const auto shape = shape_of(space);
  const std::size_t n = shape.empty() ? 1 : static_cast<std::size_t>(shape[0]);
  std::vector<std::string> out;
  if (H5Tis_variable_str(type) > 0) {
    std::vector<char*> ptrs(n, nullptr);
    const hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_size(mem, H5T_VARIABLE);
    H5Tset_cset(mem, H5Tget_cset(type));
    H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data());
    for (char* p : ptrs) out.emplace_back(p != nullptr ? p : "");
    H5Dvlen_reclaim(mem, space, H5P_DEFAULT, ptrs.data());
    H5Tclose(mem);
  } else {
    const std::size_t size = H5Tget_size(type);
    std::vector<char> buf(n * size);
    H5Dread(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
    for (std::size_t i = 0; i < n; ++i) {
      const char* begin = buf.data() + i * size;
      std::size_t len = 0;
      while (len < size && begin[len] != '\0') ++len;
      out.emplace_back(begin, len);
    }
  }
  H5Sclose(space);
  H5Tclose(type);
  H5Dclose(ds);
  return out;
}

std::vector<std::string> H5Reader::list(const std::string& group) const {
  const hid_t g = H5Gopen2(file_, group.c_str(), H5P_DEFAULT);
  if (g < 0) fail(path_, "no group '" + group + "'");
  H5G_info_t info;
  H5Gget_info(g, &info);
  std::vector<std::string> out;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len =
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    std::string name(static_cast<std::size_t>(len), '\0');
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1,
                       H5P_DEFAULT);
    out.push_back(name);
  }
  H5Gclose(g);
  return out;
}

double H5Reader::attr_double(const std::string& object, const std::string& attr) const {
  const hid_t a = H5Aopen_by_name(file_, object.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) fail(path_, "no attribute '" + attr + "' on '" + object + "'");
  double value = 0.0;
  const herr_t status = H5Aread(a, H5T_NATIVE_DOUBLE, &value);
  H5Aclose(a);
  if (status < 0) fail(path_, "attribute '" + attr + "' on '" + object + "' is not numeric");
  return value;
}

std::string H5Reader::attr_string(const std::string& object, const std::string& attr) const {
  const hid_t a = H5Aopen_by_name(file_, object.c_str(), attr.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) fail(path_, "no attribute '" + attr + "' on '" + object + "'");
  std::string value = read_string_attr(a);
  H5Aclose(a);
  return value;
}

}  // namespace w2p::test
