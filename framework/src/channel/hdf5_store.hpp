// HDF5-backed channel store: a channel's items written to one file, read back by random access.
//
// File layout ("w2p-store/1"; plain HDF5, readable with h5py without any w2p code):
//
//   /                      root attributes:
//                            w2p_format      "w2p-store/1"
//                            w2p_fields      1-D string array: the field names in schema order
//                            w2p_chunk_items int64: items per chunk (the unit of resumption)
//                            complete        int64: 1 once committed, 0 while being written
//                            items           int64: items stored (updated with every chunk)
//                            epoch_items     string "n0 n1 ...": items per epoch of the stream,
//                                            in order (only when it had several; optional)
//                            <provenance>    string attributes given to the writer
//                                            (framework version, plugins, config_hash, seed...)
//   /<field>               a field whose spec has only fixed dims (each > 0), e.g. f32[7,16000]:
//                          a chunked dataset [N, dims...] (item axis first, extendible along
//                          it), chunks of chunk_items items; scalars give [N].
//   /<field>/              a field with a symbolic ("B") or ragged ("?") dim, or a zero-size dim:
//                          a group holding
//       values             1-D concatenation of every item's elements (row-major), extendible
//       shapes             [N, rank] int64: each item's shape
//       offsets            [N+1] int64: item i is values[offsets[i]:offsets[i+1]]
//
// Element types are native HDF5 types: f32/f64 -> IEEE float, i32/i64 -> signed int, u8 -> uint8,
// bool -> uint8 (0/1), str -> variable-length UTF-8 strings (same fixed/group rules as numbers).
// Every field dataset or group carries the attributes w2p_dtype ("f32", "bool", ...) and
// w2p_spec (TensorSpec::str(), e.g. "f32[?,7]") from which the schema is rebuilt on read, and
// w2p_doc when the field has a doc string. Compression (deflate, with the shuffle filter on
// numeric data) is an option of the writer; h5py reads it with its built-in filters.
//
// Writing: items are buffered in memory until a chunk (chunk_items items) is complete; the whole
// chunk is then written to every dataset, the `items` attribute updated and the file flushed.
// Between two chunk writes the file on disk is therefore always consistent, so a `.partial` file
// left by a crash (or by a writer destroyed without commit()) can be resumed: its complete
// chunks are kept, any partial tail is dropped. The file becomes visible under its final name
// only at commit(), by an atomic rename after fsync.
//
// Thread safety: every HDF5 call holds hdf5_mutex(). A StoreReader may be read from several
// threads at once (the reads are serialised); a StoreWriter is used by one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "w2p/tensor.hpp"

namespace w2p {

inline constexpr const char* kStoreFormat = "w2p-store/1";

struct StoreOptions {
  std::uint64_t chunk_items = 64;  ///< items per chunk: the write and resume unit (>= 1)
  int compression_level = 0;       ///< 0 = none, 1-9 = deflate level
};

class StoreWriter {
 public:
  /// Writes to `path + ".partial"`; the final file appears only at commit() (atomic rename).
  /// `attributes` are provenance strings written as root attributes (framework version,
  /// plugins name@version, config_hash, seed, ...); names that the layout reserves (w2p_*,
  /// complete, items) are refused.
  /// If a `.partial` file exists whose "config_hash" attribute equals attributes["config_hash"]
  /// and whose schema matches, it RESUMES: keeps the items of its complete chunks (truncates any
  /// partial tail; the chunk size and compression of that file are kept) and resumed_items()
  /// says how many. Any other `.partial` is replaced. Throws w2p::Error (kIo) naming the file.
  StoreWriter(std::string path, Schema schema, std::map<std::string, std::string> attributes,
              StoreOptions options = {});
  /// Without commit(): writes the buffered items and flushes, so that the .partial stays
  /// resumable. Never throws.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  std::uint64_t resumed_items() const;
  /// Items written so far, including resumed and buffered ones.
  std::uint64_t size() const;
  const std::string& path() const;
  const Schema& schema() const;
  /// Appends the item with stream index size(). Each field is checked against the schema
  /// (kType error naming the field, the expected spec, the actual dtype/shape and the file);
  /// missing and extra fields are errors too. The tensors are kept by reference (not copied)
  /// until their chunk is written.
  void append(const Item& item);
  /// Writes the last items, attribute complete=1 and the item count, fsyncs, closes and renames
  /// .partial -> path (replacing an older file of that name). append() is an error afterwards.
  /// `epoch_items`: the items of each epoch of the stream, in order (they must add up to
  /// size()); recorded as attribute epoch_items when there is more than one epoch, so that a
  /// replay keeps the stream's epochs.
  void commit(const std::vector<std::uint64_t>& epoch_items = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class StoreReader {
 public:
  /// Throws w2p::Error (kIo) naming the file when it is missing, not HDF5, not a w2p store or
  /// incomplete (a .partial, or the complete attribute is missing or 0).
  explicit StoreReader(std::string path);
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  const std::string& path() const;
  const Schema& schema() const;
  std::uint64_t size() const;
  /// Random access to item `index` (< size(); kInternal error otherwise). Thread-safe.
  Item read(std::uint64_t index) const;
  /// Only the named fields (each must be in the schema).
  Item read(std::uint64_t index, const std::vector<std::string>& fields) const;
  /// Items per epoch of the stream the store was written from (one entry = size() when it
  /// recorded no epochs).
  std::vector<std::uint64_t> epoch_items() const;
  /// A root attribute as text (numeric attributes such as `items` in decimal), if present.
  std::optional<std::string> attribute(const std::string& name) const;
  /// Every root attribute as text.
  std::map<std::string, std::string> attributes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The root attributes (as text) of any w2p store file, complete or not (a `.partial` too), or
/// nothing when the file is missing or not a w2p store. Never throws. For messages and tools:
/// e.g. the provenance attribute "pipeline" of an interrupted run's `.partial`.
std::optional<std::map<std::string, std::string>> read_store_attributes(const std::string& path);

/// True when `path` is a complete store whose config_hash attribute equals `config_hash` (used
/// to reuse a store instead of recomputing). Never throws: unreadable files give false.
bool store_is_complete(const std::string& path, const std::string& config_hash);

}  // namespace w2p
