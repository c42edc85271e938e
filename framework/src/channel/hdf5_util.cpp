#include "channel/hdf5_util.hpp"

#include <cstdio>

namespace w2p::h5 {
namespace {

herr_t collect_error(unsigned /*n*/, const H5E_error2_t* error, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (!out->empty()) *out += "\n";
  *out += std::string("  ") + (error->func_name != nullptr ? error->func_name : "?") + ": " +
          (error->desc != nullptr ? error->desc : "");
  return 0;
}

Hid open_attr(hid_t object, const std::string& name) {
  return attr_id(H5Aopen(object, name.c_str(), H5P_DEFAULT));
}

// Reads a string-class attribute (scalar or 1-D, variable or fixed length).
std::optional<std::vector<std::string>> read_strings(hid_t attr) {
  Hid type = type_id(H5Aget_type(attr));
  Hid space = space_id(H5Aget_space(attr));
  if (!type.valid() || !space.valid() || H5Tget_class(type.get()) != H5T_STRING) return {};
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) return {};
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.get()) > 0) {
    Hid mem = value_type(DType::kStr);
    std::vector<char*> raw(static_cast<std::size_t>(n), nullptr);
    if (n > 0 && H5Aread(attr, mem.get(), raw.data()) < 0) return {};
    for (char* s : raw) out.emplace_back(s != nullptr ? s : "");
    reclaim_strings(mem.get(), space.get(), raw);
  } else {
    const std::size_t width = H5Tget_size(type.get());
    std::vector<char> buf(width * static_cast<std::size_t>(n) + 1, '\0');
    if (n > 0 && H5Aread(attr, type.get(), buf.data()) < 0) return {};
    for (hssize_t i = 0; i < n; ++i) {
      const char* p = buf.data() + static_cast<std::size_t>(i) * width;
      std::size_t len = 0;
      while (len < width && p[len] != '\0') ++len;
      out.emplace_back(p, len);
    }
  }
  return out;
}

}  // namespace

void quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string error_stack() {
  std::string out;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &out);
  return out.empty() ? out : "HDF5 error stack:\n" + out;
}

void fail(const std::string& file, const std::string& what) {
  std::string detail;
  {
    Lock lock(hdf5_mutex());
    detail = error_stack();
  }
  throw Error(ErrorKind::kIo, file + ": " + what, detail);
}

Hid value_type(DType dtype) {
  hid_t base = -1;
  switch (dtype) {
    case DType::kF32:
      base = H5T_NATIVE_FLOAT;
      break;
    case DType::kF64:
      base = H5T_NATIVE_DOUBLE;
      break;
    case DType::kI32:
      base = H5T_NATIVE_INT32;
      break;
    case DType::kI64:
      base = H5T_NATIVE_INT64;
      break;
    case DType::kU8:
    case DType::kBool:
      base = H5T_NATIVE_UINT8;
      break;
    case DType::kStr: {
      Hid t = type_id(H5Tcopy(H5T_C_S1));
      H5Tset_size(t.get(), H5T_VARIABLE);
      H5Tset_cset(t.get(), H5T_CSET_UTF8);
      return t;
    }
  }
  return type_id(H5Tcopy(base));
}

bool has_attr(hid_t object, const std::string& name) { return H5Aexists(object, name.c_str()) > 0; }

void write_string_attr(hid_t object, const std::string& name, const std::string& value) {
  // Delete and recreate: a variable-length value cannot be resized in place.
  if (has_attr(object, name)) H5Adelete(object, name.c_str());
  Hid type = value_type(DType::kStr);
  Hid space = space_id(H5Screate(H5S_SCALAR));
  Hid attr =
      attr_id(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  const char* p = value.c_str();
  if (!attr.valid() || H5Awrite(attr.get(), type.get(), &p) < 0)
    throw Error(ErrorKind::kIo, "cannot write attribute '" + name + "'", error_stack());
}

void write_int_attr(hid_t object, const std::string& name, std::int64_t value) {
  // Rewritten in place when it exists: the object header does not move.
  Hid attr;
  if (has_attr(object, name)) {
    attr = open_attr(object, name);
  } else {
    Hid space = space_id(H5Screate(H5S_SCALAR));
    attr = attr_id(
        H5Acreate2(object, name.c_str(), H5T_NATIVE_INT64, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  }
  if (!attr.valid() || H5Awrite(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    throw Error(ErrorKind::kIo, "cannot write attribute '" + name + "'", error_stack());
}

void write_string_list_attr(hid_t object, const std::string& name,
                            const std::vector<std::string>& values) {
  if (has_attr(object, name)) H5Adelete(object, name.c_str());
  Hid type = value_type(DType::kStr);
  const hsize_t n = values.size();
  Hid space = space_id(H5Screate_simple(1, &n, nullptr));
  Hid attr =
      attr_id(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  if (!attr.valid() || (n > 0 && H5Awrite(attr.get(), type.get(), ptrs.data()) < 0))
    throw Error(ErrorKind::kIo, "cannot write attribute '" + name + "'", error_stack());
}

std::optional<std::string> read_attr_text(hid_t object, const std::string& name) {
  if (!has_attr(object, name)) return {};
  Hid attr = open_attr(object, name);
  if (!attr.valid()) return {};
  Hid type = type_id(H5Aget_type(attr.get()));
  Hid space = space_id(H5Aget_space(attr.get()));
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls == H5T_STRING) {
    auto list = read_strings(attr.get());
    if (!list) return {};
    std::string out;
    for (std::size_t i = 0; i < list->size(); ++i) out += (i > 0 ? ", " : "") + (*list)[i];
    return out;
  }
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) return {};
  std::string out;
  if (cls == H5T_INTEGER) {
    std::vector<std::int64_t> v(static_cast<std::size_t>(n));
    if (n > 0 && H5Aread(attr.get(), H5T_NATIVE_INT64, v.data()) < 0) return {};
    for (std::size_t i = 0; i < v.size(); ++i) out += (i > 0 ? ", " : "") + std::to_string(v[i]);
    return out;
  }
  if (cls == H5T_FLOAT) {
    std::vector<double> v(static_cast<std::size_t>(n));
    if (n > 0 && H5Aread(attr.get(), H5T_NATIVE_DOUBLE, v.data()) < 0) return {};
    for (std::size_t i = 0; i < v.size(); ++i) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", v[i]);
      out += (i > 0 ? ", " : "") + std::string(buf);
    }
    return out;
  }
  return {};
}

std::optional<std::int64_t> read_int_attr(hid_t object, const std::string& name) {
  if (!has_attr(object, name)) return {};
  Hid attr = open_attr(object, name);
  if (!attr.valid()) return {};
  Hid type = type_id(H5Aget_type(attr.get()));
  Hid space = space_id(H5Aget_space(attr.get()));
  if (H5Tget_class(type.get()) != H5T_INTEGER || H5Sget_simple_extent_npoints(space.get()) != 1)
    return {};
  std::int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0) return {};
  return value;
}

std::optional<std::vector<std::string>> read_string_list_attr(hid_t object,
                                                              const std::string& name) {
  if (!has_attr(object, name)) return {};
  Hid attr = open_attr(object, name);
  if (!attr.valid()) return {};
  return read_strings(attr.get());
}

std::vector<std::string> attr_names(hid_t object) {
  std::vector<std::string> names;
  H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
  if (H5Oget_info3(object, &info, H5O_INFO_NUM_ATTRS) < 0) return names;
#else
  if (H5Oget_info2(object, &info, H5O_INFO_NUM_ATTRS) < 0) return names;
#endif
  for (hsize_t i = 0; i < info.num_attrs; ++i) {
    const ssize_t len =
        H5Aget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) continue;
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    H5Aget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

std::vector<hsize_t> extent(hid_t dataset) {
  Hid space = space_id(H5Dget_space(dataset));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank > 0 ? rank : 0));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

void reclaim_strings(hid_t mem_type, hid_t mem_space, std::vector<char*>& strings) {
  if (strings.empty()) return;
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(mem_type, mem_space, H5P_DEFAULT, strings.data());
#else
  H5Dvlen_reclaim(mem_type, mem_space, H5P_DEFAULT, strings.data());
#endif
}

}  // namespace w2p::h5
