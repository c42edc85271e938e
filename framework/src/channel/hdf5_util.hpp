// Small helpers over the HDF5 C API shared by the channel store: handle ownership, attributes,
// type mapping and error reporting. Every function expects the caller to hold hdf5_mutex()
// (Hid also takes it when it closes, so handles may die anywhere).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "w2p/error.hpp"
#include "w2p/hdf5_lock.hpp"
#include "w2p/tensor.hpp"

namespace w2p::h5 {

using Lock = std::lock_guard<std::recursive_mutex>;

/// Owns one HDF5 identifier and closes it with the matching H5*close.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~Hid() { reset(); }
  Hid(Hid&& other) noexcept : id_(other.id_), closer_(other.closer_) { other.id_ = -1; }
  Hid& operator=(Hid&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = other.id_;
      closer_ = other.closer_;
      other.id_ = -1;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  /// Closes now; returns false when HDF5 reported a failure (matters for files: data loss).
  bool reset() {
    bool ok = true;
    if (id_ >= 0 && closer_ != nullptr) {
      Lock lock(hdf5_mutex());
      ok = closer_(id_) >= 0;
    }
    id_ = -1;
    return ok;
  }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

inline Hid file_id(hid_t id) { return Hid(id, H5Fclose); }
inline Hid dataset_id(hid_t id) { return Hid(id, H5Dclose); }
inline Hid group_id(hid_t id) { return Hid(id, H5Gclose); }
inline Hid space_id(hid_t id) { return Hid(id, H5Sclose); }
inline Hid type_id(hid_t id) { return Hid(id, H5Tclose); }
inline Hid plist_id(hid_t id) { return Hid(id, H5Pclose); }
inline Hid attr_id(hid_t id) { return Hid(id, H5Aclose); }
inline Hid object_id(hid_t id) { return Hid(id, H5Oclose); }

/// Turns off HDF5's printing of error stacks: failures become w2p::Error values instead.
void quiet();
/// The current HDF5 error stack as text ("" when empty), for Error::detail().
std::string error_stack();
/// Throws Error(kIo) "<file>: <what>" with the HDF5 error stack as detail.
[[noreturn]] void fail(const std::string& file, const std::string& what);

/// Memory/file type of a dtype (a fresh copy for kStr: variable-length UTF-8).
Hid value_type(DType dtype);

bool has_attr(hid_t object, const std::string& name);
void write_string_attr(hid_t object, const std::string& name, const std::string& value);
void write_int_attr(hid_t object, const std::string& name, std::int64_t value);
void write_string_list_attr(hid_t object, const std::string& name,
                            const std::vector<std::string>& values);
/// The attribute as text whatever its type (strings, numbers, lists joined by ", ").
std::optional<std::string> read_attr_text(hid_t object, const std::string& name);
std::optional<std::int64_t> read_int_attr(hid_t object, const std::string& name);
std::optional<std::vector<std::string>> read_string_list_attr(hid_t object,
                                                              const std::string& name);
/// Names of all attributes of an object.
std::vector<std::string> attr_names(hid_t object);

/// Current extent of a dataset.
std::vector<hsize_t> extent(hid_t dataset);

/// Frees the strings HDF5 allocated for a variable-length read.
void reclaim_strings(hid_t mem_type, hid_t mem_space, std::vector<char*>& strings);

}  // namespace w2p::h5
