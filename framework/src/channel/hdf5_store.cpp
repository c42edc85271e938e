#include "channel/hdf5_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <set>
#include <sstream>

#include "channel/hdf5_util.hpp"

namespace w2p {

using h5::Hid;
using h5::Lock;

namespace {

namespace fs = std::filesystem;

constexpr const char* kPartialSuffix = ".partial";
// Root attributes the layout owns; provenance attributes may not use these names.
const std::set<std::string> kReserved = {"w2p_format", "w2p_fields", "w2p_chunk_items",
                                         "complete",   "items",      "epoch_items"};
// Largest HDF5 chunk along the item axis (HDF5 refuses chunks of 4 GiB and more).
constexpr std::uint64_t kMaxChunkBytes = 1ULL << 30;
// Uncompressed items at least this large are written one by one from their own buffers: HDF5
// writes chunks larger than its chunk cache straight to the file, so gathering them first would
// only add a copy (and evict the CPU caches: 20-40% slower at 448 kB items).
constexpr std::uint64_t kDirectItemBytes = 64 * 1024;
// Bytes HDF5 stores per variable-length string element (a global heap reference).
constexpr std::uint64_t kVlenRefBytes = 16;

/// How one field is laid out in the file.
struct Field {
  std::string name;
  TensorSpec spec;
  std::string doc;
  bool fixed = false;  // one dataset [N, dims...]; else a group values/shapes/offsets
  Shape item_shape;    // fixed only
  std::int64_t item_elems = 0;
  std::size_t rank = 0;
  bool is_str() const { return spec.dtype == DType::kStr; }
};

bool fixed_layout(const TensorSpec& spec) {
  for (const auto& d : spec.dims) {
    if (!d.is_fixed() || d.size == 0) return false;
  }
  return true;
}

std::vector<Field> layout_of(const Schema& schema) {
  std::vector<Field> out;
  for (const auto& f : schema.fields) {
    Field field;
    field.name = f.name;
    field.spec = f.spec;
    field.doc = f.doc;
    field.fixed = fixed_layout(f.spec);
    field.rank = f.spec.dims.size();
    if (field.fixed) {
      field.item_elems = 1;
      for (const auto& d : f.spec.dims) {
        field.item_shape.push_back(d.size);
        field.item_elems *= d.size;
      }
    }
    out.push_back(std::move(field));
  }
  return out;
}

std::string squote(const std::string& path) { return "'" + path + "'"; }

std::uint64_t element_bytes(DType dtype) {
  return dtype == DType::kStr ? kVlenRefBytes : element_size(dtype);
}

// Selects `count` rows from `start` along axis 0 of a dataset's file space.
Hid select_rows(hid_t dataset, hsize_t start, hsize_t count) {
  Hid space = h5::space_id(H5Dget_space(dataset));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<hsize_t> offset(dims.size(), 0);
  offset[0] = start;
  dims[0] = count;
  H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, offset.data(), nullptr, dims.data(), nullptr);
  return space;
}

Hid memory_space(hsize_t elements) { return h5::space_id(H5Screate_simple(1, &elements, nullptr)); }

// Memory space [rows, item dims...]: the same shape as the file selection, which lets HDF5 map
// whole chunks at once instead of element by element (3x the CPU time otherwise).
Hid rows_space(hsize_t rows, const Shape& item_shape) {
  std::vector<hsize_t> dims{rows};
  for (auto d : item_shape) dims.push_back(static_cast<hsize_t>(d));
  return h5::space_id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
}

bool is_dataset(hid_t parent, const std::string& name) {
  if (H5Lexists(parent, name.c_str(), H5P_DEFAULT) <= 0) return false;
  Hid obj = h5::object_id(H5Oopen(parent, name.c_str(), H5P_DEFAULT));
  return obj.valid() && H5Iget_type(obj.get()) == H5I_DATASET;
}
bool is_group(hid_t parent, const std::string& name) {
  if (H5Lexists(parent, name.c_str(), H5P_DEFAULT) <= 0) return false;
  Hid obj = h5::object_id(H5Oopen(parent, name.c_str(), H5P_DEFAULT));
  return obj.valid() && H5Iget_type(obj.get()) == H5I_GROUP;
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

/// Open handles of one field.
struct Handles {
  Hid dataset;  // fixed
  Hid group, values, shapes, offsets;
  std::int64_t values_size = 0;  // writer: elements in `values`
  bool filtered = false;         // writer: the dataset is compressed
  // reader, group layout: all shapes and offsets, loaded at open
  std::vector<std::int64_t> shape_rows;
  std::vector<std::int64_t> offset_rows;
};

std::string describe(const Tensor& t) {
  return t.defined() ? std::string(to_string(t.dtype())) + shape_to_string(t.shape())
                     : std::string("an undefined tensor");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// StoreWriter

struct StoreWriter::Impl {
  std::string path;
  std::string partial;
  Schema schema;
  std::map<std::string, std::string> attributes;
  StoreOptions options;
  std::vector<Field> fields;
  Hid file;
  std::vector<Handles> handles;
  std::uint64_t written = 0;  // items in the file
  std::uint64_t resumed = 0;
  std::vector<Item> pending;  // items of the current, incomplete chunk
  std::vector<unsigned char> gather;
  std::vector<const char*> string_ptrs;
  bool committed = false;
  bool broken = false;  // an I/O error left the file in an unknown state

  bool try_resume();
  void create();
  void create_field(const Field& field, Handles& h);
  void write_provenance();
  void write_pending();
  void write_fixed(const Field& field, Handles& h, std::size_t k);
  void write_grouped(const Field& field, Handles& h, std::size_t k);
  void close_all();
  [[noreturn]] void fail(const std::string& what) {
    broken = true;
    h5::fail(partial, what);
  }
};

StoreWriter::StoreWriter(std::string path, Schema schema,
                         std::map<std::string, std::string> attributes, StoreOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = std::move(path);
  s.partial = s.path + kPartialSuffix;
  s.schema = std::move(schema);
  s.attributes = std::move(attributes);
  s.options = options;
  W2P_ASSERT(options.chunk_items >= 1, "StoreOptions::chunk_items must be at least 1");
  W2P_ASSERT(options.compression_level >= 0 && options.compression_level <= 9,
             "StoreOptions::compression_level must be in [0, 9]");
  if (s.schema.fields.empty())
    throw Error(ErrorKind::kType, "store " + squote(s.path) + ": the schema has no fields");
  std::set<std::string> names;
  for (const auto& f : s.schema.fields) {
    if (f.name.empty() || f.name == "." || f.name.find('/') != std::string::npos)
      throw Error(ErrorKind::kType, "store " + squote(s.path) + ": field name '" + f.name +
                                        "' cannot name an HDF5 dataset (empty, '.' or with '/')");
    if (!names.insert(f.name).second)
      throw Error(ErrorKind::kType,
                  "store " + squote(s.path) + ": field '" + f.name + "' appears twice");
  }
  for (const auto& [key, value] : s.attributes) {
    if (kReserved.count(key) != 0 || key.rfind("w2p_", 0) == 0)
      throw Error(ErrorKind::kInternal, "store " + squote(s.path) + ": provenance attribute '" +
                                            key + "' uses a name reserved by the store layout");
  }
  s.fields = layout_of(s.schema);

  std::error_code ec;
  const fs::path parent = fs::path(s.partial).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);

  Lock lock(hdf5_mutex());
  h5::quiet();
  if (!s.try_resume()) {
    s.close_all();
    fs::remove(s.partial, ec);
    s.create();
  }
}

StoreWriter::~StoreWriter() {
  if (!impl_ || impl_->committed) return;
  try {
    Lock lock(hdf5_mutex());
    if (impl_->file.valid() && !impl_->broken) impl_->write_pending();
  } catch (...) {
    // Best effort: the complete chunks written before are already flushed.
  }
  try {
    impl_->close_all();
  } catch (...) {
  }
}

std::uint64_t StoreWriter::resumed_items() const { return impl_->resumed; }
std::uint64_t StoreWriter::size() const { return impl_->written + impl_->pending.size(); }
const std::string& StoreWriter::path() const { return impl_->path; }
const Schema& StoreWriter::schema() const { return impl_->schema; }

void StoreWriter::append(const Item& item) {
  Impl& s = *impl_;
  if (s.committed)
    throw Error(ErrorKind::kInternal, "store " + squote(s.path) + ": append() after commit()");
  if (s.broken)
    throw Error(ErrorKind::kIo, "store " + squote(s.partial) +
                                    ": an earlier write failed; the store cannot take more items");
  for (const auto& f : s.schema.fields) {
    if (!item.has(f.name)) {
      throw Error(ErrorKind::kType, "store " + squote(s.path) + ": item " + std::to_string(size()) +
                                        " has no field '" + f.name + "'")
          .note("expected " + f.name + ": " + f.spec.str() + " (schema " + s.schema.str() + ")");
    }
    const Tensor& t = item.get(f.name);
    if (!f.spec.accepts(t)) {
      throw Error(ErrorKind::kType, "store " + squote(s.path) + ": field '" + f.name +
                                        "' of item " + std::to_string(size()) + " is " +
                                        describe(t) + ", expected " + f.spec.str())
          .note("expected " + f.name + ": " + f.spec.str());
    }
  }
  if (item.fields().size() != s.schema.fields.size()) {
    for (const auto& [name, t] : item.fields()) {
      if (s.schema.find(name) == nullptr) {
        throw Error(ErrorKind::kType, "store " + squote(s.path) + ": item " +
                                          std::to_string(size()) + " has field '" + name + "' (" +
                                          describe(t) + ") that the schema lacks")
            .note("schema " + s.schema.str());
      }
    }
  }
  s.pending.push_back(item);
  if (s.pending.size() >= s.options.chunk_items) {
    Lock lock(hdf5_mutex());
    s.write_pending();
  }
}

void StoreWriter::commit(const std::vector<std::uint64_t>& epoch_items) {
  Impl& s = *impl_;
  if (s.committed) return;
  if (s.broken)
    throw Error(ErrorKind::kIo,
                "store " + squote(s.partial) + ": an earlier write failed; cannot commit");
  const std::uint64_t in_epochs =
      std::accumulate(epoch_items.begin(), epoch_items.end(), std::uint64_t{0});
  if (!epoch_items.empty() && in_epochs != size()) {
    throw Error(ErrorKind::kInternal, "store " + squote(s.partial) + ": " +
                                          std::to_string(size()) + " items written, but " +
                                          std::to_string(in_epochs) + " in its epochs");
  }
  {
    Lock lock(hdf5_mutex());
    s.write_pending();
    try {
      if (epoch_items.size() > 1) {
        std::string text;
        for (const std::uint64_t n : epoch_items)
          text += (text.empty() ? "" : " ") + std::to_string(n);
        h5::write_string_attr(s.file.get(), "epoch_items", text);
      }
      h5::write_int_attr(s.file.get(), "items", static_cast<std::int64_t>(s.written));
      h5::write_int_attr(s.file.get(), "complete", 1);
    } catch (const Error&) {
      s.fail("cannot mark the store complete");
    }
    if (H5Fflush(s.file.get(), H5F_SCOPE_GLOBAL) < 0) s.fail("cannot flush");
    // fsync before the rename: after a power loss the final name never points to lost data.
    void* handle = nullptr;
    if (H5Fget_vfd_handle(s.file.get(), H5P_DEFAULT, &handle) >= 0 && handle != nullptr)
      ::fsync(*static_cast<int*>(handle));
    s.handles.clear();
    if (!s.file.reset()) s.fail("cannot close");
  }
  if (std::rename(s.partial.c_str(), s.path.c_str()) != 0) {
    s.broken = true;
    throw Error(ErrorKind::kIo, "store " + squote(s.partial) + ": cannot rename to " +
                                    squote(s.path) + ": " + std::strerror(errno));
  }
  const fs::path parent = fs::path(s.path).parent_path();
  fsync_path(parent.empty() ? std::string(".") : parent.string(), true);
  s.committed = true;
}

void StoreWriter::Impl::close_all() {
  Lock lock(hdf5_mutex());
  handles.clear();
  file.reset();
}

bool StoreWriter::Impl::try_resume() {
  auto hash = attributes.find("config_hash");
  std::error_code ec;
  if (hash == attributes.end() || !fs::exists(partial, ec)) return false;
  if (H5Fis_hdf5(partial.c_str()) <= 0) return false;
  try {
    file = h5::file_id(H5Fopen(partial.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    if (!file.valid()) return false;
    const hid_t f = file.get();
    if (h5::read_attr_text(f, "w2p_format") != std::string(kStoreFormat)) return false;
    if (h5::read_attr_text(f, "config_hash") != hash->second) return false;
    std::vector<std::string> names;
    for (const auto& fl : fields) names.push_back(fl.name);
    if (h5::read_string_list_attr(f, "w2p_fields") != names) return false;
    const auto chunk = h5::read_int_attr(f, "w2p_chunk_items");
    const auto items = h5::read_int_attr(f, "items");
    if (!chunk || *chunk < 1 || !items || *items < 0) return false;

    // Open every field and find how many items all of them hold.
    std::uint64_t avail = static_cast<std::uint64_t>(*items);
    handles.clear();
    handles.resize(fields.size());
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const Field& fl = fields[i];
      Handles& h = handles[i];
      if (fl.fixed) {
        if (!is_dataset(f, fl.name)) return false;
        h.dataset = h5::dataset_id(H5Dopen2(f, fl.name.c_str(), H5P_DEFAULT));
        if (h5::read_attr_text(h.dataset.get(), "w2p_spec") != fl.spec.str()) return false;
        Hid dcpl = h5::plist_id(H5Dget_create_plist(h.dataset.get()));
        h.filtered = H5Pget_nfilters(dcpl.get()) != 0;
        const auto dims = h5::extent(h.dataset.get());
        if (dims.size() != fl.rank + 1) return false;
        for (std::size_t d = 0; d < fl.rank; ++d) {
          if (static_cast<std::int64_t>(dims[d + 1]) != fl.item_shape[d]) return false;
        }
        avail = std::min<std::uint64_t>(avail, dims[0]);
      } else {
        if (!is_group(f, fl.name)) return false;
        h.group = h5::group_id(H5Gopen2(f, fl.name.c_str(), H5P_DEFAULT));
        if (h5::read_attr_text(h.group.get(), "w2p_spec") != fl.spec.str()) return false;
        for (const char* member : {"values", "shapes", "offsets"}) {
          if (!is_dataset(h.group.get(), member)) return false;
        }
        h.values = h5::dataset_id(H5Dopen2(h.group.get(), "values", H5P_DEFAULT));
        h.shapes = h5::dataset_id(H5Dopen2(h.group.get(), "shapes", H5P_DEFAULT));
        h.offsets = h5::dataset_id(H5Dopen2(h.group.get(), "offsets", H5P_DEFAULT));
        const auto shape_dims = h5::extent(h.shapes.get());
        const auto offset_dims = h5::extent(h.offsets.get());
        if (shape_dims.size() != 2 || shape_dims[1] != fl.rank || offset_dims.size() != 1 ||
            offset_dims[0] < 1)
          return false;
        avail = std::min<std::uint64_t>(avail, shape_dims[0]);
        avail = std::min<std::uint64_t>(avail, offset_dims[0] - 1);
      }
    }

    // Keep the complete chunks only, and drop the rest from every dataset.
    const std::uint64_t chunk_items = static_cast<std::uint64_t>(*chunk);
    const std::uint64_t keep = avail / chunk_items * chunk_items;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const Field& fl = fields[i];
      Handles& h = handles[i];
      if (fl.fixed) {
        auto dims = h5::extent(h.dataset.get());
        dims[0] = keep;
        if (H5Dset_extent(h.dataset.get(), dims.data()) < 0) return false;
        continue;
      }
      std::int64_t end = 0;
      Hid file_space = select_rows(h.offsets.get(), keep, 1);
      Hid mem = memory_space(1);
      if (H5Dread(h.offsets.get(), H5T_NATIVE_INT64, mem.get(), file_space.get(), H5P_DEFAULT,
                  &end) < 0)
        return false;
      const auto value_dims = h5::extent(h.values.get());
      if (end < 0 || value_dims.size() != 1 || static_cast<std::uint64_t>(end) > value_dims[0])
        return false;
      h.values_size = end;
      hsize_t values_extent = static_cast<hsize_t>(end);
      hsize_t shapes_extent[2] = {keep, fl.rank};
      hsize_t offsets_extent = keep + 1;
      if (H5Dset_extent(h.values.get(), &values_extent) < 0 ||
          H5Dset_extent(h.shapes.get(), shapes_extent) < 0 ||
          H5Dset_extent(h.offsets.get(), &offsets_extent) < 0)
        return false;
    }
    options.chunk_items = chunk_items;  // the file's chunking defines its resume points
    write_provenance();
    h5::write_int_attr(f, "items", static_cast<std::int64_t>(keep));
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0) return false;
    written = keep;
    resumed = keep;
    return true;
  } catch (const Error&) {
    return false;
  }
}

void StoreWriter::Impl::write_provenance() {
  for (const auto& [key, value] : attributes) h5::write_string_attr(file.get(), key, value);
}

void StoreWriter::Impl::create() {
  // Default (earliest) format bounds: any HDF5 >= 1.8 and h5py read the file, and no
  // "file open for writing" flag is left in a crashed .partial.
  file = h5::file_id(H5Fcreate(partial.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  if (!file.valid()) fail("cannot create the file");
  try {
    const hid_t f = file.get();
    h5::write_string_attr(f, "w2p_format", kStoreFormat);
    std::vector<std::string> names;
    for (const auto& fl : fields) names.push_back(fl.name);
    h5::write_string_list_attr(f, "w2p_fields", names);
    h5::write_int_attr(f, "w2p_chunk_items", static_cast<std::int64_t>(options.chunk_items));
    h5::write_int_attr(f, "complete", 0);
    h5::write_int_attr(f, "items", 0);
    write_provenance();
    handles.clear();
    handles.resize(fields.size());
    for (std::size_t i = 0; i < fields.size(); ++i) create_field(fields[i], handles[i]);
  } catch (const Error& e) {
    fail("cannot create the store layout: " + e.message());
  }
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) fail("cannot flush");
}

void StoreWriter::Impl::create_field(const Field& fl, Handles& h) {
  const hid_t f = file.get();
  Hid type = h5::value_type(fl.spec.dtype);
  const bool compress = options.compression_level > 0 && !fl.is_str();
  auto make_dcpl = [&](const std::vector<hsize_t>& chunk) {
    Hid dcpl = h5::plist_id(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    if (compress) {
      H5Pset_shuffle(dcpl.get());
      H5Pset_deflate(dcpl.get(), static_cast<unsigned>(options.compression_level));
    }
    // Every element is written before it is in the extent: filling first is wasted work.
    if (!fl.is_str()) H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);
    return dcpl;
  };
  auto make_dataset = [&](hid_t parent, const char* name, hid_t dtype,
                          const std::vector<hsize_t>& dims, const std::vector<hsize_t>& chunk) {
    std::vector<hsize_t> max_dims = dims;
    max_dims[0] = H5S_UNLIMITED;
    Hid space =
        h5::space_id(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data()));
    Hid dcpl = make_dcpl(chunk);
    Hid d = h5::dataset_id(
        H5Dcreate2(parent, name, dtype, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    if (!d.valid())
      throw Error(ErrorKind::kIo, std::string("cannot create dataset '") + name + "'",
                  h5::error_stack());
    return d;
  };
  auto tag = [&](hid_t object) {
    h5::write_string_attr(object, "w2p_dtype", to_string(fl.spec.dtype));
    h5::write_string_attr(object, "w2p_spec", fl.spec.str());
    if (!fl.doc.empty()) h5::write_string_attr(object, "w2p_doc", fl.doc);
  };

  if (fl.fixed) {
    const std::uint64_t item_bytes =
        static_cast<std::uint64_t>(fl.item_elems) * element_bytes(fl.spec.dtype);
    const std::uint64_t rows = std::min<std::uint64_t>(
        options.chunk_items, std::max<std::uint64_t>(1, kMaxChunkBytes / item_bytes));
    std::vector<hsize_t> dims{0}, chunk{rows};
    for (auto d : fl.item_shape) {
      dims.push_back(static_cast<hsize_t>(d));
      chunk.push_back(static_cast<hsize_t>(d));
    }
    h.dataset = make_dataset(f, fl.name.c_str(), type.get(), dims, chunk);
    h.filtered = compress;
    tag(h.dataset.get());
    return;
  }
  h.group = h5::group_id(H5Gcreate2(f, fl.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!h.group.valid())
    throw Error(ErrorKind::kIo, "cannot create group '" + fl.name + "'", h5::error_stack());
  tag(h.group.get());
  const hsize_t value_chunk =
      fl.is_str() ? 4096 : std::max<hsize_t>(1, (1u << 20) / element_size(fl.spec.dtype));
  h.values = make_dataset(h.group.get(), "values", type.get(), {0}, {value_chunk});
  tag(h.values.get());
  h.shapes = make_dataset(h.group.get(), "shapes", H5T_NATIVE_INT64, {0, fl.rank},
                          {options.chunk_items, fl.rank});
  h.offsets = make_dataset(h.group.get(), "offsets", H5T_NATIVE_INT64, {1}, {options.chunk_items});
  const std::int64_t zero = 0;
  Hid file_space = select_rows(h.offsets.get(), 0, 1);
  Hid mem = memory_space(1);
  if (H5Dwrite(h.offsets.get(), H5T_NATIVE_INT64, mem.get(), file_space.get(), H5P_DEFAULT, &zero) <
      0)
    throw Error(ErrorKind::kIo, "cannot write '" + fl.name + "/offsets'", h5::error_stack());
  h.values_size = 0;
}

void StoreWriter::Impl::write_pending() {
  const std::size_t k = pending.size();
  if (k == 0) return;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].fixed) {
      write_fixed(fields[i], handles[i], k);
    } else {
      write_grouped(fields[i], handles[i], k);
    }
  }
  written += k;
  pending.clear();
  try {
    h5::write_int_attr(file.get(), "items", static_cast<std::int64_t>(written));
  } catch (const Error&) {
    fail("cannot update the item count");
  }
  // One flush per chunk: the file on disk is consistent between chunk writes (see header).
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) fail("cannot flush");
}

void StoreWriter::Impl::write_fixed(const Field& fl, Handles& h, std::size_t k) {
  const std::size_t elems = static_cast<std::size_t>(fl.item_elems);
  const void* data = nullptr;
  Hid type = h5::value_type(fl.spec.dtype);
  if (fl.is_str()) {
    string_ptrs.clear();
    for (const auto& item : pending) {
      const auto* s = item.get(fl.name).data<std::string>();
      for (std::size_t e = 0; e < elems; ++e) string_ptrs.push_back(s[e].c_str());
    }
    data = string_ptrs.data();
  } else if (k == 1) {
    data = pending[0].get(fl.name).raw();
  } else if (!h.filtered &&
             static_cast<std::uint64_t>(fl.item_elems) * element_size(fl.spec.dtype) >=
                 kDirectItemBytes) {
    data = nullptr;  // large uncompressed items: one write per item, straight from the tensors
  } else {
    const std::size_t bytes = elems * element_size(fl.spec.dtype);
    gather.resize(bytes * k);
    for (std::size_t j = 0; j < k; ++j)
      std::memcpy(gather.data() + j * bytes, pending[j].get(fl.name).raw(), bytes);
    data = gather.data();
  }
  auto dims = h5::extent(h.dataset.get());
  dims[0] = written + k;
  if (H5Dset_extent(h.dataset.get(), dims.data()) < 0) fail("cannot extend '" + fl.name + "'");
  if (data == nullptr) {
    Hid mem = rows_space(1, fl.item_shape);
    for (std::size_t j = 0; j < k; ++j) {
      Hid file_space = select_rows(h.dataset.get(), written + j, 1);
      if (H5Dwrite(h.dataset.get(), type.get(), mem.get(), file_space.get(), H5P_DEFAULT,
                   pending[j].get(fl.name).raw()) < 0)
        fail("cannot write '" + fl.name + "'");
    }
    return;
  }
  Hid file_space = select_rows(h.dataset.get(), written, k);
  Hid mem = rows_space(k, fl.item_shape);
  if (H5Dwrite(h.dataset.get(), type.get(), mem.get(), file_space.get(), H5P_DEFAULT, data) < 0)
    fail("cannot write '" + fl.name + "'");
}

void StoreWriter::Impl::write_grouped(const Field& fl, Handles& h, std::size_t k) {
  std::vector<std::int64_t> shapes;
  std::vector<std::int64_t> offsets;
  shapes.reserve(k * fl.rank);
  offsets.reserve(k);
  std::int64_t total = 0;
  for (const auto& item : pending) {
    const Tensor& t = item.get(fl.name);
    shapes.insert(shapes.end(), t.shape().begin(), t.shape().end());
    total += t.numel();
    offsets.push_back(h.values_size + total);
  }
  Hid type = h5::value_type(fl.spec.dtype);
  if (total > 0) {
    const void* data = nullptr;
    if (fl.is_str()) {
      string_ptrs.clear();
      for (const auto& item : pending) {
        const Tensor& t = item.get(fl.name);
        const auto* s = t.data<std::string>();
        for (std::int64_t e = 0; e < t.numel(); ++e) string_ptrs.push_back(s[e].c_str());
      }
      data = string_ptrs.data();
    } else {
      gather.resize(static_cast<std::size_t>(total) * element_size(fl.spec.dtype));
      std::size_t at = 0;
      for (const auto& item : pending) {
        const Tensor& t = item.get(fl.name);
        if (t.nbytes() > 0) std::memcpy(gather.data() + at, t.raw(), t.nbytes());
        at += t.nbytes();
      }
      data = gather.data();
    }
    hsize_t extent = static_cast<hsize_t>(h.values_size + total);
    if (H5Dset_extent(h.values.get(), &extent) < 0) fail("cannot extend '" + fl.name + "/values'");
    Hid file_space = select_rows(h.values.get(), static_cast<hsize_t>(h.values_size),
                                 static_cast<hsize_t>(total));
    Hid mem = memory_space(static_cast<hsize_t>(total));
    if (H5Dwrite(h.values.get(), type.get(), mem.get(), file_space.get(), H5P_DEFAULT, data) < 0)
      fail("cannot write '" + fl.name + "/values'");
  }
  hsize_t shapes_extent[2] = {written + k, fl.rank};
  hsize_t offsets_extent = written + k + 1;
  if (H5Dset_extent(h.shapes.get(), shapes_extent) < 0 ||
      H5Dset_extent(h.offsets.get(), &offsets_extent) < 0)
    fail("cannot extend '" + fl.name + "/shapes' or '" + fl.name + "/offsets'");
  if (fl.rank > 0) {
    Hid shape_space = select_rows(h.shapes.get(), written, k);
    Hid shape_mem = rows_space(k, Shape{static_cast<std::int64_t>(fl.rank)});
    if (H5Dwrite(h.shapes.get(), H5T_NATIVE_INT64, shape_mem.get(), shape_space.get(), H5P_DEFAULT,
                 shapes.data()) < 0)
      fail("cannot write '" + fl.name + "/shapes'");
  }
  Hid offset_space = select_rows(h.offsets.get(), written + 1, k);
  Hid offset_mem = memory_space(k);
  if (H5Dwrite(h.offsets.get(), H5T_NATIVE_INT64, offset_mem.get(), offset_space.get(), H5P_DEFAULT,
               offsets.data()) < 0)
    fail("cannot write '" + fl.name + "/offsets'");
  h.values_size += total;
}

// ---------------------------------------------------------------------------------------------
// StoreReader

namespace {

// Opens a store file and checks that it is a complete w2p store; throws kIo naming the file.
Hid open_complete_store(const std::string& path) {
  const std::string partial_suffix = kPartialSuffix;
  if (path.size() >= partial_suffix.size() &&
      path.compare(path.size() - partial_suffix.size(), partial_suffix.size(), partial_suffix) ==
          0) {
    throw Error(ErrorKind::kIo, "store " + squote(path) + " is incomplete")
        .note(
            "a .partial file is a store still being written, or left by an interrupted run; "
            "run its pipeline again (with --resume to continue it)");
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    Error e(ErrorKind::kIo, "store " + squote(path) + " does not exist");
    if (fs::exists(path + kPartialSuffix, ec)) {
      e.note("an incomplete " + squote(path + kPartialSuffix) +
             " exists: the run writing it did not finish (run it again, with --resume to "
             "continue it)");
    }
    throw e;
  }
  if (fs::is_directory(path, ec))
    throw Error(ErrorKind::kIo, "store " + squote(path) + " is a directory, not an HDF5 file");
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw Error(ErrorKind::kIo, "store " + squote(path) + " is not an HDF5 file");
  Hid file = h5::file_id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!file.valid()) h5::fail(path, "cannot open the HDF5 file");
  const auto format = h5::read_attr_text(file.get(), "w2p_format");
  if (!format) {
    throw Error(ErrorKind::kIo, "store " + squote(path) + " is not a w2p store")
        .note(std::string("its root has no w2p_format attribute (expected \"") + kStoreFormat +
              "\")");
  }
  if (*format != kStoreFormat) {
    throw Error(ErrorKind::kIo, "store " + squote(path) + " has format '" + *format +
                                    "', this build reads '" + kStoreFormat + "'");
  }
  const auto complete = h5::read_int_attr(file.get(), "complete");
  if (!complete || *complete != 1) {
    throw Error(ErrorKind::kIo, "store " + squote(path) + " is incomplete")
        .note("its 'complete' attribute is " + (complete ? std::to_string(*complete) : "missing") +
              ": the run that wrote it did not commit");
  }
  return file;
}

}  // namespace

struct StoreReader::Impl {
  std::string path;
  Schema schema;
  std::vector<Field> fields;
  std::map<std::string, std::size_t> index_of;
  Hid file;
  std::vector<Handles> handles;
  std::uint64_t size = 0;

  [[noreturn]] void corrupt(const std::string& what) const {
    throw Error(ErrorKind::kData, "store " + squote(path) + " is corrupt: " + what);
  }
  Tensor read_field(std::size_t i, std::uint64_t index) const;
};

StoreReader::StoreReader(std::string path) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.path = std::move(path);
  Lock lock(hdf5_mutex());
  h5::quiet();
  s.file = open_complete_store(s.path);
  const hid_t f = s.file.get();
  const auto items = h5::read_int_attr(f, "items");
  if (!items || *items < 0) s.corrupt("no valid 'items' attribute");
  s.size = static_cast<std::uint64_t>(*items);
  const auto names = h5::read_string_list_attr(f, "w2p_fields");
  if (!names) s.corrupt("no 'w2p_fields' attribute");

  for (const auto& name : *names) {
    const bool dataset = is_dataset(f, name);
    if (!dataset && !is_group(f, name)) s.corrupt("field '" + name + "' has no dataset or group");
    Handles h;
    hid_t tagged = -1;
    if (dataset) {
      h.dataset = h5::dataset_id(H5Dopen2(f, name.c_str(), H5P_DEFAULT));
      tagged = h.dataset.get();
    } else {
      h.group = h5::group_id(H5Gopen2(f, name.c_str(), H5P_DEFAULT));
      tagged = h.group.get();
    }
    const auto spec_text = h5::read_attr_text(tagged, "w2p_spec");
    FieldSpec fs_spec;
    fs_spec.name = name;
    std::string error;
    if (!spec_text || !TensorSpec::parse(*spec_text, &fs_spec.spec, &error))
      s.corrupt("field '" + name + "' has no valid w2p_spec attribute " + error);
    fs_spec.doc = h5::read_attr_text(tagged, "w2p_doc").value_or("");
    if (fixed_layout(fs_spec.spec) != dataset)
      s.corrupt("field '" + name + "' (" + fs_spec.spec.str() + ") is stored as a " +
                (dataset ? "dataset" : "group"));
    s.schema.fields.push_back(fs_spec);
    Field fl = layout_of(Schema{{fs_spec}}).front();
    if (dataset) {
      const auto dims = h5::extent(h.dataset.get());
      if (dims.size() != fl.rank + 1 || dims[0] < s.size)
        s.corrupt("dataset '" + name + "' has fewer items or another rank than declared");
      for (std::size_t d = 0; d < fl.rank; ++d) {
        if (static_cast<std::int64_t>(dims[d + 1]) != fl.item_shape[d])
          s.corrupt("dataset '" + name + "' does not match its spec " + fs_spec.spec.str());
      }
      // Compressed chunks are decompressed whole: cache a few so that reading item after
      // item does not decompress a chunk per item. (Uncompressed chunks are read directly.)
      Hid dcpl = h5::plist_id(H5Dget_create_plist(h.dataset.get()));
      if (H5Pget_nfilters(dcpl.get()) > 0) {
        std::vector<hsize_t> chunk(fl.rank + 1);
        H5Pget_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
        std::uint64_t bytes = element_bytes(fl.spec.dtype);
        for (auto c : chunk) bytes *= c;
        Hid dapl = h5::plist_id(H5Pcreate(H5P_DATASET_ACCESS));
        H5Pset_chunk_cache(
            dapl.get(), 521,
            std::min<std::uint64_t>(std::max<std::uint64_t>(2 * bytes, 1 << 20), 512ULL << 20),
            0.75);
        h.dataset.reset();
        h.dataset = h5::dataset_id(H5Dopen2(f, name.c_str(), dapl.get()));
      }
    } else {
      for (const char* member : {"values", "shapes", "offsets"}) {
        if (!is_dataset(h.group.get(), member))
          s.corrupt("group '" + name + "' has no dataset '" + member + "'");
      }
      h.values = h5::dataset_id(H5Dopen2(h.group.get(), "values", H5P_DEFAULT));
      Hid shapes = h5::dataset_id(H5Dopen2(h.group.get(), "shapes", H5P_DEFAULT));
      Hid offsets = h5::dataset_id(H5Dopen2(h.group.get(), "offsets", H5P_DEFAULT));
      const auto shape_dims = h5::extent(shapes.get());
      const auto offset_dims = h5::extent(offsets.get());
      if (shape_dims.size() != 2 || shape_dims[1] != fl.rank || shape_dims[0] < s.size ||
          offset_dims.size() != 1 || offset_dims[0] < s.size + 1)
        s.corrupt("group '" + name + "' has fewer items than the store or another rank");
      // Shapes and offsets are small: loaded once, so a read costs one values read.
      h.shape_rows.resize(s.size * fl.rank);
      h.offset_rows.resize(s.size + 1);
      if (!h.shape_rows.empty()) {
        Hid space = select_rows(shapes.get(), 0, s.size);
        Hid mem = rows_space(s.size, Shape{static_cast<std::int64_t>(fl.rank)});
        if (H5Dread(shapes.get(), H5T_NATIVE_INT64, mem.get(), space.get(), H5P_DEFAULT,
                    h.shape_rows.data()) < 0)
          h5::fail(s.path, "cannot read '" + name + "/shapes'");
      }
      Hid space = select_rows(offsets.get(), 0, s.size + 1);
      Hid mem = memory_space(h.offset_rows.size());
      if (H5Dread(offsets.get(), H5T_NATIVE_INT64, mem.get(), space.get(), H5P_DEFAULT,
                  h.offset_rows.data()) < 0)
        h5::fail(s.path, "cannot read '" + name + "/offsets'");
      const auto value_dims = h5::extent(h.values.get());
      if (value_dims.size() != 1 ||
          static_cast<std::uint64_t>(h.offset_rows.back()) > value_dims[0])
        s.corrupt("group '" + name + "': offsets point past the values");
    }
    s.index_of[name] = s.fields.size();
    s.fields.push_back(std::move(fl));
    s.handles.push_back(std::move(h));
  }
}

StoreReader::~StoreReader() {
  if (!impl_) return;
  Lock lock(hdf5_mutex());
  impl_->handles.clear();
  impl_->file.reset();
}

const std::string& StoreReader::path() const { return impl_->path; }
const Schema& StoreReader::schema() const { return impl_->schema; }
std::uint64_t StoreReader::size() const { return impl_->size; }

Tensor StoreReader::Impl::read_field(std::size_t i, std::uint64_t index) const {
  const Field& fl = fields[i];
  const Handles& h = handles[i];
  Shape shape;
  hid_t dataset = -1;
  Hid file_space;
  if (fl.fixed) {
    shape = fl.item_shape;
    dataset = h.dataset.get();
    file_space = select_rows(dataset, index, 1);
  } else {
    shape.assign(h.shape_rows.begin() + static_cast<std::ptrdiff_t>(index * fl.rank),
                 h.shape_rows.begin() + static_cast<std::ptrdiff_t>((index + 1) * fl.rank));
    const std::int64_t begin = h.offset_rows[index];
    const std::int64_t end = h.offset_rows[index + 1];
    std::int64_t n = 1;
    for (auto d : shape) {
      if (d < 0)
        corrupt("field '" + fl.name + "' item " + std::to_string(index) +
                " has a negative dimension");
      n *= d;
    }
    if (end < begin || end - begin != n)
      corrupt("field '" + fl.name + "' item " + std::to_string(index) + " has shape " +
              shape_to_string(shape) + " but " + std::to_string(end - begin) + " values");
    dataset = h.values.get();
    if (n > 0)
      file_space = select_rows(dataset, static_cast<hsize_t>(begin), static_cast<hsize_t>(n));
  }
  Tensor t = Tensor::zeros(fl.spec.dtype, shape);
  const hsize_t n = static_cast<hsize_t>(t.numel());
  if (n == 0) return t;
  Hid type = h5::value_type(fl.spec.dtype);
  Hid mem = fl.fixed ? rows_space(1, fl.item_shape) : memory_space(n);
  if (fl.is_str()) {
    std::vector<char*> raw(n, nullptr);
    if (H5Dread(dataset, type.get(), mem.get(), file_space.get(), H5P_DEFAULT, raw.data()) < 0)
      h5::fail(path, "cannot read item " + std::to_string(index) + " of '" + fl.name + "'");
    auto* out = t.mutable_data<std::string>();
    for (hsize_t e = 0; e < n; ++e) out[e] = raw[e] != nullptr ? raw[e] : "";
    h5::reclaim_strings(type.get(), mem.get(), raw);
    return t;
  }
  if (H5Dread(dataset, type.get(), mem.get(), file_space.get(), H5P_DEFAULT, t.mutable_raw()) < 0)
    h5::fail(path, "cannot read item " + std::to_string(index) + " of '" + fl.name + "'");
  if (fl.spec.dtype == DType::kBool) {
    // Only 0 and 1 are valid bool objects; a file written elsewhere may hold other bytes.
    auto* bytes = static_cast<std::uint8_t*>(t.mutable_raw());
    for (hsize_t e = 0; e < n; ++e) bytes[e] = bytes[e] != 0 ? 1 : 0;
  }
  return t;
}

Item StoreReader::read(std::uint64_t index) const {
  Item item;
  Lock lock(hdf5_mutex());
  if (index >= impl_->size)
    throw Error(ErrorKind::kInternal, "store " + squote(impl_->path) + ": item " +
                                          std::to_string(index) + " read, the store has " +
                                          std::to_string(impl_->size));
  for (std::size_t i = 0; i < impl_->fields.size(); ++i)
    item.set(impl_->fields[i].name, impl_->read_field(i, index));
  return item;
}

Item StoreReader::read(std::uint64_t index, const std::vector<std::string>& fields) const {
  Item item;
  Lock lock(hdf5_mutex());
  if (index >= impl_->size)
    throw Error(ErrorKind::kInternal, "store " + squote(impl_->path) + ": item " +
                                          std::to_string(index) + " read, the store has " +
                                          std::to_string(impl_->size));
  for (const auto& name : fields) {
    auto it = impl_->index_of.find(name);
    if (it == impl_->index_of.end())
      throw Error(ErrorKind::kInternal,
                  "store " + squote(impl_->path) + " has no field '" + name + "'")
          .note("fields: " + impl_->schema.str());
    item.set(name, impl_->read_field(it->second, index));
  }
  return item;
}

std::vector<std::uint64_t> StoreReader::epoch_items() const {
  const auto text = attribute("epoch_items");
  if (!text) return {size()};
  std::vector<std::uint64_t> out;
  std::istringstream in(*text);
  for (std::uint64_t n = 0; in >> n;) out.push_back(n);
  if (!in.eof() || std::accumulate(out.begin(), out.end(), std::uint64_t{0}) != size()) {
    throw Error(ErrorKind::kIo, "store " + squote(path()) + ": attribute epoch_items '" + *text +
                                    "' does not count its " + std::to_string(size()) + " items");
  }
  return out;
}

std::optional<std::string> StoreReader::attribute(const std::string& name) const {
  Lock lock(hdf5_mutex());
  return h5::read_attr_text(impl_->file.get(), name);
}

std::map<std::string, std::string> StoreReader::attributes() const {
  Lock lock(hdf5_mutex());
  std::map<std::string, std::string> out;
  for (const auto& name : h5::attr_names(impl_->file.get())) {
    if (auto v = h5::read_attr_text(impl_->file.get(), name)) out[name] = *v;
  }
  return out;
}

std::optional<std::map<std::string, std::string>> read_store_attributes(const std::string& path) {
  try {
    Lock lock(hdf5_mutex());
    h5::quiet();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec) || H5Fis_hdf5(path.c_str()) <= 0) return std::nullopt;
    Hid file = h5::file_id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!file.valid() || !h5::read_attr_text(file.get(), "w2p_format")) return std::nullopt;
    std::map<std::string, std::string> out;
    for (const auto& name : h5::attr_names(file.get())) {
      if (auto v = h5::read_attr_text(file.get(), name)) out[name] = *v;
    }
    return out;
  } catch (...) {
    return std::nullopt;
  }
}

bool store_is_complete(const std::string& path, const std::string& config_hash) {
  try {
    Lock lock(hdf5_mutex());
    h5::quiet();
    Hid file = open_complete_store(path);
    return h5::read_attr_text(file.get(), "config_hash") == config_hash;
  } catch (...) {
    return false;
  }
}

}  // namespace w2p
